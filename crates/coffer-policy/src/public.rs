//! `BlockPublicPolicy`: does a resource policy grant access to anyone?
//!
//! Secrets Manager's `PutResourcePolicy` with `BlockPublicPolicy` refuses a policy that "allows
//! broad access" (Secrets Manager user guide, "Block public access"); AWS decides that with
//! automated reasoning. We use the documented rule of thumb AWS applies to S3 and Secrets Manager
//! ("The meaning of public"): an `Allow` statement is public when its principal is `*` (or
//! `{"AWS": "*"}`) and no condition pins the caller, the calling account, the calling network or
//! the calling service to fixed values. A condition pins when it uses a positive operator without
//! `IfExists` and without `ForAnyValue:` on one of the keys below, and its values are fixed (no
//! `*`/`?` wildcard, no `0.0.0.0/0`-style range):
//! `aws:PrincipalAccount`, `aws:PrincipalArn`, `aws:PrincipalOrgID`, `aws:PrincipalOrgPaths`,
//! `aws:SourceAccount`, `aws:SourceArn`, `aws:SourceOwner`, `aws:SourceVpc`, `aws:SourceVpce`,
//! `aws:SourceIp`, `aws:userid`.

use crate::condition::{Condition, ConditionValue, Operator, SetQualifier};
use crate::model::{CompiledPolicy, Effect, Statement};

const PINNING_KEYS: &[&str] = &[
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceip",
    "aws:userid",
];

/// Whether the policy grants public access (see the module documentation).
pub fn is_public(policy: &CompiledPolicy) -> bool {
    policy.statements.iter().any(statement_is_public)
}

fn statement_is_public(s: &Statement) -> bool {
    if s.effect != Effect::Allow {
        return false;
    }
    let Some(principals) = &s.principals else {
        return false;
    };
    let everyone = if principals.negated {
        // `NotPrincipal` with `Allow` is rejected by the parser; treat it as public anyway.
        true
    } else {
        principals.items.iter().any(|p| p.is_everyone())
    };
    everyone && !s.conditions.iter().any(pins)
}

fn pins(c: &Condition) -> bool {
    let op = c.operator;
    if op.if_exists || op.qualifier == Some(SetQualifier::ForAnyValue) || op.operator.is_negated() {
        return false;
    }
    if !PINNING_KEYS.contains(&c.key.to_ascii_lowercase().as_str()) || c.values.is_empty() {
        return false;
    }
    let fixed_operator = matches!(
        op.operator,
        Operator::StringEquals
            | Operator::StringEqualsIgnoreCase
            | Operator::StringLike
            | Operator::ArnEquals
            | Operator::ArnLike
            | Operator::IpAddress
    );
    fixed_operator
        && c.values.iter().all(|v| match v {
            ConditionValue::Ip(net, _) => net.prefix_len() > 0,
            ConditionValue::Text(t) => !t.raw().contains('*') && !t.raw().contains('?') && !t.raw().is_empty(),
            _ => false,
        })
}
