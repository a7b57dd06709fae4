//! In-memory storage: a physical backend for dev mode and tests, and a plaintext
//! [`Storage`](crate::Storage) for engine unit tests.

use std::collections::BTreeMap;

use async_trait::async_trait;
use coffer_crypto::SecretBytes;
use parking_lot::RwLock;

use crate::{Entry, EntryStream, PhysicalBackend, PhysicalWrite, Result, Snapshot, Storage, VecEntryStream, Write};

/// Lists the keys one level below `prefix` in a sorted map, directories once with a `/`.
fn list_level<V>(map: &BTreeMap<String, V>, prefix: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for key in map.range(prefix.to_string()..).map(|(k, _)| k) {
        let Some(rest) = key.strip_prefix(prefix) else {
            break;
        };
        let entry = match rest.find('/') {
            Some(i) => &rest[..=i],
            None => rest,
        };
        if out.last().map(String::as_str) != Some(entry) {
            out.push(entry.to_string());
        }
    }
    out
}

fn scan_keys<V>(map: &BTreeMap<String, V>, prefix: &str, after: Option<&str>, limit: usize) -> Vec<String> {
    use std::ops::Bound;
    let start = match after {
        Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
        _ => Bound::Included(prefix.to_string()),
    };
    map.range((start, Bound::Unbounded))
        .map(|(k, _)| k)
        .take_while(|k| k.starts_with(prefix))
        .take(limit)
        .cloned()
        .collect()
}

fn scan_keys_back<V>(map: &BTreeMap<String, V>, prefix: &str, before: Option<&str>, limit: usize) -> Vec<String> {
    let Some(range) = crate::back_range(prefix, before) else {
        return Vec::new();
    };
    map.range(range)
        .rev()
        .map(|(k, _)| k)
        .filter(|k| k.starts_with(prefix))
        .take(limit)
        .cloned()
        .collect()
}

/// A sorted map behind a lock: the one implementation behind both in-memory stores.
struct SortedMap<V> {
    map: RwLock<BTreeMap<String, V>>,
}

impl<V> Default for SortedMap<V> {
    fn default() -> Self {
        Self {
            map: RwLock::new(BTreeMap::new()),
        }
    }
}

impl<V: Clone> SortedMap<V> {
    fn get(&self, key: &str) -> Option<V> {
        self.map.read().get(key).cloned()
    }

    fn put(&self, key: &str, value: V) {
        self.map.write().insert(key.to_string(), value);
    }

    fn delete(&self, key: &str) {
        self.map.write().remove(key);
    }

    fn list(&self, prefix: &str) -> Vec<String> {
        list_level(&self.map.read(), prefix)
    }

    fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Vec<String> {
        scan_keys(&self.map.read(), prefix, after, limit)
    }

    fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Vec<String> {
        scan_keys_back(&self.map.read(), prefix, before, limit)
    }

    /// Applies every write under one lock, so readers see all of them or none.
    fn batch(&self, writes: impl IntoIterator<Item = (String, Option<V>)>) {
        let mut map = self.map.write();
        for (key, value) in writes {
            match value {
                Some(v) => map.insert(key, v),
                None => map.remove(&key),
            };
        }
    }
}

/// A physical backend that keeps ciphertext in a `BTreeMap`. Nothing survives the process.
#[derive(Default)]
pub struct MemoryBackend {
    map: SortedMap<Vec<u8>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PhysicalBackend for MemoryBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.map.get(key))
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.map.put(key, value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.map.delete(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.map.list(prefix))
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        Ok(self.map.scan(prefix, after, limit))
    }

    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>> {
        Ok(self.map.scan_back(prefix, before, limit))
    }

    async fn batch(&self, writes: Vec<PhysicalWrite>) -> Result<()> {
        self.map.batch(writes.into_iter().map(|w| (w.key, w.value)));
        Ok(())
    }

    /// A copy of the map taken under its read lock: the store lives in memory anyway.
    async fn snapshot(&self) -> Result<Snapshot> {
        let entries: Vec<Entry> = self
            .map
            .map
            .read()
            .iter()
            .map(|(key, value)| Entry {
                key: key.clone(),
                value: value.clone(),
            })
            .collect();
        Ok(Snapshot {
            entries: entries.len() as u64,
            stream: Box::new(VecEntryStream::new(entries)),
        })
    }

    /// Builds the new map aside and swaps it in only once `source` has ended well.
    async fn restore(&self, source: &mut dyn EntryStream) -> Result<u64> {
        let mut next = BTreeMap::new();
        loop {
            let chunk = source.next_chunk().await?;
            if chunk.is_empty() {
                break;
            }
            next.extend(chunk.into_iter().map(|e| (e.key, e.value)));
        }
        let count = next.len() as u64;
        *self.map.map.write() = next;
        Ok(count)
    }
}

/// Plaintext in-memory [`Storage`], for engine tests that do not need the barrier.
#[derive(Default)]
pub struct MemoryStorage {
    map: SortedMap<SecretBytes>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>> {
        Ok(self.map.get(key))
    }

    async fn put(&self, key: &str, value: SecretBytes) -> Result<()> {
        self.map.put(key, value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.map.delete(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(self.map.list(prefix))
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        Ok(self.map.scan(prefix, after, limit))
    }

    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>> {
        Ok(self.map.scan_back(prefix, before, limit))
    }

    async fn batch(&self, writes: Vec<Write>) -> Result<()> {
        self.map.batch(writes.into_iter().map(|w| (w.key, w.value)));
        Ok(())
    }
}
