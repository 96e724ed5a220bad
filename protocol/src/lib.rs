//! EigenKMS protocol engines: DKG (Feldman and Pedersen/GJKR) and reshare as I/O-free
//! state machines, with acks, complaints and fraud evidence. The node wires them to
//! HTTP, storage and the clock; the [`sim`] module drives many of them in one process
//! over a deterministic simulated network.
#![warn(missing_docs)]

pub mod agreement;
pub mod api;
pub mod certificates;
pub mod dkg;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod messages;
pub mod outcome;
pub mod release;
pub mod session;
pub mod sim;

pub use certificates::CertificateCache;
pub use engine::{Action, Engine};
pub use error::ProtocolError;
pub use evidence::{EvidenceContext, EvidenceError, FraudEvidence};
pub use messages::SignedMessage;
pub use outcome::{KeyShareVersion, SessionFailure, SessionOutcome};
pub use session::{
    OperatorSet, Participant, Schedule, SessionKind, SessionParams, SessionTimestamp, VssMode,
};
