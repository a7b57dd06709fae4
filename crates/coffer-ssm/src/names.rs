//! Parameter names, hierarchy rules, selectors, ARNs and the storage key layout.
//!
//! Storage layout (inside the engine's own storage view, `aws/ssm/` in the core):
//!
//! ```text
//! <account>/<region>/p/<canonical name>/meta             one JSON ParameterRecord
//! <account>/<region>/p/<canonical name>/v/<version:020>  one value per version
//! ```
//!
//! Every segment is escaped with [`escape`], so a hierarchical name stays one segment. The
//! canonical name of a single-level name drops its leading `/` (AWS treats `/x` and `x` as
//! the same parameter, reference/aws-api.md §4.2).

use coffer_engines::{AwsError, AwsErrorCode, RequestContext};

/// Deepest hierarchy AWS allows.
pub(crate) const MAX_DEPTH: usize = 15;

/// Longest ARN (the name's length limit includes the ARN prefix).
const MAX_ARN_LEN: usize = 1011;

pub(crate) const PREFIX_ERROR: &str = "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).";

pub(crate) const PATH_FORMAT_ERROR: &str = "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_";

const SSM_PATH_ERROR: &str = "Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, numbers and the following 3 symbols .-_";

/// The message for an invalid `Path` (GetParametersByPath, the `Path` filter).
pub(crate) const INVALID_PATH: &str = "The parameter doesn't meet the parameter name requirements. The parameter name must begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.";

/// The prefix of Secrets Manager references.
pub(crate) const REFERENCE_PREFIX: &str = "/aws/reference/secretsmanager/";

fn is_segment_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn starts_with_ci(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

/// Validates the `Name` of PutParameter (already trimmed).
pub(crate) fn validate_new_name(ctx: &RequestContext, name: &str) -> Result<(), AwsError> {
    crate::input::check_len(name.chars().count(), 1, 2048, "name")?;
    if let Some(rest) = name.strip_prefix('/') {
        if starts_with_ci(rest, "aws") {
            return Err(AwsError::new(
                AwsErrorCode::AccessDeniedException,
                format!("No access to reserved parameter name: {name}."),
            ));
        }
        if starts_with_ci(rest, "ssm") {
            return Err(AwsError::validation(SSM_PATH_ERROR));
        }
        if rest
            .split('/')
            .any(|seg| seg.is_empty() || !seg.chars().all(is_segment_char))
        {
            return Err(AwsError::validation(PATH_FORMAT_ERROR));
        }
        if rest.split('/').count() > MAX_DEPTH {
            return Err(AwsError::new(
                AwsErrorCode::HierarchyLevelLimitExceededException,
                "A hierarchy can have a maximum of 15 levels. For more information, see Requirements and constraints for parameter names in the AWS Systems Manager User Guide.",
            ));
        }
    } else {
        if starts_with_ci(name, "aws") || starts_with_ci(name, "ssm") {
            return Err(AwsError::validation(PREFIX_ERROR));
        }
        if !name.chars().all(is_segment_char) {
            return Err(AwsError::validation(PATH_FORMAT_ERROR));
        }
    }
    if arn(ctx, name).len() > MAX_ARN_LEN {
        return Err(AwsError::validation(format!(
            "Parameter name: the maximum length for a parameter name, including the ARN prefix, is {MAX_ARN_LEN} characters."
        )));
    }
    Ok(())
}

/// Whether `name` could name a stored parameter (reads don't validate as strictly as
/// PutParameter: anything else is simply not found).
pub(crate) fn plausible(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| is_segment_char(c) || c == '/')
}

/// The canonical form: single-level names lose their leading `/`.
pub(crate) fn canonical(name: &str) -> &str {
    match name.strip_prefix('/') {
        Some(rest) if !rest.contains('/') => rest,
        _ => name,
    }
}

/// The name as a path, always starting with `/`.
pub(crate) fn as_path(name: &str) -> String {
    if name.starts_with('/') {
        name.to_string()
    } else {
        format!("/{name}")
    }
}

/// `arn:aws:ssm:<region>:<account>:parameter/<name without leading slash>`.
pub(crate) fn arn(ctx: &RequestContext, name: &str) -> String {
    arn_in(&ctx.account_id, &ctx.region, name)
}

pub(crate) fn arn_in(account: &str, region: &str, name: &str) -> String {
    let partition = if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    };
    format!(
        "arn:{partition}:ssm:{region}:{account}:parameter/{}",
        name.strip_prefix('/').unwrap_or(name)
    )
}

/// What a `Name` of GetParameter(s) selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Selector {
    Latest,
    Version(i64),
    Label(String),
}

impl Selector {
    /// The `Selector` output member (`:3`, `:label`).
    pub(crate) fn render(&self) -> Option<String> {
        match self {
            Self::Latest => None,
            Self::Version(v) => Some(format!(":{v}")),
            Self::Label(l) => Some(format!(":{l}")),
        }
    }
}

/// A parsed parameter reference: the name (without selector) and the selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NameRef {
    /// The name as the caller wrote it (ARNs resolved to a name), without selector.
    pub name: String,
    pub selector: Selector,
}

/// Parses `name`, `name:version`, `name:label` or a parameter ARN (with optional selector).
/// `None` when it cannot name a parameter of this account and region.
pub(crate) fn parse_ref(ctx: &RequestContext, raw: &str) -> Option<NameRef> {
    let raw = raw.trim();
    let body = if let Some(rest) = raw.strip_prefix("arn:") {
        // partition:ssm:region:account:parameter/<name>[:selector]
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5 || parts[1] != "ssm" || parts[2] != ctx.region || parts[3] != ctx.account_id {
            return None;
        }
        let resource = parts[4].strip_prefix("parameter/")?;
        if resource.split(':').next().is_some_and(|n| n.contains('/')) {
            format!("/{resource}")
        } else {
            resource.to_string()
        }
    } else {
        raw.to_string()
    };
    let (name, selector) = match body.split_once(':') {
        None => (body.clone(), Selector::Latest),
        Some((n, sel)) => {
            if sel.is_empty() || sel.contains(':') {
                return None;
            }
            if sel.chars().all(|c| c.is_ascii_digit()) {
                (n.to_string(), Selector::Version(sel.parse().ok()?))
            } else {
                (n.to_string(), Selector::Label(sel.to_string()))
            }
        }
    };
    if !plausible(&name) {
        return None;
    }
    Some(NameRef { name, selector })
}

/// Validates a hierarchy path (`/`, `/a`, `/a/b/`).
pub(crate) fn valid_path(path: &str) -> bool {
    let Some(rest) = path.strip_prefix('/') else {
        return false;
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.is_empty() {
        return path == "/";
    }
    rest.split('/')
        .all(|seg| !seg.is_empty() && seg.chars().all(is_segment_char))
}

/// Whether a path filter value names the reserved `/aws` or `/ssm` hierarchies.
pub(crate) fn reserved_path(path: &str) -> bool {
    let rest = path.trim_start_matches('/');
    starts_with_ci(rest, "aws") || starts_with_ci(rest, "ssm")
}

/// Whether `name` lies under `path` (recursively or exactly one level below).
pub(crate) fn under_path(name: &str, path: &str, recursive: bool) -> bool {
    let full = as_path(name);
    let mut prefix = path.to_string();
    if !prefix.ends_with('/') {
        prefix.push('/');
    }
    match full.strip_prefix(&prefix) {
        Some(rest) if !rest.is_empty() => recursive || !rest.contains('/'),
        _ => false,
    }
}

/// Escapes one key segment: `%` and `/` are percent-encoded.
pub(crate) fn escape(s: &str) -> String {
    s.replace('%', "%25").replace('/', "%2F")
}

pub(crate) fn unescape(s: &str) -> String {
    s.replace("%2F", "/").replace("%25", "%")
}

pub(crate) fn region_prefix(account: &str, region: &str) -> String {
    format!("{}/{}/p/", escape(account), escape(region))
}

pub(crate) fn param_prefix(account: &str, region: &str, canonical_name: &str) -> String {
    format!("{}{}/", region_prefix(account, region), escape(canonical_name))
}

pub(crate) fn meta_key(account: &str, region: &str, canonical_name: &str) -> String {
    format!("{}meta", param_prefix(account, region, canonical_name))
}

pub(crate) fn version_key(account: &str, region: &str, canonical_name: &str, version: i64) -> String {
    format!(
        "{}v/{:020}",
        param_prefix(account, region, canonical_name),
        version.max(0)
    )
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
    fn names_follow_aws_rules() {
        let c = ctx();
        assert!(validate_new_name(&c, "test").is_ok());
        assert!(validate_new_name(&c, "/a/b.c/d-e_f").is_ok());
        assert_eq!(validate_new_name(&c, "ssm_x").err().unwrap().message, PREFIX_ERROR);
        assert_eq!(validate_new_name(&c, "AWS_x").err().unwrap().message, PREFIX_ERROR);
        assert_eq!(
            validate_new_name(&c, "/aws/x").err().unwrap().code,
            AwsErrorCode::AccessDeniedException
        );
        assert_eq!(validate_new_name(&c, "/SSM/x").err().unwrap().message, SSM_PATH_ERROR);
        for bad in ["a/b/c", "/a//b", "/a b", "/a/", "x y"] {
            assert_eq!(
                validate_new_name(&c, bad).err().unwrap().code,
                AwsErrorCode::ValidationException,
                "{bad}"
            );
        }
        let deep = "/a".repeat(15);
        assert!(validate_new_name(&c, &deep).is_ok());
        let deeper = "/a".repeat(16);
        assert_eq!(
            validate_new_name(&c, &deeper).err().unwrap().code,
            AwsErrorCode::HierarchyLevelLimitExceededException
        );
        let long = "a".repeat(1000);
        assert!(validate_new_name(&c, &long).is_err());
    }

    #[test]
    fn refs_selectors_and_arns() {
        let c = ctx();
        assert_eq!(parse_ref(&c, "x:3").unwrap().selector, Selector::Version(3));
        assert_eq!(parse_ref(&c, "x:lab").unwrap().selector, Selector::Label("lab".into()));
        assert!(parse_ref(&c, "x:2:3").is_none());
        let r = parse_ref(&c, "arn:aws:ssm:us-east-1:123456789012:parameter/a/b:2").unwrap();
        assert_eq!(r.name, "/a/b");
        assert_eq!(r.selector, Selector::Version(2));
        assert_eq!(
            parse_ref(&c, "arn:aws:ssm:us-east-1:123456789012:parameter/t")
                .unwrap()
                .name,
            "t"
        );
        assert!(parse_ref(&c, "arn:aws:ssm:eu-west-1:123456789012:parameter/t").is_none());
        assert_eq!(arn(&c, "/a/b"), "arn:aws:ssm:us-east-1:123456789012:parameter/a/b");
        assert_eq!(canonical("/x"), "x");
        assert_eq!(canonical("/x/y"), "/x/y");
        assert_eq!(Selector::Version(2).render().unwrap(), ":2");
    }

    #[test]
    fn paths() {
        assert!(valid_path("/") && valid_path("/a") && valid_path("/a/b/"));
        assert!(!valid_path("//") && !valid_path("test") && !valid_path("/###"));
        assert!(under_path("foo", "/", false));
        assert!(under_path("/foo/a", "/foo", false));
        assert!(!under_path("/foo/a/b", "/foo", false));
        assert!(under_path("/foo/a/b", "/foo/", true));
        assert!(!under_path("/foobar/a", "/foo", true));
        assert_eq!(unescape(&escape("/a%b/c")), "/a%b/c");
    }
}
