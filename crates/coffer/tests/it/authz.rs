//! Authorization end to end against the real binary: IAM users and roles made through the
//! Query API, identity policies, explicit denies, resource policies, the `kms:Decrypt` that
//! reading a secret under a customer key needs, BlockPublicPolicy, and expired sessions.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use coffer_testkit::DevCredentials;
use serde_json::{Value, json};

use crate::support::{Raw, start_dev};

/// Credentials to sign with (a session token for assumed roles).
pub(crate) struct Creds {
    pub(crate) akid: String,
    pub(crate) secret: String,
    pub(crate) token: Option<String>,
}

pub(crate) fn root(c: &DevCredentials) -> Creds {
    Creds {
        akid: c.access_key_id.clone(),
        secret: c.secret_access_key.clone(),
        token: None,
    }
}

/// A signed `POST /`: JSON with `X-Amz-Target` when `target` is given, else a form (Query).
pub(crate) async fn post(endpoint: &str, creds: &Creds, service: &str, target: Option<&str>, body: &str) -> Raw {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let identity = Credentials::new(&creds.akid, &creds.secret, creds.token.clone(), None, "t").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let content_type = if target.is_some() {
        "application/x-amz-json-1.1"
    } else {
        "application/x-www-form-urlencoded; charset=utf-8"
    };
    let mut headers = vec![("content-type", content_type), ("host", host)];
    if let Some(t) = target {
        headers.push(("x-amz-target", t));
    }
    let signable = SignableRequest::new(
        "POST",
        format!("{endpoint}/"),
        headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _sig) = sign(signable, &params).unwrap().into_parts();
    let mut req = reqwest::Client::new()
        .post(format!("{endpoint}/"))
        .header("content-type", content_type)
        .body(body.to_string());
    if let Some(t) = target {
        req = req.header("x-amz-target", t);
    }
    for (k, v) in instructions.headers() {
        req = req.header(k, v);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Raw { status, body, text }
}

pub(crate) async fn sm(c: &DevCredentials, creds: &Creds, op: &str, body: Value) -> Raw {
    post(
        &c.endpoint,
        creds,
        "secretsmanager",
        Some(&format!("secretsmanager.{op}")),
        &body.to_string(),
    )
    .await
}

pub(crate) async fn kms(c: &DevCredentials, creds: &Creds, op: &str, body: Value) -> Raw {
    post(
        &c.endpoint,
        creds,
        "kms",
        Some(&format!("TrentService.{op}")),
        &body.to_string(),
    )
    .await
}

/// An IAM or STS action (Query protocol).
pub(crate) async fn query(c: &DevCredentials, creds: &Creds, service: &str, params: &[(&str, &str)]) -> Raw {
    let version = if service == "sts" { "2011-06-15" } else { "2010-05-08" };
    let form: Vec<String> = params
        .iter()
        .chain(std::iter::once(&("Version", version)))
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    post(&c.endpoint, creds, service, None, &form.join("&")).await
}

/// Form (percent) encoding of one key or value.
pub(crate) fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn xml_tag(text: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = text.find(&open).unwrap_or_else(|| panic!("no <{tag}> in {text}")) + open.len();
    let end = text[start..].find(&format!("</{tag}>")).unwrap() + start;
    text[start..end].to_string()
}

/// Creates user `name` with inline policy `policy` and returns its access key.
pub(crate) async fn user_with_policy(c: &DevCredentials, name: &str, policy: Value) -> Creds {
    user_with_policy_as(c, &root(c), name, policy).await
}

/// [`user_with_policy`] in the account of `admin` (a root key).
pub(crate) async fn user_with_policy_as(c: &DevCredentials, r: &Creds, name: &str, policy: Value) -> Creds {
    let out = query(c, r, "iam", &[("Action", "CreateUser"), ("UserName", name)]).await;
    assert_eq!(out.status, 200, "{}", out.text);
    let doc = policy.to_string();
    let out = query(
        c,
        r,
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", name),
            ("PolicyName", "p"),
            ("PolicyDocument", &doc),
        ],
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text);
    let out = query(c, r, "iam", &[("Action", "CreateAccessKey"), ("UserName", name)]).await;
    assert_eq!(out.status, 200, "{}", out.text);
    Creds {
        akid: xml_tag(&out.text, "AccessKeyId"),
        secret: xml_tag(&out.text, "SecretAccessKey"),
        token: None,
    }
}

/// A second account, made with the operator CLI (root token): its id and root key, as JSON.
pub(crate) fn create_account(c: &DevCredentials) -> Value {
    let out = std::process::Command::new(crate::support::bin())
        .args([
            "operator",
            "account",
            "create",
            "--json",
            "--address",
            &c.endpoint,
            "--token",
            &c.root_token,
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

pub(crate) async fn create_secret(c: &DevCredentials, name: &str, extra: Value) -> String {
    let mut body = json!({"Name": name, "SecretString": format!("value-of-{name}")});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let out = sm(c, &root(c), "CreateSecret", body).await;
    assert_eq!(out.status, 200, "{}", out.text);
    out.body["ARN"].as_str().unwrap().to_string()
}

pub(crate) fn allow(action: &str, resource: &str) -> Value {
    json!({"Effect": "Allow", "Action": action, "Resource": resource})
}

pub(crate) fn policy(statements: Vec<Value>) -> Value {
    json!({"Version": "2012-10-17", "Statement": statements})
}

pub(crate) fn assert_denied(out: &Raw, action: &str) {
    assert_eq!(out.status, 400, "{}", out.text);
    assert_eq!(out.body["__type"], "AccessDeniedException", "{}", out.text);
    let msg = out.body["message"]
        .as_str()
        .or(out.body["Message"].as_str())
        .unwrap_or("");
    assert!(
        msg.contains(&format!("is not authorized to perform: {action} on resource: ")),
        "{msg}"
    );
}

#[tokio::test]
async fn identity_policy_allows_its_resources_and_denies_the_rest() {
    let (_p, c) = start_dev(&[]);
    create_secret(&c, "ci/docker-password", json!({})).await;
    create_secret(&c, "prod/db-password", json!({})).await;
    let acct = &c.account_id;
    let user = user_with_policy(
        &c,
        "ci-pipeline",
        policy(vec![allow(
            "secretsmanager:GetSecretValue",
            &format!("arn:aws:secretsmanager:*:{acct}:secret:ci/*"),
        )]),
    )
    .await;

    let ok = sm(&c, &user, "GetSecretValue", json!({"SecretId": "ci/docker-password"})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert_eq!(ok.body["SecretString"], "value-of-ci/docker-password");

    let denied = sm(&c, &user, "GetSecretValue", json!({"SecretId": "prod/db-password"})).await;
    assert_denied(&denied, "secretsmanager:GetSecretValue");
    // A denial reads the same whether or not the secret exists: no hint about existence.
    let missing = sm(
        &c,
        &user,
        "GetSecretValue",
        json!({"SecretId": "prod/no-such-password"}),
    )
    .await;
    assert_denied(&missing, "secretsmanager:GetSecretValue");
    assert_eq!(
        denied.text.replace("prod/db-password", "NAME"),
        missing.text.replace("prod/no-such-password", "NAME"),
        "the denial of an existing secret differs from a missing one's"
    );
    assert!(
        denied
            .text
            .contains(&format!("User: arn:aws:iam::{acct}:user/ci-pipeline"))
    );
    assert!(
        denied
            .text
            .contains("because no identity-based policy allows the secretsmanager:GetSecretValue action")
    );
    assert!(!denied.text.contains("value-of"));

    // A missing secret is denied the same way: existence is not revealed.
    let missing = sm(&c, &user, "GetSecretValue", json!({"SecretId": "prod/nothing-here"})).await;
    assert_denied(&missing, "secretsmanager:GetSecretValue");
    // Inside its prefix a missing secret is allowed to be looked for, and is not found.
    let missing = sm(&c, &user, "GetSecretValue", json!({"SecretId": "ci/nothing-here"})).await;
    assert_eq!(missing.body["__type"], "ResourceNotFoundException", "{}", missing.text);

    // Other actions and services are denied.
    let out = sm(&c, &user, "DescribeSecret", json!({"SecretId": "ci/docker-password"})).await;
    assert_denied(&out, "secretsmanager:DescribeSecret");
    let out = post(
        &c.endpoint,
        &user,
        "ssm",
        Some("AmazonSSM.PutParameter"),
        &json!({"Name": "/x", "Value": "v", "Type": "String"}).to_string(),
    )
    .await;
    assert_denied(&out, "ssm:PutParameter");
    // IAM denials are Query-protocol AccessDenied, 403.
    let out = query(&c, &user, "iam", &[("Action", "ListUsers")]).await;
    assert_eq!(out.status, 403, "{}", out.text);
    assert_eq!(xml_tag(&out.text, "Code"), "AccessDenied");
    // GetCallerIdentity needs no permission.
    let out = query(&c, &user, "sts", &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(out.status, 200, "{}", out.text);
    assert_eq!(
        xml_tag(&out.text, "Arn"),
        format!("arn:aws:iam::{acct}:user/ci-pipeline")
    );

    // The root is unaffected.
    let out = sm(&c, &root(&c), "GetSecretValue", json!({"SecretId": "prod/db-password"})).await;
    assert_eq!(out.status, 200, "{}", out.text);
}

#[tokio::test]
async fn explicit_deny_beats_allow() {
    let (_p, c) = start_dev(&[]);
    create_secret(&c, "app/a", json!({})).await;
    create_secret(&c, "app/b", json!({})).await;
    let user = user_with_policy(
        &c,
        "dev",
        policy(vec![
            allow("secretsmanager:*", "*"),
            json!({"Effect": "Deny", "Action": "secretsmanager:GetSecretValue",
                   "Resource": "arn:aws:secretsmanager:*:*:secret:app/b-*"}),
        ]),
    )
    .await;
    let ok = sm(&c, &user, "GetSecretValue", json!({"SecretId": "app/a"})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let out = sm(&c, &user, "GetSecretValue", json!({"SecretId": "app/b"})).await;
    assert_denied(&out, "secretsmanager:GetSecretValue");
    assert!(
        out.text.contains("with an explicit deny in an identity-based policy"),
        "{}",
        out.text
    );
    // Everything else the Allow covers still works.
    let out = sm(&c, &user, "DescribeSecret", json!({"SecretId": "app/b"})).await;
    assert_eq!(out.status, 200, "{}", out.text);
}

#[tokio::test]
async fn resource_policy_grants_and_block_public_policy() {
    let (_p, c) = start_dev(&[]);
    let acct = &c.account_id;
    create_secret(&c, "shared/token", json!({})).await;
    create_secret(&c, "private/token", json!({})).await;
    // A user with no identity policy at all.
    let user = user_with_policy(&c, "reader", policy(vec![allow("sts:GetCallerIdentity", "*")])).await;
    let grant = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{acct}:user/reader")},
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*"}]});
    let out = sm(
        &c,
        &root(&c),
        "PutResourcePolicy",
        json!({"SecretId": "shared/token", "ResourcePolicy": grant.to_string()}),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text);
    let ok = sm(&c, &user, "GetSecretValue", json!({"SecretId": "shared/token"})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let out = sm(&c, &user, "GetSecretValue", json!({"SecretId": "private/token"})).await;
    assert_denied(&out, "secretsmanager:GetSecretValue");

    // A resource-policy Deny stops even the root.
    let deny = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Deny", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]});
    let out = sm(
        &c,
        &root(&c),
        "PutResourcePolicy",
        json!({"SecretId": "private/token", "ResourcePolicy": deny.to_string()}),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text);
    let out = sm(&c, &root(&c), "GetSecretValue", json!({"SecretId": "private/token"})).await;
    assert_denied(&out, "secretsmanager:GetSecretValue");
    assert!(
        out.text.contains("explicit deny in a resource-based policy"),
        "{}",
        out.text
    );

    // BlockPublicPolicy refuses a policy open to everyone.
    let public = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": "*", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]});
    let out = sm(
        &c,
        &root(&c),
        "PutResourcePolicy",
        json!({"SecretId": "shared/token", "ResourcePolicy": public.to_string(), "BlockPublicPolicy": true}),
    )
    .await;
    assert_eq!(out.body["__type"], "PublicPolicyException", "{}", out.text);
}

#[tokio::test]
async fn reading_a_secret_under_a_customer_key_needs_kms_decrypt() {
    let (_p, c) = start_dev(&[]);
    let acct = &c.account_id;
    let key = kms(&c, &root(&c), "CreateKey", json!({})).await;
    assert_eq!(key.status, 200, "{}", key.text);
    let key_arn = key.body["KeyMetadata"]["Arn"].as_str().unwrap().to_string();
    create_secret(&c, "cmk/secret", json!({"KmsKeyId": key_arn})).await;
    let secret_res = format!("arn:aws:secretsmanager:*:{acct}:secret:cmk/*");

    let without = user_with_policy(
        &c,
        "no-decrypt",
        policy(vec![allow("secretsmanager:GetSecretValue", &secret_res)]),
    )
    .await;
    let out = sm(&c, &without, "GetSecretValue", json!({"SecretId": "cmk/secret"})).await;
    assert_denied(&out, "kms:Decrypt");
    assert!(out.text.contains(&key_arn), "{}", out.text);

    let with = user_with_policy(
        &c,
        "with-decrypt",
        policy(vec![
            allow("secretsmanager:GetSecretValue", &secret_res),
            json!({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": key_arn,
                   "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}}),
        ]),
    )
    .await;
    let out = sm(&c, &with, "GetSecretValue", json!({"SecretId": "cmk/secret"})).await;
    assert_eq!(out.status, 200, "{}", out.text);
    // The ViaService condition keeps direct use of the key closed.
    let out = kms(&c, &with, "DescribeKey", json!({"KeyId": key_arn})).await;
    assert_denied(&out, "kms:DescribeKey");
}

#[tokio::test]
async fn assumed_role_sessions_have_the_role_permissions_and_expire() {
    let (_p, c) = start_dev(&["--dev-allow-reset"]);
    let acct = &c.account_id;
    create_secret(&c, "deploy/key", json!({})).await;
    create_secret(&c, "other/key", json!({})).await;
    let r = root(&c);
    let trust = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{acct}:root")}, "Action": "sts:AssumeRole"}]})
    .to_string();
    let out = query(
        &c,
        &r,
        "iam",
        &[
            ("Action", "CreateRole"),
            ("RoleName", "deployer"),
            ("AssumeRolePolicyDocument", &trust),
        ],
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text);
    let role_policy = policy(vec![allow(
        "secretsmanager:GetSecretValue",
        &format!("arn:aws:secretsmanager:*:{acct}:secret:deploy/*"),
    )])
    .to_string();
    let out = query(
        &c,
        &r,
        "iam",
        &[
            ("Action", "PutRolePolicy"),
            ("RoleName", "deployer"),
            ("PolicyName", "p"),
            ("PolicyDocument", &role_policy),
        ],
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text);
    // A user allowed to assume it (the trust policy delegates to the account).
    let role_arn = format!("arn:aws:iam::{acct}:role/deployer");
    let user = user_with_policy(&c, "ci", policy(vec![allow("sts:AssumeRole", &role_arn)])).await;
    let nobody = user_with_policy(&c, "nobody", policy(vec![allow("sts:GetCallerIdentity", "*")])).await;
    let out = query(
        &c,
        &nobody,
        "sts",
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", &role_arn),
            ("RoleSessionName", "s1"),
        ],
    )
    .await;
    assert_eq!(out.status, 403, "{}", out.text);

    let out = query(
        &c,
        &user,
        "sts",
        &[
            ("Action", "AssumeRole"),
            ("RoleArn", &role_arn),
            ("RoleSessionName", "s1"),
            ("DurationSeconds", "900"),
        ],
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text);
    let session = Creds {
        akid: xml_tag(&out.text, "AccessKeyId"),
        secret: xml_tag(&out.text, "SecretAccessKey"),
        token: Some(xml_tag(&out.text, "SessionToken")),
    };
    let ok = sm(&c, &session, "GetSecretValue", json!({"SecretId": "deploy/key"})).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    let out = sm(&c, &session, "GetSecretValue", json!({"SecretId": "other/key"})).await;
    assert_denied(&out, "secretsmanager:GetSecretValue");
    assert!(
        out.text
            .contains(&format!("arn:aws:sts::{acct}:assumed-role/deployer/s1"))
    );
    // Without its token the session key is not recognized.
    let no_token = Creds {
        token: None,
        ..Creds {
            akid: session.akid.clone(),
            secret: session.secret.clone(),
            token: None,
        }
    };
    let out = sm(&c, &no_token, "GetSecretValue", json!({"SecretId": "deploy/key"})).await;
    assert_eq!(out.body["__type"], "UnrecognizedClientException", "{}", out.text);

    // Business time moves past the expiry: the session is refused as expired.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/sys/coffer/clock", c.endpoint))
        .header("X-Vault-Token", &c.root_token)
        .body(r#"{"advance_seconds": 901}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let out = sm(&c, &session, "GetSecretValue", json!({"SecretId": "deploy/key"})).await;
    assert_eq!(out.status, 400, "{}", out.text);
    assert_eq!(out.body["__type"], "ExpiredTokenException", "{}", out.text);
    let out = query(&c, &session, "sts", &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(xml_tag(&out.text, "Code"), "ExpiredToken", "{}", out.text);
}

#[tokio::test]
async fn two_accounts_are_isolated_unless_a_resource_policy_grants() {
    let (_p, c) = start_dev(&[]);
    let arn = create_secret(&c, "team-a/secret", json!({})).await;
    let created = create_account(&c);
    let b_account = created["account_id"].as_str().unwrap().to_string();
    assert_ne!(b_account, c.account_id);
    let b = Creds {
        akid: created["access_key_id"].as_str().unwrap().to_string(),
        secret: created["secret_access_key"].as_str().unwrap().to_string(),
        token: None,
    };
    let who = query(&c, &b, "sts", &[("Action", "GetCallerIdentity")]).await;
    assert_eq!(xml_tag(&who.text, "Arn"), format!("arn:aws:iam::{b_account}:root"));
    // Without the token the endpoint refuses.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/sys/coffer/accounts", c.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    // B sees nothing of A's.
    let list = sm(&c, &b, "ListSecrets", json!({})).await;
    assert_eq!(
        list.body["SecretList"].as_array().map(Vec::len),
        Some(0),
        "{}",
        list.text
    );
    let out = sm(&c, &b, "GetSecretValue", json!({"SecretId": arn})).await;
    assert_denied(&out, "secretsmanager:GetSecretValue");
    let out = sm(&c, &b, "GetSecretValue", json!({"SecretId": "team-a/secret"})).await;
    assert_eq!(out.body["__type"], "ResourceNotFoundException", "{}", out.text);

    // A grants B's account read access through the secret's resource policy.
    let grant = json!({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{b_account}:root")},
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*"}]});
    let out = sm(
        &c,
        &root(&c),
        "PutResourcePolicy",
        json!({"SecretId": "team-a/secret", "ResourcePolicy": grant.to_string()}),
    )
    .await;
    assert_eq!(out.status, 200, "{}", out.text);
    let out = sm(&c, &b, "GetSecretValue", json!({"SecretId": arn})).await;
    assert_eq!(out.status, 200, "{}", out.text);
    assert_eq!(out.body["SecretString"], "value-of-team-a/secret");
    // Only what was granted.
    let out = sm(&c, &b, "DescribeSecret", json!({"SecretId": arn})).await;
    assert_denied(&out, "secretsmanager:DescribeSecret");
    let out = sm(&c, &b, "PutSecretValue", json!({"SecretId": arn, "SecretString": "x"})).await;
    assert_denied(&out, "secretsmanager:PutSecretValue");
}
