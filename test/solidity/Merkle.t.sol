// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {DataSet, MerkleBuilder} from "./utils/MerkleBuilder.sol";
import {MerkleHarness} from "./utils/MerkleHarness.sol";
import {Test} from "./utils/Test.sol";

/// @notice MerkleLib against docs/ENCODING.md: fixed vectors (computed with Python's hashlib),
/// agreement with the independent MerkleBuilder, and fuzzed proofs that verify when honest
/// and fail when any byte, sibling or index is changed.
contract MerkleTest is Test {
    uint256 internal constant MAX_FUZZ_SIZE = 16 * 1024; // up to 16 leaves, depth 4
    uint256 internal constant MAX_FUZZ_FRAGMENTS = 40; // Magu tree depth up to 6

    MerkleHarness internal lib;

    struct Case {
        bytes leaf;
        uint64 size;
        uint256 leafIndex;
        bytes32[] leafProof;
        uint256 fragment;
        bytes32[] fragmentProof;
        uint256 fragmentCount;
        bytes32 root;
    }

    function setUp() public {
        lib = new MerkleHarness();
    }

    function _verify(Case memory c) internal view returns (bool) {
        return lib.verify(
            c.leaf, c.size, c.leafIndex, c.leafProof, c.fragment, c.fragmentProof, c.fragmentCount, c.root
        );
    }

    /// @dev A Magu of `fragmentCount` fragments whose fragment `fragment` is real data of `size`
    /// bytes from `seed` (the other fragment roots are arbitrary), and the proof of one leaf.
    function _case(uint256 seed, uint256 size, uint256 leafRaw, uint256 fragmentCount, uint256 fragmentRaw)
        internal
        pure
        returns (Case memory c)
    {
        c.size = uint64(size);
        c.fragmentCount = fragmentCount;
        c.fragment = fragmentRaw % fragmentCount;
        bytes32[] memory leaves = DataSet.leafHashes(seed, c.fragment, size);
        c.leafIndex = leafRaw % leaves.length;
        c.leaf = DataSet.chunk(seed, c.fragment, c.leafIndex, size);
        c.leafProof = MerkleBuilder.proof(leaves, c.leafIndex);
        bytes32[] memory roots = new bytes32[](fragmentCount);
        for (uint256 f; f < fragmentCount; ++f) {
            roots[f] = keccak256(abi.encode("other fragment", seed, f));
        }
        roots[c.fragment] = MerkleBuilder.hashFragmentRoot(c.size, MerkleBuilder.root(leaves));
        c.fragmentProof = MerkleBuilder.proof(roots, c.fragment);
        c.root = MerkleBuilder.root(roots);
    }

    // ------------------------------------------------------------ fixed vectors

    function test_hashLeaf_matchesVectors() public view {
        assertEq(
            lib.hashLeaf(new bytes(1024)),
            0xc55b90509b8cb9bac53fbdddfc93d4e572685c509f1218423c43a5d6013bbd48,
            "sha256(0x00 || 1024 zero bytes)"
        );
        bytes memory hello = new bytes(1024);
        hello[0] = "h";
        hello[1] = "e";
        hello[2] = "l";
        hello[3] = "l";
        hello[4] = "o";
        assertEq(
            lib.hashLeaf(hello),
            0xd9874c469567754c3ffc605019f5639d3ce43e5b1d19b2fd5a3c18e98f4104cf,
            "sha256(0x00 || 'hello' zero-padded)"
        );
        assertEq(lib.hashLeaf(hello), MerkleBuilder.hashLeaf(hello), "builder agrees");
    }

    function test_hashNodeAndFragmentRoot_matchVectors() public view {
        assertEq(
            lib.hashNode(bytes32(0), bytes32(0)),
            0xae0798d0ecaed2b778eddebf18f071a561c53658c05e76cedecc27cafbdbc577,
            "sha256(0x01 || 0^64): empty children still hash"
        );
        bytes32 zeroLeaf = 0xc55b90509b8cb9bac53fbdddfc93d4e572685c509f1218423c43a5d6013bbd48;
        assertEq(
            lib.hashFragmentRoot(0, zeroLeaf),
            0xc6d7df6da8c78b7b0a295bf73bae5ac7eee8a53da50a3f2135e4ff6a36cb3aa6,
            "0-byte fragment: one zero chunk"
        );
        assertEq(
            lib.hashFragmentRoot(5, 0xd9874c469567754c3ffc605019f5639d3ce43e5b1d19b2fd5a3c18e98f4104cf),
            0xf981ec8cbbd105dd030026c5e268a43b5cf1d896874dd5dfc2dd883549c39e18,
            "'hello' fragment root: size is uint64 big-endian"
        );
    }

    /// @notice 2500 bytes: three leaves (bytes 1, 2 and 3 repeated; the last 452 real bytes),
    /// width 4 with an empty fourth position.
    function test_fragmentTree_threeLeavesMatchesVector() public view {
        bytes32[] memory leaves = new bytes32[](3);
        for (uint256 i; i < 3; ++i) {
            bytes memory c = new bytes(1024);
            uint256 real = i < 2 ? 1024 : 452;
            for (uint256 b; b < real; ++b) {
                c[b] = bytes1(uint8(i + 1));
            }
            leaves[i] = lib.hashLeaf(c);
        }
        bytes32 tree = MerkleBuilder.root(leaves);
        assertEq(tree, 0xc3112ca388800cbd862a7ddbce2fba4e16d49c8da046834a86942792e0c5e676, "tree root");
        assertEq(
            lib.hashFragmentRoot(2500, tree),
            0xefb9fbbf52c4ec9d90851d3395f264757460582677f99c5fba4e2ed76a5b110b,
            "fragment root"
        );
        // Leaf 2 proves with siblings [empty, node(0,1)].
        bytes32[] memory path = MerkleBuilder.proof(leaves, 2);
        assertEq(path[0], bytes32(0), "empty position is zero, not a hash");
        assertEq(path[1], lib.hashNode(leaves[0], leaves[1]), "left subtree");
        assertEq(lib.processProof(leaves[2], 2, path), tree, "MerkleLib folds to the root");
    }

    function test_leafCountAndDepth_followSpec() public view {
        assertEq(lib.leafCount(0), 1, "empty fragment has one leaf");
        assertEq(lib.leafCount(1), 1, "1 byte");
        assertEq(lib.leafCount(1024), 1, "1 KiB");
        assertEq(lib.leafCount(1025), 2, "1 KiB + 1");
        assertEq(lib.leafCount(1 << 20), 1024, "1 MiB");
        assertEq(lib.depthFor(1), 0, "single leaf");
        assertEq(lib.depthFor(2), 1, "two");
        assertEq(lib.depthFor(3), 2, "three");
        assertEq(lib.depthFor(1024), 10, "1024");
        assertEq(lib.depthFor(1025), 11, "1025");
    }

    /// @notice The largest fragment (1 MiB, 1024 leaves, depth 10) in a one-fragment Magu.
    function test_verify_fullSizeFragment() public view {
        Case memory c = _case(99, 1 << 20, 777, 1, 0);
        assertEq(c.leafProof.length, 10, "depth 10");
        assertEq(c.fragmentProof.length, 0, "one fragment: its root is the Magu root");
        assertTrue(_verify(c), "verifies");
        c.leafIndex = 778;
        assertFalse(_verify(c), "neighbour index fails");
    }

    // ------------------------------------------------------------ fuzz

    function testFuzz_processProof_matchesBuilder(bytes32 node, uint256 index, bytes32[6] memory siblings, uint8 depth)
        public
        view
    {
        depth = uint8(bound(depth, 0, 6));
        bytes32[] memory path = new bytes32[](depth);
        for (uint256 i; i < depth; ++i) {
            path[i] = siblings[i];
        }
        assertEq(lib.processProof(node, index, path), MerkleBuilder.fold(node, index, path), "same fold");
    }

    function testFuzz_verify_acceptsHonestProof(
        uint256 seed,
        uint256 size,
        uint256 leafRaw,
        uint256 count,
        uint256 fragmentRaw
    ) public view {
        Case memory c =
            _case(seed, bound(size, 0, MAX_FUZZ_SIZE), leafRaw, bound(count, 1, MAX_FUZZ_FRAGMENTS), fragmentRaw);
        assertTrue(_verify(c), "honest proof verifies");
    }

    function testFuzz_verify_rejectsFlippedLeafByte(
        uint256 seed,
        uint256 size,
        uint256 leafRaw,
        uint256 count,
        uint256 fragmentRaw,
        uint256 position,
        uint8 mask
    ) public view {
        Case memory c =
            _case(seed, bound(size, 0, MAX_FUZZ_SIZE), leafRaw, bound(count, 1, MAX_FUZZ_FRAGMENTS), fragmentRaw);
        position = bound(position, 0, 1023);
        mask = uint8(bound(mask, 1, 255));
        c.leaf[position] = bytes1(uint8(c.leaf[position]) ^ mask);
        assertFalse(_verify(c), "flipped leaf byte fails");
    }

    function testFuzz_verify_rejectsFlippedSibling(
        uint256 seed,
        uint256 size,
        uint256 leafRaw,
        uint256 count,
        uint256 fragmentRaw,
        uint256 which,
        uint256 bytePos,
        uint8 mask
    ) public view {
        Case memory c =
            _case(seed, bound(size, 1025, MAX_FUZZ_SIZE), leafRaw, bound(count, 2, MAX_FUZZ_FRAGMENTS), fragmentRaw);
        uint256 total = c.leafProof.length + c.fragmentProof.length;
        which = bound(which, 0, total - 1);
        bytePos = bound(bytePos, 0, 31);
        mask = uint8(bound(mask, 1, 255));
        bytes32 flip = bytes32(uint256(mask) << (8 * (31 - bytePos)));
        if (which < c.leafProof.length) c.leafProof[which] ^= flip;
        else c.fragmentProof[which - c.leafProof.length] ^= flip;
        assertFalse(_verify(c), "flipped sibling fails");
    }

    function testFuzz_verify_rejectsOtherIndex(
        uint256 seed,
        uint256 size,
        uint256 leafRaw,
        uint256 count,
        uint256 fragmentRaw,
        uint256 otherRaw,
        bool moveLeaf
    ) public view {
        Case memory c =
            _case(seed, bound(size, 1025, MAX_FUZZ_SIZE), leafRaw, bound(count, 2, MAX_FUZZ_FRAGMENTS), fragmentRaw);
        if (moveLeaf) {
            uint256 leaves = MerkleBuilder.leafCount(c.size);
            c.leafIndex = (c.leafIndex + 1 + otherRaw % (leaves - 1)) % leaves;
        } else {
            c.fragment = (c.fragment + 1 + otherRaw % (c.fragmentCount - 1)) % c.fragmentCount;
        }
        assertFalse(_verify(c), "the proof is bound to its position");
    }

    function testFuzz_verify_rejectsOtherSize(
        uint256 seed,
        uint256 size,
        uint256 leafRaw,
        uint256 count,
        uint256 fragmentRaw,
        uint256 otherSize
    ) public view {
        Case memory c =
            _case(seed, bound(size, 0, MAX_FUZZ_SIZE), leafRaw, bound(count, 1, MAX_FUZZ_FRAGMENTS), fragmentRaw);
        otherSize = bound(otherSize, 0, MAX_FUZZ_SIZE);
        vm.assume(otherSize != c.size);
        c.size = uint64(otherSize);
        assertFalse(_verify(c), "the size is committed in the fragment root");
    }
}
