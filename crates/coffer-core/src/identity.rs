//! Identities: the principals that can call Coffer, their access keys and their tokens.
//!
//! Access keys (for SigV4) and tokens (for the Vault API) are stored through the barrier
//! under `sys/`. A token is stored under the SHA-256 of its value, never in clear: tokens are
//! 143-bit random strings, so a fast hash is enough and keeps lookups cheap. An access key's
//! secret has to be stored recoverably (SigV4 is an HMAC keyed by it), so it is only ever
//! stored encrypted by the barrier and held in memory in a [`SecretBytes`].

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use coffer_crypto::{SecretBytes, random};
use coffer_storage::DynStorage;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::CoreError;

const ACCESS_KEYS: &str = "access-keys/";
const TOKENS: &str = "tokens/";
const ACCOUNTS: &str = "accounts/";

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The 12-digit account.
    pub account_id: String,
    /// `arn:aws:iam::<account>:root` or `arn:aws:iam::<account>:user/<name>`.
    pub arn: String,
    /// True for the account root (all permissions).
    pub is_root: bool,
}

impl Principal {
    pub fn root(account_id: &str) -> Self {
        Self {
            account_id: account_id.to_string(),
            arn: format!("arn:aws:iam::{account_id}:root"),
            is_root: true,
        }
    }
}

/// An access key as the SigV4 verifier needs it.
pub struct AccessKey {
    pub access_key_id: String,
    pub secret: SecretBytes,
    pub principal: Principal,
}

#[derive(Serialize, Deserialize)]
struct StoredAccessKey {
    account_id: String,
    principal_arn: String,
    is_root: bool,
    /// Base64 of the secret access key. Only ever written through the barrier.
    secret: String,
    status: String,
    created: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredToken {
    account_id: String,
    policies: Vec<String>,
    created: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredAccount {
    account_id: String,
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

/// Access keys, tokens and accounts, over a `sys/` storage view, with a read cache.
pub struct Identities {
    storage: DynStorage,
    keys: RwLock<HashMap<String, Arc<AccessKey>>>,
}

/// Characters of an access key id after its `AKIA` prefix, as AWS uses.
const AKID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

impl Identities {
    pub fn new(storage: DynStorage) -> Self {
        Self {
            storage,
            keys: RwLock::new(HashMap::new()),
        }
    }

    /// Forgets every cached key (on seal and reset).
    pub fn clear_cache(&self) {
        self.keys.write().clear();
    }

    /// A new random access key id (`AKIA` + 16 characters) and 40-character secret.
    pub fn generate_access_key() -> Result<(String, SecretBytes), CoreError> {
        let id = format!("AKIA{}", random::string_from(AKID_ALPHABET, 16)?);
        let secret = random::string_from(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/", 40)?;
        Ok((id, SecretBytes::new(secret.into_bytes())))
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

    pub async fn create_account(&self, account_id: &str, now: i64) -> Result<(), CoreError> {
        let rec = StoredAccount {
            account_id: account_id.to_string(),
            created: now,
        };
        self.put_json(&format!("{ACCOUNTS}{account_id}"), &rec).await
    }

    pub async fn store_access_key(
        &self,
        access_key_id: &str,
        secret: &SecretBytes,
        principal: &Principal,
        now: i64,
    ) -> Result<(), CoreError> {
        let rec = StoredAccessKey {
            account_id: principal.account_id.clone(),
            principal_arn: principal.arn.clone(),
            is_root: principal.is_root,
            secret: base64::engine::general_purpose::STANDARD.encode(secret.expose()),
            status: "Active".into(),
            created: now,
        };
        self.put_json(&format!("{ACCESS_KEYS}{access_key_id}"), &rec).await?;
        self.keys.write().remove(access_key_id);
        Ok(())
    }

    /// Looks up an active access key, from the cache or storage.
    pub async fn access_key(&self, access_key_id: &str) -> Result<Option<Arc<AccessKey>>, CoreError> {
        if let Some(k) = self.keys.read().get(access_key_id) {
            return Ok(Some(k.clone()));
        }
        if access_key_id.is_empty() || access_key_id.contains('/') {
            return Ok(None);
        }
        let Some(raw) = self.storage.get(&format!("{ACCESS_KEYS}{access_key_id}")).await? else {
            return Ok(None);
        };
        let rec: StoredAccessKey =
            serde_json::from_slice(raw.expose()).map_err(|e| CoreError::Internal(format!("access key record: {e}")))?;
        if rec.status != "Active" {
            return Ok(None);
        }
        let secret = base64::engine::general_purpose::STANDARD
            .decode(rec.secret.as_bytes())
            .map_err(|_| CoreError::Internal("access key record: bad secret encoding".into()))?;
        let key = Arc::new(AccessKey {
            access_key_id: access_key_id.to_string(),
            secret: SecretBytes::new(secret),
            principal: Principal {
                account_id: rec.account_id,
                arn: rec.principal_arn,
                is_root: rec.is_root,
            },
        });
        self.keys.write().insert(access_key_id.to_string(), key.clone());
        Ok(Some(key))
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
