//! The hash chain: how a line is sealed, and how a sealed line is read back.
//!
//! A line is the redacted event JSON with one more member, `"coffer"`, always last:
//!
//! ```text
//! {"eventVersion":"1.11",...,"eventCategory":"Management","coffer":{"v":1,"seq":42,"prev":"<64 hex>","hash":"<64 hex>","mac":"<64 hex>"}}\n
//! └──────────────────────── body ───────────────────────┘└──────────── meta ───────────────┘└──────────── tail ─────────────┘
//! ```
//!
//! - `seq` counts the lines of one device's chain from 1, across rotated files and restarts.
//! - `prev` is the previous line's `hash` (64 zeros for `seq` 1).
//! - `hash = SHA-256( SHA-256(body) ‖ meta )`, over the exact bytes written: body is everything
//!   before `,"coffer":`, meta is `,"coffer":{"v":1,"seq":N,"prev":"…"`. Hashing the body first
//!   lets the broker do the expensive part outside the per-device lock.
//! - `mac = HMAC-SHA256(chain key, hash)`, the chain key being derived from the device key
//!   ([`crate::DeviceKey::chain_key`]).
//!
//! **Why both a plain hash and a MAC.** The plain SHA-256 chain can be checked by anyone with
//! the file and no key: it finds every changed byte (the hash no longer matches), every removed
//! line (a gap in `seq`, a broken `prev` link), every reordered line. But someone who can write
//! the file could recompute a plain chain from the edit onwards. The MAC stops that: without the
//! chain key nobody can produce valid MACs, so with the key `verify` also detects a rewritten
//! chain and pins it to the first forged line. The MAC costs one HMAC over 32 bytes per line,
//! and the chain key can be given to an auditor without the redaction key (so the auditor cannot
//! test guesses against hashed secrets). Anchoring every line in sealed storage instead would
//! cost a storage write per request.
//!
//! **What cannot be detected offline.** Lines removed from the end of the newest file (or a
//! whole newest file) leave a shorter but consistent chain. To catch that, the server keeps the
//! device's [`ChainHead`] (seq and hash of its latest line) in sealed storage (at shutdown, at
//! rotation, and periodically) and passes it to `verify` as the expected head; lines after the
//! last stored head can still be cut undetected. Removing the oldest files is detected only when
//! `verify` is told the set starts at the beginning (`require_genesis`). Someone holding the
//! chain key (the server, or an auditor given it) can forge a whole chain.

use coffer_crypto::SecretBytes;
use coffer_crypto::hash::{HmacSha256Key, sha256};

/// The key that authenticates a device's chain (the `mac` of each line). Neither `Debug` nor
/// `Display` shows it. The HMAC key is set up once, when the `ChainKey` is made.
pub struct ChainKey {
    bytes: SecretBytes,
    hmac: HmacSha256Key,
}

impl ChainKey {
    /// Wraps key material (32 bytes from [`crate::DeviceKey::chain_key`], or read from a file an
    /// operator was given).
    pub fn new(key: SecretBytes) -> Self {
        let hmac = HmacSha256Key::new(key.expose());
        Self { bytes: key, hmac }
    }

    /// The key bytes, to hand to an auditor.
    pub fn expose(&self) -> &[u8] {
        self.bytes.expose()
    }

    pub(crate) fn mac(&self, hash: &[u8; 32]) -> [u8; 32] {
        self.hmac.sign(hash)
    }

    /// Whether `mac` is the MAC of `hash`, compared in constant time (a verifier that answers
    /// for many candidate lines must not tell how many leading bytes of a forged MAC were
    /// right).
    pub(crate) fn verifies(&self, hash: &[u8; 32], mac: &[u8; 32]) -> bool {
        coffer_crypto::hash::ct_eq(&self.mac(hash), mac)
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

/// The position of a chain's latest line: what the server keeps in sealed storage to detect a
/// truncated log, and what a restarted device continues from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainHead {
    /// The latest line's `seq` (0 before the first line).
    pub seq: u64,
    /// The latest line's `hash` (zeros before the first line).
    pub hash: [u8; 32],
}

impl ChainHead {
    /// The head of an empty chain: the first line gets `seq` 1 and `prev` zeros.
    pub const GENESIS: ChainHead = ChainHead { seq: 0, hash: [0; 32] };

    /// The hash in the lowercase hex used in lines.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }
}

/// The meta prefix: `,"coffer":{"v":1,"seq":`.
pub(crate) const META_START: &[u8] = b",\"coffer\":{\"v\":1,\"seq\":";
const PREV_START: &[u8] = b",\"prev\":\"";
const HASH_START: &[u8] = b",\"hash\":\"";
const MAC_START: &[u8] = b"\",\"mac\":\"";
const END: &[u8] = b"\"}}";
/// The fixed length of the tail after the meta.
const TAIL_LEN: usize = HASH_START.len() + 64 + MAC_START.len() + 64 + END.len();

/// Appends meta and tail to `line`, which holds a body (an event object without its closing
/// brace) whose SHA-256 is `body_digest`, chaining it after `prev`. Returns the new head.
pub(crate) fn seal(line: &mut Vec<u8>, body_digest: &[u8; 32], prev: &ChainHead, key: &ChainKey) -> ChainHead {
    let seq = prev.seq + 1;
    let meta_at = line.len();
    line.extend_from_slice(META_START);
    push_decimal(line, seq);
    line.extend_from_slice(PREV_START);
    push_hex(line, &prev.hash);
    line.push(b'"');
    let hash = link_hash(body_digest, &line[meta_at..]);
    let mac = key.mac(&hash);
    line.extend_from_slice(HASH_START);
    push_hex(line, &hash);
    line.extend_from_slice(MAC_START);
    push_hex(line, &mac);
    line.extend_from_slice(END);
    line.push(b'\n');
    ChainHead { seq, hash }
}

/// `SHA-256(body_digest ‖ meta)`, without allocating for a meta of normal size.
fn link_hash(body_digest: &[u8; 32], meta: &[u8]) -> [u8; 32] {
    let n = 32 + meta.len();
    let mut buf = [0u8; 32 + 160];
    if n <= buf.len() {
        buf[..32].copy_from_slice(body_digest);
        buf[32..n].copy_from_slice(meta);
        sha256(&buf[..n])
    } else {
        // A meta longer than its maximum (117 bytes) only comes from a hostile line.
        let mut v = Vec::with_capacity(n);
        v.extend_from_slice(body_digest);
        v.extend_from_slice(meta);
        sha256(&v)
    }
}

/// A sealed line, split into its parts (borrowed from the line, without its newline).
#[derive(Debug)]
pub(crate) struct SealedLine<'a> {
    /// The event JSON without its closing brace.
    pub(crate) body: &'a [u8],
    pub(crate) seq: u64,
    pub(crate) prev: [u8; 32],
    pub(crate) hash: [u8; 32],
    pub(crate) mac: [u8; 32],
    /// `SHA-256(SHA-256(body) ‖ meta)` recomputed from the bytes.
    pub(crate) computed: [u8; 32],
}

impl SealedLine<'_> {
    /// The event JSON as CloudTrail would have it (the body plus its closing brace).
    pub(crate) fn event_json(&self) -> String {
        let mut s = String::from_utf8_lossy(self.body).into_owned();
        s.push('}');
        s
    }
}

/// Splits `line` (without its newline) into body, meta and tail and recomputes its hash.
pub(crate) fn open(line: &[u8]) -> Result<SealedLine<'_>, &'static str> {
    let Some(tail_at) = line.len().checked_sub(TAIL_LEN) else {
        return Err("not an audit record (too short for the chain member)");
    };
    let tail = &line[tail_at..];
    let rest = fixed(tail, HASH_START).ok_or("malformed chain member: no hash")?;
    let hash = lower_hex32(&rest[..64]).ok_or("malformed chain member: hash is not lowercase hex")?;
    let end = fixed(&rest[64..], MAC_START).ok_or("malformed chain member: no mac")?;
    let mac = lower_hex32(&end[..64]).ok_or("malformed chain member: mac is not lowercase hex")?;
    if &end[64..] != END {
        return Err("malformed chain member: bad ending");
    }
    let head = &line[..tail_at];
    let meta_at = rfind(head, META_START).ok_or("not an audit record (no chain member)")?;
    let (body, meta) = head.split_at(meta_at);
    if body.first() != Some(&b'{') {
        return Err("not an audit record (not a JSON object)");
    }
    let after = &meta[META_START.len()..];
    let digits = after.iter().take_while(|b| b.is_ascii_digit()).count();
    let seq = std::str::from_utf8(&after[..digits])
        .ok()
        .and_then(|d| d.parse::<u64>().ok())
        .ok_or("malformed chain member: bad seq")?;
    let rest = fixed(&after[digits..], PREV_START).ok_or("malformed chain member: no prev")?;
    if rest.len() != 64 + 1 || rest[64] != b'"' {
        return Err("malformed chain member: bad prev");
    }
    let prev = lower_hex32(&rest[..64]).ok_or("malformed chain member: prev is not lowercase hex")?;
    let computed = link_hash(&sha256(body), meta);
    Ok(SealedLine {
        body,
        seq,
        prev,
        hash,
        mac,
        computed,
    })
}

/// The rest of `s` after `prefix`, if it is at least one hex digest long.
fn fixed<'a>(s: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let rest = s.strip_prefix(prefix)?;
    (rest.len() >= 64).then_some(rest)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).rposition(|w| w == needle)
}

/// Strict lowercase hex (a changed letter case is a changed byte).
fn lower_hex32(s: &[u8]) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)) {
        return None;
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

fn push_hex(out: &mut Vec<u8>, bytes: &[u8; 32]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
}

fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}
