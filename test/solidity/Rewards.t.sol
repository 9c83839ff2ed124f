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

    function _one(address a) internal pure returns (address[] memory list) {
        list = new address[](1);
        list[0] = a;
    }

    function _ones(uint256 count) internal pure returns (uint256[] memory w) {
        w = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            w[i] = 1;
        }
    }

    /// @dev `list` sorted ascending (insertion sort; test lists are short).
    function _sorted(address[] memory list) internal pure returns (address[] memory) {
        for (uint256 i = 1; i < list.length; ++i) {
            address cur = list[i];
            uint256 k = i;
            while (k > 0 && list[k - 1] > cur) {
                list[k] = list[k - 1];
                --k;
            }
            list[k] = cur;
        }
        return list;
    }

    function _submitAll(uint256 w1, uint256 w2) internal {
        for (uint256 i; i < validators.length; ++i) {
            _submit(validators[i], w1, w2);
        }
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

    function test_submitWeights_revertsWhenWeightingItself() public {
        address both = newActor("both");
        registerNode(both, 100 ether, ROLE_NODE | ROLE_VALIDATOR);
        address[] memory list = new address[](3);
        list[0] = n1;
        list[1] = n2;
        list[2] = both;
        list = _sorted(list);
        uint256 self = list[0] == both ? 0 : (list[1] == both ? 1 : 2);
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsSelfWeight.selector, both, self));
        vm.prank(both);
        rewards.submitWeights(0, list, _ones(3));
        // Weighting the other nodes is fine: the role pair is allowed, only the self-weight is not.
        vm.prank(both);
        rewards.submitWeights(0, _pair(n1, n2), _weights(1, 1));
        (address[] memory nodes,) = rewards.weightsOf(0, both);
        assertEq(nodes, _pair(n1, n2), "accepted without itself");
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

    /// @dev Redeploys with at most `maxValidators` counted per epoch and fresh nodes n1 < n2.
    function _redeploy(uint16 maxValidators) internal {
        Params memory p = defaultParams();
        p.maxValidatorsPerEpoch = maxValidators;
        deploy(p);
        address[] memory list = registerNodes(2, 100 ether);
        (n1, n2) = list[0] < list[1] ? (list[0], list[1]) : (list[1], list[0]);
    }

    /// @notice A full epoch admits a new submitter only in place of the validator with the least
    /// counted stake (the lower of its stake at submission and now), and only with more stake.
    function test_submitWeights_displacesTheSmallestWhenFull() public {
        _redeploy(2);
        address a = registerValidators(1, 100 ether)[0];
        address b = registerValidators(1, 200 ether)[0];
        address c = registerValidators(1, 150 ether)[0];
        address d = registerValidators(1, 100 ether)[0];
        _submit(a, 1, 1);
        _submit(b, 1, 1);

        vm.expectEmit(true, true, true, true, address(rewards));
        emit IRewards.ValidatorDisplaced(0, a, c, 100 ether);
        _submit(c, 1, 1);
        (address[] memory counted, uint256[] memory stakes) = rewards.validatorsOf(0);
        assertEq(counted, _pair(c, b), "c took a's place");
        assertEq(stakes[0], 150 ether, "c's stake");
        (address[] memory nodes,) = rewards.weightsOf(0, a);
        assertEq(nodes.length, 0, "a no longer counted");

        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsValidatorsFull.selector, 0, 100 ether, 150 ether));
        vm.prank(d);
        rewards.submitWeights(0, _pair(n1, n2), _weights(1, 1));
        _submit(b, 1, 0); // a counted validator replaces its weights without a new place

        // b unstakes most of its stake: it now counts 50, and a (100) takes its place.
        vm.prank(b);
        registry.requestUnstake(150 ether);
        vm.expectEmit(true, true, true, true, address(rewards));
        emit IRewards.ValidatorDisplaced(0, b, a, 50 ether);
        _submit(a, 1, 1);
        (counted,) = rewards.validatorsOf(0);
        assertEq(counted, _pair(c, a), "a back in b's place");

        rewards.finalizeEpoch(_endEpoch());
        uint256 validatorPool = EMISSION * VALIDATOR_SHARE_BPS / 10_000;
        assertEq(rewards.claimable(b), 0, "displaced: nothing");
        assertEq(rewards.claimable(c), validatorPool * 150 / 250, "c by stake");
        assertEq(rewards.claimable(a), validatorPool * 100 / 250, "a by stake");
    }

    // ------------------------------------------------------------ constructor

    function test_constructor_revertsOnInvalidConfig() public {
        bytes32[6] memory fields = [
            bytes32("epochBlocks"),
            "validatorShareBps",
            "maxWeights",
            "maxValidatorsPerEpoch",
            "entriesPerEpoch",
            "quorumBps"
        ];
        for (uint256 i; i <= fields.length; ++i) {
            IRewards.Config memory c = rewards.config();
            uint256 value;
            if (i == 0) c.epochBlocks = 0;
            if (i == 1) (c.validatorShareBps, value) = (10_001, 10_001);
            if (i == 2) c.maxWeights = 0;
            if (i == 3) c.maxValidatorsPerEpoch = 0;
            if (i == 4) (c.maxValidatorsPerEpoch, c.maxWeights, value) = (17, 32, 17 * 32);
            if (i == 5) (c.quorumBps, value) = (10_001, 10_001);
            if (i == 6) (c.quorumLookbackEpochs, value) = (65, 65);
            bytes32 field = i < fields.length ? fields[i] : bytes32("quorumLookbackEpochs");
            bytes memory code = artifactCode("Rewards.sol:Rewards", abi.encode(c));
            vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsInvalidConfig.selector, field, value));
            create(code);
        }
        // At the bounds it deploys.
        IRewards.Config memory ok = rewards.config();
        (ok.maxValidatorsPerEpoch, ok.maxWeights, ok.quorumBps, ok.quorumLookbackEpochs) = (16, 32, 10_000, 64);
        assertTrue(deployArtifact("Rewards.sol:Rewards", abi.encode(ok)) != address(0), "deploys at the bounds");
    }

    function test_config_returnsTheDeploymentParameters() public view {
        IRewards.Config memory c = rewards.config();
        assertEq(c.maxWeights, MAX_WEIGHTS, "maxWeights");
        assertEq(c.maxValidatorsPerEpoch, MAX_VALIDATORS_PER_EPOCH, "maxValidatorsPerEpoch");
        assertEq(c.quorumBps, QUORUM_BPS, "quorumBps");
        assertEq(c.quorumLookbackEpochs, QUORUM_LOOKBACK_EPOCHS, "quorumLookbackEpochs");
        assertEq(c.minQuorumStake, MIN_QUORUM_STAKE, "minQuorumStake");
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

    /// @notice Reputation in rewards (issue 15.2): n1 and n2 have the same stake and every validator
    /// weighs their work alike; n2 missed a proof (-10). Each is paid its score x (400 + r) / 400,
    /// so n1 gets 400 / (400 + r2) of n2's pay; once the penalty has faded they are paid the same.
    function test_finalizeEpoch_reputationScalesNodePayUntilItFades() public {
        // Without reputation in rewards the two would be paid alike: the control.
        _submitAll(1, 1);
        rewards.finalizeEpoch(_endEpoch());
        assertEq(rewards.claimable(n1), rewards.claimable(n2), "same stake, same work, same pay");
        uint256 paid1 = rewards.claimable(n1);
        uint256 paid2 = rewards.claimable(n2);

        int64 miss = challenges.REPUTATION_MISS();
        vm.prank(address(challenges));
        registry.adjustReputation(n2, miss);
        _submitAll(1, 1);
        uint64 epoch = _endEpoch();
        int256 r2 = registry.reputationOf(n2);
        assertTrue(r2 < 0, "the penalty has not faded yet");
        assertTrue(r2 >= miss, "at most one epoch of fading");
        // The last epoch's rounding dust joins this one.
        uint256 distributable = rewards.pool() + EMISSION;
        uint256 nodePool = distributable - distributable * VALIDATOR_SHARE_BPS / 10_000;
        rewards.finalizeEpoch(epoch);
        uint256 got1 = rewards.claimable(n1) - paid1;
        uint256 got2 = rewards.claimable(n2) - paid2;
        uint256 scale = uint256(rewards.REPUTATION_REWARD_SCALE());
        assertEq(got1, nodePool * scale / (2 * scale - uint256(-r2)), "n1: its full score");
        assertEq(got2, nodePool * (scale - uint256(-r2)) / (2 * scale - uint256(-r2)), "n2: its score x (400 + r2) / 400");
        assertGt(got1, got2, "the reliable node is paid more");
        assertApproxEqAbs(got1 - got2, nodePool * uint256(-r2) / (2 * scale - uint256(-r2)), 1, "by the stated amount");
        assertLe(got1 + got2, nodePool, "reputation moves pay between nodes, adds none");

        // Faded: REPUTATION_DECAY_BLOCKS per point.
        vm.roll(blockNumber() + uint256(-r2) * REPUTATION_DECAY_BLOCKS);
        assertEq(registry.reputationOf(n2), 0, "faded");
        paid1 = rewards.claimable(n1);
        paid2 = rewards.claimable(n2);
        _submitAll(1, 1);
        rewards.finalizeEpoch(_endEpoch());
        assertEq(rewards.claimable(n1) - paid1, rewards.claimable(n2) - paid2, "paid the same once the penalty faded");
    }

    /// @notice The reward band is bounded: a node at the reputation bound gets 5/4 of its score,
    /// one at minus the bound 3/4, so a 50/50 split becomes 5:3.
    function test_finalizeEpoch_reputationRewardIsBounded() public {
        vm.startPrank(address(challenges));
        registry.adjustReputation(n1, 1_000); // clamped to +100 by NodeRegistry
        registry.adjustReputation(n2, -1_000); // -100
        vm.stopPrank();
        _submitAll(1, 1);
        uint64 epoch = _endEpoch();
        uint256 up = uint256(int256(400 + registry.reputationOf(n1)));
        uint256 down = uint256(int256(400 + registry.reputationOf(n2)));
        assertGe(up, 499, "at the bound, at most one point faded");
        assertLe(down, 301, "at minus the bound, at most one point faded");
        rewards.finalizeEpoch(epoch);
        uint256 nodePool = EMISSION * (10_000 - VALIDATOR_SHARE_BPS) / 10_000;
        assertEq(rewards.claimable(n1), nodePool * up / (up + down), "x (400 + r1) / 400: about 5/4");
        assertEq(rewards.claimable(n2), nodePool * down / (up + down), "x (400 + r2) / 400: about 3/4");
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

    /// @notice Validators naming different, overlapping subsets: each node's median counts the
    /// validators that left it out as weight 0 (the merge of the sorted lists keeps that).
    function test_finalizeEpoch_absentWeightCountsAsZero() public {
        address n3 = registerNodes(1, 100 ether)[0];
        address[] memory three = new address[](3);
        (three[0], three[1], three[2]) = (n1, n2, n3);
        three = _sorted(three);
        vm.prank(validators[0]);
        rewards.submitWeights(0, three, _ones(3)); // 1/3 each
        vm.prank(validators[1]);
        rewards.submitWeights(0, _pair(n1, n2), _weights(1, 1)); // 1/2, 1/2, n3 absent
        vm.prank(validators[2]);
        rewards.submitWeights(0, _one(n1), _ones(1)); // all on n1
        rewards.finalizeEpoch(_endEpoch());

        uint256 third = uint256(1e18) / 3;
        // Medians (equal stakes, ascending, the second of three): n1 1/2, n2 1/3, n3 0.
        // Scores (x 100): n1 = 1/3 + 1/2 + 1/2, n2 = 1/3 + 1/3, n3 = 0.
        uint256 s1 = third * 100 + 0.5e18 * 100 * 2;
        uint256 s2 = third * 100 * 2;
        uint256 nodePool = EMISSION * (10_000 - VALIDATOR_SHARE_BPS) / 10_000;
        assertEq(rewards.claimable(n1), nodePool * s1 / (s1 + s2), "n1");
        assertEq(rewards.claimable(n2), nodePool * s2 / (s1 + s2), "n2");
        assertEq(rewards.claimable(n3), 0, "n3: named by one validator of three");
    }

    /// @notice Random subsets, weights and stakes: the credits equal those of the previous
    /// implementation's algorithm (a full validator x node matrix, absent = 0, each column's
    /// stake-weighted median by insertion sort), computed here from the stored weights.
    function testFuzz_finalizeEpoch_matchesReferenceConsensus(uint256 seed) public {
        address[] memory nodes = new address[](5);
        (nodes[0], nodes[1]) = (n1, n2);
        address[] memory more = registerNodes(3, 100 ether);
        (nodes[2], nodes[3], nodes[4]) = (more[0], more[1], more[2]);
        nodes = _sorted(nodes);
        address[] memory vals = new address[](4);
        (vals[0], vals[1], vals[2]) = (validators[0], validators[1], validators[2]);
        vals[3] = registerValidators(1, 100 ether)[0];
        for (uint256 i; i < 4; ++i) {
            addStake(vals[i], (1 + uint256(keccak256(abi.encode(seed, "stake", i))) % 300) * 1 ether);
            uint256 mask = 1 + uint256(keccak256(abi.encode(seed, "mask", i))) % 31;
            uint256 count;
            for (uint256 j; j < 5; ++j) {
                if (mask & (1 << j) != 0) ++count;
            }
            address[] memory list = new address[](count);
            uint256[] memory w = new uint256[](count);
            uint256 k;
            for (uint256 j; j < 5; ++j) {
                if (mask & (1 << j) == 0) continue;
                list[k] = nodes[j];
                w[k++] = uint256(keccak256(abi.encode(seed, "weight", i, j))) % 10;
            }
            w[0] += 1; // not all zero
            vm.prank(vals[i]);
            rewards.submitWeights(0, list, w);
        }
        rewards.finalizeEpoch(_endEpoch());

        (uint256[] memory nodeCredit, uint256[] memory validatorCredit) = _referenceCredits(vals, nodes);
        for (uint256 j; j < 5; ++j) {
            assertEq(rewards.claimable(nodes[j]), nodeCredit[j], "node credit as the reference");
        }
        for (uint256 i; i < 4; ++i) {
            assertEq(rewards.claimable(vals[i]), validatorCredit[i], "validator credit as the reference");
        }
    }

    /// @dev The previous implementation's consensus over the stored weights (epoch 0, pool empty).
    function _referenceCredits(address[] memory vals, address[] memory nodes)
        internal
        view
        returns (uint256[] memory nodeCredit, uint256[] memory validatorCredit)
    {
        uint256 v = vals.length;
        uint256 n = nodes.length;
        uint256[] memory stakes = new uint256[](v);
        uint256[][] memory w = new uint256[][](v);
        uint256 totalStake;
        for (uint256 i; i < v; ++i) {
            stakes[i] = registry.stakeOf(vals[i]);
            totalStake += stakes[i];
            w[i] = new uint256[](n);
            (address[] memory listed, uint256[] memory weights) = rewards.weightsOf(0, vals[i]);
            for (uint256 k; k < listed.length; ++k) {
                for (uint256 j; j < n; ++j) {
                    if (nodes[j] == listed[k]) w[i][j] = weights[k];
                }
            }
        }
        uint256[] memory nodeScore = new uint256[](n);
        uint256[] memory kept = new uint256[](v);
        uint256 totalNode;
        for (uint256 j; j < n; ++j) {
            uint256[] memory order = new uint256[](v);
            for (uint256 i; i < v; ++i) {
                order[i] = i;
            }
            for (uint256 i = 1; i < v; ++i) {
                uint256 cur = order[i];
                uint256 k = i;
                while (k > 0 && w[order[k - 1]][j] > w[cur][j]) {
                    order[k] = order[k - 1];
                    --k;
                }
                order[k] = cur;
            }
            uint256 median;
            uint256 cumulative;
            for (uint256 i; i < v; ++i) {
                cumulative += stakes[order[i]];
                if (cumulative * 2 >= totalStake) {
                    median = w[order[i]][j];
                    break;
                }
            }
            for (uint256 i; i < v; ++i) {
                uint256 clipped = w[i][j] < median ? w[i][j] : median;
                kept[i] += clipped;
                nodeScore[j] += clipped * stakes[i] / 1e18;
            }
            totalNode += nodeScore[j];
        }
        uint256 validatorPool = EMISSION * VALIDATOR_SHARE_BPS / 10_000;
        uint256 nodePool = EMISSION - validatorPool;
        nodeCredit = new uint256[](n);
        for (uint256 j; j < n; ++j) {
            if (totalNode > 0) nodeCredit[j] = nodePool * nodeScore[j] / totalNode;
        }
        uint256 totalTrust;
        for (uint256 i; i < v; ++i) {
            kept[i] = stakes[i] * kept[i] / 1e18;
            totalTrust += kept[i];
        }
        validatorCredit = new uint256[](v);
        for (uint256 i; i < v; ++i) {
            if (totalTrust > 0) validatorCredit[i] = validatorPool * kept[i] / totalTrust;
        }
    }

    // ------------------------------------------------------------ quorum

    /// @notice The first epoch has no reference: the floor (one minimum stake here) is the quorum.
    /// Later ones need half the largest stake of the 8 epochs before; exactly half is enough.
    function test_finalizeEpoch_quorumIsHalfTheRecentLargestStake() public {
        _submitAll(1, 1);
        (uint256 stake, uint256 required) = rewards.quorum(0);
        assertEq(stake, 300 ether, "epoch 0 counts three validators");
        assertEq(required, MIN_QUORUM_STAKE, "no reference yet: the floor");
        rewards.finalizeEpoch(_endEpoch());
        assertEq(rewards.countedStake(0), 300 ether, "recorded");

        addStake(validators[0], 50 ether); // 150: exactly half of 300
        _submit(validators[0], 1, 1);
        uint64 epoch = _endEpoch();
        (stake, required) = rewards.quorum(epoch);
        assertEq(stake, 150 ether, "one validator of 150");
        assertEq(required, 150 ether, "half of 300");
        uint256 supply = token.totalSupply();
        rewards.finalizeEpoch(epoch);
        assertEq(token.totalSupply(), supply + EMISSION, "distributed at exactly the quorum");

        _submit(validators[1], 1, 1); // 100 < 150
        epoch = _endEpoch();
        vm.expectEmit(true, false, false, true, address(rewards));
        emit IRewards.EpochQuorumMissed(epoch, 100 ether, 150 ether);
        vm.expectEmit(true, false, false, true, address(rewards));
        emit IRewards.EpochFinalized(epoch, 0, 0, 1, 0);
        rewards.finalizeEpoch(epoch);
        assertEq(token.totalSupply(), supply + EMISSION, "nothing minted below the quorum");
        assertEq(rewards.countedStake(epoch), 100 ether, "a missed epoch is recorded too");
    }

    /// @notice The documented limit: the reference forgets stake older than the look-back, so a
    /// lone validator is distributed again once the others have been away for that many epochs.
    function test_finalizeEpoch_quorumForgetsStakeOlderThanLookback() public {
        _submitAll(1, 1);
        rewards.finalizeEpoch(_endEpoch()); // epoch 0: 300
        vm.roll(rewards.config().genesisBlock + uint256(QUORUM_LOOKBACK_EPOCHS) * EPOCH_BLOCKS);
        uint64 epoch = rewards.currentEpoch(); // 8: epoch 0 is still in its look-back
        _submit(validators[0], 1, 1);
        (, uint256 required) = rewards.quorum(epoch);
        assertEq(required, 150 ether, "epoch 0 still counts");
        epoch = rewards.currentEpoch() + 1; // 9: epochs 1-8 only
        vm.roll(rewards.config().genesisBlock + uint256(epoch) * EPOCH_BLOCKS);
        _submit(validators[0], 1, 1);
        (, required) = rewards.quorum(epoch);
        assertEq(required, MIN_QUORUM_STAKE, "forgotten: the floor");
    }

    /// @notice With a floor above one validator's stake, a lone validator is not distributed even
    /// in the first epoch; three are.
    function test_finalizeEpoch_quorumFloor() public {
        Params memory p = defaultParams();
        p.minQuorumStake = 250 ether;
        deploy(p);
        validators = registerValidators(3, 100 ether);
        address[] memory list = registerNodes(2, 100 ether);
        (n1, n2) = list[0] < list[1] ? (list[0], list[1]) : (list[1], list[0]);

        _submit(validators[0], 1, 1);
        uint64 epoch = _endEpoch();
        vm.expectEmit(true, false, false, true, address(rewards));
        emit IRewards.EpochQuorumMissed(epoch, 100 ether, 250 ether);
        rewards.finalizeEpoch(epoch);
        assertEq(token.totalSupply(), INITIAL_SUPPLY, "below the floor");

        _submitAll(1, 1);
        rewards.finalizeEpoch(_endEpoch());
        assertEq(token.totalSupply(), INITIAL_SUPPLY + EMISSION, "three validators reach it");
    }

    // ------------------------------------------------------------ attacks (issue 11, item 5)

    /// @notice A node registered with both roles, alone in an epoch, weights itself to take the
    /// whole emission (node and validator shares). It is refused, so nobody submitted: nothing is
    /// minted and it is credited nothing. The old code credited it all 1,000 MURI.
    function test_attack_selfWeighting_refused() public {
        address attacker = newActor("both");
        registerNode(attacker, 100 ether, ROLE_NODE | ROLE_VALIDATOR);
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsSelfWeight.selector, attacker, 0));
        vm.prank(attacker);
        rewards.submitWeights(0, _one(attacker), _ones(1));
        rewards.finalizeEpoch(_endEpoch());
        assertEq(rewards.claimable(attacker), 0, "attacker credited nothing");
        assertEq(token.totalSupply(), INITIAL_SUPPLY, "nothing minted for it");

        // Next epoch the honest validators weight n1 and n2; the attacker earns nothing as a node.
        _submitAll(1, 1);
        rewards.finalizeEpoch(_endEpoch());
        uint256 nodePool = EMISSION * (10_000 - VALIDATOR_SHARE_BPS) / 10_000;
        assertEq(rewards.claimable(n1), nodePool / 2, "n1 paid");
        assertEq(rewards.claimable(n2), nodePool / 2, "n2 paid");
        assertEq(rewards.claimable(attacker), 0, "attacker still nothing");
        simReport("self-weighting (11.5)", int256(rewards.claimable(attacker)), 0, "refused");
    }

    /// @notice A validator coalition under half of the submitted stake (two of five equal
    /// validators) names only its own sybil nodes; the three honest ones name n1 and n2. Clipping
    /// to the stake-weighted median leaves the sybils nothing: the coalition's validators even lose
    /// their share of the validator pool (their weight did not survive the clip).
    function test_attack_validatorCoalition_underHalfGainsNothing() public {
        address[] memory coalition = registerValidators(2, 100 ether);
        address[] memory sybilNodes = registerNodes(2, 100 ether);
        address[] memory sorted = _sorted(sybilNodes);
        _submitAll(1, 1);
        uint64 epoch = rewards.currentEpoch();
        for (uint256 i; i < coalition.length; ++i) {
            vm.prank(coalition[i]);
            rewards.submitWeights(epoch, sorted, _ones(2));
        }
        rewards.finalizeEpoch(_endEpoch());
        uint256 gain = rewards.claimable(sybilNodes[0]) + rewards.claimable(sybilNodes[1]);
        for (uint256 i; i < coalition.length; ++i) {
            gain += rewards.claimable(coalition[i]);
        }
        assertEq(gain, 0, "the coalition and its nodes gain nothing");
        uint256 nodePool = EMISSION * (10_000 - VALIDATOR_SHARE_BPS) / 10_000;
        assertEq(rewards.claimable(n1) + rewards.claimable(n2), nodePool, "the honest nodes share the node pool");
        simReport(
            "validator coalition < 50 % (rewards)",
            int256(gain),
            int256(rewards.claimable(n1) + rewards.claimable(n2)),
            "clipped to the stake-weighted median"
        );
    }

    /// @notice In an epoch the honest validators skip, a validator with a sybil node submits alone,
    /// naming its sybil, while the pool holds 250 MURI of slashes. Its 100 MURI of stake is below
    /// half of the 300 the epoch before counted: nothing is minted, the sybil and the attacker are
    /// credited nothing and the pool waits; the next honest epoch distributes it. The old code gave
    /// the sybil the node pool (80 % of 1,250) and the attacker the validator pool (20 %).
    function test_attack_loneSubmitter_capturesNothing() public {
        address attacker = registerValidators(1, 100 ether)[0];
        address sybil = registerNodes(1, 100 ether)[0];
        _submitAll(1, 1);
        rewards.finalizeEpoch(_endEpoch()); // epoch 0: 300 counted

        uint256 dust = rewards.pool(); // the validators' thirds round down
        fund(address(rewards), 250 ether); // slashes received
        uint256 pool = rewards.pool();
        assertEq(pool, dust + 250 ether, "the pool");
        uint64 epoch = rewards.currentEpoch();
        vm.prank(attacker);
        rewards.submitWeights(epoch, _one(sybil), _ones(1));
        _endEpoch();
        uint256 supply = token.totalSupply();
        vm.expectEmit(true, false, false, true, address(rewards));
        emit IRewards.EpochQuorumMissed(epoch, 100 ether, 150 ether);
        rewards.finalizeEpoch(epoch);
        assertEq(rewards.claimable(sybil), 0, "sybil gained nothing");
        assertEq(rewards.claimable(attacker), 0, "attacker gained nothing");
        assertEq(token.totalSupply(), supply, "nothing minted");
        assertEq(rewards.pool(), pool, "the pool waits");

        _submitAll(1, 1);
        epoch = _endEpoch();
        rewards.finalizeEpoch(epoch);
        uint256 total = EMISSION + pool;
        uint256 nodePool = total - total * VALIDATOR_SHARE_BPS / 10_000;
        assertEq(rewards.claimable(n1), EMISSION * 8 / 10 / 2 + nodePool / 2, "n1: two epochs");
        assertEq(rewards.claimable(n2), EMISSION * 8 / 10 / 2 + nodePool / 2, "n2: two epochs");
        assertEq(rewards.claimable(sybil), 0, "sybil still nothing");
        assertEq(rewards.claimable(attacker), 0, "attacker still nothing");
        assertLe(rewards.pool(), 2, "the pool went to the honest epoch (rounding dust left)");
        simReport(
            "lone submitter (11.5)",
            int256(rewards.claimable(attacker) + rewards.claimable(sybil)),
            int256(rewards.claimable(n1) + rewards.claimable(n2)),
            "below quorum: nothing minted, the pool waits"
        );
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

/// @notice The validator flood of issue 11 item 5 at the devnet bound (16 validators x 32 weights).
contract RewardsBoundTest is Fixture {
    uint256 internal constant V = MAX_VALIDATORS_PER_EPOCH;
    uint256 internal constant W = MAX_WEIGHTS;

    function setUp() public override {
        Params memory p = defaultParams();
        p.maxNodes = uint32((V + 1) * W + V + 2); // the nodes and the validators
        deploy(p);
    }

    /// @dev all[from, from + W) sorted ascending.
    function _sortedChunk(address[] memory all, uint256 from) internal pure returns (address[] memory list) {
        list = new address[](W);
        for (uint256 k; k < W; ++k) {
            address cur = all[from + k];
            uint256 j = k;
            while (j > 0 && list[j - 1] > cur) {
                list[j] = list[j - 1];
                --j;
            }
            list[j] = cur;
        }
    }

    /// @notice 16 sybil validators at the minimum stake fill the epoch, each weighting 32 nodes
    /// nobody else names: 512 entries over 512 nodes, the bound (the old code took any number of
    /// validators and was O(validators x weights x nodes)). A 17th sybil is refused; an honest
    /// validator with more stake than the 15 sybils left together displaces one and weights its
    /// own 32 nodes. finalizeEpoch stays far below a 30M-gas block and pays only the honest
    /// validator and its nodes: the sybils and their nodes gain nothing.
    function test_attack_validatorFlood_finalizeStaysBounded() public {
        address[] memory nodes = registerNodes((V + 1) * W, MIN_STAKE);
        address[] memory sybils = registerValidators(V + 1, MIN_STAKE);
        address honest = registerValidators(1, 2_000 ether)[0];
        uint64 epoch = rewards.currentEpoch();
        uint256[] memory ones = new uint256[](W);
        for (uint256 k; k < W; ++k) {
            ones[k] = 1;
        }
        for (uint256 i; i < V; ++i) {
            vm.prank(sybils[i]);
            rewards.submitWeights(epoch, _sortedChunk(nodes, i * W), ones);
        }
        vm.expectRevert(abi.encodeWithSelector(IRewards.RewardsValidatorsFull.selector, epoch, MIN_STAKE, MIN_STAKE));
        vm.prank(sybils[V]);
        rewards.submitWeights(epoch, _sortedChunk(nodes, 0), ones);
        vm.expectEmit(true, true, true, true, address(rewards));
        emit IRewards.ValidatorDisplaced(epoch, sybils[0], honest, MIN_STAKE);
        vm.prank(honest);
        rewards.submitWeights(epoch, _sortedChunk(nodes, V * W), ones);
        (address[] memory counted,) = rewards.validatorsOf(epoch);
        assertEq(counted.length, V, "the epoch counts the bound");

        vm.roll(rewards.config().genesisBlock + (uint256(epoch) + 1) * EPOCH_BLOCKS);
        uint256 before = gasleft();
        rewards.finalizeEpoch(epoch);
        uint256 used = before - gasleft();
        assertLt(used, 10_000_000, "finalizeEpoch at the bound");

        uint256 nodePool = EMISSION * (10_000 - VALIDATOR_SHARE_BPS) / 10_000;
        for (uint256 j; j < V * W; ++j) {
            assertEq(rewards.claimable(nodes[j]), 0, "a sybil's node gains nothing");
        }
        for (uint256 j = V * W; j < (V + 1) * W; ++j) {
            assertEq(rewards.claimable(nodes[j]), nodePool / W, "the honest validator's nodes share the node pool");
        }
        for (uint256 i; i <= V; ++i) {
            assertEq(rewards.claimable(sybils[i]), 0, "a sybil validator gains nothing");
        }
        assertEq(rewards.claimable(honest), EMISSION - nodePool, "the honest validator takes the validator pool");
        assertEq(rewards.pool(), 0, "everything credited");
        uint256 sybilGain;
        for (uint256 j; j < V * W; ++j) {
            sybilGain += rewards.claimable(nodes[j]);
        }
        for (uint256 i; i <= V; ++i) {
            sybilGain += rewards.claimable(sybils[i]);
        }
        simReport("validator flood (11.5)", int256(sybilGain), int256(EMISSION), "bounded; displaced by stake");
    }

}
