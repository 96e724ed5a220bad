// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

import {IKeyRegistrar, OperatorSet, G1Point, G2Point} from "../src/interfaces/IEigenLayer.sol";

/// @title MockKeyRegistrar — TEST ONLY, never deploy on a real network.
/// @notice Stands in for EigenLayer's KeyRegistrar with exactly the functions EigenKMS
/// calls, under the same signatures. Keys are stored in EigenLayer's formats (BN254:
/// `abi.encode(g1.X, g1.Y, g2.X[0], g2.X[1], g2.Y[0], g2.Y[1])`, 192 bytes; ECDSA: the
/// 20-byte address). Simplification: the proof-of-possession signature of
/// `registerKey` is not checked, and keys need not be globally unique.
contract MockKeyRegistrar is IKeyRegistrar {
    mapping(bytes32 key => CurveType) private _curves;
    mapping(bytes32 key => mapping(address operator => bytes)) private _keys;

    error InvalidPermissions();
    error InvalidCurveType();
    error ConfigurationAlreadySet();
    error OperatorSetNotConfigured();
    error OperatorAlreadyRegistered();
    error InvalidKeyFormat();

    event KeyRegistered(OperatorSet operatorSet, address indexed operator, CurveType curveType, bytes pubkey);

    function _key(OperatorSet memory os) private pure returns (bytes32) {
        return bytes32(abi.encodePacked(os.avs, uint96(os.id)));
    }

    function configureOperatorSet(OperatorSet memory operatorSet, CurveType curveType) external {
        if (msg.sender != operatorSet.avs) revert InvalidPermissions();
        if (curveType == CurveType.NONE) revert InvalidCurveType();
        bytes32 k = _key(operatorSet);
        if (_curves[k] != CurveType.NONE) revert ConfigurationAlreadySet();
        _curves[k] = curveType;
    }

    function registerKey(address operator, OperatorSet memory operatorSet, bytes calldata pubkey, bytes calldata)
        external
    {
        if (msg.sender != operator) revert InvalidPermissions();
        bytes32 k = _key(operatorSet);
        CurveType curve = _curves[k];
        if (curve == CurveType.NONE) revert OperatorSetNotConfigured();
        if (_keys[k][operator].length != 0) revert OperatorAlreadyRegistered();
        if (curve == CurveType.ECDSA) {
            if (pubkey.length != 20 || bytes20(pubkey) == bytes20(0)) revert InvalidKeyFormat();
        } else {
            if (pubkey.length != 192) revert InvalidKeyFormat();
            (uint256 x, uint256 y) = abi.decode(pubkey[:64], (uint256, uint256));
            if (x == 0 && y == 0) revert InvalidKeyFormat();
        }
        _keys[k][operator] = pubkey;
        emit KeyRegistered(operatorSet, operator, curve, pubkey);
    }

    function isRegistered(OperatorSet memory operatorSet, address operator) external view returns (bool) {
        return _keys[_key(operatorSet)][operator].length != 0;
    }

    function getOperatorSetCurveType(OperatorSet memory operatorSet) external view returns (CurveType) {
        return _curves[_key(operatorSet)];
    }

    function getBN254Key(OperatorSet memory operatorSet, address operator)
        external
        view
        returns (G1Point memory g1Point, G2Point memory g2Point)
    {
        bytes32 k = _key(operatorSet);
        if (_curves[k] != CurveType.BN254) revert InvalidCurveType();
        bytes memory data = _keys[k][operator];
        if (data.length == 0) {
            return (g1Point, g2Point);
        }
        (uint256 g1X, uint256 g1Y, uint256[2] memory g2X, uint256[2] memory g2Y) =
            abi.decode(data, (uint256, uint256, uint256[2], uint256[2]));
        return (G1Point(g1X, g1Y), G2Point(g2X, g2Y));
    }

    function getECDSAAddress(OperatorSet memory operatorSet, address operator) external view returns (address) {
        bytes32 k = _key(operatorSet);
        if (_curves[k] != CurveType.ECDSA) revert InvalidCurveType();
        bytes memory data = _keys[k][operator];
        if (data.length == 0) {
            return address(0);
        }
        return address(bytes20(data));
    }
}
