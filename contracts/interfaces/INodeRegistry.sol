// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title INodeRegistry
/// @notice Staking and registration of nodes and validators, stake locks for Magu memberships,
/// slashing by authorised modules, and reputation.
interface INodeRegistry {
    /// @notice Parameters fixed at deployment.
    /// @param token the MURI token staked here
    /// @param minStake least stake a node must hold to register and to be selected
    /// @param unbondingBlocks blocks between an unstake request and the withdrawal
    /// @param maxNodes cap on nodes registered at once (the selection tree's size)
    /// @param selectionEpochBlocks length of a selection epoch: a stake change weighs in draws from
    /// the start of the second epoch after the one it was made in (2 to 128 blocks)
    /// @param reputationDecayBlocks blocks per point a reputation fades toward 0 (0: it never fades)
    struct Config {
        address token;
        uint256 minStake;
        uint64 unbondingBlocks;
        uint32 maxNodes;
        uint64 selectionEpochBlocks;
        uint64 reputationDecayBlocks;
    }

    /// @notice A node's public record.
    struct NodeInfo {
        bool registered;
        uint8 roles;
        uint64 capacity;
        uint64 usedCapacity;
        int64 reputation;
        uint256 stake;
        uint256 locked;
        uint256 unbonding;
        uint64 unbondingReleaseBlock;
        bytes peerId;
        string[] multiaddrs;
    }

    /// @notice Role bit of a storage/search node.
    function ROLE_NODE() external pure returns (uint8);
    /// @notice Role bit of a validator.
    function ROLE_VALIDATOR() external pure returns (uint8);

    /// @notice A node registered with its stake.
    event NodeRegistered(address indexed node, uint256 stake, uint8 roles, uint64 capacity, bytes peerId);
    /// @notice A node's network record (peer id, multiaddrs, capacity) changed.
    event NodeUpdated(address indexed node, bytes peerId, uint64 capacity);
    /// @notice Stake was added.
    event StakeAdded(address indexed node, uint256 amount, uint256 stake);
    /// @notice Stake moved into unbonding; withdrawable from `releaseBlock`.
    event UnstakeRequested(address indexed node, uint256 amount, uint64 releaseBlock);
    /// @notice Unbonded stake was paid out.
    event Withdrawn(address indexed node, uint256 amount);
    /// @notice Stake was locked or unlocked to back Magu memberships; `locked` is the new total.
    event StakeLockChanged(address indexed node, uint256 locked, uint64 usedCapacity);
    /// @notice A module slashed `amount` from a node.
    event Slashed(address indexed node, address indexed by, uint256 amount);
    /// @notice A node that withdrew everything left the registry; its slot will be reused.
    event NodeDeregistered(address indexed node);
    /// @notice A module changed a node's reputation.
    event ReputationChanged(address indexed node, int64 delta, int64 reputation);

    /// @notice A zero amount was given where a positive one is required.
    error RegistryZeroAmount();
    /// @notice The stake is below the minimum.
    error RegistryInsufficientStake(address node, uint256 stake, uint256 required);
    /// @notice The address is already registered.
    error RegistryAlreadyRegistered(address node);
    /// @notice The address is not registered.
    error RegistryNotRegistered(address node);
    /// @notice Roles must be a non-empty subset of ROLE_NODE | ROLE_VALIDATOR.
    error RegistryInvalidRoles(uint8 roles);
    /// @notice The peer id is empty or too long.
    error RegistryInvalidPeerId(uint256 length);
    /// @notice More multiaddrs than a record may hold.
    error RegistryTooManyMultiaddrs(uint256 count, uint256 max);
    /// @notice The registry is full.
    error RegistryFull(uint256 maxNodes);
    /// @notice A deployment parameter is out of range.
    error RegistryInvalidConfig(string name, uint256 value);
    /// @notice More stake changes are due than a draw applies: call applyWeightChanges first.
    error RegistryWeightsBehind(uint256 due);
    /// @notice `index` is not below nodeCount().
    error RegistryNoSuchSlot(uint256 index, uint256 count);
    /// @notice The stake asked for is locked by Magu memberships.
    error RegistryStakeLocked(address node, uint256 requested, uint256 free);
    /// @notice Nothing is unbonding, or it is not released yet.
    error RegistryNothingToWithdraw(address node, uint256 unbonding, uint64 releaseBlock);
    /// @notice The new capacity is below what memberships already use.
    error RegistryCapacityInUse(address node, uint64 capacity, uint64 used);
    /// @notice A lock or capacity reservation exceeds what the node has free.
    error RegistryCannotLock(address node, uint256 amount, uint64 capacity);

    /// @notice Stakes `stake` MURI (approved beforehand) and registers the caller.
    /// @param stake amount pulled with transferFrom; at least minStake
    /// @param roles bitmask of ROLE_NODE and ROLE_VALIDATOR
    /// @param capacity bytes of storage offered (nodes)
    /// @param peerId the libp2p peer id bytes (multihash)
    /// @param multiaddrs addresses where the node listens
    function register(uint256 stake, uint8 roles, uint64 capacity, bytes calldata peerId, string[] calldata multiaddrs)
        external;

    /// @notice Replaces the caller's network record and capacity.
    function updateNode(uint64 capacity, bytes calldata peerId, string[] calldata multiaddrs) external;

    /// @notice Adds `amount` to the caller's stake.
    function addStake(uint256 amount) external;

    /// @notice Moves `amount` of free stake into unbonding (restarting the unbonding clock). A node
    /// with locked stake keeps minStake beside the lock.
    function requestUnstake(uint256 amount) external;

    /// @notice Pays out the caller's unbonded stake once released.
    function withdraw() external;

    /// @notice Locks `amount` stake and `capacity` bytes of `node` for a membership. Modules only.
    function lock(address node, uint256 amount, uint64 capacity) external;

    /// @notice Releases a lock taken with `lock`. Modules only.
    function unlock(address node, uint256 amount, uint64 capacity) external;

    /// @notice Takes up to `amount` from `node`'s stake (then unbonding) and pays `recipients`.
    /// Slashers only. Amounts beyond what the node holds are cut from the last recipients first.
    /// @return slashed the amount actually taken
    function slash(address node, uint256 amount, address[] calldata recipients, uint256[] calldata amounts)
        external
        returns (uint256 slashed);

    /// @notice Adds `delta` to `node`'s reputation (its faded value, kept within
    /// ±REPUTATION_BOUND) and queues the selection weight if its tier changed. Reputation modules only.
    function adjustReputation(address node, int64 delta) external;

    /// @notice Writes `node`'s faded reputation and queues its selection weight if the tier changed.
    /// Anyone may call it: a node whose penalty faded, or anyone against a bonus that faded.
    function refreshReputation(address node) external;

    /// @notice `node`'s reputation now (faded; 0 when not registered).
    function reputationOf(address node) external view returns (int64);

    /// @notice Draws up to `count` distinct nodes, stake-weighted, among nodes with ROLE_NODE, at
    /// least minStake + `lockAmount` free stake and `capacity` free bytes, none in `exclude`. Weights
    /// are those of the tree: stake changes reach it two selection epochs after their own. Applies
    /// the due changes first (reverts with RegistryWeightsBehind when too many are due), then
    /// writes nothing. Ineligible nodes drawn are skipped, up to 32 of them.
    /// @param seed randomness (from a block after the request)
    function drawNodes(uint256 seed, uint256 count, uint256 lockAmount, uint64 capacity, address[] calldata exclude)
        external
        returns (address[] memory selected);

    /// @notice Applies up to `max` due stake changes to the selection tree; returns how many are
    /// still due. Anyone may call it.
    function applyWeightChanges(uint256 max) external returns (uint256 due);

    /// @notice The selection epoch of `blockNumber`.
    function selectionEpoch(uint256 blockNumber) external view returns (uint64);
    /// @notice `node`'s weight in the tree now, and once its queued changes are applied.
    function selectionWeight(address node) external view returns (uint256 effective, uint256 queued);
    /// @notice Sum of the weights in the tree.
    function totalSelectionWeight() external view returns (uint256);
    /// @notice Stake changes queued for the tree, how many of them are due, and the first block
    /// at which all of them are (0 when none is queued). A Magu requested in the selection epoch
    /// before `settledFrom`'s, or later, is drawn with all of them.
    function pendingWeightChanges() external view returns (uint256 queued, uint256 due, uint64 settledFrom);

    /// @notice The record of `node`.
    function nodeInfo(address node) external view returns (NodeInfo memory);
    /// @notice Stake of `node` (excluding unbonding).
    function stakeOf(address node) external view returns (uint256);
    /// @notice Whether `node` is registered with `role` set and at least minStake.
    function isActive(address node, uint8 role) external view returns (bool);
    /// @notice Whether `node` may keep serving its memberships: an active storage node whose stake
    /// still covers what they lock (slashes lower the stake, never the lock).
    function isBacked(address node) external view returns (bool);
    /// @notice Number of node slots ever used; `nodeAt` of each is the node in it, or address(0).
    function nodeCount() external view returns (uint256);
    /// @notice Number of nodes registered now.
    function registeredCount() external view returns (uint256);
    /// @notice The node in slot `index + 1`, or address(0) when the slot is free.
    function nodeAt(uint256 index) external view returns (address);
    /// @notice Sum of all stakes and unbonding amounts held.
    function totalHeld() external view returns (uint256);
    /// @notice The configuration.
    function config() external view returns (Config memory);
}
