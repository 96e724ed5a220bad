//! DKG in the simulated network: honest runs at several sizes in both modes.

mod common;

use std::collections::BTreeMap;

use common::*;
use kms_protocol::VssMode;
use kms_protocol::sim::NetConfig;

fn honest(n: usize, mode: VssMode) {
    honest_dkg(n, mode, n as u64);
}

#[test]
fn feldman_honest_4_7_10_15() {
    for n in [4, 7, 10, 15] {
        honest(n, VssMode::Feldman);
    }
}

#[test]
fn pedersen_honest_4_7_10_15() {
    for n in [4, 7, 10, 15] {
        honest(n, VssMode::Pedersen);
    }
}

#[test]
fn survives_reordering_and_loss_free_jitter() {
    let (ops, params) = dkg(7, VssMode::Feldman, 77);
    let f = run(
        params,
        &ops,
        BTreeMap::new(),
        vec![],
        NetConfig {
            seed: 9,
            min_delay_ms: 0,
            max_delay_ms: 900,
            ..NetConfig::default()
        },
    );
    check_agreement(&f);
}
