/**
 * The storage node agent: one object that starts, in order, the metadata database, the fragment
 * store, the Magu index, the chain clients, the p2p node (store as source, Magu sync as sink and
 * push policy), its on-chain registration, the event follower and the prover, and stops them in
 * reverse (Lodestar `BeaconNode.close()`), from one AbortController.
 *
 * Everything it keeps lives in `dir`, so a restart resumes where it stopped:
 * ```
 * <dir>/peer.key     libp2p identity (the peer id registered on chain)
 * <dir>/meta/        LevelDB: fragment metadata, follower cursor, Magu index
 * <dir>/blocks/ ...  fragment bytes (store/README.md)
 * ```
 * Capacity (store/capacity.ts): the operator's size or share of the disk, resolved at start against
 * the free space of `dir`'s filesystem plus what the store holds; it is the store's quota and the
 * capacity registered on chain, so the registry drafts the node only into Magus whose share fits
 * (NodeRegistry.drawNodes checks capacity - usedCapacity), and a push past it is refused.
 * Registration: if the account is not registered it approves and registers `stake` with its peer
 * id, multiaddrs and capacity; if it is, and the peer id, addresses (a new ephemeral port after a
 * restart) or capacity changed, it calls `updateNode` - never below what its memberships lock
 * (`usedCapacity`): it refuses to start instead. Every `reputationCheckMs` it sends
 * `refreshReputation` once a reputation penalty faded into a tier that weighs more in selection.
 */
import { join } from "node:path";
import type { Address, Hex } from "viem";
import {
  accessDomain,
  ackTypedData,
  batchDomain,
  createChainClients,
  createEventFollower,
  defaultConfirmations,
  describeError,
  getMuriContracts,
  maguAccessAbi,
  maguRegistryAbi,
  readReputationTiers,
  refreshFadedReputation,
  verifyChain,
  type BatchAck,
  type Deployment,
  type EventFollower,
  type MuriContracts,
  type MuriPublicClient,
  type MuriWalletClient,
  type ReputationTiers,
  type SigningChainClients,
} from "../../chain/index.js";
import { createP2PNode, loadOrCreatePrivateKey, type P2PNode } from "../../p2p/index.js";
import {
  CapacityError,
  describeBytes,
  describeCapacity,
  diskSpace,
  openFragmentStore,
  resolveCapacity,
  servingView,
  openMetaDb,
  silentLogger,
  type CapacitySpec,
  type FragmentStore,
  type Logger,
  type MetaDb,
} from "../../store/index.js";
import { createMaguIndex, type MaguIndex } from "../shared/magu-index.js";
import { createMaguSync, type MaguSync } from "../shared/magu-sync.js";
import { createAgentAccessGate, rightsFor, type AccessGate } from "../shared/access-gate.js";
import { createSearchMeter, type SearchMeter } from "./search-meter.js";
import { createReadMeter, type ReadMeter } from "./read-meter.js";
import { createProver, type Prover } from "./prover.js";
import { createRepairer, type Repairer } from "./repair.js";
import { collectMagu } from "./collect.js";
import { createSearchTasks, type SearchTasks } from "./search-tasks.js";
import { createVectorService, type SearchFault, type VectorService } from "../shared/vector-service.js";
import { IndexWorker } from "../../index/index.js";
import { SearchBudget, type SearchBudgetInit } from "../shared/search-budget.js";
import { handleSearchProtocol } from "../../p2p/index.js";
import { Registry } from "prom-client";
import { registerAccessMetrics, registerFollowerMetrics, registerReadMetrics, registerSearchBudgetMetrics, startMetricsServer, type MetricsServer } from "../shared/metrics-server.js";

/** Default capacity (store quota and registered capacity): half the disk's room, at most 4 GiB. */
export const DEFAULT_CAPACITY: CapacitySpec = { percent: 50, maxBytes: 4 * 1024 ** 3 };
/** Prover pass interval by default. */
export const DEFAULT_PROVER_POLL_MS = 2_000;
/** Event follower poll interval by default. */
export const DEFAULT_FOLLOW_POLL_MS = 1_000;
/** Receipt wait of the registration transactions. */
const RECEIPT_TIMEOUT_MS = 60_000;
/** NodeRegistry.ROLE_NODE. */
const ROLE_NODE = 1;
/** MaguRegistry `Kind.Vector`. */
const KIND_VECTOR = 1;

export interface NodeAgentInit {
  /** Node directory (created if missing). */
  dir: string;
  deployment: Deployment;
  /** RPC endpoint (default: the deployment's). */
  rpcUrl?: string;
  /** The node account's private key (pays gas, holds the stake). */
  privateKey: Hex;
  /** libp2p listen multiaddrs (default `/ip4/127.0.0.1/tcp/0`). */
  listen?: string[];
  /** Multiaddrs to register on chain for others to dial, instead of the listen ones (`--announce`). */
  announce?: string[];
  /** Storage capacity: the store's quota and the capacity registered on chain (default DEFAULT_CAPACITY). */
  capacity?: CapacitySpec;
  /** Stake registered when not yet registered (default 2 x minStake). */
  stake?: bigint;
  /** Run the challenge prover (default true). */
  prove?: boolean;
  proverPollMs?: number;
  followPollMs?: number;
  /** How often the node checks whether a reputation penalty faded enough to refresh its selection weight (ms, default 60 s). */
  reputationCheckMs?: number;
  /** How often vouchers of paid searches are settled on chain (default 60 s; search-meter.ts). */
  searchSettleMs?: number;
  /** How often read vouchers are redeemed on chain (default: `searchSettleMs`; read-meter.ts). */
  readSettleMs?: number;
  /** Blocks the event followers stay behind the head (default: `defaultConfirmations(chainId)`). */
  confirmations?: number;
  /**
   * Serve `/metrics` on 127.0.0.1 (0: a free port): the event followers' health and the p2p
   * counters. None by default.
   */
  metricsPort?: number;
  /**
   * Rebuild this node's own missing or corrupt fragments (reported by the prover, or found at
   * start) from the other holders (default true; env `MURI_NO_SELF_REPAIR=1` turns it off, for
   * tests where a node must really miss its challenges). Repair as a drafted replacement and the
   * hand-over of the Magu documents to a replacement always run.
   */
  selfRepair?: boolean;
  /** Default HNSW search effort of off-chain searches (the index default when unset). */
  efSearch?: number;
  /** Search time peers may use (defaults: `SEARCH_BUDGET_DEFAULTS`). */
  searchBudget?: SearchBudgetInit;
  /** Keep vector indexes in this thread instead of a worker thread (default false: a worker). */
  indexInThread?: boolean;
  /** On-chain search tasks whose fee is below this (wei) are not answered (default 0). */
  minTaskFee?: bigint;
  /** Take part in on-chain search tasks (default true when the deployment has a SearchMarket). */
  searchTasks?: boolean;
  /** Test-only misbehaviour in search tasks and off-chain answers (search-tasks.ts, vector-service.ts). */
  searchFault?: SearchFault;
}

export interface NodeAgentComponents {
  logger?: Logger;
}

export interface NodeAgentStatus {
  address: Address;
  peerId: string;
  multiaddrs: string[];
  /** Capacity in bytes, as registered on chain and used as the store's quota (0 before start). */
  capacity: number;
  /** `/metrics` URL when `metricsPort` was given. */
  metricsUrl?: string;
}

export interface NodeAgent {
  start(): Promise<NodeAgentStatus>;
  stop(): Promise<void>;
  status(): NodeAgentStatus;
  /** The parts, for tests and tools (undefined before start). */
  readonly parts: {
    store?: FragmentStore;
    index?: MaguIndex;
    sync?: MaguSync;
    access?: AccessGate;
    meter?: SearchMeter;
    reads?: ReadMeter;
    p2p?: P2PNode;
    follower?: EventFollower;
    prover?: Prover;
    repair?: Repairer;
    vectors?: VectorService;
    searchTasks?: SearchTasks;
  };
}

export function createNodeAgent(init: NodeAgentInit, components: NodeAgentComponents = {}): NodeAgent {
  return new StorageNodeAgent(init, components);
}

type WriteContracts = MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;

class StorageNodeAgent implements NodeAgent {
  readonly parts: NodeAgent["parts"] = {};
  private readonly log: Logger;
  private readonly controller = new AbortController();
  /** Stop steps, run in reverse order of start. */
  private readonly stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  private readonly clients: SigningChainClients;
  private started = false;
  private stopping: Promise<void> | undefined;
  private metrics: MetricsServer | undefined;
  /** Registry of `/metrics` (only with `metricsPort`). */
  private readonly registry: Registry | undefined;

  constructor(
    private readonly init: NodeAgentInit,
    components: NodeAgentComponents,
  ) {
    this.log = components.logger ?? silentLogger;
    this.clients = createChainClients({
      rpcUrl: init.rpcUrl ?? init.deployment.rpcUrl,
      chainId: init.deployment.chainId,
      privateKey: init.privateKey,
    });
    this.registry = init.metricsPort === undefined ? undefined : new Registry();
  }

  status(): NodeAgentStatus {
    return {
      address: this.clients.account.address,
      peerId: this.parts.p2p?.peerId.toString() ?? "",
      multiaddrs: (this.parts.p2p?.multiaddrs ?? []).map(String),
      capacity: this.parts.store?.stats().quotaBytes ?? 0,
      ...(this.metrics ? { metricsUrl: this.metrics.url } : {}),
    };
  }

  async start(): Promise<NodeAgentStatus> {
    if (this.started) return this.status();
    this.started = true;
    try {
      await this.startParts();
    } catch (err) {
      await this.stop().catch(() => undefined);
      throw err;
    }
    return this.status();
  }

  private async startParts(): Promise<void> {
    const { init, log, clients } = this;
    const member = clients.account.address;

    const metaDb: MetaDb = await openMetaDb(join(init.dir, "meta"));
    this.stops.push({ name: "meta", stop: () => metaDb.close() });
    // Opened with the largest quota, then set to the capacity, which counts what the store holds.
    const store = await openFragmentStore({ dir: init.dir, quotaBytes: Number.MAX_SAFE_INTEGER, metaDb, logger: log });
    this.stops.push({ name: "store", stop: () => store.close() });
    const spec = init.capacity ?? DEFAULT_CAPACITY;
    const disk = await diskSpace(init.dir);
    const storedBytes = store.stats().usedBytes;
    const capacity = resolveCapacity(spec, { dir: init.dir, freeBytes: disk.freeBytes, storedBytes });
    store.setQuota(capacity);
    log.info("capacity", { asked: describeCapacity(spec), capacity, freeBytes: disk.freeBytes, storedBytes });
    const index = createMaguIndex({ logger: log }, { metaDb });
    this.parts.store = store;
    this.parts.index = index;

    await verifyChain(clients.publicClient, init.deployment.chainId, clients.rpcUrl);
    const readContracts = getMuriContracts(init.deployment.contracts, { publicClient: clients.publicClient });
    const contracts: WriteContracts = getMuriContracts(init.deployment.contracts, clients);

    // Peers' searches share the event loop with the prover: each peer, and all together, get a
    // bounded share of its time (search-budget.ts).
    // HNSW inserts and searches run in a worker thread, so neither delays a proof.
    const budget = new SearchBudget(init.searchBudget);
    const indexWorker = init.indexInThread === true ? undefined : new IndexWorker();
    if (indexWorker !== undefined) this.stops.push({ name: "index worker", stop: () => indexWorker.close() });
    const vectors = createVectorService(
      { member, dir: init.dir, efSearch: init.efSearch, fault: init.searchFault },
      { store, index, metaDb, contracts: readContracts, logger: log, budget, indexWorker },
    );
    this.stops.push({ name: "vectors", stop: () => vectors.close() });
    this.parts.vectors = vectors;
    const domain = batchDomain(init.deployment.chainId, init.deployment.contracts.maguRegistry);
    const signer = {
      domain,
      sign: (ack: BatchAck) => clients.walletClient.signTypedData({ account: clients.account, ...ackTypedData(domain, ack) }),
    };
    // A peer whose documents are refused again and again is cut off (the p2p node comes next).
    const ban = (peer: string, reason: string): void => void this.parts.p2p?.banList.ban(peer, reason);
    const sync = createMaguSync({ member, vectors, signer, ban }, { store, index, metaDb, contracts: readContracts, logger: log });
    await sync.load();
    await vectors.load();
    this.parts.sync = sync;

    // Who may read and search what this node holds (access-gate.ts): members, validators, grantees.
    const access = createAgentAccessGate(init.deployment, { contracts: readContracts, maguOf: (cid) => sync.maguOf(cid), publicClient: clients.publicClient, logger: log });
    this.parts.access = access;
    // Voucher settlements (searches and reads) wait behind proofs, as search-task transactions do.
    const accessWriter = getMuriContracts(init.deployment.contracts, clients, { priority: "task" }).maguAccess;
    const sendAccess = async (what: string, send: (a: typeof accessWriter) => Promise<Hex>): Promise<void> => {
      const hash = await send(accessWriter);
      const receipt = await clients.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: RECEIPT_TIMEOUT_MS });
      if (receipt.status !== "success") throw new Error(`MaguAccess.${what} reverted (tx ${hash})`);
    };
    // Paid searches (search-meter.ts): vouchers checked before a search, kept after, settled on chain.
    const meter = createSearchMeter(
      { member, domain: accessDomain(init.deployment.chainId, init.deployment.contracts.maguAccess), settleMs: init.searchSettleMs },
      {
        contracts: readContracts,
        metaDb,
        logger: log,
        settle: (voucher, payer, signature) => sendAccess("settle", (a) => a.write.settle([voucher, payer, signature])),
      },
    );
    await meter.start();
    this.stops.push({ name: "search meter", stop: () => meter.stop() });
    this.parts.meter = meter;
    // Paid reads (read-meter.ts): read vouchers prepay fetches of a priced Magu, redeemed on chain.
    const reads = createReadMeter(
      { member, domain: accessDomain(init.deployment.chainId, init.deployment.contracts.maguAccess), settleMs: init.readSettleMs ?? init.searchSettleMs },
      {
        contracts: readContracts,
        metaDb,
        logger: log,
        maguOf: (cid) => sync.maguOf(cid),
        fragmentOf: (cid) => sync.fragmentOf(cid),
        insider: (peer, magu) => access.insider(peer, magu),
        settle: (voucher, payer, signature, served) => sendAccess("settleRead", (a) => a.write.settleRead([voucher, payer, signature, served])),
      },
    );
    await reads.start();
    this.stops.push({ name: "read meter", stop: () => reads.stop() });
    this.parts.reads = reads;
    const privateKey = await loadOrCreatePrivateKey(join(init.dir, "peer.key"));
    const p2p = await createP2PNode({
      privateKey,
      listen: init.listen ?? ["/ip4/127.0.0.1/tcp/0"],
      announce: init.announce,
      source: servingView(store),
      sink: sync.sink,
      acceptPush: sync.acceptPush,
      authorizeFetch: async ({ peer, cid }) => (await access.serveReason(peer.toString(), cid)) ?? (await reads.chargeFetch(peer.toString(), cid)),
      metricsRegistry: this.registry,
    });
    await p2p.start();
    this.stops.push({ name: "p2p", stop: () => p2p.stop() });
    this.parts.p2p = p2p;
    // One request protocol: batch delivery (magu-sync.ts), grants (access-gate.ts) and searches
    // (vector-service.ts), a search or a vector index document only for those the gate lets in.
    const unhandleSearch = await handleSearchProtocol(p2p.libp2p, async (request, peer) => {
      const batch = await sync.handleBatchRequest(request);
      if (batch !== undefined) return batch;
      const granted = (await access.handleRequest(request, peer)) ?? (await meter.handleRequest(request)) ?? (await reads.handleRequest(request, peer));
      if (granted !== undefined) return granted;
      const scope = rightsFor(request);
      if (scope === undefined) return vectors.handle(request, peer);
      await access.check(peer, scope.magu, scope.need);
      if ((request as { op?: unknown }).op !== "search") return vectors.handle(request, peer);
      // A batch of queries is as many searches (vector-service.ts `requestQueries`).
      const queries = (request as { queries?: unknown }).queries;
      const done = await meter.charge(scope.magu, (request as { voucher?: unknown }).voucher, Array.isArray(queries) ? Math.max(1, queries.length) : 1);
      let answered = false;
      try {
        const answer = await vectors.handle(request, peer);
        answered = true;
        return answer;
      } finally {
        await done(answered);
      }
    });
    // Proposals that are never committed: their data is dropped after PENDING_TTL_MS.
    const sweep = setInterval(() => {
      sync.sweep().catch((err: unknown) => log.warn("sweeping expired proposals failed", { error: (err as Error).message }));
    }, 30_000);
    sweep.unref();
    this.stops.push({ name: "proposal sweep", stop: async () => clearInterval(sweep) });
    this.stops.push({ name: "search protocol", stop: unhandleSearch });

    await this.ensureRegistered(contracts, p2p, spec, capacity);
    // A reputation penalty fades on chain, but the selection tree follows only when someone
    // writes it: the node does, once the faded value would weigh more (chain/selection.ts).
    let tiers: ReputationTiers | undefined;
    const keepReputation = async (): Promise<void> => {
      try {
        tiers ??= await readReputationTiers(contracts.nodeRegistry);
        const sent = await refreshFadedReputation(contracts.nodeRegistry, member, tiers, async () => {
          const hash = await contracts.nodeRegistry.write.refreshReputation([member]);
          const receipt = await clients.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: RECEIPT_TIMEOUT_MS });
          if (receipt.status !== "success") throw new Error(`refreshReputation reverted (tx ${hash})`);
        });
        if (sent) log.info("reputation penalty faded: selection weight refreshed", { reputation: (await contracts.nodeRegistry.read.reputationOf([member])).toString() });
      } catch (err) {
        log.warn("reputation check failed (next check retries)", { error: describeError(err) });
      }
    };
    const reputationTimer = setInterval(() => void keepReputation(), init.reputationCheckMs ?? 60_000);
    reputationTimer.unref();
    this.stops.push({ name: "reputation check", stop: async () => clearInterval(reputationTimer) });

    // Repair (repair.ts): as a replacement, and of this node's own lost fragments.
    const selfRepair = init.selfRepair ?? process.env.MURI_NO_SELF_REPAIR !== "1";
    const repair = createRepairer({ member }, { store, index, p2p, contracts: readContracts, logger: log });
    this.stops.push({ name: "repair", stop: () => repair.stop() });
    this.parts.repair = repair;

    const confirmations = init.confirmations ?? defaultConfirmations(init.deployment.chainId);
    const follower = createEventFollower(
      {
        id: "node-agent",
        contracts: [
          {
            address: init.deployment.contracts.maguRegistry,
            abi: maguRegistryAbi,
            eventNames: ["MaguFormed", "MemberJoined", "MemberLeft", "DataCommitted", "MaguSettled"],
            name: "MaguRegistry",
          },
          { address: init.deployment.contracts.maguAccess, abi: maguAccessAbi, eventNames: ["GrantRevoked", "VisibilitySet", "WithdrawRequested"], name: "MaguAccess" },
        ],
        fromBlock: init.deployment.deployBlock,
        confirmations,
        pollMs: init.followPollMs ?? DEFAULT_FOLLOW_POLL_MS,
      },
      { publicClient: clients.publicClient, metaDb, logger: log },
    );
    const mine = (a: unknown): boolean => typeof a === "string" && a.toLowerCase() === member.toLowerCase();
    // A revoked grant stops at once (not only at its next on-chain check); so does a Magu made private.
    follower.on<{ magu: bigint; grantee: Hex }>("GrantRevoked", (e) => access.revoked(e.args.magu, e.args.grantee));
    follower.on<{ magu: bigint }>("VisibilitySet", (e) => access.visibilityChanged(e.args.magu));
    // A payer leaving: settle what it owes before its withdrawal delay is over (in the background:
    // the follower does not wait for the transaction).
    follower.on<{ magu: bigint; payer: Address }>("WithdrawRequested", (e) => {
      void meter.settleNow(e.args.magu, e.args.payer).catch(() => undefined);
      void reads.settleNow(e.args.magu, e.args.payer).catch(() => undefined);
    });
    follower.on<{ magu: bigint; members: readonly Address[] }>("MaguFormed", (e) => {
      const slot = e.args.members.findIndex(mine);
      if (slot >= 0) log.info("joined magu", { magu: e.args.magu.toString(), slot, block: e.blockNumber.toString() });
    });
    follower.on<{ magu: bigint; member: Address; slot: number; replacement: boolean }>("MemberJoined", async (e) => {
      access.membersChanged(e.args.magu);
      if (!e.args.replacement) return;
      const magu = e.args.magu;
      if (mine(e.args.member)) {
        const info = await readContracts.maguRegistry.read.maguInfo([magu]);
        if (info.params.kind === KIND_VECTOR) {
          // A vector slot: fetch the Magu's latest index document by the CID its last commit
          // names, then the slot's replicas by CID from their other holders (repair.catchUp).
          const commits = await readContracts.maguRegistry.getEvents.DataCommitted({ magu }, { fromBlock: init.deployment.deployBlock });
          const last = commits.at(-1);
          if (last === undefined || last.args.indexCid === undefined || last.args.indexCid.length <= 2) return;
          log.info("joined vector magu as a replacement: fetching its replicas", { magu: magu.toString(), slot: e.args.slot });
          const indexCid = last.args.indexCid;
          repair.spawn("replacement replica fetch", () =>
            repair.catchUp(magu, indexCid, async (cid, bytes) => {
              await sync.sink.put(cid, bytes);
            }),
          );
          return;
        }
        // Drafted into a vacated slot: rebuild the slot's fragments from the other holders.
        log.info("joined magu as a replacement: repairing the slot", { magu: magu.toString(), slot: e.args.slot });
        repair.spawn("replacement repair", () => repair.repairSlot({ maguId: magu, slot: e.args.slot }));
      } else if ((await index.get(magu)) !== undefined) {
        // A fellow member was replaced: hand it the manifest and index document.
        repair.spawn("hand-over", () => repair.handOver(magu, e.args.member));
      }
    });
    // Once it left a Magu, or the Magu settled, no challenge names its data again: the disk is freed.
    const collect = (magu: bigint, reason: string) => collectMagu(magu, reason, { store, index, sync, vectors, logger: log });
    follower.on<{ magu: bigint; member: Address; evicted: boolean }>("MemberLeft", async (e) => {
      access.membersChanged(e.args.magu);
      if (!mine(e.args.member)) return;
      log.warn("left magu", { magu: e.args.magu.toString(), evicted: e.args.evicted });
      await collect(e.args.magu, e.args.evicted ? "evicted" : "left");
    });
    follower.on<{ magu: bigint }>("MaguSettled", async (e) => {
      await collect(e.args.magu, "settled");
    });
    follower.on<{ magu: bigint; batch: number; root: Hex; fragmentCount: number; indexCid: Hex }>("DataCommitted", async (e) => {
      const magu = e.args.magu;
      if (await sync.committed(magu, e.args.root, e.args.fragmentCount)) {
        log.info("batch committed", { magu: magu.toString(), batch: e.args.batch, fragments: e.args.fragmentCount, block: e.blockNumber.toString() });
        return;
      }
      // A batch this node did not take (down, or left out): once it is available, fetch its index
      // document from the members that hold it, then its own fragments (repair.ts).
      const info = await readContracts.maguRegistry.read.maguInfo([magu]);
      if (!info.members.some(mine)) return;
      // Only the latest batch: its index covers the earlier ones (a later event does the rest).
      if (info.fragmentCount !== e.args.fragmentCount) return;
      log.info("a batch was committed without this node: fetching it", { magu: magu.toString(), batch: e.args.batch, fragments: e.args.fragmentCount });
      repair.spawn("batch catch-up", () => repair.catchUp(magu, e.args.indexCid, async (cid, bytes) => {
        await sync.sink.put(cid, bytes);
      }));
    });
    await follower.start();
    this.stops.push({ name: "follower", stop: () => follower.stop() });
    this.parts.follower = follower;

    if (init.prove ?? true) {
      const prover = createProver(
        {
          member,
          pollMs: init.proverPollMs ?? DEFAULT_PROVER_POLL_MS,
          onMissingFragment: (maguId, fragment, _cid, reason) => {
            if (!selfRepair) {
              log.warn("self-repair disabled; not rebuilding the fragment", { magu: maguId.toString(), fragment, reason });
              return;
            }
            log.info("rebuilding a lost fragment (self-repair)", { magu: maguId.toString(), fragment, reason });
            repair.requestSelfRepair(maguId);
          },
        },
        // Proofs go first in the wallet's queue: a late one costs stake.
        { contracts: getMuriContracts(init.deployment.contracts, clients, { priority: "proof" }), publicClient: clients.publicClient, walletClient: clients.walletClient, store, index, logger: log },
      );
      await prover.start();
      this.stops.push({ name: "prover", stop: () => prover.stop() });
      this.parts.prover = prover;
    }
    if ((init.searchTasks ?? true) && init.deployment.contracts.searchMarket !== undefined) {
      const searchTasks = createSearchTasks(
        { member, fromBlock: init.deployment.deployBlock, confirmations, fault: init.searchFault, minFee: init.minTaskFee },
        // Search-task commits and reveals wait behind proofs and everything else.
        { contracts: getMuriContracts(init.deployment.contracts, clients, { priority: "task" }), publicClient: clients.publicClient, vectors, metaDb, logger: log },
      );
      await searchTasks.start();
      this.stops.push({ name: "search tasks", stop: () => searchTasks.stop() });
      this.parts.searchTasks = searchTasks;
    }
    if (this.registry !== undefined) {
      const searchTasks = this.parts.searchTasks;
      registerFollowerMetrics(this.registry, {
        "node-agent": () => follower.status(),
        ...(searchTasks ? { "search-tasks": searchTasks.followerStatus } : {}),
      });
      registerSearchBudgetMetrics(this.registry, () => budget.stats());
      registerAccessMetrics(this.registry, () => access.stats(), () => meter.stats());
      registerReadMetrics(this.registry, () => reads.stats());
      const server = await startMetricsServer({ port: init.metricsPort! }, { registry: this.registry });
      this.metrics = server;
      this.stops.push({ name: "metrics", stop: () => server.close() });
    }
    if (selfRepair) await repair.resumeAll();
    log.info("node agent started", { ...this.status(), selfRepair });
  }

  /** Registers the node, or updates its peer id, addresses and capacity when they changed. */
  private async ensureRegistered(contracts: WriteContracts, p2p: P2PNode, spec: CapacitySpec, capacityBytes: number): Promise<void> {
    const { clients, log, init } = this;
    const address = clients.account.address;
    const peerIdBytes = `0x${Buffer.from(p2p.peerId.toMultihash().bytes).toString("hex")}` as Hex;
    const multiaddrs = p2p.multiaddrs.map(String);
    const capacity = BigInt(capacityBytes);
    const wait = async (hash: Hex, what: string): Promise<void> => {
      const receipt = await clients.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: RECEIPT_TIMEOUT_MS });
      if (receipt.status !== "success") throw new Error(`${what} reverted (tx ${hash})`);
    };
    const info = await contracts.nodeRegistry.read.nodeInfo([address]);
    if (info.registered && capacity < info.usedCapacity) {
      // The registry refuses it too (RegistryCapacityInUse): the memberships' fragments must fit.
      const locked = Number(info.usedCapacity);
      throw new CapacityError(
        { asked: describeCapacity(spec), dir: init.dir, freeBytes: 0, storedBytes: 0 },
        `capacity ${describeCapacity(spec)} = ${describeBytes(capacityBytes)} is below the ${describeBytes(locked)} this node's Magu memberships hold on chain (usedCapacity ${locked} bytes): give at least that much`,
      );
    }
    try {
      if (!info.registered) {
        const config = await contracts.nodeRegistry.read.config();
        const stake = init.stake ?? config.minStake * 2n;
        const balance = await contracts.token.read.balanceOf([address]);
        if (balance < stake) throw new Error(`account ${address} holds ${balance} MURI units, needs ${stake} to stake: fund it first`);
        await wait(await contracts.token.write.approve([init.deployment.contracts.nodeRegistry, stake]), "approve");
        await wait(await contracts.nodeRegistry.write.register([stake, ROLE_NODE, capacity, peerIdBytes, multiaddrs]), "register");
        log.info("registered", { address, stake: stake.toString(), multiaddrs });
      } else if (info.peerId.toLowerCase() !== peerIdBytes.toLowerCase() || info.multiaddrs.join(" ") !== multiaddrs.join(" ") || info.capacity !== capacity) {
        await wait(await contracts.nodeRegistry.write.updateNode([capacity, peerIdBytes, multiaddrs]), "updateNode");
        log.info("registration updated", { address, multiaddrs, capacity: capacityBytes, previousCapacity: Number(info.capacity) });
      } else {
        log.info("already registered", { address });
      }
    } catch (err) {
      throw new Error(`registration of ${address} failed: ${describeError(err)}`, { cause: err });
    }
  }

  async stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.controller.abort();
      for (const step of this.stops.splice(0).reverse()) {
        try {
          await step.stop();
        } catch (err) {
          this.log.warn("stop failed", { part: step.name, error: (err as Error).message });
        }
      }
      this.log.info("node agent stopped");
    })();
    return this.stopping;
  }
}
