//! CloudTrail `LookupEvents` over the audit log, so `aws cloudtrail lookup-events
//! --endpoint-url ...` works against Coffer.
//!
//! The request and response are CloudTrail's (JSON 1.1, PascalCase names; timestamps are epoch
//! seconds, and strings in RFC 3339 are accepted too). Semantics, as CloudTrail's:
//! - at most one `LookupAttributes` entry, keyed by `EventId`, `EventName`, `ReadOnly`
//!   (`true`/`false`), `Username`, `ResourceType`, `ResourceName`, `EventSource` or
//!   `AccessKeyId`; anything else is `InvalidLookupAttributesException`;
//! - `StartTime`/`EndTime` are inclusive; a start after the end is `InvalidTimeRangeException`;
//! - `MaxResults` is 1 to 50, default 50, else `InvalidMaxResultsException`;
//! - events come newest first; `NextToken` continues after the last event returned and is only
//!   valid with the same attributes and time range (else `InvalidNextTokenException`);
//! - `EventCategory` may only be `insight`, and there are no Insights events: the answer is empty.
//!
//! `ResourceName` matches a resource's ARN, or its last `:`/`/` segment. `Username` is
//! [`AuditEvent::username`]. `CloudTrailEvent` is the logged line without its `"coffer"` chain
//! member, so sensitive values appear as `hmac-sha256:` strings, as in the file.
//!
//! [`EventIndex`] holds the events in memory, sorted by time; build it from one device's files.

use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use coffer_crypto::hash::sha256;

use crate::AuditError;
use crate::event::AuditEvent;
use crate::search::{LoggedEvent, read_events};

/// The largest and default `MaxResults`.
pub const MAX_RESULTS: i64 = 50;

/// `LookupEvents` input.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsRequest {
    /// At most one attribute to match.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lookup_attributes: Vec<LookupAttribute>,
    /// Events at or after this time.
    #[serde(default, with = "epoch_opt", skip_serializing_if = "Option::is_none")]
    pub start_time: Option<OffsetDateTime>,
    /// Events at or before this time.
    #[serde(default, with = "epoch_opt", skip_serializing_if = "Option::is_none")]
    pub end_time: Option<OffsetDateTime>,
    /// Only `insight` is valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_category: Option<String>,
    /// 1 to 50; default 50.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_results: Option<i64>,
    /// From a previous response.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One `LookupAttributes` entry. The key stays a string so an unknown key is CloudTrail's
/// error rather than a parse failure.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupAttribute {
    /// `EventId`, `EventName`, `ReadOnly`, `Username`, `ResourceType`, `ResourceName`,
    /// `EventSource` or `AccessKeyId`.
    pub attribute_key: String,
    /// The value to match exactly.
    pub attribute_value: String,
}

/// `LookupEvents` output.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LookupEventsResponse {
    /// Newest first.
    pub events: Vec<Event>,
    /// Present when more events match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// One event in a `LookupEvents` response.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Event {
    /// `eventID`.
    pub event_id: String,
    /// `eventName`.
    pub event_name: String,
    /// `"true"` or `"false"` (a string, as CloudTrail sends it).
    pub read_only: String,
    /// The caller's access key id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// `eventTime`, in epoch seconds on the wire.
    #[serde(with = "epoch")]
    pub event_time: OffsetDateTime,
    /// `eventSource`.
    pub event_source: String,
    /// The caller's user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The resources.
    #[serde(default)]
    pub resources: Vec<EventResource>,
    /// The full event as a JSON string.
    pub cloud_trail_event: String,
}

/// `{ResourceType, ResourceName}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventResource {
    /// The resource's type.
    pub resource_type: String,
    /// The resource's ARN.
    pub resource_name: String,
}

/// A `LookupEvents` error: [`LookupError::code`] is CloudTrail's `__type`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LookupError {
    /// Which error.
    pub kind: LookupErrorKind,
    /// The message for the client.
    pub message: String,
}

/// CloudTrail's `LookupEvents` errors (all HTTP 400).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupErrorKind {
    /// More than one attribute, an unknown key, or a bad value.
    InvalidLookupAttributes,
    /// `StartTime` after `EndTime`.
    InvalidTimeRange,
    /// `MaxResults` outside 1..=50.
    InvalidMaxResults,
    /// A token that is not ours or belongs to other parameters.
    InvalidNextToken,
    /// An `EventCategory` other than `insight`.
    InvalidEventCategory,
}

impl LookupError {
    fn new(kind: LookupErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    /// The wire error code (`__type`).
    pub fn code(&self) -> &'static str {
        match self.kind {
            LookupErrorKind::InvalidLookupAttributes => "InvalidLookupAttributesException",
            LookupErrorKind::InvalidTimeRange => "InvalidTimeRangeException",
            LookupErrorKind::InvalidMaxResults => "InvalidMaxResultsException",
            LookupErrorKind::InvalidNextToken => "InvalidNextTokenException",
            LookupErrorKind::InvalidEventCategory => "InvalidEventCategoryException",
        }
    }
}

/// Events held in memory, oldest first, for `LookupEvents`.
#[derive(Debug, Default)]
pub struct EventIndex {
    events: Vec<LoggedEvent>,
}

impl EventIndex {
    /// Reads one device's files (lines that cannot be read are skipped; `verify` reports them).
    pub fn from_files(paths: &[PathBuf]) -> Result<Self, AuditError> {
        let mut index = Self::default();
        for e in read_events(paths)?.flatten() {
            index.push(e);
        }
        Ok(index)
    }

    /// Adds one event.
    pub fn push(&mut self, event: LoggedEvent) {
        let key = sort_key(&event);
        let at = self.events.partition_point(|e| sort_key(e) <= key);
        self.events.insert(at, event);
    }

    /// How many events there are.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }
}

/// Answers `LookupEvents` from `index`.
pub fn lookup_events(index: &EventIndex, req: &LookupEventsRequest) -> Result<LookupEventsResponse, LookupError> {
    use LookupErrorKind::*;
    if req.lookup_attributes.len() > 1 {
        return Err(LookupError::new(
            InvalidLookupAttributes,
            "You can only specify one lookup attribute.",
        ));
    }
    let attribute = match req.lookup_attributes.first() {
        Some(a) => Some(Attribute::parse(a)?),
        None => None,
    };
    if let (Some(start), Some(end)) = (req.start_time, req.end_time)
        && start > end
    {
        return Err(LookupError::new(
            InvalidTimeRange,
            "Start time must be before end time.",
        ));
    }
    let max = req.max_results.unwrap_or(MAX_RESULTS);
    if !(1..=MAX_RESULTS).contains(&max) {
        return Err(LookupError::new(
            InvalidMaxResults,
            "MaxResults must be between 1 and 50.",
        ));
    }
    match req.event_category.as_deref() {
        None => {}
        Some("insight") => return Ok(LookupEventsResponse::default()),
        Some(other) => {
            return Err(LookupError::new(
                InvalidEventCategory,
                format!("Invalid EventCategory: {other}"),
            ));
        }
    }
    let fingerprint = fingerprint(req);
    let after = match &req.next_token {
        Some(token) => Some(
            decode_token(token, &fingerprint)
                .ok_or_else(|| LookupError::new(InvalidNextToken, "Invalid NextToken."))?,
        ),
        None => None,
    };
    let max = max as usize;
    let mut events = Vec::new();
    let mut next_token = None;
    let candidates = index
        .events
        .iter()
        .rev()
        .filter(|e| after.is_none_or(|a| sort_key(e) < a))
        .filter(|e| req.start_time.is_none_or(|t| e.event.event_time >= t))
        .filter(|e| req.end_time.is_none_or(|t| e.event.event_time <= t))
        .filter(|e| attribute.as_ref().is_none_or(|a| a.matches(&e.event)));
    for e in candidates {
        if events.len() == max {
            // There is at least one more: continue after the last one returned.
            next_token = events.last().map(|(key, _)| encode_token(*key, &fingerprint));
            break;
        }
        events.push((sort_key(e), to_wire(e)));
    }
    Ok(LookupEventsResponse {
        events: events.into_iter().map(|(_, w)| w).collect(),
        next_token,
    })
}

enum Attribute<'a> {
    EventId(&'a str),
    EventName(&'a str),
    ReadOnly(bool),
    Username(&'a str),
    ResourceType(&'a str),
    ResourceName(&'a str),
    EventSource(&'a str),
    AccessKeyId(&'a str),
}

impl<'a> Attribute<'a> {
    fn parse(a: &'a LookupAttribute) -> Result<Self, LookupError> {
        let bad = |m: String| LookupError::new(LookupErrorKind::InvalidLookupAttributes, m);
        let v = a.attribute_value.as_str();
        if v.is_empty() {
            return Err(bad("AttributeValue must not be empty.".to_owned()));
        }
        Ok(match a.attribute_key.as_str() {
            "EventId" => Self::EventId(v),
            "EventName" => Self::EventName(v),
            "ReadOnly" => match v {
                "true" => Self::ReadOnly(true),
                "false" => Self::ReadOnly(false),
                _ => return Err(bad("ReadOnly must be true or false.".to_owned())),
            },
            "Username" => Self::Username(v),
            "ResourceType" => Self::ResourceType(v),
            "ResourceName" => Self::ResourceName(v),
            "EventSource" => Self::EventSource(v),
            "AccessKeyId" => Self::AccessKeyId(v),
            other => return Err(bad(format!("Invalid AttributeKey: {other}"))),
        })
    }

    fn matches(&self, e: &AuditEvent) -> bool {
        match *self {
            Self::EventId(v) => e.event_id == v,
            Self::EventName(v) => e.event_name == v,
            Self::ReadOnly(v) => e.read_only == v,
            Self::Username(v) => e.username() == Some(v),
            Self::ResourceType(v) => e.resources.iter().any(|r| r.resource_type == v),
            Self::ResourceName(v) => e
                .resources
                .iter()
                .any(|r| r.arn == v || r.arn.rsplit([':', '/']).next() == Some(v)),
            Self::EventSource(v) => e.event_source == v,
            Self::AccessKeyId(v) => e.user_identity.access_key_id.as_deref() == Some(v),
        }
    }
}

fn to_wire(e: &LoggedEvent) -> Event {
    let ev = &e.event;
    Event {
        event_id: ev.event_id.clone(),
        event_name: ev.event_name.clone(),
        read_only: ev.read_only.to_string(),
        access_key_id: ev.user_identity.access_key_id.clone(),
        event_time: ev.event_time,
        event_source: ev.event_source.clone(),
        username: ev.username().map(str::to_owned),
        resources: ev
            .resources
            .iter()
            .map(|r| EventResource {
                resource_type: r.resource_type.clone(),
                resource_name: r.arn.clone(),
            })
            .collect(),
        cloud_trail_event: e.json.clone(),
    }
}

/// Newest-first order is the reverse of (time, seq).
fn sort_key(e: &LoggedEvent) -> (i64, u64) {
    (e.event.event_time.unix_timestamp(), e.seq)
}

/// Binds a token to the parameters it was issued for (everything but MaxResults and the token).
fn fingerprint(req: &LookupEventsRequest) -> [u8; 8] {
    let params = LookupEventsRequest {
        max_results: None,
        next_token: None,
        ..req.clone()
    };
    let bytes = serde_json::to_vec(&params).unwrap_or_default();
    let mut out = [0u8; 8];
    out.copy_from_slice(&sha256(&bytes)[..8]);
    out
}

fn encode_token((time, seq): (i64, u64), fingerprint: &[u8; 8]) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{time}:{seq}:{}", hex::encode(fingerprint)))
}

fn decode_token(token: &str, fingerprint: &[u8; 8]) -> Option<(i64, u64)> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(token).ok()?).ok()?;
    let mut parts = raw.split(':');
    let (v, time, seq, fp) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if v != "v1" || parts.next().is_some() || fp != hex::encode(fingerprint) {
        return None;
    }
    Some((time.parse().ok()?, seq.parse().ok()?))
}

/// A timestamp as epoch seconds (a JSON number); on input also an RFC 3339 string.
mod epoch {
    use super::*;

    pub(super) fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(t.unix_timestamp())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        parse(&Value::deserialize(d)?).ok_or_else(|| serde::de::Error::custom("invalid timestamp"))
    }

    pub(super) fn parse(v: &Value) -> Option<OffsetDateTime> {
        match v {
            Value::Number(n) => {
                let secs = n.as_f64()?;
                if !secs.is_finite() {
                    return None;
                }
                OffsetDateTime::from_unix_timestamp_nanos((secs * 1e9) as i128).ok()
            }
            Value::String(s) => OffsetDateTime::parse(s, &Rfc3339)
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(|f| parse(&serde_json::json!(f)))),
            _ => None,
        }
    }
}

/// [`epoch`] for optional fields.
mod epoch_opt {
    use super::*;

    pub(super) fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_i64(t.unix_timestamp()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<OffsetDateTime>, D::Error> {
        match Option::<Value>::deserialize(d)? {
            None | Some(Value::Null) => Ok(None),
            Some(v) => epoch::parse(&v)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom("invalid timestamp")),
        }
    }
}
