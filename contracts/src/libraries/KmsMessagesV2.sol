// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

/// @notice `kms_protocol::dkg::setup::SessionDescriptorV2`: its ABI hash is the session
/// hash every v2 message carries.
struct SessionDescriptorV2 {
    uint8 version;
    bytes32 deployment;
    uint64 timestamp;
    uint8 kind;
    uint8 mode;
    address[] dealers;
    uint256 dealerThreshold;
    address[] players;
    uint256 playerThreshold;
    bytes32 previousCommitmentHash;
}

/// @notice The public proof of a Pedersen session's base `H2`
/// (`kms_protocol::dkg::base::BaseDecision`): the decision certificate of the coin
/// agreement (instance 0), a quorum of players' precommits for one round and value
/// in ascending voter order, and the coin reveals that value names, in its (hash)
/// order. `H2 = hash_to_G2(seed)` with the seed of those reveals. Empty in Feldman mode.
struct BaseProof {
    bytes[] precommits;
    bytes[] signatures;
    bytes[] reveals;
}

/// @notice Strict decoding of protocol v2 payloads, `kind ‖ abi.encode(struct)` with
/// kinds from 32 (`kms_protocol::dkg::wire`). As in `Body::decode`, only the one
/// canonical encoding is accepted: the bytes are decoded, re-encoded and compared, so
/// one message has one hash.
library KmsMessagesV2 {
    uint8 internal constant KIND_DEALING = 32;
    uint8 internal constant KIND_COMPLAINT = 34;
    uint8 internal constant KIND_COIN_REVEAL = 36;
    uint8 internal constant KIND_PROPOSAL = 37;
    uint8 internal constant KIND_VOTE = 38;
    uint8 internal constant KIND_KEY = 42;

    /// @dev `kms_protocol::dkg::wire::MAX_PAYLOAD_BYTES`.
    uint256 internal constant MAX_PAYLOAD_BYTES = 512 * 1024;

    /// @notice `wire::Dealing`: a dealer's commitment, ephemeral key and encrypted shares.
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

    /// @notice `wire::Complaint`: a player's revealed key for one dealing, with its DLEQ proof.
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

    /// @notice `wire::KeyAnnouncement`: a player's encryption key for one session.
    struct KeyAnnouncement {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address player;
        bytes key;
    }

    /// @notice `wire::CoinReveal`.
    struct CoinReveal {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address operator;
        bytes32 commitMessage;
        bytes32 value;
    }

    /// @notice `wire::Proposal`.
    struct Proposal {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address proposer;
        uint8 instance;
        uint32 round;
        uint32 validRound;
        bytes32[] entries;
    }

    /// @notice `wire::Vote`.
    struct Vote {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address voter;
        uint8 instance;
        uint32 round;
        uint8 step;
        bytes32 value;
    }

    /// @notice What an author decides once per session (`dkg::evidence::Slot`): two
    /// different messages in one slot are an equivocation.
    struct Slot {
        uint8 kind;
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address author;
        uint8 instance;
        uint32 round;
        uint8 step;
    }

    error PayloadTooLarge();
    error WrongMessageKind(uint8 expected);
    error NonCanonicalEncoding();
    /// @notice A message of a kind that may be sent more than once per slot.
    error NotOnceKind(uint8 kind);

    function _body(bytes calldata p, uint8 expected) private pure returns (bytes calldata) {
        if (p.length > MAX_PAYLOAD_BYTES) revert PayloadTooLarge();
        if (p.length == 0 || uint8(p[0]) != expected) revert WrongMessageKind(expected);
        return p[1:];
    }

    function _canonical(bytes memory reencoded, bytes calldata body) private pure {
        if (keccak256(reencoded) != keccak256(body)) revert NonCanonicalEncoding();
    }

    /// @notice Decodes a dealing (kind 32).
    function decodeDealing(bytes calldata p) internal pure returns (Dealing memory d) {
        bytes calldata body = _body(p, KIND_DEALING);
        d = abi.decode(body, (Dealing));
        _canonical(abi.encode(d), body);
    }

    /// @notice Decodes a complaint (kind 34).
    function decodeComplaint(bytes calldata p) internal pure returns (Complaint memory c) {
        bytes calldata body = _body(p, KIND_COMPLAINT);
        c = abi.decode(body, (Complaint));
        _canonical(abi.encode(c), body);
    }

    /// @notice Decodes a key announcement (kind 42).
    function decodeKeyAnnouncement(bytes calldata p) internal pure returns (KeyAnnouncement memory k) {
        bytes calldata body = _body(p, KIND_KEY);
        k = abi.decode(body, (KeyAnnouncement));
        _canonical(abi.encode(k), body);
    }

    /// @notice Decodes a vote (kind 38).
    function decodeVote(bytes calldata p) internal pure returns (Vote memory v) {
        bytes calldata body = _body(p, KIND_VOTE);
        v = abi.decode(body, (Vote));
        _canonical(abi.encode(v), body);
    }

    /// @notice Decodes a coin reveal (kind 36).
    function decodeCoinReveal(bytes calldata p) internal pure returns (CoinReveal memory r) {
        bytes calldata body = _body(p, KIND_COIN_REVEAL);
        r = abi.decode(body, (CoinReveal));
        _canonical(abi.encode(r), body);
    }

    /// @notice The slot of a dealing, proposal or vote (refuses the other kinds, and
    /// agreement messages of an unknown instance or step, which no node accepts).
    function slotOf(bytes calldata p) internal pure returns (Slot memory s) {
        uint8 kind = p.length == 0 ? 0 : uint8(p[0]);
        s.kind = kind;
        if (kind == KIND_DEALING) {
            Dealing memory d = decodeDealing(p);
            (s.sessionTimestamp, s.sessionHash, s.author) = (d.sessionTimestamp, d.sessionHash, d.dealer);
        } else if (kind == KIND_PROPOSAL) {
            bytes calldata body = _body(p, KIND_PROPOSAL);
            Proposal memory m = abi.decode(body, (Proposal));
            _canonical(abi.encode(m), body);
            if (m.instance > 2) revert NonCanonicalEncoding();
            (s.sessionTimestamp, s.sessionHash, s.author) = (m.sessionTimestamp, m.sessionHash, m.proposer);
            (s.instance, s.round) = (m.instance, m.round);
        } else if (kind == KIND_VOTE) {
            Vote memory m = decodeVote(p);
            if (m.instance > 2 || (m.step != 1 && m.step != 2)) revert NonCanonicalEncoding();
            (s.sessionTimestamp, s.sessionHash, s.author) = (m.sessionTimestamp, m.sessionHash, m.voter);
            (s.instance, s.round, s.step) = (m.instance, m.round, m.step);
        } else {
            revert NotOnceKind(kind);
        }
    }
}
