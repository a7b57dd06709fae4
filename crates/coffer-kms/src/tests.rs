//! Unit tests of the engine over `MemoryStorage`: every operation's happy path and errors.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_engines::contracts::KeyService;
use coffer_engines::{AwsError, AwsErrorCode, RequestContext};
use coffer_storage::memory::MemoryStorage;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::KmsEngine;

fn engine() -> KmsEngine {
    KmsEngine::new(Arc::new(MemoryStorage::new()))
}

fn ctx() -> RequestContext {
    ctx_at(OffsetDateTime::now_utc())
}

fn ctx_at(now: OffsetDateTime) -> RequestContext {
    RequestContext {
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        principal_arn: "arn:aws:iam::123456789012:root".into(),
        now,
    }
}

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

fn unb64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

async fn call(e: &KmsEngine, op: &str, input: Value) -> Value {
    match e.handle(&ctx(), op, input).await {
        Ok(v) => v,
        Err(err) => panic!("{op} failed: {err}"),
    }
}

async fn fail(e: &KmsEngine, op: &str, input: Value) -> AwsError {
    match e.handle(&ctx(), op, input).await {
        Ok(v) => panic!("{op} unexpectedly succeeded: {v}"),
        Err(err) => err,
    }
}

async fn key(e: &KmsEngine, input: Value) -> Value {
    call(e, "CreateKey", input).await["KeyMetadata"].clone()
}

#[tokio::test]
async fn create_describe_list_keys() {
    let e = engine();
    let k = key(
        &e,
        json!({"Description": "d", "Tags": [{"TagKey": "a", "TagValue": "b"}]}),
    )
    .await;
    assert_eq!(k["KeySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(k["KeyUsage"], "ENCRYPT_DECRYPT");
    assert_eq!(k["KeyManager"], "CUSTOMER");
    assert_eq!(k["EncryptionAlgorithms"], json!(["SYMMETRIC_DEFAULT"]));
    assert_eq!(
        k["Arn"],
        format!(
            "arn:aws:kms:us-east-1:123456789012:key/{}",
            k["KeyId"].as_str().unwrap()
        )
    );
    assert!(k["CurrentKeyMaterialId"].as_str().unwrap().len() == 64);
    let d = call(&e, "DescribeKey", json!({"KeyId": k["Arn"]})).await;
    assert_eq!(d["KeyMetadata"]["Description"], "d");
    let s = key(&e, json!({"KeySpec": "ECC_NIST_P384", "KeyUsage": "SIGN_VERIFY"})).await;
    assert_eq!(s["SigningAlgorithms"], json!(["ECDSA_SHA_384"]));
    assert!(s.get("EncryptionAlgorithms").is_none());
    let h = key(&e, json!({"KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"})).await;
    assert_eq!(h["MacAlgorithms"], json!(["HMAC_SHA_256"]));

    let page = call(&e, "ListKeys", json!({"Limit": 2})).await;
    assert_eq!(page["Keys"].as_array().unwrap().len(), 2);
    assert_eq!(page["Truncated"], true);
    let rest = call(&e, "ListKeys", json!({"Marker": page["NextMarker"]})).await;
    assert_eq!(rest["Keys"].as_array().unwrap().len(), 1);
    assert_eq!(rest["Truncated"], false);

    // Errors.
    assert_eq!(
        fail(&e, "CreateKey", json!({"KeySpec": "RSA_2048"})).await.message,
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
    );
    let err = fail(&e, "CreateKey", json!({"KeySpec": "NOPE"})).await;
    assert_eq!(err.code, AwsErrorCode::ValidationException);
    assert_eq!(
        fail(&e, "CreateKey", json!({"Policy": "my policy"})).await.code,
        AwsErrorCode::MalformedPolicyDocumentException
    );
    assert_eq!(
        fail(&e, "CreateKey", json!({"Tags": [{"TagKey": "aws:x", "TagValue": ""}]}))
            .await
            .code,
        AwsErrorCode::TagException
    );
    let missing = "d25652e4-d2d2-49f7-929a-671ccda580c6";
    let err = fail(&e, "DescribeKey", json!({"KeyId": missing})).await;
    assert_eq!(err.code, AwsErrorCode::NotFoundException);
    assert_eq!(
        err.message,
        format!("Key 'arn:aws:kms:us-east-1:123456789012:key/{missing}' does not exist")
    );
    assert_eq!(
        fail(&e, "DescribeKey", json!({"KeyId": "invalid"})).await.message,
        "Invalid keyId invalid"
    );
    assert_eq!(
        fail(&e, "Nope", json!({})).await.code,
        AwsErrorCode::UnknownOperationException
    );
}

#[tokio::test]
async fn encrypt_decrypt_with_context_and_errors() {
    let e = engine();
    let k = key(&e, json!({})).await;
    let other = key(&e, json!({})).await;
    let ctx_map = json!({"purpose": "test", "a": "b"});
    let enc = call(
        &e,
        "Encrypt",
        json!({"KeyId": k["KeyId"], "Plaintext": b64(b"hello"), "EncryptionContext": ctx_map}),
    )
    .await;
    assert_eq!(enc["KeyId"], k["Arn"]);
    let dec = call(
        &e,
        "Decrypt",
        json!({"CiphertextBlob": enc["CiphertextBlob"], "EncryptionContext": ctx_map}),
    )
    .await;
    assert_eq!(unb64(&dec["Plaintext"]), b"hello");
    assert_eq!(dec["KeyId"], k["Arn"]);
    assert_eq!(dec["KeyMaterialId"], k["CurrentKeyMaterialId"]);

    // Context changed or missing.
    for bad in [
        json!({"purpose": "test"}),
        json!({"purpose": "test", "a": "c"}),
        json!({}),
    ] {
        let err = fail(
            &e,
            "Decrypt",
            json!({"CiphertextBlob": enc["CiphertextBlob"], "EncryptionContext": bad}),
        )
        .await;
        assert_eq!(err.code, AwsErrorCode::InvalidCiphertextException);
        assert_eq!(err.message, "");
    }
    // Wrong KeyId.
    let err = fail(
        &e,
        "Decrypt",
        json!({"CiphertextBlob": enc["CiphertextBlob"], "EncryptionContext": ctx_map, "KeyId": other["KeyId"]}),
    )
    .await;
    assert_eq!(err.code, AwsErrorCode::IncorrectKeyException);
    // Blob moved to another key (header rewritten) and garbage.
    let mut moved = unb64(&enc["CiphertextBlob"]);
    let other_id = other["KeyId"].as_str().unwrap().as_bytes().to_vec();
    moved[2..2 + other_id.len()].copy_from_slice(&other_id);
    let err = fail(
        &e,
        "Decrypt",
        json!({"CiphertextBlob": b64(&moved), "EncryptionContext": ctx_map}),
    )
    .await;
    assert_eq!(err.code, AwsErrorCode::InvalidCiphertextException);
    let err = fail(
        &e,
        "Decrypt",
        json!({"CiphertextBlob": b64(b"garbage garbage garbage garbage garbage")}),
    )
    .await;
    assert_eq!(err.code, AwsErrorCode::InvalidCiphertextException);
    // Limits.
    let err = fail(
        &e,
        "Encrypt",
        json!({"KeyId": k["KeyId"], "Plaintext": b64(&[0u8; 4097])}),
    )
    .await;
    assert_eq!(
        err.message,
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
    );
    assert_eq!(
        fail(&e, "Encrypt", json!({"KeyId": k["KeyId"], "Plaintext": ""}))
            .await
            .code,
        AwsErrorCode::ValidationException
    );

    // ReEncrypt moves the plaintext to the other key and context.
    let re = call(&e, "ReEncrypt", json!({"CiphertextBlob": enc["CiphertextBlob"], "SourceEncryptionContext": ctx_map, "DestinationKeyId": other["Arn"], "DestinationEncryptionContext": {"x": "y"}})).await;
    assert_eq!(re["SourceKeyId"], k["Arn"]);
    assert_eq!(re["KeyId"], other["Arn"]);
    let dec = call(
        &e,
        "Decrypt",
        json!({"CiphertextBlob": re["CiphertextBlob"], "EncryptionContext": {"x": "y"}}),
    )
    .await;
    assert_eq!(unb64(&dec["Plaintext"]), b"hello");
}

#[tokio::test]
async fn key_states_govern_use() {
    let e = engine();
    let k = key(&e, json!({})).await;
    let id = k["KeyId"].clone();
    let enc = call(&e, "Encrypt", json!({"KeyId": id, "Plaintext": b64(b"x")})).await;
    call(&e, "DisableKey", json!({"KeyId": id})).await;
    let err = fail(&e, "Decrypt", json!({"CiphertextBlob": enc["CiphertextBlob"]})).await;
    assert_eq!(err.code, AwsErrorCode::DisabledException);
    assert_eq!(err.message, format!("{} is disabled.", k["Arn"].as_str().unwrap()));
    call(&e, "EnableKey", json!({"KeyId": id})).await;
    call(&e, "Decrypt", json!({"CiphertextBlob": enc["CiphertextBlob"]})).await;

    let sched = call(
        &e,
        "ScheduleKeyDeletion",
        json!({"KeyId": id, "PendingWindowInDays": 7}),
    )
    .await;
    assert_eq!(sched["KeyState"], "PendingDeletion");
    let err = fail(&e, "Encrypt", json!({"KeyId": id, "Plaintext": b64(b"x")})).await;
    assert_eq!(err.code, AwsErrorCode::KMSInvalidStateException);
    assert_eq!(
        err.message,
        format!("{} is pending deletion.", k["Arn"].as_str().unwrap())
    );
    assert_eq!(
        fail(&e, "ScheduleKeyDeletion", json!({"KeyId": id})).await.code,
        AwsErrorCode::KMSInvalidStateException
    );
    assert_eq!(
        fail(
            &e,
            "ScheduleKeyDeletion",
            json!({"KeyId": id, "PendingWindowInDays": 6})
        )
        .await
        .code,
        AwsErrorCode::ValidationException
    );
    call(&e, "CancelKeyDeletion", json!({"KeyId": id})).await;
    let d = call(&e, "DescribeKey", json!({"KeyId": id})).await;
    assert_eq!(d["KeyMetadata"]["KeyState"], "Disabled");
    assert!(d["KeyMetadata"].get("DeletionDate").is_none());

    // The waiting period really ends: background deletes the key, its aliases too.
    call(&e, "EnableKey", json!({"KeyId": id})).await;
    call(
        &e,
        "CreateAlias",
        json!({"AliasName": "alias/doomed", "TargetKeyId": id}),
    )
    .await;
    call(
        &e,
        "ScheduleKeyDeletion",
        json!({"KeyId": id, "PendingWindowInDays": 7}),
    )
    .await;
    assert_eq!(
        e.background(OffsetDateTime::now_utc() + time::Duration::days(6))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        e.background(OffsetDateTime::now_utc() + time::Duration::days(8))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        fail(&e, "DescribeKey", json!({"KeyId": id})).await.code,
        AwsErrorCode::NotFoundException
    );
    assert!(
        call(&e, "ListAliases", json!({})).await["Aliases"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn rotation_keeps_old_ciphertexts() {
    let e = engine();
    let k = key(&e, json!({})).await;
    let id = k["KeyId"].clone();
    let before = call(&e, "Encrypt", json!({"KeyId": id, "Plaintext": b64(b"old")})).await;
    assert_eq!(call(&e, "RotateKeyOnDemand", json!({"KeyId": id})).await["KeyId"], id);
    let after = call(&e, "Encrypt", json!({"KeyId": id, "Plaintext": b64(b"new")})).await;
    let d1 = call(&e, "Decrypt", json!({"CiphertextBlob": before["CiphertextBlob"]})).await;
    let d2 = call(&e, "Decrypt", json!({"CiphertextBlob": after["CiphertextBlob"]})).await;
    assert_eq!(unb64(&d1["Plaintext"]), b"old");
    assert_eq!(unb64(&d2["Plaintext"]), b"new");
    assert_ne!(d1["KeyMaterialId"], d2["KeyMaterialId"]);
    let r = call(&e, "ListKeyRotations", json!({"KeyId": id})).await;
    assert_eq!(r["Rotations"][0]["RotationType"], "ON_DEMAND");
    assert_eq!(r["Truncated"], false);
    for _ in 1..25 {
        call(&e, "RotateKeyOnDemand", json!({"KeyId": id})).await;
    }
    assert_eq!(
        fail(&e, "RotateKeyOnDemand", json!({"KeyId": id})).await.code,
        AwsErrorCode::LimitExceededException
    );
    let p = call(&e, "ListKeyRotations", json!({"KeyId": id, "Limit": 10})).await;
    assert_eq!(p["Truncated"], true);

    // Automatic rotation.
    let st = call(&e, "GetKeyRotationStatus", json!({"KeyId": id})).await;
    assert_eq!(st["KeyRotationEnabled"], false);
    assert_eq!(
        fail(
            &e,
            "EnableKeyRotation",
            json!({"KeyId": id, "RotationPeriodInDays": 89})
        )
        .await
        .code,
        AwsErrorCode::ValidationException
    );
    call(
        &e,
        "EnableKeyRotation",
        json!({"KeyId": id, "RotationPeriodInDays": 90}),
    )
    .await;
    let st = call(&e, "GetKeyRotationStatus", json!({"KeyId": id})).await;
    assert_eq!(st["RotationPeriodInDays"], 90);
    assert_eq!(
        e.background(OffsetDateTime::now_utc() + time::Duration::days(91))
            .await
            .unwrap(),
        1
    );
    let r = call(&e, "ListKeyRotations", json!({"KeyId": id, "Limit": 1000})).await;
    assert_eq!(
        r["Rotations"].as_array().unwrap().last().unwrap()["RotationType"],
        "AUTOMATIC"
    );
    call(&e, "Decrypt", json!({"CiphertextBlob": before["CiphertextBlob"]})).await;
    call(&e, "DisableKeyRotation", json!({"KeyId": id})).await;
    assert_eq!(
        call(&e, "GetKeyRotationStatus", json!({"KeyId": id})).await["KeyRotationEnabled"],
        false
    );
    // Only symmetric keys rotate; aliases are not accepted.
    let s = key(&e, json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"})).await;
    assert_eq!(
        fail(&e, "EnableKeyRotation", json!({"KeyId": s["KeyId"]})).await.code,
        AwsErrorCode::UnsupportedOperationException
    );
    call(&e, "CreateAlias", json!({"AliasName": "alias/r", "TargetKeyId": id})).await;
    assert_eq!(
        fail(&e, "EnableKeyRotation", json!({"KeyId": "alias/r"})).await.message,
        "Invalid keyId alias/r"
    );
}

#[tokio::test]
async fn data_keys_and_random() {
    let e = engine();
    let k = key(&e, json!({})).await;
    for (input, len) in [
        (json!({"KeySpec": "AES_256"}), 32),
        (json!({"KeySpec": "AES_128"}), 16),
        (json!({"NumberOfBytes": 1024}), 1024),
    ] {
        let mut i = input.clone();
        i["KeyId"] = k["KeyId"].clone();
        let dk = call(&e, "GenerateDataKey", i).await;
        let plain = unb64(&dk["Plaintext"]);
        assert_eq!(plain.len(), len);
        let dec = call(&e, "Decrypt", json!({"CiphertextBlob": dk["CiphertextBlob"]})).await;
        assert_eq!(unb64(&dec["Plaintext"]), plain);
    }
    let w = call(
        &e,
        "GenerateDataKeyWithoutPlaintext",
        json!({"KeyId": k["KeyId"], "KeySpec": "AES_256"}),
    )
    .await;
    assert!(w.get("Plaintext").is_none());
    for bad in [
        json!({}),
        json!({"KeySpec": "AES_256", "NumberOfBytes": 32}),
        json!({"NumberOfBytes": 1025}),
        json!({"KeySpec": "AES_257"}),
    ] {
        let mut i = bad.clone();
        i["KeyId"] = k["KeyId"].clone();
        assert_eq!(
            fail(&e, "GenerateDataKey", i).await.code,
            AwsErrorCode::ValidationException
        );
    }
    let r = call(&e, "GenerateRandom", json!({"NumberOfBytes": 12})).await;
    assert_eq!(unb64(&r["Plaintext"]).len(), 12);
    let err = fail(&e, "GenerateRandom", json!({"NumberOfBytes": 0})).await;
    assert_eq!(
        err.message,
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
    );

    // Data key pairs: the private key decrypts back and matches the public key.
    for spec in ["RSA_2048", "ECC_NIST_P256", "ECC_SECG_P256K1"] {
        let p = call(
            &e,
            "GenerateDataKeyPair",
            json!({"KeyId": k["KeyId"], "KeyPairSpec": spec, "EncryptionContext": {"k": "v"}}),
        )
        .await;
        let private = unb64(&p["PrivateKeyPlaintext"]);
        let dec = call(
            &e,
            "Decrypt",
            json!({"CiphertextBlob": p["PrivateKeyCiphertextBlob"], "EncryptionContext": {"k": "v"}}),
        )
        .await;
        assert_eq!(unb64(&dec["Plaintext"]), private);
        let spec_enum = crate::spec::KeySpec::parse(spec).unwrap();
        assert_eq!(
            crate::crypto::public_key_der(spec_enum, &private).unwrap(),
            unb64(&p["PublicKey"])
        );
    }
    let p = call(
        &e,
        "GenerateDataKeyPairWithoutPlaintext",
        json!({"KeyId": k["KeyId"], "KeyPairSpec": "ECC_NIST_P384"}),
    )
    .await;
    assert!(p.get("PrivateKeyPlaintext").is_none());
    assert_eq!(
        fail(
            &e,
            "GenerateDataKeyPair",
            json!({"KeyId": k["KeyId"], "KeyPairSpec": "SM2"})
        )
        .await
        .code,
        AwsErrorCode::UnsupportedOperationException
    );
}

#[tokio::test]
async fn sign_verify_every_algorithm_and_message_type() {
    use aws_lc_rs::digest;
    let e = engine();
    let cases: &[(&str, &[&str])] = &[
        (
            "RSA_2048",
            &[
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
            ],
        ),
        ("ECC_NIST_P256", &["ECDSA_SHA_256"]),
        ("ECC_NIST_P384", &["ECDSA_SHA_384"]),
        ("ECC_NIST_P521", &["ECDSA_SHA_512"]),
    ];
    for (spec, algs) in cases {
        let k = key(&e, json!({"KeySpec": spec, "KeyUsage": "SIGN_VERIFY"})).await;
        let pk = call(&e, "GetPublicKey", json!({"KeyId": k["KeyId"]})).await;
        assert_eq!(pk["KeySpec"], *spec);
        for alg in *algs {
            let msg = b"message";
            let s = call(
                &e,
                "Sign",
                json!({"KeyId": k["KeyId"], "Message": b64(msg), "SigningAlgorithm": alg}),
            )
            .await;
            assert_eq!(s["KeyId"], k["Arn"]);
            let v = call(
                &e,
                "Verify",
                json!({"KeyId": k["KeyId"], "Message": b64(msg), "Signature": s["Signature"], "SigningAlgorithm": alg}),
            )
            .await;
            assert_eq!(v["SignatureValid"], true);
            let md = match crate::crypto::digest_len(alg) {
                32 => &digest::SHA256,
                48 => &digest::SHA384,
                _ => &digest::SHA512,
            };
            let d = digest::digest(md, msg);
            let ds = call(&e, "Sign", json!({"KeyId": k["KeyId"], "Message": b64(d.as_ref()), "MessageType": "DIGEST", "SigningAlgorithm": alg})).await;
            let v = call(&e, "Verify", json!({"KeyId": k["KeyId"], "Message": b64(msg), "Signature": ds["Signature"], "SigningAlgorithm": alg})).await;
            assert_eq!(v["SignatureValid"], true);
            let v = call(&e, "Verify", json!({"KeyId": k["KeyId"], "Message": b64(d.as_ref()), "MessageType": "DIGEST", "Signature": s["Signature"], "SigningAlgorithm": alg})).await;
            assert_eq!(v["SignatureValid"], true);
            let err = fail(&e, "Verify", json!({"KeyId": k["KeyId"], "Message": b64(b"other"), "Signature": s["Signature"], "SigningAlgorithm": alg})).await;
            assert_eq!(err.code, AwsErrorCode::KMSInvalidSignatureException);
            let err = fail(&e, "Sign", json!({"KeyId": k["KeyId"], "Message": b64(&[1u8; 20]), "MessageType": "DIGEST", "SigningAlgorithm": alg})).await;
            assert_eq!(err.code, AwsErrorCode::ValidationException);
        }
    }
    let k = key(&e, json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"})).await;
    let err = fail(
        &e,
        "Sign",
        json!({"KeyId": k["KeyId"], "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_384"}),
    )
    .await;
    assert_eq!(err.code, AwsErrorCode::InvalidKeyUsageException);
    let sym = key(&e, json!({})).await;
    let err = fail(
        &e,
        "Sign",
        json!({"KeyId": sym["KeyId"], "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_256"}),
    )
    .await;
    assert_eq!(err.code, AwsErrorCode::InvalidKeyUsageException);
    assert_eq!(
        fail(&e, "GetPublicKey", json!({"KeyId": sym["KeyId"]})).await.code,
        AwsErrorCode::UnsupportedOperationException
    );

    // RSA encryption keys: OAEP round trip, limits, KeyId required to decrypt.
    let r = key(&e, json!({"KeySpec": "RSA_2048", "KeyUsage": "ENCRYPT_DECRYPT"})).await;
    let enc = call(
        &e,
        "Encrypt",
        json!({"KeyId": r["KeyId"], "Plaintext": b64(b"hi"), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
    )
    .await;
    let dec = call(&e, "Decrypt", json!({"KeyId": r["KeyId"], "CiphertextBlob": enc["CiphertextBlob"], "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"})).await;
    assert_eq!(unb64(&dec["Plaintext"]), b"hi");
    let err = fail(
        &e,
        "Encrypt",
        json!({"KeyId": r["KeyId"], "Plaintext": b64(&[0u8; 191]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
    )
    .await;
    assert_eq!(err.code, AwsErrorCode::ValidationException);
    assert_eq!(
        fail(&e, "Encrypt", json!({"KeyId": r["KeyId"], "Plaintext": b64(b"hi")}))
            .await
            .code,
        AwsErrorCode::InvalidKeyUsageException
    );
}

#[tokio::test]
async fn macs() {
    let e = engine();
    let k = key(&e, json!({"KeySpec": "HMAC_512", "KeyUsage": "GENERATE_VERIFY_MAC"})).await;
    let other = key(&e, json!({"KeySpec": "HMAC_512", "KeyUsage": "GENERATE_VERIFY_MAC"})).await;
    let m = call(
        &e,
        "GenerateMac",
        json!({"KeyId": k["KeyId"], "Message": b64(b"hi"), "MacAlgorithm": "HMAC_SHA_512"}),
    )
    .await;
    assert_eq!(unb64(&m["Mac"]).len(), 64);
    let v = call(
        &e,
        "VerifyMac",
        json!({"KeyId": k["KeyId"], "Message": b64(b"hi"), "Mac": m["Mac"], "MacAlgorithm": "HMAC_SHA_512"}),
    )
    .await;
    assert_eq!(v["MacValid"], true);
    let err = fail(
        &e,
        "VerifyMac",
        json!({"KeyId": other["KeyId"], "Message": b64(b"hi"), "Mac": m["Mac"], "MacAlgorithm": "HMAC_SHA_512"}),
    )
    .await;
    assert_eq!(err.code, AwsErrorCode::KMSInvalidMacException);
    assert_eq!(err.message, "");
    let err = fail(
        &e,
        "GenerateMac",
        json!({"KeyId": k["KeyId"], "Message": b64(b"hi"), "MacAlgorithm": "HMAC_SHA_256"}),
    )
    .await;
    assert_eq!(err.code, AwsErrorCode::InvalidKeyUsageException);
    let sym = key(&e, json!({})).await;
    let err = fail(
        &e,
        "GenerateMac",
        json!({"KeyId": sym["KeyId"], "Message": b64(b"hi"), "MacAlgorithm": "HMAC_SHA_512"}),
    )
    .await;
    assert_eq!(err.code, AwsErrorCode::InvalidKeyUsageException);
}

#[tokio::test]
async fn aliases() {
    let e = engine();
    let k = key(&e, json!({})).await;
    let k2 = key(&e, json!({})).await;
    call(
        &e,
        "CreateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": k["Arn"]}),
    )
    .await;
    let enc = call(&e, "Encrypt", json!({"KeyId": "alias/app", "Plaintext": b64(b"x")})).await;
    assert_eq!(enc["KeyId"], k["Arn"]);
    call(
        &e,
        "DescribeKey",
        json!({"KeyId": "arn:aws:kms:us-east-1:123456789012:alias/app"}),
    )
    .await;
    let err = fail(
        &e,
        "CreateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": k["KeyId"]}),
    )
    .await;
    assert_eq!(err.code, AwsErrorCode::AlreadyExistsException);
    assert_eq!(
        err.message,
        "An alias with the name arn:aws:kms:us-east-1:123456789012:alias/app already exists"
    );
    assert_eq!(
        fail(
            &e,
            "CreateAlias",
            json!({"AliasName": "alias/aws/x", "TargetKeyId": k["KeyId"]})
        )
        .await
        .code,
        AwsErrorCode::NotAuthorizedException
    );
    assert_eq!(
        fail(
            &e,
            "CreateAlias",
            json!({"AliasName": "nope/x", "TargetKeyId": k["KeyId"]})
        )
        .await
        .code,
        AwsErrorCode::ValidationException
    );
    let err = fail(
        &e,
        "CreateAlias",
        json!({"AliasName": "alias/a!", "TargetKeyId": k["KeyId"]}),
    )
    .await;
    assert!(err.message.contains("regular expression pattern: ^[a-zA-Z0-9:/_-]+$"));
    assert_eq!(
        fail(
            &e,
            "CreateAlias",
            json!({"AliasName": "alias/b", "TargetKeyId": "alias/app"})
        )
        .await
        .message,
        "Aliases must refer to keys. Not aliases"
    );
    call(
        &e,
        "UpdateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": k2["KeyId"]}),
    )
    .await;
    let l = call(&e, "ListAliases", json!({"KeyId": k2["KeyId"]})).await;
    assert_eq!(l["Aliases"][0]["AliasName"], "alias/app");
    assert_eq!(l["Aliases"][0]["TargetKeyId"], k2["KeyId"]);
    assert!(
        call(&e, "ListAliases", json!({"KeyId": k["KeyId"]})).await["Aliases"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    call(&e, "DeleteAlias", json!({"AliasName": "alias/app"})).await;
    let err = fail(&e, "DeleteAlias", json!({"AliasName": "alias/app"})).await;
    assert_eq!(
        err.message,
        "Alias arn:aws:kms:us-east-1:123456789012:alias/app is not found."
    );
    assert_eq!(
        fail(&e, "DescribeKey", json!({"KeyId": "alias/app"})).await.code,
        AwsErrorCode::NotFoundException
    );
}

#[tokio::test]
async fn aws_managed_keys_are_created_on_first_use() {
    let e = engine();
    let d = call(&e, "DescribeKey", json!({"KeyId": "alias/aws/secretsmanager"})).await;
    assert_eq!(d["KeyMetadata"]["KeyManager"], "AWS");
    let again = call(&e, "DescribeKey", json!({"KeyId": "alias/aws/secretsmanager"})).await;
    assert_eq!(again["KeyMetadata"]["KeyId"], d["KeyMetadata"]["KeyId"]);
    let id = d["KeyMetadata"]["KeyId"].clone();
    assert_eq!(
        fail(&e, "DisableKey", json!({"KeyId": id})).await.code,
        AwsErrorCode::UnsupportedOperationException
    );
    assert_eq!(
        fail(&e, "RotateKeyOnDemand", json!({"KeyId": id})).await.code,
        AwsErrorCode::UnsupportedOperationException
    );
    assert_eq!(
        fail(&e, "ScheduleKeyDeletion", json!({"KeyId": id})).await.code,
        AwsErrorCode::UnsupportedOperationException
    );
    assert_eq!(
        fail(&e, "DeleteAlias", json!({"AliasName": "alias/aws/secretsmanager"}))
            .await
            .code,
        AwsErrorCode::NotAuthorizedException
    );
    assert_eq!(
        call(&e, "GetKeyRotationStatus", json!({"KeyId": id})).await["KeyRotationEnabled"],
        true
    );

    // Through the KeyService contract.
    let c = ctx();
    let mut context = BTreeMap::new();
    context.insert("SecretARN".to_string(), "arn:x".to_string());
    let dk = e.generate_data_key(&c, "alias/aws/ssm", &context).await.unwrap();
    assert_eq!(dk.plaintext.len(), 32);
    assert_eq!(e.resolve_key_arn(&c, "alias/aws/ssm").await.unwrap(), dk.key_arn);
    let back = e.decrypt(&c, &dk.ciphertext_blob, &context).await.unwrap();
    assert_eq!(back.plaintext.expose(), dk.plaintext.expose());
    assert_eq!(
        e.decrypt(&c, &dk.ciphertext_blob, &BTreeMap::new())
            .await
            .err()
            .unwrap()
            .code,
        AwsErrorCode::InvalidCiphertextException
    );
    let (ct, arn) = e.encrypt(&c, "alias/aws/ssm", b"value", &context).await.unwrap();
    assert_eq!(arn, dk.key_arn);
    assert_eq!(e.decrypt(&c, &ct, &context).await.unwrap().plaintext.expose(), b"value");
    // A user key disabled through the API makes KeyService fail the same way.
    let k = key(&e, json!({})).await;
    let kid = k["KeyId"].as_str().unwrap();
    let (ct, _) = e.encrypt(&c, kid, b"v", &context).await.unwrap();
    call(&e, "DisableKey", json!({"KeyId": kid})).await;
    assert_eq!(
        e.decrypt(&c, &ct, &context).await.err().unwrap().code,
        AwsErrorCode::DisabledException
    );
    assert_eq!(
        e.resolve_key_arn(&c, "alias/missing").await.err().unwrap().code,
        AwsErrorCode::NotFoundException
    );
    // Another region does not see the key.
    let mut west = ctx();
    west.region = "us-west-2".into();
    assert_eq!(
        e.decrypt(&west, &ct, &context).await.err().unwrap().code,
        AwsErrorCode::InvalidCiphertextException
    );
}

#[tokio::test]
async fn policies_tags_grants_and_reset() {
    let e = engine();
    let k = key(&e, json!({})).await;
    let id = k["KeyId"].clone();
    let p: Value = serde_json::from_str(
        call(&e, "GetKeyPolicy", json!({"KeyId": id, "PolicyName": "default"})).await["Policy"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(p["Statement"][0]["Principal"]["AWS"], "arn:aws:iam::123456789012:root");
    let doc = json!({"Version": "2012-10-17", "Statement": []}).to_string();
    call(
        &e,
        "PutKeyPolicy",
        json!({"KeyId": id, "PolicyName": "default", "Policy": doc}),
    )
    .await;
    assert_eq!(
        call(&e, "GetKeyPolicy", json!({"KeyId": k["Arn"]})).await["Policy"],
        doc
    );
    assert_eq!(
        fail(&e, "PutKeyPolicy", json!({"KeyId": id, "Policy": "not json"}))
            .await
            .code,
        AwsErrorCode::MalformedPolicyDocumentException
    );
    assert_eq!(
        call(&e, "ListKeyPolicies", json!({"KeyId": id})).await["PolicyNames"],
        json!(["default"])
    );

    call(
        &e,
        "TagResource",
        json!({"KeyId": id, "Tags": [{"TagKey": "b", "TagValue": "2"}, {"TagKey": "a", "TagValue": "1"}]}),
    )
    .await;
    call(&e, "UntagResource", json!({"KeyId": id, "TagKeys": ["b"]})).await;
    assert_eq!(
        call(&e, "ListResourceTags", json!({"KeyId": id})).await["Tags"],
        json!([{"TagKey": "a", "TagValue": "1"}])
    );
    assert_eq!(
        fail(&e, "TagResource", json!({"KeyId": "unknown", "Tags": []}))
            .await
            .message,
        "Invalid keyId unknown"
    );
    assert_eq!(
        fail(
            &e,
            "TagResource",
            json!({"KeyId": id, "Tags": [{"TagKey": "a", "TagValue": "1"}, {"TagKey": "a", "TagValue": "2"}]})
        )
        .await
        .code,
        AwsErrorCode::TagException
    );

    let g1 = call(&e, "CreateGrant", json!({"KeyId": id, "GranteePrincipal": "arn:aws:iam::123456789012:role/r", "Operations": ["Decrypt"], "Name": "n"})).await;
    let g2 = call(&e, "CreateGrant", json!({"KeyId": id, "GranteePrincipal": "arn:aws:iam::123456789012:role/r", "RetiringPrincipal": "p", "Operations": ["Encrypt"], "Constraints": {"EncryptionContextSubset": {"a": "b"}}})).await;
    let g3 = call(
        &e,
        "CreateGrant",
        json!({"KeyId": id, "GranteePrincipal": "x", "Operations": ["Encrypt"]}),
    )
    .await;
    assert_eq!(
        fail(
            &e,
            "CreateGrant",
            json!({"KeyId": id, "GranteePrincipal": "x", "Operations": ["DECRYPT"]})
        )
        .await
        .code,
        AwsErrorCode::ValidationException
    );
    let l = call(&e, "ListGrants", json!({"KeyId": id})).await;
    assert_eq!(l["Grants"].as_array().unwrap().len(), 3);
    let find = |id: &Value| {
        l["Grants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["GrantId"] == *id)
            .unwrap()
            .clone()
    };
    assert_eq!(find(&g1["GrantId"])["Name"], "n");
    assert_eq!(
        find(&g2["GrantId"])["Constraints"]["EncryptionContextSubset"],
        json!({"a": "b"})
    );
    let only = call(&e, "ListGrants", json!({"KeyId": id, "GrantId": g2["GrantId"]})).await;
    assert_eq!(only["Grants"].as_array().unwrap().len(), 1);
    let r = call(&e, "ListRetirableGrants", json!({"RetiringPrincipal": "p"})).await;
    assert_eq!(r["Grants"][0]["GrantId"], g2["GrantId"]);
    call(&e, "RetireGrant", json!({"GrantToken": g1["GrantToken"]})).await;
    assert_eq!(
        fail(&e, "RetireGrant", json!({"GrantToken": g1["GrantToken"]}))
            .await
            .code,
        AwsErrorCode::NotFoundException
    );
    assert_eq!(
        fail(&e, "RetireGrant", json!({"GrantToken": "bogus"})).await.code,
        AwsErrorCode::InvalidGrantTokenException
    );
    call(&e, "RetireGrant", json!({"KeyId": id, "GrantId": g2["GrantId"]})).await;
    call(&e, "RevokeGrant", json!({"KeyId": id, "GrantId": g3["GrantId"]})).await;
    let err = fail(&e, "RevokeGrant", json!({"KeyId": id, "GrantId": "aabbccdd"})).await;
    assert_eq!(err.message, "Grant ID aabbccdd not found");
    assert!(
        call(&e, "ListGrants", json!({"KeyId": id})).await["Grants"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    e.reset().await.unwrap();
    assert!(
        call(&e, "ListKeys", json!({})).await["Keys"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn no_secret_in_errors_or_debug() {
    let e = engine();
    let k = key(&e, json!({})).await;
    let canary = b"CANARY-4b1d-secret";
    let enc = call(&e, "Encrypt", json!({"KeyId": k["KeyId"], "Plaintext": b64(canary)})).await;
    let err = fail(
        &e,
        "Decrypt",
        json!({"CiphertextBlob": enc["CiphertextBlob"], "EncryptionContext": {"x": "y"}}),
    )
    .await;
    let shown = format!("{err:?} {err}");
    assert!(!shown.contains("CANARY"));
    let rec = e
        .resolve(&ctx_at(OffsetDateTime::now_utc()), k["KeyId"].as_str().unwrap(), false)
        .await
        .unwrap();
    let material = e.load_material(&rec, 1).await.unwrap();
    assert!(!format!("{rec:?}").contains(&hex::encode(material.expose())));
}
