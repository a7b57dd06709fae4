//! The PostgreSQL functions against private clusters with `scram-sha-256` logins, so that a
//! password the rotation replaced is seen refused.

use std::time::{Duration, Instant};

use coffer_rotators::{BuiltIn, Step, StepError};
use serde_json::{Value, json};

use crate::common::{PgCluster, Sm, s, sqlstate, unique};

const SINGLE: BuiltIn = BuiltIn::PostgresSingleUser;
const ALTERNATING: BuiltIn = BuiltIn::PostgresAlternatingUsers;

/// `"name"` for SQL typed in these tests.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Creates a login role with `password` and a database it owns.
async fn create_user(pg: &PgCluster, user: &str, password: &str, db: &str) {
    let su = pg.superuser().await;
    // Separate statements: a multi-statement query is one transaction, and CREATE DATABASE
    // refuses to run inside one.
    su.batch_execute(&format!(
        "CREATE ROLE {} LOGIN PASSWORD {}",
        ident(user),
        literal(password)
    ))
    .await
    .unwrap();
    su.batch_execute(&format!("CREATE DATABASE {} OWNER {}", ident(db), ident(user)))
        .await
        .unwrap();
}

fn secret(pg: &PgCluster, user: &str, password: &str, db: &str) -> Value {
    json!({"engine": "postgres", "host": "127.0.0.1", "port": pg.port, "username": user, "password": password, "dbname": db})
}

async fn logs_in(pg: &PgCluster, v: &Value) -> bool {
    let login = pg.login(&s(v, "username"), &s(v, "password"), &s(v, "dbname")).await;
    match login {
        Ok(c) => c.simple_query("SELECT NOW()").await.is_ok(),
        Err(_) => false,
    }
}

async fn refusal(pg: &PgCluster, v: &Value) -> String {
    sqlstate(pg.login(&s(v, "username"), &s(v, "password"), &s(v, "dbname")).await)
}

#[tokio::test]
async fn single_user_rotation_replaces_the_password() {
    let Some(pg) = PgCluster::start() else { return };
    let (user, db) = (unique("app"), unique("db"));
    let p0 = "Old'pw\"\\;--";
    create_user(&pg, &user, p0, &db).await;
    let sm = Sm::new();
    let v0 = secret(&pg, &user, p0, &db);
    let id = sm.create(&unique("s"), &v0).await;
    let app = pg.login(&user, p0, &db).await.unwrap();

    sm.rotate_now(&id, SINGLE).await;
    let v1 = sm.value(&id, "AWSCURRENT").await;
    assert_ne!(s(&v1, "password"), p0);
    assert!(logs_in(&pg, &v1).await, "the new AWSCURRENT password logs in");
    assert_eq!(refusal(&pg, &v0).await, "28P01", "the old password is refused");
    assert_eq!(sm.value(&id, "AWSPREVIOUS").await, v0);
    // A session opened before the rotation survives ALTER USER.
    app.simple_query("SELECT 1").await.unwrap();

    // AWSCURRENT changed by hand to a password the database does not know: setSecret falls
    // back to AWSPREVIOUS (the password set by the last rotation) to log in.
    let mut wrong = v1.clone();
    wrong["password"] = json!("not-the-password");
    sm.ok(
        "PutSecretValue",
        json!({"SecretId": id, "SecretString": wrong.to_string()}),
    )
    .await;
    sm.rotate_now(&id, SINGLE).await;
    let v2 = sm.value(&id, "AWSCURRENT").await;
    assert!(logs_in(&pg, &v2).await);
    assert_eq!(refusal(&pg, &v1).await, "28P01");

    // A pending value put by hand is used as it is, quotes, backslashes and all.
    let v3 = sm.rotate_to_password(&id, SINGLE, "N3w'\"\\$1;-- é ").await;
    assert!(logs_in(&pg, &v3).await);
    assert_eq!(refusal(&pg, &v2).await, "28P01");
}

#[tokio::test]
async fn alternating_users_clone_the_grants_and_alternate() {
    let Some(pg) = PgCluster::start() else { return };
    // A name that needs quoting: upper case, a space and a double quote.
    let (user, db) = (format!("App \"{}\"", unique("u")), unique("db"));
    let clone = format!("{user}_clone");
    create_user(&pg, &user, "p0", &db).await;
    // A table owned by the superuser, readable by the user only through a grant.
    let su = pg.login("postgres", &pg.password, &db).await.unwrap();
    su.batch_execute(&format!(
        "CREATE TABLE t (x int); INSERT INTO t VALUES (42); GRANT SELECT ON t TO {}",
        ident(&user)
    ))
    .await
    .unwrap();

    let sm = Sm::new();
    let master = sm.create(&unique("master"), &pg.master_secret()).await;
    let mut v0 = secret(&pg, &user, "p0", &db);
    v0["masterarn"] = json!(master);
    let id = sm.create(&unique("s"), &v0).await;
    let reads = |v: Value| {
        let pg = &pg;
        async move {
            let c = pg
                .login(&s(&v, "username"), &s(&v, "password"), &s(&v, "dbname"))
                .await
                .unwrap();
            c.query_one("SELECT x FROM t", &[]).await.unwrap().get::<_, i32>(0)
        }
    };

    sm.rotate_now(&id, ALTERNATING).await;
    let v1 = sm.value(&id, "AWSCURRENT").await;
    assert_eq!(s(&v1, "username"), clone);
    assert_eq!(reads(v1.clone()).await, 42, "the clone has the user's grants");
    assert!(
        logs_in(&pg, &v0).await,
        "the original user still logs in with its password"
    );
    let member = su
        .query_one("SELECT pg_has_role($1, $2, 'MEMBER')", &[&clone, &user])
        .await
        .unwrap();
    assert!(member.get::<_, bool>(0), "GRANT <user> TO <clone>");

    sm.rotate_now(&id, ALTERNATING).await;
    let v2 = sm.value(&id, "AWSCURRENT").await;
    assert_eq!(s(&v2, "username"), user);
    assert_eq!(sm.value(&id, "AWSPREVIOUS").await, v1);
    assert_eq!(reads(v2.clone()).await, 42);
    assert_eq!(refusal(&pg, &v0).await, "28P01", "the user's old password is refused");
    assert!(
        logs_in(&pg, &v1).await,
        "the clone keeps working until the next rotation"
    );

    sm.rotate_now(&id, ALTERNATING).await;
    let v3 = sm.value(&id, "AWSCURRENT").await;
    assert_eq!(s(&v3, "username"), clone);
    assert_eq!(reads(v3).await, 42);
    assert_eq!(refusal(&pg, &v1).await, "28P01");
    assert!(logs_in(&pg, &v2).await);
}

#[tokio::test]
async fn set_secret_fails_promptly_while_the_database_is_down_and_succeeds_when_retried() {
    let Some(pg) = PgCluster::start() else { return };
    let (user, db) = (unique("app"), unique("db"));
    create_user(&pg, &user, "p0", &db).await;
    let sm = Sm::new();
    let v0 = secret(&pg, &user, "p0", &db);
    let id = sm.create(&unique("s"), &v0).await;
    let r = sm.rotate(&id, SINGLE).await;
    SINGLE.run_step(&sm, &r.event(Step::CreateSecret)).await.unwrap();
    let pending = sm.value(&id, "AWSPENDING").await;

    pg.stop_server();
    let started = Instant::now();
    let e = SINGLE.run_step(&sm, &r.event(Step::SetSecret)).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let StepError::Connect(m) = &e else { panic!("{e:?}") };
    assert!(
        m.starts_with(&format!("setSecret: could not reach 127.0.0.1:{}", pg.port)),
        "{m}"
    );
    assert!(!m.contains("p0") && !m.contains(&s(&pending, "password")));
    assert!(matches!(
        SINGLE.run_step(&sm, &r.event(Step::TestSecret)).await,
        Err(StepError::Connect(_))
    ));
    assert_eq!(sm.value(&id, "AWSCURRENT").await, v0, "AWSCURRENT is unchanged");

    pg.start_server();
    assert!(logs_in(&pg, &v0).await, "AWSCURRENT still logs in");
    for step in [Step::SetSecret, Step::TestSecret, Step::FinishSecret] {
        SINGLE.run_step(&sm, &r.event(step)).await.unwrap();
    }
    assert_eq!(sm.value(&id, "AWSCURRENT").await, pending);
    assert!(logs_in(&pg, &pending).await);
    assert_eq!(refusal(&pg, &v0).await, "28P01");
}
