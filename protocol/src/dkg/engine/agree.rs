//! The agreement instances (the Pedersen base, the qualified set): proposing,
//! judging, voting, relaying decisions, and fetching what a value names.

use super::*;

impl Engine {
    /// Signs and broadcasts `body`, and handles it as if received.
    pub(in crate::dkg) fn broadcast(&mut self, body: Body) {
        if self.replaying {
            // A replay only reads what was decided: a message of its own now could
            // contradict (by its signature's randomness) one it sent in the session.
            return;
        }
        let message = body.sign(self.signer.as_ref());
        self.out.push(Action::Send {
            to: Recipient::All,
            message: message.clone(),
        });
        if let Err(e) = self.handle_own(message)
            && !e.is_benign()
        {
            debug_assert!(false, "own message refused: {e:?}");
        }
    }

    pub(super) fn fetch(&mut self, to: Recipient, hashes: Vec<MessageHash>) {
        // Ask one peer once, then (if that is not enough) everyone once: a Byzantine
        // proposer that names a dealing and withholds it cannot keep it from anyone.
        let all = to == Recipient::All;
        let hashes: Vec<_> = hashes
            .into_iter()
            .filter(|h| match self.fetched.get(h) {
                None => {
                    self.fetched.insert(*h, all);
                    true
                }
                Some(false) if all => {
                    self.fetched.insert(*h, true);
                    true
                }
                Some(_) => false,
            })
            .collect();
        if hashes.is_empty() {
            return;
        }
        let body = Body::Fetch(wire::Fetch {
            sessionTimestamp: self.setup.params.timestamp.0,
            sessionHash: wire::word(self.hash.0),
            requester: wire::to_sol(&self.me),
            hashes: hashes.iter().map(|h| wire::word(h.0)).collect(),
        });
        let message = body.sign(self.signer.as_ref());
        self.out.push(Action::Send { to, message });
    }

    /// Fetches from everyone.
    pub(in crate::dkg) fn fetch_all(&mut self, hashes: Vec<MessageHash>) {
        self.fetch(Recipient::All, hashes);
    }

    /// The setup phase: the roster and, in Pedersen mode, the base; dealing starts
    /// once both are agreed.
    pub(super) fn step_setup(&mut self) {
        self.step_roster();
        if self.base.is_none() {
            self.step_coin();
        }
        if self.ready_to_deal() {
            self.enter_deal();
        }
    }

    /// Dealing starts: dealings that arrived early are checked now.
    fn enter_deal(&mut self) {
        self.set_phase(Phase::Deal);
        self.deal_started_ms = self.now;
        let early = std::mem::take(&mut self.early_dealings);
        let bodies: Vec<(MessageHash, Body)> = early
            .iter()
            .filter_map(|m| Some((MessageHash(m.hash), Body::decode(&m.payload).ok()?)))
            .collect();
        let dealings: Vec<(MessageHash, &wire::Dealing)> = bodies
            .iter()
            .filter_map(|(h, b)| match b {
                Body::Dealing(d) => Some((*h, d)),
                _ => None,
            })
            .collect();
        self.check_constants(&dealings);
        for m in early {
            let _ = self.on_dealing(m);
        }
    }

    /// The roster: this node's list once it holds every player's key or at the key
    /// deadline, the agreement once a quorum's lists are in, then the decision.
    fn step_roster(&mut self) {
        let is_player = self.is_player();
        let phase_ms = self.setup.params.schedule.phase_ms;
        let start = self.setup.params.schedule.start_ms;
        let n = self.setup.params.players.len();
        if is_player
            && !self.listed
            && (self.roster.key_count() == n || self.now >= start + phase_ms / 2)
        {
            self.listed = true;
            let keys = self.roster.listing(self.admitted.as_ref());
            let body = Body::KeysSeen(wire::KeysSeen {
                sessionTimestamp: self.setup.params.timestamp.0,
                sessionHash: wire::word(self.hash.0),
                player: wire::to_sol(&self.me),
                keys: keys.iter().map(|h| wire::word(h.0)).collect(),
            });
            self.broadcast(body);
        }
        let now = self.now;
        if !self.roster_instance.started && (self.roster.seen_count() >= self.quorum || !is_player)
        {
            self.roster_instance.start(now);
            let early = std::mem::take(&mut self.roster_instance.early);
            for (_, m) in early {
                let _ = self.reroute(InstanceId::Roster, m);
            }
        }
        self.drive(InstanceId::Roster);
        if self.roster.decided().is_none()
            && let Some(entries) = self.roster_instance.decided_entries().cloned()
        {
            match self.roster.check(&entries, 1) {
                RosterCheck::Valid => {
                    self.roster.decide(&entries);
                }
                RosterCheck::Missing(m) if m.iter().any(|h| self.inbox.holds_hash(h)) => {
                    self.flush();
                }
                RosterCheck::Missing(m) => self.fetch(Recipient::All, m),
                RosterCheck::Invalid => {}
            }
        }
    }

    pub(super) fn step_coin(&mut self) {
        let Some(coin) = self.coin.as_ref() else {
            return;
        };
        let is_player = self.is_player();
        if is_player && !self.revealed && coin.commit_count() >= self.quorum {
            let me = self.me;
            let commit = self
                .messages
                .iter()
                .find(|(_, m)| {
                    m.signer == me
                        && Body::decode(&m.payload).is_ok_and(|b| b.kind() == Kind::CoinCommit)
                })
                .map(|(h, _)| *h);
            if let Some(commit) = commit {
                self.revealed = true;
                let body = Body::CoinReveal(wire::CoinReveal {
                    sessionTimestamp: self.setup.params.timestamp.0,
                    sessionHash: wire::word(self.hash.0),
                    operator: wire::to_sol(&me),
                    commitMessage: wire::word(commit.0),
                    value: wire::word(coin.my_value()),
                });
                self.broadcast(body);
            }
        }
        let ready = self
            .coin
            .as_ref()
            .is_some_and(|c| c.reveal_count() >= self.quorum);
        let now = self.now;
        if let Some(inst) = self.coin_instance.as_mut()
            && !inst.started
            && (ready || !is_player)
        {
            inst.start(now);
            let early = std::mem::take(&mut inst.early);
            for (_, m) in early {
                let _ = self.reroute(InstanceId::Coin, m);
            }
        }
        self.drive(InstanceId::Coin);
        let decided = self
            .coin_instance
            .as_ref()
            .and_then(|i| i.decided_entries().cloned());
        if let Some(entries) = decided {
            let coin = self.coin.as_ref().expect("Pedersen sessions have a coin");
            if let CoinCheck::Missing(m) = coin.check(&entries, 1)
                && m.iter().any(|h| self.inbox.holds_hash(h))
            {
                self.flush();
            }
            let coin = self.coin.as_ref().expect("Pedersen sessions have a coin");
            match coin.check(&entries, 1) {
                CoinCheck::Valid => {
                    if let Some(base) = coin.base(&entries) {
                        self.base = Some(BaseTable::new(base));
                    }
                }
                CoinCheck::Missing(m) => self.fetch(Recipient::All, m),
                CoinCheck::Invalid => {}
            }
        }
    }

    /// Proposals whose justification was short when they arrived, tried again.
    pub(super) fn retry_proposals(&mut self, id: InstanceId) {
        let Ok(inst) = self.instance(id) else {
            return;
        };
        let waiting = std::mem::take(&mut inst.waiting);
        for (author, m) in waiting {
            let _ = self.feed(id, author, m);
        }
    }

    /// Hands an authenticated proposal or vote to its agreement instance (held until
    /// the instance starts). A re-proposal goes in with the signers of the prevotes
    /// behind its `valid_round` that this node holds; one whose justification is not
    /// all in yet waits for the rest (the proposer sends them along).
    pub(super) fn feed(
        &mut self,
        id: InstanceId,
        author: OperatorAddress,
        m: SignedMessage,
    ) -> Result<(), Rejection> {
        let body = Body::decode(&m.payload)?;
        let now = self.now;
        let hash = self.hash;
        let quorum = self.quorum;
        let players = self.setup.params.players.len();
        let inst = self.instance(id)?;
        if !inst.started {
            if inst.early.len() < 64 * players {
                inst.early.push((author, m));
            }
            return Ok(());
        }
        match body {
            Body::Proposal(p) => {
                let entries: Vec<MessageHash> =
                    p.entries.iter().map(|w| MessageHash(w.0)).collect();
                let value = value_id(&hash, id, &entries);
                let valid_round = p.validRound.checked_sub(1).map(agreement::Round);
                let justification: Vec<OperatorAddress> = valid_round
                    .and_then(|r| inst.prevotes.get(&(r.0, value)))
                    .map(|s| s.iter().copied().collect())
                    .unwrap_or_default();
                if valid_round.is_some() && justification.len() < quorum {
                    if inst.waiting.len() < 4 * players {
                        inst.waiting.push((author, m));
                    }
                    return Ok(());
                }
                let proposal = agreement::Proposal {
                    round: agreement::Round(p.round),
                    value,
                    valid_round,
                };
                inst.agreement
                    .on_proposal(author, proposal, m, &justification, now)
                    .map_err(Rejection::from)
            }
            Body::Vote(v) => {
                let kind = if v.step == 1 {
                    agreement::VoteKind::Prevote
                } else {
                    agreement::VoteKind::Precommit
                };
                let vote = agreement::Vote {
                    round: agreement::Round(v.round),
                    kind,
                    value: (v.value.0 != [0; 32]).then_some(ValueId(v.value.0)),
                };
                inst.agreement
                    .on_vote(author, vote, m, now)
                    .map_err(Rejection::from)
            }
            _ => Ok(()),
        }
    }

    /// Moves an agreement instance along: its messages go out, proposals owed are
    /// made when this node has a value, validity is judged.
    pub(super) fn drive(&mut self, id: InstanceId) {
        let started = match id {
            InstanceId::Coin => self.coin_instance.as_ref().is_some_and(|i| i.started),
            InstanceId::Roster => self.roster_instance.started,
            InstanceId::Qual => self.qual.started,
        };
        if !started {
            return;
        }
        for _ in 0..8 {
            let Ok(inst) = self.instance(id) else {
                return;
            };
            let outs = inst.outputs();
            let owed = inst.owed;
            let unjudged = std::mem::take(&mut inst.unjudged);
            let mut progressed = !outs.is_empty();
            for o in outs {
                self.emit(id, o);
            }
            if owed.is_some() && id == InstanceId::Qual {
                self.screen_candidate();
            }
            if let Some(round) = owed
                && let Some(entries) = self.proposal_value(id)
            {
                let value = value_id(&self.hash, id, &entries);
                let now = self.now;
                let Ok(inst) = self.instance(id) else {
                    return;
                };
                inst.owed = None;
                inst.values.entry(value).or_insert(entries);
                let _ = inst.agreement.propose(round, value, now);
                progressed = true;
            }
            let mut still = Vec::new();
            for v in unjudged {
                match self.judge(id, v) {
                    Some(verdict) => {
                        let now = self.now;
                        if let Ok(inst) = self.instance(id) {
                            inst.agreement.set_validity(v, verdict, now);
                        }
                        progressed = true;
                    }
                    None => still.push(v),
                }
            }
            if let Ok(inst) = self.instance(id) {
                inst.unjudged.extend(still);
            }
            self.relay_decision(id);
            if !progressed {
                break;
            }
        }
    }

    /// Signs and sends an agreement message.
    pub(super) fn emit(&mut self, id: InstanceId, o: Output<SignedMessage>) {
        let ts = self.setup.params.timestamp.0;
        let sh = wire::word(self.hash.0);
        let me = wire::to_sol(&self.me);
        let body = match o {
            Output::SendProposal {
                proposal: p,
                justification,
            } => {
                // The prevotes behind a re-proposal go first, so that receivers can
                // count them (an equivocator may have shown each to one node only).
                for (_, m) in justification {
                    self.out.push(Action::Send {
                        to: Recipient::All,
                        message: m,
                    });
                }
                let Some(entries) = self
                    .instance(id)
                    .ok()
                    .and_then(|i| i.values.get(&p.value).cloned())
                else {
                    return;
                };
                Body::Proposal(wire::Proposal {
                    sessionTimestamp: ts,
                    sessionHash: sh,
                    proposer: me,
                    instance: id as u8,
                    round: p.round.0,
                    validRound: p.valid_round.map_or(0, |r| r.0 + 1),
                    entries: entries.iter().map(|h| wire::word(h.0)).collect(),
                })
            }
            Output::SendVote(v) => Body::Vote(wire::Vote {
                sessionTimestamp: ts,
                sessionHash: sh,
                voter: me,
                instance: id as u8,
                round: v.round.0,
                step: match v.kind {
                    agreement::VoteKind::Prevote => 1,
                    agreement::VoteKind::Precommit => 2,
                },
                value: wire::word(v.value.map_or([0; 32], |x| x.0)),
            }),
            Output::Equivocation { first, second, .. } => {
                self.out
                    .push(Action::Evidence(Box::new(Evidence::Equivocation {
                        first,
                        second,
                    })));
                return;
            }
            _ => return,
        };
        self.broadcast(body);
    }

    /// After a decision, sends the certificate (and the proposal) to everyone once,
    /// so that a node that missed votes decides too; fetches the proposal if this
    /// node decided without it.
    pub(super) fn relay_decision(&mut self, id: InstanceId) {
        let Ok(inst) = self.instance(id) else {
            return;
        };
        let Some((value, cert)) = inst.decided.clone() else {
            return;
        };
        if inst.relayed {
            return;
        }
        inst.relayed = true;
        let has_value = inst.values.contains_key(&value);
        for (_, m) in cert.precommits {
            self.out.push(Action::Send {
                to: Recipient::All,
                message: m,
            });
        }
        match self
            .proposal_of
            .get(&value)
            .and_then(|h| self.messages.get(h))
        {
            Some(p) => self.out.push(Action::Send {
                to: Recipient::All,
                message: p.clone(),
            }),
            None if !has_value => self.fetch(Recipient::All, vec![MessageHash(value.0)]),
            None => {}
        }
    }

    pub(super) fn proposal_value(&self, id: InstanceId) -> Option<Vec<MessageHash>> {
        match id {
            InstanceId::Coin => {
                let c = self.coin.as_ref()?.candidate();
                (c.len() >= self.quorum).then_some(c)
            }
            InstanceId::Roster => {
                // Every player's list, or the quorum's at the list deadline.
                let c = self.roster.candidate();
                let s = &self.setup.params.schedule;
                let late = self.now >= s.start_ms + s.phase_ms;
                (c.len() >= self.quorum && (c.len() == self.setup.params.players.len() || late))
                    .then_some(c)
            }
            InstanceId::Qual => {
                let candidate = self.dealings.candidate(self.quorum);
                let phase_ms = self.setup.params.schedule.phase_ms;
                // Every player of the roster acks or complains.
                let n = self.roster.decided().map_or(0, |k| k.len());
                // Propose at once when every player has spoken about every dealing
                // (a slow honest player's complaint then cannot be missed); else at
                // the ack deadline with what is in.
                let everyone = self.dealings.ackers.len() == n
                    && self.dealings.first.len() == self.setup.params.dealers.len()
                    && self.dealings.first.values().all(|h| {
                        self.dealings.convicted.contains_key(h)
                            || self.dealings.acks.get(h).is_some_and(|a| a.len() == n)
                    });
                let late = self.now >= self.deal_started_ms + 2 * phase_ms;
                (candidate.len() >= self.needed() && (everyone || late)).then_some(candidate)
            }
        }
    }

    /// Whether a proposed value is valid for this node; `None` while something it
    /// needs is being fetched.
    pub(super) fn judge(&mut self, id: InstanceId, v: ValueId) -> Option<Validity> {
        let entries = self.instance(id).ok()?.values.get(&v)?.clone();
        match id {
            InstanceId::Coin => match self.coin.as_ref()?.check(&entries, self.quorum) {
                CoinCheck::Valid => Some(Validity::Valid),
                CoinCheck::Invalid => Some(Validity::Invalid),
                CoinCheck::Missing(m) if m.iter().any(|h| self.inbox.holds_hash(h)) => {
                    self.flush();
                    self.judge(id, v)
                }
                CoinCheck::Missing(m) => {
                    let to = self.proposer_of(id, v);
                    self.fetch(to, m);
                    None
                }
            },
            InstanceId::Roster => match self.roster.check(&entries, self.quorum) {
                RosterCheck::Valid => Some(Validity::Valid),
                RosterCheck::Invalid => Some(Validity::Invalid),
                RosterCheck::Missing(m) if m.iter().any(|h| self.inbox.holds_hash(h)) => {
                    self.flush();
                    self.judge(id, v)
                }
                // The proposer may be the one withholding what its value names.
                RosterCheck::Missing(m) => {
                    self.fetch_all(m);
                    None
                }
            },
            InstanceId::Qual => {
                let missing: Vec<_> = entries
                    .iter()
                    .filter(|h| !self.dealings.by_hash.contains_key(*h))
                    .copied()
                    .collect();
                if missing.iter().any(|h| self.inbox.holds_hash(h)) {
                    self.flush();
                    return self.judge(id, v);
                }
                if !missing.is_empty() {
                    let to = self.proposer_of(id, v);
                    self.fetch(to, missing);
                    return None;
                }
                if self.is_player() {
                    self.check_own_shares();
                }
                Some(combine::judge_qual(self, &entries))
            }
        }
    }

    pub(super) fn proposer_of(&self, _id: InstanceId, v: ValueId) -> Recipient {
        self.proposal_of
            .get(&v)
            .and_then(|h| self.messages.get(h))
            .map_or(Recipient::All, |m| Recipient::One(m.signer))
    }
}
