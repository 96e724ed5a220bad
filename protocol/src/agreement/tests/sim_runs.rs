//! Seeded runs of the simulated network: safety in every run, termination once delays
//! are bounded with few enough faulty voters.

use super::outcome::Outcome;
use super::sim::{Byzantine, ByzantineValues, Network, Scenario, TIMEOUTS, run};

const SIZES: [usize; 4] = [4, 6, 7, 10];

/// `count` distinct voters chosen by `seed`, misbehaving per `mix`: 0 all vote for
/// everything, 1 all equivocate, 2 a cycle of silent, equivocating, voting for all.
fn byzantine(n: usize, count: usize, mix: usize, seed: u64) -> Vec<(usize, Byzantine)> {
    const CYCLE: [Byzantine; 3] = [
        Byzantine::Silent,
        Byzantine::Equivocator,
        Byzantine::VotesForEverything,
    ];
    let start = (seed % n as u64) as usize;
    (0..count)
        .map(|k| {
            let kind = match mix {
                0 => Byzantine::VotesForEverything,
                1 => Byzantine::Equivocator,
                _ => CYCLE[k % 3],
            };
            ((start + 3 * k) % n, kind)
        })
        .collect()
}

fn seed(n: usize, mix: usize, run: u64, salt: u64) -> u64 {
    (salt << 48) ^ ((n as u64) << 32) ^ ((mix as u64) << 24) ^ run
}

/// Sweeps sizes, Byzantine mixes and seeds; returns the outcomes with their labels.
fn sweep(
    runs: u64,
    salt: u64,
    faulty: impl Fn(usize) -> usize,
    make: impl Fn(usize, Vec<(usize, Byzantine)>, u64) -> Scenario,
    mut check: impl FnMut(&str, &Scenario, &Outcome),
) -> usize {
    let (mut total, mut decided, mut rounds, mut events) = (0, 0, 0, 0);
    for n in SIZES {
        for mix in 0..3 {
            for r in 0..runs {
                let s = seed(n, mix, r, salt);
                let scenario = make(n, byzantine(n, faulty(n), mix, s), s);
                let label = format!("n = {n}, mix {mix}, seed {s:#x}");
                let outcome = run(scenario.clone());
                outcome.assert_safe(&label);
                check(&label, &scenario, &outcome);
                total += 1;
                decided += usize::from(!outcome.decisions.is_empty());
                rounds += outcome.last_round() as usize;
                events += outcome.events;
            }
        }
    }
    eprintln!(
        "{total} runs, {decided} with decisions, mean last round {:.2}, mean events {}",
        rounds as f64 / decided.max(1) as f64,
        events / total.max(1)
    );
    total
}

fn n_minus_t(n: usize) -> usize {
    n - (2 * n).div_ceil(3)
}

fn n_minus_q(n: usize) -> usize {
    n - super::super::quorum(n, (2 * n).div_ceil(3)).unwrap()
}

/// Asynchrony throughout: drops for good, delays around every timeout, verdicts that
/// differ between honest nodes. Only safety can be asked for.
#[test]
fn no_two_values_get_certificates_with_n_minus_t_byzantine_on_a_lossy_network() {
    let net = |seed: u64| Network {
        max_delay: 40,
        chaos_per_mille: [30, 80, 150][(seed % 3) as usize],
        gst: u64::MAX,
        lossy: true,
        max_verdict_delay: 100,
        max_start_skew: 30,
        flaky_verdicts_per_mille: 100,
    };
    let mut accused = 0;
    let runs = sweep(
        100,
        1,
        n_minus_t,
        |n, byzantine, seed| Scenario {
            n,
            byzantine,
            values: ByzantineValues::Split,
            network: net(seed),
            max_rounds: 10,
            seed,
            quorum: None,
        },
        |_, _, o| accused += usize::from(!o.accused.is_empty()),
    );
    assert!(
        accused > runs / 4,
        "equivocation reported in {accused} of {runs} runs"
    );
}

fn partial_synchrony() -> Network {
    Network {
        max_delay: 30,
        chaos_per_mille: 200,
        gst: 300,
        lossy: false,
        max_verdict_delay: 60,
        max_start_skew: 30,
        flaky_verdicts_per_mille: 100,
    }
}

/// Before `gst` messages are late (around each timeout) or held back; after it they
/// arrive within 30 ms, while timeouts grow by 10 ms a round.
#[test]
fn one_byzantine_voter_cannot_stop_termination_once_delays_are_bounded() {
    let mut last_round = 0;
    sweep(
        60,
        2,
        |_| 1,
        |n, byzantine, seed| Scenario {
            n,
            byzantine,
            values: ByzantineValues::Consistent,
            network: partial_synchrony(),
            max_rounds: 40,
            seed,
            quorum: None,
        },
        |label, _, o| {
            o.assert_terminated(label);
            last_round = last_round.max(o.last_round());
        },
    );
    assert!(last_round < 40);
}

/// As many Byzantine voters as safety tolerates (`n − t`): safe always, and live
/// too where that is no more than `n − q`.
#[test]
fn n_minus_t_byzantine_voters_never_break_safety_and_terminate_when_within_n_minus_q() {
    sweep(
        60,
        3,
        n_minus_t,
        |n, byzantine, seed| Scenario {
            n,
            byzantine,
            values: ByzantineValues::Consistent,
            network: partial_synchrony(),
            max_rounds: 40,
            seed,
            quorum: None,
        },
        |label, s, o| {
            if s.byzantine.len() <= n_minus_q(s.n) {
                o.assert_terminated(label);
            }
        },
    );
}

/// With every honest voter fast and the first proposer honest, nothing waits for a
/// timeout: all decide in round 0 before the propose timeout could fire.
#[test]
fn a_fast_honest_network_decides_in_round_zero_before_any_timeout() {
    for n in SIZES {
        for r in 0..20 {
            let s = Scenario {
                n,
                byzantine: vec![],
                values: ByzantineValues::Consistent,
                network: Network {
                    max_delay: 3,
                    chaos_per_mille: 0,
                    gst: 0,
                    lossy: false,
                    max_verdict_delay: 0,
                    max_start_skew: 0,
                    flaky_verdicts_per_mille: 0,
                },
                max_rounds: 4,
                seed: seed(n, 0, r, 4),
                quorum: None,
            };
            let o = run(s);
            o.assert_safe("fast");
            o.assert_terminated("fast");
            for (i, (at, round, _)) in &o.decisions {
                assert_eq!(round.0, 0, "n = {n}: node {i}");
                assert!(*at < TIMEOUTS.propose_ms, "n = {n}: node {i} at {at}");
            }
        }
    }
}

/// The simulator finds the attack a quorum of `t` allows when `n ≡ 0 (mod 3)`:
/// with n = 6 and t = 4, two sets of 4 share only 2 voters, both of them Byzantine.
#[test]
fn a_quorum_of_t_lets_two_values_be_certified_when_n_is_a_multiple_of_three() {
    let broken = (0..300)
        .filter(|&r| {
            let s = seed(6, 0, r, 5);
            let o = run(Scenario {
                n: 6,
                byzantine: byzantine(6, 2, 0, s),
                values: ByzantineValues::Split,
                network: partial_synchrony(),
                max_rounds: 10,
                seed: s,
                quorum: Some(4),
            });
            o.certifiable().len() > 1
        })
        .count();
    eprintln!("{broken} of 300 runs certified two values");
    assert!(broken > 0, "no run certified two values with q = t");
}
