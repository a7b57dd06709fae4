//! The Secrets Manager calls the templates make, over [`SecretsApi`], with their inputs
//! exactly as the templates send them (reference/aws-api.md §3.4).
//!
//! Responses that carry a secret value are wiped as soon as the value is taken out of them.

use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::rds::wipe;
use crate::{ApiError, SecretsApi, StepError};

pub(crate) const AWSCURRENT: &str = "AWSCURRENT";
pub(crate) const AWSPENDING: &str = "AWSPENDING";
pub(crate) const AWSPREVIOUS: &str = "AWSPREVIOUS";

/// Characters the templates keep out of generated passwords: they break connection URLs
/// (`:/@`) or need quoting in SQL and shells (`"'\`). AWS's MySQL templates leave `:` in;
/// Coffer excludes it for every engine.
const EXCLUDE_CHARACTERS: &str = ":/@\"'\\";
const PASSWORD_LENGTH: u32 = 32;

/// What DescribeSecret says about rotation.
pub(crate) struct Metadata {
    /// `RotationEnabled`, when present.
    pub(crate) rotation_enabled: Option<bool>,
    /// `VersionIdsToStages`.
    pub(crate) versions: Vec<(String, Vec<String>)>,
}

impl Metadata {
    pub(crate) fn stages(&self, version: &str) -> Option<&[String]> {
        self.versions
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, s)| s.as_slice())
    }

    /// The version that carries `stage`.
    pub(crate) fn version_with(&self, stage: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, s)| s.iter().any(|x| x == stage))
            .map(|(v, _)| v.as_str())
    }
}

/// True when the step failed because Secrets Manager has no such secret or version.
pub(crate) fn is_not_found(e: &StepError) -> bool {
    matches!(e, StepError::Api { code, .. } if code == "ResourceNotFoundException")
}

async fn call(api: &dyn SecretsApi, operation: &str, what: &str, input: Value) -> Result<Value, StepError> {
    api.call(operation, input)
        .await
        .map_err(|ApiError { code, message }| StepError::Api {
            message: format!("{operation}({what}) failed: {code}: {message}"),
            code,
        })
}

pub(crate) async fn describe(api: &dyn SecretsApi, secret_id: &str) -> Result<Metadata, StepError> {
    let out = call(api, "DescribeSecret", secret_id, json!({"SecretId": secret_id})).await?;
    let rotation_enabled = out.get("RotationEnabled").and_then(Value::as_bool);
    let versions = out
        .get("VersionIdsToStages")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(v, stages)| {
                    let stages = stages
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                        .unwrap_or_default();
                    (v.clone(), stages)
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Metadata {
        rotation_enabled,
        versions,
    })
}

/// `GetSecretValue(SecretId, VersionStage[, VersionId])` → the SecretString.
pub(crate) async fn secret_string(
    api: &dyn SecretsApi,
    secret_id: &str,
    stage: &str,
    version_id: Option<&str>,
) -> Result<Zeroizing<String>, StepError> {
    let mut input = json!({"SecretId": secret_id, "VersionStage": stage});
    if let Some(v) = version_id {
        input["VersionId"] = json!(v);
    }
    let what = format!("{secret_id}, {stage}");
    let mut out = call(api, "GetSecretValue", &what, input).await?;
    let text = match out.get_mut("SecretString") {
        Some(Value::String(s)) => Ok(Zeroizing::new(std::mem::take(s))),
        _ => Err(StepError::Invalid(format!(
            "the {stage} version of secret {secret_id} has no SecretString"
        ))),
    };
    wipe(&mut out);
    text
}

/// `GetRandomPassword` with the templates' defaults.
pub(crate) async fn random_password(api: &dyn SecretsApi) -> Result<Zeroizing<String>, StepError> {
    let input = json!({
        "ExcludeCharacters": EXCLUDE_CHARACTERS,
        "PasswordLength": PASSWORD_LENGTH,
        "RequireEachIncludedType": true,
    });
    let mut out = call(api, "GetRandomPassword", "", input).await?;
    let password = match out.get_mut("RandomPassword") {
        Some(Value::String(s)) => Ok(Zeroizing::new(std::mem::take(s))),
        _ => Err(StepError::Invalid(
            "GetRandomPassword returned no RandomPassword".to_string(),
        )),
    };
    wipe(&mut out);
    password
}

/// `PutSecretValue(ClientRequestToken=token, SecretString, VersionStages=["AWSPENDING"])`, with
/// the event's `RotationToken` when it has one.
pub(crate) async fn put_pending(
    api: &dyn SecretsApi,
    secret_id: &str,
    token: &str,
    rotation_token: &str,
    secret_string: &str,
) -> Result<(), StepError> {
    let mut input = json!({
        "SecretId": secret_id,
        "ClientRequestToken": token,
        "SecretString": secret_string,
        "VersionStages": [AWSPENDING],
    });
    if !rotation_token.is_empty() {
        input["RotationToken"] = json!(rotation_token);
    }
    call(api, "PutSecretValue", secret_id, input).await.map(drop)
}

/// `UpdateSecretVersionStage(VersionStage=AWSCURRENT, MoveToVersionId=token, RemoveFromVersionId=current)`.
pub(crate) async fn move_current(
    api: &dyn SecretsApi,
    secret_id: &str,
    token: &str,
    current: Option<&str>,
) -> Result<(), StepError> {
    let mut input = json!({"SecretId": secret_id, "VersionStage": AWSCURRENT, "MoveToVersionId": token});
    if let Some(c) = current {
        input["RemoveFromVersionId"] = json!(c);
    }
    call(api, "UpdateSecretVersionStage", secret_id, input).await.map(drop)
}
