//! Verifier tests against the real signer: every signed request here is produced by the
//! `aws-sigv4` crate (the AWS SDK for Rust's signer) and then checked by Coffer's verifier.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::borrow::Cow;
use std::time::{Duration as StdDuration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use coffer_crypto::SecretBytes;
use coffer_sigv4::{
    AuthHeader, SigV4Error, SignedRequest, SigningKeyCache, derive_signing_key, parse_authorization, verify,
};
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use time::OffsetDateTime;

const AKID: &str = "AKIDCOFFERTEST000001";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const REGION: &str = "us-east-1";
const SERVICE: &str = "secretsmanager";
/// 2026-11-22T15:58:24Z
const T0: u64 = 1_795_363_104;

fn t0() -> SystemTime {
    UNIX_EPOCH + StdDuration::from_secs(T0)
}

fn odt(t: SystemTime) -> OffsetDateTime {
    OffsetDateTime::from(t)
}

fn secret() -> SecretBytes {
    SecretBytes::from_slice(SECRET.as_bytes())
}

/// A request as a client would send it.
#[derive(Clone)]
struct Req {
    method: &'static str,
    /// Full URL as sent: scheme, authority, encoded path and query.
    url: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    /// A Secrets Manager call as boto3 builds it before signing.
    fn secretsmanager(op: &str, body: &str) -> Self {
        Self {
            method: "POST",
            url: "http://localhost:4566/".to_owned(),
            headers: vec![
                ("X-Amz-Target".into(), format!("secretsmanager.{op}")),
                ("Content-Type".into(), "application/x-amz-json-1.1".into()),
                (
                    "User-Agent".into(),
                    "Boto3/1.44.5 md/Botocore#1.44.5 ua/2.1 cfg/retry-mode#standard".into(),
                ),
                ("Host".into(), "localhost:4566".into()),
            ],
            body: body.as_bytes().to_vec(),
        }
    }

    fn path_and_query(&self) -> (String, String) {
        let uri: http::Uri = self.url.parse().unwrap();
        (uri.path().to_owned(), uri.query().unwrap_or_default().to_owned())
    }
}

struct Signer {
    akid: &'static str,
    secret: &'static str,
    token: Option<&'static str>,
    region: &'static str,
    service: &'static str,
    time: SystemTime,
    settings: SigningSettings,
    body: Option<SignableBody<'static>>,
}

impl Default for Signer {
    fn default() -> Self {
        Self {
            akid: AKID,
            secret: SECRET,
            token: None,
            region: REGION,
            service: SERVICE,
            time: t0(),
            settings: SigningSettings::default(),
            body: None,
        }
    }
}

impl Signer {
    /// Signs `req` with aws-sigv4 and returns the headers the server receives.
    fn sign(&self, req: &Req) -> HeaderMap {
        self.try_sign(req).expect("aws-sigv4 signs the request")
    }

    /// As [`Signer::sign`], or `None` when aws-sigv4 or `http` refuses the request.
    fn try_sign(&self, req: &Req) -> Option<HeaderMap> {
        let identity: Identity = Credentials::new(
            self.akid,
            self.secret,
            self.token.map(str::to_owned),
            None,
            "coffer-tests",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(self.region)
            .name(self.service)
            .time(self.time)
            .settings(self.settings.clone())
            .build()
            .ok()?
            .into();
        let body = self.body.clone().unwrap_or(SignableBody::Bytes(&req.body));
        let signable = SignableRequest::new(
            req.method,
            req.url.as_str(),
            req.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            body,
        )
        .ok()?;
        let (instructions, _signature) = sign(signable, &params).ok()?.into_parts();
        let mut builder = http::Request::builder().method(req.method).uri(&req.url);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let mut request = builder.body(()).ok()?;
        instructions.apply_to_request_http1x(&mut request);
        let mut headers = request.headers().clone();
        // What hyper adds when the client did not set Host itself.
        if !headers.contains_key(http::header::HOST) {
            let authority = request.uri().authority()?.as_str().to_owned();
            headers.insert(http::header::HOST, authority.parse().ok()?);
        }
        Some(headers)
    }
}

fn check(req: &Req, headers: &HeaderMap, now: OffsetDateTime) -> Result<AuthHeader, SigV4Error> {
    check_with(req, headers, now, &secret(), &SigningKeyCache::new())
}

fn check_with(
    req: &Req,
    headers: &HeaderMap,
    now: OffsetDateTime,
    secret: &SecretBytes,
    cache: &SigningKeyCache,
) -> Result<AuthHeader, SigV4Error> {
    let auth = parse_authorization(headers)?;
    let (path, query) = req.path_and_query();
    let signed = SignedRequest {
        method: req.method,
        path: &path,
        query: &query,
        headers,
        body: &req.body,
    };
    verify(&signed, &auth, secret, now, cache)?;
    Ok(auth)
}

fn set(headers: &mut HeaderMap, name: &'static str, value: &str) {
    headers.insert(HeaderName::from_static(name), HeaderValue::from_str(value).unwrap());
}

const CREATE_BODY: &str = r#"{"Name": "demo/db", "SecretString": "{\"u\":\"a\"}", "ClientRequestToken": "802dbdf7-e34d-4aac-9cdf-fefcf8905d47"}"#;

fn boto3_request() -> (Req, HeaderMap) {
    let req = Req::secretsmanager("CreateSecret", CREATE_BODY);
    let mut headers = Signer::default().sign(&req);
    // Headers botocore sends but does not sign.
    set(
        &mut headers,
        "amz-sdk-invocation-id",
        "0da03e4a-1111-2222-3333-444455556666",
    );
    set(&mut headers, "amz-sdk-request", "attempt=1; max=3");
    set(&mut headers, "content-length", &req.body.len().to_string());
    (req, headers)
}

// ---------------------------------------------------------------- accepted requests

#[test]
fn secretsmanager_post_signed_like_boto3_verifies() {
    let (req, headers) = boto3_request();
    let auth = check(&req, &headers, odt(t0())).unwrap();
    assert_eq!(
        auth.signed_headers,
        ["content-type", "host", "x-amz-date", "x-amz-target"]
    );
    assert_eq!(auth.credential.access_key_id, AKID);
    assert_eq!(auth.credential.date, "20261122");
    assert_eq!(auth.credential.region, REGION);
    assert_eq!(auth.credential.service, SERVICE);
    assert_eq!(auth.amz_date, "20261122T155824Z");
    auth.check_service("secretsmanager").unwrap();
}

#[test]
fn extra_signed_headers_verify() {
    let mut req = Req::secretsmanager("GetSecretValue", r#"{"SecretId":"demo/db"}"#);
    req.headers.push(("Content-Length".into(), req.body.len().to_string()));
    req.headers.push((
        "amz-sdk-invocation-id".into(),
        "0da03e4a-1111-2222-3333-444455556666".into(),
    ));
    req.headers.push(("amz-sdk-request".into(), "attempt=1;  max=3".into()));
    let mut signer = Signer::default();
    signer.settings.excluded_headers = Some(vec![Cow::Borrowed("authorization")]);
    let headers = signer.sign(&req);
    let auth = check(&req, &headers, odt(t0())).unwrap();
    assert_eq!(
        auth.signed_headers,
        [
            "amz-sdk-invocation-id",
            "amz-sdk-request",
            "content-length",
            "content-type",
            "host",
            "user-agent",
            "x-amz-date",
            "x-amz-target"
        ]
    );
}

#[test]
fn session_token_is_signed_and_verifies() {
    let req = Req::secretsmanager("ListSecrets", "{}");
    let signer = Signer {
        token: Some("IQoJb3JpZ2luX2VjEXAMPLE//token+with/odd=chars"),
        ..Signer::default()
    };
    let mut headers = signer.sign(&req);
    let auth = check(&req, &headers, odt(t0())).unwrap();
    assert!(auth.signed_headers.iter().any(|h| h == "x-amz-security-token"));
    set(&mut headers, "x-amz-security-token", "some-other-token");
    assert_eq!(
        check(&req, &headers, odt(t0())).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
}

#[test]
fn query_string_and_encoded_path_segments_verify() {
    let req = Req {
        method: "GET",
        url: "http://localhost:4566/v1/a%20b/c?b=2&a=1&a=0".to_owned(),
        headers: vec![],
        body: vec![],
    };
    let headers = Signer::default().sign(&req);
    check(&req, &headers, odt(t0())).unwrap();

    let req = Req {
        method: "GET",
        url: "https://coffer.example:8443/v1/%E2%9C%93/x:y/./z/../w?q=a%2Fb%20c&empty=&k=%7E~&flag".to_owned(),
        headers: vec![("Host".into(), "coffer.example:8443".into())],
        body: vec![],
    };
    let headers = Signer::default().sign(&req);
    check(&req, &headers, odt(t0())).unwrap();

    // A raw `+` in the query is a space (form encoding), a `%2B` is a plus.
    let req = Req {
        method: "GET",
        url: "http://localhost:4566/?q=a+b&r=a%2Bb&s=%20".to_owned(),
        headers: vec![],
        body: vec![],
    };
    let headers = Signer::default().sign(&req);
    check(&req, &headers, odt(t0())).unwrap();
}

#[test]
fn host_from_uri_with_default_and_custom_ports() {
    for url in ["http://127.0.0.1:8200/", "https://secrets.internal/"] {
        let req = Req {
            method: "POST",
            url: url.to_owned(),
            headers: vec![("X-Amz-Target".into(), "secretsmanager.ListSecrets".into())],
            body: b"{}".to_vec(),
        };
        let headers = Signer::default().sign(&req);
        check(&req, &headers, odt(t0())).unwrap();
    }
}

#[test]
fn x_amz_content_sha256_is_used_and_must_match_the_body() {
    let req = Req::secretsmanager("ListSecrets", r#"{"MaxResults":5}"#);
    let mut signer = Signer::default();
    signer.settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    let headers = signer.sign(&req);
    let auth = check(&req, &headers, odt(t0())).unwrap();
    assert!(auth.signed_headers.iter().any(|h| h == "x-amz-content-sha256"));

    // A declared hash that is not the body's is refused even though it is signed.
    let mut tampered = req.clone();
    tampered.body = br#"{"MaxResults":6}"#.to_vec();
    assert_eq!(
        check(&tampered, &headers, odt(t0())).unwrap_err(),
        SigV4Error::SignatureMismatch
    );

    // UNSIGNED-PAYLOAD: the signature is valid, but the body is not covered: refused.
    let signer = Signer {
        body: Some(SignableBody::UnsignedPayload),
        settings: {
            let mut s = SigningSettings::default();
            s.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
            s
        },
        ..Signer::default()
    };
    let headers = signer.sign(&req);
    assert_eq!(headers.get("x-amz-content-sha256").unwrap(), "UNSIGNED-PAYLOAD");
    assert_eq!(
        check(&req, &headers, odt(t0())).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
}

#[test]
fn authorization_without_spaces_after_commas_verifies() {
    let (req, mut headers) = boto3_request();
    let value = headers
        .get(http::header::AUTHORIZATION)
        .unwrap()
        .to_str()
        .unwrap()
        .replace(", ", ",");
    set(&mut headers, "authorization", &value);
    check(&req, &headers, odt(t0())).unwrap();
    let value = value.replace(',', "  ,  ").replacen(' ', "   ", 1);
    set(&mut headers, "authorization", &value);
    check(&req, &headers, odt(t0())).unwrap();
}

#[test]
fn unsigned_header_changed_still_verifies() {
    let (req, mut headers) = boto3_request();
    set(&mut headers, "user-agent", "curl/8.0");
    set(&mut headers, "amz-sdk-invocation-id", "changed");
    set(&mut headers, "x-forwarded-for", "10.0.0.1");
    check(&req, &headers, odt(t0())).unwrap();
}

#[test]
fn header_whitespace_is_canonicalised_like_the_signer() {
    let mut req = Req::secretsmanager("ListSecrets", "{}");
    req.headers.push(("X-Custom".into(), "  lots   of    spaces  ".into()));
    let headers = Signer::default().sign(&req);
    // The signer canonicalised the value; the wire still carries the raw spacing.
    check(&req, &headers, odt(t0())).unwrap();
}

// ---------------------------------------------------------------- rejected requests

#[test]
fn tampered_body_fails() {
    let (mut req, headers) = boto3_request();
    req.body = CREATE_BODY.replace("demo/db", "demo/dc").into_bytes();
    let err = check(&req, &headers, odt(t0())).unwrap_err();
    assert_eq!(err, SigV4Error::SignatureMismatch);
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "The request signature we calculated does not match the signature you provided. \
         Check your AWS Secret Access Key and signing method. Consult the service \
         documentation for details."
    );
    assert_eq!(err.http_status(), 400);
}

#[test]
fn tampered_signed_header_fails() {
    let (req, headers) = boto3_request();
    for (name, value) in [
        ("x-amz-target", "secretsmanager.DeleteSecret"),
        ("content-type", "application/json"),
        ("host", "evil.example:4566"),
    ] {
        let mut h = headers.clone();
        set(&mut h, name, value);
        assert_eq!(
            check(&req, &h, odt(t0())).unwrap_err(),
            SigV4Error::SignatureMismatch,
            "{name}"
        );
    }
    // A second value for a signed header changes its canonical form too.
    let mut h = headers.clone();
    h.append("x-amz-target", HeaderValue::from_static("secretsmanager.DeleteSecret"));
    assert_eq!(check(&req, &h, odt(t0())).unwrap_err(), SigV4Error::SignatureMismatch);
}

#[test]
fn tampered_path_query_or_method_fails() {
    let req = Req {
        method: "GET",
        url: "http://localhost:4566/v1/a%20b/c?b=2&a=1&a=0".to_owned(),
        headers: vec![],
        body: vec![],
    };
    let headers = Signer::default().sign(&req);
    for (method, url) in [
        ("GET", "http://localhost:4566/v1/a%20b/d?b=2&a=1&a=0"),
        ("GET", "http://localhost:4566/v1/a%20b/c?b=2&a=1&a=1"),
        ("GET", "http://localhost:4566/v1/a%20b/c?b=2&a=1"),
        ("POST", "http://localhost:4566/v1/a%20b/c?b=2&a=1&a=0"),
    ] {
        let other = Req {
            method,
            url: url.to_owned(),
            ..req.clone()
        };
        assert_eq!(
            check(&other, &headers, odt(t0())).unwrap_err(),
            SigV4Error::SignatureMismatch,
            "{method} {url}"
        );
    }
}

#[test]
fn wrong_secret_fails() {
    let (req, headers) = boto3_request();
    let wrong = SecretBytes::from_slice(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ");
    let err = check_with(&req, &headers, odt(t0()), &wrong, &SigningKeyCache::new()).unwrap_err();
    assert_eq!(err, SigV4Error::SignatureMismatch);
    assert!(!err.message().contains(SECRET));
}

#[test]
fn scope_rewritten_to_other_region_or_service_fails() {
    let (req, headers) = boto3_request();
    let original = headers
        .get(http::header::AUTHORIZATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    for (from, to) in [("/us-east-1/", "/eu-west-1/"), ("/secretsmanager/", "/kms/")] {
        let mut h = headers.clone();
        set(&mut h, "authorization", &original.replace(from, to));
        assert_eq!(
            check(&req, &h, odt(t0())).unwrap_err(),
            SigV4Error::SignatureMismatch,
            "{to}"
        );
    }
    // Signed for another service: verifies, but is refused by the service check.
    let signer = Signer {
        service: "kms",
        ..Signer::default()
    };
    let headers = signer.sign(&req);
    let auth = check(&req, &headers, odt(t0())).unwrap();
    let err = auth.check_service("secretsmanager").unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "Credential should be scoped to correct service: 'secretsmanager'."
    );
}

#[test]
fn bad_scope_terminator_and_date_fail_with_aws_messages() {
    let (req, headers) = boto3_request();
    let original = headers
        .get(http::header::AUTHORIZATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let mut h = headers.clone();
    set(
        &mut h,
        "authorization",
        &original
            .replace("/aws4_request", "/aws5_request")
            .replace("/20261122/", "/20261121/"),
    );
    let err = check(&req, &h, odt(t0())).unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "Credential should be scoped with a valid terminator: 'aws4_request', not \
         'aws5_request'. Date in Credential scope does not match YYYYMMDD from ISO-8601 \
         version of date from HTTP: '20261121' != '20261122', from '20261122T155824Z'."
    );

    let mut h = headers.clone();
    set(&mut h, "authorization", &original.replace("/us-east-1/", "/us_east 1/"));
    let err = parse_authorization(&h).unwrap_err();
    assert_eq!(err.code(), "IncompleteSignatureException");
}

#[test]
fn clock_skew() {
    let (req, headers) = boto3_request();
    let signed_at = odt(t0());
    let minutes = |m: i64| time::Duration::minutes(m);

    // Request signed 6 minutes ago.
    let err = check(&req, &headers, signed_at + minutes(6)).unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "Signature expired: 20261122T155824Z is now earlier than 20261122T155924Z \
         (20261122T160424Z - 5 min.)"
    );

    // Request dated 6 minutes in the future.
    let err = check(&req, &headers, signed_at - minutes(6)).unwrap_err();
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "Signature not yet current: 20261122T155824Z is still later than 20261122T155724Z \
         (20261122T155224Z + 5 min.)"
    );

    // Within the window either way, including exactly 5 minutes and sub-second clocks.
    for now in [
        signed_at + minutes(4),
        signed_at - minutes(4),
        signed_at + minutes(5),
        signed_at - minutes(5),
        signed_at + time::Duration::milliseconds(300_999),
    ] {
        check(&req, &headers, now).unwrap();
    }

    // The request signed by aws-sigv4 at a time 6 minutes off is rejected by check_skew
    // alone, before any key lookup.
    let signer = Signer {
        time: t0() - StdDuration::from_secs(360),
        ..Signer::default()
    };
    let headers = signer.sign(&req);
    let auth = parse_authorization(&headers).unwrap();
    assert!(matches!(
        auth.check_skew(signed_at),
        Err(SigV4Error::SignatureExpired { .. })
    ));
}

#[test]
fn date_header_is_the_fallback_and_x_amz_date_wins() {
    let (_, headers) = boto3_request();
    let amz_date = headers.get("x-amz-date").unwrap().clone();

    let mut h = headers.clone();
    h.remove("x-amz-date");
    h.insert(http::header::DATE, amz_date);
    assert_eq!(parse_authorization(&h).unwrap().amz_date, "20261122T155824Z");

    let mut h = headers.clone();
    set(&mut h, "date", "20991231T000000Z");
    assert_eq!(parse_authorization(&h).unwrap().amz_date, "20261122T155824Z");
}

#[test]
fn missing_authorization() {
    let (_, mut headers) = boto3_request();
    headers.remove(http::header::AUTHORIZATION);
    let err = parse_authorization(&headers).unwrap_err();
    assert_eq!(err, SigV4Error::MissingAuthenticationToken);
    assert_eq!(err.code(), "MissingAuthenticationTokenException");
    assert_eq!(err.message(), "Missing Authentication Token");
    assert_eq!(err.http_status(), 400);

    // A non-AWS4 scheme is treated as no AWS authentication at all.
    set(&mut headers, "authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x");
    assert_eq!(
        parse_authorization(&headers).unwrap_err(),
        SigV4Error::MissingAuthenticationToken
    );
}

fn incomplete(authorization: &str, with_date: bool) -> String {
    let mut headers = HeaderMap::new();
    set(&mut headers, "authorization", authorization);
    if with_date {
        set(&mut headers, "x-amz-date", "20261122T155824Z");
    }
    let err = parse_authorization(&headers).unwrap_err();
    assert_eq!(err.code(), "IncompleteSignatureException", "{authorization}");
    err.message()
}

#[test]
fn malformed_authorization_headers() {
    let sig = "Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let cred = "Credential=AKID/20261122/us-east-1/secretsmanager/aws4_request";
    let signed = "SignedHeaders=content-type;host;x-amz-date;x-amz-target";

    assert_eq!(
        incomplete("AWS4-HMAC-SHA256", false),
        "Authorization header requires 'Credential' parameter. Authorization header requires \
         'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
         Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
         Authorization=AWS4-HMAC-SHA256"
    );
    let h = format!("AWS4-HMAC-SHA256 {signed}, {sig}");
    assert_eq!(
        incomplete(&h, true),
        format!("Authorization header requires 'Credential' parameter. Authorization={h}")
    );
    let h = format!("AWS4-HMAC-SHA256 {cred}, {sig}");
    assert_eq!(
        incomplete(&h, true),
        format!("Authorization header requires 'SignedHeaders' parameter. Authorization={h}")
    );
    let h = format!("AWS4-HMAC-SHA256 {cred}, {signed}");
    assert_eq!(
        incomplete(&h, true),
        format!("Authorization header requires 'Signature' parameter. Authorization={h}")
    );
    let h = format!("AWS4-HMAC-SHA256 {cred}, {signed}, {sig}");
    assert_eq!(
        incomplete(&h, false),
        format!(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. Authorization={h}"
        )
    );

    // Garbage.
    let h = "AWS4-HMAC-SHA256 garbage, more garbage";
    assert_eq!(
        incomplete(h, true),
        format!(
            "'garbage' not a valid key=value pair (missing equal-sign) in Authorization \
             header: '{h}'"
        )
    );
    // A space inside the credential (a pasted key with a stray blank).
    let h = format!("AWS4-HMAC-SHA256 Credential= AKID/20261122/us-east-1/kms/aws4_request, {signed}, {sig}");
    assert!(incomplete(&h, true).starts_with("'AKID/20261122/us-east-1/kms/aws4_request' not a valid key=value pair"));

    // Unsupported algorithm.
    let h = format!("AWS4-HMAC-SHA512 {cred}, {signed}, {sig}");
    assert_eq!(
        incomplete(&h, true),
        "Unsupported AWS 'algorithm': 'AWS4-HMAC-SHA512' (only AWS4-HMAC-SHA256 for now). "
    );

    // Credential with the wrong number of parts.
    let h = format!("AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1, {signed}, {sig}");
    assert_eq!(
        incomplete(&h, true),
        "Credential must have exactly 5 slash-delimited elements, e.g. \
         keyid/date/region/service/term, got 'AKID/20261122/us-east-1'"
    );

    // Date not in ISO 8601 basic format.
    let mut headers = HeaderMap::new();
    set(
        &mut headers,
        "authorization",
        &format!("AWS4-HMAC-SHA256 {cred}, {signed}, {sig}"),
    );
    set(&mut headers, "date", "Sun, 22 Nov 2026 15:58:24 GMT");
    let err = parse_authorization(&headers).unwrap_err();
    assert_eq!(err.code(), "IncompleteSignatureException");
    assert_eq!(
        err.message(),
        "Date must be in ISO-8601 'basic format'. Got 'Sun, 22 Nov 2026 15:58:24 GMT'. See \
         http://en.wikipedia.org/wiki/ISO_8601"
    );
}

#[test]
fn host_must_be_signed() {
    let mut headers = HeaderMap::new();
    set(
        &mut headers,
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKID/20261122/us-east-1/secretsmanager/aws4_request, \
         SignedHeaders=content-type;x-amz-date;x-amz-target, Signature=00",
    );
    set(&mut headers, "x-amz-date", "20261122T155824Z");
    let err = parse_authorization(&headers).unwrap_err();
    assert_eq!(err, SigV4Error::HostNotSigned);
    assert_eq!(err.code(), "InvalidSignatureException");
    assert_eq!(
        err.message(),
        "'Host' must be a 'SignedHeader' in the AWS Authorization."
    );
}

#[test]
fn malformed_signature_value_fails_as_mismatch() {
    let (req, headers) = boto3_request();
    let original = headers
        .get(http::header::AUTHORIZATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let (prefix, sig) = original.split_once("Signature=").unwrap();
    for bad in [String::new(), "zz".repeat(32), sig[..62].to_owned(), format!("{sig}00")] {
        let mut h = headers.clone();
        set(&mut h, "authorization", &format!("{prefix}Signature={bad}"));
        assert_eq!(check(&req, &h, odt(t0())).unwrap_err(), SigV4Error::SignatureMismatch);
    }
    // Upper-case hex of the right signature is the same bytes.
    let mut h = headers.clone();
    set(
        &mut h,
        "authorization",
        &format!("{prefix}Signature={}", sig.to_ascii_uppercase()),
    );
    check(&req, &h, odt(t0())).unwrap();
}

#[test]
fn unrecognized_client_variant() {
    let err = SigV4Error::UnrecognizedClient;
    assert_eq!(err.code(), "UnrecognizedClientException");
    assert_eq!(err.message(), "The security token included in the request is invalid.");
    assert_eq!(err.http_status(), 400);
}

// ---------------------------------------------------------------- signing-key cache

#[test]
fn derive_signing_key_matches_the_aws_documentation_example() {
    // "Examples of how to derive a signing key for Signature Version 4" (AWS General
    // Reference): secret wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20120215, us-east-1, iam.
    let key = derive_signing_key(
        b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "20120215",
        "us-east-1",
        "iam",
    );
    assert_eq!(
        hex::encode(key.expose()),
        "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    );
}

#[test]
fn cache_returns_same_key_and_is_hit_on_second_call() {
    let cache = SigningKeyCache::new();
    let (req, headers) = boto3_request();
    let auth = check_with(&req, &headers, odt(t0()), &secret(), &cache).unwrap();
    assert_eq!((cache.hits(), cache.misses(), cache.len()), (0, 1, 1));
    check_with(&req, &headers, odt(t0()), &secret(), &cache).unwrap();
    assert_eq!((cache.hits(), cache.misses(), cache.len()), (1, 1, 1));

    let first = cache.signing_key(&secret(), &auth.credential);
    let second = cache.signing_key(&secret(), &auth.credential);
    assert!(first == second);
    let direct = derive_signing_key(SECRET.as_bytes(), "20261122", REGION, SERVICE);
    assert!(first == direct);
    assert_eq!(cache.hits(), 3);
}

#[test]
fn cache_never_serves_a_key_for_a_changed_secret() {
    let cache = SigningKeyCache::new();
    let (req, headers) = boto3_request();
    check_with(&req, &headers, odt(t0()), &secret(), &cache).unwrap();
    let rotated = SecretBytes::from_slice(b"a-brand-new-secret-access-key-000000000");
    assert_eq!(
        check_with(&req, &headers, odt(t0()), &rotated, &cache).unwrap_err(),
        SigV4Error::SignatureMismatch
    );
    assert_eq!(cache.hits(), 0);
    assert_eq!(cache.len(), 2);
}

#[test]
fn cache_is_bounded() {
    let cache = SigningKeyCache::with_max_entries(3);
    let secret = secret();
    for i in 0..10 {
        let credential = coffer_sigv4::Credential {
            access_key_id: format!("AKID{i}"),
            date: "20261122".into(),
            region: REGION.into(),
            service: SERVICE.into(),
        };
        cache.signing_key(&secret, &credential);
        assert!(cache.len() <= 3);
    }
    assert_eq!(cache.misses(), 10);
    cache.clear();
    assert!(cache.is_empty());
}

#[test]
fn cache_is_shared_across_threads() {
    let cache = SigningKeyCache::new();
    let (req, headers) = boto3_request();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..20 {
                    check_with(&req, &headers, odt(t0()), &secret(), &cache).unwrap();
                }
            });
        }
    });
    assert_eq!(cache.hits() + cache.misses(), 160);
    assert_eq!(cache.len(), 1);
}

// ---------------------------------------------------------------- property tests

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn aws_sigv4_signed_requests_verify_and_any_body_byte_change_fails(
        body in proptest::collection::vec(any::<u8>(), 0..512),
        custom in "[ -~]{0,40}",
        target in "[A-Za-z]{1,20}",
        flip_at in any::<prop::sample::Index>(),
        flip_bits in 1u8..=255,
    ) {
        let mut req = Req::secretsmanager(&target, "");
        req.body = body;
        // Leading/trailing spaces are not what a server sees (HTTP strips them).
        req.headers.push(("X-Custom-Value".into(), custom.trim_matches(' ').to_owned()));
        let headers = Signer::default().sign(&req);
        prop_assert!(check(&req, &headers, odt(t0())).is_ok());

        if !req.body.is_empty() {
            let i = flip_at.index(req.body.len());
            req.body[i] ^= flip_bits;
            prop_assert_eq!(
                check(&req, &headers, odt(t0())).unwrap_err(),
                SigV4Error::SignatureMismatch
            );
        }
    }

    #[test]
    fn random_paths_and_queries_verify(
        segments in proptest::collection::vec("[a-zA-Z0-9 ._~!$&'()*+,;=:@%-]{0,8}", 0..4),
        params in proptest::collection::vec(("[a-zA-Z0-9 ._~/+=-]{0,6}", "[a-zA-Z0-9 ._~/+=-]{0,6}"), 0..4),
    ) {
        use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
        let path: Vec<String> = segments
            .iter()
            .map(|s| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string())
            .collect();
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!(
                "{}={}",
                utf8_percent_encode(k, NON_ALPHANUMERIC),
                utf8_percent_encode(v, NON_ALPHANUMERIC)
            ))
            .collect();
        let mut url = format!("http://localhost:4566/{}", path.join("/"));
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query.join("&"));
        }
        let req = Req { method: "GET", url, headers: vec![], body: vec![] };
        let headers = Signer::default().sign(&req);
        prop_assert!(check(&req, &headers, odt(t0())).is_ok(), "{}", req.url);
    }
}

#[path = "oracle/fuzz.rs"]
mod fuzz;
