//! Property tests: adding a `Deny` statement anywhere never widens access; adding an `Allow`
//! never narrows it; generated documents survive parse → serialize → parse.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use coffer_policy::{AuthzRequest, CompiledPolicy, DecisionEffect, PolicyDocument, PolicyKind, Principal, evaluate};
use proptest::prelude::*;

const A: &str = "111122223333";
const B: &str = "444455556666";

const ACTIONS: &[&str] = &[
    "secretsmanager:GetSecretValue",
    "secretsmanager:*",
    "secretsmanager:Get*",
    "kms:Decrypt",
    "kms:*",
    "*",
];
const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:secretsmanager:*:*:secret:app/*",
    "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/db-AbCdEf",
    "arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/*",
    "arn:aws:kms:*:111122223333:key/*",
    "arn:aws:secretsmanager:*:*:secret:${aws:username}/*",
];
const CONDITIONS: &[&str] = &[
    "",
    r#","Condition":{"StringEquals":{"aws:ResourceTag/env":"prod"}}"#,
    r#","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
    r#","Condition":{"StringNotEqualsIfExists":{"aws:ResourceTag/env":"dev"}}"#,
    r#","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["env","team"]}}"#,
    r#","Condition":{"Null":{"aws:ResourceTag/env":"true"}}"#,
];
const PRINCIPALS: &[&str] = &[
    r#""Principal":"*""#,
    r#""Principal":{"AWS":"111122223333"}"#,
    r#""Principal":{"AWS":"arn:aws:iam::444455556666:root"}"#,
    r#""Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
    r#""Principal":{"AWS":"arn:aws:iam::444455556666:user/bob"}"#,
    r#""Principal":{"AWS":"arn:aws:iam::111122223333:role/app"}"#,
];

#[derive(Clone, Debug)]
struct Stmt {
    allow: bool,
    not_action: bool,
    action: usize,
    not_resource: bool,
    resource: usize,
    condition: usize,
    principal: usize,
    not_principal: bool,
}

fn stmt() -> impl Strategy<Value = Stmt> {
    (
        any::<bool>(),
        prop::bool::weighted(0.2),
        0..ACTIONS.len(),
        prop::bool::weighted(0.2),
        0..RESOURCES.len(),
        0..CONDITIONS.len(),
        0..PRINCIPALS.len(),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(allow, not_action, action, not_resource, resource, condition, principal, not_principal)| Stmt {
                allow,
                not_action,
                action,
                not_resource,
                resource,
                condition,
                principal,
                not_principal,
            },
        )
}

impl Stmt {
    fn json(&self, with_principal: bool) -> String {
        let effect = if self.allow { "Allow" } else { "Deny" };
        let action_key = if self.not_action { "NotAction" } else { "Action" };
        let resource_key = if self.not_resource { "NotResource" } else { "Resource" };
        let principal = if with_principal {
            let p = PRINCIPALS[self.principal];
            // NotPrincipal is only valid with Deny.
            if self.not_principal && !self.allow && p != r#""Principal":"*""# {
                format!("{},", p.replacen("Principal", "NotPrincipal", 1))
            } else {
                format!("{p},")
            }
        } else {
            String::new()
        };
        format!(
            r#"{{"Effect":"{effect}",{principal}"{action_key}":"{}","{resource_key}":"{}"{}}}"#,
            ACTIONS[self.action], RESOURCES[self.resource], CONDITIONS[self.condition]
        )
    }
}

fn compile(kind: PolicyKind, statements: &[String]) -> Option<CompiledPolicy> {
    if statements.is_empty() {
        return None;
    }
    let json = format!(r#"{{"Version":"2012-10-17","Statement":[{}]}}"#, statements.join(","));
    match PolicyDocument::parse_json(&json, kind) {
        Ok(doc) => Some(doc.compile("generated")),
        Err(e) => panic!("generated policy rejected: {e}\n{json}"),
    }
}

#[derive(Clone, Debug)]
struct Setup {
    identity: Vec<Stmt>,
    resource: Vec<Stmt>,
    key: Vec<Stmt>,
}

impl Setup {
    fn compile(&self) -> (Option<CompiledPolicy>, Option<CompiledPolicy>, Option<CompiledPolicy>) {
        let id: Vec<String> = self.identity.iter().map(|s| s.json(false)).collect();
        let res: Vec<String> = self.resource.iter().map(|s| s.json(true)).collect();
        let key: Vec<String> = self.key.iter().map(|s| s.json(true)).collect();
        (
            compile(PolicyKind::Identity, &id),
            compile(PolicyKind::Resource, &res),
            compile(PolicyKind::KeyPolicy, &key),
        )
    }

    /// Evaluates every request in the fixed sample; `kms:` requests use the key policy (an
    /// empty key policy means "no statement", which locks the key), others the resource policy.
    fn decide(&self, requests: &[AuthzRequest]) -> Vec<DecisionEffect> {
        let (id, res, key) = self.compile();
        let ids: Vec<&CompiledPolicy> = id.iter().collect();
        let empty_key = CompiledPolicy::from_statements("empty", PolicyKind::KeyPolicy, Vec::new());
        requests
            .iter()
            .map(|r| {
                if r.action.starts_with("kms:") {
                    evaluate(r, &ids, None, Some(key.as_ref().unwrap_or(&empty_key))).effect
                } else {
                    evaluate(r, &ids, res.as_ref(), None).effect
                }
            })
            .collect()
    }
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::collection::vec(stmt(), 0..4),
        prop::collection::vec(stmt(), 0..3),
        prop::collection::vec(stmt(), 0..3),
    )
        .prop_map(|(identity, resource, key)| Setup {
            identity,
            resource,
            key,
        })
}

fn requests() -> Vec<AuthzRequest> {
    let principals = [
        Principal::user(A, "alice"),
        Principal::user(A, "app"),
        Principal::user(B, "bob"),
        Principal::root(A),
        Principal::root(B),
        Principal::assumed_role(A, "app", "s1"),
    ];
    let targets = [
        (
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app/db-AbCdEf",
        ),
        (
            "secretsmanager:PutSecretValue",
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/x-AbCdEf",
        ),
        (
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:alice/x-AbCdEf",
        ),
        ("kms:Decrypt", "arn:aws:kms:eu-west-1:111122223333:key/k1"),
        ("kms:Encrypt", "arn:aws:kms:eu-west-1:111122223333:key/k1"),
    ];
    let contexts: [&[(&str, &str)]; 3] = [
        &[],
        &[("aws:ResourceTag/env", "prod"), ("aws:SourceIp", "10.1.2.3")],
        &[("aws:ResourceTag/env", "dev"), ("aws:SourceIp", "192.0.2.1")],
    ];
    let mut out = Vec::new();
    for p in &principals {
        for (action, resource) in targets {
            for ctx in contexts {
                let mut r = AuthzRequest::new(p.clone(), action, resource, A);
                for (k, v) in ctx {
                    r = r.with(k, *v);
                }
                out.push(r.with_multi("aws:TagKeys", ["env"]));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn adding_a_deny_never_widens_access(base in setup(), mut extra in stmt(), place in 0..3usize) {
        let requests = requests();
        let before = base.decide(&requests);
        extra.allow = false;
        let mut after_setup = base.clone();
        match place {
            0 => after_setup.identity.push(extra),
            1 => after_setup.resource.push(extra),
            _ => after_setup.key.push(extra),
        }
        let after = after_setup.decide(&requests);
        for (i, (b, a)) in before.iter().zip(&after).enumerate() {
            // Never a new Allow; an explicit deny stays an explicit deny.
            prop_assert!(*a != DecisionEffect::Allow || *b == DecisionEffect::Allow, "request {:?} widened", requests[i]);
            prop_assert!(*b != DecisionEffect::ExplicitDeny || *a == DecisionEffect::ExplicitDeny);
        }
    }

    #[test]
    fn adding_an_allow_never_narrows_access(base in setup(), mut extra in stmt(), place in 0..3usize) {
        let requests = requests();
        let before = base.decide(&requests);
        extra.allow = true;
        let mut after_setup = base.clone();
        match place {
            0 => after_setup.identity.push(extra),
            1 => after_setup.resource.push(extra),
            _ => after_setup.key.push(extra),
        }
        let after = after_setup.decide(&requests);
        for (b, a) in before.iter().zip(&after) {
            prop_assert!(*b != DecisionEffect::Allow || *a == DecisionEffect::Allow);
            prop_assert_eq!(*b == DecisionEffect::ExplicitDeny, *a == DecisionEffect::ExplicitDeny);
        }
    }

    #[test]
    fn parse_serialize_parse(base in setup()) {
        for (kind, stmts, with_principal) in [
            (PolicyKind::Identity, &base.identity, false),
            (PolicyKind::Resource, &base.resource, true),
            (PolicyKind::KeyPolicy, &base.key, true),
        ] {
            if stmts.is_empty() {
                continue;
            }
            let json = format!(
                r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
                stmts.iter().map(|s| s.json(with_principal)).collect::<Vec<_>>().join(",")
            );
            let doc = PolicyDocument::parse_json(&json, kind).unwrap();
            let again = PolicyDocument::parse_json(&doc.to_json(), kind).unwrap();
            prop_assert_eq!(doc, again);
        }
    }
}

#[path = "properties/fuzz.rs"]
mod fuzz;
