// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {DeployedSearchMarket as SearchMarket} from "./utils/Deployed.sol";
import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {ISearchMarket} from "../../contracts/interfaces/ISearchMarket.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {ReentrantToken} from "./utils/ReentrantToken.sol";
import {SearchFixture} from "./utils/SearchFixture.sol";

/// @notice SearchMarket: the task life cycle of docs/SEARCH.md, every revert path, disputes of
/// each kind of false entry, the copier, the three metrics, and the merge against brute force (fuzzed).
contract SearchMarketTest is SearchFixture {
    // ------------------------------------------------------------ construction and views

    function test_constructor_rejectsEachBadParameter() public {
        ISearchMarket.Config memory c;
        bytes32[12] memory fields = [
            bytes32("token"),
            "nodeRegistry",
            "maguRegistry",
            "commitBlocks",
            "revealBlocks",
            "disputeBlocks",
            "windows",
            "maxK",
            "disputeSlash",
            "disputerBps",
            "slashSink",
            "revealPenalty"
        ];
        for (uint256 i; i < fields.length; ++i) {
            c = searchConfig();
            int256 value;
            if (i == 0) c.token = address(0);
            if (i == 1) c.nodeRegistry = address(0);
            if (i == 2) c.maguRegistry = address(0);
            if (i == 3) c.commitBlocks = 0;
            if (i == 4) c.revealBlocks = 0;
            if (i == 5) c.disputeBlocks = 0;
            if (i == 6) {
                c.commitBlocks = type(uint32).max;
                value = int256(uint256(type(uint32).max) + REVEAL_BLOCKS + DISPUTE_BLOCKS);
            }
            if (i == 7) c.maxK = 0;
            if (i == 8) c.disputeSlash = 0;
            if (i == 9) (c.disputerBps, value) = (10_001, 10_001);
            if (i == 10) c.slashSink = address(0);
            if (i == 11) (c.revealPenalty, value) = (-1, -1);
            bytes memory code = artifactCode("SearchMarket.sol:SearchMarket", abi.encode(c));
            vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchInvalidConfig.selector, fields[i], value));
            create(code);
        }
    }

    function test_config_returnsTheDeploymentParameters() public view {
        ISearchMarket.Config memory c = market.config();
        assertEq(keccak256(abi.encode(c)), keccak256(abi.encode(searchConfig())), "config");
    }

    function test_views_revertForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchUnknownTask.selector, 1));
        market.task(1);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchUnknownTask.selector, 1));
        market.memberTask(1, client);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchUnknownTask.selector, 0));
        market.committers(0);
    }

    // ------------------------------------------------------------ submit

    function test_submit_snapshotsTheMaguAndEscrowsTheFee() public {
        int16[] memory q = queryOf(1);
        uint256 start = blockNumber();
        fund(client, FEE);
        vm.prank(client);
        token.approve(address(market), FEE);
        vm.expectEmit(true, true, true, true, address(market));
        emit ISearchMarket.TaskSubmitted(
            1,
            l2Magu,
            client,
            encodeQuery(q),
            K,
            FEE,
            uint64(start + COMMIT_BLOCKS),
            uint64(start + COMMIT_BLOCKS + REVEAL_BLOCKS),
            uint64(start + COMMIT_BLOCKS + REVEAL_BLOCKS + DISPUTE_BLOCKS)
        );
        vm.prank(client);
        uint256 taskId = market.submit(l2Magu, encodeQuery(q), K, FEE);
        assertEq(taskId, 1, "first id");
        assertEq(market.taskCount(), 1, "count");

        ISearchMarket.TaskInfo memory t = market.task(taskId);
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(l2Magu);
        assertEq(MaguId.unwrap(t.magu), MaguId.unwrap(l2Magu), "magu");
        assertEq(t.submitter, client, "submitter");
        assertEq(t.queryHash, keccak256(encodeQuery(q)), "query hash");
        assertEq(t.k, K, "k");
        assertEq(t.fee, FEE, "fee");
        assertEq(t.root, info.root, "root");
        assertEq(t.fragmentCount, FRAGS, "fragments");
        assertEq(t.dimension, DIM, "dimension");
        assertTrue(t.metric == IMaguRegistry.Metric.L2, "metric");
        assertEq(t.submitBlock, start, "submit block");
        assertEq(t.committers, 0, "no committers");
        assertFalse(t.finalized, "open");
        assertEq(t.resultHash, bytes32(0), "no result");
        assertEq(token.balanceOf(address(market)), FEE, "escrowed");
        checkBooks();

        // A later append does not change what the task is checked against.
        bytes32[] memory grown = new bytes32[](FRAGS + 1);
        for (uint256 i; i < FRAGS; ++i) {
            grown[i] = rootsOf[MaguId.unwrap(l2Magu)][i];
        }
        grown[FRAGS] = keccak256("other data");
        bytes32 grownRoot = maguRootOf(grown);
        bytes[] memory acks = acksFor(l2Magu, grownRoot, FRAGS + 1, type(uint256).max);
        bytes32[] memory extension = appendProof(grown, FRAGS);
        vm.prank(client);
        magus.commitData(l2Magu, grownRoot, FRAGS + 1, "", extension, acks);
        assertEq(market.task(taskId).root, info.root, "root fixed at submission");
        assertEq(market.task(taskId).fragmentCount, FRAGS, "count fixed at submission");
    }

    function test_submit_acceptsZeroFeeAndMaxK() public {
        uint256 taskId = submitTask(l2Magu, queryOf(1), MAX_K, 0);
        assertEq(market.task(taskId).k, MAX_K, "k = maxK");
        assertEq(token.balanceOf(address(market)), 0, "nothing escrowed");
    }

    function test_submit_revertsForMaguNotActive() public {
        bytes memory q = encodeQuery(queryOf(1));
        vm.expectRevert(
            abi.encodeWithSelector(
                ISearchMarket.SearchMaguNotActive.selector, MaguId.wrap(999), IMaguRegistry.Status.None
            )
        );
        market.submit(MaguId.wrap(999), q, K, 0);

        IMaguRegistry.MaguParams memory p = vectorParams(5, 2, FRAGS, 10);
        p.dimension = uint32(DIM);
        MaguId requested = createMagu(client, p);
        vm.expectRevert(
            abi.encodeWithSelector(ISearchMarket.SearchMaguNotActive.selector, requested, IMaguRegistry.Status.Requested)
        );
        market.submit(requested, q, K, 0);
    }

    function test_submit_revertsForBlobMagu() public {
        MaguId blob = setupMagu(client, blobParams(5, 3, 2, 10, 4), 7, 5);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchNotVectorMagu.selector, blob));
        market.submit(blob, encodeQuery(queryOf(1)), K, 0);
    }

    function test_submit_revertsWithoutData() public {
        IMaguRegistry.MaguParams memory p = vectorParams(5, 2, FRAGS, 10);
        p.dimension = uint32(DIM);
        MaguId empty = createMagu(client, p);
        formMagu(empty);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchNoData.selector, empty));
        market.submit(empty, encodeQuery(queryOf(1)), K, 0);
    }

    function test_submit_revertsOnWrongQueryLength() public {
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchInvalidQuery.selector, 2 * DIM - 1, 2 * DIM));
        market.submit(l2Magu, new bytes(2 * DIM - 1), K, 0);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchInvalidQuery.selector, 0, 2 * DIM));
        market.submit(l2Magu, "", K, 0);
    }

    function test_submit_revertsOnKOutOfRange() public {
        bytes memory q = encodeQuery(queryOf(1));
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchInvalidK.selector, 0, MAX_K));
        market.submit(l2Magu, q, 0, 0);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchInvalidK.selector, MAX_K + 1, MAX_K));
        market.submit(l2Magu, q, MAX_K + 1, 0);
    }

    function test_submit_revertsOnFeeTooLarge() public {
        uint256 fee = uint256(type(uint96).max) + 1;
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchFeeTooLarge.selector, fee));
        market.submit(l2Magu, encodeQuery(queryOf(1)), K, fee);
    }

    // ------------------------------------------------------------ commit

    function test_commit_recordsCommitmentsInOrder() public {
        uint256 taskId = submitTask(l2Magu, queryOf(1), K, FEE);
        address[] memory members = membersOf(l2Magu);
        for (uint256 i; i < members.length; ++i) {
            address m = members[members.length - 1 - i];
            bytes32 c = keccak256(abi.encode("c", i));
            vm.expectEmit(true, true, false, true, address(market));
            emit ISearchMarket.ResultCommitted(taskId, m, c);
            vm.prank(m);
            market.commit(taskId, c);
            ISearchMarket.MemberTask memory mt = market.memberTask(taskId, m);
            assertEq(mt.commitment, c, "commitment");
            assertFalse(mt.revealed, "not revealed");
        }
        address[] memory order = market.committers(taskId);
        assertEq(order.length, members.length, "all committed");
        for (uint256 i; i < members.length; ++i) {
            assertEq(order[i], members[members.length - 1 - i], "commit order");
        }
        assertEq(market.task(taskId).committers, members.length, "count");
    }

    function test_commit_revertsForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchUnknownTask.selector, 7));
        market.commit(7, bytes32(uint256(1)));
    }

    function test_commit_acceptsUpToTheDeadlineOnly() public {
        uint256 taskId = submitTask(l2Magu, queryOf(1), K, FEE);
        address[] memory members = membersOf(l2Magu);
        ISearchMarket.TaskInfo memory t = market.task(taskId);
        vm.roll(t.commitDeadline);
        vm.prank(members[0]);
        market.commit(taskId, bytes32(uint256(1)));
        vm.roll(t.commitDeadline + 1);
        vm.expectRevert(
            abi.encodeWithSelector(ISearchMarket.SearchNotInWindow.selector, taskId, t.submitBlock, t.commitDeadline)
        );
        vm.prank(members[1]);
        market.commit(taskId, bytes32(uint256(1)));
    }

    function test_commit_revertsOnZeroCommitment() public {
        uint256 taskId = submitTask(l2Magu, queryOf(1), K, FEE);
        address m = membersOf(l2Magu)[0];
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchZeroCommitment.selector, taskId));
        vm.prank(m);
        market.commit(taskId, bytes32(0));
    }

    function test_commit_revertsForNonMembers() public {
        uint256 taskId = submitTask(l2Magu, queryOf(1), K, FEE);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchNotMember.selector, taskId, client));
        vm.prank(client);
        market.commit(taskId, bytes32(uint256(1)));

        // A registered node outside this Magu, and a member that left it.
        address[] memory members = membersOf(l2Magu);
        address outsider;
        for (uint256 i; i < registry.nodeCount() && outsider == address(0); ++i) {
            address node = registry.nodeAt(i);
            bool inside;
            for (uint256 j; j < members.length; ++j) {
                if (node == members[j]) inside = true;
            }
            if (!inside) outsider = node;
        }
        assertNotEq(outsider, address(0), "six nodes, five members: one is outside");
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchNotMember.selector, taskId, outsider));
        vm.prank(outsider);
        market.commit(taskId, bytes32(uint256(1)));

        vm.prank(members[0]);
        magus.leave(l2Magu);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchNotMember.selector, taskId, members[0]));
        vm.prank(members[0]);
        market.commit(taskId, bytes32(uint256(1)));
    }

    function test_commit_revertsTwice() public {
        uint256 taskId = submitTask(l2Magu, queryOf(1), K, FEE);
        address m = membersOf(l2Magu)[2];
        vm.prank(m);
        market.commit(taskId, bytes32(uint256(1)));
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchAlreadyCommitted.selector, taskId, m));
        vm.prank(m);
        market.commit(taskId, bytes32(uint256(2)));
    }

    // ------------------------------------------------------------ reveal

    function test_reveal_storesTheListHashAndEmitsTheList() public {
        int16[] memory q = queryOf(1);
        uint256 taskId = submitTask(l2Magu, q, K, FEE);
        address m = membersOf(l2Magu)[0];
        bytes32[] memory list = honestList(l2Magu, q, m, K);
        commitList(taskId, m, list);
        rollToReveals(taskId);
        vm.expectEmit(true, true, false, true, address(market));
        emit ISearchMarket.ResultRevealed(taskId, m, list);
        revealList(taskId, m, list);
        ISearchMarket.MemberTask memory mt = market.memberTask(taskId, m);
        assertTrue(mt.revealed, "revealed");
        assertFalse(mt.disputed, "not disputed");
        assertEq(mt.listHash, keccak256(abi.encodePacked(list)), "list hash");
        assertEq(mt.commitment, commitmentOf(taskId, m, list), "commitment kept");
    }

    function test_reveal_acceptsAnEmptyList() public {
        uint256 taskId = submitTask(l2Magu, queryOf(1), K, FEE);
        address m = membersOf(l2Magu)[0];
        commitList(taskId, m, new bytes32[](0));
        rollToReveals(taskId);
        revealList(taskId, m, new bytes32[](0));
        assertEq(market.memberTask(taskId, m).listHash, keccak256(""), "hash of the empty list");
    }

    function test_reveal_revertsForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchUnknownTask.selector, 3));
        market.reveal(3, new bytes32[](0), bytes32(0));
    }

    function test_reveal_opensAfterCommitsCloseAndClosesAtItsDeadline() public {
        int16[] memory q = queryOf(1);
        uint256 taskId = submitTask(l2Magu, q, K, FEE);
        address[] memory members = membersOf(l2Magu);
        bytes32[] memory list = honestList(l2Magu, q, members[0], K);
        commitList(taskId, members[0], list);
        commitList(taskId, members[1], list);
        ISearchMarket.TaskInfo memory t = market.task(taskId);
        bytes memory closed = abi.encodeWithSelector(
            ISearchMarket.SearchNotInWindow.selector, taskId, t.commitDeadline + 1, t.revealDeadline
        );
        vm.roll(t.commitDeadline);
        vm.expectRevert(closed);
        revealList(taskId, members[0], list);
        vm.roll(t.revealDeadline);
        revealList(taskId, members[0], list);
        vm.roll(t.revealDeadline + 1);
        vm.expectRevert(closed);
        vm.prank(members[1]);
        market.reveal(taskId, list, saltOf(members[1]));
    }

    function test_reveal_revertsWithoutCommitmentAndTwice() public {
        uint256 taskId = submitTask(l2Magu, queryOf(1), K, FEE);
        address m = membersOf(l2Magu)[0];
        commitList(taskId, m, new bytes32[](0));
        rollToReveals(taskId);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchNotCommitted.selector, taskId, client));
        vm.prank(client);
        market.reveal(taskId, new bytes32[](0), bytes32(0));
        revealList(taskId, m, new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchAlreadyRevealed.selector, taskId, m));
        revealList(taskId, m, new bytes32[](0));
    }

    function test_reveal_revertsOnCommitmentMismatch() public {
        int16[] memory q = queryOf(1);
        uint256 taskId = submitTask(l2Magu, q, K, FEE);
        address m = membersOf(l2Magu)[0];
        bytes32[] memory list = honestList(l2Magu, q, m, K);
        commitList(taskId, m, list);
        rollToReveals(taskId);
        bytes memory mismatch = abi.encodeWithSelector(ISearchMarket.SearchCommitmentMismatch.selector, taskId, m);
        vm.expectRevert(mismatch);
        vm.prank(m);
        market.reveal(taskId, list, bytes32(uint256(saltOf(m)) ^ 1)); // wrong salt
        vm.expectRevert(mismatch);
        revealList(taskId, m, prefix(list, K - 1)); // another list
    }

    /// @dev Commits `list` for member 0 and expects its reveal to revert with `reason`.
    function _expectMalformed(bytes32[] memory list, bytes memory reason) internal {
        uint256 taskId = submitTask(l2Magu, queryOf(1), K, FEE);
        address m = membersOf(l2Magu)[0];
        commitList(taskId, m, list);
        rollToReveals(taskId);
        vm.expectRevert(reason);
        revealList(taskId, m, list);
    }

    function test_reveal_revertsOnTooLongList() public {
        bytes32[] memory list = new bytes32[](K + 1);
        for (uint256 i; i < list.length; ++i) {
            list[i] = word(int256(i), 1, 0, 0);
        }
        _expectMalformed(list, abi.encodeWithSelector(ISearchMarket.SearchListTooLong.selector, K + 1, K));
    }

    function test_reveal_revertsOnUnsortedOrRepeatedEntries() public {
        bytes32[] memory list = new bytes32[](3);
        list[0] = word(1, 1, 0, 0);
        list[1] = word(2, 1, 0, 0);
        list[2] = word(2, 1, 0, 0);
        _expectMalformed(list, abi.encodeWithSelector(ISearchMarket.SearchEntriesNotIncreasing.selector, 2));
        list[2] = word(-5, 9, 0, 0); // negative distances order before positive ones
        _expectMalformed(list, abi.encodeWithSelector(ISearchMarket.SearchEntriesNotIncreasing.selector, 2));
    }

    function test_reveal_revertsOnLowBitsSet() public {
        bytes32[] memory list = new bytes32[](2);
        list[0] = word(1, 1, 0, 0);
        list[1] = bytes32(uint256(word(3, 1, 0, 0)) | 1);
        _expectMalformed(list, abi.encodeWithSelector(ISearchMarket.SearchEntryLowBitsSet.selector, 1));
    }

    function test_reveal_revertsOnFragmentOutOfRange() public {
        bytes32[] memory list = new bytes32[](2);
        list[0] = word(1, 1, FRAGS - 1, 0);
        list[1] = word(1, 1, FRAGS, 0);
        _expectMalformed(
            list, abi.encodeWithSelector(ISearchMarket.SearchEntryFragmentOutOfRange.selector, 1, FRAGS, FRAGS)
        );
    }

    // ------------------------------------------------------------ a whole task

    function test_task_fiveMembersOverlappingListsGiveTheTopKAndSplitTheFee() public {
        int16[] memory q = queryOf(3);
        (uint256 taskId, address[] memory members, bytes32[][] memory lists) = honestTask(l2Magu, q, K);
        (bytes32[] memory expected, uint256[] memory credits, uint256 total) = bruteForce(lists, K);
        bytes32[] memory top = truth(l2Magu, q, K);
        assertEq(keccak256(abi.encode(expected)), keccak256(abi.encode(top)), "the lists hold the true top-k");
        assertGt(total, K, "replicas: final entries are credited to more than one member");

        rollToFinalize(taskId);
        uint256 per = FEE / total;
        uint256 refund = FEE - per * total;
        vm.expectEmit(true, false, false, true, address(market));
        emit ISearchMarket.TaskFinalized(taskId, top, total, per, refund);
        market.finalize(taskId, lists);

        ISearchMarket.TaskInfo memory t = market.task(taskId);
        assertTrue(t.finalized, "finalized");
        assertEq(t.resultHash, keccak256(abi.encodePacked(top)), "result hash");
        uint256 paid;
        for (uint256 i; i < members.length; ++i) {
            assertEq(market.claimable(members[i]), credits[i] * per, "member pay = credits x per credit");
            assertEq(registry.nodeInfo(members[i]).reputation, 0, "revealers keep their reputation");
            paid += credits[i] * per;
        }
        assertEq(market.claimable(client), refund, "remainder to the submitter");
        assertEq(paid + refund, FEE, "the whole fee is credited");
        assertEq(market.totalHeld(), FEE, "finalize only moves the fee into claimable");
        checkBooks();

        for (uint256 i; i < members.length; ++i) {
            if (credits[i] == 0) continue;
            uint256 before = token.balanceOf(members[i]);
            vm.expectEmit(true, false, false, true, address(market));
            emit ISearchMarket.Claimed(members[i], credits[i] * per);
            vm.prank(members[i]);
            market.claim();
            assertEq(token.balanceOf(members[i]), before + credits[i] * per, "paid out");
            assertEq(market.claimable(members[i]), 0, "claimed");
        }
        checkBooks();
    }

    function test_task_tiesAreBrokenById() public {
        // The query is record (2, 10); records (0, 40) and (4, 7) are copies of it under other ids.
        int16[] memory q = queryAt(1, 2, 10);
        (uint256 taskId,, bytes32[][] memory lists) = honestTask(l2Magu, q, K);
        bytes32[] memory top = truth(l2Magu, q, K);
        rollToFinalize(taskId);
        market.finalize(taskId, lists);
        assertEq(market.task(taskId).resultHash, keccak256(abi.encodePacked(top)), "answer");

        uint64[3] memory ids = [recordId(2, 10), recordId(0, 40), recordId(4, 7)];
        for (uint256 i; i < 3; ++i) {
            assertEq(uint256(top[i]) >> 192, 1 << 63, "distance 0 first");
        }
        assertLt(uint64(uint256(top[0]) >> 128), uint64(uint256(top[1]) >> 128), "ascending ids at equal distance");
        assertLt(uint64(uint256(top[1]) >> 128), uint64(uint256(top[2]) >> 128), "ascending ids at equal distance");
        uint256 found;
        for (uint256 i; i < 3; ++i) {
            for (uint256 j; j < 3; ++j) {
                if (uint64(uint256(top[i]) >> 128) == ids[j]) ++found;
            }
        }
        assertEq(found, 3, "the three copies");
        assertTrue(ids[1] < ids[0], "(ids are not in fragment order, so the tie is broken by id, not by fragment)");
        for (uint256 i = 1; i < top.length; ++i) {
            assertLt(uint256(top[i - 1]), uint256(top[i]), "ascending words");
        }
    }

    function test_task_innerProductMetric() public {
        int16[] memory q = queryOf(4);
        (uint256 taskId, address[] memory members, bytes32[][] memory lists) = honestTask(ipMagu, q, K);
        bytes32[] memory top = truth(ipMagu, q, K);
        assertTrue(distanceOf(top[0]) < 0, "best inner product is negated");

        // A true entry stands.
        uint256 b = busyIndex(ipMagu);
        ISearchMarket.DisputeProof memory proof = proofOf(ipMagu, q, lists[b], 0);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchDisputeRejected.selector, taskId, members[b], 0));
        vm.prank(disputer);
        market.dispute(taskId, members[b], proof);

        rollToFinalize(taskId);
        market.finalize(taskId, lists);
        assertEq(market.task(taskId).resultHash, keccak256(abi.encodePacked(top)), "answer");
        checkBooks();
    }

    function test_task_withoutCommitters_refundsTheSubmitter() public {
        uint256 taskId = submitTask(l2Magu, queryOf(1), K, FEE);
        rollToFinalize(taskId);
        vm.expectEmit(true, false, false, true, address(market));
        emit ISearchMarket.TaskFinalized(taskId, new bytes32[](0), 0, 0, FEE);
        market.finalize(taskId, new bytes32[][](0));
        assertEq(market.claimable(client), FEE, "refund");
        checkBooks();
    }

    function test_finalize_nonRevealerLosesReputationAndIsLeftOut() public {
        int16[] memory q = queryOf(5);
        uint256 taskId = submitTask(l2Magu, q, K, FEE);
        address[] memory members = membersOf(l2Magu);
        bytes32[][] memory lists = new bytes32[][](members.length);
        for (uint256 i; i < members.length; ++i) {
            lists[i] = honestList(l2Magu, q, members[i], K);
            commitList(taskId, members[i], lists[i]);
        }
        rollToReveals(taskId);
        for (uint256 i; i < members.length - 1; ++i) {
            revealList(taskId, members[i], lists[i]);
        }
        address silent = members[members.length - 1];
        rollToFinalize(taskId);

        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchListMismatch.selector, taskId, silent));
        market.finalize(taskId, lists); // its list, though it never revealed it

        lists[members.length - 1] = new bytes32[](0);
        (bytes32[] memory expected,,) = bruteForce(lists, K);
        market.finalize(taskId, lists);
        assertEq(market.task(taskId).resultHash, keccak256(abi.encodePacked(expected)), "answer from the revealed lists");
        assertEq(registry.nodeInfo(silent).reputation, -REVEAL_PENALTY, "penalised");
        assertEq(market.claimable(silent), 0, "unpaid");
        assertEq(registry.nodeInfo(members[0]).reputation, 0, "revealers untouched");
    }

    // ------------------------------------------------------------ finalize reverts

    function test_finalize_revertsForUnknownTask() public {
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchUnknownTask.selector, 9));
        market.finalize(9, new bytes32[][](0));
    }

    function test_finalize_revertsUpToTheDisputeDeadline() public {
        uint256 taskId = submitTask(l2Magu, queryOf(1), K, FEE);
        ISearchMarket.TaskInfo memory t = market.task(taskId);
        vm.roll(t.disputeDeadline);
        vm.expectRevert(
            abi.encodeWithSelector(
                ISearchMarket.SearchNotInWindow.selector, taskId, t.disputeDeadline + 1, type(uint64).max
            )
        );
        market.finalize(taskId, new bytes32[][](0));
    }

    function test_finalize_revertsOnWrongListCountOrList() public {
        int16[] memory q = queryOf(1);
        (uint256 taskId, address[] memory members, bytes32[][] memory lists) = honestTask(l2Magu, q, K);
        rollToFinalize(taskId);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchListCount.selector, 5, 4));
        market.finalize(taskId, new bytes32[][](4));

        uint256 b = busyIndex(l2Magu);
        bytes32[] memory kept = lists[b];
        lists[b] = prefix(kept, K - 1);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchListMismatch.selector, taskId, members[b]));
        market.finalize(taskId, lists);
        lists[b] = kept;
        if (keccak256(abi.encode(lists[0])) != keccak256(abi.encode(lists[1]))) {
            (lists[0], lists[1]) = (lists[1], lists[0]); // not in commit order
            vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchListMismatch.selector, taskId, members[0]));
            market.finalize(taskId, lists);
            (lists[0], lists[1]) = (lists[1], lists[0]);
        }

        market.finalize(taskId, lists);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchAlreadyFinalized.selector, taskId));
        market.finalize(taskId, lists);
    }

    function test_claim_revertsWithNothingToClaim() public {
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchNothingToClaim.selector, client));
        vm.prank(client);
        market.claim();
    }

    // ------------------------------------------------------------ disputes

    /// @dev A task where member `liarIndex` reveals `lie` and the others their honest lists.
    function _taskWithLiar(MaguId id, int16[] memory q, uint256 liarIndex, bytes32[] memory lie)
        internal
        returns (uint256 taskId, address[] memory members, bytes32[][] memory lists)
    {
        return answeredTask(id, q, K, liarIndex, lie);
    }

    /// @dev Disputes entry `index` of the liar's list, checks the slash, the event and that the
    /// answer left is the true top-k; `lie` must be false for `falsehood`.
    function _disputeAndFinalize(
        MaguId id,
        int16[] memory q,
        bytes32[] memory lie,
        uint256 index,
        ISearchMarket.Falsehood falsehood,
        uint64 actualId,
        int64 actualDistance
    ) internal {
        // The liar holds the disputed entry's fragment: the dispute is about its data.
        uint256 liarIndex = holderIndex(id, uint32(uint256(lie[index]) >> 96));
        (uint256 taskId, address[] memory members, bytes32[][] memory lists) = _taskWithLiar(id, q, liarIndex, lie);
        address liar = members[liarIndex];
        ISearchMarket.DisputeProof memory proof = proofOf(id, q, lie, index);
        _disputeSlashes(taskId, liar, proof, falsehood, actualId, actualDistance);

        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchAlreadyDisputed.selector, taskId, liar));
        vm.prank(disputer);
        market.dispute(taskId, liar, proof);

        rollToFinalize(taskId);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchListMismatch.selector, taskId, liar));
        market.finalize(taskId, lists); // the disputed list may not take part
        lists[liarIndex] = new bytes32[](0);
        market.finalize(taskId, lists);
        bytes32[] memory top = truth(id, q, K);
        assertEq(market.task(taskId).resultHash, keccak256(abi.encodePacked(top)), "answer unaffected by the lie");
        assertEq(market.claimable(liar), 0, "the liar earns nothing");
        assertEq(registry.nodeInfo(liar).reputation, 0, "a disputed member revealed: no reveal penalty");
        checkBooks();
    }

    /// @dev Disputes entry `proof.index` of `liar`'s list in `taskId` (`falsehood`, the actual id
    /// and distance given): the event, the slash split between the disputer and the reward pool.
    function _disputeSlashes(
        uint256 taskId,
        address liar,
        ISearchMarket.DisputeProof memory proof,
        ISearchMarket.Falsehood falsehood,
        uint64 actualId,
        int64 actualDistance
    ) internal {
        // The liar's stake, the disputer's and the reward pool's balances before the dispute.
        uint256[3] memory before = [registry.stakeOf(liar), token.balanceOf(disputer), token.balanceOf(address(rewards))];
        expectEntryDisputed(taskId, liar, proof.index, falsehood, proof.entries[proof.index], actualId, actualDistance);
        vm.prank(disputer);
        market.dispute(taskId, liar, proof);
        uint256 toDisputer = DISPUTE_SLASH * DISPUTER_BPS / 10_000;
        assertEq(token.balanceOf(disputer), before[1] + toDisputer, "the disputer's share of the slash");
        assertEq(token.balanceOf(address(rewards)), before[2] + DISPUTE_SLASH - toDisputer, "the rest to the reward pool");
        assertEq(registry.stakeOf(liar), before[0] - DISPUTE_SLASH, "liar slashed");
        assertTrue(market.memberTask(taskId, liar).disputed, "disputed");
        assertEq(registry.totalHeld(), token.balanceOf(address(registry)), "registry books");
    }

    /// @notice Economic attack (issue 11.1, 24.3): a member reveals a false entry and disputes it
    /// from a second address of its own, at zero fee, to move its locked stake out past unbonding.
    /// The disputer now gets only disputerBps of the slash: each round costs the pair the rest.
    function test_attack_selfDispute_costsTheAttackerTheRestOfTheSlash() public {
        int16[] memory q = queryOf(21);
        uint256 liarIndex = busyIndex(l2Magu);
        address liar = membersOf(l2Magu)[liarIndex];
        address second = newActor("second");
        bytes32[] memory lie = honestList(l2Magu, q, liar, K);
        uint256 w = uint256(lie[0]);
        int256 d = distanceOf(bytes32(w));
        lie[0] = word(d - 1, uint64(w >> 128), uint32(w >> 96), uint32(w >> 64));
        uint256 wealthBefore = registry.stakeOf(liar) + token.balanceOf(second) + token.balanceOf(liar);
        uint256 rounds = 3;
        for (uint256 r; r < rounds; ++r) {
            (uint256 taskId,,) = _taskWithLiar(l2Magu, q, liarIndex, lie);
            ISearchMarket.DisputeProof memory proof = proofOf(l2Magu, q, lie, 0);
            vm.prank(second);
            market.dispute(taskId, liar, proof);
        }
        uint256 toSecond = rounds * (DISPUTE_SLASH * DISPUTER_BPS / 10_000);
        assertEq(token.balanceOf(second), toSecond, "the second address got the disputer's share");
        uint256 wealthAfter = registry.stakeOf(liar) + token.balanceOf(second) + token.balanceOf(liar);
        assertEq(wealthBefore - wealthAfter, rounds * DISPUTE_SLASH - toSecond, "the attacker lost the rest of every slash");
        assertGt(wealthBefore, wealthAfter, "at a loss");
        simReport(
            "self-dispute (11.1)",
            delta(wealthBefore, wealthAfter),
            int256(rounds * DISPUTE_SLASH - toSecond),
            "the disputer's share only; the rest to the pool"
        );
    }

    /// @notice Issue 11.7: a member holding nothing copied an earlier task's revealed answer to the
    /// same query and earned credits. Entries from fragments it is not placed on are now a
    /// falsehood of their own (NotHolder), disputable without any data: the copier is slashed.
    function test_attack_copiedAnswer_notHolderIsDisputed() public {
        int16[] memory q = queryOf(23);
        address[] memory members = membersOf(l2Magu);
        uint256 source = busyIndex(l2Magu);
        bytes32[] memory answer = honestList(l2Magu, q, members[source], K);
        uint256 fragment = uint32(uint256(answer[0]) >> 96);
        uint256 copier = members.length;
        for (uint256 i; i < members.length; ++i) {
            if (i != source && !holds(l2Magu, fragment, members[i])) {
                copier = i;
                break;
            }
        }
        require(copier < members.length, "some member does not hold the fragment");
        address cheat = members[copier];
        (uint256 taskId,,) = _taskWithLiar(l2Magu, q, copier, answer); // the copier reveals the copy
        ISearchMarket.DisputeProof memory proof;
        proof.query = encodeQuery(q);
        proof.entries = answer;
        proof.index = 0;
        uint256 stake = registry.stakeOf(cheat);
        uint256 before = token.balanceOf(disputer);
        expectEntryDisputed(taskId, cheat, 0, ISearchMarket.Falsehood.NotHolder, answer[0], 0, 0);
        vm.prank(disputer);
        market.dispute(taskId, cheat, proof);
        assertEq(registry.stakeOf(cheat), stake - DISPUTE_SLASH, "the copier is slashed");
        assertEq(token.balanceOf(disputer), before + DISPUTE_SLASH * DISPUTER_BPS / 10_000, "the disputer's share");
        // The honest source's identical list is not disputable this way.
        proof.entries = answer;
        vm.expectRevert();
        vm.prank(disputer);
        market.dispute(taskId, members[source], proof);
        simReport("copied answer (11.7)", -int256(DISPUTE_SLASH), 0, "entries off its placement: disputed, slashed");
    }

    /// @notice Issue 24.3: a member whose stake no longer backs its memberships (here drained by
    /// slashes) cannot commit to tasks any more, and anyone may drop it from its Magus.
    function test_attack_drainedNodeKeepsWorking_refusedAndDropped() public {
        address[] memory members = membersOf(l2Magu);
        address drained = members[0];
        uint256 stake = registry.stakeOf(drained);
        address[] memory to = new address[](1);
        to[0] = address(rewards);
        uint256[] memory amounts = new uint256[](1);
        amounts[0] = stake;
        vm.prank(address(market));
        registry.slash(drained, stake, to, amounts);
        assertFalse(registry.isBacked(drained), "drained");

        uint256 taskId = submitTask(l2Magu, queryOf(22), K, FEE);
        vm.prank(drained);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchNotBacked.selector, taskId, drained));
        market.commit(taskId, bytes32(uint256(1)));

        // A backed member cannot be dropped; the drained one can, by anyone.
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguMemberBacked.selector, l2Magu, members[1]));
        magus.dropUnbacked(l2Magu, members[1]);
        vm.prank(disputer);
        magus.dropUnbacked(l2Magu, drained);
        assertFalse(magus.membership(l2Magu, drained).active, "dropped");
        assertEq(magus.maguInfo(l2Magu).members[0], address(0), "its slot is vacant for a replacement");
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotMember.selector, l2Magu, drained));
        magus.dropUnbacked(l2Magu, drained);
        simReport("drained node keeps working (24.3)", 0, 0, "commits refused; dropped from its Magu");
    }

    function test_dispute_falseDistance() public {
        int16[] memory q = queryOf(6);
        bytes32[] memory lie = honestList(l2Magu, q, membersOf(l2Magu)[busyIndex(l2Magu)], K);
        uint256 w = uint256(lie[0]);
        int256 d = distanceOf(bytes32(w));
        lie[0] = word(d - 1, uint64(w >> 128), uint32(w >> 96), uint32(w >> 64)); // still the smallest
        _disputeAndFinalize(l2Magu, q, lie, 0, ISearchMarket.Falsehood.WrongDistance, uint64(w >> 128), int64(d));
    }

    function test_dispute_falseDistance_innerProduct() public {
        int16[] memory q = queryOf(7);
        bytes32[] memory lie = honestList(ipMagu, q, membersOf(ipMagu)[busyIndex(ipMagu)], K);
        uint256 w = uint256(lie[K - 1]);
        int256 d = distanceOf(bytes32(w));
        lie[K - 1] = word(d + 1000, uint64(w >> 128), uint32(w >> 96), uint32(w >> 64)); // still the largest
        _disputeAndFinalize(ipMagu, q, lie, K - 1, ISearchMarket.Falsehood.WrongDistance, uint64(w >> 128), int64(d));
    }

    /// @notice A cosine Magu (Metric 3) is judged as the inner product (its vectors are unit
    /// vectors the client quantised): its honest entries, negated inner products, stand, and the
    /// merged answer is the inner-product brute force.
    function test_task_cosineMetric_judgedAsInnerProduct() public {
        MaguId cosMagu = vectorMagu(IMaguRegistry.Metric.Cosine, 3);
        int16[] memory q = queryOf(11);
        (uint256 taskId, address[] memory members, bytes32[][] memory lists) = honestTask(cosMagu, q, K);
        bytes32[] memory top = truth(cosMagu, q, K);
        assertTrue(distanceOf(top[0]) < 0, "best inner product is negated");

        uint256 b = busyIndex(cosMagu);
        ISearchMarket.DisputeProof memory proof = proofOf(cosMagu, q, lists[b], 0);
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchDisputeRejected.selector, taskId, members[b], 0));
        vm.prank(disputer);
        market.dispute(taskId, members[b], proof);

        rollToFinalize(taskId);
        market.finalize(taskId, lists);
        assertEq(market.task(taskId).resultHash, keccak256(abi.encodePacked(top)), "answer");
        checkBooks();
    }

    /// @notice On a cosine Magu, an entry carrying its record's squared L2 distance (what an L2
    /// judge would accept) is a wrong distance: the dispute slashes and reports the inner product.
    function test_dispute_falseDistance_cosine_l2IsWrong() public {
        MaguId cosMagu = vectorMagu(IMaguRegistry.Metric.Cosine, 3);
        int16[] memory q = queryOf(12);
        bytes32[] memory lie = honestList(cosMagu, q, membersOf(cosMagu)[busyIndex(cosMagu)], K);
        uint256 w = uint256(lie[K - 1]);
        int256 d = distanceOf(bytes32(w));
        bytes memory data = fragmentsOf[MaguId.unwrap(cosMagu)][uint32(w >> 96)];
        int256 l2 = distanceIn(data, true, q, uint32(w >> 64));
        assertTrue(l2 > d, "the L2 distance differs and keeps the list ascending");
        lie[K - 1] = word(l2, uint64(w >> 128), uint32(w >> 96), uint32(w >> 64));
        _disputeAndFinalize(cosMagu, q, lie, K - 1, ISearchMarket.Falsehood.WrongDistance, uint64(w >> 128), int64(d));
    }

    function test_dispute_wrongId() public {
        int16[] memory q = queryOf(8);
        bytes32[] memory lie = honestList(l2Magu, q, membersOf(l2Magu)[busyIndex(l2Magu)], K);
        uint256 w = uint256(lie[K - 1]);
        int256 d = distanceOf(bytes32(w));
        // Right distance, wrong id (the largest vector id: the 256 above are control records').
        lie[K - 1] = word(d, type(uint64).max - 256, uint32(w >> 96), uint32(w >> 64));
        _disputeAndFinalize(l2Magu, q, lie, K - 1, ISearchMarket.Falsehood.WrongId, uint64(w >> 128), int64(d));
    }

    function test_dispute_recordPastTheFragmentEnd() public {
        int16[] memory q = queryOf(9);
        bytes32[] memory lie = honestList(l2Magu, q, membersOf(l2Magu)[busyIndex(l2Magu)], K);
        // A record just past fragment 0 (1200 bytes: its last leaf answers), and one far past the
        // short last fragment (one leaf).
        lie[K - 2] = word(900_000, 1, 0, PER_FRAGMENT);
        lie[K - 1] = word(900_001, 1, FRAGS - 1, 1000);
        _disputeAndFinalize(l2Magu, q, lie, K - 2, ISearchMarket.Falsehood.RecordPastEnd, 0, 0);
    }

    function test_dispute_recordFarPastTheShortLastFragment() public {
        int16[] memory q = queryOf(9);
        bytes32[] memory lie = honestList(l2Magu, q, membersOf(l2Magu)[busyIndex(l2Magu)], K - 1);
        bytes32[] memory longer = new bytes32[](K);
        for (uint256 i; i < K - 1; ++i) {
            longer[i] = lie[i];
        }
        longer[K - 1] = word(900_001, 1, FRAGS - 1, 1000);
        ISearchMarket.DisputeProof memory proof = proofOf(l2Magu, q, longer, K - 1);
        assertEq(proof.leaves.length, 1, "one leaf proves the size");
        _disputeAndFinalize(l2Magu, q, longer, K - 1, ISearchMarket.Falsehood.RecordPastEnd, 0, 0);
    }

    function test_dispute_straddlingRecord_trueStandsFalseFalls() public {
        int16[] memory q = queryOf(10);
        bytes32 real = hitOf(l2Magu, q, 3, STRADDLING);
        uint256 taskId = submitTask(l2Magu, q, K, FEE);
        address[] memory members = magus.holders(l2Magu, 3); // both members placed on fragment 3
        uint256 w = uint256(real);
        bytes32 fake = word(distanceOf(bytes32(w)) + 1, uint64(w >> 128), 3, STRADDLING);
        commitList(taskId, members[0], one(real));
        commitList(taskId, members[1], one(fake));
        rollToReveals(taskId);
        revealList(taskId, members[0], one(real));
        revealList(taskId, members[1], one(fake));

        ISearchMarket.DisputeProof memory proof = proofOf(l2Magu, q, one(real), 0);
        assertEq(proof.leaves.length, 2, "the record spans two leaves");
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchDisputeRejected.selector, taskId, members[0], 0));
        vm.prank(disputer);
        market.dispute(taskId, members[0], proof);

        vm.prank(disputer);
        market.dispute(taskId, members[1], proofOf(l2Magu, q, one(fake), 0));
        assertTrue(market.memberTask(taskId, members[1]).disputed, "false straddling entry");
        assertFalse(market.memberTask(taskId, members[0]).disputed, "true one stands");
    }

    function test_dispute_rejectsEveryTrueEntryOfAnHonestList() public {
        int16[] memory q = queryOf(11);
        (uint256 taskId, address[] memory members, bytes32[][] memory lists) = honestTask(l2Magu, q, K);
        uint256 b = busyIndex(l2Magu);
        assertEq(lists[b].length, K, "a full list");
        for (uint256 i; i < K; ++i) {
            ISearchMarket.DisputeProof memory proof = proofOf(l2Magu, q, lists[b], i);
            vm.expectRevert(
                abi.encodeWithSelector(ISearchMarket.SearchDisputeRejected.selector, taskId, members[b], i)
            );
            vm.prank(disputer);
            market.dispute(taskId, members[b], proof);
        }
        assertEq(token.balanceOf(disputer), 0, "nothing paid");
    }

    /// @dev A task where member 0 revealed its honest list; returns the proof of its entry 0.
    function _revealedTask()
        internal
        returns (uint256 taskId, address member, ISearchMarket.DisputeProof memory proof)
    {
        int16[] memory q = queryOf(12);
        taskId = submitTask(l2Magu, q, K, FEE);
        member = membersOf(l2Magu)[holderIndex(l2Magu, 3)];
        bytes32[] memory list = honestList(l2Magu, q, member, K);
        // Make entry 0 false and straddling so the proof has two leaves: the record at (3, 42).
        list[0] = word(-1_000_000, 1, 3, STRADDLING);
        commitList(taskId, member, list);
        rollToReveals(taskId);
        revealList(taskId, member, list);
        proof = proofOf(l2Magu, q, list, 0);
        assertEq(proof.leaves.length, 2, "two leaves");
    }

    function _expectDisputeRevert(uint256 taskId, address member, ISearchMarket.DisputeProof memory proof, bytes memory reason)
        internal
    {
        vm.expectRevert(reason);
        vm.prank(disputer);
        market.dispute(taskId, member, proof);
    }

    function test_dispute_revertsForUnknownTaskUnrevealedAndLate() public {
        (uint256 taskId, address member, ISearchMarket.DisputeProof memory proof) = _revealedTask();
        _expectDisputeRevert(7, member, proof, abi.encodeWithSelector(ISearchMarket.SearchUnknownTask.selector, 7));
        address other = membersOf(l2Magu)[(busyIndex(l2Magu) + 1) % 5];
        _expectDisputeRevert(
            taskId, other, proof, abi.encodeWithSelector(ISearchMarket.SearchNotRevealed.selector, taskId, other)
        );
        ISearchMarket.TaskInfo memory t = market.task(taskId);
        vm.roll(t.disputeDeadline + 1);
        _expectDisputeRevert(
            taskId,
            member,
            proof,
            abi.encodeWithSelector(
                ISearchMarket.SearchNotInWindow.selector, taskId, t.commitDeadline + 1, t.disputeDeadline
            )
        );
        vm.roll(t.disputeDeadline); // the last block still takes it
        vm.prank(disputer);
        market.dispute(taskId, member, proof);
    }

    function test_dispute_revertsOnWrongQueryListOrIndex() public {
        (uint256 taskId, address member, ISearchMarket.DisputeProof memory proof) = _revealedTask();
        bytes memory query = proof.query;
        proof.query = encodeQuery(queryOf(13));
        _expectDisputeRevert(taskId, member, proof, abi.encodeWithSelector(ISearchMarket.SearchWrongQuery.selector, taskId));
        proof.query = query;

        bytes32[] memory entries = proof.entries;
        proof.entries = prefix(entries, K - 1);
        _expectDisputeRevert(
            taskId, member, proof, abi.encodeWithSelector(ISearchMarket.SearchListMismatch.selector, taskId, member)
        );
        proof.entries = entries;

        proof.index = K;
        _expectDisputeRevert(
            taskId, member, proof, abi.encodeWithSelector(ISearchMarket.SearchEntryIndexOutOfRange.selector, K, K)
        );
    }

    function test_dispute_revertsOnMalformedProof() public {
        (uint256 taskId, address member, ISearchMarket.DisputeProof memory proof) = _revealedTask();
        uint64 size = proof.size;
        proof.size = uint64(1 << 20) + 1;
        _expectDisputeRevert(
            taskId,
            member,
            proof,
            abi.encodeWithSelector(ISearchMarket.SearchMalformedProof.selector, bytes32("size"), (1 << 20) + 1)
        );
        proof.size = size;

        bytes[] memory leaves = proof.leaves;
        bytes[] memory fewer = new bytes[](1);
        fewer[0] = leaves[0];
        proof.leaves = fewer;
        _expectDisputeRevert(
            taskId, member, proof, abi.encodeWithSelector(ISearchMarket.SearchMalformedProof.selector, bytes32("leaves"), 1)
        );
        proof.leaves = leaves;

        bytes32[][] memory paths = proof.leafProofs;
        proof.leafProofs = new bytes32[][](3);
        _expectDisputeRevert(
            taskId,
            member,
            proof,
            abi.encodeWithSelector(ISearchMarket.SearchMalformedProof.selector, bytes32("leafProofs"), 3)
        );
        proof.leafProofs = paths;

        bytes memory leaf = proof.leaves[1];
        proof.leaves[1] = new bytes(1023);
        _expectDisputeRevert(
            taskId, member, proof, abi.encodeWithSelector(ISearchMarket.SearchMalformedProof.selector, bytes32("leaf"), 1023)
        );
        proof.leaves[1] = leaf;

        bytes32[] memory path = proof.leafProofs[0];
        proof.leafProofs[0] = new bytes32[](path.length + 1);
        _expectDisputeRevert(
            taskId,
            member,
            proof,
            abi.encodeWithSelector(ISearchMarket.SearchMalformedProof.selector, bytes32("leafProof"), path.length + 1)
        );
        proof.leafProofs[0] = path;

        bytes32[] memory fragmentPath = proof.fragmentProof;
        proof.fragmentProof = new bytes32[](fragmentPath.length - 1);
        _expectDisputeRevert(
            taskId,
            member,
            proof,
            abi.encodeWithSelector(
                ISearchMarket.SearchMalformedProof.selector, bytes32("fragmentProof"), fragmentPath.length - 1
            )
        );
    }

    function test_dispute_revertsOnInvalidPaths() public {
        (uint256 taskId, address member, ISearchMarket.DisputeProof memory proof) = _revealedTask();
        uint256 f = uint32(uint256(proof.entries[0]) >> 96);

        // The second leaf altered: its path no longer meets the first leaf's tree root.
        proof.leaves[1][100] = bytes1(uint8(proof.leaves[1][100]) ^ 1);
        _expectDisputeRevert(
            taskId, member, proof, abi.encodeWithSelector(ISearchMarket.SearchInvalidProof.selector, bytes32("leafProof"), 1)
        );
        proof.leaves[1][100] = bytes1(uint8(proof.leaves[1][100]) ^ 1);

        // The first leaf altered, or a sibling, or the size misstated: the fragment root is not the task's.
        bytes memory invalid =
            abi.encodeWithSelector(ISearchMarket.SearchInvalidProof.selector, bytes32("fragmentProof"), f);
        proof.fragmentProof[0] ^= bytes32(uint256(1));
        _expectDisputeRevert(taskId, member, proof, invalid);
        proof.fragmentProof[0] ^= bytes32(uint256(1));
        // Claiming the fragment ends inside the record (same two leaves) does not make it "past the end".
        proof.size = 1030;
        _expectDisputeRevert(taskId, member, proof, invalid);
    }

    // ------------------------------------------------------------ the copier

    function test_copier_cannotRevealACopiedCommitmentAndGainsNothing() public {
        int16[] memory q = queryOf(14);
        uint256 taskId = submitTask(l2Magu, q, K, FEE);
        address[] memory members = membersOf(l2Magu);
        address author = members[busyIndex(l2Magu)];
        address copier = members[(busyIndex(l2Magu) + 1) % 5];
        bytes32[] memory list = honestList(l2Magu, q, author, K);
        commitList(taskId, author, list);
        // The copier takes the author's commitment from the chain.
        bytes32 copied = market.memberTask(taskId, author).commitment;
        vm.prank(copier);
        market.commit(taskId, copied);
        rollToReveals(taskId);
        revealList(taskId, author, list);

        // With the author's list and salt (public once revealed) the hash still names the author.
        vm.expectRevert(abi.encodeWithSelector(ISearchMarket.SearchCommitmentMismatch.selector, taskId, copier));
        vm.prank(copier);
        market.reveal(taskId, list, saltOf(author));
        // And it cannot commit anew once reveals are open.
        address late = members[(busyIndex(l2Magu) + 2) % 5];
        ISearchMarket.TaskInfo memory t = market.task(taskId);
        vm.expectRevert(
            abi.encodeWithSelector(ISearchMarket.SearchNotInWindow.selector, taskId, t.submitBlock, t.commitDeadline)
        );
        vm.prank(late);
        market.commit(taskId, commitmentOf(taskId, late, list));

        rollToFinalize(taskId);
        bytes32[][] memory lists = new bytes32[][](2);
        lists[0] = list;
        market.finalize(taskId, lists);
        assertEq(market.claimable(copier), 0, "the copier earns nothing");
        assertEq(registry.nodeInfo(copier).reputation, -REVEAL_PENALTY, "and loses reputation");
        assertEq(market.claimable(author) + market.claimable(client), FEE, "the author's credits and the refund");
        assertGt(market.claimable(author), 0, "the author is paid");
    }

    // ------------------------------------------------------------ reentrancy

    function test_submitAndClaim_rejectReentrantToken() public {
        ReentrantToken evil = new ReentrantToken();
        ISearchMarket.Config memory c = searchConfig();
        c.token = address(evil);
        SearchMarket evilMarket = SearchMarket(deployArtifact("SearchMarket.sol:SearchMarket", abi.encode(c)));
        evil.mint(client, FEE);
        vm.prank(client);
        evil.approve(address(evilMarket), FEE);
        bytes memory q = encodeQuery(queryOf(1));

        evil.arm(address(evilMarket), abi.encodeCall(ISearchMarket.claim, ()));
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        vm.prank(client);
        evilMarket.submit(l2Magu, q, K, FEE);

        evil.arm(address(evil), abi.encodeCall(IERC20.totalSupply, ()));
        vm.prank(client);
        uint256 taskId = evilMarket.submit(l2Magu, q, K, FEE);
        vm.roll(evilMarket.task(taskId).disputeDeadline + 1);
        evilMarket.finalize(taskId, new bytes32[][](0));
        assertEq(evilMarket.claimable(client), FEE, "refund");

        evil.arm(address(evilMarket), abi.encodeCall(ISearchMarket.claim, ()));
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
        vm.prank(client);
        evilMarket.claim();
        assertEq(evilMarket.claimable(client), FEE, "still claimable once");
    }

    // ------------------------------------------------------------ fuzz: the merge

    /// @notice finalize's answer and credits equal a brute-force top-k over the revealed lists,
    /// for lists drawn with few distances and ids (many duplicates, ties, an id at two distances),
    /// some members silent.
    function testFuzz_finalize_matchesBruteForce(uint256 seed, uint8 kSeed) public {
        uint256 k = bound(kSeed, 1, MAX_K);
        uint256 taskId = submitTask(l2Magu, queryOf(1), k, FEE);
        address[] memory members = membersOf(l2Magu);
        bytes32[][] memory lists = new bytes32[][](members.length);
        bool[] memory silent = new bool[](members.length);
        for (uint256 i; i < members.length; ++i) {
            uint256 h = uint256(keccak256(abi.encode(seed, i)));
            lists[i] = _randomList(h, k);
            silent[i] = h % 7 == 0;
            commitList(taskId, members[i], lists[i]);
        }
        rollToReveals(taskId);
        for (uint256 i; i < members.length; ++i) {
            if (silent[i]) lists[i] = new bytes32[](0);
            else revealList(taskId, members[i], lists[i]);
        }
        (bytes32[] memory expected, uint256[] memory credits, uint256 total) = bruteForce(lists, k);
        rollToFinalize(taskId);
        market.finalize(taskId, lists);

        assertEq(market.task(taskId).resultHash, keccak256(abi.encodePacked(expected)), "answer");
        uint256 per = total == 0 ? 0 : FEE / total;
        for (uint256 i; i < members.length; ++i) {
            assertEq(market.claimable(members[i]), credits[i] * per, "credits");
            assertEq(registry.nodeInfo(members[i]).reputation, silent[i] ? -REVEAL_PENALTY : int256(0), "penalty");
        }
        assertEq(market.claimable(client), FEE - per * total, "refund");
        checkBooks();
    }

    /// @dev Up to k strictly increasing words over distances -3..3, ids 1..6, 3 fragments, 2 positions.
    function _randomList(uint256 h, uint256 k) internal pure returns (bytes32[] memory list) {
        uint256 count = (h >> 8) % (k + 1);
        list = new bytes32[](count);
        for (uint256 j; j < count; ++j) {
            uint256 r = uint256(keccak256(abi.encode(h, j)));
            list[j] = word(int256(r % 7) - 3, uint64(1 + (r >> 8) % 6), (r >> 16) % 3, (r >> 24) % 2);
        }
        sort(list);
        uint256 n;
        for (uint256 j; j < count; ++j) {
            if (n == 0 || list[j] != list[n - 1]) list[n++] = list[j];
        }
        list = prefix(list, n);
    }
}
