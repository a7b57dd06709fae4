//! The records the engine stores and the storage layout.
//!
//! Layout inside the engine's storage view (the core mounts it at `aws/kms/`, behind the
//! barrier):
//!
//! | key | value |
//! |---|---|
//! | `keys/<account>/<region>/<key-id>` | [`KeyRecord`] (JSON, no key material) |
//! | `material/<account>/<region>/<key-id>/<version>` | raw key material of one version (AES key, HMAC key or PKCS#8 DER) |
//! | `aliases/<account>/<region>/<escaped alias name>` | [`AliasRecord`] (JSON) |
//! | `grants/<account>/<region>/<key-id>/<grant-id>` | [`GrantRecord`] (JSON) |
//!
//! Versions are zero-padded decimals so that storage order is version order. Records hold no
//! secret material, so they may derive `Debug`. Timestamps are Unix milliseconds.

use std::collections::BTreeMap;

use coffer_engines::{AwsError, RequestContext};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::spec::{KeySpec, KeyUsage};

pub(crate) const STATE_ENABLED: &str = "Enabled";
pub(crate) const STATE_DISABLED: &str = "Disabled";
pub(crate) const STATE_PENDING_DELETION: &str = "PendingDeletion";
pub(crate) const STATE_PENDING_IMPORT: &str = "PendingImport";

pub(crate) const MS_PER_DAY: i64 = 86_400_000;

/// `ctx.now` in Unix milliseconds.
pub(crate) fn now_ms(ctx: &RequestContext) -> i64 {
    ms_of(ctx.now)
}

pub(crate) fn ms_of(t: time::OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A timestamp on the wire: epoch seconds with a fractional part.
pub(crate) fn wire_time(ms: i64) -> Value {
    json!(ms as f64 / 1000.0)
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Tag {
    pub key: String,
    pub value: String,
}

/// One completed rotation of a key's material.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Rotation {
    pub material_id: String,
    pub date_ms: i64,
    /// `AUTOMATIC` or `ON_DEMAND`.
    pub kind: String,
}

/// A KMS key's metadata. The material lives in separate entries, one per version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct KeyRecord {
    pub account: String,
    pub region: String,
    pub key_id: String,
    pub arn: String,
    pub created_ms: i64,
    pub description: String,
    pub key_usage: KeyUsage,
    pub key_spec: KeySpec,
    pub origin: String,
    /// `CUSTOMER` or `AWS`.
    pub key_manager: String,
    pub state: String,
    #[serde(default)]
    pub deletion_ms: Option<i64>,
    #[serde(default)]
    pub pending_window_days: Option<i64>,
    pub policy: String,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub rotation_enabled: bool,
    #[serde(default)]
    pub rotation_period_days: Option<i64>,
    #[serde(default)]
    pub next_rotation_ms: Option<i64>,
    #[serde(default)]
    pub rotations: Vec<Rotation>,
    /// Material ids by version (version `v` is at index `v - 1`); empty when there is none
    /// (imported-material keys before import).
    #[serde(default)]
    pub material_ids: Vec<String>,
}

impl KeyRecord {
    pub(crate) fn from_bytes(b: &[u8]) -> Result<Self, AwsError> {
        serde_json::from_slice(b).map_err(|_| {
            AwsError::new(
                coffer_engines::AwsErrorCode::KMSInternalException,
                "stored key record is unreadable",
            )
        })
    }

    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>, AwsError> {
        serde_json::to_vec(self).map_err(|_| {
            AwsError::new(
                coffer_engines::AwsErrorCode::KMSInternalException,
                "key record does not serialize",
            )
        })
    }

    /// The current material version (1-based); 0 when the key has no material.
    pub(crate) fn current_version(&self) -> u32 {
        u32::try_from(self.material_ids.len()).unwrap_or(u32::MAX)
    }

    pub(crate) fn current_material_id(&self) -> Option<&str> {
        self.material_ids.last().map(String::as_str)
    }

    pub(crate) fn is_aws_managed(&self) -> bool {
        self.key_manager == "AWS"
    }

    pub(crate) fn on_demand_rotations(&self) -> usize {
        self.rotations.iter().filter(|r| r.kind == "ON_DEMAND").count()
    }

    /// `KeyMetadata` as DescribeKey/CreateKey return it.
    pub(crate) fn metadata(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("AWSAccountId".into(), json!(self.account));
        m.insert("KeyId".into(), json!(self.key_id));
        m.insert("Arn".into(), json!(self.arn));
        m.insert("CreationDate".into(), wire_time(self.created_ms));
        m.insert("Enabled".into(), json!(self.state == STATE_ENABLED));
        m.insert("Description".into(), json!(self.description));
        m.insert("KeyUsage".into(), json!(self.key_usage.as_str()));
        m.insert("KeyState".into(), json!(self.state));
        if let Some(d) = self.deletion_ms {
            m.insert("DeletionDate".into(), wire_time(d));
        }
        if let Some(w) = self.pending_window_days {
            m.insert("PendingDeletionWindowInDays".into(), json!(w));
        }
        m.insert("Origin".into(), json!(self.origin));
        m.insert("KeyManager".into(), json!(self.key_manager));
        m.insert("CustomerMasterKeySpec".into(), json!(self.key_spec.as_str()));
        m.insert("KeySpec".into(), json!(self.key_spec.as_str()));
        match self.key_usage {
            KeyUsage::EncryptDecrypt => {
                m.insert(
                    "EncryptionAlgorithms".into(),
                    json!(self.key_spec.encryption_algorithms()),
                );
            }
            KeyUsage::SignVerify => {
                m.insert("SigningAlgorithms".into(), json!(self.key_spec.signing_algorithms()));
            }
            KeyUsage::GenerateVerifyMac => {
                m.insert("MacAlgorithms".into(), json!(self.key_spec.mac_algorithms()));
            }
        }
        m.insert("MultiRegion".into(), json!(false));
        if self.key_spec == KeySpec::SymmetricDefault
            && let Some(id) = self.current_material_id()
        {
            m.insert("CurrentKeyMaterialId".into(), json!(id));
        }
        Value::Object(m)
    }
}

/// An alias: a name in one account and region that points at one key.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct AliasRecord {
    pub name: String,
    pub target_key_id: String,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl AliasRecord {
    pub(crate) fn render(&self, account: &str, region: &str) -> Value {
        json!({
            "AliasName": self.name,
            "AliasArn": alias_arn(account, region, &self.name),
            "TargetKeyId": self.target_key_id,
            "CreationDate": wire_time(self.created_ms),
            "LastUpdatedDate": wire_time(self.updated_ms),
        })
    }
}

/// A grant on a key. Only the SHA-256 of its grant token is stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct GrantRecord {
    pub key_id: String,
    pub grant_id: String,
    pub token_sha256: String,
    pub name: Option<String>,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    pub issuing_account: String,
    pub operations: Vec<String>,
    pub constraints: Option<GrantConstraints>,
    pub created_ms: i64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct GrantConstraints {
    pub subset: Option<BTreeMap<String, String>>,
    pub equals: Option<BTreeMap<String, String>>,
}

impl GrantRecord {
    pub(crate) fn render(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("KeyId".into(), json!(self.key_id));
        m.insert("GrantId".into(), json!(self.grant_id));
        if let Some(n) = &self.name {
            m.insert("Name".into(), json!(n));
        }
        m.insert("CreationDate".into(), wire_time(self.created_ms));
        m.insert("GranteePrincipal".into(), json!(self.grantee_principal));
        if let Some(r) = &self.retiring_principal {
            m.insert("RetiringPrincipal".into(), json!(r));
        }
        m.insert("IssuingAccount".into(), json!(self.issuing_account));
        m.insert("Operations".into(), json!(self.operations));
        if let Some(c) = &self.constraints {
            let mut cm = serde_json::Map::new();
            if let Some(s) = &c.subset {
                cm.insert("EncryptionContextSubset".into(), json!(s));
            }
            if let Some(e) = &c.equals {
                cm.insert("EncryptionContextEquals".into(), json!(e));
            }
            m.insert("Constraints".into(), Value::Object(cm));
        }
        Value::Object(m)
    }
}

pub(crate) fn key_arn(account: &str, region: &str, key_id: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:key/{key_id}")
}

pub(crate) fn alias_arn(account: &str, region: &str, alias: &str) -> String {
    format!("arn:aws:kms:{region}:{account}:{alias}")
}

pub(crate) fn key_path(account: &str, region: &str, key_id: &str) -> String {
    format!("keys/{account}/{region}/{key_id}")
}

pub(crate) fn keys_prefix(account: &str, region: &str) -> String {
    format!("keys/{account}/{region}/")
}

pub(crate) fn material_path(account: &str, region: &str, key_id: &str, version: u32) -> String {
    format!("material/{account}/{region}/{key_id}/{version:08}")
}

pub(crate) fn material_prefix(account: &str, region: &str, key_id: &str) -> String {
    format!("material/{account}/{region}/{key_id}/")
}

/// Alias names contain `/`; storage keys use it as a separator, so it is escaped.
pub(crate) fn escape_alias(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2F")
}

pub(crate) fn alias_path(account: &str, region: &str, name: &str) -> String {
    format!("aliases/{account}/{region}/{}", escape_alias(name))
}

pub(crate) fn aliases_prefix(account: &str, region: &str) -> String {
    format!("aliases/{account}/{region}/")
}

pub(crate) fn grant_path(account: &str, region: &str, key_id: &str, grant_id: &str) -> String {
    format!("grants/{account}/{region}/{key_id}/{grant_id}")
}

pub(crate) fn grants_prefix(account: &str, region: &str, key_id: &str) -> String {
    format!("grants/{account}/{region}/{key_id}/")
}

/// The default key policy: the account root may do everything (AWS's "key-default-1").
pub(crate) fn default_policy(account: &str) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {{
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{account}:root"
    }},
    "Action" : "kms:*",
    "Resource" : "*"
  }} ]
}}"#
    )
}

/// The policy of an AWS-managed key: principals of the account may use it through the
/// owning service, and may read its metadata directly.
pub(crate) fn aws_managed_policy(account: &str, region: &str, service: &str) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "auto-{service}-2",
  "Statement" : [ {{
    "Sid" : "Allow access through {service} for all principals in the account that are authorized to use {service}",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "*"
    }},
    "Action" : [ "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey" ],
    "Resource" : "*",
    "Condition" : {{
      "StringEquals" : {{
        "kms:CallerAccount" : "{account}",
        "kms:ViaService" : "{service}.{region}.amazonaws.com"
      }}
    }}
  }}, {{
    "Sid" : "Allow direct access to key metadata to the account",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "arn:aws:iam::{account}:root"
    }},
    "Action" : [ "kms:Describe*", "kms:Get*", "kms:List*" ],
    "Resource" : "*"
  }} ]
}}"#
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_json_and_aliases_escape() {
        let p: Value = serde_json::from_str(&default_policy("123456789012")).unwrap();
        assert_eq!(p["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
        let p: Value = serde_json::from_str(&aws_managed_policy("1", "us-east-1", "ssm")).unwrap();
        assert_eq!(p["Id"], "auto-ssm-2");
        assert_eq!(escape_alias("alias/a/b%"), "alias%2Fa%2Fb%25");
        assert!(material_path("a", "r", "k", 2) < material_path("a", "r", "k", 10));
    }
}
