//! The error every AWS-style engine returns. The AWS front end turns it into the wire form
//! (`__type`, message, HTTP status) with one exhaustive `match`.

use std::fmt;

/// Every AWS error code Coffer's engines can return, across services. The variant name is
/// the `__type` on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AwsErrorCode {
    // Shared by all awsJson services.
    /// Body is not JSON, or a member has the wrong JSON type.
    SerializationException,
    /// A constraint violation (length, pattern, range, enum, missing required member).
    ValidationException,
    /// The `X-Amz-Target` names an operation the service does not have.
    UnknownOperationException,
    AccessDeniedException,
    /// Lambda (rotation functions): a function of that name exists (409).
    ResourceConflictException,
    /// Lambda (rotation functions): a parameter is not valid (400).
    InvalidParameterValueException,
    LimitExceededException,
    MalformedPolicyDocumentException,
    // Secrets Manager.
    /// Unexpected server failure; never used for client mistakes.
    InternalServiceError,
    ResourceNotFoundException,
    InvalidParameterException,
    InvalidRequestException,
    ResourceExistsException,
    PublicPolicyException,
    PreconditionNotMetException,
    EncryptionFailure,
    DecryptionFailure,
    InvalidNextTokenException,
    // KMS.
    NotFoundException,
    DisabledException,
    KMSInvalidStateException,
    InvalidCiphertextException,
    IncorrectKeyException,
    InvalidKeyUsageException,
    InvalidMarkerException,
    AlreadyExistsException,
    InvalidAliasNameException,
    NotAuthorizedException,
    TagException,
    UnsupportedOperationException,
    InvalidGrantTokenException,
    InvalidGrantIdException,
    KMSInvalidSignatureException,
    KMSInvalidMacException,
    DryRunOperationException,
    InvalidArnException,
    ConflictException,
    IncorrectKeyMaterialException,
    KMSInternalException,
    KeyUnavailableException,
    DependencyTimeoutException,
    // SSM Parameter Store.
    ParameterNotFound,
    ParameterAlreadyExists,
    ParameterLimitExceeded,
    ParameterMaxVersionLimitExceeded,
    ParameterVersionNotFound,
    ParameterVersionLabelLimitExceeded,
    ParameterPatternMismatchException,
    UnsupportedParameterType,
    InvalidKeyId,
    InvalidAllowedPatternException,
    HierarchyLevelLimitExceededException,
    HierarchyTypeMismatchException,
    InvalidFilterKey,
    InvalidFilterOption,
    InvalidFilterValue,
    InvalidNextToken,
    InvalidResourceId,
    InvalidResourceType,
    TooManyTagsError,
    TooManyUpdates,
    InvalidPolicyTypeException,
    InvalidPolicyAttributeException,
    IncompatiblePolicyException,
    PoliciesLimitExceededException,
    InvalidDocument,
    InvalidTypeNameException,
    InternalServerError,
    // CloudTrail.
    InvalidLookupAttributesException,
    InvalidTimeRangeException,
    InvalidMaxResultsException,
    InvalidEventCategoryException,
    // IAM and STS (the AWS Query protocol: `<Error><Code>` is the name, statuses per
    // `status_query`).
    /// IAM: the named user, role, group, policy, version or access key does not exist (404).
    NoSuchEntity,
    /// IAM: an entity of that name already exists (409).
    EntityAlreadyExists,
    /// IAM: the entity still has dependents (keys, policies, members, versions) (409).
    DeleteConflict,
    /// IAM's spelling of a quota error (409); the JSON services use `LimitExceededException`.
    LimitExceeded,
    /// IAM and STS: the policy document is not valid (400).
    MalformedPolicyDocument,
    /// IAM and STS: a parameter fails its constraints (400).
    ValidationError,
    /// IAM: an input is not valid in this combination (400).
    InvalidInput,
    /// STS/IAM query-protocol access denial (403).
    AccessDenied,
    /// STS: the session token has expired (400).
    ExpiredToken,
    /// The JSON services' name for an expired session token (400).
    ExpiredTokenException,
    /// STS: STS is not activated in the requested region (403).
    RegionDisabledException,
    /// STS: the session policy and tags are too large (400).
    PackedPolicyTooLarge,
    /// Query protocol: the `Action` is not an operation of the service (400).
    InvalidAction,
    /// IAM: an unexpected server failure (500).
    ServiceFailure,
}

impl AwsErrorCode {
    /// The `__type` string on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SerializationException => "SerializationException",
            Self::ValidationException => "ValidationException",
            Self::UnknownOperationException => "UnknownOperationException",
            Self::AccessDeniedException => "AccessDeniedException",
            Self::ResourceConflictException => "ResourceConflictException",
            Self::InvalidParameterValueException => "InvalidParameterValueException",
            Self::LimitExceededException => "LimitExceededException",
            Self::MalformedPolicyDocumentException => "MalformedPolicyDocumentException",
            Self::InternalServiceError => "InternalServiceError",
            Self::ResourceNotFoundException => "ResourceNotFoundException",
            Self::InvalidParameterException => "InvalidParameterException",
            Self::InvalidRequestException => "InvalidRequestException",
            Self::ResourceExistsException => "ResourceExistsException",
            Self::PublicPolicyException => "PublicPolicyException",
            Self::PreconditionNotMetException => "PreconditionNotMetException",
            Self::EncryptionFailure => "EncryptionFailure",
            Self::DecryptionFailure => "DecryptionFailure",
            Self::InvalidNextTokenException => "InvalidNextTokenException",
            Self::NotFoundException => "NotFoundException",
            Self::DisabledException => "DisabledException",
            Self::KMSInvalidStateException => "KMSInvalidStateException",
            Self::InvalidCiphertextException => "InvalidCiphertextException",
            Self::IncorrectKeyException => "IncorrectKeyException",
            Self::InvalidKeyUsageException => "InvalidKeyUsageException",
            Self::InvalidMarkerException => "InvalidMarkerException",
            Self::AlreadyExistsException => "AlreadyExistsException",
            Self::InvalidAliasNameException => "InvalidAliasNameException",
            Self::NotAuthorizedException => "NotAuthorizedException",
            Self::TagException => "TagException",
            Self::UnsupportedOperationException => "UnsupportedOperationException",
            Self::InvalidGrantTokenException => "InvalidGrantTokenException",
            Self::InvalidGrantIdException => "InvalidGrantIdException",
            Self::KMSInvalidSignatureException => "KMSInvalidSignatureException",
            Self::KMSInvalidMacException => "KMSInvalidMacException",
            Self::DryRunOperationException => "DryRunOperationException",
            Self::InvalidArnException => "InvalidArnException",
            Self::ConflictException => "ConflictException",
            Self::IncorrectKeyMaterialException => "IncorrectKeyMaterialException",
            Self::KMSInternalException => "KMSInternalException",
            Self::KeyUnavailableException => "KeyUnavailableException",
            Self::DependencyTimeoutException => "DependencyTimeoutException",
            Self::ParameterNotFound => "ParameterNotFound",
            Self::ParameterAlreadyExists => "ParameterAlreadyExists",
            Self::ParameterLimitExceeded => "ParameterLimitExceeded",
            Self::ParameterMaxVersionLimitExceeded => "ParameterMaxVersionLimitExceeded",
            Self::ParameterVersionNotFound => "ParameterVersionNotFound",
            Self::ParameterVersionLabelLimitExceeded => "ParameterVersionLabelLimitExceeded",
            Self::ParameterPatternMismatchException => "ParameterPatternMismatchException",
            Self::UnsupportedParameterType => "UnsupportedParameterType",
            Self::InvalidKeyId => "InvalidKeyId",
            Self::InvalidAllowedPatternException => "InvalidAllowedPatternException",
            Self::HierarchyLevelLimitExceededException => "HierarchyLevelLimitExceededException",
            Self::HierarchyTypeMismatchException => "HierarchyTypeMismatchException",
            Self::InvalidFilterKey => "InvalidFilterKey",
            Self::InvalidFilterOption => "InvalidFilterOption",
            Self::InvalidFilterValue => "InvalidFilterValue",
            Self::InvalidNextToken => "InvalidNextToken",
            Self::InvalidResourceId => "InvalidResourceId",
            Self::InvalidResourceType => "InvalidResourceType",
            Self::TooManyTagsError => "TooManyTagsError",
            Self::TooManyUpdates => "TooManyUpdates",
            Self::InvalidPolicyTypeException => "InvalidPolicyTypeException",
            Self::InvalidPolicyAttributeException => "InvalidPolicyAttributeException",
            Self::IncompatiblePolicyException => "IncompatiblePolicyException",
            Self::PoliciesLimitExceededException => "PoliciesLimitExceededException",
            Self::InvalidDocument => "InvalidDocument",
            Self::InvalidTypeNameException => "InvalidTypeNameException",
            Self::InternalServerError => "InternalServerError",
            Self::InvalidLookupAttributesException => "InvalidLookupAttributesException",
            Self::InvalidTimeRangeException => "InvalidTimeRangeException",
            Self::InvalidMaxResultsException => "InvalidMaxResultsException",
            Self::InvalidEventCategoryException => "InvalidEventCategoryException",
            Self::NoSuchEntity => "NoSuchEntity",
            Self::EntityAlreadyExists => "EntityAlreadyExists",
            Self::DeleteConflict => "DeleteConflict",
            Self::LimitExceeded => "LimitExceeded",
            Self::MalformedPolicyDocument => "MalformedPolicyDocument",
            Self::ValidationError => "ValidationError",
            Self::InvalidInput => "InvalidInput",
            Self::AccessDenied => "AccessDenied",
            Self::ExpiredToken => "ExpiredToken",
            Self::ExpiredTokenException => "ExpiredTokenException",
            Self::RegionDisabledException => "RegionDisabledException",
            Self::PackedPolicyTooLarge => "PackedPolicyTooLarge",
            Self::InvalidAction => "InvalidAction",
            Self::ServiceFailure => "ServiceFailure",
        }
    }

    /// The HTTP status AWS sends: 400 for every client error, 500 for faults, 503 for KMS
    /// dependency timeouts (see reference/aws-api.md §1.6).
    pub fn status(self) -> u16 {
        match self {
            Self::InternalServiceError
            | Self::KMSInternalException
            | Self::KeyUnavailableException
            | Self::InternalServerError
            | Self::ServiceFailure => 500,
            Self::DependencyTimeoutException => 503,
            Self::NoSuchEntity => 404,
            Self::ResourceConflictException => 409,
            Self::EntityAlreadyExists | Self::DeleteConflict | Self::LimitExceeded => 409,
            Self::AccessDenied | Self::RegionDisabledException => 403,
            _ => 400,
        }
    }

    /// The HTTP status a Query-protocol service (IAM, STS) sends for this code. IAM's own
    /// codes carry their documented statuses (`NoSuchEntity` 404, `EntityAlreadyExists`,
    /// `DeleteConflict` and `LimitExceeded` 409); access denials are 403 there, where the
    /// JSON services answer `AccessDeniedException` with 400.
    pub fn status_query(self) -> u16 {
        match self {
            Self::AccessDeniedException => 403,
            other => other.status(),
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
