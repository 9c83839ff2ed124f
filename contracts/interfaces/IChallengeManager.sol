// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MaguId} from "../types/MaguId.sol";

/// @title IChallengeManager
/// @notice Proof-of-storage challenges. Each period every member of an active Magu is challenged
/// on S fragments it holds (named by a seed from the block hash at the period's start); it answers
/// with one 1 KiB leaf of each and the Merkle path leaf -> fragment root -> Magu root. A period
/// left unproven past its deadline can be marked missed by anyone: part of the member's stake is
/// slashed (a share pays the marker, the rest goes to Rewards), and after `maxMisses` misses the
/// member is evicted and its slot refilled.
///
/// Detection: if a member lost a fraction x of its fragments, one period's challenge catches it
/// with probability 1 - (1 - x)^S; with S = 4, 1% lost -> 3.9%, 10% -> 34.4%, 50% -> 93.8%.
interface IChallengeManager {
    /// @notice Parameters fixed at deployment.
    struct Config {
        address maguRegistry;
        address nodeRegistry;
        address slashSink; // receives the slashed stake the marker does not get (Rewards)
        uint8 samples; // S: fragments per challenge
        uint16 slashBps; // share of the member's stake slashed per miss
        uint16 markerBps; // share of the slash paid to whoever marks the miss
        uint32 maxMisses; // misses in one Magu that evict the member
        uint64 graceBlocks; // blocks after the next period starts during which proofs still count
        uint64 markWindowBlocks; // blocks after a proof deadline during which the miss may be marked
    }

    /// @notice One challenged fragment: which fragment, and the seed of its leaf index
    /// (leafIndex = leafSeed % leafCount(size)).
    struct ChallengeItem {
        uint32 fragment;
        uint128 leafSeed;
    }

    /// @notice The answer for one challenged fragment.
    struct FragmentProof {
        uint32 fragment;
        uint64 size; // the fragment's length in bytes, committed in its root
        bytes leaf; // the 1024-byte chunk (zero-padded) at the challenged leaf index
        bytes32[] leafProof; // siblings leaf -> fragment tree root
        bytes32[] fragmentProof; // siblings fragment root -> Magu root
    }

    /// @notice `member` proved its challenge of `period`.
    event ProofSubmitted(MaguId indexed magu, address indexed member, uint64 indexed period, uint256 fragments);
    /// @notice `marker` marked `member`'s challenge of `period` missed; `slashed` was taken.
    event ProofMissed(
        MaguId indexed magu, address indexed member, uint64 indexed period, address marker, uint256 slashed, uint32 misses
    );
    /// @notice The randomness of `period` was fixed.
    event PeriodSeedRecorded(uint64 indexed period, bytes32 seed);

    /// @notice `account` is not an active member of the Magu (or the period is outside its membership).
    error ChallengeNotMember(MaguId magu, address account, uint64 period);
    /// @notice The period cannot be proven now (too early, or its deadline passed).
    error ChallengeWrongPeriod(uint64 period, uint64 current, uint64 deadline);
    /// @notice The period was already proven (or marked missed).
    error ChallengeAlreadySettled(MaguId magu, address member, uint64 period);
    /// @notice The proof deadline has not passed yet.
    error ChallengeDeadlineNotPassed(uint64 period, uint64 deadline);
    /// @notice The period's miss could be marked only until `closedAt` (inclusive): it is forgiven.
    error ChallengeMarkWindowClosed(uint64 period, uint64 closedAt);
    /// @notice The Magu has no committed data, so nothing can be challenged.
    error ChallengeNoData(MaguId magu);
    /// @notice The block hash of the period's start is not available yet.
    error ChallengeSeedUnavailable(uint64 period);
    /// @notice The number of fragment proofs differs from the challenge.
    error ChallengeProofCount(uint256 expected, uint256 given);
    /// @notice Proof `index` is for another fragment than the challenge names.
    error ChallengeWrongFragment(uint256 index, uint32 expected, uint32 given);
    /// @notice Proof `index` has a malformed part (leaf length, size, or path length).
    error ChallengeMalformedProof(uint256 index, bytes32 part, uint256 value);
    /// @notice Proof `index` does not lead to the Magu root.
    error ChallengeInvalidProof(uint256 index);
    /// @notice The member's challenge for the period names no fragment (it holds none that the
    /// draw reached): there is nothing to prove, so the period is neither paid nor slashed.
    error ChallengeNothingToProve(MaguId magu, address member, uint64 period);
    /// @notice A deployment parameter is out of range.
    error ChallengeInvalidConfig(bytes32 name, uint256 value);

    /// @notice Answers `msg.sender`'s challenge in `magu` for `period`.
    function submitProof(MaguId magu, uint64 period, FragmentProof[] calldata proofs) external;

    /// @notice Marks `member`'s unproven challenge of `period` missed, after its deadline and at the
    /// latest `markWindowBlocks` later (`markDeadline`); a miss nobody marked in time is forgiven,
    /// for everyone alike. The caller receives markerBps of the slash. A member that left stays
    /// accountable for the periods up to the one it left in (slashed, but its miss count and
    /// eviction no longer apply); an evicted member answers for nothing more.
    function markMissed(MaguId magu, address member, uint64 period) external;

    /// @notice The challenge of `member` in `magu` for `period`.
    function challengeFor(MaguId magu, address member, uint64 period)
        external
        view
        returns (ChallengeItem[] memory items);

    /// @notice The pure derivation behind `challengeFor` (docs/ENCODING.md), for test vectors.
    function deriveChallenge(
        bytes32 periodSeed,
        MaguId magu,
        address member,
        uint64 period,
        uint8 slot,
        uint8 slots,
        uint8 replication,
        uint8 stripeWidth,
        uint32 fragmentCount
    ) external view returns (ChallengeItem[] memory items);

    /// @notice The randomness of `period` (recorded, or the block hash if still in reach).
    function periodSeed(uint64 period) external view returns (bytes32);

    /// @notice The last block (exclusive) at which a proof for `period` is accepted.
    function proofDeadline(uint64 period) external view returns (uint64);

    /// @notice The last block (inclusive) at which a miss of `period` can be marked.
    function markDeadline(uint64 period) external view returns (uint64);

    /// @notice 0: open, 1: proven, 2: marked missed.
    function proofState(MaguId magu, address member, uint64 period) external view returns (uint8);

    /// @notice The configuration.
    function config() external view returns (Config memory);
}
