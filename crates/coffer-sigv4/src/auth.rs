//! Parsing of the `Authorization: AWS4-HMAC-SHA256 ...` header and of the request date.
//!
//! [`parse_authorization`] runs every check that needs neither the clock nor the secret key,
//! in the order AWS's JSON services run them: scheme, `key=value` syntax, required
//! parameters and date header, date format, `host` signed, algorithm, credential shape,
//! credential scope. Clock skew ([`AuthHeader::check_skew`]) and the signature itself
//! ([`crate::verify`]) come after the caller has looked the access key up.

use http::HeaderMap;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, macros::format_description};

use crate::error::SigV4Error;

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The credential scope terminator.
pub const TERMINATOR: &str = "aws4_request";
/// How far the request date may be from the server clock, in either direction.
pub const MAX_SKEW: Duration = Duration::minutes(5);

/// The `Credential=` parameter: `<access key id>/<yyyymmdd>/<region>/<service>/aws4_request`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Credential {
    /// The access key id, as sent.
    pub access_key_id: String,
    /// The scope date, `yyyymmdd`.
    pub date: String,
    /// The region the client signed for.
    pub region: String,
    /// The signing name of the service (`secretsmanager`, `ssm`, `kms`).
    pub service: String,
}

impl Credential {
    /// The credential scope line of the string to sign: `date/region/service/aws4_request`.
    pub fn scope(&self) -> String {
        format!("{}/{}/{}/{TERMINATOR}", self.date, self.region, self.service)
    }
}

/// A parsed, structurally valid `Authorization` header plus the request date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthHeader {
    /// The credential scope.
    pub credential: Credential,
    /// Lower-cased signed header names, in the order the client listed them.
    pub signed_headers: Vec<String>,
    /// The signature, as sent (hex).
    pub signature: String,
    /// The date header value (`X-Amz-Date`, else `Date`), as sent: `yyyymmddThhmmssZ`.
    pub amz_date: String,
    /// `amz_date`, parsed (UTC).
    pub timestamp: OffsetDateTime,
}

impl AuthHeader {
    /// Fails with `Signature expired` / `Signature not yet current` when the request date is
    /// more than five minutes away from `now`.
    pub fn check_skew(&self, now: OffsetDateTime) -> Result<(), SigV4Error> {
        let now = now.replace_nanosecond(0).unwrap_or(now);
        let earliest = now - MAX_SKEW;
        let latest = now + MAX_SKEW;
        if self.timestamp < earliest {
            return Err(SigV4Error::SignatureExpired {
                amz_date: self.amz_date.clone(),
                limit: earliest,
                now,
            });
        }
        if self.timestamp > latest {
            return Err(SigV4Error::SignatureNotYetCurrent {
                amz_date: self.amz_date.clone(),
                limit: latest,
                now,
            });
        }
        Ok(())
    }

    /// Fails unless the credential is scoped to `service` (the signing name selected by the
    /// request's `X-Amz-Target`).
    pub fn check_service(&self, service: &str) -> Result<(), SigV4Error> {
        if self.credential.service == service {
            Ok(())
        } else {
            Err(SigV4Error::InvalidScope(format!(
                "Credential should be scoped to correct service: '{service}'."
            )))
        }
    }
}

/// Headers that, when present, must be among the signed headers: each changes what the request
/// does (`x-amz-target`: the operation) or who makes it (`x-amz-security-token`: the session),
/// so an unsigned one could be swapped by anyone on the path without breaking the signature.
pub const MUST_BE_SIGNED: &[&str] = &["x-amz-target", "x-amz-security-token"];

/// All values of header `name`, joined by `,` as the canonical request joins them (a header
/// sent twice is read as the signature covers it, never as its first copy alone).
fn joined(headers: &HeaderMap, name: impl http::header::AsHeaderName + Copy) -> Option<String> {
    let mut values = headers.get_all(name).iter();
    let first = values.next()?;
    let mut out = String::from_utf8_lossy(first.as_bytes()).into_owned();
    for v in values {
        out.push(',');
        out.push_str(&String::from_utf8_lossy(v.as_bytes()));
    }
    Some(out)
}

/// Parses and structurally validates the `Authorization` header and the date header.
///
/// A header sent more than once is read as all its values joined by `,` (as the canonical
/// request has it): two `Authorization` headers make one malformed header, two dates one
/// malformed date.
pub fn parse_authorization(headers: &HeaderMap) -> Result<AuthHeader, SigV4Error> {
    let raw = match joined(headers, &http::header::AUTHORIZATION) {
        Some(v) => v,
        None => return Err(SigV4Error::MissingAuthenticationToken),
    };
    let trimmed = raw.trim();
    if !trimmed.starts_with("AWS4-") {
        return Err(SigV4Error::MissingAuthenticationToken);
    }
    let (algorithm, rest) = match trimmed.split_once(|c: char| c.is_ascii_whitespace()) {
        Some((a, r)) => (a, r),
        None => (trimmed, ""),
    };

    // Parameters are separated by commas and/or whitespace (boto3 sends ", ", some clients
    // send "," alone, some a single space).
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for token in rest
        .split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|t| !t.is_empty())
    {
        let Some((key, value)) = token.split_once('=') else {
            return Err(SigV4Error::IncompleteSignature(format!(
                "'{token}' not a valid key=value pair (missing equal-sign) in Authorization \
                 header: '{raw}'"
            )));
        };
        match key {
            "Credential" => credential = Some(value),
            "SignedHeaders" => signed_headers = Some(value),
            "Signature" => signature = Some(value),
            _ => {}
        }
    }

    let date_header = joined(headers, "x-amz-date").or_else(|| joined(headers, &http::header::DATE));

    let mut missing = String::new();
    if credential.is_none() {
        missing.push_str("Authorization header requires 'Credential' parameter. ");
    }
    if signature.is_none() {
        missing.push_str("Authorization header requires 'Signature' parameter. ");
    }
    if signed_headers.is_none() {
        missing.push_str("Authorization header requires 'SignedHeaders' parameter. ");
    }
    if date_header.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header. ",
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(date_header)) =
        (credential, signed_headers, signature, date_header)
    else {
        return Err(SigV4Error::IncompleteSignature(format!("{missing}Authorization={raw}")));
    };

    let amz_date = date_header;
    let timestamp = parse_amz_date(&amz_date).ok_or_else(|| {
        SigV4Error::IncompleteSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See \
             http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;

    let signed_headers: Vec<String> = signed_headers
        .split(';')
        .filter(|h| !h.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::HostNotSigned);
    }
    for name in MUST_BE_SIGNED {
        if headers.contains_key(*name) && !signed_headers.iter().any(|h| h == name) {
            return Err(SigV4Error::HeaderNotSigned(name));
        }
    }

    if algorithm != ALGORITHM {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM} for now). "
        )));
    }

    let parts: Vec<&str> = credential.trim_end_matches('/').split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts.as_slice() else {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. \
             keyid/date/region/service/term, got '{credential}'"
        )));
    };

    let mut problems = Vec::new();
    if region.is_empty() || !region.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        problems.push(format!(
            "Credential should be scoped to a valid region, not '{region}'."
        ));
    }
    if service.is_empty() {
        problems.push("Credential should be scoped to correct service: ''.".to_owned());
    }
    if *terminator != TERMINATOR {
        problems.push(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not \
             '{terminator}'."
        ));
    }
    let http_date = amz_date.get(..8).unwrap_or(&amz_date);
    if *date != http_date {
        problems.push(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '{date}' != '{http_date}', from '{amz_date}'."
        ));
    }
    if !problems.is_empty() {
        return Err(SigV4Error::InvalidScope(problems.join(" ")));
    }

    Ok(AuthHeader {
        credential: Credential {
            access_key_id: (*access_key_id).to_owned(),
            date: (*date).to_owned(),
            region: (*region).to_owned(),
            service: (*service).to_owned(),
        },
        signed_headers,
        signature: signature.to_owned(),
        amz_date,
        timestamp,
    })
}

/// Parses `yyyymmddThhmmssZ` (UTC). Anything else, including extra characters, is `None`.
fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let b = s.as_bytes();
    let shape_ok =
        b.len() == 16 && b[8] == b'T' && b[15] == b'Z' && b[..8].iter().chain(&b[9..15]).all(u8::is_ascii_digit);
    if !shape_ok {
        return None;
    }
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(s, format)
        .ok()
        .map(PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn amz_date_shapes() {
        assert!(parse_amz_date("20261122T155824Z").is_some());
        for bad in [
            "20261122T155824",
            "2026-11-22T15:58:24Z",
            "20261322T155824Z",
            "20261122T255824Z",
            "+0261122T155824Z",
            "20261122T155824Z ",
            "",
        ] {
            assert!(parse_amz_date(bad).is_none(), "{bad}");
        }
    }
}
