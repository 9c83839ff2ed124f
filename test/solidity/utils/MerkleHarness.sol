// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MerkleLib} from "../../../contracts/libraries/MerkleLib.sol";

/// @title MerkleHarness
/// @notice Exposes MerkleLib (whose hashing reads calldata) to tests, and replays the check
/// ChallengeManager makes: leaf -> fragment tree root -> fragment root -> Magu root.
contract MerkleHarness {
    function hashLeaf(bytes calldata chunk) external view returns (bytes32) {
        return MerkleLib.hashLeaf(chunk);
    }

    function hashNode(bytes32 left, bytes32 right) external view returns (bytes32) {
        return MerkleLib.hashNode(left, right);
    }

    function hashFragmentRoot(uint64 size, bytes32 treeRoot) external view returns (bytes32) {
        return MerkleLib.hashFragmentRoot(size, treeRoot);
    }

    function processProof(bytes32 node, uint256 index, bytes32[] calldata proof) external view returns (bytes32) {
        return MerkleLib.processProof(node, index, proof);
    }

    function leafCount(uint256 size) external pure returns (uint256) {
        return MerkleLib.leafCount(size);
    }

    function depthFor(uint256 count) external pure returns (uint256) {
        return MerkleLib.depthFor(count);
    }

    /// @notice Whether `leaf` at `leafIndex` of fragment `fragment` (of `size` bytes) is in the
    /// Magu tree `root`, with ChallengeManager's path-length rules.
    function verify(
        bytes calldata leaf,
        uint64 size,
        uint256 leafIndex,
        bytes32[] calldata leafProof,
        uint256 fragment,
        bytes32[] calldata fragmentProof,
        uint256 fragmentCount,
        bytes32 root
    ) external view returns (bool) {
        if (leaf.length != MerkleLib.LEAF_SIZE || size > MerkleLib.MAX_FRAGMENT_SIZE) return false;
        uint256 leaves = MerkleLib.leafCount(size);
        if (leafIndex >= leaves || leafProof.length != MerkleLib.depthFor(leaves)) return false;
        if (fragment >= fragmentCount || fragmentProof.length != MerkleLib.depthFor(fragmentCount)) return false;
        bytes32 treeRoot = MerkleLib.processProof(MerkleLib.hashLeaf(leaf), leafIndex, leafProof);
        bytes32 fragmentRoot = MerkleLib.hashFragmentRoot(size, treeRoot);
        return MerkleLib.processProof(fragmentRoot, fragment, fragmentProof) == root;
    }
}
