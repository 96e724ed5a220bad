//! `0x`-hex serde helpers shared by every encoded type in the crate.

use serde::{Deserialize, Deserializer, Serializer};
use zeroize::Zeroizing;

/// Serializes bytes as a `0x`-prefixed lower-case hex string.
pub fn serialize_bytes<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    let text = Zeroizing::new(format!("0x{}", hex::encode(bytes)));
    s.serialize_str(&text)
}

/// Decodes a `0x`-prefixed hex string of exactly `N` bytes. The length is checked
/// before decoding so that a hostile, huge string is rejected without work.
pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], &'static str> {
    let body = text
        .strip_prefix("0x")
        .ok_or("hex string must start with 0x")?;
    if body.len() != 2 * N {
        return Err("hex string has the wrong length");
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(body, &mut out).map_err(|_| "invalid hex digit")?;
    Ok(out)
}

/// Deserializes a `0x`-hex string of exactly `N` bytes.
pub fn deserialize_array<'de, D: Deserializer<'de>, const N: usize>(
    d: D,
) -> Result<[u8; N], D::Error> {
    let text = Zeroizing::new(String::deserialize(d)?);
    decode_array::<N>(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_rejects() {
        assert_eq!(decode_array::<2>("0xabcd"), Ok([0xab, 0xcd]));
        assert_eq!(decode_array::<2>("0xABCD"), Ok([0xab, 0xcd]));
        assert!(decode_array::<2>("abcd").is_err());
        assert!(decode_array::<2>("0xabc").is_err());
        assert!(decode_array::<2>("0xabcdef").is_err());
        assert!(decode_array::<2>("0xabzz").is_err());
    }
}
