//! The AWS Systems Manager Parameter Store engine.
//!
//! [`SsmEngine::handle`] runs one Parameter Store operation (the name after `AmazonSSM.` in
//! `X-Amz-Target`) on its JSON input and returns the JSON output or an [`AwsError`]; the
//! semantics follow reference/aws-api.md §4. SecureString values are encrypted through the
//! [`KeyService`] (KMS), and `/aws/reference/secretsmanager/<secret>` names read Secrets
//! Manager through the [`SecretReader`].
//!
//! Module map: [`input`] (request decoding), [`names`] (names, selectors, ARNs, storage
//! layout), [`model`] (records), [`store`] (storage, locks, commit protocol), [`crypto`]
//! (SecureString under KMS), [`policies`] (parameter policies), [`params`] (put, get, delete,
//! history, labels, tags), [`describe`] (DescribeParameters, GetParametersByPath, filters),
//! [`reference`] (the Secrets Manager pass-through), [`render`] (output shapes).

mod crypto;
mod describe;
mod input;
mod model;
mod names;
mod params;
mod policies;
mod reference;
mod render;
mod store;

#[cfg(test)]
mod tests;

use std::sync::Arc;

use coffer_engines::contracts::{KeyService, SecretReader};
use coffer_engines::{AwsError, RequestContext};
use coffer_storage::DynStorage;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::Mutex;

/// What a `Name` (or `Names` entry, or tagging `ResourceId`) of a request names, for
/// authorization: the ARN of the parameter the engine will act on (a selector `:3`/`:label`
/// dropped, an ARN resolved, surrounding blanks trimmed, `/x` and `x` the same), or `None` when
/// it cannot name a parameter of `ctx`'s account and region (the engine finds nothing then).
/// Authorizing the text as sent would let `/secret:1` or the parameter's own ARN slip past a
/// policy written for `parameter/secret`.
pub fn authz_parameter_arn(ctx: &RequestContext, raw: &str) -> Option<String> {
    let r = names::parse_ref(ctx, raw)?;
    Some(names::arn(ctx, names::canonical(&r.name)))
}

/// The secret a GetParameter(s) `Name` reads through `/aws/reference/secretsmanager/`, as the
/// `SecretId` the engine will pass to Secrets Manager; `None` for any other name. Reading it
/// needs `secretsmanager:GetSecretValue` on that secret as well, as on AWS.
pub fn referenced_secret(raw: &str) -> Option<String> {
    reference::referenced_secret_id(raw)
}

/// The Parameter Store engine over one storage view. Data is kept per account and region.
pub struct SsmEngine {
    storage: DynStorage,
    keys: Arc<dyn KeyService>,
    secrets: Arc<dyn SecretReader>,
    /// Striped write locks: writers of one parameter are serialized.
    locks: Vec<Mutex<()>>,
}

/// Every Parameter Store operation this engine implements.
const OPERATIONS: &[&str] = &[
    "PutParameter",
    "GetParameter",
    "GetParameters",
    "GetParametersByPath",
    "DeleteParameter",
    "DeleteParameters",
    "DescribeParameters",
    "GetParameterHistory",
    "LabelParameterVersion",
    "UnlabelParameterVersion",
    "AddTagsToResource",
    "RemoveTagsFromResource",
    "ListTagsForResource",
];

impl SsmEngine {
    pub fn new(storage: DynStorage, keys: Arc<dyn KeyService>, secrets: Arc<dyn SecretReader>) -> Self {
        Self {
            storage,
            keys,
            secrets,
            locks: (0..store::LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
        }
    }

    /// Runs one operation (`op` is the part after `AmazonSSM.` in `X-Amz-Target`).
    pub async fn handle(&self, ctx: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
        if !OPERATIONS.contains(&op) {
            return Err(AwsError::unknown_operation(format!(
                "Operation {op} is not supported by Coffer's Parameter Store."
            )));
        }
        let input = input::Input::parse(input)?;
        tracing::debug!(operation = op, account = %ctx.account_id, region = %ctx.region, "ssm request");
        match op {
            "PutParameter" => self.put_parameter(ctx, &input).await,
            "GetParameter" => self.get_parameter(ctx, &input).await,
            "GetParameters" => self.get_parameters(ctx, &input).await,
            "GetParametersByPath" => self.get_parameters_by_path(ctx, &input).await,
            "DeleteParameter" => self.delete_parameter(ctx, &input).await,
            "DeleteParameters" => self.delete_parameters(ctx, &input).await,
            "DescribeParameters" => self.describe_parameters(ctx, &input).await,
            "GetParameterHistory" => self.get_parameter_history(ctx, &input).await,
            "LabelParameterVersion" => self.label_parameter_version(ctx, &input).await,
            "UnlabelParameterVersion" => self.unlabel_parameter_version(ctx, &input).await,
            "AddTagsToResource" => self.add_tags(ctx, &input).await,
            "RemoveTagsFromResource" => self.remove_tags(ctx, &input).await,
            _ => self.list_tags(ctx, &input).await,
        }
    }

    /// Deletes every parameter whose Expiration policy has passed at `now`, in all accounts
    /// and regions. Returns how many were deleted.
    pub async fn background(&self, now: OffsetDateTime) -> Result<usize, AwsError> {
        let mut deleted = 0;
        for (account, region) in self.regions().await? {
            for rec in self.records_in_region(&account, &region).await? {
                if rec.expires_at().is_none_or(|at| at > now.unix_timestamp()) {
                    continue;
                }
                let ctx = RequestContext {
                    account_id: account.clone(),
                    region: region.clone(),
                    principal_arn: "coffer:background".into(),
                    now,
                };
                let _guard = self.lock(&ctx, &rec.name).await;
                // Re-read under the lock: an overwrite may have replaced the policy.
                if let Some(cur) = self.load(&account, &region, &rec.name).await?
                    && cur.expires_at().is_some_and(|at| at <= now.unix_timestamp())
                {
                    self.erase(&account, &region, &cur.name).await?;
                    deleted += 1;
                }
            }
        }
        Ok(deleted)
    }

    /// Deletes all of this engine's data (dev-only `/moto-api/reset`).
    pub async fn reset(&self) -> Result<(), AwsError> {
        Ok(self.storage.clear().await?)
    }
}
