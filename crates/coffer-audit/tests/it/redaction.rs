//! Redaction: no listed value in clear, stable HMACs per key, different across keys.

use base64::Engine as _;
use coffer_audit::{AuditBroker, AuditEvent, DeviceKey, MemoryDevice, RedactionRule, RedactionRules, Redactor};
use serde_json::{Value, json};
use std::sync::Arc;

use crate::{at, user};

fn line_of(redactor: &Redactor, e: &AuditEvent) -> String {
    let mut out = Vec::new();
    redactor.write_event(e, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn listed_values_never_in_clear_nested_arrays_binary() {
    let key = DeviceKey::generate().unwrap();
    let r = key.redactor();
    let binary = base64::engine::general_purpose::STANDARD.encode([0u8, 0xff, 0x10, 0x80, 7, 7, 7]);
    let e = AuditEvent::aws("secretsmanager", "PutSecretValue", user("alice"), at(0), "r1")
        .request(json!({
            "SecretId": "db",
            "SecretString": "canary-secret-string",
            "SecretBinary": binary,
            "Nested": { "deeper": [ { "Password": "canary-password" }, { "token": "canary-token" } ] },
            "list": [ { "ClientToken": "canary-client-token" }, { "SessionToken": "canary-session" } ],
            "SECRETACCESSKEY": "canary-sak",
            "Plaintext": { "inner": ["canary-plain-a", 7777123, true], "more": "canary-plain-b" },
            "RandomPassword": 987654321,
        }))
        .response(json!({ "ARN": "arn:x", "VersionId": "v-1", "RandomPassword": "canary-random" }));
    let line = line_of(&r, &e);
    for canary in [
        "canary-secret-string",
        binary.as_str(),
        "canary-password",
        "canary-token",
        "canary-client-token",
        "canary-session",
        "canary-sak",
        "canary-plain-a",
        "canary-plain-b",
        "987654321",
        "canary-random",
        "7777123",
    ] {
        assert!(!line.contains(canary), "{canary} in clear: {line}");
    }
    // The operator's way in: hash a known value and grep for it.
    assert!(line.contains(&r.hash_value("canary-secret-string")));
    assert!(line.contains(&r.hash_value(&binary)));
    assert!(line.contains(&r.hash_value("canary-password")));
    assert!(line.contains(&r.hash_value("987654321")));
    // Non-sensitive values stay readable.
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["requestParameters"]["SecretId"], "db");
    assert_eq!(v["responseElements"]["VersionId"], "v-1");
    assert_eq!(v["eventName"], "PutSecretValue");
    assert_eq!(v["eventSource"], "secretsmanager.amazonaws.com");
    assert_eq!(v["eventTime"], "2024-05-01T00:00:00Z");
    assert_eq!(v["userIdentity"]["type"], "IAMUser");
    assert_eq!(v["userIdentity"]["userName"], "alice");
    // Object keys under a hashed subtree are kept; every leaf is hashed.
    let inner = &v["requestParameters"]["Plaintext"]["inner"];
    assert!(
        inner
            .as_array()
            .unwrap()
            .iter()
            .all(|x| x.as_str().unwrap().starts_with("hmac-sha256:"))
    );
}

#[test]
fn same_value_same_hmac_under_one_key_different_under_another() {
    let a = DeviceKey::generate().unwrap().redactor();
    let b = DeviceKey::generate().unwrap().redactor();
    assert_eq!(a.hash_value("hunter2"), a.hash_value("hunter2"));
    assert_ne!(a.hash_value("hunter2"), a.hash_value("hunter3"));
    assert_ne!(a.hash_value("hunter2"), b.hash_value("hunter2"));
    let h = a.hash_value("hunter2");
    assert!(h.starts_with("hmac-sha256:") && h.len() == 12 + 64, "{h}");
    // Stored key material gives the same hashes back (restart).
    let key = DeviceKey::generate().unwrap();
    let again = DeviceKey::from_secret(coffer_crypto::SecretBytes::from_slice(key.expose()));
    assert_eq!(key.redactor().hash_value("x"), again.redactor().hash_value("x"));
}

#[test]
fn ssm_value_hashed_for_secure_string_and_unknown_type_only() {
    let r = DeviceKey::generate().unwrap().redactor();
    let e = AuditEvent::aws("ssm", "PutParameter", user("alice"), at(0), "r1").request(json!({
        "Name": "/app/db", "Value": "canary-secure", "Type": "SecureString",
        "Tags": [ { "Key": "team", "Value": "payments" } ],
    }));
    let line = line_of(&r, &e);
    assert!(!line.contains("canary-secure"));
    assert!(line.contains("payments"), "tag values stay readable");

    let e = AuditEvent::aws("ssm", "GetParametersByPath", user("alice"), at(0), "r2").response(json!({
        "Parameters": [
            { "Name": "/a", "Type": "String", "Value": "plain-config" },
            { "Name": "/b", "Type": "SecureString", "Value": "canary-b" },
            { "Name": "/c", "Value": "canary-untyped" },
        ]
    }));
    let line = line_of(&r, &e);
    assert!(line.contains("plain-config"));
    assert!(!line.contains("canary-b") && !line.contains("canary-untyped"));

    // `Value` outside SSM (e.g. a tag elsewhere) is not a secret by default.
    let e = AuditEvent::aws("secretsmanager", "TagResource", user("alice"), at(0), "r3")
        .request(json!({ "Tags": [ { "Key": "k", "Value": "visible" } ] }));
    assert!(line_of(&r, &e).contains("visible"));
}

#[test]
fn vault_data_hashed_and_credentials_omitted() {
    let r = DeviceKey::generate().unwrap().redactor();
    let e = AuditEvent::vault("update", "secret/data/app", user("alice"), at(0), "r1").request(json!({
        "data": { "data": { "password": "canary-kv", "port": 5432 } , "options": { "cas": 1 } },
        "Authorization": "AWS4-HMAC-SHA256 Credential=AKIA/..., Signature=canary-sig",
        "x-vault-token": "hvs.canary-token",
        "client_token": "hvs.canary-client",
    }));
    let line = line_of(&r, &e);
    for canary in [
        "canary-kv",
        "5432",
        "canary-sig",
        "hvs.canary-token",
        "hvs.canary-client",
    ] {
        assert!(!line.contains(canary), "{canary} in {line}");
    }
    let v: Value = serde_json::from_str(&line).unwrap();
    assert!(v["requestParameters"].get("Authorization").is_none());
    assert!(v["requestParameters"].get("x-vault-token").is_none());
    assert_eq!(v["requestParameters"]["path"], "secret/data/app");
    assert_eq!(v["resources"][0]["ARN"], "vault:secret/data/app");
    assert_eq!(v["eventType"], "CofferVaultRequest");
}

#[test]
fn rules_are_extensible() {
    let key = DeviceKey::generate().unwrap();
    let mut rules = RedactionRules::default();
    rules.push(RedactionRule::hash("ConnectionString"));
    let r = Redactor::new(key.redaction_key(), rules);
    let e = AuditEvent::aws("secretsmanager", "X", user("a"), at(0), "r")
        .request(json!({ "connectionstring": "postgres://u:canary@h/db" }));
    assert!(!line_of(&r, &e).contains("canary"));
    assert!(
        r.redact_value(&json!({"ConnectionString": "canary"}), "x").unwrap()["ConnectionString"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256:")
    );
}

#[test]
fn nothing_secret_in_debug_or_in_the_device() {
    let key = DeviceKey::generate().unwrap();
    let dev = Arc::new(MemoryDevice::new("mem/"));
    let mut broker = AuditBroker::new();
    broker.add_device(dev.clone(), &key).unwrap();
    let e = crate::get_secret_value(1);
    let dbg = format!("{e:?} {key:?} {:?} {:?}", key.redactor(), key.chain_key());
    assert!(!dbg.contains("s3cr3t"), "{dbg}");
    broker.log(&e).unwrap();
    let contents = String::from_utf8(dev.contents()).unwrap();
    assert!(!contents.contains("s3cr3t-value-1"));
    assert!(contents.contains(&broker.hash_value("mem/", "s3cr3t-value-1").unwrap()));
}
