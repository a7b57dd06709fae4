//! A prefix "chroot" over a [`Storage`], as handed to each mounted engine.
//!
//! A [`StorageView`] with prefix `logical/1234/` turns `get("config")` into
//! `get("logical/1234/config")` on the storage below, and strips the prefix again from the keys
//! that `scan` and `scan_back` return (`list` results are already relative). An engine holding a view can
//! therefore name no key outside its prefix.
//!
//! The prefix is used verbatim. Give it a trailing `/` (as every Coffer caller does) so that
//! the view `a/` cannot reach the sibling key `ab`.

use std::sync::Arc;

use async_trait::async_trait;
use coffer_crypto::SecretBytes;

use crate::{Result, Storage, Write};

/// A [`Storage`] confined to the keys under one prefix of another.
#[derive(Clone)]
pub struct StorageView {
    inner: Arc<dyn Storage>,
    prefix: String,
}

impl StorageView {
    /// A view of the keys of `inner` that start with `prefix`.
    pub fn new(inner: Arc<dyn Storage>, prefix: impl Into<String>) -> Self {
        Self {
            inner,
            prefix: prefix.into(),
        }
    }

    /// A view of this view's keys that start with `prefix` (Vault's `SubView`).
    pub fn sub_view(&self, prefix: &str) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
            prefix: self.full(prefix),
        }
    }

    /// The prefix this view adds to every key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Keys of the storage below, relative to this view. Every key under `prefix + prefix'`
    /// starts with `prefix`; anything else would be a bug in the storage below, and is dropped
    /// rather than leaked to the engine.
    fn relative(&self, keys: Vec<String>) -> Vec<String> {
        keys.into_iter()
            .filter_map(|k| k.strip_prefix(self.prefix.as_str()).map(str::to_string))
            .collect()
    }

    fn full(&self, key: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + key.len());
        s.push_str(&self.prefix);
        s.push_str(key);
        s
    }
}

#[async_trait]
impl Storage for StorageView {
    async fn get(&self, key: &str) -> Result<Option<SecretBytes>> {
        self.inner.get(&self.full(key)).await
    }

    async fn put(&self, key: &str, value: SecretBytes) -> Result<()> {
        self.inner.put(&self.full(key), value).await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.inner.delete(&self.full(key)).await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        // Listing returns keys relative to the listed prefix, so there is nothing to strip.
        self.inner.list(&self.full(prefix)).await
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let after = after.map(|a| self.full(a));
        let keys = self.inner.scan(&self.full(prefix), after.as_deref(), limit).await?;
        Ok(self.relative(keys))
    }

    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let before = before.map(|b| self.full(b));
        let keys = self
            .inner
            .scan_back(&self.full(prefix), before.as_deref(), limit)
            .await?;
        Ok(self.relative(keys))
    }

    async fn batch(&self, writes: Vec<Write>) -> Result<()> {
        let writes = writes
            .into_iter()
            .map(|w| Write {
                key: self.full(&w.key),
                value: w.value,
            })
            .collect();
        self.inner.batch(writes).await
    }
}
