//! Bad input on the wire: each gets AWS's error (`__type`, message, status), never a 500.

use std::time::{Duration, SystemTime};

use crate::support::*;

#[tokio::test]
async fn authentication_errors_match_aws() {
    let (_p, c) = start_dev(&[]);
    let client = reqwest::Client::new();
    // No Authorization header at all.
    let r = client
        .post(format!("{}/", c.endpoint))
        .header("x-amz-target", "secretsmanager.ListSecrets")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["__type"], "MissingAuthenticationTokenException");

    // Unknown access key id.
    let raw = signed_post(
        &c.endpoint,
        "AKIANOTAKEY000000000",
        "x",
        "secretsmanager",
        "secretsmanager.ListSecrets",
        b"{}",
        SystemTime::now(),
    )
    .await;
    assert_eq!(
        (raw.status, raw.body["__type"].as_str()),
        (400, Some("UnrecognizedClientException"))
    );

    // Right key, wrong secret.
    let raw = signed_post(
        &c.endpoint,
        &c.access_key_id,
        "wrong",
        "secretsmanager",
        "secretsmanager.ListSecrets",
        b"{}",
        SystemTime::now(),
    )
    .await;
    assert_eq!(
        (raw.status, raw.body["__type"].as_str()),
        (400, Some("InvalidSignatureException"))
    );
    assert!(raw.text.contains("does not match"), "{}", raw.text);
    assert!(!raw.text.contains(&c.secret_access_key));

    // Signed ten minutes ago.
    let old = SystemTime::now() - Duration::from_secs(600);
    let raw = signed_post(
        &c.endpoint,
        &c.access_key_id,
        &c.secret_access_key,
        "secretsmanager",
        "secretsmanager.ListSecrets",
        b"{}",
        old,
    )
    .await;
    assert_eq!(raw.body["__type"], "InvalidSignatureException");
    assert!(raw.text.contains("Signature expired"), "{}", raw.text);

    // Scoped to another service.
    let raw = signed_post(
        &c.endpoint,
        &c.access_key_id,
        &c.secret_access_key,
        "kms",
        "secretsmanager.ListSecrets",
        b"{}",
        SystemTime::now(),
    )
    .await;
    assert_eq!(raw.body["__type"], "InvalidSignatureException");
    assert!(
        raw.text.contains("Credential should be scoped to correct service"),
        "{}",
        raw.text
    );
}

#[tokio::test]
async fn malformed_bodies_and_targets() {
    let (_p, c) = start_dev(&[]);
    let cases: &[(&str, &str, &str)] = &[
        ("secretsmanager.CreateSecret", "{not json", "SerializationException"),
        ("secretsmanager.CreateSecret", "[1,2]", "SerializationException"),
        (
            "secretsmanager.CreateSecret",
            r#"{"Name": 5, "SecretString": "v"}"#,
            "SerializationException",
        ),
        (
            "secretsmanager.CreateSecret",
            r#"{"Name": "x", "SecretString": {"a": 1}}"#,
            "SerializationException",
        ),
        (
            "secretsmanager.CreateSecret",
            r#"{"SecretString": "v"}"#,
            "ValidationException",
        ),
        ("secretsmanager.GetSecretValue", "{}", "ValidationException"),
        (
            "secretsmanager.CreateSecret",
            r#"{"Name": "x", "SecretBinary": "***not base64***"}"#,
            "SerializationException",
        ),
        (
            "secretsmanager.CreateSecret",
            r#"{"Name": "x", "SecretString": "a", "SecretBinary": "YQ=="}"#,
            "InvalidParameterException",
        ),
        (
            "secretsmanager.CreateSecret",
            r#"{"Name": "x", "ClientRequestToken": "short", "SecretString": "v"}"#,
            "InvalidParameterException",
        ),
        ("secretsmanager.NoSuchOperation", "{}", "UnknownOperationException"),
        ("nosuchservice.GetSecretValue", "{}", "UnknownOperationException"),
        (
            "secretsmanager.GetSecretValue",
            r#"{"SecretId": "missing"}"#,
            "ResourceNotFoundException",
        ),
    ];
    for (target, body, want) in cases {
        let raw = dev_post(&c, target, body).await;
        assert_eq!(raw.status, 400, "{target} {body}: {}", raw.text);
        assert_eq!(
            raw.body["__type"].as_str(),
            Some(*want),
            "{target} {body}: {}",
            raw.text
        );
    }
    // Nothing was half-written by the failed creates.
    let raw = dev_post(&c, "secretsmanager.ListSecrets", "{}").await;
    assert_eq!(raw.status, 200);
    assert_eq!(raw.body["SecretList"].as_array().map(Vec::len), Some(0), "{}", raw.text);
}

#[tokio::test]
async fn responses_carry_aws_headers() {
    let (_p, c) = start_dev(&[]);
    let raw = dev_post(&c, "secretsmanager.ListSecrets", "{}").await;
    assert_eq!(raw.status, 200);
    let resp = reqwest::Client::new()
        .post(format!("{}/", c.endpoint))
        .header("x-amz-target", "secretsmanager.ListSecrets")
        .send()
        .await
        .unwrap();
    assert!(resp.headers().contains_key("x-amzn-requestid"));
    assert_eq!(resp.headers()["content-type"], "application/x-amz-json-1.1");
}
