// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MaguId} from "../types/MaguId.sol";

/// @title IMaguRegistry
/// @notice Magus: a dataset (vector or blob) and the group of member nodes that keeps it.
/// Creation escrows the payment; members are drawn stake-weighted with randomness from a later
/// block; the data is committed as one Merkle root over fragment roots; placement names the
/// holders of each fragment; a member that leaves or is evicted is replaced in its slot; at
/// expiry members are paid for the periods they proved and the rest is refunded.
interface IMaguRegistry {
    /// @notice What a Magu stores.
    enum Kind {
        Blob,
        Vector
    }

    /// @notice Distance metric of a vector Magu. Cosine is measured on chain as InnerProduct: the
    /// client normalises every vector (and query) to unit length before quantising it, so the inner
    /// product of the stored int16 vectors is the cosine similarity times a constant (docs/SEARCH.md).
    /// Hamming Magus hold binary vectors: `dimension` is the number of bits, a record is the id and
    /// ceil(dimension / 8) bytes of packed bits (MSB first), and the distance is the number of the
    /// `dimension` bits in which query and record differ.
    enum Metric {
        None,
        L2,
        InnerProduct,
        Cosine,
        Hamming
    }

    /// @notice Life cycle of a Magu.
    enum Status {
        None,
        Requested,
        Active,
        Ended,
        Cancelled
    }

    /// @notice Parameters fixed at deployment.
    struct Config {
        address token;
        address nodeRegistry;
        uint64 genesisBlock; // block where period 0 starts (0: the deployment block)
        uint64 periodBlocks; // blocks per period
        uint256 stakePerMember; // stake each membership locks
        uint256 repairBounty; // taken from a member that leaves or is evicted, paid to its replacement
        uint8 maxMembers;
        uint32 maxFragments;
        uint64 maxDurationPeriods;
        address bountySink; // receives repair bounties nobody earned (Rewards), never the owner
        uint32 fetchFragmentsPerPeriod; // fragments a member is assumed to fetch per period (sizes the grace of non-ackers)
        uint256 formationDeposit; // paid with the escrow; back at formation, lost on a re-roll
        uint64 settleDelayBlocks; // blocks after the last period starts before settle: >= grace + mark window
    }

    /// @notice What a client asks for when creating a Magu.
    struct MaguParams {
        Kind kind;
        Metric metric; // vector only
        uint32 dimension; // vector only
        uint8 members; // member slots
        uint8 replication; // vector: replicas per fragment (1..members); blob: 0
        uint8 dataShards; // blob: k
        uint8 parityShards; // blob: m
        uint32 maxFragments; // fragments the escrow pays for (blob: a multiple of k + m)
        uint64 durationPeriods;
        uint256 pricePerFragmentPeriod;
    }

    /// @notice A Magu's public record.
    struct MaguInfo {
        address owner;
        Status status;
        MaguParams params;
        bytes32 root;
        uint32 fragmentCount;
        uint32 batches;
        uint64 requestBlock;
        uint64 startPeriod;
        uint64 endPeriod;
        uint256 escrow;
        uint256 payPerSlotPeriod;
        address[] members; // by slot; address(0) is a vacant slot
    }

    /// @notice A member's standing in one Magu.
    struct Membership {
        bool active;
        uint8 slot;
        uint64 joinPeriod; // first period it is challenged for (views: not before the Magu has data, see commitData)
        uint64 provedPeriods;
        uint32 misses;
        uint64 leftAfter; // 0 while active or never a member; else 1 + the period it left in
    }

    /// @notice What ChallengeManager needs to derive and check a challenge, in one call.
    struct ChallengeContext {
        Status status;
        bool active;
        uint8 slot;
        uint8 slots;
        uint8 replication;
        uint8 stripeWidth;
        uint32 fragmentCount;
        bytes32 root;
        uint64 joinPeriod;
        uint64 leftAfter; // see Membership: a member stays accountable for the period it left in
        uint64 startPeriod;
        uint64 endPeriod;
    }

    /// @notice A client asked for a Magu and escrowed `escrow`.
    event MaguRequested(MaguId indexed magu, address indexed owner, Kind kind, uint256 escrow, uint64 requestBlock);
    /// @notice The selection window passed; the owner asked again (with a new deposit) or, for a
    /// vacancy, anyone did. `requestBlock` is the new request.
    event MaguSelectionRetried(MaguId indexed magu, uint64 requestBlock);
    /// @notice Members were selected; challenges start at `startPeriod`.
    event MaguFormed(MaguId indexed magu, address[] members, uint64 startPeriod, uint64 endPeriod);
    /// @notice A member took `slot`; `replacement` says it replaces one that left and must rebuild.
    event MemberJoined(MaguId indexed magu, address indexed member, uint8 slot, bool replacement, uint64 joinPeriod);
    /// @notice A member left `slot` (voluntarily, evicted or fired), paid `paid` for its proven periods.
    event MemberLeft(MaguId indexed magu, address indexed member, uint8 slot, bool evicted, uint256 paid);
    /// @notice The owner fired `member` from `slot`, forfeiting `deposit` (MemberLeft follows the
    /// same call: evicted = false).
    event MemberFired(MaguId indexed magu, address indexed member, uint8 slot, uint256 deposit);
    /// @notice Batch `batch` is available: it extends the data to `fragmentCount` fragments under
    /// `root`; the members in `ackers` (bit i = slot i) acknowledged holding their part and are
    /// challenged on it from `fromPeriod`, the others from `graceUntil` (they fetch it from the
    /// holders first). `indexCid` is the CID of the batch's index document (members serve it).
    event DataCommitted(
        MaguId indexed magu,
        uint32 indexed batch,
        bytes32 root,
        uint32 fragmentCount,
        uint64 fromPeriod,
        uint64 graceUntil,
        uint256 ackers,
        bytes indexCid
    );
    /// @notice A replacement passed its first proof and earned the repair bounty.
    event RepairRewarded(MaguId indexed magu, address indexed member, uint256 bounty);
    /// @notice The Magu ended: members were paid `paid`, the owner refunded `refunded`.
    event MaguSettled(MaguId indexed magu, uint256 paid, uint256 refunded);
    /// @notice A request was cancelled before formation and refunded.
    event MaguCancelled(MaguId indexed magu, uint256 refunded);
    /// @notice The owner cancelled after the seed was known, or let the selection window pass:
    /// its formation deposit went to the bounty sink.
    event FormationDepositForfeited(MaguId indexed magu, uint256 amount);
    /// @notice `account` claimed `amount`.
    event Claimed(address indexed account, uint256 amount);

    /// @notice A parameter is out of range; `field` names it.
    error MaguInvalidParams(bytes32 field, uint256 value);
    /// @notice No Magu has this id.
    error MaguUnknown(MaguId magu);
    /// @notice The Magu is not in the status the call needs.
    error MaguWrongStatus(MaguId magu, Status status);
    /// @notice Only the Magu's owner may do this.
    error MaguNotOwner(MaguId magu, address caller);
    /// @notice The selection randomness is not available before `readyBlock`.
    error MaguTooEarly(MaguId magu, uint64 readyBlock);
    /// @notice Fewer eligible nodes than slots to fill.
    error MaguNotEnoughNodes(MaguId magu, uint256 available, uint256 needed);
    /// @notice A replacement would join at `joinPeriod`, at or after the Magu's `endPeriod`: it could
    /// never be paid, so the slot stays empty.
    error MaguTooLateToFill(MaguId magu, uint64 joinPeriod, uint64 endPeriod);
    /// @notice `account` is not an active member of the Magu.
    error MaguNotMember(MaguId magu, address account);
    /// @notice `member`'s stake still backs its memberships: it cannot be dropped.
    error MaguMemberBacked(MaguId magu, address member);
    /// @notice The slot is not vacant or does not exist.
    error MaguNoVacancy(MaguId magu, uint256 slot);
    /// @notice The commit does not grow the data or exceeds the paid size.
    error MaguInvalidCommit(MaguId magu, uint32 fragmentCount, uint32 current, uint32 max);
    /// @notice The Magu has not reached its end (settlement possible from `settleFromPeriod`).
    error MaguNotExpired(MaguId magu, uint64 settleFromBlock);
    /// @notice The fragment index is past the committed data.
    error MaguUnknownFragment(MaguId magu, uint256 fragment, uint32 fragmentCount);
    /// @notice Nothing to claim.
    error MaguNothingToClaim(address account);
    /// @notice The acknowledgement in `slot` is not a signature of that slot's member over this batch.
    error MaguInvalidAck(MaguId magu, uint256 slot);
    /// @notice Too few members acknowledged for every stripe (or fragment) to be rebuilt.
    error MaguNotAvailable(MaguId magu, uint256 acknowledged, uint256 needed);
    /// @notice The new root does not keep the committed fragments (append-only), see `commitData`.
    error MaguNotAppendOnly(MaguId magu);

    /// @notice Creates a Magu and takes price × stored fragments × duration (the escrow) plus the
    /// formation deposit from the caller. Members are drawn later by `formMagu`.
    function createMagu(MaguParams calldata params) external returns (MaguId magu);

    /// @notice Draws the members of a requested Magu, at most SEATS_PER_FORM a call in slot order;
    /// the call that seats the last one activates the Magu (MaguFormed) and refunds the deposit to
    /// the owner's claimable. Anyone may call within `selectionWindow(requestBlock)`. After it: a
    /// formation that seated some members activates with the other slots vacant (filled by
    /// `fillVacancy`); one that seated none may be asked again only by the owner, which forfeits the
    /// deposit, pays a new one and sets a new request block.
    function formMagu(MaguId magu) external;

    /// @notice Cancels a Magu that was never formed and refunds its escrow, releasing members a
    /// formation under way seated. Owner only. The deposit
    /// is refunded too when cancelling before the seed is known (request block + 2), else forfeited.
    function cancelMagu(MaguId magu) external;

    /// @notice Slot `slot`'s vacancy: the block its replacement was requested in (0: not vacant), the
    /// repair bounty waiting in it, and the replacement that earns it with its first proof.
    function vacancy(MaguId magu, uint256 slot)
        external
        view
        returns (uint64 requestBlock, uint256 bounty, address rewardable);

    /// @notice Blocks in which a selection requested at `requestBlock` may be drawn: from the block
    /// after the seed block, within the selection epoch after the request's.
    function selectionWindow(uint64 requestBlock) external view returns (uint64 opens, uint64 closes);

    /// @notice Makes a batch of data available: the new Magu root over `fragmentCount` fragment
    /// roots, which must keep the committed ones (`extension`: the fragment root at index
    /// `current - 1` then its siblings bottom-up in the new tree; empty for the first batch).
    /// `acks[i]` is slot i's EIP-712 `Ack` signature (empty if it did not acknowledge); at most
    /// `parityShards` (blob) or `replication - 1` (vector) members may be missing. Owner only.
    function commitData(
        MaguId magu,
        bytes32 root,
        uint32 fragmentCount,
        bytes calldata indexCid,
        bytes32[] calldata extension,
        bytes[] calldata acks
    ) external;

    /// @notice The EIP-712 digest a member signs to acknowledge `batch` of `magu`.
    function ackDigest(MaguId magu, uint32 batch, bytes32 root, uint32 fragmentCount, address member)
        external
        view
        returns (bytes32);

    /// @notice The (root, count) `member` is challenged on in `period` (count 0: none yet).
    function challengedData(MaguId magu, address member, uint64 period)
        external
        view
        returns (bytes32 root, uint32 fragmentCount);

    /// @notice The caller leaves the Magu, paying the repair bounty from its stake.
    function leave(MaguId magu) external;

    /// @notice The owner fires `member` (BitDust's "fire a supplier"): the member is paid for its
    /// proven periods, keeps its stake (no slash, no bounty) and answers for the current period,
    /// as one that leaves; its slot becomes a vacancy that `fillVacancy` redraws (never a former
    /// member) and the newcomer rebuilds the slot's fragments from the others. The owner pays the
    /// repair bounty into the slot (earned by the newcomer's first proof) and forfeits a formation
    /// deposit to the bounty sink (approve both first): each redraw costs what a re-roll costs.
    function fire(MaguId magu, address member) external;

    /// @notice Fills a vacant slot with a new member drawn in the vacancy's selection window (a
    /// passed window sets a new request), never one that is or was a member of this Magu, and only
    /// while the replacement would join before the Magu's end.
    function fillVacancy(MaguId magu, uint8 slot) external;

    /// @notice Ends an expired Magu: pays members, unlocks their stake, refunds the rest.
    function settle(MaguId magu) external;

    /// @notice Pays out what the caller earned or was refunded.
    function claim() external;

    /// @notice Records a passed challenge of `member` for `period`. ChallengeManager only.
    function recordProof(MaguId magu, address member, uint64 period) external;

    /// @notice Records a missed challenge; returns the member's miss count. ChallengeManager only.
    function recordMiss(MaguId magu, address member) external returns (uint32 misses);

    /// @notice Evicts `member` (repair bounty slashed) and opens its slot. ChallengeManager only.
    function evict(MaguId magu, address member) external;

    /// @notice Evicts `member` once its stake no longer backs its memberships
    /// (`NodeRegistry.isBacked` false: slashed below what they lock, or below the minimum stake),
    /// like a member evicted for misses: its slot is refilled and rebuilt. Anyone may call it.
    function dropUnbacked(MaguId magu, address member) external;

    /// @notice The members responsible for `fragment` (r of them for vector, 1 for blob).
    function holders(MaguId magu, uint256 fragment) external view returns (address[] memory);

    /// @notice The record of `magu`.
    function maguInfo(MaguId magu) external view returns (MaguInfo memory);

    /// @notice `member`'s standing in `magu`.
    function membership(MaguId magu, address member) external view returns (Membership memory);

    /// @notice Everything a challenge of `member` of `magu` in `period` needs (the root and count
    /// are those of the batch it answers for in that period, fixed before the period began).
    function challengeContext(MaguId magu, address member, uint64 period)
        external
        view
        returns (ChallengeContext memory);

    /// @notice The period the current block is in.
    function currentPeriod() external view returns (uint64);

    /// @notice The first block of `period`.
    function periodStart(uint64 period) external view returns (uint64);

    /// @notice Unclaimed payments of `account`.
    function claimable(address account) external view returns (uint256);

    /// @notice Σ escrows + Σ repair bounties + Σ unclaimed payments: what this contract must hold.
    function totalHeld() external view returns (uint256);

    /// @notice Number of Magus created (ids are 1..count).
    function maguCount() external view returns (uint256);

    /// @notice The configuration.
    function config() external view returns (Config memory);
}
