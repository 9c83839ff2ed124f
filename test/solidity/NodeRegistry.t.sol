// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IAccessControl} from "@openzeppelin/contracts/access/IAccessControl.sol";
import {IERC20Errors} from "@openzeppelin/contracts/interfaces/draft-IERC6093.sol";
import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice NodeRegistry: registration, stake, unbonding, locks, slashing, selection, roles.
contract NodeRegistryTest is Fixture {
    address internal alice;
    address internal bob;
    address internal module;

    function setUp() public override {
        super.setUp();
        alice = newActor("alice");
        bob = newActor("bob");
        module = newActor("module");
        fund(alice, 10_000 ether);
        fund(bob, 10_000 ether);
        vm.prank(alice);
        token.approve(address(registry), type(uint256).max);
        vm.prank(bob);
        token.approve(address(registry), type(uint256).max);
    }

    function _register(address who, uint256 stake) internal {
        vm.prank(who);
        registry.register(stake, ROLE_NODE, NODE_CAPACITY, peerIdOf(who), multiaddrs());
    }

    function _grantModule() internal {
        registry.grantRole(registry.MODULE_ROLE(), module);
        registry.grantRole(registry.SLASHER_ROLE(), module);
    }

    // ------------------------------------------------------------ register

    function test_register_storesRecordAndPullsStake() public {
        vm.expectEmit(true, false, false, true, address(registry));
        emit INodeRegistry.NodeRegistered(alice, 150 ether, ROLE_NODE, NODE_CAPACITY, peerIdOf(alice));
        _register(alice, 150 ether);

        INodeRegistry.NodeInfo memory n = registry.nodeInfo(alice);
        assertTrue(n.registered, "registered");
        assertEq(n.roles, ROLE_NODE, "roles");
        assertEq(n.capacity, NODE_CAPACITY, "capacity");
        assertEq(n.stake, 150 ether, "stake");
        assertEq(n.locked, 0, "locked");
        assertEq(n.unbonding, 0, "unbonding");
        assertEq(n.peerId, peerIdOf(alice), "peer id");
        assertEq(n.multiaddrs.length, 1, "multiaddrs");
        assertEq(token.balanceOf(address(registry)), 150 ether, "stake pulled");
        assertEq(token.balanceOf(alice), 10_000 ether - 150 ether, "paid by alice");
        assertEq(registry.totalHeld(), 150 ether, "held");
        assertEq(registry.nodeCount(), 1, "count");
        assertEq(registry.nodeAt(0), alice, "listed");
        assertTrue(registry.isActive(alice, ROLE_NODE), "active node");
        assertFalse(registry.isActive(alice, ROLE_VALIDATOR), "not a validator");
        assertFalse(registry.isActive(bob, ROLE_NODE), "bob unknown");
    }

    function test_register_revertsOnZeroStake() public {
        vm.expectRevert(INodeRegistry.RegistryZeroAmount.selector);
        _register(alice, 0);
    }

    function test_register_revertsBelowMinStake() public {
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.RegistryInsufficientStake.selector, alice, MIN_STAKE - 1, MIN_STAKE)
        );
        _register(alice, MIN_STAKE - 1);
    }

    function test_register_revertsWhenAlreadyRegistered() public {
        _register(alice, MIN_STAKE);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryAlreadyRegistered.selector, alice));
        _register(alice, MIN_STAKE);
    }

    function test_register_revertsOnInvalidRoles() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryInvalidRoles.selector, uint8(0)));
        vm.prank(alice);
        registry.register(MIN_STAKE, 0, NODE_CAPACITY, peerIdOf(alice), multiaddrs());

        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryInvalidRoles.selector, uint8(5)));
        vm.prank(alice);
        registry.register(MIN_STAKE, 5, NODE_CAPACITY, peerIdOf(alice), multiaddrs());
    }

    function test_register_revertsOnInvalidPeerId() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryInvalidPeerId.selector, 0));
        vm.prank(alice);
        registry.register(MIN_STAKE, ROLE_NODE, NODE_CAPACITY, "", multiaddrs());

        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryInvalidPeerId.selector, 129));
        vm.prank(alice);
        registry.register(MIN_STAKE, ROLE_NODE, NODE_CAPACITY, new bytes(129), multiaddrs());
    }

    function test_register_revertsOnTooManyMultiaddrs() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryTooManyMultiaddrs.selector, 9, 8));
        vm.prank(alice);
        registry.register(MIN_STAKE, ROLE_NODE, NODE_CAPACITY, peerIdOf(alice), new string[](9));
    }

    function test_register_revertsWhenFull() public {
        Params memory p = defaultParams();
        p.maxNodes = 2;
        deploy(p);
        registerNodes(2, MIN_STAKE);
        address late = newActor("late");
        fund(late, MIN_STAKE);
        vm.startPrank(late);
        token.approve(address(registry), MIN_STAKE);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryFull.selector, 2));
        registry.register(MIN_STAKE, ROLE_NODE, NODE_CAPACITY, peerIdOf(late), multiaddrs());
        vm.stopPrank();
    }

    function test_register_revertsWithoutAllowance() public {
        address carol = newActor("carol");
        fund(carol, MIN_STAKE);
        vm.expectRevert(
            abi.encodeWithSelector(IERC20Errors.ERC20InsufficientAllowance.selector, address(registry), 0, MIN_STAKE)
        );
        _register(carol, MIN_STAKE);
    }

    function test_updateNode_replacesRecord() public {
        _register(alice, MIN_STAKE);
        string[] memory addrs = new string[](2);
        addrs[0] = "/ip4/10.0.0.1/tcp/4001";
        addrs[1] = "/ip6/::1/tcp/4001";
        vm.expectEmit(true, false, false, true, address(registry));
        emit INodeRegistry.NodeUpdated(alice, hex"0102", 42);
        vm.prank(alice);
        registry.updateNode(42, hex"0102", addrs);
        INodeRegistry.NodeInfo memory n = registry.nodeInfo(alice);
        assertEq(n.capacity, 42, "capacity");
        assertEq(n.peerId, hex"0102", "peer id");
        assertEq(n.multiaddrs.length, 2, "multiaddrs");
    }

    function test_updateNode_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryNotRegistered.selector, alice));
        vm.prank(alice);
        registry.updateNode(1, hex"01", multiaddrs());
    }

    function test_updateNode_revertsBelowUsedCapacity() public {
        _register(alice, MIN_STAKE);
        _grantModule();
        vm.prank(module);
        registry.lock(alice, 0, 1000);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryCapacityInUse.selector, alice, 999, 1000));
        vm.prank(alice);
        registry.updateNode(999, hex"01", multiaddrs());
    }

    // ------------------------------------------------------------ stake and unbonding

    function test_addStake_increasesStake() public {
        _register(alice, MIN_STAKE);
        vm.expectEmit(true, false, false, true, address(registry));
        emit INodeRegistry.StakeAdded(alice, 25 ether, MIN_STAKE + 25 ether);
        vm.prank(alice);
        registry.addStake(25 ether);
        assertEq(registry.stakeOf(alice), MIN_STAKE + 25 ether, "stake");
        assertEq(registry.totalHeld(), MIN_STAKE + 25 ether, "held");
        assertEq(token.balanceOf(address(registry)), MIN_STAKE + 25 ether, "balance");
    }

    function test_addStake_revertsOnZero() public {
        _register(alice, MIN_STAKE);
        vm.expectRevert(INodeRegistry.RegistryZeroAmount.selector);
        vm.prank(alice);
        registry.addStake(0);
    }

    function test_addStake_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryNotRegistered.selector, alice));
        vm.prank(alice);
        registry.addStake(1 ether);
    }

    function test_requestUnstake_movesStakeToUnbonding() public {
        _register(alice, 150 ether);
        uint64 release = uint64(blockNumber()) + UNBONDING_BLOCKS;
        vm.expectEmit(true, false, false, true, address(registry));
        emit INodeRegistry.UnstakeRequested(alice, 60 ether, release);
        vm.prank(alice);
        registry.requestUnstake(60 ether);
        INodeRegistry.NodeInfo memory n = registry.nodeInfo(alice);
        assertEq(n.stake, 90 ether, "stake");
        assertEq(n.unbonding, 60 ether, "unbonding");
        assertEq(n.unbondingReleaseBlock, release, "release");
        assertEq(registry.totalHeld(), 150 ether, "still held while unbonding");
        assertFalse(registry.isActive(alice, ROLE_NODE), "below min stake: inactive");
    }

    function test_requestUnstake_revertsOnZero() public {
        _register(alice, MIN_STAKE);
        vm.expectRevert(INodeRegistry.RegistryZeroAmount.selector);
        vm.prank(alice);
        registry.requestUnstake(0);
    }

    function test_requestUnstake_revertsAboveStake() public {
        _register(alice, MIN_STAKE);
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.RegistryStakeLocked.selector, alice, MIN_STAKE + 1, MIN_STAKE)
        );
        vm.prank(alice);
        registry.requestUnstake(MIN_STAKE + 1);
    }

    function test_requestUnstake_revertsWhileStakeBacksMagu() public {
        address[] memory list = registerNodes(3, 200 ether);
        MaguId id = createMagu(newActor("client"), vectorParams(3, 1, 8, 4));
        formMagu(id);
        address member = list[0];
        assertEq(registry.nodeInfo(member).locked, STAKE_PER_MEMBER, "membership locks stake");
        // A member keeps minStake beside its lock.
        uint256 free = 200 ether - STAKE_PER_MEMBER - MIN_STAKE;
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryStakeLocked.selector, member, 200 ether, free));
        vm.prank(member);
        registry.requestUnstake(200 ether);
        // The free part can still go.
        vm.prank(member);
        registry.requestUnstake(free);
        assertEq(registry.stakeOf(member), STAKE_PER_MEMBER + MIN_STAKE, "the backing stake and minStake stay");
    }

    function test_requestUnstake_restartsUnbondingClock() public {
        _register(alice, 150 ether);
        vm.prank(alice);
        registry.requestUnstake(10 ether);
        skipBlocks(30);
        vm.prank(alice);
        registry.requestUnstake(10 ether);
        uint64 release = uint64(blockNumber()) + UNBONDING_BLOCKS;
        assertEq(registry.nodeInfo(alice).unbondingReleaseBlock, release, "clock restarted");
        skipBlocks(UNBONDING_BLOCKS - 30);
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.RegistryNothingToWithdraw.selector, alice, 20 ether, release)
        );
        vm.prank(alice);
        registry.withdraw();
    }

    function test_withdraw_revertsWithNothingUnbonding() public {
        _register(alice, MIN_STAKE);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryNothingToWithdraw.selector, alice, 0, 0));
        vm.prank(alice);
        registry.withdraw();
    }

    function test_withdraw_revertsBeforeRelease() public {
        _register(alice, 150 ether);
        vm.prank(alice);
        registry.requestUnstake(50 ether);
        uint64 release = uint64(blockNumber()) + UNBONDING_BLOCKS;
        vm.roll(release - 1);
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.RegistryNothingToWithdraw.selector, alice, 50 ether, release)
        );
        vm.prank(alice);
        registry.withdraw();
    }

    function test_withdraw_revertsWhenNotRegistered() public {
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryNotRegistered.selector, alice));
        vm.prank(alice);
        registry.withdraw();
    }

    function test_withdraw_paysOutAfterUnbonding() public {
        _register(alice, 150 ether);
        vm.prank(alice);
        registry.requestUnstake(50 ether);
        uint64 release = uint64(blockNumber()) + UNBONDING_BLOCKS;
        vm.roll(release);
        uint256 before = token.balanceOf(alice);
        vm.expectEmit(true, false, false, true, address(registry));
        emit INodeRegistry.Withdrawn(alice, 50 ether);
        vm.prank(alice);
        registry.withdraw();
        assertEq(token.balanceOf(alice), before + 50 ether, "paid out");
        assertEq(registry.totalHeld(), 100 ether, "held");
        assertEq(token.balanceOf(address(registry)), 100 ether, "balance");
        assertEq(registry.nodeInfo(alice).unbonding, 0, "unbonding cleared");

        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryNothingToWithdraw.selector, alice, 0, release));
        vm.prank(alice);
        registry.withdraw();
    }

    // ------------------------------------------------------------ access control

    function test_lock_revertsForNonModule() public {
        _register(alice, MIN_STAKE);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), registry.MODULE_ROLE()
            )
        );
        registry.lock(alice, 1, 0);
    }

    function test_unlock_revertsForNonModule() public {
        _register(alice, MIN_STAKE);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), registry.MODULE_ROLE()
            )
        );
        registry.unlock(alice, 1, 0);
    }

    function test_slash_revertsForNonSlasher() public {
        _register(alice, MIN_STAKE);
        address[] memory to = new address[](1);
        to[0] = bob;
        uint256[] memory amounts = new uint256[](1);
        amounts[0] = 1 ether;
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, bob, registry.SLASHER_ROLE()
            )
        );
        vm.prank(bob);
        registry.slash(alice, 1 ether, to, amounts);
    }

    function test_adjustReputation_revertsForNonReputationModule() public {
        _register(alice, MIN_STAKE);
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(magus), registry.REPUTATION_ROLE()
            )
        );
        vm.prank(address(magus));
        registry.adjustReputation(alice, 5);
    }

    function test_mint_revertsForNonMinter() public {
        vm.expectRevert(
            abi.encodeWithSelector(
                IAccessControl.AccessControlUnauthorizedAccount.selector, address(this), token.MINTER_ROLE()
            )
        );
        token.mint(address(this), 1);
    }

    // ------------------------------------------------------------ module calls

    function test_lock_revertsBeyondFreeStakeOrCapacity() public {
        _register(alice, MIN_STAKE);
        _grantModule();
        vm.startPrank(module);
        registry.lock(alice, 60 ether, 10);
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryCannotLock.selector, alice, 41 ether, 0));
        registry.lock(alice, 41 ether, 0);
        vm.expectRevert(
            abi.encodeWithSelector(INodeRegistry.RegistryCannotLock.selector, alice, 0, NODE_CAPACITY - 9)
        );
        registry.lock(alice, 0, NODE_CAPACITY - 9);
        vm.stopPrank();
        INodeRegistry.NodeInfo memory n = registry.nodeInfo(alice);
        assertEq(n.locked, 60 ether, "locked");
        assertEq(n.usedCapacity, 10, "used");
    }

    function test_slash_takesStakeThenUnbondingAndPaysRecipients() public {
        _register(alice, 150 ether);
        vm.prank(alice);
        registry.requestUnstake(30 ether); // stake 120, unbonding 30
        _grantModule();
        vm.prank(module);
        registry.lock(alice, 100 ether, 0);

        address[] memory to = new address[](2);
        to[0] = bob;
        to[1] = address(rewards);
        uint256[] memory amounts = new uint256[](2);
        amounts[0] = 10 ether;
        amounts[1] = 100 ether;
        uint256 bobBefore = token.balanceOf(bob);
        vm.expectEmit(true, true, false, true, address(registry));
        emit INodeRegistry.Slashed(alice, module, 130 ether);
        vm.prank(module);
        uint256 slashed = registry.slash(alice, 130 ether, to, amounts);

        assertEq(slashed, 130 ether, "slashed");
        INodeRegistry.NodeInfo memory n = registry.nodeInfo(alice);
        assertEq(n.stake, 0, "stake taken first");
        assertEq(n.unbonding, 20 ether, "then unbonding");
        assertEq(n.locked, 100 ether, "the lock stays what the memberships need");
        assertEq(token.balanceOf(bob) - bobBefore, 10 ether, "first recipient");
        // 130 - 10 = 120 left for the second (asked 100): the 20 unnamed go to the last recipient.
        assertEq(token.balanceOf(address(rewards)), 120 ether, "rest to the last recipient");
        assertEq(registry.totalHeld(), 20 ether, "held");
        assertEq(token.balanceOf(address(registry)), 20 ether, "balance matches");
    }

    function test_slash_capsAtWhatTheNodeHolds() public {
        _register(alice, MIN_STAKE);
        _grantModule();
        address[] memory to = new address[](2);
        to[0] = bob;
        to[1] = address(rewards);
        uint256[] memory amounts = new uint256[](2);
        amounts[0] = 80 ether;
        amounts[1] = 920 ether;
        uint256 bobBefore = token.balanceOf(bob);
        vm.prank(module);
        uint256 slashed = registry.slash(alice, 1000 ether, to, amounts);
        assertEq(slashed, MIN_STAKE, "capped");
        assertEq(token.balanceOf(bob) - bobBefore, 80 ether, "first recipient in full");
        assertEq(token.balanceOf(address(rewards)), 20 ether, "last recipient cut");
        assertEq(registry.totalHeld(), 0, "nothing held");
    }

    function test_slash_revertsOnZeroAmount() public {
        _register(alice, MIN_STAKE);
        _grantModule();
        vm.expectRevert(INodeRegistry.RegistryZeroAmount.selector);
        vm.prank(module);
        registry.slash(alice, 0, new address[](0), new uint256[](0));
    }

    function test_adjustReputation_addsDelta() public {
        _register(alice, MIN_STAKE);
        registry.grantRole(registry.REPUTATION_ROLE(), module);
        vm.startPrank(module);
        registry.adjustReputation(alice, 7);
        vm.expectEmit(true, false, false, true, address(registry));
        emit INodeRegistry.ReputationChanged(alice, -10, -3);
        registry.adjustReputation(alice, -10);
        vm.stopPrank();
        assertEq(registry.nodeInfo(alice).reputation, -3, "reputation");
    }

    /// @notice Regression (was a bug): a slash used to cap `locked` at the remaining stake, so a
    /// later unlock of one membership freed stake that still backed another. Node: stake 200,
    /// two memberships of 50; a slash of 150 leaves 50; one membership ends (unlock 50). The
    /// other still needs 50, so nothing may be unstaked.
    function test_unlock_afterSlashBelowLock_keepsOtherMembershipBacked() public {
        _register(alice, 200 ether);
        _grantModule();
        vm.startPrank(module);
        registry.lock(alice, STAKE_PER_MEMBER, 1);
        registry.lock(alice, STAKE_PER_MEMBER, 1);
        address[] memory to = new address[](1);
        to[0] = address(rewards);
        uint256[] memory amounts = new uint256[](1);
        amounts[0] = 150 ether;
        registry.slash(alice, 150 ether, to, amounts);
        registry.unlock(alice, STAKE_PER_MEMBER, 1);
        vm.stopPrank();
        assertEq(registry.stakeOf(alice), 50 ether, "stake after the slash");
        assertEq(registry.nodeInfo(alice).locked, STAKE_PER_MEMBER, "the other membership's lock");
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryStakeLocked.selector, alice, 1, 0));
        vm.prank(alice);
        registry.requestUnstake(1);
    }

    /// @notice End to end: a node in two Magus is slashed in one and leaves it; the stake
    /// backing the other membership stays locked.
    function test_requestUnstake_afterSlashAndLeave_keepsOtherMembershipBacked() public {
        address[] memory list = registerNodes(3, 200 ether);
        address client = newActor("client");
        MaguId a = setupMagu(client, vectorParams(3, 1, 6, 10), 1, 6);
        MaguId b = createMagu(client, vectorParams(3, 1, 6, 10));
        formMagu(b);
        address n = list[0];
        assertEq(registry.nodeInfo(n).locked, 2 * STAKE_PER_MEMBER, "backs both Magus");

        uint64 period = magus.maguInfo(a).startPeriod;
        rollPastDeadline(period);
        challenges.markMissed(a, n, period);
        vm.prank(n);
        magus.leave(a);

        uint256 stake = registry.stakeOf(n);
        assertEq(stake, 200 ether - uint256(200 ether) * SLASH_BPS / 10_000 - REPAIR_BOUNTY, "slashed and bounty paid");
        assertTrue(magus.membership(b, n).active, "still a member of B");
        assertEq(registry.nodeInfo(n).locked, STAKE_PER_MEMBER, "B's lock remains");
        uint256 free = stake - STAKE_PER_MEMBER - MIN_STAKE;
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryStakeLocked.selector, n, free + 1, free));
        vm.prank(n);
        registry.requestUnstake(free + 1);
    }

    // ------------------------------------------------------------ selection

    function test_drawNodes_skipsIneligibleNodes() public {
        address[] memory list = registerNodes(4, 200 ether);
        registerValidators(1, 500 ether); // validators only: never selected
        _grantModule();
        vm.prank(module);
        registry.lock(list[0], 160 ether, 0); // 40 free < 50
        vm.prank(list[1]);
        registry.requestUnstake(150 ether); // stake 50 < minStake
        address[] memory exclude = new address[](1);
        exclude[0] = list[2];
        rollPastWeights();
        for (uint256 seed; seed < 16; ++seed) {
            address[] memory got = registry.drawNodes(seed, 4, STAKE_PER_MEMBER, 1, exclude);
            assertEq(got.length, 1, "only one eligible node");
            assertEq(got[0], list[3], "the eligible node");
        }
    }

    /// @notice A node is drafted only while its registered capacity has room for the member's share
    /// (issue 15.6: `muri node --capacity` registers what its disk can hold): a node with nine times
    /// the stake but too little free capacity is never drawn, until it registers more.
    function test_drawNodes_skipsNodesWithoutFreeCapacity() public {
        address full = newActor("full");
        registerNode(full, 1_800 ether, ROLE_NODE);
        address[] memory roomy = registerNodes(1, 200 ether);
        _grantModule();
        vm.prank(module);
        registry.lock(full, 0, NODE_CAPACITY - 5); // 5 bytes of capacity left
        rollPastWeights();
        for (uint256 seed; seed < 16; ++seed) {
            address[] memory got = registry.drawNodes(seed, 2, STAKE_PER_MEMBER, 6, new address[](0));
            assertEq(got.length, 1, "only the node with room");
            assertEq(got[0], roomy[0], "the roomy node, despite 1/10 of the weight");
            assertEq(registry.drawNodes(seed, 2, STAKE_PER_MEMBER, 5, new address[](0)).length, 2, "a share that fits: both");
        }
        vm.prank(full);
        registry.updateNode(NODE_CAPACITY + 1, peerIdOf(full), multiaddrs());
        assertEq(registry.drawNodes(0, 2, STAKE_PER_MEMBER, 6, new address[](0)).length, 2, "room registered: drawn");
    }

    function test_drawNodes_drawsDistinctNodesStakeWeighted() public {
        address small = newActor("small");
        address big = newActor("big");
        registerNode(small, 200 ether, ROLE_NODE);
        registerNode(big, 600 ether, ROLE_NODE);
        registerNodes(2, 200 ether);
        rollPastWeights();
        uint256 bigFirst;
        uint256 runs = 400;
        for (uint256 seed; seed < runs; ++seed) {
            address[] memory got = registry.drawNodes(seed, 3, STAKE_PER_MEMBER, 1, new address[](0));
            assertEq(got.length, 3, "three picks");
            assertTrue(got[0] != got[1] && got[1] != got[2] && got[0] != got[2], "without replacement");
            if (got[0] == big) ++bigFirst;
        }
        // P(big first) = 600 / 1200; σ = sqrt(400 · 0.25) = 10; allow 6σ.
        assertApproxEqAbs(bigFirst, runs / 2, 60, "first pick is stake-weighted");
        assertGt(bigFirst, runs / 4 + 60, "clearly above the uniform 1/4");
    }

    /// @notice INodeRegistry.drawNodes: a candidate needs minStake + lockAmount free stake
    /// (regression: the code once only checked stake >= minStake and free >= lockAmount, so a
    /// node holding exactly minStake could have all of it locked).
    function test_drawNodes_requiresMinStakePlusLockFree() public {
        registerNodes(3, MIN_STAKE + STAKE_PER_MEMBER - 1);
        rollPastWeights();
        address[] memory got = registry.drawNodes(1, 3, STAKE_PER_MEMBER, 1, new address[](0));
        assertEq(got.length, 0, "no node has minStake + lockAmount free");
    }

    function test_drawNodes_seesStakeChangesTwoEpochsLater() public {
        address a = newActor("a");
        registerNode(a, 200 ether, ROLE_NODE);
        (uint256 effective, uint256 queued) = registry.selectionWeight(a);
        assertEq(effective, 0, "not in the tree in its own epoch");
        assertEq(queued, 200 ether, "queued");
        assertEq(registry.drawNodes(1, 1, 0, 0, new address[](0)).length, 0, "nobody to draw yet");
        uint64 epoch = registry.selectionEpoch(blockNumber());
        vm.roll((epoch + 2) * SELECTION_EPOCH_BLOCKS - 1);
        assertEq(registry.drawNodes(1, 1, 0, 0, new address[](0)).length, 0, "still not, one block before");
        vm.roll((epoch + 2) * SELECTION_EPOCH_BLOCKS);
        address[] memory got = registry.drawNodes(1, 1, 0, 0, new address[](0));
        assertEq(got.length, 1, "drawn from the second epoch after");
        assertEq(registry.totalSelectionWeight(), 200 ether, "tree total");
    }

    function test_drawNodes_revertsWhenTooManyChangesAreDue() public {
        address[] memory list = registerNodes(40, 200 ether);
        for (uint256 i; i < list.length; ++i) {
            addStake(list[i], 1 ether); // 80 changes, some applied by the calls themselves
        }
        vm.roll(blockNumber() + 3 * SELECTION_EPOCH_BLOCKS);
        (, uint256 due,) = registry.pendingWeightChanges();
        assertGt(due, 64, "more due than a draw applies");
        vm.expectRevert(abi.encodeWithSelector(INodeRegistry.RegistryWeightsBehind.selector, due - 64));
        registry.drawNodes(1, 1, 0, 0, new address[](0));
        assertEq(registry.applyWeightChanges(1000), 0, "anyone catches the tree up");
        assertEq(registry.drawNodes(1, 1, 0, 0, new address[](0)).length, 1, "then the draw works");
        assertEq(registry.totalSelectionWeight(), 40 * 201 ether, "every change applied");
    }

    /// @notice Issue 11.4: one stake recycled through register / unstake / withdraw used to fill
    /// the registry for good (nothing removed a withdrawn node). A node that withdraws everything
    /// now leaves and its slot is reused: after 3 x maxNodes cycles an honest node still registers.
    function test_attack_registryFilling_slotsAreReused() public {
        uint256 cycles = 3 * MAX_NODES;
        for (uint256 i; i < cycles; ++i) {
            address sybil = newActor("sybil");
            registerNode(sybil, MIN_STAKE, ROLE_NODE);
            vm.prank(sybil);
            registry.requestUnstake(MIN_STAKE);
            vm.roll(blockNumber() + UNBONDING_BLOCKS);
            vm.prank(sybil);
            registry.withdraw();
            assertFalse(registry.nodeInfo(sybil).registered, "the empty node left");
        }
        assertEq(registry.registeredCount(), 0, "nobody registered");
        assertLe(registry.nodeCount(), 2, "slots reused, not appended");
        address honest = newActor("honest");
        registerNode(honest, MIN_STAKE, ROLE_NODE);
        assertTrue(registry.nodeInfo(honest).registered, "an honest node still joins");
        simReport("registry filling (11.4)", 0, 0, "slots reused: an honest node still registers");
    }

    /// @notice A node that still has stake locked or unbonding stays registered.
    function test_withdraw_keepsNodeThatStillHoldsStake() public {
        address a = newActor("a");
        registerNode(a, 300 ether, ROLE_NODE);
        vm.prank(a);
        registry.requestUnstake(100 ether);
        vm.roll(blockNumber() + UNBONDING_BLOCKS);
        vm.prank(a);
        registry.withdraw();
        assertTrue(registry.nodeInfo(a).registered, "still registered with 200 staked");
        assertEq(registry.nodeAt(0), a, "in its slot");
    }

    function test_config_returnsDeploymentParameters() public view {
        INodeRegistry.Config memory c = registry.config();
        assertEq(c.token, address(token), "token");
        assertEq(c.minStake, MIN_STAKE, "min stake");
        assertEq(c.unbondingBlocks, UNBONDING_BLOCKS, "unbonding");
        assertEq(c.maxNodes, MAX_NODES, "max nodes");
        assertEq(c.selectionEpochBlocks, SELECTION_EPOCH_BLOCKS, "selection epoch");
        assertEq(registry.ROLE_NODE(), ROLE_NODE, "node role bit");
        assertEq(registry.ROLE_VALIDATOR(), ROLE_VALIDATOR, "validator role bit");
    }
}
