//! The RDS secret shape the templates read and write:
//! `{"engine", "host", "username", "password", "port"?, "dbname"?, "ssl"?, "masterarn"?}`.
//!
//! Validation follows the templates' `get_secret_dict` (the four fields are required, the
//! engine must match the function) plus what the templates use later (`port` as a number or a
//! numeric string, `masterarn` for the alternating scheme). Messages name fields, never values.
//!
//! [`SecretDoc`] keeps the whole JSON object, unknown keys included, because `createSecret`
//! copies the current secret and changes only `password` (and `username` when alternating).
//! Every string in it is wiped when it is dropped.

use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

/// The database family a rotation function talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Postgres,
    Mysql,
}

impl Family {
    /// Accepted `engine` values. PostgreSQL: as the PostgreSQL templates. MySQL: the MySQL
    /// template accepts only `mysql` and AWS ships a separate MariaDB template that accepts
    /// only `mariadb`; Coffer's one MySQL function serves both (and Aurora MySQL).
    fn engines(self) -> &'static [&'static str] {
        match self {
            Family::Postgres => &["postgres", "aurora-postgresql"],
            Family::Mysql => &["mysql", "mariadb", "aurora-mysql"],
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Family::Postgres => 5432,
            Family::Mysql => 3306,
        }
    }

    /// The longest user name the alternating scheme may create.
    ///
    /// PostgreSQL: 63 bytes (`NAMEDATALEN - 1`; longer names are silently truncated, so they
    /// must be refused). MySQL: AWS's template defaults to 16 (MySQL 5.6) and lets the env
    /// `USERNAME_CHARACTER_LIMIT` raise it; Coffer uses 32, the limit of MySQL 5.7 and 8.x,
    /// which MariaDB (80) also accepts, so a name that passes is valid on every supported server.
    pub(crate) fn username_limit(self) -> usize {
        match self {
            Family::Postgres => 63,
            Family::Mysql => 32,
        }
    }
}

/// What the `ssl` key asks for, as the templates' `get_ssl_config` reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ssl {
    /// No `ssl` key, or one of another type or value: try TLS, fall back to plain.
    Prefer,
    /// `true` / `"true"`: TLS only.
    Require,
    /// `false` / `"false"`: plain only.
    Disable,
}

/// The JSON object of one secret version. Its strings are wiped on drop; no `Debug`.
pub(crate) struct SecretDoc(Map<String, Value>);

impl SecretDoc {
    /// Parses a SecretString; the error never quotes the input.
    pub(crate) fn parse(text: &str) -> Result<SecretDoc, String> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(SecretDoc(map)),
            Ok(mut other) => {
                wipe(&mut other);
                Err("the secret value is not a JSON object".to_string())
            }
            Err(_) => Err("the secret value is not valid JSON".to_string()),
        }
    }

    fn str(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    /// Replaces a string field (the old value is wiped).
    pub(crate) fn set(&mut self, key: &str, value: &str) {
        if let Some(mut old) = self.0.insert(key.to_string(), Value::String(value.to_string())) {
            wipe(&mut old);
        }
    }

    /// The document as a SecretString.
    pub(crate) fn to_json(&self) -> Result<Zeroizing<String>, String> {
        // Sized up front so that serializing does not leave reallocated copies behind.
        let mut buf = Zeroizing::new(Vec::with_capacity(json_size(&self.0) + 64));
        serde_json::to_writer(&mut *buf, &self.0).map_err(|_| "could not serialize the secret value".to_string())?;
        let text = String::from_utf8(std::mem::take(&mut *buf)).map_err(|e| {
            e.into_bytes().zeroize();
            "could not serialize the secret value".to_string()
        })?;
        Ok(Zeroizing::new(text))
    }
}

impl Clone for SecretDoc {
    fn clone(&self) -> Self {
        SecretDoc(self.0.clone())
    }
}

impl Drop for SecretDoc {
    fn drop(&mut self) {
        for v in self.0.values_mut() {
            wipe(v);
        }
    }
}

/// An upper bound of the serialized size of a JSON object (a string escapes to at most six
/// bytes per byte), computed without serializing anything.
fn json_size(map: &Map<String, Value>) -> usize {
    fn value(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len() * 6 + 2,
            Value::Array(items) => items.iter().map(value).sum::<usize>() + items.len() + 2,
            Value::Object(map) => json_size(map),
            _ => 32,
        }
    }
    map.iter().map(|(k, v)| k.len() * 6 + 4 + value(v)).sum::<usize>() + 2
}

/// Zeroizes every string inside a JSON value.
pub(crate) fn wipe(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        _ => {}
    }
}

/// A validated RDS secret. `password` is zeroized on drop; there is no `Debug`.
pub(crate) struct RdsSecret {
    pub(crate) doc: SecretDoc,
    pub(crate) host: String,
    pub(crate) port: u16,
    pub(crate) username: String,
    pub(crate) password: Zeroizing<String>,
    pub(crate) dbname: Option<String>,
    pub(crate) masterarn: Option<String>,
    pub(crate) ssl: Ssl,
}

impl RdsSecret {
    /// Validates a SecretString for `family`, as the templates' `get_secret_dict`.
    pub(crate) fn parse(text: &str, family: Family) -> Result<RdsSecret, String> {
        Self::from_doc(SecretDoc::parse(text)?, family)
    }

    pub(crate) fn from_doc(doc: SecretDoc, family: Family) -> Result<RdsSecret, String> {
        let required = |key: &str| -> Result<&str, String> {
            match doc.0.get(key) {
                Some(Value::String(s)) => Ok(s.as_str()),
                Some(_) => Err(format!("{key} in the secret JSON must be a string")),
                None => Err(format!("{key} key is missing from the secret JSON")),
            }
        };
        for key in ["host", "username", "password", "engine"] {
            required(key)?;
        }
        let engines = family.engines();
        if !doc.str("engine").is_some_and(|e| engines.contains(&e)) {
            return Err(format!(
                "engine in the secret JSON must be {} for this rotation function",
                engines
                    .iter()
                    .map(|e| format!("\"{e}\""))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        let host = required("host")?.to_string();
        let username = required("username")?.to_string();
        if host.is_empty() || username.is_empty() {
            return Err("host and username in the secret JSON must not be empty".to_string());
        }
        let password = Zeroizing::new(required("password")?.to_string());
        let port = match doc.0.get("port") {
            None | Some(Value::Null) => family.default_port(),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .filter(|p| *p > 0)
                .ok_or(PORT)?,
            Some(Value::String(s)) => s.trim().parse::<u16>().ok().filter(|p| *p > 0).ok_or(PORT)?,
            Some(_) => return Err(PORT.to_string()),
        };
        let optional = |key: &str| -> Result<Option<String>, String> {
            match doc.0.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(format!("{key} in the secret JSON must be a string")),
            }
        };
        let dbname = optional("dbname")?;
        let masterarn = optional("masterarn")?.filter(|m| !m.is_empty());
        let ssl = match doc.0.get("ssl") {
            Some(Value::Bool(true)) => Ssl::Require,
            Some(Value::Bool(false)) => Ssl::Disable,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ssl::Require,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ssl::Disable,
            _ => Ssl::Prefer,
        };
        Ok(RdsSecret {
            doc,
            host,
            port,
            username,
            password,
            dbname,
            masterarn,
            ssl,
        })
    }

    /// `host:port`, for messages.
    pub(crate) fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

const PORT: &str = "port in the secret JSON must be a TCP port number";

/// The alternating scheme's other user: `<user>_clone` for `<user>`, and back.
pub(crate) fn alternate_username(username: &str, family: Family) -> Result<String, String> {
    if let Some(base) = username.strip_suffix(CLONE_SUFFIX) {
        return Ok(base.to_string());
    }
    let clone = format!("{username}{CLONE_SUFFIX}");
    let limit = family.username_limit();
    let length = match family {
        Family::Postgres => clone.len(),
        Family::Mysql => clone.chars().count(),
    };
    if length > limit {
        return Err(format!(
            "unable to clone user: the username with {CLONE_SUFFIX} appended would exceed {limit} characters"
        ));
    }
    Ok(clone)
}

const CLONE_SUFFIX: &str = "_clone";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn err(text: &str, family: Family) -> String {
        match RdsSecret::parse(text, family) {
            Ok(_) => panic!("accepted"),
            Err(e) => e,
        }
    }

    #[test]
    fn parses_the_rds_shape() {
        let s = RdsSecret::parse(
            r#"{"engine":"postgres","host":"db","username":"u","password":"p'\"\\","port":"6543","dbname":"app","extra":1}"#,
            Family::Postgres,
        )
        .unwrap();
        assert_eq!((s.host.as_str(), s.port, s.username.as_str()), ("db", 6543, "u"));
        assert_eq!(s.password.as_str(), "p'\"\\");
        assert_eq!(s.dbname.as_deref(), Some("app"));
        assert_eq!(s.ssl, Ssl::Prefer);
        assert_eq!(s.masterarn, None);
        let s = RdsSecret::parse(
            r#"{"engine":"mariadb","host":"db","username":"u","password":"","ssl":"TRUE","dbname":null}"#,
            Family::Mysql,
        )
        .unwrap();
        assert_eq!((s.port, s.ssl, s.dbname), (3306, Ssl::Require, None));
    }

    #[test]
    fn refusals_name_the_field_never_the_value() {
        let pg = Family::Postgres;
        assert_eq!(err("hunter2", pg), "the secret value is not valid JSON");
        assert_eq!(err(r#"["hunter2"]"#, pg), "the secret value is not a JSON object");
        assert_eq!(
            err(r#"{"engine":"postgres","host":"h","username":"u"}"#, pg),
            "password key is missing from the secret JSON"
        );
        assert_eq!(
            err(r#"{"engine":"postgres","host":"h","username":"u","password":7}"#, pg),
            "password in the secret JSON must be a string"
        );
        let e = err(r#"{"engine":"hunter2","host":"h","username":"u","password":"p"}"#, pg);
        assert!(e.starts_with("engine in the secret JSON must be \"postgres\""), "{e}");
        assert!(!e.contains("hunter2"));
        let e = err(
            r#"{"engine":"postgres","host":"h","username":"u","password":"p","port":"hunter2"}"#,
            pg,
        );
        assert_eq!(e, PORT);
        let e = err(
            r#"{"engine":"postgres","host":"h","username":"u","password":"p","port":70000}"#,
            pg,
        );
        assert_eq!(e, PORT);
    }

    #[test]
    fn alternate_usernames() {
        assert_eq!(alternate_username("app", Family::Mysql).unwrap(), "app_clone");
        assert_eq!(alternate_username("app_clone", Family::Mysql).unwrap(), "app");
        let long = "a".repeat(27);
        assert!(alternate_username(&long, Family::Mysql).unwrap_err().contains("32"));
        assert_eq!(alternate_username(&"a".repeat(26), Family::Mysql).unwrap().len(), 32);
        assert_eq!(alternate_username(&"a".repeat(57), Family::Postgres).unwrap().len(), 63);
        assert!(alternate_username(&"a".repeat(58), Family::Postgres).is_err());
        // PostgreSQL counts bytes.
        assert!(alternate_username(&"é".repeat(29), Family::Postgres).is_err());
    }

    #[test]
    fn documents_round_trip_with_unknown_keys() {
        let mut d = SecretDoc::parse(r#"{"a":1,"password":"old","nested":{"k":"v"}}"#).unwrap();
        d.set("password", "new\"pw");
        let text = d.to_json().unwrap();
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, serde_json::json!({"a":1,"password":"new\"pw","nested":{"k":"v"}}));
    }
}
