//! Storage access: loading and saving records and material, resolving `KeyId` inputs (key
//! id, key ARN, alias name, alias ARN), creating AWS-managed keys on first use, key states,
//! markers, the background pass and reset.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_crypto::SecretBytes;
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_storage::{Storage, Write};
use time::OffsetDateTime;

use crate::KmsEngine;
use crate::model::{self, AliasRecord, GrantRecord, KeyRecord, Rotation};
use crate::spec::{KeySpec, KeyUsage};

pub(crate) fn not_found(message: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::NotFoundException, message)
}

pub(crate) fn internal(message: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::KMSInternalException, message)
}

pub(crate) fn invalid_state(message: impl Into<String>) -> AwsError {
    AwsError::new(AwsErrorCode::KMSInvalidStateException, message)
}

/// What a `KeyId` input names.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum KeyRef {
    Key {
        account: Option<String>,
        region: Option<String>,
        id: String,
    },
    Alias {
        account: Option<String>,
        region: Option<String>,
        name: String,
    },
}

/// Whether `s` has the form of a key id: a UUID, or `mrk-` and 32 hex digits.
pub(crate) fn is_key_id(s: &str) -> bool {
    let uuid = s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    let mrk = s
        .strip_prefix("mrk-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    uuid || mrk
}

/// Parses a `KeyId` input.
pub(crate) fn parse_key_ref(s: &str) -> Result<KeyRef, AwsError> {
    if let Some(rest) = s.strip_prefix("arn:") {
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        // Every Coffer key and alias ARN is in the `aws` partition (model::key_arn): an
        // `aws-cn`/`aws-us-gov` ARN names a key that is not here.
        if parts.len() == 5 && parts[0] == "aws" && parts[1] == "kms" {
            let (region, account, resource) = (parts[2], parts[3], parts[4]);
            if let Some(id) = resource.strip_prefix("key/") {
                return Ok(KeyRef::Key {
                    account: Some(account.to_string()),
                    region: Some(region.to_string()),
                    id: id.to_string(),
                });
            }
            if resource.starts_with("alias/") {
                return Ok(KeyRef::Alias {
                    account: Some(account.to_string()),
                    region: Some(region.to_string()),
                    name: resource.to_string(),
                });
            }
        }
        return Err(not_found(format!("Invalid arn {s}")));
    }
    if s.starts_with("alias/") {
        return Ok(KeyRef::Alias {
            account: None,
            region: None,
            name: s.to_string(),
        });
    }
    Ok(KeyRef::Key {
        account: None,
        region: None,
        id: s.to_string(),
    })
}

/// The `<arn> is disabled.` / `pending deletion` / `pending import` checks every
/// cryptographic operation makes.
pub(crate) fn ensure_usable(rec: &KeyRecord) -> Result<(), AwsError> {
    match rec.state.as_str() {
        model::STATE_ENABLED => Ok(()),
        model::STATE_DISABLED => Err(AwsError::new(
            AwsErrorCode::DisabledException,
            format!("{} is disabled.", rec.arn),
        )),
        model::STATE_PENDING_DELETION => Err(invalid_state(format!("{} is pending deletion.", rec.arn))),
        model::STATE_PENDING_IMPORT => Err(invalid_state(format!("{} is pending import.", rec.arn))),
        other => Err(invalid_state(format!("{} is {other}.", rec.arn))),
    }
}

/// Rejects changes to a key pending deletion.
pub(crate) fn ensure_not_pending_deletion(rec: &KeyRecord) -> Result<(), AwsError> {
    if rec.state == model::STATE_PENDING_DELETION {
        return Err(invalid_state(format!("{} is pending deletion.", rec.arn)));
    }
    Ok(())
}

pub(crate) fn ensure_usage(rec: &KeyRecord, usage: KeyUsage, op: &str) -> Result<(), AwsError> {
    if rec.key_usage != usage {
        return Err(AwsError::new(
            AwsErrorCode::InvalidKeyUsageException,
            format!(
                "{} key usage is {} which is not valid for {op}.",
                rec.arn,
                rec.key_usage.as_str()
            ),
        ));
    }
    Ok(())
}

pub(crate) fn encode_marker(key: &str) -> String {
    URL_SAFE_NO_PAD.encode(key.as_bytes())
}

pub(crate) fn decode_marker(marker: &str) -> Result<String, AwsError> {
    URL_SAFE_NO_PAD
        .decode(marker.as_bytes())
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| AwsError::new(AwsErrorCode::InvalidMarkerException, "Invalid marker"))
}

/// One page of `items` (sorted by their key) after `marker`; the next marker if more follow.
pub(crate) fn page<T>(
    items: Vec<(String, T)>,
    marker: Option<&str>,
    limit: usize,
) -> Result<(Vec<T>, Option<String>), AwsError> {
    let after = marker.map(decode_marker).transpose()?;
    let mut rest = items
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k.as_str() > a.as_str()));
    let mut out = Vec::new();
    let mut last = None;
    for (k, v) in rest.by_ref().take(limit) {
        last = Some(k);
        out.push(v);
    }
    let next = if rest.next().is_some() {
        last.as_deref().map(encode_marker)
    } else {
        None
    };
    Ok((out, next))
}

/// Adds `Truncated` and `NextMarker` to a list response.
pub(crate) fn with_marker(
    mut body: serde_json::Map<String, serde_json::Value>,
    next: Option<String>,
) -> serde_json::Value {
    body.insert("Truncated".into(), serde_json::json!(next.is_some()));
    if let Some(n) = next {
        body.insert("NextMarker".into(), serde_json::json!(n));
    }
    serde_json::Value::Object(body)
}

/// A fresh key-material id: 64 hex digits, as AWS's `KeyMaterialId`.
pub(crate) fn new_material_id() -> Result<String, AwsError> {
    let b = coffer_crypto::random::secret_bytes(32).map_err(|_| internal("random generation failed"))?;
    Ok(hex::encode(b.expose()))
}

pub(crate) fn new_key_id() -> Result<String, AwsError> {
    coffer_crypto::random::uuid_v4().map_err(|_| internal("random generation failed"))
}

/// What the engine's storage layer keeps decoded: key records, aliases and key material, the
/// three reads of every cryptographic operation. Material is held in zeroizing
/// [`SecretBytes`] and forgotten with the rest when the barrier seals.
pub(crate) enum Cached {
    Key(Box<KeyRecord>),
    Alias(AliasRecord),
    Material(SecretBytes),
}

impl Cached {
    fn key(&self) -> Option<&KeyRecord> {
        match self {
            Cached::Key(k) => Some(k),
            _ => None,
        }
    }

    fn alias(&self) -> Option<&AliasRecord> {
        match self {
            Cached::Alias(a) => Some(a),
            _ => None,
        }
    }

    fn material(&self) -> Option<&SecretBytes> {
        match self {
            Cached::Material(m) => Some(m),
            _ => None,
        }
    }
}

impl KmsEngine {
    /// The `T` stored at `path`, read through the cache: `decode` on a miss, `pick` to take
    /// it out of the cached variant (a path whose entry is another variant is corrupt).
    async fn load_cached<T: Clone>(
        &self,
        path: &str,
        decode: impl FnOnce(&[u8]) -> Result<Cached, AwsError>,
        pick: fn(&Cached) -> Option<&T>,
    ) -> Result<Option<T>, AwsError> {
        match self.storage.get_decoded(path, decode).await? {
            None => Ok(None),
            Some(found) => pick(&found)
                .cloned()
                .map(Some)
                .ok_or_else(|| internal("a KMS path holds another kind of record")),
        }
    }

    pub(crate) async fn load_key(&self, account: &str, region: &str, id: &str) -> Result<Option<KeyRecord>, AwsError> {
        let decode = |b: &[u8]| KeyRecord::from_bytes(b).map(|k| Cached::Key(Box::new(k)));
        self.load_cached(&model::key_path(account, region, id), decode, Cached::key)
            .await
    }

    pub(crate) async fn save_key(&self, rec: &KeyRecord) -> Result<(), AwsError> {
        self.storage
            .put(
                &model::key_path(&rec.account, &rec.region, &rec.key_id),
                SecretBytes::new(rec.to_bytes()?),
            )
            .await?;
        Ok(())
    }

    pub(crate) async fn load_alias(
        &self,
        account: &str,
        region: &str,
        name: &str,
    ) -> Result<Option<AliasRecord>, AwsError> {
        let decode = |b: &[u8]| {
            serde_json::from_slice(b)
                .map(Cached::Alias)
                .map_err(|_| internal("stored alias record is unreadable"))
        };
        self.load_cached(&model::alias_path(account, region, name), decode, Cached::alias)
            .await
    }

    pub(crate) fn alias_write(account: &str, region: &str, alias: &AliasRecord) -> Result<Write, AwsError> {
        let bytes = serde_json::to_vec(alias).map_err(|_| internal("alias record does not serialize"))?;
        Ok(Write::put(
            model::alias_path(account, region, &alias.name),
            SecretBytes::new(bytes),
        ))
    }

    /// The material of one version of a key.
    pub(crate) async fn load_material(&self, rec: &KeyRecord, version: u32) -> Result<SecretBytes, AwsError> {
        let path = model::material_path(&rec.account, &rec.region, &rec.key_id, version);
        let decode = |b: &[u8]| Ok(Cached::Material(SecretBytes::from_slice(b)));
        self.load_cached(&path, decode, Cached::material)
            .await?
            .ok_or_else(|| internal("key material is missing"))
    }

    /// The key a `KeyId` input names, in the caller's account and region. With
    /// `allow_alias`, alias names and ARNs are followed, and naming an `alias/aws/<service>`
    /// alias that does not exist yet creates that AWS-managed key. Without it, an alias is
    /// `NotFoundException` "Invalid keyId ..." as for operations that take only key ids.
    pub(crate) async fn resolve(
        &self,
        ctx: &RequestContext,
        key_id: &str,
        allow_alias: bool,
    ) -> Result<KeyRecord, AwsError> {
        let (acct, region) = (ctx.account_id.as_str(), ctx.region.as_str());
        match parse_key_ref(key_id)? {
            KeyRef::Key { account, region: r, id } => {
                let arn = model::key_arn(account.as_deref().unwrap_or(acct), r.as_deref().unwrap_or(region), &id);
                if account.as_deref().is_some_and(|a| a != acct) || r.as_deref().is_some_and(|x| x != region) {
                    return Err(not_found(format!("Key '{arn}' does not exist")));
                }
                if account.is_none() && !is_key_id(&id) {
                    return Err(not_found(format!("Invalid keyId {key_id}")));
                }
                self.load_key(acct, region, &id)
                    .await?
                    .ok_or_else(|| not_found(format!("Key '{arn}' does not exist")))
            }
            KeyRef::Alias {
                account,
                region: r,
                name,
            } => {
                if !allow_alias {
                    return Err(not_found(format!("Invalid keyId {key_id}")));
                }
                let arn = model::alias_arn(
                    account.as_deref().unwrap_or(acct),
                    r.as_deref().unwrap_or(region),
                    &name,
                );
                if account.as_deref().is_some_and(|a| a != acct) || r.as_deref().is_some_and(|x| x != region) {
                    return Err(not_found(format!("Alias {arn} is not found.")));
                }
                let alias = match self.load_alias(acct, region, &name).await? {
                    Some(a) => a,
                    None => match aws_managed_service(&name) {
                        Some(service) => self.create_aws_managed(ctx, &name, service).await?,
                        None => return Err(not_found(format!("Alias {arn} is not found."))),
                    },
                };
                let key_arn = model::key_arn(acct, region, &alias.target_key_id);
                self.load_key(acct, region, &alias.target_key_id)
                    .await?
                    .ok_or_else(|| not_found(format!("Key '{key_arn}' does not exist")))
            }
        }
    }

    /// Creates the AWS-managed key behind `alias/aws/<service>` (or returns the alias a
    /// concurrent request created first).
    async fn create_aws_managed(
        &self,
        ctx: &RequestContext,
        alias: &str,
        service: &str,
    ) -> Result<AliasRecord, AwsError> {
        let _guard = self.write.lock().await;
        if let Some(a) = self.load_alias(&ctx.account_id, &ctx.region, alias).await? {
            return Ok(a);
        }
        let now = model::now_ms(ctx);
        let mut rec = self.new_key_record(
            ctx,
            KeySpec::SymmetricDefault,
            KeyUsage::EncryptDecrypt,
            format!("Default key that protects my {service} data when no other key is defined"),
            model::aws_managed_policy(&ctx.account_id, &ctx.region, service),
        )?;
        rec.key_manager = "AWS".into();
        rec.rotation_enabled = true;
        rec.rotation_period_days = Some(365);
        rec.next_rotation_ms = Some(now + 365 * model::MS_PER_DAY);
        let material = crate::crypto::generate_material(KeySpec::SymmetricDefault)?;
        rec.material_ids.push(new_material_id()?);
        let alias_rec = AliasRecord {
            name: alias.to_string(),
            target_key_id: rec.key_id.clone(),
            created_ms: now,
            updated_ms: now,
        };
        let writes = vec![
            Write::put(
                model::material_path(&rec.account, &rec.region, &rec.key_id, 1),
                material,
            ),
            Write::put(
                model::key_path(&rec.account, &rec.region, &rec.key_id),
                SecretBytes::new(rec.to_bytes()?),
            ),
            Self::alias_write(&ctx.account_id, &ctx.region, &alias_rec)?,
        ];
        self.storage.batch(writes).await?;
        tracing::info!(account = %ctx.account_id, region = %ctx.region, alias, "created AWS-managed KMS key");
        Ok(alias_rec)
    }

    /// A new, enabled key record without material.
    pub(crate) fn new_key_record(
        &self,
        ctx: &RequestContext,
        spec: KeySpec,
        usage: KeyUsage,
        description: String,
        policy: String,
    ) -> Result<KeyRecord, AwsError> {
        let id = new_key_id()?;
        Ok(KeyRecord {
            account: ctx.account_id.clone(),
            region: ctx.region.clone(),
            arn: model::key_arn(&ctx.account_id, &ctx.region, &id),
            key_id: id,
            created_ms: model::now_ms(ctx),
            description,
            key_usage: usage,
            key_spec: spec,
            origin: "AWS_KMS".into(),
            key_manager: "CUSTOMER".into(),
            state: model::STATE_ENABLED.into(),
            deletion_ms: None,
            pending_window_days: None,
            policy,
            tags: Vec::new(),
            rotation_enabled: false,
            rotation_period_days: None,
            next_rotation_ms: None,
            rotations: Vec::new(),
            material_ids: Vec::new(),
        })
    }

    /// Adds a new material version to a symmetric key (rotation) and saves it: the material
    /// first, then the record that makes it current.
    pub(crate) async fn add_material_version(
        &self,
        rec: &mut KeyRecord,
        now_ms: i64,
        kind: &str,
    ) -> Result<(), AwsError> {
        let material = crate::crypto::generate_material(rec.key_spec)?;
        let id = new_material_id()?;
        let version = rec.current_version() + 1;
        self.storage
            .put(
                &model::material_path(&rec.account, &rec.region, &rec.key_id, version),
                material,
            )
            .await?;
        rec.material_ids.push(id.clone());
        rec.rotations.push(Rotation {
            material_id: id,
            date_ms: now_ms,
            kind: kind.to_string(),
        });
        self.save_key(rec).await
    }

    /// Every key record of one account and region, sorted by key id.
    pub(crate) async fn keys_in_region(&self, account: &str, region: &str) -> Result<Vec<KeyRecord>, AwsError> {
        let mut out = Vec::new();
        for name in self.storage.list(&model::keys_prefix(account, region)).await? {
            if name.ends_with('/') {
                continue;
            }
            if let Some(rec) = self.load_key(account, region, &name).await? {
                out.push(rec);
            }
        }
        out.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(out)
    }

    pub(crate) async fn aliases_in_region(&self, account: &str, region: &str) -> Result<Vec<AliasRecord>, AwsError> {
        let prefix = model::aliases_prefix(account, region);
        let mut out = Vec::new();
        for name in self.storage.list(&prefix).await? {
            if name.ends_with('/') {
                continue;
            }
            if let Some(b) = self.storage.get(&format!("{prefix}{name}")).await? {
                let a: AliasRecord =
                    serde_json::from_slice(b.expose()).map_err(|_| internal("stored alias record is unreadable"))?;
                out.push(a);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub(crate) async fn grants_of(&self, rec: &KeyRecord) -> Result<Vec<GrantRecord>, AwsError> {
        let prefix = model::grants_prefix(&rec.account, &rec.region, &rec.key_id);
        let mut out = Vec::new();
        for name in self.storage.list(&prefix).await? {
            if let Some(b) = self.storage.get(&format!("{prefix}{name}")).await? {
                let g: GrantRecord =
                    serde_json::from_slice(b.expose()).map_err(|_| internal("stored grant record is unreadable"))?;
                out.push(g);
            }
        }
        out.sort_by(|a, b| {
            a.created_ms
                .cmp(&b.created_ms)
                .then_with(|| a.grant_id.cmp(&b.grant_id))
        });
        Ok(out)
    }

    /// All full storage keys under `prefix`.
    pub(crate) async fn scan_all(&self, prefix: &str) -> Result<Vec<String>, AwsError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let keys = self.storage.scan(prefix, after.as_deref(), 1000).await?;
            let Some(last) = keys.last().cloned() else { break };
            out.extend(keys);
            after = Some(last);
        }
        Ok(out)
    }

    /// Erases a key with its material, grants and the aliases that point at it.
    async fn erase_key(&self, rec: &KeyRecord) -> Result<(), AwsError> {
        let mut writes = vec![Write::delete(model::key_path(&rec.account, &rec.region, &rec.key_id))];
        for k in self
            .scan_all(&model::material_prefix(&rec.account, &rec.region, &rec.key_id))
            .await?
        {
            writes.push(Write::delete(k));
        }
        for k in self
            .scan_all(&model::grants_prefix(&rec.account, &rec.region, &rec.key_id))
            .await?
        {
            writes.push(Write::delete(k));
        }
        for a in self.aliases_in_region(&rec.account, &rec.region).await? {
            if a.target_key_id == rec.key_id {
                writes.push(Write::delete(model::alias_path(&rec.account, &rec.region, &a.name)));
            }
        }
        self.storage.batch(writes).await?;
        Ok(())
    }

    pub(crate) async fn background_impl(&self, now: OffsetDateTime) -> Result<usize, AwsError> {
        let now_ms = model::ms_of(now);
        let mut done = 0;
        let _guard = self.write.lock().await;
        for path in self.scan_all("keys/").await? {
            let Some(bytes) = self.storage.get(&path).await? else {
                continue;
            };
            let Ok(mut rec) = KeyRecord::from_bytes(bytes.expose()) else {
                tracing::warn!(path, "skipping unreadable KMS key record");
                continue;
            };
            if rec.state == model::STATE_PENDING_DELETION && rec.deletion_ms.is_some_and(|d| d <= now_ms) {
                self.erase_key(&rec).await?;
                tracing::info!(key = %rec.arn, "deleted KMS key whose waiting period ended");
                done += 1;
                continue;
            }
            if rec.rotation_enabled
                && rec.state == model::STATE_ENABLED
                && rec.key_spec == KeySpec::SymmetricDefault
                && rec.next_rotation_ms.is_some_and(|n| n <= now_ms)
            {
                let period = rec.rotation_period_days.unwrap_or(365);
                rec.next_rotation_ms = Some(now_ms + period * model::MS_PER_DAY);
                self.add_material_version(&mut rec, now_ms, "AUTOMATIC").await?;
                tracing::info!(key = %rec.arn, "rotated KMS key material");
                done += 1;
            }
        }
        Ok(done)
    }

    pub(crate) async fn reset_impl(&self) -> Result<(), AwsError> {
        let _guard = self.write.lock().await;
        let mut writes = Vec::new();
        for prefix in ["keys/", "material/", "aliases/", "grants/"] {
            writes.extend(self.scan_all(prefix).await?.into_iter().map(Write::delete));
        }
        for chunk in writes.chunks(1000) {
            self.storage.batch(chunk.to_vec()).await?;
        }
        Ok(())
    }
}

/// The service of an AWS-managed alias (`alias/aws/<service>`), if `name` is one.
pub(crate) fn aws_managed_service(name: &str) -> Option<&str> {
    let svc = name.strip_prefix("alias/aws/")?;
    (!svc.is_empty() && svc.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')).then_some(svc)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn key_refs() {
        assert!(is_key_id("d25652e4-d2d2-49f7-929a-671ccda580c6"));
        assert!(is_key_id("mrk-0123456789abcdef0123456789abcdef"));
        assert!(!is_key_id("not-a-uuid"));
        assert_eq!(
            parse_key_ref("arn:aws:kms:us-east-1:012345678912:alias/x").unwrap(),
            KeyRef::Alias {
                account: Some("012345678912".into()),
                region: Some("us-east-1".into()),
                name: "alias/x".into()
            }
        );
        assert!(parse_key_ref("arn:aws:s3:::bucket").is_err());
        assert_eq!(aws_managed_service("alias/aws/ssm"), Some("ssm"));
        assert_eq!(aws_managed_service("alias/aws/"), None);
        assert_eq!(aws_managed_service("alias/ssm"), None);
    }

    #[test]
    fn pages() {
        let items: Vec<(String, u32)> = (0..5).map(|i| (format!("{i:02}"), i)).collect();
        let (p, m) = page(items.clone(), None, 2).unwrap();
        assert_eq!(p, vec![0, 1]);
        let (p, m) = page(items.clone(), m.as_deref(), 2).unwrap();
        assert_eq!(p, vec![2, 3]);
        let (p, m) = page(items, m.as_deref(), 2).unwrap();
        assert_eq!(p, vec![4]);
        assert!(m.is_none());
    }
}
