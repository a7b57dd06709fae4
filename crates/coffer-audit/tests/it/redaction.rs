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

#[test]
fn rule_lookup_keeps_rule_order_case_and_long_keys() {
    let key = DeviceKey::generate().unwrap();
    let mut rules = RedactionRules::empty();
    rules.push(RedactionRule::omit("Secret").for_source("kms.amazonaws.com"));
    rules.push(RedactionRule::hash("SECRET"));
    // Never reached: the hash rule above applies to every source first.
    rules.push(RedactionRule::omit("secret"));
    let long = "Key".repeat(30);
    rules.push(RedactionRule::hash(&long));
    let r = Redactor::new(key.redaction_key(), rules);
    let mut v = serde_json::Map::new();
    v.insert("sEcReT".into(), json!("canary"));
    v.insert("Secrets".into(), json!("plain"));
    v.insert(long.to_uppercase(), json!("canary"));
    v.insert(format!("{long}x"), json!("plain"));
    let v = serde_json::Value::Object(v);

    let kms = r.redact_value(&v, "kms.amazonaws.com").unwrap();
    assert!(kms.get("sEcReT").is_none(), "{kms}");
    let sm = r.redact_value(&v, "secretsmanager.amazonaws.com").unwrap();
    assert!(sm["sEcReT"].as_str().unwrap().starts_with("hmac-sha256:"), "{sm}");
    assert!(
        sm[long.to_uppercase()].as_str().unwrap().starts_with("hmac-sha256:"),
        "{sm}"
    );
    assert_eq!(sm["Secrets"], "plain");
    assert_eq!(sm[format!("{long}x")], "plain");
    assert!(!sm.to_string().contains("canary"));
}

/// The old serde-derived shape of a line (CloudTrail's members, in order), as the reference
/// for the hand-written writer: both must produce the same bytes.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Reference<'a> {
    event_version: &'a str,
    user_identity: &'a coffer_audit::UserIdentity,
    event_time: String,
    event_source: &'a str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
    user_agent: &'a str,
    request_parameters: Option<Value>,
    response_elements: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    read_only: bool,
    resources: &'a [coffer_audit::Resource],
    event_type: &'a str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'a str,
}

fn reference_line(r: &Redactor, e: &AuditEvent) -> String {
    let source = e.event_source.as_str();
    let reference = Reference {
        event_version: &e.event_version,
        user_identity: &e.user_identity,
        event_time: e
            .event_time
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap(),
        event_source: source,
        event_name: &e.event_name,
        aws_region: &e.aws_region,
        source_ip_address: &e.source_ip_address,
        user_agent: &e.user_agent,
        request_parameters: e
            .request_parameters
            .as_ref()
            .map(|v| r.redact_value(v, source).unwrap()),
        response_elements: e.response_elements.as_ref().map(|v| r.redact_value(v, source).unwrap()),
        error_code: e.error_code.as_deref(),
        error_message: e.error_message.as_deref(),
        request_id: &e.request_id,
        event_id: &e.event_id,
        read_only: e.read_only,
        resources: &e.resources,
        event_type: &e.event_type,
        management_event: e.management_event,
        recipient_account_id: &e.recipient_account_id,
        event_category: &e.event_category,
    };
    serde_json::to_string(&reference).unwrap()
}

#[test]
fn lines_are_byte_for_byte_what_serde_writes() {
    use coffer_audit::{IdentityType, SessionContext, SessionIssuer, UserIdentity};
    let key = DeviceKey::generate().unwrap();
    let r = key.redactor();
    let role = UserIdentity {
        identity_type: IdentityType::AssumedRole,
        principal_id: Some("AROAEXAMPLE:sess\"ion".into()),
        arn: Some("arn:aws:sts::111122223333:assumed-role/app/sess".into()),
        account_id: Some("111122223333".into()),
        access_key_id: Some("ASIAEXAMPLE".into()),
        user_name: None,
        session_context: Some(SessionContext {
            session_issuer: Some(SessionIssuer {
                issuer_type: "Role".into(),
                principal_id: "AROAEXAMPLE".into(),
                arn: "arn:aws:iam::111122223333:role/app".into(),
                account_id: "111122223333".into(),
                user_name: "app".into(),
            }),
            attributes: Default::default(),
        }),
    };
    let events = [
        crate::get_secret_value(7),
        AuditEvent::aws("ssm", "PutParameter", role, at(5), "req\n\"1\"")
            .client("::1", "agent/1.0 (\u{1}\t tab) é 🦀")
            .request(json!({
                "Name": "/app/db", "Value": "canary", "Type": "SecureString", "Overwrite": true,
                "Tags": [{"Key": "k", "Value": "v"}], "Tier": null, "Version": 3, "Ratio": 1.5,
                "Authorization": "AWS4-HMAC-SHA256 ...", "Nested": {"Password": {"a": [1, false, null, "x"]}}
            }))
            .error("ValidationException", "bad \\ value")
            .resource("arn:a", "AWS::SSM::Parameter", None)
            .resource("arn:b", "AWS::SSM::Parameter", Some("111122223333".into())),
        AuditEvent::aws("sts", "GetCallerIdentity", UserIdentity::default(), at(9), "r").denied("no"),
        AuditEvent::vault("update", "secret/data/app", user("v"), at(1), "v1")
            .request(json!({ "data": { "password": "canary", "n": 12 } })),
    ];
    for e in &events {
        let ours = line_of(&r, e);
        assert_eq!(ours, reference_line(&r, e));
        assert!(!ours.contains("canary"), "{ours}");
    }
}

#[test]
fn identity_type_names_are_the_serde_names() {
    use coffer_audit::IdentityType::*;
    for t in [Root, IamUser, AssumedRole, FederatedUser, AwsService, Token, Unknown] {
        assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
    }
}
