//! A storage layer that keeps records decoded, for engines that read the same few records on
//! every request (a KMS key's record on every Encrypt and Decrypt, say).
//!
//! [`CachedStorage`] wraps a [`Storage`] and passes every call through. Its
//! [`get_decoded`](CachedStorage::get_decoded) answers from a bounded map of decoded values
//! and fills it on a miss. Every write made through it (`put`, `delete`, `batch`, `clear`)
//! drops the keys it touched once the write has returned, so as long as every writer of those
//! keys goes through the same `CachedStorage`, a read that starts after a write has returned
//! never sees an older value. A miss that raced with a write leaves the map alone: it takes a
//! ticket (the write epoch) before it reads and inserts only if no write ended meanwhile.
//!
//! Several Coffer nodes sharing one database (not built yet) would each need to hear of the
//! others' writes before they could use this.
//!
//! Decoded values live in memory outside the barrier: whoever owns a cache must
//! [`forget`](CachedStorage::forget) it when the barrier seals.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use coffer_crypto::SecretBytes;
use parking_lot::Mutex;

use crate::{DynStorage, Result, Storage, StorageError, Write};

/// A [`Storage`] with a bounded cache of decoded `T` values in front (see the module docs).
pub struct CachedStorage<T> {
    inner: DynStorage,
    state: Mutex<State<T>>,
    max_entries: usize,
}

struct State<T> {
    entries: HashMap<String, Arc<T>>,
    /// Bumped by every write that ends, successful or not.
    epoch: u64,
}

impl<T: Send + Sync + 'static> CachedStorage<T> {
    /// Caches at most `max_entries` values (at least 1); when full, the map is emptied (the
    /// owners of this layer read a handful of hot records, so a full map means a scan).
    pub fn new(inner: DynStorage, max_entries: usize) -> Self {
        Self {
            inner,
            state: Mutex::new(State {
                entries: HashMap::new(),
                epoch: 0,
            }),
            max_entries: max_entries.max(1),
        }
    }

    /// The value at `key`, decoded by `decode` on a miss; `None` when the key is absent
    /// (absence is not cached). A value `decode` refuses is not cached either.
    pub async fn get_decoded<E: From<StorageError>>(
        &self,
        key: &str,
        decode: impl FnOnce(&[u8]) -> std::result::Result<T, E>,
    ) -> std::result::Result<Option<Arc<T>>, E> {
        let ticket = {
            let state = self.state.lock();
            if let Some(v) = state.entries.get(key) {
                return Ok(Some(Arc::clone(v)));
            }
            state.epoch
        };
        let Some(bytes) = self.inner.get(key).await? else {
            return Ok(None);
        };
        let value = Arc::new(decode(bytes.expose())?);
        let mut state = self.state.lock();
        if state.epoch == ticket {
            if state.entries.len() >= self.max_entries {
                state.entries.clear();
            }
            state.entries.insert(key.to_string(), Arc::clone(&value));
        }
        Ok(Some(value))
    }

    /// Drops every cached value (the barrier sealed, or the owner's records changed in a way
    /// it cannot name key by key).
    pub fn forget(&self) {
        let mut state = self.state.lock();
        state.epoch += 1;
        state.entries.clear();
    }

    /// How many values are cached.
    pub fn len(&self) -> usize {
        self.state.lock().entries.len()
    }

    /// Whether no value is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn written<'a>(&self, keys: impl IntoIterator<Item = &'a str>) {
        let mut state = self.state.lock();
        state.epoch += 1;
        for k in keys {
            state.entries.remove(k);
        }
    }
}

#[async_trait]
impl<T: Send + Sync + 'static> Storage for CachedStorage<T> {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: SecretBytes) -> Result<()> {
        let result = self.inner.put(key, value).await;
        self.written([key]);
        result
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let result = self.inner.delete(key).await;
        self.written([key]);
        result
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

    async fn batch(&self, writes: Vec<Write>) -> Result<()> {
        let keys: Vec<String> = writes.iter().map(|w| w.key.clone()).collect();
        let result = self.inner.batch(writes).await;
        self.written(keys.iter().map(String::as_str));
        result
    }

    async fn clear(&self) -> Result<()> {
        let result = self.inner.clear().await;
        self.forget();
        result
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::memory::MemoryStorage;

    fn decode_counting(count: &AtomicUsize) -> impl FnOnce(&[u8]) -> Result<String> + '_ {
        move |b| {
            count.fetch_add(1, Ordering::SeqCst);
            String::from_utf8(b.to_vec()).map_err(|_| StorageError::Corrupt("utf-8".into()))
        }
    }

    fn bytes(s: &str) -> SecretBytes {
        SecretBytes::from_slice(s.as_bytes())
    }

    /// The decoded value at `key`, counting decodes in `decodes`.
    async fn read(cache: &CachedStorage<String>, decodes: &AtomicUsize, key: &str) -> Option<String> {
        let found = cache.get_decoded(key, decode_counting(decodes)).await.unwrap();
        found.map(|v| String::clone(&v))
    }

    #[tokio::test]
    async fn hits_skip_decoding_and_every_write_kind_drops_its_keys() {
        let cache = CachedStorage::<String>::new(Arc::new(MemoryStorage::new()), 16);
        let decodes = AtomicUsize::new(0);
        cache.put("k", bytes("one")).await.unwrap();
        for _ in 0..3 {
            assert_eq!(read(&cache, &decodes, "k").await.as_deref(), Some("one"));
        }
        assert_eq!(decodes.load(Ordering::SeqCst), 1);

        cache.put("k", bytes("two")).await.unwrap();
        assert_eq!(read(&cache, &decodes, "k").await.as_deref(), Some("two"));
        cache.batch(vec![Write::put("k", bytes("three"))]).await.unwrap();
        assert_eq!(read(&cache, &decodes, "k").await.as_deref(), Some("three"));
        cache.delete("k").await.unwrap();
        assert_eq!(read(&cache, &decodes, "k").await, None);
        cache.put("k", bytes("four")).await.unwrap();
        assert_eq!(read(&cache, &decodes, "k").await.as_deref(), Some("four"));
        cache.clear().await.unwrap();
        assert_eq!(read(&cache, &decodes, "k").await, None);
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn a_read_that_raced_with_a_write_does_not_fill_the_cache() {
        let cache = CachedStorage::<String>::new(Arc::new(MemoryStorage::new()), 16);
        cache.put("k", bytes("old")).await.unwrap();
        // The decoder runs after the read; a write that ends in between bumps the epoch.
        let v = cache
            .get_decoded("k", |b| {
                cache.written(["k"]);
                Ok::<_, StorageError>(String::from_utf8_lossy(b).into_owned())
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(*v, "old");
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn bounded_and_forgets_on_request() {
        let cache = CachedStorage::<String>::new(Arc::new(MemoryStorage::new()), 2);
        let decodes = AtomicUsize::new(0);
        for k in ["a", "b", "c"] {
            cache.put(k, bytes(k)).await.unwrap();
            read(&cache, &decodes, k).await;
            assert!(cache.len() <= 2);
        }
        cache.forget();
        assert!(cache.is_empty());
        // A refused value is not cached.
        let refused = cache
            .get_decoded("a", |_| Err(StorageError::Corrupt("no".into())))
            .await;
        assert!(refused.is_err());
        assert!(cache.is_empty());
    }
}
