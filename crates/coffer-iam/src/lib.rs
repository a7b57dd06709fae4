//! Coffer's IAM and STS engine: the data plane of identities.
//!
//! [`IamEngine::handle`] runs one AWS Query-protocol action (`Action=...`, form parameters
//! already decoded) of IAM or STS in the caller's account (`RequestContext::account_id`) and
//! returns the XML response (with [`REQUEST_ID_PLACEHOLDER`] where the request id goes) or an
//! [`AwsError`] carrying IAM's code (render it with [`xml::error_response`]).
//!
//! The engine also owns access keys and sessions: [`IamEngine::resolve_access_key`] is what
//! SigV4 verification calls, [`IamEngine::principal_policies`] what the policy evaluator
//! reads. Policy documents are checked by a pluggable [`PolicyValidator`]; AssumeRole's
//! trust decision by a pluggable [`TrustCheck`].
//!
//! Module map: [`params`] (input decoding), [`xml`] (output), [`model`] (records, storage
//! layout, ids), [`store`] (locks, loading, commit + cache invalidation), [`entities`]
//! (users, roles, groups, inline policies, tags), [`policies`] (managed policies, versions,
//! attachments), [`keys`] (access keys, resolution, accounts), [`sts`] (AssumeRole,
//! GetCallerIdentity), [`principal`] (public principal types), [`validate`].

mod entities;
mod errors;
mod keys;
mod model;
mod params;
mod policies;
pub mod principal;
mod store;
mod sts;
pub mod validate;
pub mod xml;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use coffer_engines::{AwsError, RequestContext};
use coffer_storage::DynStorage;
use parking_lot::RwLock;
use tokio::sync::Mutex;

pub use model::{EntityKind, Tag};
pub use principal::{KeyResolution, PolicySource, Principal, PrincipalKind, PrincipalPolicy, ResolvedKey};
pub use sts::{BasicTrustCheck, ServiceCredentials, TrustCheck, TrustRequest};
pub use validate::{BasicPolicyValidator, PolicyKind, PolicyValidator};
pub use xml::{REQUEST_ID_PLACEHOLDER, error_response, with_request_id};

use crate::params::Params;

/// The IAM/STS engine over one storage view (the core gives it a view behind the barrier).
pub struct IamEngine {
    storage: DynStorage,
    /// Striped write locks by account: writers of one account's identities are serialized.
    locks: Vec<Mutex<()>>,
    /// Resolved access keys by id; cleared on every write (see [`store`]).
    key_cache: RwLock<HashMap<String, Arc<keys::CachedKey>>>,
    /// Bumped on every write, so a resolution that raced a write does not fill the cache.
    generation: AtomicU64,
    validator: Arc<dyn PolicyValidator>,
    trust: Arc<dyn TrustCheck>,
}

impl IamEngine {
    /// An engine with the [`BasicPolicyValidator`] and the [`BasicTrustCheck`] check.
    pub fn new(storage: DynStorage) -> Self {
        Self {
            storage,
            locks: (0..store::LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
            key_cache: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(0),
            validator: Arc::new(BasicPolicyValidator),
            trust: Arc::new(BasicTrustCheck),
        }
    }

    /// Installs the policy document validator (the real policy parser).
    pub fn with_validator(mut self, validator: Arc<dyn PolicyValidator>) -> Self {
        self.validator = validator;
        self
    }

    /// Installs the trust-policy decision used by AssumeRole (the policy evaluator).
    pub fn with_trust_check(mut self, trust: Arc<dyn TrustCheck>) -> Self {
        self.trust = trust;
        self
    }

    /// Runs one IAM (`service == "iam"`) or STS (`"sts"`) action. The result is the whole
    /// XML document, with [`REQUEST_ID_PLACEHOLDER`] standing for the request id (fill it in
    /// with [`with_request_id`]). Errors carry IAM/STS codes; statuses via
    /// `AwsErrorCode::status_query`.
    ///
    /// Authorization is the caller's business: this runs the action as asked, scoped to
    /// `ctx.account_id`.
    pub async fn handle(
        &self,
        ctx: &RequestContext,
        service: &str,
        action: &str,
        params: &[(String, String)],
    ) -> Result<String, AwsError> {
        let p = Params::new(params);
        tracing::debug!(service, action, account = %ctx.account_id, "iam request");
        let result: Option<String> = match (service, action) {
            ("sts", "GetCallerIdentity") => Some(self.get_caller_identity(ctx).await?),
            ("sts", "AssumeRole") => Some(self.assume_role_action(ctx, &p).await?),
            ("iam", _) => self.handle_iam(ctx, action, &p).await?,
            _ => {
                let version = p.get("Version").unwrap_or_default();
                return Err(AwsError::new(
                    coffer_engines::AwsErrorCode::InvalidAction,
                    format!("Could not find operation {action} for version {version}"),
                ));
            }
        };
        Ok(xml::envelope(service, action, result.as_deref()))
    }

    async fn handle_iam(&self, ctx: &RequestContext, action: &str, p: &Params<'_>) -> Result<Option<String>, AwsError> {
        use EntityKind::{Group, Role, User};
        let some = |r: Result<String, AwsError>| r.map(Some);
        let none = |r: Result<(), AwsError>| r.map(|()| None);
        match action {
            "CreateUser" => some(self.create_entity(ctx, User, p).await),
            "GetUser" => some(self.get_user(ctx, p).await),
            "ListUsers" => some(self.list_entities(ctx, User, p).await),
            "DeleteUser" => none(self.delete_entity(ctx, User, p).await),
            "TagUser" => none(self.tag_entity(ctx, User, p).await),
            "UntagUser" => none(self.untag_entity(ctx, User, p).await),
            "ListUserTags" => some(self.list_entity_tags(ctx, User, p).await),
            "CreateRole" => some(self.create_entity(ctx, Role, p).await),
            "GetRole" => some(self.get_entity(ctx, Role, p).await),
            "ListRoles" => some(self.list_entities(ctx, Role, p).await),
            "DeleteRole" => none(self.delete_entity(ctx, Role, p).await),
            "UpdateAssumeRolePolicy" => none(self.update_assume_role_policy(ctx, p).await),
            "TagRole" => none(self.tag_entity(ctx, Role, p).await),
            "UntagRole" => none(self.untag_entity(ctx, Role, p).await),
            "ListRoleTags" => some(self.list_entity_tags(ctx, Role, p).await),
            "CreateGroup" => some(self.create_entity(ctx, Group, p).await),
            "GetGroup" => some(self.get_group(ctx, p).await),
            "ListGroups" => some(self.list_entities(ctx, Group, p).await),
            "DeleteGroup" => none(self.delete_entity(ctx, Group, p).await),
            "AddUserToGroup" => none(self.add_user_to_group(ctx, p).await),
            "RemoveUserFromGroup" => none(self.remove_user_from_group(ctx, p).await),
            "ListGroupsForUser" => some(self.list_groups_for_user(ctx, p).await),
            "PutUserPolicy" => none(self.put_inline(ctx, User, p).await),
            "GetUserPolicy" => some(self.get_inline(ctx, User, p).await),
            "DeleteUserPolicy" => none(self.delete_inline(ctx, User, p).await),
            "ListUserPolicies" => some(self.list_inline(ctx, User, p).await),
            "PutRolePolicy" => none(self.put_inline(ctx, Role, p).await),
            "GetRolePolicy" => some(self.get_inline(ctx, Role, p).await),
            "DeleteRolePolicy" => none(self.delete_inline(ctx, Role, p).await),
            "ListRolePolicies" => some(self.list_inline(ctx, Role, p).await),
            "PutGroupPolicy" => none(self.put_inline(ctx, Group, p).await),
            "GetGroupPolicy" => some(self.get_inline(ctx, Group, p).await),
            "DeleteGroupPolicy" => none(self.delete_inline(ctx, Group, p).await),
            "ListGroupPolicies" => some(self.list_inline(ctx, Group, p).await),
            "AttachUserPolicy" => none(self.attach(ctx, User, p).await),
            "DetachUserPolicy" => none(self.detach(ctx, User, p).await),
            "ListAttachedUserPolicies" => some(self.list_attached(ctx, User, p).await),
            "AttachRolePolicy" => none(self.attach(ctx, Role, p).await),
            "DetachRolePolicy" => none(self.detach(ctx, Role, p).await),
            "ListAttachedRolePolicies" => some(self.list_attached(ctx, Role, p).await),
            "AttachGroupPolicy" => none(self.attach(ctx, Group, p).await),
            "DetachGroupPolicy" => none(self.detach(ctx, Group, p).await),
            "ListAttachedGroupPolicies" => some(self.list_attached(ctx, Group, p).await),
            "CreatePolicy" => some(self.create_policy(ctx, p).await),
            "GetPolicy" => some(self.get_policy(ctx, p).await),
            "ListPolicies" => some(self.list_policies(ctx, p).await),
            "DeletePolicy" => none(self.delete_policy(ctx, p).await),
            "CreatePolicyVersion" => some(self.create_policy_version(ctx, p).await),
            "GetPolicyVersion" => some(self.get_policy_version(ctx, p).await),
            "ListPolicyVersions" => some(self.list_policy_versions(ctx, p).await),
            "SetDefaultPolicyVersion" => none(self.set_default_policy_version(ctx, p).await),
            "DeletePolicyVersion" => none(self.delete_policy_version(ctx, p).await),
            "ListEntitiesForPolicy" => some(self.list_entities_for_policy(ctx, p).await),
            "CreateAccessKey" => some(self.create_access_key(ctx, p).await),
            "ListAccessKeys" => some(self.list_access_keys(ctx, p).await),
            "UpdateAccessKey" => none(self.update_access_key(ctx, p).await),
            "DeleteAccessKey" => none(self.delete_access_key(ctx, p).await),
            "GetAccessKeyLastUsed" => some(self.get_access_key_last_used(ctx, p).await),
            _ => {
                let version = p.get("Version").unwrap_or_default();
                Err(AwsError::new(
                    coffer_engines::AwsErrorCode::InvalidAction,
                    format!("Could not find operation {action} for version {version}"),
                ))
            }
        }
    }
}
