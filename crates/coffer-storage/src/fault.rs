//! A fault-injecting wrapper around any [`PhysicalBackend`], for failure tests.
//!
//! [`FaultInjector`] forwards every call to the backend it wraps unless told to fail: the next
//! `n` writes, the next `n` reads, the `n`th operation from now (to fail each step of a
//! sequence in turn), or every write that touches a key under a prefix. An
//! injected failure is `StorageError::Backend("injected fault")` and reaches the inner backend
//! not at all, so a failed `batch` writes nothing. Operations are counted either way.
//!
//! Reads are `get`, `list`, `scan` and `snapshot`; writes are `put`, `delete`, `batch` and
//! `restore` (one operation per batch or restore, however many keys it holds).
//!
//! [`FailingStorage`] is the same idea one layer up, on the plaintext `Storage` engines see.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::{EntryStream, PhysicalBackend, PhysicalWrite, Result, Snapshot, StorageError};

/// The message of every injected failure.
pub const INJECTED: &str = "injected fault";

/// How many operations a [`FaultInjector`] has seen and failed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpCounts {
    /// Read operations attempted (including failed ones).
    pub reads: u64,
    /// Write operations attempted (including failed ones).
    pub writes: u64,
    /// Operations failed on purpose.
    pub injected: u64,
}

/// Wraps a backend and fails chosen operations on purpose.
pub struct FaultInjector {
    inner: Arc<dyn PhysicalBackend>,
    state: Mutex<FaultState>,
}

#[derive(Default)]
struct FaultState {
    fail_reads: u64,
    fail_writes: u64,
    write_prefixes: Vec<String>,
    /// The operation number (reads and writes counted together) that fails, once.
    fail_at_op: Option<u64>,
    counts: OpCounts,
}

impl FaultState {
    /// Whether the operation just counted is the one chosen by [`FaultInjector::fail_op_in`].
    fn is_chosen_op(&mut self) -> bool {
        if self.fail_at_op == Some(self.counts.reads + self.counts.writes) {
            self.fail_at_op = None;
            return true;
        }
        false
    }
}

impl FaultInjector {
    /// Wraps `inner`, injecting nothing until told to.
    pub fn new(inner: Arc<dyn PhysicalBackend>) -> Self {
        Self {
            inner,
            state: Mutex::new(FaultState::default()),
        }
    }

    /// Fails the next `n` write operations (in addition to any already pending).
    pub fn fail_next_writes(&self, n: u64) {
        let mut s = self.state.lock();
        s.fail_writes = s.fail_writes.saturating_add(n);
    }

    /// Fails the next `n` read operations (in addition to any already pending).
    pub fn fail_next_reads(&self, n: u64) {
        let mut s = self.state.lock();
        s.fail_reads = s.fail_reads.saturating_add(n);
    }

    /// Fails the `n`th operation from now, read or write (1 = the next one), once.
    pub fn fail_op_in(&self, n: u64) {
        let mut s = self.state.lock();
        s.fail_at_op = Some(s.counts.reads + s.counts.writes + n);
    }

    /// Fails every write that touches a key starting with `prefix`, until [`Self::clear`].
    pub fn fail_writes_with_prefix(&self, prefix: impl Into<String>) {
        self.state.lock().write_prefixes.push(prefix.into());
    }

    /// Stops injecting faults. The counts are kept.
    pub fn clear(&self) {
        let mut s = self.state.lock();
        s.fail_reads = 0;
        s.fail_writes = 0;
        s.fail_at_op = None;
        s.write_prefixes.clear();
    }

    /// The operations seen so far.
    pub fn counts(&self) -> OpCounts {
        self.state.lock().counts
    }

    /// The wrapped backend, for inspecting what really got written.
    pub fn inner(&self) -> &Arc<dyn PhysicalBackend> {
        &self.inner
    }

    /// Counts a read and decides whether it fails.
    fn read_gate(&self) -> Result<()> {
        let mut s = self.state.lock();
        s.counts.reads += 1;
        if s.is_chosen_op() {
            s.counts.injected += 1;
            return Err(injected());
        }
        if s.fail_reads > 0 {
            s.fail_reads -= 1;
            s.counts.injected += 1;
            return Err(injected());
        }
        Ok(())
    }

    /// Counts a write touching `keys` and decides whether it fails.
    fn write_gate<'a>(&self, mut keys: impl Iterator<Item = &'a str>) -> Result<()> {
        let mut s = self.state.lock();
        s.counts.writes += 1;
        if s.is_chosen_op() {
            s.counts.injected += 1;
            return Err(injected());
        }
        let by_prefix = keys.any(|k| s.write_prefixes.iter().any(|p| k.starts_with(p.as_str())));
        if by_prefix {
            s.counts.injected += 1;
            return Err(injected());
        }
        if s.fail_writes > 0 {
            s.fail_writes -= 1;
            s.counts.injected += 1;
            return Err(injected());
        }
        Ok(())
    }
}

fn injected() -> StorageError {
    StorageError::Backend(INJECTED.to_string())
}

#[async_trait]
impl PhysicalBackend for FaultInjector {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.read_gate()?;
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.write_gate(std::iter::once(key))?;
        self.inner.put(key, value).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.write_gate(std::iter::once(key))?;
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.read_gate()?;
        self.inner.list(prefix).await
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.read_gate()?;
        self.inner.scan(prefix, after, limit).await
    }

    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.read_gate()?;
        self.inner.scan_back(prefix, before, limit).await
    }

    async fn batch(&self, writes: Vec<PhysicalWrite>) -> Result<()> {
        self.write_gate(writes.iter().map(|w| w.key.as_str()))?;
        self.inner.batch(writes).await
    }

    /// One read, however many entries the stream yields.
    async fn snapshot(&self) -> Result<Snapshot> {
        self.read_gate()?;
        self.inner.snapshot().await
    }

    /// One write; the prefix faults do not apply (the keys are not known up front).
    async fn restore(&self, source: &mut dyn EntryStream) -> Result<u64> {
        self.write_gate(std::iter::empty())?;
        self.inner.restore(source).await
    }
}

/// A plaintext [`Storage`](crate::Storage) in memory whose writes can be made to fail: the
/// logical-layer twin of [`FaultInjector`], for engine tests that prove a failed write leaves
/// nothing half-written. Reads never fail; `put`, `delete` and `batch` count as writes.
#[derive(Default)]
pub struct FailingStorage {
    inner: crate::memory::MemoryStorage,
    writes: AtomicU64,
    /// The write count at which the next single failure happens (`u64::MAX`: none).
    fail_at: AtomicU64,
    failing: std::sync::atomic::AtomicBool,
}

impl FailingStorage {
    pub fn new() -> Self {
        Self {
            fail_at: AtomicU64::new(u64::MAX),
            ..Self::default()
        }
    }

    /// Fails the `n`th write from now (1 = the next one), once.
    pub fn fail_write_in(&self, n: u64) {
        let now = self.writes.load(Ordering::SeqCst);
        self.fail_at.store(now.saturating_add(n), Ordering::SeqCst);
    }

    /// While set, every write fails.
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// How many writes were attempted (failed ones included).
    pub fn writes(&self) -> u64 {
        self.writes.load(Ordering::SeqCst)
    }

    fn gate(&self) -> Result<()> {
        let n = self.writes.fetch_add(1, Ordering::SeqCst) + 1;
        if self.failing.load(Ordering::SeqCst) || n == self.fail_at.load(Ordering::SeqCst) {
            return Err(injected());
        }
        Ok(())
    }
}

#[async_trait]
impl crate::Storage for FailingStorage {
    async fn get(&self, key: &str) -> Result<Option<coffer_crypto::SecretBytes>> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: coffer_crypto::SecretBytes) -> Result<()> {
        self.gate()?;
        self.inner.put(key, value).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.gate()?;
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.inner.list(prefix).await
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.inner.scan(prefix, after, limit).await
    }

    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.inner.scan_back(prefix, before, limit).await
    }

    async fn batch(&self, writes: Vec<crate::Write>) -> Result<()> {
        self.gate()?;
        self.inner.batch(writes).await
    }
}
