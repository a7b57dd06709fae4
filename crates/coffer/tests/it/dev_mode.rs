//! `coffer server --dev`: the banner, the dev-only flags, the reset endpoint.

use std::time::Duration;

use crate::support::*;

#[tokio::test]
async fn banner_prints_endpoint_credentials_and_copy_paste_lines() {
    let (p, c) = start_dev(&[]);
    assert!(c.endpoint.starts_with("http://127.0.0.1:"), "{}", c.endpoint);
    assert!(c.access_key_id.starts_with("AKIA") && c.access_key_id.len() == 20);
    assert_eq!(c.secret_access_key.len(), 40);
    assert!(c.root_token.starts_with("hvs."));
    assert_eq!(c.account_id.len(), 12);
    let out = p.stdout();
    for line in [
        format!("export AWS_ENDPOINT_URL={}", c.endpoint),
        format!("export AWS_ACCESS_KEY_ID={}", c.access_key_id),
        format!("export AWS_SECRET_ACCESS_KEY={}", c.secret_access_key),
        "export AWS_DEFAULT_REGION=us-east-1".to_string(),
        format!("export VAULT_TOKEN={}", c.root_token),
        format!(
            "aws --endpoint-url {} secretsmanager get-secret-value --secret-id demo/db-password",
            c.endpoint
        ),
    ] {
        assert!(out.contains(&line), "banner lacks {line:?}:\n{out}");
    }
    // The printed credentials work.
    let client = dev_client(&c);
    client
        .create_secret()
        .name("banner/check")
        .secret_string("v")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn conformance_flags_fix_the_key_and_account() {
    let (_p, c) = start_dev(&[
        "--dev-access-key",
        "testing:testing",
        "--dev-account-id",
        "123456789012",
    ]);
    assert_eq!(c.access_key_id, "testing");
    assert_eq!(c.account_id, "123456789012");
    let client = sm_client_region(&c.endpoint, "testing", "testing", "eu-west-1");
    let out = client
        .create_secret()
        .name("flags/x")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    let arn = out.arn().unwrap();
    assert!(
        arn.starts_with("arn:aws:secretsmanager:eu-west-1:123456789012:secret:flags/x-"),
        "{arn}"
    );
    // The key is still verified: a wrong secret for the same id is refused.
    let bad = sm_client(&c.endpoint, "testing", "nottesting");
    let e = bad.list_secrets().send().await.unwrap_err();
    assert_eq!(err_code(&e), "InvalidSignatureException");
}

#[tokio::test]
async fn dev_flags_require_dev_mode() {
    let (code, _out, err) = coffer_testkit::run(bin(), &["server", "--dev-allow-reset"], &[]).unwrap();
    assert_ne!(code, 0);
    assert!(err.contains("--dev"), "{err}");
}

#[tokio::test]
async fn moto_reset_needs_the_flag_and_wipes_data() {
    let (_p, c) = start_dev(&[]);
    let r = reqwest::Client::new()
        .post(format!("{}/moto-api/reset", c.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        400,
        "reset must be refused without --dev-allow-reset"
    );

    let (_p2, c2) = start_dev(&["--dev-allow-reset"]);
    let client = dev_client(&c2);
    client
        .create_secret()
        .name("reset/me")
        .secret_string("v")
        .send()
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/moto-api/reset", c2.endpoint))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let e = client
        .get_secret_value()
        .secret_id("reset/me")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_code(&e), "ResourceNotFoundException");
    // Credentials survive a reset.
    client
        .create_secret()
        .name("reset/again")
        .secret_string("v")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn dev_storage_file_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.redb");
    let path_s = path.to_str().unwrap();
    let port = coffer_testkit::free_port().unwrap().to_string();
    let listen = format!("127.0.0.1:{port}");
    let args = ["server", "--dev", "--listen", listen.as_str(), "--dev-storage", path_s];
    let mut p = coffer_testkit::CofferProcess::start(bin(), &args, &[]).unwrap();
    p.wait_for_line("Endpoint:", Duration::from_secs(20)).unwrap();
    let akid = p.wait_for_line("Root access key id:", Duration::from_secs(5)).unwrap();
    let secret = p.wait_for_line("Root secret key:", Duration::from_secs(5)).unwrap();
    let akid = akid.split_once(':').unwrap().1.trim().to_string();
    let secret = secret.split_once(':').unwrap().1.trim().to_string();
    let endpoint = format!("http://{listen}");
    sm_client(&endpoint, &akid, &secret)
        .create_secret()
        .name("dev/persist")
        .secret_string("kept")
        .send()
        .await
        .unwrap();
    assert!(p.terminate(Duration::from_secs(10)), "server did not stop on SIGTERM");
    drop(p);

    let mut p = coffer_testkit::CofferProcess::start(bin(), &args, &[]).unwrap();
    p.wait_for_line("Endpoint:", Duration::from_secs(20)).unwrap();
    let v = sm_client(&endpoint, &akid, &secret)
        .get_secret_value()
        .secret_id("dev/persist")
        .send()
        .await
        .unwrap();
    assert_eq!(v.secret_string(), Some("kept"));
}
