//! The seal configuration, its stored form, and the values the seal operations return.

use coffer_crypto::SecretString;
use serde::{Deserialize, Serialize};

use crate::BarrierError;

/// How the root key is split: `shares` unseal keys, any `threshold` of which unseal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealConfig {
    /// The number of unseal keys, `1..=255`.
    pub shares: u8,
    /// How many unseal keys are needed, `1..=shares`.
    pub threshold: u8,
}

impl SealConfig {
    /// A configuration with `1 <= threshold <= shares`, or [`BarrierError::InvalidConfig`].
    pub fn new(shares: u8, threshold: u8) -> Result<Self, BarrierError> {
        if threshold == 0 || shares < threshold {
            return Err(BarrierError::InvalidConfig(format!(
                "need 1 <= threshold <= shares <= 255, got {shares} shares and threshold {threshold}"
            )));
        }
        Ok(Self { shares, threshold })
    }

    /// The stored JSON form.
    pub(crate) fn to_json(self) -> Result<Vec<u8>, BarrierError> {
        let persisted = PersistedSealConfig {
            version: PERSIST_VERSION,
            kind: SHAMIR.to_string(),
            shares: self.shares,
            threshold: self.threshold,
        };
        serde_json::to_vec(&persisted).map_err(|e| BarrierError::InvalidConfig(e.to_string()))
    }

    /// Parses the stored JSON form; `path` names the record in errors.
    pub(crate) fn from_json(bytes: &[u8], path: &str) -> Result<Self, BarrierError> {
        let p: PersistedSealConfig =
            serde_json::from_slice(bytes).map_err(|_| BarrierError::Corrupt(path.to_string()))?;
        if p.version != PERSIST_VERSION || p.kind != SHAMIR {
            return Err(BarrierError::Corrupt(path.to_string()));
        }
        Self::new(p.shares, p.threshold).map_err(|_| BarrierError::Corrupt(path.to_string()))
    }
}

const PERSIST_VERSION: u32 = 1;
const SHAMIR: &str = "shamir";

/// The stored form of [`SealConfig`], versioned so that other seal types can be added.
#[derive(Serialize, Deserialize)]
struct PersistedSealConfig {
    version: u32,
    #[serde(rename = "type")]
    kind: String,
    shares: u8,
    threshold: u8,
}

/// What [`crate::Barrier::initialize`] hands to the operator, exactly once.
pub struct InitResult {
    /// The unseal keys, base64, in share order. Coffer keeps no copy.
    pub unseal_keys: Vec<SecretString>,
    /// The configuration the keys were made for.
    pub config: SealConfig,
}

/// The barrier's seal state, as `coffer status` and `sys/seal-status` report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealStatus {
    /// Whether a keyring and seal configuration exist.
    pub initialized: bool,
    /// Whether the barrier refuses data access.
    pub sealed: bool,
    /// The threshold: unseal keys needed (0 when not initialized).
    pub t: u8,
    /// The number of unseal keys that exist (0 when not initialized).
    pub n: u8,
    /// Unseal keys submitted so far towards the threshold.
    pub progress: u8,
    /// The active key term while unsealed.
    pub key_term: Option<u32>,
}
