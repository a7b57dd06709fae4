//! Coffer's policy evaluator: a pure crate (no I/O, no clock, no async).
//!
//! - [`PolicyDocument::parse_json`] validates an IAM JSON policy as IAM does for its
//!   [`PolicyKind`], returning IAM's `MalformedPolicyDocument` reason on failure.
//! - Documents compile into the one model, [`CompiledPolicy`] of [`Statement`]s, that Vault
//!   policies also compile into ([`Statement::vault`], [`VaultPathPattern`]).
//! - [`evaluate`] decides an [`AuthzRequest`] against identity policies, a resource policy and a
//!   KMS key policy together: explicit deny > allow > implicit deny (rules in [`eval`]).
//! - [`is_public`] implements `BlockPublicPolicy`.
//! - [`catalogue`] maps every AWS operation Coffer serves to its action, resources and keys.

pub mod catalogue;
mod condition;
mod document;
mod error;
pub mod eval;
mod model;
mod pattern;
mod public;
mod request;
mod vault;

pub use catalogue::{ActionSpec, Requirement, ResourceType, action_for};
pub use condition::{Condition, ConditionOperator, ConditionValue, Operator, SetQualifier};
pub use document::{PolicyDocument, VERSION_2008, VERSION_2012, compile_json};
pub use error::MalformedPolicy;
pub use eval::{Decision, DecisionEffect, DecisionReason, PolicySource, StatementRef, evaluate};
pub use model::{
    ActionPattern, CompiledPolicy, Effect, Matcher, PolicyKind, PrincipalMatch, PrincipalSpec, PrincipalType,
    ResourcePattern, Statement,
};
pub use pattern::Template;
pub use public::is_public;
pub use request::{AuthzRequest, ConditionContext, Principal, RoleSession};
pub use vault::{VAULT_RESOURCE_PREFIX, VaultCapability, VaultPathPattern, vault_resource};
