//! The operator set as the chain says it is at a given block: members from the
//! AllocationManager, keys from the KeyRegistrar, sockets from the AVS registrar.
//! Reads are pinned to one block so every node that asks about the same block gets
//! the same answer, and each block's answer is cached.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use alloy::eips::BlockId;
use alloy::primitives::{Address, U256};
use alloy::providers::DynProvider;
use futures::future::try_join_all;
use kms_crypto::OperatorAddress;
use kms_crypto::signer::{Bn254PublicKey, OperatorPublicKey};
use kms_protocol::Participant;

use crate::bindings::{EigenKMSRegistrar, MockAllocationManager, MockKeyRegistrar};
use crate::connection::{BlockInfo, ChainConnection};
use crate::deployment::{Deployment, KeyCurve};
use crate::error::ChainError;

/// One member of the operator set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainOperator {
    /// The operator's address.
    pub address: OperatorAddress,
    /// The key its protocol messages are signed with.
    pub public_key: OperatorPublicKey,
    /// Where its node listens (the registrar's socket URL).
    pub socket: String,
}

impl ChainOperator {
    /// The session participant record.
    pub fn participant(&self) -> Participant {
        Participant {
            address: self.address,
            public_key: self.public_key.clone(),
        }
    }
}

/// The operator set at one block.
#[derive(Clone, Debug)]
pub struct OperatorSetSnapshot {
    /// The block read.
    pub block: BlockInfo,
    /// The key type of the set.
    pub curve: KeyCurve,
    /// Usable members, sorted by address.
    pub operators: Vec<ChainOperator>,
    /// Members left out, with the reason (no key, an invalid key, no socket): one bad
    /// registration must not stop the others from running sessions.
    pub excluded: Vec<(OperatorAddress, String)>,
}

/// Reads the operator set at a block, caching each block's answer.
#[derive(Debug)]
pub struct ChainOperatorSet {
    provider: DynProvider,
    conn: ChainConnection,
    deployment: Deployment,
    cache: Mutex<BTreeMap<u64, Arc<OperatorSetSnapshot>>>,
    capacity: usize,
}

fn op(a: Address) -> OperatorAddress {
    OperatorAddress::from_bytes(a.0.0)
}

fn word(x: &U256) -> [u8; 32] {
    x.to_be_bytes::<32>()
}

impl ChainOperatorSet {
    /// Blocks kept in the cache (the oldest are evicted first).
    pub const DEFAULT_CAPACITY: usize = 64;

    /// A reader over `conn` (read-only is enough).
    pub fn new(conn: ChainConnection, deployment: Deployment) -> Self {
        Self {
            provider: conn.provider().clone(),
            conn,
            deployment,
            cache: Mutex::new(BTreeMap::new()),
            capacity: Self::DEFAULT_CAPACITY,
        }
    }

    /// The set at the latest block.
    pub async fn latest(&self) -> Result<Arc<OperatorSetSnapshot>, ChainError> {
        let block = self.conn.block(None).await?;
        self.at_block(block.number).await
    }

    /// The set at block `number` (cached).
    pub async fn at_block(&self, number: u64) -> Result<Arc<OperatorSetSnapshot>, ChainError> {
        if let Some(hit) = self.lock().get(&number) {
            return Ok(hit.clone());
        }
        let snapshot = Arc::new(self.read(number).await?);
        let mut cache = self.lock();
        cache.insert(number, snapshot.clone());
        while cache.len() > self.capacity {
            cache.pop_first();
        }
        Ok(snapshot)
    }

    /// Whether block `number` is cached (for tests and metrics).
    pub fn is_cached(&self, number: u64) -> bool {
        self.lock().contains_key(&number)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<OperatorSetSnapshot>>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn read(&self, number: u64) -> Result<OperatorSetSnapshot, ChainError> {
        let block = self.conn.block(Some(number)).await?;
        let at = BlockId::number(number);
        let d = &self.deployment;
        let rpc = |e: alloy::contract::Error| ChainError::Rpc(e.to_string());
        let am = MockAllocationManager::new(d.allocation_manager, self.provider.clone());
        let kr = MockKeyRegistrar::new(d.key_registrar, self.provider.clone());
        let am_set = MockAllocationManager::OperatorSet {
            avs: d.avs,
            id: d.operator_set_id,
        };
        let kr_set = MockKeyRegistrar::OperatorSet {
            avs: d.avs,
            id: d.operator_set_id,
        };
        let members = am.getMembers(am_set).block(at).call().await.map_err(rpc)?;
        let registrar = am
            .getAVSRegistrar(d.avs)
            .block(at)
            .call()
            .await
            .map_err(rpc)?;
        let registrar = EigenKMSRegistrar::new(registrar, self.provider.clone());
        let curve = match kr
            .getOperatorSetCurveType(kr_set.clone())
            .block(at)
            .call()
            .await
            .map_err(rpc)?
        {
            1 => KeyCurve::Ecdsa,
            2 => KeyCurve::Bn254,
            other => {
                return Err(ChainError::InvalidChainData(format!(
                    "operator set has key curve {other}, not ECDSA or BN254"
                )));
            }
        };
        let reads = members.iter().map(|m| {
            let (kr, registrar, kr_set) = (&kr, &registrar, kr_set.clone());
            async move {
                let socket = registrar
                    .getOperatorSocket(*m)
                    .block(at)
                    .call()
                    .await
                    .map_err(rpc)?;
                let key: Result<OperatorPublicKey, String> = match curve {
                    KeyCurve::Bn254 => {
                        let k = kr
                            .getBN254Key(kr_set, *m)
                            .block(at)
                            .call()
                            .await
                            .map_err(rpc)?;
                        let mut bytes = [0u8; 192];
                        let words = [
                            &k.g1Point.X,
                            &k.g1Point.Y,
                            &k.g2Point.X[0],
                            &k.g2Point.X[1],
                            &k.g2Point.Y[0],
                            &k.g2Point.Y[1],
                        ];
                        for (i, w) in words.into_iter().enumerate() {
                            bytes[i * 32..i * 32 + 32].copy_from_slice(&word(w));
                        }
                        if bytes.iter().all(|b| *b == 0) {
                            Err("no BN254 key registered".to_string())
                        } else {
                            Bn254PublicKey::from_bytes(&bytes)
                                .map(OperatorPublicKey::Bn254)
                                .map_err(|e| format!("invalid BN254 key: {e}"))
                        }
                    }
                    KeyCurve::Ecdsa => {
                        let a = kr
                            .getECDSAAddress(kr_set, *m)
                            .block(at)
                            .call()
                            .await
                            .map_err(rpc)?;
                        if a.is_zero() {
                            Err("no ECDSA key registered".to_string())
                        } else {
                            Ok(OperatorPublicKey::Ecdsa(op(a)))
                        }
                    }
                };
                Ok::<_, ChainError>((op(*m), key, socket))
            }
        });
        let mut operators = Vec::new();
        let mut excluded = Vec::new();
        for (address, key, socket) in try_join_all(reads).await? {
            match key {
                Err(why) => excluded.push((address, why)),
                Ok(_) if socket.is_empty() => excluded.push((address, "no socket".into())),
                Ok(public_key) => operators.push(ChainOperator {
                    address,
                    public_key,
                    socket,
                }),
            }
        }
        operators.sort_by_key(|o| o.address);
        excluded.sort();
        Ok(OperatorSetSnapshot {
            block,
            curve,
            operators,
            excluded,
        })
    }
}
