// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

import {IAllocationManager, IAVSRegistrar, IStrategy, OperatorSet} from "../src/interfaces/IEigenLayer.sol";

/// @title MockAllocationManager — TEST ONLY, never deploy on a real network.
/// @notice Stands in for EigenLayer's AllocationManager with exactly the functions
/// EigenKMS calls, under the same signatures. Simplifications: no stake or magnitudes
/// (a slash is only recorded), no PermissionController (an operator acts for itself, an
/// AVS for its sets, and a set's slasher may also deregister members, standing in for
/// the appointee an AVS would set up), no deallocation delay.
contract MockAllocationManager is IAllocationManager {
    struct SetState {
        bool exists;
        address slasher;
        IStrategy[] strategies;
        address[] members;
        mapping(address operator => uint256 indexPlusOne) index;
        mapping(address operator => bool) everMember;
    }

    mapping(bytes32 key => SetState) private _sets;
    mapping(address avs => IAVSRegistrar) private _registrars;

    /// @notice Slashes recorded (test inspection).
    uint256 public slashCount;
    /// @notice Slashes recorded per operator.
    mapping(address operator => uint256) public slashesOf;
    /// @notice Sum of the first strategy's wads slashed per operator.
    mapping(address operator => uint256) public wadSlashedOf;

    event OperatorSlashed(
        address operator, OperatorSet operatorSet, IStrategy[] strategies, uint256[] wadSlashed, string description
    );
    event OperatorAddedToOperatorSet(address indexed operator, OperatorSet operatorSet);
    event OperatorRemovedFromOperatorSet(address indexed operator, OperatorSet operatorSet);

    error InvalidCaller();
    error InvalidOperatorSet();
    error AlreadyMemberOfSet();
    error NotMemberOfSet();
    error OperatorNotSlashable();
    error InputArrayLengthMismatch();
    error InvalidAVSRegistrar();

    function _key(address avs, uint32 id) private pure returns (bytes32) {
        return bytes32(abi.encodePacked(avs, uint96(id)));
    }

    function _set(address avs, uint32 id) private view returns (SetState storage s) {
        s = _sets[_key(avs, id)];
        if (!s.exists) revert InvalidOperatorSet();
    }

    function createOperatorSets(address avs, CreateSetParamsV2[] calldata params) external {
        if (msg.sender != avs) revert InvalidCaller();
        for (uint256 i = 0; i < params.length; i++) {
            SetState storage s = _sets[_key(avs, params[i].operatorSetId)];
            if (s.exists) revert InvalidOperatorSet();
            s.exists = true;
            s.slasher = params[i].slasher;
            for (uint256 j = 0; j < params[i].strategies.length; j++) {
                s.strategies.push(params[i].strategies[j]);
            }
        }
    }

    function setAVSRegistrar(address avs, IAVSRegistrar registrar) external {
        if (msg.sender != avs) revert InvalidCaller();
        if (!registrar.supportsAVS(avs)) revert InvalidAVSRegistrar();
        _registrars[avs] = registrar;
    }

    function getAVSRegistrar(address avs) public view returns (IAVSRegistrar) {
        IAVSRegistrar r = _registrars[avs];
        return address(r) == address(0) ? IAVSRegistrar(avs) : r;
    }

    function registerForOperatorSets(address operator, RegisterParams calldata params) external {
        if (msg.sender != operator) revert InvalidCaller();
        for (uint256 i = 0; i < params.operatorSetIds.length; i++) {
            SetState storage s = _set(params.avs, params.operatorSetIds[i]);
            if (s.index[operator] != 0) revert AlreadyMemberOfSet();
            s.members.push(operator);
            s.index[operator] = s.members.length;
            s.everMember[operator] = true;
            emit OperatorAddedToOperatorSet(operator, OperatorSet(params.avs, params.operatorSetIds[i]));
        }
        getAVSRegistrar(params.avs).registerOperator(operator, params.avs, params.operatorSetIds, params.data);
    }

    function deregisterFromOperatorSets(DeregisterParams calldata params) external {
        for (uint256 i = 0; i < params.operatorSetIds.length; i++) {
            SetState storage s = _set(params.avs, params.operatorSetIds[i]);
            if (msg.sender != params.operator && msg.sender != params.avs && msg.sender != s.slasher) {
                revert InvalidCaller();
            }
            uint256 slot = s.index[params.operator];
            if (slot == 0) revert NotMemberOfSet();
            address last = s.members[s.members.length - 1];
            s.members[slot - 1] = last;
            s.index[last] = slot;
            s.members.pop();
            delete s.index[params.operator];
            emit OperatorRemovedFromOperatorSet(params.operator, OperatorSet(params.avs, params.operatorSetIds[i]));
        }
        getAVSRegistrar(params.avs).deregisterOperator(params.operator, params.avs, params.operatorSetIds);
    }

    function slashOperator(address avs, SlashingParams calldata params)
        external
        returns (uint256 slashId, uint256[] memory shares)
    {
        SetState storage s = _set(avs, params.operatorSetId);
        if (params.strategies.length != params.wadsToSlash.length) revert InputArrayLengthMismatch();
        if (!s.everMember[params.operator]) revert OperatorNotSlashable();
        if (msg.sender != s.slasher) revert InvalidCaller();
        slashId = ++slashCount;
        slashesOf[params.operator] += 1;
        if (params.wadsToSlash.length > 0) {
            wadSlashedOf[params.operator] += params.wadsToSlash[0];
        }
        shares = new uint256[](params.strategies.length);
        emit OperatorSlashed(
            params.operator,
            OperatorSet(avs, params.operatorSetId),
            params.strategies,
            params.wadsToSlash,
            params.description
        );
    }

    function isMemberOfOperatorSet(address operator, OperatorSet memory operatorSet) external view returns (bool) {
        return _sets[_key(operatorSet.avs, operatorSet.id)].index[operator] != 0;
    }

    function getMembers(OperatorSet memory operatorSet) external view returns (address[] memory operators) {
        return _set(operatorSet.avs, operatorSet.id).members;
    }

    function getStrategiesInOperatorSet(OperatorSet memory operatorSet)
        external
        view
        returns (IStrategy[] memory strategies)
    {
        return _set(operatorSet.avs, operatorSet.id).strategies;
    }
}
