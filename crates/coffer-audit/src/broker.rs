//! The audit broker: redact, chain and write every event to every device; fail closed.
//!
//! For each device, an event goes through:
//! 1. **Prepare** (on the request's own task, in parallel with other requests, outside any
//!    lock): the device's [`Redactor`] serializes the event and hashes its secret values; the
//!    body (the JSON without its closing brace) is hashed with SHA-256.
//! 2. **Seal and write** (under the device's chain lock, so that chain order is file order):
//!    the chain member is appended (seq, prev, hash, mac: a SHA-256 of ~150 bytes and an HMAC
//!    of 32 under a key set up once), the line goes to the device, and the device's
//!    [`ChainHead`] advances past the lines the device wrote, and only those.
//! 3. **Count**: if no device recorded the event, the result is
//!    [`AuditError::NoDeviceRecorded`] and the caller must fail the request (fail closed, as
//!    Vault does). A device that fails while another succeeds is reported in the
//!    [`LogReceipt`], so the server can warn.
//!
//! **Group commit.** [`AuditBroker::record`] (the server's path) does step 1, then queues the
//! body for the device's writer task and waits for its answer. The writer, woken by the first
//! line of a batch, first yields once to the runtime so that the other requests that are ready
//! to run reach their audit step too, then takes every queued line, seals them in queue order,
//! writes them with one `write` call and answers each waiting request: 64 connections share one
//! write instead of contending for 64. A request's response still waits until its own line is
//! written (or has failed): nothing is acknowledged before it is recorded. The writer tasks are
//! started by [`AuditBroker::start_writers`]; without them (or after [`AuditBroker::close`])
//! `record` writes the line itself, like [`AuditBroker::log`], the synchronous path for tools
//! and tests. Both paths take the same chain lock, so they can be mixed.
//!
//! A broker with no devices records nothing and returns `Ok` with `recorded == 0`, as Vault does
//! when no audit device is enabled; the server decides whether to require one.

use std::cell::RefCell;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

use coffer_crypto::hash::sha256;

use crate::chain::{self, ChainHead, ChainKey};
use crate::device::AuditDevice;
use crate::event::AuditEvent;
use crate::redact::Redactor;
use crate::{AuditError, DeviceKey};

/// Where a queued line's outcome arrives.
type Answer = oneshot::Receiver<Result<(), AuditError>>;

/// Fans events out to the audit devices.
#[derive(Default)]
pub struct AuditBroker {
    slots: Vec<Arc<Slot>>,
    /// The writer tasks, one per device, while group commit runs.
    writers: Mutex<Vec<JoinHandle<()>>>,
}

struct Slot {
    device: Arc<dyn AuditDevice>,
    redactor: Redactor,
    chain_key: ChainKey,
    /// Held while sealing and writing, so lines reach the device in chain order.
    chain: Mutex<Chain>,
    /// Lines waiting for the writer task.
    queue: Mutex<Queue>,
    /// Wakes the writer task when the queue stops being empty (or closes).
    wake: Notify,
}

struct Chain {
    /// The head after the last line the device wrote.
    head: ChainHead,
    /// The sealed lines of the batch being written (kept to reuse its allocation).
    buf: Vec<u8>,
    /// The head after each line of that batch.
    heads: Vec<ChainHead>,
}

#[derive(Default)]
struct Queue {
    batch: Batch,
    /// Whether a writer task takes the queued lines (else `record` writes them itself).
    writer: bool,
    /// Closed: no more lines are queued; the writer writes what is queued and stops.
    closed: bool,
}

/// Prepared lines waiting for the writer: their bodies back to back in one buffer, which the
/// queue and the writer swap and reuse, so queueing a line allocates nothing but its answer
/// channel.
#[derive(Default)]
struct Batch {
    bodies: Vec<u8>,
    lines: Vec<Queued>,
}

/// One prepared line: where its body is in [`Batch::bodies`], its SHA-256, and where its
/// outcome goes.
struct Queued {
    end: usize,
    digest: [u8; 32],
    done: oneshot::Sender<Result<(), AuditError>>,
}

impl Batch {
    /// Each line's body and digest, in queue order.
    fn entries(&self) -> impl Iterator<Item = (&[u8], &[u8; 32])> {
        let mut start = 0;
        self.lines.iter().map(move |q| {
            let body = self.bodies.get(start..q.end).unwrap_or_default();
            start = q.end;
            (body, &q.digest)
        })
    }

    fn clear(&mut self) {
        self.bodies.clear();
        self.lines.clear();
        if self.bodies.capacity() > 4 << 20 {
            self.bodies = Vec::new();
        }
    }
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

impl LogReceipt {
    fn finish(self) -> Result<Self, AuditError> {
        if self.recorded == 0
            && let Some(first) = self.failed.first()
        {
            return Err(AuditError::NoDeviceRecorded {
                failed: self.failed.len(),
                first: first.to_string(),
            });
        }
        Ok(self)
    }
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
        let head = recover_head(device.as_ref(), &chain_key).map_err(|(e, _)| e)?;
        self.push(device, redactor, chain_key, head);
        Ok(head)
    }

    /// Adds a device whatever its log holds: the server's path, which must never let a file
    /// outside the barrier's control lock an operator out. Where [`AuditBroker::add_device`]
    /// refuses a device whose last line cannot be read or verified, this continues the chain
    /// anyway and returns why it could not prove continuity, for the caller to report (log it,
    /// and record it as an event). It continues from the last line's claimed seq and hash when
    /// the line parses (so `coffer audit verify` still names the changed line and finds no
    /// other break), else from the start of a new chain (which `verify` shows as a break).
    pub fn add_device_reporting(
        &mut self,
        device: Arc<dyn AuditDevice>,
        key: &DeviceKey,
    ) -> (ChainHead, Option<AuditError>) {
        let chain_key = key.chain_key();
        let (head, problem) = match recover_head(device.as_ref(), &chain_key) {
            Ok(head) => (head, None),
            Err((e, head)) => (head, Some(e)),
        };
        self.push(device, key.redactor(), chain_key, head);
        (head, problem)
    }

    fn push(&mut self, device: Arc<dyn AuditDevice>, redactor: Redactor, chain_key: ChainKey, head: ChainHead) {
        self.slots.push(Arc::new(Slot {
            device,
            redactor,
            chain_key,
            chain: Mutex::new(Chain {
                head,
                buf: Vec::new(),
                heads: Vec::new(),
            }),
            queue: Mutex::new(Queue::default()),
            wake: Notify::new(),
        }));
    }

    /// How many devices there are.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no devices.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Starts group commit: one writer task per device on the current Tokio runtime. Fails
    /// (and changes nothing) outside a runtime; calling it again does nothing.
    pub fn start_writers(&self) -> Result<(), AuditError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| AuditError::Device {
            device: "broker".to_owned(),
            message: "group commit needs a Tokio runtime".to_owned(),
        })?;
        let mut writers = self.writers.lock();
        for slot in &self.slots {
            let mut queue = slot.queue.lock();
            if queue.writer || queue.closed {
                continue;
            }
            queue.writer = true;
            writers.push(runtime.spawn(run_writer(slot.clone())));
        }
        Ok(())
    }

    /// Stops group commit: lines queued so far are still written, later ones are refused
    /// (their requests fail). [`AuditBroker::closed`] waits until the writers are done.
    pub fn close(&self) {
        for slot in &self.slots {
            slot.queue.lock().closed = true;
            slot.wake.notify_one();
        }
    }

    /// Waits until every writer task has written its last batch and stopped (after
    /// [`AuditBroker::close`]).
    pub async fn closed(&self) {
        let writers = std::mem::take(&mut *self.writers.lock());
        for w in writers {
            let _ = w.await;
        }
    }

    /// Redacts, chains and writes `event` to every device, on the calling thread. `Err` means
    /// no device recorded it: the request must fail. For tools and tests; the server uses
    /// [`AuditBroker::record`].
    pub fn log(&self, event: &AuditEvent) -> Result<LogReceipt, AuditError> {
        let mut receipt = LogReceipt::default();
        for slot in &self.slots {
            match with_buffer(|buf| slot.log(event, buf)) {
                Ok(()) => receipt.recorded += 1,
                Err(e) => receipt.failed.push(e),
            }
        }
        receipt.finish()
    }

    /// Redacts, chains and writes `event` to every device through group commit, returning once
    /// every device has written the line or failed. `Err` means no device recorded it: the
    /// request must fail. If this future is dropped after the line was queued, the line is
    /// still written.
    pub async fn record(&self, event: &AuditEvent) -> Result<LogReceipt, AuditError> {
        let mut receipt = LogReceipt::default();
        let mut waiting = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let queued = with_buffer(|body| {
                let digest = slot.prepare(event, body)?;
                match slot.enqueue(body, digest) {
                    Some(queued) => Ok(Some(queued)),
                    None => slot.write_one(body, &digest).map(|()| None),
                }
            });
            match queued {
                Ok(Some(Ok(rx))) => waiting.push((slot, rx)),
                Ok(Some(Err(closed))) => receipt.failed.push(closed),
                Ok(None) => receipt.recorded += 1,
                Err(e) => receipt.failed.push(e),
            }
        }
        for (slot, rx) in waiting {
            match rx.await {
                Ok(Ok(())) => receipt.recorded += 1,
                Ok(Err(e)) => receipt.failed.push(e),
                Err(_) => receipt.failed.push(slot.error("writer stopped")),
            }
        }
        receipt.finish()
    }

    /// Each device's name and current head, for the server to keep in sealed storage.
    pub fn heads(&self) -> Vec<(String, ChainHead)> {
        self.slots
            .iter()
            .map(|s| (s.device.name().to_owned(), s.chain.lock().head))
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

impl Drop for AuditBroker {
    /// The writers hold their devices, not the broker: tell them to finish.
    fn drop(&mut self) {
        self.close();
    }
}

impl Slot {
    /// Serializes `event` into `buf` (cleared first) as a line body, without its closing brace,
    /// and returns the body's SHA-256.
    fn prepare(&self, event: &AuditEvent, buf: &mut Vec<u8>) -> Result<[u8; 32], AuditError> {
        buf.clear();
        self.redactor.write_event(event, buf)?;
        // The serializer always ends an object with `}`; the chain member goes before it.
        if buf.pop() != Some(b'}') {
            return Err(AuditError::Serialize);
        }
        Ok(sha256(buf))
    }

    fn log(&self, event: &AuditEvent, buf: &mut Vec<u8>) -> Result<(), AuditError> {
        let digest = self.prepare(event, buf)?;
        self.write_one(buf, &digest)
    }

    fn write_one(&self, body: &[u8], digest: &[u8; 32]) -> Result<(), AuditError> {
        let mut chain = self.chain.lock();
        let (_, error) = self.seal_and_write(&mut chain, std::iter::once((body, digest)));
        error.map_or(Ok(()), Err)
    }

    /// Seals `lines` after the chain's head, writes them with one device call and advances the
    /// head past the lines written. Returns how many were written, and the error if not all.
    fn seal_and_write<'a>(
        &self,
        chain: &mut Chain,
        lines: impl Iterator<Item = (&'a [u8], &'a [u8; 32])>,
    ) -> (usize, Option<AuditError>) {
        let Chain { head, buf, heads } = chain;
        buf.clear();
        heads.clear();
        let mut next = *head;
        for (body, digest) in lines {
            buf.extend_from_slice(body);
            next = chain::seal(buf, digest, &next, &self.chain_key);
            heads.push(next);
        }
        let outcome = match self.device.write(buf) {
            Ok(()) => (heads.len(), None),
            Err(f) => (f.written.min(heads.len()), Some(f.error)),
        };
        let device = self.device.name().to_owned();
        metrics::counter!("coffer_audit_lines_written_total", "device" => device.clone()).increment(outcome.0 as u64);
        if outcome.1.is_some() {
            let lost = (heads.len() - outcome.0) as u64;
            metrics::counter!("coffer_audit_lines_failed_total", "device" => device).increment(lost);
        }
        if let Some(last) = outcome.0.checked_sub(1).and_then(|i| heads.get(i)) {
            *head = *last;
        }
        if buf.capacity() > 4 << 20 {
            *buf = Vec::new();
        }
        outcome
    }

    /// Queues a prepared line for the writer task. `None` when there is no writer (the caller
    /// writes the line itself); `Some(Err)` after close: `log` may still write to the device
    /// directly, but `record` refuses, so that no line is written after the server let go of
    /// the device.
    fn enqueue(&self, body: &[u8], digest: [u8; 32]) -> Option<Result<Answer, AuditError>> {
        let mut queue = self.queue.lock();
        if queue.closed {
            return Some(Err(self.error("closed")));
        }
        if !queue.writer {
            return None;
        }
        let (done, rx) = oneshot::channel();
        let first = queue.batch.lines.is_empty();
        queue.batch.bodies.extend_from_slice(body);
        let end = queue.batch.bodies.len();
        queue.batch.lines.push(Queued { end, digest, done });
        drop(queue);
        metrics::gauge!("coffer_audit_queue_depth", "device" => self.device.name().to_owned()).increment(1.0);
        if first {
            self.wake.notify_one();
        }
        Some(Ok(rx))
    }

    /// Writes one batch, answers its waiters and clears it.
    fn commit(&self, batch: &mut Batch) {
        metrics::gauge!("coffer_audit_queue_depth", "device" => self.device.name().to_owned())
            .decrement(batch.lines.len() as f64);
        let mut chain = self.chain.lock();
        let (written, error) = self.seal_and_write(&mut chain, batch.entries());
        drop(chain);
        for (i, q) in batch.lines.drain(..).enumerate() {
            let outcome = match &error {
                Some(e) if i >= written => Err(self.copy_error(e)),
                _ => Ok(()),
            };
            // A request that went away no longer waits; its line is written all the same.
            let _ = q.done.send(outcome);
        }
        batch.clear();
    }

    /// The same failure for another waiter of the batch (`AuditError` is not `Clone`).
    fn copy_error(&self, e: &AuditError) -> AuditError {
        match e {
            AuditError::Device { device, message } => AuditError::Device {
                device: device.clone(),
                message: message.clone(),
            },
            other => self.error(&other.to_string()),
        }
    }

    fn error(&self, message: &str) -> AuditError {
        AuditError::Device {
            device: self.device.name().to_owned(),
            message: message.to_owned(),
        }
    }
}

/// A device's writer task: takes every queued line, writes them as one batch, answers each.
async fn run_writer(slot: Arc<Slot>) {
    let _stopped = WriterStopped(&slot);
    let mut batch = Batch::default();
    loop {
        slot.wake.notified().await;
        // Let the requests that are ready to run reach their audit step first, so that their
        // lines join this batch. When nothing else is ready this returns at once.
        tokio::task::yield_now().await;
        let closed = {
            let mut queue = slot.queue.lock();
            std::mem::swap(&mut queue.batch, &mut batch);
            queue.closed
        };
        if !batch.lines.is_empty() {
            slot.commit(&mut batch);
        }
        if closed {
            return;
        }
    }
}

/// However the writer task ends (closed, or dropped with its runtime), later lines are written
/// by their requests directly, and lines still queued fail: no request waits forever.
struct WriterStopped<'a>(&'a Slot);

impl Drop for WriterStopped<'_> {
    fn drop(&mut self) {
        let orphans = {
            let mut queue = self.0.queue.lock();
            queue.writer = false;
            std::mem::take(&mut queue.batch.lines)
        };
        metrics::gauge!("coffer_audit_queue_depth", "device" => self.0.device.name().to_owned())
            .decrement(orphans.len() as f64);
        for q in orphans {
            let _ = q.done.send(Err(self.0.error("writer stopped")));
        }
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

/// The head after the device's last line, checked under `key`. On failure, also the head a
/// lenient caller continues from: the line's claimed head when it parses, else a new chain.
fn recover_head(device: &dyn AuditDevice, key: &ChainKey) -> Result<ChainHead, (AuditError, ChainHead)> {
    let refuse = |message: String| AuditError::HeadMismatch {
        device: device.name().to_owned(),
        message,
    };
    let line = match device.last_line() {
        Ok(Some(line)) => line,
        Ok(None) => return Ok(ChainHead::GENESIS),
        Err(e) => return Err((e, ChainHead::GENESIS)),
    };
    let sealed = chain::open(&line).map_err(|reason| (refuse(format!("last line: {reason}")), ChainHead::GENESIS))?;
    let claimed = ChainHead {
        seq: sealed.seq,
        hash: sealed.hash,
    };
    if sealed.computed != sealed.hash {
        return Err((refuse(format!("last line (seq {}) was changed", sealed.seq)), claimed));
    }
    if key.mac(&sealed.hash) != sealed.mac {
        return Err((
            refuse(format!(
                "last line (seq {}) is not authenticated by this device's key",
                sealed.seq
            )),
            claimed,
        ));
    }
    Ok(claimed)
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
                *buf = Vec::new();
            }
            out
        }
        Err(_) => f(&mut Vec::new()),
    })
}
