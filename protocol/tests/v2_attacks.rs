//! The attacks that split, stalled or leaked under protocol v1, replayed against v2
//! in the simulator. Each test names what the adversary does; each asserts that
//! honest nodes agree, that the session completes, and that no message on the wire
//! carries a share of an honest player.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use kms_crypto::vss::encryption::{ShareCiphertext, ShareContext, decrypt_share};
use kms_crypto::{OperatorAddress, Scalar};
use kms_protocol::dkg::sim::{Deliveries, Finished, Outgoing, Scenario, SimMember, SlowInbound};
use kms_protocol::dkg::wire::{Body, Kind};
use kms_protocol::session::{SessionParams, VssMode};
use kms_protocol::{SessionOutcome, SignedMessage};

mod v2_common;

use v2_common::{PHASE_MS, dkg};

/// [`v2_common::scenario`] with the wire recorded, to look for shares on it.
fn scenario(params: SessionParams, members: Vec<SimMember>, seed: u64) -> Scenario {
    let mut s = v2_common::scenario(params, members, seed);
    s.net.record = true;
    s
}

/// Every share an honest dealer dealt to an honest player, and every honest final
/// share, as the 32-byte words they would appear as on the wire.
fn honest_share_words(run: &Finished, honest: &[OperatorAddress]) -> BTreeSet<[u8; 32]> {
    let mut words = BTreeSet::new();
    let session = run.setup.hash().0;
    for (from, _, m) in run.network.transcript() {
        if !honest.contains(from) {
            continue;
        }
        let Ok(Body::Dealing(d)) = Body::decode(&m.payload) else {
            continue;
        };
        let eph = kms_crypto::vss::encryption::EphemeralKey::from_eip2537(&d.ephemeralKey).unwrap();
        for (i, (player, _)) in run.setup.players().enumerate() {
            if !honest.contains(player) {
                continue;
            }
            let member = run.members.iter().find(|x| x.address() == *player).unwrap();
            let ct = ShareCiphertext {
                value: d.shareValues[i].0,
                blinding: d.shareBlindings.get(i).map_or([0; 32], |w| w.0),
            };
            let ctx = ShareContext {
                session_hash: session,
                dealer: *from,
                player: *player,
            };
            let s = decrypt_share(&member.encryption, &eph, &ctx, &ct).unwrap();
            words.insert(s.value.to_bytes_be());
            if !s.blinding.is_zero() {
                words.insert(s.blinding.to_bytes_be());
            }
        }
    }
    for a in honest {
        if let Some(Ok(SessionOutcome::NewVersion(k))) = run.network.outcome(a) {
            words.insert(k.share.to_bytes_be());
        }
    }
    words
}

/// No message anyone sent carries an honest share in any ABI word.
fn assert_no_share_on_the_wire(run: &Finished, honest: &[OperatorAddress]) {
    let words = honest_share_words(run, honest);
    assert!(!words.is_empty());
    for (from, to, m) in run.network.transcript() {
        for w in m.payload[1..].chunks_exact(32) {
            let w: [u8; 32] = w.try_into().unwrap();
            assert!(
                !words.contains(&w),
                "a share of an honest player went from {from} to {to}"
            );
        }
    }
}

fn honest_all_activated(run: &Finished, honest: &[OperatorAddress]) {
    let v = run.check(honest).unwrap();
    assert_eq!(v.activated, honest.len(), "{v:?}");
}

/// A hook that withholds messages of `kind` from the recipients `to_drop`.
fn withhold(
    kind: Kind,
    to_drop: BTreeSet<OperatorAddress>,
) -> Box<dyn kms_protocol::dkg::sim::Byzantine> {
    Box::new(move |o: &Outgoing<'_>| -> Deliveries {
        if o.kind == kind && to_drop.contains(&o.to) {
            vec![]
        } else {
            vec![(o.message.clone(), 0)]
        }
    })
}

#[test]
fn a_coin_reveal_shown_to_only_some_nodes_neither_splits_nor_stalls_the_base() {
    for seed in 0..6u64 {
        let members = SimMember::generate(7, 100 + seed);
        let byz = members[(seed % 7) as usize].address();
        let honest: Vec<_> = members
            .iter()
            .map(SimMember::address)
            .filter(|a| *a != byz)
            .collect();
        let half: BTreeSet<_> = honest.iter().take(3).copied().collect();
        let mut s = scenario(dkg(&members, VssMode::Pedersen), members, seed);
        s.byzantine.push((byz, withhold(Kind::CoinReveal, half)));
        let run = s.run();
        honest_all_activated(&run, &honest);
        assert_no_share_on_the_wire(&run, &honest);
    }
}

#[test]
fn a_dealing_sent_to_only_some_nodes_cannot_split_the_qualified_set() {
    for mode in [VssMode::Feldman, VssMode::Pedersen] {
        for seed in 0..4u64 {
            let members = SimMember::generate(7, 200 + seed);
            let byz = members[(seed % 7) as usize].address();
            let honest: Vec<_> = members
                .iter()
                .map(SimMember::address)
                .filter(|a| *a != byz)
                .collect();
            // Enough recipients to collect acks from a quorum at some nodes only.
            let skip: BTreeSet<_> = honest.iter().take(1 + seed as usize % 3).copied().collect();
            let mut s = scenario(dkg(&members, mode), members, seed);
            s.byzantine.push((byz, withhold(Kind::Dealing, skip)));
            let run = s.run();
            honest_all_activated(&run, &honest);
        }
    }
}

/// Replaces the Byzantine dealer's dealing with one whose share for `victim` is off
/// by one (a valid ciphertext word of another share), re-signed.
fn corrupt_share_for(victim: usize) -> impl FnMut(&Outgoing<'_>) -> Deliveries + Send {
    let mut forged: Option<SignedMessage> = None;
    move |o: &Outgoing<'_>| -> Deliveries {
        if o.kind != Kind::Dealing {
            return vec![(o.message.clone(), 0)];
        }
        let m = forged.get_or_insert_with(|| {
            let Ok(Body::Dealing(mut d)) = Body::decode(&o.message.payload) else {
                unreachable!()
            };
            let w = Scalar::from_bytes_be(&d.shareValues[victim].0).unwrap();
            d.shareValues[victim] = (&w + &Scalar::one()).to_bytes_be().into();
            Body::Dealing(d).sign(o.signer)
        });
        vec![(m.clone(), 0)]
    }
}

#[test]
fn an_invalid_share_is_proven_and_its_dealer_excluded_at_every_honest_node() {
    for mode in [VssMode::Feldman, VssMode::Pedersen] {
        let members = SimMember::generate(7, 300);
        let byz = members[2].address();
        let honest: Vec<_> = members
            .iter()
            .map(SimMember::address)
            .filter(|a| *a != byz)
            .collect();
        let mut s = scenario(dkg(&members, mode), members.clone(), 9);
        s.byzantine.push((byz, Box::new(corrupt_share_for(4))));
        let run = s.run();
        honest_all_activated(&run, &honest);
        let Some(Ok(SessionOutcome::NewVersion(k))) = run.network.outcome(&honest[0]) else {
            panic!()
        };
        assert!(!k.qualified_dealers.contains(&byz), "{mode:?}");
        // The victim proved it; every honest node holds the proof.
        for a in &honest {
            assert!(
                run.network
                    .evidence(a)
                    .iter()
                    .any(|e| e.kind() == "invalid_share"),
                "{mode:?}: {a} has the proof"
            );
        }
        assert_no_share_on_the_wire(&run, &honest);
    }
}

#[test]
fn a_late_complaint_shown_to_some_nodes_cannot_split_the_qualified_set() {
    // The Byzantine dealer corrupts its own share and complains about itself with a
    // valid proof, timed to land at some honest nodes before they vote and at others
    // after: the agreement decides one set for all.
    for seed in 0..4u64 {
        let members = SimMember::generate(7, 400 + seed);
        let bi = (seed % 7) as usize;
        let byz = members[bi].address();
        let me = members[bi].clone();
        let honest: Vec<_> = members
            .iter()
            .map(SimMember::address)
            .filter(|a| *a != byz)
            .collect();
        let early: BTreeSet<_> = honest.iter().take(3).copied().collect();
        let params = dkg(&members, VssMode::Feldman);
        let setup = kms_protocol::dkg::sim::setup(params.clone());
        let session = setup.hash().0;
        let index = setup.player_index(&byz).unwrap();
        let mut corrupt = corrupt_share_for(index);
        let complaint: Arc<Mutex<Option<SignedMessage>>> = Arc::default();
        let hook = move |o: &Outgoing<'_>| -> Deliveries {
            let mut out = corrupt(o);
            if o.kind == Kind::Dealing {
                let Ok(Body::Dealing(d)) = Body::decode(&out[0].0.payload) else {
                    unreachable!()
                };
                let mut slot = complaint.lock().unwrap();
                if slot.is_none() {
                    let eph =
                        kms_crypto::vss::encryption::EphemeralKey::from_eip2537(&d.ephemeralKey)
                            .unwrap();
                    let ctx = ShareContext {
                        session_hash: session,
                        dealer: byz,
                        player: byz,
                    };
                    let mut rng =
                        <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(seed);
                    let (key, proof) = kms_crypto::vss::encryption::reveal_shared_key(
                        &me.encryption,
                        &eph,
                        &ctx,
                        &mut rng,
                    );
                    let body = Body::Complaint(kms_protocol::dkg::wire::Complaint {
                        sessionTimestamp: d.sessionTimestamp,
                        sessionHash: d.sessionHash,
                        player: d.dealer,
                        dealer: d.dealer,
                        dealing: out[0].0.hash.into(),
                        sharedKey: key.to_eip2537().to_vec().into(),
                        challenge: proof.challenge.into(),
                        response: proof.response.to_bytes_be().into(),
                    });
                    *slot = Some(body.sign(o.signer));
                }
                let c = slot.clone().unwrap();
                // Early at some, just after the others' ack deadline elsewhere.
                let delay = if early.contains(&o.to) {
                    0
                } else {
                    2 * PHASE_MS - o.now_ms.min(2 * PHASE_MS) + 5
                };
                out.push((c, delay));
            }
            out
        };
        let mut s = scenario(params, members, seed);
        s.byzantine.push((byz, Box::new(hook)));
        let run = s.run();
        honest_all_activated(&run, &honest);
    }
}

#[test]
fn delaying_one_nodes_inbound_traffic_publishes_no_share() {
    // The host of one honest node delays everything sent to it for two phases, with
    // a Byzantine operator in the set: v1 had every dealer reveal that node's shares.
    for mode in [VssMode::Feldman, VssMode::Pedersen] {
        let members = SimMember::generate(7, 500);
        let slow = members[3].address();
        let byz = members[5].address();
        let honest: Vec<_> = members
            .iter()
            .map(SimMember::address)
            .filter(|a| *a != byz)
            .collect();
        let mut s = scenario(dkg(&members, mode), members, 11);
        s.net.slow.push(SlowInbound {
            node: slow,
            extra_ms: 2 * PHASE_MS,
            from_ms: 0,
            until_ms: 2 * PHASE_MS,
        });
        s.byzantine
            .push((byz, withhold(Kind::Acks, BTreeSet::new())));
        let run = s.run();
        let v = run.check(&honest).unwrap();
        assert!(v.activated >= honest.len() - 1, "{mode:?}: {v:?}");
        assert_no_share_on_the_wire(&run, &honest);
    }
}

#[test]
fn a_message_landing_in_the_millisecond_of_a_timeout_does_not_cancel_the_timeout() {
    // Found by the sweep (dkg/feldman/7/acks/withhold): `handle` moved the clock onto
    // a due agreement timeout without firing it, and `next_deadline` reports only
    // later deadlines, so the round waited forever and every honest node failed at
    // the session deadline. Here: a non-proposer holds every dealing, its propose
    // timeout is due at `start + phase`, and the only thing that happens then is a
    // (duplicate) message. It must prevote nil right then.
    let members = SimMember::generate(4, 900);
    let params = dkg(&members, VssMode::Feldman);
    let run = scenario(params.clone(), members.clone(), 21).run();
    let setup = run.setup.clone();
    let voters: Vec<OperatorAddress> = setup.params.players.addresses().copied().collect();
    let proposer = voters[setup.leader_offset() % voters.len()];
    let me = members.iter().find(|m| m.address() != proposer).unwrap();
    let received = |keep: fn(&Body) -> bool| -> Vec<SignedMessage> {
        run.network
            .transcript()
            .iter()
            .filter(|(from, to, m)| {
                *to == me.address()
                    && m.signer == *from
                    && Body::decode(&m.payload).is_ok_and(|b| keep(&b))
            })
            .map(|(_, _, m)| m.clone())
            .collect()
    };
    // What fixed the roster (keys, lists, the roster agreement's messages), then the
    // dealings.
    let roster = received(|b| match b {
        Body::Key(_) | Body::KeysSeen(_) => true,
        Body::Proposal(p) => p.instance == 2,
        Body::Vote(v) => v.instance == 2,
        _ => false,
    });
    let dealings = received(|b| matches!(b, Body::Dealing(_)));
    assert_eq!(dealings.len(), 3);
    let mut engine = kms_protocol::dkg::Engine::new(
        setup,
        me.address(),
        me.operator.signer.clone(),
        me.encryption.clone(),
        None,
        [7; 32],
    )
    .unwrap();
    engine.start(0);
    for m in &roster {
        let _ = engine.handle(10, m.clone());
    }
    assert!(engine.roster().is_some(), "the roster is agreed");
    for d in &dealings {
        engine.handle(10, d.clone()).unwrap();
    }
    let _ = engine.drain();
    // Every dealing in: the agreement started at 10, its propose timeout is due at
    // 10 + phase.
    let due = 10 + PHASE_MS;
    assert_eq!(engine.next_deadline(), Some(due));
    let _ = engine.handle(due, dealings[0].clone());
    let prevoted_nil = engine.drain().into_iter().any(|a| match a {
        kms_protocol::dkg::Action::Send { message, .. } => matches!(
            Body::decode(&message.payload),
            Ok(Body::Vote(v)) if v.step == 1 && v.value.0 == [0; 32]
        ),
        _ => false,
    });
    assert!(prevoted_nil, "the due propose timeout fired");
    assert!(engine.next_deadline().is_some_and(|d| d > due));

    // The sweep's run itself now completes.
    let case = kms_protocol::dkg::sweep::Case {
        protocol: kms_protocol::dkg::sweep::Protocol::Dkg,
        mode: VssMode::Feldman,
        n: 7,
        kind: Kind::Acks,
        behaviour: kms_protocol::dkg::sweep::Behaviour::Withhold,
    };
    let r = kms_protocol::dkg::sweep::Harness::new().run(&case, 0x5584_f44a_f1a4_19b0);
    assert!(r.violation.is_none() && r.stalled == 0, "{r:?}");
}

/// Replaces the Byzantine dealer's dealing with one whose commitment coefficient
/// `k` carries a point of order 13 (on the curve, outside G2), re-signed: its shares
/// are still right for the G2 part, so some checks see the torsion and some do not.
fn torsion_in_coefficient(k: usize) -> impl FnMut(&Outgoing<'_>) -> Deliveries + Send {
    let mut forged: Option<SignedMessage> = None;
    move |o: &Outgoing<'_>| -> Deliveries {
        if o.kind != Kind::Dealing {
            return vec![(o.message.clone(), 0)];
        }
        let m = forged.get_or_insert_with(|| {
            let Ok(Body::Dealing(mut d)) = Body::decode(&o.message.payload) else {
                unreachable!()
            };
            let c = kms_crypto::G2Point::from_eip2537_on_curve(&d.commitment[k]).unwrap();
            let off = c.add(&kms_crypto::G2Point::small_order_point());
            d.commitment[k] = off.to_eip2537().to_vec().into();
            Body::Dealing(d).sign(o.signer)
        });
        vec![(m.clone(), 0)]
    }
}

#[test]
fn a_dealer_hiding_torsion_in_its_commitment_opens_no_honest_share_and_stalls_nothing() {
    // Found in review: a share batch that fails on torsion alone used to mark every
    // share invalid, so the player complained about (and opened) the shares of honest
    // dealers; and a torsion no player's check saw made every proposed set invalid.
    for mode in [VssMode::Feldman, VssMode::Pedersen] {
        for k in [0usize, 1] {
            let members = SimMember::generate(7, 700 + k as u64);
            let byz = members[3].address();
            let honest: Vec<_> = members
                .iter()
                .map(SimMember::address)
                .filter(|a| *a != byz)
                .collect();
            let mut s = scenario(dkg(&members, mode), members.clone(), 11 + k as u64);
            s.byzantine.push((byz, Box::new(torsion_in_coefficient(k))));
            let run = s.run();
            honest_all_activated(&run, &honest);
            let Some(Ok(SessionOutcome::NewVersion(v))) = run.network.outcome(&honest[0]) else {
                panic!()
            };
            assert!(
                !v.qualified_dealers.contains(&byz),
                "{mode:?}, coefficient {k}: the torsion dealer is out"
            );
            // No honest player complained about an honest dealer.
            for (from, _, m) in run.network.transcript() {
                if let Ok(Body::Complaint(c)) = Body::decode(&m.payload) {
                    assert!(
                        !honest.contains(&kms_protocol::dkg::wire::from_sol(&c.dealer))
                            || !honest.contains(from),
                        "{mode:?}, coefficient {k}: {from} complained about an honest dealer"
                    );
                }
            }
            assert_no_share_on_the_wire(&run, &honest);
        }
    }
}

#[test]
fn a_bad_share_dealt_late_is_recovered_and_stalls_no_session() {
    // Found in review: a dealer that gives one player a bad share and delivers its
    // dealing to that player only after the others decided gets into the agreed set
    // before the player's complaint; the player then had no share (and in Pedersen
    // mode, with the dealer withholding its public share, fewer than `t` public
    // shares existed at n = 4: every honest node stalled). Now the others send the
    // player their shares of the faulty dealing, encrypted to it, and it rebuilds its
    // own.
    let mut recovered_somewhere = false;
    for (mode, n) in [
        (VssMode::Pedersen, 4),
        (VssMode::Feldman, 7),
        (VssMode::Pedersen, 7),
    ] {
        let members = SimMember::generate(n, 800 + n as u64);
        let byz = members[1].address();
        let honest: Vec<_> = members
            .iter()
            .map(SimMember::address)
            .filter(|a| *a != byz)
            .collect();
        let params = dkg(&members, mode);
        let setup = kms_protocol::dkg::sim::setup(params.clone());
        let victim = honest[2];
        let index = setup.player_index(&victim).unwrap();
        let mut corrupt = corrupt_share_for(index);
        let hook = move |o: &Outgoing<'_>| -> Deliveries {
            match o.kind {
                Kind::Dealing => corrupt(o)
                    .into_iter()
                    .map(|(m, _)| (m, if o.to == victim { 4 * PHASE_MS } else { 0 }))
                    .collect(),
                // Its public share withheld: the others need the victim's.
                Kind::PublicShare => Vec::new(),
                _ => vec![(o.message.clone(), 0)],
            }
        };
        let mut s = scenario(params, members.clone(), 21);
        s.byzantine.push((byz, Box::new(hook)));
        let run = s.run();
        honest_all_activated(&run, &honest);
        let recoveries = run
            .network
            .transcript()
            .iter()
            .filter(|(_, to, m)| {
                *to == victim && matches!(Body::decode(&m.payload), Ok(Body::Recovery(_)))
            })
            .count();
        let Some(Ok(SessionOutcome::NewVersion(v))) = run.network.outcome(&victim) else {
            panic!()
        };
        if v.qualified_dealers.contains(&byz) {
            assert!(recoveries > 0, "{mode:?}, n = {n}: the victim got help");
            recovered_somewhere = true;
        }
        assert_no_share_on_the_wire(&run, &honest);
    }
    assert!(
        recovered_somewhere,
        "the late complaint came after the decision somewhere"
    );
}
