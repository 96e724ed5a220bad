//! The one error type of `kms-attestation`.
//!
//! Every way evidence can be refused has its own variant and a stable
//! [`Error::kind`] string, so that the HTTP layer, metrics and the
//! `attest verify` command can name the reason without parsing messages.
//! Messages carry only public data (statuses, measurements, claim names, dates),
//! never tokens, keys or report data supplied by a requester.

use thiserror::Error;

use crate::verified::TcbStatus;

/// Everything that can make evidence unacceptable, or make verification impossible.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// The evidence (quote, token, simulated quote) or a collateral document does
    /// not parse, or has fields of the wrong size or type.
    #[error("malformed {what}: {detail}")]
    Malformed {
        /// Which input is malformed (`quote`, `token`, `collateral`, a claim name...).
        what: &'static str,
        /// What is wrong with it.
        detail: String,
    },
    /// A signature over the evidence or over collateral does not verify: the
    /// quote body (attestation key), the QE report (PCK key), TCB info or QE
    /// identity (Intel signing key), or a token (JWKS key).
    #[error("bad signature on {what}")]
    BadSignature {
        /// What was signed.
        what: &'static str,
    },
    /// A certificate chain does not lead to the pinned Intel SGX root CA, or a
    /// certificate in it is not usable.
    #[error("certificate chain rejected: {detail}")]
    CertChain {
        /// The chain check that failed.
        detail: String,
    },
    /// A certificate is on a CRL, or the platform TCB is revoked. Never accepted,
    /// whatever the policy.
    #[error("revoked: {detail}")]
    Revoked {
        /// What is revoked.
        detail: String,
    },
    /// The TCB status is not one the policy accepts.
    #[error("TCB status {status} is not accepted by the policy (advisories: {advisories:?})")]
    OutdatedTcb {
        /// The platform's TCB status.
        status: TcbStatus,
        /// Intel security advisories that apply to the platform.
        advisories: Vec<String>,
    },
    /// The platform is affected by an advisory the policy refuses.
    #[error("security advisory {advisory} is refused by the policy")]
    AdvisoryRefused {
        /// The advisory ID (`INTEL-SA-...`).
        advisory: String,
    },
    /// No TCB level of the collateral matches the platform (its SVNs are below
    /// every level Intel lists, or the TDX module is unknown).
    #[error("no TCB level matches the platform: {detail}")]
    TcbUnknown {
        /// Which matching step failed.
        detail: String,
    },
    /// The quoting enclave that signed the quote is not Intel's (its identity
    /// does not match the QE identity collateral).
    #[error("quoting enclave not trusted: {detail}")]
    QeIdentity {
        /// Which QE identity field differs.
        detail: String,
    },
    /// The TD runs with attributes that void its isolation (debug, migratable,
    /// profiling, SEPT #VE not disabled) or is bound to a service TD.
    #[error("TD attributes not acceptable: {detail}")]
    TdAttributes {
        /// Which attribute.
        detail: String,
    },
    /// The collateral belongs to another platform family (FMSPC) or TEE type
    /// than the quote.
    #[error("collateral does not match the quote: {detail}")]
    CollateralMismatch {
        /// What differs.
        detail: String,
    },
    /// No collateral could be found or fetched for the quote's platform.
    #[error("no collateral for {key}: {detail}")]
    CollateralUnavailable {
        /// The FMSPC/CA the quote needs collateral for.
        key: String,
        /// Why it is unavailable.
        detail: String,
    },
    /// Collateral or a token is expired at the verification time.
    #[error("stale {what}: valid until {not_after}, verification time {now}")]
    Stale {
        /// What has expired (`TCB info`, `QE identity`, `certificate`, `token`...).
        what: String,
        /// Its last valid second (unix seconds); 0 when the source does not say.
        not_after: u64,
        /// The verification time (unix seconds).
        now: u64,
    },
    /// Collateral or a token is not valid yet at the verification time.
    #[error("{what} not valid before {not_before}, verification time {now}")]
    NotYetValid {
        /// What is not valid yet.
        what: String,
        /// Its first valid second (unix seconds); 0 when the source does not say.
        not_before: u64,
        /// The verification time (unix seconds).
        now: u64,
    },
    /// The TD's measurements (MRTD, RTMR0-3) are not among those allowed.
    #[error("measurement not allowed for {scope}: mrtd {mrtd}")]
    MeasurementNotAllowed {
        /// What the allow-list was for (`node image`, `app <id>`).
        scope: String,
        /// The TD's MRTD, hex.
        mrtd: String,
    },
    /// `report_data` does not bind what it must (the request's key and nonce, the
    /// node's operator key and TLS certificate).
    #[error("report_data does not match the expected binding")]
    BindingMismatch,
    /// A token names a signature algorithm that is not accepted (`none`, HMAC,
    /// or one not configured), or a key does not fit its algorithm.
    #[error("unsupported algorithm: {alg}")]
    UnsupportedAlgorithm {
        /// The algorithm named by the token or key.
        alg: String,
    },
    /// A token's key ID is not in the configured JWKS.
    #[error("no key with id {kid:?} in the JWKS")]
    UnknownKey {
        /// The `kid` header value.
        kid: String,
    },
    /// A token was issued by someone else than the configured issuer.
    #[error("unexpected issuer {issuer:?}")]
    WrongIssuer {
        /// The `iss` claim.
        issuer: String,
    },
    /// A required claim is missing from a token.
    #[error("missing claim {claim}")]
    MissingClaim {
        /// The claim name.
        claim: &'static str,
    },
    /// A simulated (insecure-dev) quote was presented to a verifier that was not
    /// built with `insecure_dev`.
    #[error("simulated quote refused: this verifier is not in insecure-dev mode")]
    SimulatedRefused,
    /// The evidence type is valid but this verifier is not configured for it.
    #[error("{method} evidence is not configured on this verifier")]
    MethodNotConfigured {
        /// `dcap` or `ita`.
        method: &'static str,
    },
    /// The configured root certificate is not the pinned Intel SGX root CA.
    #[error("root certificate is not the pinned Intel SGX root CA (sha256 {fingerprint})")]
    UntrustedRoot {
        /// SHA-256 of the certificate given, hex.
        fingerprint: String,
    },
    /// The quote could not be generated (configfs-tsm missing, kernel refused).
    #[error("quote generation failed: {detail}")]
    QuoteGeneration {
        /// What failed, with the path involved.
        detail: String,
    },
    /// A configuration value or input file is invalid.
    #[error("invalid {field}: {detail}")]
    Config {
        /// The field, flag or file.
        field: String,
        /// What is wrong with it.
        detail: String,
    },
    /// DCAP verification refused the quote for a reason not covered by a more
    /// precise variant (kept so that nothing is ever accepted by fall-through).
    #[error("quote rejected: {detail}")]
    Dcap {
        /// The verifier's reason.
        detail: String,
    },
}

impl Error {
    /// A stable, machine-readable name for the variant, used as the exit message
    /// of `attest verify`, in logs and as a metrics label.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Malformed { .. } => "malformed",
            Error::BadSignature { .. } => "bad_signature",
            Error::CertChain { .. } => "cert_chain",
            Error::Revoked { .. } => "revoked",
            Error::OutdatedTcb { .. } => "outdated_tcb",
            Error::AdvisoryRefused { .. } => "advisory_refused",
            Error::TcbUnknown { .. } => "tcb_unknown",
            Error::QeIdentity { .. } => "qe_identity",
            Error::TdAttributes { .. } => "td_attributes",
            Error::CollateralMismatch { .. } => "collateral_mismatch",
            Error::CollateralUnavailable { .. } => "collateral_unavailable",
            Error::Stale { .. } => "stale",
            Error::NotYetValid { .. } => "not_yet_valid",
            Error::MeasurementNotAllowed { .. } => "measurement_not_allowed",
            Error::BindingMismatch => "binding_mismatch",
            Error::UnsupportedAlgorithm { .. } => "unsupported_algorithm",
            Error::UnknownKey { .. } => "unknown_key",
            Error::WrongIssuer { .. } => "wrong_issuer",
            Error::MissingClaim { .. } => "missing_claim",
            Error::SimulatedRefused => "simulated_refused",
            Error::MethodNotConfigured { .. } => "method_not_configured",
            Error::UntrustedRoot { .. } => "untrusted_root",
            Error::QuoteGeneration { .. } => "quote_generation",
            Error::Config { .. } => "config",
            Error::Dcap { .. } => "dcap_rejected",
        }
    }

    pub(crate) fn malformed(what: &'static str, detail: impl Into<String>) -> Self {
        Error::Malformed {
            what,
            detail: detail.into(),
        }
    }

    pub(crate) fn config(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_distinct() {
        let all = [
            Error::malformed("quote", "x"),
            Error::BadSignature { what: "quote" },
            Error::CertChain { detail: "x".into() },
            Error::Revoked { detail: "x".into() },
            Error::OutdatedTcb {
                status: TcbStatus::OutOfDate,
                advisories: vec![],
            },
            Error::AdvisoryRefused {
                advisory: "x".into(),
            },
            Error::TcbUnknown { detail: "x".into() },
            Error::QeIdentity { detail: "x".into() },
            Error::TdAttributes { detail: "x".into() },
            Error::CollateralMismatch { detail: "x".into() },
            Error::CollateralUnavailable {
                key: "x".into(),
                detail: "x".into(),
            },
            Error::Stale {
                what: "x".into(),
                not_after: 0,
                now: 0,
            },
            Error::NotYetValid {
                what: "x".into(),
                not_before: 0,
                now: 0,
            },
            Error::MeasurementNotAllowed {
                scope: "x".into(),
                mrtd: "x".into(),
            },
            Error::BindingMismatch,
            Error::UnsupportedAlgorithm { alg: "x".into() },
            Error::UnknownKey { kid: "x".into() },
            Error::WrongIssuer { issuer: "x".into() },
            Error::MissingClaim { claim: "x" },
            Error::SimulatedRefused,
            Error::MethodNotConfigured { method: "dcap" },
            Error::UntrustedRoot {
                fingerprint: "x".into(),
            },
            Error::QuoteGeneration { detail: "x".into() },
            Error::config("x", "y"),
            Error::Dcap { detail: "x".into() },
        ];
        let kinds: std::collections::BTreeSet<_> = all.iter().map(Error::kind).collect();
        assert_eq!(kinds.len(), all.len());
    }
}
