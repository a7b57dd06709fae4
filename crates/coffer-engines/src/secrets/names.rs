//! Secret names, ARNs, `SecretId` resolution rules and the storage key layout.
//!
//! Storage layout (all inside the engine's own storage view):
//!
//! ```text
//! <account>/<region>/secrets/<name>/meta             one SecretRecord per secret (model.rs)
//! <account>/<region>/secrets/<name>/versions/<vid>   one value per secret version
//! <account>/<region>/created/<ns>/<name>              the creation-order index: one empty
//!                                                     value per secret (`<ns>`: 20 digits)
//! created-index                                       marks the index as built
//! ```
//!
//! Each path segment is escaped with [`escape`], so names containing `/` stay one segment.

use crate::{AwsError, RequestContext};

/// AWS's message for a name (or non-ARN `SecretId`) with forbidden characters.
pub(crate) const INVALID_NAME: &str =
    "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!";

/// Characters allowed in a secret name besides ASCII letters and digits.
const NAME_PUNCTUATION: &str = "/_+=.@-";

/// Alphabet of the random six-character ARN suffix.
const SUFFIX_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

pub(crate) fn has_valid_name_chars(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || NAME_PUNCTUATION.contains(c))
}

/// Validates the `Name` of CreateSecret: 1–512 characters from the allowed set.
pub(crate) fn validate_new_name(name: &str) -> Result<(), AwsError> {
    crate::secrets::input::check_len(name.chars().count(), 1, 512, "name")?;
    if !has_valid_name_chars(name) {
        return Err(AwsError::validation(INVALID_NAME));
    }
    Ok(())
}

/// How a `SecretId` names a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretRef {
    /// A plain secret name.
    Name(String),
    /// The resource part of an ARN in the caller's account and region: either
    /// `<name>-<suffix>` (complete ARN) or just `<name>` (partial ARN).
    Arn(String),
    /// An ARN of another account or region, or not a Secrets Manager ARN: never found.
    Foreign,
}

/// Parses and validates a `SecretId` (1–2048 characters; names must use the allowed set).
pub(crate) fn parse_secret_id(ctx: &RequestContext, id: &str) -> Result<SecretRef, AwsError> {
    crate::secrets::input::check_len(id.chars().count(), 1, 2048, "secretId")?;
    if let Some(rest) = id.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(6, ':').collect();
        // partition, service, region, account, "secret", resource
        // Coffer's ARNs are all in the `aws` partition (make_arn): an `aws-cn` or
        // `aws-us-gov` ARN names a secret that is not here, whatever its name says.
        if parts.len() != 6 || parts[0] != "aws" || parts[1] != "secretsmanager" || parts[4] != "secret" {
            return Ok(SecretRef::Foreign);
        }
        if parts[2] != ctx.region || parts[3] != ctx.account_id {
            return Ok(SecretRef::Foreign);
        }
        return Ok(SecretRef::Arn(parts[5].to_string()));
    }
    if !has_valid_name_chars(id) {
        return Err(AwsError::validation(INVALID_NAME));
    }
    Ok(SecretRef::Name(id.to_string()))
}

/// Splits `<name>-<6 alphanumerics>` into name and suffix.
pub(crate) fn split_suffix(resource: &str) -> Option<(&str, &str)> {
    let (name, suffix) = resource.rsplit_once('-')?;
    if name.is_empty() || suffix.len() != 6 || !suffix.chars().all(|c| c.is_ascii_alphanumeric()) {
        return None;
    }
    Some((name, suffix))
}

/// The six random characters that make a re-created secret's ARN differ.
pub(crate) fn random_suffix() -> Result<String, AwsError> {
    coffer_crypto::random::string_from(SUFFIX_ALPHABET, 6).map_err(|e| AwsError::internal(e.to_string()))
}

pub(crate) fn make_arn(region: &str, account: &str, name: &str, suffix: &str) -> String {
    format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-{suffix}")
}

/// The last six characters of an ARN (the random suffix).
pub(crate) fn arn_suffix(arn: &str) -> &str {
    arn.rsplit_once('-').map(|(_, s)| s).unwrap_or("")
}

/// The same secret ARN in another region (how replica ARNs are formed).
pub(crate) fn arn_in_region(arn: &str, region: &str) -> String {
    let parts: Vec<&str> = arn.splitn(5, ':').collect();
    if parts.len() == 5 {
        let tail = parts[4];
        format!("{}:{}:{}:{region}:{tail}", parts[0], parts[1], parts[2])
    } else {
        arn.to_string()
    }
}

/// Escapes one storage-path segment: keeps `[A-Za-z0-9_.+=@-]`, writes `%XX` for the rest.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    escape_into(&mut out, s);
    out
}

/// Appends the [`escape`]d form of `s` to `out` (on every request path: no formatting machinery).
fn escape_into(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"_.+=@-".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xF)]));
        }
    }
}

/// Reverses [`escape`].
pub(crate) fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `<account>/<region>/<dir>/`, built in one buffer (every key of the layout starts so).
fn region_dir(account: &str, region: &str, dir: &str) -> String {
    let mut key = String::with_capacity(account.len() + region.len() + dir.len() + 48);
    escape_into(&mut key, account);
    key.push('/');
    escape_into(&mut key, region);
    key.push('/');
    key.push_str(dir);
    key.push('/');
    key
}

/// `<account>/<region>/secrets/`: every secret of one region of one account.
pub(crate) fn region_prefix(account: &str, region: &str) -> String {
    region_dir(account, region, "secrets")
}

/// `<account>/<region>/created/`: the creation-order index of one region (ListSecrets pages
/// through it instead of reading every record). Each entry is this prefix followed by the
/// secret's `created_key`.
pub(crate) fn created_prefix(account: &str, region: &str) -> String {
    region_dir(account, region, "created")
}

/// The name in an entry of the creation index (what follows [`created_prefix`]).
pub(crate) fn name_of_created_entry(entry: &str) -> Option<String> {
    entry.split_once('/').and_then(|(_, name)| unescape(name))
}

/// The key that records that the creation index holds every secret (stores written before
/// the index existed get it built once).
pub(crate) const CREATED_INDEX_MARKER: &str = "created-index";

/// `<account>/<region>/secrets/<name>/`: everything of one secret.
pub(crate) fn secret_prefix(account: &str, region: &str, name: &str) -> String {
    secret_key(account, region, name, &[])
}

/// `<account>/<region>/secrets/<name>/<tail>`.
fn secret_key(account: &str, region: &str, name: &str, tail: &[&str]) -> String {
    let mut key = region_prefix(account, region);
    escape_into(&mut key, name);
    key.push('/');
    for t in tail {
        key.push_str(t);
    }
    key
}

pub(crate) fn meta_key(account: &str, region: &str, name: &str) -> String {
    secret_key(account, region, name, &["meta"])
}

pub(crate) fn version_key(account: &str, region: &str, name: &str, version_id: &str) -> String {
    secret_key(account, region, name, &["versions/", &escape(version_id)])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use time::OffsetDateTime;

    fn ctx() -> RequestContext {
        RequestContext {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            principal_arn: "arn:aws:iam::123456789012:root".into(),
            now: OffsetDateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn names() {
        for ok in ["Valid/_+=.@-Name", "Valid/_+=.@-Name-a1b2", "Valid/_+=.@-Name-a1b2c3-"] {
            assert!(validate_new_name(ok).is_ok(), "{ok}");
        }
        for bad in ["Inv Name", " Inv Name", " Inv*Name? ", " Inv *?!]Name\\-", ""] {
            assert!(validate_new_name(bad).is_err(), "{bad}");
        }
        assert!(validate_new_name(&"a".repeat(512)).is_ok());
        assert!(validate_new_name(&"a".repeat(513)).is_err());
    }

    #[test]
    fn secret_ids() {
        let c = ctx();
        assert_eq!(parse_secret_id(&c, "a/b").unwrap(), SecretRef::Name("a/b".into()));
        assert_eq!(
            parse_secret_id(&c, "arn:aws:secretsmanager:us-east-1:123456789012:secret:a/b-AbC123").unwrap(),
            SecretRef::Arn("a/b-AbC123".into())
        );
        assert_eq!(
            parse_secret_id(&c, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:a").unwrap(),
            SecretRef::Foreign
        );
        assert!(parse_secret_id(&c, "bad name").is_err());
        assert_eq!(split_suffix("a-b-AbC123"), Some(("a-b", "AbC123")));
        assert_eq!(split_suffix("abc"), None);
    }

    #[test]
    fn arns_and_keys() {
        let arn = make_arn("us-east-1", "123", "x", "AbCdEf");
        assert_eq!(arn_suffix(&arn), "AbCdEf");
        assert_eq!(
            arn_in_region(&arn, "eu-west-1"),
            "arn:aws:secretsmanager:eu-west-1:123:secret:x-AbCdEf"
        );
        let e = escape("a/b%c d");
        assert!(!e.contains('/'));
        assert_eq!(unescape(&e).unwrap(), "a/b%c d");
        assert_eq!(meta_key("1", "r", "a/b"), "1/r/secrets/a%2Fb/meta");
        assert_eq!(
            meta_key("1", "r", "a/b"),
            format!("{}meta", secret_prefix("1", "r", "a/b"))
        );
        assert_eq!(version_key("1", "r", "a", "v 1"), "1/r/secrets/a/versions/v%201");
        assert_eq!(escape("é/\u{0}"), "%C3%A9%2F%00");
    }
}
