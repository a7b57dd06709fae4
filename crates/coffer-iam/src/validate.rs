//! Policy document validation, pluggable: [`PolicyValidator`] decides whether a document is
//! acceptable for its use ([`PolicyKind`]); a rejection becomes IAM's
//! `MalformedPolicyDocument` with the validator's reason. [`BasicPolicyValidator`] is the
//! default: a JSON object with a known `Version` (if present) and a `Statement` that is an
//! object or a non-empty array of objects, each with `Effect` `Allow`/`Deny`, an action
//! (`Action`/`NotAction`) and, except in trust policies, a resource; trust policies need a
//! `Principal`/`NotPrincipal` and identity policies must not have one.

use serde_json::Value;

/// What a document is used as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// A managed policy version (CreatePolicy, CreatePolicyVersion).
    Managed,
    /// An inline user, role or group policy (Put*Policy).
    Inline,
    /// A role's trust policy (CreateRole, UpdateAssumeRolePolicy).
    Trust,
    /// An AssumeRole session policy (`Policy`).
    Session,
}

/// Validates policy documents. `Err` carries the reason shown to the caller; it must not
/// echo secret material (documents are not secret, but keep it short).
pub trait PolicyValidator: Send + Sync + 'static {
    fn validate(&self, doc: &str, kind: PolicyKind) -> Result<(), String>;
}

/// Structural checks only; the real grammar lives in the policy crate.
#[derive(Clone, Copy, Debug, Default)]
pub struct BasicPolicyValidator;

/// Maximum document sizes (characters, whitespace included) IAM enforces.
pub(crate) fn max_len(kind: PolicyKind) -> usize {
    match kind {
        PolicyKind::Managed => 6144,
        PolicyKind::Inline => 10240,
        PolicyKind::Trust => 2048,
        PolicyKind::Session => 2048,
    }
}

impl PolicyValidator for BasicPolicyValidator {
    fn validate(&self, doc: &str, kind: PolicyKind) -> Result<(), String> {
        let v: Value = serde_json::from_str(doc).map_err(|_| "Syntax errors in policy.".to_string())?;
        let obj = v.as_object().ok_or("Syntax errors in policy.")?;
        for key in obj.keys() {
            if !matches!(key.as_str(), "Version" | "Id" | "Statement") {
                return Err(format!("Policy document contains an unknown element: {key}"));
            }
        }
        if let Some(ver) = obj.get("Version") {
            match ver.as_str() {
                Some("2012-10-17") | Some("2008-10-17") => {}
                _ => return Err("The policy failed legacy parsing".into()),
            }
        }
        let statements: Vec<&Value> = match obj.get("Statement") {
            Some(Value::Array(a)) if !a.is_empty() => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            Some(_) => return Err("Syntax errors in policy.".into()),
            None => return Err("Missing required field Statement".into()),
        };
        for st in statements {
            let st = st.as_object().ok_or("Syntax errors in policy.")?;
            match st.get("Effect").and_then(Value::as_str) {
                Some("Allow") | Some("Deny") => {}
                Some(_) => return Err("Invalid effect".into()),
                None => return Err("Missing required field Effect".into()),
            }
            if !st.contains_key("Action") && !st.contains_key("NotAction") {
                return Err("Policy statement must contain actions.".into());
            }
            let has_principal = st.contains_key("Principal") || st.contains_key("NotPrincipal");
            match kind {
                PolicyKind::Trust => {
                    if !has_principal {
                        return Err("Missing required field Principal".into());
                    }
                }
                _ => {
                    if has_principal {
                        return Err("Policy document should not specify a principal.".into());
                    }
                    if !st.contains_key("Resource") && !st.contains_key("NotResource") {
                        return Err("Policy statement must contain resources.".into());
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_shapes() {
        let v = BasicPolicyValidator;
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        assert!(v.validate(ok, PolicyKind::Managed).is_ok());
        assert!(v.validate(ok, PolicyKind::Trust).is_err());
        assert!(v.validate("not json", PolicyKind::Inline).is_err());
        assert!(v.validate(r#"{"Version":"2012-10-17"}"#, PolicyKind::Inline).is_err());
        assert!(
            v.validate(
                r#"{"Statement":{"Effect":"Maybe","Action":"*","Resource":"*"}}"#,
                PolicyKind::Inline
            )
            .is_err()
        );
        let trust = r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}}"#;
        assert!(v.validate(trust, PolicyKind::Trust).is_ok());
        assert!(v.validate(trust, PolicyKind::Inline).is_err());
    }
}
