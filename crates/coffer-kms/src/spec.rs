//! Key specs, key usages and the algorithms each combination supports (CreateKey's
//! compatibility rules and the algorithm lists of `KeyMetadata`).

use coffer_engines::AwsError;
use serde::{Deserialize, Serialize};

use crate::input::check_enum;

/// Every `KeySpec` value of the KMS API (the set AWS's enum message lists).
pub(crate) const ALL_KEY_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SYMMETRIC_DEFAULT",
    "HMAC_224",
    "HMAC_256",
    "HMAC_384",
    "HMAC_512",
    "SM2",
    "ML_DSA_44",
    "ML_DSA_65",
    "ML_DSA_87",
    "ECC_NIST_EDWARDS25519",
];

pub(crate) const ALL_KEY_USAGES: &[&str] = &["SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"];

pub(crate) const ALL_SIGNING_ALGORITHMS: &[&str] = &[
    "RSASSA_PSS_SHA_256",
    "RSASSA_PSS_SHA_384",
    "RSASSA_PSS_SHA_512",
    "RSASSA_PKCS1_V1_5_SHA_256",
    "RSASSA_PKCS1_V1_5_SHA_384",
    "RSASSA_PKCS1_V1_5_SHA_512",
    "ECDSA_SHA_256",
    "ECDSA_SHA_384",
    "ECDSA_SHA_512",
    "SM2DSA",
    "ML_DSA_SHAKE_256",
    "ED25519_SHA_512",
    "ED25519_PH_SHA_512",
];

pub(crate) const ALL_ENCRYPTION_ALGORITHMS: &[&str] =
    &["SYMMETRIC_DEFAULT", "RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256", "SM2PKE"];

pub(crate) const ALL_MAC_ALGORITHMS: &[&str] = &["HMAC_SHA_224", "HMAC_SHA_256", "HMAC_SHA_384", "HMAC_SHA_512"];

pub(crate) const ALL_KEY_PAIR_SPECS: &[&str] = &[
    "RSA_2048",
    "RSA_3072",
    "RSA_4096",
    "ECC_NIST_P256",
    "ECC_NIST_P384",
    "ECC_NIST_P521",
    "ECC_SECG_P256K1",
    "SM2",
];

/// The key specs Coffer can create.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum KeySpec {
    SymmetricDefault,
    Hmac224,
    Hmac256,
    Hmac384,
    Hmac512,
    Rsa2048,
    Rsa3072,
    Rsa4096,
    EccNistP256,
    EccNistP384,
    EccNistP521,
    EccSecgP256k1,
}

/// The key usages Coffer supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum KeyUsage {
    EncryptDecrypt,
    SignVerify,
    GenerateVerifyMac,
}

impl KeyUsage {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::EncryptDecrypt => "ENCRYPT_DECRYPT",
            Self::SignVerify => "SIGN_VERIFY",
            Self::GenerateVerifyMac => "GENERATE_VERIFY_MAC",
        }
    }
}

impl KeySpec {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::SymmetricDefault => "SYMMETRIC_DEFAULT",
            Self::Hmac224 => "HMAC_224",
            Self::Hmac256 => "HMAC_256",
            Self::Hmac384 => "HMAC_384",
            Self::Hmac512 => "HMAC_512",
            Self::Rsa2048 => "RSA_2048",
            Self::Rsa3072 => "RSA_3072",
            Self::Rsa4096 => "RSA_4096",
            Self::EccNistP256 => "ECC_NIST_P256",
            Self::EccNistP384 => "ECC_NIST_P384",
            Self::EccNistP521 => "ECC_NIST_P521",
            Self::EccSecgP256k1 => "ECC_SECG_P256K1",
        }
    }

    /// Parses a `KeySpec` (or `KeyPairSpec`) value Coffer supports; `None` for valid AWS
    /// values it does not (SM2, ML-DSA, Ed25519).
    pub(crate) fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "SYMMETRIC_DEFAULT" => Self::SymmetricDefault,
            "HMAC_224" => Self::Hmac224,
            "HMAC_256" => Self::Hmac256,
            "HMAC_384" => Self::Hmac384,
            "HMAC_512" => Self::Hmac512,
            "RSA_2048" => Self::Rsa2048,
            "RSA_3072" => Self::Rsa3072,
            "RSA_4096" => Self::Rsa4096,
            "ECC_NIST_P256" => Self::EccNistP256,
            "ECC_NIST_P384" => Self::EccNistP384,
            "ECC_NIST_P521" => Self::EccNistP521,
            "ECC_SECG_P256K1" => Self::EccSecgP256k1,
            _ => return None,
        })
    }

    pub(crate) fn is_rsa(self) -> bool {
        matches!(self, Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096)
    }

    pub(crate) fn is_ecc(self) -> bool {
        matches!(
            self,
            Self::EccNistP256 | Self::EccNistP384 | Self::EccNistP521 | Self::EccSecgP256k1
        )
    }

    pub(crate) fn is_hmac(self) -> bool {
        matches!(self, Self::Hmac224 | Self::Hmac256 | Self::Hmac384 | Self::Hmac512)
    }

    /// Whether a key of this spec may have `usage` (CreateKey).
    pub(crate) fn allows(self, usage: KeyUsage) -> bool {
        match usage {
            KeyUsage::EncryptDecrypt => self == Self::SymmetricDefault || self.is_rsa(),
            KeyUsage::SignVerify => self.is_rsa() || self.is_ecc(),
            KeyUsage::GenerateVerifyMac => self.is_hmac(),
        }
    }

    pub(crate) fn encryption_algorithms(self) -> Vec<&'static str> {
        if self == Self::SymmetricDefault {
            vec!["SYMMETRIC_DEFAULT"]
        } else if self.is_rsa() {
            vec!["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
        } else {
            Vec::new()
        }
    }

    pub(crate) fn signing_algorithms(self) -> Vec<&'static str> {
        match self {
            Self::Rsa2048 | Self::Rsa3072 | Self::Rsa4096 => vec![
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
            ],
            Self::EccNistP256 | Self::EccSecgP256k1 => vec!["ECDSA_SHA_256"],
            Self::EccNistP384 => vec!["ECDSA_SHA_384"],
            Self::EccNistP521 => vec!["ECDSA_SHA_512"],
            _ => Vec::new(),
        }
    }

    pub(crate) fn mac_algorithms(self) -> Vec<&'static str> {
        match self {
            Self::Hmac224 => vec!["HMAC_SHA_224"],
            Self::Hmac256 => vec!["HMAC_SHA_256"],
            Self::Hmac384 => vec!["HMAC_SHA_384"],
            Self::Hmac512 => vec!["HMAC_SHA_512"],
            _ => Vec::new(),
        }
    }

    /// RSA modulus length in bytes.
    pub(crate) fn rsa_bytes(self) -> usize {
        match self {
            Self::Rsa2048 => 256,
            Self::Rsa3072 => 384,
            Self::Rsa4096 => 512,
            _ => 0,
        }
    }
}

/// Decodes CreateKey's `KeySpec` / `CustomerMasterKeySpec` and `KeyUsage` and checks that
/// they go together.
pub(crate) fn parse_create_spec(
    key_spec: Option<&str>,
    legacy_spec: Option<&str>,
    usage: Option<&str>,
) -> Result<(KeySpec, KeyUsage), AwsError> {
    if key_spec.is_some() && legacy_spec.is_some() {
        return Err(AwsError::validation(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.",
        ));
    }
    let (spec_str, member) = match (key_spec, legacy_spec) {
        (Some(s), _) => (s, "KeySpec"),
        (None, Some(s)) => (s, "CustomerMasterKeySpec"),
        (None, None) => ("SYMMETRIC_DEFAULT", "KeySpec"),
    };
    check_enum(spec_str, ALL_KEY_SPECS, member)?;
    if let Some(u) = usage {
        check_enum(u, ALL_KEY_USAGES, "KeyUsage")?;
    }
    let spec = KeySpec::parse(spec_str).ok_or_else(|| {
        AwsError::new(
            coffer_engines::AwsErrorCode::UnsupportedOperationException,
            format!("{spec_str} is not supported by Coffer."),
        )
    })?;
    let usage = match usage {
        None if spec == KeySpec::SymmetricDefault => KeyUsage::EncryptDecrypt,
        None => {
            return Err(AwsError::validation(
                "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
            ));
        }
        Some("ENCRYPT_DECRYPT") => KeyUsage::EncryptDecrypt,
        Some("SIGN_VERIFY") => KeyUsage::SignVerify,
        Some("GENERATE_VERIFY_MAC") => KeyUsage::GenerateVerifyMac,
        Some(other) => {
            return Err(AwsError::new(
                coffer_engines::AwsErrorCode::UnsupportedOperationException,
                format!("KeyUsage {other} is not supported by Coffer."),
            ));
        }
    };
    if !spec.allows(usage) {
        return Err(AwsError::validation(format!(
            "KeyUsage {} is not compatible with KeySpec {}",
            usage.as_str(),
            spec.as_str()
        )));
    }
    Ok((spec, usage))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn create_spec_rules() {
        assert_eq!(
            parse_create_spec(None, None, None).unwrap(),
            (KeySpec::SymmetricDefault, KeyUsage::EncryptDecrypt)
        );
        assert!(parse_create_spec(Some("RSA_2048"), None, None).is_err());
        assert!(parse_create_spec(Some("HMAC_256"), None, Some("ENCRYPT_DECRYPT")).is_err());
        assert!(parse_create_spec(Some("ECC_NIST_P256"), None, Some("ENCRYPT_DECRYPT")).is_err());
        assert_eq!(
            parse_create_spec(None, Some("ECC_NIST_P521"), Some("SIGN_VERIFY"))
                .unwrap()
                .0,
            KeySpec::EccNistP521
        );
        let e = parse_create_spec(Some("Nope"), None, None).err().unwrap();
        assert!(
            e.message
                .starts_with("1 validation error detected: Value 'Nope' at 'keySpec'")
        );
    }
}
