//! The embedded default backend: one redb file, one table of `&str -> &[u8]`.
//!
//! **Writes are group-committed.** `put`, `delete` and `batch` hand their writes to one
//! writer thread (one per open database) and wait for its answer. The writer takes everything
//! queued at that moment (up to [`MAX_GROUP`] callers), applies it in one write transaction,
//! commits it once with [`Durability::Immediate`] (one fsync for the whole group) and then
//! answers every caller of the group. An `Ok` therefore still means the data is on disk, and
//! a read that starts after it sees it (redb's read transactions see every committed write).
//! Concurrent writers share the fsync instead of queueing for redb's single write lock one
//! fsync at a time; a lone writer pays one thread hand-off more than before.
//!
//! Each caller's writes stay atomic: callers are applied in arrival order, and if applying
//! one caller's writes fails, the transaction is dropped (redb aborts it: nothing of it is
//! written), that caller gets the error, and the group is applied again without it. redb has
//! no savepoints inside a dirty transaction, so a retry of the rest is the way to roll back
//! one caller. If the commit itself fails, every caller of the group gets the error and none
//! of their writes is committed. See [`commit_group`].
//!
//! **An I/O failure is recovered from by reopening the file.** redb latches the first failed
//! write of the file (a full disk, say): every later operation on that handle fails with
//! "Previous I/O error occurred", even once space returns. The writer thread therefore
//! marks the database as failed when a group fails with an I/O error and, before the next
//! group, closes it (waiting for the reads in flight) and opens it again, which makes redb
//! check and repair the file. It first checks that the directory takes a small write, so
//! a still-full disk keeps the old handle (reads from redb's cache still work) and answers
//! the group with the error; the first group after space returns finds the file reopened.
//! The failed group's writes were never committed, so nothing acknowledged is lost.
//!
//! redb is synchronous. `list`/`scan` (which may walk many keys) run on tokio's blocking pool
//! through [`tokio::task::spawn_blocking`]. A point read runs inline: it is an MVCC lookup that
//! redb answers from its page cache in microseconds, and a hop to the blocking pool and back
//! (two thread switches) cost more than the read itself. Every request reads several records,
//! so those hops were most of the CPU a `GetSecretValue` used.
//!
//! `list` and `scan` are range queries over the ordered table. `list` skips over each child
//! directory with one seek instead of walking every key below it, so listing a level costs
//! one seek per entry of that level, however many keys the sub-trees hold.
//!
//! `snapshot` holds one read transaction (redb's MVCC snapshot) for as long as its stream is
//! read, and reads it a chunk at a time on the blocking pool; writers go on meanwhile (redb
//! keeps the pages that snapshot sees until it ends, so the file may grow during a long one).
//! `restore` empties the table and inserts the entries in one write transaction on a blocking
//! thread, fed through a channel as they arrive, and commits only once the source has ended
//! well; redb writes what does not fit its cache to free pages of the file, so a restore does
//! not hold the whole store in memory, and an abandoned one leaves the file as it was.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::RwLock;
use redb::{Database, Durability, ReadOnlyTable, ReadableDatabase, ReadableTableMetadata, TableDefinition};
use tokio::sync::oneshot;

use crate::{Entry, EntryStream, PhysicalBackend, PhysicalWrite, Result, Snapshot, StorageError};

/// The single table that holds every key.
const TABLE: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("coffer_kv");

/// redb's page cache (reads and the write buffer) unless configured otherwise. redb's own
/// default is 1 GiB, which a large store fills: the process then holds a copy of the hot part
/// of the file that the kernel's page cache holds anyway. Reads that miss this cache are
/// served by the kernel (one `pread`).
pub const DEFAULT_CACHE_BYTES: usize = 32 * 1024 * 1024;

/// The most callers one group commit takes: bounds a transaction's size when very many
/// writers queue at once (the rest go into the next group).
const MAX_GROUP: usize = 1024;

/// A snapshot chunk ends after this many entries or once its values reach [`CHUNK_BYTES`].
const CHUNK_ENTRIES: usize = 1024;
const CHUNK_BYTES: usize = 1024 * 1024;

/// How long a reopen waits for the reads in flight on the failed handle to end.
const REOPEN_WAIT: Duration = Duration::from_secs(5);

/// How many bytes the directory must take before a failed database is reopened.
const SPACE_PROBE_BYTES: usize = 1024 * 1024;

/// A [`PhysicalBackend`] in a redb file.
#[derive(Clone)]
pub struct RedbBackend {
    // Declared before `writer`: dropping the last clone releases this reference first, then
    // `Writer::drop` joins the thread, which drops the last one, so the file is closed (and
    // can be opened again) when the drop returns.
    shared: Arc<Shared>,
    writer: Arc<Writer>,
}

/// The open database, which the writer replaces after an I/O failure.
struct Shared {
    path: PathBuf,
    cache_bytes: usize,
    /// `None` only when reopening failed after the old handle was closed.
    db: RwLock<Option<Arc<Database>>>,
    /// A commit failed with an I/O error: redb has latched it, reopen before the next group.
    failed: AtomicBool,
}

impl Shared {
    fn db(&self) -> Result<Arc<Database>> {
        self.db.read().clone().ok_or_else(|| {
            StorageError::Backend(
                "redb: the database is closed after an I/O error; the next write reopens it".to_string(),
            )
        })
    }

    /// Closes the failed database and opens it again. Keeps the old handle (and returns the
    /// error) when the directory does not take a small write yet, or when reads on the old
    /// handle do not end within [`REOPEN_WAIT`].
    fn reopen(&self) -> Result<()> {
        probe_space(&self.path)?;
        let mut slot = self.db.write();
        // New reads wait for the lock; the ones in flight hold clones of the handle.
        let deadline = Instant::now() + REOPEN_WAIT;
        while slot.as_ref().is_some_and(|db| Arc::strong_count(db) > 1) {
            if Instant::now() > deadline {
                return Err(StorageError::Backend(
                    "redb: reads on the failed database did not end; not reopened yet".to_string(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // Close the old handle (this thread holds the only reference) before opening the
        // file again: redb locks the file while it is open.
        drop(slot.take());
        let db = open_db(&self.path, self.cache_bytes)?;
        *slot = Some(Arc::new(db));
        self.failed.store(false, Ordering::SeqCst);
        Ok(())
    }
}

/// Writes, syncs and removes a small file next to the database: fails while the disk is
/// full.
fn probe_space(path: &Path) -> Result<()> {
    use std::io::Write as _;
    let probe = path.with_extension("space-probe");
    let attempt = std::fs::File::create(&probe).and_then(|mut f| {
        f.write_all(&vec![0u8; SPACE_PROBE_BYTES])?;
        f.sync_data()
    });
    let _ = std::fs::remove_file(&probe);
    attempt.map_err(|e| StorageError::Backend(format!("redb: the data directory takes no writes yet: {e}")))
}

/// Opens (or creates) the database file and its table.
fn open_db(path: &Path, cache_bytes: usize) -> Result<Database> {
    let db = Database::builder()
        .set_cache_size(cache_bytes)
        .create(path)
        .map_err(backend_err)?;
    // Create the table once, so read transactions never meet a missing table.
    let txn = begin_write(&db)?;
    txn.open_table(TABLE).map_err(backend_err)?;
    txn.commit().map_err(backend_err)?;
    Ok(db)
}

/// One caller's writes and where to send the outcome.
struct Job {
    writes: Vec<PhysicalWrite>,
    done: oneshot::Sender<Result<()>>,
}

/// The writer thread and its queue.
struct Writer {
    queue: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has answered everything queued.
        self.queue.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl RedbBackend {
    /// Opens the database at `path` with a page cache of [`DEFAULT_CACHE_BYTES`]: see
    /// [`open_with_cache`](Self::open_with_cache).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Opens the database at `path` with a page cache of at most `cache_bytes`, creating the
    /// file and the table if they do not exist, and starts its writer thread.
    ///
    /// This blocks on file I/O; call it at start-up or from a blocking context.
    pub fn open_with_cache(path: impl AsRef<Path>, cache_bytes: usize) -> Result<Self> {
        let db = open_db(path.as_ref(), cache_bytes)?;
        let shared = Arc::new(Shared {
            path: path.as_ref().to_path_buf(),
            cache_bytes,
            db: RwLock::new(Some(Arc::new(db))),
            failed: AtomicBool::new(false),
        });
        let (queue, jobs) = mpsc::channel::<Job>();
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("coffer-redb-writer".to_string())
            .spawn(move || write_loop(&thread_shared, &jobs))
            .map_err(|e| StorageError::Backend(format!("redb: cannot start the writer thread: {e}")))?;
        Ok(Self {
            shared,
            writer: Arc::new(Writer {
                queue: Some(queue),
                thread: Some(thread),
            }),
        })
    }

    /// Runs `f` against the database on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T> + Send + 'static,
    {
        let db = self.shared.db()?;
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(|e| StorageError::Backend(format!("redb task failed: {e}")))?
    }

    /// Queues `writes` for the writer thread and waits until they are committed (durable) or
    /// refused. A caller that stops waiting does not withdraw its writes.
    async fn write(&self, writes: Vec<PhysicalWrite>) -> Result<()> {
        let stopped = || StorageError::Backend("redb: the writer thread has stopped".to_string());
        let (done, answer) = oneshot::channel();
        let queue = self.writer.queue.as_ref().ok_or_else(stopped)?;
        queue.send(Job { writes, done }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The writer thread: waits for a job, takes whatever else is queued, commits the group.
/// Ends when every [`RedbBackend`] clone is gone and the queue is empty.
fn write_loop(shared: &Shared, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        let callers = group.len();
        if shared.failed.load(Ordering::SeqCst)
            && let Err(e) = shared.reopen()
        {
            for job in group {
                let _ = job.done.send(Err(e.clone()));
            }
            continue;
        }
        let db = match shared.db() {
            Ok(db) => db,
            Err(e) => {
                for job in group {
                    let _ = job.done.send(Err(e.clone()));
                }
                continue;
            }
        };
        commit_group(
            group,
            |group| {
                let started = std::time::Instant::now();
                let attempt = apply_and_commit(&db, &shared.failed, group.iter().map(|j| j.writes.as_slice()));
                let outcome = match attempt {
                    Attempt::Committed => "committed",
                    Attempt::Refused(..) => "refused",
                    Attempt::Failed(_) => "failed",
                };
                metrics::histogram!("coffer_storage_commit_seconds", "outcome" => outcome)
                    .record(started.elapsed().as_secs_f64());
                attempt
            },
            |job, result| {
                // The caller may have stopped waiting; its writes stand either way.
                let _ = job.done.send(result);
            },
        );
        metrics::histogram!("coffer_storage_commit_group_callers").record(callers as f64);
    }
}

/// What one attempt at committing a group came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Attempt {
    /// Everything was applied and the transaction committed durably.
    Committed,
    /// Applying the writes of the caller at this index failed; nothing was committed.
    Refused(usize, StorageError),
    /// The transaction could not be begun or committed; nothing was committed.
    Failed(StorageError),
}

/// The group-commit protocol, apart from redb so it can be tested with any failures:
/// `attempt` applies and commits the group in one transaction; a caller whose writes cannot
/// be applied is answered with its error and left out of the next attempt; every other
/// caller is answered with the outcome of the final commit. Each attempt has one caller fewer,
/// so this ends after at most as many attempts as there are callers.
pub(crate) fn commit_group<J>(
    mut group: Vec<J>,
    mut attempt: impl FnMut(&[J]) -> Attempt,
    mut answer: impl FnMut(J, Result<()>),
) {
    while !group.is_empty() {
        match attempt(&group) {
            Attempt::Committed => {
                group.into_iter().for_each(|job| answer(job, Ok(())));
                return;
            }
            Attempt::Refused(i, e) if i < group.len() => answer(group.remove(i), Err(e)),
            Attempt::Refused(_, e) | Attempt::Failed(e) => {
                group.into_iter().for_each(|job| answer(job, Err(e.clone())));
                return;
            }
        }
    }
}

/// Applies each caller's writes, in order, in one transaction and commits it durably. An
/// I/O error (which redb latches) sets `failed`.
fn apply_and_commit<'a>(
    db: &Database,
    failed: &AtomicBool,
    callers: impl Iterator<Item = &'a [PhysicalWrite]>,
) -> Attempt {
    let err = |e: redb::Error| {
        if matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo) {
            failed.store(true, Ordering::SeqCst);
        }
        backend_err(e)
    };
    let mut txn = match db.begin_write() {
        Ok(txn) => txn,
        Err(e) => return Attempt::Failed(err(e.into())),
    };
    if let Err(e) = txn.set_durability(Durability::Immediate) {
        return Attempt::Failed(err(e.into()));
    }
    {
        let mut table = match txn.open_table(TABLE) {
            Ok(table) => table,
            Err(e) => return Attempt::Failed(err(e.into())),
        };
        for (i, writes) in callers.enumerate() {
            for w in writes {
                let applied = match &w.value {
                    Some(v) => table.insert(w.key.as_str(), v.as_slice()).map(drop),
                    None => table.remove(w.key.as_str()).map(drop),
                };
                if let Err(e) = applied {
                    // Returning drops `txn` without committing, which aborts it.
                    return Attempt::Refused(i, err(e.into()));
                }
            }
        }
    }
    match txn.commit() {
        Ok(()) => Attempt::Committed,
        Err(e) => Attempt::Failed(err(e.into())),
    }
}

#[async_trait]
impl PhysicalBackend for RedbBackend {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        // Inline on purpose: see the module documentation.
        // Held until the read ends, so a reopen after an I/O error waits for it.
        let db = self.shared.db()?;
        let txn = db.begin_read().map_err(backend_err)?;
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

    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let Some((start, end)) = crate::back_range(prefix, before) else {
            return Ok(Vec::new());
        };
        let prefix = prefix.to_string();
        self.blocking(move |db| {
            let txn = db.begin_read().map_err(backend_err)?;
            let table = txn.open_table(TABLE).map_err(backend_err)?;
            let range = table
                .range::<&str>((as_str_bound(&start), as_str_bound(&end)))
                .map_err(backend_err)?;
            let mut out = Vec::new();
            for entry in range.rev() {
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

    async fn snapshot(&self) -> Result<Snapshot> {
        let (table, entries) = self
            .blocking(|db| {
                let txn = db.begin_read().map_err(backend_err)?;
                // The table keeps the read transaction (and so its snapshot) alive.
                let table = txn.open_table(TABLE).map_err(backend_err)?;
                let entries = table.len().map_err(backend_err)?;
                Ok((table, entries))
            })
            .await?;
        Ok(Snapshot {
            entries,
            stream: Box::new(RedbSnapshot {
                table: Arc::new(table),
                after: None,
            }),
        })
    }

    async fn restore(&self, source: &mut dyn EntryStream) -> Result<u64> {
        let (chunks, received) = tokio::sync::mpsc::channel::<Vec<Entry>>(2);
        let (commit, commit_received) = oneshot::channel::<()>();
        let db = self.shared.db()?;
        let writer = tokio::task::spawn_blocking(move || restore_in_one_transaction(&db, received, commit_received));
        let fed: Result<()> = async {
            loop {
                let chunk = source.next_chunk().await?;
                // A closed channel means the transaction failed: its error is returned below.
                if chunk.is_empty() || chunks.send(chunk).await.is_err() {
                    return Ok(());
                }
            }
        }
        .await;
        drop(chunks);
        if fed.is_ok() {
            let _ = commit.send(());
        } else {
            // Dropping `commit` unsent aborts the transaction.
            drop(commit);
        }
        let written = writer
            .await
            .map_err(|e| StorageError::Backend(format!("redb task failed: {e}")))?;
        fed?;
        written
    }
}

/// The stream of a redb snapshot: pages through the table of one read transaction.
struct RedbSnapshot {
    table: Arc<ReadOnlyTable<&'static str, &'static [u8]>>,
    /// The last key returned; `None` before the first chunk.
    after: Option<String>,
}

#[async_trait]
impl EntryStream for RedbSnapshot {
    async fn next_chunk(&mut self) -> Result<Vec<Entry>> {
        let table = Arc::clone(&self.table);
        let after = self.after.take();
        let chunk = tokio::task::spawn_blocking(move || -> Result<Vec<Entry>> {
            let lower = match &after {
                Some(a) => Bound::Excluded(a.as_str()),
                None => Bound::Unbounded,
            };
            let range = table.range::<&str>((lower, Bound::Unbounded)).map_err(backend_err)?;
            let mut out = Vec::new();
            let mut bytes = 0;
            for entry in range {
                let (key, value) = entry.map_err(backend_err)?;
                let value = value.value().to_vec();
                bytes += value.len();
                out.push(Entry {
                    key: key.value().to_string(),
                    value,
                });
                if out.len() >= CHUNK_ENTRIES || bytes >= CHUNK_BYTES {
                    break;
                }
            }
            Ok(out)
        })
        .await
        .map_err(|e| StorageError::Backend(format!("redb task failed: {e}")))??;
        self.after = chunk.last().map(|e| e.key.clone());
        Ok(chunk)
    }
}

/// Replaces the table's contents with the chunks received, in one write transaction that is
/// committed only when `commit` arrives (the source ended well); otherwise it is dropped,
/// which aborts it.
fn restore_in_one_transaction(
    db: &Database,
    mut chunks: tokio::sync::mpsc::Receiver<Vec<Entry>>,
    commit: oneshot::Receiver<()>,
) -> Result<u64> {
    let txn = begin_write(db)?;
    txn.delete_table(TABLE).map_err(backend_err)?;
    let written = {
        let mut table = txn.open_table(TABLE).map_err(backend_err)?;
        while let Some(chunk) = chunks.blocking_recv() {
            for e in chunk {
                table.insert(e.key.as_str(), e.value.as_slice()).map_err(backend_err)?;
            }
        }
        table.len().map_err(backend_err)?
    };
    if commit.blocking_recv().is_err() {
        return Err(StorageError::Backend(
            "restore abandoned: its source failed; nothing was changed".to_string(),
        ));
    }
    txn.commit().map_err(backend_err)?;
    Ok(written)
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
