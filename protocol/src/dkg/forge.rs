//! Faulty v2 messages for tests (like [`super::sim`], test support): a dealer's
//! dealing with one share off, a player's complaint with a valid DLEQ proof, votes
//! and a reshare dealing with a wrong constant, all signed with the members' real
//! keys, so that evidence built from them is what an engine would emit.

use std::collections::BTreeMap;

use kms_crypto::vss::coin::CoinContribution;
use kms_crypto::vss::encryption::{EphemeralKey, ShareContext, reveal_shared_key};
use kms_crypto::vss::feldman::FeldmanDealing;
use kms_crypto::vss::pedersen::PedersenBase;
use kms_crypto::{Commitment, OperatorAddress, Scalar, evaluation_point};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use super::dealer::deal;
use super::evidence::{BaseDecision, Evidence};
use super::ids::MessageHash;
use super::instance::value_id;
use super::phase::InstanceId;
use super::setup::Setup;
use super::sim::SimMember;
use super::wire::{Body, CoinCommit, CoinReveal, Complaint, Vote, to_sol, word};
use crate::messages::SignedMessage;

/// `dealer`'s honest dealing of `secret` (a random one if `None`).
pub fn dealing(
    setup: &Setup,
    dealer: &SimMember,
    secret: Option<Scalar>,
    base: Option<&PedersenBase>,
    seed: u64,
) -> SignedMessage {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let secret = secret.unwrap_or_else(|| Scalar::random(&mut rng));
    deal(
        setup,
        &dealer.roster(setup),
        dealer.address(),
        dealer.operator.signer.as_ref(),
        secret,
        base,
        &mut rng,
    )
    .expect("a simulated dealer deals")
}

/// The dealing with the ciphertext word of player `index` plus one (a share off by
/// one), re-signed by `dealer`.
pub fn corrupt_share(dealing: &SignedMessage, dealer: &SimMember, index: usize) -> SignedMessage {
    let Ok(Body::Dealing(mut d)) = Body::decode(&dealing.payload) else {
        panic!("not a dealing")
    };
    let w = Scalar::from_bytes_be(&d.shareValues[index].0).expect("canonical word");
    d.shareValues[index] = word((&w + &Scalar::one()).to_bytes_be());
    Body::Dealing(d).sign(dealer.operator.signer.as_ref())
}

/// `player`'s complaint about its share in `dealing`: the revealed key with a valid
/// DLEQ proof (whether or not the share is in fact invalid).
pub fn complaint(
    setup: &Setup,
    dealing: &SignedMessage,
    player: &SimMember,
    seed: u64,
) -> SignedMessage {
    let Ok(Body::Dealing(d)) = Body::decode(&dealing.payload) else {
        panic!("not a dealing")
    };
    let ephemeral = EphemeralKey::from_eip2537(&d.ephemeralKey).expect("ephemeral key");
    let ctx = ShareContext {
        session_hash: setup.hash().0,
        dealer: super::wire::from_sol(&d.dealer),
        player: player.address(),
    };
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (key, proof) = reveal_shared_key(&player.encryption, &ephemeral, &ctx, &mut rng);
    Body::Complaint(Complaint {
        sessionTimestamp: setup.params.timestamp.0,
        sessionHash: word(setup.hash().0),
        player: to_sol(&player.address()),
        dealer: d.dealer,
        dealing: word(dealing.hash),
        sharedKey: key.to_eip2537().to_vec().into(),
        challenge: word(proof.challenge),
        response: word(proof.response.to_bytes_be()),
    })
    .sign(player.operator.signer.as_ref())
}

/// Invalid-share evidence: `dealer`'s share for `victim` off by one, the victim's
/// complaint and its key announcement.
pub fn invalid_share(setup: &Setup, dealer: &SimMember, victim: &SimMember, seed: u64) -> Evidence {
    invalid_share_in(setup, dealer, victim, None, seed)
}

/// [`invalid_share`] in a session with base `base` (Pedersen).
pub fn invalid_share_in(
    setup: &Setup,
    dealer: &SimMember,
    victim: &SimMember,
    base: Option<&PedersenBase>,
    seed: u64,
) -> Evidence {
    let index = setup.player_index(&victim.address()).expect("a player");
    let bad = corrupt_share(&dealing(setup, dealer, None, base, seed), dealer, index);
    Evidence::InvalidShare {
        complaint: complaint(setup, &bad, victim, seed + 1),
        dealing: bad,
        key: victim.key_announcement(setup),
    }
}

/// `voter`'s signed vote (`step` 1 prevote, 2 precommit; `value` zero = nil).
pub fn vote(
    setup: &Setup,
    voter: &SimMember,
    instance: u8,
    round: u32,
    step: u8,
    value: [u8; 32],
) -> SignedMessage {
    Body::Vote(Vote {
        sessionTimestamp: setup.params.timestamp.0,
        sessionHash: word(setup.hash().0),
        voter: to_sol(&voter.address()),
        instance,
        round,
        step,
        value: word(value),
    })
    .sign(voter.operator.signer.as_ref())
}

/// A reshare dealing of `share·λ + offset` for `dealer`, which holds `share` of the
/// previous key: `offset` zero is honest, anything else changes the master secret.
pub fn reshare_dealing(
    setup: &Setup,
    dealer: &SimMember,
    share: &Scalar,
    offset: u64,
    seed: u64,
) -> SignedMessage {
    reshare_dealing_in(setup, dealer, share, offset, None, seed)
}

/// [`reshare_dealing`] in a session with base `base` (Pedersen).
pub fn reshare_dealing_in(
    setup: &Setup,
    dealer: &SimMember,
    share: &Scalar,
    offset: u64,
    base: Option<&PedersenBase>,
    seed: u64,
) -> SignedMessage {
    let weights = setup
        .params
        .dealers
        .lagrange_at_zero()
        .expect("dealer weights");
    let secret = &(&weights[&dealer.address()] * share) + &Scalar::from_u64(offset);
    dealing(setup, dealer, Some(secret), base, seed)
}

/// A coin flip of `members` (the session's players among them; each commits and
/// reveals), agreed in round `round` by the precommits of the first `quorum` of them
/// (by address): the decision and the base it proves.
pub fn base_decision(
    setup: &Setup,
    members: &[SimMember],
    quorum: usize,
    round: u32,
    seed: u64,
) -> (BaseDecision, PedersenBase) {
    let ts = setup.params.timestamp.0;
    let session = setup.hash();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut players: Vec<&SimMember> = members
        .iter()
        .filter(|m| setup.params.players.contains(&m.address()))
        .collect();
    players.sort_by_key(|m| m.address());
    let mut contributions = Vec::new();
    let mut reveals: Vec<SignedMessage> = players
        .iter()
        .map(|m| {
            let c = CoinContribution::random(&mut rng);
            contributions.push((m.address(), c.reveal()));
            let commit = Body::CoinCommit(CoinCommit {
                sessionTimestamp: ts,
                sessionHash: word(session.0),
                operator: to_sol(&m.address()),
                commitment: word(c.commitment(&session.0, &m.address())),
            })
            .sign(m.operator.signer.as_ref());
            Body::CoinReveal(CoinReveal {
                sessionTimestamp: ts,
                sessionHash: word(session.0),
                operator: to_sol(&m.address()),
                commitMessage: word(commit.hash),
                value: word(c.reveal()),
            })
            .sign(m.operator.signer.as_ref())
        })
        .collect();
    reveals.sort_by_key(|m| m.hash);
    let entries: Vec<MessageHash> = reveals.iter().map(|m| MessageHash(m.hash)).collect();
    let value = value_id(&session, InstanceId::Coin, &entries);
    let precommits = players
        .iter()
        .take(quorum)
        .map(|m| vote(setup, m, InstanceId::Coin as u8, round, 2, value.0))
        .collect();
    let decision = BaseDecision {
        precommits,
        reveals,
    };
    let seed = kms_crypto::vss::coin::combine(&session.0, &contributions).expect("contributions");
    (decision, PedersenBase::from_seed(&seed))
}

/// A current key of threshold `t` held by `holders`: its public polynomial and each
/// holder's share (what a reshare starts from).
pub fn previous_key(
    holders: &[SimMember],
    t: usize,
    seed: u64,
) -> (Commitment, BTreeMap<OperatorAddress, Scalar>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let d = FeldmanDealing::new(Scalar::random(&mut rng), t, &mut rng).expect("threshold");
    let shares = holders
        .iter()
        .map(|h| {
            let x = evaluation_point(&h.address()).expect("evaluation point");
            (h.address(), d.share(&x))
        })
        .collect();
    (d.commitment().clone(), shares)
}
