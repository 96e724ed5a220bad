//! `Scalar::from_slice`: never panics; whatever decodes re-encodes to the same bytes.
#![no_main]

use kms_crypto::Scalar;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = Scalar::from_slice(data) {
        assert_eq!(&s.to_bytes_be()[..], data);
    }
    let _ = Scalar::from_bytes_wide(data);
});
