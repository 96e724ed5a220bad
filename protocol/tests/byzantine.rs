//! Byzantine dealers (up to n − t of them): honest nodes finish with a correct key,
//! agree, and hold evidence naming the culprit that anyone can re-verify.

mod common;

use std::collections::BTreeMap;

use common::byzantine::*;
use common::*;
use kms_crypto::OperatorAddress;
use kms_protocol::sim::{Behaviour, NetConfig, SimOperator};
use kms_protocol::{EvidenceContext, VssMode};

fn evidence_kinds(
    f: &Finished,
    honest: &[OperatorAddress],
    culprit: &OperatorAddress,
) -> Vec<&'static str> {
    let mut kinds = Vec::new();
    for h in honest {
        let base = f.net.engine(h).and_then(|e| e.pedersen_base().copied());
        for e in f.net.evidence(h) {
            assert_eq!(e.dealer(), *culprit, "evidence against an honest dealer");
            let key = f
                .net
                .engine(h)
                .unwrap()
                .params()
                .dealers
                .participant(culprit)
                .unwrap()
                .public_key
                .clone();
            let ctx = EvidenceContext {
                dealer_key: &key,
                pedersen_base: base.as_ref(),
                reshare: None,
            };
            e.verify(&ctx)
                .unwrap_or_else(|err| panic!("{} evidence does not verify: {err}", e.kind()));
            kinds.push(e.kind());
        }
    }
    kinds
}

fn honest_of(ops: &[SimOperator], bad: &[OperatorAddress]) -> Vec<OperatorAddress> {
    ops.iter()
        .map(|o| o.address)
        .filter(|a| !bad.contains(a))
        .collect()
}

fn run_with(
    n: usize,
    mode: VssMode,
    seed: u64,
    make: impl Fn(&[SimOperator], usize) -> Box<dyn Behaviour>,
    bad_count: usize,
) -> (Finished, Vec<OperatorAddress>, Vec<SimOperator>) {
    let (ops, params) = dkg(n, mode, seed);
    let bad: Vec<OperatorAddress> = ops.iter().take(bad_count).map(|o| o.address).collect();
    let byz = (0..bad_count)
        .map(|i| (ops[i].address, make(&ops, i)))
        .collect();
    let f = run(
        params,
        &ops,
        BTreeMap::new(),
        byz,
        NetConfig {
            seed,
            ..NetConfig::default()
        },
    );
    check_agreement(&f);
    (f, bad, ops)
}

#[test]
fn invalid_share_to_one_player_is_proven_and_excluded() {
    for mode in [VssMode::Feldman, VssMode::Pedersen] {
        let (f, bad, ops) = run_with(
            7,
            mode,
            11,
            |ops, i| {
                Box::new(InvalidShares {
                    me: ops[i].address,
                    signer: ops[i].signer.clone(),
                    victims: vec![ops[6].address],
                })
            },
            1,
        );
        let qual = &f.versions.values().next().unwrap().qualified_dealers;
        assert!(
            !qual.contains(&bad[0]),
            "{mode:?}: cheating dealer qualified"
        );
        assert_eq!(qual.len(), 6);
        check_mpk_is_sum_of_qual(&f);
        let kinds = evidence_kinds(&f, &honest_of(&ops, &bad), &bad[0]);
        assert!(kinds.contains(&"invalid_share"), "{mode:?}: {kinds:?}");
    }
}

#[test]
fn invalid_shares_to_all_from_n_minus_t_dealers() {
    // n = 10, t = 7: three Byzantine dealers.
    let (f, bad, ops) = run_with(
        10,
        VssMode::Feldman,
        12,
        |ops, i| {
            let victims = ops.iter().map(|o| o.address).collect();
            Box::new(InvalidShares {
                me: ops[i].address,
                signer: ops[i].signer.clone(),
                victims,
            })
        },
        3,
    );
    let qual = &f.versions.values().next().unwrap().qualified_dealers;
    assert_eq!(qual.len(), 7);
    assert!(bad.iter().all(|b| !qual.contains(b)));
    for b in &bad {
        let honest = honest_of(&ops, &bad);
        let named = honest
            .iter()
            .any(|h| f.net.evidence(h).iter().any(|e| e.dealer() == *b));
        assert!(named, "no evidence names {b}");
    }
}

#[test]
fn equivocating_commitments_are_proven() {
    for mode in [VssMode::Feldman, VssMode::Pedersen] {
        let (f, bad, ops) = run_with(
            7,
            mode,
            13,
            |ops, i| {
                Box::new(Equivocator {
                    me: ops[i].address,
                    signer: ops[i].signer.clone(),
                    everyone: ops.iter().map(|o| o.address).collect(),
                    fooled: ops[4..].iter().map(|o| o.address).collect(),
                })
            },
            1,
        );
        let qual = &f.versions.values().next().unwrap().qualified_dealers;
        assert!(!qual.contains(&bad[0]));
        let honest = honest_of(&ops, &bad);
        let kinds = evidence_kinds(&f, &honest, &bad[0]);
        assert!(kinds.contains(&"equivocation"), "{mode:?}: {kinds:?}");
        // Every honest node ends up with the equivocation proof.
        for h in &honest {
            assert!(
                f.net.evidence(h).iter().any(|e| e.kind() == "equivocation"),
                "{h} lacks the proof"
            );
        }
    }
}

#[test]
fn silent_dealers_are_left_out() {
    for mode in [VssMode::Feldman, VssMode::Pedersen] {
        let (f, bad, _) = run_with(7, mode, 14, |_, _| Box::new(Silent), 2);
        let qual = &f.versions.values().next().unwrap().qualified_dealers;
        assert_eq!(qual.len(), 5);
        assert!(bad.iter().all(|b| !qual.contains(b)));
        check_mpk_is_sum_of_qual(&f);
    }
}

#[test]
fn late_dealer_still_agrees() {
    // Messages arrive during the ack phase: late shares are verified one by one.
    let (f, _, _) = run_with(7, VssMode::Feldman, 15, |_, _| Box::new(Late(600)), 1);
    check_mpk_is_sum_of_qual(&f);
    // In the response phase: the complainers' own late acks answer their complaints.
    let (f, bad, _) = run_with(7, VssMode::Feldman, 16, |_, _| Box::new(Late(1_600)), 1);
    assert!(
        f.versions
            .values()
            .next()
            .unwrap()
            .qualified_dealers
            .contains(&bad[0])
    );
    // After the session closed: the dealer is dropped, everyone agrees without it.
    let (f, bad, _) = run_with(7, VssMode::Feldman, 16, |_, _| Box::new(Late(3_500)), 1);
    let qual = &f.versions.values().next().unwrap().qualified_dealers;
    assert!(!qual.contains(&bad[0]));
    check_mpk_is_sum_of_qual(&f);
}

#[test]
fn pedersen_phase2_abort_is_reconstructed_not_dropped() {
    let (f, bad, _) = run_with(7, VssMode::Pedersen, 17, |_, _| Box::new(AbortsPhase2), 2);
    let qual = &f.versions.values().next().unwrap().qualified_dealers;
    // Aborting after phase 1 does not remove the contribution: no bias by abort.
    assert!(
        bad.iter().all(|b| qual.contains(b)),
        "aborting dealers must stay in QUAL"
    );
    check_mpk_is_sum_of_qual(&f);
}

#[test]
fn pedersen_bad_phase2_commitment_is_proven_and_reconstructed() {
    let (f, bad, ops) = run_with(
        7,
        VssMode::Pedersen,
        18,
        |ops, i| {
            Box::new(BadPhase2 {
                me: ops[i].address,
                signer: ops[i].signer.clone(),
            })
        },
        1,
    );
    check_mpk_is_sum_of_qual(&f);
    let kinds = evidence_kinds(&f, &honest_of(&ops, &bad), &bad[0]);
    assert!(kinds.contains(&"phase2_inconsistency"), "{kinds:?}");
}

/// A dealer hides a torsion component (order 13) in one coefficient of its commitment
/// while every share is right for the G2 part. Commitments are decoded without their
/// subgroup check, so this is what the deferred check must catch: the dealer is
/// excluded (Feldman, phase 1) or reconstructed (Pedersen phase 2), with re-verifiable
/// evidence, and the key is correct and agreed.
#[test]
fn torsion_hidden_in_a_commitment_is_proven() {
    for (mode, phase, coefficient, seed) in [
        (VssMode::Feldman, 1, 0, 21),
        (VssMode::Feldman, 1, 3, 22),
        (VssMode::Pedersen, 1, 2, 23),
        (VssMode::Pedersen, 2, 1, 24),
    ] {
        let (f, bad, ops) = run_with(
            7,
            mode,
            seed,
            |ops, i| {
                Box::new(TorsionCommitment {
                    me: ops[i].address,
                    signer: ops[i].signer.clone(),
                    phase,
                    coefficient,
                    renamed: Vec::new(),
                })
            },
            1,
        );
        let qual = &f.versions.values().next().unwrap().qualified_dealers;
        if phase == 2 {
            assert!(
                qual.contains(&bad[0]),
                "phase-2 failure must be reconstructed"
            );
        } else {
            assert!(
                !qual.contains(&bad[0]),
                "{mode:?}: tainted dealer qualified"
            );
        }
        check_mpk_is_sum_of_qual(&f);
        for v in f.versions.values() {
            assert!(v.commitment.coefficients().iter().all(|p| p.in_subgroup()));
        }
        let honest = honest_of(&ops, &bad);
        let kinds = evidence_kinds(&f, &honest, &bad[0]);
        assert!(
            kinds.contains(&"invalid_commitment_point"),
            "{mode:?} phase {phase}: {kinds:?}"
        );
        assert!(
            !kinds.contains(&"invalid_share"),
            "torsion must not be reported as an invalid share: {kinds:?}"
        );
    }
}

/// Phase 2 with one dealer silent and one whose phase-2 commitment fits the shares of
/// four honest players and not the fifth's. The phase never has everything it
/// expects, so its signature batch is checked halfway through the phase (the engine
/// does not wait for the deadline); the fooled nodes learn of the lie from the fifth
/// player's forwarded share, every honest node reconstructs both dealers and all end
/// with the same key.
#[test]
fn pedersen_phase2_with_a_silent_and_a_selective_liar() {
    let (f, bad, ops) = run_with(
        7,
        VssMode::Pedersen,
        25,
        |ops, i| -> Box<dyn Behaviour> {
            if i == 0 {
                Box::new(AbortsPhase2)
            } else {
                Box::new(SelectivePhase2 {
                    me: ops[i].address,
                    signer: ops[i].signer.clone(),
                    fooled: ops[2..6].iter().map(|o| o.address).collect(),
                })
            }
        },
        2,
    );
    let honest = honest_of(&ops, &bad);
    assert_eq!(
        f.versions.len(),
        honest.len(),
        "every honest node has the key"
    );
    let qual = &f.versions.values().next().unwrap().qualified_dealers;
    assert!(bad.iter().all(|b| qual.contains(b)), "both reconstructed");
    check_mpk_is_sum_of_qual(&f);
    let kinds = evidence_kinds(&f, &honest, &bad[1]);
    assert!(kinds.contains(&"phase2_inconsistency"), "{kinds:?}");
    for h in &honest {
        assert!(
            f.net.evidence(h).iter().any(|e| e.dealer() == bad[1]),
            "{h} did not learn of the lie"
        );
    }
}

/// Sends its phase-1 commitment with a signature over something else (the points and
/// the rest of the payload are genuine), and a corrupted share to `victims`.
struct UnsignedCommitment {
    inner: InvalidShares,
}

impl Behaviour for UnsignedCommitment {
    fn outgoing(
        &mut self,
        to: OperatorAddress,
        m: kms_protocol::SignedMessage,
    ) -> Vec<(OperatorAddress, kms_protocol::SignedMessage, u64)> {
        use kms_protocol::messages::Payload;
        if m.signer == self.inner.me
            && let Ok(Payload::Commitment(c)) = m.peek()
            && c.phase == 1
        {
            let mut m = m;
            m.signature = self.inner.signer.sign(&[7; 32]);
            return vec![(to, m, 0)];
        }
        self.inner.outgoing(to, m)
    }
}

/// A player does not check the signature of a commitment its signed share vouches
/// for (the share names the commitment's hash). Such a commitment with a broken
/// signature still counts — its content is the dealer's — but it is never forwarded
/// nor put into evidence, which would prove nothing to anyone else.
#[test]
fn a_commitment_vouched_for_by_a_share_needs_no_signature_of_its_own() {
    // One dealer whose commitment signature is broken, with an invalid share to
    // operator 6 as well if `victim`.
    let run_unsigned = |mode, seed, victim: bool| {
        run_with(
            7,
            mode,
            seed,
            |ops, i| {
                Box::new(UnsignedCommitment {
                    inner: InvalidShares {
                        me: ops[i].address,
                        signer: ops[i].signer.clone(),
                        victims: if victim { vec![ops[6].address] } else { vec![] },
                    },
                })
            },
            1,
        )
    };
    for mode in [VssMode::Feldman, VssMode::Pedersen] {
        // Only the signature is broken: the dealer qualifies, nothing is alleged.
        let (f, bad, ops) = run_unsigned(mode, 31, false);
        let qual = &f.versions.values().next().unwrap().qualified_dealers;
        assert!(qual.contains(&bad[0]), "{mode:?}: {qual:?}");
        check_mpk_is_sum_of_qual(&f);
        assert!(evidence_kinds(&f, &honest_of(&ops, &bad), &bad[0]).is_empty());
        // What a player reports for the on-chain comparison must verify.
        for h in honest_of(&ops, &bad) {
            let engine = f.net.engine(&h).unwrap();
            let received = engine.received_commitments();
            assert!(received.iter().all(|(d, _, _)| *d != bad[0]));
            assert_eq!(received.len(), 5, "{mode:?}");
        }

        // With an invalid share to one player as well: every honest node sees the
        // forwarded share fail against the dealer's (vouched) points and leaves it
        // out, but nobody puts out evidence that would not verify.
        let (f, bad, ops) = run_unsigned(mode, 32, true);
        let qual = &f.versions.values().next().unwrap().qualified_dealers;
        assert!(!qual.contains(&bad[0]), "{mode:?}: {qual:?}");
        assert_eq!(qual.len(), 6);
        check_mpk_is_sum_of_qual(&f);
        evidence_kinds(&f, &honest_of(&ops, &bad), &bad[0]);
    }
}
