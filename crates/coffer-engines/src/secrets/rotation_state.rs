//! The engine's half of the rotation state machine (§3.1), for the core's runner and
//! scheduler. The rotation function itself runs outside the engine; the engine owns the
//! state it leaves behind:
//!
//! * **in progress**: AWSPENDING sits on a version other than AWSCURRENT's. The pending
//!   version is written before the target is touched (RotateSecret's placeholder, or
//!   [`SecretsEngine::background`] for a scheduled one), so a crash or a failed
//!   step leaves AWSCURRENT working and the rotation resumable with the same token: the
//!   four steps are idempotent by contract (each AWS template checks before it acts).
//! * **failed**: [`SecretsEngine::finish_rotation`] records the step, the message and the
//!   attempt count, and sets when to retry (exponential backoff); AWSCURRENT is untouched.
//! * **succeeded**: finishSecret moved AWSCURRENT to the pending version; the engine drops
//!   AWSPENDING from it (AWS's recorded end state is `{old: [AWSPREVIOUS], new:
//!   [AWSCURRENT]}`) and sets `LastRotatedDate`, from which the next window is computed.
//!   A crash after finishSecret but before that record leaves AWSPENDING on AWSCURRENT's
//!   version; the scheduler treats it as a rotation in progress, so the steps run again
//!   (finding nothing to do) and the end is recorded once.

use serde_json::Value;

use crate::secrets::SecretsEngine;
use crate::secrets::input::{Input, required};
use crate::secrets::model::{
    AWSCURRENT, AWSPENDING, RotationFailure, SecretHeader, SecretRecord, VersionRecord, now_ms,
};
use crate::secrets::render::Out;
use crate::secrets::rotation::RotationEvent;
use crate::secrets::schedule;
use crate::secrets::values::new_token;
use crate::{AwsError, RequestContext};

/// First retry delay after a failed rotation; it doubles with each further failure.
const RETRY_BASE_MS: i64 = 30_000;
/// The longest wait between retries.
const RETRY_MAX_MS: i64 = 3_600_000;

/// A rotation the scheduler found ready to run.
pub type RotationTask = RotationEvent;

/// How one run of the four steps ended.
#[derive(Debug, Clone)]
pub enum RotationOutcome {
    /// finishSecret returned without error.
    Succeeded,
    /// A step failed (or could not be invoked).
    Failed { step: String, message: String },
}

/// The operator's view of a secret's rotation (`coffer secrets rotation-status`).
pub type RotationStatus = Value;

/// The version a rotation in progress must fill: AWSPENDING on a version other than
/// AWSCURRENT's.
fn pending_version(rec: &SecretRecord) -> Option<&str> {
    let current = rec.version_with_stage(AWSCURRENT);
    rec.version_with_stage(AWSPENDING).filter(|p| Some(*p) != current)
}

/// The version of a rotation whose finishSecret moved AWSCURRENT but whose end was never
/// recorded (the server died in between): AWSPENDING still on AWSCURRENT's version, created
/// after the last recorded rotation. The runner runs its steps again (each finds AWSCURRENT
/// already there and does nothing) and records the end, as for any resumed rotation.
fn unrecorded_finish(rec: &SecretRecord) -> Option<&str> {
    let current = rec.version_with_stage(AWSCURRENT)?;
    let version = rec.versions.get(current).filter(|v| v.has_stage(AWSPENDING))?;
    let last = rec.rotation.as_ref().and_then(|r| r.last_rotated_ms);
    last.is_none_or(|t| t < version.created_ms).then_some(current)
}

/// The delay before retry number `attempts` (1 = after the first failure).
fn retry_delay_ms(attempts: u32) -> i64 {
    let doublings = attempts.saturating_sub(1).min(20);
    RETRY_BASE_MS.saturating_mul(1i64 << doublings).min(RETRY_MAX_MS)
}

fn event_for(rec: &SecretRecord, token: &str) -> Option<RotationEvent> {
    let rot = rec.rotation.as_ref().filter(|r| r.enabled)?;
    Some(RotationEvent {
        account_id: rec.account.clone(),
        region: rec.region.clone(),
        secret_arn: rec.arn.clone(),
        secret_name: rec.name.clone(),
        client_request_token: token.to_string(),
        rotation_lambda_arn: rot.lambda_arn.clone(),
        rotate_immediately: true,
    })
}

/// Adds the empty AWSPENDING placeholder version `vid` (no value: GetSecretValue on it is
/// ResourceNotFoundException, which tells rotation functions to generate one).
pub(crate) fn add_placeholder(rec: &mut SecretRecord, vid: &str, now: i64) {
    // Take AWSPENDING off AWSCURRENT's version if a finished rotation left it there.
    for v in rec.versions.values_mut() {
        v.stages.retain(|s| s != AWSPENDING);
    }
    let seq = rec.next_seq;
    rec.next_seq += 1;
    rec.versions.insert(
        vid.to_string(),
        VersionRecord {
            stages: vec![AWSPENDING.to_string()],
            created_ms: now,
            seq,
            has_value: false,
            accessed_day_ms: None,
            kms_key_ids: Vec::new(),
        },
    );
}

/// A context acting in the secret's own account and region.
fn ctx_for(ctx: &RequestContext, rec: &SecretRecord) -> RequestContext {
    RequestContext {
        account_id: rec.account.clone(),
        region: rec.region.clone(),
        principal_arn: ctx.principal_arn.clone(),
        now: ctx.now,
    }
}

impl SecretsEngine {
    /// One pass of the engine's background work over every secret, reading each record once:
    /// purges secrets whose recovery window ended, and returns how many it purged with the
    /// rotations to run now, in every account and region: those in progress whose retry time
    /// has come, and those whose schedule is due (for which it creates the pending placeholder
    /// first).
    pub async fn background(&self, ctx: &RequestContext) -> Result<(usize, Vec<RotationTask>), AwsError> {
        let now = now_ms(ctx);
        let (mut purged, mut rotations) = (0, Vec::new());
        for mut walk in self.walk_everything().await? {
            // Only secrets pending deletion or with rotation on can have something due.
            let wanted: fn(&SecretHeader) -> bool =
                |h| h.deletion_ms.is_some() || h.rotation.as_ref().is_some_and(|r| r.enabled);
            while let Some(records) = self.next_records_where(&mut walk, Some(wanted)).await? {
                for rec in records {
                    if self.purge_if_due(&rec, now).await? {
                        purged += 1;
                    } else {
                        rotations.extend(self.rotation_if_due(ctx, &rec).await?);
                    }
                }
            }
        }
        Ok((purged, rotations))
    }

    /// The rotation of `rec` to run now, if any (starting a scheduled one first).
    async fn rotation_if_due(
        &self,
        ctx: &RequestContext,
        rec: &SecretRecord,
    ) -> Result<Option<RotationTask>, AwsError> {
        let now = now_ms(ctx);
        let Some(rot) = rec.rotation.as_ref().filter(|r| r.enabled && r.lambda_arn.is_some()) else {
            return Ok(None);
        };
        if rec.is_deleted() || rec.is_replica() {
            return Ok(None);
        }
        if let Some(p) = pending_version(rec).or_else(|| unrecorded_finish(rec)) {
            return Ok(rot
                .retry_at_ms
                .is_none_or(|t| t <= now)
                .then(|| event_for(rec, p))
                .flatten());
        }
        if schedule::due_ms(rec).is_some_and(|d| d <= now) {
            return self.begin_due_rotation(&ctx_for(ctx, rec), &rec.name).await;
        }
        Ok(None)
    }

    /// Starts a scheduled rotation: under the secret's lock, re-checks that it is due and
    /// not already in progress, then commits a new AWSPENDING placeholder.
    async fn begin_due_rotation(&self, ctx: &RequestContext, name: &str) -> Result<Option<RotationTask>, AwsError> {
        let now = now_ms(ctx);
        let _guard = self.lock(&ctx.account_id, name).await;
        let Some(mut rec) = self.load(&ctx.account_id, &ctx.region, name).await? else {
            return Ok(None);
        };
        if rec.is_deleted() || pending_version(&rec).is_some() || schedule::due_ms(&rec).is_none_or(|d| d > now) {
            return Ok(None);
        }
        let vid = new_token()?;
        add_placeholder(&mut rec, &vid, now);
        rec.changed_ms = now;
        self.commit(&rec, &[], &[]).await?;
        tracing::info!(secret = %rec.arn, version = %vid, "scheduled rotation started");
        Ok(event_for(&rec, &vid))
    }

    /// Records how a run of the rotation for `token` ended. On success, checks that
    /// finishSecret really moved AWSCURRENT to `token` (else it is a failure of that step),
    /// drops AWSPENDING and sets `LastRotatedDate`. On failure, keeps AWSPENDING for the
    /// retry and schedules it. Returns the failure that was recorded, if any. A rotation
    /// that was cancelled or replaced meanwhile is left alone.
    pub async fn finish_rotation(
        &self,
        ctx: &RequestContext,
        secret_arn: &str,
        token: &str,
        outcome: RotationOutcome,
    ) -> Result<Option<RotationFailure>, AwsError> {
        let (_guard, mut rec) = self.lock_secret(ctx, secret_arn).await?;
        let now = now_ms(ctx);
        let is_current = rec.versions.get(token).is_some_and(|v| v.has_stage(AWSCURRENT));
        let outcome = match outcome {
            RotationOutcome::Succeeded if !is_current => RotationOutcome::Failed {
                step: "finishSecret".into(),
                message: format!("finishSecret returned but AWSCURRENT is not on version {token}"),
            },
            o => o,
        };
        let still_ours = is_current || pending_version(&rec) == Some(token);
        let Some(rot) = rec.rotation.as_mut().filter(|_| still_ours) else {
            return Ok(None);
        };
        let failure = match outcome {
            RotationOutcome::Succeeded => {
                rot.last_rotated_ms = Some(now);
                rot.attempts = 0;
                rot.last_error = None;
                rot.retry_at_ms = None;
                if let Some(v) = rec.versions.get_mut(token) {
                    v.stages.retain(|s| s != AWSPENDING);
                }
                None
            }
            RotationOutcome::Failed { step, message } => {
                rot.attempts = rot.attempts.saturating_add(1);
                rot.retry_at_ms = Some(now.saturating_add(retry_delay_ms(rot.attempts)));
                let f = RotationFailure {
                    step,
                    message,
                    at_ms: now,
                };
                rot.last_error = Some(f.clone());
                Some(f)
            }
        };
        rec.changed_ms = now;
        self.commit(&rec, &[], &[]).await?;
        Ok(failure)
    }

    /// The rotation state of one secret, for the operator: enabled, function, the rotation
    /// in progress, failed attempts with the last error, and the dates.
    pub async fn rotation_status(&self, ctx: &RequestContext, input: Value) -> Result<RotationStatus, AwsError> {
        let input = Input::parse(input)?;
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let rec = self.find_required(ctx, &secret_id).await?;
        let rot = rec.rotation.as_ref();
        let mut out = Out::new()
            .s("ARN", rec.arn.clone())
            .s("Name", rec.name.clone())
            .v("RotationEnabled", Value::Bool(rot.is_some_and(|r| r.enabled)))
            .opt_s("RotationLambdaARN", rot.and_then(|r| r.lambda_arn.as_deref()))
            .opt_s("PendingVersionId", pending_version(&rec))
            .v("FailedAttempts", Value::from(rot.map_or(0, |r| r.attempts)))
            .opt_ts("NextAttemptDate", rot.and_then(|r| r.retry_at_ms))
            .opt_ts("LastRotatedDate", rot.and_then(|r| r.last_rotated_ms))
            .opt_ts("NextRotationDate", schedule::next_rotation_ms(&rec));
        if let Some(e) = rot.and_then(|r| r.last_error.as_ref()) {
            out = out.v(
                "LastError",
                Out::new()
                    .s("Step", e.step.clone())
                    .s("Message", e.message.clone())
                    .ts("Date", e.at_ms)
                    .build(),
            );
        }
        Ok(out.build())
    }
}

#[cfg(test)]
mod tests {
    use super::retry_delay_ms;

    #[test]
    fn retries_back_off_exponentially_up_to_an_hour() {
        assert_eq!(retry_delay_ms(1), 30_000);
        assert_eq!(retry_delay_ms(2), 60_000);
        assert_eq!(retry_delay_ms(3), 120_000);
        assert_eq!(retry_delay_ms(10), 3_600_000);
        assert_eq!(retry_delay_ms(u32::MAX), 3_600_000);
    }
}
