//! Group commit (`AuditBroker::record` with writer tasks): concurrent requests share writes,
//! yet every request gets exactly one line, in one valid chain, in each request's own order;
//! failures still fail the requests whose lines were not written (fail closed).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use coffer_audit::{
    AuditBroker, AuditDevice, AuditError, DeviceKey, FailingDevice, MemoryDevice, VerifyOptions, WriteFailure,
    verify_files,
};

use crate::{file_broker, get_secret_value};

/// `tasks` concurrent "requests", each recording `per_task` events one after the other.
/// Returns how many records succeeded.
async fn hammer(broker: &Arc<AuditBroker>, tasks: i64, per_task: i64) -> usize {
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let broker = broker.clone();
            tokio::spawn(async move {
                let mut ok = 0;
                for i in 0..per_task {
                    if broker.record(&get_secret_value(t * 1000 + i)).await.is_ok() {
                        ok += 1;
                    }
                }
                ok
            })
        })
        .collect();
    let mut ok = 0;
    for h in handles {
        ok += h.await.unwrap();
    }
    ok
}

/// The `requestID`s of the lines, in file order.
fn request_ids(contents: &[u8]) -> Vec<String> {
    String::from_utf8(contents.to_vec())
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["requestID"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn verify_memory(dev: &MemoryDevice, key: &DeviceKey) -> coffer_audit::VerifyReport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mem.log");
    std::fs::write(&path, dev.contents()).unwrap();
    let ck = key.chain_key();
    verify_files(
        &[path],
        &VerifyOptions {
            key: Some(&ck),
            require_genesis: true,
            ..VerifyOptions::default()
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_share_writes_and_keep_one_chain_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let key = DeviceKey::generate().unwrap();
    // A file that rotates every few lines, so batches are split across files too.
    let max_bytes = 8 * 1024;
    let (broker, file) = file_broker(dir.path(), &key, max_bytes);
    let mem = Arc::new(MemoryDevice::new("mem/"));
    let mut broker = broker;
    broker.add_device(mem.clone(), &key).unwrap();
    broker.start_writers().unwrap();
    let broker = Arc::new(broker);

    let (tasks, per_task) = (64, 25);
    assert_eq!(hammer(&broker, tasks, per_task).await, (tasks * per_task) as usize);
    let n = (tasks * per_task) as u64;

    // Fewer writes than lines: requests were grouped.
    let lines = mem.lines().len();
    assert_eq!(lines as u64, n);
    assert!(mem.batches() < lines, "{} writes for {lines} lines", mem.batches());

    // One valid chain on each device, from seq 1 to n, with the heads the broker reports.
    let ck = key.chain_key();
    let opts = VerifyOptions {
        key: Some(&ck),
        require_genesis: true,
        ..VerifyOptions::default()
    };
    let files = file.files().unwrap();
    assert!(files.len() > 2, "{files:?}");
    for f in &files {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(len <= max_bytes, "{} is {len} bytes", f.display());
    }
    let report = verify_files(&files, &opts).unwrap();
    assert!(report.is_ok(), "{:?}", &report.problems[..report.problems.len().min(5)]);
    assert_eq!(report.lines, n);
    assert_eq!(report.head.unwrap().seq, n);
    let mem_report = verify_memory(&mem, &key);
    assert!(mem_report.is_ok(), "{:?}", mem_report.problems);
    let heads: HashMap<_, _> = broker.heads().into_iter().collect();
    assert_eq!(heads["file/"], report.head.unwrap());
    assert_eq!(heads["mem/"], mem_report.head.unwrap());

    // Exactly one line per request, and each task's lines in the order it made its requests.
    let mut all = Vec::new();
    for f in &files {
        all.extend(std::fs::read(f).unwrap());
    }
    let ids = request_ids(&all);
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    let mut last: HashMap<i64, i64> = HashMap::new();
    for id in &ids {
        let i: i64 = id.strip_prefix("req-").unwrap().parse().unwrap();
        let (task, nth) = (i / 1000, i % 1000);
        if let Some(prev) = last.insert(task, nth) {
            assert!(prev < nth, "task {task}: request {nth} logged after {prev}");
        }
    }
    assert_eq!(last.len(), tasks as usize);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_device_fails_the_request_and_the_chain_has_no_gap() {
    let key = DeviceKey::generate().unwrap();
    let mut broker = AuditBroker::new();
    broker.add_device(Arc::new(FailingDevice::new("bad/")), &key).unwrap();
    broker.start_writers().unwrap();
    let err = broker.record(&get_secret_value(1)).await.unwrap_err();
    assert!(matches!(err, AuditError::NoDeviceRecorded { failed: 1, .. }), "{err}");

    let mem = Arc::new(MemoryDevice::new("mem/"));
    let mut broker = AuditBroker::new();
    broker.add_device(mem.clone(), &key).unwrap();
    broker.start_writers().unwrap();
    broker.record(&get_secret_value(0)).await.unwrap();
    mem.set_failing(true);
    assert!(broker.record(&get_secret_value(1)).await.is_err());
    mem.set_failing(false);
    broker.record(&get_secret_value(2)).await.unwrap();
    assert_eq!(request_ids(&mem.contents()), ["req-0", "req-2"]);
    let report = verify_memory(&mem, &key);
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.head.unwrap().seq, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_failing_device_of_two_is_reported_not_fatal() {
    let key = DeviceKey::generate().unwrap();
    let good = Arc::new(MemoryDevice::new("good/"));
    let mut broker = AuditBroker::new();
    broker.add_device(Arc::new(FailingDevice::new("bad/")), &key).unwrap();
    broker.add_device(good.clone(), &key).unwrap();
    broker.start_writers().unwrap();
    let receipt = broker.record(&get_secret_value(1)).await.unwrap();
    assert_eq!(receipt.recorded, 1);
    assert_eq!(receipt.failed.len(), 1);
    assert!(receipt.failed[0].to_string().contains("bad/"), "{}", receipt.failed[0]);
    assert_eq!(good.lines().len(), 1);
}

/// Accepts `limit` lines in all, then fails: a batch that crosses the limit is written in part.
struct FillsUp {
    inner: MemoryDevice,
    limit: usize,
    taken: AtomicUsize,
}

impl AuditDevice for FillsUp {
    fn name(&self) -> &str {
        "fills-up/"
    }

    fn write(&self, lines: &[u8]) -> Result<(), WriteFailure> {
        let all: Vec<&[u8]> = lines.split_inclusive(|&b| b == b'\n').collect();
        let room = self.limit - self.taken.load(Ordering::SeqCst);
        let n = all.len().min(room);
        if n > 0 {
            self.inner.write(&all[..n].concat())?;
            self.taken.fetch_add(n, Ordering::SeqCst);
        }
        if n < all.len() {
            return Err(WriteFailure {
                written: n,
                error: AuditError::Device {
                    device: "fills-up/".into(),
                    message: "no space left on device".into(),
                },
            });
        }
        Ok(())
    }

    fn last_line(&self) -> Result<Option<Vec<u8>>, AuditError> {
        self.inner.last_line()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_written_in_part_fails_exactly_the_lines_not_written() {
    let key = DeviceKey::generate().unwrap();
    let dev = Arc::new(FillsUp {
        inner: MemoryDevice::new("fills-up/"),
        limit: 100,
        taken: AtomicUsize::new(0),
    });
    let mut broker = AuditBroker::new();
    broker.add_device(dev.clone(), &key).unwrap();
    broker.start_writers().unwrap();
    let broker = Arc::new(broker);
    // As many requests succeed as lines were written; all others fail.
    assert_eq!(hammer(&broker, 32, 10).await, 100);
    let report = verify_memory(&dev.inner, &key);
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.lines, 100);
    assert_eq!(broker.heads()[0].1, report.head.unwrap());
}

#[tokio::test]
async fn without_writers_or_after_close() {
    let key = DeviceKey::generate().unwrap();
    let mem = Arc::new(MemoryDevice::new("mem/"));
    let mut broker = AuditBroker::new();
    broker.add_device(mem.clone(), &key).unwrap();
    // No writer task: `record` writes the line itself.
    broker.record(&get_secret_value(0)).await.unwrap();
    assert_eq!(mem.lines().len(), 1);

    broker.start_writers().unwrap();
    broker.start_writers().unwrap();
    let broker = Arc::new(broker);
    // Queued lines are still written after close; new ones are refused (fail closed).
    let queued = tokio::spawn({
        let broker = broker.clone();
        async move { broker.record(&get_secret_value(1)).await.map(|r| r.recorded) }
    });
    tokio::task::yield_now().await;
    broker.close();
    broker.closed().await;
    let queued = queued.await.unwrap();
    let after = broker.record(&get_secret_value(2)).await;
    assert!(
        matches!(after, Err(AuditError::NoDeviceRecorded { failed: 1, .. })),
        "{after:?}"
    );
    assert_eq!(mem.lines().len(), 1 + usize::from(queued.is_ok()));
    let report = verify_memory(&mem, &key);
    assert!(report.is_ok(), "{:?}", report.problems);
}

#[test]
fn start_writers_needs_a_runtime() {
    assert!(AuditBroker::new().start_writers().is_err());
}
