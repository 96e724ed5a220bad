// SPDX-License-Identifier: MIT OR Apache-2.0
pragma solidity ^0.8.27;

import {IAllocationManager, OperatorSet} from "./interfaces/IEigenLayer.sol";

/// @title EigenKMSCommitmentRegistry
/// @notice After a session, each dealer records the hash of the phase-1 commitment it
/// dealt (`Commitment::hash`, keccak256 of the EIP-2537 points) and the Merkle root of
/// the acks it collected, once per epoch. The epoch is the session timestamp. A signed
/// commitment of the same dealer and session with another hash is then provable fraud
/// (`EigenKMSSlashing.proveRegistryInconsistency`).
contract EigenKMSCommitmentRegistry {
    /// @notice One dealer's record for one epoch.
    struct Submission {
        bytes32 commitmentHash;
        bytes32 ackMerkleRoot;
        uint64 blockNumber;
    }

    IAllocationManager public immutable allocationManager;
    address public immutable avs;
    uint32 public immutable operatorSetId;

    mapping(uint64 epoch => mapping(address operator => Submission)) private _submissions;

    event CommitmentSubmitted(
        uint64 indexed epoch, address indexed operator, bytes32 commitmentHash, bytes32 ackMerkleRoot
    );

    error NotMember(address operator);
    error AlreadySubmitted(uint64 epoch, address operator);
    error ZeroCommitmentHash();

    constructor(IAllocationManager allocationManager_, address avs_, uint32 operatorSetId_) {
        allocationManager = allocationManager_;
        avs = avs_;
        operatorSetId = operatorSetId_;
    }

    /// @notice Records the caller's commitment hash and ack root for `epoch`; members
    /// only, once per epoch (a second record would let a dealer pick its story later).
    function submitCommitment(uint64 epoch, bytes32 commitmentHash, bytes32 ackMerkleRoot) external {
        if (!allocationManager.isMemberOfOperatorSet(msg.sender, OperatorSet(avs, operatorSetId))) {
            revert NotMember(msg.sender);
        }
        if (commitmentHash == bytes32(0)) revert ZeroCommitmentHash();
        Submission storage s = _submissions[epoch][msg.sender];
        if (s.blockNumber != 0) revert AlreadySubmitted(epoch, msg.sender);
        s.commitmentHash = commitmentHash;
        s.ackMerkleRoot = ackMerkleRoot;
        s.blockNumber = uint64(block.number);
        emit CommitmentSubmitted(epoch, msg.sender, commitmentHash, ackMerkleRoot);
    }

    /// @notice The record of `operator` for `epoch` (all zero if none).
    function getCommitment(uint64 epoch, address operator)
        external
        view
        returns (bytes32 commitmentHash, bytes32 ackMerkleRoot, uint64 blockNumber)
    {
        Submission storage s = _submissions[epoch][operator];
        return (s.commitmentHash, s.ackMerkleRoot, s.blockNumber);
    }
}
