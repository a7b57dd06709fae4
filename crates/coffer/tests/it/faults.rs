//! Fault injection on the real binary: SIGKILL in each step of a rotation and under a mixed
//! write load (every engine, barrier key rotations, KMS key rotations), a full filesystem
//! under the data file and under the audit log, and clock jumps.
//!
//! What each test injects and checks is summed up in `docs/reliability.md` ("Fault
//! injection"). The disk-full tests mount a small tmpfs; they need root (`mount`), and fail
//! when that is refused with `CI=true` set (a CI machine must have the facility).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_secretsmanager as sm;
use coffer_testkit::DevCredentials;
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::production::{Init, Prod, init, unseal};
use crate::rotation::{FnState, current_value, register, serve_function, status, wait_for};
use crate::support::*;

const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// Four secrets rotate at once; each rotation's function blocks in a different step, after
/// doing that step's work (createSecret has stored the pending value, finishSecret has moved
/// AWSCURRENT). The server is SIGKILLed with all four held, restarted on the same file, and
/// every rotation must finish exactly once: AWSCURRENT moved once to the pending version,
/// AWSPENDING gone, no extra version, `LastRotatedDate` set and no failure recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_in_each_rotation_step_finishes_it_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevOnFile::new(dir.path().join("coffer.redb"), &[]);
    let mut p = server.start();
    let c = server.creds();
    let state = Arc::new(FnState::default());
    let url = serve_function(state.clone()).await;
    let arn = register(&c, &state, &url, "held-rotator").await;
    let sm = dev_client(&c);

    let mut tokens = Vec::new();
    for step in STEPS {
        let name = format!("kill/{step}");
        sm.create_secret()
            .name(&name)
            .secret_string("before")
            .send()
            .await
            .unwrap();
        state.hold.lock().insert(name.clone(), step.to_string());
        let out = sm
            .rotate_secret()
            .secret_id(&name)
            .rotation_lambda_arn(&arn)
            .rotation_rules(
                sm::types::RotationRulesType::builder()
                    .automatically_after_days(30)
                    .build(),
            )
            .send()
            .await
            .unwrap();
        tokens.push(out.version_id().unwrap().to_string());
    }
    wait_for(
        "every rotation to reach its held step",
        Duration::from_secs(30),
        || async { state.held.lock().len() == STEPS.len() },
    )
    .await;
    p.kill();
    drop(p);
    state.release.store(true, Ordering::SeqCst);

    let _p = server.start();
    for (step, token) in STEPS.iter().zip(&tokens) {
        let name = format!("kill/{step}");
        wait_for(
            &format!("{name}: the rotation to finish"),
            Duration::from_secs(30),
            || async {
                let s = status(&c, &name).await;
                s.get("PendingVersionId").is_none() && s.get("LastRotatedDate").is_some()
            },
        )
        .await;
        let s = status(&c, &name).await;
        assert_eq!(s["FailedAttempts"], json!(0), "{name}: {s}");
        let d = sm.describe_secret().secret_id(&name).send().await.unwrap();
        let stages = d.version_ids_to_stages().unwrap();
        assert_eq!(stages.len(), 2, "{name}: an orphan version: {stages:?}");
        assert_eq!(stages[token], ["AWSCURRENT"], "{name}: {stages:?}");
        assert!(
            stages.iter().any(|(v, s)| v != token && s == &["AWSPREVIOUS"]),
            "{name}: {stages:?}"
        );
        assert!(d.last_rotated_date().is_some(), "{name}");
        let current = current_value(&sm, &name).await;
        assert_ne!(current, "before", "{name}");
        let pending_value = sm
            .get_secret_value()
            .secret_id(&name)
            .version_id(token)
            .send()
            .await
            .unwrap();
        assert_eq!(pending_value.secret_string(), Some(current.as_str()), "{name}");
        let prev = sm
            .get_secret_value()
            .secret_id(&name)
            .version_stage("AWSPREVIOUS")
            .send()
            .await
            .unwrap();
        assert_eq!(prev.secret_string(), Some("before"), "{name}");
        let moves = state
            .moves
            .lock()
            .iter()
            .filter(|a| a.contains(&format!(":secret:{name}-")))
            .count();
        assert_eq!(moves, 1, "{name}: AWSCURRENT moved {moves} times");
    }
    assert_eq!(state.bad_signatures.load(Ordering::SeqCst), 0);
}

/// What the writers of [`sigkill_under_mixed_load_loses_no_acknowledged_write`] had
/// acknowledged when the server died.
#[derive(Default)]
struct Acked {
    /// (secret, version id, value)
    secrets: Vec<(String, String, String)>,
    /// (parameter, version, value)
    parameters: Vec<(String, i64, String)>,
    /// Keys created.
    keys: Vec<String>,
    /// (key, ciphertext, plaintext): encrypted under the key's newest material.
    ciphertexts: Vec<(String, Vec<u8>, String)>,
    /// (key, number of acknowledged on-demand rotations)
    key_rotations: Vec<(String, usize)>,
    /// (alias, key)
    aliases: Vec<(String, String)>,
    /// (user, access key id, secret access key)
    access_keys: Vec<(String, String, String)>,
    users: Vec<String>,
    /// Barrier key terms `sys/rotate` answered with.
    terms: Vec<u64>,
}

fn xml_field(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].to_string())
}

async fn iam(c: &DevCredentials, form: &str) -> (u16, String) {
    signed_query(&c.endpoint, &c.access_key_id, &c.secret_access_key, "iam", form).await
}

/// A production server (redb file, one share) under writes to every engine at once, plus
/// barrier key rotations (`PUT /v1/sys/rotate`, what `coffer operator rotate` calls) and
/// KMS CreateKey / RotateKeyOnDemand / CreateAlias, SIGKILLed mid-load: after a restart and
/// unseal every acknowledged write reads back, every acknowledged ciphertext decrypts, the
/// barrier term is at least the last acknowledged one, and each key has at least its
/// acknowledged rotations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_mixed_load_loses_no_acknowledged_write() {
    let prod = Prod::plaintext();
    let mut p = prod.start();
    let init = init(&prod, "1", "1");
    unseal(&prod, &init.keys);
    let c = creds_of(&prod, &init);
    let sm = dev_client(&c);
    for w in 0..2 {
        sm.create_secret()
            .name(format!("mixed/{w}"))
            .secret_string("seed")
            .send()
            .await
            .unwrap();
    }
    let acked: Arc<Mutex<Acked>> = Arc::default();
    let mut tasks = Vec::new();
    // Secrets Manager: PutSecretValue.
    for w in 0..2 {
        let (sm, acked) = (sm.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let value = format!("s{w}-{i}");
                let Ok(out) = sm
                    .put_secret_value()
                    .secret_id(format!("mixed/{w}"))
                    .secret_string(&value)
                    .send()
                    .await
                else {
                    break;
                };
                let v = out.version_id().unwrap().to_string();
                acked.lock().secrets.push((format!("mixed/{w}"), v, value));
            }
        }));
    }
    // Parameter Store: PutParameter with Overwrite builds a history.
    {
        let (ssm, acked) = (ssm_client(&c), acked.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let value = format!("p-{i}");
                let Ok(out) = ssm
                    .put_parameter()
                    .name("/mixed/param")
                    .value(&value)
                    .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
                    .overwrite(true)
                    .send()
                    .await
                else {
                    break;
                };
                acked
                    .lock()
                    .parameters
                    .push(("/mixed/param".into(), out.version(), value));
            }
        }));
    }
    // KMS: CreateKey, then Encrypt / RotateKeyOnDemand / CreateAlias on it.
    {
        let (kms, acked) = (crate::kms::client(&c), acked.clone());
        tasks.push(tokio::spawn(async move {
            for k in 0.. {
                let Ok(out) = kms.create_key().send().await else { break };
                let key = out.key_metadata().unwrap().key_id().to_string();
                acked.lock().keys.push(key.clone());
                for r in 0..5 {
                    let pt = format!("pt-{k}-{r}");
                    let Ok(enc) = kms
                        .encrypt()
                        .key_id(&key)
                        .plaintext(Blob::new(pt.as_bytes()))
                        .send()
                        .await
                    else {
                        return;
                    };
                    let blob = enc.ciphertext_blob().unwrap().as_ref().to_vec();
                    acked.lock().ciphertexts.push((key.clone(), blob, pt));
                    if kms.rotate_key_on_demand().key_id(&key).send().await.is_err() {
                        return;
                    }
                    acked.lock().key_rotations.push((key.clone(), r + 1));
                }
                let alias = format!("alias/mixed-{k}");
                if kms
                    .create_alias()
                    .alias_name(&alias)
                    .target_key_id(&key)
                    .send()
                    .await
                    .is_err()
                {
                    return;
                }
                acked.lock().aliases.push((alias, key));
            }
        }));
    }
    // IAM: CreateUser, CreateAccessKey.
    {
        let (c, acked) = (copy(&c), acked.clone());
        tasks.push(tokio::spawn(async move {
            for u in 0.. {
                let user = format!("mixed-user-{u}");
                let form = format!("Action=CreateUser&UserName={user}&Version=2010-05-08");
                if iam(&c, &form).await.0 != 200 {
                    break;
                }
                acked.lock().users.push(user.clone());
                let form = format!("Action=CreateAccessKey&UserName={user}&Version=2010-05-08");
                let (status, xml) = iam(&c, &form).await;
                if status != 200 {
                    break;
                }
                let akid = xml_field(&xml, "AccessKeyId").unwrap();
                let secret = xml_field(&xml, "SecretAccessKey").unwrap();
                acked.lock().access_keys.push((user, akid, secret));
            }
        }));
    }
    // Barrier key rotations.
    {
        let (endpoint, token, acked) = (prod.endpoint.clone(), init.token.clone(), acked.clone());
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let r = http
                    .put(format!("{endpoint}/v1/sys/rotate"))
                    .header("x-vault-token", &token)
                    .send()
                    .await;
                let Ok(r) = r else { break };
                if !r.status().is_success() {
                    break;
                }
                let Ok(v) = r.json::<Value>().await else { break };
                acked.lock().terms.push(v["term"].as_u64().unwrap());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    // The requests above are all in flight when the signal lands (the load is steady by now).
    tokio::time::sleep(Duration::from_millis(2500)).await;
    p.kill();
    for t in tasks {
        let _ = t.await;
    }
    drop(p);
    let acked = std::mem::take(&mut *acked.lock());
    eprintln!(
        "acknowledged before SIGKILL: {} secret versions, {} parameter versions, {} keys, {} ciphertexts, \
         {} key rotations, {} aliases, {} users, {} access keys, {} barrier terms",
        acked.secrets.len(),
        acked.parameters.len(),
        acked.keys.len(),
        acked.ciphertexts.len(),
        acked.key_rotations.len(),
        acked.aliases.len(),
        acked.users.len(),
        acked.access_keys.len(),
        acked.terms.len()
    );
    assert!(
        acked.secrets.len() > 10,
        "too few secret writes: {}",
        acked.secrets.len()
    );
    assert!(!acked.parameters.is_empty() && !acked.ciphertexts.is_empty());
    assert!(!acked.access_keys.is_empty() && !acked.terms.is_empty());

    let _p = prod.start();
    unseal(&prod, &init.keys);
    for (name, version, value) in &acked.secrets {
        let got = sm.get_secret_value().secret_id(name).version_id(version).send().await;
        let got = got.unwrap_or_else(|e| panic!("acknowledged write {name}@{version} lost: {e:?}"));
        assert_eq!(got.secret_string(), Some(value.as_str()));
    }
    let ssm = ssm_client(&c);
    for (name, version, value) in &acked.parameters {
        let got = ssm
            .get_parameter()
            .name(format!("{name}:{version}"))
            .with_decryption(true)
            .send()
            .await
            .unwrap_or_else(|e| panic!("acknowledged parameter {name}:{version} lost: {e:?}"));
        assert_eq!(got.parameter().unwrap().value(), Some(value.as_str()));
    }
    let kms = crate::kms::client(&c);
    for key in &acked.keys {
        kms.describe_key()
            .key_id(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("acknowledged key {key} lost: {e:?}"));
    }
    for (key, blob, pt) in &acked.ciphertexts {
        let out = kms
            .decrypt()
            .ciphertext_blob(Blob::new(blob.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("a ciphertext of {key} does not decrypt: {e:?}"));
        assert_eq!(out.plaintext().unwrap().as_ref(), pt.as_bytes());
        assert_eq!(out.key_id().map(|k| k.ends_with(key.as_str())), Some(true));
    }
    for (key, n) in &acked.key_rotations {
        let rotations = kms.list_key_rotations().key_id(key).send().await.unwrap();
        assert!(
            rotations.rotations().len() >= *n,
            "{key}: {n} rotations acknowledged, {} kept",
            rotations.rotations().len()
        );
    }
    for (alias, key) in &acked.aliases {
        let d = kms.describe_key().key_id(alias).send().await.unwrap();
        assert_eq!(d.key_metadata().unwrap().key_id(), key);
    }
    for user in &acked.users {
        let (status, xml) = iam(&c, &format!("Action=GetUser&UserName={user}&Version=2010-05-08")).await;
        assert_eq!(status, 200, "acknowledged user {user} lost: {xml}");
    }
    for (user, akid, secret) in &acked.access_keys {
        let (status, xml) = signed_query(
            &c.endpoint,
            akid,
            secret,
            "sts",
            "Action=GetCallerIdentity&Version=2011-06-15",
        )
        .await;
        assert_eq!(status, 200, "acknowledged access key of {user} lost: {xml}");
        assert!(xml.contains(&format!(":user/{user}<")), "{xml}");
    }
    let r: Value = reqwest::Client::new()
        .get(format!("{}/v1/sys/key-status", prod.endpoint))
        .header("x-vault-token", &init.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = *acked.terms.iter().max().unwrap();
    assert!(
        r["term"].as_u64().unwrap() >= last,
        "barrier term {} < acknowledged {last}",
        r["term"]
    );
    // Writes after the restart use the newest term and read back.
    sm.put_secret_value()
        .secret_id("mixed/0")
        .secret_string("after")
        .send()
        .await
        .unwrap();
    assert_eq!(current_value(&sm, "mixed/0").await, "after");
}

/// The root credentials of a production server, in the shape the helpers take.
fn creds_of(prod: &Prod, init: &Init) -> DevCredentials {
    DevCredentials {
        endpoint: prod.endpoint.clone(),
        account_id: String::new(),
        access_key_id: init.akid.clone(),
        secret_access_key: init.secret.clone(),
        root_token: init.token.clone(),
        unseal_key: init.keys[0].clone(),
    }
}

/// The kind of small filesystem a disk-full test fills.
#[derive(Clone, Copy, Debug)]
enum FsKind {
    /// tmpfs: quick; its fsync never fails.
    Tmpfs,
    /// ext4 on a loop-mounted image: a journaling filesystem, as in production.
    Ext4,
}

/// A small filesystem mounted for one test, unmounted when dropped (also when the test fails).
struct SmallFs {
    dir: PathBuf,
    image: Option<PathBuf>,
}

impl SmallFs {
    /// Mounts a filesystem of `mib` MiB on `dir` (created if missing). `None` when mounting is
    /// not permitted here, unless `CI=true`, where that fails the test: CI must run it.
    fn mount(kind: FsKind, dir: &Path, mib: u32) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let mut fs = Self {
            dir: dir.to_path_buf(),
            image: None,
        };
        let attempt = match kind {
            FsKind::Tmpfs => run_tool(
                "mount",
                &["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs", path(dir)],
            ),
            FsKind::Ext4 => {
                let image = dir.with_extension("img");
                fs.image = Some(image.clone());
                std::fs::File::create(&image)
                    .and_then(|f| f.set_len(u64::from(mib) << 20))
                    .map_err(|e| e.to_string())
                    .and_then(|()| run_tool("mkfs.ext4", &["-q", "-F", path(&image)]))
                    .and_then(|()| run_tool("mount", &["-o", "loop", path(&image), path(dir)]))
            }
        };
        match attempt {
            Ok(()) => Some(fs),
            Err(why) => {
                fs.dir = PathBuf::new();
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "the disk-full tests need to mount a {kind:?} filesystem (run as root): {why}"
                );
                eprintln!("skipped: cannot mount a {kind:?} filesystem here ({why}); CI=true makes this a failure");
                None
            }
        }
    }

    /// Writes a filler file until the filesystem is full; returns its path.
    fn fill(&self) -> PathBuf {
        use std::io::Write as _;
        let path = self.dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        loop {
            if let Err(e) = f.write_all(&chunk) {
                assert_eq!(e.raw_os_error(), Some(28), "not ENOSPC: {e}");
                break;
            }
        }
        // Leave not even a byte: fill what the last partial chunk could not.
        while f.write_all(&[0]).is_ok() {}
        path
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs a system tool; `Err` with its output when it fails or is missing.
fn run_tool(tool: &str, args: &[&str]) -> Result<(), String> {
    match std::process::Command::new(tool).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!("{tool}: {}", String::from_utf8_lossy(&o.stderr).trim())),
        Err(e) => Err(format!("{tool}: {e}")),
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        if !self.dir.as_os_str().is_empty() && run_tool("umount", &[path(&self.dir)]).is_err() {
            let _ = run_tool("umount", &["-l", path(&self.dir)]);
        }
        if let Some(image) = &self.image {
            let _ = std::fs::remove_file(image);
        }
    }
}

/// A raw CreateSecret; returns the status and the `__type` of an error.
async fn create_raw(c: &DevCredentials, name: &str, value: &str) -> (u16, String) {
    let body = json!({ "Name": name, "SecretString": value }).to_string();
    let raw = dev_post(c, "secretsmanager.CreateSecret", &body).await;
    (raw.status, raw.body["__type"].as_str().unwrap_or("").to_string())
}

/// The data file's filesystem (tmpfs) fills up: writes fail with a clear error (500
/// `InternalServiceError`, the server logs the storage error), reads of earlier data go on,
/// the server stays up; once space returns writes succeed again, and after a restart
/// everything acknowledged reads back (the redb file is not corrupt).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_disk_fails_writes_cleanly_and_recovers() {
    full_data_disk(FsKind::Tmpfs).await;
}

/// The same on ext4 (a loop-mounted image), where fsync reaches a journaling filesystem.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_ext4_data_disk_fails_writes_cleanly_and_recovers() {
    full_data_disk(FsKind::Ext4).await;
}

async fn full_data_disk(kind: FsKind) {
    let prod = Prod::plaintext();
    let Some(fs) = SmallFs::mount(kind, &prod.dir().join("data"), 16) else {
        return;
    };
    let mut p = prod.start();
    let init = init(&prod, "1", "1");
    unseal(&prod, &init.keys);
    let c = creds_of(&prod, &init);
    let sm = dev_client(&c);
    let mut written = Vec::new();
    for i in 0..20 {
        let name = format!("full/before-{i}");
        assert_eq!(create_raw(&c, &name, &format!("v{i}")).await.0, 200);
        written.push((name, format!("v{i}")));
    }

    let filler = fs.fill();
    // Writes fail (some may still fit in pages redb already has: write until one fails).
    let mut failed = None;
    for i in 0..200 {
        let name = format!("full/during-{i}");
        let (status, code) = create_raw(&c, &name, &"x".repeat(4096)).await;
        match status {
            200 => written.push((name, "x".repeat(4096))),
            _ => {
                failed = Some((name, status, code));
                break;
            }
        }
    }
    let (failed_name, status, code) = failed.expect("no write failed on a full disk");
    assert_eq!((status, code.as_str()), (500, "InternalServiceError"));
    // The server is up, reads work, and the failed secret does not exist.
    for (name, value) in &written {
        assert_eq!(&current_value(&sm, name).await, value, "{name}");
    }
    let e = sm.describe_secret().secret_id(&failed_name).send().await.unwrap_err();
    assert_eq!(err_code(&e), "ResourceNotFoundException");
    let (code, out, _) = prod.operator(&["status"]);
    assert_eq!(code, 0, "{out}");

    // Space returns: writes succeed again without a restart.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, code) = create_raw(&c, "full/after", "after").await;
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "writes still fail once space returned: {status} {code}\n{}",
            p.stderr()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    written.push(("full/after".into(), "after".into()));
    assert!(
        p.stderr().contains("No space left on device") || p.stdout().contains("No space left on device"),
        "the server did not log the cause"
    );

    // Restart: the file opens and everything acknowledged is there.
    assert!(p.terminate(Duration::from_secs(10)));
    drop(p);
    let _p = prod.start();
    unseal(&prod, &init.keys);
    for (name, value) in &written {
        assert_eq!(&current_value(&sm, name).await, value, "{name} after restart");
    }
}

/// The audit log's filesystem fills up: requests fail closed (500, no value returned without
/// its line), the server logs why, and once space returns requests succeed again; `coffer
/// audit verify` then accepts the file (no torn line, the chain unbroken).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_audit_disk_fails_requests_closed_and_recovers() {
    let prod = Prod::plaintext();
    let audit_dir = prod.dir().join("audit");
    let Some(fs) = SmallFs::mount(FsKind::Tmpfs, &audit_dir, 1) else {
        return;
    };
    let log = audit_dir.join("audit.log");
    prod.add_config(&format!("\n[[audit]]\ntype = \"file\"\npath = \"{}\"\n", log.display()));
    let mut p = prod.start();
    let init = init(&prod, "1", "1");
    unseal(&prod, &init.keys);
    let c = creds_of(&prod, &init);
    let sm = dev_client(&c);
    assert_eq!(create_raw(&c, "audited/a", "value-a").await.0, 200);
    assert_eq!(current_value(&sm, "audited/a").await, "value-a");

    let filler = fs.fill();
    // The log file's last page may still take a few lines: read until a request fails.
    let mut failed = None;
    for _ in 0..200 {
        let raw = dev_post(&c, "secretsmanager.GetSecretValue", r#"{"SecretId":"audited/a"}"#).await;
        if raw.status != 200 {
            failed = Some(raw);
            break;
        }
    }
    let raw = failed.expect("no request failed with the audit disk full");
    assert_eq!(raw.status, 500, "{}", raw.text);
    assert_eq!(raw.body["__type"], "InternalServiceError");
    assert!(
        !raw.text.contains("value-a"),
        "a value was returned without its audit line"
    );
    let (status, _) = create_raw(&c, "audited/b", "value-b").await;
    assert_eq!(status, 500);
    let logs = format!("{}{}", p.stderr(), p.stdout());
    assert!(
        logs.contains("not recorded by any audit device") && logs.contains("No space left on device"),
        "the server did not report the audit failure: {logs}"
    );

    std::fs::remove_file(filler).unwrap();
    assert_eq!(current_value(&sm, "audited/a").await, "value-a");
    assert_eq!(create_raw(&c, "audited/c", "value-c").await.0, 200);
    assert!(p.terminate(Duration::from_secs(10)));
    drop(p);
    let (code, out, err) = coffer_testkit::run(bin(), &["audit", "verify", log.to_str().unwrap()], &[]).unwrap();
    assert_eq!(code, 0, "audit verify failed after a full disk: {out}{err}");
}

/// SigV4 freshness on the real binary is judged on the wall clock, 5 minutes either way:
/// requests signed 4 minutes in the past or future pass, 6 minutes fail (AWS's messages are
/// tested in `coffer-sigv4`). Moving the dev business clock does not move that window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigv4_window_follows_the_wall_clock_not_the_business_clock() {
    let (_p, c) = start_dev(&["--dev-allow-reset"]);
    check_sigv4_window(&c, "wall clock").await;
    crate::rotation::advance_clock(&c, 3600).await;
    check_sigv4_window(&c, "business clock an hour ahead").await;
    // The dev API refuses to move the business clock back.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sys/coffer/clock", c.endpoint))
        .json(&json!({ "advance_seconds": -60 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

/// Requests signed 4 minutes off pass, 6 minutes off fail, either way.
async fn check_sigv4_window(c: &DevCredentials, label: &str) {
    for (secs, ok) in [(-240i64, true), (240, true), (-360, false), (360, false)] {
        let now = SystemTime::now();
        let off = Duration::from_secs(secs.unsigned_abs());
        let t = if secs >= 0 { now + off } else { now - off };
        let r = signed_post(
            &c.endpoint,
            &c.access_key_id,
            &c.secret_access_key,
            "secretsmanager",
            "secretsmanager.ListSecrets",
            b"{}",
            t,
        )
        .await;
        if ok {
            assert_eq!(r.status, 200, "{label}: signed {secs}s off: {}", r.text);
        } else {
            assert_eq!(r.status, 400, "{label}: signed {secs}s off: {}", r.text);
            assert_eq!(r.body["__type"], "InvalidSignatureException", "{label}");
        }
    }
}

fn copy(c: &DevCredentials) -> DevCredentials {
    DevCredentials {
        endpoint: c.endpoint.clone(),
        account_id: c.account_id.clone(),
        access_key_id: c.access_key_id.clone(),
        secret_access_key: c.secret_access_key.clone(),
        root_token: c.root_token.clone(),
        unseal_key: c.unseal_key.clone(),
    }
}

/// The business clock jumps forty days at once (past a daily rotation's windows and a
/// seven-day recovery window), then passes run again at that time: the rotation runs once
/// (one AWSCURRENT move, two versions) and the deleted secret is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_business_clock_jump_runs_due_rotations_and_deletions_once() {
    let (_p, c) = start_dev(&["--dev-allow-reset"]);
    let state = Arc::new(FnState::default());
    let url = serve_function(state.clone()).await;
    let arn = register(&c, &state, &url, "jump-rotator").await;
    let sm = dev_client(&c);
    sm.create_secret()
        .name("jump/rotated")
        .secret_string("before")
        .send()
        .await
        .unwrap();
    sm.rotate_secret()
        .secret_id("jump/rotated")
        .rotation_lambda_arn(&arn)
        .rotation_rules(
            sm::types::RotationRulesType::builder()
                .automatically_after_days(1)
                .build(),
        )
        .rotate_immediately(false)
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("jump/deleted")
        .secret_string("x")
        .send()
        .await
        .unwrap();
    sm.delete_secret()
        .secret_id("jump/deleted")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();

    crate::rotation::advance_clock(&c, 40 * 86_400).await;
    wait_for("the rotation after the jump", Duration::from_secs(20), || async {
        status(&c, "jump/rotated").await.get("LastRotatedDate").is_some()
    })
    .await;
    for _ in 0..3 {
        crate::rotation::advance_clock(&c, 0).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(state.moves.lock().len(), 1, "{:?}", state.steps.lock());
    let d = sm.describe_secret().secret_id("jump/rotated").send().await.unwrap();
    assert_eq!(d.version_ids_to_stages().unwrap().len(), 2);
    assert_ne!(current_value(&sm, "jump/rotated").await, "before");
    let e = sm.describe_secret().secret_id("jump/deleted").send().await.unwrap_err();
    assert_eq!(err_code(&e), "ResourceNotFoundException");
}
