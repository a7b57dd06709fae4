//! `NextToken` pagination over sorted lists.
//!
//! Every listed item has a sort key (a string whose byte order is the list order). The token
//! is the base64url form of the last returned key, so a page continues strictly after it
//! even if items were added or removed in between.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::{AwsError, AwsErrorCode};

fn invalid_token() -> AwsError {
    AwsError::new(
        AwsErrorCode::InvalidNextTokenException,
        "The NextToken value is invalid.",
    )
}

pub(crate) fn encode_token(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

pub(crate) fn decode_token(token: &str) -> Result<String, AwsError> {
    let bytes = URL_SAFE_NO_PAD.decode(token.as_bytes()).map_err(|_| invalid_token())?;
    String::from_utf8(bytes).map_err(|_| invalid_token())
}

/// Returns one page of `items` (already sorted by key in the requested direction) after
/// `token`, and the token of the next page if more items follow.
pub(crate) fn page<T>(
    items: Vec<(String, T)>,
    ascending: bool,
    token: Option<&str>,
    max: usize,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let after = token.map(decode_token).transpose()?;
    let mut rest = items.into_iter().filter(|(k, _)| match &after {
        None => true,
        Some(a) if ascending => k.as_str() > a.as_str(),
        Some(a) => k.as_str() < a.as_str(),
    });
    let mut out = Vec::new();
    let mut last_key = None;
    for (k, item) in rest.by_ref().take(max) {
        last_key = Some(k);
        out.push(item);
    }
    let next = if rest.next().is_some() {
        last_key.as_deref().map(encode_token)
    } else {
        None
    };
    Ok((out, next))
}

/// A sort key for a number that orders correctly as a string (non-negative values).
pub(crate) fn num_key(n: i64) -> String {
    format!("{:020}", n.max(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_tokens() {
        let items: Vec<(String, u32)> = (0..7).map(|i| (num_key(i), i as u32)).collect();
        let (p1, t1) = page(items.clone(), true, None, 3).unwrap();
        assert_eq!(p1, vec![0, 1, 2]);
        let (p2, t2) = page(items.clone(), true, t1.as_deref(), 3).unwrap();
        assert_eq!(p2, vec![3, 4, 5]);
        let (p3, t3) = page(items, true, t2.as_deref(), 3).unwrap();
        assert_eq!(p3, vec![6]);
        assert!(t3.is_none());
        assert_eq!(
            page(Vec::<(String, u32)>::new(), true, Some("%%%"), 3)
                .err()
                .unwrap()
                .code,
            AwsErrorCode::InvalidNextTokenException
        );
    }
}
