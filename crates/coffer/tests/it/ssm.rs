//! Parameter Store through the AWS SDK for Rust (`aws-sdk-ssm`) against the real binary.

use aws_sdk_ssm::error::ProvideErrorMetadata;
use aws_sdk_ssm::types::{ParameterStringFilter, ParameterTier, ParameterType, Tag};

use crate::support::{dev_client, ssm_client, start_dev};

fn code<E: ProvideErrorMetadata>(e: &E) -> String {
    e.code().unwrap_or_default().to_string()
}

#[tokio::test]
async fn put_get_history_labels_and_paths() {
    let (_server, creds) = start_dev(&[]);
    let ssm = ssm_client(&creds);

    let out = ssm
        .put_parameter()
        .name("/app/db/host")
        .value("db.internal")
        .r#type(ParameterType::String)
        .description("database host")
        .tags(Tag::builder().key("team").value("core").build().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(out.version(), 1);
    assert_eq!(out.tier(), Some(&ParameterTier::Standard));
    ssm.put_parameter()
        .name("/app/db/hosts")
        .value("a,b")
        .r#type(ParameterType::StringList)
        .send()
        .await
        .unwrap();
    ssm.put_parameter()
        .name("/app/db/password")
        .value("s3cr3t-canary")
        .r#type(ParameterType::SecureString)
        .send()
        .await
        .unwrap();

    let p = ssm
        .get_parameter()
        .name("/app/db/host")
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap();
    assert_eq!(p.value(), Some("db.internal"));
    assert_eq!(
        p.arn(),
        Some(format!("arn:aws:ssm:us-east-1:{}:parameter/app/db/host", creds.account_id).as_str())
    );
    assert!(p.last_modified_date().is_some());

    // SecureString: ciphertext without decryption, plaintext with.
    let enc = ssm
        .get_parameter()
        .name("/app/db/password")
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap();
    assert_ne!(enc.value(), Some("s3cr3t-canary"));
    let dec = ssm
        .get_parameter()
        .name("/app/db/password")
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap();
    assert_eq!(dec.value(), Some("s3cr3t-canary"));

    // Overwrite, history, labels, selectors.
    ssm.put_parameter()
        .name("/app/db/host")
        .value("db2.internal")
        .overwrite(true)
        .send()
        .await
        .unwrap();
    ssm.label_parameter_version()
        .name("/app/db/host")
        .parameter_version(1)
        .labels("stable")
        .send()
        .await
        .unwrap();
    let old = ssm
        .get_parameter()
        .name("/app/db/host:stable")
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap();
    assert_eq!(old.value(), Some("db.internal"));
    assert_eq!(old.selector(), Some(":stable"));
    let hist = ssm.get_parameter_history().name("/app/db/host").send().await.unwrap();
    assert_eq!(hist.parameters().len(), 2);
    assert_eq!(hist.parameters()[0].labels(), ["stable".to_string()]);
    assert_eq!(hist.parameters()[1].description(), Some("database host"));

    // By path, with the SDK paginator.
    let mut names = Vec::new();
    let mut pages = ssm
        .get_parameters_by_path()
        .path("/app")
        .recursive(true)
        .with_decryption(true)
        .max_results(1)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for p in page.unwrap().parameters() {
            names.push(p.name().unwrap().to_string());
        }
    }
    names.sort();
    assert_eq!(names, ["/app/db/host", "/app/db/hosts", "/app/db/password"]);

    let described = ssm
        .describe_parameters()
        .parameter_filters(
            ParameterStringFilter::builder()
                .key("tag:team")
                .values("core")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(described.parameters().len(), 1);

    // Errors are typed.
    let e = ssm.get_parameter().name("/nope").send().await.unwrap_err();
    assert!(e.as_service_error().unwrap().is_parameter_not_found());
    let e = ssm.get_parameter().name("/app/db/host:9").send().await.unwrap_err();
    assert_eq!(code(&e.into_service_error()), "ParameterVersionNotFound");
    let e = ssm
        .put_parameter()
        .name("/app/db/host")
        .value("x")
        .send()
        .await
        .unwrap_err();
    assert!(e.as_service_error().unwrap().is_parameter_already_exists());
    let e = ssm
        .list_tags_for_resource()
        .resource_type(aws_sdk_ssm::types::ResourceTypeForTagging::Parameter)
        .resource_id("/nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "InvalidResourceId");

    let del = ssm
        .delete_parameters()
        .names("/app/db/hosts")
        .names("/missing")
        .send()
        .await
        .unwrap();
    assert_eq!(del.deleted_parameters(), ["/app/db/hosts".to_string()]);
    assert_eq!(del.invalid_parameters(), ["/missing".to_string()]);
}

#[tokio::test]
async fn secrets_manager_reference() {
    let (_server, creds) = start_dev(&[]);
    let sm = dev_client(&creds);
    let ssm = ssm_client(&creds);
    sm.create_secret()
        .name("db/creds")
        .secret_string("{\"u\":\"a\"}")
        .send()
        .await
        .unwrap();
    let p = ssm
        .get_parameter()
        .name("/aws/reference/secretsmanager/db/creds")
        .with_decryption(true)
        .send()
        .await
        .unwrap()
        .parameter
        .unwrap();
    assert_eq!(p.value(), Some("{\"u\":\"a\"}"));
    assert_eq!(p.r#type(), Some(&ParameterType::SecureString));
    assert!(p.source_result().unwrap().contains("db/creds"));
    let e = ssm
        .get_parameter()
        .name("/aws/reference/secretsmanager/db/creds")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&e.into_service_error()), "ValidationException");
}
