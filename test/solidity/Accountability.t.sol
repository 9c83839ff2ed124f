// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IChallengeManager} from "../../contracts/interfaces/IChallengeManager.sol";
import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice How long a member answers for a miss (issue 24): a miss is marked within a window after
/// its deadline or never, and eviction ends a member's accountability. Each drain is played first
/// and shown to fail: the marker gains nothing beyond the window, the member loses nothing more.
contract AccountabilityTest is Fixture {
    address internal client;
    address internal attacker;

    function setUp() public override {
        super.setUp();
        client = newActor("client");
        attacker = newActor("attacker");
        registerNodes(6, 1_100 ether);
    }

    function _blob() internal returns (MaguId id) {
        id = createMagu(client, blobParams(5, 3, 2, 20, 10));
        formMagu(id);
        commitData(id, 3, 5);
    }

    /// @dev The first period `member` is challenged in (the period after the first commit).
    function _firstChallenged(MaguId id, address member) internal view returns (uint64 p) {
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        for (p = info.startPeriod; p < info.endPeriod; ++p) {
            (, uint32 count) = magus.challengedData(id, member, p);
            if (count > 0) return p;
        }
        revert("no challenged period");
    }

    function _stakes(address[] memory members) internal view returns (uint256[] memory out) {
        out = new uint256[](members.length);
        for (uint256 i; i < members.length; ++i) {
            out[i] = registry.stakeOf(members[i]);
        }
    }

    /// @notice Issue 24.1: an attacker waits until the Magu has ended, then marks every period of
    /// every member at once (before: each member lost 87% of its stake, the attacker gained the
    /// marker's halves). Periods whose window closed are forgiven: nothing moves.
    function test_attack_delayedMarker_marksNothingOnceTheWindowsClosed() public {
        MaguId id = _blob();
        address[] memory members = membersOf(id);
        uint256[] memory before = _stakes(members);
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        vm.roll(challenges.markDeadline(info.endPeriod - 1) + 1);
        for (uint256 i; i < members.length; ++i) {
            for (uint64 p = _firstChallenged(id, members[i]); p < info.endPeriod; ++p) {
                uint64 closed = challenges.markDeadline(p);
                vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeMarkWindowClosed.selector, p, closed));
                vm.prank(attacker);
                challenges.markMissed(id, members[i], p);
            }
        }
        uint256[] memory after_ = _stakes(members);
        int256 honest;
        for (uint256 i; i < members.length; ++i) {
            assertEq(after_[i], before[i], "no member lost stake");
            honest += delta(before[i], after_[i]);
        }
        assertEq(token.balanceOf(attacker), 0, "the marker gained nothing");
        simReport("delayed marker (24.1)", int256(token.balanceOf(attacker)), honest, "every mark after its window refused");
    }

    /// @notice The window itself: a miss can be marked from its deadline up to and including
    /// `markDeadline`, not one block later; the window is `markWindowBlocks` long.
    function test_markMissed_onlyWithinItsWindow() public {
        MaguId id = _blob();
        address[] memory members = membersOf(id);
        uint64 p = _firstChallenged(id, members[0]);
        assertEq(challenges.markDeadline(p), challenges.proofDeadline(p) + MARK_WINDOW_BLOCKS, "window length");
        vm.roll(challenges.markDeadline(p));
        vm.prank(attacker);
        challenges.markMissed(id, members[0], p);
        assertEq(challenges.proofState(id, members[0], p), 2, "marked on the window's last block");
        vm.roll(challenges.markDeadline(p) + 1);
        vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeMarkWindowClosed.selector, p, challenges.markDeadline(p)));
        vm.prank(attacker);
        challenges.markMissed(id, members[1], p);
        assertEq(challenges.proofState(id, members[1], p), 0, "forgiven, still open");
    }

    /// @notice Issue 24.2: marked period by period, an evicted member was slashed once more for the
    /// period it was evicted in (and any later one). Eviction now ends its accountability: it loses
    /// exactly maxMisses slashes and the repair bounty, and the bounty never returns to the owner.
    function test_attack_markAfterEviction_isRefused() public {
        MaguId id = _blob();
        address victim = membersOf(id)[0];
        uint64 p = _firstChallenged(id, victim);
        uint256 expected = registry.stakeOf(victim);
        for (uint64 i; i < MAX_MISSES; ++i) {
            rollPastDeadline(p + i);
            vm.prank(attacker);
            challenges.markMissed(id, victim, p + i);
            expected -= expected * SLASH_BPS / 10_000;
        }
        expected -= REPAIR_BOUNTY;
        assertFalse(magus.membership(id, victim).active, "evicted at its last allowed miss");
        assertEq(registry.stakeOf(victim), expected, "maxMisses slashes and the bounty, nothing more");

        uint64 evictedIn = magus.currentPeriod();
        uint256 markerBefore = token.balanceOf(attacker);
        for (uint64 q = evictedIn; q < evictedIn + 2; ++q) {
            rollPastDeadline(q);
            vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNotMember.selector, id, victim, q));
            vm.prank(attacker);
            challenges.markMissed(id, victim, q);
        }
        assertEq(registry.stakeOf(victim), expected, "not slashed again");
        simReport(
            "mark after eviction (24.2)", delta(markerBefore, token.balanceOf(attacker)), 0, "marks after the eviction refused"
        );

        // Nobody fills the slot: at settle the forfeited bounty goes to Rewards, not to the owner.
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        vm.roll(settleBlock(id));
        uint256 pool = token.balanceOf(address(rewards));
        magus.settle(id);
        assertEq(token.balanceOf(address(rewards)), pool + REPAIR_BOUNTY, "the bounty went to the reward pool");
        // The owner's claimable holds its own formation deposit (refunded at formation) besides.
        assertLe(magus.claimable(client), info.escrow + FORMATION_DEPOSIT, "the owner got no more than its escrow back");
    }
}
