//! Coffer's secret engines.
//!
//! Each engine owns one domain and sees only a [`coffer_storage::Storage`] view (plaintext,
//! already behind the barrier) plus the [`RequestContext`] of the caller. Engines never depend
//! on the core or on a wire protocol: they take typed requests decoded from the AWS JSON body
//! and return typed responses or an [`AwsError`], which the AWS front end maps to the wire.

pub mod aws_error;
pub mod contracts;
pub mod input;
pub mod secrets;

pub use aws_error::{AwsError, AwsErrorCode};

use time::OffsetDateTime;

/// Who is calling, where, and when. Built by the core after authentication.
#[derive(Clone, Debug)]
pub struct RequestContext {
    /// The 12-digit account the request acts in.
    pub account_id: String,
    /// The region from the SigV4 credential scope; it goes into ARNs.
    pub region: String,
    /// The caller's ARN (for audit and, later, policy conditions).
    pub principal_arn: String,
    /// The request time. Engines read the clock only from here, so tests can control it.
    pub now: OffsetDateTime,
}
