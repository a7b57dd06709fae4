//! `coffer audit search`: filters by identity, event, resource, time and outcome.

use std::sync::Arc;

use coffer_audit::{AuditBroker, AuditEvent, DeviceKey, FileDevice, Filter, Outcome, ResourceMatch, search};

use crate::{at, get_secret_value, secret_arn, user};

fn log_mixed(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let key = DeviceKey::generate().unwrap();
    let dev = Arc::new(FileDevice::open("file/", dir.join("audit.log"), 3000).unwrap());
    let mut broker = AuditBroker::new();
    broker.add_device(dev.clone(), &key).unwrap();
    for i in 0..9 {
        broker.log(&get_secret_value(i)).unwrap();
    }
    let bob = AuditEvent::aws("secretsmanager", "DeleteSecret", user("bob"), at(100), "req-bob")
        .request(serde_json::json!({ "SecretId": "app-1" }))
        .resource(secret_arn("app-1"), "AWS::SecretsManager::Secret", None)
        .denied("User: arn:aws:iam::111122223333:user/bob is not authorized");
    broker.log(&bob).unwrap();
    let failed =
        AuditEvent::aws("kms", "Decrypt", user("bob"), at(101), "req-kms").error("InvalidCiphertextException", "");
    broker.log(&failed).unwrap();
    dev.files().unwrap()
}

fn names(files: &[std::path::PathBuf], f: &Filter) -> Vec<(String, String)> {
    search(files, f)
        .unwrap()
        .map(|r| r.unwrap())
        .map(|e| (e.event.event_name.clone(), e.event.request_id.clone()))
        .collect()
}

#[test]
fn filters() {
    let dir = tempfile::tempdir().unwrap();
    let files = log_mixed(dir.path());
    assert!(files.len() > 1, "rotated");
    assert_eq!(names(&files, &Filter::default()).len(), 11);

    // Identity by ARN, user name, access key id.
    for who in ["arn:aws:iam::111122223333:user/bob", "bob", "AKIABOB"] {
        let f = Filter {
            identity: Some(who.to_owned()),
            ..Filter::default()
        };
        assert_eq!(
            names(&files, &f),
            [
                ("DeleteSecret".into(), "req-bob".into()),
                ("Decrypt".into(), "req-kms".into())
            ]
        );
    }
    let f = Filter {
        event_name: Some("GetSecretValue".into()),
        ..Filter::default()
    };
    assert_eq!(names(&files, &f).len(), 9);
    let f = Filter {
        resource: Some(ResourceMatch::Exact(secret_arn("app-1"))),
        ..Filter::default()
    };
    assert_eq!(names(&files, &f).len(), 4); // 1, 4, 7 and bob's delete
    let f = Filter {
        resource: Some(ResourceMatch::Contains("secret:app-2".into())),
        ..Filter::default()
    };
    assert_eq!(names(&files, &f).len(), 3);
    let f = Filter {
        since: Some(at(3)),
        until: Some(at(5)),
        ..Filter::default()
    };
    let got = names(&files, &f);
    assert_eq!(
        got.iter().map(|(_, r)| r.as_str()).collect::<Vec<_>>(),
        ["req-3", "req-4", "req-5"]
    );
    let f = Filter {
        outcome: Some(Outcome::Denied),
        ..Filter::default()
    };
    assert_eq!(names(&files, &f), [("DeleteSecret".into(), "req-bob".into())]);
    let f = Filter {
        outcome: Some(Outcome::Failed),
        ..Filter::default()
    };
    assert_eq!(names(&files, &f), [("Decrypt".into(), "req-kms".into())]);
    let f = Filter {
        identity: Some("alice".into()),
        event_source: Some("secretsmanager.amazonaws.com".into()),
        resource: Some(ResourceMatch::Contains("app-0".into())),
        outcome: Some(Outcome::Allowed),
        ..Filter::default()
    };
    assert_eq!(names(&files, &f).len(), 3);
}

#[test]
fn search_reads_back_redacted_events_with_locations() {
    let dir = tempfile::tempdir().unwrap();
    let files = log_mixed(dir.path());
    let first = search(&files, &Filter::default()).unwrap().next().unwrap().unwrap();
    assert_eq!((first.seq, first.line), (1, 1));
    let secret = &first.event.response_elements.as_ref().unwrap()["SecretString"];
    assert!(secret.as_str().unwrap().starts_with("hmac-sha256:"));
    assert!(!first.json.contains("\"coffer\""));
    let v: serde_json::Value = serde_json::from_str(&first.json).unwrap();
    assert_eq!(v["eventName"], "GetSecretValue");
}
