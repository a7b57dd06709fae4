//! Fuzz target `sigv4_request`: raw HTTP requests signed by `aws-sigv4`, mutated, then
//! parsed and verified as the server does. Property: parsing and verification never panic
//! and never hang, and a request that verifies is one the signer signed: it carries a seed's
//! signature over the same method, body, signed-header list and signed header values (a
//! mutation cannot forge an HMAC, so anything else that verifies is a canonicalization bug).

use coffer_fuzz::Fuzz;
use coffer_sigv4::{SignedRequest, SigningKeyCache, parse_authorization, verify};
use http::{HeaderMap, HeaderName, HeaderValue};

use super::{Req, Signer, boto3_request, secret};

/// A request as text: `METHOD target`, `name: value` lines, an empty line, the body.
struct Raw {
    method: String,
    path: String,
    query: String,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Raw {
    fn parse(input: &[u8]) -> Option<Self> {
        let split = input.windows(2).position(|w| w == b"\n\n");
        let (head, body) = match split {
            Some(i) => (&input[..i], input[i + 2..].to_vec()),
            None => (input, Vec::new()),
        };
        let head = std::str::from_utf8(head).ok()?;
        let mut lines = head.split('\n');
        let (method, target) = lines.next()?.split_once(' ')?;
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let mut headers = HeaderMap::new();
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.trim().as_bytes()),
                HeaderValue::from_str(value.trim()),
            ) {
                headers.append(n, v);
            }
        }
        Some(Self {
            method: method.to_owned(),
            path: path.to_owned(),
            query: query.to_owned(),
            headers,
            body,
        })
    }

    fn render(req: &Req, headers: &HeaderMap) -> Vec<u8> {
        let (path, query) = req.path_and_query();
        let target = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        let mut out = format!("{} {target}\n", req.method).into_bytes();
        for (name, value) in headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&req.body);
        out
    }

    /// A signed header's value as the canonical request holds it.
    fn canonical(&self, name: &str) -> Vec<String> {
        self.headers
            .get_all(name)
            .iter()
            .map(|v| {
                String::from_utf8_lossy(v.as_bytes())
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();
    let (req, headers) = boto3_request();
    seeds.push(("create-secret-boto3", Raw::render(&req, &headers)));

    let req = Req::secretsmanager("ListSecrets", "{}");
    let signer = Signer {
        token: Some("IQoJb3JpZ2luX2VjEXAMPLE//token+with/odd=chars"),
        ..Signer::default()
    };
    seeds.push(("list-secrets-session-token", Raw::render(&req, &signer.sign(&req))));

    let req = Req::secretsmanager("GetSecretValue", r#"{"SecretId":"demo/db"}"#);
    let mut signer = Signer::default();
    signer.settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
    seeds.push(("get-secret-value-content-sha256", Raw::render(&req, &signer.sign(&req))));

    let req = Req {
        method: "GET",
        url: "https://coffer.example:8443/v1/%E2%9C%93/x:y/./z/../w?q=a%2Fb%20c&empty=&k=%7E~&flag&b=2&a=1&a=0"
            .to_owned(),
        headers: vec![
            ("Host".into(), "coffer.example:8443".into()),
            ("X-Custom".into(), "  spaced   out  value ".into()),
        ],
        body: vec![],
    };
    seeds.push(("get-path-and-query", Raw::render(&req, &Signer::default().sign(&req))));

    let req = Req {
        method: "POST",
        url: "http://127.0.0.1:8200/".to_owned(),
        headers: vec![(
            "Content-Type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        body: b"Action=GetCallerIdentity&Version=2011-06-15".to_vec(),
    };
    let signer = Signer {
        service: "sts",
        ..Signer::default()
    };
    seeds.push(("sts-query", Raw::render(&req, &signer.sign(&req))));
    seeds
}

#[test]
fn fuzz_sigv4_request() {
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "sigv4_request")
        .seeds(seeds())
        .dictionary(&[
            "Authorization: ",
            "AWS4-HMAC-SHA256 ",
            "Credential=",
            "SignedHeaders=",
            "Signature=",
            "/aws4_request",
            "x-amz-date: ",
            "20261122T155824Z",
            "x-amz-content-sha256: ",
            "UNSIGNED-PAYLOAD",
            "host;",
            ";x-amz-date",
            "\nhost: a\n",
            "%2F",
            "/../",
            "/./",
            "//",
        ]);
    let seeds: Vec<Raw> = fuzz.inputs().iter().filter_map(|(_, b)| Raw::parse(b)).collect();
    let cache = SigningKeyCache::new();
    for seed in &seeds {
        let auth = parse_authorization(&seed.headers).unwrap();
        let req = SignedRequest {
            method: &seed.method,
            path: &seed.path,
            query: &seed.query,
            headers: &seed.headers,
            body: &seed.body,
        };
        verify(&req, &auth, &secret(), auth.timestamp, &cache).unwrap();
    }
    fuzz.run(|input| {
        let Some(raw) = Raw::parse(input) else { return };
        let Ok(auth) = parse_authorization(&raw.headers) else {
            return;
        };
        let _ = auth.check_service("secretsmanager");
        let _ = auth.credential.scope();
        let req = SignedRequest {
            method: &raw.method,
            path: &raw.path,
            query: &raw.query,
            headers: &raw.headers,
            body: &raw.body,
        };
        if verify(&req, &auth, &secret(), auth.timestamp, &cache).is_err() {
            return;
        }
        let seed = seeds
            .iter()
            .find(|s| parse_authorization(&s.headers).is_ok_and(|a| a.signature.eq_ignore_ascii_case(&auth.signature)))
            .expect("a verified request carries a seed's signature");
        let seed_auth = parse_authorization(&seed.headers).unwrap();
        assert_eq!(raw.method, seed.method);
        assert_eq!(raw.body, seed.body);
        assert_eq!(auth.signed_headers, seed_auth.signed_headers);
        for name in &auth.signed_headers {
            assert_eq!(raw.canonical(name), seed.canonical(name), "signed header {name}");
        }
    });
    // Differential: raw paths and queries (reserved characters, stray `%`, dot segments,
    // empty segments) signed by aws-sigv4 must verify.
    fuzz.run_generated(
        (
            "(/[a-zA-Z0-9%._~!$&'()*+,;=:@-]{0,6}){0,4}/?",
            "[a-zA-Z0-9%._~!$&'()*+,;=:@/?-]{0,24}",
        ),
        |(path, query)| {
            let path = if path.is_empty() { "/".to_owned() } else { path };
            let url = if query.is_empty() {
                format!("http://localhost:4566{path}")
            } else {
                format!("http://localhost:4566{path}?{query}")
            };
            url.into_bytes()
        },
        |url| {
            let url = String::from_utf8_lossy(url).into_owned();
            if url.parse::<http::Uri>().is_err() {
                return;
            }
            // An escape of a byte that is not UTF-8 (`?%aa`): aws-sigv4 decodes the query
            // lossily (U+FFFD) where Coffer keeps the byte (`%AA`, as the SigV4 rules say);
            // the two signers disagree there, so the oracle has no answer.
            let query = url.split_once('?').map_or("", |(_, q)| q);
            if std::str::from_utf8(&percent_encoding::percent_decode_str(query).collect::<Vec<u8>>()).is_err() {
                return;
            }
            let req = Req {
                method: "GET",
                url,
                headers: vec![],
                body: vec![],
            };
            let Some(headers) = Signer::default().try_sign(&req) else {
                return;
            };
            let (path, query) = req.path_and_query();
            let auth = parse_authorization(&headers).unwrap();
            let signed = SignedRequest {
                method: req.method,
                path: &path,
                query: &query,
                headers: &headers,
                body: &req.body,
            };
            assert_eq!(
                verify(&signed, &auth, &secret(), auth.timestamp, &cache),
                Ok(()),
                "{}",
                req.url
            );
        },
    );
}

/// Found by `fuzz_sigv4_request` (minimal input `?%aa`): a query escape of a byte that is
/// not UTF-8 is canonicalized as that byte (`%AA`), as the SigV4 rules say; aws-sigv4 decodes
/// the query lossily and signs `%EF%BF%BD` (U+FFFD) instead, so its signature does not verify
/// here. Kept as it is: the rules are on Coffer's side and no AWS API sends binary queries;
/// this test records the disagreement so a change to either side is seen.
#[test]
fn non_utf8_query_escape_is_kept_as_the_byte() {
    let req = Req {
        method: "GET",
        url: "http://localhost:4566/?%aa".to_owned(),
        headers: vec![],
        body: vec![],
    };
    let headers = Signer::default().sign(&req);
    let auth = parse_authorization(&headers).unwrap();
    let signed = SignedRequest {
        method: req.method,
        path: "/",
        query: "%aa",
        headers: &headers,
        body: &req.body,
    };
    let cache = SigningKeyCache::new();
    assert_eq!(
        verify(&signed, &auth, &secret(), auth.timestamp, &cache),
        Err(coffer_sigv4::SigV4Error::SignatureMismatch)
    );
    // The same byte sent as valid UTF-8 (`%C2%AA`, U+00AA) verifies.
    let utf8 = Req {
        url: "http://localhost:4566/?%C2%AA".to_owned(),
        ..req.clone()
    };
    let headers = Signer::default().sign(&utf8);
    let auth = parse_authorization(&headers).unwrap();
    let signed = SignedRequest {
        query: "%C2%AA",
        headers: &headers,
        ..signed
    };
    assert_eq!(verify(&signed, &auth, &secret(), auth.timestamp, &cache), Ok(()));
}
