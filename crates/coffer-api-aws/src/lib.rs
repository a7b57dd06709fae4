//! The AWS JSON 1.1 front end.
//!
//! One route, `POST /`, serves every AWS service Coffer speaks: the service and operation come
//! from `X-Amz-Target` (`secretsmanager.GetSecretValue`). Each request is authenticated with
//! SigV4 against an access key Coffer issued, handed to [`Core::handle_aws`], and the result
//! or error is written in the exact wire form AWS uses (`__type`, message, HTTP status,
//! `x-amzn-RequestId`). This crate is the only one that knows that wire form.

mod audit;
mod query;
mod refuse;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, Method, Uri};
use axum::response::Response;
use axum::routing::post;
use coffer_core::limits::RateLimiter;
use coffer_core::{AwsService, Core, CoreError, KeyResolution, RequestEnv, ResolvedKey};
use coffer_sigv4::{SignedRequest, SigningKeyCache};
use serde_json::Value;

pub use refuse::{THROTTLED_MESSAGE, refuse};
pub use wire::{AwsWireError, error_response, json_response};

/// Shared state of the AWS front end.
pub struct AwsFrontEnd {
    core: Arc<Core>,
    signing_keys: SigningKeyCache,
    /// Whether the listener is TLS (`aws:SecureTransport`).
    secure_transport: bool,
    /// The request rate limit per access key, if any (checked once the signature is).
    key_rate: Option<RateLimiter<String>>,
}

/// How the AWS front end is set up.
#[derive(Default)]
pub struct AwsOptions {
    /// Whether the listener is TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// A request rate limit per access key: requests over it get `ThrottlingException`.
    pub key_rate: Option<RateLimiter<String>>,
}

/// The routes of the AWS front end: `POST /`, plus `POST /moto-api/reset` (refused unless the
/// server runs in dev mode with `--dev-allow-reset`). Serve it with
/// `into_make_service_with_connect_info::<SocketAddr>()`: the caller's address goes into the
/// audit log.
pub fn router(core: Arc<Core>) -> Router {
    router_with_transport(core, false)
}

/// [`router`], telling the authorizer whether requests arrive over TLS
/// (`aws:SecureTransport`).
pub fn router_with_transport(core: Arc<Core>, secure_transport: bool) -> Router {
    router_with_options(
        core,
        AwsOptions {
            secure_transport,
            ..AwsOptions::default()
        },
    )
}

/// [`router`], with its options.
pub fn router_with_options(core: Arc<Core>, options: AwsOptions) -> Router {
    let state = Arc::new(AwsFrontEnd {
        core,
        signing_keys: SigningKeyCache::default(),
        secure_transport: options.secure_transport,
        key_rate: options.key_rate,
    });
    Router::new()
        .route("/", post(handle))
        .route("/moto-api/reset", post(moto_reset))
        .with_state(state)
}

async fn moto_reset(State(fe): State<Arc<AwsFrontEnd>>) -> Response {
    match fe.core.reset().await {
        Ok(()) => json_response(&serde_json::json!({"status": "ok"}), &wire::request_id()),
        Err(e) => AwsWireError::from_core(&e).into_response(&wire::request_id()),
    }
}

/// What an AWS request was, for the server's metrics; every response of `POST /` carries it
/// as an extension. Only names Coffer serves become labels (anything else is `unknown`), so a
/// client cannot grow the metric set by sending made-up targets.
#[derive(Clone, Debug)]
pub struct CallLabels {
    /// The service's SigV4 signing name (`secretsmanager`, `ssm`, `kms`, `iam`, `sts`,
    /// `cloudtrail`, `lambda`), or `unknown`.
    pub service: &'static str,
    /// The operation or action, or `unknown`.
    pub operation: String,
    /// The AWS error code, when the request failed.
    pub error: Option<String>,
}

impl CallLabels {
    /// Labels for `operation` of the service signed as `service`.
    pub(crate) fn new(service: &str, operation: &str, error: Option<&str>) -> Self {
        const SERVICES: [&str; 7] = ["secretsmanager", "ssm", "kms", "iam", "sts", "cloudtrail", "lambda"];
        let service = SERVICES.iter().copied().find(|s| *s == service).unwrap_or("unknown");
        let known = match service {
            "cloudtrail" => operation == "LookupEvents",
            "lambda" => matches!(
                operation,
                "CreateFunction" | "GetFunction" | "ListFunctions" | "DeleteFunction" | "GetRotationStatus"
            ),
            s => coffer_policy::action_for(s, operation).is_some(),
        };
        Self {
            service,
            operation: if known {
                operation.to_owned()
            } else {
                "unknown".to_owned()
            },
            error: error.map(str::to_owned),
        }
    }

    /// `resp` with these labels.
    pub(crate) fn on(self, mut resp: Response) -> Response {
        resp.extensions_mut().insert(self);
        resp
    }
}

async fn handle(
    State(fe): State<Arc<AwsFrontEnd>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    mut headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = wire::request_id();
    let target = amz_target(&headers);
    // HTTP/2 carries the host in the URI authority, not a header; SigV4 signed it as `host`.
    if !headers.contains_key(http::header::HOST)
        && let Some(authority) = uri.authority()
        && let Ok(v) = HeaderValue::from_str(authority.as_str())
    {
        headers.insert(http::header::HOST, v);
    }
    if target.is_empty() && is_form(&headers) {
        return query::handle(&fe, peer, &method, &uri, &headers, &body, &request_id).await;
    }
    let audited = fe.core.audit_enabled();
    let mut rec = audit::Record::new(&target, audited);
    let env = RequestEnv {
        source_ip: Some(peer.ip()),
        secure_transport: fe.secure_transport,
    };
    let result = serve(&fe, &method, &uri, &headers, &body, &target, &env, &mut rec).await;
    // The answer is serialized first, so the audit event can take the response by value.
    let (response, ok, err) = match result {
        Ok(v) => (json_response(&v, &request_id), Some(v), None),
        Err(e) => {
            let err = Some((e.code(), e.message().to_string()));
            (e.into_response(&request_id), None, err)
        }
    };
    let (prefix, operation) = target.rsplit_once('.').unwrap_or((target.as_str(), ""));
    let service = AwsService::from_target_prefix(prefix).map_or("unknown", AwsService::signing_name);
    let labels = |code: Option<&str>| CallLabels::new(service, operation, code);
    if audited {
        let code = err.as_ref().map(|(c, _)| *c);
        let err = err.as_ref().map(|(c, m)| (*c, m.as_str()));
        let event = rec.into_event(&request_id, peer, &headers, ok, err);
        if let Err(e) = fe.core.audit_log(&event).await {
            // Sealed (or not initialized): the service's documented 503, nothing to report.
            if matches!(e, CoreError::AuditFailed(_)) {
                tracing::error!(error = %e, "request not recorded by any audit device: failing it");
            }
            let wire = AwsWireError::from_core(&e);
            let code = wire.code();
            return labels(Some(code)).on(wire.into_response(&request_id));
        }
        return labels(code).on(response);
    }
    labels(err.as_ref().map(|(c, _)| *c)).on(response)
}

/// The request's `X-Amz-Target` (empty if none). Sent twice, it is both values joined by `,`,
/// as the signature covers it: no operation has that name, so the request is refused rather
/// than dispatched on one copy while the other was what a proxy or log looked at.
pub(crate) fn amz_target(headers: &HeaderMap) -> String {
    let values: Vec<&str> = headers
        .get_all("x-amz-target")
        .iter()
        .map(|v| v.to_str().unwrap_or(""))
        .collect();
    values.join(",")
}

/// Whether the body is form-encoded (the Query protocol, when there is no target).
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// Why a request failed authentication.
pub(crate) enum AuthError {
    SigV4(coffer_sigv4::SigV4Error),
    /// A session key whose session has expired.
    Expired,
    /// The access key sent more requests than its rate limit allows.
    Throttled,
    Core(CoreError),
}

/// The message AWS sends with `ExpiredToken` / `ExpiredTokenException`.
pub(crate) const EXPIRED_MESSAGE: &str = "The security token included in the request is expired";

/// The session token a request carries (`X-Amz-Security-Token` header or query parameter).
fn session_token(uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers.get("x-amz-security-token").and_then(|v| v.to_str().ok()) {
        return Some(v.to_string());
    }
    form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "X-Amz-Security-Token")
        .map(|(_, v)| v.into_owned())
}

/// Verifies the request's SigV4 signature (its `Authorization` header parsed by
/// [`audit::Record::note_claimed_key`]) against an access key Coffer issued.
pub(crate) async fn authenticate(
    fe: &AwsFrontEnd,
    parsed: Result<coffer_sigv4::AuthHeader, coffer_sigv4::SigV4Error>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(coffer_sigv4::AuthHeader, Arc<ResolvedKey>), AuthError> {
    let auth = parsed.map_err(AuthError::SigV4)?;
    let token = session_token(uri, headers);
    let key = match fe
        .core
        .resolve_access_key(&auth.credential.access_key_id, token.as_deref())
        .await
    {
        Ok(KeyResolution::Valid(k)) => k,
        Ok(KeyResolution::Unknown | KeyResolution::InvalidToken) => {
            return Err(AuthError::SigV4(coffer_sigv4::SigV4Error::UnrecognizedClient));
        }
        Ok(KeyResolution::Expired) => return Err(AuthError::Expired),
        Err(e) => return Err(AuthError::Core(e)),
    };
    let req = SignedRequest {
        method: method.as_str(),
        path: uri.path(),
        query: uri.query().unwrap_or(""),
        headers,
        body,
    };
    // Authentication always uses the wall clock: the dev-mode clock shift moves business time
    // (recovery windows, schedules), never the signature freshness window.
    coffer_sigv4::verify(
        &req,
        &auth,
        &key.secret,
        time::OffsetDateTime::now_utc(),
        &fe.signing_keys,
    )
    .map_err(AuthError::SigV4)?;
    if let Some(limit) = &fe.key_rate
        && !limit.check(&auth.credential.access_key_id)
    {
        return Err(AuthError::Throttled);
    }
    Ok((auth, key))
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    fe: &AwsFrontEnd,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
    target: &str,
    env: &RequestEnv,
    rec: &mut audit::Record,
) -> Result<Value, AwsWireError> {
    // Authenticate first, as AWS does: an unsigned request learns nothing about targets.
    let parsed = rec.note_claimed_key(headers);
    let (auth, key) = authenticate(fe, parsed, method, uri, headers, body)
        .await
        .map_err(|e| match e {
            AuthError::SigV4(e) => AwsWireError::from_sigv4(e),
            AuthError::Expired => AwsWireError::from_core(&CoreError::Aws(coffer_core::AwsError::new(
                coffer_core::AwsErrorCode::ExpiredTokenException,
                EXPIRED_MESSAGE,
            ))),
            AuthError::Throttled => AwsWireError::throttling(),
            AuthError::Core(e) => AwsWireError::from_core(&e),
        })?;
    rec.authenticated(&key, &auth.credential.region);
    // The operation follows the last dot: CloudTrail's prefix has dots of its own.
    let (prefix, operation) = target.rsplit_once('.').unwrap_or((target, ""));
    let service = AwsService::from_target_prefix(prefix).ok_or_else(AwsWireError::unknown_operation)?;
    if operation.is_empty() {
        return Err(AwsWireError::unknown_operation());
    }
    auth.check_service(service.signing_name())
        .map_err(AwsWireError::from_sigv4)?;
    let input = wire::parse_body(body)?;
    rec.input(service, &input);
    fe.core
        .handle_aws(&key.principal, &auth.credential.region, service, operation, input, env)
        .await
        .map_err(|e: CoreError| AwsWireError::from_core(&e).for_service(service))
}
