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
/// @dev Invariant: token.balanceOf(this) = totalClaimable() + pool(). Only finalizeEpoch mints, once
/// per epoch; credits never exceed what it distributes, so nothing is paid twice.
contract Rewards is IRewards, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint256 private constant _ONE = 1e18;
    uint256 private constant _BPS = 10_000;

    struct Submission {
        uint256 stake;
        address[] nodes;
        uint256[] weights; // normalised to sum 1e18
    }

    IMuriToken private immutable _token;
    INodeRegistry private immutable _registry;
    uint64 private immutable _genesisBlock;
    uint64 private immutable _epochBlocks;
    uint256 private immutable _emission;
    uint16 private immutable _validatorShareBps;
    uint16 private immutable _maxWeights;

    mapping(uint64 epoch => address[]) private _validators;
    mapping(uint64 epoch => mapping(address validator => Submission)) private _submissions;
    mapping(uint64 epoch => bool) private _finalized;
    mapping(address account => uint256) private _claimable;
    uint256 private _totalClaimable;

    constructor(Config memory cfg) {
        if (cfg.epochBlocks == 0) revert RewardsInvalidWeights("epochBlocks", 0);
        if (cfg.validatorShareBps > _BPS) revert RewardsInvalidWeights("validatorShareBps", cfg.validatorShareBps);
        _token = IMuriToken(cfg.token);
        _registry = INodeRegistry(cfg.nodeRegistry);
        _genesisBlock = cfg.genesisBlock == 0 ? uint64(block.number) : cfg.genesisBlock;
        _epochBlocks = cfg.epochBlocks;
        _emission = cfg.emissionPerEpoch;
        _validatorShareBps = cfg.validatorShareBps;
        _maxWeights = cfg.maxWeights;
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
            if (!_registry.isActive(nodes[i], nodeRole)) revert RewardsInvalidWeights("node", i);
            sum += weights[i];
        }
        if (sum == 0) revert RewardsInvalidWeights("sum", 0);

        Submission storage s = _submissions[epoch][msg.sender];
        if (s.nodes.length == 0) _validators[epoch].push(msg.sender);
        s.stake = _registry.stakeOf(msg.sender);
        s.nodes = nodes;
        delete s.weights;
        for (uint256 i; i < count; ++i) {
            s.weights.push(weights[i] * _ONE / sum);
        }
        emit WeightsSubmitted(epoch, msg.sender, count, s.stake);
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
        if (_emission > 0) _token.mint(address(this), _emission);
        uint256 distributable = pool();

        (address[] memory nodes, uint256[][] memory w, uint256[] memory stakes) = _matrix(epoch, validators);
        (uint256[] memory nodeScore, uint256[] memory trust) = _consensus(w, stakes, nodes.length);

        uint256 validatorPool = distributable * _validatorShareBps / _BPS;
        uint256 nodePool = distributable - validatorPool;
        uint256 totalNode;
        for (uint256 j; j < nodes.length; ++j) {
            totalNode += nodeScore[j];
        }
        uint256 totalTrust;
        for (uint256 i; i < v; ++i) {
            totalTrust += trust[i];
        }
        if (totalNode > 0) {
            for (uint256 j; j < nodes.length; ++j) {
                _credit(epoch, nodes[j], nodePool * nodeScore[j] / totalNode, false);
            }
        }
        if (totalTrust > 0) {
            for (uint256 i; i < v; ++i) {
                _credit(epoch, validators[i], validatorPool * trust[i] / totalTrust, true);
            }
        }
        emit EpochFinalized(epoch, _emission, distributable - pool(), v, nodes.length);
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
        return (s.nodes, s.weights);
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
            maxWeights: _maxWeights
        });
    }

    /// @dev The union of weighted nodes and the validator × node weight matrix (0 where absent).
    function _matrix(uint64 epoch, address[] storage validators)
        private
        view
        returns (address[] memory nodes, uint256[][] memory w, uint256[] memory stakes)
    {
        uint256 v = validators.length;
        uint256 bound;
        for (uint256 i; i < v; ++i) {
            bound += _submissions[epoch][validators[i]].nodes.length;
        }
        nodes = new address[](bound);
        uint256 n;
        for (uint256 i; i < v; ++i) {
            address[] storage list = _submissions[epoch][validators[i]].nodes;
            for (uint256 k; k < list.length; ++k) {
                if (!_contains(nodes, n, list[k])) nodes[n++] = list[k];
            }
        }
        assembly ("memory-safe") {
            mstore(nodes, n)
        }
        w = new uint256[][](v);
        stakes = new uint256[](v);
        for (uint256 i; i < v; ++i) {
            Submission storage s = _submissions[epoch][validators[i]];
            // The lower of the stake at submission and now: stake unstaked after submitting and
            // restaked under another validator within the epoch is not counted twice.
            uint256 current = _registry.stakeOf(validators[i]);
            stakes[i] = s.stake < current ? s.stake : current;
            w[i] = new uint256[](n);
            for (uint256 k; k < s.nodes.length; ++k) {
                w[i][_indexOf(nodes, s.nodes[k])] = s.weights[k];
            }
        }
    }

    /// @dev Clips each weight to the stake-weighted median for its node. Returns each node's
    /// stake-weighted clipped score and each validator's stake × kept fraction of its weight.
    function _consensus(uint256[][] memory w, uint256[] memory stakes, uint256 n)
        private
        pure
        returns (uint256[] memory nodeScore, uint256[] memory trust)
    {
        uint256 v = stakes.length;
        uint256 totalStake;
        for (uint256 i; i < v; ++i) {
            totalStake += stakes[i];
        }
        nodeScore = new uint256[](n);
        uint256[] memory kept = new uint256[](v);
        uint256[] memory column = new uint256[](v);
        for (uint256 j; j < n; ++j) {
            for (uint256 i; i < v; ++i) {
                column[i] = w[i][j];
            }
            uint256 median = _weightedMedian(column, stakes, totalStake);
            for (uint256 i; i < v; ++i) {
                uint256 clipped = w[i][j] < median ? w[i][j] : median;
                kept[i] += clipped;
                nodeScore[j] += clipped * stakes[i] / _ONE;
            }
        }
        trust = new uint256[](v);
        for (uint256 i; i < v; ++i) {
            // Weights sum to 1e18 per validator, so kept[i] / 1e18 is the fraction that survived.
            trust[i] = stakes[i] * kept[i] / _ONE;
        }
    }

    /// @dev Smallest value whose cumulative stake (values ascending) reaches half the total.
    function _weightedMedian(uint256[] memory values, uint256[] memory stakes, uint256 totalStake)
        private
        pure
        returns (uint256 median)
    {
        uint256 v = values.length;
        uint256[] memory order = new uint256[](v);
        for (uint256 i; i < v; ++i) {
            order[i] = i;
        }
        for (uint256 i = 1; i < v; ++i) {
            uint256 cur = order[i];
            uint256 k = i;
            while (k > 0 && values[order[k - 1]] > values[cur]) {
                order[k] = order[k - 1];
                --k;
            }
            order[k] = cur;
        }
        uint256 cumulative;
        for (uint256 i; i < v; ++i) {
            cumulative += stakes[order[i]];
            if (cumulative * 2 >= totalStake) return values[order[i]];
        }
    }

    function _credit(uint64 epoch, address account, uint256 amount, bool validator) private {
        if (amount == 0) return;
        _claimable[account] += amount;
        _totalClaimable += amount;
        emit RewardCredited(epoch, account, amount, validator);
    }

    function _contains(address[] memory list, uint256 length, address a) private pure returns (bool) {
        for (uint256 i; i < length; ++i) {
            if (list[i] == a) return true;
        }
        return false;
    }

    function _indexOf(address[] memory list, address a) private pure returns (uint256 i) {
        while (list[i] != a) ++i;
    }
}
