//! The broker: fail closed, partial failure, concurrency, restart recovery.

use std::io::Write;
use std::sync::Arc;

use coffer_audit::{
    AuditBroker, AuditDevice as _, AuditError, ChainHead, DeviceKey, FailingDevice, FileDevice, MemoryDevice,
    VerifyOptions, check_head, verify_files,
};

use crate::{file_broker, get_secret_value, write_log};

#[test]
fn fails_closed_when_every_device_fails() {
    let key = DeviceKey::generate().unwrap();
    let mut broker = AuditBroker::new();
    broker.add_device(Arc::new(FailingDevice::new("a/")), &key).unwrap();
    broker.add_device(Arc::new(FailingDevice::new("b/")), &key).unwrap();
    let err = broker.log(&get_secret_value(1)).unwrap_err();
    assert!(matches!(err, AuditError::NoDeviceRecorded { failed: 2, .. }), "{err}");
    assert!(!err.to_string().contains("s3cr3t"));
}

#[test]
fn succeeds_when_one_of_two_devices_fails() {
    let key = DeviceKey::generate().unwrap();
    let good = Arc::new(MemoryDevice::new("good/"));
    let mut broker = AuditBroker::new();
    broker.add_device(Arc::new(FailingDevice::new("bad/")), &key).unwrap();
    broker.add_device(good.clone(), &key).unwrap();
    let receipt = broker.log(&get_secret_value(1)).unwrap();
    assert_eq!(receipt.recorded, 1);
    assert_eq!(receipt.failed.len(), 1);
    assert!(receipt.failed[0].to_string().contains("bad/"));
    assert_eq!(good.lines().len(), 1);
}

#[test]
fn a_failed_write_does_not_advance_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let mem = Arc::new(MemoryDevice::new("mem/"));
    let mut broker = AuditBroker::new();
    broker.add_device(mem.clone(), &key).unwrap();
    broker.log(&get_secret_value(0)).unwrap();
    mem.set_failing(true);
    assert!(broker.log(&get_secret_value(1)).is_err());
    mem.set_failing(false);
    broker.log(&get_secret_value(2)).unwrap();
    let path = dir.path().join("mem.log");
    std::fs::write(&path, mem.contents()).unwrap();
    let ck = key.chain_key();
    let report = verify_files(
        &[path],
        &VerifyOptions {
            key: Some(&ck),
            ..VerifyOptions::default()
        },
    )
    .unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.head.unwrap().seq, 2);
}

#[test]
fn no_devices_records_nothing_and_does_not_fail() {
    let broker = AuditBroker::new();
    assert!(broker.is_empty());
    assert_eq!(broker.log(&get_secret_value(0)).unwrap().recorded, 0);
}

#[test]
fn concurrent_logging_yields_one_valid_chain() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let (broker, dev) = file_broker(dir.path(), &key, 64 * 1024);
    let broker = Arc::new(broker);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let broker = broker.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    broker.log(&get_secret_value(t * 1000 + i)).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let ck = key.chain_key();
    let opts = VerifyOptions {
        key: Some(&ck),
        require_genesis: true,
        ..VerifyOptions::default()
    };
    let report = verify_files(&dev.files().unwrap(), &opts).unwrap();
    assert!(report.is_ok(), "{:?}", &report.problems[..report.problems.len().min(5)]);
    assert_eq!(report.lines, 2000);
    assert_eq!(report.head.unwrap().seq, 2000);
    assert_eq!(broker.heads()[0].1, report.head.unwrap());
}

#[test]
fn restart_continues_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    write_log(dir.path(), &key, 5, 2500);
    // Crash mid-write: a torn line without newline at the end of the active file.
    let active = dir.path().join("audit.log");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&active)
        .unwrap()
        .write_all(b"{\"eventVersion\":\"1.")
        .unwrap();
    let (broker, dev) = file_broker(dir.path(), &key, 2500);
    assert_eq!(broker.heads()[0].1.seq, 5);
    for i in 5..12 {
        broker.log(&get_secret_value(i)).unwrap();
    }
    let ck = key.chain_key();
    let opts = VerifyOptions {
        key: Some(&ck),
        require_genesis: true,
        ..VerifyOptions::default()
    };
    let report = verify_files(&dev.files().unwrap(), &opts).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.lines, 12);
    assert_eq!(report.head.unwrap().seq, 12);
}

#[test]
fn restart_right_after_rotation_reads_the_head_from_the_rotated_file() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    write_log(dir.path(), &key, 4, 0);
    // Simulate a rotation that happened just before shutdown: the active file is empty.
    std::fs::rename(dir.path().join("audit.log"), dir.path().join("audit.log.000001")).unwrap();
    let (broker, dev) = file_broker(dir.path(), &key, 0);
    assert_eq!(broker.heads()[0].1.seq, 4);
    broker.log(&get_secret_value(9)).unwrap();
    let report = verify_files(&dev.files().unwrap(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.lines, 5);
}

/// Three lines at `dir/audit.log`, the last one changed after it was written.
fn tampered_log(dir: &std::path::Path, key: &DeviceKey) -> Arc<FileDevice> {
    let files = write_log(dir, key, 3, 0);
    let text = std::fs::read_to_string(&files[0]).unwrap().replace("app-2", "app-9");
    std::fs::write(&files[0], text).unwrap();
    Arc::new(FileDevice::open("file/", &files[0], 0).unwrap())
}

#[test]
fn a_tampered_last_line_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let dev = tampered_log(dir.path(), &key);
    let err = AuditBroker::new().add_device(dev, &key).unwrap_err();
    assert!(matches!(err, AuditError::HeadMismatch { .. }), "{err}");
    // And a log written under another key is not continued either.
    let other = DeviceKey::generate().unwrap();
    let dir2 = tempfile::tempdir().unwrap();
    write_log(dir2.path(), &key, 2, 0);
    let dev = Arc::new(FileDevice::open("file/", dir2.path().join("audit.log"), 0).unwrap());
    assert!(AuditBroker::new().add_device(dev, &other).is_err());
}

/// The server's path never refuses a device: it continues after a changed last line from the
/// line's claimed head, reports why, and `verify` still names exactly the changed line.
#[test]
fn add_device_reporting_continues_after_a_tampered_last_line_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let dev = tampered_log(dir.path(), &key);
    let mut broker = AuditBroker::new();
    let (head, problem) = broker.add_device_reporting(dev.clone(), &key);
    assert_eq!(head.seq, 3, "continues from the changed line's claimed seq");
    assert!(problem.unwrap().to_string().contains("was changed"));
    broker.log(&get_secret_value(3)).unwrap();
    let report = verify_files(&dev.files().unwrap(), &VerifyOptions::default()).unwrap();
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert_eq!(report.problems[0].line, 3);
    assert_eq!(report.head.unwrap().seq, 4);

    // A last line that is not a record at all: a new chain, and the reason.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.log");
    std::fs::write(&path, b"garbage\n").unwrap();
    let dev = Arc::new(FileDevice::open("file/", &path, 0).unwrap());
    let (head, problem) = AuditBroker::new().add_device_reporting(dev, &key);
    assert_eq!(head, ChainHead::GENESIS);
    assert!(problem.is_some());
    // A device that cannot read back proves nothing, and says so.
    assert!(!coffer_audit::StdoutDevice::new("stdout").proves_continuity());
    assert!(FileDevice::open("file/", &path, 0).unwrap().proves_continuity());
}

/// A file that cannot be opened at start is retried on every write, and recovers.
#[test]
fn an_unopened_file_device_recovers_once_it_can_be_opened() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    let path = dir.path().join("later").join("audit.log");
    assert!(FileDevice::open("file/", &path, 0).is_err());
    let dev = Arc::new(FileDevice::unopened("file/", &path, 0));
    let mut broker = AuditBroker::new();
    broker.add_device_reporting(dev.clone(), &key);
    assert!(broker.log(&get_secret_value(0)).is_err(), "fails closed meanwhile");
    std::fs::create_dir(path.parent().unwrap()).unwrap();
    broker.log(&get_secret_value(1)).unwrap();
    let report = verify_files(&dev.files().unwrap(), &VerifyOptions::default()).unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.lines, 1);
}

#[test]
fn check_head_compares_recovered_and_stored_heads() {
    let h = |seq, b| ChainHead { seq, hash: [b; 32] };
    assert!(check_head("file/", &h(10, 1), &h(10, 1)).is_ok());
    assert!(check_head("file/", &h(12, 1), &h(10, 9)).is_ok());
    assert!(
        check_head("file/", &h(9, 1), &h(10, 1))
            .unwrap_err()
            .to_string()
            .contains("removed from the end")
    );
    assert!(check_head("file/", &h(10, 2), &h(10, 1)).is_err());
}

#[test]
fn file_is_private() {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let key = DeviceKey::generate().unwrap();
        let files = write_log(dir.path(), &key, 1, 0);
        assert_eq!(
            std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
