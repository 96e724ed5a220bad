//! Fraud proofs as the slashing contract takes them, built from the protocol's
//! [`FraudEvidence`].

use alloy::primitives::{Address, B256, Bytes, U256, keccak256};
use alloy::sol_types::SolValue;
use kms_protocol::messages::{Payload, decode_commitment_deferred};
use kms_protocol::{FraudEvidence, SessionParams, SignedMessage, VssMode};

use crate::bindings::EigenKMSSlashing;
use crate::bindings::EigenKMSSlashing::SessionDescriptor;
use crate::error::ChainError;

/// What a proof shows (the contract's `FraudKind`): the unit of "punished at most once
/// per dealer and session".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FraudKind {
    /// An invalid share (punished after three complaints).
    InvalidShare = 1,
    /// Two commitments for one session and phase.
    Equivocation = 2,
    /// A share or the registry names another commitment than the signed one.
    CommitmentInconsistency = 3,
    /// A signed commitment with a point the precompiles refuse (outside G2).
    InvalidCommitmentPoint = 4,
    /// A v2 reshare dealing whose constant would change the master secret.
    WrongReshareConstant = 5,
}

/// A proof the slashing contract can verify.
#[derive(Clone, Debug)]
pub enum FraudProof {
    /// `proveInvalidShare`: Feldman sessions only.
    InvalidShare {
        /// The dealer's signed phase-1 commitment.
        commitment: SignedMessage,
        /// The dealer's signed share that does not lie on it.
        share: SignedMessage,
        /// The session whose hash both messages carry (tells the contract the mode).
        session: SessionDescriptor,
    },
    /// `proveEquivocation`.
    Equivocation {
        /// One signed commitment.
        first: SignedMessage,
        /// Another, for the same session and phase.
        second: SignedMessage,
    },
    /// `proveCommitmentInconsistency`.
    CommitmentInconsistency {
        /// The dealer's signed phase-1 commitment.
        commitment: SignedMessage,
        /// The dealer's signed share naming another commitment hash.
        share: SignedMessage,
    },
    /// `proveRegistryInconsistency`: a signed phase-1 commitment whose hash differs
    /// from the one the dealer recorded in the commitment registry.
    RegistryInconsistency {
        /// The dealer's signed phase-1 commitment.
        commitment: SignedMessage,
    },
    /// `proveInvalidCommitmentPoint`: a signed commitment (either phase) whose point
    /// `index` lies outside G2.
    InvalidCommitmentPoint {
        /// The dealer's signed commitment.
        commitment: SignedMessage,
        /// The first coefficient outside G2.
        index: usize,
    },
}

fn tag(name: &str) -> B256 {
    keccak256(name.as_bytes())
}

fn payload_hash(m: &SignedMessage) -> B256 {
    keccak256(&m.payload)
}

/// The `SessionDescriptor` whose ABI hash is `params.session_hash()`.
pub fn session_descriptor(params: &SessionParams) -> Result<SessionDescriptor, ChainError> {
    let addrs = |s: &kms_protocol::OperatorSet| {
        s.addresses()
            .map(|a| Address::from(*a.as_bytes()))
            .collect::<Vec<_>>()
    };
    let d = SessionDescriptor {
        timestamp: params.timestamp.0,
        kind: params.kind.descriptor_byte(),
        mode: params.mode as u8,
        dealers: addrs(&params.dealers),
        dealerThreshold: U256::from(params.dealers.threshold()),
        players: addrs(&params.players),
        playerThreshold: U256::from(params.players.threshold()),
        previousCommitmentHash: B256::from(
            params
                .previous
                .as_ref()
                .map(kms_crypto::Commitment::hash)
                .unwrap_or([0; 32]),
        ),
    };
    // Guards against the protocol's descriptor changing without this copy following.
    if keccak256(d.abi_encode()).0 != params.session_hash() {
        return Err(ChainError::InvalidEvidence(
            "session descriptor does not reproduce the session hash".into(),
        ));
    }
    Ok(d)
}

/// The binding form of a signed message.
pub(crate) fn signed(m: &SignedMessage) -> EigenKMSSlashing::SignedPayload {
    EigenKMSSlashing::SignedPayload {
        payload: Bytes::from(m.payload.clone()),
        signature: Bytes::from(m.signature.to_bytes()),
    }
}

impl FraudProof {
    /// The proof of `evidence` from session `params`. Evidence the contract cannot
    /// verify is refused: a wrong reshare constant and Pedersen phase-2 fraud need the
    /// previous public polynomial or the session's `H2`, and so does an invalid share in
    /// a Pedersen session (`H2` comes from an off-chain coin flip). Those still
    /// disqualify the dealer off-chain.
    pub fn from_evidence(
        evidence: &FraudEvidence,
        params: &SessionParams,
    ) -> Result<Self, ChainError> {
        let proof = match evidence {
            FraudEvidence::InvalidShare { commitment, share } => {
                if params.mode == VssMode::Pedersen {
                    return Err(ChainError::Unsupported(
                        "invalid share in a Pedersen session (H2 is not known on-chain)",
                    ));
                }
                Self::InvalidShare {
                    commitment: commitment.clone(),
                    share: share.clone(),
                    session: session_descriptor(params)?,
                }
            }
            FraudEvidence::Equivocation { first, second } => Self::Equivocation {
                first: first.clone(),
                second: second.clone(),
            },
            FraudEvidence::CommitmentInconsistency { commitment, share } => {
                Self::CommitmentInconsistency {
                    commitment: commitment.clone(),
                    share: share.clone(),
                }
            }
            FraudEvidence::WrongReshareConstant { .. } => {
                return Err(ChainError::Unsupported(
                    "wrong reshare constant (needs the previous public polynomial)",
                ));
            }
            FraudEvidence::InvalidCommitmentPoint { commitment } => {
                let Ok(Payload::Commitment(c)) = commitment.peek() else {
                    return Err(ChainError::InvalidEvidence(
                        "invalid-point evidence without a commitment".into(),
                    ));
                };
                let index = decode_commitment_deferred(&c.commitment)
                    .ok()
                    .and_then(|parsed| parsed.subgroup_violation())
                    .ok_or_else(|| {
                        ChainError::InvalidEvidence("every commitment point is in G2".into())
                    })?;
                Self::InvalidCommitmentPoint {
                    commitment: commitment.clone(),
                    index,
                }
            }
            FraudEvidence::Phase2Inconsistency { .. } => {
                return Err(ChainError::Unsupported(
                    "Pedersen phase-2 inconsistency (needs the session's H2)",
                ));
            }
        };
        let (_, hash) = proof.session()?;
        if hash != params.session_hash() {
            return Err(ChainError::InvalidEvidence(
                "evidence is from another session".into(),
            ));
        }
        Ok(proof)
    }

    /// The kind of fraud shown.
    pub fn kind(&self) -> FraudKind {
        match self {
            Self::InvalidShare { .. } => FraudKind::InvalidShare,
            Self::Equivocation { .. } => FraudKind::Equivocation,
            Self::CommitmentInconsistency { .. } | Self::RegistryInconsistency { .. } => {
                FraudKind::CommitmentInconsistency
            }
            Self::InvalidCommitmentPoint { .. } => FraudKind::InvalidCommitmentPoint,
        }
    }

    fn first_message(&self) -> &SignedMessage {
        match self {
            Self::InvalidShare { commitment, .. }
            | Self::CommitmentInconsistency { commitment, .. }
            | Self::RegistryInconsistency { commitment }
            | Self::InvalidCommitmentPoint { commitment, .. } => commitment,
            Self::Equivocation { first, .. } => first,
        }
    }

    /// The accused dealer (the author of the proof's commitment).
    pub fn dealer(&self) -> Result<Address, ChainError> {
        let p = self
            .first_message()
            .peek()
            .map_err(|e| ChainError::InvalidEvidence(e.to_string()))?;
        Ok(Address::from(*p.author().as_bytes()))
    }

    /// `(session timestamp, session hash)` of the proof's commitment.
    pub fn session(&self) -> Result<(u64, [u8; 32]), ChainError> {
        match self
            .first_message()
            .peek()
            .map_err(|e| ChainError::InvalidEvidence(e.to_string()))?
        {
            p @ Payload::Commitment(_) => {
                let (t, h) = p.session();
                Ok((t.0, h))
            }
            _ => Err(ChainError::InvalidEvidence(
                "the proof's first message is not a commitment".into(),
            )),
        }
    }

    /// The contract's identifier of this proof (`proofAccepted` key) when `complainer`
    /// submits it (only invalid-share complaints are per complainer).
    pub fn proof_id(&self, complainer: Address) -> B256 {
        let id = |parts: &[B256]| keccak256(parts.abi_encode_packed());
        match self {
            Self::InvalidShare { share, .. } => id(&[
                tag("EIGENKMS-V1-PROOF-INVALID-SHARE"),
                payload_hash(share),
                complainer.into_word(),
            ]),
            Self::Equivocation { first, second } => {
                let (a, b) = (payload_hash(first), payload_hash(second));
                let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                id(&[tag("EIGENKMS-V1-PROOF-EQUIVOCATION"), lo, hi])
            }
            Self::CommitmentInconsistency { commitment, share } => id(&[
                tag("EIGENKMS-V1-PROOF-COMMITMENT-INCONSISTENCY"),
                payload_hash(commitment),
                payload_hash(share),
            ]),
            Self::RegistryInconsistency { commitment } => id(&[
                tag("EIGENKMS-V1-PROOF-REGISTRY-INCONSISTENCY"),
                payload_hash(commitment),
            ]),
            Self::InvalidCommitmentPoint { commitment, .. } => id(&[
                tag("EIGENKMS-V1-PROOF-INVALID-COMMITMENT-POINT"),
                payload_hash(commitment),
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_crypto::signer::{Bn254SecretKey, Bn254Signer, OperatorSigner};
    use kms_protocol::sim::SimOperator;
    use kms_protocol::{Schedule, SessionTimestamp};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::sync::Arc;

    fn params(mode: VssMode) -> SessionParams {
        let ops = SimOperator::generate(5, 1);
        SessionParams::dkg(
            SessionTimestamp(1_700_000_000),
            mode,
            ops.iter().map(SimOperator::participant).collect(),
            Schedule {
                start_ms: 0,
                phase_ms: 1,
            },
        )
        .unwrap()
    }

    #[test]
    fn descriptor_reproduces_the_session_hash() {
        for mode in [VssMode::Feldman, VssMode::Pedersen] {
            let p = params(mode);
            let d = session_descriptor(&p).unwrap();
            assert_eq!(keccak256(d.abi_encode()).0, p.session_hash());
            assert_eq!(d.mode, mode as u8);
            assert_eq!(d.players.len(), 5);
        }
    }

    #[test]
    fn proof_ids_are_order_free_and_per_complainer_for_invalid_shares() {
        let signer: Arc<dyn OperatorSigner> = Arc::new(Bn254Signer::new(Bn254SecretKey::random(
            &mut ChaCha20Rng::seed_from_u64(3),
        )));
        let author = kms_crypto::OperatorAddress::from_bytes([1; 20]);
        let msg = |b: u8| {
            let bytes = vec![1, b];
            let hash: [u8; 32] = keccak256(&bytes).0;
            SignedMessage {
                payload: bytes,
                hash,
                signer: author,
                signature: signer.sign(&hash),
            }
        };
        let (a, b) = (msg(1), msg(2));
        let e1 = FraudProof::Equivocation {
            first: a.clone(),
            second: b.clone(),
        };
        let e2 = FraudProof::Equivocation {
            first: b.clone(),
            second: a.clone(),
        };
        let (x, y) = (Address::repeat_byte(1), Address::repeat_byte(2));
        assert_eq!(e1.proof_id(x), e2.proof_id(y));
        let s = FraudProof::InvalidShare {
            commitment: a.clone(),
            share: b.clone(),
            session: session_descriptor(&params(VssMode::Feldman)).unwrap(),
        };
        assert_ne!(s.proof_id(x), s.proof_id(y));
        assert_eq!(s.kind(), FraudKind::InvalidShare);
        // The first message is not a commitment: no session to read.
        assert!(s.session().is_err());
    }
}
