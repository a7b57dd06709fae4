//! The keyring: every data-encryption key Coffer has ever used, by term.
//!
//! A term is a `u32` that starts at 1 and grows by one on every [`Keyring::rotate`]. New data
//! is always encrypted under the active (newest) term; data written earlier names its term in
//! its header, so it stays readable after a rotation. Term 0 is never a data key: the barrier
//! uses it to mark values encrypted under the root key.
//!
//! The keyring is persisted by the barrier, encrypted under the root key. Its encoding
//! ([`Keyring::to_bytes`]) is a small versioned binary format, all big-endian:
//!
//! ```text
//! magic "CKR" | version 1 (u8) | active (u32) | count (u32) | count * (term u32 | installed u64 | key [32])
//! ```
//!
//! Terms are stored in increasing order. Decoding rejects anything else, so a truncated or
//! padded keyring is an error rather than a silently shorter one.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::aead::Key256;
use crate::{CryptoError, SecretBytes};

const MAGIC: &[u8; 3] = b"CKR";
const FORMAT_VERSION: u8 = 1;
const HEADER_LEN: usize = 3 + 1 + 4 + 4;
const ENTRY_LEN: usize = 4 + 8 + Key256::LEN;

/// One key of the keyring and when it was installed.
#[derive(Clone)]
pub struct KeyTerm {
    /// The data-encryption key of this term.
    pub key: Key256,
    /// When the term was installed, in seconds since the Unix epoch.
    pub installed: u64,
}

/// Every data-encryption key by term, and which term is active.
///
/// The invariant `terms.contains_key(&active)` holds for every value of this type: the
/// constructors establish it and no method removes a term.
#[derive(Clone)]
pub struct Keyring {
    terms: BTreeMap<u32, KeyTerm>,
    active: u32,
}

impl Keyring {
    /// A keyring with one random key at term 1.
    pub fn new_random() -> Result<Self, CryptoError> {
        let mut terms = BTreeMap::new();
        terms.insert(
            1,
            KeyTerm {
                key: Key256::generate()?,
                installed: unix_now(),
            },
        );
        Ok(Self { terms, active: 1 })
    }

    /// Adds a random key at term `active + 1`, makes it active and returns the new term.
    ///
    /// Fails only if the system RNG fails or the term counter would overflow.
    pub fn rotate(&mut self) -> Result<u32, CryptoError> {
        // Term u32::MAX + 1 does not exist; after four billion rotations the next one fails.
        let next = self.active.checked_add(1).ok_or(CryptoError::UnknownTerm(u32::MAX))?;
        let key = Key256::generate()?;
        self.terms.insert(
            next,
            KeyTerm {
                key,
                installed: unix_now(),
            },
        );
        self.active = next;
        Ok(next)
    }

    /// The key of `term`, or [`CryptoError::UnknownTerm`].
    pub fn key(&self, term: u32) -> Result<&Key256, CryptoError> {
        self.terms
            .get(&term)
            .map(|t| &t.key)
            .ok_or(CryptoError::UnknownTerm(term))
    }

    /// The term new data is encrypted under.
    pub fn active_term(&self) -> u32 {
        self.active
    }

    /// The key of the active term.
    pub fn active_key(&self) -> Result<&Key256, CryptoError> {
        self.key(self.active)
    }

    /// Every term with its key and install time, in increasing term order.
    pub fn terms(&self) -> impl Iterator<Item = (u32, &KeyTerm)> {
        self.terms.iter().map(|(t, k)| (*t, k))
    }

    /// The versioned binary encoding described in the module docs, in a zeroizing buffer.
    pub fn to_bytes(&self) -> SecretBytes {
        let mut out = Vec::with_capacity(HEADER_LEN + ENTRY_LEN * self.terms.len());
        out.extend_from_slice(MAGIC);
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&self.active.to_be_bytes());
        // A BTreeMap keyed by u32 holds at most u32::MAX + 1 entries, and building one that
        // large would need far more memory than a keyring ever uses; saturate to be safe.
        let count = u32::try_from(self.terms.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for (term, entry) in &self.terms {
            out.extend_from_slice(&term.to_be_bytes());
            out.extend_from_slice(&entry.installed.to_be_bytes());
            out.extend_from_slice(entry.key.expose());
        }
        SecretBytes::new(out)
    }

    /// Decodes [`Keyring::to_bytes`] output. Anything malformed is [`CryptoError::Malformed`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        let mut r = Reader(bytes);
        if r.take(3)? != MAGIC || r.u8()? != FORMAT_VERSION {
            return Err(CryptoError::Malformed);
        }
        let active = r.u32()?;
        let count = r.u32()? as usize;
        if r.0.len() != count.checked_mul(ENTRY_LEN).ok_or(CryptoError::Malformed)? {
            return Err(CryptoError::Malformed);
        }
        let mut terms = BTreeMap::new();
        let mut previous = 0u32;
        for _ in 0..count {
            let term = r.u32()?;
            let installed = r.u64()?;
            let key = Key256::from_bytes(r.take(Key256::LEN)?)?;
            // Terms start at 1 and are stored strictly increasing.
            if term <= previous {
                return Err(CryptoError::Malformed);
            }
            previous = term;
            terms.insert(term, KeyTerm { key, installed });
        }
        if !terms.contains_key(&active) {
            return Err(CryptoError::Malformed);
        }
        Ok(Self { terms, active })
    }
}

impl fmt::Debug for Keyring {
    /// Prints the active term and each term's install time, never a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let installed: BTreeMap<u32, u64> = self.terms.iter().map(|(t, k)| (*t, k.installed)).collect();
        f.debug_struct("Keyring")
            .field("active", &self.active)
            .field("installed", &installed)
            .finish()
    }
}

impl fmt::Debug for KeyTerm {
    /// Prints the install time only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyTerm")
            .field("key", &"<redacted>")
            .field("installed", &self.installed)
            .finish()
    }
}

/// Seconds since the Unix epoch, or 0 if the clock is set before it.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A cursor over a byte slice whose reads fail with [`CryptoError::Malformed`] at the end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CryptoError> {
        if self.0.len() < n {
            return Err(CryptoError::Malformed);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CryptoError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, CryptoError> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self) -> Result<u64, CryptoError> {
        let mut b = [0u8; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(b))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn new_and_rotate() {
        let mut ring = Keyring::new_random().unwrap();
        assert_eq!(ring.active_term(), 1);
        let k1 = ring.key(1).unwrap().clone();
        assert_eq!(ring.rotate().unwrap(), 2);
        assert_eq!(ring.rotate().unwrap(), 3);
        assert_eq!(ring.active_term(), 3);
        assert!(ring.key(1).unwrap().ct_eq(&k1));
        assert!(!ring.key(2).unwrap().ct_eq(&k1));
        assert!(ring.active_key().unwrap().ct_eq(ring.key(3).unwrap()));
        assert_eq!(ring.key(4).err(), Some(CryptoError::UnknownTerm(4)));
        assert_eq!(ring.key(0).err(), Some(CryptoError::UnknownTerm(0)));
        assert_eq!(ring.terms().map(|(t, _)| t).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn encoding_round_trip() {
        let mut ring = Keyring::new_random().unwrap();
        ring.rotate().unwrap();
        let bytes = ring.to_bytes();
        assert_eq!(bytes.len(), HEADER_LEN + 2 * ENTRY_LEN);
        let back = Keyring::from_bytes(bytes.expose()).unwrap();
        assert_eq!(back.active_term(), 2);
        for (term, entry) in ring.terms() {
            let other = back.key(term).unwrap();
            assert!(entry.key.ct_eq(other));
        }
        assert_eq!(format!("{back:?}"), format!("{ring:?}"));
    }

    #[test]
    fn malformed_encodings_are_rejected() {
        let ring = Keyring::new_random().unwrap();
        let good = ring.to_bytes().expose().to_vec();
        // Truncated, padded, wrong magic, wrong version.
        assert!(Keyring::from_bytes(&good[..good.len() - 1]).is_err());
        let mut padded = good.clone();
        padded.push(0);
        assert!(Keyring::from_bytes(&padded).is_err());
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(Keyring::from_bytes(&bad).is_err());
        let mut bad = good.clone();
        bad[3] = 2;
        assert!(Keyring::from_bytes(&bad).is_err());
        // Active term not present.
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&9u32.to_be_bytes());
        assert!(Keyring::from_bytes(&bad).is_err());
        // Term 0 is reserved.
        let mut bad = good.clone();
        bad[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&0u32.to_be_bytes());
        assert!(Keyring::from_bytes(&bad).is_err());
        assert!(Keyring::from_bytes(&[]).is_err());
        assert!(Keyring::from_bytes(&good).is_ok());
    }

    #[test]
    fn debug_prints_no_key_material() {
        let ring = Keyring::new_random().unwrap();
        let key_hex = hex::encode(ring.key(1).unwrap().expose());
        let text = format!("{ring:?} {:?}", ring.terms().next().unwrap().1);
        assert!(text.contains("active: 1"));
        assert!(!text.contains(&key_hex));
        assert!(!text.contains(&format!("{:?}", ring.key(1).unwrap().expose())));
    }
}
