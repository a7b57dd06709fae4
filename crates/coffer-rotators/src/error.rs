//! Why a step failed ([`StepError`]), and the database errors the step turns into one.
//!
//! Every message is safe for logs and for the operator: it names the step, the secret, the
//! host, the user and the database's own error code and text, never a password or a secret
//! value. Database texts are passed through [`redact`] with the secrets of the statement, so a
//! server that echoes part of a statement (`... near '<literal>'`) cannot leak one.

/// Why a rotation step failed. The message never contains a password or secret JSON.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// A Secrets Manager call failed; `code` is its `__type` (e.g. `ResourceNotFoundException`).
    #[error("{message}")]
    Api { code: String, message: String },
    /// The event, the secret's versions or a secret value are not fit for this rotation
    /// (the templates' `ValueError` / `KeyError`).
    #[error("{0}")]
    Invalid(String),
    /// The database could not be reached, or refused every login the step tried.
    #[error("{0}")]
    Connect(String),
    /// The database refused a statement of the step.
    #[error("{0}")]
    Database(String),
}

impl StepError {
    /// Prefixes the message with the step's name (`setSecret: ...`).
    pub(crate) fn in_step(self, step: &str) -> StepError {
        match self {
            StepError::Api { code, message } => StepError::Api {
                code,
                message: format!("{step}: {message}"),
            },
            StepError::Invalid(m) => StepError::Invalid(format!("{step}: {m}")),
            StepError::Connect(m) => StepError::Connect(format!("{step}: {m}")),
            StepError::Database(m) => StepError::Database(format!("{step}: {m}")),
        }
    }
}

/// A database failure, before the step puts it in context.
#[derive(Debug)]
pub(crate) enum DbError {
    /// No connection: refused, reset, timed out, name not resolved.
    Unreachable(String),
    /// The server answered but refused the login (wrong password, no such user or database).
    Login(String),
    /// A statement failed after login.
    Statement(String),
}

/// Replaces every occurrence of a secret in `text` by `<redacted>`.
pub(crate) fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        if out.contains(*s) {
            out = out.replace(*s, "<redacted>");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_removes_every_secret() {
        assert_eq!(
            redact("syntax error near 'pw1' and pw2", &["pw1", "", "pw2"]),
            "syntax error near '<redacted>' and <redacted>"
        );
        assert_eq!(redact("nothing here", &["pw"]), "nothing here");
    }

    #[test]
    fn in_step_prefixes_and_keeps_the_code() {
        let e = StepError::Api {
            code: "ResourceNotFoundException".into(),
            message: "GetSecretValue failed".into(),
        }
        .in_step("createSecret");
        assert!(matches!(&e, StepError::Api { code, .. } if code == "ResourceNotFoundException"));
        assert_eq!(e.to_string(), "createSecret: GetSecretValue failed");
        assert_eq!(
            StepError::Connect("x".into()).in_step("setSecret").to_string(),
            "setSecret: x"
        );
    }
}
