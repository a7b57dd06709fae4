//! The SigV4 canonical request, built from the request exactly as it arrived.
//!
//! Rules (non-S3 services, as AWS SDKs sign them):
//! - URI: the raw (already percent-encoded) path, with `.`/`..` segments resolved and empty
//!   segments dropped, then percent-encoded once more, keeping only RFC 3986 unreserved
//!   characters and `/` (so `%20` becomes `%2520`);
//! - query: `&`-separated pairs (a pair without `=` has an empty value, empty pairs are
//!   skipped), each name and value percent-decoded (`+` is a space) and re-encoded with the
//!   RFC 3986 unreserved set, sorted by name then value;
//! - headers: for each signed name, `name:value` where each value has leading/trailing
//!   spaces and tabs trimmed and inner runs of spaces collapsed, several values joined by `,`.
//!
//! Everything is handled as bytes, so header values that are not UTF-8 are still hashed as
//! the client would have.

use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode, percent_encode};

/// Everything but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`).
const QUERY_SET: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~');
/// As [`QUERY_SET`], but `/` stays (path separators).
const PATH_SET: &AsciiSet = &QUERY_SET.remove(b'/');

/// The canonical URI for a raw request path.
pub(crate) fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in raw_path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::with_capacity(raw_path.len() + 1);
    normalized.push('/');
    normalized.push_str(&segments.join("/"));
    let ends_with_slash = ["/", "/.", "/..", "/./", "/../"]
        .iter()
        .any(|end| raw_path.ends_with(end));
    if ends_with_slash && !normalized.ends_with('/') {
        normalized.push('/');
    }
    percent_encode(normalized.as_bytes(), PATH_SET).to_string()
}

/// The canonical query string for a raw query (without the `?`).
pub(crate) fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (reencode_query_component(name), reencode_query_component(value))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(raw_query.len() + 8);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

fn reencode_query_component(raw: &str) -> String {
    let plus_as_space: Vec<u8> = raw.bytes().map(|b| if b == b'+' { b' ' } else { b }).collect();
    let decoded: Vec<u8> = percent_decode(&plus_as_space).collect();
    percent_encode(&decoded, QUERY_SET).to_string()
}

/// Appends `name:v1,v2\n` for one signed header (an absent header gives `name:\n`).
fn push_canonical_header(out: &mut Vec<u8>, headers: &HeaderMap, name: &str) {
    out.extend_from_slice(name.as_bytes());
    out.push(b':');
    for (i, value) in headers.get_all(name).iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_trimmed_value(out, value.as_bytes());
    }
    out.push(b'\n');
}

/// Trims spaces and tabs at both ends and collapses runs of spaces to one.
fn push_trimmed_value(out: &mut Vec<u8>, value: &[u8]) {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    let mut previous_space = false;
    for &b in &value[start..end] {
        if b == b' ' {
            if previous_space {
                continue;
            }
            previous_space = true;
        } else {
            previous_space = false;
        }
        out.push(b);
    }
}

/// The full canonical request.
pub(crate) fn canonical_request(
    method: &str,
    raw_path: &str,
    raw_query: &str,
    headers: &HeaderMap,
    signed_headers: &[String],
    payload_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_uri(raw_path).as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(raw_query).as_bytes());
    out.push(b'\n');
    for name in signed_headers {
        push_canonical_header(&mut out, headers, name);
    }
    out.push(b'\n');
    out.extend_from_slice(signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn uri() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("/v1/a%20b/c"), "/v1/a%2520b/c");
        assert_eq!(canonical_uri("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(canonical_uri("/a/b/.."), "/a/");
        assert_eq!(canonical_uri("/~user/x-y_z.txt"), "/~user/x-y_z.txt");
        assert_eq!(canonical_uri("/a:b@c"), "/a%3Ab%40c");
    }

    #[test]
    fn query() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("x&y="), "x=&y=");
        assert_eq!(canonical_query("a=b+c&d=%7e%2B"), "a=b%20c&d=~%2B");
        assert_eq!(canonical_query("k=a/b:c&&"), "k=a%2Fb%3Ac");
    }

    #[test]
    fn header_values() {
        let mut out = Vec::new();
        push_trimmed_value(&mut out, b"  a   b \t c  ");
        assert_eq!(out, b"a b \t c");
        let mut headers = HeaderMap::new();
        headers.append("x-multi", "one".parse().unwrap());
        headers.append("x-multi", " two  three ".parse().unwrap());
        let mut out = Vec::new();
        push_canonical_header(&mut out, &headers, "x-multi");
        push_canonical_header(&mut out, &headers, "x-absent");
        assert_eq!(out, b"x-multi:one,two three\nx-absent:\n");
    }
}
