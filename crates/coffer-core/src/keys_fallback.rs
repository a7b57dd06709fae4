//! A minimal stand-in for the KMS engine, so the Parameter Store engine runs before KMS is
//! merged. **Replaced by the KMS engine at merge**: the core then hands that engine to
//! `SsmEngine::new` as its [`KeyService`] and this module goes away.
//!
//! [`LocalKeys`] knows only the AWS-managed aliases `alias/aws/ssm` and
//! `alias/aws/secretsmanager`; any other key id is `NotFoundException`. It encrypts with
//! AES-256-GCM under one random 256-bit key that it creates on first use and keeps through
//! the barrier at `sys/local-keys` (so ciphertexts survive restarts). The associated data
//! binds the account, region, alias and encryption context (length-prefixed), so a blob only
//! decrypts with the exact same context, as KMS requires. Keys cannot be disabled here.

use async_trait::async_trait;
use coffer_crypto::SecretBytes;
use coffer_crypto::aead::{self, Key256};
use coffer_engines::contracts::{DataKey, Decrypted, EncryptionContext, KeyService};
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_storage::DynStorage;
use parking_lot::Mutex;

const KEY_PATH: &str = "local-keys";
const MAGIC: &[u8; 4] = b"CLK1";
const ALIASES: &[&str] = &["alias/aws/ssm", "alias/aws/secretsmanager"];

/// The temporary [`KeyService`] (see the module docs).
pub struct LocalKeys {
    /// The core's `sys/` view of the barrier.
    storage: DynStorage,
    key: Mutex<Option<Key256>>,
    init: tokio::sync::Mutex<()>,
}

fn not_found(ctx: &RequestContext, key_id: &str) -> AwsError {
    AwsError::new(
        AwsErrorCode::NotFoundException,
        format!(
            "Key '{}' does not exist",
            if key_id.starts_with("arn:") {
                key_id.to_string()
            } else {
                format!("arn:aws:kms:{}:{}:{key_id}", ctx.region, ctx.account_id)
            }
        ),
    )
}

/// The alias a key id names, if it is one of the two this stand-in knows.
fn alias_of(key_id: &str) -> Option<&'static str> {
    let name = match key_id.strip_prefix("arn:") {
        Some(rest) => rest.splitn(6, ':').nth(5)?,
        None => key_id,
    };
    ALIASES.iter().copied().find(|a| *a == name)
}

fn key_arn(ctx: &RequestContext, alias: &str) -> String {
    format!("arn:aws:kms:{}:{}:{alias}", ctx.region, ctx.account_id)
}

fn push_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&u32::try_from(field.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(field);
}

/// Length-prefixed associated data: account, region, alias, then the sorted context.
fn aad(ctx: &RequestContext, alias: &str, context: &EncryptionContext) -> Vec<u8> {
    let mut out = Vec::new();
    push_field(&mut out, ctx.account_id.as_bytes());
    push_field(&mut out, ctx.region.as_bytes());
    push_field(&mut out, alias.as_bytes());
    for (k, v) in context {
        push_field(&mut out, k.as_bytes());
        push_field(&mut out, v.as_bytes());
    }
    out
}

impl LocalKeys {
    pub fn new(storage: DynStorage) -> Self {
        Self {
            storage,
            key: Mutex::new(None),
            init: tokio::sync::Mutex::new(()),
        }
    }

    /// The wrapping key: loaded from the barrier, or created and stored on first use.
    async fn key(&self) -> Result<Key256, AwsError> {
        if let Some(k) = self.key.lock().as_ref() {
            return Key256::from_bytes(k.expose()).map_err(|_| AwsError::internal("bad local key"));
        }
        let _guard = self.init.lock().await;
        let stored = self.storage.get(KEY_PATH).await?;
        let key = match stored {
            Some(b) => Key256::from_bytes(b.expose()).map_err(|_| AwsError::internal("stored local key is corrupt"))?,
            None => {
                let k = Key256::generate().map_err(|_| AwsError::internal("cannot generate a key"))?;
                self.storage.put(KEY_PATH, SecretBytes::from_slice(k.expose())).await?;
                k
            }
        };
        let copy = Key256::from_bytes(key.expose()).map_err(|_| AwsError::internal("bad local key"))?;
        *self.key.lock() = Some(copy);
        Ok(key)
    }

    /// Forgets the cached key (after a seal, the barrier may hold another one after reset).
    pub fn forget(&self) {
        *self.key.lock() = None;
    }

    async fn seal(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<(Vec<u8>, String), AwsError> {
        let alias = alias_of(key_id).ok_or_else(|| not_found(ctx, key_id))?;
        let key = self.key().await?;
        let sealed = aead::seal(&key, &aad(ctx, alias, context), plaintext)
            .map_err(|_| AwsError::internal("encryption failed"))?;
        let mut blob = Vec::with_capacity(MAGIC.len() + 1 + alias.len() + sealed.len());
        blob.extend_from_slice(MAGIC);
        blob.push(u8::try_from(alias.len()).unwrap_or(0));
        blob.extend_from_slice(alias.as_bytes());
        blob.extend_from_slice(&sealed);
        Ok((blob, key_arn(ctx, alias)))
    }
}

#[async_trait]
impl KeyService for LocalKeys {
    async fn resolve_key_arn(&self, ctx: &RequestContext, key_id: &str) -> Result<String, AwsError> {
        let alias = alias_of(key_id).ok_or_else(|| not_found(ctx, key_id))?;
        Ok(key_arn(ctx, alias))
    }

    async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<DataKey, AwsError> {
        let plaintext = coffer_crypto::random::secret_bytes(32).map_err(|_| AwsError::internal("no randomness"))?;
        let (ciphertext_blob, key_arn) = self.seal(ctx, key_id, plaintext.expose(), context).await?;
        Ok(DataKey {
            plaintext,
            ciphertext_blob,
            key_arn,
        })
    }

    async fn encrypt(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<(Vec<u8>, String), AwsError> {
        if plaintext.is_empty() || plaintext.len() > 4096 {
            return Err(AwsError::validation("Plaintext must be 1 to 4096 bytes."));
        }
        self.seal(ctx, key_id, plaintext, context).await
    }

    async fn decrypt(
        &self,
        ctx: &RequestContext,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted, AwsError> {
        let invalid = || AwsError::new(AwsErrorCode::InvalidCiphertextException, "");
        let rest = ciphertext_blob.strip_prefix(MAGIC.as_slice()).ok_or_else(invalid)?;
        let (len, rest) = rest.split_first().ok_or_else(invalid)?;
        let alias_bytes = rest.get(..usize::from(*len)).ok_or_else(invalid)?;
        let sealed = rest.get(usize::from(*len)..).ok_or_else(invalid)?;
        let alias = std::str::from_utf8(alias_bytes)
            .ok()
            .and_then(alias_of)
            .ok_or_else(invalid)?;
        let key = self.key().await?;
        let plaintext = aead::open(&key, &aad(ctx, alias, context), sealed).map_err(|_| invalid())?;
        Ok(Decrypted {
            plaintext,
            key_arn: key_arn(ctx, alias),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::Arc;

    use coffer_storage::memory::MemoryStorage;
    use time::OffsetDateTime;

    use super::*;

    fn ctx() -> RequestContext {
        RequestContext {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            principal_arn: "p".into(),
            now: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[tokio::test]
    async fn round_trip_context_and_persistence() {
        let storage: DynStorage = Arc::new(MemoryStorage::new());
        let keys = LocalKeys::new(storage.clone());
        let mut ec = EncryptionContext::new();
        ec.insert("PARAMETER_ARN".into(), "a".into());
        let (blob, arn) = keys.encrypt(&ctx(), "alias/aws/ssm", b"hello", &ec).await.unwrap();
        assert_eq!(arn, "arn:aws:kms:us-east-1:123456789012:alias/aws/ssm");
        // A fresh instance over the same storage reads the persisted key.
        let again = LocalKeys::new(storage);
        assert_eq!(
            again.decrypt(&ctx(), &blob, &ec).await.unwrap().plaintext.expose(),
            b"hello"
        );
        let mut other = ec.clone();
        other.insert("PARAMETER_ARN".into(), "b".into());
        assert_eq!(
            again.decrypt(&ctx(), &blob, &other).await.err().unwrap().code,
            AwsErrorCode::InvalidCiphertextException
        );
        assert_eq!(
            keys.encrypt(&ctx(), "alias/custom", b"x", &ec)
                .await
                .err()
                .unwrap()
                .code,
            AwsErrorCode::NotFoundException
        );
    }
}
