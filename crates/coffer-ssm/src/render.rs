//! Output shapes: `Parameter`, `ParameterMetadata`, `ParameterHistory`, tags.

use serde_json::{Map, Value, json};

use crate::model::{ParameterRecord, SECURE_STRING, Tag, VersionRecord};

fn policies(v: &VersionRecord) -> Value {
    Value::Array(
        v.policies
            .iter()
            .map(|p| json!({"PolicyText": p.text, "PolicyType": p.policy_type, "PolicyStatus": "Pending"}))
            .collect(),
    )
}

/// Members shared by `ParameterMetadata` and `ParameterHistory`.
fn metadata_common(out: &mut Map<String, Value>, v: &VersionRecord) {
    out.insert("Type".into(), json!(v.param_type));
    if v.param_type == SECURE_STRING
        && let Some(k) = &v.key_id
    {
        out.insert("KeyId".into(), json!(k));
    }
    out.insert("LastModifiedDate".into(), json!(v.last_modified));
    out.insert("LastModifiedUser".into(), json!(v.last_modified_user));
    if let Some(d) = &v.description {
        out.insert("Description".into(), json!(d));
    }
    if let Some(p) = &v.allowed_pattern {
        out.insert("AllowedPattern".into(), json!(p));
    }
    out.insert("Version".into(), json!(v.version));
    out.insert("Tier".into(), json!(v.tier));
    out.insert("Policies".into(), policies(v));
    out.insert("DataType".into(), json!(v.data_type));
}

/// A `Parameter` (GetParameter, GetParameters, GetParametersByPath).
pub(crate) fn parameter(name: &str, arn: &str, v: &VersionRecord, value: String, selector: Option<String>) -> Value {
    let mut out = Map::new();
    out.insert("Name".into(), json!(name));
    out.insert("Type".into(), json!(v.param_type));
    out.insert("Value".into(), Value::String(value));
    out.insert("Version".into(), json!(v.version));
    if let Some(s) = selector {
        out.insert("Selector".into(), json!(s));
    }
    out.insert("LastModifiedDate".into(), json!(v.last_modified));
    out.insert("ARN".into(), json!(arn));
    out.insert("DataType".into(), json!(v.data_type));
    Value::Object(out)
}

/// A `ParameterMetadata` (DescribeParameters) of the current version.
pub(crate) fn metadata(rec: &ParameterRecord, arn: &str, v: &VersionRecord) -> Value {
    let mut out = Map::new();
    out.insert("Name".into(), json!(rec.name));
    out.insert("ARN".into(), json!(arn));
    metadata_common(&mut out, v);
    Value::Object(out)
}

/// A `ParameterHistory` entry.
pub(crate) fn history(rec: &ParameterRecord, v: &VersionRecord, value: String) -> Value {
    let mut out = Map::new();
    out.insert("Name".into(), json!(rec.name));
    metadata_common(&mut out, v);
    out.insert("Value".into(), Value::String(value));
    out.insert("Labels".into(), json!(v.labels));
    Value::Object(out)
}

pub(crate) fn tags(tags: &[Tag]) -> Value {
    Value::Array(tags.iter().map(|t| json!({"Key": t.key, "Value": t.value})).collect())
}
