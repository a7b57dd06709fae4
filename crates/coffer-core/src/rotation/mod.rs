//! Rotation: the runner that drives the four steps of a rotation through its function, the
//! scheduler pass that starts due and retried rotations, the function registry, and the
//! `CofferRotation.*` API.
//!
//! The state machine itself is the Secrets Manager engine's ([`SecretsEngine::background`],
//! [`SecretsEngine::finish_rotation`]): the runner holds nothing that a restart would lose.
//! A rotation is started by RotateSecret (through the engine's [`RotationHook`]) or by the
//! scheduler pass, which runs with the background jobs (on the leader only, once several
//! nodes share storage) and also picks up rotations a crash interrupted. One secret never
//! has two rotations running in this process; at most [`MAX_CONCURRENT`] run at once.
//!
//! Every run is audited: `RotationStarted`, one `Invoke` event per step (source
//! `lambda.amazonaws.com`, with the step and function), then `RotationSucceeded` or
//! `RotationFailed` with the reason, as CloudTrail records rotations. A rotation whose start
//! cannot be audited does not run (fail closed).
//!
//! [`SecretsEngine::background`]: coffer_engines::secrets::SecretsEngine::background
//! [`SecretsEngine::finish_rotation`]: coffer_engines::secrets::SecretsEngine::finish_rotation

mod functions;
mod invoke;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use coffer_audit::{AuditEvent, IdentityType, UserIdentity};
use coffer_crypto::{SecretBytes, SecretString};
use coffer_engines::secrets::{RotationEvent, RotationHook, RotationOutcome};
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_rotators::{ApiError, BuiltIn, SecretsApi, Step, StepEvent};
use parking_lot::Mutex;
use serde_json::{Value, json};

pub(crate) use functions::FunctionRegistry;
use functions::{DEFAULT_TIMEOUT_SECS, Function, FunctionSpec};

use crate::{Core, CoreError};

/// Rotations running at once in one process.
pub const MAX_CONCURRENT: usize = 4;
/// The role name of the credentials a command function gets.
const COMMAND_ROLE: &str = "coffer-rotation";
/// Why a command function is refused when the server does not allow them.
const COMMANDS_DISABLED: &str = "Command rotation functions are disabled on this server: set [rotation] allow_command_functions = true in its configuration.";
/// Extra lifetime of a command's credentials beyond its step timeout.
const CREDENTIAL_SLACK_SECS: i64 = 60;

/// Counters for the metrics endpoint.
#[derive(Default)]
pub struct RotationStats {
    pub started: AtomicU64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
}

/// The core's rotation service.
pub(crate) struct Rotations {
    pub(crate) functions: FunctionRegistry,
    running: Mutex<HashSet<String>>,
    slots: Arc<tokio::sync::Semaphore>,
    http: reqwest::Client,
    pub(crate) stats: RotationStats,
}

impl Rotations {
    pub(crate) fn new(functions: FunctionRegistry) -> Self {
        Self {
            functions,
            running: Mutex::new(HashSet::new()),
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT)),
            http: reqwest::Client::new(),
            stats: RotationStats::default(),
        }
    }
}

/// The engine's hook: configuration checks at RotateSecret, and starting the run.
pub(crate) struct CoreRotationHook {
    pub(crate) core: Weak<Core>,
}

#[async_trait]
impl RotationHook for CoreRotationHook {
    async fn check_function(
        &self,
        ctx: &RequestContext,
        secret_arn: &str,
        lambda_arn: &str,
        current_value: Option<&SecretString>,
    ) -> Result<(), AwsError> {
        let Some(core) = self.core.upgrade() else {
            return Err(AwsError::internal("the server is shutting down"));
        };
        let (account, region) = arn_account_region(secret_arn, ctx);
        let Some(function) = core.rotations.functions.resolve(&account, &region, lambda_arn).await? else {
            return Err(AwsError::new(
                AwsErrorCode::AccessDeniedException,
                "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function policy grants access to the principal secretsmanager.amazonaws.com.",
            ));
        };
        if let Function::BuiltIn(b) = function {
            let Some(value) = current_value else {
                return Err(AwsError::invalid_request(format!(
                    "{} needs an AWSCURRENT SecretString in the RDS JSON shape (engine, host, username, password).",
                    b.function_name()
                )));
            };
            b.check_secret_shape(value.expose()).map_err(|reason| {
                AwsError::invalid_request(format!(
                    "The secret value can't be rotated by {}: {reason}",
                    b.function_name()
                ))
            })?;
        }
        Ok(())
    }

    async fn rotation_requested(&self, _ctx: &RequestContext, event: RotationEvent) -> Result<(), AwsError> {
        if event.rotate_immediately
            && let Some(core) = self.core.upgrade()
        {
            core.start_rotation(event);
        }
        Ok(())
    }
}

/// The account and region of a secret ARN (the context's when it is not one).
fn arn_account_region(arn: &str, ctx: &RequestContext) -> (String, String) {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match (parts.get(3), parts.get(4)) {
        (Some(r), Some(a)) if !r.is_empty() && !a.is_empty() => (a.to_string(), r.to_string()),
        _ => (ctx.account_id.clone(), ctx.region.clone()),
    }
}

/// The Secrets Manager API as the built-in rotators call it: the engine itself, acting as
/// the service in the secret's account and region, at the core's current time.
struct EngineApi<'a> {
    core: &'a Core,
    account_id: String,
    region: String,
}

#[async_trait]
impl SecretsApi for EngineApi<'_> {
    async fn call(&self, operation: &str, input: Value) -> Result<Value, ApiError> {
        let ctx = self.core.service_context(&self.account_id, &self.region);
        self.core
            .secrets
            .handle(&ctx, operation, input)
            .await
            .map_err(|e| ApiError {
                code: e.code.as_str().to_string(),
                message: e.message,
            })
    }
}

/// Removes a secret from the running set when its run ends, however it ends.
struct Running<'a> {
    set: &'a Mutex<HashSet<String>>,
    arn: String,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.set.lock().remove(&self.arn);
    }
}

/// The policy of a command function's credentials: the one secret, a password generator,
/// and the KMS calls Secrets Manager makes for it.
fn command_policy(secret_arn: &str, region: &str) -> String {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": [
                    "secretsmanager:DescribeSecret",
                    "secretsmanager:GetSecretValue",
                    "secretsmanager:PutSecretValue",
                    "secretsmanager:UpdateSecretVersionStage"
                ],
                "Resource": secret_arn
            },
            { "Effect": "Allow", "Action": "secretsmanager:GetRandomPassword", "Resource": "*" },
            {
                "Effect": "Allow",
                "Action": ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt"],
                "Resource": "*",
                "Condition": { "StringEquals": { "kms:ViaService": format!("secretsmanager.{region}.amazonaws.com") } }
            }
        ]
    })
    .to_string()
}

fn service_identity(account: &str) -> UserIdentity {
    UserIdentity {
        identity_type: IdentityType::AwsService,
        principal_id: None,
        arn: None,
        account_id: Some(account.to_string()),
        access_key_id: None,
        user_name: None,
        session_context: None,
    }
}

impl Core {
    /// A context acting as Secrets Manager itself in one account and region, now.
    pub(crate) fn service_context(&self, account: &str, region: &str) -> RequestContext {
        RequestContext {
            account_id: account.to_string(),
            region: region.to_string(),
            principal_arn: "secretsmanager.amazonaws.com".into(),
            now: self.clock().now(),
        }
    }

    /// The rotation counters (for `/v1/sys/metrics`).
    pub fn rotation_stats(&self) -> &RotationStats {
        &self.rotations.stats
    }

    /// Starts a run of `event`'s rotation in the background unless one is already running for
    /// the secret.
    pub(crate) fn start_rotation(&self, event: RotationEvent) {
        if !self.rotations.running.lock().insert(event.secret_arn.clone()) {
            return;
        }
        let Some(core) = self.me.upgrade() else {
            self.rotations.running.lock().remove(&event.secret_arn);
            return;
        };
        tokio::spawn(async move {
            let _running = Running {
                set: &core.rotations.running,
                arn: event.secret_arn.clone(),
            };
            let Ok(_slot) = core.rotations.slots.clone().acquire_owned().await else {
                return;
            };
            core.run_rotation(event).await;
        });
    }

    fn rotation_event(&self, ev: &RotationEvent, name: &str) -> AuditEvent {
        let mut e = AuditEvent::new(
            "secretsmanager.amazonaws.com",
            name,
            service_identity(&ev.account_id),
            self.clock().now(),
            ev.client_request_token.clone(),
        )
        .region(ev.region.clone())
        .request(json!({
            "secretId": ev.secret_arn,
            "clientRequestToken": ev.client_request_token,
            "rotationLambdaARN": ev.rotation_lambda_arn,
        }))
        .resource(
            ev.secret_arn.clone(),
            "AWS::SecretsManager::Secret",
            Some(ev.account_id.clone()),
        )
        .recipient_account(ev.account_id.clone());
        e.event_type = "AwsServiceEvent".to_owned();
        e
    }

    /// One run of the four steps, then the outcome recorded in the engine.
    async fn run_rotation(&self, ev: RotationEvent) {
        self.rotations.stats.started.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("coffer_rotations_total", "outcome" => "started").increment(1);
        let outcome = match self.audit_log(&self.rotation_event(&ev, "RotationStarted")).await {
            Ok(()) => self.run_steps(&ev).await,
            Err(e) => RotationOutcome::Failed {
                step: "createSecret".into(),
                message: format!("the rotation could not be audited: {e}"),
            },
        };
        let ctx = self.service_context(&ev.account_id, &ev.region);
        let recorded = self
            .secrets
            .finish_rotation(&ctx, &ev.secret_arn, &ev.client_request_token, outcome)
            .await;
        let (name, failure) = match recorded {
            Ok(None) => ("RotationSucceeded", None),
            Ok(Some(f)) => ("RotationFailed", Some((f.step, f.message))),
            Err(e) => ("RotationFailed", Some(("finishSecret".to_string(), e.to_string()))),
        };
        let mut event = self.rotation_event(&ev, name);
        match &failure {
            None => {
                self.rotations.stats.succeeded.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("coffer_rotations_total", "outcome" => "succeeded").increment(1);
                tracing::info!(secret = %ev.secret_arn, version = %ev.client_request_token, "rotation succeeded");
            }
            Some((step, message)) => {
                self.rotations.stats.failed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("coffer_rotations_total", "outcome" => "failed").increment(1);
                // Function output stays out of logs: the step and the secret only.
                tracing::warn!(secret = %ev.secret_arn, step = %step, "rotation failed; it will be retried");
                event = event.error("RotationFailed", format!("{step}: {}", audit_safe(message)));
            }
        }
        if let Err(e) = self.audit_log(&event).await {
            tracing::error!(error = %e, secret = %ev.secret_arn, "could not audit the end of a rotation");
        }
    }

    async fn run_steps(&self, ev: &RotationEvent) -> RotationOutcome {
        let lambda = ev.rotation_lambda_arn.clone().unwrap_or_default();
        let function = match self
            .rotations
            .functions
            .resolve(&ev.account_id, &ev.region, &lambda)
            .await
        {
            Ok(Some(f)) => f,
            Ok(None) => {
                return RotationOutcome::Failed {
                    step: "createSecret".into(),
                    message: format!("the rotation function {lambda} does not exist"),
                };
            }
            Err(e) => {
                return RotationOutcome::Failed {
                    step: "createSecret".into(),
                    message: e.to_string(),
                };
            }
        };
        let rotation_token = match coffer_crypto::random::uuid_v4() {
            Ok(t) => t,
            Err(e) => {
                return RotationOutcome::Failed {
                    step: "createSecret".into(),
                    message: e.to_string(),
                };
            }
        };
        for step in Step::ALL {
            let event = StepEvent {
                step: step.as_str().to_string(),
                secret_id: ev.secret_arn.clone(),
                client_request_token: ev.client_request_token.clone(),
                rotation_token: rotation_token.clone(),
            };
            let result = self.invoke(&function, ev, &event).await;
            let mut audit = AuditEvent::new(
                "lambda.amazonaws.com",
                "Invoke",
                service_identity(&ev.account_id),
                self.clock().now(),
                ev.client_request_token.clone(),
            )
            .region(ev.region.clone())
            .request(json!({ "functionName": lambda, "step": step.as_str(), "secretId": ev.secret_arn }))
            .resource(lambda.clone(), "AWS::Lambda::Function", Some(ev.account_id.clone()))
            .recipient_account(ev.account_id.clone());
            audit.event_type = "AwsServiceEvent".to_owned();
            if let Err(message) = &result {
                audit = audit.error("FunctionError", audit_safe(message));
            }
            if let Err(e) = self.audit_log(&audit).await {
                return RotationOutcome::Failed {
                    step: step.as_str().into(),
                    message: format!("the step could not be audited: {e}"),
                };
            }
            if let Err(message) = result {
                return RotationOutcome::Failed {
                    step: step.as_str().into(),
                    message,
                };
            }
        }
        RotationOutcome::Succeeded
    }

    /// Invokes one step; `Err` carries a message for the operator.
    async fn invoke(&self, function: &Function, ev: &RotationEvent, event: &StepEvent) -> Result<(), String> {
        match function {
            Function::BuiltIn(b) => self.invoke_builtin(*b, ev, event).await,
            Function::Stored(rec) => {
                let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
                match &rec.spec {
                    FunctionSpec::Http {
                        url,
                        timeout_secs,
                        signing_key,
                    } => {
                        let key = base64::engine::general_purpose::STANDARD
                            .decode(signing_key)
                            .map(SecretBytes::new)
                            .map_err(|_| "the function's signing key is damaged".to_string())?;
                        let timeout = Duration::from_secs(*timeout_secs);
                        let ts = self.clock().now().unix_timestamp();
                        invoke::http(&self.rotations.http, url, &key, timeout, ts, body).await
                    }
                    FunctionSpec::Command {
                        path,
                        args,
                        timeout_secs,
                    } => self.invoke_command(ev, path, args, *timeout_secs, body).await,
                }
            }
        }
    }

    async fn invoke_builtin(&self, b: BuiltIn, ev: &RotationEvent, event: &StepEvent) -> Result<(), String> {
        let api = EngineApi {
            core: self,
            account_id: ev.account_id.clone(),
            region: ev.region.clone(),
        };
        // A built-in step that hangs (a database that accepts connections but never answers)
        // is cut off like any other function's.
        let limit = Duration::from_secs(DEFAULT_TIMEOUT_SECS);
        match tokio::time::timeout(limit, b.run_step(&api, event)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err(format!("{} did not finish within {}s", event.step, limit.as_secs())),
        }
    }

    async fn invoke_command(
        &self,
        ev: &RotationEvent,
        path: &str,
        args: &[String],
        timeout_secs: u64,
        body: Vec<u8>,
    ) -> Result<(), String> {
        if !self.options().allow_command_functions {
            return Err(COMMANDS_DISABLED.into());
        }
        let Some(endpoint) = self.options().advertise_endpoint.clone() else {
            return Err("this server has no endpoint for command functions to call".into());
        };
        let timeout = i64::try_from(timeout_secs).unwrap_or(i64::MAX);
        let creds = self
            .iam
            .create_service_session(
                &ev.account_id,
                COMMAND_ROLE,
                &ev.client_request_token,
                &command_policy(&ev.secret_arn, &ev.region),
                timeout.saturating_add(CREDENTIAL_SLACK_SECS),
                self.clock().now(),
            )
            .await
            .map_err(|e| format!("could not issue credentials: {e}"))?;
        let mut env = vec![
            ("SECRETS_MANAGER_ENDPOINT", endpoint.clone()),
            ("AWS_ENDPOINT_URL", endpoint),
            ("AWS_ACCESS_KEY_ID", creds.access_key_id.clone()),
            (
                "AWS_SECRET_ACCESS_KEY",
                String::from_utf8_lossy(creds.secret_access_key.expose()).into_owned(),
            ),
            (
                "AWS_SESSION_TOKEN",
                String::from_utf8_lossy(creds.session_token.expose()).into_owned(),
            ),
            ("AWS_REGION", ev.region.clone()),
            ("AWS_DEFAULT_REGION", ev.region.clone()),
        ];
        if let Some(ca) = &self.options().ca_bundle {
            env.push(("AWS_CA_BUNDLE", ca.clone()));
        }
        let result = invoke::command(invoke::CommandRun {
            path,
            args,
            timeout: Duration::from_secs(timeout_secs),
            env,
            stdin: body,
        })
        .await;
        if let Err(e) = self.iam.delete_service_session(&creds.access_key_id).await {
            tracing::warn!(error = %e, "could not remove a rotation function's credentials; they expire on their own");
        }
        result
    }

    /// `CofferRotation.*`: the function registry and `GetRotationStatus`.
    pub(crate) async fn rotation_api(&self, ctx: &RequestContext, op: &str, input: Value) -> Result<Value, CoreError> {
        if op == "GetRotationStatus" {
            return Ok(self.secrets.rotation_status(ctx, input).await?);
        }
        if op == "CreateFunction" && input.get("Command").is_some() && !self.options().allow_command_functions {
            return Err(AwsError::new(AwsErrorCode::AccessDeniedException, COMMANDS_DISABLED).into());
        }
        Ok(self.rotations.functions.handle(ctx, op, &input).await?)
    }
}

/// What of a failure message goes into the audit log: the first line, without what a
/// command printed (the part after the exit status).
fn audit_safe(message: &str) -> String {
    let first = message.lines().next().unwrap_or("");
    match first.find(" ended with exit status ") {
        Some(i) => {
            let rest = &first[i..];
            let end = rest.find(':').map_or(rest.len(), |j| j);
            format!("{}{}", &first[..i], &rest[..end])
        }
        None => first.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::audit_safe;

    #[test]
    fn audit_messages_drop_command_output() {
        assert_eq!(
            audit_safe("/bin/rot ended with exit status 1: ValueError: pw=hunter2"),
            "/bin/rot ended with exit status 1"
        );
        assert_eq!(
            audit_safe("could not reach http://x: refused"),
            "could not reach http://x: refused"
        );
    }
}
