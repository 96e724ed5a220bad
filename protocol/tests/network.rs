//! Network faults: a partitioned node fails cleanly while the others finish; random
//! loss never makes honest nodes disagree.

mod common;

use std::collections::BTreeMap;

use common::*;
use kms_protocol::sim::{NetConfig, Network};
use kms_protocol::{SessionFailure, SessionOutcome, VssMode};

#[test]
fn partitioned_node_fails_cleanly_and_the_rest_agree() {
    let (ops, params) = dkg(7, VssMode::Feldman, 31);
    let cut = ops[2].address;
    let end = params.schedule.phase_end(10);
    let config = NetConfig {
        seed: 31,
        partitions: vec![(0, 1_500, vec![cut])],
        ..NetConfig::default()
    };
    let mut net = Network::new(&params, &ops, BTreeMap::new(), config).unwrap();
    net.run(end);
    let mut versions = Vec::new();
    for o in &ops {
        match net.outcome(&o.address) {
            Some(Ok(SessionOutcome::NewVersion(v))) => {
                assert_ne!(o.address, cut, "the cut-off node cannot have its shares");
                versions.push(v.clone());
            }
            Some(Err(e)) => {
                assert_eq!(o.address, cut);
                assert!(
                    matches!(
                        e,
                        SessionFailure::MissingShare(_) | SessionFailure::NotEnoughQualified { .. }
                    ),
                    "{e}"
                );
            }
            other => panic!("{} ended with {other:?}", o.address),
        }
    }
    assert_eq!(versions.len(), 6);
    assert!(
        versions
            .iter()
            .all(|v| v.commitment == versions[0].commitment)
    );
    // Its own contribution could not be acknowledged in time by enough players, or it
    // was; either way the six agree on who qualified.
    assert!(
        versions
            .iter()
            .all(|v| v.qualified_dealers == versions[0].qualified_dealers)
    );
}

#[test]
fn message_loss_never_splits_the_honest_nodes() {
    for seed in 40..44 {
        let (ops, params) = dkg(7, VssMode::Feldman, seed);
        let end = params.schedule.phase_end(10);
        let config = NetConfig {
            seed,
            drop_ppm: 20_000,
            ..NetConfig::default()
        };
        let mut net = Network::new(&params, &ops, BTreeMap::new(), config).unwrap();
        net.run(end);
        let done: Vec<_> = ops
            .iter()
            .filter_map(|o| match net.outcome(&o.address) {
                Some(Ok(SessionOutcome::NewVersion(v))) => Some(v.clone()),
                _ => None,
            })
            .collect();
        assert!(
            done.len() >= 5,
            "seed {seed}: only {} nodes finished",
            done.len()
        );
        assert!(
            done.iter().all(|v| v.commitment == done[0].commitment),
            "seed {seed}: split"
        );
    }
}
