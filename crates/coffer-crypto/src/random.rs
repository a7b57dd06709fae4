//! Randomness from the system CSPRNG (through aws-lc-rs).

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::{CryptoError, SecretBytes};

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(buf).map_err(|_| CryptoError::Rng)
}

/// `n` random bytes, in a zeroizing box.
pub fn secret_bytes(n: usize) -> Result<SecretBytes, CryptoError> {
    let mut v = vec![0u8; n];
    fill(&mut v)?;
    Ok(SecretBytes::new(v))
}

/// A uniformly random index in `0..n` (`n > 0`), without modulo bias.
pub fn index(n: usize) -> Result<usize, CryptoError> {
    if n == 0 {
        return Err(CryptoError::Rng);
    }
    let n = n as u64;
    // Reject the top partial range so every value is equally likely.
    let zone = u64::MAX - (u64::MAX % n);
    loop {
        let mut b = [0u8; 8];
        fill(&mut b)?;
        let v = u64::from_le_bytes(b);
        if v < zone {
            return Ok((v % n) as usize);
        }
    }
}

/// A random string of `len` characters drawn uniformly from `alphabet`.
pub fn string_from(alphabet: &[u8], len: usize) -> Result<String, CryptoError> {
    let mut s = String::with_capacity(len);
    for _ in 0..len {
        s.push(char::from(alphabet[index(alphabet.len())?]));
    }
    Ok(s)
}

/// A random version-4 UUID in its hyphenated lowercase form.
pub fn uuid_v4() -> Result<String, CryptoError> {
    let mut b = [0u8; 16];
    fill(&mut b)?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_shape() -> Result<(), CryptoError> {
        let u = uuid_v4()?;
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
        assert_ne!(u, uuid_v4()?);
        Ok(())
    }

    #[test]
    fn index_stays_in_range() -> Result<(), CryptoError> {
        for n in 1..50 {
            assert!(index(n)? < n);
        }
        Ok(())
    }
}
