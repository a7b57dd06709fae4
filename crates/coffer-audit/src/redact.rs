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

use serde_json::{Map, Value};

use coffer_crypto::SecretBytes;
use coffer_crypto::hash::HmacSha256Key;

use crate::AuditError;
use crate::event::{AuditEvent, UserIdentity, VAULT_EVENT_SOURCE, cloudtrail_time};
use crate::json::{push_bool, push_key, push_str};

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
    /// The rules' keys in ASCII lowercase, sorted, each with the positions of its rules in
    /// order: every object key of every event is looked up here (a binary search) instead of
    /// being compared with every rule.
    index: Vec<(Box<[u8]>, Vec<usize>)>,
    /// The longest rule key: a longer object key matches no rule.
    longest: usize,
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
        let mut out = Self::empty();
        for rule in rules {
            out.push(rule);
        }
        out
    }
}

impl RedactionRules {
    /// No rules at all (for building a list from scratch).
    pub fn empty() -> Self {
        Self {
            rules: Vec::new(),
            index: Vec::new(),
            longest: 0,
        }
    }

    /// Adds a rule after the existing ones.
    pub fn push(&mut self, rule: RedactionRule) {
        let key: Box<[u8]> = rule.key.to_ascii_lowercase().into_bytes().into();
        let at = self.rules.len();
        self.longest = self.longest.max(key.len());
        match self.index.binary_search_by(|(k, _)| k.as_ref().cmp(&key)) {
            Ok(i) => self.index[i].1.push(at),
            Err(i) => self.index.insert(i, (key, vec![at])),
        }
        self.rules.push(rule);
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[RedactionRule] {
        &self.rules
    }

    fn action(&self, key: &str, source: &str, siblings: &Map<String, Value>) -> Option<Action> {
        const STACK: usize = 64;
        let bytes = key.as_bytes();
        if bytes.len() > self.longest {
            return None;
        }
        let mut stack = [0u8; STACK];
        let mut heap = Vec::new();
        let lower: &mut [u8] = if bytes.len() <= STACK {
            &mut stack[..bytes.len()]
        } else {
            heap.resize(bytes.len(), 0);
            &mut heap
        };
        lower.copy_from_slice(bytes);
        lower.make_ascii_lowercase();
        let i = self.index.binary_search_by(|(k, _)| k.as_ref().cmp(&*lower)).ok()?;
        self.index[i]
            .1
            .iter()
            .filter_map(|&at| self.rules.get(at))
            .find(|r| r.applies(key, source, siblings))
            .map(|r| r.action)
    }
}

/// Hashes sensitive values under one device's redaction key. Neither `Clone` nor `Display`; its
/// `Debug` shows the rules, never the key. The HMAC key is set up once, here, not per value.
pub struct Redactor {
    key: HmacSha256Key,
    rules: RedactionRules,
}

impl Redactor {
    /// A redactor with `key` (see [`crate::DeviceKey::redaction_key`]) and `rules`.
    pub fn new(key: SecretBytes, rules: RedactionRules) -> Self {
        Self {
            key: HmacSha256Key::new(key.expose()),
            rules,
        }
    }

    /// `hmac-sha256:<hex>` of `input`: what `sys/audit-hash` returns, so an operator can find a
    /// known value in the log.
    pub fn hash_value(&self, input: &str) -> String {
        let mut buf = [0u8; HASHED_LEN];
        String::from_utf8_lossy(self.hash_into(input.as_bytes(), &mut buf)).into_owned()
    }

    /// A redacted copy of `value` as it would appear in a line for `event_source`.
    pub fn redact_value(&self, value: &Value, event_source: &str) -> Result<Value, AuditError> {
        let mut out = Vec::new();
        self.write_clear(value, event_source, &mut out)?;
        serde_json::from_slice(&out).map_err(|_| AuditError::Serialize)
    }

    /// Serializes `event` as one JSON object (no newline) into `out`, hashing sensitive values.
    /// The JSON is written straight into `out` (see [`crate::json`]); the members are
    /// CloudTrail's, in a fixed order, `errorCode`/`errorMessage` only when set and the
    /// `userIdentity` members only when set.
    pub fn write_event(&self, event: &AuditEvent, out: &mut Vec<u8>) -> Result<(), AuditError> {
        let source = event.event_source.as_str();
        let e = event;
        out.extend_from_slice(b"{\"eventVersion\":");
        push_str(out, &e.event_version);
        out.extend_from_slice(b",\"userIdentity\":");
        write_identity(&e.user_identity, out)?;
        let mut time = [0u8; 20];
        cloudtrail_time::format(&e.event_time, &mut time);
        out.extend_from_slice(b",\"eventTime\":\"");
        out.extend_from_slice(&time);
        out.push(b'"');
        for (member, value) in [
            (&b",\"eventSource\":"[..], source),
            (b",\"eventName\":", &e.event_name),
            (b",\"awsRegion\":", &e.aws_region),
            (b",\"sourceIPAddress\":", &e.source_ip_address),
            (b",\"userAgent\":", &e.user_agent),
        ] {
            out.extend_from_slice(member);
            push_str(out, value);
        }
        for (member, value) in [
            (&b",\"requestParameters\":"[..], &e.request_parameters),
            (b",\"responseElements\":", &e.response_elements),
        ] {
            out.extend_from_slice(member);
            match value {
                Some(v) => self.write_clear(v, source, out)?,
                None => out.extend_from_slice(b"null"),
            }
        }
        for (member, value) in [
            (&b",\"errorCode\":"[..], &e.error_code),
            (b",\"errorMessage\":", &e.error_message),
        ] {
            if let Some(value) = value {
                out.extend_from_slice(member);
                push_str(out, value);
            }
        }
        for (member, value) in [
            (&b",\"requestID\":"[..], &e.request_id),
            (b",\"eventID\":", &e.event_id),
        ] {
            out.extend_from_slice(member);
            push_str(out, value);
        }
        out.extend_from_slice(b",\"readOnly\":");
        push_bool(out, e.read_only);
        out.extend_from_slice(b",\"resources\":[");
        for (i, r) in e.resources.iter().enumerate() {
            out.extend_from_slice(if i == 0 { b"{\"ARN\":" } else { b",{\"ARN\":" });
            push_str(out, &r.arn);
            if let Some(account) = &r.account_id {
                out.extend_from_slice(b",\"accountId\":");
                push_str(out, account);
            }
            out.extend_from_slice(b",\"type\":");
            push_str(out, &r.resource_type);
            out.push(b'}');
        }
        out.extend_from_slice(b"],\"eventType\":");
        push_str(out, &e.event_type);
        out.extend_from_slice(b",\"managementEvent\":");
        push_bool(out, e.management_event);
        for (member, value) in [
            (&b",\"recipientAccountId\":"[..], &e.recipient_account_id),
            (b",\"eventCategory\":", &e.event_category),
        ] {
            out.extend_from_slice(member);
            push_str(out, value);
        }
        out.push(b'}');
        Ok(())
    }

    /// Writes `v`, hashing the values of the keys the rules match and leaving out the omitted.
    fn write_clear(&self, v: &Value, source: &str, out: &mut Vec<u8>) -> Result<(), AuditError> {
        match v {
            Value::Object(map) => {
                out.push(b'{');
                let mut first = true;
                for (k, v) in map {
                    match self.rules.action(k, source, map) {
                        None => {
                            push_key(out, &mut first, k);
                            self.write_clear(v, source, out)?;
                        }
                        Some(Action::Hash) => {
                            push_key(out, &mut first, k);
                            self.write_hashed(v, out)?;
                        }
                        Some(Action::Omit) => {}
                    }
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_clear(v, source, out)?;
                }
                out.push(b']');
            }
            Value::String(s) => push_str(out, s),
            other => serde_json::to_writer(&mut *out, other).map_err(|_| AuditError::Serialize)?,
        }
        Ok(())
    }

    /// Writes `v` with every leaf hashed (object keys kept, `null` kept).
    fn write_hashed(&self, v: &Value, out: &mut Vec<u8>) -> Result<(), AuditError> {
        match v {
            Value::Null => out.extend_from_slice(b"null"),
            Value::String(text) => self.push_hashed(text.as_bytes(), out),
            Value::Bool(b) => self.push_hashed(if *b { b"true" } else { b"false" }, out),
            Value::Number(n) => {
                // Its JSON text, as written on the wire.
                let text = serde_json::to_vec(n).map_err(|_| AuditError::Serialize)?;
                self.push_hashed(&text, out);
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    self.write_hashed(v, out)?;
                }
                out.push(b']');
            }
            Value::Object(map) => {
                out.push(b'{');
                let mut first = true;
                for (k, v) in map {
                    push_key(out, &mut first, k);
                    self.write_hashed(v, out)?;
                }
                out.push(b'}');
            }
        }
        Ok(())
    }

    /// Appends `"hmac-sha256:<hex>"` of `data`.
    fn push_hashed(&self, data: &[u8], out: &mut Vec<u8>) {
        let mut buf = [0u8; HASHED_LEN];
        out.push(b'"');
        out.extend_from_slice(self.hash_into(data, &mut buf));
        out.push(b'"');
    }

    fn hash_into<'b>(&self, data: &[u8], buf: &'b mut [u8; HASHED_LEN]) -> &'b [u8] {
        let mac = self.key.sign(data);
        buf[..HMAC_PREFIX.len()].copy_from_slice(HMAC_PREFIX.as_bytes());
        // 32 bytes always encode to exactly 64 hex digits, the remaining length of `buf`.
        let _ = hex::encode_to_slice(mac, &mut buf[HMAC_PREFIX.len()..]);
        &buf[..]
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

/// Writes `userIdentity`, leaving out the members that are not set.
fn write_identity(id: &UserIdentity, out: &mut Vec<u8>) -> Result<(), AuditError> {
    out.extend_from_slice(b"{\"type\":");
    push_str(out, id.identity_type.as_str());
    let mut first = false;
    let optional = [
        ("principalId", &id.principal_id),
        ("arn", &id.arn),
        ("accountId", &id.account_id),
        ("accessKeyId", &id.access_key_id),
        ("userName", &id.user_name),
    ];
    for (key, value) in optional {
        if let Some(value) = value {
            push_key(out, &mut first, key);
            push_str(out, value);
        }
    }
    if let Some(session) = &id.session_context {
        // Rare (role sessions only) and small: serde's derived form.
        push_key(out, &mut first, "sessionContext");
        serde_json::to_writer(&mut *out, session).map_err(|_| AuditError::Serialize)?;
    }
    out.push(b'}');
    Ok(())
}
