//! The `kms-attest verify` binary: JSON on success, `rejected: <kind>` and a
//! non-zero exit on refusal.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use kms_attestation::TdMeasurements;
use kms_attestation::simulated::encode_simulated_quote;

const AT: &str = "1750838400";
const AFTER_VALIDITY: &str = "1752920164";

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kms-attest"))
        .arg("verify")
        .args(args)
        .output()
        .unwrap()
}

fn quote_args<'a>(quote: &'a str, collateral: &'a str, at: &'a str) -> Vec<&'a str> {
    vec!["--quote", quote, "--collateral", collateral, "--at", at]
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn prints_the_verified_td_as_json() {
    let (q, c) = (data("tdx_quote"), data("tdx_quote_collateral.json"));
    let out = run(&quote_args(q.to_str().unwrap(), c.to_str().unwrap(), AT));
    assert!(out.status.success(), "{}", stderr(&out));
    let td: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        td["mrtd"],
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    );
    assert_eq!(td["rtmr"].as_array().unwrap().len(), 4);
    assert_eq!(td["tcb_status"], "UpToDate");
}

#[test]
fn accepts_hex_quote_files() {
    let dir = tempfile::tempdir().unwrap();
    let hex_quote = dir.path().join("quote.hex");
    std::fs::write(
        &hex_quote,
        hex::encode(std::fs::read(data("tdx_quote")).unwrap()) + "\n",
    )
    .unwrap();
    let c = data("tdx_quote_collateral.json");
    let out = run(&quote_args(
        hex_quote.to_str().unwrap(),
        c.to_str().unwrap(),
        AT,
    ));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn names_the_error_kind_on_rejection() {
    let (q, c) = (data("tdx_quote"), data("tdx_quote_collateral.json"));
    let (qo, co) = (
        data("tdx_quote_outdated"),
        data("tdx_quote_outdated_collateral.json"),
    );
    let cases = [
        (
            quote_args(q.to_str().unwrap(), c.to_str().unwrap(), AFTER_VALIDITY),
            "stale",
        ),
        (
            quote_args(qo.to_str().unwrap(), co.to_str().unwrap(), "1772323200"),
            "tcb_unknown",
        ),
        (
            quote_args(q.to_str().unwrap(), co.to_str().unwrap(), "1772323200"),
            "collateral_mismatch",
        ),
    ];
    for (args, kind) in cases {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).starts_with(&format!("rejected: {kind}: ")),
            "{}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn applies_a_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let (q, c) = (data("tdx_quote"), data("tdx_quote_collateral.json"));
    let ok = run(&quote_args(q.to_str().unwrap(), c.to_str().unwrap(), AT));
    let td: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    let policy = dir.path().join("policy.json");
    std::fs::write(
        &policy,
        serde_json::json!({"apps": {"app-1": [{"mrtd": td["mrtd"], "rtmr": td["rtmr"]}]}})
            .to_string(),
    )
    .unwrap();
    let mut args = quote_args(q.to_str().unwrap(), c.to_str().unwrap(), AT);
    args.extend(["--policy", policy.to_str().unwrap(), "--app-id", "app-1"]);
    let report_data = td["report_data"].as_str().unwrap().to_string();
    let mut bound = args.clone();
    bound.extend(["--report-data", &report_data]);
    assert!(run(&bound).status.success());
    let mut other_app = quote_args(q.to_str().unwrap(), c.to_str().unwrap(), AT);
    other_app.extend(["--policy", policy.to_str().unwrap(), "--app-id", "app-2"]);
    assert!(stderr(&run(&other_app)).starts_with("rejected: measurement_not_allowed"));
    let zeros = "00".repeat(64);
    let mut wrong_binding = args.clone();
    wrong_binding.extend(["--report-data", &zeros]);
    assert!(stderr(&run(&wrong_binding)).starts_with("rejected: binding_mismatch"));
    let mut node = quote_args(q.to_str().unwrap(), c.to_str().unwrap(), AT);
    node.extend(["--policy", policy.to_str().unwrap(), "--node"]);
    assert!(stderr(&run(&node)).starts_with("rejected: measurement_not_allowed"));
}

#[test]
fn simulated_quotes_need_the_insecure_flag() {
    let dir = tempfile::tempdir().unwrap();
    let quote = dir.path().join("simulated");
    let m = TdMeasurements {
        mrtd: [1; 48],
        rtmr: [[2; 48]; 4],
    };
    std::fs::write(&quote, encode_simulated_quote(&m, &[3; 64])).unwrap();
    let out = run(&["--quote", quote.to_str().unwrap(), "--at", AT]);
    assert!(
        stderr(&out).starts_with("rejected: simulated_refused"),
        "{}",
        stderr(&out)
    );
    // Accepted as well formed, then refused by the default (strict) policy.
    let out = run(&[
        "--quote",
        quote.to_str().unwrap(),
        "--at",
        AT,
        "--insecure-dev",
    ]);
    assert!(
        stderr(&out).starts_with("rejected: outdated_tcb"),
        "{}",
        stderr(&out)
    );
    let policy = dir.path().join("dev.json");
    std::fs::write(&policy, r#"{"accepted_tcb_statuses": ["Simulated"]}"#).unwrap();
    let out = run(&[
        "--quote",
        quote.to_str().unwrap(),
        "--at",
        AT,
        "--insecure-dev",
        "--policy",
        policy.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn verifies_tokens_against_a_jwks_file() {
    use jsonwebtoken::jwk::{Jwk, JwkSet};
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let dir = tempfile::tempdir().unwrap();
    let key =
        EncodingKey::from_rsa_pem(&std::fs::read(data("ita/rsa-test-key.pem")).unwrap()).unwrap();
    let mut jwk = Jwk::from_encoding_key(&key, Algorithm::PS384).unwrap();
    jwk.common.key_id = Some("k1".into());
    let jwks = dir.path().join("jwks.json");
    std::fs::write(
        &jwks,
        serde_json::to_vec(&JwkSet { keys: vec![jwk] }).unwrap(),
    )
    .unwrap();
    let claims = serde_json::json!({
        "iss": "Intel Trust Authority", "iat": 1_750_838_000u64, "exp": 1_750_838_700u64,
        "tdx": {
            "attester_tcb_status": "UpToDate",
            "tdx_mrtd": "ab".repeat(48), "tdx_rtmr0": "00".repeat(48), "tdx_rtmr1": "00".repeat(48),
            "tdx_rtmr2": "00".repeat(48), "tdx_rtmr3": "00".repeat(48), "tdx_report_data": "cd".repeat(64)
        }
    });
    let mut header = Header::new(Algorithm::PS384);
    header.kid = Some("k1".into());
    let token = dir.path().join("token.jwt");
    std::fs::write(
        &token,
        jsonwebtoken::encode(&header, &claims, &key).unwrap(),
    )
    .unwrap();
    let (t, j) = (token.to_str().unwrap(), jwks.to_str().unwrap());
    let out = run(&["--token", t, "--jwks", j, "--at", AT]);
    assert!(out.status.success(), "{}", stderr(&out));
    let td: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(td["mrtd"], "ab".repeat(48));
    let out = run(&["--token", t, "--jwks", j, "--at", "1750840000"]);
    assert!(
        stderr(&out).starts_with("rejected: stale"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--token", t, "--jwks", j, "--at", AT, "--issuer", "other"]);
    assert!(
        stderr(&out).starts_with("rejected: wrong_issuer"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn usage_errors() {
    let out = run(&["--at", AT]);
    assert!(
        stderr(&out).starts_with("rejected: config"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "--quote",
        "/nonexistent/quote",
        "--collateral",
        "x",
        "--at",
        AT,
    ]);
    assert!(
        stderr(&out).starts_with("rejected: config"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--quote", "q"]);
    assert_eq!(out.status.code(), Some(2), "clap usage error");
}
