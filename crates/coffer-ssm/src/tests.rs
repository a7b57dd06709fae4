//! Engine-level tests over `MemoryStorage`, driving `SsmEngine::handle` with JSON as the AWS
//! front end does, with a controllable clock, a test KMS that can disable its key, a test
//! Secrets Manager and a storage that can fail writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use coffer_crypto::SecretString;
use coffer_crypto::aead::{self, Key256};
use coffer_engines::contracts::{
    DataKey, Decrypted, EncryptionContext, KeyService, ReferencedSecret, SecretReader, SecretValue,
};
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_storage::Storage;
use coffer_storage::fault::FailingStorage;
use coffer_storage::memory::MemoryStorage;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::*;

// ---------------------------------------------------------------------------------------
// Test doubles

/// A KMS with one key (`alias/aws/ssm`, also known as `alias/other`) that can be disabled.
struct TestKeys {
    key: Key256,
    disabled: AtomicBool,
}

impl TestKeys {
    fn new() -> Self {
        Self {
            key: Key256::generate().unwrap(),
            disabled: AtomicBool::new(false),
        }
    }

    fn check(&self, key_id: &str) -> Result<(), AwsError> {
        if key_id != "alias/aws/ssm" && key_id != "alias/other" {
            return Err(AwsError::new(
                AwsErrorCode::NotFoundException,
                format!("Alias {key_id} is not found."),
            ));
        }
        if self.disabled.load(Ordering::SeqCst) {
            return Err(AwsError::new(
                AwsErrorCode::DisabledException,
                "arn:aws:kms:k is disabled.",
            ));
        }
        Ok(())
    }

    fn aad(context: &EncryptionContext) -> Vec<u8> {
        serde_json::to_vec(context).unwrap()
    }
}

#[async_trait]
impl KeyService for TestKeys {
    async fn resolve_key_arn(&self, _: &RequestContext, key_id: &str) -> Result<String, AwsError> {
        self.check(key_id)?;
        Ok("arn:aws:kms:k".into())
    }
    async fn generate_data_key(
        &self,
        _: &RequestContext,
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<DataKey, AwsError> {
        self.check(key_id)?;
        let plaintext = coffer_crypto::random::secret_bytes(32).unwrap();
        let ciphertext_blob = aead::seal(&self.key, &Self::aad(context), plaintext.expose()).unwrap();
        Ok(DataKey {
            plaintext,
            ciphertext_blob,
            key_arn: "arn:aws:kms:k".into(),
        })
    }
    async fn encrypt(
        &self,
        _: &RequestContext,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<(Vec<u8>, String), AwsError> {
        self.check(key_id)?;
        assert!(plaintext.len() <= 4096);
        Ok((
            aead::seal(&self.key, &Self::aad(context), plaintext).unwrap(),
            "arn:aws:kms:k".into(),
        ))
    }
    async fn decrypt(
        &self,
        _: &RequestContext,
        blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted, AwsError> {
        self.check("alias/aws/ssm")?;
        let plaintext = aead::open(&self.key, &Self::aad(context), blob)
            .map_err(|_| AwsError::new(AwsErrorCode::InvalidCiphertextException, ""))?;
        Ok(Decrypted {
            plaintext,
            key_arn: "arn:aws:kms:k".into(),
        })
    }
}

/// Secrets Manager with fixed secrets: name -> [(version id, stages, value)].
#[derive(Default)]
struct TestSecrets {
    secrets: HashMap<String, Vec<(String, Vec<String>, String)>>,
}

#[async_trait]
impl SecretReader for TestSecrets {
    async fn read_secret(
        &self,
        _: &RequestContext,
        secret_id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<ReferencedSecret, AwsError> {
        let nf = || AwsError::not_found("Secrets Manager can't find the specified secret.");
        let versions = self.secrets.get(secret_id).ok_or_else(nf)?;
        let stage = version_stage.unwrap_or("AWSCURRENT");
        let (vid, stages, value) = versions
            .iter()
            .find(|(vid, stages, _)| match version_id {
                Some(v) => vid == v,
                None => stages.iter().any(|s| s == stage),
            })
            .ok_or_else(nf)?;
        Ok(ReferencedSecret {
            name: secret_id.into(),
            arn: format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret_id}-AbCdEf"),
            version_id: vid.clone(),
            version_stages: stages.clone(),
            created_date: 1_700_000_000.0,
            value: SecretValue::String(SecretString::new(value.clone())),
            metadata: json!({"ARN": format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret_id}-AbCdEf"), "Name": secret_id}),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Harness

struct T {
    engine: SsmEngine,
    keys: Arc<TestKeys>,
    storage: Arc<dyn Storage>,
    now: std::sync::Mutex<OffsetDateTime>,
}

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap() + Duration::milliseconds(250)
}

impl T {
    fn new() -> Self {
        Self::with_storage(Arc::new(MemoryStorage::new()))
    }

    fn with_storage(storage: Arc<dyn Storage>) -> Self {
        let keys = Arc::new(TestKeys::new());
        let mut secrets = TestSecrets::default();
        secrets.secrets.insert(
            "db".into(),
            vec![
                (
                    "11111111-1111-4111-8111-111111111111".into(),
                    vec!["AWSPREVIOUS".into()],
                    "old".into(),
                ),
                (
                    "22222222-2222-4222-8222-222222222222".into(),
                    vec!["AWSCURRENT".into()],
                    "new".into(),
                ),
            ],
        );
        Self {
            engine: SsmEngine::new(storage.clone(), keys.clone(), Arc::new(secrets)),
            keys,
            storage,
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

    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap()
    }

    fn advance(&self, d: Duration) {
        *self.now.lock().unwrap() += d;
    }

    async fn call_in(&self, region: &str, op: &str, body: Value) -> Result<Value, AwsError> {
        self.engine.handle(&self.ctx_in(region), op, body).await
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call_in("us-east-1", op, body).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    async fn err(&self, op: &str, body: Value) -> AwsError {
        match self.call_in("us-east-1", op, body).await {
            Ok(v) => panic!("{op} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }

    async fn put(&self, name: &str, value: &str, ty: &str) -> Value {
        self.ok("PutParameter", json!({"Name": name, "Value": value, "Type": ty}))
            .await
    }

    async fn value(&self, name: &str) -> String {
        self.ok("GetParameter", json!({"Name": name, "WithDecryption": true}))
            .await["Parameter"]["Value"]
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn names_by_path(&self, body: Value) -> Vec<String> {
        let mut out = Vec::new();
        let mut body = body;
        loop {
            let r = self.ok("GetParametersByPath", body.clone()).await;
            for p in r["Parameters"].as_array().unwrap() {
                out.push(p["Name"].as_str().unwrap().to_string());
            }
            match r.get("NextToken") {
                Some(t) => body["NextToken"] = t.clone(),
                None => break,
            }
        }
        out.sort();
        out
    }

    async fn describe_names(&self, body: Value) -> Vec<String> {
        let r = self.ok("DescribeParameters", body).await;
        r["Parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["Name"].as_str().unwrap().to_string())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------
// Put / Get

#[tokio::test]
async fn put_get_string_and_string_list() {
    let t = T::new();
    let r = t
        .ok(
            "PutParameter",
            json!({"Name": "/app/db/host", "Value": "db.local", "Type": "String", "Description": "d"}),
        )
        .await;
    assert_eq!(r, json!({"Version": 1, "Tier": "Standard"}));
    let p = t.ok("GetParameter", json!({"Name": "/app/db/host"})).await["Parameter"].clone();
    assert_eq!(p["Name"], "/app/db/host");
    assert_eq!(p["Type"], "String");
    assert_eq!(p["Value"], "db.local");
    assert_eq!(p["Version"], 1);
    assert_eq!(p["DataType"], "text");
    assert_eq!(p["ARN"], "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/host");
    assert_eq!(p["LastModifiedDate"].as_f64().unwrap(), 1_700_000_000.25);
    assert!(p.get("Selector").is_none());
    t.put("list", "a,b,c", "StringList").await;
    assert_eq!(t.value("list").await, "a,b,c");
    // Same name with and without the leading slash for single-level names.
    assert_eq!(
        t.ok("GetParameter", json!({"Name": "/list"})).await["Parameter"]["Name"],
        "/list"
    );
    let by_arn = t
        .ok(
            "GetParameter",
            json!({"Name": "arn:aws:ssm:us-east-1:123456789012:parameter/app/db/host"}),
        )
        .await;
    assert_eq!(by_arn["Parameter"]["Name"], "/app/db/host");
    // Regions are separate.
    assert_eq!(
        t.call_in("eu-west-1", "GetParameter", json!({"Name": "list"}))
            .await
            .err()
            .unwrap()
            .code,
        AwsErrorCode::ParameterNotFound
    );
}

#[tokio::test]
async fn put_validation_and_errors() {
    let t = T::new();
    let e = t.err("PutParameter", json!({"Name": "x", "Value": "v"})).await;
    assert_eq!(e.message, "A parameter type is required when you create a parameter.");
    let e = t
        .err("PutParameter", json!({"Name": "x", "Value": "", "Type": "String"}))
        .await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
    let e = t
        .err("PutParameter", json!({"Name": "x", "Value": "v", "Type": "str"}))
        .await;
    assert!(e.message.contains("[SecureString, StringList, String]"));
    let e = t
        .err(
            "PutParameter",
            json!({"Name": "x", "Value": "v", "Type": "String", "DataType": "nope"}),
        )
        .await;
    assert_eq!(
        e.message,
        "The following data type is not supported: nope (Data type names are all lowercase.)"
    );
    let e = t
        .err(
            "PutParameter",
            json!({"Name": "/aws/x", "Value": "v", "Type": "String"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::AccessDeniedException);
    let deep = "/a".repeat(16);
    let e = t
        .err("PutParameter", json!({"Name": deep, "Value": "v", "Type": "String"}))
        .await;
    assert_eq!(e.code, AwsErrorCode::HierarchyLevelLimitExceededException);
    t.put("x", "v", "String").await;
    let e = t
        .err("PutParameter", json!({"Name": "x", "Value": "v2", "Type": "String"}))
        .await;
    assert_eq!(e.code, AwsErrorCode::ParameterAlreadyExists);
    let e = t
        .err(
            "PutParameter",
            json!({"Name": "x", "Value": "v2", "Overwrite": true, "Tags": [{"Key": "k", "Value": "v"}]}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
    let e = t
        .err(
            "PutParameter",
            json!({"Name": "x", "Value": "v2", "Type": "SecureString", "Overwrite": true}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::HierarchyTypeMismatchException);
    // Sizes: 4 KB standard, 8 KB advanced, never downgrade.
    let big = "x".repeat(5000);
    let e = t
        .err("PutParameter", json!({"Name": "big", "Value": big, "Type": "String"}))
        .await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
    let r = t
        .ok(
            "PutParameter",
            json!({"Name": "big", "Value": big, "Type": "String", "Tier": "Intelligent-Tiering"}),
        )
        .await;
    assert_eq!(r["Tier"], "Advanced");
    let e = t
        .err(
            "PutParameter",
            json!({"Name": "big", "Value": "s", "Tier": "Standard", "Overwrite": true}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
    let e = t
        .err(
            "PutParameter",
            json!({"Name": "huge", "Value": "x".repeat(9000), "Type": "String", "Tier": "Advanced"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
}

#[tokio::test]
async fn allowed_pattern_and_overwrite_keep_metadata() {
    let t = T::new();
    t.ok(
        "PutParameter",
        json!({"Name": "n", "Value": "123", "Type": "String", "AllowedPattern": "^\\d+$", "Description": "num"}),
    )
    .await;
    let e = t
        .err("PutParameter", json!({"Name": "n", "Value": "abc", "Overwrite": true}))
        .await;
    assert_eq!(e.code, AwsErrorCode::ParameterPatternMismatchException);
    assert!(!e.message.contains("abc"));
    let e = t
        .err(
            "PutParameter",
            json!({"Name": "m", "Value": "1", "Type": "String", "AllowedPattern": "("}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidAllowedPatternException);
    let r = t
        .ok("PutParameter", json!({"Name": "n", "Value": "456", "Overwrite": true}))
        .await;
    assert_eq!(r["Version"], 2);
    let d = &t.ok("DescribeParameters", json!({})).await["Parameters"][0];
    assert_eq!(d["Description"], "num");
    assert_eq!(d["AllowedPattern"], "^\\d+$");
    assert_eq!(d["Version"], 2);
    assert_eq!(d["LastModifiedUser"], "arn:aws:iam::123456789012:root");
}

#[tokio::test]
async fn secure_string_is_encrypted_and_governed_by_the_key() {
    let t = T::new();
    t.put("/s/pw", "hunter2", "SecureString").await;
    let raw = t.ok("GetParameter", json!({"Name": "/s/pw"})).await["Parameter"]["Value"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(raw, "hunter2");
    assert!(!raw.contains("hunter2"));
    assert_eq!(t.value("/s/pw").await, "hunter2");
    // Nothing in storage holds the plaintext.
    for k in t.storage.scan("", None, 1000).await.unwrap() {
        let v = t.storage.get(&k).await.unwrap().unwrap();
        assert!(!v.expose().windows(7).any(|w| w == b"hunter2"), "{k}");
    }
    let d = &t.ok("DescribeParameters", json!({})).await["Parameters"][0];
    assert_eq!(d["KeyId"], "alias/aws/ssm");
    // Advanced values use envelope encryption.
    let big = "y".repeat(6000);
    t.ok(
        "PutParameter",
        json!({"Name": "/s/big", "Value": big, "Type": "SecureString", "Tier": "Advanced", "KeyId": "alias/other"}),
    )
    .await;
    assert_eq!(t.value("/s/big").await, big);
    // Unknown key: InvalidKeyId.
    let e = t
        .err(
            "PutParameter",
            json!({"Name": "/s/x", "Value": "v", "Type": "SecureString", "KeyId": "alias/nope"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidKeyId);
    // Disabled key: reads with decryption fail with InvalidKeyId; ciphertext reads still work.
    t.keys.disabled.store(true, Ordering::SeqCst);
    let e = t
        .err("GetParameter", json!({"Name": "/s/pw", "WithDecryption": true}))
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidKeyId);
    assert!(!e.message.contains("hunter2"));
    t.ok("GetParameter", json!({"Name": "/s/pw"})).await;
    t.keys.disabled.store(false, Ordering::SeqCst);
    assert_eq!(t.value("/s/pw").await, "hunter2");
}

// ---------------------------------------------------------------------------------------
// Selectors, labels, history

#[tokio::test]
async fn selectors_labels_and_history() {
    let t = T::new();
    for i in 1..=3 {
        t.ok(
            "PutParameter",
            json!({"Name": "p", "Value": format!("v{i}"), "Type": "String", "Overwrite": true}),
        )
        .await;
    }
    let r = t.ok("GetParameter", json!({"Name": "p:2"})).await;
    assert_eq!(r["Parameter"]["Value"], "v2");
    assert_eq!(r["Parameter"]["Selector"], ":2");
    assert_eq!(r["Parameter"]["Name"], "p");
    let e = t.err("GetParameter", json!({"Name": "p:9"})).await;
    assert_eq!(e.code, AwsErrorCode::ParameterVersionNotFound);
    assert_eq!(
        e.message,
        "Systems Manager could not find version 9 of p. Verify the version and try again."
    );
    assert_eq!(
        t.err("GetParameter", json!({"Name": "p:1:2"})).await.message,
        "Parameter p:1:2 not found."
    );

    let r = t
        .ok(
            "LabelParameterVersion",
            json!({"Name": "p", "ParameterVersion": 1, "Labels": ["prod", "9bad", "awsx", "ok.1"]}),
        )
        .await;
    assert_eq!(r, json!({"InvalidLabels": ["9bad", "awsx"], "ParameterVersion": 1}));
    let r = t.ok("GetParameter", json!({"Name": "p:prod"})).await;
    assert_eq!(r["Parameter"]["Value"], "v1");
    assert_eq!(r["Parameter"]["Selector"], ":prod");
    // A label moves to the version it is put on.
    t.ok("LabelParameterVersion", json!({"Name": "p", "Labels": ["prod"]}))
        .await;
    assert_eq!(
        t.ok("GetParameter", json!({"Name": "p:prod"})).await["Parameter"]["Value"],
        "v3"
    );
    let g = t
        .ok(
            "GetParameters",
            json!({"Names": ["p:prod", "p:nope", "p:7", "missing", "p"]}),
        )
        .await;
    assert_eq!(g["Parameters"].as_array().unwrap().len(), 2);
    assert_eq!(g["InvalidParameters"], json!(["p:nope", "p:7", "missing"]));

    let h = t.ok("GetParameterHistory", json!({"Name": "p"})).await;
    let items = h["Parameters"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0]["Labels"], json!(["ok.1"]));
    assert_eq!(items[2]["Labels"], json!(["prod"]));
    let page = t.ok("GetParameterHistory", json!({"Name": "p", "MaxResults": 2})).await;
    assert_eq!(page["Parameters"].as_array().unwrap().len(), 2);
    let rest = t
        .ok(
            "GetParameterHistory",
            json!({"Name": "p", "MaxResults": 2, "NextToken": page["NextToken"]}),
        )
        .await;
    assert_eq!(rest["Parameters"][0]["Version"], 3);
    assert!(rest.get("NextToken").is_none());
    let e = t
        .err("GetParameterHistory", json!({"Name": "p", "NextToken": "zz"}))
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidNextToken);

    let r = t
        .ok(
            "UnlabelParameterVersion",
            json!({"Name": "p", "ParameterVersion": 3, "Labels": ["prod", "nope"]}),
        )
        .await;
    assert_eq!(r, json!({"RemovedLabels": ["prod"], "InvalidLabels": ["nope"]}));
    let e = t
        .err(
            "UnlabelParameterVersion",
            json!({"Name": "p", "ParameterVersion": 9, "Labels": ["x"]}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ParameterVersionNotFound);
    let many: Vec<String> = (0..11).map(|i| format!("l{i}")).collect();
    let e = t
        .err("LabelParameterVersion", json!({"Name": "p", "Labels": many}))
        .await;
    assert_eq!(e.code, AwsErrorCode::ParameterVersionLabelLimitExceeded);
}

#[tokio::test]
async fn version_limit_prunes_the_oldest_unless_labelled() {
    let t = T::new();
    for i in 1..=101 {
        t.ok(
            "PutParameter",
            json!({"Name": "v", "Value": format!("{i}"), "Type": "String", "Overwrite": true}),
        )
        .await;
    }
    let h = t.ok("GetParameterHistory", json!({"Name": "v"})).await;
    assert_eq!(h["Parameters"][0]["Version"], 2);
    t.ok(
        "LabelParameterVersion",
        json!({"Name": "v", "ParameterVersion": 2, "Labels": ["keep"]}),
    )
    .await;
    let e = t
        .err("PutParameter", json!({"Name": "v", "Value": "x", "Overwrite": true}))
        .await;
    assert_eq!(e.code, AwsErrorCode::ParameterMaxVersionLimitExceeded);
    assert!(e.message.contains("Version 2, the oldest version"));
    assert_eq!(t.value("v").await, "101");
}

// ---------------------------------------------------------------------------------------
// Paths, describe, filters

async fn seed_tree(t: &T) {
    for (n, ty) in [
        ("/foo/name1", "String"),
        ("/foo/name2", "String"),
        ("/bar/name3", "String"),
        ("/bar/name3/name4", "String"),
        ("/baz/list", "StringList"),
        ("/baz/pwd", "SecureString"),
        ("foo", "String"),
        ("baz", "String"),
    ] {
        t.put(n, "v,w", ty).await;
    }
}

#[tokio::test]
async fn get_parameters_by_path_levels_filters_and_pages() {
    let t = T::new();
    seed_tree(&t).await;
    assert_eq!(t.names_by_path(json!({"Path": "/"})).await, vec!["baz", "foo"]);
    assert_eq!(t.names_by_path(json!({"Path": "/", "Recursive": true})).await.len(), 8);
    assert_eq!(t.names_by_path(json!({"Path": "/bar"})).await, vec!["/bar/name3"]);
    assert_eq!(
        t.names_by_path(json!({"Path": "/bar/", "Recursive": true})).await.len(),
        2
    );
    assert_eq!(
        t.names_by_path(json!({"Path": "/", "Recursive": true, "MaxResults": 3}))
            .await
            .len(),
        8
    );
    let f = json!([{"Key": "Type", "Values": ["SecureString"]}]);
    assert_eq!(
        t.names_by_path(json!({"Path": "/baz", "ParameterFilters": f})).await,
        vec!["/baz/pwd"]
    );
    let f = json!([{"Key": "KeyId", "Option": "BeginsWith", "Values": ["alias/"]}]);
    assert_eq!(
        t.names_by_path(json!({"Path": "/baz", "ParameterFilters": f})).await,
        vec!["/baz/pwd"]
    );
    let e = t
        .err(
            "GetParametersByPath",
            json!({"Path": "/", "ParameterFilters": [{"Key": "Name", "Values": ["x"]}]}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidFilterKey);
    let e = t
        .err("GetParametersByPath", json!({"Path": "/", "MaxResults": 11}))
        .await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
    let e = t.err("GetParametersByPath", json!({"Path": "nope"})).await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
    // SecureString values come back decrypted only on request.
    let r = t
        .ok("GetParametersByPath", json!({"Path": "/baz", "WithDecryption": true}))
        .await;
    assert!(r["Parameters"].as_array().unwrap().iter().all(|p| p["Value"] == "v,w"));
}

#[tokio::test]
async fn describe_filters_and_validation() {
    let t = T::new();
    seed_tree(&t).await;
    t.ok(
        "AddTagsToResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/foo/name1", "Tags": [{"Key": "env", "Value": "prod"}]}),
    )
    .await;
    let names = t
        .describe_names(json!({"ParameterFilters": [{"Key": "Path", "Values": ["/foo"]}]}))
        .await;
    assert_eq!(names, vec!["/foo/name1", "/foo/name2"]);
    let names = t
        .describe_names(json!({"ParameterFilters": [{"Key": "Path", "Option": "Recursive", "Values": ["/bar"]}]}))
        .await;
    assert_eq!(names.len(), 2);
    let names = t
        .describe_names(json!({"ParameterFilters": [{"Key": "Name", "Option": "Contains", "Values": ["name"]}]}))
        .await;
    assert_eq!(names.len(), 4);
    let names = t
        .describe_names(json!({"ParameterFilters": [{"Key": "Name", "Values": ["/foo"]}]}))
        .await;
    assert_eq!(names, vec!["foo"]);
    let names = t
        .describe_names(json!({"ParameterFilters": [{"Key": "tag:env", "Values": ["prod"]}]}))
        .await;
    assert_eq!(names, vec!["/foo/name1"]);
    let names = t
        .describe_names(json!({"ParameterFilters": [{"Key": "tag:env"}]}))
        .await;
    assert_eq!(names, vec!["/foo/name1"]);
    let names = t
        .describe_names(json!({"Filters": [{"Key": "Type", "Values": ["StringList"]}]}))
        .await;
    assert_eq!(names, vec!["/baz/list"]);
    let names = t
        .describe_names(json!({"ParameterFilters": [{"Key": "Tier", "Values": ["Standard"]}], "MaxResults": 50}))
        .await;
    assert_eq!(names.len(), 8);

    let e = t.err("DescribeParameters", json!({"Filters": [{"Key": "Name", "Values": ["x"]}], "ParameterFilters": [{"Key": "Name", "Values": ["x"]}]})).await;
    assert_eq!(
        e.message,
        "You can use either Filters or ParameterFilters in a single request."
    );
    let e = t
        .err(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "key"}, {"Key": "Name", "Option": "over 10 chars"}]}),
        )
        .await;
    assert!(e.message.starts_with("2 validation errors detected:"));
    let e = t
        .err(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Label", "Values": ["x"]}]}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidFilterKey);
    let e = t
        .err(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Path", "Option": "Equals", "Values": ["/x"]}]}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidFilterOption);
    let e = t
        .err(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Type", "Values": ["x"]}]}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidFilterValue);
    let e = t
        .err(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Path", "Values": ["/aws"]}]}),
        )
        .await;
    assert!(e.message.starts_with("Filters for common parameters"));
    let e = t
        .err(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Path", "Values": ["//"]}]}),
        )
        .await;
    assert_eq!(e.message, names::INVALID_PATH);
    let e = t.err("DescribeParameters", json!({"MaxResults": 51})).await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
}

#[tokio::test]
async fn describe_paginates() {
    let t = T::new();
    for i in 0..25 {
        t.put(&format!("p{i:02}"), "v", "String").await;
    }
    let mut all = Vec::new();
    let mut body = json!({"MaxResults": 10});
    loop {
        let r = t.ok("DescribeParameters", body.clone()).await;
        all.extend(
            r["Parameters"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["Name"].as_str().unwrap().to_string()),
        );
        match r.get("NextToken") {
            Some(tok) => body["NextToken"] = tok.clone(),
            None => break,
        }
    }
    assert_eq!(all.len(), 25);
    assert_eq!(all[0], "p00");
    assert_eq!(all[24], "p24");
}

// ---------------------------------------------------------------------------------------
// Delete, tags, references

#[tokio::test]
async fn delete_and_tags() {
    let t = T::new();
    t.ok(
        "PutParameter",
        json!({"Name": "/t/a", "Value": "v", "Type": "String", "Tags": [{"Key": "a", "Value": "1"}]}),
    )
    .await;
    t.ok("AddTagsToResource", json!({"ResourceType": "Parameter", "ResourceId": "/t/a", "Tags": [{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}]})).await;
    let l = t
        .ok(
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/t/a"}),
        )
        .await;
    assert_eq!(
        l["TagList"],
        json!([{"Key": "a", "Value": "2"}, {"Key": "b", "Value": "3"}])
    );
    t.ok(
        "RemoveTagsFromResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/t/a", "TagKeys": ["a"]}),
    )
    .await;
    let l = t
        .ok(
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/t/a"}),
        )
        .await;
    assert_eq!(l["TagList"], json!([{"Key": "b", "Value": "3"}]));
    let e = t
        .err(
            "ListTagsForResource",
            json!({"ResourceType": "Document", "ResourceId": "/t/a"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidResourceType);
    let e = t
        .err(
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/t/none"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::InvalidResourceId);

    t.ok("DeleteParameter", json!({"Name": "/t/a"})).await;
    let e = t.err("DeleteParameter", json!({"Name": "/t/a"})).await;
    assert_eq!(e.message, "Parameter /t/a not found.");
    assert!(t.storage.scan("", None, 10).await.unwrap().is_empty());
    t.put("x1", "v", "String").await;
    let r = t.ok("DeleteParameters", json!({"Names": ["x1", "x2"]})).await;
    assert_eq!(r, json!({"DeletedParameters": ["x1"], "InvalidParameters": ["x2"]}));
}

#[tokio::test]
async fn secrets_manager_references() {
    let t = T::new();
    let e = t
        .err("GetParameter", json!({"Name": "/aws/reference/secretsmanager/db"}))
        .await;
    assert_eq!(
        e.message,
        "WithDecryption flag must be True for retrieving a Secret Manager secret."
    );
    let p = t
        .ok(
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/db", "WithDecryption": true}),
        )
        .await["Parameter"]
        .clone();
    assert_eq!(p["Value"], "new");
    assert_eq!(p["Type"], "SecureString");
    assert_eq!(p["Name"], "/aws/reference/secretsmanager/db");
    let src: Value = serde_json::from_str(p["SourceResult"].as_str().unwrap()).unwrap();
    assert_eq!(src["Name"], "db");
    let p = t
        .ok(
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/db:AWSPREVIOUS", "WithDecryption": true}),
        )
        .await;
    assert_eq!(p["Parameter"]["Value"], "old");
    assert_eq!(p["Parameter"]["Selector"], ":AWSPREVIOUS");
    let p = t
        .ok("GetParameter", json!({"Name": "/aws/reference/secretsmanager/db:11111111-1111-4111-8111-111111111111", "WithDecryption": true}))
        .await;
    assert_eq!(p["Parameter"]["Value"], "old");
    let e = t
        .err(
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/none", "WithDecryption": true}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::ParameterNotFound);
    let g = t
        .ok("GetParameters", json!({"Names": ["/aws/reference/secretsmanager/db", "/aws/reference/secretsmanager/none"], "WithDecryption": true}))
        .await;
    assert_eq!(g["Parameters"].as_array().unwrap().len(), 1);
    assert_eq!(g["InvalidParameters"], json!(["/aws/reference/secretsmanager/none"]));
    // The reserved prefix can't be written.
    let e = t
        .err(
            "PutParameter",
            json!({"Name": "/aws/reference/secretsmanager/db", "Value": "v", "Type": "String"}),
        )
        .await;
    assert_eq!(e.code, AwsErrorCode::AccessDeniedException);
}

// ---------------------------------------------------------------------------------------
// Policies and expiration

#[tokio::test]
async fn expiration_policy_deletes_the_parameter_when_it_passes() {
    let t = T::new();
    let policy = r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2023-11-14T23:00:00.000Z"}}]"#;
    let e = t
        .err(
            "PutParameter",
            json!({"Name": "e", "Value": "v", "Type": "String", "Policies": policy}),
        )
        .await;
    assert_eq!(
        e.code,
        AwsErrorCode::ValidationException,
        "standard tier has no policies"
    );
    t.ok(
        "PutParameter",
        json!({"Name": "e", "Value": "v", "Type": "String", "Policies": policy, "Tier": "Advanced"}),
    )
    .await;
    t.put("keep", "v", "String").await;
    let d = &t
        .ok(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Values": ["e"]}]}),
        )
        .await["Parameters"][0];
    assert_eq!(d["Policies"][0]["PolicyType"], "Expiration");
    assert_eq!(d["Policies"][0]["PolicyStatus"], "Pending");
    assert_eq!(t.engine.background(t.now()).await.unwrap(), 0);
    t.advance(Duration::hours(2));
    assert_eq!(t.engine.background(t.now()).await.unwrap(), 1);
    assert_eq!(
        t.err("GetParameter", json!({"Name": "e"})).await.code,
        AwsErrorCode::ParameterNotFound
    );
    assert_eq!(t.value("keep").await, "v");
    // Intelligent-Tiering with a policy picks Advanced.
    let later = r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2030-01-01T00:00:00Z"}}]"#;
    let r = t
        .ok(
            "PutParameter",
            json!({"Name": "i", "Value": "v", "Type": "String", "Policies": later, "Tier": "Intelligent-Tiering"}),
        )
        .await;
    assert_eq!(r["Tier"], "Advanced");
}

// ---------------------------------------------------------------------------------------
// Failure atomicity, reset, unknown operations

#[tokio::test]
async fn a_failed_write_changes_nothing() {
    let storage = Arc::new(FailingStorage::new());
    let t = T::with_storage(storage.clone());
    t.put("a", "one", "String").await;
    storage.set_failing(true);
    let e = t
        .err("PutParameter", json!({"Name": "a", "Value": "two", "Overwrite": true}))
        .await;
    assert_eq!(e.code, AwsErrorCode::InternalServiceError);
    assert!(t.err("DeleteParameter", json!({"Name": "a"})).await.code == AwsErrorCode::InternalServiceError);
    assert!(
        t.err("LabelParameterVersion", json!({"Name": "a", "Labels": ["l"]}))
            .await
            .code
            == AwsErrorCode::InternalServiceError
    );
    storage.set_failing(false);
    assert_eq!(t.value("a").await, "one");
    let h = t.ok("GetParameterHistory", json!({"Name": "a"})).await;
    assert_eq!(h["Parameters"].as_array().unwrap().len(), 1);
    assert_eq!(h["Parameters"][0]["Labels"], json!([]));
    let r = t
        .ok("PutParameter", json!({"Name": "a", "Value": "two", "Overwrite": true}))
        .await;
    assert_eq!(r["Version"], 2);
    assert!(storage.writes() > 0);
}

#[tokio::test]
async fn reset_and_unknown_operations() {
    let t = T::new();
    seed_tree(&t).await;
    t.engine.reset().await.unwrap();
    assert!(t.storage.scan("", None, 10).await.unwrap().is_empty());
    let e = t.err("SendCommand", json!({})).await;
    assert_eq!(e.code, AwsErrorCode::UnknownOperationException);
    let e = t.err("GetParameter", json!({"Name": 5})).await;
    assert_eq!(e.code, AwsErrorCode::SerializationException);
    let e = t.err("GetParameter", json!({})).await;
    assert_eq!(e.code, AwsErrorCode::ValidationException);
}

mod fuzz;
