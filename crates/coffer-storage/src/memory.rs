//! In-memory storage: a physical backend for dev mode and tests, and a plaintext
//! [`Storage`](crate::Storage) for engine unit tests.

use std::collections::BTreeMap;

use async_trait::async_trait;
use coffer_crypto::SecretBytes;
use parking_lot::RwLock;

use crate::{PhysicalBackend, PhysicalWrite, Result, Storage, Write};

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

/// A physical backend that keeps ciphertext in a `BTreeMap`. Nothing survives the process.
#[derive(Default)]
pub struct MemoryBackend {
    map: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl MemoryBackend {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl PhysicalBackend for MemoryBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.map.read().get(key).cloned())
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.map.write().insert(key.to_string(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.map.write().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(list_level(&self.map.read(), prefix))
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        Ok(scan_keys(&self.map.read(), prefix, after, limit))
    }

    async fn batch(&self, writes: Vec<PhysicalWrite>) -> Result<()> {
        let mut map = self.map.write();
        for w in writes {
            match w.value {
                Some(v) => map.insert(w.key, v),
                None => map.remove(&w.key),
            };
        }
        Ok(())
    }
}

/// Plaintext in-memory [`Storage`], for engine tests that do not need the barrier.
#[derive(Default)]
pub struct MemoryStorage {
    map: RwLock<BTreeMap<String, SecretBytes>>,
}

impl MemoryStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>> {
        Ok(self.map.read().get(key).cloned())
    }

    async fn put(&self, key: &str, value: SecretBytes) -> Result<()> {
        self.map.write().insert(key.to_string(), value);
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.map.write().remove(key);
        Ok(())
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        Ok(list_level(&self.map.read(), prefix))
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        Ok(scan_keys(&self.map.read(), prefix, after, limit))
    }

    async fn batch(&self, writes: Vec<Write>) -> Result<()> {
        let mut map = self.map.write();
        for w in writes {
            match w.value {
                Some(v) => map.insert(w.key, v),
                None => map.remove(&w.key),
            };
        }
        Ok(())
    }
}
