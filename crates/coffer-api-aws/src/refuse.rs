//! Requests refused before they are served (too large, too many, too slow), answered in the
//! wire form of the protocol the client speaks and recorded like any other request.
//!
//! The codes are AWS's common errors (for example
//! <https://docs.aws.amazon.com/chatbot/latest/APIReference/CommonErrors.html>):
//! `RequestEntityTooLargeException` ("The request entity is too large", HTTP 413) and
//! `ThrottlingException` ("The request was denied due to request throttling", HTTP 400); the
//! Query protocol's list (for example
//! <https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html>) names the
//! latter `Throttling`. AWS's throttling message is "Rate exceeded".

use std::net::SocketAddr;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use coffer_core::Core;
use coffer_core::limits::Refusal;

use crate::{audit, query, wire};

/// AWS's message for a throttled request.
pub const THROTTLED_MESSAGE: &str = "Rate exceeded";

/// Answers a refused AWS request (JSON or Query protocol, told apart as [`crate::router`]
/// does) and records it in the audit log when audit devices are configured. The body was not
/// read, so the event carries the target and the access key the request claims, not its
/// parameters. If no device records it, the answer is the usual audit failure.
pub async fn refuse(core: &Core, peer: SocketAddr, headers: &HeaderMap, refusal: Refusal) -> Response {
    let request_id = wire::request_id();
    let target = crate::amz_target(headers);
    let is_query = target.is_empty() && crate::is_form(headers);
    let (code, message, status) = match refusal {
        Refusal::TooLarge { limit } => (
            "RequestEntityTooLargeException",
            format!("The request entity is too large: Coffer accepts at most {limit} bytes."),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        Refusal::Throttled if is_query => ("Throttling", THROTTLED_MESSAGE.to_string(), StatusCode::BAD_REQUEST),
        Refusal::Throttled => (
            "ThrottlingException",
            THROTTLED_MESSAGE.to_string(),
            StatusCode::BAD_REQUEST,
        ),
        Refusal::BodyTimeout => (
            "RequestTimeoutException",
            "The request body did not arrive within the server's timeout.".to_string(),
            StatusCode::REQUEST_TIMEOUT,
        ),
    };
    if core.audit_enabled() {
        let mut rec = audit::Record::new(&target, true);
        let _ = rec.note_claimed_key(headers);
        let event = rec.into_event(&request_id, peer, headers, None, Some((code, &message)));
        if let Err(e) = core.audit_log(&event).await {
            tracing::error!(error = %e, "request not recorded by any audit device: failing it");
            return if is_query {
                query::core_error(&e, &request_id)
            } else {
                wire::AwsWireError::from_core(&e).into_response(&request_id)
            };
        }
    }
    let mut resp = if is_query {
        query::xml_error(code, &message, status, &request_id)
    } else {
        wire::error_response(code, &message, status, &request_id)
    };
    if refusal == Refusal::BodyTimeout {
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}
