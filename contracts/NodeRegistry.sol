// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AccessControl} from "@openzeppelin/contracts/access/AccessControl.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";

/// @title NodeRegistry
/// @notice Holds every node's and validator's stake. A node registers with a stake of at least
/// `minStake`, its libp2p peer id, multiaddrs and capacity. Unstaking goes through an unbonding
/// period. Magu memberships lock stake and capacity (MODULE_ROLE); locked stake cannot be
/// unstaked. Slashing is only for SLASHER_ROLE holders (ChallengeManager, MaguRegistry).
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

    struct Node {
        bool registered;
        uint8 roles;
        uint64 capacity;
        uint64 usedCapacity;
        int64 reputation;
        uint64 unbondingReleaseBlock;
        uint256 stake;
        uint256 locked;
        uint256 unbonding;
        bytes peerId;
        string[] multiaddrs;
    }

    IERC20 private immutable _token;
    uint256 private immutable _minStake;
    uint64 private immutable _unbondingBlocks;
    uint32 private immutable _maxNodes;

    mapping(address node => Node) private _nodes;
    address[] private _nodeList;
    uint256 private _totalHeld;

    /// @param cfg deployment parameters
    /// @param admin receives DEFAULT_ADMIN_ROLE (grants module roles at deployment)
    constructor(Config memory cfg, address admin) {
        if (cfg.minStake == 0) revert RegistryZeroAmount();
        _token = IERC20(cfg.token);
        _minStake = cfg.minStake;
        _unbondingBlocks = cfg.unbondingBlocks;
        _maxNodes = cfg.maxNodes;
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
        if (_nodeList.length >= _maxNodes) revert RegistryFull(_maxNodes);
        _checkRecord(peerId, multiaddrs);

        n.registered = true;
        n.roles = roles;
        n.capacity = capacity;
        n.stake = stake;
        n.peerId = peerId;
        n.multiaddrs = multiaddrs;
        _nodeList.push(msg.sender);
        _totalHeld += stake;
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
        emit StakeAdded(msg.sender, amount, n.stake);
        _token.safeTransferFrom(msg.sender, address(this), amount);
    }

    /// @inheritdoc INodeRegistry
    function requestUnstake(uint256 amount) external {
        if (amount == 0) revert RegistryZeroAmount();
        Node storage n = _registered(msg.sender);
        uint256 free = _free(n);
        if (amount > free) revert RegistryStakeLocked(msg.sender, amount, free);
        n.stake -= amount;
        n.unbonding += amount;
        uint64 release = uint64(block.number) + _unbondingBlocks;
        n.unbondingReleaseBlock = release;
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
        n.reputation += delta;
        emit ReputationChanged(node, delta, n.reputation);
    }

    /// @inheritdoc INodeRegistry
    function selectNodes(uint256 seed, uint256 count, uint256 lockAmount, uint64 capacity, address[] calldata exclude)
        external
        view
        returns (address[] memory selected)
    {
        uint256 total = _nodeList.length;
        address[] memory candidates = new address[](total);
        uint256[] memory weights = new uint256[](total);
        uint256 found;
        uint256 weightSum;
        for (uint256 i; i < total; ++i) {
            address a = _nodeList[i];
            Node storage n = _nodes[a];
            if (n.roles & _ROLE_NODE == 0) continue;
            if (_free(n) < _minStake + lockAmount || n.capacity - n.usedCapacity < capacity) continue;
            if (_contains(exclude, a)) continue;
            candidates[found] = a;
            weights[found] = n.stake;
            weightSum += n.stake;
            ++found;
        }
        uint256 picks = count < found ? count : found;
        selected = new address[](picks);
        for (uint256 k; k < picks; ++k) {
            uint256 r = uint256(keccak256(abi.encode(seed, k))) % weightSum;
            uint256 j;
            while (true) {
                if (r < weights[j]) break;
                r -= weights[j];
                ++j;
            }
            selected[k] = candidates[j];
            weightSum -= weights[j];
            weights[j] = 0; // drawn without replacement
        }
    }

    /// @inheritdoc INodeRegistry
    function nodeInfo(address node) external view returns (NodeInfo memory info) {
        Node storage n = _nodes[node];
        info = NodeInfo({
            registered: n.registered,
            roles: n.roles,
            capacity: n.capacity,
            usedCapacity: n.usedCapacity,
            reputation: n.reputation,
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
        return _nodeList.length;
    }

    /// @inheritdoc INodeRegistry
    function nodeAt(uint256 index) external view returns (address) {
        return _nodeList[index];
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
            maxNodes: _maxNodes
        });
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
