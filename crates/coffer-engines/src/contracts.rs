//! The contracts between engines.
//!
//! [`KeyService`] is how the engines that store encrypted values (Secrets Manager, Parameter
//! Store) use the KMS engine that owns the keys; [`SecretReader`] is how Parameter Store reads
//! a Secrets Manager secret through `/aws/reference/secretsmanager/<name>`.
//!
//! Secrets Manager encrypts every secret version, and Parameter Store every SecureString
//! value, under a KMS key named by the caller (`KmsKeyId` / `KeyId`) or the account's
//! AWS-managed key (`alias/aws/secretsmanager`, `alias/aws/ssm`), exactly as AWS does:
//! envelope encryption with a fresh data key per value. They see the KMS engine only through
//! [`KeyService`], so the key's state really governs access: a disabled key or one pending
//! deletion makes the value unreadable until the key is enabled again.

use std::collections::BTreeMap;

use async_trait::async_trait;
use coffer_crypto::{SecretBytes, SecretString};

use crate::{AwsError, RequestContext};

/// A KMS encryption context: bound to the ciphertext as associated data, and required again
/// (exactly, case-sensitively) to decrypt.
pub type EncryptionContext = BTreeMap<String, String>;

/// A fresh 256-bit data key and its copy encrypted under a KMS key.
pub struct DataKey {
    pub plaintext: SecretBytes,
    /// The KMS ciphertext blob of the data key (it names the KMS key and key material).
    pub ciphertext_blob: Vec<u8>,
    /// The ARN of the KMS key that encrypted it.
    pub key_arn: String,
}

/// A decrypted KMS ciphertext.
pub struct Decrypted {
    pub plaintext: SecretBytes,
    pub key_arn: String,
}

/// KMS operations other engines use, in the caller's account and region (from `ctx`).
///
/// Key ids may be a key id, key ARN, alias name (`alias/x`) or alias ARN. Naming an
/// AWS-managed alias (`alias/aws/secretsmanager`, `alias/aws/ssm`) creates that key on first
/// use. Errors are KMS's own (`NotFoundException`, `DisabledException`,
/// `KMSInvalidStateException`, `InvalidCiphertextException`, ...); each caller maps them to
/// its service's error as AWS does.
#[async_trait]
pub trait KeyService: Send + Sync + 'static {
    /// The ARN of the key `key_id` names (following aliases).
    async fn resolve_key_arn(&self, ctx: &RequestContext, key_id: &str) -> Result<String, AwsError>;

    /// `GenerateDataKey` with `KeySpec=AES_256` under `key_id`, bound to `context`.
    async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<DataKey, AwsError>;

    /// `Encrypt` of a small plaintext (at most 4096 bytes) under `key_id`, bound to `context`.
    /// Returns the ciphertext blob and the key ARN.
    async fn encrypt(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<(Vec<u8>, String), AwsError>;

    /// `Decrypt` of a blob made by `generate_data_key` or `encrypt`, with the same context.
    async fn decrypt(
        &self,
        ctx: &RequestContext,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted, AwsError>;
}

/// A secret's value, as Secrets Manager stores it.
pub enum SecretValue {
    String(SecretString),
    Binary(SecretBytes),
}

/// One version of a secret, read for another engine.
pub struct ReferencedSecret {
    pub name: String,
    pub arn: String,
    pub version_id: String,
    pub version_stages: Vec<String>,
    /// Creation time of the version, epoch seconds.
    pub created_date: f64,
    pub value: SecretValue,
    /// The secret's `DescribeSecret` output (no values in it).
    pub metadata: serde_json::Value,
}

/// Reads Secrets Manager secrets for other engines, with Secrets Manager's own semantics and
/// errors (`ResourceNotFoundException`, `InvalidRequestException` for a deleted secret,
/// `DecryptionFailure` when its KMS key is unusable...).
#[async_trait]
pub trait SecretReader: Send + Sync + 'static {
    /// `GetSecretValue(SecretId, VersionId?, VersionStage?)` plus the secret's metadata.
    async fn read_secret(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        version_id: Option<&str>,
        version_stage: Option<&str>,
    ) -> Result<ReferencedSecret, AwsError>;
}
