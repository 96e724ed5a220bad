//! JSON decoders of protocol values: commitments, points, addresses, public keys.
#![no_main]

use kms_crypto::signer::OperatorPublicKey;
use kms_crypto::{Commitment, G2Point, OperatorAddress};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(c) = serde_json::from_slice::<Commitment>(data) {
        let again: Commitment = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(again, c);
    }
    let _ = serde_json::from_slice::<G2Point>(data);
    if let Ok(k) = serde_json::from_slice::<OperatorPublicKey>(data) {
        let again: OperatorPublicKey =
            serde_json::from_str(&serde_json::to_string(&k).unwrap()).unwrap();
        assert_eq!(again, k);
    }
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(a) = text.parse::<OperatorAddress>()
    {
        assert_eq!(a.to_checksum().parse::<OperatorAddress>().unwrap(), a);
    }
});
