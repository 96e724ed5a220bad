//! Identifiers of protocol v2: hash newtypes, so a session hash cannot be passed where
//! a message hash is expected, and the recipient of an outgoing message.

use std::fmt;

use kms_crypto::OperatorAddress;
use serde::{Deserialize, Serialize};

macro_rules! hash_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            /// The 32 bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(0x", stringify!($name))?;
                for b in &self.0[..6] {
                    write!(f, "{b:02x}")?;
                }
                write!(f, "…)")
            }
        }
    };
}

hash_type!(
    /// `keccak256` of a session's descriptor: binds every message to one session of
    /// one deployment.
    SessionHash
);
hash_type!(
    /// `keccak256` of a signed message's payload: names a dealing, a coin message or a
    /// vote wherever it is referred to (proposals, acks, complaints, fetches).
    MessageHash
);
hash_type!(
    /// `keccak256` of the deployment's identity (chain, registry, AVS, operator set).
    DeploymentHash
);

/// Who an outgoing message is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Recipient {
    /// Every other participant of the session.
    All,
    /// One participant.
    One(OperatorAddress),
}
