//! Key lifecycle and metadata: CreateKey, DescribeKey, ListKeys, EnableKey, DisableKey,
//! ScheduleKeyDeletion, CancelKeyDeletion, UpdateKeyDescription, key policies and tags.

use coffer_crypto::SecretBytes;
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_storage::{Storage, Write};
use serde_json::{Value, json};

use crate::KmsEngine;
use crate::input::{Input, KmsInput, check_enum, check_len, check_range};
use crate::model::{self, KeyRecord, Tag};
use crate::spec;
use crate::store::{self, ensure_not_pending_deletion, invalid_state};

const MAX_TAGS: usize = 50;

fn tag_error(message: &str) -> AwsError {
    AwsError::new(AwsErrorCode::TagException, message)
}

/// Decodes and checks a `Tags` list.
fn parse_tags(input: &Input) -> Result<Vec<Tag>, AwsError> {
    let mut tags: Vec<Tag> = Vec::new();
    for t in input.object_list("Tags")?.unwrap_or_default() {
        let key = t.req_string("TagKey")?;
        let value = crate::input::required(t.string("TagValue")?, "TagValue")?;
        check_len(key.chars().count(), 1, 128, "TagKey")?;
        check_len(value.chars().count(), 0, 256, "TagValue")?;
        if key.starts_with("aws:") {
            return Err(tag_error("Tags beginning with aws: are reserved"));
        }
        if tags.iter().any(|x| x.key == key) {
            return Err(tag_error("Duplicate tag keys"));
        }
        tags.push(Tag { key, value });
    }
    Ok(tags)
}

/// Checks a key policy: 1..=32768 characters of JSON whose top level is an object with a
/// `Statement`.
pub(crate) fn check_policy(policy: &str) -> Result<(), AwsError> {
    check_len(policy.chars().count(), 1, 32768, "Policy")?;
    let parsed: Result<Value, _> = serde_json::from_str(policy);
    match parsed {
        Ok(Value::Object(m)) if m.contains_key("Statement") => Ok(()),
        _ => Err(AwsError::new(
            AwsErrorCode::MalformedPolicyDocumentException,
            "The key policy is not a syntactically valid JSON policy document.",
        )),
    }
}

impl KmsEngine {
    pub(crate) async fn create_key(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let policy = input.string("Policy")?;
        let description = input.string("Description")?.unwrap_or_default();
        check_len(description.chars().count(), 0, 8192, "Description")?;
        let (key_spec, usage) = spec::parse_create_spec(
            input.string("KeySpec")?.as_deref(),
            input.string("CustomerMasterKeySpec")?.as_deref(),
            input.string("KeyUsage")?.as_deref(),
        )?;
        let origin = input.string("Origin")?.unwrap_or_else(|| "AWS_KMS".into());
        check_enum(
            &origin,
            &["AWS_KMS", "EXTERNAL", "AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"],
            "Origin",
        )?;
        if origin == "AWS_CLOUDHSM" || origin == "EXTERNAL_KEY_STORE" || input.string("CustomKeyStoreId")?.is_some() {
            return Err(AwsError::new(
                AwsErrorCode::UnsupportedOperationException,
                "Custom key stores are not supported by Coffer.",
            ));
        }
        if origin == "EXTERNAL" && key_spec != spec::KeySpec::SymmetricDefault {
            return Err(AwsError::new(
                AwsErrorCode::UnsupportedOperationException,
                "Coffer supports imported key material only for symmetric encryption keys.",
            ));
        }
        if input.bool("MultiRegion")?.unwrap_or(false) {
            return Err(AwsError::new(
                AwsErrorCode::UnsupportedOperationException,
                "Multi-Region keys are not supported by Coffer.",
            ));
        }
        input.bool("BypassPolicyLockoutSafetyCheck")?;
        // Model constraints (ValidationException) come before the policy check.
        if let Some(p) = &policy {
            check_policy(p)?;
        }
        let tags = parse_tags(input)?;
        if tags.len() > MAX_TAGS {
            return Err(tag_error("Too many tags"));
        }

        let mut rec = self.new_key_record(
            ctx,
            key_spec,
            usage,
            description,
            policy.unwrap_or_else(|| model::default_policy(&ctx.account_id)),
        )?;
        rec.tags = tags;
        let mut writes = Vec::new();
        if origin == "EXTERNAL" {
            rec.origin = origin;
            rec.state = model::STATE_PENDING_IMPORT.into();
        } else {
            // RSA generation can take a while: do it before anything is written.
            let material = tokio::task::spawn_blocking(move || crate::crypto::generate_material(key_spec))
                .await
                .map_err(|_| store::internal("key generation was interrupted"))??;
            rec.material_ids.push(store::new_material_id()?);
            writes.push(Write::put(
                model::material_path(&rec.account, &rec.region, &rec.key_id, 1),
                material,
            ));
        }
        writes.push(Write::put(
            model::key_path(&rec.account, &rec.region, &rec.key_id),
            SecretBytes::new(rec.to_bytes()?),
        ));
        self.storage.batch(writes).await?;
        Ok(json!({ "KeyMetadata": rec.metadata() }))
    }

    pub(crate) async fn describe_key(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let rec = self.resolve(ctx, &input.key_id("KeyId")?, true).await?;
        Ok(json!({ "KeyMetadata": rec.metadata() }))
    }

    pub(crate) async fn list_keys(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let (limit, marker) = input.paging(1000)?;
        let items = self
            .keys_in_region(&ctx.account_id, &ctx.region)
            .await?
            .into_iter()
            .map(|k| (k.key_id.clone(), json!({ "KeyId": k.key_id, "KeyArn": k.arn })))
            .collect();
        let (keys, next) = store::page(items, marker.as_deref(), limit)?;
        let mut body = serde_json::Map::new();
        body.insert("Keys".into(), Value::Array(keys));
        Ok(store::with_marker(body, next))
    }

    /// Loads a key by id or ARN (no aliases) under the write lock for a change.
    pub(crate) async fn key_for_update(&self, ctx: &RequestContext, input: &Input) -> Result<KeyRecord, AwsError> {
        self.resolve(ctx, &input.key_id("KeyId")?, false).await
    }

    pub(crate) async fn set_enabled(
        &self,
        ctx: &RequestContext,
        input: &Input,
        enable: bool,
    ) -> Result<Value, AwsError> {
        let _guard = self.write.lock().await;
        let mut rec = self.key_for_update(ctx, input).await?;
        ensure_customer_managed(&rec)?;
        ensure_not_pending_deletion(&rec)?;
        if rec.state == model::STATE_PENDING_IMPORT {
            return Err(invalid_state(format!("{} is pending import.", rec.arn)));
        }
        rec.state = if enable {
            model::STATE_ENABLED
        } else {
            model::STATE_DISABLED
        }
        .into();
        self.save_key(&rec).await?;
        Ok(json!({}))
    }

    pub(crate) async fn schedule_key_deletion(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let window = input.integer("PendingWindowInDays")?.unwrap_or(30);
        check_range(window, 7, 30, "PendingWindowInDays")?;
        let _guard = self.write.lock().await;
        let mut rec = self.key_for_update(ctx, input).await?;
        ensure_customer_managed(&rec)?;
        ensure_not_pending_deletion(&rec)?;
        let when = model::now_ms(ctx) + window * model::MS_PER_DAY;
        rec.state = model::STATE_PENDING_DELETION.into();
        rec.deletion_ms = Some(when);
        rec.pending_window_days = Some(window);
        self.save_key(&rec).await?;
        Ok(json!({
            "KeyId": rec.arn,
            "DeletionDate": model::wire_time(when),
            "KeyState": rec.state,
            "PendingWindowInDays": window,
        }))
    }

    pub(crate) async fn cancel_key_deletion(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let _guard = self.write.lock().await;
        let mut rec = self.key_for_update(ctx, input).await?;
        if rec.state != model::STATE_PENDING_DELETION {
            return Err(invalid_state(format!("{} is not pending deletion.", rec.arn)));
        }
        rec.state = model::STATE_DISABLED.into();
        rec.deletion_ms = None;
        rec.pending_window_days = None;
        self.save_key(&rec).await?;
        Ok(json!({ "KeyId": rec.arn }))
    }

    pub(crate) async fn update_key_description(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let description = crate::input::required(input.string("Description")?, "Description")?;
        check_len(description.chars().count(), 0, 8192, "Description")?;
        let _guard = self.write.lock().await;
        let mut rec = self.key_for_update(ctx, input).await?;
        ensure_customer_managed(&rec)?;
        ensure_not_pending_deletion(&rec)?;
        rec.description = description;
        self.save_key(&rec).await?;
        Ok(json!({}))
    }

    pub(crate) async fn put_key_policy(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let policy = input.req_string("Policy")?;
        let name = input.string("PolicyName")?.unwrap_or_else(|| "default".into());
        input.bool("BypassPolicyLockoutSafetyCheck")?;
        let _guard = self.write.lock().await;
        let mut rec = self.key_for_update(ctx, input).await?;
        check_policy_name(&name)?;
        check_policy(&policy)?;
        ensure_customer_managed(&rec)?;
        ensure_not_pending_deletion(&rec)?;
        rec.policy = policy;
        self.save_key(&rec).await?;
        Ok(json!({}))
    }

    pub(crate) async fn get_key_policy(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let name = input.string("PolicyName")?.unwrap_or_else(|| "default".into());
        let rec = self.key_for_update(ctx, input).await?;
        check_policy_name(&name)?;
        Ok(json!({ "Policy": rec.policy, "PolicyName": "default" }))
    }

    pub(crate) async fn list_key_policies(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        input.paging(1000)?;
        self.key_for_update(ctx, input).await?;
        Ok(json!({ "PolicyNames": ["default"], "Truncated": false }))
    }

    pub(crate) async fn tag_resource(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let tags = parse_tags(input)?;
        let _guard = self.write.lock().await;
        let mut rec = self.key_for_update(ctx, input).await?;
        ensure_customer_managed(&rec)?;
        for t in tags {
            match rec.tags.iter_mut().find(|x| x.key == t.key) {
                Some(existing) => existing.value = t.value,
                None => rec.tags.push(t),
            }
        }
        if rec.tags.len() > MAX_TAGS {
            return Err(tag_error("Too many tags"));
        }
        self.save_key(&rec).await?;
        Ok(json!({}))
    }

    pub(crate) async fn untag_resource(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let keys = crate::input::required(input.string_list("TagKeys")?, "TagKeys")?;
        let _guard = self.write.lock().await;
        let mut rec = self.key_for_update(ctx, input).await?;
        ensure_customer_managed(&rec)?;
        rec.tags.retain(|t| !keys.contains(&t.key));
        self.save_key(&rec).await?;
        Ok(json!({}))
    }

    pub(crate) async fn list_resource_tags(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let (limit, marker) = input.paging(50)?;
        let rec = self.key_for_update(ctx, input).await?;
        let mut tags = rec.tags.clone();
        tags.sort_by(|a, b| a.key.cmp(&b.key));
        let items = tags
            .into_iter()
            .map(|t| (t.key.clone(), json!({ "TagKey": t.key, "TagValue": t.value })))
            .collect();
        let (tags, next) = store::page(items, marker.as_deref(), limit)?;
        let mut body = serde_json::Map::new();
        body.insert("Tags".into(), Value::Array(tags));
        Ok(store::with_marker(body, next))
    }
}

fn check_policy_name(name: &str) -> Result<(), AwsError> {
    if name != "default" {
        return Err(store::not_found(format!("Policy {name} is not found.")));
    }
    Ok(())
}

/// AWS-managed keys cannot be changed by their owners.
pub(crate) fn ensure_customer_managed(rec: &KeyRecord) -> Result<(), AwsError> {
    if rec.is_aws_managed() {
        return Err(AwsError::new(
            AwsErrorCode::UnsupportedOperationException,
            format!(
                "{} is an AWS managed key. You cannot perform this operation on it.",
                rec.arn
            ),
        ));
    }
    Ok(())
}
