//! Protocol v2 fraud proofs as `EigenKMSSlashing` takes them (`prove*V2`), built from
//! [`kms_protocol::dkg::Evidence`], and their submission.
//!
//! Every proof carries the session's `SessionDescriptorV2`, whose deployment must be
//! the slashing contract's own ([`Setup::deployment`] with `registry` = the
//! `EigenKMSSlashing` address), so evidence of another deployment never slashes there.
//! In a Pedersen session the proofs that need the base `H2` (invalid shares, reshare
//! constants) also carry its [`BaseDecision`] (the coin agreement's certificate and
//! the reveals it names), from which the contract recomputes `H2`.
//!
//! A node turns evidence into a submitted proof with
//! [`KmsContracts::submit_evidence_v2`] (or [`FraudProofV2::from_evidence`] then
//! [`KmsContracts::submit_fraud_proof_v2`]), passing `Engine::base_decision()`.

use alloy::primitives::{Address, B256, Bytes, keccak256};
use alloy::sol_types::SolValue;
use kms_protocol::SignedMessage;
use kms_protocol::dkg::wire::Body;
use kms_protocol::dkg::{BaseDecision, Evidence, Setup};
use kms_protocol::session::VssMode;

use crate::bindings::EigenKMSSlashing::{BaseProof, SessionDescriptorV2};
use crate::connection::decode_revert;
use crate::error::ChainError;
use crate::fraud::{FraudKind, signed};
use crate::kms::{KmsContracts, PUNISHMENT_GAS_HEADROOM, ProofOutcome, ProofStatus, settle};

/// A v2 proof the slashing contract can verify.
#[derive(Clone, Debug)]
// Built once per fault and submitted, never held in bulk: boxing buys nothing.
#[allow(clippy::large_enum_variant)]
pub enum FraudProofV2 {
    /// `proveInvalidShareV2`.
    InvalidShare {
        /// The dealer's signed dealing.
        dealing: SignedMessage,
        /// The player's signed complaint about its share in it.
        complaint: SignedMessage,
        /// The player's key announcement (its payload is what the contract takes).
        key: SignedMessage,
        /// The session.
        session: SessionDescriptorV2,
        /// Pedersen: the proof of the session's base (empty for Feldman).
        base: BaseProof,
    },
    /// `proveEquivocationV2`.
    Equivocation {
        /// One signed message.
        first: SignedMessage,
        /// Another of the same author and slot.
        second: SignedMessage,
        /// The session.
        session: SessionDescriptorV2,
    },
    /// `proveWrongReshareConstantV2`.
    WrongReshareConstant {
        /// The dealer's signed dealing.
        dealing: SignedMessage,
        /// The session.
        session: SessionDescriptorV2,
        /// The current key's public polynomial (EIP-2537 points end to end).
        previous_commitment: Bytes,
        /// Pedersen: the proof of the session's base (empty for Feldman).
        base: BaseProof,
    },
}

/// The binding form of the session's descriptor (same ABI as the protocol's).
pub fn session_descriptor_v2(setup: &Setup) -> Result<SessionDescriptorV2, ChainError> {
    SessionDescriptorV2::abi_decode(&setup.descriptor().abi_encode())
        .map_err(|e| ChainError::InvalidEvidence(format!("session descriptor: {e}")))
}

/// The binding form of a base decision (`None`: the empty proof of a Feldman session).
pub fn base_proof(decision: Option<&BaseDecision>) -> BaseProof {
    let payloads = |ms: &[SignedMessage]| {
        ms.iter()
            .map(|m| Bytes::from(m.payload.clone()))
            .collect::<Vec<_>>()
    };
    match decision {
        None => BaseProof {
            precommits: Vec::new(),
            signatures: Vec::new(),
            reveals: Vec::new(),
        },
        Some(d) => BaseProof {
            precommits: payloads(&d.precommits),
            signatures: d
                .precommits
                .iter()
                .map(|m| Bytes::from(m.signature.to_bytes()))
                .collect(),
            reveals: payloads(&d.reveals),
        },
    }
}

fn tag(name: &str) -> B256 {
    keccak256(name.as_bytes())
}

fn decoded(m: &SignedMessage) -> Result<Body, ChainError> {
    Body::decode(&m.payload).map_err(|e| ChainError::InvalidEvidence(e.to_string()))
}

impl FraudProofV2 {
    /// The proof of `evidence` from the session `setup`. In a Pedersen session an
    /// invalid share or a reshare constant needs the session's base decision
    /// (`Engine::base_decision`); it is ignored otherwise.
    pub fn from_evidence(
        evidence: &Evidence,
        setup: &Setup,
        decision: Option<&BaseDecision>,
    ) -> Result<Self, ChainError> {
        let session = session_descriptor_v2(setup)?;
        let base = match setup.params.mode {
            VssMode::Feldman => base_proof(None),
            VssMode::Pedersen => match (evidence, decision) {
                (Evidence::Equivocation { .. }, _) => base_proof(None),
                (_, Some(d)) => base_proof(Some(d)),
                (_, None) => {
                    return Err(ChainError::InvalidEvidence(
                        "a Pedersen session's share or constant proof needs its base decision"
                            .into(),
                    ));
                }
            },
        };
        let proof = match evidence {
            Evidence::InvalidShare {
                dealing,
                complaint,
                key,
            } => Self::InvalidShare {
                dealing: dealing.clone(),
                complaint: complaint.clone(),
                key: key.clone(),
                session,
                base,
            },
            Evidence::Equivocation { first, second } => Self::Equivocation {
                first: first.clone(),
                second: second.clone(),
                session,
            },
            Evidence::WrongReshareConstant { dealing } => {
                let previous = setup.params.previous.as_ref().ok_or_else(|| {
                    ChainError::InvalidEvidence("a reshare constant outside a reshare".into())
                })?;
                let points: Vec<u8> = previous
                    .coefficients()
                    .iter()
                    .flat_map(|p| p.to_eip2537())
                    .collect();
                Self::WrongReshareConstant {
                    dealing: dealing.clone(),
                    session,
                    previous_commitment: Bytes::from(points),
                    base,
                }
            }
        };
        if decoded(proof.first_message())?.session().1.0 != setup.hash().0 {
            return Err(ChainError::InvalidEvidence(
                "evidence is from another session".into(),
            ));
        }
        Ok(proof)
    }

    /// The kind of fraud shown (the unit of "punished once per session").
    pub fn kind(&self) -> FraudKind {
        match self {
            Self::InvalidShare { .. } => FraudKind::InvalidShare,
            Self::Equivocation { .. } => FraudKind::Equivocation,
            Self::WrongReshareConstant { .. } => FraudKind::WrongReshareConstant,
        }
    }

    fn first_message(&self) -> &SignedMessage {
        match self {
            Self::InvalidShare { dealing, .. } | Self::WrongReshareConstant { dealing, .. } => {
                dealing
            }
            Self::Equivocation { first, .. } => first,
        }
    }

    fn session(&self) -> &SessionDescriptorV2 {
        match self {
            Self::InvalidShare { session, .. }
            | Self::Equivocation { session, .. }
            | Self::WrongReshareConstant { session, .. } => session,
        }
    }

    /// The accused operator (the dealing's or the equivocating messages' author).
    pub fn accused(&self) -> Result<Address, ChainError> {
        Ok(Address::from(
            *decoded(self.first_message())?.author().as_bytes(),
        ))
    }

    /// The session timestamp (the contract's bookkeeping key).
    pub fn session_timestamp(&self) -> u64 {
        self.session().timestamp
    }

    /// The contract's identifier of this proof when `sender` submits it.
    pub fn proof_id(&self, sender: Address) -> Result<B256, ChainError> {
        let hash = |m: &SignedMessage| keccak256(&m.payload);
        Ok(match self {
            Self::InvalidShare {
                dealing, complaint, ..
            } => {
                let player = Address::from(*decoded(complaint)?.author().as_bytes());
                keccak256(
                    (
                        tag("EIGENKMS-V2-PROOF-INVALID-SHARE"),
                        hash(dealing),
                        player,
                        sender,
                    )
                        .abi_encode(),
                )
            }
            Self::Equivocation { first, second, .. } => {
                let (a, b) = (hash(first), hash(second));
                let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                keccak256((tag("EIGENKMS-V2-PROOF-EQUIVOCATION"), lo, hi).abi_encode())
            }
            Self::WrongReshareConstant { dealing, .. } => keccak256(
                (
                    tag("EIGENKMS-V2-PROOF-WRONG-RESHARE-CONSTANT"),
                    hash(dealing),
                )
                    .abi_encode(),
            ),
        })
    }
}

impl KmsContracts {
    /// Whether submitting `proof` from this connection's sender would count.
    pub async fn proof_status_v2(&self, proof: &FraudProofV2) -> Result<ProofStatus, ChainError> {
        let me = self.connection().sender()?;
        self.status_of(
            proof.accused()?,
            proof.session_timestamp(),
            proof.kind(),
            proof.proof_id(me)?,
        )
        .await
    }

    /// Submits `proof` unless the chain already has what it would add (as
    /// [`KmsContracts::submit_fraud_proof`]).
    pub async fn submit_fraud_proof_v2(
        &self,
        proof: &FraudProofV2,
    ) -> Result<ProofOutcome, ChainError> {
        let status = self.proof_status_v2(proof).await?;
        if status != ProofStatus::Open {
            return Ok(ProofOutcome::Skipped(status));
        }
        let s = self.slashing();
        let conn = self.connection();
        const C: &str = "EigenKMSSlashing";
        const H: u64 = PUNISHMENT_GAS_HEADROOM;
        let sent = match proof {
            FraudProofV2::InvalidShare {
                dealing,
                complaint,
                key,
                session,
                base,
            } => {
                let call = s.proveInvalidShareV2(
                    signed(dealing),
                    signed(complaint),
                    Bytes::from(key.payload.clone()),
                    session.clone(),
                    base.clone(),
                );
                conn.send_with_headroom(C, call, H).await
            }
            FraudProofV2::Equivocation {
                first,
                second,
                session,
            } => {
                let call = s.proveEquivocationV2(signed(first), signed(second), session.clone());
                conn.send_with_headroom(C, call, H).await
            }
            FraudProofV2::WrongReshareConstant {
                dealing,
                session,
                previous_commitment,
                base,
            } => {
                let call = s.proveWrongReshareConstantV2(
                    signed(dealing),
                    session.clone(),
                    previous_commitment.clone(),
                    base.clone(),
                );
                conn.send_with_headroom(C, call, H).await
            }
        };
        settle(sent, || self.proof_status_v2(proof)).await
    }

    /// [`FraudProofV2::from_evidence`] then [`KmsContracts::submit_fraud_proof_v2`]:
    /// what a node calls with the evidence its v2 engine emitted, the session's setup
    /// and, in a Pedersen session, `Engine::base_decision()`.
    pub async fn submit_evidence_v2(
        &self,
        evidence: &Evidence,
        setup: &Setup,
        decision: Option<&BaseDecision>,
    ) -> Result<ProofOutcome, ChainError> {
        self.submit_fraud_proof_v2(&FraudProofV2::from_evidence(evidence, setup, decision)?)
            .await
    }

    /// Simulates `proof` from this sender without sending it (an `eth_call`).
    pub async fn check_fraud_proof_v2(&self, proof: &FraudProofV2) -> Result<(), ChainError> {
        let s = self.slashing();
        let from = self.connection().sender()?;
        let r = match proof {
            FraudProofV2::InvalidShare {
                dealing,
                complaint,
                key,
                session,
                base,
            } => s
                .proveInvalidShareV2(
                    signed(dealing),
                    signed(complaint),
                    Bytes::from(key.payload.clone()),
                    session.clone(),
                    base.clone(),
                )
                .from(from)
                .call()
                .await
                .map(|_| ()),
            FraudProofV2::Equivocation {
                first,
                second,
                session,
            } => s
                .proveEquivocationV2(signed(first), signed(second), session.clone())
                .from(from)
                .call()
                .await
                .map(|_| ()),
            FraudProofV2::WrongReshareConstant {
                dealing,
                session,
                previous_commitment,
                base,
            } => s
                .proveWrongReshareConstantV2(
                    signed(dealing),
                    session.clone(),
                    previous_commitment.clone(),
                    base.clone(),
                )
                .from(from)
                .call()
                .await
                .map(|_| ()),
        };
        r.map_err(|e| decode_revert("EigenKMSSlashing", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kms_protocol::dkg::forge;
    use kms_protocol::dkg::sim::{self, SimMember};
    use kms_protocol::session::{Schedule, SessionParams, SessionTimestamp};

    fn setup(mode: VssMode) -> (Setup, Vec<SimMember>) {
        let members = SimMember::generate(4, 1);
        let params = SessionParams::dkg(
            SessionTimestamp(10),
            mode,
            members.iter().map(SimMember::participant).collect(),
            Schedule {
                start_ms: 0,
                phase_ms: 1,
            },
        )
        .unwrap();
        (sim::setup(params), members)
    }

    #[test]
    fn the_descriptor_reproduces_the_session_hash() {
        let (s, _) = setup(VssMode::Feldman);
        let d = session_descriptor_v2(&s).unwrap();
        assert_eq!(keccak256(d.abi_encode()).0, s.hash().0);
        assert_eq!(d.deployment.0, s.deployment.hash().0);
    }

    #[test]
    fn pedersen_share_proofs_need_the_base_and_equivocation_is_order_free() {
        let (s, m) = setup(VssMode::Pedersen);
        let (decision, base) = forge::base_decision(&s, &m, 4, 0, 9);
        let e = forge::invalid_share_in(&s, &m[0], &m[1], Some(&base), 1);
        assert!(matches!(
            FraudProofV2::from_evidence(&e, &s, None),
            Err(ChainError::InvalidEvidence(_))
        ));
        let FraudProofV2::InvalidShare { base: proof, .. } =
            FraudProofV2::from_evidence(&e, &s, Some(&decision)).unwrap()
        else {
            panic!("an invalid-share proof")
        };
        assert_eq!((proof.precommits.len(), proof.reveals.len()), (4, 4));
        let (s, m) = setup(VssMode::Feldman);
        let (a, b) = (
            forge::dealing(&s, &m[0], None, None, 1),
            forge::dealing(&s, &m[0], None, None, 2),
        );
        let p = |first: &SignedMessage, second: &SignedMessage| {
            FraudProofV2::from_evidence(
                &Evidence::Equivocation {
                    first: first.clone(),
                    second: second.clone(),
                },
                &s,
                None,
            )
            .unwrap()
        };
        let (x, y) = (Address::repeat_byte(1), Address::repeat_byte(2));
        assert_eq!(
            p(&a, &b).proof_id(x).unwrap(),
            p(&b, &a).proof_id(y).unwrap()
        );
        assert_eq!(p(&a, &b).kind(), FraudKind::Equivocation);
        assert_eq!(p(&a, &b).accused().unwrap().0.0, *m[0].address().as_bytes());
        // Invalid-share proofs are per sender.
        let e = forge::invalid_share(&s, &m[0], &m[1], 3);
        let q = FraudProofV2::from_evidence(&e, &s, None).unwrap();
        assert_ne!(q.proof_id(x).unwrap(), q.proof_id(y).unwrap());
        // Evidence of another session is refused.
        let (other, _) = setup(VssMode::Pedersen);
        assert!(matches!(
            FraudProofV2::from_evidence(
                &Evidence::Equivocation {
                    first: a,
                    second: b
                },
                &other,
                None
            ),
            Err(ChainError::InvalidEvidence(_))
        ));
    }
}
