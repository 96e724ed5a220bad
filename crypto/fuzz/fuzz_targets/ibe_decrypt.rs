//! IBE decryption of hostile ciphertexts: never panics, never "succeeds" on garbage.
#![no_main]

use kms_crypto::tbls::hash_app_id;
use kms_crypto::{AppPrivateKey, Scalar, ibe};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = AppPrivateKey::from_point(hash_app_id(b"fuzz").mul(&Scalar::from_u64(7)));
    let _ = ibe::decrypt(&key, b"fuzz", data);
    // Reach past the header checks into point decoding and the AEAD.
    let mut framed = b"EKMS\x01".to_vec();
    framed.extend_from_slice(data);
    assert!(
        ibe::decrypt(&key, b"fuzz", &framed).is_err(),
        "forged an AEAD tag"
    );
});
