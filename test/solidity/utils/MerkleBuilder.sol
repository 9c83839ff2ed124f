// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IChallengeManager} from "../../../contracts/interfaces/IChallengeManager.sol";

/// @title MerkleBuilder
/// @notice An independent, memory-only implementation of the Merkle encoding of docs/ENCODING.md
/// (written from the document, not from MerkleLib), used to build data sets and proofs:
/// leaf = sha256(0x00 ‖ chunk[1024]), node = sha256(0x01 ‖ left ‖ right),
/// fragment root = sha256(0x02 ‖ uint64_be(size) ‖ treeRoot); trees are positional, width
/// nextPow2(count), empty positions are 32 zero bytes.
library MerkleBuilder {
    uint256 internal constant LEAF_SIZE = 1024;

    function hashLeaf(bytes memory chunk) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x00), chunk));
    }

    function hashNode(bytes32 left, bytes32 right) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x01), left, right));
    }

    function hashFragmentRoot(uint64 size, bytes32 treeRoot) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(bytes1(0x02), size, treeRoot));
    }

    function leafCount(uint256 size) internal pure returns (uint256) {
        return size == 0 ? 1 : (size + LEAF_SIZE - 1) / LEAF_SIZE;
    }

    function nextPow2(uint256 n) internal pure returns (uint256 width) {
        width = 1;
        while (width < n) width <<= 1;
    }

    function log2(uint256 width) internal pure returns (uint256 depth) {
        while ((uint256(1) << depth) < width) ++depth;
    }

    /// @notice Root of the positional tree over `nodes` (the bottom level).
    function root(bytes32[] memory nodes) internal pure returns (bytes32) {
        uint256 width = nextPow2(nodes.length);
        bytes32[] memory level = new bytes32[](width);
        for (uint256 i; i < nodes.length; ++i) {
            level[i] = nodes[i];
        }
        while (width > 1) {
            width >>= 1;
            for (uint256 i; i < width; ++i) {
                level[i] = hashNode(level[2 * i], level[2 * i + 1]);
            }
        }
        return level[0];
    }

    /// @notice Siblings (bottom-up) of position `index` in the positional tree over `nodes`.
    function proof(bytes32[] memory nodes, uint256 index) internal pure returns (bytes32[] memory siblings) {
        uint256 width = nextPow2(nodes.length);
        siblings = new bytes32[](log2(width));
        bytes32[] memory level = new bytes32[](width);
        for (uint256 i; i < nodes.length; ++i) {
            level[i] = nodes[i];
        }
        for (uint256 d; width > 1; ++d) {
            siblings[d] = level[index ^ 1];
            width >>= 1;
            for (uint256 i; i < width; ++i) {
                level[i] = hashNode(level[2 * i], level[2 * i + 1]);
            }
            index >>= 1;
        }
    }

    /// @notice Folds `node` at `index` up through `siblings`.
    function fold(bytes32 node, uint256 index, bytes32[] memory siblings) internal pure returns (bytes32) {
        for (uint256 d; d < siblings.length; ++d) {
            node = ((index >> d) & 1) == 0 ? hashNode(node, siblings[d]) : hashNode(siblings[d], node);
        }
        return node;
    }
}

/// @title DataSet
/// @notice Deterministic test data: fragment `f` of a data set `seed` has a size in
/// [0, MAX_SIZE] and pseudo-random content, so a test can rebuild any fragment, its root and
/// the proofs of any leaf from (seed, f) without storing the bytes.
library DataSet {
    /// @notice Largest fragment the test data sets use (6 KiB: up to 6 leaves, depth <= 3).
    uint256 internal constant MAX_SIZE = 6 * 1024;

    function fragmentSize(uint256 seed, uint256 f) internal pure returns (uint64) {
        return uint64(uint256(keccak256(abi.encode("size", seed, f))) % (MAX_SIZE + 1));
    }

    /// @notice Chunk `i` of a fragment of `size` bytes: content up to `size`, zero-padded to 1024.
    function chunk(uint256 seed, uint256 f, uint256 i, uint256 size) internal pure returns (bytes memory c) {
        c = new bytes(MerkleBuilder.LEAF_SIZE);
        uint256 start = i * MerkleBuilder.LEAF_SIZE;
        uint256 real = size > start ? size - start : 0;
        if (real > MerkleBuilder.LEAF_SIZE) real = MerkleBuilder.LEAF_SIZE;
        for (uint256 w; w < MerkleBuilder.LEAF_SIZE / 32; ++w) {
            bytes32 word = keccak256(abi.encode(seed, f, i, w));
            assembly ("memory-safe") {
                mstore(add(add(c, 0x20), mul(w, 0x20)), word)
            }
        }
        for (uint256 b = real; b < MerkleBuilder.LEAF_SIZE; ++b) {
            c[b] = 0;
        }
    }

    function leafHashes(uint256 seed, uint256 f, uint256 size) internal pure returns (bytes32[] memory hashes) {
        uint256 count = MerkleBuilder.leafCount(size);
        hashes = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            hashes[i] = MerkleBuilder.hashLeaf(chunk(seed, f, i, size));
        }
    }

    function fragmentRoot(uint256 seed, uint256 f) internal pure returns (bytes32) {
        uint64 size = fragmentSize(seed, f);
        return MerkleBuilder.hashFragmentRoot(size, MerkleBuilder.root(leafHashes(seed, f, size)));
    }

    /// @notice `roots` extended with the roots of fragments roots.length .. to-1.
    function extend(bytes32[] memory roots, uint256 seed, uint256 to) internal pure returns (bytes32[] memory out) {
        out = new bytes32[](to);
        for (uint256 f; f < to; ++f) {
            out[f] = f < roots.length ? roots[f] : fragmentRoot(seed, f);
        }
    }

    function fragmentRoots(uint256 seed, uint256 count) internal pure returns (bytes32[] memory) {
        return extend(new bytes32[](0), seed, count);
    }

    /// @notice The honest answer to one challenge item, given all fragment roots of the Magu.
    function proofFor(uint256 seed, bytes32[] memory roots, IChallengeManager.ChallengeItem memory item)
        internal
        pure
        returns (IChallengeManager.FragmentProof memory p)
    {
        uint256 f = item.fragment;
        uint64 size = fragmentSize(seed, f);
        uint256 leafIndex = uint256(item.leafSeed) % MerkleBuilder.leafCount(size);
        p.fragment = item.fragment;
        p.size = size;
        p.leaf = chunk(seed, f, leafIndex, size);
        p.leafProof = MerkleBuilder.proof(leafHashes(seed, f, size), leafIndex);
        p.fragmentProof = MerkleBuilder.proof(roots, f);
    }

    function proofsFor(uint256 seed, bytes32[] memory roots, IChallengeManager.ChallengeItem[] memory items)
        internal
        pure
        returns (IChallengeManager.FragmentProof[] memory proofs)
    {
        proofs = new IChallengeManager.FragmentProof[](items.length);
        for (uint256 i; i < items.length; ++i) {
            proofs[i] = proofFor(seed, roots, items[i]);
        }
    }
}
