//! Fuzz targets of the Secrets Manager engine: the awsJson decoder (`input`) behind every
//! operation, and the stored secret record (postcard, and the legacy JSON form) as the engine
//! reads it back. See `docs/reliability.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use coffer_crypto::SecretBytes;
use coffer_fuzz::{Fuzz, fuzz_operations, runtime};
use coffer_storage::Storage;
use coffer_storage::memory::MemoryStorage;
use serde_json::{Value, json};
use time::OffsetDateTime;

use super::model::{SecretHeader, SecretRecord};
use super::{OPERATIONS, SecretsEngine, test_kms};
use crate::RequestContext;

const MEMBERS: &[&str] = &[
    "Name",
    "SecretId",
    "SecretString",
    "SecretBinary",
    "ClientRequestToken",
    "VersionId",
    "VersionStage",
    "VersionStages",
    "MoveToVersionId",
    "RemoveFromVersionId",
    "KmsKeyId",
    "Description",
    "Tags",
    "TagKeys",
    "Key",
    "Value",
    "Filters",
    "Values",
    "MaxResults",
    "NextToken",
    "SortOrder",
    "IncludePlannedDeletion",
    "RecoveryWindowInDays",
    "ForceDeleteWithoutRecovery",
    "SecretIdList",
    "ResourcePolicy",
    "BlockPublicPolicy",
    "RotationRules",
    "AutomaticallyAfterDays",
    "ScheduleExpression",
    "Duration",
    "RotationLambdaARN",
    "RotateImmediately",
    "AddReplicaRegions",
    "Region",
    "RemoveReplicaRegions",
    "ForceOverwriteReplicaSecret",
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "RequireEachIncludedType",
    "AWSCURRENT",
    "AWSPENDING",
    "AWSPREVIOUS",
    "app/db",
    "tag-key",
    "all",
    "eu-west-1",
    "rate(10 days)",
    "cron(0 16 1,15 * ? *)",
    "alias/mine",
    "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db",
];

fn ctx() -> RequestContext {
    RequestContext {
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        principal_arn: "arn:aws:iam::123456789012:root".into(),
        now: OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
    }
}

fn engine(storage: Arc<MemoryStorage>) -> SecretsEngine {
    let kms = test_kms::TestKms::with_auto_aliases(&["alias/mine"]);
    SecretsEngine::new(storage).with_key_service(Arc::new(kms))
}

/// Real requests, one per line group: `Operation` then the JSON body.
fn requests() -> Vec<(String, Value)> {
    let token = "802dbdf7-e34d-4aac-9cdf-fefcf8905d47";
    vec![
        (
            "CreateSecret".into(),
            json!({"Name": "app/db", "SecretString": "{\"u\":\"a\"}", "ClientRequestToken": token, "Description": "db", "Tags": [{"Key": "env", "Value": "prod"}]}),
        ),
        (
            "CreateSecret".into(),
            json!({"Name": "bin", "SecretBinary": "AAECAw==", "KmsKeyId": "alias/mine"}),
        ),
        (
            "GetSecretValue".into(),
            json!({"SecretId": "app/db", "VersionStage": "AWSCURRENT"}),
        ),
        ("BatchGetSecretValue".into(), json!({"SecretIdList": ["app/db", "bin"]})),
        (
            "PutSecretValue".into(),
            json!({"SecretId": "app/db", "SecretString": "v2", "VersionStages": ["AWSCURRENT", "x"]}),
        ),
        (
            "UpdateSecret".into(),
            json!({"SecretId": "app/db", "Description": "d2", "KmsKeyId": "alias/mine"}),
        ),
        (
            "DescribeSecret".into(),
            json!({"SecretId": "arn:aws:secretsmanager:us-east-1:123456789012:secret:app/db"}),
        ),
        (
            "ListSecrets".into(),
            json!({"MaxResults": 2, "Filters": [{"Key": "tag-key", "Values": ["env", "!x"]}], "SortOrder": "desc", "IncludePlannedDeletion": true}),
        ),
        (
            "ListSecretVersionIds".into(),
            json!({"SecretId": "app/db", "IncludeDeprecated": true, "MaxResults": 1}),
        ),
        (
            "UpdateSecretVersionStage".into(),
            json!({"SecretId": "app/db", "VersionStage": "x", "MoveToVersionId": token}),
        ),
        (
            "TagResource".into(),
            json!({"SecretId": "app/db", "Tags": [{"Key": "team", "Value": "blue"}]}),
        ),
        (
            "UntagResource".into(),
            json!({"SecretId": "app/db", "TagKeys": ["team"]}),
        ),
        (
            "GetRandomPassword".into(),
            json!({"PasswordLength": 32, "ExcludeCharacters": "abc", "RequireEachIncludedType": true}),
        ),
        (
            "PutResourcePolicy".into(),
            json!({"SecretId": "app/db", "BlockPublicPolicy": true, "ResourcePolicy": "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Principal\":{\"AWS\":\"123456789012\"},\"Action\":\"secretsmanager:GetSecretValue\",\"Resource\":\"*\"}]}"}),
        ),
        ("GetResourcePolicy".into(), json!({"SecretId": "app/db"})),
        ("ValidateResourcePolicy".into(), json!({"ResourcePolicy": "{}"})),
        (
            "RotateSecret".into(),
            json!({"SecretId": "app/db", "RotationRules": {"ScheduleExpression": "rate(10 days)", "Duration": "2h"}, "RotateImmediately": false}),
        ),
        ("CancelRotateSecret".into(), json!({"SecretId": "app/db"})),
        (
            "ReplicateSecretToRegions".into(),
            json!({"SecretId": "app/db", "AddReplicaRegions": [{"Region": "eu-west-1", "KmsKeyId": "alias/mine"}]}),
        ),
        (
            "RemoveRegionsFromReplication".into(),
            json!({"SecretId": "app/db", "RemoveReplicaRegions": ["eu-west-1"]}),
        ),
        (
            "DeleteSecret".into(),
            json!({"SecretId": "bin", "RecoveryWindowInDays": 7}),
        ),
        ("RestoreSecret".into(), json!({"SecretId": "bin"})),
    ]
}

/// Property: no request body makes an operation panic or hang (errors are answers).
#[test]
fn fuzz_aws_json_input() {
    let rt = runtime();
    let engine = engine(Arc::new(MemoryStorage::new()));
    fuzz_operations(
        env!("CARGO_MANIFEST_DIR"),
        "aws_json_input",
        OPERATIONS,
        MEMBERS,
        requests(),
        |op, body| {
            let _ = rt.block_on(engine.handle(&ctx(), op, body));
        },
    );
}

/// Property: a stored secret record (postcard with its format byte, or legacy JSON) decodes
/// or fails without panicking, as a whole record and as the header prefix; what decodes
/// re-encodes to bytes that decode to the same; and the engine reading it (describe, get,
/// list, authorization facts) answers or errs without panicking.
#[test]
fn fuzz_secret_record() {
    let rt = runtime();
    let storage = Arc::new(MemoryStorage::new());
    let engine = engine(storage.clone());
    for (op, body) in requests() {
        let _ = rt.block_on(engine.handle(&ctx(), &op, body));
    }
    let keys: Vec<String> = rt
        .block_on(storage.scan("", None, usize::MAX))
        .unwrap()
        .into_iter()
        .filter(|k| k.ends_with("/meta"))
        .collect();
    assert!(!keys.is_empty());
    let mut seeds = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let stored = rt.block_on(storage.get(key)).unwrap().unwrap();
        let record = SecretRecord::from_bytes(&stored).unwrap();
        seeds.push((format!("postcard-{i}"), stored.expose().to_vec()));
        seeds.push((format!("legacy-json-{i}"), serde_json::to_vec(&record).unwrap()));
    }
    let target = keys[0].clone();
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "secret_record")
        .seeds(seeds)
        .dictionary(&["{", "\"name\":", "\"versions\":", "\"tags\":", "\x01", "\x00"]);
    fuzz.run(|input| {
        let bytes = SecretBytes::from_slice(input);
        let _ = SecretHeader::from_bytes(&bytes);
        if let Ok(record) = SecretRecord::from_bytes(&bytes) {
            let encoded = record.to_bytes().unwrap();
            let again = SecretRecord::from_bytes(&encoded).unwrap();
            assert_eq!(again.to_bytes().unwrap().expose(), encoded.expose());
            assert!(SecretHeader::from_bytes(&encoded).is_ok());
        }
        rt.block_on(async {
            storage.put(&target, bytes).await.unwrap();
            let ctx = ctx();
            let _ = engine
                .handle(&ctx, "DescribeSecret", json!({"SecretId": "app/db"}))
                .await;
            let _ = engine
                .handle(&ctx, "GetSecretValue", json!({"SecretId": "app/db"}))
                .await;
            let _ = engine.handle(&ctx, "ListSecrets", json!({})).await;
            let _ = engine
                .handle(&ctx, "ListSecretVersionIds", json!({"SecretId": "app/db"}))
                .await;
            let _ = engine.authz_facts(&ctx, "app/db").await;
        });
    });
}
