//! The slashing contract's protocol v2 proofs against a real anvil: faults made by the
//! v2 engines in the simulator (or forged with the v2 wire types and the operators'
//! registered keys) are accepted and slash; false complaints, tampered proofs,
//! evidence of another deployment and replays are refused — and the Rust verifier
//! (`dkg::Evidence::verify`, `verify_with_decision` in Pedersen sessions) agrees on
//! each case. Pedersen proofs carry the coin agreement's decision, from which the
//! contract recomputes the base `H2`.

mod common;

use alloy::primitives::{Bytes, U256};
use common::v2::{
    deployment, dkg, dkg_in, member, members, quorum, reshare, reshare_in, run_with_corrupt_share,
    verdict,
};
use common::{Fixture, eth};
use kms_chain::fraud_v2::base_proof;
use kms_chain::{FraudProofV2, KeyCurve, ProofOutcome, ProofStatus};
use kms_crypto::Scalar;
use kms_protocol::SignedMessage;
use kms_protocol::dkg::setup::Deployment;
use kms_protocol::dkg::sim::SimMember;
use kms_protocol::dkg::wire::{Body, Complaint, word};
use kms_protocol::dkg::{BaseDecision, Evidence, EvidenceError, Rejection, Setup, forge};
use kms_protocol::session::VssMode;

const TS: u64 = 1_850_000_000;

fn wad(per_mille: u64) -> U256 {
    U256::from(per_mille) * U256::from(10u64).pow(U256::from(15))
}

fn proof(e: &Evidence, setup: &Setup) -> FraudProofV2 {
    proof_in(e, setup, None)
}

fn proof_in(e: &Evidence, setup: &Setup, decision: Option<&BaseDecision>) -> FraudProofV2 {
    FraudProofV2::from_evidence(e, setup, decision).expect("a proof")
}

fn submitted(o: ProofOutcome) -> u64 {
    match o {
        ProofOutcome::Submitted(tx) => tx.gas_used,
        other => panic!("expected a submission, got {other:?}"),
    }
}

fn resign_complaint(
    m: &SignedMessage,
    player: &SimMember,
    edit: impl Fn(&mut Complaint),
) -> SignedMessage {
    let Ok(Body::Complaint(mut c)) = Body::decode(&m.payload) else {
        panic!("a complaint")
    };
    edit(&mut c);
    Body::Complaint(c).sign(player.operator.signer.as_ref())
}

async fn invalid_shares_found_by_the_engines_are_punished_after_three_complaints(
    curve: KeyCurve,
    mode: VssMode,
) {
    let Some(f) = Fixture::new(7, curve, 40).await else {
        return;
    };
    let dep = deployment(&f).await;
    let ms = members(&f, 0, &dep, 40);
    let setup = dkg_in(mode, &ms, TS, dep);
    let bad = member(&ms, &f.operators[0]);
    let victim = member(&ms, &f.operators[5]);
    let ended = run_with_corrupt_share(&setup, &ms, bad, victim, 40);
    // Every honest node holds the victim's complaint as evidence (and, in Pedersen
    // mode, the base's decision), and it verifies.
    let mut proofs = Vec::new();
    for o in &f.operators[1..] {
        let (evidence, decision) = &ended[&o.address];
        let e = evidence
            .iter()
            .find(|e| e.kind() == "invalid_share")
            .expect("an honest node holds the proof");
        assert_eq!(e.accused(), bad.address());
        match mode {
            VssMode::Feldman => assert_eq!(e.verify(&setup), Ok(())),
            VssMode::Pedersen => {
                assert!(
                    decision.is_some(),
                    "a Pedersen node holds the base's decision"
                );
                assert_eq!(e.verify(&setup), Err(EvidenceError::NeedsBase));
                assert_eq!(e.verify_with_decision(&setup, decision.as_ref()), Ok(()));
            }
        }
        proofs.push((o, proof_in(e, &setup, decision.as_ref())));
    }
    for (o, p) in &proofs {
        assert_eq!(verdict(&o.kms, p).await, Ok(()));
    }
    submitted(
        proofs[0]
            .0
            .kms
            .submit_fraud_proof_v2(&proofs[0].1)
            .await
            .unwrap(),
    );
    submitted(
        proofs[1]
            .0
            .kms
            .submit_fraud_proof_v2(&proofs[1].1)
            .await
            .unwrap(),
    );
    assert_eq!(f.slashes_of(&bad.address()).await, (0, U256::ZERO));
    // A replay counts nothing.
    assert_eq!(
        proofs[0]
            .0
            .kms
            .submit_fraud_proof_v2(&proofs[0].1)
            .await
            .unwrap(),
        ProofOutcome::Skipped(ProofStatus::AlreadyAccepted)
    );
    assert_eq!(
        verdict(&proofs[0].0.kms, &proofs[0].1).await,
        Err("ProofAlreadyAccepted".into())
    );
    submitted(
        proofs[2]
            .0
            .kms
            .submit_fraud_proof_v2(&proofs[2].1)
            .await
            .unwrap(),
    );
    assert_eq!(
        f.slashes_of(&bad.address()).await,
        (1, wad(10)),
        "slashed once at the third complaint"
    );
    assert_eq!(
        verdict(&proofs[3].0.kms, &proofs[3].1).await,
        Err("AlreadyPunished".into())
    );
    let rec = f.avs.dealer_record(eth(&bad.address())).await.unwrap();
    assert_eq!((rec.fraud_sessions, rec.ejected), (1, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_invalid_shares_are_punished_after_three_complaints_with_bn254_keys() {
    invalid_shares_found_by_the_engines_are_punished_after_three_complaints(
        KeyCurve::Bn254,
        VssMode::Feldman,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_invalid_shares_are_punished_after_three_complaints_with_ecdsa_keys() {
    invalid_shares_found_by_the_engines_are_punished_after_three_complaints(
        KeyCurve::Ecdsa,
        VssMode::Feldman,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_pedersen_invalid_shares_are_punished_after_three_complaints_with_bn254_keys() {
    invalid_shares_found_by_the_engines_are_punished_after_three_complaints(
        KeyCurve::Bn254,
        VssMode::Pedersen,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_pedersen_invalid_shares_are_punished_after_three_complaints_with_ecdsa_keys() {
    invalid_shares_found_by_the_engines_are_punished_after_three_complaints(
        KeyCurve::Ecdsa,
        VssMode::Pedersen,
    )
    .await;
}

fn resign_dealing(
    m: &SignedMessage,
    dealer: &SimMember,
    edit: impl Fn(&mut kms_protocol::dkg::wire::Dealing),
) -> SignedMessage {
    let Ok(Body::Dealing(mut d)) = Body::decode(&m.payload) else {
        panic!("a dealing")
    };
    edit(&mut d);
    Body::Dealing(d).sign(dealer.operator.signer.as_ref())
}

fn resign_vote(
    m: &SignedMessage,
    voter: &SimMember,
    edit: impl Fn(&mut kms_protocol::dkg::wire::Vote),
) -> SignedMessage {
    let Ok(Body::Vote(mut v)) = Body::decode(&m.payload) else {
        panic!("a vote")
    };
    edit(&mut v);
    Body::Vote(v).sign(voter.operator.signer.as_ref())
}

/// Forged Pedersen faults, false complaints and tampered base proofs: the contract
/// and `Evidence::verify_with_decision` give the same verdict on each.
async fn pedersen_invalid_shares_and_base_proofs_are_checked_on_chain(curve: KeyCurve, seed: u64) {
    let Some(f) = Fixture::new(5, curve, seed).await else {
        return;
    };
    let dep = deployment(&f).await;
    let ms = members(&f, 0, &dep, seed);
    let setup = dkg_in(VssMode::Pedersen, &ms, TS, dep);
    let q = quorum(&setup);
    let (decision, base) = forge::base_decision(&setup, &ms, q, 0, seed);
    let (dealer, player) = (member(&ms, &f.operators[0]), member(&ms, &f.operators[1]));
    let from = &f.operators[2];
    let both = async |e: &Evidence, d: &BaseDecision| {
        let rust = e.verify_with_decision(&setup, Some(d));
        let chain = verdict(&from.kms, &proof_in(e, &setup, Some(d))).await;
        (rust, chain)
    };

    // A genuine invalid share (value word off by one) and one with only its blinding
    // word off: both proven; without the decision the Rust verifier needs the base.
    let genuine = forge::invalid_share_in(&setup, dealer, player, Some(&base), 1);
    assert_eq!(genuine.verify(&setup), Err(EvidenceError::NeedsBase));
    assert_eq!(both(&genuine, &decision).await, (Ok(()), Ok(())));
    let index = setup.player_index(&player.address()).unwrap();
    let honest = forge::dealing(&setup, dealer, None, Some(&base), 2);
    let blinding_off = resign_dealing(&honest, dealer, |d| {
        let w = Scalar::from_bytes_be(&d.shareBlindings[index].0).unwrap();
        d.shareBlindings[index] = word((&w + &Scalar::one()).to_bytes_be());
    });
    let blinding = Evidence::InvalidShare {
        complaint: forge::complaint(&setup, &blinding_off, player, 3),
        dealing: blinding_off,
        key: player.key_announcement(&setup),
    };
    assert_eq!(both(&blinding, &decision).await, (Ok(()), Ok(())));
    // A false complaint about an honest Pedersen dealing.
    let false_complaint = Evidence::InvalidShare {
        complaint: forge::complaint(&setup, &honest, player, 4),
        dealing: honest.clone(),
        key: player.key_announcement(&setup),
    };
    assert_eq!(
        both(&false_complaint, &decision).await,
        (Err(EvidenceError::ShareIsValid), Err("ShareIsValid".into()))
    );
    // Without a decision the proof cannot be built.
    assert!(FraudProofV2::from_evidence(&genuine, &setup, None).is_err());

    // Tampered decisions: one precommit short of the quorum, a precommit for another
    // value or round, one signed by another operator, voters out of order, a reveal
    // left out or edited, and a decision of another session.
    let not_agreed = (
        Err(EvidenceError::BaseNotAgreed),
        Err("BaseNotAgreed".to_string()),
    );
    let edit = |f: &dyn Fn(&mut BaseDecision)| {
        let mut d = decision.clone();
        f(&mut d);
        d
    };
    let short = edit(&|d| {
        d.precommits.pop();
    });
    assert_eq!(both(&genuine, &short).await, not_agreed);
    let voter = |d: &BaseDecision, i: usize| {
        let a = d.precommits[i].signer;
        ms.iter().find(|m| m.address() == a).unwrap().clone()
    };
    let v0 = voter(&decision, 0);
    let other_value =
        edit(&|d| d.precommits[0] = resign_vote(&d.precommits[0], &v0, |v| v.value.0[0] ^= 1));
    assert_eq!(both(&genuine, &other_value).await, not_agreed);
    let other_round =
        edit(&|d| d.precommits[0] = resign_vote(&d.precommits[0], &v0, |v| v.round += 1));
    assert_eq!(both(&genuine, &other_round).await, not_agreed);
    let other_instance =
        edit(&|d| d.precommits[0] = resign_vote(&d.precommits[0], &v0, |v| v.instance = 1));
    assert_eq!(both(&genuine, &other_instance).await, not_agreed);
    let forged_signature = edit(&|d| {
        let h = d.precommits[0].hash;
        d.precommits[0].signature = voter(&decision, 1).operator.signer.sign(&h);
    });
    assert_eq!(
        both(&genuine, &forged_signature).await,
        (
            Err(EvidenceError::Message(Rejection::BadSignature)),
            Err("BadSignature".into())
        )
    );
    let unordered = edit(&|d| d.precommits.swap(0, 1));
    assert_eq!(both(&genuine, &unordered).await, not_agreed);
    let twice = edit(&|d| d.precommits[1] = d.precommits[0].clone());
    assert_eq!(both(&genuine, &twice).await, not_agreed);
    let fewer_reveals = edit(&|d| {
        d.reveals.pop();
    });
    assert_eq!(both(&genuine, &fewer_reveals).await, not_agreed);
    let reveal_author = |d: &BaseDecision| {
        let a = d.reveals[0].signer;
        ms.iter().find(|m| m.address() == a).unwrap().clone()
    };
    let r0 = reveal_author(&decision);
    let edited_reveal = edit(&|d| {
        let Ok(Body::CoinReveal(mut r)) = Body::decode(&d.reveals[0].payload) else {
            panic!("a reveal")
        };
        r.value.0[0] ^= 1;
        d.reveals[0] = Body::CoinReveal(r).sign(r0.operator.signer.as_ref());
        d.reveals.sort_by_key(|m| m.hash);
    });
    assert_eq!(both(&genuine, &edited_reveal).await, not_agreed);
    let elsewhere = dkg_in(VssMode::Pedersen, &ms, TS + 9, dep);
    let (foreign, _) = forge::base_decision(&elsewhere, &ms, q, 0, seed);
    let (rust, chain) = both(&genuine, &foreign).await;
    assert_eq!(rust, Err(EvidenceError::Message(Rejection::WrongSession)));
    assert_eq!(chain, Err("SessionMismatch".into()));

    // The genuine proof slashes after three complaints; a replay counts nothing.
    let p = proof_in(&genuine, &setup, Some(&decision));
    for o in &f.operators[2..5] {
        submitted(o.kms.submit_fraud_proof_v2(&p).await.unwrap());
    }
    assert_eq!(f.slashes_of(&dealer.address()).await, (1, wad(10)));
    assert_eq!(
        f.operators[2].kms.submit_fraud_proof_v2(&p).await.unwrap(),
        ProofOutcome::Skipped(ProofStatus::AlreadyAccepted)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_pedersen_invalid_shares_and_base_proofs_are_checked_with_bn254_keys() {
    pedersen_invalid_shares_and_base_proofs_are_checked_on_chain(KeyCurve::Bn254, 45).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_pedersen_invalid_shares_and_base_proofs_are_checked_with_ecdsa_keys() {
    pedersen_invalid_shares_and_base_proofs_are_checked_on_chain(KeyCurve::Ecdsa, 46).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn false_complaints_and_tampered_v2_proofs_are_refused() {
    let Some(mut f) = Fixture::new(5, KeyCurve::Bn254, 41).await else {
        return;
    };
    let dep = deployment(&f).await;
    let ms = members(&f, 0, &dep, 41);
    let setup = dkg(&ms, TS, dep);
    let (dealer, player) = (member(&ms, &f.operators[0]), member(&ms, &f.operators[1]));
    let from = &f.operators[2].kms;
    let check = async |e: &Evidence, rust: EvidenceError, name: &str| {
        assert_eq!(e.verify(&setup), Err(rust), "{name}");
        assert_eq!(
            verdict(from, &proof(e, &setup)).await,
            Err(name.to_string())
        );
    };

    // An honest dealer's dealing, complained about with a valid DLEQ proof.
    let honest = forge::dealing(&setup, dealer, None, None, 1);
    let false_complaint = Evidence::InvalidShare {
        complaint: forge::complaint(&setup, &honest, player, 2),
        dealing: honest,
        key: player.key_announcement(&setup),
    };
    check(
        &false_complaint,
        EvidenceError::ShareIsValid,
        "ShareIsValid",
    )
    .await;

    let genuine = forge::invalid_share(&setup, dealer, player, 3);
    assert_eq!(verdict(from, &proof(&genuine, &setup)).await, Ok(()));
    let Evidence::InvalidShare {
        dealing,
        complaint,
        key,
    } = genuine.clone()
    else {
        unreachable!()
    };
    let with = |complaint: SignedMessage| Evidence::InvalidShare {
        dealing: dealing.clone(),
        complaint,
        key: key.clone(),
    };
    let bad_challenge = resign_complaint(&complaint, player, |c| c.challenge.0[31] ^= 1);
    check(
        &with(bad_challenge),
        EvidenceError::InvalidProof,
        "InvalidProof",
    )
    .await;
    let bad_response = resign_complaint(&complaint, player, |c| c.response.0[31] ^= 1);
    check(
        &with(bad_response),
        EvidenceError::InvalidProof,
        "InvalidProof",
    )
    .await;
    let no_key = resign_complaint(&complaint, player, |c| c.sharedKey = Bytes::new());
    check(
        &with(no_key),
        EvidenceError::Message(kms_protocol::dkg::Rejection::InvalidPoint),
        "InvalidG1Point",
    )
    .await;
    // A complaint signed by someone else than the complainer.
    let mut forged = complaint.clone();
    forged.signature = member(&ms, &f.operators[3])
        .operator
        .signer
        .sign(&forged.hash);
    check(
        &with(forged),
        EvidenceError::Message(kms_protocol::dkg::Rejection::BadSignature),
        "BadSignature",
    )
    .await;
    // Another player's key announcement: not the one the dealing names.
    let other_key = Evidence::InvalidShare {
        dealing: dealing.clone(),
        complaint: complaint.clone(),
        key: member(&ms, &f.operators[3]).key_announcement(&setup),
    };
    check(&other_key, EvidenceError::KeyNotNamed, "KeyNotNamed").await;
    // The proof's pieces edited after the fact: the announcement's key swapped (its
    // hash is then not the dealing's recipient).
    let mut p = proof(&genuine, &setup);
    if let FraudProofV2::InvalidShare { key, .. } = &mut p {
        let n = key.payload.len();
        key.payload[n - 40] ^= 1;
    }
    assert_eq!(verdict(from, &p).await, Err("KeyNotNamed".into()));
    let mut p = proof(&genuine, &setup);
    if let FraudProofV2::InvalidShare { session, .. } = &mut p {
        session.playerThreshold += U256::from(1);
    }
    assert_eq!(verdict(from, &p).await, Err("SessionMismatch".into()));
    // A Feldman proof with a base proof attached.
    let mut p = proof(&genuine, &setup);
    if let FraudProofV2::InvalidShare { base, .. } = &mut p {
        let pedersen = dkg_in(VssMode::Pedersen, &ms, TS, dep);
        let q = quorum(&pedersen);
        *base = base_proof(Some(&forge::base_decision(&pedersen, &ms, q, 0, 5).0));
    }
    assert_eq!(verdict(from, &p).await, Err("UnexpectedBaseProof".into()));
    // The dealer cannot complain about itself, nor can an outsider.
    assert_eq!(
        verdict(&f.operators[0].kms, &proof(&genuine, &setup)).await,
        Err("SelfComplaint".into())
    );
    let outsider = f.new_operator("https://outsider.invalid").await;
    assert_eq!(
        verdict(&outsider.kms, &proof(&genuine, &setup)).await,
        Err("NotMember".into())
    );
    assert_eq!(f.slashes_of(&dealer.address()).await, (0, U256::ZERO));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_evidence_of_another_deployment_never_slashes_here() {
    let Some(f) = Fixture::new(4, KeyCurve::Bn254, 42).await else {
        return;
    };
    let here = deployment(&f).await;
    let from = &f.operators[1].kms;
    // The same operators, keys and contracts' addresses, on another chain; and another
    // slashing contract on this chain.
    for elsewhere in [
        Deployment {
            chain_id: 1,
            ..here
        },
        Deployment {
            registry: [0x5a; 20],
            ..here
        },
        Deployment {
            avs: [0x6b; 20],
            ..here
        },
        Deployment {
            operator_set_id: here.operator_set_id + 1,
            ..here
        },
    ] {
        let ms = members(&f, 0, &elsewhere, 42);
        let there = dkg(&ms, TS, elsewhere);
        let (a, b) = (member(&ms, &f.operators[0]), member(&ms, &f.operators[2]));
        let e = forge::invalid_share(&there, a, b, 1);
        assert_eq!(e.verify(&there), Ok(()));
        assert_eq!(
            verdict(from, &proof(&e, &there)).await,
            Err("WrongDeployment".into())
        );
        let eq = Evidence::Equivocation {
            first: forge::dealing(&there, a, None, None, 2),
            second: forge::dealing(&there, a, None, None, 3),
        };
        assert_eq!(
            verdict(from, &proof(&eq, &there)).await,
            Err("WrongDeployment".into())
        );
        // A Pedersen invalid share there, with that session's base decision.
        let pedersen = dkg_in(VssMode::Pedersen, &ms, TS, elsewhere);
        let (decision, base) = forge::base_decision(&pedersen, &ms, quorum(&pedersen), 0, 3);
        let pe = forge::invalid_share_in(&pedersen, a, b, Some(&base), 4);
        assert_eq!(pe.verify_with_decision(&pedersen, Some(&decision)), Ok(()));
        assert_eq!(
            verdict(from, &proof_in(&pe, &pedersen, Some(&decision))).await,
            Err("WrongDeployment".into())
        );
        // And the Rust verifier of this deployment's session refuses it.
        let ours = dkg(&members(&f, 0, &here, 42), TS, here);
        assert!(e.verify(&ours).is_err() && eq.verify(&ours).is_err());
        let ours = dkg_in(VssMode::Pedersen, &members(&f, 0, &here, 42), TS, here);
        assert!(pe.verify_with_decision(&ours, Some(&decision)).is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_equivocations_are_slashed_on_one_proof() {
    let Some(f) = Fixture::new(5, KeyCurve::Bn254, 43).await else {
        return;
    };
    let dep = deployment(&f).await;
    let ms = members(&f, 0, &dep, 43);
    let from = &f.operators[4];
    // Two dealings of one dealer.
    let setup = dkg(&ms, TS, dep);
    let d = member(&ms, &f.operators[0]);
    let (a, b) = (
        forge::dealing(&setup, d, None, None, 1),
        forge::dealing(&setup, d, None, None, 2),
    );
    let eq = |first: &SignedMessage, second: &SignedMessage| Evidence::Equivocation {
        first: first.clone(),
        second: second.clone(),
    };
    assert_eq!(eq(&a, &b).verify(&setup), Ok(()));
    assert_eq!(
        verdict(&from.kms, &proof(&eq(&a, &a), &setup)).await,
        Err("SameMessage".into())
    );
    submitted(
        from.kms
            .submit_fraud_proof_v2(&proof(&eq(&a, &b), &setup))
            .await
            .unwrap(),
    );
    assert_eq!(f.slashes_of(&d.address()).await, (1, wad(100)));
    assert_eq!(
        verdict(&from.kms, &proof(&eq(&b, &a), &setup)).await,
        Err("ProofAlreadyAccepted".into())
    );
    let c = forge::dealing(&setup, d, None, None, 3);
    assert_eq!(
        verdict(&from.kms, &proof(&eq(&a, &c), &setup)).await,
        Err("AlreadyPunished".into())
    );

    // Two precommits of one round by another operator, in another session.
    let setup = dkg(&ms, TS + 1, dep);
    let v = member(&ms, &f.operators[1]);
    let vote = |round, step, value| forge::vote(&setup, v, 1, round, step, [value; 32]);
    let refused = [
        (eq(&vote(2, 2, 1), &vote(3, 2, 2)), "NoConflict"),
        (eq(&vote(2, 1, 1), &vote(2, 2, 2)), "NoConflict"),
        (
            eq(
                &vote(2, 2, 1),
                &forge::vote(&setup, member(&ms, &f.operators[2]), 1, 2, 2, [2; 32]),
            ),
            "NoConflict",
        ),
    ];
    for (e, name) in &refused {
        assert_eq!(e.verify(&setup), Err(EvidenceError::NoConflict));
        assert_eq!(
            verdict(&from.kms, &proof(e, &setup)).await,
            Err(name.to_string())
        );
    }
    let votes = eq(&vote(2, 2, 1), &vote(2, 2, 0));
    assert_eq!(votes.verify(&setup), Ok(()));
    submitted(
        from.kms
            .submit_fraud_proof_v2(&proof(&votes, &setup))
            .await
            .unwrap(),
    );
    assert_eq!(f.slashes_of(&v.address()).await, (1, wad(100)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_reshare_dealing_that_changes_the_secret_is_slashed() {
    let Some(f) = Fixture::new(6, KeyCurve::Bn254, 44).await else {
        return;
    };
    let dep = deployment(&f).await;
    let ms = members(&f, 0, &dep, 44);
    let (previous, shares) = forge::previous_key(&ms[..4], 3, 1);
    let setup = reshare(&ms[..4], previous, &ms[1..], TS, dep);
    let d = &ms[1];
    let from = f
        .operators
        .iter()
        .find(|o| o.address == ms[5].address())
        .unwrap();
    let wrong = Evidence::WrongReshareConstant {
        dealing: forge::reshare_dealing(&setup, d, &shares[&d.address()], 1, 2),
    };
    let right = Evidence::WrongReshareConstant {
        dealing: forge::reshare_dealing(&setup, d, &shares[&d.address()], 0, 3),
    };
    assert_eq!(right.verify(&setup), Err(EvidenceError::ConstantIsRight));
    assert_eq!(
        verdict(&from.kms, &proof(&right, &setup)).await,
        Err("ConstantIsRight".into())
    );
    assert_eq!(wrong.verify(&setup), Ok(()));
    let mut tampered = proof(&wrong, &setup);
    if let FraudProofV2::WrongReshareConstant {
        previous_commitment,
        ..
    } = &mut tampered
    {
        let mut p = previous_commitment.to_vec();
        p.truncate(256);
        *previous_commitment = p.into();
    }
    assert_eq!(
        verdict(&from.kms, &tampered).await,
        Err("PreviousCommitmentMismatch".into())
    );
    submitted(
        from.kms
            .submit_fraud_proof_v2(&proof(&wrong, &setup))
            .await
            .unwrap(),
    );
    assert_eq!(f.slashes_of(&d.address()).await, (1, wad(100)));
    assert_eq!(
        from.kms
            .submit_fraud_proof_v2(&proof(&wrong, &setup))
            .await
            .unwrap(),
        ProofOutcome::Skipped(ProofStatus::AlreadyAccepted)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_pedersen_reshare_dealing_that_changes_the_secret_is_slashed() {
    let Some(f) = Fixture::new(6, KeyCurve::Ecdsa, 47).await else {
        return;
    };
    let dep = deployment(&f).await;
    let ms = members(&f, 0, &dep, 47);
    let (previous, shares) = forge::previous_key(&ms[..4], 3, 1);
    let setup = reshare_in(VssMode::Pedersen, &ms[..4], previous, &ms[1..], TS, dep);
    let (decision, base) = forge::base_decision(&setup, &ms, quorum(&setup), 1, 47);
    let d = &ms[1];
    let from = f
        .operators
        .iter()
        .find(|o| o.address == ms[5].address())
        .unwrap();
    let dealing = |offset, seed| Evidence::WrongReshareConstant {
        dealing: forge::reshare_dealing_in(
            &setup,
            d,
            &shares[&d.address()],
            offset,
            Some(&base),
            seed,
        ),
    };
    let (wrong, right) = (dealing(1, 2), dealing(0, 3));
    assert_eq!(right.verify(&setup), Err(EvidenceError::NeedsBase));
    assert_eq!(
        right.verify_with_decision(&setup, Some(&decision)),
        Err(EvidenceError::ConstantIsRight)
    );
    assert_eq!(
        verdict(&from.kms, &proof_in(&right, &setup, Some(&decision))).await,
        Err("ConstantIsRight".into())
    );
    assert_eq!(wrong.verify_with_decision(&setup, Some(&decision)), Ok(()));
    // With b_0 edited, the right constant looks wrong under H2 — but the dealer's
    // signature no longer covers it.
    let Evidence::WrongReshareConstant { dealing: honest } = &right else {
        unreachable!()
    };
    let mut edited = honest.clone();
    let Ok(Body::Dealing(mut body)) = Body::decode(&edited.payload) else {
        panic!("a dealing")
    };
    body.constantBlinding.0[31] ^= 1;
    edited.payload = Body::Dealing(body).encode();
    edited.hash = alloy::primitives::keccak256(&edited.payload).0;
    let tampered = Evidence::WrongReshareConstant { dealing: edited };
    assert_eq!(
        tampered.verify_with_decision(&setup, Some(&decision)),
        Err(EvidenceError::Message(Rejection::BadSignature))
    );
    assert_eq!(
        verdict(&from.kms, &proof_in(&tampered, &setup, Some(&decision))).await,
        Err("BadSignature".into())
    );
    // A short decision is refused by both.
    let mut short = decision.clone();
    short.precommits.pop();
    assert_eq!(
        wrong.verify_with_decision(&setup, Some(&short)),
        Err(EvidenceError::BaseNotAgreed)
    );
    assert_eq!(
        verdict(&from.kms, &proof_in(&wrong, &setup, Some(&short))).await,
        Err("BaseNotAgreed".into())
    );
    submitted(
        from.kms
            .submit_evidence_v2(&wrong, &setup, Some(&decision))
            .await
            .unwrap(),
    );
    assert_eq!(f.slashes_of(&d.address()).await, (1, wad(100)));
    assert_eq!(
        from.kms
            .submit_evidence_v2(&wrong, &setup, Some(&decision))
            .await
            .unwrap(),
        ProofOutcome::Skipped(ProofStatus::AlreadyAccepted)
    );
}
