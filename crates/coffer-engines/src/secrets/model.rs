//! The records the engine stores: one [`SecretRecord`] (JSON) per secret, holding all its
//! metadata and its version table, and one encoded [`SecretValue`] per version.
//!
//! Timestamps are stored as Unix milliseconds (`*_ms`). Records hold no secret values, so
//! they may derive `Debug`.

use std::collections::BTreeMap;

use coffer_crypto::{SecretBytes, SecretString};
use serde::{Deserialize, Serialize};

use crate::{AwsError, RequestContext};

pub(crate) const AWSCURRENT: &str = "AWSCURRENT";
pub(crate) const AWSPREVIOUS: &str = "AWSPREVIOUS";
pub(crate) const AWSPENDING: &str = "AWSPENDING";

/// The KMS key Secrets Manager uses when none is given; DescribeSecret omits it.
pub(crate) const DEFAULT_KMS_ALIAS: &str = "alias/aws/secretsmanager";

/// The tag that names the service owning a managed secret.
pub(crate) const OWNING_SERVICE_TAG: &str = "aws:secretsmanager:owningService";

const MS_PER_DAY: i64 = 86_400_000;

/// `ctx.now` in Unix milliseconds.
pub(crate) fn now_ms(ctx: &RequestContext) -> i64 {
    i64::try_from(ctx.now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `ctx.now` in Unix nanoseconds.
pub(crate) fn now_ns(ctx: &RequestContext) -> i64 {
    i64::try_from(ctx.now.unix_timestamp_nanos()).unwrap_or(i64::MAX)
}

/// Midnight UTC of the day containing `ms`.
pub(crate) fn day_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(MS_PER_DAY)
}

pub(crate) fn days_ms(days: i64) -> i64 {
    days.saturating_mul(MS_PER_DAY)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Tag {
    #[serde(rename = "Key")]
    pub key: String,
    #[serde(rename = "Value")]
    pub value: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct RotationRules {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automatically_after_days: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_expression: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RotationConfig {
    pub enabled: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lambda_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<RotationRules>,
    /// When rotation was (re)configured; the base for the next rotation date until the
    /// first successful rotation.
    pub configured_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotated_ms: Option<i64>,
    /// Failed attempts of the rotation in progress (reset when one succeeds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// Why the last attempt failed, for the operator (`GetRotationStatus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<RotationFailure>,
    /// Not before this time is a failed rotation retried (backoff).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_at_ms: Option<i64>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The failure of one rotation attempt: the step and a message safe to show (rotation
/// functions never put secret values in it; the runner keeps output out of logs).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RotationFailure {
    pub step: String,
    pub message: String,
    pub at_ms: i64,
}

/// One replica of a primary secret, as the primary records it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ReplicaRecord {
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    /// `InSync` or `Failed`.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_message: Option<String>,
}

pub(crate) const REPLICA_IN_SYNC: &str = "InSync";
pub(crate) const REPLICA_FAILED: &str = "Failed";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub stages: Vec<String>,
    pub created_ms: i64,
    /// Creation order within the secret (timestamps can tie).
    pub seq: u64,
    /// False for the AWSPENDING placeholder RotateSecret creates.
    pub has_value: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessed_day_ms: Option<i64>,
    /// The KMS keys the value is encrypted under, as ListSecretVersionIds reports them
    /// (`DefaultEncryptionKey` for the AWS-managed key), newest first. Empty in records
    /// written before this was tracked: the secret's current key is reported then.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kms_key_ids: Vec<String>,
}

impl VersionRecord {
    pub(crate) fn has_stage(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }
}

/// Everything about one secret except its values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SecretRecord {
    pub account: String,
    pub region: String,
    pub name: String,
    pub arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_type: Option<String>,
    /// `None` until tags were ever set (DescribeSecret then omits `Tags`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<Tag>>,
    pub created_ms: i64,
    /// Creation time in nanoseconds: orders secrets created in the same millisecond.
    #[serde(default)]
    pub created_ns: i64,
    pub changed_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accessed_day_ms: Option<i64>,
    /// When DeleteSecret was called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_ms: Option<i64>,
    /// When the recovery window ends and the secret is purged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// Set on replicas: the region of the primary secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_region: Option<String>,
    /// Set on primaries: their replicas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaRecord>,
    pub versions: BTreeMap<String, VersionRecord>,
    pub next_seq: u64,
}

impl SecretRecord {
    pub(crate) fn is_deleted(&self) -> bool {
        self.deleted_ms.is_some()
    }

    pub(crate) fn is_replica(&self) -> bool {
        self.primary_region.is_some()
    }

    /// The version that carries `stage`.
    pub(crate) fn version_with_stage(&self, stage: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, v)| v.has_stage(stage))
            .map(|(id, _)| id.as_str())
    }

    /// The service that manages the secret (AWS marks managed secrets with the tag
    /// `aws:secretsmanager:owningService`).
    pub(crate) fn owning_service(&self) -> Option<&str> {
        self.tags
            .as_deref()?
            .iter()
            .find(|t| t.key == OWNING_SERVICE_TAG)
            .map(|t| t.value.as_str())
    }

    /// The `PrimaryRegion` DescribeSecret reports: the primary's region on a replica, the
    /// own region on a primary with replicas, nothing otherwise.
    pub(crate) fn reported_primary_region(&self) -> Option<&str> {
        match &self.primary_region {
            Some(p) => Some(p.as_str()),
            None if !self.replicas.is_empty() => Some(self.region.as_str()),
            None => None,
        }
    }

    /// Versions in creation order.
    pub(crate) fn versions_in_order(&self) -> Vec<(&String, &VersionRecord)> {
        let mut v: Vec<_> = self.versions.iter().collect();
        v.sort_by_key(|(_, r)| r.seq);
        v
    }

    pub(crate) fn to_bytes(&self) -> Result<SecretBytes, AwsError> {
        serde_json::to_vec(self)
            .map(SecretBytes::new)
            .map_err(|e| AwsError::internal(format!("cannot encode secret metadata: {e}")))
    }

    pub(crate) fn from_bytes(b: &SecretBytes) -> Result<Self, AwsError> {
        serde_json::from_slice(b.expose()).map_err(|_| AwsError::internal("stored secret metadata is corrupt"))
    }
}

/// The part of a [`SecretRecord`] that authorization reads. Decoding only these fields skips
/// over the version table (up to 100 versions) without building it.
#[derive(Deserialize)]
pub(crate) struct SecretHeader {
    pub arn: String,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub primary_region: Option<String>,
}

impl SecretHeader {
    pub(crate) fn from_bytes(b: &SecretBytes) -> Result<Self, AwsError> {
        serde_json::from_slice(b.expose()).map_err(|_| AwsError::internal("stored secret metadata is corrupt"))
    }
}

/// The name and ARN of a [`SecretRecord`]: what a writer needs to pick the secret's lock,
/// decoded without building the version table.
#[derive(Deserialize)]
pub(crate) struct SecretNames {
    pub name: String,
    pub arn: String,
}

impl SecretNames {
    pub(crate) fn from_bytes(b: &SecretBytes) -> Result<Self, AwsError> {
        serde_json::from_slice(b.expose()).map_err(|_| AwsError::internal("stored secret metadata is corrupt"))
    }
}

/// A secret value: `SecretString` or `SecretBinary`.
#[derive(Clone)]
pub(crate) enum SecretValue {
    String(SecretString),
    Binary(SecretBytes),
}

const TAG_STRING: u8 = b'S';
const TAG_BINARY: u8 = b'B';

impl SecretValue {
    /// Stored form: one tag byte (`S` or `B`) followed by the raw bytes.
    pub(crate) fn encode(&self) -> SecretBytes {
        let (tag, body) = match self {
            Self::String(s) => (TAG_STRING, s.expose().as_bytes()),
            Self::Binary(b) => (TAG_BINARY, b.expose()),
        };
        let mut v = Vec::with_capacity(body.len() + 1);
        v.push(tag);
        v.extend_from_slice(body);
        SecretBytes::new(v)
    }

    pub(crate) fn decode(b: &SecretBytes) -> Result<Self, AwsError> {
        let bytes = b.expose();
        match bytes.split_first() {
            Some((&TAG_STRING, rest)) => String::from_utf8(rest.to_vec())
                .map(|s| Self::String(SecretString::new(s)))
                .map_err(|_| AwsError::internal("stored secret value is corrupt")),
            Some((&TAG_BINARY, rest)) => Ok(Self::Binary(SecretBytes::from_slice(rest))),
            _ => Err(AwsError::internal("stored secret value is corrupt")),
        }
    }

    /// Same kind and same bytes, compared in constant time.
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::String(a), Self::String(b)) => a.clone().into_bytes().ct_eq(b.expose().as_bytes()),
            (Self::Binary(a), Self::Binary(b)) => a.ct_eq(b.expose()),
            _ => false,
        }
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::String(_) => f.write_str("SecretValue::String(<redacted>)"),
            Self::Binary(_) => f.write_str("SecretValue::Binary(<redacted>)"),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn value_codec_round_trips_and_redacts() {
        let s = SecretValue::String(SecretString::new("hunter2".into()));
        let b = SecretValue::Binary(SecretBytes::from_slice(b"hunter2"));
        assert!(SecretValue::decode(&s.encode()).unwrap().same_as(&s));
        assert!(SecretValue::decode(&b.encode()).unwrap().same_as(&b));
        assert!(!s.same_as(&b));
        assert!(!format!("{s:?}").contains("hunter2"));
        assert!(SecretValue::decode(&SecretBytes::from_slice(b"")).is_err());
    }

    #[test]
    fn days() {
        assert_eq!(day_of(86_400_000 + 5), 86_400_000);
    }
}
