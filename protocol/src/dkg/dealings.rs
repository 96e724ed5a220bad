//! What a node knows about the session's dealings: each decoded once, checked for
//! what anyone can check (shape, points, the reshare constant), this node's own share
//! decrypted and verified, the acks of every player and the complaints proven.
//! Every verdict here is objective — the same data gives the same answer at every
//! node — except which messages have arrived yet.

use std::collections::{BTreeMap, BTreeSet};

use kms_crypto::poly::powers;
use kms_crypto::vss::encryption::{
    DleqProof, EncryptionPublicKey, EphemeralKey, ShareCiphertext, ShareContext, SharedKey,
    open_share, verify_shared_key,
};
use kms_crypto::vss::pedersen::PedersenShare;
use kms_crypto::{Commitment, G2Point, OperatorAddress, Scalar};
use rand_core::{CryptoRng, RngCore};

use super::ids::MessageHash;
use super::rejection::Rejection;
use super::roster::Keys;
use super::setup::Setup;
use super::shares::{BaseTable, check_one};
use super::wire::{Complaint, Dealing};
use crate::messages::SignedMessage;
use crate::session::VssMode;

/// A dealing decoded and checked for everything but the shares.
pub struct DecodedDealing {
    /// The signed message (served to peers that fetch it, and evidence).
    pub message: SignedMessage,
    /// Its dealer.
    pub dealer: OperatorAddress,
    /// The VSS commitment; subgroup check deferred to the output (see `SECURITY.md`).
    pub commitment: Commitment,
    /// Pedersen reshare: the blinding constant `b_0`.
    pub constant_blinding: Scalar,
    /// The dealing's ephemeral key `E`.
    pub ephemeral: EphemeralKey,
    /// Per player, the key announcement its share is encrypted to (zero: none).
    pub recipients: Vec<MessageHash>,
    /// Every player's ciphertext, in player order.
    pub ciphertexts: Vec<ShareCiphertext>,
}

fn scalar(w: &[u8; 32]) -> Result<Scalar, Rejection> {
    Scalar::from_bytes_be(w).map_err(|_| Rejection::NonCanonicalScalar)
}

/// Decodes a dealing and checks its shape and, in a reshare, its constant against
/// the previous public polynomial: `C_0 = λ_D·P(x_D)` (Feldman) or
/// `C_0 − b_0·H2 = λ_D·P(x_D)` (Pedersen). `weight` is `λ_D`; `constant_holds`
/// says [`reshare_constants_hold`] established the constant already. With the agreed
/// `roster`, its recipients must be the roster's announcements exactly; without
/// (evidence), a player's share words must be zero where its recipient is.
pub fn decode_dealing(
    setup: &Setup,
    roster: Option<&Keys>,
    message: SignedMessage,
    d: &Dealing,
    weight: Option<&Scalar>,
    base: Option<&BaseTable>,
    constant_holds: bool,
) -> Result<DecodedDealing, Rejection> {
    let params = &setup.params;
    let dealer = super::wire::from_sol(&d.dealer);
    if !params.dealers.contains(&dealer) {
        return Err(Rejection::WrongRole);
    }
    let n = params.players.len();
    let pedersen = params.mode == VssMode::Pedersen;
    if d.commitment.len() != params.players.threshold()
        || d.recipients.len() != n
        || d.shareValues.len() != n
        || d.shareBlindings.len() != if pedersen { n } else { 0 }
    {
        return Err(Rejection::WrongShape);
    }
    let recipients: Vec<MessageHash> = d.recipients.iter().map(|w| MessageHash(w.0)).collect();
    if let Some(roster) = roster {
        let expected = setup
            .players()
            .map(|(p, _)| roster.get(p).map_or(MessageHash::default(), |(h, _)| *h));
        if !recipients.iter().copied().eq(expected) {
            return Err(Rejection::WrongRecipients);
        }
    }
    let commitment = Commitment::from_eip2537_deferred(d.commitment.iter().map(|w| w.as_ref()))
        .map_err(|_| Rejection::InvalidPoint)?;
    let ephemeral =
        EphemeralKey::from_eip2537(&d.ephemeralKey).map_err(|_| Rejection::InvalidPoint)?;
    let mut ciphertexts = Vec::with_capacity(n);
    for (i, recipient) in recipients.iter().enumerate() {
        let value = d.shareValues[i].0;
        let blinding = if pedersen {
            d.shareBlindings[i].0
        } else {
            [0; 32]
        };
        // Canonical words only: one dealing, one meaning at every node.
        scalar(&value)?;
        scalar(&blinding)?;
        if *recipient == MessageHash::default() && (value != [0; 32] || blinding != [0; 32]) {
            return Err(Rejection::WrongShape);
        }
        ciphertexts.push(ShareCiphertext { value, blinding });
    }
    let constant_blinding = scalar(&d.constantBlinding.0)?;
    let reshare_pedersen = pedersen && params.previous.is_some();
    if !reshare_pedersen && !constant_blinding.is_zero() {
        return Err(Rejection::WrongShape);
    }
    if let (Some(previous), Some(weight), false) = (&params.previous, weight, constant_holds) {
        let x = params
            .dealers
            .evaluation_point(&dealer)
            .ok_or(Rejection::WrongRole)?;
        let expected = previous.evaluate(x).mul(weight);
        let constant = if reshare_pedersen {
            let base = base.ok_or(Rejection::PhaseClosed)?;
            commitment.constant().sub(&base.mul(&constant_blinding))
        } else {
            *commitment.constant()
        };
        if constant != expected {
            return Err(Rejection::WrongReshareConstant);
        }
    }
    Ok(DecodedDealing {
        message,
        dealer,
        commitment,
        constant_blinding,
        ephemeral,
        recipients,
        ciphertexts,
    })
}

/// Whether every one of a reshare's `dealings` has the right constant (see
/// [`decode_dealing`]), checked as one: with random 128-bit weights `ρ_D`,
/// `Σ ρ_D·C_D,0 − (Σ ρ_D·b_D)·H2 − Σ_k (Σ_D ρ_D·λ_D·x_D^k)·P_k = O`, one MSM of
/// `m + t + 1` points instead of one `t`-point evaluation per dealing. All scalars
/// are public. Only a `true` is used, to skip each dealing's exact check; on `false`
/// every dealing gets its exact check, so each verdict is the exact one at every
/// node. Sound because every `C_D,0` is first checked to be in G2 (the other points
/// are): a constant off by a small-order point would otherwise pass with the
/// probability that `ρ_D` is a multiple of that order (1/13 at best for the forger).
pub fn reshare_constants_hold<R: RngCore + CryptoRng + ?Sized>(
    setup: &Setup,
    weights: &BTreeMap<OperatorAddress, Scalar>,
    base: Option<&BaseTable>,
    dealings: &[&Dealing],
    rng: &mut R,
) -> bool {
    let params = &setup.params;
    let Some(previous) = &params.previous else {
        return false;
    };
    let pedersen = params.mode == VssMode::Pedersen;
    if dealings.is_empty() || (pedersen && base.is_none()) {
        return false;
    }
    let t = previous.threshold();
    let mut points = Vec::with_capacity(dealings.len() + t + 1);
    let mut scalars = Vec::with_capacity(dealings.len() + t + 1);
    let mut blinding = Scalar::zero();
    let mut columns = vec![Scalar::zero(); t];
    for d in dealings {
        let dealer = super::wire::from_sol(&d.dealer);
        let (Some(weight), Some(x), Some(word)) = (
            weights.get(&dealer),
            params.dealers.evaluation_point(&dealer),
            d.commitment.first(),
        ) else {
            return false;
        };
        let Ok(constant) = G2Point::from_eip2537_on_curve(word) else {
            return false;
        };
        let Ok(b) = Scalar::from_bytes_be(&d.constantBlinding.0) else {
            return false;
        };
        if !constant.in_subgroup() {
            return false;
        }
        let rho = Scalar::random_u128(rng);
        blinding = &blinding + &(&rho * &b);
        let rho_weight = &rho * weight;
        for (acc, xk) in columns.iter_mut().zip(powers(x, t)) {
            *acc = &*acc + &(&rho_weight * &xk);
        }
        points.push(constant);
        scalars.push(rho);
    }
    for (p, c) in previous.coefficients().iter().zip(columns) {
        points.push(*p);
        scalars.push(-c);
    }
    match (pedersen, base) {
        (true, Some(base)) => {
            points.push(*base.base().point());
            scalars.push(-blinding);
        }
        // Feldman constants have no blinding (`decode_dealing` refuses one).
        _ if !blinding.is_zero() => return false,
        _ => {}
    }
    G2Point::msm(&points, &scalars).is_ok_and(|p| p.is_identity())
}

/// What a complaint opens, checked against nothing but its own DLEQ proof.
pub enum Opening {
    /// The DLEQ proof does not tie the revealed key to the key the dealing encrypts
    /// the complainer's share to.
    BadProof,
    /// The proof holds: the complainer's evaluation point and its share as the
    /// revealed key opens it (`Err` if the ciphertext does not open to canonical
    /// scalars).
    Opened {
        /// The complainer's evaluation point.
        x: Scalar,
        /// The opened share.
        share: Result<PedersenShare, kms_crypto::CryptoError>,
    },
}

/// Opens the share a complaint is about, for the engine ([`check_complaint`]) and
/// for evidence checks alike; `pk` is the key of the announcement the dealing names
/// for the complainer (the caller resolves it). `Err` for a complaint that does not
/// decode or names no player of the session.
pub fn open_complaint(
    setup: &Setup,
    dealing: &DecodedDealing,
    c: &Complaint,
    pk: &EncryptionPublicKey,
) -> Result<Opening, Rejection> {
    let player = super::wire::from_sol(&c.player);
    let index = setup.player_index(&player).ok_or(Rejection::WrongRole)?;
    let key = SharedKey::from_eip2537(&c.sharedKey).map_err(|_| Rejection::InvalidPoint)?;
    let proof = DleqProof {
        challenge: c.challenge.0,
        response: scalar(&c.response.0)?,
    };
    let ctx = ShareContext {
        session_hash: setup.hash().0,
        dealer: dealing.dealer,
        player,
    };
    if !verify_shared_key(pk, &dealing.ephemeral, &key, &ctx, &proof) {
        return Ok(Opening::BadProof);
    }
    let x = setup
        .params
        .players
        .evaluation_point(&player)
        .ok_or(Rejection::WrongRole)?
        .clone();
    Ok(Opening::Opened {
        x,
        share: open_share(&key, &ctx, &dealing.ciphertexts[index]),
    })
}

/// Checks a complaint against the dealing it accuses: the DLEQ proof ties the
/// revealed key to the complainer's key in the agreed `roster` (which the dealing
/// names), and the share it opens fails its exact check. `Ok` means the dealer is
/// proven faulty.
pub fn check_complaint(
    setup: &Setup,
    roster: &Keys,
    dealing: &DecodedDealing,
    c: &Complaint,
    base: Option<&BaseTable>,
) -> Result<(), Rejection> {
    let player = super::wire::from_sol(&c.player);
    let (_, pk) = roster.get(&player).ok_or(Rejection::InvalidComplaint)?;
    match open_complaint(setup, dealing, c, pk)? {
        Opening::BadProof => Err(Rejection::InvalidComplaint),
        // A ciphertext that does not even open to canonical scalars is as invalid as
        // a share off the commitment.
        Opening::Opened { share: Err(_), .. } => Ok(()),
        Opening::Opened {
            x,
            share: Ok(share),
        } if !check_one(&x, &dealing.commitment, &share, base) => Ok(()),
        Opening::Opened { .. } => Err(Rejection::InvalidComplaint),
    }
}

/// Everything known about the dealings of one session.
#[derive(Default)]
pub struct Dealings {
    /// Decoded dealings by message hash.
    pub by_hash: BTreeMap<MessageHash, DecodedDealing>,
    /// Dealers whose first dealing arrived, with its hash.
    pub first: BTreeMap<OperatorAddress, MessageHash>,
    /// Dealers that signed two different dealings (provable equivocation).
    pub equivocators: BTreeSet<OperatorAddress>,
    /// This node's decrypted shares, by dealing (`None`: did not decrypt).
    pub own: BTreeMap<MessageHash, Option<PedersenShare>>,
    /// Own shares checked: `true` valid, `false` proven invalid.
    pub verdicts: BTreeMap<MessageHash, bool>,
    /// Acks per dealing.
    pub acks: BTreeMap<MessageHash, BTreeSet<OperatorAddress>>,
    /// Players whose ack bundle arrived.
    pub ackers: BTreeSet<OperatorAddress>,
    /// Reshare dealings whose constant a batch check established.
    pub constants_hold: BTreeSet<MessageHash>,
    /// Dealings with a proven complaint, with the complaint message.
    pub convicted: BTreeMap<MessageHash, SignedMessage>,
    /// Dealings whose commitment has a point outside G2 (found when a share batch
    /// failed): invalid from public data.
    pub outside_g2: BTreeSet<MessageHash>,
    /// The players that proved each dealing faulty (valid complaints).
    pub complainers: BTreeMap<MessageHash, BTreeSet<OperatorAddress>>,
}

impl Dealings {
    /// Whether a dealing can be part of an outcome as far as this node knows.
    pub fn usable(&self, h: &MessageHash) -> bool {
        self.by_hash
            .get(h)
            .is_some_and(|d| !self.equivocators.contains(&d.dealer))
            && !self.convicted.contains_key(h)
            && !self.outside_g2.contains(h)
    }

    /// The dealings this node would propose: usable, acked by at least `quorum`
    /// players, one per dealer, in hash order.
    pub fn candidate(&self, quorum: usize) -> Vec<MessageHash> {
        self.by_hash
            .keys()
            .filter(|h| self.usable(h))
            .filter(|h| self.acks.get(*h).map_or(0, BTreeSet::len) >= quorum)
            .copied()
            .collect()
    }
}
