//! The audit service: the configured devices, opened when the barrier is unsealed, behind one
//! fail-closed broker.
//!
//! Each device's HMAC key (which redacts secret values and keys its hash chain) lives in the
//! barrier at `sys/audit/<device>/key`, created on first use, so the log is unreadable as a
//! source of secrets and unforgeable without the barrier. The chain head is stored at
//! `sys/audit/<device>/head` on seal and by the background job; at the next unseal a log
//! that ends before it (lines cut from the end) refuses to open. While sealed no request is
//! served, so nothing needs logging.
//!
//! Requests are recorded through the broker's group commit (one writer task per device, see
//! `coffer_audit::broker`): a request's response waits until its own line is written. On seal
//! the writers finish what is queued; the next unseal waits for them before it reopens the
//! devices, so an old writer never appends after the new chain's head was read.

use std::path::PathBuf;
use std::sync::Arc;

use coffer_audit::{
    AuditBroker, AuditDevice, AuditEvent, ChainHead, DeviceKey, EventIndex, FileDevice, Filter, LookupError,
    LookupEventsRequest, LookupEventsResponse, StdoutDevice, check_head, lookup_events, search,
};
use coffer_crypto::SecretBytes;
use coffer_storage::DynStorage;
use parking_lot::RwLock;
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Default size at which a file device rotates to a new file.
pub const DEFAULT_MAX_BYTES: u64 = 100 * 1024 * 1024;

/// One configured audit device.
#[derive(Clone, Debug)]
pub enum AuditDeviceSpec {
    /// JSON lines appended to `path`, rotated by size, the chain kept across files.
    File {
        name: String,
        path: PathBuf,
        max_bytes: u64,
    },
    /// JSON lines on standard output.
    Stdout { name: String },
}

impl AuditDeviceSpec {
    pub fn name(&self) -> &str {
        match self {
            Self::File { name, .. } | Self::Stdout { name } => name,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredHead {
    seq: u64,
    hash: String,
}

struct Open {
    broker: Arc<AuditBroker>,
    /// The file devices, for lookups.
    files: Vec<Arc<FileDevice>>,
}

/// The audit devices and their broker.
pub(crate) struct Audit {
    specs: Vec<AuditDeviceSpec>,
    open: RwLock<Option<Open>>,
    /// The broker of the last seal, whose writers may still be writing their last batch.
    closing: parking_lot::Mutex<Option<Arc<AuditBroker>>>,
}

impl Audit {
    pub(crate) fn new(specs: Vec<AuditDeviceSpec>) -> Self {
        Self {
            specs,
            open: RwLock::new(None),
            closing: parking_lot::Mutex::new(None),
        }
    }

    pub(crate) fn is_configured(&self) -> bool {
        !self.specs.is_empty()
    }

    /// Opens every device (after unseal). A device whose log was cut short, or that cannot be
    /// opened, is an error: the server must not serve requests it cannot audit.
    pub(crate) async fn open(&self, sys: &DynStorage) -> Result<(), CoreError> {
        if self.specs.is_empty() {
            return Ok(());
        }
        let previous = self.closing.lock().take();
        if let Some(previous) = previous {
            previous.closed().await;
            let _ = previous.sync();
        }
        let mut broker = AuditBroker::new();
        let mut files = Vec::new();
        for spec in &self.specs {
            let name = spec.name();
            let key = device_key(sys, name).await?;
            let device: Arc<dyn AuditDevice> = match spec {
                AuditDeviceSpec::File { name, path, max_bytes } => {
                    let f = Arc::new(FileDevice::open(name.clone(), path.clone(), *max_bytes).map_err(audit_err)?);
                    files.push(f.clone());
                    f
                }
                AuditDeviceSpec::Stdout { name } => Arc::new(StdoutDevice::new(name.clone())),
            };
            let recovered = broker.add_device(device, &key).map_err(audit_err)?;
            if let Some(stored) = stored_head(sys, name).await? {
                check_head(name, &recovered, &stored).map_err(audit_err)?;
            }
        }
        broker.start_writers().map_err(audit_err)?;
        *self.open.write() = Some(Open {
            broker: Arc::new(broker),
            files,
        });
        Ok(())
    }

    /// Stores every device's chain head, so a later unseal detects lines cut from the end.
    pub(crate) async fn save_heads(&self, sys: &DynStorage) -> Result<(), CoreError> {
        let heads = match self.open.read().as_ref() {
            Some(o) => o.broker.heads(),
            None => return Ok(()),
        };
        for (name, head) in heads {
            let rec = StoredHead {
                seq: head.seq,
                hash: head.hash_hex(),
            };
            let bytes = serde_json::to_vec(&rec).map_err(|e| CoreError::Internal(e.to_string()))?;
            sys.put(&format!("audit/{name}/head"), SecretBytes::new(bytes)).await?;
        }
        Ok(())
    }

    /// Forgets the open devices (on seal, after the heads were saved). Their writers finish
    /// the lines already queued; the next [`Audit::open`] waits for that.
    pub(crate) fn close(&self) {
        if let Some(o) = self.open.write().take() {
            o.broker.close();
            let _ = o.broker.sync();
            *self.closing.lock() = Some(o.broker);
        }
    }

    /// Records one event on every device and returns once it is written; fails when no device
    /// recorded it (fail closed). With no device configured there is nothing to record.
    pub(crate) async fn log(&self, event: &AuditEvent) -> Result<(), CoreError> {
        if self.specs.is_empty() {
            return Ok(());
        }
        let broker = match self.open.read().as_ref() {
            Some(o) => o.broker.clone(),
            None => return Err(CoreError::AuditFailed("audit devices are not open".into())),
        };
        let receipt = broker
            .record(event)
            .await
            .map_err(|e| CoreError::AuditFailed(e.to_string()))?;
        for failed in &receipt.failed {
            tracing::warn!(device = %failed, "an audit device failed to record a request");
        }
        Ok(())
    }

    /// CloudTrail `LookupEvents` over the first file device, limited to one account's events.
    pub(crate) fn lookup(
        &self,
        account_id: &str,
        req: &LookupEventsRequest,
    ) -> Result<Result<LookupEventsResponse, LookupError>, CoreError> {
        let files = match self.open.read().as_ref().and_then(|o| o.files.first().cloned()) {
            Some(f) => f.files().map_err(audit_err)?,
            None => Vec::new(),
        };
        let mut index = EventIndex::default();
        if !files.is_empty() {
            for e in search(&files, &Filter::default()).map_err(audit_err)?.flatten() {
                if e.event.recipient_account_id == account_id {
                    index.push(e);
                }
            }
        }
        Ok(lookup_events(&index, req))
    }
}

async fn device_key(sys: &DynStorage, name: &str) -> Result<DeviceKey, CoreError> {
    let path = format!("audit/{name}/key");
    if let Some(k) = sys.get(&path).await? {
        return Ok(DeviceKey::from_secret(k));
    }
    let key = DeviceKey::generate().map_err(audit_err)?;
    sys.put(&path, SecretBytes::from_slice(key.expose())).await?;
    Ok(key)
}

async fn stored_head(sys: &DynStorage, name: &str) -> Result<Option<ChainHead>, CoreError> {
    let Some(raw) = sys.get(&format!("audit/{name}/head")).await? else {
        return Ok(None);
    };
    let rec: StoredHead =
        serde_json::from_slice(raw.expose()).map_err(|e| CoreError::Internal(format!("audit head record: {e}")))?;
    let mut hash = [0u8; 32];
    hex::decode_to_slice(rec.hash.as_bytes(), &mut hash)
        .map_err(|_| CoreError::Internal("audit head record: bad hash".into()))?;
    Ok(Some(ChainHead { seq: rec.seq, hash }))
}

fn audit_err(e: coffer_audit::AuditError) -> CoreError {
    CoreError::AuditFailed(e.to_string())
}
