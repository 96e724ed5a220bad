//! Protocol messages: ABI-encoded payloads in a signed envelope.
//!
//! The signed bytes are `payload = kind ‖ abi.encode(struct)`, the signature is over
//! `keccak256(payload)` with the operator key, so a contract can check a forwarded
//! message (a fraud proof) with nothing but the bytes and the signer's registered key.
//! Messages are self-authenticating: a node may forward another operator's signed
//! message (a reveal, an equivocation report) unchanged.

use alloy_primitives::{Address, B256, Bytes};
use alloy_sol_types::{SolValue, sol};
use kms_crypto::signer::{
    OperatorPublicKey, OperatorSignature, OperatorSigner, OperatorVerifier, ProtocolKeyCertificate,
};
use kms_crypto::vss::pedersen::PedersenShare;
use kms_crypto::{Commitment, G2Point, OperatorAddress, Scalar};
use serde::{Deserialize, Serialize};
use sha3::{Digest, Keccak256};
use zeroize::Zeroizing;

use crate::error::ProtocolError;
use crate::session::SessionTimestamp;

sol! {
    /// A dealer's commitment: phase 1 is the VSS commitment (Feldman or Pedersen),
    /// phase 2 the Feldman commitment of a Pedersen dealer's polynomial.
    struct DealerCommitment {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address dealer;
        uint8 phase;
        bytes[] commitment;
    }

    /// A dealer's share for one player (blinding is zero in Feldman mode).
    struct DealerShare {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address dealer;
        address player;
        bytes32 commitmentHash;
        bytes32 share;
        bytes32 blinding;
    }

    /// One acknowledgement: the player verified `shareHash` against `commitmentHash`
    /// from `dealer`.
    struct AckEntry {
        address dealer;
        bytes32 shareHash;
        bytes32 commitmentHash;
    }

    /// A player's signed acknowledgements of valid shares, all dealers it verified in
    /// one batch under one signature: each entry is the statement
    /// `(dealer, player, session, hash(share), hash(commitment))`.
    struct PlayerAcks {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address player;
        AckEntry[] acks;
    }

    /// A player's complaint about a dealer (evidence travels as forwarded signed
    /// dealer messages).
    struct PlayerComplaint {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address dealer;
        address player;
        uint8 reason;
    }

    /// Coin flip, round 1: commitment to a random contribution.
    struct CoinCommit {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address operator;
        bytes32 commitment;
    }

    /// Coin flip, round 2: the contribution.
    struct CoinReveal {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address operator;
        bytes32 value;
    }
}

/// The first byte of every payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum MessageKind {
    /// [`DealerCommitment`].
    Commitment = 1,
    /// [`DealerShare`].
    Share = 2,
    /// [`PlayerAcks`].
    Ack = 3,
    /// [`PlayerComplaint`].
    Complaint = 4,
    /// [`CoinCommit`].
    CoinCommit = 5,
    /// [`CoinReveal`].
    CoinReveal = 6,
}

impl MessageKind {
    fn from_byte(b: u8) -> Result<Self, ProtocolError> {
        Ok(match b {
            1 => Self::Commitment,
            2 => Self::Share,
            3 => Self::Ack,
            4 => Self::Complaint,
            5 => Self::CoinCommit,
            6 => Self::CoinReveal,
            _ => return Err(ProtocolError::Malformed("unknown message kind")),
        })
    }
}

/// Why a player complains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum ComplaintReason {
    /// No share (or no commitment) arrived by the commit deadline; the dealer must
    /// reveal the share publicly or be disqualified.
    Missing = 1,
    /// The share does not verify; the complainer forwards the signed share as proof.
    InvalidShare = 2,
    /// The Pedersen phase-2 Feldman commitment does not match the phase-1 share.
    InvalidPhase2 = 3,
}

/// Largest payload accepted (a commitment of 1,024 coefficients in EIP-2537 form).
pub const MAX_PAYLOAD_BYTES: usize = 1 + 64 * 8 + 1024 * (256 + 64);

/// `AuthenticatedMessage { payload, hash, signature }` plus the claimed signer, whose
/// registered key is used to check the signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedMessage {
    /// `kind ‖ abi.encode(struct)`.
    #[serde(with = "hex_bytes")]
    pub payload: Vec<u8>,
    /// `keccak256(payload)`.
    #[serde(with = "hex_bytes32")]
    pub hash: [u8; 32],
    /// Who signed (must be the dealer for commitments and shares, the player for acks
    /// and complaints, the operator for coin messages).
    pub signer: OperatorAddress,
    /// The operator signature over `hash`.
    pub signature: OperatorSignature,
}

/// A decoded payload. `Debug` shows only kind and author: share payloads carry secrets.
#[derive(Clone)]
pub enum Payload {
    /// A dealer's commitment.
    Commitment(DealerCommitment),
    /// A dealer's share for a player.
    Share(DealerShare),
    /// A player's acks.
    Ack(PlayerAcks),
    /// A player's complaint.
    Complaint(PlayerComplaint),
    /// Coin flip commitment.
    CoinCommit(CoinCommit),
    /// Coin flip reveal.
    CoinReveal(CoinReveal),
}

impl std::fmt::Debug for Payload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Payload({:?} by {})", self.kind(), self.author())
    }
}

fn addr(a: &OperatorAddress) -> Address {
    Address::from(*a.as_bytes())
}

fn op(a: &Address) -> OperatorAddress {
    OperatorAddress::from_bytes(a.0.0)
}

impl Payload {
    /// The message kind.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Commitment(_) => MessageKind::Commitment,
            Self::Share(_) => MessageKind::Share,
            Self::Ack(_) => MessageKind::Ack,
            Self::Complaint(_) => MessageKind::Complaint,
            Self::CoinCommit(_) => MessageKind::CoinCommit,
            Self::CoinReveal(_) => MessageKind::CoinReveal,
        }
    }

    /// `(session timestamp, session hash)` named by the message.
    pub fn session(&self) -> (SessionTimestamp, [u8; 32]) {
        let (t, h) = match self {
            Self::Commitment(m) => (m.sessionTimestamp, m.sessionHash),
            Self::Share(m) => (m.sessionTimestamp, m.sessionHash),
            Self::Ack(m) => (m.sessionTimestamp, m.sessionHash),
            Self::Complaint(m) => (m.sessionTimestamp, m.sessionHash),
            Self::CoinCommit(m) => (m.sessionTimestamp, m.sessionHash),
            Self::CoinReveal(m) => (m.sessionTimestamp, m.sessionHash),
        };
        (SessionTimestamp(t), h.0)
    }

    /// The operator that must have signed this payload.
    pub fn author(&self) -> OperatorAddress {
        match self {
            Self::Commitment(m) => op(&m.dealer),
            Self::Share(m) => op(&m.dealer),
            Self::Ack(m) => op(&m.player),
            Self::Complaint(m) => op(&m.player),
            Self::CoinCommit(m) => op(&m.operator),
            Self::CoinReveal(m) => op(&m.operator),
        }
    }

    /// `kind ‖ abi.encode(struct)`.
    pub fn encode(&self) -> Vec<u8> {
        let body = match self {
            Self::Commitment(m) => m.abi_encode(),
            Self::Share(m) => m.abi_encode(),
            Self::Ack(m) => m.abi_encode(),
            Self::Complaint(m) => m.abi_encode(),
            Self::CoinCommit(m) => m.abi_encode(),
            Self::CoinReveal(m) => m.abi_encode(),
        };
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(self.kind() as u8);
        out.extend_from_slice(&body);
        out
    }

    /// Strict decoding: known kind, valid ABI, and re-encoding must reproduce the
    /// bytes exactly (no trailing data, no non-canonical padding), so one payload has
    /// one hash and a signature cannot be reused on a variant encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self, ProtocolError> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(ProtocolError::Malformed("payload too large"));
        }
        let (&k, body) = bytes
            .split_first()
            .ok_or(ProtocolError::Malformed("empty payload"))?;
        let bad = |_| ProtocolError::Malformed("payload is not valid ABI for its kind");
        let p = match MessageKind::from_byte(k)? {
            MessageKind::Commitment => {
                Self::Commitment(DealerCommitment::abi_decode(body).map_err(bad)?)
            }
            MessageKind::Share => Self::Share(DealerShare::abi_decode(body).map_err(bad)?),
            MessageKind::Ack => Self::Ack(PlayerAcks::abi_decode(body).map_err(bad)?),
            MessageKind::Complaint => {
                Self::Complaint(PlayerComplaint::abi_decode(body).map_err(bad)?)
            }
            MessageKind::CoinCommit => Self::CoinCommit(CoinCommit::abi_decode(body).map_err(bad)?),
            MessageKind::CoinReveal => Self::CoinReveal(CoinReveal::abi_decode(body).map_err(bad)?),
        };
        if p.encode() != bytes {
            return Err(ProtocolError::Malformed("non-canonical ABI encoding"));
        }
        Ok(p)
    }
}

impl SignedMessage {
    /// Encodes and signs `payload` with `signer`.
    pub fn sign(
        payload: &Payload,
        signer_address: OperatorAddress,
        signer: &dyn OperatorSigner,
    ) -> Self {
        let bytes = payload.encode();
        let hash: [u8; 32] = Keccak256::digest(&bytes).into();
        Self {
            payload: bytes,
            hash,
            signer: signer_address,
            signature: signer.sign(&hash),
        }
    }

    /// Decodes the payload and checks the hash, the author and the signature against
    /// `key` (the registered key of `self.signer`).
    pub fn open(&self, key: &OperatorPublicKey) -> Result<Payload, ProtocolError> {
        let payload = self.open_unverified()?;
        self.verify_signature_in(key, payload.session().0)?;
        Ok(payload)
    }

    /// Everything [`SignedMessage::open`] checks except the signature: the hash, the
    /// canonical payload, the author. For callers that verify signatures in batches
    /// (and must do so before acting on the payload).
    pub fn open_unverified(&self) -> Result<Payload, ProtocolError> {
        let hash: [u8; 32] = Keccak256::digest(&self.payload).into();
        if hash != self.hash {
            return Err(ProtocolError::Malformed("hash does not match payload"));
        }
        let payload = Payload::decode(&self.payload)?;
        if payload.author() != self.signer {
            return Err(ProtocolError::Rejected(
                "signer is not the message's author",
            ));
        }
        Ok(payload)
    }

    /// Checks the signature on `self.hash` (which [`SignedMessage::open_unverified`]
    /// ties to the payload) against `key`. A certified signature must also name the
    /// signer as its certificate's operator, and its certificate must cover the
    /// message's session.
    pub fn verify_signature(&self, key: &OperatorPublicKey) -> Result<(), ProtocolError> {
        // Only a certified signature depends on the session: decode only for it.
        let session = match &self.signature {
            OperatorSignature::Certified(_) => self.peek()?.session().0,
            _ => SessionTimestamp(0),
        };
        self.verify_signature_in(key, session)
    }

    /// [`SignedMessage::verify_signature`] for a message whose payload names the
    /// session at `session` (decoded by the caller).
    fn verify_signature_in(
        &self,
        key: &OperatorPublicKey,
        session: SessionTimestamp,
    ) -> Result<(), ProtocolError> {
        if let OperatorSignature::Certified(c) = &self.signature
            && !self.certificate_fits(&c.certificate, session)
        {
            return Err(ProtocolError::BadSignature);
        }
        key.verify(&self.hash, &self.signature)
            .map_err(|_| ProtocolError::BadSignature)
    }

    /// Whether a certificate may sign this message: it certifies the message's
    /// signer, for a window that covers the session at `session`.
    pub fn certificate_fits(&self, c: &ProtocolKeyCertificate, session: SessionTimestamp) -> bool {
        c.operator == self.signer && c.covers(session.0)
    }

    /// Decodes the payload without checking the signature (for routing only).
    pub fn peek(&self) -> Result<Payload, ProtocolError> {
        Payload::decode(&self.payload)
    }
}

/// Commitment points in their EIP-2537 form (what contracts consume).
pub fn encode_commitment(c: &Commitment) -> Vec<Bytes> {
    c.coefficients()
        .iter()
        .map(|p| Bytes::from(p.to_eip2537().to_vec()))
        .collect()
}

/// Strict decoding of commitment points (subgroup-checked, no identity).
pub fn decode_commitment(words: &[Bytes]) -> Result<Commitment, ProtocolError> {
    if words.len() > Commitment::MAX_COEFFICIENTS {
        return Err(ProtocolError::Malformed("commitment too long"));
    }
    let points = words
        .iter()
        .map(|w| G2Point::from_eip2537(w))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ProtocolError::Malformed("invalid commitment point"))?;
    Commitment::new(points).map_err(|_| ProtocolError::Malformed("empty commitment"))
}

/// `keccak256` of the words as received: equal to [`Commitment::hash`] of the decoded
/// commitment, since a word that decodes is the point's only encoding — without
/// re-encoding `t` points.
pub fn commitment_words_hash(words: &[Bytes]) -> [u8; 32] {
    let mut h = Keccak256::new();
    for w in words {
        h.update(w);
    }
    h.finalize().into()
}

/// Decoding of commitment points with the subgroup check deferred (canonical, on the
/// curve, no identity): what the engine uses for the `n·t` points of a session, which
/// it checks on the aggregate instead (see [`kms_crypto::Commitment`]).
pub fn decode_commitment_deferred(words: &[Bytes]) -> Result<Commitment, ProtocolError> {
    if words.is_empty() {
        return Err(ProtocolError::Malformed("empty commitment"));
    }
    if words.len() > Commitment::MAX_COEFFICIENTS {
        return Err(ProtocolError::Malformed("commitment too long"));
    }
    Commitment::from_eip2537_deferred(words.iter().map(|w| w.as_ref()))
        .map_err(|_| ProtocolError::Malformed("invalid commitment point"))
}

/// The share scalars of a share message (canonical, `< r`).
pub fn decode_share(m: &DealerShare) -> Result<PedersenShare, ProtocolError> {
    let value = Scalar::from_bytes_be(&m.share.0)
        .map_err(|_| ProtocolError::Malformed("share not canonical"))?;
    let blinding = Scalar::from_bytes_be(&m.blinding.0)
        .map_err(|_| ProtocolError::Malformed("blinding not canonical"))?;
    Ok(PedersenShare { value, blinding })
}

/// `keccak256(share ‖ blinding)`: what an ack commits to.
pub fn share_hash(m: &DealerShare) -> [u8; 32] {
    let mut buf = Zeroizing::new([0u8; 64]);
    buf[..32].copy_from_slice(&m.share.0);
    buf[32..].copy_from_slice(&m.blinding.0);
    Keccak256::digest(buf.as_ref()).into()
}

pub(crate) fn b256(x: [u8; 32]) -> B256 {
    B256::from(x)
}

pub(crate) fn to_address(a: &OperatorAddress) -> Address {
    addr(a)
}

pub(crate) fn from_address(a: &Address) -> OperatorAddress {
    op(a)
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        let body = s
            .strip_prefix("0x")
            .ok_or_else(|| serde::de::Error::custom("missing 0x"))?;
        if body.len() > 2 * super::MAX_PAYLOAD_BYTES {
            return Err(serde::de::Error::custom("payload too large"));
        }
        hex::decode(body).map_err(serde::de::Error::custom)
    }
}

mod hex_bytes32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("0x{}", hex::encode(b)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let body = s
            .strip_prefix("0x")
            .ok_or_else(|| serde::de::Error::custom("missing 0x"))?;
        let mut out = [0u8; 32];
        hex::decode_to_slice(body, &mut out).map_err(serde::de::Error::custom)?;
        Ok(out)
    }
}
