// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MerkleLib} from "../libraries/MerkleLib.sol";
import {PlacementLib} from "../libraries/PlacementLib.sol";

/// @title EncodingHarness
/// @notice Test-only: exposes the shared encodings (docs/ENCODING.md) so that the JSON test vectors
/// in test/vectors/ are produced by Solidity. It also builds whole trees here, an independent
/// implementation the agents' TypeScript must agree with byte for byte. Never deployed.
contract EncodingHarness {
    /// @notice Leaf hash of a 1024-byte chunk.
    function hashLeaf(bytes calldata chunk) external view returns (bytes32) {
        return MerkleLib.hashLeaf(chunk);
    }

    /// @notice Inner node hash.
    function hashNode(bytes32 left, bytes32 right) external view returns (bytes32) {
        return MerkleLib.hashNode(left, right);
    }

    /// @notice Fragment root from size and tree root.
    function hashFragmentRoot(uint64 size, bytes32 treeRoot) external view returns (bytes32) {
        return MerkleLib.hashFragmentRoot(size, treeRoot);
    }

    /// @notice Root reached from `leaf` at `index` through `proof`.
    function processProof(bytes32 node, uint256 index, bytes32[] calldata proof) external view returns (bytes32) {
        return MerkleLib.processProof(node, index, proof);
    }

    /// @notice The fragment tree of `data`: its root, the fragment root and the proof of leaf `index`.
    function fragmentTree(bytes calldata data, uint256 index)
        external
        view
        returns (bytes32 treeRoot, bytes32 fragmentRoot, bytes32 leafHash, bytes32[] memory proof)
    {
        uint256 count = MerkleLib.leafCount(data.length);
        bytes32[] memory level = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            bytes memory chunk = new bytes(MerkleLib.LEAF_SIZE);
            uint256 end = (i + 1) * MerkleLib.LEAF_SIZE;
            if (end > data.length) end = data.length;
            for (uint256 b = i * MerkleLib.LEAF_SIZE; b < end; ++b) {
                chunk[b - i * MerkleLib.LEAF_SIZE] = data[b];
            }
            level[i] = sha256(abi.encodePacked(bytes1(0x00), chunk));
        }
        leafHash = level[index];
        (treeRoot, proof) = _root(level, index);
        fragmentRoot = MerkleLib.hashFragmentRoot(uint64(data.length), treeRoot);
    }

    /// @notice The Magu tree over `fragmentRoots`: its root and the proof of fragment `index`.
    function maguTree(bytes32[] calldata fragmentRoots, uint256 index)
        external
        pure
        returns (bytes32 root, bytes32[] memory proof)
    {
        return _root(fragmentRoots, index);
    }

    /// @notice Rendezvous score.
    function score(uint256 maguId, uint256 group, uint256 slot) external pure returns (uint256) {
        return PlacementLib.score(maguId, group, slot);
    }

    /// @notice The first `count` slots of `group`'s ranking.
    function topSlots(uint256 maguId, uint256 group, uint256 slots, uint256 count)
        external
        pure
        returns (uint256[] memory)
    {
        return PlacementLib.topSlots(maguId, group, slots, count);
    }

    /// @notice Whether `slot` holds `fragment`.
    function holds(uint256 maguId, uint256 fragment, uint256 slots, uint256 replication, uint256 stripeWidth, uint256 slot)
        external
        pure
        returns (bool)
    {
        return PlacementLib.holds(maguId, fragment, slots, replication, stripeWidth, slot);
    }

    /// @dev Builds the padded tree bottom-up (empty positions are zero) and collects `index`'s siblings.
    function _root(bytes32[] memory leaves, uint256 index) private pure returns (bytes32, bytes32[] memory proof) {
        uint256 width = 1;
        uint256 depth;
        while (width < leaves.length) {
            width <<= 1;
            ++depth;
        }
        bytes32[] memory level = new bytes32[](width);
        for (uint256 i; i < leaves.length; ++i) {
            level[i] = leaves[i];
        }
        proof = new bytes32[](depth);
        for (uint256 d; d < depth; ++d) {
            proof[d] = level[index ^ 1];
            uint256 half = width >> 1;
            for (uint256 i; i < half; ++i) {
                level[i] = sha256(abi.encodePacked(bytes1(0x01), level[2 * i], level[2 * i + 1]));
            }
            width = half;
            index >>= 1;
        }
        return (level[0], proof);
    }
}
