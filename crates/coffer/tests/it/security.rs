//! Security tests against the real binary: SigV4 forgeries, replays and header smuggling, policy
//! bypass attempts, Vault path traversal, TLS defaults and the certificate reload on SIGHUP.
//! Each attack asserts the exact answer (status and AWS `__type`, or Vault's `errors`).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::production::Prod;
use crate::support::*;

// ---------------------------------------------------------------------------------------------
// TLS

/// A TLS client trusting only `ca_pem` (rustls, TLS 1.2 and 1.3, HTTP/1.1).
fn tls_client(ca_pem: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

type TlsStream = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// Opens a TLS connection to `addr` (`host:port`) for `localhost`, trusting `ca_pem`.
async fn tls_connect(addr: &str, ca_pem: &[u8]) -> std::io::Result<TlsStream> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    tls_client(ca_pem).connect(name, tcp).await
}

/// The DER of the certificate the server presented on `s`.
fn peer_cert(s: &TlsStream) -> Vec<u8> {
    s.get_ref().1.peer_certificates().unwrap()[0].as_ref().to_vec()
}

/// The DER of the first certificate in a PEM file.
fn pem_der(path: &Path) -> Vec<u8> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    CertificateDer::from_pem_file(path).unwrap().as_ref().to_vec()
}

/// One HTTP/1.1 exchange on a kept-alive connection: writes `request` and reads one response
/// (its body by `content-length`). Returns the status, the head and the body.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, request: &[u8]) -> (u16, String, String) {
    s.write_all(request).await.unwrap();
    s.flush().await.unwrap();
    read_response(s).await
}

async fn read_response<S: AsyncRead + Unpin>(s: &mut S) -> (u16, String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = s.read(&mut byte).await.unwrap();
        assert!(
            n > 0,
            "connection closed inside a response head: {}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await.unwrap();
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

const SEAL_STATUS: &[u8] = b"GET /v1/sys/seal-status HTTP/1.1\r\nhost: localhost\r\n\r\n";

/// Polls the server log for `needle`, `count` times.
fn wait_log(p: &coffer_testkit::CofferProcess, needle: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while p.stderr().matches(needle).count() < count {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} ({count}x) in the log:\n{}",
            p.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn sighup(p: &coffer_testkit::CofferProcess) {
    let status = std::process::Command::new("kill")
        .args(["-HUP", &p.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Writes a new self-signed certificate and key over `cert`/`key` (made in a scratch
/// directory first, so each file is replaced whole).
fn replace_cert(cert: &Path, key: &Path) -> (Vec<u8>, Vec<u8>) {
    let scratch = tempfile::tempdir().unwrap();
    let (c, k) = self_signed_tls(scratch.path(), false);
    std::fs::copy(&k, key).unwrap();
    std::fs::copy(&c, cert).unwrap();
    (std::fs::read(cert).unwrap(), pem_der(cert))
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_tls(dir.path(), false);
    let audit = dir.path().join("audit.log");
    let prod = Prod::new(&format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"\n[[audit]]\ntype = \"file\"\npath = \"{}\"",
        cert.display(),
        key.display(),
        audit.display()
    ));
    let p = prod.start();
    let addr = prod.endpoint.trim_start_matches("https://").to_string();
    let old_pem = std::fs::read(&cert).unwrap();
    let old_der = pem_der(&cert);
    let ca = cert.to_str().unwrap().to_string();
    let keys = {
        let (code, out, err) =
            prod.operator(&["init", "--shares", "1", "--threshold", "1", "--json", "--ca-cert", &ca]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["keys_base64"][0].as_str().unwrap().to_string()
    };
    let (code, out, err) = prod.operator(&["unseal", &keys, "--ca-cert", &ca]);
    assert_eq!(code, 0, "{out}{err}");

    // A kept-alive connection made with the first certificate.
    let mut kept = tls_connect(&addr, &old_pem).await.unwrap();
    assert_eq!(peer_cert(&kept), old_der);
    assert_eq!(exchange(&mut kept, SEAL_STATUS).await.0, 200);

    // New files, then SIGHUP.
    let (new_pem, new_der) = replace_cert(&cert, &key);
    assert_ne!(new_der, old_der);
    sighup(&p);
    wait_log(&p, "TLS certificate reloaded", 1);

    // The established connection keeps working; new handshakes see the new certificate.
    let (status, _, body) = exchange(&mut kept, SEAL_STATUS).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(peer_cert(&kept), old_der);
    let fresh = tls_connect(&addr, &new_pem).await.unwrap();
    assert_eq!(peer_cert(&fresh), new_der);
    let refused = tls_connect(&addr, &old_pem).await;
    assert!(
        refused.is_err(),
        "a client trusting only the old certificate must now fail"
    );

    // A broken certificate file is refused: the server keeps serving the last good one.
    std::fs::write(
        &cert,
        b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    sighup(&p);
    wait_log(&p, "TLS certificate not reloaded", 1);
    let mut again = tls_connect(&addr, &new_pem).await.unwrap();
    assert_eq!(peer_cert(&again), new_der);
    assert_eq!(exchange(&mut again, SEAL_STATUS).await.0, 200);
    // So is a certificate whose key is not the key file's.
    let scratch = tempfile::tempdir().unwrap();
    let (other_cert, _) = self_signed_tls(scratch.path(), false);
    std::fs::copy(&other_cert, &cert).unwrap();
    sighup(&p);
    wait_log(&p, "TLS certificate not reloaded", 2);
    assert!(p.stderr().contains("do not match"), "{}", p.stderr());
    let still = tls_connect(&addr, &new_pem).await.unwrap();
    assert_eq!(peer_cert(&still), new_der);
    // The first connection saw it all through.
    assert_eq!(exchange(&mut kept, SEAL_STATUS).await.0, 200);

    // Each reload is an operator event, with its outcome.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(&audit).unwrap_or_default();
        let reloads: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.to_string().contains("\"ConfigReload\""))
            .collect();
        if reloads.len() == 3 {
            let all = serde_json::Value::Array(reloads).to_string();
            assert!(all.contains(&coffer_crypto::hash::sha256_hex(&new_der)), "{all}");
            assert_eq!(all.matches("ConfigReloadFailed").count(), 2, "{all}");
            break;
        }
        assert!(Instant::now() < deadline, "ConfigReload events: {text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `openssl s_client` with `args` against `addr`; whether a handshake completed.
fn openssl_handshake(addr: &str, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(["s_client", "-connect", addr, "-servername", "localhost", "-brief"])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        text.contains("CONNECTION ESTABLISHED") || text.contains("Protocol version:"),
        text,
    )
}

#[tokio::test]
async fn tls_offers_modern_versions_and_suites_only() {
    if std::process::Command::new("openssl").arg("version").output().is_err() {
        eprintln!("openssl is not installed: the TLS version and cipher test needs it");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed_tls(dir.path(), false);
    let prod = Prod::new(&format!(
        "tls_cert_file = \"{}\"\ntls_key_file = \"{}\"",
        cert.display(),
        key.display()
    ));
    let _p = prod.start();
    let addr = prod.endpoint.trim_start_matches("https://").to_string();
    // Modern clients connect: TLS 1.3, and TLS 1.2 with an ECDHE + AEAD suite.
    let (ok, text) = openssl_handshake(&addr, &["-tls1_3"]);
    assert!(ok, "{text}");
    let (ok, text) = openssl_handshake(&addr, &["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]);
    assert!(ok, "{text}");
    // Refused by the server (a handshake_failure alert, not a local openssl error): TLS 1.2
    // offering only legacy suites (CBC with SHA-1 or SHA-384, no AEAD; static RSA), and
    // TLS 1.1 / 1.0 with everything openssl has.
    for suite in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "AES128-SHA"] {
        let (ok, text) = openssl_handshake(&addr, &["-tls1_2", "-cipher", suite]);
        assert!(!ok && text.contains("alert handshake failure"), "{suite}: {text}");
    }
    for version in ["-tls1_1", "-tls1"] {
        let (ok, text) = openssl_handshake(&addr, &[version, "-cipher", "ALL:@SECLEVEL=0"]);
        assert!(!ok && text.contains("alert handshake failure"), "{version}: {text}");
    }
}
