// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

/// @notice VSS checks on BLS12-381 G2 with the EIP-2537 precompiles (Prague). Points are
/// 256-byte EIP-2537 encodings, as in `kms_crypto::G2Point::to_eip2537`.
library BLS12381 {
    /// @dev The group order r.
    uint256 internal constant R = 0x73eda753299d7d483339d80809a1d80553bda402fffe5bfeffffffff00000001;

    /// @dev EIP-2537 BLS12_G2MSM: checks every input point is on the curve and in the
    /// prime-order subgroup (BLS12_G2ADD does not check the subgroup).
    uint256 private constant G2_MSM = 0x0e;

    uint256 private constant POINT = 256;
    uint256 private constant PAIR = 288;

    // The G2 generator in EIP-2537 form: x.c0, x.c1, y.c0, y.c1, each 16 zero bytes and
    // a 48-byte big-endian value (split here into a 16-byte and a 32-byte part).
    uint256 private constant G2_X0_HI = 0x00000000000000000000000000000000024aa2b2f08f0a91260805272dc51051;
    uint256 private constant G2_X0_LO = 0xc6e47ad4fa403b02b4510b647ae3d1770bac0326a805bbefd48056c8c121bdb8;
    uint256 private constant G2_X1_HI = 0x0000000000000000000000000000000013e02b6052719f607dacd3a088274f65;
    uint256 private constant G2_X1_LO = 0x596bd0d09920b61ab5da61bbdc7f5049334cf11213945d57e5ac7d055d042b7e;
    uint256 private constant G2_Y0_HI = 0x000000000000000000000000000000000ce5d527727d6e118cc9cdc6da2e351a;
    uint256 private constant G2_Y0_LO = 0xadfd9baa8cbdd3a76d429a695160d12c923ac9cc3baca289e193548608b82801;
    uint256 private constant G2_Y1_HI = 0x000000000000000000000000000000000606c4a02ea734cc32acd2b02bc28b99;
    uint256 private constant G2_Y1_LO = 0xcb3e287e85a763af267492ab572e99ab3f370d275cec1da1aaa9075ff05f79be;

    /// @notice A commitment point is the identity, off the curve, outside G2 or not a
    /// reduced field encoding.
    error InvalidCommitmentPoint();

    function _rejectIdentities(bytes memory points) private pure {
        uint256 n = points.length / POINT;
        for (uint256 i = 0; i < n; i++) {
            uint256 any;
            assembly ("memory-safe") {
                let q := add(add(points, 0x20), mul(i, POINT))
                for { let k := 0 } lt(k, POINT) { k := add(k, 0x20) } { any := or(any, mload(add(q, k))) }
            }
            if (any == 0) revert InvalidCommitmentPoint();
        }
    }

    /// @dev Runs G2MSM over `input` (pairs of point ‖ scalar) and returns whether the
    /// result is the identity. Reverts if the precompile refuses a point.
    function _msmIsIdentity(bytes memory input) private view returns (bool) {
        bytes memory out = new bytes(POINT);
        bool ok;
        uint256 any;
        assembly ("memory-safe") {
            ok := staticcall(gas(), G2_MSM, add(input, 0x20), mload(input), add(out, 0x20), POINT)
            let o := add(out, 0x20)
            for { let k := 0 } lt(k, POINT) { k := add(k, 0x20) } { any := or(any, mload(add(o, k))) }
        }
        if (!ok) revert InvalidCommitmentPoint();
        return any == 0;
    }

    /// @dev `points` interleaved with `scalars[i]` as G2MSM input, plus room for `extra`
    /// more pairs at the end.
    function _msmInput(bytes memory points, uint256 extra) private pure returns (bytes memory input, uint256 n) {
        n = points.length / POINT;
        input = new bytes((n + extra) * PAIR);
        for (uint256 i = 0; i < n; i++) {
            assembly ("memory-safe") {
                mcopy(add(add(input, 0x20), mul(i, PAIR)), add(add(points, 0x20), mul(i, POINT)), POINT)
            }
        }
    }

    /// @dev Gas handed to G2MSM for one pair: EIP-2537 prices it at 22,500; the rest is
    /// headroom for a repricing.
    uint256 private constant ONE_PAIR_GAS = 60_000;

    /// @notice `index` is past the last point.
    error PointIndexOutOfRange();
    /// @notice Not enough gas left to give the precompile its full allowance.
    error InsufficientGasForCheck();

    /// @notice Whether G2MSM accepts point `index` of `points` (the identity included).
    /// A failing precompile call consumes the gas it was given, so a failure could also
    /// mean a starved call: the check refuses to run unless the call gets its whole
    /// allowance (EIP-150 forwards at most 63/64 of what is left), so `false` means the
    /// precompile refused the point itself.
    function pointIsValid(bytes memory points, uint256 index) internal view returns (bool ok) {
        if (index >= points.length / POINT) revert PointIndexOutOfRange();
        bytes memory input = new bytes(PAIR);
        bytes memory out = new bytes(POINT);
        assembly ("memory-safe") {
            mcopy(add(input, 0x20), add(add(points, 0x20), mul(index, POINT)), POINT)
            mstore(add(add(input, 0x20), POINT), 1)
        }
        if (gasleft() < (ONE_PAIR_GAS * 64) / 63 + 10_000) revert InsufficientGasForCheck();
        assembly ("memory-safe") {
            ok := staticcall(ONE_PAIR_GAS, G2_MSM, add(input, 0x20), PAIR, add(out, 0x20), POINT)
        }
    }

    /// @notice Strict point checks of `Commitment` decoding: every point a reduced
    /// encoding, on the curve, in the prime-order subgroup and not the identity.
    function validatePoints(bytes memory points) internal view {
        _rejectIdentities(points);
        (bytes memory input, uint256 n) = _msmInput(points, 0);
        for (uint256 i = 0; i < n; i++) {
            assembly ("memory-safe") {
                mstore(add(add(input, 0x20), add(mul(i, PAIR), POINT)), 1)
            }
        }
        _msmIsIdentity(input);
    }

    /// @dev The scalars `x^0 … x^(n−1)` beside the first `n` points of an MSM input.
    function _writePowers(bytes memory input, uint256 n, uint256 x) private pure {
        uint256 power = 1;
        for (uint256 i = 0; i < n; i++) {
            assembly ("memory-safe") {
                mstore(add(add(input, 0x20), add(mul(i, PAIR), POINT)), power)
            }
            power = mulmod(power, x, R);
        }
    }

    /// @dev The G2 generator with `scalar` as pair `n` of an MSM input.
    function _writeGenerator(bytes memory input, uint256 n, uint256 scalar) private pure {
        assembly ("memory-safe") {
            let p := add(add(input, 0x20), mul(n, PAIR))
            mstore(p, G2_X0_HI)
            mstore(add(p, 0x20), G2_X0_LO)
            mstore(add(p, 0x40), G2_X1_HI)
            mstore(add(p, 0x60), G2_X1_LO)
            mstore(add(p, 0x80), G2_Y0_HI)
            mstore(add(p, 0xa0), G2_Y0_LO)
            mstore(add(p, 0xc0), G2_Y1_HI)
            mstore(add(p, 0xe0), G2_Y1_LO)
            mstore(add(p, POINT), scalar)
        }
    }

    /// @notice Feldman share check `share·G2 == Σ x^k·C_k`, as one MSM:
    /// `Σ x^k·C_k + (r − share)·G2 == O`. Also validates every point (see
    /// `validatePoints`), so a commitment the Rust decoder refuses is refused here.
    function feldmanShareIsValid(bytes memory points, uint256 x, uint256 share) internal view returns (bool) {
        _rejectIdentities(points);
        (bytes memory input, uint256 n) = _msmInput(points, 1);
        _writePowers(input, n, x);
        _writeGenerator(input, n, (R - share) % R);
        return _msmIsIdentity(input);
    }

    /// @notice Pedersen share check `value·G2 + blinding·H2 == Σ x^k·C_k`, as one MSM:
    /// `Σ x^k·C_k + (r − value)·G2 + (r − blinding)·H2 == O`. Validates every point
    /// (`h2` too: the precompile checks it is in G2) as `feldmanShareIsValid` does.
    function pedersenShareIsValid(bytes memory points, uint256 x, uint256 value, uint256 blinding, bytes memory h2)
        internal
        view
        returns (bool)
    {
        if (h2.length != POINT) revert InvalidCommitmentPoint();
        _rejectIdentities(points);
        _rejectIdentities(h2);
        (bytes memory input, uint256 n) = _msmInput(points, 2);
        _writePowers(input, n, x);
        _writeGenerator(input, n, (R - value) % R);
        uint256 negBlinding = (R - blinding) % R;
        assembly ("memory-safe") {
            let q := add(add(input, 0x20), mul(add(n, 1), PAIR))
            mcopy(q, add(h2, 0x20), POINT)
            mstore(add(q, POINT), negBlinding)
        }
        return _msmIsIdentity(input);
    }

    /// @notice Whether `Σ scalars[i]·points[i] == O`, as one MSM; every point must be a
    /// valid G2 point other than the identity (see `validatePoints`), whatever its scalar.
    function combinationIsIdentity(bytes memory points, uint256[] memory scalars) internal view returns (bool) {
        _rejectIdentities(points);
        (bytes memory input, uint256 n) = _msmInput(points, 0);
        require(scalars.length == n, "scalar count");
        for (uint256 i = 0; i < n; i++) {
            uint256 k = scalars[i];
            assembly ("memory-safe") {
                mstore(add(add(input, 0x20), add(mul(i, PAIR), POINT)), k)
            }
        }
        return _msmIsIdentity(input);
    }
}
