//! Parameter policies (`Policies` of PutParameter): validation and the Expiration job.
//!
//! `Policies` is a JSON array of `{"Type", "Version": "1.0", "Attributes"}` objects:
//! `Expiration {Timestamp}` deletes the parameter at that time; `ExpirationNotification
//! {Before, Unit}` and `NoChangeNotification {After, Unit}` are accepted and reported (Coffer
//! has no EventBridge to notify).

use coffer_engines::{AwsError, AwsErrorCode};
use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::model::Policy;

const MAX_POLICIES: usize = 10;

fn invalid_type() -> AwsError {
    AwsError::new(
        AwsErrorCode::InvalidPolicyTypeException,
        "The policy type is not supported. Parameter Store supports the following policy types: Expiration, ExpirationNotification, and NoChangeNotification.",
    )
}

fn invalid_attribute(detail: &str) -> AwsError {
    AwsError::new(
        AwsErrorCode::InvalidPolicyAttributeException,
        format!("A policy attribute or its value is invalid: {detail}"),
    )
}

fn attr<'a>(attrs: &'a Map<String, Value>, name: &str) -> Result<&'a str, AwsError> {
    attrs
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid_attribute(&format!("{name} is required.")))
}

fn positive_with_unit(attrs: &Map<String, Value>, amount: &str) -> Result<(), AwsError> {
    let n = attr(attrs, amount)?;
    if n.parse::<u32>().map_or(true, |v| v == 0) {
        return Err(invalid_attribute(&format!("{amount} must be a positive whole number.")));
    }
    let unit = attr(attrs, "Unit")?;
    if unit != "Days" && unit != "Hours" {
        return Err(invalid_attribute("Unit must be Days or Hours."));
    }
    Ok(())
}

/// Parses and validates `Policies` at time `now`.
pub(crate) fn parse(text: &str, now: OffsetDateTime) -> Result<Vec<Policy>, AwsError> {
    let items = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items,
        _ => return Err(invalid_type()),
    };
    if items.len() > MAX_POLICIES {
        return Err(AwsError::new(
            AwsErrorCode::PoliciesLimitExceededException,
            "You specified more than the maximum number of allowed policies for the parameter. The maximum is 10.",
        ));
    }
    let mut out: Vec<Policy> = Vec::with_capacity(items.len());
    for item in &items {
        let Value::Object(obj) = item else {
            return Err(invalid_type());
        };
        let policy_type = obj.get("Type").and_then(Value::as_str).ok_or_else(invalid_type)?;
        if let Some(v) = obj.get("Version")
            && v.as_str() != Some("1.0")
        {
            return Err(invalid_attribute("Version must be 1.0."));
        }
        let empty = Map::new();
        let attrs = match obj.get("Attributes") {
            Some(Value::Object(m)) => m,
            None => &empty,
            Some(_) => return Err(invalid_attribute("Attributes must be an object.")),
        };
        let mut expires_at = None;
        match policy_type {
            "Expiration" => {
                let ts = attr(attrs, "Timestamp")?;
                let at = OffsetDateTime::parse(ts, &Rfc3339)
                    .map_err(|_| invalid_attribute("Timestamp must be an ISO 8601 date and time."))?;
                if at <= now {
                    return Err(invalid_attribute("Timestamp must be in the future."));
                }
                expires_at = Some(at.unix_timestamp());
            }
            "ExpirationNotification" => positive_with_unit(attrs, "Before")?,
            "NoChangeNotification" => positive_with_unit(attrs, "After")?,
            _ => return Err(invalid_type()),
        }
        if out.iter().any(|p| p.policy_type == policy_type) {
            return Err(AwsError::new(
                AwsErrorCode::IncompatiblePolicyException,
                format!(
                    "There is a conflict in the policies specified for this parameter: only one {policy_type} policy is allowed."
                ),
            ));
        }
        out.push(Policy {
            policy_type: policy_type.to_string(),
            text: serde_json::to_string(item).unwrap_or_default(),
            expires_at,
        });
    }
    if out.iter().any(|p| p.policy_type == "ExpirationNotification")
        && !out.iter().any(|p| p.policy_type == "Expiration")
    {
        return Err(AwsError::new(
            AwsErrorCode::IncompatiblePolicyException,
            "There is a conflict in the policies specified for this parameter: an ExpirationNotification policy requires an Expiration policy.",
        ));
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
    }

    #[test]
    fn valid_policies() {
        let p = parse(
            r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2030-01-01T00:00:00.000Z"}},
                {"Type":"ExpirationNotification","Version":"1.0","Attributes":{"Before":"15","Unit":"Days"}},
                {"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"20","Unit":"Hours"}}]"#,
            now(),
        )
        .unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(p[0].expires_at, Some(1_893_456_000));
    }

    #[test]
    fn invalid_policies() {
        let code = |t: &str| parse(t, now()).err().unwrap().code;
        assert_eq!(code("invalid json"), AwsErrorCode::InvalidPolicyTypeException);
        assert_eq!(code(r#"["Expiration"]"#), AwsErrorCode::InvalidPolicyTypeException);
        assert_eq!(code(r#"[{"Type":"Nope"}]"#), AwsErrorCode::InvalidPolicyTypeException);
        assert_eq!(
            code(r#"[{"Type":"Expiration","Attributes":{"Timestamp":"2001-01-01T00:00:00Z"}}]"#),
            AwsErrorCode::InvalidPolicyAttributeException
        );
        assert_eq!(
            code(r#"[{"Type":"NoChangeNotification","Attributes":{"After":"x","Unit":"Days"}}]"#),
            AwsErrorCode::InvalidPolicyAttributeException
        );
        assert_eq!(
            code(
                r#"[{"Type":"NoChangeNotification","Attributes":{"After":"1","Unit":"Days"}},{"Type":"NoChangeNotification","Attributes":{"After":"2","Unit":"Days"}}]"#
            ),
            AwsErrorCode::IncompatiblePolicyException
        );
        let many = format!(
            "[{}]",
            [r#"{"Type":"NoChangeNotification","Attributes":{"After":"1","Unit":"Days"}}"#; 11].join(",")
        );
        assert_eq!(code(&many), AwsErrorCode::PoliciesLimitExceededException);
    }
}
