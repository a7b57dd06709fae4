//! ListSecrets / BatchGetSecretValue filters (§2.2).
//!
//! * `name`, `tag-key`, `tag-value`, `primary-region`, `owning-service`: prefix match,
//!   case-sensitive.
//! * `description` and `all`: the value is split into words; every word must be a
//!   case-insensitive prefix of a word of the description (`description`) or of any attribute
//!   (`all`: name, description, tag keys and values, primary region, owning service). Words
//!   are split at non-alphanumeric characters and at case changes (`MyTestPhrase` → `My`,
//!   `Test`, `Phrase`; `COMPANYthings` → `COMPAN`, `Ythings`), as AWS does.
//! * A value starting with `!` matches the secrets the rest does not match. A filter matches
//!   when any of its values matches; several filters must all match.

use crate::AwsError;
use crate::secrets::input::{Input, check_len, validation};
use crate::secrets::model::SecretRecord;

/// The key list in AWS's enum validation message (as recorded; the service also accepts
/// `primary-region` and `owning-service`).
const KEYS: &[&str] = &["all", "name", "tag-key", "description", "tag-value"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterKey {
    Description,
    Name,
    TagKey,
    TagValue,
    PrimaryRegion,
    OwningService,
    All,
}

#[derive(Debug, Clone)]
pub(crate) struct Filter {
    key: FilterKey,
    values: Vec<String>,
}

pub(crate) fn parse_filters(items: Vec<Input>) -> Result<Vec<Filter>, AwsError> {
    check_len(items.len(), 0, 10, "filters")?;
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let Some(key) = item.string("Key")? else {
            return Err(AwsError::invalid_parameter("Invalid filter key"));
        };
        let key = match key.as_str() {
            "description" => FilterKey::Description,
            "name" => FilterKey::Name,
            "tag-key" => FilterKey::TagKey,
            "tag-value" => FilterKey::TagValue,
            "primary-region" => FilterKey::PrimaryRegion,
            "owning-service" => FilterKey::OwningService,
            "all" => FilterKey::All,
            other => {
                return Err(validation(format!(
                    "Value '{other}' at 'filters.{}.member.key' failed to satisfy constraint: Member must satisfy enum value set: [{}]",
                    i + 1,
                    KEYS.join(", ")
                )));
            }
        };
        let values = item.string_list("Values")?.unwrap_or_default();
        if values.is_empty() {
            return Err(AwsError::invalid_parameter(format!(
                "Invalid filter values for key: {}",
                key_name(key)
            )));
        }
        check_len(values.len(), 1, 10, &format!("filters.{}.member.values", i + 1))?;
        for v in &values {
            check_len(
                v.chars().count(),
                1,
                512,
                &format!("filters.{}.member.values.member", i + 1),
            )?;
        }
        out.push(Filter { key, values });
    }
    Ok(out)
}

fn key_name(k: FilterKey) -> &'static str {
    match k {
        FilterKey::Description => "description",
        FilterKey::Name => "name",
        FilterKey::TagKey => "tag-key",
        FilterKey::TagValue => "tag-value",
        FilterKey::PrimaryRegion => "primary-region",
        FilterKey::OwningService => "owning-service",
        FilterKey::All => "all",
    }
}

/// True when `rec` passes every filter.
pub(crate) fn matches(rec: &SecretRecord, filters: &[Filter]) -> bool {
    filters.iter().all(|f| filter_matches(rec, f))
}

fn filter_matches(rec: &SecretRecord, f: &Filter) -> bool {
    f.values.iter().any(|v| match v.strip_prefix('!') {
        Some(neg) => !value_matches(rec, f.key, neg),
        None => value_matches(rec, f.key, v),
    })
}

fn value_matches(rec: &SecretRecord, key: FilterKey, v: &str) -> bool {
    let tags = rec.tags.as_deref().unwrap_or(&[]);
    match key {
        FilterKey::Description => rec.description.as_deref().is_some_and(|d| words_match(&[d], v)),
        FilterKey::Name => rec.name.starts_with(v),
        FilterKey::TagKey => tags.iter().any(|t| t.key.starts_with(v)),
        FilterKey::TagValue => tags.iter().any(|t| t.value.starts_with(v)),
        FilterKey::PrimaryRegion => rec.reported_primary_region().is_some_and(|r| r.starts_with(v)),
        FilterKey::OwningService => rec.owning_service().is_some_and(|s| s.starts_with(v)),
        FilterKey::All => {
            let mut attrs: Vec<&str> = vec![rec.name.as_str()];
            attrs.extend(rec.description.as_deref());
            for t in tags {
                attrs.push(&t.key);
                attrs.push(&t.value);
            }
            attrs.extend(rec.reported_primary_region());
            attrs.extend(rec.owning_service());
            words_match(&attrs, v)
        }
    }
}

/// Splits text into words at non-alphanumeric characters and at case changes: before an
/// uppercase letter that follows a lowercase letter or digit, and before the last letter of
/// an uppercase run that is followed by a lowercase letter.
pub(crate) fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    for run in s.split(|c: char| !c.is_alphanumeric()).filter(|r| !r.is_empty()) {
        let chars: Vec<char> = run.chars().collect();
        let mut word = String::new();
        for (i, &c) in chars.iter().enumerate() {
            if i > 0 && c.is_uppercase() {
                let prev = chars[i - 1];
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
                if prev.is_lowercase() || prev.is_numeric() || (prev.is_uppercase() && next_lower) {
                    out.push(std::mem::take(&mut word));
                }
            }
            word.push(c);
        }
        out.push(word);
    }
    out
}

/// True when every word of `query` is a case-insensitive prefix of some word of `attrs`.
fn words_match(attrs: &[&str], query: &str) -> bool {
    let wanted: Vec<String> = split_words(query).iter().map(|w| w.to_lowercase()).collect();
    if wanted.is_empty() {
        return false;
    }
    let have: Vec<String> = attrs
        .iter()
        .flat_map(|a| split_words(a))
        .map(|w| w.to_lowercase())
        .collect();
    wanted.iter().all(|w| have.iter().any(|h| h.starts_with(w.as_str())))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn word_splitting() {
        let cases: &[(&str, &[&str])] = &[
            ("test", &["test"]),
            ("my test", &["my", "test"]),
            ("Mytest", &["Mytest"]),
            ("MyTest", &["My", "Test"]),
            ("MyTestPhrase", &["My", "Test", "Phrase"]),
            ("myTest", &["my", "Test"]),
            ("my/test", &["my", "test"]),
            ("COMPANYthings", &["COMPAN", "Ythings"]),
            ("SecretFTag", &["Secret", "F", "Tag"]),
            ("prod+AppBeta+x1", &["prod", "App", "Beta", "x1"]),
        ];
        for (input, want) in cases {
            assert_eq!(split_words(input), *want, "{input}");
        }
    }

    #[test]
    fn word_matching() {
        assert!(words_match(&["one and two"], "one two"));
        assert!(words_match(&["one and two"], "o t"));
        assert!(!words_match(&["unrelated"], "t"));
        assert!(words_match(&["uat/COMPANY/x"], "company"));
        assert!(!words_match(&["uat/COMPANYthings/x"], "company"));
        assert!(words_match(&["uat/COMPANYthings/x"], "Ythings"));
        assert!(!words_match(&["uat/COMPANYthings/x"], "things"));
        assert!(words_match(&["SecretOne1a2b3c"], "SecretOne"));
        assert!(!words_match(&["SecretTwo1a2b3c"], "SecretOne"));
        assert!(!words_match(&["prod+AppBeta"], "+"));
    }
}
