//! The errors a SigV4 check can produce, with the exact `__type` codes and messages that
//! AWS's JSON-protocol services (Secrets Manager, SSM, KMS) send for them.
//!
//! Every error is an HTTP 400 on these services. Codes carry the `Exception` suffix that the
//! Coral-based JSON services use (`IncompleteSignatureException`, not the query-protocol
//! `IncompleteSignature`). No message ever contains the secret key, a derived key or the
//! signature the server computed.

use time::OffsetDateTime;

/// Why a request failed authentication.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigV4Error {
    /// No `Authorization` header, or one that does not use an `AWS4-` scheme.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,

    /// The `Authorization` header (or the date header) is malformed; the message says how,
    /// in AWS's words.
    #[error("{0}")]
    IncompleteSignature(String),

    /// The date header is more than the allowed skew in the past.
    #[error(
        "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
        fmt_amz(*.limit),
        fmt_amz(*.now)
    )]
    SignatureExpired {
        /// The request's date header, as sent.
        amz_date: String,
        /// `now - 5 min`.
        limit: OffsetDateTime,
        /// The server's clock.
        now: OffsetDateTime,
    },

    /// The date header is more than the allowed skew in the future.
    #[error(
        "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
        fmt_amz(*.limit),
        fmt_amz(*.now)
    )]
    SignatureNotYetCurrent {
        /// The request's date header, as sent.
        amz_date: String,
        /// `now + 5 min`.
        limit: OffsetDateTime,
        /// The server's clock.
        now: OffsetDateTime,
    },

    /// `host` is not among the signed headers.
    #[error("'Host' must be a 'SignedHeader' in the AWS Authorization.")]
    HostNotSigned,

    /// A header that changes what the request does or who makes it (`x-amz-target`,
    /// `x-amz-security-token`) is present but not signed.
    #[error("'{}' must be a 'SignedHeader' in the AWS Authorization.", display_name(.0))]
    HeaderNotSigned(&'static str),

    /// The request carries both an `Authorization` header and query-string authentication
    /// (`X-Amz-Signature`, `X-Amz-Credential` or `X-Amz-Algorithm`).
    #[error(
        "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature \
         query string parameter or the Authorization header should be specified"
    )]
    TwoAuthMechanisms,

    /// The credential scope is wrong (region, service, terminator or date); the message
    /// lists every problem, in AWS's words.
    #[error("{0}")]
    InvalidScope(String),

    /// The signature does not match (or the declared payload hash does not match the body).
    #[error(
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details."
    )]
    SignatureMismatch,

    /// The access key id (or session token) is not known. Produced by the caller, which
    /// owns the key lookup.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
}

impl SigV4Error {
    /// The `__type` value for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingAuthenticationToken => "MissingAuthenticationTokenException",
            Self::IncompleteSignature(_) | Self::TwoAuthMechanisms => "IncompleteSignatureException",
            Self::SignatureExpired { .. }
            | Self::SignatureNotYetCurrent { .. }
            | Self::HostNotSigned
            | Self::HeaderNotSigned(_)
            | Self::InvalidScope(_)
            | Self::SignatureMismatch => "InvalidSignatureException",
            Self::UnrecognizedClient => "UnrecognizedClientException",
        }
    }

    /// The `message` value for the JSON error body.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// The HTTP status AWS's JSON services use for every authentication error.
    pub fn http_status(&self) -> u16 {
        400
    }
}

/// A signed header's name as AWS spells it in messages (`X-Amz-Target`).
fn display_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut chars = part.chars();
            match chars.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

/// Formats a timestamp as ISO 8601 basic (`yyyymmddThhmmssZ`), in UTC.
pub(crate) fn fmt_amz(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}
