//! Vault tokens (access keys, accounts and principals live in `coffer-iam`).
//!
//! Access keys (for SigV4) and tokens (for the Vault API) are stored through the barrier
//! under `sys/`. A token is stored under the SHA-256 of its value, never in clear: tokens are
//! 143-bit random strings, so a fast hash is enough and keeps lookups cheap. An access key's
//! secret has to be stored recoverably (SigV4 is an HMAC keyed by it), so it is only ever
//! stored encrypted by the barrier and held in memory in a [`SecretBytes`].

use base64::Engine as _;
use coffer_crypto::{SecretBytes, random};
use coffer_storage::DynStorage;
use serde::{Deserialize, Serialize};

use crate::CoreError;

const ACCESS_KEYS: &str = "access-keys/";
const TOKENS: &str = "tokens/";

/// A root access key record written before IAM existed (`sys/access-keys/<AKID>`); read
/// once at unseal to move it into the IAM engine, then deleted.
#[derive(Serialize, Deserialize)]
struct StoredAccessKey {
    account_id: String,
    is_root: bool,
    /// Base64 of the secret access key. Only ever written through the barrier.
    secret: String,
}

/// A legacy root key to migrate: `(access key id, account id, secret)`.
pub(crate) type LegacyRootKey = (String, String, SecretBytes);

#[derive(Serialize, Deserialize)]
struct StoredToken {
    account_id: String,
    policies: Vec<String>,
    created: i64,
}

/// A token's resolved identity.
#[derive(Clone, Debug)]
pub struct TokenEntry {
    pub account_id: String,
    pub policies: Vec<String>,
}

impl TokenEntry {
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }
}

/// Vault tokens over a `sys/` storage view (access keys and accounts live in the IAM engine).
pub struct Identities {
    storage: DynStorage,
}

const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Identities {
    pub fn new(storage: DynStorage) -> Self {
        Self { storage }
    }

    /// A new random token, `hvs.` + 24 base62 characters.
    pub fn generate_token() -> Result<String, CoreError> {
        Ok(format!("hvs.{}", random::string_from(BASE62, 24)?))
    }

    /// A new random 12-digit account id that does not start with 0.
    pub fn generate_account_id() -> Result<String, CoreError> {
        let first = random::string_from(b"123456789", 1)?;
        Ok(format!("{first}{}", random::string_from(b"0123456789", 11)?))
    }

    /// Root access keys stored by earlier versions, for migration into the IAM engine.
    pub(crate) async fn legacy_root_keys(&self) -> Result<Vec<LegacyRootKey>, CoreError> {
        let mut out = Vec::new();
        for key in self.storage.scan(ACCESS_KEYS, None, 10_000).await? {
            let Some(raw) = self.storage.get(&key).await? else {
                continue;
            };
            let rec: StoredAccessKey = serde_json::from_slice(raw.expose())
                .map_err(|e| CoreError::Internal(format!("access key record: {e}")))?;
            if !rec.is_root {
                continue;
            }
            let secret = base64::engine::general_purpose::STANDARD
                .decode(rec.secret.as_bytes())
                .map_err(|_| CoreError::Internal("access key record: bad secret encoding".into()))?;
            let akid = key.strip_prefix(ACCESS_KEYS).unwrap_or(&key).to_string();
            out.push((akid, rec.account_id, SecretBytes::new(secret)));
        }
        Ok(out)
    }

    /// Deletes a migrated legacy access key record.
    pub(crate) async fn delete_legacy_key(&self, access_key_id: &str) -> Result<(), CoreError> {
        self.storage.delete(&format!("{ACCESS_KEYS}{access_key_id}")).await?;
        Ok(())
    }

    pub async fn store_token(&self, token: &str, entry: &TokenEntry, now: i64) -> Result<(), CoreError> {
        let rec = StoredToken {
            account_id: entry.account_id.clone(),
            policies: entry.policies.clone(),
            created: now,
        };
        self.put_json(&token_key(token), &rec).await
    }

    pub async fn token(&self, token: &str) -> Result<Option<TokenEntry>, CoreError> {
        let Some(raw) = self.storage.get(&token_key(token)).await? else {
            return Ok(None);
        };
        let rec: StoredToken =
            serde_json::from_slice(raw.expose()).map_err(|e| CoreError::Internal(format!("token record: {e}")))?;
        Ok(Some(TokenEntry {
            account_id: rec.account_id,
            policies: rec.policies,
        }))
    }

    async fn put_json<T: Serialize>(&self, key: &str, value: &T) -> Result<(), CoreError> {
        let bytes = serde_json::to_vec(value).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.storage.put(key, SecretBytes::new(bytes)).await?;
        Ok(())
    }
}

fn token_key(token: &str) -> String {
    format!("{TOKENS}{}", coffer_crypto::hash::sha256_hex(token.as_bytes()))
}
