//! Fuzz target `aws_json_body`: the awsJson request body as the front end decodes it before
//! any engine sees it. Property: `parse_body` never panics nor hangs; what it accepts is a
//! JSON object (blank bodies are `{}`), and what it refuses is a `SerializationException`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use coffer_fuzz::{Fuzz, json_value};
use serde_json::Value;

use super::parse_body;

fn check(input: &[u8]) {
    match parse_body(input) {
        Ok(v) => {
            assert!(v.is_object());
            if input.iter().all(u8::is_ascii_whitespace) {
                assert_eq!(v, serde_json::json!({}));
            }
        }
        Err(e) => assert_eq!(e.code, "SerializationException"),
    }
}

#[test]
fn fuzz_aws_json_body() {
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "aws_json_body")
        .seeds([
            ("create-secret", &br#"{"Name": "demo/db", "SecretString": "{\"u\":\"a\"}", "ClientRequestToken": "802dbdf7-e34d-4aac-9cdf-fefcf8905d47"}"#[..]),
            ("list-secrets-filters", &br#"{"Filters":[{"Key":"tag-key","Values":["env"]}],"MaxResults":100,"SortOrder":"asc"}"#[..]),
            ("kms-encrypt", &br#"{"KeyId":"alias/app","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}"#[..]),
            ("blank", &b" \r\n\t"[..]),
            ("escapes", &br#"{"SecretString":"\u00e9\ud83d\ude00\n\\","N":-1.5e-7}"#[..]),
        ])
        .dictionary(&["{", "}", "[", "]", "\"", ":", ",", "\\u", "1e999", "-0", "true", "null"]);
    fuzz.run(check);
    const WORDS: &[&str] = &["SecretId", "Name", "KeyId", "Plaintext", "Filters"];
    fuzz.run_generated(json_value(WORDS), |v: Value| v.to_string().into_bytes(), check);
}
