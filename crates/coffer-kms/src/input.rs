//! Decoding of the awsJson 1.1 request body into typed values, and KMS's constraint checks.
//!
//! Decoding is done by hand so that every message is under our control: a wrong JSON type is
//! a `SerializationException` naming only the JSON kind, a constraint violation is a
//! `ValidationException` in AWS's "1 validation error detected: ..." form. Messages never
//! contain a blob (plaintext, key material, signature) — only numbers, enums and key ids.

use std::collections::BTreeMap;

use base64::Engine as _;
use coffer_crypto::SecretBytes;
use coffer_engines::AwsError;
use serde_json::{Map, Value};

/// A decoded JSON object: the request body or a nested structure.
#[derive(Default)]
pub(crate) struct Input {
    map: Map<String, Value>,
}

/// Shows member names only: the body may hold plaintexts.
impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NULL_VALUE",
        Value::Bool(true) => "TRUE_VALUE",
        Value::Bool(false) => "FALSE_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::String(_) => "STRING_VALUE",
        Value::Array(_) => "START_ARRAY",
        Value::Object(_) => "START_OBJECT",
    }
}

fn type_error(found: &Value, expected: &str) -> AwsError {
    match found {
        Value::Object(_) => AwsError::serialization("Start of structure or map found where not expected."),
        Value::Array(_) => AwsError::serialization("Start of list found where not expected."),
        other => AwsError::serialization(format!("{} can not be converted to {expected}", kind_name(other))),
    }
}

/// The member name as AWS writes it in validation messages (`KeyId` -> `keyId`).
pub(crate) fn member_path(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `ValidationException` "1 validation error detected: <detail>".
pub(crate) fn validation(detail: impl AsRef<str>) -> AwsError {
    AwsError::validation(format!("1 validation error detected: {}", detail.as_ref()))
}

/// Returns the value of a required member or AWS's "must not be null" error.
pub(crate) fn required<T>(v: Option<T>, member: &str) -> Result<T, AwsError> {
    v.ok_or_else(|| {
        validation(format!(
            "Value null at '{}' failed to satisfy constraint: Member must not be null",
            member_path(member)
        ))
    })
}

/// Checks a length without echoing the value.
pub(crate) fn check_len(len: usize, min: usize, max: usize, member: &str) -> Result<(), AwsError> {
    let path = member_path(member);
    if len < min {
        return Err(validation(format!(
            "Value at '{path}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
        )));
    }
    if len > max {
        return Err(validation(format!(
            "Value at '{path}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        )));
    }
    Ok(())
}

/// Checks a numeric range; numbers are echoed as AWS does.
pub(crate) fn check_range(v: i64, min: i64, max: i64, member: &str) -> Result<(), AwsError> {
    let path = member_path(member);
    if v < min {
        return Err(validation(format!(
            "Value '{v}' at '{path}' failed to satisfy constraint: Member must have value greater than or equal to {min}"
        )));
    }
    if v > max {
        return Err(validation(format!(
            "Value '{v}' at '{path}' failed to satisfy constraint: Member must have value less than or equal to {max}"
        )));
    }
    Ok(())
}

/// Checks that an enum member has one of the allowed values.
pub(crate) fn check_enum(v: &str, allowed: &[&str], member: &str) -> Result<(), AwsError> {
    if allowed.contains(&v) {
        return Ok(());
    }
    Err(validation(format!(
        "Value '{v}' at '{}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        member_path(member),
        allowed.join(", ")
    )))
}

impl Input {
    /// The request body: a JSON object (`null` counts as `{}`).
    pub(crate) fn parse(v: Value) -> Result<Self, AwsError> {
        match v {
            Value::Null => Ok(Self::default()),
            Value::Object(map) => Ok(Self { map }),
            other => Err(type_error(&other, "a structure")),
        }
    }

    fn get(&self, key: &str) -> Option<&Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(type_error(other, "a String")),
        }
    }

    /// A required string member.
    pub(crate) fn req_string(&self, key: &str) -> Result<String, AwsError> {
        required(self.string(key)?, key)
    }

    /// A string member that must have 1..=max characters when present.
    pub(crate) fn bounded_string(&self, key: &str, max: usize) -> Result<Option<String>, AwsError> {
        let v = self.string(key)?;
        if let Some(s) = &v {
            check_len(s.chars().count(), 1, max, key)?;
        }
        Ok(v)
    }

    /// A required key id (1..=2048 characters).
    pub(crate) fn key_id(&self, key: &str) -> Result<String, AwsError> {
        let v = self.req_string(key)?;
        check_len(v.chars().count(), 1, 2048, key)?;
        Ok(v)
    }

    /// A blob member: base64 on the wire, moved straight into a zeroizing buffer.
    pub(crate) fn blob(&self, key: &str) -> Result<Option<SecretBytes>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map(|b| Some(SecretBytes::new(b)))
                .map_err(|_| AwsError::serialization(format!("Invalid base64 value for member {key}."))),
            Some(other) => Err(type_error(other, "a Blob")),
        }
    }

    /// A required blob with a length range.
    pub(crate) fn req_blob(&self, key: &str, min: usize, max: usize) -> Result<SecretBytes, AwsError> {
        let b = required(self.blob(key)?, key)?;
        check_len(b.len(), min, max, key)?;
        Ok(b)
    }

    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(type_error(other, "a Boolean")),
        }
    }

    pub(crate) fn int(&self, key: &str) -> Result<Option<i64>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(AwsError::serialization(format!(
                    "NUMBER_VALUE for {key} can not be converted to an Integer"
                ))),
            },
            Some(other) => Err(type_error(other, "an Integer")),
        }
    }

    pub(crate) fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(type_error(other, "a String")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(type_error(other, "a List")),
        }
    }

    pub(crate) fn object(&self, key: &str) -> Result<Option<Input>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Input { map: m.clone() })),
            Some(other) => Err(type_error(other, "a structure")),
        }
    }

    pub(crate) fn object_list(&self, key: &str) -> Result<Option<Vec<Input>>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::Object(m) => Ok(Input { map: m.clone() }),
                    other => Err(type_error(other, "a structure")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(other) => Err(type_error(other, "a List")),
        }
    }

    /// A map of strings (an encryption context).
    pub(crate) fn string_map(&self, key: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(type_error(other, "a String")),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Some),
            Some(other) => Err(type_error(other, "a Map")),
        }
    }

    /// The encryption context member (absent = empty).
    pub(crate) fn context(&self, key: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Ok(self.string_map(key)?.unwrap_or_default())
    }

    /// `Limit` (1..=max) and `Marker` of a list operation.
    pub(crate) fn paging(&self, max: i64) -> Result<(usize, Option<String>), AwsError> {
        let limit = match self.int("Limit")? {
            Some(l) => {
                check_range(l, 1, max, "Limit")?;
                l
            }
            None => max.min(100),
        };
        let marker = self.bounded_string("Marker", 1024)?;
        Ok((usize::try_from(limit).unwrap_or(100), marker))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use coffer_engines::AwsErrorCode;
    use serde_json::json;

    #[test]
    fn messages_follow_aws_and_hide_values() {
        let i = Input::parse(json!({"Plaintext": "", "NumberOfBytes": 0, "Ctx": {"a": 1}})).unwrap();
        let e = i.req_blob("Plaintext", 1, 4096).err().unwrap();
        assert_eq!(
            e.message,
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length greater than or equal to 1"
        );
        let e = check_range(i.int("NumberOfBytes").unwrap().unwrap(), 1, 1024, "NumberOfBytes")
            .err()
            .unwrap();
        assert_eq!(
            e.message,
            "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
        assert_eq!(
            i.context("Ctx").err().unwrap().code,
            AwsErrorCode::SerializationException
        );
        let i = Input::parse(json!({"Plaintext": "aHVudGVyMg=="})).unwrap();
        assert!(!format!("{i:?}").contains("aHVudGVyMg"));
        assert!(Input::parse(json!([1])).is_err());
    }
}
