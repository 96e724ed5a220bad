// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

/// @notice Strict decoding of the protocol's signed payloads, `kind ‖ abi.encode(struct)`
/// (see `kms_protocol::messages`). Only the canonical encoding is accepted — the exact
/// bytes the Rust encoder produces — so one payload has one hash, as in
/// `Payload::decode`, which re-encodes and compares.
library KmsMessages {
    uint8 internal constant KIND_COMMITMENT = 1;
    uint8 internal constant KIND_SHARE = 2;

    /// @dev `kms_protocol::messages::MAX_PAYLOAD_BYTES`.
    uint256 internal constant MAX_PAYLOAD_BYTES = 1 + 64 * 8 + 1024 * (256 + 64);
    /// @dev `Commitment::MAX_COEFFICIENTS`.
    uint256 internal constant MAX_COEFFICIENTS = 1024;
    /// @dev A G2 point in EIP-2537 form.
    uint256 internal constant G2_POINT_BYTES = 256;

    /// @dev Head of a commitment payload: kind byte, the tuple offset and 5 head words.
    uint256 private constant COMMITMENT_ARRAY = 1 + 32 + 5 * 32;
    /// @dev A share payload: kind byte and 7 static words.
    uint256 private constant SHARE_BYTES = 1 + 7 * 32;

    /// @notice A decoded `DealerCommitment`, its points laid end to end in memory.
    struct Commitment {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address dealer;
        uint8 phase;
        uint256 count;
        bytes points;
    }

    /// @notice A decoded `DealerShare`.
    struct Share {
        uint64 sessionTimestamp;
        bytes32 sessionHash;
        address dealer;
        address player;
        bytes32 commitmentHash;
        uint256 share;
        uint256 blinding;
    }

    error PayloadTooLarge();
    error WrongMessageKind(uint8 expected);
    error NonCanonicalEncoding();

    function _word(bytes calldata p, uint256 offset) private pure returns (uint256 w) {
        // Callers check `offset + 32 <= p.length` first.
        assembly ("memory-safe") {
            w := calldataload(add(p.offset, offset))
        }
    }

    function _kind(bytes calldata p, uint8 expected) private pure {
        if (p.length > MAX_PAYLOAD_BYTES) revert PayloadTooLarge();
        if (p.length == 0 || uint8(p[0]) != expected) revert WrongMessageKind(expected);
    }

    /// @notice Decodes a `DealerCommitment` payload (kind 1).
    function decodeCommitment(bytes calldata p) internal pure returns (Commitment memory c) {
        _kind(p, KIND_COMMITMENT);
        if (p.length < COMMITMENT_ARRAY + 32) revert NonCanonicalEncoding();
        uint256 ts = _word(p, 33);
        uint256 dealer = _word(p, 97);
        uint256 phase = _word(p, 129);
        uint256 n = _word(p, COMMITMENT_ARRAY);
        if (
            _word(p, 1) != 0x20 || ts > type(uint64).max || dealer > type(uint160).max || phase > type(uint8).max
                || _word(p, 161) != 5 * 32 || n == 0 || n > MAX_COEFFICIENTS
        ) revert NonCanonicalEncoding();
        // Array body: n offsets, then n elements of (length word, 256 bytes).
        uint256 body = COMMITMENT_ARRAY + 32;
        uint256 element = 32 + G2_POINT_BYTES;
        if (p.length != body + n * 32 + n * element) revert NonCanonicalEncoding();
        bytes memory points = new bytes(n * G2_POINT_BYTES);
        for (uint256 i = 0; i < n; i++) {
            uint256 rel = n * 32 + i * element;
            if (_word(p, body + i * 32) != rel || _word(p, body + rel) != G2_POINT_BYTES) {
                revert NonCanonicalEncoding();
            }
            uint256 src = body + rel + 32;
            assembly ("memory-safe") {
                calldatacopy(add(add(points, 0x20), mul(i, G2_POINT_BYTES)), add(p.offset, src), G2_POINT_BYTES)
            }
        }
        c.sessionTimestamp = uint64(ts);
        c.sessionHash = bytes32(_word(p, 65));
        c.dealer = address(uint160(dealer));
        c.phase = uint8(phase);
        c.count = n;
        c.points = points;
    }

    /// @notice Decodes a `DealerShare` payload (kind 2).
    function decodeShare(bytes calldata p) internal pure returns (Share memory s) {
        _kind(p, KIND_SHARE);
        if (p.length != SHARE_BYTES) revert NonCanonicalEncoding();
        uint256 ts = _word(p, 1);
        uint256 dealer = _word(p, 65);
        uint256 player = _word(p, 97);
        if (ts > type(uint64).max || dealer > type(uint160).max || player > type(uint160).max) {
            revert NonCanonicalEncoding();
        }
        s.sessionTimestamp = uint64(ts);
        s.sessionHash = bytes32(_word(p, 33));
        s.dealer = address(uint160(dealer));
        s.player = address(uint160(player));
        s.commitmentHash = bytes32(_word(p, 129));
        s.share = _word(p, 161);
        s.blinding = _word(p, 193);
    }

    /// @notice `Commitment::hash`: keccak256 of the points' EIP-2537 encodings.
    function commitmentHash(Commitment memory c) internal pure returns (bytes32) {
        return keccak256(c.points);
    }
}
