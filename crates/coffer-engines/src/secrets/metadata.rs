//! Metadata operations: DescribeSecret, ListSecrets, ListSecretVersionIds,
//! UpdateSecretVersionStage, TagResource and UntagResource.

use serde_json::Value;

use crate::secrets::SecretsEngine;
use crate::secrets::filters;
use crate::secrets::input::{Input, check_enum, check_len, check_opt_len, check_range, required};
use crate::secrets::model::{AWSCURRENT, SecretRecord, now_ms};
use crate::secrets::paging::{self, num_key};
use crate::secrets::render::{self, Out};
use crate::secrets::store::ensure_writable;
use crate::secrets::values::{MAX_TAGS, merge_tag, read_tags};
use crate::secrets::versions;
use crate::{AwsError, RequestContext};

impl SecretsEngine {
    pub(crate) async fn describe_secret(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let rec = self.find_required(ctx, &secret_id).await?;
        Ok(render::describe(&rec, false))
    }

    pub(crate) async fn list_secrets(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let include_deleted = input.bool("IncludePlannedDeletion")?.unwrap_or(false);
        let max = input.int("MaxResults")?.unwrap_or(100);
        check_range(max, 1, 100, "maxResults")?;
        let next = input.string("NextToken")?;
        let filters = filters::parse_filters(input.object_list("Filters")?.unwrap_or_default())?;
        let order = input.string("SortOrder")?.unwrap_or_else(|| "asc".to_string());
        check_enum(&order, &["asc", "desc"], "sortOrder")?;
        let sort_by = input.string("SortBy")?.unwrap_or_else(|| "created-date".to_string());
        check_enum(
            &sort_by,
            &["created-date", "last-accessed-date", "last-changed-date", "name"],
            "sortBy",
        )?;

        let keep = |r: &SecretRecord| (include_deleted || !r.is_deleted()) && filters::matches(r, &filters);
        let (ascending, max) = (order == "asc", usize::try_from(max).unwrap_or(100));
        // Creation order has an index; the other orders pick their page from every record.
        let key = |r: &SecretRecord| -> String {
            match sort_by.as_str() {
                "name" => format!("{}\u{0}{}", r.name, r.created_ms),
                "last-accessed-date" => format!("{}\u{0}{}", num_key(r.accessed_day_ms.unwrap_or(0)), r.name),
                _ => format!("{}\u{0}{}", num_key(r.changed_ms), r.name),
            }
        };
        let (page, token) = if sort_by == "created-date" {
            self.page_by_creation(ctx, keep, ascending, next.as_deref(), max)
                .await?
        } else {
            self.page_of_records(ctx, keep, key, ascending, next.as_deref(), max)
                .await?
        };
        Ok(Out::new()
            .v(
                "SecretList",
                Value::Array(page.iter().map(|r| render::describe(r, true)).collect()),
            )
            .opt_s("NextToken", token.as_deref())
            .build())
    }

    pub(crate) async fn list_secret_version_ids(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let max = input.int("MaxResults")?.unwrap_or(100);
        check_range(max, 1, 100, "maxResults")?;
        let next = input.string("NextToken")?;
        let include_deprecated = input.bool("IncludeDeprecated")?.unwrap_or(false);
        let rec = self.find_required(ctx, &secret_id).await?;
        let kms = render::reported_kms_key(rec.kms_key_id.as_deref())
            .map(str::to_string)
            .unwrap_or_else(|| "DefaultEncryptionKey".to_string());
        let items: Vec<(String, Value)> = rec
            .versions_in_order()
            .into_iter()
            .filter(|(_, v)| include_deprecated || !v.stages.is_empty())
            .map(|(id, v)| {
                let mut o = Out::new().s("VersionId", id.clone());
                if !v.stages.is_empty() {
                    o = o.v("VersionStages", render::string_list(&v.stages));
                }
                o = o
                    .opt_ts("LastAccessedDate", v.accessed_day_ms)
                    .ts("CreatedDate", v.created_ms);
                if v.has_value {
                    let ids = if v.kms_key_ids.is_empty() {
                        vec![Value::String(kms.clone())]
                    } else {
                        v.kms_key_ids.iter().cloned().map(Value::String).collect()
                    };
                    o = o.v("KmsKeyIds", Value::Array(ids));
                }
                (paging::num_key(i64::try_from(v.seq).unwrap_or(i64::MAX)), o.build())
            })
            .collect();
        let (page, token) = paging::page(items, true, next.as_deref(), usize::try_from(max).unwrap_or(100))?;
        Ok(Out::new()
            .v("Versions", Value::Array(page))
            .opt_s("NextToken", token.as_deref())
            .s("ARN", rec.arn.clone())
            .s("Name", rec.name.clone())
            .build())
    }

    pub(crate) async fn update_secret_version_stage(
        &self,
        ctx: &RequestContext,
        input: &Input,
    ) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let stage = required(input.string("VersionStage")?, "VersionStage")?;
        check_len(stage.chars().count(), 1, 256, "versionStage")?;
        let remove_from = input.string("RemoveFromVersionId")?;
        check_opt_len(remove_from.as_deref(), 32, 64, "RemoveFromVersionId")?;
        let move_to = input.string("MoveToVersionId")?;
        check_opt_len(move_to.as_deref(), 32, 64, "MoveToVersionId")?;
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;

        let holder = rec.version_with_stage(&stage).map(str::to_string);
        if let Some(from) = &remove_from {
            if !rec.versions.contains_key(from) {
                return Err(version_not_found(from));
            }
            if holder.as_deref() != Some(from.as_str()) {
                return Err(AwsError::invalid_parameter(format!(
                    "The staging label {stage} is not attached to version {from}, so you can't remove it from that version."
                )));
            }
        }
        match &move_to {
            Some(to) => {
                if !rec.versions.contains_key(to) {
                    return Err(version_not_found(to));
                }
                if let Some(h) = &holder
                    && h != to
                    && remove_from.as_deref() != Some(h.as_str())
                {
                    return Err(AwsError::invalid_parameter(format!(
                        "The parameter RemoveFromVersionId can't be empty. Staging label {stage} is currently attached to version {h}, so you must explicitly reference that version in RemoveFromVersionId."
                    )));
                }
                versions::attach_stage(&mut rec, to, &stage);
                versions::check_stage_limit(&rec, to)?;
            }
            None => {
                let Some(from) = &remove_from else {
                    return Err(AwsError::invalid_parameter(
                        "You must specify MoveToVersionId, RemoveFromVersionId, or both.",
                    ));
                };
                if stage == AWSCURRENT {
                    return Err(AwsError::invalid_parameter(
                        "You can't remove the staging label AWSCURRENT from a version without moving it to another version with MoveToVersionId.",
                    ));
                }
                versions::detach_stage(&mut rec, from, &stage);
            }
        }
        rec.changed_ms = now_ms(ctx);
        self.commit(&rec, &[], &[]).await?;
        Ok(Out::new().s("ARN", rec.arn.clone()).s("Name", rec.name.clone()).build())
    }

    pub(crate) async fn tag_resource(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let tags = required(read_tags(input)?, "Tags")?;
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;
        let mut merged = rec.tags.take().unwrap_or_default();
        for t in tags {
            merge_tag(&mut merged, t);
        }
        if merged.len() > MAX_TAGS {
            return Err(AwsError::limit_exceeded(format!(
                "A secret can have at most {MAX_TAGS} tags."
            )));
        }
        rec.tags = Some(merged);
        rec.changed_ms = now_ms(ctx);
        self.commit(&rec, &[], &[]).await?;
        Ok(Out::new().build())
    }

    pub(crate) async fn untag_resource(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let keys = required(input.string_list("TagKeys")?, "TagKeys")?;
        for k in &keys {
            check_len(k.chars().count(), 1, 128, "tagKeys.member")?;
        }
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;
        let mut tags = rec.tags.take().unwrap_or_default();
        tags.retain(|t| !keys.contains(&t.key));
        rec.tags = Some(tags);
        rec.changed_ms = now_ms(ctx);
        self.commit(&rec, &[], &[]).await?;
        Ok(Out::new().build())
    }
}

/// The sort key of creation order: nanosecond creation time, then the escaped name. It is
/// also the secret's entry in the creation index (`names::created_prefix`), so a page read
/// from the index and a page picked from every record are the same page.
pub(crate) fn created_key(r: &SecretRecord) -> String {
    let t = if r.created_ns > 0 {
        r.created_ns
    } else {
        r.created_ms.saturating_mul(1_000_000)
    };
    format!("{}/{}", num_key(t), crate::secrets::names::escape(&r.name))
}

fn version_not_found(id: &str) -> AwsError {
    AwsError::not_found(format!(
        "Secrets Manager can't find the specified secret value for VersionId: {id}"
    ))
}
