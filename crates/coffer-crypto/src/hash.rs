//! SHA-256 and HMAC-SHA256.

use aws_lc_rs::{digest, hmac};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 over data that arrives in pieces (a snapshot stream): [`Sha256::update`] with each
/// piece, then [`Sha256::finish`]. The result equals [`sha256`] of the pieces joined.
pub struct Sha256(digest::Context);

impl Sha256 {
    pub fn new() -> Self {
        Self(digest::Context::new(&digest::SHA256))
    }

    pub fn update(&mut self, data: &[u8]) {
        self.0.update(data);
    }

    pub fn finish(self) -> [u8; 32] {
        let d = self.0.finish();
        let mut out = [0u8; 32];
        out.copy_from_slice(d.as_ref());
        out
    }
}

impl Default for Sha256 {
    fn default() -> Self {
        Self::new()
    }
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(sha256(data))
}

/// Compares two byte strings in time that depends on their lengths only (for MACs, digests
/// of secrets and other values an attacker must not learn byte by byte through timing).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
}

/// HMAC-SHA256 of `data` under `key`. Sets the key up on every call: for many MACs under
/// one key, build an [`HmacSha256Key`] once.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    HmacSha256Key::new(key).sign(data)
}

/// An HMAC-SHA256 key set up once (the inner and outer padded states are computed at
/// construction), for keys that MAC many messages, such as an audit device's redaction and
/// chain keys. Neither `Debug` nor `Display`; aws-lc cleanses the states when it is dropped.
pub struct HmacSha256Key(hmac::Key);

impl HmacSha256Key {
    /// Sets up `key`.
    pub fn new(key: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }

    /// HMAC-SHA256 of `data`.
    pub fn sign(&self, data: &[u8]) -> [u8; 32] {
        let tag = hmac::sign(&self.0, data);
        let mut out = [0u8; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        // RFC 4231 test case 2.
        assert_eq!(
            hex::encode(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let mut h = Sha256::new();
        h.update(b"ab");
        h.update(b"");
        h.update(b"c");
        assert_eq!(h.finish(), sha256(b"abc"));
        // The same vector through a key that is set up once and used twice.
        let key = HmacSha256Key::new(b"Jefe");
        for _ in 0..2 {
            assert_eq!(
                key.sign(b"what do ya want for nothing?"),
                hmac_sha256(b"Jefe", b"what do ya want for nothing?")
            );
        }
    }
}
