//! A quick timing loop for the cost of one audit event (not a benchmark with statistics):
//! `cargo run --release -p coffer-audit --example audit_cost [events]`.
//!
//! It logs a `GetSecretValue` event (with a 256-byte `SecretString` in `responseElements`) to
//! a file device in a temporary directory, from one thread and from four (`log`, one write
//! per line), then from 64 tasks on a 2-thread Tokio runtime through group commit (`record`),
//! and prints the time per event, with the serialize-and-redact part measured on its own.
//! For a count that does not move with the machine's load, run it under
//! `valgrind --tool=callgrind` with a small event count.

use std::sync::Arc;
use std::time::Instant;

use coffer_audit::{AuditBroker, AuditEvent, DeviceKey, FileDevice, IdentityType, UserIdentity};

fn event(i: u64) -> AuditEvent {
    let id = UserIdentity {
        identity_type: IdentityType::IamUser,
        principal_id: Some("AIDAEXAMPLE".into()),
        arn: Some("arn:aws:iam::111122223333:user/alice".into()),
        account_id: Some("111122223333".into()),
        access_key_id: Some("AKIAEXAMPLE".into()),
        user_name: Some("alice".into()),
        session_context: None,
    };
    let arn = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app-AbCdEf";
    AuditEvent::aws(
        "secretsmanager",
        "GetSecretValue",
        id,
        time::OffsetDateTime::now_utc(),
        format!("req-{i}"),
    )
    .region("us-east-1")
    .client("127.0.0.1", "aws-sdk-rust/1.0")
    .request(serde_json::json!({ "SecretId": "app" }))
    .response(serde_json::json!({ "ARN": arn, "Name": "app", "VersionId": "v1", "SecretString": "x".repeat(256) }))
    .resource(arn, "AWS::SecretsManager::Secret", Some("111122223333".into()))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let dir = std::env::temp_dir().join(format!("coffer-audit-cost-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let key = DeviceKey::generate()?;
    let dev = Arc::new(FileDevice::open("file/", dir.join("audit.log"), 256 * 1024 * 1024)?);
    let mut broker = AuditBroker::new();
    broker.add_device(dev, &key)?;
    let broker = Arc::new(broker);
    let ev = event(0);

    let redactor = key.redactor();
    let mut buf = Vec::new();
    let t = Instant::now();
    for _ in 0..n {
        buf.clear();
        redactor.write_event(&ev, &mut buf)?;
    }
    let ser = t.elapsed().as_nanos() as f64 / n as f64;
    let line_len = buf.len();

    let t = Instant::now();
    for _ in 0..n {
        broker.log(&ev)?;
    }
    let one = t.elapsed().as_nanos() as f64 / n as f64;

    let t = Instant::now();
    for _ in 0..n {
        let _ = event(1);
    }
    let build = t.elapsed().as_nanos() as f64 / n as f64;

    let threads = 4;
    let t = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            let broker = broker.clone();
            let ev = ev.clone();
            std::thread::spawn(move || {
                for _ in 0..n / threads {
                    let _ = broker.log(&ev);
                }
            })
        })
        .collect();
    for h in handles {
        let _ = h.join();
    }
    let many = t.elapsed().as_nanos() as f64 / n as f64;

    let tasks = 64;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build()?;
    let grouped = runtime.block_on(async {
        let dev = Arc::new(FileDevice::open("file/", dir.join("grouped.log"), 256 * 1024 * 1024)?);
        let mut broker = AuditBroker::new();
        broker.add_device(dev, &key)?;
        broker.start_writers()?;
        let broker = Arc::new(broker);
        let t = Instant::now();
        let handles: Vec<_> = (0..tasks)
            .map(|_| {
                let broker = broker.clone();
                let ev = ev.clone();
                tokio::spawn(async move {
                    for _ in 0..n / tasks {
                        let _ = broker.record(&ev).await;
                    }
                })
            })
            .collect();
        for h in handles {
            let _ = h.await;
        }
        Ok::<_, Box<dyn std::error::Error>>(t.elapsed().as_nanos() as f64 / n as f64)
    })?;

    println!("event body {line_len} bytes; {n} events");
    println!("serialize+redact only:     {ser:8.0} ns/event");
    println!("broker.log, 1 thread:      {one:8.0} ns/event (redact, chain, write(2))");
    println!("broker.log, {threads} threads:     {many:8.0} ns/event (wall time / events)");
    println!("broker.record, {tasks} tasks:   {grouped:8.0} ns/event (group commit, 2 runtime threads)");
    println!("building the event itself: {build:8.0} ns/event (caller side, incl. event id)");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
