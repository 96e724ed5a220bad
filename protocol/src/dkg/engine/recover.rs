//! Share recovery: a player whose share in an agreed dealing is invalid — its valid
//! complaint came too late to keep the dealing out — is not left without a share of
//! the version. Every other player holding a valid share of that dealing sends it,
//! encrypted to the victim's key in the agreed roster alone ([`wire::Recovery`]); the victim
//! checks each against the dealing's commitment and interpolates its own share from
//! `t` of them. Only shares of a dealer proven faulty (publicly, by the complaint)
//! are sent, and each only to the player that complained, so nothing is published
//! and the adversary learns only what its faulty dealer dealt.

use kms_crypto::poly::lagrange_coefficients_at;
use kms_crypto::vss::encryption::{DealingKey, EphemeralKey, ShareCiphertext, encrypt_share};
use kms_crypto::vss::pedersen::PedersenShare;

use super::*;

/// The context recovery pads are derived with: bound to the session and the dealing,
/// apart from every dealing's own share pads.
fn recovery_context(session: &SessionHash, dealing: &MessageHash) -> [u8; 32] {
    let mut h = Keccak256::new();
    h.update(b"EIGENKMS-V2-RECOVERY");
    h.update(session.0);
    h.update(dealing.0);
    h.finalize().into()
}

impl Engine {
    /// Whether this node waits for recovery of its share in dealing `h`: it proved
    /// the dealing faulty itself.
    pub(in crate::dkg) fn awaits_recovery(&self, h: &MessageHash) -> bool {
        self.dealings
            .complainers
            .get(h)
            .is_some_and(|c| c.contains(&self.me))
    }

    /// Helps every player that proved an agreed dealing faulty: this node's valid
    /// share of that dealing, encrypted to that player, once each.
    pub(in crate::dkg) fn help_recover(&mut self) {
        if self.replaying || !self.is_player() {
            return;
        }
        let Some(entries) = self.qual.decided_entries().cloned() else {
            return;
        };
        let mut sends = Vec::new();
        for h in &entries {
            let Some(victims) = self.dealings.complainers.get(h) else {
                continue;
            };
            let (Some(true), Some(Some(share))) =
                (self.dealings.verdicts.get(h), self.dealings.own.get(h))
            else {
                continue;
            };
            for v in victims {
                if *v != self.me && !self.helped.contains(&(*h, *v)) {
                    sends.push((*h, *v, share.clone()));
                }
            }
        }
        for (h, victim, share) in sends {
            self.helped.insert((h, victim));
            let Some((_, pk)) = self.roster.decided().and_then(|k| k.get(&victim)).cloned() else {
                continue;
            };
            let ctx = ShareContext {
                session_hash: recovery_context(&self.hash, &h),
                dealer: self.me,
                player: victim,
            };
            let e = DealingKey::generate(&mut self.rng);
            let ct = encrypt_share(&e, &pk, &ctx, &share);
            let body = Body::Recovery(wire::Recovery {
                sessionTimestamp: self.setup.params.timestamp.0,
                sessionHash: wire::word(self.hash.0),
                helper: wire::to_sol(&self.me),
                recipient: wire::to_sol(&victim),
                dealing: wire::word(h.0),
                ephemeralKey: wire::bytes(&e.public().to_eip2537()),
                value: wire::word(ct.value),
                blinding: wire::word(ct.blinding),
            });
            let message = body.sign(self.signer.as_ref());
            self.out.push(Action::Send {
                to: Recipient::One(victim),
                message,
            });
        }
    }

    /// A helper's share for this node: decrypted, checked against the dealing's
    /// commitment at the helper's point, kept; with `t` of them, this node's own
    /// share of the dealing.
    pub(super) fn on_recovery(&mut self, r: &wire::Recovery) -> Result<(), Rejection> {
        if wire::from_sol(&r.recipient) != self.me {
            return Err(Rejection::WrongRole);
        }
        let h = MessageHash(r.dealing.0);
        if !self.awaits_recovery(&h) {
            return Err(Rejection::PhaseClosed);
        }
        let helper = wire::from_sol(&r.helper);
        let (Some(d), Some(x_helper), Some(x_me)) = (
            self.dealings.by_hash.get(&h),
            self.setup.params.players.evaluation_point(&helper).cloned(),
            self.setup
                .params
                .players
                .evaluation_point(&self.me)
                .cloned(),
        ) else {
            return Err(Rejection::UnknownDealing);
        };
        let eph =
            EphemeralKey::from_eip2537(&r.ephemeralKey).map_err(|_| Rejection::InvalidPoint)?;
        let ctx = ShareContext {
            session_hash: recovery_context(&self.hash, &h),
            dealer: helper,
            player: self.me,
        };
        let ct = ShareCiphertext {
            value: r.value.0,
            blinding: r.blinding.0,
        };
        let share = decrypt_share(&self.encryption, &eph, &ctx, &ct)
            .map_err(|_| Rejection::NonCanonicalScalar)?;
        if !super::super::shares::check_one(&x_helper, &d.commitment, &share, self.base.as_ref()) {
            return Err(Rejection::InvalidRecovery);
        }
        let t = d.commitment.threshold();
        let points = self.recovered.entry(h).or_default();
        points.insert(helper, (x_helper, share));
        if points.len() < t || self.dealings.verdicts.get(&h) == Some(&true) {
            return Ok(());
        }
        let (xs, shares): (Vec<Scalar>, Vec<&PedersenShare>) =
            points.values().take(t).map(|(x, s)| (x.clone(), s)).unzip();
        let Ok(lambdas) = lagrange_coefficients_at(&x_me, &xs) else {
            return Ok(());
        };
        let mut value = Scalar::zero();
        let mut blinding = Scalar::zero();
        for (l, s) in lambdas.iter().zip(shares) {
            value = &value + &(l * &s.value);
            blinding = &blinding + &(l * &s.blinding);
        }
        let mine = PedersenShare { value, blinding };
        if super::super::shares::check_one(&x_me, &d.commitment, &mine, self.base.as_ref()) {
            self.dealings.own.insert(h, Some(mine));
            self.dealings.verdicts.insert(h, true);
        }
        Ok(())
    }
}
