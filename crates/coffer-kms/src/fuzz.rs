//! Fuzz targets of the KMS engine: ciphertext blobs given to `Decrypt`, signatures and MACs
//! given to `Verify`/`VerifyMac`, and the engine's stored records (keys, key material,
//! aliases, grants) read back. See `docs/reliability.md`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffer_engines::RequestContext;
use coffer_fuzz::{Fuzz, record_seeds, runtime, with_stored_record};
use coffer_storage::memory::MemoryStorage;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::KmsEngine;

fn ctx() -> RequestContext {
    RequestContext {
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        principal_arn: "arn:aws:iam::123456789012:root".into(),
        now: OffsetDateTime::from_unix_timestamp(1_795_363_104).unwrap(),
    }
}

fn call(
    rt: &tokio::runtime::Runtime,
    e: &KmsEngine,
    op: &str,
    input: Value,
) -> Result<Value, coffer_engines::AwsError> {
    rt.block_on(e.handle(&ctx(), op, input))
}

/// Creates a key and returns its metadata.
fn create(rt: &tokio::runtime::Runtime, e: &KmsEngine, spec: &str, usage: &str) -> Value {
    let created = call(rt, e, "CreateKey", json!({"KeySpec": spec, "KeyUsage": usage})).unwrap();
    created["KeyMetadata"].clone()
}

fn b64(b: &[u8]) -> String {
    STANDARD.encode(b)
}

fn unb64(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

/// Property: `Decrypt` opens a blob only if it is byte for byte one that `Encrypt` or
/// `GenerateDataKey` returned (under the same context), and answers every other blob with an
/// error, without a panic or a hang.
#[test]
fn fuzz_kms_ciphertext() {
    let rt = runtime();
    let e = KmsEngine::new(Arc::new(MemoryStorage::new()));
    let k = call(&rt, &e, "CreateKey", json!({})).unwrap()["KeyMetadata"].clone();
    call(&rt, &e, "RotateKeyOnDemand", json!({"KeyId": k["KeyId"]})).unwrap();
    let context = json!({"app": "db", "purpose": "fuzz"});
    let mut seeds = Vec::new();
    for (name, plaintext) in [
        ("short", &b"hello"[..]),
        ("empty-ish", &b"\0"[..]),
        ("long", &[0x5a; 600][..]),
    ] {
        let enc = call(
            &rt,
            &e,
            "Encrypt",
            json!({"KeyId": k["KeyId"], "Plaintext": b64(plaintext), "EncryptionContext": context}),
        )
        .unwrap();
        seeds.push((
            format!("encrypt-{name}"),
            unb64(&enc["CiphertextBlob"]),
            plaintext.to_vec(),
        ));
    }
    let dk = call(
        &rt,
        &e,
        "GenerateDataKey",
        json!({"KeyId": k["KeyId"], "KeySpec": "AES_256", "EncryptionContext": context}),
    )
    .unwrap();
    seeds.push(("data-key".into(), unb64(&dk["CiphertextBlob"]), unb64(&dk["Plaintext"])));
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "kms_ciphertext")
        .seeds(seeds.iter().map(|(n, b, _)| (n.clone(), b.clone())))
        .dictionary(&["\x01", "\x24", "-", "00000000-0000-0000-0000-000000000000"]);
    fuzz.run(|input| {
        let dec = call(
            &rt,
            &e,
            "Decrypt",
            json!({"CiphertextBlob": b64(input), "EncryptionContext": context}),
        );
        match seeds.iter().find(|(_, b, _)| b == input) {
            Some((_, _, plaintext)) => assert_eq!(unb64(&dec.unwrap()["Plaintext"]), *plaintext),
            None => assert!(dec.is_err(), "a changed ciphertext blob decrypted"),
        }
        let _ = call(&rt, &e, "Decrypt", json!({"CiphertextBlob": b64(input)}));
        let _ = call(
            &rt,
            &e,
            "ReEncrypt",
            json!({"CiphertextBlob": b64(input), "SourceEncryptionContext": context, "DestinationKeyId": k["KeyId"]}),
        );
    });
}

/// Property: `Verify` and `VerifyMac` accept a signature or MAC only if it is byte for byte
/// the one `Sign` or `GenerateMac` returned for the message, without a panic or a hang.
/// An input is one byte choosing the key (ECC P-256, RSA-2048 PSS, HMAC-256), then the
/// signature or MAC.
#[test]
fn fuzz_kms_signature() {
    let rt = runtime();
    let e = KmsEngine::new(Arc::new(MemoryStorage::new()));
    let message = b64(b"message to sign");
    let ecc = create(&rt, &e, "ECC_NIST_P256", "SIGN_VERIFY");
    let rsa = create(&rt, &e, "RSA_2048", "SIGN_VERIFY");
    let hmac = create(&rt, &e, "HMAC_256", "GENERATE_VERIFY_MAC");
    let sign = |key: &Value, alg: &str| {
        let s = call(
            &rt,
            &e,
            "Sign",
            json!({"KeyId": key["KeyId"], "Message": message, "SigningAlgorithm": alg}),
        )
        .unwrap();
        unb64(&s["Signature"])
    };
    let mac = call(
        &rt,
        &e,
        "GenerateMac",
        json!({"KeyId": hmac["KeyId"], "Message": message, "MacAlgorithm": "HMAC_SHA_256"}),
    )
    .unwrap();
    let originals = [
        sign(&ecc, "ECDSA_SHA_256"),
        sign(&rsa, "RSASSA_PSS_SHA_256"),
        unb64(&mac["Mac"]),
    ];
    let seeds = ["ecdsa-p256", "rsa-pss-2048", "hmac-sha256"]
        .iter()
        .zip(&originals)
        .enumerate()
        .map(|(i, (name, sig))| {
            let mut input = vec![u8::try_from(i).unwrap()];
            input.extend_from_slice(sig);
            (name.to_string(), input)
        });
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "kms_signature")
        .seeds(seeds)
        .dictionary(&["\x30", "\x02", "\x00"]);
    fuzz.run(|input| {
        let Some((&which, sig)) = input.split_first() else {
            return;
        };
        let which = usize::from(which % 3);
        let valid = match which {
            0 | 1 => {
                let (key, alg) = if which == 0 {
                    (&ecc, "ECDSA_SHA_256")
                } else {
                    (&rsa, "RSASSA_PSS_SHA_256")
                };
                call(
                    &rt,
                    &e,
                    "Verify",
                    json!({"KeyId": key["KeyId"], "Message": message, "Signature": b64(sig), "SigningAlgorithm": alg}),
                )
                .is_ok_and(|v| v["SignatureValid"] == true)
            }
            _ => call(
                &rt,
                &e,
                "VerifyMac",
                json!({"KeyId": hmac["KeyId"], "Message": message, "Mac": b64(sig), "MacAlgorithm": "HMAC_SHA_256"}),
            )
            .is_ok_and(|v| v["MacValid"] == true),
        };
        // A stored original may be verified under its own key only (committed ones from
        // another run are other keys' signatures and must fail).
        assert_eq!(valid, sig == originals[which].as_slice(), "key {which}");
    });
}

/// Property: a stored KMS record changed on disk (key records, key material, aliases,
/// grants) is read back by every read path without a panic or a hang. An input is
/// `<storage key>\n<record bytes>`; each input is read by a fresh engine (no cache).
#[test]
fn fuzz_kms_records() {
    let rt = runtime();
    let storage = Arc::new(MemoryStorage::new());
    let e = KmsEngine::new(storage.clone());
    let k = call(
        &rt,
        &e,
        "CreateKey",
        json!({"Description": "d", "Tags": [{"TagKey": "env", "TagValue": "prod"}]}),
    )
    .unwrap();
    let key_id = k["KeyMetadata"]["KeyId"].clone();
    call(
        &rt,
        &e,
        "CreateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": key_id}),
    )
    .unwrap();
    call(
        &rt,
        &e,
        "CreateGrant",
        json!({"KeyId": key_id, "GranteePrincipal": "arn:aws:iam::123456789012:role/app", "Operations": ["Decrypt"]}),
    )
    .unwrap();
    call(&rt, &e, "EnableKeyRotation", json!({"KeyId": key_id})).unwrap();
    call(
        &rt,
        &e,
        "CreateKey",
        json!({"KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
    )
    .unwrap();
    let blob =
        call(&rt, &e, "Encrypt", json!({"KeyId": key_id, "Plaintext": b64(b"x")})).unwrap()["CiphertextBlob"].clone();
    let seeds = record_seeds(&rt, storage.as_ref());
    let fuzz = Fuzz::new(env!("CARGO_MANIFEST_DIR"), "kms_records")
        .seeds(seeds)
        .dictionary(&["{", "}", "null", ":"]);
    fuzz.run(|input| {
        with_stored_record(&rt, storage.as_ref(), input, || {
            let fresh = KmsEngine::new(storage.clone());
            for (op, body) in [
                ("DescribeKey", json!({"KeyId": key_id})),
                ("DescribeKey", json!({"KeyId": "alias/app"})),
                ("ListKeys", json!({})),
                ("ListAliases", json!({})),
                ("ListGrants", json!({"KeyId": key_id})),
                ("GetKeyPolicy", json!({"KeyId": key_id})),
                ("GetKeyRotationStatus", json!({"KeyId": key_id})),
                ("ListResourceTags", json!({"KeyId": key_id})),
                ("Decrypt", json!({"CiphertextBlob": blob})),
                ("Encrypt", json!({"KeyId": "alias/app", "Plaintext": b64(b"y")})),
            ] {
                let _ = call(&rt, &fresh, op, body);
            }
        });
    });
}
