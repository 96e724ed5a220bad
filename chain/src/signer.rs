//! Transaction signers: the operator's Ethereum key, held locally or by a remote
//! signer (web3signer's `eth_signTransaction` JSON-RPC), behind one trait.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use alloy::consensus::{SignableTransaction, TxEnvelope, TypedTransaction};
use alloy::eips::eip2718::Decodable2718;
use alloy::network::{Ethereum, EthereumWallet, NetworkWallet};
use alloy::primitives::{Address, Bytes};
use alloy::rpc::client::RpcClient;
use alloy::rpc::types::TransactionRequest;
use alloy::signers::local::PrivateKeySigner;
use async_trait::async_trait;
use url::Url;
use zeroize::Zeroizing;

use crate::error::ChainError;

/// Signs the operator's Ethereum transactions.
#[async_trait]
pub trait TxSigner: Send + Sync + fmt::Debug {
    /// The address transactions are sent from.
    fn address(&self) -> Address;
    /// Signs a complete transaction (nonce, gas, fees and chain id filled in).
    async fn sign_transaction(&self, tx: TypedTransaction) -> Result<TxEnvelope, ChainError>;
}

/// A secp256k1 key held in this process.
pub struct LocalTxSigner {
    wallet: EthereumWallet,
    address: Address,
}

impl LocalTxSigner {
    /// From a 32-byte secret key.
    pub fn from_bytes(secret: &[u8; 32]) -> Result<Self, ChainError> {
        let signer = PrivateKeySigner::from_slice(secret)
            .map_err(|e| ChainError::Config(format!("transaction key: {e}")))?;
        let address = signer.address();
        Ok(Self {
            wallet: EthereumWallet::from(signer),
            address,
        })
    }

    /// From a hex string (`0x` optional).
    pub fn from_hex(hex_key: &str) -> Result<Self, ChainError> {
        let body = hex_key.trim();
        let body = body.strip_prefix("0x").unwrap_or(body);
        let mut key = Zeroizing::new([0u8; 32]);
        hex::decode_to_slice(body, key.as_mut())
            .map_err(|_| ChainError::Config("transaction key is not 32 hex bytes".into()))?;
        Self::from_bytes(&key)
    }

    /// From a file holding the hex key (one line).
    pub fn from_key_file(path: &Path) -> Result<Self, ChainError> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            ChainError::Config(format!("reading transaction key {}: {e}", path.display()))
        })?);
        Self::from_hex(&text)
    }
}

impl fmt::Debug for LocalTxSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LocalTxSigner({}, <redacted>)", self.address)
    }
}

#[async_trait]
impl TxSigner for LocalTxSigner {
    fn address(&self) -> Address {
        self.address
    }

    async fn sign_transaction(&self, tx: TypedTransaction) -> Result<TxEnvelope, ChainError> {
        NetworkWallet::<Ethereum>::sign_transaction_from(&self.wallet, self.address, tx)
            .await
            .map_err(|e| ChainError::Signer(e.to_string()))
    }
}

/// A remote signer speaking web3signer's `eth_signTransaction` (the key never enters
/// this process). The signed transaction it returns is checked: it must be signed by
/// `address` and be exactly the transaction that was asked for.
pub struct RemoteTxSigner {
    url: Url,
    address: Address,
    client: RpcClient,
}

impl RemoteTxSigner {
    /// A signer at `url` holding the key of `address`; requests time out after `timeout`.
    pub fn new(url: Url, address: Address, timeout: Duration) -> Result<Self, ChainError> {
        let client = crate::connection::rpc_client(&url, timeout)?;
        Ok(Self {
            url,
            address,
            client,
        })
    }
}

impl fmt::Debug for RemoteTxSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RemoteTxSigner({} at {})", self.address, self.url)
    }
}

/// `eth_signTransaction` answers with the raw transaction (web3signer) or with
/// `{raw, tx}` (geth-style nodes).
#[derive(Debug, serde::Deserialize)]
#[serde(untagged)]
enum SignTransactionResponse {
    Raw(Bytes),
    WithRaw { raw: Bytes },
}

#[async_trait]
impl TxSigner for RemoteTxSigner {
    fn address(&self) -> Address {
        self.address
    }

    async fn sign_transaction(&self, tx: TypedTransaction) -> Result<TxEnvelope, ChainError> {
        let wanted = tx.signature_hash();
        let mut request = TransactionRequest::from_transaction(tx);
        request.from = Some(self.address);
        let response: SignTransactionResponse = self
            .client
            .request("eth_signTransaction", (request,))
            .await
            .map_err(|e| ChainError::Signer(format!("remote signer: {e}")))?;
        let raw = match response {
            SignTransactionResponse::Raw(b) | SignTransactionResponse::WithRaw { raw: b } => b,
        };
        let envelope = TxEnvelope::decode_2718(&mut raw.as_ref())
            .map_err(|e| ChainError::Signer(format!("remote signer returned garbage: {e}")))?;
        // A signer that changed the transaction (or signed with another key) must not
        // get its version broadcast under our name.
        if envelope.signature_hash() != wanted {
            return Err(ChainError::Signer(
                "remote signer signed a different transaction".into(),
            ));
        }
        let signer = envelope
            .signature()
            .recover_address_from_prehash(&wanted)
            .map_err(|e| ChainError::Signer(format!("remote signature does not recover: {e}")))?;
        if signer != self.address {
            return Err(ChainError::Signer(format!(
                "remote signer signed as {signer}, expected {}",
                self.address
            )));
        }
        Ok(envelope)
    }
}

/// Adapts a [`TxSigner`] to alloy's wallet interface, so providers fill and sign
/// transactions with it.
#[derive(Clone, Debug)]
pub struct SignerWallet(pub Arc<dyn TxSigner>);

impl NetworkWallet<Ethereum> for SignerWallet {
    fn default_signer_address(&self) -> Address {
        self.0.address()
    }

    fn has_signer_for(&self, address: &Address) -> bool {
        *address == self.0.address()
    }

    fn signer_addresses(&self) -> impl Iterator<Item = Address> {
        std::iter::once(self.0.address())
    }

    async fn sign_transaction_from(
        &self,
        sender: Address,
        tx: TypedTransaction,
    ) -> alloy::signers::Result<TxEnvelope> {
        if sender != self.0.address() {
            return Err(alloy::signers::Error::other(format!(
                "no key for sender {sender}"
            )));
        }
        self.0
            .sign_transaction(tx)
            .await
            .map_err(alloy::signers::Error::other)
    }
}
