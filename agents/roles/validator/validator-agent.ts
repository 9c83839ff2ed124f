/**
 * The validator process: the validator loop (validator.ts), plus what lets it find and check data
 * by itself:
 * - a metadata database, a small store and a libp2p node whose address is registered on chain, so
 *   clients push it the Magu index documents (blob: manifest + index; vector: the vector index
 *   document). They are verified against the root on chain like a member does (magu-sync.ts and
 *   vector-service.ts in observer mode: recorded, nothing held);
 * - the same documents fetched by itself: it follows `DataCommitted` from the deployment block and,
 *   for each Magu's latest batch, fetches the index document by the CID the event names from the
 *   members (batch-documents.ts), so a validator that joins after an upload, or missed a push,
 *   still audits every Magu;
 * - audit targets from those documents: every few seconds each recorded Magu's CIDs and fragment
 *   roots go to `addAuditTargets`, and audits fetch over this node;
 * - the search checker (search-checker.ts): checks revealed search answers, disputes false ones,
 *   finalizes tasks.
 * Everything lives in `dir` (`meta/`, `blocks/`, `peer.key`, `vectors/`), so a restart resumes.
 */
import { join } from "node:path";
import type { Address, Hex } from "viem";
import { CID } from "multiformats/cid";
import { createChainClients, createEventFollower, defaultConfirmations, describeError, getMuriContracts, maguRegistryAbi, pause, verifyChain, type Deployment } from "../../chain/index.js";
import { createP2PNode, loadOrCreatePrivateKey, type P2PNode } from "../../p2p/index.js";
import { Bucket, openFragmentStore, servingView, openMetaDb, silentLogger, type Logger } from "../../store/index.js";
import { fetchBatchDocuments } from "../shared/batch-documents.js";
import { createMaguIndex } from "../shared/magu-index.js";
import { createMaguSync } from "../shared/magu-sync.js";
import { createAgentAccessGate } from "../shared/access-gate.js";
import { registerFollowerMetrics, startMetricsServer, type MetricsServer } from "../shared/metrics-server.js";
import { createSearchChecker, type SearchChecker } from "./search-checker.js";
import { createValidator, ensureValidatorRegistered, type Validator } from "./validator.js";
import { createVectorService } from "../shared/vector-service.js";

/** Store quota of a validator (documents only). */
const VALIDATOR_QUOTA_BYTES = 256 * 1024 * 1024;
/** How often recorded Magus are turned into audit targets. */
const TARGET_SYNC_MS = 5_000;
/** Tries at a batch's documents before waiting for the next commit or push (about 8 minutes in all). */
const DOCUMENT_FETCH_ATTEMPTS = 10;
/** Pause after the first unserved try; doubled each time up to `DOCUMENT_RETRY_MAX_MS`. */
const DOCUMENT_RETRY_MS = 2_000;
const DOCUMENT_RETRY_MAX_MS = 120_000;
/** `Bucket.task` key prefix of a batch whose documents are still to fetch (then the Magu id, 32 bytes). */
const OWED_PREFIX = "d";

/** A batch whose documents are still to fetch: its index document's CID and fragment count. */
interface OwedFetch {
  indexCid: CID;
  fragmentCount: number;
}

/** An owed fetch as kept (JSON: the CID as a string). */
export function encodeOwed(owed: OwedFetch): Buffer {
  return Buffer.from(JSON.stringify({ indexCid: owed.indexCid.toString(), fragmentCount: owed.fragmentCount }));
}

/** An owed fetch read back; undefined when the bytes are not one (not JSON, a bad CID or count). */
export function readOwed(bytes: Uint8Array): OwedFetch | undefined {
  try {
    const r = JSON.parse(Buffer.from(bytes).toString()) as { indexCid?: unknown; fragmentCount?: unknown };
    if (typeof r.indexCid !== "string" || typeof r.fragmentCount !== "number" || !Number.isSafeInteger(r.fragmentCount) || r.fragmentCount < 1) return undefined;
    return { indexCid: CID.parse(r.indexCid), fragmentCount: r.fragmentCount };
  } catch {
    return undefined;
  }
}

export interface ValidatorAgentInit {
  dir: string;
  deployment: Deployment;
  rpcUrl?: string;
  privateKey: Hex;
  listen?: string[];
  /** Multiaddrs to register on chain for others to dial, instead of the listen ones (`--announce`). */
  announce?: string[];
  /** Stake registered when not yet registered (default 2 x minStake). */
  stake?: bigint;
  pollMs?: number;
  auditIntervalMs?: number;
  claimRewards?: boolean;
  /** Serve `/metrics` on 127.0.0.1 (0: a free port). */
  metricsPort?: number;
  /** Blocks the event followers stay behind the head (default: `defaultConfirmations(chainId)`). */
  confirmations?: number;
}

export interface ValidatorAgentStatus {
  address: Address;
  peerId: string;
  multiaddrs: string[];
  metricsUrl: string | null;
}

export interface ValidatorAgent {
  start(): Promise<ValidatorAgentStatus>;
  stop(): Promise<void>;
  readonly parts: { validator?: Validator; checker?: SearchChecker; p2p?: P2PNode };
}

export function createValidatorAgent(init: ValidatorAgentInit, components: { logger?: Logger } = {}): ValidatorAgent {
  const log = components.logger ?? silentLogger;
  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  const parts: ValidatorAgent["parts"] = {};
  const controller = new AbortController();
  let metrics: MetricsServer | undefined;
  let stopping: Promise<void> | undefined;

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      controller.abort();
      for (const step of stops.splice(0).reverse()) {
        try {
          await step.stop();
        } catch (err) {
          log.warn("stop failed", { part: step.name, error: (err as Error).message });
        }
      }
    })();
    return stopping;
  };

  const start = async (): Promise<ValidatorAgentStatus> => {
    const clients = createChainClients({ rpcUrl: init.rpcUrl ?? init.deployment.rpcUrl, chainId: init.deployment.chainId, privateKey: init.privateKey });
    await verifyChain(clients.publicClient, init.deployment.chainId, clients.rpcUrl);
    const contracts = getMuriContracts(init.deployment.contracts, clients);
    const readContracts = getMuriContracts(init.deployment.contracts, { publicClient: clients.publicClient });
    const address = clients.account.address;

    const metaDb = await openMetaDb(join(init.dir, "meta"));
    stops.push({ name: "meta", stop: () => metaDb.close() });
    const store = await openFragmentStore({ dir: init.dir, quotaBytes: VALIDATOR_QUOTA_BYTES, metaDb, logger: log });
    stops.push({ name: "store", stop: () => store.close() });
    const index = createMaguIndex({ logger: log }, { metaDb });
    const vectors = createVectorService({ member: address, dir: init.dir, observer: true }, { store, index, metaDb, contracts: readContracts, logger: log });
    stops.push({ name: "vectors", stop: () => vectors.close() });
    const ban = (peer: string, reason: string): void => void parts.p2p?.banList.ban(peer, reason);
    const sync = createMaguSync({ member: address, observer: true, vectors, ban }, { store, index, metaDb, contracts: readContracts, logger: log });
    // The documents a validator keeps are served as a member's are: to members, validators, grantees.
    const access = createAgentAccessGate(init.deployment, { contracts: readContracts, maguOf: (cid) => sync.maguOf(cid), publicClient: clients.publicClient, logger: log });
    await sync.load();
    await vectors.load();

    const p2p = await createP2PNode({
      privateKey: await loadOrCreatePrivateKey(join(init.dir, "peer.key")),
      listen: init.listen ?? ["/ip4/127.0.0.1/tcp/0"],
      announce: init.announce,
      source: servingView(store),
      sink: sync.sink,
      acceptPush: sync.acceptPush,
      authorizeFetch: ({ peer, cid }) => access.serveReason(peer.toString(), cid),
    });
    await p2p.start();
    stops.push({ name: "p2p", stop: () => p2p.stop() });
    parts.p2p = p2p;

    const minStake = (await contracts.nodeRegistry.read.config()).minStake;
    await ensureValidatorRegistered(
      { contracts, publicClient: clients.publicClient, logger: log },
      {
        address,
        nodeRegistryAddress: init.deployment.contracts.nodeRegistry,
        stake: init.stake ?? 2n * minStake,
        peerId: `0x${Buffer.from(p2p.peerId.toMultihash().bytes).toString("hex")}`,
        multiaddrs: p2p.multiaddrs.map(String),
      },
    );

    const validator = createValidator(
      { address, pollMs: init.pollMs, claimRewards: init.claimRewards, auditIntervalMs: init.auditIntervalMs },
      { contracts, publicClient: clients.publicClient, walletClient: clients.walletClient, fetcher: p2p, logger: log },
    );
    parts.validator = validator;
    if (init.metricsPort !== undefined) {
      metrics = await startMetricsServer({ port: init.metricsPort }, { registry: validator.registry });
      const server = metrics;
      stops.push({ name: "metrics", stop: () => server.close() });
    }
    await validator.start();
    stops.push({ name: "validator", stop: () => validator.stop() });

    // Every Magu's documents by the CID its latest DataCommitted names (a validator that joined
    // after the upload, or missed the client's push). Fetched in the background, one at a time; a
    // fetch nobody served (a member that has not seen this validator's registration yet refuses it,
    // a stopped member times out) is tried again with a growing pause, and the fetches still owed
    // are kept in the metadata database so a restart resumes them.
    const owed = metaDb.bucket(Bucket.task);
    const owedKey = (maguId: bigint): Uint8Array => Buffer.concat([Buffer.from(OWED_PREFIX), Buffer.from(maguId.toString(16).padStart(64, "0"), "hex")]);
    /**
     * The owed record of `maguId` removed, if it is still this batch's (a later batch replaces it)
     * or unreadable.
     */
    const settleOwed = async (maguId: bigint, indexCid: CID): Promise<void> => {
      const kept = await owed.get(owedKey(maguId));
      if (kept === undefined) return;
      const record = readOwed(kept);
      if (record === undefined || record.indexCid.equals(indexCid)) await owed.del(owedKey(maguId));
    };
    let fetching: Promise<unknown> = Promise.resolve();
    const fetchDocuments = (maguId: bigint, indexCid: CID, fragmentCount: number, attempt: number): void => {
      const ctx = { magu: maguId.toString(), index: indexCid.toString() };
      fetching = fetching.then(async () => {
        if (controller.signal.aborted) return;
        let reason: string;
        try {
          const info = await readContracts.maguRegistry.read.maguInfo([maguId]);
          const rec = await index.get(maguId);
          // Ended, a later batch follows (its own event fetches it), or pushed to us meanwhile.
          const done = info.status !== 2 || info.fragmentCount !== fragmentCount || (rec !== undefined && rec.fragmentCount >= fragmentCount);
          const from = done ? undefined : await fetchBatchDocuments(
            { p2p, contracts: readContracts, store, self: address, logger: log, signal: controller.signal },
            maguId,
            indexCid,
            async (cid, bytes) => {
              await sync.sink.put(cid, bytes);
            },
          );
          if (done || from !== undefined) {
            await settleOwed(maguId, indexCid);
            if (from !== undefined) log.info("magu documents fetched", { ...ctx, from, attempt });
            return;
          }
          reason = "no member served them";
        } catch (err) {
          if (controller.signal.aborted) return;
          reason = describeError(err);
        }
        if (attempt + 1 >= DOCUMENT_FETCH_ATTEMPTS) {
          await settleOwed(maguId, indexCid).catch(() => undefined);
          log.warn("gave up fetching the magu documents; the next batch's commit or a client's push brings them", { ...ctx, attempts: attempt + 1, reason });
          return;
        }
        const waitMs = Math.min(DOCUMENT_RETRY_MAX_MS, DOCUMENT_RETRY_MS * 2 ** attempt);
        log.warn("magu documents not fetched; trying again", { ...ctx, attempt, reason, retryInMs: waitMs });
        void pause(waitMs, controller.signal).then(
          () => fetchDocuments(maguId, indexCid, fragmentCount, attempt + 1),
          () => undefined,
        );
      });
    };
    for await (const [key, value] of owed.entries()) {
      if (key.length !== OWED_PREFIX.length + 32 || Buffer.from(key.subarray(0, OWED_PREFIX.length)).toString() !== OWED_PREFIX) continue;
      const maguId = BigInt(`0x${Buffer.from(key.subarray(OWED_PREFIX.length)).toString("hex")}`);
      const record = readOwed(value);
      if (record !== undefined) {
        fetchDocuments(maguId, record.indexCid, record.fragmentCount, 0);
        continue;
      }
      // Unreadable: dropped; the Magu's next commit or a client's push brings its documents.
      log.warn("dropped an unreadable owed document fetch", { magu: maguId.toString(), record: Buffer.from(value).toString("hex").slice(0, 64) });
      await owed.del(key);
    }
    const confirmations = init.confirmations ?? defaultConfirmations(init.deployment.chainId);
    const follower = createEventFollower(
      {
        id: "validator-batches",
        contracts: [{ address: init.deployment.contracts.maguRegistry, abi: maguRegistryAbi, eventNames: ["DataCommitted"], name: "MaguRegistry" }],
        fromBlock: init.deployment.deployBlock,
        confirmations,
        pollMs: init.pollMs ?? 1_000,
      },
      { publicClient: clients.publicClient, metaDb, logger: log },
    );
    follower.on<{ magu: bigint; fragmentCount: number; root: Hex; indexCid: Hex }>("DataCommitted", async (e) => {
      const maguId = e.args.magu;
      const rec = await index.get(maguId);
      if (rec !== undefined && rec.fragmentCount >= e.args.fragmentCount) return; // pushed to us already
      const info = await readContracts.maguRegistry.read.maguInfo([maguId]);
      if (info.status !== 2 || info.fragmentCount !== e.args.fragmentCount || e.args.indexCid.length <= 2) return; // ended, or a later batch follows
      const indexCid = CID.decode(Buffer.from(e.args.indexCid.slice(2), "hex"));
      // Owed before the follower moves past the event: a crash now still fetches it after the restart.
      await owed.put(owedKey(maguId), encodeOwed({ indexCid, fragmentCount: e.args.fragmentCount }));
      fetchDocuments(maguId, indexCid, e.args.fragmentCount, 0);
    });
    await follower.start();
    stops.push({ name: "batch follower", stop: async () => {
      await follower.stop();
      await fetching;
    } });

    // Audit targets from the documents recorded here (pushed by clients or fetched above).
    const known = new Map<bigint, string>();
    const syncTargets = async (): Promise<void> => {
      for (const maguId of await index.maguIds()) {
        const rec = await index.get(maguId);
        if (rec === undefined || known.get(maguId) === rec.root) continue;
        try {
          await validator.addAuditTargets(maguId, rec.cids, rec.fragmentRoots);
          known.set(maguId, rec.root);
        } catch (err) {
          log.warn("audit targets refused", { magu: maguId.toString(), error: (err as Error).message });
        }
      }
    };
    const targetLoop = (async () => {
      while (!controller.signal.aborted) {
        await syncTargets().catch((err: unknown) => log.warn("audit target sync failed", { error: (err as Error).message }));
        await pause(TARGET_SYNC_MS, controller.signal).catch(() => undefined);
      }
    })();
    stops.push({ name: "audit targets", stop: () => targetLoop });

    if (init.deployment.contracts.searchMarket !== undefined) {
      const checker = createSearchChecker(
        { address, fromBlock: init.deployment.deployBlock, confirmations },
        { contracts, publicClient: clients.publicClient, vectors, p2p, metaDb, logger: log },
      );
      await checker.start();
      stops.push({ name: "search checker", stop: () => checker.stop() });
      parts.checker = checker;
    }
    registerFollowerMetrics(validator.registry, {
      "validator-batches": () => follower.status(),
      ...(parts.checker ? { "search-checker": parts.checker.followerStatus } : {}),
    });
    return { address, peerId: p2p.peerId.toString(), multiaddrs: p2p.multiaddrs.map(String), metricsUrl: metrics?.url ?? null };
  };

  return {
    async start() {
      try {
        return await start();
      } catch (err) {
        await stop();
        throw err;
      }
    },
    stop,
    parts,
  };
}
