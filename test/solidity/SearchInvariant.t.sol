// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {ISearchMarket} from "../../contracts/interfaces/ISearchMarket.sol";
import {MaguId} from "../../contracts/types/MaguId.sol";
import {SearchFixture} from "./utils/SearchFixture.sol";
import {Test} from "./utils/Test.sol";

/// @notice Random sequences of search tasks: submit (any fee, any k), every member commits (one may
/// lie), reveal (some stay silent), dispute the liar, finalize, claim, roll. It deploys the whole
/// system itself (SearchFixture) and keeps its own books of what SearchMarket and NodeRegistry
/// must hold, from the fees it paid in, the claims it took out and the slashes worked out here.
contract SearchHandler is SearchFixture {
    struct TaskState {
        MaguId magu;
        uint256 qSeed;
        uint256 k;
        uint8 stage; // 0 submitted, 1 committed, 2 revealed, 3 finalized
        uint256 liar; // slot + 1 of the member whose list lies, 0 for none
        uint256 silent; // bit i: member i did not reveal
        bool disputed;
    }

    uint256[] public tasks;
    mapping(uint256 task => TaskState) internal state;
    uint256 public ghostMarket;
    uint256 public ghostRegistry;
    mapping(bytes32 action => uint256) public calls;

    constructor() {
        setUp();
        ghostRegistry = token.balanceOf(address(registry));
    }

    function _count(bytes32 action) internal {
        ++calls[action];
    }

    function _task(uint256 seed, uint8 stage) internal view returns (uint256 id, bool ok) {
        uint256 n = tasks.length;
        for (uint256 k; k < n; ++k) {
            id = tasks[(seed + k) % n];
            if (state[id].stage == stage) return (id, true);
        }
    }

    /// @dev Member `i`'s list: honest, or (the liar) its best entry one closer than it is.
    function _list(uint256 id, uint256 i) internal view returns (bytes32[] memory list) {
        TaskState storage t = state[id];
        list = honestList(t.magu, queryOf(t.qSeed), membersOf(t.magu)[i], t.k);
        if (t.liar == i + 1) {
            uint256 w = uint256(list[0]);
            int256 d = distanceOf(bytes32(w));
            list[0] = word(d - 1, uint64(w >> 128), uint32(w >> 96), uint32(w >> 64));
        }
    }

    function submit(uint256 maguSeed, uint256 qSeed, uint256 feeRaw, uint256 kRaw) external {
        MaguId m = maguSeed % 2 == 0 ? l2Magu : ipMagu;
        uint256 fee = bound(feeRaw, 0, 2_000 ether);
        uint256 k = bound(kRaw, 1, MAX_K);
        uint256 id = submitTask(m, queryOf(qSeed % 64), k, fee);
        tasks.push(id);
        state[id] = TaskState({magu: m, qSeed: qSeed % 64, k: k, stage: 0, liar: 0, silent: 0, disputed: false});
        ghostMarket += fee;
        _count("submit");
    }

    function commit(uint256 taskSeed, uint256 lieSeed) external {
        (uint256 id, bool ok) = _task(taskSeed, 0);
        if (!ok || blockNumber() > market.task(id).commitDeadline) return;
        TaskState storage t = state[id];
        if (lieSeed % 3 == 0) t.liar = busyIndex(t.magu) + 1;
        address[] memory members = membersOf(t.magu);
        for (uint256 i; i < members.length; ++i) {
            commitList(id, members[i], _list(id, i));
        }
        t.stage = 1;
        _count("commit");
    }

    function reveal(uint256 taskSeed, uint256 silentSeed) external {
        (uint256 id, bool ok) = _task(taskSeed, 1);
        if (!ok) return;
        ISearchMarket.TaskInfo memory info = market.task(id);
        if (blockNumber() <= info.commitDeadline) vm.roll(info.commitDeadline + 1);
        if (blockNumber() > info.revealDeadline) return; // too late: everyone stays silent
        TaskState storage t = state[id];
        // One member in four (by the seed's bits) stays silent.
        t.silent = silentSeed & (silentSeed >> 8) & 0x1f;
        address[] memory members = membersOf(t.magu);
        for (uint256 i; i < members.length; ++i) {
            if (t.silent & (1 << i) == 0) revealList(id, members[i], _list(id, i));
        }
        t.stage = 2;
        _count("reveal");
    }

    function dispute(uint256 taskSeed) external {
        (uint256 id, bool ok) = _task(taskSeed, 2);
        if (!ok) return;
        TaskState storage t = state[id];
        if (t.liar == 0 || t.disputed || t.silent & (1 << (t.liar - 1)) != 0) return;
        if (blockNumber() > market.task(id).disputeDeadline) return;
        address liar = membersOf(t.magu)[t.liar - 1];
        uint256 held = registry.stakeOf(liar) + registry.nodeInfo(liar).unbonding;
        ISearchMarket.DisputeProof memory proof = proofOf(t.magu, queryOf(t.qSeed), _list(id, t.liar - 1), 0);
        vm.prank(disputer);
        market.dispute(id, liar, proof);
        t.disputed = true;
        ghostRegistry -= held < DISPUTE_SLASH ? held : DISPUTE_SLASH;
        _count("dispute");
    }

    function finalize(uint256 taskSeed, uint256 stageSeed) external {
        (uint256 id, bool ok) = _task(taskSeed, uint8(stageSeed % 3));
        if (!ok) return;
        ISearchMarket.TaskInfo memory info = market.task(id);
        if (blockNumber() <= info.disputeDeadline) vm.roll(info.disputeDeadline + 1);
        TaskState storage t = state[id];
        address[] memory committers = market.committers(id);
        bytes32[][] memory lists = new bytes32[][](committers.length);
        address[] memory members = membersOf(t.magu);
        for (uint256 c; c < committers.length; ++c) {
            for (uint256 i; i < members.length; ++i) {
                if (members[i] != committers[c]) continue;
                bool silent = t.stage < 2 || t.silent & (1 << i) != 0;
                bool dropped = t.disputed && t.liar == i + 1;
                if (!silent && !dropped) lists[c] = _list(id, i);
            }
        }
        market.finalize(id, lists);
        t.stage = 3;
        _count("finalize");
    }

    function claim(uint256 actorSeed) external {
        address[] memory members = membersOf(l2Magu);
        uint256 n = members.length + 2;
        for (uint256 k; k < n; ++k) {
            uint256 i = (actorSeed + k) % n;
            address a = i < members.length ? members[i] : (i == members.length ? client : disputer);
            uint256 owed = market.claimable(a);
            if (owed == 0) continue;
            uint256 had = token.balanceOf(a);
            vm.prank(a);
            market.claim();
            require(token.balanceOf(a) == had + owed, "handler: SearchMarket paid what it owed");
            ghostMarket -= owed;
            _count("claim");
            return;
        }
    }

    function rollBlocks(uint256 blocks) external {
        skipBlocks(bound(blocks, 1, 12));
        _count("roll");
    }

    /// @notice The contracts and the handler's books, for the invariant test.
    function contractsUnderTest() external view returns (address, address, address, address, address) {
        return (address(token), address(market), address(registry), address(magus), address(rewards));
    }
}

/// @notice SearchMarket in the money invariant: after every step of random task sequences, every
/// contract that holds tokens holds exactly what its books say, and SearchMarket and NodeRegistry
/// hold what the handler's own books say.
contract SearchInvariantTest is Test {
    SearchHandler internal handler;

    function setUp() public {
        handler = new SearchHandler();
        bytes4[] memory selectors = new bytes4[](8);
        selectors[0] = SearchHandler.submit.selector;
        selectors[1] = SearchHandler.commit.selector;
        selectors[2] = SearchHandler.reveal.selector;
        selectors[3] = SearchHandler.dispute.selector;
        selectors[4] = SearchHandler.finalize.selector;
        selectors[5] = SearchHandler.claim.selector;
        selectors[6] = SearchHandler.rollBlocks.selector;
        selectors[7] = SearchHandler.commit.selector; // commits twice as likely: most tasks get answers
        targetContract(address(handler));
        targetSelector(FuzzSelector({addr: address(handler), selectors: selectors}));
    }

    function _books() internal view {
        (address tokenAddr, address market, address registry, address magus, address rewards) =
            handler.contractsUnderTest();
        IERC20Like token = IERC20Like(tokenAddr);
        assertEq(token.balanceOf(market), IHeld(market).totalHeld(), "SearchMarket == its books");
        assertEq(token.balanceOf(market), handler.ghostMarket(), "SearchMarket == the handler's books");
        assertEq(token.balanceOf(registry), IHeld(registry).totalHeld(), "NodeRegistry == its books");
        assertEq(token.balanceOf(registry), handler.ghostRegistry(), "NodeRegistry == the handler's books");
        assertEq(token.balanceOf(magus), IHeld(magus).totalHeld(), "MaguRegistry == its books");
        assertGe(token.balanceOf(rewards), IRewardsLike(rewards).totalClaimable(), "Rewards covers its credits");
    }

    function invariant_everyContractHoldsWhatItsBooksSay() public view {
        _books();
    }

    /// @notice A scripted run through every action, checking the books after each step, so a
    /// handler that silently stopped doing anything would fail here.
    function test_everySearchActionRuns() public {
        _run("submit", abi.encodeCall(SearchHandler.submit, (0, 3, 500 ether, 10)));
        _run("commit", abi.encodeCall(SearchHandler.commit, (0, 0))); // with a liar
        _run("reveal", abi.encodeCall(SearchHandler.reveal, (0, 0)));
        _run("dispute", abi.encodeCall(SearchHandler.dispute, (0)));
        _run("finalize", abi.encodeCall(SearchHandler.finalize, (0, 2)));
        _run("claim", abi.encodeCall(SearchHandler.claim, (0)));
        _run("submit", abi.encodeCall(SearchHandler.submit, (1, 5, 0, 3)));
        _run("finalize", abi.encodeCall(SearchHandler.finalize, (0, 0))); // nobody committed
        _run("roll", abi.encodeCall(SearchHandler.rollBlocks, (5)));
    }

    function _run(bytes32 action, bytes memory data) internal {
        uint256 before = handler.calls(action);
        (bool ok, bytes memory ret) = address(handler).call(data);
        if (!ok) {
            assembly ("memory-safe") {
                revert(add(ret, 32), mload(ret))
            }
        }
        assertGt(handler.calls(action), before, "the action ran");
        _books();
    }
}

interface IERC20Like {
    function balanceOf(address) external view returns (uint256);
}

interface IHeld {
    function totalHeld() external view returns (uint256);
}

interface IRewardsLike {
    function totalClaimable() external view returns (uint256);
}
