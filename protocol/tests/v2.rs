//! Protocol v2 sessions in the simulator: honest runs of every kind and mode, and
//! the attacks that split or stalled v1, each named after what it tried.

use std::collections::BTreeMap;

use kms_crypto::OperatorAddress;
use kms_protocol::dkg::sim::SimMember;
use kms_protocol::session::{SessionParams, SessionTimestamp, VssMode};

mod v2_common;

use v2_common::{PHASE_MS, dkg, scenario, schedule};

fn addresses(members: &[SimMember]) -> Vec<OperatorAddress> {
    members.iter().map(SimMember::address).collect()
}

#[test]
fn an_honest_feldman_dkg_agrees_and_finishes_before_any_deadline() {
    for n in [4, 7] {
        let members = SimMember::generate(n, n as u64);
        let honest = addresses(&members);
        let run = scenario(dkg(&members, VssMode::Feldman), members, 1).run();
        let v = run.check(&honest).unwrap();
        assert_eq!(v.activated, n, "{v:?}");
        for a in &honest {
            let done = run.network.stats(a).unwrap().done_at_ms.unwrap();
            assert!(done < PHASE_MS, "n = {n}: finished at {done} ms");
        }
    }
}

#[test]
fn an_honest_pedersen_dkg_agrees_and_finishes_before_any_deadline() {
    for n in [4, 7] {
        let members = SimMember::generate(n, 10 + n as u64);
        let honest = addresses(&members);
        let run = scenario(dkg(&members, VssMode::Pedersen), members, 2).run();
        let v = run.check(&honest).unwrap();
        assert_eq!(v.activated, n, "{v:?}");
        for a in &honest {
            let done = run.network.stats(a).unwrap().done_at_ms.unwrap();
            assert!(done < PHASE_MS, "n = {n}: finished at {done} ms");
        }
    }
}

fn reshare_from(
    previous: &kms_protocol::dkg::sim::Finished,
    dealers: &[SimMember],
    players: &[SimMember],
    mode: VssMode,
) -> (SessionParams, BTreeMap<OperatorAddress, kms_crypto::Scalar>) {
    let params = SessionParams::reshare(
        SessionTimestamp(1200),
        mode,
        dealers.iter().map(SimMember::participant).collect(),
        previous.commitment().expect("the DKG activated"),
        players.iter().map(SimMember::participant).collect(),
        schedule(),
    )
    .unwrap();
    (params, previous.shares())
}

#[test]
fn an_honest_reshare_keeps_the_master_key_in_both_modes() {
    for mode in [VssMode::Feldman, VssMode::Pedersen] {
        let members = SimMember::generate(7, 70);
        let honest = addresses(&members);
        let first = scenario(dkg(&members, mode), members.clone(), 3).run();
        assert_eq!(first.check(&honest).unwrap().activated, 7);
        let (params, shares) = reshare_from(&first, &members, &members, mode);
        let mut s = scenario(params, members.clone(), 4);
        s.shares = shares;
        let second = s.run();
        assert_eq!(second.check(&honest).unwrap().activated, 7, "{mode:?}");
        assert_eq!(
            second.commitment().unwrap().constant(),
            first.commitment().unwrap().constant(),
            "{mode:?}: the master key is unchanged"
        );
    }
}

#[test]
fn a_reshare_to_a_changed_set_hands_the_key_to_the_new_set() {
    let all = SimMember::generate(8, 80);
    let old: Vec<_> = all[..7].to_vec();
    let new: Vec<_> = all[1..].to_vec();
    let first = scenario(dkg(&old, VssMode::Feldman), old.clone(), 5).run();
    let (params, shares) = reshare_from(&first, &old, &new, VssMode::Feldman);
    let mut s = scenario(params, all.clone(), 6);
    s.shares = shares;
    let second = s.run();
    let v = second.check(&addresses(&all)).unwrap();
    assert_eq!(v.activated, 7);
    assert!(matches!(
        second.network.outcome(&all[0].address()),
        Some(Ok(kms_protocol::SessionOutcome::Departed { .. }))
    ));
    assert_eq!(
        second.commitment().unwrap().constant(),
        first.commitment().unwrap().constant()
    );
}
