//! Test harness: the Secrets Manager engine as a `SecretsApi`, unique names, the CI rule for
//! unavailable databases, and a private PostgreSQL cluster with password authentication.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use coffer_engines::RequestContext;
use coffer_engines::secrets::SecretsEngine;
use coffer_rotators::{ApiError, BuiltIn, SecretsApi, Step, StepError, StepEvent};
use serde_json::{Value, json};

/// The real Secrets Manager engine over memory storage, called as the runner would.
pub struct Sm {
    engine: SecretsEngine,
}

#[async_trait::async_trait]
impl SecretsApi for Sm {
    async fn call(&self, operation: &str, input: Value) -> Result<Value, ApiError> {
        let ctx = RequestContext {
            account_id: "123456789012".into(),
            region: "us-east-1".into(),
            principal_arn: "arn:aws:iam::123456789012:root".into(),
            now: time::OffsetDateTime::now_utc(),
        };
        self.engine.handle(&ctx, operation, input).await.map_err(|e| ApiError {
            code: e.code.as_str().to_string(),
            message: e.message,
        })
    }
}

/// A rotation started with RotateSecret: the event fields for its four steps.
pub struct Rotation {
    pub secret_id: String,
    pub token: String,
    pub rotation_token: String,
}

impl Rotation {
    pub fn event(&self, step: Step) -> StepEvent {
        StepEvent::new(step, &self.secret_id, &self.token, &self.rotation_token)
    }
}

impl Sm {
    pub fn new() -> Sm {
        Sm {
            engine: SecretsEngine::new(Arc::new(coffer_storage::memory::MemoryStorage::new())),
        }
    }

    pub async fn ok(&self, op: &str, input: Value) -> Value {
        match self.call(op, input).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    /// Creates a secret and returns its ARN.
    pub async fn create(&self, name: &str, value: &Value) -> String {
        let out = self
            .ok("CreateSecret", json!({"Name": name, "SecretString": value.to_string()}))
            .await;
        out["ARN"].as_str().unwrap().to_string()
    }

    /// RotateSecret with `function` as the rotation function: the engine creates the empty
    /// AWSPENDING version (no runner is installed, so nothing else happens).
    pub async fn rotate(&self, secret_id: &str, function: BuiltIn) -> Rotation {
        let lambda = format!(
            "arn:aws:lambda:us-east-1:123456789012:function:{}",
            function.function_name()
        );
        let out = self
            .ok(
                "RotateSecret",
                json!({"SecretId": secret_id, "RotationLambdaARN": lambda}),
            )
            .await;
        Rotation {
            secret_id: secret_id.to_string(),
            token: out["VersionId"].as_str().unwrap().to_string(),
            rotation_token: uuid_like(),
        }
    }

    /// Runs the four steps in order, then takes AWSPENDING off the new version, as the runner
    /// does after a successful rotation (reference/aws-api.md §3.1, step 5).
    pub async fn run_all(&self, function: BuiltIn, r: &Rotation) -> Result<(), StepError> {
        for step in Step::ALL {
            function.run_step(self, &r.event(step)).await?;
        }
        self.ok(
            "UpdateSecretVersionStage",
            json!({"SecretId": r.secret_id, "VersionStage": "AWSPENDING", "RemoveFromVersionId": r.token}),
        )
        .await;
        Ok(())
    }

    /// A full rotation; panics on failure.
    pub async fn rotate_now(&self, secret_id: &str, function: BuiltIn) -> Rotation {
        let r = self.rotate(secret_id, function).await;
        if let Err(e) = self.run_all(function, &r).await {
            panic!("rotation with {} failed: {e}", function.function_name());
        }
        r
    }

    /// A full rotation whose AWSPENDING value is put by hand first, the current one with
    /// `password` (createSecret then keeps it); returns that value, now AWSCURRENT.
    pub async fn rotate_to_password(&self, secret_id: &str, function: BuiltIn, password: &str) -> Value {
        let r = self.rotate(secret_id, function).await;
        let mut v = self.value(secret_id, "AWSCURRENT").await;
        v["password"] = json!(password);
        self.ok(
            "PutSecretValue",
            json!({"SecretId": secret_id, "ClientRequestToken": r.token, "SecretString": v.to_string(), "VersionStages": ["AWSPENDING"]}),
        )
        .await;
        if let Err(e) = self.run_all(function, &r).await {
            panic!("rotation with {} failed: {e}", function.function_name());
        }
        assert_eq!(self.value(secret_id, "AWSCURRENT").await, v);
        v
    }

    /// The JSON of the version with `stage`.
    pub async fn value(&self, secret_id: &str, stage: &str) -> Value {
        let out = self
            .ok("GetSecretValue", json!({"SecretId": secret_id, "VersionStage": stage}))
            .await;
        serde_json::from_str(out["SecretString"].as_str().unwrap()).unwrap()
    }

    /// The id of the version with `stage`.
    pub async fn version_with(&self, secret_id: &str, stage: &str) -> Option<String> {
        let d = self.ok("DescribeSecret", json!({"SecretId": secret_id})).await;
        d["VersionIdsToStages"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, s)| s.as_array().unwrap().iter().any(|x| x == stage))
            .map(|(v, _)| v.clone())
    }
}

pub fn s(v: &Value, key: &str) -> String {
    v[key].as_str().unwrap_or_else(|| panic!("{key} missing")).to_string()
}

/// A name no other test or concurrent run uses: `<prefix><pid36><counter><time36>`, lowercase.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}{}{n}{}", base36(std::process::id()), base36(nanos % 46_656))
}

fn base36(mut n: u32) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

fn uuid_like() -> String {
    let u = unique("");
    format!("00000000-0000-4000-8000-{:0>12}", &u[u.len().saturating_sub(12)..])
}

/// The rule for databases the tests need: with `CI=true` their absence fails the test,
/// otherwise the test is skipped with the reason printed.
pub fn unavailable(reason: &str) -> bool {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("CI=true and {reason}");
    }
    eprintln!("skipping: {reason}");
    true
}

/// True when something listens on `127.0.0.1:port` (else [`unavailable`]).
pub fn listening(port: u16, what: &str) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
        Ok(_) => true,
        Err(e) => !unavailable(&format!("{what} is not reachable on {addr}: {e}")),
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private PostgreSQL cluster on a free port, with `scram-sha-256` for TCP logins (so a wrong
/// password is refused, unlike the machine's trust-auth server). Superuser `postgres` with
/// [`PgCluster::password`]. Stopped and deleted on drop, also when the test fails.
pub struct PgCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    as_postgres: bool,
    pub port: u16,
    pub password: String,
}

impl PgCluster {
    /// `None` when the test should skip (no PostgreSQL binaries, and not CI).
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = pg_bin() else {
            unavailable("no PostgreSQL binaries under /usr/lib/postgresql/*/bin");
            return None;
        };
        let as_postgres = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let dir = tempfile::Builder::new().prefix("coffer-rotators-pg").tempdir().unwrap();
        let password = format!("Master'\"\\{}", unique("pw"));
        std::fs::write(dir.path().join("pwfile"), &password).unwrap();
        if as_postgres {
            // initdb refuses to run as root: the cluster belongs to the postgres user.
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the cluster directory failed");
        }
        let cluster = PgCluster {
            port: free_port(),
            dir,
            bin,
            as_postgres,
            password,
        };
        let data = cluster.path("data");
        let pwfile = cluster.path("pwfile");
        cluster.pg(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--pwfile",
                &pwfile,
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        cluster.start_server();
        Some(cluster)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    fn pg(&self, program: &str, args: &[&str]) {
        let program = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let out = cmd.args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    pub fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let (data, log) = (self.path("data"), self.path("log"));
        self.pg("pg_ctl", &["-D", &data, "-o", &options, "-l", &log, "-w", "start"]);
    }

    pub fn stop_server(&self) {
        let data = self.path("data");
        self.pg("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    /// A login over TCP.
    pub async fn login(
        &self,
        user: &str,
        password: &str,
        db: &str,
    ) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let mut c = tokio_postgres::Config::new();
        c.host("127.0.0.1")
            .port(self.port)
            .user(user)
            .password(password)
            .dbname(db)
            .connect_timeout(Duration::from_secs(5));
        let (client, conn) = c.connect(tokio_postgres::NoTls).await?;
        tokio::spawn(conn);
        Ok(client)
    }

    pub async fn superuser(&self) -> tokio_postgres::Client {
        self.login("postgres", &self.password, "postgres").await.unwrap()
    }

    /// The RDS secret of the superuser.
    pub fn master_secret(&self) -> Value {
        json!({"engine": "postgres", "host": "127.0.0.1", "port": self.port, "username": "postgres", "password": self.password})
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.path("data");
        let program = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let _ = cmd.args(["-D", &data, "-m", "immediate", "-w", "stop"]).output();
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` with `initdb`.
fn pg_bin() -> Option<PathBuf> {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir(root)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let v = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, b)| b)
}

/// The SQLSTATE of a failed PostgreSQL login, e.g. `28P01` for a wrong password.
pub fn sqlstate(r: Result<tokio_postgres::Client, tokio_postgres::Error>) -> String {
    match r {
        Ok(_) => "logged in".to_string(),
        Err(e) => e.code().map(|c| c.code().to_string()).unwrap_or_else(|| e.to_string()),
    }
}
