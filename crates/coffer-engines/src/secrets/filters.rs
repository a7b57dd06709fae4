//! ListSecrets / BatchGetSecretValue filters (§2.2).
//!
//! * `description`: prefix, case-insensitive; `name`, `tag-key`, `tag-value`,
//!   `primary-region`, `owning-service`: prefix, case-sensitive.
//! * `all`: the value is split into words; every word must be a case-insensitive prefix of
//!   a word of some attribute (name, description, tag keys and values, primary region).
//! * A value starting with `!` negates. Within one filter a secret matches when any plain
//!   value matches (or there is none) and no negated value matches; filters are ANDed.

use crate::AwsError;
use crate::secrets::input::{Input, check_len, validation};
use crate::secrets::model::SecretRecord;

const KEYS: &[&str] = &[
    "all",
    "name",
    "tag-key",
    "description",
    "tag-value",
    "primary-region",
    "owning-service",
];

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
    let mut any_plain = false;
    let mut plain_hit = false;
    for v in &f.values {
        match v.strip_prefix('!') {
            Some(neg) => {
                if value_matches(rec, f.key, neg) {
                    return false;
                }
            }
            None => {
                any_plain = true;
                plain_hit = plain_hit || value_matches(rec, f.key, v);
            }
        }
    }
    !any_plain || plain_hit
}

fn value_matches(rec: &SecretRecord, key: FilterKey, v: &str) -> bool {
    let tags = rec.tags.as_deref().unwrap_or(&[]);
    match key {
        FilterKey::Description => rec
            .description
            .as_deref()
            .is_some_and(|d| d.to_lowercase().starts_with(&v.to_lowercase())),
        FilterKey::Name => rec.name.starts_with(v),
        FilterKey::TagKey => tags.iter().any(|t| t.key.starts_with(v)),
        FilterKey::TagValue => tags.iter().any(|t| t.value.starts_with(v)),
        FilterKey::PrimaryRegion => rec.reported_primary_region().is_some_and(|r| r.starts_with(v)),
        FilterKey::OwningService => false,
        FilterKey::All => all_matches(rec, v),
    }
}

/// Lower-cased words of an attribute: the whole value and its alphanumeric runs.
fn words(s: &str) -> Vec<String> {
    let lower = s.to_lowercase();
    let mut out: Vec<String> = lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    out.push(lower);
    out
}

fn all_matches(rec: &SecretRecord, v: &str) -> bool {
    let mut attr_words = words(&rec.name);
    if let Some(d) = &rec.description {
        attr_words.extend(words(d));
    }
    for t in rec.tags.as_deref().unwrap_or(&[]) {
        attr_words.extend(words(&t.key));
        attr_words.extend(words(&t.value));
    }
    if let Some(r) = rec.reported_primary_region() {
        attr_words.extend(words(r));
    }
    let query: Vec<String> = v.split_whitespace().map(str::to_lowercase).collect();
    !query.is_empty()
        && query
            .iter()
            .all(|q| attr_words.iter().any(|w| w.starts_with(q.as_str())))
}
