//! GetRandomPassword: random passwords from the system CSPRNG.
//!
//! Character classes: lowercase, uppercase, digits, punctuation
//! ``!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~`` and (only with `IncludeSpace`) the space. With
//! `RequireEachIncludedType` (default true) the password holds at least one character of
//! every included class that still has characters after `ExcludeCharacters`.

use serde_json::Value;

use crate::AwsError;
use crate::secrets::input::{Input, check_len, check_range};
use crate::secrets::render::Out;

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const PUNCTUATION: &str = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

fn rng_err(e: coffer_crypto::CryptoError) -> AwsError {
    AwsError::internal(e.to_string())
}

pub(crate) fn get_random_password(input: &Input) -> Result<Value, AwsError> {
    let length = input.int("PasswordLength")?.unwrap_or(32);
    check_range(length, 1, 4096, "passwordLength")?;
    let exclude = input.string("ExcludeCharacters")?.unwrap_or_default();
    check_len(exclude.chars().count(), 0, 4096, "excludeCharacters")?;
    let flag = |k: &str| -> Result<bool, AwsError> { Ok(input.bool(k)?.unwrap_or(false)) };
    let mut classes: Vec<&str> = Vec::new();
    if !flag("ExcludeLowercase")? {
        classes.push(LOWER);
    }
    if !flag("ExcludeUppercase")? {
        classes.push(UPPER);
    }
    if !flag("ExcludeNumbers")? {
        classes.push(DIGITS);
    }
    if !flag("ExcludePunctuation")? {
        classes.push(PUNCTUATION);
    }
    let include_space = flag("IncludeSpace")?;
    let require_each = input.bool("RequireEachIncludedType")?.unwrap_or(true);

    let classes: Vec<Vec<u8>> = classes
        .into_iter()
        .map(|c| {
            c.bytes()
                .filter(|b| !exclude.contains(char::from(*b)))
                .collect::<Vec<u8>>()
        })
        .filter(|c| !c.is_empty())
        .collect();
    let mut all: Vec<u8> = classes.concat();
    if include_space && !exclude.contains(' ') {
        all.push(b' ');
    }
    if all.is_empty() {
        return Err(AwsError::invalid_parameter(
            "The password can't be generated: every character type is excluded.",
        ));
    }
    let length = usize::try_from(length).unwrap_or(32);
    let mut password: Vec<u8> = Vec::with_capacity(length);
    if require_each {
        if length < classes.len() {
            return Err(AwsError::invalid_parameter(
                "Password length is too short based on the required types.",
            ));
        }
        for class in &classes {
            password.push(class[coffer_crypto::random::index(class.len()).map_err(rng_err)?]);
        }
    }
    while password.len() < length {
        password.push(all[coffer_crypto::random::index(all.len()).map_err(rng_err)?]);
    }
    // Fisher–Yates, so the required characters are not always at the front.
    for i in (1..password.len()).rev() {
        let j = coffer_crypto::random::index(i + 1).map_err(rng_err)?;
        password.swap(i, j);
    }
    let password = coffer_crypto::SecretString::new(password.into_iter().map(char::from).collect());
    Ok(Out::new().s("RandomPassword", password.expose()).build())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::AwsErrorCode;
    use serde_json::json;

    fn pw(v: Value) -> Result<String, AwsError> {
        let out = get_random_password(&Input::parse(v).unwrap())?;
        Ok(out["RandomPassword"].as_str().unwrap().to_string())
    }

    #[test]
    fn defaults() {
        for _ in 0..20 {
            let p = pw(json!({})).unwrap();
            assert_eq!(p.len(), 32);
            assert!(p.chars().any(|c| c.is_ascii_lowercase()));
            assert!(p.chars().any(|c| c.is_ascii_uppercase()));
            assert!(p.chars().any(|c| c.is_ascii_digit()));
            assert!(p.chars().any(|c| PUNCTUATION.contains(c)));
            assert!(!p.contains(' '));
        }
    }

    #[test]
    fn options() {
        let p = pw(json!({"PasswordLength": 100, "ExcludePunctuation": true, "ExcludeUppercase": true, "ExcludeCharacters": "abc"}))
            .unwrap();
        assert_eq!(p.len(), 100);
        assert!(p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert!(!p.contains(['a', 'b', 'c']));
        let p = pw(json!({"PasswordLength": 4096, "IncludeSpace": true, "ExcludeLowercase": true})).unwrap();
        assert_eq!(p.len(), 4096);
        assert!(p.contains(' '));
        assert!(!p.chars().any(|c| c.is_ascii_lowercase()));
        assert_eq!(
            pw(json!({"PasswordLength": 4097})).err().unwrap().code,
            AwsErrorCode::ValidationException
        );
        assert_eq!(
            pw(json!({"PasswordLength": 0})).err().unwrap().code,
            AwsErrorCode::ValidationException
        );
        assert_eq!(
            pw(json!({"PasswordLength": 3})).err().unwrap().code,
            AwsErrorCode::InvalidParameterException
        );
        assert_eq!(
            pw(json!({"PasswordLength": 3, "RequireEachIncludedType": false}))
                .unwrap()
                .len(),
            3
        );
        assert_eq!(
            pw(json!({"ExcludeLowercase": true, "ExcludeUppercase": true, "ExcludeNumbers": true, "ExcludePunctuation": true}))
                .err()
                .unwrap()
                .code,
            AwsErrorCode::InvalidParameterException
        );
    }
}
