//! Grants: CreateGrant, ListGrants, RevokeGrant, RetireGrant, ListRetirableGrants.
//!
//! Grants are stored per key; the grant token is returned once and only its SHA-256 is
//! kept. A token is `base64url(key-id ":" grant-id ":" 32 random bytes in hex)`, so
//! RetireGrant can find the grant it names and then checks the hash. Grants are recorded but
//! not yet enforced (that comes with access control).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffer_crypto::SecretBytes;
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_storage::{Storage, Write};
use serde_json::{Value, json};

use crate::KmsEngine;
use crate::input::{Input, KmsInput, check_enum, check_len};
use crate::model::{self, GrantConstraints, GrantRecord, KeyRecord};
use crate::store::{self, ensure_not_pending_deletion, internal, not_found};

const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
];

fn grant_not_found(grant_id: &str) -> AwsError {
    not_found(format!("Grant ID {grant_id} not found"))
}

fn invalid_token() -> AwsError {
    AwsError::new(AwsErrorCode::InvalidGrantTokenException, "Invalid grant token")
}

fn token_hash(token: &str) -> String {
    coffer_crypto::hash::sha256_hex(token.as_bytes())
}

impl KmsEngine {
    async fn load_grant(&self, rec: &KeyRecord, grant_id: &str) -> Result<Option<GrantRecord>, AwsError> {
        if grant_id.contains('/') {
            return Ok(None);
        }
        match self
            .storage
            .get(&model::grant_path(&rec.account, &rec.region, &rec.key_id, grant_id))
            .await?
        {
            Some(b) => serde_json::from_slice(b.expose())
                .map(Some)
                .map_err(|_| internal("stored grant record is unreadable")),
            None => Ok(None),
        }
    }

    async fn delete_grant(&self, rec: &KeyRecord, grant_id: &str) -> Result<(), AwsError> {
        self.storage
            .batch(vec![Write::delete(model::grant_path(
                &rec.account,
                &rec.region,
                &rec.key_id,
                grant_id,
            ))])
            .await?;
        Ok(())
    }

    pub(crate) async fn create_grant(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let grantee = input.req_string("GranteePrincipal")?;
        check_len(grantee.chars().count(), 1, 256, "GranteePrincipal")?;
        let retiring = input.bounded_string("RetiringPrincipal", 256)?;
        let operations = crate::input::required(input.string_list("Operations")?, "Operations")?;
        for op in &operations {
            check_enum(op, GRANT_OPERATIONS, "Operations")?;
        }
        let name = input.bounded_string("Name", 256)?;
        let constraints = match input.object("Constraints")? {
            Some(c) => {
                let subset = c.string_map("EncryptionContextSubset")?;
                let equals = c.string_map("EncryptionContextEquals")?;
                Some(GrantConstraints { subset, equals })
            }
            None => None,
        };
        if let Some(t) = input.string_list("GrantTokens")? {
            check_len(t.len(), 0, 10, "GrantTokens")?;
        }
        let _guard = self.write.lock().await;
        let rec = self.key_for_update(ctx, input).await?;
        ensure_not_pending_deletion(&rec)?;
        if input.bool("DryRun")?.unwrap_or(false) {
            return Err(AwsError::new(
                AwsErrorCode::DryRunOperationException,
                "The request would have succeeded, but the DryRun option is set.",
            ));
        }
        let grant_id = store::new_material_id()?;
        let secret = store::new_material_id()?;
        let token = URL_SAFE_NO_PAD.encode(format!("{}:{grant_id}:{secret}", rec.key_id).as_bytes());
        let grant = GrantRecord {
            key_id: rec.key_id.clone(),
            grant_id: grant_id.clone(),
            token_sha256: token_hash(&token),
            name,
            grantee_principal: grantee,
            retiring_principal: retiring,
            issuing_account: format!("arn:aws:iam::{}:root", ctx.account_id),
            operations,
            constraints,
            created_ms: model::now_ms(ctx),
        };
        let bytes = serde_json::to_vec(&grant).map_err(|_| internal("grant record does not serialize"))?;
        self.storage
            .put(
                &model::grant_path(&rec.account, &rec.region, &rec.key_id, &grant_id),
                SecretBytes::new(bytes),
            )
            .await?;
        Ok(json!({ "GrantToken": token, "GrantId": grant_id }))
    }

    fn render_grant(rec: &KeyRecord, g: &GrantRecord) -> Value {
        let mut v = g.render();
        if let Some(m) = v.as_object_mut() {
            m.insert("KeyId".into(), json!(rec.arn));
        }
        v
    }

    pub(crate) async fn list_grants(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let (limit, marker) = input.paging(100)?;
        let grant_id = input.bounded_string("GrantId", 128)?;
        let grantee = input.bounded_string("GranteePrincipal", 256)?;
        let rec = self.key_for_update(ctx, input).await?;
        let items = self
            .grants_of(&rec)
            .await?
            .into_iter()
            .filter(|g| grant_id.as_ref().is_none_or(|id| *id == g.grant_id))
            .filter(|g| grantee.as_ref().is_none_or(|p| *p == g.grantee_principal))
            .enumerate()
            .map(|(i, g)| (format!("{i:08}"), Self::render_grant(&rec, &g)))
            .collect();
        let (grants, next) = store::page(items, marker.as_deref(), limit)?;
        let mut body = serde_json::Map::new();
        body.insert("Grants".into(), Value::Array(grants));
        Ok(store::with_marker(body, next))
    }

    pub(crate) async fn revoke_grant(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let grant_id = input.req_string("GrantId")?;
        check_len(grant_id.chars().count(), 1, 128, "GrantId")?;
        let _guard = self.write.lock().await;
        let rec = self.key_for_update(ctx, input).await?;
        if self.load_grant(&rec, &grant_id).await?.is_none() {
            return Err(grant_not_found(&grant_id));
        }
        self.delete_grant(&rec, &grant_id).await?;
        Ok(json!({}))
    }

    pub(crate) async fn retire_grant(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let token = input.bounded_string("GrantToken", 8192)?;
        let key_id = input.bounded_string("KeyId", 2048)?;
        let grant_id = input.bounded_string("GrantId", 128)?;
        let _guard = self.write.lock().await;
        let (rec, grant_id) = match (token, key_id, grant_id) {
            (Some(token), _, _) => {
                let decoded = URL_SAFE_NO_PAD
                    .decode(token.as_bytes())
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(invalid_token)?;
                let mut parts = decoded.splitn(3, ':');
                let (Some(kid), Some(gid), Some(_)) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(invalid_token());
                };
                if !store::is_key_id(kid) {
                    return Err(invalid_token());
                }
                let rec = self
                    .load_key(&ctx.account_id, &ctx.region, kid)
                    .await?
                    .ok_or_else(invalid_token)?;
                let grant = self.load_grant(&rec, gid).await?.ok_or_else(|| grant_not_found(gid))?;
                if grant.token_sha256 != token_hash(&token) {
                    return Err(invalid_token());
                }
                (rec, grant.grant_id)
            }
            (None, Some(key_id), Some(grant_id)) => {
                let rec = self.resolve(ctx, &key_id, false).await?;
                if self.load_grant(&rec, &grant_id).await?.is_none() {
                    return Err(grant_not_found(&grant_id));
                }
                (rec, grant_id)
            }
            _ => {
                return Err(AwsError::validation(
                    "Either GrantToken, or both KeyId and GrantId, must be specified.",
                ));
            }
        };
        self.delete_grant(&rec, &grant_id).await?;
        Ok(json!({}))
    }

    pub(crate) async fn list_retirable_grants(&self, ctx: &RequestContext, input: &Input) -> Result<Value, AwsError> {
        let (limit, marker) = input.paging(100)?;
        let principal = input.req_string("RetiringPrincipal")?;
        check_len(principal.chars().count(), 1, 256, "RetiringPrincipal")?;
        let mut items = Vec::new();
        for rec in self.keys_in_region(&ctx.account_id, &ctx.region).await? {
            for g in self.grants_of(&rec).await? {
                if g.retiring_principal.as_deref() == Some(principal.as_str()) {
                    items.push((format!("{}/{}", rec.key_id, g.grant_id), Self::render_grant(&rec, &g)));
                }
            }
        }
        let (grants, next) = store::page(items, marker.as_deref(), limit)?;
        let mut body = serde_json::Map::new();
        body.insert("Grants".into(), Value::Array(grants));
        Ok(store::with_marker(body, next))
    }
}
