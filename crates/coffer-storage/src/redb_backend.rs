//! The embedded default backend: one redb file, one table of `&str -> &[u8]`.
//!
//! Every write transaction commits with [`Durability::Immediate`], so an `Ok` means the data
//! is on disk. `batch` is one transaction. redb is synchronous. Writes (which fsync) and
//! `list`/`scan` (which may walk many keys) run on tokio's blocking pool through
//! [`tokio::task::spawn_blocking`]. A point read runs inline: it is an MVCC lookup that redb
//! answers from its page cache in microseconds, and a hop to the blocking pool and back (two
//! thread switches) cost more than the read itself. Every request reads several records, so
//! those hops were most of the CPU a `GetSecretValue` used.
//!
//! `list` and `scan` are range queries over the ordered table. `list` skips over each child
//! directory with one seek instead of walking every key below it, so listing a level costs
//! one seek per entry of that level, however many keys the sub-trees hold.

use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, Durability, ReadableDatabase, TableDefinition};

use crate::{PhysicalBackend, PhysicalWrite, Result, StorageError};

/// The single table that holds every key.
const TABLE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("coffer_kv");

/// A [`PhysicalBackend`] in a redb file.
#[derive(Clone)]
pub struct RedbBackend {
    db: Arc<Database>,
}

impl RedbBackend {
    /// Opens the database at `path`, creating the file and the table if they do not exist.
    ///
    /// This blocks on file I/O; call it at start-up or from a blocking context.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let db = Database::create(path.as_ref()).map_err(backend_err)?;
        // Create the table once, so read transactions never meet a missing table.
        let txn = begin_write(&db)?;
        txn.open_table(TABLE).map_err(backend_err)?;
        txn.commit().map_err(backend_err)?;
        Ok(Self { db: Arc::new(db) })
    }

    /// Runs `f` against the database on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(&self.db);
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StorageError::Backend(format!("redb task failed: {e}")))?
    }

    /// Applies `writes` in one durable transaction.
    async fn write(&self, writes: Vec<PhysicalWrite>) -> Result<()> {
        self.blocking(move |db| {
            let txn = begin_write(db)?;
            {
                let mut table = txn.open_table(TABLE).map_err(backend_err)?;
                for w in &writes {
                    match &w.value {
                        Some(v) => {
                            table.insert(w.key.as_str(), v.as_slice()).map_err(backend_err)?;
                        }
                        None => {
                            table.remove(w.key.as_str()).map_err(backend_err)?;
                        }
                    }
                }
            }
            // An error before this point drops `txn`, which aborts it: nothing is written.
            txn.commit().map_err(backend_err)
        })
        .await
    }
}

#[async_trait]
impl PhysicalBackend for RedbBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        // Inline on purpose: see the module documentation.
        let txn = self.db.begin_read().map_err(backend_err)?;
        let table = txn.open_table(TABLE).map_err(backend_err)?;
        let value = table.get(key).map_err(backend_err)?;
        Ok(value.map(|v| v.value().to_vec()))
    }

    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.write(vec![PhysicalWrite {
            key: key.to_string(),
            value: Some(value),
        }])
        .await
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.write(vec![PhysicalWrite {
            key: key.to_string(),
            value: None,
        }])
        .await
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = prefix.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend_err)?;
            let table = txn.open_table(TABLE).map_err(backend_err)?;
            let mut out: Vec<String> = Vec::new();
            let mut start: Bound<String> = Bound::Included(prefix.clone());
            loop {
                let lower = as_str_bound(&start);
                let mut range = table.range::<&str>((lower, Bound::Unbounded)).map_err(backend_err)?;
                let Some(entry) = range.next() else { break };
                let (key, _) = entry.map_err(backend_err)?;
                let key = key.value();
                let Some(rest) = key.strip_prefix(prefix.as_str()) else {
                    break;
                };
                match rest.find('/') {
                    Some(i) => {
                        let dir = &rest[..=i];
                        out.push(dir.to_string());
                        // Every key below `prefix + dir` sorts before `prefix + dir` with its
                        // final '/' replaced by '0', the next byte value; jump there.
                        start = Bound::Included(format!("{prefix}{}0", &rest[..i]));
                    }
                    None => {
                        out.push(rest.to_string());
                        start = Bound::Excluded(key.to_string());
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let start = match after {
            Some(a) if a >= prefix => Bound::Excluded(a.to_string()),
            _ => Bound::Included(prefix.to_string()),
        };
        let prefix = prefix.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend_err)?;
            let table = txn.open_table(TABLE).map_err(backend_err)?;
            let range = table
                .range::<&str>((as_str_bound(&start), Bound::Unbounded))
                .map_err(backend_err)?;
            let mut out = Vec::new();
            for entry in range {
                if out.len() >= limit {
                    break;
                }
                let (key, _) = entry.map_err(backend_err)?;
                let key = key.value();
                if !key.starts_with(prefix.as_str()) {
                    break;
                }
                out.push(key.to_string());
            }
            Ok(out)
        })
        .await
    }

    async fn batch(&self, writes: Vec<PhysicalWrite>) -> Result<()> {
        self.write(writes).await
    }
}

/// Begins a write transaction that is durable on commit.
fn begin_write(db: &Database) -> Result<redb::WriteTransaction> {
    let mut txn = db.begin_write().map_err(backend_err)?;
    txn.set_durability(Durability::Immediate).map_err(backend_err)?;
    Ok(txn)
}

fn as_str_bound(b: &Bound<String>) -> Bound<&str> {
    match b {
        Bound::Included(s) => Bound::Included(s.as_str()),
        Bound::Excluded(s) => Bound::Excluded(s.as_str()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Wraps a redb error. redb's messages name pages, tables and sizes, never stored values.
fn backend_err(e: impl std::fmt::Display) -> StorageError {
    StorageError::Backend(format!("redb: {e}"))
}
