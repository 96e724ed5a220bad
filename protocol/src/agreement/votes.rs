//! What one round has heard: at most one proposal and, per voter, one vote of each
//! kind. Later conflicting messages are reported, never counted, so an equivocating
//! voter adds at most one vote to any tally.

use std::collections::BTreeMap;

use super::types::{Proposal, ValueId};

/// The result of offering a message to a round's record.
pub(super) enum Recorded<E> {
    /// First message of its slot: it counts.
    New,
    /// The same message as the one held.
    Duplicate,
    /// A different message for a held slot: `first` is the one that counts, `second`
    /// the one offered; `report` is true the first time this slot conflicts.
    Conflict { first: E, second: E, report: bool },
}

/// A voter's vote in one slot (round and kind).
struct Cast<E> {
    value: Option<ValueId>,
    evidence: E,
    conflict_reported: bool,
}

/// One kind of vote in one round: each voter's first vote and the tallies.
pub(super) struct VoteSet<E> {
    votes: Vec<Option<Cast<E>>>,
    tally: BTreeMap<Option<ValueId>, usize>,
    total: usize,
}

impl<E: Clone> VoteSet<E> {
    fn new(n: usize) -> Self {
        Self {
            votes: (0..n).map(|_| None).collect(),
            tally: BTreeMap::new(),
            total: 0,
        }
    }

    /// Records `voter`'s vote unless it already voted in this slot.
    fn record(&mut self, voter: usize, value: Option<ValueId>, evidence: E) -> Recorded<E> {
        match &mut self.votes[voter] {
            slot @ None => {
                *slot = Some(Cast {
                    value,
                    evidence,
                    conflict_reported: false,
                });
                *self.tally.entry(value).or_default() += 1;
                self.total += 1;
                Recorded::New
            }
            Some(held) if held.value == value => Recorded::Duplicate,
            Some(held) => Recorded::Conflict {
                first: held.evidence.clone(),
                second: evidence,
                report: !std::mem::replace(&mut held.conflict_reported, true),
            },
        }
    }

    /// Votes for `value` (`None`: nil).
    pub(super) fn count(&self, value: Option<ValueId>) -> usize {
        self.tally.get(&value).copied().unwrap_or(0)
    }

    /// Voters heard from, whatever they voted.
    pub(super) fn total(&self) -> usize {
        self.total
    }

    /// The largest tally (of a value or nil) this set can still reach, given that
    /// voters not yet heard from may vote for it.
    pub(super) fn best_reachable(&self) -> usize {
        let missing = self.votes.len() - self.total;
        self.tally.values().copied().max().unwrap_or(0) + missing
    }

    /// Whether voter `i`'s counted vote is for `value`.
    pub(super) fn voted(&self, i: usize, value: Option<ValueId>) -> bool {
        self.votes[i].as_ref().is_some_and(|c| c.value == value)
    }

    /// The voters (by index) for `value` with their evidence, in voter order.
    pub(super) fn for_value(&self, value: Option<ValueId>) -> Vec<(usize, E)> {
        self.votes
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match c {
                Some(c) if c.value == value => Some((i, c.evidence.clone())),
                _ => None,
            })
            .collect()
    }
}

/// A proposal as held: the message, the proposer's signed evidence, and the voters
/// whose prevotes came with it as its justification.
pub(super) struct HeldProposal<E> {
    proposal: Proposal,
    evidence: E,
    justification: Vec<bool>,
    conflict_reported: bool,
}

/// Everything heard for one round.
pub(super) struct RoundLog<E> {
    proposal: Option<HeldProposal<E>>,
    pub(super) prevotes: VoteSet<E>,
    pub(super) precommits: VoteSet<E>,
    sent: Vec<bool>,
    senders: usize,
}

impl<E: Clone> RoundLog<E> {
    pub(super) fn new(n: usize) -> Self {
        Self {
            proposal: None,
            prevotes: VoteSet::new(n),
            precommits: VoteSet::new(n),
            sent: vec![false; n],
            senders: 0,
        }
    }

    /// The round's proposal, if the proposer's first one has arrived.
    pub(super) fn proposal(&self) -> Option<&Proposal> {
        self.proposal.as_ref().map(|p| &p.proposal)
    }

    /// Whether voter `i`'s prevote came with the round's proposal as justification.
    pub(super) fn justified_by(&self, i: usize) -> bool {
        self.proposal
            .as_ref()
            .is_some_and(|p| p.justification.get(i).copied().unwrap_or(false))
    }

    /// Distinct voters that sent anything for this round (for round skips).
    pub(super) fn senders(&self) -> usize {
        self.senders
    }

    fn mark_sender(&mut self, voter: usize) {
        if !std::mem::replace(&mut self.sent[voter], true) {
            self.senders += 1;
        }
    }

    /// Records the proposer's proposal unless one is held; `justification` flags,
    /// per voter, a prevote that came with it.
    pub(super) fn record_proposal(
        &mut self,
        proposer: usize,
        proposal: Proposal,
        evidence: E,
        justification: Vec<bool>,
    ) -> Recorded<E> {
        match &mut self.proposal {
            slot @ None => {
                *slot = Some(HeldProposal {
                    proposal,
                    evidence,
                    justification,
                    conflict_reported: false,
                });
                self.mark_sender(proposer);
                Recorded::New
            }
            Some(held) if held.proposal == proposal => Recorded::Duplicate,
            Some(held) => Recorded::Conflict {
                first: held.evidence.clone(),
                second: evidence,
                report: !std::mem::replace(&mut held.conflict_reported, true),
            },
        }
    }

    /// Records a prevote (`precommit == false`) or precommit.
    pub(super) fn record_vote(
        &mut self,
        voter: usize,
        precommit: bool,
        value: Option<ValueId>,
        evidence: E,
    ) -> Recorded<E> {
        let set = if precommit {
            &mut self.precommits
        } else {
            &mut self.prevotes
        };
        let r = set.record(voter, value, evidence);
        if matches!(r, Recorded::New) {
            self.mark_sender(voter);
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: u8) -> Option<ValueId> {
        Some(ValueId([b; 32]))
    }

    #[test]
    fn a_voter_counts_once_per_slot_and_a_conflict_is_reported_once() {
        let mut log = RoundLog::<u32>::new(4);
        assert!(matches!(log.record_vote(1, false, v(1), 10), Recorded::New));
        assert!(matches!(
            log.record_vote(1, false, v(1), 10),
            Recorded::Duplicate
        ));
        assert!(matches!(
            log.record_vote(1, false, v(2), 11),
            Recorded::Conflict {
                first: 10,
                second: 11,
                report: true
            }
        ));
        assert!(matches!(
            log.record_vote(1, false, None, 12),
            Recorded::Conflict { report: false, .. }
        ));
        assert_eq!(log.prevotes.count(v(1)), 1);
        assert_eq!(log.prevotes.count(v(2)), 0);
        assert_eq!(log.prevotes.total(), 1);
        // The other kind is a separate slot.
        assert!(matches!(log.record_vote(1, true, v(2), 13), Recorded::New));
        assert_eq!(log.senders(), 1);
    }

    #[test]
    fn best_reachable_counts_voters_not_yet_heard() {
        let mut log = RoundLog::<u32>::new(4);
        log.record_vote(0, false, v(1), 0);
        log.record_vote(1, false, v(2), 0);
        log.record_vote(2, false, None, 0);
        assert_eq!(log.prevotes.best_reachable(), 2);
        assert_eq!(log.prevotes.for_value(v(2)), vec![(1, 0)]);
    }
}
