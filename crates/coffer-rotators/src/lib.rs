//! Coffer's built-in rotation functions: the four that every account has,
//! `coffer-postgresql-single-user`, `coffer-postgresql-alternating-users`,
//! `coffer-mysql-single-user` and `coffer-mysql-alternating-users`.
//!
//! Secrets Manager rotation (reference/aws-api.md §3) runs a rotation function four times,
//! with the Lambda event [`StepEvent`] for each [`Step`]. These functions do what AWS's
//! published RDS rotation templates do (`SecretsManagerRDS{PostgreSQL,MySQL}Rotation{SingleUser,MultiUser}`,
//! §3.4): the same Secrets Manager calls with the same inputs, through [`SecretsApi`], and the
//! same statements on the database. The runner that schedules rotations and invokes the steps
//! lives elsewhere; it calls [`BuiltIn::run_step`].
//!
//! Module map:
//! * [`event`]: [`Step`] and [`StepEvent`].
//! * `template`: the skeleton every template shares (`lambda_handler`, `create_secret`,
//!   `set_secret` for both schemes, `test_secret`, `finish_secret`), over a `Database` trait.
//! * `postgres` / `mysql`: that trait on `tokio-postgres` and `mysql_async`: logins with a
//!   5-second timeout and the templates' SQL, with identifiers and literals quoted here (the
//!   DDL statements take no bind parameters).
//! * `rds`: the secret JSON shape (`engine`, `host`, `username`, `password`, `port`, `dbname`,
//!   `ssl`, `masterarn`), and the alternate user names of the alternating scheme.
//! * `sm`: the Secrets Manager calls; `error`: [`StepError`].
//!
//! Secret hygiene: passwords and secret JSON are held in [`zeroize::Zeroizing`] strings or
//! documents wiped on drop, the types that hold them have no `Debug`, and every error message
//! is built from field names, hosts, user names and database error texts with the statement's
//! secrets redacted. (The database client libraries keep their own copies of a password for
//! the life of a connection; those are out of reach.)
//!
//! Not supported: TLS to the database (a secret with `"ssl": true` fails the step; without
//! `ssl` the templates try TLS then plain, Coffer connects plain), the templates' RDS API calls
//! (read-replica hosts, master secrets that hold only a user name and password), and the
//! templates' environment overrides (`EXCLUDE_CHARACTERS`, `PASSWORD_LENGTH`,
//! `USERNAME_CHARACTER_LIMIT`): Coffer uses the templates' defaults, except the ones noted at
//! `sm::EXCLUDE_CHARACTERS` and `rds::Family::username_limit`.

pub mod event;

mod error;
mod mysql;
mod postgres;
mod rds;
mod sm;
mod template;

pub use error::StepError;
pub use event::{Step, StepEvent};

use rds::{Family, RdsSecret, alternate_username};
use template::{Database, Scheme};

/// The Secrets Manager API as a rotation function sees it: one awsJson call by operation name
/// (`DescribeSecret`, `GetSecretValue`, `GetRandomPassword`, `PutSecretValue`,
/// `UpdateSecretVersionStage`), input and output exactly as on the wire. The runner implements
/// it on the real engine, acting as the rotation function's principal.
#[async_trait::async_trait]
pub trait SecretsApi: Send + Sync {
    async fn call(&self, operation: &str, input: serde_json::Value) -> Result<serde_json::Value, ApiError>;
}

/// An error from [`SecretsApi`]: the AWS `__type` short code (e.g. `ResourceNotFoundException`)
/// and its message (Secrets Manager messages never contain a secret value).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ApiError {}

/// One of the four built-in rotation functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltIn {
    PostgresSingleUser,
    PostgresAlternatingUsers,
    MysqlSingleUser,
    MysqlAlternatingUsers,
}

impl BuiltIn {
    pub const ALL: [BuiltIn; 4] = [
        BuiltIn::PostgresSingleUser,
        BuiltIn::PostgresAlternatingUsers,
        BuiltIn::MysqlSingleUser,
        BuiltIn::MysqlAlternatingUsers,
    ];

    /// The function's name: `coffer-postgresql-single-user` etc.
    pub fn function_name(self) -> &'static str {
        match self {
            BuiltIn::PostgresSingleUser => "coffer-postgresql-single-user",
            BuiltIn::PostgresAlternatingUsers => "coffer-postgresql-alternating-users",
            BuiltIn::MysqlSingleUser => "coffer-mysql-single-user",
            BuiltIn::MysqlAlternatingUsers => "coffer-mysql-alternating-users",
        }
    }

    /// The function with this exact name.
    pub fn from_function_name(name: &str) -> Option<BuiltIn> {
        BuiltIn::ALL.into_iter().find(|b| b.function_name() == name)
    }

    /// Configuration-time check of the AWSCURRENT secret string: the RDS JSON shape (`engine`,
    /// `host`, `username`, `password` strings; optional `port` and `dbname`; a `masterarn` for
    /// the alternating scheme, whose alternate user name must also fit the length limit) and an
    /// engine this function serves (`postgres`/`aurora-postgresql`, or
    /// `mysql`/`mariadb`/`aurora-mysql`). `Err` is a reason to show the user; it names fields,
    /// never values.
    pub fn check_secret_shape(self, secret_string: &str) -> Result<(), String> {
        let secret = RdsSecret::parse(secret_string, self.family())?;
        if self.scheme() == Scheme::AlternatingUsers {
            if secret.masterarn.is_none() {
                return Err(
                    "masterarn key is missing from the secret JSON (the alternating-users scheme needs the ARN of a master secret)"
                        .to_string(),
                );
            }
            alternate_username(&secret.username, self.family())?;
        }
        Ok(())
    }

    /// Runs one step, as the AWS template's `lambda_handler` does: `DescribeSecret` checks
    /// (rotation enabled, the token listed in `VersionIdsToStages` with AWSPENDING, nothing to
    /// do when it is already AWSCURRENT), then the step. An unknown `Step` fails.
    pub async fn run_step(self, api: &dyn SecretsApi, event: &StepEvent) -> Result<(), StepError> {
        template::run(self.database(), self.scheme(), api, event).await
    }

    fn family(self) -> Family {
        match self {
            BuiltIn::PostgresSingleUser | BuiltIn::PostgresAlternatingUsers => Family::Postgres,
            BuiltIn::MysqlSingleUser | BuiltIn::MysqlAlternatingUsers => Family::Mysql,
        }
    }

    fn scheme(self) -> Scheme {
        match self {
            BuiltIn::PostgresSingleUser | BuiltIn::MysqlSingleUser => Scheme::SingleUser,
            BuiltIn::PostgresAlternatingUsers | BuiltIn::MysqlAlternatingUsers => Scheme::AlternatingUsers,
        }
    }

    fn database(self) -> &'static dyn Database {
        match self.family() {
            Family::Postgres => &postgres::Postgres,
            Family::Mysql => &mysql::Mysql,
        }
    }
}

#[cfg(test)]
mod tests;
