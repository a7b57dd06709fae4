//! Audit devices: where sealed lines go.
//!
//! A device receives finished lines (redacted, chained, newline-terminated), one or more at a
//! time, in chain order: the broker's group commit hands it every line that queued up while
//! the previous batch was being written, and the device writes them with one `write` call
//! (split only where the file rotates). Devices are synchronous; the broker's writer task calls
//! them, and each request waits for its line's "recorded" or "not recorded" (fail closed).
//! There is no fsync per batch; [`AuditDevice::sync`] exists for shutdown and rotation.
//!
//! - [`FileDevice`]: appends to one file (mode 0600), rotates by size to `<name>.000001`,
//!   `<name>.000002`, ... (the numbers only grow, so names sort in chain order), always between
//!   two lines. The chain is the broker's, not the file's, so the first line of a new file
//!   chains to the last line of the old one. At open, a torn last line (a crash mid-write: no
//!   newline) is cut off.
//! - [`StdoutDevice`]: one line per event on standard output.
//! - [`MemoryDevice`], [`FailingDevice`]: for tests (the server's too).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;

use crate::AuditError;

/// Where audit lines are written. Implementations must be cheap and thread-safe; the broker
/// calls [`AuditDevice::write`] under the device's chain lock, one batch at a time.
pub trait AuditDevice: Send + Sync {
    /// The device's name (its mount path, e.g. `file/`), used in errors.
    fn name(&self) -> &str;

    /// Writes `lines`: one or more complete lines (each ends in `\n`), in order. On error the
    /// [`WriteFailure`] says how many leading lines were written all the same (they are part of
    /// the chain); nothing of the others may remain (or, failing that, the next successful write
    /// must still start on a new line). `?` on an [`AuditError`] means "none written".
    fn write(&self, lines: &[u8]) -> Result<(), WriteFailure>;

    /// The last complete line the device holds, to continue its chain after a restart. Devices
    /// that cannot read back (stdout) return `None` and start a new chain.
    fn last_line(&self) -> Result<Option<Vec<u8>>, AuditError> {
        Ok(None)
    }

    /// Whether the device can prove its log continues the one the server saw: it reads its
    /// own lines back ([`AuditDevice::last_line`]), so a log cut short is detectable. A device
    /// that cannot (stdout, a pipe, a socket) starts a new chain at every start, and comparing
    /// it with a stored head would only ever find it "behind".
    fn proves_continuity(&self) -> bool {
        false
    }

    /// Makes written lines durable (fsync). Not called per line.
    fn sync(&self) -> Result<(), AuditError> {
        Ok(())
    }
}

/// A [`AuditDevice::write`] that did not write every line.
#[derive(Debug)]
pub struct WriteFailure {
    /// How many leading lines of the batch were written (and so are on the device).
    pub written: usize,
    /// Why the next line was not.
    pub error: AuditError,
}

impl From<AuditError> for WriteFailure {
    fn from(error: AuditError) -> Self {
        Self { written: 0, error }
    }
}

/// A file with size-based rotation.
pub struct FileDevice {
    name: String,
    path: PathBuf,
    max_bytes: u64,
    state: Mutex<FileState>,
}

struct FileState {
    file: Option<File>,
    len: u64,
    next_index: u64,
}

impl FileDevice {
    /// Opens (creating if needed) `path` for appending. `max_bytes` is the size after which the
    /// next line goes to a new file (`0` never rotates). A torn last line is removed.
    pub fn open(name: impl Into<String>, path: impl Into<PathBuf>, max_bytes: u64) -> Result<Self, AuditError> {
        let name = name.into();
        let path = path.into();
        let file = open_append(&path).map_err(|e| io_err(&path, e))?;
        let len = cut_torn_tail(&file).map_err(|e| io_err(&path, e))?;
        let next_index = rotated_files(&path)?.last().map_or(1, |(i, _)| i + 1);
        Ok(Self {
            name,
            path,
            max_bytes,
            state: Mutex::new(FileState {
                file: Some(file),
                len,
                next_index,
            }),
        })
    }

    /// A device for `path` whose file could not be opened (a missing directory, a full disk,
    /// a permission): every write tries to open it again, so the device recovers once the
    /// cause is fixed, and fails (the request fails closed) until then. The server uses this
    /// rather than refusing to unseal.
    pub fn unopened(name: impl Into<String>, path: impl Into<PathBuf>, max_bytes: u64) -> Self {
        let path = path.into();
        let next_index = rotated_files(&path)
            .ok()
            .and_then(|f| f.last().map(|(i, _)| i + 1))
            .unwrap_or(1);
        Self {
            name: name.into(),
            path,
            max_bytes,
            state: Mutex::new(FileState {
                file: None,
                len: 0,
                next_index,
            }),
        }
    }

    /// The active file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every file of this device, oldest first (the rotated files, then the active one): the
    /// argument `coffer audit verify` needs.
    pub fn files(&self) -> Result<Vec<PathBuf>, AuditError> {
        let mut files: Vec<PathBuf> = rotated_files(&self.path)?.into_iter().map(|(_, p)| p).collect();
        files.push(self.path.clone());
        Ok(files)
    }

    fn rotate(&self, state: &mut FileState) -> Result<(), AuditError> {
        if let Some(file) = state.file.take() {
            // Best effort: the rotated file is complete on disk before the new one starts.
            let _ = file.sync_data();
        }
        let rotated = rotated_name(&self.path, state.next_index);
        std::fs::rename(&self.path, &rotated).map_err(|e| self.err("rotate", e))?;
        state.next_index += 1;
        state.len = 0;
        state.file = Some(open_append(&self.path).map_err(|e| self.err("open", e))?);
        Ok(())
    }

    /// Appends whole lines to the active file with one `write` call, reopening the file if a
    /// rotation could not. On error nothing of `chunk` remains.
    fn append(&self, state: &mut FileState, chunk: &[u8]) -> Result<(), AuditError> {
        if state.file.is_none() {
            // A previous rotation renamed the file but could not open the new one.
            self.reopen(state)?;
        }
        let Some(file) = state.file.as_mut() else {
            return Err(AuditError::Device {
                device: self.name.clone(),
                message: "no open file".to_owned(),
            });
        };
        match file.write_all(chunk) {
            Ok(()) => {
                state.len += chunk.len() as u64;
                Ok(())
            }
            Err(e) => {
                // Remove partial lines so the file stays one record per line.
                let _ = file.set_len(state.len);
                Err(self.err("write", e))
            }
        }
    }

    /// Opens the active file again (after it could not be opened at start or after a
    /// rotation), cutting a torn last line as [`FileDevice::open`] does.
    fn reopen(&self, state: &mut FileState) -> Result<(), AuditError> {
        let file = open_append(&self.path).map_err(|e| self.err("open", e))?;
        state.len = cut_torn_tail(&file).map_err(|e| self.err("open", e))?;
        state.file = Some(file);
        Ok(())
    }

    fn err(&self, what: &str, e: std::io::Error) -> AuditError {
        AuditError::Device {
            device: self.name.clone(),
            message: format!("{what} {}: {e}", self.path.display()),
        }
    }
}

impl AuditDevice for FileDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&self, lines: &[u8]) -> Result<(), WriteFailure> {
        let mut state = self.state.lock();
        let state = &mut *state;
        if state.file.is_none() {
            self.reopen(state)?;
        }
        let mut done = 0;
        while done < lines.len() {
            let rest = &lines[done..];
            // The whole lines that still fit in the active file; when not even one does, rotate
            // (unless the file is empty: a line longer than `max_bytes` gets a file of its own).
            let room = match self.max_bytes {
                0 => u64::MAX,
                max => max.saturating_sub(state.len),
            };
            let mut take = fitting_lines(rest, room);
            if take == 0 {
                if state.len > 0 {
                    self.rotate(state).map_err(|error| failure(lines, done, error))?;
                    continue;
                }
                take = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
            }
            self.append(state, &rest[..take])
                .map_err(|error| failure(lines, done, error))?;
            done += take;
        }
        Ok(())
    }

    fn last_line(&self) -> Result<Option<Vec<u8>>, AuditError> {
        let _state = self.state.lock();
        if let Some(line) = last_line_of(&self.path)? {
            return Ok(Some(line));
        }
        // The active file is empty (just rotated): the newest rotated file holds the head.
        for (_, p) in rotated_files(&self.path)?.into_iter().rev() {
            if let Some(line) = last_line_of(&p)? {
                return Ok(Some(line));
            }
        }
        Ok(None)
    }

    fn proves_continuity(&self) -> bool {
        true
    }

    fn sync(&self) -> Result<(), AuditError> {
        let state = self.state.lock();
        match &state.file {
            Some(f) => f.sync_data().map_err(|e| self.err("sync", e)),
            None => Ok(()),
        }
    }
}

/// Standard output, one line per event.
pub struct StdoutDevice {
    name: String,
}

impl StdoutDevice {
    /// A stdout device called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl AuditDevice for StdoutDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&self, lines: &[u8]) -> Result<(), WriteFailure> {
        let mut out = std::io::stdout().lock();
        out.write_all(lines)
            .and_then(|()| out.flush())
            .map_err(|e| AuditError::Device {
                device: self.name.clone(),
                message: format!("write stdout: {e}"),
            })?;
        Ok(())
    }
}

/// Keeps lines in memory; can be switched to failing. For tests.
#[derive(Default)]
pub struct MemoryDevice {
    name: String,
    lines: Mutex<Vec<Vec<u8>>>,
    failing: std::sync::atomic::AtomicBool,
    batches: std::sync::atomic::AtomicUsize,
}

impl MemoryDevice {
    /// An empty device called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }

    /// Every line written so far.
    pub fn lines(&self) -> Vec<Vec<u8>> {
        self.lines.lock().clone()
    }

    /// All lines as one byte string, as a file would hold them.
    pub fn contents(&self) -> Vec<u8> {
        self.lines.lock().concat()
    }

    /// Makes later writes fail (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many successful [`AuditDevice::write`] calls there were (each writes a batch of
    /// one or more lines).
    pub fn batches(&self) -> usize {
        self.batches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl AuditDevice for MemoryDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&self, lines: &[u8]) -> Result<(), WriteFailure> {
        if self.failing.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(AuditError::Device {
                device: self.name.clone(),
                message: "device failing".to_owned(),
            }
            .into());
        }
        let mut kept = self.lines.lock();
        kept.extend(lines.split_inclusive(|&b| b == b'\n').map(<[u8]>::to_vec));
        self.batches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn proves_continuity(&self) -> bool {
        true
    }

    fn last_line(&self) -> Result<Option<Vec<u8>>, AuditError> {
        Ok(self
            .lines
            .lock()
            .last()
            .map(|l| l.strip_suffix(b"\n").unwrap_or(l).to_vec()))
    }
}

/// A device whose every write fails, like a file device on a full disk. For tests.
pub struct FailingDevice {
    name: String,
}

impl FailingDevice {
    /// A failing device called `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into() }
    }
}

impl AuditDevice for FailingDevice {
    fn name(&self) -> &str {
        &self.name
    }

    fn write(&self, _lines: &[u8]) -> Result<(), WriteFailure> {
        Err(AuditError::Device {
            device: self.name.clone(),
            message: "no space left on device".to_owned(),
        }
        .into())
    }
}

/// The length of the longest run of whole lines at the start of `lines` that is at most `room`
/// bytes long (0 when not even the first line fits).
fn fitting_lines(lines: &[u8], room: u64) -> usize {
    if lines.len() as u64 <= room {
        return lines.len();
    }
    // `room` < `lines.len()` here, so it fits in a usize.
    let window = &lines[..usize::try_from(room).unwrap_or(lines.len())];
    window.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1)
}

/// The failure of a batch after its first `done` bytes (all whole lines) were written.
fn failure(lines: &[u8], done: usize, error: AuditError) -> WriteFailure {
    WriteFailure {
        written: lines[..done].iter().filter(|&&b| b == b'\n').count(),
        error,
    }
}

fn io_err(path: &Path, source: std::io::Error) -> AuditError {
    AuditError::Io {
        path: path.to_owned(),
        source,
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut o = OpenOptions::new();
    o.create(true).append(true).read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    o.open(path)
}

/// `audit.log` → `audit.log.000007`.
fn rotated_name(path: &Path, index: u64) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{index:06}"));
    path.with_file_name(name)
}

/// The rotated files of `path`, by index.
pub(crate) fn rotated_files(path: &Path) -> Result<Vec<(u64, PathBuf)>, AuditError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    let Some(base) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let entries = std::fs::read_dir(&dir).map_err(|e| io_err(&dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(&dir, e))?;
        let name = entry.file_name();
        let Some(suffix) = name
            .to_str()
            .and_then(|n| n.strip_prefix(base))
            .and_then(|s| s.strip_prefix('.'))
        else {
            continue;
        };
        if !suffix.is_empty()
            && suffix.bytes().all(|b| b.is_ascii_digit())
            && let Ok(i) = suffix.parse::<u64>()
        {
            out.push((i, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Cuts bytes after the last newline (a line torn by a crash) and returns the new length.
fn cut_torn_tail(file: &File) -> std::io::Result<u64> {
    let len = file.metadata()?.len();
    let keep = match last_newline(file, len)? {
        Some(pos) => pos + 1,
        None => 0,
    };
    if keep < len {
        file.set_len(keep)?;
    }
    Ok(keep)
}

/// The offset of the last `\n` in the first `len` bytes of `file`.
fn last_newline(mut file: &File, len: u64) -> std::io::Result<Option<u64>> {
    let mut end = len;
    let mut buf = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(Some(start + i as u64));
        }
        end = start;
    }
    Ok(None)
}

/// The last complete line of the file at `path` (without its newline), if any.
pub(crate) fn last_line_of(path: &Path) -> Result<Option<Vec<u8>>, AuditError> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    let len = file.metadata().map_err(|e| io_err(path, e))?.len();
    let Some(end) = last_newline(&file, len).map_err(|e| io_err(path, e))? else {
        return Ok(None);
    };
    let start = last_newline(&file, end)
        .map_err(|e| io_err(path, e))?
        .map_or(0, |p| p + 1);
    let mut line = vec![0u8; (end - start) as usize];
    file.seek(SeekFrom::Start(start)).map_err(|e| io_err(path, e))?;
    file.read_exact(&mut line).map_err(|e| io_err(path, e))?;
    Ok(Some(line))
}
