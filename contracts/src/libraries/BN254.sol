// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

import {G2Point} from "../interfaces/IEigenLayer.sol";

/// @notice BLS signatures on BN254 in EigenLayer's convention (signature in G1, key in
/// G2, message hashed to G1 by try-and-increment), checked with the EIP-196/197
/// precompiles. Mirrors `kms_crypto::signer::bn254` bit for bit.
library BN254 {
    /// @dev The base field modulus p.
    uint256 internal constant P = 21888242871839275222246405745257275088696311157297823662689037894645226208583;
    /// @dev (p + 1) / 4: p ≡ 3 (mod 4), so β^((p+1)/4) is a square root of a square β.
    uint256 internal constant SQRT_EXPONENT = 0x0c19139cb84c680a6e14116da060561765e05aa45a1c72a34f082305b61f3f52;

    // −G2 in EIP-197 order (imaginary part first).
    uint256 private constant NEG_G2_X1 = 11559732032986387107991004021392285783925812861821192530917403151452391805634;
    uint256 private constant NEG_G2_X0 = 10857046999023057135944570762232829481370756359578518086990519993285655852781;
    uint256 private constant NEG_G2_Y1 = 17805874995975841540914202342111839520379459829704422454583296818431106115052;
    uint256 private constant NEG_G2_Y0 = 13392588948715843804641432497768002650278120570034223513918757245338268106653;

    /// @dev `base^exponent mod P` through the modexp precompile (EIP-198).
    function _expModP(uint256 base, uint256 exponent) private view returns (uint256 result) {
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 0x20)
            mstore(add(m, 0x20), 0x20)
            mstore(add(m, 0x40), 0x20)
            mstore(add(m, 0x60), base)
            mstore(add(m, 0x80), exponent)
            mstore(add(m, 0xa0), P)
            ok := staticcall(gas(), 0x05, m, 0xc0, m, 0x20)
            result := mload(m)
        }
        require(ok, "modexp failed");
    }

    /// @notice `hashToG1` of EigenLayer's BN254 library: `x = h mod p`, incremented
    /// until `x³ + 3` is a square, with `y = (x³ + 3)^((p+1)/4)`.
    function hashToG1(bytes32 h) internal view returns (uint256 x, uint256 y) {
        x = uint256(h) % P;
        while (true) {
            uint256 beta = addmod(mulmod(mulmod(x, x, P), x, P), 3, P);
            y = _expModP(beta, SQRT_EXPONENT);
            if (mulmod(y, y, P) == beta) {
                return (x, y);
            }
            x = addmod(x, 1, P);
        }
    }

    /// @notice Whether `(sigX, sigY)` is a valid signature of `msgHash` under `pk`:
    /// `e(σ, −G2) · e(H(m), pk) == 1`. The identity signature, points off the curve and
    /// coordinates `≥ p` are refused, as the Rust decoder refuses them.
    function verify(bytes32 msgHash, uint256 sigX, uint256 sigY, G2Point memory pk) internal view returns (bool) {
        if (sigX == 0 && sigY == 0) {
            return false;
        }
        (uint256 hx, uint256 hy) = hashToG1(msgHash);
        uint256[12] memory input = [
            sigX,
            sigY,
            NEG_G2_X1,
            NEG_G2_X0,
            NEG_G2_Y1,
            NEG_G2_Y0,
            hx,
            hy,
            pk.X[0],
            pk.X[1],
            pk.Y[0],
            pk.Y[1]
        ];
        uint256[1] memory out;
        bool ok;
        assembly ("memory-safe") {
            ok := staticcall(gas(), 0x08, input, 0x180, out, 0x20)
        }
        // A failing call means an invalid point (off the curve, coordinate ≥ p).
        return ok && out[0] == 1;
    }
}
