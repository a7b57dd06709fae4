//! Production mode: config file, `coffer operator init/unseal/seal/status/rotate`, restart,
//! crash safety under SIGKILL, TLS, and no secret in clear in logs or on disk.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::primitives::Blob;
use coffer_testkit::CofferProcess;

use crate::support::*;

pub(crate) struct Prod {
    dir: tempfile::TempDir,
    config: PathBuf,
    pub(crate) endpoint: String,
}

impl Prod {
    pub(crate) fn new(extra_listener: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = coffer_testkit::free_port().unwrap();
        let data = dir.path().join("data").join("coffer.redb");
        let config = dir.path().join("coffer.toml");
        let scheme = if extra_listener.contains("tls_cert_file") {
            "https"
        } else {
            "http"
        };
        std::fs::write(
            &config,
            format!(
                "[listener]\naddress = \"127.0.0.1:{port}\"\n{extra_listener}\n[storage]\npath = \"{}\"\n",
                data.display()
            ),
        )
        .unwrap();
        Self {
            dir,
            config,
            endpoint: format!("{scheme}://127.0.0.1:{port}"),
        }
    }

    pub(crate) fn plaintext() -> Self {
        Self::new("dangerous_plaintext_http = true")
    }

    /// Plain HTTP with the README's example audit devices: a file and stdout.
    pub(crate) fn with_file_and_stdout_audit() -> (Self, PathBuf) {
        let prod = Self::plaintext();
        let log = prod.dir.path().join("audit").join("audit.log");
        let mut config = std::fs::read_to_string(&prod.config).unwrap();
        config.push_str(&format!(
            "\n[[audit]]\ntype = \"file\"\npath = \"{}\"\n[[audit]]\ntype = \"stdout\"\n",
            log.display()
        ));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&prod.config, config).unwrap();
        (prod, log)
    }

    pub(crate) fn start(&self) -> CofferProcess {
        let mut p = CofferProcess::start(bin(), &["server", "--config", self.config.to_str().unwrap()], &[]).unwrap();
        p.wait_for_line("Coffer listening on", Duration::from_secs(20)).unwrap();
        p
    }

    pub(crate) fn operator(&self, args: &[&str]) -> (i32, String, String) {
        let mut all = vec!["operator"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--address", &self.endpoint]);
        coffer_testkit::run(bin(), &all, &[]).unwrap()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The test's directory (the config, `data/` and any audit files live under it).
    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Appends `text` to the config file (before the next start).
    pub(crate) fn add_config(&self, text: &str) {
        let mut config = std::fs::read_to_string(&self.config).unwrap();
        config.push_str(text);
        std::fs::write(&self.config, config).unwrap();
    }
}

pub(crate) struct Init {
    pub(crate) keys: Vec<String>,
    pub(crate) account_id: String,
    pub(crate) akid: String,
    pub(crate) secret: String,
    pub(crate) token: String,
}

pub(crate) fn init(prod: &Prod, shares: &str, threshold: &str) -> Init {
    let (code, out, err) = prod.operator(&["init", "--shares", shares, "--threshold", threshold, "--json"]);
    assert_eq!(code, 0, "init failed: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    Init {
        keys: v["keys_base64"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k.as_str().unwrap().to_string())
            .collect(),
        account_id: v["account_id"].as_str().unwrap().to_string(),
        akid: v["root_access_key_id"].as_str().unwrap().to_string(),
        secret: v["root_secret_access_key"].as_str().unwrap().to_string(),
        token: v["root_token"].as_str().unwrap().to_string(),
    }
}

/// `coffer operator <args>` against `prod` with a token.
pub(crate) fn operator_with_token(prod: &Prod, token: &str, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["operator"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--address", &prod.endpoint, "--token", token]);
    coffer_testkit::run(bin(), &all, &[]).unwrap()
}

pub(crate) fn unseal(prod: &Prod, keys: &[String]) {
    for (i, k) in keys.iter().enumerate() {
        let (code, out, err) = prod.operator(&["unseal", k]);
        let last = i + 1 == keys.len();
        assert_eq!(code, if last { 0 } else { 2 }, "unseal {i}: {out}{err}");
    }
}

#[tokio::test]
async fn init_unseal_seal_and_restart_keep_everything() {
    let prod = Prod::plaintext();
    let mut p = prod.start();
    let (code, out, _) = prod.operator(&["status"]);
    assert_eq!(code, 2);
    assert!(out.contains("Initialized:  false"), "{out}");

    let init = init(&prod, "5", "3");
    assert_eq!(init.keys.len(), 5);
    // A second init is refused.
    let (code, _, err) = prod.operator(&["init", "--shares", "1", "--threshold", "1"]);
    assert_ne!(code, 0);
    assert!(err.contains("already initialized"), "{err}");

    // Sealed: data requests are refused and nothing is stored.
    let sm = sm_client(&prod.endpoint, &init.akid, &init.secret);
    let e = sm
        .create_secret()
        .name("while/sealed")
        .secret_string("v")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ServiceUnavailableException", "{e:?}");

    // A wrong share does not unseal.
    let (code, _, _) = prod.operator(&["unseal", &init.keys[0]]);
    assert_eq!(code, 2);
    let (code, _, _) = prod.operator(&["unseal", "--reset"]);
    assert_eq!(code, 2);
    unseal(&prod, &init.keys[2..5]);

    sm.create_secret()
        .name("prod/db")
        .secret_string("before-restart")
        .send()
        .await
        .unwrap();
    let (code, _, err) = coffer_testkit::run(
        bin(),
        &[
            "operator",
            "rotate",
            "--address",
            &prod.endpoint,
            "--token",
            &init.token,
        ],
        &[],
    )
    .unwrap();
    assert_eq!(code, 0, "{err}");
    sm.put_secret_value()
        .secret_id("prod/db")
        .secret_string("after-rotate")
        .send()
        .await
        .unwrap();

    // Seal needs the root token.
    let (code, _, _) = prod.operator(&["seal"]);
    assert_ne!(code, 0);
    let (code, _, err) = coffer_testkit::run(
        bin(),
        &["operator", "seal", "--address", &prod.endpoint, "--token", &init.token],
        &[],
    )
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let e = sm.get_secret_value().secret_id("prod/db").send().await.unwrap_err();
    assert_eq!(err_code(&e), "ServiceUnavailableException");

    assert!(p.terminate(Duration::from_secs(10)));
    drop(p);
    let _p = prod.start();
    let e = sm.get_secret_value().secret_id("prod/db").send().await.unwrap_err();
    assert_eq!(err_code(&e), "ServiceUnavailableException");
    unseal(
        &prod,
        &[init.keys[0].clone(), init.keys[3].clone(), init.keys[4].clone()],
    );
    let cur = sm.get_secret_value().secret_id("prod/db").send().await.unwrap();
    assert_eq!(cur.secret_string(), Some("after-rotate"));
    let prev = sm
        .get_secret_value()
        .secret_id("prod/db")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(
        prev.secret_string(),
        Some("before-restart"),
        "data written under the old key term is readable"
    );
}

#[tokio::test]
async fn sigkill_during_writes_loses_no_acknowledged_write() {
    let prod = Prod::plaintext();
    let mut p = prod.start();
    let init = init(&prod, "1", "1");
    unseal(&prod, &init.keys);
    let sm = sm_client(&prod.endpoint, &init.akid, &init.secret);
    for w in 0..8 {
        sm.create_secret()
            .name(format!("load/{w}"))
            .secret_string("seed")
            .send()
            .await
            .unwrap();
    }
    let acked: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_millis(1500);
    let mut writers = Vec::new();
    for w in 0..8 {
        let sm = sm.clone();
        let acked = acked.clone();
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            loop {
                let value = format!("w{w}-i{i}");
                match sm
                    .put_secret_value()
                    .secret_id(format!("load/{w}"))
                    .secret_string(&value)
                    .send()
                    .await
                {
                    Ok(out) => {
                        acked
                            .lock()
                            .unwrap()
                            .push((format!("load/{w}"), out.version_id().unwrap().to_string(), value))
                    }
                    Err(_) => break, // the server is gone
                }
                i += 1;
            }
        }));
    }
    tokio::time::sleep_until(stop_at.into()).await;
    p.kill(); // SIGKILL, mid-load
    for w in writers {
        let _ = w.await;
    }
    drop(p);
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > 20,
        "the load wrote too little to prove anything: {}",
        acked.len()
    );

    let _p = prod.start();
    unseal(&prod, &init.keys);
    for (name, version, value) in &acked {
        let got = sm.get_secret_value().secret_id(name).version_id(version).send().await;
        let got = got.unwrap_or_else(|e| panic!("acknowledged write {name}@{version} lost: {e:?}"));
        assert_eq!(got.secret_string(), Some(value.as_str()));
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn a_known_secret_never_appears_in_logs_or_on_disk_in_clear() {
    let prod = Prod::plaintext();
    let mut p = prod.start();
    let init = init(&prod, "1", "1");
    unseal(&prod, &init.keys);
    let sm = sm_client(&prod.endpoint, &init.akid, &init.secret);
    let canary = format!("CANARY-{}-value", std::process::id());
    let canary_bin = format!("BINARY-CANARY-{}", std::process::id());

    // Every operation that carries or returns a value.
    sm.create_secret()
        .name("leak/a")
        .secret_string(format!("{canary}-1"))
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("leak/b")
        .secret_binary(Blob::new(canary_bin.as_bytes()))
        .send()
        .await
        .unwrap();
    sm.put_secret_value()
        .secret_id("leak/a")
        .secret_string(format!("{canary}-2"))
        .send()
        .await
        .unwrap();
    sm.update_secret()
        .secret_id("leak/a")
        .secret_string(format!("{canary}-3"))
        .description("d")
        .send()
        .await
        .unwrap();
    sm.put_secret_value()
        .secret_id("leak/a")
        .secret_string(format!("{canary}-4"))
        .version_stages("CUSTOM")
        .send()
        .await
        .unwrap();
    sm.get_secret_value().secret_id("leak/a").send().await.unwrap();
    sm.get_secret_value()
        .secret_id("leak/a")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    sm.get_secret_value().secret_id("leak/b").send().await.unwrap();
    sm.batch_get_secret_value()
        .secret_id_list("leak/a")
        .secret_id_list("leak/b")
        .send()
        .await
        .unwrap();
    sm.describe_secret().secret_id("leak/a").send().await.unwrap();
    sm.list_secret_version_ids().secret_id("leak/a").send().await.unwrap();
    sm.list_secrets().send().await.unwrap();
    // Error paths that receive a value.
    let token = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee";
    sm.put_secret_value()
        .secret_id("leak/a")
        .client_request_token(token)
        .secret_string(format!("{canary}-5"))
        .send()
        .await
        .unwrap();
    sm.put_secret_value()
        .secret_id("leak/a")
        .client_request_token(token)
        .secret_string(format!("{canary}-6"))
        .send()
        .await
        .unwrap_err();
    sm.put_secret_value()
        .secret_id("leak/missing")
        .secret_string(format!("{canary}-7"))
        .send()
        .await
        .unwrap_err();
    sm.create_secret()
        .name("leak/a")
        .secret_string(format!("{canary}-8"))
        .send()
        .await
        .unwrap_err();
    sm.delete_secret()
        .secret_id("leak/b")
        .force_delete_without_recovery(true)
        .send()
        .await
        .unwrap();
    let raw = signed_post(
        &prod.endpoint,
        &init.akid,
        &init.secret,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        format!("{{\"Name\": \"leak/c\", \"SecretString\": \"{canary}-9\", \"SecretBinary\": 1}}").as_bytes(),
        std::time::SystemTime::now(),
    )
    .await;
    assert_eq!(raw.status, 400);
    assert!(!raw.text.contains(&canary));

    assert!(p.terminate(Duration::from_secs(10)));
    let logs = format!("{}{}", p.stderr(), p.stdout());
    assert!(logs.contains("request"), "the debug request log was not captured");
    assert!(!logs.contains(&canary), "a secret value reached the log");
    assert!(!logs.contains(&canary_bin));
    assert!(!logs.contains(&init.secret), "the root secret key reached the log");
    let files = files_under(&prod.data_dir());
    assert!(!files.is_empty());
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !contains(&bytes, canary.as_bytes()),
            "{} holds a secret in clear",
            f.display()
        );
        assert!(
            !contains(&bytes, canary_bin.as_bytes()),
            "{} holds a binary secret in clear",
            f.display()
        );
        assert!(
            !contains(&bytes, init.secret.as_bytes()),
            "{} holds the root secret key in clear",
            f.display()
        );
        assert!(
            !contains(&bytes, b"leak/a"),
            "{} holds a secret name in clear",
            f.display()
        );
    }
}

#[tokio::test]
async fn tls_listener_serves_https_and_the_cli_trusts_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = self_signed_tls(dir.path(), false);
    let prod = Prod::new(&format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
        cert_path.display(),
        key_path.display()
    ));
    let _p = prod.start();
    assert!(prod.endpoint.starts_with("https://"));
    // Without the CA the CLI refuses the certificate; with it, it works.
    let (code, _, _) = prod.operator(&["status"]);
    assert_eq!(code, 1);
    let (code, out, err) = prod.operator(&["status", "--ca-cert", cert_path.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains("Initialized:  false"));
    // Plain HTTP to the TLS port gets nothing useful.
    let plain = prod.endpoint.replace("https://", "http://");
    let r = reqwest::Client::new()
        .get(format!("{plain}/v1/sys/seal-status"))
        .send()
        .await;
    assert!(r.map(|r| !r.status().is_success()).unwrap_or(true));
}

#[test]
fn config_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[listener]\naddress = \"127.0.0.1:0\"\n[storage]\npath = \"x.redb\"\n",
    )
    .unwrap();
    let (code, _, err) = coffer_testkit::run(bin(), &["server", "--config", cfg.to_str().unwrap()], &[]).unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("TLS is required"), "{err}");
    std::fs::write(
        &cfg,
        "[listener]\ndangerous_plaintext_http = true\ntypo = 1\n[storage]\npath = \"x.redb\"\n",
    )
    .unwrap();
    let (code, _, err) = coffer_testkit::run(bin(), &["server", "--config", cfg.to_str().unwrap()], &[]).unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("typo"), "{err}");
}
