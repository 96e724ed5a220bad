//! Inputs the node refuses or reports, observers, certificates and configuration.

use super::super::*;
use super::{Ev, Node, addr, config, val};
use VoteKind::{Precommit, Prevote};

#[test]
fn equivocating_votes_count_once_and_are_reported_once() {
    let mut n = Node::four();
    n.vote(2, 0, Precommit, Some(7)).unwrap();
    assert_eq!(n.vote(2, 0, Precommit, Some(7)), Err(Rejection::Duplicate));
    n.out.clear();
    assert_eq!(
        n.vote(2, 0, Precommit, Some(8)),
        Err(Rejection::Equivocation)
    );
    assert_eq!(n.vote(2, 0, Precommit, None), Err(Rejection::Equivocation));
    let reports: Vec<_> = n
        .out
        .iter()
        .filter(|o| matches!(o, Output::Equivocation { .. }))
        .collect();
    assert_eq!(reports.len(), 1);
    let Output::Equivocation {
        voter,
        first,
        second,
    } = reports[0]
    else {
        unreachable!()
    };
    assert_eq!(*voter, addr(2));
    assert!(matches!(first, Ev::V(2, v) if v.value == Some(val(7))));
    assert!(matches!(second, Ev::V(2, v) if v.value == Some(val(8))));
    // The second vote never counts: 8 gets no certificate from voter 2.
    n.precommits(&[0, 3], 0, Some(8));
    assert!(n.decided().is_none());
}

#[test]
fn an_equivocating_proposer_is_reported_and_its_second_proposal_ignored() {
    let mut n = Node::four();
    n.valid(7);
    n.valid(8);
    n.proposal(0, 0, 7, None).unwrap();
    assert_eq!(n.proposal(0, 0, 8, None), Err(Rejection::Equivocation));
    assert!(n.out.iter().any(|o| matches!(
        o,
        Output::Equivocation { voter, .. } if *voter == addr(0)
    )));
    assert_eq!(n.sent(), vec![(0, Prevote, Some(7))]);
}

#[test]
fn messages_that_do_not_belong_are_rejected_with_stable_codes() {
    let mut n = Node::four();
    let cases = [
        (n.proposal(2, 0, 7, None), "not_the_proposer"),
        (n.proposal(0, 5, 7, None), "round_out_of_range"),
        (n.proposal(2, 2, 7, Some(2)), "valid_round_not_earlier"),
        (n.vote(9, 0, Prevote, None), "not_a_voter"),
        (n.vote(0, 5, Prevote, None), "round_out_of_range"),
    ];
    for (result, code) in cases {
        assert_eq!(result.map_err(|e| e.code()), Err(code));
    }
    assert_eq!(
        n.a.propose(Round(0), val(1), 0),
        Err(Rejection::NotRequested)
    );
}

#[test]
fn an_observer_follows_decides_and_never_votes() {
    let mut o = Node::with(config(4, None));
    o.proposal(0, 0, 7, None).unwrap();
    o.prevotes(&[0, 1, 2], 0, Some(7));
    o.tick(10_000);
    o.precommits(&[0, 1], 0, Some(7));
    o.precommits(&[3], 0, Some(7));
    assert!(o.decided().is_some());
    assert!(
        o.out.iter().all(|x| matches!(x, Output::Decided(_))),
        "only the decision: {:?}",
        o.out
    );
}

#[test]
fn an_observer_decides_from_a_certificate() {
    let mut o = Node::with(config(4, None));
    let precommit = |i: usize| {
        let v = Vote {
            round: Round(1),
            kind: Precommit,
            value: Some(val(7)),
        };
        (addr(i), Ev::V(i, v))
    };
    let short = Certificate {
        round: Round(1),
        value: val(7),
        precommits: vec![precommit(0), precommit(2)],
    };
    assert_eq!(
        o.a.on_certificate(short.clone()).map_err(|e| e.code()),
        Err("certificate_below_quorum")
    );
    let mut c = short;
    c.precommits.push(precommit(3));
    o.a.on_certificate(c.clone()).unwrap();
    assert_eq!(o.a.drain(), vec![Output::Decided(c.clone())]);
    assert_eq!(o.a.on_certificate(c.clone()), Err(Rejection::Finished));
    c.value = val(8);
    assert_eq!(o.a.on_certificate(c), Err(Rejection::ConflictsWithDecision));
}

#[test]
fn max_rounds_without_a_decision_gives_up_but_a_certificate_still_decides() {
    let mut n = Node::four();
    for r in 0..5 {
        assert_eq!(n.a.round(), Some(Round(r)));
        n.precommits(&[0, 2], r, Some(7));
        n.precommits(&[3], r, None);
        n.tick(u64::from(r + 1) * 1_000);
    }
    assert_eq!(n.a.round(), None);
    assert_eq!(n.out.last(), Some(&Output::GaveUp));
    assert_eq!(n.vote(0, 4, Precommit, None), Err(Rejection::Finished));
    let c = Certificate {
        round: Round(4),
        value: val(7),
        precommits: vec![],
    };
    assert!(n.a.on_certificate(c).is_err(), "still checked");
    assert_eq!(n.a.decision(), None);
}

#[test]
fn messages_before_start_take_effect_on_start() {
    let mut a = Agreement::<Ev>::new(config(4, Some(1))).unwrap();
    let p = Proposal {
        round: Round(0),
        value: val(7),
        valid_round: None,
    };
    a.on_proposal(addr(0), p, Ev::P(0, p), &[], 0).unwrap();
    a.set_validity(val(7), Validity::Valid, 0);
    assert_eq!(a.drain(), vec![Output::NeedValidity(val(7))]);
    a.start(0);
    let vote = Vote {
        round: Round(0),
        kind: Prevote,
        value: Some(val(7)),
    };
    assert_eq!(a.drain(), vec![Output::SendVote(vote)]);
}

#[test]
fn certificate_shape_needs_a_quorum_of_distinct_voters() {
    let voters: Vec<_> = (0..4).map(addr).collect();
    let check = |s: &[usize]| {
        let s: Vec<_> = s.iter().map(|&i| addr(i)).collect();
        check_certificate_shape(&voters, 3, &s)
    };
    assert_eq!(check(&[0, 1, 2]), Ok(()));
    assert_eq!(check(&[3, 0, 1, 2]), Ok(()));
    assert_eq!(check(&[0, 1, 9]), Err(CertificateError::NotAVoter));
    assert_eq!(check(&[0, 1, 1]), Err(CertificateError::DuplicateSigner));
    assert_eq!(
        check(&[0, 1]),
        Err(CertificateError::BelowQuorum {
            signers: 2,
            quorum: 3
        })
    );
}

#[test]
fn configs_that_cannot_work_are_refused() {
    let refuse = |f: &dyn Fn(&mut Config)| {
        let mut c = config(4, Some(1));
        f(&mut c);
        Agreement::<Ev>::new(c).err().map(|e| e.code())
    };
    assert_eq!(refuse(&|_| {}), None);
    assert_eq!(refuse(&|c| c.voters.clear()), Some("no_voters"));
    assert_eq!(refuse(&|c| c.voters.swap(0, 1)), Some("voters_not_sorted"));
    assert_eq!(refuse(&|c| c.me = Some(addr(9))), Some("me_not_a_voter"));
    assert_eq!(refuse(&|c| c.quorum = 2), Some("quorum_out_of_range"));
    assert_eq!(refuse(&|c| c.quorum = 5), Some("quorum_out_of_range"));
    assert_eq!(refuse(&|c| c.max_rounds = 0), Some("no_rounds"));
}

#[test]
fn the_proposer_rotates_from_the_offset() {
    let mut c = config(4, None);
    c.offset = 6;
    let a = Agreement::<Ev>::new(c).unwrap();
    let order: Vec<_> = (0..5).map(|r| a.proposer(Round(r))).collect();
    assert_eq!(order, vec![addr(2), addr(3), addr(0), addr(1), addr(2)]);
}

#[test]
fn the_proposer_asks_for_a_value_once_and_proposes_it() {
    let mut n = Node::four();
    n.precommits(&[0, 2, 3], 0, None);
    assert_eq!(n.out, vec![Output::NeedProposal { round: Round(1) }]);
    n.out.clear();
    assert_eq!(
        n.a.propose(Round(2), val(5), 0),
        Err(Rejection::NotRequested)
    );
    n.a.propose(Round(1), val(5), 0).unwrap();
    n.collect();
    let p = Proposal {
        round: Round(1),
        value: val(5),
        valid_round: None,
    };
    assert_eq!(
        n.out,
        vec![Output::SendProposal {
            proposal: p,
            justification: vec![]
        }]
    );
    assert_eq!(
        n.a.propose(Round(1), val(5), 0),
        Err(Rejection::NotRequested)
    );
    // Delivered back, the node's own value needs no verdict.
    n.out.clear();
    n.proposal(1, 1, 5, None).unwrap();
    assert_eq!(n.sent(), vec![(1, Prevote, Some(5))]);
}
