//! The adversarial sweep ([`kms_protocol::dkg::sweep`]) at CI size
//! ([`ci_cases`]): every kind × behaviour × protocol × mode once at n = 4 and once at
//! a larger size picked by the seed, split over a few tests so the harness runs them
//! in parallel. The example `v2-sweep` runs the full sweep. Every run must
//! keep agreement and no honest node may stall; a failure names the case and the
//! seed that replays it (`cargo run --release -p kms-protocol --example v2-sweep --
//! --only <case> --replay <seed>`).

use kms_protocol::dkg::sweep::{Case, Harness, Protocol, RunReport, ci_cases, run_seed};
use kms_protocol::session::VssMode;

/// The base seed of the CI sweep.
const BASE_SEED: u64 = 2026;

fn sweep(protocol: Protocol, mode: VssMode) {
    let mut harness = Harness::new();
    let cases: Vec<Case> = ci_cases(BASE_SEED)
        .into_iter()
        .filter(|c| c.protocol == protocol && c.mode == mode)
        .collect();
    let mut bad: Vec<RunReport> = Vec::new();
    for case in &cases {
        let r = harness.run(case, run_seed(BASE_SEED, case, 0));
        if r.violation.is_some() || r.stalled > 0 {
            bad.push(r);
        }
    }
    let lines: Vec<String> = bad
        .iter()
        .map(|r| {
            format!(
                "{} seed {:#x} (base {BASE_SEED}, run 0), byzantine {}: violation {:?}, {} stalled",
                r.case.label(),
                r.seed,
                r.byzantine,
                r.violation,
                r.stalled
            )
        })
        .collect();
    assert!(
        lines.is_empty(),
        "{} of {} runs failed:\n{}",
        lines.len(),
        cases.len(),
        lines.join("\n")
    );
}

#[test]
fn one_byzantine_operator_mistreating_any_kind_never_splits_or_stalls_a_feldman_dkg() {
    sweep(Protocol::Dkg, VssMode::Feldman);
}

#[test]
fn one_byzantine_operator_mistreating_any_kind_never_splits_or_stalls_a_pedersen_dkg() {
    sweep(Protocol::Dkg, VssMode::Pedersen);
}

#[test]
fn one_byzantine_operator_mistreating_any_kind_never_splits_or_stalls_a_feldman_reshare() {
    sweep(Protocol::Reshare, VssMode::Feldman);
}

#[test]
fn one_byzantine_operator_mistreating_any_kind_never_splits_or_stalls_a_pedersen_reshare() {
    sweep(Protocol::Reshare, VssMode::Pedersen);
}
