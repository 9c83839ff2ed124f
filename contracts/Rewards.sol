// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IMuriToken} from "./interfaces/IMuriToken.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {IRewards} from "./interfaces/IRewards.sol";

/// @title Rewards
/// @notice Mints each epoch's emission and credits it to nodes and validators by clipped
/// consensus weights (see IRewards). Slashed stake sent here joins the next distribution.
/// Reputation (issue 15.2): a node's consensus score is scaled by (REPUTATION_REWARD_SCALE + r) /
/// REPUTATION_REWARD_SCALE, r its reputation as NodeRegistry reports it at finalisation (faded
/// toward 0 by then) clamped to ±REPUTATION_REWARD_BOUND, so x3/4 at -100 and x5/4 at +100, the
/// band the selection weight uses. The node pool is still split in proportion to the scaled
/// scores: reputation moves money between nodes, never adds any.
/// @dev Invariant: token.balanceOf(this) = totalClaimable() + pool(). Only finalizeEpoch mints, once
/// per epoch and only when the epoch reaches its quorum; credits never exceed what it distributes,
/// so nothing is paid twice.
///
/// Cost bound: an epoch counts at most `maxValidatorsPerEpoch` validators of at most `maxWeights`
/// entries each, and the constructor caps their product at `_MAX_ENTRIES_PER_EPOCH`. finalizeEpoch
/// reads each entry once, merges the validators' lists (each sorted by node) in log2(validators)
/// passes, takes each node's stake-weighted median in one walk over its entries, and credits each
/// distinct node once: O(entries × log validators) work plus one storage write per credit, whatever
/// the validators submit. scripts/gas-snapshot.ts measures it at the bound with every entry naming a
/// different node (the dearest case: one new claimable slot per entry).
///
/// Quorum: Rewards cannot enumerate the validators' total stake (NodeRegistry keeps no such sum), so
/// the reference is what validators actually showed: the largest stake counted by any of the
/// `quorumLookbackEpochs` epochs before the one finalised, written when each is finalised. An epoch
/// is distributed only if it counts at least `quorumBps` of that reference and at least
/// `minQuorumStake`. A lone submitter in an epoch the usual validators skip therefore captures
/// nothing unless it holds that share of their stake itself. Limits: the reference only remembers
/// `quorumLookbackEpochs` epochs, so after that many epochs without the usual validators (or
/// unfinalised), the floor `minQuorumStake` is all that stands; before any epoch is finalised (a new
/// deployment) the floor is all there is; and when honest stake really shrinks by more than
/// 1 - quorumBps, epochs go undistributed (their emission is never minted) until the reference
/// forgets the larger stake.
contract Rewards is IRewards, ReentrancyGuard {
    using SafeERC20 for IERC20;

    /// @notice Reputation beyond this (either sign) scales a node's reward no further.
    int256 public constant REPUTATION_REWARD_BOUND = 100;
    /// @notice A node's score is scaled by (REPUTATION_REWARD_SCALE + reputation) / REPUTATION_REWARD_SCALE.
    int256 public constant REPUTATION_REWARD_SCALE = 400;

    uint256 private constant _ONE = 1e18;
    uint256 private constant _BPS = 10_000;
    /// @dev Most (validator, node) entries an epoch can count: maxValidatorsPerEpoch × maxWeights.
    /// At this bound finalizeEpoch stays far below a 30M-gas block (see the gas snapshot).
    uint256 private constant _MAX_ENTRIES_PER_EPOCH = 512;
    /// @dev Most epochs the quorum reference looks back (one storage read each).
    uint256 private constant _MAX_QUORUM_LOOKBACK = 64;
    /// @dev A stored entry is node << 96 | weight (weight normalised to 1e18 < 2^60).
    uint256 private constant _NODE_SHIFT = 96;
    uint256 private constant _WEIGHT_MASK = (1 << 96) - 1;
    /// @dev A sort key is node << 96 | weight << 32 | validator index.
    uint256 private constant _INDEX_BITS = 32;
    uint256 private constant _INDEX_MASK = (1 << 32) - 1;

    struct Submission {
        uint256 stake; // stakeOf(validator) at submission
        uint256 position; // index in the epoch's counted list + 1; 0: not counted
        uint256[] entries; // node << 96 | weight normalised to sum 1e18; nodes strictly increasing
    }

    IMuriToken private immutable _token;
    INodeRegistry private immutable _registry;
    uint64 private immutable _genesisBlock;
    uint64 private immutable _epochBlocks;
    uint256 private immutable _emission;
    uint16 private immutable _validatorShareBps;
    uint16 private immutable _maxWeights;
    uint16 private immutable _maxValidators;
    uint16 private immutable _quorumBps;
    uint16 private immutable _quorumLookback;
    uint256 private immutable _minQuorumStake;

    mapping(uint64 epoch => address[]) private _validators;
    mapping(uint64 epoch => mapping(address validator => Submission)) private _submissions;
    mapping(uint64 epoch => bool) private _finalized;
    mapping(uint64 epoch => uint256) private _counted;
    mapping(address account => uint256) private _claimable;
    uint256 private _totalClaimable;

    constructor(Config memory cfg) {
        if (cfg.epochBlocks == 0) revert RewardsInvalidConfig("epochBlocks", 0);
        if (cfg.validatorShareBps > _BPS) revert RewardsInvalidConfig("validatorShareBps", cfg.validatorShareBps);
        if (cfg.maxWeights == 0) revert RewardsInvalidConfig("maxWeights", 0);
        if (cfg.maxValidatorsPerEpoch == 0) revert RewardsInvalidConfig("maxValidatorsPerEpoch", 0);
        uint256 entries = uint256(cfg.maxValidatorsPerEpoch) * cfg.maxWeights;
        if (entries > _MAX_ENTRIES_PER_EPOCH) revert RewardsInvalidConfig("entriesPerEpoch", entries);
        if (cfg.quorumBps > _BPS) revert RewardsInvalidConfig("quorumBps", cfg.quorumBps);
        if (cfg.quorumLookbackEpochs > _MAX_QUORUM_LOOKBACK) {
            revert RewardsInvalidConfig("quorumLookbackEpochs", cfg.quorumLookbackEpochs);
        }
        _token = IMuriToken(cfg.token);
        _registry = INodeRegistry(cfg.nodeRegistry);
        _genesisBlock = cfg.genesisBlock == 0 ? uint64(block.number) : cfg.genesisBlock;
        _epochBlocks = cfg.epochBlocks;
        _emission = cfg.emissionPerEpoch;
        _validatorShareBps = cfg.validatorShareBps;
        _maxWeights = cfg.maxWeights;
        _maxValidators = cfg.maxValidatorsPerEpoch;
        _quorumBps = cfg.quorumBps;
        _quorumLookback = cfg.quorumLookbackEpochs;
        _minQuorumStake = cfg.minQuorumStake;
    }

    /// @inheritdoc IRewards
    function submitWeights(uint64 epoch, address[] calldata nodes, uint256[] calldata weights) external {
        if (!_registry.isActive(msg.sender, _registry.ROLE_VALIDATOR())) revert RewardsNotValidator(msg.sender);
        uint64 current = currentEpoch();
        if (epoch != current) revert RewardsWrongEpoch(epoch, current);
        uint256 count = nodes.length;
        if (count == 0 || count > _maxWeights) revert RewardsInvalidWeights("count", count);
        if (weights.length != count) revert RewardsInvalidWeights("length", weights.length);
        uint8 nodeRole = _registry.ROLE_NODE();
        uint256 sum;
        for (uint256 i; i < count; ++i) {
            if (i > 0 && nodes[i] <= nodes[i - 1]) revert RewardsInvalidWeights("order", i);
            if (nodes[i] == msg.sender) revert RewardsSelfWeight(msg.sender, i);
            if (!_registry.isActive(nodes[i], nodeRole)) revert RewardsInvalidWeights("node", i);
            sum += weights[i];
        }
        if (sum == 0) revert RewardsInvalidWeights("sum", 0);

        uint256 stake = _registry.stakeOf(msg.sender);
        Submission storage s = _submissions[epoch][msg.sender];
        if (s.position == 0) s.position = _admit(epoch, msg.sender, stake);
        s.stake = stake;
        uint256[] storage entries = s.entries;
        uint256 previous = entries.length;
        for (uint256 i; i < count; ++i) {
            uint256 entry = uint256(uint160(nodes[i])) << _NODE_SHIFT | weights[i] * _ONE / sum;
            if (i < previous) entries[i] = entry;
            else entries.push(entry);
        }
        for (uint256 i = count; i < previous; ++i) {
            entries.pop();
        }
        emit WeightsSubmitted(epoch, msg.sender, count, stake);
    }

    /// @inheritdoc IRewards
    function finalizeEpoch(uint64 epoch) external nonReentrant {
        uint64 current = currentEpoch();
        if (epoch >= current) revert RewardsEpochNotOver(epoch, current);
        if (_finalized[epoch]) revert RewardsAlreadyFinalized(epoch);
        _finalized[epoch] = true;

        address[] storage validators = _validators[epoch];
        uint256 v = validators.length;
        if (v == 0) {
            // Nobody observed this epoch: nothing is minted; the pool waits for the next one.
            emit EpochFinalized(epoch, 0, 0, 0, 0);
            return;
        }
        (uint256[] memory stakes, uint256 totalStake, uint256 entries) = _stakes(epoch, validators);
        uint256 required = _required(epoch);
        _counted[epoch] = totalStake;
        if (totalStake == 0 || totalStake < required) {
            // Too little stake observed this epoch: as if nobody had; the pool waits.
            emit EpochQuorumMissed(epoch, totalStake, required);
            emit EpochFinalized(epoch, 0, 0, v, 0);
            return;
        }
        if (_emission > 0) _token.mint(address(this), _emission);
        uint256 distributable = pool();

        (address[] memory nodes, uint256[] memory nodeScore, uint256 totalNode, uint256[] memory kept) =
            _consensus(epoch, validators, stakes, totalStake, entries);

        uint256 validatorPool = distributable * _validatorShareBps / _BPS;
        uint256 nodePool = distributable - validatorPool;
        uint256 credited;
        if (totalNode > 0) {
            for (uint256 j; j < nodes.length; ++j) {
                credited += _credit(epoch, nodes[j], nodePool * nodeScore[j] / totalNode, false);
            }
        }
        uint256 totalTrust;
        for (uint256 i; i < v; ++i) {
            // Weights sum to 1e18 per validator, so kept[i] / 1e18 is the fraction that survived.
            kept[i] = stakes[i] * kept[i] / _ONE;
            totalTrust += kept[i];
        }
        if (totalTrust > 0) {
            for (uint256 i; i < v; ++i) {
                credited += _credit(epoch, validators[i], validatorPool * kept[i] / totalTrust, true);
            }
        }
        _totalClaimable += credited;
        emit EpochFinalized(epoch, _emission, credited, v, nodes.length);
    }

    /// @inheritdoc IRewards
    function claim() external nonReentrant {
        uint256 amount = _claimable[msg.sender];
        if (amount == 0) revert RewardsNothingToClaim(msg.sender);
        _claimable[msg.sender] = 0;
        _totalClaimable -= amount;
        emit RewardClaimed(msg.sender, amount);
        IERC20(address(_token)).safeTransfer(msg.sender, amount);
    }

    /// @inheritdoc IRewards
    function currentEpoch() public view returns (uint64) {
        return (uint64(block.number) - _genesisBlock) / _epochBlocks;
    }

    /// @inheritdoc IRewards
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @inheritdoc IRewards
    function totalClaimable() external view returns (uint256) {
        return _totalClaimable;
    }

    /// @inheritdoc IRewards
    function pool() public view returns (uint256) {
        return _token.balanceOf(address(this)) - _totalClaimable;
    }

    /// @inheritdoc IRewards
    function isFinalized(uint64 epoch) external view returns (bool) {
        return _finalized[epoch];
    }

    /// @inheritdoc IRewards
    function weightsOf(uint64 epoch, address validator)
        external
        view
        returns (address[] memory nodes, uint256[] memory weights)
    {
        Submission storage s = _submissions[epoch][validator];
        if (s.position == 0) return (nodes, weights);
        uint256 count = s.entries.length;
        nodes = new address[](count);
        weights = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            uint256 entry = s.entries[i];
            nodes[i] = address(uint160(entry >> _NODE_SHIFT));
            weights[i] = entry & _WEIGHT_MASK;
        }
    }

    /// @inheritdoc IRewards
    function validatorsOf(uint64 epoch) external view returns (address[] memory validators, uint256[] memory stakes) {
        validators = _validators[epoch];
        stakes = new uint256[](validators.length);
        for (uint256 i; i < validators.length; ++i) {
            stakes[i] = _submissions[epoch][validators[i]].stake;
        }
    }

    /// @inheritdoc IRewards
    function quorum(uint64 epoch) external view returns (uint256 stake, uint256 required) {
        (, stake,) = _stakes(epoch, _validators[epoch]);
        required = _required(epoch);
    }

    /// @inheritdoc IRewards
    function countedStake(uint64 epoch) external view returns (uint256) {
        return _counted[epoch];
    }

    /// @inheritdoc IRewards
    function config() external view returns (Config memory) {
        return Config({
            token: address(_token),
            nodeRegistry: address(_registry),
            genesisBlock: _genesisBlock,
            epochBlocks: _epochBlocks,
            emissionPerEpoch: _emission,
            validatorShareBps: _validatorShareBps,
            maxWeights: _maxWeights,
            maxValidatorsPerEpoch: _maxValidators,
            quorumBps: _quorumBps,
            quorumLookbackEpochs: _quorumLookback,
            minQuorumStake: _minQuorumStake
        });
    }

    /// @dev Counts `validator` for `epoch` and returns its position (index + 1). Once the list is
    /// full it takes the place of the validator with the smallest counted stake (the lower of its
    /// stake at submission and now) if it has more; otherwise it is refused. So sybils with little
    /// stake cannot crowd out a validator with much.
    function _admit(uint64 epoch, address validator, uint256 stake) private returns (uint256) {
        address[] storage list = _validators[epoch];
        uint256 length = list.length;
        if (length < _maxValidators) {
            list.push(validator);
            return length + 1;
        }
        uint256 smallest = type(uint256).max;
        uint256 at;
        for (uint256 i; i < length; ++i) {
            uint256 counted = _countedStakeOf(_submissions[epoch][list[i]].stake, list[i]);
            if (counted < smallest) {
                smallest = counted;
                at = i;
            }
        }
        if (stake <= smallest) revert RewardsValidatorsFull(epoch, stake, smallest);
        address displaced = list[at];
        _submissions[epoch][displaced].position = 0;
        list[at] = validator;
        emit ValidatorDisplaced(epoch, displaced, validator, smallest);
        return at + 1;
    }

    /// @dev The lower of a validator's stake at submission and now: stake unstaked after submitting
    /// and restaked under another validator within the epoch is not counted twice.
    function _countedStakeOf(uint256 atSubmission, address validator) private view returns (uint256) {
        uint256 live = _registry.stakeOf(validator);
        return atSubmission < live ? atSubmission : live;
    }

    /// @dev Each counted validator's stake, their sum and the number of entries they submitted.
    function _stakes(uint64 epoch, address[] storage validators)
        private
        view
        returns (uint256[] memory stakes, uint256 total, uint256 entries)
    {
        uint256 v = validators.length;
        stakes = new uint256[](v);
        for (uint256 i; i < v; ++i) {
            Submission storage s = _submissions[epoch][validators[i]];
            stakes[i] = _countedStakeOf(s.stake, validators[i]);
            total += stakes[i];
            entries += s.entries.length;
        }
    }

    /// @dev The stake `epoch` must count to be distributed: quorumBps of the largest stake counted
    /// by the quorumLookbackEpochs epochs before it, and at least minQuorumStake.
    function _required(uint64 epoch) private view returns (uint256) {
        uint256 lookback = _quorumLookback < epoch ? _quorumLookback : epoch;
        uint256 largest;
        for (uint256 k = 1; k <= lookback; ++k) {
            uint256 counted = _counted[epoch - uint64(k)];
            if (counted > largest) largest = counted;
        }
        uint256 relative = largest * _quorumBps / _BPS;
        return relative > _minQuorumStake ? relative : _minQuorumStake;
    }

    /// @dev Clips each weight to the stake-weighted median of its node's column (absent = 0).
    /// Returns the distinct nodes (ascending), each one's stake-weighted clipped score and their
    /// sum, and for each validator the sum of its clipped weights.
    function _consensus(
        uint64 epoch,
        address[] storage validators,
        uint256[] memory stakes,
        uint256 totalStake,
        uint256 entries
    ) private view returns (address[] memory nodes, uint256[] memory nodeScore, uint256 totalNode, uint256[] memory kept) {
        uint256[] memory keys = _sortedEntries(epoch, validators, entries);
        nodes = new address[](entries);
        nodeScore = new uint256[](entries);
        kept = new uint256[](validators.length);
        uint256 distinct;
        uint256 start;
        while (start < entries) {
            uint256 node = keys[start] >> _NODE_SHIFT;
            uint256 end = start + 1;
            while (end < entries && keys[end] >> _NODE_SHIFT == node) ++end;
            // Ascending weights: the validators that did not name the node (weight 0) come first.
            uint256 present;
            for (uint256 k = start; k < end; ++k) {
                present += stakes[keys[k] & _INDEX_MASK];
            }
            uint256 cumulative = totalStake - present;
            uint256 median;
            if (cumulative * 2 < totalStake) {
                for (uint256 k = start; k < end; ++k) {
                    cumulative += stakes[keys[k] & _INDEX_MASK];
                    if (cumulative * 2 >= totalStake) {
                        median = (keys[k] & _WEIGHT_MASK) >> _INDEX_BITS;
                        break;
                    }
                }
            }
            uint256 score;
            for (uint256 k = start; k < end; ++k) {
                uint256 i = keys[k] & _INDEX_MASK;
                uint256 weight = (keys[k] & _WEIGHT_MASK) >> _INDEX_BITS;
                uint256 clipped = weight < median ? weight : median;
                kept[i] += clipped;
                score += clipped * stakes[i] / _ONE;
            }
            if (score > 0) score = _scaledByReputation(address(uint160(node)), score);
            nodes[distinct] = address(uint160(node));
            nodeScore[distinct] = score;
            totalNode += score;
            ++distinct;
            start = end;
        }
        assembly ("memory-safe") {
            mstore(nodes, distinct)
            mstore(nodeScore, distinct)
        }
    }

    /// @dev `score` scaled by `node`'s reputation (see the contract's notice): x3/4 .. x5/4.
    function _scaledByReputation(address node, uint256 score) private view returns (uint256) {
        int256 r = _registry.reputationOf(node);
        if (r > REPUTATION_REWARD_BOUND) r = REPUTATION_REWARD_BOUND;
        else if (r < -REPUTATION_REWARD_BOUND) r = -REPUTATION_REWARD_BOUND;
        return score * uint256(REPUTATION_REWARD_SCALE + r) / uint256(REPUTATION_REWARD_SCALE);
    }

    /// @dev Every counted entry as a key node << 96 | weight << 32 | validator index, ascending.
    /// Each validator's list is already sorted by node, so the lists are merged pairwise in
    /// ceil(log2(validators)) passes: O(entries × log validators), whatever the weights.
    function _sortedEntries(uint64 epoch, address[] storage validators, uint256 entries)
        private
        view
        returns (uint256[] memory keys)
    {
        uint256 runs = validators.length;
        keys = new uint256[](entries);
        uint256[] memory bounds = new uint256[](runs + 1);
        uint256 n;
        for (uint256 i; i < runs; ++i) {
            bounds[i] = n;
            uint256[] storage list = _submissions[epoch][validators[i]].entries;
            uint256 count = list.length;
            for (uint256 k; k < count; ++k) {
                uint256 entry = list[k];
                keys[n++] = (entry >> _NODE_SHIFT) << _NODE_SHIFT | (entry & _WEIGHT_MASK) << _INDEX_BITS | i;
            }
        }
        bounds[runs] = n;
        uint256[] memory other = new uint256[](entries);
        while (runs > 1) {
            uint256 merged;
            for (uint256 r; r < runs; r += 2) {
                uint256 lo = bounds[r];
                uint256 mid = bounds[r + 1];
                uint256 hi = r + 2 <= runs ? bounds[r + 2] : mid;
                _merge(keys, other, lo, mid, hi);
                bounds[merged++] = lo;
            }
            bounds[merged] = bounds[runs];
            runs = merged;
            (keys, other) = (other, keys);
        }
    }

    /// @dev Merges the sorted runs from[lo, mid) and from[mid, hi) into to[lo, hi).
    function _merge(uint256[] memory from, uint256[] memory to, uint256 lo, uint256 mid, uint256 hi) private pure {
        uint256 i = lo;
        uint256 j = mid;
        uint256 k = lo;
        while (i < mid && j < hi) {
            if (from[i] <= from[j]) to[k++] = from[i++];
            else to[k++] = from[j++];
        }
        while (i < mid) to[k++] = from[i++];
        while (j < hi) to[k++] = from[j++];
    }

    function _credit(uint64 epoch, address account, uint256 amount, bool validator) private returns (uint256) {
        if (amount == 0) return 0;
        _claimable[account] += amount;
        emit RewardCredited(epoch, account, amount, validator);
        return amount;
    }
}
