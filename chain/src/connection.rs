//! A connection to an Ethereum JSON-RPC endpoint, optionally with a transaction
//! signer, with bounded waits on every request and receipt.

use std::sync::Arc;
use std::time::Duration;

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::eips::BlockNumberOrTag;
use alloy::network::Ethereum;
use alloy::primitives::{Address, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::client::RpcClient;
use alloy::transports::http::Http;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::bindings::{
    EigenKMSCommitmentRegistry, EigenKMSEvidenceV2, EigenKMSRegistrar, EigenKMSSlashing,
    MockAllocationManager, MockKeyRegistrar,
};
use crate::error::ChainError;
use crate::signer::{SignerWallet, TxSigner};

/// Timeouts of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionOptions {
    /// One JSON-RPC request.
    pub request_timeout: Duration,
    /// From sending a transaction to its receipt.
    pub receipt_timeout: Duration,
}

impl Default for ConnectionOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(10),
            receipt_timeout: Duration::from_secs(120),
        }
    }
}

/// A block's identity and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockInfo {
    /// Block number.
    pub number: u64,
    /// Unix seconds.
    pub timestamp: u64,
    /// Block hash.
    pub hash: B256,
}

/// A mined, successful transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// Transaction hash.
    pub hash: B256,
    /// Block it was mined in.
    pub block: u64,
    /// Gas it used.
    pub gas_used: u64,
}

/// An HTTP JSON-RPC client whose requests time out.
pub(crate) fn rpc_client(url: &Url, timeout: Duration) -> Result<RpcClient, ChainError> {
    // reqwest's rustls needs a process-wide provider; ring is the project's choice.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|e| ChainError::Config(format!("HTTP client: {e}")))?;
    let is_local = url
        .host_str()
        .is_some_and(|h| h == "localhost" || h == "127.0.0.1" || h == "[::1]");
    Ok(RpcClient::new(
        Http::with_client(http, url.clone()),
        is_local,
    ))
}

/// A provider for one endpoint; sends transactions when it has a signer.
#[derive(Clone, Debug)]
pub struct ChainConnection {
    provider: DynProvider,
    sender: Option<Address>,
    options: ConnectionOptions,
    /// One transaction in flight per connection, so nonces are read after the previous
    /// transaction was mined.
    send_lock: Arc<tokio::sync::Mutex<()>>,
}

impl ChainConnection {
    /// Reads only.
    pub fn read_only(url: &Url, options: ConnectionOptions) -> Result<Self, ChainError> {
        let client = rpc_client(url, options.request_timeout)?;
        let provider = ProviderBuilder::new().connect_client(client).erased();
        Ok(Self {
            provider,
            sender: None,
            options,
            send_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// Reads and sends transactions signed by `signer` (nonce, gas and chain id are
    /// filled in from the endpoint).
    pub fn with_signer(
        url: &Url,
        signer: Arc<dyn TxSigner>,
        options: ConnectionOptions,
    ) -> Result<Self, ChainError> {
        let client = rpc_client(url, options.request_timeout)?;
        let sender = signer.address();
        // The nonce is read from the endpoint for every transaction: alloy's default
        // cache counts a transaction whose gas estimation reverted (a refused proof),
        // leaving a gap that would wedge every later transaction.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(SignerWallet(signer))
            .connect_client(client)
            .erased();
        Ok(Self {
            provider,
            sender: Some(sender),
            options,
            send_lock: Arc::new(tokio::sync::Mutex::new(())),
        })
    }

    /// The chain id the endpoint serves (part of a deployment's identity).
    pub async fn chain_id(&self) -> Result<u64, ChainError> {
        self.provider
            .get_chain_id()
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))
    }

    /// The underlying provider.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// The address transactions come from.
    pub fn sender(&self) -> Result<Address, ChainError> {
        self.sender
            .ok_or_else(|| ChainError::Config("read-only connection cannot send".into()))
    }

    /// The connection's timeouts.
    pub fn options(&self) -> ConnectionOptions {
        self.options
    }

    /// A block by number, or the latest.
    pub async fn block(&self, number: Option<u64>) -> Result<BlockInfo, ChainError> {
        let tag = number.map_or(BlockNumberOrTag::Latest, BlockNumberOrTag::Number);
        let block = self
            .provider
            .get_block_by_number(tag)
            .await
            .map_err(|e| ChainError::Rpc(e.to_string()))?
            .ok_or_else(|| ChainError::InvalidChainData(format!("no block {tag}")))?;
        Ok(BlockInfo {
            number: block.header.number,
            timestamp: block.header.timestamp,
            hash: block.header.hash,
        })
    }

    /// Sends a contract call as a transaction and waits (bounded) for its receipt.
    pub(crate) async fn send<P, D>(
        &self,
        contract: &'static str,
        call: CallBuilder<P, D, Ethereum>,
    ) -> Result<TxOutcome, ChainError>
    where
        P: Provider<Ethereum>,
        D: CallDecoder,
    {
        self.send_with_headroom(contract, call, 0).await
    }

    /// As [`ChainConnection::send`], with `headroom` gas over the estimate: for calls
    /// whose cost depends on what other senders do first (the complaint that reaches
    /// the threshold also pays for the slashing), so that a race does not run the
    /// transaction out of gas.
    pub(crate) async fn send_with_headroom<P, D>(
        &self,
        contract: &'static str,
        call: CallBuilder<P, D, Ethereum>,
        headroom: u64,
    ) -> Result<TxOutcome, ChainError>
    where
        P: Provider<Ethereum>,
        D: CallDecoder,
    {
        self.sender()?;
        let _one_at_a_time = self.send_lock.lock().await;
        let call = if headroom > 0 {
            let estimate = call
                .estimate_gas()
                .await
                .map_err(|e| decode_revert(contract, e))?;
            call.gas(estimate.saturating_add(headroom))
        } else {
            call
        };
        let pending = call.send().await.map_err(|e| decode_revert(contract, e))?;
        let hash = *pending.tx_hash();
        let receipt = tokio::time::timeout(self.options.receipt_timeout, pending.get_receipt())
            .await
            .map_err(|_| ChainError::Timeout(self.options.receipt_timeout, "a receipt"))?
            .map_err(|e| ChainError::Rpc(e.to_string()))?;
        if !receipt.status() {
            return Err(ChainError::TransactionFailed(hash));
        }
        Ok(TxOutcome {
            hash,
            block: receipt.block_number.unwrap_or_default(),
            gas_used: receipt.gas_used,
        })
    }

    /// Bounds a read or a deployment by the receipt timeout.
    pub(crate) async fn bounded<T>(
        &self,
        what: &'static str,
        f: impl std::future::Future<Output = Result<T, ChainError>>,
    ) -> Result<T, ChainError> {
        tokio::time::timeout(self.options.receipt_timeout, f)
            .await
            .map_err(|_| ChainError::Timeout(self.options.receipt_timeout, what))?
    }
}

/// Maps a contract error to [`ChainError::Reverted`] with the custom error decoded by
/// any of the project's ABIs (a revert may bubble up from a contract called inside).
pub(crate) fn decode_revert(contract: &'static str, e: alloy::contract::Error) -> ChainError {
    macro_rules! try_decode {
        ($($errors:ty),*) => {
            $(
                if let Some(decoded) = e.as_decoded_interface_error::<$errors>() {
                    return ChainError::Reverted { contract, reason: format!("{decoded:?}") };
                }
            )*
        };
    }
    try_decode!(
        EigenKMSSlashing::EigenKMSSlashingErrors,
        EigenKMSEvidenceV2::EigenKMSEvidenceV2Errors,
        EigenKMSCommitmentRegistry::EigenKMSCommitmentRegistryErrors,
        EigenKMSRegistrar::EigenKMSRegistrarErrors,
        MockAllocationManager::MockAllocationManagerErrors,
        MockKeyRegistrar::MockKeyRegistrarErrors
    );
    if let Some(data) = e.as_revert_data() {
        return ChainError::Reverted {
            contract,
            reason: format!("revert data {data}"),
        };
    }
    ChainError::Rpc(e.to_string())
}
