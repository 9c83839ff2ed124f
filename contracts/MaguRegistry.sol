// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IMaguRegistry} from "./interfaces/IMaguRegistry.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {PlacementLib} from "./libraries/PlacementLib.sol";
import {MaguId} from "./types/MaguId.sol";

/// @title MaguRegistry
/// @notice Holds every Magu's escrow, the repair bounties of vacated slots and the payments
/// members have earned but not claimed. The data of a Magu is one Merkle root and a fragment
/// count (O(1) storage however large the data); members sit in slots, and placement
/// (PlacementLib) maps fragments to slots, so replacing a member moves only its own fragments.
/// @dev Invariant: token.balanceOf(this) >= totalHeld() = Σ escrow + Σ slot bounties + Σ claimable.
/// Escrow only leaves by being credited to claimable (members' pay, the owner's refund); a slot's
/// members prove disjoint periods, so Σ pay <= members × duration × payPerSlotPeriod <= escrow.
contract MaguRegistry is IMaguRegistry, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Role of the ChallengeManager: records proofs and misses, evicts.
    bytes32 public constant CHALLENGE_ROLE = keccak256("CHALLENGE_ROLE");

    /// @notice Bytes reserved per stored fragment when sizing a member's capacity.
    uint64 public constant FRAGMENT_BYTES = 1 << 20;

    uint256 private constant _BLOCKHASH_WINDOW = 256;

    struct Magu {
        address owner;
        Status status;
        uint32 fragmentCount;
        uint32 batches;
        uint64 requestBlock;
        uint64 startPeriod;
        uint64 endPeriod;
        bytes32 root;
        uint256 escrow;
        uint256 payPerSlotPeriod;
        uint64 capacityPerMember;
        uint64 dataPeriod; // first period with data to prove (see commitData)
        MaguParams params;
    }

    struct Vacancy {
        uint64 requestBlock; // 0: not vacant
        uint256 bounty; // repair bounty waiting for the replacement's first proof
        address rewardable; // replacement that earns `bounty` on its first proof
    }

    IERC20 private immutable _token;
    INodeRegistry private immutable _nodes;
    uint64 private immutable _genesisBlock;
    uint64 private immutable _periodBlocks;
    uint256 private immutable _stakePerMember;
    uint256 private immutable _repairBounty;
    uint8 private immutable _maxMembers;
    uint32 private immutable _maxFragments;
    uint64 private immutable _maxDurationPeriods;

    uint256 private _maguCount;
    mapping(MaguId magu => Magu) private _magus;
    mapping(MaguId magu => address[] slots) private _slots;
    mapping(MaguId magu => mapping(address member => Membership)) private _memberships;
    mapping(MaguId magu => mapping(uint256 slot => Vacancy)) private _vacancies;
    mapping(MaguId magu => address[] formerMembers) private _former;
    mapping(address account => uint256) private _claimable;
    uint256 private _totalHeld;

    /// @param cfg deployment parameters
    /// @param admin receives DEFAULT_ADMIN_ROLE (grants CHALLENGE_ROLE at deployment)
    constructor(Config memory cfg, address admin) {
        if (cfg.periodBlocks == 0) revert MaguInvalidParams("periodBlocks", 0);
        if (cfg.maxMembers == 0) revert MaguInvalidParams("maxMembers", 0);
        _token = IERC20(cfg.token);
        _nodes = INodeRegistry(cfg.nodeRegistry);
        _genesisBlock = cfg.genesisBlock == 0 ? uint64(block.number) : cfg.genesisBlock;
        _periodBlocks = cfg.periodBlocks;
        _stakePerMember = cfg.stakePerMember;
        _repairBounty = cfg.repairBounty;
        _maxMembers = cfg.maxMembers;
        _maxFragments = cfg.maxFragments;
        _maxDurationPeriods = cfg.maxDurationPeriods;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    // ---------------------------------------------------------------- client

    /// @inheritdoc IMaguRegistry
    function createMagu(MaguParams calldata p) external nonReentrant returns (MaguId id) {
        uint256 stored = _validate(p);
        uint256 escrow = p.pricePerFragmentPeriod * stored * p.durationPeriods;
        id = MaguId.wrap(++_maguCount);
        Magu storage m = _magus[id];
        m.owner = msg.sender;
        m.status = Status.Requested;
        m.requestBlock = uint64(block.number);
        m.escrow = escrow;
        m.payPerSlotPeriod = escrow / (uint256(p.members) * p.durationPeriods);
        m.capacityPerMember = uint64((stored + p.members - 1) / p.members) * FRAGMENT_BYTES;
        m.params = p;
        _totalHeld += escrow;
        emit MaguRequested(id, msg.sender, p.kind, escrow, uint64(block.number));
        _token.safeTransferFrom(msg.sender, address(this), escrow);
    }

    /// @inheritdoc IMaguRegistry
    function formMagu(MaguId id) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.status != Status.Requested) revert MaguWrongStatus(id, m.status);
        (bool ready, bytes32 seed) = _drawSeed(id, m.requestBlock);
        if (!ready) {
            m.requestBlock = uint64(block.number);
            emit MaguSelectionRetried(id, m.requestBlock);
            return;
        }
        uint8 n = m.params.members;
        address[] memory chosen =
            _nodes.selectNodes(uint256(seed), n, _stakePerMember, m.capacityPerMember, new address[](0));
        if (chosen.length < n) revert MaguNotEnoughNodes(id, chosen.length, n);

        uint64 start = currentPeriod() + 1;
        m.status = Status.Active;
        m.startPeriod = start;
        m.endPeriod = start + m.params.durationPeriods;
        address[] storage slots = _slots[id];
        for (uint8 i; i < n; ++i) {
            slots.push(chosen[i]);
            _join(id, m, chosen[i], i, start, false);
        }
        emit MaguFormed(id, chosen, start, m.endPeriod);
    }

    /// @inheritdoc IMaguRegistry
    function cancelMagu(MaguId id) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.owner != msg.sender) revert MaguNotOwner(id, msg.sender);
        if (m.status != Status.Requested) revert MaguWrongStatus(id, m.status);
        uint256 refund = m.escrow;
        m.escrow = 0;
        m.status = Status.Cancelled;
        _claimable[m.owner] += refund;
        emit MaguCancelled(id, refund);
    }

    /// @inheritdoc IMaguRegistry
    function commitData(MaguId id, bytes32 root, uint32 fragmentCount) external {
        Magu storage m = _magu(id);
        if (m.owner != msg.sender) revert MaguNotOwner(id, msg.sender);
        if (m.status != Status.Requested && m.status != Status.Active) revert MaguWrongStatus(id, m.status);
        if (m.status == Status.Active && currentPeriod() >= m.endPeriod) revert MaguWrongStatus(id, m.status);
        uint32 max = m.params.maxFragments;
        bool misaligned = m.params.kind == Kind.Blob
            && fragmentCount % (uint32(m.params.dataShards) + m.params.parityShards) != 0;
        if (fragmentCount <= m.fragmentCount || fragmentCount > max || misaligned) {
            revert MaguInvalidCommit(id, fragmentCount, m.fragmentCount, max);
        }
        if (root == bytes32(0)) revert MaguInvalidParams("root", 0);
        // Members cannot prove data before they hold it. A first commit before challenges start
        // (the usual upload right after formation) is challenged from the next period, startPeriod
        // at the latest; a first commit once challenges could have started (a Magu formed empty)
        // gets one more whole period to deliver the data.
        if (m.fragmentCount == 0) {
            uint64 next = currentPeriod() + 1;
            m.dataPeriod = m.status == Status.Active && next > m.startPeriod ? next + 1 : next;
        }
        m.root = root;
        m.fragmentCount = fragmentCount;
        uint32 batch = m.batches++;
        emit DataCommitted(id, batch, root, fragmentCount);
    }

    // ---------------------------------------------------------------- members

    /// @inheritdoc IMaguRegistry
    function leave(MaguId id) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.status != Status.Active) revert MaguWrongStatus(id, m.status);
        _vacate(id, m, msg.sender, false);
    }

    /// @inheritdoc IMaguRegistry
    function fillVacancy(MaguId id, uint8 slot) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.status != Status.Active) revert MaguWrongStatus(id, m.status);
        Vacancy storage v = _vacancies[id][slot];
        if (slot >= m.params.members || v.requestBlock == 0) revert MaguNoVacancy(id, slot);
        (bool ready, bytes32 seed) = _drawSeed(id, v.requestBlock);
        if (!ready) {
            v.requestBlock = uint64(block.number);
            emit MaguSelectionRetried(id, v.requestBlock);
            return;
        }
        address[] storage slots = _slots[id];
        // Neither a current member nor one that already left or was evicted may take the slot.
        address[] memory exclude = _concat(slots, _former[id]);
        address[] memory chosen =
            _nodes.selectNodes(uint256(keccak256(abi.encode(seed, slot))), 1, _stakePerMember, m.capacityPerMember, exclude);
        if (chosen.length == 0) revert MaguNotEnoughNodes(id, 0, 1);
        address member = chosen[0];
        slots[slot] = member;
        v.requestBlock = 0;
        v.rewardable = member;
        _join(id, m, member, slot, currentPeriod() + 1, true);
    }

    /// @inheritdoc IMaguRegistry
    function settle(MaguId id) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.status != Status.Active) revert MaguWrongStatus(id, m.status);
        // The last period's proofs may arrive until the end of the period after it.
        if (currentPeriod() <= m.endPeriod) revert MaguNotExpired(id, m.endPeriod + 1);
        m.status = Status.Ended;
        address[] storage slots = _slots[id];
        uint256 paid;
        uint256 bounties;
        for (uint256 s; s < slots.length; ++s) {
            address member = slots[s];
            if (member != address(0)) {
                paid += _payOut(id, m, member);
                _nodes.unlock(member, _stakePerMember, m.capacityPerMember);
            }
            Vacancy storage v = _vacancies[id][s];
            bounties += v.bounty;
            v.bounty = 0;
        }
        uint256 refund = m.escrow + bounties;
        m.escrow = 0;
        _claimable[m.owner] += refund;
        emit MaguSettled(id, paid, refund);
    }

    /// @inheritdoc IMaguRegistry
    function claim() external nonReentrant {
        uint256 amount = _claimable[msg.sender];
        if (amount == 0) revert MaguNothingToClaim(msg.sender);
        _claimable[msg.sender] = 0;
        _totalHeld -= amount;
        emit Claimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- ChallengeManager

    /// @inheritdoc IMaguRegistry
    function recordProof(MaguId id, address member, uint64) external onlyRole(CHALLENGE_ROLE) {
        Membership storage ms = _memberships[id][member];
        if (!ms.active) revert MaguNotMember(id, member);
        ++ms.provedPeriods;
        Vacancy storage v = _vacancies[id][ms.slot];
        if (v.rewardable == member && v.bounty > 0) {
            uint256 bounty = v.bounty;
            v.bounty = 0;
            v.rewardable = address(0);
            _claimable[member] += bounty;
            emit RepairRewarded(id, member, bounty);
        }
    }

    /// @inheritdoc IMaguRegistry
    function recordMiss(MaguId id, address member) external onlyRole(CHALLENGE_ROLE) returns (uint32) {
        Membership storage ms = _memberships[id][member];
        if (!ms.active) revert MaguNotMember(id, member);
        return ++ms.misses;
    }

    /// @inheritdoc IMaguRegistry
    function evict(MaguId id, address member) external onlyRole(CHALLENGE_ROLE) nonReentrant {
        Magu storage m = _magu(id);
        if (m.status != Status.Active) revert MaguWrongStatus(id, m.status);
        _vacate(id, m, member, true);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc IMaguRegistry
    function holders(MaguId id, uint256 fragment) external view returns (address[] memory out) {
        Magu storage m = _magu(id);
        if (fragment >= m.fragmentCount) revert MaguUnknownFragment(id, fragment, m.fragmentCount);
        address[] storage slots = _slots[id];
        uint256 n = slots.length;
        if (n == 0) return out;
        MaguParams storage p = m.params;
        if (p.kind == Kind.Vector) {
            uint256[] memory top = PlacementLib.topSlots(MaguId.unwrap(id), fragment, n, p.replication);
            out = new address[](top.length);
            for (uint256 i; i < top.length; ++i) {
                out[i] = slots[top[i]];
            }
        } else {
            uint256 width = uint256(p.dataShards) + p.parityShards;
            uint256[] memory top = PlacementLib.topSlots(MaguId.unwrap(id), fragment / width, n, width);
            out = new address[](1);
            out[0] = slots[top[fragment % width]];
        }
    }

    /// @inheritdoc IMaguRegistry
    function maguInfo(MaguId id) external view returns (MaguInfo memory info) {
        Magu storage m = _magus[id];
        info = MaguInfo({
            owner: m.owner,
            status: m.status,
            params: m.params,
            root: m.root,
            fragmentCount: m.fragmentCount,
            batches: m.batches,
            requestBlock: m.requestBlock,
            startPeriod: m.startPeriod,
            endPeriod: m.endPeriod,
            escrow: m.escrow,
            payPerSlotPeriod: m.payPerSlotPeriod,
            members: _slots[id]
        });
    }

    /// @inheritdoc IMaguRegistry
    function membership(MaguId id, address member) external view returns (Membership memory ms) {
        ms = _memberships[id][member];
        ms.joinPeriod = _challengedFrom(ms.joinPeriod, _magus[id].dataPeriod);
    }

    /// @dev The first period a member is challenged for: not before it joined, not before there
    /// was data (a Magu without data has dataPeriod 0 and challenges revert ChallengeNoData).
    function _challengedFrom(uint64 joinPeriod, uint64 dataPeriod) private pure returns (uint64) {
        return joinPeriod > dataPeriod ? joinPeriod : dataPeriod;
    }

    /// @inheritdoc IMaguRegistry
    function challengeContext(MaguId id, address member) external view returns (ChallengeContext memory c) {
        Magu storage m = _magus[id];
        Membership storage ms = _memberships[id][member];
        MaguParams storage p = m.params;
        c = ChallengeContext({
            status: m.status,
            active: ms.active,
            slot: ms.slot,
            slots: p.members,
            replication: p.kind == Kind.Vector ? p.replication : 0,
            stripeWidth: p.kind == Kind.Blob ? p.dataShards + p.parityShards : 0,
            fragmentCount: m.fragmentCount,
            root: m.root,
            joinPeriod: _challengedFrom(ms.joinPeriod, m.dataPeriod),
            leftAfter: ms.leftAfter,
            startPeriod: m.startPeriod,
            endPeriod: m.endPeriod
        });
    }

    /// @inheritdoc IMaguRegistry
    function currentPeriod() public view returns (uint64) {
        return (uint64(block.number) - _genesisBlock) / _periodBlocks;
    }

    /// @inheritdoc IMaguRegistry
    function periodStart(uint64 period) external view returns (uint64) {
        return _genesisBlock + period * _periodBlocks;
    }

    /// @inheritdoc IMaguRegistry
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @inheritdoc IMaguRegistry
    function totalHeld() external view returns (uint256) {
        return _totalHeld;
    }

    /// @inheritdoc IMaguRegistry
    function maguCount() external view returns (uint256) {
        return _maguCount;
    }

    /// @inheritdoc IMaguRegistry
    function config() external view returns (Config memory) {
        return Config({
            token: address(_token),
            nodeRegistry: address(_nodes),
            genesisBlock: _genesisBlock,
            periodBlocks: _periodBlocks,
            stakePerMember: _stakePerMember,
            repairBounty: _repairBounty,
            maxMembers: _maxMembers,
            maxFragments: _maxFragments,
            maxDurationPeriods: _maxDurationPeriods
        });
    }

    // ---------------------------------------------------------------- internals

    function _magu(MaguId id) private view returns (Magu storage m) {
        m = _magus[id];
        if (m.status == Status.None) revert MaguUnknown(id);
    }

    /// @dev Checks the parameters; returns the number of fragment copies the escrow pays for.
    function _validate(MaguParams calldata p) private view returns (uint256 stored) {
        if (p.members == 0 || p.members > _maxMembers) revert MaguInvalidParams("members", p.members);
        if (p.maxFragments == 0 || p.maxFragments > _maxFragments) {
            revert MaguInvalidParams("maxFragments", p.maxFragments);
        }
        if (p.durationPeriods == 0 || p.durationPeriods > _maxDurationPeriods) {
            revert MaguInvalidParams("durationPeriods", p.durationPeriods);
        }
        if (p.pricePerFragmentPeriod == 0) revert MaguInvalidParams("pricePerFragmentPeriod", 0);
        if (p.kind == Kind.Vector) {
            if (p.dimension == 0) revert MaguInvalidParams("dimension", 0);
            if (p.metric == Metric.None) revert MaguInvalidParams("metric", 0);
            if (p.replication == 0 || p.replication > p.members) revert MaguInvalidParams("replication", p.replication);
            if (p.dataShards != 0 || p.parityShards != 0) revert MaguInvalidParams("dataShards", p.dataShards);
            stored = uint256(p.maxFragments) * p.replication;
        } else {
            uint256 width = uint256(p.dataShards) + p.parityShards;
            if (p.dataShards == 0) revert MaguInvalidParams("dataShards", 0);
            if (width > p.members) revert MaguInvalidParams("parityShards", p.parityShards);
            if (p.replication != 0) revert MaguInvalidParams("replication", p.replication);
            if (p.metric != Metric.None || p.dimension != 0) revert MaguInvalidParams("metric", uint8(p.metric));
            if (p.maxFragments % width != 0) revert MaguInvalidParams("maxFragments", p.maxFragments);
            stored = p.maxFragments;
        }
    }

    /// @dev Randomness for a selection requested at `requestBlock`: the hash of the block after it.
    /// Not ready before that block is mined; out of reach after 256 blocks (the caller retries).
    function _drawSeed(MaguId id, uint64 requestBlock) private view returns (bool ready, bytes32 seed) {
        uint256 source = uint256(requestBlock) + 1;
        if (block.number <= source) revert MaguTooEarly(id, uint64(source + 1));
        if (block.number - source > _BLOCKHASH_WINDOW) return (false, bytes32(0));
        return (true, keccak256(abi.encode(blockhash(source), id)));
    }

    function _join(MaguId id, Magu storage m, address member, uint8 slot, uint64 joinPeriod, bool replacement)
        private
    {
        _nodes.lock(member, _stakePerMember, m.capacityPerMember);
        _memberships[id][member] =
            Membership({active: true, slot: slot, joinPeriod: joinPeriod, provedPeriods: 0, misses: 0, leftAfter: 0});
        emit MemberJoined(id, member, slot, replacement, joinPeriod);
    }

    /// @dev Pays `member` for its proven periods and opens its slot for a replacement, taking
    /// the repair bounty from its stake.
    function _vacate(MaguId id, Magu storage m, address member, bool evicted) private {
        Membership storage ms = _memberships[id][member];
        if (!ms.active) revert MaguNotMember(id, member);
        uint8 slot = ms.slot;
        uint256 paid = _payOut(id, m, member);
        _nodes.unlock(member, _stakePerMember, m.capacityPerMember);
        _slots[id][slot] = address(0);
        _former[id].push(member);

        Vacancy storage v = _vacancies[id][slot];
        v.requestBlock = uint64(block.number);
        v.rewardable = address(0);
        if (_repairBounty > 0) {
            address[] memory to = new address[](1);
            to[0] = address(this);
            uint256[] memory amounts = new uint256[](1);
            amounts[0] = _repairBounty;
            uint256 taken = _nodes.slash(member, _repairBounty, to, amounts);
            v.bounty += taken;
            _totalHeld += taken;
        }
        emit MemberLeft(id, member, slot, evicted, paid);
    }

    function _concat(address[] storage a, address[] storage b) private view returns (address[] memory out) {
        out = new address[](a.length + b.length);
        for (uint256 i; i < a.length; ++i) {
            out[i] = a[i];
        }
        for (uint256 i; i < b.length; ++i) {
            out[a.length + i] = b[i];
        }
    }

    /// @dev Credits `member` with its proven periods' pay and ends its membership.
    function _payOut(MaguId id, Magu storage m, address member) private returns (uint256 pay) {
        Membership storage ms = _memberships[id][member];
        pay = uint256(ms.provedPeriods) * m.payPerSlotPeriod;
        ms.active = false;
        ms.leftAfter = currentPeriod() + 1;
        ms.provedPeriods = 0;
        m.escrow -= pay;
        _claimable[member] += pay;
    }
}
