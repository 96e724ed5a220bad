//! Inbound messages: admission (session, role, signature, quotas), batched
//! signature checks, and routing to the role each message concerns.

use super::*;

impl Engine {
    /// Reshare: the constants of authentic `dealings` checked as one batch; those it
    /// establishes skip their exact check in [`decode_dealing`] (a failing batch
    /// leaves every dealing to its exact check).
    pub(super) fn check_constants(&mut self, dealings: &[(MessageHash, &wire::Dealing)]) {
        let ready = self.setup.params.previous.is_some()
            && (self.setup.params.mode == VssMode::Feldman || self.base.is_some());
        if dealings.len() < 2 || !ready {
            return;
        }
        let ds: Vec<&wire::Dealing> = dealings.iter().map(|(_, d)| *d).collect();
        if super::super::dealings::reshare_constants_hold(
            &self.setup,
            &self.weights,
            self.base.as_ref(),
            &ds,
            &mut self.rng,
        ) {
            self.dealings
                .constants_hold
                .extend(dealings.iter().map(|(h, _)| *h));
        }
    }

    /// Checks the held messages' signatures as one batch and acts on the authentic
    /// ones in their order of arrival.
    pub(super) fn flush(&mut self) {
        if self.inbox.is_empty() {
            return;
        }
        let held = self.inbox.take();
        let ms: Vec<&SignedMessage> = held.iter().map(|h| &h.message).collect();
        let params = &self.setup.params;
        let valid = verify_all(
            &self.certificates,
            &ms,
            &[&params.players, &params.dealers],
            params.timestamp,
            &mut self.rng,
        );
        let dealings: Vec<(MessageHash, &wire::Dealing)> = held
            .iter()
            .zip(&valid)
            .filter_map(|(h, ok)| match (&h.body, ok) {
                (Body::Dealing(d), true) => Some((h.hash, d)),
                _ => None,
            })
            .collect();
        self.check_constants(&dealings);
        for (h, ok) in held.into_iter().zip(valid) {
            if !ok {
                self.refused.push(Rejection::BadSignature);
                continue;
            }
            if let Err(r) = self.accept(h.author, h.hash, h.message, h.body) {
                self.refused.push(r);
            }
        }
    }

    /// Everything about a message but its signature: it decodes, names this session,
    /// comes from an author with the role to send it, is new, and its author is within
    /// its budget.
    pub(super) fn admit(
        &self,
        message: &SignedMessage,
    ) -> Result<(OperatorAddress, MessageHash, Body), Rejection> {
        let params = &self.setup.params;
        let body = open_unverified(message, params.timestamp, &self.hash)?;
        let author = body.author();
        let role_ok = match body.kind() {
            Kind::Dealing => params.dealers.contains(&author),
            Kind::Fetch => params.dealers.contains(&author) || params.players.contains(&author),
            _ => params.players.contains(&author),
        };
        if !role_ok {
            return Err(Rejection::WrongRole);
        }
        let hash = MessageHash(message.hash);
        if self.messages.contains_key(&hash) {
            return Err(Rejection::Duplicate);
        }
        if self.per_author.get(&author).copied().unwrap_or(0) >= MESSAGES_PER_AUTHOR {
            return Err(Rejection::RateLimited);
        }
        Ok((author, hash, body))
    }

    /// Acts on an authentic message (its signature checked, or this node's own).
    pub(super) fn accept(
        &mut self,
        author: OperatorAddress,
        hash: MessageHash,
        message: SignedMessage,
        body: Body,
    ) -> Result<(), Rejection> {
        // Again for held messages: a copy may have been accepted meanwhile.
        if self.messages.contains_key(&hash) {
            return Err(Rejection::Duplicate);
        }
        let count = self.per_author.entry(author).or_default();
        if *count >= MESSAGES_PER_AUTHOR {
            return Err(Rejection::RateLimited);
        }
        *count += 1;
        if let Some(wave) = Wave::of(&body) {
            self.inbox.heard(wave, author);
        }
        if body.kind() != Kind::Fetch {
            self.messages.insert(hash, message.clone());
        }
        self.route(author, hash, message, body)
    }

    /// Handles a message this node just signed: checked like any other but for the
    /// signature, which it made itself.
    pub(super) fn handle_own(&mut self, message: SignedMessage) -> Result<(), Rejection> {
        let (author, hash, body) = self.admit(&message)?;
        if author != self.me {
            return Err(Rejection::SignerMismatch);
        }
        let r = self.accept(author, hash, message, body);
        self.progress();
        r
    }

    pub(super) fn route(
        &mut self,
        author: OperatorAddress,
        hash: MessageHash,
        message: SignedMessage,
        body: Body,
    ) -> Result<(), Rejection> {
        match body {
            Body::Dealing(_) => self.on_dealing(message),
            Body::Acks(a) => {
                if self.qual.decided.is_some() {
                    // Acks only feed proposals; once the set is decided none is kept.
                    self.messages.remove(&hash);
                    return Err(Rejection::PhaseClosed);
                }
                for h in &a.dealings {
                    self.dealings
                        .acks
                        .entry(MessageHash(h.0))
                        .or_default()
                        .insert(author);
                }
                self.dealings.ackers.insert(author);
                Ok(())
            }
            Body::Complaint(_) => self.on_complaint(message),
            Body::CoinCommit(c) => {
                let coin = self.coin.as_mut().ok_or(Rejection::WrongShape)?;
                if !coin.on_commit(hash, &c) {
                    return Err(Rejection::Equivocation);
                }
                coin.settle();
                Ok(())
            }
            Body::CoinReveal(r) => {
                let coin = self.coin.as_mut().ok_or(Rejection::WrongShape)?;
                coin.on_reveal(hash, &r);
                Ok(())
            }
            Body::Proposal(p) => {
                let id = InstanceId::from_byte(p.instance).ok_or(Rejection::Malformed)?;
                let entries: Vec<MessageHash> =
                    p.entries.iter().map(|w| MessageHash(w.0)).collect();
                if entries.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(Rejection::Malformed);
                }
                let value = value_id(&self.hash, id, &entries);
                self.proposal_of.entry(value).or_insert(hash);
                self.instance(id)?.values.entry(value).or_insert(entries);
                self.feed(id, author, message)
            }
            Body::Vote(v) => {
                let id = InstanceId::from_byte(v.instance).ok_or(Rejection::Malformed)?;
                if !(1..=2).contains(&v.step) {
                    return Err(Rejection::Malformed);
                }
                if v.step == 1 && v.value.0 != [0; 32] {
                    // Every signed prevote counts as a re-proposal's justification,
                    // an equivocator's second one included.
                    self.instance(id)?
                        .prevotes
                        .entry((v.round, ValueId(v.value.0)))
                        .or_default()
                        .insert(author);
                }
                let r = self.feed(id, author, message);
                self.retry_proposals(id);
                r
            }
            Body::Fetch(f) => {
                if f.hashes.len() > 256 {
                    return Err(Rejection::TooLarge);
                }
                for h in &f.hashes {
                    let mut h = MessageHash(h.0);
                    // A value id stands for the proposal that carried it.
                    if let Some(p) = self.proposal_of.get(&ValueId(h.0)) {
                        h = *p;
                    }
                    if let Some(m) = self.messages.get(&h)
                        && self.served.insert((author, h))
                    {
                        self.out.push(Action::Send {
                            to: Recipient::One(author),
                            message: m.clone(),
                        });
                    }
                }
                Ok(())
            }
            Body::Recovery(r) => self.on_recovery(&r),
            Body::Key(k) => {
                if self.roster.decided().is_some() {
                    return Err(Rejection::PhaseClosed);
                }
                self.roster.on_key(hash, &k)
            }
            Body::KeysSeen(k) => {
                if self.roster.decided().is_some() {
                    return Err(Rejection::PhaseClosed);
                }
                let n = self.setup.params.players.len();
                let r = self.roster.on_seen(hash, &k, n);
                // The list's author holds what it names: ask it, and everyone if a
                // list before named it too (its author may be withholding).
                for key in self.roster.missing_keys(&hash) {
                    let to = if self.fetched.contains_key(&key) {
                        Recipient::All
                    } else {
                        Recipient::One(author)
                    };
                    self.fetch(to, vec![key]);
                }
                r
            }
            Body::PublicShare(_) => {
                if self.finals.is_none() {
                    self.early_public.push(message);
                    return Ok(());
                }
                self.on_public_share(message)
            }
        }
    }

    pub(super) fn instance(&mut self, id: InstanceId) -> Result<&mut Instance, Rejection> {
        match id {
            InstanceId::Coin => self.coin_instance.as_mut().ok_or(Rejection::WrongShape),
            InstanceId::Roster => Ok(&mut self.roster_instance),
            InstanceId::Qual => Ok(&mut self.qual),
        }
    }

    /// Re-feeds a message held until its instance started.
    pub(super) fn reroute(&mut self, id: InstanceId, m: SignedMessage) -> Result<(), Rejection> {
        let author = m.signer;
        self.feed(id, author, m)
    }
}
