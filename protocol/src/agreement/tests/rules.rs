//! One test per voting rule, driving voter 1 of 4 by hand.

use super::super::*;
use super::{Ev, Node, T, addr, config, val};
use VoteKind::{Precommit, Prevote};

#[test]
fn a_valid_proposal_is_prevoted_and_its_polka_precommitted_and_locked() {
    let mut n = Node::four();
    n.valid(7);
    n.proposal(0, 0, 7, None).unwrap();
    assert_eq!(n.sent(), vec![(0, Prevote, Some(7))]);
    n.prevotes(&[0, 2], 0, Some(7));
    assert_eq!(n.sent(), vec![], "own prevote not yet delivered back");
    n.prevotes(&[1], 0, Some(7));
    assert_eq!(n.sent(), vec![(0, Precommit, Some(7))]);
    assert_eq!(n.a.lock(), Some((Round(0), val(7))));
    assert_eq!(n.a.valid_value(), Some((Round(0), val(7))));
}

#[test]
fn the_verdict_is_asked_once_and_awaited_before_prevoting() {
    let mut n = Node::four();
    n.proposal(0, 0, 7, None).unwrap();
    assert_eq!(n.out, vec![Output::NeedValidity(val(7))]);
    assert_eq!(n.sent(), vec![]);
    n.valid(7);
    assert_eq!(n.sent(), vec![(0, Prevote, Some(7))]);
}

#[test]
fn an_invalid_proposal_is_prevoted_nil_at_once() {
    let mut n = Node::four();
    n.a.set_validity(val(7), Validity::Invalid, 0);
    n.proposal(0, 0, 7, None).unwrap();
    assert_eq!(n.sent(), vec![(0, Prevote, None)]);
}

#[test]
fn a_verdict_missing_at_the_propose_timeout_means_a_nil_prevote() {
    let mut n = Node::four();
    n.proposal(0, 0, 7, None).unwrap();
    assert_eq!(n.a.next_deadline(), Some(T.propose_ms));
    n.tick(T.propose_ms - 1);
    assert_eq!(n.sent(), vec![]);
    n.tick(T.propose_ms);
    assert_eq!(n.sent(), vec![(0, Prevote, None)]);
    n.valid(7);
    assert_eq!(n.sent(), vec![], "a late verdict does not vote again");
}

#[test]
fn round_zero_times_out_from_start_ms_not_from_start() {
    let mut c = config(4, Some(1));
    c.start_ms = 1_000;
    let mut a = Agreement::<Ev>::new(c).unwrap();
    a.start(1_070);
    assert_eq!(a.next_deadline(), Some(1_000 + T.propose_ms));
}

#[test]
fn a_lock_refuses_a_fresh_proposal_of_another_value() {
    let mut n = Node::four();
    n.valid(7);
    n.valid(8);
    n.proposal(0, 0, 7, None).unwrap();
    n.prevotes(&[0, 1, 2], 0, Some(7));
    n.precommits(&[1, 2], 0, Some(7));
    n.precommits(&[3], 0, None);
    n.tick(T.precommit_ms);
    assert_eq!(n.a.round(), Some(Round(1)));
    // Round 1 is this node's: it re-proposes its valid value with its polka round.
    let reproposal = n.out.iter().find_map(|o| match o {
        Output::SendProposal {
            proposal,
            justification,
        } => Some((*proposal, justification.clone())),
        _ => None,
    });
    let (proposal, justification) = reproposal.expect("re-proposed");
    assert_eq!(
        proposal,
        Proposal {
            round: Round(1),
            value: val(7),
            valid_round: Some(Round(0)),
        }
    );
    let prevote = Vote {
        round: Round(0),
        kind: Prevote,
        value: Some(val(7)),
    };
    let signers: Vec<_> = justification.iter().map(|(a, _)| *a).collect();
    assert_eq!(signers, vec![addr(0), addr(1), addr(2)]);
    assert_eq!(justification[2].1, Ev::V(2, prevote), "the polka, signed");
    n.precommits(&[0, 2, 3], 1, None);
    assert_eq!(n.a.round(), Some(Round(2)));
    n.sent();
    n.proposal(2, 2, 8, None).unwrap();
    assert_eq!(n.sent(), vec![(2, Prevote, None)]);
    assert_eq!(n.a.lock(), Some((Round(0), val(7))));
}

#[test]
fn a_newer_polka_shown_by_valid_round_unlocks() {
    let mut n = Node::four();
    n.valid(7);
    n.valid(8);
    n.proposal(0, 0, 7, None).unwrap();
    n.prevotes(&[0, 1, 2], 0, Some(7));
    n.precommits(&[0, 2, 3], 0, None);
    assert_eq!(n.a.lock(), Some((Round(0), val(7))));
    // Round 1: others prevote 8 (this node, locked on 7, sees no proposal in time).
    n.prevotes(&[0, 2, 3], 1, Some(8));
    n.precommits(&[0, 2, 3], 1, None);
    assert_eq!(n.a.round(), Some(Round(2)));
    n.sent();
    n.proposal(2, 2, 8, Some(1)).unwrap();
    assert_eq!(n.sent(), vec![(2, Prevote, Some(8))]);
}

#[test]
fn a_re_proposal_waits_for_its_polka_and_prevotes_nil_without_it() {
    // Two rounds of nil precommits bring the node to round 2 (voter 2 proposes).
    let at_round_two = || {
        let mut n = Node::four();
        n.valid(8);
        n.precommits(&[0, 2, 3], 0, None);
        n.precommits(&[0, 2, 3], 1, None);
        assert_eq!(n.a.round(), Some(Round(2)));
        n.proposal(2, 2, 8, Some(0)).unwrap();
        n.sent();
        n
    };
    let mut n = at_round_two();
    n.prevotes(&[0, 2], 0, Some(8));
    assert_eq!(n.sent(), vec![], "no polka for 8 in round 0 yet");
    n.prevotes(&[3], 0, Some(8));
    assert_eq!(n.sent(), vec![(2, Prevote, Some(8))]);

    let mut n = at_round_two();
    n.tick(T.propose(Round(2)));
    assert_eq!(n.sent(), vec![(2, Prevote, None)]);
}

#[test]
fn a_polka_sent_with_the_proposal_counts_even_against_an_equivocator() {
    let mut n = Node::four();
    n.valid(8);
    n.precommits(&[0, 2, 3], 0, None);
    n.precommits(&[0, 2, 3], 1, None);
    // Voter 3 prevoted 9 here but signed a prevote for 8 that voter 2 holds.
    n.prevotes(&[0], 0, Some(8));
    n.prevotes(&[3], 0, Some(9));
    let p = Proposal {
        round: Round(2),
        value: val(8),
        valid_round: Some(Round(0)),
    };
    n.a.on_proposal(addr(2), p, Ev::P(2, p), &[addr(2), addr(3), addr(9)], 0)
        .unwrap();
    n.collect();
    assert_eq!(
        n.sent(),
        vec![(2, Prevote, Some(8))],
        "0 here, 2 and 3 sent along"
    );

    // Without voter 2's and 3's prevotes the claim is not shown: wait.
    let mut m = Node::four();
    m.valid(8);
    m.precommits(&[0, 2, 3], 0, None);
    m.precommits(&[0, 2, 3], 1, None);
    m.prevotes(&[0], 0, Some(8));
    m.a.on_proposal(addr(2), p, Ev::P(2, p), &[addr(0), addr(9)], 0)
        .unwrap();
    m.collect();
    assert_eq!(m.sent(), vec![]);
}

#[test]
fn a_justification_older_than_the_lock_does_not_unlock() {
    let mut n = Node::four();
    n.valid(7);
    n.valid(8);
    // Polka for 8 in round 0 that this node saw while not in a prevote step for it.
    n.prevotes(&[0, 2, 3], 0, Some(8));
    n.precommits(&[0, 2, 3], 0, None);
    // Round 1 is this node's: it proposes 7, which gets a polka and a lock.
    n.a.propose(Round(1), val(7), 0).unwrap();
    n.collect();
    n.proposal(1, 1, 7, None).unwrap();
    n.prevotes(&[0, 1, 2], 1, Some(7));
    assert_eq!(n.a.lock(), Some((Round(1), val(7))));
    n.precommits(&[0, 2, 3], 1, None);
    n.sent();
    n.proposal(2, 2, 8, Some(0)).unwrap();
    assert_eq!(n.sent(), vec![(2, Prevote, None)]);
}

#[test]
fn mixed_prevotes_wait_for_the_prevote_timeout() {
    let mut n = Node::four();
    n.a.set_validity(val(7), Validity::Invalid, 0);
    n.proposal(0, 0, 7, None).unwrap();
    n.prevotes(&[0, 2], 0, Some(7));
    n.prevotes(&[1], 0, None);
    assert_eq!(n.a.next_deadline(), Some(T.prevote_ms), "armed on a quorum");
    n.sent();
    n.tick(T.prevote_ms);
    assert_eq!(n.sent(), vec![(0, Precommit, None)]);
}

#[test]
fn prevotes_that_can_no_longer_reach_a_quorum_precommit_nil_at_once() {
    let mut n = Node::four();
    n.a.set_validity(val(7), Validity::Invalid, 0);
    n.proposal(0, 0, 7, None).unwrap();
    n.prevotes(&[0], 0, Some(7));
    n.prevotes(&[2], 0, Some(8));
    n.sent();
    // 7, 8, 9 and one voter unheard: nothing can reach 3 any more.
    n.prevotes(&[3], 0, Some(9));
    assert_eq!(n.sent(), vec![(0, Precommit, None)]);
}

#[test]
fn a_quorum_of_nil_prevotes_precommits_nil() {
    let mut n = Node::four();
    n.tick(T.propose_ms);
    n.prevotes(&[0, 1, 2], 0, None);
    assert_eq!(n.sent(), vec![(0, Prevote, None), (0, Precommit, None)]);
}

#[test]
fn mixed_precommits_wait_for_the_precommit_timeout() {
    let mut n = Node::four();
    n.precommits(&[0, 2], 0, Some(7));
    n.precommits(&[3], 0, None);
    assert_eq!(n.a.round(), Some(Round(0)));
    assert_eq!(n.a.next_deadline(), Some(T.precommit_ms));
    n.tick(T.precommit_ms);
    assert_eq!(n.a.round(), Some(Round(1)));
    assert_eq!(n.out, vec![Output::NeedProposal { round: Round(1) }]);
}

#[test]
fn a_quorum_of_nil_precommits_starts_the_next_round_at_once() {
    let mut n = Node::four();
    n.precommits(&[0, 2, 3], 0, None);
    assert_eq!(n.a.round(), Some(Round(1)));
    // Round 1's propose timeout runs from now, grown by one increment.
    assert_eq!(n.a.next_deadline(), Some(T.propose_ms + T.increment_ms));
}

#[test]
fn a_quorum_of_precommits_decides_without_the_proposal() {
    let mut n = Node::four();
    n.precommits(&[3, 0], 2, Some(7));
    assert!(n.decided().is_none());
    n.precommits(&[2], 2, Some(7));
    let c = n.decided().expect("decided").clone();
    assert_eq!((c.round, c.value), (Round(2), val(7)));
    assert_eq!(
        c.signers(),
        vec![addr(0), addr(2), addr(3)],
        "sorted by voter"
    );
    assert_eq!(
        c.precommits[1].1,
        Ev::V(
            2,
            Vote {
                round: Round(2),
                kind: Precommit,
                value: Some(val(7))
            }
        )
    );
    assert_eq!(n.a.decision(), Some(val(7)));
    assert_eq!(n.vote(1, 2, Precommit, Some(7)), Err(Rejection::Finished));
    assert_eq!(n.a.next_deadline(), None);
}

#[test]
fn enough_voters_in_a_later_round_make_a_node_skip_to_it() {
    let mut n = Node::four();
    // n − q + 1 = 2 voters needed; one voter alone (perhaps Byzantine) is not enough.
    n.vote(3, 3, Prevote, None).unwrap();
    n.vote(3, 3, Precommit, None).unwrap();
    assert_eq!(n.a.round(), Some(Round(0)));
    n.vote(2, 3, Prevote, Some(4)).unwrap();
    assert_eq!(n.a.round(), Some(Round(3)));
    n.vote(0, 2, Prevote, None).unwrap();
    n.vote(2, 2, Prevote, None).unwrap();
    assert_eq!(
        n.a.round(),
        Some(Round(3)),
        "never back to an earlier round"
    );
}
