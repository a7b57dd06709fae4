//! Tests of the backends, the view and the fault injector against the conformance suites.

use std::sync::Arc;

use coffer_crypto::SecretBytes;

use crate::fault::{FaultInjector, INJECTED, OpCounts};
use crate::memory::{MemoryBackend, MemoryStorage};
use crate::redb_backend::RedbBackend;
use crate::testing::{exercise_backend, exercise_storage};
use crate::view::StorageView;
use crate::{PhysicalBackend, PhysicalWrite, Storage, StorageError, Write};

fn put(key: &str, value: &[u8]) -> PhysicalWrite {
    PhysicalWrite {
        key: key.to_string(),
        value: Some(value.to_vec()),
    }
}

#[tokio::test]
async fn memory_backend_passes() {
    exercise_backend(&MemoryBackend::new()).await;
}

#[tokio::test]
async fn memory_storage_passes() {
    exercise_storage(&MemoryStorage::new()).await;
}

#[tokio::test]
async fn redb_backend_passes() {
    let dir = tempfile::tempdir().unwrap();
    let db = RedbBackend::open(dir.path().join("coffer.redb")).unwrap();
    exercise_backend(&db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redb_backend_passes_on_a_multi_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    let db = RedbBackend::open(dir.path().join("coffer.redb")).unwrap();
    exercise_backend(&db).await;
}

/// A cache far smaller than the data: reads miss it and go to the file.
#[tokio::test]
async fn redb_backend_passes_with_a_tiny_cache() {
    let dir = tempfile::tempdir().unwrap();
    let db = RedbBackend::open_with_cache(dir.path().join("coffer.redb"), 64 * 1024).unwrap();
    exercise_backend(&db).await;
}

#[tokio::test]
async fn fault_injector_without_faults_passes() {
    let faults = FaultInjector::new(Arc::new(MemoryBackend::new()));
    exercise_backend(&faults).await;
    let counts = faults.counts();
    assert!(counts.reads > 0 && counts.writes > 0);
    assert_eq!(counts.injected, 0);
}

#[tokio::test]
async fn fault_injector_fails_the_chosen_operation_once() {
    let faults = FaultInjector::new(Arc::new(MemoryBackend::new()));
    faults.put("a", b"1".to_vec()).await.unwrap();
    // The 3rd operation from now, reads and writes counted together.
    faults.fail_op_in(3);
    faults.get("a").await.unwrap();
    faults.put("b", b"2".to_vec()).await.unwrap();
    assert_eq!(
        faults.get("a").await.unwrap_err(),
        StorageError::Backend(INJECTED.into())
    );
    faults.get("a").await.unwrap();
    faults.fail_op_in(1);
    assert!(faults.put("c", b"3".to_vec()).await.is_err());
    assert!(faults.inner().get("c").await.unwrap().is_none());
    faults.fail_op_in(1);
    faults.clear();
    faults.put("c", b"3".to_vec()).await.unwrap();
    assert_eq!(faults.counts().injected, 2);
}

#[tokio::test]
async fn storage_view_passes_and_stays_inside_its_prefix() {
    let inner = Arc::new(MemoryStorage::new());
    inner.put("outside", SecretBytes::from_slice(b"o")).await.unwrap();
    inner
        .put("logical/ab", SecretBytes::from_slice(b"sibling"))
        .await
        .unwrap();
    let view = StorageView::new(inner.clone(), "logical/a/");
    exercise_storage(&view).await;

    view.put("k", SecretBytes::from_slice(b"v")).await.unwrap();
    assert_eq!(inner.get("logical/a/k").await.unwrap().unwrap().expose(), b"v");
    assert_eq!(view.scan("", None, 10).await.unwrap(), vec!["k".to_string()]);
    let sub = view.sub_view("sub/");
    sub.put("x", SecretBytes::from_slice(b"y")).await.unwrap();
    assert_eq!(sub.prefix(), "logical/a/sub/");
    assert_eq!(view.list("").await.unwrap(), vec!["k".to_string(), "sub/".to_string()]);
    assert_eq!(view.scan("sub/", None, 10).await.unwrap(), vec!["sub/x".to_string()]);
    assert_eq!(sub.scan("", None, 10).await.unwrap(), vec!["x".to_string()]);
    assert!(view.get("../outside").await.unwrap().is_none());
    assert_eq!(inner.get("outside").await.unwrap().unwrap().expose(), b"o");
    assert_eq!(inner.get("logical/ab").await.unwrap().unwrap().expose(), b"sibling");
}

#[tokio::test]
async fn redb_data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.redb");
    {
        let db = RedbBackend::open(&path).unwrap();
        db.put("a/1", b"one".to_vec()).await.unwrap();
        db.batch(vec![put("a/2", b"two"), put("b", b"three")]).await.unwrap();
        db.delete("b").await.unwrap();
    }
    let db = RedbBackend::open(&path).unwrap();
    assert_eq!(db.get("a/1").await.unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(db.get("a/2").await.unwrap().as_deref(), Some(&b"two"[..]));
    assert_eq!(db.get("b").await.unwrap(), None);
    assert_eq!(db.list("").await.unwrap(), vec!["a/".to_string()]);
}

#[tokio::test]
async fn redb_list_skips_large_subtrees() {
    let dir = tempfile::tempdir().unwrap();
    let db = RedbBackend::open(dir.path().join("coffer.redb")).unwrap();
    let mut writes: Vec<PhysicalWrite> = (0..2000).map(|i| put(&format!("top/big/{i:05}"), b"x")).collect();
    writes.push(put("top/big.txt", b"x"));
    writes.push(put("top/big0", b"x"));
    writes.push(put("top/z", b"x"));
    db.batch(writes).await.unwrap();
    assert_eq!(
        db.list("top/").await.unwrap(),
        vec![
            "big.txt".to_string(),
            "big/".to_string(),
            "big0".to_string(),
            "z".to_string()
        ]
    );
    let memory = MemoryBackend::new();
    for k in db.scan("", None, usize::MAX).await.unwrap() {
        memory.put(&k, Vec::new()).await.unwrap();
    }
    assert_eq!(memory.list("top/").await.unwrap(), db.list("top/").await.unwrap());
}

#[tokio::test]
async fn failed_batch_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for inner in [
        Arc::new(MemoryBackend::new()) as Arc<dyn PhysicalBackend>,
        Arc::new(RedbBackend::open(dir.path().join("f.redb")).unwrap()),
    ] {
        inner.put("existing", b"old".to_vec()).await.unwrap();
        let faults = FaultInjector::new(inner.clone());
        let batch = vec![
            put("new", b"n"),
            put("existing", b"new"),
            PhysicalWrite {
                key: "other".into(),
                value: None,
            },
        ];

        faults.fail_next_writes(1);
        let err = faults.batch(batch.clone()).await.unwrap_err();
        assert_eq!(err, StorageError::Backend(INJECTED.to_string()));
        assert_eq!(inner.get("new").await.unwrap(), None);
        assert_eq!(inner.get("existing").await.unwrap().as_deref(), Some(&b"old"[..]));

        faults.fail_writes_with_prefix("exist");
        assert!(faults.batch(batch.clone()).await.is_err());
        assert!(faults.put("existing", b"x".to_vec()).await.is_err());
        assert!(faults.delete("existing").await.is_err());
        faults.put("unrelated", b"ok".to_vec()).await.unwrap();
        assert_eq!(
            inner.scan("", None, 10).await.unwrap(),
            vec!["existing".to_string(), "unrelated".to_string()]
        );

        faults.clear();
        faults.batch(batch).await.unwrap();
        assert_eq!(inner.get("new").await.unwrap().as_deref(), Some(&b"n"[..]));
        assert_eq!(
            faults.counts(),
            OpCounts {
                reads: 0,
                writes: 6,
                injected: 4
            }
        );
    }
}

#[tokio::test]
async fn fault_injector_fails_reads_then_recovers() {
    let faults = FaultInjector::new(Arc::new(MemoryBackend::new()));
    faults.put("k", b"v".to_vec()).await.unwrap();
    faults.fail_next_reads(3);
    assert!(faults.get("k").await.is_err());
    assert!(faults.list("").await.is_err());
    assert!(faults.scan("", None, 1).await.is_err());
    assert_eq!(faults.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(
        faults.counts(),
        OpCounts {
            reads: 4,
            writes: 1,
            injected: 3
        }
    );
    assert_eq!(faults.inner().get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
}

#[tokio::test]
async fn logical_batch_through_a_view() {
    let inner = Arc::new(MemoryStorage::new());
    let view = StorageView::new(inner.clone(), "v/");
    view.batch(vec![Write::put("a", SecretBytes::from_slice(b"1")), Write::delete("b")])
        .await
        .unwrap();
    assert_eq!(inner.scan("", None, 10).await.unwrap(), vec!["v/a".to_string()]);
}

/// Many writers at once (so the writer thread commits them in groups): every acknowledged
/// write is visible to its writer at once and is there after the database is reopened, and
/// each batch is whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redb_concurrent_writers_survive_reopen() {
    const WRITERS: usize = 64;
    const ROUNDS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.redb");
    {
        let db = RedbBackend::open(&path).unwrap();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let db = db.clone();
                tokio::spawn(async move {
                    for r in 0..ROUNDS {
                        let key = format!("w{w:02}/put/{r:02}");
                        db.put(&key, key.as_bytes().to_vec()).await.unwrap();
                        // Read-your-writes: an acknowledged write is visible at once.
                        assert_eq!(db.get(&key).await.unwrap().as_deref(), Some(key.as_bytes()));
                        let (a, b) = (format!("w{w:02}/batch/{r:02}/a"), format!("w{w:02}/batch/{r:02}/b"));
                        db.batch(vec![put(&a, a.as_bytes()), put(&b, b.as_bytes())])
                            .await
                            .unwrap();
                        if r % 2 == 1 {
                            db.delete(&format!("w{w:02}/put/{r:02}")).await.unwrap();
                        }
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
    }
    let db = RedbBackend::open(&path).unwrap();
    for w in 0..WRITERS {
        for r in 0..ROUNDS {
            let key = format!("w{w:02}/put/{r:02}");
            let expected = (r % 2 == 0).then(|| key.as_bytes().to_vec());
            assert_eq!(db.get(&key).await.unwrap(), expected, "{key}");
            for part in ["a", "b"] {
                let key = format!("w{w:02}/batch/{r:02}/{part}");
                assert_eq!(db.get(&key).await.unwrap().as_deref(), Some(key.as_bytes()), "{key}");
            }
        }
    }
    let total = db.scan("", None, usize::MAX).await.unwrap().len();
    assert_eq!(total, WRITERS * ROUNDS * 2 + WRITERS * ROUNDS / 2);
}

/// The group-commit protocol: a caller whose writes cannot be applied gets its error and the
/// group is committed without it; a failed commit fails every caller left in the group.
#[test]
fn group_commit_leaves_out_refused_callers() {
    use crate::redb_backend::{Attempt, commit_group};
    let err = |m: &str| StorageError::Backend(m.to_string());

    // Callers 3 and 5 cannot be applied; the others commit in the third attempt.
    let mut attempts: Vec<Vec<u32>> = Vec::new();
    let mut answers: Vec<(u32, Result<(), StorageError>)> = Vec::new();
    commit_group(
        vec![1, 2, 3, 4, 5, 6],
        |group: &[u32]| {
            attempts.push(group.to_vec());
            match group.iter().position(|j| j % 2 == 1 && *j > 1) {
                Some(i) => Attempt::Refused(i, err(&format!("bad {}", group[i]))),
                None => Attempt::Committed,
            }
        },
        |job, result| answers.push((job, result)),
    );
    assert_eq!(
        attempts,
        vec![vec![1, 2, 3, 4, 5, 6], vec![1, 2, 4, 5, 6], vec![1, 2, 4, 6]]
    );
    answers.sort_by_key(|(j, _)| *j);
    assert_eq!(
        answers,
        vec![
            (1, Ok(())),
            (2, Ok(())),
            (3, Err(err("bad 3"))),
            (4, Ok(())),
            (5, Err(err("bad 5"))),
            (6, Ok(())),
        ]
    );

    // A failed commit answers everyone with its error, after one attempt.
    let mut answers = Vec::new();
    let mut tries = 0;
    commit_group(
        vec![1, 2],
        |_: &[u32]| {
            tries += 1;
            Attempt::Failed(err("disk full"))
        },
        |job, result| answers.push((job, result)),
    );
    assert_eq!(tries, 1);
    assert_eq!(answers, vec![(1, Err(err("disk full"))), (2, Err(err("disk full")))]);

    // Every caller refused: each is answered, and nothing is attempted with an empty group.
    let mut answers = Vec::new();
    commit_group(
        vec![7, 8],
        |_: &[u32]| Attempt::Refused(0, err("no")),
        |job, result| answers.push((job, result)),
    );
    assert_eq!(answers, vec![(7, Err(err("no"))), (8, Err(err("no")))]);
}

#[test]
fn prefix_end_bounds_every_key_under_the_prefix() {
    assert_eq!(crate::prefix_end("a/b/").as_deref(), Some("a/b0"));
    assert_eq!(crate::prefix_end("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
    assert_eq!(crate::prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
    assert_eq!(crate::prefix_end(""), None);
    assert_eq!(crate::prefix_end("\u{10FFFF}"), None);
    let end = crate::prefix_end("a/").unwrap();
    for under in ["a/", "a/\u{10FFFF}\u{10FFFF}", "a/zzz"] {
        assert!(under < end.as_str(), "{under}");
    }
    assert!(crate::back_range("s/", Some("s/")).is_none());
    assert!(crate::back_range("s/", Some("a")).is_none());
}
