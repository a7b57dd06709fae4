//! The security barrier: everything Coffer stores passes through here and leaves encrypted.
//!
//! [`Barrier`] sits between the plaintext [`coffer_storage::Storage`] API that the core and
//! the engines use and an untrusted [`coffer_storage::PhysicalBackend`] that only ever sees
//! ciphertext. It follows Vault's `barrier_aes_gcm.go` design, in our own code:
//!
//! * Data is encrypted with AES-256-GCM under the active key of a [`coffer_crypto::Keyring`].
//!   Every stored value is framed as `term (u32 BE) | version (u8) | nonce | ciphertext | tag`
//!   and the physical storage path is the associated data, so a value copied to another path
//!   does not decrypt. Reads pick the key by the term in the frame, so data written before a
//!   [`Barrier::rotate`] stays readable.
//! * The keyring itself is stored at `core/keyring`, encrypted under the root key (frame term
//!   0). The root key is never stored: [`Barrier::initialize`] splits it into Shamir shares
//!   (the unseal keys) and forgets it. The barrier stays sealed until enough unseal keys are
//!   submitted ([`Barrier::submit_unseal_key`]).
//! * The seal configuration (number of shares and threshold) is stored in plaintext at
//!   `core/seal-config`, so a sealed node can report how many keys it needs.
//! * While sealed, every `Storage` method returns `StorageError::Sealed`.
//!
//! Physical layout: the reserved `core/` namespace holds the barrier's own records, and every
//! key written through the `Storage` API is stored under `data/`. No `Storage` caller can
//! therefore name, read or overwrite the keyring or the seal configuration.

mod barrier;
mod format;
mod seal;

pub use barrier::Barrier;
pub use seal::{InitResult, SealConfig, SealStatus};

use coffer_crypto::CryptoError;
use coffer_storage::StorageError;

/// Errors of the barrier's seal, unseal and rotation operations. Messages carry no key
/// material and no stored value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BarrierError {
    /// `initialize` was called on a barrier that already has a keyring.
    #[error("coffer is already initialized")]
    AlreadyInitialized,
    /// Stored barrier data could not be decoded or authenticated.
    #[error("barrier data at {0} is corrupt or not authentic")]
    Corrupt(String),
    /// A cryptographic operation failed (for example the system RNG).
    #[error("barrier crypto error: {0}")]
    Crypto(CryptoError),
    /// The requested number of shares or threshold is out of range.
    #[error("invalid seal configuration: {0}")]
    InvalidConfig(String),
    /// One submitted unseal key is malformed or belongs to another seal configuration. The
    /// unseal progress is kept.
    #[error("invalid unseal key: {0}")]
    InvalidUnsealKey(CryptoError),
    /// The submitted unseal keys combined into a key that does not open the keyring. The
    /// unseal progress has been reset.
    #[error("unseal failed: the unseal keys were invalid; unseal progress has been reset")]
    InvalidUnsealKeys,
    /// A snapshot offered for restore is not one a barrier wrote (no keyring, no valid seal
    /// configuration, keys outside `core/` and `data/`). Nothing was changed.
    #[error("invalid snapshot: {0}")]
    InvalidSnapshot(String),
    /// The operation needs an initialized barrier.
    #[error("coffer is not initialized")]
    NotInitialized,
    /// The operation needs an unsealed barrier.
    #[error("coffer is sealed")]
    Sealed,
    /// The physical backend failed.
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for BarrierError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Sealed => BarrierError::Sealed,
            other => BarrierError::Storage(other),
        }
    }
}

impl From<CryptoError> for BarrierError {
    fn from(e: CryptoError) -> Self {
        BarrierError::Crypto(e)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod fuzz;
