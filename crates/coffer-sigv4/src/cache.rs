//! Derivation and caching of SigV4 signing keys.
//!
//! A signing key depends only on (secret, date, region, service), so it changes once a day
//! per client. Deriving it costs four HMACs; the cache turns that into one map lookup.
//! Entries are keyed by access key id, scope and a keyed fingerprint of the secret, so a
//! rotated secret never matches a key derived from the old one. Derived keys are held in
//! zeroizing [`SecretBytes`]. The cache is bounded: when full it is cleared (keys are cheap
//! to re-derive and all of them roll over at midnight UTC anyway).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use coffer_crypto::SecretBytes;
use coffer_crypto::hash::hmac_sha256;
use parking_lot::Mutex;

use crate::auth::{Credential, TERMINATOR};

/// Default bound on the number of cached keys.
pub const DEFAULT_MAX_ENTRIES: usize = 10_000;

/// Derives `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
pub fn derive_signing_key(secret: &[u8], date: &str, region: &str, service: &str) -> SecretBytes {
    let mut seed = Vec::with_capacity(secret.len() + 4);
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret);
    let seed = SecretBytes::new(seed);
    let k_date = SecretBytes::from_slice(&hmac_sha256(seed.expose(), date.as_bytes()));
    let k_region = SecretBytes::from_slice(&hmac_sha256(k_date.expose(), region.as_bytes()));
    let k_service = SecretBytes::from_slice(&hmac_sha256(k_region.expose(), service.as_bytes()));
    SecretBytes::from_slice(&hmac_sha256(k_service.expose(), TERMINATOR.as_bytes()))
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct CacheKey {
    access_key_id: String,
    date: String,
    region: String,
    service: String,
    secret_fingerprint: [u8; 32],
}

/// A thread-safe, bounded cache of derived signing keys.
pub struct SigningKeyCache {
    /// Per-process random HMAC key for secret fingerprints, so the map never holds a plain
    /// hash of a secret.
    fingerprint_key: SecretBytes,
    entries: Mutex<HashMap<CacheKey, SecretBytes>>,
    max_entries: usize,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl Default for SigningKeyCache {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for SigningKeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKeyCache")
            .field("len", &self.len())
            .field("max_entries", &self.max_entries)
            .field("hits", &self.hits())
            .field("misses", &self.misses())
            .finish_non_exhaustive()
    }
}

impl SigningKeyCache {
    /// A cache holding at most [`DEFAULT_MAX_ENTRIES`] keys.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A cache holding at most `max_entries` keys (at least 1).
    pub fn with_max_entries(max_entries: usize) -> Self {
        // If the system RNG fails the fingerprint degrades to a fixed-key HMAC: still
        // correct, merely a deterministic function of the secret.
        let fingerprint_key = coffer_crypto::random::secret_bytes(32)
            .unwrap_or_else(|_| SecretBytes::from_slice(b"coffer-sigv4 signing key cache"));
        Self {
            fingerprint_key,
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// The signing key for `secret` and `credential`'s scope, derived on a miss.
    pub fn signing_key(&self, secret: &SecretBytes, credential: &Credential) -> SecretBytes {
        let key = CacheKey {
            access_key_id: credential.access_key_id.clone(),
            date: credential.date.clone(),
            region: credential.region.clone(),
            service: credential.service.clone(),
            secret_fingerprint: hmac_sha256(self.fingerprint_key.expose(), secret.expose()),
        };
        if let Some(found) = self.entries.lock().get(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return found.clone();
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let derived = derive_signing_key(
            secret.expose(),
            &credential.date,
            &credential.region,
            &credential.service,
        );
        let mut entries = self.entries.lock();
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert(key, derived.clone());
        derived
    }

    /// Number of cached keys.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every cached key (e.g. after an access key was revoked).
    pub fn clear(&self) {
        self.entries.lock().clear();
    }

    /// Lookups answered from the cache.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Lookups that had to derive a key.
    pub fn misses(&self) -> u64 {
        self.misses.load(Ordering::Relaxed)
    }
}
