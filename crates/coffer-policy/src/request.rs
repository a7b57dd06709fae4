//! What the server supplies for one authorization: who, which action, which resource, and the
//! request context (condition keys).

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The caller, as authenticated by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The caller's ARN: `arn:aws:iam::<acct>:user/<path><name>`, `arn:aws:iam::<acct>:root`, or
    /// for a role session `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
    pub arn: String,
    /// The caller's account.
    pub account_id: String,
    /// Whether the caller is the account root user.
    pub is_root: bool,
    /// The unique id (`aws:userid`): `AIDA...` for users, `AROA...:<session>` for role sessions,
    /// the account id for root.
    pub user_id: Option<String>,
    /// The IAM user name (`aws:username`); `None` for roles and root.
    pub username: Option<String>,
    /// Tags on the user or role (`aws:PrincipalTag/<key>`).
    pub tags: BTreeMap<String, String>,
    /// For an assumed-role session: the role.
    pub session: Option<RoleSession>,
}

/// The role behind an assumed-role session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleSession {
    /// `arn:aws:iam::<acct>:role/<path><name>`
    pub role_arn: String,
    /// The session name given to `AssumeRole`.
    pub session_name: String,
}

impl Principal {
    /// The root user of `account`.
    pub fn root(account: &str) -> Principal {
        Principal {
            arn: format!("arn:aws:iam::{account}:root"),
            account_id: account.to_owned(),
            is_root: true,
            user_id: Some(account.to_owned()),
            username: None,
            tags: BTreeMap::new(),
            session: None,
        }
    }

    /// The IAM user `name` (path `/`) of `account`.
    pub fn user(account: &str, name: &str) -> Principal {
        Principal {
            arn: format!("arn:aws:iam::{account}:user/{name}"),
            account_id: account.to_owned(),
            is_root: false,
            user_id: None,
            username: Some(name.to_owned()),
            tags: BTreeMap::new(),
            session: None,
        }
    }

    /// A session `session` of role `role` (path `/`) of `account`.
    pub fn assumed_role(account: &str, role: &str, session: &str) -> Principal {
        Principal {
            arn: format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
            account_id: account.to_owned(),
            is_root: false,
            user_id: None,
            username: None,
            tags: BTreeMap::new(),
            session: Some(RoleSession {
                role_arn: format!("arn:aws:iam::{account}:role/{role}"),
                session_name: session.to_owned(),
            }),
        }
    }

    /// Adds a principal tag.
    pub fn with_tag(mut self, key: &str, value: &str) -> Principal {
        self.tags.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Sets the unique id (`aws:userid`).
    pub fn with_user_id(mut self, id: &str) -> Principal {
        self.user_id = Some(id.to_owned());
        self
    }

    /// `aws:PrincipalArn`: the role ARN for a role session, the caller's ARN otherwise.
    pub fn principal_arn(&self) -> &str {
        match &self.session {
            Some(s) => &s.role_arn,
            None => &self.arn,
        }
    }

    /// The ARN of the account root (`arn:aws:iam::<acct>:root`) in the caller's partition.
    pub fn account_root_arn(&self) -> String {
        let partition = self.arn.split(':').nth(1).unwrap_or("aws");
        format!("arn:{partition}:iam::{}:root", self.account_id)
    }

    fn principal_type(&self) -> &'static str {
        if self.is_root {
            "Account"
        } else if self.session.is_some() {
            "AssumedRole"
        } else {
            "User"
        }
    }
}

/// The condition keys of a request. Keys are case-insensitive (IAM user guide, "Condition
/// element": "Condition key names are not case-sensitive"); values are kept as given and typed
/// on demand by each operator.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConditionContext {
    entries: BTreeMap<String, Vec<String>>,
}

impl ConditionContext {
    /// An empty context.
    pub fn new() -> ConditionContext {
        ConditionContext::default()
    }

    /// Sets a single-valued key (replacing any previous value).
    pub fn insert(&mut self, key: &str, value: impl Into<String>) {
        self.entries.insert(key.to_ascii_lowercase(), vec![value.into()]);
    }

    /// Sets a multivalued key such as `aws:TagKeys`. An empty list is kept: for `ForAllValues`
    /// it behaves like a missing key, for `Null` it counts as absent.
    pub fn insert_multi<I, S>(&mut self, key: &str, values: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.entries
            .insert(key.to_ascii_lowercase(), values.into_iter().map(Into::into).collect());
    }

    /// Builder form of [`ConditionContext::insert`].
    pub fn with(mut self, key: &str, value: impl Into<String>) -> ConditionContext {
        self.insert(key, value);
        self
    }

    /// Builder form of [`ConditionContext::insert_multi`].
    pub fn with_multi<I, S>(mut self, key: &str, values: I) -> ConditionContext
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.insert_multi(key, values);
        self
    }

    /// Sets `aws:CurrentTime` (ISO 8601) and `aws:EpochTime` from the server's clock; this crate
    /// never reads the clock itself.
    pub fn set_current_time(&mut self, now: OffsetDateTime) {
        if let Ok(iso) = now.format(&Rfc3339) {
            self.insert("aws:CurrentTime", iso);
        }
        self.insert("aws:EpochTime", now.unix_timestamp().to_string());
    }

    /// The values of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&[String]> {
        self.entries.get(&key.to_ascii_lowercase()).map(Vec::as_slice)
    }

    /// Iterates over keys (lower-cased) and values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// One authorization question: may `principal` perform `action` on `resource`?
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzRequest {
    /// The caller.
    pub principal: Principal,
    /// The IAM action, e.g. `secretsmanager:GetSecretValue` (case-insensitive).
    pub action: String,
    /// The resource ARN (case-sensitive), `*` for resource-less actions, or a Vault resource
    /// (`vault:path/...`).
    pub resource: String,
    /// The account that owns the resource (the caller's own account for resource-less actions).
    pub resource_account: String,
    /// Request condition keys supplied by the server (`aws:SourceIp`, `aws:CurrentTime`,
    /// `secretsmanager:VersionStage`, `kms:EncryptionContext:...`, `aws:ResourceTag/...`).
    pub context: ConditionContext,
}

impl AuthzRequest {
    /// A request with an empty context.
    pub fn new(principal: Principal, action: &str, resource: &str, resource_account: &str) -> AuthzRequest {
        AuthzRequest {
            principal,
            action: action.to_owned(),
            resource: resource.to_owned(),
            resource_account: resource_account.to_owned(),
            context: ConditionContext::new(),
        }
    }

    /// Builder: sets a context key.
    pub fn with(mut self, key: &str, value: impl Into<String>) -> AuthzRequest {
        self.context.insert(key, value);
        self
    }

    /// Builder: sets a multivalued context key.
    pub fn with_multi<I, S>(mut self, key: &str, values: I) -> AuthzRequest
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.context.insert_multi(key, values);
        self
    }

    /// The values of a condition key: from the context the server supplied, else derived from
    /// the principal (`aws:PrincipalArn`, `aws:PrincipalAccount`, `aws:username`, `aws:userid`,
    /// `aws:PrincipalTag/<k>`, `aws:PrincipalType`) or the request (`aws:ResourceAccount`).
    /// `key` must be lower-case.
    pub fn lookup(&self, key: &str) -> Option<Vec<String>> {
        if let Some(values) = self.context.entries.get(key) {
            return Some(values.clone());
        }
        let p = &self.principal;
        let one = |s: &str| Some(vec![s.to_owned()]);
        match key {
            "aws:principalarn" => one(p.principal_arn()),
            "aws:principalaccount" => one(&p.account_id),
            "aws:principaltype" => one(p.principal_type()),
            "aws:username" => p.username.as_deref().and_then(one),
            "aws:userid" => p.user_id.as_deref().and_then(one),
            "aws:resourceaccount" => one(&self.resource_account),
            "aws:principalisawsservice" => one("false"),
            _ => {
                let tag = key.strip_prefix("aws:principaltag/")?;
                p.tags
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(tag))
                    .map(|(_, v)| vec![v.clone()])
            }
        }
    }
}
