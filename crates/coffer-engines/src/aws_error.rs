//! The error every AWS-style engine returns. The AWS front end turns it into the wire form
//! (`__type`, message, HTTP status) with one exhaustive `match`.

use std::fmt;

/// Every AWS error code Coffer's engines can return, across services.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AwsErrorCode {
    // Shared by all awsJson services.
    /// Body is not JSON, or a member has the wrong JSON type.
    SerializationException,
    /// A constraint violation (length, pattern, range, enum, missing required member).
    ValidationException,
    /// Unexpected server failure; never used for client mistakes.
    InternalServiceError,
    // Secrets Manager.
    ResourceNotFoundException,
    InvalidParameterException,
    InvalidRequestException,
    ResourceExistsException,
    LimitExceededException,
    MalformedPolicyDocumentException,
    PublicPolicyException,
    PreconditionNotMetException,
    EncryptionFailure,
    DecryptionFailure,
    InvalidNextTokenException,
    AccessDeniedException,
    /// The `X-Amz-Target` names an operation the service does not have.
    UnknownOperationException,
}

impl AwsErrorCode {
    /// The `__type` string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SerializationException => "SerializationException",
            Self::ValidationException => "ValidationException",
            Self::InternalServiceError => "InternalServiceError",
            Self::ResourceNotFoundException => "ResourceNotFoundException",
            Self::InvalidParameterException => "InvalidParameterException",
            Self::InvalidRequestException => "InvalidRequestException",
            Self::ResourceExistsException => "ResourceExistsException",
            Self::LimitExceededException => "LimitExceededException",
            Self::MalformedPolicyDocumentException => "MalformedPolicyDocumentException",
            Self::PublicPolicyException => "PublicPolicyException",
            Self::PreconditionNotMetException => "PreconditionNotMetException",
            Self::EncryptionFailure => "EncryptionFailure",
            Self::DecryptionFailure => "DecryptionFailure",
            Self::InvalidNextTokenException => "InvalidNextTokenException",
            Self::AccessDeniedException => "AccessDeniedException",
            Self::UnknownOperationException => "UnknownOperationException",
        }
    }

    /// The HTTP status AWS sends: 400 for every client error, 500 for faults
    /// (see reference/aws-api.md §1.6).
    pub fn status(self) -> u16 {
        match self {
            Self::InternalServiceError => 500,
            Self::SerializationException
            | Self::ValidationException
            | Self::ResourceNotFoundException
            | Self::InvalidParameterException
            | Self::InvalidRequestException
            | Self::ResourceExistsException
            | Self::LimitExceededException
            | Self::MalformedPolicyDocumentException
            | Self::PublicPolicyException
            | Self::PreconditionNotMetException
            | Self::EncryptionFailure
            | Self::DecryptionFailure
            | Self::InvalidNextTokenException
            | Self::AccessDeniedException
            | Self::UnknownOperationException => 400,
        }
    }
}

/// An AWS error: a code and a human-readable message. The message must never contain a
/// secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    pub code: AwsErrorCode,
    pub message: String,
}

impl AwsError {
    pub fn new(code: AwsErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Self::new(AwsErrorCode::ValidationException, message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new(AwsErrorCode::InvalidParameterException, message)
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(AwsErrorCode::InvalidRequestException, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(AwsErrorCode::ResourceNotFoundException, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(AwsErrorCode::InternalServiceError, message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::new(AwsErrorCode::SerializationException, message)
    }

    pub fn resource_exists(message: impl Into<String>) -> Self {
        Self::new(AwsErrorCode::ResourceExistsException, message)
    }

    pub fn limit_exceeded(message: impl Into<String>) -> Self {
        Self::new(AwsErrorCode::LimitExceededException, message)
    }

    pub fn unknown_operation(message: impl Into<String>) -> Self {
        Self::new(AwsErrorCode::UnknownOperationException, message)
    }
}

impl fmt::Display for AwsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for AwsError {}

impl From<coffer_storage::StorageError> for AwsError {
    fn from(e: coffer_storage::StorageError) -> Self {
        Self::internal(e.to_string())
    }
}
