//! Backup and restore: `coffer operator snapshot save` on a production node holding every kind
//! of object, taken while writes go on, restored onto a fresh node that then unseals with the
//! first node's keys and serves everything back through the AWS SDK. Bad snapshots and
//! unauthorized callers are refused and change nothing.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::SystemTime;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, ReplicaRegionType};
use aws_sdk_ssm::types::ParameterType;
use coffer_testkit::DevCredentials;
use serde_json::{Value, json};

use crate::authz::{Creds, allow, policy, query, root, user_with_policy, xml_tag};
use crate::production::{Init, Prod, init, operator_with_token, unseal};
use crate::support::*;

const SNAPSHOT: &str = "sys/storage/raft/snapshot";

/// The node's root credentials in the shape the shared helpers take.
fn creds(prod: &Prod, init: &Init) -> DevCredentials {
    DevCredentials {
        endpoint: prod.endpoint.clone(),
        account_id: init.account_id.clone(),
        access_key_id: init.akid.clone(),
        secret_access_key: init.secret.clone(),
        root_token: init.token.clone(),
        unseal_key: String::new(),
    }
}

async fn lambda(c: &DevCredentials, op: &str, body: Value) -> Raw {
    signed_post(
        &c.endpoint,
        &c.access_key_id,
        &c.secret_access_key,
        "lambda",
        &format!("CofferRotation.{op}"),
        body.to_string().as_bytes(),
        SystemTime::now(),
    )
    .await
}

/// A raw `/v1/` request: status and body.
async fn v1(method: reqwest::Method, endpoint: &str, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{endpoint}/v1/{path}"))
        .body(body);
    if let Some(t) = token {
        req = req.header("X-Vault-Token", t);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.bytes().await.unwrap().to_vec())
}

fn errors(body: &[u8]) -> String {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    v["errors"].to_string()
}

/// The HMAC the node's file audit device recorded for the value of the last GetSecretValue
/// of `name`: equal on two nodes only if they share the device's key.
fn audited_value_hmac(log: &Path, name: &str) -> String {
    let text = std::fs::read_to_string(log).unwrap();
    text.lines()
        .rev()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|l| l["eventName"] == "GetSecretValue" && l["requestParameters"]["SecretId"] == name)
        .find_map(|l| l["responseElements"]["SecretString"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("no GetSecretValue of {name} in {text}"))
}

fn event_names(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["eventName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

fn assert_uninitialized(prod: &Prod) {
    let (code, out, _) = prod.operator(&["status"]);
    assert_eq!(code, 2);
    assert!(out.contains("Initialized:  false"), "{out}");
}

/// Objects of every kind on node A, written before the snapshot.
struct Made {
    ciphertext: Vec<u8>,
    user: Creds,
    other_account: (String, String, String),
}

async fn make_every_kind_of_object(prod: &Prod, init: &Init) -> Made {
    let c = creds(prod, init);
    let sm = sm_client(&c.endpoint, &c.access_key_id, &c.secret_access_key);
    // A secret with three versions, a resource policy and a replica in another region.
    sm.create_secret()
        .name("app/db")
        .secret_string("v1")
        .send()
        .await
        .unwrap();
    for v in ["v2", "v3"] {
        sm.put_secret_value()
            .secret_id("app/db")
            .secret_string(v)
            .send()
            .await
            .unwrap();
    }
    let doc = policy(vec![json!({
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", c.account_id)},
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
    })]);
    sm.put_resource_policy()
        .secret_id("app/db")
        .resource_policy(doc.to_string())
        .send()
        .await
        .unwrap();
    sm.replicate_secret_to_regions()
        .secret_id("app/db")
        .add_replica_regions(ReplicaRegionType::builder().region("eu-west-1").build())
        .send()
        .await
        .unwrap();
    // A secret scheduled for deletion.
    sm.create_secret()
        .name("old/gone")
        .secret_string("bye")
        .send()
        .await
        .unwrap();
    sm.delete_secret()
        .secret_id("old/gone")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();

    // Parameters with history.
    let ssm = ssm_client(&c);
    for (i, v) in ["first", "second"].iter().enumerate() {
        let overwrite = i > 0;
        ssm.put_parameter()
            .name("/app/name")
            .value(*v)
            .r#type(ParameterType::String)
            .overwrite(overwrite)
            .send()
            .await
            .unwrap();
        ssm.put_parameter()
            .name("/app/password")
            .value(format!("secure-{v}"))
            .r#type(ParameterType::SecureString)
            .overwrite(overwrite)
            .send()
            .await
            .unwrap();
    }

    // A KMS key with an alias, and a ciphertext made now.
    let kms = crate::kms::client(&c);
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms.create_alias()
        .alias_name("alias/app")
        .target_key_id(&key)
        .send()
        .await
        .unwrap();
    let ciphertext = kms
        .encrypt()
        .key_id("alias/app")
        .plaintext(Blob::new(b"made before the snapshot".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();

    // An IAM user with a policy and an access key, and a role.
    let user = user_with_policy(
        &c,
        "ci",
        policy(vec![allow(
            "secretsmanager:GetSecretValue",
            &format!("arn:aws:secretsmanager:*:{}:secret:app/*", c.account_id),
        )]),
    )
    .await;
    let trust = policy(vec![json!({
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:root", c.account_id)},
        "Action": "sts:AssumeRole",
    })])
    .to_string();
    let out = query(
        &c,
        &root(&c),
        "iam",
        &[
            ("Action", "CreateRole"),
            ("RoleName", "deployer"),
            ("AssumeRolePolicyDocument", &trust),
        ],
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text);

    // A second account with a secret of its own.
    let (code, out, err) = operator_with_token(prod, &init.token, &["account", "create", "--json"]);
    assert_eq!(code, 0, "{err}");
    let acct: Value = serde_json::from_str(&out).unwrap();
    let other = (
        acct["account_id"].as_str().unwrap().to_string(),
        acct["access_key_id"].as_str().unwrap().to_string(),
        acct["secret_access_key"].as_str().unwrap().to_string(),
    );
    sm_client(&c.endpoint, &other.1, &other.2)
        .create_secret()
        .name("theirs")
        .secret_string("other-account")
        .send()
        .await
        .unwrap();

    // A registered rotation function.
    let r = lambda(
        &c,
        "CreateFunction",
        json!({ "FunctionName": "my-rotator", "Http": { "Url": "http://127.0.0.1:9/rotate" } }),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Read once on A, so its audit log holds the HMAC of the value under A's device key.
    sm.get_secret_value().secret_id("app/db").send().await.unwrap();
    Made {
        ciphertext,
        user,
        other_account: other,
    }
}

async fn read_everything_back(c: &DevCredentials, made: &Made) {
    let sm = sm_client(&c.endpoint, &c.access_key_id, &c.secret_access_key);
    let got = sm.get_secret_value().secret_id("app/db").send().await.unwrap();
    assert_eq!(got.secret_string(), Some("v3"));
    let versions = sm
        .list_secret_version_ids()
        .secret_id("app/db")
        .include_deprecated(true)
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 3);
    for v in versions.versions() {
        sm.get_secret_value()
            .secret_id("app/db")
            .version_id(v.version_id().unwrap())
            .send()
            .await
            .unwrap();
    }
    let pol = sm.get_resource_policy().secret_id("app/db").send().await.unwrap();
    assert!(pol.resource_policy().unwrap().contains("secretsmanager:GetSecretValue"));
    let replica = sm_client_region(&c.endpoint, &c.access_key_id, &c.secret_access_key, "eu-west-1");
    let got = replica.get_secret_value().secret_id("app/db").send().await.unwrap();
    assert_eq!(got.secret_string(), Some("v3"));
    let gone = sm.describe_secret().secret_id("old/gone").send().await.unwrap();
    assert!(gone.deleted_date().is_some(), "still scheduled for deletion");
    sm.restore_secret().secret_id("old/gone").send().await.unwrap();
    let got = sm.get_secret_value().secret_id("old/gone").send().await.unwrap();
    assert_eq!(got.secret_string(), Some("bye"));

    let ssm = ssm_client(c);
    let p = ssm.get_parameter().name("/app/name").send().await.unwrap();
    assert_eq!(p.parameter().unwrap().value(), Some("second"));
    let p = ssm
        .get_parameter()
        .name("/app/password")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    assert_eq!(p.parameter().unwrap().value(), Some("secure-second"));
    let history = ssm
        .get_parameter_history()
        .name("/app/password")
        .with_decryption(true)
        .send()
        .await
        .unwrap();
    let values: Vec<_> = history.parameters().iter().filter_map(|p| p.value()).collect();
    assert_eq!(values, ["secure-first", "secure-second"]);

    let kms = crate::kms::client(c);
    let plain = kms
        .decrypt()
        .ciphertext_blob(Blob::new(made.ciphertext.clone()))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"made before the snapshot");
    let aliases = kms.list_aliases().send().await.unwrap();
    assert!(aliases.aliases().iter().any(|a| a.alias_name() == Some("alias/app")));

    // The IAM user's key signs requests, and its policy still applies.
    let user = sm_client(&c.endpoint, &made.user.akid, &made.user.secret);
    let got = user.get_secret_value().secret_id("app/db").send().await.unwrap();
    assert_eq!(got.secret_string(), Some("v3"));
    let e = user.get_secret_value().secret_id("old/gone").send().await.unwrap_err();
    assert_eq!(err_code(&e), "AccessDeniedException");
    let out = query(c, &root(c), "iam", &[("Action", "GetRole"), ("RoleName", "deployer")]).await;
    assert_eq!(out.status, 200, "{}", out.text);
    assert!(xml_tag(&out.text, "Arn").ends_with(":role/deployer"));

    let (_, akid, secret) = &made.other_account;
    let theirs = sm_client(&c.endpoint, akid, secret);
    let got = theirs.get_secret_value().secret_id("theirs").send().await.unwrap();
    assert_eq!(got.secret_string(), Some("other-account"));

    let r = lambda(c, "GetFunction", json!({ "FunctionName": "my-rotator" })).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_restores_every_kind_of_object_onto_a_fresh_node() {
    let (a, log_a) = Prod::with_file_and_stdout_audit();
    let _pa = a.start();
    let init_a = init(&a, "3", "2");
    unseal(&a, &init_a.keys[..2]);
    let made = make_every_kind_of_object(&a, &init_a).await;
    let ca = creds(&a, &init_a);

    // Saving needs the root token.
    let (status, body) = v1(reqwest::Method::GET, &a.endpoint, SNAPSHOT, None, Vec::new()).await;
    assert_eq!(status, 403, "{}", errors(&body));
    let (status, _) = v1(
        reqwest::Method::GET,
        &a.endpoint,
        SNAPSHOT,
        Some("not-a-token"),
        Vec::new(),
    )
    .await;
    assert_eq!(status, 403);
    let (code, _, err) = a.operator(&["snapshot", "save", "/nonexistent/never"]);
    assert_ne!(code, 0);
    assert!(err.contains("root token"), "{err}");

    // Writes go on while the snapshot is taken: secrets are created and changed throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let sm = sm_client(&ca.endpoint, &ca.access_key_id, &ca.secret_access_key);
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) || i < 20 {
                let name = format!("load/{}", i % 10);
                if i < 10 {
                    sm.create_secret()
                        .name(&name)
                        .secret_string(format!("{i}"))
                        .send()
                        .await
                        .unwrap();
                } else {
                    sm.put_secret_value()
                        .secret_id(&name)
                        .secret_string(format!("{i}"))
                        .send()
                        .await
                        .unwrap();
                }
                i += 1;
                written.store(i, Ordering::SeqCst);
            }
        })
    };
    while written.load(Ordering::SeqCst) < 5 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.snap");
    let file_s = file.to_str().unwrap().to_string();
    let (code, out, err) = {
        let endpoint = a.endpoint.clone();
        let (token, file_s) = (init_a.token.clone(), file_s.clone());
        tokio::task::spawn_blocking(move || {
            coffer_testkit::run(
                bin(),
                &[
                    "operator",
                    "snapshot",
                    "save",
                    &file_s,
                    "--address",
                    &endpoint,
                    "--token",
                    &token,
                ],
                &[],
            )
            .unwrap()
        })
        .await
        .unwrap()
    };
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("entries") && out.contains("SHA-256"), "{out}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let snapshot = std::fs::read(&file).unwrap();
    assert!(snapshot.starts_with(b"COFFSNAP"));
    assert!(
        !snapshot.windows(8).any(|w| w == b"secure-s"),
        "a SecureString value is in the snapshot in clear"
    );
    assert!(event_names(&log_a).iter().any(|n| n == "SnapshotSave"));

    // Node B: a fresh, uninitialized server with its own data directory.
    let (b, log_b) = Prod::with_file_and_stdout_audit();
    let _pb = b.start();
    // A corrupted or truncated snapshot is refused by the server and changes nothing.
    let mut corrupt = snapshot.clone();
    let middle = corrupt.len() / 2;
    corrupt[middle] ^= 0x01;
    let truncated = snapshot[..snapshot.len() - 10].to_vec();
    for (what, bad) in [
        ("corrupt", corrupt.clone()),
        ("truncated", truncated),
        ("empty", Vec::new()),
    ] {
        let (status, body) = v1(reqwest::Method::POST, &b.endpoint, SNAPSHOT, None, bad).await;
        assert_eq!(status, 400, "{what}: {}", errors(&body));
        assert!(errors(&body).contains("snapshot"), "{what}: {}", errors(&body));
        assert_uninitialized(&b);
    }
    // The CLI checks a file before sending it.
    let bad_file = dir.path().join("bad.snap");
    std::fs::write(&bad_file, &corrupt).unwrap();
    let (code, _, err) = b.operator(&["snapshot", "restore", bad_file.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(err.contains("not a valid snapshot"), "{err}");
    assert_uninitialized(&b);

    // The real one: no token needed on a fresh node. B comes up sealed with A's configuration.
    let (code, out, err) = b.operator(&["snapshot", "restore", &file_s]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Coffer is sealed"), "{out}");
    let (code, out, _) = b.operator(&["status"]);
    assert_eq!(code, 2);
    assert!(
        out.contains("Initialized:  true") && out.contains("Shares:       3"),
        "{out}"
    );
    // Initialized now: a second restore needs --force and the root token (which needs an
    // unsealed node).
    let (code, _, err) = b.operator(&["snapshot", "restore", &file_s]);
    assert_ne!(code, 0);
    assert!(err.contains("already initialized"), "{err}");
    let force = "sys/storage/raft/snapshot-force";
    let (status, _) = v1(reqwest::Method::POST, &b.endpoint, force, None, snapshot.clone()).await;
    assert_eq!(status, 403);
    let (status, _) = v1(
        reqwest::Method::POST,
        &b.endpoint,
        force,
        Some(&init_a.token),
        snapshot.clone(),
    )
    .await;
    assert_eq!(status, 503);

    // A's keys (a different pair than A was unsealed with) unseal B, and everything is there.
    unseal(&b, &init_a.keys[1..]);
    let cb = creds(&b, &init_a);
    read_everything_back(&cb, &made).await;
    // Every secret the concurrent writer made that the snapshot holds is whole: each of its
    // versions reads.
    let sm = sm_client(&cb.endpoint, &cb.access_key_id, &cb.secret_access_key);
    let listed = sm
        .list_secrets()
        .filters(
            Filter::builder()
                .key(FilterNameStringType::Name)
                .values("load/")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert!(
        !listed.secret_list().is_empty(),
        "the snapshot missed writes made before it"
    );
    for s in listed.secret_list() {
        let name = s.name().unwrap();
        let current = sm.get_secret_value().secret_id(name).send().await.unwrap();
        assert!(current.secret_string().is_some());
        let versions = sm
            .list_secret_version_ids()
            .secret_id(name)
            .include_deprecated(true)
            .send()
            .await
            .unwrap();
        for v in versions.versions() {
            sm.get_secret_value()
                .secret_id(name)
                .version_id(v.version_id().unwrap())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{name} {:?}: {e:?}", v.version_id()));
        }
    }
    // B's audit device holds A's key (same HMAC of the same value), and the restore is in its
    // log, written first at unseal.
    assert_eq!(
        audited_value_hmac(&log_b, "app/db"),
        audited_value_hmac(&log_a, "app/db")
    );
    assert!(event_names(&log_b).iter().any(|n| n == "SnapshotRestore"));

    // An initialized, unsealed node: the plain endpoint refuses, force without the root token
    // is denied, force with it replaces the data and seals.
    let (status, body) = v1(
        reqwest::Method::POST,
        &b.endpoint,
        SNAPSHOT,
        Some(&init_a.token),
        snapshot.clone(),
    )
    .await;
    assert_eq!(status, 400, "{}", errors(&body));
    let (code, _, err) = b.operator(&["snapshot", "restore", "--force", &file_s]);
    assert_ne!(code, 0);
    assert!(err.contains("403"), "{err}");
    sm.create_secret()
        .name("after/snapshot")
        .secret_string("x")
        .send()
        .await
        .unwrap();
    let (code, out, err) = operator_with_token(&b, &init_a.token, &["snapshot", "restore", "--force", &file_s]);
    assert_eq!(code, 0, "{out}{err}");
    let e = sm.get_secret_value().secret_id("app/db").send().await.unwrap_err();
    assert_eq!(err_code(&e), "ServiceUnavailableException");
    unseal(&b, &init_a.keys[..2]);
    let e = sm
        .get_secret_value()
        .secret_id("after/snapshot")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ResourceNotFoundException");
    assert_eq!(
        sm.get_secret_value()
            .secret_id("app/db")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("v3")
    );
}
