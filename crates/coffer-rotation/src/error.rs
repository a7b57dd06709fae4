//! Errors from parsing `RotationRules`, with the AWS error code each maps to.

/// Which AWS error a [`ScheduleError`] is reported as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A constraint from the service model (range, length, pattern) failed.
    /// AWS checks these before the request reaches Secrets Manager and answers
    /// `ValidationException` with the `1 validation error detected: ...` text.
    Validation,
    /// The fields are well-formed but Secrets Manager rejects their meaning
    /// (both schedule fields set, bad rate/cron, window too long):
    /// `InvalidParameterException`.
    InvalidParameter,
}

impl ErrorKind {
    /// The AWS error code (`__type`) for this kind.
    pub fn aws_code(self) -> &'static str {
        match self {
            ErrorKind::Validation => "ValidationException",
            ErrorKind::InvalidParameter => "InvalidParameterException",
        }
    }
}

/// A rejected `RotationRules` value, with AWS's kind and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ScheduleError {
    /// Which AWS exception the engine should answer with.
    pub kind: ErrorKind,
    /// The message to put in the response.
    pub message: String,
}

impl ScheduleError {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ScheduleError {
            kind: ErrorKind::InvalidParameter,
            message: message.into(),
        }
    }

    /// The model-constraint message in the form the AWS front end produces.
    pub(crate) fn validation(value: &str, member: &str, constraint: &str) -> Self {
        ScheduleError {
            kind: ErrorKind::Validation,
            message: format!(
                "1 validation error detected: Value '{value}' at 'rotationRules.{member}' \
                 failed to satisfy constraint: {constraint}"
            ),
        }
    }
}
