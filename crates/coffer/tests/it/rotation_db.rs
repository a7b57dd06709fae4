//! The built-in database rotators through the real server: RotateSecret with
//! `coffer-mysql-single-user` against the machine's MariaDB (which checks passwords) and
//! `coffer-postgresql-alternating-users` against its PostgreSQL. The database is reached
//! through a TCP relay this test can cut, so "unreachable at setSecret, back for the retry"
//! is a real network failure. Each test creates and drops its own database and users.
//! (The crate `coffer-rotators` tests each step in more depth, including password refusal on
//! a private scram PostgreSQL cluster.)

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::support::{dev_client, signed_post, start_dev};

/// With `CI=true` a missing database fails the test; otherwise it is skipped.
fn reachable(port: u16, what: &str) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(_) => true,
        Err(e) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true and {what} is not reachable: {e}"
            );
            eprintln!("skipping: {what} is not reachable on {addr}: {e}");
            false
        }
    }
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// A TCP relay from a local port to `target` that can be cut (new connections refused, open
/// ones closed) and restored on the same port.
struct Relay {
    port: u16,
    stop: Arc<Notify>,
    target: u16,
}

impl Relay {
    async fn start(target: u16) -> Relay {
        let port = coffer_testkit::free_port().unwrap();
        let relay = Relay {
            port,
            stop: Arc::new(Notify::new()),
            target,
        };
        relay.up().await;
        relay
    }

    async fn up(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        let (stop, target) = (self.stop.clone(), self.target);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stop.notified() => return,
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { return };
                        let stop = stop.clone();
                        tokio::spawn(async move {
                            let Ok(mut outbound) = TcpStream::connect(("127.0.0.1", target)).await else { return };
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                _ = stop.notified() => {}
                            }
                        });
                    }
                }
            }
        });
    }

    /// Closes the listener and every relayed connection.
    fn cut(&self) {
        self.stop.notify_waiters();
    }
}

async fn rotation_status(c: &coffer_testkit::DevCredentials, secret: &str) -> Value {
    let r = signed_post(
        &c.endpoint,
        &c.access_key_id,
        &c.secret_access_key,
        "lambda",
        "CofferRotation.GetRotationStatus",
        json!({ "SecretId": secret }).to_string().as_bytes(),
        std::time::SystemTime::now(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn secret_json(sm: &aws_sdk_secretsmanager::Client, id: &str, stage: &str) -> Value {
    let v = sm
        .get_secret_value()
        .secret_id(id)
        .version_stage(stage)
        .send()
        .await
        .unwrap();
    serde_json::from_str(v.secret_string().unwrap()).unwrap()
}

fn builtin_arn(account: &str, name: &str) -> String {
    format!("arn:aws:lambda:us-east-1:{account}:function:{name}")
}

async fn advance_clock(endpoint: &str, secs: i64) {
    let r = reqwest::Client::new()
        .post(format!("{endpoint}/v1/sys/coffer/clock"))
        .json(&json!({ "advance_seconds": secs }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

// ---------------------------------------------------------------------------- MySQL

async fn mysql(user: &str, password: &str, db: Option<&str>) -> Result<mysql_async::Conn, mysql_async::Error> {
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(3306)
        .user(Some(user))
        .pass(Some(password))
        .db_name(db)
        .prefer_socket(false);
    mysql_async::Conn::new(opts).await
}

/// Drops the test's database and user, also when the test fails.
struct MysqlCleanup(String, String);

impl Drop for MysqlCleanup {
    fn drop(&mut self) {
        let (db, user) = (self.0.clone(), self.1.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                if let Ok(mut c) = mysql("root", "", None).await {
                    let _ = c.query_drop(format!("DROP DATABASE IF EXISTS `{db}`")).await;
                    let _ = c.query_drop(format!("DROP USER IF EXISTS '{user}'@'%'")).await;
                }
            });
        })
        .join();
    }
}

/// An application connection opened with AWSCURRENT keeps working across a single-user
/// rotation; the database is unreachable at the first setSecret, AWSCURRENT stays valid, and
/// the retry once it is back succeeds; afterwards the old password is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_single_user_rotation_through_the_server() {
    if !reachable(3306, "MariaDB") {
        return;
    }
    let (db, user) = (unique("rotdb"), unique("app"));
    let _cleanup = MysqlCleanup(db.clone(), user.clone());
    let initial = "Initial-pw-1";
    let mut root = mysql("root", "", None).await.unwrap();
    root.query_drop(format!("CREATE DATABASE `{db}`")).await.unwrap();
    root.query_drop(format!("CREATE TABLE `{db}`.items (id INT)"))
        .await
        .unwrap();
    root.query_drop(format!("INSERT INTO `{db}`.items VALUES (7)"))
        .await
        .unwrap();
    root.query_drop(format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{initial}'"))
        .await
        .unwrap();
    root.query_drop(format!("GRANT SELECT ON `{db}`.* TO '{user}'@'%'"))
        .await
        .unwrap();

    let relay = Relay::start(3306).await;
    let (_p, c) = start_dev(&["--dev-allow-reset"]);
    let sm = dev_client(&c);
    let value = json!({"engine": "mysql", "host": "127.0.0.1", "port": relay.port, "username": user, "password": initial, "dbname": db});
    sm.create_secret()
        .name("db/mysql-app")
        .secret_string(value.to_string())
        .send()
        .await
        .unwrap();

    // The application reads AWSCURRENT at start-up and keeps its connection.
    let current = secret_json(&sm, "db/mysql-app", "AWSCURRENT").await;
    let mut app = mysql(&user, current["password"].as_str().unwrap(), Some(&db))
        .await
        .unwrap();

    relay.cut();
    sm.rotate_secret()
        .secret_id("db/mysql-app")
        .rotation_lambda_arn(builtin_arn(&c.account_id, "coffer-mysql-single-user"))
        .send()
        .await
        .unwrap();
    wait_until("the failed setSecret", || async {
        rotation_status(&c, "db/mysql-app").await["FailedAttempts"] == json!(1)
    })
    .await;
    let status = rotation_status(&c, "db/mysql-app").await;
    assert_eq!(status["LastError"]["Step"], "setSecret", "{status}");
    assert!(!status["LastError"]["Message"].as_str().unwrap().contains(initial));
    // AWSCURRENT is untouched and still logs in.
    assert_eq!(secret_json(&sm, "db/mysql-app", "AWSCURRENT").await, value);
    mysql(&user, initial, Some(&db)).await.unwrap();

    // The database is back; the retry after the backoff completes the rotation.
    relay.up().await;
    advance_clock(&c.endpoint, 31).await;
    wait_until("the retried rotation", || async {
        secret_json(&sm, "db/mysql-app", "AWSCURRENT").await["password"] != json!(initial)
    })
    .await;
    let new = secret_json(&sm, "db/mysql-app", "AWSCURRENT").await;
    let new_pw = new["password"].as_str().unwrap();
    assert_eq!(new_pw.chars().count(), 32);
    assert_eq!(secret_json(&sm, "db/mysql-app", "AWSPREVIOUS").await, value);
    let mut fresh = mysql(&user, new_pw, Some(&db)).await.unwrap();
    let n: Option<i32> = fresh.query_first("SELECT id FROM items").await.unwrap();
    assert_eq!(n, Some(7));
    match mysql(&user, initial, Some(&db)).await {
        Err(mysql_async::Error::Server(e)) => assert_eq!(e.code, 1045),
        other => panic!("the old password still logs in: {:?}", other.map(|_| ())),
    }
    // The connection opened before the rotation still works.
    let n: Option<i32> = app.query_first("SELECT id FROM items").await.unwrap();
    assert_eq!(n, Some(7));
}

// ----------------------------------------------------------------------- PostgreSQL

async fn pg(user: &str, password: &str, db: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut cfg = tokio_postgres::Config::new();
    cfg.host("127.0.0.1")
        .port(5432)
        .user(user)
        .password(password)
        .dbname(db);
    let (client, conn) = cfg.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

/// Drops the test's database and roles, also when the test fails.
struct PgCleanup(String, Vec<String>);

impl Drop for PgCleanup {
    fn drop(&mut self) {
        let (db, roles) = (self.0.clone(), self.1.clone());
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                if let Ok(c) = pg("postgres", "", "postgres").await {
                    let _ = c
                        .batch_execute(&format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                        .await;
                    for r in roles {
                        let _ = c.batch_execute(&format!("DROP ROLE IF EXISTS \"{r}\"")).await;
                    }
                }
            });
        })
        .join();
    }
}

/// Alternating users: the clone is created with the user's grants, both users work, and
/// AWSCURRENT alternates between them over two rotations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_alternating_users_rotation_through_the_server() {
    if !reachable(5432, "PostgreSQL") {
        return;
    }
    let (db, user) = (unique("rotdb"), unique("app"));
    let clone = format!("{user}_clone");
    let _cleanup = PgCleanup(db.clone(), vec![user.clone(), clone.clone()]);
    let su = pg("postgres", "", "postgres").await.unwrap();
    su.batch_execute(&format!("CREATE ROLE \"{user}\" LOGIN PASSWORD 'first-pw'"))
        .await
        .unwrap();
    su.batch_execute(&format!("CREATE DATABASE \"{db}\"")).await.unwrap();
    let in_db = pg("postgres", "", &db).await.unwrap();
    in_db
        .batch_execute(&format!(
            "CREATE TABLE orders (id int); INSERT INTO orders VALUES (42); GRANT SELECT ON orders TO \"{user}\""
        ))
        .await
        .unwrap();

    let (_p, c) = start_dev(&[]);
    let sm = dev_client(&c);
    let master = sm
        .create_secret()
        .name("db/pg-master")
        .secret_string(json!({"engine": "postgres", "host": "127.0.0.1", "port": 5432, "username": "postgres", "password": "unused-with-trust", "dbname": "postgres"}).to_string())
        .send()
        .await
        .unwrap();
    let value = json!({"engine": "postgres", "host": "127.0.0.1", "port": 5432, "username": user, "password": "first-pw", "dbname": db, "masterarn": master.arn().unwrap()});
    sm.create_secret()
        .name("db/pg-app")
        .secret_string(value.to_string())
        .send()
        .await
        .unwrap();
    let arn = builtin_arn(&c.account_id, "coffer-postgresql-alternating-users");

    let mut seen_users = Vec::new();
    for round in 0..2 {
        let before = secret_json(&sm, "db/pg-app", "AWSCURRENT").await;
        let mut rotate = sm.rotate_secret().secret_id("db/pg-app");
        if round == 0 {
            rotate = rotate.rotation_lambda_arn(&arn);
        }
        rotate.send().await.unwrap();
        wait_until("the alternating rotation", || async {
            secret_json(&sm, "db/pg-app", "AWSCURRENT").await != before
        })
        .await;
        let now = secret_json(&sm, "db/pg-app", "AWSCURRENT").await;
        let u = now["username"].as_str().unwrap().to_string();
        // The new user reads what the original user may read.
        let client = pg(&u, now["password"].as_str().unwrap(), &db).await.unwrap();
        let row = client.query_one("SELECT id FROM orders", &[]).await.unwrap();
        assert_eq!(row.get::<_, i32>(0), 42);
        seen_users.push(u);
    }
    assert_eq!(seen_users, vec![clone.clone(), user.clone()]);
    // The clone is a member of the user (its grants), and both roles can log in.
    let member = su
        .query_one("SELECT pg_has_role($1, $2, 'MEMBER')", &[&clone, &user])
        .await
        .unwrap();
    assert!(member.get::<_, bool>(0));
    let previous = secret_json(&sm, "db/pg-app", "AWSPREVIOUS").await;
    assert_eq!(previous["username"], json!(clone));
    pg(&clone, previous["password"].as_str().unwrap(), &db).await.unwrap();
}
