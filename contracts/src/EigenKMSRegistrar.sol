// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

import {IAVSRegistrar, IKeyRegistrar, OperatorSet} from "./interfaces/IEigenLayer.sol";

/// @title EigenKMSRegistrar
/// @notice The AVS registrar of EigenKMS: EigenLayer's AllocationManager calls it when an
/// operator registers for the operator set, with the operator's socket URL (where its
/// node serves the protocol) as `abi.encode(string)` in `data`. Peers read sockets here,
/// members from the AllocationManager and keys from the KeyRegistrar.
contract EigenKMSRegistrar is IAVSRegistrar {
    /// @notice Longest socket URL accepted, in bytes.
    uint256 public constant MAX_SOCKET_BYTES = 256;

    /// @notice EigenLayer's AllocationManager, the only caller of the registration hooks.
    address public immutable allocationManager;
    /// @notice EigenLayer's KeyRegistrar: an operator must have registered its key first.
    IKeyRegistrar public immutable keyRegistrar;
    /// @notice The AVS this registrar serves.
    address public immutable avs;
    /// @notice The EigenKMS operator set.
    uint32 public immutable operatorSetId;

    mapping(address operator => string socket) private _sockets;

    event OperatorSocketUpdated(address indexed operator, string socket);
    event OperatorRegistered(address indexed operator, uint32 operatorSetId);
    event OperatorDeregistered(address indexed operator, uint32 operatorSetId);

    error OnlyAllocationManager();
    error WrongAVS(address avs);
    error UnknownOperatorSet(uint32 operatorSetId);
    error KeyNotRegistered(address operator);
    error InvalidSocket();
    error NotRegistered(address operator);

    constructor(address allocationManager_, IKeyRegistrar keyRegistrar_, address avs_, uint32 operatorSetId_) {
        allocationManager = allocationManager_;
        keyRegistrar = keyRegistrar_;
        avs = avs_;
        operatorSetId = operatorSetId_;
    }

    modifier onlyAllocationManager() {
        if (msg.sender != allocationManager) revert OnlyAllocationManager();
        _;
    }

    function _checkSets(address avs_, uint32[] calldata operatorSetIds) private view {
        if (avs_ != avs) revert WrongAVS(avs_);
        for (uint256 i = 0; i < operatorSetIds.length; i++) {
            if (operatorSetIds[i] != operatorSetId) revert UnknownOperatorSet(operatorSetIds[i]);
        }
    }

    function _setSocket(address operator, string memory socket) private {
        uint256 len = bytes(socket).length;
        if (len == 0 || len > MAX_SOCKET_BYTES) revert InvalidSocket();
        _sockets[operator] = socket;
        emit OperatorSocketUpdated(operator, socket);
    }

    /// @inheritdoc IAVSRegistrar
    function registerOperator(address operator, address avs_, uint32[] calldata operatorSetIds, bytes calldata data)
        external
        onlyAllocationManager
    {
        _checkSets(avs_, operatorSetIds);
        // Peers must be able to authenticate the operator's messages from its first
        // session on, so a member without a key is refused.
        if (!keyRegistrar.isRegistered(OperatorSet(avs, operatorSetId), operator)) revert KeyNotRegistered(operator);
        _setSocket(operator, abi.decode(data, (string)));
        emit OperatorRegistered(operator, operatorSetId);
    }

    /// @inheritdoc IAVSRegistrar
    function deregisterOperator(address operator, address avs_, uint32[] calldata operatorSetIds)
        external
        onlyAllocationManager
    {
        _checkSets(avs_, operatorSetIds);
        delete _sockets[operator];
        emit OperatorDeregistered(operator, operatorSetId);
    }

    /// @inheritdoc IAVSRegistrar
    function supportsAVS(address avs_) external view returns (bool) {
        return avs_ == avs;
    }

    /// @notice A registered operator moves its node to a new socket URL.
    function updateSocket(string calldata socket) external {
        if (bytes(_sockets[msg.sender]).length == 0) revert NotRegistered(msg.sender);
        _setSocket(msg.sender, socket);
    }

    /// @notice The socket URL of `operator` (empty if it is not registered).
    function getOperatorSocket(address operator) external view returns (string memory) {
        return _sockets[operator];
    }
}
