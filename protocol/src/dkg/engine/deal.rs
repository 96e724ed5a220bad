//! The dealer and player roles: this node's dealing, the dealings it receives,
//! its own share checks, acks and complaints, and public shares.

use super::*;

impl Engine {
    pub(super) fn on_dealing(&mut self, message: SignedMessage) -> Result<(), Rejection> {
        if !self.ready_to_deal() {
            // Checked against the roster (and the base) once they are agreed.
            if self.early_dealings.len() < 2 * self.setup.params.dealers.len() {
                self.early_dealings.push(message);
            }
            return Ok(());
        }
        let Ok(Body::Dealing(d)) = Body::decode(&message.payload) else {
            return Err(Rejection::Malformed);
        };
        let hash = MessageHash(message.hash);
        let dealer = wire::from_sol(&d.dealer);
        let decoded = decode_dealing(
            &self.setup,
            self.roster.decided(),
            message.clone(),
            &d,
            self.weights.get(&dealer),
            self.base.as_ref(),
            self.dealings.constants_hold.contains(&hash),
        );
        let decoded = match decoded {
            Ok(x) => x,
            Err(Rejection::WrongReshareConstant) => {
                self.out
                    .push(Action::Evidence(Box::new(Evidence::WrongReshareConstant {
                        dealing: message,
                    })));
                return Err(Rejection::WrongReshareConstant);
            }
            Err(e) => return Err(e),
        };
        match self.dealings.first.get(&dealer) {
            None => {
                self.dealings.first.insert(dealer, hash);
            }
            Some(first) if *first != hash => {
                if self.dealings.equivocators.insert(dealer)
                    && let Some(f) = self.dealings.by_hash.get(first)
                {
                    self.out
                        .push(Action::Evidence(Box::new(Evidence::Equivocation {
                            first: f.message.clone(),
                            second: message,
                        })));
                }
                return Err(Rejection::Equivocation);
            }
            Some(_) => {}
        }
        if let Some(index) = self.setup.player_index(&self.me)
            && decoded.recipients[index] != MessageHash::default()
        {
            let ctx = ShareContext {
                session_hash: self.hash.0,
                dealer,
                player: self.me,
            };
            let share = decrypt_share(
                &self.encryption,
                &decoded.ephemeral,
                &ctx,
                &decoded.ciphertexts[index],
            )
            .ok();
            self.dealings.own.insert(hash, share);
        }
        self.dealings.by_hash.insert(hash, decoded);
        // Complaints that waited for this dealing.
        let waiting = std::mem::take(&mut self.waiting_complaints);
        for c in waiting {
            let _ = self.on_complaint(c);
        }
        Ok(())
    }

    pub(super) fn on_complaint(&mut self, message: SignedMessage) -> Result<(), Rejection> {
        let Ok(Body::Complaint(c)) = Body::decode(&message.payload) else {
            return Err(Rejection::Malformed);
        };
        let dealing = MessageHash(c.dealing.0);
        let Some(d) = self.dealings.by_hash.get(&dealing) else {
            if self.waiting_complaints.len() < 4 * self.setup.params.players.len() {
                self.fetch(Recipient::One(wire::from_sol(&c.player)), vec![dealing]);
                self.waiting_complaints.push(message);
            }
            return Err(Rejection::UnknownDealing);
        };
        if d.dealer != wire::from_sol(&c.dealer) {
            return Err(Rejection::InvalidComplaint);
        }
        let player = wire::from_sol(&c.player);
        let (Some(roster), Some(index)) = (self.roster.decided(), self.setup.player_index(&player))
        else {
            return Err(Rejection::InvalidComplaint);
        };
        check_complaint(&self.setup, roster, d, &c, self.base.as_ref())?;
        let Some(key) = self.messages.get(&d.recipients[index]).cloned() else {
            return Err(Rejection::InvalidComplaint);
        };
        // Every proven victim, for share recovery if the dealing is agreed anyway.
        self.dealings
            .complainers
            .entry(dealing)
            .or_default()
            .insert(wire::from_sol(&c.player));
        if !self.dealings.convicted.contains_key(&dealing) {
            self.out
                .push(Action::Evidence(Box::new(Evidence::InvalidShare {
                    dealing: d.message.clone(),
                    complaint: message.clone(),
                    key,
                })));
            self.dealings.convicted.insert(dealing, message);
        }
        Ok(())
    }

    pub(super) fn on_public_share(&mut self, message: SignedMessage) -> Result<(), Rejection> {
        combine::on_public_share(self, message)
    }

    /// Judges own shares not judged yet.
    pub(in crate::dkg) fn check_own_shares_now(&mut self) {
        self.check_own_shares();
    }

    pub(super) fn step_deal(&mut self) {
        let phase_ms = self.setup.params.schedule.phase_ms;
        // Deal once.
        if let (Some(roster), Some(secret)) = (self.roster.decided(), self.secret.take()) {
            let base = self.base.as_ref().map(|b| *b.base());
            match super::super::dealer::deal(
                &self.setup,
                roster,
                self.me,
                self.signer.as_ref(),
                secret,
                base.as_ref(),
                &mut self.dealing_rng,
            ) {
                Ok(m) => {
                    self.out.push(Action::Send {
                        to: Recipient::All,
                        message: m.clone(),
                    });
                    let _ = self.handle_own(m);
                }
                Err(_) => debug_assert!(false, "a checked session deals"),
            }
        }
        // Check own shares and ack once every dealer's dealing is in, or at the deal
        // deadline (and again for any dealing that arrives later).
        let all_in = self.dealings.first.len() == self.setup.params.dealers.len();
        let deadline = self.now >= self.deal_started_ms + phase_ms;
        if self.in_roster() && (all_in || deadline) {
            self.check_own_shares();
        }
        // Start the agreement on the qualified set when this node's verdicts are out.
        let now = self.now;
        if !self.qual.started && (!self.in_roster() || all_in || deadline) {
            self.phase = Phase::Agree;
            self.qual.start(now);
            let early = std::mem::take(&mut self.qual.early);
            for (_, m) in early {
                let _ = self.reroute(InstanceId::Qual, m);
            }
        }
        self.drive(InstanceId::Qual);
        self.help_recover();
        if self.finals.is_none()
            && let Some(entries) = self.qual.decided_entries().cloned()
        {
            combine::on_decided(self, entries);
        }
    }

    /// Decrypted shares not yet judged: one batched check; acks for the valid, a
    /// proven complaint for each invalid one.
    pub(super) fn check_own_shares(&mut self) {
        let pending: Vec<MessageHash> = self
            .dealings
            .own
            .keys()
            .filter(|h| !self.dealings.verdicts.contains_key(*h))
            .copied()
            .collect();
        if pending.is_empty() {
            return;
        }
        let Some(x) = self
            .setup
            .params
            .players
            .evaluation_point(&self.me)
            .cloned()
        else {
            return;
        };
        let mut items = Vec::new();
        let mut undecryptable = Vec::new();
        for h in &pending {
            match (&self.dealings.own[h], self.dealings.by_hash.get(h)) {
                (Some(s), Some(d)) => items.push((*h, &d.commitment, s)),
                _ => undecryptable.push(*h),
            }
        }
        let refs: Vec<_> = items.iter().map(|(_, c, s)| (*c, *s)).collect();
        let failures =
            match super::super::shares::verify_shares(&x, &refs, self.base.as_ref(), &mut self.rng)
            {
                Ok(()) => super::super::shares::Failures::default(),
                Err(f) => f,
            };
        let bad: BTreeSet<usize> = failures.invalid.iter().copied().collect();
        let outside: BTreeSet<usize> = failures.outside_g2.iter().copied().collect();
        let mut valid = Vec::new();
        let mut invalid = undecryptable;
        let mut outside_g2 = Vec::new();
        for (i, (h, _, _)) in items.iter().enumerate() {
            if outside.contains(&i) {
                outside_g2.push(*h);
            } else if bad.contains(&i) {
                invalid.push(*h);
            } else {
                valid.push(*h);
            }
        }
        for h in &valid {
            self.dealings.verdicts.insert(*h, true);
        }
        for h in invalid.iter().chain(&outside_g2) {
            self.dealings.verdicts.insert(*h, false);
        }
        // Publicly invalid: never proposed, never judged valid, never complained
        // about (no share is opened for it).
        self.dealings.outside_g2.extend(outside_g2);
        let new_acks: Vec<MessageHash> = valid
            .into_iter()
            .filter(|h| self.acked.insert(*h))
            .collect();
        if !new_acks.is_empty() {
            let body = Body::Acks(wire::Acks {
                sessionTimestamp: self.setup.params.timestamp.0,
                sessionHash: wire::word(self.hash.0),
                player: wire::to_sol(&self.me),
                dealings: new_acks.iter().map(|h| wire::word(h.0)).collect(),
            });
            self.broadcast(body);
        }
        for h in invalid {
            if self.complained.insert(h) {
                self.complain(h);
            }
        }
    }

    pub(super) fn complain(&mut self, h: MessageHash) {
        let Some(d) = self.dealings.by_hash.get(&h) else {
            return;
        };
        let ctx = ShareContext {
            session_hash: self.hash.0,
            dealer: d.dealer,
            player: self.me,
        };
        let (key, proof) = kms_crypto::vss::encryption::reveal_shared_key(
            &self.encryption,
            &d.ephemeral,
            &ctx,
            &mut self.rng,
        );
        let body = Body::Complaint(wire::Complaint {
            sessionTimestamp: self.setup.params.timestamp.0,
            sessionHash: wire::word(self.hash.0),
            player: wire::to_sol(&self.me),
            dealer: wire::to_sol(&d.dealer),
            dealing: wire::word(h.0),
            sharedKey: wire::bytes(&key.to_eip2537()[..]),
            challenge: wire::word(proof.challenge),
            response: wire::word(proof.response.to_bytes_be()),
        });
        self.broadcast(body);
    }

    /// The value this node proposes, if it is ready to.
    /// Before proposing a set: if the sum of the candidate's commitments is outside
    /// G2 (every voter would refuse it), finds the dealings with a commitment outside
    /// G2 — public data — and leaves them out, so that one dealer planting torsion
    /// that its acking players' checks cannot see does not stall the agreement.
    pub(super) fn screen_candidate(&mut self) {
        let candidate = self.dealings.candidate(self.quorum);
        if candidate.is_empty() || self.screened.as_ref() == Some(&candidate) {
            return;
        }
        let in_g2 = combine::weights(self, &candidate)
            .and_then(|w| combine::weighted_sum(self, &w))
            .is_some_and(|mut sum| sum.check_subgroup().is_ok());
        if !in_g2 {
            let outside: Vec<MessageHash> = candidate
                .iter()
                .filter(|h| {
                    self.dealings
                        .by_hash
                        .get(*h)
                        .is_some_and(|d| d.commitment.subgroup_violation().is_some())
                })
                .copied()
                .collect();
            self.dealings.outside_g2.extend(outside);
        }
        self.screened = Some(self.dealings.candidate(self.quorum));
    }
}
