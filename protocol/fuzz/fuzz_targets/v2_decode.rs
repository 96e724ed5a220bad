//! v2 payload decoding: `Body::decode` and `open_unverified` never panic on any
//! bytes; whatever decodes re-encodes to exactly the input (one encoding, one hash),
//! and the envelope check accepts exactly what decodes (given the right hash, signer
//! and session).
#![no_main]

use std::sync::OnceLock;

use kms_crypto::OperatorAddress;
use kms_crypto::signer::OperatorSignature;
use kms_protocol::SignedMessage;
use kms_protocol::dkg::SessionHash;
use kms_protocol::dkg::wire::{Body, open_unverified};
use kms_protocol::session::SessionTimestamp;
use kms_protocol::sim::SimOperator;
use libfuzzer_sys::fuzz_target;
use sha3::{Digest, Keccak256};

/// Any well-formed signature: `open_unverified` does not look at it.
fn signature() -> &'static OperatorSignature {
    static SIGNATURE: OnceLock<OperatorSignature> = OnceLock::new();
    SIGNATURE.get_or_init(|| SimOperator::generate_uncertified(1, 1)[0].signer.sign(&[0; 32]))
}

fuzz_target!(|data: &[u8]| {
    let decoded = Body::decode(data);
    if let Ok(b) = &decoded {
        assert_eq!(b.encode(), data, "a decoded payload re-encodes to its bytes");
        assert_eq!(b.kind() as u8, data[0]);
        let _ = format!("{b:?}");
    }
    // The right hash, the claimed author as signer and the session the payload names:
    // decoding inside the envelope check is reached for every input.
    let author = decoded
        .as_ref()
        .map_or(OperatorAddress::from_bytes([0; 20]), Body::author);
    let (timestamp, session) = decoded
        .as_ref()
        .map_or((SessionTimestamp(0), SessionHash([0; 32])), Body::session);
    let m = SignedMessage {
        payload: data.to_vec(),
        hash: Keccak256::digest(data).into(),
        signer: author,
        signature: signature().clone(),
    };
    match open_unverified(&m, timestamp, &session) {
        Ok(b) => {
            assert!(decoded.is_ok());
            assert_eq!(b.encode(), data);
        }
        Err(_) => assert!(decoded.is_err(), "a decodable payload opens"),
    }
    // A stale hash is refused whatever the payload.
    let mut stale = m;
    stale.hash[0] ^= 1;
    assert!(open_unverified(&stale, timestamp, &session).is_err());
});
