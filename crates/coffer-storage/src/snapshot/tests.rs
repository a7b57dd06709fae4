//! The snapshot format: round trips, the exact bytes, and every truncation and corruption.

use std::sync::Arc;

use super::*;
use crate::memory::MemoryBackend;
use crate::redb_backend::RedbBackend;
use crate::{PhysicalBackend, VecEntryStream};

fn entries() -> Vec<Entry> {
    vec![
        Entry {
            key: "core/keyring".into(),
            value: vec![0, 0, 0, 0, 1, 9, 9],
        },
        Entry {
            key: "core/seal-config".into(),
            value: br#"{"shares":1}"#.to_vec(),
        },
        Entry {
            key: "data/empty".into(),
            value: Vec::new(),
        },
        Entry {
            key: "data/ünï/🔑".into(),
            value: vec![0xff; 300],
        },
    ]
}

fn encode(entries: &[Entry]) -> (Vec<u8>, Summary) {
    let mut out = Vec::new();
    let mut enc = Encoder::new(Header::new(1_700_000_000, entries.len() as u64), &mut out);
    for e in entries {
        enc.entry(&e.key, &e.value, &mut out).unwrap();
    }
    let summary = enc.finish(&mut out).unwrap();
    (out, summary)
}

/// Decodes `bytes` pushed `piece` bytes at a time.
fn decode(bytes: &[u8], piece: usize) -> Result<(Vec<Entry>, Summary), SnapshotError> {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for p in bytes.chunks(piece.max(1)) {
        d.push(p, &mut out)?;
    }
    Ok((out, d.finish()?))
}

#[test]
fn round_trips_in_pieces_of_any_size() {
    let (bytes, summary) = encode(&entries());
    assert_eq!(summary.bytes, bytes.len() as u64);
    assert_eq!(
        summary.checksum,
        coffer_crypto::hash::sha256(&bytes[..bytes.len() - 32])
    );
    assert_eq!(
        summary.checksum_hex(),
        coffer_crypto::hash::sha256_hex(&bytes[..bytes.len() - 32])
    );
    for piece in [1, 2, 7, 64, bytes.len()] {
        let (got, got_summary) = decode(&bytes, piece).unwrap();
        assert_eq!(got, entries(), "pieces of {piece}");
        assert_eq!(got_summary, summary);
    }
    let (empty, s) = encode(&[]);
    assert_eq!(decode(&empty, 3).unwrap().0, Vec::new());
    assert_eq!(s.header.entries, 0);
}

/// The layout is a stored format: these bytes must keep decoding.
#[test]
fn the_layout_is_fixed() {
    let one = [Entry {
        key: "k".into(),
        value: b"v".to_vec(),
    }];
    let mut out = Vec::new();
    let header = Header {
        format_version: 1,
        coffer_version: "0.1.0".into(),
        created_unix: 1,
        entries: 1,
    };
    let mut enc = Encoder::new(header, &mut out);
    enc.entry("k", b"v", &mut out).unwrap();
    enc.finish(&mut out).unwrap();
    let body = "434f4646534e4150\
                0001\
                0005302e312e30\
                0000000000000001\
                0000000000000001\
                000000016b\
                0000000176";
    let checksum = coffer_crypto::hash::sha256_hex(&hex_decode(body));
    assert_eq!(hex_lower(&out), format!("{body}{checksum}"));
    assert_eq!(decode(&out, 5).unwrap().0, one);
}

fn hex_decode(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn every_truncation_is_refused() {
    let (bytes, _) = encode(&entries());
    for len in 0..bytes.len() {
        let err = decode(&bytes[..len], 3).unwrap_err();
        assert!(
            matches!(err, SnapshotError::Truncated(_)),
            "cut at {len} of {}: {err:?}",
            bytes.len()
        );
    }
}

#[test]
fn every_changed_byte_is_refused() {
    let (bytes, _) = encode(&entries());
    for at in 0..bytes.len() {
        for flip in [0x01u8, 0x80] {
            let mut changed = bytes.clone();
            changed[at] ^= flip;
            assert!(
                decode(&changed, 11).is_err(),
                "a change at byte {at} of {} went unnoticed",
                bytes.len()
            );
        }
    }
    let mut bad_magic = bytes.clone();
    bad_magic[0] = b'X';
    assert_eq!(decode(&bad_magic, 1).unwrap_err(), SnapshotError::NotASnapshot);
    let mut v2 = bytes.clone();
    v2[9] = 2;
    assert_eq!(decode(&v2, 100).unwrap_err(), SnapshotError::UnsupportedVersion(2));
    let mut sum = bytes.clone();
    let last = sum.len() - 1;
    sum[last] ^= 1;
    assert_eq!(decode(&sum, 100).unwrap_err(), SnapshotError::ChecksumMismatch);
}

#[test]
fn bytes_after_the_checksum_are_refused() {
    let (mut bytes, _) = encode(&entries());
    bytes.push(0);
    assert!(matches!(decode(&bytes, 1).unwrap_err(), SnapshotError::Malformed(_)));
    assert!(matches!(
        decode(&bytes, bytes.len()).unwrap_err(),
        SnapshotError::Malformed(_)
    ));
}

#[test]
fn lengths_are_bounded_before_anything_is_allocated() {
    let (bytes, _) = encode(&[]);
    let header_len = bytes.len() - 32;
    let mut huge = bytes[..header_len].to_vec();
    // Announce one entry whose key claims 4 GiB.
    let count_at = header_len - 8;
    huge[count_at..header_len].copy_from_slice(&1u64.to_be_bytes());
    huge.extend_from_slice(&u32::MAX.to_be_bytes());
    let err = decode(&huge, 100).unwrap_err();
    assert!(
        matches!(err, SnapshotError::Malformed(ref m) if m.contains("key")),
        "{err:?}"
    );
}

#[test]
fn the_encoder_refuses_what_the_decoder_would() {
    let mut out = Vec::new();
    let mut enc = Encoder::new(Header::new(0, 2), &mut out);
    enc.entry("b", b"", &mut out).unwrap();
    assert!(enc.entry("a", b"", &mut out).is_err(), "keys out of order");
    assert!(enc.entry("b", b"", &mut out).is_err(), "a repeated key");
    assert!(enc.finish(&mut out).is_err(), "fewer entries than announced");
}

/// Bytes from memory, a few at a time, or an I/O error at the end.
struct Pieces {
    bytes: Vec<u8>,
    at: usize,
    fail_at_end: bool,
}

#[async_trait]
impl ByteSource for Pieces {
    async fn next_bytes(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.at >= self.bytes.len() {
            if self.fail_at_end {
                return Err(std::io::Error::other("connection reset"));
            }
            return Ok(None);
        }
        let end = (self.at + 13).min(self.bytes.len());
        let piece = self.bytes[self.at..end].to_vec();
        self.at = end;
        Ok(Some(piece))
    }
}

fn pieces(bytes: &[u8]) -> Pieces {
    Pieces {
        bytes: bytes.to_vec(),
        at: 0,
        fail_at_end: false,
    }
}

/// A store's snapshot, encoded, restores into another store byte for byte; a snapshot cut
/// short or changed anywhere leaves the target as it was.
async fn export_and_restore(source: &dyn PhysicalBackend, target: &dyn PhysicalBackend) {
    for e in entries() {
        source.put(&e.key, e.value).await.unwrap();
    }
    // Enough entries for several chunks on every side.
    let many: Vec<Entry> = (0..3000)
        .map(|i| Entry {
            key: format!("data/many/{i:05}"),
            value: vec![(i % 251) as u8; i % 40],
        })
        .collect();
    for e in &many {
        source.put(&e.key, e.value.clone()).await.unwrap();
    }
    let mut export = SnapshotExport::new(source.snapshot().await.unwrap(), 42);
    assert_eq!(export.header().entries, 3004);
    let mut bytes = Vec::new();
    while let Some(b) = export.next_bytes().await.unwrap() {
        bytes.extend(b);
    }
    let summary = export.summary().unwrap().clone();
    assert_eq!(summary.bytes, bytes.len() as u64);

    target.put("data/old", b"old".to_vec()).await.unwrap();
    let mut truncated = bytes.clone();
    truncated.truncate(bytes.len() - 1);
    let mut corrupt = bytes.clone();
    let middle = bytes.len() / 2;
    corrupt[middle] ^= 0x10;
    let mut bad_sources = vec![pieces(&truncated), pieces(&corrupt)];
    let mut cut_connection = pieces(&bytes[..middle]);
    cut_connection.fail_at_end = true;
    bad_sources.push(cut_connection);
    for source in bad_sources {
        let mut reader = SnapshotReader::open(source).await.unwrap();
        assert!(target.restore(&mut reader).await.is_err());
        assert!(reader.summary().is_none());
        assert_eq!(target.scan("", None, 10).await.unwrap(), vec!["data/old".to_string()]);
    }
    let mut reader = SnapshotReader::open(pieces(&bytes)).await.unwrap();
    assert_eq!(reader.header().created_unix, 42);
    assert_eq!(target.restore(&mut reader).await.unwrap(), 3004);
    assert_eq!(reader.summary(), Some(&summary));
    assert!(target.get("data/old").await.unwrap().is_none());
    let mut all = entries();
    all.extend(many);
    all.sort_by(|a, b| a.key.cmp(&b.key));
    let mut copy = target.snapshot().await.unwrap();
    let mut got = Vec::new();
    loop {
        let chunk = copy.stream.next_chunk().await.unwrap();
        if chunk.is_empty() {
            break;
        }
        got.extend(chunk);
    }
    assert_eq!(got, all);
}

#[tokio::test]
async fn memory_to_redb_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let redb = RedbBackend::open(dir.path().join("a.redb")).unwrap();
    export_and_restore(&MemoryBackend::new(), &redb).await;
    let redb2 = RedbBackend::open(dir.path().join("b.redb")).unwrap();
    export_and_restore(&redb2, &MemoryBackend::new()).await;
}

#[tokio::test]
async fn bad_headers_fail_before_any_entry() {
    assert_eq!(
        SnapshotReader::open(pieces(b"PK\x03\x04 not a snapshot")).await.err(),
        Some(SnapshotError::NotASnapshot)
    );
    assert!(matches!(
        SnapshotReader::open(pieces(b"COFF")).await.err(),
        Some(SnapshotError::Truncated(_))
    ));
    // An empty store restores from a snapshot of nothing.
    let (bytes, _) = encode(&[]);
    let target = Arc::new(MemoryBackend::new());
    target.put("x", b"y".to_vec()).await.unwrap();
    let mut reader = SnapshotReader::open(pieces(&bytes)).await.unwrap();
    assert_eq!(target.restore(&mut reader).await.unwrap(), 0);
    let mut none = VecEntryStream::new(Vec::new());
    assert_eq!(target.restore(&mut none).await.unwrap(), 0);
}
