//! Coffer's footprint (target P6): how long `coffer server --dev` takes from start to its
//! first successful signed request (median of `--starts` starts), and its resident memory
//! once it has served a few requests and gone idle (VmRSS from /proc/PID/status, Linux).
//! Prints one line of JSON per measurement. Every server it starts it stops again, through
//! its own child handle (by PID).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use coffer_bench::{Call, Endpoint, call_once};
use serde_json::json;

#[derive(Parser)]
struct Args {
    /// The coffer binary.
    #[arg(long)]
    coffer: String,
    /// How many starts the time-to-ready median is taken over.
    #[arg(long, default_value_t = 10)]
    starts: usize,
    /// Requests served before the idle memory is read.
    #[arg(long, default_value_t = 200)]
    requests: usize,
    /// Seconds of idleness before the memory is read.
    #[arg(long, default_value_t = 3)]
    idle: u64,
}

const ACCESS_KEY: &str = "AKIABENCHFOOTPRINT01";
const SECRET_KEY: &str = "bench-footprint-secret-key";

/// A dev server started by us; killed and reaped when dropped.
struct Server {
    child: Child,
    endpoint: Endpoint,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

fn list_call() -> Call {
    Call::aws_json("secretsmanager.ListSecrets", &json!({}))
}

/// Starts `coffer server --dev` and returns it with the time until it first answered a
/// signed ListSecrets with 200.
async fn start(coffer: &str) -> anyhow::Result<(Server, Duration)> {
    let port = free_port()?;
    let t0 = Instant::now();
    let child = Command::new(coffer)
        .args(["server", "--dev", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--dev-access-key", &format!("{ACCESS_KEY}:{SECRET_KEY}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {coffer}"))?;
    let endpoint = Endpoint::new(&format!("http://127.0.0.1:{port}"), ACCESS_KEY, SECRET_KEY, "us-east-1")?;
    let mut server = Server { child, endpoint };
    loop {
        if let Ok((200, _)) = call_once(&server.endpoint, &list_call()).await {
            return Ok((server, t0.elapsed()));
        }
        if let Some(status) = server.child.try_wait()? {
            bail!("the dev server exited with {status} before it answered");
        }
        if t0.elapsed() > Duration::from_secs(30) {
            bail!("the dev server did not answer within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// A field of /proc/PID/status in kB (VmRSS, VmHWM).
fn proc_status_kb(pid: u32, field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/PID/status")?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {field} in /proc/{pid}/status"))
}

fn median_ms(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v.get(v.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut times = Vec::new();
    for _ in 0..args.starts.max(1) {
        let (server, ready) = start(&args.coffer).await?;
        drop(server);
        times.push(ready);
    }
    let ms = |d: Option<&Duration>| d.map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    println!(
        "{}",
        json!({
            "target": "coffer --dev", "metric": "dev-ready", "unit": "ms",
            "value": median_ms(times.clone()), "min": ms(times.iter().min()), "max": ms(times.iter().max()),
            "samples": times.len(), "errors": 0,
        })
    );

    let (server, _) = start(&args.coffer).await?;
    let mut errors = 0u64;
    let create = Call::aws_json(
        "secretsmanager.CreateSecret",
        &json!({ "Name": "bench/footprint", "SecretString": "s".repeat(256) }),
    );
    let get = Call::aws_json(
        "secretsmanager.GetSecretValue",
        &json!({ "SecretId": "bench/footprint" }),
    );
    for i in 0..args.requests.max(1) {
        let call = if i == 0 { &create } else { &get };
        if !matches!(call_once(&server.endpoint, call).await, Ok((200, _))) {
            errors += 1;
        }
    }
    tokio::time::sleep(Duration::from_secs(args.idle)).await;
    let pid = server.child.id();
    let rss = proc_status_kb(pid, "VmRSS")?;
    let hwm = proc_status_kb(pid, "VmHWM")?;
    drop(server);
    println!(
        "{}",
        json!({
            "target": "coffer --dev", "metric": "idle-rss", "unit": "MiB",
            "value": rss as f64 / 1024.0, "peak_mib": hwm as f64 / 1024.0,
            "requests": args.requests, "idle_s": args.idle, "errors": errors,
        })
    );
    Ok(())
}
