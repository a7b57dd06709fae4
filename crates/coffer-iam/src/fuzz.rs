//! Fuzz targets of the IAM/STS engine: Query-protocol bodies (form-encoded, decoded as the
//! front end decodes them) run as actions, and the engine's stored JSON records read back.
//! See `docs/reliability.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use coffer_fuzz::{Fuzz, record_seeds, runtime, with_stored_record};
use coffer_storage::memory::MemoryStorage;
use time::OffsetDateTime;

use crate::{IamEngine, Principal, PrincipalKind};
use coffer_engines::RequestContext;

const ACCOUNT: &str = "111122223333";

fn ctx() -> RequestContext {
    RequestContext {
        account_id: ACCOUNT.into(),
        region: "us-east-1".into(),
        principal_arn: format!("arn:aws:iam::{ACCOUNT}:root"),
        now: OffsetDateTime::from_unix_timestamp(1_795_363_104).unwrap(),
    }
}

/// Real Query bodies, as the aws CLI and boto3 send them.
fn bodies() -> Vec<(&'static str, String)> {
    let trust = form_urlencoded::byte_serialize(
        br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#,
    )
    .collect::<String>();
    let policy = form_urlencoded::byte_serialize(
        br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#,
    )
    .collect::<String>();
    let v = "Version=2010-05-08";
    vec![
        ("create-user", format!("Action=CreateUser&UserName=alice&Path=%2Fteam%2F&Tags.member.1.Key=env&Tags.member.1.Value=prod&{v}")),
        ("create-access-key", format!("Action=CreateAccessKey&UserName=alice&{v}")),
        ("create-role", format!("Action=CreateRole&RoleName=app&AssumeRolePolicyDocument={trust}&MaxSessionDuration=3600&{v}")),
        ("put-user-policy", format!("Action=PutUserPolicy&UserName=alice&PolicyName=read&PolicyDocument={policy}&{v}")),
        ("create-policy", format!("Action=CreatePolicy&PolicyName=managed&PolicyDocument={policy}&Description=d&{v}")),
        ("attach-user-policy", format!("Action=AttachUserPolicy&UserName=alice&PolicyArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Apolicy%2Fmanaged&{v}")),
        ("create-policy-version", format!("Action=CreatePolicyVersion&PolicyArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Apolicy%2Fmanaged&PolicyDocument={policy}&SetAsDefault=true&{v}")),
        ("create-group", format!("Action=CreateGroup&GroupName=devs&{v}")),
        ("add-user-to-group", format!("Action=AddUserToGroup&GroupName=devs&UserName=alice&{v}")),
        ("list-users", format!("Action=ListUsers&MaxItems=1&PathPrefix=%2F&{v}")),
        ("list-users-marker", format!("Action=ListUsers&Marker=YWxpY2U%3D&{v}")),
        ("tag-role", format!("Action=TagRole&RoleName=app&Tags.member.1.Key=a&Tags.member.1.Value=b&Tags.member.2.Key=c&Tags.member.2.Value=&{v}")),
        ("untag-role", format!("Action=UntagRole&RoleName=app&TagKeys.member.1=a&{v}")),
        ("list-access-keys", format!("Action=ListAccessKeys&UserName=alice&{v}")),
        ("get-account-authorization-details", format!("Action=GetAccountAuthorizationDetails&Filter.member.1=User&{v}")),
        ("assume-role", "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fapp&RoleSessionName=s1&DurationSeconds=900&Tags.member.1.Key=k&Tags.member.1.Value=v&Version=2011-06-15".to_owned()),
        ("get-caller-identity", "Action=GetCallerIdentity&Version=2011-06-15".to_owned()),
        ("detach-user-policy", format!("Action=DetachUserPolicy&UserName=alice&PolicyArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Apolicy%2Fmanaged&{v}")),
        ("delete-user", format!("Action=DeleteUser&UserName=nobody&{v}")),
    ]
}

fn call(rt: &tokio::runtime::Runtime, engine: &IamEngine, body: &[u8]) {
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let action = params
        .iter()
        .rev()
        .find_map(|(k, v)| (k == "Action").then_some(v.as_str()))
        .unwrap_or("");
    let service = if matches!(action, "AssumeRole" | "GetCallerIdentity") {
        "sts"
    } else {
        "iam"
    };
    let _ = rt.block_on(engine.handle(&ctx(), service, action, &params));
}

/// Property: no Query body makes an IAM or STS action panic or hang.
#[test]
fn fuzz_query_params() {
    let rt = runtime();
    let engine = IamEngine::new(Arc::new(MemoryStorage::new()));
    let seeds = bodies();
    for (_, body) in &seeds {
        call(&rt, &engine, body.as_bytes());
    }
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "query_params")
        .seeds(seeds)
        .dictionary(&[
            "&",
            "=",
            "Action=",
            "UserName=",
            "RoleName=",
            "PolicyArn=",
            ".member.1",
            ".member.0",
            ".member.99999999999999999999",
            "MaxItems=",
            "Marker=",
            "Path=",
            "PathPrefix=",
            "DurationSeconds=",
            "%2F",
            "%00",
            "+",
            "CreateUser",
            "DeleteRole",
            "ListRoles",
            "GetUser",
            "UpdateAccessKey",
            "Status=Inactive",
        ]);
    fuzz.run(|input| call(&rt, &engine, input));
}

/// Property: a stored record changed on disk (any key the engine wrote: users, roles,
/// groups, policies, access keys, sessions, accounts) is read back by every read path
/// (actions, key resolution, the evaluator's policy list) without a panic or a hang.
/// An input is `<storage key>\n<record bytes>`.
#[test]
fn fuzz_iam_records() {
    let rt = runtime();
    let storage = Arc::new(MemoryStorage::new());
    let engine = IamEngine::new(storage.clone());
    for (_, body) in bodies() {
        call(&rt, &engine, body.as_bytes());
    }
    let seeds = record_seeds(&rt, storage.as_ref());
    let akids: Vec<String> = seeds
        .iter()
        .filter_map(|(_, input)| input.split(|&b| b == b'\n').next())
        .filter_map(|k| std::str::from_utf8(k).ok()?.rsplit('/').next())
        .filter(|k| k.starts_with("AKIA") || k.starts_with("ASIA"))
        .map(str::to_owned)
        .collect();
    let user = Principal {
        account_id: ACCOUNT.into(),
        arn: format!("arn:aws:iam::{ACCOUNT}:user/team/alice"),
        kind: PrincipalKind::User {
            name: "alice".into(),
            id: "AIDAALICE".into(),
        },
        tags: Vec::new(),
    };
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "iam_records")
        .seeds(seeds)
        .dictionary(&["{", "}", "\"", "null", "[]", ":"]);
    let reads = [
        "Action=GetUser&UserName=alice",
        "Action=ListUsers",
        "Action=GetRole&RoleName=app",
        "Action=ListRoles",
        "Action=ListAccessKeys&UserName=alice",
        "Action=GetUserPolicy&UserName=alice&PolicyName=read",
        "Action=GetPolicy&PolicyArn=arn%3Aaws%3Aiam%3A%3A111122223333%3Apolicy%2Fmanaged",
        "Action=ListAttachedUserPolicies&UserName=alice",
        "Action=GetGroup&GroupName=devs",
        "Action=GetAccountAuthorizationDetails",
    ];
    fuzz.run(|input| {
        with_stored_record(&rt, storage.as_ref(), input, || {
            engine.key_cache.write().clear();
            for body in reads {
                call(&rt, &engine, body.as_bytes());
            }
            rt.block_on(async {
                for akid in &akids {
                    let _ = engine.resolve_access_key(akid, None, ctx().now).await;
                }
                let _ = engine.principal_policies(&user).await;
            });
        });
        engine.key_cache.write().clear();
    });
}
