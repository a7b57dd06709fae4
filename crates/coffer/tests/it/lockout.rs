//! No lockout, correct sealed answers, operator events (issue 12, items 1 and 2): with the
//! README's audit devices (a file and stdout), a server seals, unseals and restarts; a sealed
//! or uninitialized server answers every API with its documented 503 (not a 500), without
//! error-log spam; a log cut short is reported, never a reason to stay sealed; init, unseal
//! attempts, seal, rotate and account creation are audit events; `coffer audit verify
//! --server` detects lines cut from the end.

use std::path::Path;
use std::time::{Duration, SystemTime};

use coffer_testkit::CofferProcess;

use crate::production::{Init, Prod, init, operator_with_token, unseal};
use crate::support::*;

/// Every line of the audit file, parsed.
fn events(log: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn names<'a>(events: &'a [serde_json::Value], source: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|e| e["eventSource"] == source)
        .map(|e| e["eventName"].as_str().unwrap())
        .collect()
}

/// `GET /v1/<path>` with an optional token.
async fn vault_get(endpoint: &str, path: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut req = reqwest::Client::new().get(format!("{endpoint}/v1/{path}"));
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}

/// The 503 each API documents for a sealed server, on the AWS JSON protocol, the Query
/// protocol (STS) and the Vault API.
async fn assert_unavailable(endpoint: &str, akid: &str, secret: &str) {
    let raw = signed_post(
        endpoint,
        akid,
        secret,
        "secretsmanager",
        "secretsmanager.GetSecretValue",
        br#"{"SecretId":"lockout/db"}"#,
        SystemTime::now(),
    )
    .await;
    assert_eq!(raw.status, 503, "{}", raw.text);
    assert_eq!(raw.body["__type"], "ServiceUnavailableException", "{}", raw.text);
    let sts = signed_query(
        endpoint,
        akid,
        secret,
        "sts",
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert_eq!(sts.0, 503, "{}", sts.1);
    assert!(sts.1.contains("<Code>ServiceUnavailable</Code>"), "{}", sts.1);
    let (status, body) = vault_get(endpoint, "secret/data/lockout", Some("hvs.whatever")).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body, serde_json::json!({"errors": ["Vault is sealed"]}));
    let (status, body) = vault_get(endpoint, "sys/key-status", Some("hvs.whatever")).await;
    assert_eq!(status, 503, "{body}");
}

#[tokio::test]
async fn a_server_with_file_and_stdout_audit_seals_unseals_and_restarts() {
    let (prod, log) = Prod::with_file_and_stdout_audit();
    let mut p = prod.start();

    // Not initialized: the documented 503 on every API (any credentials: none exist yet).
    assert_unavailable(&prod.endpoint, "AKIAEXAMPLEEXAMPLE00", "secret").await;

    let init = init(&prod, "3", "2");
    // Sealed after init: the same.
    assert_unavailable(&prod.endpoint, &init.akid, &init.secret).await;
    // A malformed share is an attempt too.
    let (code, _, _) = prod.operator(&["unseal", "bm90LWEtc2hhcmU="]);
    assert_ne!(code, 0);
    unseal(&prod, &init.keys[..2]);

    let sm = sm_client(&prod.endpoint, &init.akid, &init.secret);
    sm.create_secret()
        .name("lockout/db")
        .secret_string("kept")
        .send()
        .await
        .unwrap();

    let root = |args: &[&str]| operator_with_token(&prod, &init.token, args);
    let (code, _, err) = root(&["rotate"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = root(&["account", "create"]);
    assert_eq!(code, 0, "{err}");

    // Seal, then unseal with the right shares: this is what used to fail with a 500 and seal
    // the server again (the stdout device "ends at seq 0 but seq N was recorded").
    let (code, _, err) = root(&["seal"]);
    assert_eq!(code, 0, "{err}");
    assert_unavailable(&prod.endpoint, &init.akid, &init.secret).await;
    unseal(&prod, &init.keys[1..3]);
    let v = sm.get_secret_value().secret_id("lockout/db").send().await.unwrap();
    assert_eq!(v.secret_string(), Some("kept"));

    // And after a restart.
    assert!(p.terminate(Duration::from_secs(10)));
    let stdout_before = p.stdout();
    drop(p);
    let p = prod.start();
    assert_unavailable(&prod.endpoint, &init.akid, &init.secret).await;
    unseal(&prod, &[init.keys[0].clone(), init.keys[2].clone()]);
    // A new client: the old one's pooled connection went with the old process.
    let sm = sm_client(&prod.endpoint, &init.akid, &init.secret);
    let v = sm.get_secret_value().secret_id("lockout/db").send().await.unwrap();
    assert_eq!(v.secret_string(), Some("kept"));

    // No error-log spam: refusing requests while sealed is not an error.
    let stderr = p.stderr();
    assert!(!stderr.contains("ERROR"), "{stderr}");

    // The operator events, in order, on the file device (unseal attempts made while sealed
    // are written when the devices open).
    let all = events(&log);
    let ops = names(&all, "operator.coffer");
    assert_eq!(
        ops,
        [
            "Initialize",
            "Unseal",
            "Unseal",
            "Unseal",
            "Rotate",
            "CreateAccount",
            "Seal",
            "Unseal",
            "Unseal",
            "Unseal",
            "Unseal",
        ],
        "{all:#?}"
    );
    let op = |name: &'static str| all.iter().filter(move |e| e["eventName"] == name);
    let init_event = op("Initialize").next().unwrap();
    assert_eq!(init_event["requestParameters"]["secretShares"], 3);
    assert_eq!(init_event["eventType"], "CofferOperatorEvent");
    let unseals: Vec<_> = op("Unseal").collect();
    assert_eq!(unseals[0]["errorCode"], "InvalidUnsealKey", "{:#}", unseals[0]);
    assert_eq!(unseals[1]["requestParameters"]["progress"], 1);
    assert_eq!(unseals[2]["requestParameters"]["sealed"], false);
    assert_eq!(unseals[2]["sourceIPAddress"], "127.0.0.1");
    let seal = op("Seal").next().unwrap();
    assert_eq!(seal["userIdentity"]["type"], "Token");
    assert_eq!(seal["userIdentity"]["userName"], "root");
    assert!(seal["userIdentity"]["accountId"].is_string(), "{seal:#}");
    let rotate = op("Rotate").next().unwrap();
    assert_eq!(rotate["requestParameters"]["term"], 2);
    // No key share, token or secret key in any line.
    let text = std::fs::read_to_string(&log).unwrap();
    for k in &init.keys {
        assert!(!text.contains(k.as_str()), "an unseal key share is in the audit log");
    }
    assert!(!text.contains(&init.token));
    assert!(!text.contains(&init.secret));
    // The stdout device got the events too.
    assert!(stdout_before.contains("\"eventName\":\"Seal\""), "{stdout_before}");

    // The chain verifies, and reaches the head the server reports.
    let file = log.to_str().unwrap();
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", file];
        args.extend_from_slice(extra);
        coffer_testkit::run(bin(), &args, &[]).unwrap()
    };
    let (code, out, err) = verify(&["--server", "--address", &prod.endpoint, "--token", &init.token]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("reaches the head the server recorded"), "{out}");
    // Without the head, verify says what it could not check.
    let (code, out, _) = verify(&[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("Not checked: lines cut from the end"), "{out}");

    // Cut the last two lines: the chain alone still verifies, the server's head does not.
    let kept: Vec<&str> = text.lines().collect();
    let cut = kept[..kept.len() - 2].join("\n") + "\n";
    std::fs::write(&log, &cut).unwrap();
    let (code, out, _) = verify(&[]);
    assert_eq!(code, 0, "{out}");
    let (code, out, _) = verify(&["--server", "--address", &prod.endpoint, "--token", &init.token]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("lines removed from the end"), "{out}");
    // The head needs the root token.
    let (code, _, err) = verify(&["--server", "--address", &prod.endpoint, "--token", "hvs.not-a-token"]);
    assert_ne!(code, 0);
    assert!(err.contains("403"), "{err}");
}

/// Seals with the root token, then stops the server.
fn seal_and_stop(prod: &Prod, mut p: CofferProcess, init: &Init) {
    let (code, _, err) = operator_with_token(prod, &init.token, &["seal"]);
    assert_eq!(code, 0, "{err}");
    assert!(p.terminate(Duration::from_secs(10)));
}

#[tokio::test]
async fn a_log_cut_short_while_sealed_is_reported_not_a_lockout() {
    let (prod, log) = Prod::with_file_and_stdout_audit();
    let p = prod.start();
    let init = init(&prod, "1", "1");
    unseal(&prod, &init.keys);
    let sm = sm_client(&prod.endpoint, &init.akid, &init.secret);
    for i in 0..3 {
        sm.create_secret()
            .name(format!("cut/{i}"))
            .secret_string("v")
            .send()
            .await
            .unwrap();
    }
    seal_and_stop(&prod, p, &init);
    // While sealed (the head is stored) and stopped, someone removes the last three lines.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let removed_seq = lines.len();
    std::fs::write(&log, lines[..lines.len() - 3].join("\n") + "\n").unwrap();
    let p = prod.start();
    unseal(&prod, &init.keys);
    let sm = sm_client(&prod.endpoint, &init.akid, &init.secret);
    let v = sm.get_secret_value().secret_id("cut/2").send().await.unwrap();
    assert_eq!(v.secret_string(), Some("v"));
    let all = events(&log);
    let found = all
        .iter()
        .find(|e| e["eventName"] == "AuditLogDiscontinuity")
        .unwrap_or_else(|| panic!("no discontinuity event: {all:#?}"));
    let problem = found["requestParameters"]["problem"].as_str().unwrap();
    assert!(
        problem.contains(&format!("seq {removed_seq} was recorded")) && problem.contains("removed from the end"),
        "{problem}"
    );
    assert_eq!(found["requestParameters"]["device"], "file");
    assert!(p.stderr().contains("audit log continuity not proved"), "{}", p.stderr());
}

#[tokio::test]
async fn an_audit_file_that_cannot_be_opened_does_not_keep_the_server_sealed() {
    let (prod, log) = Prod::with_file_and_stdout_audit();
    let p = prod.start();
    let init = init(&prod, "1", "1");
    unseal(&prod, &init.keys);
    seal_and_stop(&prod, p, &init);
    // The log's directory is replaced by a file: the device cannot be opened.
    let dir = log.parent().unwrap();
    let moved = dir.with_extension("moved");
    std::fs::rename(dir, &moved).unwrap();
    std::fs::write(dir, b"not a directory").unwrap();
    let _p = prod.start();
    unseal(&prod, &init.keys);
    // The stdout device still records: requests are served.
    let sm = sm_client(&prod.endpoint, &init.akid, &init.secret);
    sm.create_secret()
        .name("open/a")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    // Once the directory is back, the file device writes again.
    std::fs::remove_file(dir).unwrap();
    std::fs::rename(&moved, dir).unwrap();
    sm.create_secret()
        .name("open/b")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    let all = events(&log);
    assert!(
        all.iter().any(|e| e["eventName"] == "CreateSecret"),
        "the file device did not recover: {all:#?}"
    );
}
