//! What verification establishes about a TD: its measurements, the data it bound
//! into its report, and how current its platform is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Error;

/// Size of MRTD and of each RTMR (SHA-384).
pub const MEASUREMENT_LEN: usize = 48;
/// Size of a TD report's `report_data`.
pub const REPORT_DATA_LEN: usize = 64;

/// A TD whose evidence verified: the measured identity and the 64 bytes it bound
/// into its report. Produced identically from a DCAP quote, an Intel Trust
/// Authority token or (insecure-dev only) a simulated quote; a [`crate::Policy`]
/// then decides whether it is acceptable. In JSON the byte fields are lower-case
/// hex without `0x`, the form TDX tooling prints measurements in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedTd {
    /// Measurement of the initial TD contents (firmware), MRTD.
    #[serde(with = "hex_array")]
    pub mrtd: [u8; MEASUREMENT_LEN],
    /// Runtime measurement registers RTMR0..RTMR3 (firmware config, kernel,
    /// command line/initrd, application).
    #[serde(with = "hex_rtmrs")]
    pub rtmr: [[u8; MEASUREMENT_LEN]; 4],
    /// The 64 bytes the TD put in its report: binds the evidence to a request.
    #[serde(with = "hex_array")]
    pub report_data: [u8; REPORT_DATA_LEN],
    /// The platform's TCB status, converged over platform, TDX module and QE.
    pub tcb_status: TcbStatus,
    /// Intel security advisories (`INTEL-SA-...`) that apply to the platform.
    pub advisories: Vec<String>,
}

impl VerifiedTd {
    /// The TD's measured identity (MRTD and RTMRs), what allow-lists are made of.
    pub fn measurements(&self) -> TdMeasurements {
        TdMeasurements {
            mrtd: self.mrtd,
            rtmr: self.rtmr,
        }
    }
}

/// A measured TD identity: MRTD and RTMR0..3, as allowed for a node image or an app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TdMeasurements {
    /// MRTD, hex.
    #[serde(with = "hex_array")]
    pub mrtd: [u8; MEASUREMENT_LEN],
    /// RTMR0..RTMR3, hex.
    #[serde(with = "hex_rtmrs")]
    pub rtmr: [[u8; MEASUREMENT_LEN]; 4],
}

/// Intel's TCB status of a platform (names as in Intel's TCB info and in Trust
/// Authority's `attester_tcb_status`), plus `Simulated` for insecure-dev quotes so
/// that a production policy can never accept one by accident.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TcbStatus {
    /// Fully patched.
    UpToDate,
    /// Patched; software mitigations are needed for some advisories.
    SWHardeningNeeded,
    /// Patched; the platform configuration needs a change.
    ConfigurationNeeded,
    /// Both of the above.
    ConfigurationAndSWHardeningNeeded,
    /// A newer TCB is available and the platform has not moved to it.
    OutOfDate,
    /// Out of date and needs a configuration change.
    OutOfDateConfigurationNeeded,
    /// The TDX module was updated under the running TD; it should be relaunched.
    TDRelaunchAdvised,
    /// Relaunch advised and configuration change needed.
    TDRelaunchAdvisedConfigurationNeeded,
    /// The platform's keys are compromised. Never accepted.
    Revoked,
    /// Insecure-dev simulated quote: no hardware behind it.
    Simulated,
}

impl TcbStatus {
    /// Intel's name of the status.
    pub fn as_str(&self) -> &'static str {
        match self {
            TcbStatus::UpToDate => "UpToDate",
            TcbStatus::SWHardeningNeeded => "SWHardeningNeeded",
            TcbStatus::ConfigurationNeeded => "ConfigurationNeeded",
            TcbStatus::ConfigurationAndSWHardeningNeeded => "ConfigurationAndSWHardeningNeeded",
            TcbStatus::OutOfDate => "OutOfDate",
            TcbStatus::OutOfDateConfigurationNeeded => "OutOfDateConfigurationNeeded",
            TcbStatus::TDRelaunchAdvised => "TDRelaunchAdvised",
            TcbStatus::TDRelaunchAdvisedConfigurationNeeded => {
                "TDRelaunchAdvisedConfigurationNeeded"
            }
            TcbStatus::Revoked => "Revoked",
            TcbStatus::Simulated => "Simulated",
        }
    }
}

impl fmt::Display for TcbStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TcbStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Ok(match s {
            "UpToDate" => TcbStatus::UpToDate,
            "SWHardeningNeeded" => TcbStatus::SWHardeningNeeded,
            "ConfigurationNeeded" => TcbStatus::ConfigurationNeeded,
            "ConfigurationAndSWHardeningNeeded" => TcbStatus::ConfigurationAndSWHardeningNeeded,
            "OutOfDate" => TcbStatus::OutOfDate,
            "OutOfDateConfigurationNeeded" => TcbStatus::OutOfDateConfigurationNeeded,
            "TDRelaunchAdvised" => TcbStatus::TDRelaunchAdvised,
            "TDRelaunchAdvisedConfigurationNeeded" => {
                TcbStatus::TDRelaunchAdvisedConfigurationNeeded
            }
            "Revoked" => TcbStatus::Revoked,
            "Simulated" => TcbStatus::Simulated,
            other => {
                return Err(Error::malformed(
                    "tcb status",
                    format!("unknown TCB status {other:?}"),
                ));
            }
        })
    }
}

impl Serialize for TcbStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for TcbStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Decodes hex (optionally `0x`-prefixed, any case) of exactly `N` bytes. The
/// length is checked before decoding, so a huge hostile string costs nothing.
pub fn decode_hex_array<const N: usize>(text: &str) -> Result<[u8; N], String> {
    let body = text.strip_prefix("0x").unwrap_or(text);
    if body.len() != 2 * N {
        return Err(format!("expected {} hex digits, got {}", 2 * N, body.len()));
    }
    let mut out = [0u8; N];
    hex::decode_to_slice(body, &mut out).map_err(|_| "invalid hex digit".to_string())?;
    Ok(out)
}

/// Serde for fixed-size byte arrays as plain lower-case hex.
pub(crate) mod hex_array {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &[u8; N],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        d: D,
    ) -> Result<[u8; N], D::Error> {
        let text = String::deserialize(d)?;
        super::decode_hex_array::<N>(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde for the four RTMRs as a list of four hex strings.
pub(crate) mod hex_rtmrs {
    use serde::ser::SerializeSeq;
    use serde::{Deserialize, Deserializer, Serializer};

    use super::MEASUREMENT_LEN;

    pub fn serialize<S: Serializer>(
        rtmrs: &[[u8; MEASUREMENT_LEN]; 4],
        s: S,
    ) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(4))?;
        for rtmr in rtmrs {
            seq.serialize_element(&hex::encode(rtmr))?;
        }
        seq.end()
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<[[u8; MEASUREMENT_LEN]; 4], D::Error> {
        let texts = Vec::<String>::deserialize(d)?;
        if texts.len() != 4 {
            return Err(serde::de::Error::custom(format!(
                "expected 4 RTMRs, got {}",
                texts.len()
            )));
        }
        let mut out = [[0u8; MEASUREMENT_LEN]; 4];
        for (slot, text) in out.iter_mut().zip(&texts) {
            *slot = super::decode_hex_array::<MEASUREMENT_LEN>(text)
                .map_err(serde::de::Error::custom)?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_round_trip_uses_hex() {
        let td = VerifiedTd {
            mrtd: [0xab; 48],
            rtmr: [[1; 48], [2; 48], [3; 48], [4; 48]],
            report_data: [0xcd; 64],
            tcb_status: TcbStatus::SWHardeningNeeded,
            advisories: vec!["INTEL-SA-00615".into()],
        };
        let json = serde_json::to_value(&td).unwrap();
        assert_eq!(json["mrtd"], "ab".repeat(48));
        assert_eq!(json["rtmr"][3], "04".repeat(48));
        assert_eq!(json["tcb_status"], "SWHardeningNeeded");
        let back: VerifiedTd = serde_json::from_value(json).unwrap();
        assert_eq!(back, td);
    }

    #[test]
    fn hex_decoding_checks_length_first() {
        assert_eq!(decode_hex_array::<2>("0xABcd"), Ok([0xab, 0xcd]));
        assert_eq!(decode_hex_array::<2>("abcd"), Ok([0xab, 0xcd]));
        assert!(decode_hex_array::<2>("abc").is_err());
        assert!(decode_hex_array::<2>("abzz").is_err());
    }

    #[test]
    fn statuses_parse_by_intel_name() {
        for status in [
            TcbStatus::UpToDate,
            TcbStatus::OutOfDate,
            TcbStatus::TDRelaunchAdvisedConfigurationNeeded,
            TcbStatus::Simulated,
        ] {
            assert_eq!(status.as_str().parse::<TcbStatus>(), Ok(status));
        }
        assert_eq!("OK".parse::<TcbStatus>().unwrap_err().kind(), "malformed");
    }
}
