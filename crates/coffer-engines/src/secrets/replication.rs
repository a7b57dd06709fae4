//! Replication to other regions of the same account: ReplicateSecretToRegions (and
//! CreateSecret's `AddReplicaRegions`), RemoveRegionsFromReplication and
//! StopReplicationToReplica.
//!
//! A replica is a real, read-only copy stored in the other region: same name, the primary's
//! ARN with the region swapped, `primary_region` set, and copies of every version value.
//! Every later write to the primary rewrites the replicas' records and values in the same
//! commit (see `store::commit`). Writes addressed to a replica fail with
//! InvalidParameterException. StopReplicationToReplica turns a replica into a standalone
//! secret.

use coffer_storage::Write;
use serde_json::Value;

use crate::secrets::SecretsEngine;
use crate::secrets::input::{Input, check_len, required};
use crate::secrets::model::{REPLICA_FAILED, REPLICA_IN_SYNC, ReplicaRecord, SecretRecord, now_ms};
use crate::secrets::names;
use crate::secrets::render::{self, Out};
use crate::secrets::store::{ensure_not_deleted, ensure_writable, mark_replica_failed};
use crate::{AwsError, RequestContext};

/// One entry of `AddReplicaRegions`.
#[derive(Debug, Clone)]
pub(crate) struct ReplicaRequest {
    pub region: String,
    pub kms_key_id: Option<String>,
}

fn valid_region(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 128
        && r.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Reads a list of `{Region, KmsKeyId}`.
pub(crate) fn read_replica_regions(
    input: &Input,
    key: &str,
    is_required: bool,
) -> Result<Vec<ReplicaRequest>, AwsError> {
    let items = match input.object_list(key)? {
        Some(items) => items,
        None if is_required => return Err(crate::secrets::input::missing(&crate::secrets::input::member_path(key))),
        None => return Ok(Vec::new()),
    };
    if is_required {
        check_len(items.len(), 1, 100, &crate::secrets::input::member_path(key))?;
    }
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let region = item.string("Region")?.unwrap_or_default();
        let kms_key_id = item.string("KmsKeyId")?.filter(|k| !k.is_empty());
        out.push(ReplicaRequest { region, kms_key_id });
    }
    Ok(out)
}

/// The record a replica holds: the primary's, re-addressed to the replica's region.
pub(crate) fn derive_replica(primary: &SecretRecord, replica: &ReplicaRecord) -> SecretRecord {
    let mut r = primary.clone();
    r.arn = names::arn_in_region(&primary.arn, &replica.region);
    r.region = replica.region.clone();
    r.primary_region = Some(primary.region.clone());
    r.replicas = Vec::new();
    r.kms_key_id = replica.kms_key_id.clone();
    // The replica's copies are encrypted under the replica's own key.
    let reported = crate::secrets::envelope::reported_key(r.kms_key_id.as_deref());
    for v in r.versions.values_mut().filter(|v| v.has_value) {
        v.kms_key_ids = vec![reported.clone()];
    }
    r
}

impl SecretsEngine {
    /// Adds replica entries to `rec`. A secret of the same name already in a target region
    /// makes that replica `Failed`, unless `force` (then it is overwritten: the returned
    /// deletes, to apply in the commit batch, remove its leftover values). Values are not
    /// copied here. Returns the regions added and those deletes.
    pub(crate) async fn prepare_replicas(
        &self,
        rec: &mut SecretRecord,
        requests: &[ReplicaRequest],
        force: bool,
    ) -> Result<(Vec<String>, Vec<Write>), AwsError> {
        let mut added = Vec::new();
        let mut cleanup = Vec::new();
        for req in requests {
            if req.region == rec.region || !valid_region(&req.region) {
                return Err(AwsError::invalid_parameter("Invalid replica region."));
            }
            if rec
                .replicas
                .iter()
                .any(|r| r.region == req.region && r.status == REPLICA_IN_SYNC)
            {
                continue;
            }
            rec.replicas.retain(|r| r.region != req.region);
            let existing = self.load(&rec.account, &req.region, &rec.name).await?;
            let is_ours = existing
                .as_ref()
                .is_some_and(|e| e.primary_region.as_deref() == Some(rec.region.as_str()));
            if existing.is_some() && !is_ours && !force {
                rec.replicas.push(ReplicaRecord {
                    region: req.region.clone(),
                    kms_key_id: req.kms_key_id.clone(),
                    status: REPLICA_FAILED.to_string(),
                    status_message: Some(format!(
                        "Replication failed: Secret name {} already exists in region {}.",
                        rec.name, req.region
                    )),
                });
                continue;
            }
            if existing.is_some() {
                // Keep the record key (the commit overwrites it) and the keys of our versions
                // (written before the commit).
                let meta = names::meta_key(&rec.account, &req.region, &rec.name);
                let ours: Vec<String> = rec
                    .versions
                    .keys()
                    .map(|v| names::version_key(&rec.account, &req.region, &rec.name, v))
                    .collect();
                cleanup.extend(
                    self.erase_writes(&rec.account, &req.region, &rec.name, |k| {
                        k != meta && !ours.iter().any(|o| o == k)
                    })
                    .await?,
                );
            }
            rec.replicas.push(ReplicaRecord {
                region: req.region.clone(),
                kms_key_id: req.kms_key_id.clone(),
                status: REPLICA_IN_SYNC.to_string(),
                status_message: Some("Replication succeeded".to_string()),
            });
            added.push(req.region.clone());
        }
        Ok((added, cleanup))
    }

    pub(crate) async fn replicate_secret_to_regions(
        &self,
        ctx: &RequestContext,
        input: &Input,
    ) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let requests = read_replica_regions(input, "AddReplicaRegions", true)?;
        let force = input.bool("ForceOverwriteReplicaSecret")?.unwrap_or(false);
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;
        let (added, cleanup) = self.prepare_replicas(&mut rec, &requests, force).await?;
        // Copy every stored value to the new regions, re-encrypted under each replica's key;
        // the commit then writes the records. A replica whose key is unusable is `Failed`.
        let mut values = Vec::new();
        for (vid, v) in &rec.versions {
            if !v.has_value {
                continue;
            }
            if let Some(value) = self.load_value(ctx, &rec, vid).await? {
                values.push((vid.clone(), value));
            }
        }
        let mut sealed = Vec::new();
        for region in &added {
            let Some(replica) = rec.replicas.iter().find(|r| &r.region == region).cloned() else {
                continue;
            };
            match self.seal_for_replica(ctx, &rec, &replica, &values).await {
                Ok(s) => sealed.extend(s),
                Err(e) => {
                    tracing::warn!(secret = %rec.arn, region = %region, error = %e, "replica value not encrypted; replica marked failed");
                    mark_replica_failed(&mut rec, region, &e);
                }
            }
        }
        rec.changed_ms = now_ms(ctx);
        // Index the new replicas after the cleanup, which may delete an overwritten secret's
        // entry with the same key.
        let mut cleanup = cleanup;
        cleanup.extend(crate::secrets::index::replica_entries(&rec, |region| {
            added.iter().any(|a| a == region)
        }));
        self.commit_with(&rec, &sealed, &[], cleanup).await?;
        Ok(Out::new()
            .s("ARN", rec.arn.clone())
            .v("ReplicationStatus", render::replication_status_list(&rec))
            .build())
    }

    pub(crate) async fn remove_regions_from_replication(
        &self,
        ctx: &RequestContext,
        input: &Input,
    ) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let regions = required(input.string_list("RemoveReplicaRegions")?, "RemoveReplicaRegions")?;
        check_len(regions.len(), 1, 100, "removeReplicaRegions")?;
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;
        // The replicas' copies are deleted in the same batch that commits the primary.
        let mut cleanup = Vec::new();
        for region in &regions {
            let Some(pos) = rec.replicas.iter().position(|r| &r.region == region) else {
                continue;
            };
            let replica = rec.replicas.remove(pos);
            if replica.status == REPLICA_IN_SYNC
                && let Some(existing) = self.load(&rec.account, region, &rec.name).await?
                && existing.primary_region.as_deref() == Some(rec.region.as_str())
            {
                cleanup.extend(self.erase_writes(&rec.account, region, &rec.name, |_| true).await?);
            }
        }
        rec.changed_ms = now_ms(ctx);
        self.commit_with(&rec, &[], &[], cleanup).await?;
        Ok(Out::new()
            .s("ARN", rec.arn.clone())
            .v("ReplicationStatus", render::replication_status_list(&rec))
            .build())
    }

    pub(crate) async fn stop_replication_to_replica(
        &self,
        ctx: &RequestContext,
        input: &Input,
    ) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_not_deleted(&rec)?;
        let Some(primary_region) = rec.primary_region.clone() else {
            return Err(AwsError::invalid_request(
                "StopReplicationToReplica can only be called on a replica secret, in the replica's Region.",
            ));
        };
        rec.primary_region = None;
        rec.changed_ms = now_ms(ctx);
        let mut writes = Vec::new();
        if let Some(mut primary) = self.load(&rec.account, &primary_region, &rec.name).await? {
            primary.replicas.retain(|r| r.region != rec.region);
            writes.push(Write::put(
                names::meta_key(&primary.account, &primary.region, &primary.name),
                primary.to_bytes()?,
            ));
        }
        writes.push(Write::put(
            names::meta_key(&rec.account, &rec.region, &rec.name),
            rec.to_bytes()?,
        ));
        self.storage.batch(writes).await?;
        tracing::info!(secret = %rec.arn, "replica promoted to a standalone secret");
        Ok(Out::new().s("ARN", rec.arn.clone()).build())
    }
}
