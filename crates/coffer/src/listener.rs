//! The accept loop, one for plain HTTP and TLS: HTTP/1.1 and HTTP/2 (hyper-util's auto
//! builder), a bound on open connections, a TLS handshake timeout, hyper's header read
//! timeout, an idle timeout, and a graceful shutdown bounded in time.
//!
//! Why not `axum::serve`/`axum-server`: neither bounds the connection count or the time a
//! stalled client may hold a connection (or the process, at shutdown).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::time::Instant;
use tower::ServiceExt as _;

use crate::limits::Limits;

/// At most this many connections over the limit are being answered "503" at once; past it,
/// such a connection is closed at once.
const MAX_REJECTING: usize = 256;

/// The answer to a plain-HTTP connection over the limit.
const OVER_LIMIT: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: text/plain; charset=utf-8\r\n\
content-length: 43\r\n\
retry-after: 1\r\n\
connection: close\r\n\
\r\n\
Coffer: too many connections, retry later.\n";

/// Loads the TLS certificate chain and key (PEM) into a rustls server config on aws-lc-rs,
/// offering HTTP/2 and HTTP/1.1.
pub fn tls_acceptor(cert: &Path, key: &Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("loading TLS certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("loading TLS key {}", key.display()))?;
    // Other TLS clients of the process (reqwest) use the process default: the same provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// Raises the soft open-file limit to the hard one, so the connection limit can be reached,
/// and logs both.
pub fn raise_open_file_limit(limits: &Limits) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(files) => {
            tracing::info!(
                max_connections = limits.max_connections,
                open_files = files,
                "connection limit"
            );
            if (files as usize) < limits.max_connections.saturating_add(64) {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    open_files = files,
                    "the open-file limit is below max_connections: raise the hard limit (ulimit -Hn) or lower [limits] max_connections"
                );
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, max_connections = limits.max_connections, "cannot raise the open-file limit")
        }
    }
}

/// Serves `router` on `listener` until SIGTERM/SIGINT, then stops accepting, lets requests in
/// flight finish for up to the grace period, and returns (closing whatever is left).
pub async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    limits: &Limits,
) -> anyhow::Result<()> {
    serve_until(listener, tls, router, limits, shutdown_signal()).await
}

async fn serve_until(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Finds dead peers; an idle live one is closed by the idle timeout.
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    let builder = Arc::new(builder);
    let max = limits.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(max));
    let rejecting = Arc::new(Semaphore::new(MAX_REJECTING));
    let (stop_tx, stop_rx) = watch::channel(false);
    let conn = Arc::new(ConnSettings {
        builder,
        router,
        tls,
        idle_timeout: limits.idle_timeout,
        header_read_timeout: limits.header_read_timeout,
        tls_handshake_timeout: limits.tls_handshake_timeout,
    });
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors (or a connection reset before accept): wait a
                    // little rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("coffer_connections_refused_total", "reason" => "max_connections").increment(1);
            reject(stream, conn.tls.is_some(), &rejecting);
            continue;
        };
        metrics::counter!("coffer_connections_accepted_total").increment(1);
        metrics::gauge!("coffer_connections_open").increment(1.0);
        let _ = stream.set_nodelay(true);
        let conn = conn.clone();
        let stop = stop_rx.clone();
        tokio::spawn(async move {
            conn.serve(stream, peer, stop).await;
            metrics::gauge!("coffer_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    let open = max.saturating_sub(permits.available_permits());
    tracing::info!(open_connections = open, grace = ?limits.shutdown_grace, "shutting down: no new connections");
    let _ = stop_tx.send(true);
    let all_closed = permits.acquire_many(u32::try_from(max).unwrap_or(u32::MAX));
    match tokio::time::timeout(limits.shutdown_grace, all_closed).await {
        Ok(_) => tracing::info!("every connection closed"),
        Err(_) => tracing::warn!(
            open_connections = max.saturating_sub(permits.available_permits()),
            "grace period over: closing the remaining connections"
        ),
    }
    Ok(())
}

/// Answers a connection over the limit without holding up the accept loop: plain HTTP gets a
/// 503 with `connection: close`; TLS (where a plain answer means nothing) is closed at once.
fn reject(stream: TcpStream, tls: bool, rejecting: &Arc<Semaphore>) {
    if tls {
        return;
    }
    let Ok(permit) = rejecting.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _permit = permit;
        let mut stream = stream;
        let answer = async {
            stream.write_all(OVER_LIMIT).await?;
            stream.shutdown().await?;
            // Read what the client sent, so that closing does not reset the connection and
            // discard the answer before the client reads it.
            let mut sink = [0u8; 4096];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<(), std::io::Error>(())
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), answer).await;
    });
}

struct ConnSettings {
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: Router,
    tls: Option<tokio_rustls::TlsAcceptor>,
    idle_timeout: Duration,
    header_read_timeout: Duration,
    tls_handshake_timeout: Duration,
}

impl ConnSettings {
    async fn serve(&self, stream: TcpStream, peer: SocketAddr, stop: watch::Receiver<bool>) {
        match &self.tls {
            None => self.serve_io(stream, peer, stop).await,
            Some(acceptor) => match tokio::time::timeout(self.tls_handshake_timeout, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => self.serve_io(tls, peer, stop).await,
                Ok(Err(e)) => {
                    metrics::counter!("coffer_connections_closed_total", "reason" => "tls_handshake_failed")
                        .increment(1);
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                }
                Err(_) => {
                    metrics::counter!("coffer_connections_closed_total", "reason" => "tls_handshake_timeout")
                        .increment(1);
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            },
        }
    }

    /// Serves one connection until it ends, its idle timeout passes, or the server stops (then
    /// the connection finishes the requests in flight and closes; HTTP/2 sends GOAWAY).
    async fn serve_io<I>(&self, io: I, peer: SocketAddr, mut stop: watch::Receiver<bool>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let activity = Arc::new(Activity::new());
        let service = {
            let router = self.router.clone();
            let activity = activity.clone();
            hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
                let mut req = req.map(Body::new);
                req.extensions_mut().insert(ConnectInfo(peer));
                let busy = activity.begin();
                let router = router.clone();
                async move {
                    let resp = router.oneshot(req).await;
                    drop(busy);
                    resp.map_err(|e: Infallible| match e {})
                }
            })
        };
        let conn = self.builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(conn);
        // The auto builder reads the first bytes to tell HTTP/1 from HTTP/2 before hyper's
        // header timer runs, so a client that sends less than that and stalls would wait for
        // the idle timeout: the first request must begin within the header read timeout.
        let first_request_by = Instant::now() + self.header_read_timeout;
        let mut closing = *stop.borrow();
        if closing {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            let idle_at = activity.idle_deadline(self.idle_timeout);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                    return;
                }
                changed = stop.changed(), if !closing => {
                    if changed.is_err() || *stop.borrow() {
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
                () = tokio::time::sleep_until(first_request_by), if !activity.started() => {
                    if !activity.started() {
                        metrics::counter!("coffer_connections_closed_total", "reason" => "header_timeout").increment(1);
                        tracing::debug!(%peer, "no request within the header read timeout: closing the connection");
                        return;
                    }
                }
                () = tokio::time::sleep_until(idle_at), if !closing => {
                    if activity.is_idle_for(self.idle_timeout) {
                        metrics::counter!("coffer_connections_closed_total", "reason" => "idle_timeout").increment(1);
                        tracing::debug!(%peer, "idle timeout: closing the connection");
                        closing = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Requests in flight on one connection, and when the last one ended.
struct Activity {
    start: Instant,
    in_flight: AtomicUsize,
    /// Whether a request has begun.
    started: AtomicBool,
    /// When the connection was last busy, in milliseconds since `start`.
    last_busy_ms: AtomicU64,
}

/// Marks a request in flight until dropped.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            in_flight: AtomicUsize::new(0),
            started: AtomicBool::new(false),
            last_busy_ms: AtomicU64::new(0),
        }
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.started.store(true, Ordering::Release);
        self.touch();
        Busy(self.clone())
    }

    fn started(&self) -> bool {
        self.started.load(Ordering::Acquire)
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_busy_ms.store(ms, Ordering::Release);
    }

    /// When to look again whether the connection has been idle for `timeout`: then, if it is
    /// idle now; a timeout from now if a request is in flight (its end wakes nothing).
    fn idle_deadline(&self, timeout: Duration) -> Instant {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Instant::now() + timeout;
        }
        let last = Duration::from_millis(self.last_busy_ms.load(Ordering::Acquire));
        self.start + last + timeout
    }

    fn is_idle_for(&self, timeout: Duration) -> bool {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return false;
        }
        let last = Duration::from_millis(self.last_busy_ms.load(Ordering::Acquire));
        self.start.elapsed() >= last + timeout
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
