//! Fuzz targets of the Parameter Store engine: request bodies of every operation, and the
//! engine's stored records (parameters, versions, SecureString envelopes, tags, policies)
//! read back. See `docs/reliability.md`.

use coffer_fuzz::{Fuzz, fuzz_operations, record_seeds, runtime, with_stored_record};

use super::*;

const WORDS: &[&str] = &[
    "Name",
    "Names",
    "Value",
    "Type",
    "String",
    "StringList",
    "SecureString",
    "KeyId",
    "alias/aws/ssm",
    "Overwrite",
    "WithDecryption",
    "Path",
    "Recursive",
    "ParameterFilters",
    "Key",
    "Option",
    "Values",
    "BeginsWith",
    "Equals",
    "MaxResults",
    "NextToken",
    "Labels",
    "ParameterVersion",
    "Tags",
    "TagKeys",
    "ResourceType",
    "ResourceId",
    "Parameter",
    "Policies",
    "Tier",
    "Advanced",
    "AllowedPattern",
    "DataType",
    "aws:ec2:image",
    "/app/db",
    "/app/db:1",
    "/aws/reference/secretsmanager/db",
    "[{\"Type\":\"Expiration\",\"Version\":\"1.0\",\"Attributes\":{\"Timestamp\":\"2030-01-01T00:00:00Z\"}}]",
];

fn requests() -> Vec<(&'static str, Value)> {
    vec![
        (
            "PutParameter",
            json!({"Name": "/app/db", "Value": "v1", "Type": "String", "Tags": [{"Key": "env", "Value": "prod"}]}),
        ),
        (
            "PutParameter",
            json!({"Name": "/app/db", "Value": "v2", "Overwrite": true, "AllowedPattern": "^v[0-9]+$"}),
        ),
        (
            "PutParameter",
            json!({"Name": "/app/secret", "Value": "s", "Type": "SecureString", "Tier": "Advanced", "Policies": "[{\"Type\":\"Expiration\",\"Version\":\"1.0\",\"Attributes\":{\"Timestamp\":\"2030-01-01T00:00:00Z\"}}]"}),
        ),
        (
            "PutParameter",
            json!({"Name": "list", "Value": "a,b,c", "Type": "StringList"}),
        ),
        ("GetParameter", json!({"Name": "/app/secret", "WithDecryption": true})),
        (
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/db", "WithDecryption": true}),
        ),
        (
            "GetParameters",
            json!({"Names": ["/app/db:1", "/app/secret", "nope"], "WithDecryption": true}),
        ),
        (
            "GetParametersByPath",
            json!({"Path": "/app", "Recursive": true, "MaxResults": 1, "ParameterFilters": [{"Key": "Type", "Option": "Equals", "Values": ["String"]}]}),
        ),
        (
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Option": "BeginsWith", "Values": ["/app"]}, {"Key": "tag:env", "Values": ["prod"]}]}),
        ),
        (
            "GetParameterHistory",
            json!({"Name": "/app/db", "WithDecryption": true}),
        ),
        (
            "LabelParameterVersion",
            json!({"Name": "/app/db", "ParameterVersion": 1, "Labels": ["stable"]}),
        ),
        (
            "UnlabelParameterVersion",
            json!({"Name": "/app/db", "ParameterVersion": 1, "Labels": ["stable"]}),
        ),
        (
            "AddTagsToResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/app/db", "Tags": [{"Key": "team", "Value": "blue"}]}),
        ),
        (
            "RemoveTagsFromResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/app/db", "TagKeys": ["team"]}),
        ),
        (
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/app/db"}),
        ),
        ("DeleteParameters", json!({"Names": ["list", "nope"]})),
    ]
}

/// Property: no request body makes a Parameter Store operation panic or hang.
#[test]
fn fuzz_ssm_request() {
    let rt = runtime();
    let t = T::new();
    let requests = requests().into_iter().map(|(op, body)| (op.to_owned(), body)).collect();
    fuzz_operations(
        env!("CARGO_MANIFEST_DIR"),
        "ssm_request",
        OPERATIONS,
        WORDS,
        requests,
        |op, body| {
            let _ = rt.block_on(t.call_in("us-east-1", op, body));
        },
    );
}

/// Property: a stored Parameter Store record changed on disk is read back by every read
/// path (get, history, describe, by path, tags, the expiration pass) without a panic or a
/// hang. An input is `<storage key>\n<record bytes>`.
#[test]
fn fuzz_ssm_records() {
    let rt = runtime();
    let t = T::new();
    for (op, body) in requests() {
        let _ = rt.block_on(t.call_in("us-east-1", op, body));
    }
    let seeds = record_seeds(&rt, t.storage.as_ref());
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "ssm_records")
        .seeds(seeds)
        .dictionary(&["{", "}", "null", ":", "\x01"]);
    fuzz.run(|input| {
        with_stored_record(&rt, t.storage.as_ref(), input, || {
            for (op, body) in [
                ("GetParameter", json!({"Name": "/app/db"})),
                ("GetParameter", json!({"Name": "/app/secret", "WithDecryption": true})),
                (
                    "GetParameterHistory",
                    json!({"Name": "/app/secret", "WithDecryption": true}),
                ),
                ("GetParametersByPath", json!({"Path": "/", "Recursive": true})),
                ("DescribeParameters", json!({})),
                (
                    "ListTagsForResource",
                    json!({"ResourceType": "Parameter", "ResourceId": "/app/db"}),
                ),
            ] {
                let _ = rt.block_on(t.call_in("us-east-1", op, body));
            }
            // The expiration pass reads every parameter's policies (none is due yet: the state
            // stays the same for the next input).
            let _ = rt.block_on(t.engine.background(t.now()));
        });
    });
}
