//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.
//!
//! Names start with `alias/` and match `^[a-zA-Z0-9:/_-]+$` (1..=256 characters); names
//! under `alias/aws/` belong to AWS-managed keys and cannot be created, retargeted or
//! deleted by users. An alias targets a key, never another alias.

use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_storage::{Storage, Write};
use serde_json::{Value, json};

use crate::KmsEngine;
use crate::input::{Input, KmsInput, check_len, validation};
use crate::model::{self, AliasRecord, KeyRecord};
use crate::store::{self, KeyRef, ensure_not_pending_deletion, parse_key_ref};

const PREFIX_MESSAGE: &str = "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html";

/// Checks an alias name as AWS does, in AWS's order.
fn check_alias_name(name: &str, reserved_ok: bool) -> Result<(), AwsError> {
    check_len(name.chars().count(), 1, 256, "AliasName")?;
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b":/_-".contains(&b)) {
        return Err(validation(format!(
            "Value '{name}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
        )));
    }
    if !name.starts_with("alias/") {
        return Err(AwsError::validation(PREFIX_MESSAGE));
    }
    if name.starts_with("alias/aws/") && !reserved_ok {
        return Err(AwsError::new(AwsErrorCode::NotAuthorizedException, ""));
    }
    if name.contains(':') {
        return Err(AwsError::validation(format!(
            "{name} contains invalid characters for an alias"
        )));
    }
    Ok(())
}

impl KmsEngine {
    /// The key a `TargetKeyId` names: a key id or key ARN, never an alias.
    async fn alias_target(&self, ctx: &RequestContext, target: &str) -> Result<KeyRecord, AwsError> {
        check_len(target.chars().count(), 1, 2048, "TargetKeyId")?;
        if matches!(parse_key_ref(target), Ok(KeyRef::Alias { .. })) {
            return Err(AwsError::validation("Aliases must refer to keys. Not aliases"));
        }
        let rec = self.resolve(ctx, target, false).await?;
        ensure_not_pending_deletion(&rec)?;
        if rec.is_aws_managed() {
            return Err(AwsError::new(
                AwsErrorCode::NotAuthorizedException,
                "You cannot point an alias at an AWS managed key.",
            ));
        }
        Ok(rec)
    }

    pub(crate) async fn create_alias(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let name = input.req_string("AliasName")?;
        let target = input.req_string("TargetKeyId")?;
        check_alias_name(&name, false)?;
        let _guard = self.write.lock().await;
        let key = self.alias_target(ctx, &target).await?;
        if self.load_alias(&ctx.account_id, &ctx.region, &name).await?.is_some() {
            return Err(AwsError::new(
                AwsErrorCode::AlreadyExistsException,
                format!(
                    "An alias with the name {} already exists",
                    model::alias_arn(&ctx.account_id, &ctx.region, &name)
                ),
            ));
        }
        let now = model::now_ms(ctx);
        let alias = AliasRecord {
            name,
            target_key_id: key.key_id,
            created_ms: now,
            updated_ms: now,
        };
        self.storage
            .batch(vec![Self::alias_write(&ctx.account_id, &ctx.region, &alias)?])
            .await?;
        Ok(json!({}))
    }

    pub(crate) async fn update_alias(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let name = input.req_string("AliasName")?;
        let target = input.req_string("TargetKeyId")?;
        check_alias_name(&name, false)?;
        let _guard = self.write.lock().await;
        let mut alias = self
            .load_alias(&ctx.account_id, &ctx.region, &name)
            .await?
            .ok_or_else(|| alias_not_found(ctx, &name))?;
        let key = self.alias_target(ctx, &target).await?;
        if let Some(current) = self
            .load_key(&ctx.account_id, &ctx.region, &alias.target_key_id)
            .await?
            && (current.key_usage != key.key_usage || current.key_spec.is_rsa() != key.key_spec.is_rsa())
        {
            return Err(AwsError::validation(format!(
                "{} key usage or type does not match the alias's current target key.",
                key.arn
            )));
        }
        alias.target_key_id = key.key_id;
        alias.updated_ms = model::now_ms(ctx);
        self.storage
            .batch(vec![Self::alias_write(&ctx.account_id, &ctx.region, &alias)?])
            .await?;
        Ok(json!({}))
    }

    pub(crate) async fn delete_alias(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let name = input.req_string("AliasName")?;
        check_alias_name(&name, false)?;
        let _guard = self.write.lock().await;
        if self.load_alias(&ctx.account_id, &ctx.region, &name).await?.is_none() {
            return Err(alias_not_found(ctx, &name));
        }
        self.storage
            .batch(vec![Write::delete(model::alias_path(
                &ctx.account_id,
                &ctx.region,
                &name,
            ))])
            .await?;
        Ok(json!({}))
    }

    pub(crate) async fn list_aliases(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let (limit, marker) = input.paging(100)?;
        let filter = match input.string("KeyId")? {
            Some(k) => Some(self.resolve(ctx, &k, false).await?.key_id),
            None => None,
        };
        let items = self
            .aliases_in_region(&ctx.account_id, &ctx.region)
            .await?
            .into_iter()
            .filter(|a| filter.as_ref().is_none_or(|k| *k == a.target_key_id))
            .map(|a| (a.name.clone(), a.render(&ctx.account_id, &ctx.region)))
            .collect();
        let (aliases, next) = store::page(items, marker.as_deref(), limit)?;
        let mut body = serde_json::Map::new();
        body.insert("Aliases".into(), Value::Array(aliases));
        Ok(store::with_marker(body, next))
    }
}

fn alias_not_found(ctx: &RequestContext, name: &str) -> AwsError {
    store::not_found(format!(
        "Alias {} is not found.",
        model::alias_arn(&ctx.account_id, &ctx.region, name)
    ))
}
