//! What a TD must put in `report_data`, so that its evidence is bound to one
//! request (apps calling `/secrets`) or to one node identity (peer attestation).
//!
//! Both bindings are SHA-512, the size of `report_data`. A verifier recomputes the
//! binding from the request it is answering and compares it with the verified
//! `report_data` ([`crate::policy::check_binding`]). Without this, a genuine quote
//! from an allowed TD could be replayed by anyone to obtain secrets encrypted to a
//! key of their choosing, or to impersonate a node.

use sha2::{Digest, Sha256, Sha512};

use crate::verified::REPORT_DATA_LEN;

/// Domain tag that starts the node binding.
pub const NODE_BINDING_TAG: &[u8; 16] = b"EIGENKMS-NODE-V1";

/// The `report_data` an app must attest with when it calls `/secrets`:
///
/// ```text
/// report_data = SHA-512( len(rsa_pubkey_tmp_pem) ‖ rsa_pubkey_tmp_pem
///                      ‖ len(nonce)              ‖ nonce
///                      ‖ len(app_id)             ‖ app_id
///                      ‖ 0x00000008              ‖ attest_time )
/// ```
///
/// where `len(x)` is the byte length of `x` as a 4-byte big-endian unsigned
/// integer, `rsa_pubkey_tmp_pem` is the exact bytes of the `rsa_pubkey_tmp` field
/// of the request (the PEM text as sent, no normalisation of line endings or
/// trailing newline), `nonce` is the request's nonce bytes (after decoding it from
/// its JSON encoding), `app_id` is the UTF-8 bytes of the app ID and `attest_time`
/// the request's `attest_time` as 8 bytes big-endian.
///
/// The length prefixes make the encoding injective: no two different
/// (key, nonce, app, time) tuples hash the same input, so a quote for one request
/// can never be presented as a quote for another by moving bytes between fields. It
/// binds the one-time RSA key (so the partial signatures are encrypted to the TD
/// that attested), the nonce (so a quote is used once), the app ID (so a quote
/// for one app does not unlock another's secrets) and the attestation time (so a
/// captured request cannot be replayed with a fresh `attest_time` once the nodes
/// have forgotten its nonce: TDX quotes carry no time of their own).
///
/// # Panics
/// If a field is 4 GiB or longer (the length does not fit the prefix); requests
/// are size-limited far below that.
pub fn secrets_report_data(
    rsa_pubkey_tmp_pem: &[u8],
    nonce: &[u8],
    app_id: &str,
    attest_time: u64,
) -> [u8; REPORT_DATA_LEN] {
    length_prefixed(&[
        rsa_pubkey_tmp_pem,
        nonce,
        app_id.as_bytes(),
        &attest_time.to_be_bytes(),
    ])
}

/// The tag that starts [`app_sign_report_data`] (20 ASCII bytes).
pub const APP_SIGN_BINDING_TAG: &[u8; 20] = b"EIGENKMS-APP-SIGN-V1";

/// The `report_data` an app attests with when it asks `/app/sign` for its partial
/// of the app key:
///
/// ```text
/// report_data = SHA-512( 0x00000014 ‖ "EIGENKMS-APP-SIGN-V1"
///                      ‖ 0x00000020 ‖ response_key (32 bytes, X25519)
///                      ‖ len(nonce) ‖ nonce
///                      ‖ len(app_id) ‖ app_id
///                      ‖ 0x00000008 ‖ attest_time (8 bytes, big-endian) )
/// ```
///
/// The same length-prefixed encoding as [`secrets_report_data`], with a tag as its
/// first field: a `/secrets` binding starts with the length of a PEM key (hundreds
/// of bytes), this one with 20, so no quote for one endpoint is accepted at the other.
/// The one-time key is the X25519 key the partial is sealed to.
pub fn app_sign_report_data(
    response_key: &[u8; 32],
    nonce: &[u8],
    app_id: &str,
    attest_time: u64,
) -> [u8; REPORT_DATA_LEN] {
    length_prefixed(&[
        APP_SIGN_BINDING_TAG,
        response_key,
        nonce,
        app_id.as_bytes(),
        &attest_time.to_be_bytes(),
    ])
}

fn length_prefixed(fields: &[&[u8]]) -> [u8; REPORT_DATA_LEN] {
    let mut hasher = Sha512::new();
    for field in fields {
        let len = u32::try_from(field.len()).expect("binding field shorter than 4 GiB");
        hasher.update(len.to_be_bytes());
        hasher.update(field);
    }
    hasher.finalize().into()
}

/// The `report_data` a node attests with at `/attestation`:
///
/// ```text
/// report_data = SHA-512( "EIGENKMS-NODE-V1" ‖ operator_public_key ‖ SHA-256(tls_cert_der) )
/// ```
///
/// `"EIGENKMS-NODE-V1"` is the 16 ASCII bytes of [`NODE_BINDING_TAG`];
/// `operator_public_key` is the operator's public key in its canonical encoding
/// (the bytes registered on chain); `tls_cert_der` is the DER of the TLS
/// certificate the node serves. The tag and the digest have fixed sizes, so the
/// key is determined by the total length and no length prefix is needed. The tag
/// separates this binding from [`secrets_report_data`] (whose input starts with a
/// 4-byte length: the tag would read as a 1.1 GiB key, which no request carries).
///
/// It ties the node's TD to its operator identity (a quote from an allowed image
/// cannot be borrowed by another operator) and to its TLS key (a peer that
/// terminates TLS outside the TD cannot present it).
pub fn node_report_data(operator_public_key: &[u8], tls_cert_der: &[u8]) -> [u8; REPORT_DATA_LEN] {
    let cert_digest = Sha256::digest(tls_cert_der);
    let mut hasher = Sha512::new();
    hasher.update(NODE_BINDING_TAG);
    hasher.update(operator_public_key);
    hasher.update(cert_digest);
    hasher.finalize().into()
}

/// The tag of [`unlock_report_data`] (18 ASCII bytes).
pub const UNLOCK_BINDING_TAG: &[u8; 18] = b"EIGENKMS-UNLOCK-V1";

/// The `report_data` a locked node attests with when it asks its operator for the
/// passphrase of its sealed key file (`GET /unlock`):
///
/// ```text
/// report_data = SHA-512( "EIGENKMS-UNLOCK-V1" ‖ operator_address (20 bytes) ‖ x25519_public (32 bytes) )
/// ```
///
/// `x25519_public` is the one-use key the operator encrypts the passphrase to: a
/// quote over it shows that only the measured TD holds its private half, so a host
/// that relays the exchange learns nothing. `operator_address` names the key file
/// the TD will open. All fields have fixed sizes; the tag separates this binding
/// from [`node_report_data`], [`secrets_report_data`] and [`app_sign_report_data`].
pub fn unlock_report_data(
    operator_address: &[u8; 20],
    x25519_public: &[u8; 32],
) -> [u8; REPORT_DATA_LEN] {
    let mut hasher = Sha512::new();
    hasher.update(UNLOCK_BINDING_TAG);
    hasher.update(operator_address);
    hasher.update(x25519_public);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_binding_is_the_documented_encoding() {
        let pem = b"-----BEGIN PUBLIC KEY-----\nabc\n-----END PUBLIC KEY-----\n";
        let mut input = Vec::new();
        input.extend_from_slice(&(pem.len() as u32).to_be_bytes());
        input.extend_from_slice(pem);
        input.extend_from_slice(&3u32.to_be_bytes());
        input.extend_from_slice(b"n01");
        input.extend_from_slice(&5u32.to_be_bytes());
        input.extend_from_slice(b"app-1");
        input.extend_from_slice(&8u32.to_be_bytes());
        input.extend_from_slice(&1_700_000_000u64.to_be_bytes());
        let expected: [u8; 64] = Sha512::digest(&input).into();
        assert_eq!(
            secrets_report_data(pem, b"n01", "app-1", 1_700_000_000),
            expected
        );
    }

    #[test]
    fn app_sign_binding_is_the_documented_encoding_and_not_a_secrets_one() {
        let key = [5u8; 32];
        let mut input = Vec::new();
        input.extend_from_slice(&20u32.to_be_bytes());
        input.extend_from_slice(b"EIGENKMS-APP-SIGN-V1");
        input.extend_from_slice(&32u32.to_be_bytes());
        input.extend_from_slice(&key);
        input.extend_from_slice(&3u32.to_be_bytes());
        input.extend_from_slice(b"n01");
        input.extend_from_slice(&5u32.to_be_bytes());
        input.extend_from_slice(b"app-1");
        input.extend_from_slice(&8u32.to_be_bytes());
        input.extend_from_slice(&7u64.to_be_bytes());
        let expected: [u8; 64] = Sha512::digest(&input).into();
        assert_eq!(app_sign_report_data(&key, b"n01", "app-1", 7), expected);
        assert_ne!(
            app_sign_report_data(&key, b"n01", "app-1", 7),
            app_sign_report_data(&key, b"n01", "app-1", 8)
        );
        // The tag as a /secrets "key" with the rest shifted does not collide.
        assert_ne!(
            app_sign_report_data(&key, b"n01", "app-1", 7),
            secrets_report_data(APP_SIGN_BINDING_TAG, &key, "n01", 7)
        );
    }

    #[test]
    fn secrets_binding_fields_cannot_shift() {
        // Moving a byte from the nonce to the app ID changes the binding.
        assert_ne!(
            secrets_report_data(b"k", b"ab", "c", 1),
            secrets_report_data(b"k", b"a", "bc", 1)
        );
        assert_ne!(
            secrets_report_data(b"k", b"", "x", 1),
            secrets_report_data(b"kx", b"", "", 1)
        );
        assert_ne!(
            secrets_report_data(b"k", b"", "x", 1),
            secrets_report_data(b"k", b"", "x", 2)
        );
    }

    #[test]
    fn node_binding_is_the_documented_encoding() {
        let key = [7u8; 33];
        let cert = b"certificate der";
        let mut input = b"EIGENKMS-NODE-V1".to_vec();
        input.extend_from_slice(&key);
        input.extend_from_slice(&Sha256::digest(cert));
        let expected: [u8; 64] = Sha512::digest(&input).into();
        assert_eq!(node_report_data(&key, cert), expected);
        assert_ne!(node_report_data(&key, b"other cert"), expected);
    }

    #[test]
    fn unlock_binding_is_the_documented_encoding_and_differs_from_the_node_binding() {
        let address = [0x11u8; 20];
        let key = [0x22u8; 32];
        let mut input = b"EIGENKMS-UNLOCK-V1".to_vec();
        input.extend_from_slice(&address);
        input.extend_from_slice(&key);
        let expected: [u8; REPORT_DATA_LEN] = Sha512::digest(&input).into();
        assert_eq!(unlock_report_data(&address, &key), expected);
        assert_ne!(unlock_report_data(&address, &[0x23u8; 32]), expected);
        assert_ne!(unlock_report_data(&[0x12u8; 20], &key), expected);
        assert_ne!(node_report_data(&address, &key), expected);
    }
}
