//! Intel Trust Authority tokens signed at test time by the test-only keys in
//! `tests/data/ita`, checked against a test JWKS.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use kms_attestation::{
    CachingJwks, Error, Evidence, ItaConfig, ItaVerifier, Jwks, JwksFetcher, JwksSource, Policy,
    Subject, TcbStatus, Verifier, secrets_report_data,
};
use serde_json::{Value, json};

const RSA_KEY: &[u8] = include_bytes!("data/ita/rsa-test-key.pem");
const OTHER_RSA_KEY: &[u8] = include_bytes!("data/ita/rsa-other-test-key.pem");
const EC_KEY: &[u8] = include_bytes!("data/ita/ec-p256-test-key.pem");

const NOW: u64 = 1_760_000_000;
const ISSUER: &str = "Intel Trust Authority";

fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_KEY).unwrap()
}

fn ec_key() -> EncodingKey {
    EncodingKey::from_ec_pem(EC_KEY).unwrap()
}

fn jwk(key: &EncodingKey, alg: Option<Algorithm>, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg.unwrap_or(Algorithm::RS256)).unwrap();
    if alg.is_none() {
        jwk.common.key_algorithm = None;
    }
    jwk.common.key_id = Some(kid.into());
    jwk
}

/// The test JWKS: an RSA key usable for RS256 and PS384, an RSA key pinned to
/// PS384, and a P-256 key.
fn jwks_json() -> Vec<u8> {
    let set = JwkSet {
        keys: vec![
            jwk(&rsa_key(), None, "rsa-1"),
            jwk(&rsa_key(), Some(Algorithm::PS384), "rsa-ps384"),
            jwk(&ec_key(), Some(Algorithm::ES256), "ec-1"),
        ],
    };
    serde_json::to_vec(&set).unwrap()
}

fn verifier() -> ItaVerifier<Arc<Jwks>> {
    ItaVerifier::new(
        Arc::new(Jwks::from_json(&jwks_json()).unwrap()),
        ItaConfig::default(),
    )
}

fn hex48(byte: u8) -> String {
    hex::encode([byte; 48])
}

/// A Trust Authority v2-style claim set (TDX claims nested under `tdx`).
fn claims() -> Value {
    json!({
        "iss": ISSUER,
        "iat": NOW - 10,
        "nbf": NOW - 10,
        "exp": NOW + 300,
        "ver": "2.0.0",
        "tdx": {
            "attester_type": "TDX",
            "attester_tcb_status": "UpToDate",
            "attester_advisory_ids": [],
            "tdx_is_debuggable": false,
            "tdx_mrtd": hex48(0x11).to_uppercase(),
            "tdx_rtmr0": hex48(0x20),
            "tdx_rtmr1": hex48(0x21),
            "tdx_rtmr2": hex48(0x22),
            "tdx_rtmr3": hex48(0x23),
            "tdx_report_data": hex::encode([0x44u8; 64]),
        }
    })
}

fn sign(claims: &Value, alg: Algorithm, kid: &str, key: &EncodingKey) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, key).unwrap()
}

fn rs256(claims: &Value) -> String {
    sign(claims, Algorithm::RS256, "rsa-1", &rsa_key())
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn kind(result: Result<kms_attestation::VerifiedTd, Error>) -> &'static str {
    result.expect_err("must be refused").kind()
}

#[test]
fn valid_tokens_map_tdx_claims() {
    let v = verifier();
    for token in [
        rs256(&claims()),
        sign(&claims(), Algorithm::PS384, "rsa-1", &rsa_key()),
        sign(&claims(), Algorithm::PS384, "rsa-ps384", &rsa_key()),
        sign(&claims(), Algorithm::ES256, "ec-1", &ec_key()),
    ] {
        let td = v.verify(&token, NOW).unwrap();
        assert_eq!(td.mrtd, [0x11; 48]);
        assert_eq!(td.rtmr, [[0x20; 48], [0x21; 48], [0x22; 48], [0x23; 48]]);
        assert_eq!(td.report_data, [0x44; 64]);
        assert_eq!(td.tcb_status, TcbStatus::UpToDate);
    }
}

#[test]
fn top_level_claims_of_older_tokens_are_read_too() {
    let mut flat = claims();
    let tdx = flat.as_object_mut().unwrap().remove("tdx").unwrap();
    for (k, v) in tdx.as_object().unwrap() {
        flat[k] = v.clone();
    }
    assert!(verifier().verify(&rs256(&flat), NOW).is_ok());
}

#[test]
fn wrong_key_is_bad_signature() {
    let forged = sign(
        &claims(),
        Algorithm::RS256,
        "rsa-1",
        &EncodingKey::from_rsa_pem(OTHER_RSA_KEY).unwrap(),
    );
    assert_eq!(
        verifier().verify(&forged, NOW).unwrap_err(),
        Error::BadSignature { what: "token" }
    );
    // A modified payload under the original signature, likewise.
    let token = rs256(&claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut changed = claims();
    changed["tdx"]["tdx_mrtd"] = json!(hex48(0x99));
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64(&serde_json::to_vec(&changed).unwrap()),
        parts[2]
    );
    assert_eq!(kind(verifier().verify(&tampered, NOW)), "bad_signature");
}

#[test]
fn unknown_kid_is_refused() {
    let token = sign(&claims(), Algorithm::RS256, "rotated-away", &rsa_key());
    assert_eq!(kind(verifier().verify(&token, NOW)), "unknown_key");
    // Token-supplied strings are cut short in errors.
    let long = sign(&claims(), Algorithm::RS256, &"k".repeat(5000), &rsa_key());
    let err = verifier().verify(&long, NOW).unwrap_err();
    assert_eq!(err.kind(), "unknown_key");
    assert!(err.to_string().len() < 120, "{err}");
}

#[test]
fn expired_token_is_stale() {
    let token = rs256(&claims());
    let leeway = ItaConfig::default().leeway_secs;
    assert!(verifier().verify(&token, NOW + 300 + leeway - 1).is_ok());
    assert_eq!(
        verifier().verify(&token, NOW + 300 + leeway).unwrap_err(),
        Error::Stale {
            what: "token".into(),
            not_after: NOW + 300,
            now: NOW + 300 + leeway
        }
    );
}

#[test]
fn not_yet_valid_token_is_refused() {
    let mut future = claims();
    future["nbf"] = json!(NOW + 3600);
    assert_eq!(
        kind(verifier().verify(&rs256(&future), NOW)),
        "not_yet_valid"
    );
    let mut issued_later = claims();
    issued_later["iat"] = json!(NOW + 3600);
    assert_eq!(
        kind(verifier().verify(&rs256(&issued_later), NOW)),
        "not_yet_valid"
    );
}

#[test]
fn max_age_bounds_old_tokens() {
    let jwks = Arc::new(Jwks::from_json(&jwks_json()).unwrap());
    let config = ItaConfig {
        max_age_secs: Some(60),
        ..ItaConfig::default()
    };
    let v = ItaVerifier::new(jwks, config);
    assert!(v.verify(&rs256(&claims()), NOW).is_ok());
    assert_eq!(kind(v.verify(&rs256(&claims()), NOW + 100)), "stale");
    let mut no_iat = claims();
    no_iat.as_object_mut().unwrap().remove("iat");
    assert_eq!(
        v.verify(&rs256(&no_iat), NOW).unwrap_err(),
        Error::MissingClaim { claim: "iat" }
    );
}

#[test]
fn wrong_issuer_is_refused() {
    let mut other = claims();
    other["iss"] = json!("Someone Else");
    assert_eq!(
        verifier().verify(&rs256(&other), NOW).unwrap_err(),
        Error::WrongIssuer {
            issuer: "Someone Else".into()
        }
    );
}

#[test]
fn alg_none_is_refused() {
    let header = b64(br#"{"alg":"none","kid":"rsa-1","typ":"JWT"}"#);
    let payload = b64(&serde_json::to_vec(&claims()).unwrap());
    for token in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}.AAAA"),
    ] {
        assert_eq!(
            verifier().verify(&token, NOW).unwrap_err(),
            Error::UnsupportedAlgorithm { alg: "none".into() }
        );
    }
}

#[test]
fn hs256_with_the_public_key_as_secret_is_refused() {
    // The classic key-confusion attack: HMAC keyed with the RSA public key,
    // which any verifier would have.
    let jwks: Value = serde_json::from_slice(&jwks_json()).unwrap();
    let public = serde_json::to_vec(&jwks["keys"][0]).unwrap();
    for secret in [public.as_slice(), RSA_KEY] {
        let token = sign(
            &claims(),
            Algorithm::HS256,
            "rsa-1",
            &EncodingKey::from_secret(secret),
        );
        assert_eq!(
            verifier().verify(&token, NOW).unwrap_err(),
            Error::UnsupportedAlgorithm {
                alg: "HS256".into()
            }
        );
    }
}

#[test]
fn algorithm_must_fit_the_key() {
    // ES256 header naming an RSA key, and RS256 with a key published for PS384.
    let es_on_rsa = sign(&claims(), Algorithm::ES256, "rsa-1", &ec_key());
    assert_eq!(
        kind(verifier().verify(&es_on_rsa, NOW)),
        "unsupported_algorithm"
    );
    let rs_on_ps = sign(&claims(), Algorithm::RS256, "rsa-ps384", &rsa_key());
    assert_eq!(
        kind(verifier().verify(&rs_on_ps, NOW)),
        "unsupported_algorithm"
    );
    // An algorithm outside the configured set.
    let jwks = Arc::new(Jwks::from_json(&jwks_json()).unwrap());
    let only_ps384 = ItaVerifier::new(
        jwks,
        ItaConfig {
            algorithms: vec![kms_attestation::SigningAlgorithm::PS384],
            ..ItaConfig::default()
        },
    );
    assert_eq!(
        kind(only_ps384.verify(&rs256(&claims()), NOW)),
        "unsupported_algorithm"
    );
}

#[test]
fn missing_claims_are_named() {
    for (path, claim) in [
        ("exp", "exp"),
        ("iss", "iss"),
        ("tdx.tdx_mrtd", "tdx_mrtd"),
        ("tdx.tdx_rtmr2", "tdx_rtmr2"),
        ("tdx.tdx_report_data", "tdx_report_data"),
        ("tdx.attester_tcb_status", "attester_tcb_status"),
    ] {
        let mut c = claims();
        match path.split_once('.') {
            Some((outer, inner)) => c[outer].as_object_mut().unwrap().remove(inner),
            None => c.as_object_mut().unwrap().remove(path),
        };
        assert_eq!(
            verifier().verify(&rs256(&c), NOW).unwrap_err(),
            Error::MissingClaim { claim },
            "{path}"
        );
    }
}

#[test]
fn malformed_claims_and_tokens() {
    let mut short = claims();
    short["tdx"]["tdx_mrtd"] = json!("abcd");
    assert_eq!(kind(verifier().verify(&rs256(&short), NOW)), "malformed");
    let mut unknown_status = claims();
    unknown_status["tdx"]["attester_tcb_status"] = json!("Fine");
    assert_eq!(
        kind(verifier().verify(&rs256(&unknown_status), NOW)),
        "malformed"
    );
    let mut sgx = claims();
    sgx["tdx"]["attester_type"] = json!("SGX");
    assert_eq!(kind(verifier().verify(&rs256(&sgx), NOW)), "malformed");
    for garbage in ["", "a.b", "a.b.c.d", "!!.??.xx", &"x".repeat(70_000)] {
        assert_eq!(
            kind(verifier().verify(garbage, NOW)),
            "malformed",
            "{garbage:.10}"
        );
    }
}

#[test]
fn debuggable_and_revoked_tds_are_refused() {
    let mut debug = claims();
    debug["tdx"]["tdx_is_debuggable"] = json!(true);
    assert_eq!(
        kind(verifier().verify(&rs256(&debug), NOW)),
        "td_attributes"
    );
    let mut revoked = claims();
    revoked["tdx"]["attester_tcb_status"] = json!("Revoked");
    assert_eq!(kind(verifier().verify(&rs256(&revoked), NOW)), "revoked");
}

#[test]
fn out_of_date_token_is_refused_strictly_and_accepted_leniently() {
    let mut outdated = claims();
    outdated["tdx"]["attester_tcb_status"] = json!("OutOfDate");
    outdated["tdx"]["attester_advisory_ids"] = json!(["INTEL-SA-00837"]);
    let td = verifier().verify(&rs256(&outdated), NOW).unwrap();
    assert_eq!(td.advisories, ["INTEL-SA-00837"]);
    assert_eq!(
        Policy::strict().check_tcb(&td).unwrap_err(),
        Error::OutdatedTcb {
            status: TcbStatus::OutOfDate,
            advisories: vec!["INTEL-SA-00837".into()]
        }
    );
    assert!(
        Policy::strict()
            .accept_status(TcbStatus::OutOfDate)
            .check_tcb(&td)
            .is_ok()
    );
}

#[test]
fn secrets_binding_through_the_verifier_front() {
    let pem = b"-----BEGIN PUBLIC KEY-----\nMIIB...\n-----END PUBLIC KEY-----\n";
    let binding = secrets_report_data(pem, b"nonce-7", "app-1", 1);
    let mut bound = claims();
    bound["tdx"]["tdx_report_data"] = json!(hex::encode(binding));
    let verifier = Verifier::builder().ita(verifier()).build();
    let td = verifier.verify(&Evidence::Ita(rs256(&bound)), NOW).unwrap();
    let policy = Policy::strict().allow_app("app-1", td.measurements());
    assert!(
        policy
            .appraise(&td, Subject::App("app-1"), &binding)
            .is_ok()
    );
    // The same token replayed with another RSA key, nonce or app ID.
    for other in [
        secrets_report_data(b"attacker key", b"nonce-7", "app-1", 1),
        secrets_report_data(pem, b"nonce-8", "app-1", 1),
        secrets_report_data(pem, b"nonce-7", "app-2", 1),
        secrets_report_data(pem, b"nonce-7", "app-1", 2),
    ] {
        assert_eq!(
            policy
                .appraise(&td, Subject::App("app-1"), &other)
                .unwrap_err(),
            Error::BindingMismatch
        );
    }
}

#[test]
fn jwks_without_usable_keys_is_a_config_error() {
    let only_hmac = json!({"keys": [{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}]});
    assert_eq!(
        Jwks::from_json(only_hmac.to_string().as_bytes())
            .unwrap_err()
            .kind(),
        "config"
    );
    // HMAC keys next to real ones are dropped.
    let mut mixed: Value = serde_json::from_slice(&jwks_json()).unwrap();
    mixed["keys"]
        .as_array_mut()
        .unwrap()
        .push(only_hmac["keys"][0].clone());
    assert_eq!(
        Jwks::from_json(mixed.to_string().as_bytes()).unwrap().len(),
        3
    );
}

struct CountingFetcher(AtomicUsize);

impl JwksFetcher for CountingFetcher {
    fn fetch(&self) -> Result<Jwks, Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Jwks::from_json(&jwks_json())
    }
}

#[test]
fn caching_jwks_refreshes_after_ttl() {
    let source = CachingJwks::new(CountingFetcher(AtomicUsize::new(0)), 600);
    let a = source.jwks(NOW).unwrap();
    let b = source.jwks(NOW + 600).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    let c = source.jwks(NOW + 601).unwrap();
    assert!(!Arc::ptr_eq(&a, &c));
    let v = ItaVerifier::new(source, ItaConfig::default());
    assert!(v.verify(&rs256(&claims()), NOW).is_ok());
}

/// The JWKS from a URL (a local server stands in for Trust Authority's certificate
/// endpoint): fetched once per TTL, kept through an outage for up to twice the TTL,
/// and an endpoint that answers too much or not a JWKS is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_from_a_url_is_cached_and_survives_a_short_outage() {
    use axum::Router;
    use axum::extract::State;
    use axum::routing::get;
    use kms_attestation::JwksUrl;
    use std::time::Duration;

    #[derive(Default)]
    struct Endpoint {
        hits: AtomicUsize,
        down: std::sync::atomic::AtomicBool,
    }
    async fn certs(State(e): State<Arc<Endpoint>>) -> axum::response::Response {
        use axum::response::IntoResponse;
        e.hits.fetch_add(1, Ordering::SeqCst);
        if e.down.load(Ordering::SeqCst) {
            return axum::http::StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        jwks_json().into_response()
    }
    async fn huge() -> Vec<u8> {
        vec![b' '; 2 * 1024 * 1024]
    }
    async fn not_jwks() -> &'static str {
        "{\"keys\": 7}"
    }
    let endpoint = Arc::new(Endpoint::default());
    let app = Router::new()
        .route("/certs", get(certs))
        .route("/huge", get(huge))
        .route("/nope", get(not_jwks))
        .with_state(endpoint.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let at = |path: &str| -> url::Url { format!("{base}{path}").parse().unwrap() };
    let timeout = Duration::from_secs(5);

    let fetcher = || JwksUrl::new(at("/certs"), None, timeout).unwrap();
    // A token verifies with keys from the URL.
    let v = ItaVerifier::new(CachingJwks::new(fetcher(), 600), ItaConfig::default());
    v.verify(&rs256(&claims()), NOW).unwrap();
    assert_eq!(endpoint.hits.load(Ordering::SeqCst), 1);
    let source = CachingJwks::new(fetcher(), 600);
    let a = source.jwks(NOW).unwrap();
    let b = source.jwks(NOW + 600).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(endpoint.hits.load(Ordering::SeqCst), 2, "once per TTL");
    // The endpoint fails: the last set stays in use up to twice the TTL.
    endpoint.down.store(true, Ordering::SeqCst);
    let c = source.jwks(NOW + 1_000).unwrap();
    assert!(Arc::ptr_eq(&a, &c));
    assert!(source.jwks(NOW + 1_300).is_err());
    assert_eq!(endpoint.hits.load(Ordering::SeqCst), 4);

    for path in ["/huge", "/nope", "/missing"] {
        let f = JwksUrl::new(at(path), None, timeout).unwrap();
        assert!(f.fetch().is_err(), "{path}");
    }
    assert!(JwksUrl::new("file:///etc/jwks".parse().unwrap(), None, timeout).is_err());
}
