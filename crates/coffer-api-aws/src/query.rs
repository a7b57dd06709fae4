//! The AWS Query protocol: a form-encoded `POST /` with `Action=...&Version=...`, answered in
//! XML. STS and IAM speak it: every action is authorized by the core and run by the IAM
//! engine (`coffer-iam`), whose XML and error documents are sent as they are.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use coffer_core::CoreError;
use coffer_sigv4::SigV4Error;

use std::net::SocketAddr;

use serde_json::Value;

use coffer_core::RequestEnv;
use coffer_core::coffer_iam::{error_response, with_request_id};

use crate::audit::Record;
use crate::{AuthError, AwsFrontEnd, EXPIRED_MESSAGE, authenticate};

const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub(crate) async fn handle(
    fe: &AwsFrontEnd,
    peer: SocketAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
) -> Response {
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut rec = Record::new(&action, fe.core.audit_enabled());
    let parsed = rec.note_claimed_key(headers);
    let service = parsed
        .as_ref()
        .map(|a| a.credential.service.clone())
        .unwrap_or_default();
    let labels = |code: Option<&str>| crate::CallLabels::new(&service, &action, code);
    let env = RequestEnv {
        source_ip: Some(peer.ip()),
        secure_transport: fe.secure_transport,
    };
    let (resp, error) = respond(
        fe, parsed, method, uri, headers, body, request_id, &params, &env, &mut rec,
    )
    .await;
    if fe.core.audit_enabled() {
        let input = Value::Object(params.into_iter().map(|(k, v)| (k, Value::String(v))).collect());
        rec.set_input(input);
        let err = error.as_ref().map(|(c, m)| (c.as_str(), m.as_str()));
        let event = rec.into_event(request_id, peer, headers, None, err);
        if let Err(e) = fe.core.audit_log(&event).await {
            // Sealed (or not initialized): the service's documented 503, nothing to report.
            if matches!(e, CoreError::AuditFailed(_)) {
                tracing::error!(error = %e, "request not recorded by any audit device: failing it");
            }
            let code = match e {
                CoreError::Sealed | CoreError::NotInitialized => "ServiceUnavailable",
                _ => "InternalFailure",
            };
            return labels(Some(code)).on(core_error(&e, request_id));
        }
    }
    labels(error.as_ref().map(|(c, _)| c.as_str())).on(resp)
}

/// Serves one query-protocol request; also returns the error code and message, for the audit.
#[allow(clippy::too_many_arguments)]
async fn respond(
    fe: &AwsFrontEnd,
    parsed: Result<coffer_sigv4::AuthHeader, coffer_sigv4::SigV4Error>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    request_id: &str,
    params: &[(String, String)],
    env: &RequestEnv,
    rec: &mut Record,
) -> (Response, Option<(String, String)>) {
    let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let failed = |code: &str, message: &str| Some((code.to_string(), message.to_string()));
    let (auth, key) = match authenticate(fe, parsed, method, uri, headers, body).await {
        Ok(ok) => ok,
        Err(AuthError::SigV4(e)) => {
            let (code, status) = sigv4_code(&e);
            return (
                xml_error(code, &e.message(), status, request_id),
                failed(code, &e.message()),
            );
        }
        Err(AuthError::Expired) => {
            return (
                xml_error("ExpiredToken", EXPIRED_MESSAGE, StatusCode::BAD_REQUEST, request_id),
                failed("ExpiredToken", EXPIRED_MESSAGE),
            );
        }
        Err(AuthError::Throttled) => {
            return (
                xml_error(
                    "Throttling",
                    crate::THROTTLED_MESSAGE,
                    StatusCode::BAD_REQUEST,
                    request_id,
                ),
                failed("Throttling", crate::THROTTLED_MESSAGE),
            );
        }
        Err(AuthError::Core(e)) => return (core_error(&e, request_id), failed("ServiceUnavailable", &e.to_string())),
    };
    rec.authenticated(&key, &auth.credential.region);
    let service = auth.credential.service.clone();
    rec.set_service(&service);
    let action = param("Action").unwrap_or_default();
    if action.is_empty() {
        return (
            xml_error("MissingAction", "Missing Action", StatusCode::BAD_REQUEST, request_id),
            failed("MissingAction", "Missing Action"),
        );
    }
    if service != "iam" && service != "sts" {
        let version = param("Version").unwrap_or_default();
        let message = format!("Could not find operation {action} for version {version}");
        return (
            xml_error("InvalidAction", &message, StatusCode::BAD_REQUEST, request_id),
            failed("InvalidAction", &message),
        );
    }
    match fe
        .core
        .handle_iam(&key.principal, &auth.credential.region, &service, action, params, env)
        .await
    {
        Ok(doc) => (xml(StatusCode::OK, with_request_id(&doc, request_id), request_id), None),
        Err(CoreError::Aws(e)) => {
            let (status, body) = error_response(&service, &e, request_id);
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            (xml(status, body, request_id), failed(e.code.as_str(), &e.message))
        }
        Err(e) => (core_error(&e, request_id), failed("ServiceUnavailable", &e.to_string())),
    }
}

/// The query-protocol names and statuses of authentication failures (they differ from the
/// JSON services': `InvalidClientTokenId` and `SignatureDoesNotMatch`, HTTP 403).
fn sigv4_code(e: &SigV4Error) -> (&'static str, StatusCode) {
    match e {
        SigV4Error::MissingAuthenticationToken => ("MissingAuthenticationToken", StatusCode::FORBIDDEN),
        SigV4Error::IncompleteSignature(_) | SigV4Error::TwoAuthMechanisms => {
            ("IncompleteSignature", StatusCode::BAD_REQUEST)
        }
        SigV4Error::UnrecognizedClient => ("InvalidClientTokenId", StatusCode::FORBIDDEN),
        _ => ("SignatureDoesNotMatch", StatusCode::FORBIDDEN),
    }
}

pub(crate) fn core_error(e: &CoreError, request_id: &str) -> Response {
    match e {
        CoreError::Sealed | CoreError::NotInitialized => xml_error(
            "ServiceUnavailable",
            &e.to_string(),
            StatusCode::SERVICE_UNAVAILABLE,
            request_id,
        ),
        _ => {
            tracing::error!(error = %e, "internal error serving a query-protocol request");
            xml_error(
                "InternalFailure",
                "An internal error occurred.",
                StatusCode::INTERNAL_SERVER_ERROR,
                request_id,
            )
        }
    }
}

pub(crate) fn xml_error(code: &str, message: &str, status: StatusCode, request_id: &str) -> Response {
    let kind = if status.is_server_error() { "Receiver" } else { "Sender" };
    let body = format!(
        "<ErrorResponse xmlns=\"{STS_NS}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error>\
         <RequestId>{}</RequestId></ErrorResponse>",
        escape(code),
        escape(message),
        escape(request_id),
    );
    xml(status, body, request_id)
}

fn xml(status: StatusCode, body: String, request_id: &str) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

/// Escapes text for an XML element.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape("a<b>&\"'"), "a&lt;b&gt;&amp;&quot;&apos;");
    }
}
