//! The cryptography of the engine, all of it from aws-lc-rs: key generation, AES-256-GCM
//! ciphertext blobs (through `coffer_crypto::aead`), RSA-OAEP, RSA/ECDSA signatures over a
//! message or a precomputed digest, HMAC, and PKCS#8 / SubjectPublicKeyInfo DER export.
//!
//! Errors carry no key material; a failure that can only come from corrupted stored material
//! is a `KMSInternalException`.

use aws_lc_rs::digest;
use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey,
};
use aws_lc_rs::signature::{self, EcdsaKeyPair, EcdsaSigningAlgorithm, KeyPair as _, RsaKeyPair};
use coffer_crypto::SecretBytes;
use coffer_engines::{AwsError, AwsErrorCode};

use crate::spec::KeySpec;

fn internal(what: &str) -> AwsError {
    AwsError::new(AwsErrorCode::KMSInternalException, format!("{what} failed"))
}

fn ecdsa_signing(spec: KeySpec) -> Option<&'static EcdsaSigningAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        KeySpec::EccNistP384 => Some(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        KeySpec::EccNistP521 => Some(&signature::ECDSA_P521_SHA512_ASN1_SIGNING),
        KeySpec::EccSecgP256k1 => Some(&signature::ECDSA_P256K1_SHA256_ASN1_SIGNING),
        _ => None,
    }
}

fn pkcs8_bytes(der: Pkcs8V1Der<'static>) -> SecretBytes {
    SecretBytes::from_slice(der.as_ref())
}

/// Fresh key material for a key (or data key pair) of `spec`: 32 random bytes for
/// SYMMETRIC_DEFAULT, the digest length for HMAC keys, PKCS#8 DER for RSA and ECC.
pub(crate) fn generate_material(spec: KeySpec) -> Result<SecretBytes, AwsError> {
    let random = |n: usize| coffer_crypto::random::secret_bytes(n).map_err(|_| internal("random generation"));
    match spec {
        KeySpec::SymmetricDefault => random(32),
        KeySpec::Hmac224 => random(28),
        KeySpec::Hmac256 => random(32),
        KeySpec::Hmac384 => random(48),
        KeySpec::Hmac512 => random(64),
        KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => {
            let size = match spec {
                KeySpec::Rsa2048 => KeySize::Rsa2048,
                KeySpec::Rsa3072 => KeySize::Rsa3072,
                _ => KeySize::Rsa4096,
            };
            let kp = RsaKeyPair::generate(size).map_err(|_| internal("RSA key generation"))?;
            let der: Pkcs8V1Der<'static> = kp.as_der().map_err(|_| internal("RSA key export"))?;
            Ok(pkcs8_bytes(der))
        }
        KeySpec::EccNistP256 | KeySpec::EccNistP384 | KeySpec::EccNistP521 | KeySpec::EccSecgP256k1 => {
            let alg = ecdsa_signing(spec).ok_or_else(|| internal("ECC key generation"))?;
            let kp = EcdsaKeyPair::generate(alg).map_err(|_| internal("ECC key generation"))?;
            let doc = kp.to_pkcs8v1().map_err(|_| internal("ECC key export"))?;
            Ok(SecretBytes::from_slice(doc.as_ref()))
        }
    }
}

/// The DER SubjectPublicKeyInfo of an RSA or ECC private key (PKCS#8).
pub(crate) fn public_key_der(spec: KeySpec, pkcs8: &[u8]) -> Result<Vec<u8>, AwsError> {
    if spec.is_rsa() {
        let kp = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| internal("RSA key load"))?;
        let der: PublicKeyX509Der<'static> = kp.public_key().as_der().map_err(|_| internal("public key export"))?;
        return Ok(der.as_ref().to_vec());
    }
    let alg = ecdsa_signing(spec).ok_or_else(|| internal("public key export"))?;
    let kp = EcdsaKeyPair::from_pkcs8(alg, pkcs8).map_err(|_| internal("ECC key load"))?;
    let der: PublicKeyX509Der<'static> = kp.public_key().as_der().map_err(|_| internal("public key export"))?;
    Ok(der.as_ref().to_vec())
}

fn oaep(alg: &str) -> Option<&'static OaepAlgorithm> {
    match alg {
        "RSAES_OAEP_SHA_1" => Some(&OAEP_SHA1_MGF1SHA1),
        "RSAES_OAEP_SHA_256" => Some(&OAEP_SHA256_MGF1SHA256),
        _ => None,
    }
}

/// The largest plaintext RSA-OAEP takes for a modulus of `k` bytes: k - 2*hLen - 2.
pub(crate) fn oaep_max_plaintext(spec: KeySpec, alg: &str) -> usize {
    let h = if alg == "RSAES_OAEP_SHA_1" { 20 } else { 32 };
    spec.rsa_bytes().saturating_sub(2 * h + 2)
}

pub(crate) fn rsa_encrypt(pkcs8: &[u8], alg: &str, plaintext: &[u8]) -> Result<Vec<u8>, AwsError> {
    let alg = oaep(alg).ok_or_else(|| internal("RSA encryption"))?;
    let private = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| internal("RSA key load"))?;
    let public = OaepPublicEncryptingKey::new(private.public_key()).map_err(|_| internal("RSA key load"))?;
    let mut out = vec![0u8; public.ciphertext_size()];
    let len = public
        .encrypt(alg, plaintext, &mut out, None)
        .map_err(|_| internal("RSA encryption"))?
        .len();
    out.truncate(len);
    Ok(out)
}

/// RSA-OAEP decryption; `None` when the ciphertext does not decrypt.
pub(crate) fn rsa_decrypt(pkcs8: &[u8], alg: &str, ciphertext: &[u8]) -> Result<Option<SecretBytes>, AwsError> {
    let alg = oaep(alg).ok_or_else(|| internal("RSA decryption"))?;
    let private = PrivateDecryptingKey::from_pkcs8(pkcs8).map_err(|_| internal("RSA key load"))?;
    let key = OaepPrivateDecryptingKey::new(private).map_err(|_| internal("RSA key load"))?;
    let mut buf = zeroize::Zeroizing::new(vec![0u8; key.min_output_size()]);
    match key.decrypt(alg, ciphertext, &mut buf, None) {
        Ok(plain) => Ok(Some(SecretBytes::from_slice(plain))),
        Err(_) => Ok(None),
    }
}

/// The digest algorithm of a signing algorithm.
fn signing_digest(alg: &str) -> &'static digest::Algorithm {
    if alg.ends_with("384") {
        &digest::SHA384
    } else if alg.ends_with("512") {
        &digest::SHA512
    } else {
        &digest::SHA256
    }
}

/// The digest length a `MessageType=DIGEST` message must have for `alg`.
pub(crate) fn digest_len(alg: &str) -> usize {
    signing_digest(alg).output_len()
}

fn rsa_encoding(alg: &str) -> Option<&'static dyn signature::RsaEncoding> {
    Some(match alg {
        "RSASSA_PSS_SHA_256" => &signature::RSA_PSS_SHA256,
        "RSASSA_PSS_SHA_384" => &signature::RSA_PSS_SHA384,
        "RSASSA_PSS_SHA_512" => &signature::RSA_PSS_SHA512,
        "RSASSA_PKCS1_V1_5_SHA_256" => &signature::RSA_PKCS1_SHA256,
        "RSASSA_PKCS1_V1_5_SHA_384" => &signature::RSA_PKCS1_SHA384,
        "RSASSA_PKCS1_V1_5_SHA_512" => &signature::RSA_PKCS1_SHA512,
        _ => return None,
    })
}

fn verification(spec: KeySpec, alg: &str) -> Option<&'static dyn signature::VerificationAlgorithm> {
    Some(match (spec, alg) {
        (_, "RSASSA_PSS_SHA_256") if spec.is_rsa() => &signature::RSA_PSS_2048_8192_SHA256,
        (_, "RSASSA_PSS_SHA_384") if spec.is_rsa() => &signature::RSA_PSS_2048_8192_SHA384,
        (_, "RSASSA_PSS_SHA_512") if spec.is_rsa() => &signature::RSA_PSS_2048_8192_SHA512,
        (_, "RSASSA_PKCS1_V1_5_SHA_256") if spec.is_rsa() => &signature::RSA_PKCS1_2048_8192_SHA256,
        (_, "RSASSA_PKCS1_V1_5_SHA_384") if spec.is_rsa() => &signature::RSA_PKCS1_2048_8192_SHA384,
        (_, "RSASSA_PKCS1_V1_5_SHA_512") if spec.is_rsa() => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeySpec::EccNistP256, "ECDSA_SHA_256") => &signature::ECDSA_P256_SHA256_ASN1,
        (KeySpec::EccSecgP256k1, "ECDSA_SHA_256") => &signature::ECDSA_P256K1_SHA256_ASN1,
        (KeySpec::EccNistP384, "ECDSA_SHA_384") => &signature::ECDSA_P384_SHA384_ASN1,
        (KeySpec::EccNistP521, "ECDSA_SHA_512") => &signature::ECDSA_P521_SHA512_ASN1,
        _ => return None,
    })
}

/// Signs `message` (raw, or an already computed digest when `is_digest`) with the private
/// key `pkcs8` of `spec`. The algorithm must be one of the key's signing algorithms.
pub(crate) fn sign(
    spec: KeySpec,
    pkcs8: &[u8],
    alg: &str,
    message: &[u8],
    is_digest: bool,
) -> Result<Vec<u8>, AwsError> {
    let md = signing_digest(alg);
    let imported = if is_digest {
        Some(digest::Digest::import_less_safe(message, md).map_err(|_| internal("digest import"))?)
    } else {
        None
    };
    if spec.is_rsa() {
        let enc = rsa_encoding(alg).ok_or_else(|| internal("signing"))?;
        let kp = RsaKeyPair::from_pkcs8(pkcs8).map_err(|_| internal("RSA key load"))?;
        let mut sig = vec![0u8; kp.public_modulus_len()];
        match &imported {
            Some(d) => kp.sign_digest(enc, d, &mut sig).map_err(|_| internal("signing"))?,
            None => kp
                .sign(enc, &SystemRandom::new(), message, &mut sig)
                .map_err(|_| internal("signing"))?,
        }
        return Ok(sig);
    }
    let salg = ecdsa_signing(spec).ok_or_else(|| internal("signing"))?;
    let kp = EcdsaKeyPair::from_pkcs8(salg, pkcs8).map_err(|_| internal("ECC key load"))?;
    let sig = match &imported {
        Some(d) => kp.sign_digest(d).map_err(|_| internal("signing"))?,
        None => kp
            .sign(&SystemRandom::new(), message)
            .map_err(|_| internal("signing"))?,
    };
    Ok(sig.as_ref().to_vec())
}

/// Verifies a signature with the public key (DER SPKI) of a key of `spec`.
pub(crate) fn verify(
    spec: KeySpec,
    public_der: &[u8],
    alg: &str,
    message: &[u8],
    is_digest: bool,
    sig: &[u8],
) -> Result<bool, AwsError> {
    let v = verification(spec, alg).ok_or_else(|| internal("verification"))?;
    let key = signature::UnparsedPublicKey::new(v, public_der);
    if is_digest {
        let d =
            digest::Digest::import_less_safe(message, signing_digest(alg)).map_err(|_| internal("digest import"))?;
        Ok(key.verify_digest(&d, sig).is_ok())
    } else {
        Ok(key.verify(message, sig).is_ok())
    }
}

fn hmac_alg(alg: &str) -> Option<hmac::Algorithm> {
    Some(match alg {
        "HMAC_SHA_224" => hmac::HMAC_SHA224,
        "HMAC_SHA_256" => hmac::HMAC_SHA256,
        "HMAC_SHA_384" => hmac::HMAC_SHA384,
        "HMAC_SHA_512" => hmac::HMAC_SHA512,
        _ => return None,
    })
}

pub(crate) fn mac(alg: &str, key: &[u8], message: &[u8]) -> Result<Vec<u8>, AwsError> {
    let a = hmac_alg(alg).ok_or_else(|| internal("MAC"))?;
    Ok(hmac::sign(&hmac::Key::new(a, key), message).as_ref().to_vec())
}

/// Constant-time HMAC verification.
pub(crate) fn verify_mac(alg: &str, key: &[u8], message: &[u8], tag: &[u8]) -> Result<bool, AwsError> {
    let a = hmac_alg(alg).ok_or_else(|| internal("MAC"))?;
    Ok(hmac::verify(&hmac::Key::new(a, key), message, tag).is_ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn sign_verify_every_algorithm_and_message_type() {
        let cases: &[(KeySpec, &[&str])] = &[
            (
                KeySpec::Rsa2048,
                &[
                    "RSASSA_PSS_SHA_256",
                    "RSASSA_PSS_SHA_384",
                    "RSASSA_PSS_SHA_512",
                    "RSASSA_PKCS1_V1_5_SHA_256",
                    "RSASSA_PKCS1_V1_5_SHA_384",
                    "RSASSA_PKCS1_V1_5_SHA_512",
                ],
            ),
            (KeySpec::EccNistP256, &["ECDSA_SHA_256"]),
            (KeySpec::EccNistP384, &["ECDSA_SHA_384"]),
            (KeySpec::EccNistP521, &["ECDSA_SHA_512"]),
            (KeySpec::EccSecgP256k1, &["ECDSA_SHA_256"]),
        ];
        for (spec, algs) in cases {
            let pkcs8 = generate_material(*spec).unwrap();
            let public = public_key_der(*spec, pkcs8.expose()).unwrap();
            for alg in *algs {
                let msg = b"message to sign";
                let sig = sign(*spec, pkcs8.expose(), alg, msg, false).unwrap();
                assert!(verify(*spec, &public, alg, msg, false, &sig).unwrap(), "{alg}");
                assert!(!verify(*spec, &public, alg, b"other", false, &sig).unwrap(), "{alg}");
                // A DIGEST signature of H(msg) verifies as a RAW signature of msg and back.
                let d = digest::digest(signing_digest(alg), msg);
                let dsig = sign(*spec, pkcs8.expose(), alg, d.as_ref(), true).unwrap();
                assert!(verify(*spec, &public, alg, msg, false, &dsig).unwrap(), "{alg} digest");
                assert!(
                    verify(*spec, &public, alg, d.as_ref(), true, &sig).unwrap(),
                    "{alg} digest"
                );
            }
        }
    }

    #[test]
    fn oaep_round_trip_and_limits() {
        let pkcs8 = generate_material(KeySpec::Rsa2048).unwrap();
        for alg in ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"] {
            let max = oaep_max_plaintext(KeySpec::Rsa2048, alg);
            assert_eq!(max, if alg.ends_with('1') { 214 } else { 190 });
            let pt = vec![7u8; max];
            let ct = rsa_encrypt(pkcs8.expose(), alg, &pt).unwrap();
            assert_eq!(
                rsa_decrypt(pkcs8.expose(), alg, &ct).unwrap().unwrap().expose(),
                &pt[..]
            );
            assert!(rsa_decrypt(pkcs8.expose(), alg, &ct[1..]).unwrap().is_none());
        }
        assert_eq!(oaep_max_plaintext(KeySpec::Rsa4096, "RSAES_OAEP_SHA_256"), 446);
    }

    #[test]
    fn hmac_round_trip() {
        let key = generate_material(KeySpec::Hmac384).unwrap();
        let tag = mac("HMAC_SHA_384", key.expose(), b"m").unwrap();
        assert_eq!(tag.len(), 48);
        assert!(verify_mac("HMAC_SHA_384", key.expose(), b"m", &tag).unwrap());
        assert!(!verify_mac("HMAC_SHA_384", key.expose(), b"n", &tag).unwrap());
    }
}
