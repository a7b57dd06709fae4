//! The physical layout and the on-disk frame of every encrypted value.
//!
//! A frame is `term (u32 BE) | version (u8) | nonce (12) | ciphertext | tag (16)`. Version 1 is
//! AES-256-GCM with the physical storage path as associated data. Term 0 means "encrypted
//! under the root key" and is used for the keyring only; data terms start at 1.

use coffer_crypto::CryptoError;
use coffer_crypto::aead::{AeadKey, OVERHEAD};

/// Where the keyring is stored, encrypted under the root key.
pub(crate) const KEYRING_PATH: &str = "core/keyring";

/// Where the seal configuration is stored, in plaintext.
pub(crate) const SEAL_CONFIG_PATH: &str = "core/seal-config";

/// The prefix under which every key of the public `Storage` API is stored.
pub(crate) const DATA_PREFIX: &str = "data/";

/// The frame term of values encrypted under the root key.
pub(crate) const ROOT_TERM: u32 = 0;

/// The only frame version so far: AES-256-GCM, storage path as associated data.
const VERSION_AES_GCM_PATH_AAD: u8 = 1;

const HEADER_LEN: usize = 5;

/// Encrypts `plaintext` for storage at `path` under `key` of `term`.
pub(crate) fn seal(term: u32, key: &AeadKey, path: &str, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + OVERHEAD);
    out.extend_from_slice(&term.to_be_bytes());
    out.push(VERSION_AES_GCM_PATH_AAD);
    key.seal_append(path.as_bytes(), plaintext, &mut out)?;
    Ok(out)
}

/// Splits a stored frame into its term and the sealed message, checking the version.
pub(crate) fn parse(frame: &[u8]) -> Result<(u32, &[u8]), CryptoError> {
    match frame {
        [t0, t1, t2, t3, VERSION_AES_GCM_PATH_AAD, sealed @ ..] => {
            Ok((u32::from_be_bytes([*t0, *t1, *t2, *t3]), sealed))
        }
        _ => Err(CryptoError::Malformed),
    }
}

/// The physical path of a key of the public `Storage` API.
pub(crate) fn data_path(key: &str) -> String {
    let mut s = String::with_capacity(DATA_PREFIX.len() + key.len());
    s.push_str(DATA_PREFIX);
    s.push_str(key);
    s
}
