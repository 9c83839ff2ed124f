// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {DeployedChallengeManager as ChallengeManager, DeployedMaguAccess as MaguAccess, DeployedMaguRegistry as MaguRegistry, DeployedMuriToken as MuriToken, DeployedNodeRegistry as NodeRegistry, DeployedRewards as Rewards} from "./Deployed.sol";
import {IChallengeManager} from "../../../contracts/interfaces/IChallengeManager.sol";
import {IMaguAccess} from "../../../contracts/interfaces/IMaguAccess.sol";
import {IMaguRegistry} from "../../../contracts/interfaces/IMaguRegistry.sol";
import {INodeRegistry} from "../../../contracts/interfaces/INodeRegistry.sol";
import {IRewards} from "../../../contracts/interfaces/IRewards.sol";
import {MaguId} from "../../../contracts/types/MaguId.sol";
import {DataSet, MerkleBuilder} from "./MerkleBuilder.sol";
import {Test} from "./Test.sol";

/// @title FixtureBase
/// @notice State and helpers shared by the tests and the invariant handler: the deployed
/// contracts, default parameters, and helpers to register nodes, create and form Magus, commit
/// deterministic data sets and answer challenges honestly. Deploys nothing (see Fixture).
abstract contract FixtureBase is Test {
    /// @notice Everything the deployment takes; `defaultParams()` is what most tests use.
    struct Params {
        uint256 initialSupply;
        uint256 minStake;
        uint64 unbondingBlocks;
        uint32 maxNodes;
        uint64 selectionEpochBlocks;
        uint64 reputationDecayBlocks;
        uint256 formationDeposit;
        uint64 periodBlocks;
        uint256 stakePerMember;
        uint256 repairBounty;
        uint8 maxMembers;
        uint32 maxFragments;
        uint64 maxDurationPeriods;
        uint8 samples;
        uint16 slashBps;
        uint16 markerBps;
        uint32 maxMisses;
        uint64 graceBlocks;
        uint64 markWindowBlocks;
        uint64 epochBlocks;
        uint256 emissionPerEpoch;
        uint16 validatorShareBps;
        uint16 maxWeights;
        uint16 maxValidatorsPerEpoch;
        uint16 quorumBps;
        uint16 quorumLookbackEpochs;
        uint256 minQuorumStake;
    }

    uint256 internal constant INITIAL_SUPPLY = 1_000_000_000 ether;
    uint256 internal constant MIN_STAKE = 100 ether;
    uint64 internal constant UNBONDING_BLOCKS = 50;
    uint32 internal constant MAX_NODES = 64;
    uint64 internal constant SELECTION_EPOCH_BLOCKS = 4;
    uint64 internal constant REPUTATION_DECAY_BLOCKS = 100;
    uint256 internal constant FORMATION_DEPOSIT = 5 ether;
    uint64 internal constant PERIOD_BLOCKS = 20;
    uint256 internal constant STAKE_PER_MEMBER = 50 ether;
    uint256 internal constant REPAIR_BOUNTY = 10 ether;
    uint8 internal constant MAX_MEMBERS = 16;
    uint32 internal constant MAX_FRAGMENTS = 4096;
    uint64 internal constant MAX_DURATION = 100;
    uint32 internal constant FETCH_FRAGMENTS_PER_PERIOD = 64;
    uint8 internal constant SAMPLES = 4;
    uint16 internal constant SLASH_BPS = 1000;
    uint16 internal constant MARKER_BPS = 2000;
    uint32 internal constant MAX_MISSES = 2;
    uint64 internal constant GRACE_BLOCKS = 5;
    /// @dev Three periods after a deadline to mark its miss.
    uint64 internal constant MARK_WINDOW_BLOCKS = 3 * PERIOD_BLOCKS;
    /// @dev Settle once the last period's misses can no longer be marked.
    uint64 internal constant SETTLE_DELAY_BLOCKS = GRACE_BLOCKS + MARK_WINDOW_BLOCKS;
    uint64 internal constant EPOCH_BLOCKS = 100;
    uint256 internal constant EMISSION = 1000 ether;
    uint16 internal constant VALIDATOR_SHARE_BPS = 2000;
    uint16 internal constant MAX_WEIGHTS = 32;
    /// @dev 16 x 32 = 512 entries, the most Rewards accepts (its cost bound).
    uint16 internal constant MAX_VALIDATORS_PER_EPOCH = 16;
    /// @dev An epoch is distributed if it counts half the largest stake of the 8 epochs before it
    /// and at least one minimum stake.
    uint16 internal constant QUORUM_BPS = 5000;
    uint16 internal constant QUORUM_LOOKBACK_EPOCHS = 8;
    uint256 internal constant MIN_QUORUM_STAKE = MIN_STAKE;
    /// @dev Blocks from a payer's requestWithdraw to its withdraw in MaguAccess.
    uint64 internal constant WITHDRAW_DELAY_BLOCKS = 20;

    /// @notice Storage offered by every test node (1 TiB).
    uint64 internal constant NODE_CAPACITY = 1 << 40;
    /// @notice Default Magu price per stored fragment copy and period.
    uint256 internal constant PRICE = 1 ether;
    uint8 internal constant ROLE_NODE = 1;
    uint8 internal constant ROLE_VALIDATOR = 2;

    MuriToken internal token;
    NodeRegistry internal registry;
    MaguRegistry internal magus;
    ChallengeManager internal challenges;
    Rewards internal rewards;
    /// @notice Deployed only by the tests that use it (`deployAccess`).
    MaguAccess internal access;
    Params internal params;

    /// @dev The data set committed to each Magu: its seed and all fragment roots.
    mapping(uint256 magu => uint256 seed) internal dataSeed;
    mapping(uint256 magu => bytes32[] roots) internal dataRoots;

    uint256 private _actorCount;
    /// @notice Empty append proof and acknowledgements, for calls that revert before using them.
    bytes32[] internal noExtension;
    bytes[] internal noAcks;

    // ------------------------------------------------------------ actors and stake

    /// @notice A fresh, labelled actor address.
    function newActor(string memory prefix) internal returns (address) {
        return makeAddr(string.concat(prefix, "-", toString(++_actorCount)));
    }

    /// @notice Gives `to` `amount` MURI from this test's initial supply.
    function fund(address to, uint256 amount) internal {
        token.transfer(to, amount);
    }

    function peerIdOf(address who) internal pure returns (bytes memory) {
        // A libp2p identity multihash look-alike: 0x00 (identity) 0x14 (20 bytes) ‖ address.
        return abi.encodePacked(hex"0014", who);
    }

    function multiaddrs() internal pure returns (string[] memory list) {
        list = new string[](1);
        list[0] = "/ip4/127.0.0.1/tcp/4001";
    }

    /// @notice Funds `who` and registers it with `stake` and `roles`.
    function registerNode(address who, uint256 stake, uint8 roles) internal {
        fund(who, stake);
        vm.startPrank(who);
        token.approve(address(registry), stake);
        registry.register(stake, roles, NODE_CAPACITY, peerIdOf(who), multiaddrs());
        vm.stopPrank();
    }

    /// @notice Registers `count` fresh storage nodes with `stake` each.
    function registerNodes(uint256 count, uint256 stake) internal returns (address[] memory list) {
        list = new address[](count);
        for (uint256 i; i < count; ++i) {
            list[i] = newActor("node");
            registerNode(list[i], stake, ROLE_NODE);
        }
    }

    /// @notice Registers `count` fresh validators (validator role only) with `stake` each.
    function registerValidators(uint256 count, uint256 stake) internal returns (address[] memory list) {
        list = new address[](count);
        for (uint256 i; i < count; ++i) {
            list[i] = newActor("validator");
            registerNode(list[i], stake, ROLE_VALIDATOR);
        }
    }

    function addStake(address who, uint256 amount) internal {
        fund(who, amount);
        vm.startPrank(who);
        token.approve(address(registry), amount);
        registry.addStake(amount);
        vm.stopPrank();
    }

    // ------------------------------------------------------------ Magus

    function vectorParams(uint8 members, uint8 replication, uint32 maxFragments, uint64 duration)
        internal
        pure
        returns (IMaguRegistry.MaguParams memory p)
    {
        p.kind = IMaguRegistry.Kind.Vector;
        p.metric = IMaguRegistry.Metric.L2;
        p.dimension = 128;
        p.members = members;
        p.replication = replication;
        p.maxFragments = maxFragments;
        p.durationPeriods = duration;
        p.pricePerFragmentPeriod = PRICE;
    }

    function blobParams(uint8 members, uint8 dataShards, uint8 parityShards, uint32 maxFragments, uint64 duration)
        internal
        pure
        returns (IMaguRegistry.MaguParams memory p)
    {
        p.kind = IMaguRegistry.Kind.Blob;
        p.members = members;
        p.dataShards = dataShards;
        p.parityShards = parityShards;
        p.maxFragments = maxFragments;
        p.durationPeriods = duration;
        p.pricePerFragmentPeriod = PRICE;
    }

    /// @notice The escrow a Magu with `p` costs: price × stored copies × duration.
    function escrowOf(IMaguRegistry.MaguParams memory p) internal pure returns (uint256) {
        uint256 stored = p.kind == IMaguRegistry.Kind.Vector ? uint256(p.maxFragments) * p.replication : p.maxFragments;
        return p.pricePerFragmentPeriod * stored * p.durationPeriods;
    }

    /// @notice Creates a Magu for `owner` (funding its escrow and formation deposit), first rolling
    /// to the selection epoch before the one where every queued stake change weighs in, so that its
    /// draw sees the nodes registered so far.
    function createMagu(address owner, IMaguRegistry.MaguParams memory p) internal returns (MaguId id) {
        settleWeights();
        uint256 cost = escrowOf(p) + magus.config().formationDeposit;
        fund(owner, cost);
        vm.startPrank(owner);
        token.approve(address(magus), cost);
        id = magus.createMagu(p);
        vm.stopPrank();
    }

    /// @notice Rolls so that a selection requested now sees every queued stake change.
    function settleWeights() internal {
        (uint256 queued,, uint64 settledFrom) = registry.pendingWeightChanges();
        if (queued == 0) return;
        uint256 from = settledFrom - registry.config().selectionEpochBlocks;
        if (blockNumber() < from) vm.roll(from);
    }

    /// @notice Rolls to the first block where every queued stake change is in the selection tree.
    function rollPastWeights() internal {
        (uint256 queued,, uint64 settledFrom) = registry.pendingWeightChanges();
        if (queued > 0 && blockNumber() < settledFrom) vm.roll(settledFrom);
    }

    /// @notice The first block at which Magu `id` can be settled: after its last period and the
    /// mark window of that period's misses.
    function settleBlock(MaguId id) internal view returns (uint256) {
        uint64 end = magus.maguInfo(id).endPeriod;
        uint256 marked = uint256(magus.periodStart(end)) + magus.config().settleDelayBlocks + 1;
        uint256 next = magus.periodStart(end + 1);
        return marked > next ? marked : next;
    }

    /// @notice Rolls to the first block of the selection window of a request made at `requestBlock`.
    function rollToWindow(uint256 requestBlock) internal {
        (uint64 opens,) = magus.selectionWindow(uint64(requestBlock));
        if (blockNumber() < opens) vm.roll(opens);
    }

    /// @notice Rolls to the first block of the Magu's selection window and forms it (one call per
    /// SEATS_PER_FORM members, all in that block).
    function formMagu(MaguId id) internal {
        (uint64 opens,) = magus.selectionWindow(magus.maguInfo(id).requestBlock);
        if (blockNumber() < opens) vm.roll(opens);
        magus.formMagu(id);
        while (magus.maguInfo(id).status == IMaguRegistry.Status.Requested) magus.formMagu(id);
    }

    /// @notice Commits the first `count` fragments of data set `seed` as the Magu's data, with the
    /// acknowledgements of the members whose slot bit is set in `ackMask`.
    function commitDataAckedBy(MaguId id, uint256 seed, uint32 count, uint256 ackMask) internal {
        uint256 key = MaguId.unwrap(id);
        if (dataRoots[key].length == 0) dataSeed[key] = seed;
        require(dataSeed[key] == seed, "fixture: one data set per Magu");
        bytes32[] memory roots = DataSet.extend(dataRoots[key], seed, count);
        dataRoots[key] = roots;
        bytes32 root = maguRootOf(roots);
        address owner = magus.maguInfo(id).owner;
        bytes32[] memory extension = appendProof(roots, magus.maguInfo(id).fragmentCount);
        bytes[] memory acks = acksFor(id, root, count, ackMask);
        vm.prank(owner);
        magus.commitData(id, root, count, "", extension, acks);
    }

    /// @notice Commits the first `count` fragments of data set `seed`, every member acknowledging.
    function commitData(MaguId id, uint256 seed, uint32 count) internal {
        commitDataAckedBy(id, seed, count, type(uint256).max);
    }

    /// @notice The append proof of a commit over `roots` when `current` fragments are committed:
    /// the fragment root at `current - 1` and its siblings in the new tree (empty for the first).
    function appendProof(bytes32[] memory roots, uint256 current) internal pure returns (bytes32[] memory ext) {
        if (current == 0) return new bytes32[](0);
        bytes32[] memory siblings = MerkleBuilder.proof(roots, current - 1);
        ext = new bytes32[](siblings.length + 1);
        ext[0] = roots[current - 1];
        for (uint256 i; i < siblings.length; ++i) {
            ext[i + 1] = siblings[i];
        }
    }

    /// @notice Each slot's acknowledgement of the next batch (`root`, `count`), signed by its
    /// member when bit i of `mask` is set and the slot is filled; empty otherwise.
    function acksFor(MaguId id, bytes32 root, uint32 count, uint256 mask) internal view returns (bytes[] memory acks) {
        address[] memory members = membersOf(id);
        uint32 batch = magus.maguInfo(id).batches;
        acks = new bytes[](members.length);
        for (uint256 i; i < members.length; ++i) {
            if (members[i] == address(0) || (mask >> i) & 1 == 0) continue;
            acks[i] = signAck(members[i], magus.ackDigest(id, batch, root, count, members[i]));
        }
    }

    /// @notice `signer`'s signature over `digest`, packed as r, s, v.
    function signAck(address signer, bytes32 digest) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(actorKey[signer], digest);
        return abi.encodePacked(r, s, v);
    }

    /// @notice Commits `root` over `count` fragments as the first batch of `id`, every member
    /// acknowledging (for tests that never prove against the data).
    function commitFirstRoot(MaguId id, bytes32 root, uint32 count) internal {
        bytes[] memory acks = acksFor(id, root, count, type(uint256).max);
        vm.prank(magus.maguInfo(id).owner);
        magus.commitData(id, root, count, "", noExtension, acks);
    }

    /// @notice The Magu root over `roots` (positional tree, docs/ENCODING.md).
    function maguRootOf(bytes32[] memory roots) internal pure returns (bytes32) {
        return MerkleBuilder.root(roots);
    }

    /// @notice Creates, forms and fills a Magu: `count` fragments of data set `seed`.
    function setupMagu(address owner, IMaguRegistry.MaguParams memory p, uint256 seed, uint32 count)
        internal
        returns (MaguId id)
    {
        id = createMagu(owner, p);
        formMagu(id);
        commitData(id, seed, count);
    }

    function membersOf(MaguId id) internal view returns (address[] memory) {
        return magus.maguInfo(id).members;
    }

    // ------------------------------------------------------------ periods and proofs

    /// @notice Rolls to the first block at which proofs for `period` are accepted.
    function rollToPeriod(uint64 period) internal {
        vm.roll(magus.periodStart(period) + 1);
    }

    /// @notice Rolls to the first block at which `period` can be marked missed.
    function rollPastDeadline(uint64 period) internal {
        vm.roll(challenges.proofDeadline(period));
    }

    /// @notice The honest answer of `member` to its challenge of `period` (from the committed data).
    function proofsFor(MaguId id, address member, uint64 period)
        internal
        view
        returns (IChallengeManager.FragmentProof[] memory)
    {
        uint256 key = MaguId.unwrap(id);
        // The period's data: the batch the member answers for then (a prefix of the data set).
        (, uint32 count) = magus.challengedData(id, member, period);
        bytes32[] memory all = dataRoots[key];
        bytes32[] memory roots = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            roots[i] = all[i];
        }
        return DataSet.proofsFor(dataSeed[key], roots, challenges.challengeFor(id, member, period));
    }

    /// @notice Honest answers to `items` from the data committed to Magu `key`.
    function dataProofs(uint256 key, IChallengeManager.ChallengeItem[] memory items)
        internal
        view
        returns (IChallengeManager.FragmentProof[] memory)
    {
        return DataSet.proofsFor(dataSeed[key], dataRoots[key], items);
    }

    /// @notice `member` answers its challenge of `period` honestly.
    function prove(MaguId id, address member, uint64 period) internal {
        IChallengeManager.FragmentProof[] memory proofs = proofsFor(id, member, period);
        vm.prank(member);
        challenges.submitProof(id, period, proofs);
    }

    /// @notice Every current member of `id` with something to prove proves `period` (rolling into
    /// it first); a member whose challenge names no fragment has nothing to submit.
    function proveAll(MaguId id, uint64 period) internal {
        rollToPeriod(period);
        address[] memory members = membersOf(id);
        for (uint256 i; i < members.length; ++i) {
            if (members[i] == address(0)) continue;
            if (challenges.challengeFor(id, members[i], period).length == 0) continue;
            prove(id, members[i], period);
        }
    }
}

/// @title Fixture
/// @notice Deploys the five contracts wired with the production roles:
/// token MINTER_ROLE -> Rewards; NodeRegistry MODULE_ROLE -> MaguRegistry, SLASHER_ROLE ->
/// MaguRegistry and ChallengeManager, REPUTATION_ROLE -> ChallengeManager; MaguRegistry
/// CHALLENGE_ROLE -> ChallengeManager; ChallengeManager slashes to Rewards.
abstract contract Fixture is FixtureBase {
    function defaultParams() internal pure returns (Params memory p) {
        p = Params({
            initialSupply: INITIAL_SUPPLY,
            minStake: MIN_STAKE,
            unbondingBlocks: UNBONDING_BLOCKS,
            maxNodes: MAX_NODES,
            selectionEpochBlocks: SELECTION_EPOCH_BLOCKS,
            reputationDecayBlocks: REPUTATION_DECAY_BLOCKS,
            formationDeposit: FORMATION_DEPOSIT,
            periodBlocks: PERIOD_BLOCKS,
            stakePerMember: STAKE_PER_MEMBER,
            repairBounty: REPAIR_BOUNTY,
            maxMembers: MAX_MEMBERS,
            maxFragments: MAX_FRAGMENTS,
            maxDurationPeriods: MAX_DURATION,
            samples: SAMPLES,
            slashBps: SLASH_BPS,
            markerBps: MARKER_BPS,
            maxMisses: MAX_MISSES,
            graceBlocks: GRACE_BLOCKS,
            markWindowBlocks: MARK_WINDOW_BLOCKS,
            epochBlocks: EPOCH_BLOCKS,
            emissionPerEpoch: EMISSION,
            validatorShareBps: VALIDATOR_SHARE_BPS,
            maxWeights: MAX_WEIGHTS,
            maxValidatorsPerEpoch: MAX_VALIDATORS_PER_EPOCH,
            quorumBps: QUORUM_BPS,
            quorumLookbackEpochs: QUORUM_LOOKBACK_EPOCHS,
            minQuorumStake: MIN_QUORUM_STAKE
        });
    }

    /// @notice Deploys with the default parameters. Override `setUp` to deploy differently.
    function setUp() public virtual {
        deploy(defaultParams());
    }

    /// @notice Deploys the five contracts with `p` (this test is admin and initial holder).
    function deploy(Params memory p) internal {
        params = p;
        token = MuriToken(
            deployArtifact("MuriToken.sol:MuriToken", abi.encode(address(this), address(this), p.initialSupply))
        );
        INodeRegistry.Config memory registryConfig = INodeRegistry.Config({
            token: address(token),
            minStake: p.minStake,
            unbondingBlocks: p.unbondingBlocks,
            maxNodes: p.maxNodes,
            selectionEpochBlocks: p.selectionEpochBlocks,
            reputationDecayBlocks: p.reputationDecayBlocks
        });
        registry = NodeRegistry(deployArtifact("NodeRegistry.sol:NodeRegistry", abi.encode(registryConfig, address(this))));
        IRewards.Config memory rewardsConfig = IRewards.Config({
            token: address(token),
            nodeRegistry: address(registry),
            genesisBlock: 0,
            epochBlocks: p.epochBlocks,
            emissionPerEpoch: p.emissionPerEpoch,
            validatorShareBps: p.validatorShareBps,
            maxWeights: p.maxWeights,
            maxValidatorsPerEpoch: p.maxValidatorsPerEpoch,
            quorumBps: p.quorumBps,
            quorumLookbackEpochs: p.quorumLookbackEpochs,
            minQuorumStake: p.minQuorumStake
        });
        rewards = Rewards(deployArtifact("Rewards.sol:Rewards", abi.encode(rewardsConfig)));
        IMaguRegistry.Config memory maguConfig = IMaguRegistry.Config({
            token: address(token),
            nodeRegistry: address(registry),
            genesisBlock: 0,
            periodBlocks: p.periodBlocks,
            stakePerMember: p.stakePerMember,
            repairBounty: p.repairBounty,
            maxMembers: p.maxMembers,
            maxFragments: p.maxFragments,
            maxDurationPeriods: p.maxDurationPeriods,
            bountySink: address(rewards),
            fetchFragmentsPerPeriod: FETCH_FRAGMENTS_PER_PERIOD,
            formationDeposit: p.formationDeposit,
            settleDelayBlocks: p.graceBlocks + p.markWindowBlocks
        });
        magus = MaguRegistry(deployArtifact("MaguRegistry.sol:MaguRegistry", abi.encode(maguConfig, address(this))));
        IChallengeManager.Config memory challengeConfig = IChallengeManager.Config({
            maguRegistry: address(magus),
            nodeRegistry: address(registry),
            slashSink: address(rewards),
            samples: p.samples,
            slashBps: p.slashBps,
            markerBps: p.markerBps,
            maxMisses: p.maxMisses,
            graceBlocks: p.graceBlocks,
            markWindowBlocks: p.markWindowBlocks
        });
        challenges = ChallengeManager(deployArtifact("ChallengeManager.sol:ChallengeManager", abi.encode(challengeConfig)));

        token.grantRole(token.MINTER_ROLE(), address(rewards));
        registry.grantRole(registry.MODULE_ROLE(), address(magus));
        registry.grantRole(registry.SLASHER_ROLE(), address(magus));
        registry.grantRole(registry.SLASHER_ROLE(), address(challenges));
        registry.grantRole(registry.REPUTATION_ROLE(), address(challenges));
        magus.grantRole(magus.CHALLENGE_ROLE(), address(challenges));

        vm.label(address(token), "MuriToken");
        vm.label(address(registry), "NodeRegistry");
        vm.label(address(rewards), "Rewards");
        vm.label(address(magus), "MaguRegistry");
        vm.label(address(challenges), "ChallengeManager");
    }

    /// @notice Deploys MaguAccess over this deployment's token and MaguRegistry (no roles needed).
    function deployAccess() internal {
        IMaguAccess.Config memory c = IMaguAccess.Config({
            token: token,
            maguRegistry: magus,
            withdrawDelayBlocks: WITHDRAW_DELAY_BLOCKS
        });
        access = MaguAccess(deployArtifact("MaguAccess.sol:MaguAccess", abi.encode(c)));
        vm.label(address(access), "MaguAccess");
    }

}
