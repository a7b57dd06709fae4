//! Test support: start the real `coffer` binary and read what it prints.
//!
//! Integration tests use [`CofferProcess::start_dev`] to run `coffer server --dev` on a free
//! port and get the endpoint and root credentials it printed, or [`CofferProcess::start`]
//! for any other command line. stdout and stderr are captured in files so tests can assert on
//! what the server logged (for example, that no secret value appears in any log line).

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The credentials and endpoint a dev server printed.
#[derive(Clone, Debug)]
pub struct DevCredentials {
    pub endpoint: String,
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub root_token: String,
    pub unseal_key: String,
}

/// A running `coffer` process, killed when dropped.
pub struct CofferProcess {
    child: Child,
    dir: tempfile::TempDir,
    lines: mpsc::Receiver<String>,
    stdout_seen: Vec<String>,
}

impl CofferProcess {
    /// Starts `bin` with `args`, capturing stderr (the log) in a file and stdout line by line.
    pub fn start(bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = std::fs::File::create(dir.path().join("stderr.log"))?;
        let mut cmd = Command::new(bin);
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(log);
        cmd.env("COFFER_LOG", "debug");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel();
        let out_path = dir.path().join("stdout.log");
        std::thread::spawn(move || {
            let mut copy = std::fs::File::create(out_path).ok();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(f) = copy.as_mut() {
                    use std::io::Write as _;
                    let _ = writeln!(f, "{line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Self {
            child,
            dir,
            lines: rx,
            stdout_seen: Vec::new(),
        })
    }

    /// Starts `coffer server --dev --listen 127.0.0.1:0 <extra>` and waits for its banner.
    pub fn start_dev(bin: &Path, extra: &[&str]) -> anyhow::Result<(Self, DevCredentials)> {
        let mut args = vec!["server", "--dev", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut p = Self::start(bin, &args, &[])?;
        let creds = p.read_dev_banner(Duration::from_secs(20))?;
        Ok((p, creds))
    }

    /// Waits for a stdout line containing `needle` and returns it.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> anyhow::Result<String> {
        if let Some(l) = self.stdout_seen.iter().find(|l| l.contains(needle)) {
            return Ok(l.clone());
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("timed out waiting for {needle:?}; stderr:\n{}", self.stderr());
            }
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout_seen.push(line.clone());
                    if line.contains(needle) {
                        return Ok(line);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("coffer exited before printing {needle:?}; stderr:\n{}", self.stderr());
                }
            }
        }
    }

    fn field(&mut self, label: &str, timeout: Duration) -> anyhow::Result<String> {
        let line = self.wait_for_line(label, timeout)?;
        Ok(line
            .split_once(label)
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default())
    }

    fn read_dev_banner(&mut self, timeout: Duration) -> anyhow::Result<DevCredentials> {
        // The banner ends with the example commands: wait for them so the whole banner is in.
        self.wait_for_line("get-secret-value --secret-id", timeout)?;
        Ok(DevCredentials {
            endpoint: self.field("Endpoint:", timeout)?,
            account_id: self.field("Account id:", timeout)?,
            access_key_id: self.field("Root access key id:", timeout)?,
            secret_access_key: self.field("Root secret key:", timeout)?,
            root_token: self.field("Root token:", timeout)?,
            unseal_key: self.field("Unseal key:", timeout)?,
        })
    }

    /// Everything the process wrote to stderr (its log) so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    /// Everything the process wrote to stdout so far.
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// A scratch directory that lives as long as this process handle.
    pub fn scratch_dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Kills the process with SIGKILL and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `timeout` for a clean exit; returns whether it exited.
    pub fn terminate(&mut self, timeout: Duration) -> bool {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for CofferProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `bin args` to completion and returns (exit code, stdout, stderr).
pub fn run(bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> anyhow::Result<(i32, String, String)> {
    let mut cmd = Command::new(bin);
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// A free TCP port on 127.0.0.1 (racy by nature; good enough for tests that need a fixed port
/// across a restart).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
