// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {DeployedSearchMarket as SearchMarket} from "./Deployed.sol";
import {IMaguRegistry} from "../../../contracts/interfaces/IMaguRegistry.sol";
import {ISearchMarket} from "../../../contracts/interfaces/ISearchMarket.sol";
import {EncodingHarness} from "../../../contracts/test/EncodingHarness.sol";
import {MaguId} from "../../../contracts/types/MaguId.sol";
import {Fixture} from "./Fixture.sol";

/// @title SearchFixture
/// @notice The production deployment plus SearchMarket (SLASHER_ROLE and REPUTATION_ROLE on
/// NodeRegistry), six nodes, and vector Magus of five members (r = 2) whose data is built here:
/// records `uint64_be id ‖ 8 × int16_be` (24 bytes) packed 50 to a fragment (1200 bytes, two
/// leaves; record 42 straddles the leaf boundary), the last fragment 10 records. Trees come from
/// EncodingHarness (contracts/test), the words, distances, lists and the brute-force answer from
/// the text of docs/SEARCH.md.
abstract contract SearchFixture is Fixture {
    uint256 internal constant DIM = 8;
    uint256 internal constant RS = 8 + 2 * DIM;
    uint32 internal constant FRAGS = 6;
    uint256 internal constant PER_FRAGMENT = 50;
    uint256 internal constant LAST_FRAGMENT_RECORDS = 10;
    uint256 internal constant STRADDLING = 42; // bytes 1008..1032 of its fragment
    uint64 internal constant COMMIT_BLOCKS = 10;
    uint64 internal constant REVEAL_BLOCKS = 10;
    uint64 internal constant DISPUTE_BLOCKS = 10;
    uint16 internal constant MAX_K = 16;
    uint256 internal constant DISPUTE_SLASH = 20 ether;
    uint16 internal constant DISPUTER_BPS = 5_000;
    int64 internal constant REVEAL_PENALTY = 7;
    uint256 internal constant FEE = 1000 ether;
    uint256 internal constant K = 10;

    SearchMarket internal market;
    EncodingHarness internal harness;
    address internal client;
    address internal disputer;
    MaguId internal l2Magu;
    MaguId internal ipMagu;

    mapping(uint256 magu => bytes[] fragments) internal fragmentsOf;
    mapping(uint256 magu => bytes32[] roots) internal rootsOf;
    mapping(uint256 magu => bool) internal isL2;

    function setUp() public virtual override {
        super.setUp();
        harness = EncodingHarness(deployArtifact("EncodingHarness.sol:EncodingHarness", ""));
        market = SearchMarket(deployArtifact("SearchMarket.sol:SearchMarket", abi.encode(searchConfig())));
        registry.grantRole(registry.SLASHER_ROLE(), address(market));
        registry.grantRole(registry.REPUTATION_ROLE(), address(market));
        vm.label(address(market), "SearchMarket");
        client = newActor("client");
        disputer = newActor("disputer");
        registerNodes(6, 400 ether); // room for four memberships each
        l2Magu = vectorMagu(IMaguRegistry.Metric.L2, 1);
        ipMagu = vectorMagu(IMaguRegistry.Metric.InnerProduct, 2);
    }

    function searchConfig() internal view returns (ISearchMarket.Config memory) {
        return ISearchMarket.Config({
            token: address(token),
            nodeRegistry: address(registry),
            maguRegistry: address(magus),
            commitBlocks: COMMIT_BLOCKS,
            revealBlocks: REVEAL_BLOCKS,
            disputeBlocks: DISPUTE_BLOCKS,
            maxK: MAX_K,
            disputeSlash: DISPUTE_SLASH,
            disputerBps: DISPUTER_BPS,
            slashSink: address(rewards),
            revealPenalty: REVEAL_PENALTY
        });
    }

    // ------------------------------------------------------------ data

    /// @notice Vector ids: a bijection of (fragment, position) that does not follow their order.
    function recordId(uint256 f, uint256 p) internal pure returns (uint64) {
        return uint64(((f * PER_FRAGMENT + p) * 7919) % 100_000 + 1);
    }

    /// @notice Component i of record (f, p); records (0, 40) and (4, 7) copy (2, 10): exact ties.
    function recordValue(uint256 seed, uint256 f, uint256 p, uint256 i) internal pure returns (int16) {
        if ((f == 0 && p == 40) || (f == 4 && p == 7)) (f, p) = (2, 10);
        return int16(int256(uint256(keccak256(abi.encode(seed, f, p, i))) % 9) - 4);
    }

    function recordCount(uint256 f) internal pure returns (uint256) {
        return f == FRAGS - 1 ? LAST_FRAGMENT_RECORDS : PER_FRAGMENT;
    }

    function fragmentBytes(uint256 seed, uint256 f) internal pure returns (bytes memory out) {
        uint256 count = recordCount(f);
        out = new bytes(count * RS);
        for (uint256 p; p < count; ++p) {
            uint256 at = p * RS;
            uint64 id = recordId(f, p);
            for (uint256 b; b < 8; ++b) {
                out[at + b] = bytes1(uint8(id >> (56 - 8 * b)));
            }
            for (uint256 i; i < DIM; ++i) {
                uint16 v = uint16(recordValue(seed, f, p, i));
                out[at + 8 + 2 * i] = bytes1(uint8(v >> 8));
                out[at + 9 + 2 * i] = bytes1(uint8(v));
            }
        }
    }

    /// @notice Creates, forms and fills a vector Magu (5 members, r = 2) with data set `seed`.
    function vectorMagu(IMaguRegistry.Metric metric, uint256 seed) internal returns (MaguId id) {
        IMaguRegistry.MaguParams memory p = vectorParams(5, 2, 2 * FRAGS, 10);
        p.dimension = uint32(DIM);
        p.metric = metric;
        id = createMagu(client, p);
        formMagu(id);
        uint256 key = MaguId.unwrap(id);
        isL2[key] = metric == IMaguRegistry.Metric.L2;
        for (uint256 f; f < FRAGS; ++f) {
            bytes memory data = fragmentBytes(seed, f);
            (, bytes32 fragmentRoot,,) = harness.fragmentTree(data, 0);
            fragmentsOf[key].push(data);
            rootsOf[key].push(fragmentRoot);
        }
        (bytes32 root,) = harness.maguTree(rootsOf[key], 0);
        commitFirstRoot(id, root, FRAGS);
    }

    function readId(bytes memory data, uint256 p) internal pure returns (uint64 id) {
        for (uint256 b; b < 8; ++b) {
            id = (id << 8) | uint8(data[p * RS + b]);
        }
    }

    function readValue(bytes memory data, uint256 p, uint256 i) internal pure returns (int256) {
        uint256 at = p * RS + 8 + 2 * i;
        return int16(uint16(uint8(data[at])) << 8 | uint16(uint8(data[at + 1])));
    }

    function queryOf(uint256 seed) internal pure returns (int16[] memory q) {
        q = new int16[](DIM);
        for (uint256 i; i < DIM; ++i) {
            q[i] = int16(int256(uint256(keccak256(abi.encode("query", seed, i))) % 9) - 4);
        }
    }

    /// @notice The query equal to record (f, p) of data set `seed`.
    function queryAt(uint256 seed, uint256 f, uint256 p) internal pure returns (int16[] memory q) {
        q = new int16[](DIM);
        for (uint256 i; i < DIM; ++i) {
            q[i] = recordValue(seed, f, p, i);
        }
    }

    function encodeQuery(int16[] memory q) internal pure returns (bytes memory out) {
        out = new bytes(2 * q.length);
        for (uint256 i; i < q.length; ++i) {
            out[2 * i] = bytes1(uint8(uint16(q[i]) >> 8));
            out[2 * i + 1] = bytes1(uint8(uint16(q[i])));
        }
    }

    /// @notice docs/SEARCH.md: squared L2, or the negated inner product, of record p of `data`.
    function distanceIn(bytes memory data, bool l2, int16[] memory q, uint256 p) internal pure returns (int256 sum) {
        for (uint256 i; i < DIM; ++i) {
            int256 a = q[i];
            int256 b = readValue(data, p, i);
            sum += l2 ? (a - b) * (a - b) : -(a * b);
        }
    }

    /// @notice The entry word: distance key ‖ id ‖ fragment ‖ position ‖ 64 zero bits.
    function word(int256 distance, uint64 id, uint256 f, uint256 p) internal pure returns (bytes32) {
        uint256 key = uint256(uint64(int64(distance)) ^ (uint64(1) << 63));
        return bytes32((key << 192) | (uint256(id) << 128) | (uint256(uint32(f)) << 96) | (uint256(uint32(p)) << 64));
    }

    /// @notice The distance an entry word carries (its key, sign bit flipped back).
    function distanceOf(bytes32 w) internal pure returns (int64) {
        return int64(uint64(uint256(w) >> 192) ^ (uint64(1) << 63));
    }

    /// @notice Expects `EntryDisputed` for entry `index` (the word `entry`) of `member`'s list in
    /// `taskId`, found to be `falsehood` by `disputer`: the reported id and distance are the
    /// entry's, the actual ones given, the slash DISPUTE_SLASH.
    function expectEntryDisputed(
        uint256 taskId,
        address member,
        uint256 index,
        ISearchMarket.Falsehood falsehood,
        bytes32 entry,
        uint64 actualId,
        int64 actualDistance
    ) internal {
        vm.expectEmit(true, true, true, true, address(market));
        emit ISearchMarket.EntryDisputed(
            taskId,
            member,
            disputer,
            index,
            falsehood,
            uint64(uint256(entry) >> 128),
            actualId,
            distanceOf(entry),
            actualDistance,
            DISPUTE_SLASH
        );
    }

    /// @notice The true hit of record (f, p) of Magu `id` for `q`.
    function hitOf(MaguId id, int16[] memory q, uint256 f, uint256 p) internal view returns (bytes32) {
        bytes memory data = fragmentsOf[MaguId.unwrap(id)][f];
        return word(distanceIn(data, isL2[MaguId.unwrap(id)], q, p), readId(data, p), f, p);
    }

    /// @notice The first member of `id` holding a fragment (placement may leave a member without
    /// any of the 6 × 2 copies); its honest lists have K entries.
    function busyIndex(MaguId id) internal view returns (uint256) {
        address[] memory members = membersOf(id);
        for (uint256 i; i < members.length; ++i) {
            for (uint256 f; f < FRAGS; ++f) {
                if (holds(id, f, members[i])) return i;
            }
        }
        revert("no member holds a fragment");
    }

    function holds(MaguId id, uint256 f, address member) internal view returns (bool) {
        address[] memory h = magus.holders(id, f);
        return h[0] == member || h[1] == member;
    }

    /// @notice The slot of the first member placed on fragment `f` (an entry from a fragment its
    /// member does not hold is a NotHolder falsehood before anything else).
    function holderIndex(MaguId id, uint256 f) internal view returns (uint256) {
        address[] memory members = membersOf(id);
        for (uint256 i; i < members.length; ++i) {
            if (holds(id, f, members[i])) return i;
        }
        revert("nobody holds the fragment");
    }

    /// @notice Every hit of the fragments `member` holds (all fragments for address(0)), sorted.
    function hits(MaguId id, int16[] memory q, address member) internal view returns (bytes32[] memory out) {
        uint256 total;
        for (uint256 f; f < FRAGS; ++f) {
            if (member == address(0) || holds(id, f, member)) total += recordCount(f);
        }
        out = new bytes32[](total);
        uint256 n;
        bool l2 = isL2[MaguId.unwrap(id)];
        for (uint256 f; f < FRAGS; ++f) {
            if (member != address(0) && !holds(id, f, member)) continue;
            bytes memory data = fragmentsOf[MaguId.unwrap(id)][f];
            for (uint256 p; p < recordCount(f); ++p) {
                out[n++] = word(distanceIn(data, l2, q, p), readId(data, p), f, p);
            }
        }
        sort(out);
    }

    /// @notice A member's honest list: its k smallest words.
    function honestList(MaguId id, int16[] memory q, address member, uint256 k) internal view returns (bytes32[] memory) {
        return prefix(hits(id, q, member), k);
    }

    function prefix(bytes32[] memory list, uint256 n) internal pure returns (bytes32[] memory out) {
        if (n > list.length) n = list.length;
        out = new bytes32[](n);
        for (uint256 i; i < n; ++i) {
            out[i] = list[i];
        }
    }

    function sort(bytes32[] memory a) internal pure {
        for (uint256 i = 1; i < a.length; ++i) {
            bytes32 x = a[i];
            uint256 j = i;
            while (j > 0 && uint256(a[j - 1]) > uint256(x)) {
                a[j] = a[j - 1];
                --j;
            }
            a[j] = x;
        }
    }

    /// @notice docs/SEARCH.md by brute force: all words of all lists in word order, the first word
    /// of each id, k of them; one credit per (final entry, list holding its distance and id).
    function bruteForce(bytes32[][] memory lists, uint256 k)
        internal
        pure
        returns (bytes32[] memory result, uint256[] memory credits, uint256 total)
    {
        uint256 all;
        for (uint256 i; i < lists.length; ++i) {
            all += lists[i].length;
        }
        bytes32[] memory words = new bytes32[](all);
        uint256 n;
        for (uint256 i; i < lists.length; ++i) {
            for (uint256 j; j < lists[i].length; ++j) {
                words[n++] = lists[i][j];
            }
        }
        sort(words);
        result = new bytes32[](k);
        n = 0;
        for (uint256 w; w < words.length && n < k; ++w) {
            bool seen;
            for (uint256 r; r < n; ++r) {
                if (uint64(uint256(result[r]) >> 128) == uint64(uint256(words[w]) >> 128)) seen = true;
            }
            if (!seen) result[n++] = words[w];
        }
        result = prefix(result, n);
        credits = new uint256[](lists.length);
        for (uint256 i; i < lists.length; ++i) {
            for (uint256 r; r < n; ++r) {
                for (uint256 j; j < lists[i].length; ++j) {
                    if (uint256(lists[i][j]) >> 128 == uint256(result[r]) >> 128) {
                        ++credits[i];
                        ++total;
                        break;
                    }
                }
            }
        }
    }

    /// @notice The true answer over all records of the Magu.
    function truth(MaguId id, int16[] memory q, uint256 k) internal view returns (bytes32[] memory result) {
        bytes32[][] memory all = new bytes32[][](1);
        all[0] = hits(id, q, address(0));
        (result,,) = bruteForce(all, k);
    }

    /// @notice The dispute proof of entries[index] (docs/SEARCH.md, "The task" 4): leaves lo..hi
    /// over the record's bytes, capped at the fragment's last leaf.
    function proofOf(MaguId id, int16[] memory q, bytes32[] memory entries, uint256 index)
        internal
        view
        returns (ISearchMarket.DisputeProof memory proof)
    {
        uint256 key = MaguId.unwrap(id);
        uint256 w = uint256(entries[index]);
        uint256 f = uint32(w >> 96);
        uint256 p = uint32(w >> 64);
        bytes memory data = fragmentsOf[key][f];
        uint256 leaves = data.length == 0 ? 1 : (data.length + 1023) / 1024;
        uint256 lo = p * RS / 1024;
        uint256 hi = ((p + 1) * RS - 1) / 1024;
        if (lo >= leaves) lo = leaves - 1;
        if (hi >= leaves) hi = leaves - 1;
        proof.query = encodeQuery(q);
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

    function chunk(bytes memory data, uint256 i) internal pure returns (bytes memory c) {
        c = new bytes(1024);
        for (uint256 b = i * 1024; b < data.length && b < (i + 1) * 1024; ++b) {
            c[b - i * 1024] = data[b];
        }
    }

    // ------------------------------------------------------------ task steps

    function saltOf(address member) internal pure returns (bytes32) {
        return keccak256(abi.encode("salt", member));
    }

    function commitmentOf(uint256 taskId, address member, bytes32[] memory entries) internal pure returns (bytes32) {
        return keccak256(abi.encode(taskId, member, saltOf(member), entries));
    }

    function submitTask(MaguId id, int16[] memory q, uint256 k, uint256 fee) internal returns (uint256 taskId) {
        fund(client, fee);
        vm.startPrank(client);
        token.approve(address(market), fee);
        taskId = market.submit(id, encodeQuery(q), k, fee);
        vm.stopPrank();
    }

    function commitList(uint256 taskId, address member, bytes32[] memory entries) internal {
        vm.prank(member);
        market.commit(taskId, commitmentOf(taskId, member, entries));
    }

    function revealList(uint256 taskId, address member, bytes32[] memory entries) internal {
        vm.prank(member);
        market.reveal(taskId, entries, saltOf(member));
    }

    function rollToReveals(uint256 taskId) internal {
        vm.roll(market.task(taskId).commitDeadline + 1);
    }

    function rollToFinalize(uint256 taskId) internal {
        vm.roll(market.task(taskId).disputeDeadline + 1);
    }

    /// @notice Every member of `id` commits and reveals its honest list; returns the lists.
    function honestTask(MaguId id, int16[] memory q, uint256 k)
        internal
        returns (uint256 taskId, address[] memory members, bytes32[][] memory lists)
    {
        return answeredTask(id, q, k, type(uint256).max, new bytes32[](0));
    }

    /// @notice Every member of `id` commits and reveals: member `liarIndex` the list `lie`, the
    /// others their honest lists; returns the lists.
    function answeredTask(MaguId id, int16[] memory q, uint256 k, uint256 liarIndex, bytes32[] memory lie)
        internal
        returns (uint256 taskId, address[] memory members, bytes32[][] memory lists)
    {
        taskId = submitTask(id, q, k, FEE);
        members = membersOf(id);
        lists = new bytes32[][](members.length);
        for (uint256 i; i < members.length; ++i) {
            lists[i] = i == liarIndex ? lie : honestList(id, q, members[i], k);
            commitList(taskId, members[i], lists[i]);
        }
        rollToReveals(taskId);
        for (uint256 i; i < members.length; ++i) {
            revealList(taskId, members[i], lists[i]);
        }
    }

    function checkBooks() internal view {
        assertEq(token.balanceOf(address(market)), market.totalHeld(), "SearchMarket holds what its books say");
    }

    function one(bytes32 w) internal pure returns (bytes32[] memory list) {
        list = new bytes32[](1);
        list[0] = w;
    }
}
