// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IMaguRegistry} from "./IMaguRegistry.sol";
import {MaguId} from "../types/MaguId.sol";

/// @title ISearchMarket
/// @notice Paid top-k vector search over a vector Magu, answered by its members with
/// commit-reveal and checked by disputes (docs/SEARCH.md is the specification).
///
/// A client submits a query with a fee. Members commit to a hash of their result list, reveal it
/// once commits are closed, and anyone may prove an entry false with the record's Merkle path
/// (the member is slashed `disputeSlash` in favour of the disputer and its list is dropped). After
/// the dispute window anyone finalises: the answer is the merge of the surviving lists in word
/// order, one word per vector id, the first k; the fee is split over the (final entry, member that
/// revealed it) pairs; committers that never revealed lose reputation.
///
/// Result entries are 32-byte words: bits 255..192 the distance key
/// `uint64(int64(distance)) ^ 2^63`, 191..128 the vector id, 127..96 the fragment index, 95..64 the
/// record index in the fragment, 63..0 zero, so comparing words orders hits by
/// (distance, id, fragment, position). Distances: squared L2 `Σ (q_i − v_i)²` or the negated inner
/// product `−Σ q_i · v_i` over the int16 components; smaller is closer.
interface ISearchMarket {
    /// @notice Parameters fixed at deployment.
    struct Config {
        address token;
        address nodeRegistry;
        address maguRegistry;
        uint64 commitBlocks; // commits in blocks [submit, submit + commitBlocks]
        uint64 revealBlocks; // reveals in the revealBlocks blocks after the commit deadline
        uint64 disputeBlocks; // disputes up to disputeBlocks blocks after the reveal deadline
        uint16 maxK; // largest k a task may ask for
        uint256 disputeSlash; // stake taken from a member proven to have lied
        uint16 disputerBps; // share of disputeSlash paid to the disputer; the rest goes to slashSink
        address slashSink; // receives the rest of each dispute slash (Rewards)
        int64 revealPenalty; // reputation subtracted from a committer that did not reveal
    }

    /// @notice A task's public record.
    struct TaskInfo {
        MaguId magu;
        address submitter;
        bytes32 queryHash; // keccak256(query); the query itself is in TaskSubmitted
        uint16 k;
        uint256 fee;
        bytes32 root; // the Magu root when the task was submitted
        uint32 fragmentCount; // the Magu's fragment count when the task was submitted
        uint32 dimension;
        IMaguRegistry.Metric metric;
        uint64 submitBlock;
        uint64 commitDeadline; // last block of commits
        uint64 revealDeadline; // last block of reveals
        uint64 disputeDeadline; // last block of disputes; finalize from the next one
        uint32 committers;
        bool finalized;
        bytes32 resultHash; // keccak256(abi.encodePacked(result)) once finalized
    }

    /// @notice A committer's standing in one task.
    struct MemberTask {
        bytes32 commitment; // keccak256(abi.encode(uint256 task, address member, bytes32 salt, bytes32[] entries))
        bool revealed;
        bool disputed; // one of its entries was proven false: its list is not part of the answer
        bytes32 listHash; // keccak256(abi.encodePacked(entries)) once revealed
    }

    /// @notice What a dispute proves about one revealed entry, and the record it is checked against.
    /// @dev Record p of a fragment occupies bytes [p·rs, (p+1)·rs), rs = 8 + vb, where vb, the
    /// vector's bytes, is 2·dimension (int16 components) or, for a Hamming Magu, ceil(dimension / 8)
    /// (packed bits). `leaves`
    /// are the fragment's 1024-byte leaves lo..hi with lo = floor(p·rs / 1024) and
    /// hi = floor(((p+1)·rs − 1) / 1024), both capped at the fragment's last leaf (so a record past
    /// the fragment's end is answered with the last leaf, which proves the size).
    struct DisputeProof {
        bytes query; // the task's query (vb bytes: 2·dimension, or ceil(dimension / 8) for Hamming)
        bytes32[] entries; // the member's revealed list
        uint256 index; // the accused entry
        uint64 size; // the fragment's length in bytes, committed in its root
        bytes[] leaves; // leaves lo..hi, each 1024 bytes (the last one zero-padded)
        bytes32[][] leafProofs; // per leaf, siblings leaf -> fragment tree root
        bytes32[] fragmentProof; // siblings fragment root -> task root
    }

    /// @notice Evidence that a revealed entry names a deleted vector (docs/SEARCH.md, "Deleting
    /// vectors"): a tombstone record (id 2^64 − 1, then ⌊vb / 8⌋ deleted ids as uint64 big-endian)
    /// in a fragment committed under the task's root, so deleted before the task was submitted,
    /// whose id slot `slot` holds the entry's id. `leaves` are the fragment's leaves under the
    /// record, lo..hi as in DisputeProof for record `position`.
    struct DeletionProof {
        bytes32[] entries; // the member's revealed list
        uint256 index; // the accused entry
        uint32 fragment; // the tombstone fragment, below the task's fragment count
        uint32 position; // the tombstone record in it
        uint32 slot; // the id slot of the record that holds the entry's id
        uint64 size; // the fragment's length in bytes, committed in its root
        bytes[] leaves; // leaves lo..hi, each 1024 bytes (the last one zero-padded)
        bytes32[][] leafProofs; // per leaf, siblings leaf -> fragment tree root
        bytes32[] fragmentProof; // siblings fragment root -> task root
    }

    /// @notice Why a disputed entry is false.
    enum Falsehood {
        RecordPastEnd, // the fragment holds no record at that position
        WrongId, // the record there has another id
        WrongDistance, // the record's distance to the query differs
        NotHolder, // the member does not hold the entry's fragment (placement): a copied answer
        ControlRecord, // the entry's id is a control record's (>= 2^64 - 256: a payload chunk or tombstone), never a vector
        Deleted // the entry's id was deleted by a tombstone committed before the task
    }

    /// @notice A task was submitted and `fee` escrowed.
    event TaskSubmitted(
        uint256 indexed task,
        MaguId indexed magu,
        address indexed submitter,
        bytes query,
        uint256 k,
        uint256 fee,
        uint64 commitDeadline,
        uint64 revealDeadline,
        uint64 disputeDeadline
    );
    /// @notice `member` committed to a result list.
    event ResultCommitted(uint256 indexed task, address indexed member, bytes32 commitment);
    /// @notice `member` revealed its result list.
    event ResultRevealed(uint256 indexed task, address indexed member, bytes32[] entries);
    /// @notice `disputer` proved entry `index` of `member`'s list false; `slashed` went to the disputer.
    /// For RecordPastEnd, NotHolder, ControlRecord and Deleted `actualId` and `actualDistance` are 0.
    event EntryDisputed(
        uint256 indexed task,
        address indexed member,
        address indexed disputer,
        uint256 index,
        Falsehood falsehood,
        uint64 claimedId,
        uint64 actualId,
        int64 claimedDistance,
        int64 actualDistance,
        uint256 slashed
    );
    /// @notice The task's answer; `credits` pairs were paid `payPerCredit` each, `refund` went back
    /// to the submitter.
    event TaskFinalized(uint256 indexed task, bytes32[] result, uint256 credits, uint256 payPerCredit, uint256 refund);
    /// @notice `account` claimed `amount`.
    event Claimed(address indexed account, uint256 amount);

    /// @notice A deployment parameter is out of range; `field` names it.
    error SearchInvalidConfig(bytes32 field, int256 value);
    /// @notice No task has this id.
    error SearchUnknownTask(uint256 task);
    /// @notice The Magu is not Active (None: it does not exist).
    error SearchMaguNotActive(MaguId magu, IMaguRegistry.Status status);
    /// @notice The Magu stores blobs, not vectors.
    error SearchNotVectorMagu(MaguId magu);
    /// @notice The Magu has no data committed yet.
    error SearchNoData(MaguId magu);
    /// @notice The query is not the Magu's vector size: 2·dimension bytes, or ceil(dimension / 8) for Hamming.
    error SearchInvalidQuery(uint256 length, uint256 expected);
    /// @notice k must be in [1, maxK].
    error SearchInvalidK(uint256 k, uint256 maxK);
    /// @notice The fee does not fit the task record (2^96 − 1 at most).
    error SearchFeeTooLarge(uint256 fee);
    /// @notice This call is accepted for the task only in blocks [first, last].
    error SearchNotInWindow(uint256 task, uint64 first, uint64 last);
    /// @notice `account` is not an active member of the task's Magu.
    error SearchNotMember(uint256 task, address account);
    /// @notice `account`'s stake no longer backs its memberships (NodeRegistry.isBacked).
    error SearchNotBacked(uint256 task, address account);
    /// @notice A zero commitment is not a commitment.
    error SearchZeroCommitment(uint256 task);
    /// @notice `member` already committed to this task.
    error SearchAlreadyCommitted(uint256 task, address member);
    /// @notice `member` did not commit to this task.
    error SearchNotCommitted(uint256 task, address member);
    /// @notice `member` already revealed its list.
    error SearchAlreadyRevealed(uint256 task, address member);
    /// @notice The revealed list and salt do not hash to `member`'s commitment.
    error SearchCommitmentMismatch(uint256 task, address member);
    /// @notice A list may hold at most k entries.
    error SearchListTooLong(uint256 length, uint256 k);
    /// @notice Entry `index` is not above the one before it (lists are strictly increasing).
    error SearchEntriesNotIncreasing(uint256 index);
    /// @notice Entry `index` has bits set in its low 64 bits, which must be zero.
    error SearchEntryLowBitsSet(uint256 index);
    /// @notice Entry `index` names a fragment past the task's fragment count.
    error SearchEntryFragmentOutOfRange(uint256 index, uint256 fragment, uint256 fragmentCount);
    /// @notice `member` has not revealed a list.
    error SearchNotRevealed(uint256 task, address member);
    /// @notice `member`'s list was already proven false.
    error SearchAlreadyDisputed(uint256 task, address member);
    /// @notice The query given does not hash to the task's query hash.
    error SearchWrongQuery(uint256 task);
    /// @notice The list given for `member` is not the one it revealed (or, at finalize, not empty
    /// although the member did not reveal or was disputed).
    error SearchListMismatch(uint256 task, address member);
    /// @notice The accused entry index is past the list.
    error SearchEntryIndexOutOfRange(uint256 index, uint256 length);
    /// @notice A part of the dispute proof has the wrong shape (size, leaf count, leaf length,
    /// path length); `value` is what was given.
    error SearchMalformedProof(bytes32 part, uint256 value);
    /// @notice A path does not lead where it must: leaf `index`'s path to the tree root of the
    /// first leaf ("leafProof"), or the fragment root of fragment `index` to the task root
    /// ("fragmentProof").
    error SearchInvalidProof(bytes32 part, uint256 index);
    /// @notice The accused entry is true: the record at its position has its id and distance.
    error SearchDisputeRejected(uint256 task, address member, uint256 index);
    /// @notice finalize needs one list per committer.
    error SearchListCount(uint256 expected, uint256 given);
    /// @notice The task was already finalized.
    error SearchAlreadyFinalized(uint256 task);
    /// @notice Nothing to claim.
    error SearchNothingToClaim(address account);

    /// @notice Opens a task on an Active vector Magu with data, escrowing `fee` (approved beforehand).
    /// The Magu's root, fragment count, dimension and metric are fixed for the task.
    /// @param query dimension × int16_be, or for a Hamming Magu ceil(dimension / 8) bytes of packed
    /// bits, MSB first (bits past `dimension` are ignored)
    /// @param k results wanted, 1..maxK
    /// @return taskId the new task's id (ids start at 1)
    function submit(MaguId magu, bytes calldata query, uint256 k, uint256 fee) external returns (uint256 taskId);

    /// @notice Commits the caller (an active member of the task's Magu) to a list, once, up to the
    /// commit deadline.
    function commit(uint256 taskId, bytes32 commitment) external;

    /// @notice Reveals the caller's committed list, after the commit deadline and up to the reveal
    /// deadline. The list must be well formed: strictly increasing, low 64 bits zero, at most k
    /// entries, every fragment below the task's fragment count.
    function reveal(uint256 taskId, bytes32[] calldata entries, bytes32 salt) external;

    /// @notice Proves an entry of `member`'s revealed list false, up to the dispute deadline:
    /// slashes disputeSlash of the member's stake to the caller and drops the member's list.
    /// Reverts SearchDisputeRejected if the entry is true.
    function dispute(uint256 taskId, address member, DisputeProof calldata proof) external;

    /// @notice Proves an entry of `member`'s revealed list names a vector deleted before the task
    /// (a tombstone record under the task's root lists its id), up to the dispute deadline: slashes
    /// as `dispute` does. Reverts SearchDisputeRejected if the record is no tombstone or the slot
    /// holds another id.
    function disputeDeleted(uint256 taskId, address member, DeletionProof calldata proof) external;

    /// @notice Settles a task after the dispute deadline (anyone). `lists` holds every committer's
    /// revealed list in commit order, empty for committers that did not reveal or were disputed.
    function finalize(uint256 taskId, bytes32[][] calldata lists) external;

    /// @notice Pays out the caller's credited fees and refunds.
    function claim() external;

    /// @notice The record of `task`.
    function task(uint256 taskId) external view returns (TaskInfo memory);

    /// @notice `member`'s commitment, reveal and dispute state in `task`.
    function memberTask(uint256 taskId, address member) external view returns (MemberTask memory);

    /// @notice The task's committers in commit order.
    function committers(uint256 taskId) external view returns (address[] memory);

    /// @notice Credited, unclaimed fees and refunds of `account`.
    function claimable(address account) external view returns (uint256);

    /// @notice Σ fees of unfinalized tasks + Σ claimable: what this contract holds.
    function totalHeld() external view returns (uint256);

    /// @notice Number of tasks submitted (ids are 1..count).
    function taskCount() external view returns (uint256);

    /// @notice The configuration.
    function config() external view returns (Config memory);
}
