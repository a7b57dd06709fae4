//! The MySQL functions against the machine's MariaDB (127.0.0.1:3306, root without a
//! password), which checks the passwords of the users the tests create.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use serde_json::{Value, json};

use coffer_rotators::BuiltIn;

use crate::common::{Sm, listening, s, unique};

const PORT: u16 = 3306;

async fn login(user: &str, password: &str, db: Option<&str>) -> Result<Conn, mysql_async::Error> {
    let opts = OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(PORT)
        .user(Some(user))
        .pass(Some(password))
        .db_name(db)
        .prefer_socket(false);
    Conn::new(opts).await
}

async fn root() -> Conn {
    login("root", "", None).await.unwrap()
}

/// `'text'` for SQL typed in these tests (the server runs without NO_BACKSLASH_ESCAPES).
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"))
}

/// Drops the test's database and users, also when the test fails.
struct Cleanup {
    db: String,
    users: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (db, users) = (self.db.clone(), self.users.clone());
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut c = root().await;
                for u in &users {
                    c.query_drop(format!("DROP USER IF EXISTS {}@'%'", literal(u)))
                        .await
                        .unwrap();
                }
                c.query_drop(format!("DROP DATABASE IF EXISTS `{db}`")).await.unwrap();
                c.disconnect().await.unwrap();
            });
        })
        .join();
        if done.is_err() {
            eprintln!("could not drop the test database {} and its users", self.db);
        }
    }
}

/// A database with table `t` (one row, 42), a user with `grants` on it (the user's
/// password is `password`), and the RDS secret of that user.
async fn setup(user: &str, password: &str, grants: &str) -> (Cleanup, Value) {
    let db = unique("rdb");
    let cleanup = Cleanup {
        db: db.clone(),
        users: vec![user.to_string(), format!("{user}_clone")],
    };
    let mut c = root().await;
    for sql in [
        format!("CREATE DATABASE `{db}`"),
        format!("CREATE TABLE `{db}`.t (x int)"),
        format!("INSERT INTO `{db}`.t VALUES (42)"),
        format!("CREATE USER {}@'%' IDENTIFIED BY {}", literal(user), literal(password)),
        format!("GRANT {grants} ON `{db}`.* TO {}@'%'", literal(user)),
    ] {
        c.query_drop(sql).await.unwrap();
    }
    c.disconnect().await.unwrap();
    let secret = json!({"engine": "mariadb", "host": "127.0.0.1", "port": PORT, "username": user, "password": password, "dbname": db});
    (cleanup, secret)
}

/// Logs in with the secret and reads `t`.
async fn reads(v: &Value) -> Result<i32, mysql_async::Error> {
    let mut c = login(&s(v, "username"), &s(v, "password"), Some(&s(v, "dbname"))).await?;
    let x: Option<i32> = c.query_first("SELECT x FROM t").await?;
    c.disconnect().await?;
    Ok(x.unwrap_or(0))
}

/// The server's error code for a login with the secret (1045: access denied).
async fn refusal(v: &Value) -> u16 {
    match login(&s(v, "username"), &s(v, "password"), None).await {
        Ok(_) => 0,
        Err(mysql_async::Error::Server(e)) => e.code,
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn single_user_rotation_replaces_the_password() {
    if !listening(PORT, "MariaDB") {
        return;
    }
    let f = BuiltIn::MysqlSingleUser;
    let user = unique("ru");
    let (_cleanup, v0) = setup(&user, "Old'pw\"\\;--", "SELECT").await;
    let sm = Sm::new();
    let id = sm.create(&unique("s"), &v0).await;

    sm.rotate_now(&id, f).await;
    let v1 = sm.value(&id, "AWSCURRENT").await;
    assert_ne!(v1, v0);
    assert_eq!(reads(&v1).await.unwrap(), 42, "the new AWSCURRENT password logs in");
    assert_eq!(refusal(&v0).await, 1045, "the old password is refused");
    assert_eq!(sm.value(&id, "AWSPREVIOUS").await, v0);

    // A pending value put by hand is set as it is: quotes and backslashes go through the
    // literal quoting of SET PASSWORD.
    let v2 = sm.rotate_to_password(&id, f, "N3w'\"\\$1;-- é \\'").await;
    assert_eq!(reads(&v2).await.unwrap(), 42);
    assert_eq!(refusal(&v1).await, 1045);
}

/// The user's grants as `SHOW GRANTS` prints them, with the user name replaced by `<u>` and
/// MariaDB's password hash cut off.
async fn grants(user: &str) -> Vec<String> {
    let mut c = root().await;
    let rows: Vec<String> = c.query(format!("SHOW GRANTS FOR {}@'%'", literal(user))).await.unwrap();
    c.disconnect().await.unwrap();
    let mut rows: Vec<String> = rows
        .into_iter()
        .map(|r| {
            let r = r.replace(&format!("`{user}`@"), "<u>@");
            r.split(" IDENTIFIED BY").next().unwrap().to_string()
        })
        .collect();
    rows.sort();
    rows
}

#[tokio::test]
async fn alternating_users_clone_the_grants_and_alternate() {
    if !listening(PORT, "MariaDB") {
        return;
    }
    let f = BuiltIn::MysqlAlternatingUsers;
    let user = unique("ru");
    let clone = format!("{user}_clone");
    let (mut cleanup, mut v0) = setup(&user, "p0'\\", "SELECT, INSERT").await;
    // The master: a user that may create users and pass on any grant.
    let master_user = unique("rm");
    cleanup.users.push(master_user.clone());
    let mut c = root().await;
    c.query_drop(format!(
        "CREATE USER {}@'%' IDENTIFIED BY {}",
        literal(&master_user),
        literal("m\\pw")
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "GRANT ALL PRIVILEGES ON *.* TO {}@'%' WITH GRANT OPTION",
        literal(&master_user)
    ))
    .await
    .unwrap();
    c.disconnect().await.unwrap();

    let sm = Sm::new();
    let master =
        json!({"engine": "mysql", "host": "127.0.0.1", "port": PORT, "username": master_user, "password": "m\\pw"});
    let master_arn = sm.create(&unique("master"), &master).await;
    v0["masterarn"] = json!(master_arn);
    let id = sm.create(&unique("s"), &v0).await;

    sm.rotate_now(&id, f).await;
    let v1 = sm.value(&id, "AWSCURRENT").await;
    assert_eq!(s(&v1, "username"), clone);
    assert_eq!(reads(&v1).await.unwrap(), 42, "the clone logs in and reads");
    assert_eq!(grants(&clone).await, grants(&user).await, "SHOW GRANTS replayed");
    assert_eq!(reads(&v0).await.unwrap(), 42, "the original user still logs in");

    sm.rotate_now(&id, f).await;
    let v2 = sm.value(&id, "AWSCURRENT").await;
    assert_eq!(s(&v2, "username"), user);
    assert_eq!(reads(&v2).await.unwrap(), 42);
    assert_eq!(refusal(&v0).await, 1045, "the user's old password is refused");
    assert_eq!(
        reads(&v1).await.unwrap(),
        42,
        "the clone keeps working until the next rotation"
    );

    sm.rotate_now(&id, f).await;
    let v3 = sm.value(&id, "AWSCURRENT").await;
    assert_eq!(s(&v3, "username"), clone);
    assert_eq!(reads(&v3).await.unwrap(), 42);
    assert_eq!(refusal(&v1).await, 1045);
    assert_eq!(grants(&clone).await, grants(&user).await);
}

/// A master that may not create users: setSecret fails with the server's reason, no password
/// in it, and AWSCURRENT stays as it was.
#[tokio::test]
async fn a_refused_statement_fails_set_secret_without_leaking_the_password() {
    if !listening(PORT, "MariaDB") {
        return;
    }
    let f = BuiltIn::MysqlAlternatingUsers;
    let user = unique("ru");
    let (mut cleanup, mut v0) = setup(&user, "p0", "SELECT").await;
    let weak = unique("rw");
    cleanup.users.push(weak.clone());
    let mut c = root().await;
    c.query_drop(format!("CREATE USER {}@'%' IDENTIFIED BY 'weak'", literal(&weak)))
        .await
        .unwrap();
    c.query_drop(format!("GRANT SELECT ON mysql.* TO {}@'%'", literal(&weak)))
        .await
        .unwrap();
    c.disconnect().await.unwrap();
    let sm = Sm::new();
    let master = json!({"engine": "mysql", "host": "127.0.0.1", "port": PORT, "username": weak, "password": "weak"});
    v0["masterarn"] = json!(sm.create(&unique("master"), &master).await);
    let id = sm.create(&unique("s"), &v0).await;
    let r = sm.rotate(&id, f).await;
    f.run_step(&sm, &r.event(coffer_rotators::Step::CreateSecret))
        .await
        .unwrap();
    let pending = s(&sm.value(&id, "AWSPENDING").await, "password");

    let e = f
        .run_step(&sm, &r.event(coffer_rotators::Step::SetSecret))
        .await
        .unwrap_err();
    let coffer_rotators::StepError::Database(m) = &e else {
        panic!("{e:?}")
    };
    assert!(
        m.starts_with(&format!(
            "setSecret: could not create or update {user}_clone as a clone of {user} on 127.0.0.1:{PORT}:"
        )),
        "{m}"
    );
    assert!(
        m.contains("ERROR 1227 (42000): Access denied"),
        "the server's reason: {m}"
    );
    assert!(!m.contains(&pending) && !m.contains("weak'"), "{m}");
    assert_eq!(sm.value(&id, "AWSCURRENT").await, v0);
    assert!(
        f.run_step(&sm, &r.event(coffer_rotators::Step::TestSecret))
            .await
            .is_err()
    );
}
