//! Vault's rate limit quotas (`sys/quotas/rate-limit/:name`, `sys/quotas/config`): the rules,
//! their records behind the barrier, and the in-memory table the request guard asks on every
//! request.
//!
//! A rule limits each client IP address to `rate` requests per `interval` on the paths it
//! covers: every path (an empty `path`, the global rule), a mount (`sys/`), one path below a
//! mount (`sys/key-status`) or, with a trailing `*`, the paths that start with it. The most
//! specific rule applies, as in Vault: an exact path, then the longest glob, then the mount,
//! then the global rule (there is one namespace, the root, so namespace rules are the global
//! one). A client over a rule with a `block_interval` is refused everything that rule covers
//! for that long. Paths on the exempt list (Vault's default: health, seal status, unseal,
//! root and recovery token generation) are never limited. AWS requests have no Vault path: the
//! global rule applies to them, per client IP too, so one limit covers both APIs.
//!
//! Rules live at `sys/quotas/rate-limit/<name>` and the configuration at `sys/quotas/config`
//! in the core's `sys` view; they are loaded at unseal and forgotten at seal, and every write
//! goes to storage first, then replaces the in-memory table (counting starts over for the rule
//! written, as Vault's does).

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_crypto::SecretBytes;
use coffer_storage::DynStorage;
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::limits::{DEFAULT_MAX_KEYS, RateLimiter};

/// Vault's default exempt paths (`defaultExemptPaths` in Vault's `vault/quotas/quotas.go`).
pub const DEFAULT_EXEMPT_PATHS: [&str; 7] = [
    "sys/generate-recovery-token/attempt",
    "sys/generate-recovery-token/update",
    "sys/generate-root/attempt",
    "sys/generate-root/update",
    "sys/health",
    "sys/seal-status",
    "sys/unseal",
];

/// The mounts a quota path may name. Coffer's Vault side serves only the system backend so
/// far; a path under any other mount is refused as Vault refuses a mount that does not exist.
const MOUNTS: [&str; 1] = ["sys/"];

/// A rate limit quota: as written (`POST sys/quotas/rate-limit/:name`, parsed from the wire)
/// and as read back (`GET`).
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimitQuota {
    pub name: String,
    /// Written: a mount and a path below it, or empty (global). Read back: as Vault shows it
    /// (`""`, `sys/`, `sys/key-status`).
    pub path: String,
    pub role: String,
    pub rate: f64,
    /// Zero, written, means Vault's default, one second.
    pub interval: Duration,
    pub block_interval: Duration,
    /// `None`, written: Vault's default (true for the global rule, false otherwise). Always
    /// set when read back.
    pub inheritable: Option<bool>,
}

/// `sys/quotas/config`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaConfig {
    pub enable_rate_limit_audit_logging: bool,
    pub enable_rate_limit_response_headers: bool,
    pub rate_limit_exempt_paths: Vec<String>,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            enable_rate_limit_audit_logging: false,
            enable_rate_limit_response_headers: false,
            rate_limit_exempt_paths: DEFAULT_EXEMPT_PATHS.iter().map(|p| (*p).to_owned()).collect(),
        }
    }
}

/// What a request is, for the quotas.
#[derive(Clone, Copy, Debug)]
pub enum QuotaTarget<'a> {
    /// A Vault request, by its path without `/v1/` (`sys/key-status`).
    Vault(&'a str),
    /// An AWS request: only the global rule applies.
    Aws,
}

/// The decision of the rule that applied to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaDecision {
    pub allowed: bool,
    /// The rule's name.
    pub quota: String,
    /// Vault's `X-Ratelimit-*` and (refused) `Retry-After` headers, when
    /// `enable_rate_limit_response_headers` is on.
    pub headers: Option<RateLimitHeaders>,
    /// Whether a refusal is to be audited (`enable_rate_limit_audit_logging`).
    pub audit: bool,
}

/// The values of Vault's rate limit response headers, in whole seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimitHeaders {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
    /// Only on a refusal.
    pub retry_after_secs: Option<u64>,
}

/// The stored form of a rule (`sys/quotas/rate-limit/<name>`), JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredQuota {
    name: String,
    /// `""` (global) or one of [`MOUNTS`].
    mount: String,
    /// The path below the mount, without a trailing `/`; may end in `*`.
    suffix: String,
    rate: f64,
    interval_ms: u64,
    block_interval_ms: u64,
    inheritable: bool,
}

/// The stored form of the configuration (`sys/quotas/config`), JSON. `exempt_paths` is `None`
/// until an operator writes the configuration: Vault's default list applies until then.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct StoredConfig {
    audit_logging: bool,
    response_headers: bool,
    exempt_paths: Option<Vec<String>>,
}

/// One rule in memory: its record and its counters.
struct Rule {
    stored: StoredQuota,
    limiter: RateLimiter<IpAddr>,
    /// Clients refused by a rule with a block interval, and since when.
    blocked: Mutex<HashMap<IpAddr, Instant>>,
}

/// What the request path reads: the rules and the configuration, replaced whole on a change.
#[derive(Default)]
struct Table {
    rules: BTreeMap<String, Arc<Rule>>,
    config: QuotaConfig,
}

/// The rate limit quotas of an unsealed core.
#[derive(Default)]
pub(crate) struct Quotas {
    table: RwLock<Arc<Table>>,
    /// One change at a time: storage first, then the table.
    writing: tokio::sync::Mutex<()>,
}

impl Quotas {
    /// Reads the rules and the configuration from storage (at unseal). A record that does not
    /// decode is reported and skipped: a damaged quota must not keep an operator out.
    pub(crate) async fn load(&self, sys: &DynStorage) -> Result<(), CoreError> {
        let _writing = self.writing.lock().await;
        let config = match sys.get(CONFIG_KEY).await? {
            Some(raw) => match serde_json::from_slice::<StoredConfig>(raw.expose()) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "the rate limit quota configuration does not decode: using the defaults");
                    StoredConfig::default()
                }
            },
            None => StoredConfig::default(),
        };
        let mut rules = BTreeMap::new();
        for key in sys.list(RULES_PREFIX).await? {
            let Some(raw) = sys.get(&format!("{RULES_PREFIX}{key}")).await? else {
                continue;
            };
            match serde_json::from_slice::<StoredQuota>(raw.expose()).map_err(|e| e.to_string()) {
                Ok(stored) => match Rule::new(stored) {
                    Some(rule) => {
                        rules.insert(rule.stored.name.clone(), Arc::new(rule));
                    }
                    None => tracing::error!(quota = %key, "a stored rate limit quota is invalid: skipped"),
                },
                Err(e) => {
                    tracing::error!(quota = %key, error = %e, "a stored rate limit quota does not decode: skipped")
                }
            }
        }
        if !rules.is_empty() {
            tracing::info!(quotas = rules.len(), "rate limit quotas loaded");
        }
        *self.table.write() = Arc::new(Table {
            rules,
            config: config.into_config(),
        });
        Ok(())
    }

    /// Forgets every rule (at seal): nothing of the barrier's stays in memory.
    pub(crate) fn clear(&self) {
        *self.table.write() = Arc::new(Table::default());
    }

    /// Creates or replaces a rule.
    pub(crate) async fn write(&self, sys: &DynStorage, input: RateLimitQuota) -> Result<(), CoreError> {
        let stored = validate(input)?;
        let _writing = self.writing.lock().await;
        let table = self.table.read().clone();
        if let Some(other) = table.rules.values().find(|r| {
            r.stored.mount == stored.mount && r.stored.suffix == stored.suffix && r.stored.name != stored.name
        }) {
            return Err(CoreError::BadRequest(format!(
                "quota rule with similar properties exists under the name {}",
                go_quote(&other.stored.name)
            )));
        }
        let bytes = serde_json::to_vec(&stored).map_err(|e| CoreError::Internal(e.to_string()))?;
        let rule = Rule::new(stored.clone()).ok_or_else(|| CoreError::BadRequest("'rate' is invalid".into()))?;
        sys.put(&format!("{RULES_PREFIX}{}", stored.name), SecretBytes::new(bytes))
            .await?;
        let mut rules = table.rules.clone();
        rules.insert(stored.name, Arc::new(rule));
        *self.table.write() = Arc::new(Table {
            rules,
            config: table.config.clone(),
        });
        Ok(())
    }

    /// Deletes a rule (nothing happens if there is none by that name, as in Vault).
    pub(crate) async fn delete(&self, sys: &DynStorage, name: &str) -> Result<(), CoreError> {
        let _writing = self.writing.lock().await;
        sys.delete(&format!("{RULES_PREFIX}{name}")).await?;
        let table = self.table.read().clone();
        let mut rules = table.rules.clone();
        if rules.remove(name).is_some() {
            *self.table.write() = Arc::new(Table {
                rules,
                config: table.config.clone(),
            });
        }
        Ok(())
    }

    /// A rule, by name.
    pub(crate) fn read(&self, name: &str) -> Option<RateLimitQuota> {
        self.table.read().rules.get(name).map(|r| r.stored.view())
    }

    /// Every rule's name, sorted.
    pub(crate) fn names(&self) -> Vec<String> {
        self.table.read().rules.keys().cloned().collect()
    }

    pub(crate) fn config(&self) -> QuotaConfig {
        self.table.read().config.clone()
    }

    /// Replaces the configuration (every field: an absent one is false or empty, as in Vault).
    pub(crate) async fn write_config(&self, sys: &DynStorage, config: QuotaConfig) -> Result<(), CoreError> {
        let _writing = self.writing.lock().await;
        let stored = StoredConfig {
            audit_logging: config.enable_rate_limit_audit_logging,
            response_headers: config.enable_rate_limit_response_headers,
            exempt_paths: Some(config.rate_limit_exempt_paths),
        };
        let bytes = serde_json::to_vec(&stored).map_err(|e| CoreError::Internal(e.to_string()))?;
        sys.put(CONFIG_KEY, SecretBytes::new(bytes)).await?;
        let table = self.table.read().clone();
        *self.table.write() = Arc::new(Table {
            rules: table.rules.clone(),
            config: stored.into_config(),
        });
        Ok(())
    }

    /// Counts a request against the rule that applies to it; `None` when none does (no rule,
    /// or an exempt path).
    pub(crate) fn apply(&self, target: QuotaTarget<'_>, client: IpAddr) -> Option<QuotaDecision> {
        let table = self.table.read().clone();
        if table.rules.is_empty() {
            return None;
        }
        if let QuotaTarget::Vault(path) = target
            && is_exempt(&table.config.rate_limit_exempt_paths, path)
        {
            return None;
        }
        let rule = matching_rule(&table.rules, target)?;
        let (allowed, headers) = rule.take(client);
        Some(QuotaDecision {
            allowed,
            quota: rule.stored.name.clone(),
            headers: table.config.enable_rate_limit_response_headers.then_some(headers),
            audit: table.config.enable_rate_limit_audit_logging,
        })
    }
}

const CONFIG_KEY: &str = "quotas/config";
const RULES_PREFIX: &str = "quotas/rate-limit/";

impl StoredConfig {
    fn into_config(self) -> QuotaConfig {
        QuotaConfig {
            enable_rate_limit_audit_logging: self.audit_logging,
            enable_rate_limit_response_headers: self.response_headers,
            rate_limit_exempt_paths: self
                .exempt_paths
                .unwrap_or_else(|| QuotaConfig::default().rate_limit_exempt_paths),
        }
    }
}

impl StoredQuota {
    fn view(&self) -> RateLimitQuota {
        RateLimitQuota {
            name: self.name.clone(),
            path: format!("{}{}", self.mount, self.suffix),
            role: String::new(),
            rate: self.rate,
            interval: Duration::from_millis(self.interval_ms),
            block_interval: Duration::from_millis(self.block_interval_ms),
            inheritable: Some(self.inheritable),
        }
    }
}

impl Rule {
    /// `None` when the record's numbers make no limiter (only a damaged record).
    fn new(stored: StoredQuota) -> Option<Self> {
        let limit = NonZeroU32::new(tokens(stored.rate)?)?;
        let limiter = RateLimiter::per_interval(limit, Duration::from_millis(stored.interval_ms), DEFAULT_MAX_KEYS)?;
        Some(Self {
            stored,
            limiter,
            blocked: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one request from `client`: whether it is allowed, and the headers' values.
    fn take(&self, client: IpAddr) -> (bool, RateLimitHeaders) {
        let block = Duration::from_millis(self.stored.block_interval_ms);
        if !block.is_zero() {
            let mut blocked = self.blocked.lock();
            if let Some(since) = blocked.get(&client) {
                let left = block.saturating_sub(since.elapsed());
                if !left.is_zero() {
                    let wait = ceil_secs(left);
                    return (
                        false,
                        RateLimitHeaders {
                            limit: self.limiter_limit(),
                            remaining: 0,
                            reset_secs: wait,
                            retry_after_secs: Some(wait),
                        },
                    );
                }
                blocked.remove(&client);
            }
        }
        let take = self.limiter.take(&client);
        let mut headers = RateLimitHeaders {
            limit: take.limit,
            remaining: take.remaining,
            reset_secs: ceil_secs(take.reset),
            retry_after_secs: None,
        };
        if !take.allowed {
            headers.retry_after_secs = Some(headers.reset_secs.max(1));
            if !block.is_zero() {
                let mut blocked = self.blocked.lock();
                if blocked.len() >= DEFAULT_MAX_KEYS {
                    blocked.retain(|_, since| since.elapsed() < block);
                    if blocked.len() >= DEFAULT_MAX_KEYS {
                        blocked.clear();
                    }
                }
                blocked.insert(client, Instant::now());
                headers.retry_after_secs = Some(ceil_secs(block));
            }
        }
        (take.allowed, headers)
    }

    fn limiter_limit(&self) -> u32 {
        tokens(self.stored.rate).unwrap_or(1)
    }
}

/// Requests per interval: Vault rounds the rate to a whole number of tokens.
fn tokens(rate: f64) -> Option<u32> {
    if !rate.is_finite() || rate <= 0.0 {
        return None;
    }
    let rounded = rate.round().max(1.0);
    (rounded <= f64::from(u32::MAX)).then_some(rounded as u32)
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Checks a rule as Vault's `sys/quotas/rate-limit` handler does, with its messages, and gives
/// its stored form.
fn validate(input: RateLimitQuota) -> Result<StoredQuota, CoreError> {
    let bad = |m: String| Err(CoreError::BadRequest(m));
    if tokens(input.rate).is_none() {
        return bad("'rate' is invalid".into());
    }
    let interval = if input.interval.is_zero() {
        Duration::from_secs(1)
    } else {
        input.interval
    };
    // Vault's path handling: a trailing `/` added, leading ones removed; then the namespace
    // (only the root here) and the mount the path is under.
    let mut path = input.path.trim_start_matches('/').to_owned();
    if !path.is_empty() && !path.ends_with('/') {
        path.push('/');
    }
    let (mount, suffix) = if path.is_empty() {
        (String::new(), String::new())
    } else {
        let Some(mount) = MOUNTS.iter().find(|m| path.starts_with(**m)) else {
            return bad(format!("invalid mount path {}", go_quote(&path)));
        };
        let suffix = path[mount.len()..].trim_end_matches('/').to_owned();
        ((*mount).to_owned(), suffix)
    };
    if !input.role.is_empty() {
        if !suffix.is_empty() {
            return bad("Quotas cannot contain both a path suffix and a role. If a role is provided, path must be a valid auth mount with a concept of roles".into());
        }
        return bad(format!(
            "Mount path {} is not a valid auth method and therefore unsuitable for use with role-based quotas",
            go_quote(&mount)
        ));
    }
    let inheritable = input.inheritable.unwrap_or(mount.is_empty());
    Ok(StoredQuota {
        name: input.name,
        mount,
        suffix,
        rate: input.rate,
        interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        block_interval_ms: u64::try_from(input.block_interval.as_millis()).unwrap_or(u64::MAX),
        inheritable,
    })
}

/// Whether Vault's exempt list covers `path`: the longest entry that starts it decides (an
/// entry is a string prefix; a trailing `*` changes nothing; a leading `!` makes it an
/// exception), as Vault's path manager does.
fn is_exempt(exempt: &[String], path: &str) -> bool {
    exempt
        .iter()
        .filter_map(|entry| {
            let (exception, prefix) = match entry.strip_prefix('!') {
                Some(rest) => (true, rest),
                None => (false, entry.as_str()),
            };
            let prefix = prefix.strip_suffix('*').unwrap_or(prefix);
            (!prefix.is_empty() && path.starts_with(prefix)).then_some((prefix.len(), exception))
        })
        .max_by_key(|(len, _)| *len)
        .is_some_and(|(_, exception)| !exception)
}

/// The most specific rule for a request: the exact path below its mount, then the longest
/// glob, then the mount, then the global rule (Vault's `queryQuota` order for the root
/// namespace, without roles).
fn matching_rule(rules: &BTreeMap<String, Arc<Rule>>, target: QuotaTarget<'_>) -> Option<Arc<Rule>> {
    let (mount, suffix) = match target {
        QuotaTarget::Aws => ("", ""),
        QuotaTarget::Vault(path) => match MOUNTS
            .iter()
            .find(|m| path.starts_with(**m) || path == m.trim_end_matches('/'))
        {
            Some(m) => (*m, path.get(m.len()..).unwrap_or("").trim_end_matches('/')),
            None => ("", ""),
        },
    };
    let mut best: Option<((u8, usize), &Arc<Rule>)> = None;
    for rule in rules.values() {
        let s = &rule.stored;
        let rank = if s.mount.is_empty() {
            (0, 0)
        } else if s.mount != mount {
            continue;
        } else if s.suffix.is_empty() {
            (1, 0)
        } else if let Some(prefix) = s.suffix.strip_suffix('*') {
            if !suffix.starts_with(prefix) {
                continue;
            }
            (2, prefix.len())
        } else if s.suffix == suffix {
            (3, 0)
        } else {
            continue;
        };
        if best.as_ref().is_none_or(|(r, _)| rank > *r) {
            best = Some((rank, rule));
        }
    }
    best.map(|(_, rule)| rule.clone())
}

/// A string quoted as Go's `%q` does for printable ASCII.
fn go_quote(s: &str) -> String {
    format!("{s:?}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;
