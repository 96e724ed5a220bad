//! Tendermint's rules (Algorithm 1 of the paper; line numbers cited) as moves of
//! the current round, and the transitions they make.

use super::machine::{Agreement, Duty, Phase, Polka, RoundState, Step};
use super::types::{Output, Proposal, Round, Validity, ValueId, Vote, VoteKind};
use super::votes::RoundLog;

/// One state transition of the current round, found by [`Agreement::next_move`].
#[derive(Clone, Copy, Debug)]
pub(super) enum Move {
    /// Lines 22, 28 and 57: prevote for the proposal or nil.
    Prevote(Option<ValueId>),
    /// Line 36: a polka for the round's valid proposal.
    Polka(ValueId),
    /// Lines 44 and 61: precommit nil.
    PrecommitNil,
    /// Line 34.
    ArmPrevoteTimeout,
    /// Line 47.
    ArmPrecommitTimeout,
    /// Line 65, or a quorum of nil precommits.
    NextRound,
    /// Line 55: enough voters are in a later round.
    Skip(Round),
}

impl<E: Clone> Agreement<E> {
    /// The move of the earliest timeout due at `now_ms`, if any (lines 57, 61, 65).
    pub(super) fn due_timeout(&self, now_ms: u64) -> Option<Move> {
        let Phase::Running(rs) = self.phase else {
            return None;
        };
        let step_due = match rs.step {
            Step::Propose { timeout_at } => Some((timeout_at, Move::Prevote(None))),
            Step::Prevote {
                timeout_at: Some(t),
            } => Some((t, Move::PrecommitNil)),
            _ => None,
        };
        let round_due = rs.precommit_timeout_at.map(|t| (t, Move::NextRound));
        let due = match (step_due, round_due) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        };
        due.filter(|(t, _)| *t <= now_ms).map(|(_, mv)| mv)
    }

    /// Outputs `proposal` with the prevotes that justify its `valid_round`: without
    /// them, a polka completed by an equivocator's prevote may be visible to this node
    /// only (see "a re-proposal carries its polka" in the module docs).
    pub(super) fn send_proposal(&mut self, proposal: Proposal) {
        let justification = proposal
            .valid_round
            .and_then(|vr| self.logs.get(&vr))
            .map_or_else(Vec::new, |l| {
                l.prevotes
                    .for_value(Some(proposal.value))
                    .into_iter()
                    .map(|(i, e)| (self.config.voters[i], e))
                    .collect()
            });
        self.outputs.push(Output::SendProposal {
            proposal,
            justification,
        });
    }

    /// Line 11: enters `round`, proposing at once if holding a valid value.
    pub(super) fn start_round(&mut self, round: Round, now_ms: u64) {
        let from = if round == Round(0) {
            self.config.start_ms
        } else {
            now_ms
        };
        let duty = if self.me != Some(self.proposer_index(round)) {
            Duty::None
        } else if let Some(p) = self.valid {
            self.send_proposal(Proposal {
                round,
                value: p.value,
                valid_round: Some(p.round),
            });
            Duty::Proposed
        } else {
            self.outputs.push(Output::NeedProposal { round });
            Duty::Requested
        };
        self.phase = Phase::Running(RoundState {
            round,
            step: Step::Propose {
                timeout_at: from.saturating_add(self.config.timeouts.propose(round)),
            },
            precommit_timeout_at: None,
            polka_seen: false,
            duty,
        });
    }

    /// Applies moves until none is enabled.
    pub(super) fn advance(&mut self, now_ms: u64) {
        while let Some(mv) = self.next_move() {
            self.apply(mv, now_ms);
        }
    }

    /// The first enabled move of the current round, in rule order.
    fn next_move(&self) -> Option<Move> {
        let Phase::Running(rs) = self.phase else {
            return None;
        };
        let q = self.config.quorum;
        let skip_at = self.config.voters.len() - q + 1;
        if let Some((&later, _)) = self
            .logs
            .range(rs.round.next()..)
            .rfind(|(_, log)| log.senders() >= skip_at)
        {
            return Some(Move::Skip(later));
        }
        let log = self.logs.get(&rs.round)?;
        if let Step::Propose { .. } = rs.step
            && let Some(choice) = self.prevote_choice(log)
        {
            return Some(Move::Prevote(choice));
        }
        if !rs.polka_seen
            && !matches!(rs.step, Step::Propose { .. })
            && let Some(p) = log.proposal()
            && self.verdicts.get(&p.value) == Some(&Validity::Valid)
            && log.prevotes.count(Some(p.value)) >= q
        {
            return Some(Move::Polka(p.value));
        }
        if let Step::Prevote { timeout_at } = rs.step {
            // Line 44; or no value (nor nil) can still reach a quorum here, so the
            // prevote timeout could only end in a nil precommit too.
            if log.prevotes.count(None) >= q || log.prevotes.best_reachable() < q {
                return Some(Move::PrecommitNil);
            }
            if timeout_at.is_none() && log.prevotes.total() >= q {
                return Some(Move::ArmPrevoteTimeout);
            }
        }
        // A quorum of nil precommits shares an honest voter with any quorum of
        // precommits for a value in this round, so this round cannot decide anywhere.
        if log.precommits.count(None) >= q {
            return Some(Move::NextRound);
        }
        if rs.precommit_timeout_at.is_none() && log.precommits.total() >= q {
            return Some(Move::ArmPrecommitTimeout);
        }
        None
    }

    /// Lines 22 and 28: the prevote for the current round's proposal, or `None` to
    /// keep waiting for the proposal, its verdict or its justification. A nil prevote
    /// that waiting could not change is cast at once.
    fn prevote_choice(&self, log: &RoundLog<E>) -> Option<Option<ValueId>> {
        let p = log.proposal()?;
        let v = p.value;
        // Locked on another value: only a polka newer than the lock (line 28's
        // `lockedRound ≤ vr`) may move this voter, which is what keeps a decided value
        // decided.
        let lock_allows = match (self.locked, p.valid_round) {
            (None, _) => true,
            (Some(l), _) if l.value == v => true,
            (Some(l), Some(vr)) => l.round <= vr,
            (Some(_), None) => false,
        };
        let verdict = self.verdicts.get(&v).copied();
        if !lock_allows || verdict == Some(Validity::Invalid) {
            return Some(None);
        }
        // A re-proposal must show the polka it claims: q prevotes for v in vr, as
        // counted here or as sent along with the proposal. Counting a signed prevote
        // that conflicts with the one counted here is safe: the safety argument already
        // lets Byzantine voters sign for every value.
        let justified = match p.valid_round {
            None => true,
            Some(vr) => {
                let held = self.logs.get(&vr);
                let supporters = (0..self.config.voters.len())
                    .filter(|&i| {
                        log.justified_by(i) || held.is_some_and(|l| l.prevotes.voted(i, Some(v)))
                    })
                    .count();
                supporters >= self.config.quorum
            }
        };
        (justified && verdict == Some(Validity::Valid)).then_some(Some(v))
    }

    pub(super) fn apply(&mut self, mv: Move, now_ms: u64) {
        let Phase::Running(rs) = &mut self.phase else {
            return;
        };
        let round = rs.round;
        let timeouts = self.config.timeouts;
        let vote = match mv {
            Move::Prevote(value) => {
                rs.step = Step::Prevote { timeout_at: None };
                Some((VoteKind::Prevote, value))
            }
            Move::Polka(value) => {
                rs.polka_seen = true;
                self.valid = Some(Polka { round, value });
                if let Step::Prevote { .. } = rs.step {
                    rs.step = Step::Precommit;
                    self.locked = Some(Polka { round, value });
                    Some((VoteKind::Precommit, Some(value)))
                } else {
                    None
                }
            }
            Move::PrecommitNil => {
                rs.step = Step::Precommit;
                Some((VoteKind::Precommit, None))
            }
            Move::ArmPrevoteTimeout => {
                rs.step = Step::Prevote {
                    timeout_at: Some(now_ms.saturating_add(timeouts.prevote(round))),
                };
                None
            }
            Move::ArmPrecommitTimeout => {
                rs.precommit_timeout_at = Some(now_ms.saturating_add(timeouts.precommit(round)));
                None
            }
            Move::NextRound => {
                if round.next().0 >= self.config.max_rounds {
                    self.phase = Phase::GaveUp;
                    self.outputs.push(Output::GaveUp);
                } else {
                    self.start_round(round.next(), now_ms);
                }
                None
            }
            Move::Skip(later) => {
                self.start_round(later, now_ms);
                None
            }
        };
        if let (Some((kind, value)), Some(_)) = (vote, self.me) {
            self.outputs
                .push(Output::SendVote(Vote { round, kind, value }));
        }
    }
}
