//! Chain mode: the operator set comes from the EigenLayer operator set (read at the
//! boundary block, so every node sees the same set), sessions start at block numbers
//! divisible by `chain.interval_blocks` with that block's timestamp as the session
//! timestamp, and after a session each dealer records its commitment hash and the
//! Merkle root of its acks on-chain, submits the fraud evidence it holds, and proves
//! any other dealer's registry record that differs from the commitment it sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, B256};
use kms_chain::{
    ChainConnection, ChainError, ChainOperatorSet, ConnectionOptions, Deployment, FraudProof,
    KmsContracts, LocalTxSigner, ProofOutcome, RemoteTxSigner, TxSigner,
};
use kms_protocol::SessionParams;
use tracing::{debug, info, warn};
use url::Url;

use crate::config::{ChainConfig, TxSignerKind};
use crate::keys::OperatorKeys;
use crate::peering::{BoxFuture, Peer, PeeringDataFetcher, PeeringError};
use crate::schedule::{Boundary, BoundarySource};
use crate::session::ChainRecord;

/// The chain side of a node: reads the operator set, sends its transactions.
pub struct ChainClient {
    me: kms_crypto::OperatorAddress,
    contracts: KmsContracts,
    set: ChainOperatorSet,
    interval_blocks: u64,
    poll: Duration,
    next_block: Mutex<Option<u64>>,
}

impl ChainClient {
    /// Connects to `cfg.rpc_url` with the deployment of `cfg.deployment_file`; the
    /// transaction signer is the operator's account key (local) or a web3signer.
    pub fn from_config(cfg: &ChainConfig, keys: &OperatorKeys) -> anyhow::Result<Self> {
        let url: Url = cfg
            .rpc_url
            .parse()
            .map_err(|e| anyhow::anyhow!("chain.rpc_url: {e}"))?;
        let deployment: Deployment =
            serde_json::from_slice(&std::fs::read(&cfg.deployment_file).map_err(|e| {
                anyhow::anyhow!(
                    "chain.deployment_file {}: {e}",
                    cfg.deployment_file.display()
                )
            })?)
            .map_err(|e| {
                anyhow::anyhow!(
                    "chain.deployment_file {}: {e}",
                    cfg.deployment_file.display()
                )
            })?;
        let options = ConnectionOptions::default();
        let address = Address::from(*keys.address().as_bytes());
        let signer: Arc<dyn TxSigner> = match cfg.signer {
            TxSignerKind::Local => {
                let secret: [u8; 32] = keys
                    .sealing_secret()
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("operator account key is not 32 bytes"))?;
                Arc::new(LocalTxSigner::from_bytes(&secret)?)
            }
            TxSignerKind::Remote => {
                let remote: Url = cfg
                    .remote_signer_url
                    .parse()
                    .map_err(|e| anyhow::anyhow!("chain.remote_signer_url: {e}"))?;
                Arc::new(RemoteTxSigner::new(
                    remote,
                    address,
                    options.request_timeout,
                )?)
            }
        };
        let conn = ChainConnection::with_signer(&url, signer, options)?;
        let set = ChainOperatorSet::new(conn.clone(), deployment);
        Ok(Self {
            me: keys.address(),
            contracts: KmsContracts::new(conn, deployment),
            set,
            interval_blocks: cfg.interval_blocks,
            poll: Duration::from_millis(cfg.poll_ms),
            next_block: Mutex::new(None),
        })
    }

    /// The contracts, for submissions.
    pub fn contracts(&self) -> &KmsContracts {
        &self.contracts
    }

    /// Records this dealer's commitment hash and ack root for the session (idempotent),
    /// submits every piece of evidence the chain can verify (a proof the chain already
    /// counted is not resent), then checks the other dealers' registry records against
    /// the commitments they sent. Logs, never fails the node.
    pub async fn after_session(&self, params: &SessionParams, record: ChainRecord) {
        let ts = params.timestamp.0;
        let ChainRecord {
            dealt,
            evidence,
            received,
        } = record;
        if let Some((hash, acks)) = dealt {
            let leaves: Vec<B256> = acks.iter().map(kms_chain::merkle::ack_leaf).collect();
            let root = kms_chain::merkle::merkle_root(&leaves);
            match self
                .contracts
                .submit_commitment(ts, B256::from(hash), root)
                .await
            {
                Ok(o) => {
                    info!(session = ts, outcome = ?o, acks = leaves.len(), "commitment recorded on-chain")
                }
                Err(e) => {
                    warn!(session = ts, error = %e, "could not record the commitment on-chain")
                }
            }
        }
        for ev in &evidence {
            let (kind, dealer) = (ev.kind(), ev.dealer());
            // The contract refuses self-complaints; a node can hold evidence against
            // itself only when something rewrote what it sent.
            if dealer == self.me {
                warn!(
                    session = ts,
                    kind, "fraud evidence against this very node; not submitted"
                );
                continue;
            }
            let outcome = self.contracts.submit_evidence(ev, params).await;
            Self::log_proof(ts, kind, dealer, outcome);
        }
        self.check_registry(ts, received).await;
    }

    /// Logs what became of one fraud proof: accepted, not needed (the chain already
    /// counted it), not verifiable on-chain (kept off-chain), or failed.
    fn log_proof(
        ts: u64,
        kind: &'static str,
        dealer: kms_crypto::OperatorAddress,
        outcome: Result<ProofOutcome, ChainError>,
    ) {
        match outcome {
            Ok(ProofOutcome::Submitted(tx)) => {
                info!(session = ts, kind, %dealer, tx = %tx.hash, gas = tx.gas_used, "fraud proof accepted on-chain")
            }
            Ok(ProofOutcome::Skipped(status)) => {
                debug!(session = ts, kind, %dealer, ?status, "fraud proof not needed on-chain")
            }
            Err(ChainError::Unsupported(what)) => {
                info!(
                    session = ts,
                    kind,
                    %dealer,
                    what,
                    "fraud evidence the chain cannot verify; kept off-chain"
                )
            }
            Err(e) => {
                warn!(session = ts, kind, %dealer, error = %e, "fraud proof submission failed")
            }
        }
    }

    /// Compares what each other dealer records in the commitment registry for session
    /// `ts` with the signed phase-1 commitment it sent this node, and proves any
    /// difference on-chain (`proveRegistryInconsistency`). Dealers record right after
    /// the session; they are polled for [`REGISTRY_CHECK_WINDOW`] at most.
    async fn check_registry(
        &self,
        ts: u64,
        mut waiting: Vec<(
            kms_crypto::OperatorAddress,
            kms_protocol::SignedMessage,
            [u8; 32],
        )>,
    ) {
        let until = tokio::time::Instant::now() + REGISTRY_CHECK_WINDOW;
        let every = self.poll.max(Duration::from_secs(1));
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for (dealer, commitment, hash) in waiting {
                let address = Address::from(*dealer.as_bytes());
                match self.contracts.recorded_commitment(ts, address).await {
                    Ok(None) | Err(_) => still.push((dealer, commitment, hash)),
                    Ok(Some(r)) if r.commitment_hash == B256::from(hash) => {}
                    Ok(Some(r)) => {
                        warn!(
                            session = ts,
                            %dealer,
                            recorded = %r.commitment_hash,
                            sent = %B256::from(hash),
                            "a dealer recorded another commitment than it sent; proving it on-chain"
                        );
                        let proof = FraudProof::RegistryInconsistency { commitment };
                        let outcome = self.contracts.submit_fraud_proof(&proof).await;
                        Self::log_proof(ts, "registry_inconsistency", dealer, outcome);
                    }
                }
            }
            waiting = still;
            if waiting.is_empty() || tokio::time::Instant::now() + every > until {
                break;
            }
            tokio::time::sleep(every).await;
        }
        for (dealer, _, _) in waiting {
            debug!(session = ts, %dealer, "no commitment recorded by this dealer within the check window");
        }
    }
}

/// How long a node waits for the other dealers' registry records after a session.
pub const REGISTRY_CHECK_WINDOW: Duration = Duration::from_secs(120);

fn to_peer(o: &kms_chain::ChainOperator) -> Option<Peer> {
    let url = crate::config::parse_peer_url(&o.socket).ok()?;
    Some(Peer {
        address: o.address,
        public_key: o.public_key.clone(),
        url,
    })
}

fn peers_of(snapshot: &kms_chain::OperatorSetSnapshot) -> Vec<Peer> {
    for (a, why) in &snapshot.excluded {
        debug!(operator = %a, reason = %why, "operator left out of the set");
    }
    snapshot
        .operators
        .iter()
        .filter_map(|o| {
            let p = to_peer(o);
            if p.is_none() {
                warn!(operator = %o.address, socket = %o.socket, "registered socket is not an http(s) URL; operator left out");
            }
            p
        })
        .collect()
}

fn unavailable(e: ChainError) -> PeeringError {
    PeeringError::Unavailable {
        source_name: "chain".into(),
        reason: e.to_string(),
    }
}

impl PeeringDataFetcher for ChainClient {
    fn operators(&self) -> BoxFuture<'_, Result<Vec<Peer>, PeeringError>> {
        Box::pin(async move {
            let snapshot = self.set.latest().await.map_err(unavailable)?;
            Ok(peers_of(&snapshot))
        })
    }

    fn operators_at<'a>(
        &'a self,
        boundary: &'a Boundary,
    ) -> BoxFuture<'a, Result<Vec<Peer>, PeeringError>> {
        Box::pin(async move {
            let snapshot = match boundary.block {
                Some(b) => self.set.at_block(b).await,
                None => self.set.latest().await,
            }
            .map_err(unavailable)?;
            Ok(peers_of(&snapshot))
        })
    }
}

impl BoundarySource for ChainClient {
    /// The next block whose number is a multiple of the interval, once mined; the
    /// session timestamp is that block's timestamp. A node that starts late joins the
    /// next boundary, never one in the past.
    fn next_boundary(&self, _after: u64) -> BoxFuture<'_, Option<Boundary>> {
        Box::pin(async move {
            loop {
                let head = match self.contracts.connection().block(None).await {
                    Ok(h) => h.number,
                    Err(e) => {
                        warn!(error = %e, "cannot read the chain head");
                        tokio::time::sleep(self.poll).await;
                        continue;
                    }
                };
                let next = {
                    let mut n = self.next_block.lock().unwrap_or_else(|p| p.into_inner());
                    *n.get_or_insert((head / self.interval_blocks + 1) * self.interval_blocks)
                };
                if head >= next {
                    match self.contracts.connection().block(Some(next)).await {
                        Ok(b) => {
                            *self.next_block.lock().unwrap_or_else(|p| p.into_inner()) =
                                Some(next + self.interval_blocks);
                            return Some(Boundary {
                                session_timestamp: b.timestamp,
                                block: Some(next),
                            });
                        }
                        Err(e) => warn!(block = next, error = %e, "cannot read the boundary block"),
                    }
                }
                tokio::time::sleep(self.poll).await;
            }
        })
    }
}
