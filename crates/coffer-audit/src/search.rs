//! Reading audit files back: `coffer audit search`.
//!
//! [`search()`] reads one device's files in chain order (sorted by the `seq` of their first
//! line, so `audit.log*` in any order works), parses each line and yields the events a
//! [`Filter`] accepts. It does not verify the chain (that is [`crate::verify_files`]); a line
//! that cannot be read is yielded as an error and reading goes on.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use time::OffsetDateTime;

use crate::AuditError;
use crate::chain;
use crate::event::{AuditEvent, Outcome};

/// Which events to return. Every set field must match.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// The caller: matches `userIdentity.arn`, `userName`, `accessKeyId` or `principalId`
    /// exactly, or the user name `LookupEvents` reports.
    pub identity: Option<String>,
    /// `eventName`, exactly (`GetSecretValue`).
    pub event_name: Option<String>,
    /// `eventSource`, exactly (`secretsmanager.amazonaws.com`).
    pub event_source: Option<String>,
    /// A resource ARN (`vault:<path>` for Vault paths).
    pub resource: Option<ResourceMatch>,
    /// Events at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Events at or before this time.
    pub until: Option<OffsetDateTime>,
    /// Allowed, denied or failed.
    pub outcome: Option<Outcome>,
}

/// How [`Filter::resource`] compares ARNs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ResourceMatch {
    /// The whole ARN.
    Exact(String),
    /// A substring of the ARN (a secret's name, a path prefix).
    Contains(String),
}

impl Filter {
    /// Whether `event` passes every set criterion.
    pub fn matches(&self, event: &AuditEvent) -> bool {
        let id = &event.user_identity;
        let identity_ok = self.identity.as_deref().is_none_or(|want| {
            [&id.arn, &id.user_name, &id.access_key_id, &id.principal_id]
                .iter()
                .any(|f| f.as_deref() == Some(want))
                || event.username() == Some(want)
        });
        let resource_ok = self.resource.as_ref().is_none_or(|want| {
            event.resources.iter().any(|r| match want {
                ResourceMatch::Exact(arn) => &r.arn == arn,
                ResourceMatch::Contains(part) => r.arn.contains(part.as_str()),
            })
        });
        identity_ok
            && resource_ok
            && self.event_name.as_deref().is_none_or(|n| event.event_name == n)
            && self.event_source.as_deref().is_none_or(|s| event.event_source == s)
            && self.since.is_none_or(|t| event.event_time >= t)
            && self.until.is_none_or(|t| event.event_time <= t)
            && self.outcome.is_none_or(|o| event.outcome() == o)
    }
}

/// One event read back from a file.
#[derive(Clone, Debug)]
pub struct LoggedEvent {
    /// The file it is in.
    pub file: Arc<PathBuf>,
    /// Its 1-based line number.
    pub line: u64,
    /// Its chain position.
    pub seq: u64,
    /// The event (sensitive values are `hmac-sha256:` strings).
    pub event: AuditEvent,
    /// The event as CloudTrail JSON: the line without the `"coffer"` member.
    pub json: String,
}

/// The events in `paths` (one device's files, any order) that `filter` accepts, in chain order.
pub fn search(
    paths: &[PathBuf],
    filter: &Filter,
) -> Result<impl Iterator<Item = Result<LoggedEvent, AuditError>> + use<>, AuditError> {
    let filter = filter.clone();
    Ok(read_events(paths)?.filter(move |r| r.as_ref().map_or(true, |e| filter.matches(&e.event))))
}

/// Every event in `paths`, in chain order.
pub(crate) fn read_events(
    paths: &[PathBuf],
) -> Result<impl Iterator<Item = Result<LoggedEvent, AuditError>> + use<>, AuditError> {
    Ok(LogLines::new(order_files(paths)?).map(|r| {
        let raw = r?;
        parse_event(&raw)
    }))
}

fn parse_event(raw: &RawLine) -> Result<LoggedEvent, AuditError> {
    let malformed = |reason: String| AuditError::Malformed {
        path: raw.file.as_ref().clone(),
        line: raw.line,
        reason,
    };
    let sealed = chain::open(&raw.bytes).map_err(|r| malformed(r.to_owned()))?;
    let json = sealed.event_json();
    let event: AuditEvent = serde_json::from_str(&json).map_err(|e| malformed(format!("bad event JSON: {e}")))?;
    Ok(LoggedEvent {
        file: raw.file.clone(),
        line: raw.line,
        seq: sealed.seq,
        event,
        json,
    })
}

/// Sorts one device's files into chain order by the `seq` of their first line; files without a
/// readable first line go last, in the order given.
pub(crate) fn order_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, AuditError> {
    let mut keyed = Vec::with_capacity(paths.len());
    for (i, p) in paths.iter().enumerate() {
        keyed.push((first_seq(p)?.unwrap_or(u64::MAX), i, p.clone()));
    }
    keyed.sort();
    Ok(keyed.into_iter().map(|(_, _, p)| p).collect())
}

fn first_seq(path: &Path) -> Result<Option<u64>, AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut first = Vec::new();
    BufReader::new(file)
        .read_until(b'\n', &mut first)
        .map_err(|source| AuditError::Io {
            path: path.to_owned(),
            source,
        })?;
    let line = first.strip_suffix(b"\n").unwrap_or(&first);
    Ok(chain::open(line).ok().map(|s| s.seq))
}

/// One raw line.
pub(crate) struct RawLine {
    pub(crate) file: Arc<PathBuf>,
    pub(crate) line: u64,
    /// Without its newline.
    pub(crate) bytes: Vec<u8>,
    /// False for a last line without a newline (a torn write).
    pub(crate) terminated: bool,
}

/// The lines of several files, one after the other.
pub(crate) struct LogLines {
    files: std::vec::IntoIter<PathBuf>,
    current: Option<(Arc<PathBuf>, BufReader<File>, u64)>,
}

impl LogLines {
    pub(crate) fn new(files: Vec<PathBuf>) -> Self {
        Self {
            files: files.into_iter(),
            current: None,
        }
    }
}

impl Iterator for LogLines {
    type Item = Result<RawLine, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.current.is_none() {
                let path = self.files.next()?;
                match File::open(&path) {
                    Ok(f) => self.current = Some((Arc::new(path), BufReader::new(f), 0)),
                    Err(source) => return Some(Err(AuditError::Io { path, source })),
                }
            }
            let (path, reader, line_no) = self.current.as_mut()?;
            let mut bytes = Vec::new();
            match reader.read_until(b'\n', &mut bytes) {
                Ok(0) => self.current = None,
                Ok(_) => {
                    *line_no += 1;
                    let terminated = bytes.last() == Some(&b'\n');
                    if terminated {
                        bytes.pop();
                    }
                    return Some(Ok(RawLine {
                        file: path.clone(),
                        line: *line_no,
                        bytes,
                        terminated,
                    }));
                }
                Err(source) => {
                    let path = path.as_ref().clone();
                    self.current = None;
                    return Some(Err(AuditError::Io { path, source }));
                }
            }
        }
    }
}
