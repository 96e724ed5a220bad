//! Messages that do not belong to a session are rejected with a reason and change
//! nothing: replays from another session, non-members, wrong recipients, forgeries.

mod common;

use std::sync::Arc;

use common::*;
use kms_crypto::signer::{
    Bn254SecretKey, Bn254Signer, CertifiedSigner, OperatorSignature, OperatorSigner,
};
use kms_protocol::messages::{Payload, SignedMessage};
use kms_protocol::sim::SimOperator;
use kms_protocol::{
    Action, CertificateCache, Engine, ProtocolError, SessionParams, SessionTimestamp, VssMode,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn engine(params: &SessionParams, op: &SimOperator) -> Engine {
    Engine::new(params.clone(), op.address, op.signer.clone(), None, [7; 32]).unwrap()
}

/// A Feldman DKG at `ts` among `ops`, phases from time 0.
fn feldman_dkg(ts: u64, ops: &[SimOperator]) -> SessionParams {
    SessionParams::dkg(
        SessionTimestamp(ts),
        VssMode::Feldman,
        participants(ops),
        schedule(0),
    )
    .unwrap()
}

/// A Pedersen DKG at `ts` among `ops`, phases from time 0.
fn pedersen_dkg(ts: u64, ops: &[SimOperator]) -> SessionParams {
    SessionParams::dkg(
        SessionTimestamp(ts),
        VssMode::Pedersen,
        participants(ops),
        schedule(0),
    )
    .unwrap()
}

/// The coin reveal among `actions`.
fn coin_reveal(actions: &[Action]) -> SignedMessage {
    sent(actions)
        .into_iter()
        .find(|(_, m)| matches!(m.peek(), Ok(Payload::CoinReveal(_))))
        .expect("a coin reveal")
        .1
}

fn sent(actions: &[Action]) -> Vec<(kms_crypto::OperatorAddress, SignedMessage)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to, message } => Some((*to, message.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn replay_from_an_earlier_session_is_rejected() {
    let ops = SimOperator::generate(4, 900);
    let old = feldman_dkg(100, &ops);
    let new = feldman_dkg(200, &ops);
    let mut a_old = engine(&old, &ops[0]);
    let msgs = sent(&a_old.start(0));
    assert!(!msgs.is_empty());
    let mut b_new = engine(&new, &ops[1]);
    for (_, m) in &msgs {
        assert_eq!(
            b_new.handle(1, m).unwrap_err(),
            ProtocolError::Rejected("message for another session")
        );
    }
    // Same timestamp, another operator set: also another session.
    let other_set = feldman_dkg(100, &ops[1..]);
    let mut c = engine(&other_set, &ops[1]);
    assert_eq!(
        c.handle(1, &msgs[0].1).unwrap_err(),
        ProtocolError::Rejected("message for another session")
    );
}

#[test]
fn non_member_forgery_and_misaddressed_shares_are_rejected() {
    let ops = SimOperator::generate(5, 901);
    let members = &ops[..4];
    let outsider = &ops[4];
    let params = feldman_dkg(1, members);
    let mut dealer = engine(&params, &members[0]);
    let msgs = sent(&dealer.start(0));
    let mut receiver = engine(&params, &members[1]);

    let (_, commitment) = msgs.iter().find(|(to, _)| to.is_zero()).unwrap().clone();
    receiver.handle(1, &commitment).unwrap();

    // A share addressed to members[2], delivered to members[1] during the deal phase:
    // taken into the phase's batch (it could be a complainer's proof), then ignored.
    let (_, to_other) = msgs
        .iter()
        .find(|(to, _)| *to == members[2].address)
        .unwrap()
        .clone();
    receiver.handle(1, &to_other).unwrap();

    // The same payload signed by a non-member claiming to be the dealer: during the
    // deal phase signatures are checked in a batch, so it is dropped there and counted.
    let mut forged = commitment.clone();
    forged.signature = outsider.signer.sign(&forged.hash);
    receiver.handle(1, &forged).unwrap();

    // A payload authored by the outsider itself: not a member.
    let Payload::Commitment(mut c) = commitment.peek().unwrap() else {
        panic!()
    };
    c.dealer = outsider.address.as_bytes().into();
    let by_outsider = SignedMessage::sign(
        &Payload::Commitment(c),
        outsider.address,
        outsider.signer.as_ref(),
    );
    assert_eq!(
        receiver.handle(1, &by_outsider).unwrap_err(),
        ProtocolError::Rejected("sender is not a member of the session in this role")
    );

    // Tampered payload bytes: the hash no longer matches.
    let mut tampered = commitment.clone();
    let last = tampered.payload.len() - 1;
    tampered.payload[last] ^= 1;
    assert!(matches!(
        receiver.handle(1, &tampered),
        Err(ProtocolError::Malformed(_))
    ));

    // A key that is not the registered one.
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let stranger: Arc<dyn OperatorSigner> =
        Arc::new(Bn254Signer::new(Bn254SecretKey::random(&mut rng)));
    let mut resigned = commitment.clone();
    resigned.signature = stranger.sign(&resigned.hash);
    receiver.handle(1, &resigned).unwrap();

    // The genuine message is still accepted (as a duplicate): rejections changed nothing.
    assert!(receiver.handle(1, &commitment).is_ok());
    assert_eq!(receiver.bad_signatures(), 0, "checked at the deadline");
    let _ = receiver.tick(params.schedule.phase_end(0));
    assert_eq!(receiver.bad_signatures(), 2, "the two bad signatures");
    assert!(
        receiver.evidence().is_empty(),
        "a forgery is not equivocation"
    );
    // Outside the batched phases a bad signature is refused on arrival.
    let mut late_forgery = commitment.clone();
    late_forgery.signature = outsider.signer.sign(&late_forgery.hash);
    assert_eq!(
        receiver
            .handle(params.schedule.phase_end(0) + 1, &late_forgery)
            .unwrap_err(),
        ProtocolError::BadSignature
    );

    // A forgery that arrives before the genuine commitment does not take its place:
    // the genuine one is acknowledged after the batch.
    let mut first_forged = engine(&params, &members[2]);
    let (_, share) = msgs
        .iter()
        .find(|(to, _)| *to == members[2].address)
        .unwrap()
        .clone();
    // The dealer's own certificate with a Schnorr signature of another message: the
    // certificate fits, only the signature is wrong.
    let mut forged = commitment.clone();
    let (OperatorSignature::Certified(sig), OperatorSignature::Certified(other)) =
        (&mut forged.signature, &share.signature)
    else {
        panic!("nodes sign with certified protocol keys")
    };
    sig.signature = other.signature;
    first_forged.handle(1, &forged).unwrap();
    first_forged.handle(1, &share).unwrap();
    first_forged.handle(1, &commitment).unwrap();
    let acks = sent(&first_forged.tick(params.schedule.phase_end(0)));
    // The share vouches for the first copy's content, so its signature is not looked
    // at; the genuine copy, checked in the batch, then takes its place.
    assert_eq!(first_forged.bad_signatures(), 0);
    assert!(first_forged.evidence().is_empty());
    let kept = first_forged.received_commitments();
    let (_, kept, _) = kept
        .iter()
        .find(|(d, _, _)| *d == members[0].address)
        .expect("the dealer's commitment is kept");
    assert_eq!(kept.signature, commitment.signature);
    assert!(
        acks.iter().any(|(_, m)| matches!(
            m.peek(),
            Ok(Payload::Ack(a)) if a.acks.iter().any(|e| e.dealer.as_slice() == members[0].address.as_bytes())
        )),
        "the genuine commitment from dealer 0 is acknowledged"
    );

    // After the session ends, nothing is accepted.
    let _ = receiver.tick(params.schedule.phase_end(5));
    assert!(receiver.outcome().is_some());
    assert_eq!(
        receiver
            .handle(params.schedule.phase_end(6), &commitment)
            .unwrap_err(),
        ProtocolError::Rejected("session already finished")
    );
}

#[test]
fn reshare_dealer_with_a_corrupt_share_refuses_to_start() {
    let ops = SimOperator::generate(4, 902);
    let d = kms_crypto::vss::feldman::FeldmanDealing::new(
        kms_crypto::Scalar::one(),
        3,
        &mut ChaCha20Rng::seed_from_u64(1),
    )
    .unwrap();
    let params = SessionParams::reshare(
        SessionTimestamp(5),
        VssMode::Feldman,
        participants(&ops),
        d.commitment().clone(),
        participants(&ops),
        schedule(0),
    )
    .unwrap();
    let r = Engine::new(
        params,
        ops[0].address,
        ops[0].signer.clone(),
        Some(kms_crypto::Scalar::from_u64(42)),
        [0; 32],
    );
    assert!(matches!(r, Err(ProtocolError::InvalidSession(_))));
}

/// A member's own, correctly signed messages with points or scalars that do not decode
/// (off the curve, not reduced, wrong length, share ≥ r) are refused as malformed and
/// change nothing: the genuine messages still complete the session afterwards. (A
/// point on the curve outside the subgroup is decoded, its check deferred to the
/// aggregate: `byzantine.rs` tests that dealer.)
#[test]
fn correctly_signed_malformed_points_and_scalars_are_refused() {
    let ops = SimOperator::generate(4, 903);
    let params = feldman_dkg(1, &ops);
    let mut dealer = engine(&params, &ops[0]);
    let msgs = sent(&dealer.start(0));
    let mut receiver = engine(&params, &ops[1]);
    let (_, commitment) = msgs.iter().find(|(to, _)| to.is_zero()).unwrap().clone();
    let (_, share) = msgs
        .iter()
        .find(|(to, _)| *to == ops[1].address)
        .unwrap()
        .clone();
    let Payload::Commitment(c) = commitment.peek().unwrap() else {
        panic!()
    };
    let Payload::Share(s) = share.peek().unwrap() else {
        panic!()
    };
    let resign = |p: Payload| SignedMessage::sign(&p, ops[0].address, ops[0].signer.as_ref());

    let valid = c.commitment[1].to_vec();
    let mut not_on_curve = valid.clone();
    *not_on_curve.last_mut().unwrap() ^= 1;
    let mut not_reduced = valid.clone();
    not_reduced[16..64].fill(0xff); // x.c0 = 2^384 - 1 > p
    let mut padded = valid.clone();
    padded[0] = 1; // the 16 padding bytes of a word must be zero
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("not on the curve", not_on_curve),
        ("coordinate not reduced", not_reduced),
        ("non-zero padding", padded),
        ("short", valid[..255].to_vec()),
        ("long", [valid.clone(), vec![0]].concat()),
        ("compressed form", valid[..96].to_vec()),
    ];
    for (what, point) in cases {
        let mut bad = c.clone();
        bad.commitment[1] = point.into();
        let m = resign(Payload::Commitment(bad));
        assert!(
            matches!(receiver.handle(1, &m), Err(ProtocolError::Malformed(_))),
            "commitment point {what} accepted"
        );
    }
    let r_be =
        hex::decode("73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001").unwrap();
    for (what, scalar) in [("= r", r_be.clone()), ("all ones", vec![0xff; 32])] {
        let mut bad = s.clone();
        bad.share.0.copy_from_slice(&scalar);
        let m = resign(Payload::Share(bad));
        assert!(
            matches!(receiver.handle(1, &m), Err(ProtocolError::Malformed(_))),
            "share {what} accepted"
        );
    }

    // The genuine commitment and share are still taken, and verify.
    receiver.handle(1, &commitment).unwrap();
    receiver.handle(1, &share).unwrap();
    let acks = sent(&receiver.tick(params.schedule.phase_end(0)));
    assert!(
        acks.iter().any(|(_, m)| matches!(
            m.peek(),
            Ok(Payload::Ack(a)) if a.acks.iter().any(|e| e.dealer.as_slice() == ops[0].address.as_bytes())
        )),
        "the genuine share from dealer 0 is acknowledged"
    );
}

/// Pedersen coin flip: commitments that arrive in phase 0 wait for the reveals, so
/// both are checked in one signature batch (one Miller loop per operator); a forged
/// copy is dropped there and cannot displace the genuine commitment, and a commitment
/// arriving after phase 0 is refused on arrival.
#[test]
fn coin_commitments_wait_for_the_reveals_and_late_ones_are_refused() {
    let ops = SimOperator::generate(3, 77);
    let params = pedersen_dkg(5, &ops);
    let end0 = params.schedule.phase_end(0);
    let mut a = engine(&params, &ops[0]);
    let mut b = engine(&params, &ops[1]);
    let mut c = engine(&params, &ops[2]);
    let (_, commit) = sent(&a.start(0))[0].clone();
    let (_, late) = sent(&c.start(0))[0].clone();
    let _ = b.start(0);
    let mut forged = commit.clone();
    forged.signature = ops[2].signer.sign(&forged.hash);
    b.handle(1, &forged).unwrap();
    b.handle(2, &commit).unwrap();
    let _ = b.tick(end0);
    assert_eq!(b.bad_signatures(), 0, "held until the reveals");
    assert_eq!(
        b.handle(end0 + 1, &late).unwrap_err(),
        ProtocolError::Rejected("coin commitment after its deadline")
    );
    let reveal = coin_reveal(&a.tick(end0));
    b.handle(end0 + 2, &reveal).unwrap();
    let _ = b.tick(params.schedule.phase_end(1));
    assert_eq!(
        b.bad_signatures(),
        1,
        "the forged copy, dropped in the batch"
    );
    // b's own reveal and a's (which opened the genuine commitment): t = 2 of 3.
    assert!(b.pedersen_base().is_some());
}

#[test]
fn a_coin_reveal_is_vouched_for_by_the_signed_commitment_it_opens() {
    let ops = SimOperator::generate(3, 78);
    let params = pedersen_dkg(6, &ops);
    let end0 = params.schedule.phase_end(0);
    let mut a = engine(&params, &ops[0]);
    let mut b = engine(&params, &ops[1]);
    let (_, commit) = sent(&a.start(0))[0].clone();
    let _ = b.start(0);
    b.handle(1, &commit).unwrap();
    let _ = b.tick(end0);
    let reveal = coin_reveal(&a.tick(end0));
    // Relayed with a broken signature (a's key and certificate, another message): the
    // value still opens a's signed commitment, so it is a's reveal, and its signature
    // is not even looked at.
    let mut relayed = reveal.clone();
    relayed.signature = ops[0].signer.sign(&[0x5a; 32]);
    b.handle(end0 + 2, &relayed).unwrap();
    let _ = b.tick(params.schedule.phase_end(1));
    assert_eq!(b.bad_signatures(), 0);
    assert!(
        b.pedersen_base().is_some(),
        "a's and b's reveals: t = 2 of 3"
    );
    // The same when the commitment is in the same batch as the reveal.
    let mut c = engine(&params, &ops[2]);
    let _ = c.start(0);
    c.handle(1, &commit).unwrap();
    c.handle(end0 + 2, &relayed).unwrap();
    let _ = c.tick(params.schedule.phase_end(1));
    assert_eq!(c.bad_signatures(), 0);
    assert!(c.pedersen_base().is_some());
    // A reveal that opens nothing is not vouched for: its signature is checked,
    // fails, and the reveal counts for nothing.
    let Ok(Payload::CoinReveal(mut r)) = reveal.peek() else {
        unreachable!("a reveal")
    };
    r.value.0[0] ^= 1;
    let mut not_opening =
        SignedMessage::sign(&Payload::CoinReveal(r), ops[0].address, &*ops[0].signer);
    not_opening.signature = ops[0].signer.sign(&[0x5a; 32]);
    let mut c = engine(&params, &ops[2]);
    let _ = c.start(0);
    c.handle(1, &commit).unwrap();
    c.handle(end0 + 2, &not_opening).unwrap();
    let _ = c.tick(params.schedule.phase_end(1));
    assert_eq!(c.bad_signatures(), 1);
    assert!(c.pedersen_base().is_none(), "only c's own reveal");
}

/// Signs `m`'s payload again with a protocol key certified for `operator` by
/// `operator_signer` over `[not_before, not_after]`.
fn recertified(
    m: &SignedMessage,
    operator: kms_crypto::OperatorAddress,
    operator_signer: &dyn OperatorSigner,
    window: (u64, u64),
) -> SignedMessage {
    let mut rng = ChaCha20Rng::seed_from_u64(window.0 ^ window.1);
    let s = CertifiedSigner::generate(operator, operator_signer, window.0, window.1, &mut rng);
    let mut out = m.clone();
    out.signature = s.sign(&m.hash);
    out
}

#[test]
fn certified_signatures_need_a_certificate_for_the_signer_and_the_session() {
    let ops = SimOperator::generate_uncertified(4, 902);
    let params = feldman_dkg(1_000, &ops);
    let dealer_op = &ops[0];
    let mut dealer = engine(&params, dealer_op);
    let msgs = sent(&dealer.start(0));
    let (_, commitment) = msgs.iter().find(|(to, _)| to.is_zero()).unwrap().clone();
    let key = dealer_op.signer.as_ref();
    let me = dealer_op.address;
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let stranger = Bn254Signer::new(Bn254SecretKey::random(&mut rng));
    let bad = [
        // The window ends before the session, or starts after it.
        recertified(&commitment, me, key, (0, 999)),
        recertified(&commitment, me, key, (1_001, 2_000)),
        // Certified by a key that is not the dealer's registered one.
        recertified(&commitment, me, &stranger, (0, 2_000)),
        // The dealer's own key certifying a protocol key for someone else.
        recertified(&commitment, ops[1].address, key, (0, 2_000)),
    ];
    let good = recertified(&commitment, me, key, (1_000, 1_000));
    let cache = Arc::new(CertificateCache::new());
    let mut receiver = engine(&params, &ops[1]).with_certificates(cache.clone());
    for m in &bad {
        receiver.handle(1, m).unwrap();
    }
    receiver.handle(1, &good).unwrap();
    let _ = receiver.tick(params.schedule.phase_end(0));
    assert_eq!(
        receiver.bad_signatures(),
        4,
        "each bad certificate is refused"
    );
    let kept = receiver.received_commitments();
    assert!(
        kept.iter()
            .any(|(d, m, _)| *d == me && m.signature == good.signature),
        "the well-certified copy is the one kept"
    );
    assert_eq!(
        cache.len(),
        1,
        "only a certificate that verified is remembered"
    );
    // Outside the batched phases a bad certificate is refused on arrival.
    let late = params.schedule.phase_end(0) + 1;
    assert_eq!(
        receiver.handle(late, &bad[0]).unwrap_err(),
        ProtocolError::BadSignature
    );
    // Evidence checks use the same rules: an expired certificate proves nothing.
    assert_eq!(
        bad[0].verify_signature(&dealer_op.participant().public_key),
        Err(ProtocolError::BadSignature)
    );
    assert_eq!(
        good.verify_signature(&dealer_op.participant().public_key),
        Ok(())
    );
}

#[test]
fn a_certificate_is_checked_once_per_node_not_once_per_session() {
    let ops = SimOperator::generate(4, 903);
    let cache = Arc::new(CertificateCache::new());
    for ts in [10, 20] {
        let params = feldman_dkg(ts, &ops);
        let mut receiver = engine(&params, &ops[1]).with_certificates(cache.clone());
        for dealer in [&ops[0], &ops[2], &ops[3]] {
            for (to, m) in sent(&engine(&params, dealer).start(0)) {
                if to.is_zero() || to == ops[1].address {
                    receiver.handle(1, &m).unwrap();
                }
            }
        }
        let _ = receiver.tick(params.schedule.phase_end(0));
        assert_eq!(receiver.bad_signatures(), 0);
        assert_eq!(receiver.received_commitments().len(), 3);
        assert_eq!(cache.len(), 3, "the same three certificates, session {ts}");
    }
}

#[test]
fn a_certificate_signed_with_another_scheme_is_not_vouched_for_by_its_batch() {
    // Two dealers' commitments in one batch: one genuinely certified, one whose
    // certificate carries an ECDSA signature although the dealer's key is BN254. The
    // good certificate's batch passing must not make the other count as checked.
    let ops = SimOperator::generate(4, 904);
    let params = feldman_dkg(1, &ops);
    let first = |op: &SimOperator| {
        sent(&engine(&params, op).start(0))
            .into_iter()
            .find(|(to, _)| to.is_zero())
            .unwrap()
            .1
    };
    let good = first(&ops[0]);
    let mut bad = first(&ops[2]);
    let OperatorSignature::Certified(c) = &mut bad.signature else {
        panic!("certified")
    };
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let ecdsa = kms_crypto::signer::EcdsaSigner::random(&mut rng);
    c.certificate.signature = ecdsa.sign(&[0u8; 32]);
    let cache = Arc::new(CertificateCache::new());
    let mut receiver = engine(&params, &ops[1]).with_certificates(cache.clone());
    receiver.handle(1, &good).unwrap();
    receiver.handle(1, &bad).unwrap();
    let _ = receiver.tick(params.schedule.phase_end(0));
    assert_eq!(receiver.bad_signatures(), 1);
    assert_eq!(cache.len(), 1);
    let kept: Vec<_> = receiver
        .received_commitments()
        .into_iter()
        .map(|(d, _, _)| d)
        .collect();
    assert_eq!(kept, vec![ops[0].address]);
}
