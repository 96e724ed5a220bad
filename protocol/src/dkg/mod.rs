//! Protocol v2 of DKG and reshare: shares encrypted end to end inside one broadcast
//! dealing per dealer, complaints that open exactly one share with a DLEQ-proven
//! Diffie–Hellman key, and every outcome — the Pedersen base and the qualified set —
//! fixed by an agreement certificate, so that honest nodes never activate different
//! versions and no code path publishes a player's share. The properties and their
//! arguments are in `docs/protocol.md`.
//!
//! Roles and pieces:
//! - [`setup`]: what a session is (parameters, deployment) and its hash;
//! - [`roster`]: the agreed encryption keys dealers encrypt to;
//! - [`dealer`]: the one dealing a dealer broadcasts;
//! - [`dealings`]: a player's view of the dealings (own shares, acks, complaints);
//! - [`base`]: the coin flip for the Pedersen base;
//! - [`instance`]: an agreement instance ([`crate::agreement`]) and the values behind it;
//! - [`combine`]: from an agreed set to a key version (and Pedersen public shares);
//! - [`engine`]: routing, phases and deadlines;
//! - [`verify`]: signature checks (certificates cached);
//! - [`wire`], [`ids`], [`rejection`], [`phase`], [`evidence`]: messages and types;
//! - [`sim`], [`sweep`], [`forge`]: test support (a simulated network, the
//!   adversarial sweep over it, faulty messages).

pub mod base;
pub mod combine;
pub mod dealer;
pub mod dealings;
pub mod engine;
pub mod evidence;
pub mod forge;
pub mod ids;
pub mod instance;
pub mod phase;
pub mod rejection;
pub mod roster;
pub mod setup;
pub mod shares;
pub mod sim;
pub mod sweep;
pub mod verify;
pub mod wire;

pub use engine::{Action, Engine};
pub use evidence::{BaseDecision, Evidence, EvidenceError};
pub use ids::{DeploymentHash, MessageHash, Recipient, SessionHash};
pub use phase::Phase;
pub use rejection::Rejection;
pub use setup::{Deployment, Setup};
