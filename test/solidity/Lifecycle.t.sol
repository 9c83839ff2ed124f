// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IChallengeManager} from "../../contracts/interfaces/IChallengeManager.sol";
import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice End-to-end flows across the five contracts: a Magu's life from request to settlement,
/// a miss that is slashed and ends in eviction and repair, and the production role wiring.
contract LifecycleTest is Fixture {
    address internal owner;
    address[] internal nodeList;

    function setUp() public override {
        super.setUp();
        owner = newActor("client");
        nodeList = registerNodes(5, 200 ether);
    }

    function test_fixture_rolesWiredAsProduction() public view {
        assertTrue(token.hasRole(token.MINTER_ROLE(), address(rewards)), "Rewards mints");
        assertTrue(registry.hasRole(registry.MODULE_ROLE(), address(magus)), "MaguRegistry locks");
        assertTrue(registry.hasRole(registry.SLASHER_ROLE(), address(magus)), "MaguRegistry slashes");
        assertTrue(registry.hasRole(registry.SLASHER_ROLE(), address(challenges)), "ChallengeManager slashes");
        assertTrue(registry.hasRole(registry.REPUTATION_ROLE(), address(challenges)), "ChallengeManager reputation");
        assertTrue(magus.hasRole(magus.CHALLENGE_ROLE(), address(challenges)), "ChallengeManager records");
        assertFalse(registry.hasRole(registry.MODULE_ROLE(), address(challenges)), "ChallengeManager does not lock");
        assertFalse(registry.hasRole(registry.REPUTATION_ROLE(), address(magus)), "MaguRegistry no reputation");
        assertEq(challenges.config().slashSink, address(rewards), "slash sink");
        assertEq(challenges.config().maguRegistry, address(magus), "challenge -> magus");
        assertEq(magus.config().nodeRegistry, address(registry), "magus -> registry");
        assertEq(rewards.config().nodeRegistry, address(registry), "rewards -> registry");
    }

    /// @notice create -> form -> commit -> proofs each period -> settle: members are paid pro
    /// rata to the periods they proved and the owner gets the rest of the escrow back.
    function test_lifecycle_membersPaidProRataOwnerRefunded() public {
        IMaguRegistry.MaguParams memory p = vectorParams(3, 2, 16, 4);
        uint256 escrow = escrowOf(p);
        uint256 ownerBefore = token.balanceOf(address(this));
        MaguId id = createMagu(owner, p);
        assertEq(token.balanceOf(address(magus)), escrow + FORMATION_DEPOSIT, "escrow and deposit pulled");
        assertEq(magus.totalHeld(), escrow + FORMATION_DEPOSIT, "escrow and deposit held");
        assertEq(ownerBefore - token.balanceOf(address(this)), escrow + FORMATION_DEPOSIT, "funded from the test");

        formMagu(id);
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        assertEq(uint8(info.status), uint8(IMaguRegistry.Status.Active), "active");
        assertEq(info.members.length, 3, "three slots");
        assertEq(info.endPeriod - info.startPeriod, 4, "duration");
        assertEq(info.startPeriod, magus.currentPeriod() + 1, "challenges start next period");
        for (uint256 i; i < 3; ++i) {
            INodeRegistry.NodeInfo memory n = registry.nodeInfo(info.members[i]);
            assertEq(n.locked, STAKE_PER_MEMBER, "stake locked");
            // 16 fragments × 2 replicas over 3 members: ceil(32 / 3) = 11 MiB each.
            assertEq(n.usedCapacity, 11 * magus.FRAGMENT_BYTES(), "capacity reserved");
            for (uint256 j; j < i; ++j) {
                assertNotEq(info.members[i], info.members[j], "distinct members");
            }
        }

        commitData(id, 7, 12);
        assertEq(magus.maguInfo(id).root, maguRootOf(dataRoots[MaguId.unwrap(id)]), "root committed");

        // Member k proves the first 4 - k periods.
        address[] memory members = info.members;
        for (uint64 period = info.startPeriod; period < info.endPeriod; ++period) {
            rollToPeriod(period);
            for (uint256 k; k < 3; ++k) {
                if (period - info.startPeriod < 4 - k) prove(id, members[k], period);
            }
        }
        for (uint256 k; k < 3; ++k) {
            assertEq(magus.membership(id, members[k]).provedPeriods, 4 - k, "proved periods");
            assertEq(registry.nodeInfo(members[k]).reputation, int64(int256(4 - k)), "reputation per proof");
        }

        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotExpired.selector, id, settleBlock(id)));
        magus.settle(id);

        vm.roll(settleBlock(id));
        uint256 pps = escrow / (3 * 4);
        uint256 paid = pps * (4 + 3 + 2);
        vm.expectEmit(true, false, false, true, address(magus));
        emit IMaguRegistry.MaguSettled(id, paid, escrow - paid);
        magus.settle(id);

        for (uint256 k; k < 3; ++k) {
            assertEq(magus.claimable(members[k]), pps * (4 - k), "member paid for proven periods");
            INodeRegistry.NodeInfo memory n = registry.nodeInfo(members[k]);
            assertEq(n.locked, 0, "stake unlocked");
            assertEq(n.usedCapacity, 0, "capacity released");
        }
        assertEq(magus.claimable(owner), escrow - paid + FORMATION_DEPOSIT, "owner refunded the rest and its deposit");
        assertEq(magus.totalHeld(), escrow + FORMATION_DEPOSIT, "still held until claimed");

        for (uint256 k; k < 3; ++k) {
            vm.prank(members[k]);
            magus.claim();
            assertEq(token.balanceOf(members[k]), pps * (4 - k), "member claimed");
        }
        vm.prank(owner);
        magus.claim();
        assertEq(token.balanceOf(owner), escrow - paid + FORMATION_DEPOSIT, "owner claimed");
        assertEq(magus.totalHeld(), 0, "nothing left held");
        assertEq(token.balanceOf(address(magus)), 0, "nothing left in the registry");

        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguWrongStatus.selector, id, IMaguRegistry.Status.Ended));
        magus.settle(id);
    }

    /// @notice A missed period is slashed (marker share + Rewards), the second miss evicts, the
    /// slot is refilled and the replacement's first proof earns the repair bounty.
    function test_lifecycle_missSlashEvictRepair() public {
        MaguId id = setupMagu(owner, vectorParams(3, 2, 16, 10), 11, 16);
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        address lazy = info.members[1];
        uint8 slot = magus.membership(id, lazy).slot;
        address marker = newActor("marker");

        uint64 period = info.startPeriod;
        uint256 stake = registry.stakeOf(lazy);
        rollPastDeadline(period);
        uint256 slash = stake * SLASH_BPS / 10_000;
        uint256 markerCut = slash * MARKER_BPS / 10_000;
        vm.expectEmit(true, true, true, true, address(challenges));
        emit IChallengeManager.ProofMissed(id, lazy, period, marker, slash, 1);
        vm.prank(marker);
        challenges.markMissed(id, lazy, period);
        assertEq(token.balanceOf(marker), markerCut, "marker share");
        assertEq(token.balanceOf(address(rewards)), slash - markerCut, "rest to Rewards");
        assertEq(rewards.pool(), slash - markerCut, "Rewards pool");
        assertEq(registry.stakeOf(lazy), stake - slash, "stake slashed");
        assertEq(registry.nodeInfo(lazy).reputation, challenges.REPUTATION_MISS(), "reputation down");
        assertEq(magus.membership(id, lazy).misses, 1, "one miss");
        assertEq(challenges.proofState(id, lazy, period), 2, "marked missed");

        // Second miss (period + 1) reaches maxMisses = 2: evicted, repair bounty taken.
        uint256 stake2 = registry.stakeOf(lazy);
        uint256 slash2 = stake2 * SLASH_BPS / 10_000;
        rollPastDeadline(period + 1);
        uint256 evictBlock = blockNumber();
        vm.expectEmit(true, true, false, true, address(magus));
        emit IMaguRegistry.MemberLeft(id, lazy, slot, true, 0);
        vm.prank(marker);
        challenges.markMissed(id, lazy, period + 1);
        assertFalse(magus.membership(id, lazy).active, "evicted");
        assertEq(membersOf(id)[slot], address(0), "slot vacant");
        assertEq(registry.stakeOf(lazy), stake2 - slash2 - REPAIR_BOUNTY, "bounty taken from stake");
        assertEq(registry.nodeInfo(lazy).locked, 0, "membership lock released");
        // The formation deposit waits in the owner's claimable.
        assertEq(magus.totalHeld(), escrowOf(vectorParams(3, 2, 16, 10)) + REPAIR_BOUNTY + FORMATION_DEPOSIT, "bounty held");

        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguTooEarly.selector, id, uint64(evictBlock + 2)));
        magus.fillVacancy(id, slot);
        vm.roll(evictBlock + 2);
        magus.fillVacancy(id, slot);
        address fresh = membersOf(id)[slot];
        assertTrue(fresh != address(0) && fresh != lazy, "replacement drawn");
        IMaguRegistry.Membership memory ms = magus.membership(id, fresh);
        assertTrue(ms.active, "replacement active");
        assertEq(ms.slot, slot, "same slot");
        // 16 fragments x 2 replicas over 3 slots: 11 to fetch, one period at 64 per period, after
        // the next period.
        assertEq(ms.joinPeriod, magus.currentPeriod() + 3, "challenged after its fetch grace");
        for (uint256 i; i < 3; ++i) {
            if (i != slot) assertNotEq(fresh, info.members[i], "not an existing member");
        }

        rollToPeriod(ms.joinPeriod);
        vm.expectEmit(true, true, false, true, address(magus));
        emit IMaguRegistry.RepairRewarded(id, fresh, REPAIR_BOUNTY);
        prove(id, fresh, ms.joinPeriod);
        assertEq(magus.claimable(fresh), REPAIR_BOUNTY, "bounty credited");

        // Only the first proof pays the bounty.
        rollToPeriod(ms.joinPeriod + 1);
        prove(id, fresh, ms.joinPeriod + 1);
        assertEq(magus.claimable(fresh), REPAIR_BOUNTY, "bounty paid once");
    }
}
