//! From an agreed set of dealings to a key version: which dealings count with which
//! weight, the validity rule a voter applies to a proposed set, and (Pedersen) the
//! public shares that yield the public polynomial without any dealer's help.

use std::collections::BTreeSet;

use kms_crypto::poly::lagrange_coefficients_at_zero;
use kms_crypto::vss::pedersen::PedersenShare;
use kms_crypto::vss::public_share::{
    PublicShare, feldman_from_public_shares, verify_public_shares,
};
use kms_crypto::{Commitment, G2Point, OperatorAddress, Scalar};

use super::engine::Engine;
use super::ids::MessageHash;
use super::phase::Phase;
use super::rejection::Rejection;
use super::wire::{self, Body};
use crate::agreement::Validity;
use crate::messages::SignedMessage;
use crate::outcome::{KeyShareVersion, SessionFailure, SessionOutcome};
use crate::session::VssMode;

/// What a node holds once the qualified set is agreed.
pub struct Final {
    /// The dealings that count, with their weights.
    pub weighted: Vec<(MessageHash, Scalar)>,
    /// Their dealers, in address order.
    pub qualified: Vec<OperatorAddress>,
    /// The weighted sum of the counted commitments (Pedersen: still blinded).
    pub sum: Commitment,
    /// This node's combined share (and blinding), if it is a player.
    pub share: Option<PedersenShare>,
    /// Pedersen: valid public shares by player, with the player's point.
    pub public: std::collections::BTreeMap<OperatorAddress, (Scalar, PublicShare)>,
}

/// The weights of an agreed set. A DKG, or a reshare in which every dealer counts,
/// sums the dealings (reshare dealers dealt `λ_D·s_D` already). A reshare with
/// fewer dealers takes the first `t_old` of them in address order — the same at every
/// node — with `μ_D = λ'_D / λ_D`, `λ'_D` their Lagrange coefficients among
/// themselves.
pub fn weights(engine: &Engine, entries: &[MessageHash]) -> Option<Vec<(MessageHash, Scalar)>> {
    let params = &engine.setup.params;
    let mut by_dealer: Vec<(OperatorAddress, MessageHash)> = entries
        .iter()
        .map(|h| engine.dealings.by_hash.get(h).map(|d| (d.dealer, *h)))
        .collect::<Option<_>>()?;
    by_dealer.sort();
    if params.previous.is_none() || by_dealer.len() == params.dealers.len() {
        return Some(
            by_dealer
                .into_iter()
                .map(|(_, h)| (h, Scalar::one()))
                .collect(),
        );
    }
    let chosen = &by_dealer[..params.dealers.threshold().min(by_dealer.len())];
    let xs: Vec<Scalar> = chosen
        .iter()
        .map(|(d, _)| params.dealers.evaluation_point(d).cloned())
        .collect::<Option<_>>()?;
    let lambda = lagrange_coefficients_at_zero(&xs).ok()?;
    chosen
        .iter()
        .zip(lambda)
        .map(|((d, h), l)| {
            let w = engine.weights.get(d)?.invert().ok()?;
            Some((*h, &l * &w))
        })
        .collect()
}

pub(super) fn weighted_sum(
    engine: &Engine,
    weighted: &[(MessageHash, Scalar)],
) -> Option<Commitment> {
    let cs: Vec<&Commitment> = weighted
        .iter()
        .map(|(h, _)| engine.dealings.by_hash.get(h).map(|d| &d.commitment))
        .collect::<Option<_>>()?;
    if weighted.iter().all(|(_, w)| *w == Scalar::one()) {
        Commitment::sum(cs).ok()
    } else {
        let ws: Vec<Scalar> = weighted.iter().map(|(_, w)| w.clone()).collect();
        Commitment::linear_combination(&cs, &ws).ok()
    }
}

/// A voter's rule for a proposed set: enough dealings of distinct dealers, none
/// proven faulty, this node's own share valid in each, and the combined commitment
/// — what would become the public polynomial — in G2.
pub fn judge_qual(engine: &Engine, entries: &[MessageHash]) -> Validity {
    if entries.len() < engine.needed() || entries.windows(2).any(|w| w[0] >= w[1]) {
        return Validity::Invalid;
    }
    let mut dealers = BTreeSet::new();
    for h in entries {
        if !engine.dealings.usable(h) {
            return Validity::Invalid;
        }
        if !dealers.insert(engine.dealings.by_hash[h].dealer) {
            return Validity::Invalid;
        }
        if engine.in_roster() && engine.dealings.verdicts.get(h) != Some(&true) {
            return Validity::Invalid;
        }
    }
    let Some(weighted) = weights(engine, entries) else {
        return Validity::Invalid;
    };
    match weighted_sum(engine, &weighted) {
        Some(mut sum) => {
            if sum.check_subgroup().is_ok() {
                Validity::Valid
            } else {
                Validity::Invalid
            }
        }
        None => Validity::Invalid,
    }
}

/// The qualified set is agreed: combine, then finish (Feldman) or publish this
/// node's public share (Pedersen).
pub fn on_decided(engine: &mut Engine, entries: Vec<MessageHash>) {
    let missing: Vec<MessageHash> = entries
        .iter()
        .filter(|h| !engine.dealings.by_hash.contains_key(*h))
        .copied()
        .collect();
    if !missing.is_empty() {
        engine.fetch_all(missing);
        return;
    }
    let Some(weighted) = weights(engine, &entries) else {
        return engine.fail(SessionFailure::Internal("weights of the agreed set"));
    };
    let mut qualified: Vec<OperatorAddress> = entries
        .iter()
        .map(|h| engine.dealings.by_hash[h].dealer)
        .collect();
    qualified.sort();
    let Some(mut sum) = weighted_sum(engine, &weighted) else {
        return engine.fail(SessionFailure::Internal("sum of the agreed commitments"));
    };
    if sum.check_subgroup().is_err() {
        // Voters refuse such a set; only a node that decided from a certificate
        // without judging could get here, and then the certificate is not ours.
        return engine.fail(SessionFailure::Internal("agreed commitments outside G2"));
    }
    let params = &engine.setup.params;
    if !params.players.contains(&engine.me) {
        return engine.finish(SessionOutcome::Departed {
            qualified_dealers: qualified,
        });
    }
    if !engine.in_roster() {
        // No share was encrypted to this node: it keeps its previous version.
        return engine.fail(SessionFailure::NotInRoster);
    }
    let mut value = Scalar::zero();
    let mut blinding = Scalar::zero();
    for (h, w) in &weighted {
        if !engine.dealings.verdicts.contains_key(h) {
            engine.check_own_shares_now();
        }
        let share = match (engine.dealings.verdicts.get(h), engine.dealings.own.get(h)) {
            (Some(true), Some(Some(s))) => s,
            // Proven faulty by this node: its share comes from the other players
            // (`engine::recover`); the session deadline bounds the wait.
            _ if engine.awaits_recovery(h) => return,
            _ => {
                let dealer = engine.dealings.by_hash[h].dealer;
                return engine.fail(SessionFailure::MissingShare(dealer));
            }
        };
        value = &value + &(w * &share.value);
        blinding = &blinding + &(w * &share.blinding);
    }
    let share = PedersenShare { value, blinding };
    engine.finals = Some(Final {
        weighted,
        qualified,
        sum,
        share: Some(share),
        public: Default::default(),
    });
    match engine.setup.params.mode {
        VssMode::Feldman => {
            let f = engine.finals.as_ref().expect("just set");
            let commitment = f.sum.clone();
            finish_version(engine, commitment);
        }
        VssMode::Pedersen => {
            engine.set_phase(Phase::PublicShares);
            publish_public_share(engine);
            for m in engine.take_early_public() {
                let _ = on_public_share(engine, m);
            }
            step_public_shares(engine);
        }
    }
}

fn public_context(engine: &Engine, player: &OperatorAddress) -> Vec<u8> {
    let mut c = engine.hash.0.to_vec();
    c.extend_from_slice(player.as_bytes());
    c
}

fn publish_public_share(engine: &mut Engine) {
    let Some(share) = engine.finals.as_ref().and_then(|f| f.share.clone()) else {
        return;
    };
    let ctx = public_context(engine, &engine.me);
    let ps = PublicShare::new(&share, &ctx, &mut engine.rng);
    let body = Body::PublicShare(wire::PublicShareMsg {
        sessionTimestamp: engine.setup.params.timestamp.0,
        sessionHash: wire::word(engine.hash.0),
        player: wire::to_sol(&engine.me),
        point: wire::bytes(&ps.point.to_eip2537()),
        blinding: wire::word(ps.blinding.to_bytes_be()),
        proofCommitment: wire::bytes(&ps.proof.commitment.to_eip2537()),
        proofResponse: wire::word(ps.proof.response.to_bytes_be()),
    });
    engine.broadcast(body);
}

/// A public share: checked against the agreed sum, kept if valid.
pub fn on_public_share(engine: &mut Engine, message: SignedMessage) -> Result<(), Rejection> {
    let Ok(Body::PublicShare(m)) = Body::decode(&message.payload) else {
        return Err(Rejection::Malformed);
    };
    let player = wire::from_sol(&m.player);
    let Some(x) = engine
        .setup
        .params
        .players
        .evaluation_point(&player)
        .cloned()
    else {
        return Err(Rejection::WrongRole);
    };
    let point = G2Point::from_eip2537(&m.point).map_err(|_| Rejection::InvalidPoint)?;
    let r = G2Point::from_eip2537(&m.proofCommitment).map_err(|_| Rejection::InvalidPoint)?;
    let scalar = |w: &[u8; 32]| Scalar::from_bytes_be(w).map_err(|_| Rejection::NonCanonicalScalar);
    let ps = PublicShare {
        point,
        blinding: scalar(&m.blinding.0)?,
        proof: kms_crypto::vss::public_share::KnowledgeProof {
            commitment: r,
            response: scalar(&m.proofResponse.0)?,
        },
    };
    let ctx = public_context(engine, &player);
    let Some(base) = engine.base.as_ref().map(|b| *b.base()) else {
        return Err(Rejection::PhaseClosed);
    };
    let f = engine.finals.as_ref().ok_or(Rejection::PhaseClosed)?;
    let ok = verify_public_shares(
        &f.sum,
        &base,
        &[(x.clone(), ctx.as_slice(), &ps)],
        &mut engine.rng,
    )
    .is_ok();
    if !ok {
        return Err(Rejection::InvalidPublicShare);
    }
    if let Some(f) = engine.finals.as_mut() {
        f.public.entry(player).or_insert((x, ps));
    }
    Ok(())
}

/// Pedersen: with `t` valid public shares, the public polynomial.
pub fn step_public_shares(engine: &mut Engine) {
    let t = engine.setup.params.players.threshold();
    let Some(f) = engine.finals.as_ref() else {
        return;
    };
    if f.public.len() < t {
        return;
    }
    let Some(base) = engine.base.as_ref().map(|b| *b.base()) else {
        return;
    };
    let points: Vec<(Scalar, Scalar)> = f
        .public
        .values()
        .take(t)
        .map(|(x, ps)| (x.clone(), ps.blinding.clone()))
        .collect();
    match feldman_from_public_shares(&f.sum, &base, &points) {
        Ok(commitment) => finish_version(engine, commitment),
        Err(_) => engine.fail(SessionFailure::Internal(
            "public polynomial from public shares",
        )),
    }
}

fn finish_version(engine: &mut Engine, commitment: Commitment) {
    let params = &engine.setup.params;
    if let Some(previous) = &params.previous
        && commitment.constant() != previous.constant()
    {
        return engine.fail(SessionFailure::MasterKeyChanged);
    }
    let Some(f) = engine.finals.as_ref() else {
        return;
    };
    let Some(share) = f.share.as_ref().map(|s| s.value.clone()) else {
        return;
    };
    // The combining code's own check (it guards this code, not against anyone's
    // input: every summed share passed its check already).
    if let Some(x) = params.players.evaluation_point(&engine.me)
        && commitment.evaluate(x) != G2Point::mul_generator(&share)
    {
        return engine.fail(SessionFailure::Internal("share off the public polynomial"));
    }
    let version = KeyShareVersion {
        session_timestamp: params.timestamp,
        share,
        commitment,
        operator_set: params.players.addresses().copied().collect(),
        threshold: params.players.threshold(),
        qualified_dealers: f.qualified.clone(),
        mode: params.mode,
    };
    engine.finish(SessionOutcome::NewVersion(Box::new(version)));
}
