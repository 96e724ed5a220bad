// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

/// @notice An EigenLayer operator set: the AVS address and an identifier.
struct OperatorSet {
    address avs;
    uint32 id;
}

/// @notice A BN254 G1 point, `X ‖ Y` (EigenLayer's `BN254.G1Point`).
struct G1Point {
    uint256 X;
    uint256 Y;
}

/// @notice A BN254 G2 point in EIP-197 order: `X[0]`, `Y[0]` are the imaginary parts
/// (EigenLayer's `BN254.G2Point`).
struct G2Point {
    uint256[2] X;
    uint256[2] Y;
}

/// @notice A strategy (an opaque address for this project).
interface IStrategy {}

/// @notice The callback AllocationManager makes when an operator (de)registers for the
/// AVS's operator sets. Same signatures as EigenLayer's `IAVSRegistrar`.
interface IAVSRegistrar {
    function registerOperator(address operator, address avs, uint32[] calldata operatorSetIds, bytes calldata data)
        external;

    function deregisterOperator(address operator, address avs, uint32[] calldata operatorSetIds) external;

    function supportsAVS(address avs) external view returns (bool);
}

/// @notice The subset of EigenLayer's `IAllocationManager` this project uses, with the
/// same signatures (hence the same selectors).
interface IAllocationManager {
    struct SlashingParams {
        address operator;
        uint32 operatorSetId;
        IStrategy[] strategies;
        uint256[] wadsToSlash;
        string description;
    }

    struct RegisterParams {
        address avs;
        uint32[] operatorSetIds;
        bytes data;
    }

    struct DeregisterParams {
        address operator;
        address avs;
        uint32[] operatorSetIds;
    }

    struct CreateSetParamsV2 {
        uint32 operatorSetId;
        IStrategy[] strategies;
        address slasher;
    }

    function slashOperator(address avs, SlashingParams calldata params)
        external
        returns (uint256 slashId, uint256[] memory shares);

    function registerForOperatorSets(address operator, RegisterParams calldata params) external;

    function deregisterFromOperatorSets(DeregisterParams calldata params) external;

    function setAVSRegistrar(address avs, IAVSRegistrar registrar) external;

    function createOperatorSets(address avs, CreateSetParamsV2[] calldata params) external;

    function isMemberOfOperatorSet(address operator, OperatorSet memory operatorSet) external view returns (bool);

    function getMembers(OperatorSet memory operatorSet) external view returns (address[] memory operators);

    function getAVSRegistrar(address avs) external view returns (IAVSRegistrar);

    function getStrategiesInOperatorSet(OperatorSet memory operatorSet)
        external
        view
        returns (IStrategy[] memory strategies);
}

/// @notice The subset of EigenLayer's `IKeyRegistrar` this project uses, with the same
/// signatures (hence the same selectors).
interface IKeyRegistrar {
    enum CurveType {
        NONE,
        ECDSA,
        BN254
    }

    function configureOperatorSet(OperatorSet memory operatorSet, CurveType curveType) external;

    function registerKey(address operator, OperatorSet memory operatorSet, bytes calldata pubkey, bytes calldata signature)
        external;

    function isRegistered(OperatorSet memory operatorSet, address operator) external view returns (bool);

    function getOperatorSetCurveType(OperatorSet memory operatorSet) external view returns (CurveType);

    function getBN254Key(OperatorSet memory operatorSet, address operator)
        external
        view
        returns (G1Point memory g1Point, G2Point memory g2Point);

    function getECDSAAddress(OperatorSet memory operatorSet, address operator) external view returns (address);
}
