//! Storage access for the engine: loading records and values, resolving a `SecretId`,
//! per-secret write locks, and the commit protocol.
//!
//! Commit protocol: one atomic batch per change holds the new version values, the metadata
//! records (the secret's own and its replicas') and the deletion of pruned versions. Either
//! all of it is stored or none: a failed write leaves the secret unchanged and nothing
//! behind. (One batch rather than values first and records second: every durable write costs
//! a commit, and a batch is atomic in every backend.)

use coffer_crypto::SecretBytes;
use coffer_storage::Write;
use tokio::sync::MutexGuard;

use crate::secrets::SecretsEngine;
use crate::secrets::envelope::{self, Binding, Stored, kms_ctx};
use crate::secrets::model::{
    AWSCURRENT, AWSPENDING, AWSPREVIOUS, REPLICA_FAILED, REPLICA_IN_SYNC, ReplicaRecord, SecretHeader, SecretRecord,
    SecretValue,
};
use crate::secrets::names::{self, SecretRef};
use crate::secrets::paging::FirstPage;
use crate::{AwsError, RequestContext};

pub(crate) const SECRET_NOT_FOUND: &str = "Secrets Manager can't find the specified secret.";
pub(crate) const MARKED_FOR_DELETION: &str =
    "You can't perform this operation on the secret because it was marked for deletion.";
pub(crate) const REPLICA_READ_ONLY: &str =
    "Operation not permitted on a replica secret. Call must be made in primary secret's region.";

/// A version value encrypted for one region, ready to be written by a commit.
pub(crate) struct SealedValue {
    pub region: String,
    pub version_id: String,
    pub bytes: SecretBytes,
}

/// Marks a replica `Failed` because its copy could not be encrypted.
pub(crate) fn mark_replica_failed(rec: &mut SecretRecord, region: &str, e: &AwsError) {
    if let Some(r) = rec.replicas.iter_mut().find(|r| r.region == region) {
        r.status = REPLICA_FAILED.to_string();
        r.status_message = Some(format!("Replication failed: {}", e.message));
    }
}

/// How many write locks secrets are spread over.
pub(crate) const LOCK_STRIPES: usize = 64;

impl SecretsEngine {
    pub(crate) async fn load(&self, account: &str, region: &str, name: &str) -> Result<Option<SecretRecord>, AwsError> {
        self.load_as(account, region, name, SecretRecord::from_bytes).await
    }

    /// The record of one secret, decoded by `decode` (the whole record, or a part of it).
    async fn load_as<T>(
        &self,
        account: &str,
        region: &str,
        name: &str,
        decode: fn(&SecretBytes) -> Result<T, AwsError>,
    ) -> Result<Option<T>, AwsError> {
        match self.storage.get(&names::meta_key(account, region, name)).await? {
            Some(b) => decode(&b).map(Some),
            None => Ok(None),
        }
    }

    /// Finds the secret a `SecretId` names (name, full ARN or partial ARN, §2.3), or `None`.
    pub(crate) async fn find(&self, ctx: &RequestContext, secret_id: &str) -> Result<Option<SecretRecord>, AwsError> {
        self.find_as(ctx, secret_id, SecretRecord::from_bytes, |r| &r.arn).await
    }

    /// [`find`](Self::find), decoding the record with `decode`; `arn` reads the ARN of what
    /// it decoded.
    pub(crate) async fn find_as<T>(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        decode: fn(&SecretBytes) -> Result<T, AwsError>,
        arn: fn(&T) -> &str,
    ) -> Result<Option<T>, AwsError> {
        let (acct, region) = (ctx.account_id.as_str(), ctx.region.as_str());
        match names::parse_secret_id(ctx, secret_id)? {
            SecretRef::Foreign => Ok(None),
            SecretRef::Name(name) => self.load_as(acct, region, &name, decode).await,
            SecretRef::Arn(resource) => {
                if let Some((name, suffix)) = names::split_suffix(&resource)
                    && let Some(rec) = self.load_as(acct, region, name, decode).await?
                    && names::arn_suffix(arn(&rec)) == suffix
                {
                    return Ok(Some(rec));
                }
                // A partial ARN: the resource part is the whole name.
                if !names::has_valid_name_chars(&resource) {
                    return Ok(None);
                }
                self.load_as(acct, region, &resource, decode).await
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
            // Only the name picks the lock; the record is decoded once, under it.
            let first = self
                .find_as(ctx, secret_id, SecretHeader::from_bytes, |r| &r.arn)
                .await?
                .ok_or_else(|| AwsError::not_found(SECRET_NOT_FOUND))?;
            let guard = self.lock(&ctx.account_id, &first.name).await;
            let again = self.find_required(ctx, secret_id).await?;
            if again.name == first.name {
                return Ok((guard, again));
            }
        }
        Err(AwsError::internal("the secret changed concurrently; retry the request"))
    }

    /// Loads and, under the record's KMS key, decrypts the value of one version of `rec` (in
    /// `rec`'s own region). `None` if no value is stored.
    pub(crate) async fn load_value(
        &self,
        ctx: &RequestContext,
        rec: &SecretRecord,
        version_id: &str,
    ) -> Result<Option<SecretValue>, AwsError> {
        let Some(stored) = self.load_stored(rec, version_id).await? else {
            return Ok(None);
        };
        self.open_stored(ctx, rec, version_id, &stored).await.map(Some)
    }

    /// The stored form of one version's value, not decrypted.
    pub(crate) async fn load_stored(&self, rec: &SecretRecord, version_id: &str) -> Result<Option<Stored>, AwsError> {
        let key = names::version_key(&rec.account, &rec.region, &rec.name, version_id);
        match self.storage.get(&key).await? {
            Some(b) => Stored::decode(&b).map(Some),
            None => Ok(None),
        }
    }

    /// Decrypts a stored value of `rec`'s version `version_id`.
    pub(crate) async fn open_stored(
        &self,
        ctx: &RequestContext,
        rec: &SecretRecord,
        version_id: &str,
        stored: &Stored,
    ) -> Result<SecretValue, AwsError> {
        match stored {
            Stored::Plain(v) => Ok(v.clone()),
            Stored::Envelope(env) => {
                let Some(keys) = &self.key_service else {
                    return Err(AwsError::internal(
                        "this secret value is encrypted under a KMS key, but no key service is configured",
                    ));
                };
                let binding = Binding {
                    arn: &rec.arn,
                    version_id,
                };
                envelope::open(keys, &kms_ctx(ctx, &rec.account, &rec.region), &binding, env).await
            }
        }
    }

    /// The stored form of `value` for version `version_id` of `target` (a secret's record in
    /// the region it is stored in: its ARN there is the encryption context, its `KmsKeyId` or
    /// the default key of that region encrypts it). Without a key service: the plain format.
    pub(crate) async fn seal_value(
        &self,
        ctx: &RequestContext,
        target: &SecretRecord,
        version_id: &str,
        value: &SecretValue,
    ) -> Result<SecretBytes, AwsError> {
        let Some(keys) = &self.key_service else {
            return Ok(value.encode());
        };
        let binding = Binding {
            arn: &target.arn,
            version_id,
        };
        let env = envelope::seal(
            keys,
            &kms_ctx(ctx, &target.account, &target.region),
            envelope::key_id_or_default(target.kms_key_id.as_deref()),
            &binding,
            value,
        )
        .await?;
        env.encode()
    }

    /// Encrypts new version values for the primary (failing the request with
    /// `EncryptionFailure` if its key is unusable) and for each in-sync replica under the
    /// replica's key; a replica whose key is unusable is marked `Failed` and left out, as
    /// AWS reports a replication failure without failing the primary's write. Records on
    /// each version the key it is encrypted under.
    pub(crate) async fn seal_new_values(
        &self,
        ctx: &RequestContext,
        rec: &mut SecretRecord,
        values: &[(String, SecretValue)],
    ) -> Result<Vec<SealedValue>, AwsError> {
        let mut out = Vec::new();
        for (vid, value) in values {
            let bytes = self.seal_value(ctx, rec, vid, value).await?;
            out.push(SealedValue {
                region: rec.region.clone(),
                version_id: vid.clone(),
                bytes,
            });
            let reported = envelope::reported_key(rec.kms_key_id.as_deref());
            if let Some(v) = rec.versions.get_mut(vid) {
                v.kms_key_ids = vec![reported];
            }
        }
        let replicas: Vec<ReplicaRecord> = Self::synced_replicas(rec).into_iter().cloned().collect();
        for r in replicas {
            match self.seal_for_replica(ctx, rec, &r, values).await {
                Ok(sealed) => out.extend(sealed),
                Err(e) => {
                    tracing::warn!(secret = %rec.arn, region = %r.region, error = %e, "replica value not encrypted; replica marked failed");
                    mark_replica_failed(rec, &r.region, &e);
                }
            }
        }
        Ok(out)
    }

    /// Encrypts `values` for one replica, under the replica's key in the replica's region.
    pub(crate) async fn seal_for_replica(
        &self,
        ctx: &RequestContext,
        rec: &SecretRecord,
        replica: &ReplicaRecord,
        values: &[(String, SecretValue)],
    ) -> Result<Vec<SealedValue>, AwsError> {
        let target = crate::secrets::replication::derive_replica(rec, replica);
        let mut out = Vec::with_capacity(values.len());
        for (vid, value) in values {
            let bytes = self.seal_value(ctx, &target, vid, value).await?;
            out.push(SealedValue {
                region: replica.region.clone(),
                version_id: vid.clone(),
                bytes,
            });
        }
        Ok(out)
    }

    /// UpdateSecret with a new `KmsKeyId`: AWS re-encrypts the versions labelled
    /// `AWSCURRENT`, `AWSPENDING` and `AWSPREVIOUS` under the new key and keeps them encrypted
    /// under the previous key too, so either key decrypts them; a version it cannot decrypt
    /// with the previous key, or encrypt with the new one, is left as it was (Secrets Manager
    /// User Guide, "Change the encryption key for an AWS Secrets Manager secret"; UpdateSecret
    /// `KmsKeyId` in the API reference). Other versions keep only their old key. Returns the
    /// writes of the re-wrapped values (for the commit batch); `skip` are versions written
    /// by this request (already under the new key).
    pub(crate) async fn rewrap_labelled_versions(
        &self,
        ctx: &RequestContext,
        rec: &mut SecretRecord,
        skip: &[(String, SecretValue)],
    ) -> Result<Vec<Write>, AwsError> {
        let Some(keys) = &self.key_service else {
            return Ok(Vec::new());
        };
        let key_id = envelope::key_id_or_default(rec.kms_key_id.as_deref()).to_string();
        let reported = envelope::reported_key(rec.kms_key_id.as_deref());
        let kctx = kms_ctx(ctx, &rec.account, &rec.region);
        let targets: Vec<String> = rec
            .versions
            .iter()
            .filter(|(id, v)| {
                v.has_value
                    && [AWSCURRENT, AWSPENDING, AWSPREVIOUS].iter().any(|s| v.has_stage(s))
                    && !skip.iter().any(|(s, _)| s == *id)
            })
            .map(|(id, _)| id.clone())
            .collect();
        let mut writes = Vec::new();
        for vid in targets {
            let Some(Stored::Envelope(mut env)) = self.load_stored(rec, &vid).await? else {
                continue;
            };
            let binding = Binding {
                arn: &rec.arn,
                version_id: &vid,
            };
            match envelope::rewrap(keys, &kctx, &key_id, &binding, &mut env).await {
                Ok(true) => {
                    writes.push(Write::put(
                        names::version_key(&rec.account, &rec.region, &rec.name, &vid),
                        env.encode()?,
                    ));
                    if let Some(v) = rec.versions.get_mut(&vid) {
                        v.kms_key_ids.retain(|k| *k != reported);
                        v.kms_key_ids.insert(0, reported.clone());
                    }
                }
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(secret = %rec.arn, version = %vid, error = %e, "version not re-encrypted under the new KMS key");
                }
            }
        }
        Ok(writes)
    }

    /// Regions that receive copies of the primary's writes.
    pub(crate) fn synced_replicas(rec: &SecretRecord) -> Vec<&ReplicaRecord> {
        rec.replicas.iter().filter(|r| r.status == REPLICA_IN_SYNC).collect()
    }

    /// Commits a change to a (primary or standalone) secret in one batch: writes `new_values`
    /// (already encrypted for each region, see [`seal_new_values`](Self::seal_new_values)),
    /// the record and its in-sync replicas' records, and drops `removed_versions`.
    pub(crate) async fn commit(
        &self,
        rec: &SecretRecord,
        new_values: &[SealedValue],
        removed_versions: &[String],
    ) -> Result<(), AwsError> {
        self.commit_with(rec, new_values, removed_versions, Vec::new()).await
    }

    /// [`commit`](Self::commit) plus `extra` writes applied in the same commit batch, after
    /// the records (used to drop replica copies atomically with the primary's change).
    pub(crate) async fn commit_with(
        &self,
        rec: &SecretRecord,
        new_values: &[SealedValue],
        removed_versions: &[String],
        extra: Vec<Write>,
    ) -> Result<(), AwsError> {
        let replicas = Self::synced_replicas(rec);
        let mut regions: Vec<&str> = vec![rec.region.as_str()];
        regions.extend(replicas.iter().map(|r| r.region.as_str()));

        let mut writes: Vec<Write> = new_values
            .iter()
            .map(|v| {
                Write::put(
                    names::version_key(&rec.account, &v.region, &rec.name, &v.version_id),
                    v.bytes.clone(),
                )
            })
            .collect();
        writes.push(Write::put(
            names::meta_key(&rec.account, &rec.region, &rec.name),
            rec.to_bytes()?,
        ));
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
    /// first, then its creation-index entry and its values (and any orphaned value left by an
    /// earlier failed write).
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
        // A record that cannot be decoded is still erased; only its index entry stays behind
        // (listings skip entries whose record is gone).
        if let Ok(Some(rec)) = self.load(account, region, name).await {
            let entry = crate::secrets::index::entry_key(&rec);
            if keep_key(&entry) {
                writes.push(Write::delete(entry));
            }
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

    /// A walk over the records of one region of one account (see [`RecordWalk`]).
    pub(crate) fn walk_region(account: &str, region: &str) -> RecordWalk {
        RecordWalk {
            prefix: names::region_prefix(account, region),
            after: None,
            done: false,
        }
    }

    /// One walk per region of every account (for the background jobs).
    pub(crate) async fn walk_everything(&self) -> Result<Vec<RecordWalk>, AwsError> {
        let mut out = Vec::new();
        for account in self.storage.list("").await? {
            let Some(account) = account.strip_suffix('/').and_then(names::unescape) else {
                continue;
            };
            for region in self.storage.list(&format!("{}/", names::escape(&account))).await? {
                let Some(region) = region.strip_suffix('/').and_then(names::unescape) else {
                    continue;
                };
                out.push(Self::walk_region(&account, &region));
            }
        }
        Ok(out)
    }

    /// The next records of `walk` (at least one), or `None` once it has passed them all.
    pub(crate) async fn next_records(&self, walk: &mut RecordWalk) -> Result<Option<Vec<SecretRecord>>, AwsError> {
        self.next_records_where(walk, None).await
    }

    /// [`next_records`](Self::next_records), keeping only the records whose header `wanted`
    /// accepts: the others are decoded no further than their header, which stops before the
    /// version table (the background jobs look at every secret on every pass).
    pub(crate) async fn next_records_where(
        &self,
        walk: &mut RecordWalk,
        wanted: Option<fn(&SecretHeader) -> bool>,
    ) -> Result<Option<Vec<SecretRecord>>, AwsError> {
        while !walk.done {
            let keys = self
                .storage
                .scan(&walk.prefix, walk.after.as_deref(), WALK_PAGE)
                .await?;
            walk.done = keys.len() < WALK_PAGE;
            let mut records = Vec::new();
            for key in keys.iter().filter(|k| walk.is_record_key(k)) {
                // Gone since the scan: deleted meanwhile, not an error.
                let Some(bytes) = self.storage.get(key).await? else {
                    continue;
                };
                if let Some(wanted) = wanted
                    && !wanted(&SecretHeader::from_bytes(&bytes)?)
                {
                    continue;
                }
                records.push(SecretRecord::from_bytes(&bytes)?);
            }
            walk.after = keys.into_iter().last();
            if !records.is_empty() {
                return Ok(Some(records));
            }
        }
        Ok(None)
    }

    /// One page of the records of the caller's region that `keep` accepts, ordered by `key`
    /// (`ascending` or not), after `token`: the ListSecrets and BatchGetSecretValue listings.
    /// Walks every record but holds only a page of them.
    pub(crate) async fn page_of_records(
        &self,
        ctx: &RequestContext,
        keep: impl Fn(&SecretRecord) -> bool,
        key: impl Fn(&SecretRecord) -> String,
        ascending: bool,
        token: Option<&str>,
        max: usize,
    ) -> Result<(Vec<SecretRecord>, Option<String>), AwsError> {
        let mut page = FirstPage::new(ascending, token, max)?;
        let mut walk = Self::walk_region(&ctx.account_id, &ctx.region);
        while let Some(records) = self.next_records(&mut walk).await? {
            for rec in records.into_iter().filter(|r| keep(r)) {
                let k = key(&rec);
                page.offer(k, rec);
            }
        }
        Ok(page.finish())
    }
}

/// How many keys one step of a [`RecordWalk`] reads.
const WALK_PAGE: usize = 2048;

/// A walk over the records of one region of one account in storage order, a page of keys at a
/// time ([`SecretsEngine::next_records`]): going through a million secrets holds one page of
/// them in memory, not all of them. Secrets created or deleted during a walk may or may not be
/// seen; each record seen is whole.
pub(crate) struct RecordWalk {
    prefix: String,
    after: Option<String>,
    done: bool,
}

impl RecordWalk {
    /// `<prefix><escaped name>/meta`; not a version key.
    fn is_record_key(&self, key: &str) -> bool {
        key.strip_prefix(self.prefix.as_str())
            .and_then(|rest| rest.strip_suffix("/meta"))
            .is_some_and(|name| !name.contains('/'))
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
