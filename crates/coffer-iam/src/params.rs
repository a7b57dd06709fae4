//! Decoding of Query-protocol parameters (`Name=value` pairs, lists as `Name.member.N`, tags
//! as `Tags.member.N.Key`/`.Value`) and IAM's constraint checks, with IAM's
//! `ValidationError` messages ("1 validation error detected: Value 'x' at 'userName' failed
//! to satisfy constraint: ...").

use coffer_engines::AwsError;

use crate::errors;
use crate::model::Tag;

/// The parameters of one request.
pub(crate) struct Params<'a> {
    list: &'a [(String, String)],
}

/// Default and maximum page size of IAM list operations.
const DEFAULT_MAX_ITEMS: usize = 100;
const MAX_MAX_ITEMS: usize = 1000;

impl<'a> Params<'a> {
    pub fn new(list: &'a [(String, String)]) -> Self {
        Self { list }
    }

    /// The value of `name` (the first, if repeated).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.list.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The value of `name`, or `ValidationError` naming `field` (the camelCase member name).
    pub fn required(&self, name: &str, field: &str) -> Result<&'a str, AwsError> {
        match self.get(name) {
            Some(v) if !v.is_empty() => Ok(v),
            _ => Err(errors::validation(format!(
                "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
            ))),
        }
    }

    /// `prefix.member.1`, `prefix.member.2`, ... in index order.
    pub fn string_list(&self, prefix: &str) -> Vec<String> {
        let head = format!("{prefix}.member.");
        let mut items: Vec<(u32, String)> = self
            .list
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(&head)?.parse::<u32>().ok()?;
                Some((n, v.clone()))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// `prefix.member.N.field` in index order (e.g. `PolicyArns.member.1.arn`).
    pub fn string_list_of_structs(&self, prefix: &str, field: &str) -> Vec<String> {
        let head = format!("{prefix}.member.");
        let tail = format!(".{field}");
        let mut items: Vec<(u32, String)> = self
            .list
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(&head)?.strip_suffix(&tail)?.parse::<u32>().ok()?;
                Some((n, v.clone()))
            })
            .collect();
        items.sort_by_key(|(n, _)| *n);
        items.into_iter().map(|(_, v)| v).collect()
    }

    /// `Tags.member.N.Key` / `Tags.member.N.Value`, checked against IAM's tag constraints.
    pub fn tags(&self, prefix: &str) -> Result<Vec<Tag>, AwsError> {
        let head = format!("{prefix}.member.");
        let mut slots: std::collections::BTreeMap<u32, (Option<String>, Option<String>)> = Default::default();
        for (k, v) in self.list {
            let Some(rest) = k.strip_prefix(&head) else { continue };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(n) = n.parse::<u32>() else { continue };
            let slot = slots.entry(n).or_default();
            match field {
                "Key" => slot.0 = Some(v.clone()),
                "Value" => slot.1 = Some(v.clone()),
                _ => {}
            }
        }
        let mut tags = Vec::with_capacity(slots.len());
        for (_, (key, value)) in slots {
            let Some(key) = key else {
                return Err(errors::validation(
                    "1 validation error detected: Value null at 'tags.member.key' failed to satisfy constraint: Member must not be null",
                ));
            };
            let value = value.unwrap_or_default();
            check_len(&key, "tags.member.key", 1, 128)?;
            check_len(&value, "tags.member.value", 0, 256)?;
            tags.push(Tag { key, value });
        }
        Ok(tags)
    }

    /// `MaxItems` (1–1000, default 100).
    pub fn max_items(&self) -> Result<usize, AwsError> {
        match self.get("MaxItems") {
            None => Ok(DEFAULT_MAX_ITEMS),
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_MAX_ITEMS).contains(&n) => Ok(n),
                _ => Err(errors::validation(format!(
                    "1 validation error detected: Value '{v}' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 1000"
                ))),
            },
        }
    }

    pub fn marker(&self) -> Option<&'a str> {
        self.get("Marker").filter(|m| !m.is_empty())
    }

    /// A boolean parameter (`true`/`false`).
    pub fn bool(&self, name: &str) -> Result<Option<bool>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(errors::validation(format!(
                "Invalid value '{v}' for boolean parameter {name}"
            ))),
        }
    }

    /// An integer parameter.
    pub fn int(&self, name: &str, field: &str) -> Result<Option<i64>, AwsError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                errors::validation(format!(
                    "1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: Member must be a number"
                ))
            }),
        }
    }
}

/// Length bounds, in characters.
pub(crate) fn check_len(v: &str, field: &str, min: usize, max: usize) -> Result<(), AwsError> {
    let n = v.chars().count();
    if n < min {
        return Err(errors::validation(format!(
            "1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: Member must have length greater than or equal to {min}"
        )));
    }
    if n > max {
        return Err(errors::validation(format!(
            "1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: Member must have length less than or equal to {max}"
        )));
    }
    Ok(())
}

/// An IAM entity or policy name: `[\w+=,.@-]+`, `min..=max` characters.
pub(crate) fn check_name(v: &str, field: &str, max: usize) -> Result<(), AwsError> {
    check_len(v, field, 1, max)?;
    if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '+' | '=' | ',' | '.' | '@' | '-'))
    {
        return Err(errors::validation(format!(
            "1 validation error detected: Value '{v}' at '{field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]+"
        )));
    }
    Ok(())
}

/// An IAM path: `/` or `/` + printable ASCII + `/`, at most 512 characters. Default `/`.
pub(crate) fn path_or_default(v: Option<&str>, field: &str) -> Result<String, AwsError> {
    let Some(v) = v else { return Ok("/".into()) };
    check_len(v, field, 1, 512)?;
    let ok = v == "/"
        || (v.len() >= 2 && v.starts_with('/') && v.ends_with('/') && v.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    if !ok {
        return Err(errors::validation(format!(
            "The specified value for {field} is invalid. It must begin and end with / and contain only alphanumeric characters and/or / characters."
        )));
    }
    Ok(v.to_string())
}

/// A `PathPrefix` filter: like a path but need not end with `/`.
pub(crate) fn path_prefix(v: Option<&str>) -> Result<String, AwsError> {
    let Some(v) = v.filter(|v| !v.is_empty()) else {
        return Ok("/".into());
    };
    if !v.starts_with('/') || !v.bytes().all(|b| (0x21..=0x7e).contains(&b)) || v.len() > 512 {
        return Err(errors::validation(format!(
            "1 validation error detected: Value '{v}' at 'pathPrefix' failed to satisfy constraint: Member must satisfy regular expression pattern: \\u002F[\\u0021-\\u007F]*"
        )));
    }
    Ok(v.to_string())
}

/// A page of `items` (already sorted by their key) after `marker`: the items and the next
/// marker when more remain. The marker is the key of the last item returned.
pub(crate) fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    marker: Option<&str>,
    max: usize,
) -> (Vec<T>, Option<String>) {
    let mut rest: Vec<T> = match marker {
        Some(m) => items.into_iter().filter(|it| key(it).as_str() > m).collect(),
        None => items,
    };
    if rest.len() > max {
        rest.truncate(max);
        let next = rest.last().map(&key);
        (rest, next)
    } else {
        (rest, None)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn lists_and_tags_decode_in_index_order() {
        let raw = p(&[
            ("TagKeys.member.2", "b"),
            ("TagKeys.member.1", "a"),
            ("Tags.member.2.Key", "k2"),
            ("Tags.member.2.Value", "v2"),
            ("Tags.member.1.Key", "k1"),
            ("Tags.member.1.Value", ""),
        ]);
        let params = Params::new(&raw);
        assert_eq!(params.string_list("TagKeys"), vec!["a", "b"]);
        let tags = params.tags("Tags").unwrap();
        assert_eq!(tags[0].key, "k1");
        assert_eq!(tags[1].value, "v2");
    }

    #[test]
    fn names_and_paths() {
        assert!(check_name("alice.b@x-y_z+=,", "userName", 64).is_ok());
        assert!(check_name("a/b", "userName", 64).is_err());
        assert!(check_name(&"a".repeat(65), "userName", 64).is_err());
        assert_eq!(path_or_default(None, "path").unwrap(), "/");
        assert!(path_or_default(Some("/a/b/"), "path").is_ok());
        assert!(path_or_default(Some("/a"), "path").is_err());
    }

    #[test]
    fn paging_after_marker() {
        let items = vec!["a", "b", "c", "d"];
        let (page1, next) = page(items.clone(), |s| s.to_string(), None, 3);
        assert_eq!(page1, vec!["a", "b", "c"]);
        assert_eq!(next.as_deref(), Some("c"));
        let (page2, next) = page(items, |s| s.to_string(), next.as_deref(), 3);
        assert_eq!(page2, vec!["d"]);
        assert!(next.is_none());
    }
}
