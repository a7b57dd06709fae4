//! Cryptographic building blocks for Coffer.
//!
//! Everything here is a thin, audited wrapper over `aws-lc-rs` (AES-256-GCM, HMAC-SHA256,
//! SHA-256, the system RNG) and `vsss-rs` (Shamir secret sharing). Coffer writes no cipher of
//! its own. Secret material lives in [`SecretBytes`]/[`SecretString`], which zeroize on drop and
//! implement neither `Debug` nor `Display`, so a secret cannot reach a log by accident.

pub mod aead;
pub mod hash;
pub mod keyring;
pub mod random;
pub mod secret;
pub mod shamir;

pub use aead::Key256;
pub use keyring::Keyring;
pub use secret::{SecretBytes, SecretString};

/// Errors from the cryptographic layer. Messages never contain key or plaintext material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    /// Authentication failed: wrong key, wrong associated data, or tampered ciphertext.
    #[error("decryption failed: ciphertext or associated data is not authentic")]
    Decrypt,
    /// The input is too short or has an unknown version byte.
    #[error("malformed ciphertext")]
    Malformed,
    /// A keyring term that is not present.
    #[error("unknown key term {0}")]
    UnknownTerm(u32),
    /// Shamir split/combine parameters or shares are invalid.
    #[error("invalid key shares: {0}")]
    Shares(String),
    /// The system random number generator failed.
    #[error("random number generator failure")]
    Rng,
    /// A key of the wrong length.
    #[error("invalid key length")]
    KeyLength,
}
