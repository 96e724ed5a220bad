//! DCAP collateral: Intel's signed statements about a platform family (TCB info,
//! QE identity, CRLs and their issuer chains), parsed once when it is loaded or
//! fetched and then shared behind an `Arc` (see [`super::source`] for where it
//! comes from and how long it is kept).

use std::fmt;
use std::path::Path;

use base64::Engine as _;
use dcap_qvl::QuoteCollateralV3;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Which Intel PCK CA issued the platform's PCK certificate (collateral CRLs
/// differ between the two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PckCa {
    /// "Intel SGX PCK Processor CA".
    Processor,
    /// "Intel SGX PCK Platform CA" (multi-package platforms).
    Platform,
}

impl PckCa {
    /// The PCS name of the CA (`processor` / `platform`).
    pub fn as_str(&self) -> &'static str {
        match self {
            PckCa::Processor => "processor",
            PckCa::Platform => "platform",
        }
    }
}

/// What collateral is looked up by: the platform family and its PCK CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollateralKey {
    /// Family-Model-Stepping-Platform-CustomSKU of the platform.
    pub fmspc: [u8; 6],
    /// The CA that issued the PCK certificate.
    pub ca: PckCa,
}

impl fmt::Display for CollateralKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "fmspc {} ca {}",
            hex::encode_upper(self.fmspc),
            self.ca.as_str()
        )
    }
}

/// Parsed collateral for one FMSPC/CA, with the dates and identity the caches need.
#[derive(Debug, Clone)]
pub struct Collateral {
    raw: QuoteCollateralV3,
    id: [u8; 32],
    fmspc: [u8; 6],
    tee: String,
    ca: Option<PckCa>,
    tcb_info_window: (u64, u64),
    qe_identity_window: (u64, u64),
    root_ca_crl_window: (u64, u64),
    pck_crl_window: (u64, u64),
}

/// The fields of TCB info and QE identity read here; the verifier parses the rest.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DatedDocument {
    id: String,
    issue_date: String,
    next_update: String,
    #[serde(default)]
    fmspc: Option<String>,
}

impl Collateral {
    /// Parses collateral JSON as stored in `tests/data` and served by PCCS
    /// wrappers: the `QuoteCollateralV3` fields with byte strings in hex.
    pub fn from_json(bytes: &[u8]) -> Result<Self, Error> {
        let raw: QuoteCollateralV3 = serde_json::from_slice(bytes)
            .map_err(|e| Error::malformed("collateral", e.to_string()))?;
        Self::from_dcap(raw)
    }

    /// Reads and parses a collateral JSON file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::config(path.display().to_string(), e.to_string()))?;
        Self::from_json(&bytes)
    }

    /// Wraps collateral already in `dcap-qvl`'s form.
    pub fn from_dcap(raw: QuoteCollateralV3) -> Result<Self, Error> {
        let tcb: DatedDocument = serde_json::from_str(&raw.tcb_info)
            .map_err(|e| Error::malformed("collateral", format!("TCB info: {e}")))?;
        let qe: DatedDocument = serde_json::from_str(&raw.qe_identity)
            .map_err(|e| Error::malformed("collateral", format!("QE identity: {e}")))?;
        let fmspc_hex = tcb
            .fmspc
            .as_deref()
            .ok_or_else(|| Error::malformed("collateral", "TCB info has no fmspc"))?;
        let fmspc = crate::verified::decode_hex_array::<6>(fmspc_hex)
            .map_err(|e| Error::malformed("collateral", format!("TCB info fmspc: {e}")))?;
        let window = |doc: &DatedDocument, what: &str| -> Result<(u64, u64), Error> {
            let from = parse_rfc3339(&doc.issue_date)
                .map_err(|e| Error::malformed("collateral", format!("{what} issueDate: {e}")))?;
            let until = parse_rfc3339(&doc.next_update)
                .map_err(|e| Error::malformed("collateral", format!("{what} nextUpdate: {e}")))?;
            Ok((from, until))
        };
        let tcb_info_window = window(&tcb, "TCB info")?;
        let qe_identity_window = window(&qe, "QE identity")?;
        let root_ca_crl_window = crl_window(&raw.root_ca_crl, "root CA CRL")?;
        let pck_crl_window = crl_window(&raw.pck_crl, "PCK CRL")?;
        let ca = pck_ca_of_crl_chain(&raw.pck_crl_issuer_chain);
        let id = collateral_id(&raw);
        Ok(Collateral {
            raw,
            id,
            fmspc,
            tee: tcb.id,
            ca,
            tcb_info_window,
            qe_identity_window,
            root_ca_crl_window,
            pck_crl_window,
        })
    }

    /// The collateral in `dcap-qvl`'s form.
    pub fn raw(&self) -> &QuoteCollateralV3 {
        &self.raw
    }

    /// SHA-256 over all collateral fields: identifies this exact collateral.
    pub fn id(&self) -> [u8; 32] {
        self.id
    }

    /// The FMSPC the TCB info is for.
    pub fn fmspc(&self) -> [u8; 6] {
        self.fmspc
    }

    /// The TEE the TCB info is for (`TDX` or `SGX`).
    pub fn tee(&self) -> &str {
        &self.tee
    }

    /// The PCK CA whose CRL this collateral carries, if recognisable.
    pub fn pck_ca(&self) -> Option<PckCa> {
        self.ca
    }

    /// `(issueDate, nextUpdate)` of the TCB info, unix seconds.
    pub fn tcb_info_window(&self) -> (u64, u64) {
        self.tcb_info_window
    }

    /// `(issueDate, nextUpdate)` of the QE identity, unix seconds.
    pub fn qe_identity_window(&self) -> (u64, u64) {
        self.qe_identity_window
    }

    /// The last second at which TCB info, QE identity and both CRLs are all
    /// valid: the collateral must be replaced after it.
    pub fn valid_until(&self) -> u64 {
        self.windows()
            .map(|(_, (_, until))| until)
            .min()
            .unwrap_or(0)
    }

    /// `(first, last)` valid second of each dated document, as Intel's
    /// verification applies them: TCB info and QE identity are valid through
    /// `nextUpdate`, a CRL until just before its `nextUpdate`.
    fn windows(&self) -> impl Iterator<Item = (&'static str, (u64, u64))> {
        [
            ("TCB info", self.tcb_info_window),
            ("QE identity", self.qe_identity_window),
            ("root CA CRL", self.root_ca_crl_window),
            ("PCK CRL", self.pck_crl_window),
        ]
        .into_iter()
    }

    /// Checks that TCB info, QE identity and both CRLs are valid at `now`,
    /// naming the first one that is not.
    pub fn check_current(&self, now: u64) -> Result<(), Error> {
        for (what, (from, until)) in self.windows() {
            if now < from {
                return Err(Error::NotYetValid {
                    what: what.into(),
                    not_before: from,
                    now,
                });
            }
            if now > until {
                return Err(Error::Stale {
                    what: what.into(),
                    not_after: until,
                    now,
                });
            }
        }
        Ok(())
    }
}

/// `(thisUpdate, nextUpdate - 1)` of a DER CRL (unbounded without nextUpdate).
/// Only dates are read here; the verifier checks the CRL's signature.
fn crl_window(der: &[u8], what: &str) -> Result<(u64, u64), Error> {
    use x509_cert::der::Decode as _;
    let crl = x509_cert::crl::CertificateList::<x509_cert::certificate::Rfc5280>::from_der(der)
        .map_err(|e| Error::malformed("collateral", format!("{what}: {e}")))?;
    let this_update = crl.tbs_cert_list.this_update.to_unix_duration().as_secs();
    let last_valid = crl.tbs_cert_list.next_update.map_or(u64::MAX, |t| {
        t.to_unix_duration().as_secs().saturating_sub(1)
    });
    Ok((this_update, last_valid))
}

/// Hashes every field with a length prefix, so different collateral never shares an id.
fn collateral_id(raw: &QuoteCollateralV3) -> [u8; 32] {
    let mut hasher = Sha256::new();
    let fields: [&[u8]; 10] = [
        raw.pck_crl_issuer_chain.as_bytes(),
        &raw.root_ca_crl,
        &raw.pck_crl,
        raw.tcb_info_issuer_chain.as_bytes(),
        raw.tcb_info.as_bytes(),
        &raw.tcb_info_signature,
        raw.qe_identity_issuer_chain.as_bytes(),
        raw.qe_identity.as_bytes(),
        &raw.qe_identity_signature,
        raw.pck_certificate_chain
            .as_deref()
            .unwrap_or("")
            .as_bytes(),
    ];
    for field in fields {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field);
    }
    hasher.finalize().into()
}

/// Which PCK CA the CRL issuer chain starts with. Only used to file collateral
/// under the right key; the verifier checks the CRL signature itself.
fn pck_ca_of_crl_chain(pem_chain: &str) -> Option<PckCa> {
    let start =
        pem_chain.find("-----BEGIN CERTIFICATE-----")? + "-----BEGIN CERTIFICATE-----".len();
    let end = start + pem_chain[start..].find("-----END CERTIFICATE-----")?;
    let body: String = pem_chain[start..end].split_whitespace().collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    let contains = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    if contains(b"Intel SGX PCK Platform CA") {
        Some(PckCa::Platform)
    } else if contains(b"Intel SGX PCK Processor CA") {
        Some(PckCa::Processor)
    } else {
        None
    }
}

/// Parses an RFC 3339 UTC timestamp as Intel writes them
/// (`2025-06-19T10:16:03Z`, optionally with fractional seconds or a `+00:00`
/// offset) into unix seconds.
pub fn parse_rfc3339(text: &str) -> Result<u64, String> {
    let bad = || format!("not an RFC 3339 timestamp: {text:?}");
    let bytes = text.as_bytes();
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || !matches!(bytes[10], b'T' | b't')
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return Err(bad());
    }
    let num = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = &text[range];
        if !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6
            && matches!(rest.as_bytes()[0], b'+' | b'-')
            && rest.as_bytes()[3] == b':' =>
        {
            let hours: i64 = rest[1..3].parse().map_err(|_| bad())?;
            let minutes: i64 = rest[4..6].parse().map_err(|_| bad())?;
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return Err(bad()),
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset;
    u64::try_from(secs).map_err(|_| bad())
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLLATERAL: &[u8] = include_bytes!("../../tests/data/tdx_quote_collateral.json");

    #[test]
    fn parses_test_collateral() {
        let c = Collateral::from_json(COLLATERAL).unwrap();
        assert_eq!(hex::encode_upper(c.fmspc()), "B0C06F000000");
        assert_eq!(c.tee(), "TDX");
        assert_eq!(
            c.tcb_info_window().0,
            parse_rfc3339("2025-06-19T10:16:03Z").unwrap()
        );
        // The PCK CRL expires first (nextUpdate 2025-07-19T10:00:35Z).
        assert_eq!(
            c.valid_until(),
            parse_rfc3339("2025-07-19T10:00:34Z").unwrap()
        );
        assert!(c.pck_ca().is_some());
        assert!(c.check_current(c.valid_until()).is_ok());
        assert_eq!(
            c.check_current(c.valid_until() + 1).unwrap_err().kind(),
            "stale"
        );
        assert_eq!(c.check_current(0).unwrap_err().kind(), "not_yet_valid");
    }

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Ok(951_868_800));
        assert_eq!(parse_rfc3339("2025-06-19T10:16:03Z"), Ok(1_750_328_163));
        assert_eq!(parse_rfc3339("2025-06-19T10:16:03.250Z"), Ok(1_750_328_163));
        assert_eq!(
            parse_rfc3339("2025-06-19T12:16:03+02:00"),
            Ok(1_750_328_163)
        );
        for bad in [
            "",
            "2025-06-19",
            "2025-13-19T10:16:03Z",
            "2025-06-19T10:16:03",
            "x025-06-19T10:16:03Z",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
    }
}
