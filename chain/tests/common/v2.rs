//! Protocol v2 sessions bound to the fixture's deployment: members with encryption
//! keys certified for it, setups, and the v2 engines run in the simulator.

use std::collections::BTreeMap;

use kms_chain::KmsContracts;
use kms_crypto::Commitment;
use kms_protocol::Participant;
use kms_protocol::SignedMessage;
use kms_protocol::dkg::sim::{Net, Network, Outgoing, SimMember};
use kms_protocol::dkg::wire::Kind;
use kms_protocol::dkg::{BaseDecision, Deployment, Evidence, Setup, forge};
use kms_protocol::session::{SessionParams, SessionTimestamp, VssMode};
use kms_protocol::sim::SimOperator;

use super::Fixture;
use super::evidence::schedule;

/// The v2 deployment of the fixture: anvil's chain, the slashing contract, the AVS and
/// the operator set.
pub async fn deployment(f: &Fixture) -> Deployment {
    use alloy::providers::Provider;
    let chain_id = f
        .avs
        .connection()
        .provider()
        .get_chain_id()
        .await
        .expect("chain id");
    Deployment {
        chain_id,
        registry: f.deployment.slashing.0.0,
        avs: f.deployment.avs.0.0,
        operator_set_id: f.deployment.operator_set_id,
    }
}

/// The fixture's operators followed by `extra` unregistered ones, all with encryption
/// keys, sorted by address (the deployment is the sessions' business: a member's
/// keys are announced per session).
pub fn members(f: &Fixture, extra: usize, _deployment: &Deployment, seed: u64) -> Vec<SimMember> {
    let mut ops = f.sims();
    ops.extend(SimOperator::generate(extra, seed));
    let mut m = SimMember::with_keys(ops, seed);
    m.sort_by_key(SimMember::address);
    m
}

/// The member of a fixture operator.
pub fn member<'a>(members: &'a [SimMember], op: &super::TestOperator) -> &'a SimMember {
    members
        .iter()
        .find(|m| m.address() == op.address)
        .expect("a member")
}

fn participants(ms: &[SimMember]) -> Vec<Participant> {
    ms.iter().map(SimMember::participant).collect()
}

/// A Feldman DKG among `members` at `ts`.
pub fn dkg(members: &[SimMember], ts: u64, deployment: Deployment) -> Setup {
    dkg_in(VssMode::Feldman, members, ts, deployment)
}

/// A DKG in `mode` among `members` at `ts`.
pub fn dkg_in(mode: VssMode, members: &[SimMember], ts: u64, deployment: Deployment) -> Setup {
    let params = SessionParams::dkg(
        SessionTimestamp(ts),
        mode,
        participants(members),
        schedule(),
    )
    .expect("params");
    Setup::new(params, deployment)
}

/// The agreement quorum of `setup`'s players.
pub fn quorum(setup: &Setup) -> usize {
    let p = &setup.params.players;
    kms_protocol::agreement::quorum(p.len(), p.threshold()).expect("quorum")
}

/// A Feldman reshare from `dealers` (holding `previous`) to `players`.
pub fn reshare(
    dealers: &[SimMember],
    previous: Commitment,
    players: &[SimMember],
    ts: u64,
    deployment: Deployment,
) -> Setup {
    reshare_in(VssMode::Feldman, dealers, previous, players, ts, deployment)
}

/// A reshare in `mode` from `dealers` (holding `previous`) to `players`.
pub fn reshare_in(
    mode: VssMode,
    dealers: &[SimMember],
    previous: Commitment,
    players: &[SimMember],
    ts: u64,
    deployment: Deployment,
) -> Setup {
    let params = SessionParams::reshare(
        SessionTimestamp(ts),
        mode,
        participants(dealers),
        previous,
        participants(players),
        schedule(),
    )
    .expect("params");
    Setup::new(params, deployment)
}

/// What each node of a simulated session ended with: its evidence and, in a Pedersen
/// session, its proof of the base.
pub type Ended = BTreeMap<kms_crypto::OperatorAddress, (Vec<Evidence>, Option<BaseDecision>)>;

/// Runs the v2 engines of `setup` with `bad` sending a dealing whose share for
/// `victim` is off by one; returns every node's evidence and base decision.
pub fn run_with_corrupt_share(
    setup: &Setup,
    members: &[SimMember],
    bad: &SimMember,
    victim: &SimMember,
    seed: u64,
) -> Ended {
    let index = setup.player_index(&victim.address()).expect("a player");
    let mut net = Network::new(
        setup,
        members,
        &BTreeMap::new(),
        Net {
            seed,
            ..Net::default()
        },
    );
    let dealer = bad.clone();
    let mut forged: Option<SignedMessage> = None;
    net.set_byzantine(
        bad.address(),
        Box::new(move |o: &Outgoing<'_>| {
            if o.kind != Kind::Dealing {
                return vec![(o.message.clone(), 0)];
            }
            let m = forged.get_or_insert_with(|| forge::corrupt_share(o.message, &dealer, index));
            vec![(m.clone(), 0)]
        }),
    );
    net.run(120_000);
    members
        .iter()
        .map(|m| {
            let a = m.address();
            let decision = net.engine(&a).and_then(|e| e.base_decision());
            (a, (net.evidence(&a).to_vec(), decision))
        })
        .collect()
}

/// The contract's verdict (an `eth_call` from `from`): `Ok` or the revert's name.
pub async fn verdict(from: &KmsContracts, proof: &kms_chain::FraudProofV2) -> Result<(), String> {
    from.check_fraud_proof_v2(proof)
        .await
        .map_err(|e| e.revert_name().unwrap_or("?").to_string())
}
