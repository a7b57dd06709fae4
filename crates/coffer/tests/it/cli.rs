//! The `coffer` CLI for operators and scripts: shell completions, `coffer secrets get`, the
//! Vault environment variables, the JSON log format, and a clear word when a server presents
//! its CA certificate as its own.

use std::time::Duration;

use aws_sdk_secretsmanager::primitives::Blob;

use crate::production::Prod;
use crate::support::*;

#[test]
fn completions_are_valid_scripts_for_each_shell() {
    let (code, out, err) = coffer_testkit::run(bin(), &["completions", "bash"], &[]).unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("complete -F") && out.contains("coffer"), "{out}");
    // bash itself parses it.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("coffer.bash");
    std::fs::write(&script, &out).unwrap();
    let status = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(status.success());
    for (shell, marker) in [("zsh", "#compdef coffer"), ("fish", "complete -c coffer")] {
        let (code, out, err) = coffer_testkit::run(bin(), &["completions", shell], &[]).unwrap();
        assert_eq!(code, 0, "{err}");
        assert!(out.contains(marker), "{shell}: {out}");
        // Subcommands are in it.
        assert!(out.contains("operator"), "{shell}");
    }
    let (code, _, _) = coffer_testkit::run(bin(), &["completions", "tcsh"], &[]).unwrap();
    assert_ne!(code, 0);
}

#[tokio::test]
async fn secrets_get_prints_the_value_for_scripts() {
    let (_p, c) = start_dev(&[]);
    let sm = dev_client(&c);
    sm.create_secret()
        .name("cli/db")
        .secret_string(r#"{"username":"app","password":"p@ss word\n","port":5432}"#)
        .send()
        .await
        .unwrap();
    sm.create_secret()
        .name("cli/blob")
        .secret_binary(Blob::new(vec![0u8, 159, 146, 150, 10]))
        .send()
        .await
        .unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", c.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", c.access_key_id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", c.secret_access_key.as_str()),
        ("AWS_REGION", "us-east-1"),
    ];
    let get = |args: &[&str]| {
        let mut all = vec!["secrets", "get"];
        all.extend_from_slice(args);
        let out = std::process::Command::new(bin())
            .args(&all)
            .envs(env)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        (
            out.status.code().unwrap(),
            out.stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Exactly the stored bytes: no newline added when stdout is not a terminal.
    let (code, out, err) = get(&["cli/db"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        br#"{"username":"app","password":"p@ss word\n","port":5432}"#.to_vec()
    );
    let (code, out, _) = get(&["cli/db", "--json-key", "password"]);
    assert_eq!(code, 0);
    assert_eq!(out, b"p@ss word\n".to_vec());
    let (code, out, _) = get(&["cli/db", "--json-key", "port"]);
    assert_eq!(code, 0);
    assert_eq!(out, b"5432".to_vec());
    let (code, out, err) = get(&["cli/db", "--json-key", "nope"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("no key \"nope\""), "{err}");
    let (code, out, _) = get(&["cli/blob"]);
    assert_eq!(code, 0);
    assert_eq!(out, vec![0u8, 159, 146, 150, 10]);
    // Errors are the service's, on stderr, with a failing exit code.
    let (code, out, err) = get(&["cli/missing"]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    // A version stage that does not exist.
    let (code, _, err) = get(&["cli/db", "--version-stage", "AWSPREVIOUS"]);
    assert_eq!(code, 1);
    assert!(err.contains("ResourceNotFoundException"), "{err}");
}

#[test]
fn operator_commands_read_the_vault_environment() {
    let (_p, c) = start_dev(&[]);
    // Only Vault's variables: the address and the token come from them.
    let (code, out, err) = coffer_testkit::run(
        bin(),
        &["operator", "status"],
        &[
            ("VAULT_ADDR", c.endpoint.as_str()),
            ("VAULT_TOKEN", c.root_token.as_str()),
        ],
    )
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("Sealed:       false"), "{out}");
    let (code, _, err) = coffer_testkit::run(
        bin(),
        &["operator", "rotate"],
        &[
            ("VAULT_ADDR", c.endpoint.as_str()),
            ("VAULT_TOKEN", c.root_token.as_str()),
        ],
    )
    .unwrap();
    assert_eq!(code, 0, "{err}");
    // COFFER_ADDR wins over VAULT_ADDR.
    let (code, _, err) = coffer_testkit::run(
        bin(),
        &["operator", "status"],
        &[
            ("VAULT_ADDR", "http://127.0.0.1:1"),
            ("COFFER_ADDR", c.endpoint.as_str()),
        ],
    )
    .unwrap();
    assert_eq!(code, 0, "{err}");
}

#[test]
fn the_dev_banner_prints_the_vault_variables_and_json_logs_are_json() {
    let mut p = coffer_testkit::CofferProcess::start(
        bin(),
        &["server", "--dev", "--listen", "127.0.0.1:0", "--log-format", "json"],
        &[],
    )
    .unwrap();
    let line = p.wait_for_line("export VAULT_ADDR=", Duration::from_secs(20)).unwrap();
    assert!(line.contains("http://127.0.0.1:"), "{line}");
    p.wait_for_line("export VAULT_TOKEN=hvs.", Duration::from_secs(5))
        .unwrap();
    p.wait_for_line("get-secret-value", Duration::from_secs(5)).unwrap();
    let endpoint = p.wait_for_line("Endpoint:", Duration::from_secs(1)).unwrap();
    let endpoint = endpoint.split_whitespace().last().unwrap().to_owned();
    // A request logs one debug line (COFFER_LOG=debug in tests).
    let _ = std::process::Command::new("curl")
        .args(["-s", &format!("{endpoint}/v1/sys/health")])
        .output();
    std::thread::sleep(Duration::from_millis(300));
    let log = p.stderr();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "no log lines");
    for l in &lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
    }
    assert!(lines.iter().any(|l| l.contains("\"path\":\"/v1/sys/health\"")), "{log}");
}

#[tokio::test]
async fn a_ca_certificate_used_as_the_server_certificate_is_named_as_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let (cert_path, key_path) = self_signed_tls(dir.path(), true);
    let prod = Prod::new(&format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
        cert_path.display(),
        key_path.display()
    ));
    let mut p = prod.start();
    let (code, _, err) = prod.operator(&["status", "--ca-cert", cert_path.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("presents a CA certificate"), "{err}");
    assert!(err.contains("leaf certificate"), "{err}");
    assert!(p.terminate(Duration::from_secs(10)));
}

/// The systemd unit in the repository is one systemd accepts (when `systemd-analyze` is
/// installed: it is on Debian's base system, and on this project's machines).
#[test]
fn the_systemd_unit_verifies() {
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("systemd-analyze is not installed: skipping");
        return;
    };
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../packaging/coffer.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/coffer server --config /etc/coffer/coffer.toml"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("coffer.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/coffer", bin().to_str().unwrap())).unwrap();
    let out = std::process::Command::new(analyze)
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !err.contains("coffer.service:"), "{err}");
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
        .ok_or(())
}
