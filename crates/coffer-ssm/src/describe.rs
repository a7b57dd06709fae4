//! DescribeParameters and GetParametersByPath: filters, validation and pagination.
//!
//! `NextToken` is the decimal offset of the next item in the (sorted, filtered) result. A
//! full page always carries a token, so a client may see a final empty page, which AWS
//! documents ("the number of items returned can be between zero and MaxResults").

use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use serde_json::{Value, json};

use crate::SsmEngine;
use crate::input::{self, Input, required, validation, validations};
use crate::model::{ParameterRecord, SECURE_STRING, TIERS, TYPES, VersionRecord};
use crate::names;
use crate::render;

const KEY_PATTERN: &str = "tag:.+|Name|Type|KeyId|Path|Label|Tier|DataType";

/// One decoded `ParameterStringFilter`.
#[derive(Debug, Clone)]
struct Filter {
    key: String,
    option: String,
    values: Option<Vec<String>>,
}

fn invalid_token() -> AwsError {
    AwsError::new(AwsErrorCode::InvalidNextToken, "The specified token isn't valid.")
}

/// The offset a `NextToken` encodes (0 without a token).
pub(crate) fn decode_token(input: &Input) -> Result<usize, AwsError> {
    match input.string("NextToken")? {
        None => Ok(0),
        Some(t) => t.parse::<usize>().map_err(|_| invalid_token()),
    }
}

fn filter_key_error(key: &str, valid: &str) -> AwsError {
    AwsError::new(
        AwsErrorCode::InvalidFilterKey,
        format!("The following filter key is not valid: {key}. Valid filter keys include: {valid}."),
    )
}

fn option_error(option: &str, valid: &str) -> AwsError {
    AwsError::new(
        AwsErrorCode::InvalidFilterOption,
        format!("The following filter option is not valid: {option}. Valid options include: {valid}"),
    )
}

fn value_error(value: &str, valid: &str) -> AwsError {
    AwsError::new(
        AwsErrorCode::InvalidFilterValue,
        format!("The following filter value is not valid: {value}. Valid values include: {valid}"),
    )
}

fn key_matches_pattern(key: &str) -> bool {
    matches!(key, "Name" | "Type" | "KeyId" | "Path" | "Label" | "Tier" | "DataType")
        || key.strip_prefix("tag:").is_some_and(|k| !k.is_empty())
}

/// Decodes `ParameterFilters` with the model's constraint checks (all violations reported at
/// once, as AWS does).
fn decode_filters(input: &Input) -> Result<Vec<Filter>, AwsError> {
    let Some(list) = input.object_list("ParameterFilters")? else {
        return Ok(Vec::new());
    };
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(list.len());
    for (i, f) in list.iter().enumerate() {
        let at = format!("parameterFilters.{}.member", i + 1);
        let key = required(f.string("Key")?, &format!("{at}.key"))?;
        let option = f.string("Option")?;
        let values = f.string_list("Values")?;
        if key.chars().count() > 132 {
            errors.push(format!(
                "Value '{key}' at '{at}.key' failed to satisfy constraint: Member must have length less than or equal to 132"
            ));
        } else if !key_matches_pattern(&key) {
            errors.push(format!(
                "Value '{key}' at '{at}.key' failed to satisfy constraint: Member must satisfy regular expression pattern: {KEY_PATTERN}"
            ));
        }
        if let Some(o) = &option
            && (o.is_empty() || o.chars().count() > 10)
        {
            errors.push(format!(
                "Value '{o}' at '{at}.option' failed to satisfy constraint: Member must have length less than or equal to 10"
            ));
        }
        if let Some(vs) = &values {
            if vs.len() > 50 {
                errors.push(format!(
                    "Value '[{}]' at '{at}.values' failed to satisfy constraint: Member must have length less than or equal to 50",
                    vs.join(", ")
                ));
            } else if vs.iter().any(|v| v.is_empty() || v.chars().count() > 1024) {
                errors.push(format!(
                    "Value '[{}]' at '{at}.values' failed to satisfy constraint: Member must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1]",
                    vs.join(", ")
                ));
            }
        }
        out.push(Filter {
            key,
            option: option.unwrap_or_default(),
            values,
        });
    }
    if let Some(e) = validations(&errors) {
        return Err(e);
    }
    Ok(out)
}

/// Semantic checks shared by both operations; `by_path` restricts the keys.
fn check_filters(filters: &mut [Filter], by_path: bool) -> Result<(), AwsError> {
    let mut seen = std::collections::HashSet::new();
    for f in filters.iter() {
        if !seen.insert(f.key.clone()) {
            return Err(AwsError::validation(format!(
                "The following filter is duplicated in the request: {}. A request can contain only one occurrence of a specific filter.",
                f.key
            )));
        }
    }
    for f in filters.iter_mut() {
        let is_tag = f.key.starts_with("tag:");
        if by_path {
            if !matches!(f.key.as_str(), "Type" | "KeyId" | "Label") {
                return Err(filter_key_error(&f.key, "[Type, KeyId]"));
            }
        } else if f.key == "Label" {
            return Err(filter_key_error("Label", "[Path, Name, Type, KeyId, Tier]"));
        }
        if f.values.is_none() && !is_tag {
            return Err(AwsError::validation(format!(
                "The following filter values are missing : null for filter key {}",
                f.key
            )));
        }
        let values = f.values.clone().unwrap_or_default();
        match f.key.as_str() {
            "Path" => {
                if f.option.is_empty() {
                    f.option = "OneLevel".into();
                }
                if f.option != "Recursive" && f.option != "OneLevel" {
                    return Err(option_error(&f.option, "[Recursive, OneLevel]"));
                }
                for v in &values {
                    if names::reserved_path(v) {
                        return Err(AwsError::validation(
                            "Filters for common parameters can't be prefixed with \"aws\" or \"ssm\" (case-insensitive).",
                        ));
                    }
                    if !names::valid_path(v) {
                        return Err(AwsError::validation(names::INVALID_PATH));
                    }
                }
            }
            _ => {
                if f.option.is_empty() {
                    f.option = "Equals".into();
                }
                let ok = match f.key.as_str() {
                    "Name" => matches!(f.option.as_str(), "Equals" | "BeginsWith" | "Contains"),
                    "Label" => f.option == "Equals",
                    _ => matches!(f.option.as_str(), "Equals" | "BeginsWith"),
                };
                if !ok {
                    let valid = if f.key == "Label" {
                        "[Equals]."
                    } else {
                        "[BeginsWith, Equals]."
                    };
                    return Err(option_error(&f.option, valid));
                }
                if f.key == "Tier"
                    && let Some(v) = values.iter().find(|v| !TIERS.contains(&v.as_str()))
                {
                    return Err(value_error(v, "[Standard, Advanced, Intelligent-Tiering]"));
                }
                if f.key == "Type"
                    && f.option == "Equals"
                    && let Some(v) = values.iter().find(|v| !TYPES.contains(&v.as_str()))
                {
                    return Err(value_error(v, "[String, StringList, SecureString]"));
                }
            }
        }
    }
    Ok(())
}

fn string_match(option: &str, actual: &str, wanted: &str) -> bool {
    match option {
        "BeginsWith" => actual.starts_with(wanted),
        "Contains" => actual.contains(wanted),
        _ => actual == wanted,
    }
}

/// Whether one parameter passes one filter.
fn passes(rec: &ParameterRecord, v: &VersionRecord, f: &Filter) -> bool {
    let values = f.values.as_deref().unwrap_or_default();
    let any = |actual: &str| values.iter().any(|w| string_match(&f.option, actual, w));
    if let Some(tag_key) = f.key.strip_prefix("tag:") {
        return match rec.tags.iter().find(|t| t.key == tag_key) {
            None => false,
            Some(_) if values.is_empty() => true,
            Some(t) => any(&t.value),
        };
    }
    match f.key.as_str() {
        "Name" => {
            let full = names::as_path(&rec.name);
            values.iter().any(|w| {
                if f.option == "Contains" {
                    full.contains(w.as_str())
                } else {
                    string_match(&f.option, &full, &names::as_path(w))
                }
            })
        }
        "Type" => any(&v.param_type),
        "KeyId" => v.param_type == SECURE_STRING && v.key_id.as_deref().is_some_and(any),
        "Tier" => any(&v.tier),
        "DataType" => any(&v.data_type),
        "Label" => rec.versions.iter().any(|x| x.labels.iter().any(|l| values.contains(l))),
        "Path" => {
            let recursive = f.option == "Recursive";
            values.iter().any(|p| names::under_path(&rec.name, p, recursive))
        }
        _ => false,
    }
}

impl SsmEngine {
    pub(crate) async fn describe_parameters(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let legacy = input.object_list("Filters")?;
        if legacy.is_some() && input.has("ParameterFilters") {
            return Err(AwsError::validation(
                "You can use either Filters or ParameterFilters in a single request.",
            ));
        }
        let mut filters = Vec::new();
        for (i, f) in legacy.unwrap_or_default().iter().enumerate() {
            let at = format!("filters.{}.member", i + 1);
            let key = required(f.string("Key")?, &format!("{at}.key"))?;
            input::check_enum(&key, &["Name", "Type", "KeyId"], &format!("{at}.key"))?;
            let values = required(f.string_list("Values")?, &format!("{at}.values"))?;
            let option = if key == "Name" { "BeginsWith" } else { "Equals" };
            filters.push(Filter {
                key,
                option: option.into(),
                values: Some(values),
            });
        }
        let mut parameter_filters = decode_filters(input)?;
        check_filters(&mut parameter_filters, false)?;
        filters.extend(parameter_filters);
        let max = input::max_results(input, 50, 10)?;
        let start = decode_token(input)?;
        if input.bool("Shared")?.unwrap_or(false) {
            return Ok(json!({"Parameters": []}));
        }
        let mut matched = Vec::new();
        for rec in self.records_in_region(&ctx.account_id, &ctx.region).await? {
            let v = rec.latest()?.clone();
            if filters.iter().all(|f| passes(&rec, &v, f)) {
                matched.push(render::metadata(&rec, &names::arn(ctx, &rec.name), &v));
            }
        }
        let page: Vec<Value> = matched.into_iter().skip(start).take(max).collect();
        let mut resp = json!({});
        if page.len() == max {
            resp["NextToken"] = json!((start + max).to_string());
        }
        resp["Parameters"] = Value::Array(page);
        Ok(resp)
    }

    pub(crate) async fn get_parameters_by_path(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let path = required(input.string("Path")?, "Path")?;
        input::check_len(path.chars().count(), 1, 2048, "Path")?;
        let recursive = input.bool("Recursive")?.unwrap_or(false);
        let decrypt = input.bool("WithDecryption")?.unwrap_or(false);
        let mut filters = decode_filters(input)?;
        check_filters(&mut filters, true)?;
        let max = match input.int("MaxResults")? {
            Some(v) if v > 10 => {
                return Err(validation(format!(
                    "Value {v} at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 10"
                )));
            }
            _ => input::max_results(input, 10, 10)?,
        };
        let start = decode_token(input)?;
        if !names::valid_path(&path) {
            return Err(AwsError::validation(names::INVALID_PATH));
        }
        let mut matched = Vec::new();
        for rec in self.records_in_region(&ctx.account_id, &ctx.region).await? {
            let v = rec.latest()?;
            if names::under_path(&rec.name, &path, recursive) && filters.iter().all(|f| passes(&rec, v, f)) {
                matched.push(rec);
            }
        }
        let total = matched.len();
        let mut out = Vec::new();
        for rec in matched.into_iter().skip(start).take(max) {
            let v = rec.latest()?.clone();
            let value = self.value_of(ctx, &rec, &v, decrypt).await?;
            out.push(render::parameter(
                &rec.name,
                &names::arn(ctx, &rec.name),
                &v,
                value,
                None,
            ));
        }
        let mut resp = json!({});
        if out.len() == max && start + max < total {
            resp["NextToken"] = json!((start + max).to_string());
        }
        resp["Parameters"] = Value::Array(out);
        Ok(resp)
    }
}
