//! Vault's rate limit quota endpoints: `sys/quotas/rate-limit/:name` (write, read, delete),
//! `sys/quotas/rate-limit` (list: `LIST` or `GET ?list=true`) and `sys/quotas/config`, with
//! Vault's field types (the CLI sends `rate=2` as a string, durations as `"1m"` or seconds)
//! and messages; and the rate limit response headers.
//!
//! Field parsing follows Vault's `framework` types: `rate` is a float (a number or a numeric
//! string), `interval`/`block_interval` are `TypeDurationSecond` (seconds, or a Go duration
//! string such as `1m30s`, or days with `d`), booleans take `true`/`false`/`1`/`0` strings, and
//! `rate_limit_exempt_paths` takes a list or one string.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use coffer_core::{Core, QuotaConfig, RateLimitHeaders, RateLimitQuota};
use serde_json::{Map, Value, json};

use crate::{Caller, body_json, core_error, errors, token};

/// `/v1/sys/quotas/rate-limit` and `/v1/sys/quotas/rate-limit/`: only a list.
pub(crate) async fn collection(
    State(core): State<Arc<Core>>,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if !is_list(&method, query.as_deref()) {
        return unsupported_operation();
    }
    match core.list_rate_limit_quotas(token(&headers).as_deref()).await {
        // Vault answers an empty list with 404 and no message.
        Ok(names) if names.is_empty() => errors(StatusCode::NOT_FOUND, &[]),
        Ok(names) => logical(json!({ "keys": names })),
        Err(e) => core_error(&e),
    }
}

/// `/v1/sys/quotas/rate-limit/:name`: write (`POST`/`PUT`), read, delete.
pub(crate) async fn quota(
    State(core): State<Arc<Core>>,
    Caller(client): Caller,
    method: Method,
    Path(name): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    if !is_name(&name) {
        return errors(StatusCode::NOT_FOUND, &["unsupported path"]);
    }
    let token = token(&headers);
    if is_list(&method, query.as_deref()) {
        return unsupported_operation();
    }
    match method {
        Method::GET => match core.read_rate_limit_quota(token.as_deref(), &name).await {
            Ok(Some(q)) => logical(json!({
                "name": q.name,
                "path": q.path,
                "type": "rate-limit",
                "role": q.role,
                "rate": number(q.rate),
                "interval": q.interval.as_secs(),
                "block_interval": q.block_interval.as_secs(),
                "inheritable": q.inheritable.unwrap_or(false),
            })),
            Ok(None) => errors(StatusCode::NOT_FOUND, &[]),
            Err(e) => core_error(&e),
        },
        Method::POST | Method::PUT => {
            let input = match quota_input(name, &body) {
                Ok(input) => input,
                Err(m) => return errors(StatusCode::BAD_REQUEST, &[m.as_str()]),
            };
            match core.write_rate_limit_quota(token.as_deref(), &client, input).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => core_error(&e),
            }
        }
        Method::DELETE => match core.delete_rate_limit_quota(token.as_deref(), &client, &name).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => core_error(&e),
        },
        _ => unsupported_operation(),
    }
}

/// `/v1/sys/quotas/config`: read (`GET`) and write (`POST`/`PUT`).
pub(crate) async fn config(
    State(core): State<Arc<Core>>,
    Caller(client): Caller,
    method: Method,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: String,
) -> Response {
    let token = token(&headers);
    if is_list(&method, query.as_deref()) {
        return unsupported_operation();
    }
    match method {
        Method::GET => match core.quota_config(token.as_deref()).await {
            Ok(c) => logical(json!({
                "enable_rate_limit_audit_logging": c.enable_rate_limit_audit_logging,
                "enable_rate_limit_response_headers": c.enable_rate_limit_response_headers,
                "rate_limit_exempt_paths": c.rate_limit_exempt_paths,
            })),
            Err(e) => core_error(&e),
        },
        Method::POST | Method::PUT => {
            let config = match config_input(&body) {
                Ok(c) => c,
                Err(m) => return errors(StatusCode::BAD_REQUEST, &[m.as_str()]),
            };
            match core.write_quota_config(token.as_deref(), &client, config).await {
                Ok(()) => StatusCode::NO_CONTENT.into_response(),
                Err(e) => core_error(&e),
            }
        }
        _ => unsupported_operation(),
    }
}

/// Adds Vault's rate limit headers to a response (`X-Ratelimit-Limit`,
/// `X-Ratelimit-Remaining`, `X-Ratelimit-Reset`, and `Retry-After` on a refusal).
pub fn add_rate_limit_headers(resp: &mut Response, h: &RateLimitHeaders) {
    let out = resp.headers_mut();
    let mut set = |name: &'static str, value: u64| {
        out.insert(HeaderName::from_static(name), HeaderValue::from(value));
    };
    set("x-ratelimit-limit", u64::from(h.limit));
    set("x-ratelimit-remaining", u64::from(h.remaining));
    set("x-ratelimit-reset", h.reset_secs);
    if let Some(retry) = h.retry_after_secs {
        set("retry-after", retry);
    }
}

/// Whether a request is Vault's list operation: `LIST`, or `GET` with `list=true`.
fn is_list(method: &Method, query: Option<&str>) -> bool {
    method.as_str() == "LIST"
        || (*method == Method::GET
            && query.is_some_and(|q| {
                q.split('&')
                    .any(|kv| matches!(kv.split_once('='), Some(("list", v)) if parse_bool(v) == Some(true)))
            }))
}

fn unsupported_operation() -> Response {
    errors(StatusCode::METHOD_NOT_ALLOWED, &["unsupported operation"])
}

/// Vault's logical response envelope (`sys/quotas/*` are logical routes, not raw handlers).
fn logical(data: Value) -> Response {
    let request_id = coffer_crypto::random::uuid_v4().unwrap_or_default();
    Json(json!({
        "request_id": request_id,
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
        "mount_type": "system",
    }))
    .into_response()
}

/// A float as Go's JSON encoder writes it: `2`, not `2.0`.
fn number(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        json!(f as i64)
    } else {
        json!(f)
    }
}

/// Vault's `GenericNameRegex`: a word character, then word characters, `-`, `.` or `@`,
/// ending with a word character.
fn is_name(name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let bytes: Vec<char> = name.chars().collect();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            word(*first) && word(*last) && bytes.iter().all(|c| word(*c) || matches!(c, '-' | '.' | '@'))
        }
        _ => false,
    }
}

fn object(body: &str) -> Result<Map<String, Value>, String> {
    match body_json(body)? {
        Value::Object(m) => Ok(m),
        _ => Err("failed to parse JSON input: the body is not a JSON object".into()),
    }
}

fn quota_input(name: String, body: &str) -> Result<RateLimitQuota, String> {
    let fields = object(body)?;
    Ok(RateLimitQuota {
        name,
        path: string_field(&fields, "path")?,
        role: string_field(&fields, "role")?,
        rate: match fields.get("rate") {
            None | Some(Value::Null) => 0.0,
            Some(v) => float(v).ok_or_else(|| conversion_error(v, "rate", &float_error(v)))?,
        },
        interval: duration_field(&fields, "interval")?,
        block_interval: {
            let block = signed_duration_field(&fields, "block_interval")?;
            if block < 0.0 {
                return Err("'block' is invalid".into());
            }
            Duration::from_secs_f64(block)
        },
        inheritable: match fields.get("inheritable") {
            None | Some(Value::Null) => None,
            Some(v) => Some(bool_field(v, "inheritable")?),
        },
    })
}

fn config_input(body: &str) -> Result<QuotaConfig, String> {
    let fields = object(body)?;
    let flag = |name: &str| match fields.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(v) => bool_field(v, name),
    };
    let exempt = match fields.get("rate_limit_exempt_paths") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.is_empty() => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| scalar_string(i).ok_or_else(|| conversion_error(i, "rate_limit_exempt_paths", "not a string")))
            .collect::<Result<_, _>>()?,
        Some(v) => return Err(conversion_error(v, "rate_limit_exempt_paths", "not a list of strings")),
    };
    Ok(QuotaConfig {
        enable_rate_limit_audit_logging: flag("enable_rate_limit_audit_logging")?,
        enable_rate_limit_response_headers: flag("enable_rate_limit_response_headers")?,
        rate_limit_exempt_paths: exempt,
    })
}

/// Vault's message for a field whose value does not convert to its type.
fn conversion_error(v: &Value, field: &str, why: &str) -> String {
    let shown = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    format!("error converting input {shown} for field \"{field}\": {why}")
}

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn string_field(fields: &Map<String, Value>, name: &str) -> Result<String, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(v) => scalar_string(v).ok_or_else(|| conversion_error(v, name, "not a string")),
    }
}

fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
}

fn float_error(v: &Value) -> String {
    match v {
        Value::String(s) => format!("strconv.ParseFloat: parsing \"{s}\": invalid syntax"),
        _ => "not a number".into(),
    }
}

/// Go's `strconv.ParseBool`.
fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn bool_field(v: &Value, name: &str) -> Result<bool, String> {
    let parsed = match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) => parse_bool(s),
        Value::Number(n) => n.as_f64().map(|f| f != 0.0),
        _ => None,
    };
    parsed.ok_or_else(|| {
        let why = match v {
            Value::String(s) => format!("cannot parse '' as bool: strconv.ParseBool: parsing \"{s}\": invalid syntax"),
            _ => "not a boolean".into(),
        };
        conversion_error(v, name, &why)
    })
}

fn duration_field(fields: &Map<String, Value>, name: &str) -> Result<Duration, String> {
    let secs = signed_duration_field(fields, name)?;
    if secs < 0.0 {
        return Err(format!("'{name}' is invalid"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// A `TypeDurationSecond` field in seconds (0 when absent); may be negative.
fn signed_duration_field(fields: &Map<String, Value>, name: &str) -> Result<f64, String> {
    let v = match fields.get(name) {
        None | Some(Value::Null) => return Ok(0.0),
        Some(v) => v,
    };
    let secs = match v {
        Value::Number(n) => n.as_f64().map(f64::trunc),
        Value::String(s) => parse_duration_secs(s),
        _ => None,
    };
    match secs {
        Some(s) if s.is_finite() && s.abs() < 1.0e12 => Ok(s),
        _ => {
            let why = match v {
                Value::String(s) => format!("time: invalid duration \"{s}\""),
                _ => "not a duration".into(),
            };
            Err(conversion_error(v, name, &why))
        }
    }
}

/// Vault's `parseutil.ParseDurationSecond` for a string: empty is 0, a bare integer is
/// seconds, `<n>d` is days, anything else is a Go duration (`1h30m`, `90s`, `1.5m`); whole
/// seconds are kept.
fn parse_duration_secs(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return Some(0.0);
    }
    if let Ok(n) = s.parse::<i64>() {
        return Some(n as f64);
    }
    if let Some(days) = s.strip_suffix('d')
        && let Ok(n) = days.parse::<i64>()
    {
        return Some((n * 86_400) as f64);
    }
    go_duration(s).map(f64::trunc)
}

/// Go's `time.ParseDuration`, in seconds.
fn go_duration(s: &str) -> Option<f64> {
    let (sign, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (-1.0, &s[1..]),
        Some(b'+') => (1.0, &s[1..]),
        _ => (1.0, s),
    };
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * scale;
    }
    Some(sign * total)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_vaults_duration_second_fields() {
        for (input, secs) in [
            ("", 0.0),
            ("30", 30.0),
            ("1m", 60.0),
            ("1h30m", 5400.0),
            ("1.5m", 90.0),
            ("2d", 172_800.0),
            ("500ms", 0.0),
            ("-5s", -5.0),
        ] {
            assert_eq!(parse_duration_secs(input), Some(secs), "{input}");
        }
        for bad in ["abc", "1x", "m", "1.2.3s"] {
            assert_eq!(parse_duration_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn fields_take_the_clis_strings() {
        let q = quota_input(
            "q".into(),
            r#"{"rate":"2","interval":"1m","block_interval":"5","inheritable":"false","path":"sys"}"#,
        )
        .unwrap();
        assert_eq!(q.rate, 2.0);
        assert_eq!(q.interval, Duration::from_secs(60));
        assert_eq!(q.block_interval, Duration::from_secs(5));
        assert_eq!(q.inheritable, Some(false));
        assert_eq!(q.path, "sys");
        assert_eq!(
            quota_input("q".into(), r#"{"rate":"x"}"#).unwrap_err(),
            r#"error converting input x for field "rate": strconv.ParseFloat: parsing "x": invalid syntax"#
        );
        assert_eq!(
            quota_input("q".into(), r#"{"rate":1,"interval":"soon"}"#).unwrap_err(),
            r#"error converting input soon for field "interval": time: invalid duration "soon""#
        );
        assert_eq!(
            quota_input("q".into(), r#"{"rate":1,"block_interval":-1}"#).unwrap_err(),
            "'block' is invalid"
        );
        let c = config_input(r#"{"enable_rate_limit_response_headers":"true","rate_limit_exempt_paths":"sys/health"}"#)
            .unwrap();
        assert!(c.enable_rate_limit_response_headers && !c.enable_rate_limit_audit_logging);
        assert_eq!(c.rate_limit_exempt_paths, ["sys/health"]);
    }

    #[test]
    fn names_follow_vaults_generic_name_pattern() {
        for good in ["global", "a", "web-1", "a.b@c", "x_y"] {
            assert!(is_name(good), "{good}");
        }
        for bad in ["", "-a", "a-", "a b", "a/b", "é"] {
            assert!(!is_name(bad), "{bad}");
        }
    }

    #[test]
    fn list_is_the_list_verb_or_get_with_list_true() {
        let list = Method::from_bytes(b"LIST").unwrap();
        assert!(is_list(&list, None));
        assert!(is_list(&Method::GET, Some("list=true")));
        assert!(is_list(&Method::GET, Some("a=b&list=1")));
        assert!(!is_list(&Method::GET, Some("list=false")));
        assert!(!is_list(&Method::GET, None));
        assert!(!is_list(&Method::POST, Some("list=true")));
    }
}
