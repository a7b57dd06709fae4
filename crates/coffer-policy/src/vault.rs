//! Vault ACL paths and capabilities, so Vault HCL policies can compile into the same statements.
//!
//! A Vault policy `path "secret/data/+/app/*" { capabilities = ["read", "list"] }` becomes one
//! [`Statement`](crate::Statement) with actions `vault:read`, `vault:list` and a
//! [`VaultPathPattern`] resource; a `deny` capability becomes a `Deny` statement on `vault:*`.
//! Vault requests are then authorized as action `vault:<capability>` on resource
//! `vault:path/<path>` (see [`vault_resource`]).
//!
//! Path rules (Vault documentation, "Policies", "Policy syntax"): a trailing `*` is a prefix match
//! and may only appear at the end; `+` stands for exactly one whole path segment; everything else
//! is literal and case-sensitive.
//!
//! Not carried over (yet): Vault picks the *most specific* matching path and ignores the less
//! specific ones, whereas this evaluator applies IAM's "explicit deny anywhere wins". A
//! `deny` on `secret/*` therefore also denies `secret/app` even if another policy grants it.
//! [`VaultPathPattern::specificity`] is provided so the HCL compiler can implement Vault's
//! priority if we decide to keep Vault's semantics.

use crate::error::MalformedPolicy;

/// The resource prefix under which Vault paths are authorized.
pub const VAULT_RESOURCE_PREFIX: &str = "vault:path/";

/// The resource string for a Vault request path (leading `/` removed).
pub fn vault_resource(path: &str) -> String {
    format!("{VAULT_RESOURCE_PREFIX}{}", path.trim_start_matches('/'))
}

/// A Vault capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VaultCapability {
    /// `create`
    Create,
    /// `delete`
    Delete,
    /// `deny`: overrides every other capability.
    Deny,
    /// `list`
    List,
    /// `patch`
    Patch,
    /// `read`
    Read,
    /// `sudo`: root-protected paths.
    Sudo,
    /// `update`
    Update,
}

impl VaultCapability {
    /// Parses a capability name as written in HCL.
    pub fn parse(name: &str) -> Option<VaultCapability> {
        Some(match name {
            "create" => VaultCapability::Create,
            "delete" => VaultCapability::Delete,
            "deny" => VaultCapability::Deny,
            "list" => VaultCapability::List,
            "patch" => VaultCapability::Patch,
            "read" => VaultCapability::Read,
            "sudo" => VaultCapability::Sudo,
            "update" => VaultCapability::Update,
            _ => return None,
        })
    }

    /// The capability's name.
    pub fn as_str(self) -> &'static str {
        match self {
            VaultCapability::Create => "create",
            VaultCapability::Delete => "delete",
            VaultCapability::Deny => "deny",
            VaultCapability::List => "list",
            VaultCapability::Patch => "patch",
            VaultCapability::Read => "read",
            VaultCapability::Sudo => "sudo",
            VaultCapability::Update => "update",
        }
    }

    /// The action name a Vault request with this capability is authorized as (`vault:read`).
    pub fn action(self) -> String {
        format!("vault:{}", self.as_str())
    }
}

/// A compiled Vault path pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultPathPattern {
    raw: String,
    segments: Vec<String>,
    prefix: bool,
}

impl VaultPathPattern {
    /// Parses a Vault policy path. A `*` anywhere but at the end is rejected, as Vault does.
    pub fn parse(path: &str) -> Result<VaultPathPattern, MalformedPolicy> {
        let trimmed = path.trim_start_matches('/');
        let (body, prefix) = match trimmed.strip_suffix('*') {
            Some(body) => (body, true),
            None => (trimmed, false),
        };
        if body.contains('*') {
            return Err(MalformedPolicy::new(format!(
                "path {path:?}: a \"*\" wildcard may only appear at the end of a path"
            )));
        }
        for segment in body.split('/') {
            if segment.contains('+') && segment != "+" {
                return Err(MalformedPolicy::new(format!(
                    "path {path:?}: a \"+\" wildcard must be a whole path segment"
                )));
            }
        }
        Ok(VaultPathPattern {
            raw: path.to_owned(),
            segments: body.split('/').map(str::to_owned).collect(),
            prefix,
        })
    }

    /// The path as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether `path` (without the [`VAULT_RESOURCE_PREFIX`]) matches.
    pub fn matches_path(&self, path: &str) -> bool {
        let path = path.trim_start_matches('/');
        let request: Vec<&str> = path.split('/').collect();
        let n = self.segments.len();
        if self.prefix {
            if request.len() < n {
                return false;
            }
        } else if request.len() != n {
            return false;
        }
        for (i, (pat, seg)) in self.segments.iter().zip(&request).enumerate() {
            let last = i + 1 == n;
            let ok = if pat == "+" {
                true
            } else if last && self.prefix {
                seg.starts_with(pat.as_str())
            } else {
                pat == seg
            };
            if !ok {
                return false;
            }
        }
        true
    }

    /// Whether a resource string (`vault:path/...`) matches.
    pub fn matches_resource(&self, resource: &str) -> bool {
        resource
            .strip_prefix(VAULT_RESOURCE_PREFIX)
            .is_some_and(|p| self.matches_path(p))
    }

    /// A sort key for Vault's "most specific path wins" rule: longer literal prefixes first,
    /// exact paths over globs, fewer `+` segments over more.
    pub fn specificity(&self) -> (usize, bool, usize) {
        let plus = self.segments.iter().filter(|s| *s == "+").count();
        let literal_len: usize = self.segments.iter().filter(|s| *s != "+").map(String::len).sum();
        (literal_len, !self.prefix, usize::MAX - plus)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        match VaultPathPattern::parse(pattern) {
            Ok(p) => p.matches_path(path),
            Err(e) => panic!("{pattern}: {e}"),
        }
    }

    #[test]
    fn vault_path_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("secret/data/app", "secret/data/app", true),
            ("secret/data/app", "secret/data/app/x", false),
            ("secret/data/app", "secret/data/ap", false),
            ("secret/data/app", "Secret/data/app", false),
            ("secret/*", "secret/", true),
            ("secret/*", "secret/a/b/c", true),
            ("secret/*", "secret", false),
            ("secret/app*", "secret/application", true),
            ("secret/app*", "secret/app/x", true),
            ("secret/app*", "secret/ap", false),
            ("secret/+/teamb", "secret/foo/teamb", true),
            ("secret/+/teamb", "secret/foo/bar/teamb", false),
            ("secret/+/teamb", "secret/foo/teamc", false),
            ("secret/+/+/x", "secret/a/b/x", true),
            ("secret/+/*", "secret/a/b/c", true),
            ("secret/+/*", "secret/a", false),
            ("/secret/x", "secret/x", true),
            ("+", "anything", true),
            ("*", "", true),
            ("*", "sys/policy/x", true),
        ];
        for (pattern, path, want) in cases {
            assert_eq!(m(pattern, path), *want, "{pattern} vs {path}");
        }
    }

    #[test]
    fn vault_path_rejects_inner_star_and_partial_plus() {
        assert!(VaultPathPattern::parse("secret/*/x").is_err());
        assert!(VaultPathPattern::parse("secret/a+b/x").is_err());
    }

    #[test]
    fn vault_resource_prefix() {
        let p = VaultPathPattern::parse("secret/*");
        assert!(
            p.as_ref()
                .is_ok_and(|p| p.matches_resource(&vault_resource("/secret/x")))
        );
        assert!(p.is_ok_and(|p| !p.matches_resource("arn:aws:secretsmanager:r:1:secret:x")));
    }

    #[test]
    fn capabilities_round_trip() {
        for c in ["create", "read", "update", "patch", "delete", "list", "sudo", "deny"] {
            assert_eq!(VaultCapability::parse(c).map(VaultCapability::as_str), Some(c));
        }
        assert_eq!(VaultCapability::parse("write"), None);
        assert_eq!(VaultCapability::Read.action(), "vault:read");
    }
}
