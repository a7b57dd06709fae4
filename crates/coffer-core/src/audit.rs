//! The audit service: the configured devices, opened when the barrier is unsealed, behind one
//! fail-closed broker.
//!
//! Each device's HMAC key (which redacts secret values and keys its hash chain) lives in the
//! barrier at `sys/audit/<device>/key`, created on first use, so the log is unreadable as a
//! source of secrets and unforgeable without the barrier. The chain head of a file device is
//! stored at `sys/audit/<device>/head` on seal and by the background job; at the next unseal
//! a log that ends before it (lines cut from the end) is reported, never a reason to stay
//! sealed (see [`Audit::open`]). While sealed no request is served, so nothing needs logging;
//! operator events that happen while sealed (unseal attempts) are kept in memory and written
//! first when the devices open.
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

/// A device whose log could not be opened or proved to continue, found at unseal.
#[derive(Clone, Debug)]
pub(crate) struct DeviceProblem {
    pub(crate) device: String,
    pub(crate) message: String,
}

/// How many operator events are kept while sealed (unseal attempts); older ones are dropped.
const MAX_PENDING: usize = 1024;

/// The audit devices and their broker.
pub(crate) struct Audit {
    specs: Vec<AuditDeviceSpec>,
    open: RwLock<Option<Open>>,
    /// The broker of the last seal, whose writers may still be writing their last batch.
    closing: parking_lot::Mutex<Option<Arc<AuditBroker>>>,
    /// Operator events that happened while the devices were closed, oldest first.
    pending: parking_lot::Mutex<Vec<AuditEvent>>,
}

impl Audit {
    pub(crate) fn new(specs: Vec<AuditDeviceSpec>) -> Self {
        Self {
            specs,
            open: RwLock::new(None),
            closing: parking_lot::Mutex::new(None),
            pending: parking_lot::Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn is_configured(&self) -> bool {
        !self.specs.is_empty()
    }

    /// Opens every device (after unseal) and returns what an operator should hear about:
    /// devices that could not be opened, and logs whose continuity could not be proved (the
    /// last line changed or unreadable, or lines cut from the end since the stored head).
    ///
    /// None of these keeps the server sealed: the audit files are outside the barrier's
    /// control, and an operator with the right shares must always be able to unseal. A device
    /// that cannot be opened is retried on every write and fails its requests until then (fail
    /// closed); a log that does not continue is continued all the same, and the problem is
    /// recorded as an `AuditLogDiscontinuity` event on every device that works. Devices that
    /// cannot read their lines back (stdout) prove nothing, so they are never compared with a
    /// stored head. Only a failure of the sealed storage itself (the device keys) is an error.
    pub(crate) async fn open(&self, sys: &DynStorage) -> Result<Vec<DeviceProblem>, CoreError> {
        let mut problems = Vec::new();
        if self.specs.is_empty() {
            return Ok(problems);
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
            let mut problem = None;
            let device: Arc<dyn AuditDevice> = match spec {
                AuditDeviceSpec::File { name, path, max_bytes } => {
                    let f = match FileDevice::open(name.clone(), path.clone(), *max_bytes) {
                        Ok(f) => f,
                        Err(e) => {
                            problem = Some(format!("cannot be opened (retried on every write): {e}"));
                            FileDevice::unopened(name.clone(), path.clone(), *max_bytes)
                        }
                    };
                    let f = Arc::new(f);
                    files.push(f.clone());
                    f
                }
                AuditDeviceSpec::Stdout { name } => Arc::new(StdoutDevice::new(name.clone())),
            };
            let proves = device.proves_continuity();
            let (recovered, unproved) = broker.add_device_reporting(device, &key);
            if problem.is_none() {
                problem = unproved.map(|e| e.to_string());
            }
            if problem.is_none() && proves {
                problem = match stored_head(sys, name).await {
                    Ok(Some(stored)) => check_head(name, &recovered, &stored).err().map(|e| e.to_string()),
                    Ok(None) => None,
                    Err(e) => Some(format!("the stored chain head cannot be read: {e}")),
                };
            }
            if let Some(message) = problem {
                tracing::error!(device = %name, problem = %message, "audit log continuity not proved; unsealing all the same");
                problems.push(DeviceProblem {
                    device: name.to_owned(),
                    message,
                });
            }
        }
        broker.start_writers().map_err(audit_err)?;
        *self.open.write() = Some(Open {
            broker: Arc::new(broker),
            files,
        });
        Ok(problems)
    }

    /// Whether the devices are open (the server is unsealed and serving).
    pub(crate) fn is_open(&self) -> bool {
        self.open.read().is_some()
    }

    /// Each device's current head (devices that prove continuity only), for `coffer audit
    /// verify` to detect lines cut from the end.
    pub(crate) fn heads(&self) -> Vec<(String, ChainHead)> {
        match self.open.read().as_ref() {
            Some(o) => o
                .broker
                .heads()
                .into_iter()
                .filter(|(name, _)| self.proves_continuity(name))
                .collect(),
            None => Vec::new(),
        }
    }

    fn proves_continuity(&self, name: &str) -> bool {
        self.specs
            .iter()
            .any(|s| s.name() == name && matches!(s, AuditDeviceSpec::File { .. }))
    }

    /// Stores every device's chain head, so a later unseal detects lines cut from the end.
    pub(crate) async fn save_heads(&self, sys: &DynStorage) -> Result<(), CoreError> {
        for (name, head) in self.heads() {
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

    /// Records an operator event: at once when the devices are open (an error means no device
    /// recorded it), else kept until they open ([`Audit::flush_pending`]).
    pub(crate) async fn operator_event(&self, event: AuditEvent) -> Result<(), CoreError> {
        if self.specs.is_empty() {
            return Ok(());
        }
        if !self.is_open() {
            let mut pending = self.pending.lock();
            if pending.len() >= MAX_PENDING {
                pending.remove(0);
            }
            pending.push(event);
            return Ok(());
        }
        self.log(&event).await
    }

    /// Writes the operator events kept while sealed (after [`Audit::open`]). A failure is
    /// logged, not returned: unsealing goes on.
    pub(crate) async fn flush_pending(&self) {
        let events = std::mem::take(&mut *self.pending.lock());
        for event in events {
            if let Err(e) = self.log(&event).await {
                tracing::warn!(error = %e, event = %event.event_name, "an operator event could not be recorded");
            }
        }
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
