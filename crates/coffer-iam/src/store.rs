//! Storage access: per-account write locks, record loading, and the commit.
//!
//! Every change is one atomic `batch` (both sides of a relation together: user and group,
//! entity and policy, user and access key), so the batch is the commit point: a failed batch
//! leaves everything as it was. Every commit, failed or not, invalidates the access-key
//! cache (it is cleared and its generation bumped).

use std::sync::atomic::Ordering;

use coffer_engines::AwsError;
use coffer_storage::Write;
use tokio::sync::MutexGuard;

use crate::IamEngine;
use crate::errors;
use crate::model::{self, AccessKeyRecord, AccountRecord, EntityKind, EntityRecord, PolicyRecord, SessionRecord};

/// How many write locks accounts are spread over.
pub(crate) const LOCK_STRIPES: usize = 16;

impl IamEngine {
    /// The write lock of one account's identities.
    pub(crate) async fn lock(&self, account: &str) -> MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        account.hash(&mut h);
        let i = usize::try_from(h.finish() % LOCK_STRIPES as u64).unwrap_or(0);
        self.locks[i % self.locks.len()].lock().await
    }

    /// Applies `writes` atomically and invalidates the key cache.
    pub(crate) async fn commit(&self, writes: Vec<Write>) -> Result<(), AwsError> {
        let result = self.storage.batch(writes).await.map_err(errors::storage);
        self.invalidate_cache();
        result
    }

    /// A counter bumped by every write: callers caching derived data (compiled policies)
    /// key it by this to notice changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// Forgets every cached access key (also on seal and reset).
    pub fn invalidate_cache(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.key_cache.write().clear();
    }

    pub(crate) async fn get_record<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
        what: &str,
    ) -> Result<Option<T>, AwsError> {
        match self.storage.get(key).await.map_err(errors::storage)? {
            Some(b) => model::from_bytes(&b, what).map(Some),
            None => Ok(None),
        }
    }

    pub(crate) async fn load_entity(
        &self,
        account: &str,
        kind: EntityKind,
        name: &str,
    ) -> Result<Option<EntityRecord>, AwsError> {
        if name.is_empty() || name.contains('/') {
            return Ok(None);
        }
        self.get_record(&model::entity_key(account, kind, name), kind.word())
            .await
    }

    /// The entity or `NoSuchEntity`.
    pub(crate) async fn entity_required(
        &self,
        account: &str,
        kind: EntityKind,
        name: &str,
    ) -> Result<EntityRecord, AwsError> {
        self.load_entity(account, kind, name)
            .await?
            .ok_or_else(|| kind.not_found(name))
    }

    /// Every entity of a kind in an account, sorted by (lower-cased) name.
    pub(crate) async fn all_entities(&self, account: &str, kind: EntityKind) -> Result<Vec<EntityRecord>, AwsError> {
        let dir = model::entity_dir(account, kind);
        let names = self.storage.list(&dir).await.map_err(errors::storage)?;
        let mut out = Vec::with_capacity(names.len());
        for n in names.iter().filter(|n| !n.ends_with('/')) {
            if let Some(rec) = self
                .get_record::<EntityRecord>(&format!("{dir}{n}"), kind.word())
                .await?
            {
                out.push(rec);
            }
        }
        Ok(out)
    }

    pub(crate) fn entity_write(rec: &EntityRecord, account: &str) -> Result<Write, AwsError> {
        Ok(Write::put(
            model::entity_key(account, rec.kind, &rec.name),
            model::to_bytes(rec)?,
        ))
    }

    pub(crate) async fn load_account(&self, account: &str) -> Result<Option<AccountRecord>, AwsError> {
        self.get_record(&model::account_key(account), "account").await
    }

    pub(crate) async fn load_access_key(&self, akid: &str) -> Result<Option<AccessKeyRecord>, AwsError> {
        if akid.is_empty() || akid.contains('/') {
            return Ok(None);
        }
        self.get_record(&model::access_key_key(akid), "access key").await
    }

    pub(crate) async fn load_session(&self, akid: &str) -> Result<Option<SessionRecord>, AwsError> {
        if akid.is_empty() || akid.contains('/') {
            return Ok(None);
        }
        self.get_record(&model::session_key(akid), "session").await
    }

    pub(crate) async fn load_local_policy(&self, account: &str, name: &str) -> Result<Option<PolicyRecord>, AwsError> {
        self.get_record(&model::local_policy_key(account, name), "policy").await
    }

    pub(crate) fn policy_write(rec: &PolicyRecord, account: &str) -> Result<Write, AwsError> {
        let key = if rec.aws_managed {
            model::aws_policy_key(account, &rec.name)
        } else {
            model::local_policy_key(account, &rec.name)
        };
        Ok(Write::put(key, model::to_bytes(rec)?))
    }
}
