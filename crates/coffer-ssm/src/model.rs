//! Stored records. A parameter is one [`ParameterRecord`] (metadata of every retained
//! version, tags) plus one stored value per version (see [`crate::names`] for the layout).

use coffer_crypto::SecretBytes;
use coffer_engines::AwsError;
use serde::{Deserialize, Serialize};

pub(crate) const STRING: &str = "String";
pub(crate) const STRING_LIST: &str = "StringList";
pub(crate) const SECURE_STRING: &str = "SecureString";
pub(crate) const TYPES: &[&str] = &[SECURE_STRING, STRING_LIST, STRING];

pub(crate) const STANDARD: &str = "Standard";
pub(crate) const ADVANCED: &str = "Advanced";
pub(crate) const INTELLIGENT_TIERING: &str = "Intelligent-Tiering";
pub(crate) const TIERS: &[&str] = &[STANDARD, ADVANCED, INTELLIGENT_TIERING];

/// The AWS-managed key SecureString values use when `KeyId` is omitted.
pub(crate) const DEFAULT_KEY: &str = "alias/aws/ssm";

/// One parameter policy as stored and as DescribeParameters reports it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub(crate) struct Policy {
    pub policy_type: String,
    /// The policy object as the caller wrote it (serialized JSON).
    pub text: String,
    /// `Expiration` only: the epoch second at which the parameter is deleted.
    #[serde(default)]
    pub expires_at: Option<i64>,
}

/// Metadata of one version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub version: i64,
    pub param_type: String,
    pub tier: String,
    pub data_type: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub allowed_pattern: Option<String>,
    /// SecureString only: the `KeyId` as the caller gave it (or the default alias).
    #[serde(default)]
    pub key_id: Option<String>,
    #[serde(default)]
    pub policies: Vec<Policy>,
    #[serde(default)]
    pub labels: Vec<String>,
    /// Epoch seconds with millisecond precision.
    pub last_modified: f64,
    pub last_modified_user: String,
}

/// A tag (order of first insertion is kept).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Tag {
    pub key: String,
    pub value: String,
}

/// Everything stored about one parameter except its values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct ParameterRecord {
    /// The name as first created (`/x` or `x` for single-level names).
    pub name: String,
    pub account: String,
    pub region: String,
    /// Retained versions, oldest first (at most 100).
    pub versions: Vec<VersionRecord>,
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl ParameterRecord {
    pub(crate) fn from_bytes(b: &SecretBytes) -> Result<Self, AwsError> {
        serde_json::from_slice(b.expose()).map_err(|_| AwsError::internal("stored parameter record is corrupt"))
    }

    pub(crate) fn to_bytes(&self) -> Result<SecretBytes, AwsError> {
        serde_json::to_vec(self)
            .map(SecretBytes::new)
            .map_err(|_| AwsError::internal("cannot encode parameter record"))
    }

    /// The newest version.
    pub(crate) fn latest(&self) -> Result<&VersionRecord, AwsError> {
        self.versions
            .last()
            .ok_or_else(|| AwsError::internal("stored parameter has no version"))
    }

    pub(crate) fn version(&self, v: i64) -> Option<&VersionRecord> {
        self.versions.iter().find(|x| x.version == v)
    }

    pub(crate) fn labelled(&self, label: &str) -> Option<&VersionRecord> {
        self.versions.iter().find(|x| x.labels.iter().any(|l| l == label))
    }

    /// When the current version's Expiration policy deletes the parameter.
    pub(crate) fn expires_at(&self) -> Option<i64> {
        self.versions
            .last()
            .and_then(|v| v.policies.iter().find_map(|p| p.expires_at))
    }
}
