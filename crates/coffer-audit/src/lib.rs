//! Coffer's audit log: a tamper-evident record of every request that never holds a secret in clear.
//!
//! The pieces, in the order a request meets them:
//!
//! 1. [`AuditEvent`] ([`event`]): one request, allowed or denied, shaped like a CloudTrail event
//!    (`eventTime`, `eventSource`, `eventName`, `userIdentity`, `requestParameters`, ...).
//! 2. [`Redactor`] ([`redact`]): while the event is serialized, every sensitive value (secret
//!    strings, plaintexts, passwords, tokens) is replaced by `hmac-sha256:<hex>` under a
//!    per-device key. No device ever receives the clear value.
//! 3. The hash chain ([`chain`]): the serialized event gets a `"coffer"` member with its sequence
//!    number, the previous line's hash, its own hash and a MAC, so an edited, removed or
//!    reordered line is detected.
//! 4. [`AuditBroker`] ([`broker`]) fans each event out to every [`AuditDevice`] ([`device`]:
//!    [`FileDevice`] with size-based rotation, [`StdoutDevice`]) and **fails closed**: when no
//!    device records the event, [`AuditBroker::record`] (or [`AuditBroker::log`]) returns an
//!    error and the request must fail. Concurrent requests share one device write (group
//!    commit), and each still waits for its own line.
//! 5. The offline tools behind `coffer audit verify|search` and CloudTrail's `LookupEvents`:
//!    [`verify_files`] ([`verify`]), [`search()`] ([`mod@search`]) and [`lookup_events`] ([`lookup`]).
//!
//! Keys: each device has one [`DeviceKey`] (random, 32 bytes, stored by the server through the
//! barrier). Two keys are derived from it, so that handing an auditor the key that checks the
//! chain ([`ChainKey`]) does not also hand over the key that would let them test guesses against
//! the hashed secrets.

pub mod broker;
pub mod chain;
pub mod device;
pub mod event;
mod json;
pub mod lookup;
pub mod redact;
pub mod search;
pub mod verify;

use std::path::PathBuf;

use coffer_crypto::SecretBytes;
use coffer_crypto::hash::hmac_sha256;

pub use broker::{AuditBroker, LogReceipt, check_head};
pub use chain::{ChainHead, ChainKey};
pub use device::{AuditDevice, FailingDevice, FileDevice, MemoryDevice, StdoutDevice, WriteFailure};
pub use event::{
    AuditEvent, IdentityType, OPERATOR_EVENT_SOURCE, Outcome, Resource, SessionContext, SessionIssuer, UserIdentity,
    VAULT_EVENT_SOURCE, next_event_id,
};
pub use lookup::{
    Event, EventIndex, EventResource, LookupAttribute, LookupError, LookupErrorKind, LookupEventsRequest,
    LookupEventsResponse, lookup_events,
};
pub use redact::{Action, RedactionRule, RedactionRules, Redactor};
pub use search::{Filter, LoggedEvent, ResourceMatch, search};
pub use verify::{Problem, ProblemKind, VerifyOptions, VerifyReport, verify_files};

/// Errors from the audit subsystem. Messages name devices, files and line numbers, never a
/// logged value or key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// No device recorded the event: the request it describes must fail (fail closed).
    #[error("no audit device recorded the request ({failed} of {failed} failed): {first}")]
    NoDeviceRecorded {
        /// How many devices were tried.
        failed: usize,
        /// The first device's error (a device name and an I/O error, never a value), so
        /// the operator sees why (a full disk, a removed directory) where the request failed.
        first: String,
    },
    /// One device could not write.
    #[error("audit device {device}: {message}")]
    Device {
        /// The device's name.
        device: String,
        /// What went wrong (an I/O error kind or a short description).
        message: String,
    },
    /// Reading an audit file failed.
    #[error("read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line that is not a chained audit record.
    #[error("{path}:{line}: {reason}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The 1-based line number.
        line: u64,
        /// Why it could not be read.
        reason: String,
    },
    /// The event could not be serialized (a bug, not an input problem).
    #[error("audit event could not be serialized")]
    Serialize,
    /// The system random number generator failed.
    #[error("random number generator failure")]
    Rng,
    /// The recovered chain head is behind or differs from the head the server kept.
    #[error("audit device {device}: {message}")]
    HeadMismatch {
        /// The device's name.
        device: String,
        /// What differs.
        message: String,
    },
}

/// The per-device root key. Random, 32 bytes; the server stores it through the barrier (like
/// Vault's per-device salt). Neither `Debug` nor `Display`.
pub struct DeviceKey(SecretBytes);

impl DeviceKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, AuditError> {
        coffer_crypto::random::secret_bytes(32)
            .map(Self)
            .map_err(|_| AuditError::Rng)
    }

    /// Wraps stored key material (as read back through the barrier).
    pub fn from_secret(bytes: SecretBytes) -> Self {
        Self(bytes)
    }

    /// The key material, to store through the barrier.
    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// The key that HMACs sensitive values (`hmac-sha256:` strings and `sys/audit-hash`).
    pub fn redaction_key(&self) -> SecretBytes {
        SecretBytes::from_slice(&hmac_sha256(self.0.expose(), b"coffer-audit v1 redaction"))
    }

    /// The key that authenticates the hash chain. It can be given to an auditor for
    /// `coffer audit verify` without revealing the redaction key.
    pub fn chain_key(&self) -> ChainKey {
        ChainKey::new(SecretBytes::from_slice(&hmac_sha256(
            self.0.expose(),
            b"coffer-audit v1 chain",
        )))
    }

    /// The [`Redactor`] for this device under the default rules.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.redaction_key(), RedactionRules::default())
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(<redacted>)")
    }
}
