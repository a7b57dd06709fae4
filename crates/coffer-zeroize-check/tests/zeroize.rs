//! Secret material is wiped before its memory is freed: checked with [`CanaryAlloc`], which
//! searches every region freed (or moved away by `realloc`) during a [`watch`] for a known
//! pattern. Each test puts a canary, or a key whose bytes it knows, through one path and
//! asserts that no freed region still held it. The controls first show that the checker does
//! find a plain buffer freed unwiped, so a zero elsewhere means something.

#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use coffer_barrier::Barrier;
use coffer_crypto::aead::{self, AeadKey};
use coffer_crypto::{Key256, Keyring, SecretBytes, SecretString, shamir};
use coffer_storage::memory::MemoryBackend;
use coffer_storage::{PhysicalBackend, Storage};
use coffer_zeroize_check::{CANARY, CanaryAlloc, PATTERN_LEN, Report, installed, watch};
use zeroize::Zeroizing;

#[global_allocator]
static ALLOC: CanaryAlloc = CanaryAlloc;

/// Serializes the tests of this binary: the watch is process-wide, so a test's setup running
/// on another thread (which may free the canary legitimately or not) must not overlap a watch.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f` under watch for `pattern` and asserts that nothing freed still held it.
#[track_caller]
fn check_wiped(what: &str, pattern: &[u8; PATTERN_LEN], f: impl FnOnce()) {
    let ((), report) = watch(pattern, f);
    assert_eq!(
        report.leaks, 0,
        "{what}: {} freed region(s) still held the secret (sizes {:?})",
        report.leaks, report.sizes
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

/// A `Vec` of exactly `n` bytes' capacity, so filling it never reallocates.
fn exact(n: usize) -> Vec<u8> {
    Vec::with_capacity(n)
}

// ---- controls: the checker finds what it should ----

#[test]
fn control_a_plain_vec_freed_with_the_canary_is_detected() {
    let _serial = serial();
    assert!(installed(), "CanaryAlloc must be this binary's global allocator");
    let ((), report) = watch(&CANARY, || drop(std::hint::black_box(CANARY.to_vec())));
    assert_eq!(
        report,
        Report {
            leaks: 1,
            sizes: vec![PATTERN_LEN]
        }
    );
    // The canary anywhere inside a larger region, as a String too.
    let ((), report) = watch(&CANARY, || {
        let mut s = String::from("prefix ");
        s.push_str(std::str::from_utf8(&CANARY).unwrap());
        s.push_str(" suffix");
        drop(std::hint::black_box(s));
    });
    assert!(report.leaks >= 1, "{report:?}");
}

#[test]
fn control_a_wiped_vec_is_not_counted() {
    let _serial = serial();
    check_wiped("Zeroizing<Vec<u8>>", &CANARY, || {
        drop(std::hint::black_box(Zeroizing::new(CANARY.to_vec())));
    });
}

/// Growing a zeroizing buffer leaves the old region behind unwiped: `realloc` moves it and
/// `Zeroizing` only wipes the final one. This is why Coffer sizes secret buffers up front
/// (`Keyring::to_bytes`, `derive_signing_key`, the AEAD output). It also shows the checker
/// sees regions that `realloc` moves away.
#[test]
fn control_growing_a_zeroizing_vec_leaves_the_old_buffer() {
    let _serial = serial();
    let ((), report) = watch(&CANARY, || {
        let mut v = Zeroizing::new(exact(PATTERN_LEN));
        v.extend_from_slice(&CANARY);
        v.push(0); // over capacity: the canary is copied to a new region
        drop(std::hint::black_box(v));
    });
    assert_eq!(
        report,
        Report {
            leaks: 1,
            sizes: vec![PATTERN_LEN]
        }
    );
}

// ---- coffer-crypto ----

#[test]
fn secret_bytes_and_secret_string() {
    let _serial = serial();
    check_wiped("SecretBytes", &CANARY, || {
        let a = SecretBytes::new(CANARY.to_vec());
        let b = SecretBytes::from_slice(&CANARY);
        let c = b.clone();
        let d = SecretBytes::from(CANARY.to_vec());
        assert!(a.ct_eq(c.expose()) && a == d);
        drop((a, b, c, d));
    });
    check_wiped("SecretString", &CANARY, || {
        let s = SecretString::new(String::from_utf8(CANARY.to_vec()).unwrap());
        let t = SecretString::from(String::from_utf8(CANARY.to_vec()).unwrap());
        let u = s.clone();
        assert!(s == t);
        let bytes = u.into_bytes();
        assert_eq!(bytes.expose(), CANARY);
        drop((s, t, bytes));
    });
    check_wiped("random::secret_bytes", &CANARY, || {
        // Random bytes are not the canary; the path is checked with a known value below.
        drop(coffer_crypto::random::secret_bytes(64).unwrap());
    });
}

#[test]
fn key256_and_aead() {
    let _serial = serial();
    check_wiped("Key256 from bytes, AEAD with the canary as plaintext", &CANARY, || {
        let key = Key256::from_bytes(&CANARY).unwrap();
        let copy = key.clone();
        let boxed = Box::new(copy);
        let prepared = AeadKey::new(&boxed).unwrap();
        let sealed = prepared.seal(b"aad", &CANARY).unwrap();
        let opened = prepared.open(b"aad", &sealed).unwrap();
        assert_eq!(opened.expose(), CANARY);
        let mut out = b"HDR".to_vec();
        prepared.seal_append(b"x", &CANARY, &mut out).unwrap();
        let once = aead::open(&key, b"aad", &aead::seal(&key, b"aad", &CANARY).unwrap()).unwrap();
        assert_eq!(once.expose(), CANARY);
        // A failed open must not leave partial plaintext behind either.
        let mut bad = sealed.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(prepared.open(b"aad", &bad).is_err());
        drop((key, boxed, prepared, opened, once));
    });
    let generated = Key256::generate().unwrap();
    let pattern = *generated.expose();
    check_wiped("Key256::generate, moved to the heap and back", &pattern, move || {
        let boxed = Box::new(generated);
        let in_vec = vec![(*boxed).clone(), *boxed];
        drop(in_vec);
    });
}

/// The keyring encoding of `n` terms, each with the canary as its key.
fn canary_keyring_bytes(n: u32) -> SecretBytes {
    let mut b = exact(12 + 44 * n as usize);
    b.extend_from_slice(b"CKR\x01");
    b.extend_from_slice(&n.to_be_bytes()); // active
    b.extend_from_slice(&n.to_be_bytes()); // count
    for term in 1..=n {
        b.extend_from_slice(&term.to_be_bytes());
        b.extend_from_slice(&0u64.to_be_bytes());
        b.extend_from_slice(&CANARY);
    }
    SecretBytes::new(b)
}

#[test]
fn keyring_to_bytes_from_bytes_and_rotate() {
    let _serial = serial();
    // One term, and enough terms that the keyring's map splits nodes.
    for n in [1, 40] {
        let encoded = canary_keyring_bytes(n);
        check_wiped(&format!("Keyring of {n} terms"), &CANARY, move || {
            let ring = Keyring::from_bytes(encoded.expose()).unwrap();
            let again = Keyring::from_bytes(ring.to_bytes().expose()).unwrap();
            let mut cloned = again.clone();
            cloned.rotate().unwrap();
            assert!(cloned.key(1).unwrap().ct_eq(&Key256::from_bytes(&CANARY).unwrap()));
            drop((encoded, ring, again, cloned));
        });
    }
}

#[test]
fn shamir_split_and_combine() {
    let _serial = serial();
    let root = Key256::from_bytes(&CANARY).unwrap();
    for (n, t) in [(5u8, 3u8), (1, 1), (3, 1)] {
        let root = root.clone();
        check_wiped(&format!("Shamir {t} of {n} on the root key"), &CANARY, move || {
            let shares = shamir::split(&root, n, t).unwrap();
            let texts: Vec<SecretString> = shares.iter().map(shamir::encode_share).collect();
            let decoded: Vec<SecretBytes> = texts
                .iter()
                .map(|s| shamir::decode_share(s.expose()).unwrap())
                .collect();
            let back = shamir::combine(&decoded[..usize::from(t)]).unwrap();
            assert!(back.ct_eq(&root));
            drop((root, shares, texts, decoded, back));
        });
    }
    // The shares themselves are secrets too: watch the bytes of one.
    let shares = shamir::split(&root, 3, 2).unwrap();
    let pattern: [u8; PATTERN_LEN] = shares[0].expose()[3..].try_into().unwrap();
    check_wiped(
        "an unseal share through encode, decode and combine",
        &pattern,
        move || {
            let text = shamir::encode_share(&shares[0]);
            let decoded = shamir::decode_share(text.expose()).unwrap();
            let picked = [decoded, shares[1].clone()];
            assert!(shamir::combine(&picked).unwrap().ct_eq(&root));
            drop((shares, text, picked));
        },
    );
}

// ---- coffer-barrier ----

/// An initialized barrier over a memory backend, its unseal keys, and the root key (recovered
/// from the keys here, so a test can watch for its bytes). The barrier is in an `Arc`, on the
/// heap, as the core keeps it.
fn initialized_barrier(rt: &tokio::runtime::Runtime) -> (Arc<MemoryBackend>, Arc<Barrier>, Vec<SecretString>, Key256) {
    let backend = Arc::new(MemoryBackend::new());
    let barrier = Arc::new(Barrier::new(backend.clone()));
    let init = rt.block_on(barrier.initialize(3, 2)).unwrap();
    let shares: Vec<SecretBytes> = init
        .unseal_keys
        .iter()
        .map(|k| shamir::decode_share(k.expose()).unwrap())
        .collect();
    let root = shamir::combine(&shares).unwrap();
    (backend, barrier, init.unseal_keys, root)
}

#[test]
fn barrier_values_decrypted_are_wiped() {
    let _serial = serial();
    let rt = runtime();
    let (_backend, barrier, keys, _root) = initialized_barrier(&rt);
    check_wiped("a value put through the barrier and read back", &CANARY, || {
        rt.block_on(async {
            for key in &keys[..2] {
                barrier.submit_unseal_key(key).await.unwrap();
            }
            barrier
                .put("app/secret", SecretBytes::from_slice(&CANARY))
                .await
                .unwrap();
            let back = barrier.get("app/secret").await.unwrap().unwrap();
            assert_eq!(back.expose(), CANARY);
            barrier.rotate().await.unwrap();
            let again = barrier.get("app/secret").await.unwrap().unwrap();
            assert_eq!(again.expose(), CANARY);
            barrier.seal();
        });
    });
    drop(barrier);
}

#[test]
fn barrier_root_key_is_wiped_on_seal() {
    let _serial = serial();
    let rt = runtime();
    let (backend, barrier, keys, root) = initialized_barrier(&rt);
    let pattern = *root.expose();
    check_wiped(
        "the root key through unseal, rotate, seal and drop",
        &pattern,
        move || {
            rt.block_on(async {
                for key in &keys[..2] {
                    barrier.submit_unseal_key(key).await.unwrap();
                }
                barrier.rotate().await.unwrap();
                barrier.seal();
                barrier.unseal_with_root_key(&root).await.unwrap();
                barrier.seal();
            });
            drop((barrier, backend, root, keys, rt));
        },
    );
}

#[test]
fn barrier_data_key_is_wiped_on_seal() {
    let _serial = serial();
    let rt = runtime();
    let (backend, barrier, keys, root) = initialized_barrier(&rt);
    // Open the stored keyring here to learn the data key of term 1.
    let frame = rt.block_on(backend.get("core/keyring")).unwrap().unwrap();
    let plain = aead::open(&root, b"core/keyring", &frame[5..]).unwrap();
    let pattern = *Keyring::from_bytes(plain.expose()).unwrap().key(1).unwrap().expose();
    drop(plain);
    check_wiped("the data key through unseal, use, seal and drop", &pattern, move || {
        rt.block_on(async {
            for key in &keys[..2] {
                barrier.submit_unseal_key(key).await.unwrap();
            }
            barrier.put("k", SecretBytes::from_slice(b"v")).await.unwrap();
            assert_eq!(barrier.get("k").await.unwrap().unwrap().expose(), b"v");
            barrier.seal();
        });
        drop((barrier, backend, keys, rt));
    });
}

// ---- coffer-sigv4 ----

#[test]
fn sigv4_signing_keys_are_wiped() {
    let _serial = serial();
    let credential = coffer_sigv4::Credential {
        access_key_id: "AKIAZEROIZE".into(),
        date: "20250101".into(),
        region: "us-east-1".into(),
        service: "secretsmanager".into(),
    };
    check_wiped("a secret access key through the signing-key cache", &CANARY, || {
        let cache = coffer_sigv4::SigningKeyCache::with_max_entries(1);
        let secret = SecretBytes::from_slice(&CANARY);
        let a = cache.signing_key(&secret, &credential);
        let b = cache.signing_key(&secret, &credential);
        assert!(a == b);
        drop((cache, secret, a, b));
    });
    let derived = coffer_sigv4::derive_signing_key(&CANARY, &credential.date, &credential.region, &credential.service);
    let pattern: [u8; PATTERN_LEN] = derived.expose().try_into().unwrap();
    drop(derived);
    check_wiped("a derived signing key in the cache", &pattern, || {
        let cache = coffer_sigv4::SigningKeyCache::with_max_entries(1);
        let secret = SecretBytes::from_slice(&CANARY);
        let key = cache.signing_key(&secret, &credential);
        // A second scope evicts the first entry (the cache holds one).
        let other = coffer_sigv4::Credential {
            region: "eu-west-1".into(),
            ..credential.clone()
        };
        let _ = cache.signing_key(&secret, &other);
        cache.clear();
        drop((cache, secret, key));
    });
}

// ---- coffer-audit ----

#[test]
fn audit_device_key_is_wiped() {
    let _serial = serial();
    check_wiped("an audit DeviceKey and the keys derived from it", &CANARY, || {
        let key = coffer_audit::DeviceKey::from_secret(SecretBytes::from_slice(&CANARY));
        let redaction = key.redaction_key();
        let chain = key.chain_key();
        let redactor = key.redactor();
        drop((key, redaction, chain, redactor));
    });
}
