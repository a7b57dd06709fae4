//! The [`KeyService`] implementation other engines use: the same code paths (and errors) as
//! the KMS API's GenerateDataKey, Encrypt and Decrypt.

use async_trait::async_trait;
use coffer_engines::contracts::{DataKey, Decrypted, EncryptionContext, KeyService};
use coffer_engines::{AwsError, RequestContext};

use crate::KmsEngine;
use crate::input::check_len;
use crate::spec::KeySpec;
use crate::store::{ensure_usable, ensure_usage};

#[async_trait]
impl KeyService for KmsEngine {
    async fn resolve_key_arn(&self, ctx: &RequestContext, key_id: &str) -> Result<String, AwsError> {
        Ok(self.resolve(ctx, key_id, true).await?.arn)
    }

    async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<DataKey, AwsError> {
        let rec = self.resolve(ctx, key_id, true).await?;
        ensure_usage(&rec, crate::spec::KeyUsage::EncryptDecrypt, "GenerateDataKey")?;
        ensure_usable(&rec)?;
        if rec.key_spec != KeySpec::SymmetricDefault {
            return Err(AwsError::new(
                coffer_engines::AwsErrorCode::InvalidKeyUsageException,
                format!(
                    "{} is not a symmetric encryption KMS key; GenerateDataKey requires one.",
                    rec.arn
                ),
            ));
        }
        let (plaintext, ciphertext_blob) = self.new_data_key(&rec, 32, context).await?;
        Ok(DataKey {
            plaintext,
            ciphertext_blob,
            key_arn: rec.arn,
        })
    }

    async fn encrypt(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<(Vec<u8>, String), AwsError> {
        check_len(plaintext.len(), 1, 4096, "Plaintext")?;
        let rec = self.resolve(ctx, key_id, true).await?;
        let ct = self.encrypt_with(&rec, "SYMMETRIC_DEFAULT", plaintext, context).await?;
        Ok((ct, rec.arn))
    }

    async fn decrypt(
        &self,
        ctx: &RequestContext,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted, AwsError> {
        let (rec, plaintext, _) = self
            .open(ctx, ciphertext_blob, context, None, "SYMMETRIC_DEFAULT")
            .await?;
        Ok(Decrypted {
            plaintext,
            key_arn: rec.arn,
        })
    }
}
