//! The one error of this crate: a policy document IAM would reject as `MalformedPolicyDocument`.

/// A policy document that failed validation. The reason is IAM's own message where we know it
/// (recorded against AWS; see the table in `document.rs`), so the AWS front end can return it as
/// `MalformedPolicyDocument` / `MalformedPolicyDocumentException` unchanged.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct MalformedPolicy {
    reason: String,
}

impl MalformedPolicy {
    pub(crate) fn new(reason: impl Into<String>) -> MalformedPolicy {
        MalformedPolicy { reason: reason.into() }
    }

    /// IAM's reason text, e.g. `Policy statement must contain actions.`.
    pub fn reason(&self) -> &str {
        &self.reason
    }

    /// "Syntax errors in policy.": IAM's answer for anything structurally wrong.
    pub(crate) fn syntax() -> MalformedPolicy {
        MalformedPolicy::new(SYNTAX)
    }

    /// "The policy failed legacy parsing": IAM's answer for values it cannot interpret
    /// (a lower-case `Effect`, a short ARN, an unparsable date).
    pub(crate) fn legacy() -> MalformedPolicy {
        MalformedPolicy::new(LEGACY)
    }
}

pub(crate) const SYNTAX: &str = "Syntax errors in policy.";
pub(crate) const LEGACY: &str = "The policy failed legacy parsing";
