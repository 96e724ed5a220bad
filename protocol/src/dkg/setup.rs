//! What every operator of a v2 session must agree on before it starts: the session
//! parameters and the deployment they belong to, bound into the session hash, so
//! that nodes with different views refuse each other's messages instead of
//! convicting each other. Nothing here depends on which peers a node could reach:
//! the players' encryption keys are agreed inside the session ([`super::roster`]).

use alloy_primitives::{Address, B256, U256};
use alloy_sol_types::{SolValue, sol};
use kms_crypto::{OperatorAddress, Scalar};
use sha3::{Digest, Keccak256};

use super::ids::{DeploymentHash, SessionHash};
use crate::session::{OperatorSet, SessionParams};

/// The deployment a session belongs to: messages and certificates of another chain,
/// registry, AVS or operator set never verify here (and cannot slash here).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// EVM chain id (0 for a cluster without a chain).
    pub chain_id: u64,
    /// The `EigenKMSSlashing` contract, which checks this binding on every v2 proof
    /// (`deploymentHash()`).
    pub registry: [u8; 20],
    /// The AVS address.
    pub avs: [u8; 20],
    /// The EigenLayer operator set id.
    pub operator_set_id: u32,
}

sol! {
    /// The ABI preimage of [`Deployment::hash`].
    struct DeploymentDescriptor {
        uint256 chainId;
        address registry;
        address avs;
        uint32 operatorSetId;
    }

    /// The ABI preimage of [`Setup::hash`]; `EigenKMSSlashing` takes it as is.
    struct SessionDescriptorV2 {
        uint8 version;
        bytes32 deployment;
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

impl Deployment {
    /// `keccak256(abi.encode(chainId, registry, avs, operatorSetId))`.
    pub fn hash(&self) -> DeploymentHash {
        let d = DeploymentDescriptor {
            chainId: U256::from(self.chain_id),
            registry: Address::from(self.registry),
            avs: Address::from(self.avs),
            operatorSetId: self.operator_set_id,
        };
        DeploymentHash(Keccak256::digest(d.abi_encode()).into())
    }
}

/// A v2 session: parameters and deployment.
#[derive(Clone, Debug)]
pub struct Setup {
    /// Sets, thresholds, mode, previous key, schedule.
    pub params: SessionParams,
    /// Where it runs.
    pub deployment: Deployment,
}

impl Setup {
    /// The session of `params` in `deployment`.
    pub fn new(params: SessionParams, deployment: Deployment) -> Self {
        Self { params, deployment }
    }

    /// The session hash: every message names it.
    pub fn hash(&self) -> SessionHash {
        SessionHash(Keccak256::digest(self.descriptor().abi_encode()).into())
    }

    /// What the session hash is the hash of (the contract recomputes it).
    pub fn descriptor(&self) -> SessionDescriptorV2 {
        let p = &self.params;
        let addrs = |s: &OperatorSet| {
            s.addresses()
                .map(|a| Address::from(*a.as_bytes()))
                .collect::<Vec<_>>()
        };
        SessionDescriptorV2 {
            version: 2,
            deployment: B256::from(self.deployment.hash().0),
            timestamp: p.timestamp.0,
            kind: p.kind.descriptor_byte(),
            mode: p.mode as u8,
            dealers: addrs(&p.dealers),
            dealerThreshold: U256::from(p.dealers.threshold()),
            players: addrs(&p.players),
            playerThreshold: U256::from(p.players.threshold()),
            previousCommitmentHash: B256::from(
                p.previous.as_ref().map(|c| c.hash()).unwrap_or([0; 32]),
            ),
        }
    }

    /// The players with their evaluation points, in the order ciphertexts use.
    pub fn players(&self) -> impl Iterator<Item = (&OperatorAddress, &Scalar)> {
        self.params
            .players
            .addresses()
            .filter_map(|a| self.params.players.evaluation_point(a).map(|x| (a, x)))
    }

    /// A player's index in the ciphertext order.
    pub fn player_index(&self, player: &OperatorAddress) -> Option<usize> {
        self.params.players.addresses().position(|a| a == player)
    }

    /// The agreement's leader offset: from the session hash, so that the first
    /// proposer is not always the same operator.
    pub fn leader_offset(&self) -> usize {
        let h = self.hash().0;
        let n = self.params.players.len().max(1);
        (u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]) % n as u64) as usize
    }
}
