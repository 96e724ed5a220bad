//! Byte layout of a parsed TDX quote (v4 and v5), for the cached-platform path.
//!
//! ```text
//! v4: header(48) ‖ TD report(584)                      ‖ auth_len(4) ‖ auth data
//! v5: header(48) ‖ type(2) ‖ size(4) ‖ TD report(size) ‖ auth_len(4) ‖ auth data
//! auth data: ISV signature(64) ‖ attestation key(64) ‖ QE report certification data
//! ```
//!
//! The signed region is everything before `auth_len`. Within the TD report the
//! per-TD fields this crate extracts are MRTD (136..184), RTMR0..3 (328..520) and
//! REPORTDATA (520..584); every other field feeds TCB evaluation or attribute
//! checks.

use dcap_qvl::quote::Quote;
use sha2::{Digest, Sha256};

use crate::error::Error;

const HEADER_LEN: usize = 48;
const V5_BODY_DESCRIPTOR_LEN: usize = 6;
const MRTD: std::ops::Range<usize> = 136..184;
const RTMRS_AND_REPORT_DATA: std::ops::Range<usize> = 328..584;
const SIGNATURE_LEN: usize = 64;
const ATTESTATION_KEY_LEN: usize = 64;

/// Positions of the parts of one quote that the cached path reads.
pub(crate) struct QuoteLayout<'a> {
    raw: &'a [u8],
    body_start: usize,
    signed_len: usize,
    auth_end: usize,
}

impl<'a> QuoteLayout<'a> {
    /// Locates the parts of `raw`, which `parsed` was decoded from.
    pub(crate) fn new(raw: &'a [u8], parsed: &Quote) -> Result<Self, Error> {
        let body_start = match parsed.header.version {
            4 => HEADER_LEN,
            5 => HEADER_LEN + V5_BODY_DESCRIPTOR_LEN,
            v => {
                return Err(Error::malformed(
                    "quote",
                    format!("unsupported quote version {v}"),
                ));
            }
        };
        let signed_len = parsed.signed_length();
        let auth_len_bytes: [u8; 4] = raw
            .get(signed_len..signed_len + 4)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::malformed("quote", "truncated before auth data"))?;
        let auth_len = u32::from_le_bytes(auth_len_bytes) as usize;
        let auth_end = signed_len
            .checked_add(4)
            .and_then(|n| n.checked_add(auth_len))
            .filter(|&end| end <= raw.len())
            .ok_or_else(|| Error::malformed("quote", "auth data runs past the end"))?;
        if auth_len < SIGNATURE_LEN + ATTESTATION_KEY_LEN
            || body_start + RTMRS_AND_REPORT_DATA.end > signed_len
        {
            return Err(Error::malformed(
                "quote",
                "auth data or TD report too short",
            ));
        }
        Ok(QuoteLayout {
            raw,
            body_start,
            signed_len,
            auth_end,
        })
    }

    /// The bytes the attestation key signs (header and TD report).
    pub(crate) fn signed(&self) -> &'a [u8] {
        &self.raw[..self.signed_len]
    }

    /// The ISV (quote body) signature, raw `r ‖ s`.
    pub(crate) fn signature(&self) -> &'a [u8] {
        let start = self.signed_len + 4;
        &self.raw[start..start + SIGNATURE_LEN]
    }

    /// The attestation public key, raw `x ‖ y`.
    pub(crate) fn attestation_key(&self) -> &'a [u8] {
        let start = self.signed_len + 4 + SIGNATURE_LEN;
        &self.raw[start..start + ATTESTATION_KEY_LEN]
    }

    /// Digest of everything full verification depends on except the per-TD
    /// fields (MRTD, RTMRs, REPORTDATA) and the ISV signature over them: header,
    /// the rest of the TD report (TCB SVNs, SEAM identity, attributes, XFAM,
    /// config/owner IDs, service TD fields), attestation key, QE report and its
    /// signature, QE auth data and the PCK certificate chain. Two quotes with the
    /// same digest reach the same verdict on every check except the ISV
    /// signature, which the cached path therefore verifies itself.
    pub(crate) fn platform_digest(&self) -> [u8; 32] {
        let body = self.body_start;
        let mut hasher = Sha256::new();
        hasher.update(&self.raw[..body + MRTD.start]);
        hasher.update(&self.raw[body + MRTD.end..body + RTMRS_AND_REPORT_DATA.start]);
        hasher.update(&self.raw[body + RTMRS_AND_REPORT_DATA.end..self.signed_len]);
        hasher.update(&self.raw[self.signed_len..self.signed_len + 4]);
        hasher.update(&self.raw[self.signed_len + 4 + SIGNATURE_LEN..self.auth_end]);
        hasher.finalize().into()
    }

    /// Verifies the ISV signature with the quote's own attestation key. Sound
    /// only when that key was certified by full verification of a quote with the
    /// same [`Self::platform_digest`].
    pub(crate) fn verify_signature(&self) -> Result<(), Error> {
        let mut key = [0x04u8; 1 + ATTESTATION_KEY_LEN];
        key[1..].copy_from_slice(self.attestation_key());
        ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &key)
            .verify(self.signed(), self.signature())
            .map_err(|_| Error::BadSignature { what: "quote body" })
    }

    /// Offsets of MRTD and of RTMR0..REPORTDATA in `raw`, for tests.
    #[cfg(test)]
    pub(crate) fn per_td_ranges(&self) -> [std::ops::Range<usize>; 2] {
        let body = self.body_start;
        [
            body + MRTD.start..body + MRTD.end,
            body + RTMRS_AND_REPORT_DATA.start..body + RTMRS_AND_REPORT_DATA.end,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const QUOTES: [&[u8]; 2] = [
        include_bytes!("../../tests/data/tdx_quote"),
        include_bytes!("../../tests/data/tdx_quote_outdated"),
    ];

    #[test]
    fn offsets_match_the_parsed_report() {
        for raw in QUOTES {
            let parsed = Quote::parse(raw).unwrap();
            let layout = QuoteLayout::new(raw, &parsed).unwrap();
            let td = parsed.report.as_td10().unwrap();
            let [mrtd, rest] = layout.per_td_ranges();
            assert_eq!(&raw[mrtd], &td.mr_td[..]);
            let mut expected = Vec::new();
            for part in [&td.rt_mr0, &td.rt_mr1, &td.rt_mr2, &td.rt_mr3] {
                expected.extend_from_slice(part);
            }
            expected.extend_from_slice(&td.report_data);
            assert_eq!(&raw[rest], &expected[..]);
            let auth = parsed.auth_data.clone().into_v3();
            assert_eq!(layout.signature(), &auth.ecdsa_signature[..]);
            assert_eq!(layout.attestation_key(), &auth.ecdsa_attestation_key[..]);
            layout.verify_signature().unwrap();
        }
    }

    #[test]
    fn digest_ignores_only_per_td_fields() {
        let raw = QUOTES[0];
        let parsed = Quote::parse(raw).unwrap();
        let layout = QuoteLayout::new(raw, &parsed).unwrap();
        let digest = layout.platform_digest();
        let [mrtd, rest] = layout.per_td_ranges();
        for i in 0..raw.len() {
            let mut changed = raw.to_vec();
            changed[i] ^= 1;
            let Ok(reparsed) = Quote::parse(&changed) else {
                continue;
            };
            let Ok(other) = QuoteLayout::new(&changed, &reparsed) else {
                continue;
            };
            let per_td = mrtd.contains(&i) || rest.contains(&i);
            let signature =
                (layout.signed_len + 4..layout.signed_len + 4 + SIGNATURE_LEN).contains(&i);
            let trailing = i >= layout.auth_end;
            assert_eq!(
                other.platform_digest() == digest,
                per_td || signature || trailing,
                "byte {i}"
            );
        }
    }
}
