//! Policy documents: IAM's `MalformedPolicyDocument` reasons per kind, accepted shapes, and the
//! parse → serialize → parse round trip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use coffer_policy::{PolicyDocument, PolicyKind};

fn reason(json: &str, kind: PolicyKind) -> String {
    match PolicyDocument::parse_json(json, kind) {
        Ok(_) => "<accepted>".to_owned(),
        Err(e) => e.reason().to_owned(),
    }
}

fn v12(statement: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":{statement}}}"#)
}

#[test]
fn malformed_identity_policies() {
    use PolicyKind::Identity as I;
    let syntax = "Syntax errors in policy.";
    let legacy = "The policy failed legacy parsing";
    let s3 = r#""Action":"s3:ListBucket","Resource":"arn:aws:s3:::b""#;
    let table: Vec<(String, &str)> = vec![
        ("This is not a json document".into(), syntax),
        (r#"{"Statement":{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}}"#.into(), "Policy document must be version 2012-10-17 or greater."),
        (r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}}"#.into(), "Policy document must be version 2012-10-17 or greater."),
        (r#"{"Version":"2013-10-17","Statement":{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}}"#.into(), syntax),
        (r#"{"Version":"2012-10-17"}"#.into(), syntax),
        (v12(r#"["afd"]"#), syntax),
        (v12("[]"), syntax),
        (format!(r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow",{s3}}},"Extra":"x"}}"#), syntax),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Extra":"x"}}"#)), syntax),
        (format!(r#"{{"Version":"2012-10-17","Id":{{}},"Statement":{{"Effect":"Allow",{s3}}}}}"#), syntax),
        (v12(&format!(r#"{{"Effect":"invalid",{s3}}}"#)), syntax),
        (v12(&format!(r#"{{{s3}}}"#)), syntax),
        (v12(&format!(r#"{{"Effect":"denY",{s3}}}"#)), legacy),
        (v12(r#"{"Effect":"Allow","Action":"invalid","Resource":"arn:aws:s3:::b"}"#), "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
        (v12(r#"{"Effect":"Allow","NotAction":"","Resource":"arn:aws:s3:::b"}"#), "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."),
        (v12(r#"{"Effect":"Allow","Action":"a a:ListBucket","Resource":"arn:aws:s3:::b"}"#), "Vendor a a is not valid"),
        (v12(r#"{"Effect":"Allow","Action":"s3:List:Bucket","Resource":"arn:aws:s3:::b"}"#), "Actions/Condition can contain only one colon."),
        (v12(r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"invalid resource"}"#), r#"Resource invalid resource must be in ARN format or "*"."#),
        (v12(r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":""}"#), r#"Resource  must be in ARN format or "*"."#),
        (v12(r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":["arn:error:s3:::b"]}"#), r#"Partition "error" is not valid for resource "arn:error:s3:::b"."#),
        (v12(r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws"}"#), "Resource vendor must be fully qualified and cannot contain regexes."),
        (v12(r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:*:::b"}"#), "Resource vendor must be fully qualified and cannot contain regexes."),
        (v12(r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3::b"}"#), legacy),
        (v12(r#"{"Effect":"Allow","Resource":"arn:aws:s3::b"}"#), legacy),
        (v12(r#"{"Effect":"Allow","Action":"s3:ListBucket"}"#), "Policy statement must contain resources."),
        (v12(r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":[]}"#), "Policy statement must contain resources."),
        (v12(r#"{"Effect":"Allow","Resource":"arn:aws:s3:::b"}"#), "Policy statement must contain actions."),
        (v12(r#"{"Effect":"Allow","Action":[],"Resource":"arn:aws:s3:::b"}"#), "Policy statement must contain actions."),
        (v12(&format!(r#"[{{"Effect":"Deny"}},{{"Effect":"Allow",{s3}}}]"#)), "Policy statement must contain actions."),
        (v12(r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":{"a":"arn:aws:s3:::b"}}"#), syntax),
        (v12(r#"{"Effect":"Allow","NotAction":"s3:ListBucket","Action":"iam:x","Resource":"arn:aws:s3:::b"}"#), syntax),
        (v12(r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","NotResource":"*"}"#), syntax),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":[]}}"#)), syntax),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":{{"a":"b"}}}}"#)), syntax),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":{{"x":{{"a":"1"}}}}}}"#)), syntax),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":{{"StringEqualz":{{"a":"1"}}}}}}"#)), syntax),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":{{"ForAnyValue::StringEqualsIfExists":{{"a":"1"}}}}}}"#)), syntax),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":{{"NullIfExists":{{"a":"true"}}}}}}"#)), syntax),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":{{"DateGreaterThan":{{"a":{{}}}}}}}}"#)), syntax),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":{{"DateGreaterThan":{{"a":"sdfdsf"}}}}}}"#)), legacy),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":{{"DateLessThan":{{"a":"9223372036854775808"}}}}}}"#)), legacy),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":{{"NumericLessThan":{{"a":"ten"}}}}}}"#)), legacy),
        (v12(&format!(r#"{{"Effect":"Allow",{s3},"Condition":{{"IpAddress":{{"aws:SourceIp":"10.0.0.300/8"}}}}}}"#)), legacy),
        (v12(r#"{"Effect":"Allow","Condition":{"DateGreaterThan":{"a":"sdfdsf"}}}"#), legacy),
        (v12(&format!(r#"{{"Sid":{{}},"Effect":"Allow",{s3}}}"#)), syntax),
        (v12(&format!(r#"[{{"Sid":"sdf","Effect":"Allow",{s3}}},{{"Sid":"sdf","Effect":"Allow"}}]"#)), "Statement IDs (SID) in a single policy must be unique."),
        (v12(&format!(r#"[{{"Sid":"sdf","Effect":"aLLow",{s3}}},{{"Sid":"sdf","Effect":"Allow"}}]"#)), legacy),
        (v12(&format!(r#"{{"Sid":"has space","Effect":"Allow",{s3}}}"#)), "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*"),
        (v12(&format!(r#"{{"Effect":"Allow","Principal":"*",{s3}}}"#)), "Has prohibited field Principal"),
        (v12(&format!(r#"{{"Effect":"Deny","NotPrincipal":{{"AWS":"111122223333"}},{s3}}}"#)), "Has prohibited field NotPrincipal"),
    ];
    let mut failures = Vec::new();
    for (json, want) in &table {
        let got = reason(json, I);
        if got != *want {
            failures.push(format!("{json}\n  want: {want}\n  got:  {got}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn size_quotas() {
    let big = format!(r#""arn:aws:s3:::{}""#, "b".repeat(7000));
    let json = v12(&format!(
        r#"{{"Effect":"Allow","Action":"s3:GetObject","Resource":{big}}}"#
    ));
    assert_eq!(
        reason(&json, PolicyKind::Identity),
        "Cannot exceed quota for PolicySize: 6144"
    );
    // Whitespace does not count for identity policies.
    let padded = format!(
        "{}{}",
        v12(r#"{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"#),
        " ".repeat(10_000)
    );
    assert_eq!(reason(&padded, PolicyKind::Identity), "<accepted>");
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::111122223333:user/{}"}},"Action":"sts:AssumeRole"}}}}"#,
        "u".repeat(2100)
    );
    assert_eq!(
        reason(&trust, PolicyKind::Trust),
        "Cannot exceed quota for ACLSizePerRole: 2048"
    );
    let res = v12(&format!(
        r#"{{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:s3:::{}"}}"#,
        "b".repeat(21000)
    ));
    assert_eq!(
        reason(&res, PolicyKind::Resource),
        "Cannot exceed quota for PolicySize: 20480"
    );
    assert_eq!(reason(&res, PolicyKind::KeyPolicy), "<accepted>");
}

#[test]
fn principals_in_resource_key_and_trust_policies() {
    let table: &[(PolicyKind, &str, &str)] = &[
        (
            PolicyKind::Resource,
            r#"{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}"#,
            "Missing required field Principal",
        ),
        (
            PolicyKind::KeyPolicy,
            r#"{"Effect":"Allow","Action":"kms:*","Resource":"*"}"#,
            "Missing required field Principal",
        ),
        (
            PolicyKind::Trust,
            r#"{"Effect":"Allow","Action":"sts:AssumeRole"}"#,
            "Missing required field Principal",
        ),
        (
            PolicyKind::Trust,
            r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole","Resource":"*"}"#,
            "Has prohibited field Resource",
        ),
        (
            PolicyKind::Trust,
            r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}"#,
            "<accepted>",
        ),
        (
            PolicyKind::Resource,
            r#"{"Effect":"Allow","Principal":{"AWS":"1234"},"Action":"*","Resource":"*"}"#,
            r#"Invalid principal in policy: "AWS":"1234""#,
        ),
        (
            PolicyKind::Resource,
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/*"},"Action":"*","Resource":"*"}"#,
            r#"Invalid principal in policy: "AWS":"arn:aws:iam::111122223333:user/*""#,
        ),
        (
            PolicyKind::Resource,
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:s3:::bucket"},"Action":"*","Resource":"*"}"#,
            r#"Invalid principal in policy: "AWS":"arn:aws:s3:::bucket""#,
        ),
        (
            PolicyKind::Resource,
            r#"{"Effect":"Allow","Principal":{"Nobody":"x"},"Action":"*","Resource":"*"}"#,
            r#"Invalid principal in policy: "Nobody":"x""#,
        ),
        (
            PolicyKind::Resource,
            r#"{"Effect":"Allow","Principal":"me","Action":"*","Resource":"*"}"#,
            "Syntax errors in policy.",
        ),
        (
            PolicyKind::Resource,
            r#"{"Effect":"Allow","NotPrincipal":{"AWS":"111122223333"},"Action":"*","Resource":"*"}"#,
            "NotPrincipal is only supported with \"Effect\": \"Deny\" in resource-based policies",
        ),
        (
            PolicyKind::Resource,
            r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"NotPrincipal":{"AWS":"111122223333"},"Action":"*","Resource":"*"}"#,
            "Syntax errors in policy.",
        ),
        (
            PolicyKind::Resource,
            r#"{"Sid":"with spaces ok","Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:role/path/r","arn:aws:sts::111122223333:assumed-role/r/s"],"Service":"lambda.amazonaws.com"},"Action":"*","Resource":"*"}"#,
            "<accepted>",
        ),
    ];
    for (kind, statement, want) in table {
        assert_eq!(reason(&v12(statement), *kind), *want, "{kind:?} {statement}");
    }
    // Resource and key policies accept the 2008 version and no version.
    let legacy =
        r#"{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#;
    assert_eq!(reason(legacy, PolicyKind::KeyPolicy), "<accepted>");
    let none = r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"}]}"#;
    assert_eq!(reason(none, PolicyKind::Resource), "<accepted>");
}

#[test]
fn accepted_shapes() {
    let ok: &[&str] = &[
        r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":["arn:aws:s3:::b","*"]}"#,
        r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:s3:::b"}"#,
        r#"[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}]"#,
        r#"{"Effect":"Allow","Action":"service-prefix:action-name","Resource":"*","Condition":{"DateGreaterThan":{"aws:CurrentTime":"2017-07-01T00:00:00Z"},"DateLessThan":{"aws:CurrentTime":"2017-12-31T23:59:59Z"}}}"#,
        r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{}}"#,
        r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":"Department"}}}"#,
        r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b","Condition":{"DateGreaterThan":{"a":[]}}}"#,
        r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:cloudwatch:us-east-1::b"}"#,
        r#"{"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:invalid-service:::b"}"#,
        r#"{"Sid":"dsfsdfsdfsdfsdfsadfsd","Effect":"Deny","Action":"s3:ListBucket","Resource":"arn:aws:s3:::b"}"#,
        r#"{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"arn:aws:secretsmanager:*:*:secret:${aws:username}/*"}"#,
        r#"{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"stringequals":{"kms:ViaService":"x"}}}"#,
    ];
    for statement in ok {
        assert_eq!(
            reason(&v12(statement), PolicyKind::Identity),
            "<accepted>",
            "{statement}"
        );
    }
}

#[test]
fn round_trip() {
    let docs: &[(PolicyKind, &str)] = &[
        (
            PolicyKind::Identity,
            r#"{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"A1","Effect":"Allow","Action":["secretsmanager:Get*","kms:Decrypt"],"Resource":"arn:aws:secretsmanager:*:*:secret:${aws:username}/*","Condition":{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/32"]},"ForAnyValue:StringLike":{"aws:TagKeys":"cost*"},"NumericLessThanIfExists":{"s:n":5},"Bool":{"aws:SecureTransport":true},"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}},{"Effect":"Deny","NotAction":"iam:*","NotResource":["arn:aws:iam::*:user/*"]}]}"#,
        ),
        (
            PolicyKind::Resource,
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["111122223333","arn:aws:iam::444455556666:role/r"],"Service":"lambda.amazonaws.com"},"Action":"secretsmanager:GetSecretValue","Resource":"*"},{"Effect":"Deny","NotPrincipal":{"AWS":"111122223333"},"Action":"*","Resource":"*"},{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"Null":{"aws:PrincipalOrgID":"false"}}}]}"#,
        ),
        (
            PolicyKind::Trust,
            r#"{"Statement":{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}}"#,
        ),
    ];
    for (kind, json) in docs {
        let doc = PolicyDocument::parse_json(json, *kind).unwrap();
        let again = PolicyDocument::parse_json(&doc.to_json(), *kind).unwrap();
        assert_eq!(doc, again, "{}", doc.to_json());
    }
}
