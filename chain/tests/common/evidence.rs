//! Protocol messages and fraud evidence for the tests: straight from signed payloads
//! (any size, any forgery) and from the protocol's simulated network with Byzantine
//! dealers.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy::primitives::{B256, Bytes};
use kms_crypto::signer::OperatorSigner;
use kms_crypto::vss::feldman::FeldmanDealing;
use kms_crypto::{Commitment, OperatorAddress, Scalar, evaluation_point};
use kms_protocol::messages::{
    DealerCommitment, DealerShare, Payload, SignedMessage, encode_commitment,
};
use kms_protocol::sim::{Behaviour, NetConfig, Network, SimOperator};
use kms_protocol::{
    FraudEvidence, Participant, Schedule, SessionParams, SessionTimestamp, VssMode,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

pub fn schedule() -> Schedule {
    Schedule {
        start_ms: 0,
        phase_ms: 1_000,
    }
}

/// A DKG session among `members`.
pub fn session(ts: u64, mode: VssMode, members: Vec<Participant>) -> SessionParams {
    SessionParams::dkg(SessionTimestamp(ts), mode, members, schedule()).expect("params")
}

fn addr(a: &OperatorAddress) -> alloy::primitives::Address {
    alloy::primitives::Address::from(*a.as_bytes())
}

/// `dealer`'s signed commitment message.
pub fn commitment_msg(
    dealer: &SimOperator,
    params: &SessionParams,
    phase: u8,
    c: &Commitment,
) -> SignedMessage {
    let p = Payload::Commitment(DealerCommitment {
        sessionTimestamp: params.timestamp.0,
        sessionHash: B256::from(params.session_hash()),
        dealer: addr(&dealer.address),
        phase,
        commitment: encode_commitment(c),
    });
    SignedMessage::sign(&p, dealer.address, dealer.signer.as_ref())
}

/// `dealer`'s signed share message for `player`.
pub fn share_msg(
    dealer: &SimOperator,
    params: &SessionParams,
    player: &OperatorAddress,
    commitment_hash: [u8; 32],
    value: [u8; 32],
    blinding: [u8; 32],
) -> SignedMessage {
    let p = Payload::Share(DealerShare {
        sessionTimestamp: params.timestamp.0,
        sessionHash: B256::from(params.session_hash()),
        dealer: addr(&dealer.address),
        player: addr(player),
        commitmentHash: B256::from(commitment_hash),
        share: B256::from(value),
        blinding: B256::from(blinding),
    });
    SignedMessage::sign(&p, dealer.address, dealer.signer.as_ref())
}

/// Re-signs a (possibly edited) payload as `signer`.
pub fn resign(p: &Payload, author: OperatorAddress, signer: &dyn OperatorSigner) -> SignedMessage {
    SignedMessage::sign(p, author, signer)
}

/// Signs raw payload bytes (for non-canonical encodings).
pub fn sign_raw(
    bytes: Vec<u8>,
    author: OperatorAddress,
    signer: &dyn OperatorSigner,
) -> SignedMessage {
    use sha3::{Digest, Keccak256};
    let hash: [u8; 32] = Keccak256::digest(&bytes).into();
    SignedMessage {
        payload: bytes,
        hash,
        signer: author,
        signature: signer.sign(&hash),
    }
}

/// A dealer's honest dealing in `params` (degree from the players' threshold).
pub struct Dealing {
    pub dealing: FeldmanDealing,
    pub commitment: SignedMessage,
}

impl Dealing {
    pub fn new(dealer: &SimOperator, params: &SessionParams, seed: u64) -> Self {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let dealing = FeldmanDealing::new(
            Scalar::random(&mut rng),
            params.players.threshold(),
            &mut rng,
        )
        .expect("dealing");
        let commitment = commitment_msg(dealer, params, 1, dealing.commitment());
        Self {
            dealing,
            commitment,
        }
    }

    pub fn hash(&self) -> [u8; 32] {
        self.dealing.commitment().hash()
    }

    /// The signed share for `player`, plus `delta` (0 = valid).
    pub fn share(
        &self,
        dealer: &SimOperator,
        params: &SessionParams,
        player: &OperatorAddress,
        delta: u64,
    ) -> SignedMessage {
        let x = evaluation_point(player).expect("point");
        let v = &self.dealing.share(&x) + &Scalar::from_u64(delta);
        share_msg(
            dealer,
            params,
            player,
            self.hash(),
            v.to_bytes_be(),
            [0; 32],
        )
    }
}

/// Crafted invalid-share evidence: `dealer`'s share for `player` is off by one.
pub fn invalid_share(
    dealer: &SimOperator,
    params: &SessionParams,
    player: &OperatorAddress,
    seed: u64,
) -> FraudEvidence {
    let d = Dealing::new(dealer, params, seed);
    FraudEvidence::InvalidShare {
        share: d.share(dealer, params, player, 1),
        commitment: d.commitment,
    }
}

/// Crafted equivocation evidence: two commitments for the same session and phase.
pub fn equivocation(dealer: &SimOperator, params: &SessionParams, seed: u64) -> FraudEvidence {
    FraudEvidence::Equivocation {
        first: Dealing::new(dealer, params, seed).commitment,
        second: Dealing::new(dealer, params, seed + 1).commitment,
    }
}

/// Crafted inconsistency evidence: the share names another commitment.
pub fn inconsistency(
    dealer: &SimOperator,
    params: &SessionParams,
    player: &OperatorAddress,
    seed: u64,
) -> FraudEvidence {
    let a = Dealing::new(dealer, params, seed);
    let b = Dealing::new(dealer, params, seed + 1);
    FraudEvidence::CommitmentInconsistency {
        commitment: a.commitment.clone(),
        share: b.share(dealer, params, player, 0),
    }
}

// ---------------------------------------------------------------- simulated sessions

#[allow(unused_imports)] // not every test binary uses them
pub use kms_protocol::sim::byzantine::{Equivocator, InvalidShares};

/// Runs `params` with `byzantine` behaviours; returns each node's evidence.
pub fn run_session(
    params: &SessionParams,
    ops: &[SimOperator],
    byzantine: Vec<(OperatorAddress, Box<dyn Behaviour>)>,
    seed: u64,
) -> BTreeMap<OperatorAddress, Vec<FraudEvidence>> {
    let mut net = Network::new(
        params,
        ops,
        BTreeMap::new(),
        NetConfig {
            seed,
            ..NetConfig::default()
        },
    )
    .expect("network");
    for (a, b) in byzantine {
        net.set_behaviour(a, b);
    }
    net.run(params.schedule.phase_end(10));
    ops.iter()
        .map(|o| (o.address, net.evidence(&o.address).to_vec()))
        .collect()
}

/// Payload bytes with one extra trailing byte (valid ABI prefix, not canonical).
pub fn with_trailing_byte(m: &SignedMessage, signer: &SimOperator) -> SignedMessage {
    let mut bytes = m.payload.clone();
    bytes.push(0);
    sign_raw(bytes, signer.address, signer.signer.as_ref())
}

pub fn bytes(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

pub fn arc(s: &SimOperator) -> Arc<dyn OperatorSigner> {
    s.signer.clone()
}
