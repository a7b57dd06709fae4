//! Coffer's load generator: fixed concurrency, fixed duration, warm-up excluded, latency in an
//! HDR histogram. AWS calls are signed with SigV4 (see the crate's library) and re-signed
//! every minute, well inside the 5-minute validity; Vault calls carry `--vault-token`. One
//! line of JSON comes out.
//!
//! Scenarios: `sm-get` (GetSecretValue of a 256-byte secret), `sm-put` (PutSecretValue,
//! spread over many secrets so none reaches its version quota), `sm-get-many`
//! (GetSecretValue of secrets picked at random among `--secrets` of them, for the scale
//! scenario; each connection reads its secrets once before the warm-up starts), `sm-list`
//! (the first page of ListSecrets), `ssm-get` (GetParameter with decryption of a 256-byte
//! SecureString), `kms-encrypt` (Encrypt of 128 bytes under a symmetric key), and the Vault
//! ones: `kv-read` (KV v2 read of a 256-byte value), `kv-write` (KV v2 writes, spread like
//! sm-put), `transit-encrypt` (128 bytes). `--setup` creates what the scenario reads first;
//! `--probe K` sends K requests one after another instead of loading for a time;
//! `--setup-user NAME` creates an IAM user allowed what the scenarios do on `bench/*` and
//! nothing else, and prints its access key as JSON.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use coffer_bench::{Call, Endpoint, Signed, connect, send, sign_call, xml_text};
use hdrhistogram::Histogram;
use serde_json::json;

#[derive(Clone, Copy, ValueEnum)]
enum Scenario {
    SmGet,
    SmPut,
    SmGetMany,
    SmList,
    SsmGet,
    KmsEncrypt,
    KvRead,
    KvWrite,
    TransitEncrypt,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::SmGet => "sm-get",
            Scenario::SmPut => "sm-put",
            Scenario::SmGetMany => "sm-get-many",
            Scenario::SmList => "sm-list",
            Scenario::SsmGet => "ssm-get",
            Scenario::KmsEncrypt => "kms-encrypt",
            Scenario::KvRead => "kv-read",
            Scenario::KvWrite => "kv-write",
            Scenario::TransitEncrypt => "transit-encrypt",
        }
    }
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
    /// The token for the Vault scenarios.
    #[arg(long, default_value = "")]
    vault_token: String,
    #[arg(long, value_enum, required_unless_present = "setup_user")]
    scenario: Option<Scenario>,
    /// Create this IAM user with a least-privilege policy for the scenarios, print its new
    /// access key as JSON, then exit.
    #[arg(long)]
    setup_user: Option<String>,
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
    /// sm-get-many: how many secrets there are (`bench/scale/0000000` ...); `--setup` creates
    /// those numbered from `--from` up, over `--connections` connections.
    #[arg(long, default_value_t = 1000)]
    secrets: usize,
    #[arg(long, default_value_t = 0)]
    from: usize,
    /// Send this many requests one after another on one connection (the first one unmeasured,
    /// as a warm-up), however long they take, instead of loading for `--duration`.
    #[arg(long)]
    probe: Option<usize>,
    /// Send exactly this many requests (spread over the connections), with no warm-up and no
    /// time limit, then stop: a fixed workload for instruction counts (e.g. under callgrind).
    #[arg(long)]
    requests: Option<u64>,
    /// A label for the target, copied into the output.
    #[arg(long, default_value = "")]
    target: String,
}

const PUT_SECRETS_PER_CONN: usize = 16;
/// How many secrets one connection of sm-get-many cycles through (picked at random).
const GET_MANY_PER_CONN: usize = 4096;

fn scale_name(i: usize) -> String {
    format!("bench/scale/{i:07}")
}

/// A small deterministic generator (xorshift64*), so runs pick the same secrets.
fn pseudo_random(seed: u64) -> impl Iterator<Item = u64> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    std::iter::repeat_with(move || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    })
}

/// 128 bytes (`x` repeated), base64-encoded: the KMS and transit plaintext.
fn plaintext_128() -> String {
    format!("{}eHg=", "eHh4".repeat(42))
}

fn get_call(name: &str) -> Call {
    Call::aws_json("secretsmanager.GetSecretValue", &json!({ "SecretId": name }))
}

fn create_call(name: String) -> Call {
    Call::aws_json(
        "secretsmanager.CreateSecret",
        &json!({ "Name": name, "SecretString": "s".repeat(256) }),
    )
}

fn kv_write_call(path: &str, fill: &str) -> Call {
    Call::vault(
        "POST",
        &format!("/v1/secret/data/{path}"),
        Some(&json!({ "data": { "value": fill.repeat(256) } })),
    )
}

impl Args {
    fn scenario(&self) -> Scenario {
        self.scenario.unwrap_or(Scenario::SmGet)
    }
}

fn calls_for(args: &Args, conn: usize) -> Vec<Call> {
    match args.scenario() {
        Scenario::SmGet => vec![get_call("bench/secret-256")],
        Scenario::SmPut => (0..PUT_SECRETS_PER_CONN)
            .map(|i| {
                Call::aws_json(
                    "secretsmanager.PutSecretValue",
                    &json!({ "SecretId": format!("bench/put-{conn}-{i}"), "SecretString": "p".repeat(256) }),
                )
            })
            .collect(),
        Scenario::SmGetMany => {
            let n = args.secrets.max(1) as u64;
            pseudo_random(conn as u64 + 1)
                .take(GET_MANY_PER_CONN)
                .map(|r| get_call(&scale_name(usize::try_from(r % n).unwrap_or(0))))
                .collect()
        }
        Scenario::SmList => vec![Call::aws_json("secretsmanager.ListSecrets", &json!({}))],
        Scenario::SsmGet => vec![Call::aws_json(
            "AmazonSSM.GetParameter",
            &json!({ "Name": "/bench/param-256", "WithDecryption": true }),
        )],
        Scenario::KmsEncrypt => vec![Call::aws_json(
            "TrentService.Encrypt",
            &json!({ "KeyId": "alias/bench", "Plaintext": plaintext_128() }),
        )],
        Scenario::KvRead => vec![Call::vault("GET", "/v1/secret/data/bench/app", None)],
        Scenario::KvWrite => (0..PUT_SECRETS_PER_CONN)
            .map(|i| kv_write_call(&format!("bench/put-{conn}-{i}"), "p"))
            .collect(),
        Scenario::TransitEncrypt => vec![Call::vault(
            "POST",
            "/v1/transit/encrypt/bench",
            Some(&json!({ "plaintext": plaintext_128() })),
        )],
    }
}

/// The setup of every scenario but sm-get-many: a few resources, created one after another.
fn setup_calls(scenario: Scenario, connections: usize) -> Vec<Call> {
    match scenario {
        Scenario::SmGet => vec![create_call("bench/secret-256".to_string())],
        Scenario::SmPut => (0..connections)
            .flat_map(|c| (0..PUT_SECRETS_PER_CONN).map(move |i| format!("bench/put-{c}-{i}")))
            .map(create_call)
            .collect(),
        Scenario::SsmGet => vec![Call::aws_json(
            "AmazonSSM.PutParameter",
            &json!({ "Name": "/bench/param-256", "Value": "v".repeat(256), "Type": "SecureString", "Overwrite": true }),
        )],
        Scenario::KmsEncrypt => vec![
            Call::aws_json("TrentService.CreateKey", &json!({ "Description": "coffer bench" })),
            // The alias is pointed at the key just created (below).
        ],
        Scenario::KvRead => vec![kv_write_call("bench/app", "s")],
        Scenario::TransitEncrypt => vec![
            Call::vault("POST", "/v1/sys/mounts/transit", Some(&json!({ "type": "transit" }))),
            Call::vault("POST", "/v1/transit/keys/bench", Some(&json!({}))),
        ],
        Scenario::SmGetMany | Scenario::SmList | Scenario::KvWrite => Vec::new(),
    }
}

/// Whether a setup answer is a success, or says that the thing is already there (setup can
/// be re-run).
fn setup_ok(status: u16, text: &str) -> bool {
    (200..300).contains(&status)
        || [
            "ResourceExistsException",
            "AlreadyExists",
            "already exists",
            "already in use",
        ]
        .iter()
        .any(|s| text.contains(s))
}

/// Sends one setup call; fails unless [`setup_ok`].
async fn create(ep: &Endpoint, sender: &mut coffer_bench::Sender, call: &Call) -> anyhow::Result<String> {
    let (status, body) = send(sender, &ep.host, &sign_call(ep, call)?).await?;
    let text = String::from_utf8_lossy(&body).into_owned();
    if !setup_ok(status, &text) {
        bail!("setup {} failed: HTTP {status}: {text}", call.label);
    }
    Ok(text)
}

/// Runs the setup of `scenario`. For kms-encrypt, points `alias/bench` at the new key.
async fn setup(ep: &Endpoint, args: &Args) -> anyhow::Result<()> {
    let mut sender = connect(&ep.host).await?;
    for call in setup_calls(args.scenario(), args.connections) {
        let text = create(ep, &mut sender, &call).await?;
        if let Scenario::KmsEncrypt = args.scenario() {
            let answer: serde_json::Value = serde_json::from_str(&text).context("CreateKey's answer")?;
            let key_id = answer["KeyMetadata"]["KeyId"]
                .as_str()
                .context("CreateKey gave no KeyId")?;
            let body = json!({ "AliasName": "alias/bench", "TargetKeyId": key_id });
            let update = Call::aws_json("TrentService.UpdateAlias", &body);
            let (status, _) = send(&mut sender, &ep.host, &sign_call(ep, &update)?).await?;
            if status != 200 {
                create(ep, &mut sender, &Call::aws_json("TrentService.CreateAlias", &body)).await?;
            }
        }
    }
    Ok(())
}

/// The policy of `--setup-user`: what the scenarios do, on `bench/*` only, and an explicit
/// Deny beside it (so evaluation walks a Deny as well as an Allow, as real policies make it).
fn bench_user_policy() -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ReadWriteBenchSecrets",
                "Effect": "Allow",
                "Action": ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue",
                           "secretsmanager:DescribeSecret"],
                "Resource": "arn:aws:secretsmanager:*:*:secret:bench/*"
            },
            {
                "Sid": "ReadBenchParameters",
                "Effect": "Allow",
                "Action": ["ssm:GetParameter", "ssm:GetParameters"],
                "Resource": "arn:aws:ssm:*:*:parameter/bench/*"
            },
            {
                "Sid": "UseKeys",
                "Effect": "Allow",
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"],
                "Resource": "*"
            },
            {
                "Sid": "NeverProduction",
                "Effect": "Deny",
                "Action": "*",
                "Resource": ["arn:aws:secretsmanager:*:*:secret:prod/*", "arn:aws:ssm:*:*:parameter/prod/*"]
            }
        ]
    })
    .to_string()
}

/// Creates IAM user `name` with [`bench_user_policy`] inline, and prints a new access key.
async fn setup_user(ep: &Endpoint, name: &str) -> anyhow::Result<()> {
    const V: &str = "2010-05-08";
    let policy = bench_user_policy();
    let mut sender = connect(&ep.host).await?;
    create(
        ep,
        &mut sender,
        &Call::aws_query("iam", V, "CreateUser", &[("UserName", name)]),
    )
    .await?;
    let put = Call::aws_query(
        "iam",
        V,
        "PutUserPolicy",
        &[("UserName", name), ("PolicyName", "bench"), ("PolicyDocument", &policy)],
    );
    create(ep, &mut sender, &put).await?;
    let xml = create(
        ep,
        &mut sender,
        &Call::aws_query("iam", V, "CreateAccessKey", &[("UserName", name)]),
    )
    .await?;
    let id = xml_text(&xml, "AccessKeyId").context("CreateAccessKey gave no AccessKeyId")?;
    let secret = xml_text(&xml, "SecretAccessKey").context("CreateAccessKey gave no SecretAccessKey")?;
    println!("{}", json!({ "access_key_id": id, "secret_access_key": secret }));
    Ok(())
}

/// Creates `bench/scale/<from..secrets>` over `connections` connections at once (each signs
/// its own requests), printing progress to stderr.
async fn setup_many(ep: Arc<Endpoint>, args: &Args) -> anyhow::Result<()> {
    let (from, to, conns) = (args.from, args.secrets, args.connections.max(1));
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|c| {
            let ep = Arc::clone(&ep);
            tokio::spawn(async move {
                let mut sender = connect(&ep.host).await?;
                let mut i = from + c;
                while i < to {
                    create(&ep, &mut sender, &create_call(scale_name(i))).await?;
                    if c == 0 && (i - from) % 100_000 < conns {
                        eprintln!("   created ~{} of {} in {:.0?}", i - from, to - from, started.elapsed());
                    }
                    i += conns;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    Ok(())
}

struct ConnResult {
    hist: Histogram<u64>,
    ok: u64,
    errors: u64,
    first_error: Option<String>,
}

impl ConnResult {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            hist: Histogram::<u64>::new_with_bounds(1, 600_000_000, 3)?,
            ok: 0,
            errors: 0,
            first_error: None,
        })
    }

    /// Counts one answer (`measured` false during the warm-up).
    fn record(&mut self, result: &anyhow::Result<(u16, Bytes)>, micros: u64, measured: bool) {
        match result {
            Ok((200 | 204, _)) => {
                if measured {
                    self.ok += 1;
                    let _ = self.hist.record(micros.max(1));
                }
            }
            Ok((status, body)) => {
                if measured {
                    self.errors += 1;
                }
                self.first_error
                    .get_or_insert_with(|| format!("HTTP {status}: {}", String::from_utf8_lossy(body)));
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
}

fn sign_all(ep: &Endpoint, calls: &[Call]) -> anyhow::Result<Vec<Signed>> {
    calls.iter().map(|c| sign_call(ep, c)).collect()
}

async fn run_conn(args: Arc<Args>, ep: Arc<Endpoint>, conn: usize, start: Instant) -> anyhow::Result<ConnResult> {
    let calls = calls_for(&args, conn);
    let mut sender = connect(&ep.host).await?;
    let mut signed = sign_all(&ep, &calls)?;
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
    let mut out = ConnResult::new()?;
    let mut i = 0usize;
    loop {
        let now = Instant::now();
        if end.is_some_and(|end| now >= end) || quota.is_some_and(|q| i as u64 >= q) {
            break;
        }
        if now.duration_since(signed_at) > Duration::from_secs(60) {
            signed = sign_all(&ep, &calls)?;
            signed_at = now;
        }
        let req = &signed[i % signed.len()];
        i += 1;
        let t0 = Instant::now();
        let result = send(&mut sender, &ep.host, req).await;
        out.record(&result, t0.elapsed().as_micros() as u64, t0 >= warm_end);
        if result.is_err() {
            sender = connect(&ep.host).await?;
        }
    }
    Ok(out)
}

/// Sends every call of connection `conn` once, unmeasured; fails on the first error.
async fn prime(args: Arc<Args>, ep: Arc<Endpoint>, conn: usize) -> anyhow::Result<()> {
    let mut sender = connect(&ep.host).await?;
    for call in calls_for(&args, conn) {
        let (status, body) = send(&mut sender, &ep.host, &sign_call(&ep, &call)?).await?;
        if status != 200 {
            bail!(
                "priming {} failed: HTTP {status}: {}",
                call.label,
                String::from_utf8_lossy(&body)
            );
        }
    }
    Ok(())
}

/// `count` requests one after another, the first unmeasured. Each is signed just before it
/// is sent, so a slow answer never outlives its signature.
async fn probe(args: &Args, ep: &Endpoint, count: usize) -> anyhow::Result<(ConnResult, f64)> {
    let calls = calls_for(args, 0);
    let mut sender = connect(&ep.host).await?;
    let mut out = ConnResult::new()?;
    let mut measured_secs = 0.0;
    for i in 0..count.max(2) {
        let req = sign_call(ep, &calls[i % calls.len()])?;
        let t0 = Instant::now();
        let result = send(&mut sender, &ep.host, &req).await;
        if i > 0 {
            measured_secs += t0.elapsed().as_secs_f64();
        }
        out.record(&result, t0.elapsed().as_micros() as u64, i > 0);
        if result.is_err() {
            sender = connect(&ep.host).await?;
        }
    }
    Ok((out, measured_secs))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Arc::new(Args::parse());
    let ep = Arc::new(
        Endpoint::new(&args.endpoint, &args.access_key, &args.secret_key, &args.region)?
            .with_vault_token(&args.vault_token),
    );
    if let Some(name) = &args.setup_user {
        return setup_user(&ep, name).await;
    }
    if args.setup {
        if let Scenario::SmGetMany = args.scenario() {
            return setup_many(ep, &args).await;
        }
        return setup(&ep, &args).await;
    }
    let (result, secs, connections) = match args.probe {
        Some(count) => {
            let (r, secs) = probe(&args, &ep, count).await?;
            (r, secs, 1)
        }
        None => {
            if let Scenario::SmGetMany = args.scenario() {
                // The first read of a secret each day records its LastAccessedDate (a durable
                // write): every connection reads its secrets once before the clock starts, so
                // the figure is the steady state of reads.
                let primers: Vec<_> = (0..args.connections)
                    .map(|c| tokio::spawn(prime(args.clone(), ep.clone(), c)))
                    .collect();
                for p in primers {
                    p.await??;
                }
            }
            let start = Instant::now();
            let tasks: Vec<_> = (0..args.connections)
                .map(|c| tokio::spawn(run_conn(args.clone(), ep.clone(), c, start)))
                .collect();
            let mut all = ConnResult::new()?;
            for t in tasks {
                let r = t.await??;
                all.hist.add(&r.hist)?;
                all.ok += r.ok;
                all.errors += r.errors;
                if all.first_error.is_none() {
                    all.first_error = r.first_error;
                }
            }
            let secs = match args.requests {
                Some(_) => start.elapsed().as_secs_f64(),
                None => args.duration as f64,
            };
            (all, secs, args.connections)
        }
    };
    let mut out = json!({
        "target": args.target,
        "scenario": args.scenario().name(),
        "connections": connections,
        "duration_s": secs,
        "requests": result.ok,
        "errors": result.errors,
        "rps": if secs > 0.0 { result.ok as f64 / secs } else { 0.0 },
        "p50_us": result.hist.value_at_quantile(0.50),
        "p99_us": result.hist.value_at_quantile(0.99),
        "max_us": result.hist.max(),
        "first_error": result.first_error,
    });
    if let Scenario::SmGetMany = args.scenario() {
        out["secrets"] = json!(args.secrets);
    }
    println!("{out}");
    Ok(())
}
