//! The EigenKMS contracts of one deployment, seen from one operator: registration,
//! commitment records and fraud proofs, each idempotent (what the chain already holds
//! is not sent again).

use alloy::primitives::{Address, B256, Bytes, U256};
use alloy::sol_types::SolValue;
use kms_crypto::signer::OperatorPublicKey;
use kms_protocol::{FraudEvidence, SessionParams};

use crate::bindings::{
    EigenKMSCommitmentRegistry, EigenKMSRegistrar, EigenKMSSlashing, MockAllocationManager,
    MockKeyRegistrar,
};
use crate::connection::{ChainConnection, TxOutcome, decode_revert};
use crate::deployment::Deployment;
use crate::error::ChainError;
use crate::fraud::{FraudKind, FraudProof, signed};
use crate::operators::ChainOperatorSet;

/// A dealer's record in the commitment registry for one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordedCommitment {
    /// `Commitment::hash` of its phase-1 commitment.
    pub commitment_hash: B256,
    /// Merkle root of the acks it collected.
    pub ack_merkle_root: B256,
    /// Block of the record.
    pub block: u64,
}

/// What `submit_commitment` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CommitmentOutcome {
    /// Recorded by this transaction.
    Submitted(TxOutcome),
    /// The same record was already there.
    AlreadyRecorded,
}

/// Whether a proof can still change anything on-chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofStatus {
    /// Not yet counted: submitting it counts.
    Open,
    /// This exact proof was accepted before.
    AlreadyAccepted,
    /// The dealer was already punished for this kind of fraud in this session.
    AlreadyPunished,
    /// This operator already complained about the dealer's shares in this session.
    AlreadyComplained,
    /// The dealer was fully slashed and ejected.
    DealerEjected,
}

/// What `submit_fraud_proof` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofOutcome {
    /// Accepted by this transaction.
    Submitted(TxOutcome),
    /// Not sent (or refused as already done): the chain has what it needs.
    Skipped(ProofStatus),
}

/// A dealer's standing with the slashing contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DealerRecord {
    /// Sessions in which it was punished.
    pub fraud_sessions: u64,
    /// Fully slashed and ejected.
    pub ejected: bool,
}

/// What a sent proof did: submitted, or skipped because the chain already had what
/// it adds (told by the revert, or by asking again after a reverted transaction).
pub(crate) async fn settle<F: std::future::Future<Output = Result<ProofStatus, ChainError>>>(
    sent: Result<TxOutcome, ChainError>,
    status: impl FnOnce() -> F,
) -> Result<ProofOutcome, ChainError> {
    match sent {
        Ok(tx) => Ok(ProofOutcome::Submitted(tx)),
        Err(e) => match e.revert_name() {
            Some("ProofAlreadyAccepted") => Ok(ProofOutcome::Skipped(ProofStatus::AlreadyAccepted)),
            Some("AlreadyPunished") => Ok(ProofOutcome::Skipped(ProofStatus::AlreadyPunished)),
            Some("AlreadyComplained") => Ok(ProofOutcome::Skipped(ProofStatus::AlreadyComplained)),
            Some("DealerEjected") => Ok(ProofOutcome::Skipped(ProofStatus::DealerEjected)),
            // Mined but reverted (the receipt carries no reason): most likely another
            // operator's identical proof landed first in the same block. Ask again.
            _ if matches!(e, ChainError::TransactionFailed(_)) => match status().await {
                Ok(ProofStatus::Open) | Err(_) => Err(e),
                Ok(status) => Ok(ProofOutcome::Skipped(status)),
            },
            _ => Err(e),
        },
    }
}

/// Gas added to a fraud proof's estimate. A proof's cost depends on what lands before
/// it: the complaint that reaches the threshold (or the proof that makes a third fraud
/// session) also pays for `slashOperator` and the ejection, which the estimate, taken
/// while other operators' proofs are in flight, may not include. Unused gas is not
/// charged.
pub const PUNISHMENT_GAS_HEADROOM: u64 = 1_000_000;

/// The EigenKMS contracts of `deployment`, used through `conn`.
#[derive(Clone, Debug)]
pub struct KmsContracts {
    conn: ChainConnection,
    deployment: Deployment,
}

pub(crate) fn rpc(e: alloy::contract::Error) -> ChainError {
    ChainError::Rpc(e.to_string())
}

impl KmsContracts {
    /// The contracts of `deployment` over `conn`.
    pub fn new(conn: ChainConnection, deployment: Deployment) -> Self {
        Self { conn, deployment }
    }

    /// The connection.
    pub fn connection(&self) -> &ChainConnection {
        &self.conn
    }

    /// The deployment.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// A reader of the operator set over the same connection.
    pub fn operator_set(&self) -> ChainOperatorSet {
        ChainOperatorSet::new(self.conn.clone(), self.deployment)
    }

    pub(crate) fn slashing(
        &self,
    ) -> EigenKMSSlashing::EigenKMSSlashingInstance<alloy::providers::DynProvider> {
        EigenKMSSlashing::new(self.deployment.slashing, self.conn.provider().clone())
    }

    fn registry(
        &self,
    ) -> EigenKMSCommitmentRegistry::EigenKMSCommitmentRegistryInstance<alloy::providers::DynProvider>
    {
        EigenKMSCommitmentRegistry::new(
            self.deployment.commitment_registry,
            self.conn.provider().clone(),
        )
    }

    fn allocation_manager(
        &self,
    ) -> MockAllocationManager::MockAllocationManagerInstance<alloy::providers::DynProvider> {
        MockAllocationManager::new(
            self.deployment.allocation_manager,
            self.conn.provider().clone(),
        )
    }

    async fn registrar(
        &self,
    ) -> Result<
        EigenKMSRegistrar::EigenKMSRegistrarInstance<alloy::providers::DynProvider>,
        ChainError,
    > {
        let a = self
            .allocation_manager()
            .getAVSRegistrar(self.deployment.avs)
            .call()
            .await
            .map_err(rpc)?;
        Ok(EigenKMSRegistrar::new(a, self.conn.provider().clone()))
    }

    // ------------------------------------------------------------ registration

    /// Registers this operator's protocol key with the KeyRegistrar (skipped if a key
    /// is registered). `proof_of_possession` is EigenLayer's registration signature;
    /// the test mock does not check it.
    pub async fn register_key(
        &self,
        key: &OperatorPublicKey,
        proof_of_possession: Bytes,
    ) -> Result<Option<TxOutcome>, ChainError> {
        let me = self.conn.sender()?;
        let kr = MockKeyRegistrar::new(self.deployment.key_registrar, self.conn.provider().clone());
        let set = MockKeyRegistrar::OperatorSet {
            avs: self.deployment.avs,
            id: self.deployment.operator_set_id,
        };
        if kr.isRegistered(set.clone(), me).call().await.map_err(rpc)? {
            return Ok(None);
        }
        let data = match key {
            OperatorPublicKey::Bn254(pk) => Bytes::from(pk.to_bytes().to_vec()),
            OperatorPublicKey::Ecdsa(a) => Bytes::from(a.as_bytes().to_vec()),
        };
        let call = kr.registerKey(me, set, data, proof_of_possession);
        self.conn.send("KeyRegistrar", call).await.map(Some)
    }

    /// Registers this operator for the operator set with its socket URL (skipped if it
    /// is a member already).
    pub async fn register_for_operator_set(
        &self,
        socket: &str,
    ) -> Result<Option<TxOutcome>, ChainError> {
        let me = self.conn.sender()?;
        if self.is_member(me).await? {
            return Ok(None);
        }
        let am = self.allocation_manager();
        let call = am.registerForOperatorSets(
            me,
            crate::bindings::IAllocationManager::RegisterParams {
                avs: self.deployment.avs,
                operatorSetIds: vec![self.deployment.operator_set_id],
                data: Bytes::from(socket.to_string().abi_encode()),
            },
        );
        self.conn.send("AllocationManager", call).await.map(Some)
    }

    /// Key, then membership with `socket`: what a new operator does once.
    pub async fn register_operator(
        &self,
        key: &OperatorPublicKey,
        socket: &str,
    ) -> Result<(), ChainError> {
        self.register_key(key, Bytes::new()).await?;
        self.register_for_operator_set(socket).await?;
        Ok(())
    }

    /// Leaves the operator set.
    pub async fn deregister(&self) -> Result<TxOutcome, ChainError> {
        let me = self.conn.sender()?;
        let am = self.allocation_manager();
        let call =
            am.deregisterFromOperatorSets(crate::bindings::IAllocationManager::DeregisterParams {
                operator: me,
                avs: self.deployment.avs,
                operatorSetIds: vec![self.deployment.operator_set_id],
            });
        self.conn.send("AllocationManager", call).await
    }

    /// Moves this operator's node to a new socket URL.
    pub async fn update_socket(&self, socket: &str) -> Result<TxOutcome, ChainError> {
        let registrar = self.registrar().await?;
        self.conn
            .send(
                "EigenKMSRegistrar",
                registrar.updateSocket(socket.to_string()),
            )
            .await
    }

    /// Whether `operator` is a member of the operator set now.
    pub async fn is_member(&self, operator: Address) -> Result<bool, ChainError> {
        self.allocation_manager()
            .isMemberOfOperatorSet(
                operator,
                MockAllocationManager::OperatorSet {
                    avs: self.deployment.avs,
                    id: self.deployment.operator_set_id,
                },
            )
            .call()
            .await
            .map_err(rpc)
    }

    // ------------------------------------------------------------ commitments

    /// `operator`'s record for session `session_timestamp`, if any.
    pub async fn recorded_commitment(
        &self,
        session_timestamp: u64,
        operator: Address,
    ) -> Result<Option<RecordedCommitment>, ChainError> {
        let r = self
            .registry()
            .getCommitment(session_timestamp, operator)
            .call()
            .await
            .map_err(rpc)?;
        Ok((r.blockNumber != 0).then_some(RecordedCommitment {
            commitment_hash: r.commitmentHash,
            ack_merkle_root: r.ackMerkleRoot,
            block: r.blockNumber,
        }))
    }

    /// Records this dealer's phase-1 commitment hash and ack root for the session
    /// (epoch = session timestamp). Idempotent; a different earlier record is a
    /// [`ChainError::Conflict`].
    pub async fn submit_commitment(
        &self,
        session_timestamp: u64,
        commitment_hash: B256,
        ack_merkle_root: B256,
    ) -> Result<CommitmentOutcome, ChainError> {
        let me = self.conn.sender()?;
        if let Some(r) = self.recorded_commitment(session_timestamp, me).await? {
            if r.commitment_hash == commitment_hash && r.ack_merkle_root == ack_merkle_root {
                return Ok(CommitmentOutcome::AlreadyRecorded);
            }
            return Err(ChainError::Conflict(format!(
                "session {session_timestamp} already records commitment {} and ack root {}",
                r.commitment_hash, r.ack_merkle_root
            )));
        }
        let registry = self.registry();
        let call = registry.submitCommitment(session_timestamp, commitment_hash, ack_merkle_root);
        self.conn
            .send("EigenKMSCommitmentRegistry", call)
            .await
            .map(CommitmentOutcome::Submitted)
    }

    // ------------------------------------------------------------ fraud proofs

    /// Whether submitting `proof` from this connection's sender would count.
    pub async fn proof_status(&self, proof: &FraudProof) -> Result<ProofStatus, ChainError> {
        let me = self.conn.sender()?;
        let (session, _) = proof.session()?;
        self.status_of(proof.dealer()?, session, proof.kind(), proof.proof_id(me))
            .await
    }

    /// Whether a proof `id` of `kind` against `dealer` in `session`, from this
    /// connection's sender, would count.
    pub(crate) async fn status_of(
        &self,
        dealer: Address,
        session: u64,
        kind: FraudKind,
        id: B256,
    ) -> Result<ProofStatus, ChainError> {
        let me = self.conn.sender()?;
        let s = self.slashing();
        if s.ejected(dealer).call().await.map_err(rpc)? {
            return Ok(ProofStatus::DealerEjected);
        }
        if s.proofAccepted(id).call().await.map_err(rpc)? {
            return Ok(ProofStatus::AlreadyAccepted);
        }
        if s.isPunished(dealer, session, kind as u8)
            .call()
            .await
            .map_err(rpc)?
        {
            return Ok(ProofStatus::AlreadyPunished);
        }
        if kind == FraudKind::InvalidShare
            && s.hasComplained(dealer, session, me)
                .call()
                .await
                .map_err(rpc)?
        {
            return Ok(ProofStatus::AlreadyComplained);
        }
        Ok(ProofStatus::Open)
    }

    /// Submits `proof` unless the chain already has what it would add (checked first,
    /// and a lost race against another node's identical proof is also a skip). Other
    /// reverts — the contract does not accept the proof — are errors.
    pub async fn submit_fraud_proof(&self, proof: &FraudProof) -> Result<ProofOutcome, ChainError> {
        let status = self.proof_status(proof).await?;
        if status != ProofStatus::Open {
            return Ok(ProofOutcome::Skipped(status));
        }
        let s = self.slashing();
        const C: &str = "EigenKMSSlashing";
        // The estimate is taken before other operators' complaints land; the one that
        // lands third also pays for the slash and possibly the ejection.
        const H: u64 = PUNISHMENT_GAS_HEADROOM;
        let sent = match proof {
            FraudProof::InvalidShare {
                commitment,
                share,
                session,
            } => {
                let call = s.proveInvalidShare(signed(commitment), signed(share), session.clone());
                self.conn.send_with_headroom(C, call, H).await
            }
            FraudProof::Equivocation { first, second } => {
                let call = s.proveEquivocation(signed(first), signed(second));
                self.conn.send_with_headroom(C, call, H).await
            }
            FraudProof::CommitmentInconsistency { commitment, share } => {
                let call = s.proveCommitmentInconsistency(signed(commitment), signed(share));
                self.conn.send_with_headroom(C, call, H).await
            }
            FraudProof::RegistryInconsistency { commitment } => {
                let call = s.proveRegistryInconsistency(signed(commitment));
                self.conn.send_with_headroom(C, call, H).await
            }
            FraudProof::InvalidCommitmentPoint { commitment, index } => {
                let call = s.proveInvalidCommitmentPoint(signed(commitment), U256::from(*index));
                self.conn.send_with_headroom(C, call, H).await
            }
        };
        settle(sent, || self.proof_status(proof)).await
    }

    /// [`FraudProof::from_evidence`] then [`KmsContracts::submit_fraud_proof`].
    pub async fn submit_evidence(
        &self,
        evidence: &FraudEvidence,
        params: &SessionParams,
    ) -> Result<ProofOutcome, ChainError> {
        self.submit_fraud_proof(&FraudProof::from_evidence(evidence, params)?)
            .await
    }

    /// `dealer`'s standing with the slashing contract.
    pub async fn dealer_record(&self, dealer: Address) -> Result<DealerRecord, ChainError> {
        let s = self.slashing();
        let sessions = s.fraudSessions(dealer).call().await.map_err(rpc)?;
        Ok(DealerRecord {
            fraud_sessions: u64::try_from(sessions)
                .map_err(|_| ChainError::InvalidChainData("fraud session count".into()))?,
            ejected: s.ejected(dealer).call().await.map_err(rpc)?,
        })
    }

    /// Whether `dealer` was already punished for `kind` in the session `session`.
    pub async fn is_punished(
        &self,
        dealer: Address,
        session: u64,
        kind: FraudKind,
    ) -> Result<bool, ChainError> {
        self.slashing()
            .isPunished(dealer, session, kind as u8)
            .call()
            .await
            .map_err(rpc)
    }

    /// Simulates `proof` from this sender without sending it (an `eth_call`); used to
    /// compare the contract's verdict with the Rust verifier's.
    pub async fn check_fraud_proof(&self, proof: &FraudProof) -> Result<(), ChainError> {
        let s = self.slashing();
        let from = self.conn.sender()?;
        const C: &str = "EigenKMSSlashing";
        let r = match proof {
            FraudProof::InvalidShare {
                commitment,
                share,
                session,
            } => s
                .proveInvalidShare(signed(commitment), signed(share), session.clone())
                .from(from)
                .call()
                .await
                .map(|_| ()),
            FraudProof::Equivocation { first, second } => s
                .proveEquivocation(signed(first), signed(second))
                .from(from)
                .call()
                .await
                .map(|_| ()),
            FraudProof::CommitmentInconsistency { commitment, share } => s
                .proveCommitmentInconsistency(signed(commitment), signed(share))
                .from(from)
                .call()
                .await
                .map(|_| ()),
            FraudProof::RegistryInconsistency { commitment } => s
                .proveRegistryInconsistency(signed(commitment))
                .from(from)
                .call()
                .await
                .map(|_| ()),
            FraudProof::InvalidCommitmentPoint { commitment, index } => s
                .proveInvalidCommitmentPoint(signed(commitment), U256::from(*index))
                .from(from)
                .call()
                .await
                .map(|_| ()),
        };
        r.map_err(|e| decode_revert(C, e))
    }
}
