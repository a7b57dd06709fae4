//! The ciphertext blob of symmetric keys, and the encoding of the encryption context.
//!
//! ```text
//! blob   = version:u8 (=1) | id_len:u8 | key_id (ASCII) | material_version:u32 BE | sealed
//! sealed = nonce (12) | AES-256-GCM ciphertext | tag (16)          (coffer_crypto::aead)
//! AAD    = "coffer-kms-v1" | header (everything before `sealed`) | context
//! context= count:u32 BE | for each pair in byte order of the key:
//!          key_len:u32 BE | key (UTF-8) | value_len:u32 BE | value (UTF-8)
//! ```
//!
//! The blob names the key and the version of its material, so Decrypt needs no `KeyId` and
//! ciphertexts made before a rotation still decrypt. The header is authenticated: a blob
//! whose key id is edited to another key's does not open. The context encoding is
//! length-prefixed, so `{"ab":"c"}` and `{"a":"bc"}` differ.

use std::collections::BTreeMap;

use coffer_crypto::aead::{NONCE_LEN, TAG_LEN};

const VERSION: u8 = 1;
const AAD_LABEL: &[u8] = b"coffer-kms-v1";

/// A parsed blob: who encrypted it, and the sealed part.
pub(crate) struct Blob<'a> {
    pub key_id: String,
    pub material_version: u32,
    header: &'a [u8],
    pub sealed: &'a [u8],
}

pub(crate) fn header(key_id: &str, material_version: u32) -> Vec<u8> {
    let mut h = Vec::with_capacity(2 + key_id.len() + 4);
    h.push(VERSION);
    // Key ids are UUIDs (36 bytes); longer ones cannot be created.
    h.push(u8::try_from(key_id.len()).unwrap_or(u8::MAX));
    h.extend_from_slice(key_id.as_bytes());
    h.extend_from_slice(&material_version.to_be_bytes());
    h
}

/// Parses a blob; `None` when it is not one of ours.
pub(crate) fn parse(blob: &[u8]) -> Option<Blob<'_>> {
    let (&version, rest) = blob.split_first()?;
    if version != VERSION {
        return None;
    }
    let (&id_len, rest) = rest.split_first()?;
    let id_len = usize::from(id_len);
    if rest.len() < id_len + 4 + NONCE_LEN + TAG_LEN {
        return None;
    }
    let (id, rest) = rest.split_at(id_len);
    let key_id = std::str::from_utf8(id).ok()?;
    if key_id.is_empty() || !key_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return None;
    }
    let (ver, sealed) = rest.split_at(4);
    let material_version = u32::from_be_bytes([ver[0], ver[1], ver[2], ver[3]]);
    let header_len = 2 + id_len + 4;
    Some(Blob {
        key_id: key_id.to_string(),
        material_version,
        header: &blob[..header_len],
        sealed,
    })
}

impl Blob<'_> {
    pub(crate) fn aad(&self, context: &BTreeMap<String, String>) -> Vec<u8> {
        aad(self.header, context)
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

/// The associated data: label, blob header, canonical context.
pub(crate) fn aad(header: &[u8], context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut out = Vec::with_capacity(AAD_LABEL.len() + header.len() + 4 + context.len() * 16);
    out.extend_from_slice(AAD_LABEL);
    out.extend_from_slice(header);
    put_len(&mut out, context.len());
    // BTreeMap<String, _> iterates in byte order of the keys.
    for (k, v) in context {
        put_len(&mut out, k.len());
        out.extend_from_slice(k.as_bytes());
        put_len(&mut out, v.len());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn layout_round_trip() {
        let id = "0b3c1f6e-5a8d-4a53-9a3e-0f0c3b1f2d4e";
        let mut b = header(id, 7);
        b.extend_from_slice(&[0u8; NONCE_LEN + TAG_LEN + 3]);
        let p = parse(&b).unwrap();
        assert_eq!(p.key_id, id);
        assert_eq!(p.material_version, 7);
        assert_eq!(p.sealed.len(), NONCE_LEN + TAG_LEN + 3);
        assert!(parse(&b[..10]).is_none());
        assert!(parse(b"garbage").is_none());
        assert!(parse(&[]).is_none());
    }

    #[test]
    fn context_encoding_is_unambiguous() {
        let h = header("k", 1);
        assert_ne!(aad(&h, &ctx(&[("ab", "c")])), aad(&h, &ctx(&[("a", "bc")])));
        assert_ne!(aad(&h, &ctx(&[])), aad(&h, &ctx(&[("", "")])));
        assert_eq!(
            aad(&h, &ctx(&[("b", "2"), ("a", "1")])),
            aad(&h, &ctx(&[("a", "1"), ("b", "2")]))
        );
        assert_ne!(aad(&header("k", 1), &ctx(&[])), aad(&header("k", 2), &ctx(&[])));
    }
}
