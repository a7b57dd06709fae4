//! Engine tests over `MemoryStorage` (and a failing storage), driving
//! [`IamEngine::handle`] with form parameters as the Query front end does, with a
//! controllable clock.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use async_trait::async_trait;
use coffer_crypto::SecretBytes;
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_storage::Storage;
use coffer_storage::fault::FailingStorage;
use coffer_storage::memory::MemoryStorage;
use time::{Duration, OffsetDateTime};

use crate::*;

const ACCT: &str = "123456789012";
const OTHER: &str = "210987654321";
const POLICY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
const POLICY2: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}"#;

fn trust_for(account: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"sts:AssumeRole"}}]}}"#
    )
}

/// A trust check that answers what the test says and records what it was asked.
struct StubTrust {
    allow: AtomicBool,
    calls: AtomicUsize,
}

#[async_trait]
impl TrustCheck for StubTrust {
    async fn allows(&self, req: &TrustRequest<'_>) -> Result<bool, AwsError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        assert!(req.trust_policy.contains("sts:AssumeRole"));
        Ok(self.allow.load(Ordering::SeqCst))
    }
}

struct T {
    engine: IamEngine,
    now: std::sync::Mutex<OffsetDateTime>,
    trust: Arc<StubTrust>,
}

fn start() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

impl T {
    fn new() -> Self {
        Self::with_storage(Arc::new(MemoryStorage::new()))
    }

    fn with_storage(storage: Arc<dyn Storage>) -> Self {
        let trust = Arc::new(StubTrust {
            allow: AtomicBool::new(true),
            calls: AtomicUsize::new(0),
        });
        Self {
            engine: IamEngine::new(storage).with_trust_check(trust.clone()),
            now: std::sync::Mutex::new(start()),
            trust,
        }
    }

    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap()
    }

    fn advance(&self, d: Duration) {
        *self.now.lock().unwrap() += d;
    }

    fn ctx_as(&self, account: &str, arn: &str) -> RequestContext {
        RequestContext {
            account_id: account.into(),
            region: "us-east-1".into(),
            principal_arn: arn.into(),
            now: self.now(),
        }
    }

    fn root(&self, account: &str) -> RequestContext {
        self.ctx_as(account, &format!("arn:aws:iam::{account}:root"))
    }

    async fn call_ctx(&self, ctx: &RequestContext, action: &str, p: &[(&str, &str)]) -> Result<String, AwsError> {
        let service = if matches!(action, "AssumeRole" | "GetCallerIdentity") {
            "sts"
        } else {
            "iam"
        };
        self.engine.handle(ctx, service, action, &pairs(p)).await
    }

    async fn ok(&self, action: &str, p: &[(&str, &str)]) -> String {
        self.ok_in(ACCT, action, p).await
    }

    async fn ok_in(&self, account: &str, action: &str, p: &[(&str, &str)]) -> String {
        match self.call_ctx(&self.root(account), action, p).await {
            Ok(v) => v,
            Err(e) => panic!("{action} failed: {e}"),
        }
    }

    async fn err(&self, action: &str, p: &[(&str, &str)]) -> AwsError {
        self.err_in(ACCT, action, p).await
    }

    async fn err_in(&self, account: &str, action: &str, p: &[(&str, &str)]) -> AwsError {
        match self.call_ctx(&self.root(account), action, p).await {
            Ok(v) => panic!("{action} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }

    async fn resolve(&self, akid: &str, token: Option<&str>) -> KeyResolution {
        self.engine.resolve_access_key(akid, token, self.now()).await.unwrap()
    }

    /// Creates a user with an access key; returns (akid, secret).
    async fn user_with_key(&self, name: &str) -> (String, String) {
        self.ok("CreateUser", &[("UserName", name)]).await;
        let out = self.ok("CreateAccessKey", &[("UserName", name)]).await;
        (text(&out, "AccessKeyId"), text(&out, "SecretAccessKey"))
    }

    async fn role(&self, name: &str, extra: &[(&str, &str)]) -> String {
        let trust = trust_for(ACCT);
        let mut p = vec![("RoleName", name), ("AssumeRolePolicyDocument", trust.as_str())];
        p.extend_from_slice(extra);
        text(&self.ok("CreateRole", &p).await, "Arn")
    }
}

/// The text of the first `<name>` element.
fn text(xml: &str, name: &str) -> String {
    all(xml, name)
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no <{name}> in {xml}"))
}

/// The texts of every `<name>` element.
fn all(xml: &str, name: &str) -> Vec<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(after[..j].to_string());
        rest = &after[j + close.len()..];
    }
    out
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

fn assert_code(e: &AwsError, code: AwsErrorCode, status: u16) {
    assert_eq!(e.code, code, "{e}");
    assert_eq!(e.code.status_query(), status, "{e}");
}

fn valid(r: KeyResolution) -> Arc<ResolvedKey> {
    match r {
        KeyResolution::Valid(k) => k,
        other => panic!("expected a valid key, got {other:?}"),
    }
}

// ---- envelope ----

#[tokio::test]
async fn responses_have_the_query_envelope() {
    let t = T::new();
    let out = t.ok("CreateUser", &[("UserName", "alice")]).await;
    assert!(out.starts_with(
        "<CreateUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\"><CreateUserResult><User>"
    ));
    assert!(out.ends_with(&format!(
        "</CreateUserResult><ResponseMetadata><RequestId>{REQUEST_ID_PLACEHOLDER}</RequestId></ResponseMetadata></CreateUserResponse>"
    )));
    let del = t.ok("DeleteUser", &[("UserName", "alice")]).await;
    assert!(!del.contains("DeleteUserResult"));
    assert!(with_request_id(&del, "r-1").contains("<RequestId>r-1</RequestId>"));

    let e = t.err("Frobnicate", &[("Version", "2010-05-08")]).await;
    assert_code(&e, AwsErrorCode::InvalidAction, 400);
    let (status, body) = error_response("iam", &t.err("GetUser", &[("UserName", "nobody")]).await, "r-2");
    assert_eq!(status, 404);
    assert!(body.contains(
        "<Type>Sender</Type><Code>NoSuchEntity</Code><Message>The user with name nobody cannot be found.</Message>"
    ));
    assert!(body.contains("<RequestId>r-2</RequestId>"));
}

// ---- users ----

#[tokio::test]
async fn users_lifecycle_and_errors() {
    let t = T::new();
    let out = t.ok("CreateUser", &[("UserName", "Alice"), ("Path", "/eng/")]).await;
    assert_eq!(text(&out, "Arn"), format!("arn:aws:iam::{ACCT}:user/eng/Alice"));
    assert!(text(&out, "UserId").starts_with("AIDA"));
    assert_eq!(text(&out, "UserId").len(), 21);
    assert_eq!(text(&out, "CreateDate"), "2023-11-14T22:13:20Z");

    let e = t.err("CreateUser", &[("UserName", "alice")]).await;
    assert_code(&e, AwsErrorCode::EntityAlreadyExists, 409);
    assert_eq!(e.message, "User with name alice already exists.");

    let got = t.ok("GetUser", &[("UserName", "alice")]).await;
    assert_eq!(text(&got, "UserName"), "Alice");

    let e = t.err("CreateUser", &[("UserName", "bad/name")]).await;
    assert_code(&e, AwsErrorCode::ValidationError, 400);
    let e = t.err("CreateUser", &[("UserName", "x"), ("Path", "nope")]).await;
    assert_code(&e, AwsErrorCode::ValidationError, 400);
    let e = t.err("CreateUser", &[]).await;
    assert_code(&e, AwsErrorCode::ValidationError, 400);

    t.ok("DeleteUser", &[("UserName", "ALICE")]).await;
    let e = t.err("DeleteUser", &[("UserName", "alice")]).await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
}

#[tokio::test]
async fn list_users_paginates_with_marker() {
    let t = T::new();
    for n in ["dave", "alice", "carol", "bob", "erin"] {
        let path = if n == "erin" { "/ops/" } else { "/" };
        t.ok("CreateUser", &[("UserName", n), ("Path", path)]).await;
    }
    let p1 = t.ok("ListUsers", &[("MaxItems", "2")]).await;
    assert_eq!(all(&p1, "UserName"), vec!["alice", "bob"]);
    assert_eq!(text(&p1, "IsTruncated"), "true");
    let marker = text(&p1, "Marker");
    let p2 = t.ok("ListUsers", &[("MaxItems", "2"), ("Marker", &marker)]).await;
    assert_eq!(all(&p2, "UserName"), vec!["carol", "dave"]);
    let m2 = text(&p2, "Marker");
    let p3 = t.ok("ListUsers", &[("MaxItems", "2"), ("Marker", &m2)]).await;
    assert_eq!(all(&p3, "UserName"), vec!["erin"]);
    assert_eq!(text(&p3, "IsTruncated"), "false");
    assert!(all(&p3, "Marker").is_empty());

    let ops = t.ok("ListUsers", &[("PathPrefix", "/ops")]).await;
    assert_eq!(all(&ops, "UserName"), vec!["erin"]);
    let e = t.err("ListUsers", &[("MaxItems", "0")]).await;
    assert_code(&e, AwsErrorCode::ValidationError, 400);
}

#[tokio::test]
async fn delete_user_conflicts_until_dependents_are_gone() {
    let t = T::new();
    let (akid, _) = t.user_with_key("u").await;
    t.ok(
        "PutUserPolicy",
        &[("UserName", "u"), ("PolicyName", "p"), ("PolicyDocument", POLICY)],
    )
    .await;
    let arn = text(
        &t.ok("CreatePolicy", &[("PolicyName", "m"), ("PolicyDocument", POLICY)])
            .await,
        "Arn",
    );
    t.ok("AttachUserPolicy", &[("UserName", "u"), ("PolicyArn", &arn)])
        .await;
    t.ok("CreateGroup", &[("GroupName", "g")]).await;
    t.ok("AddUserToGroup", &[("GroupName", "g"), ("UserName", "u")]).await;

    type Step<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);
    let steps: Vec<Step<'_>> = vec![
        (
            "DeleteAccessKey",
            vec![("UserName", "u"), ("AccessKeyId", &akid)],
            "must delete access keys first",
        ),
        (
            "DeleteUserPolicy",
            vec![("UserName", "u"), ("PolicyName", "p")],
            "must delete policies first",
        ),
        (
            "DetachUserPolicy",
            vec![("UserName", "u"), ("PolicyArn", &arn)],
            "must detach all policies first",
        ),
        (
            "RemoveUserFromGroup",
            vec![("GroupName", "g"), ("UserName", "u")],
            "must remove users from group first",
        ),
    ];
    for (action, params, message) in steps {
        let e = t.err("DeleteUser", &[("UserName", "u")]).await;
        assert_code(&e, AwsErrorCode::DeleteConflict, 409);
        assert!(e.message.contains(message), "{e}");
        t.ok(action, &params).await;
    }
    t.ok("DeleteUser", &[("UserName", "u")]).await;
}

#[tokio::test]
async fn user_tags() {
    let t = T::new();
    t.ok(
        "CreateUser",
        &[
            ("UserName", "u"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "a"),
        ],
    )
    .await;
    t.ok(
        "TagUser",
        &[
            ("UserName", "u"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "b"),
            ("Tags.member.2.Key", "env"),
            ("Tags.member.2.Value", "prod"),
        ],
    )
    .await;
    let tags = t.ok("ListUserTags", &[("UserName", "u")]).await;
    assert_eq!(all(&tags, "Key"), vec!["team", "env"]);
    assert_eq!(all(&tags, "Value"), vec!["b", "prod"]);
    t.ok("UntagUser", &[("UserName", "u"), ("TagKeys.member.1", "team")])
        .await;
    let tags = t.ok("ListUserTags", &[("UserName", "u")]).await;
    assert_eq!(all(&tags, "Key"), vec!["env"]);
    // GetUser shows tags, ListUsers does not.
    assert!(t.ok("GetUser", &[("UserName", "u")]).await.contains("<Tags>"));
    assert!(!t.ok("ListUsers", &[]).await.contains("<Tags>"));

    let mut many = vec![("UserName".to_string(), "u".to_string())];
    for i in 1..=51 {
        many.push((format!("Tags.member.{i}.Key"), format!("k{i}")));
        many.push((format!("Tags.member.{i}.Value"), "v".into()));
    }
    let e = t
        .engine
        .handle(&t.root(ACCT), "iam", "TagUser", &many)
        .await
        .unwrap_err();
    assert_code(&e, AwsErrorCode::LimitExceeded, 409);
}

// ---- access keys ----

#[tokio::test]
async fn access_keys_lifecycle_and_resolution() {
    let t = T::new();
    t.ok(
        "CreateUser",
        &[
            ("UserName", "u"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "x"),
        ],
    )
    .await;
    let out = t.ok("CreateAccessKey", &[("UserName", "u")]).await;
    let akid = text(&out, "AccessKeyId");
    let secret = text(&out, "SecretAccessKey");
    assert!(akid.starts_with("AKIA") && akid.len() == 20);
    assert_eq!(secret.len(), 40);
    assert_eq!(text(&out, "Status"), "Active");

    let key = valid(t.resolve(&akid, None).await);
    assert!(key.secret.ct_eq(secret.as_bytes()));
    assert_eq!(key.principal.arn, format!("arn:aws:iam::{ACCT}:user/u"));
    assert!(matches!(&key.principal.kind, PrincipalKind::User { name, .. } if name == "u"));
    assert_eq!(
        key.principal.tags,
        vec![Tag {
            key: "team".into(),
            value: "x".into()
        }]
    );
    // A session token with a long-term key is refused.
    assert!(matches!(
        t.resolve(&akid, Some("tok")).await,
        KeyResolution::InvalidToken
    ));

    t.ok("CreateAccessKey", &[("UserName", "u")]).await;
    let e = t.err("CreateAccessKey", &[("UserName", "u")]).await;
    assert_code(&e, AwsErrorCode::LimitExceeded, 409);
    assert_eq!(e.message, "Cannot exceed quota for AccessKeysPerUser: 2");

    let list = t.ok("ListAccessKeys", &[("UserName", "u")]).await;
    assert_eq!(all(&list, "AccessKeyId").len(), 2);
    assert!(!list.contains("SecretAccessKey"));

    // Inactive → unknown; active again → valid (the cache follows every change).
    t.ok(
        "UpdateAccessKey",
        &[("UserName", "u"), ("AccessKeyId", &akid), ("Status", "Inactive")],
    )
    .await;
    assert!(matches!(t.resolve(&akid, None).await, KeyResolution::Unknown));
    let list = t.ok("ListAccessKeys", &[("UserName", "u")]).await;
    assert!(all(&list, "Status").contains(&"Inactive".to_string()));
    t.ok(
        "UpdateAccessKey",
        &[("UserName", "u"), ("AccessKeyId", &akid), ("Status", "Active")],
    )
    .await;
    valid(t.resolve(&akid, None).await);

    // Tag changes reach the cached principal.
    t.ok(
        "TagUser",
        &[
            ("UserName", "u"),
            ("Tags.member.1.Key", "team"),
            ("Tags.member.1.Value", "y"),
        ],
    )
    .await;
    assert_eq!(valid(t.resolve(&akid, None).await).principal.tags[0].value, "y");

    let e = t
        .err(
            "UpdateAccessKey",
            &[("UserName", "u"), ("AccessKeyId", &akid), ("Status", "Maybe")],
        )
        .await;
    assert_code(&e, AwsErrorCode::ValidationError, 400);
    let e = t
        .err("DeleteAccessKey", &[("UserName", "u"), ("AccessKeyId", "AKIANOPE")])
        .await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
    assert_eq!(e.message, "The Access Key with id AKIANOPE cannot be found.");

    t.ok("DeleteAccessKey", &[("UserName", "u"), ("AccessKeyId", &akid)])
        .await;
    assert!(matches!(t.resolve(&akid, None).await, KeyResolution::Unknown));
    assert!(matches!(t.resolve("AKIAUNKNOWN", None).await, KeyResolution::Unknown));
    assert!(matches!(t.resolve("../x", None).await, KeyResolution::Unknown));
}

#[tokio::test]
async fn keys_of_the_caller_and_last_used() {
    let t = T::new();
    let (akid, _) = t.user_with_key("u").await;
    // A user calling without UserName manages its own keys.
    let me = t.ctx_as(ACCT, &format!("arn:aws:iam::{ACCT}:user/u"));
    let list = t.call_ctx(&me, "ListAccessKeys", &[]).await.unwrap();
    assert_eq!(all(&list, "AccessKeyId"), vec![akid.clone()]);
    assert_eq!(text(&t.call_ctx(&me, "GetUser", &[]).await.unwrap(), "UserName"), "u");
    // An assumed role must name the user.
    let role_ctx = t.ctx_as(ACCT, &format!("arn:aws:sts::{ACCT}:assumed-role/r/s"));
    let e = t.call_ctx(&role_ctx, "ListAccessKeys", &[]).await.unwrap_err();
    assert_code(&e, AwsErrorCode::ValidationError, 400);

    let lu = t.ok("GetAccessKeyLastUsed", &[("AccessKeyId", &akid)]).await;
    assert_eq!(text(&lu, "ServiceName"), "N/A");
    t.engine
        .record_key_use(&akid, "secretsmanager", "eu-west-1", t.now())
        .await
        .unwrap();
    let lu = t.ok("GetAccessKeyLastUsed", &[("AccessKeyId", &akid)]).await;
    assert_eq!(text(&lu, "ServiceName"), "secretsmanager");
    assert_eq!(text(&lu, "UserName"), "u");
}

#[tokio::test]
async fn root_keys_and_accounts() {
    let t = T::new();
    t.engine.create_account(ACCT, t.now()).await.unwrap();
    t.engine.create_account(ACCT, t.now()).await.unwrap();
    assert!(t.engine.create_account("12", t.now()).await.is_err());
    assert!(t.engine.account_exists(ACCT).await.unwrap());
    assert!(!t.engine.account_exists(OTHER).await.unwrap());

    let fixed = (
        "AKIADEVDEVDEVDEV0001".to_string(),
        SecretBytes::from_slice(b"devsecret"),
    );
    let (id, _) = t
        .engine
        .create_root_access_key(ACCT, Some(fixed.clone()), t.now())
        .await
        .unwrap();
    assert_eq!(id, "AKIADEVDEVDEVDEV0001");
    // Idempotent for the same root (dev mode restarts on persistent storage).
    t.engine
        .create_root_access_key(ACCT, Some(fixed.clone()), t.now())
        .await
        .unwrap();
    let key = valid(t.resolve(&id, None).await);
    assert!(key.principal.is_root());
    assert_eq!(key.principal.arn, format!("arn:aws:iam::{ACCT}:root"));
    assert!(key.secret.ct_eq(b"devsecret"));
    // The same id cannot be taken by another account.
    t.engine.create_account(OTHER, t.now()).await.unwrap();
    let Err(e) = t.engine.create_root_access_key(OTHER, Some(fixed), t.now()).await else {
        panic!("a key id of another account was taken");
    };
    assert_code(&e, AwsErrorCode::EntityAlreadyExists, 409);
    assert_eq!(
        t.engine.list_accounts().await.unwrap(),
        vec![ACCT.to_string(), OTHER.to_string()]
    );

    // Dev fixtures use short ids; `ASIA` ids and `/` are refused.
    let (short, _) = t
        .engine
        .create_root_access_key(OTHER, Some(("test".into(), SecretBytes::from_slice(b"test"))), t.now())
        .await
        .unwrap();
    assert!(valid(t.resolve(&short, None).await).principal.is_root());
    for bad in ["ASIAXXXXXXXXXXXXXXXX", "a/b", ""] {
        let r = t
            .engine
            .create_root_access_key(OTHER, Some((bad.into(), SecretBytes::from_slice(b"s"))), t.now())
            .await;
        assert!(r.is_err(), "{bad}");
    }
    let (random_id, secret) = t.engine.create_root_access_key(OTHER, None, t.now()).await.unwrap();
    assert!(random_id.starts_with("AKIA"));
    assert!(valid(t.resolve(&random_id, None).await).secret.ct_eq(secret.expose()));

    // The root's keys through the API (no UserName).
    let list = t.ok("ListAccessKeys", &[]).await;
    assert_eq!(all(&list, "AccessKeyId"), vec![id.clone()]);
    let out = t.ok("CreateAccessKey", &[]).await;
    assert!(!out.contains("<UserName>"));
    let e = t.err("CreateAccessKey", &[]).await;
    assert_code(&e, AwsErrorCode::LimitExceeded, 409);
    t.ok("DeleteAccessKey", &[("AccessKeyId", &id)]).await;
    assert!(matches!(t.resolve(&id, None).await, KeyResolution::Unknown));
    let root_user = t.ok("GetUser", &[]).await;
    assert_eq!(text(&root_user, "Arn"), format!("arn:aws:iam::{ACCT}:root"));

    // Reset forgets everything, cache included.
    t.engine.reset().await.unwrap();
    assert!(matches!(t.resolve(&short, None).await, KeyResolution::Unknown));
    assert!(t.engine.list_accounts().await.unwrap().is_empty());
}

// ---- managed policies ----

#[tokio::test]
async fn managed_policies_and_versions() {
    let t = T::new();
    let out = t
        .ok(
            "CreatePolicy",
            &[
                ("PolicyName", "read"),
                ("Path", "/app/"),
                ("PolicyDocument", POLICY),
                ("Description", "d"),
            ],
        )
        .await;
    let arn = text(&out, "Arn");
    assert_eq!(arn, format!("arn:aws:iam::{ACCT}:policy/app/read"));
    assert!(text(&out, "PolicyId").starts_with("ANPA"));
    assert_eq!(text(&out, "DefaultVersionId"), "v1");
    assert_eq!(text(&out, "AttachmentCount"), "0");

    let e = t
        .err("CreatePolicy", &[("PolicyName", "READ"), ("PolicyDocument", POLICY)])
        .await;
    assert_code(&e, AwsErrorCode::EntityAlreadyExists, 409);
    assert_eq!(
        e.message,
        "A policy called READ already exists. Duplicate names are not allowed."
    );
    let e = t
        .err("CreatePolicy", &[("PolicyName", "bad"), ("PolicyDocument", "{nope")])
        .await;
    assert_code(&e, AwsErrorCode::MalformedPolicyDocument, 400);
    assert_eq!(e.message, "Syntax errors in policy.");

    let v1 = t
        .ok("GetPolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v1")])
        .await;
    assert_eq!(decode(&text(&v1, "Document")), POLICY);
    assert_eq!(text(&v1, "IsDefaultVersion"), "true");

    for _ in 2..=5 {
        t.ok(
            "CreatePolicyVersion",
            &[("PolicyArn", &arn), ("PolicyDocument", POLICY2)],
        )
        .await;
    }
    let e = t
        .err(
            "CreatePolicyVersion",
            &[("PolicyArn", &arn), ("PolicyDocument", POLICY2)],
        )
        .await;
    assert_code(&e, AwsErrorCode::LimitExceeded, 409);
    let versions = t.ok("ListPolicyVersions", &[("PolicyArn", &arn)]).await;
    assert_eq!(all(&versions, "VersionId"), vec!["v5", "v4", "v3", "v2", "v1"]);

    t.ok("SetDefaultPolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v3")])
        .await;
    assert_eq!(
        text(&t.ok("GetPolicy", &[("PolicyArn", &arn)]).await, "DefaultVersionId"),
        "v3"
    );
    let e = t
        .err("DeletePolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v3")])
        .await;
    assert_code(&e, AwsErrorCode::DeleteConflict, 409);
    t.ok("DeletePolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v1")])
        .await;
    let e = t
        .err("GetPolicyVersion", &[("PolicyArn", &arn), ("VersionId", "v1")])
        .await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
    // Version numbers are not reused.
    let v6 = t
        .ok(
            "CreatePolicyVersion",
            &[
                ("PolicyArn", &arn),
                ("PolicyDocument", POLICY),
                ("SetAsDefault", "true"),
            ],
        )
        .await;
    assert_eq!(text(&v6, "VersionId"), "v6");
    assert_eq!(text(&v6, "IsDefaultVersion"), "true");

    let e = t.err("DeletePolicy", &[("PolicyArn", &arn)]).await;
    assert_code(&e, AwsErrorCode::DeleteConflict, 409);
    for v in ["v2", "v3", "v4", "v5"] {
        t.ok("DeletePolicyVersion", &[("PolicyArn", &arn), ("VersionId", v)])
            .await;
    }
    t.ok("DeletePolicy", &[("PolicyArn", &arn)]).await;
    let e = t.err("GetPolicy", &[("PolicyArn", &arn)]).await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
}

#[tokio::test]
async fn attach_detach_and_list_policies() {
    let t = T::new();
    t.ok("CreateUser", &[("UserName", "u")]).await;
    t.role("r", &[]).await;
    t.ok("CreateGroup", &[("GroupName", "g")]).await;
    let arn = text(
        &t.ok("CreatePolicy", &[("PolicyName", "p"), ("PolicyDocument", POLICY)])
            .await,
        "Arn",
    );
    t.ok("AttachUserPolicy", &[("UserName", "u"), ("PolicyArn", &arn)])
        .await;
    t.ok("AttachUserPolicy", &[("UserName", "u"), ("PolicyArn", &arn)])
        .await;
    t.ok("AttachRolePolicy", &[("RoleName", "r"), ("PolicyArn", &arn)])
        .await;
    t.ok("AttachGroupPolicy", &[("GroupName", "g"), ("PolicyArn", &arn)])
        .await;
    let admin = "arn:aws:iam::aws:policy/AdministratorAccess";
    t.ok("AttachRolePolicy", &[("RoleName", "r"), ("PolicyArn", admin)])
        .await;

    assert_eq!(
        text(&t.ok("GetPolicy", &[("PolicyArn", &arn)]).await, "AttachmentCount"),
        "3"
    );
    let attached = t.ok("ListAttachedRolePolicies", &[("RoleName", "r")]).await;
    assert_eq!(all(&attached, "PolicyName"), vec!["AdministratorAccess", "p"]);
    let ents = t.ok("ListEntitiesForPolicy", &[("PolicyArn", &arn)]).await;
    assert_eq!(all(&ents, "UserName"), vec!["u"]);
    assert_eq!(all(&ents, "RoleName"), vec!["r"]);
    assert_eq!(all(&ents, "GroupName"), vec!["g"]);

    let e = t.err("DeletePolicy", &[("PolicyArn", &arn)]).await;
    assert_code(&e, AwsErrorCode::DeleteConflict, 409);
    assert_eq!(e.message, "Cannot delete a policy attached to entities.");
    let e = t
        .err(
            "AttachUserPolicy",
            &[
                ("UserName", "u"),
                ("PolicyArn", "arn:aws:iam::123456789012:policy/none"),
            ],
        )
        .await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
    assert_eq!(
        e.message,
        "Policy arn:aws:iam::123456789012:policy/none does not exist or is not attachable."
    );
    let e = t
        .err("DetachGroupPolicy", &[("GroupName", "g"), ("PolicyArn", admin)])
        .await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);

    let local = t.ok("ListPolicies", &[("Scope", "Local")]).await;
    assert_eq!(all(&local, "PolicyName"), vec!["p"]);
    let aws = t
        .ok("ListPolicies", &[("Scope", "AWS"), ("OnlyAttached", "true")])
        .await;
    assert_eq!(all(&aws, "PolicyName"), vec!["AdministratorAccess"]);
    let every = t.ok("ListPolicies", &[("MaxItems", "2")]).await;
    assert_eq!(text(&every, "IsTruncated"), "true");
    let rest = t.ok("ListPolicies", &[("Marker", &text(&every, "Marker"))]).await;
    assert_eq!(all(&every, "PolicyName").len() + all(&rest, "PolicyName").len(), 4);

    for (action, who) in [
        ("DetachUserPolicy", ("UserName", "u")),
        ("DetachRolePolicy", ("RoleName", "r")),
        ("DetachGroupPolicy", ("GroupName", "g")),
    ] {
        t.ok(action, &[who, ("PolicyArn", &arn)]).await;
    }
    assert_eq!(
        text(&t.ok("GetPolicy", &[("PolicyArn", &arn)]).await, "AttachmentCount"),
        "0"
    );
    t.ok("DeletePolicy", &[("PolicyArn", &arn)]).await;

    // Ten attached policies at most.
    for i in 0..11 {
        let name = format!("p{i}");
        let a = text(
            &t.ok("CreatePolicy", &[("PolicyName", &name), ("PolicyDocument", POLICY)])
                .await,
            "Arn",
        );
        let r = t
            .call_ctx(
                &t.root(ACCT),
                "AttachUserPolicy",
                &[("UserName", "u"), ("PolicyArn", &a)],
            )
            .await;
        if i < 10 {
            r.unwrap();
        } else {
            assert_code(&r.unwrap_err(), AwsErrorCode::LimitExceeded, 409);
        }
    }
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut params = vec![("UserName", "u"), ("MaxItems", "4")];
        if let Some(m) = &marker {
            params.push(("Marker", m.as_str()));
        }
        let page = t.ok("ListAttachedUserPolicies", &params).await;
        assert!(!page.contains('\u{0}'));
        names.extend(all(&page, "PolicyName"));
        if text(&page, "IsTruncated") == "false" {
            break;
        }
        marker = Some(text(&page, "Marker"));
    }
    assert_eq!(names.len(), 10);
    assert_eq!(names[0], "p0");
}

// ---- inline policies, roles, groups ----

#[tokio::test]
async fn inline_policies_for_users_roles_and_groups() {
    let t = T::new();
    t.ok("CreateUser", &[("UserName", "u")]).await;
    t.role("r", &[]).await;
    t.ok("CreateGroup", &[("GroupName", "g")]).await;
    for (kind, param, who) in [
        ("User", "UserName", "u"),
        ("Role", "RoleName", "r"),
        ("Group", "GroupName", "g"),
    ] {
        t.ok(
            &format!("Put{kind}Policy"),
            &[(param, who), ("PolicyName", "b"), ("PolicyDocument", POLICY)],
        )
        .await;
        t.ok(
            &format!("Put{kind}Policy"),
            &[(param, who), ("PolicyName", "a"), ("PolicyDocument", POLICY2)],
        )
        .await;
        let got = t
            .ok(&format!("Get{kind}Policy"), &[(param, who), ("PolicyName", "b")])
            .await;
        assert_eq!(decode(&text(&got, "PolicyDocument")), POLICY);
        assert_eq!(text(&got, param), who);
        let list = t
            .ok(&format!("List{kind}Policies"), &[(param, who), ("MaxItems", "1")])
            .await;
        assert_eq!(all(&list, "member"), vec!["a"]);
        assert_eq!(text(&list, "IsTruncated"), "true");
        t.ok(&format!("Delete{kind}Policy"), &[(param, who), ("PolicyName", "a")])
            .await;
        let e = t
            .err(&format!("Get{kind}Policy"), &[(param, who), ("PolicyName", "a")])
            .await;
        assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
        assert_eq!(
            e.message,
            format!("The {} policy with name a cannot be found.", kind.to_lowercase())
        );
        let e = t
            .err(
                &format!("Put{kind}Policy"),
                &[(param, who), ("PolicyName", "x"), ("PolicyDocument", "[]")],
            )
            .await;
        assert_code(&e, AwsErrorCode::MalformedPolicyDocument, 400);
    }
    let e = t
        .err(
            "PutUserPolicy",
            &[("UserName", "nobody"), ("PolicyName", "x"), ("PolicyDocument", POLICY)],
        )
        .await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
}

#[tokio::test]
async fn roles() {
    let t = T::new();
    let e = t.err("CreateRole", &[("RoleName", "r")]).await;
    assert_code(&e, AwsErrorCode::ValidationError, 400);
    let e = t
        .err("CreateRole", &[("RoleName", "r"), ("AssumeRolePolicyDocument", POLICY)])
        .await;
    assert_code(&e, AwsErrorCode::MalformedPolicyDocument, 400);
    let e = t
        .err(
            "CreateRole",
            &[
                ("RoleName", "r"),
                ("AssumeRolePolicyDocument", &trust_for(ACCT)),
                ("MaxSessionDuration", "100"),
            ],
        )
        .await;
    assert_code(&e, AwsErrorCode::ValidationError, 400);

    let arn = t
        .role(
            "r",
            &[("Path", "/svc/"), ("Description", "d"), ("MaxSessionDuration", "7200")],
        )
        .await;
    assert_eq!(arn, format!("arn:aws:iam::{ACCT}:role/svc/r"));
    let got = t.ok("GetRole", &[("RoleName", "r")]).await;
    assert!(text(&got, "RoleId").starts_with("AROA"));
    assert_eq!(decode(&text(&got, "AssumeRolePolicyDocument")), trust_for(ACCT));
    assert_eq!(text(&got, "MaxSessionDuration"), "7200");
    assert_eq!(t.engine.role_trust_policy(&arn).await.unwrap(), Some(trust_for(ACCT)));

    let e = t
        .err(
            "CreateRole",
            &[("RoleName", "R"), ("AssumeRolePolicyDocument", &trust_for(ACCT))],
        )
        .await;
    assert_code(&e, AwsErrorCode::EntityAlreadyExists, 409);
    assert_eq!(e.message, "Role with name R already exists.");

    t.ok(
        "TagRole",
        &[
            ("RoleName", "r"),
            ("Tags.member.1.Key", "k"),
            ("Tags.member.1.Value", "v"),
        ],
    )
    .await;
    assert_eq!(all(&t.ok("ListRoleTags", &[("RoleName", "r")]).await, "Key"), vec!["k"]);
    t.ok("UntagRole", &[("RoleName", "r"), ("TagKeys.member.1", "k")]).await;

    let other = trust_for(OTHER);
    t.ok(
        "UpdateAssumeRolePolicy",
        &[("RoleName", "r"), ("PolicyDocument", &other)],
    )
    .await;
    assert_eq!(t.engine.role_trust_policy(&arn).await.unwrap(), Some(other));

    t.ok(
        "PutRolePolicy",
        &[("RoleName", "r"), ("PolicyName", "p"), ("PolicyDocument", POLICY)],
    )
    .await;
    let e = t.err("DeleteRole", &[("RoleName", "r")]).await;
    assert_code(&e, AwsErrorCode::DeleteConflict, 409);
    t.ok("DeleteRolePolicy", &[("RoleName", "r"), ("PolicyName", "p")])
        .await;
    assert_eq!(all(&t.ok("ListRoles", &[]).await, "RoleName"), vec!["r"]);
    t.ok("DeleteRole", &[("RoleName", "r")]).await;
    let e = t.err("GetRole", &[("RoleName", "r")]).await;
    assert_eq!(e.message, "The role with name r cannot be found.");
}

#[tokio::test]
async fn groups_and_principal_policies() {
    let t = T::new();
    let (akid, _) = t.user_with_key("u").await;
    t.ok("CreateUser", &[("UserName", "v")]).await;
    t.ok("CreateGroup", &[("GroupName", "devs"), ("Path", "/teams/")]).await;
    let e = t.err("CreateGroup", &[("GroupName", "DEVS")]).await;
    assert_code(&e, AwsErrorCode::EntityAlreadyExists, 409);
    t.ok("AddUserToGroup", &[("GroupName", "devs"), ("UserName", "u")])
        .await;
    t.ok("AddUserToGroup", &[("GroupName", "devs"), ("UserName", "v")])
        .await;
    t.ok("AddUserToGroup", &[("GroupName", "devs"), ("UserName", "v")])
        .await;
    let e = t
        .err("AddUserToGroup", &[("GroupName", "devs"), ("UserName", "nobody")])
        .await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);

    let g = t.ok("GetGroup", &[("GroupName", "devs"), ("MaxItems", "1")]).await;
    assert_eq!(text(&g, "GroupName"), "devs");
    assert!(text(&g, "GroupId").starts_with("AGPA"));
    assert_eq!(all(&g, "UserName"), vec!["u"]);
    assert_eq!(text(&g, "IsTruncated"), "true");
    assert_eq!(
        all(&t.ok("ListGroupsForUser", &[("UserName", "v")]).await, "GroupName"),
        vec!["devs"]
    );
    assert_eq!(
        all(&t.ok("ListGroups", &[("PathPrefix", "/teams/")]).await, "GroupName"),
        vec!["devs"]
    );

    t.ok(
        "PutGroupPolicy",
        &[("GroupName", "devs"), ("PolicyName", "gi"), ("PolicyDocument", POLICY)],
    )
    .await;
    let ga = text(
        &t.ok("CreatePolicy", &[("PolicyName", "ga"), ("PolicyDocument", POLICY2)])
            .await,
        "Arn",
    );
    t.ok("AttachGroupPolicy", &[("GroupName", "devs"), ("PolicyArn", &ga)])
        .await;
    t.ok(
        "PutUserPolicy",
        &[("UserName", "u"), ("PolicyName", "ui"), ("PolicyDocument", POLICY)],
    )
    .await;
    t.ok(
        "AttachUserPolicy",
        &[
            ("UserName", "u"),
            ("PolicyArn", "arn:aws:iam::aws:policy/ReadOnlyAccess"),
        ],
    )
    .await;

    let key = valid(t.resolve(&akid, None).await);
    let policies = t.engine.principal_policies(&key.principal).await.unwrap();
    let sources: Vec<String> = policies.iter().map(|p| format!("{:?}", p.source)).collect();
    assert_eq!(policies.len(), 4, "{sources:?}");
    assert!(
        policies
            .iter()
            .any(|p| matches!(&p.source, PolicySource::Inline { name, .. } if name == "gi"))
    );
    assert!(policies.iter().any(
        |p| matches!(&p.source, PolicySource::Attached { policy_arn, .. } if *policy_arn == ga)
            && p.document == POLICY2
    ));
    assert!(policies.iter().any(
        |p| matches!(&p.source, PolicySource::Attached { policy_arn, .. } if policy_arn.ends_with("ReadOnlyAccess"))
    ));
    assert!(policies.iter().all(|p| !p.source.is_session_policy()));
    assert!(
        t.engine
            .principal_policies(&Principal::root(ACCT))
            .await
            .unwrap()
            .is_empty()
    );

    let e = t.err("DeleteGroup", &[("GroupName", "devs")]).await;
    assert_code(&e, AwsErrorCode::DeleteConflict, 409);
    t.ok("RemoveUserFromGroup", &[("GroupName", "devs"), ("UserName", "u")])
        .await;
    let e = t
        .err("RemoveUserFromGroup", &[("GroupName", "devs"), ("UserName", "u")])
        .await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
    // Out of the group, its policies no longer apply.
    assert_eq!(t.engine.principal_policies(&key.principal).await.unwrap().len(), 2);
}

// ---- STS ----

#[tokio::test]
async fn assume_role_issues_session_credentials() {
    let t = T::new();
    let role_arn = t
        .role(
            "deploy",
            &[("Tags.member.1.Key", "team"), ("Tags.member.1.Value", "ops")],
        )
        .await;
    t.ok(
        "PutRolePolicy",
        &[("RoleName", "deploy"), ("PolicyName", "p"), ("PolicyDocument", POLICY)],
    )
    .await;
    let out = t
        .ok(
            "AssumeRole",
            &[
                ("RoleArn", &role_arn),
                ("RoleSessionName", "ci-run"),
                ("DurationSeconds", "900"),
                ("Policy", POLICY2),
                ("Tags.member.1.Key", "run"),
                ("Tags.member.1.Value", "42"),
            ],
        )
        .await;
    assert!(out.starts_with(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult><Credentials>"
    ));
    let akid = text(&out, "AccessKeyId");
    let secret = text(&out, "SecretAccessKey");
    let token = text(&out, "SessionToken");
    assert!(akid.starts_with("ASIA"));
    assert_eq!(text(&out, "Expiration"), "2023-11-14T22:28:20Z");
    let role_id = text(&t.ok("GetRole", &[("RoleName", "deploy")]).await, "RoleId");
    assert_eq!(text(&out, "AssumedRoleId"), format!("{role_id}:ci-run"));
    assert_eq!(
        text(&out, "Arn"),
        format!("arn:aws:sts::{ACCT}:assumed-role/deploy/ci-run")
    );
    assert_eq!(t.trust.calls.load(Ordering::SeqCst), 1);

    // The session token is required and checked.
    assert!(matches!(t.resolve(&akid, None).await, KeyResolution::InvalidToken));
    assert!(matches!(
        t.resolve(&akid, Some("wrong")).await,
        KeyResolution::InvalidToken
    ));
    let key = valid(t.resolve(&akid, Some(&token)).await);
    assert!(key.secret.ct_eq(secret.as_bytes()));
    assert_eq!(
        key.principal.arn,
        format!("arn:aws:sts::{ACCT}:assumed-role/deploy/ci-run")
    );
    assert_eq!(key.principal.user_id(), format!("{role_id}:ci-run"));
    assert!(
        matches!(&key.principal.kind, PrincipalKind::AssumedRole { role_arn: r, session_name, .. } if *r == role_arn && session_name == "ci-run")
    );
    let mut tags: Vec<String> = key
        .principal
        .tags
        .iter()
        .map(|t| format!("{}={}", t.key, t.value))
        .collect();
    tags.sort();
    assert_eq!(tags, vec!["run=42", "team=ops"]);

    // Role policies plus the session policy, marked as such.
    let policies = t.engine.principal_policies(&key.principal).await.unwrap();
    assert_eq!(policies.len(), 2);
    assert!(
        policies
            .iter()
            .any(|p| p.source == PolicySource::SessionInline && p.document == POLICY2)
    );

    // GetCallerIdentity as the session.
    let who = t
        .call_ctx(&t.ctx_as(ACCT, &key.principal.arn), "GetCallerIdentity", &[])
        .await
        .unwrap();
    assert_eq!(text(&who, "UserId"), format!("{role_id}:ci-run"));
    assert_eq!(text(&who, "Account"), ACCT);

    // Expiry.
    t.advance(Duration::seconds(899));
    valid(t.resolve(&akid, Some(&token)).await);
    t.advance(Duration::seconds(1));
    assert!(matches!(t.resolve(&akid, Some(&token)).await, KeyResolution::Expired));
    assert_eq!(t.engine.purge_expired_sessions(t.now()).await.unwrap(), 1);
    assert!(matches!(t.resolve(&akid, Some(&token)).await, KeyResolution::Unknown));
}

#[tokio::test]
async fn assume_role_duration_bounds() {
    let t = T::new();
    let arn = t.role("r", &[]).await;
    let long = t.role("long", &[("MaxSessionDuration", "7200")]).await;
    let e = t
        .err(
            "AssumeRole",
            &[("RoleArn", &arn), ("RoleSessionName", "s"), ("DurationSeconds", "899")],
        )
        .await;
    assert_code(&e, AwsErrorCode::ValidationError, 400);
    let e = t
        .err(
            "AssumeRole",
            &[("RoleArn", &arn), ("RoleSessionName", "s1"), ("DurationSeconds", "899")],
        )
        .await;
    assert!(e.message.contains("greater than or equal to 900"), "{e}");
    let e = t
        .err(
            "AssumeRole",
            &[
                ("RoleArn", &arn),
                ("RoleSessionName", "s1"),
                ("DurationSeconds", "3601"),
            ],
        )
        .await;
    assert_code(&e, AwsErrorCode::ValidationError, 400);
    assert_eq!(
        e.message,
        "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
    );
    let out = t
        .ok(
            "AssumeRole",
            &[
                ("RoleArn", &long),
                ("RoleSessionName", "s1"),
                ("DurationSeconds", "7200"),
            ],
        )
        .await;
    assert_eq!(text(&out, "Expiration"), "2023-11-15T00:13:20Z");
    // Default is one hour.
    let out = t
        .ok("AssumeRole", &[("RoleArn", &long), ("RoleSessionName", "s2")])
        .await;
    assert_eq!(text(&out, "Expiration"), "2023-11-14T23:13:20Z");
    // Role chaining is capped at one hour.
    let chained = t.ctx_as(ACCT, &format!("arn:aws:sts::{ACCT}:assumed-role/r/s"));
    let e = t
        .call_ctx(
            &chained,
            "AssumeRole",
            &[
                ("RoleArn", &long),
                ("RoleSessionName", "s3"),
                ("DurationSeconds", "7200"),
            ],
        )
        .await
        .unwrap_err();
    assert!(e.message.contains("role chaining"), "{e}");
    let e = t
        .err("AssumeRole", &[("RoleArn", &arn), ("RoleSessionName", "bad name")])
        .await;
    assert_code(&e, AwsErrorCode::ValidationError, 400);
    let e = t
        .err(
            "AssumeRole",
            &[("RoleArn", &arn), ("RoleSessionName", "s1"), ("Policy", "{")],
        )
        .await;
    assert_code(&e, AwsErrorCode::MalformedPolicyDocument, 400);
}

#[tokio::test]
async fn assume_role_denied() {
    let t = T::new();
    let arn = t.role("r", &[]).await;
    t.trust.allow.store(false, Ordering::SeqCst);
    let e = t
        .err("AssumeRole", &[("RoleArn", &arn), ("RoleSessionName", "s1")])
        .await;
    assert_code(&e, AwsErrorCode::AccessDenied, 403);
    assert_eq!(
        e.message,
        format!("User: arn:aws:iam::{ACCT}:root is not authorized to perform: sts:AssumeRole on resource: {arn}")
    );
    t.trust.allow.store(true, Ordering::SeqCst);
    let missing = format!("arn:aws:iam::{ACCT}:role/none");
    let e = t
        .err("AssumeRole", &[("RoleArn", &missing), ("RoleSessionName", "s1")])
        .await;
    assert_code(&e, AwsErrorCode::AccessDenied, 403);
    // The trust check is not consulted for a role that does not exist.
    assert_eq!(t.trust.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn basic_trust_check() {
    let caller = RequestContext {
        account_id: ACCT.into(),
        region: "us-east-1".into(),
        principal_arn: format!("arn:aws:iam::{ACCT}:user/u"),
        now: start(),
    };
    let ask = |doc: String| {
        let caller = caller.clone();
        async move {
            let req = TrustRequest {
                caller: &caller,
                role_arn: "arn:aws:iam::123456789012:role/r",
                role_account: ACCT,
                trust_policy: &doc,
                session_name: "s",
                tags: &[],
                external_id: None,
                source_identity: None,
            };
            BasicTrustCheck.allows(&req).await.unwrap()
        }
    };
    assert!(ask(trust_for(ACCT)).await);
    assert!(!ask(trust_for(OTHER)).await);
    let user = format!(
        r#"{{"Statement":{{"Effect":"Allow","Principal":{{"AWS":["arn:aws:iam::{ACCT}:user/u"]}},"Action":["sts:AssumeRole"]}}}}"#
    );
    assert!(ask(user).await);
    let service =
        r#"{"Statement":{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}}"#;
    assert!(!ask(service.to_string()).await);
    let deny = format!(
        r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}},{{"Effect":"Deny","Principal":{{"AWS":"{ACCT}"}},"Action":"*"}}]}}"#
    );
    assert!(!ask(deny).await);
}

#[tokio::test]
async fn get_caller_identity() {
    let t = T::new();
    let who = t.ok("GetCallerIdentity", &[]).await;
    assert!(who.starts_with("<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"));
    assert_eq!(text(&who, "UserId"), ACCT);
    assert_eq!(text(&who, "Arn"), format!("arn:aws:iam::{ACCT}:root"));
    t.ok("CreateUser", &[("UserName", "u"), ("Path", "/a/")]).await;
    let id = text(&t.ok("GetUser", &[("UserName", "u")]).await, "UserId");
    let ctx = t.ctx_as(ACCT, &format!("arn:aws:iam::{ACCT}:user/a/u"));
    assert_eq!(
        text(&t.call_ctx(&ctx, "GetCallerIdentity", &[]).await.unwrap(), "UserId"),
        id
    );
}

// ---- accounts ----

#[tokio::test]
async fn accounts_are_isolated() {
    let t = T::new();
    t.ok_in(ACCT, "CreateUser", &[("UserName", "alice")]).await;
    // Same name in another account: a different user.
    let other = t.ok_in(OTHER, "CreateUser", &[("UserName", "alice")]).await;
    assert_eq!(text(&other, "Arn"), format!("arn:aws:iam::{OTHER}:user/alice"));
    t.ok_in(ACCT, "CreateUser", &[("UserName", "bob")]).await;
    assert_eq!(all(&t.ok_in(OTHER, "ListUsers", &[]).await, "UserName"), vec!["alice"]);
    let e = t.err_in(OTHER, "GetUser", &[("UserName", "bob")]).await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);

    let arn = text(
        &t.ok_in(ACCT, "CreatePolicy", &[("PolicyName", "p"), ("PolicyDocument", POLICY)])
            .await,
        "Arn",
    );
    let e = t
        .err_in(OTHER, "AttachUserPolicy", &[("UserName", "alice"), ("PolicyArn", &arn)])
        .await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
    let e = t.err_in(OTHER, "GetPolicy", &[("PolicyArn", &arn)]).await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
    assert!(
        all(
            &t.ok_in(OTHER, "ListPolicies", &[("Scope", "Local")]).await,
            "PolicyName"
        )
        .is_empty()
    );

    // Keys: one account cannot manage another's.
    let out = t.ok_in(ACCT, "CreateAccessKey", &[("UserName", "bob")]).await;
    let akid = text(&out, "AccessKeyId");
    let e = t
        .err_in(
            OTHER,
            "DeleteAccessKey",
            &[("UserName", "alice"), ("AccessKeyId", &akid)],
        )
        .await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
    let e = t.err_in(OTHER, "GetAccessKeyLastUsed", &[("AccessKeyId", &akid)]).await;
    assert_code(&e, AwsErrorCode::NoSuchEntity, 404);
    assert_eq!(valid(t.resolve(&akid, None).await).principal.account_id, ACCT);

    // A session acts in the role's account.
    let trust = trust_for(OTHER);
    let role_arn = text(
        &t.ok_in(
            ACCT,
            "CreateRole",
            &[("RoleName", "x"), ("AssumeRolePolicyDocument", &trust)],
        )
        .await,
        "Arn",
    );
    let out = t
        .ok_in(
            OTHER,
            "AssumeRole",
            &[("RoleArn", &role_arn), ("RoleSessionName", "xs")],
        )
        .await;
    let key = valid(
        t.resolve(&text(&out, "AccessKeyId"), Some(&text(&out, "SessionToken")))
            .await,
    );
    assert_eq!(key.principal.account_id, ACCT);
}

// ---- failures, secrecy ----

#[tokio::test]
async fn failed_writes_change_nothing() {
    let storage = Arc::new(FailingStorage::new());
    let t = T::with_storage(storage.clone());
    let (akid, _) = t.user_with_key("u").await;
    t.ok("CreateGroup", &[("GroupName", "g")]).await;
    valid(t.resolve(&akid, None).await);

    storage.set_failing(true);
    let e = t.err("CreateUser", &[("UserName", "v")]).await;
    assert_code(&e, AwsErrorCode::ServiceFailure, 500);
    assert!(
        t.err("AddUserToGroup", &[("GroupName", "g"), ("UserName", "u")])
            .await
            .message
            .contains("injected")
    );
    assert!(
        t.call_ctx(&t.root(ACCT), "CreateAccessKey", &[("UserName", "u")])
            .await
            .is_err()
    );
    assert!(
        t.call_ctx(
            &t.root(ACCT),
            "UpdateAccessKey",
            &[("UserName", "u"), ("AccessKeyId", &akid), ("Status", "Inactive")]
        )
        .await
        .is_err()
    );
    storage.set_failing(false);

    assert_code(
        &t.err("GetUser", &[("UserName", "v")]).await,
        AwsErrorCode::NoSuchEntity,
        404,
    );
    assert!(all(&t.ok("GetGroup", &[("GroupName", "g")]).await, "UserName").is_empty());
    assert!(all(&t.ok("ListGroupsForUser", &[("UserName", "u")]).await, "GroupName").is_empty());
    assert_eq!(
        all(&t.ok("ListAccessKeys", &[("UserName", "u")]).await, "AccessKeyId"),
        vec![akid.clone()]
    );
    valid(t.resolve(&akid, None).await);
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_errors() {
    let t = T::new();
    let (akid, secret) = t.user_with_key("u").await;
    let key = t.resolve(&akid, None).await;
    let dbg = format!("{key:?}");
    assert!(dbg.contains(&akid) && !dbg.contains(&secret));
    let arn = t.role("r", &[]).await;
    let out = t
        .ok("AssumeRole", &[("RoleArn", &arn), ("RoleSessionName", "s1")])
        .await;
    let (sakid, ssecret, token) = (
        text(&out, "AccessKeyId"),
        text(&out, "SecretAccessKey"),
        text(&out, "SessionToken"),
    );
    let dbg = format!("{:?}", t.resolve(&sakid, Some(&token)).await);
    assert!(!dbg.contains(&ssecret) && !dbg.contains(&token));
    // The stored session has the token's hash only.
    let stored = t
        .engine
        .storage
        .get(&format!("sessions/{sakid}"))
        .await
        .unwrap()
        .unwrap();
    let stored = String::from_utf8(stored.expose().to_vec()).unwrap();
    assert!(!stored.contains(&token));
    assert!(stored.contains(&coffer_crypto::hash::sha256_hex(token.as_bytes())));
    let rec: crate::model::SessionRecord = serde_json::from_str(&stored).unwrap();
    assert!(!format!("{rec:?}").contains(&rec.secret));
}
