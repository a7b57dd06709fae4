//! PostgreSQL for the rotation templates, on `tokio-postgres` without TLS.
//!
//! The statements are the PostgreSQL templates': `ALTER USER <user> WITH PASSWORD <literal>`
//! (single user, logged in as that user); as the master, `SELECT 1 FROM pg_roles WHERE rolname
//! = $1`, then `CREATE ROLE <pending> WITH LOGIN PASSWORD <literal>` + `GRANT <current> TO
//! <pending>`, or `ALTER USER <pending> WITH PASSWORD <literal>`, in one transaction; and
//! `SELECT NOW()`. Utility statements take no bind parameters, so identifiers and literals are
//! quoted here ([`quote_ident`], [`quote_literal`]: the same results as the server's functions
//! that the templates call).
//!
//! The password literal is a SCRAM-SHA-256 verifier computed here (what `psql`'s `\password`
//! sends), so the plain password never appears in statement text, server logs or
//! `pg_stat_activity`; the server stores it as is and checks logins against it, with
//! `scram-sha-256` and `md5` authentication alike. Servers older than PostgreSQL 10 do not know
//! SCRAM verifiers and get the plain password, as from the templates.

use async_trait::async_trait;
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, NoTls};
use zeroize::Zeroizing;

use crate::error::{DbError, redact};
use crate::rds::{Family, RdsSecret};
use crate::template::{CONNECT_TIMEOUT, Database};

/// PostgreSQL's default database, where the templates log in when the secret has no `dbname`.
const DEFAULT_DBNAME: &str = "postgres";

pub(crate) struct Postgres;

#[async_trait]
impl Database for Postgres {
    fn family(&self) -> Family {
        Family::Postgres
    }

    async fn check_login(&self, secret: &RdsSecret) -> Result<(), DbError> {
        connect(secret).await.map(drop)
    }

    async fn set_own_password(&self, login: &RdsSecret, password: &str) -> Result<(), DbError> {
        let client = connect(login).await?;
        let literal = password_literal(&client, password).await?;
        let sql = Zeroizing::new(format!(
            "ALTER USER {} WITH PASSWORD {}",
            quote_ident(&login.username)?,
            literal.as_str()
        ));
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| statement_error(&e, &[password, &literal]))
    }

    async fn set_clone(&self, master: &RdsSecret, current: &RdsSecret, pending: &RdsSecret) -> Result<(), DbError> {
        let mut client = connect(master).await?;
        let literal = password_literal(&client, &pending.password).await?;
        let secrets = [pending.password.as_str(), literal.as_str()];
        let fail = |e: tokio_postgres::Error| statement_error(&e, &secrets);
        let pending_ident = quote_ident(&pending.username)?;
        let current_ident = quote_ident(&current.username)?;
        let tx = client.transaction().await.map_err(fail)?;
        let exists = tx
            .query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&pending.username])
            .await
            .map_err(fail)?
            .is_some();
        if exists {
            let sql = Zeroizing::new(format!("ALTER USER {pending_ident} WITH PASSWORD {}", literal.as_str()));
            tx.batch_execute(&sql).await.map_err(fail)?;
        } else {
            let sql = Zeroizing::new(format!(
                "CREATE ROLE {pending_ident} WITH LOGIN PASSWORD {}",
                literal.as_str()
            ));
            tx.batch_execute(&sql).await.map_err(fail)?;
            tx.batch_execute(&format!("GRANT {current_ident} TO {pending_ident}"))
                .await
                .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    async fn test(&self, secret: &RdsSecret) -> Result<(), DbError> {
        let client = connect(secret).await?;
        client
            .simple_query("SELECT NOW()")
            .await
            .map(drop)
            .map_err(|e| statement_error(&e, &[&secret.password]))
    }
}

/// Logs in, without TLS, within [`CONNECT_TIMEOUT`].
async fn connect(secret: &RdsSecret) -> Result<Client, DbError> {
    let mut config = tokio_postgres::Config::new();
    config
        .host(&secret.host)
        .port(secret.port)
        .user(&secret.username)
        .password(secret.password.as_bytes())
        .dbname(secret.dbname.as_deref().unwrap_or(DEFAULT_DBNAME))
        .application_name("coffer-rotation")
        .ssl_mode(SslMode::Disable)
        .connect_timeout(CONNECT_TIMEOUT);
    let (client, connection) = match tokio::time::timeout(CONNECT_TIMEOUT, config.connect(NoTls)).await {
        Err(_) => {
            return Err(DbError::Unreachable(format!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            )));
        }
        Ok(Err(e)) => return Err(login_error(&e, &secret.password)),
        Ok(Ok(pair)) => pair,
    };
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!(error = %e, "rotation: PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// A refused login is the server's error (`28P01` wrong password, `28000` no such role,
/// `3D000` no such database); anything else means the server was not reached.
fn login_error(e: &tokio_postgres::Error, password: &str) -> DbError {
    match e.as_db_error() {
        Some(db) => DbError::Login(redact(&format!("{} ({})", db.message(), db.code().code()), &[password])),
        None => DbError::Unreachable(redact(&error_chain(e), &[password])),
    }
}

fn statement_error(e: &tokio_postgres::Error, secrets: &[&str]) -> DbError {
    let text = match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => error_chain(e),
    };
    DbError::Statement(redact(&text, secrets))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The literal to put after `PASSWORD`: a SCRAM-SHA-256 verifier on PostgreSQL 10 and later,
/// the password itself before.
async fn password_literal(client: &Client, password: &str) -> Result<Zeroizing<String>, DbError> {
    let row = client
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| statement_error(&e, &[password]))?;
    let version: i32 = row.try_get(0).map_err(|e| statement_error(&e, &[password]))?;
    if version >= 100_000 {
        let verifier = Zeroizing::new(postgres_protocol::password::scram_sha_256(password.as_bytes()));
        quote_literal(&verifier)
    } else {
        quote_literal(password)
    }
}

/// An identifier, always double-quoted (`"` doubled): the role is named exactly as given, as
/// with the server's `quote_ident`.
pub(crate) fn quote_ident(name: &str) -> Result<String, DbError> {
    if name.contains('\0') {
        return Err(DbError::Statement(
            "a role name cannot contain a NUL character".to_string(),
        ));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// A string literal that means the same whatever `standard_conforming_strings` is: quotes
/// doubled, and when there is a backslash, an `E'...'` literal with backslashes doubled (the
/// server's `quote_literal` does the same).
pub(crate) fn quote_literal(value: &str) -> Result<Zeroizing<String>, DbError> {
    if value.contains('\0') {
        return Err(DbError::Statement(
            "a password cannot contain a NUL character".to_string(),
        ));
    }
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 2 + 3));
    if value.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn quoting_matches_the_servers_functions() {
        assert_eq!(quote_ident("app").unwrap(), "\"app\"");
        assert_eq!(quote_ident("a\"b c").unwrap(), "\"a\"\"b c\"");
        assert_eq!(quote_literal("pw").unwrap().as_str(), "'pw'");
        assert_eq!(quote_literal("it's").unwrap().as_str(), "'it''s'");
        assert_eq!(quote_literal("a\\'b").unwrap().as_str(), "E'a\\\\''b'");
        assert!(quote_literal("a\0b").is_err());
        assert!(quote_ident("a\0b").is_err());
    }
}
