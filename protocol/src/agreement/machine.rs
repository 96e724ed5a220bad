//! The agreement state machine: its states and its inputs. The rules that move it
//! are in [`rules`](super::rules), the round records in [`votes`](super::votes).

use std::collections::{BTreeMap, BTreeSet};

use kms_crypto::OperatorAddress;

use super::error::{ConfigError, Rejection};
use super::types::{
    Certificate, Config, Output, Proposal, Round, Validity, ValueId, Vote, VoteKind,
};
use super::votes::{Recorded, RoundLog};

/// Where this node is within its current round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Waiting for the proposal and its verdict; prevote nil at `timeout_at`.
    Propose { timeout_at: u64 },
    /// Prevoted; once a quorum of prevotes is in (line 34), precommit nil at
    /// `timeout_at`.
    Prevote { timeout_at: Option<u64> },
    /// Precommitted.
    Precommit,
}

/// This node's part as proposer of the current round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Duty {
    /// Another voter proposes.
    None,
    /// `NeedProposal` was output; waiting for [`Agreement::propose`].
    Requested,
    /// The proposal was output.
    Proposed,
}

/// The current round.
#[derive(Clone, Copy, Debug)]
pub(super) struct RoundState {
    pub(super) round: Round,
    pub(super) step: Step,
    /// Next round at this time; set once a quorum of precommits is in (line 47).
    pub(super) precommit_timeout_at: Option<u64>,
    /// Line 36 has fired in this round.
    pub(super) polka_seen: bool,
    pub(super) duty: Duty,
}

/// The agreement's life.
#[derive(Clone, Copy, Debug)]
pub(super) enum Phase {
    /// Before [`Agreement::start`]: messages are recorded, no round runs.
    NotStarted,
    /// Rounds are running.
    Running(RoundState),
    /// Decided; final.
    Decided { value: ValueId },
    /// `max_rounds` ran out; only a certificate can still decide.
    GaveUp,
}

/// A value with a quorum of prevotes in a round: what a lock or the valid value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Polka {
    pub(super) round: Round,
    pub(super) value: ValueId,
}

/// One node's part in a single-shot agreement; see the [module docs](super).
///
/// `E` is the host's evidence for a message (typically the signed message): kept with
/// each counted vote and proposal, and returned in certificates and equivocation
/// reports.
pub struct Agreement<E> {
    pub(super) config: Config,
    /// This node's index among the voters; `None` for an observer.
    pub(super) me: Option<usize>,
    /// What each round has heard, rounds below `max_rounds` only.
    pub(super) logs: BTreeMap<Round, RoundLog<E>>,
    /// The host's verdicts.
    pub(super) verdicts: BTreeMap<ValueId, Validity>,
    /// Values the host was asked about, so each is asked once.
    pub(super) asked: BTreeSet<ValueId>,
    /// Tendermint's lockedValue and lockedRound.
    pub(super) locked: Option<Polka>,
    /// Tendermint's validValue and validRound.
    pub(super) valid: Option<Polka>,
    pub(super) phase: Phase,
    pub(super) outputs: Vec<Output<E>>,
}

impl<E: Clone> Agreement<E> {
    /// A node of the session described by `config`, not yet started.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate()?;
        // Validated: `me`, if set, is among the voters.
        let me = config.me.and_then(|m| config.voters.binary_search(&m).ok());
        Ok(Self {
            config,
            me,
            logs: BTreeMap::new(),
            verdicts: BTreeMap::new(),
            asked: BTreeSet::new(),
            locked: None,
            valid: None,
            phase: Phase::NotStarted,
            outputs: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The proposer of `round`.
    pub fn proposer(&self, round: Round) -> OperatorAddress {
        self.config.voters[self.proposer_index(round)]
    }

    /// The current round while rounds run.
    pub fn round(&self) -> Option<Round> {
        match self.phase {
            Phase::Running(rs) => Some(rs.round),
            _ => None,
        }
    }

    /// The decided value, once decided.
    pub fn decision(&self) -> Option<ValueId> {
        match self.phase {
            Phase::Decided { value } => Some(value),
            _ => None,
        }
    }

    /// Starts round 0 (its propose timeout runs from `config.start_ms`). Messages
    /// recorded before take effect now. Later calls do nothing.
    pub fn start(&mut self, now_ms: u64) {
        if matches!(self.phase, Phase::NotStarted) {
            self.start_round(Round(0), now_ms);
            self.advance(now_ms);
        }
    }

    /// A proposal from `from`, authenticated by the host, with its evidence and the
    /// signers of the prevotes that came with it as its justification (each verified
    /// by the host as a prevote for `proposal.value` in `proposal.valid_round`;
    /// non-voters among them are not counted).
    pub fn on_proposal(
        &mut self,
        from: OperatorAddress,
        proposal: Proposal,
        evidence: E,
        justification: &[OperatorAddress],
        now_ms: u64,
    ) -> Result<(), Rejection> {
        self.check_open()?;
        let i = self.voter_index(from)?;
        self.check_round(proposal.round)?;
        if i != self.proposer_index(proposal.round) {
            return Err(Rejection::NotTheProposer);
        }
        if proposal.valid_round.is_some_and(|vr| vr >= proposal.round) {
            return Err(Rejection::ValidRoundNotEarlier);
        }
        let mut justified = vec![false; self.config.voters.len()];
        if proposal.valid_round.is_some() {
            for j in justification
                .iter()
                .filter_map(|a| self.voter_index(*a).ok())
            {
                justified[j] = true;
            }
        }
        let recorded = self
            .log_mut(proposal.round)
            .record_proposal(i, proposal, evidence, justified);
        self.take(from, recorded)?;
        if self.me.is_some()
            && !self.verdicts.contains_key(&proposal.value)
            && self.asked.insert(proposal.value)
        {
            self.outputs.push(Output::NeedValidity(proposal.value));
        }
        self.advance(now_ms);
        Ok(())
    }

    /// A vote from `from`, authenticated by the host, with its evidence.
    pub fn on_vote(
        &mut self,
        from: OperatorAddress,
        vote: Vote,
        evidence: E,
        now_ms: u64,
    ) -> Result<(), Rejection> {
        self.check_open()?;
        let i = self.voter_index(from)?;
        self.check_round(vote.round)?;
        let precommit = vote.kind == VoteKind::Precommit;
        let recorded = self
            .log_mut(vote.round)
            .record_vote(i, precommit, vote.value, evidence);
        self.take(from, recorded)?;
        // Line 49, in any round and without the proposal (see the module docs).
        if let (true, Some(v)) = (precommit, vote.value)
            && self
                .logs
                .get(&vote.round)
                .is_some_and(|l| l.precommits.count(Some(v)) >= self.config.quorum)
        {
            self.decide(vote.round, v);
            return Ok(());
        }
        self.advance(now_ms);
        Ok(())
    }

    /// A certificate from a peer whose precommit signatures the host has verified
    /// (each for `certificate.round` and `certificate.value`). Decides if its shape
    /// holds; also after giving up, and also for observers.
    pub fn on_certificate(&mut self, certificate: Certificate<E>) -> Result<(), Rejection> {
        if let Phase::Decided { value } = self.phase {
            return Err(if value == certificate.value {
                Rejection::Finished
            } else {
                Rejection::ConflictsWithDecision
            });
        }
        self.check_round(certificate.round)?;
        certificate.check_shape(&self.config.voters, self.config.quorum)?;
        self.phase = Phase::Decided {
            value: certificate.value,
        };
        self.outputs.push(Output::Decided(certificate));
        Ok(())
    }

    /// The host's verdict on `value`; the latest verdict counts. Until told, a
    /// proposal of `value` waits (up to the propose timeout) and cannot lock.
    pub fn set_validity(&mut self, value: ValueId, validity: Validity, now_ms: u64) {
        if self.check_open().is_ok() {
            self.verdicts.insert(value, validity);
            self.advance(now_ms);
        }
    }

    /// The host's answer to [`Output::NeedProposal`]: the value to propose in
    /// `round`, which the host thereby judges valid. If this node has come to hold a
    /// valid value since, that is proposed instead (Tendermint's rule).
    pub fn propose(&mut self, round: Round, value: ValueId, now_ms: u64) -> Result<(), Rejection> {
        self.check_open()?;
        let valid = self.valid;
        let Phase::Running(rs) = &mut self.phase else {
            return Err(Rejection::NotRequested);
        };
        if rs.round != round || rs.duty != Duty::Requested {
            return Err(Rejection::NotRequested);
        }
        rs.duty = Duty::Proposed;
        let proposal = match valid {
            Some(p) => Proposal {
                round,
                value: p.value,
                valid_round: Some(p.round),
            },
            None => {
                self.verdicts.entry(value).or_insert(Validity::Valid);
                Proposal {
                    round,
                    value,
                    valid_round: None,
                }
            }
        };
        self.send_proposal(proposal);
        self.advance(now_ms);
        Ok(())
    }

    /// Fires the timeouts due at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) {
        while let Some(mv) = self.due_timeout(now_ms) {
            self.apply(mv, now_ms);
            self.advance(now_ms);
        }
    }

    /// When [`tick`](Self::tick) next has something to do.
    pub fn next_deadline(&self) -> Option<u64> {
        let Phase::Running(rs) = self.phase else {
            return None;
        };
        let step = match rs.step {
            Step::Propose { timeout_at } => Some(timeout_at),
            Step::Prevote { timeout_at } => timeout_at,
            Step::Precommit => None,
        };
        match (step, rs.precommit_timeout_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The outputs produced since the last call, in order.
    pub fn drain(&mut self) -> Vec<Output<E>> {
        std::mem::take(&mut self.outputs)
    }

    pub(super) fn proposer_index(&self, round: Round) -> usize {
        let n = self.config.voters.len() as u64;
        ((u64::from(round.0) % n + self.config.offset % n) % n) as usize
    }

    fn voter_index(&self, a: OperatorAddress) -> Result<usize, Rejection> {
        self.config
            .voters
            .binary_search(&a)
            .map_err(|_| Rejection::NotAVoter)
    }

    fn check_open(&self) -> Result<(), Rejection> {
        match self.phase {
            Phase::NotStarted | Phase::Running(_) => Ok(()),
            Phase::Decided { .. } | Phase::GaveUp => Err(Rejection::Finished),
        }
    }

    fn check_round(&self, round: Round) -> Result<(), Rejection> {
        if round.0 < self.config.max_rounds {
            Ok(())
        } else {
            Err(Rejection::RoundOutOfRange)
        }
    }

    pub(super) fn log_mut(&mut self, round: Round) -> &mut RoundLog<E> {
        let n = self.config.voters.len();
        self.logs.entry(round).or_insert_with(|| RoundLog::new(n))
    }

    /// Turns a record outcome into the caller's result, reporting equivocation once.
    fn take(&mut self, from: OperatorAddress, recorded: Recorded<E>) -> Result<(), Rejection> {
        match recorded {
            Recorded::New => Ok(()),
            Recorded::Duplicate => Err(Rejection::Duplicate),
            Recorded::Conflict {
                first,
                second,
                report,
            } => {
                if report {
                    self.outputs.push(Output::Equivocation {
                        voter: from,
                        first,
                        second,
                    });
                }
                Err(Rejection::Equivocation)
            }
        }
    }

    fn decide(&mut self, round: Round, value: ValueId) {
        let precommits = self.logs.get(&round).map_or_else(Vec::new, |l| {
            l.precommits
                .for_value(Some(value))
                .into_iter()
                .map(|(i, e)| (self.config.voters[i], e))
                .collect()
        });
        self.phase = Phase::Decided { value };
        self.outputs.push(Output::Decided(Certificate {
            round,
            value,
            precommits,
        }));
    }

    #[cfg(test)]
    pub(super) fn lock(&self) -> Option<(Round, ValueId)> {
        self.locked.map(|p| (p.round, p.value))
    }

    #[cfg(test)]
    pub(super) fn valid_value(&self) -> Option<(Round, ValueId)> {
        self.valid.map(|p| (p.round, p.value))
    }
}
