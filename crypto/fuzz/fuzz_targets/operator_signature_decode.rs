//! Operator signature and BN254 key decoders.
#![no_main]

use kms_crypto::signer::{Bn254PublicKey, OperatorSignature, SignatureScheme};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for scheme in [SignatureScheme::Bn254, SignatureScheme::Ecdsa] {
        if let Ok(sig) = OperatorSignature::from_bytes(scheme, data) {
            assert_eq!(sig.to_bytes(), data);
        }
    }
    if let Ok(pk) = Bn254PublicKey::from_bytes(data) {
        assert_eq!(&pk.to_bytes()[..], data);
        assert!(pk.verify_twin());
    }
});
