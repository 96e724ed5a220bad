//! The slashing contract against a real anvil: every way a proof is accepted and every
//! way it is refused, with evidence made by kms-protocol (simulated sessions with
//! Byzantine dealers, and signed messages crafted directly), and agreement with the
//! Rust verifier (`FraudEvidence::verify`) on each case.

mod common;

use alloy::primitives::{B256, Bytes, U256};
use common::evidence::*;
use common::{Fixture, TestOperator, eth};
use kms_chain::bindings::EigenKMSSlashing;
use kms_chain::fraud::session_descriptor;
use kms_chain::{ChainError, FraudProof, KeyCurve, ProofOutcome, ProofStatus};
use kms_crypto::OperatorAddress;
use kms_crypto::signer::{EcdsaSigner, OperatorPublicKey};
use kms_protocol::messages::{Payload, SignedMessage};
use kms_protocol::{EvidenceContext, FraudEvidence, SessionParams, VssMode};

const TS: u64 = 1_800_000_000;

fn wad(per_mille: u64) -> U256 {
    U256::from(per_mille) * U256::from(10u64).pow(U256::from(15))
}

fn rust_verdict(f: &Fixture, e: &FraudEvidence) -> Result<(), String> {
    let key = f.operator(&e.dealer()).signer.public_key();
    e.verify(&EvidenceContext {
        dealer_key: &key,
        pedersen_base: None,
        reshare: None,
    })
    .map_err(|e| e.to_string())
}

/// The contract (simulated from `from`) refuses `proof` with `expected`, and the Rust
/// verifier refuses the same evidence when there is one.
async fn refused(
    f: &Fixture,
    from: &TestOperator,
    proof: &FraudProof,
    evidence: Option<&FraudEvidence>,
    expected: &str,
) {
    let err = from.kms.check_fraud_proof(proof).await.unwrap_err();
    assert_eq!(err.revert_name(), Some(expected), "{err}");
    if let Some(e) = evidence {
        assert!(
            rust_verdict(f, e).is_err(),
            "Rust accepts what the contract refuses ({expected})"
        );
    }
}

async fn accepted(f: &Fixture, from: &TestOperator, proof: &FraudProof, evidence: &FraudEvidence) {
    rust_verdict(f, evidence).expect("Rust accepts the evidence");
    from.kms
        .check_fraud_proof(proof)
        .await
        .expect("the contract accepts the evidence");
}

fn submitted(o: ProofOutcome) -> kms_chain::TxOutcome {
    match o {
        ProofOutcome::Submitted(tx) => tx,
        other => panic!("expected a submission, got {other:?}"),
    }
}

async fn complaints(f: &Fixture, dealer: &OperatorAddress, ts: u64) -> u64 {
    EigenKMSSlashing::new(f.deployment.slashing, f.avs.connection().provider().clone())
        .complaintCount(eth(dealer), ts)
        .call()
        .await
        .unwrap()
        .to::<u64>()
}

fn invalid_share_of(evidence: &[FraudEvidence]) -> FraudEvidence {
    evidence
        .iter()
        .find(|e| matches!(e, FraudEvidence::InvalidShare { .. }))
        .cloned()
        .expect("an honest node holds invalid-share evidence")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_shares_are_punished_once_after_three_complaints() {
    let Some(f) = Fixture::new(7, KeyCurve::Bn254, 10).await else {
        return;
    };
    let params = session(TS, VssMode::Feldman, f.participants());
    let bad = f.operators[0].sim();
    let victims: Vec<&TestOperator> = f.operators[1..5].iter().collect();
    let evidence = run_session(
        &params,
        &f.sims(),
        vec![(
            bad.address,
            Box::new(InvalidShares {
                me: bad.address,
                signer: bad.signer.clone(),
                victims: victims.iter().map(|v| v.address).collect(),
            }),
        )],
        10,
    );
    // Each honest node holds one invalid-share proof (its own share, or one forwarded
    // to it first); the victims complain with theirs.
    let proofs: Vec<(FraudEvidence, FraudProof)> = victims
        .iter()
        .map(|v| {
            let e = invalid_share_of(&evidence[&v.address]);
            let p = FraudProof::from_evidence(&e, &params).unwrap();
            (e, p)
        })
        .collect();
    for o in &f.operators[1..] {
        let e = invalid_share_of(&evidence[&o.address]);
        assert_eq!(e.dealer(), bad.address, "evidence against an honest dealer");
    }
    for (i, v) in victims.iter().enumerate() {
        accepted(&f, v, &proofs[i].1, &proofs[i].0).await;
    }

    submitted(
        victims[0]
            .kms
            .submit_fraud_proof(&proofs[0].1)
            .await
            .unwrap(),
    );
    assert_eq!(complaints(&f, &bad.address, TS).await, 1);
    submitted(
        victims[1]
            .kms
            .submit_fraud_proof(&proofs[1].1)
            .await
            .unwrap(),
    );
    assert_eq!(
        f.slashes_of(&bad.address).await,
        (0, U256::ZERO),
        "two complaints do not slash"
    );

    // Replay of an accepted proof: skipped, and refused by the contract.
    assert_eq!(
        victims[0]
            .kms
            .submit_fraud_proof(&proofs[0].1)
            .await
            .unwrap(),
        ProofOutcome::Skipped(ProofStatus::AlreadyAccepted)
    );
    refused(&f, victims[0], &proofs[0].1, None, "ProofAlreadyAccepted").await;
    // One complainer counts once, whatever proof it brings.
    let another = invalid_share(&bad, &params, &victims[1].address, 77);
    let another = FraudProof::from_evidence(&another, &params).unwrap();
    assert_eq!(
        victims[1].kms.proof_status(&another).await.unwrap(),
        ProofStatus::AlreadyComplained
    );
    refused(&f, victims[1], &another, None, "AlreadyComplained").await;

    let tx = submitted(
        victims[2]
            .kms
            .submit_fraud_proof(&proofs[2].1)
            .await
            .unwrap(),
    );
    assert!(tx.gas_used > 0);
    assert_eq!(
        f.slashes_of(&bad.address).await,
        (1, wad(10)),
        "slashed once at the third"
    );
    let rec = f.avs.dealer_record(eth(&bad.address)).await.unwrap();
    assert_eq!((rec.fraud_sessions, rec.ejected), (1, false));

    // A fourth complaint changes nothing.
    assert_eq!(
        victims[3]
            .kms
            .submit_fraud_proof(&proofs[3].1)
            .await
            .unwrap(),
        ProofOutcome::Skipped(ProofStatus::AlreadyPunished)
    );
    refused(&f, victims[3], &proofs[3].1, None, "AlreadyPunished").await;
    assert_eq!(f.slashes_of(&bad.address).await, (1, wad(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_equivocating_dealer_is_slashed_on_one_proof() {
    let Some(f) = Fixture::new(7, KeyCurve::Bn254, 11).await else {
        return;
    };
    let params = session(TS, VssMode::Feldman, f.participants());
    let bad = f.operators[0].sim();
    let everyone: Vec<OperatorAddress> = f.operators.iter().map(|o| o.address).collect();
    let evidence = run_session(
        &params,
        &f.sims(),
        vec![(
            bad.address,
            Box::new(Equivocator {
                me: bad.address,
                signer: bad.signer.clone(),
                everyone,
                fooled: vec![f.operators[1].address, f.operators[2].address],
            }),
        )],
        11,
    );
    let honest = &f.operators[1..];
    let mut equivocations = Vec::new();
    let mut inconsistencies = Vec::new();
    for o in honest {
        for e in &evidence[&o.address] {
            assert_eq!(e.dealer(), bad.address, "evidence against an honest dealer");
            match e {
                FraudEvidence::Equivocation { .. } => equivocations.push((o, e.clone())),
                FraudEvidence::CommitmentInconsistency { .. } => {
                    inconsistencies.push((o, e.clone()))
                }
                _ => {}
            }
        }
    }
    assert!(!equivocations.is_empty() && !inconsistencies.is_empty());

    // Every honest node that holds an equivocation proof submits it: slashed once.
    let mut sent = 0;
    for (o, e) in &equivocations {
        let p = FraudProof::from_evidence(e, &params).unwrap();
        match o.kms.submit_fraud_proof(&p).await.unwrap() {
            ProofOutcome::Submitted(_) => sent += 1,
            ProofOutcome::Skipped(s) => assert!(
                matches!(
                    s,
                    ProofStatus::AlreadyAccepted | ProofStatus::AlreadyPunished
                ),
                "{s:?}"
            ),
        }
    }
    assert_eq!(sent, 1);
    assert_eq!(f.slashes_of(&bad.address).await, (1, wad(100)));

    // The inconsistency is another kind: punished once more, same fraud session.
    let (o, e) = &inconsistencies[0];
    let p = FraudProof::from_evidence(e, &params).unwrap();
    accepted(&f, o, &p, e).await;
    submitted(o.kms.submit_fraud_proof(&p).await.unwrap());
    assert_eq!(f.slashes_of(&bad.address).await, (2, wad(200)));
    let rec = f.avs.dealer_record(eth(&bad.address)).await.unwrap();
    assert_eq!((rec.fraud_sessions, rec.ejected), (1, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commitment_other_than_the_recorded_one_is_provable() {
    let Some(f) = Fixture::new(4, KeyCurve::Bn254, 12).await else {
        return;
    };
    let params = session(TS, VssMode::Feldman, f.participants());
    let dealer = &f.operators[0];
    let complainer = &f.operators[1];
    let shown = Dealing::new(&dealer.sim(), &params, 1);
    let recorded = Dealing::new(&dealer.sim(), &params, 2);
    let proof_of = |d: &Dealing| FraudProof::RegistryInconsistency {
        commitment: d.commitment.clone(),
    };
    refused(
        &f,
        complainer,
        &proof_of(&shown),
        None,
        "NoRegistrySubmission",
    )
    .await;
    dealer
        .kms
        .submit_commitment(TS, B256::from(recorded.hash()), B256::repeat_byte(1))
        .await
        .unwrap();
    refused(
        &f,
        complainer,
        &proof_of(&recorded),
        None,
        "CommitmentMatches",
    )
    .await;
    // A phase-2 commitment is not what the registry records.
    let phase2 = commitment_msg(&dealer.sim(), &params, 2, shown.dealing.commitment());
    refused(
        &f,
        complainer,
        &FraudProof::RegistryInconsistency { commitment: phase2 },
        None,
        "WrongPhase",
    )
    .await;
    submitted(
        complainer
            .kms
            .submit_fraud_proof(&proof_of(&shown))
            .await
            .unwrap(),
    );
    assert_eq!(f.slashes_of(&dealer.address).await, (1, wad(100)));
    refused(
        &f,
        &f.operators[2],
        &proof_of(&shown),
        None,
        "ProofAlreadyAccepted",
    )
    .await;
}

/// Nodes decode commitment points without the subgroup check (they check the
/// aggregate); a dealer that hid a torsion component in a coefficient is proven on-chain
/// with the point's index: the G2MSM precompile refuses it. A valid point, an index
/// past the end and a second submission are refused; the Rust verifier agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commitment_point_outside_g2_is_provable() {
    use kms_crypto::{Commitment, G2Point};
    let Some(f) = Fixture::new(4, KeyCurve::Bn254, 13).await else {
        return;
    };
    let params = session(TS, VssMode::Feldman, f.participants());
    let dealer = &f.operators[0];
    let complainer = &f.operators[1];
    let honest = Dealing::new(&dealer.sim(), &params, 3);
    let clean = FraudEvidence::InvalidCommitmentPoint {
        commitment: honest.commitment.clone(),
    };
    assert!(FraudProof::from_evidence(&clean, &params).is_err());
    refused(
        &f,
        complainer,
        &FraudProof::InvalidCommitmentPoint {
            commitment: honest.commitment.clone(),
            index: 1,
        },
        Some(&clean),
        "PointIsValid",
    )
    .await;

    let words: Vec<[u8; 256]> = honest
        .dealing
        .commitment()
        .coefficients()
        .iter()
        .enumerate()
        .map(|(k, c)| {
            if k == 2 {
                c.add(&G2Point::small_order_point()).to_eip2537()
            } else {
                c.to_eip2537()
            }
        })
        .collect();
    let tainted = Commitment::from_eip2537_deferred(words.iter().map(|w| w.as_slice())).unwrap();
    let msg = commitment_msg(&dealer.sim(), &params, 1, &tainted);
    let evidence = FraudEvidence::InvalidCommitmentPoint {
        commitment: msg.clone(),
    };
    let proof = FraudProof::from_evidence(&evidence, &params).unwrap();
    assert!(matches!(
        proof,
        FraudProof::InvalidCommitmentPoint { index: 2, .. }
    ));
    let at = |index| FraudProof::InvalidCommitmentPoint {
        commitment: msg.clone(),
        index,
    };
    refused(&f, complainer, &at(1), None, "PointIsValid").await;
    refused(&f, complainer, &at(99), None, "PointIndexOutOfRange").await;
    refused(&f, dealer, &proof, None, "SelfComplaint").await;
    accepted(&f, complainer, &proof, &evidence).await;
    let tx = submitted(complainer.kms.submit_fraud_proof(&proof).await.unwrap());
    eprintln!("proveInvalidCommitmentPoint (slash): {} gas", tx.gas_used);
    assert_eq!(f.slashes_of(&dealer.address).await, (1, wad(100)));
    assert!(
        complainer
            .kms
            .is_punished(
                eth(&dealer.address),
                TS,
                kms_chain::FraudKind::InvalidCommitmentPoint
            )
            .await
            .unwrap()
    );
    refused(&f, &f.operators[2], &proof, None, "ProofAlreadyAccepted").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fraud_in_three_sessions_means_full_slash_and_ejection() {
    let Some(f) = Fixture::new(4, KeyCurve::Bn254, 13).await else {
        return;
    };
    let bad = &f.operators[0];
    let complainer = &f.operators[1];
    for (i, ts) in [TS, TS + 30, TS + 60].into_iter().enumerate() {
        let params = session(ts, VssMode::Feldman, f.participants());
        let e = equivocation(&bad.sim(), &params, ts);
        submitted(
            complainer
                .kms
                .submit_fraud_proof(&FraudProof::from_evidence(&e, &params).unwrap())
                .await
                .unwrap(),
        );
        let rec = f.avs.dealer_record(eth(&bad.address)).await.unwrap();
        assert_eq!(rec.fraud_sessions, i as u64 + 1);
        assert_eq!(rec.ejected, i == 2);
    }
    // Two partial slashes, then the whole allocation; out of the operator set.
    assert_eq!(f.slashes_of(&bad.address).await, (3, wad(200) + wad(1000)));
    assert!(!f.avs.is_member(bad.eth()).await.unwrap());
    let set = f.avs.operator_set().latest().await.unwrap();
    assert!(set.operators.iter().all(|o| o.address != bad.address));
    // Nothing more is taken against an ejected dealer.
    let params = session(TS + 90, VssMode::Feldman, f.participants());
    let p = FraudProof::from_evidence(&equivocation(&bad.sim(), &params, 9), &params).unwrap();
    assert_eq!(
        complainer.kms.submit_fraud_proof(&p).await.unwrap(),
        ProofOutcome::Skipped(ProofStatus::DealerEjected)
    );
    refused(&f, complainer, &p, None, "DealerEjected").await;
}

/// The contract's verdict on an invalid-share proof whose share signature is replaced
/// by raw bytes (which need not decode as a signature in Rust).
async fn raw_share_signature(
    f: &Fixture,
    from: &TestOperator,
    proof: &FraudProof,
    sig: &[u8],
) -> String {
    let FraudProof::InvalidShare {
        commitment,
        share,
        session,
    } = proof
    else {
        panic!("an invalid-share proof")
    };
    let slashing = EigenKMSSlashing::new(
        f.deployment.slashing,
        from.kms.connection().provider().clone(),
    );
    let err = slashing
        .proveInvalidShare(
            EigenKMSSlashing::SignedPayload {
                payload: Bytes::from(commitment.payload.clone()),
                signature: Bytes::from(commitment.signature.to_bytes()),
            },
            EigenKMSSlashing::SignedPayload {
                payload: Bytes::from(share.payload.clone()),
                signature: Bytes::copy_from_slice(sig),
            },
            session.clone(),
        )
        .from(from.eth())
        .call()
        .await
        .unwrap_err();
    let decoded = err
        .as_decoded_interface_error::<EigenKMSSlashing::EigenKMSSlashingErrors>()
        .expect("a custom error");
    format!("{decoded:?}")
        .split('(')
        .next()
        .unwrap()
        .to_string()
}

/// Builds an invalid-share proof without the session check of `from_evidence`.
fn raw_invalid_share(c: &SignedMessage, s: &SignedMessage, params: &SessionParams) -> FraudProof {
    FraudProof::InvalidShare {
        commitment: c.clone(),
        share: s.clone(),
        session: session_descriptor(params).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_malformed_proofs_revert() {
    let Some(mut f) = Fixture::new(5, KeyCurve::Bn254, 14).await else {
        return;
    };
    let outsider = f.new_operator("https://outsider.invalid").await;
    let keyless = f.new_operator("https://keyless.invalid").await;
    let params = session(TS, VssMode::Feldman, f.participants());
    let dealer = f.operators[0].sim();
    let other = f.operators[1].sim();
    let c = &f.operators[2];
    let player = f.operators[3].address;
    let d = Dealing::new(&dealer, &params, 1);
    let good = invalid_share(&dealer, &params, &player, 1);
    let good_proof = FraudProof::from_evidence(&good, &params).unwrap();
    accepted(&f, c, &good_proof, &good).await;

    // Who may complain.
    refused(&f, &outsider, &good_proof, None, "NotMember").await;
    refused(&f, &f.operators[0], &good_proof, None, "SelfComplaint").await;

    // A valid share is no fraud.
    let valid = FraudEvidence::InvalidShare {
        commitment: d.commitment.clone(),
        share: d.share(&dealer, &params, &player, 0),
    };
    refused(
        &f,
        c,
        &FraudProof::from_evidence(&valid, &params).unwrap(),
        Some(&valid),
        "ShareIsValid",
    )
    .await;

    // Bad signatures: another key's signature, and a signature that is not a point.
    let FraudEvidence::InvalidShare { commitment, share } = &good else {
        unreachable!()
    };
    let mut forged_sig = share.clone();
    forged_sig.signature = other.signer.sign(&share.hash);
    let e = FraudEvidence::InvalidShare {
        commitment: commitment.clone(),
        share: forged_sig.clone(),
    };
    refused(
        &f,
        c,
        &raw_invalid_share(commitment, &forged_sig, &params),
        Some(&e),
        "BadSignature",
    )
    .await;
    // A signature that is not a curve point: not even decodable in Rust.
    let mut raw = share.signature.to_bytes();
    raw[63] ^= 1;
    assert!(kms_crypto::signer::Bn254Signature::from_slice(&raw).is_err());
    assert_eq!(
        raw_share_signature(&f, c, &good_proof, &raw).await,
        "BadSignature"
    );
    assert_eq!(
        raw_share_signature(&f, c, &good_proof, &raw[..63]).await,
        "BadSignature"
    );
    refused(
        &f,
        c,
        &FraudProof::Equivocation {
            first: d.commitment.clone(),
            second: {
                let mut m = Dealing::new(&dealer, &params, 2).commitment;
                m.signature = other.signer.sign(&m.hash);
                m
            },
        },
        None,
        "BadSignature",
    )
    .await;

    // Messages of two sessions, or a descriptor of another session.
    let params2 = session(TS + 1, VssMode::Feldman, f.participants());
    let share2 = Dealing::new(&dealer, &params2, 1).share(&dealer, &params2, &player, 1);
    let e = FraudEvidence::InvalidShare {
        commitment: d.commitment.clone(),
        share: share2.clone(),
    };
    refused(
        &f,
        c,
        &raw_invalid_share(&d.commitment, &share2, &params),
        Some(&e),
        "SessionMismatch",
    )
    .await;
    assert!(matches!(
        FraudProof::from_evidence(&good, &params2),
        Err(ChainError::InvalidEvidence(_))
    ));
    refused(
        &f,
        c,
        &raw_invalid_share(commitment, share, &params2),
        None,
        "SessionMismatch",
    )
    .await;
    let other_session = equivocation(&dealer, &params2, 5);
    let FraudEvidence::Equivocation {
        first: other_first, ..
    } = &other_session
    else {
        unreachable!()
    };
    let e = FraudEvidence::Equivocation {
        first: d.commitment.clone(),
        second: other_first.clone(),
    };
    refused(
        &f,
        c,
        &FraudProof::Equivocation {
            first: d.commitment.clone(),
            second: other_first.clone(),
        },
        Some(&e),
        "SessionMismatch",
    )
    .await;

    // Pedersen sessions: no on-chain invalid-share proofs (H2 is off-chain).
    let pedersen = session(TS, VssMode::Pedersen, f.participants());
    let pd = Dealing::new(&dealer, &pedersen, 1);
    let pe = FraudEvidence::InvalidShare {
        commitment: pd.commitment.clone(),
        share: pd.share(&dealer, &pedersen, &player, 1),
    };
    assert!(matches!(
        FraudProof::from_evidence(&pe, &pedersen),
        Err(ChainError::Unsupported(_))
    ));
    let FraudEvidence::InvalidShare {
        commitment: pc,
        share: ps,
    } = &pe
    else {
        unreachable!()
    };
    refused(
        &f,
        c,
        &raw_invalid_share(pc, ps, &pedersen),
        None,
        "PedersenUnsupported",
    )
    .await;

    // Messages of two dealers.
    let theirs = Dealing::new(&other, &params, 3).share(&other, &params, &player, 1);
    let e = FraudEvidence::InvalidShare {
        commitment: d.commitment.clone(),
        share: theirs.clone(),
    };
    refused(
        &f,
        c,
        &raw_invalid_share(&d.commitment, &theirs, &params),
        Some(&e),
        "DealerMismatch",
    )
    .await;

    // A phase-2 commitment is not what shares are checked against.
    let phase2 = commitment_msg(&dealer, &params, 2, d.dealing.commitment());
    let s = d.share(&dealer, &params, &player, 1);
    let e = FraudEvidence::InvalidShare {
        commitment: phase2.clone(),
        share: s.clone(),
    };
    refused(
        &f,
        c,
        &raw_invalid_share(&phase2, &s, &params),
        Some(&e),
        "WrongPhase",
    )
    .await;
    // Equivocation needs the same phase, and two different messages.
    let e = FraudEvidence::Equivocation {
        first: d.commitment.clone(),
        second: phase2.clone(),
    };
    refused(
        &f,
        c,
        &FraudProof::Equivocation {
            first: d.commitment.clone(),
            second: phase2.clone(),
        },
        Some(&e),
        "WrongPhase",
    )
    .await;
    let e = FraudEvidence::Equivocation {
        first: d.commitment.clone(),
        second: d.commitment.clone(),
    };
    refused(
        &f,
        c,
        &FraudProof::Equivocation {
            first: d.commitment.clone(),
            second: d.commitment.clone(),
        },
        Some(&e),
        "SameMessage",
    )
    .await;

    // Encodings the Rust decoder refuses: trailing data, wrong kind, bad points, bad scalars.
    let trailing = with_trailing_byte(&d.commitment, &dealer);
    let e = FraudEvidence::InvalidShare {
        commitment: trailing.clone(),
        share: s.clone(),
    };
    refused(
        &f,
        c,
        &raw_invalid_share(&trailing, &s, &params),
        Some(&e),
        "NonCanonicalEncoding",
    )
    .await;
    let e = FraudEvidence::InvalidShare {
        commitment: s.clone(),
        share: s.clone(),
    };
    refused(
        &f,
        c,
        &raw_invalid_share(&s, &s, &params),
        Some(&e),
        "WrongMessageKind",
    )
    .await;
    for corrupt in [
        |p: &mut Vec<u8>| p.iter_mut().for_each(|b| *b = 0), // the identity
        |p: &mut Vec<u8>| p[255] ^= 1,                       // off the curve
    ] {
        let Ok(Payload::Commitment(mut dc)) = d.commitment.peek() else {
            unreachable!()
        };
        let mut point = dc.commitment[1].to_vec();
        corrupt(&mut point);
        dc.commitment[1] = Bytes::from(point);
        let bad_c = resign(
            &Payload::Commitment(dc),
            dealer.address,
            dealer.signer.as_ref(),
        );
        let e = FraudEvidence::InvalidShare {
            commitment: bad_c.clone(),
            share: s.clone(),
        };
        refused(
            &f,
            c,
            &raw_invalid_share(&bad_c, &s, &params),
            Some(&e),
            "InvalidCommitmentPoint",
        )
        .await;
        let e = FraudEvidence::Equivocation {
            first: d.commitment.clone(),
            second: bad_c.clone(),
        };
        refused(
            &f,
            c,
            &FraudProof::Equivocation {
                first: d.commitment.clone(),
                second: bad_c.clone(),
            },
            Some(&e),
            "InvalidCommitmentPoint",
        )
        .await;
    }
    let r_plus = {
        let Ok(Payload::Share(mut sh)) = s.peek() else {
            unreachable!()
        };
        // share + r: the same value mod r, not canonical.
        let r = U256::from_str_radix(
            "73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001",
            16,
        )
        .unwrap();
        let v = U256::from_be_bytes(sh.share.0) + r;
        sh.share = B256::from(v.to_be_bytes::<32>());
        resign(&Payload::Share(sh), dealer.address, dealer.signer.as_ref())
    };
    let e = FraudEvidence::InvalidShare {
        commitment: d.commitment.clone(),
        share: r_plus.clone(),
    };
    refused(
        &f,
        c,
        &raw_invalid_share(&d.commitment, &r_plus, &params),
        Some(&e),
        "NonCanonicalShare",
    )
    .await;

    // A share that names this very commitment is no inconsistency.
    let e = FraudEvidence::CommitmentInconsistency {
        commitment: d.commitment.clone(),
        share: d.share(&dealer, &params, &player, 0),
    };
    refused(
        &f,
        c,
        &FraudProof::from_evidence(&e, &params).unwrap(),
        Some(&e),
        "CommitmentMatches",
    )
    .await;
    let e = inconsistency(&dealer, &params, &player, 7);
    accepted(&f, c, &FraudProof::from_evidence(&e, &params).unwrap(), &e).await;

    // A dealer without a registered key cannot be accused (nor verified).
    let ghost = keyless.sim();
    let p = FraudProof::from_evidence(&equivocation(&ghost, &params, 3), &params).unwrap();
    refused(&f, c, &p, None, "UnknownDealerKey").await;

    // Unsupported evidence kinds are refused before any transaction.
    let wrong_constant = FraudEvidence::WrongReshareConstant {
        commitment: d.commitment.clone(),
    };
    assert!(matches!(
        FraudProof::from_evidence(&wrong_constant, &params),
        Err(ChainError::Unsupported(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecdsa_dealers_are_checked_with_ecrecover() {
    let Some(f) = Fixture::new(5, KeyCurve::Ecdsa, 15).await else {
        return;
    };
    let params = session(TS, VssMode::Feldman, f.participants());
    let dealer = f.operators[0].sim();
    assert!(matches!(
        dealer.signer.public_key(),
        OperatorPublicKey::Ecdsa(_)
    ));
    let d = Dealing::new(&dealer, &params, 1);
    // High s (the malleable twin of a valid signature) and a bad v are refused, as k256 refuses them.
    let s = d.share(&dealer, &params, &f.operators[4].address, 1);
    let raw = s.signature.to_bytes();
    let n = U256::from_str_radix(
        "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141",
        16,
    )
    .unwrap();
    let high = n - U256::from_be_slice(&raw[32..64]);
    let mut raw = raw;
    raw[32..64].copy_from_slice(&high.to_be_bytes::<32>());
    raw[64] ^= 1; // 27 <-> 28
    let mut bad_v = s.signature.to_bytes();
    bad_v[64] = 29;
    let proof = FraudProof::from_evidence(
        &FraudEvidence::InvalidShare {
            commitment: d.commitment.clone(),
            share: s.clone(),
        },
        &params,
    )
    .unwrap();
    for sig in [raw, bad_v] {
        assert!(kms_crypto::signer::EcdsaSignature::from_slice(&sig).is_err());
        assert_eq!(
            raw_share_signature(&f, &f.operators[1], &proof, &sig).await,
            "BadSignature"
        );
    }
    // A signature by the operator's transaction key is not its protocol key.
    let mut by_tx_key = s.clone();
    let tx_like = EcdsaSigner::random(
        &mut <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1),
    );
    by_tx_key.signature = kms_crypto::signer::OperatorSigner::sign(&tx_like, &s.hash);
    let e = FraudEvidence::InvalidShare {
        commitment: d.commitment.clone(),
        share: by_tx_key.clone(),
    };
    refused(
        &f,
        &f.operators[1],
        &raw_invalid_share(&d.commitment, &by_tx_key, &params),
        Some(&e),
        "BadSignature",
    )
    .await;

    // The three complaints and an equivocation, all with ECDSA signatures.
    for (i, o) in f.operators[1..4].iter().enumerate() {
        let player = f.operators[i + 1].address;
        let e = FraudEvidence::InvalidShare {
            commitment: d.commitment.clone(),
            share: d.share(&dealer, &params, &player, 1),
        };
        let p = FraudProof::from_evidence(&e, &params).unwrap();
        accepted(&f, o, &p, &e).await;
        submitted(o.kms.submit_fraud_proof(&p).await.unwrap());
    }
    assert_eq!(f.slashes_of(&dealer.address).await, (1, wad(10)));
    let e = equivocation(&dealer, &params, 2);
    let p = FraudProof::from_evidence(&e, &params).unwrap();
    accepted(&f, &f.operators[1], &p, &e).await;
    submitted(f.operators[1].kms.submit_fraud_proof(&p).await.unwrap());
    assert_eq!(f.slashes_of(&dealer.address).await, (2, wad(110)));
}

/// `op` signing with a protocol key certified by `certifier` (normally its own
/// operator key) for `[not_before, not_after]`, certificate naming `named`.
fn certified(
    op: &TestOperator,
    certifier: &dyn kms_crypto::signer::OperatorSigner,
    named: OperatorAddress,
    window: (u64, u64),
) -> kms_protocol::sim::SimOperator {
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(window.0);
    kms_protocol::sim::SimOperator {
        address: op.address,
        signer: std::sync::Arc::new(kms_crypto::signer::CertifiedSigner::generate(
            named, certifier, window.0, window.1, &mut rng,
        )),
        certificates: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certified_protocol_key_signatures_are_checked_with_one_ecrecover() {
    for (curve, seed) in [(KeyCurve::Bn254, 21), (KeyCurve::Ecdsa, 22)] {
        let Some(f) = Fixture::new(5, curve, seed).await else {
            return;
        };
        let params = session(TS, VssMode::Feldman, f.participants());
        let dealer = &f.operators[0];
        let own = dealer.signer.as_ref();
        let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(seed);
        let stranger: Box<dyn kms_crypto::signer::OperatorSigner> = match curve {
            KeyCurve::Bn254 => Box::new(kms_crypto::signer::Bn254Signer::new(
                kms_crypto::signer::Bn254SecretKey::random(&mut rng),
            )),
            _ => Box::new(EcdsaSigner::random(&mut rng)),
        };
        let prove = |signer: &kms_protocol::sim::SimOperator| {
            let e = equivocation(signer, &params, seed);
            (FraudProof::from_evidence(&e, &params).unwrap(), e)
        };
        // Windows that end before the session or start after it.
        for window in [(0, TS - 1), (TS + 1, TS + 100)] {
            let (p, e) = prove(&certified(dealer, own, dealer.address, window));
            refused(&f, &f.operators[1], &p, Some(&e), "CertificateDoesNotCover").await;
        }
        // A certificate by a key that is not the dealer's registered one, and one by the
        // dealer's key for another operator's name.
        let (p, e) = prove(&certified(
            dealer,
            stranger.as_ref(),
            dealer.address,
            (0, TS),
        ));
        refused(&f, &f.operators[1], &p, Some(&e), "BadSignature").await;
        let (p, e) = prove(&certified(dealer, own, f.operators[2].address, (0, TS)));
        refused(&f, &f.operators[1], &p, Some(&e), "BadSignature").await;
        // A Schnorr signature that does not verify (s + 1; still a canonical scalar).
        let good = certified(dealer, own, dealer.address, (TS, TS + 3600));
        let e = equivocation(&good, &params, seed);
        let FraudEvidence::Equivocation { first, second } = &e else {
            unreachable!()
        };
        let mut tampered = first.clone();
        let mut raw = tampered.signature.to_bytes();
        let last = raw.len() - 1;
        raw[last] = raw[last].wrapping_add(1);
        tampered.signature =
            kms_crypto::signer::OperatorSignature::from_bytes(own.scheme(), &raw).unwrap();
        let bad = FraudEvidence::Equivocation {
            first: tampered,
            second: second.clone(),
        };
        let p = FraudProof::from_evidence(&bad, &params).unwrap();
        refused(&f, &f.operators[1], &p, Some(&bad), "BadSignature").await;
        // The genuine certified evidence is accepted and slashes.
        let p = FraudProof::from_evidence(&e, &params).unwrap();
        accepted(&f, &f.operators[1], &p, &e).await;
        let tx = submitted(f.operators[1].kms.submit_fraud_proof(&p).await.unwrap());
        println!(
            "{curve:?}: equivocation proof, certified signatures: {} gas",
            tx.gas_used
        );
        assert_eq!(f.slashes_of(&dealer.address).await.0, 1);
    }
}
