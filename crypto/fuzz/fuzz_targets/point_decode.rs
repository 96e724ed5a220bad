//! G1/G2 decoders (compressed and EIP-2537): never panic, accept only canonical
//! encodings of subgroup points.
#![no_main]

use kms_crypto::{G1Point, G2Point};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = G1Point::from_slice(data) {
        assert_eq!(&p.to_compressed()[..], data);
        assert!(!p.is_identity());
    }
    if let Ok(p) = G2Point::from_slice(data) {
        assert_eq!(&p.to_compressed()[..], data);
        assert!(!p.is_identity());
    }
    if let Ok(arr) = <[u8; 48]>::try_from(data)
        && let Ok(p) = G1Point::from_compressed_allow_identity(&arr)
    {
        assert_eq!(p.to_compressed(), arr);
    }
    if let Ok(p) = G1Point::from_eip2537(data) {
        assert_eq!(&p.to_eip2537()[..], data);
    }
    if let Ok(p) = G2Point::from_eip2537(data) {
        assert_eq!(&p.to_eip2537()[..], data);
    }
});
