use std::collections::BTreeMap;

use kms_crypto::vss::pedersen::PedersenBase;

use super::*;
use crate::dkg::forge;
use crate::dkg::setup::Deployment;
use crate::dkg::sim::{self, Net, Network, Outgoing, SimMember};
use crate::dkg::wire::{Acks, word};
use crate::session::{Schedule, SessionParams, SessionTimestamp};

const TS: u64 = 1_000;

fn schedule() -> Schedule {
    Schedule {
        start_ms: 0,
        phase_ms: 1_000,
    }
}

fn dkg(members: &[SimMember], mode: VssMode) -> Setup {
    let params = SessionParams::dkg(
        SessionTimestamp(TS),
        mode,
        members.iter().map(SimMember::participant).collect(),
        schedule(),
    )
    .unwrap();
    sim::setup(params)
}

fn resign_complaint(
    m: &SignedMessage,
    player: &SimMember,
    edit: impl Fn(&mut Complaint),
) -> SignedMessage {
    let Ok(Body::Complaint(mut c)) = Body::decode(&m.payload) else {
        panic!()
    };
    edit(&mut c);
    Body::Complaint(c).sign(player.operator.signer.as_ref())
}

#[test]
fn an_invalid_share_with_its_complaint_proves_the_dealer_faulty() {
    let members = SimMember::generate(5, 1);
    let setup = dkg(&members, VssMode::Feldman);
    let e = forge::invalid_share(&setup, &members[0], &members[3], 7);
    assert_eq!(e.verify(&setup), Ok(()));
    assert_eq!(e.accused(), members[0].address());
    // A dealer's own share, complained about by itself, is evidence too.
    let own = forge::invalid_share(&setup, &members[2], &members[2], 8);
    assert_eq!(own.verify(&setup), Ok(()));
}

#[test]
fn a_false_complaint_about_an_honest_share_is_refused() {
    let members = SimMember::generate(5, 2);
    let setup = dkg(&members, VssMode::Feldman);
    let dealing = forge::dealing(&setup, &members[0], None, None, 3);
    let e = Evidence::InvalidShare {
        complaint: forge::complaint(&setup, &dealing, &members[1], 4),
        dealing,
        key: members[1].key_announcement(&setup),
    };
    assert_eq!(e.verify(&setup), Err(EvidenceError::ShareIsValid));
}

#[test]
fn a_tampered_complaint_is_refused() {
    let members = SimMember::generate(5, 3);
    let setup = dkg(&members, VssMode::Feldman);
    let Evidence::InvalidShare {
        dealing,
        complaint,
        key,
    } = forge::invalid_share(&setup, &members[0], &members[1], 5)
    else {
        unreachable!()
    };
    let with = |complaint: SignedMessage| Evidence::InvalidShare {
        dealing: dealing.clone(),
        complaint,
        key: key.clone(),
    };
    let p = &members[1];
    let bad_challenge = resign_complaint(&complaint, p, |c| c.challenge.0[31] ^= 1);
    assert_eq!(
        with(bad_challenge).verify(&setup),
        Err(EvidenceError::InvalidProof)
    );
    let bad_response = resign_complaint(&complaint, p, |c| c.response.0[31] ^= 1);
    assert_eq!(
        with(bad_response).verify(&setup),
        Err(EvidenceError::InvalidProof)
    );
    let other_dealing = resign_complaint(&complaint, p, |c| c.dealing.0[0] ^= 1);
    assert_eq!(
        with(other_dealing).verify(&setup),
        Err(EvidenceError::OtherDealing)
    );
    // Signed by someone else than the complainer.
    let mut forged = complaint.clone();
    forged.signature = members[2].operator.signer.sign(&forged.hash);
    assert_eq!(
        with(forged).verify(&setup),
        Err(EvidenceError::Message(Rejection::BadSignature))
    );
    // Another player's key announcement, or one the dealing does not name.
    let e = Evidence::InvalidShare {
        dealing: dealing.clone(),
        complaint: complaint.clone(),
        key: members[2].key_announcement(&setup),
    };
    assert_eq!(e.verify(&setup), Err(EvidenceError::KeyNotNamed));
    let Ok(Body::Key(mut k)) = Body::decode(&key.payload) else {
        unreachable!()
    };
    k.key = members[2]
        .encryption
        .public_key()
        .to_eip2537()
        .to_vec()
        .into();
    let e = Evidence::InvalidShare {
        dealing: dealing.clone(),
        complaint: complaint.clone(),
        key: Body::Key(k).sign(members[1].operator.signer.as_ref()),
    };
    assert_eq!(e.verify(&setup), Err(EvidenceError::KeyNotNamed));
    // The dealing's shares changed after signing.
    let mut edited = dealing.clone();
    edited.signature = members[3].operator.signer.sign(&edited.hash);
    let e = Evidence::InvalidShare {
        dealing: edited,
        complaint,
        key,
    };
    assert_eq!(
        e.verify(&setup),
        Err(EvidenceError::Message(Rejection::BadSignature))
    );
}

#[test]
fn evidence_of_another_deployment_is_refused() {
    let members = SimMember::generate(5, 4);
    let setup = dkg(&members, VssMode::Feldman);
    let e = forge::invalid_share(&setup, &members[0], &members[1], 6);
    let elsewhere = Deployment {
        chain_id: 1,
        ..sim::SIM_DEPLOYMENT
    };
    let other = Setup::new(setup.params.clone(), elsewhere);
    assert_eq!(
        e.verify(&other),
        Err(EvidenceError::Message(Rejection::WrongSession))
    );
}

#[test]
fn pedersen_invalid_shares_are_checked_against_the_base() {
    let members = SimMember::generate(5, 5);
    let setup = dkg(&members, VssMode::Pedersen);
    let base = PedersenBase::from_seed(&[9; 32]);
    let index = setup.player_index(&members[1].address()).unwrap();
    let honest = forge::dealing(&setup, &members[0], None, Some(&base), 1);
    let bad = forge::corrupt_share(&honest, &members[0], index);
    let evidence = |dealing: &SignedMessage| Evidence::InvalidShare {
        complaint: forge::complaint(&setup, dealing, &members[1], 2),
        dealing: dealing.clone(),
        key: members[1].key_announcement(&setup),
    };
    assert_eq!(evidence(&bad).verify_with_base(&setup, Some(&base)), Ok(()));
    assert_eq!(evidence(&bad).verify(&setup), Err(EvidenceError::NeedsBase));
    assert_eq!(
        evidence(&honest).verify_with_base(&setup, Some(&base)),
        Err(EvidenceError::ShareIsValid)
    );
    // Under another base, the honest share looks invalid: the base must be the
    // agreed one (which is why the contract does not take it from the prover).
    let other = PedersenBase::from_seed(&[8; 32]);
    assert_eq!(
        evidence(&honest).verify_with_base(&setup, Some(&other)),
        Ok(())
    );
}

#[test]
fn two_messages_of_one_slot_are_an_equivocation_and_nothing_else_is() {
    let members = SimMember::generate(5, 6);
    let setup = dkg(&members, VssMode::Feldman);
    let m = &members[2];
    let eq = |first: &SignedMessage, second: &SignedMessage| {
        Evidence::Equivocation {
            first: first.clone(),
            second: second.clone(),
        }
        .verify(&setup)
    };
    let d1 = forge::dealing(&setup, m, None, None, 1);
    let d2 = forge::dealing(&setup, m, None, None, 2);
    assert_eq!(eq(&d1, &d2), Ok(()));
    assert_eq!(eq(&d1, &d1), Err(EvidenceError::SameMessage));
    let v = |round, step, value| forge::vote(&setup, m, 1, round, step, [value; 32]);
    assert_eq!(eq(&v(3, 2, 1), &v(3, 2, 2)), Ok(()));
    // A nil vote conflicts with a vote for a value.
    assert_eq!(eq(&v(3, 1, 0), &v(3, 1, 2)), Ok(()));
    assert_eq!(eq(&v(3, 2, 1), &v(4, 2, 2)), Err(EvidenceError::NoConflict));
    assert_eq!(eq(&v(3, 1, 1), &v(3, 2, 2)), Err(EvidenceError::NoConflict));
    let other = forge::vote(&setup, &members[3], 1, 3, 2, [2; 32]);
    assert_eq!(eq(&v(3, 2, 1), &other), Err(EvidenceError::NoConflict));
    assert_eq!(eq(&d1, &v(0, 1, 1)), Err(EvidenceError::NoConflict));
    // Ack bundles grow: two of them are no fault.
    let acks = |n: u8| {
        Body::Acks(Acks {
            sessionTimestamp: TS,
            sessionHash: word(setup.hash().0),
            player: wire::to_sol(&m.address()),
            dealings: (0..n).map(|i| word([i; 32])).collect(),
        })
        .sign(m.operator.signer.as_ref())
    };
    assert_eq!(eq(&acks(1), &acks(2)), Err(EvidenceError::NoConflict));
    // A vote that is not the author's.
    let mut forged = v(3, 2, 2);
    forged.signature = members[4].operator.signer.sign(&forged.hash);
    assert_eq!(
        eq(&v(3, 2, 1), &forged),
        Err(EvidenceError::Message(Rejection::BadSignature))
    );
}

#[test]
fn a_reshare_dealing_that_changes_the_secret_is_a_wrong_constant() {
    let members = SimMember::generate(6, 7);
    let (previous, shares) = forge::previous_key(&members[..4], 3, 1);
    let participants = |ms: &[SimMember]| ms.iter().map(SimMember::participant).collect();
    let params = SessionParams::reshare(
        SessionTimestamp(TS),
        VssMode::Feldman,
        participants(&members[..4]),
        previous,
        participants(&members[1..]),
        schedule(),
    )
    .unwrap();
    let setup = sim::setup(params);
    let d = &members[1];
    let wrong = Evidence::WrongReshareConstant {
        dealing: forge::reshare_dealing(&setup, d, &shares[&d.address()], 1, 2),
    };
    assert_eq!(wrong.verify(&setup), Ok(()));
    let right = Evidence::WrongReshareConstant {
        dealing: forge::reshare_dealing(&setup, d, &shares[&d.address()], 0, 3),
    };
    assert_eq!(right.verify(&setup), Err(EvidenceError::ConstantIsRight));
    // In a DKG there is no constant to get wrong.
    let dkg_setup = dkg(&members, VssMode::Feldman);
    let e = Evidence::WrongReshareConstant {
        dealing: forge::dealing(&dkg_setup, d, None, None, 4),
    };
    assert_eq!(e.verify(&dkg_setup), Err(EvidenceError::ConstantIsRight));
}

#[test]
fn the_evidence_an_engine_emits_verifies() {
    let members = SimMember::generate(7, 8);
    let setup = dkg(&members, VssMode::Feldman);
    let byz = members[2].clone();
    let victim = setup.player_index(&members[4].address()).unwrap();
    let mut net = Network::new(&setup, &members, &BTreeMap::new(), Net::default());
    let mut forged: Option<SignedMessage> = None;
    net.set_byzantine(
        byz.address(),
        Box::new(move |o: &Outgoing<'_>| {
            if o.kind != Kind::Dealing {
                return vec![(o.message.clone(), 0)];
            }
            let m = forged.get_or_insert_with(|| forge::corrupt_share(o.message, &byz, victim));
            vec![(m.clone(), 0)]
        }),
    );
    net.run(60_000);
    let mut seen = 0;
    for m in &members {
        for e in net.evidence(&m.address()) {
            assert_eq!(e.verify(&setup), Ok(()), "{}", e.kind());
            assert_eq!(e.accused(), members[2].address());
            seen += 1;
        }
    }
    assert!(seen >= 6, "every honest node holds the proof");
}

#[test]
fn an_engine_proves_the_base_it_used_and_forged_decisions_are_checked() {
    let members = SimMember::generate(5, 9);
    let setup = dkg(&members, VssMode::Pedersen);
    let mut net = Network::new(&setup, &members, &BTreeMap::new(), Net::default());
    net.run(60_000);
    for m in &members {
        let engine = net.engine(&m.address()).unwrap();
        let decision = engine.base_decision().expect("the coin was decided");
        let used = *engine.base.as_ref().expect("a base").base();
        assert_eq!(decision.verify(&setup), Ok(used));
    }
    // Feldman sessions have no base; a forged decision is checked like an engine's.
    let feldman = dkg(&members, VssMode::Feldman);
    let (d, base) = forge::base_decision(&setup, &members, 4, 0, 1);
    assert_eq!(d.verify(&setup), Ok(base));
    assert_eq!(d.verify(&feldman), Err(EvidenceError::BaseNotAgreed));
    let mut short = d.clone();
    short.precommits.pop();
    assert_eq!(short.verify(&setup), Err(EvidenceError::BaseNotAgreed));
    let mut no_reveals = d.clone();
    no_reveals.reveals.clear();
    assert_eq!(no_reveals.verify(&setup), Err(EvidenceError::BaseNotAgreed));
    // The invalid share of a Pedersen dealer is proven with the decision.
    let e = forge::invalid_share_in(&setup, &members[0], &members[1], Some(&base), 2);
    assert_eq!(e.verify(&setup), Err(EvidenceError::NeedsBase));
    assert_eq!(e.verify_with_decision(&setup, Some(&d)), Ok(()));
    assert_eq!(
        e.verify_with_decision(&setup, Some(&short)),
        Err(EvidenceError::BaseNotAgreed)
    );
}
