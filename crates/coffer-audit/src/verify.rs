//! `coffer audit verify FILE...`: check one device's chain and say where it breaks.
//!
//! [`verify_files`] reads the files in chain order and checks, line by line:
//! - the line is a sealed record ending in a newline (else *malformed* or *torn*);
//! - its `hash` matches its bytes (else *changed*: any edited byte outside the `mac` field);
//! - with a [`ChainKey`], its `mac` matches its hash (else *not authentic*: forged, or the chain
//!   was recomputed after an edit, or the wrong key);
//! - its `seq` follows the previous line's and its `prev` is the previous line's `hash` (else
//!   *missing* lines, *out of order* lines, or a *broken link*: a line replaced by another).
//!
//! One problem is reported per damaged place, naming the file, the 1-based line number and the
//! seq: an edited line gives one problem, a removed line one, two swapped lines two.
//!
//! With [`VerifyOptions::expected_head`] (the head the server kept in sealed storage) it also
//! detects lines cut from the end; with [`VerifyOptions::require_genesis`] it detects removed
//! oldest lines or files. Without a key a changed `mac` field goes unnoticed and a recomputed
//! chain passes; see [`crate::chain`] for the full list of what can and cannot be detected.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::chain::{self, ChainHead, ChainKey};
use crate::search::{LogLines, order_files};
use crate::{AuditError, chain::SealedLine};

/// What to check besides the chain itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct VerifyOptions<'a> {
    /// The chain key: check every line's MAC.
    pub key: Option<&'a ChainKey>,
    /// The head the server recorded: the files must reach it, with the same hash.
    pub expected_head: Option<ChainHead>,
    /// The files are the whole log: the first line must be seq 1.
    pub require_genesis: bool,
}

/// The result of a verification.
#[derive(Debug, Default)]
pub struct VerifyReport {
    /// The files, in the chain order they were checked in.
    pub files: Vec<PathBuf>,
    /// How many lines were read.
    pub lines: u64,
    /// The highest-seq line seen (what a server would continue from).
    pub head: Option<ChainHead>,
    /// Whether MACs were checked.
    pub keyed: bool,
    /// Every problem found, in file order.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// No problem found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// One problem, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// The 1-based line number (0 when the problem is about the file as a whole).
    pub line: u64,
    /// The line's seq, when it could be read.
    pub seq: Option<u64>,
    /// What is wrong.
    pub kind: ProblemKind,
}

/// What is wrong with a line.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProblemKind {
    /// The file could not be read.
    Unreadable(String),
    /// Not a sealed audit record.
    Malformed(String),
    /// The last line has no newline.
    Torn,
    /// The content does not match the recorded hash.
    Changed,
    /// The MAC does not verify under the chain key.
    NotAuthentic,
    /// Lines with these seqs are missing just before this line.
    Missing {
        /// First missing seq.
        from: u64,
        /// Last missing seq.
        to: u64,
    },
    /// The seq is not the next one.
    OutOfOrder {
        /// The seq that should be here.
        expected: u64,
        /// The seq found.
        found: u64,
        /// Where the expected seq is, if it is somewhere later.
        expected_at: Option<(PathBuf, u64)>,
    },
    /// The seq is right but `prev` is not the previous line's hash.
    BrokenLink,
    /// The first line is not seq 1.
    NotGenesis {
        /// The first seq found.
        first: u64,
    },
    /// The files end before the head the server recorded.
    TailMissing {
        /// The last seq found.
        last: u64,
        /// The recorded head's seq.
        expected: u64,
    },
    /// The line at the recorded head's seq has another hash.
    HeadDiffers {
        /// The recorded head's seq.
        seq: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file.display(), self.line)?;
        match &self.kind {
            ProblemKind::Unreadable(e) => write!(f, "cannot read the file: {e}"),
            ProblemKind::Malformed(reason) => write!(f, "{reason}"),
            ProblemKind::Torn => f.write_str("incomplete last line (no newline): a torn write or a cut file"),
            ProblemKind::Changed => f.write_str("line changed: its content does not match its hash"),
            ProblemKind::NotAuthentic => {
                f.write_str("line not authenticated by the chain key: forged, or rewritten with the chain")
            }
            ProblemKind::Missing { from, to } if from == to => {
                write!(f, "line removed: seq {from} is missing before this line")
            }
            ProblemKind::Missing { from, to } => {
                write!(
                    f,
                    "{} lines removed: seq {from} to {to} are missing before this line",
                    to - from + 1
                )
            }
            ProblemKind::OutOfOrder {
                expected,
                found,
                expected_at,
            } => {
                write!(f, "out of order: expected seq {expected}, found seq {found}")?;
                match expected_at {
                    Some((file, line)) => write!(f, " (seq {expected} is at {}:{line})", file.display()),
                    None => Ok(()),
                }
            }
            ProblemKind::BrokenLink => {
                f.write_str("chain broken: prev is not the hash of the line before (a line was replaced)")
            }
            ProblemKind::NotGenesis { first } => {
                write!(
                    f,
                    "the chain starts at seq {first}, not 1: earlier lines or files are missing"
                )
            }
            ProblemKind::TailMissing { last, expected } => write!(
                f,
                "the log ends at seq {last} but the server recorded seq {expected}: lines removed from the end"
            ),
            ProblemKind::HeadDiffers { seq } => {
                write!(f, "the line at seq {seq} is not the one the server recorded")
            }
        }?;
        match (self.seq, &self.kind) {
            (Some(seq), ProblemKind::Changed | ProblemKind::NotAuthentic | ProblemKind::BrokenLink) => {
                write!(f, " (seq {seq})")
            }
            _ => Ok(()),
        }
    }
}

/// Verifies one device's files (any order; they are sorted into chain order).
pub fn verify_files(paths: &[PathBuf], options: &VerifyOptions<'_>) -> Result<VerifyReport, AuditError> {
    let files = order_files(paths)?;
    let mut v = Verifier {
        options,
        report: VerifyReport::default(),
        last: None,
        last_alt: None,
        wanted: HashMap::new(),
    };
    v.report.keyed = options.key.is_some();
    v.report.files = files.clone();
    let mut head_hash: Option<[u8; 32]> = None;
    let mut last_place: Option<(Arc<PathBuf>, u64)> = None;
    for raw in LogLines::new(files) {
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                let file = match &e {
                    AuditError::Io { path, .. } => path.clone(),
                    _ => PathBuf::new(),
                };
                v.problem(file, 0, None, ProblemKind::Unreadable(e.to_string()));
                continue;
            }
        };
        v.report.lines += 1;
        last_place = Some((raw.file.clone(), raw.line));
        let place = (raw.file.as_ref(), raw.line);
        if !raw.terminated {
            v.problem(place.0.clone(), place.1, None, ProblemKind::Torn);
            continue;
        }
        let sealed = match chain::open(&raw.bytes) {
            Ok(s) => s,
            Err(reason) => {
                v.problem(
                    place.0.clone(),
                    place.1,
                    None,
                    ProblemKind::Malformed(reason.to_owned()),
                );
                continue;
            }
        };
        if options.expected_head.is_some_and(|h| h.seq == sealed.seq) {
            head_hash = Some(sealed.hash);
        }
        v.line(place.0, place.1, &sealed);
    }
    if let Some(expected) = options.expected_head.filter(|h| h.seq > 0) {
        let (file, line) = last_place.map_or((PathBuf::new(), 0), |(f, l)| (f.as_ref().clone(), l));
        let last = v.report.head.map_or(0, |h| h.seq);
        match head_hash {
            None => v.problem(
                file,
                line,
                None,
                ProblemKind::TailMissing {
                    last,
                    expected: expected.seq,
                },
            ),
            Some(h) if h != expected.hash => {
                v.problem(file, line, None, ProblemKind::HeadDiffers { seq: expected.seq })
            }
            Some(_) => {}
        }
    }
    Ok(v.report)
}

struct Verifier<'o> {
    options: &'o VerifyOptions<'o>,
    report: VerifyReport,
    /// The seq and hash the next line must follow.
    last: Option<(u64, [u8; 32])>,
    /// After a changed line, the hash its content has now: the next line may link to either
    /// (the edit was in the body, or in the `hash` field itself).
    last_alt: Option<[u8; 32]>,
    /// Seqs reported missing, to turn into "out of order" if they show up later.
    wanted: HashMap<u64, usize>,
}

impl Verifier<'_> {
    fn problem(&mut self, file: PathBuf, line: u64, seq: Option<u64>, kind: ProblemKind) {
        self.report.problems.push(Problem { file, line, seq, kind });
    }

    fn line(&mut self, path: &Path, line: u64, s: &SealedLine<'_>) {
        let file = &path.to_path_buf();
        if let Some(i) = self.wanted.remove(&s.seq)
            && let Some(p) = self.report.problems.get_mut(i)
            && let ProblemKind::Missing { from, .. } = p.kind
        {
            let found = p.seq.unwrap_or_default();
            p.kind = ProblemKind::OutOfOrder {
                expected: from,
                found,
                expected_at: Some((file.clone(), line)),
            };
        }
        if self.report.head.is_none_or(|h| s.seq > h.seq) {
            self.report.head = Some(ChainHead {
                seq: s.seq,
                hash: s.hash,
            });
        }
        let expected = self.last.map_or(s.seq, |(seq, _)| seq + 1);
        let alt = self.last_alt.take();
        if s.computed != s.hash {
            self.problem(file.clone(), line, Some(s.seq), ProblemKind::Changed);
            // Whatever was changed (maybe the seq itself), the line stands at its expected place.
            self.last = Some((expected, s.hash));
            self.last_alt = Some(s.computed);
            return;
        }
        if let Some(key) = self.options.key
            && !key.verifies(&s.hash, &s.mac)
        {
            self.problem(file.clone(), line, Some(s.seq), ProblemKind::NotAuthentic);
        }
        match self.last {
            None => {
                if s.seq == 1 && s.prev != [0; 32] {
                    self.problem(file.clone(), line, Some(s.seq), ProblemKind::BrokenLink);
                } else if self.options.require_genesis && s.seq != 1 {
                    self.problem(
                        file.clone(),
                        line,
                        Some(s.seq),
                        ProblemKind::NotGenesis { first: s.seq },
                    );
                }
            }
            Some((last_seq, last_hash)) => {
                if s.seq == last_seq + 1 {
                    if s.prev != last_hash && Some(s.prev) != alt {
                        self.problem(file.clone(), line, Some(s.seq), ProblemKind::BrokenLink);
                    }
                } else if s.seq > last_seq + 1 {
                    self.wanted.insert(last_seq + 1, self.report.problems.len());
                    let kind = ProblemKind::Missing {
                        from: last_seq + 1,
                        to: s.seq - 1,
                    };
                    self.problem(file.clone(), line, Some(s.seq), kind);
                } else {
                    let kind = ProblemKind::OutOfOrder {
                        expected: last_seq + 1,
                        found: s.seq,
                        expected_at: None,
                    };
                    self.problem(file.clone(), line, Some(s.seq), kind);
                    // Keep following the chain from the line before: a line moved back is one problem.
                    return;
                }
            }
        }
        self.last = Some((s.seq, s.hash));
    }
}
