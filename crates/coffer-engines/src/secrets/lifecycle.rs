//! The deletion lifecycle (§2.7): DeleteSecret with a recovery window or forced,
//! RestoreSecret, the periodic purge of secrets whose window has ended, and reset.

use serde_json::Value;

use crate::secrets::SecretsEngine;
use crate::secrets::input::{Input, required};
use crate::secrets::model::{SecretHeader, SecretRecord, days_ms, now_ms};
use crate::secrets::names::{self, SecretRef};
use crate::secrets::render::Out;
use crate::secrets::store::{MARKED_FOR_DELETION, ensure_primary};
use crate::{AwsError, RequestContext};

impl SecretsEngine {
    pub(crate) async fn delete_secret(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let window = input.int("RecoveryWindowInDays")?;
        let force = input.bool("ForceDeleteWithoutRecovery")?.unwrap_or(false);
        if let Some(w) = window
            && !(7..=30).contains(&w)
        {
            return Err(AwsError::invalid_parameter(
                "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
            ));
        }
        if force && window.is_some() {
            return Err(AwsError::invalid_parameter(
                "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
            ));
        }
        let window = window.unwrap_or(30);
        let now = now_ms(ctx);

        let found = self.find(ctx, &secret_id).await?;
        let Some(first) = found else {
            if !force {
                return Err(AwsError::not_found(crate::secrets::store::SECRET_NOT_FOUND));
            }
            // Forcing the deletion of a secret that does not exist succeeds as if it did.
            return Ok(Out::new()
                .s("ARN", phantom_arn(ctx, &secret_id)?)
                .s("Name", phantom_name(ctx, &secret_id)?)
                .ts("DeletionDate", now)
                .build());
        };
        let _guard = self.lock(&ctx.account_id, &first.name).await;
        let Some(mut rec) = self.load(&ctx.account_id, &ctx.region, &first.name).await? else {
            return Err(AwsError::not_found(crate::secrets::store::SECRET_NOT_FOUND));
        };
        ensure_primary(&rec)?;
        if !rec.replicas.is_empty() {
            let regions: Vec<&str> = rec.replicas.iter().map(|r| r.region.as_str()).collect();
            return Err(AwsError::invalid_parameter(format!(
                "You can't delete secret {} that still has replica regions [{}]",
                rec.arn,
                regions.join(", ")
            )));
        }
        if force {
            self.erase(&rec.account, &rec.region, &rec.name).await?;
            tracing::info!(secret = %rec.arn, "secret deleted without recovery");
            return Ok(Out::new()
                .s("ARN", rec.arn.clone())
                .s("Name", rec.name.clone())
                .ts("DeletionDate", now)
                .build());
        }
        if rec.is_deleted() {
            return Err(AwsError::invalid_request(MARKED_FOR_DELETION));
        }
        let deletion = now.saturating_add(days_ms(window));
        rec.deleted_ms = Some(now);
        rec.deletion_ms = Some(deletion);
        rec.changed_ms = now;
        self.commit(&rec, &[], &[]).await?;
        tracing::info!(secret = %rec.arn, "secret scheduled for deletion");
        Ok(Out::new()
            .s("ARN", rec.arn.clone())
            .s("Name", rec.name.clone())
            .ts("DeletionDate", deletion)
            .build())
    }

    pub(crate) async fn restore_secret(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_primary(&rec)?;
        if rec.is_deleted() {
            rec.deleted_ms = None;
            rec.deletion_ms = None;
            rec.changed_ms = now_ms(ctx);
            self.commit(&rec, &[], &[]).await?;
        }
        Ok(Out::new().s("ARN", rec.arn.clone()).s("Name", rec.name.clone()).build())
    }

    pub(crate) async fn purge_expired_impl(&self, ctx: &RequestContext) -> Result<usize, AwsError> {
        let now = now_ms(ctx);
        let mut purged = 0;
        for mut walk in self.walk_everything().await? {
            let wanted: fn(&SecretHeader) -> bool = |h| h.deletion_ms.is_some();
            while let Some(records) = self.next_records_where(&mut walk, Some(wanted)).await? {
                for rec in records {
                    if self.purge_if_due(&rec, now).await? {
                        purged += 1;
                    }
                }
            }
        }
        Ok(purged)
    }

    /// Erases `rec` if its recovery window ended by `now`; true if it did.
    pub(crate) async fn purge_if_due(&self, rec: &SecretRecord, now: i64) -> Result<bool, AwsError> {
        if rec.deletion_ms.is_none_or(|d| d > now) {
            return Ok(false);
        }
        let (account, region) = (rec.account.as_str(), rec.region.as_str());
        let _guard = self.lock(account, &rec.name).await;
        // Re-check under the lock: the secret may have been restored meanwhile.
        let Some(fresh) = self.load(account, region, &rec.name).await? else {
            return Ok(false);
        };
        if fresh.deletion_ms.is_none_or(|d| d > now) {
            return Ok(false);
        }
        self.erase(account, region, &fresh.name).await?;
        tracing::info!(secret = %fresh.arn, "secret purged after its recovery window");
        Ok(true)
    }

    pub(crate) async fn reset_impl(&self) -> Result<(), AwsError> {
        Ok(self.storage.clear().await?)
    }
}

/// The name echoed when force-deleting a secret that does not exist.
fn phantom_name(ctx: &RequestContext, secret_id: &str) -> Result<String, AwsError> {
    Ok(match names::parse_secret_id(ctx, secret_id)? {
        SecretRef::Name(n) => n,
        SecretRef::Arn(resource) => names::split_suffix(&resource)
            .map(|(n, _)| n.to_string())
            .unwrap_or(resource),
        SecretRef::Foreign => secret_id.rsplit(':').next().unwrap_or(secret_id).to_string(),
    })
}

fn phantom_arn(ctx: &RequestContext, secret_id: &str) -> Result<String, AwsError> {
    if secret_id.starts_with("arn:") {
        return Ok(secret_id.to_string());
    }
    Ok(names::make_arn(
        &ctx.region,
        &ctx.account_id,
        secret_id,
        &names::random_suffix()?,
    ))
}
