//! What the front ends share about refusing a request before it is served: the reasons
//! ([`Refusal`]) and the per-key request rate limiter ([`RateLimiter`]), which the static
//! `[limits]` rates and the Vault rate limit quotas (`crate::quotas`) both count with.
//!
//! The rate limiter is governor's GCRA (a token bucket without a timer per key) over a
//! concurrent map. Its table grows with every distinct key (client address, access key,
//! token), so it is bounded: past `max_keys` entries the keys whose bucket is full again are
//! forgotten (they are indistinguishable from new ones), and if that is not enough the table
//! starts over, which forgives every client its debt rather than letting memory grow.

use std::hash::Hash;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::Quota;
use governor::clock::{Clock as _, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use parking_lot::RwLock;

/// A keyed governor limiter that reports the state of the bucket it decided on.
type Table<K> = governor::RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock, StateInformationMiddleware>;

/// Why a request was refused before any front end served it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The body is (or declares itself) larger than the limit, in bytes.
    TooLarge { limit: usize },
    /// The client, its access key or its token sent more requests than the rate allows.
    Throttled,
    /// The body did not arrive within the body read timeout.
    BodyTimeout,
}

/// A request rate: `per_second` on average, `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

/// The most keys a limiter remembers by default (about 100 bytes each).
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// The outcome of [`RateLimiter::take`], with what Vault's rate limit headers report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Take {
    /// Whether the request is allowed (and was counted).
    pub allowed: bool,
    /// The bucket's size: requests allowed at once.
    pub limit: u32,
    /// Requests still allowed at once after this one.
    pub remaining: u32,
    /// How long until the bucket is full again (allowed), or until the next request is
    /// allowed (refused).
    pub reset: Duration,
}

/// A request rate limit per key, with a bounded key table.
pub struct RateLimiter<K: Hash + Eq + Clone> {
    quota: Quota,
    limit: u32,
    /// The time one request's worth of the bucket takes to refill.
    period: Duration,
    max_keys: usize,
    table: RwLock<Arc<Table<K>>>,
    /// When the table was last pruned, in milliseconds since `epoch` (pruning is a walk of the
    /// whole table: at most once a second).
    last_prune: AtomicU64,
    epoch: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(rate: Rate, max_keys: usize) -> Self {
        let quota = Quota::per_second(rate.per_second).allow_burst(rate.burst);
        let period = Duration::from_secs(1) / rate.per_second.get();
        Self::with_quota(quota, rate.burst.get(), period, max_keys)
    }

    /// `limit` requests per `interval`, all of them at once if the bucket is full (Vault's
    /// rate limit quotas: `rate` per `interval`). `None` when the interval is zero.
    pub fn per_interval(limit: NonZeroU32, interval: Duration, max_keys: usize) -> Option<Self> {
        let period = interval / limit.get();
        let quota = Quota::with_period(period)?.allow_burst(limit);
        Some(Self::with_quota(quota, limit.get(), period, max_keys))
    }

    fn with_quota(quota: Quota, limit: u32, period: Duration, max_keys: usize) -> Self {
        Self {
            quota,
            limit,
            period,
            max_keys: max_keys.max(1),
            table: RwLock::new(Arc::new(Self::table(quota))),
            last_prune: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn table(quota: Quota) -> Table<K> {
        governor::RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>()
    }

    /// Whether one more request for `key` is allowed now (and counts it if so).
    pub fn check(&self, key: &K) -> bool {
        self.take(key).allowed
    }

    /// Counts one more request for `key` if it is allowed now, and says how full the
    /// bucket is.
    pub fn take(&self, key: &K) -> Take {
        let table = self.table.read().clone();
        if table.len() >= self.max_keys {
            self.prune(&table);
        }
        let table = self.table.read().clone();
        match table.check_key(key) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity().min(self.limit);
                Take {
                    allowed: true,
                    limit: self.limit,
                    remaining,
                    reset: self.period * (self.limit - remaining),
                }
            }
            Err(not_until) => Take {
                allowed: false,
                limit: self.limit,
                remaining: 0,
                reset: not_until.wait_time_from(table.clock().now()),
            },
        }
    }

    /// The number of keys remembered.
    pub fn len(&self) -> usize {
        self.table.read().len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room in a full table: forgets the keys whose bucket is full again (a walk of the
    /// whole table, so at most once a second), and if the table is still full, or was pruned
    /// less than a second ago, starts it over.
    fn prune(&self, table: &Arc<Table<K>>) {
        let now = u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let last = self.last_prune.load(Ordering::Relaxed);
        let may_walk = last == 0 || now.saturating_sub(last) >= 1000;
        if may_walk
            && self
                .last_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            table.retain_recent();
            table.shrink_to_fit();
            if table.len() < self.max_keys {
                return;
            }
            tracing::warn!(
                keys = table.len(),
                "request rate limit table full of active keys: starting it over"
            );
        }
        let mut current = self.table.write();
        if Arc::ptr_eq(&current, table) {
            *current = Arc::new(Self::table(self.quota));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn rate(per_second: u32, burst: u32) -> Rate {
        Rate {
            per_second: NonZeroU32::new(per_second).unwrap(),
            burst: NonZeroU32::new(burst).unwrap(),
        }
    }

    #[test]
    fn allows_the_burst_then_refuses() {
        let l = RateLimiter::new(rate(1, 3), 10);
        assert!((0..3).all(|_| l.check(&"a")));
        assert!(!l.check(&"a"));
        // Another key has its own bucket.
        assert!(l.check(&"b"));
    }

    #[test]
    fn take_reports_the_bucket() {
        let l = RateLimiter::per_interval(NonZeroU32::new(2).unwrap(), Duration::from_secs(10), 10).unwrap();
        let first = l.take(&"a");
        assert_eq!((first.allowed, first.limit, first.remaining), (true, 2, 1));
        assert_eq!(first.reset, Duration::from_secs(5));
        let second = l.take(&"a");
        assert_eq!((second.allowed, second.remaining), (true, 0));
        let third = l.take(&"a");
        assert!(!third.allowed);
        assert!(
            third.reset > Duration::from_secs(4) && third.reset <= Duration::from_secs(5),
            "{third:?}"
        );
    }

    #[test]
    fn the_table_stays_bounded() {
        let l = RateLimiter::new(rate(1, 1), 100);
        for i in 0..10_000u32 {
            l.check(&i);
        }
        assert!(l.len() <= 100, "{} keys remembered", l.len());
    }
}
