// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {PlacementLib} from "../../contracts/libraries/PlacementLib.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice Rendezvous placement: balance across slots, agreement between `holds`, `topSlots`
/// and MaguRegistry.holders, and minimal movement when a slot changes hands.
///
/// Balance bound. With random scores each fragment's top-r slots are a uniform r-subset of the
/// n slots, so a slot's load over F fragments is Binomial(F, p = r/n): mean F·r/n, variance
/// F·p·(1-p). Two checks, each failing for a correct placement with probability about 1e-7
/// per run or less (exact binomial tails computed for every n in 3..16 and r in 1..3; the
/// chi-square approximation checked against 2·10^5 simulated placements):
///  - every slot: |load - mean| <= 6σ + 1;
///  - all slots together: Σ (load - mean)² / (F·p·(1-p)) · (n-1)/n <= the 1 - 1e-9 quantile of
///    χ²(n-1) (the loads sum to F·r, and two slots' indicators have covariance -p(1-p)/(n-1)).
/// A placement that favours low slot numbers, ignores the group, or skips a slot fails them.
contract PlacementTest is Fixture {
    uint256 internal constant FRAGMENTS = 512;
    uint256 internal constant MOVE_FRAGMENTS = 64;

    MaguId internal vectorMagu;
    MaguId internal blobMagu;

    function setUp() public override {
        super.setUp();
        registerNodes(12, 300 ether);
        address client = newActor("client");
        vectorMagu = createMagu(client, vectorParams(8, 2, uint32(MOVE_FRAGMENTS), 20));
        blobMagu = createMagu(client, blobParams(8, 4, 2, 60, 20));
        formMagu(vectorMagu);
        formMagu(blobMagu);
        commitFirstRoot(vectorMagu, bytes32(uint256(1)), uint32(MOVE_FRAGMENTS));
        commitFirstRoot(blobMagu, bytes32(uint256(2)), 60);
    }

    /// @dev Upper 1e-9 quantiles of χ²(df) for df = 2..15, rounded up (headroom for the
    /// slightly heavier tail of the exact distribution; checked by simulation).
    function _chi2Bound(uint256 df) internal pure returns (uint256) {
        uint8[14] memory q = [42, 45, 48, 51, 54, 56, 59, 61, 63, 66, 68, 70, 72, 74];
        return q[df - 2];
    }

    function _checkBalance(uint256[] memory load, uint256 total, uint256 r) internal pure {
        uint256 n = load.length;
        if (r == n) {
            for (uint256 s; s < n; ++s) {
                assertEq(load[s], total, "every slot holds everything");
            }
            return;
        }
        // Scaled by n: deviation d_s = n·load_s - total·r, variance n²·F·p(1-p) = F·r·(n-r).
        uint256 variance = total * r * (n - r);
        uint256 sixSigma = 6 * (Math.sqrt(variance) + 1) + n;
        uint256 chi;
        for (uint256 s; s < n; ++s) {
            uint256 a = n * load[s];
            uint256 b = total * r;
            uint256 d = a > b ? a - b : b - a;
            assertLe(d, sixSigma, "slot load within 6 sigma of the mean (scaled by n)");
            chi += d * d;
        }
        assertLe(chi * (n - 1), _chi2Bound(n - 1) * variance * n, "chi-square of the loads");
    }

    function testFuzz_placement_vectorLoadIsBalanced(uint256 maguId, uint256 slots, uint256 replication) public pure {
        uint256 n = bound(slots, 3, 16);
        uint256 r = bound(replication, 1, 3);
        uint256[] memory load = new uint256[](n);
        for (uint256 f; f < FRAGMENTS; ++f) {
            uint256[] memory top = PlacementLib.topSlots(maguId, f, n, r);
            for (uint256 i; i < r; ++i) {
                for (uint256 j; j < i; ++j) {
                    assertTrue(top[i] != top[j], "replicas on distinct slots");
                }
                ++load[top[i]];
            }
        }
        _checkBalance(load, FRAGMENTS, r);
    }

    /// @notice The same bounds over 8192 fragments, where they are tight enough to catch a slot
    /// with ~20% more than its share (6σ / mean = 18% for n = 16, r = 1).
    function test_placement_balancedOverManyFragments() public pure {
        uint256 many = 8192;
        uint8[3] memory ns = [16, 7, 5];
        uint8[3] memory rs = [1, 2, 3];
        for (uint256 c; c < 3; ++c) {
            uint256[] memory load = new uint256[](ns[c]);
            for (uint256 f; f < many; ++f) {
                uint256[] memory top = PlacementLib.topSlots(1000 + c, f, ns[c], rs[c]);
                for (uint256 i; i < top.length; ++i) {
                    ++load[top[i]];
                }
            }
            _checkBalance(load, many, rs[c]);
        }
    }

    /// @notice `holds` (what challenges use) and `topSlots` (what holders() uses) agree.
    function testFuzz_placement_holdsMatchesTopSlots(uint256 maguId, uint256 slots, uint256 width, uint256 group)
        public
        pure
    {
        uint256 n = bound(slots, 1, 16);
        uint256 w = bound(width, 1, n);
        uint256[] memory top = PlacementLib.topSlots(maguId, group, n, n);
        for (uint256 s; s < n; ++s) {
            uint256 rank = PlacementLib.rankOf(maguId, group, n, s);
            assertEq(top[rank], s, "rank is the position in the ranking");
            // Vector with replication w; blob with stripe width w (fragment = group·w + j).
            assertEq(PlacementLib.holds(maguId, group, n, w, 0, s), rank < w, "vector holds");
            if (group < type(uint256).max / 16) {
                for (uint256 j; j < w; ++j) {
                    assertEq(PlacementLib.holds(maguId, group * w + j, n, 0, w, s), rank == j, "blob holds shard j");
                }
            }
        }
        for (uint256 i = 1; i < n; ++i) {
            assertGe(
                PlacementLib.score(maguId, group, top[i - 1]), PlacementLib.score(maguId, group, top[i]), "sorted"
            );
        }
    }

    /// @notice A blob stripe's shards sit on distinct members, and holders() names slot rank[f % w].
    function test_holders_blobStripesOnDistinctMembers() public view {
        address[] memory members = membersOf(blobMagu);
        for (uint256 stripe; stripe < 10; ++stripe) {
            uint256[] memory top = PlacementLib.topSlots(MaguId.unwrap(blobMagu), stripe, 8, 6);
            for (uint256 j; j < 6; ++j) {
                address[] memory h = magus.holders(blobMagu, stripe * 6 + j);
                assertEq(h.length, 1, "one holder per shard");
                assertEq(h[0], members[top[j]], "shard j on the j-th ranked slot");
                for (uint256 k; k < j; ++k) {
                    assertNotEq(h[0], members[top[k]], "distinct members per stripe");
                }
            }
        }
    }

    /// @dev Leaves `slot`, refills it, and checks that exactly the fragments of that slot
    /// changed holder (to the newcomer, in the same position) and nothing else moved.
    function _checkMovement(MaguId id, uint256 slot, uint256 count, uint256 perFragment) internal {
        address[][] memory before = new address[][](count);
        for (uint256 f; f < count; ++f) {
            before[f] = magus.holders(id, f);
        }
        address leaver = membersOf(id)[slot];
        vm.startPrank(leaver);
        magus.leave(id);
        // Out of the candidate pool, so the slot changes hands (see MaguRegistryTest for the
        // case where the leaver itself is drawn back).
        registry.requestUnstake(_unstakable(leaver));
        vm.stopPrank();
        rollToWindow(blockNumber()); // the vacancy was requested in this block
        magus.fillVacancy(id, uint8(slot));
        address newcomer = membersOf(id)[slot];
        assertTrue(newcomer != leaver && newcomer != address(0), "slot refilled");

        uint256 moved = _countMoved(id, slot, before, perFragment, newcomer, leaver);
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        uint256 n = info.params.members;
        // Binomial(T, a/n): vector T = count fragments, a = r; blob T = count / w stripes, a = w
        // (the slot holds one shard of a stripe iff it ranks in the stripe's top w).
        uint256 trials = info.params.kind == IMaguRegistry.Kind.Vector ? count : count / perFragment;
        uint256 mean = trials * perFragment / n;
        uint256 sigma = Math.sqrt(trials * perFragment * (n - perFragment)) / n + 1;
        assertApproxEqAbs(moved, mean, 6 * sigma, "about r/n of the fragments (1/n of the data) move");
        assertGt(moved, 0, "the slot held something");
    }

    /// @notice How many fragments of `id` moved from `leaver` to `newcomer` (in `slot`); checks each
    /// against its holders `before` and the placement rule.
    function _countMoved(
        MaguId id,
        uint256 slot,
        address[][] memory before,
        uint256 perFragment,
        address newcomer,
        address leaver
    ) internal view returns (uint256 moved) {
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        for (uint256 f; f < before.length; ++f) {
            bool held = _checkHolders(magus.holders(id, f), before[f], leaver, newcomer);
            assertEq(held, _slotHolds(id, info, f, perFragment, slot), "moved iff the slot held it");
            if (held) ++moved;
        }
    }

    /// @notice A fragment's holders after `leaver`'s slot went to `newcomer`: the same count, the
    /// newcomer where the leaver was, everyone else in place. Whether the leaver held it.
    function _checkHolders(address[] memory now_, address[] memory before, address leaver, address newcomer)
        internal
        pure
        returns (bool held)
    {
        assertEq(now_.length, before.length, "same replica count");
        for (uint256 k; k < now_.length; ++k) {
            if (before[k] == leaver) {
                held = true;
                assertEq(now_[k], newcomer, "the slot's fragments go to the newcomer");
            } else {
                assertEq(now_[k], before[k], "other fragments stay");
            }
        }
    }

    /// @notice Whether `slot` holds fragment `f` of `id` by the placement rule (r = `perFragment`
    /// replicas of a vector Magu's fragment, or a stripe `perFragment` wide of a blob Magu).
    function _slotHolds(MaguId id, IMaguRegistry.MaguInfo memory info, uint256 f, uint256 perFragment, uint256 slot)
        internal
        pure
        returns (bool)
    {
        bool vector = info.params.kind == IMaguRegistry.Kind.Vector;
        return PlacementLib.holds(
            MaguId.unwrap(id), f, info.params.members, vector ? perFragment : 0, vector ? 0 : perFragment, slot
        );
    }

    function testFuzz_movement_vectorOnlyVacatedSlotMoves(uint256 slot) public {
        _checkMovement(vectorMagu, bound(slot, 0, 7), MOVE_FRAGMENTS, 2);
    }

    function testFuzz_movement_blobOnlyVacatedSlotMoves(uint256 slot) public {
        _checkMovement(blobMagu, bound(slot, 0, 7), 60, 6);
    }

    /// @notice The same after an eviction by ChallengeManager (two missed periods).
    function test_movement_afterEvictionOnlyEvictedSlotMoves() public {
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(vectorMagu);
        address lazy = info.members[5];
        address[][] memory before = new address[][](MOVE_FRAGMENTS);
        for (uint256 f; f < MOVE_FRAGMENTS; ++f) {
            before[f] = magus.holders(vectorMagu, f);
        }
        for (uint64 k; k < MAX_MISSES; ++k) {
            rollPastDeadline(info.startPeriod + k);
            challenges.markMissed(vectorMagu, lazy, info.startPeriod + k);
        }
        assertEq(membersOf(vectorMagu)[5], address(0), "evicted");
        // Keep the evicted node out of the draw (MaguRegistryTest covers it being drawn back).
        uint256 free = _unstakable(lazy);
        vm.prank(lazy);
        registry.requestUnstake(free);
        rollToWindow(blockNumber()); // the vacancy was requested in this block
        magus.fillVacancy(vectorMagu, 5);
        address newcomer = membersOf(vectorMagu)[5];
        for (uint256 f; f < MOVE_FRAGMENTS; ++f) {
            address[] memory now_ = magus.holders(vectorMagu, f);
            for (uint256 k; k < 2; ++k) {
                assertEq(now_[k], before[f][k] == lazy ? newcomer : before[f][k], "only the evicted slot moves");
            }
        }
    }

    /// @dev What `node` may unstake: a node with locked stake keeps minStake beside the lock.
    function _unstakable(address node) internal view returns (uint256) {
        uint256 locked = registry.nodeInfo(node).locked;
        uint256 keep = locked > 0 ? locked + MIN_STAKE : 0;
        uint256 stake = registry.stakeOf(node);
        return stake > keep ? stake - keep : 0;
    }
}
