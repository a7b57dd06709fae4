//! Envelope encryption of version values under the secret's KMS key, as Secrets Manager does
//! it: every version value gets a fresh 256-bit data key from KMS `GenerateDataKey` under the
//! secret's `KmsKeyId` (or `alias/aws/secretsmanager`), the value is sealed with that data key
//! (AES-256-GCM) outside KMS, and the data key is kept only as its KMS ciphertext blob. Reading
//! asks KMS to `Decrypt` the blob, so the key's state governs access: a disabled key or one
//! pending deletion makes the value unreadable until the key is usable again.
//!
//! The KMS encryption context is the one AWS documents for Secrets Manager:
//! `{"SecretARN": <arn>, "SecretVersionId": <version id>}`; the same identifiers are the
//! AES-GCM associated data. A stored value moved to another secret or version cannot be
//! opened.
//!
//! # Stored format
//!
//! The value stored at a version's key starts with a tag byte:
//! * `S` / `B`: the plain format (string / binary, then the raw bytes). Written only when the
//!   engine has no key service (unit tests), and read for records stored before envelope
//!   encryption existed. Such values are protected by the storage barrier alone.
//! * `E`: envelope format v1, then JSON `{"v":1,"keys":[{"arn":..,"blob":..}],"ct":..}`:
//!   the data key wrapped under one or more KMS keys (newest first; UpdateSecret with a new
//!   `KmsKeyId` adds a wrapping, see [`SecretsEngine::rewrap_labelled_versions`]), and
//!   `ct` = AES-256-GCM(`nonce || ciphertext || tag`) of the plain format. Binary fields are
//!   standard base64.
//!
//! # Errors (what real Secrets Manager answers)
//!
//! * Reading a value whose KMS key is disabled, pending deletion, deleted, or whose blob or
//!   context does not match: `DecryptionFailure` with the message
//!   `Secrets Manager can't decrypt the secret value: <KMS message> (Service: AWSKMS; Status
//!   Code: 400; Error Code: <KMS code>; Request ID: <id>; Proxy: null)`. Recorded output of
//!   real AWS: AWS GovCloud (US) User Guide, "Requesting root access keys", Troubleshooting,
//!   "Issue: DecryptionFailure" (`... can't decrypt the secret value: arn:aws:kms:...:key/...
//!   is disabled. (Service: AWSKMS; Status Code: 400; Error Code: DisabledException; ...)`);
//!   the pending-deletion variant ("can't decrypt the secret value ... is pending deletion")
//!   is quoted from a real apply in a public Terraform configuration. The Secrets Manager API
//!   reference (Common Errors, GetSecretValue Errors) lists `DecryptionFailure` as "Secrets
//!   Manager can't decrypt the protected secret text using the provided KMS key".
//! * Writing a value when `GenerateDataKey` fails (key disabled, pending deletion, deleted):
//!   `EncryptionFailure` ("Secrets Manager can't encrypt the protected secret text using the
//!   provided KMS key. Check that the KMS key is available, enabled, and not in an invalid
//!   state": API reference, Common Errors / CreateSecret / PutSecretValue Errors) with the
//!   message `Secrets Manager can't encrypt the secret value: <KMS message> (Service: AWSKMS;
//!   ...)`, the shape quoted in hashicorp/terraform-provider-aws#30272 (PutSecretValue with a
//!   key that does not exist).
//! * A `KmsKeyId` on CreateSecret/UpdateSecret that names no key: `InvalidParameterException`
//!   "The operation failed because of an invalid KMS key: <KMS message>", as quoted in
//!   hashicorp/terraform-provider-aws#13303.
//! * KMS faults (5xx: `KMSInternalException`, `KeyUnavailableException`,
//!   `DependencyTimeoutException`) stay server faults: `InternalServiceError`.

use std::sync::Arc;

use base64::Engine as _;
use coffer_crypto::SecretBytes;
use coffer_crypto::aead::{AeadKey, Key256};
use serde::{Deserialize, Serialize};

use crate::contracts::{EncryptionContext, KeyService};
use crate::secrets::model::{DEFAULT_KMS_ALIAS, SecretValue};
use crate::{AwsError, AwsErrorCode, RequestContext};

/// What ListSecretVersionIds reports in `KmsKeyIds` for the AWS-managed default key.
pub(crate) const DEFAULT_KEY_REPORTED: &str = "DefaultEncryptionKey";

const TAG_ENVELOPE: u8 = b'E';
const FORMAT_V1: u8 = 1;
const AAD_LABEL: &[u8] = b"coffer/secretsmanager/version-value/v1";

/// Where a value lives, for binding: the secret's ARN in that region and the version id.
pub(crate) struct Binding<'a> {
    pub arn: &'a str,
    pub version_id: &'a str,
}

impl Binding<'_> {
    /// The encryption context AWS uses for secret versions.
    pub(crate) fn context(&self) -> EncryptionContext {
        let mut c = EncryptionContext::new();
        c.insert("SecretARN".to_string(), self.arn.to_string());
        c.insert("SecretVersionId".to_string(), self.version_id.to_string());
        c
    }

    /// AES-GCM associated data: a label and the identifiers, each length-prefixed.
    fn aad(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(AAD_LABEL.len() + self.arn.len() + self.version_id.len() + 24);
        for part in [AAD_LABEL, self.arn.as_bytes(), self.version_id.as_bytes()] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }
}

#[derive(Serialize, Deserialize)]
struct WrappedKey {
    /// The ARN of the KMS key that wrapped the data key.
    arn: String,
    /// The KMS ciphertext blob of the data key, base64.
    blob: String,
}

/// Envelope format v1 (see the module documentation). Holds only ciphertext.
#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope {
    v: u8,
    keys: Vec<WrappedKey>,
    ct: String,
}

/// A value as stored.
pub(crate) enum Stored {
    Plain(SecretValue),
    Envelope(Envelope),
}

fn corrupt() -> AwsError {
    AwsError::internal("stored secret value is corrupt")
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(s: &str) -> Result<Vec<u8>, AwsError> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|_| corrupt())
}

impl Stored {
    pub(crate) fn decode(bytes: &SecretBytes) -> Result<Self, AwsError> {
        match bytes.expose().split_first() {
            Some((&TAG_ENVELOPE, rest)) => {
                let env: Envelope = serde_json::from_slice(rest).map_err(|_| corrupt())?;
                if env.v != FORMAT_V1 || env.keys.is_empty() {
                    return Err(corrupt());
                }
                Ok(Self::Envelope(env))
            }
            _ => SecretValue::decode(bytes).map(Self::Plain),
        }
    }
}

impl Envelope {
    pub(crate) fn encode(&self) -> Result<SecretBytes, AwsError> {
        let json = serde_json::to_vec(self).map_err(|_| AwsError::internal("cannot encode a secret value"))?;
        let mut out = Vec::with_capacity(json.len() + 1);
        out.push(TAG_ENVELOPE);
        out.extend_from_slice(&json);
        Ok(SecretBytes::new(out))
    }

    /// The ARNs of the KMS keys that wrap the data key, newest first.
    #[cfg(test)]
    pub(crate) fn key_arns(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.arn.as_str())
    }
}

/// The KMS key id to use for a record's `kms_key_id`.
pub(crate) fn key_id_or_default(kms_key_id: Option<&str>) -> &str {
    kms_key_id.filter(|k| !k.is_empty()).unwrap_or(DEFAULT_KMS_ALIAS)
}

/// How ListSecretVersionIds names the key of a version encrypted under `kms_key_id`.
pub(crate) fn reported_key(kms_key_id: Option<&str>) -> String {
    crate::secrets::render::reported_kms_key(kms_key_id)
        .map(str::to_string)
        .unwrap_or_else(|| DEFAULT_KEY_REPORTED.to_string())
}

/// The caller's context re-addressed to the account and region that own a record: KMS keys
/// are regional, and a replica's value is encrypted in the replica's region.
pub(crate) fn kms_ctx(ctx: &RequestContext, account: &str, region: &str) -> RequestContext {
    RequestContext {
        account_id: account.to_string(),
        region: region.to_string(),
        ..ctx.clone()
    }
}

/// `(Service: AWSKMS; ...)`: how Secrets Manager reports the underlying KMS error.
fn kms_detail(e: &AwsError) -> String {
    let request_id = coffer_crypto::random::uuid_v4().unwrap_or_default();
    let msg = if e.message.is_empty() {
        String::new()
    } else {
        format!(": {}", e.message)
    };
    format!(
        "{msg} (Service: AWSKMS; Status Code: {}; Error Code: {}; Request ID: {request_id}; Proxy: null)",
        e.code.status(),
        e.code.as_str()
    )
}

fn is_fault(e: &AwsError) -> bool {
    e.code.status() >= 500
}

/// A KMS failure while reading a value.
pub(crate) fn decryption_failure(e: &AwsError) -> AwsError {
    if is_fault(e) {
        return AwsError::internal(format!("KMS failed while decrypting the secret value{}", kms_detail(e)));
    }
    AwsError::new(
        AwsErrorCode::DecryptionFailure,
        format!("Secrets Manager can't decrypt the secret value{}", kms_detail(e)),
    )
}

/// A KMS failure while writing a value.
pub(crate) fn encryption_failure(e: &AwsError) -> AwsError {
    if is_fault(e) {
        return AwsError::internal(format!("KMS failed while encrypting the secret value{}", kms_detail(e)));
    }
    AwsError::new(
        AwsErrorCode::EncryptionFailure,
        format!("Secrets Manager can't encrypt the secret value{}", kms_detail(e)),
    )
}

/// A `KmsKeyId` that KMS cannot resolve.
pub(crate) fn invalid_key(e: &AwsError) -> AwsError {
    match e.code {
        AwsErrorCode::NotFoundException
        | AwsErrorCode::InvalidArnException
        | AwsErrorCode::ValidationException
        | AwsErrorCode::NotAuthorizedException => AwsError::invalid_parameter(format!(
            "The operation failed because of an invalid KMS key: {}",
            e.message
        )),
        _ => encryption_failure(e),
    }
}

/// A decryption failure of our own (not KMS's): the data key opened but the value did not.
fn value_integrity_failure() -> AwsError {
    AwsError::new(
        AwsErrorCode::DecryptionFailure,
        "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
    )
}

/// Seals `value` under a fresh data key from `key_id`.
pub(crate) async fn seal(
    keys: &Arc<dyn KeyService>,
    ctx: &RequestContext,
    key_id: &str,
    binding: &Binding<'_>,
    value: &SecretValue,
) -> Result<Envelope, AwsError> {
    let dk = keys
        .generate_data_key(ctx, key_id, &binding.context())
        .await
        .map_err(|e| encryption_failure(&e))?;
    let key = Key256::from_bytes(dk.plaintext.expose())
        .map_err(|_| AwsError::internal("KMS returned a data key of the wrong length"))?;
    drop(dk.plaintext);
    let ct = AeadKey::new(&key)
        .and_then(|k| k.seal(&binding.aad(), value.encode().expose()))
        .map_err(|_| AwsError::internal("cannot encrypt the secret value"))?;
    Ok(Envelope {
        v: FORMAT_V1,
        keys: vec![WrappedKey {
            arn: dk.key_arn,
            blob: b64(&dk.ciphertext_blob),
        }],
        ct: b64(&ct),
    })
}

/// Recovers the data key of `env` through KMS, trying each wrapping (newest first). On
/// failure returns the error of the newest wrapping.
async fn unwrap_data_key(
    keys: &Arc<dyn KeyService>,
    ctx: &RequestContext,
    binding: &Binding<'_>,
    env: &Envelope,
) -> Result<Key256, AwsError> {
    let context = binding.context();
    let mut first_err = None;
    for wrapped in &env.keys {
        let blob = unb64(&wrapped.blob)?;
        match keys.decrypt(ctx, &blob, &context).await {
            Ok(d) => {
                return Key256::from_bytes(d.plaintext.expose())
                    .map_err(|_| AwsError::internal("KMS returned a data key of the wrong length"));
            }
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    Err(first_err.unwrap_or_else(corrupt))
}

/// Opens an envelope: the value, or the Secrets Manager error for the KMS failure.
pub(crate) async fn open(
    keys: &Arc<dyn KeyService>,
    ctx: &RequestContext,
    binding: &Binding<'_>,
    env: &Envelope,
) -> Result<SecretValue, AwsError> {
    let key = unwrap_data_key(keys, ctx, binding, env).await.map_err(|e| {
        if e.code == AwsErrorCode::InternalServiceError {
            e
        } else {
            decryption_failure(&e)
        }
    })?;
    let ct = unb64(&env.ct)?;
    let plain = AeadKey::new(&key)
        .and_then(|k| k.open(&binding.aad(), &ct))
        .map_err(|_| value_integrity_failure())?;
    SecretValue::decode(&plain)
}

/// Adds a wrapping of `env`'s data key under `key_id` (first in the list), unless one under
/// that key exists. Returns whether the envelope changed. KMS failures are returned as they
/// are (the caller decides; AWS skips re-encryption it cannot do).
pub(crate) async fn rewrap(
    keys: &Arc<dyn KeyService>,
    ctx: &RequestContext,
    key_id: &str,
    binding: &Binding<'_>,
    env: &mut Envelope,
) -> Result<bool, AwsError> {
    let target_arn = keys.resolve_key_arn(ctx, key_id).await?;
    if env.keys.iter().any(|k| k.arn == target_arn) {
        return Ok(false);
    }
    let data_key = unwrap_data_key(keys, ctx, binding, env).await?;
    let (blob, arn) = keys.encrypt(ctx, key_id, data_key.expose(), &binding.context()).await?;
    drop(data_key);
    env.keys.retain(|k| k.arn != arn);
    env.keys.insert(0, WrappedKey { arn, blob: b64(&blob) });
    Ok(true)
}
