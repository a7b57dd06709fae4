//! Access keys and accounts: the IAM access-key actions, root keys, resolution of an access
//! key id for SigV4 (with an in-memory cache cleared on every change), and the policies that
//! apply to a principal.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use coffer_crypto::SecretBytes;
use coffer_engines::{AwsError, RequestContext};
use coffer_storage::Write;
use time::OffsetDateTime;

use crate::IamEngine;
use crate::entities::{Caller, caller};
use crate::errors;
use crate::model::{self, AccessKeyRecord, AccountRecord, EntityKind, KeyOwner, LastUsed, SessionRecord, Tag};
use crate::params::{self, Params};
use crate::principal::{KeyResolution, PolicySource, Principal, PrincipalKind, PrincipalPolicy, ResolvedKey};
use crate::xml::Xml;

/// IAM's quota of access keys per user (and per root user through the API).
const MAX_KEYS: usize = 2;
/// A key's last use is persisted at most this often (seconds).
const LAST_USED_GRANULARITY: i64 = 3600;

/// A cache entry: what resolution needs without touching storage.
pub(crate) enum CachedKey {
    LongTerm(Arc<ResolvedKey>),
    Session {
        key: Arc<ResolvedKey>,
        token_sha256: [u8; 32],
        expires: i64,
    },
}

/// Whose access keys an action is about.
enum KeyTarget {
    Root,
    User(String),
}

fn key_not_found(akid: &str) -> AwsError {
    errors::no_such_entity(format!("The Access Key with id {akid} cannot be found."))
}

fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

impl IamEngine {
    // ---- accounts ----

    /// Creates an account (a 12-digit id) if it does not exist. Idempotent.
    pub async fn create_account(&self, account_id: &str, now: OffsetDateTime) -> Result<(), AwsError> {
        if !is_account_id(account_id) {
            return Err(errors::validation(format!("Account id {account_id} is not 12 digits.")));
        }
        let _guard = self.lock(account_id).await;
        if self.load_account(account_id).await?.is_some() {
            return Ok(());
        }
        let rec = AccountRecord {
            account_id: account_id.to_string(),
            created: now.unix_timestamp(),
            root_access_keys: Vec::new(),
        };
        self.commit(vec![Write::put(model::account_key(account_id), model::to_bytes(&rec)?)])
            .await
    }

    pub async fn account_exists(&self, account_id: &str) -> Result<bool, AwsError> {
        Ok(is_account_id(account_id) && self.load_account(account_id).await?.is_some())
    }

    /// Every account id, sorted.
    pub async fn list_accounts(&self) -> Result<Vec<String>, AwsError> {
        let mut ids: Vec<String> = self
            .storage
            .list(model::ACCOUNTS)
            .await
            .map_err(errors::storage)?
            .into_iter()
            .filter(|k| !k.ends_with('/'))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// Creates (or, with `fixed`, installs: dev mode's `--dev-access-key`) an access key of
    /// the account root. The account must exist. A fixed key id that already belongs to this
    /// account's root is replaced (its secret updated); one that belongs to anyone else is
    /// refused. Returns the key id and secret.
    pub async fn create_root_access_key(
        &self,
        account_id: &str,
        fixed: Option<(String, SecretBytes)>,
        now: OffsetDateTime,
    ) -> Result<(String, SecretBytes), AwsError> {
        let _guard = self.lock(account_id).await;
        let mut account = self
            .load_account(account_id)
            .await?
            .ok_or_else(|| errors::no_such_entity(format!("The account {account_id} cannot be found.")))?;
        let (akid, secret) = match fixed {
            Some((id, secret)) => {
                // Dev mode accepts any id (fixtures use `test`); only `ASIA` is reserved for
                // session keys, and `/` cannot be part of a storage key.
                let ok_id = !id.is_empty()
                    && id.len() <= 128
                    && id.bytes().all(|b| b.is_ascii_graphic() && b != b'/')
                    && !id.starts_with("ASIA");
                if !ok_id || secret.is_empty() {
                    return Err(errors::validation(
                        "A fixed access key id must be 1-128 printable characters without '/' and not start with ASIA, with a non-empty secret.",
                    ));
                }
                if let Some(existing) = self.load_access_key(&id).await?
                    && !(existing.account_id == account_id && existing.owner == KeyOwner::Root)
                {
                    return Err(errors::already_exists(format!("Access key {id} already exists.")));
                }
                (id, secret)
            }
            None => (model::new_access_key_id("AKIA")?, model::new_secret()?),
        };
        let rec = AccessKeyRecord {
            access_key_id: akid.clone(),
            account_id: account_id.to_string(),
            owner: KeyOwner::Root,
            status: "Active".into(),
            created: now.unix_timestamp(),
            last_used: None,
            secret: model::encode_secret(&secret),
        };
        if !account.root_access_keys.contains(&akid) {
            account.root_access_keys.push(akid.clone());
        }
        self.commit(vec![
            Write::put(model::access_key_key(&akid), model::to_bytes(&rec)?),
            Write::put(model::account_key(account_id), model::to_bytes(&account)?),
        ])
        .await?;
        Ok((akid, secret))
    }

    /// Deletes every identity, policy, key and session of every account (dev-only
    /// `/moto-api/reset`). The caller re-creates its accounts and dev keys afterwards.
    pub async fn reset(&self) -> Result<(), AwsError> {
        loop {
            let keys = self.storage.scan("", None, 500).await.map_err(errors::storage)?;
            if keys.is_empty() {
                break;
            }
            self.commit(keys.into_iter().map(Write::delete).collect()).await?;
        }
        self.invalidate_cache();
        Ok(())
    }

    // ---- IAM access-key actions ----

    fn key_target(ctx: &RequestContext, p: &Params<'_>) -> Result<KeyTarget, AwsError> {
        if let Some(name) = p.get("UserName").filter(|n| !n.is_empty()) {
            params::check_name(name, "userName", 64)?;
            return Ok(KeyTarget::User(name.to_string()));
        }
        match caller(ctx) {
            Caller::Root => Ok(KeyTarget::Root),
            Caller::User(n) => Ok(KeyTarget::User(n)),
            Caller::Other => Err(errors::validation(
                "Must specify userName when calling with non-User credentials",
            )),
        }
    }

    /// The ids of the target's keys (root's or a user's).
    async fn target_keys(&self, ctx: &RequestContext, target: &KeyTarget) -> Result<Vec<String>, AwsError> {
        match target {
            KeyTarget::Root => Ok(self
                .load_account(&ctx.account_id)
                .await?
                .map(|a| a.root_access_keys)
                .unwrap_or_default()),
            KeyTarget::User(name) => Ok(self
                .entity_required(&ctx.account_id, EntityKind::User, name)
                .await?
                .access_keys),
        }
    }

    /// CreateAccessKey: a new key for a user (or, without `UserName`, the caller).
    pub(crate) async fn create_access_key(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let target = Self::key_target(ctx, p)?;
        let _guard = self.lock(&ctx.account_id).await;
        let akid = model::new_access_key_id("AKIA")?;
        let secret = model::new_secret()?;
        let (owner, owner_write) = match &target {
            KeyTarget::Root => {
                let mut account = self
                    .load_account(&ctx.account_id)
                    .await?
                    .unwrap_or_else(|| AccountRecord {
                        account_id: ctx.account_id.clone(),
                        created: ctx.now.unix_timestamp(),
                        root_access_keys: Vec::new(),
                    });
                if account.root_access_keys.len() >= MAX_KEYS {
                    return Err(errors::limit_exceeded(format!(
                        "Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS}"
                    )));
                }
                account.root_access_keys.push(akid.clone());
                (
                    KeyOwner::Root,
                    Write::put(model::account_key(&ctx.account_id), model::to_bytes(&account)?),
                )
            }
            KeyTarget::User(name) => {
                let mut user = self.entity_required(&ctx.account_id, EntityKind::User, name).await?;
                if user.access_keys.len() >= MAX_KEYS {
                    return Err(errors::limit_exceeded(format!(
                        "Cannot exceed quota for AccessKeysPerUser: {MAX_KEYS}"
                    )));
                }
                user.access_keys.push(akid.clone());
                (
                    KeyOwner::User {
                        name: user.name.clone(),
                        id: user.id.clone(),
                    },
                    Self::entity_write(&user, &ctx.account_id)?,
                )
            }
        };
        let rec = AccessKeyRecord {
            access_key_id: akid.clone(),
            account_id: ctx.account_id.clone(),
            owner: owner.clone(),
            status: "Active".into(),
            created: ctx.now.unix_timestamp(),
            last_used: None,
            secret: model::encode_secret(&secret),
        };
        self.commit(vec![
            Write::put(model::access_key_key(&akid), model::to_bytes(&rec)?),
            owner_write,
        ])
        .await?;
        let secret_text = String::from_utf8_lossy(secret.expose()).into_owned();
        let mut x = Xml::new();
        x.nest("AccessKey", |x| {
            if let KeyOwner::User { name, .. } = &owner {
                x.el("UserName", name);
            }
            x.el("AccessKeyId", &akid)
                .el("Status", "Active")
                .el("SecretAccessKey", &secret_text)
                .el("CreateDate", &model::iso(rec.created));
        });
        Ok(x.finish())
    }

    /// ListAccessKeys.
    pub(crate) async fn list_access_keys(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<String, AwsError> {
        let target = Self::key_target(ctx, p)?;
        let max = p.max_items()?;
        let mut recs = Vec::new();
        for id in self.target_keys(ctx, &target).await? {
            if let Some(r) = self.load_access_key(&id).await? {
                recs.push(r);
            }
        }
        recs.sort_by(|a, b| a.access_key_id.cmp(&b.access_key_id));
        let (recs, next) = params::page(recs, |r| r.access_key_id.clone(), p.marker(), max);
        let mut x = Xml::new();
        x.members("AccessKeyMetadata", &recs, |x, r| {
            if let KeyOwner::User { name, .. } = &r.owner {
                x.el("UserName", name);
            }
            x.el("AccessKeyId", &r.access_key_id)
                .el("Status", &r.status)
                .el("CreateDate", &model::iso(r.created));
        });
        x.paging(next.as_deref());
        Ok(x.finish())
    }

    /// The key `AccessKeyId` names, if it belongs to the target.
    async fn owned_key(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<(KeyTarget, AccessKeyRecord), AwsError> {
        let target = Self::key_target(ctx, p)?;
        let akid = p.required("AccessKeyId", "accessKeyId")?;
        let owned = self.target_keys(ctx, &target).await?;
        if !owned.iter().any(|k| k == akid) {
            return Err(key_not_found(akid));
        }
        let rec = self
            .load_access_key(akid)
            .await?
            .filter(|r| r.account_id == ctx.account_id)
            .ok_or_else(|| key_not_found(akid))?;
        Ok((target, rec))
    }

    /// UpdateAccessKey (Status Active|Inactive).
    pub(crate) async fn update_access_key(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<(), AwsError> {
        let status = p.required("Status", "status")?;
        if !matches!(status, "Active" | "Inactive") {
            return Err(errors::validation(format!(
                "1 validation error detected: Value '{status}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
            )));
        }
        let _guard = self.lock(&ctx.account_id).await;
        let (_, mut rec) = self.owned_key(ctx, p).await?;
        rec.status = status.to_string();
        self.commit(vec![Write::put(
            model::access_key_key(&rec.access_key_id),
            model::to_bytes(&rec)?,
        )])
        .await
    }

    /// DeleteAccessKey.
    pub(crate) async fn delete_access_key(&self, ctx: &RequestContext, p: &Params<'_>) -> Result<(), AwsError> {
        let _guard = self.lock(&ctx.account_id).await;
        let (target, rec) = self.owned_key(ctx, p).await?;
        let akid = rec.access_key_id;
        let owner_write = match target {
            KeyTarget::Root => {
                let mut account = self
                    .load_account(&ctx.account_id)
                    .await?
                    .ok_or_else(|| key_not_found(&akid))?;
                account.root_access_keys.retain(|k| *k != akid);
                Write::put(model::account_key(&ctx.account_id), model::to_bytes(&account)?)
            }
            KeyTarget::User(name) => {
                let mut user = self.entity_required(&ctx.account_id, EntityKind::User, &name).await?;
                user.access_keys.retain(|k| *k != akid);
                Self::entity_write(&user, &ctx.account_id)?
            }
        };
        self.commit(vec![Write::delete(model::access_key_key(&akid)), owner_write])
            .await
    }

    /// GetAccessKeyLastUsed.
    pub(crate) async fn get_access_key_last_used(
        &self,
        ctx: &RequestContext,
        p: &Params<'_>,
    ) -> Result<String, AwsError> {
        let akid = p.required("AccessKeyId", "accessKeyId")?;
        let rec = self
            .load_access_key(akid)
            .await?
            .filter(|r| r.account_id == ctx.account_id)
            .ok_or_else(|| key_not_found(akid))?;
        let mut x = Xml::new();
        if let KeyOwner::User { name, .. } = &rec.owner {
            x.el("UserName", name);
        }
        x.nest("AccessKeyLastUsed", |x| match &rec.last_used {
            Some(u) => {
                x.el("LastUsedDate", &model::iso(u.date))
                    .el("ServiceName", &u.service)
                    .el("Region", &u.region);
            }
            None => {
                x.el("ServiceName", "N/A").el("Region", "N/A");
            }
        });
        Ok(x.finish())
    }

    /// Records that a long-term key was used (for GetAccessKeyLastUsed). Persists at most
    /// once an hour per key, so calling it on every request is cheap. Session keys and
    /// unknown keys are ignored.
    pub async fn record_key_use(
        &self,
        akid: &str,
        service: &str,
        region: &str,
        now: OffsetDateTime,
    ) -> Result<(), AwsError> {
        if akid.starts_with("ASIA") {
            return Ok(());
        }
        let Some(rec) = self.load_access_key(akid).await? else {
            return Ok(());
        };
        let ts = now.unix_timestamp();
        if rec
            .last_used
            .as_ref()
            .is_some_and(|u| ts - u.date < LAST_USED_GRANULARITY)
        {
            return Ok(());
        }
        let _guard = self.lock(&rec.account_id).await;
        let Some(mut rec) = self.load_access_key(akid).await? else {
            return Ok(());
        };
        rec.last_used = Some(LastUsed {
            date: ts,
            service: service.to_string(),
            region: region.to_string(),
        });
        // Not a change resolution depends on: no cache invalidation needed.
        self.storage
            .put(&model::access_key_key(akid), model::to_bytes(&rec)?)
            .await
            .map_err(errors::storage)
    }

    // ---- resolution for SigV4 ----

    /// Resolves an access key id (and, for `ASIA` session keys, the `X-Amz-Security-Token`)
    /// to its secret and principal. Inactive and deleted keys are [`KeyResolution::Unknown`];
    /// a session key without its token or with the wrong one is
    /// [`KeyResolution::InvalidToken`], an expired session [`KeyResolution::Expired`].
    pub async fn resolve_access_key(
        &self,
        akid: &str,
        session_token: Option<&str>,
        now: OffsetDateTime,
    ) -> Result<KeyResolution, AwsError> {
        let cached = self.key_cache.read().get(akid).cloned();
        let entry = match cached {
            Some(e) => e,
            None => {
                let generation = self.generation.load(Ordering::SeqCst);
                let Some(entry) = self.load_cached_key(akid).await? else {
                    return Ok(KeyResolution::Unknown);
                };
                let entry = Arc::new(entry);
                let mut cache = self.key_cache.write();
                if self.generation.load(Ordering::SeqCst) == generation {
                    cache.insert(akid.to_string(), entry.clone());
                }
                entry
            }
        };
        Ok(match entry.as_ref() {
            CachedKey::LongTerm(key) => match session_token {
                Some(t) if !t.is_empty() => KeyResolution::InvalidToken,
                _ => KeyResolution::Valid(key.clone()),
            },
            CachedKey::Session {
                key,
                token_sha256,
                expires,
            } => {
                let Some(token) = session_token.filter(|t| !t.is_empty()) else {
                    return Ok(KeyResolution::InvalidToken);
                };
                let given = SecretBytes::new(coffer_crypto::hash::sha256(token.as_bytes()).to_vec());
                if !given.ct_eq(token_sha256) {
                    KeyResolution::InvalidToken
                } else if now.unix_timestamp() >= *expires {
                    KeyResolution::Expired
                } else {
                    KeyResolution::Valid(key.clone())
                }
            }
        })
    }

    /// Builds a cache entry from storage: `None` if the key is unknown, inactive, or its
    /// owner is gone.
    async fn load_cached_key(&self, akid: &str) -> Result<Option<CachedKey>, AwsError> {
        if akid.starts_with("ASIA") {
            let Some(s) = self.load_session(akid).await? else {
                return Ok(None);
            };
            let principal = self.session_principal(&s).await?;
            let Ok(token_sha256) = <[u8; 32]>::try_from(decode_hex(&s.token_sha256).as_slice()) else {
                return Err(errors::internal("session record: bad token hash"));
            };
            return Ok(Some(CachedKey::Session {
                key: Arc::new(ResolvedKey {
                    access_key_id: akid.to_string(),
                    secret: model::decode_secret(&s.secret)?,
                    principal,
                }),
                token_sha256,
                expires: s.expires,
            }));
        }
        let Some(rec) = self.load_access_key(akid).await? else {
            return Ok(None);
        };
        if rec.status != "Active" {
            return Ok(None);
        }
        let principal = match &rec.owner {
            KeyOwner::Root => Principal::root(&rec.account_id),
            KeyOwner::User { name, .. } => {
                let Some(user) = self.load_entity(&rec.account_id, EntityKind::User, name).await? else {
                    return Ok(None);
                };
                Principal {
                    account_id: rec.account_id.clone(),
                    arn: user.arn.clone(),
                    kind: PrincipalKind::User {
                        name: user.name.clone(),
                        id: user.id.clone(),
                    },
                    tags: user.tags.clone(),
                }
            }
        };
        Ok(Some(CachedKey::LongTerm(Arc::new(ResolvedKey {
            access_key_id: akid.to_string(),
            secret: model::decode_secret(&rec.secret)?,
            principal,
        }))))
    }

    /// The principal of a session: the role's tags overlaid with the session's.
    async fn session_principal(&self, s: &SessionRecord) -> Result<Principal, AwsError> {
        let mut tags: Vec<Tag> = self
            .load_entity(&s.account_id, EntityKind::Role, &s.role_name)
            .await?
            .filter(|r| r.id == s.role_id)
            .map(|r| r.tags)
            .unwrap_or_default();
        for t in &s.tags {
            match tags.iter_mut().find(|x| x.key.eq_ignore_ascii_case(&t.key)) {
                Some(x) => x.value = t.value.clone(),
                None => tags.push(t.clone()),
            }
        }
        Ok(Principal {
            account_id: s.account_id.clone(),
            arn: crate::sts::assumed_role_arn(&s.account_id, &s.role_name, &s.session_name),
            kind: PrincipalKind::AssumedRole {
                role_arn: s.role_arn.clone(),
                role_name: s.role_name.clone(),
                role_id: s.role_id.clone(),
                session_name: s.session_name.clone(),
                access_key_id: s.access_key_id.clone(),
                expires: s.expires,
            },
            tags,
        })
    }

    /// Removes sessions that expired before `now`; returns how many. For the core's
    /// background scheduler.
    pub async fn purge_expired_sessions(&self, now: OffsetDateTime) -> Result<usize, AwsError> {
        let mut removed = 0;
        let mut after: Option<String> = None;
        loop {
            let keys = self
                .storage
                .scan(model::SESSIONS, after.as_deref(), 500)
                .await
                .map_err(errors::storage)?;
            let Some(last) = keys.last().cloned() else { break };
            let mut writes = Vec::new();
            for k in &keys {
                let Some(s) = self.get_record::<SessionRecord>(k, "session").await? else {
                    continue;
                };
                if s.expires <= now.unix_timestamp() {
                    writes.push(Write::delete(k.clone()));
                }
            }
            removed += writes.len();
            if !writes.is_empty() {
                self.commit(writes).await?;
            }
            after = Some(last);
        }
        Ok(removed)
    }

    // ---- policies of a principal ----

    /// Every policy document that applies to `principal`, for the evaluator: a user's inline
    /// and attached policies and those of its groups; a role's inline and attached policies
    /// plus the session policies ([`PolicySource::is_session_policy`]: they bound the
    /// others). The root has none (it is allowed everything in its account). Attached
    /// policies that no longer exist are skipped.
    pub async fn principal_policies(&self, principal: &Principal) -> Result<Vec<PrincipalPolicy>, AwsError> {
        let account = principal.account_id.as_str();
        let mut out = Vec::new();
        match &principal.kind {
            PrincipalKind::Root => {}
            PrincipalKind::User { name, .. } => {
                let Some(user) = self.load_entity(account, EntityKind::User, name).await? else {
                    return Ok(out);
                };
                self.entity_policies(account, &user, &mut out).await?;
                for g in &user.groups {
                    if let Some(group) = self.load_entity(account, EntityKind::Group, g).await? {
                        self.entity_policies(account, &group, &mut out).await?;
                    }
                }
            }
            PrincipalKind::AssumedRole {
                role_name,
                role_id,
                access_key_id,
                ..
            } => {
                if let Some(role) = self
                    .load_entity(account, EntityKind::Role, role_name)
                    .await?
                    .filter(|r| r.id == *role_id)
                {
                    self.entity_policies(account, &role, &mut out).await?;
                }
                if let Some(s) = self.load_session(access_key_id).await? {
                    if let Some(doc) = s.service_policy {
                        out.push(PrincipalPolicy {
                            source: PolicySource::Inline {
                                owner_arn: s.role_arn.clone(),
                                name: "coffer-service".into(),
                            },
                            document: doc,
                        });
                    }
                    if let Some(doc) = s.session_policy {
                        out.push(PrincipalPolicy {
                            source: PolicySource::SessionInline,
                            document: doc,
                        });
                    }
                    for arn in s.policy_arns {
                        if let Some(doc) = self.policy_document(account, &arn).await? {
                            out.push(PrincipalPolicy {
                                source: PolicySource::SessionManaged { policy_arn: arn },
                                document: doc,
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    async fn entity_policies(
        &self,
        account: &str,
        e: &model::EntityRecord,
        out: &mut Vec<PrincipalPolicy>,
    ) -> Result<(), AwsError> {
        for (name, doc) in &e.inline {
            out.push(PrincipalPolicy {
                source: PolicySource::Inline {
                    owner_arn: e.arn.clone(),
                    name: name.clone(),
                },
                document: doc.clone(),
            });
        }
        for arn in &e.attached {
            if let Some(doc) = self.policy_document(account, arn).await? {
                out.push(PrincipalPolicy {
                    source: PolicySource::Attached {
                        owner_arn: e.arn.clone(),
                        policy_arn: arn.clone(),
                    },
                    document: doc,
                });
            }
        }
        Ok(())
    }

    /// A role's trust policy (for the evaluator and for tooling), by role ARN.
    pub async fn role_trust_policy(&self, role_arn: &str) -> Result<Option<String>, AwsError> {
        let Some((account, name)) = crate::sts::parse_role_arn(role_arn) else {
            return Ok(None);
        };
        Ok(self
            .load_entity(&account, EntityKind::Role, &name)
            .await?
            .filter(|r| r.arn == role_arn)
            .and_then(|r| r.trust_policy))
    }
}

fn decode_hex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .filter_map(|i| s.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}
