//! Chain mode: the operator set comes from the EigenLayer operator set (read at the
//! boundary block, so every node sees the same set), sessions start at block numbers
//! divisible by `chain.interval_blocks` with that block's timestamp as the session
//! timestamp, and after a session each node that activated the agreed version records
//! it on-chain.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_primitives::{Address, B256};
use kms_chain::{
    ChainConnection, ChainError, ChainOperatorSet, ConnectionOptions, Deployment, KmsContracts,
    LocalTxSigner, RemoteTxSigner, TxSigner,
};
use kms_protocol::SessionParams;
use kms_protocol::dkg::{BaseDecision, Evidence, Setup};
use tracing::{debug, info, warn};
use url::Url;

use crate::config::{ChainConfig, TxSignerKind};
use crate::keys::OperatorKeys;
use crate::peering::{BoxFuture, Peer, PeeringDataFetcher, PeeringError};
use crate::schedule::{Boundary, BoundarySource};
use crate::session::ChainRecord;

/// The chain side of a node: reads the operator set, sends its transactions.
pub struct ChainClient {
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
            contracts: KmsContracts::new(conn, deployment),
            set,
            interval_blocks: cfg.interval_blocks,
            poll: Duration::from_millis(cfg.poll_ms),
            next_block: Mutex::new(None),
        })
    }

    /// The deployment's contracts and operator set.
    pub fn deployment(&self) -> &Deployment {
        self.contracts.deployment()
    }

    /// The chain id.
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        self.contracts.connection().chain_id().await
    }

    /// The contracts, for submissions.
    pub fn contracts(&self) -> &KmsContracts {
        &self.contracts
    }

    /// Records the session's agreed outcome, as this node activated it: the hash of
    /// the public polynomial and the agreed value (the id the agreement certificate's
    /// precommits sign) in the commitment registry (idempotent), then submits each
    /// piece of fraud evidence as an on-chain proof (the contract checks it from
    /// public data; one already recorded is skipped). Logs, never fails the node.
    pub async fn after_session(&self, params: &SessionParams, record: ChainRecord) {
        let ts = params.timestamp.0;
        if let Some((hash, value)) = record.activated {
            match self
                .contracts
                .submit_commitment(ts, B256::from(hash), B256::from(value))
                .await
            {
                Ok(o) => info!(session = ts, outcome = ?o, "agreed outcome recorded on-chain"),
                Err(e) => {
                    warn!(session = ts, error = %e, "could not record the agreed outcome on-chain")
                }
            }
        }
        for ev in &record.evidence {
            self.submit_evidence(ts, ev, &record.setup, record.base.as_ref())
                .await;
        }
    }

    /// Submits one piece of fraud evidence of session `ts` as an on-chain proof
    /// (skipped if the chain has it already). Logs, never fails the node.
    pub async fn submit_evidence(
        &self,
        ts: u64,
        ev: &Evidence,
        setup: &Setup,
        base: Option<&BaseDecision>,
    ) {
        match self.contracts.submit_evidence_v2(ev, setup, base).await {
            Ok(o) => info!(
                session = ts,
                kind = ev.kind(),
                accused = %ev.accused(),
                outcome = ?o,
                "fraud proof submitted"
            ),
            Err(e) => warn!(
                session = ts,
                kind = ev.kind(),
                accused = %ev.accused(),
                error = %e,
                "fraud proof not submitted"
            ),
        }
    }
}

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
