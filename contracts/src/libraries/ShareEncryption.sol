// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

/// @notice The on-chain side of `kms_crypto::vss::encryption`: the DLEQ proof that a
/// revealed key `K` is `sk·E` for the `sk` behind `pk`, and the pads that open one
/// share, with keccak256 and the EIP-2537 G1MSM precompile. Points are 128-byte
/// EIP-2537 G1 encodings.
library ShareEncryption {
    /// @dev The BLS12-381 group order r.
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;
    /// @dev `2^256 mod r` (`TWO_POW_256_MOD_R`).
    uint256 private constant R256 = 0x1824b159acc5056f998c4fefecbc4ff55884b7fa0003480200000001fffffffe;
    uint256 private constant G1_MSM = 0x0c;
    uint256 private constant G1_POINT = 128;

    // The G1 generator in EIP-2537 form (x, y: 16 zero bytes and 48 bytes each).
    uint256 private constant G1_X_HI = 0x0000000000000000000000000000000017f1d3a73197d7942695638c4fa9ac0f;
    uint256 private constant G1_X_LO = 0xc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb;
    uint256 private constant G1_Y_HI = 0x0000000000000000000000000000000008b3f481e3aaa0f1a09e30ed741d8ae4;
    uint256 private constant G1_Y_LO = 0xfcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1;

    bytes private constant PAD_DOMAIN = "EIGENKMS-V2-SHARE-PAD";
    bytes private constant DLEQ_DOMAIN = "EIGENKMS-V2-DLEQ";

    /// @notice A G1 point that is not 128 bytes, is the identity where a key is
    /// expected, or that G1MSM refuses (off the curve, outside G1, not reduced).
    error InvalidG1Point();
    /// @notice The DLEQ response is not reduced (`z ≥ r`).
    error NonCanonicalResponse();

    /// @notice What a complaint's proof is about.
    struct Statement {
        bytes pk;
        bytes ephemeral;
        bytes sharedKey;
        bytes32 sessionHash;
        address dealer;
        address player;
    }

    function _nonIdentity(bytes memory p) private pure {
        if (p.length != G1_POINT) revert InvalidG1Point();
        uint256 any;
        assembly ("memory-safe") {
            let q := add(p, 0x20)
            any := or(or(mload(q), mload(add(q, 0x20))), or(mload(add(q, 0x40)), mload(add(q, 0x60))))
        }
        if (any == 0) revert InvalidG1Point();
    }

    /// @dev `a·P + b·Q` with G1MSM (which checks both points); `p` null means G1.
    function _msm2(bytes memory p, uint256 a, bytes memory q, uint256 b) private view returns (bytes memory out) {
        bytes memory input = new bytes(2 * (G1_POINT + 32));
        out = new bytes(G1_POINT);
        bool generator = p.length == 0;
        bool ok;
        assembly ("memory-safe") {
            let i := add(input, 0x20)
            switch generator
            case 1 {
                mstore(i, G1_X_HI)
                mstore(add(i, 0x20), G1_X_LO)
                mstore(add(i, 0x40), G1_Y_HI)
                mstore(add(i, 0x60), G1_Y_LO)
            }
            default { mcopy(i, add(p, 0x20), G1_POINT) }
            mstore(add(i, G1_POINT), a)
            mcopy(add(i, 0xa0), add(q, 0x20), G1_POINT)
            mstore(add(i, 0x120), b)
            ok := staticcall(gas(), G1_MSM, i, 0x140, add(out, 0x20), G1_POINT)
        }
        if (!ok) revert InvalidG1Point();
    }

    /// @notice Whether `(challenge, response)` proves `log_G1 pk = log_E K` in the
    /// statement's context: `A1 = z·G1 + c·pk`, `A2 = z·E + c·K`, and the challenge is
    /// `keccak256("EIGENKMS-V2-DLEQ" ‖ pk ‖ E ‖ K ‖ A1 ‖ A2 ‖ session ‖ dealer ‖ player)`.
    /// The raw challenge serves as `c`: G1MSM multiplies subgroup points by any
    /// 256-bit scalar, and `c·P = (c mod r)·P`. Reverts on an invalid point.
    function dleqHolds(Statement memory s, bytes32 challenge, bytes32 response) internal view returns (bool) {
        _nonIdentity(s.pk);
        _nonIdentity(s.ephemeral);
        _nonIdentity(s.sharedKey);
        uint256 z = uint256(response);
        if (z >= R) revert NonCanonicalResponse();
        bytes memory a1 = _msm2("", z, s.pk, uint256(challenge));
        bytes memory a2 = _msm2(s.ephemeral, z, s.sharedKey, uint256(challenge));
        bytes memory points = bytes.concat(s.pk, s.ephemeral, s.sharedKey, a1, a2);
        return keccak256(bytes.concat(DLEQ_DOMAIN, points, _context(s))) == challenge;
    }

    /// @notice Whether G1MSM accepts `p` as a G1 point other than the identity (the
    /// strict decoding of `EphemeralKey`). Reverts if it does not.
    function checkKey(bytes memory p) internal view {
        _nonIdentity(p);
        _msm2("", 0, p, 1);
    }

    /// @notice `pad_i = (H_{i,0}·2^256 + H_{i,1}) mod r` with
    /// `H_{i,h} = keccak256("EIGENKMS-V2-SHARE-PAD" ‖ i ‖ h ‖ K ‖ session ‖ dealer ‖ player)`.
    function pad(Statement memory s, uint8 i) internal pure returns (uint256) {
        bytes memory tail = bytes.concat(s.sharedKey, _context(s));
        uint256 hi = uint256(keccak256(bytes.concat(PAD_DOMAIN, bytes1(i), bytes1(0), tail)));
        uint256 lo = uint256(keccak256(bytes.concat(PAD_DOMAIN, bytes1(i), bytes1(uint8(1)), tail)));
        return addmod(mulmod(hi, R256, R), lo, R);
    }

    /// @dev `session (32) ‖ dealer (20) ‖ player (20)`, the tail of every hash here.
    function _context(Statement memory s) private pure returns (bytes memory) {
        return abi.encodePacked(s.sessionHash, s.dealer, s.player);
    }
}
