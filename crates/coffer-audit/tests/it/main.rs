//! Integration tests for `coffer-audit`: redaction, the chain and `verify`, devices and the
//! broker, search and `LookupEvents`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod broker;
mod chain;
mod event_id;
mod fuzz;
mod group_commit;
mod lookup;
mod redaction;
mod search;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffer_audit::{AuditBroker, AuditEvent, DeviceKey, FileDevice, IdentityType, UserIdentity};
use serde_json::json;
use time::OffsetDateTime;
use time::macros::datetime;

/// 2024-05-01T00:00:00Z plus `secs`.
pub fn at(secs: i64) -> OffsetDateTime {
    datetime!(2024-05-01 00:00:00 UTC) + time::Duration::seconds(secs)
}

/// An IAM user `alice` (or another name) in account 111122223333.
pub fn user(name: &str) -> UserIdentity {
    UserIdentity {
        identity_type: IdentityType::IamUser,
        principal_id: Some(format!("AIDA{}", name.to_uppercase())),
        arn: Some(format!("arn:aws:iam::111122223333:user/{name}")),
        account_id: Some("111122223333".to_owned()),
        access_key_id: Some(format!("AKIA{}", name.to_uppercase())),
        user_name: Some(name.to_owned()),
        session_context: None,
    }
}

pub fn secret_arn(name: &str) -> String {
    format!("arn:aws:secretsmanager:us-east-1:111122223333:secret:{name}-AbCdEf")
}

/// A `GetSecretValue` by `alice` at `at(i)` on secret `app-<i % 3>`, with a secret value.
pub fn get_secret_value(i: i64) -> AuditEvent {
    let name = format!("app-{}", i % 3);
    AuditEvent::aws(
        "secretsmanager",
        "GetSecretValue",
        user("alice"),
        at(i),
        format!("req-{i}"),
    )
    .region("us-east-1")
    .client("10.0.0.7", "aws-cli/2.15.0")
    .request(json!({ "SecretId": name }))
    .response(json!({ "ARN": secret_arn(&name), "Name": name, "SecretString": format!("s3cr3t-value-{i}") }))
    .resource(
        secret_arn(&name),
        "AWS::SecretsManager::Secret",
        Some("111122223333".to_owned()),
    )
}

/// A broker with one file device at `dir/audit.log`, rotating after `max_bytes`.
pub fn file_broker(dir: &Path, key: &DeviceKey, max_bytes: u64) -> (AuditBroker, Arc<FileDevice>) {
    let dev = Arc::new(FileDevice::open("file/", dir.join("audit.log"), max_bytes).unwrap());
    let mut broker = AuditBroker::new();
    broker.add_device(dev.clone(), key).unwrap();
    (broker, dev)
}

/// Writes `n` events (`get_secret_value(0..n)`) and returns the device's files.
pub fn write_log(dir: &Path, key: &DeviceKey, n: i64, max_bytes: u64) -> Vec<PathBuf> {
    let (broker, dev) = file_broker(dir, key, max_bytes);
    for i in 0..n {
        broker.log(&get_secret_value(i)).unwrap();
    }
    dev.files().unwrap()
}
