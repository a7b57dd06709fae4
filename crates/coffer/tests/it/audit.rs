//! The audit log end to end: every request (allowed, failed, or refused at the signature) is a
//! line; no secret value is in the file in clear; `coffer audit verify` passes and then names
//! the line after one byte changes; `coffer audit search` and CloudTrail `LookupEvents` find
//! events.

use std::time::SystemTime;

use crate::support::*;

#[tokio::test]
async fn every_request_is_audited_without_secrets_and_the_chain_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let (p, c) = start_dev(&["--audit-file", log.to_str().unwrap()]);
    let sm = dev_client(&c);
    let canary = format!("AUDIT-CANARY-{}", std::process::id());
    sm.create_secret()
        .name("audit/a")
        .secret_string(&canary)
        .send()
        .await
        .unwrap();
    sm.get_secret_value().secret_id("audit/a").send().await.unwrap();
    let e = sm
        .get_secret_value()
        .secret_id("audit/missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ResourceNotFoundException");
    let bad = signed_post(
        &c.endpoint,
        &c.access_key_id,
        "not-the-secret",
        "secretsmanager",
        "secretsmanager.GetSecretValue",
        br#"{"SecretId":"audit/a"}"#,
        SystemTime::now(),
    )
    .await;
    assert_eq!(bad.body["__type"], "InvalidSignatureException");

    let text = std::fs::read_to_string(&log).unwrap();
    let all: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // The dev server's initialization is the first line, an operator event.
    assert_eq!(all[0]["eventName"], "Initialize", "{text}");
    assert_eq!(all[0]["eventSource"], "operator.coffer", "{text}");
    let lines: Vec<serde_json::Value> = all.into_iter().skip(1).collect();
    let names: Vec<&str> = lines.iter().map(|l| l["eventName"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["CreateSecret", "GetSecretValue", "GetSecretValue", "GetSecretValue"],
        "{text}"
    );
    assert_eq!(lines[0]["eventSource"], "secretsmanager.amazonaws.com");
    assert_eq!(
        lines[0]["userIdentity"]["arn"],
        format!("arn:aws:iam::{}:root", c.account_id)
    );
    assert_eq!(lines[0]["userIdentity"]["accessKeyId"], c.access_key_id);
    assert_eq!(lines[0]["sourceIPAddress"], "127.0.0.1");
    assert!(lines[0]["errorCode"].is_null());
    assert_eq!(lines[2]["errorCode"], "ResourceNotFoundException");
    assert_eq!(lines[3]["errorCode"], "InvalidSignatureException");
    assert!(
        lines[3]["userIdentity"]["arn"].is_null(),
        "a bad signature proves no identity"
    );
    // The value is recorded only as an HMAC.
    assert!(!text.contains(&canary), "a secret value is in the audit log in clear");
    let hashed = lines[1]["responseElements"]["SecretString"].as_str().unwrap();
    assert!(hashed.starts_with("hmac-sha256:"), "{hashed}");
    assert!(!text.contains(&c.secret_access_key));

    // CloudTrail LookupEvents over the same log.
    let raw = signed_post(
        &c.endpoint,
        &c.access_key_id,
        &c.secret_access_key,
        "cloudtrail",
        "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents",
        br#"{"LookupAttributes":[{"AttributeKey":"EventName","AttributeValue":"CreateSecret"}]}"#,
        SystemTime::now(),
    )
    .await;
    assert_eq!(raw.status, 200, "{}", raw.text);
    let events = raw.body["Events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{}", raw.text);
    assert_eq!(events[0]["EventName"], "CreateSecret");
    let inner: serde_json::Value = serde_json::from_str(events[0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(inner["eventName"], "CreateSecret");

    drop(p);
    let file = log.to_str().unwrap();
    let (code, out, err) = coffer_testkit::run(bin(), &["audit", "verify", file], &[]).unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("OK:"), "{out}");
    let (code, out, _) = coffer_testkit::run(
        bin(),
        &[
            "audit",
            "search",
            file,
            "--event",
            "GetSecretValue",
            "--outcome",
            "failed",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 2, "{out}");

    // One byte changed in the first GetSecretValue line (line 3): verify fails and names it.
    let mut bytes = std::fs::read(&log).unwrap();
    let second = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    let at = second + bytes[second..].windows(13).position(|w| w == b"GetSecretValu").unwrap();
    bytes[at] = b'P';
    std::fs::write(&log, &bytes).unwrap();
    let (code, out, _) = coffer_testkit::run(bin(), &["audit", "verify", file], &[]).unwrap();
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("audit.log:3"), "verify should name line 3: {out}");
}

#[tokio::test]
async fn a_request_that_no_device_records_fails() {
    // /dev/full opens like a file and refuses every write (ENOSPC), like a full disk.
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let (_p, c) = start_dev(&["--audit-file", "/dev/full"]);
    let sm = dev_client(&c);
    let canary = format!("FULL-CANARY-{}", std::process::id());
    let e = sm
        .create_secret()
        .name("audit/full")
        .secret_string(&canary)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "InternalServiceError");
    // Reads fail too, and the value is not sent: the response waits for the audit line.
    let raw = signed_post(
        &c.endpoint,
        &c.access_key_id,
        &c.secret_access_key,
        "secretsmanager",
        "secretsmanager.GetSecretValue",
        br#"{"SecretId":"audit/full"}"#,
        SystemTime::now(),
    )
    .await;
    assert_eq!(raw.status, 500, "{}", raw.text);
    assert_eq!(raw.body["__type"], "InternalServiceError", "{}", raw.text);
    assert!(!raw.text.contains(&canary), "{}", raw.text);
}
