//! Fuzz targets of what the barrier reads from disk: value frames, the sealed keyring and
//! its plaintext encoding, the seal configuration, and unseal keys (Shamir shares) typed in
//! by an operator. See `docs/reliability.md`.

use std::sync::Arc;

use coffer_crypto::{Keyring, SecretBytes, SecretString, shamir};
use coffer_fuzz::{Fuzz, runtime};
use coffer_storage::memory::MemoryBackend;
use coffer_storage::{PhysicalBackend, Storage};

use crate::format::{KEYRING_PATH, data_path};
use crate::seal::SealConfig;
use crate::{Barrier, BarrierError};

const TARGET_KEY: &str = "fuzz/target";

/// Property: a stored frame opens only if it is byte for byte the frame the barrier wrote
/// for that key (any change, truncation, or a frame moved from another key fails as
/// `Corrupt`), and nothing panics.
#[test]
fn fuzz_barrier_frame() {
    let rt = runtime();
    let backend = Arc::new(MemoryBackend::new());
    let barrier = Barrier::new(backend.clone());
    rt.block_on(async {
        barrier.initialize_dev().await.unwrap();
        barrier
            .put(TARGET_KEY, SecretBytes::from_slice(b"{\"password\":\"hunter2\"}"))
            .await
            .unwrap();
        barrier.put("fuzz/empty", SecretBytes::from_slice(b"")).await.unwrap();
        barrier.rotate().await.unwrap();
        barrier
            .put("fuzz/after-rotate", SecretBytes::from_slice(&[7u8; 300]))
            .await
            .unwrap();
    });
    let original = rt.block_on(backend.get(&data_path(TARGET_KEY))).unwrap().unwrap();
    let mut seeds = Vec::new();
    for key in [TARGET_KEY, "fuzz/empty", "fuzz/after-rotate"] {
        let frame = rt.block_on(backend.get(&data_path(key))).unwrap().unwrap();
        seeds.push((key.replace('/', "-"), frame));
    }
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "barrier_frame").seeds(seeds);
    fuzz.run(|input| {
        rt.block_on(async {
            backend.put(&data_path(TARGET_KEY), input.to_vec()).await.unwrap();
            let read = barrier.get(TARGET_KEY).await;
            if input == original.as_slice() {
                assert_eq!(read.unwrap().unwrap().expose(), b"{\"password\":\"hunter2\"}");
            } else {
                assert!(read.is_err(), "a changed frame opened");
            }
        });
    });
}

/// Property: the sealed keyring opens (and the barrier unseals) only if it is byte for byte
/// the stored one; the keyring's plaintext decoder never panics and round-trips what it
/// accepts.
#[test]
fn fuzz_keyring() {
    let rt = runtime();
    let backend = Arc::new(MemoryBackend::new());
    let (key, original) = rt.block_on(async {
        let barrier = Barrier::new(backend.clone());
        let key = barrier.initialize_dev().await.unwrap();
        barrier.rotate().await.unwrap();
        (key, backend.get(KEYRING_PATH).await.unwrap().unwrap())
    });
    let mut plain = Keyring::new_random().unwrap();
    plain.rotate().unwrap();
    plain.rotate().unwrap();
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "keyring").seeds([
        ("sealed-two-terms", original.clone()),
        ("plain-three-terms", plain.to_bytes().expose().to_vec()),
    ]);
    fuzz.run(|input| {
        if let Ok(keyring) = Keyring::from_bytes(input) {
            let again = Keyring::from_bytes(keyring.to_bytes().expose()).unwrap();
            assert_eq!(again.active_term(), keyring.active_term());
            assert_eq!(again.to_bytes().expose(), keyring.to_bytes().expose());
            assert!(keyring.active_key().is_ok());
        }
        rt.block_on(async {
            backend.put(KEYRING_PATH, input.to_vec()).await.unwrap();
            let barrier = Barrier::new(backend.clone());
            let unsealed = barrier.submit_unseal_key(&key).await.map(|s| !s.sealed);
            if input == original.as_slice() {
                assert!(unsealed.unwrap());
            } else {
                assert!(!matches!(unsealed, Ok(true)), "a changed keyring unsealed");
            }
        });
    });
}

/// Property: the stored seal configuration decodes without panicking, and what decodes
/// re-encodes to a configuration that decodes to the same.
#[test]
fn fuzz_seal_config() {
    let seeds = [(5, 3), (1, 1), (255, 255)].map(|(n, t)| {
        (
            format!("shamir-{t}-of-{n}"),
            SealConfig::new(n, t).unwrap().to_json().unwrap(),
        )
    });
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "seal_config")
        .seeds(seeds)
        .dictionary(&[
            "\"version\":",
            "\"type\":",
            "\"shares\":",
            "\"threshold\":",
            "\"shamir\"",
            "256",
        ]);
    fuzz.run(|input| {
        if let Ok(config) = SealConfig::from_json(input, "core/seal-config") {
            let again = SealConfig::from_json(&config.to_json().unwrap(), "core/seal-config").unwrap();
            assert_eq!((again.shares, again.threshold), (config.shares, config.threshold));
            assert!(config.threshold >= 1 && config.threshold <= config.shares);
        }
    });
}

/// Property: an unseal key typed in decodes without panicking; a decoded share re-encodes
/// to text that decodes to the same share; shares combine or fail without panicking; and an
/// initialized barrier refuses a changed key without unsealing.
#[test]
fn fuzz_unseal_key() {
    let rt = runtime();
    let backend = Arc::new(MemoryBackend::new());
    let init = rt.block_on(async {
        let barrier = Barrier::new(backend.clone());
        barrier.initialize(3, 2).await.unwrap()
    });
    let originals: Vec<String> = init.unseal_keys.iter().map(|k| k.expose().to_owned()).collect();
    let root = coffer_crypto::Key256::generate().unwrap();
    let single = shamir::split(&root, 1, 1).unwrap();
    let mut seeds: Vec<(String, Vec<u8>)> = originals
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("share-{i}-of-3-threshold-2"), k.as_bytes().to_vec()))
        .collect();
    seeds.push((
        "share-threshold-1".into(),
        shamir::encode_share(&single[0]).expose().as_bytes().to_vec(),
    ));
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "unseal_key")
        .seeds(seeds)
        .dictionary(&["=", "==", "+", "/", " "]);
    let first = shamir::decode_share(&originals[0]).unwrap();
    fuzz.run(|input| {
        let text = String::from_utf8_lossy(input);
        if let Ok(share) = shamir::decode_share(&text) {
            let encoded = shamir::encode_share(&share);
            assert_eq!(shamir::decode_share(encoded.expose()).unwrap().expose(), share.expose());
            let _ = shamir::share_threshold(&share);
            let _ = shamir::combine(std::slice::from_ref(&share));
            let _ = shamir::combine(&[first.clone(), share]);
        }
        rt.block_on(async {
            let barrier = Barrier::new(backend.clone());
            let key = SecretString::new(text.into_owned());
            let status = barrier.submit_unseal_key(&key).await;
            let _ = barrier
                .submit_unseal_key(&SecretString::new(originals[0].clone()))
                .await;
            let unsealed = matches!(barrier.status().await, Ok(s) if !s.sealed);
            let valid = originals
                .iter()
                .any(|o| o.trim() == key.expose().trim() && o.trim() != originals[0]);
            assert_eq!(unsealed, valid, "a changed unseal key unsealed, or a valid one did not");
            if let Err(e) = status {
                assert!(!matches!(e, BarrierError::Sealed), "{e}");
            }
        });
    });
}
