//! The AWS JSON 1.1 wire form of responses and errors.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_core::{AwsErrorCode, CoreError};
use serde_json::{Value, json};

const CONTENT_TYPE: &str = "application/x-amz-json-1.1";

/// A fresh request id (a UUID), sent as `x-amzn-RequestId`.
pub fn request_id() -> String {
    coffer_crypto::random::uuid_v4().unwrap_or_else(|_| "00000000-0000-4000-8000-000000000000".to_string())
}

/// A 200 response with a JSON body.
pub fn json_response(body: &Value, request_id: &str) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    with_headers((StatusCode::OK, bytes).into_response(), request_id)
}

fn with_headers(mut resp: Response, request_id: &str) -> Response {
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-amzn-requestid", v);
    }
    resp
}

/// Which member carries the message. Secrets Manager's modeled errors use `Message`; the
/// authentication errors of the AWS front door and most SSM errors use `message`; some SSM
/// error shapes have no member at all.
#[derive(Clone, Copy)]
enum MessageKey {
    Upper,
    Lower,
    None,
}

/// The message member of an engine error, per its service's model (reference/aws-api.md §1.5).
fn message_key(code: AwsErrorCode) -> MessageKey {
    use AwsErrorCode as C;
    match code {
        C::SerializationException | C::ValidationException => MessageKey::Lower,
        // SSM: `message` except these four; the member-less shapes send none. InvalidFilterKey
        // has no modeled member either, but its text is what tells users which keys are valid
        // (and what moto's tests check), so it is sent as `message`.
        C::InternalServerError | C::TooManyUpdates | C::InvalidFilterValue | C::InvalidNextToken => MessageKey::Upper,
        C::InvalidResourceId | C::InvalidResourceType | C::TooManyTagsError => MessageKey::None,
        C::ParameterNotFound
        | C::ParameterAlreadyExists
        | C::ParameterLimitExceeded
        | C::ParameterMaxVersionLimitExceeded
        | C::ParameterVersionNotFound
        | C::ParameterVersionLabelLimitExceeded
        | C::ParameterPatternMismatchException
        | C::UnsupportedParameterType
        | C::InvalidKeyId
        | C::InvalidAllowedPatternException
        | C::HierarchyLevelLimitExceededException
        | C::HierarchyTypeMismatchException
        | C::InvalidFilterKey
        | C::InvalidFilterOption
        | C::InvalidPolicyTypeException
        | C::InvalidPolicyAttributeException
        | C::IncompatiblePolicyException
        | C::PoliciesLimitExceededException
        | C::InvalidDocument
        | C::InvalidTypeNameException => MessageKey::Lower,
        _ => MessageKey::Upper,
    }
}

/// An error in AWS's wire form.
pub struct AwsWireError {
    code: &'static str,
    message: String,
    status: StatusCode,
    key: MessageKey,
}

/// An error response with the given code, message and status.
pub fn error_response(code: &'static str, message: &str, status: StatusCode, request_id: &str) -> Response {
    AwsWireError {
        code,
        message: message.to_string(),
        status,
        key: MessageKey::Lower,
    }
    .into_response(request_id)
}

impl AwsWireError {
    /// The `__type` code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message (never a secret value).
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn into_response(self, request_id: &str) -> Response {
        let mut body = serde_json::Map::new();
        body.insert("__type".into(), Value::String(self.code.to_string()));
        match self.key {
            MessageKey::Upper => {
                body.insert("Message".into(), Value::String(self.message));
            }
            MessageKey::Lower => {
                body.insert("message".into(), Value::String(self.message));
            }
            MessageKey::None => {}
        }
        let bytes = serde_json::to_vec(&Value::Object(body)).unwrap_or_default();
        let mut resp = with_headers((self.status, bytes).into_response(), request_id);
        if let Ok(v) = HeaderValue::from_str(self.code) {
            resp.headers_mut().insert("x-amzn-errortype", v);
        }
        resp
    }

    fn front_door(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: StatusCode::BAD_REQUEST,
            key: MessageKey::Lower,
        }
    }

    pub fn from_sigv4(e: coffer_sigv4::SigV4Error) -> Self {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        Self {
            code: e.code(),
            message: e.message(),
            status,
            key: MessageKey::Lower,
        }
    }

    pub fn unknown_operation() -> Self {
        Self::front_door("UnknownOperationException", "")
    }

    /// `ThrottlingException` (HTTP 400, "Rate exceeded"): see `refuse.rs`.
    pub fn throttling() -> Self {
        Self::front_door("ThrottlingException", crate::THROTTLED_MESSAGE)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Self::front_door("SerializationException", message)
    }

    /// KMS's modeled errors carry their text in `message` (aws-api.md §1.5), unlike Secrets
    /// Manager's `Message`.
    pub fn for_service(mut self, service: coffer_core::AwsService) -> Self {
        if service == coffer_core::AwsService::Kms {
            self.key = MessageKey::Lower;
        }
        self
    }

    pub fn from_core(e: &CoreError) -> Self {
        match e {
            CoreError::Aws(a) => {
                let status = StatusCode::from_u16(a.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
                let key = message_key(a.code);
                Self {
                    code: a.code.as_str(),
                    message: a.message.clone(),
                    status,
                    key,
                }
            }
            CoreError::Sealed => Self {
                code: "ServiceUnavailableException",
                message: "Coffer is sealed: unseal it with `coffer operator unseal`".into(),
                status: StatusCode::SERVICE_UNAVAILABLE,
                key: MessageKey::Lower,
            },
            CoreError::NotInitialized => Self {
                code: "ServiceUnavailableException",
                message: "Coffer is not initialized: run `coffer operator init`".into(),
                status: StatusCode::SERVICE_UNAVAILABLE,
                key: MessageKey::Lower,
            },
            CoreError::PermissionDenied => Self::front_door("AccessDeniedException", "Access denied"),
            CoreError::BadRequest(m) => Self::front_door("ValidationException", m.clone()),
            CoreError::AlreadyInitialized | CoreError::DevOnly(_) => {
                Self::front_door("ValidationException", e.to_string())
            }
            CoreError::Storage(_) | CoreError::Internal(_) | CoreError::AuditFailed(_) => {
                tracing::error!(error = %e, "internal error serving an AWS request");
                Self {
                    code: "InternalServiceError",
                    message: "An internal error occurred.".into(),
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    key: MessageKey::Upper,
                }
            }
        }
    }
}

/// Parses the request body: a JSON object (an empty body counts as `{}`).
pub(crate) fn parse_body(body: &[u8]) -> Result<Value, AwsWireError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(AwsWireError::serialization(
            "Start of structure or map found where not expected.",
        )),
        Err(_) => Err(AwsWireError::serialization("Unable to parse the request body as JSON.")),
    }
}

#[cfg(test)]
mod fuzz;
