//! IAM JSON policy documents: parsing with IAM's validation and messages, and serialization.
//!
//! Validation runs in IAM's order, as observed against AWS (moto's recorded
//! `test_iam_policies.py` cases; IAM user guide, "IAM JSON policy element reference" and
//! "Grammar of the IAM JSON policy language"):
//!
//! | Check | Message |
//! |---|---|
//! | size quota | `Cannot exceed quota for PolicySize: 6144` (`ACLSizePerRole: 2048` for trust policies) |
//! | not JSON, wrong types, unknown keys, empty `Statement`, `Action`+`NotAction`, `Resource`+`NotResource`, unknown condition operator | `Syntax errors in policy.` |
//! | identity policy without `Version` or with `2008-10-17` | `Policy document must be version 2012-10-17 or greater.` |
//! | `Effect` in the wrong case, ARN with 3-5 parts, unparsable date/number/CIDR | `The policy failed legacy parsing` |
//! | repeated `Sid` | `Statement IDs (SID) in a single policy must be unique.` |
//! | no `Action`/`NotAction` | `Policy statement must contain actions.` |
//! | no `Resource`/`NotResource` (not trust policies) | `Policy statement must contain resources.` |
//! | `Principal` in an identity policy | `Has prohibited field Principal` |
//! | no `Principal` in a resource, key or trust policy | `Missing required field Principal` |
//! | bad principal | `Invalid principal in policy: "AWS":"<value>"` |
//! | action without vendor / two colons / bad vendor | `Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.` / `Actions/Condition can contain only one colon.` / `Vendor <v> is not valid` |
//! | resource not an ARN | `Resource <r> must be in ARN format or "*".`, `Partition "<p>" is not valid for resource "<r>".`, `Resource vendor must be fully qualified and cannot contain regexes.` |

use serde_json::{Map, Value};

use crate::condition::{Condition, ConditionOperator};
use crate::error::MalformedPolicy;
use crate::model::{
    ActionPattern, CompiledPolicy, Effect, Matcher, PolicyKind, PrincipalSpec, PrincipalType, ResourcePattern,
    Statement,
};
use crate::pattern::{Template, has_wildcard};

/// The current policy language version; policy variables exist only in it.
pub const VERSION_2012: &str = "2012-10-17";
/// The legacy version (still accepted in resource and key policies).
pub const VERSION_2008: &str = "2008-10-17";

const PARTITIONS: &[&str] = &[
    "aws",
    "aws-cn",
    "aws-us-gov",
    "aws-iso",
    "aws-iso-b",
    "aws-iso-e",
    "aws-iso-f",
    "aws-eusc",
];

/// A validated policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    /// The kind it was validated as.
    pub kind: PolicyKind,
    /// `Version`, if given.
    pub version: Option<String>,
    /// `Id`, if given.
    pub id: Option<String>,
    /// The statements, in order.
    pub statements: Vec<Statement>,
}

impl PolicyDocument {
    /// Parses and validates a JSON policy document as IAM would for `kind`.
    pub fn parse_json(json: &str, kind: PolicyKind) -> Result<PolicyDocument, MalformedPolicy> {
        check_size(json, kind)?;
        let value: Value = serde_json::from_str(json).map_err(|_| MalformedPolicy::syntax())?;
        let top = value.as_object().ok_or_else(MalformedPolicy::syntax)?;
        for key in top.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(MalformedPolicy::syntax());
            }
        }
        let version = match top.get("Version") {
            None => None,
            Some(Value::String(v)) => Some(v.clone()),
            Some(_) => return Err(MalformedPolicy::syntax()),
        };
        match (kind, version.as_deref()) {
            (PolicyKind::Identity, None | Some(VERSION_2008)) => {
                return Err(MalformedPolicy::new(
                    "Policy document must be version 2012-10-17 or greater.",
                ));
            }
            (_, None | Some(VERSION_2008 | VERSION_2012)) => {}
            (_, Some(_)) => return Err(MalformedPolicy::syntax()),
        }
        let id = match top.get("Id") {
            None => None,
            Some(Value::String(v)) => Some(v.clone()),
            Some(_) => return Err(MalformedPolicy::syntax()),
        };
        let raw_statements: Vec<&Map<String, Value>> = match top.get("Statement") {
            Some(Value::Object(o)) => vec![o],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(Value::as_object)
                .collect::<Option<_>>()
                .ok_or_else(MalformedPolicy::syntax)?,
            _ => return Err(MalformedPolicy::syntax()),
        };
        let variables = version.as_deref() == Some(VERSION_2012);

        // Pass 1: structure and types.
        let raws = raw_statements
            .iter()
            .map(|s| RawStatement::read(s))
            .collect::<Result<Vec<_>, _>>()?;
        // Pass 2: values IAM's legacy parser cannot read.
        for raw in &raws {
            raw.legacy_checks()?;
        }
        // Pass 3: unique Sids.
        let mut sids: Vec<&str> = raws.iter().filter_map(|r| r.sid.as_deref()).collect();
        sids.sort_unstable();
        if sids.windows(2).any(|w| w[0] == w[1]) {
            return Err(MalformedPolicy::new(
                "Statement IDs (SID) in a single policy must be unique.",
            ));
        }
        // Pass 4: per statement semantics.
        let statements = raws
            .iter()
            .map(|r| r.compile(kind, variables))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PolicyDocument {
            kind,
            version,
            id,
            statements,
        })
    }

    /// The compiled policy, named for decisions and audit.
    pub fn compile(&self, name: &str) -> CompiledPolicy {
        CompiledPolicy::from_statements(name, self.kind, self.statements.clone())
    }

    /// Serializes the document to JSON (canonical element names; lists as arrays). Parsing the
    /// output with the same kind yields an equal document, unless the output is over the
    /// kind's size quota: lists written as arrays make it longer than a document that used
    /// plain strings, so one within a few characters of the quota can grow past it.
    pub fn to_json(&self) -> String {
        let mut top = Map::new();
        if let Some(v) = &self.version {
            top.insert("Version".into(), Value::String(v.clone()));
        }
        if let Some(id) = &self.id {
            top.insert("Id".into(), Value::String(id.clone()));
        }
        let statements = self.statements.iter().map(statement_to_json).collect();
        top.insert("Statement".into(), Value::Array(statements));
        Value::Object(top).to_string()
    }
}

fn check_size(json: &str, kind: PolicyKind) -> Result<(), MalformedPolicy> {
    let non_ws = || json.chars().filter(|c| !c.is_whitespace()).count();
    let (size, limit, quota) = match kind {
        PolicyKind::Identity => (non_ws(), 6144, "PolicySize"),
        PolicyKind::Trust => (non_ws(), 2048, "ACLSizePerRole"),
        PolicyKind::Resource => (json.chars().count(), 20480, "PolicySize"),
        PolicyKind::KeyPolicy => (json.len(), 32768, "PolicySize"),
    };
    if size > limit {
        return Err(MalformedPolicy::new(format!(
            "Cannot exceed quota for {quota}: {limit}"
        )));
    }
    Ok(())
}

/// A statement after the structural pass: every field has the right JSON type.
struct RawStatement {
    sid: Option<String>,
    effect: String,
    action: Option<(bool, Vec<String>)>,
    resource: Option<(bool, Vec<String>)>,
    principal: Option<(bool, RawPrincipal)>,
    condition: Vec<(String, String, Vec<String>)>,
}

enum RawPrincipal {
    Star,
    Typed(Vec<(String, Vec<String>)>),
}

impl RawStatement {
    fn read(s: &Map<String, Value>) -> Result<RawStatement, MalformedPolicy> {
        for key in s.keys() {
            if !matches!(
                key.as_str(),
                "Sid"
                    | "Effect"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Principal"
                    | "NotPrincipal"
                    | "Condition"
            ) {
                return Err(MalformedPolicy::syntax());
            }
        }
        let sid = match s.get("Sid") {
            None => None,
            Some(Value::String(v)) => Some(v.clone()),
            Some(_) => return Err(MalformedPolicy::syntax()),
        };
        let effect = match s.get("Effect") {
            Some(Value::String(v)) if v.eq_ignore_ascii_case("allow") || v.eq_ignore_ascii_case("deny") => v.clone(),
            _ => return Err(MalformedPolicy::syntax()),
        };
        let action = either(s, "Action", "NotAction", string_list)?;
        let resource = either(s, "Resource", "NotResource", string_list)?;
        let principal = either(s, "Principal", "NotPrincipal", principal_value)?;
        let condition = match s.get("Condition") {
            None => Vec::new(),
            Some(Value::Object(ops)) => {
                let mut out = Vec::new();
                for (op, block) in ops {
                    let block = block.as_object().ok_or_else(MalformedPolicy::syntax)?;
                    for (key, values) in block {
                        out.push((op.clone(), key.clone(), condition_values(values)?));
                    }
                }
                out
            }
            Some(_) => return Err(MalformedPolicy::syntax()),
        };
        Ok(RawStatement {
            sid,
            effect,
            action,
            resource,
            principal,
            condition,
        })
    }

    fn legacy_checks(&self) -> Result<(), MalformedPolicy> {
        if self.effect != "Allow" && self.effect != "Deny" {
            return Err(MalformedPolicy::legacy());
        }
        if let Some((_, resources)) = &self.resource {
            for r in resources {
                if r.starts_with("arn:") && PARTITIONS.contains(&r.split(':').nth(1).unwrap_or("")) {
                    let parts = r.split(':').count();
                    if (3..6).contains(&parts) {
                        return Err(MalformedPolicy::legacy());
                    }
                }
            }
        }
        for (op, key, values) in &self.condition {
            let op = ConditionOperator::parse(op).ok_or_else(MalformedPolicy::syntax)?;
            Condition::new(op, key, values, false)?;
        }
        Ok(())
    }

    fn compile(&self, kind: PolicyKind, variables: bool) -> Result<Statement, MalformedPolicy> {
        let effect = if self.effect == "Allow" {
            Effect::Allow
        } else {
            Effect::Deny
        };
        let Some((not_action, actions)) = &self.action else {
            return Err(MalformedPolicy::new("Policy statement must contain actions."));
        };
        if actions.is_empty() {
            return Err(MalformedPolicy::new("Policy statement must contain actions."));
        }
        match (&self.resource, kind) {
            (Some(_), PolicyKind::Trust) => return Err(MalformedPolicy::new("Has prohibited field Resource")),
            (None, PolicyKind::Trust) => {}
            (Some((_, r)), _) if !r.is_empty() => {}
            _ => return Err(MalformedPolicy::new("Policy statement must contain resources.")),
        }
        if kind == PolicyKind::Identity
            && let Some(sid) = &self.sid
            && !sid.chars().all(|c| c.is_ascii_alphanumeric())
        {
            return Err(MalformedPolicy::new(
                "Statement IDs (SID) must be alpha-numeric. Check that your input satisfies the regular expression [0-9A-Za-z]*",
            ));
        }
        let principals = match (&self.principal, kind) {
            (Some((negated, _)), PolicyKind::Identity) => {
                let field = if *negated { "NotPrincipal" } else { "Principal" };
                return Err(MalformedPolicy::new(format!("Has prohibited field {field}")));
            }
            (None, PolicyKind::Identity) => None,
            (None, _) => return Err(MalformedPolicy::new("Missing required field Principal")),
            (Some((negated, raw)), _) => {
                if *negated && (effect == Effect::Allow || kind == PolicyKind::Trust) {
                    return Err(MalformedPolicy::new(
                        "NotPrincipal is only supported with \"Effect\": \"Deny\" in resource-based policies",
                    ));
                }
                Some(Matcher {
                    negated: *negated,
                    items: vec![compile_principal(raw)?],
                })
            }
        };
        let actions = actions
            .iter()
            .map(|a| compile_action(a))
            .collect::<Result<Vec<_>, _>>()?;
        let resources = match &self.resource {
            None => None,
            Some((negated, items)) => {
                let items = items
                    .iter()
                    .map(|r| compile_resource(r, variables))
                    .collect::<Result<Vec<_>, _>>()?;
                Some(Matcher {
                    negated: *negated,
                    items,
                })
            }
        };
        let mut conditions = Vec::new();
        for (op, key, values) in &self.condition {
            let op = ConditionOperator::parse(op).ok_or_else(MalformedPolicy::syntax)?;
            conditions.push(Condition::new(op, key, values, variables)?);
        }
        Ok(Statement {
            sid: self.sid.clone(),
            effect,
            actions: Matcher {
                negated: *not_action,
                items: actions,
            },
            resources,
            principals,
            conditions,
        })
    }
}

/// Reads `positive` or `negative` (at most one of them) with `read`; `(negated, value)`.
fn either<T>(
    s: &Map<String, Value>,
    positive: &str,
    negative: &str,
    read: fn(&Value) -> Result<T, MalformedPolicy>,
) -> Result<Option<(bool, T)>, MalformedPolicy> {
    match (s.get(positive), s.get(negative)) {
        (Some(_), Some(_)) => Err(MalformedPolicy::syntax()),
        (Some(v), None) => Ok(Some((false, read(v)?))),
        (None, Some(v)) => Ok(Some((true, read(v)?))),
        (None, None) => Ok(None),
    }
}

fn string_list(v: &Value) -> Result<Vec<String>, MalformedPolicy> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned).ok_or_else(MalformedPolicy::syntax))
            .collect(),
        _ => Err(MalformedPolicy::syntax()),
    }
}

fn condition_values(v: &Value) -> Result<Vec<String>, MalformedPolicy> {
    let scalar = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(MalformedPolicy::syntax()),
    };
    match v {
        Value::Array(items) => items.iter().map(scalar).collect(),
        v => Ok(vec![scalar(v)?]),
    }
}

fn principal_value(v: &Value) -> Result<RawPrincipal, MalformedPolicy> {
    match v {
        Value::String(s) if s == "*" => Ok(RawPrincipal::Star),
        Value::Object(o) => {
            let entries = o
                .iter()
                .map(|(k, v)| Ok((k.clone(), string_list(v)?)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(RawPrincipal::Typed(entries))
        }
        _ => Err(MalformedPolicy::syntax()),
    }
}

fn compile_principal(raw: &RawPrincipal) -> Result<PrincipalSpec, MalformedPolicy> {
    let entries = match raw {
        RawPrincipal::Star => {
            return Ok(PrincipalSpec {
                everyone: true,
                entries: Vec::new(),
            });
        }
        RawPrincipal::Typed(entries) => entries,
    };
    let mut out = Vec::new();
    for (ty, values) in entries {
        let invalid = |v: &str| MalformedPolicy::new(format!("Invalid principal in policy: \"{ty}\":\"{v}\""));
        let ty_enum = match ty.as_str() {
            "AWS" => PrincipalType::Aws,
            "Service" => PrincipalType::Service,
            "Federated" => PrincipalType::Federated,
            "CanonicalUser" => PrincipalType::CanonicalUser,
            _ => return Err(invalid(values.first().map_or("", String::as_str))),
        };
        if values.is_empty() {
            return Err(MalformedPolicy::syntax());
        }
        for v in values {
            let ok = match ty_enum {
                PrincipalType::Aws => valid_aws_principal(v),
                _ => !v.is_empty() && (v == "*" || !has_wildcard(v)),
            };
            if !ok {
                return Err(invalid(v));
            }
            out.push((ty_enum, v.clone()));
        }
    }
    Ok(PrincipalSpec {
        everyone: false,
        entries: out,
    })
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// `*`, a 12-digit account id, or an IAM/STS principal ARN. Wildcards inside ARNs are not
/// allowed (IAM guide, "Principal": "You cannot use a wildcard to match part of a principal name
/// or ARN").
fn valid_aws_principal(v: &str) -> bool {
    if v == "*" || is_account_id(v) {
        return true;
    }
    if has_wildcard(v) {
        return false;
    }
    let parts: Vec<&str> = v.splitn(6, ':').collect();
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return false;
    };
    if *arn != "arn" || !PARTITIONS.contains(partition) || !region.is_empty() || !is_account_id(account) {
        return false;
    }
    match *service {
        "iam" => {
            *resource == "root"
                || resource.strip_prefix("user/").is_some_and(|r| !r.is_empty())
                || resource.strip_prefix("role/").is_some_and(|r| !r.is_empty())
        }
        "sts" => {
            resource.strip_prefix("assumed-role/").is_some_and(|r| r.contains('/'))
                || resource.strip_prefix("federated-user/").is_some_and(|r| !r.is_empty())
        }
        _ => false,
    }
}

fn compile_action(a: &str) -> Result<ActionPattern, MalformedPolicy> {
    if a == "*" {
        return Ok(ActionPattern::new(a));
    }
    let mut parts = a.split(':');
    let vendor = parts.next().unwrap_or("");
    let colons = a.matches(':').count();
    if colons == 0 {
        return Err(MalformedPolicy::new(
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ));
    }
    if colons > 1 {
        return Err(MalformedPolicy::new("Actions/Condition can contain only one colon."));
    }
    if vendor.is_empty()
        || !vendor
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return Err(MalformedPolicy::new(format!("Vendor {vendor} is not valid")));
    }
    Ok(ActionPattern::new(a))
}

fn compile_resource(r: &str, variables: bool) -> Result<ResourcePattern, MalformedPolicy> {
    if r == "*" {
        return Ok(ResourcePattern::Any);
    }
    let Some(rest) = r.strip_prefix("arn:") else {
        return Err(MalformedPolicy::new(format!(
            "Resource {r} must be in ARN format or \"*\"."
        )));
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    if parts.len() < 2 {
        return Err(MalformedPolicy::new(
            "Resource vendor must be fully qualified and cannot contain regexes.",
        ));
    }
    let partition = parts[0];
    if !PARTITIONS.contains(&partition) && !has_wildcard(partition) {
        return Err(MalformedPolicy::new(format!(
            "Partition \"{partition}\" is not valid for resource \"{r}\"."
        )));
    }
    if parts.len() < 5 {
        return Err(MalformedPolicy::legacy());
    }
    let vendor = parts[1];
    if vendor.is_empty() || has_wildcard(vendor) {
        return Err(MalformedPolicy::new(
            "Resource vendor must be fully qualified and cannot contain regexes.",
        ));
    }
    Ok(ResourcePattern::Arn(Template::parse(r, variables)))
}

fn statement_to_json(s: &Statement) -> Value {
    let mut o = Map::new();
    if let Some(sid) = &s.sid {
        o.insert("Sid".into(), Value::String(sid.clone()));
    }
    o.insert("Effect".into(), Value::String(s.effect.as_str().into()));
    let key = if s.actions.negated { "NotAction" } else { "Action" };
    o.insert(key.into(), strings(s.actions.items.iter().map(ActionPattern::raw)));
    if let Some(p) = &s.principals {
        let key = if p.negated { "NotPrincipal" } else { "Principal" };
        if let Some(spec) = p.items.first() {
            o.insert(key.into(), principal_to_json(spec));
        }
    }
    if let Some(r) = &s.resources {
        let key = if r.negated { "NotResource" } else { "Resource" };
        o.insert(key.into(), strings(r.items.iter().map(ResourcePattern::raw)));
    }
    if !s.conditions.is_empty() {
        let mut ops = Map::new();
        for c in &s.conditions {
            let block = ops
                .entry(c.operator.name())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(block) = block {
                block.insert(c.key.clone(), strings(c.values.iter().map(|v| v.raw())));
            }
        }
        o.insert("Condition".into(), Value::Object(ops));
    }
    Value::Object(o)
}

fn principal_to_json(spec: &PrincipalSpec) -> Value {
    if spec.everyone {
        return Value::String("*".into());
    }
    let mut o = Map::new();
    for (ty, v) in &spec.entries {
        let entry = o.entry(ty.as_str()).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = entry {
            items.push(Value::String(v.clone()));
        }
    }
    Value::Object(o)
}

fn strings<'a>(items: impl Iterator<Item = &'a str>) -> Value {
    Value::Array(items.map(|s| Value::String(s.to_owned())).collect())
}

/// Convenience: parse and compile in one step.
pub fn compile_json(json: &str, kind: PolicyKind, name: &str) -> Result<CompiledPolicy, MalformedPolicy> {
    Ok(PolicyDocument::parse_json(json, kind)?.compile(name))
}
