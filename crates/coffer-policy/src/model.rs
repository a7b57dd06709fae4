//! The compiled model every policy language lowers to: statements of effect, action matchers,
//! resource matchers, principal matchers and conditions.

use crate::condition::{Condition, arn_matches};
use crate::error::MalformedPolicy;
use crate::pattern::{self, Template, Token};
use crate::request::{AuthzRequest, Principal};
use crate::vault::{VaultCapability, VaultPathPattern};

/// Which kind of policy a document is; it selects the validation rules and how the evaluator
/// uses the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicyKind {
    /// Attached to a user, group or role. No `Principal`; `Resource` required; `Version`
    /// `2012-10-17` required; at most 6,144 characters (managed policy quota).
    Identity,
    /// A KMS key policy: `Principal` and `Resource` required; at most 32 KB.
    KeyPolicy,
    /// A resource policy (a Secrets Manager secret's): `Principal` and `Resource` required;
    /// at most 20,480 characters.
    Resource,
    /// A role's trust policy: `Principal` required, no `Resource`; at most 2,048 characters.
    Trust,
}

/// `Allow` or `Deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// Grants.
    Allow,
    /// Explicitly denies; wins over any allow.
    Deny,
}

impl Effect {
    /// The name as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Allow => "Allow",
            Effect::Deny => "Deny",
        }
    }
}

/// An action pattern such as `secretsmanager:Get*` (matched case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionPattern {
    raw: String,
    tokens: Vec<Token>,
}

impl ActionPattern {
    /// Compiles an action pattern (no validation).
    pub fn new(raw: &str) -> ActionPattern {
        ActionPattern {
            raw: raw.to_owned(),
            tokens: pattern::tokens(raw),
        }
    }

    /// The pattern as written.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Whether the action matches (case-insensitive: IAM user guide, "Action": "The prefix and
    /// the action name are case insensitive").
    pub fn matches(&self, action: &str) -> bool {
        pattern::matches(&self.tokens, action, true)
    }
}

/// A resource matcher.
#[derive(Clone, Debug, PartialEq)]
pub enum ResourcePattern {
    /// `*`: every resource.
    Any,
    /// An ARN pattern with wildcards per ARN part and policy variables.
    Arn(Template),
    /// A Vault ACL path (`secret/data/+/app/*`), matched against `vault:path/...` resources.
    VaultPath(VaultPathPattern),
}

impl ResourcePattern {
    /// The pattern as written.
    pub fn raw(&self) -> &str {
        match self {
            ResourcePattern::Any => "*",
            ResourcePattern::Arn(t) => t.raw(),
            ResourcePattern::VaultPath(p) => p.raw(),
        }
    }

    fn matches(&self, request: &AuthzRequest) -> bool {
        match self {
            ResourcePattern::Any => true,
            ResourcePattern::Arn(t) => t
                .resolve(&|k| request.lookup(k))
                .is_some_and(|toks| arn_matches(&toks, &request.resource)),
            ResourcePattern::VaultPath(p) => p.matches_resource(&request.resource),
        }
    }
}

/// A list of items, or its negation (`NotAction`, `NotResource`, `NotPrincipal`).
#[derive(Clone, Debug, PartialEq)]
pub struct Matcher<T> {
    /// `true` for the `Not...` form: the statement applies to everything *not* listed.
    pub negated: bool,
    /// The listed items.
    pub items: Vec<T>,
}

/// The type of a principal entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PrincipalType {
    /// `"AWS"`: accounts, users, roles, sessions, or `*`.
    Aws,
    /// `"CanonicalUser"` (never matches a Coffer caller).
    CanonicalUser,
    /// `"Federated"` (never matches a Coffer caller).
    Federated,
    /// `"Service"`: an AWS service principal (never matches a Coffer caller).
    Service,
}

impl PrincipalType {
    /// The JSON key.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::Aws => "AWS",
            PrincipalType::CanonicalUser => "CanonicalUser",
            PrincipalType::Federated => "Federated",
            PrincipalType::Service => "Service",
        }
    }
}

/// The `Principal` (or `NotPrincipal`) element.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalSpec {
    /// `"Principal": "*"` (everyone, including anonymous).
    pub everyone: bool,
    /// The typed entries, e.g. `(Aws, "123456789012")`.
    pub entries: Vec<(PrincipalType, String)>,
}

/// How a principal element matched the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalMatch {
    /// Only through the caller's *account* (`"AWS": "<acct>"` or `arn:aws:iam::<acct>:root`):
    /// per the IAM guide ("AWS account principals") this delegates to the account, whose
    /// identity policies must then also allow a non-root caller.
    Account,
    /// The caller itself (its ARN, its role, `*`, or the root user through its account).
    Direct,
}

impl PrincipalSpec {
    /// Whether the spec grants to everyone (`*` or `{"AWS": "*"}`).
    pub fn is_everyone(&self) -> bool {
        self.everyone || self.entries.iter().any(|(t, v)| *t == PrincipalType::Aws && v == "*")
    }

    fn lists_account(&self, p: &Principal) -> bool {
        let root = p.account_root_arn();
        self.entries
            .iter()
            .any(|(t, v)| *t == PrincipalType::Aws && (*v == p.account_id || *v == root))
    }

    fn lists_arn(&self, arn: &str) -> bool {
        self.entries.iter().any(|(t, v)| *t == PrincipalType::Aws && v == arn)
    }

    /// `Principal`: how the caller matches, if at all.
    pub fn match_principal(&self, p: &Principal) -> Option<PrincipalMatch> {
        if self.is_everyone() {
            return Some(PrincipalMatch::Direct);
        }
        if !p.is_root {
            let role = p.session.as_ref().map(|s| s.role_arn.as_str());
            if self.lists_arn(&p.arn) || role.is_some_and(|r| self.lists_arn(r)) {
                return Some(PrincipalMatch::Direct);
            }
        }
        if self.lists_account(p) {
            return Some(if p.is_root {
                PrincipalMatch::Direct
            } else {
                PrincipalMatch::Account
            });
        }
        None
    }

    /// `NotPrincipal`: whether the statement applies to the caller. The caller is checked as a
    /// chain of identities, account, then user or role, then session (IAM guide, "NotPrincipal":
    /// "AWS verifies the account first, then the role, then the assumed-role user"); the caller is
    /// excluded only when every link of its chain is listed.
    pub fn not_principal_applies(&self, p: &Principal) -> bool {
        if self.is_everyone() {
            return false;
        }
        let mut links: Vec<bool> = vec![self.lists_account(p)];
        if !p.is_root {
            match &p.session {
                Some(s) => {
                    links.push(self.lists_arn(&s.role_arn));
                    links.push(self.lists_arn(&p.arn));
                }
                None => links.push(self.lists_arn(&p.arn)),
            }
        }
        links.iter().any(|listed| !listed)
    }
}

/// One statement of the compiled model.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    /// `Sid`, if any.
    pub sid: Option<String>,
    /// `Allow` or `Deny`.
    pub effect: Effect,
    /// `Action` / `NotAction`.
    pub actions: Matcher<ActionPattern>,
    /// `Resource` / `NotResource`; `None` in trust policies (the role itself).
    pub resources: Option<Matcher<ResourcePattern>>,
    /// `Principal` / `NotPrincipal`; `None` in identity policies (the holder).
    pub principals: Option<Matcher<PrincipalSpec>>,
    /// Conditions, all of which must hold.
    pub conditions: Vec<Condition>,
}

impl Statement {
    /// A statement compiled from one Vault `path` block: `vault:<capability>` actions on a Vault
    /// path. A `deny` capability makes it a `Deny` of every Vault capability on that path.
    pub fn vault(path: &str, capabilities: &[VaultCapability]) -> Result<Statement, MalformedPolicy> {
        let pattern = VaultPathPattern::parse(path)?;
        let (effect, actions) = if capabilities.contains(&VaultCapability::Deny) {
            (Effect::Deny, vec![ActionPattern::new("vault:*")])
        } else {
            let actions = capabilities.iter().map(|c| ActionPattern::new(&c.action())).collect();
            (Effect::Allow, actions)
        };
        Ok(Statement {
            sid: Some(path.to_owned()),
            effect,
            actions: Matcher {
                negated: false,
                items: actions,
            },
            resources: Some(Matcher {
                negated: false,
                items: vec![ResourcePattern::VaultPath(pattern)],
            }),
            principals: None,
            conditions: Vec::new(),
        })
    }

    /// Whether the statement's action, resource and conditions apply to the request, and how
    /// its principal element matched (`Direct` when it has none).
    pub fn applies(&self, request: &AuthzRequest) -> Option<PrincipalMatch> {
        let action_listed = self.actions.items.iter().any(|a| a.matches(&request.action));
        if action_listed == self.actions.negated {
            return None;
        }
        if let Some(resources) = &self.resources {
            let listed = resources.items.iter().any(|r| r.matches(request));
            if listed == resources.negated {
                return None;
            }
        }
        let principal_match = match &self.principals {
            None => PrincipalMatch::Direct,
            Some(m) if m.negated => {
                if !m
                    .items
                    .iter()
                    .all(|spec| spec.not_principal_applies(&request.principal))
                {
                    return None;
                }
                PrincipalMatch::Direct
            }
            Some(m) => {
                let best = m
                    .items
                    .iter()
                    .filter_map(|spec| spec.match_principal(&request.principal))
                    .fold(None, |acc, m| match (acc, m) {
                        (Some(PrincipalMatch::Direct), _) | (_, PrincipalMatch::Direct) => Some(PrincipalMatch::Direct),
                        _ => Some(PrincipalMatch::Account),
                    });
                best?
            }
        };
        if !self.conditions.iter().all(|c| c.evaluate(request)) {
            return None;
        }
        Some(principal_match)
    }
}

/// A policy ready for evaluation: its statements plus a name for decisions and audit.
#[derive(Clone, Debug, PartialEq)]
pub struct CompiledPolicy {
    /// A name for decisions (policy name, `resource-policy`, `key-policy`, `vault:<name>`).
    pub name: String,
    /// The kind, deciding how the evaluator uses it.
    pub kind: PolicyKind,
    /// The statements.
    pub statements: Vec<Statement>,
}

impl CompiledPolicy {
    /// A policy from statements built directly (e.g. by the Vault HCL compiler).
    pub fn from_statements(name: &str, kind: PolicyKind, statements: Vec<Statement>) -> CompiledPolicy {
        CompiledPolicy {
            name: name.to_owned(),
            kind,
            statements,
        }
    }
}
