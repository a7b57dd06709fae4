//! Staging-label algebra and version retention (reference §2.5).
//!
//! * A label lives on at most one version; attaching it elsewhere moves it.
//! * Moving `AWSCURRENT` away from a version gives that version `AWSPREVIOUS` (taken from
//!   wherever it was).
//! * A version without labels is deprecated. Deprecated versions beyond the 100 most recent
//!   are pruned unless they were created in the last 24 hours.

use crate::AwsError;
use crate::secrets::model::{AWSCURRENT, AWSPREVIOUS, SecretRecord, VersionRecord};

/// How many recent versions are always kept.
pub(crate) const KEEP_RECENT: usize = 100;
/// Deprecated versions younger than this are never pruned.
const KEEP_YOUNGER_THAN_MS: i64 = 24 * 3_600_000;
/// The hard quota: a secret can never hold more versions than this (all of them recent or
/// labelled). AWS documents the quota without a number; this keeps storage bounded.
pub(crate) const MAX_VERSIONS: usize = 500;
/// Labels per version (model limit of `VersionStages`).
pub(crate) const MAX_STAGES_PER_VERSION: usize = 20;

/// Attaches `stage` to `version_id`, moving it from any other version.
pub(crate) fn attach_stage(rec: &mut SecretRecord, version_id: &str, stage: &str) {
    if stage == AWSCURRENT {
        let old = rec.version_with_stage(AWSCURRENT).map(str::to_string);
        if old.as_deref() == Some(version_id) {
            return;
        }
        if let Some(old) = old {
            for v in rec.versions.values_mut() {
                v.stages.retain(|s| s != AWSPREVIOUS);
            }
            if let Some(o) = rec.versions.get_mut(&old) {
                o.stages.retain(|s| s != AWSCURRENT);
                o.stages.push(AWSPREVIOUS.to_string());
            }
        }
    } else {
        for (id, v) in rec.versions.iter_mut() {
            if id != version_id {
                v.stages.retain(|s| s != stage);
            }
        }
    }
    if let Some(v) = rec.versions.get_mut(version_id)
        && !v.has_stage(stage)
    {
        v.stages.push(stage.to_string());
    }
}

/// Removes `stage` from `version_id`.
pub(crate) fn detach_stage(rec: &mut SecretRecord, version_id: &str, stage: &str) {
    if let Some(v) = rec.versions.get_mut(version_id) {
        v.stages.retain(|s| s != stage);
    }
}

/// Inserts a new version (or fills the value of a value-less one) and applies labels:
/// `stages` or, when absent, `AWSCURRENT`; the first version with a value always gets
/// `AWSCURRENT`.
pub(crate) fn put_version(
    rec: &mut SecretRecord,
    version_id: &str,
    stages: Option<&[String]>,
    now_ms: i64,
) -> Result<(), AwsError> {
    match rec.versions.get_mut(version_id) {
        Some(v) => v.has_value = true,
        None => {
            let seq = rec.next_seq;
            rec.next_seq += 1;
            rec.versions.insert(
                version_id.to_string(),
                VersionRecord {
                    stages: Vec::new(),
                    created_ms: now_ms,
                    seq,
                    has_value: true,
                    accessed_day_ms: None,
                    kms_key_ids: Vec::new(),
                },
            );
        }
    }
    let default = [AWSCURRENT.to_string()];
    for stage in stages.unwrap_or(&default) {
        attach_stage(rec, version_id, stage);
    }
    if rec.version_with_stage(AWSCURRENT).is_none() {
        attach_stage(rec, version_id, AWSCURRENT);
    }
    check_stage_limit(rec, version_id)?;
    rec.changed_ms = now_ms;
    Ok(())
}

pub(crate) fn check_stage_limit(rec: &SecretRecord, version_id: &str) -> Result<(), AwsError> {
    if rec
        .versions
        .get(version_id)
        .is_some_and(|v| v.stages.len() > MAX_STAGES_PER_VERSION)
    {
        return Err(AwsError::limit_exceeded(format!(
            "A version can have at most {MAX_STAGES_PER_VERSION} staging labels."
        )));
    }
    Ok(())
}

/// Drops deprecated versions beyond the retention rule and returns their ids (their values
/// must be deleted). Fails with `LimitExceededException` if the secret still holds more than
/// [`MAX_VERSIONS`] versions.
pub(crate) fn prune(rec: &mut SecretRecord, now_ms: i64) -> Result<Vec<String>, AwsError> {
    let mut removed = Vec::new();
    if rec.versions.len() > KEEP_RECENT {
        let mut ordered: Vec<(String, u64)> = rec.versions.iter().map(|(id, v)| (id.clone(), v.seq)).collect();
        ordered.sort_by_key(|(_, seq)| std::cmp::Reverse(*seq));
        for (id, _) in ordered.into_iter().skip(KEEP_RECENT) {
            let prunable = rec
                .versions
                .get(&id)
                .is_some_and(|v| v.stages.is_empty() && now_ms - v.created_ms >= KEEP_YOUNGER_THAN_MS);
            if prunable {
                rec.versions.remove(&id);
                removed.push(id);
            }
        }
    }
    if rec.versions.len() > MAX_VERSIONS {
        return Err(AwsError::limit_exceeded(format!(
            "You can't create more versions of this secret: it already has the maximum of {MAX_VERSIONS} versions \
             that are labelled or were created in the last 24 hours."
        )));
    }
    Ok(removed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::secrets::model::AWSPENDING;
    use std::collections::BTreeMap;

    fn rec() -> SecretRecord {
        SecretRecord {
            account: "1".into(),
            region: "r".into(),
            name: "n".into(),
            arn: "arn".into(),
            description: None,
            kms_key_id: None,
            secret_type: None,
            tags: None,
            created_ms: 0,
            created_ns: 0,
            changed_ms: 0,
            accessed_day_ms: None,
            deleted_ms: None,
            deletion_ms: None,
            rotation: None,
            policy: None,
            primary_region: None,
            replicas: Vec::new(),
            versions: BTreeMap::new(),
            next_seq: 0,
        }
    }

    fn stages(r: &SecretRecord, id: &str) -> Vec<String> {
        let mut s = r.versions[id].stages.clone();
        s.sort();
        s
    }

    #[test]
    fn current_and_previous_move() {
        let mut r = rec();
        put_version(&mut r, "v1", None, 1).unwrap();
        assert_eq!(stages(&r, "v1"), vec![AWSCURRENT]);
        put_version(&mut r, "v2", None, 2).unwrap();
        put_version(&mut r, "v3", None, 3).unwrap();
        assert_eq!(stages(&r, "v3"), vec![AWSCURRENT]);
        assert_eq!(stages(&r, "v2"), vec![AWSPREVIOUS]);
        assert!(stages(&r, "v1").is_empty());
        // Pending does not move current.
        put_version(&mut r, "v4", Some(&[AWSPENDING.to_string()]), 4).unwrap();
        assert_eq!(stages(&r, "v4"), vec![AWSPENDING]);
        assert_eq!(r.version_with_stage(AWSCURRENT), Some("v3"));
        // Custom label moves.
        attach_stage(&mut r, "v1", "mine");
        attach_stage(&mut r, "v2", "mine");
        assert!(!r.versions["v1"].has_stage("mine"));
        assert!(r.versions["v2"].has_stage("mine"));
    }

    #[test]
    fn first_value_gets_current_even_with_other_labels() {
        let mut r = rec();
        put_version(&mut r, "v1", Some(&["x".to_string()]), 1).unwrap();
        assert_eq!(stages(&r, "v1"), vec![AWSCURRENT.to_string(), "x".to_string()]);
    }

    #[test]
    fn pruning_keeps_recent_and_labelled() {
        let mut r = rec();
        for i in 0..150 {
            put_version(&mut r, &format!("v{i:03}"), None, i).unwrap();
        }
        // All were created "now" (within 24h): nothing pruned.
        assert!(prune(&mut r, 200).unwrap().is_empty());
        let later = 200 + KEEP_YOUNGER_THAN_MS;
        let removed = prune(&mut r, later).unwrap();
        assert_eq!(removed.len(), 50);
        assert_eq!(r.versions.len(), KEEP_RECENT);
        assert!(r.versions.contains_key("v149"));
        assert!(!r.versions.contains_key("v000"));
    }
}
