// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IChallengeManager} from "../../contracts/interfaces/IChallengeManager.sol";
import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture} from "./utils/Fixture.sol";
import {DataSet} from "./utils/MerkleBuilder.sol";

/// @notice Availability certificates: a batch counts only with the members' acknowledgements,
/// keeps the committed fragments, and never changes a period that has begun. Each attack of the
/// review is played first and shown to fail with no honest member losing stake.
contract AvailabilityTest is Fixture {
    address internal client;
    address internal attacker;
    address[] internal nodeList;

    uint256 internal constant ALL = type(uint256).max;

    function setUp() public override {
        super.setUp();
        client = newActor("client");
        attacker = newActor("attacker");
        nodeList = registerNodes(6, 1_100 ether);
    }

    function _blob() internal returns (MaguId id) {
        id = createMagu(client, blobParams(5, 3, 2, 20, 10));
        formMagu(id);
    }

    function _stakes(address[] memory members) internal view returns (uint256[] memory out) {
        out = new uint256[](members.length);
        for (uint256 i; i < members.length; ++i) {
            out[i] = registry.stakeOf(members[i]);
        }
    }

    function _commit(MaguId id, bytes32 root, uint32 count, bytes32[] memory extension, bytes[] memory acks) internal {
        vm.prank(client);
        magus.commitData(id, root, count, "", extension, acks);
    }

    // ------------------------------------------------------------ the junk-root drain

    /// @notice Review point 1: the owner commits a root nobody holds, then marks every member
    /// missed each period. Without the members' acknowledgements the root never lands, so there is
    /// nothing to challenge, nothing to mark, and no stake moves.
    function test_attack_junkRoot_neverLandsAndNobodyIsCharged() public {
        MaguId id = _blob();
        address[] memory members = membersOf(id);
        uint256[] memory before = _stakes(members);
        bytes32 junk = keccak256("junk");

        // No acknowledgements at all.
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotAvailable.selector, id, 0, 3));
        _commit(id, junk, 5, noExtension, new bytes[](5));

        // Acknowledgements the owner signed itself in the members' names.
        bytes[] memory forged = new bytes[](5);
        for (uint256 i; i < 5; ++i) {
            forged[i] = signAck(client, magus.ackDigest(id, 0, junk, 5, members[i]));
        }
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguInvalidAck.selector, id, 0));
        _commit(id, junk, 5, noExtension, forged);

        // Real acknowledgements of other data cannot carry the junk root.
        bytes[] memory real = acksFor(id, maguRootOf(DataSet.fragmentRoots(3, 5)), 5, ALL);
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguInvalidAck.selector, id, 0));
        _commit(id, junk, 5, noExtension, real);

        // The drain itself: every member, every period of the Magu, marked by a second address.
        IMaguRegistry.MaguInfo memory info = magus.maguInfo(id);
        rollPastDeadline(info.endPeriod - 1);
        for (uint64 p = info.startPeriod; p < info.endPeriod; ++p) {
            for (uint256 i; i < members.length; ++i) {
                vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNoData.selector, id));
                vm.prank(attacker);
                challenges.markMissed(id, members[i], p);
            }
        }
        uint256[] memory after_ = _stakes(members);
        int256 honest;
        for (uint256 i; i < members.length; ++i) {
            assertEq(after_[i], before[i], "no honest member lost stake");
            honest += delta(before[i], after_[i]);
        }
        // The owner gets back its own escrow and nothing more; the attacker got nothing.
        vm.roll(settleBlock(id));
        magus.settle(id);
        // ... and its own formation deposit, refunded when the Magu formed.
        assertEq(magus.claimable(client), info.escrow + FORMATION_DEPOSIT, "owner: its escrow only");
        assertEq(token.balanceOf(attacker), 0, "marker: nothing");
        simReport("junk root (availability)", int256(token.balanceOf(attacker)), honest, "never committed; nothing to mark");
    }

    // ------------------------------------------------------------ rewriting committed data

    /// @notice Review point 2: the owner replaces committed fragments under a new, longer root
    /// (then would dispute honest search answers from the old data). Even with the members'
    /// acknowledgements of the new root, the commit must prove it keeps the old fragments.
    function test_attack_rewrite_isRefused() public {
        MaguId id = _blob();
        commitData(id, 3, 5);
        bytes32 committed = magus.maguInfo(id).root;

        bytes32[] memory rewritten = DataSet.fragmentRoots(4, 10);
        bytes32 rewrittenRoot = maguRootOf(rewritten);
        bytes[] memory acks = acksFor(id, rewrittenRoot, 10, ALL);
        bytes32[] memory forgedProof = appendProof(rewritten, 5);
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotAppendOnly.selector, id));
        _commit(id, rewrittenRoot, 10, forgedProof, acks);

        // A proof that folds to the old root but not to the new one fails as well.
        bytes32[] memory kept = DataSet.fragmentRoots(3, 10);
        bytes32[] memory honest = appendProof(kept, 5);
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotAppendOnly.selector, id));
        _commit(id, rewrittenRoot, 10, honest, acks);

        // A proof of the wrong length.
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotAppendOnly.selector, id));
        _commit(id, rewrittenRoot, 10, noExtension, acks);

        assertEq(magus.maguInfo(id).root, committed, "the committed data stays");
        simReport("rewrite committed data (availability)", 0, 0, "refused: commits are append-only");
        // The honest append is accepted.
        commitData(id, 3, 10);
        assertEq(magus.maguInfo(id).fragmentCount, 10, "appended");
    }

    /// @notice Appends across every old/new count boundary of a small tree keep the old leaves.
    function test_commitData_appendProofAtEveryBoundary() public {
        for (uint32 first = 1; first < 8; ++first) {
            MaguId id = createMagu(client, vectorParams(3, 1, 16, 10));
            formMagu(id);
            commitData(id, 9, first);
            for (uint32 next = first + 1; next <= 16; next += 3) {
                commitData(id, 9, next);
                assertEq(magus.maguInfo(id).root, maguRootOf(DataSet.fragmentRoots(9, next)), "root");
            }
        }
    }

    // ------------------------------------------------------------ a period's challenge is fixed

    /// @notice Review point 3: a commit in the middle of a period must not change that period's
    /// challenge (its items or the root they are checked against).
    function test_midPeriodCommit_doesNotChangeTheOpenPeriod() public {
        MaguId id = _blob();
        commitData(id, 3, 5);
        uint64 p = magus.maguInfo(id).startPeriod;
        vm.roll(magus.periodStart(p) + PERIOD_BLOCKS / 2);
        address[] memory members = membersOf(id);
        bytes32[] memory before = new bytes32[](members.length);
        for (uint256 i; i < members.length; ++i) {
            before[i] = keccak256(abi.encode(challenges.challengeFor(id, members[i], p)));
        }
        commitData(id, 3, 15);
        for (uint256 i; i < members.length; ++i) {
            assertEq(keccak256(abi.encode(challenges.challengeFor(id, members[i], p))), before[i], "same challenge");
            (, uint32 count) = magus.challengedData(id, members[i], p);
            assertEq(uint256(count), 5, "checked against the data of the period's start");
            (, uint32 next) = magus.challengedData(id, members[i], p + 1);
            assertEq(uint256(next), 15, "the new batch from the next period");
        }
        // Members still prove the open period against the old data.
        for (uint256 i; i < members.length; ++i) {
            prove(id, members[i], p);
        }
        proveAll(id, p + 1);
    }

    // ------------------------------------------------------------ who acknowledged

    /// @notice A member that did not acknowledge a batch answers for it only after its grace; the
    /// others from the next period. Too many missing acknowledgements: the batch is not available.
    function test_nonAcker_getsAGraceAndTooFewAcksAreRefused() public {
        MaguId id = _blob();
        address[] memory members = membersOf(id);
        bytes32 root = maguRootOf(DataSet.fragmentRoots(3, 15));
        bytes[] memory two = acksFor(id, root, 15, 0x03);
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotAvailable.selector, id, 2, 3));
        _commit(id, root, 15, noExtension, two);

        commitDataAckedBy(id, 3, 15, 0x0f); // slot 4 missing: m = 2 tolerated
        uint64 from = magus.currentPeriod() + 1;
        // 15 fragments over 5 members: 3 each, one fetch period after the next.
        uint64 graceUntil = from + 2;
        (, uint32 acker) = magus.challengedData(id, members[0], from);
        (, uint32 late) = magus.challengedData(id, members[4], from);
        (, uint32 lateAfter) = magus.challengedData(id, members[4], graceUntil);
        assertEq(uint256(acker), 15, "an acker answers from the next period");
        assertEq(uint256(late), 0, "the non-acker has nothing to answer yet");
        assertEq(uint256(lateAfter), 15, "... until its grace ends");
        assertEq(uint256(magus.membership(id, members[4]).joinPeriod), uint256(graceUntil), "membership view");

        uint256 stake = registry.stakeOf(members[4]);
        rollPastDeadline(graceUntil - 1);
        for (uint64 p = from; p < graceUntil; ++p) {
            vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNoData.selector, id));
            vm.prank(attacker);
            challenges.markMissed(id, members[4], p);
        }
        assertEq(registry.stakeOf(members[4]), stake, "not charged during its grace");
        proveAll(id, graceUntil);
    }

    function test_vector_needsOneAcknowledgedHolderPerFragment() public {
        MaguId id = createMagu(client, vectorParams(3, 2, 12, 10));
        formMagu(id);
        bytes32 root = maguRootOf(DataSet.fragmentRoots(5, 6));
        bytes[] memory one = acksFor(id, root, 6, 0x01);
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguNotAvailable.selector, id, 1, 2));
        _commit(id, root, 6, noExtension, one);
        commitDataAckedBy(id, 5, 6, 0x05);
        assertEq(magus.maguInfo(id).fragmentCount, 6, "two of three members: every fragment has a holder");
    }

    function test_commitData_refusesMalformedAcknowledgements() public {
        MaguId id = _blob();
        bytes32 root = maguRootOf(DataSet.fragmentRoots(3, 5));
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguInvalidParams.selector, bytes32("acks"), 4));
        _commit(id, root, 5, noExtension, new bytes[](4));

        // One member's signature in another slot.
        bytes[] memory acks = acksFor(id, root, 5, ALL);
        (acks[1], acks[2]) = (acks[2], acks[1]);
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguInvalidAck.selector, id, 1));
        _commit(id, root, 5, noExtension, acks);

        // A signature over another batch number (replayed from an earlier batch).
        acks = acksFor(id, root, 5, ALL);
        address m0 = membersOf(id)[0];
        acks[0] = signAck(m0, magus.ackDigest(id, 1, root, 5, m0));
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguInvalidAck.selector, id, 0));
        _commit(id, root, 5, noExtension, acks);

        // Garbage bytes.
        acks = acksFor(id, root, 5, ALL);
        acks[3] = hex"1234";
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguInvalidAck.selector, id, 3));
        _commit(id, root, 5, noExtension, acks);

        // A vacant slot cannot acknowledge.
        acks = acksFor(id, root, 5, ALL);
        vm.prank(membersOf(id)[2]);
        magus.leave(id);
        vm.expectRevert(abi.encodeWithSelector(IMaguRegistry.MaguInvalidAck.selector, id, 2));
        _commit(id, root, 5, noExtension, acks);
    }

    function test_commitData_revertsBeforeFormation() public {
        MaguId id = createMagu(client, blobParams(5, 3, 2, 20, 10));
        vm.expectRevert(
            abi.encodeWithSelector(IMaguRegistry.MaguWrongStatus.selector, id, IMaguRegistry.Status.Requested)
        );
        _commit(id, keccak256("data"), 5, noExtension, new bytes[](5));
    }
}
