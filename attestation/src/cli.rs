//! `attest verify`: the verifier for operators and auditors, outside the node.
//!
//! Shared by `kms-node attest verify` (which flattens [`VerifyArgs`] into its
//! own command line) and the crate's `kms-attest verify` binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;

use crate::dcap::DcapVerifier;
use crate::dcap::collateral::Collateral;
use crate::dcap::source::StaticCollateral;
use crate::error::Error;
use crate::ita::{DEFAULT_ISSUER, ItaConfig, ItaVerifier, Jwks};
use crate::policy::{Policy, Subject, check_binding};
use crate::simulated::is_simulated;
use crate::verified::{REPORT_DATA_LEN, decode_hex_array};
use crate::verifier::{Evidence, Verifier};

/// Flags of `attest verify`. Either `--quote` with `--collateral`, or `--token`
/// with `--jwks`; `--at` is always required so that a decision can be reproduced.
#[derive(Debug, Clone, Args)]
pub struct VerifyArgs {
    /// Raw TDX quote (binary or hex).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["token", "jwks"])]
    pub quote: Option<PathBuf>,
    /// DCAP collateral JSON for the quote's platform.
    #[arg(long, value_name = "FILE")]
    pub collateral: Option<PathBuf>,
    /// Intel Trust Authority attestation token (JWT).
    #[arg(long, value_name = "FILE")]
    pub token: Option<PathBuf>,
    /// JWKS with Trust Authority's token signing keys.
    #[arg(long, value_name = "FILE")]
    pub jwks: Option<PathBuf>,
    /// Verification time, unix seconds.
    #[arg(long, value_name = "UNIX_SECONDS")]
    pub at: u64,
    /// Policy JSON (accepted TCB statuses, allow-lists). Default: only UpToDate.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
    /// Check the measurements against the policy's allow-list for this app.
    #[arg(long, value_name = "APP_ID", conflicts_with = "node")]
    pub app_id: Option<String>,
    /// Check the measurements against the policy's node images.
    #[arg(long)]
    pub node: bool,
    /// Require this report_data (128 hex digits).
    #[arg(long, value_name = "HEX")]
    pub report_data: Option<String>,
    /// Required token issuer.
    #[arg(long, value_name = "ISSUER", default_value = DEFAULT_ISSUER)]
    pub issuer: String,
    /// Accept simulated (insecure-dev) quotes. They prove nothing.
    #[arg(long)]
    pub insecure_dev: bool,
}

/// Runs `attest verify`: verifies the evidence at `--at`, applies the policy,
/// and returns the [`crate::VerifiedTd`] as JSON (measurements in hex).
pub fn verify_cli(args: &VerifyArgs) -> Result<serde_json::Value, Error> {
    let policy = match &args.policy {
        Some(path) => Policy::from_json(&read_file("--policy", path)?)?,
        None => Policy::strict(),
    };
    let expected_report_data = args
        .report_data
        .as_deref()
        .map(|hex| {
            decode_hex_array::<REPORT_DATA_LEN>(hex.trim())
                .map_err(|e| Error::config("--report-data", e))
        })
        .transpose()?;
    let (verifier, evidence) = evidence_and_verifier(args)?;
    let td = verifier.verify(&evidence, args.at)?;
    policy.check_tcb(&td)?;
    if let Some(app_id) = &args.app_id {
        policy.check_measurements(&td, Subject::App(app_id))?;
    }
    if args.node {
        policy.check_measurements(&td, Subject::NodeImage)?;
    }
    if let Some(expected) = &expected_report_data {
        check_binding(&td, expected)?;
    }
    serde_json::to_value(&td).map_err(|e| Error::config("output", e.to_string()))
}

fn evidence_and_verifier(args: &VerifyArgs) -> Result<(Verifier, Evidence), Error> {
    let builder = Verifier::builder().insecure_dev(args.insecure_dev);
    match (&args.quote, &args.token) {
        (Some(quote_path), None) => {
            let quote = read_quote(quote_path)?;
            if is_simulated(&quote) {
                return Ok((builder.build(), Evidence::Simulated(quote)));
            }
            let collateral_path = args
                .collateral
                .as_ref()
                .ok_or_else(|| Error::config("--collateral", "required with --quote"))?;
            let collateral = Collateral::from_json(&read_file("--collateral", collateral_path)?)?;
            let dcap = DcapVerifier::new(StaticCollateral::new(collateral))?;
            Ok((builder.dcap(dcap).build(), Evidence::Dcap(quote)))
        }
        (None, Some(token_path)) => {
            let token = String::from_utf8(read_file("--token", token_path)?)
                .map_err(|_| Error::malformed("token", "not UTF-8"))?;
            let jwks_path = args
                .jwks
                .as_ref()
                .ok_or_else(|| Error::config("--jwks", "required with --token"))?;
            let jwks = Arc::new(Jwks::from_json(&read_file("--jwks", jwks_path)?)?);
            let config = ItaConfig {
                issuer: args.issuer.clone(),
                ..ItaConfig::default()
            };
            let ita = ItaVerifier::new(jwks, config);
            Ok((
                builder.ita(ita).build(),
                Evidence::Ita(token.trim().to_string()),
            ))
        }
        _ => Err(Error::config(
            "evidence",
            "give either --quote FILE --collateral FILE or --token FILE --jwks FILE",
        )),
    }
}

fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path)
        .map_err(|e| Error::config(format!("{flag} {}", path.display()), e.to_string()))
}

/// A quote file holds the raw quote, or its hex encoding (raw quotes start with
/// a binary version number, never with two hex digits).
fn read_quote(path: &Path) -> Result<Vec<u8>, Error> {
    let bytes = read_file("--quote", path)?;
    let text = bytes.trim_ascii();
    if !text.is_empty() && text.len() % 2 == 0 && text.iter().all(u8::is_ascii_hexdigit) {
        return hex::decode(text).map_err(|e| Error::malformed("quote", e.to_string()));
    }
    Ok(bytes)
}
