//! `coffer operator snapshot save|restore`: backups over `/v1/sys/storage/raft/snapshot`.
//!
//! Both ends check the snapshot: `save` decodes what it receives as it writes it and keeps
//! the file only if the whole snapshot arrived with a matching checksum (written to
//! `FILE.partial`, mode 0600, fsynced, then renamed); `restore` checks the file before it
//! sends it, and the server checks it again before it commits anything.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use coffer_storage::snapshot::{Decoder, Summary};
use serde_json::Value;

use crate::cli::{ClientArgs, SnapshotCommand};
use crate::operator::{Client, json_answer};

const SNAPSHOT_PATH: &str = "sys/storage/raft/snapshot";
const SNAPSHOT_FORCE_PATH: &str = "sys/storage/raft/snapshot-force";

pub async fn run(cmd: SnapshotCommand) -> anyhow::Result<u8> {
    match cmd {
        SnapshotCommand::Save { client, file } => save(&client, &file).await,
        SnapshotCommand::Restore { client, file, force } => restore(&client, &file, force).await,
    }
}

async fn save(args: &ClientArgs, file: &Path) -> anyhow::Result<u8> {
    let c = Client::new(args)?;
    c.required_token()?;
    let url = c.url(SNAPSHOT_PATH);
    let mut resp = c
        .request(reqwest::Method::GET, SNAPSHOT_PATH)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !resp.status().is_success() {
        json_answer(&url, resp).await?;
        bail!("{url}: the server refused the snapshot");
    }
    let partial = partial_path(file);
    let mut out = create_private(&partial)?;
    let received = async {
        let mut decoder = Decoder::new();
        let mut entries = Vec::new();
        while let Some(chunk) = resp.chunk().await.context("the snapshot stream broke off")? {
            decoder.push(&chunk, &mut entries)?;
            entries.clear();
            out.write_all(&chunk)
                .with_context(|| format!("writing {}", partial.display()))?;
        }
        let summary = decoder.finish()?;
        out.sync_all()
            .with_context(|| format!("syncing {}", partial.display()))?;
        anyhow::Ok(summary)
    }
    .await;
    let summary = match received {
        Ok(s) => s,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e.context("no snapshot was saved"));
        }
    };
    std::fs::rename(&partial, file).with_context(|| format!("renaming {} to {}", partial.display(), file.display()))?;
    sync_parent(file);
    println!(
        "Saved a snapshot to {}: {} entries, {} bytes, SHA-256 {}.",
        file.display(),
        summary.header.entries,
        summary.bytes,
        summary.checksum_hex()
    );
    println!("It is encrypted: restoring it needs this server's unseal keys.");
    Ok(0)
}

async fn restore(args: &ClientArgs, file: &Path, force: bool) -> anyhow::Result<u8> {
    let summary = check_file(file)?;
    let c = Client::new(args)?;
    let path = if force { SNAPSHOT_FORCE_PATH } else { SNAPSHOT_PATH };
    let url = c.url(path);
    let body = tokio::fs::File::open(file)
        .await
        .with_context(|| format!("opening {}", file.display()))?;
    let resp = c
        .request(reqwest::Method::POST, path)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(reqwest::Body::from(body))
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let answer = json_answer(&url, resp).await?;
    let data = answer.get("data").cloned().unwrap_or(Value::Null);
    let entries = data.get("entries").and_then(Value::as_u64).unwrap_or(0);
    println!(
        "Restored {entries} entries from {} (SHA-256 {}, taken {} by Coffer {}).",
        file.display(),
        summary.checksum_hex(),
        rfc3339(summary.header.created_unix),
        summary.header.coffer_version
    );
    println!(
        "Coffer is sealed: unseal it with `coffer operator unseal`, using the unseal keys of the server the \
         snapshot was taken from."
    );
    Ok(0)
}

/// Reads the whole file through the decoder: its summary if it is one valid snapshot.
fn check_file(file: &Path) -> anyhow::Result<Summary> {
    let mut f = std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let mut decoder = Decoder::new();
    let mut entries = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", file.display()))?;
        if n == 0 {
            break;
        }
        decoder
            .push(&buf[..n], &mut entries)
            .with_context(|| format!("{} is not a valid snapshot", file.display()))?;
        entries.clear();
    }
    decoder
        .finish()
        .with_context(|| format!("{} is not a valid snapshot", file.display()))
}

fn partial_path(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

/// Creates (or truncates) `path` readable and writable by its owner only.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    // A file that existed keeps its mode through `open`: set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    Ok(f)
}

/// Makes the rename durable; a directory that cannot be synced is not an error.
fn sync_parent(file: &Path) {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}
