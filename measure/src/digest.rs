//! SHA-384 digests (the size of every TDX measurement register) as a newtype, so a
//! register value, an event digest and a file hash cannot be confused with arbitrary
//! byte strings, and so they serialise as lowercase hex.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256, Sha384};

/// Bytes in a SHA-384 digest and in a TDX measurement register.
pub const SHA384_LEN: usize = 48;

/// A SHA-384 digest: an event digest, a file hash, or a register value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha384Digest(pub [u8; SHA384_LEN]);

impl Sha384Digest {
    /// All zeroes: the value of an RTMR when the TD starts.
    pub const ZERO: Sha384Digest = Sha384Digest([0; SHA384_LEN]);

    /// SHA-384 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Sha384Digest(Sha384::digest(data).into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; SHA384_LEN] {
        &self.0
    }

    /// Lowercase hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for Sha384Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sha384Digest({})", self.to_hex())
    }
}

impl fmt::Display for Sha384Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// A string that is not 96 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected 96 hex digits (a SHA-384 value), got {0:?}")]
pub struct DigestParseError(pub String);

impl FromStr for Sha384Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut out = [0u8; SHA384_LEN];
        hex::decode_to_slice(s, &mut out).map_err(|_| DigestParseError(s.to_string()))?;
        Ok(Sha384Digest(out))
    }
}

impl Serialize for Sha384Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Sha384Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// SHA-256 of `data`, lowercase hex (file identities in release manifests).
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// UTF-16LE encoding of `s`, without a terminator (UEFI strings).
pub fn utf16le(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha384_of_abc_is_the_fips_180_2_vector() {
        assert_eq!(
            Sha384Digest::of(b"abc").to_hex(),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed\
             8086072ba1e7cc2358baeca134c825a7"
        );
    }

    #[test]
    fn hex_round_trips_and_rejects_wrong_lengths() {
        let d = Sha384Digest::of(b"x");
        assert_eq!(d.to_hex().parse::<Sha384Digest>().unwrap(), d);
        assert!("abcd".parse::<Sha384Digest>().is_err());
        assert!(
            format!("{}zz", &d.to_hex()[..94])
                .parse::<Sha384Digest>()
                .is_err()
        );
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Sha384Digest>(&json).unwrap(), d);
    }
}
