//! Names of the built-in functions and the configuration-time shape check.
#![allow(clippy::unwrap_used)]

use super::*;

#[test]
fn function_names_round_trip() {
    for b in BuiltIn::ALL {
        assert_eq!(BuiltIn::from_function_name(b.function_name()), Some(b));
    }
    assert_eq!(
        BuiltIn::ALL.map(BuiltIn::function_name),
        [
            "coffer-postgresql-single-user",
            "coffer-postgresql-alternating-users",
            "coffer-mysql-single-user",
            "coffer-mysql-alternating-users"
        ]
    );
    assert_eq!(BuiltIn::from_function_name("coffer-mysql"), None);
    assert_eq!(BuiltIn::from_function_name("COFFER-MYSQL-SINGLE-USER"), None);
}

const PG: &str = r#"{"engine":"postgres","host":"db","username":"app","password":"pw","port":5432,"dbname":"app"}"#;
const PG_ALT: &str = r#"{"engine":"postgres","host":"db","username":"app","password":"pw","masterarn":"arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf"}"#;
const MY: &str = r#"{"engine":"mysql","host":"db","username":"app","password":"pw"}"#;

fn refusal(b: BuiltIn, secret: &str) -> String {
    b.check_secret_shape(secret).unwrap_err()
}

#[test]
fn accepts_the_rds_shapes() {
    BuiltIn::PostgresSingleUser.check_secret_shape(PG).unwrap();
    BuiltIn::PostgresSingleUser.check_secret_shape(PG_ALT).unwrap();
    BuiltIn::PostgresAlternatingUsers.check_secret_shape(PG_ALT).unwrap();
    BuiltIn::MysqlSingleUser.check_secret_shape(MY).unwrap();
    for engine in ["mysql", "mariadb", "aurora-mysql"] {
        let s = MY.replace("\"mysql\"", &format!("\"{engine}\""));
        BuiltIn::MysqlSingleUser.check_secret_shape(&s).unwrap();
    }
    let s = PG
        .replace("\"postgres\"", "\"aurora-postgresql\"")
        .replace("5432", "\"5432\"");
    BuiltIn::PostgresSingleUser.check_secret_shape(&s).unwrap();
}

#[test]
fn refuses_missing_fields() {
    for field in ["engine", "host", "username", "password"] {
        let mut v: serde_json::Value = serde_json::from_str(PG).unwrap();
        v.as_object_mut().unwrap().remove(field);
        let e = refusal(BuiltIn::PostgresSingleUser, &v.to_string());
        assert_eq!(e, format!("{field} key is missing from the secret JSON"));
    }
    let e = refusal(BuiltIn::PostgresSingleUser, &PG.replace("\"db\"", "\"\""));
    assert_eq!(e, "host and username in the secret JSON must not be empty");
}

#[test]
fn refuses_the_wrong_engine() {
    let e = refusal(BuiltIn::PostgresSingleUser, MY);
    assert_eq!(
        e,
        "engine in the secret JSON must be \"postgres\" or \"aurora-postgresql\" for this rotation function"
    );
    let e = refusal(BuiltIn::MysqlAlternatingUsers, PG_ALT);
    assert!(
        e.starts_with("engine in the secret JSON must be \"mysql\" or \"mariadb\""),
        "{e}"
    );
}

#[test]
fn alternating_needs_a_master_secret_and_room_for_the_clone() {
    let e = refusal(BuiltIn::PostgresAlternatingUsers, PG);
    assert!(e.starts_with("masterarn key is missing from the secret JSON"), "{e}");
    let e = refusal(
        BuiltIn::PostgresAlternatingUsers,
        &PG_ALT.replace(
            "\"arn:aws:secretsmanager:us-east-1:123456789012:secret:master-AbCdEf\"",
            "\"\"",
        ),
    );
    assert!(e.starts_with("masterarn key is missing"), "{e}");
    let long = MY
        .replace("\"app\"", &format!("\"{}\"", "u".repeat(27)))
        .replace('}', r#","masterarn":"m"}"#);
    let e = refusal(BuiltIn::MysqlAlternatingUsers, &long);
    assert!(e.contains("would exceed 32 characters"), "{e}");
    // Single user does not clone, so the length does not matter there.
    BuiltIn::MysqlSingleUser.check_secret_shape(&long).unwrap();
}

#[test]
fn refuses_non_json_without_quoting_it() {
    for (text, want) in [
        ("password=hunter2", "the secret value is not valid JSON"),
        ("", "the secret value is not valid JSON"),
        ("\"hunter2\"", "the secret value is not a JSON object"),
        ("[1]", "the secret value is not a JSON object"),
    ] {
        let e = refusal(BuiltIn::MysqlSingleUser, text);
        assert_eq!(e, want);
        assert!(!e.contains("hunter2"));
    }
}
