//! Managed policies: create/get/list/delete, versions (at most five, `v1`, `v2`, ... never
//! reused), attachment to users, roles and groups, and the few AWS-managed policies Coffer
//! ships as documents (`arn:aws:iam::aws:policy/...`).

use coffer_engines::{AwsError, RequestContext};
use coffer_storage::Write;

use crate::IamEngine;
use crate::errors;
use crate::model::{self, Attachment, EntityKind, PolicyRecord, PolicyVersion};
use crate::params::{self, Params};
use crate::validate::PolicyKind;
use crate::xml::{Xml, url_encode};

/// AWS's limits.
const MAX_VERSIONS: usize = 5;
const MAX_ATTACHED: usize = 10;

/// When the AWS-managed documents are dated (2015-02-06).
const AWS_POLICY_DATE: i64 = 1_423_180_800;

/// The AWS-managed policies Coffer knows: name, id, document.
const AWS_POLICIES: &[(&str, &str, &str)] = &[
    (
        "AdministratorAccess",
        "ANPACOFFERAWSADMIN001",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#,
    ),
    (
        "ReadOnlyAccess",
        "ANPACOFFERAWSREAD0001",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:Describe*","secretsmanager:List*","secretsmanager:GetResourcePolicy","ssm:Describe*","ssm:Get*","ssm:List*","kms:Describe*","kms:Get*","kms:List*","iam:Get*","iam:List*","sts:GetCallerIdentity"],"Resource":"*"}]}"#,
    ),
    (
        "SecretsManagerReadWrite",
        "ANPACOFFERAWSSMRW0001",
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:*","kms:DescribeKey","kms:ListAliases","kms:ListKeys","tag:GetResources"],"Resource":"*"}]}"#,
    ),
];

/// Where a policy ARN points.
enum PolicyRef {
    Local(String),
    Aws(String),
    /// Another account's, or not a policy ARN: never visible.
    Invisible,
}

fn parse_policy_arn(ctx: &RequestContext, arn: &str) -> PolicyRef {
    let Some(rest) = arn.strip_prefix("arn:aws:iam::") else {
        return PolicyRef::Invisible;
    };
    let Some((account, resource)) = rest.split_once(':') else {
        return PolicyRef::Invisible;
    };
    let Some(path_name) = resource.strip_prefix("policy/") else {
        return PolicyRef::Invisible;
    };
    let name = path_name.rsplit('/').next().unwrap_or(path_name).to_string();
    if account == "aws" {
        PolicyRef::Aws(name)
    } else if account == ctx.account_id {
        PolicyRef::Local(name)
    } else {
        PolicyRef::Invisible
    }
}

/// The account-independent template of an AWS-managed policy.
fn aws_template(name: &str) -> Option<PolicyRecord> {
    let (n, id, doc) = AWS_POLICIES.iter().find(|(n, _, _)| *n == name)?;
    Some(PolicyRecord {
        name: (*n).to_string(),
        id: (*id).to_string(),
        path: "/".into(),
        arn: format!("arn:aws:iam::aws:policy/{n}"),
        description: None,
        created: AWS_POLICY_DATE,
        updated: AWS_POLICY_DATE,
        default_version: "v1".into(),
        next_version: 2,
        versions: vec![PolicyVersion {
            id: "v1".into(),
            document: (*doc).to_string(),
            created: AWS_POLICY_DATE,
        }],
        attachments: Vec::new(),
        tags: Vec::new(),
        aws_managed: true,
    })
}

fn not_attachable(arn: &str) -> AwsError {
    errors::no_such_entity(format!("Policy {arn} does not exist or is not attachable."))
}

fn render_policy(x: &mut Xml, p: &PolicyRecord, full: bool) {
    x.el("PolicyName", &p.name)
        .el("PolicyId", &p.id)
        .el("Arn", &p.arn)
        .el("Path", &p.path)
        .el("DefaultVersionId", &p.default_version)
        .el("AttachmentCount", &p.attachments.len().to_string())
        .el("PermissionsBoundaryUsageCount", "0")
        .el("IsAttachable", "true");
    if full {
        x.opt("Description", p.description.as_deref());
    }
    x.el("CreateDate", &model::iso(p.created))
        .el("UpdateDate", &model::iso(p.updated));
    if full && !p.tags.is_empty() {
        crate::entities::render_tags(x, &p.tags);
    }
}

fn render_version(x: &mut Xml, p: &PolicyRecord, v: &PolicyVersion, with_doc: bool) {
    if with_doc {
        x.el("Document", &url_encode(&v.document));
    }
    x.el("VersionId", &v.id)
        .el(
            "IsDefaultVersion",
            if v.id == p.default_version { "true" } else { "false" },
        )
        .el("CreateDate", &model::iso(v.created));
}

impl IamEngine {
    /// The policy an ARN names, as visible from `ctx`'s account.
    async fn find_policy(&self, ctx: &RequestContext, arn: &str) -> Result<Option<PolicyRecord>, AwsError> {
        match parse_policy_arn(ctx, arn) {
            PolicyRef::Invisible => Ok(None),
            PolicyRef::Local(name) => Ok(self
                .load_local_policy(&ctx.account_id, &name)
                .await?
                .filter(|p| p.arn == arn)),
            PolicyRef::Aws(name) => {
                let Some(template) = aws_template(&name) else {
                    return Ok(None);
                };
                if template.arn != arn {
                    return Ok(None);
                }
                let shadow: Option<PolicyRecord> = self
                    .get_record(&model::aws_policy_key(&ctx.account_id, &name), "policy")
                    .await?;
                Ok(Some(match shadow {
                    Some(s) => PolicyRecord {
                        attachments: s.attachments,
                        ..template
                    },
                    None => template,
                }))
            }
        }
    }

    async fn policy_required(&self, ctx: &RequestContext, arn: &str) -> Result<PolicyRecord, AwsError> {
        self.find_policy(ctx, arn).await?.ok_or_else(|| not_attachable(arn))
    }

    /// The default version's document of a policy by ARN, seen from `account`.
    pub(crate) async fn policy_document(&self, account: &str, arn: &str) -> Result<Option<String>, AwsError> {
        let ctx = RequestContext {
            account_id: account.to_string(),
            region: String::new(),
            principal_arn: String::new(),
            now: time::OffsetDateTime::UNIX_EPOCH,
        };
        Ok(self
            .find_policy(&ctx, arn)
            .await?
            .and_then(|p| p.default_document().map(str::to_string)))
    }

    /// CreatePolicy.
    pub(crate) async fn create_policy(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let name = p.required("PolicyName", "policyName")?;
        params::check_name(name, "policyName", 128)?;
        let path = params::path_or_default(p.get("Path"), "path")?;
        let doc = p.required("PolicyDocument", "policyDocument")?;
        let description = p.get("Description").map(str::to_string);
        if let Some(d) = &description {
            params::check_len(d, "description", 0, 1000)?;
        }
        let tags = p.tags("Tags")?;
        self.check_document(doc, PolicyKind::Managed)?;
        let now = ctx.now.unix_timestamp();
        let rec = PolicyRecord {
            name: name.to_string(),
            id: model::new_unique_id("ANPA")?,
            arn: model::policy_arn(&ctx.account_id, &path, name),
            path,
            description,
            created: now,
            updated: now,
            default_version: "v1".into(),
            next_version: 2,
            versions: vec![PolicyVersion {
                id: "v1".into(),
                document: doc.to_string(),
                created: now,
            }],
            attachments: Vec::new(),
            tags,
            aws_managed: false,
        };
        let _guard = self.lock(&ctx.account_id).await;
        if self.load_local_policy(&ctx.account_id, name).await?.is_some() {
            return Err(errors::already_exists(format!(
                "A policy called {name} already exists. Duplicate names are not allowed."
            )));
        }
        self.commit(vec![Self::policy_write(&rec, &ctx.account_id)?]).await?;
        let mut x = Xml::new();
        x.nest("Policy", |x| render_policy(x, &rec, true));
        Ok(x.finish())
    }

    /// GetPolicy.
    pub(crate) async fn get_policy(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let arn = p.required("PolicyArn", "policyArn")?;
        let rec = self
            .find_policy(ctx, arn)
            .await?
            .ok_or_else(|| errors::no_such_entity(format!("Policy {arn} was not found.")))?;
        let mut x = Xml::new();
        x.nest("Policy", |x| render_policy(x, &rec, true));
        Ok(x.finish())
    }

    /// ListPolicies (Scope All|AWS|Local, OnlyAttached, PathPrefix, Marker, MaxItems).
    pub(crate) async fn list_policies(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let scope = p.get("Scope").unwrap_or("All");
        if !matches!(scope, "All" | "AWS" | "Local") {
            return Err(errors::validation(format!(
                "1 validation error detected: Value '{scope}' at 'scope' failed to satisfy constraint: Member must satisfy enum value set: [All, AWS, Local]"
            )));
        }
        let only_attached = p.bool("OnlyAttached")?.unwrap_or(false);
        let prefix = params::path_prefix(p.get("PathPrefix"))?;
        let max = p.max_items()?;
        let mut all: Vec<(String, PolicyRecord)> = Vec::new();
        if scope != "Local" {
            for (name, _, _) in AWS_POLICIES {
                let arn = format!("arn:aws:iam::aws:policy/{name}");
                if let Some(rec) = self.find_policy(ctx, &arn).await? {
                    all.push((format!("0/{}", name.to_ascii_lowercase()), rec));
                }
            }
        }
        if scope != "AWS" {
            let dir = model::local_policy_dir(&ctx.account_id);
            for key in self.storage.list(&dir).await.map_err(errors::storage)? {
                if let Some(rec) = self
                    .get_record::<PolicyRecord>(&format!("{dir}{key}"), "policy")
                    .await?
                {
                    all.push((format!("1/{key}"), rec));
                }
            }
        }
        all.retain(|(_, r)| r.path.starts_with(&prefix) && (!only_attached || !r.attachments.is_empty()));
        all.sort_by(|a, b| a.0.cmp(&b.0));
        let (items, next) = params::page(all, |(k, _)| k.clone(), p.marker(), max);
        let mut x = Xml::new();
        x.members("Policies", &items, |x, (_, r)| render_policy(x, r, false));
        x.paging(next.as_deref());
        Ok(x.finish())
    }

    /// DeletePolicy: refused while attached or while it has non-default versions.
    pub(crate) async fn delete_policy(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<(), AwsError> {
        let arn = p.required("PolicyArn", "policyArn")?;
        let _guard = self.lock(&ctx.account_id).await;
        let rec = self.policy_required(ctx, arn).await?;
        if rec.aws_managed {
            return Err(errors::invalid_input(format!(
                "Cannot delete the AWS-managed policy {arn}."
            )));
        }
        if !rec.attachments.is_empty() {
            return Err(errors::delete_conflict("Cannot delete a policy attached to entities."));
        }
        if rec.versions.len() > 1 {
            return Err(errors::delete_conflict(
                "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.",
            ));
        }
        self.commit(vec![Write::delete(model::local_policy_key(&ctx.account_id, &rec.name))])
            .await
    }

    /// CreatePolicyVersion (at most five versions; `SetAsDefault`).
    pub(crate) async fn create_policy_version(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let arn = p.required("PolicyArn", "policyArn")?;
        let doc = p.required("PolicyDocument", "policyDocument")?;
        let set_default = p.bool("SetAsDefault")?.unwrap_or(false);
        self.check_document(doc, PolicyKind::Managed)?;
        let _guard = self.lock(&ctx.account_id).await;
        let mut rec = self.local_policy_required(ctx, arn).await?;
        if rec.versions.len() >= MAX_VERSIONS {
            return Err(errors::limit_exceeded(format!(
                "A managed policy can have up to {MAX_VERSIONS} versions. Before you create a new version, you must delete an existing version."
            )));
        }
        let now = ctx.now.unix_timestamp();
        let version = PolicyVersion {
            id: format!("v{}", rec.next_version),
            document: doc.to_string(),
            created: now,
        };
        rec.next_version = rec.next_version.saturating_add(1);
        if set_default {
            rec.default_version = version.id.clone();
        }
        rec.updated = now;
        rec.versions.push(version.clone());
        self.commit(vec![Self::policy_write(&rec, &ctx.account_id)?]).await?;
        let mut x = Xml::new();
        x.nest("PolicyVersion", |x| render_version(x, &rec, &version, false));
        Ok(x.finish())
    }

    /// A customer-managed policy (versions of AWS-managed ones cannot be changed).
    async fn local_policy_required(&self, ctx: &RequestContext, arn: &str) -> Result<PolicyRecord, AwsError> {
        let rec = self.policy_required(ctx, arn).await?;
        if rec.aws_managed {
            return Err(errors::invalid_input(format!(
                "Cannot modify the AWS-managed policy {arn}."
            )));
        }
        Ok(rec)
    }

    /// GetPolicyVersion.
    pub(crate) async fn get_policy_version(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let arn = p.required("PolicyArn", "policyArn")?;
        let vid = p.required("VersionId", "versionId")?;
        let rec = self.policy_required(ctx, arn).await?;
        let v = rec
            .versions
            .iter()
            .find(|v| v.id == vid)
            .ok_or_else(|| version_not_found(arn, vid))?;
        let mut x = Xml::new();
        x.nest("PolicyVersion", |x| render_version(x, &rec, v, true));
        Ok(x.finish())
    }

    /// ListPolicyVersions (newest first, as AWS lists them).
    pub(crate) async fn list_policy_versions(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let arn = p.required("PolicyArn", "policyArn")?;
        let max = p.max_items()?;
        let rec = self.policy_required(ctx, arn).await?;
        let mut versions: Vec<(String, PolicyVersion)> = rec
            .versions
            .iter()
            .map(|v| {
                let n: u32 = v.id.trim_start_matches('v').parse().unwrap_or(0);
                (format!("{:010}", u32::MAX - n), v.clone())
            })
            .collect();
        versions.sort_by(|a, b| a.0.cmp(&b.0));
        let (items, next) = params::page(versions, |(k, _)| k.clone(), p.marker(), max);
        let mut x = Xml::new();
        x.members("Versions", &items, |x, (_, v)| render_version(x, &rec, v, false));
        x.paging(next.as_deref());
        Ok(x.finish())
    }

    /// SetDefaultPolicyVersion.
    pub(crate) async fn set_default_policy_version(
        &self,
        ctx: &RequestContext,
        p: &Params<'_>,
    ) -> Result<(), AwsError> {
        let arn = p.required("PolicyArn", "policyArn")?;
        let vid = p.required("VersionId", "versionId")?;
        let _guard = self.lock(&ctx.account_id).await;
        let mut rec = self.local_policy_required(ctx, arn).await?;
        if !rec.versions.iter().any(|v| v.id == vid) {
            return Err(version_not_found(arn, vid));
        }
        rec.default_version = vid.to_string();
        rec.updated = ctx.now.unix_timestamp();
        self.commit(vec![Self::policy_write(&rec, &ctx.account_id)?]).await
    }

    /// DeletePolicyVersion (never the default one).
    pub(crate) async fn delete_policy_version(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<(), AwsError> {
        let arn = p.required("PolicyArn", "policyArn")?;
        let vid = p.required("VersionId", "versionId")?;
        let _guard = self.lock(&ctx.account_id).await;
        let mut rec = self.local_policy_required(ctx, arn).await?;
        if !rec.versions.iter().any(|v| v.id == vid) {
            return Err(version_not_found(arn, vid));
        }
        if rec.default_version == vid {
            return Err(errors::delete_conflict(
                "Cannot delete the default version of a policy.",
            ));
        }
        rec.versions.retain(|v| v.id != vid);
        self.commit(vec![Self::policy_write(&rec, &ctx.account_id)?]).await
    }

    /// AttachUserPolicy / AttachRolePolicy / AttachGroupPolicy (idempotent; at most ten).
    pub(crate) async fn attach(&self, ctx: &RequestContext, kind: EntityKind, p: &Params<'_>) -> Result<(), AwsError> {
        let name = p.required(&format!("{}Name", kind.title()), &format!("{}Name", kind.word()))?;
        let arn = p.required("PolicyArn", "policyArn")?;
        let _guard = self.lock(&ctx.account_id).await;
        let mut entity = self.entity_required(&ctx.account_id, kind, name).await?;
        let mut policy = self.policy_required(ctx, arn).await?;
        if entity.attached.iter().any(|a| a == arn) {
            return Ok(());
        }
        if entity.attached.len() >= MAX_ATTACHED {
            return Err(errors::limit_exceeded(format!(
                "Cannot exceed quota for PoliciesPer{}: {MAX_ATTACHED}",
                kind.title()
            )));
        }
        entity.attached.push(arn.to_string());
        policy.attachments.push(Attachment {
            kind,
            name: entity.name.clone(),
            id: entity.id.clone(),
        });
        self.commit(vec![
            Self::entity_write(&entity, &ctx.account_id)?,
            Self::policy_write(&policy, &ctx.account_id)?,
        ])
        .await
    }

    /// DetachUserPolicy / DetachRolePolicy / DetachGroupPolicy.
    pub(crate) async fn detach(&self, ctx: &RequestContext, kind: EntityKind, p: &Params<'_>) -> Result<(), AwsError> {
        let name = p.required(&format!("{}Name", kind.title()), &format!("{}Name", kind.word()))?;
        let arn = p.required("PolicyArn", "policyArn")?;
        let _guard = self.lock(&ctx.account_id).await;
        let mut entity = self.entity_required(&ctx.account_id, kind, name).await?;
        if !entity.attached.iter().any(|a| a == arn) {
            return Err(errors::no_such_entity(format!("Policy {arn} was not found.")));
        }
        entity.attached.retain(|a| a != arn);
        let mut writes = vec![Self::entity_write(&entity, &ctx.account_id)?];
        if let Some(mut policy) = self.find_policy(ctx, arn).await? {
            policy
                .attachments
                .retain(|a| !(a.kind == kind && a.name.eq_ignore_ascii_case(&entity.name)));
            writes.push(Self::policy_write(&policy, &ctx.account_id)?);
        }
        self.commit(writes).await
    }

    /// ListAttachedUserPolicies / ListAttachedRolePolicies / ListAttachedGroupPolicies.
    pub(crate) async fn list_attached(
        &self,
        ctx: &RequestContext,
        kind: EntityKind,
        p: &Params<'_>,
    ) -> Result<String, AwsError> {
        let name = p.required(&format!("{}Name", kind.title()), &format!("{}Name", kind.word()))?;
        let prefix = params::path_prefix(p.get("PathPrefix"))?;
        let max = p.max_items()?;
        let entity = self.entity_required(&ctx.account_id, kind, name).await?;
        let items: Vec<(String, String)> = entity
            .attached
            .iter()
            .filter_map(|arn| {
                let (_, resource) = arn.split_once(":policy")?;
                let (path, name) = resource.rsplit_once('/')?;
                let path = format!("{path}/");
                path.starts_with(&prefix).then(|| (name.to_string(), arn.clone()))
            })
            .collect();
        let mut items = items;
        items.sort();
        let (items, next) = params::page(items, |(n, a)| format!("{n} {a}"), p.marker(), max);
        let mut x = Xml::new();
        x.members("AttachedPolicies", &items, |x, (n, a)| {
            x.el("PolicyName", n).el("PolicyArn", a);
        });
        x.paging(next.as_deref());
        Ok(x.finish())
    }

    /// ListEntitiesForPolicy (EntityFilter User|Role|Group; no paging beyond MaxItems).
    pub(crate) async fn list_entities_for_policy(
        &self,
        ctx: &RequestContext,
        p: &Params<'_>,
    ) -> Result<String, AwsError> {
        let arn = p.required("PolicyArn", "policyArn")?;
        let filter = p.get("EntityFilter");
        let rec = self.policy_required(ctx, arn).await?;
        let pick = |kind: EntityKind| -> Vec<&Attachment> {
            let wanted = match filter {
                None | Some("LocalManagedPolicy") | Some("AWSManagedPolicy") => true,
                Some(f) => f == kind.title(),
            };
            rec.attachments.iter().filter(|a| wanted && a.kind == kind).collect()
        };
        let mut x = Xml::new();
        for kind in [EntityKind::Group, EntityKind::User, EntityKind::Role] {
            let t = kind.title();
            x.members(&format!("Policy{t}s"), &pick(kind), |x, a| {
                x.el(&format!("{t}Name"), &a.name).el(&format!("{t}Id"), &a.id);
            });
        }
        x.paging(None);
        Ok(x.finish())
    }
}

fn version_not_found(arn: &str, vid: &str) -> AwsError {
    errors::no_such_entity(format!(
        "Policy {arn} version {vid} does not exist or is not attachable."
    ))
}
