//! Ethereum-style 20-byte operator addresses.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha3::{Digest, Keccak256};

use crate::error::CryptoError;

/// An operator's 20-byte Ethereum address, its identity on-chain and in the protocol.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct OperatorAddress([u8; 20]);

impl OperatorAddress {
    /// The zero address, used as the broadcast recipient.
    pub const ZERO: Self = Self([0u8; 20]);

    /// Wraps raw address bytes.
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// The raw address bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// Whether this is the zero (broadcast) address.
    pub fn is_zero(&self) -> bool {
        self.0 == [0u8; 20]
    }

    /// The EIP-55 mixed-case checksum form, `0x`-prefixed.
    pub fn to_checksum(&self) -> String {
        let lower = hex::encode(self.0);
        let hash = Keccak256::digest(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
            if c.is_ascii_alphabetic() && nibble >= 8 {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl FromStr for OperatorAddress {
    type Err = CryptoError;

    /// Parses `0x`-prefixed hex. All-lower or all-upper case is accepted; mixed case
    /// must carry a valid EIP-55 checksum, so that a typo in a config file is caught.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let body = s
            .strip_prefix("0x")
            .ok_or(CryptoError::InvalidEncoding("address must start with 0x"))?;
        if body.len() != 40 {
            return Err(CryptoError::InvalidLength {
                expected: 20,
                got: body.len() / 2,
            });
        }
        let mut bytes = [0u8; 20];
        hex::decode_to_slice(body, &mut bytes)
            .map_err(|_| CryptoError::InvalidEncoding("address is not hex"))?;
        let addr = Self(bytes);
        let mixed = body.chars().any(|c| c.is_ascii_lowercase())
            && body.chars().any(|c| c.is_ascii_uppercase());
        if mixed && addr.to_checksum()[2..] != *body {
            return Err(CryptoError::InvalidEncoding(
                "address checksum (EIP-55) mismatch",
            ));
        }
        Ok(addr)
    }
}

impl fmt::Display for OperatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for OperatorAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OperatorAddress({})", self.to_checksum())
    }
}

impl Serialize for OperatorAddress {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_checksum())
    }
}

impl<'de> Deserialize<'de> for OperatorAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eip55_known_answers() {
        // Test vectors from EIP-55.
        for s in [
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
            "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
            "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
        ] {
            let a: OperatorAddress = s.parse().unwrap();
            assert_eq!(a.to_checksum(), s);
        }
    }

    #[test]
    fn rejects_bad_checksum_and_lengths() {
        assert!(
            "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"
                .parse::<OperatorAddress>()
                .is_err()
        );
        assert!(
            "5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
                .parse::<OperatorAddress>()
                .is_err()
        );
        assert!(
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1bea"
                .parse::<OperatorAddress>()
                .is_err()
        );
        assert!(
            "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"
                .parse::<OperatorAddress>()
                .is_ok()
        );
    }
}
