//! Who a request comes from, as the SigV4 front end and the policy evaluator see it.

use std::sync::Arc;

use coffer_crypto::SecretBytes;

pub use crate::model::Tag;

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The 12-digit account the caller acts in.
    pub account_id: String,
    /// `arn:aws:iam::<acct>:root`, `arn:aws:iam::<acct>:user/<path><name>` or
    /// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
    pub arn: String,
    pub kind: PrincipalKind,
    /// Principal tags (`aws:PrincipalTag/*`): the user's, or the role's overlaid with the
    /// session's.
    pub tags: Vec<Tag>,
}

/// The kind of caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    /// The account root: every permission in its account.
    Root,
    User {
        name: String,
        /// `AIDA...`
        id: String,
    },
    AssumedRole {
        role_arn: String,
        role_name: String,
        /// `AROA...`
        role_id: String,
        session_name: String,
        /// The session's access key id (`ASIA...`).
        access_key_id: String,
        /// When the session's credentials expire (epoch seconds).
        expires: i64,
    },
}

impl Principal {
    /// The account root of `account_id`.
    pub fn root(account_id: &str) -> Self {
        Self {
            account_id: account_id.to_string(),
            arn: crate::model::root_arn(account_id),
            kind: PrincipalKind::Root,
            tags: Vec::new(),
        }
    }

    pub fn is_root(&self) -> bool {
        matches!(self.kind, PrincipalKind::Root)
    }

    /// `aws:userid` / GetCallerIdentity's `UserId`: the account id for root, the user id,
    /// or `<role id>:<session name>`.
    pub fn user_id(&self) -> String {
        match &self.kind {
            PrincipalKind::Root => self.account_id.clone(),
            PrincipalKind::User { id, .. } => id.clone(),
            PrincipalKind::AssumedRole {
                role_id, session_name, ..
            } => format!("{role_id}:{session_name}"),
        }
    }
}

/// An access key as the SigV4 verifier needs it. No `Debug`: it holds the secret.
pub struct ResolvedKey {
    pub access_key_id: String,
    /// The secret access key (the HMAC key of SigV4).
    pub secret: SecretBytes,
    pub principal: Principal,
}

/// The outcome of [`crate::IamEngine::resolve_access_key`].
pub enum KeyResolution {
    /// A usable key and who it belongs to.
    Valid(Arc<ResolvedKey>),
    /// No such key, or it is inactive or deleted: answer `InvalidClientTokenId` /
    /// `UnrecognizedClientException` ("The security token included in the request is invalid").
    Unknown,
    /// A session key (`ASIA`) without its session token or with the wrong one, or a session
    /// token sent with a long-term key: answer as for `Unknown`.
    InvalidToken,
    /// The session has expired: answer `ExpiredToken`/`ExpiredTokenException` ("The security
    /// token included in the request is expired").
    Expired,
}

impl std::fmt::Debug for KeyResolution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Valid(k) => write!(f, "Valid({}, {})", k.access_key_id, k.principal.arn),
            Self::Unknown => f.write_str("Unknown"),
            Self::InvalidToken => f.write_str("InvalidToken"),
            Self::Expired => f.write_str("Expired"),
        }
    }
}

/// Where a policy document that applies to a principal comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PolicySource {
    /// An inline policy of the user, role or group (`owner_arn`) named `name`.
    Inline { owner_arn: String, name: String },
    /// A managed policy `policy_arn` attached to `owner_arn` (the user, a group of the user,
    /// or the role).
    Attached { owner_arn: String, policy_arn: String },
    /// The session policy passed to AssumeRole (`Policy`). Session policies bound the
    /// identity policies: the evaluator must intersect, not add.
    SessionInline,
    /// A managed policy passed to AssumeRole (`PolicyArns`); a session policy too.
    SessionManaged { policy_arn: String },
}

impl PolicySource {
    /// True for session policies (they limit, never grant).
    pub fn is_session_policy(&self) -> bool {
        matches!(self, Self::SessionInline | Self::SessionManaged { .. })
    }
}

/// One policy document that applies to a principal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalPolicy {
    pub source: PolicySource,
    /// The JSON document.
    pub document: String,
}
