//! Storage access: loading records and values, per-parameter write locks, the commit
//! protocol and enumeration.
//!
//! Commit protocol: a new version's value is written first; the record (which lists the
//! retained versions) follows in a second batch, the commit point, together with the deletion
//! of a pruned version's value. A failure before the second batch leaves only an unreferenced
//! value behind (overwritten by the next attempt, which reuses the version number); the
//! parameter is unchanged.

use coffer_crypto::SecretBytes;
use coffer_engines::{AwsError, RequestContext};
use coffer_storage::Write;
use tokio::sync::MutexGuard;

use crate::SsmEngine;
use crate::model::ParameterRecord;
use crate::names;

/// How many write locks parameters are spread over.
pub(crate) const LOCK_STRIPES: usize = 64;

impl SsmEngine {
    pub(crate) async fn load(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<ParameterRecord>, AwsError> {
        let key = names::meta_key(account, region, names::canonical(name));
        match self.storage.get(&key).await? {
            Some(b) => ParameterRecord::from_bytes(&b).map(Some),
            None => Ok(None),
        }
    }

    /// The parameter `name` of the caller's account and region.
    pub(crate) async fn find(&self, ctx: &RequestContext, name: &str) -> Result<Option<ParameterRecord>, AwsError> {
        if !names::plausible(name) {
            return Ok(None);
        }
        self.load(&ctx.account_id, &ctx.region, name).await
    }

    /// The write lock of one parameter.
    pub(crate) async fn lock(&self, ctx: &RequestContext, name: &str) -> MutexGuard<'_, ()> {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        ctx.account_id.hash(&mut h);
        ctx.region.hash(&mut h);
        names::canonical(name).hash(&mut h);
        let i = usize::try_from(h.finish() % LOCK_STRIPES as u64).unwrap_or(0);
        self.locks[i].lock().await
    }

    pub(crate) async fn load_value(&self, rec: &ParameterRecord, version: i64) -> Result<SecretBytes, AwsError> {
        let key = names::version_key(&rec.account, &rec.region, names::canonical(&rec.name), version);
        self.storage
            .get(&key)
            .await?
            .ok_or_else(|| AwsError::internal("a stored parameter version has no value"))
    }

    /// Commits `rec`: the new value (if any) first, then the record with the pruned values.
    pub(crate) async fn commit(
        &self,
        rec: &ParameterRecord,
        new_value: Option<(i64, SecretBytes)>,
        pruned: &[i64],
    ) -> Result<(), AwsError> {
        let canon = names::canonical(&rec.name);
        if let Some((v, bytes)) = new_value {
            self.storage
                .put(&names::version_key(&rec.account, &rec.region, canon, v), bytes)
                .await?;
        }
        let mut writes = vec![Write::put(
            names::meta_key(&rec.account, &rec.region, canon),
            rec.to_bytes()?,
        )];
        for v in pruned {
            writes.push(Write::delete(names::version_key(&rec.account, &rec.region, canon, *v)));
        }
        self.storage.batch(writes).await?;
        Ok(())
    }

    /// Writes only the record (labels, tags).
    pub(crate) async fn write_record(&self, rec: &ParameterRecord) -> Result<(), AwsError> {
        self.commit(rec, None, &[]).await
    }

    /// Deletes a parameter in one batch: the record first, then every stored value
    /// (including orphans of failed writes).
    pub(crate) async fn erase(&self, account: &str, region: &str, name: &str) -> Result<(), AwsError> {
        let canon = names::canonical(name);
        let prefix = names::param_prefix(account, region, canon);
        let meta = names::meta_key(account, region, canon);
        let mut writes = vec![Write::delete(meta.clone())];
        let mut after: Option<String> = None;
        loop {
            let keys = self.storage.scan(&prefix, after.as_deref(), 1000).await?;
            let Some(last) = keys.last().cloned() else { break };
            writes.extend(keys.into_iter().filter(|k| *k != meta).map(Write::delete));
            after = Some(last);
        }
        self.storage.batch(writes).await?;
        Ok(())
    }

    /// Every record of one region of one account, sorted by name as a path.
    pub(crate) async fn records_in_region(
        &self,
        account: &str,
        region: &str,
    ) -> Result<Vec<ParameterRecord>, AwsError> {
        let entries = self.storage.list(&names::region_prefix(account, region)).await?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let Some(seg) = e.strip_suffix('/') else { continue };
            let name = names::unescape(seg);
            if let Some(rec) = self.load(account, region, &name).await? {
                out.push(rec);
            }
        }
        out.sort_by_key(|r| names::as_path(&r.name));
        Ok(out)
    }

    /// How many parameters one region holds.
    pub(crate) async fn count_in_region(&self, account: &str, region: &str) -> Result<usize, AwsError> {
        Ok(self.storage.list(&names::region_prefix(account, region)).await?.len())
    }

    /// Every (account, region) pair that has data.
    pub(crate) async fn regions(&self) -> Result<Vec<(String, String)>, AwsError> {
        let mut out = Vec::new();
        for acct in self.storage.list("").await? {
            let Some(acct) = acct.strip_suffix('/') else { continue };
            for region in self.storage.list(&format!("{acct}/")).await? {
                let Some(region) = region.strip_suffix('/') else {
                    continue;
                };
                out.push((names::unescape(acct), names::unescape(region)));
            }
        }
        Ok(out)
    }
}
