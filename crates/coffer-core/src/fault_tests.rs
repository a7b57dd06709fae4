//! Storage errors injected at each physical step of an unseal and of a write, through the whole
//! core (barrier, engines, audit) over a [`FaultInjector`]: for n = 1, 2, ... the n-th
//! storage operation (read or write) fails, until the operation needs fewer than n. After
//! each injected failure the caller got an error or a complete result (never a panic), nothing
//! is half-applied, and a retry succeeds.

use std::sync::Arc;

use coffer_storage::fault::FaultInjector;
use coffer_storage::memory::MemoryBackend;
use serde_json::{Value, json};

use crate::{AuditDeviceSpec, AwsService, Client, Core, CoreOptions, KeyResolution, Principal, RequestEnv};

struct Setup {
    core: Arc<Core>,
    faults: Arc<FaultInjector>,
    share: String,
    root_token: String,
    akid: String,
    _dir: tempfile::TempDir,
}

/// An initialized, unsealed core over a fault injector, with a file audit device.
async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let faults = Arc::new(FaultInjector::new(Arc::new(MemoryBackend::new())));
    let options = CoreOptions {
        audit: vec![AuditDeviceSpec::File {
            name: "file".into(),
            path: dir.path().join("audit.log"),
            max_bytes: 0,
        }],
        ..CoreOptions::default()
    };
    let core = Core::new(faults.clone(), options);
    let out = core.init(1, 1, &Client::default()).await.unwrap();
    let share = out.unseal_keys[0].expose().to_string();
    core.unseal(&share, &Client::default()).await.unwrap();
    Setup {
        core,
        faults,
        share,
        root_token: out.root.root_token.expose().to_string(),
        akid: out.root.access_key_id,
        _dir: dir,
    }
}

impl Setup {
    async fn principal(&self) -> Principal {
        match self.core.resolve_access_key(&self.akid, None).await.unwrap() {
            KeyResolution::Valid(k) => k.principal.clone(),
            other => panic!("{other:?}"),
        }
    }

    async fn sm(&self, op: &str, input: Value) -> Result<Value, crate::CoreError> {
        let p = self.principal().await;
        self.sm_as(&p, op, input).await
    }

    async fn sm_as(&self, p: &Principal, op: &str, input: Value) -> Result<Value, crate::CoreError> {
        self.core
            .handle_aws(
                p,
                "us-east-1",
                AwsService::SecretsManager,
                op,
                input,
                &RequestEnv::default(),
            )
            .await
    }

    async fn kms(&self, op: &str, input: Value) -> Value {
        let p = self.principal().await;
        self.core
            .handle_aws(&p, "us-east-1", AwsService::Kms, op, input, &RequestEnv::default())
            .await
            .unwrap()
    }

    /// Runs `attempt` with the n-th storage operation failing; returns its result and whether
    /// the fault was met (false: the attempt needed fewer than n operations).
    async fn with_fault_at<T, F: std::future::Future<Output = T>>(&self, n: u64, attempt: F) -> (T, bool) {
        let before = self.faults.counts().injected;
        self.faults.fail_op_in(n);
        let out = attempt.await;
        self.faults.clear();
        (out, self.faults.counts().injected > before)
    }

    async fn is_usable(&self) -> bool {
        !self.core.seal_status().await.unwrap().sealed
            && self.core.token(Some(&self.root_token)).await.is_ok_and(|t| t.is_some())
    }
}

/// A failure at any step of an unseal (seal config, keyring, legacy key migration, audit
/// device keys and chain heads) leaves the server either unsealed and working, or sealed and
/// unsealable: never unsealed with its audit devices closed.
#[tokio::test]
async fn unseal_fails_whole_at_each_storage_step() {
    let s = setup().await;
    let mut failed = 0;
    for n in 1..200 {
        s.core.seal(Some(&s.root_token), &Client::default()).await.unwrap();
        let (r, injected) = s.with_fault_at(n, s.core.unseal(&s.share, &Client::default())).await;
        if !injected {
            r.unwrap();
            assert!(s.is_usable().await);
            assert!(failed > 0, "no unseal step was made to fail");
            eprintln!("unseal: {} storage steps, {failed} of them failed the unseal", n - 1);
            return;
        }
        match r {
            Ok(status) => {
                // The failed step was one an unseal may skip (an operator event): it is whole.
                assert!(!status.sealed, "step {n}");
                assert!(s.is_usable().await, "step {n}: unsealed but not usable");
            }
            Err(e) => {
                failed += 1;
                let status = s.core.seal_status().await.unwrap();
                assert!(
                    status.sealed,
                    "step {n}: the unseal failed ({e}) but left the barrier open"
                );
                let status = s.core.unseal(&s.share, &Client::default()).await.unwrap();
                assert!(!status.sealed, "step {n}: a retry does not unseal");
            }
        }
        assert!(s.is_usable().await, "step {n}");
        // Requests are audited again (the devices are open), so they are served.
        let event = coffer_audit::AuditEvent::new(
            "secretsmanager.amazonaws.com",
            "ListSecrets",
            Default::default(),
            s.core.clock().now(),
            "x",
        );
        s.core
            .audit_log(&event)
            .await
            .unwrap_or_else(|e| panic!("step {n}: {e}"));
    }
    panic!("the unseal never completed without meeting the fault");
}

/// The first CreateSecret (which also creates the AWS managed key
/// `alias/aws/secretsmanager`) with its n-th storage step failing, on a fresh server for each
/// n: an error leaves no secret and no index entry; the retry succeeds and leaves exactly one
/// managed key (no orphan from the failed attempt) and the value.
#[tokio::test]
async fn create_secret_fails_whole_at_each_storage_step() {
    let input = json!({"Name": "fault/s", "SecretString": "v"});
    let mut failed = 0;
    for n in 1..200 {
        let s = setup().await;
        let p = s.principal().await;
        let (r, injected) = s.with_fault_at(n, s.sm_as(&p, "CreateSecret", input.clone())).await;
        if !injected {
            r.unwrap();
            assert!(failed > 0, "CreateSecret was never made to fail");
            eprintln!(
                "CreateSecret: {} storage steps, {failed} of them failed the call",
                n - 1
            );
            return;
        }
        // An `Ok` despite the fault: a step whose failure is tolerated (a cache fill), and the
        // secret must be whole, as checked below.
        if r.is_err() {
            failed += 1;
            let e = s
                .sm("DescribeSecret", json!({"SecretId": "fault/s"}))
                .await
                .unwrap_err();
            assert!(
                matches!(&e, crate::CoreError::Aws(a) if a.code == crate::AwsErrorCode::ResourceNotFoundException),
                "step {n}: {e}"
            );
            let list = s.sm("ListSecrets", json!({})).await.unwrap();
            assert_eq!(
                list["SecretList"],
                json!([]),
                "step {n}: an index entry without its secret"
            );
            s.sm("CreateSecret", input.clone())
                .await
                .unwrap_or_else(|e| panic!("step {n}: the retry failed: {e}"));
        }
        let v = s.sm("GetSecretValue", json!({"SecretId": "fault/s"})).await.unwrap();
        assert_eq!(v["SecretString"], "v", "step {n}");
        let list = s.sm("ListSecrets", json!({})).await.unwrap();
        assert_eq!(list["SecretList"].as_array().unwrap().len(), 1, "step {n}");
        let keys = s.kms("ListKeys", json!({})).await;
        assert_eq!(keys["Keys"].as_array().unwrap().len(), 1, "step {n}: {keys}");
        let alias = s.kms("DescribeKey", json!({"KeyId": "alias/aws/secretsmanager"})).await;
        assert_eq!(alias["KeyMetadata"]["KeyId"], keys["Keys"][0]["KeyId"], "step {n}");
    }
    panic!("CreateSecret never completed without meeting the fault");
}
