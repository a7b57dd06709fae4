//! The accept loop, one for plain HTTP and TLS: HTTP/1.1 and HTTP/2 (hyper-util's auto
//! builder), a bound on open connections, a TLS handshake timeout, hyper's header read
//! timeout, an idle timeout, and a graceful shutdown bounded in time.
//!
//! Why not `axum::serve`/`axum-server`: neither bounds the connection count or the time a
//! stalled client may hold a connection (or the process, at shutdown).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use coffer_core::Core;
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

/// The TLS configuration the listener serves: the certificate chain and key read from two PEM
/// files, re-read by [`TlsCerts::reload`] (on SIGHUP, [`reload_on_sighup`]). Each handshake
/// takes the configuration current at its start, so a reload changes what new connections
/// see and leaves established ones alone.
///
/// Defaults only: TLS 1.3 and 1.2 (rustls implements nothing older), and rustls's aws-lc-rs
/// cipher suites, all AEAD with forward secrecy (TLS 1.2: ECDHE with AES-GCM or
/// ChaCha20-Poly1305; no CBC, RC4, 3DES, static RSA or export suites).
pub struct TlsCerts {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

impl TlsCerts {
    /// Loads the certificate chain and key; fails (naming the file) when either cannot be
    /// read, holds no certificate or key, or the key is not the certificate's.
    pub fn load(cert: &Path, key: &Path) -> anyhow::Result<Arc<Self>> {
        // Other TLS clients of the process (reqwest) use the process default: the same provider.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let (config, _) = server_config(cert, key)?;
        Ok(Arc::new(Self {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(Arc::new(config)),
        }))
    }

    /// Re-reads both files and, when they make a valid configuration, serves it to every new
    /// handshake; otherwise keeps the current one. Returns the SHA-256 fingerprint (hex) of
    /// the certificate now served.
    pub fn reload(&self) -> anyhow::Result<String> {
        let (config, fingerprint) = server_config(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(config);
        Ok(fingerprint)
    }

    /// An acceptor for one handshake, with the configuration current now.
    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let config = self.current.read().unwrap_or_else(PoisonError::into_inner).clone();
        tokio_rustls::TlsAcceptor::from(config)
    }
}

/// A rustls server config on aws-lc-rs for the PEM files, offering HTTP/2 and HTTP/1.1, and
/// the SHA-256 fingerprint of its leaf certificate.
fn server_config(cert: &Path, key: &Path) -> anyhow::Result<(rustls::ServerConfig, String)> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("loading TLS certificate {}", cert.display()))?;
    let Some(leaf) = certs.first() else {
        bail!("no certificate in {}", cert.display());
    };
    let fingerprint = coffer_crypto::hash::sha256_hex(leaf.as_ref());
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("loading TLS key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((config, fingerprint))
}

/// Re-reads the TLS certificate and key on every SIGHUP, for as long as the process runs. A
/// reload that fails keeps the certificate served until then. Each reload, and its outcome,
/// is logged and recorded as a `ConfigReload` operator event.
pub fn reload_on_sighup(tls: Option<Arc<TlsCerts>>, core: Arc<Core>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangups = signal(SignalKind::hangup()).context("installing the SIGHUP handler")?;
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let Some(tls) = &tls else {
                tracing::info!("SIGHUP: no TLS certificate to reload (plain HTTP)");
                let details = serde_json::json!({ "reloaded": false, "reason": "plain HTTP" });
                core.config_reloaded("tls", Ok(details)).await;
                continue;
            };
            match tls.reload() {
                Ok(fingerprint) => {
                    tracing::info!(certificate_sha256 = %fingerprint, "SIGHUP: TLS certificate reloaded");
                    let details = serde_json::json!({ "reloaded": true, "certificateSha256": fingerprint });
                    core.config_reloaded("tls", Ok(details)).await;
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    tracing::error!(error = %message, "SIGHUP: TLS certificate not reloaded; still serving the previous one");
                    core.config_reloaded("tls", Err(message)).await;
                }
            }
        }
    });
    Ok(())
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
    tls: Option<Arc<TlsCerts>>,
    router: Router,
    limits: &Limits,
) -> anyhow::Result<()> {
    serve_until(listener, tls, router, limits, shutdown_signal()).await
}

async fn serve_until(
    listener: TcpListener,
    tls: Option<Arc<TlsCerts>>,
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
    tls: Option<Arc<TlsCerts>>,
    idle_timeout: Duration,
    header_read_timeout: Duration,
    tls_handshake_timeout: Duration,
}

impl ConnSettings {
    async fn serve(&self, stream: TcpStream, peer: SocketAddr, stop: watch::Receiver<bool>) {
        match &self.tls {
            None => self.serve_io(stream, peer, stop).await,
            Some(certs) => {
                match tokio::time::timeout(self.tls_handshake_timeout, certs.acceptor().accept(stream)).await {
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
                }
            }
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
