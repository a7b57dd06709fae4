//! `[limits]`: what the server accepts from one client, and the request guard that enforces
//! the per-request part of it (body size, body read time, request rates) before any front
//! end sees the request. The connection part (header and idle timeouts, TLS handshake,
//! connection count, shutdown) is the listener's (`listener.rs`).
//!
//! The guard also enforces Vault's rate limit quotas (`sys/quotas/rate-limit`, kept by the
//! core), after the static rates: the quota that applies to a `/v1/` path, or the global
//! quota for an AWS request, counted per client IP address.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use coffer_core::limits::{DEFAULT_MAX_KEYS, Rate, RateLimiter, Refusal};
use coffer_core::{Core, QuotaTarget};
use http::request::Parts;
use http_body_util::BodyExt as _;
use tokio::time::Instant;

/// The validated `[limits]` table. Every default applies in dev mode too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// A request's head (request line and headers) must arrive within this, counted from its
    /// first byte, or from when the connection became idle (hyper's `header_read_timeout`).
    pub header_read_timeout: Duration,
    /// A request's whole body must arrive within this, counted from its head.
    pub body_read_timeout: Duration,
    /// A connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// A TLS handshake must finish within this.
    pub tls_handshake_timeout: Duration,
    /// Open connections at most; the next one gets a 503 (plain HTTP) or is closed (TLS).
    pub max_connections: usize,
    /// The largest body of an AWS request (`POST /`), in bytes.
    pub aws_max_request_bytes: usize,
    /// The largest body of a Vault request (`/v1/*`), in bytes (Vault's `max_request_size`).
    pub vault_max_request_bytes: usize,
    /// On SIGTERM/SIGINT, in-flight requests get this long to finish.
    pub shutdown_grace: Duration,
    /// The request rate allowed per client address, per access key and per token (off when
    /// `None`).
    pub rate: Option<Rate>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            tls_handshake_timeout: Duration::from_secs(10),
            max_connections: 4096,
            // What the AWS front end accepted before this table existed (axum's default body
            // limit): AWS's own request bodies are far smaller (64 KiB secrets, 4 KiB KMS
            // plaintexts).
            aws_max_request_bytes: 2 * 1024 * 1024,
            vault_max_request_bytes: 32 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(10),
            rate: None,
        }
    }
}

/// Which API a request is for, which decides its body limit and its error shape.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Aws,
    Vault,
}

impl Api {
    fn of(path: &str) -> Self {
        if path.starts_with("/v1/") {
            Self::Vault
        } else {
            Self::Aws
        }
    }
}

/// The state of the request guard.
pub struct Guard {
    core: Arc<Core>,
    limits: Limits,
    per_ip: Option<RateLimiter<IpAddr>>,
    per_token: Option<RateLimiter<[u8; 32]>>,
}

impl Guard {
    pub fn new(core: Arc<Core>, limits: Limits) -> Self {
        Self {
            core,
            per_ip: limiter(&limits),
            per_token: limiter(&limits),
            limits,
        }
    }
}

/// A limiter of `[limits]`'s rate, if one is set: per client address and per token here, per
/// access key in the AWS front end (checked after the signature).
pub fn limiter<K: Hash + Eq + Clone>(limits: &Limits) -> Option<RateLimiter<K>> {
    limits.rate.map(|r| RateLimiter::new(r, DEFAULT_MAX_KEYS))
}

/// Refuses a request over a rate or with a body too large or too slow; otherwise hands the
/// front end the request with its whole body read.
pub async fn guard(
    State(g): State<Arc<Guard>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
    next: Next,
) -> Response {
    let deadline = Instant::now() + g.limits.body_read_timeout;
    let (parts, body) = req.into_parts();
    let api = Api::of(parts.uri.path());
    if let Some(limiter) = &g.per_ip
        && !limiter.check(&client_key(peer.ip()))
    {
        return refuse_draining(&g, peer, &parts, api, Refusal::Throttled, body, deadline).await;
    }
    if api == Api::Vault
        && let Some(limiter) = &g.per_token
        && let Some(token) = coffer_api_vault::token(&parts.headers)
        && !limiter.check(&coffer_crypto::hash::sha256(token.as_bytes()))
    {
        return refuse_draining(&g, peer, &parts, api, Refusal::Throttled, body, deadline).await;
    }
    let client = peer.ip().to_canonical();
    let quota = match api {
        Api::Vault => {
            let logical = parts.uri.path().strip_prefix("/v1/").unwrap_or_default();
            g.core.apply_rate_limit_quota(QuotaTarget::Vault(logical), client)
        }
        Api::Aws => g.core.apply_rate_limit_quota(QuotaTarget::Aws, client),
    };
    if let Some(decision) = &quota
        && !decision.allowed
    {
        drain(body, deadline);
        return match api {
            Api::Vault => coffer_api_vault::refuse_over_quota(&g.core, &refused(peer, &parts), decision).await,
            Api::Aws => refuse(&g, peer, &parts, api, Refusal::Throttled).await,
        };
    }
    let mut resp = read_and_serve(&g, peer, parts, api, body, deadline, next).await;
    if api == Api::Vault
        && let Some(headers) = quota.as_ref().and_then(|d| d.headers.as_ref())
    {
        coffer_api_vault::add_rate_limit_headers(&mut resp, headers);
    }
    resp
}

/// Reads the body within its size limit and deadline, then hands the request to its front end.
async fn read_and_serve(
    g: &Guard,
    peer: SocketAddr,
    parts: Parts,
    api: Api,
    body: Body,
    deadline: Instant,
    next: Next,
) -> Response {
    let limit = match api {
        Api::Aws => g.limits.aws_max_request_bytes,
        Api::Vault => g.limits.vault_max_request_bytes,
    };
    let too_large = Refusal::TooLarge { limit };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return refuse_draining(g, peer, &parts, api, too_large, body, deadline).await;
    }
    let capacity = declared.map_or(0, |n| n as usize);
    match read_body(body, limit, capacity, deadline).await {
        BodyRead::Whole(bytes) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        BodyRead::TooLarge(rest) => refuse_draining(g, peer, &parts, api, too_large, rest, deadline).await,
        BodyRead::TimedOut => refuse(g, peer, &parts, api, Refusal::BodyTimeout).await,
        // The client went away or sent a broken body: nobody reads the answer.
        BodyRead::Broken => http::StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The key a client address is rate-limited under: an IPv6 client usually holds a whole /64,
/// so that is what it is counted as.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
        },
        v4 => v4,
    }
}

enum BodyRead {
    Whole(Bytes),
    /// Over the limit: the rest of the body, still to be drained.
    TooLarge(Body),
    TimedOut,
    Broken,
}

async fn read_body(mut body: Body, limit: usize, capacity: usize, deadline: Instant) -> BodyRead {
    let mut buf = BytesMut::with_capacity(capacity.min(limit));
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return BodyRead::TimedOut,
            Ok(None) => return BodyRead::Whole(buf.freeze()),
            Ok(Some(Err(_))) => return BodyRead::Broken,
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if buf.len() + data.len() > limit {
                        return BodyRead::TooLarge(body);
                    }
                    buf.extend_from_slice(&data);
                }
            }
        }
    }
}

async fn refuse(g: &Guard, peer: SocketAddr, parts: &Parts, api: Api, refusal: Refusal) -> Response {
    match api {
        Api::Aws => coffer_api_aws::refuse(&g.core, peer, &parts.headers, refusal).await,
        Api::Vault => coffer_api_vault::refuse(&g.core, &refused(peer, parts), refusal).await,
    }
}

fn refused(peer: SocketAddr, parts: &Parts) -> coffer_api_vault::Refused<'_> {
    coffer_api_vault::Refused {
        peer,
        method: &parts.method,
        path: parts.uri.path(),
        headers: &parts.headers,
    }
}

/// Refuses the request, and reads and drops what the client still sends of its body (until
/// the body read deadline) so that the answer is not lost: a socket closed with unread data
/// is reset, and a reset discards the answer the client has not read yet.
async fn refuse_draining(
    g: &Guard,
    peer: SocketAddr,
    parts: &Parts,
    api: Api,
    refusal: Refusal,
    body: Body,
    deadline: Instant,
) -> Response {
    drain(body, deadline);
    refuse(g, peer, parts, api, refusal).await
}

/// Reads and drops the rest of a refused request's body until the body read deadline, so
/// that closing the socket does not reset the connection before the client reads the answer.
fn drain(mut body: Body, deadline: Instant) {
    tokio::spawn(async move { while let Ok(Some(Ok(_))) = tokio::time::timeout_at(deadline, body.frame()).await {} });
}
