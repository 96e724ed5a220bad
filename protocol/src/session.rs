//! What identifies a session: its timestamp, kind, VSS mode and exact operator sets.

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256};
use alloy_sol_types::{SolValue, sol};
use kms_crypto::signer::OperatorPublicKey;
use kms_crypto::{Commitment, OperatorAddress, Scalar, evaluation_point, threshold};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};

use crate::error::ProtocolError;

/// A session's name: the interval boundary (Unix seconds) it started at. Key versions
/// are named by the timestamp of the session that produced them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionTimestamp(pub u64);

/// Which protocol a session runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SessionKind {
    /// Genesis: a fresh master secret.
    Dkg,
    /// Rotation of the shares of the existing master secret.
    Reshare,
}

impl SessionKind {
    /// The `kind` byte of the session descriptor, and so of the session hash every
    /// message carries. A reshare is 2: its dealers deal Lagrange-weighted shares
    /// (`f(0) = λ·s`). Releases before that used 1 for the unweighted rule; with
    /// distinct bytes, nodes of the two rules never share a session (each refuses the
    /// other's messages as another session's) instead of convicting each other's
    /// honest dealers of wrong constants during a rolling upgrade.
    pub fn descriptor_byte(self) -> u8 {
        match self {
            Self::Dkg => 0,
            Self::Reshare => 2,
        }
    }
}

/// The verifiable secret sharing scheme of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VssMode {
    /// Feldman VSS (alpha): simple, but a rushing dealer can bias the key.
    Feldman,
    /// Pedersen VSS with the GJKR two-phase DKG: unbiased key.
    Pedersen,
}

/// One operator as a session sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    /// On-chain identity.
    pub address: OperatorAddress,
    /// Its registered operator key: it signs the participant's protocol messages, or
    /// certifies the protocol key that does (`kms_crypto::signer::certified`).
    pub public_key: OperatorPublicKey,
}

/// A set of operators with their evaluation points and the threshold of the sharing
/// they hold. Sorted by address, so every node derives the same order.
#[derive(Clone, Debug)]
pub struct OperatorSet {
    members: BTreeMap<OperatorAddress, (Participant, Scalar)>,
    threshold: usize,
}

impl OperatorSet {
    /// A set with the standard threshold `ceil(2n/3)`.
    pub fn new(members: Vec<Participant>) -> Result<Self, ProtocolError> {
        let t = threshold(members.len());
        Self::with_threshold(members, t)
    }

    /// A set with an explicit threshold (reshare dealers keep the old one).
    pub fn with_threshold(
        members: Vec<Participant>,
        threshold: usize,
    ) -> Result<Self, ProtocolError> {
        if members.is_empty() || threshold == 0 || threshold > members.len() {
            return Err(ProtocolError::InvalidSession(
                "empty set or impossible threshold",
            ));
        }
        let mut map = BTreeMap::new();
        let mut points = std::collections::HashSet::new();
        for p in members {
            if p.address.is_zero() {
                return Err(ProtocolError::InvalidSession(
                    "zero address in operator set",
                ));
            }
            let x = evaluation_point(&p.address).map_err(|_| {
                ProtocolError::InvalidSession("operator with zero evaluation point")
            })?;
            if !points.insert(x.to_bytes_be()) {
                return Err(ProtocolError::InvalidSession("duplicate evaluation point"));
            }
            if map.insert(p.address, (p, x)).is_some() {
                return Err(ProtocolError::InvalidSession("duplicate operator"));
            }
        }
        Ok(Self {
            members: map,
            threshold,
        })
    }

    /// The reconstruction threshold of this set's sharing.
    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Number of operators.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the set is empty (never, once constructed).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Whether `a` is a member.
    pub fn contains(&self, a: &OperatorAddress) -> bool {
        self.members.contains_key(a)
    }

    /// Addresses in canonical (sorted) order.
    pub fn addresses(&self) -> impl Iterator<Item = &OperatorAddress> {
        self.members.keys()
    }

    /// The member record of `a`.
    pub fn participant(&self, a: &OperatorAddress) -> Option<&Participant> {
        self.members.get(a).map(|(p, _)| p)
    }

    /// The evaluation point of `a`.
    pub fn evaluation_point(&self, a: &OperatorAddress) -> Option<&Scalar> {
        self.members.get(a).map(|(_, x)| x)
    }

    /// All members.
    pub fn participants(&self) -> impl Iterator<Item = &Participant> {
        self.members.values().map(|(p, _)| p)
    }

    /// The Lagrange coefficient at zero of every member over the whole set:
    /// `f(0) = Σ λ_a·f(x_a)` for any polynomial of degree `< len()`. A reshare dealer
    /// deals `λ_a·s_a` (see [`crate::engine`]), so that when every dealer qualifies
    /// the new polynomial is the plain sum of the dealt ones.
    pub fn lagrange_at_zero(&self) -> Result<BTreeMap<OperatorAddress, Scalar>, ProtocolError> {
        let xs: Vec<Scalar> = self.members.values().map(|(_, x)| x.clone()).collect();
        // The points were checked distinct and non-zero when the set was built.
        let weights = kms_crypto::poly::lagrange_coefficients_at_zero(&xs)
            .map_err(|_| ProtocolError::InvalidSession("evaluation points"))?;
        Ok(self.members.keys().copied().zip(weights).collect())
    }
}

/// Phase timing of a session, in milliseconds of the injected clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// When the session starts.
    pub start_ms: u64,
    /// Length of each phase.
    pub phase_ms: u64,
}

impl Schedule {
    /// The end of phase `i` (0-based).
    pub fn phase_end(&self, i: u64) -> u64 {
        self.start_ms
            .saturating_add(self.phase_ms.saturating_mul(i + 1))
    }
}

/// Everything that defines one session. All operators of a session must construct
/// identical parameters; the [`SessionParams::session_hash`] in every message makes
/// any disagreement (another set, threshold, mode, previous key) a rejection.
#[derive(Clone, Debug)]
pub struct SessionParams {
    /// The session's timestamp.
    pub timestamp: SessionTimestamp,
    /// DKG or reshare.
    pub kind: SessionKind,
    /// Feldman or Pedersen.
    pub mode: VssMode,
    /// Who deals. DKG: every player. Reshare: the current share holders staying in the
    /// set, with the *old* threshold.
    pub dealers: OperatorSet,
    /// Who receives shares of the new version, with the new threshold.
    pub players: OperatorSet,
    /// Reshare: the public polynomial of the current version.
    pub previous: Option<Commitment>,
    /// Phase deadlines.
    pub schedule: Schedule,
}

sol! {
    struct SessionDescriptor {
        uint64 timestamp;
        uint8 kind;
        uint8 mode;
        address[] dealers;
        uint256 dealerThreshold;
        address[] players;
        uint256 playerThreshold;
        bytes32 previousCommitmentHash;
    }
}

impl SessionParams {
    /// A DKG among `players`.
    pub fn dkg(
        timestamp: SessionTimestamp,
        mode: VssMode,
        players: Vec<Participant>,
        schedule: Schedule,
    ) -> Result<Self, ProtocolError> {
        let players = OperatorSet::new(players)?;
        Ok(Self {
            timestamp,
            kind: SessionKind::Dkg,
            mode,
            dealers: players.clone(),
            players,
            previous: None,
            schedule,
        })
    }

    /// A reshare of the key with public polynomial `previous` (threshold = its length)
    /// from the `dealers` that hold shares of it to the new set `players`.
    pub fn reshare(
        timestamp: SessionTimestamp,
        mode: VssMode,
        dealers: Vec<Participant>,
        previous: Commitment,
        players: Vec<Participant>,
        schedule: Schedule,
    ) -> Result<Self, ProtocolError> {
        let old_t = previous.threshold();
        if dealers.len() < old_t {
            return Err(ProtocolError::InvalidSession(
                "fewer dealers than the old threshold",
            ));
        }
        let dealers = OperatorSet::with_threshold(dealers, old_t)?;
        let players = OperatorSet::new(players)?;
        Ok(Self {
            timestamp,
            kind: SessionKind::Reshare,
            mode,
            dealers,
            players,
            previous: Some(previous),
            schedule,
        })
    }

    /// `keccak256(abi.encode(SessionDescriptor))`: binds every message to this exact
    /// session, so a message replayed from another session or another view of the
    /// operator set is rejected.
    pub fn session_hash(&self) -> [u8; 32] {
        let addrs = |s: &OperatorSet| {
            s.addresses()
                .map(|a| Address::from(*a.as_bytes()))
                .collect::<Vec<_>>()
        };
        let d = SessionDescriptor {
            timestamp: self.timestamp.0,
            kind: self.kind.descriptor_byte(),
            mode: self.mode as u8,
            dealers: addrs(&self.dealers),
            dealerThreshold: alloy_primitives::U256::from(self.dealers.threshold()),
            players: addrs(&self.players),
            playerThreshold: alloy_primitives::U256::from(self.players.threshold()),
            previousCommitmentHash: B256::from(
                self.previous
                    .as_ref()
                    .map(Commitment::hash)
                    .unwrap_or([0; 32]),
            ),
        };
        Keccak256::digest(d.abi_encode()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::SimOperator;

    /// A reshare's session hash names the weighted rule (kind byte 2), so a node of a
    /// release that still deals unweighted shares (kind byte 1) computes another hash
    /// for the same session and the two refuse each other's messages.
    #[test]
    fn reshare_sessions_are_bound_to_the_weighted_rule() {
        let ops = SimOperator::generate(4, 3);
        let members: Vec<Participant> = ops.iter().map(SimOperator::participant).collect();
        let schedule = Schedule {
            start_ms: 0,
            phase_ms: 1_000,
        };
        let previous = kms_crypto::vss::feldman::FeldmanDealing::new(
            Scalar::from_u64(5),
            3,
            &mut <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::from_seed([1; 32]),
        )
        .unwrap()
        .commitment()
        .clone();
        let p = SessionParams::reshare(
            SessionTimestamp(9),
            VssMode::Feldman,
            members.clone(),
            previous.clone(),
            members,
            schedule,
        )
        .unwrap();
        let with_kind = |kind: u8| {
            let addrs: Vec<Address> = p
                .dealers
                .addresses()
                .map(|a| Address::from(*a.as_bytes()))
                .collect();
            let d = SessionDescriptor {
                timestamp: 9,
                kind,
                mode: VssMode::Feldman as u8,
                dealers: addrs.clone(),
                dealerThreshold: alloy_primitives::U256::from(3),
                players: addrs,
                playerThreshold: alloy_primitives::U256::from(3),
                previousCommitmentHash: B256::from(previous.hash()),
            };
            <[u8; 32]>::from(Keccak256::digest(d.abi_encode()))
        };
        assert_eq!(p.session_hash(), with_kind(2));
        assert_ne!(p.session_hash(), with_kind(1));
        assert_eq!(SessionKind::Dkg.descriptor_byte(), 0);
    }
}
