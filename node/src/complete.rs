//! `/reshare/complete`: after a reshare each player announces, signed, which public
//! polynomial it activated, so operators (and their dashboards) see at once whether
//! the set agrees on the new version.

use alloy_primitives::{Address, B256};
use alloy_sol_types::{SolValue, sol};
use kms_crypto::OperatorAddress;
use kms_crypto::signer::{OperatorPublicKey, OperatorSigner, OperatorVerifier};
use kms_protocol::messages::SignedMessage;
use sha3::{Digest, Keccak256};

sol! {
    /// A player's statement that it finished a session.
    struct SessionComplete {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address operator;
        bytes32 commitmentHash;
    }
}

/// First payload byte, outside the protocol message kinds.
pub const COMPLETE_KIND: u8 = 0x10;

/// The statement, as the node handles it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The session.
    pub session_timestamp: u64,
    /// Its hash.
    pub session_hash: [u8; 32],
    /// Who finished.
    pub operator: OperatorAddress,
    /// Hash of the public polynomial it activated.
    pub commitment_hash: [u8; 32],
}

impl Completion {
    /// Signs the statement.
    pub fn sign(&self, signer: &dyn OperatorSigner) -> SignedMessage {
        let body = SessionComplete {
            sessionTimestamp: self.session_timestamp,
            sessionHash: B256::from(self.session_hash),
            operator: Address::from(*self.operator.as_bytes()),
            commitmentHash: B256::from(self.commitment_hash),
        };
        let mut payload = vec![COMPLETE_KIND];
        payload.extend(body.abi_encode());
        let hash: [u8; 32] = Keccak256::digest(&payload).into();
        SignedMessage {
            payload,
            hash,
            signer: self.operator,
            signature: signer.sign(&hash),
        }
    }

    /// Strictly decodes a message without checking its signature.
    pub fn decode(m: &SignedMessage) -> Result<Self, &'static str> {
        let Some((&COMPLETE_KIND, body)) = m.payload.split_first() else {
            return Err("not a completion message");
        };
        let hash: [u8; 32] = Keccak256::digest(&m.payload).into();
        if hash != m.hash {
            return Err("hash does not match payload");
        }
        let c = SessionComplete::abi_decode(body).map_err(|_| "malformed completion")?;
        if c.abi_encode() != body {
            return Err("non-canonical encoding");
        }
        let operator = OperatorAddress::from_bytes(c.operator.into());
        if operator != m.signer {
            return Err("signer is not the completion's operator");
        }
        Ok(Self {
            session_timestamp: c.sessionTimestamp,
            session_hash: c.sessionHash.0,
            operator,
            commitment_hash: c.commitmentHash.0,
        })
    }

    /// Checks the signature against the operator's registered key.
    pub fn verify(m: &SignedMessage, key: &OperatorPublicKey) -> Result<Self, &'static str> {
        let c = Self::decode(m)?;
        key.verify(&m.hash, &m.signature)
            .map_err(|_| "bad signature")?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::OperatorKeys;
    use kms_crypto::signer::SignatureScheme;

    #[test]
    fn signed_completions_verify_and_tampering_is_caught() {
        let k = OperatorKeys::generate(SignatureScheme::Bn254);
        let c = Completion {
            session_timestamp: 60,
            session_hash: [1; 32],
            operator: k.address(),
            commitment_hash: [2; 32],
        };
        let m = c.sign(k.signer().as_ref());
        assert_eq!(Completion::verify(&m, &k.public_key()).unwrap(), c);
        let other = OperatorKeys::generate(SignatureScheme::Bn254);
        assert!(Completion::verify(&m, &other.public_key()).is_err());
        let mut bad = m.clone();
        bad.payload[5] ^= 1;
        assert!(Completion::decode(&bad).is_err());
    }
}
