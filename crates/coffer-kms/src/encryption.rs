//! Encrypt, Decrypt, ReEncrypt, GenerateDataKey(WithoutPlaintext),
//! GenerateDataKeyPair(WithoutPlaintext) and GenerateRandom.
//!
//! Symmetric keys produce the self-describing blob of [`crate::blob`]; RSA keys produce raw
//! RSA-OAEP ciphertext, which names no key (Decrypt then needs `KeyId` and
//! `EncryptionAlgorithm`, as on AWS).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_crypto::aead::AeadKey;
use coffer_crypto::{Key256, SecretBytes};
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use serde_json::{Value, json};

use crate::KmsEngine;
use crate::blob;
use crate::crypto;
use crate::input::{Input, KmsInput, check_enum, check_len, check_range};
use crate::model::KeyRecord;
use crate::spec::{ALL_ENCRYPTION_ALGORITHMS, ALL_KEY_PAIR_SPECS, KeySpec, KeyUsage};
use crate::store::{ensure_usable, ensure_usage, internal, invalid_state};

pub(crate) type Context = BTreeMap<String, String>;

pub(crate) fn invalid_ciphertext() -> AwsError {
    AwsError::new(AwsErrorCode::InvalidCiphertextException, "")
}

fn b64(bytes: &[u8]) -> Value {
    Value::String(STANDARD.encode(bytes))
}

/// Checks `GrantTokens` (at most 10, each 1..=8192 characters); they are accepted and not
/// enforced until access control lands.
fn check_grant_tokens(input: &Input) -> Result<(), AwsError> {
    if let Some(tokens) = input.string_list("GrantTokens")? {
        check_len(tokens.len(), 0, 10, "GrantTokens")?;
    }
    Ok(())
}

/// `DryRun`: everything was checked; report success without doing the work.
fn dry_run(input: &Input) -> Result<(), AwsError> {
    if input.bool("DryRun")?.unwrap_or(false) {
        return Err(AwsError::new(
            AwsErrorCode::DryRunOperationException,
            "The request would have succeeded, but the DryRun option is set.",
        ));
    }
    Ok(())
}

fn algorithm(input: &Input, member: &str) -> Result<String, AwsError> {
    let alg = input.string(member)?.unwrap_or_else(|| "SYMMETRIC_DEFAULT".into());
    check_enum(&alg, ALL_ENCRYPTION_ALGORITHMS, member)?;
    Ok(alg)
}

fn ensure_algorithm(rec: &KeyRecord, alg: &str) -> Result<(), AwsError> {
    if !rec.key_spec.encryption_algorithms().contains(&alg) {
        return Err(AwsError::new(
            AwsErrorCode::InvalidKeyUsageException,
            format!(
                "{} key spec is {} which does not support {alg}.",
                rec.arn,
                rec.key_spec.as_str()
            ),
        ));
    }
    Ok(())
}

/// The symmetric key of one material version.
fn aead_key(material: &SecretBytes) -> Result<AeadKey, AwsError> {
    let key = Key256::from_bytes(material.expose()).map_err(|_| internal("stored key material is malformed"))?;
    AeadKey::new(&key).map_err(|_| internal("stored key material is malformed"))
}

impl KmsEngine {
    /// Encrypts under the current material of a symmetric key (the caller checked state and
    /// usage). Returns the blob.
    pub(crate) async fn seal(&self, rec: &KeyRecord, plaintext: &[u8], context: &Context) -> Result<Vec<u8>, AwsError> {
        let version = rec.current_version();
        if version == 0 {
            return Err(invalid_state(format!("{} is pending import.", rec.arn)));
        }
        let key = aead_key(&self.load_material(rec, version).await?)?;
        let mut out = blob::header(&rec.key_id, version);
        let aad = blob::aad(&out, context);
        key.seal_append(&aad, plaintext, &mut out)
            .map_err(|_| internal("encryption failed"))?;
        Ok(out)
    }

    /// Encrypts with a key after the checks every encrypting operation makes.
    pub(crate) async fn encrypt_with(
        &self,
        rec: &KeyRecord,
        alg: &str,
        plaintext: &[u8],
        context: &Context,
    ) -> Result<Vec<u8>, AwsError> {
        ensure_usage(rec, KeyUsage::EncryptDecrypt, "Encrypt")?;
        ensure_usable(rec)?;
        ensure_algorithm(rec, alg)?;
        if rec.key_spec == KeySpec::SymmetricDefault {
            return self.seal(rec, plaintext, context).await;
        }
        if !context.is_empty() {
            return Err(AwsError::validation(
                "EncryptionContext is not supported with asymmetric KMS keys.",
            ));
        }
        let max = crypto::oaep_max_plaintext(rec.key_spec, alg);
        if plaintext.len() > max {
            return Err(AwsError::validation(format!(
                "Plaintext size {} exceeds the maximum of {max} bytes for {alg} with {}.",
                plaintext.len(),
                rec.key_spec.as_str()
            )));
        }
        let material = self.load_material(rec, rec.current_version()).await?;
        crypto::rsa_encrypt(material.expose(), alg, plaintext)
    }

    /// Decrypts a ciphertext: a symmetric blob (the key comes from the blob; `key_id`, if
    /// given, must name the same key) or, for an RSA algorithm, OAEP ciphertext under
    /// `key_id`. Returns the key, the plaintext and the key material id (symmetric only).
    pub(crate) async fn open(
        &self,
        ctx: &RequestContext,
        ciphertext: &[u8],
        context: &Context,
        key_id: Option<&str>,
        alg: &str,
    ) -> Result<(KeyRecord, SecretBytes, Option<String>), AwsError> {
        let named = match key_id {
            Some(k) => Some(self.resolve(ctx, k, true).await?),
            None => None,
        };
        if alg != "SYMMETRIC_DEFAULT" {
            let rec = named.ok_or_else(|| {
                AwsError::validation("KeyId is required to decrypt ciphertext encrypted under an asymmetric KMS key.")
            })?;
            ensure_usage(&rec, KeyUsage::EncryptDecrypt, "Decrypt")?;
            ensure_usable(&rec)?;
            ensure_algorithm(&rec, alg)?;
            let material = self.load_material(&rec, rec.current_version()).await?;
            let plain = crypto::rsa_decrypt(material.expose(), alg, ciphertext)?.ok_or_else(invalid_ciphertext)?;
            return Ok((rec, plain, None));
        }
        let parsed = blob::parse(ciphertext).ok_or_else(invalid_ciphertext)?;
        let rec = match named {
            Some(rec) => {
                if rec.key_id != parsed.key_id {
                    return Err(AwsError::new(
                        AwsErrorCode::IncorrectKeyException,
                        "The key ID in the request does not identify a CMK that can perform this operation.",
                    ));
                }
                rec
            }
            None => self
                .load_key(&ctx.account_id, &ctx.region, &parsed.key_id)
                .await?
                .ok_or_else(invalid_ciphertext)?,
        };
        ensure_usage(&rec, KeyUsage::EncryptDecrypt, "Decrypt")?;
        ensure_usable(&rec)?;
        if rec.key_spec != KeySpec::SymmetricDefault
            || parsed.material_version == 0
            || parsed.material_version > rec.current_version()
        {
            return Err(invalid_ciphertext());
        }
        let key = aead_key(&self.load_material(&rec, parsed.material_version).await?)?;
        let plain = key
            .open(&parsed.aad(context), parsed.sealed)
            .map_err(|_| invalid_ciphertext())?;
        let idx = usize::try_from(parsed.material_version - 1).unwrap_or(usize::MAX);
        let material_id = rec.material_ids.get(idx).cloned();
        Ok((rec, plain, material_id))
    }

    pub(crate) async fn encrypt_op(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let key_id = input.key_id("KeyId")?;
        let plaintext = input.req_blob("Plaintext", 1, 4096)?;
        let context = input.context("EncryptionContext")?;
        let alg = algorithm(input, "EncryptionAlgorithm")?;
        check_grant_tokens(input)?;
        let rec = self.resolve(ctx, &key_id, true).await?;
        ensure_usage(&rec, KeyUsage::EncryptDecrypt, "Encrypt")?;
        ensure_usable(&rec)?;
        ensure_algorithm(&rec, &alg)?;
        dry_run(input)?;
        let ct = self.encrypt_with(&rec, &alg, plaintext.expose(), &context).await?;
        Ok(json!({ "CiphertextBlob": b64(&ct), "KeyId": rec.arn, "EncryptionAlgorithm": alg }))
    }

    pub(crate) async fn decrypt_op(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let ciphertext = input.req_blob("CiphertextBlob", 1, 6144)?;
        let context = input.context("EncryptionContext")?;
        let key_id = input.bounded_string("KeyId", 2048)?;
        let alg = algorithm(input, "EncryptionAlgorithm")?;
        check_grant_tokens(input)?;
        if input.object("Recipient")?.is_some() {
            return Err(AwsError::new(
                AwsErrorCode::UnsupportedOperationException,
                "Recipient (Nitro Enclaves attestation) is not supported by Coffer.",
            ));
        }
        let (rec, plain, material_id) = self
            .open(ctx, ciphertext.expose(), &context, key_id.as_deref(), &alg)
            .await?;
        dry_run(input)?;
        let mut out = serde_json::Map::new();
        out.insert("KeyId".into(), json!(rec.arn));
        out.insert("Plaintext".into(), b64(plain.expose()));
        out.insert("EncryptionAlgorithm".into(), json!(alg));
        if let Some(m) = material_id {
            out.insert("KeyMaterialId".into(), json!(m));
        }
        Ok(Value::Object(out))
    }

    pub(crate) async fn re_encrypt(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let ciphertext = input.req_blob("CiphertextBlob", 1, 6144)?;
        let source_context = input.context("SourceEncryptionContext")?;
        let source_key = input.bounded_string("SourceKeyId", 2048)?;
        let dest_key = input.key_id("DestinationKeyId")?;
        let dest_context = input.context("DestinationEncryptionContext")?;
        let source_alg = algorithm(input, "SourceEncryptionAlgorithm")?;
        let dest_alg = algorithm(input, "DestinationEncryptionAlgorithm")?;
        check_grant_tokens(input)?;
        let (source, plain, source_material) = self
            .open(
                ctx,
                ciphertext.expose(),
                &source_context,
                source_key.as_deref(),
                &source_alg,
            )
            .await?;
        let dest = self.resolve(ctx, &dest_key, true).await?;
        ensure_usage(&dest, KeyUsage::EncryptDecrypt, "ReEncrypt")?;
        ensure_usable(&dest)?;
        ensure_algorithm(&dest, &dest_alg)?;
        dry_run(input)?;
        let ct = self
            .encrypt_with(&dest, &dest_alg, plain.expose(), &dest_context)
            .await?;
        let mut out = serde_json::Map::new();
        out.insert("CiphertextBlob".into(), b64(&ct));
        out.insert("SourceKeyId".into(), json!(source.arn));
        out.insert("KeyId".into(), json!(dest.arn));
        out.insert("SourceEncryptionAlgorithm".into(), json!(source_alg));
        out.insert("DestinationEncryptionAlgorithm".into(), json!(dest_alg));
        if let Some(m) = source_material {
            out.insert("SourceKeyMaterialId".into(), json!(m));
        }
        if dest.key_spec == KeySpec::SymmetricDefault
            && let Some(m) = dest.current_material_id()
        {
            out.insert("DestinationKeyMaterialId".into(), json!(m));
        }
        Ok(Value::Object(out))
    }

    /// The symmetric key a data-key operation uses, checked.
    async fn data_key_key(&self, ctx: &RequestContext, key_id: &str, op: &str) -> Result<KeyRecord, AwsError> {
        let rec = self.resolve(ctx, key_id, true).await?;
        ensure_usage(&rec, KeyUsage::EncryptDecrypt, op)?;
        if rec.key_spec != KeySpec::SymmetricDefault {
            return Err(AwsError::new(
                AwsErrorCode::InvalidKeyUsageException,
                format!("{} is not a symmetric encryption KMS key; {op} requires one.", rec.arn),
            ));
        }
        ensure_usable(&rec)?;
        Ok(rec)
    }

    /// A data key of `size` bytes under `rec`: (plaintext, blob).
    pub(crate) async fn new_data_key(
        &self,
        rec: &KeyRecord,
        size: usize,
        context: &Context,
    ) -> Result<(SecretBytes, Vec<u8>), AwsError> {
        let plain = coffer_crypto::random::secret_bytes(size).map_err(|_| internal("random generation failed"))?;
        let ct = self.seal(rec, plain.expose(), context).await?;
        Ok((plain, ct))
    }

    pub(crate) async fn generate_data_key_op(
        &self,
        ctx: &RequestContext,
        input: &Input,
        with_plaintext: bool,
    ) -> Result<Value, AwsError> {
        let key_id = input.key_id("KeyId")?;
        let context = input.context("EncryptionContext")?;
        let n = input.integer("NumberOfBytes")?;
        let spec = input.string("KeySpec")?;
        if let Some(s) = &spec {
            check_enum(s, &["AES_256", "AES_128"], "KeySpec")?;
        }
        if let Some(n) = n {
            check_range(n, 1, 1024, "NumberOfBytes")?;
        }
        let size = match (n, spec.as_deref()) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(AwsError::validation(
                    "Please specify either number of bytes or key spec.",
                ));
            }
            (Some(n), None) => usize::try_from(n).unwrap_or(32),
            (None, Some("AES_128")) => 16,
            (None, _) => 32,
        };
        check_grant_tokens(input)?;
        if with_plaintext && input.object("Recipient")?.is_some() {
            return Err(AwsError::new(
                AwsErrorCode::UnsupportedOperationException,
                "Recipient (Nitro Enclaves attestation) is not supported by Coffer.",
            ));
        }
        let op = if with_plaintext {
            "GenerateDataKey"
        } else {
            "GenerateDataKeyWithoutPlaintext"
        };
        let rec = self.data_key_key(ctx, &key_id, op).await?;
        dry_run(input)?;
        let (plain, ct) = self.new_data_key(&rec, size, &context).await?;
        let mut out = serde_json::Map::new();
        out.insert("CiphertextBlob".into(), b64(&ct));
        if with_plaintext {
            out.insert("Plaintext".into(), b64(plain.expose()));
        }
        out.insert("KeyId".into(), json!(rec.arn));
        if let Some(m) = rec.current_material_id() {
            out.insert("KeyMaterialId".into(), json!(m));
        }
        Ok(Value::Object(out))
    }

    pub(crate) async fn generate_data_key_pair(
        &self,
        ctx: &RequestContext,
        input: &Input,
        with_plaintext: bool,
    ) -> Result<Value, AwsError> {
        let key_id = input.key_id("KeyId")?;
        let context = input.context("EncryptionContext")?;
        let pair_spec = input.req_string("KeyPairSpec")?;
        check_enum(&pair_spec, ALL_KEY_PAIR_SPECS, "KeyPairSpec")?;
        let spec = KeySpec::parse(&pair_spec).ok_or_else(|| {
            AwsError::new(
                AwsErrorCode::UnsupportedOperationException,
                format!("{pair_spec} is not supported by Coffer."),
            )
        })?;
        check_grant_tokens(input)?;
        let op = if with_plaintext {
            "GenerateDataKeyPair"
        } else {
            "GenerateDataKeyPairWithoutPlaintext"
        };
        let rec = self.data_key_key(ctx, &key_id, op).await?;
        dry_run(input)?;
        let private = tokio::task::spawn_blocking(move || crypto::generate_material(spec))
            .await
            .map_err(|_| internal("key generation was interrupted"))??;
        let public = crypto::public_key_der(spec, private.expose())?;
        let ct = self.seal(&rec, private.expose(), &context).await?;
        let mut out = serde_json::Map::new();
        out.insert("PrivateKeyCiphertextBlob".into(), b64(&ct));
        if with_plaintext {
            out.insert("PrivateKeyPlaintext".into(), b64(private.expose()));
        }
        out.insert("PublicKey".into(), b64(&public));
        out.insert("KeyId".into(), json!(rec.arn));
        out.insert("KeyPairSpec".into(), json!(pair_spec));
        if let Some(m) = rec.current_material_id() {
            out.insert("KeyMaterialId".into(), json!(m));
        }
        Ok(Value::Object(out))
    }
}

pub(crate) fn generate_random(input: &Input) -> Result<Value, AwsError> {
    let n = input
        .integer("NumberOfBytes")?
        .ok_or_else(|| AwsError::validation("NumberOfBytes is required."))?;
    check_range(n, 1, 1024, "NumberOfBytes")?;
    if input.string("CustomKeyStoreId")?.is_some() {
        return Err(AwsError::new(
            AwsErrorCode::UnsupportedOperationException,
            "Custom key stores are not supported by Coffer.",
        ));
    }
    let bytes = coffer_crypto::random::secret_bytes(usize::try_from(n).unwrap_or(0))
        .map_err(|_| internal("random generation failed"))?;
    Ok(json!({ "Plaintext": b64(bytes.expose()) }))
}
