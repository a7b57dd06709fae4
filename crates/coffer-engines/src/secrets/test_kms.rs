//! A [`KeyService`] for tests: real AES-256-GCM under per-key material, key states (enabled,
//! disabled, pending deletion), aliases, and a record of every call. It mimics KMS's error
//! codes and messages; it is not the KMS engine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use coffer_crypto::SecretBytes;
use coffer_crypto::aead::{self, Key256};

use crate::contracts::{DataKey, Decrypted, EncryptionContext, KeyService};
use crate::{AwsError, AwsErrorCode, RequestContext};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyState {
    Enabled,
    Disabled,
    PendingDeletion,
}

struct Key {
    material: Key256,
    state: KeyState,
}

/// One call the engine made.
#[derive(Clone, Debug)]
pub(crate) struct Call {
    pub op: &'static str,
    pub key_arn: String,
    pub context: EncryptionContext,
}

#[derive(Default)]
struct Inner {
    keys: BTreeMap<String, Key>,
    /// Alias ARN → key ARN.
    aliases: BTreeMap<String, String>,
    calls: Vec<Call>,
}

pub(crate) struct TestKms {
    inner: Mutex<Inner>,
    /// Alias names created on first use in any region, like `alias/aws/secretsmanager`.
    auto_aliases: Vec<String>,
}

fn not_found(msg: String) -> AwsError {
    AwsError::new(AwsErrorCode::NotFoundException, msg)
}

fn context_aad(c: &EncryptionContext) -> Vec<u8> {
    serde_json::to_vec(c).unwrap()
}

impl TestKms {
    pub(crate) fn new() -> Self {
        Self::with_auto_aliases(&[])
    }

    /// Also creates these aliases (and a key for each) on first use, in any region.
    pub(crate) fn with_auto_aliases(names: &[&str]) -> Self {
        let mut auto_aliases = vec!["alias/aws/secretsmanager".to_string()];
        auto_aliases.extend(names.iter().map(|s| s.to_string()));
        Self {
            inner: Mutex::new(Inner::default()),
            auto_aliases,
        }
    }

    fn new_key(inner: &mut Inner, account: &str, region: &str) -> String {
        let arn = format!(
            "arn:aws:kms:{region}:{account}:key/{}",
            coffer_crypto::random::uuid_v4().unwrap()
        );
        inner.keys.insert(
            arn.clone(),
            Key {
                material: Key256::generate().unwrap(),
                state: KeyState::Enabled,
            },
        );
        arn
    }

    /// Creates an enabled key; returns its ARN.
    pub(crate) fn create_key(&self, account: &str, region: &str) -> String {
        Self::new_key(&mut self.inner.lock().unwrap(), account, region)
    }

    pub(crate) fn create_alias(&self, account: &str, region: &str, name: &str, key_arn: &str) {
        self.inner
            .lock()
            .unwrap()
            .aliases
            .insert(format!("arn:aws:kms:{region}:{account}:{name}"), key_arn.to_string());
    }

    pub(crate) fn set_state(&self, key_arn: &str, state: KeyState) {
        self.inner.lock().unwrap().keys.get_mut(key_arn).unwrap().state = state;
    }

    /// The ARN an id names in `region` (following aliases), if any.
    pub(crate) fn arn_of(&self, account: &str, region: &str, key_id: &str) -> Option<String> {
        let mut inner = self.inner.lock().unwrap();
        self.resolve(&mut inner, account, region, key_id).ok()
    }

    pub(crate) fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }

    fn resolve(&self, inner: &mut Inner, account: &str, region: &str, key_id: &str) -> Result<String, AwsError> {
        let (alias_arn, alias_name) = if let Some(name) = key_id.strip_prefix("alias/") {
            (
                Some(format!("arn:aws:kms:{region}:{account}:alias/{name}")),
                Some(key_id.to_string()),
            )
        } else if key_id.starts_with("arn:") && key_id.contains(":alias/") {
            let name = key_id.split_once(":alias/").map(|(_, n)| format!("alias/{n}"));
            (Some(key_id.to_string()), name)
        } else {
            (None, None)
        };
        if let Some(alias_arn) = alias_arn {
            if let Some(k) = inner.aliases.get(&alias_arn) {
                return Ok(k.clone());
            }
            if alias_name.is_some_and(|n| self.auto_aliases.contains(&n)) {
                let arn = Self::new_key(inner, account, region);
                inner.aliases.insert(alias_arn, arn.clone());
                return Ok(arn);
            }
            return Err(not_found(format!("Alias {alias_arn} is not found.")));
        }
        let arn = if key_id.starts_with("arn:") {
            key_id.to_string()
        } else {
            format!("arn:aws:kms:{region}:{account}:key/{key_id}")
        };
        if inner.keys.contains_key(&arn) {
            Ok(arn)
        } else {
            Err(not_found(format!("Key '{arn}' does not exist")))
        }
    }

    fn usable<'a>(inner: &'a Inner, arn: &str) -> Result<&'a Key, AwsError> {
        let key = inner
            .keys
            .get(arn)
            .ok_or_else(|| not_found(format!("Key '{arn}' does not exist")))?;
        match key.state {
            KeyState::Enabled => Ok(key),
            KeyState::Disabled => Err(AwsError::new(
                AwsErrorCode::DisabledException,
                format!("{arn} is disabled."),
            )),
            KeyState::PendingDeletion => Err(AwsError::new(
                AwsErrorCode::KMSInvalidStateException,
                format!("{arn} is pending deletion."),
            )),
        }
    }

    fn wrap(key: &Key, arn: &str, plaintext: &[u8], context: &EncryptionContext) -> Vec<u8> {
        let mut blob = Vec::new();
        blob.extend_from_slice(&u16::try_from(arn.len()).unwrap().to_be_bytes());
        blob.extend_from_slice(arn.as_bytes());
        blob.extend_from_slice(&aead::seal(&key.material, &context_aad(context), plaintext).unwrap());
        blob
    }

    fn encrypt_under(
        &self,
        ctx: &RequestContext,
        op: &'static str,
        key_id: &str,
        plaintext: &[u8],
        context: &EncryptionContext,
    ) -> Result<(Vec<u8>, String), AwsError> {
        let mut inner = self.inner.lock().unwrap();
        let arn = self.resolve(&mut inner, &ctx.account_id, &ctx.region, key_id)?;
        inner.calls.push(Call {
            op,
            key_arn: arn.clone(),
            context: context.clone(),
        });
        let key = Self::usable(&inner, &arn)?;
        Ok((Self::wrap(key, &arn, plaintext, context), arn))
    }
}

#[async_trait]
impl KeyService for TestKms {
    async fn resolve_key_arn(&self, ctx: &RequestContext, key_id: &str) -> Result<String, AwsError> {
        let mut inner = self.inner.lock().unwrap();
        self.resolve(&mut inner, &ctx.account_id, &ctx.region, key_id)
    }

    async fn generate_data_key(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        context: &EncryptionContext,
    ) -> Result<DataKey, AwsError> {
        let plaintext = coffer_crypto::random::secret_bytes(32).unwrap();
        let (ciphertext_blob, key_arn) =
            self.encrypt_under(ctx, "GenerateDataKey", key_id, plaintext.expose(), context)?;
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
        self.encrypt_under(ctx, "Encrypt", key_id, plaintext, context)
    }

    async fn decrypt(
        &self,
        _ctx: &RequestContext,
        ciphertext_blob: &[u8],
        context: &EncryptionContext,
    ) -> Result<Decrypted, AwsError> {
        let invalid = || AwsError::new(AwsErrorCode::InvalidCiphertextException, "");
        let mut inner = self.inner.lock().unwrap();
        let (len, rest) = ciphertext_blob.split_at_checked(2).ok_or_else(invalid)?;
        let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let (arn, sealed) = rest.split_at_checked(len).ok_or_else(invalid)?;
        let arn = String::from_utf8(arn.to_vec()).map_err(|_| invalid())?;
        inner.calls.push(Call {
            op: "Decrypt",
            key_arn: arn.clone(),
            context: context.clone(),
        });
        let key = Self::usable(&inner, &arn)?;
        let plaintext: SecretBytes = aead::open(&key.material, &context_aad(context), sealed).map_err(|_| invalid())?;
        Ok(Decrypted {
            plaintext,
            key_arn: arn,
        })
    }
}
