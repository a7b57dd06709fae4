//! The evaluator: identity policies, a resource policy and a KMS key policy decide one request
//! together.
//!
//! The rules, with their sources (IAM user guide, "Policy evaluation logic", "Cross-account
//! policy evaluation logic"; KMS developer guide, "Key policies in AWS KMS", "Default key policy",
//! "Allowing users in other accounts to use a KMS key"):
//!
//! 1. Every statement of every policy is checked: its action (`Action`/`NotAction`), resource
//!    (`Resource`/`NotResource`), principal (`Principal`/`NotPrincipal`, resource and key policies
//!    only) and conditions must all apply.
//! 2. **An applicable `Deny` anywhere wins** ("An explicit deny in any policy overrides any
//!    allow"), including for the account root user.
//! 3. **KMS** (a key policy is given): "Every KMS key must have exactly one key policy … Unless
//!    the key policy explicitly allows it, you cannot use IAM policies to allow access to a KMS
//!    key." So:
//!    - same account: allowed when a key-policy `Allow` names the caller directly (its ARN, its
//!      role, `*`, or the root user through the account principal), or when a key-policy `Allow`
//!      names the caller's *account* (`arn:aws:iam::<acct>:root`, the default key policy's
//!      delegation statement) **and** the caller's identity policies allow;
//!    - other account: the key policy must allow the caller (directly or through its account)
//!      **and** the caller's identity policies must allow.
//!    - The root user is *not* exempt: a key policy that does not allow the account leaves even
//!      the root user locked out (AWS's lockout, which its safety check on `PutKeyPolicy` guards
//!      against).
//! 4. **Resource policy** (e.g. a secret's): same account, allowed when the identity policies
//!    allow **or** the resource policy allows the caller directly ("within the same account …
//!    an allow in either an identity-based policy or a resource-based policy results in an
//!    allow"); an account principal in the resource policy only delegates to the account's
//!    identity policies. Other account: the resource policy must allow the caller (directly or
//!    through its account) **and** the caller's identity policies must allow.
//! 5. No resource or key policy: same account, allowed when the identity policies allow; another
//!    account's resource can never be reached.
//! 6. The **account root user** has no identity policies and needs none: it counts as allowed by
//!    its own account (for its own resources, and as the caller side of cross-account access), and
//!    is stopped only by an explicit `Deny` in a resource or key policy, or by a KMS key policy that
//!    does not allow its account (rule 3).
//! 7. Anything else is an **implicit deny**.
//!
//! Out of scope (not part of Coffer's model): SCPs/RCPs, permissions boundaries, session
//! policies, KMS grants.

use crate::model::{CompiledPolicy, Effect, PrincipalMatch};
use crate::request::AuthzRequest;

/// The outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecisionEffect {
    /// The request is allowed.
    Allow,
    /// An applicable `Deny` statement.
    ExplicitDeny,
    /// Nothing allowed the request (or not every required policy did).
    ImplicitDeny,
}

/// Why the evaluator decided as it did (for audit lines and error messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DecisionReason {
    /// Cross-account access allowed by both the resource/key policy and the identity policies.
    CrossAccount,
    /// Cross-account request to a resource without a resource policy.
    CrossAccountWithoutResourcePolicy,
    /// A `Deny` statement applied.
    ExplicitDeny,
    /// Allowed by the caller's identity policies.
    IdentityPolicy,
    /// The resource/key policy allowed, but the caller's identity policies did not.
    IdentityPolicyDoesNotAllow,
    /// Allowed by the key policy naming the caller directly.
    KeyPolicy,
    /// Allowed by the key policy delegating to the account's IAM policies, which allowed.
    KeyPolicyDelegation,
    /// The key policy allows neither the caller nor (with an identity allow) its account.
    KeyPolicyDoesNotAllow,
    /// No statement allowed the request.
    NoMatchingAllow,
    /// Allowed by the resource policy naming the caller directly.
    ResourcePolicy,
    /// The resource policy does not allow a cross-account caller.
    ResourcePolicyDoesNotAllow,
    /// The account root user acting in its own account.
    RootUser,
}

/// Which policy a statement came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PolicySource {
    /// An identity policy of the caller.
    Identity,
    /// The KMS key policy.
    KeyPolicy,
    /// The resource policy.
    Resource,
}

/// A statement that took part in a decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatementRef {
    /// Where the policy came from.
    pub source: PolicySource,
    /// The policy's name.
    pub policy: String,
    /// The statement's `Sid`, if any.
    pub sid: Option<String>,
    /// The statement's position in its policy.
    pub index: usize,
}

/// The decision for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Allow, explicit deny or implicit deny.
    pub effect: DecisionEffect,
    /// Why.
    pub reason: DecisionReason,
    /// The deciding statements: the `Deny`s for an explicit deny, the `Allow`s that granted for
    /// an allow, empty for an implicit deny.
    pub statements: Vec<StatementRef>,
}

impl Decision {
    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.effect == DecisionEffect::Allow
    }

    fn allow(reason: DecisionReason, statements: Vec<StatementRef>) -> Decision {
        Decision {
            effect: DecisionEffect::Allow,
            reason,
            statements,
        }
    }

    fn implicit(reason: DecisionReason) -> Decision {
        Decision {
            effect: DecisionEffect::ImplicitDeny,
            reason,
            statements: Vec::new(),
        }
    }
}

#[derive(Default)]
struct Applicable {
    deny: Vec<StatementRef>,
    allow_direct: Vec<StatementRef>,
    allow_account: Vec<StatementRef>,
}

fn collect(policy: &CompiledPolicy, source: PolicySource, request: &AuthzRequest, into: &mut Applicable) {
    for (index, statement) in policy.statements.iter().enumerate() {
        let Some(principal_match) = statement.applies(request) else {
            continue;
        };
        let r = StatementRef {
            source,
            policy: policy.name.clone(),
            sid: statement.sid.clone(),
            index,
        };
        match (statement.effect, principal_match) {
            (Effect::Deny, _) => into.deny.push(r),
            (Effect::Allow, PrincipalMatch::Direct) => into.allow_direct.push(r),
            (Effect::Allow, PrincipalMatch::Account) => into.allow_account.push(r),
        }
    }
}

/// Decides `request` against the caller's identity policies, the resource's policy (if any) and
/// the KMS key policy (if the resource is a KMS key). See the module documentation for the rules.
pub fn evaluate(
    request: &AuthzRequest,
    identity: &[&CompiledPolicy],
    resource_policy: Option<&CompiledPolicy>,
    key_policy: Option<&CompiledPolicy>,
) -> Decision {
    let mut id = Applicable::default();
    for policy in identity {
        collect(policy, PolicySource::Identity, request, &mut id);
    }
    let mut res = Applicable::default();
    if let Some(policy) = resource_policy {
        collect(policy, PolicySource::Resource, request, &mut res);
    }
    let mut key = Applicable::default();
    if let Some(policy) = key_policy {
        collect(policy, PolicySource::KeyPolicy, request, &mut key);
    }

    let denies: Vec<StatementRef> = std::mem::take(&mut id.deny)
        .into_iter()
        .chain(std::mem::take(&mut res.deny))
        .chain(std::mem::take(&mut key.deny))
        .collect();
    if !denies.is_empty() {
        return Decision {
            effect: DecisionEffect::ExplicitDeny,
            reason: DecisionReason::ExplicitDeny,
            statements: denies,
        };
    }

    let root = request.principal.is_root;
    // Identity allows (account match cannot occur without a Principal element).
    let id_allows: Vec<StatementRef> = id.allow_direct.into_iter().chain(id.allow_account).collect();
    let identity_ok = root || !id_allows.is_empty();
    let identity_reason = if id_allows.is_empty() {
        DecisionReason::RootUser
    } else {
        DecisionReason::IdentityPolicy
    };
    let same_account = request.principal.account_id == request.resource_account;

    if key_policy.is_some() {
        if same_account {
            if !key.allow_direct.is_empty() {
                return Decision::allow(DecisionReason::KeyPolicy, key.allow_direct);
            }
            if !key.allow_account.is_empty() && identity_ok {
                let statements = key.allow_account.into_iter().chain(id_allows).collect();
                return Decision::allow(DecisionReason::KeyPolicyDelegation, statements);
            }
            return Decision::implicit(DecisionReason::KeyPolicyDoesNotAllow);
        }
        return cross_account(key, id_allows, identity_ok, DecisionReason::KeyPolicyDoesNotAllow);
    }

    if resource_policy.is_some() {
        if same_account {
            if identity_ok {
                return Decision::allow(identity_reason, id_allows);
            }
            if !res.allow_direct.is_empty() {
                return Decision::allow(DecisionReason::ResourcePolicy, res.allow_direct);
            }
            return Decision::implicit(DecisionReason::NoMatchingAllow);
        }
        return cross_account(res, id_allows, identity_ok, DecisionReason::ResourcePolicyDoesNotAllow);
    }

    if !same_account {
        return Decision::implicit(DecisionReason::CrossAccountWithoutResourcePolicy);
    }
    if identity_ok {
        return Decision::allow(identity_reason, id_allows);
    }
    Decision::implicit(DecisionReason::NoMatchingAllow)
}

fn cross_account(
    owner: Applicable,
    id_allows: Vec<StatementRef>,
    identity_ok: bool,
    owner_refuses: DecisionReason,
) -> Decision {
    let owner_allows: Vec<StatementRef> = owner.allow_direct.into_iter().chain(owner.allow_account).collect();
    if owner_allows.is_empty() {
        return Decision::implicit(owner_refuses);
    }
    if !identity_ok {
        return Decision::implicit(DecisionReason::IdentityPolicyDoesNotAllow);
    }
    Decision::allow(
        DecisionReason::CrossAccount,
        owner_allows.into_iter().chain(id_allows).collect(),
    )
}
