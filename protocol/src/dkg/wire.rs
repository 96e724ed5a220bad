//! Protocol v2 messages: `kind ‖ abi.encode(struct)` payloads in the same signed
//! envelope as v1 ([`SignedMessage`]), so contracts check them the same way. Kinds
//! start at 32: a v1 node refuses v2 messages as unknown rather than misreading them.

use alloy_primitives::{Address, B256, Bytes};
use alloy_sol_types::{SolValue, sol};
use kms_crypto::OperatorAddress;
use kms_crypto::signer::{OperatorSignature, OperatorSigner, OperatorVerifier};
use sha3::{Digest, Keccak256};

use super::ids::{MessageHash, SessionHash};
use super::rejection::Rejection;
use crate::certificates::CertificateCache;
use crate::messages::SignedMessage;
use crate::session::{OperatorSet, SessionTimestamp};

sol! {
    /// A dealer's whole contribution, broadcast: the VSS commitment, the dealing's
    /// ephemeral G1 key and every player's share encrypted to that player's key, in
    /// the order of the session's player set. `recipients` names, per player, the
    /// [`KeyAnnouncement`] its share is encrypted to — the agreed roster's — or zero
    /// for a player outside the roster (whose share words are then zero).
    struct Dealing {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address dealer;
        bytes[] commitment;
        bytes32 constantBlinding;
        bytes ephemeralKey;
        bytes32[] recipients;
        bytes32[] shareValues;
        bytes32[] shareBlindings;
    }

    /// A player's encryption key for this session (G1, EIP-2537), the first message
    /// it sends. Signed like every message, so the key is the operator's word.
    struct KeyAnnouncement {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address player;
        bytes key;
    }

    /// The key announcements a player holds from players it admits (their message
    /// hashes, sorted), sent once it holds every player's or at the key deadline. The
    /// roster is the union of what the agreed set of these names (instance 2).
    struct KeysSeen {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address player;
        bytes32[] keys;
    }

    /// A player's acknowledgements: the dealings whose share for it decrypted and
    /// verified. Monotone: a later bundle adds to an earlier one.
    struct Acks {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address player;
        bytes32[] dealings;
    }

    /// A player's proof that its share in `dealing` is invalid: the Diffie–Hellman key
    /// of that one (dealing, player) pair with a DLEQ proof against the player's
    /// certified encryption key. Opens exactly one share, of the accused dealer.
    struct Complaint {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address player;
        address dealer;
        bytes32 dealing;
        bytes sharedKey;
        bytes32 challenge;
        bytes32 response;
    }

    /// Coin flip for the Pedersen base, round 1: a commitment to a contribution.
    struct CoinCommit {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address operator;
        bytes32 commitment;
    }

    /// Coin flip, round 2: the contribution, naming the commit message it opens.
    struct CoinReveal {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address operator;
        bytes32 commitMessage;
        bytes32 value;
    }

    /// An agreement proposal: the value is the sorted list of message hashes
    /// (dealings for the qualified set, coin reveals for the Pedersen base).
    /// `validRound` is 0 for none, else the round plus one.
    struct Proposal {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address proposer;
        uint8 instance;
        uint32 round;
        uint32 validRound;
        bytes32[] entries;
    }

    /// An agreement vote (`step` 1 = prevote, 2 = precommit; `value` zero = nil).
    struct Vote {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address voter;
        uint8 instance;
        uint32 round;
        uint8 step;
        bytes32 value;
    }

    /// A request for messages by hash (a dealing or coin message a proposal names
    /// that this node does not hold, or the certificate of a decided instance).
    struct Fetch {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address requester;
        bytes32[] hashes;
    }

    /// Pedersen mode: a player's final public share `S = s·G2`, its aggregate
    /// blinding share and a proof of knowledge of `s`.
    struct PublicShareMsg {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address player;
        bytes point;
        bytes32 blinding;
        bytes proofCommitment;
        bytes32 proofResponse;
    }

    /// A player's share of a dealing proven faulty against `recipient` (a valid
    /// complaint) that is nonetheless in the agreed set: encrypted to the recipient's
    /// key alone, so that it rebuilds its own share of that dealing from `t` of them
    /// and is not left without a share of the version.
    struct Recovery {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address helper;
        address recipient;
        bytes32 dealing;
        bytes ephemeralKey;
        bytes32 value;
        bytes32 blinding;
    }
}

/// The first byte of a v2 payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum Kind {
    /// [`Dealing`].
    Dealing = 32,
    /// [`Acks`].
    Acks = 33,
    /// [`Complaint`].
    Complaint = 34,
    /// [`CoinCommit`].
    CoinCommit = 35,
    /// [`CoinReveal`].
    CoinReveal = 36,
    /// [`Proposal`].
    Proposal = 37,
    /// [`Vote`].
    Vote = 38,
    /// [`Fetch`].
    Fetch = 39,
    /// [`PublicShareMsg`].
    PublicShare = 40,
    /// [`Recovery`].
    Recovery = 41,
    /// [`KeyAnnouncement`].
    Key = 42,
    /// [`KeysSeen`].
    KeysSeen = 43,
}

impl Kind {
    /// Every kind (for sweeps and metrics).
    pub const ALL: [Kind; 12] = [
        Self::Dealing,
        Self::Acks,
        Self::Complaint,
        Self::CoinCommit,
        Self::CoinReveal,
        Self::Proposal,
        Self::Vote,
        Self::Fetch,
        Self::PublicShare,
        Self::Recovery,
        Self::Key,
        Self::KeysSeen,
    ];

    fn from_byte(b: u8) -> Result<Self, Rejection> {
        Self::ALL
            .into_iter()
            .find(|k| *k as u8 == b)
            .ok_or(Rejection::Malformed)
    }

    /// The HTTP endpoint leaf a message of this kind is posted to
    /// (`/{dkg|reshare}/{commitment|share|ack}`): dealings carry the shares; a
    /// player's answers (acks, complaints, public shares) go with the acks; coin and
    /// agreement messages and fetches with the commitments.
    pub fn endpoint_leaf(self) -> &'static str {
        match self {
            Self::Dealing => "share",
            Self::Acks | Self::Complaint | Self::PublicShare | Self::Recovery => "ack",
            Self::CoinCommit
            | Self::CoinReveal
            | Self::Proposal
            | Self::Vote
            | Self::Fetch
            | Self::Key
            | Self::KeysSeen => "commitment",
        }
    }

    /// Stable label.
    pub fn label(self) -> &'static str {
        match self {
            Self::Dealing => "dealing",
            Self::Acks => "acks",
            Self::Complaint => "complaint",
            Self::CoinCommit => "coin_commit",
            Self::CoinReveal => "coin_reveal",
            Self::Proposal => "proposal",
            Self::Vote => "vote",
            Self::Fetch => "fetch",
            Self::PublicShare => "public_share",
            Self::Recovery => "recovery",
            Self::Key => "key",
            Self::KeysSeen => "keys_seen",
        }
    }
}

/// Largest v2 payload: a dealing with a 1,024-point commitment and 1,024 players.
pub const MAX_PAYLOAD_BYTES: usize = 512 * 1024;

/// A decoded v2 payload. `Debug` names kind and author only.
#[derive(Clone)]
pub enum Body {
    /// A dealing.
    Dealing(Dealing),
    /// Acks.
    Acks(Acks),
    /// A complaint.
    Complaint(Complaint),
    /// Coin commit.
    CoinCommit(CoinCommit),
    /// Coin reveal.
    CoinReveal(CoinReveal),
    /// Agreement proposal.
    Proposal(Proposal),
    /// Agreement vote.
    Vote(Vote),
    /// Fetch request.
    Fetch(Fetch),
    /// Pedersen public share.
    PublicShare(PublicShareMsg),
    /// A share to help a player rebuild its share of a faulty agreed dealing.
    Recovery(Recovery),
    /// A player's encryption key.
    Key(KeyAnnouncement),
    /// The key announcements a player holds.
    KeysSeen(KeysSeen),
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Body({:?} by {})", self.kind(), self.author())
    }
}

/// Solidity address of an operator.
pub fn to_sol(a: &OperatorAddress) -> Address {
    Address::from(*a.as_bytes())
}

/// Operator address of a Solidity address.
pub fn from_sol(a: &Address) -> OperatorAddress {
    OperatorAddress::from_bytes(a.0.0)
}

/// A 32-byte word.
pub fn word(b: [u8; 32]) -> B256 {
    B256::from(b)
}

/// Bytes of a slice.
pub fn bytes(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

macro_rules! each {
    ($self:expr, $m:ident => $e:expr) => {
        match $self {
            Body::Dealing($m) => $e,
            Body::Acks($m) => $e,
            Body::Complaint($m) => $e,
            Body::CoinCommit($m) => $e,
            Body::CoinReveal($m) => $e,
            Body::Proposal($m) => $e,
            Body::Vote($m) => $e,
            Body::Fetch($m) => $e,
            Body::PublicShare($m) => $e,
            Body::Recovery($m) => $e,
            Body::Key($m) => $e,
            Body::KeysSeen($m) => $e,
        }
    };
}

impl Body {
    /// The kind.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Dealing(_) => Kind::Dealing,
            Self::Acks(_) => Kind::Acks,
            Self::Complaint(_) => Kind::Complaint,
            Self::CoinCommit(_) => Kind::CoinCommit,
            Self::CoinReveal(_) => Kind::CoinReveal,
            Self::Proposal(_) => Kind::Proposal,
            Self::Vote(_) => Kind::Vote,
            Self::Fetch(_) => Kind::Fetch,
            Self::PublicShare(_) => Kind::PublicShare,
            Self::Recovery(_) => Kind::Recovery,
            Self::Key(_) => Kind::Key,
            Self::KeysSeen(_) => Kind::KeysSeen,
        }
    }

    /// `(timestamp, session hash)` the message names.
    pub fn session(&self) -> (SessionTimestamp, SessionHash) {
        each!(self, m => (SessionTimestamp(m.sessionTimestamp), SessionHash(m.sessionHash.0)))
    }

    /// Who must have signed it.
    pub fn author(&self) -> OperatorAddress {
        let a = match self {
            Self::Dealing(m) => &m.dealer,
            Self::Acks(m) => &m.player,
            Self::Complaint(m) => &m.player,
            Self::CoinCommit(m) => &m.operator,
            Self::CoinReveal(m) => &m.operator,
            Self::Proposal(m) => &m.proposer,
            Self::Vote(m) => &m.voter,
            Self::Fetch(m) => &m.requester,
            Self::PublicShare(m) => &m.player,
            Self::Recovery(m) => &m.helper,
            Self::Key(m) => &m.player,
            Self::KeysSeen(m) => &m.player,
        };
        from_sol(a)
    }

    /// `kind ‖ abi.encode(struct)`.
    pub fn encode(&self) -> Vec<u8> {
        let body = each!(self, m => m.abi_encode());
        let mut out = Vec::with_capacity(1 + body.len());
        out.push(self.kind() as u8);
        out.extend_from_slice(&body);
        out
    }

    /// Strict decoding: bounded size, known kind, and the one canonical ABI encoding
    /// (re-encoding reproduces the bytes), so a payload has exactly one hash.
    pub fn decode(bytes: &[u8]) -> Result<Self, Rejection> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(Rejection::TooLarge);
        }
        let (&k, body) = bytes.split_first().ok_or(Rejection::Malformed)?;
        let bad = |_| Rejection::Malformed;
        let b = match Kind::from_byte(k)? {
            Kind::Dealing => Self::Dealing(Dealing::abi_decode(body).map_err(bad)?),
            Kind::Acks => Self::Acks(Acks::abi_decode(body).map_err(bad)?),
            Kind::Complaint => Self::Complaint(Complaint::abi_decode(body).map_err(bad)?),
            Kind::CoinCommit => Self::CoinCommit(CoinCommit::abi_decode(body).map_err(bad)?),
            Kind::CoinReveal => Self::CoinReveal(CoinReveal::abi_decode(body).map_err(bad)?),
            Kind::Proposal => Self::Proposal(Proposal::abi_decode(body).map_err(bad)?),
            Kind::Vote => Self::Vote(Vote::abi_decode(body).map_err(bad)?),
            Kind::Fetch => Self::Fetch(Fetch::abi_decode(body).map_err(bad)?),
            Kind::PublicShare => Self::PublicShare(PublicShareMsg::abi_decode(body).map_err(bad)?),
            Kind::Recovery => Self::Recovery(Recovery::abi_decode(body).map_err(bad)?),
            Kind::Key => Self::Key(KeyAnnouncement::abi_decode(body).map_err(bad)?),
            Kind::KeysSeen => Self::KeysSeen(KeysSeen::abi_decode(body).map_err(bad)?),
        };
        if b.encode() != bytes {
            return Err(Rejection::Malformed);
        }
        Ok(b)
    }

    /// Encodes and signs.
    pub fn sign(&self, signer: &dyn OperatorSigner) -> SignedMessage {
        let payload = self.encode();
        let hash: [u8; 32] = Keccak256::digest(&payload).into();
        SignedMessage {
            payload,
            hash,
            signer: self.author(),
            signature: signer.sign(&hash),
        }
    }
}

/// The hash a message is referred to by.
pub fn message_hash(m: &SignedMessage) -> MessageHash {
    MessageHash(m.hash)
}

/// Everything about a signed v2 message but its signature: the hash matches the
/// payload, the payload decodes canonically, the signer is the author, the session is
/// this one. For callers that check signatures in batches.
pub fn open_unverified(
    m: &SignedMessage,
    timestamp: SessionTimestamp,
    session: &SessionHash,
) -> Result<Body, Rejection> {
    let hash: [u8; 32] = Keccak256::digest(&m.payload).into();
    if hash != m.hash {
        return Err(Rejection::Malformed);
    }
    let body = Body::decode(&m.payload)?;
    if body.author() != m.signer {
        return Err(Rejection::SignerMismatch);
    }
    if body.session() != (timestamp, *session) {
        return Err(Rejection::WrongSession);
    }
    Ok(body)
}

/// Checks the signature of `m` against its author's registered key in `members` (a
/// certified signature must name the signer and cover the session).
pub fn verify_signature(
    m: &SignedMessage,
    members: &[&OperatorSet],
    timestamp: SessionTimestamp,
) -> Result<(), Rejection> {
    verify_signature_cached(m, members, timestamp, None)
}

/// [`verify_signature`] with a cache of protocol-key certificates already checked
/// against their operators' keys: a known certificate costs a comparison, and only
/// the Schnorr signature is checked (with the key's prepared tables).
pub fn verify_signature_cached(
    m: &SignedMessage,
    members: &[&OperatorSet],
    timestamp: SessionTimestamp,
    cache: Option<&CertificateCache>,
) -> Result<(), Rejection> {
    if let (Some(cache), OperatorSignature::Certified(c)) = (cache, &m.signature) {
        let participant = members
            .iter()
            .find_map(|s| s.participant(&m.signer))
            .ok_or(Rejection::WrongRole)?;
        if !m.certificate_fits(&c.certificate, timestamp)
            || !cache.check(&participant.public_key, &c.certificate)
        {
            return Err(Rejection::BadSignature);
        }
        let key = cache.prepared(&c.certificate.key);
        return c
            .signature
            .verify_prepared(&key, &m.hash)
            .map_err(|_| Rejection::BadSignature);
    }
    let participant = members
        .iter()
        .find_map(|s| s.participant(&m.signer))
        .ok_or(Rejection::WrongRole)?;
    if let OperatorSignature::Certified(c) = &m.signature
        && !m.certificate_fits(&c.certificate, timestamp)
    {
        return Err(Rejection::BadSignature);
    }
    participant
        .public_key
        .verify(&m.hash, &m.signature)
        .map_err(|_| Rejection::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vote() -> Body {
        Body::Vote(Vote {
            sessionTimestamp: 7,
            sessionHash: word([1; 32]),
            voter: to_sol(&OperatorAddress::from_bytes([9; 20])),
            instance: 1,
            round: 0,
            step: 1,
            value: word([2; 32]),
        })
    }

    #[test]
    fn a_payload_round_trips_and_has_one_encoding() {
        let b = vote();
        let bytes = b.encode();
        let back = Body::decode(&bytes).unwrap();
        assert_eq!(back.encode(), bytes);
        assert_eq!(back.kind(), Kind::Vote);
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(Body::decode(&trailing).unwrap_err(), Rejection::Malformed);
    }

    #[test]
    fn unknown_kinds_and_v1_kinds_are_refused() {
        let mut bytes = vote().encode();
        for k in [0u8, 1, 6, 31, 44, 255] {
            bytes[0] = k;
            assert_eq!(Body::decode(&bytes).unwrap_err(), Rejection::Malformed);
        }
    }

    #[test]
    fn oversized_payloads_are_refused_before_decoding() {
        let bytes = vec![Kind::Dealing as u8; MAX_PAYLOAD_BYTES + 1];
        assert_eq!(Body::decode(&bytes).unwrap_err(), Rejection::TooLarge);
    }
}
