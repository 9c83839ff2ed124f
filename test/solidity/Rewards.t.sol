// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IRewards} from "../../contracts/interfaces/IRewards.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice Rewards: weight submissions, stake-weighted median clipping, emission split, claims.
contract RewardsTest is Fixture {
    address[] internal validators;
    address internal n1; // n1 < n2 (address order, as submissions require)
    address internal n2;

    function setUp() public override {
        super.setUp();
        validators = registerValidators(3, 100 ether);
        address[] memory list = registerNodes(2, 100 ether);
        (n1, n2) = list[0] < list[1] ? (list[0], list[1]) : (list[1], list[0]);
    }

    function _pair(address a, address b) internal pure returns (address[] memory list) {
        list = new address[](2);
        list[0] = a;
        list[1] = b;
    }

    function _weights(uint256 a, uint256 b) internal pure returns (uint256[] memory w) {
        w = new uint256[](2);
        w[0] = a;
        w[1] = b;
    }

    function _submit(address validator, uint256 w1, uint256 w2) internal {
        uint64 epoch = rewards.currentEpoch();
        vm.prank(validator);
        rewards.submitWeights(epoch, _pair(n1, n2), _weights(w1, w2));
    }

    function _invalid(bytes32 reason, uint256 index) internal pure returns (bytes memory) {
        return abi.encodeWithSelector(IRewards.RewardsInvalidWeights.selector, reason, index);
    }

    function _endEpoch() internal returns (uint64 epoch) {
        epoch = rewards.currentEpoch();
        vm.roll(rewards.config().genesisBlock + (uint256(epoch) + 1) * EPOCH_BLOCKS);
    }

    // ------------------------------------------------------------ submitWeights

    function test_submitWeights_revertsForNonValidator() public {
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsNotValidator.selector, n1));
        vm.prank(n1);
        rewards.submitWeights(0, _pair(n1, n2), _weights(1, 1));

        address stranger = newActor("stranger");
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsNotValidator.selector, stranger));
        vm.prank(stranger);
        rewards.submitWeights(0, _pair(n1, n2), _weights(1, 1));
    }

    function test_submitWeights_revertsForWrongEpoch() public {
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsWrongEpoch.selector, 1, 0));
        vm.prank(validators[0]);
        rewards.submitWeights(1, _pair(n1, n2), _weights(1, 1));

        _endEpoch();
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsWrongEpoch.selector, 0, 1));
        vm.prank(validators[0]);
        rewards.submitWeights(0, _pair(n1, n2), _weights(1, 1));
    }

    function test_submitWeights_revertsOnMalformedLists() public {
        vm.startPrank(validators[0]);
        vm.expectRevert(_invalid("count", 0));
        rewards.submitWeights(0, new address[](0), new uint256[](0));

        vm.expectRevert(_invalid("count", MAX_WEIGHTS + 1));
        rewards.submitWeights(0, new address[](MAX_WEIGHTS + 1), new uint256[](MAX_WEIGHTS + 1));

        vm.expectRevert(_invalid("length", 1));
        rewards.submitWeights(0, _pair(n1, n2), new uint256[](1));

        vm.expectRevert(_invalid("order", 1));
        rewards.submitWeights(0, _pair(n2, n1), _weights(1, 1));

        vm.expectRevert(_invalid("order", 1));
        rewards.submitWeights(0, _pair(n1, n1), _weights(1, 1));

        vm.expectRevert(_invalid("sum", 0));
        rewards.submitWeights(0, _pair(n1, n2), _weights(0, 0));
        vm.stopPrank();
    }

    function test_submitWeights_revertsForInactiveNode() public {
        // A validator-only account is not a node; an unstaked node is not active.
        address v = validators[1];
        address[] memory list = v < n1 ? _pair(v, n1) : _pair(n1, v);
        uint256 bad = v < n1 ? 0 : 1;
        vm.expectRevert(_invalid("node", bad));
        vm.prank(validators[0]);
        rewards.submitWeights(0, list, _weights(1, 1));

        vm.prank(n2);
        registry.requestUnstake(1 ether);
        vm.expectRevert(_invalid("node", 1));
        vm.prank(validators[0]);
        rewards.submitWeights(0, _pair(n1, n2), _weights(1, 1));
    }

    function test_submitWeights_normalisesAndReplaces() public {
        vm.expectEmit(true, true, false, true, address(rewards));
        emit IRewards.WeightsSubmitted(0, validators[0], 2, 100 ether);
        _submit(validators[0], 1, 3);
        (address[] memory nodes, uint256[] memory w) = rewards.weightsOf(0, validators[0]);
        assertEq(nodes, _pair(n1, n2), "nodes");
        assertEq(w[0], 0.25e18, "normalised 1/4");
        assertEq(w[1], 0.75e18, "normalised 3/4");

        _submit(validators[0], 7, 0);
        (, w) = rewards.weightsOf(0, validators[0]);
        assertEq(w[0], 1e18, "replaced");
        assertEq(w[1], 0, "replaced");
    }

    // ------------------------------------------------------------ finalizeEpoch

    function test_finalizeEpoch_revertsWhenEpochNotOver() public {
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsEpochNotOver.selector, 0, 0));
        rewards.finalizeEpoch(0);
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsEpochNotOver.selector, 5, 0));
        rewards.finalizeEpoch(5);
    }

    function test_finalizeEpoch_revertsWhenAlreadyFinalized() public {
        _submit(validators[0], 1, 1);
        _endEpoch();
        rewards.finalizeEpoch(0);
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsAlreadyFinalized.selector, 0));
        rewards.finalizeEpoch(0);
        assertEq(token.totalSupply(), INITIAL_SUPPLY + EMISSION, "minted once");
    }

    function test_finalizeEpoch_withoutValidatorsMintsNothing() public {
        _endEpoch();
        vm.expectEmit(true, false, false, true, address(rewards));
        emit IRewards.EpochFinalized(0, 0, 0, 0, 0);
        rewards.finalizeEpoch(0);
        assertTrue(rewards.isFinalized(0), "finalised");
        assertEq(token.totalSupply(), INITIAL_SUPPLY, "nothing minted");
    }

    /// @notice Two validators split evenly, the third puts everything on n1: the median
    /// (0.5 for both nodes) clips the outlier, so n1 gets 150/250 of the node pool instead of
    /// the 2/3 an unclipped average would give, and the outlier validator keeps half its trust.
    function test_finalizeEpoch_clipsOutlierToStakeWeightedMedian() public {
        _submit(validators[0], 1, 1);
        _submit(validators[1], 1, 1);
        _submit(validators[2], 1, 0);
        uint64 epoch = _endEpoch();

        vm.expectEmit(true, false, false, true, address(rewards));
        emit IRewards.EpochFinalized(epoch, EMISSION, EMISSION, 3, 2);
        rewards.finalizeEpoch(epoch);

        uint256 nodePool = EMISSION * (10_000 - VALIDATOR_SHARE_BPS) / 10_000; // 800
        uint256 validatorPool = EMISSION - nodePool; // 200
        // Clipped scores: n1 = 3 × 0.5 × 100 = 150, n2 = 2 × 0.5 × 100 = 100.
        assertEq(rewards.claimable(n1), nodePool * 150 / 250, "n1 clipped share");
        assertEq(rewards.claimable(n2), nodePool * 100 / 250, "n2 share");
        // Trust: 100, 100 and 50 (the outlier kept half of its weight).
        assertEq(rewards.claimable(validators[0]), validatorPool * 100 / 250, "v0");
        assertEq(rewards.claimable(validators[1]), validatorPool * 100 / 250, "v1");
        assertEq(rewards.claimable(validators[2]), validatorPool * 50 / 250, "outlier validator");
        assertEq(rewards.totalClaimable(), EMISSION, "everything credited");
        assertEq(rewards.pool(), 0, "no dust");
        assertEq(token.totalSupply(), INITIAL_SUPPLY + EMISSION, "minted the emission");
    }

    /// @notice A validator holding most of the stake sets the median.
    function test_finalizeEpoch_medianFollowsStake() public {
        addStake(validators[0], 400 ether); // 500 vs 100 + 100
        _submit(validators[0], 1, 0);
        _submit(validators[1], 1, 1);
        _submit(validators[2], 1, 1);
        uint64 epoch = _endEpoch();
        rewards.finalizeEpoch(epoch);

        uint256 nodePool = EMISSION * (10_000 - VALIDATOR_SHARE_BPS) / 10_000;
        uint256 validatorPool = EMISSION - nodePool;
        // Medians: n1 = 1.0 (the big validator), n2 = 0. Trust: 500, 50, 50.
        assertEq(rewards.claimable(n1), nodePool, "n1 takes the node pool");
        assertEq(rewards.claimable(n2), 0, "n2 clipped to zero");
        assertEq(rewards.claimable(validators[0]), validatorPool * 500 / 600, "big validator");
        assertEq(rewards.claimable(validators[1]), validatorPool * 50 / 600, "small validator");
        uint256 credited = rewards.totalClaimable();
        assertLe(EMISSION - credited, 2, "only rounding dust left");
        assertEq(rewards.pool(), EMISSION - credited, "dust stays in the pool");
    }

    /// @notice Slashed stake sent to Rewards joins the next distribution.
    function test_finalizeEpoch_distributesPoolWithEmission() public {
        fund(address(rewards), 250 ether); // stands for slashes received
        assertEq(rewards.pool(), 250 ether, "pool");
        _submit(validators[0], 1, 1);
        uint64 epoch = _endEpoch();
        rewards.finalizeEpoch(epoch);
        uint256 total = EMISSION + 250 ether;
        uint256 nodePool = total * (10_000 - VALIDATOR_SHARE_BPS) / 10_000;
        assertEq(rewards.claimable(n1), nodePool / 2, "n1");
        assertEq(rewards.claimable(n2), nodePool / 2, "n2");
        assertEq(rewards.claimable(validators[0]), total - nodePool, "sole validator");
        assertEq(rewards.pool(), 0, "pool emptied");
    }

    // ------------------------------------------------------------ claim

    function test_claim_paysCreditedOnce() public {
        _submit(validators[0], 1, 1);
        _submit(validators[1], 1, 1);
        _submit(validators[2], 1, 0);
        rewards.finalizeEpoch(_endEpoch());
        uint256 amount = rewards.claimable(n1);
        uint256 before = token.balanceOf(n1);
        vm.expectEmit(true, false, false, true, address(rewards));
        emit IRewards.RewardClaimed(n1, amount);
        vm.prank(n1);
        rewards.claim();
        assertEq(token.balanceOf(n1), before + amount, "paid");
        assertEq(rewards.claimable(n1), 0, "cleared");
        assertEq(rewards.totalClaimable(), EMISSION - amount, "total");
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsNothingToClaim.selector, n1));
        vm.prank(n1);
        rewards.claim();
    }

    function test_claim_revertsWithNothingToClaim() public {
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsNothingToClaim.selector, validators[0]));
        vm.prank(validators[0]);
        rewards.claim();
    }
}
