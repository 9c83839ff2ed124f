// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture} from "./utils/Fixture.sol";

/// @notice Issue 15.3, firing a supplier (BitDust): the owner replaces a member at any moment; the
/// member is paid for what it proved and not slashed, the slot is redrawn, the newcomer earns the
/// repair bounty the owner paid; each firing forfeits a formation deposit, so it cannot be used to
/// grind selection for less than a re-roll costs.
contract FireTest is Fixture {
    address internal client;

    function setUp() public override {
        super.setUp();
        client = newActor("client");
        registerNodes(6, 200 ether);
    }

    function _fire(MaguId id, address member) internal {
        fund(client, FORMATION_DEPOSIT + REPAIR_BOUNTY);
        vm.startPrank(client);
        token.approve(address(magus), FORMATION_DEPOSIT + REPAIR_BOUNTY);
        magus.fire(id, member);
        vm.stopPrank();
    }

    function test_fire_paysTheMemberAndSlashesNothing() public {
        IMaguRegistry.MaguParams memory p = vectorParams(3, 2, 12, 6);
        MaguId id = setupMagu(client, p, 9, 12);
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        address fired = info.members[1];
        proveAll(id, info.startPeriod);
        proveAll(id, info.startPeriod + 1);
        uint256 stake = registry.stakeOf(fired);
        uint256 paid = 2 * info.payPerSlotPeriod;
        address sink = magus.config().bountySink;
        uint256 sinkBefore = token.balanceOf(sink);
        fund(client, FORMATION_DEPOSIT + REPAIR_BOUNTY);
        uint256 ownerBefore = token.balanceOf(client);

        vm.startPrank(client);
        token.approve(address(magus), FORMATION_DEPOSIT + REPAIR_BOUNTY);
        vm.expectEmit(true, true, false, true, address(magus));
        emit IMaguRegistry.MemberLeft(id, fired, 1, false, paid);
        vm.expectEmit(true, true, false, true, address(magus));
        emit IMaguRegistry.MemberFired(id, fired, 1, FORMATION_DEPOSIT);
        magus.fire(id, fired);
        vm.stopPrank();

        assertEq(magus.claimable(fired), paid, "paid for its proven periods");
        assertEq(registry.stakeOf(fired), stake, "not slashed");
        assertEq(registry.nodeInfo(fired).locked, 0, "its lock released");
        assertEq(membersOf(id)[1], address(0), "slot vacant");
        (uint64 requestBlock, uint256 bounty,) = magus.vacancy(id, 1);
        assertEq(requestBlock, blockNumber(), "the slot is redrawn from this block");
        assertEq(bounty, REPAIR_BOUNTY, "the owner funded the newcomer's repair bounty");
        assertEq(token.balanceOf(client), ownerBefore - FORMATION_DEPOSIT - REPAIR_BOUNTY, "the owner paid both");
        assertEq(token.balanceOf(sink), sinkBefore + FORMATION_DEPOSIT, "the deposit is forfeited");
        assertEq(token.balanceOf(address(magus)), magus.totalHeld(), "books balance");
        assertFalse(magus.membership(id, fired).active, "no longer a member");
    }

    function test_fire_refusedForOthersAndNonMembers() public {
        MaguId id = setupMagu(client, vectorParams(3, 2, 12, 6), 9, 12);
        address member = membersOf(id)[0];
        address stranger = newActor("stranger");
        vm.prank(stranger);
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotOwner.selector, id, stranger));
        magus.fire(id, member);
        fund(client, FORMATION_DEPOSIT + REPAIR_BOUNTY);
        vm.startPrank(client);
        token.approve(address(magus), FORMATION_DEPOSIT + REPAIR_BOUNTY);
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotMember.selector, id, stranger));
        magus.fire(id, stranger);
        vm.stopPrank();
    }

    /// @notice The newcomer is never the fired member (nor any former one), rebuilds the slot and
    /// earns the owner's bounty with its first proof.
    function test_fire_newcomerIsNewAndEarnsTheBounty() public {
        MaguId id = setupMagu(client, vectorParams(3, 2, 12, 20), 9, 12);
        address fired = membersOf(id)[2];
        _fire(id, fired);
        rollToWindow(blockNumber());
        magus.fillVacancy(id, 2);
        address newcomer = membersOf(id)[2];
        assertTrue(newcomer != address(0) && newcomer != fired, "a new node holds the slot");
        uint64 join = magus.membership(id, newcomer).joinPeriod;
        rollToPeriod(join);
        prove(id, newcomer, join);
        assertEq(magus.claimable(newcomer), REPAIR_BOUNTY, "the bounty pays the newcomer's repair");
    }

    /// @notice Issue 15.3's bound played: an owner that fires members to redraw slots onto nodes it
    /// likes pays a formation deposit per redraw (what a re-roll costs, 11.3), even when its own
    /// node wins the slot and recovers the bounty.
    function test_attack_firingToGrindSelection_costsADepositPerRedraw() public {
        MaguId id = setupMagu(client, vectorParams(3, 2, 12, 20), 9, 12);
        uint256 before = token.balanceOf(client);
        uint256 spent;
        for (uint256 i; i < 3; ++i) {
            address member = membersOf(id)[0];
            fund(client, FORMATION_DEPOSIT + REPAIR_BOUNTY);
            spent += FORMATION_DEPOSIT + REPAIR_BOUNTY;
            vm.startPrank(client);
            token.approve(address(magus), FORMATION_DEPOSIT + REPAIR_BOUNTY);
            magus.fire(id, member);
            vm.stopPrank();
            rollToWindow(blockNumber());
            magus.fillVacancy(id, 0);
        }
        // Best case for the attacker: every newcomer was its own and got the bounty back.
        int256 pnl = int256(token.balanceOf(client)) - int256(before + spent) + int256(3 * REPAIR_BOUNTY);
        assertEq(pnl, -int256(3 * FORMATION_DEPOSIT), "three redraws cost three deposits");
        simReport("firing to grind selection (15.3)", pnl, 0, "each redraw forfeits a formation deposit");
    }
}
