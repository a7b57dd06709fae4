//! KMS's request decoding: the shared AWS input decoder (`coffer_engines::input`) plus the
//! KMS-specific accessors. Messages never contain a blob (plaintext, key material, signature),
//! only numbers, enums and key ids.

use std::collections::BTreeMap;

use coffer_crypto::SecretBytes;
use coffer_engines::AwsError;
pub(crate) use coffer_engines::input::{Input, check_enum, check_len, check_range, required, validation};

/// The KMS members that recur across operations.
pub(crate) trait KmsInput {
    /// A required string member.
    fn req_string(&self, key: &str) -> Result<String, AwsError>;
    /// An optional string of 1 to `max` characters.
    fn bounded_string(&self, key: &str, max: usize) -> Result<Option<String>, AwsError>;
    /// A required key id (key id, key ARN, alias name or alias ARN), 1 to 2048 characters.
    fn key_id(&self, key: &str) -> Result<String, AwsError>;
    /// A required blob of `min` to `max` bytes.
    fn req_blob(&self, key: &str, min: usize, max: usize) -> Result<SecretBytes, AwsError>;
    /// An encryption context (absent = empty).
    fn context(&self, key: &str) -> Result<BTreeMap<String, String>, AwsError>;
    /// `Limit` (1 to `max`, default `min(max, 100)`) and `Marker`.
    fn paging(&self, max: i64) -> Result<(usize, Option<String>), AwsError>;
}

impl KmsInput for Input {
    fn req_string(&self, key: &str) -> Result<String, AwsError> {
        required(self.string(key)?, key)
    }

    fn bounded_string(&self, key: &str, max: usize) -> Result<Option<String>, AwsError> {
        let v = self.string(key)?;
        if let Some(s) = &v {
            check_len(s.chars().count(), 1, max, key)?;
        }
        Ok(v)
    }

    fn key_id(&self, key: &str) -> Result<String, AwsError> {
        let v = self.req_string(key)?;
        check_len(v.chars().count(), 1, 2048, key)?;
        Ok(v)
    }

    fn req_blob(&self, key: &str, min: usize, max: usize) -> Result<SecretBytes, AwsError> {
        let b = required(self.blob(key)?, key)?;
        check_len(b.len(), min, max, key)?;
        Ok(b)
    }

    fn context(&self, key: &str) -> Result<BTreeMap<String, String>, AwsError> {
        Ok(self.string_map(key)?.unwrap_or_default())
    }

    fn paging(&self, max: i64) -> Result<(usize, Option<String>), AwsError> {
        let limit = match self.integer("Limit")? {
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
        let e = check_range(i.integer("NumberOfBytes").unwrap().unwrap(), 1, 1024, "NumberOfBytes")
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
