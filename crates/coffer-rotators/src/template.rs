//! The skeleton every AWS RDS rotation template shares, with the database left abstract
//! ([`Database`], implemented in `postgres.rs` and `mysql.rs`).
//!
//! * `lambda_handler` → [`run`]: `DescribeSecret`; fail unless rotation is enabled (when
//!   `RotationEnabled` is present), the token is a key of `VersionIdsToStages` and carries
//!   AWSPENDING; return at once when it already carries AWSCURRENT.
//! * `create_secret`: read AWSCURRENT; if `GetSecretValue(VersionId=token, VersionStage=AWSPENDING)`
//!   answers ResourceNotFoundException, copy the current secret with a new password from
//!   `GetRandomPassword` (and, alternating, the other user name) and `PutSecretValue` it as
//!   AWSPENDING under the token.
//! * `set_secret`, single user: done if the pending secret logs in; the pending user and host
//!   must be the current ones; log in with AWSCURRENT, else AWSPREVIOUS (whose user and host
//!   must match too), and set the pending password.
//! * `set_secret`, alternating users: done if the pending secret logs in; the pending user must
//!   be the current one's alternate, on the same host; the current secret must log in (the
//!   templates' guard against a confused deputy); the master secret (`masterarn`, AWSCURRENT,
//!   same host, and for PostgreSQL the current secret's `dbname`) creates the pending user as a
//!   clone of the current one, or sets its password.
//! * `test_secret`: log in with the pending secret and run `SELECT NOW()`.
//! * `finish_secret`: move AWSCURRENT to the token, removing it from the version that has it.
//!
//! Coffer's one departure: when the database cannot be reached at all (as opposed to refusing a
//! login), `set_secret` stops at the first attempt instead of trying every credential in turn,
//! so an unreachable host fails the step after one connection timeout, not three.

use async_trait::async_trait;
use zeroize::Zeroizing;

use crate::error::DbError;
use crate::rds::{Family, RdsSecret, SecretDoc, Ssl, alternate_username};
use crate::sm::{self, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::{SecretsApi, Step, StepError, StepEvent};

/// How long one login may take, connecting included (the templates' `connect_timeout=5`).
pub(crate) const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The two rotation schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    SingleUser,
    AlternatingUsers,
}

/// What a rotation function needs from a database.
#[async_trait]
pub(crate) trait Database: Send + Sync {
    fn family(&self) -> Family;

    /// Logs in as `secret` and logs out.
    async fn check_login(&self, secret: &RdsSecret) -> Result<(), DbError>;

    /// Logs in as `login` and sets that user's own password to `password`.
    async fn set_own_password(&self, login: &RdsSecret, password: &str) -> Result<(), DbError>;

    /// Logs in as `master`; creates `pending.username` with `pending.password` and the grants of
    /// `current.username` if it does not exist, or else sets its password.
    async fn set_clone(&self, master: &RdsSecret, current: &RdsSecret, pending: &RdsSecret) -> Result<(), DbError>;

    /// Logs in as `secret` and runs `SELECT NOW()`.
    async fn test(&self, secret: &RdsSecret) -> Result<(), DbError>;
}

/// One step, as the template's `lambda_handler`.
pub(crate) async fn run(
    db: &dyn Database,
    scheme: Scheme,
    api: &dyn SecretsApi,
    event: &StepEvent,
) -> Result<(), StepError> {
    let step = Step::parse(&event.step)
        .ok_or_else(|| StepError::Invalid(format!("invalid step parameter for secret {}", event.secret_id)))?;
    let r = Rotation {
        db,
        scheme,
        api,
        id: &event.secret_id,
        token: &event.client_request_token,
        rotation_token: &event.rotation_token,
    };
    r.run(step).await.map_err(|e| e.in_step(step.as_str()))
}

struct Rotation<'a> {
    db: &'a dyn Database,
    scheme: Scheme,
    api: &'a dyn SecretsApi,
    id: &'a str,
    token: &'a str,
    rotation_token: &'a str,
}

impl Rotation<'_> {
    async fn run(&self, step: Step) -> Result<(), StepError> {
        let metadata = sm::describe(self.api, self.id).await?;
        if metadata.rotation_enabled == Some(false) {
            return Err(StepError::Invalid(format!(
                "secret {} is not enabled for rotation",
                self.id
            )));
        }
        let Some(stages) = metadata.stages(self.token) else {
            return Err(StepError::Invalid(format!(
                "secret version {} has no stage for rotation of secret {}",
                self.token, self.id
            )));
        };
        if stages.iter().any(|s| s == AWSCURRENT) {
            tracing::info!(secret = %self.id, version = %self.token, %step, "version already AWSCURRENT");
            return Ok(());
        }
        if !stages.iter().any(|s| s == AWSPENDING) {
            return Err(StepError::Invalid(format!(
                "secret version {} not set as AWSPENDING for rotation of secret {}",
                self.token, self.id
            )));
        }
        match step {
            Step::CreateSecret => self.create_secret().await,
            Step::SetSecret => match self.scheme {
                Scheme::SingleUser => self.set_single().await,
                Scheme::AlternatingUsers => self.set_alternating().await,
            },
            Step::TestSecret => self.test_secret().await,
            Step::FinishSecret => self.finish_secret().await,
        }?;
        tracing::info!(secret = %self.id, version = %self.token, %step, "rotation step done");
        Ok(())
    }

    fn family(&self) -> Family {
        self.db.family()
    }

    /// The `stage` version of this secret (of the token's version for AWSPENDING), validated.
    async fn secret(&self, stage: &str) -> Result<RdsSecret, StepError> {
        let version = (stage == AWSPENDING).then_some(self.token);
        let text = sm::secret_string(self.api, self.id, stage, version).await?;
        parse(&text, self.family(), self.id, stage)
    }

    async fn create_secret(&self) -> Result<(), StepError> {
        let current = self.secret(AWSCURRENT).await?;
        match self.secret(AWSPENDING).await {
            Ok(_) => return Ok(()),
            Err(e) if sm::is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
        let mut doc: SecretDoc = current.doc.clone();
        if self.scheme == Scheme::AlternatingUsers {
            let other = alternate_username(&current.username, self.family()).map_err(StepError::Invalid)?;
            doc.set("username", &other);
        }
        let password = sm::random_password(self.api).await?;
        doc.set("password", &password);
        let text = doc.to_json().map_err(StepError::Invalid)?;
        sm::put_pending(self.api, self.id, self.token, self.rotation_token, &text).await
    }

    /// Logs in with the pending secret: `Ok(true)` when it works, `Ok(false)` when the server
    /// refuses it, an error when the server cannot be reached.
    async fn pending_logs_in(&self, pending: &RdsSecret) -> Result<bool, StepError> {
        match self.db.check_login(connectable(pending)?).await {
            Ok(()) => {
                tracing::info!(secret = %self.id, "AWSPENDING secret already logs in");
                Ok(true)
            }
            Err(DbError::Unreachable(reason)) => Err(unreachable(pending, &reason)),
            Err(_) => Ok(false),
        }
    }

    async fn set_single(&self) -> Result<(), StepError> {
        let previous = match self.secret(AWSPREVIOUS).await {
            Ok(p) => Some(p),
            Err(e) if sm::is_not_found(&e) || matches!(e, StepError::Invalid(_)) => None,
            Err(e) => return Err(e),
        };
        let current = self.secret(AWSCURRENT).await?;
        let pending = self.secret(AWSPENDING).await?;
        if self.pending_logs_in(&pending).await? {
            return Ok(());
        }
        // As the template, the previous secret is tried with the current one's `ssl`.
        connectable(&current)?;
        let mut refusals = Vec::new();
        for (login, label) in [(Some(&current), "current"), (previous.as_ref(), "previous")] {
            let Some(login) = login else { continue };
            same_user_and_host(login, &pending, &login.username, label)?;
            match self.db.set_own_password(login, &pending.password).await {
                Ok(()) => return Ok(()),
                Err(DbError::Login(reason)) => refusals.push(format!("{label}: {reason}")),
                Err(DbError::Unreachable(reason)) => return Err(unreachable(login, &reason)),
                Err(DbError::Statement(reason)) => {
                    return Err(StepError::Database(format!(
                        "could not set the password of {} on {}: {reason}",
                        pending.username,
                        pending.address()
                    )));
                }
            }
        }
        if previous.is_none() {
            refusals.push("there is no previous version".to_string());
        }
        Err(StepError::Connect(format!(
            "could not log in to {} as {} with the current or previous password ({})",
            current.address(),
            current.username,
            refusals.join("; ")
        )))
    }

    async fn set_alternating(&self) -> Result<(), StepError> {
        let current = self.secret(AWSCURRENT).await?;
        let pending = self.secret(AWSPENDING).await?;
        if self.pending_logs_in(&pending).await? {
            return Ok(());
        }
        let alternate = alternate_username(&current.username, self.family()).map_err(StepError::Invalid)?;
        same_user_and_host(&current, &pending, &alternate, "current")?;
        self.db.check_login(connectable(&current)?).await.map_err(|e| {
            let login = format!(
                "could not log in to {} as {} with the current secret",
                current.address(),
                current.username
            );
            in_context(e, &current, login.clone(), login)
        })?;
        let Some(master_arn) = current.masterarn.as_deref() else {
            return Err(StepError::Invalid(
                "masterarn key is missing from the secret JSON (the alternating-users scheme needs it)".to_string(),
            ));
        };
        let text = sm::secret_string(self.api, master_arn, AWSCURRENT, None).await?;
        let mut master = parse(&text, self.family(), master_arn, AWSCURRENT)?;
        if self.family() == Family::Postgres {
            // The master logs in to the user's database (the template copies `dbname`).
            master.dbname = current.dbname.clone();
        }
        if master.host != current.host {
            return Err(StepError::Invalid(format!(
                "the current database host {} is not the host of the master secret {master_arn} ({})",
                current.host, master.host
            )));
        }
        self.db
            .set_clone(connectable(&master)?, &current, &pending)
            .await
            .map_err(|e| {
                let login = format!(
                    "could not log in to {} as {} with the master secret {master_arn}",
                    master.address(),
                    master.username
                );
                let statement = format!(
                    "could not create or update {} as a clone of {} on {}",
                    pending.username,
                    current.username,
                    current.address()
                );
                in_context(e, &master, login, statement)
            })
    }

    async fn test_secret(&self) -> Result<(), StepError> {
        let pending = self.secret(AWSPENDING).await?;
        self.db.test(connectable(&pending)?).await.map_err(|e| {
            let (address, user) = (pending.address(), &pending.username);
            let login = format!("unable to log in to {address} as {user} with the pending secret");
            in_context(
                e,
                &pending,
                login,
                format!("SELECT NOW() failed on {address} as {user}"),
            )
        })
    }

    async fn finish_secret(&self) -> Result<(), StepError> {
        let metadata = sm::describe(self.api, self.id).await?;
        let current = metadata.version_with(AWSCURRENT);
        if current == Some(self.token) {
            return Ok(());
        }
        sm::move_current(self.api, self.id, self.token, current).await
    }
}

fn parse(text: &Zeroizing<String>, family: Family, id: &str, stage: &str) -> Result<RdsSecret, StepError> {
    RdsSecret::parse(text, family).map_err(|e| StepError::Invalid(format!("the {stage} version of secret {id}: {e}")))
}

/// Refuses a secret that asks for TLS only: Coffer's rotation functions connect without TLS.
/// Without an `ssl` key the templates try TLS and fall back to a plain connection; Coffer goes
/// straight to the plain one.
fn connectable(secret: &RdsSecret) -> Result<&RdsSecret, StepError> {
    if secret.ssl == Ssl::Require {
        return Err(StepError::Invalid(format!(
            "the secret for {} on {} asks for TLS (\"ssl\": true), which Coffer's built-in rotation functions do not support yet",
            secret.username,
            secret.address()
        )));
    }
    Ok(secret)
}

fn unreachable(secret: &RdsSecret, reason: &str) -> StepError {
    StepError::Connect(format!("could not reach {}: {reason}", secret.address()))
}

/// A database failure of a step that logged in as `target`: `login` and `statement` say what
/// was refused, the database's reason follows.
fn in_context(e: DbError, target: &RdsSecret, login: String, statement: String) -> StepError {
    match e {
        DbError::Unreachable(reason) => unreachable(target, &reason),
        DbError::Login(reason) => StepError::Connect(format!("{login}: {reason}")),
        DbError::Statement(reason) => StepError::Database(format!("{statement}: {reason}")),
    }
}

/// The template's guards: the pending secret must be for `expected_user` on `secret`'s host.
fn same_user_and_host(
    secret: &RdsSecret,
    pending: &RdsSecret,
    expected_user: &str,
    label: &str,
) -> Result<(), StepError> {
    if pending.username != expected_user {
        return Err(StepError::Invalid(format!(
            "attempting to modify user {} other than the {label} user {}",
            pending.username, secret.username
        )));
    }
    if pending.host != secret.host {
        return Err(StepError::Invalid(format!(
            "attempting to modify user for host {} other than the {label} host {}",
            pending.host, secret.host
        )));
    }
    Ok(())
}
