//! AES-256-GCM with random 96-bit nonces, through `aws-lc-rs`.
//!
//! A sealed message is laid out as `nonce (12 bytes) || ciphertext || tag (16 bytes)`. The
//! nonce is drawn by aws-lc for every call (its `AES_256_GCM` randomized-nonce mode), so the
//! same key must not seal more than about 2^32 messages; the keyring's terms (see
//! [`crate::keyring`]) exist so that keys can be rotated long before that.
//!
//! [`Key256`] holds raw key bytes and zeroizes them on drop. [`AeadKey`] is a key prepared for
//! use (the AES key schedule is computed once), which hot paths such as the barrier keep per
//! keyring term. The free functions [`seal`] and [`open`] prepare a key on every call and suit
//! one-off uses such as encrypting the keyring under the root key.

use aws_lc_rs::aead::{AES_256_GCM, Aad, Nonce, RandomizedNonceKey};
use zeroize::Zeroizing;

use crate::{CryptoError, SecretBytes};

/// Length in bytes of the random nonce that prefixes every sealed message.
pub const NONCE_LEN: usize = 12;

/// Length in bytes of the authentication tag that ends every sealed message.
pub const TAG_LEN: usize = 16;

/// Bytes that sealing adds to a plaintext: the nonce and the tag.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;

/// A 256-bit symmetric key. Zeroized on drop; deliberately no `Debug` or `Display`.
///
/// The bytes live in their own heap allocation, so moving a `Key256` (into a map node, out of
/// a `Box`, into an `Option` that is later taken) moves a pointer and leaves no copy of the
/// key behind in the memory it came from. Held inline, a key was copied whenever the
/// keyring's `BTreeMap` split or shifted a node, and the stale copies were freed unwiped.
pub struct Key256(Box<Zeroizing<[u8; 32]>>);

impl Key256 {
    /// Length of the key in bytes.
    pub const LEN: usize = 32;

    /// A fresh key from the system CSPRNG.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = Self::zeroed();
        crate::random::fill(key.0.as_mut_slice())?;
        Ok(key)
    }

    /// A key from exactly 32 bytes; any other length is [`CryptoError::KeyLength`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != Self::LEN {
            return Err(CryptoError::KeyLength);
        }
        let mut key = Self::zeroed();
        key.0.copy_from_slice(bytes);
        Ok(key)
    }

    /// An all-zero key on the heap, to be filled in place.
    fn zeroed() -> Self {
        Self(Box::new(Zeroizing::new([0u8; 32])))
    }

    /// The raw key bytes. Every call site is a place where key material leaves its box.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// Constant-time equality with another key.
    pub fn ct_eq(&self, other: &Key256) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.as_slice().ct_eq(other.0.as_slice()))
    }
}

impl Clone for Key256 {
    /// Copies the bytes straight into the new key's allocation.
    fn clone(&self) -> Self {
        let mut key = Self::zeroed();
        key.0.copy_from_slice(self.0.as_slice());
        key
    }
}

/// An AES-256-GCM key prepared for sealing and opening.
///
/// aws-lc keeps the expanded key in its own context and wipes it when the context is freed.
pub struct AeadKey(RandomizedNonceKey);

impl AeadKey {
    /// Prepares `key` for use.
    pub fn new(key: &Key256) -> Result<Self, CryptoError> {
        RandomizedNonceKey::new(&AES_256_GCM, key.expose())
            .map(Self)
            .map_err(|_| CryptoError::KeyLength)
    }

    /// Encrypts `plaintext`, binding `aad`, into `nonce || ciphertext || tag`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        self.seal_append(aad, plaintext, &mut out)?;
        Ok(out)
    }

    /// Like [`AeadKey::seal`], but appends the sealed message to `out`, so that a caller can
    /// put a header in front of it without a second allocation.
    pub fn seal_append(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let start = out.len();
        out.reserve(plaintext.len() + OVERHEAD);
        out.extend_from_slice(&[0u8; NONCE_LEN]);
        out.extend_from_slice(plaintext);
        let body = start + NONCE_LEN;
        let sealed = self.0.seal_in_place_separate_tag(Aad::from(aad), &mut out[body..]);
        let (nonce, tag) = match sealed {
            Ok(parts) => parts,
            Err(_) => {
                // Do not leave plaintext behind in the caller's buffer.
                zeroize::Zeroize::zeroize(&mut out[body..]);
                out.truncate(start);
                return Err(CryptoError::Rng);
            }
        };
        out[start..body].copy_from_slice(nonce.as_ref());
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Decrypts a message produced by [`AeadKey::seal`] with the same `aad`.
    ///
    /// A message shorter than nonce plus tag is [`CryptoError::Malformed`]; a wrong key, wrong
    /// `aad` or any modified byte is [`CryptoError::Decrypt`].
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, CryptoError> {
        if sealed.len() < OVERHEAD {
            return Err(CryptoError::Malformed);
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed)?;
        let mut buf = body.to_vec();
        let len = match self.0.open_in_place(nonce, Aad::from(aad), &mut buf) {
            Ok(plaintext) => plaintext.len(),
            Err(_) => {
                // A failed open may leave partial output in the buffer; wipe it.
                zeroize::Zeroize::zeroize(&mut buf);
                return Err(CryptoError::Decrypt);
            }
        };
        // Shortening a Vec never reallocates, so the tag bytes simply fall off the end.
        buf.truncate(len);
        Ok(SecretBytes::new(buf))
    }
}

/// Encrypts `plaintext` under `key`, binding `aad`, into `nonce || ciphertext || tag`.
pub fn seal(key: &Key256, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    AeadKey::new(key)?.seal(aad, plaintext)
}

/// Decrypts a message produced by [`seal`] under the same `key` and `aad`.
pub fn open(key: &Key256, aad: &[u8], sealed: &[u8]) -> Result<SecretBytes, CryptoError> {
    AeadKey::new(key)?.open(aad, sealed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let key = Key256::generate().unwrap();
        let sealed = seal(&key, b"path/a", b"hello").unwrap();
        assert_eq!(sealed.len(), 5 + OVERHEAD);
        assert_eq!(open(&key, b"path/a", &sealed).unwrap().expose(), b"hello");
    }

    #[test]
    fn nonces_differ_between_calls() {
        let key = AeadKey::new(&Key256::generate().unwrap()).unwrap();
        let a = key.seal(b"", b"same").unwrap();
        let b = key.seal(b"", b"same").unwrap();
        assert_ne!(a[..NONCE_LEN], b[..NONCE_LEN]);
        assert_ne!(a, b);
    }

    #[test]
    fn empty_plaintext() {
        let key = Key256::generate().unwrap();
        let sealed = seal(&key, b"aad", b"").unwrap();
        assert_eq!(sealed.len(), OVERHEAD);
        assert!(open(&key, b"aad", &sealed).unwrap().is_empty());
    }

    #[test]
    fn wrong_aad_key_or_tamper_fails() {
        let key = Key256::generate().unwrap();
        let other = Key256::generate().unwrap();
        let sealed = seal(&key, b"a", b"secret").unwrap();
        assert_eq!(open(&key, b"b", &sealed).err(), Some(CryptoError::Decrypt));
        assert_eq!(open(&other, b"a", &sealed).err(), Some(CryptoError::Decrypt));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert_eq!(open(&key, b"a", &bad).err(), Some(CryptoError::Decrypt), "byte {i}");
        }
        assert_eq!(
            open(&key, b"a", &sealed[..OVERHEAD - 1]).err(),
            Some(CryptoError::Malformed)
        );
        assert_eq!(
            open(&key, b"a", &sealed[..sealed.len() - 1]).err(),
            Some(CryptoError::Decrypt)
        );
    }

    #[test]
    fn seal_append_keeps_prefix() {
        let key = AeadKey::new(&Key256::generate().unwrap()).unwrap();
        let mut out = b"HDR".to_vec();
        key.seal_append(b"x", b"body", &mut out).unwrap();
        assert_eq!(&out[..3], b"HDR");
        assert_eq!(key.open(b"x", &out[3..]).unwrap().expose(), b"body");
    }

    #[test]
    fn key_length_is_checked() {
        assert_eq!(Key256::from_bytes(&[0u8; 31]).err(), Some(CryptoError::KeyLength));
        assert_eq!(Key256::from_bytes(&[0u8; 33]).err(), Some(CryptoError::KeyLength));
        let k = Key256::from_bytes(&[7u8; 32]).unwrap();
        assert_eq!(k.expose(), &[7u8; 32]);
        assert!(k.ct_eq(&k.clone()));
        assert!(!k.ct_eq(&Key256::from_bytes(&[8u8; 32]).unwrap()));
    }

    #[test]
    fn known_answer_decrypts_with_aws_lc_layout() {
        // A message sealed with an all-zero key and nonce, built from the raw AES-GCM test
        // vector (NIST GCM test case 13: empty plaintext, empty AAD), must open.
        let key = Key256::from_bytes(&[0u8; 32]).unwrap();
        let mut msg = vec![0u8; NONCE_LEN];
        msg.extend_from_slice(&hex::decode("530f8afbc74536b9a963b4f1c4cb738b").unwrap());
        assert!(open(&key, b"", &msg).unwrap().is_empty());
    }

    proptest! {
        #[test]
        fn prop_round_trip(
            key in proptest::array::uniform32(any::<u8>()),
            aad in proptest::collection::vec(any::<u8>(), 0..64),
            pt in proptest::collection::vec(any::<u8>(), 0..2048),
        ) {
            let key = Key256::from_bytes(&key).unwrap();
            let sealed = seal(&key, &aad, &pt).unwrap();
            prop_assert_eq!(sealed.len(), pt.len() + OVERHEAD);
            let opened = open(&key, &aad, &sealed).unwrap();
            prop_assert_eq!(opened.expose(), pt.as_slice());
            let mut wrong_aad = aad.clone();
            wrong_aad.push(0);
            prop_assert_eq!(open(&key, &wrong_aad, &sealed).err(), Some(CryptoError::Decrypt));
        }
    }
}
