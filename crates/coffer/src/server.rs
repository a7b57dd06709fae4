//! `coffer server`: builds the storage backend and the core, then serves every API on one
//! listener (plain HTTP in dev mode; TLS with rustls in production unless the config opts
//! out with `dangerous_plaintext_http`).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use coffer_core::{AuditDeviceSpec, Core, CoreOptions, DevInit, RootCredentials};
use coffer_crypto::{SecretBytes, SecretString};
use coffer_storage::DynBackend;
use coffer_storage::memory::MemoryBackend;
use coffer_storage::redb_backend::RedbBackend;
use serde::{Deserialize, Serialize};

use crate::cli::{LogFormat, ServerArgs};
use crate::config::{self, Config, Transport};
use crate::limits::{self, Limits};
use crate::listener;

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    init_logging(args.log_format);
    if args.dev {
        run_dev(args).await
    } else {
        let Some(path) = args.config.as_deref() else {
            bail!("give --config FILE for production mode, or --dev for a throwaway dev server");
        };
        let mut cfg = Config::load(path)?;
        if let Some(listen) = args.listen {
            cfg.listen = listen;
        }
        if let Some(path) = &args.audit_file {
            config::add_audit_device(&mut cfg.audit, file_device(path))?;
        }
        run_production(cfg).await
    }
}

fn file_device(path: &Path) -> AuditDeviceSpec {
    AuditDeviceSpec::File {
        name: "file".into(),
        path: path.to_path_buf(),
        max_bytes: coffer_core::DEFAULT_AUDIT_FILE_MAX_BYTES,
    }
}

/// The server log on standard error: `COFFER_LOG` sets the level or an `EnvFilter` directive
/// (`info` by default), `--log-format json` makes each line a JSON object. Lines never carry
/// request bodies, headers or secret values.
fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("COFFER_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Json => builder.json().with_current_span(false).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
    };
}

/// Every API on one router, behind the request guard of `[limits]` (which reads every body,
/// so axum's own body limit is off). `open_metrics` serves `/metrics` without a token.
fn app(core: Arc<Core>, secure_transport: bool, limits: &Limits, open_metrics: bool) -> Router {
    let aws = coffer_api_aws::AwsOptions {
        secure_transport,
        key_rate: limits::limiter(limits),
    };
    let guard = Arc::new(limits::Guard::new(core.clone(), limits.clone()));
    install_metrics(&core);
    Router::new()
        .merge(coffer_api_aws::router_with_options(core.clone(), aws))
        .merge(coffer_api_vault::metrics_router(core.clone(), open_metrics))
        .merge(coffer_api_vault::router(core))
        .fallback(not_found)
        .layer(DefaultBodyLimit::disable())
        .layer(middleware::from_fn_with_state(guard, limits::guard))
        .layer(middleware::from_fn(log_request))
}

/// Paths outside every API (`/v1/` paths are the Vault front end's, which answers them).
async fn not_found() -> Response {
    StatusCode::NOT_FOUND.into_response()
}

/// Installs the process's Prometheus recorder (once: the `metrics` facade has one global
/// recorder) and gives the core its renderer.
fn install_metrics(core: &Core) {
    use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    let handle = HANDLE.get_or_init(|| {
        // Seconds: 100 µs to 10 s. Group sizes: 1 to 1,024 callers.
        const SECONDS: [f64; 14] = [
            0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 2.5, 10.0,
        ];
        const CALLERS: [f64; 8] = [1.0, 2.0, 4.0, 16.0, 64.0, 256.0, 512.0, 1024.0];
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("coffer_storage_commit_group_callers".into()), &CALLERS)
            })
            .map(PrometheusBuilder::build_recorder);
        match recorder {
            Ok(recorder) => {
                let handle = recorder.handle();
                match metrics::set_global_recorder(recorder) {
                    Ok(()) => {
                        describe_metrics();
                        Some(handle)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics are off: a recorder was already installed");
                        None
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics are off");
                None
            }
        }
    });
    if let Some(handle) = handle.clone() {
        core.set_metrics_renderer(Box::new(move || handle.render()));
    }
}

/// The `# HELP` text of every metric Coffer records.
fn describe_metrics() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "coffer_requests_total",
        "Requests answered, by API, operation (or /v1/ route) and HTTP status."
    );
    describe_counter!(
        "coffer_request_errors_total",
        "Failed AWS requests, by API, operation and AWS error code."
    );
    describe_histogram!(
        "coffer_request_duration_seconds",
        "Time from a request's head to its answer, by API and operation."
    );
    describe_gauge!("coffer_sealed", "1 when the server is sealed.");
    describe_gauge!("coffer_initialized", "1 when the server is initialized.");
    describe_gauge!("coffer_connections_open", "Client connections open now.");
    describe_counter!("coffer_connections_accepted_total", "Client connections accepted.");
    describe_counter!(
        "coffer_connections_refused_total",
        "Client connections refused at the connection limit."
    );
    describe_counter!(
        "coffer_connections_closed_total",
        "Connections closed by a timeout or a failed TLS handshake, by reason."
    );
    describe_histogram!(
        "coffer_storage_commit_seconds",
        "Durable storage commits (one fsync per group), by outcome."
    );
    describe_histogram!(
        "coffer_storage_commit_group_callers",
        "Writers whose changes one storage commit carried."
    );
    describe_counter!("coffer_audit_lines_written_total", "Audit lines written, by device.");
    describe_counter!(
        "coffer_audit_lines_failed_total",
        "Audit lines a device failed to write, by device."
    );
    describe_gauge!(
        "coffer_audit_queue_depth",
        "Audit lines waiting for their device's writer, by device."
    );
    describe_counter!(
        "coffer_rotations_total",
        "Secret rotation runs, by outcome (started, succeeded, failed)."
    );
}

/// Logs method, path, AWS target and status at debug level (never headers or bodies, which
/// carry credentials and secret values), and counts the request in the metrics: per API and
/// operation (an AWS operation Coffer serves, or the route of a `/v1/` path: never a secret's
/// name), its status and error code, and its duration.
async fn log_request(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let start = std::time::Instant::now();
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    tracing::debug!(%method, %path, %target, status, micros = elapsed.as_micros() as u64, "request");
    let (api, operation, error): (&'static str, String, Option<String>) =
        match resp.extensions().get::<coffer_api_aws::CallLabels>() {
            Some(l) => (l.service, l.operation.clone(), l.error.clone()),
            None => match route {
                Some(r) if r.starts_with("/v1/") => ("vault", r, None),
                Some(r) if r == "/" => ("aws", "unknown".to_owned(), None),
                Some(r) => ("other", r, None),
                None => ("other", "unmatched".to_owned(), None),
            },
        };
    metrics::counter!("coffer_requests_total", "api" => api, "operation" => operation.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("coffer_request_duration_seconds", "api" => api, "operation" => operation.clone())
        .record(elapsed.as_secs_f64());
    if let Some(code) = error {
        metrics::counter!("coffer_request_errors_total", "api" => api, "operation" => operation, "code" => code)
            .increment(1);
    }
    resp
}

/// The dev credentials file written beside `--dev-storage`, so a restart can unseal. Dev mode
/// only: it holds the unseal key in clear, which is exactly what dev mode trades away.
#[derive(Serialize, Deserialize)]
struct DevCredentialsFile {
    unseal_key: String,
    account_id: String,
    access_key_id: String,
    secret_access_key: String,
    root_token: String,
}

fn dev_credentials_path(storage: &Path) -> PathBuf {
    let mut p = storage.as_os_str().to_owned();
    p.push(".dev-credentials.json");
    PathBuf::from(p)
}

fn parse_dev_access_key(s: &str) -> anyhow::Result<(String, SecretBytes)> {
    let Some((id, secret)) = s.split_once(':') else {
        bail!("--dev-access-key must look like ID:SECRET");
    };
    if id.is_empty() || secret.is_empty() || id.contains('/') {
        bail!("--dev-access-key must look like ID:SECRET, both non-empty, without '/'");
    }
    Ok((id.to_string(), SecretBytes::from_slice(secret.as_bytes())))
}

async fn run_dev(args: ServerArgs) -> anyhow::Result<()> {
    let access_key = args.dev_access_key.as_deref().map(parse_dev_access_key).transpose()?;
    if let Some(a) = &args.dev_account_id
        && (a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit()))
    {
        bail!("--dev-account-id must be 12 digits");
    }
    let backend: DynBackend = match &args.dev_storage {
        Some(path) => Arc::new(RedbBackend::open(path).with_context(|| format!("opening {}", path.display()))?),
        None => Arc::new(MemoryBackend::new()),
    };
    let mut audit = Vec::new();
    if let Some(path) = &args.audit_file {
        config::add_audit_device(&mut audit, file_device(path))?;
    }
    let limits = Limits::default();
    listener::raise_open_file_limit(&limits);
    let listen = args.listen.unwrap_or_else(config::default_listen);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let addr = listener.local_addr()?;
    let options = CoreOptions {
        audit,
        dev_mode: true,
        allow_reset: args.dev_allow_reset,
        background_interval: Duration::from_secs(5),
        advertise_endpoint: Some(advertised_endpoint("http", addr)),
        ca_bundle: None,
        // Dev mode is one developer's machine: their own programs may rotate.
        allow_command_functions: true,
    };
    let core = Core::new(backend, options);
    let existing = match &args.dev_storage {
        Some(path) if core.seal_status().await?.initialized => {
            let creds_path = dev_credentials_path(path);
            let text = std::fs::read_to_string(&creds_path).with_context(|| {
                format!(
                    "{} is initialized but {} is missing",
                    path.display(),
                    creds_path.display()
                )
            })?;
            let creds: DevCredentialsFile = serde_json::from_str(&text).context("reading the dev credentials file")?;
            core.unseal(&creds.unseal_key, &coffer_core::Client::default())
                .await
                .context("unsealing with the dev unseal key")?;
            Some(creds)
        }
        _ => None,
    };
    let creds = match existing {
        Some(c) => c,
        None => {
            let dev = DevInit {
                access_key,
                account_id: args.dev_account_id.clone(),
                root_token: args.dev_root_token.clone(),
            };
            let (root, unseal_key) = core.init_dev(dev).await.context("initializing the dev server")?;
            let creds = dev_file(&root, &unseal_key);
            if let Some(path) = &args.dev_storage {
                write_private(&dev_credentials_path(path), &serde_json::to_vec_pretty(&creds)?)?;
            }
            creds
        }
    };
    print_dev_banner(addr, &creds, args.dev_storage.as_deref(), args.dev_allow_reset);
    core.spawn_background();
    let router = app(core, false, &limits, true);
    listener::serve(listener, None, router, &limits).await
}

/// The URL local programs (command rotation functions) reach this server at: a wildcard
/// listen address is reached on loopback.
fn advertised_endpoint(scheme: &str, addr: std::net::SocketAddr) -> String {
    let ip = match addr.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("{scheme}://{}", std::net::SocketAddr::new(ip, addr.port()))
}

fn dev_file(root: &RootCredentials, unseal_key: &SecretString) -> DevCredentialsFile {
    DevCredentialsFile {
        unseal_key: unseal_key.expose().to_string(),
        account_id: root.account_id.clone(),
        access_key_id: root.access_key_id.clone(),
        secret_access_key: String::from_utf8_lossy(root.secret_access_key.expose()).into_owned(),
        root_token: root.root_token.expose().to_string(),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

fn print_dev_banner(addr: SocketAddr, c: &DevCredentialsFile, storage: Option<&Path>, reset: bool) {
    let endpoint = format!("http://{addr}");
    let storage = match storage {
        Some(p) => format!("file {} (dev mode: the unseal key is kept beside it)", p.display()),
        None => "in memory (everything is lost when the server stops)".to_string(),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "Coffer dev server: unsealed, storage {storage}.\n\
         WARNING: dev mode prints its credentials and is not for production.\n\
         \n\
         Endpoint:              {endpoint}\n\
         Account id:            {account}\n\
         Root access key id:    {akid}\n\
         Root secret key:       {secret}\n\
         Root token:            {token}\n\
         Unseal key:            {unseal}\n\
         \n\
         Point the aws CLI, boto3 and the AWS SDKs at it:\n\
         \n    export AWS_ENDPOINT_URL={endpoint}\
         \n    export AWS_ACCESS_KEY_ID={akid}\
         \n    export AWS_SECRET_ACCESS_KEY={secret}\
         \n    export AWS_DEFAULT_REGION=us-east-1\
         \n    export VAULT_ADDR={endpoint}\
         \n    export VAULT_TOKEN={token}\n\
         \n\
         Then, for example:\n\
         \n    aws --endpoint-url {endpoint} secretsmanager create-secret --name demo/db-password --secret-string 's3cr3t'\
         \n    aws --endpoint-url {endpoint} secretsmanager get-secret-value --secret-id demo/db-password\n",
        account = c.account_id,
        akid = c.access_key_id,
        secret = c.secret_access_key,
        token = c.root_token,
        unseal = c.unseal_key,
    );
    if reset {
        let _ = writeln!(
            out,
            "Conformance mode: POST {endpoint}/moto-api/reset wipes all data.\n"
        );
    }
    let _ = out.flush();
}

async fn run_production(cfg: Config) -> anyhow::Result<()> {
    if let Some(dir) = cfg.storage_path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let backend: DynBackend = Arc::new(
        RedbBackend::open_with_cache(&cfg.storage_path, cfg.storage_cache_bytes)
            .with_context(|| format!("opening {}", cfg.storage_path.display()))?,
    );
    listener::raise_open_file_limit(&cfg.limits);
    let tls = match &cfg.transport {
        Transport::Tls { cert, key } => Some(listener::TlsCerts::load(cert, key)?),
        Transport::DangerousPlaintext => None,
    };
    let tcp = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("binding {}", cfg.listen))?;
    let addr = tcp.local_addr()?;
    let scheme = match cfg.transport {
        Transport::Tls { .. } => "https",
        Transport::DangerousPlaintext => "http",
    };
    let ca_bundle = match &cfg.transport {
        Transport::Tls { cert, .. } => Some(cert.display().to_string()),
        Transport::DangerousPlaintext => None,
    };
    let core = Core::new(
        backend,
        CoreOptions {
            audit: cfg.audit.clone(),
            advertise_endpoint: Some(advertised_endpoint(scheme, addr)),
            ca_bundle,
            allow_command_functions: cfg.allow_command_functions,
            ..CoreOptions::default()
        },
    );
    let status = core.seal_status().await?;
    let next = if !status.initialized {
        "not initialized: run `coffer operator init`"
    } else {
        "sealed: run `coffer operator unseal` with the threshold of key shares"
    };
    println!(
        "Coffer listening on {scheme}://{addr} (storage {}); {next}",
        cfg.storage_path.display()
    );
    if matches!(cfg.transport, Transport::DangerousPlaintext) {
        tracing::warn!("serving plain HTTP (dangerous_plaintext_http = true): secrets cross the network in clear");
    }
    let _ = std::io::stdout().flush();
    core.spawn_background();
    listener::reload_on_sighup(tls.clone(), core.clone())?;
    let router = app(core, tls.is_some(), &cfg.limits, cfg.unauthenticated_metrics_access);
    listener::serve(tcp, tls, router, &cfg.limits).await
}
