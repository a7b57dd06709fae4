//! The records the engine stores: one [`SecretRecord`] per secret (postcard after a format
//! byte; older ones JSON), holding all its metadata and its version table, and one encoded
//! [`SecretValue`] per version.
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
    #[serde(default)]
    pub automatically_after_days: Option<i64>,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub schedule_expression: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct RotationConfig {
    pub enabled: bool,
    #[serde(default)]
    pub lambda_arn: Option<String>,
    #[serde(default)]
    pub rules: Option<RotationRules>,
    /// When rotation was (re)configured; the base for the next rotation date until the
    /// first successful rotation.
    pub configured_ms: i64,
    #[serde(default)]
    pub last_rotated_ms: Option<i64>,
    /// Failed attempts of the rotation in progress (reset when one succeeds).
    #[serde(default)]
    pub attempts: u32,
    /// Why the last attempt failed, for the operator (`GetRotationStatus`).
    #[serde(default)]
    pub last_error: Option<RotationFailure>,
    /// Not before this time is a failed rotation retried (backoff).
    #[serde(default)]
    pub retry_at_ms: Option<i64>,
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
    #[serde(default)]
    pub kms_key_id: Option<String>,
    /// `InSync` or `Failed`.
    pub status: String,
    #[serde(default)]
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
    #[serde(default)]
    pub accessed_day_ms: Option<i64>,
    /// The KMS keys the value is encrypted under, as ListSecretVersionIds reports them
    /// (`DefaultEncryptionKey` for the AWS-managed key), newest first. Empty in records
    /// written before this was tracked: the secret's current key is reported then.
    #[serde(default)]
    pub kms_key_ids: Vec<String>,
}

impl VersionRecord {
    pub(crate) fn has_stage(&self, stage: &str) -> bool {
        self.stages.iter().any(|s| s == stage)
    }
}

/// Everything about one secret except its values. The order of the fields is the stored
/// binary layout (see [`FORMAT_POSTCARD`]); [`SecretHeader`] repeats all but the last two.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SecretRecord {
    pub account: String,
    pub region: String,
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub secret_type: Option<String>,
    /// `None` until tags were ever set (DescribeSecret then omits `Tags`).
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    pub created_ms: i64,
    /// Creation time in nanoseconds: orders secrets created in the same millisecond.
    #[serde(default)]
    pub created_ns: i64,
    pub changed_ms: i64,
    #[serde(default)]
    pub accessed_day_ms: Option<i64>,
    /// When DeleteSecret was called.
    #[serde(default)]
    pub deleted_ms: Option<i64>,
    /// When the recovery window ends and the secret is purged.
    #[serde(default)]
    pub deletion_ms: Option<i64>,
    #[serde(default)]
    pub rotation: Option<RotationConfig>,
    #[serde(default)]
    pub policy: Option<String>,
    /// Set on replicas: the region of the primary secret.
    #[serde(default)]
    pub primary_region: Option<String>,
    /// Set on primaries: their replicas.
    #[serde(default)]
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

    /// The stored form: [`FORMAT_POSTCARD`], then the record in postcard.
    pub(crate) fn to_bytes(&self) -> Result<SecretBytes, AwsError> {
        postcard::to_extend(self, vec![FORMAT_POSTCARD])
            .map(SecretBytes::new)
            .map_err(|e| AwsError::internal(format!("cannot encode secret metadata: {e}")))
    }

    pub(crate) fn from_bytes(b: &SecretBytes) -> Result<Self, AwsError> {
        decode_stored(b)
    }
}

/// The first byte of a record in the binary form. Records written before it are JSON and start
/// with `{`; they are still read, and rewritten in the binary form by their next change.
///
/// The binary form (postcard) is positional and not self-describing: the fields are stored in
/// the order [`SecretRecord`] declares them, with no names. A record decodes its JSON-era
/// fields by name (`#[serde(default)]` fills the missing ones), but in the binary form a field
/// added, removed or moved changes the layout: such a change needs a new format byte, whose
/// decoder reads the old layout too.
pub(crate) const FORMAT_POSTCARD: u8 = 1;

/// Decodes a stored record, or a prefix of one ([`SecretHeader`]), in either form.
fn decode_stored<T: serde::de::DeserializeOwned>(b: &SecretBytes) -> Result<T, AwsError> {
    let bytes = b.expose();
    let decoded = match bytes.split_first() {
        // `from_bytes` stops after the fields of `T`: a prefix skips the rest unread.
        Some((&FORMAT_POSTCARD, record)) => postcard::from_bytes(record).ok(),
        _ => serde_json::from_slice(bytes).ok(),
    };
    decoded.ok_or_else(|| AwsError::internal("stored secret metadata is corrupt"))
}

/// Every field of a [`SecretRecord`] before its version table, in the same order. In the
/// binary form this is a prefix of the record, so decoding it stops before the version table
/// (up to 100 versions) instead of reading it; in a JSON record the table is skipped over.
/// Authorization reads a secret through it, and so does a writer picking the secret's lock.
/// `header_is_a_prefix_of_the_record` (tests) keeps the two declarations in step.
#[derive(Deserialize)]
#[allow(dead_code)] // Fields nobody reads keep the prefix in the record's order.
pub(crate) struct SecretHeader {
    pub account: String,
    pub region: String,
    pub name: String,
    pub arn: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub kms_key_id: Option<String>,
    #[serde(default)]
    pub secret_type: Option<String>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    pub created_ms: i64,
    #[serde(default)]
    pub created_ns: i64,
    pub changed_ms: i64,
    #[serde(default)]
    pub accessed_day_ms: Option<i64>,
    #[serde(default)]
    pub deleted_ms: Option<i64>,
    #[serde(default)]
    pub deletion_ms: Option<i64>,
    #[serde(default)]
    pub rotation: Option<RotationConfig>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub primary_region: Option<String>,
    #[serde(default)]
    pub replicas: Vec<ReplicaRecord>,
}

impl SecretHeader {
    pub(crate) fn from_bytes(b: &SecretBytes) -> Result<Self, AwsError> {
        decode_stored(b)
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

    /// A record with every field set to a value of its own.
    fn full_record() -> SecretRecord {
        let version = |seq: u64, stages: &[&str]| VersionRecord {
            stages: stages.iter().map(|s| s.to_string()).collect(),
            created_ms: 1_000 + i64::try_from(seq).unwrap(),
            seq,
            has_value: seq.is_multiple_of(2),
            accessed_day_ms: Some(86_400_000),
            kms_key_ids: vec!["alias/k".into()],
        };
        SecretRecord {
            account: "123456789012".into(),
            region: "eu-west-1".into(),
            name: "app/db".into(),
            arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf".into(),
            description: Some("d".into()),
            kms_key_id: Some("alias/k".into()),
            secret_type: Some("t".into()),
            tags: Some(vec![Tag {
                key: "k".into(),
                value: "v".into(),
            }]),
            created_ms: 11,
            created_ns: 11_000_001,
            changed_ms: 12,
            accessed_day_ms: Some(13),
            deleted_ms: Some(14),
            deletion_ms: Some(15),
            rotation: Some(RotationConfig {
                enabled: true,
                lambda_arn: Some("arn:aws:lambda:eu-west-1:123456789012:function:f".into()),
                rules: Some(RotationRules {
                    automatically_after_days: Some(7),
                    duration: Some("3h".into()),
                    schedule_expression: Some("rate(7 days)".into()),
                }),
                configured_ms: 16,
                last_rotated_ms: Some(17),
                attempts: 2,
                last_error: Some(RotationFailure {
                    step: "setSecret".into(),
                    message: "m".into(),
                    at_ms: 18,
                }),
                retry_at_ms: Some(19),
            }),
            policy: Some("{}".into()),
            primary_region: Some("us-east-1".into()),
            replicas: vec![ReplicaRecord {
                region: "ap-south-1".into(),
                kms_key_id: None,
                status: REPLICA_IN_SYNC.into(),
                status_message: Some("ok".into()),
            }],
            versions: (0..100u64)
                .map(|i| {
                    (
                        format!("{i:08}-0000-4000-8000-000000000000"),
                        version(i, if i == 99 { &[AWSCURRENT] } else { &[] }),
                    )
                })
                .collect(),
            next_seq: 100,
        }
    }

    /// The header fields, as text, to compare a header with the record it came from.
    fn header_of(h: &SecretHeader) -> String {
        format!(
            "{} {} {} {} {:?} {:?} {:?} {:?} {} {} {} {:?} {:?} {:?} {:?} {:?} {:?} {:?}",
            h.account,
            h.region,
            h.name,
            h.arn,
            h.description,
            h.kms_key_id,
            h.secret_type,
            h.tags,
            h.created_ms,
            h.created_ns,
            h.changed_ms,
            h.accessed_day_ms,
            h.deleted_ms,
            h.deletion_ms,
            h.rotation,
            h.policy,
            h.primary_region,
            h.replicas
        )
    }

    fn header_of_record(r: &SecretRecord) -> String {
        header_of(&SecretHeader {
            account: r.account.clone(),
            region: r.region.clone(),
            name: r.name.clone(),
            arn: r.arn.clone(),
            description: r.description.clone(),
            kms_key_id: r.kms_key_id.clone(),
            secret_type: r.secret_type.clone(),
            tags: r.tags.clone(),
            created_ms: r.created_ms,
            created_ns: r.created_ns,
            changed_ms: r.changed_ms,
            accessed_day_ms: r.accessed_day_ms,
            deleted_ms: r.deleted_ms,
            deletion_ms: r.deletion_ms,
            rotation: r.rotation.clone(),
            policy: r.policy.clone(),
            primary_region: r.primary_region.clone(),
            replicas: r.replicas.clone(),
        })
    }

    /// The binary form round-trips every field, and the header decodes the same fields as the
    /// record: if the two declarations drift apart, this fails.
    #[test]
    fn header_is_a_prefix_of_the_record() {
        let rec = full_record();
        let bytes = rec.to_bytes().unwrap();
        assert_eq!(bytes.expose()[0], FORMAT_POSTCARD);
        let back = SecretRecord::from_bytes(&bytes).unwrap();
        assert_eq!(format!("{back:?}"), format!("{rec:?}"));
        let header = SecretHeader::from_bytes(&bytes).unwrap();
        assert_eq!(header_of(&header), header_of_record(&rec));
        // Smaller than the JSON of the same record.
        assert!(bytes.expose().len() * 2 < serde_json::to_vec(&rec).unwrap().len());
    }

    /// Records stored as JSON before the binary form are still read, whole or as a header,
    /// and are written back in the binary form.
    #[test]
    fn json_records_are_still_read() {
        let json = br#"{"account":"123456789012","region":"us-east-1","name":"s","arn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf","tags":[{"Key":"k","Value":"v"}],"created_ms":5,"changed_ms":6,"versions":{"11111111-1111-4111-8111-111111111111":{"stages":["AWSCURRENT"],"created_ms":5,"seq":0,"has_value":true,"kms_key_ids":["alias/aws/secretsmanager"]}},"next_seq":1}"#;
        let stored = SecretBytes::from_slice(json);
        let rec = SecretRecord::from_bytes(&stored).unwrap();
        assert_eq!(rec.name, "s");
        assert_eq!(rec.created_ns, 0);
        assert_eq!(
            rec.version_with_stage(AWSCURRENT),
            Some("11111111-1111-4111-8111-111111111111")
        );
        let header = SecretHeader::from_bytes(&stored).unwrap();
        assert_eq!(header_of(&header), header_of_record(&rec));
        let again = SecretRecord::from_bytes(&rec.to_bytes().unwrap()).unwrap();
        assert_eq!(format!("{again:?}"), format!("{rec:?}"));
    }

    #[test]
    fn corrupt_records_are_refused() {
        for bad in [
            &b""[..],
            &[FORMAT_POSTCARD][..],
            &[FORMAT_POSTCARD, 0xff, 0xff][..],
            b"{\"account\"",
        ] {
            let e = SecretRecord::from_bytes(&SecretBytes::from_slice(bad)).unwrap_err();
            assert_eq!(e.message, "stored secret metadata is corrupt");
            assert!(SecretHeader::from_bytes(&SecretBytes::from_slice(bad)).is_err());
        }
        // A truncated binary record.
        let bytes = full_record().to_bytes().unwrap();
        let cut = &bytes.expose()[..bytes.expose().len() - 10];
        assert!(SecretRecord::from_bytes(&SecretBytes::from_slice(cut)).is_err());
    }

    #[test]
    fn days() {
        assert_eq!(day_of(86_400_000 + 5), 86_400_000);
    }
}
