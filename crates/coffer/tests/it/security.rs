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

// ---------------------------------------------------------------------------------------------
// SigV4: forgeries, replays, scopes and header smuggling (raw HTTP/1.1 on a TCP socket, signed
// by the real aws-sigv4 signer)

/// What to sign: the headers given (besides `host`), for `region`/`service` at `time`.
struct Sig<'a> {
    akid: &'a str,
    secret: &'a str,
    token: Option<&'a str>,
    region: &'a str,
    service: &'a str,
    path_and_query: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a [u8],
    time: std::time::SystemTime,
}

impl<'a> Sig<'a> {
    fn root(c: &'a coffer_testkit::DevCredentials, headers: &'a [(&'a str, &'a str)], body: &'a [u8]) -> Self {
        Self {
            akid: &c.access_key_id,
            secret: &c.secret_access_key,
            token: None,
            region: "us-east-1",
            service: "secretsmanager",
            path_and_query: "/",
            headers,
            body,
            time: std::time::SystemTime::now(),
        }
    }

    /// The headers the signer adds (`x-amz-date`, `authorization`, and the session token).
    fn sign(&self, host: &str) -> Vec<(String, String)> {
        use aws_credential_types::Credentials;
        use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
        use aws_sigv4::sign::v4;
        let identity = Credentials::new(self.akid, self.secret, self.token.map(str::to_string), None, "t").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let mut headers = vec![("host", host)];
        headers.extend_from_slice(self.headers);
        let signable = SignableRequest::new(
            "POST",
            format!("http://{host}{}", self.path_and_query),
            headers.iter().copied(),
            SignableBody::Bytes(self.body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions
            .headers()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// A raw request: `POST path`, the header lines as given (in order, verbatim), and the body.
fn raw_post(path: &str, headers: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("POST {path} HTTP/1.1\r\n").into_bytes();
    for (k, v) in headers {
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// Sends raw bytes on a new connection and reads one response.
async fn send_raw(endpoint: &str, bytes: &[u8]) -> Raw {
    let addr = endpoint.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (status, _, text) = exchange(&mut s, bytes).await;
    let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    Raw { status, body, text }
}

/// The standard request: signed `content-type`, `host`, `x-amz-date`, `x-amz-target` (and
/// `content-length` unsigned), with `edit` applied to the final header list before sending.
async fn signed_raw(
    c: &coffer_testkit::DevCredentials,
    sig: &Sig<'_>,
    edit: impl FnOnce(&mut Vec<(String, String)>),
) -> Raw {
    let host = c.endpoint.trim_start_matches("http://");
    let mut headers: Vec<(String, String)> = vec![("host".into(), host.into())];
    headers.extend(sig.headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    headers.extend(sig.sign(host));
    headers.push(("content-length".into(), sig.body.len().to_string()));
    edit(&mut headers);
    send_raw(&c.endpoint, &raw_post(sig.path_and_query, &headers, sig.body)).await
}

const JSON_CT: (&str, &str) = ("content-type", "application/x-amz-json-1.1");
const LIST: (&str, &str) = ("x-amz-target", "secretsmanager.ListSecrets");
const MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";

fn assert_aws_error(out: &Raw, status: u16, code: &str, message_start: &str) {
    assert_eq!(out.status, status, "{}", out.text);
    assert_eq!(out.body["__type"], code, "{}", out.text);
    let message = out.body["message"]
        .as_str()
        .or(out.body["Message"].as_str())
        .unwrap_or("");
    assert!(
        message.starts_with(message_start),
        "{message:?} should start with {message_start:?}"
    );
}

fn set(headers: &mut [(String, String)], name: &str, value: &str) {
    for (k, v) in headers.iter_mut() {
        if k.eq_ignore_ascii_case(name) {
            *v = value.to_string();
        }
    }
}

fn get(headers: &[(String, String)], name: &str) -> String {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
        .unwrap()
}

#[tokio::test]
async fn sigv4_forgeries_replays_and_scopes_are_refused_as_aws_does() {
    let (_p, c) = start_dev(&[]);
    let headers = [JSON_CT, LIST];
    let body = b"{}";
    // The control: a correct request is served, and served again when replayed inside the
    // window (SigV4 has no nonce; AWS accepts a replay within five minutes too).
    let ok = Sig::root(&c, &headers, body);
    let host = c.endpoint.trim_start_matches("http://").to_string();
    let mut fixed: Vec<(String, String)> = vec![("host".into(), host.clone())];
    fixed.extend(headers.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    fixed.extend(ok.sign(&host));
    fixed.push(("content-length".into(), "2".into()));
    let bytes = raw_post("/", &fixed, body);
    assert_eq!(send_raw(&c.endpoint, &bytes).await.status, 200);
    assert_eq!(send_raw(&c.endpoint, &bytes).await.status, 200);

    // Forged: one hex digit of the signature changed; or signed with another secret.
    let out = signed_raw(&c, &ok, |h| {
        let auth = get(h, "authorization");
        let last = if auth.ends_with('0') { '1' } else { '0' };
        set(h, "authorization", &format!("{}{last}", &auth[..auth.len() - 1]));
    })
    .await;
    assert_aws_error(&out, 400, "InvalidSignatureException", MISMATCH);
    let wrong = Sig {
        secret: "not-the-secret",
        ..Sig::root(&c, &headers, body)
    };
    assert_aws_error(
        &signed_raw(&c, &wrong, |_| {}).await,
        400,
        "InvalidSignatureException",
        MISMATCH,
    );
    // Body changed after signing.
    let out = signed_raw(&c, &ok, |_| {}).await;
    assert_eq!(out.status, 200);
    let tampered = raw_post("/", &fixed, b"{ }");
    let out = send_raw(&c.endpoint, &tampered).await;
    assert_aws_error(&out, 400, "InvalidSignatureException", MISMATCH);

    // Replayed after the five-minute window, and sent from the future.
    let six = Duration::from_secs(6 * 60);
    let old = Sig {
        time: std::time::SystemTime::now() - six,
        ..Sig::root(&c, &headers, body)
    };
    assert_aws_error(
        &signed_raw(&c, &old, |_| {}).await,
        400,
        "InvalidSignatureException",
        "Signature expired: ",
    );
    let future = Sig {
        time: std::time::SystemTime::now() + six,
        ..Sig::root(&c, &headers, body)
    };
    assert_aws_error(
        &signed_raw(&c, &future, |_| {}).await,
        400,
        "InvalidSignatureException",
        "Signature not yet current: ",
    );
    // An X-Amz-Date that differs from the scope's date (a day earlier, same time).
    let out = signed_raw(&c, &ok, |h| {
        let date = get(h, "x-amz-date");
        let earlier = time::Date::parse(&date[..8], time::macros::format_description!("[year][month][day]"))
            .unwrap()
            .previous_day()
            .unwrap();
        let earlier = format!(
            "{:04}{:02}{:02}{}",
            earlier.year(),
            u8::from(earlier.month()),
            earlier.day(),
            &date[8..]
        );
        set(h, "x-amz-date", &earlier);
    })
    .await;
    assert_aws_error(
        &out,
        400,
        "InvalidSignatureException",
        "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP",
    );

    // Region: the scope edited after signing; a region that is no region; a valid other
    // region sees that region's secrets only (the us-east-1 secret, even by ARN, is not there).
    let out = signed_raw(&c, &ok, |h| {
        let auth = get(h, "authorization").replace("/us-east-1/", "/eu-west-1/");
        set(h, "authorization", &auth);
    })
    .await;
    assert_aws_error(&out, 400, "InvalidSignatureException", MISMATCH);
    let bad_region = Sig {
        region: "us_east_1",
        ..Sig::root(&c, &headers, body)
    };
    assert_aws_error(
        &signed_raw(&c, &bad_region, |_| {}).await,
        400,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region, not 'us_east_1'.",
    );
    let arn = crate::authz::create_secret(&c, "scoped/one", serde_json::json!({})).await;
    let get_body = serde_json::json!({ "SecretId": arn }).to_string();
    let get_headers = [JSON_CT, ("x-amz-target", "secretsmanager.GetSecretValue")];
    let elsewhere = Sig {
        region: "eu-west-1",
        ..Sig::root(&c, &get_headers, get_body.as_bytes())
    };
    assert_aws_error(
        &signed_raw(&c, &elsewhere, |_| {}).await,
        400,
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    );

    // Service: signed for kms, sent to Secrets Manager.
    let kms = Sig {
        service: "kms",
        ..Sig::root(&c, &headers, body)
    };
    assert_aws_error(
        &signed_raw(&c, &kms, |_| {}).await,
        400,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'secretsmanager'.",
    );

    // A presigned-style query signature beside the Authorization header.
    let both = Sig {
        path_and_query: "/?X-Amz-Signature=0000000000000000000000000000000000000000000000000000000000000000",
        ..Sig::root(&c, &headers, body)
    };
    assert_aws_error(
        &signed_raw(&c, &both, |_| {}).await,
        400,
        "IncompleteSignatureException",
        "Only one auth mechanism allowed",
    );

    // The Query protocol's names for the same failures (STS GetCallerIdentity).
    let form = b"Action=GetCallerIdentity&Version=2011-06-15";
    let form_ct = [("content-type", "application/x-www-form-urlencoded; charset=utf-8")];
    let sts = Sig {
        service: "sts",
        ..Sig::root(&c, &form_ct, form)
    };
    let out = signed_raw(&c, &sts, |_| {}).await;
    assert_eq!(out.status, 200, "{}", out.text);
    let forged = Sig {
        secret: "not-the-secret",
        ..Sig {
            service: "sts",
            ..Sig::root(&c, &form_ct, form)
        }
    };
    let out = signed_raw(&c, &forged, |_| {}).await;
    assert_eq!(out.status, 403, "{}", out.text);
    assert!(out.text.contains("<Code>SignatureDoesNotMatch</Code>"), "{}", out.text);
    let expired = Sig {
        time: std::time::SystemTime::now() - six,
        ..Sig {
            service: "sts",
            ..Sig::root(&c, &form_ct, form)
        }
    };
    let out = signed_raw(&c, &expired, |_| {}).await;
    assert_eq!(out.status, 403, "{}", out.text);
    assert!(out.text.contains("<Code>SignatureDoesNotMatch</Code>"), "{}", out.text);
    assert!(out.text.contains("Signature expired: "), "{}", out.text);
}

#[tokio::test]
async fn sigv4_header_smuggling_is_refused() {
    let (_p, c) = start_dev(&[]);
    let body = b"{}";
    let signed_target = [JSON_CT, LIST];

    // X-Amz-Target not signed: anyone on the path could change the operation.
    let unsigned = Sig::root(&c, &[JSON_CT], body);
    let out = signed_raw(&c, &unsigned, |h| {
        h.push(("X-Amz-Target".into(), "secretsmanager.ListSecrets".into()))
    })
    .await;
    assert_aws_error(
        &out,
        400,
        "InvalidSignatureException",
        "'X-Amz-Target' must be a 'SignedHeader' in the AWS Authorization.",
    );
    // Nor an unsigned session token (it picks the identity).
    let out = signed_raw(&c, &Sig::root(&c, &signed_target, body), |h| {
        h.push(("X-Amz-Security-Token".into(), "FwoGZXIvYXdzEJr".into()))
    })
    .await;
    assert_aws_error(
        &out,
        400,
        "InvalidSignatureException",
        "'X-Amz-Security-Token' must be a 'SignedHeader' in the AWS Authorization.",
    );

    // A second X-Amz-Target added after signing: the signature covers both values.
    let ok = Sig::root(&c, &signed_target, body);
    let out = signed_raw(&c, &ok, |h| {
        h.push(("X-Amz-Target".into(), "secretsmanager.GetRandomPassword".into()))
    })
    .await;
    assert_aws_error(&out, 400, "InvalidSignatureException", MISMATCH);
    // Both signed: the request names no single operation, so none runs.
    let two = [JSON_CT, LIST, ("x-amz-target", "secretsmanager.GetRandomPassword")];
    let out = signed_raw(&c, &Sig::root(&c, &two, body), |_| {}).await;
    assert_eq!(out.status, 400, "{}", out.text);
    assert_eq!(out.body["__type"], "UnknownOperationException", "{}", out.text);

    // Two Authorization headers (a valid one first): one malformed header, not the first.
    let out = signed_raw(&c, &ok, |h| {
        let auth = get(h, "authorization");
        h.push(("Authorization".into(), auth.replace("Signature=", "Signature=f")));
    })
    .await;
    assert_aws_error(
        &out,
        400,
        "IncompleteSignatureException",
        "'AWS4-HMAC-SHA256' not a valid key=value pair",
    );
    // Two dates: one malformed date.
    let out = signed_raw(&c, &ok, |h| {
        let date = get(h, "x-amz-date");
        h.push(("X-Amz-Date".into(), date));
    })
    .await;
    assert_aws_error(
        &out,
        400,
        "IncompleteSignatureException",
        "Date must be in ISO-8601 'basic format'.",
    );
    // Two Host headers: HTTP/1.1 allows one (hyper refuses), and the signature covers one.
    let out = signed_raw(&c, &ok, |h| h.push(("Host".into(), "evil.example".into()))).await;
    assert_eq!(out.status, 400, "{}", out.text);

    // Header names in odd case are the same headers (HTTP is case-insensitive, so is AWS);
    // blanks around a value are not part of it.
    let out = signed_raw(&c, &ok, |h| {
        for (k, v) in h.iter_mut() {
            if k == "x-amz-target" {
                *k = "X-AMZ-TARGET".into();
                *v = format!("  {v}  ");
            }
        }
    })
    .await;
    assert_eq!(out.status, 200, "{}", out.text);
    // Whitespace between a header name and its colon is a malformed request (RFC 9112).
    let out = signed_raw(&c, &ok, |h| {
        for (k, _) in h.iter_mut() {
            if k == "x-amz-target" {
                *k = "x-amz-target ".into();
            }
        }
    })
    .await;
    assert_eq!(out.status, 400, "{}", out.text);
    assert_ne!(out.body["__type"], "ListSecrets", "{}", out.text);

    // Content-Length shorter than the body: the signed body is not what arrives.
    let long = br#"{"MaxResults": 1}"#;
    let out = signed_raw(&c, &Sig::root(&c, &signed_target, long), |h| {
        set(h, "content-length", "2")
    })
    .await;
    assert_aws_error(&out, 400, "InvalidSignatureException", MISMATCH);
    // Content-Length longer than the body, then the client stops sending: no answer is a 200.
    let host = c.endpoint.trim_start_matches("http://").to_string();
    let mut h: Vec<(String, String)> = vec![("host".into(), host.clone())];
    h.extend(signed_target.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    h.extend(ok.sign(&host));
    h.push(("content-length".into(), "10".into()));
    let mut s = tokio::net::TcpStream::connect(&host).await.unwrap();
    s.write_all(&raw_post("/", &h, body)).await.unwrap();
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut rest)).await;
    assert!(
        !String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&rest)
    );

    // A chunked body is signed as the bytes it carries.
    let mut h: Vec<(String, String)> = vec![("host".into(), host.clone())];
    h.extend(signed_target.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    h.extend(ok.sign(&host));
    h.push(("transfer-encoding".into(), "chunked".into()));
    let out = send_raw(&c.endpoint, &raw_post("/", &h, b"1\r\n{\r\n1\r\n}\r\n0\r\n\r\n")).await;
    assert_eq!(out.status, 200, "{}", out.text);
    // Content-Length and chunked together (request smuggling's classic): hyper frames the
    // body by Transfer-Encoding, as RFC 9112 says, so the signed bytes are the bytes served.
    h.push(("content-length".into(), "2".into()));
    let out = send_raw(&c.endpoint, &raw_post("/", &h, b"1\r\n{\r\n1\r\n}\r\n0\r\n\r\n")).await;
    assert_eq!(out.status, 200, "{}", out.text);
}

// ---------------------------------------------------------------------------------------------
// Policy bypass attempts

use crate::authz::{Creds, allow, assert_denied, create_secret, policy, query, root, sm, xml_tag};

fn deny(action: &str, resource: &str) -> serde_json::Value {
    serde_json::json!({"Effect": "Deny", "Action": action, "Resource": resource})
}

fn assert_code(out: &Raw, code: &str) {
    assert_eq!(out.status, 400, "{}", out.text);
    assert_eq!(out.body["__type"], code, "{}", out.text);
}

#[tokio::test]
async fn secret_names_and_arns_cannot_slip_past_a_policy() {
    use serde_json::json;
    let (_p, c) = start_dev(&[]);
    let acct = c.account_id.clone();
    let prod_db = create_secret(&c, "prod/db", json!({})).await;
    for name in ["prod", "prod-db", "production/x", "PROD/db", "admin", "prod/../admin"] {
        create_secret(&c, name, json!({})).await;
    }
    // Only what a wildcard under `prod/` names.
    let user = crate::authz::user_with_policy(
        &c,
        "reader",
        policy(vec![allow(
            "secretsmanager:GetSecretValue",
            "arn:aws:secretsmanager:*:*:secret:prod/*",
        )]),
    )
    .await;
    let get = |id: String| {
        let user = Creds {
            akid: user.akid.clone(),
            secret: user.secret.clone(),
            token: None,
        };
        let c = &c;
        async move { sm(c, &user, "GetSecretValue", json!({ "SecretId": id })).await }
    };
    let out = get("prod/db".into()).await;
    assert_eq!(out.body["SecretString"], "value-of-prod/db", "{}", out.text);
    let out = get(prod_db.clone()).await;
    assert_eq!(out.body["SecretString"], "value-of-prod/db", "{}", out.text);
    // Prefixes that are not `prod/`, and case variants: denied.
    for id in ["prod", "prod-db", "production/x", "PROD/db", "Prod/db", "admin"] {
        assert_denied(&get(id.into()).await, "secretsmanager:GetSecretValue");
    }
    // `prod/../admin` is a secret of its own (AWS names are not paths): it is what the
    // policy allows, and never `admin`'s value.
    let out = get("prod/../admin".into()).await;
    assert_eq!(out.body["SecretString"], "value-of-prod/../admin", "{}", out.text);
    // Path tricks name secrets that do not exist: not found, never another secret.
    for id in ["prod/./db", "prod//db", "prod/db/", "prod/../prod/db"] {
        assert_code(&get(id.into()).await, "ResourceNotFoundException");
    }
    // Encoded slashes, look-alikes and other normal forms are other names, with characters no
    // secret name may have: denied by the policy, or refused as an invalid name (which of the
    // two comes first depends on the check that sees it first; neither looks a secret up).
    for id in [
        "prod%2Fdb",
        "prod%2fdb",
        "pr\u{043e}d/db",         // Cyrillic о
        "\u{0440}rod/db",         // Cyrillic р
        "prod\u{2215}db",         // division slash
        "prod\u{ff0f}db",         // fullwidth solidus
        "prod/d\u{0062}\u{0301}", // a combining mark
    ] {
        let out = get(id.into()).await;
        assert_eq!(out.status, 400, "{}", out.text);
        assert!(
            out.body["__type"] == "AccessDeniedException"
                || (out.body["__type"] == "ValidationException" && out.text.contains("Invalid name.")),
            "{id}: {}",
            out.text
        );
    }
    // ARNs of another partition or account for the same name: denied, not resolved here.
    let suffix = prod_db.rsplit_once('-').unwrap().1;
    for partition in ["aws-cn", "aws-us-gov"] {
        let arn = format!("arn:{partition}:secretsmanager:us-east-1:{acct}:secret:prod/db-{suffix}");
        assert_denied(&get(arn).await, "secretsmanager:GetSecretValue");
    }
    let arn = format!("arn:aws:secretsmanager:us-east-1:999999999999:secret:prod/db-{suffix}");
    assert_denied(&get(arn).await, "secretsmanager:GetSecretValue");

    // NFC vs NFD: a policy written with a precomposed é does not match the decomposed form.
    let nfc = crate::authz::user_with_policy(
        &c,
        "cafe",
        policy(vec![allow(
            "secretsmanager:DescribeSecret",
            "arn:aws:secretsmanager:*:*:secret:caf\u{e9}*",
        )]),
    )
    .await;
    let out = sm(&c, &nfc, "DescribeSecret", json!({"SecretId": "cafe\u{301}"})).await;
    assert_denied(&out, "secretsmanager:DescribeSecret");
    let nfc_arn = format!("arn:aws:secretsmanager:us-east-1:{acct}:secret:cafe\u{301}-abcdef");
    let out = sm(&c, &nfc, "DescribeSecret", json!({ "SecretId": nfc_arn })).await;
    assert_denied(&out, "secretsmanager:DescribeSecret");

    // An explicit Deny on `prod/*` beside an Allow on everything: no spelling reaches prod/db.
    let denied = crate::authz::user_with_policy(
        &c,
        "all-but-prod",
        policy(vec![
            allow("secretsmanager:*", "*"),
            deny("secretsmanager:*", "arn:aws:secretsmanager:*:*:secret:prod/*"),
        ]),
    )
    .await;
    for id in [
        "prod/db".to_string(),
        prod_db.clone(),
        prod_db[..prod_db.len() - 7].to_string(),
    ] {
        let out = sm(&c, &denied, "GetSecretValue", json!({ "SecretId": id })).await;
        assert_denied(&out, "secretsmanager:GetSecretValue");
    }
    for partition in ["aws-cn", "aws-us-gov"] {
        let arn = format!("arn:{partition}:secretsmanager:us-east-1:{acct}:secret:prod/db-{suffix}");
        let out = sm(&c, &denied, "GetSecretValue", json!({ "SecretId": arn })).await;
        assert_code(&out, "ResourceNotFoundException");
    }
    let out = sm(&c, &denied, "GetSecretValue", json!({"SecretId": "PROD/db"})).await;
    assert_eq!(out.body["SecretString"], "value-of-PROD/db", "{}", out.text);
}

#[tokio::test]
async fn kms_key_arns_of_another_partition_are_not_this_key() {
    use serde_json::json;
    let (_p, c) = start_dev(&[]);
    let key = crate::authz::kms(&c, &root(&c), "CreateKey", json!({})).await;
    let key_arn = key.body["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    let user =
        crate::authz::user_with_policy(&c, "enc", policy(vec![allow("kms:Encrypt", "arn:aws:kms:*:*:key/*")])).await;
    let enc = |id: String| {
        let user = Creds {
            akid: user.akid.clone(),
            secret: user.secret.clone(),
            token: None,
        };
        let c = &c;
        async move { crate::authz::kms(c, &user, "Encrypt", json!({"KeyId": id, "Plaintext": "aGk="})).await }
    };
    assert_eq!(enc(key_arn.clone()).await.status, 200);
    for partition in ["aws-cn", "aws-us-gov"] {
        let other = key_arn.replacen("arn:aws:", &format!("arn:{partition}:"), 1);
        assert_denied(&enc(other).await, "kms:Encrypt");
    }
}

#[tokio::test]
async fn parameter_selectors_arns_and_references_cannot_slip_past_a_policy() {
    use serde_json::json;
    let (_p, c) = start_dev(&[]);
    let acct = c.account_id.clone();
    let ssm = |creds: &Creds, op: &str, body: serde_json::Value| {
        let creds = Creds {
            akid: creds.akid.clone(),
            secret: creds.secret.clone(),
            token: creds.token.clone(),
        };
        let c = &c;
        let target = format!("AmazonSSM.{op}");
        async move { crate::authz::post(&c.endpoint, &creds, "ssm", Some(&target), &body.to_string()).await }
    };
    let r = root(&c);
    for name in ["/secret", "/app/x"] {
        let out = ssm(
            &r,
            "PutParameter",
            json!({"Name": name, "Value": format!("v{name}"), "Type": "SecureString"}),
        )
        .await;
        assert_eq!(out.status, 200, "{}", out.text);
    }
    let user = crate::authz::user_with_policy(
        &c,
        "params",
        policy(vec![
            allow("ssm:GetParameter*", "*"),
            deny("ssm:GetParameter*", "arn:aws:ssm:*:*:parameter/secret"),
        ]),
    )
    .await;
    let out = ssm(&user, "GetParameter", json!({"Name": "/app/x", "WithDecryption": true})).await;
    assert_eq!(out.status, 200, "{}", out.text);
    // Every way of naming /secret is the same parameter to the policy.
    let arn = format!("arn:aws:ssm:us-east-1:{acct}:parameter/secret");
    for name in [
        "/secret".to_string(),
        "secret".to_string(),
        "/secret:1".to_string(),
        " /secret ".to_string(),
        arn.clone(),
        format!("{arn}:1"),
    ] {
        let out = ssm(&user, "GetParameter", json!({"Name": name, "WithDecryption": true})).await;
        assert_denied(&out, "ssm:GetParameter");
        let out = ssm(&user, "GetParameters", json!({"Names": [name], "WithDecryption": true})).await;
        assert_denied(&out, "ssm:GetParameters");
    }

    // A Secrets Manager reference reads the secret: ssm:GetParameter alone is not enough.
    create_secret(&c, "db/pass", json!({})).await;
    let reference = "/aws/reference/secretsmanager/db/pass";
    let only_ssm = crate::authz::user_with_policy(&c, "ssm-only", policy(vec![allow("ssm:GetParameter*", "*")])).await;
    let out = ssm(
        &only_ssm,
        "GetParameter",
        json!({"Name": reference, "WithDecryption": true}),
    )
    .await;
    assert_denied(&out, "secretsmanager:GetSecretValue");
    let out = ssm(
        &only_ssm,
        "GetParameters",
        json!({"Names": [reference], "WithDecryption": true}),
    )
    .await;
    assert_denied(&out, "secretsmanager:GetSecretValue");
    let both = crate::authz::user_with_policy(
        &c,
        "ssm-and-sm",
        policy(vec![
            allow("ssm:GetParameter*", "*"),
            allow(
                "secretsmanager:GetSecretValue",
                "arn:aws:secretsmanager:*:*:secret:db/*",
            ),
        ]),
    )
    .await;
    let out = ssm(
        &both,
        "GetParameter",
        json!({"Name": reference, "WithDecryption": true}),
    )
    .await;
    assert_eq!(out.body["Parameter"]["Value"], "value-of-db/pass", "{}", out.text);
}

/// A session of role `name` in the account of `admin` (a root key), assumed by a user allowed
/// to.
async fn session_in(c: &coffer_testkit::DevCredentials, admin: &Creds, account: &str, name: &str) -> Creds {
    let trust = serde_json::json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let out = query(
        c,
        admin,
        "iam",
        &[
            ("Action", "CreateRole"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", &trust),
        ],
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text);
    let role_arn = format!("arn:aws:iam::{account}:role/{name}");
    let user =
        crate::authz::user_with_policy_as(c, admin, name, policy(vec![allow("sts:AssumeRole", &role_arn)])).await;
    let out = query(
        c,
        &user,
        "sts",
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", &role_arn),
            ("RoleSessionName", "s1"),
        ],
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text);
    Creds {
        akid: xml_tag(&out.text, "AccessKeyId"),
        secret: xml_tag(&out.text, "SecretAccessKey"),
        token: Some(xml_tag(&out.text, "SessionToken")),
    }
}

#[tokio::test]
async fn a_session_token_of_another_account_or_session_is_refused() {
    let (_p, c) = start_dev(&[]);
    let created = crate::authz::create_account(&c);
    let b_root = Creds {
        akid: created["access_key_id"].as_str().unwrap().to_string(),
        secret: created["secret_access_key"].as_str().unwrap().to_string(),
        token: None,
    };
    let a = session_in(&c, &root(&c), &c.account_id, "a").await;
    let b = session_in(&c, &b_root, created["account_id"].as_str().unwrap(), "b").await;
    let who = query(&c, &a, "sts", &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(who.status, 200, "{}", who.text);
    // A's key with B's token, and B's key with A's token: neither is anyone.
    for creds in [
        Creds {
            token: b.token.clone(),
            akid: a.akid.clone(),
            secret: a.secret.clone(),
        },
        Creds {
            token: a.token.clone(),
            akid: b.akid.clone(),
            secret: b.secret.clone(),
        },
    ] {
        let out = sm(&c, &creds, "ListSecrets", serde_json::json!({})).await;
        assert_code(&out, "UnrecognizedClientException");
        let out = query(&c, &creds, "sts", &[("Action", "GetCallerIdentity")]).await;
        assert_eq!(out.status, 403, "{}", out.text);
        assert!(out.text.contains("<Code>InvalidClientTokenId</Code>"), "{}", out.text);
    }
}

// ---------------------------------------------------------------------------------------------
// Vault paths: traversal on the /v1/ routes that exist (policies and their `+`/`*` globs come
// with the Vault API, not built yet)

#[tokio::test]
async fn vault_path_traversal_reaches_no_other_route() {
    let (_p, c) = start_dev(&[]);
    let post = |path: &'static str| {
        let c = &c;
        async move {
            let bytes = format!(
                "POST {path} HTTP/1.1\r\nhost: localhost\r\nx-vault-token: {}\r\ncontent-length: 0\r\n\r\n",
                c.root_token
            );
            send_raw(&c.endpoint, bytes.as_bytes()).await
        }
    };
    for path in [
        "/v1/sys/../sys/seal",
        "/v1/sys/%2e%2e/sys/seal",
        "/v1/sys/%2E%2E/sys/seal",
        "/v1/sys/./seal",
        "/v1//sys/seal",
        "//v1/sys/seal",
        "/v1/sys%2fseal",
        "/v1/sys%2Fseal",
        "/v1/sys/seal/",
        "/v1/sys/seal/..",
        "/v1/sys/seal%00",
        "/v1/SYS/seal",
        "/v1/sys/init/../seal",
    ] {
        let out = post(path).await;
        assert_eq!(out.status, 404, "{path}: {}", out.text);
        if path.starts_with("/v1/") {
            assert!(out.body["errors"].is_array(), "{path}: {}", out.text);
        }
    }
    // Still unsealed: none of them reached /v1/sys/seal.
    let status = reqwest::get(format!("{}/v1/sys/seal-status", c.endpoint))
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(status["sealed"], false, "{status}");
    // The route itself, for contrast, does seal.
    let out = post("/v1/sys/seal").await;
    assert_eq!(out.status, 204, "{}", out.text);
}

// ---------------------------------------------------------------------------------------------
// Constant-time comparisons: where secrets are compared, they go through `subtle` (or a
// lookup by hash); this guard fails when a plain `==`/`!=` appears on a line that names one.

#[test]
fn secrets_are_never_compared_with_eq() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // (file, words that name a secret value compared there)
    let places: &[(&str, &[&str])] = &[
        ("coffer-sigv4/src/verify.rs", &["signature", "expected", "provided"]),
        ("coffer-audit/src/verify.rs", &[".mac", "mac("]),
        ("coffer-audit/src/chain.rs", &[".mac", "mac("]),
        ("coffer-iam/src/keys.rs", &["token_sha256", "secret_access_key"]),
        ("coffer-barrier/src/barrier.rs", &["share", "root_key"]),
        ("coffer-core/src/identity.rs", &["token"]),
    ];
    let mut found = Vec::new();
    for (file, words) in places {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let compares = code.contains(" == ") || code.contains(" != ");
            let public = code.contains("len()") || code.contains("threshold");
            if compares && words.iter().any(|w| code.contains(w)) && !public {
                found.push(format!("{file}:{}: {}", i + 1, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "secrets compared with ==/!= (use subtle):\n{}",
        found.join("\n")
    );
}
