// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {DeployedMaguRegistry as MaguRegistry, DeployedNodeRegistry as NodeRegistry, DeployedRewards as Rewards} from "./utils/Deployed.sol";
import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";
import {IRewards} from "../../contracts/interfaces/IRewards.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {ReentrantToken} from "./utils/ReentrantToken.sol";
import {Test} from "./utils/Test.sol";

/// @notice A token that calls back into the contract moving it cannot re-enter NodeRegistry,
/// MaguRegistry or Rewards: every token-moving entry point is guarded.
contract ReentrancyTest is Test {
    ReentrantToken internal token;
    NodeRegistry internal registry;
    MaguRegistry internal magus;
    Rewards internal rewards;
    address internal node;
    address internal client;

    function setUp() public {
        token = new ReentrantToken();
        INodeRegistry.Config memory registryConfig =
            INodeRegistry.Config({
            token: address(token), minStake: 100 ether, unbondingBlocks: 10, maxNodes: 8, selectionEpochBlocks: 2, reputationDecayBlocks: 0
        });
        registry = NodeRegistry(deployArtifact("NodeRegistry.sol:NodeRegistry", abi.encode(registryConfig, address(this))));
        IMaguRegistry.Config memory maguConfig = IMaguRegistry.Config({
            token: address(token),
            nodeRegistry: address(registry),
            genesisBlock: 0,
            periodBlocks: 10,
            stakePerMember: 50 ether,
            repairBounty: 5 ether,
            maxMembers: 8,
            maxFragments: 64,
            maxDurationPeriods: 10,
            bountySink: address(0xB0B),
            fetchFragmentsPerPeriod: 64,
            formationDeposit: 1 ether,
            settleDelayBlocks: 0
        });
        magus = MaguRegistry(deployArtifact("MaguRegistry.sol:MaguRegistry", abi.encode(maguConfig, address(this))));
        IRewards.Config memory rewardsConfig = IRewards.Config({
            token: address(token),
            nodeRegistry: address(registry),
            genesisBlock: 0,
            epochBlocks: 10,
            emissionPerEpoch: 100 ether,
            validatorShareBps: 2000,
            maxWeights: 8,
            maxValidatorsPerEpoch: 4,
            quorumBps: 5000,
            quorumLookbackEpochs: 8,
            minQuorumStake: 0
        });
        rewards = Rewards(deployArtifact("Rewards.sol:Rewards", abi.encode(rewardsConfig)));
        registry.grantRole(registry.MODULE_ROLE(), address(magus));
        registry.grantRole(registry.SLASHER_ROLE(), address(magus));

        node = makeAddr("node");
        client = makeAddr("client");
        token.mint(node, 1000 ether);
        token.mint(client, 1000 ether);
        vm.prank(node);
        token.approve(address(registry), type(uint256).max);
        vm.prank(client);
        token.approve(address(magus), type(uint256).max);
        vm.prank(node);
        registry.register(200 ether, 3, 1 << 40, hex"01", new string[](0));
    }

    function _expectReentrantCall() internal {
        vm.expectRevert(ReentrancyGuard.ReentrancyGuardReentrantCall.selector);
    }

    function test_withdraw_rejectsReentrantToken() public {
        vm.prank(node);
        registry.requestUnstake(50 ether);
        skipBlocks(10);
        token.arm(address(registry), abi.encodeCall(INodeRegistry.withdraw, ()));
        _expectReentrantCall();
        vm.prank(node);
        registry.withdraw();
        assertEq(registry.nodeInfo(node).unbonding, 50 ether, "nothing withdrawn");

        // Disarmed, the same withdrawal goes through: the revert above was the guard.
        token.arm(address(token), abi.encodeCall(IERC20.totalSupply, ()));
        vm.prank(node);
        registry.withdraw();
        assertEq(registry.nodeInfo(node).unbonding, 0, "withdrawn");
        // The first callback was rolled back with the withdrawal; the harmless one stayed.
        assertEq(token.reentries(), 1, "the harmless callback fired");
    }

    function test_addStake_rejectsReentrantToken() public {
        token.arm(address(registry), abi.encodeCall(INodeRegistry.addStake, (1 ether)));
        _expectReentrantCall();
        vm.prank(node);
        registry.addStake(10 ether);
        assertEq(registry.stakeOf(node), 200 ether, "stake unchanged");
    }

    function test_register_rejectsReentrantToken() public {
        address other = makeAddr("other");
        token.mint(other, 500 ether);
        vm.prank(other);
        token.approve(address(registry), type(uint256).max);
        token.arm(address(registry), abi.encodeCall(INodeRegistry.withdraw, ()));
        _expectReentrantCall();
        vm.prank(other);
        registry.register(100 ether, 1, 1, hex"02", new string[](0));
    }

    function test_createMagu_rejectsReentrantToken() public {
        token.arm(address(magus), abi.encodeCall(IMaguRegistry.claim, ()));
        _expectReentrantCall();
        vm.prank(client);
        magus.createMagu(_params());
    }

    function test_maguClaim_rejectsReentrantToken() public {
        vm.startPrank(client);
        MaguId id = magus.createMagu(_params());
        magus.cancelMagu(id);
        vm.stopPrank();
        uint256 refund = magus.claimable(client);
        assertGt(refund, 0, "refund credited");

        token.arm(address(magus), abi.encodeCall(IMaguRegistry.claim, ()));
        _expectReentrantCall();
        vm.prank(client);
        magus.claim();
        assertEq(magus.claimable(client), refund, "still claimable once");
    }

    function test_rewardsClaim_rejectsReentrantToken() public {
        address[] memory nodes = new address[](1);
        nodes[0] = node;
        uint256[] memory weights = new uint256[](1);
        weights[0] = 1;
        // A validator weights the node (a validator may not weight itself).
        address validator = makeAddr("validator");
        token.mint(validator, 200 ether);
        vm.startPrank(validator);
        token.approve(address(registry), type(uint256).max);
        registry.register(200 ether, 2, 0, hex"02", new string[](0));
        rewards.submitWeights(0, nodes, weights);
        vm.stopPrank();
        skipBlocks(10);
        rewards.finalizeEpoch(0);
        uint256 owed = rewards.claimable(node);
        assertEq(owed, 80 ether, "the node's share");

        token.arm(address(rewards), abi.encodeCall(IRewards.claim, ()));
        _expectReentrantCall();
        vm.prank(node);
        rewards.claim();
        assertEq(rewards.claimable(node), owed, "unchanged");
    }

    function _params() internal pure returns (IMaguRegistry.MaguParams memory p) {
        p.kind = IMaguRegistry.Kind.Vector;
        p.metric = IMaguRegistry.Metric.InnerProduct;
        p.dimension = 8;
        p.members = 1;
        p.replication = 1;
        p.maxFragments = 4;
        p.durationPeriods = 2;
        p.pricePerFragmentPeriod = 1 ether;
    }
}
