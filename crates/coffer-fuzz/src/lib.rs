//! Coverage-blind fuzzing on stable Rust, for the tests of the crates that parse what comes
//! from the network or the disk.
//!
//! A target is a test that calls [`Fuzz::run`] with a check on one input. The check is run on
//! every file of the target's committed corpus (`crates/<crate>/fuzz-corpus/<target>/`), on
//! the live seeds the test makes with the real code, and then on inputs made by mutating them
//! (bit flips, truncation, deletion, duplication, splicing two inputs, insertion of boundary
//! values and of the target's dictionary tokens). proptest drives the mutations, so a failing
//! input is shrunk to the fewest mutations before it is printed.
//!
//! How long it runs: `FUZZ_SECONDS` set (by `scripts/fuzz.sh`) runs each target for that many
//! seconds; unset (a plain `cargo test`), a target runs its corpus and [`DEFAULT_CASES`]
//! mutations (`FUZZ_CASES` overrides). A watchdog aborts the test binary, printing the input,
//! when one input runs longer than [`HANG_LIMIT`]; a slower input than [`SLOW_LIMIT`] fails.
//! `FUZZ_WRITE_CORPUS=1` writes the live seeds into the corpus directory.
//!
//! This is not coverage-guided: nothing steers the mutations toward new code paths, so deep
//! paths are reached only as far as the corpus and the dictionary lead.

// Test support only (a dev-dependency): failing the calling test is its job.
#![allow(clippy::panic)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use coffer_crypto::SecretBytes;
use coffer_storage::Storage;
pub use proptest;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// Mutated inputs per target in a plain `cargo test`.
pub const DEFAULT_CASES: u32 = 200;
/// An input slower than this fails the target.
pub const SLOW_LIMIT: Duration = Duration::from_secs(2);
/// An input running longer than this aborts the test binary (a hang).
pub const HANG_LIMIT: Duration = Duration::from_secs(20);

/// Values that sit on a boundary of some parser: lengths, signs, overflows, encodings.
const BOUNDARY: &[&[u8]] = &[
    b"\0",
    b"\xff",
    b"\x7f",
    b"\x80",
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",
    b"0",
    b"-1",
    b"-0",
    b"1e400",
    b"-9223372036854775809",
    b"9223372036854775807",
    b"18446744073709551616",
    b"4294967296",
    b"NaN",
    b"\"",
    b"\\",
    b"\\u0000",
    b"\\ud800",
    b"%",
    b"%zz",
    b"%00",
    b"\xc3",
    b"\xe2\x82",
    b"\xf0\x9f\x92\xa9",
    b" ",
    b"\t",
    b"\r\n",
    b"\n",
    b"=",
    b"&",
    b",",
    b";",
    b"*",
    b"?",
    b"[",
    b"]",
    b"{",
    b"}",
    b"[[",
    b"{}",
    b"[]",
    b"null",
    b"true",
];

/// One change to an input. Positions are fractions of the input's length, so a mutation
/// shrinks and replays on any input.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(prop::sample::Index, u8),
    SetByte(prop::sample::Index, u8),
    Truncate(prop::sample::Index),
    Delete(prop::sample::Index, usize),
    Duplicate(prop::sample::Index, usize),
    Boundary(prop::sample::Index, prop::sample::Index),
    Token(prop::sample::Index, prop::sample::Index),
    Splice(prop::sample::Index, prop::sample::Index, prop::sample::Index),
    Random(prop::sample::Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let i = any::<prop::sample::Index>;
    prop_oneof![
        3 => (i(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        2 => (i(), any::<u8>()).prop_map(|(p, b)| Mutation::SetByte(p, b)),
        1 => i().prop_map(Mutation::Truncate),
        2 => (i(), 1usize..16).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => (i(), 1usize..64).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
        3 => (i(), i()).prop_map(|(p, v)| Mutation::Boundary(p, v)),
        3 => (i(), i()).prop_map(|(p, t)| Mutation::Token(p, t)),
        2 => (i(), i(), i()).prop_map(|(p, o, s)| Mutation::Splice(p, o, s)),
        1 => (i(), prop::collection::vec(any::<u8>(), 1..8)).prop_map(|(p, b)| Mutation::Random(p, b)),
    ]
}

fn at(index: &prop::sample::Index, len: usize) -> usize {
    index.index(len + 1)
}

impl Mutation {
    fn apply(&self, input: &mut Vec<u8>, seeds: &[Vec<u8>], dict: &[Vec<u8>]) {
        match self {
            Mutation::FlipBit(p, bit) => {
                if !input.is_empty() {
                    let i = p.index(input.len());
                    input[i] ^= 1 << bit;
                }
            }
            Mutation::SetByte(p, b) => {
                if !input.is_empty() {
                    let i = p.index(input.len());
                    input[i] = *b;
                }
            }
            Mutation::Truncate(p) => input.truncate(at(p, input.len())),
            Mutation::Delete(p, n) => {
                let i = at(p, input.len());
                let end = (i + n).min(input.len());
                input.drain(i..end);
            }
            Mutation::Duplicate(p, n) => {
                let i = at(p, input.len());
                let end = (i + n).min(input.len());
                let copy = input[i..end].to_vec();
                input.splice(i..i, copy);
            }
            Mutation::Boundary(p, v) => {
                let i = at(p, input.len());
                let value = BOUNDARY[v.index(BOUNDARY.len())];
                input.splice(i..i, value.iter().copied());
            }
            Mutation::Token(p, t) => {
                if !dict.is_empty() {
                    let i = at(p, input.len());
                    input.splice(i..i, dict[t.index(dict.len())].iter().copied());
                }
            }
            Mutation::Splice(p, other, from) => {
                if !seeds.is_empty() {
                    let other = &seeds[other.index(seeds.len())];
                    let i = at(p, input.len());
                    let start = at(from, other.len());
                    input.truncate(i);
                    input.extend_from_slice(&other[start..]);
                }
            }
            Mutation::Random(p, bytes) => {
                let i = at(p, input.len());
                input.splice(i..i, bytes.iter().copied());
            }
        }
    }
}

/// One fuzz target: its corpus, seeds and dictionary.
pub struct Fuzz {
    name: String,
    corpus_dir: PathBuf,
    /// (name, bytes): committed corpus files, then live seeds.
    seeds: Vec<(String, Vec<u8>)>,
    dict: Vec<Vec<u8>>,
}

impl Fuzz {
    /// The target `name` whose corpus is `<crate_dir>/fuzz-corpus/<name>/` (pass
    /// `env!("CARGO_MANIFEST_DIR")`). A missing directory is an empty corpus.
    pub fn new(crate_dir: &str, name: &str) -> Self {
        let corpus_dir = Path::new(crate_dir).join("fuzz-corpus").join(name);
        let mut seeds = Vec::new();
        if let Ok(dir) = std::fs::read_dir(&corpus_dir) {
            let mut paths: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
            paths.sort();
            for path in paths {
                if let Ok(bytes) = std::fs::read(&path) {
                    let file = path.file_name().map(|n| n.to_string_lossy().into_owned());
                    seeds.push((file.unwrap_or_default(), bytes));
                }
            }
        }
        Self {
            name: name.to_owned(),
            corpus_dir,
            seeds,
            dict: Vec::new(),
        }
    }

    /// Adds live seeds made by the real code (written to the corpus with `FUZZ_WRITE_CORPUS=1`).
    pub fn seeds<N: Into<String>, B: Into<Vec<u8>>>(mut self, seeds: impl IntoIterator<Item = (N, B)>) -> Self {
        let write = std::env::var_os("FUZZ_WRITE_CORPUS").is_some();
        for (name, bytes) in seeds {
            let (name, bytes) = (name.into(), bytes.into());
            if write {
                let _ = std::fs::create_dir_all(&self.corpus_dir);
                let _ = std::fs::write(self.corpus_dir.join(&name), &bytes);
            }
            if !self.seeds.iter().any(|(_, b)| *b == bytes) {
                self.seeds.push((name, bytes));
            }
        }
        self
    }

    /// Tokens the mutator inserts (keywords, field names, operators of the format).
    pub fn dictionary(mut self, tokens: &[&str]) -> Self {
        self.dict.extend(tokens.iter().map(|t| t.as_bytes().to_vec()));
        self
    }

    /// The committed corpus and live seeds, by name.
    pub fn inputs(&self) -> &[(String, Vec<u8>)] {
        &self.seeds
    }

    /// Runs `check` on every seed, then on mutated seeds for the configured budget.
    /// `check` asserts the target's property (it panics on a violation).
    pub fn run(&self, check: impl Fn(&[u8])) {
        assert!(!self.seeds.is_empty(), "fuzz target {} has no corpus", self.name);
        let watch = Watchdog::start(&self.name);
        for (name, bytes) in &self.seeds {
            watch.begin(bytes);
            let started = Instant::now();
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(bytes))).is_err() {
                panic!(
                    "fuzz target {}: corpus input {name} failed (see the panic above)",
                    self.name
                );
            }
            assert!(
                started.elapsed() < SLOW_LIMIT,
                "{}: corpus input {name} took {:?}",
                self.name,
                started.elapsed()
            );
        }
        let seeds: Vec<Vec<u8>> = self.seeds.iter().map(|(_, b)| b.clone()).collect();
        let strategy = (any::<prop::sample::Index>(), prop::collection::vec(mutation(), 1..6));
        self.drive(
            &watch,
            strategy,
            |(which, mutations)| {
                let mut input = seeds[which.index(seeds.len())].clone();
                for m in &mutations {
                    m.apply(&mut input, &seeds, &self.dict);
                }
                input
            },
            &check,
        );
        watch.stop();
    }

    /// Runs `check` on inputs made by a structured generator, for the same budget.
    pub fn run_generated<S: Strategy>(&self, strategy: S, render: impl Fn(S::Value) -> Vec<u8>, check: impl Fn(&[u8]))
    where
        S::Value: Clone,
    {
        let watch = Watchdog::start(&self.name);
        self.drive(&watch, strategy, render, &check);
        watch.stop();
    }

    fn drive<S: Strategy>(
        &self,
        watch: &Watchdog,
        strategy: S,
        render: impl Fn(S::Value) -> Vec<u8>,
        check: &impl Fn(&[u8]),
    ) {
        let budget = Budget::from_env();
        let started = Instant::now();
        let mut total = 0u64;
        loop {
            let cases = match budget {
                Budget::Cases(n) => n,
                Budget::Seconds(_) => 100,
            };
            let mut runner = TestRunner::new(Config {
                cases,
                failure_persistence: None,
                max_shrink_iters: 2048,
                ..Config::default()
            });
            let result = runner.run(&strategy, |value| {
                let input = render(value);
                watch.begin(&input);
                let t = Instant::now();
                check(&input);
                let took = t.elapsed();
                if took >= SLOW_LIMIT {
                    return Err(TestCaseError::fail(format!("slow input: {took:?}")));
                }
                Ok(())
            });
            total += u64::from(cases);
            match result {
                Ok(()) => {}
                Err(TestError::Fail(reason, value)) => panic!(
                    "fuzz target {} failed: {reason}\nminimal input: b\"{}\"",
                    self.name,
                    escape(&render(value))
                ),
                Err(e) => panic!("fuzz target {} failed: {e}", self.name),
            }
            match budget {
                Budget::Cases(_) => break,
                Budget::Seconds(s) if started.elapsed() >= Duration::from_secs(s) => break,
                Budget::Seconds(_) => {}
            }
        }
        eprintln!(
            "fuzz target {}: {} seeds, {total} generated inputs in {:.1?}",
            self.name,
            self.seeds.len(),
            started.elapsed()
        );
    }
}

#[derive(Clone, Copy)]
enum Budget {
    Cases(u32),
    Seconds(u64),
}

impl Budget {
    fn from_env() -> Self {
        let number = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(s) = number("FUZZ_SECONDS") {
            return Budget::Seconds(s);
        }
        let cases = number("FUZZ_CASES").unwrap_or(u64::from(DEFAULT_CASES));
        Budget::Cases(u32::try_from(cases).unwrap_or(u32::MAX))
    }
}

/// Aborts the process, printing the input, when one input runs longer than [`HANG_LIMIT`].
struct Watchdog {
    state: Arc<WatchState>,
}

struct WatchState {
    name: String,
    /// Bumped when an input starts.
    progress: AtomicU64,
    done: AtomicBool,
    current: std::sync::Mutex<Vec<u8>>,
}

impl Watchdog {
    fn start(name: &str) -> Self {
        let state = Arc::new(WatchState {
            name: name.to_owned(),
            progress: AtomicU64::new(0),
            done: AtomicBool::new(false),
            current: std::sync::Mutex::new(Vec::new()),
        });
        let watched = Arc::clone(&state);
        std::thread::spawn(move || {
            let mut last = (u64::MAX, Instant::now());
            while !watched.done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(200));
                let now = watched.progress.load(Ordering::Relaxed);
                if now != last.0 {
                    last = (now, Instant::now());
                } else if last.1.elapsed() > HANG_LIMIT {
                    let input = watched.current.lock().map(|i| escape(&i)).unwrap_or_default();
                    eprintln!("fuzz target {}: input hangs (> {HANG_LIMIT:?}): {input}", watched.name);
                    std::process::abort();
                }
            }
        });
        Self { state }
    }

    fn begin(&self, input: &[u8]) {
        if let Ok(mut current) = self.state.current.lock() {
            current.clear();
            current.extend_from_slice(input);
        }
        self.state.progress.fetch_add(1, Ordering::Relaxed);
    }

    fn stop(&self) {
        self.state.done.store(true, Ordering::Relaxed);
    }
}

/// `input` as a Rust byte-string literal body, to paste into a regression test.
pub fn escape(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len());
    for &b in input {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

/// A current-thread runtime, for targets that call async engine code input by input.
pub fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot start a tokio runtime: {e}"),
    }
}

/// Splits an input `Operation\n<body>` of the awsJson targets into the operation and the body
/// as the front end accepts it (a blank body is `{}`); `None` for a body that is not a JSON
/// object (the front end refuses it before any engine sees it).
pub fn operation_and_body(input: &[u8]) -> Option<(String, serde_json::Value)> {
    let (op, body) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &b""[..]),
    };
    let op = String::from_utf8_lossy(op).trim().to_owned();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some((op, serde_json::json!({})));
    }
    match serde_json::from_slice(body) {
        Ok(v @ serde_json::Value::Object(_)) => Some((op, v)),
        _ => None,
    }
}

/// The awsJson target of an engine: `requests` (operation, body) are run once, to build the
/// state they expect, then mutated as the seeds; then JSON trees over `members` are sent to
/// every one of `operations`. `call` runs one request and ignores its answer: the property is
/// that none panics or hangs.
pub fn fuzz_operations(
    crate_dir: &str,
    name: &str,
    operations: &'static [&'static str],
    members: &'static [&'static str],
    requests: Vec<(String, serde_json::Value)>,
    call: impl Fn(&str, serde_json::Value),
) {
    let seeds: Vec<(String, Vec<u8>)> = requests
        .iter()
        .enumerate()
        .map(|(i, (op, body))| (format!("{i:02}-{op}"), format!("{op}\n{body}").into_bytes()))
        .collect();
    for (op, body) in requests {
        call(&op, body);
    }
    let run = |input: &[u8]| {
        if let Some((op, body)) = operation_and_body(input) {
            call(&op, body);
        }
    };
    let mut words = members.to_vec();
    words.extend_from_slice(operations);
    let fuzz = Fuzz::new(crate_dir, name).seeds(seeds).dictionary(&words);
    fuzz.run(run);
    fuzz.run_generated(
        (prop::sample::select(operations), json_value(members)),
        |(op, value)| format!("{op}\n{value}").into_bytes(),
        run,
    );
}

/// Every record in `storage` as a seed `<storage key>\n<stored bytes>`, the input form of the
/// stored-record targets.
pub fn record_seeds(rt: &tokio::runtime::Runtime, storage: &dyn Storage) -> Vec<(String, Vec<u8>)> {
    let keys = rt.block_on(storage.scan("", None, usize::MAX)).unwrap_or_default();
    let mut seeds = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        if let Ok(Some(value)) = rt.block_on(storage.get(key)) {
            let mut input = key.clone().into_bytes();
            input.push(b'\n');
            input.extend_from_slice(value.expose());
            seeds.push((format!("{i:02}-record"), input));
        }
    }
    seeds
}

/// Stores the record of `input` (`<storage key>\n<bytes>`) in place of what `storage` holds
/// there, runs `read`, and puts the original back, so every input starts from the same state.
/// Inputs without a key are skipped.
pub fn with_stored_record(rt: &tokio::runtime::Runtime, storage: &dyn Storage, input: &[u8], read: impl FnOnce()) {
    let Some(split) = input.iter().position(|&b| b == b'\n') else {
        return;
    };
    let Ok(key) = std::str::from_utf8(&input[..split]) else {
        return;
    };
    if key.is_empty() {
        return;
    }
    let original = rt.block_on(storage.get(key)).ok().flatten();
    if rt
        .block_on(storage.put(key, SecretBytes::from_slice(&input[split + 1..])))
        .is_err()
    {
        return;
    }
    read();
    let restored = match original {
        Some(v) => rt.block_on(storage.put(key, v)),
        None => rt.block_on(storage.delete(key)),
    };
    if let Err(e) = restored {
        panic!("cannot restore {key}: {e}");
    }
}

/// A JSON value of bounded size whose strings and keys come from `words` or are arbitrary,
/// and whose numbers include boundary values: the structured generator of JSON targets.
pub fn json_value(words: &'static [&'static str]) -> impl Strategy<Value = serde_json::Value> + Clone {
    use serde_json::Value;
    let word = prop_oneof![
        4 => prop::sample::select(words).prop_map(str::to_owned),
        1 => ".{0,12}",
    ];
    let number = prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        Just(Value::from(0)),
        Just(Value::from(-1)),
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number,
        word.clone().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(word.clone(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// The harness finds a bug a seed is a few mutations away from, and shrinks it.
    #[test]
    fn finds_a_planted_bug() {
        let fuzz = Fuzz::new("/nonexistent", "planted").seeds([("seed", b"{\"a\":1}".to_vec())]);
        let found = std::panic::catch_unwind(|| {
            fuzz.run(|input| assert!(!input.contains(&0) || !input.starts_with(b"{"), "planted"));
        });
        let message = found.expect_err("the planted bug was not found");
        let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains("planted"), "{text}");
        assert!(text.contains("minimal input: b\"{"), "{text}");
    }

    #[test]
    fn escape_is_a_byte_string_body() {
        assert_eq!(escape(b"a\"\\\n\x00\xff"), "a\\\"\\\\\\n\\x00\\xff");
    }
}
