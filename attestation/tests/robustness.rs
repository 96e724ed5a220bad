//! Hostile input never panics: random bytes, truncations and bit flips of a
//! real quote, and random tokens, only ever produce errors (or, for flips of
//! bytes no check covers, the original verdict).

use std::sync::{Arc, OnceLock};

use kms_attestation::{
    Collateral, DcapVerifier, Evidence, ItaConfig, ItaVerifier, Jwks, StaticCollateral, Verifier,
};
use proptest::prelude::*;

const QUOTE: &[u8] = include_bytes!("data/tdx_quote");
const COLLATERAL: &[u8] = include_bytes!("data/tdx_quote_collateral.json");
const AT: u64 = 1_750_838_400;

fn verifier() -> &'static Verifier {
    static VERIFIER: OnceLock<Verifier> = OnceLock::new();
    VERIFIER.get_or_init(|| {
        let dcap = DcapVerifier::new(StaticCollateral::new(
            Collateral::from_json(COLLATERAL).unwrap(),
        ))
        .unwrap();
        let jwks = json_jwks();
        Verifier::builder()
            .dcap(dcap)
            .ita(ItaVerifier::new(Arc::new(jwks), ItaConfig::default()))
            .build()
    })
}

fn json_jwks() -> Jwks {
    // Any well-formed RSA key will do: these tests never produce a valid token.
    let jwks = serde_json::json!({"keys": [{
        "kty": "RSA", "kid": "k", "e": "AQAB",
        "n": "sXchDaQebHnPiGvyDOAT4saGEUetSyo9MKLOoWFsueri23bOdgWp4Dy1WlUzewbgBHod5pcM9H95GQRV3JDXboIRROSBigeC5yjU1hGzHHyXss8UDprecbAYxknTcQkhslANGRUZmdTOQ5qTRsLAt6BTYuyvVRdhS8exSZEy_c4gs_7svlJJQ4H9_NxsiIoLwAEk7-Q3UXERGYw_75IDrGA84-lA_-Ct4eTlXHBIY2EaV7t7LjJaynVJCpkv4LKjTTAumiGUIuQhrNhZLuF_RJLqHpM2kgWFLU7-VTdL1VbC2tejvcI2BlMkEpk1BzBZI0KQB0GaDWFLN-aEAw3vRw"
    }]});
    Jwks::from_json(jwks.to_string().as_bytes()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..6000)) {
        prop_assert!(verifier().verify(&Evidence::Dcap(bytes.clone()), AT).is_err());
        prop_assert!(verifier().verify(&Evidence::Simulated(bytes), AT).is_err());
    }

    #[test]
    fn random_bytes_with_a_quote_header_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..6000)) {
        let mut bytes = QUOTE[..48].to_vec();
        bytes.extend_from_slice(&tail);
        prop_assert!(verifier().verify(&Evidence::Dcap(bytes), AT).is_err());
    }

    #[test]
    fn truncations_never_panic(len in 0..AUTH_END) {
        prop_assert!(verifier().verify(&Evidence::Dcap(QUOTE[..len].to_vec()), AT).is_err());
    }

    #[test]
    fn bit_flips_never_panic(offset in 0..QUOTE.len(), bit in 0u8..8) {
        let mut bytes = QUOTE.to_vec();
        bytes[offset] ^= 1 << bit;
        // Some bytes (reserved fields the signature does not cover) may be
        // ignored; everything else must be refused. Either way: no panic.
        let _ = verifier().verify(&Evidence::Dcap(bytes), AT);
    }

    #[test]
    fn random_tokens_never_panic(token in "[A-Za-z0-9_.=-]{0,400}") {
        prop_assert!(verifier().verify(&Evidence::Ita(token), AT).is_err());
    }
}

/// Where the test quote's auth data ends; 70 zero bytes of padding follow, as
/// configfs-tsm leaves them, which verification ignores.
const AUTH_END: usize = 4936;

#[test]
fn every_truncation_into_the_auth_data_is_refused() {
    assert!(QUOTE[AUTH_END..].iter().all(|b| *b == 0));
    let full = verifier()
        .verify(&Evidence::Dcap(QUOTE.to_vec()), AT)
        .unwrap();
    for len in 0..QUOTE.len() {
        let result = verifier().verify(&Evidence::Dcap(QUOTE[..len].to_vec()), AT);
        if len < AUTH_END {
            assert!(result.is_err(), "len {len}");
        } else {
            assert_eq!(result.unwrap(), full, "len {len}");
        }
    }
}
