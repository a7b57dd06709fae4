//! Resource policies: PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy and
//! ValidateResourcePolicy.
//!
//! The policy is stored as the JSON text the caller sent. Validation checks the IAM shape
//! (an object with an optional string `Version` and a `Statement` that is an object or a
//! non-empty list of objects, each with `Effect` `Allow` or `Deny`). `BlockPublicPolicy`
//! rejects an `Allow` statement whose `Principal` is `"*"` or `{"AWS": "*"}`. Evaluation of
//! the policy belongs to the core's policy model, not to this engine.

use serde_json::Value;

use crate::secrets::SecretsEngine;
use crate::secrets::input::{Input, check_len, required};
use crate::secrets::model::now_ms;
use crate::secrets::render::Out;
use crate::secrets::store::{ensure_primary, ensure_writable};
use crate::{AwsError, AwsErrorCode, RequestContext};

const MALFORMED: &str = "This resource policy contains a syntax error.";
const PUBLIC: &str = "The BlockPublicPolicy parameter is set to true, and the resource policy did not prevent broad access to the secret.";

fn malformed() -> AwsError {
    AwsError::new(AwsErrorCode::MalformedPolicyDocumentException, MALFORMED)
}

/// Parses and checks the shape of a resource policy.
pub(crate) fn parse_policy(text: &str) -> Result<Value, AwsError> {
    let doc: Value = serde_json::from_str(text).map_err(|_| malformed())?;
    let obj = doc.as_object().ok_or_else(malformed)?;
    if let Some(v) = obj.get("Version")
        && !v.is_string()
    {
        return Err(malformed());
    }
    let statements: Vec<&Value> = match obj.get("Statement") {
        Some(Value::Object(_)) => obj.get("Statement").into_iter().collect(),
        Some(Value::Array(items)) if !items.is_empty() => items.iter().collect(),
        _ => return Err(malformed()),
    };
    for s in statements {
        let s = s.as_object().ok_or_else(malformed)?;
        match s.get("Effect").and_then(Value::as_str) {
            Some("Allow" | "Deny") => {}
            _ => return Err(malformed()),
        }
    }
    Ok(doc)
}

fn is_wildcard(v: &Value) -> bool {
    match v {
        Value::String(s) => s == "*",
        Value::Array(items) => items.iter().any(|i| i.as_str() == Some("*")),
        _ => false,
    }
}

/// True when some `Allow` statement grants access to everyone.
pub(crate) fn is_public(doc: &Value) -> bool {
    let statements: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(s) => vec![s],
        None => Vec::new(),
    };
    statements.into_iter().any(|s| {
        s.get("Effect").and_then(Value::as_str) == Some("Allow")
            && match s.get("Principal") {
                Some(p @ Value::String(_)) => is_wildcard(p),
                Some(Value::Object(m)) => m.get("AWS").is_some_and(is_wildcard),
                _ => false,
            }
    })
}

fn read_policy_text(input: &Input) -> Result<String, AwsError> {
    let text = required(input.string("ResourcePolicy")?, "ResourcePolicy")?;
    check_len(text.chars().count(), 1, 20_480, "resourcePolicy")?;
    Ok(text)
}

impl SecretsEngine {
    pub(crate) async fn put_resource_policy(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let text = read_policy_text(input)?;
        let block_public = input.bool("BlockPublicPolicy")?.unwrap_or(false);
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;
        let doc = parse_policy(&text)?;
        if block_public && is_public(&doc) {
            return Err(AwsError::new(AwsErrorCode::PublicPolicyException, PUBLIC));
        }
        rec.policy = Some(text);
        rec.changed_ms = now_ms(ctx);
        self.commit(&rec, &[], &[]).await?;
        Ok(Out::new().s("ARN", rec.arn.clone()).s("Name", rec.name.clone()).build())
    }

    pub(crate) async fn get_resource_policy(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let rec = self.find_required(ctx, &secret_id).await?;
        ensure_primary(&rec)?;
        Ok(Out::new()
            .s("ARN", rec.arn.clone())
            .s("Name", rec.name.clone())
            .opt_s("ResourcePolicy", rec.policy.as_deref())
            .build())
    }

    pub(crate) async fn delete_resource_policy(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;
        if rec.policy.is_some() {
            rec.policy = None;
            rec.changed_ms = now_ms(ctx);
            self.commit(&rec, &[], &[]).await?;
        }
        Ok(Out::new().s("ARN", rec.arn.clone()).s("Name", rec.name.clone()).build())
    }

    pub(crate) async fn validate_resource_policy(
        &self,
        ctx: &RequestContext,
        input: &Input,
    ) -> Result<Value, AwsError> {
        let text = read_policy_text(input)?;
        if let Some(secret_id) = input.string("SecretId")? {
            self.find_required(ctx, &secret_id).await?;
        }
        parse_policy(&text)?;
        Ok(Out::new()
            .v("PolicyValidationPassed", Value::Bool(true))
            .v("ValidationErrors", Value::Array(Vec::new()))
            .build())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let ok = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::1:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
        assert!(!is_public(&parse_policy(ok).unwrap()));
        let public =
            r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}}"#;
        assert!(is_public(&parse_policy(public).unwrap()));
        let public2 = r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["*"]},"Action":"*"}]}"#;
        assert!(is_public(&parse_policy(public2).unwrap()));
        for bad in [
            "not json",
            "[]",
            r#"{"Version":"2012-10-17"}"#,
            r#"{"Statement":[]}"#,
            r#"{"Statement":[{"Effect":"Maybe"}]}"#,
        ] {
            assert_eq!(
                parse_policy(bad).err().unwrap().code,
                AwsErrorCode::MalformedPolicyDocumentException,
                "{bad}"
            );
        }
    }
}
