//! `/aws/reference/secretsmanager/<secret-id>[:<VersionId or VersionStage>]`: a read-only view
//! of a Secrets Manager secret through GetParameter(s) (reference/aws-api.md §4.5).

use base64::Engine as _;
use coffer_engines::contracts::SecretValue;
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use serde_json::{Map, Value, json};

use crate::SsmEngine;
use crate::names;

/// Whether a selector names a version id (a UUID-like token) rather than a staging label.
fn is_version_id(s: &str) -> bool {
    s.len() >= 32 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Splits `<secret-id>[:<selector>]`; secret ARNs contain `:` themselves.
fn split_selector(rest: &str) -> (&str, Option<&str>) {
    if rest.starts_with("arn:") {
        // arn:partition:secretsmanager:region:account:secret:name[:selector]
        if rest.matches(':').count() >= 7
            && let Some((id, sel)) = rest.rsplit_once(':')
        {
            return (id, Some(sel));
        }
        return (rest, None);
    }
    match rest.split_once(':') {
        Some((id, sel)) => (id, Some(sel)),
        None => (rest, None),
    }
}

/// The `SecretId` of a reference name (`None` if `raw` is not one).
pub(crate) fn referenced_secret_id(raw: &str) -> Option<String> {
    let rest = raw.trim().strip_prefix(names::REFERENCE_PREFIX)?;
    let (secret_id, _) = split_selector(rest);
    Some(secret_id.to_string())
}

impl SsmEngine {
    /// GetParameter of a Secrets Manager reference `full` (starts with the reference prefix).
    pub(crate) async fn get_reference(
        &self,
        ctx: &RequestContext,
        full: &str,
        decrypt: bool,
    ) -> Result<Value, AwsError> {
        if !decrypt {
            return Err(AwsError::validation(
                "WithDecryption flag must be True for retrieving a Secret Manager secret.",
            ));
        }
        let rest = full.strip_prefix(names::REFERENCE_PREFIX).unwrap_or_default();
        // The same split as referenced_secret_id, which authorization uses.
        let (secret_id, selector) = split_selector(rest);
        let shown = format!("{}{secret_id}", names::REFERENCE_PREFIX);
        let not_found = || {
            AwsError::new(
                AwsErrorCode::ParameterNotFound,
                format!(
                    "An error occurred (ParameterNotFound) when referencing Secrets Manager: Secret {shown} not found."
                ),
            )
        };
        if secret_id.is_empty() || selector.is_some_and(str::is_empty) {
            return Err(not_found());
        }
        let (version_id, stage) = match selector {
            Some(s) if is_version_id(s) => (Some(s), None),
            Some(s) => (None, Some(s)),
            None => (None, None),
        };
        let secret = match self.secrets.read_secret(ctx, secret_id, version_id, stage).await {
            Ok(s) => s,
            Err(e) => {
                return Err(match e.code {
                    AwsErrorCode::ResourceNotFoundException
                    | AwsErrorCode::InvalidRequestException
                    | AwsErrorCode::InvalidParameterException
                    | AwsErrorCode::ValidationException => not_found(),
                    AwsErrorCode::DecryptionFailure => AwsError::new(AwsErrorCode::InvalidKeyId, e.message),
                    _ => AwsError::new(
                        AwsErrorCode::InternalServerError,
                        "An error occurred while reading the secret.",
                    ),
                });
            }
        };
        let value = match &secret.value {
            SecretValue::String(s) => s.expose().to_string(),
            SecretValue::Binary(b) => base64::engine::general_purpose::STANDARD.encode(b.expose()),
        };
        let source = serde_json::to_string(&secret.metadata).unwrap_or_else(|_| "{}".into());
        let mut out = Map::new();
        out.insert("Name".into(), json!(shown));
        out.insert("Type".into(), json!("SecureString"));
        out.insert("Value".into(), Value::String(value));
        out.insert("Version".into(), json!(0));
        if let Some(s) = selector {
            out.insert("Selector".into(), json!(format!(":{s}")));
        }
        out.insert("SourceResult".into(), json!(source));
        out.insert("LastModifiedDate".into(), json!(secret.created_date));
        out.insert("ARN".into(), json!(names::arn(ctx, &shown)));
        out.insert("DataType".into(), json!("text"));
        Ok(Value::Object(out))
    }
}
