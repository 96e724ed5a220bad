//! Tests of the agreement: a hand-driven node for each rule and input, and a
//! simulated network for whole sessions.

mod inputs;
mod outcome;
mod rules;
mod sim;
mod sim_runs;

use kms_crypto::OperatorAddress;

use super::*;

/// Evidence in these tests: who sent what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Ev {
    P(usize, Proposal),
    V(usize, Vote),
}

pub(super) const T: Timeouts = Timeouts {
    propose_ms: 100,
    prevote_ms: 50,
    precommit_ms: 50,
    increment_ms: 10,
};

pub(super) fn addr(i: usize) -> OperatorAddress {
    OperatorAddress::from_bytes([i as u8 + 1; 20])
}

pub(super) fn val(b: u8) -> ValueId {
    ValueId([b; 32])
}

pub(super) fn config(n: usize, me: Option<usize>) -> Config {
    Config {
        voters: (0..n).map(addr).collect(),
        me: me.map(addr),
        quorum: quorum(n, (2 * n).div_ceil(3)).unwrap(),
        offset: 0,
        start_ms: 0,
        timeouts: T,
        max_rounds: 5,
    }
}

/// A node under test plus helpers that play the other voters.
pub(super) struct Node {
    pub(super) a: Agreement<Ev>,
    pub(super) out: Vec<Output<Ev>>,
}

impl Node {
    /// Voter 1 of 4 (q = 3), started at 0. Round r's proposer is voter r mod 4.
    pub(super) fn four() -> Self {
        Self::with(config(4, Some(1)))
    }

    pub(super) fn with(c: Config) -> Self {
        let mut a = Agreement::new(c).unwrap();
        a.start(0);
        let out = a.drain();
        Self { a, out }
    }

    pub(super) fn collect(&mut self) {
        self.out.extend(self.a.drain());
    }

    pub(super) fn proposal(
        &mut self,
        from: usize,
        round: u32,
        v: u8,
        vr: Option<u32>,
    ) -> Result<(), Rejection> {
        let p = Proposal {
            round: Round(round),
            value: val(v),
            valid_round: vr.map(Round),
        };
        let r = self.a.on_proposal(addr(from), p, Ev::P(from, p), &[], 0);
        self.collect();
        r
    }

    pub(super) fn vote(
        &mut self,
        from: usize,
        round: u32,
        kind: VoteKind,
        v: Option<u8>,
    ) -> Result<(), Rejection> {
        let vote = Vote {
            round: Round(round),
            kind,
            value: v.map(val),
        };
        let r = self.a.on_vote(addr(from), vote, Ev::V(from, vote), 0);
        self.collect();
        r
    }

    pub(super) fn prevotes(&mut self, from: &[usize], round: u32, v: Option<u8>) {
        for &f in from {
            self.vote(f, round, VoteKind::Prevote, v).unwrap();
        }
    }

    pub(super) fn precommits(&mut self, from: &[usize], round: u32, v: Option<u8>) {
        for &f in from {
            self.vote(f, round, VoteKind::Precommit, v).unwrap();
        }
    }

    pub(super) fn valid(&mut self, v: u8) {
        self.a.set_validity(val(v), Validity::Valid, 0);
        self.collect();
    }

    pub(super) fn tick(&mut self, now: u64) {
        self.a.tick(now);
        self.collect();
    }

    /// Votes sent since the last call, forgetting the other outputs.
    pub(super) fn sent(&mut self) -> Vec<(u32, VoteKind, Option<u8>)> {
        std::mem::take(&mut self.out)
            .into_iter()
            .filter_map(|o| match o {
                Output::SendVote(v) => Some((v.round.0, v.kind, v.value.map(|x| x.0[0]))),
                _ => None,
            })
            .collect()
    }

    pub(super) fn decided(&self) -> Option<&Certificate<Ev>> {
        self.out.iter().find_map(|o| match o {
            Output::Decided(c) => Some(c),
            _ => None,
        })
    }
}
