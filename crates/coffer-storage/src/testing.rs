//! Conformance suites that every storage implementation must pass.
//!
//! [`exercise_backend`] drives a [`PhysicalBackend`] and [`exercise_storage`] a plaintext
//! [`Storage`] through the same scenario: get, put, overwrite, delete, one-level `list`,
//! paginated `scan` and `scan_back`, atomic `batch`, empty and 1 MiB values and non-ASCII keys. Both expect an
//! empty store (for a barrier: no user data yet) and leave it empty again. A physical backend
//! also goes through `snapshot` (a consistent view while writes go on) and `restore` (all or
//! nothing when its source fails).
//!
//! This is test support: a failed check panics with a message naming the implementation, the
//! step and what differed, the way `assert!` does in a test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use async_trait::async_trait;
use coffer_crypto::SecretBytes;

use crate::{Entry, EntryStream, PhysicalBackend, PhysicalWrite, Result, Storage, StorageError, VecEntryStream, Write};

/// Runs the conformance suite against an empty physical backend.
pub async fn exercise_backend(backend: &dyn PhysicalBackend) {
    run(&Physical(backend), "physical backend").await;
    snapshot_and_restore(backend, "physical backend").await;
}

/// Runs the conformance suite against an empty plaintext storage.
pub async fn exercise_storage(storage: &dyn Storage) {
    run(&Logical(storage), "logical storage").await;
}

/// The operations the suite needs, over raw bytes, so one scenario serves both layers.
#[async_trait]
trait Kv: Sync {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()>;
    async fn delete(&self, key: &str) -> Result<()>;
    async fn list(&self, prefix: &str) -> Result<Vec<String>>;
    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>>;
    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>>;
    async fn batch(&self, writes: Vec<(String, Option<Vec<u8>>)>) -> Result<()>;
}

struct Physical<'a>(&'a dyn PhysicalBackend);

#[async_trait]
impl Kv for Physical<'_> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.0.put(key, value).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.0.list(prefix).await
    }
    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.0.scan(prefix, after, limit).await
    }
    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.0.scan_back(prefix, before, limit).await
    }
    async fn batch(&self, writes: Vec<(String, Option<Vec<u8>>)>) -> Result<()> {
        let writes = writes
            .into_iter()
            .map(|(key, value)| PhysicalWrite { key, value })
            .collect();
        self.0.batch(writes).await
    }
}

struct Logical<'a>(&'a dyn Storage);

#[async_trait]
impl Kv for Logical<'_> {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.0.get(key).await?.map(|v| v.expose().to_vec()))
    }
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<()> {
        self.0.put(key, SecretBytes::new(value)).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.0.delete(key).await
    }
    async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        self.0.list(prefix).await
    }
    async fn scan(&self, prefix: &str, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.0.scan(prefix, after, limit).await
    }
    async fn scan_back(&self, prefix: &str, before: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.0.scan_back(prefix, before, limit).await
    }
    async fn batch(&self, writes: Vec<(String, Option<Vec<u8>>)>) -> Result<()> {
        let writes = writes
            .into_iter()
            .map(|(key, value)| Write {
                key,
                value: value.map(SecretBytes::new),
            })
            .collect();
        self.0.batch(writes).await
    }
}

/// Turns a `Result` into its value or a panic that names the implementation and the step.
macro_rules! ok {
    ($what:expr, $step:expr, $e:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => panic!("{}: {} failed: {}", $what, $step, err),
        }
    };
}

/// Asserts equality with a message that names the implementation and the step.
macro_rules! check_eq {
    ($what:expr, $step:expr, $left:expr, $right:expr) => {{
        let (l, r) = (&$left, &$right);
        if l != r {
            panic!("{}: {}: got {:?}, expected {:?}", $what, $step, l, r);
        }
    }};
}

#[derive(Clone, Copy, PartialEq)]
enum Dir {
    Forwards,
    Backwards,
}

/// Every key under `s/`, read four at a time with `scan` or `scan_back`, each page continuing
/// from the last key of the one before.
async fn pages_of_four(kv: &dyn Kv, what: &str, dir: Dir) -> Vec<String> {
    let mut pages: Vec<String> = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let page = match dir {
            Dir::Forwards => ok!(what, "scan page", kv.scan("s/", from.as_deref(), 4).await),
            Dir::Backwards => ok!(what, "scan_back page", kv.scan_back("s/", from.as_deref(), 4).await),
        };
        if page.is_empty() {
            return pages;
        }
        if page.len() > 4 {
            panic!("{what}: a page had {} keys with limit 4", page.len());
        }
        from = page.last().cloned();
        pages.extend(page);
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

async fn run(kv: &dyn Kv, what: &str) {
    // The store starts empty.
    check_eq!(
        what,
        "list(\"\") on an empty store",
        ok!(what, "list", kv.list("").await),
        Vec::<String>::new()
    );
    check_eq!(
        what,
        "scan on an empty store",
        ok!(what, "scan", kv.scan("", None, 100).await),
        Vec::<String>::new()
    );
    check_eq!(
        what,
        "get of a missing key",
        ok!(what, "get", kv.get("missing").await),
        None
    );

    // Put, get, overwrite, delete.
    ok!(what, "put foo", kv.put("foo", b"bar".to_vec()).await);
    check_eq!(
        what,
        "get after put",
        ok!(what, "get foo", kv.get("foo").await),
        Some(b"bar".to_vec())
    );
    ok!(what, "overwrite foo", kv.put("foo", b"baz".to_vec()).await);
    check_eq!(
        what,
        "get after overwrite",
        ok!(what, "get foo", kv.get("foo").await),
        Some(b"baz".to_vec())
    );
    ok!(what, "delete foo", kv.delete("foo").await);
    check_eq!(
        what,
        "get after delete",
        ok!(what, "get foo", kv.get("foo").await),
        None
    );
    ok!(what, "delete of a missing key", kv.delete("foo").await);

    // An empty value is a value, not a missing key.
    ok!(what, "put empty value", kv.put("empty", Vec::new()).await);
    check_eq!(
        what,
        "get empty value",
        ok!(what, "get empty", kv.get("empty").await),
        Some(Vec::new())
    );
    ok!(what, "delete empty", kv.delete("empty").await);

    // A 1 MiB value comes back byte for byte.
    let large: Vec<u8> = (0..1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    ok!(what, "put 1 MiB", kv.put("large/value", large.clone()).await);
    let got = ok!(what, "get 1 MiB", kv.get("large/value").await);
    if got.as_deref() != Some(large.as_slice()) {
        panic!(
            "{what}: the 1 MiB value came back different (length {:?})",
            got.map(|v| v.len())
        );
    }
    ok!(what, "delete 1 MiB", kv.delete("large/value").await);

    // Keys outside ASCII.
    for (key, value) in [("ünï/cødé/🔑", b"u1"), ("ünï/ключ", b"u2"), ("日本/語", b"u3")] {
        ok!(what, "put unicode key", kv.put(key, value.to_vec()).await);
        check_eq!(
            what,
            format!("get {key}"),
            ok!(what, "get unicode key", kv.get(key).await),
            Some(value.to_vec())
        );
    }
    check_eq!(
        what,
        "list unicode level",
        ok!(what, "list", kv.list("ünï/").await),
        strings(&["cødé/", "ключ"])
    );
    check_eq!(
        what,
        "list unicode leaf",
        ok!(what, "list", kv.list("ünï/cødé/").await),
        strings(&["🔑"])
    );
    for key in ["ünï/cødé/🔑", "ünï/ключ", "日本/語"] {
        ok!(what, "delete unicode key", kv.delete(key).await);
    }

    // One-level listing: files, then each directory once with a trailing '/'.
    let tree = ["a", "a/b", "a/c/d", "a/c/e", "a/c/f/g", "a/h", "ab", "b/x", "b/y/z"];
    for key in tree {
        ok!(what, "put tree key", kv.put(key, key.as_bytes().to_vec()).await);
    }
    check_eq!(
        what,
        "list(\"\")",
        ok!(what, "list", kv.list("").await),
        strings(&["a", "a/", "ab", "b/"])
    );
    check_eq!(
        what,
        "list(\"a/\")",
        ok!(what, "list", kv.list("a/").await),
        strings(&["b", "c/", "h"])
    );
    check_eq!(
        what,
        "list(\"a/c/\")",
        ok!(what, "list", kv.list("a/c/").await),
        strings(&["d", "e", "f/"])
    );
    check_eq!(
        what,
        "list(\"b/\")",
        ok!(what, "list", kv.list("b/").await),
        strings(&["x", "y/"])
    );
    check_eq!(
        what,
        "list of a missing directory",
        ok!(what, "list", kv.list("nope/").await),
        Vec::<String>::new()
    );
    for key in tree {
        ok!(what, "delete tree key", kv.delete(key).await);
    }

    // Recursive scan with pagination, bounded by the prefix on both sides.
    let mut under: Vec<String> = (0..25).map(|i| format!("s/{i:02}")).collect();
    under.extend(["s/sub/x".to_string(), "s/sub/y/z".to_string()]);
    for key in under.iter().map(String::as_str).chain(["r/1", "s", "t/1"]) {
        ok!(what, "put scan key", kv.put(key, vec![1]).await);
    }
    check_eq!(
        what,
        "scan(\"s/\") in full",
        ok!(what, "scan", kv.scan("s/", None, 1000).await),
        under
    );
    check_eq!(
        what,
        "scan with limit",
        ok!(what, "scan", kv.scan("s/", None, 3).await),
        under[..3].to_vec()
    );
    check_eq!(
        what,
        "scan with limit 0",
        ok!(what, "scan", kv.scan("s/", None, 0).await),
        Vec::<String>::new()
    );
    check_eq!(
        what,
        "scan pages joined",
        pages_of_four(kv, what, Dir::Forwards).await,
        under
    );
    check_eq!(
        what,
        "scan after s/10",
        ok!(what, "scan", kv.scan("s/", Some("s/10"), 2).await),
        strings(&["s/11", "s/12"])
    );
    check_eq!(
        what,
        "scan after a key before the prefix",
        ok!(what, "scan", kv.scan("s/", Some("a"), 2).await),
        strings(&["s/00", "s/01"])
    );
    check_eq!(
        what,
        "scan after the last key",
        ok!(what, "scan", kv.scan("s/", Some("s/zzz"), 10).await),
        Vec::<String>::new()
    );
    check_eq!(
        what,
        "scan of a sub-prefix",
        ok!(what, "scan", kv.scan("s/sub/", None, 10).await),
        strings(&["s/sub/x", "s/sub/y/z"])
    );

    // The same walk backwards: descending, bounded by the prefix on both sides.
    let mut reversed = under.clone();
    reversed.reverse();
    check_eq!(
        what,
        "scan_back(\"s/\") in full",
        ok!(what, "scan_back", kv.scan_back("s/", None, 1000).await),
        reversed
    );
    check_eq!(
        what,
        "scan_back with limit 0",
        ok!(what, "scan_back", kv.scan_back("s/", None, 0).await),
        Vec::<String>::new()
    );
    check_eq!(
        what,
        "scan_back pages joined",
        pages_of_four(kv, what, Dir::Backwards).await,
        reversed
    );
    check_eq!(
        what,
        "scan_back before s/10",
        ok!(what, "scan_back", kv.scan_back("s/", Some("s/10"), 2).await),
        strings(&["s/09", "s/08"])
    );
    check_eq!(
        what,
        "scan_back before a key after the prefix",
        ok!(what, "scan_back", kv.scan_back("s/", Some("zz"), 2).await),
        strings(&["s/sub/y/z", "s/sub/x"])
    );
    for at in ["s/", "s", "a"] {
        check_eq!(
            what,
            format!("scan_back before {at}"),
            ok!(what, "scan_back", kv.scan_back("s/", Some(at), 10).await),
            Vec::<String>::new()
        );
    }
    check_eq!(
        what,
        "scan_back of a sub-prefix",
        ok!(what, "scan_back", kv.scan_back("s/sub/", None, 10).await),
        strings(&["s/sub/y/z", "s/sub/x"])
    );
    check_eq!(
        what,
        "scan_back of everything",
        ok!(what, "scan_back", kv.scan_back("", None, 2).await),
        strings(&["t/1", "s/sub/y/z"])
    );
    for key in under.iter().map(String::as_str).chain(["r/1", "s", "t/1"]) {
        ok!(what, "delete scan key", kv.delete(key).await);
    }

    // An atomic batch of puts and deletes; a later write to the same key wins.
    ok!(what, "put keep", kv.put("batch/keep", b"k".to_vec()).await);
    ok!(what, "put gone", kv.put("batch/gone", b"g".to_vec()).await);
    ok!(
        what,
        "batch",
        kv.batch(vec![
            ("batch/new1".to_string(), Some(b"1".to_vec())),
            ("batch/gone".to_string(), None),
            ("batch/new2".to_string(), Some(b"2".to_vec())),
            ("batch/twice".to_string(), Some(b"first".to_vec())),
            ("batch/twice".to_string(), Some(b"second".to_vec())),
            ("batch/never".to_string(), Some(b"n".to_vec())),
            ("batch/never".to_string(), None),
            ("batch/missing".to_string(), None),
        ])
        .await
    );
    check_eq!(
        what,
        "list after batch",
        ok!(what, "list", kv.list("batch/").await),
        strings(&["keep", "new1", "new2", "twice"])
    );
    check_eq!(
        what,
        "batch put",
        ok!(what, "get", kv.get("batch/new2").await),
        Some(b"2".to_vec())
    );
    check_eq!(
        what,
        "batch last write wins",
        ok!(what, "get", kv.get("batch/twice").await),
        Some(b"second".to_vec())
    );
    check_eq!(what, "batch delete", ok!(what, "get", kv.get("batch/gone").await), None);
    ok!(what, "empty batch", kv.batch(Vec::new()).await);
    ok!(
        what,
        "cleanup batch",
        kv.batch(
            ["keep", "new1", "new2", "twice"]
                .iter()
                .map(|k| (format!("batch/{k}"), None))
                .collect()
        )
        .await
    );

    // The store is empty again.
    check_eq!(
        what,
        "list(\"\") at the end",
        ok!(what, "list", kv.list("").await),
        Vec::<String>::new()
    );
    check_eq!(
        what,
        "scan at the end",
        ok!(what, "scan", kv.scan("", None, 100).await),
        Vec::<String>::new()
    );
}

/// Yields one chunk, then fails: a snapshot that turns out bad halfway.
struct FailsAfterOneChunk(Option<Vec<Entry>>);

#[async_trait]
impl EntryStream for FailsAfterOneChunk {
    async fn next_chunk(&mut self) -> Result<Vec<Entry>> {
        match self.0.take() {
            Some(chunk) => Ok(chunk),
            None => Err(StorageError::Corrupt("snapshot: injected".into())),
        }
    }
}

fn entry(key: &str, value: &[u8]) -> Entry {
    Entry {
        key: key.to_string(),
        value: value.to_vec(),
    }
}

/// Every entry of a snapshot stream, checking it is in ascending key order.
async fn drain(stream: &mut dyn EntryStream, what: &str) -> Vec<Entry> {
    let mut all: Vec<Entry> = Vec::new();
    loop {
        let chunk = ok!(what, "snapshot chunk", stream.next_chunk().await);
        if chunk.is_empty() {
            break;
        }
        all.extend(chunk);
    }
    if all.windows(2).any(|w| w[0].key >= w[1].key) {
        panic!("{what}: snapshot entries are not in ascending key order");
    }
    all
}

async fn snapshot_and_restore(backend: &dyn PhysicalBackend, what: &str) {
    let before = vec![entry("a", b"1"), entry("b/c", b""), entry("d", b"4")];
    for e in &before {
        ok!(what, "put", backend.put(&e.key, e.value.clone()).await);
    }
    let mut snap = ok!(what, "snapshot", backend.snapshot().await);
    check_eq!(what, "snapshot entry count", snap.entries, 3);
    // Writes after the snapshot began are not in it.
    ok!(
        what,
        "overwrite during snapshot",
        backend.put("a", b"new".to_vec()).await
    );
    ok!(what, "put during snapshot", backend.put("e", b"5".to_vec()).await);
    ok!(what, "delete during snapshot", backend.delete("d").await);
    check_eq!(
        what,
        "snapshot contents",
        drain(snap.stream.as_mut(), what).await,
        before
    );

    // A source that fails halfway changes nothing.
    let mut failing = FailsAfterOneChunk(Some(vec![entry("x", b"partial")]));
    if backend.restore(&mut failing).await.is_ok() {
        panic!("{what}: a restore whose source failed succeeded");
    }
    check_eq!(
        what,
        "store after a failed restore",
        ok!(what, "scan", backend.scan("", None, 100).await),
        strings(&["a", "b/c", "e"])
    );
    check_eq!(
        what,
        "value after a failed restore",
        ok!(what, "get", backend.get("a").await),
        Some(b"new".to_vec())
    );

    // A good source replaces everything.
    let replacement = vec![entry("x/1", b"one"), entry("y", b"two")];
    let mut source = VecEntryStream::new(replacement.clone());
    check_eq!(
        what,
        "restored count",
        ok!(what, "restore", backend.restore(&mut source).await),
        2
    );
    check_eq!(
        what,
        "store after restore",
        ok!(what, "scan", backend.scan("", None, 100).await),
        strings(&["x/1", "y"])
    );
    check_eq!(
        what,
        "list after restore",
        ok!(what, "list", backend.list("").await),
        strings(&["x/", "y"])
    );
    let mut snap = ok!(what, "snapshot after restore", backend.snapshot().await);
    check_eq!(
        what,
        "snapshot after restore",
        drain(snap.stream.as_mut(), what).await,
        replacement
    );
    drop(snap);

    // Restoring nothing empties the store.
    let mut empty = VecEntryStream::new(Vec::new());
    check_eq!(
        what,
        "restore of nothing",
        ok!(what, "restore", backend.restore(&mut empty).await),
        0
    );
    check_eq!(
        what,
        "store after restoring nothing",
        ok!(what, "scan", backend.scan("", None, 100).await),
        Vec::<String>::new()
    );
}
