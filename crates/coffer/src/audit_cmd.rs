//! `coffer audit verify|search`: offline tools over audit files, for an auditor who has the
//! files but not necessarily the server.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use coffer_core::coffer_audit::{ChainHead, Filter, Outcome, ResourceMatch, VerifyOptions, search, verify_files};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::{AuditCommand, ClientArgs};
use crate::operator::Client;

pub async fn run(cmd: AuditCommand) -> anyhow::Result<u8> {
    match cmd {
        AuditCommand::Verify {
            files,
            expect_seq,
            expect_hash,
            server,
            device,
            client,
        } => {
            let expected = match (expect_seq, expect_hash, server) {
                (Some(seq), Some(hash), _) => Some(ChainHead {
                    seq,
                    hash: parse_hash(&hash)?,
                }),
                (_, _, true) => Some(server_head(&client, device.as_deref()).await?),
                _ => None,
            };
            verify(&files, expected)
        }
        AuditCommand::Head { client } => {
            for (name, seq, hash) in server_heads(&client).await? {
                println!("{name}\tseq {seq}\thash {hash}");
            }
            Ok(0)
        }
        AuditCommand::Search {
            files,
            identity,
            event,
            resource,
            since,
            until,
            outcome,
        } => {
            let filter = Filter {
                identity,
                event_name: event,
                resource: resource.map(ResourceMatch::Contains),
                since: since.as_deref().map(parse_time).transpose()?,
                until: until.as_deref().map(parse_time).transpose()?,
                outcome: outcome.as_deref().map(parse_outcome).transpose()?,
                ..Filter::default()
            };
            let files = expand(&files)?;
            for event in search(&files, &filter)? {
                match event {
                    Ok(e) => println!("{}", e.json),
                    Err(e) => eprintln!("skipped: {e}"),
                }
            }
            Ok(0)
        }
    }
}

fn verify(files: &[PathBuf], expected_head: Option<ChainHead>) -> anyhow::Result<u8> {
    let files = expand(files)?;
    let options = VerifyOptions {
        expected_head,
        ..VerifyOptions::default()
    };
    let report = verify_files(&files, &options)?;
    for p in &report.problems {
        println!("{p}");
    }
    if report.is_ok() {
        let seq = report.head.map(|h| h.seq).unwrap_or(0);
        println!(
            "OK: {} lines in {} file(s); the chain is intact up to seq {seq}",
            report.lines,
            report.files.len()
        );
        match expected_head {
            Some(h) => println!("The log reaches the head the server recorded (seq {}).", h.seq),
            None => println!(
                "Not checked: lines cut from the end of the newest file leave a shorter chain that is \
                 still intact. Pass --server (or --expect-seq/--expect-hash from `coffer audit head`) \
                 to compare with the head the server recorded."
            ),
        }
        Ok(0)
    } else {
        println!("FAILED: {} problem(s) in {} lines", report.problems.len(), report.lines);
        Ok(1)
    }
}

fn parse_hash(hex_text: &str) -> anyhow::Result<[u8; 32]> {
    let mut hash = [0u8; 32];
    hex::decode_to_slice(hex_text.trim(), &mut hash)
        .map_err(|_| anyhow::anyhow!("--expect-hash must be 64 hex digits"))?;
    Ok(hash)
}

/// Every file device's `(name, seq, hash)` from `GET /v1/sys/coffer/audit-heads`.
async fn server_heads(client: &ClientArgs) -> anyhow::Result<Vec<(String, u64, String)>> {
    let c = Client::new(client)?;
    let r = c
        .send(reqwest::Method::GET, "sys/coffer/audit-heads", None, true)
        .await?;
    let devices = r
        .pointer("/data/devices")
        .and_then(Value::as_object)
        .context("the server's answer has no data.devices")?;
    Ok(devices
        .iter()
        .map(|(name, h)| {
            let seq = h.get("seq").and_then(Value::as_u64).unwrap_or(0);
            let hash = h.get("hash").and_then(Value::as_str).unwrap_or("").to_owned();
            (name.clone(), seq, hash)
        })
        .collect())
}

async fn server_head(client: &ClientArgs, device: Option<&str>) -> anyhow::Result<ChainHead> {
    let heads = server_heads(client).await?;
    let (name, seq, hash) = match device {
        Some(d) => heads
            .into_iter()
            .find(|(n, _, _)| n == d)
            .with_context(|| format!("the server has no file audit device named {d:?}"))?,
        None => {
            let mut heads = heads.into_iter();
            match (heads.next(), heads.next()) {
                (Some(h), None) => h,
                (None, _) => bail!("the server has no file audit device"),
                (Some(_), Some(_)) => bail!("the server has several file audit devices: name one with --device"),
            }
        }
    };
    let head = ChainHead {
        seq,
        hash: parse_hash(&hash).with_context(|| format!("device {name}"))?,
    };
    Ok(head)
}

/// Each given file plus its rotated siblings (`audit.log.000001`, ...), oldest first, so that
/// naming the active file checks the whole chain.
fn expand(files: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for f in files {
        let mut rotated = rotated_siblings(f)?;
        rotated.sort();
        for r in rotated {
            if !out.contains(&r) {
                out.push(r);
            }
        }
        if !f.exists() {
            bail!("{}: no such file", f.display());
        }
        if !out.contains(f) {
            out.push(f.clone());
        }
    }
    Ok(out)
}

fn rotated_siblings(active: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let Some(name) = active.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let dir = match active.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!("{name}.");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(n) = file_name.to_str() else { continue };
        if let Some(suffix) = n.strip_prefix(&prefix)
            && !suffix.is_empty()
            && suffix.bytes().all(|b| b.is_ascii_digit())
        {
            out.push(dir.join(n));
        }
    }
    Ok(out)
}

fn parse_time(s: &str) -> anyhow::Result<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).with_context(|| format!("{s:?} is not an RFC 3339 time"))
}

fn parse_outcome(s: &str) -> anyhow::Result<Outcome> {
    match s {
        "allowed" => Ok(Outcome::Allowed),
        "denied" => Ok(Outcome::Denied),
        "failed" => Ok(Outcome::Failed),
        other => bail!("--outcome must be allowed, denied or failed, not {other:?}"),
    }
}
