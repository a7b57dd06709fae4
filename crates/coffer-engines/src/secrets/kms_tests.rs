//! KMS envelope encryption of version values: what is stored, what KMS is asked, and what the
//! key's state does to reads and writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use coffer_crypto::SecretBytes;
use coffer_storage::Storage;
use coffer_storage::memory::MemoryStorage;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::SecretsEngine;
use super::envelope::Stored;
use super::names;
use super::test_kms::{KeyState, TestKms};
use crate::contracts::SecretReader;
use crate::{AwsError, AwsErrorCode, RequestContext};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const TOKEN1: &str = "11111111-1111-4111-8111-111111111111";
const TOKEN2: &str = "22222222-2222-4222-8222-222222222222";
const TOKEN3: &str = "33333333-3333-4333-8333-333333333333";

struct K {
    engine: SecretsEngine,
    storage: Arc<MemoryStorage>,
    kms: Arc<TestKms>,
}

fn ctx_in(region: &str) -> RequestContext {
    RequestContext {
        account_id: ACCOUNT.into(),
        region: region.into(),
        principal_arn: format!("arn:aws:iam::{ACCOUNT}:root"),
        now: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
    }
}

impl K {
    fn new() -> Self {
        let storage = Arc::new(MemoryStorage::new());
        let kms = Arc::new(TestKms::new());
        let engine = SecretsEngine::new(storage.clone()).with_key_service(kms.clone());
        Self { engine, storage, kms }
    }

    async fn call_in(&self, region: &str, op: &str, body: Value) -> Result<Value, AwsError> {
        self.engine.handle(&ctx_in(region), op, body).await
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call_in(REGION, op, body).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    async fn err(&self, op: &str, body: Value) -> AwsError {
        match self.call_in(REGION, op, body).await {
            Ok(v) => panic!("{op} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }

    async fn get(&self, id: &str) -> Result<Value, AwsError> {
        self.call_in(REGION, "GetSecretValue", json!({"SecretId": id})).await
    }

    fn key(&self) -> String {
        self.kms.create_key(ACCOUNT, REGION)
    }

    /// Every (key, value) in storage.
    async fn dump(&self) -> Vec<(String, SecretBytes)> {
        let mut out = Vec::new();
        for k in self.storage.scan("", None, 100_000).await.unwrap() {
            let v = self.storage.get(&k).await.unwrap().unwrap();
            out.push((k, v));
        }
        out
    }

    async fn raw_value(&self, name: &str, vid: &str) -> SecretBytes {
        self.storage
            .get(&names::version_key(ACCOUNT, REGION, name, vid))
            .await
            .unwrap()
            .unwrap()
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn envelope_keys(b: &SecretBytes) -> Vec<String> {
    match Stored::decode(b).unwrap() {
        Stored::Envelope(e) => e.key_arns().map(str::to_string).collect(),
        Stored::Plain(_) => panic!("stored in the plain format"),
    }
}

fn assert_decryption_failure(e: &AwsError, kms_code: &str, kms_message: &str) {
    assert_eq!(e.code, AwsErrorCode::DecryptionFailure, "{e}");
    assert!(
        e.message
            .starts_with("Secrets Manager can't decrypt the secret value: "),
        "{e}"
    );
    assert!(e.message.contains(kms_message), "{e}");
    assert!(e.message.contains(&format!("Error Code: {kms_code};")), "{e}");
    assert!(e.message.contains("(Service: AWSKMS; Status Code: 400;"), "{e}");
}

#[tokio::test]
async fn values_are_not_stored_in_clear() {
    let k = K::new();
    let secret = "correct-horse-battery-staple-4711";
    k.ok("CreateSecret", json!({"Name": "s", "SecretString": secret})).await;
    k.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretBinary": "AAECAwRzZWNyZXQtYmluYXJ5LWJ5dGVz"}),
    )
    .await;
    k.ok(
        "CreateSecret",
        json!({"Name": "r", "SecretString": secret, "AddReplicaRegions": [{"Region": "eu-west-1"}]}),
    )
    .await;
    let mut versions = 0;
    for (key, value) in &k.dump().await {
        assert!(
            !contains(value.expose(), secret.as_bytes()),
            "{key} holds the value in clear"
        );
        assert!(
            !contains(value.expose(), b"secret-binary-bytes"),
            "{key} holds the value in clear"
        );
        if key.contains("/versions/") {
            versions += 1;
            assert!(matches!(Stored::decode(value), Ok(Stored::Envelope(_))), "{key}");
        }
    }
    // s: two versions; r: one, in its region and in the replica's.
    assert_eq!(versions, 4);
    assert_eq!(
        k.get("s").await.unwrap()["SecretBinary"],
        "AAECAwRzZWNyZXQtYmluYXJ5LWJ5dGVz"
    );
    assert_eq!(k.get("r").await.unwrap()["SecretString"], secret);
    let replica = k
        .call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "r"}))
        .await
        .unwrap();
    assert_eq!(replica["SecretString"], secret);
}

#[tokio::test]
async fn each_version_gets_its_own_data_key_bound_to_secret_and_version() {
    let k = K::new();
    let arn = k
        .ok(
            "CreateSecret",
            json!({"Name": "s", "SecretString": "v1", "ClientRequestToken": TOKEN1}),
        )
        .await["ARN"]
        .as_str()
        .unwrap()
        .to_string();
    k.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": TOKEN2}),
    )
    .await;
    let default_arn = k.kms.arn_of(ACCOUNT, REGION, "alias/aws/secretsmanager").unwrap();
    let gens: Vec<_> = k
        .kms
        .calls()
        .into_iter()
        .filter(|c| c.op == "GenerateDataKey")
        .collect();
    assert_eq!(gens.len(), 2);
    for (call, vid) in gens.iter().zip([TOKEN1, TOKEN2]) {
        assert_eq!(call.key_arn, default_arn);
        assert_eq!(call.context.len(), 2);
        assert_eq!(call.context["SecretARN"], arn);
        assert_eq!(call.context["SecretVersionId"], vid);
    }
    let (a, b) = (k.raw_value("s", TOKEN1).await, k.raw_value("s", TOKEN2).await);
    assert_ne!(a.expose(), b.expose());
    assert_eq!(envelope_keys(&a), vec![default_arn.clone()]);

    // Reads decrypt with the same context.
    assert_eq!(k.get("s").await.unwrap()["SecretString"], "v2");
    let dec = k.kms.calls().into_iter().rfind(|c| c.op == "Decrypt").unwrap();
    assert_eq!(dec.context["SecretVersionId"], TOKEN2);
    assert_eq!(dec.context["SecretARN"], arn);
}

#[tokio::test]
async fn a_value_moved_to_another_version_or_secret_does_not_decrypt() {
    let k = K::new();
    k.ok(
        "CreateSecret",
        json!({"Name": "a", "SecretString": "alpha", "ClientRequestToken": TOKEN1}),
    )
    .await;
    k.ok(
        "PutSecretValue",
        json!({"SecretId": "a", "SecretString": "alpha2", "ClientRequestToken": TOKEN2}),
    )
    .await;
    k.ok(
        "CreateSecret",
        json!({"Name": "b", "SecretString": "beta", "ClientRequestToken": TOKEN3}),
    )
    .await;
    let v1 = k.raw_value("a", TOKEN1).await;
    // Same secret, other version: a's AWSCURRENT (TOKEN2) now holds TOKEN1's envelope.
    k.storage
        .put(&names::version_key(ACCOUNT, REGION, "a", TOKEN2), v1.clone())
        .await
        .unwrap();
    let e = k.get("a").await.unwrap_err();
    assert_eq!(e.code, AwsErrorCode::DecryptionFailure, "{e}");
    assert!(e.message.contains("InvalidCiphertextException"), "{e}");
    // Other secret.
    k.storage
        .put(&names::version_key(ACCOUNT, REGION, "b", TOKEN3), v1)
        .await
        .unwrap();
    let e = k.get("b").await.unwrap_err();
    assert_eq!(e.code, AwsErrorCode::DecryptionFailure, "{e}");
    assert!(!e.message.contains("alpha"));
}

#[tokio::test]
async fn disabling_the_key_blocks_reads_and_enabling_restores_them() {
    let k = K::new();
    let key = k.key();
    k.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "KmsKeyId": key}),
    )
    .await;
    assert_eq!(k.get("s").await.unwrap()["SecretString"], "v1");

    k.kms.set_state(&key, KeyState::Disabled);
    let e = k.get("s").await.unwrap_err();
    assert_decryption_failure(&e, "DisabledException", &format!("{key} is disabled."));
    assert!(!e.message.contains("v1"));
    // The secret itself is still there.
    k.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    // Writing needs the key too.
    let e = k
        .err("PutSecretValue", json!({"SecretId": "s", "SecretString": "v2"}))
        .await;
    assert_eq!(e.code, AwsErrorCode::EncryptionFailure, "{e}");
    assert!(
        e.message
            .starts_with("Secrets Manager can't encrypt the secret value: "),
        "{e}"
    );
    assert!(e.message.contains("is disabled."), "{e}");

    k.kms.set_state(&key, KeyState::Enabled);
    assert_eq!(k.get("s").await.unwrap()["SecretString"], "v1");
    k.ok("PutSecretValue", json!({"SecretId": "s", "SecretString": "v2"}))
        .await;
    assert_eq!(k.get("s").await.unwrap()["SecretString"], "v2");
}

#[tokio::test]
async fn pending_deletion_blocks_reads_until_cancelled_and_enabled() {
    let k = K::new();
    let key = k.key();
    k.kms.create_alias(ACCOUNT, REGION, "alias/app", &key);
    k.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "KmsKeyId": "alias/app"}),
    )
    .await;
    k.kms.set_state(&key, KeyState::PendingDeletion);
    let e = k.get("s").await.unwrap_err();
    assert_decryption_failure(&e, "KMSInvalidStateException", &format!("{key} is pending deletion."));
    // CancelKeyDeletion leaves the key disabled: still unreadable.
    k.kms.set_state(&key, KeyState::Disabled);
    assert_eq!(k.get("s").await.unwrap_err().code, AwsErrorCode::DecryptionFailure);
    k.kms.set_state(&key, KeyState::Enabled);
    assert_eq!(k.get("s").await.unwrap()["SecretString"], "v1");
}

#[tokio::test]
async fn batch_get_reports_key_failures_per_secret() {
    let k = K::new();
    let key = k.key();
    k.ok(
        "CreateSecret",
        json!({"Name": "locked", "SecretString": "x", "KmsKeyId": key}),
    )
    .await;
    k.ok("CreateSecret", json!({"Name": "open", "SecretString": "y"})).await;
    k.kms.set_state(&key, KeyState::Disabled);
    let out = k
        .ok("BatchGetSecretValue", json!({"SecretIdList": ["locked", "open"]}))
        .await;
    assert_eq!(out["SecretValues"].as_array().unwrap().len(), 1);
    assert_eq!(out["SecretValues"][0]["SecretString"], "y");
    assert_eq!(out["Errors"][0]["SecretId"], "locked");
    assert_eq!(out["Errors"][0]["ErrorCode"], "DecryptionFailure");
    assert!(out["Errors"][0]["Message"].as_str().unwrap().contains("is disabled."));
}

#[tokio::test]
async fn secret_reader_sees_the_decryption_failure() {
    let k = K::new();
    let key = k.key();
    k.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "KmsKeyId": key}),
    )
    .await;
    let r = k.engine.read_secret(&ctx_in(REGION), "s", None, None).await.unwrap();
    assert_eq!(r.version_stages, vec!["AWSCURRENT".to_string()]);
    k.kms.set_state(&key, KeyState::Disabled);
    let e = k
        .engine
        .read_secret(&ctx_in(REGION), "s", None, None)
        .await
        .err()
        .unwrap();
    assert_eq!(e.code, AwsErrorCode::DecryptionFailure);
}

#[tokio::test]
async fn kms_key_id_must_name_a_key() {
    let k = K::new();
    let missing = format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/0b2f1a5e-1111-4222-8333-444455556666");
    for key in [missing.as_str(), "alias/nope", "0b2f1a5e-1111-4222-8333-444455556666"] {
        let e = k
            .err(
                "CreateSecret",
                json!({"Name": "s", "SecretString": "v", "KmsKeyId": key}),
            )
            .await;
        assert_eq!(e.code, AwsErrorCode::InvalidParameterException, "{e}");
        assert!(
            e.message
                .starts_with("The operation failed because of an invalid KMS key: "),
            "{e}"
        );
        // Without a value too.
        let e = k.err("CreateSecret", json!({"Name": "s", "KmsKeyId": key})).await;
        assert_eq!(e.code, AwsErrorCode::InvalidParameterException, "{e}");
    }
    let e = k.err("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(e.code, AwsErrorCode::ResourceNotFoundException);

    k.ok("CreateSecret", json!({"Name": "s", "SecretString": "v"})).await;
    let e = k
        .err("UpdateSecret", json!({"SecretId": "s", "KmsKeyId": "alias/nope"}))
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidParameterException, "{e}");
    assert!(
        k.ok("DescribeSecret", json!({"SecretId": "s"}))
            .await
            .get("KmsKeyId")
            .is_none()
    );

    // A disabled key exists: creating a secret without a value succeeds, with one it fails.
    let key = k.key();
    k.kms.set_state(&key, KeyState::Disabled);
    k.ok("CreateSecret", json!({"Name": "empty", "KmsKeyId": key})).await;
    let e = k
        .err(
            "CreateSecret",
            json!({"Name": "full", "SecretString": "v", "KmsKeyId": key}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::EncryptionFailure, "{e}");
    assert_eq!(
        k.err("DescribeSecret", json!({"SecretId": "full"})).await.code,
        AwsErrorCode::ResourceNotFoundException
    );
}

#[tokio::test]
async fn custom_key_in_describe_and_version_listing() {
    let k = K::new();
    let key = k.key();
    k.kms.create_alias(ACCOUNT, REGION, "alias/app", &key);
    k.ok(
        "CreateSecret",
        json!({"Name": "c", "SecretString": "v", "KmsKeyId": "alias/app"}),
    )
    .await;
    k.ok("CreateSecret", json!({"Name": "d", "SecretString": "v"})).await;
    k.ok(
        "CreateSecret",
        json!({"Name": "e", "SecretString": "v", "KmsKeyId": "alias/aws/secretsmanager"}),
    )
    .await;
    let c = k.ok("DescribeSecret", json!({"SecretId": "c"})).await;
    assert_eq!(c["KmsKeyId"], "alias/app");
    assert!(
        k.ok("DescribeSecret", json!({"SecretId": "d"}))
            .await
            .get("KmsKeyId")
            .is_none()
    );
    assert!(
        k.ok("DescribeSecret", json!({"SecretId": "e"}))
            .await
            .get("KmsKeyId")
            .is_none()
    );
    let list = k.ok("ListSecrets", json!({})).await;
    let entry = |n: &str| {
        list["SecretList"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["Name"] == n)
            .cloned()
            .unwrap()
    };
    assert_eq!(entry("c")["KmsKeyId"], "alias/app");
    assert!(entry("d").get("KmsKeyId").is_none());

    let kms_ids = |v: Value| v["Versions"][0]["KmsKeyIds"].clone();
    assert_eq!(
        kms_ids(k.ok("ListSecretVersionIds", json!({"SecretId": "d"})).await),
        json!(["DefaultEncryptionKey"])
    );
    assert_eq!(
        kms_ids(k.ok("ListSecretVersionIds", json!({"SecretId": "c"})).await),
        json!(["alias/app"])
    );
    assert_eq!(
        envelope_keys(&k.raw_value("c", &current_vid(&k, "c").await).await),
        vec![key]
    );
}

async fn current_vid(k: &K, name: &str) -> String {
    k.get(name).await.unwrap()["VersionId"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn changing_the_key_reencrypts_labelled_versions_and_keeps_the_old_key() {
    let k = K::new();
    let old = k.key();
    let new = k.key();
    k.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "KmsKeyId": old, "ClientRequestToken": TOKEN1}),
    )
    .await;
    k.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": TOKEN2}),
    )
    .await;
    k.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "v3", "ClientRequestToken": TOKEN3}),
    )
    .await;
    // TOKEN3 current, TOKEN2 previous, TOKEN1 deprecated.
    k.ok("UpdateSecret", json!({"SecretId": "s", "KmsKeyId": new})).await;
    assert_eq!(k.ok("DescribeSecret", json!({"SecretId": "s"})).await["KmsKeyId"], new);
    assert_eq!(
        envelope_keys(&k.raw_value("s", TOKEN3).await),
        vec![new.clone(), old.clone()]
    );
    assert_eq!(
        envelope_keys(&k.raw_value("s", TOKEN2).await),
        vec![new.clone(), old.clone()]
    );
    assert_eq!(envelope_keys(&k.raw_value("s", TOKEN1).await), vec![old.clone()]);
    let l = k
        .ok(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "IncludeDeprecated": true}),
        )
        .await;
    let ids_of = |vid: &str| {
        l["Versions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["VersionId"] == vid)
            .unwrap()["KmsKeyIds"]
            .clone()
    };
    assert_eq!(ids_of(TOKEN3), json!([new, old]));
    assert_eq!(ids_of(TOKEN1), json!([old]));

    // Either key opens the labelled versions.
    k.kms.set_state(&old, KeyState::Disabled);
    assert_eq!(k.get("s").await.unwrap()["SecretString"], "v3");
    let prev = k
        .ok(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionStage": "AWSPREVIOUS"}),
        )
        .await;
    assert_eq!(prev["SecretString"], "v2");
    let e = k
        .err("GetSecretValue", json!({"SecretId": "s", "VersionId": TOKEN1}))
        .await;
    assert_eq!(e.code, AwsErrorCode::DecryptionFailure);
    k.kms.set_state(&old, KeyState::Enabled);
    k.kms.set_state(&new, KeyState::Disabled);
    assert_eq!(k.get("s").await.unwrap()["SecretString"], "v3");

    // New versions use only the new key.
    k.kms.set_state(&new, KeyState::Enabled);
    let v4 = k
        .ok("PutSecretValue", json!({"SecretId": "s", "SecretString": "v4"}))
        .await;
    let v4 = v4["VersionId"].as_str().unwrap();
    assert_eq!(envelope_keys(&k.raw_value("s", v4).await), vec![new.clone()]);

    // Back to the default key with an empty KmsKeyId.
    k.ok("UpdateSecret", json!({"SecretId": "s", "KmsKeyId": ""})).await;
    assert!(
        k.ok("DescribeSecret", json!({"SecretId": "s"}))
            .await
            .get("KmsKeyId")
            .is_none()
    );
    let default_arn = k.kms.arn_of(ACCOUNT, REGION, "alias/aws/secretsmanager").unwrap();
    assert_eq!(envelope_keys(&k.raw_value("s", v4).await), vec![default_arn, new]);
}

#[tokio::test]
async fn a_version_the_old_key_cannot_open_is_left_as_it_was() {
    let k = K::new();
    let old = k.key();
    let new = k.key();
    k.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "KmsKeyId": old, "ClientRequestToken": TOKEN1}),
    )
    .await;
    k.kms.set_state(&old, KeyState::Disabled);
    k.ok("UpdateSecret", json!({"SecretId": "s", "KmsKeyId": new})).await;
    assert_eq!(envelope_keys(&k.raw_value("s", TOKEN1).await), vec![old.clone()]);
    assert_eq!(k.get("s").await.unwrap_err().code, AwsErrorCode::DecryptionFailure);
    // UpdateSecret with a value and a new key: the new version is under the new key.
    let out = k
        .ok(
            "UpdateSecret",
            json!({"SecretId": "s", "KmsKeyId": new, "SecretString": "v2"}),
        )
        .await;
    let vid = out["VersionId"].as_str().unwrap();
    assert_eq!(envelope_keys(&k.raw_value("s", vid).await), vec![new]);
    assert_eq!(k.get("s").await.unwrap()["SecretString"], "v2");
}

#[tokio::test]
async fn replicas_are_encrypted_under_the_replica_key() {
    let k = K::new();
    let replica_key = k.kms.create_key(ACCOUNT, "eu-west-1");
    let out = k
        .ok(
            "CreateSecret",
            json!({"Name": "s", "SecretString": "v1",
                   "AddReplicaRegions": [{"Region": "eu-west-1", "KmsKeyId": replica_key},
                                         {"Region": "ap-south-1"}]}),
        )
        .await;
    let arn = out["ARN"].as_str().unwrap().to_string();
    let vid = k.get("s").await.unwrap()["VersionId"].as_str().unwrap().to_string();
    let in_region = |region: &str| names::version_key(ACCOUNT, region, "s", &vid);
    let eu = k.storage.get(&in_region("eu-west-1")).await.unwrap().unwrap();
    let ap = k.storage.get(&in_region("ap-south-1")).await.unwrap().unwrap();
    assert_eq!(envelope_keys(&eu), vec![replica_key.clone()]);
    let ap_default = k.kms.arn_of(ACCOUNT, "ap-south-1", "alias/aws/secretsmanager").unwrap();
    assert_eq!(envelope_keys(&ap), vec![ap_default]);
    let generated = k
        .kms
        .calls()
        .into_iter()
        .find(|c| c.op == "GenerateDataKey" && c.key_arn == replica_key)
        .unwrap();
    assert_eq!(generated.context["SecretARN"], arn.replace(REGION, "eu-west-1"));

    let l = k
        .call_in("eu-west-1", "ListSecretVersionIds", json!({"SecretId": "s"}))
        .await
        .unwrap();
    assert_eq!(l["Versions"][0]["KmsKeyIds"], json!([replica_key]));

    // The replica's key governs the replica only.
    k.kms.set_state(&replica_key, KeyState::Disabled);
    let e = k
        .call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "s"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, AwsErrorCode::DecryptionFailure);
    assert_eq!(k.get("s").await.unwrap()["SecretString"], "v1");
    let ap_read = k
        .call_in("ap-south-1", "GetSecretValue", json!({"SecretId": "s"}))
        .await
        .unwrap();
    assert_eq!(ap_read["SecretString"], "v1");

    // A primary write that cannot be encrypted for a replica marks that replica Failed and
    // still succeeds.
    k.ok("PutSecretValue", json!({"SecretId": "s", "SecretString": "v2"}))
        .await;
    let d = k.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    let status = d["ReplicationStatus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["Region"] == "eu-west-1")
        .cloned()
        .unwrap();
    assert_eq!(status["Status"], "Failed");
    let ap_read = k
        .call_in("ap-south-1", "GetSecretValue", json!({"SecretId": "s"}))
        .await
        .unwrap();
    assert_eq!(ap_read["SecretString"], "v2");
}

#[tokio::test]
async fn replicate_secret_to_regions_reencrypts_existing_versions() {
    let k = K::new();
    k.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "ClientRequestToken": TOKEN1}),
    )
    .await;
    k.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": TOKEN2}),
    )
    .await;
    let replica_key = k.kms.create_key(ACCOUNT, "eu-west-1");
    k.ok(
        "ReplicateSecretToRegions",
        json!({"SecretId": "s", "AddReplicaRegions": [{"Region": "eu-west-1", "KmsKeyId": replica_key}]}),
    )
    .await;
    for vid in [TOKEN1, TOKEN2] {
        let b = k
            .storage
            .get(&names::version_key(ACCOUNT, "eu-west-1", "s", vid))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(envelope_keys(&b), vec![replica_key.clone()]);
    }
    let prev = k
        .call_in(
            "eu-west-1",
            "GetSecretValue",
            json!({"SecretId": "s", "VersionStage": "AWSPREVIOUS"}),
        )
        .await
        .unwrap();
    assert_eq!(prev["SecretString"], "v1");
}

#[tokio::test]
async fn plain_records_written_before_encryption_still_read() {
    let storage = Arc::new(MemoryStorage::new());
    let plain = SecretsEngine::new(storage.clone());
    let ctx = ctx_in(REGION);
    plain
        .handle(
            &ctx,
            "CreateSecret",
            json!({"Name": "old", "SecretString": "legacy", "ClientRequestToken": TOKEN1}),
        )
        .await
        .unwrap();
    let raw = storage
        .get(&names::version_key(ACCOUNT, REGION, "old", TOKEN1))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(Stored::decode(&raw).unwrap(), Stored::Plain(_)));

    let kms = Arc::new(TestKms::new());
    let engine = SecretsEngine::new(storage.clone()).with_key_service(kms.clone());
    let got = engine
        .handle(&ctx, "GetSecretValue", json!({"SecretId": "old"}))
        .await
        .unwrap();
    assert_eq!(got["SecretString"], "legacy");
    // The idempotent retry compares against the old plain value.
    engine
        .handle(
            &ctx,
            "PutSecretValue",
            json!({"SecretId": "old", "SecretString": "legacy", "ClientRequestToken": TOKEN1}),
        )
        .await
        .unwrap();
    // New versions of the old secret are encrypted; the old one still reads.
    engine
        .handle(
            &ctx,
            "PutSecretValue",
            json!({"SecretId": "old", "SecretString": "new", "ClientRequestToken": TOKEN2}),
        )
        .await
        .unwrap();
    let raw = storage
        .get(&names::version_key(ACCOUNT, REGION, "old", TOKEN2))
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(Stored::decode(&raw).unwrap(), Stored::Envelope(_)));
    let prev = engine
        .handle(
            &ctx,
            "GetSecretValue",
            json!({"SecretId": "old", "VersionStage": "AWSPREVIOUS"}),
        )
        .await
        .unwrap();
    assert_eq!(prev["SecretString"], "legacy");

    // An engine without a key service cannot read envelopes, and says so without the value.
    let e = plain
        .handle(&ctx, "GetSecretValue", json!({"SecretId": "old"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, AwsErrorCode::InternalServiceError);
    assert!(!e.message.contains("new"));
}

#[tokio::test]
async fn idempotent_retry_needs_the_key_and_compares_plaintext() {
    let k = K::new();
    let key = k.key();
    k.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "KmsKeyId": key, "ClientRequestToken": TOKEN1}),
    )
    .await;
    k.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "v1", "ClientRequestToken": TOKEN1}),
    )
    .await;
    let e = k
        .err(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "other", "ClientRequestToken": TOKEN1}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ResourceExistsException);
    let gens = k.kms.calls().iter().filter(|c| c.op == "GenerateDataKey").count();
    assert_eq!(gens, 1);
}
