//! STS: `AssumeRole` (temporary credentials for a role, after a pluggable trust decision)
//! and `GetCallerIdentity`.
//!
//! A session is stored under its access key id (`ASIA...`) with the secret (through the
//! storage view, behind the barrier) and only the SHA-256 of the session token: the token
//! is a 256-character random string, so a fast hash is enough to make the stored form
//! useless to a reader.

use async_trait::async_trait;
use coffer_engines::{AwsError, RequestContext};
use coffer_storage::Write;
use serde_json::Value;

use crate::IamEngine;
use crate::errors;
use crate::model::{self, EntityKind, SessionRecord, Tag};
use crate::params::{self, Params};
use crate::validate::PolicyKind;
use crate::xml::Xml;

/// Bounds of `DurationSeconds`.
const MIN_DURATION: i64 = 900;
const DEFAULT_DURATION: i64 = 3600;
/// Role chaining (a role session assuming a role) is limited to one hour.
const CHAINED_MAX_DURATION: i64 = 3600;
const MAX_SESSION_TAGS: usize = 50;
const MAX_POLICY_ARNS: usize = 10;

/// What a trust decision is asked about.
pub struct TrustRequest<'a> {
    /// The caller (its account and ARN).
    pub caller: &'a RequestContext,
    pub role_arn: &'a str,
    /// The role's account.
    pub role_account: &'a str,
    /// The role's trust policy document.
    pub trust_policy: &'a str,
    pub session_name: &'a str,
    /// Session tags requested (they need `sts:TagSession` in the trust policy).
    pub tags: &'a [Tag],
    pub external_id: Option<&'a str>,
    pub source_identity: Option<&'a str>,
}

/// Decides whether a role's trust policy (and the caller's own permissions) allow the
/// caller to assume it. The policy evaluator implements this at wiring time.
#[async_trait]
pub trait TrustCheck: Send + Sync + 'static {
    async fn allows(&self, request: &TrustRequest<'_>) -> Result<bool, AwsError>;
}

/// A stand-in until the evaluator is wired: allows when an `Allow` statement for
/// `sts:AssumeRole` (or `sts:*`/`*`) names the caller in `Principal.AWS` (its ARN, its
/// account's root ARN, its account id, or `*`) and no `Deny` statement does.
/// Conditions are not evaluated (a statement with a `Condition` is skipped for Allow and
/// honoured for Deny, to stay on the safe side).
#[derive(Clone, Copy, Debug, Default)]
pub struct BasicTrustCheck;

fn as_strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    }
}

#[async_trait]
impl TrustCheck for BasicTrustCheck {
    async fn allows(&self, req: &TrustRequest<'_>) -> Result<bool, AwsError> {
        let Ok(doc) = serde_json::from_str::<Value>(req.trust_policy) else {
            return Ok(false);
        };
        let statements: Vec<&Value> = match doc.get("Statement") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(o @ Value::Object(_)) => vec![o],
            _ => return Ok(false),
        };
        let caller_arn = req.caller.principal_arn.as_str();
        let account = req.caller.account_id.as_str();
        let root = model::root_arn(account);
        let mut allowed = false;
        for st in statements {
            let actions = as_strings(st.get("Action"));
            if !actions
                .iter()
                .any(|a| a == "*" || a.eq_ignore_ascii_case("sts:*") || a.eq_ignore_ascii_case("sts:AssumeRole"))
            {
                continue;
            }
            let principals: Vec<String> = match st.get("Principal") {
                Some(Value::String(s)) if s == "*" => vec!["*".into()],
                Some(Value::Object(m)) => as_strings(m.get("AWS")),
                _ => Vec::new(),
            };
            let names_caller = principals
                .iter()
                .any(|p| p == "*" || p == caller_arn || *p == root || p == account);
            if !names_caller {
                continue;
            }
            match st.get("Effect").and_then(Value::as_str) {
                Some("Deny") => return Ok(false),
                Some("Allow") if st.get("Condition").is_none() => allowed = true,
                _ => {}
            }
        }
        Ok(allowed)
    }
}

/// `arn:aws:sts::<acct>:assumed-role/<role>/<session>`.
pub(crate) fn assumed_role_arn(account: &str, role: &str, session: &str) -> String {
    format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")
}

/// `arn:aws:iam::<acct>:role/<path><name>` → (account, name).
pub(crate) fn parse_role_arn(arn: &str) -> Option<(String, String)> {
    let rest = arn.strip_prefix("arn:aws:iam::")?;
    let (account, resource) = rest.split_once(':')?;
    let path_name = resource.strip_prefix("role/")?;
    let name = path_name.rsplit('/').next()?;
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return None;
    }
    Some((account.to_string(), name.to_string()))
}

/// Credentials from [`IamEngine::create_service_session`]. The secret and token are
/// secret material (no `Debug`).
pub struct ServiceCredentials {
    pub access_key_id: String,
    pub secret_access_key: coffer_crypto::SecretBytes,
    pub session_token: coffer_crypto::SecretBytes,
    /// Unix seconds.
    pub expires: i64,
}

impl IamEngine {
    /// STS AssumeRole.
    pub(crate) async fn assume_role_action(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let role_arn = p.required("RoleArn", "roleArn")?;
        params::check_len(role_arn, "roleArn", 20, 2048)?;
        let session_name = p.required("RoleSessionName", "roleSessionName")?;
        params::check_len(session_name, "roleSessionName", 2, 64)?;
        params::check_name(session_name, "roleSessionName", 64)?;
        let duration = p.int("DurationSeconds", "durationSeconds")?;
        if let Some(d) = duration
            && d < MIN_DURATION
        {
            return Err(errors::validation(format!(
                "1 validation error detected: Value '{d}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to {MIN_DURATION}"
            )));
        }
        let session_policy = p.get("Policy").filter(|s| !s.is_empty());
        if let Some(doc) = session_policy {
            self.check_document(doc, PolicyKind::Session)?;
        }
        let policy_arns = p.string_list_of_structs("PolicyArns", "arn");
        if policy_arns.len() > MAX_POLICY_ARNS {
            return Err(errors::validation(format!(
                "1 validation error detected: Value at 'policyArns' failed to satisfy constraint: Member must have length less than or equal to {MAX_POLICY_ARNS}"
            )));
        }
        let tags = p.tags("Tags")?;
        if tags.len() > MAX_SESSION_TAGS {
            return Err(errors::validation(format!(
                "1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to {MAX_SESSION_TAGS}"
            )));
        }
        let denied = || {
            errors::access_denied(format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                ctx.principal_arn
            ))
        };
        let Some((role_account, role_name)) = parse_role_arn(role_arn) else {
            return Err(denied());
        };
        let role = self
            .load_entity(&role_account, EntityKind::Role, &role_name)
            .await?
            .filter(|r| r.arn == role_arn)
            .ok_or_else(denied)?;
        let max = if ctx.principal_arn.starts_with("arn:aws:sts::") {
            CHAINED_MAX_DURATION
        } else {
            role.max_session_duration.unwrap_or(DEFAULT_DURATION)
        };
        let duration = duration.unwrap_or(DEFAULT_DURATION.min(max));
        if duration > max {
            return Err(errors::validation(
                if max == CHAINED_MAX_DURATION && ctx.principal_arn.starts_with("arn:aws:sts::") {
                    "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
                        .to_string()
                } else {
                    "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.".to_string()
                },
            ));
        }
        let trust_policy = role.trust_policy.clone().unwrap_or_default();
        let request = TrustRequest {
            caller: ctx,
            role_arn,
            role_account: &role_account,
            trust_policy: &trust_policy,
            session_name,
            tags: &tags,
            external_id: p.get("ExternalId"),
            source_identity: p.get("SourceIdentity"),
        };
        if !self.trust.allows(&request).await? {
            return Err(denied());
        }

        let akid = model::new_access_key_id("ASIA")?;
        let secret = model::new_secret()?;
        let token = model::new_session_token()?;
        let now = ctx.now.unix_timestamp();
        let expires = now + duration;
        let rec = SessionRecord {
            access_key_id: akid.clone(),
            account_id: role_account.clone(),
            secret: model::encode_secret(&secret),
            token_sha256: coffer_crypto::hash::sha256_hex(token.expose()),
            expires,
            created: now,
            role_arn: role.arn.clone(),
            role_id: role.id.clone(),
            role_name: role.name.clone(),
            session_name: session_name.to_string(),
            session_policy: session_policy.map(str::to_string),
            policy_arns,
            tags,
            source_arn: ctx.principal_arn.clone(),
            service_policy: None,
        };
        self.commit(vec![Write::put(model::session_key(&akid), model::to_bytes(&rec)?)])
            .await?;
        let secret_text = String::from_utf8_lossy(secret.expose()).into_owned();
        let token_text = String::from_utf8_lossy(token.expose()).into_owned();
        let mut x = Xml::new();
        x.nest("Credentials", |x| {
            x.el("AccessKeyId", &akid)
                .el("SecretAccessKey", &secret_text)
                .el("SessionToken", &token_text)
                .el("Expiration", &model::iso(expires));
        });
        x.nest("AssumedRoleUser", |x| {
            x.el("AssumedRoleId", &format!("{}:{session_name}", role.id))
                .el("Arn", &assumed_role_arn(&role_account, &role.name, session_name));
        });
        x.el("PackedPolicySize", "0");
        x.opt("SourceIdentity", p.get("SourceIdentity"));
        Ok(x.finish())
    }

    /// Short-lived credentials Coffer issues to itself, e.g. for a rotation function: a
    /// session of the (not stored) role `role_name` in `account_id`, allowed exactly what
    /// `policy` allows, for `duration_secs`. Delete it with
    /// [`delete_service_session`](Self::delete_service_session) when done.
    pub async fn create_service_session(
        &self,
        account_id: &str,
        role_name: &str,
        session_name: &str,
        policy: &str,
        duration_secs: i64,
        now: time::OffsetDateTime,
    ) -> Result<ServiceCredentials, AwsError> {
        let akid = model::new_access_key_id("ASIA")?;
        let secret = model::new_secret()?;
        let token = model::new_session_token()?;
        let created = now.unix_timestamp();
        let expires = created + duration_secs;
        let rec = SessionRecord {
            access_key_id: akid.clone(),
            account_id: account_id.to_string(),
            secret: model::encode_secret(&secret),
            token_sha256: coffer_crypto::hash::sha256_hex(token.expose()),
            expires,
            created,
            role_arn: format!("arn:aws:iam::{account_id}:role/{role_name}"),
            role_id: format!("AROA{}", role_name.to_ascii_uppercase().replace('-', "")),
            role_name: role_name.to_string(),
            session_name: session_name.to_string(),
            session_policy: None,
            policy_arns: Vec::new(),
            tags: Vec::new(),
            source_arn: "coffer".to_string(),
            service_policy: Some(policy.to_string()),
        };
        self.commit(vec![Write::put(model::session_key(&akid), model::to_bytes(&rec)?)])
            .await?;
        Ok(ServiceCredentials {
            access_key_id: akid,
            secret_access_key: secret,
            session_token: token,
            expires,
        })
    }

    /// Removes a session made by [`create_service_session`](Self::create_service_session);
    /// its credentials stop working at once.
    pub async fn delete_service_session(&self, access_key_id: &str) -> Result<(), AwsError> {
        self.commit(vec![Write::delete(model::session_key(access_key_id))])
            .await
    }

    /// STS GetCallerIdentity, from `ctx.principal_arn`.
    pub(crate) async fn get_caller_identity(&self, ctx: &RequestContext) -> Result<String, AwsError> {
        let arn = ctx.principal_arn.as_str();
        let account = ctx.account_id.as_str();
        let user_id = if arn == model::root_arn(account) {
            account.to_string()
        } else if let Some(rest) = arn.strip_prefix(&format!("arn:aws:iam::{account}:user/")) {
            let name = rest.rsplit('/').next().unwrap_or(rest);
            self.load_entity(account, EntityKind::User, name)
                .await?
                .map(|u| u.id)
                .unwrap_or_default()
        } else if let Some(rest) = arn.strip_prefix(&format!("arn:aws:sts::{account}:assumed-role/")) {
            let (role, session) = rest.split_once('/').unwrap_or((rest, ""));
            let role_id = self
                .load_entity(account, EntityKind::Role, role)
                .await?
                .map(|r| r.id)
                .unwrap_or_default();
            format!("{role_id}:{session}")
        } else {
            String::new()
        };
        let mut x = Xml::new();
        x.el("Arn", arn).el("UserId", &user_id).el("Account", account);
        Ok(x.finish())
    }
}
