//! Authorization of every AWS request (JSON and Query protocols).
//!
//! Each operation is authorized as its IAM action on its resource ARNs, from the catalogue of
//! `coffer-policy` ([`coffer_policy::action_for`]). The caller's identity policies (from the IAM
//! engine, compiled once per principal and IAM generation), the secret's resource policy (or,
//! for `sts:AssumeRole`, the role's trust policy) and the KMS key policy are evaluated
//! together by [`coffer_policy::evaluate`]: explicit deny > allow > implicit deny.
//!
//! - The account root is allowed everything in its account except what an explicit `Deny` in
//!   a resource or key policy forbids.
//! - A secret that does not exist is authorized against the ARN pattern of its name *before*
//!   the engine runs, so a denied caller never learns whether it exists.
//! - `GetSecretValue` of a secret under a customer managed key also needs `kms:Decrypt` on
//!   that key (with `kms:ViaService`), as in AWS.
//! - Session policies of assumed-role sessions bound the role's policies (both must allow).
//!
//! Resource look-ups go through the engines' own read operations in the caller's account and
//! region, so they see exactly what the operation will see.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_iam::{Principal, PrincipalKind, TrustCheck, TrustRequest};
use coffer_policy::{
    AuthzRequest, CompiledPolicy, Decision, DecisionEffect, Effect, PolicyDocument, PolicyKind, ResourceType,
    RoleSession,
};
use parking_lot::RwLock;
use serde_json::Value;

use crate::{AwsService, Core, CoreError};

/// Facts about the connection a request arrived on, for condition keys.
#[derive(Clone, Debug, Default)]
pub struct RequestEnv {
    /// The peer address (`aws:SourceIp`).
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
}

/// The real policy grammar as the IAM engine's validator.
pub(crate) struct PolicyParser;

impl coffer_iam::PolicyValidator for PolicyParser {
    fn validate(&self, doc: &str, kind: coffer_iam::PolicyKind) -> Result<(), String> {
        let kind = match kind {
            coffer_iam::PolicyKind::Trust => PolicyKind::Trust,
            _ => PolicyKind::Identity,
        };
        PolicyDocument::parse_json(doc, kind)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// AssumeRole's trust decision with the evaluator's statement matching: an applicable `Allow`
/// in the trust policy naming the caller or its account, and no applicable `Deny`. The caller's
/// own `sts:AssumeRole` permission (needed when the trust policy names only the account) is
/// checked by the core before the engine runs.
pub(crate) struct TrustEvaluator;

#[async_trait]
impl TrustCheck for TrustEvaluator {
    async fn allows(&self, req: &TrustRequest<'_>) -> Result<bool, AwsError> {
        let Ok(policy) = coffer_policy::compile_json(req.trust_policy, PolicyKind::Trust, "trust-policy") else {
            return Ok(false);
        };
        let principal = principal_from_arn(&req.caller.account_id, &req.caller.principal_arn);
        let mut r = AuthzRequest::new(principal, "sts:AssumeRole", req.role_arn, req.role_account);
        r.context.set_current_time(req.caller.now);
        r.context.insert("sts:RoleSessionName", req.session_name);
        if let Some(e) = req.external_id {
            r.context.insert("sts:ExternalId", e);
        }
        if let Some(s) = req.source_identity {
            r.context.insert("sts:SourceIdentity", s);
        }
        for t in req.tags {
            r.context.insert(&format!("aws:RequestTag/{}", t.key), t.value.clone());
        }
        r.context
            .insert_multi("aws:TagKeys", req.tags.iter().map(|t| t.key.clone()));
        let mut allowed = false;
        for st in &policy.statements {
            if st.applies(&r).is_some() {
                match st.effect {
                    Effect::Deny => return Ok(false),
                    Effect::Allow => allowed = true,
                }
            }
        }
        Ok(allowed)
    }
}

/// The evaluator's view of a caller known only by ARN (the trust check's).
fn principal_from_arn(account: &str, arn: &str) -> coffer_policy::Principal {
    let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
    let mut p = coffer_policy::Principal::root(account);
    p.arn = arn.to_string();
    p.is_root = false;
    p.user_id = None;
    if let Some(user) = resource.strip_prefix("user/") {
        p.username = Some(user.rsplit('/').next().unwrap_or(user).to_string());
    } else if let Some(rest) = resource.strip_prefix("assumed-role/")
        && let Some((role, session)) = rest.split_once('/')
    {
        p.session = Some(RoleSession {
            role_arn: format!("arn:aws:iam::{account}:role/{role}"),
            session_name: session.to_string(),
        });
    }
    p
}

/// The evaluator's view of an authenticated caller.
pub(crate) fn policy_principal(p: &Principal) -> coffer_policy::Principal {
    coffer_policy::Principal {
        arn: p.arn.clone(),
        account_id: p.account_id.clone(),
        is_root: p.is_root(),
        user_id: Some(p.user_id()),
        username: match &p.kind {
            PrincipalKind::User { name, .. } => Some(name.clone()),
            _ => None,
        },
        tags: p.tags.iter().map(|t| (t.key.clone(), t.value.clone())).collect(),
        session: match &p.kind {
            PrincipalKind::AssumedRole {
                role_arn, session_name, ..
            } => Some(RoleSession {
                role_arn: role_arn.clone(),
                session_name: session_name.clone(),
            }),
            _ => None,
        },
    }
}

/// A principal's compiled identity policies: those that grant, and the session policies that
/// bound them.
#[derive(Default)]
pub(crate) struct IdentityPolicies {
    grants: Vec<CompiledPolicy>,
    session: Vec<CompiledPolicy>,
}

/// Compiled identity policies by principal, valid for one IAM generation.
#[derive(Default)]
pub(crate) struct PolicyCache {
    entries: RwLock<HashMap<String, (u64, Arc<IdentityPolicies>)>>,
    /// Resource and key policies compiled, by kind and document text: a secret's or key's
    /// policy is read on every request but changes rarely, and the text is the whole input
    /// of compilation, so an entry never goes stale (a document that does not compile is
    /// remembered as `None`).
    documents: RwLock<Documents>,
}

/// The compiled documents by kind and text (a map per kind, so a lookup borrows the text
/// rather than copying it), and the bytes of document text they hold.
#[derive(Default)]
struct Documents {
    compiled: HashMap<PolicyKind, HashMap<String, CompiledDocument>>,
    text_bytes: usize,
}

impl Documents {
    fn len(&self) -> usize {
        self.compiled.values().map(HashMap::len).sum()
    }
}

/// A resource or key policy document compiled once; `None` when it does not compile.
type CompiledDocument = Option<Arc<CompiledPolicy>>;

/// Above this many principals (or documents) a cache starts over.
const POLICY_CACHE_MAX: usize = 10_000;
/// The document cache also starts over above this much document text (a key policy may be
/// 32 KB: the count alone would not bound the memory).
const DOCUMENT_CACHE_MAX_BYTES: usize = 8 << 20;

impl PolicyCache {
    pub(crate) fn clear(&self) {
        self.entries.write().clear();
        *self.documents.write() = Documents::default();
    }

    /// `doc` compiled as a `kind` policy (from the cache when it was seen before); `None`
    /// when it does not compile.
    fn compiled(&self, kind: PolicyKind, doc: &str, name: &str) -> CompiledDocument {
        if let Some(found) = self.documents.read().compiled.get(&kind).and_then(|m| m.get(doc)) {
            return found.clone();
        }
        let compiled = coffer_policy::compile_json(doc, kind, name).ok().map(Arc::new);
        let mut documents = self.documents.write();
        if documents.len() >= POLICY_CACHE_MAX || documents.text_bytes + doc.len() > DOCUMENT_CACHE_MAX_BYTES {
            *documents = Documents::default();
        }
        let of_kind = documents.compiled.entry(kind).or_default();
        if of_kind.insert(doc.to_string(), compiled.clone()).is_none() {
            documents.text_bytes += doc.len();
        }
        compiled
    }
}

/// One authorization question the core asks the evaluator.
struct Check {
    action: String,
    resource: String,
    resource_account: String,
    resource_policy: Option<Arc<CompiledPolicy>>,
    key_policy: Option<Arc<CompiledPolicy>>,
    context: Vec<(String, String)>,
    /// The resource as a denial names it, when that must differ from `resource` (a secret is
    /// named as the caller named it, so a denial says nothing about whether it exists).
    shown: Option<String>,
}

impl Check {
    fn new(action: &str, resource: String, account: &str) -> Self {
        Self {
            action: action.to_string(),
            resource,
            resource_account: account.to_string(),
            resource_policy: None,
            key_policy: None,
            context: Vec::new(),
            shown: None,
        }
    }
}

/// What a secret look-up found.
struct SecretFacts {
    arn: String,
    /// The account that owns the secret (from its ARN).
    account: String,
    kms_key_id: Option<String>,
    tags: Vec<(String, String)>,
    policy: Option<Arc<CompiledPolicy>>,
}

/// What a KMS key look-up found.
struct KeyFacts {
    arn: String,
    policy: Option<Arc<CompiledPolicy>>,
}

fn str_field<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// AWS's message for a denial: it names the caller, the action and the resource, and nothing
/// about whether the resource exists.
fn denial(query: bool, caller: &str, action: &str, resource: &str, decision: &Decision) -> AwsError {
    let why = if decision.effect == DecisionEffect::ExplicitDeny {
        match decision.statements.first().map(|s| s.source) {
            Some(coffer_policy::PolicySource::Identity) | None => {
                "with an explicit deny in an identity-based policy".to_string()
            }
            Some(_) => "with an explicit deny in a resource-based policy".to_string(),
        }
    } else {
        format!("because no identity-based policy allows the {action} action")
    };
    let code = if query {
        AwsErrorCode::AccessDenied
    } else {
        AwsErrorCode::AccessDeniedException
    };
    AwsError::new(
        code,
        format!("User: {caller} is not authorized to perform: {action} on resource: {resource} {why}"),
    )
}

impl Core {
    /// The compiled identity policies of `principal` (cached per IAM generation).
    async fn identity_policies(&self, principal: &Principal) -> Result<Arc<IdentityPolicies>, CoreError> {
        if principal.is_root() {
            return Ok(Arc::new(IdentityPolicies::default()));
        }
        let cache_key = match &principal.kind {
            PrincipalKind::AssumedRole { access_key_id, .. } => format!("{}|{access_key_id}", principal.arn),
            _ => principal.arn.clone(),
        };
        let generation = self.iam.generation();
        if let Some((g, p)) = self.policy_cache.entries.read().get(&cache_key)
            && *g == generation
        {
            return Ok(p.clone());
        }
        let mut out = IdentityPolicies::default();
        for (i, p) in self.iam.principal_policies(principal).await?.into_iter().enumerate() {
            let name = match &p.source {
                coffer_iam::PolicySource::Inline { name, .. } => name.clone(),
                coffer_iam::PolicySource::Attached { policy_arn, .. } => policy_arn.clone(),
                coffer_iam::PolicySource::SessionInline => "session-policy".to_string(),
                coffer_iam::PolicySource::SessionManaged { policy_arn } => policy_arn.clone(),
            };
            // Documents were validated by the same parser when stored; one that no longer
            // compiles fails the request rather than being silently skipped (it may deny).
            let compiled = coffer_policy::compile_json(&p.document, PolicyKind::Identity, &name).map_err(|e| {
                CoreError::Internal(format!("stored policy {i} of {} does not compile: {e}", principal.arn))
            })?;
            if p.source.is_session_policy() {
                out.session.push(compiled);
            } else {
                out.grants.push(compiled);
            }
        }
        let out = Arc::new(out);
        let mut cache = self.policy_cache.entries.write();
        if cache.len() >= POLICY_CACHE_MAX {
            cache.clear();
        }
        cache.insert(cache_key, (generation, out.clone()));
        Ok(out)
    }

    /// Decides one check; `Err` is the denial to return.
    fn decide(
        &self,
        principal: &Principal,
        identity: &IdentityPolicies,
        check: &Check,
        ctx: &RequestContext,
        env: &RequestEnv,
        query: bool,
    ) -> Result<(), AwsError> {
        let mut req = AuthzRequest::new(
            policy_principal(principal),
            &check.action,
            &check.resource,
            &check.resource_account,
        );
        req.context.set_current_time(ctx.now);
        req.context.insert(
            "aws:SecureTransport",
            if env.secure_transport { "true" } else { "false" },
        );
        if let Some(ip) = env.source_ip {
            req.context.insert("aws:SourceIp", ip.to_string());
        }
        req.context.insert("aws:RequestedRegion", ctx.region.clone());
        for (k, v) in &check.context {
            req.context.insert(k, v.clone());
        }
        let grants: Vec<&CompiledPolicy> = identity.grants.iter().collect();
        let mut decision = coffer_policy::evaluate(
            &req,
            &grants,
            check.resource_policy.as_deref(),
            check.key_policy.as_deref(),
        );
        if !identity.session.is_empty() && decision.effect != DecisionEffect::ExplicitDeny {
            let session: Vec<&CompiledPolicy> = identity.session.iter().collect();
            let bound = coffer_policy::evaluate(&req, &session, None, None);
            if !bound.is_allowed() {
                decision = bound;
            }
        }
        let allowed = if principal.is_root() {
            // The root is allowed in its own account unless explicitly denied; elsewhere it
            // needs what anyone needs (the other account's resource policy).
            decision.effect != DecisionEffect::ExplicitDeny
                && (check.resource_account == principal.account_id || decision.is_allowed())
        } else {
            decision.is_allowed()
        };
        if allowed {
            return Ok(());
        }
        tracing::debug!(
            principal = %principal.arn,
            action = %check.action,
            resource = %check.resource,
            reason = ?decision.reason,
            "request denied"
        );
        let shown = check.shown.as_deref().unwrap_or(&check.resource);
        Err(denial(query, &principal.arn, &check.action, shown, &decision))
    }

    /// Authorizes one JSON-protocol request before it reaches its engine.
    pub(crate) async fn authorize_aws(
        &self,
        principal: &Principal,
        ctx: &RequestContext,
        service: AwsService,
        operation: &str,
        input: &Value,
        env: &RequestEnv,
    ) -> Result<(), CoreError> {
        let checks = match service {
            AwsService::CloudTrail => vec![Check::new(
                &format!("cloudtrail:{operation}"),
                "*".into(),
                &ctx.account_id,
            )],
            AwsService::Rotation => self.rotation_checks(ctx, operation, input).await,
            _ => self.aws_checks(principal, ctx, service, operation, input).await?,
        };
        self.run_checks(principal, ctx, &checks, env, false).await
    }

    /// Authorizes one IAM or STS (Query protocol) request.
    pub(crate) async fn authorize_query(
        &self,
        principal: &Principal,
        ctx: &RequestContext,
        service: &str,
        action: &str,
        params: &[(String, String)],
        env: &RequestEnv,
    ) -> Result<(), CoreError> {
        let param = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .filter(|v| !v.is_empty())
        };
        let Some(spec) = coffer_policy::action_for(service, action) else {
            // Unknown actions: the engine answers InvalidAction; nothing to protect.
            return Ok(());
        };
        if !spec.requires_authorization {
            return Ok(());
        }
        let account = ctx.account_id.as_str();
        let own_user = match &principal.kind {
            PrincipalKind::User { name, .. } => Some(name.as_str()),
            _ => None,
        };
        let mut checks = Vec::new();
        if spec.resources.is_empty() {
            checks.push(Check::new(spec.action, "*".into(), account));
        }
        for rt in spec.resources {
            let check = match rt {
                ResourceType::User => {
                    let name = param("UserName").or(own_user).unwrap_or("");
                    Check::new(spec.action, rt.arn("aws", "", account, name), account)
                }
                ResourceType::Group => Check::new(
                    spec.action,
                    rt.arn("aws", "", account, param("GroupName").unwrap_or("")),
                    account,
                ),
                ResourceType::Policy => {
                    let arn = param("PolicyArn")
                        .map(str::to_string)
                        .unwrap_or_else(|| rt.arn("aws", "", account, param("PolicyName").unwrap_or("")));
                    Check::new(spec.action, arn, account)
                }
                ResourceType::Role if service == "sts" => {
                    let arn = param("RoleArn").unwrap_or("").to_string();
                    let role_account = arn.split(':').nth(4).unwrap_or(account).to_string();
                    let mut c = Check::new(spec.action, arn.clone(), &role_account);
                    if let Some(doc) = self.iam.role_trust_policy(&arn).await? {
                        c.resource_policy = self.policy_cache.compiled(PolicyKind::Trust, &doc, "trust-policy");
                    }
                    if let Some(s) = param("RoleSessionName") {
                        c.context.push(("sts:RoleSessionName".into(), s.to_string()));
                    }
                    if let Some(s) = param("ExternalId") {
                        c.context.push(("sts:ExternalId".into(), s.to_string()));
                    }
                    c
                }
                _ => Check::new(
                    spec.action,
                    rt.arn("aws", "", account, param("RoleName").unwrap_or("")),
                    account,
                ),
            };
            checks.push(check);
        }
        self.run_checks(principal, ctx, &checks, env, true).await
    }

    /// `CofferRotation.*`: functions as `lambda:<Operation>` on the function ARN (ListFunctions
    /// on `*`); a secret's rotation status as `secretsmanager:DescribeSecret` on the secret.
    async fn rotation_checks(&self, ctx: &RequestContext, operation: &str, input: &Value) -> Vec<Check> {
        let account = ctx.account_id.as_str();
        if operation == "GetRotationStatus" {
            let facts = self.secret_facts(ctx, str_field(input, "SecretId").unwrap_or("")).await;
            return vec![self.secret_check("secretsmanager:DescribeSecret", &facts, input, account)];
        }
        let resource = match str_field(input, "FunctionName") {
            Some(id) if id.starts_with("arn:") => id.to_string(),
            Some(name) => format!("arn:aws:lambda:{}:{account}:function:{name}", ctx.region),
            None => "*".to_string(),
        };
        vec![Check::new(&format!("lambda:{operation}"), resource, account)]
    }

    async fn run_checks(
        &self,
        principal: &Principal,
        ctx: &RequestContext,
        checks: &[Check],
        env: &RequestEnv,
        query: bool,
    ) -> Result<(), CoreError> {
        let identity = self.identity_policies(principal).await?;
        for check in checks {
            self.decide(principal, &identity, check, ctx, env, query)?;
        }
        Ok(())
    }

    /// The checks of one JSON-protocol operation.
    async fn aws_checks(
        &self,
        principal: &Principal,
        ctx: &RequestContext,
        service: AwsService,
        operation: &str,
        input: &Value,
    ) -> Result<Vec<Check>, CoreError> {
        let svc = service.signing_name();
        let account = ctx.account_id.as_str();
        let Some(spec) = coffer_policy::action_for(svc, operation) else {
            // Not in the catalogue: the engine answers UnknownOperation. Non-root callers are
            // still checked on `*`, so nothing unlisted runs unauthorized.
            return Ok(vec![Check::new(&format!("{svc}:{operation}"), "*".into(), account)]);
        };
        if !spec.requires_authorization {
            return Ok(Vec::new());
        }
        let mut checks = Vec::new();
        if spec.resources.is_empty() {
            checks.push(Check::new(spec.action, "*".into(), account));
        }
        let mut key_facts: Option<Option<KeyFacts>> = None;
        for rt in spec.resources {
            match rt {
                ResourceType::Secret => {
                    let id = str_field(input, "SecretId")
                        .or_else(|| str_field(input, "Name"))
                        .unwrap_or("");
                    let facts = self.secret_facts(ctx, id).await;
                    checks.push(self.secret_check(spec.action, &facts, input, account));
                    if operation == "GetSecretValue"
                        && let Some(key_id) = &facts.kms_key_id
                    {
                        checks.push(self.decrypt_via_secrets(ctx, key_id, &facts.arn).await);
                    }
                }
                ResourceType::Parameter => {
                    let mut names: Vec<String> = Vec::new();
                    for field in ["Name", "Path", "ResourceId"] {
                        if let Some(n) = str_field(input, field) {
                            names.push(n.to_string());
                        }
                    }
                    if let Some(list) = input.get("Names").and_then(Value::as_array) {
                        names.extend(list.iter().filter_map(Value::as_str).map(str::to_string));
                    }
                    if names.is_empty() {
                        names.push(String::new());
                    }
                    for n in names {
                        // The parameter the engine will act on, not the text as sent.
                        let arn = coffer_ssm::authz_parameter_arn(ctx, &n)
                            .unwrap_or_else(|| rt.arn("aws", &ctx.region, account, &n));
                        checks.push(Check::new(spec.action, arn, account));
                        // A Secrets Manager reference reads the secret: that needs what
                        // GetSecretValue needs.
                        if let Some(id) = coffer_ssm::referenced_secret(&n)
                            && matches!(operation, "GetParameter" | "GetParameters")
                        {
                            let facts = self.secret_facts(ctx, &id).await;
                            let input = serde_json::json!({ "SecretId": id });
                            checks.push(self.secret_check("secretsmanager:GetSecretValue", &facts, &input, account));
                            if let Some(key_id) = &facts.kms_key_id {
                                checks.push(self.decrypt_via_secrets(ctx, key_id, &facts.arn).await);
                            }
                        }
                    }
                }
                ResourceType::Alias => {
                    let name = str_field(input, "AliasName").unwrap_or("");
                    checks.push(Check::new(
                        spec.action,
                        rt.arn("aws", &ctx.region, account, name),
                        account,
                    ));
                }
                ResourceType::Key => {
                    if key_facts.is_none() {
                        let id = kms_key_id(input);
                        key_facts = Some(match id {
                            Some(id) => Some(self.key_facts(ctx, &id).await),
                            None => None,
                        });
                    }
                    let mut c = match key_facts.as_ref().and_then(Option::as_ref) {
                        Some(k) => {
                            let mut c = Check::new(spec.action, k.arn.clone(), account);
                            c.key_policy = k.policy.clone();
                            c
                        }
                        None => Check::new(spec.action, rt.arn("aws", &ctx.region, account, "*"), account),
                    };
                    c.context.push(("kms:CallerAccount".into(), account.to_string()));
                    if let Some(ec) = input.get("EncryptionContext").and_then(Value::as_object) {
                        for (k, v) in ec {
                            if let Some(v) = v.as_str() {
                                c.context.push((format!("kms:EncryptionContext:{k}"), v.to_string()));
                            }
                        }
                    }
                    checks.push(c);
                }
                _ => checks.push(Check::new(spec.action, "*".into(), account)),
            }
        }
        // Passing a rotation function to Secrets Manager needs permission to invoke it.
        if operation == "RotateSecret"
            && let Some(function) = str_field(input, "RotationLambdaARN")
        {
            checks.push(Check::new("lambda:InvokeFunction", function.to_string(), account));
        }
        if operation == "BatchGetSecretValue" && !principal.is_root() {
            // Every secret returned needs GetSecretValue (and kms:Decrypt) of its own.
            match input.get("SecretIdList").and_then(Value::as_array) {
                Some(list) => {
                    for id in list.iter().filter_map(Value::as_str) {
                        let facts = self.secret_facts(ctx, id).await;
                        checks.push(self.secret_check("secretsmanager:GetSecretValue", &facts, input, account));
                        if let Some(key_id) = &facts.kms_key_id {
                            checks.push(self.decrypt_via_secrets(ctx, key_id, &facts.arn).await);
                        }
                    }
                }
                None => checks.push(Check::new(
                    "secretsmanager:GetSecretValue",
                    ResourceType::Secret.arn("aws", &ctx.region, account, "*"),
                    account,
                )),
            }
        }
        Ok(checks)
    }

    fn secret_check(&self, action: &str, facts: &SecretFacts, input: &Value, _account: &str) -> Check {
        let mut c = Check::new(action, facts.arn.clone(), &facts.account);
        c.resource_policy = facts.policy.clone();
        // A denial names the secret as the caller did: the full ARN of an existing secret
        // (with its random suffix) would tell a denied caller that it exists.
        if let Some(id) = str_field(input, "SecretId").or_else(|| str_field(input, "Name")) {
            c.shown = Some(if id.starts_with("arn:") {
                id.to_string()
            } else {
                let region = facts.arn.split(':').nth(3).unwrap_or_default();
                ResourceType::Secret.arn("aws", region, &facts.account, id)
            });
        }
        c.context.push(("secretsmanager:SecretId".into(), facts.arn.clone()));
        if let Some(stage) = str_field(input, "VersionStage") {
            c.context
                .push(("secretsmanager:VersionStage".into(), stage.to_string()));
        }
        if let Some(v) = str_field(input, "VersionId") {
            c.context.push(("secretsmanager:VersionId".into(), v.to_string()));
        }
        for (k, v) in &facts.tags {
            c.context.push((format!("aws:ResourceTag/{k}"), v.clone()));
            c.context.push((format!("secretsmanager:ResourceTag/{k}"), v.clone()));
        }
        c
    }

    /// `kms:Decrypt` on a secret's customer managed key, as Secrets Manager calls it.
    async fn decrypt_via_secrets(&self, ctx: &RequestContext, key_id: &str, secret_arn: &str) -> Check {
        let k = self.key_facts(ctx, key_id).await;
        let mut c = Check::new("kms:Decrypt", k.arn, &ctx.account_id);
        c.key_policy = k.policy;
        c.context.push((
            "kms:ViaService".into(),
            format!("secretsmanager.{}.amazonaws.com", ctx.region),
        ));
        c.context.push(("kms:CallerAccount".into(), ctx.account_id.clone()));
        c.context
            .push(("kms:EncryptionContext:SecretARN".into(), secret_arn.to_string()));
        c
    }

    /// A secret's ARN, key, tags and resource policy; for a secret that does not exist (or
    /// cannot be read), the ARN pattern of its name and nothing else.
    async fn secret_facts(&self, ctx: &RequestContext, id: &str) -> SecretFacts {
        // A full ARN may name another account: look the secret up where it lives.
        let owner = secret_owner(id, &ctx.account_id);
        let owner_ctx;
        let ctx = if owner == ctx.account_id {
            ctx
        } else {
            owner_ctx = RequestContext {
                account_id: owner.clone(),
                ..ctx.clone()
            };
            &owner_ctx
        };
        let fallback = || SecretFacts {
            account: owner.clone(),
            arn: if id.starts_with("arn:") {
                id.to_string()
            } else {
                ResourceType::Secret.arn("aws", &ctx.region, &ctx.account_id, id)
            },
            kms_key_id: None,
            tags: Vec::new(),
            policy: None,
        };
        if id.is_empty() {
            return fallback();
        }
        let Some(facts) = self.secrets.authz_facts(ctx, id).await else {
            return fallback();
        };
        SecretFacts {
            account: owner.clone(),
            kms_key_id: facts.kms_key_id,
            policy: facts.policy.and_then(|doc| {
                self.policy_cache
                    .compiled(PolicyKind::Resource, &doc, "resource-policy")
            }),
            arn: facts.arn,
            tags: facts.tags,
        }
    }

    /// A KMS key's ARN and key policy. AWS managed keys (`alias/aws/*`) and keys that cannot
    /// be found get the ARN pattern and no key policy.
    async fn key_facts(&self, ctx: &RequestContext, id: &str) -> KeyFacts {
        let pattern = || KeyFacts {
            arn: if id.starts_with("arn:") {
                id.to_string()
            } else if id.starts_with("alias/") {
                ResourceType::Alias.arn("aws", &ctx.region, &ctx.account_id, id)
            } else {
                ResourceType::Key.arn("aws", &ctx.region, &ctx.account_id, id)
            },
            policy: None,
        };
        // Describing an AWS managed alias would create its key: leave those alone.
        if id.starts_with("alias/aws/") || id.contains(":alias/aws/") {
            return pattern();
        }
        let Some(facts) = self.kms.authz_facts(ctx, id).await else {
            return pattern();
        };
        let policy = if facts.aws_managed {
            None
        } else {
            self.policy_cache
                .compiled(PolicyKind::KeyPolicy, &facts.policy, "key-policy")
        };
        KeyFacts { arn: facts.arn, policy }
    }
}

/// The account a `SecretId` belongs to: the account field of a full ARN, else `caller`.
pub(crate) fn secret_owner(id: &str, caller: &str) -> String {
    if id.starts_with("arn:")
        && let Some(account) = id.split(':').nth(4)
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
    {
        return account.to_string();
    }
    caller.to_string()
}

/// The key a KMS request names: `KeyId`, `TargetKeyId` (aliases), `SourceKeyId`, or the key
/// inside a symmetric ciphertext blob.
fn kms_key_id(input: &Value) -> Option<String> {
    for field in ["KeyId", "TargetKeyId", "SourceKeyId"] {
        if let Some(id) = str_field(input, field) {
            return Some(id.to_string());
        }
    }
    let blob = str_field(input, "CiphertextBlob")?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(blob).ok()?;
    coffer_kms::ciphertext_key_id(&bytes)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*"}]}"#;

    #[test]
    fn documents_compile_once_per_kind_and_text_and_stay_bounded() {
        let cache = PolicyCache::default();
        let a = cache.compiled(PolicyKind::Resource, DOC, "resource-policy").unwrap();
        let b = cache.compiled(PolicyKind::Resource, DOC, "resource-policy").unwrap();
        assert!(Arc::ptr_eq(&a, &b), "the second lookup compiles nothing");
        let c = cache.compiled(PolicyKind::KeyPolicy, DOC, "key-policy").unwrap();
        assert!(!Arc::ptr_eq(&a, &c), "the kind is part of the key");
        // A document that does not compile is remembered as such.
        assert!(
            cache
                .compiled(PolicyKind::Resource, "{not json", "resource-policy")
                .is_none()
        );
        assert!(
            cache
                .compiled(PolicyKind::Resource, "{not json", "resource-policy")
                .is_none()
        );
        assert_eq!(cache.documents.read().len(), 3);

        // Past the byte bound, the cache starts over rather than growing.
        let big_sid = "x".repeat(64 * 1024);
        let mut inserted = 0usize;
        for i in 0..(DOCUMENT_CACHE_MAX_BYTES / (64 * 1024) + 8) {
            let doc = DOC.replace(r#""Effect""#, &format!(r#""Sid":"{big_sid}{i}","Effect""#));
            cache.compiled(PolicyKind::Resource, &doc, "resource-policy");
            inserted += 1;
            assert!(cache.documents.read().text_bytes <= DOCUMENT_CACHE_MAX_BYTES);
        }
        assert!(cache.documents.read().len() < inserted);
        cache.clear();
        assert_eq!(cache.documents.read().len(), 0);
        assert_eq!(cache.documents.read().text_bytes, 0);
    }
}
