// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {ISearchMarket} from "../../contracts/interfaces/ISearchMarket.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {SearchFixture} from "./utils/SearchFixture.sol";

/// @notice Deleted vectors and control records in SearchMarket (docs/SEARCH.md, "Deleting
/// vectors"): a Magu whose data is the fixture's six vector fragments plus a seventh, a tombstone
/// fragment (records `2^64 − 1 ‖ two deleted ids`, 24 bytes like the vectors) committed with them,
/// so before any task. A member that reveals a deleted id is paid when nobody checks and loses
/// stake to `disputeDeleted` when someone does; one that reveals a control record (a tombstone or
/// payload chunk, whose distance is true) loses stake to `dispute` (ControlRecord).
contract SearchMarketDeletionTest is SearchFixture {
    uint64 internal constant TOMBSTONE_ID = type(uint64).max;
    uint32 internal constant TOMB = FRAGS; // the tombstone fragment's index
    MaguId internal magu;
    int16[] internal q;
    /// @dev The deleted hit: the best of the query, on a fragment of `liar`.
    bytes32 internal deletedWord;
    uint256 internal liarIndex;

    function setUp() public override {
        super.setUp();
        q = queryOf(31);
        // Which record to delete: the query's best hit in data set 3 (read before the Magu exists).
        bytes32 best = bytes32(type(uint256).max);
        for (uint256 f; f < FRAGS; ++f) {
            bytes memory data = fragmentBytes(3, f);
            for (uint256 p; p < recordCount(f); ++p) {
                bytes32 w = word(distanceIn(data, true, q, p), readId(data, p), f, p);
                if (uint256(w) < uint256(best)) best = w;
            }
        }
        deletedWord = best;
        uint64[] memory deleted = new uint64[](3);
        deleted[0] = recordId(5, 1);
        deleted[1] = uint64(uint256(best) >> 128); // slot 1 of tombstone record 0
        deleted[2] = recordId(0, 3);
        magu = _maguWithTombstones(deleted);
        liarIndex = holderIndex(magu, uint32(uint256(best) >> 96));
    }

    /// @dev Tombstone records for `ids`: TOMBSTONE_ID, then two ids, the unused slot 0xff…ff.
    function _tombstones(uint64[] memory ids) internal pure returns (bytes memory out) {
        uint256 records = (ids.length + 1) / 2;
        out = new bytes(records * RS);
        for (uint256 b; b < out.length; ++b) {
            out[b] = 0xff;
        }
        for (uint256 i; i < ids.length; ++i) {
            uint256 at = (i / 2) * RS + 8 + (i % 2) * 8;
            for (uint256 b; b < 8; ++b) {
                out[at + b] = bytes1(uint8(ids[i] >> (56 - 8 * b)));
            }
        }
    }

    function _maguWithTombstones(uint64[] memory ids) internal returns (MaguId id) {
        IMaguRegistry.MaguParams memory p = vectorParams(5, 2, 2 * FRAGS, 10);
        p.dimension = uint32(DIM);
        p.metric = IMaguRegistry.Metric.L2;
        id = createMagu(client, p);
        formMagu(id);
        uint256 key = MaguId.unwrap(id);
        isL2[key] = true;
        for (uint256 f; f <= FRAGS; ++f) {
            bytes memory data = f < FRAGS ? fragmentBytes(3, f) : _tombstones(ids);
            (, bytes32 fragmentRoot,,) = harness.fragmentTree(data, 0);
            fragmentsOf[key].push(data);
            rootsOf[key].push(fragmentRoot);
        }
        (bytes32 root,) = harness.maguTree(rootsOf[key], 0);
        commitFirstRoot(id, root, FRAGS + 1);
    }

    /// @dev Honest lists leave the deleted id out; the liar keeps it.
    function _withoutDeleted(bytes32[] memory list) internal view returns (bytes32[] memory out) {
        uint64 gone = uint64(uint256(deletedWord) >> 128);
        bytes32[] memory all = new bytes32[](list.length);
        uint256 n;
        for (uint256 i; i < list.length; ++i) {
            if (uint64(uint256(list[i]) >> 128) != gone) all[n++] = list[i];
        }
        out = prefix(all, n);
    }

    /// @dev A task in which every member reveals: the liar its list with the deleted hit, the
    /// others their lists without it.
    function _task() internal returns (uint256 taskId, address[] memory members, bytes32[][] memory lists) {
        taskId = submitTask(magu, q, K, FEE);
        members = membersOf(magu);
        lists = new bytes32[][](members.length);
        for (uint256 i; i < members.length; ++i) {
            bytes32[] memory all = hits(magu, q, members[i]);
            lists[i] = i == liarIndex ? prefix(all, K) : prefix(_withoutDeleted(all), K);
            commitList(taskId, members[i], lists[i]);
        }
        rollToReveals(taskId);
        for (uint256 i; i < members.length; ++i) {
            revealList(taskId, members[i], lists[i]);
        }
        assertEq(lists[liarIndex][0], deletedWord, "the liar's best entry is the deleted vector");
    }

    /// @dev The evidence: tombstone record `position` of the tombstone fragment, id slot `slot`.
    function _deletionProof(bytes32[] memory entries, uint256 index, uint32 position, uint32 slot)
        internal
        view
        returns (ISearchMarket.DeletionProof memory proof)
    {
        uint256 key = MaguId.unwrap(magu);
        bytes memory data = fragmentsOf[key][TOMB];
        proof.entries = entries;
        proof.index = index;
        proof.fragment = TOMB;
        proof.position = position;
        proof.slot = slot;
        proof.size = uint64(data.length);
        proof.leaves = new bytes[](1);
        proof.leafProofs = new bytes32[][](1);
        proof.leaves[0] = chunk(data, 0);
        (,,, proof.leafProofs[0]) = harness.fragmentTree(data, 0);
        (, proof.fragmentProof) = harness.maguTree(rootsOf[key], TOMB);
    }

    /// @notice The attack: the deleted vector is the query's best hit, so a member that ignores the
    /// tombstone puts it first; its distance and proof are true, so `dispute` cannot touch it.
    /// Nobody checking deletions, it makes the answer and the liar is paid for it.
    function test_attack_deletedVectorReturned_withoutTheCheck_isPaid() public {
        uint256 stake = registry.stakeOf(membersOf(magu)[liarIndex]);
        (uint256 taskId, address[] memory members, bytes32[][] memory lists) = _task();
        address liar = members[liarIndex];
        ISearchMarket.DisputeProof memory proof = proofOf(magu, q, lists[liarIndex], 0);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchDisputeRejected.selector, taskId, liar, 0));
        vm.prank(disputer);
        market.dispute(taskId, liar, proof);
        rollToFinalize(taskId);
        market.finalize(taskId, lists);
        assertGt(market.claimable(liar), 0, "the liar earned a share of the fee");
        assertEq(registry.stakeOf(liar), stake, "and kept its stake");
    }

    /// @notice With the check: the tombstone under the task's root proves the entry false; the
    /// liar loses `disputeSlash` (the disputer's share to the disputer) and its list leaves the answer.
    function test_attack_deletedVectorReturned_disputed_losesStake() public {
        (uint256 taskId, address[] memory members, bytes32[][] memory lists) = _task();
        address liar = members[liarIndex];
        uint256 stake = registry.stakeOf(liar);
        uint256 before = token.balanceOf(disputer);
        ISearchMarket.DeletionProof memory proof = _deletionProof(lists[liarIndex], 0, 0, 1);
        expectEntryDisputed(taskId, liar, 0, ISearchMarket.Falsehood.Deleted, deletedWord, 0, 0);
        vm.prank(disputer);
        market.disputeDeleted(taskId, liar, proof);
        assertEq(registry.stakeOf(liar), stake - DISPUTE_SLASH, "the liar is slashed");
        assertEq(token.balanceOf(disputer), before + DISPUTE_SLASH * DISPUTER_BPS / 10_000, "the disputer's share");
        assertTrue(market.memberTask(taskId, liar).disputed, "disputed");
        // Once disputed, not again.
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchAlreadyDisputed.selector, taskId, liar));
        vm.prank(disputer);
        market.disputeDeleted(taskId, liar, proof);
        lists[liarIndex] = new bytes32[](0);
        rollToFinalize(taskId);
        market.finalize(taskId, lists);
        assertEq(market.claimable(liar), 0, "the liar earns nothing");
        bytes32 gone = deletedWord;
        for (uint256 i; i < members.length; ++i) {
            if (i == liarIndex) continue;
            for (uint256 j; j < lists[i].length; ++j) {
                assertTrue(lists[i][j] != gone, "honest lists never held it");
            }
        }
        checkBooks();
        simReport("deleted vector returned, disputed", -int256(DISPUTE_SLASH), 0, "tombstone under the task root: slashed");
    }

    /// @notice Only a true tombstone convicts: another slot, a vector record, an honest member's
    /// entry, a fragment the task does not cover, a bad slot or a forged leaf are refused.
    function test_disputeDeleted_rejectsWhatIsNoDeletion() public {
        (uint256 taskId, address[] memory members, bytes32[][] memory lists) = _task();
        address liar = members[liarIndex];
        bytes32[] memory lie = lists[liarIndex];
        bytes memory rejected = abi.encodeWithSelector(ISearchMarket.SearchDisputeRejected.selector, taskId, liar, 0);
        // Slot 0 of record 0 deletes another id.
        _expectDeletedRevert(taskId, liar, _deletionProof(lie, 0, 0, 0), rejected);
        // Entry 1 (not deleted) against the right slot.
        _expectDeletedRevert(
            taskId, liar, _deletionProof(lie, 1, 0, 1), abi.encodeWithSelector(ISearchMarket.SearchDisputeRejected.selector, taskId, liar, 1)
        );
        // A vector record is no tombstone, even when its bytes are proven: fragment 0, record 0.
        ISearchMarket.DeletionProof memory p = _deletionProof(lie, 0, 0, 1);
        uint256 key = MaguId.unwrap(magu);
        bytes memory data = fragmentsOf[key][0];
        p.fragment = 0;
        p.size = uint64(data.length);
        p.leaves[0] = chunk(data, 0);
        (,,, p.leafProofs[0]) = harness.fragmentTree(data, 0);
        (, p.fragmentProof) = harness.maguTree(rootsOf[key], 0);
        _expectDeletedRevert(taskId, liar, p, rejected);
        // A record past the tombstone fragment's end.
        _expectDeletedRevert(taskId, liar, _deletionProof(lie, 0, 2, 1), rejected);
        // Beyond the task's fragments (a tombstone committed after it would be there).
        p = _deletionProof(lie, 0, 0, 1);
        p.fragment = FRAGS + 1;
        _expectDeletedRevert(taskId, liar, p, abi.encodeWithSelector(ISearchMarket.SearchMalformedProof.selector, bytes32("fragment"), FRAGS + 1));
        // A slot past the record's two.
        _expectDeletedRevert(
            taskId, liar, _deletionProof(lie, 0, 0, 2), abi.encodeWithSelector(ISearchMarket.SearchMalformedProof.selector, bytes32("slot"), 2)
        );
        // A forged tombstone leaf (slot 0 edited, slot 1 still the entry's id) does not prove
        // against the task's root.
        p = _deletionProof(lie, 0, 0, 1);
        bytes memory forged = p.leaves[0];
        forged[15] = bytes1(uint8(forged[15]) ^ 1);
        p.leaves[0] = forged;
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchInvalidProof.selector, bytes32("fragmentProof"), TOMB));
        vm.prank(disputer);
        market.disputeDeleted(taskId, liar, p);
        // An honest member whose list never held the deleted id cannot be convicted with it.
        uint256 honest = liarIndex == 0 ? 1 : 0;
        if (lists[honest].length > 0) {
            _expectDeletedRevert(
                taskId,
                members[honest],
                _deletionProof(lists[honest], 0, 0, 1),
                abi.encodeWithSelector(ISearchMarket.SearchDisputeRejected.selector, taskId, members[honest], 0)
            );
        }
        // Too late.
        _expectTooLate(taskId, liar, _deletionProof(lie, 0, 0, 1));
    }

    /// @dev Past the dispute window, `proof` against `member` is refused.
    function _expectTooLate(uint256 taskId, address member, ISearchMarket.DeletionProof memory proof) internal {
        rollToFinalize(taskId);
        ISearchMarket.TaskInfo memory t = market.task(taskId);
        _expectDeletedRevert(
            taskId,
            member,
            proof,
            abi.encodeWithSelector(ISearchMarket.SearchNotInWindow.selector, taskId, t.commitDeadline + 1, t.disputeDeadline)
        );
    }

    function _expectDeletedRevert(uint256 taskId, address member, ISearchMarket.DeletionProof memory proof, bytes memory reason)
        internal
    {
        vm.expectRevert(reason);
        vm.prank(disputer);
        market.disputeDeleted(taskId, member, proof);
    }

    /// @notice The attack on control records: a tombstone record read as a vector has a true
    /// distance, so a member could reveal it as a hit (as it could a payload chunk). Its id is a
    /// control id: `dispute` convicts it without data (ControlRecord).
    function test_attack_controlRecordRevealed_isDisputed() public {
        bytes memory tomb = fragmentsOf[MaguId.unwrap(magu)][TOMB];
        bytes32 fake = word(distanceIn(tomb, true, q, 0), TOMBSTONE_ID, TOMB, 0);
        uint256 holder = holderIndex(magu, TOMB);
        (uint256 taskId, address[] memory members,) = answeredTask(magu, q, K, holder, one(fake));
        address cheat = members[holder];
        uint256 stake = registry.stakeOf(cheat);
        ISearchMarket.DisputeProof memory proof;
        proof.query = encodeQuery(q);
        proof.entries = one(fake);
        proof.index = 0;
        expectEntryDisputed(taskId, cheat, 0, ISearchMarket.Falsehood.ControlRecord, fake, 0, 0);
        vm.prank(disputer);
        market.dispute(taskId, cheat, proof);
        assertEq(registry.stakeOf(cheat), stake - DISPUTE_SLASH, "slashed");
    }
}
