//! Users, roles and groups: create/get/list/delete, tags, group membership, inline
//! policies, and role trust policies. The three kinds share one record shape
//! ([`EntityRecord`]) and most of the code.

use coffer_engines::{AwsError, RequestContext};
use coffer_storage::Write;

use crate::IamEngine;
use crate::errors;
use crate::model::{self, EntityKind, EntityRecord, Tag};
use crate::params::{self, Params};
use crate::validate::{self, PolicyKind};
use crate::xml::{Xml, url_encode};

/// IAM's limits.
const MAX_TAGS: usize = 50;
const DEFAULT_MAX_SESSION: i64 = 3600;
const MAX_MAX_SESSION: i64 = 43200;

/// What the caller's ARN says about it.
pub(crate) enum Caller {
    Root,
    User(String),
    Other,
}

/// Classifies `ctx.principal_arn` (the root, a user of the account, or anything else).
pub(crate) fn caller(ctx: &RequestContext) -> Caller {
    let arn = ctx.principal_arn.as_str();
    if arn == model::root_arn(&ctx.account_id) {
        return Caller::Root;
    }
    let user_prefix = format!("arn:aws:iam::{}:user/", ctx.account_id);
    match arn.strip_prefix(&user_prefix) {
        Some(rest) => Caller::User(rest.rsplit('/').next().unwrap_or(rest).to_string()),
        None => Caller::Other,
    }
}

/// The `UserName`/`RoleName`/`GroupName` parameter name.
fn name_param(kind: EntityKind) -> String {
    format!("{}Name", kind.title())
}

fn name_field(kind: EntityKind) -> String {
    format!("{}Name", kind.word())
}

/// Writes an entity's element content (without the enclosing element).
pub(crate) fn render_entity(x: &mut Xml, e: &EntityRecord, with_tags: bool) {
    let t = e.kind.title();
    x.el("Path", &e.path)
        .el(&format!("{t}Name"), &e.name)
        .el(&format!("{t}Id"), &e.id)
        .el("Arn", &e.arn)
        .el("CreateDate", &model::iso(e.created));
    if e.kind == EntityKind::Role {
        if let Some(doc) = &e.trust_policy {
            x.el("AssumeRolePolicyDocument", &url_encode(doc));
        }
        x.opt("Description", e.description.as_deref());
        x.el(
            "MaxSessionDuration",
            &e.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION).to_string(),
        );
    }
    if with_tags && !e.tags.is_empty() {
        render_tags(x, &e.tags);
    }
}

pub(crate) fn render_tags(x: &mut Xml, tags: &[Tag]) {
    x.members("Tags", tags, |x, t| {
        x.el("Key", &t.key).el("Value", &t.value);
    });
}

/// Merges `new` into `tags` (same key: replaced), enforcing the 50-tag limit.
pub(crate) fn merge_tags(tags: &mut Vec<Tag>, new: Vec<Tag>, what: &str) -> Result<(), AwsError> {
    for t in new {
        match tags.iter_mut().find(|x| x.key == t.key) {
            Some(x) => x.value = t.value,
            None => tags.push(t),
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(errors::limit_exceeded(format!(
            "Cannot exceed quota for TagsPer{what}: {MAX_TAGS}"
        )));
    }
    Ok(())
}

impl IamEngine {
    /// Checks a policy document's size and, through the validator, its content.
    pub(crate) fn check_document(&self, doc: &str, kind: PolicyKind) -> Result<(), AwsError> {
        let max = validate::max_len(kind);
        if doc.chars().count() > max {
            let what = match kind {
                PolicyKind::Managed => "PolicySize",
                PolicyKind::Inline => "PolicySize",
                PolicyKind::Trust => "ACLSizePerRole",
                PolicyKind::Session => "PolicySize",
            };
            return Err(errors::limit_exceeded(format!("Cannot exceed quota for {what}: {max}")));
        }
        self.validator.validate(doc, kind).map_err(errors::malformed_policy)
    }

    /// CreateUser / CreateRole / CreateGroup.
    pub(crate) async fn create_entity(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<String, AwsError> {
        let name = p.required(&name_param(kind), &name_field(kind))?;
        params::check_name(name, &name_field(kind), kind.max_name())?;
        let path = params::path_or_default(p.get("Path"), "path")?;
        let tags = if kind == EntityKind::Group {
            Vec::new()
        } else {
            p.tags("Tags")?
        };
        if tags.len() > MAX_TAGS {
            return Err(errors::limit_exceeded(format!(
                "Cannot exceed quota for TagsPer{}: {MAX_TAGS}",
                kind.title()
            )));
        }
        let mut rec = EntityRecord {
            kind,
            name: name.to_string(),
            id: model::new_unique_id(kind.id_prefix())?,
            arn: model::entity_arn(&ctx.account_id, kind, &path, name),
            path,
            created: ctx.now.unix_timestamp(),
            inline: Default::default(),
            attached: Vec::new(),
            tags,
            groups: Vec::new(),
            access_keys: Vec::new(),
            members: Vec::new(),
            trust_policy: None,
            max_session_duration: None,
            description: None,
        };
        if kind == EntityKind::Role {
            let doc = p.required("AssumeRolePolicyDocument", "assumeRolePolicyDocument")?;
            self.check_document(doc, PolicyKind::Trust)?;
            rec.trust_policy = Some(doc.to_string());
            if let Some(d) = p.get("Description") {
                params::check_len(d, "description", 0, 1000)?;
                rec.description = Some(d.to_string());
            }
            if let Some(m) = p.int("MaxSessionDuration", "maxSessionDuration")? {
                if !(DEFAULT_MAX_SESSION..=MAX_MAX_SESSION).contains(&m) {
                    return Err(errors::validation(format!(
                        "1 validation error detected: Value '{m}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value less than or equal to {MAX_MAX_SESSION} and greater than or equal to {DEFAULT_MAX_SESSION}"
                    )));
                }
                rec.max_session_duration = Some(m);
            }
        }
        let _guard = self.lock(&ctx.account_id).await;
        if self.load_entity(&ctx.account_id, kind, name).await?.is_some() {
            return Err(errors::already_exists(format!(
                "{} with name {name} already exists.",
                kind.title()
            )));
        }
        self.commit(vec![Self::entity_write(&rec, &ctx.account_id)?]).await?;
        let mut x = Xml::new();
        x.nest(kind.title(), |x| render_entity(x, &rec, true));
        Ok(x.finish())
    }

    /// GetUser: a named user, or (without `UserName`) the caller.
    pub(crate) async fn get_user(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let name = match p.get("UserName").filter(|n| !n.is_empty()) {
            Some(n) => n.to_string(),
            None => match caller(ctx) {
                Caller::User(n) => n,
                Caller::Root => {
                    let created = self.load_account(&ctx.account_id).await?.map_or(0, |a| a.created);
                    let mut x = Xml::new();
                    x.nest("User", |x| {
                        x.el("UserId", &ctx.account_id)
                            .el("Arn", &model::root_arn(&ctx.account_id))
                            .el("CreateDate", &model::iso(created));
                    });
                    return Ok(x.finish());
                }
                Caller::Other => {
                    return Err(errors::validation(
                        "Must specify userName when calling with non-User credentials",
                    ));
                }
            },
        };
        self.get_named(ctx, EntityKind::User, &name).await
    }

    /// GetRole (and the common part of GetUser).
    pub(crate) async fn get_entity(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<String, AwsError> {
        let name = p.required(&name_param(kind), &name_field(kind))?;
        self.get_named(ctx, kind, name).await
    }

    async fn get_named(&self, ctx: &RequestContext, kind: EntityKind, name: &str) -> Result<String, AwsError> {
        let rec = self.entity_required(&ctx.account_id, kind, name).await?;
        let mut x = Xml::new();
        x.nest(kind.title(), |x| render_entity(x, &rec, true));
        Ok(x.finish())
    }

    /// ListUsers / ListRoles / ListGroups (PathPrefix, Marker, MaxItems). List results
    /// carry no tags, as AWS's.
    pub(crate) async fn list_entities(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<String, AwsError> {
        let prefix = params::path_prefix(p.get("PathPrefix"))?;
        let max = p.max_items()?;
        let all: Vec<EntityRecord> = self
            .all_entities(&ctx.account_id, kind)
            .await?
            .into_iter()
            .filter(|e| e.path.starts_with(&prefix))
            .collect();
        let (items, next) = params::page(all, |e| e.name.to_ascii_lowercase(), p.marker(), max);
        let mut x = Xml::new();
        x.members(&format!("{}s", kind.title()), &items, |x, e| render_entity(x, e, false));
        x.paging(next.as_deref());
        Ok(x.finish())
    }

    /// DeleteUser / DeleteRole / DeleteGroup: refused with `DeleteConflict` while the
    /// entity has access keys, inline or attached policies, groups or members.
    pub(crate) async fn delete_entity(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<(), AwsError> {
        let name = p.required(&name_param(kind), &name_field(kind))?;
        let _guard = self.lock(&ctx.account_id).await;
        let rec = self.entity_required(&ctx.account_id, kind, name).await?;
        if !rec.access_keys.is_empty() {
            return Err(errors::delete_conflict(
                "Cannot delete entity, must delete access keys first.",
            ));
        }
        if !rec.inline.is_empty() {
            return Err(errors::delete_conflict(
                "Cannot delete entity, must delete policies first.",
            ));
        }
        if !rec.attached.is_empty() {
            return Err(errors::delete_conflict(
                "Cannot delete entity, must detach all policies first.",
            ));
        }
        if !rec.groups.is_empty() || !rec.members.is_empty() {
            return Err(errors::delete_conflict(
                "Cannot delete entity, must remove users from group first.",
            ));
        }
        self.commit(vec![Write::delete(model::entity_key(&ctx.account_id, kind, &rec.name))])
            .await
    }

    /// UpdateAssumeRolePolicy.
    pub(crate) async fn update_assume_role_policy(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<(), AwsError> {
        let name = p.required("RoleName", "roleName")?;
        let doc = p.required("PolicyDocument", "policyDocument")?;
        self.check_document(doc, PolicyKind::Trust)?;
        let _guard = self.lock(&ctx.account_id).await;
        let mut rec = self.entity_required(&ctx.account_id, EntityKind::Role, name).await?;
        rec.trust_policy = Some(doc.to_string());
        self.commit(vec![Self::entity_write(&rec, &ctx.account_id)?]).await
    }

    /// TagUser / TagRole.
    pub(crate) async fn tag_entity(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<(), AwsError> {
        let name = p.required(&name_param(kind), &name_field(kind))?;
        let tags = p.tags("Tags")?;
        if tags.is_empty() {
            return Err(errors::validation(
                "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
            ));
        }
        let _guard = self.lock(&ctx.account_id).await;
        let mut rec = self.entity_required(&ctx.account_id, kind, name).await?;
        merge_tags(&mut rec.tags, tags, kind.title())?;
        self.commit(vec![Self::entity_write(&rec, &ctx.account_id)?]).await
    }

    /// UntagUser / UntagRole (missing keys are ignored, as AWS does).
    pub(crate) async fn untag_entity(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<(), AwsError> {
        let name = p.required(&name_param(kind), &name_field(kind))?;
        let keys = p.string_list("TagKeys");
        let _guard = self.lock(&ctx.account_id).await;
        let mut rec = self.entity_required(&ctx.account_id, kind, name).await?;
        rec.tags.retain(|t| !keys.contains(&t.key));
        self.commit(vec![Self::entity_write(&rec, &ctx.account_id)?]).await
    }

    /// ListUserTags / ListRoleTags.
    pub(crate) async fn list_entity_tags(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<String, AwsError> {
        let name = p.required(&name_param(kind), &name_field(kind))?;
        let max = p.max_items()?;
        let rec = self.entity_required(&ctx.account_id, kind, name).await?;
        let (tags, next) = params::page(rec.tags, |t| t.key.clone(), p.marker(), max);
        let mut x = Xml::new();
        render_tags(&mut x, &tags);
        x.paging(next.as_deref());
        Ok(x.finish())
    }

    /// GetGroup: the group and (a page of) its members.
    pub(crate) async fn get_group(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let name = p.required("GroupName", "groupName")?;
        let max = p.max_items()?;
        let group = self.entity_required(&ctx.account_id, EntityKind::Group, name).await?;
        let mut users = Vec::new();
        for m in &group.members {
            if let Some(u) = self.load_entity(&ctx.account_id, EntityKind::User, m).await? {
                users.push(u);
            }
        }
        users.sort_by_key(|u| u.name.to_ascii_lowercase());
        let (users, next) = params::page(users, |u| u.name.to_ascii_lowercase(), p.marker(), max);
        let mut x = Xml::new();
        x.nest("Group", |x| render_entity(x, &group, false));
        x.members("Users", &users, |x, u| render_entity(x, u, false));
        x.paging(next.as_deref());
        Ok(x.finish())
    }

    /// AddUserToGroup (idempotent).
    pub(crate) async fn add_user_to_group(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<(), AwsError> {
        let group_name = p.required("GroupName", "groupName")?;
        let user_name = p.required("UserName", "userName")?;
        let _guard = self.lock(&ctx.account_id).await;
        let mut group = self
            .entity_required(&ctx.account_id, EntityKind::Group, group_name)
            .await?;
        let mut user = self
            .entity_required(&ctx.account_id, EntityKind::User, user_name)
            .await?;
        if user.groups.iter().any(|g| g.eq_ignore_ascii_case(&group.name)) {
            return Ok(());
        }
        user.groups.push(group.name.clone());
        group.members.push(user.name.clone());
        self.commit(vec![
            Self::entity_write(&user, &ctx.account_id)?,
            Self::entity_write(&group, &ctx.account_id)?,
        ])
        .await
    }

    /// RemoveUserFromGroup.
    pub(crate) async fn remove_user_from_group(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<(), AwsError> {
        let group_name = p.required("GroupName", "groupName")?;
        let user_name = p.required("UserName", "userName")?;
        let _guard = self.lock(&ctx.account_id).await;
        let mut group = self
            .entity_required(&ctx.account_id, EntityKind::Group, group_name)
            .await?;
        let mut user = self
            .entity_required(&ctx.account_id, EntityKind::User, user_name)
            .await?;
        if !user.groups.iter().any(|g| g.eq_ignore_ascii_case(&group.name)) {
            return Err(errors::no_such_entity(format!(
                "User {} is not in group {}.",
                user.name, group.name
            )));
        }
        user.groups.retain(|g| !g.eq_ignore_ascii_case(&group.name));
        group.members.retain(|m| !m.eq_ignore_ascii_case(&user.name));
        self.commit(vec![
            Self::entity_write(&user, &ctx.account_id)?,
            Self::entity_write(&group, &ctx.account_id)?,
        ])
        .await
    }

    /// ListGroupsForUser.
    pub(crate) async fn list_groups_for_user(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let user_name = p.required("UserName", "userName")?;
        let max = p.max_items()?;
        let user = self
            .entity_required(&ctx.account_id, EntityKind::User, user_name)
            .await?;
        let mut groups = Vec::new();
        for g in &user.groups {
            if let Some(rec) = self.load_entity(&ctx.account_id, EntityKind::Group, g).await? {
                groups.push(rec);
            }
        }
        groups.sort_by_key(|g| g.name.to_ascii_lowercase());
        let (groups, next) = params::page(groups, |g| g.name.to_ascii_lowercase(), p.marker(), max);
        let mut x = Xml::new();
        x.members("Groups", &groups, |x, g| render_entity(x, g, false));
        x.paging(next.as_deref());
        Ok(x.finish())
    }

    /// PutUserPolicy / PutRolePolicy / PutGroupPolicy (creates or replaces).
    pub(crate) async fn put_inline(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<(), AwsError> {
        let name = p.required(&name_param(kind), &name_field(kind))?;
        let policy_name = p.required("PolicyName", "policyName")?;
        params::check_name(policy_name, "policyName", 128)?;
        let doc = p.required("PolicyDocument", "policyDocument")?;
        self.check_document(doc, PolicyKind::Inline)?;
        let _guard = self.lock(&ctx.account_id).await;
        let mut rec = self.entity_required(&ctx.account_id, kind, name).await?;
        rec.inline.insert(policy_name.to_string(), doc.to_string());
        self.commit(vec![Self::entity_write(&rec, &ctx.account_id)?]).await
    }

    /// GetUserPolicy / GetRolePolicy / GetGroupPolicy.
    pub(crate) async fn get_inline(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<String, AwsError> {
        let name = p.required(&name_param(kind), &name_field(kind))?;
        let policy_name = p.required("PolicyName", "policyName")?;
        let rec = self.entity_required(&ctx.account_id, kind, name).await?;
        let doc = rec
            .inline
            .get(policy_name)
            .ok_or_else(|| inline_not_found(kind, policy_name))?;
        let mut x = Xml::new();
        x.el(&name_param(kind), &rec.name)
            .el("PolicyName", policy_name)
            .el("PolicyDocument", &url_encode(doc));
        Ok(x.finish())
    }

    /// DeleteUserPolicy / DeleteRolePolicy / DeleteGroupPolicy.
    pub(crate) async fn delete_inline(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<(), AwsError> {
        let name = p.required(&name_param(kind), &name_field(kind))?;
        let policy_name = p.required("PolicyName", "policyName")?;
        let _guard = self.lock(&ctx.account_id).await;
        let mut rec = self.entity_required(&ctx.account_id, kind, name).await?;
        if rec.inline.remove(policy_name).is_none() {
            return Err(inline_not_found(kind, policy_name));
        }
        self.commit(vec![Self::entity_write(&rec, &ctx.account_id)?]).await
    }

    /// ListUserPolicies / ListRolePolicies / ListGroupPolicies.
    pub(crate) async fn list_inline(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<String, AwsError> {
        let name = p.required(&name_param(kind), &name_field(kind))?;
        let max = p.max_items()?;
        let rec = self.entity_required(&ctx.account_id, kind, name).await?;
        let names: Vec<String> = rec.inline.keys().cloned().collect();
        let (names, next) = params::page(names, Clone::clone, p.marker(), max);
        let mut x = Xml::new();
        x.open("PolicyNames");
        for n in &names {
            x.el("member", n);
        }
        x.close("PolicyNames");
        x.paging(next.as_deref());
        Ok(x.finish())
    }
}

fn inline_not_found(kind: EntityKind, policy_name: &str) -> AwsError {
    errors::no_such_entity(format!(
        "The {} policy with name {policy_name} cannot be found.",
        kind.word()
    ))
}
