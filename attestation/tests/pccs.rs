//! Collateral fetched from a PCCS: a local server with the PCCS v4 API serves the
//! test collateral; the real quote verifies with it, the cache asks once per
//! platform, and a PCCS that answers badly is refused with `collateral_unavailable`
//! or `malformed`, never trusted.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use kms_attestation::{
    CachingCollateralSource, CollateralFetcher, CollateralKey, DcapVerifier, PccsFetcher, PckCa,
    TcbStatus,
};

const QUOTE: &[u8] = include_bytes!("data/tdx_quote");
const COLLATERAL: &[u8] = include_bytes!("data/tdx_quote_collateral.json");
/// Inside the test collateral's validity (see dcap.rs).
const AT: u64 = 1_750_838_400;

/// How the test PCCS misbehaves.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Good,
    NoIssuerChain,
    TamperedTcbInfo,
    NotFound,
    Huge,
}

struct Pccs {
    collateral: serde_json::Value,
    mode: Mode,
    requests: AtomicUsize,
}

fn chain_header(pem: &str) -> HeaderValue {
    // PCCS percent-encodes the PEM chain.
    let enc: String = pem
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    HeaderValue::from_str(&enc).unwrap()
}

fn field<'a>(p: &'a Pccs, name: &str) -> &'a str {
    p.collateral[name].as_str().unwrap()
}

async fn pckcrl(
    State(p): State<Arc<Pccs>>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    p.requests.fetch_add(1, Ordering::SeqCst);
    assert_eq!(q.get("encoding").map(String::as_str), Some("der"));
    let mut h = HeaderMap::new();
    if p.mode != Mode::NoIssuerChain {
        h.insert(
            "SGX-PCK-CRL-Issuer-Chain",
            chain_header(field(&p, "pck_crl_issuer_chain")),
        );
    }
    (h, hex::decode(field(&p, "pck_crl")).unwrap()).into_response()
}

async fn tcb(State(p): State<Arc<Pccs>>) -> Response {
    p.requests.fetch_add(1, Ordering::SeqCst);
    if p.mode == Mode::NotFound {
        return StatusCode::NOT_FOUND.into_response();
    }
    if p.mode == Mode::Huge {
        return vec![b' '; 5 * 1024 * 1024].into_response();
    }
    let mut info = field(&p, "tcb_info").to_string();
    if p.mode == Mode::TamperedTcbInfo {
        info = info.replacen("\"version\":3", "\"version\":3 ", 1);
    }
    let body = format!(
        "{{\"tcbInfo\":{info},\"signature\":\"{}\"}}",
        field(&p, "tcb_info_signature")
    );
    let mut h = HeaderMap::new();
    h.insert(
        "TCB-Info-Issuer-Chain",
        chain_header(field(&p, "tcb_info_issuer_chain")),
    );
    (h, body).into_response()
}

async fn qe(State(p): State<Arc<Pccs>>) -> Response {
    p.requests.fetch_add(1, Ordering::SeqCst);
    let body = format!(
        "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
        field(&p, "qe_identity"),
        field(&p, "qe_identity_signature")
    );
    let mut h = HeaderMap::new();
    h.insert(
        "SGX-Enclave-Identity-Issuer-Chain",
        chain_header(field(&p, "qe_identity_issuer_chain")),
    );
    (h, body).into_response()
}

async fn rootcacrl(State(p): State<Arc<Pccs>>) -> Response {
    p.requests.fetch_add(1, Ordering::SeqCst);
    // PCCS serves the root CA CRL hex-encoded.
    field(&p, "root_ca_crl").to_string().into_response()
}

/// Serves the test collateral on 127.0.0.1; returns its URL and state.
async fn serve(mode: Mode) -> (url::Url, Arc<Pccs>) {
    let state = Arc::new(Pccs {
        collateral: serde_json::from_slice(COLLATERAL).unwrap(),
        mode,
        requests: AtomicUsize::new(0),
    });
    let app = Router::new()
        .route("/sgx/certification/v4/pckcrl", get(pckcrl))
        .route("/tdx/certification/v4/tcb", get(tcb))
        .route("/tdx/certification/v4/qe/identity", get(qe))
        .route("/sgx/certification/v4/rootcacrl", get(rootcacrl))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

fn fetcher(url: url::Url) -> PccsFetcher {
    PccsFetcher::new(url, None, Duration::from_secs(5)).unwrap()
}

/// The test quote's platform (the collateral's FMSPC, platform CA).
fn key() -> CollateralKey {
    let c = kms_attestation::Collateral::from_json(COLLATERAL).unwrap();
    CollateralKey {
        fmspc: c.fmspc(),
        ca: c.pck_ca().unwrap_or(PckCa::Processor),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_quote_verifies_with_collateral_from_a_pccs_fetched_once() {
    let (url, pccs) = serve(Mode::Good).await;
    let verifier = DcapVerifier::new(CachingCollateralSource::new(fetcher(url))).unwrap();
    // The verifier is synchronous; the fetcher works from a runtime worker too.
    let td = verifier.verify(QUOTE, AT).unwrap();
    assert_eq!(td.tcb_status, TcbStatus::UpToDate);
    assert_eq!(pccs.requests.load(Ordering::SeqCst), 4);
    verifier.clear_cache();
    verifier.verify(QUOTE, AT + 60).unwrap();
    assert_eq!(
        pccs.requests.load(Ordering::SeqCst),
        4,
        "collateral that has not expired is not fetched again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pccs_that_answers_badly_is_refused() {
    for (mode, kind) in [
        (Mode::NoIssuerChain, "collateral_unavailable"),
        (Mode::NotFound, "collateral_unavailable"),
        (Mode::Huge, "collateral_unavailable"),
    ] {
        let (url, _) = serve(mode).await;
        let err = fetcher(url).fetch(&key()).unwrap_err();
        assert_eq!(err.kind(), kind, "{err}");
    }
    // A TCB info that is not the one Intel signed parses, and then fails its
    // signature check at verification.
    let (url, _) = serve(Mode::TamperedTcbInfo).await;
    let verifier = DcapVerifier::new(CachingCollateralSource::new(fetcher(url))).unwrap();
    let err = verifier.verify(QUOTE, AT).unwrap_err();
    assert_ne!(err.kind(), "collateral_unavailable", "{err}");
    // Nothing listens: unavailable, within the timeout.
    let closed: url::Url = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
            .parse()
            .unwrap()
    };
    let err = fetcher(closed).fetch(&key()).unwrap_err();
    assert_eq!(err.kind(), "collateral_unavailable");
    assert!(PccsFetcher::new("ftp://x".parse().unwrap(), None, Duration::from_secs(1)).is_err());
}
