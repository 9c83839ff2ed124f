// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuard} from "@openzeppelin/contracts/utils/ReentrancyGuard.sol";
import {IMaguRegistry} from "./interfaces/IMaguRegistry.sol";
import {INodeRegistry} from "./interfaces/INodeRegistry.sol";
import {ISearchMarket} from "./interfaces/ISearchMarket.sol";
import {MerkleLib} from "./libraries/MerkleLib.sol";
import {MaguId} from "./types/MaguId.sol";

/// @title SearchMarket
/// @notice Top-k vector search tasks over vector Magus: fee escrow, commit-reveal of the members'
/// result lists, disputes of false entries against the Magu's Merkle root, and the merged answer
/// with the fee split over the members that found it (docs/SEARCH.md; rules in ISearchMarket).
/// @dev Invariant: token.balanceOf(this) >= totalHeld() = Σ fees of unfinalized tasks + Σ
/// claimable, with equality unless someone sent tokens here directly. finalize only moves a fee
/// from the first sum to the second; claim takes from the second.
///
/// Storage per task: two packed words (submitter, block, k, committer count, metric | fee, Magu,
/// fragment count, dimension), the query hash, the root, and the result hash (zero until
/// finalized). Per committer: its address by commit index, its commitment, its list hash (zero
/// until revealed) and a dispute flag written only by a successful dispute.
contract SearchMarket is ISearchMarket, ReentrancyGuard {
    using SafeERC20 for IERC20;

    uint256 private constant _RECORD_ID_SIZE = 8;
    /// @dev Ids from here up are control records (payload chunks, tombstones), never vectors.
    uint64 private constant _CONTROL_ID_MIN = type(uint64).max - 255;
    /// @dev The id of a tombstone record.
    uint64 private constant _TOMBSTONE_ID = type(uint64).max;
    uint256 private constant _KEY_FLIP = 1 << 63;

    struct Task {
        address submitter; // zero: no such task
        uint40 submitBlock;
        uint16 k;
        uint32 committerCount;
        uint8 metric;
        uint96 fee;
        uint64 magu;
        uint32 fragmentCount;
        uint32 dimension;
        uint32 disputes; // successful disputes: finalize reads the dispute flags only if any
        bytes32 queryHash;
        bytes32 root;
        bytes32 resultHash; // zero until finalized (the hash of any list, even empty, is not zero)
    }

    struct Record {
        bytes32 commitment; // zero: not committed
        bytes32 listHash; // zero: not revealed
        bool disputed;
    }

    IERC20 private immutable _token;
    INodeRegistry private immutable _nodes;
    IMaguRegistry private immutable _magus;
    uint64 private immutable _commitBlocks;
    uint64 private immutable _revealBlocks;
    uint64 private immutable _disputeBlocks;
    uint16 private immutable _maxK;
    uint256 private immutable _disputeSlash;
    uint16 private immutable _disputerBps;
    address private immutable _slashSink;
    int64 private immutable _revealPenalty;

    uint256 private _taskCount;
    uint256 private _totalHeld;
    mapping(uint256 taskId => Task) private _tasks;
    mapping(uint256 taskId => mapping(uint256 index => address)) private _committers;
    mapping(uint256 taskId => mapping(address member => Record)) private _records;
    mapping(address account => uint256) private _claimable;

    /// @param cfg deployment parameters (see ISearchMarket.Config)
    constructor(Config memory cfg) {
        if (cfg.token == address(0)) revert SearchInvalidConfig("token", 0);
        if (cfg.nodeRegistry == address(0)) revert SearchInvalidConfig("nodeRegistry", 0);
        if (cfg.maguRegistry == address(0)) revert SearchInvalidConfig("maguRegistry", 0);
        if (cfg.commitBlocks == 0) revert SearchInvalidConfig("commitBlocks", 0);
        if (cfg.revealBlocks == 0) revert SearchInvalidConfig("revealBlocks", 0);
        if (cfg.disputeBlocks == 0) revert SearchInvalidConfig("disputeBlocks", 0);
        if (uint256(cfg.commitBlocks) + cfg.revealBlocks + cfg.disputeBlocks > type(uint32).max) {
            revert SearchInvalidConfig("windows", int256(uint256(cfg.commitBlocks) + cfg.revealBlocks + cfg.disputeBlocks));
        }
        if (cfg.maxK == 0) revert SearchInvalidConfig("maxK", 0);
        if (cfg.disputeSlash == 0) revert SearchInvalidConfig("disputeSlash", 0);
        if (cfg.disputerBps > 10_000) revert SearchInvalidConfig("disputerBps", int256(uint256(cfg.disputerBps)));
        if (cfg.slashSink == address(0)) revert SearchInvalidConfig("slashSink", 0);
        if (cfg.revealPenalty < 0) revert SearchInvalidConfig("revealPenalty", cfg.revealPenalty);
        _token = IERC20(cfg.token);
        _nodes = INodeRegistry(cfg.nodeRegistry);
        _magus = IMaguRegistry(cfg.maguRegistry);
        _commitBlocks = cfg.commitBlocks;
        _revealBlocks = cfg.revealBlocks;
        _disputeBlocks = cfg.disputeBlocks;
        _maxK = cfg.maxK;
        _disputeSlash = cfg.disputeSlash;
        _disputerBps = cfg.disputerBps;
        _slashSink = cfg.slashSink;
        _revealPenalty = cfg.revealPenalty;
    }

    // ---------------------------------------------------------------- task life cycle

    /// @inheritdoc ISearchMarket
    function submit(MaguId magu, bytes calldata query, uint256 k, uint256 fee)
        external
        nonReentrant
        returns (uint256 taskId)
    {
        IMaguRegistry.MaguInfo memory info = _magus.maguInfo(magu);
        if (info.status != IMaguRegistry.Status.Active) revert SearchMaguNotActive(magu, info.status);
        if (info.params.kind != IMaguRegistry.Kind.Vector) revert SearchNotVectorMagu(magu);
        if (info.fragmentCount == 0) revert SearchNoData(magu);
        uint256 expected = _vectorSize(uint8(info.params.metric), info.params.dimension);
        if (query.length != expected) revert SearchInvalidQuery(query.length, expected);
        if (k == 0 || k > _maxK) revert SearchInvalidK(k, _maxK);
        if (fee > type(uint96).max) revert SearchFeeTooLarge(fee);

        taskId = ++_taskCount;
        // An Active Magu exists, so its id is at most maguCount: far below 2^64. Block numbers
        // stay below 2^40 for tens of thousands of years at one block a second.
        Task storage t = _tasks[taskId];
        t.submitter = msg.sender;
        t.submitBlock = uint40(block.number);
        t.k = uint16(k);
        t.metric = uint8(info.params.metric);
        t.fee = uint96(fee);
        t.magu = uint64(MaguId.unwrap(magu));
        t.fragmentCount = info.fragmentCount;
        t.dimension = info.params.dimension;
        t.queryHash = keccak256(query);
        t.root = info.root;
        _totalHeld += fee;
        (uint64 commitDeadline, uint64 revealDeadline, uint64 disputeDeadline) = _deadlines(block.number);
        emit TaskSubmitted(taskId, magu, msg.sender, query, k, fee, commitDeadline, revealDeadline, disputeDeadline);
        if (fee > 0) _token.safeTransferFrom(msg.sender, address(this), fee);
    }

    /// @inheritdoc ISearchMarket
    function commit(uint256 taskId, bytes32 commitment) external {
        Task storage t = _task(taskId);
        uint256 submitBlock = t.submitBlock;
        uint256 commitDeadline = submitBlock + _commitBlocks;
        if (block.number > commitDeadline) revert SearchNotInWindow(taskId, uint64(submitBlock), uint64(commitDeadline));
        if (commitment == bytes32(0)) revert SearchZeroCommitment(taskId);
        if (!_magus.membership(MaguId.wrap(t.magu), msg.sender).active) revert SearchNotMember(taskId, msg.sender);
        // A member whose stake no longer backs its memberships has nothing left to lose to a dispute.
        if (!_nodes.isBacked(msg.sender)) revert SearchNotBacked(taskId, msg.sender);
        Record storage r = _records[taskId][msg.sender];
        if (r.commitment != bytes32(0)) revert SearchAlreadyCommitted(taskId, msg.sender);
        r.commitment = commitment;
        uint32 index = t.committerCount;
        _committers[taskId][index] = msg.sender;
        t.committerCount = index + 1;
        emit ResultCommitted(taskId, msg.sender, commitment);
    }

    /// @inheritdoc ISearchMarket
    function reveal(uint256 taskId, bytes32[] calldata entries, bytes32 salt) external {
        Task storage t = _task(taskId);
        uint256 commitDeadline = uint256(t.submitBlock) + _commitBlocks;
        uint256 revealDeadline = commitDeadline + _revealBlocks;
        if (block.number <= commitDeadline || block.number > revealDeadline) {
            revert SearchNotInWindow(taskId, uint64(commitDeadline + 1), uint64(revealDeadline));
        }
        Record storage r = _records[taskId][msg.sender];
        bytes32 commitment = r.commitment;
        if (commitment == bytes32(0)) revert SearchNotCommitted(taskId, msg.sender);
        if (r.listHash != bytes32(0)) revert SearchAlreadyRevealed(taskId, msg.sender);
        if (keccak256(abi.encode(taskId, msg.sender, salt, entries)) != commitment) {
            revert SearchCommitmentMismatch(taskId, msg.sender);
        }
        _checkList(entries, t.k, t.fragmentCount);
        r.listHash = _hashList(entries);
        emit ResultRevealed(taskId, msg.sender, entries);
    }

    /// @inheritdoc ISearchMarket
    function dispute(uint256 taskId, address member, DisputeProof calldata proof) external nonReentrant {
        Task storage t = _task(taskId);
        Record storage r = _accused(t, taskId, member, proof.entries, proof.index);
        if (keccak256(proof.query) != t.queryHash) revert SearchWrongQuery(taskId);

        uint256 word = uint256(proof.entries[proof.index]);
        Falsehood falsehood;
        uint64 actualId;
        int64 actualDistance;
        if (uint64(word >> 128) >= _CONTROL_ID_MIN) {
            // A payload chunk or a tombstone is never a vector: no data needs proving.
            falsehood = Falsehood.ControlRecord;
        } else if (_notHolder(t, member, uint32(word >> 96))) {
            // An entry from a fragment the member is not placed on: copied from an earlier answer to
            // the same query, not searched. No data needs proving.
            falsehood = Falsehood.NotHolder;
        } else {
            (falsehood, actualId, actualDistance) = _judge(t, word, proof);
        }
        if (falsehood == Falsehood.WrongDistance && actualDistance == _entryDistance(word)) {
            revert SearchDisputeRejected(taskId, member, proof.index);
        }
        _slashLiar(t, r, taskId, member, proof.index, word, falsehood, actualId, actualDistance);
    }

    /// @inheritdoc ISearchMarket
    function disputeDeleted(uint256 taskId, address member, DeletionProof calldata proof) external nonReentrant {
        Task storage t = _task(taskId);
        Record storage r = _accused(t, taskId, member, proof.entries, proof.index);
        uint256 word = uint256(proof.entries[proof.index]);
        if (proof.fragment >= t.fragmentCount) revert SearchMalformedProof("fragment", proof.fragment);
        if (proof.size > MerkleLib.MAX_FRAGMENT_SIZE) revert SearchMalformedProof("size", proof.size);
        uint256 vectorSize = _vectorSize(t.metric, t.dimension);
        uint256 recordSize = _RECORD_ID_SIZE + vectorSize;
        if (proof.slot >= vectorSize / _RECORD_ID_SIZE) revert SearchMalformedProof("slot", proof.slot);
        uint256 start = uint256(proof.position) * recordSize;
        uint256 firstLeaf = _verifyLeaves(
            t, proof.fragment, start, start + recordSize, proof.size, proof.leaves, proof.leafProofs, proof.fragmentProof
        );
        // The tombstone: a record inside the fragment whose id is the tombstone id and whose slot
        // holds the entry's id. The fragment is under the task's root: committed before the task.
        if (start + recordSize > proof.size) revert SearchDisputeRejected(taskId, member, proof.index);
        bytes memory record = _copyRecord(proof.leaves, start - firstLeaf * MerkleLib.LEAF_SIZE, recordSize);
        uint64 recordId;
        uint64 listed;
        uint256 slotOffset = 0x20 + _RECORD_ID_SIZE * (1 + uint256(proof.slot));
        assembly ("memory-safe") {
            recordId := shr(192, mload(add(record, 0x20)))
            listed := shr(192, mload(add(record, slotOffset)))
        }
        if (recordId != _TOMBSTONE_ID || listed != uint64(word >> 128)) {
            revert SearchDisputeRejected(taskId, member, proof.index);
        }
        _slashLiar(t, r, taskId, member, proof.index, word, Falsehood.Deleted, 0, 0);
    }

    /// @dev The checks every dispute starts with: the window is open, `member` revealed `entries`
    /// (checked against its stored hash) and was not disputed yet, and `index` names an entry.
    function _accused(Task storage t, uint256 taskId, address member, bytes32[] calldata entries, uint256 index)
        private
        view
        returns (Record storage r)
    {
        uint256 commitDeadline = uint256(t.submitBlock) + _commitBlocks;
        uint256 disputeDeadline = commitDeadline + _revealBlocks + _disputeBlocks;
        // A list exists only after the commit deadline, so the window opens there.
        if (block.number > disputeDeadline) {
            revert SearchNotInWindow(taskId, uint64(commitDeadline + 1), uint64(disputeDeadline));
        }
        r = _records[taskId][member];
        bytes32 listHash = r.listHash;
        if (listHash == bytes32(0)) revert SearchNotRevealed(taskId, member);
        if (r.disputed) revert SearchAlreadyDisputed(taskId, member);
        if (_hashList(entries) != listHash) revert SearchListMismatch(taskId, member);
        if (index >= entries.length) revert SearchEntryIndexOutOfRange(index, entries.length);
    }

    /// @dev The distance an entry word claims.
    function _entryDistance(uint256 word) private pure returns (int64) {
        return int64(uint64(word >> 192) ^ uint64(_KEY_FLIP));
    }

    /// @dev Marks `member` disputed in the task and slashes it: `disputerBps` of `disputeSlash` to
    /// the caller, the rest to the slash sink. A member that disputes its own false entry from a
    /// second address loses the rest (no stake moves out for free).
    function _slashLiar(
        Task storage t,
        Record storage r,
        uint256 taskId,
        address member,
        uint256 index,
        uint256 word,
        Falsehood falsehood,
        uint64 actualId,
        int64 actualDistance
    ) private {
        r.disputed = true;
        ++t.disputes;
        address[] memory to = new address[](2);
        uint256[] memory amounts = new uint256[](2);
        to[0] = msg.sender;
        amounts[0] = _disputeSlash * _disputerBps / 10_000;
        to[1] = _slashSink;
        amounts[1] = _disputeSlash - amounts[0];
        uint256 slashed = _nodes.slash(member, _disputeSlash, to, amounts);
        emit EntryDisputed(
            taskId,
            member,
            msg.sender,
            index,
            falsehood,
            uint64(word >> 128),
            actualId,
            _entryDistance(word),
            actualDistance,
            slashed
        );
    }

    /// @inheritdoc ISearchMarket
    function finalize(uint256 taskId, bytes32[][] calldata lists) external nonReentrant {
        Task storage t = _task(taskId);
        uint256 disputeDeadline = uint256(t.submitBlock) + _commitBlocks + _revealBlocks + _disputeBlocks;
        if (block.number <= disputeDeadline) {
            revert SearchNotInWindow(taskId, uint64(disputeDeadline + 1), type(uint64).max);
        }
        if (t.resultHash != bytes32(0)) revert SearchAlreadyFinalized(taskId);
        uint256 m = t.committerCount;
        if (lists.length != m) revert SearchListCount(m, lists.length);

        // The lists must be what each committer revealed; silent and disputed committers count empty.
        address[] memory members = new address[](m);
        bool[] memory silent = new bool[](m);
        uint256[] memory starts = new uint256[](m); // calldata offsets of the lists' words
        uint256[] memory ends = new uint256[](m);
        bool anyDisputed = t.disputes != 0;
        for (uint256 i; i < m; ++i) {
            address member = _committers[taskId][i];
            members[i] = member;
            Record storage r = _records[taskId][member];
            bytes32 listHash = r.listHash;
            bytes32[] calldata list = lists[i];
            if (listHash == bytes32(0) || (anyDisputed && r.disputed)) {
                if (list.length != 0) revert SearchListMismatch(taskId, member);
                silent[i] = listHash == bytes32(0);
            } else if (_hashList(list) != listHash) {
                revert SearchListMismatch(taskId, member);
            }
            starts[i] = _offset(list);
            ends[i] = starts[i] + 32 * list.length;
        }

        (bytes32[] memory result, uint256[] memory credits, uint256 totalCredits) = _merge(starts, ends, t.k);

        uint256 fee = t.fee;
        uint256 perCredit;
        uint256 refund = fee;
        if (totalCredits > 0) {
            perCredit = fee / totalCredits;
            refund = fee - perCredit * totalCredits;
        }
        if (perCredit > 0) {
            for (uint256 i; i < m; ++i) {
                if (credits[i] > 0) _claimable[members[i]] += credits[i] * perCredit;
            }
        }
        if (refund > 0) _claimable[t.submitter] += refund;
        t.resultHash = keccak256(abi.encodePacked(result));
        emit TaskFinalized(taskId, result, totalCredits, perCredit, refund);

        if (_revealPenalty != 0) {
            for (uint256 i; i < m; ++i) {
                if (silent[i]) _nodes.adjustReputation(members[i], -_revealPenalty);
            }
        }
    }

    /// @inheritdoc ISearchMarket
    function claim() external nonReentrant {
        uint256 amount = _claimable[msg.sender];
        if (amount == 0) revert SearchNothingToClaim(msg.sender);
        _claimable[msg.sender] = 0;
        _totalHeld -= amount;
        emit Claimed(msg.sender, amount);
        _token.safeTransfer(msg.sender, amount);
    }

    // ---------------------------------------------------------------- views

    /// @inheritdoc ISearchMarket
    function task(uint256 taskId) external view returns (TaskInfo memory info) {
        Task storage t = _task(taskId);
        (uint64 commitDeadline, uint64 revealDeadline, uint64 disputeDeadline) = _deadlines(t.submitBlock);
        info = TaskInfo({
            magu: MaguId.wrap(t.magu),
            submitter: t.submitter,
            queryHash: t.queryHash,
            k: t.k,
            fee: t.fee,
            root: t.root,
            fragmentCount: t.fragmentCount,
            dimension: t.dimension,
            metric: IMaguRegistry.Metric(t.metric),
            submitBlock: t.submitBlock,
            commitDeadline: commitDeadline,
            revealDeadline: revealDeadline,
            disputeDeadline: disputeDeadline,
            committers: t.committerCount,
            finalized: t.resultHash != bytes32(0),
            resultHash: t.resultHash
        });
    }

    /// @inheritdoc ISearchMarket
    function memberTask(uint256 taskId, address member) external view returns (MemberTask memory) {
        _task(taskId);
        Record storage r = _records[taskId][member];
        return MemberTask({
            commitment: r.commitment,
            revealed: r.listHash != bytes32(0),
            disputed: r.disputed,
            listHash: r.listHash
        });
    }

    /// @inheritdoc ISearchMarket
    function committers(uint256 taskId) external view returns (address[] memory list) {
        Task storage t = _task(taskId);
        list = new address[](t.committerCount);
        for (uint256 i; i < list.length; ++i) {
            list[i] = _committers[taskId][i];
        }
    }

    /// @inheritdoc ISearchMarket
    function claimable(address account) external view returns (uint256) {
        return _claimable[account];
    }

    /// @inheritdoc ISearchMarket
    function totalHeld() external view returns (uint256) {
        return _totalHeld;
    }

    /// @inheritdoc ISearchMarket
    function taskCount() external view returns (uint256) {
        return _taskCount;
    }

    /// @inheritdoc ISearchMarket
    function config() external view returns (Config memory) {
        return Config({
            token: address(_token),
            nodeRegistry: address(_nodes),
            maguRegistry: address(_magus),
            commitBlocks: _commitBlocks,
            revealBlocks: _revealBlocks,
            disputeBlocks: _disputeBlocks,
            maxK: _maxK,
            disputeSlash: _disputeSlash,
            disputerBps: _disputerBps,
            slashSink: _slashSink,
            revealPenalty: _revealPenalty
        });
    }

    // ---------------------------------------------------------------- internals

    function _task(uint256 taskId) private view returns (Task storage t) {
        t = _tasks[taskId];
        if (t.submitter == address(0)) revert SearchUnknownTask(taskId);
    }

    function _deadlines(uint256 submitBlock)
        private
        view
        returns (uint64 commitDeadline, uint64 revealDeadline, uint64 disputeDeadline)
    {
        commitDeadline = uint64(submitBlock + _commitBlocks);
        revealDeadline = commitDeadline + _revealBlocks;
        disputeDeadline = revealDeadline + _disputeBlocks;
    }

    /// @dev A revealed list: at most k words, strictly increasing, low 64 bits zero, fragments in range.
    function _checkList(bytes32[] calldata entries, uint256 k, uint256 fragmentCount) private pure {
        uint256 n = entries.length;
        if (n > k) revert SearchListTooLong(n, k);
        uint256 previous;
        for (uint256 i; i < n; ++i) {
            uint256 word = uint256(entries[i]);
            if (i > 0 && word <= previous) revert SearchEntriesNotIncreasing(i);
            if (uint64(word) != 0) revert SearchEntryLowBitsSet(i);
            uint256 fragment = uint32(word >> 96);
            if (fragment >= fragmentCount) revert SearchEntryFragmentOutOfRange(i, fragment, fragmentCount);
            previous = word;
        }
    }

    /// @dev keccak256(abi.encodePacked(list)) without allocating.
    function _hashList(bytes32[] calldata list) private pure returns (bytes32 h) {
        assembly ("memory-safe") {
            let ptr := mload(0x40)
            let len := shl(5, list.length)
            calldatacopy(ptr, list.offset, len)
            h := keccak256(ptr, len)
        }
    }

    /// @dev The calldata offset of a list's first word.
    function _offset(bytes32[] calldata list) private pure returns (uint256 offset) {
        assembly ("memory-safe") {
            offset := list.offset
        }
    }

    /// @dev The answer: the lists (words at calldata [starts[i], ends[i])) merged in word order,
    /// the first word of each vector id, at most k. Words sharing (distance, id) are consecutive in
    /// that order; when such a group is taken into the answer, every list holding a word of it earns
    /// one credit (once, even if it holds several words of the group at different positions). A
    /// group whose id is already answered (at a smaller distance) is skipped and earns nothing.
    /// Each list's head (next word, or 2^256 − 1 once exhausted: no entry has its low bits set) is kept in memory; a step takes the
    /// smallest head's group and advances every list past it. Written in assembly: finalize's gas
    /// goal leaves no room for checked indexing of nested calldata arrays in this loop.
    function _merge(uint256[] memory starts, uint256[] memory ends, uint256 k)
        private
        pure
        returns (bytes32[] memory result, uint256[] memory credits, uint256 totalCredits)
    {
        uint256 m = starts.length;
        credits = new uint256[](m);
        uint256[] memory heads = new uint256[](m);
        result = new bytes32[](k);
        assembly ("memory-safe") {
            let none := not(0)
            let mask := 0xffffffffffffffff
            let hp := add(heads, 0x20)
            let sp := add(starts, 0x20)
            let ep := add(ends, 0x20)
            let cp := add(credits, 0x20)
            let rp := add(result, 0x20)
            let span := shl(5, m)
            for { let o := 0 } lt(o, span) { o := add(o, 0x20) } {
                let h := none
                let p := mload(add(sp, o))
                if lt(p, mload(add(ep, o))) { h := calldataload(p) }
                mstore(add(hp, o), h)
            }
            let n := 0
            for {} lt(n, k) {} {
                let best := none
                for { let o := 0 } lt(o, span) { o := add(o, 0x20) } {
                    let h := mload(add(hp, o))
                    if lt(h, best) { best := h }
                }
                if eq(best, none) { break }
                let group := shr(128, best) // (distance key, id)
                let id := and(group, mask)
                let fresh := 1
                for { let j := 0 } lt(j, n) { j := add(j, 1) } {
                    if eq(and(shr(128, mload(add(rp, shl(5, j)))), mask), id) {
                        fresh := 0
                        break
                    }
                }
                if fresh {
                    mstore(add(rp, shl(5, n)), best)
                    n := add(n, 1)
                }
                for { let o := 0 } lt(o, span) { o := add(o, 0x20) } {
                    let h := mload(add(hp, o))
                    if and(iszero(eq(h, none)), eq(shr(128, h), group)) {
                        let p := add(mload(add(sp, o)), 0x20)
                        let e := mload(add(ep, o))
                        h := none
                        for {} lt(p, e) { p := add(p, 0x20) } {
                            let w := calldataload(p)
                            if iszero(eq(shr(128, w), group)) {
                                h := w
                                break
                            }
                        }
                        mstore(add(sp, o), p)
                        mstore(add(hp, o), h)
                        if fresh {
                            mstore(add(cp, o), add(mload(add(cp, o)), 1))
                            totalCredits := add(totalCredits, 1)
                        }
                    }
                }
            }
            mstore(result, n)
        }
    }

    /// @dev Checks the proof of the record behind `word` and says what may be wrong with the entry:
    /// RecordPastEnd, WrongId, or else WrongDistance, which the caller compares (equal: the entry is true).
    /// @dev Whether `member`, still an active member of the task's Magu (its slot, and so its
    /// placement, unchanged since it revealed), is not among the holders of `fragment`.
    function _notHolder(Task storage t, address member, uint256 fragment) private view returns (bool) {
        if (fragment >= t.fragmentCount) return false; // _checkList refused it at reveal
        MaguId magu = MaguId.wrap(t.magu);
        if (!_magus.membership(magu, member).active) return false;
        address[] memory holding = _magus.holders(magu, fragment);
        for (uint256 i; i < holding.length; ++i) {
            if (holding[i] == member) return false;
        }
        return true;
    }

    function _judge(Task storage t, uint256 word, DisputeProof calldata proof)
        private
        view
        returns (Falsehood falsehood, uint64 actualId, int64 actualDistance)
    {
        uint256 dimension = t.dimension;
        uint256 recordSize = _RECORD_ID_SIZE + _vectorSize(t.metric, dimension);
        uint256 start = uint256(uint32(word >> 64)) * recordSize;
        uint256 size = proof.size;
        if (size > MerkleLib.MAX_FRAGMENT_SIZE) revert SearchMalformedProof("size", size);
        uint256 firstLeaf = _verifyLeaves(
            t, uint32(word >> 96), start, start + recordSize, size, proof.leaves, proof.leafProofs, proof.fragmentProof
        );
        if (start + recordSize > size) return (Falsehood.RecordPastEnd, 0, 0);

        bytes memory record = _copyRecord(proof.leaves, start - firstLeaf * MerkleLib.LEAF_SIZE, recordSize);
        assembly ("memory-safe") {
            actualId := shr(192, mload(add(record, 0x20)))
        }
        actualDistance = int64(_distance(proof.query, record, dimension, t.metric));
        falsehood = actualId != uint64(word >> 128) ? Falsehood.WrongId : Falsehood.WrongDistance;
    }

    /// @dev Verifies that `proof.leaves` are the fragment's leaves over bytes [start, end) (capped
    /// at its last leaf) and that the fragment is `fragment` of the task root. Returns the first
    /// leaf's index.
    function _verifyLeaves(
        Task storage t,
        uint256 fragment,
        uint256 start,
        uint256 end,
        uint256 size,
        bytes[] calldata leaves,
        bytes32[][] calldata leafProofs,
        bytes32[] calldata fragmentProof
    ) private view returns (uint256 first) {
        uint256 leafCount = MerkleLib.leafCount(size);
        first = start / MerkleLib.LEAF_SIZE;
        uint256 last = (end - 1) / MerkleLib.LEAF_SIZE;
        if (first >= leafCount) first = leafCount - 1;
        if (last >= leafCount) last = leafCount - 1;
        uint256 count = leaves.length;
        if (count != last - first + 1) revert SearchMalformedProof("leaves", count);
        if (leafProofs.length != count) revert SearchMalformedProof("leafProofs", leafProofs.length);
        uint256 depth = MerkleLib.depthFor(leafCount);
        bytes32 treeRoot;
        for (uint256 j; j < count; ++j) {
            bytes calldata leaf = leaves[j];
            if (leaf.length != MerkleLib.LEAF_SIZE) revert SearchMalformedProof("leaf", leaf.length);
            bytes32[] calldata path = leafProofs[j];
            if (path.length != depth) revert SearchMalformedProof("leafProof", path.length);
            bytes32 root = MerkleLib.processProof(MerkleLib.hashLeaf(leaf), first + j, path);
            if (j == 0) treeRoot = root;
            else if (root != treeRoot) revert SearchInvalidProof("leafProof", j);
        }
        if (fragmentProof.length != MerkleLib.depthFor(t.fragmentCount)) {
            revert SearchMalformedProof("fragmentProof", fragmentProof.length);
        }
        bytes32 fragmentRoot = MerkleLib.hashFragmentRoot(uint64(size), treeRoot);
        if (MerkleLib.processProof(fragmentRoot, fragment, fragmentProof) != t.root) {
            revert SearchInvalidProof("fragmentProof", fragment);
        }
    }

    /// @dev The `length` bytes from byte `offset` of the first leaf on, across leaf boundaries.
    function _copyRecord(bytes[] calldata leaves, uint256 offset, uint256 length)
        private
        pure
        returns (bytes memory record)
    {
        record = new bytes(length);
        uint256 filled;
        for (uint256 j; filled < length; ++j) {
            bytes calldata leaf = leaves[j];
            uint256 take = MerkleLib.LEAF_SIZE - offset;
            if (take > length - filled) take = length - filled;
            assembly ("memory-safe") {
                calldatacopy(add(add(record, 0x20), filled), add(leaf.offset, offset), take)
            }
            filled += take;
            offset = 0;
        }
    }

    /// @dev The bytes of a vector (a query, or a record after its id): `dimension` int16 components,
    /// or for a Hamming Magu `dimension` bits packed MSB first.
    function _vectorSize(uint8 metric, uint256 dimension) private pure returns (uint256) {
        return metric == uint8(IMaguRegistry.Metric.Hamming) ? (dimension + 7) / 8 : 2 * dimension;
    }

    /// @dev The canonical distance (docs/SEARCH.md) between the query and the record's vector,
    /// exact in int256: L2 Σ (q_i − v_i)², inner product and cosine −Σ q_i · v_i (a cosine Magu's
    /// vectors and queries are normalised by the client before quantisation), Hamming the number of
    /// differing bits among the first `dimension`.
    function _distance(bytes calldata query, bytes memory record, uint256 dimension, uint8 metric)
        private
        pure
        returns (int256 sum)
    {
        if (metric == uint8(IMaguRegistry.Metric.Hamming)) return int256(_hamming(query, record, dimension));
        bool l2 = metric == uint8(IMaguRegistry.Metric.L2);
        assembly ("memory-safe") {
            // Component i of the record is the int16 at record + 32 + 8 + 2i; the word ending with it
            // starts at record + 10 + 2i, so every load stays inside the record's allocation.
            let v := add(record, 10)
            let q := query.offset
            for { let i := 0 } lt(i, dimension) { i := add(i, 1) } {
                let a := signextend(1, shr(240, calldataload(add(q, shl(1, i)))))
                let b := signextend(1, mload(add(v, shl(1, i))))
                switch l2
                case 1 {
                    let d := sub(a, b)
                    sum := add(sum, mul(d, d))
                }
                default { sum := sub(sum, mul(a, b)) }
            }
        }
    }

    /// @dev popcount(q XOR v) over the first `dimension` bits of the query and of the record's
    /// packed bits (after its 8-byte id), a 256-bit word at a time: the bits past `dimension` in
    /// the last word (padding, or bytes past the record or query) are masked off. About 35 opcodes
    /// (~110 gas) a 256-bit word, so even a 4096-bit record (16 words) costs under 2,000 gas; a
    /// whole successful dispute of a 300-bit record measured 226k-277k gas (SearchMarketHamming.t.sol
    /// with --gas-stats), nearly all of it the Merkle proofs and the slash.
    function _hamming(bytes calldata query, bytes memory record, uint256 dimension)
        private
        pure
        returns (uint256 count)
    {
        assembly ("memory-safe") {
            let m1 := 0x5555555555555555555555555555555555555555555555555555555555555555
            let m2 := 0x3333333333333333333333333333333333333333333333333333333333333333
            let m4 := 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f
            let m8 := 0x00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff00ff
            let h16 := 0x0001000100010001000100010001000100010001000100010001000100010001
            let v := add(record, 0x28) // past the length word and the id
            let q := query.offset
            for { let bit := 0 } lt(bit, dimension) { bit := add(bit, 256) } {
                let at := shr(3, bit)
                let x := xor(calldataload(add(q, at)), mload(add(v, at)))
                let left := sub(dimension, bit)
                if lt(left, 256) { x := and(x, not(sub(shl(sub(256, left), 1), 1))) }
                // SWAR popcount: bit pairs, nibbles, bytes, 16-bit lanes, then the lanes summed
                // into the top lane by one multiplication (at most 256: no lane overflows).
                x := sub(x, and(shr(1, x), m1))
                x := add(and(x, m2), and(shr(2, x), m2))
                x := and(add(x, shr(4, x)), m4)
                x := and(add(x, shr(8, x)), m8)
                count := add(count, shr(240, mul(x, h16)))
            }
        }
    }
}
