//! Server-side AWS Signature Version 4 verification for Coffer's AWS-compatible APIs.
//!
//! Pure and synchronous: no I/O, no clock reads. The HTTP layer calls
//! [`parse_authorization`] on the headers, checks the scope's service against the
//! `X-Amz-Target` ([`AuthHeader::check_service`]), optionally checks the clock early
//! ([`AuthHeader::check_skew`]), looks up the secret for the access key id (answering
//! [`SigV4Error::UnrecognizedClient`] if there is none), then calls [`verify`]. Errors carry
//! the `__type` code and message AWS's JSON services send ([`SigV4Error::code`],
//! [`SigV4Error::message`]), all HTTP 400.

mod auth;
mod cache;
mod canonical;
mod error;
mod verify;

pub use auth::{ALGORITHM, AuthHeader, Credential, MAX_SKEW, MUST_BE_SIGNED, TERMINATOR, parse_authorization};
pub use cache::{DEFAULT_MAX_ENTRIES, SigningKeyCache, derive_signing_key};
pub use error::SigV4Error;
pub use verify::{SignedRequest, verify};
