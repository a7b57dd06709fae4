//! Storage for Coffer, in two layers.
//!
//! * [`PhysicalBackend`]: the durable, *untrusted* ordered key-value store. It only ever sees
//!   ciphertext produced by the barrier. Implementations: [`memory::MemoryBackend`],
//!   [`redb_backend::RedbBackend`]; tests wrap either in [`fault::FaultInjector`]. Every
//!   backend must pass [`testing::exercise_backend`].
//! * [`Storage`]: the plaintext view that engines see (the barrier implements it, and
//!   [`view::StorageView`] narrows it to a prefix). [`memory::MemoryStorage`] is a plaintext
//!   implementation for engine unit tests.
//!
//! Keys are `/`-separated UTF-8 paths. `list(prefix)` returns the keys *below* `prefix`
//! relative to it, in byte order, one level deep: a child "directory" is returned once with a
//! trailing `/` (Vault's `physical.Backend.List` contract). `scan(prefix, after, limit)` returns
//! full keys under `prefix` recursively, in order, for pagination over large key sets;
//! `scan_back(prefix, before, limit)` is the same walk in descending order.
//!
//! Backups are taken here, below the barrier: [`PhysicalBackend::snapshot`] reads every key
//! and value (ciphertext, and the barrier's own `core/` records) as of one moment, and
//! [`PhysicalBackend::restore`] replaces the whole store atomically. [`snapshot`] is the file
//! format that carries them.

pub mod cache;
pub mod fault;
pub mod memory;
pub mod redb_backend;
pub mod snapshot;
pub mod testing;
pub mod view;

use std::ops::Bound;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_crypto::SecretBytes;

/// A storage failure. Never carries values.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum StorageError {
    /// The barrier is sealed: no plaintext can be read or written.
    #[error("coffer is sealed")]
    Sealed,
    /// The backend failed (I/O, corruption, lost connection). The message names no value.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// Stored data could not be decrypted or decoded.
    #[error("stored data is corrupt or not authentic at {0}")]
    Corrupt(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// One write in an atomic batch: `Some` puts, `None` deletes.
#[derive(Clone)]
pub struct PhysicalWrite {
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// One stored key and its value, as a snapshot carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
}

/// Entries of a whole store in ascending key order, a chunk at a time: what
/// [`PhysicalBackend::snapshot`] yields and [`PhysicalBackend::restore`] consumes.
#[async_trait]
pub trait EntryStream: Send {
    /// The next entries (at least one), or an empty chunk at the end. After an error or the
    /// end the stream is not called again. A source that checks its input (a snapshot file)
    /// reports a bad or truncated input as an error at the latest here, instead of the end.
    async fn next_chunk(&mut self) -> Result<Vec<Entry>>;
}

/// A consistent copy of a store being read: how many entries it holds and the entries.
pub struct Snapshot {
    pub entries: u64,
    pub stream: Box<dyn EntryStream>,
}

/// An [`EntryStream`] over entries already in memory, a thousand per chunk.
pub struct VecEntryStream(std::vec::IntoIter<Entry>);

impl VecEntryStream {
    pub fn new(entries: Vec<Entry>) -> Self {
        Self(entries.into_iter())
    }
}

#[async_trait]
impl EntryStream for VecEntryStream {
    async fn next_chunk(&mut self) -> Result<Vec<Entry>> {
        Ok(self.0.by_ref().take(1000).collect())
    }
}

/// The durable, untrusted, ordered key-value store under the barrier.
///
/// A call that returns `Ok` is durable: after a crash it is visible. `batch` applies all its
/// writes or none.
#[async_trait]
pub trait PhysicalBackend: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Keys one level below `prefix`, relative to it, sorted; sub-directories once, ending in `/`.
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    /// Up to `limit` full keys under `prefix` (recursive), strictly after `after` if given, sorted.
    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>>;
    /// [`scan`](Self::scan) backwards: up to `limit` full keys under `prefix`, strictly before
    /// `before` if given, in descending order.
    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>>;
    /// Applies every write atomically.
    async fn batch(&self, writes: Vec<PhysicalWrite>) -> Result<()>;
    /// Every key and value as of one moment (one read transaction): writes made while the
    /// stream is read are not in it, and every write made before it began is. Reading it does
    /// not block writers. Streamed: the store is not copied into memory unless it lives there.
    async fn snapshot(&self) -> Result<Snapshot>;
    /// Replaces the whole store with the entries of `source`, atomically: the old contents are
    /// gone and the new ones are durable when it returns `Ok`, and if `source` fails (or the
    /// store does), nothing has changed. Returns the number of entries written. Callers must
    /// keep other writers out meanwhile (the barrier seals first).
    async fn restore(&self, source: &mut dyn EntryStream) -> Result<u64>;
}

/// One write in an atomic logical batch: `Some` puts, `None` deletes.
#[derive(Clone)]
pub struct Write {
    pub key: String,
    pub value: Option<SecretBytes>,
}

impl Write {
    pub fn put(key: impl Into<String>, value: SecretBytes) -> Self {
        Self {
            key: key.into(),
            value: Some(value),
        }
    }

    pub fn delete(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            value: None,
        }
    }
}

/// The plaintext storage that engines see. Same contract as [`PhysicalBackend`], with values
/// in [`SecretBytes`].
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>>;
    async fn put(&self, key: &str, value: SecretBytes) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<()>;
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>>;
    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>>;
    async fn batch(&self, writes: Vec<Write>) -> Result<()>;

    /// Deletes every key, a thousand per batch (dev-only resets of a whole view).
    async fn clear(&self) -> Result<()> {
        loop {
            let keys = self.scan("", None, 1000).await?;
            if keys.is_empty() {
                return Ok(());
            }
            self.batch(keys.into_iter().map(Write::delete).collect()).await?;
        }
    }
}

/// The key range that `scan_back(prefix, before, _)` walks, lowest bound first, or `None` if it
/// is empty. Every key under `prefix` sorts before [`prefix_end`]`(prefix)`, so the walk never
/// passes keys outside the prefix.
pub fn back_range(prefix: &str, before: Option<&str>) -> Option<(Bound<String>, Bound<String>)> {
    let end = prefix_end(prefix);
    let upper = match (before, end) {
        (Some(b), Some(end)) if b >= end.as_str() => Bound::Excluded(end),
        (Some(b), _) => {
            if b <= prefix {
                return None;
            }
            Bound::Excluded(b.to_string())
        }
        (None, Some(end)) => Bound::Excluded(end),
        (None, None) => Bound::Unbounded,
    };
    Some((Bound::Included(prefix.to_string()), upper))
}

/// The least string greater than every string that starts with `prefix` (its last character
/// that has a successor, replaced by that successor), or `None` if no such string exists (an
/// empty prefix). UTF-8 byte order is code point order, so this holds for stored keys too.
pub fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(c) = chars.pop() {
        let next = match u32::from(c) + 1 {
            0xD800 => Some('\u{E000}'),
            n => char::from_u32(n),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

pub type DynStorage = Arc<dyn Storage>;
pub type DynBackend = Arc<dyn PhysicalBackend>;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
