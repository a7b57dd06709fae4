//! The creation-order index: ListSecrets (and BatchGetSecretValue with filters) page through
//! secrets in creation order, AWS's default, without reading every record.
//!
//! Each secret has one empty entry `<account>/<region>/created/<created key>` (see
//! [`names::created_prefix`] and [`created_key`]). It is written in the commit that creates
//! the secret (or a replica of it) and deleted in the batch that erases it. A page scans the
//! entries in order from the `NextToken` (forwards or backwards) and loads the record each
//! names, keeping those whose creation key still matches: an entry left behind by a crash-free
//! race (an erase during the one-time build) names a record that is gone or newer, and is
//! skipped rather than listed.
//!
//! Stores written before the index existed get it built once, by the first CreateSecret or
//! listing after start-up, which then writes [`names::CREATED_INDEX_MARKER`].

use std::sync::atomic::Ordering;

use coffer_crypto::SecretBytes;
use coffer_storage::Write;

use crate::secrets::SecretsEngine;
use crate::secrets::metadata::created_key;
use crate::secrets::model::SecretRecord;
use crate::secrets::names;
use crate::secrets::paging;
use crate::secrets::replication::derive_replica;
use crate::{AwsError, RequestContext};

/// How many index entries one step of a page reads.
const INDEX_STEP: usize = 256;

/// The index entry of one record (in the record's own region).
pub(crate) fn entry_key(rec: &SecretRecord) -> String {
    format!(
        "{}{}",
        names::created_prefix(&rec.account, &rec.region),
        created_key(rec)
    )
}

/// The write that indexes `rec` (an empty value under its [`entry_key`]).
pub(crate) fn entry_put(rec: &SecretRecord) -> Write {
    Write::put(entry_key(rec), SecretBytes::new(Vec::new()))
}

/// The writes that index the in-sync replicas of `rec` whose region `wanted` accepts (their
/// records are written by the same commit).
pub(crate) fn replica_entries(rec: &SecretRecord, wanted: impl Fn(&str) -> bool) -> Vec<Write> {
    SecretsEngine::synced_replicas(rec)
        .into_iter()
        .filter(|r| wanted(&r.region))
        .map(|r| entry_put(&derive_replica(rec, r)))
        .collect()
}

/// The writes that index a newly created secret and its in-sync replicas.
pub(crate) fn entries_of_new(rec: &SecretRecord) -> Vec<Write> {
    let mut writes = vec![entry_put(rec)];
    writes.extend(replica_entries(rec, |_| true));
    writes
}

impl SecretsEngine {
    /// Builds the index of a store written before it existed, once per store; afterwards (and
    /// for new stores, whose first CreateSecret finds nothing to index) an atomic load.
    pub(crate) async fn ensure_created_index(&self) -> Result<(), AwsError> {
        if self.index_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        let _building = self.index_build.lock().await;
        if self.index_ready.load(Ordering::Acquire) {
            return Ok(());
        }
        if self.storage.get(names::CREATED_INDEX_MARKER).await?.is_none() {
            let mut indexed = 0usize;
            for mut walk in self.walk_everything().await? {
                while let Some(records) = self.next_records(&mut walk).await? {
                    indexed += records.len();
                    let writes = records.iter().map(entry_put).collect();
                    self.storage.batch(writes).await?;
                }
            }
            self.storage
                .put(names::CREATED_INDEX_MARKER, SecretBytes::new(b"1".to_vec()))
                .await?;
            if indexed > 0 {
                tracing::info!(secrets = indexed, "built the Secrets Manager creation-order index");
            }
        }
        self.index_ready.store(true, Ordering::Release);
        Ok(())
    }

    /// One page of the caller's region's records that `keep` accepts, in creation order
    /// (`ascending` or not), after `token`, and the token of the next page if more follow.
    /// Reads index entries until the page is full: a page of an unfiltered listing reads a
    /// page of records, whatever the number of secrets.
    pub(crate) async fn page_by_creation(
        &self,
        ctx: &RequestContext,
        keep: impl Fn(&SecretRecord) -> bool,
        ascending: bool,
        token: Option<&str>,
        max: usize,
    ) -> Result<(Vec<SecretRecord>, Option<String>), AwsError> {
        self.ensure_created_index().await?;
        let (account, region) = (ctx.account_id.as_str(), ctx.region.as_str());
        let prefix = names::created_prefix(account, region);
        let mut cursor = token
            .map(paging::decode_token)
            .transpose()?
            .map(|entry| format!("{prefix}{entry}"));
        let mut page = Vec::new();
        loop {
            let keys = if ascending {
                self.storage.scan(&prefix, cursor.as_deref(), INDEX_STEP).await?
            } else {
                self.storage.scan_back(&prefix, cursor.as_deref(), INDEX_STEP).await?
            };
            for key in &keys {
                let Some(entry) = key.strip_prefix(prefix.as_str()) else {
                    continue;
                };
                let Some(name) = names::name_of_created_entry(entry) else {
                    continue;
                };
                let Some(rec) = self.load(account, region, &name).await? else {
                    continue;
                };
                if created_key(&rec) != entry || !keep(&rec) {
                    continue;
                }
                if page.len() == max {
                    let next = page
                        .last()
                        .map(|r: &SecretRecord| paging::encode_token(&created_key(r)));
                    return Ok((page, next));
                }
                page.push(rec);
            }
            if keys.len() < INDEX_STEP {
                return Ok((page, None));
            }
            cursor = keys.last().cloned();
        }
    }
}
