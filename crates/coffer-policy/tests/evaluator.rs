//! Table-driven evaluator tests: precedence rules, principals, resource and key policies,
//! wildcards and case rules, every condition operator, policy variables.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use coffer_policy::{
    AuthzRequest, CompiledPolicy, DecisionEffect, DecisionReason, PolicyDocument, PolicyKind, Principal, Statement,
    VaultCapability, evaluate, is_public, vault_resource,
};

const A: &str = "111122223333";
const B: &str = "444455556666";
const SECRET: &str = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/db-AbCdEf";
const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn policy(kind: PolicyKind, statements: &str) -> CompiledPolicy {
    let json = format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#);
    match PolicyDocument::parse_json(&json, kind) {
        Ok(doc) => doc.compile("test"),
        Err(e) => panic!("policy rejected: {e}\n{json}"),
    }
}

struct Case {
    name: &'static str,
    identity: &'static [&'static str],
    resource: Option<&'static str>,
    key: Option<&'static str>,
    request: AuthzRequest,
    want: DecisionEffect,
}

fn run(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        let ids: Vec<CompiledPolicy> = c.identity.iter().map(|s| policy(PolicyKind::Identity, s)).collect();
        let id_refs: Vec<&CompiledPolicy> = ids.iter().collect();
        let res = c.resource.map(|s| policy(PolicyKind::Resource, s));
        let key = c.key.map(|s| policy(PolicyKind::KeyPolicy, s));
        let got = evaluate(&c.request, &id_refs, res.as_ref(), key.as_ref());
        if got.effect != c.want {
            failures.push(format!("{}: want {:?}, got {:?}", c.name, c.want, got));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn user_req(action: &str, resource: &str) -> AuthzRequest {
    AuthzRequest::new(Principal::user(A, "alice"), action, resource, A)
}

macro_rules! cases {
    ($($name:literal: [$($id:expr),*], $res:expr, $key:expr, $req:expr => $want:ident;)*) => {
        vec![$(Case {
            name: $name,
            identity: &[$($id),*],
            resource: $res,
            key: $key,
            request: $req,
            want: DecisionEffect::$want,
        }),*]
    };
}

const ALLOW_GET: &str = r#"{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#;
const ALLOW_ALL: &str = r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#;
const DENY_GET: &str = r#"{"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#;

#[test]
fn precedence_and_matching() {
    run(cases! {
        "no policy is an implicit deny": [], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => ImplicitDeny;
        "identity allow": [ALLOW_GET], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "other action not allowed": [ALLOW_GET], None, None, user_req("secretsmanager:PutSecretValue", SECRET) => ImplicitDeny;
        "deny wins in the same policy": [r#"{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => ExplicitDeny;
        "deny wins across policies": [ALLOW_ALL, DENY_GET], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => ExplicitDeny;
        "deny for another action does not matter": [ALLOW_ALL, DENY_GET], None, None, user_req("secretsmanager:DescribeSecret", SECRET) => Allow;
        "action wildcard *": [r#"{"Effect":"Allow","Action":"secretsmanager:*","Resource":"*"}"#], None, None, user_req("secretsmanager:DeleteSecret", SECRET) => Allow;
        "action wildcard prefix": [r#"{"Effect":"Allow","Action":"secretsmanager:Get*","Resource":"*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "action wildcard prefix miss": [r#"{"Effect":"Allow","Action":"secretsmanager:Get*","Resource":"*"}"#], None, None, user_req("secretsmanager:PutSecretValue", SECRET) => ImplicitDeny;
        "action wildcard ?": [r#"{"Effect":"Allow","Action":"kms:?ncrypt","Resource":"*"}"#], None, None, user_req("kms:Encrypt", KEY) => Allow;
        "action names ignore case": [r#"{"Effect":"Allow","Action":"SecretsManager:getsecretVALUE","Resource":"*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "service prefix must match": [r#"{"Effect":"Allow","Action":"ssm:GetSecretValue","Resource":"*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => ImplicitDeny;
        "NotAction allows the rest": [r#"{"Effect":"Allow","NotAction":"secretsmanager:DeleteSecret","Resource":"*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "NotAction excludes the listed": [r#"{"Effect":"Allow","NotAction":"secretsmanager:DeleteSecret","Resource":"*"}"#], None, None, user_req("secretsmanager:DeleteSecret", SECRET) => ImplicitDeny;
        "Deny with NotAction denies everything else": [ALLOW_ALL, r#"{"Effect":"Deny","NotAction":"secretsmanager:Describe*","Resource":"*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => ExplicitDeny;
        "Deny with NotAction spares the listed": [ALLOW_ALL, r#"{"Effect":"Deny","NotAction":"secretsmanager:Describe*","Resource":"*"}"#], None, None, user_req("secretsmanager:DescribeSecret", SECRET) => Allow;
        "exact resource": [r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/db-AbCdEf"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "resource * suffix": [r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "resource ? matches one char": [r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/db-??????"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "resource ? does not match two": [r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/db-?????"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => ImplicitDeny;
        "resource wildcard per ARN part": [r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:*:*:secret:app/*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "resource ARNs are case-sensitive": [r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:APP/*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => ImplicitDeny;
        "resource service part ignores case": [r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:SecretsManager:eu-west-1:111122223333:secret:app/*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "other account in resource ARN": [r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:eu-west-1:444455556666:secret:*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => ImplicitDeny;
        "NotResource allows the rest": [r#"{"Effect":"Allow","Action":"*","NotResource":"arn:aws:secretsmanager:*:*:secret:prod/*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "NotResource excludes the listed": [r#"{"Effect":"Allow","Action":"*","NotResource":"arn:aws:secretsmanager:*:*:secret:app/*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => ImplicitDeny;
        "Deny NotResource": [ALLOW_ALL, r#"{"Effect":"Deny","Action":"*","NotResource":"arn:aws:secretsmanager:*:*:secret:prod/*"}"#], None, None, user_req("secretsmanager:GetSecretValue", SECRET) => ExplicitDeny;
        "resource-less action on *": [r#"{"Effect":"Allow","Action":"secretsmanager:ListSecrets","Resource":"*"}"#], None, None, user_req("secretsmanager:ListSecrets", "*") => Allow;
        "resource-less action needs Resource *": [r#"{"Effect":"Allow","Action":"secretsmanager:ListSecrets","Resource":"arn:aws:secretsmanager:*:*:secret:*"}"#], None, None, user_req("secretsmanager:ListSecrets", "*") => ImplicitDeny;
    });
}

const RP_ALICE: &str = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}"#;
const RP_ACCOUNT_A: &str =
    r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}"#;
const RP_ACCOUNT_B: &str = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}"#;
const RP_BOB_B: &str = r#"{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::444455556666:user/bob"]},"Action":"secretsmanager:GetSecretValue","Resource":"*"}"#;
const RP_ROLE: &str = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}"#;
const RP_DENY_ALL: &str = r#"{"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*"}"#;
const RP_DENY_ALICE: &str =
    r#"{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"*","Resource":"*"}"#;
const RP_DENY_NOT_ALICE: &str = r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:user/alice","111122223333"]},"Action":"*","Resource":"*"}"#;
const RP_DENY_NOT_ALICE_NO_ACCOUNT: &str =
    r#"{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"*","Resource":"*"}"#;
const RP_DENY_NOT_SESSION: &str = r#"{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:role/app","arn:aws:sts::111122223333:assumed-role/app/s1","111122223333"]},"Action":"*","Resource":"*"}"#;

fn bob_b(action: &str) -> AuthzRequest {
    AuthzRequest::new(Principal::user(B, "bob"), action, SECRET, A)
}

#[test]
fn resource_policies_and_accounts() {
    run(cases! {
        "same account: resource policy naming the user grants alone": [], Some(RP_ALICE), None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "same account: identity allow suffices with a silent resource policy": [ALLOW_GET], Some(RP_BOB_B), None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "same account: account principal only delegates": [], Some(RP_ACCOUNT_A), None, user_req("secretsmanager:GetSecretValue", SECRET) => ImplicitDeny;
        "same account: account principal plus identity allow": [ALLOW_GET], Some(RP_ACCOUNT_A), None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "resource policy deny beats identity allow": [ALLOW_ALL], Some(RP_DENY_ALL), None, user_req("secretsmanager:GetSecretValue", SECRET) => ExplicitDeny;
        "resource policy deny naming the user": [ALLOW_ALL], Some(RP_DENY_ALICE), None, user_req("secretsmanager:GetSecretValue", SECRET) => ExplicitDeny;
        "resource policy deny naming someone else": [ALLOW_ALL], Some(RP_DENY_ALICE), None, AuthzRequest::new(Principal::user(A, "carol"), "secretsmanager:GetSecretValue", SECRET, A) => Allow;
        "NotPrincipal deny spares user and account": [ALLOW_ALL], Some(RP_DENY_NOT_ALICE), None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "NotPrincipal deny hits others": [ALLOW_ALL], Some(RP_DENY_NOT_ALICE), None, AuthzRequest::new(Principal::user(A, "carol"), "secretsmanager:GetSecretValue", SECRET, A) => ExplicitDeny;
        "NotPrincipal without the account still denies the user": [ALLOW_ALL], Some(RP_DENY_NOT_ALICE_NO_ACCOUNT), None, user_req("secretsmanager:GetSecretValue", SECRET) => ExplicitDeny;
        "NotPrincipal listing role, session and account spares the session": [ALLOW_ALL], Some(RP_DENY_NOT_SESSION), None, AuthzRequest::new(Principal::assumed_role(A, "app", "s1"), "secretsmanager:GetSecretValue", SECRET, A) => Allow;
        "NotPrincipal: another session of the role is denied": [ALLOW_ALL], Some(RP_DENY_NOT_SESSION), None, AuthzRequest::new(Principal::assumed_role(A, "app", "s2"), "secretsmanager:GetSecretValue", SECRET, A) => ExplicitDeny;
        "role ARN in resource policy matches its sessions": [], Some(RP_ROLE), None, AuthzRequest::new(Principal::assumed_role(A, "app", "any"), "secretsmanager:GetSecretValue", SECRET, A) => Allow;
        "role ARN does not match another role": [], Some(RP_ROLE), None, AuthzRequest::new(Principal::assumed_role(A, "other", "any"), "secretsmanager:GetSecretValue", SECRET, A) => ImplicitDeny;
        "cross-account: no resource policy": [ALLOW_ALL], None, None, bob_b("secretsmanager:GetSecretValue") => ImplicitDeny;
        "cross-account: resource policy but no identity allow": [], Some(RP_BOB_B), None, bob_b("secretsmanager:GetSecretValue") => ImplicitDeny;
        "cross-account: identity allow but resource policy silent": [ALLOW_ALL], Some(RP_ALICE), None, bob_b("secretsmanager:GetSecretValue") => ImplicitDeny;
        "cross-account: both allow (user named)": [ALLOW_GET], Some(RP_BOB_B), None, bob_b("secretsmanager:GetSecretValue") => Allow;
        "cross-account: both allow (account named)": [ALLOW_GET], Some(RP_ACCOUNT_B), None, bob_b("secretsmanager:GetSecretValue") => Allow;
        "cross-account: root of the other account": [], Some(RP_ACCOUNT_B), None, AuthzRequest::new(Principal::root(B), "secretsmanager:GetSecretValue", SECRET, A) => Allow;
        "root of the owning account needs no policy": [], None, None, AuthzRequest::new(Principal::root(A), "secretsmanager:DeleteSecret", SECRET, A) => Allow;
        "root is stopped by a resource policy deny": [], Some(RP_DENY_ALL), None, AuthzRequest::new(Principal::root(A), "secretsmanager:GetSecretValue", SECRET, A) => ExplicitDeny;
        "root of another account without resource policy": [], None, None, AuthzRequest::new(Principal::root(B), "secretsmanager:GetSecretValue", SECRET, A) => ImplicitDeny;
        "public principal *": [], Some(r#"{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#), None, bob_b("secretsmanager:GetSecretValue") => ImplicitDeny;
        "public principal * same account grants": [], Some(r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}"#), None, user_req("secretsmanager:GetSecretValue", SECRET) => Allow;
        "service principal never matches a user": [], Some(r#"{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"*","Resource":"*"}"#), None, user_req("secretsmanager:GetSecretValue", SECRET) => ImplicitDeny;
    });
}

const KP_DEFAULT: &str = r#"{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"}"#;
const KP_ALICE: &str = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:Decrypt","Resource":"*"}"#;
const KP_ACCOUNT_B: &str = r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":["kms:Decrypt","kms:Encrypt"],"Resource":"*"}"#;
const ALLOW_DECRYPT: &str = r#"{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}"#;

fn kms(principal: Principal, action: &str) -> AuthzRequest {
    AuthzRequest::new(principal, action, KEY, A)
}

#[test]
fn kms_key_policies() {
    run(cases! {
        "key policy delegating to IAM plus identity allow": [ALLOW_DECRYPT], None, Some(KP_DEFAULT), kms(Principal::user(A, "alice"), "kms:Decrypt") => Allow;
        "key policy delegating to IAM without identity allow": [], None, Some(KP_DEFAULT), kms(Principal::user(A, "alice"), "kms:Decrypt") => ImplicitDeny;
        "identity allow without key policy allow is not enough": [ALLOW_DECRYPT], None, Some(KP_ACCOUNT_B), kms(Principal::user(A, "alice"), "kms:Decrypt") => ImplicitDeny;
        "key policy naming the user grants alone": [], None, Some(KP_ALICE), kms(Principal::user(A, "alice"), "kms:Decrypt") => Allow;
        "key policy naming the user: other action": [], None, Some(KP_ALICE), kms(Principal::user(A, "alice"), "kms:Encrypt") => ImplicitDeny;
        "root allowed by the default key policy": [], None, Some(KP_DEFAULT), kms(Principal::root(A), "kms:ScheduleKeyDeletion") => Allow;
        "root locked out by a key policy without the account": [], None, Some(KP_ALICE), kms(Principal::root(A), "kms:Decrypt") => ImplicitDeny;
        "identity deny beats key policy allow": [DENY_GET, r#"{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}"#], None, Some(KP_ALICE), kms(Principal::user(A, "alice"), "kms:Decrypt") => ExplicitDeny;
        "key policy deny beats everything": [ALLOW_ALL], None, Some(r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"kms:*","Resource":"*"},{"Effect":"Deny","Principal":"*","Action":"kms:Decrypt","Resource":"*"}"#), kms(Principal::user(A, "alice"), "kms:Decrypt") => ExplicitDeny;
        "cross-account key use: key policy and identity allow": [ALLOW_DECRYPT], None, Some(KP_ACCOUNT_B), kms(Principal::user(B, "bob"), "kms:Decrypt") => Allow;
        "cross-account key use: no identity allow": [], None, Some(KP_ACCOUNT_B), kms(Principal::user(B, "bob"), "kms:Decrypt") => ImplicitDeny;
        "cross-account key use: key policy silent": [ALLOW_DECRYPT], None, Some(KP_DEFAULT), kms(Principal::user(B, "bob"), "kms:Decrypt") => ImplicitDeny;
        "ViaService condition in key policy": [ALLOW_DECRYPT], None, Some(r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.eu-west-1.amazonaws.com"}}}"#), kms(Principal::user(A, "alice"), "kms:Decrypt").with("kms:ViaService", "secretsmanager.eu-west-1.amazonaws.com") => Allow;
        "ViaService condition in key policy, direct call": [ALLOW_DECRYPT], None, Some(r#"{"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.eu-west-1.amazonaws.com"}}}"#), kms(Principal::user(A, "alice"), "kms:Decrypt") => ImplicitDeny;
        "encryption context condition": [r#"{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:SecretARN":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/db-AbCdEf"}}}"#], None, Some(KP_DEFAULT), kms(Principal::user(A, "alice"), "kms:Decrypt").with("kms:EncryptionContext:SecretARN", SECRET) => Allow;
        "encryption context mismatch": [r#"{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:SecretARN":"arn:aws:secretsmanager:eu-west-1:111122223333:secret:other-AbCdEf"}}}"#], None, Some(KP_DEFAULT), kms(Principal::user(A, "alice"), "kms:Decrypt").with("kms:EncryptionContext:SecretARN", SECRET) => ImplicitDeny;
    });
}

#[test]
fn decision_reports_reason_and_statements() {
    let id = policy(
        PolicyKind::Identity,
        r#"{"Sid":"Read","Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}"#,
    );
    let kp = policy(PolicyKind::KeyPolicy, KP_DEFAULT);
    let d = evaluate(
        &kms(Principal::user(A, "alice"), "kms:Decrypt"),
        &[&id],
        None,
        Some(&kp),
    );
    assert_eq!(d.reason, DecisionReason::KeyPolicyDelegation);
    let sids: Vec<_> = d.statements.iter().map(|s| s.sid.clone().unwrap_or_default()).collect();
    assert_eq!(sids, ["Enable IAM User Permissions", "Read"]);
    let deny = policy(
        PolicyKind::Identity,
        r#"{"Sid":"NoKms","Effect":"Deny","Action":"kms:*","Resource":"*"}"#,
    );
    let d = evaluate(
        &kms(Principal::user(A, "alice"), "kms:Decrypt"),
        &[&id, &deny],
        None,
        Some(&kp),
    );
    assert_eq!(
        (d.effect, d.reason),
        (DecisionEffect::ExplicitDeny, DecisionReason::ExplicitDeny)
    );
    assert_eq!(d.statements.len(), 1);
    assert_eq!(d.statements[0].sid.as_deref(), Some("NoKms"));
}

/// `(condition block, request) -> allowed?` with an identity policy `Allow * on *` plus the block.
fn cond(block: &str, request: AuthzRequest) -> bool {
    let p = policy(
        PolicyKind::Identity,
        &format!(r#"{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{block}}}"#),
    );
    evaluate(&request, &[&p], None, None).is_allowed()
}

fn r() -> AuthzRequest {
    user_req("secretsmanager:GetSecretValue", SECRET)
}

#[test]
fn condition_operators() {
    let table: Vec<(&str, &str, AuthzRequest, bool)> = vec![
        (
            "StringEquals hit",
            r#"{"StringEquals":{"secretsmanager:VersionStage":"AWSCURRENT"}}"#,
            r().with("secretsmanager:VersionStage", "AWSCURRENT"),
            true,
        ),
        (
            "StringEquals case-sensitive",
            r#"{"StringEquals":{"secretsmanager:VersionStage":"awscurrent"}}"#,
            r().with("secretsmanager:VersionStage", "AWSCURRENT"),
            false,
        ),
        (
            "StringEquals ORs values",
            r#"{"StringEquals":{"secretsmanager:VersionStage":["AWSPREVIOUS","AWSCURRENT"]}}"#,
            r().with("secretsmanager:VersionStage", "AWSCURRENT"),
            true,
        ),
        (
            "StringEquals missing key",
            r#"{"StringEquals":{"secretsmanager:VersionStage":"AWSCURRENT"}}"#,
            r(),
            false,
        ),
        (
            "condition keys ignore case",
            r#"{"StringEquals":{"SecretsManager:versionstage":"AWSCURRENT"}}"#,
            r().with("secretsmanager:VersionStage", "AWSCURRENT"),
            true,
        ),
        (
            "StringNotEquals hit",
            r#"{"StringNotEquals":{"aws:PrincipalTag/team":"red"}}"#,
            r().with("aws:PrincipalTag/team", "blue"),
            true,
        ),
        (
            "StringNotEquals miss",
            r#"{"StringNotEquals":{"aws:PrincipalTag/team":"red"}}"#,
            r().with("aws:PrincipalTag/team", "red"),
            false,
        ),
        (
            "StringNotEquals missing key is true",
            r#"{"StringNotEquals":{"aws:PrincipalTag/team":"red"}}"#,
            r(),
            true,
        ),
        (
            "StringEqualsIgnoreCase",
            r#"{"StringEqualsIgnoreCase":{"aws:ResourceTag/env":"PROD"}}"#,
            r().with("aws:ResourceTag/env", "prod"),
            true,
        ),
        (
            "StringNotEqualsIgnoreCase",
            r#"{"StringNotEqualsIgnoreCase":{"aws:ResourceTag/env":"PROD"}}"#,
            r().with("aws:ResourceTag/env", "prod"),
            false,
        ),
        (
            "StringLike",
            r#"{"StringLike":{"secretsmanager:SecretId":"arn:aws:secretsmanager:*:*:secret:app/*"}}"#,
            r().with("secretsmanager:SecretId", SECRET),
            true,
        ),
        (
            "StringLike ?",
            r#"{"StringLike":{"aws:ResourceTag/env":"pr?d"}}"#,
            r().with("aws:ResourceTag/env", "prod"),
            true,
        ),
        (
            "StringNotLike",
            r#"{"StringNotLike":{"aws:ResourceTag/env":"pr*"}}"#,
            r().with("aws:ResourceTag/env", "prod"),
            false,
        ),
        (
            "StringNotLike missing is true",
            r#"{"StringNotLike":{"aws:ResourceTag/env":"pr*"}}"#,
            r(),
            true,
        ),
        (
            "NumericEquals",
            r#"{"NumericEquals":{"s:n":"10"}}"#,
            r().with("s:n", "10.0"),
            true,
        ),
        (
            "NumericNotEquals",
            r#"{"NumericNotEquals":{"s:n":"10"}}"#,
            r().with("s:n", "11"),
            true,
        ),
        (
            "NumericLessThan",
            r#"{"NumericLessThan":{"s:n":10}}"#,
            r().with("s:n", "9"),
            true,
        ),
        (
            "NumericLessThan equal",
            r#"{"NumericLessThan":{"s:n":10}}"#,
            r().with("s:n", "10"),
            false,
        ),
        (
            "NumericLessThanEquals",
            r#"{"NumericLessThanEquals":{"s:n":10}}"#,
            r().with("s:n", "10"),
            true,
        ),
        (
            "NumericGreaterThan",
            r#"{"NumericGreaterThan":{"s:n":"10"}}"#,
            r().with("s:n", "10.5"),
            true,
        ),
        (
            "NumericGreaterThanEquals",
            r#"{"NumericGreaterThanEquals":{"s:n":"10"}}"#,
            r().with("s:n", "9"),
            false,
        ),
        (
            "Numeric non-number request value",
            r#"{"NumericGreaterThan":{"s:n":"10"}}"#,
            r().with("s:n", "many"),
            false,
        ),
        (
            "DateLessThan",
            r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#,
            r().with("aws:CurrentTime", "2026-05-01T12:00:00Z"),
            true,
        ),
        (
            "DateGreaterThan",
            r#"{"DateGreaterThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#,
            r().with("aws:CurrentTime", "2026-05-01T12:00:00Z"),
            false,
        ),
        (
            "DateEquals epoch vs ISO",
            r#"{"DateEquals":{"aws:CurrentTime":"1700000000"}}"#,
            r().with("aws:CurrentTime", "2023-11-14T22:13:20Z"),
            true,
        ),
        (
            "DateNotEquals",
            r#"{"DateNotEquals":{"aws:CurrentTime":"2023-11-14"}}"#,
            r().with("aws:CurrentTime", "2023-11-14T00:00:00Z"),
            false,
        ),
        (
            "DateLessThanEquals",
            r#"{"DateLessThanEquals":{"aws:EpochTime":"2023-11-14T22:13:20+00:00"}}"#,
            r().with("aws:EpochTime", "1700000000"),
            true,
        ),
        (
            "DateGreaterThanEquals offset",
            r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2023-11-14T23:00:00+01:00"}}"#,
            r().with("aws:CurrentTime", "2023-11-14T22:00:00Z"),
            true,
        ),
        (
            "Date missing key",
            r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#,
            r(),
            false,
        ),
        (
            "Bool true",
            r#"{"Bool":{"aws:SecureTransport":"true"}}"#,
            r().with("aws:SecureTransport", "true"),
            true,
        ),
        (
            "Bool JSON bool, any case",
            r#"{"Bool":{"aws:SecureTransport":true}}"#,
            r().with("aws:SecureTransport", "TRUE"),
            true,
        ),
        (
            "Bool false mismatch",
            r#"{"Bool":{"aws:SecureTransport":"false"}}"#,
            r().with("aws:SecureTransport", "true"),
            false,
        ),
        (
            "BinaryEquals",
            r#"{"BinaryEquals":{"s:b":"QmluYXJ5"}}"#,
            r().with("s:b", "QmluYXJ5"),
            true,
        ),
        (
            "BinaryEquals miss",
            r#"{"BinaryEquals":{"s:b":"QmluYXJ5"}}"#,
            r().with("s:b", "QmluYXJ6"),
            false,
        ),
        (
            "IpAddress v4",
            r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
            r().with("aws:SourceIp", "203.0.113.7"),
            true,
        ),
        (
            "IpAddress v4 outside",
            r#"{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}"#,
            r().with("aws:SourceIp", "203.0.114.7"),
            false,
        ),
        (
            "IpAddress v6",
            r#"{"IpAddress":{"aws:SourceIp":"2001:db8::/32"}}"#,
            r().with("aws:SourceIp", "2001:db8:1::5"),
            true,
        ),
        (
            "IpAddress bare host",
            r#"{"IpAddress":{"aws:SourceIp":"10.0.0.1"}}"#,
            r().with("aws:SourceIp", "10.0.0.1"),
            true,
        ),
        (
            "NotIpAddress",
            r#"{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}"#,
            r().with("aws:SourceIp", "10.1.2.3"),
            false,
        ),
        (
            "NotIpAddress outside",
            r#"{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}"#,
            r().with("aws:SourceIp", "8.8.8.8"),
            true,
        ),
        (
            "ArnEquals",
            r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}"#,
            r(),
            true,
        ),
        (
            "ArnLike part wildcard",
            r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/al*"}}"#,
            r(),
            true,
        ),
        (
            "ArnLike needs six parts",
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:iam::*:user/*"}}"#,
            r().with("aws:SourceArn", "not-an-arn"),
            false,
        ),
        (
            "ArnNotEquals",
            r#"{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/alice"}}"#,
            r(),
            false,
        ),
        (
            "ArnNotLike",
            r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/*"}}"#,
            r(),
            true,
        ),
        (
            "Null true: key absent",
            r#"{"Null":{"aws:ResourceTag/env":"true"}}"#,
            r(),
            true,
        ),
        (
            "Null true: key present",
            r#"{"Null":{"aws:ResourceTag/env":"true"}}"#,
            r().with("aws:ResourceTag/env", "x"),
            false,
        ),
        (
            "Null false: key present",
            r#"{"Null":{"aws:ResourceTag/env":"false"}}"#,
            r().with("aws:ResourceTag/env", "x"),
            true,
        ),
        (
            "Null false: key absent",
            r#"{"Null":{"aws:ResourceTag/env":"false"}}"#,
            r(),
            false,
        ),
        (
            "IfExists: missing key is true",
            r#"{"StringEqualsIfExists":{"aws:ResourceTag/env":"prod"}}"#,
            r(),
            true,
        ),
        (
            "IfExists: present and matching",
            r#"{"StringEqualsIfExists":{"aws:ResourceTag/env":"prod"}}"#,
            r().with("aws:ResourceTag/env", "prod"),
            true,
        ),
        (
            "IfExists: present and not matching",
            r#"{"StringEqualsIfExists":{"aws:ResourceTag/env":"prod"}}"#,
            r().with("aws:ResourceTag/env", "dev"),
            false,
        ),
        (
            "IfExists on Numeric",
            r#"{"NumericLessThanIfExists":{"s:n":"3"}}"#,
            r(),
            true,
        ),
        (
            "IfExists on Date",
            r#"{"DateGreaterThanIfExists":{"s:d":"2020-01-01"}}"#,
            r().with("s:d", "2019-01-01"),
            false,
        ),
        (
            "IfExists on IpAddress",
            r#"{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}"#,
            r(),
            true,
        ),
        (
            "IfExists on Arn",
            r#"{"ArnLikeIfExists":{"aws:SourceArn":"arn:aws:s3:::b/*"}}"#,
            r(),
            true,
        ),
        (
            "IfExists on Bool",
            r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"#,
            r(),
            true,
        ),
        (
            "IfExists on negated",
            r#"{"StringNotEqualsIfExists":{"aws:ResourceTag/env":"prod"}}"#,
            r().with("aws:ResourceTag/env", "prod"),
            false,
        ),
        (
            "ForAnyValue hit",
            r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env","team"]}}"#,
            r().with_multi("aws:TagKeys", ["team", "cost"]),
            true,
        ),
        (
            "ForAnyValue miss",
            r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env"]}}"#,
            r().with_multi("aws:TagKeys", ["team", "cost"]),
            false,
        ),
        (
            "ForAnyValue missing key is false",
            r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["env"]}}"#,
            r(),
            false,
        ),
        (
            "ForAllValues all in set",
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}"#,
            r().with_multi("aws:TagKeys", ["team", "env"]),
            true,
        ),
        (
            "ForAllValues one outside",
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}"#,
            r().with_multi("aws:TagKeys", ["team", "cost"]),
            false,
        ),
        (
            "ForAllValues missing key is true",
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env"]}}"#,
            r(),
            true,
        ),
        (
            "ForAllValues empty set is true",
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["env"]}}"#,
            r().with_multi("aws:TagKeys", Vec::<String>::new()),
            true,
        ),
        (
            "ForAllValues:StringNotEquals",
            r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret"]}}"#,
            r().with_multi("aws:TagKeys", ["a", "b"]),
            true,
        ),
        (
            "ForAllValues:StringNotEquals one forbidden",
            r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["secret"]}}"#,
            r().with_multi("aws:TagKeys", ["a", "secret"]),
            false,
        ),
        (
            "ForAnyValue:StringNotEquals",
            r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["secret"]}}"#,
            r().with_multi("aws:TagKeys", ["secret", "a"]),
            true,
        ),
        (
            "ForAnyValue:StringLike",
            r#"{"ForAnyValue:StringLike":{"aws:TagKeys":["cost*"]}}"#,
            r().with_multi("aws:TagKeys", ["costcenter"]),
            true,
        ),
        (
            "ForAnyValue IfExists missing",
            r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":["env"]}}"#,
            r(),
            true,
        ),
        (
            "multivalued key, no qualifier, positive: any",
            r#"{"StringEquals":{"aws:TagKeys":"env"}}"#,
            r().with_multi("aws:TagKeys", ["a", "env"]),
            true,
        ),
        (
            "multivalued key, no qualifier, negated: none",
            r#"{"StringNotEquals":{"aws:TagKeys":"env"}}"#,
            r().with_multi("aws:TagKeys", ["a", "env"]),
            false,
        ),
        (
            "two operators AND",
            r#"{"StringEquals":{"aws:ResourceTag/env":"prod"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
            r().with("aws:ResourceTag/env", "prod").with("aws:SourceIp", "11.0.0.1"),
            false,
        ),
        (
            "two keys AND",
            r#"{"StringEquals":{"aws:ResourceTag/env":"prod","aws:ResourceTag/team":"red"}}"#,
            r().with("aws:ResourceTag/env", "prod"),
            false,
        ),
        (
            "secretsmanager:ResourceTag",
            r#"{"StringEquals":{"secretsmanager:ResourceTag/env":"prod"}}"#,
            r().with("secretsmanager:ResourceTag/env", "prod"),
            true,
        ),
        (
            "aws:RequestTag",
            r#"{"StringEquals":{"aws:RequestTag/env":"prod"}}"#,
            r().with("aws:RequestTag/env", "prod"),
            true,
        ),
        (
            "derived aws:PrincipalTag",
            r#"{"StringEquals":{"aws:PrincipalTag/team":"red"}}"#,
            AuthzRequest::new(Principal::user(A, "alice").with_tag("Team", "red"), "s:a", SECRET, A),
            true,
        ),
        (
            "derived aws:PrincipalAccount",
            r#"{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}"#,
            r(),
            true,
        ),
        (
            "derived aws:PrincipalArn for a session is the role",
            r#"{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::111122223333:role/app"}}"#,
            AuthzRequest::new(Principal::assumed_role(A, "app", "s"), "s:a", SECRET, A),
            true,
        ),
        (
            "derived aws:username",
            r#"{"StringEquals":{"aws:username":"alice"}}"#,
            r(),
            true,
        ),
    ];
    let mut failures = Vec::new();
    for (name, block, request, want) in table {
        if cond(block, request) != want {
            failures.push(name);
        }
    }
    assert!(failures.is_empty(), "failing: {failures:?}");
}

#[test]
fn every_operator_is_covered_with_and_without_if_exists() {
    // Each operator parses alone and with IfExists (except Null), with both set qualifiers.
    for op in coffer_policy::Operator::all() {
        let value = match op.name() {
            n if n.starts_with("Numeric") => "1",
            n if n.starts_with("Date") => "2020-01-01T00:00:00Z",
            n if n.contains("IpAddress") => "10.0.0.0/8",
            n if n.starts_with("Arn") => "arn:aws:iam::111122223333:user/x",
            "Null" | "Bool" => "true",
            _ => "x",
        };
        for name in [
            op.name().to_owned(),
            format!("ForAnyValue:{}", op.name()),
            format!("ForAllValues:{}IfExists", op.name()),
        ] {
            let json = format!(
                r#"{{"Version":"2012-10-17","Statement":{{"Effect":"Allow","Action":"*","Resource":"*","Condition":{{"{name}":{{"k:k":"{value}"}}}}}}}}"#
            );
            let res = PolicyDocument::parse_json(&json, PolicyKind::Identity);
            if name.ends_with("NullIfExists") {
                assert!(res.is_err(), "{name} should be rejected");
            } else {
                assert!(res.is_ok(), "{name}: {res:?}");
            }
        }
    }
}

#[test]
fn policy_variables() {
    let p = policy(
        PolicyKind::Identity,
        r#"{"Effect":"Allow","Action":"secretsmanager:*","Resource":"arn:aws:secretsmanager:*:*:secret:home/${aws:username}/*"}"#,
    );
    let req = |user: &str, secret: &str| {
        AuthzRequest::new(
            Principal::user(A, user),
            "secretsmanager:GetSecretValue",
            &format!("arn:aws:secretsmanager:eu-west-1:111122223333:secret:{secret}"),
            A,
        )
    };
    assert!(evaluate(&req("alice", "home/alice/db-AbCdEf"), &[&p], None, None).is_allowed());
    assert!(!evaluate(&req("alice", "home/bob/db-AbCdEf"), &[&p], None, None).is_allowed());
    // A role session has no aws:username: the resource entry does not match.
    let role = AuthzRequest::new(
        Principal::assumed_role(A, "r", "s"),
        "secretsmanager:GetSecretValue",
        "arn:aws:secretsmanager:eu-west-1:111122223333:secret:home/-/x",
        A,
    );
    assert!(!evaluate(&role, &[&p], None, None).is_allowed());

    // Principal tags in resources and conditions; ${*} is a literal star.
    let p = policy(
        PolicyKind::Identity,
        r#"{"Effect":"Allow","Action":"*","Resource":"arn:aws:secretsmanager:*:*:secret:${aws:PrincipalTag/team}/${*}","Condition":{"StringEquals":{"aws:ResourceTag/owner":"${aws:PrincipalTag/team}"}}}"#,
    );
    let mk = |secret: &str, owner: &str| {
        AuthzRequest::new(
            Principal::user(A, "alice").with_tag("team", "red"),
            "secretsmanager:GetSecretValue",
            &format!("arn:aws:secretsmanager:eu-west-1:111122223333:secret:{secret}"),
            A,
        )
        .with("aws:ResourceTag/owner", owner)
    };
    assert!(evaluate(&mk("red/*", "red"), &[&p], None, None).is_allowed());
    assert!(!evaluate(&mk("red/x", "red"), &[&p], None, None).is_allowed());
    assert!(!evaluate(&mk("red/*", "blue"), &[&p], None, None).is_allowed());

    // Default values and ${?}/${$}.
    let p = policy(
        PolicyKind::Identity,
        r#"{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"s:k":"${aws:PrincipalTag/dept, 'none'}${?}${$}"}}}"#,
    );
    assert!(evaluate(&r().with("s:k", "none?$"), &[&p], None, None).is_allowed());

    // In a 2008-10-17 resource policy variables are literal text.
    let old = PolicyDocument::parse_json(
        r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"s:k":"${aws:username}"}}}}"#,
        PolicyKind::Resource,
    )
    .unwrap()
    .compile("old");
    assert!(evaluate(&r().with("s:k", "${aws:username}"), &[], Some(&old), None).is_allowed());
    assert!(!evaluate(&r().with("s:k", "alice"), &[], Some(&old), None).is_allowed());
}

#[test]
fn vault_statements_share_the_evaluator() {
    let statements = vec![
        Statement::vault("secret/data/+/app/*", &[VaultCapability::Read, VaultCapability::List]).unwrap(),
        Statement::vault("secret/data/prod/app/root", &[VaultCapability::Deny]).unwrap(),
    ];
    let p = CompiledPolicy::from_statements("vault:dev", PolicyKind::Identity, statements);
    let req = |cap: VaultCapability, path: &str| {
        AuthzRequest::new(Principal::user(A, "alice"), &cap.action(), &vault_resource(path), A)
    };
    let effect = |cap, path| evaluate(&req(cap, path), &[&p], None, None).effect;
    assert_eq!(
        effect(VaultCapability::Read, "secret/data/dev/app/db"),
        DecisionEffect::Allow
    );
    assert_eq!(
        effect(VaultCapability::List, "secret/data/prod/app/x/y"),
        DecisionEffect::Allow
    );
    assert_eq!(
        effect(VaultCapability::Update, "secret/data/dev/app/db"),
        DecisionEffect::ImplicitDeny
    );
    assert_eq!(
        effect(VaultCapability::Read, "secret/data/dev/other/db"),
        DecisionEffect::ImplicitDeny
    );
    assert_eq!(
        effect(VaultCapability::Read, "secret/data/prod/app/root"),
        DecisionEffect::ExplicitDeny
    );
    // An IAM statement does not match Vault paths unless it says `*`.
    let iam = policy(PolicyKind::Identity, ALLOW_GET);
    assert!(!evaluate(&req(VaultCapability::Read, "secret/x"), &[&iam], None, None).is_allowed());
}

#[test]
fn block_public_policy() {
    let table: &[(&str, bool)] = &[
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"*","Resource":"*"}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Principal":{"AWS":["111122223333","*"]},"Action":"*","Resource":"*"}"#,
            true,
        ),
        (RP_ALICE, false),
        (RP_ACCOUNT_B, false),
        (RP_DENY_ALL, false),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}}"#,
            false,
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc"}}}"#,
            false,
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"ArnEquals":{"aws:SourceArn":"arn:aws:lambda:eu-west-1:111122223333:function:f"}}}"#,
            false,
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111122223333"}}}"#,
            false,
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"203.0.113.0/24"}}}"#,
            false,
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"0.0.0.0/0"}}}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringLike":{"aws:PrincipalAccount":"*"}}}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:PrincipalAccount":"111122223333"}}}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringNotEquals":{"aws:PrincipalAccount":"444455556666"}}}"#,
            true,
        ),
        (
            r#"{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*","Condition":{"StringEquals":{"aws:ResourceTag/x":"y"}}}"#,
            true,
        ),
    ];
    for (statement, want) in table {
        assert_eq!(
            is_public(&policy(PolicyKind::Resource, statement)),
            *want,
            "{statement}"
        );
    }
}
