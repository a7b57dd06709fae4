//! Coffer's AWS KMS engine (`X-Amz-Target: TrentService.*`).
//!
//! [`KmsEngine::handle`] runs one operation on its JSON input and returns the JSON output or
//! an [`AwsError`]; [`KmsEngine`] also implements [`KeyService`] for the engines that
//! envelope-encrypt their values (Secrets Manager, Parameter Store). Semantics follow the
//! AWS API (reference/aws-api.md §5); all cryptography is aws-lc-rs.
//!
//! Module map:
//! * [`input`]: request decoding and AWS's constraint messages; [`spec`]: key specs, usages
//!   and algorithms; [`model`]: stored records and the storage layout; [`store`]: storage
//!   access, key id resolution (ids, ARNs, aliases, AWS-managed aliases), key states.
//! * [`crypto`]: the primitives; [`blob`]: the symmetric ciphertext format.
//! * operations: [`keys`] (create, describe, list, enable/disable, deletion, description,
//!   policies, tags), [`aliases`], [`encryption`] (encrypt, decrypt, re-encrypt, data keys,
//!   random), [`signing`] (sign, verify, MACs, public keys), [`rotation`], [`grants`];
//!   [`service`]: the [`KeyService`] implementation.

mod aliases;
mod blob;
mod crypto;
mod encryption;
mod grants;
mod input;
mod keys;
mod model;
mod rotation;
mod service;
mod signing;
mod spec;
mod store;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use coffer_engines::contracts::KeyService;
use coffer_engines::{AwsError, RequestContext};
use coffer_storage::DynStorage;
use coffer_storage::cache::CachedStorage;
use serde_json::Value;
use time::OffsetDateTime;

use crate::input::Input;

/// How many decoded records (keys, aliases, key material) the engine keeps (see
/// [`KmsEngine::forget_cached`]). A key record may carry a 32 KB key policy, so this bounds
/// the memory at a few tens of MB; the hot set (the keys requests use) is much smaller.
const CACHED_KEYS: usize = 1024;

/// The KMS engine over one storage view.
pub struct KmsEngine {
    /// Every read and write of the engine goes through this layer, which keeps key records,
    /// aliases and key material decoded (Encrypt, Decrypt and every secret read load them),
    /// so its cache sees every write.
    storage: CachedStorage<store::Cached>,
    /// Serializes every state change (key, alias and grant writes). Cryptographic operations
    /// only read and never take it.
    write: tokio::sync::Mutex<()>,
}

/// Every operation Coffer's KMS answers.
const OPERATIONS: &[&str] = &[
    "CreateKey",
    "DescribeKey",
    "ListKeys",
    "EnableKey",
    "DisableKey",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "UpdateKeyDescription",
    "PutKeyPolicy",
    "GetKeyPolicy",
    "ListKeyPolicies",
    "TagResource",
    "UntagResource",
    "ListResourceTags",
    "CreateAlias",
    "UpdateAlias",
    "DeleteAlias",
    "ListAliases",
    "Encrypt",
    "Decrypt",
    "ReEncrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateRandom",
    "Sign",
    "Verify",
    "GenerateMac",
    "VerifyMac",
    "GetPublicKey",
    "EnableKeyRotation",
    "DisableKeyRotation",
    "GetKeyRotationStatus",
    "RotateKeyOnDemand",
    "ListKeyRotations",
    "CreateGrant",
    "ListGrants",
    "RevokeGrant",
    "RetireGrant",
    "ListRetirableGrants",
];

impl KmsEngine {
    pub fn new(storage: DynStorage) -> Self {
        Self {
            storage: CachedStorage::new(storage, CACHED_KEYS),
            write: tokio::sync::Mutex::new(()),
        }
    }

    /// Runs one KMS operation (`op` is the part after `TrentService.` in `X-Amz-Target`) on
    /// its JSON input and returns the JSON output.
    pub async fn handle(&self, ctx: &RequestContext, op: &str, input: Value) -> Result<Value, AwsError> {
        if !OPERATIONS.contains(&op) {
            return Err(AwsError::unknown_operation(format!(
                "Operation {op} is not supported by Coffer's KMS."
            )));
        }
        let input = Input::parse(input)?;
        tracing::debug!(operation = op, account = %ctx.account_id, region = %ctx.region, "kms request");
        match op {
            "CreateKey" => self.create_key(ctx, &input).await,
            "DescribeKey" => self.describe_key(ctx, &input).await,
            "ListKeys" => self.list_keys(ctx, &input).await,
            "EnableKey" => self.set_enabled(ctx, &input, true).await,
            "DisableKey" => self.set_enabled(ctx, &input, false).await,
            "ScheduleKeyDeletion" => self.schedule_key_deletion(ctx, &input).await,
            "CancelKeyDeletion" => self.cancel_key_deletion(ctx, &input).await,
            "UpdateKeyDescription" => self.update_key_description(ctx, &input).await,
            "PutKeyPolicy" => self.put_key_policy(ctx, &input).await,
            "GetKeyPolicy" => self.get_key_policy(ctx, &input).await,
            "ListKeyPolicies" => self.list_key_policies(ctx, &input).await,
            "TagResource" => self.tag_resource(ctx, &input).await,
            "UntagResource" => self.untag_resource(ctx, &input).await,
            "ListResourceTags" => self.list_resource_tags(ctx, &input).await,
            "CreateAlias" => self.create_alias(ctx, &input).await,
            "UpdateAlias" => self.update_alias(ctx, &input).await,
            "DeleteAlias" => self.delete_alias(ctx, &input).await,
            "ListAliases" => self.list_aliases(ctx, &input).await,
            "Encrypt" => self.encrypt_op(ctx, &input).await,
            "Decrypt" => self.decrypt_op(ctx, &input).await,
            "ReEncrypt" => self.re_encrypt(ctx, &input).await,
            "GenerateDataKey" => self.generate_data_key_op(ctx, &input, true).await,
            "GenerateDataKeyWithoutPlaintext" => self.generate_data_key_op(ctx, &input, false).await,
            "GenerateDataKeyPair" => self.generate_data_key_pair(ctx, &input, true).await,
            "GenerateDataKeyPairWithoutPlaintext" => self.generate_data_key_pair(ctx, &input, false).await,
            "GenerateRandom" => encryption::generate_random(&input),
            "Sign" => self.sign(ctx, &input).await,
            "Verify" => self.verify(ctx, &input).await,
            "GenerateMac" => self.generate_mac(ctx, &input).await,
            "VerifyMac" => self.verify_mac(ctx, &input).await,
            "GetPublicKey" => self.get_public_key(ctx, &input).await,
            "EnableKeyRotation" => self.enable_key_rotation(ctx, &input).await,
            "DisableKeyRotation" => self.disable_key_rotation(ctx, &input).await,
            "GetKeyRotationStatus" => self.get_key_rotation_status(ctx, &input).await,
            "RotateKeyOnDemand" => self.rotate_key_on_demand(ctx, &input).await,
            "ListKeyRotations" => self.list_key_rotations(ctx, &input).await,
            "CreateGrant" => self.create_grant(ctx, &input).await,
            "ListGrants" => self.list_grants(ctx, &input).await,
            "RevokeGrant" => self.revoke_grant(ctx, &input).await,
            "RetireGrant" => self.retire_grant(ctx, &input).await,
            "ListRetirableGrants" => self.list_retirable_grants(ctx, &input).await,
            _ => Err(AwsError::unknown_operation(format!(
                "Operation {op} is not supported by Coffer's KMS."
            ))),
        }
    }

    /// One pass of the background jobs over every account and region: deletes keys whose
    /// deletion date has passed (with their material, aliases and grants) and performs due
    /// automatic rotations. Returns how many keys were deleted or rotated.
    pub async fn background(&self, now: OffsetDateTime) -> Result<usize, AwsError> {
        self.background_impl(now).await
    }

    /// Drops the key records, aliases and key material kept in memory: the core calls it
    /// when the barrier seals, so nothing read through the barrier outlives the seal.
    pub fn forget_cached(&self) {
        self.storage.forget();
    }

    /// What authorizing a request on one key needs to know of it: `None` when `key_id` (a
    /// key id, key ARN, alias name or alias ARN) names no key of this account and region. One
    /// read of the key's record, nothing rendered.
    pub async fn authz_facts(&self, ctx: &RequestContext, key_id: &str) -> Option<KeyAuthzFacts> {
        let rec = self.resolve(ctx, key_id, true).await.ok()?;
        Some(KeyAuthzFacts {
            aws_managed: rec.is_aws_managed(),
            policy: rec.policy,
            arn: rec.arn,
        })
    }

    /// Deletes all KMS data (dev-only `/moto-api/reset`).
    pub async fn reset(&self) -> Result<(), AwsError> {
        self.reset_impl().await
    }
}

/// A key as authorization sees it ([`KmsEngine::authz_facts`]).
pub struct KeyAuthzFacts {
    pub arn: String,
    /// An AWS managed key (`alias/aws/...`): its key policy is AWS's, not evaluated here.
    pub aws_managed: bool,
    /// The key policy document, as stored.
    pub policy: String,
}

/// The key id a symmetric ciphertext blob names (Decrypt needs no `KeyId`); `None` when the
/// blob is not one of ours. For authorization, which must know the key before decrypting.
pub fn ciphertext_key_id(ciphertext: &[u8]) -> Option<String> {
    blob::parse(ciphertext).map(|b| b.key_id)
}

/// Lets the other engines hold the KMS engine as their [`KeyService`].
pub fn as_key_service(engine: std::sync::Arc<KmsEngine>) -> std::sync::Arc<dyn KeyService> {
    engine
}
