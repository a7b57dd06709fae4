//! Secrets Manager through the AWS SDK for Rust: the operations and their AWS semantics.

use aws_sdk_secretsmanager::primitives::Blob;
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType, Tag};

use crate::support::*;

#[tokio::test]
async fn create_get_put_versions_and_staging_labels() {
    let (_p, c) = start_dev(&[]);
    let sm = dev_client(&c);
    let created = sm
        .create_secret()
        .name("app/db-password")
        .description("the db password")
        .secret_string("first")
        .tags(Tag::builder().key("team").value("payments").build())
        .send()
        .await
        .unwrap();
    let arn = created.arn().unwrap().to_string();
    let v1 = created.version_id().unwrap().to_string();
    assert!(arn.starts_with(&format!(
        "arn:aws:secretsmanager:us-east-1:{}:secret:app/db-password-",
        c.account_id
    )));
    assert_eq!(
        arn.len(),
        format!(
            "arn:aws:secretsmanager:us-east-1:{}:secret:app/db-password-",
            c.account_id
        )
        .len()
            + 6
    );

    let got = sm.get_secret_value().secret_id("app/db-password").send().await.unwrap();
    assert_eq!(got.secret_string(), Some("first"));
    assert_eq!(got.version_id(), Some(v1.as_str()));
    assert_eq!(got.version_stages(), ["AWSCURRENT"]);

    let put = sm
        .put_secret_value()
        .secret_id(&arn)
        .secret_string("second")
        .send()
        .await
        .unwrap();
    let v2 = put.version_id().unwrap().to_string();
    assert_eq!(put.version_stages(), ["AWSCURRENT"]);

    // Full ARN, partial ARN (no suffix) and name all find it.
    let partial = &arn[..arn.len() - 7];
    for id in [arn.as_str(), partial, "app/db-password"] {
        let g = sm.get_secret_value().secret_id(id).send().await.unwrap();
        assert_eq!(g.secret_string(), Some("second"), "lookup by {id}");
    }
    let prev = sm
        .get_secret_value()
        .secret_id("app/db-password")
        .version_stage("AWSPREVIOUS")
        .send()
        .await
        .unwrap();
    assert_eq!(prev.secret_string(), Some("first"));
    assert_eq!(prev.version_id(), Some(v1.as_str()));

    let d = sm.describe_secret().secret_id("app/db-password").send().await.unwrap();
    let stages = d.version_ids_to_stages().unwrap();
    assert_eq!(stages[&v1], ["AWSPREVIOUS"]);
    assert_eq!(stages[&v2], ["AWSCURRENT"]);
    assert_eq!(d.description(), Some("the db password"));
    assert_eq!(d.tags()[0].key(), Some("team"));
    assert!(d.kms_key_id().is_none(), "the default key is not reported");
    assert!(
        d.rotation_enabled().is_none(),
        "no RotationEnabled before rotation was configured"
    );

    // A custom label, moved explicitly.
    sm.update_secret_version_stage()
        .secret_id("app/db-password")
        .version_stage("blue")
        .move_to_version_id(&v1)
        .send()
        .await
        .unwrap();
    let blue = sm
        .get_secret_value()
        .secret_id("app/db-password")
        .version_stage("blue")
        .send()
        .await
        .unwrap();
    assert_eq!(blue.secret_string(), Some("first"));

    let versions = sm
        .list_secret_version_ids()
        .secret_id("app/db-password")
        .send()
        .await
        .unwrap();
    assert_eq!(versions.versions().len(), 2);
}

#[tokio::test]
async fn idempotency_tokens_follow_aws() {
    let (_p, c) = start_dev(&[]);
    let sm = dev_client(&c);
    let token = "11111111-2222-3333-4444-555555555555";
    sm.create_secret().name("idem").secret_string("a").send().await.unwrap();
    let p1 = sm
        .put_secret_value()
        .secret_id("idem")
        .client_request_token(token)
        .secret_string("b")
        .send()
        .await
        .unwrap();
    assert_eq!(p1.version_id(), Some(token));
    // Same token, same value: a no-op that returns the same version.
    let p2 = sm
        .put_secret_value()
        .secret_id("idem")
        .client_request_token(token)
        .secret_string("b")
        .send()
        .await
        .unwrap();
    assert_eq!(p2.version_id(), Some(token));
    // Same token, other value: ResourceExistsException.
    let e = sm
        .put_secret_value()
        .secret_id("idem")
        .client_request_token(token)
        .secret_string("c")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ResourceExistsException");
    let cur = sm.get_secret_value().secret_id("idem").send().await.unwrap();
    assert_eq!(cur.secret_string(), Some("b"));
    // A second CreateSecret with the same name.
    let e = sm
        .create_secret()
        .name("idem")
        .secret_string("x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ResourceExistsException");
}

#[tokio::test]
async fn binary_secrets_round_trip() {
    let (_p, c) = start_dev(&[]);
    let sm = dev_client(&c);
    let bytes: Vec<u8> = (0u8..=255).collect();
    sm.create_secret()
        .name("bin")
        .secret_binary(Blob::new(bytes.clone()))
        .send()
        .await
        .unwrap();
    let got = sm.get_secret_value().secret_id("bin").send().await.unwrap();
    assert_eq!(got.secret_binary().unwrap().as_ref(), bytes.as_slice());
    assert!(got.secret_string().is_none());
}

#[tokio::test]
async fn size_and_name_limits() {
    let (_p, c) = start_dev(&[]);
    let sm = dev_client(&c);
    let max = "x".repeat(65_536);
    sm.create_secret().name("big").secret_string(&max).send().await.unwrap();
    let got = sm.get_secret_value().secret_id("big").send().await.unwrap();
    assert_eq!(got.secret_string().map(str::len), Some(65_536));
    let e = sm
        .put_secret_value()
        .secret_id("big")
        .secret_string(format!("{max}x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ValidationException");
    let e = sm
        .create_secret()
        .name("bad name*")
        .secret_string("v")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ValidationException");
    let e = sm
        .get_secret_value()
        .secret_id("does/not/exist")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ResourceNotFoundException");
}

#[tokio::test]
async fn delete_restore_and_recovery_window() {
    let (_p, c) = start_dev(&["--dev-allow-reset"]);
    let sm = dev_client(&c);
    sm.create_secret()
        .name("del/me")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    let e = sm
        .delete_secret()
        .secret_id("del/me")
        .recovery_window_in_days(3)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "InvalidParameterException");
    let d = sm
        .delete_secret()
        .secret_id("del/me")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert!(d.deletion_date().is_some());
    let e = sm.get_secret_value().secret_id("del/me").send().await.unwrap_err();
    assert_eq!(err_code(&e), "InvalidRequestException");
    let listed = sm.list_secrets().send().await.unwrap();
    assert!(listed.secret_list().iter().all(|s| s.name() != Some("del/me")));
    let listed = sm.list_secrets().include_planned_deletion(true).send().await.unwrap();
    assert!(listed.secret_list().iter().any(|s| s.name() == Some("del/me")));
    sm.restore_secret().secret_id("del/me").send().await.unwrap();
    assert_eq!(
        sm.get_secret_value()
            .secret_id("del/me")
            .send()
            .await
            .unwrap()
            .secret_string(),
        Some("v")
    );

    // When the window ends, the secret is really gone (the dev clock is moved 8 days on).
    sm.delete_secret()
        .secret_id("del/me")
        .recovery_window_in_days(7)
        .send()
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/v1/sys/coffer/clock", c.endpoint))
        .json(&serde_json::json!({ "advance_seconds": 8 * 86_400 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let e = sm.describe_secret().secret_id("del/me").send().await.unwrap_err();
    assert_eq!(err_code(&e), "ResourceNotFoundException");
    // The name is free again.
    sm.create_secret()
        .name("del/me")
        .secret_string("new")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn list_filters_and_pagination() {
    let (_p, c) = start_dev(&[]);
    let sm = dev_client(&c);
    for i in 0..25 {
        let name = if i % 2 == 0 {
            format!("ci/app-{i:02}")
        } else {
            format!("prod/app-{i:02}")
        };
        sm.create_secret().name(name).secret_string("v").send().await.unwrap();
    }
    let mut names = Vec::new();
    let mut token = None;
    loop {
        let page = sm
            .list_secrets()
            .max_results(10)
            .set_next_token(token)
            .send()
            .await
            .unwrap();
        assert!(page.secret_list().len() <= 10);
        names.extend(page.secret_list().iter().filter_map(|s| s.name().map(str::to_string)));
        token = page.next_token().map(str::to_string);
        if token.is_none() {
            break;
        }
    }
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 25);
    let ci = sm
        .list_secrets()
        .filters(Filter::builder().key(FilterNameStringType::Name).values("ci/").build())
        .send()
        .await
        .unwrap();
    assert_eq!(ci.secret_list().len(), 13);
    let batch = sm
        .batch_get_secret_value()
        .secret_id_list("ci/app-00")
        .secret_id_list("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(batch.secret_values().len(), 1);
    assert_eq!(batch.errors().len(), 1);
    assert_eq!(batch.errors()[0].error_code(), Some("ResourceNotFoundException"));
}

#[tokio::test]
async fn get_random_password_honours_options() {
    let (_p, c) = start_dev(&[]);
    let sm = dev_client(&c);
    let p = sm.get_random_password().send().await.unwrap();
    assert_eq!(p.random_password().unwrap().len(), 32);
    let p = sm
        .get_random_password()
        .password_length(64)
        .exclude_punctuation(true)
        .exclude_characters("abc")
        .send()
        .await
        .unwrap();
    let pw = p.random_password().unwrap();
    assert_eq!(pw.len(), 64);
    assert!(
        pw.chars().all(|ch| ch.is_ascii_alphanumeric() && !"abc".contains(ch)),
        "{pw}"
    );
}

#[tokio::test]
async fn concurrent_puts_lose_no_version() {
    let (_p, c) = start_dev(&[]);
    let sm = dev_client(&c);
    sm.create_secret().name("race").secret_string("0").send().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let sm = sm.clone();
        tasks.push(tokio::spawn(async move {
            sm.put_secret_value()
                .secret_id("race")
                .secret_string(format!("v{i}"))
                .send()
                .await
                .unwrap()
                .version_id()
                .unwrap()
                .to_string()
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    for id in &ids {
        let v = sm
            .get_secret_value()
            .secret_id("race")
            .version_id(id)
            .send()
            .await
            .unwrap();
        assert!(v.secret_string().unwrap().starts_with('v'));
    }
    let d = sm.describe_secret().secret_id("race").send().await.unwrap();
    let stages = d.version_ids_to_stages().unwrap();
    assert_eq!(
        stages.values().filter(|s| s.iter().any(|x| x == "AWSCURRENT")).count(),
        1
    );
    assert_eq!(
        stages.values().filter(|s| s.iter().any(|x| x == "AWSPREVIOUS")).count(),
        1
    );
}
