//! Engine-level tests over `MemoryStorage`, driving `SecretsEngine::handle` with JSON as the
//! AWS front end does, and a controllable clock.
//!
//! Every test runs with a key service (the test KMS: values envelope-encrypted, as in
//! production); [`plain_mode`] runs each again without one (values in the plain format).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use async_trait::async_trait;
use coffer_storage::Storage;
use coffer_storage::fault::FailingStorage;
use coffer_storage::memory::MemoryStorage;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::*;
use crate::secrets::test_kms;
use crate::{AwsError, AwsErrorCode};

const TOKEN1: &str = "11111111-1111-4111-8111-111111111111";
const TOKEN2: &str = "22222222-2222-4222-8222-222222222222";
const TOKEN3: &str = "33333333-3333-4333-8333-333333333333";

thread_local! {
    /// Set by [`plain_mode`]: harnesses built on this thread get no key service.
    static PLAIN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// A test harness: one engine, a clock, a region.
struct T {
    engine: SecretsEngine,
    now: std::sync::Mutex<OffsetDateTime>,
}

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap() + Duration::milliseconds(123)
}

impl T {
    fn new() -> Self {
        Self::with_storage(Arc::new(MemoryStorage::new()))
    }

    fn with_storage(storage: Arc<dyn Storage>) -> Self {
        let mut engine = SecretsEngine::new(storage);
        if !PLAIN.with(std::cell::Cell::get) {
            let kms = test_kms::TestKms::with_auto_aliases(&["alias/mine", "alias/k"]);
            engine = engine.with_key_service(Arc::new(kms));
        }
        Self {
            engine,
            now: std::sync::Mutex::new(start()),
        }
    }

    fn ctx_in(&self, region: &str) -> RequestContext {
        RequestContext {
            account_id: "123456789012".into(),
            region: region.into(),
            principal_arn: "arn:aws:iam::123456789012:root".into(),
            now: *self.now.lock().unwrap(),
        }
    }

    fn ctx(&self) -> RequestContext {
        self.ctx_in("us-east-1")
    }

    fn advance(&self, d: Duration) {
        *self.now.lock().unwrap() += d;
    }

    async fn call_in(&self, region: &str, op: &str, body: Value) -> Result<Value, AwsError> {
        self.engine.handle(&self.ctx_in(region), op, body).await
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, AwsError> {
        self.call_in("us-east-1", op, body).await
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call(op, body).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    async fn err(&self, op: &str, body: Value) -> AwsError {
        match self.call(op, body).await {
            Ok(v) => panic!("{op} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }

    async fn current(&self, id: &str) -> String {
        self.ok("GetSecretValue", json!({"SecretId": id})).await["SecretString"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn stages(&self, id: &str) -> serde_json::Map<String, Value> {
        self.ok("DescribeSecret", json!({"SecretId": id})).await["VersionIdsToStages"]
            .as_object()
            .cloned()
            .unwrap_or_default()
    }
}

fn sorted(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    s.sort();
    s
}

// ---------------------------------------------------------------------------------------
// Create / Get / Describe

#[tokio::test]
async fn create_get_describe() {
    let t = T::new();
    let out = t
        .ok("CreateSecret", json!({"Name": "demo/db", "SecretString": "{\"u\":\"a\"}", "ClientRequestToken": TOKEN1, "Description": "d"}))
        .await;
    let arn = out["ARN"].as_str().unwrap().to_string();
    assert!(arn.starts_with("arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/db-"));
    assert_eq!(
        arn.len(),
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:demo/db-".len() + 6
    );
    assert_eq!(out["Name"], "demo/db");
    assert_eq!(out["VersionId"], TOKEN1);
    assert!(out.get("ReplicationStatus").is_none());

    let d = t.ok("DescribeSecret", json!({"SecretId": "demo/db"})).await;
    assert_eq!(d["ARN"], arn.as_str());
    assert_eq!(d["Description"], "d");
    assert!(d.get("RotationEnabled").is_none());
    assert!(d.get("KmsKeyId").is_none());
    assert!(d.get("LastAccessedDate").is_none());
    assert!(d.get("Tags").is_none());
    assert!(d.get("DeletedDate").is_none());
    assert_eq!(d["CreatedDate"].as_f64().unwrap(), 1_700_000_000.123);
    assert_eq!(d["VersionIdsToStages"], json!({TOKEN1: ["AWSCURRENT"]}));

    let g = t.ok("GetSecretValue", json!({"SecretId": "demo/db"})).await;
    assert_eq!(g["SecretString"], "{\"u\":\"a\"}");
    assert_eq!(g["VersionId"], TOKEN1);
    assert_eq!(g["VersionStages"], json!(["AWSCURRENT"]));
    assert_eq!(g["ARN"], arn.as_str());
    assert!(g.get("SecretBinary").is_none());

    // LastAccessedDate is set, truncated to the day.
    let d = t.ok("DescribeSecret", json!({"SecretId": arn})).await;
    assert_eq!(
        d["LastAccessedDate"].as_f64().unwrap(),
        (1_700_000_000 - 1_700_000_000 % 86_400) as f64
    );
}

#[tokio::test]
async fn binary_secrets_and_no_value_secrets() {
    let t = T::new();
    t.ok("CreateSecret", json!({"Name": "bin", "SecretBinary": "AAE="}))
        .await;
    let g = t.ok("GetSecretValue", json!({"SecretId": "bin"})).await;
    assert_eq!(g["SecretBinary"], "AAE=");
    assert!(g.get("SecretString").is_none());
    assert_eq!(g["VersionId"].as_str().unwrap().len(), 36);

    let out = t.ok("CreateSecret", json!({"Name": "empty"})).await;
    assert!(out.get("VersionId").is_none());
    let e = t.err("GetSecretValue", json!({"SecretId": "empty"})).await;
    assert_eq!(e.code, AwsErrorCode::ResourceNotFoundException);
    assert_eq!(
        e.message,
        "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT"
    );
    assert!(
        t.ok("DescribeSecret", json!({"SecretId": "empty"}))
            .await
            .get("VersionIdsToStages")
            .is_none()
    );
    // The first put gets AWSCURRENT.
    t.ok(
        "PutSecretValue",
        json!({"SecretId": "empty", "SecretString": "x", "VersionStages": ["mine"]}),
    )
    .await;
    assert_eq!(t.current("empty").await, "x");
}

#[tokio::test]
async fn create_errors() {
    let t = T::new();
    t.ok("CreateSecret", json!({"Name": "a", "SecretString": "x"})).await;
    let e = t.err("CreateSecret", json!({"Name": "a", "SecretString": "y"})).await;
    assert_eq!(e.code, AwsErrorCode::ResourceExistsException);
    assert_eq!(e.message, "The operation failed because the secret a already exists.");

    for bad in ["Inv Name", " Inv*Name? "] {
        let e = t.err("CreateSecret", json!({"Name": bad, "SecretString": "x"})).await;
        assert_eq!(e.code, AwsErrorCode::ValidationException);
        assert_eq!(
            e.message,
            "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!"
        );
        let e = t.err("DescribeSecret", json!({"SecretId": bad})).await;
        assert_eq!(e.code, AwsErrorCode::ValidationException);
    }
    let e = t
        .err(
            "CreateSecret",
            json!({"Name": "b", "SecretString": "x", "ClientRequestToken": "short"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidParameterException);
    let e = t
        .err(
            "CreateSecret",
            json!({"Name": "b", "SecretString": "x", "SecretBinary": "AAE="}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidParameterException);
    let big = "s".repeat(65_537);
    let e = t.err("CreateSecret", json!({"Name": "b", "SecretString": big})).await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
    assert_eq!(
        e.message,
        "1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536"
    );
    assert!(
        t.call("CreateSecret", json!({"Name": "b", "SecretString": "s".repeat(65_536)}))
            .await
            .is_ok()
    );
    let e = t.err("CreateSecret", json!({"SecretString": "x"})).await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
    assert_eq!(
        e.message,
        "1 validation error detected: Value null at 'name' failed to satisfy constraint: Member must not be null"
    );
    let e = t.err("GetSecretValue", json!({})).await;
    assert_eq!(
        e.message,
        "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null"
    );
    let e = t.err("CreateSecret", json!({"Name": {"x": 1}})).await;
    assert_eq!(e.code, AwsErrorCode::SerializationException);
    let e = t
        .err("CreateSecret", json!({"Name": "c", "SecretString": 987654321}))
        .await;
    assert_eq!(e.code, AwsErrorCode::SerializationException);
    assert!(!e.message.contains("987654321"));
    let e = t
        .err("CreateSecret", json!({"Name": "c", "SecretBinary": "not base64!"}))
        .await;
    assert_eq!(e.code, AwsErrorCode::SerializationException);
    // Unknown members are ignored.
    t.ok(
        "CreateSecret",
        json!({"Name": "d", "SecretString": "x", "SomethingNew": [1, 2]}),
    )
    .await;
    let e = t.err("NoSuchOp", json!({})).await;
    assert_eq!(e.code, AwsErrorCode::UnknownOperationException);
    assert_eq!(e.code.status(), 400);
}

#[tokio::test]
async fn lookup_by_name_full_and_partial_arn() {
    let t = T::new();
    let arn = t
        .ok("CreateSecret", json!({"Name": "app/key", "SecretString": "v"}))
        .await["ARN"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(t.current(&arn).await, "v");
    let partial = &arn[..arn.len() - 7];
    assert_eq!(t.current(partial).await, "v");
    let wrong = format!("{partial}-ZZZZZZ");
    assert_eq!(
        t.err("GetSecretValue", json!({"SecretId": wrong})).await.code,
        AwsErrorCode::ResourceNotFoundException
    );
    let other_region = arn.replace("us-east-1", "eu-west-1");
    assert_eq!(
        t.err("GetSecretValue", json!({"SecretId": other_region})).await.code,
        AwsErrorCode::ResourceNotFoundException
    );
    let e = t.err("GetSecretValue", json!({"SecretId": "missing"})).await;
    assert_eq!(e.code, AwsErrorCode::ResourceNotFoundException);
    assert_eq!(e.message, "Secrets Manager can't find the specified secret.");
    // A name that itself ends in -xxxxxx still resolves by name.
    t.ok("CreateSecret", json!({"Name": "svc-abcdef", "SecretString": "w"}))
        .await;
    assert_eq!(t.current("svc-abcdef").await, "w");
}

/// What authorization reads (`authz_facts`, which skips the version table) is what
/// DescribeSecret and GetResourcePolicy report, by name, full and partial ARN, for a secret
/// with many versions, a customer key, tags and a resource policy; nothing for an unknown one.
#[tokio::test]
async fn authz_facts_match_describe_and_resource_policy() {
    let t = T::new();
    let arn = t
        .ok(
            "CreateSecret",
            json!({"Name": "app/facts", "SecretString": "v0", "KmsKeyId": "alias/mine",
                   "Tags": [{"Key": "team", "Value": "a"}, {"Key": "env", "Value": "prod"}]}),
        )
        .await["ARN"]
        .as_str()
        .unwrap()
        .to_string();
    for i in 1..30 {
        t.ok(
            "PutSecretValue",
            json!({"SecretId": "app/facts", "SecretString": format!("v{i}")}),
        )
        .await;
    }
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    t.ok(
        "PutResourcePolicy",
        json!({"SecretId": "app/facts", "ResourcePolicy": policy}),
    )
    .await;
    let described = t.ok("DescribeSecret", json!({"SecretId": "app/facts"})).await;
    let partial = &arn[..arn.len() - 7];
    for id in ["app/facts", arn.as_str(), partial] {
        let facts = t.engine.authz_facts(&t.ctx(), id).await.unwrap();
        assert_eq!(facts.arn, arn);
        assert_eq!(facts.kms_key_id.as_deref(), described["KmsKeyId"].as_str());
        assert_eq!(facts.kms_key_id.as_deref(), Some("alias/mine"));
        assert_eq!(
            facts.tags,
            vec![
                ("team".to_string(), "a".to_string()),
                ("env".to_string(), "prod".to_string())
            ]
        );
        assert_eq!(facts.policy.as_deref(), Some(policy));
    }
    assert!(t.engine.authz_facts(&t.ctx(), "app/missing").await.is_none());
    assert!(
        t.engine
            .authz_facts(&t.ctx(), &format!("{partial}-ZZZZZZ"))
            .await
            .is_none()
    );
    // The default key is reported as DescribeSecret reports it: not at all.
    t.ok("CreateSecret", json!({"Name": "app/plain", "SecretString": "p"}))
        .await;
    let plain = t.engine.authz_facts(&t.ctx(), "app/plain").await.unwrap();
    assert_eq!(plain.kms_key_id, None);
    assert!(plain.tags.is_empty() && plain.policy.is_none());
}

// ---------------------------------------------------------------------------------------
// Versions, labels, idempotency

#[tokio::test]
async fn idempotency_matrix() {
    let t = T::new();
    t.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "ClientRequestToken": TOKEN1}),
    )
    .await;
    // CreateSecret retried with the same token and value: success, same version.
    let again = t
        .ok(
            "CreateSecret",
            json!({"Name": "s", "SecretString": "v1", "ClientRequestToken": TOKEN1}),
        )
        .await;
    assert_eq!(again["VersionId"], TOKEN1);
    // ... with another value: already exists.
    let e = t
        .err(
            "CreateSecret",
            json!({"Name": "s", "SecretString": "v2", "ClientRequestToken": TOKEN1}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ResourceExistsException);

    let p = t
        .ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": TOKEN2}),
        )
        .await;
    assert_eq!(p["VersionId"], TOKEN2);
    assert_eq!(p["VersionStages"], json!(["AWSCURRENT"]));
    // Same token, same value: no-op.
    let p = t
        .ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": TOKEN2}),
        )
        .await;
    assert_eq!(p["VersionId"], TOKEN2);
    assert_eq!(t.stages("s").await.len(), 2);
    // Same token, different value.
    let e = t
        .err(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "v3", "ClientRequestToken": TOKEN2}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ResourceExistsException);
    assert!(e.message.contains(TOKEN2));
    assert!(!e.message.contains("v3"));
    // Same token, binary instead of string: different data.
    let e = t
        .err(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretBinary": "djI=", "ClientRequestToken": TOKEN2}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ResourceExistsException);
    // UpdateSecret follows the same matrix.
    let u = t
        .ok(
            "UpdateSecret",
            json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": TOKEN2}),
        )
        .await;
    assert_eq!(u["VersionId"], TOKEN2);
    let e = t
        .err(
            "UpdateSecret",
            json!({"SecretId": "s", "SecretString": "zz", "ClientRequestToken": TOKEN1}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ResourceExistsException);
    assert_eq!(t.current("s").await, "v2");
    // PutSecretValue needs a value.
    let e = t.err("PutSecretValue", json!({"SecretId": "s"})).await;
    assert_eq!(e.code, AwsErrorCode::InvalidRequestException);
}

#[tokio::test]
async fn staging_labels_move() {
    let t = T::new();
    t.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "ClientRequestToken": TOKEN1}),
    )
    .await;
    let e = t
        .err(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionStage": "AWSPREVIOUS"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ResourceNotFoundException);
    assert_eq!(
        e.message,
        "Secrets Manager can't find the specified secret value for staging label: AWSPREVIOUS"
    );

    t.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": TOKEN2}),
    )
    .await;
    let st = t.stages("s").await;
    assert_eq!(st[TOKEN1], json!(["AWSPREVIOUS"]));
    assert_eq!(st[TOKEN2], json!(["AWSCURRENT"]));
    assert_eq!(
        t.ok(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionStage": "AWSPREVIOUS"})
        )
        .await["SecretString"],
        "v1"
    );
    assert_eq!(
        t.ok("GetSecretValue", json!({"SecretId": "s", "VersionId": TOKEN1}))
            .await["SecretString"],
        "v1"
    );
    let e = t
        .err(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionId": TOKEN1, "VersionStage": "AWSCURRENT"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidRequestException);
    assert_eq!(
        e.message,
        "You provided a VersionStage that is not associated to the provided VersionId."
    );
    let e = t
        .err("GetSecretValue", json!({"SecretId": "s", "VersionId": TOKEN3}))
        .await;
    assert_eq!(e.code, AwsErrorCode::ResourceNotFoundException);

    // A pending put does not move AWSCURRENT.
    t.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "v3", "ClientRequestToken": TOKEN3, "VersionStages": ["AWSPENDING"]}),
    )
    .await;
    assert_eq!(t.current("s").await, "v2");
    // Custom label moves between versions.
    t.ok(
        "UpdateSecretVersionStage",
        json!({"SecretId": "s", "VersionStage": "blue", "MoveToVersionId": TOKEN1}),
    )
    .await;
    let e = t
        .err(
            "UpdateSecretVersionStage",
            json!({"SecretId": "s", "VersionStage": "blue", "MoveToVersionId": TOKEN2}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidParameterException);
    t.ok(
        "UpdateSecretVersionStage",
        json!({"SecretId": "s", "VersionStage": "blue", "MoveToVersionId": TOKEN2, "RemoveFromVersionId": TOKEN1}),
    )
    .await;
    let st = t.stages("s").await;
    assert_eq!(sorted(&st[TOKEN2]), vec!["AWSCURRENT", "blue"]);

    // Finish a "rotation": move AWSCURRENT to the pending version.
    let e = t
        .err(
            "UpdateSecretVersionStage",
            json!({"SecretId": "s", "VersionStage": "AWSCURRENT", "MoveToVersionId": TOKEN3}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidParameterException);
    assert!(e.message.contains("RemoveFromVersionId"));
    t.ok(
        "UpdateSecretVersionStage",
        json!({"SecretId": "s", "VersionStage": "AWSCURRENT", "MoveToVersionId": TOKEN3, "RemoveFromVersionId": TOKEN2}),
    )
    .await;
    let st = t.stages("s").await;
    assert_eq!(sorted(&st[TOKEN3]), vec!["AWSCURRENT", "AWSPENDING"]);
    assert_eq!(sorted(&st[TOKEN2]), vec!["AWSPREVIOUS", "blue"]);
    assert!(!st.contains_key(TOKEN1), "v1 is deprecated now");
    assert_eq!(t.current("s").await, "v3");
    // Removing a custom label.
    t.ok(
        "UpdateSecretVersionStage",
        json!({"SecretId": "s", "VersionStage": "blue", "RemoveFromVersionId": TOKEN2}),
    )
    .await;
    assert_eq!(t.stages("s").await[TOKEN2], json!(["AWSPREVIOUS"]));
    let e = t
        .err(
            "UpdateSecretVersionStage",
            json!({"SecretId": "s", "VersionStage": "AWSCURRENT", "RemoveFromVersionId": TOKEN3}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidParameterException);
}

#[tokio::test]
async fn list_version_ids() {
    let t = T::new();
    t.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "ClientRequestToken": TOKEN1}),
    )
    .await;
    t.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": TOKEN2}),
    )
    .await;
    t.ok(
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "v3", "ClientRequestToken": TOKEN3}),
    )
    .await;
    let l = t.ok("ListSecretVersionIds", json!({"SecretId": "s"})).await;
    let ids: Vec<&str> = l["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VersionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![TOKEN2, TOKEN3]);
    assert_eq!(l["Versions"][0]["KmsKeyIds"], json!(["DefaultEncryptionKey"]));
    assert_eq!(l["Name"], "s");
    let l = t
        .ok(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "IncludeDeprecated": true, "MaxResults": 2}),
        )
        .await;
    assert_eq!(l["Versions"].as_array().unwrap().len(), 2);
    assert_eq!(l["Versions"][0]["VersionId"], TOKEN1);
    assert!(l["Versions"][0].get("VersionStages").is_none());
    let token = l["NextToken"].as_str().unwrap();
    let l = t
        .ok(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "IncludeDeprecated": true, "MaxResults": 2, "NextToken": token}),
        )
        .await;
    assert_eq!(l["Versions"].as_array().unwrap().len(), 1);
    assert!(l.get("NextToken").is_none());
    let e = t
        .err("ListSecretVersionIds", json!({"SecretId": "s", "MaxResults": 101}))
        .await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
}

#[tokio::test]
async fn version_retention() {
    let t = T::new();
    t.ok("CreateSecret", json!({"Name": "s", "SecretString": "v"})).await;
    for i in 0..120 {
        t.ok(
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": format!("v{i}")}),
        )
        .await;
    }
    let all = |v: Value| v["Versions"].as_array().unwrap().len();
    let l = t
        .ok(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "IncludeDeprecated": true}),
        )
        .await;
    assert_eq!(all(l), 100, "first page is full");
    // Everything was created in the last 24 hours: all 121 versions are still stored.
    let mut n = 0;
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"SecretId": "s", "IncludeDeprecated": true});
        if let Some(tk) = &token {
            body["NextToken"] = json!(tk);
        }
        let l = t.ok("ListSecretVersionIds", body).await;
        n += l["Versions"].as_array().unwrap().len();
        match l.get("NextToken") {
            Some(tk) => token = Some(tk.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(n, 121);
    // A day later, the next put prunes deprecated versions beyond the newest 100.
    t.advance(Duration::hours(25));
    t.ok("PutSecretValue", json!({"SecretId": "s", "SecretString": "last"}))
        .await;
    let l = t
        .ok(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "IncludeDeprecated": true}),
        )
        .await;
    assert_eq!(all(l.clone()), 100);
    assert!(l.get("NextToken").is_none());
    assert_eq!(t.current("s").await, "last");
}

// ---------------------------------------------------------------------------------------
// UpdateSecret, tags, ListSecrets

#[tokio::test]
async fn update_secret_metadata_only_and_with_value() {
    let t = T::new();
    t.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "KmsKeyId": "alias/mine"}),
    )
    .await;
    assert_eq!(
        t.ok("DescribeSecret", json!({"SecretId": "s"})).await["KmsKeyId"],
        "alias/mine"
    );
    let u = t
        .ok(
            "UpdateSecret",
            json!({"SecretId": "s", "Description": "new", "ClientRequestToken": TOKEN1, "KmsKeyId": ""}),
        )
        .await;
    assert!(u.get("VersionId").is_none(), "no value, no version");
    let d = t.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(d["Description"], "new");
    assert!(d.get("KmsKeyId").is_none());
    assert_eq!(d["VersionIdsToStages"].as_object().unwrap().len(), 1);
    let u = t
        .ok(
            "UpdateSecret",
            json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": TOKEN2}),
        )
        .await;
    assert_eq!(u["VersionId"], TOKEN2);
    assert_eq!(t.current("s").await, "v2");
    assert_eq!(
        t.ok(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionStage": "AWSPREVIOUS"})
        )
        .await["SecretString"],
        "v1"
    );
}

#[tokio::test]
async fn tags() {
    let t = T::new();
    t.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v", "Tags": [{"Key": "a", "Value": "1"}]}),
    )
    .await;
    t.ok(
        "TagResource",
        json!({"SecretId": "s", "Tags": [{"Key": "a", "Value": "2"}, {"Key": "B", "Value": "3"}]}),
    )
    .await;
    let d = t.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(
        d["Tags"],
        json!([{"Key": "a", "Value": "2"}, {"Key": "B", "Value": "3"}])
    );
    t.ok("UntagResource", json!({"SecretId": "s", "TagKeys": ["a", "b", "nope"]}))
        .await;
    let d = t.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(d["Tags"], json!([{"Key": "B", "Value": "3"}]));
    let e = t.err("TagResource", json!({"SecretId": "s"})).await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
    let e = t
        .err(
            "TagResource",
            json!({"SecretId": "s", "Tags": [{"Key": "", "Value": "x"}]}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
}

async fn list_names(t: &T, body: Value) -> Vec<String> {
    t.ok("ListSecrets", body).await["SecretList"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn list_secrets_filters_sort_and_pages() {
    let t = T::new();
    t.ok("CreateSecret", json!({"Name": "prod/db", "SecretString": "v", "Description": "Main Database", "Tags": [{"Key": "env", "Value": "prod"}]}))
        .await;
    t.advance(Duration::seconds(1));
    t.ok("CreateSecret", json!({"Name": "prod/api", "SecretString": "v", "Tags": [{"Key": "env", "Value": "production"}, {"Key": "team", "Value": "x"}]}))
        .await;
    t.advance(Duration::seconds(1));
    t.ok("CreateSecret", json!({"Name": "dev/db", "Description": "dev database"}))
        .await;

    let e = t.ok("ListSecrets", json!({})).await;
    let first = &e["SecretList"][0];
    assert_eq!(first["Name"], "prod/db");
    assert!(first.get("SecretVersionsToStages").is_some());
    assert!(first.get("VersionIdsToStages").is_none());
    assert_eq!(list_names(&t, json!({})).await, vec!["prod/db", "prod/api", "dev/db"]);
    assert_eq!(
        list_names(&t, json!({"SortOrder": "desc"})).await,
        vec!["dev/db", "prod/api", "prod/db"]
    );
    assert_eq!(
        list_names(&t, json!({"SortBy": "name"})).await,
        vec!["dev/db", "prod/api", "prod/db"]
    );

    let f = |k: &str, v: Value| json!({"Filters": [{"Key": k, "Values": v}]});
    assert_eq!(
        list_names(&t, f("name", json!(["prod/"]))).await,
        vec!["prod/db", "prod/api"]
    );
    assert!(
        list_names(&t, f("name", json!(["Prod/"]))).await.is_empty(),
        "name is case-sensitive"
    );
    assert_eq!(list_names(&t, f("name", json!(["!prod"]))).await, vec!["dev/db"]);
    assert_eq!(list_names(&t, f("description", json!(["main"]))).await, vec!["prod/db"]);
    assert_eq!(list_names(&t, f("tag-key", json!(["team"]))).await, vec!["prod/api"]);
    assert_eq!(
        list_names(&t, f("tag-value", json!(["prod"]))).await,
        vec!["prod/db", "prod/api"]
    );
    // Values of one filter are alternatives; a negated value matches what it does not match.
    assert_eq!(
        list_names(&t, f("tag-value", json!(["production", "!prod"]))).await,
        vec!["prod/api", "dev/db"]
    );
    assert_eq!(
        list_names(&t, f("description", json!(["data"]))).await,
        vec!["prod/db", "dev/db"]
    );
    assert!(list_names(&t, f("description", json!(["ata"]))).await.is_empty());
    assert_eq!(
        list_names(&t, f("all", json!(["DATABASE"]))).await,
        vec!["prod/db", "dev/db"]
    );
    assert_eq!(list_names(&t, f("all", json!(["db"]))).await, vec!["prod/db", "dev/db"]);
    assert!(list_names(&t, f("owning-service", json!(["rds"]))).await.is_empty());
    let two = json!({"Filters": [{"Key": "name", "Values": ["prod"]}, {"Key": "tag-key", "Values": ["team"]}]});
    assert_eq!(list_names(&t, two).await, vec!["prod/api"]);

    let e = t
        .err("ListSecrets", json!({"Filters": [{"Key": "nope", "Values": ["x"]}]}))
        .await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
    assert!(e.message.contains("'filters.1.member.key'"));
    let e = t.err("ListSecrets", json!({"Filters": [{"Values": ["x"]}]})).await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (AwsErrorCode::InvalidParameterException, "Invalid filter key")
    );
    let e = t.err("ListSecrets", json!({"Filters": [{"Key": "name"}]})).await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            AwsErrorCode::InvalidParameterException,
            "Invalid filter values for key: name"
        )
    );
    assert_eq!(
        t.err("ListSecrets", json!({"MaxResults": 0})).await.code,
        AwsErrorCode::ValidationException
    );
    assert_eq!(
        t.err("ListSecrets", json!({"MaxResults": 101})).await.code,
        AwsErrorCode::ValidationException
    );
    assert_eq!(
        t.err("ListSecrets", json!({"NextToken": "@@@"})).await.code,
        AwsErrorCode::InvalidNextTokenException
    );

    // Pagination.
    let p1 = t.ok("ListSecrets", json!({"MaxResults": 2})).await;
    assert_eq!(p1["SecretList"].as_array().unwrap().len(), 2);
    let tk = p1["NextToken"].as_str().unwrap();
    let p2 = t.ok("ListSecrets", json!({"MaxResults": 2, "NextToken": tk})).await;
    assert_eq!(p2["SecretList"][0]["Name"], "dev/db");
    assert!(p2.get("NextToken").is_none());

    // Deleted secrets are hidden unless asked for.
    t.ok("DeleteSecret", json!({"SecretId": "dev/db"})).await;
    assert_eq!(list_names(&t, json!({})).await.len(), 2);
    let all = t.ok("ListSecrets", json!({"IncludePlannedDeletion": true})).await;
    let deleted = all["SecretList"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Name"] == "dev/db")
        .unwrap();
    assert!(deleted.get("DeletedDate").is_some());
    // Other regions are separate.
    assert!(
        t.call_in("eu-west-1", "ListSecrets", json!({})).await.unwrap()["SecretList"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn batch_get_secret_value() {
    let t = T::new();
    t.ok("CreateSecret", json!({"Name": "a", "SecretString": "1"})).await;
    t.ok(
        "CreateSecret",
        json!({"Name": "b", "SecretString": "2", "Tags": [{"Key": "k", "Value": "v"}]}),
    )
    .await;
    t.ok("CreateSecret", json!({"Name": "c"})).await;
    let out = t
        .ok(
            "BatchGetSecretValue",
            json!({"SecretIdList": ["a", "b", "missing", "c"]}),
        )
        .await;
    let vals: Vec<&str> = out["SecretValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["SecretString"].as_str().unwrap())
        .collect();
    assert_eq!(vals, vec!["1", "2"]);
    let errs = out["Errors"].as_array().unwrap();
    assert_eq!(errs.len(), 2);
    assert_eq!(errs[0]["SecretId"], "missing");
    assert_eq!(errs[0]["ErrorCode"], "ResourceNotFoundException");
    let out = t
        .ok(
            "BatchGetSecretValue",
            json!({"Filters": [{"Key": "tag-key", "Values": ["k"]}]}),
        )
        .await;
    assert_eq!(out["SecretValues"].as_array().unwrap().len(), 1);
    assert_eq!(out["SecretValues"][0]["Name"], "b");
    let out = t
        .ok(
            "BatchGetSecretValue",
            json!({"Filters": [{"Key": "name", "Values": ["a", "b"]}], "MaxResults": 1}),
        )
        .await;
    assert_eq!(out["SecretValues"][0]["Name"], "a");
    let tk = out["NextToken"].as_str().unwrap();
    let out = t
        .ok(
            "BatchGetSecretValue",
            json!({"Filters": [{"Key": "name", "Values": ["a", "b"]}], "MaxResults": 1, "NextToken": tk}),
        )
        .await;
    assert_eq!(out["SecretValues"][0]["Name"], "b");
    assert_eq!(
        t.err("BatchGetSecretValue", json!({})).await.code,
        AwsErrorCode::InvalidParameterException
    );
    assert_eq!(
        t.err(
            "BatchGetSecretValue",
            json!({"SecretIdList": ["a"], "Filters": [{"Key": "name", "Values": ["a"]}]})
        )
        .await
        .code,
        AwsErrorCode::InvalidParameterException
    );
}

// ---------------------------------------------------------------------------------------
// Deletion lifecycle

#[tokio::test]
async fn delete_restore_and_purge() {
    let t = T::new();
    t.ok("CreateSecret", json!({"Name": "s", "SecretString": "v"})).await;
    for bad in [
        json!({"SecretId": "s", "RecoveryWindowInDays": 6}),
        json!({"SecretId": "s", "RecoveryWindowInDays": 31}),
    ] {
        let e = t.err("DeleteSecret", bad).await;
        assert_eq!(e.code, AwsErrorCode::InvalidParameterException);
        assert_eq!(
            e.message,
            "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive)."
        );
    }
    let e = t
        .err(
            "DeleteSecret",
            json!({"SecretId": "s", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidParameterException);
    assert_eq!(
        e.message,
        "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
    );

    let d = t
        .ok("DeleteSecret", json!({"SecretId": "s", "RecoveryWindowInDays": 7}))
        .await;
    let now = 1_700_000_000.123;
    assert_eq!(d["DeletionDate"].as_f64().unwrap(), now + 7.0 * 86_400.0);
    let desc = t.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(desc["DeletedDate"].as_f64().unwrap(), now);

    let marked = "You can't perform this operation on the secret because it was marked for deletion.";
    for (op, body) in [
        ("GetSecretValue", json!({"SecretId": "s"})),
        ("PutSecretValue", json!({"SecretId": "s", "SecretString": "x"})),
        ("UpdateSecret", json!({"SecretId": "s", "Description": "x"})),
        (
            "TagResource",
            json!({"SecretId": "s", "Tags": [{"Key": "a", "Value": "b"}]}),
        ),
        ("UntagResource", json!({"SecretId": "s", "TagKeys": ["a"]})),
        (
            "RotateSecret",
            json!({"SecretId": "s", "RotationLambdaARN": "arn:aws:lambda:us-east-1:123456789012:function:f"}),
        ),
        ("DeleteSecret", json!({"SecretId": "s"})),
    ] {
        let e = t.err(op, body).await;
        assert_eq!(
            (e.code, e.message.as_str()),
            (AwsErrorCode::InvalidRequestException, marked),
            "{op}"
        );
    }
    let e = t.err("CreateSecret", json!({"Name": "s", "SecretString": "v"})).await;
    assert_eq!(e.code, AwsErrorCode::InvalidRequestException);
    assert_eq!(
        e.message,
        "You can't create this secret because a secret with this name is already scheduled for deletion."
    );

    let r = t.ok("RestoreSecret", json!({"SecretId": "s"})).await;
    assert_eq!(r["Name"], "s");
    assert_eq!(t.current("s").await, "v");
    assert!(
        t.ok("DescribeSecret", json!({"SecretId": "s"}))
            .await
            .get("DeletedDate")
            .is_none()
    );

    // Default window is 30 days; purge only after it ends.
    let d = t.ok("DeleteSecret", json!({"SecretId": "s"})).await;
    assert_eq!(d["DeletionDate"].as_f64().unwrap(), now + 30.0 * 86_400.0);
    t.ok("CreateSecret", json!({"Name": "keep", "SecretString": "v"})).await;
    t.call_in(
        "eu-west-1",
        "CreateSecret",
        json!({"Name": "other", "SecretString": "v"}),
    )
    .await
    .unwrap();
    t.call_in(
        "eu-west-1",
        "DeleteSecret",
        json!({"SecretId": "other", "RecoveryWindowInDays": 7}),
    )
    .await
    .unwrap();
    t.advance(Duration::days(29));
    assert_eq!(
        t.engine.purge_expired(&t.ctx()).await.unwrap(),
        1,
        "only the 7-day one in eu-west-1"
    );
    assert_eq!(
        t.call_in("eu-west-1", "DescribeSecret", json!({"SecretId": "other"}))
            .await
            .unwrap_err()
            .code,
        AwsErrorCode::ResourceNotFoundException
    );
    assert!(t.call("DescribeSecret", json!({"SecretId": "s"})).await.is_ok());
    t.advance(Duration::days(1));
    assert_eq!(t.engine.purge_expired(&t.ctx()).await.unwrap(), 1);
    assert_eq!(
        t.err("DescribeSecret", json!({"SecretId": "s"})).await.code,
        AwsErrorCode::ResourceNotFoundException
    );
    assert_eq!(t.current("keep").await, "v");
    // The name is free again, with a new ARN.
    t.ok("CreateSecret", json!({"Name": "s", "SecretString": "new"})).await;
    assert_eq!(t.current("s").await, "new");
}

#[tokio::test]
async fn force_delete() {
    let t = T::new();
    let arn = t.ok("CreateSecret", json!({"Name": "s", "SecretString": "v"})).await["ARN"].clone();
    let d = t
        .ok(
            "DeleteSecret",
            json!({"SecretId": "s", "ForceDeleteWithoutRecovery": true}),
        )
        .await;
    assert_eq!(d["ARN"], arn);
    assert_eq!(d["DeletionDate"].as_f64().unwrap(), 1_700_000_000.123);
    assert_eq!(
        t.err("GetSecretValue", json!({"SecretId": "s"})).await.code,
        AwsErrorCode::ResourceNotFoundException
    );
    // Force-deleting a secret that does not exist succeeds as if it did.
    let d = t
        .ok(
            "DeleteSecret",
            json!({"SecretId": "never", "ForceDeleteWithoutRecovery": true}),
        )
        .await;
    assert_eq!(d["Name"], "never");
    assert!(d["ARN"].as_str().unwrap().contains(":secret:never-"));
    let e = t.err("DeleteSecret", json!({"SecretId": "never"})).await;
    assert_eq!(e.code, AwsErrorCode::ResourceNotFoundException);
    // Recreating right away gets a fresh secret.
    let arn2 = t.ok("CreateSecret", json!({"Name": "s", "SecretString": "w"})).await["ARN"].clone();
    assert_eq!(t.current("s").await, "w");
    assert_eq!(
        t.ok(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "IncludeDeprecated": true})
        )
        .await["Versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let _ = arn2;
    // Force-delete of a secret already scheduled for deletion works.
    t.ok("DeleteSecret", json!({"SecretId": "s"})).await;
    t.ok(
        "DeleteSecret",
        json!({"SecretId": "s", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    assert_eq!(
        t.err("DescribeSecret", json!({"SecretId": "s"})).await.code,
        AwsErrorCode::ResourceNotFoundException
    );
}

#[tokio::test]
async fn reset_removes_everything() {
    let t = T::new();
    t.ok("CreateSecret", json!({"Name": "a", "SecretString": "1"})).await;
    t.call_in("eu-west-1", "CreateSecret", json!({"Name": "b", "SecretString": "1"}))
        .await
        .unwrap();
    t.engine.reset().await.unwrap();
    assert!(
        t.ok("ListSecrets", json!({})).await["SecretList"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    t.ok("CreateSecret", json!({"Name": "a", "SecretString": "1"})).await;
}

// ---------------------------------------------------------------------------------------
// Policies, passwords

#[tokio::test]
async fn resource_policies() {
    let t = T::new();
    t.ok("CreateSecret", json!({"Name": "s", "SecretString": "v"})).await;
    let g = t.ok("GetResourcePolicy", json!({"SecretId": "s"})).await;
    assert!(g.get("ResourcePolicy").is_none());
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let p = t
        .ok(
            "PutResourcePolicy",
            json!({"SecretId": "s", "ResourcePolicy": policy, "BlockPublicPolicy": true}),
        )
        .await;
    assert_eq!(p["Name"], "s");
    assert_eq!(
        t.ok("GetResourcePolicy", json!({"SecretId": "s"})).await["ResourcePolicy"],
        policy
    );
    let e = t
        .err(
            "PutResourcePolicy",
            json!({"SecretId": "s", "ResourcePolicy": "{not json"}),
        )
        .await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            AwsErrorCode::MalformedPolicyDocumentException,
            "This resource policy contains a syntax error."
        )
    );
    let public = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let e = t
        .err(
            "PutResourcePolicy",
            json!({"SecretId": "s", "ResourcePolicy": public, "BlockPublicPolicy": true}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::PublicPolicyException);
    t.ok("PutResourcePolicy", json!({"SecretId": "s", "ResourcePolicy": public}))
        .await;
    let v = t.ok("ValidateResourcePolicy", json!({"ResourcePolicy": policy})).await;
    assert_eq!(v["PolicyValidationPassed"], true);
    assert_eq!(
        t.err("ValidateResourcePolicy", json!({"ResourcePolicy": "[]"}))
            .await
            .code,
        AwsErrorCode::MalformedPolicyDocumentException
    );
    t.ok("DeleteResourcePolicy", json!({"SecretId": "s"})).await;
    assert!(
        t.ok("GetResourcePolicy", json!({"SecretId": "s"}))
            .await
            .get("ResourcePolicy")
            .is_none()
    );
}

#[tokio::test]
async fn random_password_via_handle() {
    let t = T::new();
    let p = t.ok("GetRandomPassword", json!({})).await;
    assert_eq!(p["RandomPassword"].as_str().unwrap().len(), 32);
    let p = t
        .ok(
            "GetRandomPassword",
            json!({"PasswordLength": 10, "ExcludePunctuation": true}),
        )
        .await;
    assert!(
        p["RandomPassword"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_alphanumeric())
    );
}

// ---------------------------------------------------------------------------------------
// Rotation placeholder

struct RecordingHook(std::sync::Mutex<Vec<RotationEvent>>);

#[async_trait]
impl RotationHook for RecordingHook {
    async fn rotation_requested(&self, _ctx: &RequestContext, event: RotationEvent) -> Result<(), AwsError> {
        self.0.lock().unwrap().push(event);
        Ok(())
    }
}

#[tokio::test]
async fn rotation_creates_an_empty_pending_version() {
    let hook = Arc::new(RecordingHook(std::sync::Mutex::new(Vec::new())));
    let mut t = T::new();
    t.engine = SecretsEngine::new(Arc::new(MemoryStorage::new())).with_rotation_hook(hook.clone());
    t.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v1", "ClientRequestToken": TOKEN1}),
    )
    .await;
    let lambda = "arn:aws:lambda:us-east-1:123456789012:function:rot";

    let e = t.err("RotateSecret", json!({"SecretId": "s"})).await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            AwsErrorCode::InvalidRequestException,
            "No Lambda rotation function ARN is associated with this secret."
        )
    );
    for rules in [
        json!({"AutomaticallyAfterDays": 0}),
        json!({"AutomaticallyAfterDays": 1001}),
        json!({"AutomaticallyAfterDays": 3, "ScheduleExpression": "rate(4 hours)"}),
    ] {
        let e = t
            .err(
                "RotateSecret",
                json!({"SecretId": "s", "RotationLambdaARN": lambda, "RotationRules": rules}),
            )
            .await;
        assert_eq!(e.code, AwsErrorCode::InvalidParameterException, "{rules}");
    }
    let e = t.err("RotateSecret", json!({"SecretId": "s", "RotationLambdaARN": lambda, "RotationRules": {"AutomaticallyAfterDays": 3, "Duration": "3d"}})).await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);

    let r = t
        .ok("RotateSecret", json!({"SecretId": "s", "RotationLambdaARN": lambda, "RotationRules": {"AutomaticallyAfterDays": 30, "Duration": "2h"}, "ClientRequestToken": TOKEN2}))
        .await;
    assert_eq!(r["VersionId"], TOKEN2);
    let d = t.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(d["RotationEnabled"], true);
    assert_eq!(d["RotationLambdaARN"], lambda);
    assert_eq!(
        d["RotationRules"],
        json!({"AutomaticallyAfterDays": 30, "Duration": "2h"})
    );
    assert_eq!(d["VersionIdsToStages"][TOKEN2], json!(["AWSPENDING"]));
    assert!(d.get("NextRotationDate").is_some());
    assert!(d.get("LastRotatedDate").is_none());
    // The placeholder has no value.
    let e = t
        .err(
            "GetSecretValue",
            json!({"SecretId": "s", "VersionId": TOKEN2, "VersionStage": "AWSPENDING"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ResourceNotFoundException);
    assert_eq!(t.current("s").await, "v1");
    assert_eq!(hook.0.lock().unwrap().len(), 1);
    assert_eq!(hook.0.lock().unwrap()[0].client_request_token, TOKEN2);

    // A second rotation while this one is pending is refused; retrying the same one is fine.
    let e = t
        .err("RotateSecret", json!({"SecretId": "s", "ClientRequestToken": TOKEN3}))
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidRequestException);
    t.ok("RotateSecret", json!({"SecretId": "s", "ClientRequestToken": TOKEN2}))
        .await;

    // What a rotation function does: fill the placeholder, then move AWSCURRENT.
    let p = t.ok("PutSecretValue", json!({"SecretId": "s", "ClientRequestToken": TOKEN2, "SecretString": "v2", "VersionStages": ["AWSPENDING"]})).await;
    assert_eq!(p["VersionStages"], json!(["AWSPENDING"]));
    assert_eq!(t.current("s").await, "v1");
    assert_eq!(
        t.ok("GetSecretValue", json!({"SecretId": "s", "VersionStage": "AWSPENDING"}))
            .await["SecretString"],
        "v2"
    );
    t.ok("UpdateSecretVersionStage", json!({"SecretId": "s", "VersionStage": "AWSCURRENT", "MoveToVersionId": TOKEN2, "RemoveFromVersionId": TOKEN1}))
        .await;
    assert_eq!(t.current("s").await, "v2");

    // Cancel: rotation off, AWSPENDING gone, rules kept.
    let c = t.ok("CancelRotateSecret", json!({"SecretId": "s"})).await;
    assert_eq!(c["VersionId"], TOKEN2);
    let d = t.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(d["RotationEnabled"], false);
    assert_eq!(d["RotationRules"]["AutomaticallyAfterDays"], 30);
    assert_eq!(d["VersionIdsToStages"][TOKEN2], json!(["AWSCURRENT"]));
    assert!(d.get("NextRotationDate").is_none());
    assert_eq!(
        t.err("CancelRotateSecret", json!({"SecretId": "s"})).await.code,
        AwsErrorCode::InvalidRequestException
    );
}

#[tokio::test]
async fn cancel_removes_an_unfilled_placeholder() {
    let t = T::new();
    t.ok("CreateSecret", json!({"Name": "s", "SecretString": "v1"})).await;
    let lambda = "arn:aws:lambda:us-east-1:123456789012:function:rot";
    t.ok("RotateSecret", json!({"SecretId": "s", "RotationLambdaARN": lambda, "ClientRequestToken": TOKEN2, "RotationRules": {"ScheduleExpression": "rate(10 days)"}}))
        .await;
    t.ok("CancelRotateSecret", json!({"SecretId": "s"})).await;
    let l = t
        .ok(
            "ListSecretVersionIds",
            json!({"SecretId": "s", "IncludeDeprecated": true}),
        )
        .await;
    assert_eq!(l["Versions"].as_array().unwrap().len(), 1);
    // Rotation can start again.
    let r = t
        .ok("RotateSecret", json!({"SecretId": "s", "ClientRequestToken": TOKEN3}))
        .await;
    assert_eq!(r["VersionId"], TOKEN3);
}

// ---------------------------------------------------------------------------------------
// Replication

#[tokio::test]
async fn replication() {
    let t = T::new();
    let out = t
        .ok(
            "CreateSecret",
            json!({"Name": "s", "SecretString": "v1", "AddReplicaRegions": [{"Region": "eu-west-1"}]}),
        )
        .await;
    let arn = out["ARN"].as_str().unwrap().to_string();
    assert_eq!(out["ReplicationStatus"][0]["Region"], "eu-west-1");
    assert_eq!(out["ReplicationStatus"][0]["Status"], "InSync");
    let replica_arn = arn.replace("us-east-1", "eu-west-1");

    let rd = t
        .call_in("eu-west-1", "DescribeSecret", json!({"SecretId": "s"}))
        .await
        .unwrap();
    assert_eq!(rd["ARN"], replica_arn.as_str());
    assert_eq!(rd["PrimaryRegion"], "us-east-1");
    assert_eq!(
        t.call_in("eu-west-1", "GetSecretValue", json!({"SecretId": replica_arn}))
            .await
            .unwrap()["SecretString"],
        "v1"
    );
    let pd = t.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(pd["PrimaryRegion"], "us-east-1");
    assert_eq!(pd["ReplicationStatus"][0]["Status"], "InSync");

    // Replicas are read-only.
    let e = t
        .call_in(
            "eu-west-1",
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, AwsErrorCode::InvalidParameterException);
    assert_eq!(
        e.message,
        "Operation not permitted on a replica secret. Call must be made in primary secret's region."
    );
    // Writes to the primary are reflected on the replica.
    t.ok("PutSecretValue", json!({"SecretId": "s", "SecretString": "v2"}))
        .await;
    t.ok(
        "TagResource",
        json!({"SecretId": "s", "Tags": [{"Key": "k", "Value": "v"}]}),
    )
    .await;
    assert_eq!(
        t.call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "s"}))
            .await
            .unwrap()["SecretString"],
        "v2"
    );
    let rd = t
        .call_in("eu-west-1", "DescribeSecret", json!({"SecretId": "s"}))
        .await
        .unwrap();
    assert_eq!(rd["Tags"][0]["Key"], "k");
    // A primary with replicas can't be deleted.
    assert_eq!(
        t.err("DeleteSecret", json!({"SecretId": "s"})).await.code,
        AwsErrorCode::InvalidParameterException
    );

    // Add another region later: it gets all versions.
    let r = t
        .ok(
            "ReplicateSecretToRegions",
            json!({"SecretId": "s", "AddReplicaRegions": [{"Region": "ap-south-1", "KmsKeyId": "alias/k"}]}),
        )
        .await;
    assert_eq!(r["ReplicationStatus"].as_array().unwrap().len(), 2);
    let prev = t
        .call_in(
            "ap-south-1",
            "GetSecretValue",
            json!({"SecretId": "s", "VersionStage": "AWSPREVIOUS"}),
        )
        .await
        .unwrap();
    assert_eq!(prev["SecretString"], "v1");
    assert_eq!(
        t.call_in("ap-south-1", "DescribeSecret", json!({"SecretId": "s"}))
            .await
            .unwrap()["KmsKeyId"],
        "alias/k"
    );

    // Remove one region: its copy disappears.
    let r = t
        .ok(
            "RemoveRegionsFromReplication",
            json!({"SecretId": "s", "RemoveReplicaRegions": ["ap-south-1"]}),
        )
        .await;
    assert_eq!(r["ReplicationStatus"].as_array().unwrap().len(), 1);
    assert_eq!(
        t.call_in("ap-south-1", "DescribeSecret", json!({"SecretId": "s"}))
            .await
            .unwrap_err()
            .code,
        AwsErrorCode::ResourceNotFoundException
    );

    // Promote the remaining replica.
    let e = t.err("StopReplicationToReplica", json!({"SecretId": "s"})).await;
    assert_eq!(e.code, AwsErrorCode::InvalidRequestException);
    let s = t
        .call_in("eu-west-1", "StopReplicationToReplica", json!({"SecretId": "s"}))
        .await
        .unwrap();
    assert_eq!(s["ARN"], replica_arn.as_str());
    t.call_in(
        "eu-west-1",
        "PutSecretValue",
        json!({"SecretId": "s", "SecretString": "eu"}),
    )
    .await
    .unwrap();
    assert_eq!(t.current("s").await, "v2");
    let pd = t.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert!(pd.get("ReplicationStatus").is_none());
    assert!(pd.get("PrimaryRegion").is_none());
    t.ok("PutSecretValue", json!({"SecretId": "s", "SecretString": "us"}))
        .await;
    assert_eq!(
        t.call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "s"}))
            .await
            .unwrap()["SecretString"],
        "eu"
    );
    t.ok(
        "DeleteSecret",
        json!({"SecretId": "s", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
}

#[tokio::test]
async fn replication_conflicts() {
    let t = T::new();
    t.call_in(
        "eu-west-1",
        "CreateSecret",
        json!({"Name": "s", "SecretString": "theirs"}),
    )
    .await
    .unwrap();
    t.ok("CreateSecret", json!({"Name": "s", "SecretString": "ours"})).await;
    let r = t
        .ok(
            "ReplicateSecretToRegions",
            json!({"SecretId": "s", "AddReplicaRegions": [{"Region": "eu-west-1"}]}),
        )
        .await;
    assert_eq!(r["ReplicationStatus"][0]["Status"], "Failed");
    assert_eq!(
        t.call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "s"}))
            .await
            .unwrap()["SecretString"],
        "theirs"
    );
    let r = t
        .ok("ReplicateSecretToRegions", json!({"SecretId": "s", "AddReplicaRegions": [{"Region": "eu-west-1"}], "ForceOverwriteReplicaSecret": true}))
        .await;
    assert_eq!(r["ReplicationStatus"][0]["Status"], "InSync");
    assert_eq!(
        t.call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "s"}))
            .await
            .unwrap()["SecretString"],
        "ours"
    );
    let e = t
        .err(
            "ReplicateSecretToRegions",
            json!({"SecretId": "s", "AddReplicaRegions": [{"Region": "us-east-1"}]}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidParameterException);
}

// ---------------------------------------------------------------------------------------
// Concurrency and failure atomicity

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn concurrent_puts_lose_nothing() {
    let t = Arc::new(T::new());
    t.ok(
        "CreateSecret",
        json!({"Name": "s", "SecretString": "v0", "ClientRequestToken": TOKEN1}),
    )
    .await;
    let mut handles = Vec::new();
    for i in 0..50 {
        let t = t.clone();
        handles.push(tokio::spawn(async move {
            let token = format!("{i:08}-0000-4000-8000-000000000000");
            t.ok(
                "PutSecretValue",
                json!({"SecretId": "s", "SecretString": format!("v{}", i + 1), "ClientRequestToken": token}),
            )
            .await;
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let mut versions = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"SecretId": "s", "IncludeDeprecated": true});
        if let Some(tk) = &token {
            body["NextToken"] = json!(tk);
        }
        let l = t.ok("ListSecretVersionIds", body).await;
        versions.extend(l["Versions"].as_array().unwrap().iter().cloned());
        match l.get("NextToken") {
            Some(tk) => token = Some(tk.as_str().unwrap().to_string()),
            None => break,
        }
    }
    assert_eq!(versions.len(), 51);
    let count = |label: &str| {
        versions
            .iter()
            .filter(|v| {
                v["VersionStages"]
                    .as_array()
                    .is_some_and(|s| s.iter().any(|x| x == label))
            })
            .count()
    };
    assert_eq!(count("AWSCURRENT"), 1);
    assert_eq!(count("AWSPREVIOUS"), 1);
    for i in 0..50 {
        let token = format!("{i:08}-0000-4000-8000-000000000000");
        let v = t
            .ok("GetSecretValue", json!({"SecretId": "s", "VersionId": token}))
            .await;
        assert_eq!(v["SecretString"], format!("v{}", i + 1));
    }
}

#[tokio::test]
async fn failed_writes_leave_the_secret_unchanged() {
    let storage = Arc::new(FailingStorage::new());
    let t = T::with_storage(storage.clone());
    t.ok("CreateSecret", json!({"Name": "s", "SecretString": "v1", "ClientRequestToken": TOKEN1, "AddReplicaRegions": [{"Region": "eu-west-1"}]}))
        .await;
    let ops: Vec<(&str, Value)> = vec![
        (
            "PutSecretValue",
            json!({"SecretId": "s", "SecretString": "v2", "ClientRequestToken": TOKEN2}),
        ),
        (
            "UpdateSecret",
            json!({"SecretId": "s", "SecretString": "v3", "Description": "changed"}),
        ),
        (
            "TagResource",
            json!({"SecretId": "s", "Tags": [{"Key": "k", "Value": "v"}]}),
        ),
        (
            "UpdateSecretVersionStage",
            json!({"SecretId": "s", "VersionStage": "x", "MoveToVersionId": TOKEN1}),
        ),
        (
            "RotateSecret",
            json!({"SecretId": "s", "RotationLambdaARN": "arn:aws:lambda:us-east-1:1:function:f", "ClientRequestToken": TOKEN3}),
        ),
        (
            "ReplicateSecretToRegions",
            json!({"SecretId": "s", "AddReplicaRegions": [{"Region": "ap-south-1"}]}),
        ),
        (
            "RemoveRegionsFromReplication",
            json!({"SecretId": "s", "RemoveReplicaRegions": ["ap-south-1"]}),
        ),
    ];
    for (op, body) in ops {
        // Reads record the access date once a day; do them before taking the snapshot.
        let value = t.current("s").await;
        let replica_value = t
            .call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "s"}))
            .await
            .unwrap()["SecretString"]
            .clone();
        let before = t.ok("DescribeSecret", json!({"SecretId": "s"})).await;
        let replica_before = t
            .call_in("eu-west-1", "DescribeSecret", json!({"SecretId": "s"}))
            .await
            .unwrap();
        let ap_before = t
            .call_in("ap-south-1", "DescribeSecret", json!({"SecretId": "s"}))
            .await
            .ok();
        // Fail the 1st, 2nd, ... write until the operation needs fewer writes than that.
        let mut n = 1;
        loop {
            storage.fail_write_in(n as u64);
            let r = t.call(op, body.clone()).await;
            storage.fail_write_in(u64::MAX / 2);
            let Err(e) = r else { break };
            assert_eq!(e.code, AwsErrorCode::InternalServiceError, "{op} #{n}: {e}");
            assert_eq!(
                t.ok("DescribeSecret", json!({"SecretId": "s"})).await,
                before,
                "{op} failing write #{n}"
            );
            assert_eq!(
                t.call_in("eu-west-1", "DescribeSecret", json!({"SecretId": "s"}))
                    .await
                    .unwrap(),
                replica_before,
                "{op} failing write #{n}: replica"
            );
            assert_eq!(t.current("s").await, value, "{op} failing write #{n}");
            assert_eq!(
                t.call_in("ap-south-1", "DescribeSecret", json!({"SecretId": "s"}))
                    .await
                    .ok(),
                ap_before,
                "{op} #{n}"
            );
            let rv = t
                .call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "s"}))
                .await
                .unwrap();
            assert_eq!(
                rv["SecretString"], replica_value,
                "{op} failing write #{n}: replica value"
            );
            n += 1;
            assert!(n < 10, "{op} never succeeds");
        }
        assert!(n > 1, "{op} was never made to fail");
    }
    // The successful retries took effect everywhere.
    let d = t.ok("DescribeSecret", json!({"SecretId": "s"})).await;
    assert_eq!(d["Description"], "changed");
    assert_eq!(d["RotationEnabled"], true);
    assert_eq!(d["ReplicationStatus"].as_array().unwrap().len(), 1);
    assert!(
        t.call_in("ap-south-1", "GetSecretValue", json!({"SecretId": "s"}))
            .await
            .is_err()
    );
    assert!(
        t.call_in("ap-south-1", "ListSecrets", json!({})).await.unwrap()["SecretList"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        t.call_in("eu-west-1", "GetSecretValue", json!({"SecretId": "s"}))
            .await
            .unwrap()["SecretString"],
        "v3"
    );

    // Deletion (scheduled and forced) of a plain secret.
    t.ok("CreateSecret", json!({"Name": "plain", "SecretString": "p"}))
        .await;
    for body in [
        json!({"SecretId": "plain"}),
        json!({"SecretId": "plain", "ForceDeleteWithoutRecovery": true}),
    ] {
        storage.fail_write_in(1);
        assert!(t.call("DeleteSecret", body).await.is_err());
        storage.fail_write_in(u64::MAX / 2);
        assert!(
            t.ok("DescribeSecret", json!({"SecretId": "plain"}))
                .await
                .get("DeletedDate")
                .is_none()
        );
        assert_eq!(t.current("plain").await, "p");
    }
}

#[tokio::test]
async fn failed_create_leaves_nothing_behind() {
    let storage = Arc::new(FailingStorage::new());
    let t = T::with_storage(storage.clone());
    // Fail the 1st, 2nd, ... write until CreateSecret needs fewer writes than that.
    let mut n = 1;
    loop {
        storage.fail_write_in(n);
        let r = t.call("CreateSecret", json!({"Name": "s", "SecretString": "v"})).await;
        storage.fail_write_in(u64::MAX / 2);
        if r.is_ok() {
            break;
        }
        assert_eq!(
            t.err("DescribeSecret", json!({"SecretId": "s"})).await.code,
            AwsErrorCode::ResourceNotFoundException,
            "failing write #{n}"
        );
        n += 1;
        assert!(n < 10, "CreateSecret never succeeds");
    }
    assert!(n > 1, "CreateSecret was never made to fail");
    assert_eq!(t.current("s").await, "v");
}

#[tokio::test]
async fn reads_do_not_write_more_than_once_a_day() {
    let storage = Arc::new(FailingStorage::new());
    let t = T::with_storage(storage.clone());
    t.ok("CreateSecret", json!({"Name": "s", "SecretString": "v"})).await;
    t.current("s").await;
    let writes = storage.writes();
    for _ in 0..10 {
        t.current("s").await;
    }
    assert_eq!(storage.writes(), writes);
    t.advance(Duration::days(1));
    t.current("s").await;
    assert_eq!(storage.writes(), writes + 1);
    // A failing access-date write does not fail the read.
    t.advance(Duration::days(1));
    storage.fail_write_in(1);
    assert_eq!(t.current("s").await, "v");
}

#[tokio::test]
async fn every_write_to_a_replica_is_refused() {
    let t = T::new();
    let arn = t
        .ok(
            "CreateSecret",
            json!({"Name": "dup", "SecretString": "s1", "AddReplicaRegions": [{"Region": "us-east-2"}]}),
        )
        .await["ARN"]
        .as_str()
        .unwrap()
        .replace("us-east-1", "us-east-2");
    let lambda = "arn:aws:lambda:us-east-2:123456789012:function:f";
    for (op, body) in [
        ("UpdateSecret", json!({"SecretId": arn, "SecretString": "x"})),
        ("PutSecretValue", json!({"SecretId": arn, "SecretString": "x"})),
        (
            "TagResource",
            json!({"SecretId": arn, "Tags": [{"Key": "k", "Value": "v"}]}),
        ),
        ("UntagResource", json!({"SecretId": arn, "TagKeys": ["k"]})),
        ("PutResourcePolicy", json!({"SecretId": arn, "ResourcePolicy": "k1"})),
        ("GetResourcePolicy", json!({"SecretId": arn})),
        ("DeleteResourcePolicy", json!({"SecretId": arn})),
        ("DeleteSecret", json!({"SecretId": arn})),
        ("CancelRotateSecret", json!({"SecretId": arn})),
        ("RotateSecret", json!({"SecretId": arn})),
        ("RotateSecret", json!({"SecretId": arn, "RotationLambdaARN": lambda})),
        ("RestoreSecret", json!({"SecretId": arn})),
        (
            "ReplicateSecretToRegions",
            json!({"SecretId": arn, "AddReplicaRegions": [{}]}),
        ),
        (
            "RemoveRegionsFromReplication",
            json!({"SecretId": arn, "RemoveReplicaRegions": ["a"]}),
        ),
        (
            "UpdateSecretVersionStage",
            json!({"SecretId": arn, "VersionStage": "x", "RemoveFromVersionId": TOKEN1}),
        ),
    ] {
        let e = t.call_in("us-east-2", op, body).await.unwrap_err();
        assert_eq!(e.code, AwsErrorCode::InvalidParameterException, "{op}");
        assert_eq!(
            e.message, "Operation not permitted on a replica secret. Call must be made in primary secret's region.",
            "{op}"
        );
    }
    let e = t.err("DeleteSecret", json!({"SecretId": "dup"})).await;
    assert!(
        e.message
            .starts_with("You can't delete secret arn:aws:secretsmanager:us-east-1:"),
        "{}",
        e.message
    );
    assert!(
        e.message.ends_with("that still has replica regions [us-east-2]"),
        "{}",
        e.message
    );
    let e = t
        .err(
            "CreateSecret",
            json!({"Name": "x", "AddReplicaRegions": [{"Region": "us-east-1"}]}),
        )
        .await;
    assert_eq!(
        (e.code, e.message.as_str()),
        (AwsErrorCode::InvalidParameterException, "Invalid replica region.")
    );
}

#[tokio::test]
async fn moto_and_aws_recorded_details() {
    let t = T::new();
    // CreateSecret: same token, other data -> the token message (AWS-verified in moto's suite).
    let arn = t
        .ok(
            "CreateSecret",
            json!({"Name": "s", "SecretString": "Hello", "ClientRequestToken": TOKEN1}),
        )
        .await["ARN"]
        .as_str()
        .unwrap()
        .to_string();
    let e = t
        .err(
            "CreateSecret",
            json!({"Name": "s", "SecretString": "Hi", "ClientRequestToken": TOKEN1}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ResourceExistsException);
    assert_eq!(
        e.message,
        format!(
            "You can't use ClientRequestToken {TOKEN1} because that value is already in use for a version of secret {arn}."
        )
    );
    // A range error on RecoveryWindowInDays wins over the conjunction error.
    let e = t
        .err(
            "DeleteSecret",
            json!({"SecretId": "s", "RecoveryWindowInDays": 2, "ForceDeleteWithoutRecovery": true}),
        )
        .await;
    assert!(e.message.contains("between 7 and 30 days"));
    // Rotation parameter messages.
    let e = t
        .err(
            "RotateSecret",
            json!({"SecretId": "s", "RotationRules": {"AutomaticallyAfterDays": 0}}),
        )
        .await;
    assert_eq!(e.message, "RotationRules.AutomaticallyAfterDays must be within 1-1000.");
    let e = t
        .err(
            "RotateSecret",
            json!({"SecretId": "s", "RotationLambdaARN": "x".repeat(2049)}),
        )
        .await;
    assert_eq!(e.message, "RotationLambdaARN must <= 2048 characters long.");
    // Managed secrets: OwningService comes from the aws:secretsmanager:owningService tag.
    t.ok("CreateSecret", json!({"Name": "m", "SecretString": "v", "Tags": [{"Key": "aws:secretsmanager:owningService", "Value": "rds"}]}))
        .await;
    assert_eq!(
        t.ok("DescribeSecret", json!({"SecretId": "m"})).await["OwningService"],
        "rds"
    );
    let l = list_names(&t, json!({"Filters": [{"Key": "owning-service", "Values": ["rds"]}]})).await;
    assert_eq!(l, vec!["m"]);
    // Policies are checked after the secret is found.
    let e = t
        .err(
            "PutResourcePolicy",
            json!({"SecretId": "missing", "ResourcePolicy": "p"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ResourceNotFoundException);
    // Untagging everything leaves an empty tag list.
    t.ok(
        "TagResource",
        json!({"SecretId": "s", "Tags": [{"Key": "a", "Value": "b"}]}),
    )
    .await;
    t.ok("UntagResource", json!({"SecretId": "s", "TagKeys": ["a"]})).await;
    assert_eq!(
        t.ok("DescribeSecret", json!({"SecretId": "s"})).await["Tags"],
        json!([])
    );
    // First put with only AWSPENDING also gets AWSCURRENT, in that order.
    t.ok("CreateSecret", json!({"Name": "e"})).await;
    let p = t
        .ok(
            "PutSecretValue",
            json!({"SecretId": "e", "SecretString": "v", "VersionStages": ["AWSPENDING"]}),
        )
        .await;
    assert_eq!(p["VersionStages"], json!(["AWSPENDING", "AWSCURRENT"]));
}

// ---------------------------------------------------------------------------------------
// The creation-order index

/// Every name of every `ListSecrets` page in one direction, and the number of pages.
async fn all_pages(t: &T, region: &str, body: Value) -> (Vec<String>, usize) {
    let mut names = Vec::new();
    let mut pages = 0;
    let mut body = body;
    loop {
        let out = t.call_in(region, "ListSecrets", body.clone()).await.unwrap();
        pages += 1;
        names.extend(
            out["SecretList"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["Name"].as_str().unwrap().to_string()),
        );
        match out.get("NextToken").and_then(Value::as_str) {
            Some(token) => body["NextToken"] = json!(token),
            None => return (names, pages),
        }
    }
}

/// The creation-index entries of one region.
async fn index_entries(storage: &dyn Storage, region: &str) -> Vec<String> {
    let prefix = names::created_prefix("123456789012", region);
    storage
        .scan(&prefix, None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.strip_prefix(prefix.as_str()).unwrap().to_string())
        .collect()
}

/// Paging through the index gives the order of a walk over every record, both ways, with
/// filters, deleted secrets, equal creation times and names that escape.
#[tokio::test]
async fn creation_index_pages_match_a_walk_of_every_record() {
    let t = T::new();
    let mut created = Vec::new();
    for i in 0..23 {
        // Some secrets share a creation time: the name breaks the tie.
        if i % 3 == 0 {
            t.advance(Duration::milliseconds(5));
        }
        let name = match i % 4 {
            0 => format!("app/{i:02}"),
            1 => format!("app+{i:02}"),
            2 => format!("db-{i:02}"),
            _ => format!("z.{i:02}"),
        };
        t.ok("CreateSecret", json!({"Name": name, "SecretString": "v"})).await;
        created.push(name);
    }
    t.ok("DeleteSecret", json!({"SecretId": "db-02"})).await;
    t.ok(
        "DeleteSecret",
        json!({"SecretId": "app/04", "ForceDeleteWithoutRecovery": true}),
    )
    .await;

    for (body, keep_deleted) in [
        (json!({"MaxResults": 4}), false),
        (json!({"MaxResults": 4, "IncludePlannedDeletion": true}), true),
        (
            json!({"MaxResults": 3, "Filters": [{"Key": "name", "Values": ["app"]}]}),
            false,
        ),
        (json!({"MaxResults": 100}), false),
    ] {
        for ascending in [true, false] {
            let mut body = body.clone();
            body["SortOrder"] = json!(if ascending { "asc" } else { "desc" });
            let ctx = t.ctx();
            let filters = filters::parse_filters(
                input::Input::parse(body.clone())
                    .unwrap()
                    .object_list("Filters")
                    .unwrap()
                    .unwrap_or_default(),
            )
            .unwrap();
            let (walked, _) = t
                .engine
                .page_of_records(
                    &ctx,
                    |r| (keep_deleted || !r.is_deleted()) && filters::matches(r, &filters),
                    metadata::created_key,
                    ascending,
                    None,
                    1000,
                )
                .await
                .unwrap();
            let walked: Vec<String> = walked.into_iter().map(|r| r.name).collect();
            let (paged, pages) = all_pages(&t, "us-east-1", body.clone()).await;
            assert_eq!(paged, walked, "{body}");
            let max = body["MaxResults"].as_u64().unwrap() as usize;
            assert_eq!(pages, walked.len().div_ceil(max).max(1), "{body}");
        }
    }
    let (all, _) = all_pages(&t, "us-east-1", json!({"IncludePlannedDeletion": true})).await;
    assert_eq!(all.len(), 22);
    assert!(!all.contains(&"app/04".to_string()));
    assert_eq!(all.first().map(String::as_str), Some("app/00"));
    // BatchGetSecretValue with filters reads the same order.
    let b = t
        .ok(
            "BatchGetSecretValue",
            json!({"Filters": [{"Key": "name", "Values": ["z."]}], "MaxResults": 20}),
        )
        .await;
    let got: Vec<&str> = b["SecretValues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["Name"].as_str().unwrap())
        .collect();
    let want: Vec<&str> = created
        .iter()
        .filter(|n| n.starts_with("z."))
        .map(String::as_str)
        .collect();
    assert_eq!(got, want);
}

/// Erasing a secret drops its entry; replicas are indexed in their own region and dropped
/// with them; a name re-created later is listed once, at its new creation time.
#[tokio::test]
async fn creation_index_follows_erasure_and_replication() {
    let storage = Arc::new(MemoryStorage::new());
    let t = T::with_storage(storage.clone());
    t.ok(
        "CreateSecret",
        json!({"Name": "a", "SecretString": "1", "AddReplicaRegions": [{"Region": "eu-west-1"}]}),
    )
    .await;
    t.advance(Duration::seconds(1));
    t.ok("CreateSecret", json!({"Name": "b", "SecretString": "1"})).await;
    assert_eq!(index_entries(storage.as_ref(), "us-east-1").await.len(), 2);
    assert_eq!(index_entries(storage.as_ref(), "eu-west-1").await.len(), 1);
    assert_eq!(all_pages(&t, "eu-west-1", json!({})).await.0, vec!["a"]);

    t.ok(
        "RemoveRegionsFromReplication",
        json!({"SecretId": "a", "RemoveReplicaRegions": ["eu-west-1"]}),
    )
    .await;
    assert!(index_entries(storage.as_ref(), "eu-west-1").await.is_empty());
    t.ok(
        "ReplicateSecretToRegions",
        json!({"SecretId": "b", "AddReplicaRegions": [{"Region": "eu-west-1"}]}),
    )
    .await;
    assert_eq!(all_pages(&t, "eu-west-1", json!({})).await.0, vec!["b"]);

    t.ok(
        "DeleteSecret",
        json!({"SecretId": "a", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    t.advance(Duration::seconds(1));
    t.ok("CreateSecret", json!({"Name": "a", "SecretString": "2"})).await;
    assert_eq!(index_entries(storage.as_ref(), "us-east-1").await.len(), 2);
    assert_eq!(all_pages(&t, "us-east-1", json!({})).await.0, vec!["b", "a"]);
    // A stale entry (as an erase racing the one-time build could leave) is skipped.
    let stale = format!(
        "{}{}/{}",
        names::created_prefix("123456789012", "us-east-1"),
        paging::num_key(1),
        "b"
    );
    storage
        .put(&stale, coffer_crypto::SecretBytes::new(Vec::new()))
        .await
        .unwrap();
    assert_eq!(all_pages(&t, "us-east-1", json!({})).await.0, vec!["b", "a"]);
}

/// A store written before the index existed gets it built by the first listing.
#[tokio::test]
async fn creation_index_is_built_for_older_stores() {
    let storage = Arc::new(MemoryStorage::new());
    let t = T::with_storage(storage.clone());
    for name in ["c", "a", "b"] {
        t.ok("CreateSecret", json!({"Name": name, "SecretString": "1"})).await;
        t.advance(Duration::seconds(1));
    }
    // What an older store looks like: no entries, no marker.
    for key in index_entries(storage.as_ref(), "us-east-1").await {
        let full = format!("{}{key}", names::created_prefix("123456789012", "us-east-1"));
        storage.delete(&full).await.unwrap();
    }
    storage.delete(names::CREATED_INDEX_MARKER).await.unwrap();

    let restarted = T::with_storage(storage.clone());
    *restarted.now.lock().unwrap() = *t.now.lock().unwrap();
    assert_eq!(
        all_pages(&restarted, "us-east-1", json!({})).await.0,
        vec!["c", "a", "b"]
    );
    assert_eq!(index_entries(storage.as_ref(), "us-east-1").await.len(), 3);
    assert!(storage.get(names::CREATED_INDEX_MARKER).await.unwrap().is_some());
    restarted
        .ok("CreateSecret", json!({"Name": "d", "SecretString": "1"}))
        .await;
    assert_eq!(
        all_pages(&restarted, "us-east-1", json!({"SortOrder": "desc"})).await.0,
        vec!["d", "b", "a", "c"]
    );
}

/// The engine tests again, without a key service (the plain value format).
mod plain_mode {
    macro_rules! plain {
        ($($name:ident),* $(,)?) => {$(
            #[test]
            fn $name() {
                super::PLAIN.with(|p| p.set(true));
                super::$name();
            }
        )*};
    }

    plain!(
        create_get_describe,
        binary_secrets_and_no_value_secrets,
        create_errors,
        lookup_by_name_full_and_partial_arn,
        idempotency_matrix,
        staging_labels_move,
        list_version_ids,
        version_retention,
        update_secret_metadata_only_and_with_value,
        tags,
        list_secrets_filters_sort_and_pages,
        batch_get_secret_value,
        delete_restore_and_purge,
        force_delete,
        reset_removes_everything,
        resource_policies,
        random_password_via_handle,
        rotation_creates_an_empty_pending_version,
        cancel_removes_an_unfilled_placeholder,
        replication,
        replication_conflicts,
        concurrent_puts_lose_nothing,
        failed_writes_leave_the_secret_unchanged,
        failed_create_leaves_nothing_behind,
        reads_do_not_write_more_than_once_a_day,
        every_write_to_a_replica_is_refused,
        moto_and_aws_recorded_details,
        creation_index_pages_match_a_walk_of_every_record,
        creation_index_follows_erasure_and_replication,
        creation_index_is_built_for_older_stores,
    );
}
