//! [`SecretReader`] for the Secrets Manager engine: other engines read a secret with exactly
//! the semantics and errors of `GetSecretValue`, plus its `DescribeSecret` metadata.

use async_trait::async_trait;
use base64::Engine as _;
use coffer_crypto::{SecretBytes, SecretString};
use serde_json::{Value, json};

use super::SecretsEngine;
use crate::contracts::{ReferencedSecret, SecretReader, SecretValue};
use crate::{AwsError, RequestContext};

#[async_trait]
impl SecretReader for SecretsEngine {
    async fn read_secret(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<ReferencedSecret, AwsError> {
        let mut input = json!({ "SecretId": secret_id });
        if let Some(v) = version_id {
            input["VersionId"] = json!(v);
        }
        if let Some(s) = version_stage {
            input["VersionStage"] = json!(s);
        }
        let got = self.handle(ctx, "GetSecretValue", input).await?;
        let metadata = self
            .handle(ctx, "DescribeSecret", json!({ "SecretId": secret_id }))
            .await?;
        let text = |k: &str| got.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let value = if let Some(s) = got.get("SecretString").and_then(Value::as_str) {
            SecretValue::String(SecretString::new(s.to_string()))
        } else {
            let b64 = got.get("SecretBinary").and_then(Value::as_str).unwrap_or_default();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .map_err(|_| AwsError::internal("stored binary secret is not base64"))?;
            SecretValue::Binary(SecretBytes::new(bytes))
        };
        Ok(ReferencedSecret {
            name: text("Name"),
            arn: text("ARN"),
            version_id: text("VersionId"),
            version_stages: got
                .get("VersionStages")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
                .unwrap_or_default(),
            created_date: got.get("CreatedDate").and_then(Value::as_f64).unwrap_or_default(),
            value,
            metadata,
        })
    }
}
