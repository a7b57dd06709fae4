//! Signature verification: canonical request → string to sign → HMAC → constant-time compare.

use coffer_crypto::SecretBytes;
use coffer_crypto::hash::{hmac_sha256, sha256_hex};
use http::HeaderMap;
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::auth::{ALGORITHM, AuthHeader};
use crate::cache::SigningKeyCache;
use crate::canonical::canonical_request;
use crate::error::SigV4Error;

/// The parts of a received request that SigV4 covers, exactly as they arrived.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// HTTP method (`POST`).
    pub method: &'a str,
    /// Raw request path, still percent-encoded (`/`, `/v1/a%20b`).
    pub path: &'a str,
    /// Raw query string without `?`, possibly empty.
    pub query: &'a str,
    /// All request headers. Over HTTP/2 the caller must insert `host` from `:authority`.
    pub headers: &'a HeaderMap,
    /// The complete body.
    pub body: &'a [u8],
}

/// Whether the query string carries SigV4 query authentication (a presigned URL's
/// `X-Amz-Signature`, `X-Amz-Credential` or `X-Amz-Algorithm`): with an `Authorization` header
/// too, which of the two the server checks would be a guess, so such a request is refused.
fn has_query_auth(query: &str) -> bool {
    query.split('&').any(|pair| {
        let name = pair.split_once('=').map_or(pair, |(n, _)| n);
        ["X-Amz-Signature", "X-Amz-Credential", "X-Amz-Algorithm"]
            .iter()
            .any(|p| name.eq_ignore_ascii_case(p))
    })
}

/// Verifies `req` against `auth` (from [`crate::parse_authorization`] on the same headers)
/// with the caller-supplied secret for `auth.credential.access_key_id`.
///
/// Checks, in order: clock skew, signature, and — when the client sent
/// `x-amz-content-sha256` — that the declared hash is the body's (so a signed-but-unhashed
/// payload such as `UNSIGNED-PAYLOAD` is refused: every Coffer API needs an authenticated
/// body).
pub fn verify(
    req: &SignedRequest<'_>,
    auth: &AuthHeader,
    secret_access_key: &SecretBytes,
    now: OffsetDateTime,
    cache: &SigningKeyCache,
) -> Result<(), SigV4Error> {
    if has_query_auth(req.query) {
        return Err(SigV4Error::TwoAuthMechanisms);
    }
    auth.check_skew(now)?;

    let body_hash = sha256_hex(req.body);
    let declared_hash = req
        .headers
        .get("x-amz-content-sha256")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let payload_hash = declared_hash.as_deref().unwrap_or(&body_hash);

    let creq = canonical_request(
        req.method,
        req.path,
        req.query,
        req.headers,
        &auth.signed_headers,
        payload_hash,
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{}\n{}\n{}",
        auth.amz_date,
        auth.credential.scope(),
        sha256_hex(&creq)
    );
    let key = cache.signing_key(secret_access_key, &auth.credential);
    let expected = hmac_sha256(key.expose(), string_to_sign.as_bytes());

    let mut provided = [0u8; 32];
    let provided_ok = hex::decode_to_slice(auth.signature.as_bytes(), &mut provided).is_ok();
    let signature_ok: bool = expected.ct_eq(&provided).into();
    if !(provided_ok && signature_ok) {
        return Err(SigV4Error::SignatureMismatch);
    }
    if let Some(declared) = declared_hash
        && !declared.eq_ignore_ascii_case(&body_hash)
    {
        return Err(SigV4Error::SignatureMismatch);
    }
    Ok(())
}
