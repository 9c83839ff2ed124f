// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {IMaguRegistry} from "./interfaces/IMaguRegistry.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {MerkleLib} from "./libraries/MerkleLib.sol";
import {PlacementLib} from "./libraries/PlacementLib.sol";
import {MaguId} from "./types/MaguId.sol";

/// @title MaguRegistry
/// @notice Holds every Magu's escrow, the repair bounties of vacated slots and the payments
/// members have earned but not claimed. The data of a Magu is one Merkle root and a fragment
/// count; members sit in slots, and placement (PlacementLib) maps fragments to slots, so
/// replacing a member moves only its own fragments.
/// Data arrives in batches, delivered before they are committed: a batch is committed with the
/// members' EIP-712 acknowledgements that they hold and verified their part, and only when enough
/// of them acknowledged for every stripe (blob) or fragment (vector) to be rebuilt. Each batch
/// keeps the committed fragments (the commit proves the old tree is a prefix of the new one) and
/// is challenged from the period after its commit for the members that acknowledged it, and after
/// a grace sized to their share for the others; a period's (root, count) is therefore fixed
/// before the period starts.
/// Members are drawn (NodeRegistry.drawNodes) in a window: the selection epoch after the request's,
/// from the block after the seed block on. A draw there sees only stake changes made before the
/// request, and the seed is the hash of the block after it, so nobody can steer it. The owner's
/// formation deposit is refunded when the Magu forms and forfeited (to the bounty sink) when the
/// owner cancels after the seed is known or lets the window pass: every re-roll costs a deposit.
/// @dev Invariant: token.balanceOf(this) >= totalHeld() = Σ escrow + Σ formation deposits +
/// Σ slot bounties + Σ claimable.
/// Escrow only leaves by being credited to claimable (members' pay, the owner's refund); a slot's
/// members prove disjoint periods, so Σ pay <= members × duration × payPerSlotPeriod <= escrow.
contract MaguRegistry is IMaguRegistry, AccessControl, ReentrancyGuard, EIP712 {
    using SafeERC20 for IERC20;

    /// @notice Role of the ChallengeManager: records proofs and misses, evicts.
    bytes32 public constant CHALLENGE_ROLE = keccak256("CHALLENGE_ROLE");

    /// @notice Largest vector dimension a Magu may declare.
    uint32 public constant MAX_DIMENSION = 4096;

    /// @notice Members one formMagu call seats (a larger Magu is formed by several calls within
    /// its selection window): bounds the call's gas, about 0.11M per seat among 10,000 nodes.
    uint256 public constant SEATS_PER_FORM = 8;

    /// @notice Bytes reserved per stored fragment when sizing a member's capacity.
    uint64 public constant FRAGMENT_BYTES = 1 << 20;

    /// @notice What a member signs to acknowledge a batch (EIP-712, domain "MuriData" version "1").
    /// (The type string is hashed at compile time; its length costs nothing at run time.)
    bytes32 public constant ACK_TYPEHASH =
        // solhint-disable-next-line gas-small-strings
        keccak256("Ack(uint256 magu,uint32 batch,bytes32 root,uint32 fragmentCount,address member)");

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
        uint256 deposit; // formation deposit, held until the Magu forms
        MaguParams params;
    }

    /// @dev One committed batch. `ackers`: bit i set when slot i's member acknowledged it.
    struct Batch {
        bytes32 root;
        uint32 fragmentCount;
        uint64 fromPeriod; // challenged from here by the members that acknowledged it
        uint64 graceUntil; // ... and from here by every member
        uint256 ackers;
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
    address private immutable _bountySink;
    uint32 private immutable _fetchFragmentsPerPeriod;
    uint256 private immutable _formationDeposit;
    uint64 private immutable _settleDelayBlocks;
    uint64 private immutable _selectionEpochBlocks;

    uint256 private _maguCount;
    mapping(MaguId magu => Magu) private _magus;
    mapping(MaguId magu => address[] slots) private _slots;
    mapping(MaguId magu => mapping(address member => Membership)) private _memberships;
    mapping(MaguId magu => mapping(uint256 slot => Vacancy)) private _vacancies;
    mapping(MaguId magu => Batch[]) private _batches;
    mapping(MaguId magu => address[] formerMembers) private _former;
    mapping(address account => uint256) private _claimable;
    uint256 private _totalHeld;

    /// @param cfg deployment parameters
    /// @param admin receives DEFAULT_ADMIN_ROLE (grants CHALLENGE_ROLE at deployment)
    constructor(Config memory cfg, address admin) EIP712("MuriData", "1") {
        if (cfg.periodBlocks == 0) revert MaguInvalidParams("periodBlocks", 0);
        if (cfg.maxMembers == 0) revert MaguInvalidParams("maxMembers", 0);
        if (cfg.bountySink == address(0)) revert MaguInvalidParams("bountySink", 0);
        if (cfg.fetchFragmentsPerPeriod == 0) revert MaguInvalidParams("fetchFragmentsPerPeriod", 0);
        _token = IERC20(cfg.token);
        _nodes = INodeRegistry(cfg.nodeRegistry);
        _genesisBlock = cfg.genesisBlock == 0 ? uint64(block.number) : cfg.genesisBlock;
        _periodBlocks = cfg.periodBlocks;
        _stakePerMember = cfg.stakePerMember;
        _repairBounty = cfg.repairBounty;
        _maxMembers = cfg.maxMembers;
        _maxFragments = cfg.maxFragments;
        _maxDurationPeriods = cfg.maxDurationPeriods;
        _bountySink = cfg.bountySink;
        _fetchFragmentsPerPeriod = cfg.fetchFragmentsPerPeriod;
        _formationDeposit = cfg.formationDeposit;
        _settleDelayBlocks = cfg.settleDelayBlocks;
        _selectionEpochBlocks = _nodes.config().selectionEpochBlocks;
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
        m.deposit = _formationDeposit;
        m.params = p;
        _totalHeld += escrow + _formationDeposit;
        emit MaguRequested(id, msg.sender, p.kind, escrow, uint64(block.number));
        _token.safeTransferFrom(msg.sender, address(this), escrow + _formationDeposit);
    }

    /// @inheritdoc IMaguRegistry
    function formMagu(MaguId id) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.status != Status.Requested) revert MaguWrongStatus(id, m.status);
        address[] storage slots = _slots[id];
        uint256 seated = slots.length;
        (bool ready, bytes32 seed) = _drawSeed(id, m.requestBlock);
        if (!ready) {
            // The window closed part-way through seating: the Magu starts with the seats taken and
            // the others are vacancies, each drawn in a window of its own (fillVacancy).
            if (seated > 0) _activate(id, m);
            else _reRequest(id, m);
            return;
        }
        uint256 n = m.params.members;
        if (seated == 0) {
            m.startPeriod = currentPeriod() + 1;
            m.endPeriod = m.startPeriod + m.params.durationPeriods;
        }
        // Seats are taken in slot order, SEATS_PER_FORM a call, every part drawn in the same window
        // (the same tree) with its own seed and the members seated so far left out: the result does
        // not depend on who calls, or when within the window.
        uint256 count = n - seated < SEATS_PER_FORM ? n - seated : SEATS_PER_FORM;
        uint256 partSeed = seated == 0 ? uint256(seed) : uint256(keccak256(abi.encode(seed, seated)));
        address[] memory chosen =
            _nodes.drawNodes(partSeed, count, _stakePerMember, m.capacityPerMember, slots);
        if (chosen.length < count) revert MaguNotEnoughNodes(id, seated + chosen.length, n);
        uint64 next = currentPeriod() + 1;
        uint64 joinPeriod = next > m.startPeriod ? next : m.startPeriod;
        for (uint256 i; i < count; ++i) {
            slots.push(chosen[i]);
            _join(id, m, chosen[i], uint8(seated + i), joinPeriod, false);
        }
        if (seated + count == n) _activate(id, m);
    }

    /// @inheritdoc IMaguRegistry
    function cancelMagu(MaguId id) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.owner != msg.sender) revert MaguNotOwner(id, msg.sender);
        if (m.status != Status.Requested) revert MaguWrongStatus(id, m.status);
        uint256 refund = m.escrow;
        uint256 deposit = m.deposit;
        m.escrow = 0;
        m.deposit = 0;
        m.status = Status.Cancelled;
        // Members seated by a formation still under way are released.
        address[] storage slots = _slots[id];
        for (uint256 i; i < slots.length; ++i) {
            _memberships[id][slots[i]].active = false;
            _nodes.unlock(slots[i], _stakePerMember, m.capacityPerMember);
        }
        // Once the seed is known the owner knows who would be drawn: cancelling then is a re-roll
        // and costs the deposit.
        bool seedKnown = block.number >= uint256(m.requestBlock) + 2;
        if (seedKnown) _forfeit(id, deposit);
        else refund += deposit;
        _claimable[m.owner] += refund;
        emit MaguCancelled(id, refund);
    }

    /// @inheritdoc IMaguRegistry
    function commitData(
        MaguId id,
        bytes32 root,
        uint32 fragmentCount,
        bytes calldata indexCid,
        bytes32[] calldata extension,
        bytes[] calldata acks
    ) external {
        Magu storage m = _magu(id);
        if (m.owner != msg.sender) revert MaguNotOwner(id, msg.sender);
        // Acknowledgements need members: data is delivered to a formed Magu, before it ends.
        if (m.status != Status.Active || currentPeriod() >= m.endPeriod) revert MaguWrongStatus(id, m.status);
        uint32 current = m.fragmentCount;
        MaguParams storage p = m.params;
        bool misaligned =
            p.kind == Kind.Blob && fragmentCount % (uint32(p.dataShards) + p.parityShards) != 0;
        if (fragmentCount <= current || fragmentCount > p.maxFragments || misaligned) {
            revert MaguInvalidCommit(id, fragmentCount, current, p.maxFragments);
        }
        if (root == bytes32(0)) revert MaguInvalidParams("root", 0);
        _checkAppend(id, m.root, current, root, fragmentCount, extension);
        uint32 batch = m.batches++;
        uint256 ackers = _checkAcks(id, m, batch, root, fragmentCount, acks);
        uint64 from = currentPeriod() + 1;
        uint64 graceUntil = from + 1 + _fetchPeriods(m, fragmentCount - current);
        _batches[id].push(
            Batch({root: root, fragmentCount: fragmentCount, fromPeriod: from, graceUntil: graceUntil, ackers: ackers})
        );
        m.root = root;
        m.fragmentCount = fragmentCount;
        emit DataCommitted(id, batch, root, fragmentCount, from, graceUntil, ackers, indexCid);
    }

    /// @inheritdoc IMaguRegistry
    function ackDigest(MaguId id, uint32 batch, bytes32 root, uint32 fragmentCount, address member)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(abi.encode(ACK_TYPEHASH, MaguId.unwrap(id), batch, root, fragmentCount, member))
        );
    }

    // ---------------------------------------------------------------- members

    /// @inheritdoc IMaguRegistry
    function leave(MaguId id) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.status != Status.Active) revert MaguWrongStatus(id, m.status);
        _vacate(id, m, msg.sender, false, false);
    }

    /// @inheritdoc IMaguRegistry
    function fire(MaguId id, address member) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.owner != msg.sender) revert MaguNotOwner(id, msg.sender);
        if (m.status != Status.Active) revert MaguWrongStatus(id, m.status);
        uint8 slot = _memberships[id][member].slot;
        // The member is paid for what it proved and keeps its stake; the owner funds the
        // replacement's repair bounty and forfeits a formation deposit: a redraw costs what a
        // re-roll costs (selection grinding, issue 11.3), whoever the newcomer is.
        _vacate(id, m, member, false, true);
        emit MemberFired(id, member, slot, _formationDeposit);
        if (_formationDeposit > 0) _token.safeTransferFrom(msg.sender, _bountySink, _formationDeposit);
    }

    /// @inheritdoc IMaguRegistry
    function fillVacancy(MaguId id, uint8 slot) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.status != Status.Active) revert MaguWrongStatus(id, m.status);
        Vacancy storage v = _vacancies[id][slot];
        if (slot >= m.params.members || v.requestBlock == 0) revert MaguNoVacancy(id, slot);
        uint64 joinPeriod = currentPeriod() + 2 + _fetchPeriods(m, m.fragmentCount);
        if (joinPeriod >= m.endPeriod) revert MaguTooLateToFill(id, joinPeriod, m.endPeriod);
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
            _nodes.drawNodes(uint256(keccak256(abi.encode(seed, slot))), 1, _stakePerMember, m.capacityPerMember, exclude);
        if (chosen.length == 0) revert MaguNotEnoughNodes(id, 0, 1);
        address member = chosen[0];
        slots[slot] = member;
        v.requestBlock = 0;
        v.rewardable = member;
        // The replacement fetches its share of everything committed from the other holders first.
        _join(id, m, member, slot, joinPeriod, true);
    }

    /// @inheritdoc IMaguRegistry
    function settle(MaguId id) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.status != Status.Active) revert MaguWrongStatus(id, m.status);
        // The last period's proofs may arrive until the end of the period after it, and its misses
        // may be marked until the mark window after the proof deadline closes: settling earlier
        // would release the locks, and the stake under them, before the misses are answered.
        uint64 ready = periodStart(m.endPeriod + 1);
        uint64 marked = periodStart(m.endPeriod) + _settleDelayBlocks + 1;
        if (marked > ready) ready = marked;
        if (block.number < ready) revert MaguNotExpired(id, ready);
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
        // Bounties nobody earned go to the reward pool, never to the owner: an owner must not
        // profit from its members leaving or being evicted.
        uint256 refund = m.escrow;
        m.escrow = 0;
        _claimable[m.owner] += refund;
        emit MaguSettled(id, paid, refund);
        if (bounties > 0) {
            _totalHeld -= bounties;
            _token.safeTransfer(_bountySink, bounties);
        }
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
        _vacate(id, m, member, true, false);
    }

    /// @inheritdoc IMaguRegistry
    function dropUnbacked(MaguId id, address member) external nonReentrant {
        Magu storage m = _magu(id);
        if (m.status != Status.Active) revert MaguWrongStatus(id, m.status);
        if (_nodes.isBacked(member)) revert MaguMemberBacked(id, member);
        _vacate(id, m, member, true, false);
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
        // The first period it is challenged for: not before it joined, nor before a batch it
        // acknowledged (or whose grace passed) was available. No data yet: its join period.
        Batch[] storage bs = _batches[id];
        uint64 first = type(uint64).max;
        for (uint256 i; i < bs.length && bs[i].fromPeriod < first; ++i) {
            Batch storage b = bs[i];
            uint64 from = (b.ackers >> ms.slot) & 1 == 1 ? b.fromPeriod : b.graceUntil;
            if (from < first) first = from;
        }
        if (first != type(uint64).max && first > ms.joinPeriod) ms.joinPeriod = first;
    }

    /// @inheritdoc IMaguRegistry
    function challengedData(MaguId id, address member, uint64 period)
        external
        view
        returns (bytes32 root, uint32 fragmentCount)
    {
        return _dataFor(id, _memberships[id][member].slot, period);
    }

    /// @inheritdoc IMaguRegistry
    function challengeContext(MaguId id, address member, uint64 period)
        external
        view
        returns (ChallengeContext memory c)
    {
        Magu storage m = _magus[id];
        Membership storage ms = _memberships[id][member];
        MaguParams storage p = m.params;
        (bytes32 root, uint32 count) = _dataFor(id, ms.slot, period);
        c = ChallengeContext({
            status: m.status,
            active: ms.active,
            slot: ms.slot,
            slots: p.members,
            replication: p.kind == Kind.Vector ? p.replication : 0,
            stripeWidth: p.kind == Kind.Blob ? p.dataShards + p.parityShards : 0,
            fragmentCount: count,
            root: root,
            joinPeriod: ms.joinPeriod,
            leftAfter: ms.leftAfter,
            startPeriod: m.startPeriod,
            endPeriod: m.endPeriod
        });
    }

    /// @dev The (root, count) slot `slot` answers for in `period`: the latest batch available to it
    /// then (acknowledged by that slot and committed before the period, or past its grace). Batches
    /// are in commit order, so their periods never decrease: a binary search finds the last one
    /// committed before `period`, and the walk back only passes batches still in their grace.
    function _dataFor(MaguId id, uint8 slot, uint64 period) private view returns (bytes32 root, uint32 count) {
        Batch[] storage bs = _batches[id];
        uint256 lo;
        uint256 hi = bs.length;
        while (lo < hi) {
            uint256 mid = (lo + hi) >> 1;
            if (bs[mid].fromPeriod <= period) lo = mid + 1;
            else hi = mid;
        }
        for (uint256 i = lo; i > 0; --i) {
            Batch storage b = bs[i - 1];
            if ((b.ackers >> slot) & 1 == 1 || b.graceUntil <= period) return (b.root, b.fragmentCount);
        }
    }

    /// @inheritdoc IMaguRegistry
    function currentPeriod() public view returns (uint64) {
        return (uint64(block.number) - _genesisBlock) / _periodBlocks;
    }

    /// @inheritdoc IMaguRegistry
    function periodStart(uint64 period) public view returns (uint64) {
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
            maxDurationPeriods: _maxDurationPeriods,
            bountySink: _bountySink,
            fetchFragmentsPerPeriod: _fetchFragmentsPerPeriod,
            formationDeposit: _formationDeposit,
            settleDelayBlocks: _settleDelayBlocks
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
            // A record must stay disputable within a block: SearchMarket decodes and measures it on chain.
            if (p.dimension == 0 || p.dimension > MAX_DIMENSION) revert MaguInvalidParams("dimension", p.dimension);
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

    /// @inheritdoc IMaguRegistry
    function vacancy(MaguId id, uint256 slot)
        external
        view
        returns (uint64 requestBlock, uint256 bounty, address rewardable)
    {
        Vacancy storage v = _vacancies[id][slot];
        return (v.requestBlock, v.bounty, v.rewardable);
    }

    /// @inheritdoc IMaguRegistry
    function selectionWindow(uint64 requestBlock) public view returns (uint64 opens, uint64 closes) {
        uint64 d = _selectionEpochBlocks;
        uint64 next = (requestBlock / d + 1) * d;
        opens = requestBlock + 2 > next ? requestBlock + 2 : next;
        closes = next + d - 1;
    }

    /// @dev Randomness for a selection requested at `requestBlock`: the hash of the block after it,
    /// usable in the request's selection window (see selectionWindow). Reverts before the window;
    /// not ready after it (the caller re-requests). The window ends within 2 x 128 blocks of the
    /// seed block, so its hash is still available.
    function _drawSeed(MaguId id, uint64 requestBlock) private view returns (bool ready, bytes32 seed) {
        (uint64 opens, uint64 closes) = selectionWindow(requestBlock);
        if (block.number < opens) revert MaguTooEarly(id, opens);
        if (block.number > closes) return (false, bytes32(0));
        return (true, keccak256(abi.encode(blockhash(uint256(requestBlock) + 1), id)));
    }

    /// @dev A formation whose window passed: only the owner may ask again, with a new deposit; the
    /// old one is forfeited (letting the window pass is a re-roll too).
    function _reRequest(MaguId id, Magu storage m) private {
        if (msg.sender != m.owner) revert MaguNotOwner(id, msg.sender);
        _forfeit(id, m.deposit);
        m.deposit = _formationDeposit;
        m.requestBlock = uint64(block.number);
        _totalHeld += _formationDeposit;
        emit MaguSelectionRetried(id, m.requestBlock);
        _token.safeTransferFrom(msg.sender, address(this), _formationDeposit);
    }

    /// @dev Sends a forfeited formation deposit to the bounty sink.
    function _forfeit(MaguId id, uint256 amount) private {
        if (amount == 0) return;
        _totalHeld -= amount;
        emit FormationDepositForfeited(id, amount);
        _token.safeTransfer(_bountySink, amount);
    }

    /// @dev Periods a member needs to fetch its share of `fragments` new fragments.
    function _fetchPeriods(Magu storage m, uint256 fragments) private view returns (uint64) {
        MaguParams storage p = m.params;
        uint256 copies = p.kind == Kind.Vector ? fragments * p.replication : fragments;
        uint256 share = (copies + p.members - 1) / p.members;
        return uint64((share + _fetchFragmentsPerPeriod - 1) / _fetchFragmentsPerPeriod);
    }

    /// @dev Checks that the committed fragments stay: `extension` is the fragment root at index
    /// `current - 1` and its siblings in the new tree. Folding it gives the new root; folding it
    /// with the empty subtrees in place of every right sibling (positions past `current`) within
    /// the old depth must give the old root, so the first `current` leaves are the same.
    function _checkAppend(
        MaguId id,
        bytes32 oldRoot,
        uint32 current,
        bytes32 newRoot,
        uint32 fragmentCount,
        bytes32[] calldata extension
    ) private view {
        if (current == 0) {
            if (extension.length != 0) revert MaguNotAppendOnly(id);
            return;
        }
        uint256 depth = MerkleLib.depthFor(fragmentCount);
        if (extension.length != depth + 1) revert MaguNotAppendOnly(id);
        uint256 oldDepth = MerkleLib.depthFor(current);
        uint256 index = current - 1;
        bytes32 node = extension[0];
        bytes32 oldNode = node;
        bytes32 empty;
        for (uint256 level; level < depth; ++level) {
            bytes32 sibling = extension[level + 1];
            if (index & 1 == 1) {
                node = MerkleLib.hashNode(sibling, node);
                if (level < oldDepth) oldNode = MerkleLib.hashNode(sibling, oldNode);
            } else {
                node = MerkleLib.hashNode(node, sibling);
                if (level < oldDepth) oldNode = MerkleLib.hashNode(oldNode, empty);
            }
            empty = MerkleLib.hashNode(empty, empty);
            index >>= 1;
        }
        if (node != newRoot || oldNode != oldRoot) revert MaguNotAppendOnly(id);
    }

    /// @dev Checks each slot's acknowledgement; returns the bitmap of slots that acknowledged.
    /// Available needs all but `parityShards` members (blob: each stripe then keeps at least k
    /// acknowledged holders, whatever placement) or all but `replication - 1` (vector: each
    /// fragment keeps at least one).
    function _checkAcks(MaguId id, Magu storage m, uint32 batch, bytes32 root, uint32 count, bytes[] calldata acks)
        private
        view
        returns (uint256 ackers)
    {
        MaguParams storage p = m.params;
        if (acks.length != p.members) revert MaguInvalidParams("acks", acks.length);
        address[] storage slots = _slots[id];
        uint256 acknowledged;
        for (uint256 i; i < acks.length; ++i) {
            if (acks[i].length == 0) continue;
            address member = slots[i];
            (address signer, ECDSA.RecoverError err,) =
                ECDSA.tryRecover(ackDigest(id, batch, root, count, member), acks[i]);
            if (member == address(0) || err != ECDSA.RecoverError.NoError || signer != member) {
                revert MaguInvalidAck(id, i);
            }
            ackers |= 1 << i;
            ++acknowledged;
        }
        uint256 tolerated = p.kind == Kind.Blob ? p.parityShards : p.replication - 1;
        uint256 needed = p.members - tolerated;
        if (acknowledged < needed) revert MaguNotAvailable(id, acknowledged, needed);
    }

    /// @dev Ends a formation: the Magu is active, the deposit goes back to the owner (it only pays
    /// for re-rolls) and the slots no part of the formation filled are vacancies from this block.
    function _activate(MaguId id, Magu storage m) private {
        _claimable[m.owner] += m.deposit;
        m.deposit = 0;
        m.status = Status.Active;
        address[] storage slots = _slots[id];
        for (uint256 slot = slots.length; slot < m.params.members; ++slot) {
            slots.push(address(0));
            _vacancies[id][slot].requestBlock = uint64(block.number);
        }
        emit MaguFormed(id, slots, m.startPeriod, m.endPeriod);
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
    /// the repair bounty from its stake (from the owner when the owner fired it).
    function _vacate(MaguId id, Magu storage m, address member, bool evicted, bool fired) private {
        Membership storage ms = _memberships[id][member];
        if (!ms.active) revert MaguNotMember(id, member);
        uint8 slot = ms.slot;
        uint256 paid = _payOut(id, m, member);
        // Eviction ends accountability: the member already paid for maxMisses misses and forfeits
        // the bounty; one that leaves answers for the period it left in (it cannot dodge a miss).
        if (evicted) ms.leftAfter = 0;
        _nodes.unlock(member, _stakePerMember, m.capacityPerMember);
        _slots[id][slot] = address(0);
        _former[id].push(member);

        Vacancy storage v = _vacancies[id][slot];
        v.requestBlock = uint64(block.number);
        v.rewardable = address(0);
        if (_repairBounty > 0 && fired) {
            v.bounty += _repairBounty;
            _totalHeld += _repairBounty;
            _token.safeTransferFrom(m.owner, address(this), _repairBounty);
        } else if (_repairBounty > 0) {
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
