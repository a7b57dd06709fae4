//! Coffer's core: the one place every request passes through.
//!
//! [`Core`] owns the barrier (seal state and encryption at rest), the identity store (access
//! keys and tokens), the engines mounted on the barrier, and the background jobs. Protocol
//! front ends (`coffer-api-aws`, `coffer-api-vault`) authenticate a caller through
//! [`Core::resolve_access_key`] / [`Core::token`] and then call [`Core::handle_aws`] (or
//! [`Core::handle_iam`] for IAM/STS), which authorize the request before any engine runs; they never touch
//! storage or engines directly.

mod audit;
mod authz;
mod clock;
mod core;
mod error;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod fault_tests;
mod identity;
pub mod limits;
mod quotas;
mod rotation;

pub use crate::audit::{AuditDeviceSpec, DEFAULT_MAX_BYTES as DEFAULT_AUDIT_FILE_MAX_BYTES};
pub use crate::authz::RequestEnv;
pub use crate::clock::Clock;
pub use crate::core::{
    Client, Core, CoreOptions, DevInit, InitOutput, MetricsRenderer, RestoreSummary, RootCredentials,
};
pub use crate::error::CoreError;
pub use crate::quotas::{
    DEFAULT_EXEMPT_PATHS, QuotaConfig, QuotaDecision, QuotaTarget, RateLimitHeaders, RateLimitQuota,
};
pub use crate::rotation::{MAX_CONCURRENT as MAX_CONCURRENT_ROTATIONS, RotationStats};
pub use coffer_audit;
pub use coffer_barrier::SealStatus;
pub use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
pub use coffer_iam;
pub use coffer_iam::{KeyResolution, Principal, PrincipalKind, ResolvedKey};
pub use coffer_storage::snapshot::{ByteSource, SnapshotExport};

/// The AWS services Coffer answers on `POST /`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AwsService {
    SecretsManager,
    /// SSM Parameter Store (`AmazonSSM.*`).
    Ssm,
    /// KMS (`TrentService.*`).
    Kms,
    /// CloudTrail `LookupEvents` over the audit log.
    CloudTrail,
    /// Coffer's rotation API (`CofferRotation.*`): rotation functions, addressed by Lambda
    /// ARNs and authorized as `lambda:*` actions, and the rotation status of a secret.
    Rotation,
}

impl AwsService {
    /// Maps an `X-Amz-Target` prefix to a service.
    pub fn from_target_prefix(prefix: &str) -> Option<Self> {
        match prefix {
            "secretsmanager" => Some(Self::SecretsManager),
            "AmazonSSM" => Some(Self::Ssm),
            "TrentService" => Some(Self::Kms),
            "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101" => Some(Self::CloudTrail),
            "CofferRotation" => Some(Self::Rotation),
            _ => None,
        }
    }

    /// The SigV4 signing name that must appear in the credential scope.
    pub fn signing_name(self) -> &'static str {
        match self {
            Self::SecretsManager => "secretsmanager",
            Self::Ssm => "ssm",
            Self::Kms => "kms",
            Self::CloudTrail => "cloudtrail",
            Self::Rotation => "lambda",
        }
    }
}
