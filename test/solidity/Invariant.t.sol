// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {DeployedChallengeManager as ChallengeManager, DeployedMaguAccess as MaguAccess, DeployedMaguRegistry as MaguRegistry, DeployedMuriToken as MuriToken, DeployedNodeRegistry as NodeRegistry, DeployedRewards as Rewards} from "./utils/Deployed.sol";
import {IChallengeManager} from "../../contracts/interfaces/IChallengeManager.sol";
import {IMaguAccess} from "../../contracts/interfaces/IMaguAccess.sol";
import {IMaguRegistry} from "../../contracts/interfaces/IMaguRegistry.sol";
import {INodeRegistry} from "../../contracts/interfaces/INodeRegistry.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {Fixture, FixtureBase} from "./utils/Fixture.sol";
import {DataSet} from "./utils/MerkleBuilder.sol";

/// @title Handler
/// @notice Drives the whole system with random but always-valid actions: every action first
/// picks a target for which the call must succeed (rolling blocks forward when it needs time to
/// pass) or returns without calling. The invariant test runs with failOnRevert, so a revert
/// here is a failure: either a wrong precondition in the handler or a contract bug.
contract Handler is FixtureBase {
    uint256 internal constant NODE_ACTORS = 10;
    uint256 internal constant CLIENTS = 2;
    /// @dev Magu states an action can look for (`_findMagu`).
    uint8 internal constant WANT_REQUESTED = 0;
    uint8 internal constant WANT_OPEN = 1; // active and not past its end (data is delivered to members)
    uint8 internal constant WANT_DATA = 2; // active with data
    uint8 internal constant WANT_VACANCY = 3; // active with a vacant slot
    uint8 internal constant WANT_ACTIVE = 4;

    address[] internal nodeActors;
    address[] internal clients;
    MaguId[] internal maguIds;
    mapping(uint256 magu => mapping(uint256 slot => uint64 block_)) internal vacancyBlock;
    /// @dev Members that left or were evicted: fillVacancy never draws them again.
    mapping(uint256 magu => address[]) internal formerMembers;
    /// @dev The period a former member left in: it stays accountable up to that period.
    mapping(uint256 magu => mapping(address member => uint64 period)) internal leftIn;
    mapping(uint256 magu => mapping(address member => bool)) internal wasEvicted;
    mapping(uint64 epoch => bool) internal submittedIn;
    uint64 internal nextEpoch;

    /// @notice Tokens minted by Rewards as the handler expects them (EMISSION per finalised
    /// epoch that had weights), independent of the contracts' own books.
    uint256 public ghostMinted;
    /// @notice How many times each kind of action really called the contracts.
    mapping(bytes32 action => uint256) public calls;

    /// @notice The handler's own books: the tokens each contract must hold, from what each
    /// action moved (stakes, escrows, claims, withdrawals, emissions) and the slashes worked out
    /// here from the configured rates, never read back from the contracts' totals.
    uint256 public ghostRegistry;
    uint256 public ghostMagus;
    uint256 public ghostRewards;
    /// @notice Search deposits in MaguAccess: deposited, less what vouchers paid and payers withdrew.
    uint256 public ghostAccess;
    /// @notice Repair bounties waiting in vacated slots (part of ghostMagus), per slot and in all.
    uint256 public ghostBounties;
    mapping(uint256 magu => mapping(uint256 slot => uint256)) internal ghostBounty;
    /// @dev The replacement that earns a slot's bounty with its first proof.
    mapping(uint256 magu => mapping(uint256 slot => address)) internal ghostRewardable;

    constructor(
        MuriToken token_,
        NodeRegistry registry_,
        MaguRegistry magus_,
        ChallengeManager challenges_,
        Rewards rewards_,
        MaguAccess access_
    ) {
        token = token_;
        registry = registry_;
        magus = magus_;
        challenges = challenges_;
        rewards = rewards_;
        access = access_;
        for (uint256 i; i < NODE_ACTORS; ++i) {
            nodeActors.push(newActor("node"));
        }
        for (uint256 i; i < CLIENTS; ++i) {
            clients.push(newActor("client"));
        }
    }

    /// @notice Every account the handler ever pays or makes pay (for the conservation check).
    function actors() external view returns (address[] memory all) {
        all = new address[](NODE_ACTORS + CLIENTS);
        for (uint256 i; i < NODE_ACTORS; ++i) {
            all[i] = nodeActors[i];
        }
        for (uint256 i; i < CLIENTS; ++i) {
            all[NODE_ACTORS + i] = clients[i];
        }
    }

    function maguList() external view returns (MaguId[] memory) {
        return maguIds;
    }

    /// @notice Starting state: six storage nodes (two of them also validators), one validator,
    /// and one formed vector Magu with data.
    function bootstrap() external {
        for (uint256 i; i < 7; ++i) {
            uint8 roles = i < 4 ? ROLE_NODE : (i < 6 ? ROLE_NODE | ROLE_VALIDATOR : ROLE_VALIDATOR);
            registerNode(nodeActors[i], 300 ether + i * 50 ether, roles);
            ghostRegistry += 300 ether + i * 50 ether;
        }
        // Vector, 4 members, duration 4, replication 2, up to 8 fragments (see createMagu).
        createMagu(0, 1, 1 | (2 << 8) | (1 << 16) | (4 << 24));
        formMagu(0);
        commitData(0, 5);
    }

    function _count(bytes32 action) internal {
        ++calls[action];
    }

    /// @dev The first Magu from `seed` on (cyclically) in the wanted state.
    function _findMagu(uint256 seed, uint8 want) internal view returns (MaguId, IMaguRegistry.MaguInfo memory, bool) {
        uint256 len = maguIds.length;
        IMaguRegistry.MaguInfo memory info;
        for (uint256 k; k < len; ++k) {
            MaguId id = maguIds[(seed % len + k) % len];
            info = magus.maguInfo(id);
            if (_wanted(info, want)) return (id, info, true);
        }
        return (MaguId.wrap(0), info, false);
    }

    function _wanted(IMaguRegistry.MaguInfo memory info, uint8 want) internal view returns (bool) {
        if (want == WANT_REQUESTED) return info.status == IMaguRegistry.Status.Requested;
        if (want == WANT_OPEN) {
            return info.status == IMaguRegistry.Status.Active && magus.currentPeriod() < info.endPeriod;
        }
        if (info.status != IMaguRegistry.Status.Active) return false;
        if (want == WANT_DATA) return info.fragmentCount > 0;
        if (want == WANT_VACANCY) return _vacantSlot(info.members, 0) < info.members.length;
        return true;
    }

    function _vacantSlot(address[] memory members, uint256 seed) internal pure returns (uint256) {
        uint256 n = members.length;
        for (uint256 k; k < n; ++k) {
            uint256 s = (seed % n + k) % n;
            if (members[s] == address(0)) return s;
        }
        return n;
    }

    /// @dev A sitting member of `members`, starting from `seed`.
    function _memberSlot(address[] memory members, uint256 seed) internal pure returns (uint256) {
        uint256 n = members.length;
        for (uint256 k; k < n; ++k) {
            uint256 s = (seed % n + k) % n;
            if (members[s] != address(0)) return s;
        }
        return n;
    }

    // ------------------------------------------------------------ NodeRegistry

    function registerNode(uint256 actorSeed, uint256 stakeRaw, uint256 rolesRaw) public {
        address a = nodeActors[actorSeed % NODE_ACTORS];
        if (registry.nodeInfo(a).registered) return;
        uint256 stake = bound(stakeRaw, MIN_STAKE, 1000 ether);
        registerNode(a, stake, uint8(1 + rolesRaw % 3));
        ghostRegistry += stake;
        _count("register");
    }

    function addStake(uint256 actorSeed, uint256 amountRaw) external {
        address a = nodeActors[actorSeed % NODE_ACTORS];
        if (!registry.nodeInfo(a).registered) return;
        uint256 amount = bound(amountRaw, 1, 500 ether);
        addStake(a, amount);
        ghostRegistry += amount;
        _count("addStake");
    }

    function requestUnstake(uint256 actorSeed, uint256 amountRaw) external {
        address a = nodeActors[actorSeed % NODE_ACTORS];
        INodeRegistry.NodeInfo memory n = registry.nodeInfo(a);
        // A node with memberships keeps minStake beside its lock (a slash may leave locked > stake).
        uint256 keep = n.locked > 0 ? n.locked + MIN_STAKE : 0;
        uint256 free = n.stake > keep ? n.stake - keep : 0;
        if (!n.registered || free == 0) return;
        vm.prank(a);
        registry.requestUnstake(bound(amountRaw, 1, free));
        _count("requestUnstake");
    }

    /// @notice Withdraws for the first actor (from the seed on) with stake unbonding, rolling
    /// to its release block.
    function withdraw(uint256 actorSeed) external {
        for (uint256 k; k < NODE_ACTORS; ++k) {
            address a = nodeActors[(actorSeed % NODE_ACTORS + k) % NODE_ACTORS];
            INodeRegistry.NodeInfo memory n = registry.nodeInfo(a);
            if (!n.registered || n.unbonding == 0) continue;
            if (blockNumber() < n.unbondingReleaseBlock) vm.roll(n.unbondingReleaseBlock);
            vm.prank(a);
            registry.withdraw();
            ghostRegistry -= n.unbonding;
            _count("withdraw");
            return;
        }
    }

    // ------------------------------------------------------------ MaguRegistry

    function createMagu(uint256 clientSeed, uint256 kindRaw, uint256 paramsRaw) public {
        address client = clients[clientSeed % CLIENTS];
        uint8 members = uint8(3 + paramsRaw % 2);
        uint64 duration = uint64(2 + (paramsRaw >> 8) % 6);
        IMaguRegistry.MaguParams memory p = kindRaw % 2 == 1
            ? vectorParams(members, uint8(1 + (paramsRaw >> 16) % 2), uint32(4 + (paramsRaw >> 24) % 5), duration)
            : blobParams(members, 2, 1, uint32(3 * (2 + (paramsRaw >> 24) % 2)), duration);
        maguIds.push(createMagu(client, p));
        ghostMagus += escrowOf(p) + FORMATION_DEPOSIT;
        _count("createMagu");
    }

    /// @notice Forms a requested Magu in its selection window; cancels it instead (the seed is
    /// known by then: the deposit goes to Rewards) when too few nodes are eligible, when the
    /// window has passed, or when the seed says so (one time in eight).
    function formMagu(uint256 maguSeed) public {
        (MaguId id, IMaguRegistry.MaguInfo memory info, bool ok) = _findMagu(maguSeed, WANT_REQUESTED);
        if (!ok) return;
        (uint64 opens, uint64 closes) = magus.selectionWindow(info.requestBlock);
        if (blockNumber() < opens) vm.roll(opens);
        if (blockNumber() <= closes && maguSeed % 8 != 7) {
            try magus.formMagu(id) {
                // The deposit stays in MaguRegistry, as the owner's claimable.
                _count("formMagu");
                return;
            } catch (bytes memory reason) {
                require(bytes4(reason) == IMaguRegistry.MaguNotEnoughNodes.selector, "handler: formMagu failed");
            }
        }
        vm.prank(info.owner);
        magus.cancelMagu(id);
        ghostMagus -= FORMATION_DEPOSIT;
        ghostRewards += FORMATION_DEPOSIT;
        _count("cancelMagu");
    }

    function commitData(uint256 maguSeed, uint256 countRaw) public {
        (MaguId id, IMaguRegistry.MaguInfo memory info, bool ok) = _findMagu(maguSeed, WANT_OPEN);
        if (!ok) return;
        uint32 step = info.params.kind == IMaguRegistry.Kind.Blob ? 3 : 1;
        if (info.fragmentCount + step > info.params.maxFragments) return;
        uint256 steps = (info.params.maxFragments - info.fragmentCount) / step;
        uint32 count = info.fragmentCount + step * uint32(bound(countRaw, 1, steps));
        // Acknowledged by every filled slot but up to the tolerated number left out (chosen from
        // countRaw's upper bits): those answer for the batch only after its grace.
        uint256 tolerated = info.params.kind == IMaguRegistry.Kind.Blob ? info.params.parityShards : info.params.replication - 1;
        uint256 mask;
        uint256 filled;
        for (uint256 i; i < info.members.length; ++i) {
            if (info.members[i] == address(0)) continue;
            mask |= 1 << i;
            ++filled;
        }
        if (filled + tolerated < info.members.length) return; // too many vacancies: not available
        uint256 spare = filled + tolerated - info.members.length;
        for (uint256 i; i < info.members.length && spare > 0; ++i) {
            if ((mask >> i) & 1 == 1 && (countRaw >> (128 + i)) & 1 == 1) {
                mask &= ~(uint256(1) << i);
                --spare;
            }
        }
        commitDataAckedBy(id, MaguId.unwrap(id), count, mask);
        _count("commitData");
    }

    /// @notice The first member (from the seed's slot on) with something to prove proves its open
    /// period; a member whose challenge names nothing is refused (no pay) on the way.
    function submitProof(uint256 maguSeed, uint256 memberSeed) external {
        (MaguId id, IMaguRegistry.MaguInfo memory info, bool ok) = _findMagu(maguSeed, WANT_DATA);
        if (!ok) return;
        uint256 first = _memberSlot(info.members, memberSeed);
        if (first == info.members.length) return;
        for (uint256 k; k < info.members.length; ++k) {
            uint256 slot = (first + k) % info.members.length;
            if (info.members[slot] == address(0)) continue;
            if (_proveOpen(id, info, slot)) return;
        }
    }

    /// @dev Proves member `slot`'s open period; false when there is nothing to prove.
    function _proveOpen(MaguId id, IMaguRegistry.MaguInfo memory info, uint256 slot) internal returns (bool) {
        address member = info.members[slot];
        IMaguRegistry.Membership memory ms = magus.membership(id, member);

        // The open period to prove: the current one, else the previous one while in grace.
        uint64 cur = magus.currentPeriod();
        uint64 p = cur;
        if (
            cur > 0 && blockNumber() < challenges.proofDeadline(cur - 1) && cur - 1 >= ms.joinPeriod
                && challenges.proofState(id, member, cur - 1) == 0
        ) p = cur - 1;
        if (p < ms.joinPeriod) p = ms.joinPeriod;
        if (challenges.proofState(id, member, p) != 0) ++p;
        if (p >= info.endPeriod) return false;
        if (blockNumber() <= magus.periodStart(p)) vm.roll(magus.periodStart(p) + 1);
        (, uint32 count) = magus.challengedData(id, member, p);
        if (count == 0) return false; // nothing available to this member yet
        if (challenges.challengeFor(id, member, p).length == 0) {
            // Nothing named: not a pass (no pay), and not a miss either (see markMissed).
            vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNothingToProve.selector, id, member, p));
            vm.prank(member);
            challenges.submitProof(id, p, new IChallengeManager.FragmentProof[](0));
            _count("nothingToProve");
            return false;
        }

        IChallengeManager.FragmentProof[] memory proofs = proofsFor(id, member, p);
        vm.prank(member);
        challenges.submitProof(id, p, proofs);
        if (ghostRewardable[MaguId.unwrap(id)][slot] == member) {
            ghostBounties -= ghostBounty[MaguId.unwrap(id)][slot]; // now the member's credit
            ghostBounty[MaguId.unwrap(id)][slot] = 0;
            ghostRewardable[MaguId.unwrap(id)][slot] = address(0);
        }
        _count("submitProof");
        return true;
    }

    /// @notice Marks the earliest open period of a member missed (rolling past its deadline).
    /// Every other time it picks the member with the most misses and keeps marking until that
    /// member is evicted, so evictions and repairs happen within a run's few calls.
    function markMissed(uint256 maguSeed, uint256 memberSeed, uint256 markerSeed) external {
        (MaguId id, IMaguRegistry.MaguInfo memory info, bool ok) = _findMagu(maguSeed, WANT_DATA);
        if (!ok) return;
        uint256 slot = _memberSlot(info.members, memberSeed);
        if (slot == info.members.length) return;
        bool toEviction = memberSeed % 2 == 0;
        if (toEviction) slot = _mostMissed(id, info.members, slot);
        address member = info.members[slot];
        address marker = markerSeed % 3 == 0 ? clients[markerSeed % CLIENTS] : nodeActors[markerSeed % NODE_ACTORS];
        uint64 q = magus.membership(id, member).joinPeriod;
        do {
            // Settled periods, and misses whose mark window closed (forgiven), are skipped.
            while (q < info.endPeriod && (challenges.proofState(id, member, q) != 0 || blockNumber() > challenges.markDeadline(q))) ++q;
            if (q >= info.endPeriod) return;
            uint64 deadline = challenges.proofDeadline(q);
            if (blockNumber() < deadline) vm.roll(deadline);
            INodeRegistry.NodeInfo memory before = registry.nodeInfo(member);
            if (!_tryMark(marker, id, member, q)) {
                ++q; // its challenge named nothing: no miss to mark
                continue;
            }
            (uint256 stake, uint256 unbonding) = _bookMiss(before.stake, before.unbonding);
            if (!magus.membership(id, member).active) _bookBounty(id, slot, stake, unbonding); // evicted
            _count("markMissed");
        } while (toEviction && magus.membership(id, member).active);
        if (membersOf(id)[slot] == address(0)) {
            vacancyBlock[MaguId.unwrap(id)][slot] = uint64(blockNumber());
            formerMembers[MaguId.unwrap(id)].push(member);
            leftIn[MaguId.unwrap(id)][member] = magus.currentPeriod();
            wasEvicted[MaguId.unwrap(id)][member] = true;
            _count("evicted");
        }
    }

    /// @notice Marks a missed period of a member that already left: it stays accountable for the
    /// periods up to the one it left in. An evicted one answers for nothing more: the mark is refused.
    function markMissedFormer(uint256 maguSeed, uint256 formerSeed, uint256 markerSeed) external {
        (MaguId id, IMaguRegistry.MaguInfo memory info, bool ok) = _findMagu(maguSeed, WANT_DATA);
        if (!ok) return;
        address[] storage former = formerMembers[MaguId.unwrap(id)];
        if (former.length == 0) return;
        address member = former[formerSeed % former.length];
        uint64 last = leftIn[MaguId.unwrap(id)][member];
        uint64 q = magus.membership(id, member).joinPeriod;
        address marker = markerSeed % 3 == 0 ? clients[markerSeed % CLIENTS] : nodeActors[markerSeed % NODE_ACTORS];
        if (wasEvicted[MaguId.unwrap(id)][member] && !magus.membership(id, member).active) {
            if (blockNumber() < challenges.proofDeadline(q)) vm.roll(challenges.proofDeadline(q));
            vm.expectRevert(abi.encodeWithSelector(IChallengeManager.ChallengeNotMember.selector, id, member, q));
            vm.prank(marker);
            challenges.markMissed(id, member, q);
            _count("markEvictedRefused");
            return;
        }
        while (q <= last && (challenges.proofState(id, member, q) != 0 || blockNumber() > challenges.markDeadline(q))) ++q;
        if (q > last || q >= info.endPeriod) return;
        uint64 deadline = challenges.proofDeadline(q);
        if (blockNumber() < deadline) vm.roll(deadline);
        INodeRegistry.NodeInfo memory before = registry.nodeInfo(member);
        if (!_tryMark(marker, id, member, q)) return;
        _bookMiss(before.stake, before.unbonding);
        _count("markMissedFormer");
    }

    /// @dev Marks `q` missed as `marker`; false when the member's challenge named nothing.
    function _tryMark(address marker, MaguId id, address member, uint64 q) internal returns (bool) {
        vm.prank(marker);
        try challenges.markMissed(id, member, q) {
            return true;
        } catch (bytes memory reason) {
            require(bytes4(reason) == IChallengeManager.ChallengeNothingToProve.selector, "handler: markMissed failed");
            return false;
        }
    }

    /// @dev Books a missed-proof slash: SLASH_BPS of the stake, taken from stake then unbonding;
    /// MARKER_BPS of it to the marker (outside the contracts), the rest to Rewards (the sink).
    function _bookMiss(uint256 stake, uint256 unbonding) internal returns (uint256, uint256) {
        uint256 amount = stake * SLASH_BPS / 10_000;
        if (amount == 0) return (stake, unbonding);
        uint256 slashed;
        (stake, unbonding, slashed) = _take(stake, unbonding, amount);
        uint256 toMarker = amount * MARKER_BPS / 10_000;
        if (toMarker > slashed) toMarker = slashed;
        ghostRegistry -= slashed;
        ghostRewards += slashed - toMarker;
        return (stake, unbonding);
    }

    /// @dev Books the repair bounty a member that leaves or is evicted pays into its slot.
    function _bookBounty(MaguId id, uint256 slot, uint256 stake, uint256 unbonding) internal {
        (,, uint256 taken) = _take(stake, unbonding, REPAIR_BOUNTY);
        ghostRegistry -= taken;
        ghostMagus += taken;
        ghostBounties += taken;
        ghostBounty[MaguId.unwrap(id)][slot] += taken;
        ghostRewardable[MaguId.unwrap(id)][slot] = address(0);
    }

    function _take(uint256 stake, uint256 unbonding, uint256 amount) internal pure returns (uint256, uint256, uint256) {
        uint256 fromStake = amount < stake ? amount : stake;
        uint256 rest = amount - fromStake;
        uint256 fromUnbonding = rest < unbonding ? rest : unbonding;
        return (stake - fromStake, unbonding - fromUnbonding, fromStake + fromUnbonding);
    }

    function _mostMissed(MaguId id, address[] memory members, uint256 fallbackSlot)
        internal
        view
        returns (uint256 slot)
    {
        slot = fallbackSlot;
        uint32 most;
        for (uint256 s; s < members.length; ++s) {
            if (members[s] == address(0)) continue;
            uint32 misses = magus.membership(id, members[s]).misses;
            if (misses > most) (most, slot) = (misses, s);
        }
    }

    function leave(uint256 maguSeed, uint256 memberSeed) external {
        (MaguId id, IMaguRegistry.MaguInfo memory info, bool ok) = _findMagu(maguSeed, WANT_ACTIVE);
        if (!ok) return;
        uint256 slot = _memberSlot(info.members, memberSeed);
        if (slot == info.members.length) return;
        INodeRegistry.NodeInfo memory before = registry.nodeInfo(info.members[slot]);
        vm.prank(info.members[slot]);
        magus.leave(id);
        _bookBounty(id, slot, before.stake, before.unbonding);
        vacancyBlock[MaguId.unwrap(id)][slot] = uint64(blockNumber());
        formerMembers[MaguId.unwrap(id)].push(info.members[slot]);
        leftIn[MaguId.unwrap(id)][info.members[slot]] = magus.currentPeriod();
        _count("leave");
    }

    function fillVacancy(uint256 maguSeed, uint256 slotSeed) external {
        (MaguId id, IMaguRegistry.MaguInfo memory info, bool ok) = _findMagu(maguSeed, WANT_VACANCY);
        if (!ok) return;
        uint256 slot = _vacantSlot(info.members, slotSeed);
        uint64 opened = vacancyBlock[MaguId.unwrap(id)][slot];
        (uint64 opens,) = magus.selectionWindow(opened);
        if (blockNumber() < opens) vm.roll(opens);
        try magus.fillVacancy(id, uint8(slot)) {}
        catch (bytes memory reason) {
            bytes4 why = bytes4(reason);
            require(
                why == IMaguRegistry.MaguNotEnoughNodes.selector || why == IMaguRegistry.MaguTooLateToFill.selector,
                "handler: fillVacancy failed"
            );
            return;
        }
        if (membersOf(id)[slot] == address(0)) {
            vacancyBlock[MaguId.unwrap(id)][slot] = uint64(blockNumber()); // retried: new draw block
        } else {
            ghostRewardable[MaguId.unwrap(id)][slot] = membersOf(id)[slot];
        }
        _count("fillVacancy");
    }

    function settle(uint256 maguSeed) external {
        (MaguId id, IMaguRegistry.MaguInfo memory info, bool ok) = _findMagu(maguSeed, WANT_ACTIVE);
        if (!ok) return;
        uint256 from = settleBlock(id);
        if (blockNumber() < from) vm.roll(from);
        magus.settle(id);
        for (uint256 s; s < info.members.length; ++s) {
            uint256 unearned = ghostBounty[MaguId.unwrap(id)][s];
            ghostBounties -= unearned; // to the reward pool, never to the owner
            ghostMagus -= unearned;
            ghostRewards += unearned;
            ghostBounty[MaguId.unwrap(id)][s] = 0;
        }
        _count("settle");
    }

    /// @notice The first account (from the seed on) with a MaguRegistry credit claims it.
    function claimMagu(uint256 actorSeed) external {
        uint256 total = NODE_ACTORS + CLIENTS;
        for (uint256 k; k < total; ++k) {
            uint256 i = (actorSeed % total + k) % total;
            address a = i < NODE_ACTORS ? nodeActors[i] : clients[i - NODE_ACTORS];
            uint256 owed = magus.claimable(a);
            if (owed == 0) continue;
            uint256 had = token.balanceOf(a);
            vm.prank(a);
            magus.claim();
            require(token.balanceOf(a) == had + owed, "handler: MaguRegistry paid what it owed");
            ghostMagus -= owed;
            _count("claimMagu");
            return;
        }
    }

    // ------------------------------------------------------------ Rewards

    function submitWeights(uint256 validatorSeed, uint256 weightSeed) external {
        address v = nodeActors[validatorSeed % NODE_ACTORS];
        if (!registry.isActive(v, ROLE_VALIDATOR)) return;
        address[] memory list = new address[](NODE_ACTORS);
        uint256 count;
        for (uint256 i; i < NODE_ACTORS; ++i) {
            address a = nodeActors[i];
            if (a == v || !registry.isActive(a, ROLE_NODE)) continue; // a validator may not weight itself
            uint256 k = count++;
            while (k > 0 && list[k - 1] > a) {
                list[k] = list[k - 1];
                --k;
            }
            list[k] = a;
        }
        if (count == 0) return;
        address[] memory nodes = new address[](count);
        uint256[] memory weights = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            nodes[i] = list[i];
            weights[i] = 1 + uint256(keccak256(abi.encode(weightSeed, i))) % 100;
        }
        uint64 epoch = rewards.currentEpoch();
        vm.prank(v);
        rewards.submitWeights(epoch, nodes, weights);
        submittedIn[epoch] = true;
        _count("submitWeights");
    }

    function finalizeEpoch() external {
        uint64 e = nextEpoch;
        uint256 end = uint256(rewards.config().genesisBlock) + (uint256(e) + 1) * EPOCH_BLOCKS;
        if (blockNumber() < end) vm.roll(end);
        // Minted only if the epoch's counted stake reaches its quorum (checked against the
        // documented rule in Rewards.t.sol; here it decides what the books expect).
        (uint256 stake, uint256 required) = rewards.quorum(e);
        rewards.finalizeEpoch(e);
        if (submittedIn[e] && stake > 0 && stake >= required) {
            ghostMinted += EMISSION;
            ghostRewards += EMISSION;
        }
        ++nextEpoch;
        _count("finalizeEpoch");
    }

    /// @notice The first account (from the seed on) with a Rewards credit claims it.
    function claimRewards(uint256 actorSeed) external {
        for (uint256 k; k < NODE_ACTORS; ++k) {
            address a = nodeActors[(actorSeed % NODE_ACTORS + k) % NODE_ACTORS];
            uint256 owed = rewards.claimable(a);
            if (owed == 0) continue;
            uint256 had = token.balanceOf(a);
            vm.prank(a);
            rewards.claim();
            require(token.balanceOf(a) == had + owed, "handler: Rewards paid what it owed");
            ghostRewards -= owed;
            _count("claimRewards");
            return;
        }
    }

    // ------------------------------------------------------------ MaguAccess

    /// @notice A client deposits for searches in a Magu (any state: a deposit needs none).
    function depositAccess(uint256 maguSeed, uint256 clientSeed, uint256 amountRaw) external {
        if (maguIds.length == 0) return;
        MaguId id = maguIds[maguSeed % maguIds.length];
        address client = clients[clientSeed % CLIENTS];
        uint256 amount = bound(amountRaw, 1, 50 ether);
        fund(client, amount);
        vm.startPrank(client);
        token.approve(address(access), amount);
        access.deposit(id, amount);
        vm.stopPrank();
        ghostAccess += amount;
        _count("depositAccess");
    }

    function requestWithdrawAccess(uint256 maguSeed, uint256 clientSeed) external {
        if (maguIds.length == 0) return;
        MaguId id = maguIds[maguSeed % maguIds.length];
        vm.prank(clients[clientSeed % CLIENTS]);
        access.requestWithdraw(id);
        _count("requestWithdrawAccess");
    }

    /// @notice The first (Magu, client) from the seed on with a withdrawal requested withdraws,
    /// rolling to the block it is ready at.
    function withdrawAccess(uint256 seed) external {
        uint256 pairs = maguIds.length * CLIENTS;
        for (uint256 k; k < pairs; ++k) {
            uint256 i = (seed % pairs + k) % pairs;
            MaguId id = maguIds[i / CLIENTS];
            address client = clients[i % CLIENTS];
            uint64 at = access.withdrawableAt(id, client);
            if (at == 0) continue;
            if (blockNumber() < at) vm.roll(at);
            uint256 balance = access.balanceOf(id, client);
            uint256 had = token.balanceOf(client);
            vm.prank(client);
            access.withdraw(id);
            require(token.balanceOf(client) == had + balance, "handler: MaguAccess paid the balance back");
            ghostAccess -= balance;
            _count("withdrawAccess");
            return;
        }
    }

    /// @notice A member (sitting, or one that left or whose Magu ended) settles a voucher a client
    /// signed, for its paid total plus some: paid the difference, at most the deposit; settling the
    /// same voucher again pays nothing.
    function settleAccess(uint256 maguSeed, uint256 clientSeed, uint256 memberSeed, uint256 amountRaw) external {
        for (uint256 k; k < maguIds.length; ++k) {
            MaguId id = maguIds[(maguSeed % maguIds.length + k) % maguIds.length];
            (address payer, uint256 balance, address member) = _payerAndMember(id, clientSeed, memberSeed);
            if (member == address(0)) continue;
            (uint256 paid,) = access.settled(id, payer, member);
            IMaguAccess.Voucher memory v = IMaguAccess.Voucher({
                magu: MaguId.unwrap(id),
                member: member,
                searches: uint64(1 + amountRaw % 1000),
                total: paid + bound(amountRaw, 1, 20 ether)
            });
            bytes memory sig = signAck(payer, access.voucherDigest(v));
            uint256 owed = v.total - paid;
            uint256 amount = owed < balance ? owed : balance;
            uint256 had = token.balanceOf(member);
            vm.prank(member);
            access.settle(v, payer, sig);
            require(token.balanceOf(member) == had + amount, "handler: MaguAccess paid the voucher's difference");
            ghostAccess -= amount;
            _expectPaidOnce(amount, owed, v.total);
            access.settle(v, payer, sig);
            _count("settleAccess");
            return;
        }
    }

    /// @notice A member serves reads of a priced Magu (the owner sets a base price the first time)
    /// and redeems the reader's cumulative read voucher: paid the difference, at most the deposit,
    /// its read earnings grow by exactly that, and the multiplier stays within its cap; the same
    /// voucher again pays nothing.
    function settleReadAccess(uint256 maguSeed, uint256 clientSeed, uint256 memberSeed, uint256 amountRaw) external {
        for (uint256 k; k < maguIds.length; ++k) {
            MaguId id = maguIds[(maguSeed % maguIds.length + k) % maguIds.length];
            (address payer, uint256 balance, address member) = _payerAndMember(id, clientSeed, memberSeed);
            if (member == address(0)) continue;
            if (access.readPrice(id) == 0) {
                vm.prank(magus.maguInfo(id).owner);
                access.setReadPrice(id, bound(amountRaw, 1, 1 ether));
            }
            (uint256 paid, uint64 fragments, bytes32 reads) = access.readSettled(id, payer, member);
            uint256 total = paid + bound(amountRaw, 1, 20 ether);
            // 1..100 reads of committed fragments, documents or fragments past the count.
            uint32[] memory served = new uint32[](1 + amountRaw % 100);
            for (uint256 i; i < served.length; ++i) {
                served[i] = uint32(uint256(keccak256(abi.encode(amountRaw, i))) % (magus.maguInfo(id).fragmentCount + 2));
                reads = keccak256(abi.encodePacked(reads, served[i]));
            }
            IMaguAccess.ReadVoucher memory v = IMaguAccess.ReadVoucher({
                magu: MaguId.unwrap(id),
                member: member,
                fragments: fragments + uint64(served.length),
                reads: reads,
                total: total,
                maxUnitPrice: total
            });
            uint256 owed = v.total - paid;
            _settleReadOnce(v, payer, served, owed < balance ? owed : balance, owed);
            _count("settleReadAccess");
            return;
        }
    }

    /// @notice `v.member` redeems `v` for the fragments `served`, owed `owed` and paid `amount` (at
    /// most the deposit): its balance and read earnings grow by exactly `amount`, the multiplier
    /// stays within its cap, and the same voucher again pays nothing.
    function _settleReadOnce(IMaguAccess.ReadVoucher memory v, address payer, uint32[] memory served, uint256 amount, uint256 owed)
        internal
    {
        bytes memory sig = signAck(payer, access.readVoucherDigest(v));
        uint256 had = token.balanceOf(v.member);
        uint256 earned = access.readEarned(v.member);
        vm.prank(v.member);
        access.settleRead(v, payer, sig, served);
        require(token.balanceOf(v.member) == had + amount, "handler: MaguAccess paid the read voucher's difference");
        require(access.readEarned(v.member) == earned + amount, "handler: read earnings grew by the payment");
        (uint256 mult,,) = access.readMultiplier(MaguId.wrap(v.magu), served[0], v.member);
        require(mult <= access.MAX_READ_MULTIPLIER_BPS(), "handler: read multiplier within its cap");
        ghostAccess -= amount;
        _expectPaidOnce(amount, owed, v.total);
        access.settleRead(v, payer, sig, served);
    }

    /// @notice After a voucher of `total` was paid `amount` of the `owed`: the same voucher again is
    /// stale when it was paid in full, else the deposit is empty.
    function _expectPaidOnce(uint256 amount, uint256 owed, uint256 total) internal {
        if (amount == owed) {
            vm.expectRevert(abi.encodeWithSelector(IMaguAccess.AccessVoucherStale.selector, total, total));
        } else {
            vm.expectRevert(IMaguAccess.AccessNothingToPay.selector);
        }
    }

    /// @dev A node actor (from the seed on) that a voucher of Magu `id` may pay: an active member,
    /// or one that left or whose Magu ended (not an evicted one); address(0) if none.
    /// @dev A client with a deposit in `id` (the seeded one, else the next) and a member it may pay;
    /// member 0 when there is no such pair.
    function _payerAndMember(MaguId id, uint256 clientSeed, uint256 memberSeed)
        internal
        view
        returns (address payer, uint256 balance, address member)
    {
        payer = clients[clientSeed % CLIENTS];
        if (access.balanceOf(id, payer) == 0) payer = clients[(clientSeed % CLIENTS + 1) % CLIENTS];
        balance = access.balanceOf(id, payer);
        if (balance != 0) member = _payableMember(id, memberSeed);
    }

    function _payableMember(MaguId id, uint256 seed) internal view returns (address) {
        for (uint256 k; k < NODE_ACTORS; ++k) {
            address a = nodeActors[(seed % NODE_ACTORS + k) % NODE_ACTORS];
            IMaguRegistry.Membership memory ms = magus.membership(id, a);
            if (ms.active || ms.leftAfter != 0) return a;
        }
        return address(0);
    }

    function rollBlocks(uint256 blocks) external {
        skipBlocks(bound(blocks, 1, 60));
        _count("roll");
    }
}

/// @notice Money conservation across NodeRegistry, MaguRegistry, Rewards and MaguAccess under
/// random sequences of every user action (see Handler).
contract InvariantTest is Fixture {
    Handler internal handler;

    function setUp() public override {
        super.setUp();
        deployAccess();
        handler = new Handler(token, registry, magus, challenges, rewards, access);
        fund(address(handler), INITIAL_SUPPLY / 2);
        handler.bootstrap();

        bytes4[] memory selectors = new bytes4[](24);
        selectors[0] = Handler.registerNode.selector;
        selectors[1] = Handler.addStake.selector;
        selectors[2] = Handler.requestUnstake.selector;
        selectors[3] = Handler.withdraw.selector;
        selectors[4] = Handler.createMagu.selector;
        selectors[5] = Handler.formMagu.selector;
        selectors[6] = Handler.commitData.selector;
        selectors[7] = Handler.submitProof.selector;
        selectors[8] = Handler.markMissed.selector;
        selectors[9] = Handler.leave.selector;
        selectors[10] = Handler.fillVacancy.selector;
        selectors[11] = Handler.settle.selector;
        selectors[12] = Handler.claimMagu.selector;
        selectors[13] = Handler.submitWeights.selector;
        selectors[14] = Handler.finalizeEpoch.selector;
        selectors[15] = Handler.claimRewards.selector;
        selectors[16] = Handler.rollBlocks.selector;
        selectors[17] = Handler.submitProof.selector; // proofs twice as likely: most periods get proven
        selectors[18] = Handler.markMissedFormer.selector;
        selectors[19] = Handler.depositAccess.selector;
        selectors[20] = Handler.requestWithdrawAccess.selector;
        selectors[21] = Handler.withdrawAccess.selector;
        selectors[22] = Handler.settleAccess.selector;
        selectors[23] = Handler.settleReadAccess.selector;
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    function _held() internal view returns (uint256) {
        return token.balanceOf(address(registry)) + token.balanceOf(address(magus)) + token.balanceOf(address(rewards))
            + token.balanceOf(address(access));
    }

    /// @notice What each money-holding contract holds equals, exactly, what the handler's own
    /// books say it must hold (every token moved in or out by an action, slashes worked out from
    /// the rates), and what its own books say it owes; ChallengeManager holds nothing.
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_balancesMatchBooks() public view {
        assertEq(token.balanceOf(address(registry)), handler.ghostRegistry(), "NodeRegistry == handler's books");
        assertEq(token.balanceOf(address(magus)), handler.ghostMagus(), "MaguRegistry == handler's books");
        assertEq(token.balanceOf(address(rewards)), handler.ghostRewards(), "Rewards == handler's books");
        assertEq(token.balanceOf(address(access)), handler.ghostAccess(), "MaguAccess == handler's books");
        assertEq(token.balanceOf(address(registry)), registry.totalHeld(), "NodeRegistry == its books");
        assertEq(token.balanceOf(address(magus)), magus.totalHeld(), "MaguRegistry == its books");
        assertEq(token.balanceOf(address(challenges)), 0, "ChallengeManager holds nothing");
    }

    /// @notice Supply only grows by Rewards' emissions, and every token is somewhere known.
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_supplyIsInitialPlusMinted() public view {
        assertEq(token.totalSupply(), INITIAL_SUPPLY + handler.ghostMinted(), "supply = initial + minted");
        address[] memory all = handler.actors();
        uint256 sum = _held() + token.balanceOf(address(this)) + token.balanceOf(address(handler))
            + token.balanceOf(address(challenges));
        for (uint256 i; i < all.length; ++i) {
            sum += token.balanceOf(all[i]);
        }
        assertEq(sum, token.totalSupply(), "nothing created or lost outside minting");
    }

    /// @notice Per-account books add up to the tokens held, so nothing is stuck: stakes to
    /// NodeRegistry's balance, credits to Rewards' total, escrows + waiting repair bounties +
    /// credits to MaguRegistry's balance, search deposits to MaguAccess's balance; each node's lock
    /// is exactly what its active memberships need (slashes do not lower it, ended memberships
    /// release it).
    /// hardhat-config: invariant.failOnRevert = true
    function invariant_accountsAddUp() public view {
        MaguId[] memory ids = handler.maguList();
        uint256 staked;
        for (uint256 i; i < registry.nodeCount(); ++i) {
            address node = registry.nodeAt(i);
            INodeRegistry.NodeInfo memory n = registry.nodeInfo(node);
            staked += n.stake + n.unbonding;
            uint256 memberships;
            for (uint256 k; k < ids.length; ++k) {
                if (magus.membership(ids[k], node).active) ++memberships;
            }
            assertEq(n.locked, memberships * STAKE_PER_MEMBER, "lock = what active memberships need");
        }
        assertEq(staked, token.balanceOf(address(registry)), "sum of stakes == NodeRegistry's balance");

        address[] memory all = handler.actors();
        uint256 credited;
        uint256 owed;
        for (uint256 i; i < all.length; ++i) {
            credited += rewards.claimable(all[i]);
            owed += magus.claimable(all[i]);
        }
        assertEq(credited, rewards.totalClaimable(), "sum of reward credits");
        for (uint256 i; i < ids.length; ++i) {
            IMaguRegistry.MaguInfo memory info = magus.maguInfo(ids[i]);
            owed += info.escrow;
            // A Magu not formed yet holds its formation deposit.
            if (info.status == IMaguRegistry.Status.Requested) owed += magus.config().formationDeposit;
        }
        assertEq(
            owed + handler.ghostBounties(),
            token.balanceOf(address(magus)),
            "escrows + bounties + credits == MaguRegistry's balance"
        );

        uint256 deposits;
        for (uint256 i; i < ids.length; ++i) {
            for (uint256 k; k < all.length; ++k) {
                deposits += access.balanceOf(ids[i], all[k]);
            }
        }
        assertEq(deposits, token.balanceOf(address(access)), "sum of search deposits == MaguAccess's balance");
    }

    /// @notice Every handler action can really run: a scripted sequence in which each action
    /// must call the contracts (its count goes up), so none of them silently always returns
    /// early and the invariants above are checked against every kind of action. The books are
    /// checked along the way.
    function test_everyHandlerActionRuns() public {
        _expectRuns("register", abi.encodeCall(Handler.registerNode, (7, 300 ether, 0)));
        _expectRuns("addStake", abi.encodeCall(Handler.addStake, (0, 10 ether)));
        _expectRuns("requestUnstake", abi.encodeCall(Handler.requestUnstake, (7, 10 ether)));
        _expectRuns("withdraw", abi.encodeCall(Handler.withdraw, (7)));
        // Seven periods: long enough that a replacement still joins before the end.
        _expectRuns("createMagu", abi.encodeCall(Handler.createMagu, (1, 0, 5 << 8)));
        _expectRuns("formMagu", abi.encodeCall(Handler.formMagu, (1)));
        _expectRuns("commitData", abi.encodeCall(Handler.commitData, (1, 1)));
        _expectRuns("submitProof", abi.encodeCall(Handler.submitProof, (0, 1)));
        _expectRuns("evicted", abi.encodeCall(Handler.markMissed, (1, 0, 1)));
        assertGt(handler.calls("markMissed"), 0, "markMissed ran");
        _expectRuns("markEvictedRefused", abi.encodeCall(Handler.markMissedFormer, (1, 0, 1)));
        _expectRuns("leave", abi.encodeCall(Handler.leave, (1, 1)));
        _expectRuns("markMissedFormer", abi.encodeCall(Handler.markMissedFormer, (1, 1, 1)));
        _expectRuns("fillVacancy", abi.encodeCall(Handler.fillVacancy, (0, 0)));
        _expectRuns("submitWeights", abi.encodeCall(Handler.submitWeights, (4, 1)));
        uint64 weighed = rewards.currentEpoch();
        while (!rewards.isFinalized(weighed)) {
            _expectRuns("finalizeEpoch", abi.encodeCall(Handler.finalizeEpoch, ()));
        }
        _expectRuns("claimRewards", abi.encodeCall(Handler.claimRewards, (0)));
        _expectRuns("settle", abi.encodeCall(Handler.settle, (0)));
        _expectRuns("claimMagu", abi.encodeCall(Handler.claimMagu, (0)));
        _expectRuns("createMagu", abi.encodeCall(Handler.createMagu, (0, 1, 0)));
        _expectRuns("cancelMagu", abi.encodeCall(Handler.formMagu, (7)));
        // Search deposits: Magu 0 has ended, so its vouchers pay former members.
        _expectRuns("depositAccess", abi.encodeCall(Handler.depositAccess, (0, 0, 10 ether)));
        _expectRuns("settleAccess", abi.encodeCall(Handler.settleAccess, (0, 0, 0, 4 ether)));
        _expectRuns("settleAccess", abi.encodeCall(Handler.settleAccess, (0, 0, 0, 20 ether))); // beyond the deposit
        // Read vouchers from the same deposits.
        _expectRuns("depositAccess", abi.encodeCall(Handler.depositAccess, (0, 0, 10 ether)));
        _expectRuns("settleReadAccess", abi.encodeCall(Handler.settleReadAccess, (0, 0, 0, 3 ether)));
        _expectRuns("settleReadAccess", abi.encodeCall(Handler.settleReadAccess, (0, 0, 0, 20 ether))); // beyond the deposit
        _expectRuns("depositAccess", abi.encodeCall(Handler.depositAccess, (1, 1, 5 ether)));
        _expectRuns("requestWithdrawAccess", abi.encodeCall(Handler.requestWithdrawAccess, (1, 1)));
        _expectRuns("withdrawAccess", abi.encodeCall(Handler.withdrawAccess, (0)));
        _expectRuns("roll", abi.encodeCall(Handler.rollBlocks, (5)));
    }

    /// @dev Calls the handler with `data` and requires the count of `action` to go up, then
    /// checks every invariant.
    function _expectRuns(bytes32 action, bytes memory data) internal {
        uint256 before = handler.calls(action);
        (bool ok, bytes memory ret) = address(handler).call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        uint256 len;
        while (len < 32 && action[len] != 0) ++len;
        bytes memory name = new bytes(len);
        for (uint256 i; i < len; ++i) {
            name[i] = action[i];
        }
        assertGt(handler.calls(action), before, string.concat("handler action ran: ", string(name)));
        invariant_balancesMatchBooks();
        invariant_supplyIsInitialPlusMinted();
        invariant_accountsAddUp();
    }
}
