// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice Issue 11.7: reputation was kept on chain but read by nothing, so its penalties cost
/// nothing. It now scales selection weight (x5/4 reliable, x1/2 below 0, 0 at or below -50), is
/// bounded, and fades toward 0.
contract ReputationTest is Fixture {
    address internal client;
    address[] internal nodes;

    function setUp() public override {
        super.setUp();
        client = newActor("client");
        nodes = registerNodes(5, 200 ether);
        // The test plays a reputation module for the tier checks (the miss test goes through
        // ChallengeManager).
        registry.grantRole(registry.REPUTATION_ROLE(), address(this));
    }

    function _queued(address node) internal view returns (uint256 queued) {
        (, queued) = registry.selectionWeight(node);
    }

    /// @notice Issue 11.7 played: a member misses a period. Before, its selection weight stayed its
    /// stake; now the miss (reputation -10) halves it from two selection epochs on, so it is drafted
    /// half as often; five misses and it is never drafted.
    function test_attack_missedProofCostsSelectionWeight() public {
        MaguId id = setupMagu(client, vectorParams(3, 2, 12, 6), 21, 12);
        address member = membersOf(id)[0];
        uint64 period = magus.maguInfo(id).startPeriod;
        uint256 stake = registry.stakeOf(member);
        assertEq(_queued(member), stake, "weight = stake before the miss");
        rollPastDeadline(period);
        challenges.markMissed(id, member, period);
        assertEq(registry.reputationOf(member), challenges.REPUTATION_MISS(), "reputation -10");
        uint256 slashed = stake - registry.stakeOf(member);
        assertEq(_queued(member), (stake - slashed) / 2, "the miss halves the selection weight");
        rollPastWeights();
        registry.applyWeightChanges(100);
        (uint256 effective,) = registry.selectionWeight(member);
        assertEq(effective, (stake - slashed) / 2, "in the tree two selection epochs later");
        for (uint256 i; i < 4; ++i) registry.adjustReputation(member, -10);
        assertEq(_queued(member), 0, "at -50 the node weighs nothing: never drafted");
        simReport(
            "reputation penalties (11.7)",
            -int256(slashed),
            0,
            "a miss halves its selection weight, five exclude it until the penalty fades"
        );
    }

    function test_weight_tiers() public {
        address a = nodes[0];
        uint256 stake = registry.stakeOf(a);
        registry.adjustReputation(a, 49);
        assertEq(_queued(a), stake, "below REPUTATION_RELIABLE: the stake");
        registry.adjustReputation(a, 1);
        assertEq(_queued(a), stake * 5 / 4, "reliable: 5/4 of the stake");
        registry.adjustReputation(a, -51);
        assertEq(_queued(a), stake / 2, "below 0: half");
        registry.adjustReputation(a, -48);
        assertEq(_queued(a), stake / 2, "-49: still half");
        registry.adjustReputation(a, -1);
        assertEq(_queued(a), 0, "-50: excluded");
    }

    /// @notice Old merit cannot pay for unlimited misses: reputation stays within ±100.
    function test_reputation_bounded() public {
        address a = nodes[0];
        registry.adjustReputation(a, 1000);
        assertEq(registry.reputationOf(a), registry.REPUTATION_BOUND(), "capped at +100");
        for (uint256 i; i < 6; ++i) registry.adjustReputation(a, -25);
        assertEq(registry.reputationOf(a), -50, "six misses of -25 from the cap reach -50");
        assertEq(_queued(a), 0, "excluded");
        registry.adjustReputation(a, -1000);
        assertEq(registry.reputationOf(a), -registry.REPUTATION_BOUND(), "floored at -100");
    }

    /// @notice A penalty fades one point per REPUTATION_DECAY_BLOCKS; the node (or anyone) writes
    /// the faded value with refreshReputation and its weight comes back; a bonus fades the same way.
    function test_reputation_fadesAndRefreshRestoresWeight() public {
        address a = nodes[0];
        uint256 stake = registry.stakeOf(a);
        registry.adjustReputation(a, -50);
        assertEq(_queued(a), 0, "excluded");
        vm.roll(blockNumber() + REPUTATION_DECAY_BLOCKS);
        assertEq(registry.reputationOf(a), -49, "one point faded");
        assertEq(_queued(a), 0, "the tree does not follow by itself");
        vm.prank(newActor("anyone"));
        registry.refreshReputation(a);
        assertEq(_queued(a), stake / 2, "refreshed: drafted again, at half weight");
        vm.roll(blockNumber() + 49 * REPUTATION_DECAY_BLOCKS);
        registry.refreshReputation(a);
        assertEq(registry.reputationOf(a), 0, "faded to 0");
        assertEq(_queued(a), stake, "full weight");

        address b = nodes[1];
        registry.adjustReputation(b, 60);
        assertEq(_queued(b), stake * 5 / 4, "reliable");
        vm.roll(blockNumber() + 11 * REPUTATION_DECAY_BLOCKS);
        registry.refreshReputation(b);
        assertEq(registry.reputationOf(b), 49, "a bonus fades too");
        assertEq(_queued(b), stake, "no longer reliable");
    }

    /// @notice A reliable node is drafted more often than an unreliable one with the same stake:
    /// 400 draws of one among two nodes of equal stake, reputations 50 and -10.
    function test_reliableNodeDraftedMoreThanUnreliable() public {
        Params memory p = defaultParams();
        deploy(p);
        registry.grantRole(registry.REPUTATION_ROLE(), address(this));
        address good = newActor("good");
        address poor = newActor("poor");
        registerNode(good, 200 ether, ROLE_NODE);
        registerNode(poor, 200 ether, ROLE_NODE);
        registry.adjustReputation(good, 50);
        registry.adjustReputation(poor, -10);
        rollPastWeights();
        registry.applyWeightChanges(100);
        uint256 goodDraws;
        for (uint256 i; i < 400; ++i) {
            address[] memory drawn = registry.drawNodes(i, 1, STAKE_PER_MEMBER, 1, new address[](0));
            if (drawn[0] == good) ++goodDraws;
        }
        // Weights 250 and 100: the reliable node is drawn 5/7 of the time (~286 of 400).
        assertGt(goodDraws, 250, "the reliable node is drafted far more often");
        assertLt(goodDraws, 320, "in proportion to its weight");
        INodeRegistry.NodeInfo memory info = registry.nodeInfo(poor);
        assertEq(info.reputation, -10, "nodeInfo shows the reputation");
    }
}
