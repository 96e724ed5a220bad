//! Session set-up shared by the v2 simulator tests.

use std::collections::BTreeMap;

use kms_protocol::dkg::sim::{Net, Scenario, SimMember};
use kms_protocol::session::{Schedule, SessionParams, SessionTimestamp, VssMode};

/// The phase length of every test session.
pub const PHASE_MS: u64 = 1_000;

/// Sessions start at virtual time 0.
pub fn schedule() -> Schedule {
    Schedule {
        start_ms: 0,
        phase_ms: PHASE_MS,
    }
}

/// A DKG among `members`.
pub fn dkg(members: &[SimMember], mode: VssMode) -> SessionParams {
    SessionParams::dkg(
        SessionTimestamp(600),
        mode,
        members.iter().map(SimMember::participant).collect(),
        schedule(),
    )
    .unwrap()
}

/// An honest run of `params` on a network seeded with `seed`, for 60 phases.
pub fn scenario(params: SessionParams, members: Vec<SimMember>, seed: u64) -> Scenario {
    Scenario {
        params,
        members,
        shares: BTreeMap::new(),
        net: Net {
            seed,
            ..Net::default()
        },
        byzantine: Vec::new(),
        until_ms: 60 * PHASE_MS,
    }
}
