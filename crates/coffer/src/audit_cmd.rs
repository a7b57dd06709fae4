//! `coffer audit verify|search`: offline tools over audit files, for an auditor who has the
//! files but not necessarily the server.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use coffer_core::coffer_audit::{Filter, Outcome, ResourceMatch, VerifyOptions, search, verify_files};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::AuditCommand;

pub fn run(cmd: AuditCommand) -> anyhow::Result<u8> {
    match cmd {
        AuditCommand::Verify { files } => verify(&files),
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

fn verify(files: &[PathBuf]) -> anyhow::Result<u8> {
    let files = expand(files)?;
    let report = verify_files(&files, &VerifyOptions::default())?;
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
        Ok(0)
    } else {
        println!("FAILED: {} problem(s) in {} lines", report.problems.len(), report.lines);
        Ok(1)
    }
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
