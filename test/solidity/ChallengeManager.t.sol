// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IChallengeManager} from "../../contracts/interfaces/IChallengeManager.sol";
import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice ChallengeManager: challenge derivation, proof checks, periods and deadlines,
/// missed proofs and their slashing.
contract ChallengeManagerTest is Fixture {
    address internal client;
    MaguId internal id;
    address internal member;
    uint64 internal period;

    function setUp() public override {
        super.setUp();
        client = newActor("client");
        registerNodes(5, 200 ether);
        id = setupMagu(client, vectorParams(3, 2, 12, 6), 21, 12);
        member = membersOf(id)[0];
        period = magus.maguInfo(id).startPeriod;
    }

    function _submit(IChallengeManager.FragmentProof[] memory proofs) internal {
        vm.prank(member);
        challenges.submitProof(id, period, proofs);
    }

    function _honest() internal returns (IChallengeManager.FragmentProof[] memory proofs) {
        rollToPeriod(period);
        proofs = proofsFor(id, member, period);
        assertEq(proofs.length, SAMPLES, "every sample found a held fragment");
    }

    // ------------------------------------------------------------ happy path

    function test_submitProof_acceptsHonestProof() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        uint64 start = magus.periodStart(period);
        vm.expectEmit(true, false, false, true, address(challenges));
        emit IChallengeManager.PeriodSeedRecorded(period, blockhash(start));
        vm.expectEmit(true, true, true, true, address(challenges));
        emit IChallengeManager.ProofSubmitted(id, member, period, SAMPLES);
        _submit(proofs);
        assertEq(challenges.proofState(id, member, period), 1, "proven");
        assertEq(magus.membership(id, member).provedPeriods, 1, "recorded");
        assertEq(registry.nodeInfo(member).reputation, challenges.REPUTATION_PROOF(), "reputation up");
    }

    function test_submitProof_acceptsWithinGraceOfNextPeriod() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        vm.roll(challenges.proofDeadline(period) - 1);
        assertEq(magus.currentPeriod(), period + 1, "already the next period");
        _submit(proofs);
        assertEq(challenges.proofState(id, member, period), 1, "proven late but in time");
    }

    function test_submitProof_acceptsBlobMaguProofs() public {
        MaguId blob = setupMagu(client, blobParams(5, 3, 2, 20, 4), 33, 15);
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(blob);
        proveAll(blob, info.startPeriod);
        for (uint256 i; i < 5; ++i) {
            assertEq(challenges.proofState(blob, info.members[i], info.startPeriod), 1, "each shard holder proved");
        }
    }

    function test_challengeFor_namesFragmentsTheMemberHolds() public {
        rollToPeriod(period);
        address[] memory members = membersOf(id);
        for (uint256 m; m < members.length; ++m) {
            IChallengeManager.ChallengeItem[] memory items = challenges.challengeFor(id, members[m], period);
            for (uint256 i; i < items.length; ++i) {
                address[] memory h = magus.holders(id, items[i].fragment);
                assertTrue(h[0] == members[m] || h[1] == members[m], "challenged fragment is held");
            }
        }
    }

    /// @notice challengeFor follows docs/ENCODING.md, recomputed here from the text.
    function test_challengeFor_followsEncodingSpec() public {
        rollToPeriod(period);
        bytes32 pSeed = challenges.periodSeed(period);
        assertEq(pSeed, blockhash(magus.periodStart(period)), "period seed is the start block hash");
        IChallengeManager.ChallengeItem[] memory items = challenges.challengeFor(id, member, period);
        bytes32 seed = keccak256(abi.encode(pSeed, MaguId.unwrap(id), member, uint256(period)));
        uint256 found;
        for (uint256 i; i < SAMPLES; ++i) {
            for (uint256 t; t < challenges.MAX_TRIES(); ++t) {
                uint256 h = uint256(keccak256(abi.encode(seed, i, t)));
                uint256 f = h % 12;
                if (_rank(MaguId.unwrap(id), f, 3, 0) < 2) {
                    assertEq(items[found].fragment, f, "fragment");
                    assertEq(items[found].leafSeed, uint128(h >> 128), "leaf seed");
                    ++found;
                    break;
                }
            }
        }
        assertEq(items.length, found, "item count");
    }

    function _rank(uint256 maguId, uint256 group, uint256 slots, uint256 slot) internal pure returns (uint256 r) {
        uint256 own = uint256(keccak256(abi.encode(maguId, group, slot)));
        for (uint256 s; s < slots; ++s) {
            uint256 other = uint256(keccak256(abi.encode(maguId, group, s)));
            if (other > own || (other == own && s < slot)) ++r;
        }
    }

    function test_periodSeed_revertsBeforePeriodStarts() public {
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeSeedUnavailable.selector, period));
        challenges.periodSeed(period);
    }

    function test_periodSeed_staysFixedOnceRecorded() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        bytes32 seed = challenges.periodSeed(period);
        _submit(proofs);
        vm.roll(magus.periodStart(period) + 1000); // start block hash out of reach
        assertEq(challenges.periodSeed(period), seed, "recorded seed");
    }

    function test_proofDeadline_isNextPeriodStartPlusGrace() public view {
        assertEq(challenges.proofDeadline(period), magus.periodStart(period + 1) + GRACE_BLOCKS, "deadline");
    }

    // ------------------------------------------------------------ wrong period or member

    function test_submitProof_revertsBeforePeriodStarts() public {
        uint64 start = magus.periodStart(period);
        vm.roll(start); // the start block's hash is not known inside it
        vm.expectRevert(
            abi.encodeWithSelector(
                IChallengeManager.ChallengeWrongPeriod.selector, period, period, challenges.proofDeadline(period)
            )
        );
        _submit(new IChallengeManager.FragmentProof[](0));

        vm.expectRevert(
            abi.encodeWithSelector(
                IChallengeManager.ChallengeWrongPeriod.selector,
                period + 1,
                period,
                challenges.proofDeadline(period + 1)
            )
        );
        vm.prank(member);
        challenges.submitProof(id, period + 1, new IChallengeManager.FragmentProof[](0));
    }

    function test_submitProof_revertsAfterDeadline() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        uint64 deadline = challenges.proofDeadline(period);
        vm.roll(deadline);
        vm.expectRevert(
            abi.encodeWithSelector(IChallengeManager.ChallengeWrongPeriod.selector, period, period + 1, deadline)
        );
        _submit(proofs);
    }

    function test_submitProof_revertsForNonMember() public {
        rollToPeriod(period);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNotMember.selector, id, client, period));
        vm.prank(client);
        challenges.submitProof(id, period, new IChallengeManager.FragmentProof[](0));
    }

    function test_submitProof_revertsOutsideMembershipPeriods() public {
        rollToPeriod(period);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNotMember.selector, id, member, period - 1));
        vm.prank(member);
        challenges.submitProof(id, period - 1, new IChallengeManager.FragmentProof[](0));

        uint64 end = magus.maguInfo(id).endPeriod;
        rollToPeriod(end);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNotMember.selector, id, member, end));
        vm.prank(member);
        challenges.submitProof(id, end, new IChallengeManager.FragmentProof[](0));
    }

    function test_submitProof_revertsWithoutData() public {
        MaguId empty = createMagu(client, vectorParams(3, 1, 6, 4));
        formMagu(empty);
        address m = membersOf(empty)[0];
        uint64 p = magus.maguInfo(empty).startPeriod;
        rollToPeriod(p);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNoData.selector, empty));
        vm.prank(m);
        challenges.submitProof(empty, p, new IChallengeManager.FragmentProof[](0));
    }

    function test_challengesStartThePeriodAfterTheFirstCommit() public {
        MaguId late = createMagu(client, vectorParams(3, 1, 12, 8));
        formMagu(late);
        address m = membersOf(late)[0];
        uint64 start = magus.maguInfo(late).startPeriod;
        // No data for two periods, then the first commit in period start + 2. The data was
        // delivered and acknowledged before the commit, so it is challenged from the next period.
        rollToPeriod(start + 2);
        commitData(late, 77, 6);
        uint64 first = start + 3;
        assertEq(uint256(magus.membership(late, m).joinPeriod), uint256(first), "membership: challenged from the period after the commit");
        (, uint32 before) = magus.challengedData(late, m, first - 1);
        (, uint32 from) = magus.challengedData(late, m, first);
        assertEq(uint256(before), 0, "no data before it");
        assertEq(uint256(from), 6, "the batch from it");
        // The periods without data, the commit's own included, cannot be marked missed.
        rollPastDeadline(start + 2);
        for (uint64 p = start; p < first; ++p) {
            vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNoData.selector, late));
            challenges.markMissed(late, m, p);
        }
        // From the next period on, a member answers as usual.
        rollToPeriod(first);
        prove(late, m, first);
        assertEq(uint256(challenges.proofState(late, m, first)), 1, "the first period with data is proven");
        // A later commit (an appended batch) does not move the start again.
        commitData(late, 77, 9);
        assertEq(uint256(magus.membership(late, m).joinPeriod), uint256(first), "an append does not move the start");
    }

    // ------------------------------------------------------------ wrong answers

    function test_submitProof_revertsOnWrongProofCount() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        IChallengeManager.FragmentProof[] memory fewer = new IChallengeManager.FragmentProof[](proofs.length - 1);
        for (uint256 i; i < fewer.length; ++i) {
            fewer[i] = proofs[i];
        }
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeProofCount.selector, SAMPLES, SAMPLES - 1));
        _submit(fewer);
    }

    function test_submitProof_revertsOnWrongFragment() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        uint32 expected = proofs[1].fragment;
        uint32 other = (expected + 1) % 12;
        // An otherwise valid proof of another fragment (placement aside).
        proofs[1] = _proofOf(other, 0);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeWrongFragment.selector, 1, expected, other));
        _submit(proofs);
    }

    function _proofOf(uint32 fragment, uint128 leafSeed)
        internal
        view
        returns (IChallengeManager.FragmentProof memory)
    {
        IChallengeManager.ChallengeItem[] memory items = new IChallengeManager.ChallengeItem[](1);
        items[0] = IChallengeManager.ChallengeItem({fragment: fragment, leafSeed: leafSeed});
        return _proofsOf(items)[0];
    }

    function _proofsOf(IChallengeManager.ChallengeItem[] memory items)
        internal
        view
        returns (IChallengeManager.FragmentProof[] memory)
    {
        return dataProofs(MaguId.unwrap(id), items);
    }

    function test_submitProof_revertsOnShortLeaf() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        bytes memory leaf = proofs[0].leaf;
        assembly ("memory-safe") {
            mstore(leaf, 1023)
        }
        vm.expectRevert(
            abi.encodeWithSelector(IChallengeManager.ChallengeMalformedProof.selector, 0, bytes32("leaf"), 1023)
        );
        _submit(proofs);
    }

    function test_submitProof_revertsOnOversizedFragment() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        proofs[2].size = uint64(1 << 20) + 1;
        vm.expectRevert(
            abi.encodeWithSelector(
                IChallengeManager.ChallengeMalformedProof.selector, 2, bytes32("size"), (1 << 20) + 1
            )
        );
        _submit(proofs);
    }

    function test_submitProof_revertsOnWrongPathLengths() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        uint256 leafDepth = proofs[0].leafProof.length;
        proofs[0].leafProof = new bytes32[](leafDepth + 1);
        vm.expectRevert(
            abi.encodeWithSelector(
                IChallengeManager.ChallengeMalformedProof.selector, 0, bytes32("leafProof"), leafDepth + 1
            )
        );
        _submit(proofs);

        proofs = proofsFor(id, member, period);
        bytes32[] memory path = proofs[3].fragmentProof;
        assertEq(path.length, 4, "12 fragments: depth 4");
        assembly ("memory-safe") {
            mstore(path, 3)
        }
        vm.expectRevert(
            abi.encodeWithSelector(IChallengeManager.ChallengeMalformedProof.selector, 3, bytes32("fragmentProof"), 3)
        );
        _submit(proofs);
    }

    function test_submitProof_revertsOnFlippedLeafByte() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        proofs[1].leaf[517] = bytes1(uint8(proofs[1].leaf[517]) ^ 0x01);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeInvalidProof.selector, 1));
        _submit(proofs);
    }

    function test_submitProof_revertsOnFlippedSibling() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        proofs[3].fragmentProof[2] ^= bytes32(uint256(1) << 200);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeInvalidProof.selector, 3));
        _submit(proofs);
    }

    function test_submitProof_revertsOnMisstatedSize() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        // Same leaf count and path length, but the size is committed in the fragment root.
        uint64 size = proofs[0].size;
        proofs[0].size = (size == 0 || size % 1024 == 1) ? size + 1 : size - 1;
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeInvalidProof.selector, 0));
        _submit(proofs);
    }

    function test_submitProof_revertsOnReplay() public {
        IChallengeManager.FragmentProof[] memory proofs = _honest();
        _submit(proofs);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeAlreadySettled.selector, id, member, period));
        _submit(proofs);
        assertEq(magus.membership(id, member).provedPeriods, 1, "counted once");
    }

    // ------------------------------------------------------------ markMissed

    function test_markMissed_revertsBeforeDeadline() public {
        uint64 deadline = challenges.proofDeadline(period);
        vm.roll(deadline - 1);
        vm.expectRevert(
            abi.encodeWithSelector(IChallengeManager.ChallengeDeadlineNotPassed.selector, period, deadline)
        );
        challenges.markMissed(id, member, period);
    }

    function test_markMissed_revertsTwice() public {
        rollPastDeadline(period);
        challenges.markMissed(id, member, period);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeAlreadySettled.selector, id, member, period));
        challenges.markMissed(id, member, period);
        assertEq(magus.membership(id, member).misses, 1, "one miss");
    }

    function test_markMissed_revertsAfterProof() public {
        _submit(_honest());
        rollPastDeadline(period);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeAlreadySettled.selector, id, member, period));
        challenges.markMissed(id, member, period);
    }

    function test_markMissed_revertsForNonMember() public {
        rollPastDeadline(period);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNotMember.selector, id, client, period));
        challenges.markMissed(id, client, period);
    }

    /// @notice Regression (slash evasion): a member that cannot answer period p's challenge
    /// leaves before p's deadline. Leaving costs only the fixed repair bounty (10 MURI here)
    /// while a miss costs 10% of the stake (20 MURI here, more for larger stakes), so if leaving
    /// ended the accountability for p, a node that lost data would always leave and never be
    /// slashed. The miss must still be slashable.
    function test_markMissed_afterLeaving_stillSlashesMissedPeriod() public {
        uint64 deadline = challenges.proofDeadline(period);
        vm.roll(deadline - 1); // period p unproven, deadline about to pass
        vm.prank(member);
        magus.leave(id);
        vm.roll(deadline);
        uint256 stake = registry.stakeOf(member);
        challenges.markMissed(id, member, period);
        assertEq(registry.stakeOf(member), stake - stake * SLASH_BPS / 10_000, "the missed period is slashed");
    }

    /// @notice A member that left in period p answers for p but not for later periods, and its
    /// late miss neither counts towards eviction nor touches the (ended) membership.
    function test_markMissed_afterLeaving_onlyUpToLeavePeriod() public {
        rollToPeriod(period);
        vm.prank(member);
        magus.leave(id);
        rollPastDeadline(period);
        uint256 slash = registry.stakeOf(member) * SLASH_BPS / 10_000;
        vm.expectEmit(true, true, true, true, address(challenges));
        emit IChallengeManager.ProofMissed(id, member, period, address(this), slash, 0);
        challenges.markMissed(id, member, period);
        assertFalse(magus.membership(id, member).active, "still gone");
        assertEq(magus.membership(id, member).misses, 0, "no miss recorded on the ended membership");

        rollPastDeadline(period + 1);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNotMember.selector, id, member, period + 1));
        challenges.markMissed(id, member, period + 1);
    }

    function test_markMissed_slashesMemberAndPaysMarkerAndRewards() public {
        rollPastDeadline(period);
        address marker = newActor("marker");
        uint256 stake = registry.stakeOf(member);
        uint256 slash = stake * SLASH_BPS / 10_000;
        vm.prank(marker);
        challenges.markMissed(id, member, period);
        assertEq(challenges.proofState(id, member, period), 2, "missed");
        assertEq(registry.stakeOf(member), stake - slash, "slashed");
        assertEq(token.balanceOf(marker), slash * MARKER_BPS / 10_000, "marker share");
        assertEq(rewards.pool(), slash - slash * MARKER_BPS / 10_000, "rest to Rewards");
        assertEq(registry.totalHeld(), token.balanceOf(address(registry)), "registry books balance");
        assertTrue(magus.membership(id, member).active, "one miss does not evict");
    }
}
