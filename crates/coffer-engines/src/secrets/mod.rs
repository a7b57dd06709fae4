//! The AWS Secrets Manager engine (placeholder; being written).

use coffer_storage::DynStorage;
use serde_json::Value;

use crate::{AwsError, RequestContext};

/// The Secrets Manager engine over one storage view.
pub struct SecretsEngine {
    #[allow(dead_code)]
    storage: DynStorage,
}

impl SecretsEngine {
    pub fn new(storage: DynStorage) -> Self {
        Self { storage }
    }

    /// Runs one Secrets Manager operation (`op` is the part after `secretsmanager.` in
    /// `X-Amz-Target`) on its JSON input and returns the JSON output.
    pub async fn handle(&self, _ctx: &RequestContext, op: &str, _input: Value) -> Result<Value, AwsError> {
        Err(AwsError::internal(format!("{op} is not implemented yet")))
    }

    /// Permanently removes secrets whose recovery window has ended. Called periodically by
    /// the core's scheduler (on the leader only).
    pub async fn purge_expired(&self, _ctx: &RequestContext) -> Result<usize, AwsError> {
        Ok(0)
    }
}
