//! Collateral from a PCCS (Intel's Provisioning Certificate Caching Service, or any
//! service with its v4 API): the PCK CRL, the TDX TCB info and QE identity with their
//! issuer chains, and the root CA CRL. Put behind
//! [`CachingCollateralSource`](super::source::CachingCollateralSource), each platform's
//! collateral is fetched once and kept until its earliest `nextUpdate`.
//!
//! Written here rather than taken from `dcap_qvl::collateral`: that client exists only
//! with dcap-qvl's `report` feature, which brings a second TLS stack and DNS resolver
//! into the node. What it does is four GET requests; the documents are parsed and
//! their signatures checked by dcap-qvl at verification time, as for files.

use std::time::Duration;

use dcap_qvl::QuoteCollateralV3;
use percent_encoding::percent_decode_str;
use serde::Deserialize;
use serde_json::value::RawValue;
use url::Url;

use super::collateral::{Collateral, CollateralKey};
use super::source::CollateralFetcher;
use crate::error::Error;
use crate::fetch::{Getter, block_on_own_thread};

/// The largest PCCS answer read (a PCK CRL of a large platform CA is a few hundred KiB).
pub const MAX_PCCS_ANSWER_BYTES: usize = 4 * 1024 * 1024;

/// Fetches TDX collateral from a PCCS at `base` (e.g. `https://pccs.example:8081`).
#[derive(Clone, Debug)]
pub struct PccsFetcher {
    base: Url,
    http: Getter,
}

impl PccsFetcher {
    /// A fetcher for the PCCS at `base`. `roots`: the certificates to trust for an
    /// `https` PCCS (a self-hosted PCCS usually has its own CA); `None` uses the
    /// platform's roots. Every request is bounded by `timeout`.
    pub fn new(
        base: Url,
        roots: Option<Vec<reqwest::Certificate>>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        if !matches!(base.scheme(), "https" | "http") {
            return Err(unavailable_cfg(format!(
                "PCCS URL must be http(s), not {}",
                base.scheme()
            )));
        }
        let http = Getter::new(roots, timeout).map_err(unavailable_cfg)?;
        Ok(Self { base, http })
    }

    fn url(&self, key: &CollateralKey, tee: &str, path: &str) -> Result<Url, Error> {
        let base = self.base.as_str().trim_end_matches('/');
        format!("{base}/{tee}/certification/v4/{path}")
            .parse()
            .map_err(|e| unavailable(key, format!("PCCS URL: {e}")))
    }

    async fn get(&self, key: &CollateralKey, url: Url) -> Result<Answer, Error> {
        let what = url.path().to_string();
        let got = self
            .http
            .get(url, MAX_PCCS_ANSWER_BYTES)
            .await
            .map_err(|e| unavailable(key, e))?;
        Ok(Answer {
            what,
            headers: got.headers,
            body: got.body,
        })
    }

    /// Fetches the collateral for `key` (asynchronously).
    pub async fn fetch_async(&self, key: &CollateralKey) -> Result<Collateral, Error> {
        let fmspc = hex::encode_upper(key.fmspc);
        let crl = self
            .get(
                key,
                self.url(
                    key,
                    "sgx",
                    &format!("pckcrl?ca={}&encoding=der", key.ca.as_str()),
                )?,
            )
            .await?;
        let tcb = self
            .get(key, self.url(key, "tdx", &format!("tcb?fmspc={fmspc}"))?)
            .await?;
        let qe = self.get(key, self.url(key, "tdx", "qe/identity")?).await?;
        let root = self.get(key, self.url(key, "sgx", "rootcacrl")?).await?;

        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Tcb<'a> {
            #[serde(borrow)]
            tcb_info: &'a RawValue,
            signature: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Qe<'a> {
            #[serde(borrow)]
            enclave_identity: &'a RawValue,
            signature: String,
        }
        // The signed documents are kept byte for byte as served: their signatures
        // cover exactly those bytes.
        let t: Tcb = serde_json::from_slice(&tcb.body).map_err(|e| tcb.malformed(e))?;
        let q: Qe = serde_json::from_slice(&qe.body).map_err(|e| qe.malformed(e))?;
        let raw = QuoteCollateralV3 {
            pck_crl_issuer_chain: crl.header(key, "SGX-PCK-CRL-Issuer-Chain")?,
            root_ca_crl: der_or_hex(&root.body).ok_or_else(|| root.malformed("not a CRL"))?,
            pck_crl: der_or_hex(&crl.body).ok_or_else(|| crl.malformed("not a CRL"))?,
            tcb_info_issuer_chain: tcb
                .header(key, "TCB-Info-Issuer-Chain")
                .or_else(|_| tcb.header(key, "SGX-TCB-Info-Issuer-Chain"))?,
            tcb_info: t.tcb_info.get().to_string(),
            tcb_info_signature: hex::decode(&t.signature).map_err(|e| tcb.malformed(e))?,
            qe_identity_issuer_chain: qe.header(key, "SGX-Enclave-Identity-Issuer-Chain")?,
            qe_identity: q.enclave_identity.get().to_string(),
            qe_identity_signature: hex::decode(&q.signature).map_err(|e| qe.malformed(e))?,
            pck_certificate_chain: None,
        };
        let collateral = Collateral::from_dcap(raw)?;
        if collateral.fmspc() != key.fmspc {
            return Err(unavailable(
                key,
                format!(
                    "the PCCS answered with the TCB info of FMSPC {}",
                    hex::encode_upper(collateral.fmspc())
                ),
            ));
        }
        Ok(collateral)
    }
}

impl CollateralFetcher for PccsFetcher {
    /// Blocks the calling thread for at most four request timeouts. Runs the requests
    /// on a thread of its own, so that it can be called from anywhere, an async
    /// runtime's worker included (a cache miss happens once per platform and
    /// collateral lifetime, not per quote).
    fn fetch(&self, key: &CollateralKey) -> Result<Collateral, Error> {
        block_on_own_thread(self.http.timeout() * 4, async {
            Ok(self.fetch_async(key).await)
        })
        .unwrap_or_else(|e| Err(unavailable(key, format!("PCCS: {e}"))))
    }
}

struct Answer {
    what: String,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Answer {
    /// A PEM chain from a header, percent-decoded as PCCS sends it.
    fn header(&self, key: &CollateralKey, name: &str) -> Result<String, Error> {
        let v = self
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| unavailable(key, format!("{}: no {name} header", self.what)))?;
        let pem = percent_decode_str(v)
            .decode_utf8()
            .map_err(|_| self.malformed(format!("{name} is not UTF-8")))?;
        if !pem.contains("-----BEGIN CERTIFICATE-----") {
            return Err(self.malformed(format!("{name} holds no certificate")));
        }
        Ok(pem.into_owned())
    }

    fn malformed(&self, e: impl std::fmt::Display) -> Error {
        Error::Malformed {
            what: "collateral",
            detail: format!("{}: {e}", self.what),
        }
    }
}

/// A DER CRL, or one hex-encoded (PCCS serves the root CA CRL so).
fn der_or_hex(body: &[u8]) -> Option<Vec<u8>> {
    if body.first() == Some(&0x30) {
        return Some(body.to_vec());
    }
    let text = std::str::from_utf8(body).ok()?.trim();
    let der = hex::decode(text).ok()?;
    (der.first() == Some(&0x30)).then_some(der)
}

fn unavailable(key: &CollateralKey, detail: String) -> Error {
    Error::CollateralUnavailable {
        key: key.to_string(),
        detail,
    }
}

fn unavailable_cfg(detail: String) -> Error {
    Error::CollateralUnavailable {
        key: "-".into(),
        detail,
    }
}
