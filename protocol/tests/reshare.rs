//! Reshare chains with joins, leaves and threshold changes; the master public key
//! never changes and old shares become useless.

mod common;

use std::collections::BTreeMap;

use common::wrong_constant::WrongConstant;
use common::*;
use kms_crypto::Commitment;
use kms_crypto::poly::interpolate_at_zero;
use kms_crypto::vss::feldman::FeldmanDealing;
use kms_crypto::{G2Point, Scalar, evaluation_point, threshold};
use kms_protocol::sim::{NetConfig, SimOperator};
use kms_protocol::{
    EvidenceContext, FraudEvidence, SessionOutcome, SessionParams, SessionTimestamp, VssMode,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

#[test]
fn five_reshares_with_rotating_membership() {
    let pool = SimOperator::generate(14, 500);
    let (ops, params) = (pool[..7].to_vec(), {
        let p = participants(&pool[..7]);
        kms_protocol::SessionParams::dkg(
            kms_protocol::SessionTimestamp(1),
            VssMode::Feldman,
            p,
            schedule(100_000),
        )
        .unwrap()
    });
    let f = run(params, &ops, BTreeMap::new(), vec![], NetConfig::default());
    let (mut commitment, mut shares) = check_agreement(&f);
    let mpk = *commitment.constant();
    let mut current: Vec<SimOperator> = ops;

    // 7 → 10 (join 3), 10 → 5 (leave 5), 5 → 5 (2 join, 2 leave), 5 → 8, 8 → 6.
    let rounds: Vec<(Vec<usize>, VssMode)> = vec![
        ((0..10).collect(), VssMode::Feldman),
        (vec![0, 2, 4, 6, 8], VssMode::Pedersen),
        (vec![0, 2, 4, 10, 11], VssMode::Feldman),
        (vec![0, 2, 4, 10, 11, 12, 13, 1], VssMode::Feldman),
        (vec![2, 4, 10, 11, 12, 13], VssMode::Pedersen),
    ];
    for (round, (members, mode)) in rounds.into_iter().enumerate() {
        let next: Vec<SimOperator> = members.iter().map(|i| pool[*i].clone()).collect();
        let f = reshare(
            2 + round as u64,
            mode,
            &current,
            &next,
            &commitment,
            &shares,
            vec![],
        );
        let (new_commitment, new_shares) = check_agreement(&f);
        assert_eq!(
            *new_commitment.constant(),
            mpk,
            "round {round}: master public key changed"
        );
        assert_eq!(
            new_commitment.threshold(),
            threshold(next.len()),
            "round {round}: threshold"
        );
        // In a Feldman reshare every player checked every dealer's constant in the
        // same MSM as its shares; a Pedersen reshare checks them on the phase-2
        // commitments, later and on their own.
        for o in &next {
            let checked = f
                .net
                .engine(&o.address)
                .unwrap()
                .constants_checked_with_shares();
            let expected = match mode {
                VssMode::Feldman => current.len(),
                VssMode::Pedersen => 0,
            };
            assert_eq!(checked, expected, "round {round}");
        }
        // Operators that left were dealers: they report departure, not a version.
        for o in &current {
            if !next.iter().any(|n| n.address == o.address) {
                assert!(matches!(
                    f.net.outcome(&o.address),
                    Some(Ok(SessionOutcome::Departed { .. }))
                ));
                // Their old share is no share of the new polynomial …
                let x = evaluation_point(&o.address).unwrap();
                let old = &shares[&o.address];
                assert_ne!(new_commitment.evaluate(&x), G2Point::generator().mul(old));
                // … and does not help t − 1 new shares reconstruct the secret.
                let t = new_commitment.threshold();
                let mut pts: Vec<(Scalar, Scalar)> = new_shares
                    .iter()
                    .take(t - 1)
                    .map(|(a, s)| (evaluation_point(a).unwrap(), s.clone()))
                    .collect();
                pts.push((x, old.clone()));
                let guess = interpolate_at_zero(&pts).unwrap();
                assert_ne!(G2Point::generator().mul(&guess), mpk);
            }
        }
        commitment = new_commitment;
        shares = new_shares;
        current = next;
    }
}

/// A DKG of seven, then a reshare in which `ops[bad]` deals a consistent sharing of
/// `secret(its current share)`; checks that the key is unchanged, that the dealer is
/// left out, and that the evidence verifies. Returns what the checks used.
fn reshare_with_a_wrong_constant(
    seed: u64,
    bad: usize,
    secret: impl FnOnce(&Scalar, &mut ChaCha20Rng) -> Scalar,
) -> (Vec<SimOperator>, Commitment, FraudEvidence, SessionParams) {
    let ops = SimOperator::generate(7, seed);
    let params = SessionParams::dkg(
        SessionTimestamp(seed),
        VssMode::Feldman,
        participants(&ops),
        schedule(0),
    )
    .unwrap();
    let f = run(params, &ops, BTreeMap::new(), vec![], NetConfig::default());
    let (commitment, shares) = check_agreement(&f);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let bad = &ops[bad];
    let secret = secret(&shares[&bad.address], &mut rng);
    let byz = WrongConstant {
        me: bad.address,
        signer: bad.signer.clone(),
        dealing: FeldmanDealing::new(secret, threshold(7), &mut rng).unwrap(),
    };
    let f = reshare(
        seed + 1,
        VssMode::Feldman,
        &ops,
        &ops,
        &commitment,
        &shares,
        vec![(bad.address, Box::new(byz))],
    );
    let (new_commitment, _) = check_agreement(&f);
    assert_eq!(new_commitment.constant(), commitment.constant());
    // The wrong constant fails the batch that checks shares and constants together:
    // the constants are then checked on their own, which names the dealer. (A node's
    // own constant needs no check.)
    for o in ops.iter().filter(|o| o.address != bad.address) {
        let engine = f.net.engine(&o.address).unwrap();
        assert_eq!(engine.constants_checked_with_shares(), 1);
    }
    let v = f.versions.values().next().unwrap();
    assert!(!v.qualified_dealers.contains(&bad.address));
    assert_eq!(v.qualified_dealers.len(), 6);
    let honest = ops.iter().find(|o| o.address != bad.address).unwrap();
    let params = f.net.engine(&honest.address).unwrap().params().clone();
    let e = f
        .net
        .evidence(&honest.address)
        .iter()
        .find(|e| e.kind() == "wrong_reshare_constant")
        .expect("evidence")
        .clone();
    e.verify(&EvidenceContext {
        dealer_key: &bad.participant().public_key,
        pedersen_base: None,
        reshare: Some(&params),
    })
    .unwrap();
    (ops, commitment, e, params)
}

#[test]
fn dealer_changing_the_secret_is_proven_and_excluded() {
    let (ops, commitment, e, params) =
        reshare_with_a_wrong_constant(10, 3, |_, rng| Scalar::random(rng));
    let key = ops[3].participant().public_key;
    let honest = &ops[0];
    // Checked against someone else's key, the same messages prove nothing.
    let innocent = honest.participant().public_key;
    assert!(
        e.verify(&EvidenceContext {
            dealer_key: &innocent,
            pedersen_base: None,
            reshare: Some(&params)
        })
        .is_err()
    );
    // Without the reshare (not a reshare) there is nothing to compare with.
    assert!(
        e.verify(&EvidenceContext {
            dealer_key: &key,
            pedersen_base: None,
            reshare: None
        })
        .is_err()
    );
    // Nor against another session's parameters (here: another dealer set).
    let fewer = SessionParams::reshare(
        params.timestamp,
        VssMode::Feldman,
        participants(&ops[..6]),
        commitment.clone(),
        participants(&ops),
        params.schedule,
    )
    .unwrap();
    assert!(
        e.verify(&EvidenceContext {
            dealer_key: &key,
            pedersen_base: None,
            reshare: Some(&fewer)
        })
        .is_err()
    );
}

/// A dealer that deals its share unweighted (`f(0) = s_D` instead of `λ_D·s_D`) is
/// caught like any other wrong constant: the weight is part of the rule.
#[test]
fn unweighted_reshare_dealing_is_a_wrong_constant() {
    reshare_with_a_wrong_constant(12, 5, |share, _| share.clone());
}

#[test]
fn pedersen_reshare_drops_a_dealer_that_changes_the_secret() {
    use kms_protocol::messages::{Payload, SignedMessage, encode_commitment};
    use kms_protocol::sim::Behaviour;

    /// Pedersen phase 2: publishes the Feldman commitment of another polynomial,
    /// which can only fail the constant check against the old key.
    struct Phase2Swap(
        kms_crypto::OperatorAddress,
        std::sync::Arc<dyn kms_crypto::signer::OperatorSigner>,
        FeldmanDealing,
    );
    impl Behaviour for Phase2Swap {
        fn outgoing(
            &mut self,
            to: kms_crypto::OperatorAddress,
            m: SignedMessage,
        ) -> Vec<(kms_crypto::OperatorAddress, SignedMessage, u64)> {
            match m.peek() {
                Ok(Payload::Commitment(mut c)) if c.phase == 2 && m.signer == self.0 => {
                    c.commitment = encode_commitment(self.2.commitment());
                    vec![(
                        to,
                        SignedMessage::sign(&Payload::Commitment(c), self.0, self.1.as_ref()),
                        0,
                    )]
                }
                _ => vec![(to, m, 0)],
            }
        }
    }

    let ops = SimOperator::generate(7, 700);
    let params = kms_protocol::SessionParams::dkg(
        kms_protocol::SessionTimestamp(20),
        VssMode::Pedersen,
        participants(&ops),
        schedule(0),
    )
    .unwrap();
    let f = run(params, &ops, BTreeMap::new(), vec![], NetConfig::default());
    let (commitment, shares) = check_agreement(&f);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let bad = &ops[1];
    let swap = Phase2Swap(
        bad.address,
        bad.signer.clone(),
        FeldmanDealing::new(Scalar::random(&mut rng), 5, &mut rng).unwrap(),
    );
    let f = reshare(
        21,
        VssMode::Pedersen,
        &ops,
        &ops,
        &commitment,
        &shares,
        vec![(bad.address, Box::new(swap))],
    );
    let (new_commitment, _) = check_agreement(&f);
    assert_eq!(
        new_commitment.constant(),
        commitment.constant(),
        "master key must not change"
    );
    assert!(
        !f.versions
            .values()
            .next()
            .unwrap()
            .qualified_dealers
            .contains(&bad.address)
    );
}

#[test]
fn a_dealer_that_lost_its_share_sits_out_dealing_and_still_gets_a_new_share() {
    let ops = SimOperator::generate(7, 610);
    let params = kms_protocol::SessionParams::dkg(
        kms_protocol::SessionTimestamp(1),
        VssMode::Feldman,
        participants(&ops),
        schedule(100_000),
    )
    .unwrap();
    let f = run(params, &ops, BTreeMap::new(), vec![], NetConfig::default());
    let (commitment, mut shares) = check_agreement(&f);
    // Operator 2 lost its store: it is still a dealer of the session on paper.
    let lost = ops[2].address;
    shares.remove(&lost);
    let f = reshare(
        2,
        VssMode::Feldman,
        &ops,
        &ops,
        &commitment,
        &shares,
        vec![],
    );
    let (new_commitment, new_shares) = check_agreement(&f);
    assert_eq!(new_commitment.constant(), commitment.constant());
    assert!(
        new_shares.contains_key(&lost),
        "the node got its share back"
    );
    for v in f.versions.values() {
        assert!(
            !v.qualified_dealers.contains(&lost),
            "a dealer without a share cannot qualify"
        );
    }
}
