//! SecureString values under KMS, as Parameter Store does it.
//!
//! Values of at most 4096 bytes are encrypted directly with KMS `Encrypt`; larger (advanced
//! tier) values use envelope encryption: a fresh data key from `GenerateDataKey` seals the
//! value with AES-256-GCM. Both are bound to the encryption context
//! `{"PARAMETER_ARN": <arn>}`, as AWS does, so the key's state governs every read: a disabled
//! key or one pending deletion makes decryption fail with `InvalidKeyId`.
//!
//! Stored form: one tag byte, then either the KMS ciphertext blob (`DIRECT`) or
//! `len(blob):u32be ‖ blob ‖ nonce ‖ ciphertext ‖ tag` (`ENVELOPE`). The `Value` returned
//! without decryption is the base64 of everything after the tag byte.

use base64::Engine as _;
use coffer_crypto::aead::{self, Key256};
use coffer_crypto::{SecretBytes, SecretString};
use coffer_engines::contracts::{EncryptionContext, KeyService};
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};

const DIRECT: u8 = 1;
const ENVELOPE: u8 = 2;
/// The largest value KMS `Encrypt` takes.
const DIRECT_MAX: usize = 4096;
/// Associated data of the envelope's AES-GCM layer.
const ENVELOPE_AAD: &[u8] = b"coffer-ssm-securestring-v1";

fn context(arn: &str) -> EncryptionContext {
    let mut c = EncryptionContext::new();
    c.insert("PARAMETER_ARN".to_string(), arn.to_string());
    c
}

/// Maps a KMS failure to what Parameter Store answers: `InvalidKeyId` for every key problem
/// (missing, disabled, pending deletion, wrong ciphertext), `InternalServerError` otherwise.
pub(crate) fn kms_error(e: AwsError) -> AwsError {
    use AwsErrorCode as C;
    match e.code {
        C::NotFoundException
        | C::DisabledException
        | C::KMSInvalidStateException
        | C::InvalidCiphertextException
        | C::IncorrectKeyException
        | C::InvalidKeyUsageException
        | C::InvalidArnException
        | C::ValidationException
        | C::AccessDeniedException
        | C::InvalidKeyId => {
            let detail = if e.message.is_empty() {
                e.code.as_str().to_string()
            } else {
                e.message
            };
            AwsError::new(C::InvalidKeyId, detail)
        }
        _ => AwsError::new(C::InternalServerError, "An error occurred while calling KMS."),
    }
}

/// Encrypts a SecureString value for the parameter `arn` under `key_id`.
pub(crate) async fn seal(
    keys: &dyn KeyService,
    ctx: &RequestContext,
    key_id: &str,
    arn: &str,
    value: &SecretString,
) -> Result<SecretBytes, AwsError> {
    let ec = context(arn);
    let plain = value.expose().as_bytes();
    if plain.len() <= DIRECT_MAX {
        let (blob, _) = keys.encrypt(ctx, key_id, plain, &ec).await.map_err(kms_error)?;
        let mut out = Vec::with_capacity(blob.len() + 1);
        out.push(DIRECT);
        out.extend_from_slice(&blob);
        return Ok(SecretBytes::new(out));
    }
    let dk = keys.generate_data_key(ctx, key_id, &ec).await.map_err(kms_error)?;
    let key = Key256::from_bytes(dk.plaintext.expose()).map_err(|_| AwsError::internal("bad data key"))?;
    let sealed = aead::seal(&key, ENVELOPE_AAD, plain).map_err(|_| AwsError::internal("encryption failed"))?;
    let blob_len = u32::try_from(dk.ciphertext_blob.len()).map_err(|_| AwsError::internal("data key too long"))?;
    let mut out = Vec::with_capacity(5 + dk.ciphertext_blob.len() + sealed.len());
    out.push(ENVELOPE);
    out.extend_from_slice(&blob_len.to_be_bytes());
    out.extend_from_slice(&dk.ciphertext_blob);
    out.extend_from_slice(&sealed);
    Ok(SecretBytes::new(out))
}

/// Decrypts a stored SecureString value of the parameter `arn`.
pub(crate) async fn open(
    keys: &dyn KeyService,
    ctx: &RequestContext,
    arn: &str,
    stored: &SecretBytes,
) -> Result<SecretString, AwsError> {
    let corrupt = || AwsError::internal("stored SecureString value is corrupt");
    let ec = context(arn);
    let (tag, rest) = stored.expose().split_first().ok_or_else(corrupt)?;
    let plain = match *tag {
        DIRECT => keys.decrypt(ctx, rest, &ec).await.map_err(kms_error)?.plaintext,
        ENVELOPE => {
            let len_bytes: [u8; 4] = rest.get(..4).and_then(|b| b.try_into().ok()).ok_or_else(corrupt)?;
            let len = usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| corrupt())?;
            let blob = rest.get(4..4 + len).ok_or_else(corrupt)?;
            let sealed = rest.get(4 + len..).ok_or_else(corrupt)?;
            let dk = keys.decrypt(ctx, blob, &ec).await.map_err(kms_error)?;
            let key = Key256::from_bytes(dk.plaintext.expose()).map_err(|_| corrupt())?;
            aead::open(&key, ENVELOPE_AAD, sealed).map_err(|_| corrupt())?
        }
        _ => return Err(corrupt()),
    };
    String::from_utf8(plain.expose().to_vec())
        .map(SecretString::new)
        .map_err(|_| corrupt())
}

/// The `Value` of a SecureString read without decryption: base64 of the ciphertext.
pub(crate) fn ciphertext_value(stored: &SecretBytes) -> String {
    let body = stored.expose().get(1..).unwrap_or_default();
    base64::engine::general_purpose::STANDARD.encode(body)
}
