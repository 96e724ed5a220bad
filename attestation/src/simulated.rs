//! Simulated TDX quotes for development without TDX hardware (insecure-dev).
//!
//! A simulated quote is plain data that anyone can write: it proves nothing.
//! It exists so that developers and CI can run the whole protocol, including
//! peer attestation and `/secrets`, on ordinary machines. To keep it from ever
//! being mistaken for evidence:
//! - it starts with the magic `EIGENKMS-SIMULATED-TDX`, which no DCAP quote does
//!   (those start with a little-endian version number);
//! - only a [`SimulatedVerifier`] reads it, and one can only be built with the
//!   insecure-dev flag set;
//! - it verifies with TCB status [`TcbStatus::Simulated`], which only
//!   [`crate::Policy::insecure_dev`] accepts.
//!
//! Format (327 bytes):
//! ```text
//! "EIGENKMS-SIMULATED-TDX" (22) ‖ format version 0x01 (1) ‖ MRTD (48) ‖ RTMR0..3 (4×48) ‖ report_data (64)
//! ```

use crate::error::Error;
use crate::verified::{MEASUREMENT_LEN, REPORT_DATA_LEN, TcbStatus, TdMeasurements, VerifiedTd};

/// First bytes of every simulated quote.
pub const SIMULATED_MAGIC: &[u8; 22] = b"EIGENKMS-SIMULATED-TDX";
const FORMAT_VERSION: u8 = 1;
/// Length of a simulated quote.
pub const SIMULATED_QUOTE_LEN: usize =
    SIMULATED_MAGIC.len() + 1 + 5 * MEASUREMENT_LEN + REPORT_DATA_LEN;

/// Whether `bytes` claim to be a simulated quote.
pub fn is_simulated(bytes: &[u8]) -> bool {
    bytes.starts_with(SIMULATED_MAGIC)
}

/// Encodes a simulated quote for `measurements` and `report_data`.
pub fn encode_simulated_quote(
    measurements: &TdMeasurements,
    report_data: &[u8; REPORT_DATA_LEN],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(SIMULATED_QUOTE_LEN);
    out.extend_from_slice(SIMULATED_MAGIC);
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&measurements.mrtd);
    for rtmr in &measurements.rtmr {
        out.extend_from_slice(rtmr);
    }
    out.extend_from_slice(report_data);
    out
}

/// The measurements a simulated TD named `identity` claims: each register is
/// `SHA-384("EIGENKMS-SIMULATED-<register>" ‖ identity)`.
pub fn simulated_measurements(identity: &str) -> TdMeasurements {
    use sha2::{Digest, Sha384};
    let reg = |name: &str| -> [u8; MEASUREMENT_LEN] {
        let mut h = Sha384::new();
        h.update(format!("EIGENKMS-SIMULATED-{name}").as_bytes());
        h.update(identity.as_bytes());
        h.finalize().into()
    };
    TdMeasurements {
        mrtd: reg("MRTD"),
        rtmr: [reg("RTMR0"), reg("RTMR1"), reg("RTMR2"), reg("RTMR3")],
    }
}

/// Reads simulated quotes. Exists only in insecure-dev mode.
#[derive(Debug, Clone)]
pub struct SimulatedVerifier {
    _insecure_dev: (),
}

impl SimulatedVerifier {
    /// A verifier for simulated quotes; refused unless `insecure_dev` is true,
    /// so that enabling it is always an explicit, visible decision.
    pub fn new(insecure_dev: bool) -> Result<Self, Error> {
        if insecure_dev {
            Ok(SimulatedVerifier { _insecure_dev: () })
        } else {
            Err(Error::SimulatedRefused)
        }
    }

    /// Decodes a simulated quote. It is "verified" only in that it is well formed.
    pub fn verify(&self, quote: &[u8]) -> Result<VerifiedTd, Error> {
        let body = quote
            .strip_prefix(SIMULATED_MAGIC.as_slice())
            .ok_or_else(|| Error::malformed("simulated quote", "missing magic"))?;
        let [version, rest @ ..] = body else {
            return Err(Error::malformed("simulated quote", "truncated"));
        };
        if *version != FORMAT_VERSION {
            return Err(Error::malformed(
                "simulated quote",
                format!("unknown format version {version}"),
            ));
        }
        if rest.len() != 5 * MEASUREMENT_LEN + REPORT_DATA_LEN {
            return Err(Error::malformed(
                "simulated quote",
                format!("expected {SIMULATED_QUOTE_LEN} bytes, got {}", quote.len()),
            ));
        }
        let (measurements, report_data) = rest.split_at(5 * MEASUREMENT_LEN);
        let mut chunks = measurements.chunks_exact(MEASUREMENT_LEN).map(|c| {
            let mut m = [0u8; MEASUREMENT_LEN];
            m.copy_from_slice(c);
            m
        });
        let mut next = || chunks.next().unwrap_or([0u8; MEASUREMENT_LEN]);
        let mrtd = next();
        let rtmr = [next(), next(), next(), next()];
        let mut rd = [0u8; REPORT_DATA_LEN];
        rd.copy_from_slice(report_data);
        Ok(VerifiedTd {
            mrtd,
            rtmr,
            report_data: rd,
            tcb_status: TcbStatus::Simulated,
            advisories: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measurements() -> TdMeasurements {
        TdMeasurements {
            mrtd: [1; 48],
            rtmr: [[2; 48], [3; 48], [4; 48], [5; 48]],
        }
    }

    #[test]
    fn round_trip() {
        let quote = encode_simulated_quote(&measurements(), &[9; 64]);
        assert_eq!(quote.len(), SIMULATED_QUOTE_LEN);
        assert!(is_simulated(&quote));
        let td = SimulatedVerifier::new(true)
            .unwrap()
            .verify(&quote)
            .unwrap();
        assert_eq!(td.measurements(), measurements());
        assert_eq!(td.report_data, [9; 64]);
        assert_eq!(td.tcb_status, TcbStatus::Simulated);
    }

    #[test]
    fn needs_the_insecure_flag() {
        assert_eq!(
            SimulatedVerifier::new(false).unwrap_err(),
            Error::SimulatedRefused
        );
    }

    #[test]
    fn rejects_bad_encodings() {
        let verifier = SimulatedVerifier::new(true).unwrap();
        let quote = encode_simulated_quote(&measurements(), &[9; 64]);
        for bad in [
            &quote[..quote.len() - 1],
            &quote[..22],
            b"EIGENKMS".as_slice(),
        ] {
            assert_eq!(verifier.verify(bad).unwrap_err().kind(), "malformed");
        }
        let mut wrong_version = quote.clone();
        wrong_version[22] = 2;
        assert_eq!(
            verifier.verify(&wrong_version).unwrap_err().kind(),
            "malformed"
        );
        let mut longer = quote;
        longer.push(0);
        assert_eq!(verifier.verify(&longer).unwrap_err().kind(), "malformed");
    }
}
