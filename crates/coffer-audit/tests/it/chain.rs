//! The chain and `verify`: untouched logs pass; changed bytes, removed, swapped and cut lines
//! fail at the right place, across rotation too.

use std::path::{Path, PathBuf};

use coffer_audit::{ChainHead, DeviceKey, ProblemKind, VerifyOptions, verify_files};

use crate::write_log;

fn lines(path: &Path) -> Vec<Vec<u8>> {
    std::fs::read(path)
        .unwrap()
        .split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn write_lines(path: &Path, lines: &[Vec<u8>]) {
    std::fs::write(path, lines.concat()).unwrap();
}

fn keyed(key: &coffer_audit::ChainKey) -> VerifyOptions<'_> {
    VerifyOptions {
        key: Some(key),
        ..VerifyOptions::default()
    }
}

#[test]
fn untouched_log_verifies_with_and_without_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &key, 20, 0);
    let ck = key.chain_key();
    let report = verify_files(&files, &keyed(&ck)).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.lines, 20);
    assert_eq!(report.head.unwrap().seq, 20);
    assert!(report.keyed);
    let report = verify_files(
        &files,
        &VerifyOptions {
            require_genesis: true,
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(report.is_ok() && !report.keyed);
}

#[test]
fn line_format_is_cloudtrail_json_plus_chain_member() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &key, 2, 0);
    let all = lines(&files[0]);
    let first: serde_json::Value = serde_json::from_slice(&all[0]).unwrap();
    let second: serde_json::Value = serde_json::from_slice(&all[1]).unwrap();
    for field in [
        "eventVersion",
        "userIdentity",
        "eventTime",
        "eventSource",
        "eventName",
        "awsRegion",
        "sourceIPAddress",
        "userAgent",
        "requestParameters",
        "responseElements",
        "requestID",
        "eventID",
        "readOnly",
        "resources",
        "eventType",
        "managementEvent",
        "recipientAccountId",
        "eventCategory",
    ] {
        assert!(first.get(field).is_some(), "missing {field}");
    }
    assert_eq!(first["readOnly"], true);
    assert_eq!(first["coffer"]["seq"], 1);
    assert_eq!(first["coffer"]["prev"], "0".repeat(64));
    assert_eq!(second["coffer"]["seq"], 2);
    assert_eq!(second["coffer"]["prev"], first["coffer"]["hash"]);
}

#[test]
fn every_single_byte_change_is_detected_with_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let ck = key.chain_key();
    let files = write_log(dir.path(), &key, 3, 0);
    let original = std::fs::read(&files[0]).unwrap();
    let path = dir.path().join("tampered.log");
    let mut without_key_missed = 0;
    for i in 0..original.len() {
        let mut bytes = original.clone();
        bytes[i] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let report = verify_files(std::slice::from_ref(&path), &keyed(&ck)).unwrap();
        assert!(!report.is_ok(), "byte {i} changed and not detected");
        // The first problem names the line that holds the byte.
        let line = 1 + original[..i].iter().filter(|b| **b == b'\n').count() as u64;
        assert_eq!(report.problems[0].line, line, "byte {i}: {}", report.problems[0]);
        if verify_files(std::slice::from_ref(&path), &VerifyOptions::default())
            .unwrap()
            .is_ok()
        {
            without_key_missed += 1;
        }
    }
    // Without the key only the MAC fields (64 hex digits per line) are unchecked.
    assert!(without_key_missed <= 3 * 64, "{without_key_missed}");
}

#[test]
fn changed_byte_names_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &key, 10, 0);
    let mut all = lines(&files[0]);
    let pos = all[4].windows(6).position(|w| w == b"app-1\"").unwrap();
    all[4][pos] = b'X';
    write_lines(&files[0], &all);
    let report = verify_files(&files, &VerifyOptions::default()).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert_eq!((p.line, p.seq, &p.kind), (5, Some(5), &ProblemKind::Changed));
    let text = p.to_string();
    assert!(text.contains("audit.log:5: line changed"), "{text}");
}

#[test]
fn deleted_line_is_detected_where_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &key, 10, 0);
    let mut all = lines(&files[0]);
    all.remove(3); // seq 4
    write_lines(&files[0], &all);
    let report = verify_files(&files, &keyed(&key.chain_key())).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert_eq!((p.line, &p.kind), (4, &ProblemKind::Missing { from: 4, to: 4 }));
    assert!(p.to_string().contains("seq 4 is missing"), "{p}");
}

#[test]
fn swapped_lines_are_detected_as_out_of_order() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &key, 10, 0);
    let mut all = lines(&files[0]);
    all.swap(2, 3); // seq 3 and 4
    write_lines(&files[0], &all);
    let report = verify_files(&files, &keyed(&key.chain_key())).unwrap();
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert_eq!(report.problems[0].line, 3);
    assert_eq!(
        report.problems[0].kind,
        ProblemKind::OutOfOrder {
            expected: 3,
            found: 4,
            expected_at: Some((files[0].clone(), 4))
        }
    );
    assert_eq!(report.problems[1].line, 4);
    assert!(matches!(
        report.problems[1].kind,
        ProblemKind::OutOfOrder { found: 3, .. }
    ));
}

#[test]
fn replaced_line_with_right_seq_breaks_the_link() {
    // Line 5 of log B put in place of line 5 of log A: same seq, other chain.
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let a = write_log(&dir.path().join("a").tap_mkdir(), &key, 8, 0);
    let b = write_log(&dir.path().join("b").tap_mkdir(), &key, 8, 0);
    let mut la = lines(&a[0]);
    la[4] = lines(&b[0])[4].clone();
    write_lines(&a[0], &la);
    let report = verify_files(&a, &keyed(&key.chain_key())).unwrap();
    assert_eq!(report.problems[0].line, 5);
    assert_eq!(report.problems[0].kind, ProblemKind::BrokenLink);
}

#[test]
fn rotation_keeps_the_chain_and_verify_follows_it_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &key, 30, 4000);
    assert!(files.len() >= 3, "{files:?}");
    assert!(files[0].to_string_lossy().ends_with("audit.log.000001"));
    // Every file stays under the limit.
    for f in &files {
        assert!(std::fs::metadata(f).unwrap().len() <= 4000);
    }
    // The first line of file 2 chains to the last line of file 1.
    let last_of_1: serde_json::Value = serde_json::from_slice(lines(&files[0]).last().unwrap()).unwrap();
    let first_of_2: serde_json::Value = serde_json::from_slice(&lines(&files[1])[0]).unwrap();
    assert_eq!(first_of_2["coffer"]["prev"], last_of_1["coffer"]["hash"]);
    // Any order of arguments (a shell glob sorts audit.log first).
    let mut shuffled: Vec<PathBuf> = files.clone();
    shuffled.reverse();
    let ck = key.chain_key();
    let opts = VerifyOptions {
        key: Some(&ck),
        require_genesis: true,
        ..VerifyOptions::default()
    };
    let report = verify_files(&shuffled, &opts).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.lines, 30);
    assert_eq!(report.files, files);

    // Remove the first line of the second file: reported there.
    let mut second = lines(&files[1]);
    let removed_seq: serde_json::Value = serde_json::from_slice(&second.remove(0)).unwrap();
    write_lines(&files[1], &second);
    let report = verify_files(&files, &opts).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    let p = &report.problems[0];
    assert_eq!(p.file, files[1]);
    assert_eq!(p.line, 1);
    let seq = removed_seq["coffer"]["seq"].as_u64().unwrap();
    assert_eq!(p.kind, ProblemKind::Missing { from: seq, to: seq });

    // Leaving out the oldest file is caught only when the set must start at seq 1.
    let report = verify_files(&files[1..], &opts).unwrap();
    assert!(matches!(report.problems[0].kind, ProblemKind::NotGenesis { .. }));
}

#[test]
fn cut_tail_is_detected_only_against_the_recorded_head() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &key, 10, 0);
    let full = verify_files(&files, &VerifyOptions::default()).unwrap();
    let head = full.head.unwrap();
    let mut all = lines(&files[0]);
    all.truncate(7);
    write_lines(&files[0], &all);
    // Offline, a cut tail is a consistent (shorter) chain.
    assert!(verify_files(&files, &VerifyOptions::default()).unwrap().is_ok());
    // Against the head the server kept, it is not.
    let report = verify_files(
        &files,
        &VerifyOptions {
            expected_head: Some(head),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.problems.len(), 1);
    assert_eq!(
        report.problems[0].kind,
        ProblemKind::TailMissing { last: 7, expected: 10 }
    );
    // A stale head (seq 5) still passes, and a wrong hash at that seq does not.
    let mid = ChainHead { seq: 5, hash: [7; 32] };
    let report = verify_files(
        &files,
        &VerifyOptions {
            expected_head: Some(mid),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert_eq!(report.problems[0].kind, ProblemKind::HeadDiffers { seq: 5 });
    // A torn last line is reported as such.
    let mut bytes = std::fs::read(&files[0]).unwrap();
    bytes.truncate(bytes.len() - 10);
    std::fs::write(&files[0], &bytes).unwrap();
    let report = verify_files(&files, &VerifyOptions::default()).unwrap();
    assert_eq!(
        (report.problems[0].line, &report.problems[0].kind),
        (7, &ProblemKind::Torn)
    );
}

#[test]
fn a_chain_rebuilt_without_the_key_fails_with_the_key() {
    // Someone rewrites the whole log with a chain of their own (here: another device key).
    let dir = tempfile::tempdir().unwrap();
    let real = DeviceKey::generate().unwrap();
    let forger = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &forger, 3, 0);
    assert!(verify_files(&files, &VerifyOptions::default()).unwrap().is_ok());
    let report = verify_files(&files, &keyed(&real.chain_key())).unwrap();
    assert_eq!(report.problems.len(), 3);
    assert!(report.problems.iter().all(|p| p.kind == ProblemKind::NotAuthentic));
    assert_eq!(report.problems[0].line, 1);
}

#[test]
fn garbage_lines_are_malformed_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let files = write_log(dir.path(), &key, 4, 0);
    let mut all = lines(&files[0]);
    all.insert(2, b"{\"not\":\"an audit line\"}\n".to_vec());
    write_lines(&files[0], &all);
    let report = verify_files(&files, &VerifyOptions::default()).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].line, 3);
    assert!(matches!(report.problems[0].kind, ProblemKind::Malformed(_)));
}

trait TapMkdir {
    fn tap_mkdir(self) -> Self;
}
impl TapMkdir for PathBuf {
    fn tap_mkdir(self) -> Self {
        std::fs::create_dir_all(&self).unwrap();
        self
    }
}
