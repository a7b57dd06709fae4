//! The Vault-compatible HTTP front end, under `/v1`.
//!
//! Today it serves the operator surface that `coffer operator ...`, the `vault`/`bao` CLI and
//! hvac use to initialize, unseal, seal and inspect a server: `sys/init`, `sys/unseal`,
//! `sys/seal`, `sys/seal-status`, `sys/health`, `sys/rotate`, `sys/key-status`. These are
//! Vault's raw handlers: no response envelope. Errors use Vault's `{"errors": [...]}` form.
//! Backups use Vault's integrated-storage snapshot paths (`sys/storage/raft/snapshot`,
//! `snapshot-force`) with Coffer's own snapshot format, streamed both ways. Vault's rate limit
//! quotas (`sys/quotas/rate-limit/:name`, `sys/quotas/config`) are in [`quotas`]; the request
//! guard enforces them.

mod quotas;

pub use quotas::add_rate_limit_headers;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use coffer_core::coffer_audit::{AuditEvent, UserIdentity};
use coffer_core::limits::Refusal;
use coffer_core::{Client, Core, CoreError, QuotaDecision};
use serde::Deserialize;
use serde_json::{Value, json};

/// The `/v1/sys/*` routes.
pub fn router(core: Arc<Core>) -> Router {
    Router::new()
        .route("/v1/sys/init", get(init_status).put(init).post(init))
        .route("/v1/sys/unseal", post(unseal).put(unseal))
        .route("/v1/sys/seal", post(seal).put(seal))
        .route("/v1/sys/seal-status", get(seal_status))
        .route("/v1/sys/health", get(health).head(health))
        .route("/v1/sys/rotate", post(rotate).put(rotate))
        // OpenBao's name for the same operation (`bao operator rotate` calls it).
        .route("/v1/sys/rotate/keyring", post(rotate).put(rotate))
        .route("/v1/sys/key-status", get(key_status))
        .route("/v1/sys/leader", get(leader))
        .route("/v1/sys/metrics", get(metrics))
        .route("/v1/sys/coffer/clock", post(advance_clock))
        .route("/v1/sys/coffer/accounts", post(create_account).put(create_account))
        .route("/v1/sys/coffer/audit-heads", get(audit_heads))
        .route("/v1/sys/quotas/config", axum::routing::any(quotas::config))
        .route("/v1/sys/quotas/rate-limit", axum::routing::any(quotas::collection))
        .route("/v1/sys/quotas/rate-limit/", axum::routing::any(quotas::collection))
        .route("/v1/sys/quotas/rate-limit/{name}", axum::routing::any(quotas::quota))
        .route(
            "/v1/sys/storage/raft/snapshot",
            get(snapshot_save).post(snapshot_restore).put(snapshot_restore),
        )
        .route(
            "/v1/sys/storage/raft/snapshot-force",
            post(snapshot_restore_force).put(snapshot_restore_force),
        )
        .route("/v1/{*path}", axum::routing::any(unknown_path))
        .with_state(core)
}

/// The caller of an operator request, for its audit event: the peer address (when the server
/// was started with connect info) and the `User-Agent`. Never fails.
pub(crate) struct Caller(Client);

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        let user_agent = parts
            .headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        Ok(Self(Client { ip, user_agent }))
    }
}

/// Any other `/v1/` path. A sealed (or uninitialized) server answers every request it does not
/// serve while sealed with 503 `Vault is sealed`, as Vault does; an unsealed one has no
/// handler for it (the Vault engines are not mounted yet), Vault's 404 for an unknown mount.
async fn unknown_path(State(core): State<Arc<Core>>, uri: axum::http::Uri) -> Response {
    match core.seal_status().await {
        Ok(s) if s.sealed || !s.initialized => return core_error(&CoreError::Sealed),
        Ok(_) => {}
        Err(e) => return core_error(&e),
    }
    let path = uri.path().strip_prefix("/v1/").unwrap_or(uri.path());
    let message = format!("no handler for route \"{path}\". route entry not found.");
    errors(StatusCode::NOT_FOUND, &[message.as_str()])
}

/// Answers a `/v1/*` request refused before it was served, as Vault does, and records it in
/// the audit log when audit devices are configured (the same `Core::audit_log` the AWS front
/// end uses). Vault answers a body over `max_request_size` with 413 and Go's
/// `http: request body too large` (`AdjustErrorStatusCode` in Vault's
/// `sdk/logical/response_util.go`), and a request over a rate limit quota with 429 and
/// `request path "<path>": rate limit quota exceeded` (`rateLimitQuotaWrapping` in Vault's
/// `http/util.go`), where the path has no `/v1/`.
pub async fn refuse(core: &Core, req: &Refused<'_>, refusal: Refusal) -> Response {
    answer_refusal(core, req, refusal, core.audit_enabled()).await
}

/// A `/v1/*` request refused before it was served: who sent it and what it asked for.
pub struct Refused<'a> {
    pub peer: SocketAddr,
    pub method: &'a Method,
    /// The request's path, with `/v1/`.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
}

/// Answers a `/v1/*` request refused by a rate limit quota: Vault's 429, with the rate limit
/// headers when `enable_rate_limit_response_headers` is on, audited only when
/// `enable_rate_limit_audit_logging` is (Vault does not audit these refusals otherwise).
pub async fn refuse_over_quota(core: &Core, req: &Refused<'_>, decision: &QuotaDecision) -> Response {
    let audit = decision.audit && core.audit_enabled();
    let mut resp = answer_refusal(core, req, Refusal::Throttled, audit).await;
    if resp.status() == StatusCode::TOO_MANY_REQUESTS
        && let Some(h) = &decision.headers
    {
        add_rate_limit_headers(&mut resp, h);
    }
    resp
}

async fn answer_refusal(core: &Core, req: &Refused<'_>, refusal: Refusal, audit: bool) -> Response {
    let Refused {
        peer,
        method,
        path,
        headers,
    } = *req;
    let logical = path.trim_start_matches('/').strip_prefix("v1/").unwrap_or(path);
    let (code, status, message) = match refusal {
        Refusal::TooLarge { .. } => (
            "RequestEntityTooLarge",
            StatusCode::PAYLOAD_TOO_LARGE,
            "http: request body too large".to_string(),
        ),
        Refusal::Throttled => (
            "RateLimitQuotaExceeded",
            StatusCode::TOO_MANY_REQUESTS,
            format!("request path {}: rate limit quota exceeded", go_quote(logical)),
        ),
        Refusal::BodyTimeout => (
            "RequestTimeout",
            StatusCode::REQUEST_TIMEOUT,
            "http: request body read timed out".to_string(),
        ),
    };
    if audit {
        let operation = match *method {
            Method::GET | Method::HEAD => "read",
            Method::DELETE => "delete",
            _ if method.as_str() == "LIST" => "list",
            _ => "update",
        };
        let request_id = coffer_crypto::random::uuid_v4().unwrap_or_default();
        let user_agent = headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let event = AuditEvent::vault(
            operation,
            logical,
            UserIdentity::default(),
            time::OffsetDateTime::now_utc(),
            request_id,
        )
        .client(peer.ip().to_string(), user_agent)
        .error(code, &message);
        if let Err(e) = core.audit_log(&event).await {
            // Sealed (or not initialized): the sealed 503, nothing to report.
            if matches!(e, CoreError::AuditFailed(_)) {
                tracing::error!(error = %e, "request not recorded by any audit device: failing it");
            }
            return core_error(&e);
        }
    }
    let mut resp = errors(status, &[message.as_str()]);
    if refusal == Refusal::BodyTimeout {
        resp.headers_mut().insert(
            axum::http::header::CONNECTION,
            axum::http::HeaderValue::from_static("close"),
        );
    }
    resp
}

/// A string quoted as Go's `%q` does for the printable ASCII a path holds.
fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            c => out.push_str(&c.escape_unicode().to_string()),
        }
    }
    out.push('"');
    out
}

pub(crate) fn errors(status: StatusCode, msgs: &[&str]) -> Response {
    (status, Json(json!({ "errors": msgs }))).into_response()
}

pub(crate) fn core_error(e: &CoreError) -> Response {
    match e {
        // An uninitialized Vault is sealed: every request it cannot serve gets the same 503
        // (only sys/init, sys/seal-status, sys/health and sys/unseal say more).
        CoreError::Sealed | CoreError::NotInitialized => errors(StatusCode::SERVICE_UNAVAILABLE, &["Vault is sealed"]),
        CoreError::AlreadyInitialized => errors(StatusCode::BAD_REQUEST, &["Vault is already initialized"]),
        CoreError::BadRequest(m) => errors(StatusCode::BAD_REQUEST, &[m.as_str()]),
        CoreError::PermissionDenied => errors(StatusCode::FORBIDDEN, &["permission denied"]),
        CoreError::DevOnly(_) => errors(StatusCode::BAD_REQUEST, &[e.to_string().as_str()]),
        CoreError::Aws(a) => errors(StatusCode::BAD_REQUEST, &[a.message.as_str()]),
        CoreError::Storage(_) | CoreError::Internal(_) | CoreError::AuditFailed(_) => {
            tracing::error!(error = %e, "internal error serving a sys request");
            errors(StatusCode::INTERNAL_SERVER_ERROR, &["internal error"])
        }
    }
}

/// The Vault token a request carries (`X-Vault-Token`, or `Authorization: Bearer`).
pub fn token(headers: &HeaderMap) -> Option<String> {
    if let Some(t) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        return Some(t.to_string());
    }
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string)
}

/// Parses an optional JSON body; clients send `PUT` with or without one.
pub(crate) fn body_json(body: &str) -> Result<Value, String> {
    if body.trim().is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_str(body).map_err(|e| format!("failed to parse JSON input: {e}"))
}

async fn init_status(State(core): State<Arc<Core>>) -> Response {
    match core.seal_status().await {
        Ok(s) => Json(json!({ "initialized": s.initialized })).into_response(),
        Err(e) => core_error(&e),
    }
}

async fn init(State(core): State<Arc<Core>>, Caller(client): Caller, body: String) -> Response {
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(m) => return errors(StatusCode::BAD_REQUEST, &[m.as_str()]),
    };
    let shares = v.get("secret_shares").and_then(Value::as_u64);
    let threshold = v.get("secret_threshold").and_then(Value::as_u64);
    let (Some(shares), Some(threshold)) = (shares, threshold) else {
        return errors(
            StatusCode::BAD_REQUEST,
            &["secret_shares and secret_threshold are required"],
        );
    };
    let (Ok(shares), Ok(threshold)) = (u8::try_from(shares), u8::try_from(threshold)) else {
        return errors(StatusCode::BAD_REQUEST, &["secret_shares must be at most 255"]);
    };
    match core.init(shares, threshold, &client).await {
        Ok(out) => {
            let keys_b64: Vec<&str> = out.unseal_keys.iter().map(|k| k.expose()).collect();
            let keys_hex: Vec<String> = out.unseal_keys.iter().map(|k| base64_to_hex(k.expose())).collect();
            Json(json!({
                "keys": keys_hex,
                "keys_base64": keys_b64,
                "root_token": out.root.root_token.expose(),
                "account_id": out.root.account_id,
                "root_access_key_id": out.root.access_key_id,
                "root_secret_access_key": String::from_utf8_lossy(out.root.secret_access_key.expose()),
            }))
            .into_response()
        }
        Err(e) => core_error(&e),
    }
}

fn base64_to_hex(b64: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map(hex::encode)
        .unwrap_or_default()
}

async fn unseal(State(core): State<Arc<Core>>, Caller(client): Caller, body: String) -> Response {
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(m) => return errors(StatusCode::BAD_REQUEST, &[m.as_str()]),
    };
    let result = if v.get("reset").and_then(Value::as_bool) == Some(true) {
        core.reset_unseal().await
    } else {
        let Some(key) = v.get("key").and_then(Value::as_str) else {
            return errors(
                StatusCode::BAD_REQUEST,
                &["'key' must be specified in request body as JSON, or 'reset' set to true"],
            );
        };
        core.unseal(key, &client).await
    };
    match result {
        Ok(s) => Json(seal_status_json(&s)).into_response(),
        // Vault answers an unseal of an uninitialized server with 400, not the sealed 503.
        Err(CoreError::NotInitialized) => errors(StatusCode::BAD_REQUEST, &["Vault is not initialized"]),
        Err(e) => core_error(&e),
    }
}

async fn seal(State(core): State<Arc<Core>>, Caller(client): Caller, headers: HeaderMap) -> Response {
    match core.seal(token(&headers).as_deref(), &client).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => core_error(&e),
    }
}

fn seal_status_json(s: &coffer_core::SealStatus) -> Value {
    json!({
        "type": "shamir",
        "initialized": s.initialized,
        "sealed": s.sealed,
        "t": s.t,
        "n": s.n,
        "progress": s.progress,
        "nonce": "",
        "version": env!("CARGO_PKG_VERSION"),
        "build_date": "",
        "migration": false,
        "recovery_seal": false,
        "storage_type": "coffer",
    })
}

async fn seal_status(State(core): State<Arc<Core>>) -> Response {
    match core.seal_status().await {
        Ok(s) => Json(seal_status_json(&s)).into_response(),
        Err(e) => core_error(&e),
    }
}

#[derive(Deserialize)]
struct HealthQuery {
    sealedcode: Option<u16>,
    uninitcode: Option<u16>,
    activecode: Option<u16>,
}

async fn health(State(core): State<Arc<Core>>, Query(q): Query<HealthQuery>) -> Response {
    let s = match core.seal_status().await {
        Ok(s) => s,
        Err(e) => return core_error(&e),
    };
    let code = if !s.initialized {
        q.uninitcode.unwrap_or(501)
    } else if s.sealed {
        q.sealedcode.unwrap_or(503)
    } else {
        q.activecode.unwrap_or(200)
    };
    let status = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    let body = json!({
        "initialized": s.initialized,
        "sealed": s.sealed,
        "standby": false,
        "performance_standby": false,
        "replication_performance_mode": "disabled",
        "replication_dr_mode": "disabled",
        "server_time_utc": time::OffsetDateTime::now_utc().unix_timestamp(),
        "version": env!("CARGO_PKG_VERSION"),
    });
    (status, Json(body)).into_response()
}

async fn rotate(State(core): State<Arc<Core>>, Caller(client): Caller, headers: HeaderMap) -> Response {
    match core.rotate(token(&headers).as_deref(), &client).await {
        Ok(term) => {
            let data = json!({ "term": term });
            Json(json!({ "term": term, "data": data })).into_response()
        }
        Err(e) => core_error(&e),
    }
}

async fn key_status(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    if let Err(refused) = require_token(&core, &headers).await {
        return refused;
    }
    match core.key_status() {
        Ok((term, installed)) => {
            let install_time = i64::try_from(installed)
                .ok()
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
                .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_default();
            // Vault also counts the encryptions under the term (for automatic rotation);
            // Coffer does not count them.
            let data = json!({ "term": term, "install_time": install_time, "encryptions": 0 });
            let mut body = data.clone();
            body["data"] = data;
            Json(body).into_response()
        }
        Err(e) => core_error(&e),
    }
}

/// `GET /v1/sys/leader` (no token): Coffer runs one node without HA, and answers as a Vault
/// server without HA does, sealed or not (`ha_enabled` false). `bao status` reads it.
async fn leader() -> Response {
    Json(json!({
        "ha_enabled": false,
        "is_self": false,
        "active_time": "0001-01-01T00:00:00Z",
        "leader_address": "",
        "leader_cluster_address": "",
        "performance_standby": false,
        "performance_standby_last_remote_wal": 0,
    }))
    .into_response()
}

/// Any valid token (`X-Vault-Token` or `Authorization: Bearer`), or Vault's answer: 403
/// without one, 503 while sealed.
async fn require_token(core: &Core, headers: &HeaderMap) -> Result<(), Response> {
    match core.token(token(headers).as_deref()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(errors(StatusCode::FORBIDDEN, &["permission denied"])),
        Err(e) => Err(core_error(&e)),
    }
}

/// `GET /metrics` for Prometheus: the server's metrics in the Prometheus text format. It needs
/// a token, as Vault's `sys/metrics` does, unless `open` (`[telemetry]
/// unauthenticated_metrics_access`, and dev mode).
pub fn metrics_router(core: Arc<Core>, open: bool) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state((core, open))
}

async fn scrape(State((core, open)): State<(Arc<Core>, bool)>, headers: HeaderMap) -> Response {
    if !open && let Err(refused) = require_token(&core, &headers).await {
        return refused;
    }
    match core.render_metrics().await {
        Some(text) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        None => errors(StatusCode::NOT_FOUND, &["metrics are off"]),
    }
}

/// `GET /v1/sys/metrics` (a token is required, as in Vault): the server's metrics in the
/// Prometheus text format (the same as `/metrics`), then the rotation run counters. Vault
/// answers JSON unless `format=prometheus` is given; Coffer always answers Prometheus text.
async fn metrics(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    if let Err(refused) = require_token(&core, &headers).await {
        return refused;
    }
    use std::sync::atomic::Ordering::Relaxed;
    let stats = core.rotation_stats();
    let mut out = core.render_metrics().await.unwrap_or_default();
    for (name, help, value) in [
        (
            "coffer_rotations_started_total",
            "Rotation runs started.",
            stats.started.load(Relaxed),
        ),
        (
            "coffer_rotations_succeeded_total",
            "Rotation runs that finished.",
            stats.succeeded.load(Relaxed),
        ),
        (
            "coffer_rotations_failed_total",
            "Rotation runs that failed (and will be retried).",
            stats.failed.load(Relaxed),
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}

/// Root token only: creates an account and returns its id and root access key (shown once).
async fn create_account(State(core): State<Arc<Core>>, Caller(client): Caller, headers: HeaderMap) -> Response {
    match core.create_account(token(&headers).as_deref(), &client).await {
        Ok((account_id, akid, secret)) => {
            let data = json!({
                "account_id": account_id,
                "access_key_id": akid,
                "secret_access_key": String::from_utf8_lossy(secret.expose()),
            });
            Json(json!({ "data": data })).into_response()
        }
        Err(e) => core_error(&e),
    }
}

/// `GET /v1/sys/coffer/audit-heads` (root token): each file audit device's chain head, the
/// `seq` and `hash` of its latest line. `coffer audit verify --expect-seq N --expect-hash H`
/// checks that the files reach it: the only way to detect lines cut from the end of a log.
async fn audit_heads(State(core): State<Arc<Core>>, headers: HeaderMap) -> Response {
    match core.audit_heads(token(&headers).as_deref()).await {
        Ok(heads) => {
            let devices: serde_json::Map<String, Value> = heads
                .into_iter()
                .map(|(name, seq, hash)| (name, json!({ "seq": seq, "hash": hash })))
                .collect();
            Json(json!({ "data": { "devices": devices } })).into_response()
        }
        Err(e) => core_error(&e),
    }
}

/// Dev mode with `--dev-allow-reset` only: `{"advance_seconds": N}` moves the server clock
/// forward and runs the background jobs, so tests can watch recovery windows end.
async fn advance_clock(State(core): State<Arc<Core>>, body: String) -> Response {
    let v = match body_json(&body) {
        Ok(v) => v,
        Err(m) => return errors(StatusCode::BAD_REQUEST, &[m.as_str()]),
    };
    let Some(secs) = v.get("advance_seconds").and_then(Value::as_i64) else {
        return errors(StatusCode::BAD_REQUEST, &["advance_seconds is required"]);
    };
    match core.advance_clock(secs).await {
        Ok(offset) => Json(json!({ "offset_seconds": offset })).into_response(),
        Err(e) => core_error(&e),
    }
}

/// `GET /v1/sys/storage/raft/snapshot` (root token, unsealed): the snapshot, streamed as
/// `application/octet-stream`. A failure after the first byte can only cut the body short,
/// which the reader's checksum check reports.
async fn snapshot_save(State(core): State<Arc<Core>>, Caller(client): Caller, headers: HeaderMap) -> Response {
    let export = match core.snapshot_save(token(&headers).as_deref(), &client).await {
        Ok(export) => export,
        Err(e) => return core_error(&e),
    };
    let chunks = futures_util::stream::unfold(Some(export), |state| async move {
        let mut export = state?;
        match export.next_bytes().await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(export))),
            Ok(None) => {
                if let Some(s) = export.summary() {
                    tracing::info!(entries = s.header.entries, bytes = s.bytes, checksum = %s.checksum_hex(), "snapshot sent");
                }
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "a snapshot failed while streaming; the client gets a cut-off body");
                Some((Err(std::io::Error::other("snapshot failed")), None))
            }
        }
    });
    (
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

/// `POST /v1/sys/storage/raft/snapshot`: restores onto a server that was never initialized
/// (no token needed; see `Core::snapshot_restore`).
async fn snapshot_restore(
    State(core): State<Arc<Core>>,
    Caller(client): Caller,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    restore(&core, &client, &headers, body, false).await
}

/// `POST /v1/sys/storage/raft/snapshot-force`: also replaces an initialized server (root
/// token).
async fn snapshot_restore_force(
    State(core): State<Arc<Core>>,
    Caller(client): Caller,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    restore(&core, &client, &headers, body, true).await
}

async fn restore(core: &Core, client: &Client, headers: &HeaderMap, body: axum::body::Body, force: bool) -> Response {
    let source = RequestBody(body.into_data_stream());
    match core
        .snapshot_restore(token(headers).as_deref(), force, source, client)
        .await
    {
        Ok(s) => Json(json!({ "data": {
            "entries": s.entries,
            "bytes": s.bytes,
            "checksum": s.checksum,
            "created_unix": s.created_unix,
            "coffer_version": s.coffer_version,
            "sealed": true,
        }}))
        .into_response(),
        Err(e) => core_error(&e),
    }
}

/// A request body as the pieces a snapshot reader takes.
struct RequestBody(axum::body::BodyDataStream);

#[async_trait::async_trait]
impl coffer_core::ByteSource for RequestBody {
    async fn next_bytes(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        use futures_util::StreamExt as _;
        match self.0.next().await {
            None => Ok(None),
            Some(Ok(bytes)) => Ok(Some(bytes.to_vec())),
            Some(Err(e)) => Err(std::io::Error::other(e.to_string())),
        }
    }
}
