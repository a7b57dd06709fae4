//! The template skeleton against the real engine, where no database is reached: the
//! DescribeSecret checks, createSecret, finishSecret, and refusals before any login.

use coffer_rotators::{BuiltIn, SecretsApi, Step, StepError, StepEvent};
use serde_json::json;

use crate::common::{Sm, s, unique};

/// A secret whose host does not exist: any step that logs in would fail, so a step that
/// succeeds here did not touch a database.
fn secret(engine: &str, username: &str) -> serde_json::Value {
    json!({"engine": engine, "host": "db.invalid", "port": 1, "username": username, "password": "p0", "dbname": "app",
           "masterarn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf", "note": "kept"})
}

#[tokio::test]
async fn create_secret_puts_a_pending_version_as_the_templates_do() {
    let sm = Sm::new();
    for (function, engine, user, pending_user) in [
        (BuiltIn::PostgresSingleUser, "postgres", "app", "app"),
        (BuiltIn::MysqlSingleUser, "mariadb", "app", "app"),
        (
            BuiltIn::PostgresAlternatingUsers,
            "aurora-postgresql",
            "app",
            "app_clone",
        ),
        (BuiltIn::MysqlAlternatingUsers, "mysql", "app_clone", "app"),
    ] {
        let id = sm.create(&unique("s"), &secret(engine, user)).await;
        let r = sm.rotate(&id, function).await;
        function.run_step(&sm, &r.event(Step::CreateSecret)).await.unwrap();
        let pending = sm.value(&id, "AWSPENDING").await;
        assert_eq!(
            sm.version_with(&id, "AWSPENDING").await.as_deref(),
            Some(r.token.as_str())
        );
        assert_eq!(s(&pending, "username"), pending_user, "{function:?}");
        let password = s(&pending, "password");
        assert_eq!(password.chars().count(), 32);
        assert!(!password.contains(|c| ":/@\"'\\".contains(c)), "excluded characters");
        // Everything else is copied from the current version, unknown keys included.
        for key in ["engine", "host", "port", "dbname", "masterarn", "note"] {
            assert_eq!(pending[key], secret(engine, user)[key], "{key}");
        }
        // AWSCURRENT is untouched, and a second createSecret keeps the pending value.
        assert_eq!(sm.value(&id, "AWSCURRENT").await, secret(engine, user));
        function.run_step(&sm, &r.event(Step::CreateSecret)).await.unwrap();
        assert_eq!(s(&sm.value(&id, "AWSPENDING").await, "password"), password);
    }
}

#[tokio::test]
async fn finish_secret_moves_awscurrent_and_then_every_step_is_a_no_op() {
    let sm = Sm::new();
    let f = BuiltIn::PostgresSingleUser;
    let id = sm.create(&unique("s"), &secret("postgres", "app")).await;
    let first = sm.version_with(&id, "AWSCURRENT").await.unwrap();
    let r = sm.rotate(&id, f).await;
    f.run_step(&sm, &r.event(Step::CreateSecret)).await.unwrap();
    let pending = sm.value(&id, "AWSPENDING").await;
    f.run_step(&sm, &r.event(Step::FinishSecret)).await.unwrap();
    assert_eq!(sm.version_with(&id, "AWSCURRENT").await, Some(r.token.clone()));
    assert_eq!(sm.version_with(&id, "AWSPREVIOUS").await, Some(first));
    assert_eq!(sm.value(&id, "AWSCURRENT").await, pending);
    // The token is AWSCURRENT now: the handler returns before any step, even setSecret
    // against the unreachable host.
    for step in Step::ALL {
        f.run_step(&sm, &r.event(step)).await.unwrap();
    }
}

fn invalid(r: Result<(), StepError>) -> String {
    match r {
        Err(StepError::Invalid(m)) => m,
        other => panic!("expected StepError::Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn the_handler_checks_of_describe_secret() {
    let sm = Sm::new();
    let f = BuiltIn::MysqlSingleUser;
    let id = sm.create(&unique("s"), &secret("mysql", "app")).await;
    let current = sm.version_with(&id, "AWSCURRENT").await.unwrap();
    let r = sm.rotate(&id, f).await;

    // A token that is no version of the secret.
    let e = StepEvent::new(Step::CreateSecret, &id, "99999999-9999-4999-8999-999999999999", "");
    let m = invalid(f.run_step(&sm, &e).await);
    assert!(
        m.starts_with("createSecret: secret version 99999999-9999-4999-8999-999999999999 has no stage for rotation"),
        "{m}"
    );

    // A version that is neither AWSCURRENT nor AWSPENDING: the old current after a manual update.
    sm.ok(
        "PutSecretValue",
        json!({"SecretId": id, "SecretString": secret("mysql", "app").to_string()}),
    )
    .await;
    let e = StepEvent::new(Step::SetSecret, &id, &current, "");
    let m = invalid(f.run_step(&sm, &e).await);
    assert!(m.contains("not set as AWSPENDING"), "{m}");

    // An unknown step.
    let mut e = r.event(Step::TestSecret);
    e.step = "rollbackSecret".into();
    let m = invalid(f.run_step(&sm, &e).await);
    assert!(m.starts_with("invalid step parameter"), "{m}");

    // Rotation turned off.
    sm.ok("CancelRotateSecret", json!({"SecretId": id})).await;
    let m = invalid(f.run_step(&sm, &r.event(Step::CreateSecret)).await);
    assert!(m.contains("is not enabled for rotation"), "{m}");

    // No such secret: the DescribeSecret error, with its code.
    let e = StepEvent::new(Step::CreateSecret, "no-such-secret", &r.token, "");
    match f.run_step(&sm, &e).await {
        Err(StepError::Api { code, message }) => {
            assert_eq!(code, "ResourceNotFoundException");
            assert!(
                message.starts_with("createSecret: DescribeSecret(no-such-secret) failed"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn secrets_unfit_for_the_function_fail_without_a_login() {
    let sm = Sm::new();
    // The wrong engine for the function.
    let id = sm.create(&unique("s"), &secret("postgres", "app")).await;
    let r = sm.rotate(&id, BuiltIn::MysqlSingleUser).await;
    let m = invalid(
        BuiltIn::MysqlSingleUser
            .run_step(&sm, &r.event(Step::CreateSecret))
            .await,
    );
    assert!(
        m.contains("AWSCURRENT version of secret") && m.contains("engine in the secret JSON must be"),
        "{m}"
    );

    // TLS required: refused before connecting (Coffer's rotation functions have no TLS).
    let mut v = secret("postgres", "app");
    v["ssl"] = json!(true);
    let id = sm.create(&unique("s"), &v).await;
    let f = BuiltIn::PostgresSingleUser;
    let r = sm.rotate(&id, f).await;
    f.run_step(&sm, &r.event(Step::CreateSecret)).await.unwrap();
    let m = invalid(f.run_step(&sm, &r.event(Step::SetSecret)).await);
    assert!(m.contains("asks for TLS"), "{m}");

    // A user whose clone's name would be too long: createSecret puts nothing.
    let v = secret("postgres", "a".repeat(58).as_str());
    let id = sm.create(&unique("s"), &v).await;
    let f = BuiltIn::PostgresAlternatingUsers;
    let r = sm.rotate(&id, f).await;
    let m = invalid(f.run_step(&sm, &r.event(Step::CreateSecret)).await);
    assert!(m.contains("would exceed 63 characters"), "{m}");
    let pending = sm
        .call("GetSecretValue", json!({"SecretId": id, "VersionStage": "AWSPENDING"}))
        .await;
    assert_eq!(
        pending.unwrap_err().code,
        "ResourceNotFoundException",
        "the placeholder stays empty"
    );
}

/// A server that accepts connections and never answers: setSecret gives up after the
/// 5-second login timeout, once, not once per credential.
#[tokio::test]
async fn a_database_that_never_answers_fails_set_secret_after_the_timeout() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let sm = Sm::new();
    let run = |function: BuiltIn, engine: &'static str| {
        let sm = &sm;
        async move {
            let v = json!({"engine": engine, "host": "127.0.0.1", "port": port, "username": "app", "password": "p0"});
            let id = sm.create(&unique("s"), &v).await;
            let r = sm.rotate(&id, function).await;
            function.run_step(sm, &r.event(Step::CreateSecret)).await.unwrap();
            let started = std::time::Instant::now();
            let e = function.run_step(sm, &r.event(Step::SetSecret)).await.unwrap_err();
            let took = started.elapsed();
            assert!(
                took >= std::time::Duration::from_millis(4500) && took < std::time::Duration::from_secs(9),
                "{function:?} took {took:?}"
            );
            match e {
                StepError::Connect(m) => {
                    assert_eq!(
                        m,
                        format!("setSecret: could not reach 127.0.0.1:{port}: no answer within 5 s")
                    )
                }
                other => panic!("{other:?}"),
            }
            assert_eq!(sm.value(&id, "AWSCURRENT").await, v);
        }
    };
    tokio::join!(
        run(BuiltIn::PostgresSingleUser, "postgres"),
        run(BuiltIn::MysqlSingleUser, "mysql")
    );
}
