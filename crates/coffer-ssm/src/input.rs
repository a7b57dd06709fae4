//! Parameter Store's request decoding: the shared AWS input decoder (`coffer_engines::input`)
//! plus the Parameter Store helpers (`MaxResults`, tags). No message contains a parameter value.

use coffer_engines::AwsError;
pub(crate) use coffer_engines::input::{Input, check_enum, check_len, required, validation, validations};

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
