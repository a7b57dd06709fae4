//! The snapshot file: every physical key and value of a store, as a backup.
//!
//! A snapshot is taken below the barrier, so it holds ciphertext only (and the barrier's own
//! `core/` records, the keyring encrypted under the root key): restoring it needs the unseal
//! key shares of the store it came from. Layout, all integers big-endian:
//!
//! ```text
//! header   magic "COFFSNAP" (8) | format version u16 (1) | Coffer version: u16 length + UTF-8
//!          | created, Unix seconds i64 | entry count u64
//! entries  entry count times: key length u32 | key (UTF-8) | value length u32 | value,
//!          keys in strictly ascending byte order
//! trailer  SHA-256 of every byte before it (32)
//! ```
//!
//! [`Encoder`] and [`Decoder`] are sans-I/O: they turn entries into bytes and bytes into
//! entries, whatever carries them (an HTTP body, a file). The decoder rejects a bad magic or
//! version as soon as it sees them, bounds every length before allocating, and only
//! [`Decoder::finish`] says whether the whole input was a snapshot: a truncated or changed
//! input fails there at the latest. [`SnapshotReader`] feeds a decoder from a [`ByteSource`]
//! and is the [`EntryStream`] a restore consumes: its end (an empty chunk) comes only after
//! the checksum matched, so a restore that commits on the end never commits a bad snapshot.
//! [`SnapshotExport`] encodes a backend's [`Snapshot`] chunk by chunk.

use async_trait::async_trait;
use coffer_crypto::hash::Sha256;

use crate::{Entry, EntryStream, Result, Snapshot, StorageError};

/// The first bytes of every snapshot.
pub const MAGIC: &[u8; 8] = b"COFFSNAP";
/// The format this code writes and reads.
pub const FORMAT_VERSION: u16 = 1;
/// The longest key a snapshot may hold.
pub const MAX_KEY_BYTES: usize = 64 * 1024;
/// The longest value a snapshot may hold.
pub const MAX_VALUE_BYTES: usize = 64 * 1024 * 1024;
/// The longest Coffer version string in a header.
const MAX_VERSION_BYTES: usize = 256;
const CHECKSUM_BYTES: usize = 32;
/// A [`SnapshotReader`] chunk holds about this many entries.
const CHUNK_ENTRIES: usize = 1024;

/// Why bytes are not a (whole) snapshot. Never quotes a key or value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("not a Coffer snapshot (it does not start with the snapshot magic)")]
    NotASnapshot,
    #[error("snapshot format version {0} is not supported (this Coffer reads version {FORMAT_VERSION})")]
    UnsupportedVersion(u16),
    #[error("malformed snapshot: {0}")]
    Malformed(String),
    #[error("the snapshot is truncated: it ends {0}")]
    Truncated(String),
    #[error("the snapshot's checksum does not match its contents: it is corrupt or was changed")]
    ChecksumMismatch,
    #[error("reading the snapshot failed: {0}")]
    Read(String),
}

/// What a snapshot says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub format_version: u16,
    /// The version of Coffer that wrote it.
    pub coffer_version: String,
    /// When it was taken, in Unix seconds.
    pub created_unix: i64,
    /// How many entries follow.
    pub entries: u64,
}

impl Header {
    /// A header for a snapshot of `entries` entries taken now by this Coffer.
    pub fn new(created_unix: i64, entries: u64) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            coffer_version: env!("CARGO_PKG_VERSION").to_string(),
            created_unix,
            entries,
        }
    }
}

/// A whole snapshot, once written or read to its end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    /// Its length in bytes, the checksum included.
    pub bytes: u64,
    /// Its SHA-256 checksum (of every byte before the trailer).
    pub checksum: [u8; 32],
}

impl Summary {
    pub fn checksum_hex(&self) -> String {
        hex_lower(&self.checksum)
    }
}

/// Writes a snapshot: the header at [`Encoder::new`], then each entry, then the checksum.
pub struct Encoder {
    header: Header,
    hash: Sha256,
    bytes: u64,
    written: u64,
    last_key: Option<String>,
}

impl Encoder {
    /// Appends the header to `out`.
    pub fn new(header: Header, out: &mut Vec<u8>) -> Self {
        let start = out.len();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&header.format_version.to_be_bytes());
        let version = header.coffer_version.as_bytes();
        let version = &version[..version.len().min(MAX_VERSION_BYTES)];
        out.extend_from_slice(&(version.len() as u16).to_be_bytes());
        out.extend_from_slice(version);
        out.extend_from_slice(&header.created_unix.to_be_bytes());
        out.extend_from_slice(&header.entries.to_be_bytes());
        let mut encoder = Self {
            header,
            hash: Sha256::new(),
            bytes: 0,
            written: 0,
            last_key: None,
        };
        encoder.hashed(&out[start..]);
        encoder
    }

    /// Appends one entry to `out`. Keys must come in strictly ascending order, and no more
    /// entries than the header announced.
    pub fn entry(&mut self, key: &str, value: &[u8], out: &mut Vec<u8>) -> Result<(), SnapshotError> {
        if self.written >= self.header.entries {
            return Err(SnapshotError::Malformed(format!(
                "more entries than the {} announced",
                self.header.entries
            )));
        }
        if self.last_key.as_deref().is_some_and(|last| last >= key) {
            return Err(SnapshotError::Malformed("keys out of order".into()));
        }
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            return Err(SnapshotError::Malformed(format!(
                "an entry is longer than the limits ({MAX_KEY_BYTES} bytes of key, {MAX_VALUE_BYTES} of value)"
            )));
        }
        let start = out.len();
        out.extend_from_slice(&(key.len() as u32).to_be_bytes());
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
        self.hashed(&out[start..]);
        self.written += 1;
        self.last_key = Some(key.to_string());
        Ok(())
    }

    /// Appends the checksum to `out`, once every announced entry is written.
    pub fn finish(self, out: &mut Vec<u8>) -> Result<Summary, SnapshotError> {
        if self.written != self.header.entries {
            return Err(SnapshotError::Malformed(format!(
                "{} entries written, {} announced",
                self.written, self.header.entries
            )));
        }
        let checksum = self.hash.finish();
        out.extend_from_slice(&checksum);
        Ok(Summary {
            header: self.header,
            bytes: self.bytes + CHECKSUM_BYTES as u64,
            checksum,
        })
    }

    fn hashed(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        self.bytes += bytes.len() as u64;
    }
}

/// Where a [`Decoder`] is in the layout.
enum Stage {
    Header,
    Entries,
    Checksum,
    Done([u8; 32]),
}

/// Reads a snapshot from bytes pushed in pieces of any size.
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes of `buf` already parsed (and hashed).
    pos: usize,
    hash: Sha256,
    bytes: u64,
    stage: Stage,
    header: Option<Header>,
    read: u64,
    last_key: Option<String>,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            hash: Sha256::new(),
            bytes: 0,
            stage: Stage::Header,
            header: None,
            read: 0,
            last_key: None,
        }
    }

    /// The header, once its bytes have been pushed.
    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    /// Takes the next piece of input; appends the entries it completes to `out`.
    pub fn push(&mut self, data: &[u8], out: &mut Vec<Entry>) -> Result<(), SnapshotError> {
        if matches!(self.stage, Stage::Done(_)) && !data.is_empty() {
            return Err(SnapshotError::Malformed("bytes after the checksum".into()));
        }
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
        loop {
            let progressed = match self.stage {
                Stage::Header => self.parse_header()?,
                Stage::Entries => self.parse_entry(out)?,
                Stage::Checksum => self.parse_checksum()?,
                Stage::Done(_) => {
                    if self.pos < self.buf.len() {
                        return Err(SnapshotError::Malformed("bytes after the checksum".into()));
                    }
                    false
                }
            };
            if !progressed {
                return Ok(());
            }
        }
    }

    /// Ends the input: the summary if it was one whole snapshot whose checksum matches.
    pub fn finish(self) -> Result<Summary, SnapshotError> {
        let checksum = match self.stage {
            Stage::Done(checksum) => checksum,
            Stage::Header => return Err(SnapshotError::Truncated("in the header".into())),
            Stage::Entries => {
                let announced = self.header.as_ref().map_or(0, |h| h.entries);
                return Err(SnapshotError::Truncated(format!(
                    "after {} of its {announced} entries",
                    self.read
                )));
            }
            Stage::Checksum => return Err(SnapshotError::Truncated("in its checksum".into())),
        };
        let header = self
            .header
            .ok_or_else(|| SnapshotError::Malformed("no header".into()))?;
        Ok(Summary {
            header,
            bytes: self.bytes + CHECKSUM_BYTES as u64,
            checksum,
        })
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Marks `n` more bytes as parsed and hashes them.
    fn consume(&mut self, n: usize) {
        self.hash.update(&self.buf[self.pos..self.pos + n]);
        self.bytes += n as u64;
        self.pos += n;
    }

    fn parse_header(&mut self) -> Result<bool, SnapshotError> {
        let rest = self.rest();
        let magic_len = MAGIC.len().min(rest.len());
        if rest[..magic_len] != MAGIC[..magic_len] {
            return Err(SnapshotError::NotASnapshot);
        }
        let Some(version) = be_u16(rest, 8) else {
            return Ok(false);
        };
        if version != FORMAT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let Some(len) = be_u16(rest, 10) else {
            return Ok(false);
        };
        let len = usize::from(len);
        if len > MAX_VERSION_BYTES {
            return Err(SnapshotError::Malformed("the version string is too long".into()));
        }
        let total = 12 + len + 8 + 8;
        if rest.len() < total {
            return Ok(false);
        }
        let coffer_version = std::str::from_utf8(&rest[12..12 + len])
            .map_err(|_| SnapshotError::Malformed("the version string is not UTF-8".into()))?
            .to_string();
        let created_unix = i64::from_be_bytes(array8(&rest[12 + len..]));
        let entries = u64::from_be_bytes(array8(&rest[20 + len..]));
        self.header = Some(Header {
            format_version: version,
            coffer_version,
            created_unix,
            entries,
        });
        self.consume(total);
        self.stage = if entries == 0 { Stage::Checksum } else { Stage::Entries };
        Ok(true)
    }

    fn parse_entry(&mut self, out: &mut Vec<Entry>) -> Result<bool, SnapshotError> {
        let rest = self.rest();
        let Some(key_len) = be_u32(rest, 0) else {
            return Ok(false);
        };
        if key_len > MAX_KEY_BYTES {
            return Err(SnapshotError::Malformed(format!(
                "a key is longer than {MAX_KEY_BYTES} bytes"
            )));
        }
        let Some(value_len) = be_u32(rest, 4 + key_len) else {
            return Ok(false);
        };
        if value_len > MAX_VALUE_BYTES {
            return Err(SnapshotError::Malformed(format!(
                "a value is longer than {MAX_VALUE_BYTES} bytes"
            )));
        }
        let total = 8 + key_len + value_len;
        if rest.len() < total {
            return Ok(false);
        }
        let key = std::str::from_utf8(&rest[4..4 + key_len])
            .map_err(|_| SnapshotError::Malformed("a key is not UTF-8".into()))?
            .to_string();
        if self.last_key.as_deref().is_some_and(|last| last >= key.as_str()) {
            return Err(SnapshotError::Malformed("keys out of order".into()));
        }
        let value = rest[8 + key_len..total].to_vec();
        self.consume(total);
        self.last_key = Some(key.clone());
        out.push(Entry { key, value });
        self.read += 1;
        if self.header.as_ref().is_some_and(|h| self.read >= h.entries) {
            self.stage = Stage::Checksum;
        }
        Ok(true)
    }

    fn parse_checksum(&mut self) -> Result<bool, SnapshotError> {
        let rest = self.rest();
        if rest.len() < CHECKSUM_BYTES {
            return Ok(false);
        }
        let mut stored = [0u8; CHECKSUM_BYTES];
        stored.copy_from_slice(&rest[..CHECKSUM_BYTES]);
        self.pos += CHECKSUM_BYTES;
        let computed = std::mem::take(&mut self.hash).finish();
        if computed != stored {
            return Err(SnapshotError::ChecksumMismatch);
        }
        self.stage = Stage::Done(computed);
        Ok(true)
    }
}

fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let b = bytes.get(at..at + 2)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

/// A `u32` length at `at`, as a `usize`.
fn be_u32(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at + 4)?;
    usize::try_from(u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok()
}

/// The first eight bytes of `bytes`; the caller has checked there are eight.
fn array8(bytes: &[u8]) -> [u8; 8] {
    let mut a = [0u8; 8];
    a.copy_from_slice(&bytes[..8]);
    a
}

fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// Bytes arriving in pieces: an HTTP body, a file.
#[async_trait]
pub trait ByteSource: Send {
    /// The next piece, or `None` at the end.
    async fn next_bytes(&mut self) -> std::io::Result<Option<Vec<u8>>>;
}

/// A snapshot being read from a [`ByteSource`]: the header at [`SnapshotReader::open`], then
/// the entries through [`EntryStream`], whose end comes only after the checksum matched.
pub struct SnapshotReader<S> {
    source: S,
    decoder: Option<Decoder>,
    header: Header,
    pending: Vec<Entry>,
    summary: Option<Summary>,
    error: Option<SnapshotError>,
}

impl<S: ByteSource> SnapshotReader<S> {
    /// Reads until the header is complete. A bad magic or version fails here, before any
    /// entry is read.
    pub async fn open(mut source: S) -> Result<Self, SnapshotError> {
        let mut decoder = Decoder::new();
        let mut pending = Vec::new();
        while decoder.header().is_none() {
            match source.next_bytes().await {
                Ok(Some(bytes)) => decoder.push(&bytes, &mut pending)?,
                Ok(None) => {
                    return Err(decoder
                        .finish()
                        .err()
                        .unwrap_or(SnapshotError::Truncated("in the header".into())));
                }
                Err(e) => return Err(SnapshotError::Read(e.to_string())),
            }
        }
        let header = decoder
            .header()
            .cloned()
            .ok_or_else(|| SnapshotError::Malformed("no header".into()))?;
        Ok(Self {
            source,
            decoder: Some(decoder),
            header,
            pending,
            summary: None,
            error: None,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The whole snapshot's summary, once the stream has ended well.
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// Why the stream failed, if the snapshot (not the source) was at fault.
    pub fn error(&self) -> Option<&SnapshotError> {
        self.error.as_ref()
    }

    /// Reads until a chunk's worth of entries is decoded or the input ends.
    async fn fill(&mut self) -> Result<(), SnapshotError> {
        while self.pending.len() < CHUNK_ENTRIES {
            let Some(decoder) = self.decoder.as_mut() else {
                return Ok(());
            };
            match self.source.next_bytes().await {
                Ok(Some(bytes)) => decoder.push(&bytes, &mut self.pending)?,
                Ok(None) => {
                    if let Some(decoder) = self.decoder.take() {
                        self.summary = Some(decoder.finish()?);
                    }
                }
                Err(e) => return Err(SnapshotError::Read(e.to_string())),
            }
        }
        Ok(())
    }
}

#[async_trait]
impl<S: ByteSource> EntryStream for SnapshotReader<S> {
    async fn next_chunk(&mut self) -> Result<Vec<Entry>> {
        if let Err(e) = self.fill().await {
            self.pending.clear();
            self.decoder = None;
            let message = e.to_string();
            self.error = Some(e);
            return Err(StorageError::Corrupt(format!("snapshot: {message}")));
        }
        Ok(std::mem::take(&mut self.pending))
    }
}

/// A backend's [`Snapshot`] being encoded: [`SnapshotExport::next_bytes`] yields the header,
/// then the entries chunk by chunk, then the checksum.
pub struct SnapshotExport {
    stream: Box<dyn EntryStream>,
    header: Header,
    encoder: Option<Encoder>,
    started: bool,
    summary: Option<Summary>,
}

impl SnapshotExport {
    pub fn new(snapshot: Snapshot, created_unix: i64) -> Self {
        Self {
            stream: snapshot.stream,
            header: Header::new(created_unix, snapshot.entries),
            encoder: None,
            started: false,
            summary: None,
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The summary once the last bytes have been yielded.
    pub fn summary(&self) -> Option<&Summary> {
        self.summary.as_ref()
    }

    /// The next bytes of the snapshot, or `None` after the checksum.
    pub async fn next_bytes(&mut self) -> Result<Option<Vec<u8>>> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            self.encoder = Some(Encoder::new(self.header.clone(), &mut out));
            return Ok(Some(out));
        }
        let Some(mut encoder) = self.encoder.take() else {
            return Ok(None);
        };
        let chunk = self.stream.next_chunk().await?;
        let inconsistent =
            |e: SnapshotError| StorageError::Backend(format!("the store's snapshot is inconsistent: {e}"));
        if chunk.is_empty() {
            self.summary = Some(encoder.finish(&mut out).map_err(inconsistent)?);
            return Ok(Some(out));
        }
        for e in &chunk {
            encoder.entry(&e.key, &e.value, &mut out).map_err(inconsistent)?;
        }
        self.encoder = Some(encoder);
        Ok(Some(out))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;
