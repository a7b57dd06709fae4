//! The audit event: one request, allowed or denied, in CloudTrail's record shape.
//!
//! Field names are CloudTrail's (`eventVersion`, `userIdentity`, `eventTime`, `eventSource`,
//! `eventName`, `awsRegion`, `sourceIPAddress`, `userAgent`, `requestParameters`,
//! `responseElements`, `errorCode`, `errorMessage`, `requestID`, `eventID`, `readOnly`,
//! `resources`, `eventType`, `managementEvent`, `recipientAccountId`, `eventCategory`), so tools
//! that read CloudTrail JSON read Coffer's audit lines.
//!
//! [`AuditEvent`] deliberately does **not** implement `Serialize`: the only way to turn one into
//! JSON is [`crate::Redactor`]'s serializer, which hashes the sensitive values on the way out.
//! It implements `Deserialize` so the offline tools can read lines back (their sensitive values
//! are already `hmac-sha256:` strings then). Its `Debug` omits `requestParameters` and
//! `responseElements`, which hold clear values before redaction.
//!
//! What is never put into an event at all: the `Authorization` header, the SigV4 signature, an
//! access key's secret part, `X-Amz-Security-Token`, `X-Vault-Token`. The builder has no field
//! for them; the redaction rules also drop these keys should one reach `requestParameters`.
//!
//! Vault requests use the same shape: `eventSource` [`VAULT_EVENT_SOURCE`], `eventName` the
//! operation (`read`, `update`, ...), `requestParameters` `{"path": ..., "data": ...}`, the
//! identity of type [`IdentityType::Token`], and `resources` `[{"ARN": "vault:<path>", "type":
//! "Vault::Path"}]`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// CloudTrail's current record format version, which these events follow.
pub const EVENT_VERSION: &str = "1.11";

/// `eventSource` of requests that arrive on the Vault API.
pub const VAULT_EVENT_SOURCE: &str = "vault.coffer";

/// `eventSource` of operator events: initialization, unseal attempts, seal, key rotation,
/// account creation, and the audit log's own discontinuities.
pub const OPERATOR_EVENT_SOURCE: &str = "operator.coffer";

/// `errorCode`s that mean "denied by policy" (see [`Outcome`]).
pub const DENIED_ERROR_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "PermissionDenied",
];

/// One audited request.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// The record format version ([`EVENT_VERSION`]).
    #[serde(default)]
    pub event_version: String,
    /// Who made the request.
    pub user_identity: UserIdentity,
    /// When the request completed (UTC; written with second precision like CloudTrail).
    #[serde(with = "cloudtrail_time")]
    pub event_time: OffsetDateTime,
    /// The service, e.g. `secretsmanager.amazonaws.com`, or [`VAULT_EVENT_SOURCE`].
    pub event_source: String,
    /// The action, e.g. `GetSecretValue` (or a Vault operation, e.g. `read`).
    pub event_name: String,
    /// The region from the SigV4 credential scope.
    #[serde(default)]
    pub aws_region: String,
    /// The client's address.
    #[serde(rename = "sourceIPAddress", default)]
    pub source_ip_address: String,
    /// The client's `User-Agent`.
    #[serde(default)]
    pub user_agent: String,
    /// The request's parameters (clear before redaction; hashed in every written line).
    #[serde(default)]
    pub request_parameters: Option<Value>,
    /// The response's elements (clear before redaction; hashed in every written line).
    #[serde(default)]
    pub response_elements: Option<Value>,
    /// The error code when the request failed (`AccessDenied` when a policy denied it).
    #[serde(default)]
    pub error_code: Option<String>,
    /// The error message when the request failed. Must not contain secret values (Coffer's
    /// errors never do).
    #[serde(default)]
    pub error_message: Option<String>,
    /// The request id returned to the client.
    #[serde(rename = "requestID", default)]
    pub request_id: String,
    /// This event's unique id.
    #[serde(rename = "eventID", default)]
    pub event_id: String,
    /// Whether the action only reads.
    #[serde(default)]
    pub read_only: bool,
    /// The resources the request named.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// `AwsApiCall` (or `CofferVaultRequest` for the Vault API).
    #[serde(default)]
    pub event_type: String,
    /// Always true: every request is a management event.
    #[serde(default)]
    pub management_event: bool,
    /// The account the request acted in.
    #[serde(default)]
    pub recipient_account_id: String,
    /// `Management`.
    #[serde(default)]
    pub event_category: String,
}

/// The principal that made the request (CloudTrail's `userIdentity`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserIdentity {
    /// The kind of principal.
    #[serde(rename = "type")]
    pub identity_type: IdentityType,
    /// A stable id of the principal (`AIDA...`, `AROA...:session`, a Vault entity id).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub principal_id: Option<String>,
    /// The principal's ARN.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub arn: Option<String>,
    /// The principal's account.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub account_id: Option<String>,
    /// The access key id that signed the request (the public half only).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub access_key_id: Option<String>,
    /// The user's name (IAM users; a Vault token's display name).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub user_name: Option<String>,
    /// For temporary credentials: the role and the session's attributes.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session_context: Option<SessionContext>,
}

/// CloudTrail's `userIdentity.type`, plus `Token` for Vault tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum IdentityType {
    /// The account's root user.
    Root,
    /// An IAM user.
    #[serde(rename = "IAMUser")]
    IamUser,
    /// A role session (STS `AssumeRole`).
    AssumedRole,
    /// A federated user (STS `GetFederationToken`).
    FederatedUser,
    /// A service acting on the account's behalf (rotation, deletion after the recovery window).
    #[serde(rename = "AWSService")]
    AwsService,
    /// A Vault token (Coffer's addition).
    Token,
    /// The caller could not be identified (bad signature, unknown access key).
    #[default]
    #[serde(other)]
    Unknown,
}

impl IdentityType {
    /// The name CloudTrail writes (the same as its serde form).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Root => "Root",
            Self::IamUser => "IAMUser",
            Self::AssumedRole => "AssumedRole",
            Self::FederatedUser => "FederatedUser",
            Self::AwsService => "AWSService",
            Self::Token => "Token",
            Self::Unknown => "Unknown",
        }
    }
}

/// `userIdentity.sessionContext`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionContext {
    /// The role (or user) that issued the temporary credentials.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub session_issuer: Option<SessionIssuer>,
    /// `creationDate` and `mfaAuthenticated`.
    #[serde(default)]
    pub attributes: SessionAttributes,
}

/// `userIdentity.sessionContext.sessionIssuer`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionIssuer {
    /// `Role` or `IAMUser`.
    #[serde(rename = "type")]
    pub issuer_type: String,
    /// The issuer's id.
    pub principal_id: String,
    /// The issuer's ARN.
    pub arn: String,
    /// The issuer's account.
    pub account_id: String,
    /// The role's or user's name.
    pub user_name: String,
}

/// `userIdentity.sessionContext.attributes` (CloudTrail writes both as strings).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionAttributes {
    /// When the session was created (ISO 8601).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub creation_date: Option<String>,
    /// `"true"` or `"false"`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mfa_authenticated: Option<String>,
}

/// One entry of `resources`: `{"ARN": ..., "accountId": ..., "type": ...}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    /// The resource's ARN (`vault:<path>` for Vault paths).
    #[serde(rename = "ARN")]
    pub arn: String,
    /// The resource's account.
    #[serde(rename = "accountId", skip_serializing_if = "Option::is_none", default)]
    pub account_id: Option<String>,
    /// The CloudFormation-style type, e.g. `AWS::SecretsManager::Secret`.
    #[serde(rename = "type")]
    pub resource_type: String,
}

/// How a request ended, derived from `errorCode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No error.
    Allowed,
    /// A policy denied it (`errorCode` in [`DENIED_ERROR_CODES`]).
    Denied,
    /// Allowed, but failed for another reason.
    Failed,
}

impl AuditEvent {
    /// A successful event with CloudTrail's fixed fields set. `event_source` is the service's
    /// host name (see [`event_source_for`]); `eventID` comes from [`next_event_id`].
    pub fn new(
        event_source: impl Into<String>,
        event_name: impl Into<String>,
        user_identity: UserIdentity,
        event_time: OffsetDateTime,
        request_id: impl Into<String>,
    ) -> Self {
        let request_id = request_id.into();
        let event_id = next_event_id();
        let recipient_account_id = user_identity.account_id.clone().unwrap_or_default();
        Self {
            event_version: EVENT_VERSION.to_owned(),
            user_identity,
            event_time,
            event_source: event_source.into(),
            event_name: event_name.into(),
            aws_region: String::new(),
            source_ip_address: String::new(),
            user_agent: String::new(),
            request_parameters: None,
            response_elements: None,
            error_code: None,
            error_message: None,
            request_id,
            event_id,
            read_only: false,
            resources: Vec::new(),
            event_type: "AwsApiCall".to_owned(),
            management_event: true,
            recipient_account_id,
            event_category: "Management".to_owned(),
        }
    }

    /// An AWS API call: `target` is the service prefix of the action (`secretsmanager`, `ssm`,
    /// `kms`, `iam`, `sts`, `cloudtrail`); `readOnly` is guessed from the action's verb
    /// (`Get`/`List`/`Describe`/`BatchGet`/`Lookup`), which matches CloudTrail for these services.
    pub fn aws(
        target: &str,
        action: &str,
        user_identity: UserIdentity,
        event_time: OffsetDateTime,
        request_id: impl Into<String>,
    ) -> Self {
        let read_only = ["Get", "List", "Describe", "BatchGet", "Lookup"]
            .iter()
            .any(|p| action.starts_with(p));
        Self::new(event_source_for(target), action, user_identity, event_time, request_id).read_only(read_only)
    }

    /// A Vault API request: `operation` is `read`, `list`, `create`, `update`, `patch` or
    /// `delete`; `path` is the full request path (`secret/data/app`), recorded as a resource
    /// `vault:<path>` of type `Vault::Path` and as `requestParameters.path`.
    pub fn vault(
        operation: &str,
        path: &str,
        user_identity: UserIdentity,
        event_time: OffsetDateTime,
        request_id: impl Into<String>,
    ) -> Self {
        let mut e = Self::new(VAULT_EVENT_SOURCE, operation, user_identity, event_time, request_id)
            .read_only(matches!(operation, "read" | "list"))
            .resource(format!("vault:{path}"), "Vault::Path", None);
        e.event_type = "CofferVaultRequest".to_owned();
        e.request_parameters = Some(serde_json::json!({ "path": path }));
        e
    }

    /// An operator event (`eventSource` [`OPERATOR_EVENT_SOURCE`], `eventType`
    /// `CofferOperatorEvent`): `Initialize`, `Unseal` (one per key share submitted, with the
    /// progress), `Seal`, `Rotate`, `CreateAccount`, `AuditLogDiscontinuity`. Its details go in
    /// `requestParameters` through [`AuditEvent::request`], redacted like any other.
    pub fn operator(name: &str, user_identity: UserIdentity, event_time: OffsetDateTime) -> Self {
        let request_id = next_event_id();
        let mut e = Self::new(OPERATOR_EVENT_SOURCE, name, user_identity, event_time, request_id);
        e.event_type = "CofferOperatorEvent".to_owned();
        e
    }

    /// Sets `awsRegion`.
    #[must_use]
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.aws_region = region.into();
        self
    }

    /// Sets `sourceIPAddress` and `userAgent`.
    #[must_use]
    pub fn client(mut self, source_ip: impl Into<String>, user_agent: impl Into<String>) -> Self {
        self.source_ip_address = source_ip.into();
        self.user_agent = user_agent.into();
        self
    }

    /// Sets `requestParameters` (clear values; they are hashed when the line is written). For a
    /// Vault event this merges into the existing `{"path": ...}` object.
    #[must_use]
    pub fn request(mut self, parameters: Value) -> Self {
        match (&mut self.request_parameters, parameters) {
            (Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
            (slot, parameters) => *slot = Some(parameters),
        }
        self
    }

    /// Sets `responseElements` (clear values; they are hashed when the line is written).
    #[must_use]
    pub fn response(mut self, elements: Value) -> Self {
        self.response_elements = Some(elements);
        self
    }

    /// Marks the request as failed.
    #[must_use]
    pub fn error(mut self, code: impl Into<String>, message: impl Into<String>) -> Self {
        self.error_code = Some(code.into());
        self.error_message = Some(message.into());
        self
    }

    /// Marks the request as denied by policy (`errorCode` `AccessDenied`, as CloudTrail writes).
    #[must_use]
    pub fn denied(self, message: impl Into<String>) -> Self {
        self.error("AccessDenied", message)
    }

    /// Sets `readOnly`.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// Adds a resource.
    #[must_use]
    pub fn resource(
        mut self,
        arn: impl Into<String>,
        resource_type: impl Into<String>,
        account_id: Option<String>,
    ) -> Self {
        self.resources.push(Resource {
            arn: arn.into(),
            account_id,
            resource_type: resource_type.into(),
        });
        self
    }

    /// Sets `recipientAccountId` (by default the caller's account).
    #[must_use]
    pub fn recipient_account(mut self, account_id: impl Into<String>) -> Self {
        self.recipient_account_id = account_id.into();
        self
    }

    /// Allowed, denied, or failed for another reason.
    pub fn outcome(&self) -> Outcome {
        match &self.error_code {
            None => Outcome::Allowed,
            Some(code) if DENIED_ERROR_CODES.contains(&code.as_str()) => Outcome::Denied,
            Some(_) => Outcome::Failed,
        }
    }

    /// The user name CloudTrail's `LookupEvents` reports and filters by: `userName`, else
    /// `root` for the root user, else the last segment of the ARN (a role session's name).
    pub fn username(&self) -> Option<&str> {
        let id = &self.user_identity;
        if let Some(name) = &id.user_name {
            return Some(name);
        }
        if id.identity_type == IdentityType::Root {
            return Some("root");
        }
        let arn = id.arn.as_deref()?;
        arn.rsplit(['/', ':']).next().filter(|s| !s.is_empty())
    }
}

impl std::fmt::Debug for AuditEvent {
    /// Omits `requestParameters` and `responseElements`, which hold clear values.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditEvent")
            .field("event_time", &self.event_time)
            .field("event_source", &self.event_source)
            .field("event_name", &self.event_name)
            .field("user_identity", &self.user_identity)
            .field("error_code", &self.error_code)
            .field("request_id", &self.request_id)
            .field("event_id", &self.event_id)
            .field("resources", &self.resources)
            .finish_non_exhaustive()
    }
}

/// A fresh `eventID`: unique, shaped like a version-4 UUID (`xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`),
/// and cheap: no system RNG call per event.
///
/// The 128 bits are a 64-bit prefix drawn once per process from the system RNG, then a 64-bit
/// counter that starts at 0, with the UUID version (4 bits of the prefix) and variant (the
/// counter's top 2 bits) set. Ids are therefore unique within a process (2^62 events before
/// the counter wraps) and across processes as long as their 60 random prefix bits differ
/// (a collision needs about a billion restarts to become likely), and they sort by creation
/// order within a process. Unlike a real v4 UUID they are predictable: an `eventID` is an
/// identifier, never a secret or a nonce. Should the RNG fail at start-up, the prefix comes from
/// the clock and the process id instead.
pub fn next_event_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = *PREFIX.get_or_init(|| {
        let mut b = [0u8; 8];
        match coffer_crypto::random::fill(&mut b) {
            Ok(()) => u64::from_be_bytes(b),
            Err(_) => {
                let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos() as u64;
                nanos.rotate_left(17) ^ u64::from(std::process::id())
            }
        }
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&prefix.to_be_bytes());
    b[8..].copy_from_slice(&n.to_be_bytes());
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// CloudTrail's `eventSource` for a service prefix: `secretsmanager` →
/// `secretsmanager.amazonaws.com`.
pub fn event_source_for(target: &str) -> String {
    format!("{target}.amazonaws.com")
}

/// `eventTime` as CloudTrail writes it: `2024-05-01T12:34:56Z`.
pub(crate) mod cloudtrail_time {
    use serde::{Deserialize, Deserializer};
    use time::OffsetDateTime;
    use time::format_description::well_known::Rfc3339;

    /// Formats without allocating: `YYYY-MM-DDThh:mm:ssZ` (years 0..=9999).
    pub(crate) fn format(t: &OffsetDateTime, out: &mut [u8; 20]) {
        let t = t.to_offset(time::UtcOffset::UTC);
        let year = t.year().clamp(0, 9999) as u32;
        let fields: [(usize, u32, usize); 6] = [
            (0, year, 4),
            (5, u32::from(u8::from(t.month())), 2),
            (8, u32::from(t.day()), 2),
            (11, u32::from(t.hour()), 2),
            (14, u32::from(t.minute()), 2),
            (17, u32::from(t.second()), 2),
        ];
        *out = *b"0000-00-00T00:00:00Z";
        for (at, mut v, width) in fields {
            for i in (0..width).rev() {
                out[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        OffsetDateTime::parse(&s, &Rfc3339).map_err(serde::de::Error::custom)
    }
}
