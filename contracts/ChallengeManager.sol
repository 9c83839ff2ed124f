// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IChallengeManager} from "./interfaces/IChallengeManager.sol";
import {IMaguRegistry} from "./interfaces/IMaguRegistry.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {MerkleLib} from "./libraries/MerkleLib.sol";
import {PlacementLib} from "./libraries/PlacementLib.sol";
import {MaguId} from "./types/MaguId.sol";

/// @title ChallengeManager
/// @notice Issues and checks the per-period storage challenges of Magu members, and settles
/// missed ones (see IChallengeManager for the rules and the detection probability).
/// It holds no tokens: slashes go straight from NodeRegistry to the marker and to Rewards.
/// @dev Each (magu, member, period) is settled at most once: proven (1) or missed (2). States are
/// packed two bits per period, 128 periods per storage word, so most proofs write a warm slot.
contract ChallengeManager is IChallengeManager, ReentrancyGuard {
    /// @notice Tries per challenged item to find a fragment the member holds.
    uint256 public constant MAX_TRIES = 64;
    /// @notice Reputation gained per proven period and lost per missed one.
    int64 public constant REPUTATION_PROOF = 1;
    int64 public constant REPUTATION_MISS = -10;

    uint256 private constant _BLOCKHASH_WINDOW = 256;
    uint8 private constant _PROVEN = 1;
    uint8 private constant _MISSED = 2;

    IMaguRegistry private immutable _magus;
    INodeRegistry private immutable _nodes;
    address private immutable _slashSink;
    uint8 private immutable _samples;
    uint16 private immutable _slashBps;
    uint16 private immutable _markerBps;
    uint32 private immutable _maxMisses;
    uint64 private immutable _graceBlocks;
    uint64 private immutable _markWindowBlocks;
    uint64 private immutable _periodBlocks;
    uint64 private immutable _genesisBlock;

    mapping(uint64 period => bytes32) private _periodSeeds;
    mapping(bytes32 memberKey => mapping(uint256 word => uint256 bits)) private _states;

    constructor(Config memory cfg) {
        _magus = IMaguRegistry(cfg.maguRegistry);
        _nodes = INodeRegistry(cfg.nodeRegistry);
        _slashSink = cfg.slashSink;
        _samples = cfg.samples;
        _slashBps = cfg.slashBps;
        _markerBps = cfg.markerBps;
        _maxMisses = cfg.maxMisses;
        _graceBlocks = cfg.graceBlocks;
        _markWindowBlocks = cfg.markWindowBlocks;
        IMaguRegistry.Config memory clock = _magus.config();
        _periodBlocks = clock.periodBlocks;
        _genesisBlock = clock.genesisBlock;
        // MaguRegistry must not settle (release locks) while a miss of the last period can still
        // be marked.
        if (uint256(cfg.graceBlocks) + cfg.markWindowBlocks > clock.settleDelayBlocks) {
            revert ChallengeInvalidConfig("markWindowBlocks", cfg.markWindowBlocks);
        }
    }

    /// @inheritdoc IChallengeManager
    function submitProof(MaguId magu, uint64 period, FragmentProof[] calldata proofs) external nonReentrant {
        IMaguRegistry.ChallengeContext memory c = _magus.challengeContext(magu, msg.sender, period);
        _checkMembership(magu, msg.sender, period, c);
        uint64 deadline = proofDeadline(period);
        uint64 start = _periodStart(period);
        if (block.number <= start || block.number >= deadline) {
            revert ChallengeWrongPeriod(period, _magus.currentPeriod(), deadline);
        }
        bytes32 key = _memberKey(magu, msg.sender);
        if (_state(key, period) != 0) revert ChallengeAlreadySettled(magu, msg.sender, period);

        ChallengeItem[] memory items = _derive(_recordSeed(period, start), magu, msg.sender, period, c, _samples);
        // An empty challenge is not a pass: a member holding nothing earns nothing for it.
        if (items.length == 0) revert ChallengeNothingToProve(magu, msg.sender, period);
        if (proofs.length != items.length) revert ChallengeProofCount(items.length, proofs.length);
        uint256 maguDepth = MerkleLib.depthFor(c.fragmentCount);
        for (uint256 i; i < items.length; ++i) {
            _verify(i, proofs[i], items[i], c.root, maguDepth);
        }

        _setState(key, period, _PROVEN);
        emit ProofSubmitted(magu, msg.sender, period, items.length);
        _magus.recordProof(magu, msg.sender, period);
        _nodes.adjustReputation(msg.sender, REPUTATION_PROOF);
    }

    /// @inheritdoc IChallengeManager
    function markMissed(MaguId magu, address member, uint64 period) external nonReentrant {
        IMaguRegistry.ChallengeContext memory c = _magus.challengeContext(magu, member, period);
        // A member that left (or was evicted) still answers for the periods up to the one it left
        // in: leaving cannot dodge the slash of a challenge it had already failed.
        if (c.active || !_accountableAfterLeaving(period, c)) _checkMembership(magu, member, period, c);
        uint64 deadline = proofDeadline(period);
        if (block.number < deadline) revert ChallengeDeadlineNotPassed(period, deadline);
        // A miss is marked promptly or never: nobody can save up periods and drain a member at once.
        if (block.number > deadline + _markWindowBlocks) revert ChallengeMarkWindowClosed(period, deadline + _markWindowBlocks);
        bytes32 key = _memberKey(magu, member);
        if (_state(key, period) != 0) revert ChallengeAlreadySettled(magu, member, period);
        // Nor is it a miss: nothing was asked of the member.
        if (_derive(_recordSeed(period, _periodStart(period)), magu, member, period, c, 1).length == 0) {
            revert ChallengeNothingToProve(magu, member, period);
        }
        _setState(key, period, _MISSED);

        uint256 amount = _nodes.stakeOf(member) * _slashBps / 10_000;
        uint256 slashed;
        if (amount > 0) {
            address[] memory to = new address[](2);
            uint256[] memory amounts = new uint256[](2);
            to[0] = msg.sender;
            amounts[0] = amount * _markerBps / 10_000;
            to[1] = _slashSink;
            amounts[1] = amount - amounts[0];
            slashed = _nodes.slash(member, amount, to, amounts);
        }
        _nodes.adjustReputation(member, REPUTATION_MISS);
        uint32 misses;
        if (c.active) misses = _magus.recordMiss(magu, member);
        emit ProofMissed(magu, member, period, msg.sender, slashed, misses);
        if (c.active && misses >= _maxMisses) _magus.evict(magu, member);
    }

    /// @inheritdoc IChallengeManager
    function challengeFor(MaguId magu, address member, uint64 period)
        external
        view
        returns (ChallengeItem[] memory)
    {
        IMaguRegistry.ChallengeContext memory c = _magus.challengeContext(magu, member, period);
        _checkMembership(magu, member, period, c);
        return _derive(periodSeed(period), magu, member, period, c, _samples);
    }

    /// @inheritdoc IChallengeManager
    function deriveChallenge(
        bytes32 seed,
        MaguId magu,
        address member,
        uint64 period,
        uint8 slot,
        uint8 slots,
        uint8 replication,
        uint8 stripeWidth,
        uint32 fragmentCount
    ) external view returns (ChallengeItem[] memory) {
        IMaguRegistry.ChallengeContext memory c;
        c.slot = slot;
        c.slots = slots;
        c.replication = replication;
        c.stripeWidth = stripeWidth;
        c.fragmentCount = fragmentCount;
        return _derive(seed, magu, member, period, c, _samples);
    }

    /// @inheritdoc IChallengeManager
    function periodSeed(uint64 period) public view returns (bytes32 seed) {
        seed = _periodSeeds[period];
        if (seed != bytes32(0)) return seed;
        uint64 start = _periodStart(period);
        if (block.number <= start) revert ChallengeSeedUnavailable(period);
        seed = blockhash(start);
        if (seed == bytes32(0)) seed = _lateSeed(period);
    }

    /// @inheritdoc IChallengeManager
    function proofDeadline(uint64 period) public view returns (uint64) {
        return _periodStart(period + 1) + _graceBlocks;
    }

    /// @inheritdoc IChallengeManager
    function markDeadline(uint64 period) external view returns (uint64) {
        return proofDeadline(period) + _markWindowBlocks;
    }

    /// @inheritdoc IChallengeManager
    function proofState(MaguId magu, address member, uint64 period) external view returns (uint8) {
        return _state(_memberKey(magu, member), period);
    }

    /// @inheritdoc IChallengeManager
    function config() external view returns (Config memory) {
        return Config({
            maguRegistry: address(_magus),
            nodeRegistry: address(_nodes),
            slashSink: _slashSink,
            samples: _samples,
            slashBps: _slashBps,
            markerBps: _markerBps,
            maxMisses: _maxMisses,
            graceBlocks: _graceBlocks,
            markWindowBlocks: _markWindowBlocks
        });
    }

    function _checkMembership(MaguId magu, address member, uint64 period, IMaguRegistry.ChallengeContext memory c)
        private
        pure
    {
        if (c.status != IMaguRegistry.Status.Active || !c.active || period < c.joinPeriod || period >= c.endPeriod) {
            revert ChallengeNotMember(magu, member, period);
        }
        if (c.fragmentCount == 0) revert ChallengeNoData(magu);
    }

    function _accountableAfterLeaving(uint64 period, IMaguRegistry.ChallengeContext memory c)
        private
        pure
        returns (bool)
    {
        return c.status == IMaguRegistry.Status.Active && c.leftAfter != 0 && period >= c.joinPeriod
            && period < c.leftAfter && period < c.endPeriod && c.fragmentCount != 0;
    }

    /// @dev Fixes the seed of `period` the first time it is needed.
    function _recordSeed(uint64 period, uint64 start) private returns (bytes32 seed) {
        seed = _periodSeeds[period];
        if (seed != bytes32(0)) return seed;
        seed = blockhash(start);
        if (seed == bytes32(0)) seed = _lateSeed(period);
        _periodSeeds[period] = seed;
        emit PeriodSeedRecorded(period, seed);
    }

    /// @dev Fallback when nobody touched the period while its start block hash was in reach.
    function _lateSeed(uint64 period) private view returns (bytes32) {
        return keccak256(abi.encode(period, blockhash(block.number - 1)));
    }

    function _derive(
        bytes32 pSeed,
        MaguId magu,
        address member,
        uint64 period,
        IMaguRegistry.ChallengeContext memory c,
        uint256 want
    ) private view returns (ChallengeItem[] memory items) {
        bytes32 seed = keccak256(abi.encode(pSeed, MaguId.unwrap(magu), member, uint256(period)));
        items = new ChallengeItem[](_samples);
        uint256 found;
        uint256 id = MaguId.unwrap(magu);
        // The first `want` items the samples name (markMissed only asks whether there is one).
        for (uint256 i; i < _samples && found < want; ++i) {
            for (uint256 t; t < MAX_TRIES; ++t) {
                uint256 h = uint256(keccak256(abi.encode(seed, i, t)));
                uint256 f = h % c.fragmentCount;
                if (PlacementLib.holds(id, f, c.slots, c.replication, c.stripeWidth, c.slot)) {
                    items[found++] = ChallengeItem({fragment: uint32(f), leafSeed: uint128(h >> 128)});
                    break;
                }
            }
        }
        assembly ("memory-safe") {
            mstore(items, found)
        }
    }

    function _verify(uint256 i, FragmentProof calldata p, ChallengeItem memory item, bytes32 root, uint256 maguDepth)
        private
        view
    {
        if (p.fragment != item.fragment) revert ChallengeWrongFragment(i, item.fragment, p.fragment);
        if (p.leaf.length != MerkleLib.LEAF_SIZE) revert ChallengeMalformedProof(i, "leaf", p.leaf.length);
        if (p.size > MerkleLib.MAX_FRAGMENT_SIZE) revert ChallengeMalformedProof(i, "size", p.size);
        uint256 leaves = MerkleLib.leafCount(p.size);
        if (p.leafProof.length != MerkleLib.depthFor(leaves)) {
            revert ChallengeMalformedProof(i, "leafProof", p.leafProof.length);
        }
        if (p.fragmentProof.length != maguDepth) {
            revert ChallengeMalformedProof(i, "fragmentProof", p.fragmentProof.length);
        }
        bytes32 treeRoot = MerkleLib.processProof(MerkleLib.hashLeaf(p.leaf), item.leafSeed % leaves, p.leafProof);
        bytes32 fragmentRoot = MerkleLib.hashFragmentRoot(p.size, treeRoot);
        if (MerkleLib.processProof(fragmentRoot, p.fragment, p.fragmentProof) != root) revert ChallengeInvalidProof(i);
    }

    function _periodStart(uint64 period) private view returns (uint64) {
        return _genesisBlock + period * _periodBlocks;
    }

    function _memberKey(MaguId magu, address member) private pure returns (bytes32) {
        return keccak256(abi.encode(MaguId.unwrap(magu), member));
    }

    function _state(bytes32 key, uint64 period) private view returns (uint8) {
        return uint8((_states[key][period >> 7] >> ((period & 127) << 1)) & 3);
    }

    function _setState(bytes32 key, uint64 period, uint8 state) private {
        _states[key][period >> 7] |= uint256(state) << ((period & 127) << 1);
    }
}
