// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title MerkleLib
/// @notice The Merkle encoding shared with the agents (docs/ENCODING.md), with SHA-256 and
/// position-bound proofs: leaf = H(0x00 ‖ chunk[1024]), node = H(0x01 ‖ left ‖ right),
/// fragment root = H(0x02 ‖ uint64 size ‖ tree root). Empty positions are bytes32(0).
/// @dev OpenZeppelin's MerkleProof hashes sorted pairs, which does not bind a proof to a leaf
/// index; a storage challenge names the index, so the order here comes from the index bits.
library MerkleLib {
    /// @notice Bytes in one Merkle leaf of a fragment.
    uint256 internal constant LEAF_SIZE = 1024;
    /// @notice Maximum bytes in one fragment (1 MiB), so at most 1024 leaves (depth 10).
    uint256 internal constant MAX_FRAGMENT_SIZE = 1 << 20;

    /// @notice Number of leaves of a fragment of `size` bytes: max(1, ceil(size / 1024)).
    function leafCount(uint256 size) internal pure returns (uint256) {
        return size == 0 ? 1 : (size + LEAF_SIZE - 1) / LEAF_SIZE;
    }

    /// @notice Depth of a tree with `count` leaves: ceil(log2(count)), 0 for one leaf.
    function depthFor(uint256 count) internal pure returns (uint256 depth) {
        uint256 width = 1;
        while (width < count) {
            width <<= 1;
            ++depth;
        }
    }

    /// @notice Hash of a 1024-byte leaf chunk.
    function hashLeaf(bytes calldata chunk) internal view returns (bytes32 digest) {
        // sha256(0x00 ‖ chunk) through the 0x02 precompile, chunk copied once into memory.
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x00)
            calldatacopy(add(ptr, 1), chunk.offset, chunk.length)
            if iszero(staticcall(gas(), 0x02, ptr, add(chunk.length, 1), 0x00, 0x20)) { revert(0, 0) }
            digest := mload(0x00)
        }
    }

    /// @notice Inner node hash H(0x01 ‖ left ‖ right).
    function hashNode(bytes32 left, bytes32 right) internal view returns (bytes32 digest) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x01)
            mstore(add(ptr, 1), left)
            mstore(add(ptr, 33), right)
            if iszero(staticcall(gas(), 0x02, ptr, 65, 0x00, 0x20)) { revert(0, 0) }
            digest := mload(0x00)
        }
    }

    /// @notice Fragment root H(0x02 ‖ uint64_be(size) ‖ treeRoot).
    function hashFragmentRoot(uint64 size, bytes32 treeRoot) internal view returns (bytes32 digest) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            mstore8(ptr, 0x02)
            mstore(add(ptr, 1), shl(192, size))
            mstore(add(ptr, 9), treeRoot)
            if iszero(staticcall(gas(), 0x02, ptr, 41, 0x00, 0x20)) { revert(0, 0) }
            digest := mload(0x00)
        }
    }

    /// @notice Folds `node` at position `index` up through `proof` (siblings bottom-up).
    function processProof(bytes32 node, uint256 index, bytes32[] calldata proof) internal view returns (bytes32) {
        uint256 length = proof.length;
        for (uint256 i; i < length; ++i) {
            node = (index & 1) == 0 ? hashNode(node, proof[i]) : hashNode(proof[i], node);
            index >>= 1;
        }
        return node;
    }
}
