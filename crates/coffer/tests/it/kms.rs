//! KMS through the AWS SDK for Rust against the real binary: keys, envelope encryption with a
//! context, rotation, key states, signatures and aliases.

use aws_credential_types::Credentials;
use aws_sdk_kms as kms;
use kms::primitives::Blob;
use kms::types::{KeySpec, KeyUsageType, MessageType, SigningAlgorithmSpec};

use crate::support::start_dev;

pub(crate) fn client(c: &coffer_testkit::DevCredentials) -> kms::Client {
    let creds = Credentials::new(&c.access_key_id, &c.secret_access_key, None, None, "coffer-tests");
    let conf = kms::Config::builder()
        .behavior_version(kms::config::BehaviorVersion::latest())
        .region(kms::config::Region::new("us-east-1"))
        .endpoint_url(&c.endpoint)
        .credentials_provider(creds)
        .retry_config(kms::config::retry::RetryConfig::disabled())
        .build();
    kms::Client::from_conf(conf)
}

fn code<E, R>(e: &kms::error::SdkError<E, R>) -> String
where
    E: kms::error::ProvideErrorMetadata + std::fmt::Debug,
    R: std::fmt::Debug,
{
    match e {
        kms::error::SdkError::ServiceError(se) => se.err().code().unwrap_or("").to_string(),
        other => format!("not a service error: {other:?}"),
    }
}

#[tokio::test]
async fn envelope_encryption_rotation_and_states() {
    let (_p, c) = start_dev(&[]);
    let k = client(&c);
    let meta = k
        .create_key()
        .description("it")
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap();
    let id = meta.key_id().to_string();

    let enc = k
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"top secret".to_vec()))
        .encryption_context("app", "it")
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), meta.arn());
    let before = enc.ciphertext_blob.unwrap();
    let dec = k
        .decrypt()
        .ciphertext_blob(before.clone())
        .encryption_context("app", "it")
        .send()
        .await
        .unwrap();
    assert_eq!(dec.plaintext.unwrap().as_ref(), b"top secret");

    // Context changed: InvalidCiphertextException.
    let err = k
        .decrypt()
        .ciphertext_blob(before.clone())
        .encryption_context("app", "other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidCiphertextException");

    // Rotate on demand: old and new ciphertexts decrypt.
    k.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    let after = k
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"newer".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();
    let old = k
        .decrypt()
        .ciphertext_blob(before.clone())
        .encryption_context("app", "it")
        .send()
        .await
        .unwrap();
    assert_eq!(old.plaintext.unwrap().as_ref(), b"top secret");
    let new = k.decrypt().ciphertext_blob(after).send().await.unwrap();
    assert_eq!(new.plaintext.unwrap().as_ref(), b"newer");
    let rotations = k.list_key_rotations().key_id(&id).send().await.unwrap();
    assert_eq!(rotations.rotations().len(), 1);

    // Disabled key: DisabledException; enabled again: works.
    k.disable_key().key_id(&id).send().await.unwrap();
    let err = k
        .decrypt()
        .ciphertext_blob(before.clone())
        .encryption_context("app", "it")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "DisabledException");
    k.enable_key().key_id(&id).send().await.unwrap();
    k.decrypt()
        .ciphertext_blob(before)
        .encryption_context("app", "it")
        .send()
        .await
        .unwrap();

    // GenerateDataKey and its decryption.
    let dk = k
        .generate_data_key()
        .key_id(&id)
        .key_spec(kms::types::DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    let plain = dk.plaintext.unwrap();
    assert_eq!(plain.as_ref().len(), 32);
    let back = k
        .decrypt()
        .ciphertext_blob(dk.ciphertext_blob.unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext.unwrap().as_ref(), plain.as_ref());

    // Scheduled deletion.
    let s = k
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(s.key_state().map(|s| s.as_str()), Some("PendingDeletion"));
    let err = k
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
}

#[tokio::test]
async fn signatures_and_aliases() {
    let (_p, c) = start_dev(&[]);
    let k = client(&c);
    for (spec, alg) in [
        (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPssSha256),
        (KeySpec::Rsa2048, SigningAlgorithmSpec::RsassaPkcs1V15Sha512),
        (KeySpec::EccNistP256, SigningAlgorithmSpec::EcdsaSha256),
        (KeySpec::EccNistP384, SigningAlgorithmSpec::EcdsaSha384),
    ] {
        let meta = k
            .create_key()
            .key_spec(spec.clone())
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
            .unwrap()
            .key_metadata
            .unwrap();
        let id = meta.key_id().to_string();
        let sig = k
            .sign()
            .key_id(&id)
            .message(Blob::new(b"hello".to_vec()))
            .message_type(MessageType::Raw)
            .signing_algorithm(alg.clone())
            .send()
            .await
            .unwrap()
            .signature
            .unwrap();
        let v = k
            .verify()
            .key_id(&id)
            .message(Blob::new(b"hello".to_vec()))
            .signature(sig.clone())
            .signing_algorithm(alg.clone())
            .send()
            .await
            .unwrap();
        assert!(v.signature_valid());
        let err = k
            .verify()
            .key_id(&id)
            .message(Blob::new(b"tampered".to_vec()))
            .signature(sig)
            .signing_algorithm(alg.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "KMSInvalidSignatureException");
        let pk = k.get_public_key().key_id(&id).send().await.unwrap();
        assert!(pk.public_key.unwrap().as_ref().len() > 60);
    }

    let meta = k.create_key().send().await.unwrap().key_metadata.unwrap();
    k.create_alias()
        .alias_name("alias/it-app")
        .target_key_id(meta.arn().unwrap())
        .send()
        .await
        .unwrap();
    let enc = k
        .encrypt()
        .key_id("alias/it-app")
        .plaintext(Blob::new(b"v".to_vec()))
        .send()
        .await
        .unwrap();
    assert_eq!(enc.key_id(), meta.arn());
    let err = k
        .create_alias()
        .alias_name("alias/it-app")
        .target_key_id(meta.key_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AlreadyExistsException");
    let aliases = k.list_aliases().key_id(meta.key_id()).send().await.unwrap();
    assert_eq!(aliases.aliases()[0].alias_name(), Some("alias/it-app"));
    // The AWS-managed key is created on first use.
    let managed = k
        .describe_key()
        .key_id("alias/aws/secretsmanager")
        .send()
        .await
        .unwrap();
    assert_eq!(
        managed.key_metadata.unwrap().key_manager().map(|m| m.as_str()),
        Some("AWS")
    );
    k.delete_alias().alias_name("alias/it-app").send().await.unwrap();
    let err = k.describe_key().key_id("alias/it-app").send().await.unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
}

#[tokio::test]
async fn ciphertext_moved_to_another_key_is_refused() {
    let (_p, c) = start_dev(&[]);
    let k = client(&c);
    let a = k.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let b = k.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    let blob = k
        .encrypt()
        .key_id(&a)
        .plaintext(Blob::new(b"for key a only".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap()
        .into_inner();
    // The blob names its key: rewrite that name to key B (same length), leaving the rest.
    let pos = blob
        .windows(a.len())
        .position(|w| w == a.as_bytes())
        .expect("blob names its key");
    let mut moved = blob.clone();
    moved[pos..pos + b.len()].copy_from_slice(b.as_bytes());
    let err = k
        .decrypt()
        .ciphertext_blob(Blob::new(moved.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidCiphertextException");
    let err = k
        .decrypt()
        .ciphertext_blob(Blob::new(moved))
        .key_id(&b)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidCiphertextException");
    // The untouched blob with the wrong KeyId: IncorrectKeyException, as AWS answers.
    let err = k
        .decrypt()
        .ciphertext_blob(Blob::new(blob.clone()))
        .key_id(&b)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "IncorrectKeyException");
    let ok = k.decrypt().ciphertext_blob(Blob::new(blob)).send().await.unwrap();
    assert_eq!(ok.plaintext.unwrap().as_ref(), b"for key a only");
}
