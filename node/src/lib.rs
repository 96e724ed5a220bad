//! EigenKMS operator node: the protocol engines of `kms-protocol` wired to HTTP
//! (axum), a retrying transport, a wall-clock scheduler, an encrypted `redb` key store
//! and Prometheus metrics. The binary (`kms-node`) runs one operator (`run`), a local
//! cluster (`devnet`), generates operator keys (`keygen`) and checks configurations.
#![warn(missing_docs)]

pub mod app_sign;
pub mod apps;
pub mod attest;
pub mod audit;
pub mod catchup;
pub mod chain;
pub mod complete;
pub mod config;
pub mod connections;
pub mod dealing;
pub mod devnet;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod node;
pub mod peering;
pub mod release;
pub mod replay;
pub mod schedule;
pub mod secrets;
pub mod session;
pub mod store;
pub mod tls;
pub mod transport;
pub mod unlock;

pub use config::NodeConfig;
pub use keys::OperatorKeys;
pub use node::{Clock, Node, StartOptions, SystemClock};

/// Installs rustls' `ring` provider as the process default (idempotent). The HTTP
/// client is built without a provider so that the graph needs no C toolchain beyond cc.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
