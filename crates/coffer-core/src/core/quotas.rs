//! The core's facade over Vault's rate limit quotas: the root-token operations behind
//! `sys/quotas/*` (each change an operator audit event) and the check the request guard makes.

use std::net::IpAddr;

use serde_json::json;

use super::{Client, Core};
use crate::CoreError;
use crate::quotas::{QuotaConfig, QuotaDecision, QuotaTarget, RateLimitQuota};

impl Core {
    /// Creates or replaces a rate limit quota (root token). Takes effect at once.
    pub async fn write_rate_limit_quota(
        &self,
        token: Option<&str>,
        client: &Client,
        input: RateLimitQuota,
    ) -> Result<(), CoreError> {
        let entry = self.require_root_token(token).await?;
        let details = json!({
            "name": input.name,
            "path": input.path,
            "rate": input.rate,
            "interval": input.interval.as_secs_f64(),
            "blockInterval": input.block_interval.as_secs_f64(),
        });
        self.quotas.write(&self.sys, input).await?;
        let event = self.op_event("WriteRateLimitQuota", client, Some(&entry), details, None);
        self.audit.operator_event(event).await
    }

    /// A rate limit quota by name (root token); `None` when there is none.
    pub async fn read_rate_limit_quota(
        &self,
        token: Option<&str>,
        name: &str,
    ) -> Result<Option<RateLimitQuota>, CoreError> {
        self.require_root_token(token).await?;
        Ok(self.quotas.read(name))
    }

    /// Deletes a rate limit quota (root token); deleting one that does not exist succeeds.
    pub async fn delete_rate_limit_quota(
        &self,
        token: Option<&str>,
        client: &Client,
        name: &str,
    ) -> Result<(), CoreError> {
        let entry = self.require_root_token(token).await?;
        self.quotas.delete(&self.sys, name).await?;
        let event = self.op_event(
            "DeleteRateLimitQuota",
            client,
            Some(&entry),
            json!({ "name": name }),
            None,
        );
        self.audit.operator_event(event).await
    }

    /// The names of every rate limit quota, sorted (root token).
    pub async fn list_rate_limit_quotas(&self, token: Option<&str>) -> Result<Vec<String>, CoreError> {
        self.require_root_token(token).await?;
        Ok(self.quotas.names())
    }

    /// `sys/quotas/config` (root token).
    pub async fn quota_config(&self, token: Option<&str>) -> Result<QuotaConfig, CoreError> {
        self.require_root_token(token).await?;
        Ok(self.quotas.config())
    }

    /// Replaces `sys/quotas/config` (root token).
    pub async fn write_quota_config(
        &self,
        token: Option<&str>,
        client: &Client,
        config: QuotaConfig,
    ) -> Result<(), CoreError> {
        let entry = self.require_root_token(token).await?;
        let details = json!({
            "enableRateLimitAuditLogging": config.enable_rate_limit_audit_logging,
            "enableRateLimitResponseHeaders": config.enable_rate_limit_response_headers,
            "rateLimitExemptPaths": config.rate_limit_exempt_paths,
        });
        self.quotas.write_config(&self.sys, config).await?;
        let event = self.op_event("WriteQuotaConfig", client, Some(&entry), details, None);
        self.audit.operator_event(event).await
    }

    /// Counts a request from `client` against the rate limit quota that applies to it (no
    /// storage access: the rules are in memory). `None` when no quota applies (none set, an
    /// exempt path, or sealed).
    pub fn apply_rate_limit_quota(&self, target: QuotaTarget<'_>, client: IpAddr) -> Option<QuotaDecision> {
        self.quotas.apply(target, client)
    }
}
