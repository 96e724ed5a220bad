//! What a simulated run produced, and the checks of safety and termination on it.

use std::collections::{BTreeMap, BTreeSet};

use kms_crypto::OperatorAddress;

use super::super::{Round, ValueId};
use super::sim::index;

/// What a run produced.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub n: usize,
    pub quorum: usize,
    pub byzantine: BTreeSet<usize>,
    /// Per node (voters, then the observer): decision time, round and value.
    pub decisions: BTreeMap<usize, (u64, Round, ValueId)>,
    pub gave_up: BTreeSet<usize>,
    /// Every (round, value) precommitted by each honest voter.
    pub honest_precommits: BTreeMap<(Round, ValueId), BTreeSet<usize>>,
    /// Voters reported as equivocating, by any honest node.
    pub accused: BTreeSet<OperatorAddress>,
    /// Rejections of messages signed by honest voters, by code.
    pub honest_rejections: BTreeMap<&'static str, usize>,
    pub events: usize,
}

impl Outcome {
    /// No two nodes decide differently, no two values could ever get a certificate
    /// (honest precommits plus any Byzantine signatures), and honest voters are never
    /// accused nor their messages refused but for arriving after the end.
    pub fn assert_safe(&self, label: &str) {
        let certifiable = self.certifiable();
        assert!(
            certifiable.len() <= 1,
            "{label}: certificates possible for {certifiable:?}"
        );
        let decided: BTreeSet<ValueId> = self.decisions.values().map(|d| d.2).collect();
        assert!(
            decided.len() <= 1,
            "{label}: decisions {:?}",
            self.decisions
        );
        assert!(decided.is_subset(&certifiable), "{label}");
        assert!(
            self.accused
                .iter()
                .all(|a| self.byzantine.contains(&index(a))),
            "{label}: honest voter accused: {:?}",
            self.accused
        );
        assert!(
            self.honest_rejections.keys().all(|c| *c == "finished"),
            "{label}: honest messages rejected: {:?}",
            self.honest_rejections
        );
    }

    /// The values that have, in some round, enough honest precommits to make a
    /// certificate together with signatures of every Byzantine voter.
    pub fn certifiable(&self) -> BTreeSet<ValueId> {
        let f = self.byzantine.len();
        self.honest_precommits
            .iter()
            .filter(|(_, voters)| voters.len() + f >= self.quorum)
            .map(|((_, v), _)| *v)
            .collect()
    }

    /// Every honest voter and the observer decided.
    pub fn assert_terminated(&self, label: &str) {
        for i in (0..=self.n).filter(|i| !self.byzantine.contains(i)) {
            assert!(
                self.decisions.contains_key(&i),
                "{label}: node {i} did not decide (gave up: {}, events {})",
                self.gave_up.contains(&i),
                self.events
            );
        }
    }

    /// The latest decision round.
    pub fn last_round(&self) -> u32 {
        self.decisions.values().map(|d| d.1.0).max().unwrap_or(0)
    }
}
