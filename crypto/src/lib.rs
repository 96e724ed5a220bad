//! EigenKMS cryptographic core: pure functions and types, no I/O, no async.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod address;
pub mod error;
pub mod group;
mod hexser;
pub mod ibe;
pub mod operator;
pub mod poly;
pub mod scalar;
pub mod sealed;
pub mod signer;
pub mod tbls;
pub mod vss;

pub use address::OperatorAddress;
pub use error::CryptoError;
pub use group::{G1Point, G2Point};
pub use operator::{evaluation_point, threshold};
pub use poly::Polynomial;
pub use scalar::Scalar;
pub use tbls::{AppPrivateKey, PartialSignature};
pub use vss::Commitment;
