//! Shamir secret sharing of the 32-byte root key, over GF(256) with `vsss-rs`.
//!
//! [`split`] turns a [`Key256`] into `n` shares of which any `t` recover it through
//! [`combine`] (`1 <= t <= n <= 255`). Each share is 35 bytes:
//!
//! ```text
//! format version 1 (u8) | threshold t (u8) | x (u8, 1..=n) | y (32 bytes)
//! ```
//!
//! For `t >= 2`, `x | y` is exactly the share that `vsss_rs::Gf256::split_bytes` produces:
//! byte `i` of `y` is a random polynomial of degree `t - 1` with constant term byte `i` of the
//! key, evaluated at `x`. For `t == 1` the polynomial is the constant, so every share carries
//! the key itself as `y` (vsss-rs does not accept a threshold below 2, so this case is handled
//! here).
//!
//! Carrying `t` in every share lets [`combine`] refuse too few shares, duplicates and shares
//! from splits with different thresholds with [`CryptoError::Shares`]. What it cannot see is
//! a share from a *different split with the same threshold*, or a corrupted `y`: combining
//! such shares yields a wrong key without any error. That is detected one layer up, when the
//! barrier fails to decrypt the keyring with the combined key, and reported there as invalid
//! unseal keys.
//!
//! Shares are printed and typed in as standard base64 ([`encode_share`], [`decode_share`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::aead::Key256;
use crate::{CryptoError, SecretBytes, SecretString};

/// The share format version, the first byte of every share.
const SHARE_VERSION: u8 = 1;

/// Length of one encoded share in bytes.
pub const SHARE_LEN: usize = 3 + Key256::LEN;

/// Splits `key` into `shares` shares, any `threshold` of which recover it.
///
/// Requires `1 <= threshold <= shares` (the `u8` types bound `shares` by 255); anything else
/// is [`CryptoError::Shares`].
pub fn split(key: &Key256, shares: u8, threshold: u8) -> Result<Vec<SecretBytes>, CryptoError> {
    if threshold == 0 || shares < threshold {
        return Err(CryptoError::Shares(format!(
            "need 1 <= threshold <= shares <= 255, got threshold {threshold} and {shares} shares"
        )));
    }
    if threshold == 1 {
        return Ok((1..=shares).map(|x| encode_raw(1, x, key.expose())).collect());
    }
    let mut rng = SystemRng::default();
    let raw = vsss_rs::Gf256::split_bytes(usize::from(threshold), usize::from(shares), key.expose(), &mut rng)
        .map_err(|e| CryptoError::Shares(format!("split failed: {e}")))?;
    // Wrap the library's output at once, so it is wiped whatever happens next.
    let raw = Zeroizing::new(raw);
    if rng.failed {
        return Err(CryptoError::Rng);
    }
    raw.iter()
        .map(|share| match share.split_first() {
            Some((&x, y)) if y.len() == Key256::LEN => Ok(encode_raw(threshold, x, y)),
            _ => Err(CryptoError::Shares(
                "split produced a share of unexpected length".into(),
            )),
        })
        .collect()
}

/// Recovers the key from at least `threshold` shares of one split.
///
/// Malformed shares, duplicates, shares that disagree on the threshold and fewer shares than
/// the threshold are [`CryptoError::Shares`]. Shares from another split with the same
/// threshold give a wrong key, which only a later decryption can detect (see the module docs).
pub fn combine(shares: &[SecretBytes]) -> Result<Key256, CryptoError> {
    let Some(first) = shares.first() else {
        return Err(CryptoError::Shares("no shares given".into()));
    };
    let threshold = parse(first)?.threshold;
    let mut seen = [false; 256];
    for share in shares {
        let parsed = parse(share)?;
        if parsed.threshold != threshold {
            return Err(CryptoError::Shares(
                "the shares come from splits with different thresholds".into(),
            ));
        }
        let slot = &mut seen[usize::from(parsed.x)];
        if *slot {
            return Err(CryptoError::Shares("the same share was given twice".into()));
        }
        *slot = true;
    }
    if shares.len() < usize::from(threshold) {
        return Err(CryptoError::Shares(format!(
            "{} of {threshold} required shares given",
            shares.len()
        )));
    }
    if threshold == 1 {
        // Every share of a threshold-1 split carries the key itself.
        return Key256::from_bytes(parse(first)?.y);
    }
    let points: Zeroizing<Vec<Vec<u8>>> = Zeroizing::new(shares.iter().map(|s| s.expose()[2..].to_vec()).collect());
    let secret = Zeroizing::new(
        vsss_rs::Gf256::combine_bytes(&*points).map_err(|e| CryptoError::Shares(format!("combine failed: {e}")))?,
    );
    Key256::from_bytes(&secret)
}

/// A share as standard base64 text, for printing to the operator.
pub fn encode_share(share: &SecretBytes) -> SecretString {
    SecretString::new(STANDARD.encode(share.expose()))
}

/// Parses a share typed in as base64. Surrounding whitespace is ignored.
///
/// Text that is not base64 or does not decode to a well-formed share is
/// [`CryptoError::Shares`].
pub fn decode_share(text: &str) -> Result<SecretBytes, CryptoError> {
    let bytes = STANDARD
        .decode(text.trim())
        .map(SecretBytes::new)
        .map_err(|_| CryptoError::Shares("an unseal key is not valid base64".into()))?;
    parse(&bytes)?;
    Ok(bytes)
}

/// The threshold recorded in a share, after checking that the share is well-formed.
pub fn share_threshold(share: &SecretBytes) -> Result<u8, CryptoError> {
    Ok(parse(share)?.threshold)
}

/// The fields of one well-formed share.
struct ParsedShare<'a> {
    threshold: u8,
    x: u8,
    y: &'a [u8],
}

fn parse(share: &SecretBytes) -> Result<ParsedShare<'_>, CryptoError> {
    match share.expose() {
        [SHARE_VERSION, threshold, x, y @ ..] if y.len() == Key256::LEN && *threshold >= 1 && *x >= 1 => {
            Ok(ParsedShare {
                threshold: *threshold,
                x: *x,
                y,
            })
        }
        _ => Err(CryptoError::Shares("an unseal key is malformed".into())),
    }
}

fn encode_raw(threshold: u8, x: u8, y: &[u8]) -> SecretBytes {
    let mut out = Vec::with_capacity(SHARE_LEN);
    out.extend_from_slice(&[SHARE_VERSION, threshold, x]);
    out.extend_from_slice(y);
    SecretBytes::new(out)
}

/// The system CSPRNG (through aws-lc) behind the `rand_core` traits that vsss-rs takes.
///
/// Those traits are infallible, so a failure of the system RNG is recorded in `failed` (the
/// output is then zeros) and [`split`] checks the flag after splitting.
#[derive(Default)]
struct SystemRng {
    failed: bool,
}

impl rand_core::TryRng for SystemRng {
    type Error = std::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        if crate::random::fill(dst).is_err() {
            dst.fill(0);
            self.failed = true;
        }
        Ok(())
    }
}

impl rand_core::TryCryptoRng for SystemRng {}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key() -> Key256 {
        Key256::generate().unwrap()
    }

    #[test]
    fn three_of_five() {
        let k = key();
        let shares = split(&k, 5, 3).unwrap();
        assert_eq!(shares.len(), 5);
        assert!(shares.iter().all(|s| s.len() == SHARE_LEN));
        for subset in [[0, 1, 2], [4, 2, 0], [1, 3, 4], [2, 3, 4]] {
            let picked: Vec<_> = subset.iter().map(|&i| shares[i].clone()).collect();
            assert!(combine(&picked).unwrap().ct_eq(&k));
        }
        assert!(
            combine(&shares).unwrap().ct_eq(&k),
            "more than the threshold also works"
        );
    }

    #[test]
    fn too_few_duplicate_and_malformed_shares_fail() {
        let shares = split(&key(), 5, 3).unwrap();
        let is_shares_err = |r: Result<Key256, CryptoError>| matches!(r, Err(CryptoError::Shares(_)));
        assert!(is_shares_err(combine(&shares[..2])));
        assert!(is_shares_err(combine(&[])));
        assert!(is_shares_err(combine(&[
            shares[0].clone(),
            shares[1].clone(),
            shares[0].clone()
        ])));
        let mut bad = shares[0].expose().to_vec();
        bad.pop();
        assert!(is_shares_err(combine(&[
            SecretBytes::new(bad),
            shares[1].clone(),
            shares[2].clone()
        ])));
        let mut bad = shares[0].expose().to_vec();
        bad[0] = 9;
        assert!(is_shares_err(combine(&[
            SecretBytes::new(bad),
            shares[1].clone(),
            shares[2].clone()
        ])));
        let other = split(&key(), 5, 2).unwrap();
        assert!(is_shares_err(combine(&[
            other[0].clone(),
            shares[1].clone(),
            shares[2].clone()
        ])));
    }

    #[test]
    fn shares_of_another_split_give_a_wrong_key() {
        let k = key();
        let ours = split(&k, 5, 3).unwrap();
        let theirs = split(&key(), 5, 3).unwrap();
        let mixed = [ours[0].clone(), ours[1].clone(), theirs[2].clone()];
        assert!(!combine(&mixed).unwrap().ct_eq(&k));
    }

    #[test]
    fn threshold_one_and_single_share() {
        let k = key();
        let one = split(&k, 1, 1).unwrap();
        assert_eq!(one.len(), 1);
        assert!(combine(&one).unwrap().ct_eq(&k));
        let many = split(&k, 4, 1).unwrap();
        for s in &many {
            assert!(combine(std::slice::from_ref(s)).unwrap().ct_eq(&k));
        }
    }

    #[test]
    fn bad_parameters_fail() {
        let k = key();
        assert!(matches!(split(&k, 3, 0), Err(CryptoError::Shares(_))));
        assert!(matches!(split(&k, 2, 3), Err(CryptoError::Shares(_))));
        assert!(matches!(split(&k, 0, 0), Err(CryptoError::Shares(_))));
        let max = split(&k, 255, 255).unwrap();
        assert_eq!(max.len(), 255);
        assert!(combine(&max).unwrap().ct_eq(&k));
    }

    #[test]
    fn base64_round_trip() {
        let shares = split(&key(), 3, 2).unwrap();
        let text = encode_share(&shares[0]);
        assert_eq!(text.len(), 48);
        let back = decode_share(&format!(" {}\n", text.expose())).unwrap();
        assert!(back == shares[0]);
        assert_eq!(share_threshold(&back).unwrap(), 2);
        assert!(matches!(decode_share("not base64!"), Err(CryptoError::Shares(_))));
        assert!(matches!(decode_share("AAAA"), Err(CryptoError::Shares(_))));
    }

    #[test]
    fn error_messages_carry_no_share_material() {
        let shares = split(&key(), 3, 2).unwrap();
        let text = encode_share(&shares[0]);
        let err = combine(&[shares[0].clone(), shares[0].clone()])
            .err()
            .unwrap()
            .to_string();
        assert!(!err.contains(text.expose()));
        assert!(!err.contains(&hex::encode(shares[0].expose())));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn prop_split_combine(
            bytes in proptest::array::uniform32(any::<u8>()),
            n in 1u8..=20,
            t_seed in any::<u8>(),
            order_seed in any::<u64>(),
        ) {
            let t = 1 + t_seed % n;
            let k = Key256::from_bytes(&bytes).unwrap();
            let shares = split(&k, n, t).unwrap();
            prop_assert_eq!(shares.len(), usize::from(n));
            // Pick a pseudo-random subset of exactly t shares.
            let mut idx: Vec<usize> = (0..usize::from(n)).collect();
            let mut s = order_seed;
            for i in (1..idx.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                idx.swap(i, (s >> 33) as usize % (i + 1));
            }
            let picked: Vec<_> = idx[..usize::from(t)].iter().map(|&i| shares[i].clone()).collect();
            prop_assert!(combine(&picked).unwrap().ct_eq(&k));
            let decoded: Vec<_> = picked.iter().map(|s| decode_share(encode_share(s).expose()).unwrap()).collect();
            prop_assert!(combine(&decoded).unwrap().ct_eq(&k));
            if t > 1 {
                prop_assert!(matches!(combine(&picked[..usize::from(t) - 1]), Err(CryptoError::Shares(_))));
            }
        }
    }
}
