//! Hostile and slow clients (`[limits]`): slow headers and bodies are cut off at their
//! timeouts, idle connections are closed, connections over the limit get a 503, a normal
//! client is served while thousands of connections stall, SIGTERM does not wait for stalled
//! clients, oversized bodies and throttled requests get each API's own error and an audit
//! line.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::production::{Prod, init, unseal};
use crate::support::*;

/// A plain-HTTP production server with these `[limits]` lines (and an audit file, if given).
fn server(limits: &str, audit: Option<&std::path::Path>) -> Prod {
    let audit = audit
        .map(|p| format!("[[audit]]\ntype = \"file\"\npath = \"{}\"\n", p.display()))
        .unwrap_or_default();
    Prod::new(&format!("dangerous_plaintext_http = true\n[limits]\n{limits}\n{audit}"))
}

fn addr(prod: &Prod) -> SocketAddr {
    prod.endpoint.trim_start_matches("http://").parse().unwrap()
}

/// Reads until the server closes the connection (or `limit` passes); returns what was read
/// and when the connection closed (`None`: still open at `limit`).
async fn read_until_closed(stream: &mut (impl AsyncRead + Unpin), limit: Duration) -> (Vec<u8>, Option<Instant>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (out, None),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, Some(Instant::now())),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends `byte` every `every` until the server closes the connection (15 s at most); returns
/// what the server sent and when it closed, counted from `start`.
async fn trickle_until_closed(
    s: TcpStream,
    byte: &'static [u8],
    every: Duration,
    start: Instant,
) -> (Vec<u8>, Duration) {
    let (mut r, mut w) = s.into_split();
    let writer = tokio::spawn(async move {
        while w.write_all(byte).await.is_ok() {
            tokio::time::sleep(every).await;
        }
    });
    let (answer, closed) = read_until_closed(&mut r, Duration::from_secs(15)).await;
    writer.abort();
    let closed = closed.expect("a trickling client kept its connection for 15 s");
    (answer, closed - start)
}

#[tokio::test]
async fn slow_header_is_cut_off_at_the_header_timeout() {
    let prod = server("header_read_timeout_secs = 2", None);
    let _p = prod.start();
    let mut s = TcpStream::connect(addr(&prod)).await.unwrap();
    let start = Instant::now();
    s.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    // One byte every half second: each byte must not restart the clock.
    let (_, took) = trickle_until_closed(s, b"a", Duration::from_millis(500), start).await;
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(5),
        "closed after {took:?}, header timeout 2 s"
    );
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed() {
    // hyper starts the header read timer when a kept-alive connection goes idle, so an idle
    // HTTP/1.1 connection is closed at the header timeout (2 s here), long before the idle
    // timeout (30 s here; it is what closes an idle HTTP/2 connection).
    let prod = server("header_read_timeout_secs = 2\nidle_timeout_secs = 30", None);
    let _p = prod.start();
    let mut s = TcpStream::connect(addr(&prod)).await.unwrap();
    s.write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = s.read(&mut buf).await.unwrap();
    let answered = Instant::now();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 "), "no answer");
    let (_, closed) = read_until_closed(&mut s, Duration::from_secs(10)).await;
    let idle = closed.expect("the idle keep-alive connection stayed open for 10 s") - answered;
    assert!(
        idle >= Duration::from_millis(1500) && idle < Duration::from_millis(3500),
        "idle connection closed after {idle:?}"
    );
    // A connection that never sends a byte is closed at the header timeout too (hyper-util's
    // HTTP version detection reads before hyper's header timer starts: the listener bounds it).
    let mut quiet = TcpStream::connect(addr(&prod)).await.unwrap();
    let start = Instant::now();
    let (_, closed) = read_until_closed(&mut quiet, Duration::from_secs(10)).await;
    let took = closed.expect("a silent connection stayed open for 10 s") - start;
    assert!(
        took < Duration::from_millis(3500),
        "silent connection closed after {took:?}"
    );
}

#[tokio::test]
async fn slow_body_is_cut_off_at_the_body_timeout() {
    let prod = server("body_read_timeout_secs = 3\nheader_read_timeout_secs = 2", None);
    let _p = prod.start();
    let mut s = TcpStream::connect(addr(&prod)).await.unwrap();
    let start = Instant::now();
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n\
          X-Amz-Target: secretsmanager.ListSecrets\r\nContent-Length: 100\r\n\r\n",
    )
    .await
    .unwrap();
    // One byte every two seconds: a slow loris body that each byte would keep alive under a
    // per-read timeout.
    let (answer, took) = trickle_until_closed(s, b"{", Duration::from_secs(2), start).await;
    assert!(
        took >= Duration::from_millis(2500) && took < Duration::from_secs(6),
        "closed after {took:?}, body timeout 3 s"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("RequestTimeoutException"), "{text}");
}

#[tokio::test]
async fn connections_over_the_limit_get_503_and_are_closed() {
    let prod = server("max_connections = 8\nheader_read_timeout_secs = 30", None);
    let _p = prod.start();
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(addr(&prod)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = TcpStream::connect(addr(&prod)).await.unwrap();
    extra
        .write_all(b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (answer, closed) = read_until_closed(&mut extra, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&answer).to_lowercase();
    assert!(text.starts_with("http/1.1 503"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert!(closed.is_some(), "the connection over the limit was not closed");
    // Once a held connection goes away, a new one is served.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = reqwest::get(format!("{}/v1/sys/health", prod.endpoint))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 501, "an uninitialized server answers health with 501");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_normal_client_is_served_while_2000_connections_stall() {
    const STALLED: usize = 2000;
    const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
    const SLACK: Duration = Duration::from_secs(10);
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let prod = server("header_read_timeout_secs = 10", None);
    let _p = prod.start();
    let target = addr(&prod);
    // Each stalled client sends half a request head, then nothing; it reports when it is open
    // and how long the server kept it.
    let (opened_tx, mut opened_rx) = tokio::sync::mpsc::channel(STALLED);
    let mut stalled = tokio::task::JoinSet::new();
    let opening = Instant::now();
    for _ in 0..STALLED {
        let opened_tx = opened_tx.clone();
        stalled.spawn(async move {
            let mut s = TcpStream::connect(target).await.unwrap();
            s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nX-Amz-Tar").await.unwrap();
            let opened = Instant::now();
            opened_tx.send(()).await.unwrap();
            let (_, closed) = read_until_closed(&mut s, HEADER_TIMEOUT + SLACK).await;
            closed.map(|c| c - opened)
        });
    }
    for _ in 0..STALLED {
        opened_rx.recv().await.unwrap();
    }
    let open_took = opening.elapsed();
    // The normal client: one keep-alive connection, requests one after another for 2 s.
    let client = reqwest::Client::new();
    let url = format!("{}/v1/sys/seal-status", prod.endpoint);
    let mut latencies = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(2) {
        let t = Instant::now();
        let resp = client.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        resp.bytes().await.unwrap();
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let p50 = latencies[latencies.len() / 2];
    let p99 = latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)];
    println!(
        "limits: {} requests with {STALLED} stalled connections open (opened in {open_took:?}): p50 {p50:?}, p99 {p99:?}",
        latencies.len()
    );
    assert!(
        latencies.len() >= 10,
        "only {} requests answered in 2 s",
        latencies.len()
    );
    // Every stalled connection is closed within the header timeout and some slack.
    let mut kept = Vec::new();
    while let Some(held) = stalled.join_next().await {
        match held.unwrap() {
            Some(d) => kept.push(d),
            None => panic!(
                "a stalled connection was still open {:?} after it opened",
                HEADER_TIMEOUT + SLACK
            ),
        }
    }
    kept.sort();
    println!(
        "limits: stalled connections closed after {:?} to {:?}",
        kept[0],
        kept[kept.len() - 1]
    );
    assert!(
        kept[0] >= HEADER_TIMEOUT - Duration::from_secs(1),
        "closed after {:?}",
        kept[0]
    );
}

#[tokio::test]
async fn sigterm_with_stalled_clients_exits_within_the_grace_period() {
    let prod = server(
        "shutdown_grace_secs = 2\nheader_read_timeout_secs = 60\nbody_read_timeout_secs = 60\nidle_timeout_secs = 60",
        None,
    );
    let mut p = prod.start();
    let mut stalled = Vec::new();
    for i in 0..20 {
        let mut s = TcpStream::connect(addr(&prod)).await.unwrap();
        let part: &[u8] = if i % 2 == 0 {
            b"GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n"
        } else {
            b"PUT /v1/sys/unseal HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"key\""
        };
        s.write_all(part).await.unwrap();
        stalled.push(s);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let start = Instant::now();
    let exited = p.terminate(Duration::from_secs(8));
    let took = start.elapsed();
    assert!(exited, "the server was still running 8 s after SIGTERM (grace 2 s)");
    assert!(took < Duration::from_secs(5), "exit took {took:?}, grace 2 s");
    assert!(p.stderr().contains("grace period over"), "{}", p.stderr());
}

/// The audit lines with this error code.
pub(crate) fn audited(log: &std::path::Path, code: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["errorCode"] == code)
        .collect()
}

#[tokio::test]
async fn oversized_bodies_get_each_apis_error_and_an_audit_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let (_p, c) = start_dev(&["--audit-file", log.to_str().unwrap()]);
    let ten_mb = "x".repeat(10 * 1024 * 1024);

    // AWS JSON, through the SDK: a 10 MB secret value.
    let e = dev_client(&c)
        .create_secret()
        .name("big")
        .secret_string(&ten_mb)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "RequestEntityTooLargeException", "{e:?}");
    let raw = e.raw_response().unwrap();
    assert_eq!(raw.status().as_u16(), 413);

    // AWS JSON, chunked (no Content-Length): cut off when the limit is passed.
    let target: SocketAddr = c.endpoint.trim_start_matches("http://").parse().unwrap();
    let mut s = TcpStream::connect(target).await.unwrap();
    s.write_all(
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-amz-json-1.1\r\n\
          X-Amz-Target: secretsmanager.CreateSecret\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    for _ in 0..3 {
        s.write_all(b"100000\r\n").await.unwrap();
        s.write_all(&chunk).await.unwrap();
        s.write_all(b"\r\n").await.unwrap();
    }
    s.write_all(b"0\r\n\r\n").await.unwrap();
    let mut buf = vec![0u8; 8192];
    let n = s.read(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains(r#""__type":"RequestEntityTooLargeException""#), "{text}");

    // The Query protocol (IAM/STS): XML the SDKs parse.
    let form = format!("Action=GetUser&Version=2010-05-08&Pad={ten_mb}");
    let resp = reqwest::Client::new()
        .post(format!("{}/", c.endpoint))
        .header("content-type", "application/x-www-form-urlencoded; charset=utf-8")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let text = resp.text().await.unwrap();
    assert!(text.starts_with("<ErrorResponse"), "{text}");
    assert!(text.contains("<Code>RequestEntityTooLargeException</Code>"), "{text}");

    // Vault: over its 32 MiB max_request_size.
    let resp = reqwest::Client::new()
        .put(format!("{}/v1/sys/unseal", c.endpoint))
        .body(vec![b' '; 33 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"errors": ["http: request body too large"]}));

    // A body under the limits still works.
    dev_client(&c)
        .create_secret()
        .name("small")
        .secret_string("x".repeat(60_000))
        .send()
        .await
        .unwrap();

    let aws = audited(&log, "RequestEntityTooLargeException");
    assert_eq!(aws.len(), 3, "{aws:?}");
    assert_eq!(aws[0]["eventName"], "CreateSecret");
    assert_eq!(aws[0]["userIdentity"]["accessKeyId"], c.access_key_id);
    assert_eq!(aws[0]["sourceIPAddress"], "127.0.0.1");
    let vault = audited(&log, "RequestEntityTooLarge");
    assert_eq!(vault.len(), 1, "{vault:?}");
    assert_eq!(vault[0]["eventName"], "update");
    assert_eq!(vault[0]["requestParameters"]["path"], "sys/unseal");
}

/// A signed awsJson request from a chosen local address.
async fn signed_from(source: &str, endpoint: &str, akid: &str, secret: &str, target: &str) -> (u16, String) {
    let local: SocketAddr = format!("{source}:0").parse().unwrap();
    let client = reqwest::Client::builder().local_address(local.ip()).build().unwrap();
    let req = Signed {
        service: "secretsmanager",
        body: b"{}",
        time: SystemTime::now(),
        endpoint,
        akid,
        secret,
        target,
    };
    signed_post_with(&client, &req).await
}

#[tokio::test]
async fn throttled_requests_get_each_apis_error_and_an_audit_line() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let prod = server("rate_per_second = 1\nrate_burst = 20", Some(&log));
    let _p = prod.start();
    let keys = init(&prod, "1", "1");
    unseal(&prod, &keys.keys);

    // Per client address, through the SDK: 400 ThrottlingException "Rate exceeded".
    let sm = sm_client(&prod.endpoint, &keys.akid, &keys.secret);
    let mut throttled = None;
    for _ in 0..40 {
        if let Err(e) = sm.list_secrets().send().await {
            throttled = Some(e);
            break;
        }
    }
    let e = throttled.expect("40 requests at once were never throttled (burst 20)");
    assert_eq!(err_code(&e), "ThrottlingException", "{e:?}");
    assert_eq!(e.raw_response().unwrap().status().as_u16(), 400);
    let body = std::str::from_utf8(e.raw_response().unwrap().body().bytes().unwrap()).unwrap();
    let body: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["message"], "Rate exceeded");

    // The Query protocol from the same address: <Code>Throttling</Code>.
    let resp = reqwest::Client::new()
        .post(format!("{}/", prod.endpoint))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("Action=GetCallerIdentity&Version=2011-06-15")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let text = resp.text().await.unwrap();
    assert!(text.contains("<Code>Throttling</Code>"), "{text}");

    // Vault from the same address: 429, as Vault's rate limit quotas answer.
    let resp = reqwest::get(format!("{}/v1/sys/seal-status", prod.endpoint))
        .await
        .unwrap();
    assert_eq!(resp.status(), 429);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        serde_json::json!({"errors": ["request path \"sys/seal-status\": rate limit quota exceeded"]})
    );

    // Per access key: the same key from another address is throttled once the key's own
    // budget is spent, after its signature is checked.
    let mut codes = Vec::new();
    for _ in 0..25 {
        let (status, text) = signed_from(
            "127.0.0.2",
            &prod.endpoint,
            &keys.akid,
            &keys.secret,
            "secretsmanager.ListSecrets",
        )
        .await;
        codes.push(status);
        if status != 200 {
            assert_eq!(status, 400, "{text}");
            assert!(text.contains(r#""__type":"ThrottlingException""#), "{text}");
            break;
        }
    }
    assert_ne!(codes.last(), Some(&200), "the key was never throttled: {codes:?}");
    assert!(codes.len() < 21, "throttled by address, not by key: {codes:?}");

    let lines = audited(&log, "ThrottlingException");
    assert!(lines.len() >= 2, "{lines:?}");
    assert!(lines.iter().any(|l| l["sourceIPAddress"] == "127.0.0.2"), "{lines:?}");
    assert_eq!(audited(&log, "Throttling").len(), 1);
    assert_eq!(audited(&log, "RateLimitQuotaExceeded").len(), 1);
}
