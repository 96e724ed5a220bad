//! EigenKMS on Ethereum: bindings of the contracts in `contracts/`, deployment,
//! operator-set reads, commitment and fraud-proof submission, transaction signers.
#![warn(missing_docs)]

pub mod anvil;
pub mod bindings;
pub mod connection;
pub mod deployment;
pub mod error;
pub mod fraud;
pub mod fraud_v2;
pub mod kms;
pub mod merkle;
pub mod operators;
pub mod signer;

pub use connection::{BlockInfo, ChainConnection, ConnectionOptions, TxOutcome};
pub use deployment::{Deployment, KeyCurve, SlashingPolicy};
pub use error::ChainError;
pub use fraud::{FraudKind, FraudProof};
pub use fraud_v2::FraudProofV2;
pub use kms::{
    CommitmentOutcome, DealerRecord, KmsContracts, ProofOutcome, ProofStatus, RecordedCommitment,
};
pub use operators::{ChainOperator, ChainOperatorSet, OperatorSetSnapshot};
pub use signer::{LocalTxSigner, RemoteTxSigner, SignerWallet, TxSigner};
