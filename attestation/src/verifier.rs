//! One entry point for every kind of evidence.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::dcap::DcapVerifier;
use crate::dcap::source::CollateralSource;
use crate::error::Error;
use crate::ita::{ItaVerifier, JwksSource};
use crate::simulated::{SimulatedVerifier, is_simulated};
use crate::verified::VerifiedTd;

/// Evidence a TD presents. In JSON: `{"method": "dcap", "evidence": "<quote hex>"}`,
/// `{"method": "ita", "evidence": "<JWT>"}` or `{"method": "simulated", ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", content = "evidence", rename_all = "snake_case")]
pub enum Evidence {
    /// A raw TDX quote (v4 or v5), verified with DCAP collateral.
    Dcap(#[serde(with = "hex_bytes")] Vec<u8>),
    /// An Intel Trust Authority attestation token (compact JWS).
    Ita(String),
    /// An insecure-dev simulated quote (see [`crate::simulated`]).
    Simulated(#[serde(with = "hex_bytes")] Vec<u8>),
}

impl Evidence {
    /// `dcap`, `ita` or `simulated`.
    pub fn method(&self) -> &'static str {
        match self {
            Evidence::Dcap(_) => "dcap",
            Evidence::Ita(_) => "ita",
            Evidence::Simulated(_) => "simulated",
        }
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text.strip_prefix("0x").unwrap_or(&text)).map_err(serde::de::Error::custom)
    }
}

trait QuoteVerify: Send + Sync {
    fn verify_quote(&self, quote: &[u8], now: u64) -> Result<VerifiedTd, Error>;
}

impl<S: CollateralSource> QuoteVerify for DcapVerifier<S> {
    fn verify_quote(&self, quote: &[u8], now: u64) -> Result<VerifiedTd, Error> {
        self.verify(quote, now)
    }
}

trait TokenVerify: Send + Sync {
    fn verify_token(&self, token: &str, now: u64) -> Result<VerifiedTd, Error>;
}

impl<J: JwksSource> TokenVerify for ItaVerifier<J> {
    fn verify_token(&self, token: &str, now: u64) -> Result<VerifiedTd, Error> {
        self.verify(token, now)
    }
}

/// Verifies [`Evidence`] of any configured kind into a [`VerifiedTd`]. It
/// establishes authenticity only; a [`crate::Policy`] decides acceptance.
#[derive(Clone, Default)]
pub struct Verifier {
    dcap: Option<Arc<dyn QuoteVerify>>,
    ita: Option<Arc<dyn TokenVerify>>,
    simulated: Option<SimulatedVerifier>,
}

impl Verifier {
    /// Starts a verifier that accepts nothing until methods are added.
    pub fn builder() -> VerifierBuilder {
        VerifierBuilder::default()
    }

    /// Whether simulated quotes are accepted (insecure-dev).
    pub fn is_insecure_dev(&self) -> bool {
        self.simulated.is_some()
    }

    /// Verifies `evidence` at `now` (unix seconds).
    pub fn verify(&self, evidence: &Evidence, now: u64) -> Result<VerifiedTd, Error> {
        match evidence {
            // A simulated quote sent as a DCAP quote gets the clear refusal, not a parse error.
            Evidence::Dcap(quote) if is_simulated(quote) => self.verify_simulated(quote),
            Evidence::Dcap(quote) => self
                .dcap
                .as_ref()
                .ok_or(Error::MethodNotConfigured { method: "dcap" })?
                .verify_quote(quote, now),
            Evidence::Ita(token) => self
                .ita
                .as_ref()
                .ok_or(Error::MethodNotConfigured { method: "ita" })?
                .verify_token(token, now),
            Evidence::Simulated(quote) => self.verify_simulated(quote),
        }
    }

    fn verify_simulated(&self, quote: &[u8]) -> Result<VerifiedTd, Error> {
        self.simulated
            .as_ref()
            .ok_or(Error::SimulatedRefused)?
            .verify(quote)
    }
}

/// Assembles a [`Verifier`].
#[derive(Default)]
pub struct VerifierBuilder {
    dcap: Option<Arc<dyn QuoteVerify>>,
    ita: Option<Arc<dyn TokenVerify>>,
    insecure_dev: bool,
}

impl VerifierBuilder {
    /// Accepts DCAP quotes, verified by `verifier`.
    pub fn dcap<S: CollateralSource + 'static>(mut self, verifier: DcapVerifier<S>) -> Self {
        self.dcap = Some(Arc::new(verifier));
        self
    }

    /// Accepts Trust Authority tokens, verified by `verifier`.
    pub fn ita<J: JwksSource + 'static>(mut self, verifier: ItaVerifier<J>) -> Self {
        self.ita = Some(Arc::new(verifier));
        self
    }

    /// Accepts simulated quotes if `insecure_dev` is true. Only for development
    /// deployments started with the explicit dev flag.
    pub fn insecure_dev(mut self, insecure_dev: bool) -> Self {
        self.insecure_dev = insecure_dev;
        self
    }

    /// The verifier.
    pub fn build(self) -> Verifier {
        Verifier {
            dcap: self.dcap,
            ita: self.ita,
            simulated: SimulatedVerifier::new(self.insecure_dev).ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulated::encode_simulated_quote;
    use crate::verified::{TcbStatus, TdMeasurements};

    fn simulated_quote() -> Vec<u8> {
        encode_simulated_quote(
            &TdMeasurements {
                mrtd: [1; 48],
                rtmr: [[2; 48]; 4],
            },
            &[3; 64],
        )
    }

    #[test]
    fn simulated_needs_insecure_dev() {
        let strict = Verifier::builder().build();
        assert!(!strict.is_insecure_dev());
        for evidence in [
            Evidence::Simulated(simulated_quote()),
            Evidence::Dcap(simulated_quote()),
        ] {
            assert_eq!(
                strict.verify(&evidence, 0).unwrap_err(),
                Error::SimulatedRefused
            );
        }
        let dev = Verifier::builder().insecure_dev(true).build();
        let td = dev
            .verify(&Evidence::Simulated(simulated_quote()), 0)
            .unwrap();
        assert_eq!(td.tcb_status, TcbStatus::Simulated);
    }

    #[test]
    fn unconfigured_methods_are_refused() {
        let verifier = Verifier::builder().build();
        assert_eq!(
            verifier
                .verify(&Evidence::Dcap(vec![4, 0]), 0)
                .unwrap_err()
                .kind(),
            "method_not_configured"
        );
        assert_eq!(
            verifier
                .verify(&Evidence::Ita("a.b.c".into()), 0)
                .unwrap_err()
                .kind(),
            "method_not_configured"
        );
    }

    #[test]
    fn evidence_json() {
        let evidence = Evidence::Dcap(vec![0xab, 0xcd]);
        let json = serde_json::to_value(&evidence).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"method": "dcap", "evidence": "abcd"})
        );
        assert_eq!(serde_json::from_value::<Evidence>(json).unwrap(), evidence);
    }
}
