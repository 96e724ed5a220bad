//! The dealer: one dealing per session, broadcast whole. The commitment, the
//! dealing's ephemeral key and every player's share encrypted to that player's key in
//! the agreed roster travel in one signed message, so there is no private channel to
//! lose, and a "missing share" is answered by the ciphertext everyone already holds.

use kms_crypto::vss::encryption::{DealingKey, ShareContext, encrypt_share};
use kms_crypto::vss::feldman::FeldmanDealing;
use kms_crypto::vss::pedersen::{PedersenBase, PedersenDealing, PedersenShare};
use kms_crypto::{OperatorAddress, Scalar};
use rand_core::{CryptoRng, RngCore};

use super::roster::Keys;
use super::setup::Setup;
use super::wire::{Body, Dealing, bytes, to_sol, word};
use crate::error::ProtocolError;
use crate::messages::{SignedMessage, encode_commitment};
use crate::session::VssMode;
use kms_crypto::signer::OperatorSigner;

/// Builds and signs this dealer's dealing to the players of the agreed roster `keys`
/// (the others' words are zero). `secret` is what it shares: a random scalar in a
/// DKG, `λ_D·s_D` (its weighted current share) in a reshare. The polynomials live
/// only in this function; nothing a dealer holds afterwards needs them, since v2
/// never asks a dealer to reveal anything.
pub fn deal<R: RngCore + CryptoRng + ?Sized>(
    setup: &Setup,
    keys: &Keys,
    me: OperatorAddress,
    signer: &dyn OperatorSigner,
    secret: Scalar,
    base: Option<&PedersenBase>,
    rng: &mut R,
) -> Result<SignedMessage, ProtocolError> {
    let params = &setup.params;
    let t = params.players.threshold();
    let session_hash = setup.hash();
    let key = DealingKey::generate(rng);
    let ephemeral = key.public();
    let mut values = Vec::with_capacity(params.players.len());
    let mut blindings = Vec::new();
    let recipients = setup
        .players()
        .map(|(p, _)| word(keys.get(p).map_or([0; 32], |(h, _)| h.0)))
        .collect();
    let (commitment, constant_blinding) = match params.mode {
        VssMode::Feldman => {
            let d = FeldmanDealing::new(secret, t, rng)
                .map_err(|_| ProtocolError::InvalidSession("threshold"))?;
            for (player, x) in setup.players() {
                let Some((_, pk)) = keys.get(player) else {
                    values.push(word([0; 32]));
                    continue;
                };
                let share = PedersenShare {
                    value: d.share(x),
                    blinding: Scalar::zero(),
                };
                let ct = encrypt_share(
                    &key,
                    pk,
                    &ShareContext {
                        session_hash: session_hash.0,
                        dealer: me,
                        player: *player,
                    },
                    &share,
                );
                values.push(word(ct.value));
            }
            (d.commitment().clone(), [0u8; 32])
        }
        VssMode::Pedersen => {
            let base = base.ok_or(ProtocolError::InvalidSession(
                "Pedersen dealing before the base is agreed",
            ))?;
            let d = PedersenDealing::new(secret, t, base, rng)
                .map_err(|_| ProtocolError::InvalidSession("threshold"))?;
            for (player, x) in setup.players() {
                let Some((_, pk)) = keys.get(player) else {
                    values.push(word([0; 32]));
                    blindings.push(word([0; 32]));
                    continue;
                };
                let share = d.share(x);
                let ct = encrypt_share(
                    &key,
                    pk,
                    &ShareContext {
                        session_hash: session_hash.0,
                        dealer: me,
                        player: *player,
                    },
                    &share,
                );
                values.push(word(ct.value));
                blindings.push(word(ct.blinding));
            }
            // A reshare dealer publishes b_0 so that everyone can check its constant
            // (`C_0 − b_0·H2 = λ_D·P(x_D)`); in a DKG the constant stays hidden.
            let b0 = if params.previous.is_some() {
                d.blinding_polynomial().constant().to_bytes_be()
            } else {
                [0u8; 32]
            };
            (d.commitment().clone(), b0)
        }
    };
    let body = Body::Dealing(Dealing {
        sessionTimestamp: params.timestamp.0,
        sessionHash: word(session_hash.0),
        dealer: to_sol(&me),
        commitment: encode_commitment(&commitment),
        constantBlinding: word(constant_blinding),
        ephemeralKey: bytes(&ephemeral.to_eip2537()),
        recipients,
        shareValues: values,
        shareBlindings: blindings,
    });
    Ok(body.sign(signer))
}
