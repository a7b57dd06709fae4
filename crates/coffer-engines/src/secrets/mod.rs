//! The AWS Secrets Manager engine.
//!
//! [`SecretsEngine::handle`] runs one operation (the name after `secretsmanager.` in
//! `X-Amz-Target`) on its JSON input and returns the JSON output or an [`AwsError`]. The
//! semantics follow the AWS API (reference/aws-api.md §2–3).
//!
//! Module map:
//! * [`input`]: request decoding and constraint checks; [`render`]: response shapes.
//! * [`model`]: stored records; [`envelope`]: KMS envelope encryption of version values; [`names`]: names, ARNs, storage layout; [`store`]: storage
//!   access, locking and the commit protocol; [`index`]: the creation-order index that
//!   ListSecrets pages through; [`versions`]: staging labels and retention.
//! * operations: [`values`] (create/get/put/update), [`metadata`] (describe, list, labels,
//!   tags), [`lifecycle`] (delete/restore/purge), [`policy`], [`rotation`], [`replication`],
//!   [`password`]; [`filters`] for ListSecrets/BatchGetSecretValue filters.

mod envelope;
mod filters;
mod index;
mod input;
mod lifecycle;
mod metadata;
mod model;
mod names;
mod paging;
mod password;
mod policy;
mod reader;
mod render;
mod replication;
mod rotation;
mod rotation_state;
mod schedule;
mod store;
mod values;
mod versions;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod kms_tests;
#[cfg(test)]
mod rotation_state_tests;
#[cfg(test)]
mod test_kms;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use coffer_storage::DynStorage;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::contracts::KeyService;
use crate::{AwsError, RequestContext};

pub use model::RotationFailure;
pub use rotation::{RotationEvent, RotationHook};
pub use rotation_state::{RotationOutcome, RotationStatus, RotationTask};

/// The Secrets Manager engine over one storage view.
pub struct SecretsEngine {
    storage: DynStorage,
    /// Striped write locks: writers of one secret (by account and name) are serialized.
    locks: Vec<Mutex<()>>,
    rotation_hook: Option<Arc<dyn RotationHook>>,
    /// The KMS engine that encrypts version values (see [`envelope`]).
    key_service: Option<Arc<dyn KeyService>>,
    /// Set once the creation-order index is known to be complete ([`index`]).
    index_ready: AtomicBool,
    /// Held while the index of an older store is built.
    index_build: Mutex<()>,
}

/// A secret as authorization sees it ([`SecretsEngine::authz_facts`]).
pub struct SecretAuthzFacts {
    pub arn: String,
    /// The customer key it is encrypted under, as DescribeSecret reports it (`None` for the
    /// default `aws/secretsmanager` key).
    pub kms_key_id: Option<String>,
    pub tags: Vec<(String, String)>,
    /// The resource policy document, as stored.
    pub policy: Option<String>,
}

impl SecretsEngine {
    pub fn new(storage: DynStorage) -> Self {
        Self {
            storage,
            locks: (0..store::LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            rotation_hook: None,
            key_service: None,
            index_ready: AtomicBool::new(false),
            index_build: Mutex::new(()),
        }
    }

    /// Installs the KMS engine: from then on every version value written is envelope-encrypted
    /// under the secret's `KmsKeyId` (or `alias/aws/secretsmanager`), and reading it needs that
    /// key to be usable. The core always installs it.
    ///
    /// Without a key service (the engine as [`new`](Self::new) builds it) values are stored in
    /// the plain format, protected by the storage barrier only, and `KmsKeyId` is recorded but
    /// not checked. That mode exists for unit tests only.
    pub fn with_key_service(mut self, keys: Arc<dyn KeyService>) -> Self {
        self.key_service = Some(keys);
        self
    }

    /// Installs the hook that RotateSecret notifies after it has stored the rotation
    /// configuration and the AWSPENDING placeholder (the future rotation runner).
    pub fn with_rotation_hook(mut self, hook: Arc<dyn RotationHook>) -> Self {
        self.rotation_hook = Some(hook);
        self
    }

    /// Runs one Secrets Manager operation (`op` is the part after `secretsmanager.` in
    /// `X-Amz-Target`) on its JSON input and returns the JSON output.
    pub async fn handle(&self, ctx: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
        if !OPERATIONS.contains(&op) {
            return Err(AwsError::unknown_operation(format!(
                "Operation {op} is not supported by Secrets Manager."
            )));
        }
        let input = input::Input::parse(input)?;
        tracing::debug!(operation = op, account = %ctx.account_id, region = %ctx.region, "secretsmanager request");
        match op {
            "CreateSecret" => self.create_secret(ctx, &input).await,
            "GetSecretValue" => self.get_secret_value(ctx, &input).await,
            "BatchGetSecretValue" => self.batch_get_secret_value(ctx, &input).await,
            "PutSecretValue" => self.put_secret_value(ctx, &input).await,
            "UpdateSecret" => self.update_secret(ctx, &input).await,
            "DescribeSecret" => self.describe_secret(ctx, &input).await,
            "ListSecrets" => self.list_secrets(ctx, &input).await,
            "ListSecretVersionIds" => self.list_secret_version_ids(ctx, &input).await,
            "UpdateSecretVersionStage" => self.update_secret_version_stage(ctx, &input).await,
            "DeleteSecret" => self.delete_secret(ctx, &input).await,
            "RestoreSecret" => self.restore_secret(ctx, &input).await,
            "TagResource" => self.tag_resource(ctx, &input).await,
            "UntagResource" => self.untag_resource(ctx, &input).await,
            "GetRandomPassword" => password::get_random_password(&input),
            "PutResourcePolicy" => self.put_resource_policy(ctx, &input).await,
            "GetResourcePolicy" => self.get_resource_policy(ctx, &input).await,
            "DeleteResourcePolicy" => self.delete_resource_policy(ctx, &input).await,
            "ValidateResourcePolicy" => self.validate_resource_policy(ctx, &input).await,
            "RotateSecret" => self.rotate_secret(ctx, &input).await,
            "CancelRotateSecret" => self.cancel_rotate_secret(ctx, &input).await,
            "ReplicateSecretToRegions" => self.replicate_secret_to_regions(ctx, &input).await,
            "RemoveRegionsFromReplication" => self.remove_regions_from_replication(ctx, &input).await,
            "StopReplicationToReplica" => self.stop_replication_to_replica(ctx, &input).await,
            _ => Err(AwsError::unknown_operation(format!(
                "Operation {op} is not supported by Secrets Manager."
            ))),
        }
    }

    /// What authorizing a request on one secret needs to know of it: `None` when `secret_id`
    /// (a name, full or partial ARN) names no secret of this account and region. One read of
    /// the secret's record, nothing rendered, and its version table skipped rather than
    /// decoded.
    pub async fn authz_facts(&self, ctx: &RequestContext, secret_id: &str) -> Option<SecretAuthzFacts> {
        let rec = self
            .find_as(ctx, secret_id, model::SecretHeader::from_bytes, |h| &h.arn)
            .await
            .ok()??;
        let replica = rec.primary_region.is_some();
        Some(SecretAuthzFacts {
            kms_key_id: render::reported_kms_key(rec.kms_key_id.as_deref()).map(str::to_string),
            tags: rec
                .tags
                .unwrap_or_default()
                .into_iter()
                .map(|t| (t.key, t.value))
                .collect(),
            // A replica has no resource policy of its own (GetResourcePolicy refuses it).
            policy: if replica { None } else { rec.policy },
            arn: rec.arn,
        })
    }

    /// Permanently removes secrets whose recovery window has ended, in every account and
    /// region. Called periodically by the core's scheduler (on the leader only). Returns how
    /// many secrets were removed.
    pub async fn purge_expired(&self, ctx: &RequestContext) -> Result<usize, AwsError> {
        self.purge_expired_impl(ctx).await
    }

    /// Deletes all of this engine's data (dev-only `/moto-api/reset`).
    pub async fn reset(&self) -> Result<(), AwsError> {
        self.reset_impl().await
    }
}

/// Every operation of the Secrets Manager API.
const OPERATIONS: &[&str] = &[
    "CreateSecret",
    "GetSecretValue",
    "BatchGetSecretValue",
    "PutSecretValue",
    "UpdateSecret",
    "DescribeSecret",
    "ListSecrets",
    "ListSecretVersionIds",
    "UpdateSecretVersionStage",
    "DeleteSecret",
    "RestoreSecret",
    "TagResource",
    "UntagResource",
    "GetRandomPassword",
    "PutResourcePolicy",
    "GetResourcePolicy",
    "DeleteResourcePolicy",
    "ValidateResourcePolicy",
    "RotateSecret",
    "CancelRotateSecret",
    "ReplicateSecretToRegions",
    "RemoveRegionsFromReplication",
    "StopReplicationToReplica",
];
