//! Redaction: sensitive values become `hmac-sha256:<hex>` before any device sees the event.
//!
//! [`Redactor::write_event`] serializes an [`AuditEvent`] straight into a byte buffer and, on
//! the way, walks `requestParameters` and `responseElements`: the value of every object key
//! that matches a [`RedactionRule`] is replaced by `hmac-sha256:<64 hex>`, the HMAC-SHA256 of
//! the value under the device's redaction key (see [`crate::DeviceKey`]). Nothing is cloned; the
//! clear value is only ever read. Keys match **case-insensitively and exactly**
//! (`Password` matches `password` but not `NewPassword`), so each spelling a wire uses is listed.
//!
//! What is hashed for a matched key:
//! - a string: its UTF-8 bytes, exactly as on the wire (so `SecretBinary`, base64 on the wire,
//!   is hashed as its base64 text; [`Redactor::hash_value`] of that text finds it);
//! - a number or boolean: its JSON text (`1234`, `true`) — a PIN is a secret too (Vault keeps
//!   these in clear; Coffer does not);
//! - an object or array: every leaf below it, keeping the object keys;
//! - `null` stays `null`.
//!
//! [`Action::Omit`] drops the key altogether (credentials that must never appear, not even
//! hashed: `Authorization`, `X-Amz-Security-Token`, `X-Vault-Token`).
//!
//! Default rules ([`RedactionRules::default`]), for every event source unless noted:
//!
//! | Keys | Why |
//! |---|---|
//! | `SecretString`, `SecretBinary` | Secrets Manager values |
//! | `Plaintext` | KMS `Encrypt`/`Decrypt`/`GenerateDataKey`, transit `plaintext` |
//! | `Password`, `NewPassword`, `OldPassword`, `RandomPassword` | IAM login profiles, `GetRandomPassword`, database credentials |
//! | `SecretAccessKey`, `SessionToken`, `secret_key`, `security_token` | STS/IAM credentials, Vault AWS engine |
//! | `Token`, `ClientToken`, `client_token`, `accessor`, `client_token_accessor`, `secret_id`, `wrapping_token` | Vault tokens, AppRole secret ids (`ClientToken` is an idempotency token in some AWS APIs: over-redaction is harmless) |
//! | `PrivateKey`, `private_key`, `KeyMaterial` | key material (KMS import, PKI) |
//! | `Value`, only for `ssm.amazonaws.com`, kept in clear when a sibling `Type` is `String` or `StringList` or a sibling `Key` exists (a tag) | SSM parameter values: SecureString and unknown types are hashed |
//! | `data`, only for [`VAULT_EVENT_SOURCE`] | the KV v2 payload: every leaf below is hashed |
//! | `Authorization`, `X-Amz-Security-Token`, `X-Vault-Token` | **omitted** |
//!
//! Not hashed on purpose: `SecretId`/`Name`/ARNs (the resource, needed for search),
//! `ClientRequestToken`/`VersionId` (idempotency tokens and version ids, not secrets),
//! `CiphertextBlob` (already encrypted), access key ids (the public half).
//!
//! The list is data: [`RedactionRules::push`] adds a rule (the server's config can extend it).

use serde::Serialize;
use serde::ser::{SerializeMap, SerializeSeq, Serializer};
use serde_json::{Map, Value};

use coffer_crypto::SecretBytes;
use coffer_crypto::hash::hmac_sha256;

use crate::AuditError;
use crate::event::{AuditEvent, Resource, UserIdentity, VAULT_EVENT_SOURCE, cloudtrail_time};

/// The prefix of every hashed value.
pub const HMAC_PREFIX: &str = "hmac-sha256:";

/// What happens to a matched key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Replace the value by its HMAC (every leaf of an object or array).
    Hash,
    /// Drop the key and its value.
    Omit,
}

/// One redaction rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactionRule {
    /// The object key, matched case-insensitively and exactly.
    pub key: String,
    /// What to do with its value.
    pub action: Action,
    /// The `eventSource`s the rule applies to; empty means every source.
    pub event_sources: Vec<String>,
    /// Keep the value in clear when the same object has this sibling key and (if the list is
    /// not empty) the sibling's string value is one of these values.
    pub keep_if_sibling: Vec<(String, Vec<String>)>,
}

impl RedactionRule {
    /// Hash `key` for every event source.
    pub fn hash(key: &str) -> Self {
        Self {
            key: key.to_owned(),
            action: Action::Hash,
            event_sources: Vec::new(),
            keep_if_sibling: Vec::new(),
        }
    }

    /// Omit `key` for every event source.
    pub fn omit(key: &str) -> Self {
        Self {
            action: Action::Omit,
            ..Self::hash(key)
        }
    }

    /// Restricts the rule to one more event source.
    #[must_use]
    pub fn for_source(mut self, event_source: &str) -> Self {
        self.event_sources.push(event_source.to_owned());
        self
    }

    /// Keeps the value in clear when `sibling` is present with one of `values` (any value if
    /// `values` is empty).
    #[must_use]
    pub fn keep_if(mut self, sibling: &str, values: &[&str]) -> Self {
        self.keep_if_sibling
            .push((sibling.to_owned(), values.iter().map(|v| (*v).to_owned()).collect()));
        self
    }

    fn applies(&self, key: &str, source: &str, siblings: &Map<String, Value>) -> bool {
        if !self.key.eq_ignore_ascii_case(key) {
            return false;
        }
        if !self.event_sources.is_empty() && !self.event_sources.iter().any(|s| s == source) {
            return false;
        }
        !self.keep_if_sibling.iter().any(|(sibling, values)| {
            siblings.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case(sibling)
                    && (values.is_empty() || v.as_str().is_some_and(|v| values.iter().any(|x| x == v)))
            })
        })
    }
}

/// An ordered list of rules; the first rule that applies to a key decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactionRules {
    rules: Vec<RedactionRule>,
}

impl Default for RedactionRules {
    fn default() -> Self {
        let mut rules: Vec<RedactionRule> = [
            "SecretString",
            "SecretBinary",
            "Plaintext",
            "Password",
            "NewPassword",
            "OldPassword",
            "RandomPassword",
            "SecretAccessKey",
            "SessionToken",
            "secret_key",
            "security_token",
            "Token",
            "ClientToken",
            "client_token",
            "accessor",
            "client_token_accessor",
            "secret_id",
            "wrapping_token",
            "PrivateKey",
            "private_key",
            "KeyMaterial",
        ]
        .iter()
        .map(|k| RedactionRule::hash(k))
        .collect();
        rules.push(
            RedactionRule::hash("Value")
                .for_source("ssm.amazonaws.com")
                .keep_if("Type", &["String", "StringList"])
                .keep_if("Key", &[]),
        );
        rules.push(RedactionRule::hash("data").for_source(VAULT_EVENT_SOURCE));
        for k in ["Authorization", "X-Amz-Security-Token", "X-Vault-Token"] {
            rules.push(RedactionRule::omit(k));
        }
        Self { rules }
    }
}

impl RedactionRules {
    /// No rules at all (for building a list from scratch).
    pub fn empty() -> Self {
        Self { rules: Vec::new() }
    }

    /// Adds a rule after the existing ones.
    pub fn push(&mut self, rule: RedactionRule) {
        self.rules.push(rule);
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[RedactionRule] {
        &self.rules
    }

    fn action(&self, key: &str, source: &str, siblings: &Map<String, Value>) -> Option<Action> {
        self.rules
            .iter()
            .find(|r| r.applies(key, source, siblings))
            .map(|r| r.action)
    }
}

/// Hashes sensitive values under one device's redaction key. Neither `Clone` nor `Display`; its
/// `Debug` shows the rules, never the key.
pub struct Redactor {
    key: SecretBytes,
    rules: RedactionRules,
}

impl Redactor {
    /// A redactor with `key` (see [`crate::DeviceKey::redaction_key`]) and `rules`.
    pub fn new(key: SecretBytes, rules: RedactionRules) -> Self {
        Self { key, rules }
    }

    /// `hmac-sha256:<hex>` of `input`: what `sys/audit-hash` returns, so an operator can find a
    /// known value in the log.
    pub fn hash_value(&self, input: &str) -> String {
        let mut buf = [0u8; HASHED_LEN];
        String::from_utf8_lossy(self.hash_into(input.as_bytes(), &mut buf)).into_owned()
    }

    /// A redacted copy of `value` as it would appear in a line for `event_source`.
    pub fn redact_value(&self, value: &Value, event_source: &str) -> Result<Value, AuditError> {
        serde_json::to_value(Clear {
            v: value,
            r: self,
            source: event_source,
        })
        .map_err(|_| AuditError::Serialize)
    }

    /// Serializes `event` as one JSON object (no newline) into `out`, hashing sensitive values.
    pub fn write_event(&self, event: &AuditEvent, out: &mut Vec<u8>) -> Result<(), AuditError> {
        let source = event.event_source.as_str();
        let view = EventView {
            event_version: &event.event_version,
            user_identity: &event.user_identity,
            event_time: &event.event_time,
            event_source: source,
            event_name: &event.event_name,
            aws_region: &event.aws_region,
            source_ip_address: &event.source_ip_address,
            user_agent: &event.user_agent,
            request_parameters: event.request_parameters.as_ref().map(|v| Clear { v, r: self, source }),
            response_elements: event.response_elements.as_ref().map(|v| Clear { v, r: self, source }),
            error_code: event.error_code.as_deref(),
            error_message: event.error_message.as_deref(),
            request_id: &event.request_id,
            event_id: &event.event_id,
            read_only: event.read_only,
            resources: &event.resources,
            event_type: &event.event_type,
            management_event: event.management_event,
            recipient_account_id: &event.recipient_account_id,
            event_category: &event.event_category,
        };
        serde_json::to_writer(out, &view).map_err(|_| AuditError::Serialize)
    }

    fn hash_into<'b>(&self, data: &[u8], buf: &'b mut [u8; HASHED_LEN]) -> &'b [u8] {
        let mac = hmac_sha256(self.key.expose(), data);
        buf[..HMAC_PREFIX.len()].copy_from_slice(HMAC_PREFIX.as_bytes());
        // 32 bytes always encode to exactly 64 hex digits, the remaining length of `buf`.
        let _ = hex::encode_to_slice(mac, &mut buf[HMAC_PREFIX.len()..]);
        &buf[..]
    }

    fn serialize_hashed<S: Serializer>(&self, data: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; HASHED_LEN];
        let bytes = self.hash_into(data, &mut buf);
        s.serialize_str(std::str::from_utf8(bytes).map_err(serde::ser::Error::custom)?)
    }
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("key", &"<redacted>")
            .field("rules", &self.rules.rules.len())
            .finish()
    }
}

const HASHED_LEN: usize = 12 + 64;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventView<'a> {
    event_version: &'a str,
    user_identity: &'a UserIdentity,
    #[serde(serialize_with = "cloudtrail_time::serialize")]
    event_time: &'a time::OffsetDateTime,
    event_source: &'a str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
    user_agent: &'a str,
    request_parameters: Option<Clear<'a>>,
    response_elements: Option<Clear<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    read_only: bool,
    resources: &'a [Resource],
    event_type: &'a str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'a str,
}

/// A value whose sensitive keys are hashed according to the rules.
struct Clear<'a> {
    v: &'a Value,
    r: &'a Redactor,
    source: &'a str,
}

impl Serialize for Clear<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.v {
            Value::Object(map) => {
                let mut m = s.serialize_map(None)?;
                for (k, v) in map {
                    match self.r.rules.action(k, self.source, map) {
                        None => m.serialize_entry(k, &Clear { v, ..*self })?,
                        Some(Action::Hash) => m.serialize_entry(k, &Hashed { v, r: self.r })?,
                        Some(Action::Omit) => {}
                    }
                }
                m.end()
            }
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&Clear { v, ..*self })?;
                }
                seq.end()
            }
            other => other.serialize(s),
        }
    }
}

impl Clone for Clear<'_> {
    fn clone(&self) -> Self {
        *self
    }
}
impl Copy for Clear<'_> {}

/// A value all of whose leaves are hashed.
struct Hashed<'a> {
    v: &'a Value,
    r: &'a Redactor,
}

impl Serialize for Hashed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.v {
            Value::Null => s.serialize_unit(),
            Value::String(text) => self.r.serialize_hashed(text.as_bytes(), s),
            Value::Bool(b) => self.r.serialize_hashed(if *b { b"true" } else { b"false" }, s),
            Value::Number(n) => self.r.serialize_hashed(n.to_string().as_bytes(), s),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&Hashed { v, r: self.r })?;
                }
                seq.end()
            }
            Value::Object(map) => {
                let mut m = s.serialize_map(Some(map.len()))?;
                for (k, v) in map {
                    m.serialize_entry(k, &Hashed { v, r: self.r })?;
                }
                m.end()
            }
        }
    }
}
