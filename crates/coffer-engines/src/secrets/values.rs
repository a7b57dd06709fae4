//! Operations that create and read secret values: CreateSecret, GetSecretValue,
//! BatchGetSecretValue, PutSecretValue and UpdateSecret, with the ClientRequestToken
//! idempotency matrix of §2.6.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::secrets::SecretsEngine;
use crate::secrets::filters;
use crate::secrets::input::{self, Input, check_len, check_opt_len, required};
use crate::secrets::model::{AWSCURRENT, SecretRecord, SecretValue, Tag, day_of, now_ms, now_ns};
use crate::secrets::names;
use crate::secrets::render::{self, Out};
use crate::secrets::store::{ensure_not_deleted, ensure_writable};
use crate::secrets::versions;
use crate::{AwsError, RequestContext};

/// Largest SecretString / SecretBinary, in bytes.
pub(crate) const MAX_VALUE_BYTES: usize = 65_536;

/// Reads `SecretString` / `SecretBinary`: at most one of them, 1–65536 bytes.
pub(crate) fn read_value(input: &Input) -> Result<Option<SecretValue>, AwsError> {
    let s = input.secret_string("SecretString")?;
    let b = input.blob("SecretBinary")?;
    match (s, b) {
        (Some(_), Some(_)) => Err(AwsError::invalid_parameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.",
        )),
        (Some(s), None) => {
            check_len(s.len(), 1, MAX_VALUE_BYTES, "secretString")?;
            Ok(Some(SecretValue::String(s)))
        }
        (None, Some(b)) => {
            check_len(b.len(), 1, MAX_VALUE_BYTES, "secretBinary")?;
            Ok(Some(SecretValue::Binary(b)))
        }
        (None, None) => Ok(None),
    }
}

/// Reads `ClientRequestToken` (32–64 characters) if present.
pub(crate) fn read_token(input: &Input) -> Result<Option<String>, AwsError> {
    let t = input.string("ClientRequestToken")?;
    if let Some(t) = &t {
        let n = t.chars().count();
        if !(32..=64).contains(&n) {
            return Err(AwsError::invalid_parameter(
                "ClientRequestToken must be 32-64 characters long.",
            ));
        }
    }
    Ok(t)
}

pub(crate) fn new_token() -> Result<String, AwsError> {
    coffer_crypto::random::uuid_v4().map_err(|e| AwsError::internal(e.to_string()))
}

/// Reads `VersionStages`: 1–20 labels of 1–256 characters.
pub(crate) fn read_stages(input: &Input) -> Result<Option<Vec<String>>, AwsError> {
    let stages = input.string_list("VersionStages")?;
    if let Some(st) = &stages {
        check_len(st.len(), 1, versions::MAX_STAGES_PER_VERSION, "versionStages")?;
        for s in st {
            check_len(s.chars().count(), 1, 256, "versionStages.member")?;
        }
    }
    Ok(stages)
}

/// Reads `Tags`: keys 1–128, values 0–256 characters, at most 50.
pub(crate) fn read_tags(input: &Input) -> Result<Option<Vec<Tag>>, AwsError> {
    let Some(items) = input.object_list("Tags")? else {
        return Ok(None);
    };
    check_len(items.len(), 0, MAX_TAGS, "tags")?;
    let mut tags: Vec<Tag> = Vec::with_capacity(items.len());
    for item in items {
        let key = item.string("Key")?.ok_or_else(|| input::missing("tags.member.key"))?;
        let value = item.string("Value")?.unwrap_or_default();
        check_len(key.chars().count(), 1, 128, "tags.member.key")?;
        check_len(value.chars().count(), 0, 256, "tags.member.value")?;
        merge_tag(&mut tags, Tag { key, value });
    }
    Ok(Some(tags))
}

pub(crate) const MAX_TAGS: usize = 50;

/// Sets a tag, replacing the value of an existing key (keys are case-sensitive).
pub(crate) fn merge_tag(tags: &mut Vec<Tag>, tag: Tag) {
    match tags.iter_mut().find(|t| t.key == tag.key) {
        Some(t) => t.value = tag.value,
        None => tags.push(tag),
    }
}

/// Checks `Description` (≤ 2048) and `KmsKeyId` (≤ 2048).
fn check_description_and_key(input: &Input) -> Result<(Option<String>, Option<String>), AwsError> {
    let description = input.string("Description")?;
    check_opt_len(description.as_deref(), 0, 2048, "Description")?;
    let kms = input.string("KmsKeyId")?;
    check_opt_len(kms.as_deref(), 0, 2048, "KmsKeyId")?;
    Ok((description, kms))
}

/// What happens to a put with a token that may name an existing version (§2.6).
enum TokenCheck {
    /// A new version (or a value-less placeholder to fill).
    Write,
    /// A retry of a put that already happened: succeed without writing.
    Idempotent,
}

impl SecretsEngine {
    /// Checks that a `KmsKeyId` names a KMS key (in the caller's account and region).
    pub(crate) async fn validate_kms_key(&self, ctx: &RequestContext, kms: Option<&str>) -> Result<(), AwsError> {
        if let (Some(keys), Some(k)) = (&self.key_service, kms.filter(|k| !k.is_empty())) {
            keys.resolve_key_arn(ctx, k)
                .await
                .map_err(|e| crate::secrets::envelope::invalid_key(&e))?;
        }
        Ok(())
    }

    async fn check_token(
        &self,
        ctx: &RequestContext,
        rec: &SecretRecord,
        token: &str,
        value: &SecretValue,
    ) -> Result<TokenCheck, AwsError> {
        let Some(v) = rec.versions.get(token) else {
            return Ok(TokenCheck::Write);
        };
        if !v.has_value {
            return Ok(TokenCheck::Write);
        }
        match self.load_value(ctx, rec, token).await? {
            Some(existing) if existing.same_as(value) => Ok(TokenCheck::Idempotent),
            _ => Err(AwsError::resource_exists(format!(
                "You can't use ClientRequestToken {token} because that value is already in use for a version of secret {}.",
                rec.arn
            ))),
        }
    }

    pub(crate) async fn create_secret(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let name = required(input.string("Name")?, "Name")?;
        names::validate_new_name(&name)?;
        let token = read_token(input)?;
        let value = read_value(input)?;
        let (description, kms) = check_description_and_key(input)?;
        let tags = read_tags(input)?;
        let secret_type = input.string("Type")?;
        let replica_requests = crate::secrets::replication::read_replica_regions(input, "AddReplicaRegions", false)?;
        let force_overwrite = input.bool("ForceOverwriteReplicaSecret")?.unwrap_or(false);
        let now = now_ms(ctx);
        self.ensure_created_index().await?;

        let _guard = self.lock(&ctx.account_id, &name).await;
        if let Some(existing) = self.load(&ctx.account_id, &ctx.region, &name).await? {
            if existing.is_deleted() {
                return Err(AwsError::invalid_request(
                    "You can't create this secret because a secret with this name is already scheduled for deletion.",
                ));
            }
            // A retry with the same token and value succeeds; the same token with other data
            // fails with the token message; anything else: the name is taken.
            if let (Some(value), Some(token)) = (&value, &token)
                && let TokenCheck::Idempotent = self.check_token(ctx, &existing, token, value).await?
            {
                let mut out = Out::new()
                    .s("ARN", existing.arn.clone())
                    .s("Name", existing.name.clone())
                    .s("VersionId", token.clone());
                if !existing.replicas.is_empty() {
                    out = out.v("ReplicationStatus", render::replication_status_list(&existing));
                }
                return Ok(out.build());
            }
            return Err(AwsError::resource_exists(format!(
                "The operation failed because the secret {name} already exists."
            )));
        }

        self.validate_kms_key(ctx, kms.as_deref()).await?;
        let suffix = names::random_suffix()?;
        let mut rec = SecretRecord {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            arn: names::make_arn(&ctx.region, &ctx.account_id, &name, &suffix),
            name,
            description,
            kms_key_id: kms.filter(|k| !k.is_empty()),
            secret_type,
            tags,
            created_ms: now,
            created_ns: now_ns(ctx),
            changed_ms: now,
            accessed_day_ms: None,
            deleted_ms: None,
            deletion_ms: None,
            rotation: None,
            policy: None,
            primary_region: None,
            replicas: Vec::new(),
            versions: BTreeMap::new(),
            next_seq: 0,
        };
        let mut new_values: Vec<(String, SecretValue)> = Vec::new();
        let mut version_id = None;
        if let Some(value) = &value {
            let vid = match token {
                Some(t) => t,
                None => new_token()?,
            };
            versions::put_version(&mut rec, &vid, None, now)?;
            new_values.push((vid.clone(), value.clone()));
            version_id = Some(vid);
        }
        // Leftovers of secrets overwritten in replica regions are deleted in the same commit.
        let mut extra = Vec::new();
        if !replica_requests.is_empty() {
            let (_, cleanup) = self
                .prepare_replicas(&mut rec, &replica_requests, force_overwrite)
                .await?;
            extra = cleanup;
        }
        let sealed = self.seal_new_values(ctx, &mut rec, &new_values).await?;
        extra.extend(crate::secrets::index::entries_of_new(&rec));
        self.commit_with(&rec, &sealed, &[], extra).await?;
        tracing::info!(secret = %rec.arn, "secret created");

        let mut out = Out::new()
            .s("ARN", rec.arn.clone())
            .s("Name", rec.name.clone())
            .opt_s("VersionId", version_id.as_deref());
        if !rec.replicas.is_empty() {
            out = out.v("ReplicationStatus", render::replication_status_list(&rec));
        }
        Ok(out.build())
    }

    pub(crate) async fn get_secret_value(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let version_id = input.string("VersionId")?;
        check_opt_len(version_id.as_deref(), 32, 64, "VersionId")?;
        let stage = input.string("VersionStage")?;
        check_opt_len(stage.as_deref(), 1, 256, "VersionStage")?;
        self.read_secret_value(ctx, &secret_id, version_id.as_deref(), stage.as_deref())
            .await
    }

    /// GetSecretValue's body, shared with BatchGetSecretValue.
    pub(crate) async fn read_secret_value(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        version_id: Option<&str>,
        stage: Option<&str>,
    ) -> Result<Value, AwsError> {
        // A concurrent put may prune the version between reading the record and the value:
        // re-read once.
        for attempt in 0..2 {
            let rec = self.find_required(ctx, secret_id).await?;
            ensure_not_deleted(&rec)?;
            let vid = select_version(&rec, version_id, stage)?.to_string();
            let Some(value) = self.load_value(ctx, &rec, &vid).await? else {
                if attempt == 0 {
                    continue;
                }
                return Err(value_not_found(version_id, stage));
            };
            self.touch(ctx, &rec, &vid).await;
            let Some(v) = rec.versions.get(&vid) else {
                return Err(value_not_found(version_id, stage));
            };
            let mut out = Out::new()
                .s("ARN", rec.arn.clone())
                .s("Name", rec.name.clone())
                .s("VersionId", vid.clone());
            out = match &value {
                SecretValue::String(s) => out.s("SecretString", s.expose()),
                SecretValue::Binary(b) => {
                    use base64::Engine as _;
                    out.s(
                        "SecretBinary",
                        base64::engine::general_purpose::STANDARD.encode(b.expose()),
                    )
                }
            };
            return Ok(out
                .v("VersionStages", render::string_list(&v.stages))
                .ts("CreatedDate", v.created_ms)
                .build());
        }
        Err(value_not_found(version_id, stage))
    }

    /// Records today's date as the secret's and the version's last access, at most once a
    /// day. Best effort: a failure here never fails the read.
    async fn touch(&self, ctx: &RequestContext, rec: &SecretRecord, vid: &str) {
        let today = day_of(now_ms(ctx));
        let version_done = rec.versions.get(vid).is_none_or(|v| v.accessed_day_ms == Some(today));
        if rec.accessed_day_ms == Some(today) && version_done {
            return;
        }
        let _guard = self.lock(&rec.account, &rec.name).await;
        let fresh = match self.load(&rec.account, &rec.region, &rec.name).await {
            Ok(Some(f)) if f.arn == rec.arn => f,
            _ => return,
        };
        let mut fresh = fresh;
        fresh.accessed_day_ms = Some(today);
        if let Some(v) = fresh.versions.get_mut(vid) {
            v.accessed_day_ms = Some(today);
        }
        if let Err(e) = self.write_record(&fresh).await {
            tracing::warn!(secret = %rec.arn, error = %e, "could not record the last access date");
        }
    }

    pub(crate) async fn batch_get_secret_value(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let ids = input.string_list("SecretIdList")?;
        let filter_input = input.object_list("Filters")?;
        let max = input.int("MaxResults")?;
        let next = input.string("NextToken")?;
        match (&ids, &filter_input) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(AwsError::invalid_parameter(
                    "Either 'SecretIdList' or 'Filters' must be provided, but not both.",
                ));
            }
            _ => {}
        }
        let mut values = Vec::new();
        let mut errors = Vec::new();
        let mut next_token = None;
        let ids_to_read: Vec<String> = if let Some(ids) = ids {
            check_len(ids.len(), 1, 20, "secretIdList")?;
            if max.is_some() {
                return Err(AwsError::invalid_parameter(
                    "'Filters' not specified. 'Filters' must also be specified when 'MaxResults' is provided.",
                ));
            }
            ids
        } else {
            let filters = filters::parse_filters(filter_input.unwrap_or_default())?;
            let max = max.unwrap_or(20);
            input::check_range(max, 1, 20, "maxResults")?;
            let (page, token) = self
                .page_by_creation(
                    ctx,
                    |r| !r.is_deleted() && filters::matches(r, &filters),
                    true,
                    next.as_deref(),
                    usize::try_from(max).unwrap_or(20),
                )
                .await?;
            next_token = token;
            page.into_iter().map(|r| r.arn).collect()
        };
        for id in ids_to_read {
            match self.read_secret_value(ctx, &id, None, None).await {
                Ok(v) => values.push(v),
                Err(e) => errors.push(
                    Out::new()
                        .s("SecretId", id)
                        .s("ErrorCode", e.code.as_str())
                        .s("Message", e.message)
                        .build(),
                ),
            }
        }
        Ok(Out::new()
            .v("SecretValues", Value::Array(values))
            .v("Errors", Value::Array(errors))
            .opt_s("NextToken", next_token.as_deref())
            .build())
    }

    pub(crate) async fn put_secret_value(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let token = read_token(input)?;
        let value = read_value(input)?
            .ok_or_else(|| AwsError::invalid_request("You must provide either SecretString or SecretBinary."))?;
        let stages = read_stages(input)?;
        if let Some(rt) = input.string("RotationToken")? {
            check_len(rt.chars().count(), 36, 256, "rotationToken")?;
            if !rt.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                return Err(input::validation(
                    "Value at 'rotationToken' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9\\-]+$",
                ));
            }
        }
        let now = now_ms(ctx);
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;
        let vid = match token {
            Some(t) => t,
            None => new_token()?,
        };
        if let TokenCheck::Write = self.check_token(ctx, &rec, &vid, &value).await? {
            versions::put_version(&mut rec, &vid, stages.as_deref(), now)?;
            let removed = versions::prune(&mut rec, now)?;
            let sealed = self.seal_new_values(ctx, &mut rec, &[(vid.clone(), value)]).await?;
            self.commit(&rec, &sealed, &removed).await?;
        }
        let stages = rec.versions.get(&vid).map(|v| v.stages.clone()).unwrap_or_default();
        Ok(Out::new()
            .s("ARN", rec.arn.clone())
            .s("Name", rec.name.clone())
            .s("VersionId", vid)
            .v("VersionStages", render::string_list(&stages))
            .build())
    }

    pub(crate) async fn update_secret(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let token = read_token(input)?;
        let value = read_value(input)?;
        let (description, kms) = check_description_and_key(input)?;
        let secret_type = input.string("Type")?;
        let now = now_ms(ctx);
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;
        self.validate_kms_key(ctx, kms.as_deref()).await?;
        if let Some(d) = description {
            rec.description = Some(d);
        }
        let mut key_changed = false;
        if let Some(k) = kms {
            let new_key = if k.is_empty() { None } else { Some(k) };
            key_changed = new_key != rec.kms_key_id;
            rec.kms_key_id = new_key;
        }
        if let Some(t) = secret_type {
            rec.secret_type = Some(t);
        }
        rec.changed_ms = now;
        let mut version_id = None;
        let mut new_values = Vec::new();
        let mut removed = Vec::new();
        if let Some(value) = &value {
            let vid = match token {
                Some(t) => t,
                None => new_token()?,
            };
            if let TokenCheck::Write = self.check_token(ctx, &rec, &vid, value).await? {
                versions::put_version(&mut rec, &vid, None, now)?;
                removed = versions::prune(&mut rec, now)?;
                new_values.push((vid.clone(), value.clone()));
            }
            version_id = Some(vid);
        }
        let sealed = self.seal_new_values(ctx, &mut rec, &new_values).await?;
        let rewrapped = if key_changed {
            self.rewrap_labelled_versions(ctx, &mut rec, &new_values).await?
        } else {
            Vec::new()
        };
        self.commit_with(&rec, &sealed, &removed, rewrapped).await?;
        Ok(Out::new()
            .s("ARN", rec.arn.clone())
            .s("Name", rec.name.clone())
            .opt_s("VersionId", version_id.as_deref())
            .build())
    }
}

/// The version GetSecretValue reads: by id, by label (default AWSCURRENT), or both.
pub(crate) fn select_version<'a>(
    rec: &'a SecretRecord,
    version_id: Option<&str>,
    stage: Option<&str>,
) -> Result<&'a str, AwsError> {
    let (vid, v) = match version_id {
        Some(id) => {
            let (vid, v) = rec
                .versions
                .get_key_value(id)
                .ok_or_else(|| value_not_found(Some(id), stage))?;
            if let Some(stage) = stage
                && !v.has_stage(stage)
            {
                return Err(AwsError::invalid_request(
                    "You provided a VersionStage that is not associated to the provided VersionId.",
                ));
            }
            (vid, v)
        }
        None => {
            let stage = stage.unwrap_or(AWSCURRENT);
            rec.versions
                .iter()
                .find(|(_, v)| v.has_stage(stage))
                .ok_or_else(|| value_not_found(None, Some(stage)))?
        }
    };
    if !v.has_value {
        return Err(value_not_found(version_id, stage));
    }
    Ok(vid.as_str())
}

pub(crate) fn value_not_found(version_id: Option<&str>, stage: Option<&str>) -> AwsError {
    match version_id {
        Some(id) => AwsError::not_found(format!(
            "Secrets Manager can't find the specified secret value for VersionId: {id}"
        )),
        None => AwsError::not_found(format!(
            "Secrets Manager can't find the specified secret value for staging label: {}",
            stage.unwrap_or(AWSCURRENT)
        )),
    }
}
