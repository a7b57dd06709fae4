//! Invoking the `http` and `command` kinds of rotation function with one step's event.
//!
//! * **http**: `POST` of the event JSON with `Content-Type: application/json`,
//!   `X-Coffer-Timestamp` (Unix seconds) and `X-Coffer-Signature: v1=<hex>`, the
//!   HMAC-SHA256 of `"<timestamp>.<body>"` under the function's signing key. The receiver
//!   recomputes it and rejects stale timestamps. Any 2xx answer is success.
//! * **command**: the program runs with the event JSON on stdin and, in its environment,
//!   `SECRETS_MANAGER_ENDPOINT` (and `AWS_ENDPOINT_URL`) pointing at this server plus
//!   short-lived credentials scoped to the one secret (`AWS_ACCESS_KEY_ID`,
//!   `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`): a function written for
//!   AWS (`boto3.client('secretsmanager', endpoint_url=os.environ['SECRETS_MANAGER_ENDPOINT'])`)
//!   runs unchanged. Exit status 0 is success. The server's own `AWS_*` variables are not
//!   passed on.
//!
//! Failure messages never include what the function printed on stdout; from stderr only the
//! last line is kept (for the operator's rotation status, never for logs or the audit log).

use std::process::Stdio;
use std::time::Duration;

use coffer_crypto::SecretBytes;
use tokio::io::AsyncWriteExt;

/// The longest stderr line kept for the operator.
const MAX_STDERR_LINE: usize = 300;

/// The headers of a signed HTTP invocation: `(timestamp, signature)`.
pub(crate) fn sign(key: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut msg = Vec::with_capacity(body.len() + 24);
    msg.extend_from_slice(timestamp.to_string().as_bytes());
    msg.push(b'.');
    msg.extend_from_slice(body);
    format!("v1={}", hex::encode(coffer_crypto::hash::hmac_sha256(key, &msg)))
}

/// POSTs `body` to `url`, signed; `Ok` on 2xx.
pub(crate) async fn http(
    client: &reqwest::Client,
    url: &str,
    key: &SecretBytes,
    timeout: Duration,
    timestamp: i64,
    body: Vec<u8>,
) -> Result<(), String> {
    let signature = sign(key.expose(), timestamp, &body);
    let response = client
        .post(url)
        .timeout(timeout)
        .header("content-type", "application/json")
        .header("x-coffer-timestamp", timestamp.to_string())
        .header("x-coffer-signature", signature)
        .body(body)
        .send()
        .await
        .map_err(|e| {
            if e.is_timeout() {
                format!("{url} did not answer within {}s", timeout.as_secs())
            } else {
                format!("could not reach {url}: {}", e.without_url())
            }
        })?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{url} answered {status}"))
    }
}

/// What a command function is run with.
pub(crate) struct CommandRun<'a> {
    pub path: &'a str,
    pub args: &'a [String],
    pub timeout: Duration,
    /// Variables to set (the credentials among them).
    pub env: Vec<(&'static str, String)>,
    pub stdin: Vec<u8>,
}

/// Runs a command function; `Ok` on exit status 0. Killed at the timeout.
pub(crate) async fn command(run: CommandRun<'_>) -> Result<(), String> {
    let mut cmd = tokio::process::Command::new(run.path);
    cmd.args(run.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, _) in std::env::vars_os() {
        if k.to_str().is_some_and(|k| k.starts_with("AWS_")) {
            cmd.env_remove(k);
        }
    }
    for (k, v) in &run.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| format!("could not start {}: {e}", run.path))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A program that does not read its input is fine: ignore a broken pipe.
        let _ = stdin.write_all(&run.stdin).await;
        drop(stdin);
    }
    let output = match tokio::time::timeout(run.timeout, child.wait_with_output()).await {
        Ok(r) => r.map_err(|e| format!("{} failed: {e}", run.path))?,
        Err(_) => return Err(format!("{} did not finish within {}s", run.path, run.timeout.as_secs())),
    };
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let last = stderr.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let last: String = last.chars().take(MAX_STDERR_LINE).collect();
    let status = match output.status.code() {
        Some(c) => format!("exit status {c}"),
        None => "killed by a signal".to_string(),
    };
    Err(if last.is_empty() {
        format!("{} ended with {status}", run.path)
    } else {
        format!("{} ended with {status}: {last}", run.path)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn signature_covers_timestamp_and_body() {
        let a = sign(b"key", 100, b"{}");
        assert!(a.starts_with("v1=") && a.len() == 3 + 64);
        assert_ne!(a, sign(b"key", 101, b"{}"));
        assert_ne!(a, sign(b"key", 100, b"{ }"));
        assert_ne!(a, sign(b"other", 100, b"{}"));
    }

    #[tokio::test]
    async fn command_failure_keeps_only_the_last_stderr_line() {
        let run = CommandRun {
            path: "sh",
            args: &[
                "-c".into(),
                "cat >/dev/null; echo first >&2; echo 'last line' >&2; exit 3".into(),
            ],
            timeout: Duration::from_secs(10),
            env: vec![],
            stdin: b"{}".to_vec(),
        };
        let err = command(run).await.unwrap_err();
        assert_eq!(err, "sh ended with exit status 3: last line");
    }

    #[tokio::test]
    async fn command_times_out() {
        let run = CommandRun {
            path: "sleep",
            args: &["5".into()],
            timeout: Duration::from_millis(200),
            env: vec![],
            stdin: Vec::new(),
        };
        assert!(command(run).await.unwrap_err().contains("did not finish"));
    }
}
