//! The audit broker: redact, chain and write every event to every device; fail closed.
//!
//! For each device, [`AuditBroker::log`]:
//! 1. serializes the event with the device's [`Redactor`] into a per-thread buffer (no
//!    allocation once the buffer has grown) and hashes that body: both outside any lock;
//! 2. takes the device's chain lock, appends the chain member (seq, prev, hash, mac; a SHA-256
//!    of ~150 bytes and an HMAC of 32), writes the line with one `write` call, and advances the
//!    device's [`ChainHead`] only if the write succeeded;
//! 3. counts the devices that recorded the event. If none did, `log` returns
//!    [`AuditError::NoDeviceRecorded`] and the caller must fail the request (fail closed, as
//!    Vault does). A device that fails while another succeeds is reported in the
//!    [`LogReceipt`], so the server can warn.
//!
//! A broker with no devices records nothing and returns `Ok` with `recorded == 0`, as Vault does
//! when no audit device is enabled; the server decides whether to require one.
//!
//! The chain lock is held across the write so that lines reach the file in chain order.

use std::cell::RefCell;
use std::sync::Arc;

use parking_lot::Mutex;

use coffer_crypto::hash::sha256;

use crate::chain::{self, ChainHead, ChainKey};
use crate::device::AuditDevice;
use crate::event::AuditEvent;
use crate::redact::Redactor;
use crate::{AuditError, DeviceKey};

/// Fans events out to the audit devices.
#[derive(Default)]
pub struct AuditBroker {
    slots: Vec<Slot>,
}

struct Slot {
    device: Arc<dyn AuditDevice>,
    redactor: Redactor,
    chain_key: ChainKey,
    head: Mutex<ChainHead>,
}

/// What [`AuditBroker::log`] did.
#[derive(Debug, Default)]
pub struct LogReceipt {
    /// How many devices recorded the event (at least one when `log` returns `Ok`, unless the
    /// broker has no devices).
    pub recorded: usize,
    /// The devices that failed, with why.
    pub failed: Vec<AuditError>,
}

impl AuditBroker {
    /// A broker without devices.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a device keyed by `key` with the default redaction rules, continuing the chain from
    /// the device's last line (see [`AuditBroker::add_device_with`]). Returns the head it
    /// continues from, which the server should compare with the head it stored
    /// ([`check_head`]).
    pub fn add_device(&mut self, device: Arc<dyn AuditDevice>, key: &DeviceKey) -> Result<ChainHead, AuditError> {
        self.add_device_with(device, key.redactor(), key.chain_key())
    }

    /// Adds a device with its own redactor (custom rules) and chain key. The chain continues
    /// from the device's last line, which must verify under `chain_key`: a device whose last
    /// line was altered is refused, because continuing would hide the alteration.
    pub fn add_device_with(
        &mut self,
        device: Arc<dyn AuditDevice>,
        redactor: Redactor,
        chain_key: ChainKey,
    ) -> Result<ChainHead, AuditError> {
        let head = recover_head(device.as_ref(), &chain_key)?;
        self.slots.push(Slot {
            device,
            redactor,
            chain_key,
            head: Mutex::new(head),
        });
        Ok(head)
    }

    /// How many devices there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no devices.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Redacts, chains and writes `event` to every device. `Err` means no device recorded it:
    /// the request must fail.
    pub fn log(&self, event: &AuditEvent) -> Result<LogReceipt, AuditError> {
        let mut receipt = LogReceipt::default();
        for slot in &self.slots {
            match with_buffer(|buf| slot.log(event, buf)) {
                Ok(()) => receipt.recorded += 1,
                Err(e) => receipt.failed.push(e),
            }
        }
        if receipt.recorded == 0 && !receipt.failed.is_empty() {
            return Err(AuditError::NoDeviceRecorded {
                failed: receipt.failed.len(),
            });
        }
        Ok(receipt)
    }

    /// Each device's name and current head, for the server to keep in sealed storage.
    pub fn heads(&self) -> Vec<(String, ChainHead)> {
        self.slots
            .iter()
            .map(|s| (s.device.name().to_owned(), *s.head.lock()))
            .collect()
    }

    /// `sys/audit-hash`: the HMAC of `input` as device `name` writes it.
    pub fn hash_value(&self, name: &str, input: &str) -> Option<String> {
        self.slots
            .iter()
            .find(|s| s.device.name() == name)
            .map(|s| s.redactor.hash_value(input))
    }

    /// Syncs every device (at shutdown). Returns the first error after trying all.
    pub fn sync(&self) -> Result<(), AuditError> {
        let mut first = None;
        for slot in &self.slots {
            if let Err(e) = slot.device.sync() {
                first.get_or_insert(e);
            }
        }
        first.map_or(Ok(()), Err)
    }
}

impl Slot {
    fn log(&self, event: &AuditEvent, buf: &mut Vec<u8>) -> Result<(), AuditError> {
        buf.clear();
        self.redactor.write_event(event, buf)?;
        // The serializer always ends an object with `}`; the chain member goes before it.
        if buf.pop() != Some(b'}') {
            return Err(AuditError::Serialize);
        }
        let body_digest = sha256(buf);
        let mut head = self.head.lock();
        let next = chain::seal(buf, &body_digest, &head, &self.chain_key);
        self.device.write(buf)?;
        *head = next;
        Ok(())
    }
}

/// Compares the head a device was recovered at with the head the server stored. Fails when
/// the device is behind (lines were cut from the end) or has a different line at the stored
/// position's seq (only detectable when they are the same seq; a device ahead of the stored head
/// is normal, since the server stores the head only from time to time).
pub fn check_head(device: &str, recovered: &ChainHead, stored: &ChainHead) -> Result<(), AuditError> {
    if recovered.seq < stored.seq {
        return Err(AuditError::HeadMismatch {
            device: device.to_owned(),
            message: format!(
                "the log ends at seq {} but seq {} was recorded: lines were removed from the end",
                recovered.seq, stored.seq
            ),
        });
    }
    if recovered.seq == stored.seq && recovered.hash != stored.hash {
        return Err(AuditError::HeadMismatch {
            device: device.to_owned(),
            message: format!("the line at seq {} is not the one that was recorded", stored.seq),
        });
    }
    Ok(())
}

/// The head after the device's last line, checked under `key`.
fn recover_head(device: &dyn AuditDevice, key: &ChainKey) -> Result<ChainHead, AuditError> {
    let Some(line) = device.last_line()? else {
        return Ok(ChainHead::GENESIS);
    };
    let refuse = |message: String| AuditError::HeadMismatch {
        device: device.name().to_owned(),
        message,
    };
    let sealed = chain::open(&line).map_err(|reason| refuse(format!("last line: {reason}")))?;
    if sealed.computed != sealed.hash {
        return Err(refuse(format!("last line (seq {}) was changed", sealed.seq)));
    }
    if key.mac(&sealed.hash) != sealed.mac {
        return Err(refuse(format!(
            "last line (seq {}) is not authenticated by this device's key",
            sealed.seq
        )));
    }
    Ok(ChainHead {
        seq: sealed.seq,
        hash: sealed.hash,
    })
}

/// Runs `f` with this thread's line buffer (or a fresh one if it is in use).
fn with_buffer<T>(f: impl FnOnce(&mut Vec<u8>) -> T) -> T {
    thread_local! {
        static BUF: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(4096));
    }
    BUF.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let out = f(&mut buf);
            if buf.capacity() > 1 << 20 {
                *buf = Vec::with_capacity(4096);
            }
            out
        }
        Err(_) => f(&mut Vec::new()),
    })
}
