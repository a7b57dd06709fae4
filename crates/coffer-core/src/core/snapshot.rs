//! Backups: `snapshot_save` streams a consistent snapshot of the whole store (below the
//! barrier, still encrypted), `snapshot_restore` replaces the store with one and leaves the
//! server sealed, to be unsealed with the snapshot's unseal keys.
//!
//! Who may restore: on an initialized server, only the root token, and only when the caller
//! says it means to replace everything (`force`, Vault's `snapshot-force`). On a server that
//! was never initialized, anyone, without a token, as anyone may call `sys/init` there: such
//! a server holds nothing to protect or lose, and the snapshot brings its own keyring, which
//! only the holders of the snapshot's unseal keys can open. What the caller gains is a sealed
//! copy of someone's encrypted store; what they could do instead is initialize the server
//! themselves. (Vault needs a token for both endpoints, and so an initialized, unsealed node
//! to restore onto.)

use coffer_storage::snapshot::{ByteSource, SnapshotExport, SnapshotReader};
use serde_json::json;

use super::{Client, Core};
use crate::CoreError;

/// What a restore wrote.
#[derive(Clone, Debug)]
pub struct RestoreSummary {
    pub entries: u64,
    pub bytes: u64,
    /// The snapshot's SHA-256, lowercase hex.
    pub checksum: String,
    /// When the snapshot was taken (Unix seconds) and by which Coffer version.
    pub created_unix: i64,
    pub coffer_version: String,
}

impl Core {
    /// A consistent snapshot of everything stored, as it is at this moment, to stream to the
    /// caller (root token, unsealed server). Recorded as a `SnapshotSave` event before any
    /// byte leaves (fail closed: with audit devices, no snapshot unless one records it).
    pub async fn snapshot_save(&self, token: Option<&str>, client: &Client) -> Result<SnapshotExport, CoreError> {
        let entry = self.require_root_token(token).await?;
        let now = self.clock.now();
        let event = self.op_event("SnapshotSave", client, Some(&entry), json!({}), None);
        self.audit.operator_event(event).await?;
        // The chain heads go into the snapshot, so a restored server knows where its logs
        // stood (the event above included).
        if let Err(e) = self.audit.save_heads(&self.sys).await {
            tracing::warn!(error = %e, "could not store the audit chain heads before a snapshot");
        }
        let snapshot = self.barrier.snapshot().await?;
        tracing::info!(entries = snapshot.entries, "snapshot started");
        Ok(SnapshotExport::new(snapshot, now.unix_timestamp()))
    }

    /// Replaces everything stored with the snapshot read from `source`, atomically: a
    /// snapshot that is malformed, truncated, fails its checksum or is not a Coffer store's
    /// changes nothing. Afterwards the server is sealed, every in-memory cache is dropped,
    /// and it unseals with the unseal keys of the server the snapshot came from.
    ///
    /// An initialized server is replaced only with `force` and the root token; it is sealed
    /// when the restore starts (so no write made under its old keys can land among the
    /// restored data), and stays sealed, with its old data, if the snapshot is refused.
    pub async fn snapshot_restore<S: ByteSource>(
        &self,
        token: Option<&str>,
        force: bool,
        source: S,
        client: &Client,
    ) -> Result<RestoreSummary, CoreError> {
        let initialized = self.barrier.is_initialized().await?;
        let entry = if initialized {
            if !force {
                return Err(CoreError::BadRequest(
                    "Coffer is already initialized: restoring a snapshot replaces all of its data; \
                     use sys/storage/raft/snapshot-force (coffer operator snapshot restore --force) \
                     with the root token"
                        .into(),
                ));
            }
            Some(self.require_root_token(token).await?)
        } else {
            None
        };
        let mut reader = SnapshotReader::open(source)
            .await
            .map_err(|e| CoreError::BadRequest(format!("invalid snapshot: {e}")))?;
        let header = reader.header().clone();
        let mut details = json!({
            "force": force,
            "entries": header.entries,
            "snapshotCreated": header.created_unix,
            "snapshotCofferVersion": header.coffer_version,
        });
        if let Some(entry) = &entry {
            // Into the log of the store about to be replaced, while its devices are open.
            let event = self.op_event("SnapshotRestore", client, Some(entry), details.clone(), None);
            self.audit.operator_event(event).await?;
        }
        self.seal_now();
        let restored = self.barrier.restore(&mut reader, initialized).await;
        // Nothing cached may outlive the data it came from.
        self.seal_now();
        let outcome = match restored {
            Ok(entries) => match reader.summary() {
                Some(s) => Ok(RestoreSummary {
                    entries,
                    bytes: s.bytes,
                    checksum: s.checksum_hex(),
                    created_unix: header.created_unix,
                    coffer_version: header.coffer_version.clone(),
                }),
                None => Err(CoreError::Internal("the restore ended before its snapshot".into())),
            },
            Err(e) => Err(match reader.error() {
                Some(problem) => CoreError::BadRequest(format!("invalid snapshot: {problem}")),
                None => e.into(),
            }),
        };
        // Written when the restored store's devices open (at unseal), first.
        let error = outcome.as_ref().err().map(|e| ("SnapshotRestoreFailed", e.to_string()));
        if let Ok(s) = &outcome {
            details["checksum"] = json!(s.checksum);
        }
        self.record_operator(self.op_event("SnapshotRestore", client, entry.as_ref(), details, error))
            .await;
        match &outcome {
            Ok(s) => tracing::info!(entries = s.entries, checksum = %s.checksum, "restored a snapshot; sealed"),
            Err(e) => tracing::warn!(error = %e, "a snapshot restore was refused"),
        }
        outcome
    }
}
