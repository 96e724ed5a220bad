//! DCAP: verification of raw TDX quotes (v4, v5) against Intel collateral.
//!
//! Full verification is `dcap-qvl`'s: the PCK certificate chain to the pinned
//! Intel SGX root CA with both CRLs, the TCB info and QE identity signatures and
//! validity, the QE report signature and its binding of the attestation key, the
//! QE identity, the quote body signature, TCB level matching (platform, TDX
//! module, QE) and the TD attribute checks (no debug, no migration, SEPT #VE
//! disabled). Time is always the caller's `now`.
//!
//! Most of that work depends only on the platform and the collateral, not on the
//! TD's measurements or report data: every quote from one machine carries the
//! same certificate chain, QE report and attestation key until the QE restarts.
//! After a full verification succeeds the verifier remembers the platform under a
//! digest of every quote byte except MRTD, RTMR0-3, REPORTDATA and the body
//! signature over them, with the verdict, the collateral's identity and the
//! validity window of all collateral and certificates. A later quote with the
//! same digest, checked against the same collateral inside that window, reaches
//! the same verdict on every check but its own body signature, so only that
//! signature is verified. That is what keeps `/secrets` from paying for
//! collateral and chain checks on every request; any other quote, or any change
//! of collateral, goes through full verification again.

mod classify;
pub mod collateral;
mod layout;
pub mod pccs;
pub mod source;

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

use dcap_qvl::QuotePolicy;
use dcap_qvl::quote::Quote;
use dcap_qvl::verify::QuoteVerifier;
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::verified::{TcbStatus, VerifiedTd};
use collateral::{CollateralKey, PckCa};
use layout::QuoteLayout;
use source::CollateralSource;

/// Intel SGX Root CA (CN=Intel SGX Root CA, O=Intel Corporation), DER. Every
/// chain (PCK, TCB signing) must end here.
pub const INTEL_SGX_ROOT_CA_DER: &[u8] = include_bytes!("intel_sgx_root_ca.der");

/// SHA-256 of [`INTEL_SGX_ROOT_CA_DER`], the pin: a verifier refuses to start with
/// any other root.
pub const INTEL_SGX_ROOT_CA_SHA256: &str =
    "44a0196b2b99f889b8e149e95b807a350e7424964399e885a7cbb8ccfab674d3";

const TEE_TYPE_TDX: u32 = 0x81;

/// Platforms remembered at most; beyond this the expired ones are dropped, then all.
const MAX_CACHED_PLATFORMS: usize = 4096;

/// What full verification established about a platform, reused for its later quotes.
#[derive(Debug, Clone)]
struct VerifiedPlatform {
    collateral_key: CollateralKey,
    collateral_id: [u8; 32],
    /// Latest issue date over all collateral and certificates (unix seconds).
    valid_from: u64,
    /// Earliest expiry over all collateral, CRLs and certificates (unix
    /// seconds). The cached path stops one second early: a CRL is already
    /// expired at its `nextUpdate`, and the cache must never be more lenient
    /// than full verification.
    valid_until: u64,
    tcb_status: TcbStatus,
    advisories: Vec<String>,
}

/// How often quotes took the cached-platform path, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheStats {
    /// Quotes verified with a remembered platform (body signature only).
    pub hits: u64,
    /// Quotes that needed full verification.
    pub misses: u64,
    /// Platforms currently remembered.
    pub platforms: usize,
}

/// Verifies TDX quotes with collateral from `S`.
pub struct DcapVerifier<S> {
    source: S,
    qvl: QuoteVerifier,
    platforms: RwLock<HashMap<[u8; 32], VerifiedPlatform>>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl<S: CollateralSource> DcapVerifier<S> {
    /// A verifier rooted in the pinned Intel SGX root CA, taking collateral from `source`.
    pub fn new(source: S) -> Result<Self, Error> {
        let fingerprint = hex::encode(Sha256::digest(INTEL_SGX_ROOT_CA_DER));
        if fingerprint != INTEL_SGX_ROOT_CA_SHA256 {
            return Err(Error::UntrustedRoot { fingerprint });
        }
        Ok(DcapVerifier {
            source,
            qvl: QuoteVerifier::new(INTEL_SGX_ROOT_CA_DER.to_vec()),
            platforms: RwLock::new(HashMap::new()),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// The collateral source.
    pub fn source(&self) -> &S {
        &self.source
    }

    /// Verifies `quote` at `now` (unix seconds), reusing what earlier full
    /// verifications established about the same platform and collateral.
    pub fn verify(&self, quote: &[u8], now: u64) -> Result<VerifiedTd, Error> {
        let parsed = parse_tdx_quote(quote)?;
        let layout = QuoteLayout::new(quote, &parsed)?;
        let digest = layout.platform_digest();
        let known = self
            .platforms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&digest)
            .cloned();
        if let Some(platform) = known
            && platform.valid_from <= now
            && now < platform.valid_until
        {
            let collateral = self.source.collateral(&platform.collateral_key, now)?;
            if collateral.id() == platform.collateral_id {
                self.hits.fetch_add(1, Ordering::Relaxed);
                layout.verify_signature()?;
                return td_from_quote(&parsed, platform.tcb_status, platform.advisories);
            }
        }
        self.verify_full(quote, &parsed, digest, now)
    }

    /// Verifies `quote` at `now` from scratch, ignoring (but updating) the
    /// platform cache. For benchmarks and tests.
    pub fn verify_uncached(&self, quote: &[u8], now: u64) -> Result<VerifiedTd, Error> {
        let parsed = parse_tdx_quote(quote)?;
        let digest = QuoteLayout::new(quote, &parsed)?.platform_digest();
        self.verify_full(quote, &parsed, digest, now)
    }

    /// Cache effectiveness counters.
    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            platforms: self
                .platforms
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .len(),
        }
    }

    /// Forgets every remembered platform, so the next quote of each gets full verification.
    pub fn clear_cache(&self) {
        self.platforms
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    fn verify_full(
        &self,
        quote: &[u8],
        parsed: &Quote,
        digest: [u8; 32],
        now: u64,
    ) -> Result<VerifiedTd, Error> {
        self.misses.fetch_add(1, Ordering::Relaxed);
        let collateral_key = collateral_key(parsed)?;
        let collateral = self.source.collateral(&collateral_key, now)?;
        // Cheap checks first, with precise errors, before the full verification.
        if collateral.tee() != "TDX" {
            return Err(Error::CollateralMismatch {
                detail: format!("TCB info is for {}, the quote is TDX", collateral.tee()),
            });
        }
        if collateral.fmspc() != collateral_key.fmspc {
            return Err(Error::CollateralMismatch {
                detail: format!(
                    "collateral is for FMSPC {}, the quote's platform is {}",
                    hex::encode_upper(collateral.fmspc()),
                    hex::encode_upper(collateral_key.fmspc)
                ),
            });
        }
        collateral.check_current(now)?;
        let claims = self
            .qvl
            .verify_with_policy(quote, collateral.raw(), now, &QuotePolicy::claims_only(now))
            .map_err(|e| classify::classify(&format!("{e:#}"), now))?;
        let tcb_status = tcb_status_from_dcap(claims.tcb.status);
        if tcb_status == TcbStatus::Revoked {
            return Err(Error::Revoked {
                detail: "platform TCB is revoked".into(),
            });
        }
        let advisories = claims.tcb.advisory_ids.clone();
        self.remember(
            digest,
            VerifiedPlatform {
                collateral_key,
                collateral_id: collateral.id(),
                valid_from: claims.latest_issue_date,
                valid_until: claims.earliest_expiration_date,
                tcb_status,
                advisories: advisories.clone(),
            },
            now,
        );
        td_from_quote(parsed, tcb_status, advisories)
    }

    fn remember(&self, digest: [u8; 32], platform: VerifiedPlatform, now: u64) {
        let mut platforms = self.platforms.write().unwrap_or_else(|e| e.into_inner());
        if platforms.len() >= MAX_CACHED_PLATFORMS {
            platforms.retain(|_, p| now < p.valid_until);
            if platforms.len() >= MAX_CACHED_PLATFORMS {
                platforms.clear();
            }
        }
        platforms.insert(digest, platform);
    }
}

/// Parses a quote and insists on a TDX quote of version 4 or 5.
fn parse_tdx_quote(quote: &[u8]) -> Result<Quote, Error> {
    let parsed = Quote::parse(quote).map_err(|e| Error::malformed("quote", format!("{e:#}")))?;
    if parsed.header.tee_type != TEE_TYPE_TDX {
        return Err(Error::malformed(
            "quote",
            format!("TEE type {:#x} is not TDX", parsed.header.tee_type),
        ));
    }
    if !matches!(parsed.header.version, 4 | 5) {
        return Err(Error::malformed(
            "quote",
            format!("unsupported TDX quote version {}", parsed.header.version),
        ));
    }
    if parsed.report.as_td10().is_none() {
        return Err(Error::malformed("quote", "body is not a TD report"));
    }
    Ok(parsed)
}

/// The collateral a quote needs, read from its (not yet verified) PCK certificate.
fn collateral_key(parsed: &Quote) -> Result<CollateralKey, Error> {
    let fmspc = dcap_qvl::intel::quote_fmspc(parsed)
        .map_err(|e| Error::malformed("quote", format!("PCK certificate: {e:#}")))?;
    let ca = match dcap_qvl::intel::quote_ca(parsed)
        .map_err(|e| Error::malformed("quote", format!("PCK certificate: {e:#}")))?
    {
        dcap_qvl::config::PckCa::Processor => PckCa::Processor,
        dcap_qvl::config::PckCa::Platform => PckCa::Platform,
    };
    Ok(CollateralKey { fmspc, ca })
}

fn td_from_quote(
    parsed: &Quote,
    tcb_status: TcbStatus,
    advisories: Vec<String>,
) -> Result<VerifiedTd, Error> {
    let report = parsed
        .report
        .as_td10()
        .ok_or_else(|| Error::malformed("quote", "body is not a TD report"))?;
    Ok(VerifiedTd {
        mrtd: report.mr_td,
        rtmr: [report.rt_mr0, report.rt_mr1, report.rt_mr2, report.rt_mr3],
        report_data: report.report_data,
        tcb_status,
        advisories,
    })
}

fn tcb_status_from_dcap(status: dcap_qvl::TcbStatus) -> TcbStatus {
    use dcap_qvl::TcbStatus as D;
    match status {
        D::UpToDate => TcbStatus::UpToDate,
        D::SWHardeningNeeded => TcbStatus::SWHardeningNeeded,
        D::ConfigurationNeeded => TcbStatus::ConfigurationNeeded,
        D::ConfigurationAndSWHardeningNeeded => TcbStatus::ConfigurationAndSWHardeningNeeded,
        D::OutOfDate => TcbStatus::OutOfDate,
        D::OutOfDateConfigurationNeeded => TcbStatus::OutOfDateConfigurationNeeded,
        D::TDRelaunchAdvised => TcbStatus::TDRelaunchAdvised,
        D::TDRelaunchAdvisedConfigurationNeeded => TcbStatus::TDRelaunchAdvisedConfigurationNeeded,
        D::Revoked => TcbStatus::Revoked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pinned_root_is_the_root_of_the_collateral_chains() {
        assert_eq!(
            hex::encode(Sha256::digest(INTEL_SGX_ROOT_CA_DER)),
            INTEL_SGX_ROOT_CA_SHA256
        );
        let collateral: serde_json::Value =
            serde_json::from_slice(include_bytes!("../../tests/data/tdx_quote_collateral.json"))
                .unwrap();
        let chain = collateral["tcb_info_issuer_chain"].as_str().unwrap();
        let last = chain.rsplit("-----BEGIN CERTIFICATE-----").next().unwrap();
        let body: String = last
            .split("-----END CERTIFICATE-----")
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        use base64::Engine as _;
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(der, INTEL_SGX_ROOT_CA_DER);
    }
}
