//! Decoding of an awsJson 1.1 request body into typed values, and the constraint checks AWS
//! applies before an operation runs, shared by every AWS engine (Secrets Manager, KMS,
//! Parameter Store).
//!
//! Decoding is done by hand instead of with `serde` derives so that every error message is
//! under our control: a wrong JSON type becomes `SerializationException` naming only the
//! JSON kind, and a constraint violation becomes `ValidationException` in AWS's
//! "1 validation error detected: ..." form. No message ever contains a member's value unless
//! the member is a number or an enum (never a secret).

use base64::Engine as _;
use coffer_crypto::{SecretBytes, SecretString};
use serde_json::{Map, Value};

use std::collections::BTreeMap;

use crate::AwsError;

/// A decoded JSON object: the request body or a nested structure.
#[derive(Default, Clone)]
pub struct Input {
    map: Map<String, Value>,
}

/// Shows member names only: the body may hold secret values.
impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.map.keys()).finish()
    }
}

/// The name AWS uses for a JSON kind in its "can not be converted" messages.
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

/// The `SerializationException` for a value of the wrong JSON kind.
pub fn type_error(found: &Value, expected: &str) -> AwsError {
    match found {
        Value::Object(_) => AwsError::serialization("Start of structure or map found where not expected."),
        Value::Array(_) => AwsError::serialization("Start of list found where not expected."),
        other => AwsError::serialization(format!("{} can not be converted to {expected}", kind_name(other))),
    }
}

/// The wire member name as AWS writes it in validation messages (`SecretId` -> `secretId`).
pub fn member_path(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `ValidationException` "1 validation error detected: <detail>".
pub fn validation(detail: impl AsRef<str>) -> AwsError {
    AwsError::validation(format!("1 validation error detected: {}", detail.as_ref()))
}

/// Several validation errors in one message, as AWS reports them; `None` when there are none.
pub fn validations(details: &[String]) -> Option<AwsError> {
    match details.len() {
        0 => None,
        1 => Some(validation(&details[0])),
        n => Some(AwsError::validation(format!(
            "{n} validation errors detected: {}",
            details.join("; ")
        ))),
    }
}

/// A required member that is absent.
pub fn missing(member: &str) -> AwsError {
    validation(format!(
        "Value null at '{}' failed to satisfy constraint: Member must not be null",
        member_path(member)
    ))
}

/// Returns the value of a required member or the AWS "must not be null" error.
pub fn required<T>(v: Option<T>, member: &str) -> Result<T, AwsError> {
    v.ok_or_else(|| missing(member))
}

/// Checks a length (in characters or bytes, as the caller measured it) without echoing the
/// value. `member` is the wire name or a path; either is written as AWS writes paths.
pub fn check_len(len: usize, min: usize, max: usize, member: &str) -> Result<(), AwsError> {
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

/// Checks the length of an optional string member (length in characters).
pub fn check_opt_len(v: Option<&str>, min: usize, max: usize, member: &str) -> Result<(), AwsError> {
    match v {
        Some(s) => check_len(s.chars().count(), min, max, member),
        None => Ok(()),
    }
}

/// Checks a numeric range; numbers are not secret, so the value is echoed as AWS does.
pub fn check_range(v: i64, min: i64, max: i64, member: &str) -> Result<(), AwsError> {
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
pub fn check_enum(v: &str, allowed: &[&str], member: &str) -> Result<(), AwsError> {
    let path = member_path(member);
    if allowed.contains(&v) {
        return Ok(());
    }
    Err(validation(format!(
        "Value '{v}' at '{path}' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
        allowed.join(", ")
    )))
}

impl Input {
    /// The request body: a JSON object (an absent body, `null`, counts as `{}`).
    pub fn parse(v: Value) -> Result<Self, AwsError> {
        match v {
            Value::Null => Ok(Self::default()),
            Value::Object(map) => Ok(Self { map }),
            other => Err(type_error(&other, "a structure")),
        }
    }

    /// The member's value; `null` counts as absent, as AWS treats it.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn string(&self, key: &str) -> Result<Option<String>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(type_error(other, "a String")),
        }
    }

    /// A secret string member, moved straight into a zeroizing box.
    pub fn secret_string(&self, key: &str) -> Result<Option<SecretString>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(SecretString::new(s.clone()))),
            Some(other) => Err(type_error(other, "a String")),
        }
    }

    /// A blob member: base64 on the wire.
    pub fn blob(&self, key: &str) -> Result<Option<SecretBytes>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => base64::engine::general_purpose::STANDARD
                .decode(s.as_bytes())
                .map(|b| Some(SecretBytes::new(b)))
                .map_err(|_| AwsError::serialization(format!("Invalid base64 value for member {key}."))),
            Some(other) => Err(type_error(other, "a Blob")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(type_error(other, "a Boolean")),
        }
    }

    /// A member of a `Long` shape (Secrets Manager and Parameter Store numbers).
    pub fn int(&self, key: &str) -> Result<Option<i64>, AwsError> {
        self.number(key, "a Long")
    }

    /// A member of an `Integer` shape (KMS numbers).
    pub fn integer(&self, key: &str) -> Result<Option<i64>, AwsError> {
        self.number(key, "an Integer")
    }

    fn number(&self, key: &str, shape: &str) -> Result<Option<i64>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(i) => Ok(Some(i)),
                None => Err(AwsError::serialization(format!(
                    "NUMBER_VALUE for {key} can not be converted to {shape}"
                ))),
            },
            Some(other) => Err(type_error(other, shape)),
        }
    }

    /// Whether the member is present (and not `null`).
    pub fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// A map of strings (`EncryptionContext`, tags as a map).
    pub fn string_map(&self, key: &str) -> Result<Option<BTreeMap<String, String>>, AwsError> {
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

    pub fn string_list(&self, key: &str) -> Result<Option<Vec<String>>, AwsError> {
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

    pub fn object(&self, key: &str) -> Result<Option<Input>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Input { map: m.clone() })),
            Some(other) => Err(type_error(other, "a structure")),
        }
    }

    pub fn object_list(&self, key: &str) -> Result<Option<Vec<Input>>, AwsError> {
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
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::AwsErrorCode;
    use serde_json::json;

    #[test]
    fn wrong_types_are_serialization_errors_without_values() {
        let i = Input::parse(json!({"SecretString": 12345, "Flag": "yes", "Obj": {"a": 1}})).unwrap();
        let e = i.secret_string("SecretString").err().unwrap();
        assert_eq!(e.code, AwsErrorCode::SerializationException);
        assert!(!e.message.contains("12345"));
        assert_eq!(i.bool("Flag").err().unwrap().code, AwsErrorCode::SerializationException);
        let e = i.string("Obj").err().unwrap();
        assert_eq!(e.message, "Start of structure or map found where not expected.");
        assert!(Input::parse(json!([1])).is_err());
        assert!(Input::parse(Value::Null).is_ok());
    }

    #[test]
    fn null_is_absent_and_messages_match_aws() {
        let i = Input::parse(json!({"SecretId": null})).unwrap();
        let e = required(i.string("SecretId").unwrap(), "SecretId").err().unwrap();
        assert_eq!(
            e.message,
            "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null"
        );
        let e = check_len(65537, 1, 65536, "secretString").err().unwrap();
        assert_eq!(
            e.message,
            "1 validation error detected: Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536"
        );
    }

    #[test]
    fn debug_output_has_no_values() {
        let i = Input::parse(json!({"SecretString": "hunter2"})).unwrap();
        let shown = format!("{i:?}");
        assert!(shown.contains("SecretString"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn blobs_are_base64() {
        let i = Input::parse(json!({"B": "AAE=", "Bad": "!!"})).unwrap();
        assert_eq!(i.blob("B").unwrap().unwrap().expose(), &[0u8, 1]);
        assert_eq!(i.blob("Bad").err().unwrap().code, AwsErrorCode::SerializationException);
    }
}
