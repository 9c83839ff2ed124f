// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {SafeCast} from "@openzeppelin/contracts/utils/math/SafeCast.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";

/// @title NodeRegistry
/// @notice Holds every node's and validator's stake. A node registers with a stake of at least
/// `minStake`, its libp2p peer id, multiaddrs and capacity. Unstaking goes through an unbonding
/// period. Magu memberships lock stake and capacity (MODULE_ROLE); locked stake cannot be
/// unstaked. Slashing is only for SLASHER_ROLE holders (ChallengeManager, MaguRegistry).
/// Selection draws nodes stake-weighted from a Fenwick (binary indexed) tree over node slots, so a
/// draw costs O(log maxNodes) whatever the number of nodes. A stake change reaches the tree only two
/// selection epochs (of `selectionEpochBlocks`) after the epoch it was made in: a draw made in the
/// epoch after its request (MaguRegistry's window) sees only changes made before the request, when
/// the seed - the hash of the block after the request - was unknown, so nobody can steer a draw by
/// changing stake once the seed is out. A node that has withdrawn everything leaves the registry and
/// its slot is reused, so `maxNodes` caps the nodes registered at once, not the registrations ever.
/// Reputation (proofs +1, misses and silences minus, kept within ±REPUTATION_BOUND and fading by one
/// point toward 0 every `reputationDecayBlocks`) scales a node's selection weight: x5/4 from
/// REPUTATION_RELIABLE, x1/2 below 0, and 0 - never drafted - at REPUTATION_EXCLUDED or below.
/// A weight follows reputation like a stake change, through the queue: only a change of tier
/// queues one, and fading reaches the tree when anyone calls `refreshReputation`.
/// @dev Invariant: token.balanceOf(this) >= totalHeld() = Σ (stake + unbonding) over all nodes,
/// with equality unless someone sent tokens here directly. `locked` is what a node's memberships
/// need; a slash does not lower it, so after a slash locked may exceed stake and the free stake,
/// max(0, stake - locked), is what can be unstaked or locked again. A node stays eligible for new
/// memberships only while minStake of its stake remains unlocked.
contract NodeRegistry is INodeRegistry, AccessControl, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Role of contracts that lock stake and capacity for memberships.
    bytes32 public constant MODULE_ROLE = keccak256("MODULE_ROLE");
    /// @notice Role of contracts that may slash.
    bytes32 public constant SLASHER_ROLE = keccak256("SLASHER_ROLE");
    /// @notice Role of contracts that may change reputation.
    bytes32 public constant REPUTATION_ROLE = keccak256("REPUTATION_ROLE");

    uint8 private constant _ROLE_NODE = 1;
    uint8 private constant _ROLE_VALIDATOR = 2;
    uint256 private constant _MAX_PEER_ID = 128;
    uint256 private constant _MAX_MULTIADDRS = 8;
    /// @dev A draw's window (two selection epochs) must end before its seed's block hash is gone.
    uint256 private constant _MAX_SELECTION_EPOCH = 128;

    /// @notice Reputation stays within ±REPUTATION_BOUND: old merit cannot pay for unlimited misses.
    int64 public constant REPUTATION_BOUND = 100;
    /// @notice From this reputation on a node weighs 5/4 of its stake in selection.
    int64 public constant REPUTATION_RELIABLE = 50;
    /// @notice At or below this reputation a node weighs nothing in selection (never drafted).
    int64 public constant REPUTATION_EXCLUDED = -50;

    struct Node {
        bool registered;
        uint8 roles;
        uint32 slot; // 1-based position in the selection tree
        uint64 capacity;
        uint64 usedCapacity;
        int16 reputation; // within ±REPUTATION_BOUND
        uint48 reputationBlock; // block `reputation` was last written in (fading counts from it)
        uint64 unbondingReleaseBlock;
        uint256 stake;
        uint256 locked;
        uint256 unbonding;
        bytes peerId;
        string[] multiaddrs;
    }

    /// @dev A node slot's selection weight: what the tree holds, what it will hold once the queued
    /// changes are applied, and how many of them are queued.
    struct SlotWeight {
        uint128 effective;
        uint128 queued;
        uint32 pending;
    }

    /// @dev A queued weight change: `slot` gets `weight` from selection epoch `epoch + 2`.
    struct WeightChange {
        uint32 slot;
        uint64 epoch;
        uint128 weight;
    }

    /// @dev Changes applied by each stake-changing call, so the queue drains with ordinary use.
    uint256 private constant _APPLY_PER_CALL = 2;
    /// @dev Changes a draw applies before it gives up (the caller then runs applyWeightChanges).
    uint256 private constant _APPLY_PER_DRAW = 64;
    /// @dev Ineligible nodes a draw skips before it stops with what it found.
    uint256 private constant _MAX_REJECTS = 32;

    IERC20 private immutable _token;
    uint256 private immutable _minStake;
    uint64 private immutable _unbondingBlocks;
    uint32 private immutable _maxNodes;
    uint64 private immutable _selectionEpochBlocks;
    uint64 private immutable _reputationDecayBlocks;
    uint256 private immutable _treeSize; // maxNodes rounded up to a power of two

    mapping(address node => Node) private _nodes;
    mapping(uint256 slot => address node) private _slotNode;
    mapping(uint256 slot => SlotWeight) private _slotWeight;
    mapping(uint256 index => uint256 sum) private _tree;
    mapping(uint256 index => WeightChange) private _changes;
    uint32[] private _freeSlots;
    uint32 private _slotsUsed;
    uint32 private _registeredCount;
    uint64 private _changeHead;
    uint64 private _changeTail;
    uint256 private _totalWeight;
    uint256 private _totalHeld;

    /// @param cfg deployment parameters
    /// @param admin receives DEFAULT_ADMIN_ROLE (grants module roles at deployment)
    constructor(Config memory cfg, address admin) {
        if (cfg.minStake == 0) revert RegistryZeroAmount();
        if (cfg.maxNodes == 0) revert RegistryInvalidConfig("maxNodes", 0);
        if (cfg.selectionEpochBlocks < 2 || cfg.selectionEpochBlocks > _MAX_SELECTION_EPOCH) {
            revert RegistryInvalidConfig("selectionEpochBlocks", cfg.selectionEpochBlocks);
        }
        _token = IERC20(cfg.token);
        _minStake = cfg.minStake;
        _unbondingBlocks = cfg.unbondingBlocks;
        _maxNodes = cfg.maxNodes;
        _selectionEpochBlocks = cfg.selectionEpochBlocks;
        _reputationDecayBlocks = cfg.reputationDecayBlocks;
        uint256 size = 1;
        while (size < cfg.maxNodes) size <<= 1;
        _treeSize = size;
        _grantRole(DEFAULT_ADMIN_ROLE, admin);
    }

    /// @inheritdoc INodeRegistry
    function ROLE_NODE() external pure returns (uint8) {
        return _ROLE_NODE;
    }

    /// @inheritdoc INodeRegistry
    function ROLE_VALIDATOR() external pure returns (uint8) {
        return _ROLE_VALIDATOR;
    }

    /// @inheritdoc INodeRegistry
    function register(uint256 stake, uint8 roles, uint64 capacity, bytes calldata peerId, string[] calldata multiaddrs)
        external
        nonReentrant
    {
        Node storage n = _nodes[msg.sender];
        if (n.registered) revert RegistryAlreadyRegistered(msg.sender);
        if (stake == 0) revert RegistryZeroAmount();
        if (stake < _minStake) revert RegistryInsufficientStake(msg.sender, stake, _minStake);
        if (roles == 0 || roles & ~(_ROLE_NODE | _ROLE_VALIDATOR) != 0) revert RegistryInvalidRoles(roles);
        if (_registeredCount >= _maxNodes) revert RegistryFull(_maxNodes);
        _checkRecord(peerId, multiaddrs);
        _applyDue(_APPLY_PER_CALL);

        uint32 slot;
        if (_freeSlots.length > 0) {
            slot = _freeSlots[_freeSlots.length - 1];
            _freeSlots.pop();
        } else {
            slot = ++_slotsUsed;
        }
        n.registered = true;
        n.roles = roles;
        n.slot = slot;
        n.capacity = capacity;
        n.stake = stake;
        n.peerId = peerId;
        n.multiaddrs = multiaddrs;
        _slotNode[slot] = msg.sender;
        ++_registeredCount;
        _totalHeld += stake;
        _queueWeight(n);
        emit NodeRegistered(msg.sender, stake, roles, capacity, peerId);

        _token.safeTransferFrom(msg.sender, address(this), stake);
    }

    /// @inheritdoc INodeRegistry
    function updateNode(uint64 capacity, bytes calldata peerId, string[] calldata multiaddrs) external {
        Node storage n = _registered(msg.sender);
        if (capacity < n.usedCapacity) revert RegistryCapacityInUse(msg.sender, capacity, n.usedCapacity);
        _checkRecord(peerId, multiaddrs);
        n.capacity = capacity;
        n.peerId = peerId;
        n.multiaddrs = multiaddrs;
        emit NodeUpdated(msg.sender, peerId, capacity);
    }

    /// @inheritdoc INodeRegistry
    function addStake(uint256 amount) external nonReentrant {
        if (amount == 0) revert RegistryZeroAmount();
        Node storage n = _registered(msg.sender);
        n.stake += amount;
        _totalHeld += amount;
        _applyDue(_APPLY_PER_CALL);
        _queueWeight(n);
        emit StakeAdded(msg.sender, amount, n.stake);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc INodeRegistry
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert RegistryZeroAmount();
        Node storage n = _registered(msg.sender);
        // A node with memberships keeps minStake beside what they lock, as it had when drawn: a miss
        // is slashed from that stake, so unstaking down to the lock would shrink every later slash.
        uint256 keep = n.locked > 0 ? n.locked + _minStake : 0;
        uint256 free = n.stake > keep ? n.stake - keep : 0;
        if (amount > free) revert RegistryStakeLocked(msg.sender, amount, free);
        n.stake -= amount;
        n.unbonding += amount;
        uint64 release = uint64(block.number) + _unbondingBlocks;
        n.unbondingReleaseBlock = release;
        _applyDue(_APPLY_PER_CALL);
        _queueWeight(n);
        emit UnstakeRequested(msg.sender, amount, release);
    }

    /// @inheritdoc INodeRegistry
    function withdraw() external nonReentrant {
        Node storage n = _registered(msg.sender);
        uint256 amount = n.unbonding;
        if (amount == 0 || block.number < n.unbondingReleaseBlock) {
            revert RegistryNothingToWithdraw(msg.sender, amount, n.unbondingReleaseBlock);
        }
        n.unbonding = 0;
        _totalHeld -= amount;
        emit Withdrawn(msg.sender, amount);
        _applyDue(_APPLY_PER_CALL);
        // A node with nothing left leaves the registry; its slot is reused once the tree has
        // caught up with its last weight change.
        if (n.stake == 0 && n.locked == 0 && n.usedCapacity == 0) _deregister(msg.sender, n);
        _token.safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc INodeRegistry
    function lock(address node, uint256 amount, uint64 capacity) external onlyRole(MODULE_ROLE) {
        Node storage n = _registered(node);
        if (_free(n) < amount || n.capacity < n.usedCapacity + capacity) {
            revert RegistryCannotLock(node, amount, capacity);
        }
        n.locked += amount;
        n.usedCapacity += capacity;
        emit StakeLockChanged(node, n.locked, n.usedCapacity);
    }

    /// @inheritdoc INodeRegistry
    function unlock(address node, uint256 amount, uint64 capacity) external onlyRole(MODULE_ROLE) {
        Node storage n = _registered(node);
        n.locked = n.locked > amount ? n.locked - amount : 0;
        n.usedCapacity = n.usedCapacity > capacity ? n.usedCapacity - capacity : 0;
        emit StakeLockChanged(node, n.locked, n.usedCapacity);
    }

    /// @inheritdoc INodeRegistry
    function slash(address node, uint256 amount, address[] calldata recipients, uint256[] calldata amounts)
        external
        onlyRole(SLASHER_ROLE)
        nonReentrant
        returns (uint256 slashed)
    {
        if (amount == 0) revert RegistryZeroAmount();
        Node storage n = _registered(node);
        uint256 fromStake = amount < n.stake ? amount : n.stake;
        // `locked` is left as the memberships need it: capping it here would let a later unlock of
        // one membership free stake that still backs another.
        n.stake -= fromStake;
        uint256 rest = amount - fromStake;
        uint256 fromUnbonding = rest < n.unbonding ? rest : n.unbonding;
        n.unbonding -= fromUnbonding;
        slashed = fromStake + fromUnbonding;
        _totalHeld -= slashed;
        if (fromStake > 0) _queueWeight(n);
        emit Slashed(node, msg.sender, slashed);

        uint256 left = slashed;
        for (uint256 i; i < recipients.length && left > 0; ++i) {
            uint256 pay = amounts[i] < left ? amounts[i] : left;
            left -= pay;
            if (pay > 0) _token.safeTransfer(recipients[i], pay);
        }
        // Whatever the split did not name goes to the last recipient, so nothing stays unaccounted.
        if (left > 0) _token.safeTransfer(recipients[recipients.length - 1], left);
    }

    /// @inheritdoc INodeRegistry
    function adjustReputation(address node, int64 delta) external onlyRole(REPUTATION_ROLE) {
        Node storage n = _registered(node);
        int256 r = int256(_reputationOf(n)) + delta;
        if (r > REPUTATION_BOUND) r = REPUTATION_BOUND;
        else if (r < -REPUTATION_BOUND) r = -REPUTATION_BOUND;
        n.reputation = int16(r);
        n.reputationBlock = uint48(block.number);
        _queueWeight(n);
        emit ReputationChanged(node, delta, int64(r));
    }

    /// @inheritdoc INodeRegistry
    function refreshReputation(address node) external {
        Node storage n = _registered(node);
        n.reputation = int16(_reputationOf(n));
        n.reputationBlock = uint48(block.number);
        _applyDue(_APPLY_PER_CALL);
        _queueWeight(n);
    }

    /// @inheritdoc INodeRegistry
    function reputationOf(address node) external view returns (int64) {
        Node storage n = _nodes[node];
        return n.registered ? _reputationOf(n) : int64(0);
    }

    /// @inheritdoc INodeRegistry
    function drawNodes(uint256 seed, uint256 count, uint256 lockAmount, uint64 capacity, address[] calldata exclude)
        external
        returns (address[] memory selected)
    {
        if (!_applyDue(_APPLY_PER_DRAW)) revert RegistryWeightsBehind(_dueChanges());
        selected = new address[](count);
        // Drawn slots leave the draw (without replacement): the tree is read through this list
        // instead of being written, so a draw writes nothing.
        uint256[] memory gone = new uint256[](count + _MAX_REJECTS);
        uint256[] memory goneWeight = new uint256[](count + _MAX_REJECTS);
        uint256 goneCount;
        uint256 total = _totalWeight;
        uint256 found;
        uint256 rejects;
        for (uint256 nonce; found < count && total > 0 && rejects <= _MAX_REJECTS; ++nonce) {
            uint256 slot = _find(uint256(keccak256(abi.encode(seed, nonce))) % total, gone, goneWeight, goneCount);
            uint256 w = _slotWeight[slot].effective;
            gone[goneCount] = slot;
            goneWeight[goneCount] = w;
            ++goneCount;
            total -= w;
            address a = _slotNode[slot];
            if (_eligible(a, lockAmount, capacity, exclude)) selected[found++] = a;
            else ++rejects;
        }
        assembly ("memory-safe") {
            mstore(selected, found)
        }
    }

    /// @inheritdoc INodeRegistry
    function applyWeightChanges(uint256 max) external returns (uint256 due) {
        _applyDue(max);
        return _dueChanges();
    }

    /// @inheritdoc INodeRegistry
    function selectionEpoch(uint256 blockNumber) public view returns (uint64) {
        return uint64(blockNumber / _selectionEpochBlocks);
    }

    /// @inheritdoc INodeRegistry
    function selectionWeight(address node) external view returns (uint256 effective, uint256 queued) {
        Node storage n = _nodes[node];
        if (!n.registered) return (0, 0);
        SlotWeight storage sw = _slotWeight[n.slot];
        return (sw.effective, sw.queued);
    }

    /// @inheritdoc INodeRegistry
    function totalSelectionWeight() external view returns (uint256) {
        return _totalWeight;
    }

    /// @inheritdoc INodeRegistry
    function pendingWeightChanges() external view returns (uint256 queued, uint256 due, uint64 settledFrom) {
        queued = _changeTail - _changeHead;
        if (queued > 0) settledFrom = (_changes[_changeTail - 1].epoch + 2) * _selectionEpochBlocks;
        return (queued, _dueChanges(), settledFrom);
    }

    /// @inheritdoc INodeRegistry
    function nodeInfo(address node) external view returns (NodeInfo memory info) {
        Node storage n = _nodes[node];
        info = NodeInfo({
            registered: n.registered,
            roles: n.roles,
            capacity: n.capacity,
            usedCapacity: n.usedCapacity,
            reputation: n.registered ? _reputationOf(n) : int64(0),
            stake: n.stake,
            locked: n.locked,
            unbonding: n.unbonding,
            unbondingReleaseBlock: n.unbondingReleaseBlock,
            peerId: n.peerId,
            multiaddrs: n.multiaddrs
        });
    }

    /// @inheritdoc INodeRegistry
    function stakeOf(address node) external view returns (uint256) {
        return _nodes[node].stake;
    }

    /// @inheritdoc INodeRegistry
    function isActive(address node, uint8 role) external view returns (bool) {
        Node storage n = _nodes[node];
        return n.registered && n.roles & role != 0 && n.stake >= _minStake;
    }

    /// @inheritdoc INodeRegistry
    function isBacked(address node) external view returns (bool) {
        Node storage n = _nodes[node];
        return n.registered && n.roles & _ROLE_NODE != 0 && n.stake >= _minStake && n.stake >= n.locked;
    }

    /// @inheritdoc INodeRegistry
    function nodeCount() external view returns (uint256) {
        return _slotsUsed;
    }

    /// @inheritdoc INodeRegistry
    function registeredCount() external view returns (uint256) {
        return _registeredCount;
    }

    /// @inheritdoc INodeRegistry
    function nodeAt(uint256 index) external view returns (address) {
        if (index >= _slotsUsed) revert RegistryNoSuchSlot(index, _slotsUsed);
        return _slotNode[index + 1];
    }

    /// @inheritdoc INodeRegistry
    function totalHeld() external view returns (uint256) {
        return _totalHeld;
    }

    /// @inheritdoc INodeRegistry
    function config() external view returns (Config memory) {
        return Config({
            token: address(_token),
            minStake: _minStake,
            unbondingBlocks: _unbondingBlocks,
            maxNodes: _maxNodes,
            selectionEpochBlocks: _selectionEpochBlocks,
            reputationDecayBlocks: _reputationDecayBlocks
        });
    }

    /// @dev What `n` weighs in selection: while it is a storage node with at least minStake, its
    /// stake scaled by its reputation's tier (see the contract's notice).
    function _weightOf(Node storage n) private view returns (uint128) {
        if (!n.registered || n.roles & _ROLE_NODE == 0 || n.stake < _minStake) return 0;
        int64 r = _reputationOf(n);
        if (r <= REPUTATION_EXCLUDED) return 0;
        uint256 w = n.stake;
        if (r < 0) w /= 2;
        else if (r >= REPUTATION_RELIABLE) w = w * 5 / 4;
        return SafeCast.toUint128(w);
    }

    /// @dev `n`'s reputation now: what was written, moved one point toward 0 per
    /// `reputationDecayBlocks` since.
    function _reputationOf(Node storage n) private view returns (int64) {
        int64 r = n.reputation;
        // (A block number below the written one only happens in tests that roll back.)
        if (_reputationDecayBlocks == 0 || r == 0 || block.number <= n.reputationBlock) return r;
        uint256 steps = (block.number - n.reputationBlock) / _reputationDecayBlocks;
        uint256 size = r > 0 ? uint256(int256(r)) : uint256(-int256(r));
        if (steps >= size) return 0;
        return r > 0 ? r - int64(int256(steps)) : r + int64(int256(steps));
    }

    /// @dev Queues `n`'s current weight for its slot, unless it is what is queued already.
    function _queueWeight(Node storage n) private {
        uint32 slot = n.slot;
        uint128 w = _weightOf(n);
        SlotWeight storage sw = _slotWeight[slot];
        if (sw.queued == w) return;
        sw.queued = w;
        ++sw.pending;
        _changes[_changeTail++] = WeightChange({slot: slot, epoch: selectionEpoch(block.number), weight: w});
    }

    /// @dev Applies at most `max` due changes, oldest first. Returns whether none is left due.
    function _applyDue(uint256 max) private returns (bool caughtUp) {
        uint64 head = _changeHead;
        uint64 tail = _changeTail;
        uint64 current = selectionEpoch(block.number);
        for (; head < tail; ++head) {
            WeightChange memory c = _changes[head];
            if (c.epoch + 2 > current) break;
            if (max == 0) {
                _changeHead = head;
                return false;
            }
            --max;
            SlotWeight storage sw = _slotWeight[c.slot];
            if (c.weight > sw.effective) _treeAdd(c.slot, c.weight - sw.effective);
            else if (c.weight < sw.effective) _treeSub(c.slot, sw.effective - c.weight);
            sw.effective = c.weight;
            if (--sw.pending == 0 && _slotNode[c.slot] == address(0)) _freeSlots.push(c.slot);
            delete _changes[head];
        }
        _changeHead = head;
        return true;
    }

    /// @dev Queued changes whose epoch has come but that are not in the tree yet (counted up to 256).
    function _dueChanges() private view returns (uint256 due) {
        uint64 current = selectionEpoch(block.number);
        uint64 end = _changeTail;
        if (end > _changeHead + 256) end = _changeHead + 256;
        for (uint64 i = _changeHead; i < end; ++i) {
            if (_changes[i].epoch + 2 > current) break;
            ++due;
        }
    }

    function _deregister(address node, Node storage n) private {
        uint32 slot = n.slot;
        _queueWeight(n); // normally queued as 0 already, when the last stake went to unbonding
        delete _nodes[node];
        _slotNode[slot] = address(0);
        --_registeredCount;
        SlotWeight storage sw = _slotWeight[slot];
        if (sw.pending == 0 && sw.effective == 0) _freeSlots.push(slot);
        emit NodeDeregistered(node);
    }

    function _treeAdd(uint256 i, uint256 delta) private {
        uint256 size = _treeSize;
        for (; i <= size; i += i & (~i + 1)) {
            _tree[i] += delta;
        }
        _totalWeight += delta;
    }

    function _treeSub(uint256 i, uint256 delta) private {
        uint256 size = _treeSize;
        for (; i <= size; i += i & (~i + 1)) {
            _tree[i] -= delta;
        }
        _totalWeight -= delta;
    }

    /// @dev The slot whose weight interval holds `r`, with the `count` slots in `gone` taken out.
    function _find(uint256 r, uint256[] memory gone, uint256[] memory goneWeight, uint256 count)
        private
        view
        returns (uint256)
    {
        uint256 pos;
        for (uint256 step = _treeSize; step > 0; step >>= 1) {
            uint256 next = pos + step;
            uint256 sum = _tree[next];
            for (uint256 j; j < count; ++j) {
                if (gone[j] > pos && gone[j] <= next) sum -= goneWeight[j];
            }
            if (sum <= r) {
                pos = next;
                r -= sum;
            }
        }
        return pos + 1;
    }

    function _eligible(address a, uint256 lockAmount, uint64 capacity, address[] calldata exclude)
        private
        view
        returns (bool)
    {
        if (a == address(0)) return false;
        Node storage n = _nodes[a];
        if (n.roles & _ROLE_NODE == 0) return false;
        if (_free(n) < _minStake + lockAmount || n.capacity - n.usedCapacity < capacity) return false;
        return !_contains(exclude, a);
    }

    function _free(Node storage n) private view returns (uint256) {
        return n.stake > n.locked ? n.stake - n.locked : 0;
    }

    function _registered(address node) private view returns (Node storage n) {
        n = _nodes[node];
        if (!n.registered) revert RegistryNotRegistered(node);
    }

    function _checkRecord(bytes calldata peerId, string[] calldata multiaddrs) private pure {
        if (peerId.length == 0 || peerId.length > _MAX_PEER_ID) revert RegistryInvalidPeerId(peerId.length);
        if (multiaddrs.length > _MAX_MULTIADDRS) revert RegistryTooManyMultiaddrs(multiaddrs.length, _MAX_MULTIADDRS);
    }

    function _contains(address[] calldata list, address a) private pure returns (bool) {
        for (uint256 i; i < list.length; ++i) {
            if (list[i] == a) return true;
        }
        return false;
    }
}
