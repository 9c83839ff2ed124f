// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IChallengeManager} from "../../contracts/interfaces/IChallengeManager.sol";
import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice The economic attacks of issue 11 items 2, 6 and 7 played against the contracts: each
/// test names the attack and asserts who gained and who lost what.
contract EconomicAttacksTest is Fixture {
    address internal client;
    address internal alt; // the attacker's second address

    function setUp() public override {
        super.setUp();
        client = newActor("client");
        alt = newActor("alt");
        registerNodes(6, 1_100 ether);
    }

    function _blob(uint8 members, uint32 fragments) internal returns (MaguId id) {
        id = createMagu(client, blobParams(members, 2, 1, 30, 10));
        formMagu(id);
        commitData(id, 7, fragments);
    }

    /// @dev The first period `member` is challenged in, and one in which its challenge names a fragment.
    function _challenged(MaguId id, address member) internal returns (uint64 p) {
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        for (p = info.startPeriod; p < info.endPeriod; ++p) {
            (, uint32 count) = magus.challengedData(id, member, p);
            if (count == 0) continue;
            rollToPeriod(p);
            if (challenges.challengeFor(id, member, p).length > 0) return p;
        }
        revert("never challenged");
    }

    /// @notice Issue 11.2: a member marks its own miss from a second address to get the marker's
    /// share back. The pair still loses the rest of the slash (devnet: 90 %; here 80 %), which goes
    /// to the reward pool: self-marking is a discount, never a gain.
    function test_attack_selfMarking_pairLosesAllButTheMarkerShare() public {
        MaguId id = _blob(3, 9);
        address member = membersOf(id)[0];
        uint64 p = _challenged(id, member);
        rollPastDeadline(p);
        uint256 pairBefore = registry.stakeOf(member) + token.balanceOf(alt);
        uint256 pool = token.balanceOf(address(rewards));
        uint256 slash = registry.stakeOf(member) * SLASH_BPS / 10_000;
        vm.prank(alt);
        challenges.markMissed(id, member, p);
        uint256 pairAfter = registry.stakeOf(member) + token.balanceOf(alt);
        assertEq(token.balanceOf(alt), slash * MARKER_BPS / 10_000, "the second address got the marker share");
        assertEq(pairBefore - pairAfter, slash - slash * MARKER_BPS / 10_000, "the pair lost the rest");
        assertEq(token.balanceOf(address(rewards)), pool + slash - slash * MARKER_BPS / 10_000, "to the pool");
        assertGt(pairBefore - pairAfter, 0, "self-marking costs money");
        simReport(
            "self-marking (11.2)",
            delta(pairBefore, pairAfter),
            delta(pool, token.balanceOf(address(rewards))),
            "the marker share only; the rest to the pool"
        );
    }

    /// @notice Issue 11.7: once drawn, a member unstaked down to its lock, so a miss then cost 5 % of
    /// the lock instead of 5 % of minStake + lock. Its stake now keeps minStake beside the lock.
    function test_attack_unstakeToLock_refusedAndMissesCostTheFullBase() public {
        MaguId id = _blob(3, 9);
        address member = membersOf(id)[0];
        INodeRegistry.NodeInfo memory n = registry.nodeInfo(member);
        uint256 free = n.stake - n.locked - MIN_STAKE;
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryStakeLocked.selector, member, free + 1, free));
        vm.prank(member);
        registry.requestUnstake(free + 1);
        vm.prank(member);
        registry.requestUnstake(free);
        assertEq(registry.stakeOf(member), MIN_STAKE + STAKE_PER_MEMBER, "minStake beside the lock");
        assertTrue(registry.isBacked(member), "still backs its membership");

        uint64 p = _challenged(id, member);
        rollPastDeadline(p);
        uint256 before = registry.stakeOf(member);
        vm.prank(alt);
        challenges.markMissed(id, member, p);
        uint256 cost = before - registry.stakeOf(member);
        assertEq(cost, (MIN_STAKE + STAKE_PER_MEMBER) * SLASH_BPS / 10_000, "a miss costs its share of minStake + lock");
        assertGt(cost, STAKE_PER_MEMBER * SLASH_BPS / 10_000, "more than the share of the lock alone");
        simReport("unstake to the lock (11.7)", -int256(cost), 0, "unstake refused; a miss costs minStake + lock's share");
    }

    /// @notice Issue 11.6: a member whose challenge names no fragment (it holds nothing under
    /// placement) passed with an empty proof every period and was paid. One stripe of 3 over 5
    /// members leaves two members empty: they can neither pass nor be marked, and earn nothing.
    function test_attack_emptyProof_earnsNothing() public {
        MaguId id = createMagu(client, blobParams(5, 2, 1, 30, 4));
        formMagu(id);
        commitData(id, 7, 3);
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        uint64 p = info.startPeriod;
        rollToPeriod(p);
        uint256 empty;
        for (uint256 s; s < info.members.length; ++s) {
            address m = info.members[s];
            if (challenges.challengeFor(id, m, p).length > 0) continue;
            ++empty;
            vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNothingToProve.selector, id, m, p));
            vm.prank(m);
            challenges.submitProof(id, p, new IChallengeManager.FragmentProof[](0));
        }
        assertEq(empty, 2, "two members hold nothing");
        for (uint64 q = p; q < info.endPeriod; ++q) {
            proveAll(id, q);
        }
        rollPastDeadline(p);
        for (uint256 s; s < info.members.length; ++s) {
            address m = info.members[s];
            if (magus.membership(id, m).provedPeriods > 0) continue;
            vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNothingToProve.selector, id, m, p));
            challenges.markMissed(id, m, p);
        }
        vm.roll(settleBlock(id));
        magus.settle(id);
        uint256 unpaid;
        for (uint256 s; s < info.members.length; ++s) {
            if (magus.claimable(info.members[s]) == 0) ++unpaid;
        }
        assertEq(unpaid, 2, "the empty members were paid nothing");
        simReport("empty proofs (11.6)", 0, 0, "refused: members holding nothing are paid nothing");
    }

    /// @notice Issue 11.7: settle released the locks (and the stake under them) while the last
    /// period's miss could still be marked, forgiving it. Settle now waits for that mark window.
    function test_attack_settleBeforeTheLastMark_waitsForTheWindow() public {
        MaguId id = _blob(3, 9);
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        address lazy = info.members[0];
        uint64 last = info.endPeriod - 1;
        rollToPeriod(last);
        require(challenges.challengeFor(id, lazy, last).length > 0, "lazy is challenged in the last period");
        vm.roll(magus.periodStart(info.endPeriod + 1));
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotExpired.selector, id, settleBlock(id)));
        magus.settle(id);
        uint256 before = registry.stakeOf(lazy);
        vm.prank(alt);
        challenges.markMissed(id, lazy, last);
        assertLt(registry.stakeOf(lazy), before, "the last miss is still slashed");
        simReport(
            "settle before the last mark (11.7)",
            delta(before, registry.stakeOf(lazy)),
            0,
            "settle waits; the last miss is slashed"
        );
        vm.roll(settleBlock(id));
        magus.settle(id);
        assertEq(uint8(magus.maguInfo(id).status), uint8(IMaguRegistry.Status.Ended), "settled after the window");
    }

    /// @notice A lazy member keeps only half of its fragments (the even ones) and proves when its
    /// challenge names only kept ones. Compared with an honest member of the same Magu: it is paid
    /// for fewer periods, slashed for each miss and evicted (losing the repair bounty), which costs
    /// far more than the pay: the storage it saved is worth at most its share of the escrow.
    function test_attack_lazyNode_dropsHalfAndLoses() public {
        MaguId id = _blob(3, 30);
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        address lazy = info.members[0];
        address honest = info.members[1];
        uint256 lazyStake = registry.stakeOf(lazy);
        uint256 honestStake = registry.stakeOf(honest);
        uint256 misses;
        for (uint64 p = info.startPeriod; p < info.endPeriod; ++p) {
            rollToPeriod(p);
            for (uint256 s; s < info.members.length; ++s) {
                address m = info.members[s];
                if (!magus.membership(id, m).active) continue;
                IChallengeManager.ChallengeItem[] memory items = challenges.challengeFor(id, m, p);
                if (items.length == 0) continue;
                bool holds = true;
                if (m == lazy) {
                    for (uint256 k; k < items.length; ++k) {
                        if (items[k].fragment % 2 == 1) holds = false;
                    }
                }
                if (holds) prove(id, m, p);
            }
            if (magus.membership(id, lazy).active && challenges.proofState(id, lazy, p) == 0) {
                rollPastDeadline(p);
                if (challenges.challengeFor(id, lazy, p).length > 0) {
                    vm.prank(alt);
                    challenges.markMissed(id, lazy, p);
                    ++misses;
                }
            }
        }
        assertFalse(magus.membership(id, lazy).active, "the lazy member was evicted");
        vm.roll(settleBlock(id));
        magus.settle(id);
        int256 lazyPnl = delta(lazyStake, registry.stakeOf(lazy)) + int256(magus.claimable(lazy));
        int256 honestPnl = delta(honestStake, registry.stakeOf(honest)) + int256(magus.claimable(honest));
        assertEq(misses, MAX_MISSES, "evicted at its maxMisses-th miss");
        assertTrue(lazyPnl < honestPnl, "the lazy member ends below the honest one");
        assertTrue(lazyPnl < 0, "and below where it started");
        simReport("lazy node drops 50 % (availability)", lazyPnl - honestPnl, honestPnl, "missed, slashed, evicted");
    }
}
