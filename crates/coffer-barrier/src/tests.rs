//! Tests of the barrier: encryption at rest, path binding, sealing, Shamir unseal, rotation
//! and persistence.

use std::sync::Arc;

use coffer_crypto::{Key256, SecretBytes, SecretString, shamir};
use coffer_storage::fault::FaultInjector;
use coffer_storage::memory::MemoryBackend;
use coffer_storage::redb_backend::RedbBackend;
use coffer_storage::testing::exercise_storage;
use coffer_storage::view::StorageView;
use coffer_storage::{PhysicalBackend, Storage, StorageError, Write};

use crate::{Barrier, BarrierError, SealStatus};

fn bytes(s: &[u8]) -> SecretBytes {
    SecretBytes::from_slice(s)
}

async fn dev_barrier() -> (Arc<MemoryBackend>, Barrier) {
    let backend = Arc::new(MemoryBackend::new());
    let barrier = Barrier::new(backend.clone());
    barrier.initialize_dev().await.unwrap();
    (backend, barrier)
}

/// The root key behind a set of unseal keys, computed the way an attacker with the keys would.
fn root_from(keys: &[SecretString]) -> Key256 {
    let shares: Vec<_> = keys.iter().map(|k| shamir::decode_share(k.expose()).unwrap()).collect();
    shamir::combine(&shares).unwrap()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every key and value in the raw backend.
async fn raw_dump(backend: &dyn PhysicalBackend) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for key in backend.scan("", None, usize::MAX).await.unwrap() {
        let value = backend.get(&key).await.unwrap().unwrap();
        out.push((key, value));
    }
    out
}

#[tokio::test]
async fn round_trip() {
    let (_, barrier) = dev_barrier().await;
    assert!(barrier.get("missing").await.unwrap().is_none());
    barrier.put("app/password", bytes(b"hunter2")).await.unwrap();
    assert_eq!(barrier.get("app/password").await.unwrap().unwrap().expose(), b"hunter2");
    barrier.put("app/password", bytes(b"")).await.unwrap();
    assert!(barrier.get("app/password").await.unwrap().unwrap().is_empty());
    barrier.delete("app/password").await.unwrap();
    assert!(barrier.get("app/password").await.unwrap().is_none());
}

#[tokio::test]
async fn backend_holds_no_plaintext() {
    let backend = Arc::new(MemoryBackend::new());
    let barrier = Barrier::new(backend.clone());
    let init = barrier.initialize(3, 2).await.unwrap();
    let root = root_from(&init.unseal_keys[..2]);
    barrier.submit_unseal_key(&init.unseal_keys[0]).await.unwrap();
    barrier.submit_unseal_key(&init.unseal_keys[2]).await.unwrap();
    let secret = b"correct horse battery staple 0123456789";
    barrier.put("app/db-password", bytes(secret)).await.unwrap();
    barrier
        .batch(vec![
            Write::put("app/batched", bytes(secret)),
            Write::put("app/other", bytes(b"x")),
        ])
        .await
        .unwrap();

    let dump = raw_dump(backend.as_ref()).await;
    let keys: Vec<&str> = dump.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        keys,
        [
            "core/keyring",
            "core/seal-config",
            "data/app/batched",
            "data/app/db-password",
            "data/app/other"
        ]
    );
    for (key, value) in &dump {
        assert!(!contains(value, secret), "plaintext found at {key}");
        assert!(!contains(value, root.expose()), "root key found at {key}");
        for unseal_key in &init.unseal_keys {
            assert!(
                !contains(value, unseal_key.expose().as_bytes()),
                "unseal key found at {key}"
            );
        }
    }
    // The frame starts with term 1 and version 1.
    let frame = backend.get("data/app/db-password").await.unwrap().unwrap();
    assert_eq!(&frame[..5], &[0, 0, 0, 1, 1]);
    assert_eq!(frame.len(), 5 + 12 + secret.len() + 16);
    // The keyring is framed under term 0 (the root key); the seal config is plain JSON.
    let keyring = backend.get("core/keyring").await.unwrap().unwrap();
    assert_eq!(&keyring[..5], &[0, 0, 0, 0, 1]);
    let config = backend.get("core/seal-config").await.unwrap().unwrap();
    assert_eq!(
        String::from_utf8(config).unwrap(),
        r#"{"version":1,"type":"shamir","shares":3,"threshold":2}"#
    );
}

#[tokio::test]
async fn ciphertext_is_bound_to_its_path() {
    let (backend, barrier) = dev_barrier().await;
    barrier.put("a", bytes(b"value of a")).await.unwrap();
    let frame = backend.get("data/a").await.unwrap().unwrap();

    backend.put("data/b", frame.clone()).await.unwrap();
    assert_eq!(barrier.get("b").await.err(), Some(StorageError::Corrupt("b".into())));
    assert_eq!(barrier.get("a").await.unwrap().unwrap().expose(), b"value of a");

    // A flipped bit, an unknown term, an unknown version and a truncated frame all fail.
    let mut tampered = frame.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let mut unknown_term = frame.clone();
    unknown_term[3] = 9;
    let mut unknown_version = frame.clone();
    unknown_version[4] = 2;
    for bad in [
        tampered,
        unknown_term,
        unknown_version,
        frame[..10].to_vec(),
        Vec::new(),
    ] {
        backend.put("data/a", bad).await.unwrap();
        assert_eq!(barrier.get("a").await.err(), Some(StorageError::Corrupt("a".into())));
    }
}

#[tokio::test]
async fn sealed_barrier_refuses_every_storage_call() {
    async fn all_sealed(barrier: &Barrier) {
        let sealed = Some(StorageError::Sealed);
        assert_eq!(barrier.get("k").await.err(), sealed);
        assert_eq!(barrier.put("k", bytes(b"v")).await.err(), sealed);
        assert_eq!(barrier.delete("k").await.err(), sealed);
        assert_eq!(barrier.list("").await.err(), sealed);
        assert_eq!(barrier.scan("", None, 10).await.err(), sealed);
        assert_eq!(barrier.batch(vec![Write::delete("k")]).await.err(), sealed);
    }
    let backend = Arc::new(MemoryBackend::new());
    let barrier = Barrier::new(backend.clone());
    all_sealed(&barrier).await;
    let init = barrier.initialize(1, 1).await.unwrap();
    all_sealed(&barrier).await;
    assert!(backend.scan("data/", None, 10).await.unwrap().is_empty());

    barrier.submit_unseal_key(&init.unseal_keys[0]).await.unwrap();
    barrier.put("k", bytes(b"v")).await.unwrap();
    barrier.seal();
    assert!(barrier.is_sealed());
    all_sealed(&barrier).await;
    assert_eq!(
        barrier.rotate().await.err().map(|e| e.to_string()),
        Some("coffer is sealed".into())
    );
}

#[tokio::test]
async fn unseal_with_three_of_five() {
    let barrier = Barrier::new(Arc::new(MemoryBackend::new()));
    let before = barrier.status().await.unwrap();
    assert_eq!(
        before,
        SealStatus {
            initialized: false,
            sealed: true,
            t: 0,
            n: 0,
            progress: 0,
            key_term: None
        }
    );
    let init = barrier.initialize(5, 3).await.unwrap();
    assert_eq!(init.unseal_keys.len(), 5);
    let keys = &init.unseal_keys;
    let status = |progress, sealed: bool, key_term| SealStatus {
        initialized: true,
        sealed,
        t: 3,
        n: 5,
        progress,
        key_term,
    };
    assert_eq!(barrier.status().await.unwrap(), status(0, true, None));
    assert_eq!(
        barrier.submit_unseal_key(&keys[0]).await.unwrap(),
        status(1, true, None)
    );
    // Submitting the same key again does not count twice.
    assert_eq!(
        barrier.submit_unseal_key(&keys[0]).await.unwrap(),
        status(1, true, None)
    );
    assert_eq!(
        barrier.submit_unseal_key(&keys[3]).await.unwrap(),
        status(2, true, None)
    );
    assert_eq!(
        barrier.submit_unseal_key(&keys[4]).await.unwrap(),
        status(0, false, Some(1))
    );
    barrier.put("x", bytes(b"y")).await.unwrap();
    // Further keys on an unsealed barrier change nothing.
    assert_eq!(
        barrier.submit_unseal_key(&keys[1]).await.unwrap(),
        status(0, false, Some(1))
    );

    barrier.seal();
    assert_eq!(barrier.status().await.unwrap(), status(0, true, None));
    for k in [&keys[2], &keys[1], &keys[0]] {
        barrier.submit_unseal_key(k).await.unwrap();
    }
    assert_eq!(barrier.get("x").await.unwrap().unwrap().expose(), b"y");
}

#[tokio::test]
async fn wrong_unseal_keys_fail_and_reset_progress() {
    let barrier = Barrier::new(Arc::new(MemoryBackend::new()));
    let keys = barrier.initialize(5, 3).await.unwrap().unseal_keys;
    let foreign = Barrier::new(Arc::new(MemoryBackend::new()))
        .initialize(5, 3)
        .await
        .unwrap()
        .unseal_keys;

    barrier.submit_unseal_key(&keys[0]).await.unwrap();
    barrier.submit_unseal_key(&keys[1]).await.unwrap();
    let err = barrier.submit_unseal_key(&foreign[2]).await.err().unwrap();
    assert!(matches!(err, BarrierError::InvalidUnsealKeys));
    assert!(err.to_string().contains("unseal keys were invalid"), "{err}");
    let status = barrier.status().await.unwrap();
    assert!(status.sealed);
    assert_eq!(status.progress, 0);

    // A foreign key with the same x as one already given makes the shares inconsistent.
    barrier.submit_unseal_key(&keys[0]).await.unwrap();
    barrier.submit_unseal_key(&keys[1]).await.unwrap();
    assert!(matches!(
        barrier.submit_unseal_key(&foreign[0]).await,
        Err(BarrierError::InvalidUnsealKeys)
    ));
    assert_eq!(barrier.status().await.unwrap().progress, 0);

    // Malformed keys, and keys made for another threshold, are refused without losing progress.
    barrier.submit_unseal_key(&keys[0]).await.unwrap();
    let garbage = SecretString::new("not-a-key".into());
    assert!(matches!(
        barrier.submit_unseal_key(&garbage).await,
        Err(BarrierError::InvalidUnsealKey(_))
    ));
    let other_threshold = Barrier::new(Arc::new(MemoryBackend::new()))
        .initialize(5, 2)
        .await
        .unwrap()
        .unseal_keys;
    assert!(matches!(
        barrier.submit_unseal_key(&other_threshold[1]).await,
        Err(BarrierError::InvalidUnsealKey(_))
    ));
    assert_eq!(barrier.status().await.unwrap().progress, 1);
    barrier.reset_unseal_progress();
    assert_eq!(barrier.status().await.unwrap().progress, 0);

    // The right keys still work.
    for k in &keys[2..] {
        barrier.submit_unseal_key(k).await.unwrap();
    }
    assert!(!barrier.is_sealed());
}

#[tokio::test]
async fn unseal_with_root_key() {
    let barrier = Barrier::new(Arc::new(MemoryBackend::new()));
    assert!(matches!(
        barrier.unseal_with_root_key(&Key256::generate().unwrap()).await,
        Err(BarrierError::NotInitialized)
    ));
    let keys = barrier.initialize(2, 2).await.unwrap().unseal_keys;
    assert!(matches!(
        barrier.unseal_with_root_key(&Key256::generate().unwrap()).await,
        Err(BarrierError::InvalidUnsealKeys)
    ));
    let status = barrier.unseal_with_root_key(&root_from(&keys)).await.unwrap();
    assert!(!status.sealed);
}

#[tokio::test]
async fn initialize_checks() {
    let backend = Arc::new(MemoryBackend::new());
    let barrier = Barrier::new(backend.clone());
    assert!(!barrier.is_initialized().await.unwrap());
    assert!(matches!(
        barrier.submit_unseal_key(&SecretString::new("x".into())).await,
        Err(BarrierError::NotInitialized)
    ));
    for (n, t) in [(0, 0), (3, 0), (2, 3)] {
        assert!(matches!(
            barrier.initialize(n, t).await,
            Err(BarrierError::InvalidConfig(_))
        ));
    }
    assert!(!barrier.is_initialized().await.unwrap());
    barrier.initialize(3, 2).await.unwrap();
    assert!(barrier.is_initialized().await.unwrap());
    assert!(matches!(
        barrier.initialize(3, 2).await,
        Err(BarrierError::AlreadyInitialized)
    ));
    // A second barrier over the same backend sees the stored state.
    let again = Barrier::new(backend);
    assert!(again.is_initialized().await.unwrap());
    assert!(matches!(
        again.initialize_dev().await,
        Err(BarrierError::AlreadyInitialized)
    ));
    let status = again.status().await.unwrap();
    assert_eq!((status.t, status.n, status.sealed), (2, 3, true));
}

#[tokio::test]
async fn failed_initialize_writes_nothing() {
    let faults = Arc::new(FaultInjector::new(Arc::new(MemoryBackend::new())));
    let barrier = Barrier::new(faults.clone());
    faults.fail_writes_with_prefix("core/seal-config");
    assert!(matches!(barrier.initialize(3, 2).await, Err(BarrierError::Storage(_))));
    assert!(faults.inner().scan("", None, 10).await.unwrap().is_empty());
    assert!(!barrier.is_initialized().await.unwrap());
    faults.clear();
    barrier.initialize_dev().await.unwrap();

    faults.fail_next_writes(1);
    let batch = vec![Write::put("a", bytes(b"1")), Write::put("b", bytes(b"2"))];
    assert!(barrier.batch(batch).await.is_err());
    assert!(barrier.scan("", None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn rotation_keeps_old_data_readable() {
    let backend = Arc::new(MemoryBackend::new());
    let barrier = Barrier::new(backend.clone());
    let keys = barrier.initialize(3, 2).await.unwrap().unseal_keys;
    barrier.submit_unseal_key(&keys[0]).await.unwrap();
    barrier.submit_unseal_key(&keys[1]).await.unwrap();

    barrier.put("old", bytes(b"written under term 1")).await.unwrap();
    assert_eq!(barrier.rotate().await.unwrap(), 2);
    barrier.put("new", bytes(b"written under term 2")).await.unwrap();
    assert_eq!(barrier.rotate().await.unwrap(), 3);
    assert_eq!(barrier.status().await.unwrap().key_term, Some(3));
    assert_eq!(
        &backend.get("data/old").await.unwrap().unwrap()[..4],
        &1u32.to_be_bytes()
    );
    assert_eq!(
        &backend.get("data/new").await.unwrap().unwrap()[..4],
        &2u32.to_be_bytes()
    );

    async fn check(barrier: &Barrier) {
        assert_eq!(
            barrier.get("old").await.unwrap().unwrap().expose(),
            b"written under term 1"
        );
        assert_eq!(
            barrier.get("new").await.unwrap().unwrap().expose(),
            b"written under term 2"
        );
    }
    check(&barrier).await;
    barrier.seal();
    barrier.submit_unseal_key(&keys[2]).await.unwrap();
    barrier.submit_unseal_key(&keys[0]).await.unwrap();
    check(&barrier).await;
    assert_eq!(barrier.status().await.unwrap().key_term, Some(3));
    barrier.put("newest", bytes(b"3")).await.unwrap();
    assert_eq!(
        &backend.get("data/newest").await.unwrap().unwrap()[..4],
        &3u32.to_be_bytes()
    );
}

#[tokio::test]
async fn failed_rotation_keeps_the_old_term() {
    let faults = Arc::new(FaultInjector::new(Arc::new(MemoryBackend::new())));
    let barrier = Barrier::new(faults.clone());
    barrier.initialize_dev().await.unwrap();
    faults.fail_next_writes(1);
    assert!(barrier.rotate().await.is_err());
    assert_eq!(barrier.status().await.unwrap().key_term, Some(1));
    barrier.put("k", bytes(b"v")).await.unwrap();
    assert_eq!(
        &faults.inner().get("data/k").await.unwrap().unwrap()[..4],
        &1u32.to_be_bytes()
    );
}

#[tokio::test]
async fn persists_across_reopening_a_redb_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.redb");
    let keys = {
        let barrier = Barrier::new(Arc::new(RedbBackend::open(&path).unwrap()));
        let keys = barrier.initialize(3, 2).await.unwrap().unseal_keys;
        barrier.submit_unseal_key(&keys[1]).await.unwrap();
        barrier.submit_unseal_key(&keys[2]).await.unwrap();
        barrier.put("before-rotate", bytes(b"one")).await.unwrap();
        barrier.rotate().await.unwrap();
        barrier.put("after-rotate", bytes(b"two")).await.unwrap();
        keys
    };
    let barrier = Barrier::new(Arc::new(RedbBackend::open(&path).unwrap()));
    let status = barrier.status().await.unwrap();
    assert!(status.initialized && status.sealed);
    assert_eq!((status.t, status.n), (2, 3));
    barrier.submit_unseal_key(&keys[0]).await.unwrap();
    barrier.submit_unseal_key(&keys[2]).await.unwrap();
    assert_eq!(barrier.status().await.unwrap().key_term, Some(2));
    assert_eq!(barrier.get("before-rotate").await.unwrap().unwrap().expose(), b"one");
    assert_eq!(barrier.get("after-rotate").await.unwrap().unwrap().expose(), b"two");
}

#[tokio::test]
async fn storage_api_cannot_reach_reserved_paths() {
    let (backend, barrier) = dev_barrier().await;
    let keyring_before = backend.get("core/keyring").await.unwrap();
    barrier.put("core/keyring", bytes(b"overwrite attempt")).await.unwrap();
    barrier
        .put("../core/seal-config", bytes(b"overwrite attempt"))
        .await
        .unwrap();
    assert_eq!(backend.get("core/keyring").await.unwrap(), keyring_before);
    assert_eq!(backend.list("").await.unwrap(), ["core/", "data/"]);
    assert_eq!(barrier.list("").await.unwrap(), ["../", "core/"]);
    assert_eq!(
        barrier.scan("", None, 10).await.unwrap(),
        ["../core/seal-config", "core/keyring"]
    );
    barrier.delete("core/keyring").await.unwrap();
    assert_eq!(backend.get("core/keyring").await.unwrap(), keyring_before);
    // The barrier's own state is intact: it still seals and unseals.
    barrier.seal();
    assert!(barrier.status().await.unwrap().initialized);
}

#[tokio::test]
async fn passes_the_storage_conformance_suite() {
    let (_, barrier) = dev_barrier().await;
    exercise_storage(&barrier).await;
    let barrier: Arc<dyn Storage> = Arc::new(barrier);
    exercise_storage(&StorageView::new(barrier, "logical/0f1e/")).await;
}

#[tokio::test]
async fn passes_the_storage_conformance_suite_over_redb() {
    let dir = tempfile::tempdir().unwrap();
    let barrier = Barrier::new(Arc::new(RedbBackend::open(dir.path().join("c.redb")).unwrap()));
    barrier.initialize_dev().await.unwrap();
    exercise_storage(&barrier).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_writes_and_rotations() {
    let (_, barrier) = dev_barrier().await;
    let barrier = Arc::new(barrier);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let b = barrier.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50 {
                let key = format!("t{t}/{i}");
                b.put(&key, bytes(key.as_bytes())).await.unwrap();
                assert_eq!(b.get(&key).await.unwrap().unwrap().expose(), key.as_bytes());
            }
        }));
    }
    let rotator = barrier.clone();
    tasks.push(tokio::spawn(async move {
        for _ in 0..5 {
            rotator.rotate().await.unwrap();
            tokio::task::yield_now().await;
        }
    }));
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(barrier.status().await.unwrap().key_term, Some(6));
    for t in 0..8 {
        for i in 0..50 {
            let key = format!("t{t}/{i}");
            assert_eq!(barrier.get(&key).await.unwrap().unwrap().expose(), key.as_bytes());
        }
    }
}

#[tokio::test]
async fn debug_shows_state_only() {
    let (_, barrier) = dev_barrier().await;
    assert_eq!(format!("{barrier:?}"), "Barrier { sealed: false, key_term: Some(1) }");
}

/// Every entry of a barrier's snapshot.
async fn snapshot_entries(barrier: &Barrier) -> Vec<coffer_storage::Entry> {
    let mut snap = barrier.snapshot().await.unwrap();
    let mut all = Vec::new();
    loop {
        let chunk = snap.stream.next_chunk().await.unwrap();
        if chunk.is_empty() {
            return all;
        }
        all.extend(chunk);
    }
}

/// A snapshot restores onto a fresh barrier, which comes up sealed with the source's seal
/// configuration and opens with the source's unseal keys, not its own.
#[tokio::test]
async fn snapshot_restores_onto_a_fresh_barrier_with_the_source_keys() {
    let a = Barrier::new(Arc::new(MemoryBackend::new()));
    let init = a.initialize(3, 2).await.unwrap();
    a.submit_unseal_key(&init.unseal_keys[0]).await.unwrap();
    a.submit_unseal_key(&init.unseal_keys[1]).await.unwrap();
    a.put("app/password", bytes(b"hunter2")).await.unwrap();
    a.rotate().await.unwrap();
    a.put("app/token", bytes(b"t-2")).await.unwrap();
    let entries = snapshot_entries(&a).await;
    assert_eq!(
        entries.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        [
            "core/keyring",
            "core/seal-config",
            "data/app/password",
            "data/app/token"
        ]
    );
    assert!(
        !entries.iter().any(|e| contains(&e.value, b"hunter2")),
        "nothing is decrypted"
    );

    // A fresh barrier: restored, it is initialized and sealed with a's configuration.
    let backend_b = Arc::new(MemoryBackend::new());
    let b = Barrier::new(backend_b.clone());
    let mut source = coffer_storage::VecEntryStream::new(entries.clone());
    assert_eq!(b.restore(&mut source, false).await.unwrap(), 4);
    let status = b.status().await.unwrap();
    assert!(status.initialized && status.sealed);
    assert_eq!((status.t, status.n), (2, 3));
    b.submit_unseal_key(&init.unseal_keys[2]).await.unwrap();
    b.submit_unseal_key(&init.unseal_keys[0]).await.unwrap();
    assert_eq!(b.get("app/password").await.unwrap().unwrap().expose(), b"hunter2");
    assert_eq!(b.get("app/token").await.unwrap().unwrap().expose(), b"t-2");

    // An initialized barrier is replaced only when asked to; its cached seal configuration
    // (1 of 1 here) gives way to the snapshot's.
    let (backend_c, c) = dev_barrier().await;
    c.put("mine", bytes(b"c")).await.unwrap();
    let mut source = coffer_storage::VecEntryStream::new(entries.clone());
    assert!(matches!(
        c.restore(&mut source, false).await,
        Err(BarrierError::AlreadyInitialized)
    ));
    assert!(!c.is_sealed(), "a refused restore changes nothing");
    let mut source = coffer_storage::VecEntryStream::new(entries.clone());
    c.restore(&mut source, true).await.unwrap();
    assert!(c.is_sealed());
    assert_eq!(c.status().await.unwrap().n, 3);
    assert!(backend_c.get("data/mine").await.unwrap().is_none());
    c.submit_unseal_key(&init.unseal_keys[1]).await.unwrap();
    c.submit_unseal_key(&init.unseal_keys[2]).await.unwrap();
    assert_eq!(c.get("app/password").await.unwrap().unwrap().expose(), b"hunter2");
}

/// A snapshot that is not a barrier's (no keyring, foreign keys) is refused and changes
/// nothing.
#[tokio::test]
async fn snapshots_without_the_barrier_records_are_refused() {
    let (_, a) = dev_barrier().await;
    a.put("x", bytes(b"1")).await.unwrap();
    let entries = snapshot_entries(&a).await;
    let backend = Arc::new(MemoryBackend::new());
    backend.put("data/keep", b"k".to_vec()).await.unwrap();
    let b = Barrier::new(backend.clone());
    let no_keyring: Vec<_> = entries.iter().filter(|e| e.key != "core/keyring").cloned().collect();
    let mut foreign = entries.clone();
    foreign.push(coffer_storage::Entry {
        key: "zzz".into(),
        value: Vec::new(),
    });
    let mut bad_config = entries.clone();
    bad_config[1].value = b"{".to_vec();
    for bad in [no_keyring, foreign, bad_config, Vec::new()] {
        let mut source = coffer_storage::VecEntryStream::new(bad);
        assert!(matches!(
            b.restore(&mut source, false).await,
            Err(BarrierError::InvalidSnapshot(_))
        ));
        assert_eq!(
            raw_dump(backend.as_ref()).await,
            vec![("data/keep".to_string(), b"k".to_vec())]
        );
        assert!(!b.status().await.unwrap().initialized);
    }
}
