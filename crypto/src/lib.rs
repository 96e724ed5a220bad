//! EigenKMS cryptographic core: pure functions and types, no I/O, no async.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

pub mod address;
pub mod error;

pub use address::OperatorAddress;
pub use error::CryptoError;
