//! DCAP verification of the real quotes in `tests/data`, and of every derived
//! negative case, each refused with its own error kind.

use std::sync::Arc;

use kms_attestation::{
    CachingCollateralSource, Collateral, CollateralDir, DcapVerifier, Error, Evidence, Policy,
    StaticCollateral, Subject, TcbStatus, Verifier, secrets_report_data,
};

const QUOTE: &[u8] = include_bytes!("data/tdx_quote");
const COLLATERAL: &[u8] = include_bytes!("data/tdx_quote_collateral.json");
/// 2025-06-25T08:00:00Z, inside `tdx_quote_collateral.json`'s validity.
const AT: u64 = 1_750_838_400;
/// Last second that collateral is valid: its PCK CRL's nextUpdate
/// (2025-07-19T10:00:35Z) minus one; TCB info lasts until 10:16:03Z.
const VALID_UNTIL: u64 = 1_752_919_234;

const QUOTE_TD15EX: &[u8] = include_bytes!("data/tdx_quote_td15ex");
const COLLATERAL_TD15EX: &[u8] = include_bytes!("data/tdx_quote_td15ex_collateral.json");
const AT_TD15EX: u64 = 1_791_500_000;

const QUOTE_OUTDATED: &[u8] = include_bytes!("data/tdx_quote_outdated");
const COLLATERAL_OUTDATED: &[u8] = include_bytes!("data/tdx_quote_outdated_collateral.json");
const AT_OUTDATED: u64 = 1_772_323_200;

// Layout of the v4 test quote: header (48) ‖ TD report (584) ‖ auth_len (4) ‖
// ISV signature (64) ‖ attestation key (64) ‖ QE report (384) ‖ ...
const BODY: usize = 48;
const MRTD_OFFSET: usize = BODY + 136;
const RTMR3_OFFSET: usize = BODY + 472;
const SIGNATURE_OFFSET: usize = BODY + 584 + 4;
const QE_REPORT_OFFSET: usize = SIGNATURE_OFFSET + 128;

fn verifier(collateral: &[u8]) -> DcapVerifier<StaticCollateral> {
    DcapVerifier::new(StaticCollateral::new(
        Collateral::from_json(collateral).unwrap(),
    ))
    .unwrap()
}

fn flipped(quote: &[u8], offset: usize) -> Vec<u8> {
    let mut out = quote.to_vec();
    out[offset] ^= 0x01;
    out
}

fn kind(result: Result<kms_attestation::VerifiedTd, Error>) -> &'static str {
    result.expect_err("must be refused").kind()
}

#[test]
fn v4_quote_verifies_at_fixed_time() {
    let td = verifier(COLLATERAL).verify(QUOTE, AT).unwrap();
    assert_eq!(td.tcb_status, TcbStatus::UpToDate);
    assert!(td.advisories.is_empty());
    assert_eq!(
        hex::encode(td.mrtd),
        "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
    );
    assert_eq!(td.rtmr[3], [0u8; 48]);
    assert!(Policy::strict().check_tcb(&td).is_ok());
}

#[test]
fn v5_td15ex_quote_verifies_at_fixed_time() {
    let td = verifier(COLLATERAL_TD15EX)
        .verify(QUOTE_TD15EX, AT_TD15EX)
        .unwrap();
    assert_eq!(td.tcb_status, TcbStatus::UpToDate);
}

#[test]
fn flipped_signature_byte_is_bad_signature() {
    let err = verifier(COLLATERAL)
        .verify(&flipped(QUOTE, SIGNATURE_OFFSET + 10), AT)
        .unwrap_err();
    assert_eq!(err, Error::BadSignature { what: "quote body" });
}

#[test]
fn flipped_measurement_byte_is_bad_signature() {
    // The attestation key signs the measurements: a changed MRTD or RTMR can
    // only be detected as a broken signature.
    for offset in [MRTD_OFFSET + 3, RTMR3_OFFSET + 47] {
        let err = verifier(COLLATERAL)
            .verify(&flipped(QUOTE, offset), AT)
            .unwrap_err();
        assert_eq!(
            err,
            Error::BadSignature { what: "quote body" },
            "offset {offset}"
        );
    }
}

#[test]
fn flipped_qe_report_byte_is_bad_signature() {
    let err = verifier(COLLATERAL)
        .verify(&flipped(QUOTE, QE_REPORT_OFFSET + 10), AT)
        .unwrap_err();
    assert_eq!(err, Error::BadSignature { what: "QE report" });
}

#[test]
fn report_data_mismatch_under_policy_is_binding_mismatch() {
    let td = verifier(COLLATERAL).verify(QUOTE, AT).unwrap();
    let policy = Policy::strict().allow_app("app-1", td.measurements());
    // The quote's report_data is not the binding of this request.
    let expected = secrets_report_data(b"-----BEGIN PUBLIC KEY-----\n...", b"nonce-1", "app-1", 1);
    assert_eq!(
        policy
            .appraise(&td, Subject::App("app-1"), &expected)
            .unwrap_err(),
        Error::BindingMismatch
    );
    assert!(
        policy
            .appraise(&td, Subject::App("app-1"), &td.report_data)
            .is_ok()
    );
}

#[test]
fn unregistered_measurement_is_not_allowed() {
    let td = verifier(COLLATERAL).verify(QUOTE, AT).unwrap();
    let mut other = td.measurements();
    other.rtmr[2][0] ^= 1;
    let policy = Policy::strict()
        .allow_app("app-1", other)
        .allow_node_image(other);
    for subject in [
        Subject::App("app-1"),
        Subject::App("app-2"),
        Subject::NodeImage,
    ] {
        assert_eq!(
            policy
                .appraise(&td, subject, &td.report_data)
                .unwrap_err()
                .kind(),
            "measurement_not_allowed"
        );
    }
}

#[test]
fn swapped_collateral_is_a_mismatch() {
    // Each quote with the other quote's collateral, inside that collateral's validity.
    assert_eq!(
        kind(verifier(COLLATERAL_OUTDATED).verify(QUOTE, AT_OUTDATED)),
        "collateral_mismatch"
    );
    assert_eq!(
        kind(verifier(COLLATERAL).verify(QUOTE_OUTDATED, AT)),
        "collateral_mismatch"
    );
}

#[test]
fn expired_collateral_is_stale() {
    let v = verifier(COLLATERAL);
    assert_eq!(
        Collateral::from_json(COLLATERAL).unwrap().valid_until(),
        VALID_UNTIL
    );
    let last_second = v.verify(QUOTE, VALID_UNTIL);
    assert!(last_second.is_ok(), "{last_second:?}");
    assert_eq!(
        v.verify(QUOTE, VALID_UNTIL + 1).unwrap_err(),
        Error::Stale {
            what: "PCK CRL".into(),
            not_after: VALID_UNTIL,
            now: VALID_UNTIL + 1
        }
    );
    // After the TCB info's own nextUpdate.
    let after_tcb_info = 1_752_920_164;
    assert_eq!(kind(v.verify(QUOTE, after_tcb_info)), "stale");
}

#[test]
fn collateral_not_yet_issued_is_not_yet_valid() {
    assert_eq!(
        kind(verifier(COLLATERAL).verify(QUOTE, AT - 30 * 86_400)),
        "not_yet_valid"
    );
}

#[test]
fn outdated_quote_has_no_tcb_level_under_any_policy() {
    // See tests/data/README.md: the platform is below every TCB level Intel
    // lists, so verification itself refuses it (a policy never sees it).
    let v = verifier(COLLATERAL_OUTDATED);
    assert_eq!(kind(v.verify(QUOTE_OUTDATED, AT_OUTDATED)), "tcb_unknown");
    let lenient = Policy::strict()
        .accept_status(TcbStatus::OutOfDate)
        .accept_status(TcbStatus::OutOfDateConfigurationNeeded)
        .accept_status(TcbStatus::SWHardeningNeeded);
    let verifier = Verifier::builder().dcap(v).build();
    let result = verifier
        .verify(&Evidence::Dcap(QUOTE_OUTDATED.to_vec()), AT_OUTDATED)
        .and_then(|td| lenient.check_tcb(&td).map(|()| td));
    assert_eq!(kind(result), "tcb_unknown");
}

#[test]
fn out_of_date_status_is_refused_strictly_and_accepted_leniently() {
    // No real OutOfDate quote exists in the test data (Intel signs the TCB
    // info); the TCB decision is the policy's, checked on a verified TD whose
    // status is set as Intel would for an out-of-date platform.
    let mut td = verifier(COLLATERAL).verify(QUOTE, AT).unwrap();
    td.tcb_status = TcbStatus::OutOfDate;
    td.advisories = vec!["INTEL-SA-00837".into()];
    let err = Policy::strict().check_tcb(&td).unwrap_err();
    assert_eq!(
        err,
        Error::OutdatedTcb {
            status: TcbStatus::OutOfDate,
            advisories: vec!["INTEL-SA-00837".into()]
        }
    );
    assert!(
        Policy::strict()
            .accept_status(TcbStatus::OutOfDate)
            .check_tcb(&td)
            .is_ok()
    );
}

#[test]
fn truncated_and_garbage_quotes_are_malformed() {
    let v = verifier(COLLATERAL);
    for bad in [
        &QUOTE[..0],
        &QUOTE[..47],
        &QUOTE[..600],
        &QUOTE[..QUOTE.len() - 100],
    ] {
        assert_eq!(kind(v.verify(bad, AT)), "malformed", "len {}", bad.len());
    }
    let mut sgx = QUOTE.to_vec();
    sgx[4] = 0; // TEE type SGX
    assert_eq!(kind(v.verify(&sgx, AT)), "malformed");
}

#[test]
fn second_quote_from_a_platform_skips_collateral_checks() {
    let v = verifier(COLLATERAL);
    let first = v.verify(QUOTE, AT).unwrap();
    let stats = v.stats();
    assert_eq!((stats.hits, stats.misses, stats.platforms), (0, 1, 1));
    let second = v.verify(QUOTE, AT + 60).unwrap();
    assert_eq!(first, second);
    assert_eq!(v.stats().hits, 1);
    // The cached path still checks the quote's own signature...
    let err = v.verify(&flipped(QUOTE, MRTD_OFFSET), AT).unwrap_err();
    assert_eq!(err, Error::BadSignature { what: "quote body" });
    assert_eq!(v.stats().hits, 2);
    // ...and hands back to full verification outside the collateral's validity.
    assert_eq!(kind(v.verify(QUOTE, VALID_UNTIL + 1)), "stale");
    assert_eq!(v.stats().misses, 2);
    // A change anywhere but the per-TD fields is a different platform.
    assert_eq!(
        kind(v.verify(&flipped(QUOTE, QE_REPORT_OFFSET + 10), AT)),
        "bad_signature"
    );
    assert_eq!(v.stats().misses, 3);
    v.clear_cache();
    assert_eq!(v.stats().platforms, 0);
}

#[test]
fn caching_source_reads_collateral_files_by_fmspc() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("B0C06F000000.json"), COLLATERAL).unwrap();
    let source = Arc::new(CachingCollateralSource::new(CollateralDir::new(dir.path())));
    let v = DcapVerifier::new(source.clone()).unwrap();
    assert!(v.verify(QUOTE, AT).is_ok());
    // The file is read once and kept until its nextUpdate.
    std::fs::remove_file(dir.path().join("B0C06F000000.json")).unwrap();
    v.clear_cache();
    assert!(v.verify(QUOTE, AT + 1).is_ok());
    // After nextUpdate the source goes back to the (now empty) directory.
    assert_eq!(
        kind(v.verify(QUOTE, VALID_UNTIL + 1)),
        "collateral_unavailable"
    );
    // A quote from a platform family with no file.
    assert_eq!(kind(v.verify(QUOTE_OUTDATED, AT)), "collateral_unavailable");
}
