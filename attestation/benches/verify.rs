//! Cost of verifying the test TDX quote: bare `dcap-qvl` verification (the floor
//! the `/secrets` goal is stated against: cores ÷ this cost), this crate's full
//! path (the same plus claims extraction), the cached-platform path that repeat
//! quotes from a known platform take, and the collateral parsing the cache
//! saves. Also one Trust Authority token verification.

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use dcap_qvl::QuoteCollateralV3;
use dcap_qvl::verify::QuoteVerifier;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kms_attestation::dcap::INTEL_SGX_ROOT_CA_DER;
use kms_attestation::{Collateral, DcapVerifier, ItaConfig, ItaVerifier, Jwks, StaticCollateral};

const QUOTE: &[u8] = include_bytes!("../tests/data/tdx_quote");
const COLLATERAL: &[u8] = include_bytes!("../tests/data/tdx_quote_collateral.json");
const AT: u64 = 1_750_838_400;
const RSA_KEY: &[u8] = include_bytes!("../tests/data/ita/rsa-test-key.pem");

fn dcap(c: &mut Criterion) {
    let raw: QuoteCollateralV3 = serde_json::from_slice(COLLATERAL).unwrap();
    let bare = QuoteVerifier::new(INTEL_SGX_ROOT_CA_DER.to_vec());
    let verifier = DcapVerifier::new(StaticCollateral::new(
        Collateral::from_json(COLLATERAL).unwrap(),
    ))
    .unwrap();
    verifier.verify(QUOTE, AT).unwrap();

    let mut g = c.benchmark_group("dcap");
    g.bench_function("bare_dcap_qvl_verify", |b| {
        b.iter(|| bare.verify(black_box(QUOTE), black_box(&raw), AT).unwrap())
    });
    g.bench_function("full_verify", |b| {
        b.iter(|| verifier.verify_uncached(black_box(QUOTE), AT).unwrap())
    });
    g.bench_function("cached_platform_verify", |b| {
        b.iter(|| verifier.verify(black_box(QUOTE), AT).unwrap())
    });
    g.bench_function("collateral_parse", |b| {
        b.iter(|| Collateral::from_json(black_box(COLLATERAL)).unwrap())
    });
    g.finish();
}

fn ita(c: &mut Criterion) {
    let key = EncodingKey::from_rsa_pem(RSA_KEY).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::PS384).unwrap();
    jwk.common.key_id = Some("k1".into());
    let jwks = Jwks::from_json(&serde_json::to_vec(&JwkSet { keys: vec![jwk] }).unwrap()).unwrap();
    let verifier = ItaVerifier::new(Arc::new(jwks), ItaConfig::default());
    let hex48 = "ab".repeat(48);
    let claims = serde_json::json!({
        "iss": "Intel Trust Authority", "iat": AT, "exp": AT + 300,
        "tdx": {
            "attester_tcb_status": "UpToDate", "tdx_mrtd": hex48, "tdx_rtmr0": hex48,
            "tdx_rtmr1": hex48, "tdx_rtmr2": hex48, "tdx_rtmr3": hex48,
            "tdx_report_data": "cd".repeat(64)
        }
    });
    let mut header = Header::new(Algorithm::PS384);
    header.kid = Some("k1".into());
    let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
    c.bench_function("ita/ps384_token_verify", |b| {
        b.iter(|| verifier.verify(black_box(&token), AT).unwrap())
    });
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = dcap, ita
}
criterion_main!(benches);
