//! RotateSecret and CancelRotateSecret (§3.1, steps 1–3), and the extension point for the
//! rotation runner.
//!
//! RotateSecret validates and stores the rotation configuration, turns rotation on and
//! creates the AWSPENDING placeholder: a version whose id is the ClientRequestToken and
//! which has **no value** (GetSecretValue on it fails with ResourceNotFoundException, which
//! is how rotation functions decide to generate a new value). Running the four rotation
//! steps is not this module's job: when a [`RotationHook`] is installed it is told about
//! every rotation request after the placeholder is committed. Without a hook nothing else
//! happens; the placeholder stays until a rotation function fills it with PutSecretValue
//! and moves AWSCURRENT with UpdateSecretVersionStage, or CancelRotateSecret removes it.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

use coffer_crypto::SecretString;

use crate::secrets::input::{Input, check_len, required, validation};
use crate::secrets::model::SecretValue;
use crate::secrets::model::{AWSCURRENT, AWSPENDING, RotationConfig, RotationRules, now_ms};
use crate::secrets::render::Out;
use crate::secrets::rotation_state::add_placeholder;
use crate::secrets::store::ensure_writable;
use crate::secrets::values::{new_token, read_token};
use crate::secrets::{SecretsEngine, schedule};
use crate::{AwsError, RequestContext};

/// A rotation request, as the runner needs it (the fields of the Lambda event, §3.2).
#[derive(Debug, Clone)]
pub struct RotationEvent {
    pub account_id: String,
    pub region: String,
    pub secret_arn: String,
    pub secret_name: String,
    /// The id of the AWSPENDING version the rotation must fill.
    pub client_request_token: String,
    pub rotation_lambda_arn: Option<String>,
    /// False: only test the configuration now, rotate at the next window.
    pub rotate_immediately: bool,
}

/// The extension point for the rotation runner (a later component): called after
/// RotateSecret has committed the configuration and the placeholder. An error is returned
/// to the RotateSecret caller (the stored state stays, as on AWS when the function cannot
/// be invoked).
#[async_trait]
pub trait RotationHook: Send + Sync + 'static {
    /// Configuration-time checks, before anything is stored: the function exists and may be
    /// used, and (for built-in functions) the current value has the shape it needs.
    /// `current_value` is the AWSCURRENT `SecretString`, if there is one.
    async fn check_function(
        &self,
        _ctx: &RequestContext,
        _secret_arn: &str,
        _lambda_arn: &str,
        _current_value: Option<&SecretString>,
    ) -> Result<(), AwsError> {
        Ok(())
    }

    async fn rotation_requested(&self, ctx: &RequestContext, event: RotationEvent) -> Result<(), AwsError>;
}

/// Reads and validates `RotationRules` (§2.2, §3.3).
fn read_rules(input: &Input) -> Result<Option<RotationRules>, AwsError> {
    let Some(r) = input.object("RotationRules")? else {
        return Ok(None);
    };
    let days = r.int("AutomaticallyAfterDays")?;
    let duration = r.string("Duration")?;
    let schedule = r.string("ScheduleExpression")?;
    if let Some(d) = days
        && !(1..=1000).contains(&d)
    {
        return Err(AwsError::invalid_parameter(
            "RotationRules.AutomaticallyAfterDays must be within 1-1000.",
        ));
    }
    if let Some(d) = &duration {
        check_len(d.chars().count(), 2, 3, "rotationRules.duration")?;
        let digits = d.strip_suffix('h').unwrap_or("");
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(validation(
                "Value at 'rotationRules.duration' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9h]+",
            ));
        }
    }
    if let Some(s) = &schedule {
        check_len(s.chars().count(), 1, 256, "rotationRules.scheduleExpression")?;
        let allowed = |c: char| c.is_ascii_alphanumeric() || "()#?*-/, ".contains(c);
        if !s.chars().all(allowed) {
            return Err(validation(
                "Value at 'rotationRules.scheduleExpression' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9A-Za-z\\(\\)#\\?\\*\\-\\/, ]+",
            ));
        }
        if !(s.starts_with("rate(") || s.starts_with("cron(")) || !s.ends_with(')') {
            return Err(AwsError::invalid_parameter(
                "The ScheduleExpression must be a rate(...) or cron(...) expression.",
            ));
        }
    }
    match (&days, &schedule) {
        (Some(_), Some(_)) => Err(AwsError::invalid_parameter(
            "You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules.",
        )),
        (None, None) => Err(AwsError::invalid_parameter(
            "RotationRules must contain either AutomaticallyAfterDays or ScheduleExpression.",
        )),
        _ => {
            let rules = RotationRules {
                automatically_after_days: days,
                duration,
                schedule_expression: schedule,
            };
            // The schedule's meaning: rate and cron syntax, limits, windows that fit.
            schedule::parse(&rules)?;
            Ok(Some(rules))
        }
    }
}

impl SecretsEngine {
    pub(crate) async fn rotate_secret(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let token = read_token(input)?;
        let lambda = input.string("RotationLambdaARN")?;
        if lambda.as_ref().is_some_and(|l| l.chars().count() > 2048) {
            return Err(AwsError::invalid_parameter(
                "RotationLambdaARN must <= 2048 characters long.",
            ));
        }
        let rules = read_rules(input)?;
        let rotate_immediately = input.bool("RotateImmediately")?.unwrap_or(true);
        let now = now_ms(ctx);
        self.check_rotation_function(ctx, &secret_id, lambda.as_deref()).await?;

        let (guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;
        let lambda = lambda
            .filter(|l| !l.is_empty())
            .or_else(|| rec.rotation.as_ref().and_then(|r| r.lambda_arn.clone()));
        if lambda.is_none() {
            return Err(AwsError::invalid_request(
                "No Lambda rotation function ARN is associated with this secret.",
            ));
        }
        // A rotation is in progress when AWSPENDING sits on a version other than AWSCURRENT.
        let current = rec.version_with_stage(AWSCURRENT).map(str::to_string);
        let in_progress = rec
            .version_with_stage(AWSPENDING)
            .map(str::to_string)
            .filter(|p| Some(p) != current.as_ref());
        if let Some(p) = &in_progress
            && token.as_deref() != Some(p.as_str())
        {
            return Err(AwsError::invalid_request(
                "A previous rotation isn't complete. That rotation will be reattempted.",
            ));
        }
        let vid = match token {
            Some(t) => t,
            None => new_token()?,
        };
        if in_progress.as_deref() != Some(vid.as_str()) && rec.versions.contains_key(&vid) && rotate_immediately {
            return Err(AwsError::resource_exists(format!(
                "You can't use ClientRequestToken {vid} because that value is already in use for a version of secret {}.",
                rec.arn
            )));
        }

        let old_rules = rec.rotation.as_ref().and_then(|r| r.rules.clone());
        let last_rotated = rec.rotation.as_ref().and_then(|r| r.last_rotated_ms);
        rec.rotation = Some(RotationConfig {
            enabled: true,
            lambda_arn: lambda.clone(),
            rules: rules.or(old_rules),
            configured_ms: now,
            last_rotated_ms: last_rotated,
            // Asked to rotate now: a failed rotation is retried at once, with a fresh count.
            attempts: 0,
            last_error: None,
            retry_at_ms: None,
        });
        if rotate_immediately && !rec.versions.contains_key(&vid) {
            add_placeholder(&mut rec, &vid, now);
        }
        rec.changed_ms = now;
        self.commit(&rec, &[], &[]).await?;
        drop(guard);
        tracing::info!(secret = %rec.arn, version = %vid, "rotation requested");

        if let Some(hook) = &self.rotation_hook {
            hook.rotation_requested(
                ctx,
                RotationEvent {
                    account_id: rec.account.clone(),
                    region: rec.region.clone(),
                    secret_arn: rec.arn.clone(),
                    secret_name: rec.name.clone(),
                    client_request_token: vid.clone(),
                    rotation_lambda_arn: lambda,
                    rotate_immediately,
                },
            )
            .await?;
        }
        let mut out = Out::new().s("ARN", rec.arn.clone()).s("Name", rec.name.clone());
        if rotate_immediately {
            out = out.s("VersionId", vid);
        }
        Ok(out.build())
    }

    /// Asks the rotation hook whether the function RotateSecret names (or the stored one) may
    /// rotate this secret, before anything is stored.
    async fn check_rotation_function(
        &self,
        ctx: &RequestContext,
        secret_id: &str,
        given: Option<&str>,
    ) -> Result<(), AwsError> {
        let Some(hook) = &self.rotation_hook else {
            return Ok(());
        };
        let rec = self.find_required(ctx, secret_id).await?;
        let stored = rec.rotation.as_ref().and_then(|r| r.lambda_arn.as_deref());
        let Some(arn) = given.filter(|l| !l.is_empty()).or(stored) else {
            return Ok(());
        };
        let current = match rec.version_with_stage(AWSCURRENT) {
            Some(vid) => match self.load_value(ctx, &rec, vid).await? {
                Some(SecretValue::String(s)) => Some(s),
                _ => None,
            },
            None => None,
        };
        hook.check_function(ctx, &rec.arn, arn, current.as_ref()).await
    }

    pub(crate) async fn cancel_rotate_secret(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let secret_id = required(input.string("SecretId")?, "SecretId")?;
        let (_guard, mut rec) = self.lock_secret(ctx, &secret_id).await?;
        ensure_writable(&rec)?;
        let Some(rotation) = rec.rotation.as_mut().filter(|r| r.enabled) else {
            return Err(AwsError::invalid_request(
                "You tried to cancel rotation on a secret that doesn't have rotation enabled.",
            ));
        };
        rotation.enabled = false;
        let pending = rec.version_with_stage(AWSPENDING).map(str::to_string);
        let mut removed = Vec::new();
        if let Some(p) = &pending {
            let mut versions: BTreeMap<_, _> = std::mem::take(&mut rec.versions);
            if let Some(v) = versions.get_mut(p) {
                v.stages.retain(|s| s != AWSPENDING);
                if !v.has_value && v.stages.is_empty() {
                    versions.remove(p);
                    removed.push(p.clone());
                }
            }
            rec.versions = versions;
        }
        rec.changed_ms = now_ms(ctx);
        self.commit(&rec, &[], &removed).await?;
        Ok(Out::new()
            .s("ARN", rec.arn.clone())
            .s("Name", rec.name.clone())
            .opt_s("VersionId", pending.as_deref())
            .build())
    }
}
