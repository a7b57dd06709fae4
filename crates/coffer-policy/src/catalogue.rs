//! Which IAM action each AWS operation Coffer serves is authorized as, on which resource(s), with
//! which service condition keys, and which further actions it needs (AWS "Service Authorization
//! Reference": "Actions, resources, and condition keys for AWS Secrets Manager / AWS Systems
//! Manager / AWS Key Management Service / AWS Identity and Access Management / AWS Security Token
//! Service"). An empty `resources` list means the action is resource-less and is authorized on
//! `*` (e.g. `secretsmanager:ListSecrets`, `kms:CreateKey`).
//!
//! The table is data, so the server can authorize every request the same way:
//! `action_for(service, operation)` → build each resource ARN with [`ResourceType::arn`] →
//! [`evaluate`](crate::evaluate) once per resource → then each entry of `also_requires` that
//! applies (for instance `kms:Decrypt` on the secret's customer-managed key).

/// A resource type and its ARN format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// `arn:<p>:kms:<region>:<acct>:alias/<name>`
    Alias,
    /// `arn:<p>:iam::<acct>:group/<path><name>`
    Group,
    /// `arn:<p>:kms:<region>:<acct>:key/<key-id>`
    Key,
    /// `arn:<p>:ssm:<region>:<acct>:parameter/<name without leading slash>`
    Parameter,
    /// `arn:<p>:iam::<acct>:policy/<path><name>`
    Policy,
    /// `arn:<p>:iam::<acct>:role/<path><name>`
    Role,
    /// `arn:<p>:secretsmanager:<region>:<acct>:secret:<name>-<6 chars>`
    Secret,
    /// `arn:<p>:iam::<acct>:user/<path><name>`
    User,
}

impl ResourceType {
    /// Builds the ARN of a resource of this type. `id` is the secret's name with its suffix, the
    /// parameter name, the key id, the alias name (with or without `alias/`), or the IAM path and
    /// name (`division/bob`).
    pub fn arn(self, partition: &str, region: &str, account: &str, id: &str) -> String {
        match self {
            ResourceType::Alias => {
                format!(
                    "arn:{partition}:kms:{region}:{account}:alias/{}",
                    id.trim_start_matches("alias/")
                )
            }
            ResourceType::Group => format!("arn:{partition}:iam::{account}:group/{}", id.trim_start_matches('/')),
            ResourceType::Key => format!("arn:{partition}:kms:{region}:{account}:key/{id}"),
            ResourceType::Parameter => {
                format!(
                    "arn:{partition}:ssm:{region}:{account}:parameter/{}",
                    id.trim_start_matches('/')
                )
            }
            ResourceType::Policy => format!("arn:{partition}:iam::{account}:policy/{}", id.trim_start_matches('/')),
            ResourceType::Role => format!("arn:{partition}:iam::{account}:role/{}", id.trim_start_matches('/')),
            ResourceType::Secret => format!("arn:{partition}:secretsmanager:{region}:{account}:secret:{id}"),
            ResourceType::User => format!("arn:{partition}:iam::{account}:user/{}", id.trim_start_matches('/')),
        }
    }
}

/// A further authorization an operation needs in some cases.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The action, e.g. `kms:Decrypt`.
    pub action: &'static str,
    /// The resource it is checked on.
    pub resource: ResourceType,
    /// When it applies, in words.
    pub when: &'static str,
}

/// How one operation is authorized.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionSpec {
    /// The IAM action.
    pub action: &'static str,
    /// The resource types the action is checked on, in order (empty: `*`). An operation on two
    /// resources (`kms:CreateAlias` on the alias *and* the key) needs an allow on each.
    pub resources: &'static [ResourceType],
    /// Service-specific and global condition keys the server should put in the context.
    pub condition_keys: &'static [&'static str],
    /// Further actions needed in some cases.
    pub also_requires: &'static [Requirement],
    /// `false` for operations AWS never denies (`sts:GetCallerIdentity`).
    pub requires_authorization: bool,
}

const NONE: &[ResourceType] = &[];
const SECRET: &[ResourceType] = &[ResourceType::Secret];
const PARAM: &[ResourceType] = &[ResourceType::Parameter];
const KEY: &[ResourceType] = &[ResourceType::Key];
const USER: &[ResourceType] = &[ResourceType::User];
const ROLE: &[ResourceType] = &[ResourceType::Role];
const POLICY: &[ResourceType] = &[ResourceType::Policy];
const GROUP: &[ResourceType] = &[ResourceType::Group];

const SM_RES: &[&str] = &[
    "secretsmanager:SecretId",
    "secretsmanager:ResourceTag/${TagKey}",
    "aws:ResourceTag/${TagKey}",
    "secretsmanager:resource/AllowRotationLambdaArn",
    "secretsmanager:SecretPrimaryRegion",
];
const SM_GET: &[&str] = &[
    "secretsmanager:SecretId",
    "secretsmanager:VersionId",
    "secretsmanager:VersionStage",
    "secretsmanager:ResourceTag/${TagKey}",
    "aws:ResourceTag/${TagKey}",
    "secretsmanager:resource/AllowRotationLambdaArn",
    "secretsmanager:SecretPrimaryRegion",
];
const SM_CREATE: &[&str] = &[
    "secretsmanager:Name",
    "secretsmanager:Description",
    "secretsmanager:KmsKeyArn",
    "secretsmanager:KmsKeyId",
    "aws:RequestTag/${TagKey}",
    "aws:ResourceTag/${TagKey}",
    "aws:TagKeys",
    "secretsmanager:ResourceTag/${TagKey}",
    "secretsmanager:AddReplicaRegions",
    "secretsmanager:ForceOverwriteReplicaSecret",
];
const SM_UPDATE: &[&str] = &[
    "secretsmanager:SecretId",
    "secretsmanager:Description",
    "secretsmanager:KmsKeyArn",
    "secretsmanager:KmsKeyId",
    "secretsmanager:ResourceTag/${TagKey}",
    "aws:ResourceTag/${TagKey}",
    "secretsmanager:resource/AllowRotationLambdaArn",
    "secretsmanager:SecretPrimaryRegion",
];
const SM_TAG: &[&str] = &[
    "secretsmanager:SecretId",
    "aws:RequestTag/${TagKey}",
    "aws:TagKeys",
    "secretsmanager:ResourceTag/${TagKey}",
    "aws:ResourceTag/${TagKey}",
];
const SM_POLICY: &[&str] = &[
    "secretsmanager:SecretId",
    "secretsmanager:BlockPublicPolicy",
    "secretsmanager:ResourceTag/${TagKey}",
    "aws:ResourceTag/${TagKey}",
];
const SM_ROTATE: &[&str] = &[
    "secretsmanager:SecretId",
    "secretsmanager:RotationLambdaARN",
    "secretsmanager:ModifyRotationRules",
    "secretsmanager:RotateImmediately",
    "secretsmanager:ResourceTag/${TagKey}",
    "aws:ResourceTag/${TagKey}",
];
const SM_REPLICATE: &[&str] = &[
    "secretsmanager:SecretId",
    "secretsmanager:AddReplicaRegions",
    "secretsmanager:ForceOverwriteReplicaSecret",
    "secretsmanager:ResourceTag/${TagKey}",
    "aws:ResourceTag/${TagKey}",
];
const SM_STAGE: &[&str] = &[
    "secretsmanager:SecretId",
    "secretsmanager:VersionStage",
    "secretsmanager:ResourceTag/${TagKey}",
    "aws:ResourceTag/${TagKey}",
];
const GLOBAL_ONLY: &[&str] = &[];
const REQUEST_TAGS: &[&str] = &["aws:RequestTag/${TagKey}", "aws:TagKeys"];

const SM_DECRYPT: &[Requirement] = &[Requirement {
    action: "kms:Decrypt",
    resource: ResourceType::Key,
    when: "the secret version is encrypted under a customer managed key (context kms:ViaService = secretsmanager.<region>.amazonaws.com, kms:EncryptionContext:SecretARN = the secret's ARN)",
}];
const SM_ENCRYPT: &[Requirement] = &[
    Requirement {
        action: "kms:GenerateDataKey",
        resource: ResourceType::Key,
        when: "a value is stored under a customer managed key",
    },
    Requirement {
        action: "kms:Decrypt",
        resource: ResourceType::Key,
        when: "a value is stored under a customer managed key",
    },
];
const SM_CREATE_REQ: &[Requirement] = &[
    Requirement {
        action: "secretsmanager:TagResource",
        resource: ResourceType::Secret,
        when: "Tags are given",
    },
    Requirement {
        action: "secretsmanager:PutResourcePolicy",
        resource: ResourceType::Secret,
        when: "never at create (listed for completeness: a policy is set by PutResourcePolicy)",
    },
    Requirement {
        action: "kms:GenerateDataKey",
        resource: ResourceType::Key,
        when: "a value is given and KmsKeyId names a customer managed key",
    },
    Requirement {
        action: "kms:Decrypt",
        resource: ResourceType::Key,
        when: "a value is given and KmsKeyId names a customer managed key",
    },
];
const SM_BATCH_REQ: &[Requirement] = &[Requirement {
    action: "secretsmanager:GetSecretValue",
    resource: ResourceType::Secret,
    when: "always, for every secret returned (failures go to Errors)",
}];

const SSM_RES: &[&str] = &["aws:ResourceTag/${TagKey}", "ssm:resourceTag/${TagKey}"];
const SSM_PUT: &[&str] = &[
    "aws:RequestTag/${TagKey}",
    "aws:TagKeys",
    "aws:ResourceTag/${TagKey}",
    "ssm:Overwrite",
    "ssm:Policies",
];
const SSM_PATH: &[&str] = &["aws:ResourceTag/${TagKey}", "ssm:Recursive"];
const SSM_DECRYPT: &[Requirement] = &[Requirement {
    action: "kms:Decrypt",
    resource: ResourceType::Key,
    when: "WithDecryption is true and the parameter is a SecureString under a customer managed key",
}];
const SSM_ENCRYPT: &[Requirement] = &[
    Requirement {
        action: "kms:Encrypt",
        resource: ResourceType::Key,
        when: "a SecureString value is stored under a customer managed key",
    },
    Requirement {
        action: "ssm:AddTagsToResource",
        resource: ResourceType::Parameter,
        when: "Tags are given",
    },
];

const KMS_RES: &[&str] = &[
    "aws:ResourceTag/${TagKey}",
    "kms:CallerAccount",
    "kms:ResourceAliases",
    "kms:ViaService",
];
const KMS_CRYPTO: &[&str] = &[
    "aws:ResourceTag/${TagKey}",
    "kms:CallerAccount",
    "kms:EncryptionAlgorithm",
    "kms:EncryptionContext:${EncryptionContextKey}",
    "kms:EncryptionContextKeys",
    "kms:RequestAlias",
    "kms:ResourceAliases",
    "kms:ViaService",
];
const KMS_CREATE: &[&str] = &[
    "aws:RequestTag/${TagKey}",
    "aws:TagKeys",
    "kms:BypassPolicyLockoutSafetyCheck",
    "kms:CallerAccount",
    "kms:KeyOrigin",
    "kms:KeySpec",
    "kms:KeyUsage",
    "kms:MultiRegion",
    "kms:ViaService",
];
const KMS_POLICY: &[&str] = &[
    "aws:ResourceTag/${TagKey}",
    "kms:BypassPolicyLockoutSafetyCheck",
    "kms:CallerAccount",
    "kms:ViaService",
];
const KMS_TAG: &[&str] = &[
    "aws:ResourceTag/${TagKey}",
    "aws:RequestTag/${TagKey}",
    "aws:TagKeys",
    "kms:CallerAccount",
    "kms:ViaService",
];
const KMS_ALIAS_RES: &[ResourceType] = &[ResourceType::Alias, ResourceType::Key];
const KMS_UPDATE_ALIAS_RES: &[ResourceType] = &[ResourceType::Alias, ResourceType::Key, ResourceType::Key];
const KMS_REENCRYPT_REQ: &[Requirement] = &[Requirement {
    action: "kms:ReEncryptTo",
    resource: ResourceType::Key,
    when: "always, on the destination key",
}];
const KMS_CREATE_REQ: &[Requirement] = &[Requirement {
    action: "kms:TagResource",
    resource: ResourceType::Key,
    when: "Tags are given",
}];

const IAM_TAG: &[&str] = &["aws:RequestTag/${TagKey}", "aws:TagKeys", "aws:ResourceTag/${TagKey}"];
const IAM_ATTACH: &[&str] = &["iam:PolicyARN", "aws:ResourceTag/${TagKey}"];
const IAM_CREATE: &[&str] = &["aws:RequestTag/${TagKey}", "aws:TagKeys", "iam:PermissionsBoundary"];

const fn spec(
    action: &'static str,
    resources: &'static [ResourceType],
    condition_keys: &'static [&'static str],
    also_requires: &'static [Requirement],
) -> ActionSpec {
    ActionSpec {
        action,
        resources,
        condition_keys,
        also_requires,
        requires_authorization: true,
    }
}

/// `(service, operation, spec)` for every operation Coffer serves. Service names are the
/// SigV4 signing names (`secretsmanager`, `ssm`, `kms`, `iam`, `sts`).
pub const CATALOGUE: &[(&str, &str, ActionSpec)] = &[
    // Secrets Manager: all 23 operations.
    (
        "secretsmanager",
        "BatchGetSecretValue",
        spec("secretsmanager:BatchGetSecretValue", NONE, GLOBAL_ONLY, SM_BATCH_REQ),
    ),
    (
        "secretsmanager",
        "CancelRotateSecret",
        spec("secretsmanager:CancelRotateSecret", SECRET, SM_RES, &[]),
    ),
    (
        "secretsmanager",
        "CreateSecret",
        spec("secretsmanager:CreateSecret", SECRET, SM_CREATE, SM_CREATE_REQ),
    ),
    (
        "secretsmanager",
        "DeleteResourcePolicy",
        spec("secretsmanager:DeleteResourcePolicy", SECRET, SM_RES, &[]),
    ),
    (
        "secretsmanager",
        "DeleteSecret",
        spec("secretsmanager:DeleteSecret", SECRET, SM_RES, &[]),
    ),
    (
        "secretsmanager",
        "DescribeSecret",
        spec("secretsmanager:DescribeSecret", SECRET, SM_RES, &[]),
    ),
    (
        "secretsmanager",
        "GetRandomPassword",
        spec("secretsmanager:GetRandomPassword", NONE, GLOBAL_ONLY, &[]),
    ),
    (
        "secretsmanager",
        "GetResourcePolicy",
        spec("secretsmanager:GetResourcePolicy", SECRET, SM_RES, &[]),
    ),
    (
        "secretsmanager",
        "GetSecretValue",
        spec("secretsmanager:GetSecretValue", SECRET, SM_GET, SM_DECRYPT),
    ),
    (
        "secretsmanager",
        "ListSecretVersionIds",
        spec("secretsmanager:ListSecretVersionIds", SECRET, SM_RES, &[]),
    ),
    (
        "secretsmanager",
        "ListSecrets",
        spec("secretsmanager:ListSecrets", NONE, GLOBAL_ONLY, &[]),
    ),
    (
        "secretsmanager",
        "PutResourcePolicy",
        spec("secretsmanager:PutResourcePolicy", SECRET, SM_POLICY, &[]),
    ),
    (
        "secretsmanager",
        "PutSecretValue",
        spec("secretsmanager:PutSecretValue", SECRET, SM_RES, SM_ENCRYPT),
    ),
    (
        "secretsmanager",
        "RemoveRegionsFromReplication",
        spec("secretsmanager:RemoveRegionsFromReplication", SECRET, SM_RES, &[]),
    ),
    (
        "secretsmanager",
        "ReplicateSecretToRegions",
        spec("secretsmanager:ReplicateSecretToRegions", SECRET, SM_REPLICATE, &[]),
    ),
    (
        "secretsmanager",
        "RestoreSecret",
        spec("secretsmanager:RestoreSecret", SECRET, SM_RES, &[]),
    ),
    (
        "secretsmanager",
        "RotateSecret",
        spec("secretsmanager:RotateSecret", SECRET, SM_ROTATE, &[]),
    ),
    (
        "secretsmanager",
        "StopReplicationToReplica",
        spec("secretsmanager:StopReplicationToReplica", SECRET, SM_RES, &[]),
    ),
    (
        "secretsmanager",
        "TagResource",
        spec("secretsmanager:TagResource", SECRET, SM_TAG, &[]),
    ),
    (
        "secretsmanager",
        "UntagResource",
        spec("secretsmanager:UntagResource", SECRET, SM_TAG, &[]),
    ),
    (
        "secretsmanager",
        "UpdateSecret",
        spec("secretsmanager:UpdateSecret", SECRET, SM_UPDATE, SM_ENCRYPT),
    ),
    (
        "secretsmanager",
        "UpdateSecretVersionStage",
        spec("secretsmanager:UpdateSecretVersionStage", SECRET, SM_STAGE, &[]),
    ),
    (
        "secretsmanager",
        "ValidateResourcePolicy",
        spec("secretsmanager:ValidateResourcePolicy", SECRET, SM_RES, &[]),
    ),
    // SSM Parameter Store.
    (
        "ssm",
        "AddTagsToResource",
        spec("ssm:AddTagsToResource", PARAM, IAM_TAG, &[]),
    ),
    (
        "ssm",
        "DeleteParameter",
        spec("ssm:DeleteParameter", PARAM, SSM_RES, &[]),
    ),
    (
        "ssm",
        "DeleteParameters",
        spec("ssm:DeleteParameters", PARAM, SSM_RES, &[]),
    ),
    (
        "ssm",
        "DescribeParameters",
        spec("ssm:DescribeParameters", NONE, GLOBAL_ONLY, &[]),
    ),
    (
        "ssm",
        "GetParameter",
        spec("ssm:GetParameter", PARAM, SSM_RES, SSM_DECRYPT),
    ),
    (
        "ssm",
        "GetParameterHistory",
        spec("ssm:GetParameterHistory", PARAM, SSM_RES, SSM_DECRYPT),
    ),
    (
        "ssm",
        "GetParameters",
        spec("ssm:GetParameters", PARAM, SSM_RES, SSM_DECRYPT),
    ),
    (
        "ssm",
        "GetParametersByPath",
        spec("ssm:GetParametersByPath", PARAM, SSM_PATH, SSM_DECRYPT),
    ),
    (
        "ssm",
        "LabelParameterVersion",
        spec("ssm:LabelParameterVersion", PARAM, SSM_RES, &[]),
    ),
    (
        "ssm",
        "ListTagsForResource",
        spec("ssm:ListTagsForResource", PARAM, SSM_RES, &[]),
    ),
    (
        "ssm",
        "PutParameter",
        spec("ssm:PutParameter", PARAM, SSM_PUT, SSM_ENCRYPT),
    ),
    (
        "ssm",
        "RemoveTagsFromResource",
        spec("ssm:RemoveTagsFromResource", PARAM, IAM_TAG, &[]),
    ),
    (
        "ssm",
        "UnlabelParameterVersion",
        spec("ssm:UnlabelParameterVersion", PARAM, SSM_RES, &[]),
    ),
    // KMS.
    (
        "kms",
        "CancelKeyDeletion",
        spec("kms:CancelKeyDeletion", KEY, KMS_RES, &[]),
    ),
    (
        "kms",
        "CreateAlias",
        spec("kms:CreateAlias", KMS_ALIAS_RES, KMS_RES, &[]),
    ),
    (
        "kms",
        "CreateKey",
        spec("kms:CreateKey", NONE, KMS_CREATE, KMS_CREATE_REQ),
    ),
    ("kms", "Decrypt", spec("kms:Decrypt", KEY, KMS_CRYPTO, &[])),
    (
        "kms",
        "DeleteAlias",
        spec("kms:DeleteAlias", KMS_ALIAS_RES, KMS_RES, &[]),
    ),
    ("kms", "DescribeKey", spec("kms:DescribeKey", KEY, KMS_RES, &[])),
    ("kms", "DisableKey", spec("kms:DisableKey", KEY, KMS_RES, &[])),
    (
        "kms",
        "DisableKeyRotation",
        spec("kms:DisableKeyRotation", KEY, KMS_RES, &[]),
    ),
    ("kms", "EnableKey", spec("kms:EnableKey", KEY, KMS_RES, &[])),
    (
        "kms",
        "EnableKeyRotation",
        spec("kms:EnableKeyRotation", KEY, KMS_RES, &[]),
    ),
    ("kms", "Encrypt", spec("kms:Encrypt", KEY, KMS_CRYPTO, &[])),
    (
        "kms",
        "GenerateDataKey",
        spec("kms:GenerateDataKey", KEY, KMS_CRYPTO, &[]),
    ),
    (
        "kms",
        "GenerateDataKeyPair",
        spec("kms:GenerateDataKeyPair", KEY, KMS_CRYPTO, &[]),
    ),
    (
        "kms",
        "GenerateDataKeyPairWithoutPlaintext",
        spec("kms:GenerateDataKeyPairWithoutPlaintext", KEY, KMS_CRYPTO, &[]),
    ),
    (
        "kms",
        "GenerateDataKeyWithoutPlaintext",
        spec("kms:GenerateDataKeyWithoutPlaintext", KEY, KMS_CRYPTO, &[]),
    ),
    ("kms", "GenerateMac", spec("kms:GenerateMac", KEY, KMS_CRYPTO, &[])),
    (
        "kms",
        "GenerateRandom",
        spec("kms:GenerateRandom", NONE, GLOBAL_ONLY, &[]),
    ),
    ("kms", "GetKeyPolicy", spec("kms:GetKeyPolicy", KEY, KMS_RES, &[])),
    (
        "kms",
        "GetKeyRotationStatus",
        spec("kms:GetKeyRotationStatus", KEY, KMS_RES, &[]),
    ),
    ("kms", "GetPublicKey", spec("kms:GetPublicKey", KEY, KMS_RES, &[])),
    ("kms", "ListAliases", spec("kms:ListAliases", NONE, GLOBAL_ONLY, &[])),
    ("kms", "ListKeyPolicies", spec("kms:ListKeyPolicies", KEY, KMS_RES, &[])),
    (
        "kms",
        "ListKeyRotations",
        spec("kms:ListKeyRotations", KEY, KMS_RES, &[]),
    ),
    ("kms", "ListKeys", spec("kms:ListKeys", NONE, GLOBAL_ONLY, &[])),
    (
        "kms",
        "ListResourceTags",
        spec("kms:ListResourceTags", KEY, KMS_RES, &[]),
    ),
    ("kms", "PutKeyPolicy", spec("kms:PutKeyPolicy", KEY, KMS_POLICY, &[])),
    (
        "kms",
        "ReEncrypt",
        spec("kms:ReEncryptFrom", KEY, KMS_CRYPTO, KMS_REENCRYPT_REQ),
    ),
    (
        "kms",
        "RotateKeyOnDemand",
        spec("kms:RotateKeyOnDemand", KEY, KMS_RES, &[]),
    ),
    (
        "kms",
        "ScheduleKeyDeletion",
        spec("kms:ScheduleKeyDeletion", KEY, KMS_RES, &[]),
    ),
    ("kms", "Sign", spec("kms:Sign", KEY, KMS_CRYPTO, &[])),
    ("kms", "TagResource", spec("kms:TagResource", KEY, KMS_TAG, &[])),
    ("kms", "UntagResource", spec("kms:UntagResource", KEY, KMS_TAG, &[])),
    (
        "kms",
        "UpdateAlias",
        spec("kms:UpdateAlias", KMS_UPDATE_ALIAS_RES, KMS_RES, &[]),
    ),
    (
        "kms",
        "UpdateKeyDescription",
        spec("kms:UpdateKeyDescription", KEY, KMS_RES, &[]),
    ),
    ("kms", "Verify", spec("kms:Verify", KEY, KMS_CRYPTO, &[])),
    ("kms", "VerifyMac", spec("kms:VerifyMac", KEY, KMS_CRYPTO, &[])),
    // IAM.
    (
        "iam",
        "AddUserToGroup",
        spec("iam:AddUserToGroup", GROUP, GLOBAL_ONLY, &[]),
    ),
    (
        "iam",
        "AttachRolePolicy",
        spec("iam:AttachRolePolicy", ROLE, IAM_ATTACH, &[]),
    ),
    (
        "iam",
        "AttachUserPolicy",
        spec("iam:AttachUserPolicy", USER, IAM_ATTACH, &[]),
    ),
    (
        "iam",
        "CreateAccessKey",
        spec("iam:CreateAccessKey", USER, GLOBAL_ONLY, &[]),
    ),
    ("iam", "CreateGroup", spec("iam:CreateGroup", GROUP, GLOBAL_ONLY, &[])),
    (
        "iam",
        "CreatePolicy",
        spec("iam:CreatePolicy", POLICY, REQUEST_TAGS, &[]),
    ),
    (
        "iam",
        "CreatePolicyVersion",
        spec("iam:CreatePolicyVersion", POLICY, GLOBAL_ONLY, &[]),
    ),
    ("iam", "CreateRole", spec("iam:CreateRole", ROLE, IAM_CREATE, &[])),
    ("iam", "CreateUser", spec("iam:CreateUser", USER, IAM_CREATE, &[])),
    (
        "iam",
        "DeleteAccessKey",
        spec("iam:DeleteAccessKey", USER, GLOBAL_ONLY, &[]),
    ),
    ("iam", "DeleteGroup", spec("iam:DeleteGroup", GROUP, GLOBAL_ONLY, &[])),
    (
        "iam",
        "DeletePolicy",
        spec("iam:DeletePolicy", POLICY, GLOBAL_ONLY, &[]),
    ),
    ("iam", "DeleteRole", spec("iam:DeleteRole", ROLE, GLOBAL_ONLY, &[])),
    (
        "iam",
        "DeleteRolePolicy",
        spec("iam:DeleteRolePolicy", ROLE, GLOBAL_ONLY, &[]),
    ),
    ("iam", "DeleteUser", spec("iam:DeleteUser", USER, GLOBAL_ONLY, &[])),
    (
        "iam",
        "DeleteUserPolicy",
        spec("iam:DeleteUserPolicy", USER, GLOBAL_ONLY, &[]),
    ),
    (
        "iam",
        "DetachRolePolicy",
        spec("iam:DetachRolePolicy", ROLE, IAM_ATTACH, &[]),
    ),
    (
        "iam",
        "DetachUserPolicy",
        spec("iam:DetachUserPolicy", USER, IAM_ATTACH, &[]),
    ),
    ("iam", "GetGroup", spec("iam:GetGroup", GROUP, GLOBAL_ONLY, &[])),
    ("iam", "GetPolicy", spec("iam:GetPolicy", POLICY, GLOBAL_ONLY, &[])),
    (
        "iam",
        "GetPolicyVersion",
        spec("iam:GetPolicyVersion", POLICY, GLOBAL_ONLY, &[]),
    ),
    ("iam", "GetRole", spec("iam:GetRole", ROLE, GLOBAL_ONLY, &[])),
    (
        "iam",
        "GetRolePolicy",
        spec("iam:GetRolePolicy", ROLE, GLOBAL_ONLY, &[]),
    ),
    ("iam", "GetUser", spec("iam:GetUser", USER, GLOBAL_ONLY, &[])),
    (
        "iam",
        "GetUserPolicy",
        spec("iam:GetUserPolicy", USER, GLOBAL_ONLY, &[]),
    ),
    (
        "iam",
        "ListAccessKeys",
        spec("iam:ListAccessKeys", USER, GLOBAL_ONLY, &[]),
    ),
    (
        "iam",
        "ListAttachedRolePolicies",
        spec("iam:ListAttachedRolePolicies", ROLE, GLOBAL_ONLY, &[]),
    ),
    (
        "iam",
        "ListAttachedUserPolicies",
        spec("iam:ListAttachedUserPolicies", USER, GLOBAL_ONLY, &[]),
    ),
    ("iam", "ListGroups", spec("iam:ListGroups", NONE, GLOBAL_ONLY, &[])),
    (
        "iam",
        "ListGroupsForUser",
        spec("iam:ListGroupsForUser", USER, GLOBAL_ONLY, &[]),
    ),
    ("iam", "ListPolicies", spec("iam:ListPolicies", NONE, GLOBAL_ONLY, &[])),
    (
        "iam",
        "ListRolePolicies",
        spec("iam:ListRolePolicies", ROLE, GLOBAL_ONLY, &[]),
    ),
    ("iam", "ListRoles", spec("iam:ListRoles", NONE, GLOBAL_ONLY, &[])),
    (
        "iam",
        "ListUserPolicies",
        spec("iam:ListUserPolicies", USER, GLOBAL_ONLY, &[]),
    ),
    ("iam", "ListUsers", spec("iam:ListUsers", NONE, GLOBAL_ONLY, &[])),
    (
        "iam",
        "PutRolePolicy",
        spec("iam:PutRolePolicy", ROLE, GLOBAL_ONLY, &[]),
    ),
    (
        "iam",
        "PutUserPolicy",
        spec("iam:PutUserPolicy", USER, GLOBAL_ONLY, &[]),
    ),
    (
        "iam",
        "RemoveUserFromGroup",
        spec("iam:RemoveUserFromGroup", GROUP, GLOBAL_ONLY, &[]),
    ),
    ("iam", "TagRole", spec("iam:TagRole", ROLE, IAM_TAG, &[])),
    ("iam", "TagUser", spec("iam:TagUser", USER, IAM_TAG, &[])),
    ("iam", "UntagRole", spec("iam:UntagRole", ROLE, IAM_TAG, &[])),
    ("iam", "UntagUser", spec("iam:UntagUser", USER, IAM_TAG, &[])),
    (
        "iam",
        "UpdateAccessKey",
        spec("iam:UpdateAccessKey", USER, GLOBAL_ONLY, &[]),
    ),
    (
        "iam",
        "UpdateAssumeRolePolicy",
        spec("iam:UpdateAssumeRolePolicy", ROLE, GLOBAL_ONLY, &[]),
    ),
    // STS. AssumeRole is decided by the role's trust policy (a resource policy) together with the
    // caller's identity policies; GetCallerIdentity needs no permission ("No permissions are
    // required to perform this operation", even with an explicit deny).
    (
        "sts",
        "AssumeRole",
        spec(
            "sts:AssumeRole",
            ROLE,
            &[
                "aws:RequestTag/${TagKey}",
                "aws:TagKeys",
                "sts:RoleSessionName",
                "sts:ExternalId",
                "sts:SourceIdentity",
            ],
            &[],
        ),
    ),
    (
        "sts",
        "GetCallerIdentity",
        ActionSpec {
            action: "sts:GetCallerIdentity",
            resources: NONE,
            condition_keys: GLOBAL_ONLY,
            also_requires: &[],
            requires_authorization: false,
        },
    ),
    (
        "sts",
        "GetSessionToken",
        spec("sts:GetSessionToken", NONE, GLOBAL_ONLY, &[]),
    ),
];

/// How `operation` of `service` (SigV4 signing name) is authorized, if Coffer serves it.
pub fn action_for(service: &str, operation: &str) -> Option<ActionSpec> {
    CATALOGUE
        .iter()
        .find(|(s, o, _)| *s == service && *o == operation)
        .map(|(_, _, spec)| *spec)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn secrets_manager_has_its_23_operations() {
        let n = CATALOGUE.iter().filter(|(s, _, _)| *s == "secretsmanager").count();
        assert_eq!(n, 23);
    }

    #[test]
    fn action_names_follow_the_operation_except_reencrypt() {
        for (service, op, spec) in CATALOGUE {
            let expected = format!("{service}:{op}");
            if *op != "ReEncrypt" {
                assert_eq!(spec.action, expected);
            }
        }
        assert_eq!(
            action_for("kms", "ReEncrypt").map(|s| s.action),
            Some("kms:ReEncryptFrom")
        );
    }

    #[test]
    fn resource_less_actions() {
        for (svc, op) in [
            ("secretsmanager", "ListSecrets"),
            ("secretsmanager", "GetRandomPassword"),
            ("secretsmanager", "BatchGetSecretValue"),
            ("kms", "CreateKey"),
            ("kms", "ListKeys"),
            ("kms", "ListAliases"),
            ("kms", "GenerateRandom"),
            ("ssm", "DescribeParameters"),
        ] {
            assert_eq!(action_for(svc, op).map(|s| s.resources.len()), Some(0), "{svc}:{op}");
        }
        assert_eq!(
            action_for("secretsmanager", "GetSecretValue").map(|s| s.resources),
            Some(SECRET)
        );
        assert!(action_for("secretsmanager", "Nope").is_none());
    }

    #[test]
    fn get_secret_value_needs_kms_decrypt() {
        let spec = action_for("secretsmanager", "GetSecretValue");
        assert!(spec.is_some_and(|s| s.also_requires.iter().any(|r| r.action == "kms:Decrypt")));
    }

    #[test]
    fn arns() {
        let cases = [
            (
                ResourceType::Secret,
                "app-AbCdEf",
                "arn:aws:secretsmanager:eu-west-1:111122223333:secret:app-AbCdEf",
            ),
            (
                ResourceType::Parameter,
                "/prod/db",
                "arn:aws:ssm:eu-west-1:111122223333:parameter/prod/db",
            ),
            (
                ResourceType::Parameter,
                "plain",
                "arn:aws:ssm:eu-west-1:111122223333:parameter/plain",
            ),
            (ResourceType::Key, "1234", "arn:aws:kms:eu-west-1:111122223333:key/1234"),
            (
                ResourceType::Alias,
                "alias/app",
                "arn:aws:kms:eu-west-1:111122223333:alias/app",
            ),
            (
                ResourceType::User,
                "division/bob",
                "arn:aws:iam::111122223333:user/division/bob",
            ),
            (ResourceType::Role, "r", "arn:aws:iam::111122223333:role/r"),
            (ResourceType::Policy, "p", "arn:aws:iam::111122223333:policy/p"),
            (ResourceType::Group, "g", "arn:aws:iam::111122223333:group/g"),
        ];
        for (ty, id, want) in cases {
            assert_eq!(ty.arn("aws", "eu-west-1", "111122223333", id), want);
        }
    }

    #[test]
    fn get_caller_identity_needs_no_permission() {
        assert_eq!(
            action_for("sts", "GetCallerIdentity").map(|s| s.requires_authorization),
            Some(false)
        );
    }
}
