//! MySQL and MariaDB for the rotation templates, on `mysql_async` without TLS.
//!
//! The statements are the MySQL templates'. Single user, logged in as that user:
//! `SELECT VERSION()`, then `SET PASSWORD = <literal>` (MySQL 8 and later) or
//! `SET PASSWORD = PASSWORD(<literal>)` (MySQL 5.x and MariaDB). Alternating, as the master:
//! `SELECT User FROM mysql.user WHERE User = ?`; `CREATE USER '<pending>'@'%' IDENTIFIED BY
//! <literal>` when missing; every row of `SHOW GRANTS FOR '<current>'@'%'` replayed for the
//! pending user; the current user's TLS requirement (`ssl_type`, `ssl_cipher`, `x509_issuer`,
//! `x509_subject` of `mysql.user`) copied with `ALTER USER ... REQUIRE` (`GRANT USAGE ... REQUIRE`
//! on 5.6); `SET PASSWORD FOR '<pending>'@'%' = ...`. And `SELECT NOW()`.
//!
//! None of these account statements accept `?` parameters (checked on MariaDB 10.11), so
//! account names and passwords are string literals quoted here ([`quote_literal`]), with the
//! session's `NO_BACKSLASH_ESCAPES` mode read first so that a backslash means the same to the
//! server as to us.
//!
//! Grant replay: the template cuts each row at its first `" TO "`. Coffer cuts at the grantee
//! (`` TO `<current>`@ ``), so a quoted name containing " TO " cannot derail it; it keeps a
//! trailing `WITH GRANT OPTION` / `WITH ADMIN OPTION` (the template drops it, leaving the clone
//! with less than the original) and replays MariaDB's `SET DEFAULT ROLE ... FOR` rows for the
//! pending user (the template fails on them).

use async_trait::async_trait;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};
use zeroize::Zeroizing;

use crate::error::{DbError, redact};
use crate::rds::{Family, RdsSecret};
use crate::template::{CONNECT_TIMEOUT, Database};

pub(crate) struct Mysql;

#[async_trait]
impl Database for Mysql {
    fn family(&self) -> Family {
        Family::Mysql
    }

    async fn check_login(&self, secret: &RdsSecret) -> Result<(), DbError> {
        let conn = connect(secret).await?;
        disconnect(conn).await;
        Ok(())
    }

    async fn set_own_password(&self, login: &RdsSecret, password: &str) -> Result<(), DbError> {
        let mut conn = connect(login).await?;
        let result = async {
            let server = Server::read(&mut conn, password).await?;
            let sql = Zeroizing::new(format!("SET PASSWORD = {}", server.password_expr(password)?.as_str()));
            conn.query_drop(sql.as_str())
                .await
                .map_err(|e| statement_error(&e, &[password]))
        }
        .await;
        disconnect(conn).await;
        result
    }

    async fn set_clone(&self, master: &RdsSecret, current: &RdsSecret, pending: &RdsSecret) -> Result<(), DbError> {
        let mut conn = connect(master).await?;
        let result = clone_user(&mut conn, current, pending).await;
        disconnect(conn).await;
        result
    }

    async fn test(&self, secret: &RdsSecret) -> Result<(), DbError> {
        let mut conn = connect(secret).await?;
        let result = conn
            .query_drop("SELECT NOW()")
            .await
            .map_err(|e| statement_error(&e, &[&secret.password]));
        disconnect(conn).await;
        result
    }
}

/// The alternating scheme's `set_secret` body, logged in as the master.
async fn clone_user(conn: &mut Conn, current: &RdsSecret, pending: &RdsSecret) -> Result<(), DbError> {
    let password = pending.password.as_str();
    let fail = |e: mysql_async::Error| statement_error(&e, &[password]);
    let server = Server::read(conn, password).await?;
    let pending_account = server.account(&pending.username)?;
    let current_account = server.account(&current.username)?;

    let exists: Option<String> = conn
        .exec_first(
            "SELECT User FROM mysql.user WHERE User = ?",
            (pending.username.as_str(),),
        )
        .await
        .map_err(fail)?;
    if exists.is_none() {
        let literal = server.literal(password)?;
        let sql = Zeroizing::new(format!(
            "CREATE USER {pending_account} IDENTIFIED BY {}",
            literal.as_str()
        ));
        conn.query_drop(sql.as_str()).await.map_err(fail)?;
    }

    let grants: Vec<String> = conn
        .query(format!("SHOW GRANTS FOR {current_account}"))
        .await
        .map_err(fail)?;
    for row in &grants {
        match replay_grant(row, &current.username, &pending_account) {
            Some(statement) => conn.query_drop(statement).await.map_err(fail)?,
            None => tracing::warn!(user = %current.username, "rotation: a SHOW GRANTS row was not replayed"),
        }
    }

    let tls: Option<TlsColumns> = conn
        .exec_first(
            "SELECT ssl_type, ssl_cipher, x509_issuer, x509_subject FROM mysql.user WHERE User = ?",
            (current.username.as_str(),),
        )
        .await
        .map_err(fail)?;
    let require = match tls {
        None => "NONE".to_string(),
        Some((kind, cipher, issuer, subject)) => require_clause(&server, &kind, &cipher, &issuer, &subject)?,
    };
    let statement = if server.version.starts_with("5.6") {
        format!("GRANT USAGE ON *.* TO {pending_account} REQUIRE {require}")
    } else {
        format!("ALTER USER {pending_account} REQUIRE {require}")
    };
    conn.query_drop(statement).await.map_err(fail)?;

    let sql = Zeroizing::new(format!(
        "SET PASSWORD FOR {pending_account} = {}",
        server.password_expr(password)?.as_str()
    ));
    conn.query_drop(sql.as_str()).await.map_err(fail)
}

/// `ssl_type, ssl_cipher, x509_issuer, x509_subject` of a `mysql.user` row.
type TlsColumns = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

/// What the statements depend on: the server's version and its quoting mode.
struct Server {
    version: String,
    no_backslash_escapes: bool,
}

impl Server {
    async fn read(conn: &mut Conn, password: &str) -> Result<Server, DbError> {
        let row: Option<(String, String)> = conn
            .query_first("SELECT VERSION(), @@SESSION.sql_mode")
            .await
            .map_err(|e| statement_error(&e, &[password]))?;
        let (version, sql_mode) = row.ok_or_else(|| DbError::Statement("SELECT VERSION() returned no row".into()))?;
        Ok(Server {
            no_backslash_escapes: sql_mode.split(',').any(|m| m == "NO_BACKSLASH_ESCAPES"),
            version,
        })
    }

    fn literal(&self, value: &str) -> Result<Zeroizing<String>, DbError> {
        quote_literal(value, self.no_backslash_escapes)
    }

    /// `'<user>'@'%'`, the account the templates create and read (a bare user name means `@'%'`).
    fn account(&self, user: &str) -> Result<String, DbError> {
        Ok(format!("{}@'%'", self.literal(user)?.as_str()))
    }

    /// The right side of `SET PASSWORD ... =`: the template's `PASSWORD(%s)` unless the server
    /// is MySQL 8 or later, which dropped `PASSWORD()`. MariaDB keeps it (and reports 10.x, 11.x).
    fn password_expr(&self, password: &str) -> Result<Zeroizing<String>, DbError> {
        let literal = self.literal(password)?;
        let major: u32 = self.version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
        if self.version.contains("MariaDB") || major < 8 {
            Ok(Zeroizing::new(format!("PASSWORD({})", literal.as_str())))
        } else {
            Ok(literal)
        }
    }
}

/// The `REQUIRE` clause for `mysql.user`'s `ssl_type` ('' / ANY / X509 / SPECIFIED).
fn require_clause(
    server: &Server,
    kind: &[u8],
    cipher: &[u8],
    issuer: &[u8],
    subject: &[u8],
) -> Result<String, DbError> {
    Ok(match kind {
        b"" => "NONE".to_string(),
        b"ANY" => "SSL".to_string(),
        b"X509" => "X509".to_string(),
        _ => {
            let mut parts = Vec::new();
            for (name, value) in [("CIPHER", cipher), ("ISSUER", issuer), ("SUBJECT", subject)] {
                if !value.is_empty() {
                    let text = std::str::from_utf8(value)
                        .map_err(|_| DbError::Statement(format!("{name} of the current user is not UTF-8")))?;
                    parts.push(format!("{name} {}", server.literal(text)?.as_str()));
                }
            }
            if parts.is_empty() {
                "SSL".to_string()
            } else {
                parts.join(" AND ")
            }
        }
    })
}

/// One `SHOW GRANTS` row of `current`, rewritten for the pending account; `None` for a row
/// that is neither a `GRANT ... TO` nor a `SET DEFAULT ROLE ... FOR` of that user.
pub(crate) fn replay_grant(row: &str, current: &str, pending_account: &str) -> Option<String> {
    let grantee = format!("`{}`@", current.replace('`', "``"));
    let (head, tail) = if row.starts_with("GRANT ") {
        let at = row.find(&format!(" TO {grantee}"))?;
        (&row[..at], " TO ")
    } else if row.starts_with("SET DEFAULT ROLE ") {
        let at = row.find(&format!(" FOR {grantee}"))?;
        (&row[..at], " FOR ")
    } else {
        return None;
    };
    let option = ["WITH GRANT OPTION", "WITH ADMIN OPTION"]
        .into_iter()
        .find(|o| row.ends_with(&format!(" {o}")))
        .map(|o| format!(" {o}"))
        .unwrap_or_default();
    Some(format!("{head}{tail}{pending_account}{option}"))
}

/// A single-quoted string literal: quotes doubled; backslashes doubled unless the session has
/// `NO_BACKSLASH_ESCAPES` (where a backslash is an ordinary character). NUL is refused.
pub(crate) fn quote_literal(value: &str, no_backslash_escapes: bool) -> Result<Zeroizing<String>, DbError> {
    if value.contains('\0') {
        return Err(DbError::Statement(
            "a user name or password cannot contain a NUL character".into(),
        ));
    }
    let mut out = Zeroizing::new(String::with_capacity(value.len() * 2 + 2));
    out.push('\'');
    for c in value.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if !no_backslash_escapes => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    Ok(out)
}

/// Logs in over TCP (never switching to the server's Unix socket), within [`CONNECT_TIMEOUT`].
async fn connect(secret: &RdsSecret) -> Result<Conn, DbError> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(secret.host.clone())
        .tcp_port(secret.port)
        .user(Some(secret.username.clone()))
        .pass(Some(secret.password.to_string()))
        .db_name(secret.dbname.clone())
        .prefer_socket(false)
        .stmt_cache_size(0);
    match tokio::time::timeout(CONNECT_TIMEOUT, Conn::new(opts)).await {
        Err(_) => Err(DbError::Unreachable(format!(
            "no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        ))),
        Ok(Err(e)) => Err(login_error(&e, &secret.password)),
        Ok(Ok(conn)) => Ok(conn),
    }
}

async fn disconnect(conn: Conn) {
    if let Err(e) = conn.disconnect().await {
        tracing::debug!(error = %e, "rotation: MySQL disconnect failed");
    }
}

/// The server's refusal (1045 access denied, 1049 unknown database, ...) is a refused login;
/// an I/O or protocol failure means the server was not reached.
fn login_error(e: &mysql_async::Error, password: &str) -> DbError {
    let text = redact(&e.to_string(), &[password]);
    match e {
        mysql_async::Error::Server(_) | mysql_async::Error::Driver(_) => DbError::Login(text),
        _ => DbError::Unreachable(text),
    }
}

fn statement_error(e: &mysql_async::Error, secrets: &[&str]) -> DbError {
    DbError::Statement(redact(&e.to_string(), secrets))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn literals_in_both_quoting_modes() {
        assert_eq!(quote_literal("a'b\\c", false).unwrap().as_str(), "'a''b\\\\c'");
        assert_eq!(quote_literal("a'b\\c", true).unwrap().as_str(), "'a''b\\c'");
        assert!(quote_literal("a\0", false).is_err());
    }

    #[test]
    fn grants_are_rewritten_for_the_pending_account() {
        let to = "'app_clone'@'%'";
        assert_eq!(
            replay_grant(
                "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*ABCDEF'",
                "app",
                to
            )
            .unwrap(),
            "GRANT USAGE ON *.* TO 'app_clone'@'%'"
        );
        assert_eq!(
            replay_grant("GRANT SELECT ON `a TO b`.* TO `app`@`%` WITH GRANT OPTION", "app", to).unwrap(),
            "GRANT SELECT ON `a TO b`.* TO 'app_clone'@'%' WITH GRANT OPTION"
        );
        assert_eq!(
            replay_grant("SET DEFAULT ROLE `r` FOR `app`@`%`", "app", to).unwrap(),
            "SET DEFAULT ROLE `r` FOR 'app_clone'@'%'"
        );
        assert_eq!(replay_grant("GRANT SELECT ON *.* TO `other`@`%`", "app", to), None);
        assert_eq!(replay_grant("REVOKE x", "app", to), None);
    }
}
