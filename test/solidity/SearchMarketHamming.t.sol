// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {ISearchMarket} from "../../contracts/interfaces/ISearchMarket.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {SearchFixture} from "./utils/SearchFixture.sol";

/// @notice SearchMarket on a Hamming Magu (Metric 4): records `uint64_be id ‖ ceil(dim/8)` bytes of
/// bits packed MSB first, the distance the number of differing bits among the first `dim`. The data
/// here: 300-bit vectors (38 bytes, the last 4 bits padding; two 256-bit words, the second partial),
/// records of 46 bytes, 50 to a fragment (2300 bytes, three leaves; record 22 straddles the first
/// leaf boundary). The reference distance counts bit by bit, independent of the contract's SWAR.
contract SearchMarketHammingTest is SearchFixture {
    uint256 internal constant HDIM = 300;
    uint256 internal constant HVB = (HDIM + 7) / 8;
    uint256 internal constant HRS = 8 + HVB;
    uint256 internal constant HSTRADDLING = 22; // bytes 1012..1058 of its fragment

    MaguId internal hamMagu;

    function setUp() public override {
        super.setUp();
        hamMagu = _hammingMagu(7);
    }

    // ------------------------------------------------------------ data

    /// @notice Byte j of record (f, p): random bits with the padding zero; records (0, 40) and
    /// (4, 7) copy (2, 10), exact ties.
    function _recordByte(uint256 seed, uint256 f, uint256 p, uint256 j) internal pure returns (bytes1) {
        if ((f == 0 && p == 40) || (f == 4 && p == 7)) (f, p) = (2, 10);
        uint8 b = uint8(uint256(keccak256(abi.encode("bits", seed, f, p, j))));
        if (j == HVB - 1) b &= uint8(0xff << (8 * HVB - HDIM));
        return bytes1(b);
    }

    function _hammingMagu(uint256 seed) internal returns (MaguId id) {
        IMaguRegistry.MaguParams memory params = vectorParams(5, 2, 2 * FRAGS, 10);
        params.dimension = uint32(HDIM);
        params.metric = IMaguRegistry.Metric.Hamming;
        id = createMagu(client, params);
        formMagu(id);
        uint256 key = MaguId.unwrap(id);
        for (uint256 f; f < FRAGS; ++f) {
            uint256 count = recordCount(f);
            bytes memory data = new bytes(count * HRS);
            for (uint256 p; p < count; ++p) {
                uint64 rid = recordId(f, p);
                for (uint256 b; b < 8; ++b) {
                    data[p * HRS + b] = bytes1(uint8(rid >> (56 - 8 * b)));
                }
                for (uint256 j; j < HVB; ++j) {
                    data[p * HRS + 8 + j] = _recordByte(seed, f, p, j);
                }
            }
            (, bytes32 fragmentRoot,,) = harness.fragmentTree(data, 0);
            fragmentsOf[key].push(data);
            rootsOf[key].push(fragmentRoot);
        }
        (bytes32 root,) = harness.maguTree(rootsOf[key], 0);
        commitFirstRoot(id, root, FRAGS);
    }

    /// @notice A query of random bits, its padding bits set when `dirtyPadding` (they are ignored).
    function _query(uint256 seed, bool dirtyPadding) internal pure returns (bytes memory q) {
        q = new bytes(HVB);
        for (uint256 j; j < HVB; ++j) {
            q[j] = bytes1(uint8(uint256(keccak256(abi.encode("hquery", seed, j)))));
        }
        uint8 padding = uint8((1 << (8 * HVB - HDIM)) - 1);
        q[HVB - 1] = dirtyPadding ? q[HVB - 1] | bytes1(padding) : q[HVB - 1] & bytes1(~padding);
    }

    function _bit(bytes memory b, uint256 offset, uint256 i) internal pure returns (uint256) {
        return (uint8(b[offset + i / 8]) >> (7 - (i % 8))) & 1;
    }

    /// @notice docs/SEARCH.md: the number of the first HDIM bits where record p and q differ.
    function _hammingIn(bytes memory data, bytes memory q, uint256 p) internal pure returns (int256 d) {
        for (uint256 i; i < HDIM; ++i) {
            if (_bit(data, p * HRS + 8, i) != _bit(q, 0, i)) ++d;
        }
    }

    function _idIn(bytes memory data, uint256 p) internal pure returns (uint64 rid) {
        for (uint256 b; b < 8; ++b) {
            rid = (rid << 8) | uint8(data[p * HRS + b]);
        }
    }

    function _hits(MaguId id, bytes memory q, address member) internal view returns (bytes32[] memory out) {
        uint256 total;
        for (uint256 f; f < FRAGS; ++f) {
            if (member == address(0) || holds(id, f, member)) total += recordCount(f);
        }
        out = new bytes32[](total);
        uint256 n;
        for (uint256 f; f < FRAGS; ++f) {
            if (member != address(0) && !holds(id, f, member)) continue;
            bytes memory data = fragmentsOf[MaguId.unwrap(id)][f];
            for (uint256 p; p < recordCount(f); ++p) {
                out[n++] = word(_hammingIn(data, q, p), _idIn(data, p), f, p);
            }
        }
        sort(out);
    }

    function _proof(MaguId id, bytes memory q, bytes32[] memory entries, uint256 index)
        internal
        view
        returns (ISearchMarket.DisputeProof memory proof)
    {
        uint256 key = MaguId.unwrap(id);
        uint256 w = uint256(entries[index]);
        uint256 f = uint32(w >> 96);
        uint256 p = uint32(w >> 64);
        bytes memory data = fragmentsOf[key][f];
        uint256 lo = p * HRS / 1024;
        uint256 hi = ((p + 1) * HRS - 1) / 1024;
        proof.query = q;
        proof.entries = entries;
        proof.index = index;
        proof.size = uint64(data.length);
        proof.leaves = new bytes[](hi - lo + 1);
        proof.leafProofs = new bytes32[][](hi - lo + 1);
        for (uint256 j; j <= hi - lo; ++j) {
            proof.leaves[j] = chunk(data, lo + j);
            (,,, proof.leafProofs[j]) = harness.fragmentTree(data, lo + j);
        }
        (, proof.fragmentProof) = harness.maguTree(rootsOf[key], f);
    }

    /// @notice Submits `q`; every member commits and reveals its honest list, member `liarIndex`
    /// the list `lie` instead.
    function _task(bytes memory q, uint256 liarIndex, bytes32[] memory lie)
        internal
        returns (uint256 taskId, address[] memory members, bytes32[][] memory lists)
    {
        fund(client, FEE);
        vm.startPrank(client);
        token.approve(address(market), FEE);
        taskId = market.submit(hamMagu, q, K, FEE);
        vm.stopPrank();
        members = membersOf(hamMagu);
        lists = new bytes32[][](members.length);
        for (uint256 i; i < members.length; ++i) {
            lists[i] = i == liarIndex ? lie : prefix(_hits(hamMagu, q, members[i]), K);
            commitList(taskId, members[i], lists[i]);
        }
        rollToReveals(taskId);
        for (uint256 i; i < members.length; ++i) {
            revealList(taskId, members[i], lists[i]);
        }
    }

    // ------------------------------------------------------------ tests

    /// @notice A Hamming query is ceil(dim / 8) bytes of packed bits; the int16 size is refused.
    function test_submit_hamming_queryIsPackedBits() public {
        fund(client, FEE);
        vm.startPrank(client);
        token.approve(address(market), FEE);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchInvalidQuery.selector, 2 * HDIM, HVB));
        market.submit(hamMagu, new bytes(2 * HDIM), K, FEE);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchInvalidQuery.selector, HVB - 1, HVB));
        market.submit(hamMagu, new bytes(HVB - 1), K, FEE);
        uint256 taskId = market.submit(hamMagu, _query(1, false), K, FEE);
        vm.stopPrank();
        assertEq(uint8(market.task(taskId).metric), uint8(IMaguRegistry.Metric.Hamming), "task metric");
        assertEq(market.task(taskId).dimension, HDIM, "task dimension (bits)");
    }

    /// @notice Honest entries stand: the exact match of a record that straddles two leaves
    /// (distance 0) and the list's last entry (a partial second word), with the query's padding
    /// bits set, which the distance ignores; the merged answer is the brute-force popcount top-k.
    /// A judge measuring Hamming records as int16 (L2 or inner product) would slash these members.
    function test_task_hamming_honestEntriesStand() public {
        uint256 b = busyIndex(hamMagu);
        address member = membersOf(hamMagu)[b];
        uint256 f;
        while (!holds(hamMagu, f, member)) ++f;
        bytes memory q = new bytes(HVB);
        bytes memory data = fragmentsOf[MaguId.unwrap(hamMagu)][f];
        for (uint256 j; j < HVB; ++j) {
            q[j] = data[HSTRADDLING * HRS + 8 + j];
        }
        q[HVB - 1] |= bytes1(uint8(0x0f)); // padding bits set

        (uint256 taskId, address[] memory members, bytes32[][] memory lists) = _task(q, type(uint256).max, _noLie());
        assertEq(uint32(uint256(lists[b][0]) >> 64), HSTRADDLING, "the straddling record comes first");
        assertEq(distanceOf(lists[b][0]), 0, "at distance 0 despite the padding bits");
        assertTrue(distanceOf(lists[b][K - 1]) > 100, "random 300-bit vectors differ in ~150 bits");
        for (uint256 e; e < K; e += K - 1) {
            ISearchMarket.DisputeProof memory proof = _proof(hamMagu, q, lists[b], e);
            vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchDisputeRejected.selector, taskId, members[b], e));
            vm.prank(disputer);
            market.dispute(taskId, members[b], proof);
        }

        rollToFinalize(taskId);
        market.finalize(taskId, lists);
        bytes32[][] memory all = new bytes32[][](1);
        all[0] = _hits(hamMagu, q, address(0));
        (bytes32[] memory top,,) = bruteForce(all, K);
        assertEq(market.task(taskId).resultHash, keccak256(abi.encodePacked(top)), "answer");
        checkBooks();
    }

    /// @notice An entry one bit off, and an entry carrying the record's squared L2 distance read
    /// as int16 components (what an int16 judge would accept), are wrong distances: the dispute
    /// slashes the member and reports the popcount.
    function test_dispute_falseDistance_hamming() public {
        bytes memory q = _query(3, false);
        uint256 b = busyIndex(hamMagu);
        address member = membersOf(hamMagu)[b];
        bytes32[] memory honest = prefix(_hits(hamMagu, q, member), K);
        uint256 w = uint256(honest[K - 1]);
        int64 d = distanceOf(honest[K - 1]);

        bytes32[] memory lie = prefix(honest, K);
        lie[K - 1] = word(d + 1, uint64(w >> 128), uint32(w >> 96), uint32(w >> 64));
        _disputeLie(q, b, lie, K - 1, d);

        bytes memory data = fragmentsOf[MaguId.unwrap(hamMagu)][uint32(w >> 96)];
        int256 l2;
        for (uint256 i; i < HVB / 2; ++i) {
            uint256 at = uint32(w >> 64) * HRS + 8 + 2 * i;
            int256 v = int16(uint16(uint8(data[at])) << 8 | uint16(uint8(data[at + 1])));
            int256 u = int16(uint16(uint8(q[2 * i])) << 8 | uint16(uint8(q[2 * i + 1])));
            l2 += (u - v) * (u - v);
        }
        assertTrue(l2 > d, "the int16 reading differs and keeps the list ascending");
        lie = prefix(honest, K);
        lie[K - 1] = word(l2, uint64(w >> 128), uint32(w >> 96), uint32(w >> 64));
        _disputeLie(q, b, lie, K - 1, d);
    }

    function _disputeLie(bytes memory q, uint256 liarIndex, bytes32[] memory lie, uint256 index, int64 actual)
        internal
    {
        (uint256 taskId, address[] memory members,) = _task(q, liarIndex, lie);
        address liar = members[liarIndex];
        uint256 stake = registry.stakeOf(liar);
        ISearchMarket.DisputeProof memory proof = _proof(hamMagu, q, lie, index);
        expectEntryDisputed(
            taskId, liar, index, ISearchMarket.Falsehood.WrongDistance, lie[index], uint64(uint256(lie[index]) >> 128), actual
        );
        vm.prank(disputer);
        market.dispute(taskId, liar, proof);
        assertEq(registry.stakeOf(liar), stake - DISPUTE_SLASH, "liar slashed");
        assertTrue(market.memberTask(taskId, liar).disputed, "disputed");
        checkBooks();
    }

    function _noLie() internal pure returns (bytes32[] memory) {
        return new bytes32[](0);
    }
}
