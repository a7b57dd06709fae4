//! Errors the core returns to the front ends.

use coffer_engines::AwsError;
use coffer_storage::StorageError;

/// What went wrong handling a request. Front ends map each variant to their wire form with an
/// exhaustive `match`.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    /// The barrier is sealed; no data request can be served.
    #[error("coffer is sealed")]
    Sealed,
    /// The server has not been initialized with `coffer operator init`.
    #[error("coffer is not initialized")]
    NotInitialized,
    /// `operator init` on an initialized server.
    #[error("coffer is already initialized")]
    AlreadyInitialized,
    /// A bad operator request (share counts, malformed unseal key).
    #[error("{0}")]
    BadRequest(String),
    /// Missing or unknown token, or the token may not do this.
    #[error("permission denied")]
    PermissionDenied,
    /// A dev-only feature used on a server that did not enable it.
    #[error("{0} is only available in dev mode with the flag that enables it")]
    DevOnly(&'static str),
    /// An AWS engine error, passed through to the AWS front end.
    #[error(transparent)]
    Aws(#[from] AwsError),
    /// No audit device recorded the request, or the devices could not be opened: the request
    /// fails (fail closed). The message names no value.
    #[error("audit failure: {0}")]
    AuditFailed(String),
    /// Storage failed; the message names no value.
    #[error("storage error: {0}")]
    Storage(String),
    /// Anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StorageError> for CoreError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Sealed => Self::Sealed,
            other => Self::Storage(other.to_string()),
        }
    }
}

impl From<coffer_crypto::CryptoError> for CoreError {
    fn from(e: coffer_crypto::CryptoError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<coffer_barrier::BarrierError> for CoreError {
    fn from(e: coffer_barrier::BarrierError) -> Self {
        use coffer_barrier::BarrierError as B;
        match e {
            B::Sealed => Self::Sealed,
            B::NotInitialized => Self::NotInitialized,
            B::AlreadyInitialized => Self::AlreadyInitialized,
            B::InvalidConfig(m) => Self::BadRequest(m),
            B::InvalidUnsealKey(_) | B::InvalidUnsealKeys | B::InvalidSnapshot(_) => Self::BadRequest(e.to_string()),
            B::Storage(s) => Self::from(s),
            other => Self::Internal(other.to_string()),
        }
    }
}
