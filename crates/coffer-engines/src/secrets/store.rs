//! Storage access for the engine: loading records and values, resolving a `SecretId`,
//! per-secret write locks, and the commit protocol.
//!
//! Commit protocol: new version values are written first (one batch); the metadata records
//! (the secret's own and its replicas') follow in a second batch, which is the commit point,
//! together with the deletion of pruned versions. A failure before the second batch leaves
//! only unreferenced values behind; the secret is unchanged.

use coffer_crypto::SecretBytes;
use coffer_storage::Write;
use tokio::sync::MutexGuard;

use crate::secrets::SecretsEngine;
use crate::secrets::model::{REPLICA_IN_SYNC, ReplicaRecord, SecretRecord, SecretValue};
use crate::secrets::names::{self, SecretRef};
use crate::{AwsError, RequestContext};

pub(crate) const SECRET_NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";
pub(crate) const MARKED_FOR_DELETION: &str =
    "You can't perform this operation on the secret because it was marked for deletion.";
pub(crate) const REPLICA_READ_ONLY: &str =
    "Operation not permitted on a replica secret. Call must be made in primary secret's region.";

/// How many write locks secrets are spread over.
pub(crate) const LOCK_STRIPES: usize = 64;

impl SecretsEngine {
    pub(crate) async fn load(&self, account: &str, region: &str, name: &str) -> Result<Option<SecretRecord>, AwsError> {
        match self.storage.get(&names::meta_key(account, region, name)).await? {
            Some(b) => SecretRecord::from_bytes(&b).map(Some),
            None => Ok(None),
        }
    }

    /// Finds the secret a `SecretId` names (name, full ARN or partial ARN, §2.3), or `None`.
    pub(crate) async fn find(&self, ctx: &RequestContext, secret_id: &str) -> Result<Option<SecretRecord>, AwsError> {
        let (acct, region) = (ctx.account_id.as_str(), ctx.region.as_str());
        match names::parse_secret_id(ctx, secret_id)? {
            SecretRef::Foreign => Ok(None),
            SecretRef::Name(name) => self.load(acct, region, &name).await,
            SecretRef::Arn(resource) => {
                if let Some((name, suffix)) = names::split_suffix(&resource)
                    && let Some(rec) = self.load(acct, region, name).await?
                    && names::arn_suffix(&rec.arn) == suffix
                {
                    return Ok(Some(rec));
                }
                // A partial ARN: the resource part is the whole name.
                if !names::has_valid_name_chars(&resource) {
                    return Ok(None);
                }
                self.load(acct, region, &resource).await
            }
        }
    }

    /// Like [`find`](Self::find) but `ResourceNotFoundException` when absent.
    pub(crate) async fn find_required(&self, ctx: &RequestContext, secret_id: &str) -> Result<SecretRecord, AwsError> {
        self.find(ctx, secret_id)
            .await?
            .ok_or_else(|| AwsError::not_found(SECRET_NOT_FOUND))
    }

    /// The write lock for one secret name of one account (all regions: a primary and its
    /// replicas share it).
    pub(crate) async fn lock(&self, account: &str, name: &str) -> MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        account.hash(&mut h);
        name.hash(&mut h);
        let i = usize::try_from(h.finish() % LOCK_STRIPES as u64).unwrap_or(0);
        self.locks[i].lock().await
    }

    /// Resolves `secret_id`, takes the secret's write lock and re-reads the record under it.
    pub(crate) async fn lock_secret(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
    ) -> Result<(MutexGuard<'_, ()>, SecretRecord), AwsError> {
        for _ in 0..3 {
            let first = self.find_required(ctx, secret_id).await?;
            let guard = self.lock(&ctx.account_id, &first.name).await;
            let again = self.find_required(ctx, secret_id).await?;
            if again.name == first.name {
                return Ok((guard, again));
            }
        }
        Err(AwsError::internal("the secret changed concurrently; retry the request"))
    }

    /// Loads the value of one version of `rec` (in `rec`'s own region).
    pub(crate) async fn load_value(
        &self,
        rec: &SecretRecord,
        version_id: &str,
    ) -> Result<Option<SecretValue>, AwsError> {
        let key = names::version_key(&rec.account, &rec.region, &rec.name, version_id);
        match self.storage.get(&key).await? {
            Some(b) => SecretValue::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    /// Regions that receive copies of the primary's writes.
    fn synced_replicas(rec: &SecretRecord) -> Vec<&ReplicaRecord> {
        rec.replicas.iter().filter(|r| r.status == REPLICA_IN_SYNC).collect()
    }

    /// Commits a change to a (primary or standalone) secret: writes `new_values`, then the
    /// record and its in-sync replicas' records, then drops `removed_versions`.
    pub(crate) async fn commit(
        &self,
        rec: &SecretRecord,
        new_values: &[(String, SecretBytes)],
        removed_versions: &[String],
    ) -> Result<(), AwsError> {
        self.commit_with(rec, new_values, removed_versions, Vec::new()).await
    }

    /// [`commit`](Self::commit) plus `extra` writes applied in the same commit batch, after
    /// the records (used to drop replica copies atomically with the primary's change).
    pub(crate) async fn commit_with(
        &self,
        rec: &SecretRecord,
        new_values: &[(String, SecretBytes)],
        removed_versions: &[String],
        extra: Vec<Write>,
    ) -> Result<(), AwsError> {
        let replicas = Self::synced_replicas(rec);
        let mut regions: Vec<&str> = vec![rec.region.as_str()];
        regions.extend(replicas.iter().map(|r| r.region.as_str()));

        if !new_values.is_empty() {
            let mut writes = Vec::new();
            for region in &regions {
                for (vid, bytes) in new_values {
                    writes.push(Write::put(
                        names::version_key(&rec.account, region, &rec.name, vid),
                        bytes.clone(),
                    ));
                }
            }
            self.storage.batch(writes).await?;
        }

        let mut writes = vec![Write::put(
            names::meta_key(&rec.account, &rec.region, &rec.name),
            rec.to_bytes()?,
        )];
        for r in &replicas {
            let copy = crate::secrets::replication::derive_replica(rec, r);
            writes.push(Write::put(
                names::meta_key(&rec.account, &r.region, &rec.name),
                copy.to_bytes()?,
            ));
        }
        for region in &regions {
            for vid in removed_versions {
                writes.push(Write::delete(names::version_key(&rec.account, region, &rec.name, vid)));
            }
        }
        writes.extend(extra);
        self.storage.batch(writes).await?;
        Ok(())
    }

    /// Writes only this record (no replica propagation): access-date bookkeeping, replica
    /// promotion.
    pub(crate) async fn write_record(&self, rec: &SecretRecord) -> Result<(), AwsError> {
        self.storage
            .put(&names::meta_key(&rec.account, &rec.region, &rec.name), rec.to_bytes()?)
            .await?;
        Ok(())
    }

    /// Deletes everything stored for one secret in one region, in one batch: the record
    /// first, then its values (and any orphaned value left by an earlier failed write).
    pub(crate) async fn erase(&self, account: &str, region: &str, name: &str) -> Result<(), AwsError> {
        let writes = self.erase_writes(account, region, name, |_| true).await?;
        self.storage.batch(writes).await?;
        Ok(())
    }

    /// The deletes that erase one secret in one region (record first), limited to the keys
    /// `keep_key` accepts.
    pub(crate) async fn erase_writes(
        &self,
        account: &str,
        region: &str,
        name: &str,
        keep_key: impl Fn(&str) -> bool,
    ) -> Result<Vec<Write>, AwsError> {
        let prefix = names::secret_prefix(account, region, name);
        let meta = names::meta_key(account, region, name);
        let mut writes = Vec::new();
        if keep_key(&meta) {
            writes.push(Write::delete(meta.clone()));
        }
        let mut after: Option<String> = None;
        loop {
            let keys = self.storage.scan(&prefix, after.as_deref(), 1000).await?;
            let Some(last) = keys.last().cloned() else { break };
            writes.extend(
                keys.into_iter()
                    .filter(|k| *k != meta && keep_key(k))
                    .map(Write::delete),
            );
            after = Some(last);
        }
        Ok(writes)
    }

    /// Names of all secrets of one region of one account, in storage order.
    pub(crate) async fn names_in_region(&self, account: &str, region: &str) -> Result<Vec<String>, AwsError> {
        let entries = self.storage.list(&names::region_prefix(account, region)).await?;
        Ok(entries
            .iter()
            .filter_map(|e| e.strip_suffix('/'))
            .filter_map(names::unescape)
            .collect())
    }

    /// All records of one region of one account.
    pub(crate) async fn records_in_region(&self, account: &str, region: &str) -> Result<Vec<SecretRecord>, AwsError> {
        let mut out = Vec::new();
        for name in self.names_in_region(account, region).await? {
            if let Some(rec) = self.load(account, region, &name).await? {
                out.push(rec);
            }
        }
        Ok(out)
    }
}

/// Rejects writes to secrets pending deletion.
pub(crate) fn ensure_not_deleted(rec: &SecretRecord) -> Result<(), AwsError> {
    if rec.is_deleted() {
        return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
    }
    Ok(())
}

/// Rejects writes to replicas.
pub(crate) fn ensure_primary(rec: &SecretRecord) -> Result<(), AwsError> {
    if rec.is_replica() {
        return Err(AwsError::invalid_parameter(REPLICA_READ_ONLY));
    }
    Ok(())
}

/// Both checks every write to a secret makes.
pub(crate) fn ensure_writable(rec: &SecretRecord) -> Result<(), AwsError> {
    ensure_primary(rec)?;
    ensure_not_deleted(rec)
}
