//! [`Core`]: seal lifecycle, authentication look-ups, dispatch to engines, background jobs.

mod quotas;
mod snapshot;

pub use snapshot::RestoreSummary;

use std::sync::{Arc, Weak};
use std::time::Duration;

use coffer_barrier::{Barrier, SealStatus};
use coffer_crypto::{SecretBytes, SecretString};
use coffer_engines::RequestContext;
use coffer_engines::contracts::KeyService;
use coffer_engines::secrets::SecretsEngine;
use coffer_kms::KmsEngine;
use coffer_ssm::SsmEngine;
use coffer_storage::view::StorageView;
use coffer_storage::{DynBackend, DynStorage};
use serde_json::Value;

use coffer_iam::{IamEngine, KeyResolution, Principal};
use parking_lot::Mutex;

use crate::audit::{Audit, AuditDeviceSpec};
use crate::authz::{PolicyCache, PolicyParser, RequestEnv, TrustEvaluator};
use crate::identity::{Identities, TokenEntry};
use crate::quotas::Quotas;
use crate::rotation::{CoreRotationHook, FunctionRegistry, Rotations};
use crate::{AwsService, Clock, CoreError};

/// How long an expired STS session is kept before the background job removes it.
const EXPIRED_SESSION_GRACE: time::Duration = time::Duration::days(1);

/// Settings the binary chooses when it builds the core.
#[derive(Clone, Debug)]
pub struct CoreOptions {
    /// Dev mode: enables the dev-only flags below.
    pub dev_mode: bool,
    /// Allows `POST /moto-api/reset` (wipes all engine data) and clock moves. Dev mode only.
    pub allow_reset: bool,
    /// How often the background jobs (purge after recovery windows) run.
    pub background_interval: Duration,
    /// The audit devices. With none, nothing is recorded; with some, a request that no device
    /// records fails.
    pub audit: Vec<AuditDeviceSpec>,
    /// The URL clients reach this server at (`http://127.0.0.1:8200`): given to command
    /// rotation functions as `SECRETS_MANAGER_ENDPOINT`.
    pub advertise_endpoint: Option<String>,
    /// A CA bundle for that endpoint (the server's own certificate when it is self-signed),
    /// given to command rotation functions as `AWS_CA_BUNDLE`.
    pub ca_bundle: Option<String>,
    /// Whether `command` rotation functions may be registered and run (they run programs as
    /// the server's user). Off by default; dev mode turns it on.
    pub allow_command_functions: bool,
}

impl Default for CoreOptions {
    fn default() -> Self {
        Self {
            dev_mode: false,
            allow_reset: false,
            background_interval: Duration::from_secs(30),
            audit: Vec::new(),
            advertise_endpoint: None,
            ca_bundle: None,
            allow_command_functions: false,
        }
    }
}

/// What dev mode is asked to create at start.
#[derive(Default)]
pub struct DevInit {
    /// A fixed access key (`--dev-access-key ID:SECRET`); random when absent.
    pub access_key: Option<(String, SecretBytes)>,
    /// A fixed account id (`--dev-account-id`); random when absent.
    pub account_id: Option<String>,
    /// A fixed root token; random when absent.
    pub root_token: Option<String>,
}

/// The root credentials created at initialization. Shown exactly once.
pub struct RootCredentials {
    pub account_id: String,
    pub access_key_id: String,
    pub secret_access_key: SecretBytes,
    pub root_token: SecretString,
}

/// The result of `operator init`.
pub struct InitOutput {
    /// Base64 unseal key shares.
    pub unseal_keys: Vec<SecretString>,
    pub threshold: u8,
    pub root: RootCredentials,
}

/// Who sent an operator request (init, unseal, seal, rotate, account creation), for its
/// audit event.
#[derive(Clone, Debug, Default)]
pub struct Client {
    pub ip: Option<std::net::IpAddr>,
    pub user_agent: String,
}

/// The core of one Coffer server.
pub struct Core {
    /// This core, for the background tasks it spawns.
    pub(crate) me: Weak<Core>,
    barrier: Arc<Barrier>,
    identities: Identities,
    /// Accounts, IAM users/roles/groups/policies, access keys and STS sessions.
    pub(crate) iam: Arc<IamEngine>,
    /// Compiled identity policies per principal.
    pub(crate) policy_cache: PolicyCache,
    /// Dev mode: the account and fixed root key to re-create after a reset.
    dev_root: Mutex<Option<(String, String, SecretBytes)>>,
    pub(crate) secrets: Arc<SecretsEngine>,
    ssm: SsmEngine,
    pub(crate) kms: Arc<KmsEngine>,
    /// Rotation functions and the rotation runner.
    pub(crate) rotations: Rotations,
    audit: Audit,
    /// Vault's rate limit quotas, loaded at unseal (see [`crate::quotas`]).
    quotas: Quotas,
    /// The `sys/` view, for the core's own records (audit device keys and chain heads).
    sys: DynStorage,
    clock: Clock,
    options: CoreOptions,
    /// Renders the process's metrics in Prometheus text (set by the binary, which owns the
    /// recorder); `/metrics` and `sys/metrics` serve it.
    metrics: std::sync::OnceLock<MetricsRenderer>,
    /// Held from a key share's submission until the devices are open (see [`Core::unseal`]).
    unsealing: tokio::sync::Mutex<()>,
}

/// Renders the metrics registry in the Prometheus text format.
pub type MetricsRenderer = Box<dyn Fn() -> String + Send + Sync>;

impl Core {
    pub fn new(backend: DynBackend, options: CoreOptions) -> Arc<Self> {
        let barrier = Arc::new(Barrier::new(backend));
        let plain: DynStorage = barrier.clone();
        let sys: DynStorage = Arc::new(StorageView::new(plain.clone(), "sys/"));
        let identities = Identities::new(sys.clone());
        let iam = Arc::new(
            IamEngine::new(Arc::new(StorageView::new(sys.clone(), "iam/")))
                .with_validator(Arc::new(PolicyParser))
                .with_trust_check(Arc::new(TrustEvaluator)),
        );
        // One KMS engine owns every key; Secrets Manager and Parameter Store encrypt their
        // values under its keys (envelope encryption), so a key's state governs access.
        let kms = Arc::new(KmsEngine::new(Arc::new(StorageView::new(plain.clone(), "aws/kms/"))));
        let keys: Arc<dyn KeyService> = kms.clone();
        let rotations = Rotations::new(FunctionRegistry::new(Arc::new(StorageView::new(
            plain.clone(),
            "aws/lambda/",
        ))));
        Arc::new_cyclic(|me: &Weak<Core>| {
            let secrets = Arc::new(
                SecretsEngine::new(Arc::new(StorageView::new(plain.clone(), "aws/secretsmanager/")))
                    .with_key_service(keys.clone())
                    .with_rotation_hook(Arc::new(CoreRotationHook { core: me.clone() })),
            );
            let ssm = SsmEngine::new(Arc::new(StorageView::new(plain, "aws/ssm/")), keys, secrets.clone());
            Self {
                me: me.clone(),
                barrier,
                identities,
                iam,
                policy_cache: PolicyCache::default(),
                dev_root: Mutex::new(None),
                secrets,
                ssm,
                kms,
                rotations,
                audit: Audit::new(options.audit.clone()),
                quotas: Quotas::default(),
                sys,
                clock: Clock::default(),
                options,
                metrics: std::sync::OnceLock::new(),
                unsealing: tokio::sync::Mutex::new(()),
            }
        })
    }

    /// Sets the metrics renderer (once; later calls are ignored).
    pub fn set_metrics_renderer(&self, render: MetricsRenderer) {
        let _ = self.metrics.set(render);
    }

    /// The process's metrics in Prometheus text, with the seal state measured now; `None`
    /// when no renderer was set.
    pub async fn render_metrics(&self) -> Option<String> {
        let render = self.metrics.get()?;
        if let Ok(s) = self.seal_status().await {
            metrics::gauge!("coffer_initialized").set(if s.initialized { 1.0 } else { 0.0 });
            metrics::gauge!("coffer_sealed").set(if s.sealed { 1.0 } else { 0.0 });
        }
        Some(render())
    }

    pub fn options(&self) -> &CoreOptions {
        &self.options
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The active barrier key term and its install time (Unix seconds); `Sealed` while sealed.
    pub fn key_status(&self) -> Result<(u32, u64), CoreError> {
        self.barrier.active_term_installed().ok_or(CoreError::Sealed)
    }

    pub async fn seal_status(&self) -> Result<SealStatus, CoreError> {
        Ok(self.barrier.status().await?)
    }

    /// Initializes a new server: unseal key shares plus root credentials. The server stays
    /// sealed afterwards, as Vault's does.
    pub async fn init(&self, shares: u8, threshold: u8, client: &Client) -> Result<InitOutput, CoreError> {
        if shares == 0 || threshold == 0 || threshold > shares {
            return Err(CoreError::BadRequest(format!(
                "invalid seal configuration: {shares} shares with threshold {threshold}; \
                 need 1 <= threshold <= shares <= 255"
            )));
        }
        if shares > 1 && threshold < 2 {
            return Err(CoreError::BadRequest(
                "threshold must be at least 2 when there is more than one share".into(),
            ));
        }
        if self.barrier.is_initialized().await? {
            return Err(CoreError::AlreadyInitialized);
        }
        let init = self.barrier.initialize(shares, threshold).await?;
        for key in init.unseal_keys.iter().take(usize::from(threshold)) {
            self.barrier.submit_unseal_key(key).await?;
        }
        let root = self.create_root_credentials(DevInit::default()).await;
        // The devices' keys live in the barrier, which is open just now: record the
        // initialization (with its outcome) before sealing again.
        if root.is_ok() {
            let details = serde_json::json!({ "secretShares": shares, "secretThreshold": threshold });
            self.record_with_open_devices(self.op_event("Initialize", client, None, details, None))
                .await;
        }
        self.seal_now();
        Ok(InitOutput {
            unseal_keys: init.unseal_keys,
            threshold,
            root: root?,
        })
    }

    /// Dev mode: initializes with one share, unseals, and creates the root credentials.
    /// Returns the root credentials and the single unseal key.
    pub async fn init_dev(&self, dev: DevInit) -> Result<(RootCredentials, SecretString), CoreError> {
        let key = self.barrier.initialize_dev().await?;
        let root = self.create_root_credentials(dev).await?;
        self.quotas.load(&self.sys).await?;
        self.open_audit().await?;
        let details = serde_json::json!({ "secretShares": 1, "secretThreshold": 1, "dev": true });
        self.record_operator(self.op_event("Initialize", &Client::default(), None, details, None))
            .await;
        Ok((root, key))
    }

    async fn create_root_credentials(&self, dev: DevInit) -> Result<RootCredentials, CoreError> {
        let now_t = self.clock.now();
        let now = now_t.unix_timestamp();
        let account_id = match dev.account_id {
            Some(a) => a,
            None => Identities::generate_account_id()?,
        };
        self.iam.create_account(&account_id, now_t).await?;
        let fixed = dev.access_key.clone();
        let (access_key_id, secret_access_key) = self.iam.create_root_access_key(&account_id, fixed, now_t).await?;
        if dev.access_key.is_some() || self.options.dev_mode {
            *self.dev_root.lock() = Some((account_id.clone(), access_key_id.clone(), secret_access_key.clone()));
        }
        let root_token = match dev.root_token {
            Some(t) => t,
            None => Identities::generate_token()?,
        };
        let entry = TokenEntry {
            account_id: account_id.clone(),
            policies: vec!["root".into()],
        };
        self.identities.store_token(&root_token, &entry, now).await?;
        Ok(RootCredentials {
            account_id,
            access_key_id,
            secret_access_key,
            root_token: SecretString::new(root_token),
        })
    }

    /// Submits one unseal key share (base64 or hex). Every attempt is an audit event
    /// (`Unseal`, with the progress or the error); attempts made while sealed are written when
    /// the devices open, first. An unseal that fails after the barrier opened (a storage
    /// error reading the status, moving legacy keys or opening the audit devices) seals it
    /// again: the server is never left unsealed with its audit devices closed, and the next
    /// attempt starts over.
    pub async fn unseal(&self, key: &str, client: &Client) -> Result<SealStatus, CoreError> {
        if !self.barrier.is_initialized().await? {
            return Err(CoreError::NotInitialized);
        }
        // One unseal at a time: two shares reaching the threshold together must not both
        // open the audit devices (the second opening would drop the first one's writers).
        let _unsealing = self.unsealing.lock().await;
        let was_sealed = self.barrier.is_sealed();
        let result = self.submit_unseal_key(key, was_sealed, client).await;
        if result.is_err() && was_sealed && !self.barrier.is_sealed() {
            tracing::error!("unseal failed after the barrier opened; sealing again");
            self.seal_now();
        }
        result
    }

    async fn submit_unseal_key(&self, key: &str, was_sealed: bool, client: &Client) -> Result<SealStatus, CoreError> {
        let submitted = self
            .barrier
            .submit_unseal_key(&SecretString::new(key.trim().to_string()))
            .await;
        let status = self.seal_status().await?;
        let details = serde_json::json!({
            "progress": status.progress,
            "threshold": status.t,
            "sealed": status.sealed,
        });
        // Barrier errors name the problem, never key material.
        let error = submitted.as_ref().err().map(|e| ("InvalidUnsealKey", e.to_string()));
        if let Err(e) = submitted {
            self.record_operator(self.op_event("Unseal", client, None, details, error))
                .await;
            return Err(e.into());
        }
        if !status.sealed && was_sealed {
            self.migrate_legacy_keys().await?;
            if let Err(e) = self.quotas.load(&self.sys).await {
                tracing::error!(error = %e, "rate limit quotas could not be read; sealing again");
                self.seal_now();
                return Err(e);
            }
            self.open_audit().await?;
        }
        self.record_operator(self.op_event("Unseal", client, None, details, None))
            .await;
        Ok(status)
    }

    /// Moves root access keys stored before the IAM engine existed into it (once).
    async fn migrate_legacy_keys(&self) -> Result<(), CoreError> {
        let now = self.clock.now();
        for (akid, account, secret) in self.identities.legacy_root_keys().await? {
            self.iam.create_account(&account, now).await?;
            self.iam
                .create_root_access_key(&account, Some((akid.clone(), secret)), now)
                .await?;
            self.identities.delete_legacy_key(&akid).await?;
            tracing::info!(account = %account, "moved a root access key into the IAM engine");
        }
        Ok(())
    }

    /// Forgets the unseal shares submitted so far.
    pub async fn reset_unseal(&self) -> Result<SealStatus, CoreError> {
        self.barrier.reset_unseal_progress();
        self.seal_status().await
    }

    /// Seals the server; needs the root token. Sealing is never refused for want of an audit
    /// device (it only makes the server safer): the `Seal` event is written when it can be.
    pub async fn seal(&self, token: Option<&str>, client: &Client) -> Result<(), CoreError> {
        let entry = self.require_root_token(token).await?;
        self.record_operator(self.op_event("Seal", client, Some(&entry), Value::Null, None))
            .await;
        if let Err(e) = self.audit.save_heads(&self.sys).await {
            tracing::warn!(error = %e, "could not store the audit chain heads before sealing");
        }
        self.seal_now();
        Ok(())
    }

    fn seal_now(&self) {
        self.audit.close();
        self.quotas.clear();
        self.barrier.seal();
        self.iam.invalidate_cache();
        self.kms.forget_cached();
        self.policy_cache.clear();
    }

    /// Opens the audit devices once the barrier is unsealed, then writes the operator events
    /// kept while sealed and one `AuditLogDiscontinuity` event per device whose log could not
    /// be proved to continue. Only a failure of sealed storage (the device keys) fails it; the
    /// server then seals itself again. Audit files never keep an operator out: a device that
    /// does not work fails the requests it should record (fail closed), not the unseal.
    async fn open_audit(&self) -> Result<(), CoreError> {
        let problems = match self.audit.open(&self.sys).await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "audit device keys could not be read; sealing again");
                self.seal_now();
                return Err(e);
            }
        };
        self.audit.flush_pending().await;
        for p in problems {
            let details = serde_json::json!({ "device": p.device, "problem": p.message });
            let event = self.op_event("AuditLogDiscontinuity", &Client::default(), None, details, None);
            self.record_operator(event).await;
        }
        Ok(())
    }

    /// Records an operator event; a failure is logged (operator actions that make the server
    /// safer, or that an operator needs to get in, are not refused for want of a device).
    async fn record_operator(&self, event: coffer_audit::AuditEvent) {
        let name = event.event_name.clone();
        if let Err(e) = self.audit.operator_event(event).await {
            tracing::warn!(error = %e, event = %name, "an operator event could not be recorded");
        }
    }

    /// [`Core::record_operator`] at a moment when the barrier is open but the devices are
    /// not (initialization): opens them, records the event, stores the heads.
    async fn record_with_open_devices(&self, event: coffer_audit::AuditEvent) {
        if !self.audit.is_configured() {
            return;
        }
        if let Err(e) = self.open_audit().await {
            tracing::warn!(error = %e, event = %event.event_name, "an operator event could not be recorded");
            return;
        }
        self.record_operator(event).await;
        if let Err(e) = self.audit.save_heads(&self.sys).await {
            tracing::warn!(error = %e, "could not store the audit chain heads");
        }
    }

    /// An operator event at the core's time: who (the token's account, or nobody before
    /// unseal), from where, what; `error` is its code and message when it failed.
    fn op_event(
        &self,
        name: &str,
        client: &Client,
        token: Option<&TokenEntry>,
        details: Value,
        error: Option<(&str, String)>,
    ) -> coffer_audit::AuditEvent {
        use coffer_audit::{AuditEvent, IdentityType, UserIdentity};
        let identity = match token {
            Some(t) => UserIdentity {
                identity_type: IdentityType::Token,
                account_id: Some(t.account_id.clone()),
                user_name: t.is_root().then(|| "root".to_owned()),
                ..UserIdentity::default()
            },
            None => UserIdentity::default(),
        };
        let ip = client.ip.map(|ip| ip.to_string()).unwrap_or_default();
        let mut event = AuditEvent::operator(name, identity, self.clock.now()).client(ip, client.user_agent.as_str());
        if !details.is_null() {
            event = event.request(details);
        }
        if let Some((code, message)) = error {
            event = event.error(code, message);
        }
        event
    }

    /// Records one request on the audit devices and returns once it is written (concurrent
    /// requests share one write: group commit). An error means no device recorded it: the
    /// caller must fail the request (fail closed). While the devices are closed (sealed, or
    /// not yet initialized) the answer is [`CoreError::Sealed`] or
    /// [`CoreError::NotInitialized`], the service's documented "unavailable" answer, not an
    /// audit failure: nothing is served then, so nothing needs recording.
    pub async fn audit_log(&self, event: &coffer_audit::AuditEvent) -> Result<(), CoreError> {
        if self.audit.is_configured() && !self.audit.is_open() {
            return Err(if self.barrier.is_initialized().await? {
                CoreError::Sealed
            } else {
                CoreError::NotInitialized
            });
        }
        self.audit.log(event).await
    }

    /// Each file audit device's chain head (`seq` and `hash` of its latest line), root token
    /// only: give it to `coffer audit verify --expect-seq/--expect-hash` to detect lines cut
    /// from the end of the log, which the chain alone cannot show.
    pub async fn audit_heads(&self, token: Option<&str>) -> Result<Vec<(String, u64, String)>, CoreError> {
        self.require_root_token(token).await?;
        Ok(self
            .audit
            .heads()
            .into_iter()
            .map(|(name, head)| (name, head.seq, head.hash_hex()))
            .collect())
    }

    /// Whether audit devices are configured.
    pub fn audit_enabled(&self) -> bool {
        self.audit.is_configured()
    }

    /// Creates another account (root token only) with a fresh root access key, shown once.
    /// Accounts are isolated: one sees another's resources only where a resource or key
    /// policy grants it. Returns `(account id, access key id, secret access key)`.
    pub async fn create_account(
        &self,
        token: Option<&str>,
        client: &Client,
    ) -> Result<(String, String, SecretBytes), CoreError> {
        let entry = self.require_root_token(token).await?;
        let now = self.clock.now();
        let mut account_id = Identities::generate_account_id()?;
        while self.iam.account_exists(&account_id).await? {
            account_id = Identities::generate_account_id()?;
        }
        self.iam.create_account(&account_id, now).await?;
        let (akid, secret) = self.iam.create_root_access_key(&account_id, None, now).await?;
        let details = serde_json::json!({ "accountId": account_id, "accessKeyId": akid });
        // Recorded like a request: fail closed when no device records it.
        let event = self.op_event("CreateAccount", client, Some(&entry), details, None);
        self.audit.operator_event(event).await?;
        Ok((account_id, akid, secret))
    }

    /// Records a configuration reload (SIGHUP) as a `ConfigReload` operator event: what was
    /// reloaded (`component`) and its outcome (`Ok` details, or the error). A reload is not
    /// refused for want of an audit device: a failure to record it is logged.
    pub async fn config_reloaded(&self, component: &str, outcome: Result<Value, String>) {
        let (mut details, error) = match outcome {
            Ok(details) => (details, None),
            Err(message) => (serde_json::json!({}), Some(("ConfigReloadFailed", message))),
        };
        if let Some(map) = details.as_object_mut() {
            map.insert("component".into(), Value::String(component.to_string()));
        }
        let event = self.op_event("ConfigReload", &Client::default(), None, details, error);
        self.record_operator(event).await;
    }

    /// Adds a new barrier key term; new writes use it, old data stays readable.
    pub async fn rotate(&self, token: Option<&str>, client: &Client) -> Result<u32, CoreError> {
        let entry = self.require_root_token(token).await?;
        let term = self.barrier.rotate().await?;
        let event = self.op_event(
            "Rotate",
            client,
            Some(&entry),
            serde_json::json!({ "term": term }),
            None,
        );
        self.audit.operator_event(event).await?;
        Ok(term)
    }

    async fn require_root_token(&self, token: Option<&str>) -> Result<TokenEntry, CoreError> {
        let entry = self.token(token).await?.ok_or(CoreError::PermissionDenied)?;
        if !entry.is_root() {
            return Err(CoreError::PermissionDenied);
        }
        Ok(entry)
    }

    /// Resolves a Vault-style token.
    pub async fn token(&self, token: Option<&str>) -> Result<Option<TokenEntry>, CoreError> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        if self.barrier.is_sealed() {
            return Err(CoreError::Sealed);
        }
        self.identities.token(token).await
    }

    /// Resolves an access key (and, for session keys, the `X-Amz-Security-Token`) for SigV4
    /// verification. Session expiry is judged on the core's clock (the dev clock moves it).
    pub async fn resolve_access_key(
        &self,
        access_key_id: &str,
        session_token: Option<&str>,
    ) -> Result<KeyResolution, CoreError> {
        if self.barrier.is_sealed() {
            return Err(CoreError::Sealed);
        }
        Ok(self
            .iam
            .resolve_access_key(access_key_id, session_token, self.clock.now())
            .await?)
    }

    fn request_context(&self, principal: &Principal, region: &str) -> RequestContext {
        RequestContext {
            account_id: principal.account_id.clone(),
            region: region.to_string(),
            principal_arn: principal.arn.clone(),
            now: self.clock.now(),
        }
    }

    /// Handles one authenticated AWS request: authorizes it, then runs it.
    pub async fn handle_aws(
        &self,
        principal: &Principal,
        region: &str,
        service: AwsService,
        operation: &str,
        input: Value,
        env: &RequestEnv,
    ) -> Result<Value, CoreError> {
        if self.barrier.is_sealed() {
            return Err(CoreError::Sealed);
        }
        let mut ctx = self.request_context(principal, region);
        self.authorize_aws(principal, &ctx, service, operation, &input, env)
            .await?;
        // A secret of another account, named by its ARN, that the authorization allowed (its
        // resource policy grants this caller): the operation runs where the secret lives.
        if service == AwsService::SecretsManager
            && let Some(id) = input.get("SecretId").and_then(Value::as_str)
        {
            ctx.account_id = crate::authz::secret_owner(id, &ctx.account_id);
        }
        if service == AwsService::SecretsManager
            && operation == "PutResourcePolicy"
            && input.get("BlockPublicPolicy").and_then(Value::as_bool) == Some(true)
            && let Some(doc) = input.get("ResourcePolicy").and_then(Value::as_str)
            && let Ok(policy) = coffer_policy::compile_json(doc, coffer_policy::PolicyKind::Resource, "resource-policy")
            && coffer_policy::is_public(&policy)
        {
            return Err(coffer_engines::AwsError::new(
                coffer_engines::AwsErrorCode::PublicPolicyException,
                "You can't attach a resource-based policy that allows broad access to the secret.",
            )
            .into());
        }
        match service {
            AwsService::SecretsManager => Ok(self.secrets.handle(&ctx, operation, input).await?),
            AwsService::Ssm => Ok(self.ssm.handle(&ctx, operation, input).await?),
            AwsService::Kms => Ok(self.kms.handle(&ctx, operation, input).await?),
            AwsService::CloudTrail => self.cloudtrail(&ctx, operation, input),
            AwsService::Rotation => self.rotation_api(&ctx, operation, input).await,
        }
    }

    /// Handles one authenticated IAM or STS (Query protocol) request: authorizes it, then runs
    /// it in the IAM engine. Returns the XML document with the request id placeholder.
    pub async fn handle_iam(
        &self,
        principal: &Principal,
        region: &str,
        service: &str,
        action: &str,
        params: &[(String, String)],
        env: &RequestEnv,
    ) -> Result<String, CoreError> {
        if self.barrier.is_sealed() {
            return Err(CoreError::Sealed);
        }
        let ctx = self.request_context(principal, region);
        self.authorize_query(principal, &ctx, service, action, params, env)
            .await?;
        Ok(self.iam.handle(&ctx, service, action, params).await?)
    }

    /// CloudTrail: `LookupEvents` over the audit log, limited to the caller's account.
    fn cloudtrail(&self, ctx: &RequestContext, operation: &str, input: Value) -> Result<Value, CoreError> {
        use coffer_engines::{AwsError, AwsErrorCode};
        if operation != "LookupEvents" {
            return Err(AwsError::new(AwsErrorCode::UnknownOperationException, "").into());
        }
        let req: coffer_audit::LookupEventsRequest = serde_json::from_value(input)
            .map_err(|e| AwsError::new(AwsErrorCode::SerializationException, e.to_string()))?;
        match self.audit.lookup(&ctx.account_id, &req)? {
            Ok(resp) => serde_json::to_value(resp).map_err(|e| CoreError::Internal(e.to_string())),
            Err(e) => {
                let code = match e.code() {
                    "InvalidLookupAttributesException" => AwsErrorCode::InvalidLookupAttributesException,
                    "InvalidTimeRangeException" => AwsErrorCode::InvalidTimeRangeException,
                    "InvalidMaxResultsException" => AwsErrorCode::InvalidMaxResultsException,
                    "InvalidEventCategoryException" => AwsErrorCode::InvalidEventCategoryException,
                    _ => AwsErrorCode::InvalidNextTokenException,
                };
                Err(AwsError::new(code, e.to_string()).into())
            }
        }
    }

    /// Dev mode with `--dev-allow-reset`: wipes every engine's data (identities stay).
    pub async fn reset(&self) -> Result<(), CoreError> {
        if !(self.options.dev_mode && self.options.allow_reset) {
            return Err(CoreError::DevOnly("reset"));
        }
        self.secrets.reset().await?;
        self.ssm.reset().await?;
        self.kms.reset().await?;
        self.rotations.functions.reset().await?;
        // IAM too (moto's reset forgets users and roles), then the dev account and its key
        // again, so the fixed dev credentials keep working.
        self.iam.reset().await?;
        self.policy_cache.clear();
        let dev_root = self.dev_root.lock().clone();
        if let Some((account, akid, secret)) = dev_root {
            let now = self.clock.now();
            self.iam.create_account(&account, now).await?;
            self.iam
                .create_root_access_key(&account, Some((akid, secret)), now)
                .await?;
        }
        Ok(())
    }

    /// Dev mode with `--dev-allow-reset`: moves the clock forward and runs the background
    /// jobs at once, so tests can watch recovery windows end.
    pub async fn advance_clock(&self, secs: i64) -> Result<i64, CoreError> {
        if !(self.options.dev_mode && self.options.allow_reset) {
            return Err(CoreError::DevOnly("clock control"));
        }
        if secs < 0 {
            return Err(CoreError::BadRequest("the clock only moves forward".into()));
        }
        self.clock.advance(secs);
        self.run_background_once().await?;
        Ok(self.clock.offset_secs())
    }

    /// One pass of the background jobs. Does nothing while sealed.
    pub async fn run_background_once(&self) -> Result<(), CoreError> {
        if self.barrier.is_sealed() {
            return Ok(());
        }
        let ctx = RequestContext {
            account_id: String::new(),
            region: String::new(),
            principal_arn: "coffer:background".into(),
            now: self.clock.now(),
        };
        self.audit.save_heads(&self.sys).await?;
        let (purged, rotations) = self.secrets.background(&ctx).await?;
        if purged > 0 {
            tracing::info!(purged, "deleted secrets whose recovery window ended");
        }
        let expired = self.ssm.background(ctx.now).await?;
        if expired > 0 {
            tracing::info!(expired, "deleted parameters whose Expiration policy passed");
        }
        // Expired sessions are kept a day, so their callers hear "expired" rather than
        // "invalid" for a while, as from AWS.
        let sessions = self.iam.purge_expired_sessions(ctx.now - EXPIRED_SESSION_GRACE).await?;
        if sessions > 0 {
            tracing::info!(sessions, "removed expired STS sessions");
        }
        let changed = self.kms.background(ctx.now).await?;
        if changed > 0 {
            tracing::info!(changed, "KMS keys deleted after their waiting period or rotated");
        }
        // Last: rotations read keys and secrets the jobs above may have just changed.
        for event in rotations {
            self.start_rotation(event);
        }
        Ok(())
    }

    /// Starts the background loop. One node runs it today; with shared storage only the
    /// leader will.
    ///
    /// A pass walks every secret, parameter and key, so its length grows with the store. The
    /// pause after a pass is the configured interval or [`BACKGROUND_PAUSE_FACTOR`] times the
    /// pass, whichever is longer: the jobs take at most a tenth of one core, however large the
    /// store (with a million secrets a pass takes seconds, and a fixed five-second interval
    /// kept a core busy and halved the read throughput).
    pub fn spawn_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let core = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let started = tokio::time::Instant::now();
                if let Err(e) = core.run_background_once().await {
                    tracing::warn!(error = %e, "background job failed");
                }
                tokio::time::sleep(background_pause(core.options.background_interval, started.elapsed())).await;
            }
        })
    }
}

/// How many times the length of a background pass the loop pauses after it, at least.
const BACKGROUND_PAUSE_FACTOR: u32 = 9;

/// The pause after a background pass that took `took`.
fn background_pause(interval: Duration, took: Duration) -> Duration {
    interval.max(took.saturating_mul(BACKGROUND_PAUSE_FACTOR))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use base64::Engine as _;
    use coffer_storage::memory::MemoryBackend;

    use super::*;

    #[test]
    fn background_pauses_grow_with_long_passes() {
        let five = Duration::from_secs(5);
        assert_eq!(background_pause(five, Duration::from_millis(20)), five);
        assert_eq!(background_pause(five, Duration::from_secs(10)), Duration::from_secs(90));
    }

    /// A root key stored by a version before IAM (`sys/access-keys/<AKID>`) keeps working after
    /// an upgrade: unseal moves it into the IAM engine and deletes the old record.
    #[tokio::test]
    async fn legacy_root_keys_move_into_iam_at_unseal() {
        let core = Core::new(Arc::new(MemoryBackend::new()), CoreOptions::default());
        let out = core.init(1, 1, &Client::default()).await.unwrap();
        let share = out.unseal_keys[0].expose().to_string();
        core.unseal(&share, &Client::default()).await.unwrap();
        let rec = serde_json::json!({
            "account_id": "111122223333",
            "principal_arn": "arn:aws:iam::111122223333:root",
            "is_root": true,
            "secret": base64::engine::general_purpose::STANDARD.encode(b"legacy-secret"),
            "status": "Active",
            "created": 0,
        });
        let akid = "AKIALEGACY0000000000";
        core.sys
            .put(
                &format!("access-keys/{akid}"),
                SecretBytes::new(serde_json::to_vec(&rec).unwrap()),
            )
            .await
            .unwrap();
        core.seal(Some(out.root.root_token.expose()), &Client::default())
            .await
            .unwrap();
        core.unseal(&share, &Client::default()).await.unwrap();

        match core.resolve_access_key(akid, None).await.unwrap() {
            KeyResolution::Valid(k) => {
                assert_eq!(k.principal.arn, "arn:aws:iam::111122223333:root");
                assert_eq!(k.secret.expose(), b"legacy-secret");
            }
            other => panic!("{other:?}"),
        }
        assert!(core.sys.get(&format!("access-keys/{akid}")).await.unwrap().is_none());
        assert!(matches!(
            core.resolve_access_key(&out.root.access_key_id, None).await.unwrap(),
            KeyResolution::Valid(_)
        ));
        assert!(matches!(
            core.resolve_access_key("AKIANOSUCHKEY0000000", None).await.unwrap(),
            KeyResolution::Unknown
        ));
    }
}
