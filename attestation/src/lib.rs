//! EigenKMS trusted execution: verification of Intel TDX evidence, the policy
//! that decides which TDs are acceptable, and generation of the node's own quote.
//!
//! - [`Verifier`] takes [`Evidence`] — a raw DCAP quote ([`dcap`]), an Intel
//!   Trust Authority token ([`ita`]) or, in insecure-dev mode only, a simulated
//!   quote ([`simulated`]) — and returns a [`VerifiedTd`]. Verification time is
//!   always a parameter, never read from the clock.
//! - [`Policy`] decides: accepted TCB statuses (strict: `UpToDate` only),
//!   allowed measurements per app ID and for node images, and that
//!   `report_data` is the binding the request requires ([`binding`]).
//! - [`QuoteProvider`] produces the node's own evidence: configfs-tsm on a TDX
//!   guest, or simulated quotes in insecure-dev.
//! - [`cli::verify_cli`] is `attest verify` for operators and auditors.
//!
//! Every refusal is an [`Error`] with a stable [`Error::kind`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod binding;
pub mod cli;
pub mod dcap;
pub mod error;
pub mod fetch;
pub mod ita;
pub mod policy;
pub mod provider;
pub mod simulated;
pub mod verified;
pub mod verifier;

pub use binding::{
    APP_SIGN_BINDING_TAG, app_sign_report_data, node_report_data, secrets_report_data,
    unlock_report_data,
};
pub use dcap::collateral::{Collateral, CollateralKey, PckCa};
pub use dcap::pccs::PccsFetcher;
pub use dcap::source::{
    CachingCollateralSource, CollateralDir, CollateralFetcher, CollateralSet, CollateralSource,
    StaticCollateral,
};
pub use dcap::{CacheStats, DcapVerifier};
pub use error::Error;
pub use ita::{
    CachingJwks, ItaConfig, ItaVerifier, Jwks, JwksFetcher, JwksSource, JwksUrl, SigningAlgorithm,
};
pub use policy::{Policy, Subject, check_binding};
pub use provider::{ConfigfsTsmProvider, QuoteProvider, SimulatedProvider};
pub use simulated::SimulatedVerifier;
pub use verified::{TcbStatus, TdMeasurements, VerifiedTd};
pub use verifier::{Evidence, Verifier, VerifierBuilder};
