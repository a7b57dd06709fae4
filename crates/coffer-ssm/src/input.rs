//! Decoding of the awsJson 1.1 request body and the constraint checks SSM applies before an
//! operation runs.
//!
//! Decoding is by hand (as in the Secrets Manager engine) so that every message is under our
//! control: a wrong JSON kind becomes `SerializationException`, a constraint violation a
//! `ValidationException` in AWS's "1 validation error detected: ..." form. No message ever
//! contains a parameter value.

use coffer_crypto::SecretString;
use coffer_engines::AwsError;
use serde_json::{Map, Value};

/// A decoded JSON object: the request body or a nested structure.
#[derive(Default, Clone)]
pub(crate) struct Input {
    map: Map<String, Value>,
}

/// Shows member names only: the body may hold SecureString values.
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

/// The wire member name as AWS writes it in validation messages (`MaxResults` -> `maxResults`).
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

/// `ValidationException` for several violations at once, as AWS words it.
pub(crate) fn validations(details: &[String]) -> Option<AwsError> {
    match details.len() {
        0 => None,
        1 => Some(validation(&details[0])),
        n => Some(AwsError::validation(format!(
            "{n} validation errors detected: {}",
            details.join("; ")
        ))),
    }
}

/// Returns the value of a required member or the AWS "must not be null" error.
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

/// Checks that an enum member has one of the allowed values (enum values are not secret).
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

    /// Whether the member is present (and not `null`).
    pub(crate) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(type_error(other, "a String")),
        }
    }

    /// A value member, moved straight into a zeroizing box.
    pub(crate) fn secret_string(&self, key: &str) -> Result<Option<SecretString>, AwsError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(SecretString::new(s.clone()))),
            Some(other) => Err(type_error(other, "a String")),
        }
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
                    "NUMBER_VALUE for {key} can not be converted to a Long"
                ))),
            },
            Some(other) => Err(type_error(other, "a Long")),
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
}

/// `MaxResults` within `1..=max`, or `default` when absent.
pub(crate) fn max_results(input: &Input, max: i64, default: i64) -> Result<usize, AwsError> {
    let Some(v) = input.int("MaxResults")? else {
        return Ok(usize::try_from(default).unwrap_or(10));
    };
    if v < 1 {
        return Err(validation(format!(
            "Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"
        )));
    }
    if v > max {
        return Err(validation(format!(
            "Value '{v}' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to {max}"
        )));
    }
    Ok(usize::try_from(v).unwrap_or(1))
}

/// Tags in `[{"Key": .., "Value": ..}]` form, with the model's length limits.
pub(crate) fn tags(input: &Input, member: &str) -> Result<Option<Vec<(String, String)>>, AwsError> {
    let Some(list) = input.object_list(member)? else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(list.len());
    for t in &list {
        let key = required(t.string("Key")?, &format!("{member}.member.Key"))?;
        let value = required(t.string("Value")?, &format!("{member}.member.Value"))?;
        check_len(key.chars().count(), 1, 128, &format!("{member}.member.key"))?;
        check_len(value.chars().count(), 0, 256, &format!("{member}.member.value"))?;
        out.push((key, value));
    }
    Ok(Some(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use coffer_engines::AwsErrorCode;
    use serde_json::json;

    #[test]
    fn wrong_kinds_and_debug_without_values() {
        let i = Input::parse(json!({"Value": 12345, "Name": "hunter2"})).unwrap();
        let e = i.secret_string("Value").err().unwrap();
        assert_eq!(e.code, AwsErrorCode::SerializationException);
        assert!(!e.message.contains("12345"));
        assert!(!format!("{i:?}").contains("hunter2"));
        assert!(Input::parse(json!([1])).is_err());
    }

    #[test]
    fn several_violations_are_joined() {
        let e = validations(&["a".into(), "b".into()]).unwrap();
        assert_eq!(e.message, "2 validation errors detected: a; b");
        assert!(validations(&[]).is_none());
    }
}
