//! Sign, Verify, GenerateMac, VerifyMac and GetPublicKey.
//!
//! `MessageType=RAW` messages are hashed with the algorithm's digest; `DIGEST` messages are
//! the digest itself and must have its length. A signature or MAC that does not verify is
//! `KMSInvalidSignatureException` / `KMSInvalidMacException` with an empty message, as on
//! AWS (the `...Valid` output member is only ever `true`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use serde_json::{Value, json};

use crate::KmsEngine;
use crate::crypto;
use crate::input::{Input, KmsInput, check_enum, check_len, required};
use crate::model::KeyRecord;
use crate::spec::{ALL_MAC_ALGORITHMS, ALL_SIGNING_ALGORITHMS, KeyUsage};
use crate::store::{ensure_usable, ensure_usage};

fn b64(bytes: &[u8]) -> Value {
    Value::String(STANDARD.encode(bytes))
}

fn dry_run(input: &Input) -> Result<(), AwsError> {
    if input.bool("DryRun")?.unwrap_or(false) {
        return Err(AwsError::new(
            AwsErrorCode::DryRunOperationException,
            "The request would have succeeded, but the DryRun option is set.",
        ));
    }
    Ok(())
}

/// The decoded common members of Sign and Verify.
struct SignInput {
    key_id: String,
    message: coffer_crypto::SecretBytes,
    is_digest: bool,
    alg: String,
}

fn sign_input(input: &Input) -> Result<SignInput, AwsError> {
    let key_id = input.key_id("KeyId")?;
    let message = input.req_blob("Message", 1, 4096)?;
    let message_type = input.string("MessageType")?.unwrap_or_else(|| "RAW".into());
    check_enum(&message_type, &["RAW", "DIGEST", "EXTERNAL_MU"], "MessageType")?;
    let alg = input.req_string("SigningAlgorithm")?;
    check_enum(&alg, ALL_SIGNING_ALGORITHMS, "SigningAlgorithm")?;
    if let Some(t) = input.string_list("GrantTokens")? {
        check_len(t.len(), 0, 10, "GrantTokens")?;
    }
    if message_type == "EXTERNAL_MU" {
        return Err(AwsError::new(
            AwsErrorCode::UnsupportedOperationException,
            "MessageType EXTERNAL_MU applies to ML-DSA keys, which Coffer does not support.",
        ));
    }
    let is_digest = message_type == "DIGEST";
    if is_digest && message.len() != crypto::digest_len(&alg) {
        return Err(AwsError::validation(format!(
            "Digest is invalid length for algorithm {alg}."
        )));
    }
    Ok(SignInput {
        key_id,
        message,
        is_digest,
        alg,
    })
}

fn ensure_signing_algorithm(rec: &KeyRecord, alg: &str) -> Result<(), AwsError> {
    if !rec.key_spec.signing_algorithms().contains(&alg) {
        return Err(AwsError::new(
            AwsErrorCode::InvalidKeyUsageException,
            format!(
                "Algorithm {alg} is incompatible with key spec {}.",
                rec.key_spec.as_str()
            ),
        ));
    }
    Ok(())
}

fn ensure_mac_algorithm(rec: &KeyRecord, alg: &str) -> Result<(), AwsError> {
    if !rec.key_spec.mac_algorithms().contains(&alg) {
        return Err(AwsError::new(
            AwsErrorCode::InvalidKeyUsageException,
            format!(
                "Algorithm {alg} is incompatible with key spec {}.",
                rec.key_spec.as_str()
            ),
        ));
    }
    Ok(())
}

fn mac_input(input: &Input) -> Result<(String, coffer_crypto::SecretBytes, String), AwsError> {
    let key_id = input.key_id("KeyId")?;
    let message = input.req_blob("Message", 1, 4096)?;
    let alg = input.req_string("MacAlgorithm")?;
    check_enum(&alg, ALL_MAC_ALGORITHMS, "MacAlgorithm")?;
    if let Some(t) = input.string_list("GrantTokens")? {
        check_len(t.len(), 0, 10, "GrantTokens")?;
    }
    Ok((key_id, message, alg))
}

impl KmsEngine {
    async fn signing_key(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        alg: &str,
        op: &str,
    ) -> Result<KeyRecord, AwsError> {
        let rec = self.resolve(ctx, key_id, true).await?;
        ensure_usage(&rec, KeyUsage::SignVerify, op)?;
        ensure_usable(&rec)?;
        ensure_signing_algorithm(&rec, alg)?;
        Ok(rec)
    }

    pub(crate) async fn sign(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let s = sign_input(input)?;
        let rec = self.signing_key(ctx, &s.key_id, &s.alg, "Sign").await?;
        dry_run(input)?;
        let material = self.load_material(&rec, rec.current_version()).await?;
        let sig = crypto::sign(rec.key_spec, material.expose(), &s.alg, s.message.expose(), s.is_digest)?;
        Ok(json!({ "KeyId": rec.arn, "Signature": b64(&sig), "SigningAlgorithm": s.alg }))
    }

    pub(crate) async fn verify(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let s = sign_input(input)?;
        let signature = input.req_blob("Signature", 1, 6144)?;
        let rec = self.signing_key(ctx, &s.key_id, &s.alg, "Verify").await?;
        dry_run(input)?;
        let material = self.load_material(&rec, rec.current_version()).await?;
        let public = crypto::public_key_der(rec.key_spec, material.expose())?;
        if !crypto::verify(
            rec.key_spec,
            &public,
            &s.alg,
            s.message.expose(),
            s.is_digest,
            signature.expose(),
        )? {
            return Err(AwsError::new(AwsErrorCode::KMSInvalidSignatureException, ""));
        }
        Ok(json!({ "KeyId": rec.arn, "SignatureValid": true, "SigningAlgorithm": s.alg }))
    }

    async fn mac_key(&self, ctx: &RequestContext, key_id: &str, alg: &str, op: &str) -> Result<KeyRecord, AwsError> {
        let rec = self.resolve(ctx, key_id, true).await?;
        ensure_usage(&rec, KeyUsage::GenerateVerifyMac, op)?;
        ensure_usable(&rec)?;
        ensure_mac_algorithm(&rec, alg)?;
        Ok(rec)
    }

    pub(crate) async fn generate_mac(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let (key_id, message, alg) = mac_input(input)?;
        let rec = self.mac_key(ctx, &key_id, &alg, "GenerateMac").await?;
        dry_run(input)?;
        let material = self.load_material(&rec, rec.current_version()).await?;
        let mac = crypto::mac(&alg, material.expose(), message.expose())?;
        Ok(json!({ "Mac": b64(&mac), "MacAlgorithm": alg, "KeyId": rec.arn }))
    }

    pub(crate) async fn verify_mac(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let (key_id, message, alg) = mac_input(input)?;
        let mac = required(input.blob("Mac")?, "Mac")?;
        check_len(mac.len(), 1, 6144, "Mac")?;
        let rec = self.mac_key(ctx, &key_id, &alg, "VerifyMac").await?;
        dry_run(input)?;
        let material = self.load_material(&rec, rec.current_version()).await?;
        if !crypto::verify_mac(&alg, material.expose(), message.expose(), mac.expose())? {
            return Err(AwsError::new(AwsErrorCode::KMSInvalidMacException, ""));
        }
        Ok(json!({ "KeyId": rec.arn, "MacValid": true, "MacAlgorithm": alg }))
    }

    pub(crate) async fn get_public_key(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let key_id = input.key_id("KeyId")?;
        let rec = self.resolve(ctx, &key_id, true).await?;
        if !(rec.key_spec.is_rsa() || rec.key_spec.is_ecc()) {
            return Err(AwsError::new(
                AwsErrorCode::UnsupportedOperationException,
                format!("{} is not an asymmetric KMS key; it has no public key.", rec.arn),
            ));
        }
        ensure_usable(&rec)?;
        let material = self.load_material(&rec, rec.current_version()).await?;
        let public = crypto::public_key_der(rec.key_spec, material.expose())?;
        let mut out = serde_json::Map::new();
        out.insert("KeyId".into(), json!(rec.arn));
        out.insert("PublicKey".into(), b64(&public));
        out.insert("CustomerMasterKeySpec".into(), json!(rec.key_spec.as_str()));
        out.insert("KeySpec".into(), json!(rec.key_spec.as_str()));
        out.insert("KeyUsage".into(), json!(rec.key_usage.as_str()));
        match rec.key_usage {
            KeyUsage::EncryptDecrypt => {
                out.insert(
                    "EncryptionAlgorithms".into(),
                    json!(rec.key_spec.encryption_algorithms()),
                );
            }
            _ => {
                out.insert("SigningAlgorithms".into(), json!(rec.key_spec.signing_algorithms()));
            }
        }
        Ok(Value::Object(out))
    }
}
