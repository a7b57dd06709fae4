//! Stored records, the storage layout, identifiers and ARNs.
//!
//! Storage layout (relative to the view the engine is given; the core puts it behind the
//! barrier):
//!
//! | Key | Record |
//! |---|---|
//! | `accounts/<account>` | [`AccountRecord`]: the account and its root access key ids |
//! | `entities/<account>/users/<lower(name)>` | [`EntityRecord`] of a user (inline policies, attached ARNs, groups, key ids, tags) |
//! | `entities/<account>/roles/<lower(name)>` | [`EntityRecord`] of a role (trust policy, max session duration) |
//! | `entities/<account>/groups/<lower(name)>` | [`EntityRecord`] of a group (member names) |
//! | `policies/<account>/local/<lower(name)>` | [`PolicyRecord`]: a customer-managed policy, its versions and attachments |
//! | `policies/<account>/aws/<name>` | [`PolicyRecord`]: an account's attachments of an AWS-managed policy |
//! | `access-keys/<AKID>` | [`AccessKeyRecord`]: owner, status, dates and the secret (base64) |
//! | `sessions/<ASIA AKID>` | [`SessionRecord`]: an AssumeRole session; the token only as SHA-256 |
//!
//! IAM names are unique per account case-insensitively, hence the lower-cased keys; the
//! record keeps the name as created. Relations are stored on both sides (a user lists its
//! groups and the group its members; an entity lists attached policy ARNs and the policy its
//! attachments) and every change writes both sides in one atomic batch.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use coffer_crypto::{SecretBytes, random};
use coffer_engines::AwsError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::errors;

/// A tag on a user or role (and on sessions).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// The three kinds of IAM identity this engine stores as [`EntityRecord`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EntityKind {
    User,
    Role,
    Group,
}

impl EntityKind {
    pub(crate) fn dir(self) -> &'static str {
        match self {
            Self::User => "users",
            Self::Role => "roles",
            Self::Group => "groups",
        }
    }

    /// The word in ARNs and messages.
    pub(crate) fn word(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Role => "role",
            Self::Group => "group",
        }
    }

    /// `User`, `Role`, `Group`: element and parameter names.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Role => "Role",
            Self::Group => "Group",
        }
    }

    pub(crate) fn id_prefix(self) -> &'static str {
        match self {
            Self::User => "AIDA",
            Self::Role => "AROA",
            Self::Group => "AGPA",
        }
    }

    /// Maximum name length.
    pub(crate) fn max_name(self) -> usize {
        match self {
            Self::User | Self::Role => 64,
            Self::Group => 128,
        }
    }

    pub(crate) fn not_found(self, name: &str) -> AwsError {
        errors::no_such_entity(format!("The {} with name {name} cannot be found.", self.word()))
    }
}

/// A user, role or group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct EntityRecord {
    pub kind: EntityKind,
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub created: i64,
    /// Inline policies: name → document.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached managed policy ARNs, in attachment order.
    #[serde(default)]
    pub attached: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Users: the groups (names) they belong to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Users: their access key ids.
    #[serde(default)]
    pub access_keys: Vec<String>,
    /// Groups: member user names.
    #[serde(default)]
    pub members: Vec<String>,
    /// Roles: the trust policy document.
    #[serde(default)]
    pub trust_policy: Option<String>,
    /// Roles: maximum session duration in seconds (3600–43200).
    #[serde(default)]
    pub max_session_duration: Option<i64>,
    #[serde(default)]
    pub description: Option<String>,
}

/// One version of a managed policy.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PolicyVersion {
    pub id: String,
    pub document: String,
    pub created: i64,
}

/// An entity a managed policy is attached to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Attachment {
    pub kind: EntityKind,
    pub name: String,
    pub id: String,
}

/// A managed policy (customer-managed, or the per-account attachment record of an
/// AWS-managed one).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PolicyRecord {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub description: Option<String>,
    pub created: i64,
    pub updated: i64,
    pub default_version: String,
    /// The number the next version gets (`v<n>`); versions are never renumbered.
    pub next_version: u32,
    pub versions: Vec<PolicyVersion>,
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub aws_managed: bool,
}

impl PolicyRecord {
    pub fn default_document(&self) -> Option<&str> {
        self.versions
            .iter()
            .find(|v| v.id == self.default_version)
            .map(|v| v.document.as_str())
    }
}

/// An account: its root access keys.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct AccountRecord {
    pub account_id: String,
    pub created: i64,
    #[serde(default)]
    pub root_access_keys: Vec<String>,
}

/// Who owns a long-term access key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum KeyOwner {
    Root,
    User { name: String, id: String },
}

/// When and where an access key was last used.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LastUsed {
    pub date: i64,
    pub service: String,
    pub region: String,
}

/// A long-term access key (`AKIA...`). The secret is only ever written through the storage
/// view (behind the barrier); `Debug` leaves it out.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct AccessKeyRecord {
    pub access_key_id: String,
    pub account_id: String,
    pub owner: KeyOwner,
    /// `Active` or `Inactive`.
    pub status: String,
    pub created: i64,
    #[serde(default)]
    pub last_used: Option<LastUsed>,
    /// Base64 of the secret access key.
    pub secret: String,
}

impl fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("access_key_id", &self.access_key_id)
            .field("account_id", &self.account_id)
            .field("owner", &self.owner)
            .field("status", &self.status)
            .field("created", &self.created)
            .finish_non_exhaustive()
    }
}

/// A temporary-credentials session made by AssumeRole (`ASIA...`). The session token is
/// stored only as its SHA-256; the secret only through the storage view. `Debug` leaves
/// both out.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct SessionRecord {
    pub access_key_id: String,
    /// The role's account: the session acts there.
    pub account_id: String,
    pub secret: String,
    pub token_sha256: String,
    pub expires: i64,
    pub created: i64,
    pub role_arn: String,
    pub role_id: String,
    pub role_name: String,
    pub session_name: String,
    pub session_policy: Option<String>,
    #[serde(default)]
    pub policy_arns: Vec<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Who assumed the role.
    pub source_arn: String,
    /// For sessions Coffer issues to itself (a rotation function's credentials): the policy
    /// that grants the session its permissions, in place of a stored role's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_policy: Option<String>,
}

impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionRecord")
            .field("access_key_id", &self.access_key_id)
            .field("account_id", &self.account_id)
            .field("role_arn", &self.role_arn)
            .field("session_name", &self.session_name)
            .field("expires", &self.expires)
            .finish_non_exhaustive()
    }
}

// ---- storage keys ----

pub(crate) const ACCOUNTS: &str = "accounts/";
pub(crate) const ACCESS_KEYS: &str = "access-keys/";
pub(crate) const SESSIONS: &str = "sessions/";

pub(crate) fn account_key(account: &str) -> String {
    format!("{ACCOUNTS}{account}")
}

pub(crate) fn entity_dir(account: &str, kind: EntityKind) -> String {
    format!("entities/{account}/{}/", kind.dir())
}

pub(crate) fn entity_key(account: &str, kind: EntityKind, name: &str) -> String {
    format!("{}{}", entity_dir(account, kind), name.to_ascii_lowercase())
}

pub(crate) fn local_policy_dir(account: &str) -> String {
    format!("policies/{account}/local/")
}

pub(crate) fn local_policy_key(account: &str, name: &str) -> String {
    format!("{}{}", local_policy_dir(account), name.to_ascii_lowercase())
}

pub(crate) fn aws_policy_key(account: &str, name: &str) -> String {
    format!("policies/{account}/aws/{name}")
}

pub(crate) fn access_key_key(akid: &str) -> String {
    format!("{ACCESS_KEYS}{akid}")
}

pub(crate) fn session_key(akid: &str) -> String {
    format!("{SESSIONS}{akid}")
}

// ---- identifiers and ARNs ----

/// Characters of IAM unique ids and access key ids after their 4-character prefix.
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn rand_str(alphabet: &[u8], len: usize) -> Result<String, AwsError> {
    random::string_from(alphabet, len).map_err(|e| errors::internal(e.to_string()))
}

/// A unique id: `prefix` + 17 characters (21 in all, as IAM's).
pub(crate) fn new_unique_id(prefix: &str) -> Result<String, AwsError> {
    Ok(format!("{prefix}{}", rand_str(ID_ALPHABET, 17)?))
}

/// An access key id: `prefix` (`AKIA` or `ASIA`) + 16 characters.
pub(crate) fn new_access_key_id(prefix: &str) -> Result<String, AwsError> {
    Ok(format!("{prefix}{}", rand_str(ID_ALPHABET, 16)?))
}

/// A 40-character secret access key.
pub(crate) fn new_secret() -> Result<SecretBytes, AwsError> {
    Ok(SecretBytes::new(rand_str(SECRET_ALPHABET, 40)?.into_bytes()))
}

/// A session token: 256 random characters (about 1500 bits).
pub(crate) fn new_session_token() -> Result<SecretBytes, AwsError> {
    Ok(SecretBytes::new(rand_str(SECRET_ALPHABET, 256)?.into_bytes()))
}

pub(crate) fn encode_secret(secret: &SecretBytes) -> String {
    base64::engine::general_purpose::STANDARD.encode(secret.expose())
}

pub(crate) fn decode_secret(b64: &str) -> Result<SecretBytes, AwsError> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .map(SecretBytes::new)
        .map_err(|_| errors::internal("access key record: bad secret encoding"))
}

pub(crate) fn root_arn(account: &str) -> String {
    format!("arn:aws:iam::{account}:root")
}

pub(crate) fn entity_arn(account: &str, kind: EntityKind, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:{}{path}{name}", kind.word())
}

pub(crate) fn policy_arn(account: &str, path: &str, name: &str) -> String {
    format!("arn:aws:iam::{account}:policy{path}{name}")
}

/// ISO 8601 with seconds, as IAM and STS print dates (`2024-01-02T03:04:05Z`).
pub(crate) fn iso(ts: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

// ---- JSON encoding ----

pub(crate) fn to_bytes<T: Serialize>(v: &T) -> Result<SecretBytes, AwsError> {
    serde_json::to_vec(v)
        .map(SecretBytes::new)
        .map_err(|e| errors::internal(format!("encoding an IAM record: {e}")))
}

pub(crate) fn from_bytes<T: DeserializeOwned>(b: &SecretBytes, what: &str) -> Result<T, AwsError> {
    // Only the position: serde_json's messages can quote the offending value.
    serde_json::from_slice(b.expose()).map_err(|e| {
        errors::internal(format!(
            "corrupt {what} record (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}
