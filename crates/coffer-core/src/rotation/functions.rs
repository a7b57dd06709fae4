//! The registry of rotation functions, addressed by Lambda-style ARNs
//! (`arn:aws:lambda:REGION:ACCOUNT:function:NAME`), so the `RotationLambdaARN` users already
//! configure keeps working.
//!
//! A function is one of:
//! * **built-in** ([`BuiltIn`]): the PostgreSQL and MySQL rotators, present in every account
//!   and region without being stored;
//! * **http**: Coffer POSTs the Lambda event JSON to a URL, signed with an HMAC key generated
//!   at registration and shown once (see [`super::invoke`]);
//! * **command**: a local program run with the event on stdin.
//!
//! Stored records live under the core's `aws/lambda/` view (through the barrier, so the
//! signing key is encrypted at rest) at `ACCOUNT/REGION/NAME`. The management API is the
//! `CofferRotation.*` JSON target, authorized as `lambda:*` actions on the function ARN.

use base64::Engine as _;
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_rotators::BuiltIn;
use coffer_storage::DynStorage;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// The longest a step may run.
const MAX_TIMEOUT_SECS: u64 = 900;
/// A step's time limit when none is given.
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// How a stored function is invoked.
#[derive(Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub(crate) enum FunctionSpec {
    Http {
        url: String,
        timeout_secs: u64,
        /// Base64 HMAC-SHA256 key for the `X-Coffer-Signature` header.
        signing_key: String,
    },
    Command {
        path: String,
        #[serde(default)]
        args: Vec<String>,
        timeout_secs: u64,
    },
}

/// One registered function. No `Debug`: it holds the signing key.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct FunctionRecord {
    pub name: String,
    pub account_id: String,
    pub region: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub spec: FunctionSpec,
    pub created_ms: i64,
}

/// A function ready to invoke.
#[derive(Clone)]
pub(crate) enum Function {
    BuiltIn(BuiltIn),
    Stored(Box<FunctionRecord>),
}

pub(crate) fn function_arn(region: &str, account: &str, name: &str) -> String {
    format!("arn:aws:lambda:{region}:{account}:function:{name}")
}

/// Splits a function ARN (an optional `:qualifier` after the name is ignored) or a bare name
/// into `(region, account, name)`, filling the caller's region and account for a bare name.
pub(crate) fn parse_function_id(id: &str, region: &str, account: &str) -> Option<(String, String, String)> {
    if let Some(rest) = id.strip_prefix("arn:aws:lambda:") {
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() < 4 || parts[2] != "function" || parts[3].is_empty() {
            return None;
        }
        return Some((parts[0].to_string(), parts[1].to_string(), parts[3].to_string()));
    }
    valid_name(id).then(|| (region.to_string(), account.to_string(), id.to_string()))
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::InvalidParameterValueException, message)
}

fn not_found(arn: &str) -> AwsError {
    AwsError::not_found(format!("Function not found: {arn}"))
}

fn now_ms(ctx: &RequestContext) -> i64 {
    i64::try_from(ctx.now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn timeout_of(v: Option<&Value>) -> Result<u64, AwsError> {
    match v {
        None | Some(Value::Null) => Ok(DEFAULT_TIMEOUT_SECS),
        Some(v) => match v.as_u64() {
            Some(t) if (1..=MAX_TIMEOUT_SECS).contains(&t) => Ok(t),
            _ => Err(invalid(format!(
                "TimeoutSeconds must be a whole number from 1 to {MAX_TIMEOUT_SECS}."
            ))),
        },
    }
}

fn str_of<'a>(v: &'a Value, field: &str) -> Result<Option<&'a str>, AwsError> {
    match v.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AwsError::serialization(format!("{field} must be a string"))),
    }
}

/// The rotation-function registry over its storage view.
pub(crate) struct FunctionRegistry {
    storage: DynStorage,
}

impl FunctionRegistry {
    pub(crate) fn new(storage: DynStorage) -> Self {
        Self { storage }
    }

    fn key(account: &str, region: &str, name: &str) -> String {
        format!("{account}/{region}/{name}")
    }

    async fn load(&self, account: &str, region: &str, name: &str) -> Result<Option<FunctionRecord>, AwsError> {
        match self.storage.get(&Self::key(account, region, name)).await? {
            Some(b) => serde_json::from_slice(b.expose())
                .map(Some)
                .map_err(|e| AwsError::internal(format!("function record: {e}"))),
            None => Ok(None),
        }
    }

    /// The function a `RotationLambdaARN` names, for a secret in `account`/`region`: `None`
    /// when it does not exist or lives in another account or region (Coffer cannot invoke it).
    pub(crate) async fn resolve(&self, account: &str, region: &str, id: &str) -> Result<Option<Function>, AwsError> {
        let Some((r, a, name)) = parse_function_id(id, region, account) else {
            return Ok(None);
        };
        if r != region || a != account {
            return Ok(None);
        }
        if let Some(b) = BuiltIn::from_function_name(&name) {
            return Ok(Some(Function::BuiltIn(b)));
        }
        Ok(self
            .load(account, region, &name)
            .await?
            .map(|f| Function::Stored(Box::new(f))))
    }

    /// Deletes every stored function (dev-only reset).
    pub(crate) async fn reset(&self) -> Result<(), AwsError> {
        Ok(self.storage.clear().await?)
    }

    /// `CofferRotation.{CreateFunction,GetFunction,ListFunctions,DeleteFunction}`.
    pub(crate) async fn handle(&self, ctx: &RequestContext, op: &str, input: &Value) -> Result<Value, AwsError> {
        match op {
            "CreateFunction" => self.create(ctx, input).await,
            "GetFunction" => {
                let (region, account, name) = self.name_in(ctx, input)?;
                let arn = function_arn(&region, &account, &name);
                match self.resolve(&ctx.account_id, &ctx.region, &arn).await? {
                    Some(f) => Ok(describe(&ctx.region, &ctx.account_id, &name, &f)),
                    None => Err(not_found(&arn)),
                }
            }
            "ListFunctions" => {
                let mut out: Vec<Value> = BuiltIn::ALL
                    .iter()
                    .map(|b| describe(&ctx.region, &ctx.account_id, b.function_name(), &Function::BuiltIn(*b)))
                    .collect();
                let prefix = format!("{}/{}/", ctx.account_id, ctx.region);
                for key in self.storage.list(&prefix).await? {
                    if let Some(f) = self.load(&ctx.account_id, &ctx.region, &key).await? {
                        let name = f.name.clone();
                        out.push(describe(
                            &ctx.region,
                            &ctx.account_id,
                            &name,
                            &Function::Stored(Box::new(f)),
                        ));
                    }
                }
                Ok(json!({ "Functions": out }))
            }
            "DeleteFunction" => {
                let (region, account, name) = self.name_in(ctx, input)?;
                let arn = function_arn(&region, &account, &name);
                if BuiltIn::from_function_name(&name).is_some() {
                    return Err(invalid(format!("{name} is built in and can't be deleted.")));
                }
                if region != ctx.region
                    || account != ctx.account_id
                    || self.load(&account, &region, &name).await?.is_none()
                {
                    return Err(not_found(&arn));
                }
                self.storage.delete(&Self::key(&account, &region, &name)).await?;
                Ok(json!({}))
            }
            _ => Err(AwsError::unknown_operation(format!("Operation {op} is not supported."))),
        }
    }

    fn name_in(&self, ctx: &RequestContext, input: &Value) -> Result<(String, String, String), AwsError> {
        let id = str_of(input, "FunctionName")?.ok_or_else(|| invalid("FunctionName is required."))?;
        parse_function_id(id, &ctx.region, &ctx.account_id)
            .ok_or_else(|| invalid(format!("{id} is not a function name or ARN.")))
    }

    async fn create(&self, ctx: &RequestContext, input: &Value) -> Result<Value, AwsError> {
        let name = str_of(input, "FunctionName")?.ok_or_else(|| invalid("FunctionName is required."))?;
        if !valid_name(name) {
            return Err(invalid(
                "FunctionName must be 1 to 64 letters, digits, hyphens or underscores.",
            ));
        }
        let description = str_of(input, "Description")?.map(str::to_string);
        if description.as_ref().is_some_and(|d| d.chars().count() > 256) {
            return Err(invalid("Description must be at most 256 characters."));
        }
        let (http, command) = (input.get("Http"), input.get("Command"));
        let mut signing_secret = None;
        let spec = match (http, command) {
            (Some(h), None) => {
                let url = str_of(h, "Url")?.ok_or_else(|| invalid("Http.Url is required."))?;
                let parsed = reqwest::Url::parse(url).map_err(|_| invalid(format!("Http.Url {url} is not a URL.")))?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(invalid("Http.Url must be an http or https URL."));
                }
                let key = coffer_crypto::random::secret_bytes(32).map_err(|e| AwsError::internal(e.to_string()))?;
                let encoded = base64::engine::general_purpose::STANDARD.encode(key.expose());
                signing_secret = Some(encoded.clone());
                FunctionSpec::Http {
                    url: url.to_string(),
                    timeout_secs: timeout_of(h.get("TimeoutSeconds"))?,
                    signing_key: encoded,
                }
            }
            (None, Some(c)) => {
                let path = str_of(c, "Path")?.filter(|p| !p.is_empty());
                let path = path.ok_or_else(|| invalid("Command.Path is required."))?;
                let args = match c.get("Args") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) => a
                        .iter()
                        .map(|v| v.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| AwsError::serialization("Command.Args must be a list of strings"))?,
                    Some(_) => return Err(AwsError::serialization("Command.Args must be a list of strings")),
                };
                FunctionSpec::Command {
                    path: path.to_string(),
                    args,
                    timeout_secs: timeout_of(c.get("TimeoutSeconds"))?,
                }
            }
            _ => return Err(invalid("Give exactly one of Http and Command.")),
        };
        let arn = function_arn(&ctx.region, &ctx.account_id, name);
        if BuiltIn::from_function_name(name).is_some() || self.load(&ctx.account_id, &ctx.region, name).await?.is_some()
        {
            return Err(AwsError::new(
                AwsErrorCode::ResourceConflictException,
                format!("Function already exist: {name}"),
            ));
        }
        let rec = FunctionRecord {
            name: name.to_string(),
            account_id: ctx.account_id.clone(),
            region: ctx.region.clone(),
            description,
            spec,
            created_ms: now_ms(ctx),
        };
        let bytes = serde_json::to_vec(&rec).map_err(|e| AwsError::internal(e.to_string()))?;
        self.storage
            .put(
                &Self::key(&ctx.account_id, &ctx.region, name),
                coffer_crypto::SecretBytes::new(bytes),
            )
            .await?;
        tracing::info!(function = %arn, "rotation function registered");
        let mut out = describe(&ctx.region, &ctx.account_id, name, &Function::Stored(Box::new(rec)));
        if let (Some(s), Some(o)) = (signing_secret, out.as_object_mut()) {
            o.insert("SigningSecret".into(), Value::String(s));
        }
        Ok(out)
    }
}

/// A function as the API shows it (never its signing key).
fn describe(region: &str, account: &str, name: &str, f: &Function) -> Value {
    let mut out = json!({
        "FunctionName": name,
        "FunctionArn": function_arn(region, account, name),
    });
    let Some(o) = out.as_object_mut() else { return out };
    match f {
        Function::BuiltIn(_) => {
            o.insert("Type".into(), json!("builtin"));
        }
        Function::Stored(rec) => {
            if let Some(d) = &rec.description {
                o.insert("Description".into(), json!(d));
            }
            o.insert("CreatedDate".into(), json!(rec.created_ms as f64 / 1000.0));
            match &rec.spec {
                FunctionSpec::Http { url, timeout_secs, .. } => {
                    o.insert("Type".into(), json!("http"));
                    o.insert("Http".into(), json!({ "Url": url, "TimeoutSeconds": timeout_secs }));
                }
                FunctionSpec::Command {
                    path,
                    args,
                    timeout_secs,
                } => {
                    o.insert("Type".into(), json!("command"));
                    o.insert(
                        "Command".into(),
                        json!({ "Path": path, "Args": args, "TimeoutSeconds": timeout_secs }),
                    );
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_ids_parse_as_arns_or_names() {
        assert_eq!(
            parse_function_id("arn:aws:lambda:us-east-1:111122223333:function:rot", "eu-west-1", "1"),
            Some(("us-east-1".into(), "111122223333".into(), "rot".into()))
        );
        assert_eq!(
            parse_function_id("arn:aws:lambda:us-east-1:111122223333:function:rot:$LATEST", "x", "1"),
            Some(("us-east-1".into(), "111122223333".into(), "rot".into()))
        );
        assert_eq!(
            parse_function_id("rot_1", "eu-west-1", "111122223333"),
            Some(("eu-west-1".into(), "111122223333".into(), "rot_1".into()))
        );
        assert_eq!(parse_function_id("arn:aws:lambda:us-east-1:1:layer:x", "r", "a"), None);
        assert_eq!(parse_function_id("bad name", "r", "a"), None);
    }
}
