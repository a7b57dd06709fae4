//! Coffer's load generator: fixed concurrency, fixed duration, warm-up excluded, latency in an
//! HDR histogram. Requests are AWS JSON calls signed with SigV4 by the real `aws-sigv4`
//! signer (re-signed every minute, well inside the 5-minute validity), so every request the
//! server sees is verified exactly as a real client's would be. One line of JSON comes out.
//!
//! Scenarios: `sm-get` (GetSecretValue of a 256-byte secret), `sm-put` (PutSecretValue,
//! spread over many secrets so none reaches its version quota). `--setup` creates what the
//! scenario reads first.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, bail};
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::json;

#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    SmGet,
    SmPut,
}

#[derive(Parser, Clone)]
struct Args {
    /// The server, e.g. http://127.0.0.1:8200.
    #[arg(long)]
    endpoint: String,
    #[arg(long, default_value = "testing")]
    access_key: String,
    #[arg(long, default_value = "testing")]
    secret_key: String,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, value_enum)]
    scenario: Scenario,
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Create the secrets the scenario needs, then exit.
    #[arg(long)]
    setup: bool,
    /// A label for the target, copied into the output.
    #[arg(long, default_value = "")]
    target: String,
    /// Send exactly this many requests (spread over the connections), with no warm-up and no
    /// time limit, then stop: a fixed workload for instruction counts (e.g. under callgrind).
    #[arg(long)]
    requests: Option<u64>,
}

const PUT_SECRETS_PER_CONN: usize = 16;

struct Call {
    target: &'static str,
    body: Bytes,
}

fn calls_for(scenario: Scenario, conn: usize) -> Vec<Call> {
    match scenario {
        Scenario::SmGet => vec![Call {
            target: "secretsmanager.GetSecretValue",
            body: Bytes::from_static(br#"{"SecretId":"bench/secret-256"}"#),
        }],
        Scenario::SmPut => (0..PUT_SECRETS_PER_CONN)
            .map(|i| Call {
                target: "secretsmanager.PutSecretValue",
                body: Bytes::from(
                    json!({ "SecretId": format!("bench/put-{conn}-{i}"), "SecretString": "p".repeat(256) }).to_string(),
                ),
            })
            .collect(),
    }
}

fn setup_calls(scenario: Scenario, connections: usize) -> Vec<Call> {
    let create = |name: String| Call {
        target: "secretsmanager.CreateSecret",
        body: Bytes::from(json!({ "Name": name, "SecretString": "s".repeat(256) }).to_string()),
    };
    match scenario {
        Scenario::SmGet => vec![create("bench/secret-256".to_string())],
        Scenario::SmPut => (0..connections)
            .flat_map(|c| (0..PUT_SECRETS_PER_CONN).map(move |i| format!("bench/put-{c}-{i}")))
            .map(create)
            .collect(),
    }
}

/// A request ready to send: target, body and the SigV4 headers.
struct Signed {
    body: Bytes,
    headers: Vec<(String, String)>,
}

fn sign_call(args: &Args, host: &str, call: &Call) -> anyhow::Result<Signed> {
    let service = call.target.split('.').next().unwrap_or_default();
    let identity = Credentials::new(&args.access_key, &args.secret_key, None, None, "loadgen").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(&args.region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let base = [
        ("content-type", "application/x-amz-json-1.1"),
        ("host", host),
        ("x-amz-target", call.target),
    ];
    let signable = SignableRequest::new(
        "POST",
        format!("{}/", args.endpoint),
        base.iter().copied(),
        SignableBody::Bytes(&call.body),
    )?;
    let (instructions, _) = sign(signable, &params)?.into_parts();
    let mut headers: Vec<(String, String)> = base.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    headers.extend(instructions.headers().map(|(k, v)| (k.to_string(), v.to_string())));
    Ok(Signed {
        body: call.body.clone(),
        headers,
    })
}

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request. A server that closes the connection after each answer (moto's does)
/// costs a reconnect, which is timed like any other part of the request, not an error.
async fn send(sender: &mut Sender, addr: &str, s: &Signed) -> anyhow::Result<(u16, Bytes)> {
    let mut b = http::Request::builder().method("POST").uri("/");
    for (k, v) in &s.headers {
        b = b.header(k, v);
    }
    if sender.is_closed() || sender.ready().await.is_err() {
        *sender = connect(addr).await?;
        sender.ready().await?;
    }
    let resp = sender.send_request(b.body(Full::new(s.body.clone()))?).await?;
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

struct ConnResult {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

async fn run_conn(
    args: Arc<Args>,
    addr: String,
    host: String,
    conn: usize,
    start: Instant,
) -> anyhow::Result<ConnResult> {
    let calls = calls_for(args.scenario, conn);
    let mut sender = connect(&addr).await?;
    let mut signed: Vec<Signed> = calls
        .iter()
        .map(|c| sign_call(&args, &host, c))
        .collect::<Result<_, _>>()?;
    let mut signed_at = Instant::now();
    // With a fixed request count: this connection's share, no warm-up, no deadline.
    let quota = args.requests.map(|n| {
        let conns = args.connections.max(1) as u64;
        n / conns + u64::from((conn as u64) < n % conns)
    });
    let (warm_end, end) = match quota {
        Some(_) => (start, None),
        None => {
            let warm_end = start + Duration::from_secs(args.warmup);
            (warm_end, Some(warm_end + Duration::from_secs(args.duration)))
        }
    };
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut ok, mut errors, mut first_error, mut i) = (0u64, 0u64, None, 0usize);
    loop {
        let now = Instant::now();
        if end.is_some_and(|end| now >= end) || quota.is_some_and(|q| i as u64 >= q) {
            break;
        }
        if now.duration_since(signed_at) > Duration::from_secs(60) {
            signed = calls
                .iter()
                .map(|c| sign_call(&args, &host, c))
                .collect::<Result<_, _>>()?;
            signed_at = now;
        }
        let req = &signed[i % signed.len()];
        i += 1;
        let t0 = Instant::now();
        let result = send(&mut sender, &addr, req).await;
        let micros = t0.elapsed().as_micros() as u64;
        let measured = t0 >= warm_end;
        match result {
            Ok((200, _)) => {
                if measured {
                    ok += 1;
                    let _ = hist.record(micros.max(1));
                }
            }
            Ok((status, body)) => {
                if measured {
                    errors += 1;
                }
                first_error.get_or_insert_with(|| format!("HTTP {status}: {}", String::from_utf8_lossy(&body)));
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
                sender = connect(&addr).await?;
            }
        }
    }
    Ok(ConnResult {
        hist,
        ok,
        errors,
        first_error,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let host = args
        .endpoint
        .strip_prefix("http://")
        .context("only http:// endpoints are supported")?
        .trim_end_matches('/')
        .to_string();
    let addr = host.clone();
    if args.setup {
        let mut sender = connect(&addr).await?;
        for call in setup_calls(args.scenario, args.connections) {
            let (status, body) = send(&mut sender, &addr, &sign_call(&args, &host, &call)?).await?;
            let text = String::from_utf8_lossy(&body);
            if status != 200 && !text.contains("ResourceExistsException") && !text.contains("already exists") {
                bail!("setup {} failed: HTTP {status}: {text}", call.target);
            }
        }
        return Ok(());
    }
    let start = Instant::now();
    let tasks: Vec<_> = (0..args.connections)
        .map(|c| tokio::spawn(run_conn(args.clone(), addr.clone(), host.clone(), c, start)))
        .collect();
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut ok, mut errors, mut first_error) = (0u64, 0u64, None);
    for t in tasks {
        let r = t.await??;
        hist.add(&r.hist)?;
        ok += r.ok;
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    let secs = match args.requests {
        Some(_) => start.elapsed().as_secs_f64(),
        None => args.duration as f64,
    };
    let out = json!({
        "target": args.target,
        "scenario": match args.scenario { Scenario::SmGet => "sm-get", Scenario::SmPut => "sm-put" },
        "connections": args.connections,
        "duration_s": secs,
        "requests": ok,
        "errors": errors,
        "rps": ok as f64 / secs,
        "p50_us": hist.value_at_quantile(0.50),
        "p99_us": hist.value_at_quantile(0.99),
        "max_us": hist.max(),
        "first_error": first_error,
    });
    println!("{out}");
    Ok(())
}
