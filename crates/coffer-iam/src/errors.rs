//! Constructors for the IAM and STS errors this engine returns, with AWS's messages.

use coffer_engines::{AwsError, AwsErrorCode};

pub(crate) fn validation(msg: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::ValidationError, msg)
}

pub(crate) fn no_such_entity(msg: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::NoSuchEntity, msg)
}

pub(crate) fn already_exists(msg: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::EntityAlreadyExists, msg)
}

pub(crate) fn delete_conflict(msg: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::DeleteConflict, msg)
}

pub(crate) fn limit_exceeded(msg: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::LimitExceeded, msg)
}

pub(crate) fn malformed_policy(msg: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::MalformedPolicyDocument, msg)
}

pub(crate) fn invalid_input(msg: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::InvalidInput, msg)
}

pub(crate) fn access_denied(msg: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::AccessDenied, msg)
}

/// A server-side failure (storage, a corrupt record). The message names no secret.
pub(crate) fn internal(msg: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::ServiceFailure, msg)
}

pub(crate) fn storage(e: coffer_storage::StorageError) -> AwsError {
    internal(e.to_string())
}
