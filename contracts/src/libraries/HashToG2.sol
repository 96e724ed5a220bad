// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

/// @notice `hash_to_curve` onto BLS12-381 G2 (RFC 9380, suite
/// `BLS12381G2_XMD:SHA-256_SSWU_RO_`), as `kms_crypto::G2Point::hash_to_curve` (blst)
/// computes it: `expand_message_xmd` with the SHA-256 precompile, `hash_to_field`
/// reduced with the modexp precompile, and EIP-2537 `MAP_FP2_TO_G2` (which maps and
/// clears the cofactor; clearing is linear, so mapping both field elements and adding
/// the images with `G2ADD` is `clear_cofactor(map(u0) + map(u1))`).
library HashToG2 {
    uint256 private constant G2_ADD = 0x0d;
    uint256 private constant MAP_FP2_TO_G2 = 0x11;
    uint256 private constant MODEXP = 0x05;

    // The field modulus p in 64 bytes (16 zero bytes and 48 bytes big-endian).
    uint256 private constant P_HI = 0x000000000000000000000000000000001a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 private constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;

    /// @notice A precompile call failed.
    error HashToCurveFailed();

    /// @notice `hash_to_G2(message)` under `dst` (at most 255 bytes), as a 256-byte
    /// EIP-2537 G2 point.
    function hash(bytes memory message, bytes memory dst) internal view returns (bytes memory point) {
        bytes memory uniform = expandMessageXmd(message, dst, 256);
        bytes memory u = new bytes(256);
        for (uint256 i = 0; i < 4; i++) {
            _reduce(uniform, i * 64, u, i * 64);
        }
        bytes memory both = new bytes(512);
        bool ok = true;
        assembly ("memory-safe") {
            let src := add(u, 0x20)
            let dst_ := add(both, 0x20)
            ok := and(ok, staticcall(gas(), MAP_FP2_TO_G2, src, 128, dst_, 256))
            ok := and(ok, staticcall(gas(), MAP_FP2_TO_G2, add(src, 128), 128, add(dst_, 256), 256))
        }
        point = new bytes(256);
        assembly ("memory-safe") {
            ok := and(ok, staticcall(gas(), G2_ADD, add(both, 0x20), 512, add(point, 0x20), 256))
        }
        if (!ok) revert HashToCurveFailed();
    }

    /// @notice RFC 9380 `expand_message_xmd` with SHA-256 (`len` ≤ 8,160, `dst` ≤ 255 bytes).
    function expandMessageXmd(bytes memory message, bytes memory dst, uint256 len)
        internal
        pure
        returns (bytes memory out)
    {
        require(dst.length <= 255 && len <= 255 * 32, "xmd lengths");
        bytes memory dstPrime = abi.encodePacked(dst, uint8(dst.length));
        uint256 ell = (len + 31) / 32;
        bytes32 b0 = sha256(abi.encodePacked(new bytes(64), message, uint16(len), uint8(0), dstPrime));
        bytes32 bi = sha256(abi.encodePacked(b0, uint8(1), dstPrime));
        out = new bytes(ell * 32);
        for (uint256 i = 1; i <= ell; i++) {
            if (i > 1) bi = sha256(abi.encodePacked(b0 ^ bi, uint8(i), dstPrime));
            assembly ("memory-safe") {
                mstore(add(add(out, 0x20), mul(sub(i, 1), 0x20)), bi)
            }
        }
        assembly ("memory-safe") {
            mstore(out, len)
        }
    }

    /// @dev `src[from..from+64] mod p` into `dst[offset..offset+64]` (an EIP-2537 Fp element),
    /// with modexp: base 64 bytes, exponent 1, modulus p in 64 bytes.
    function _reduce(bytes memory src, uint256 from, bytes memory dst, uint256 offset) private view {
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 64)
            mstore(add(m, 0x20), 1)
            mstore(add(m, 0x40), 64)
            mcopy(add(m, 0x60), add(add(src, 0x20), from), 64)
            mstore8(add(m, 0xa0), 1)
            mstore(add(m, 0xa1), P_HI)
            mstore(add(m, 0xc1), P_LO)
            ok := staticcall(gas(), MODEXP, m, 0xe1, add(add(dst, 0x20), offset), 64)
        }
        if (!ok) revert HashToCurveFailed();
    }
}
