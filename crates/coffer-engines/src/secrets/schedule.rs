//! When a secret's next rotation is due, from its stored `RotationRules`: the scheduler's
//! trigger ([`due_ms`]) and the `NextRotationDate` that DescribeSecret and ListSecrets report
//! ([`next_rotation_ms`]). The window arithmetic is `coffer-rotation`'s; this module only
//! decides which instant a schedule counts from.
//!
//! The anchor is the latest of: the last successful rotation, the creation of the
//! AWSCURRENT version (a manual PutSecretValue or UpdateSecret counts as a rotation, as AWS
//! documents for `AutomaticallyAfterDays`), and the time rotation was (re)configured.
//! The rotation is due at a point inside the next window chosen from the secret's ARN, so
//! secrets that share a schedule spread over their window; `NextRotationDate` is the last
//! second of that window ("rotation is scheduled to occur on or before this date").

use coffer_rotation::{ErrorKind, Schedule};
use time::OffsetDateTime;

use crate::AwsError;
use crate::secrets::model::{AWSCURRENT, RotationRules, SecretRecord};

/// Parses stored or requested rules into a schedule, with AWS's error for a bad one.
pub(crate) fn parse(rules: &RotationRules) -> Result<Schedule, AwsError> {
    coffer_rotation::RotationRules::parse(
        rules.automatically_after_days,
        rules.schedule_expression.as_deref(),
        rules.duration.as_deref(),
    )
    .map_err(|e| match e.kind {
        ErrorKind::Validation => AwsError::validation(e.message),
        ErrorKind::InvalidParameter => AwsError::invalid_parameter(e.message),
    })
}

fn at(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// The schedule of a secret whose rotation is on and has rules, with the instant it counts
/// from.
fn schedule_of(rec: &SecretRecord) -> Option<(Schedule, OffsetDateTime)> {
    let rot = rec.rotation.as_ref().filter(|r| r.enabled)?;
    let schedule = parse(rot.rules.as_ref()?).ok()?;
    let current_created = rec
        .version_with_stage(AWSCURRENT)
        .and_then(|v| rec.versions.get(v))
        .map(|v| v.created_ms);
    let anchor = [rot.last_rotated_ms, current_created, Some(rot.configured_ms)]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(rec.created_ms);
    Some((schedule, at(anchor)))
}

/// A stable number from the ARN, to place the rotation inside its window.
fn seed(arn: &str) -> u64 {
    let h = coffer_crypto::hash::sha256(arn.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h[..8]);
    u64::from_be_bytes(b)
}

/// When the scheduler should start the next rotation (Unix ms), or `None` when rotation is
/// off or has no rules.
pub(crate) fn due_ms(rec: &SecretRecord) -> Option<i64> {
    let (schedule, anchor) = schedule_of(rec)?;
    let window = schedule.next_window(anchor, Some(anchor), at(rec.created_ms));
    Some(ms(window.pick_start(seed(&rec.arn))))
}

/// `NextRotationDate` (Unix ms): the last second of the next rotation window.
pub(crate) fn next_rotation_ms(rec: &SecretRecord) -> Option<i64> {
    let (schedule, anchor) = schedule_of(rec)?;
    Some(ms(schedule.next_rotation_date(
        anchor,
        Some(anchor),
        at(rec.created_ms),
    )))
}
