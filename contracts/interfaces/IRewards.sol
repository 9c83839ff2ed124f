// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title IRewards
/// @notice Epoch emissions split by validator consensus. During an epoch each validator submits
/// weights over nodes (normalised to 1e18), never over itself. Once the epoch is over anyone
/// finalises it: every weight is clipped to the stake-weighted median of all counted validators'
/// weights for that node (the idea of Bittensor's Yuma consensus), the emission (plus slashed stake
/// received) is minted and split: (1 - validatorShare) to nodes by clipped, stake-weighted weight,
/// validatorShare to validators by stake × the fraction of their weight that survived clipping.
/// A node's share of the node pool is scaled by its reputation (NodeRegistry.reputationOf, faded,
/// read at finalisation) within ×3/4 .. ×5/4: two nodes with the same stake and work are paid in
/// the ratio (400 + r1) : (400 + r2). Claims are pulled.
///
/// Bounds and quorum:
/// - At most `maxValidatorsPerEpoch` validators are counted per epoch, each with at most
///   `maxWeights` entries, and their product is capped by the contract, so `finalizeEpoch` costs a
///   bounded amount of gas whatever is submitted. Once an epoch's list is full, a new submitter
///   with more stake than the smallest counted validator displaces it; anyone else is refused.
/// - An epoch is distributed only if the stake it counts reaches `quorum`: at least
///   `minQuorumStake`, and at least `quorumBps` of the largest stake counted in any of the
///   `quorumLookbackEpochs` epochs before it (as recorded when each was finalised). Otherwise
///   nothing is minted and the pool waits, so a lone submitter in an epoch the usual validators
///   skip captures nothing.
interface IRewards {
    /// @notice Parameters fixed at deployment.
    struct Config {
        address token;
        address nodeRegistry;
        uint64 genesisBlock; // block where epoch 0 starts (0: the deployment block)
        uint64 epochBlocks;
        uint256 emissionPerEpoch;
        uint16 validatorShareBps;
        uint16 maxWeights; // entries per submission
        uint16 maxValidatorsPerEpoch; // validators counted per epoch
        uint16 quorumBps; // share of the reference stake an epoch must count to be distributed
        uint16 quorumLookbackEpochs; // epochs before the finalised one whose counted stake is the reference
        uint256 minQuorumStake; // stake an epoch must count whatever the reference
    }

    /// @notice `validator` submitted `count` weights for `epoch`.
    event WeightsSubmitted(uint64 indexed epoch, address indexed validator, uint256 count, uint256 stake);
    /// @notice `validator` (recorded with `stake`) is no longer counted for `epoch`: `by` has more.
    event ValidatorDisplaced(uint64 indexed epoch, address indexed validator, address indexed by, uint256 stake);
    /// @notice `epoch` was finalised: `minted` new tokens, `distributed` credited in all.
    event EpochFinalized(uint64 indexed epoch, uint256 minted, uint256 distributed, uint256 validators, uint256 nodes);
    /// @notice `epoch` counted `stake`, below the `required` quorum: nothing minted or credited.
    event EpochQuorumMissed(uint64 indexed epoch, uint256 stake, uint256 required);
    /// @notice `account` was credited `amount` for `epoch`.
    event RewardCredited(uint64 indexed epoch, address indexed account, uint256 amount, bool validator);
    /// @notice `account` claimed `amount`.
    event RewardClaimed(address indexed account, uint256 amount);

    /// @notice The caller is not an active validator.
    error RewardsNotValidator(address account);
    /// @notice Weights can only be submitted for the current epoch.
    error RewardsWrongEpoch(uint64 epoch, uint64 current);
    /// @notice The epoch is not over yet.
    error RewardsEpochNotOver(uint64 epoch, uint64 current);
    /// @notice The epoch was already finalised.
    error RewardsAlreadyFinalized(uint64 epoch);
    /// @notice The weight lists are malformed (`index` is the offending entry).
    error RewardsInvalidWeights(bytes32 reason, uint256 index);
    /// @notice `validator` named itself at `index`: a validator may not weight itself.
    error RewardsSelfWeight(address validator, uint256 index);
    /// @notice `epoch` already counts the maximum of validators and `stake` does not exceed the
    /// `smallest` counted stake.
    error RewardsValidatorsFull(uint64 epoch, uint256 stake, uint256 smallest);
    /// @notice A configuration value is out of range.
    error RewardsInvalidConfig(bytes32 field, uint256 value);
    /// @notice Nothing to claim.
    error RewardsNothingToClaim(address account);

    /// @notice Submits (or replaces) the caller's weights for the current `epoch`.
    /// @param nodes strictly increasing addresses of active nodes, not the caller
    /// @param weights relative weights, not all zero
    function submitWeights(uint64 epoch, address[] calldata nodes, uint256[] calldata weights) external;

    /// @notice Finalises a past epoch: quorum, consensus, minting, crediting.
    function finalizeEpoch(uint64 epoch) external;

    /// @notice Pays out the caller's credited rewards.
    function claim() external;

    /// @notice The epoch the current block is in.
    function currentEpoch() external view returns (uint64);

    /// @notice Credited, unclaimed rewards of `account`.
    function claimable(address account) external view returns (uint256);

    /// @notice Σ unclaimed rewards.
    function totalClaimable() external view returns (uint256);

    /// @notice Tokens here not yet credited (slashes received, rounding dust); distributed next finalisation.
    function pool() external view returns (uint256);

    /// @notice Whether `epoch` is finalised.
    function isFinalized(uint64 epoch) external view returns (bool);

    /// @notice The normalised weights `validator` submitted for `epoch` (empty if it is not counted).
    function weightsOf(uint64 epoch, address validator)
        external
        view
        returns (address[] memory nodes, uint256[] memory weights);

    /// @notice The validators counted for `epoch` and the stake each had when it submitted.
    function validatorsOf(uint64 epoch) external view returns (address[] memory validators, uint256[] memory stakes);

    /// @notice The stake `epoch` counts now (Σ over its validators of the lower of the stake at
    /// submission and now) and the stake its distribution requires.
    function quorum(uint64 epoch) external view returns (uint256 stake, uint256 required);

    /// @notice The stake a finalised `epoch` counted (0 if not finalised or nobody submitted).
    function countedStake(uint64 epoch) external view returns (uint256);

    /// @notice The configuration.
    function config() external view returns (Config memory);
}
