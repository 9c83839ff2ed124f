/**
 * The validator's search duties (docs/SEARCH.md): check every revealed entry of every search task
 * and dispute the false ones, then finalize tasks whose dispute window closed.
 *
 * - `TaskSubmitted` events give the query (kept with the task in `Bucket.task`, key `v` ‖ task id,
 *   so a restart still checks and finalizes open tasks).
 * - `ResultRevealed(task, member, entries)`: each entry names (fragment, position); the fragment
 *   comes from the Magu's vector index document (pushed to validators by the client) and is fetched
 *   from one of its holders (verified by CID and fragment root; a small LRU keeps recent ones).
 *   The record at that position is compared with the entry: past the fragment's end, another id,
 *   or another canonical distance is a lie, and the checker sends `dispute` with the leaves that
 *   hold the record, their paths and the fragment's path to the task's root.
 * - Before any data, the entry's fragment must be one the member is placed on
 *   (`MaguRegistry.holders`): an entry from another member's fragment was copied from an earlier
 *   answer, not searched, and is disputed without data (SearchMarket's `NotHolder`).
 * - An entry whose id is a control record's (a payload chunk or tombstone, never a vector) is
 *   disputed without data (`ControlRecord`); one whose id a tombstone under the task's root
 *   deletes (the document lists each tombstone fragment's ids, docs/SEARCH.md "Deleting vectors")
 *   is disputed with `disputeDeleted`: the tombstone record, rebuilt from the document's ids (its
 *   bytes are a function of them), with its leaves and paths to the task's root.
 * - Each pass, open tasks past their dispute deadline are finalized (search-market.ts).
 * An entry the checker cannot check (no document, no holder answering) is logged, not disputed.
 */
import type { Address, Hex } from "viem";
import { createEventFollower, describeError, pause, searchMarketAbi, type EventFollower, type FollowerStatus, type MuriContracts, type MuriPublicClient, type MuriWalletClient } from "../../chain/index.js";
import { LEAF_SIZE } from "../../data/constants.js";
import { buildFragmentTree, buildMaguTree, fragmentLeafProof, fragmentRoot, leafCount, maguProof } from "../../data/merkle.js";
import { holdersVector } from "../../data/placement.js";
import { canonicalDistance, decodeHit, decodeVector, isControlId, packTombstones, readVector, recordSize, tombstonesPerRecord, type VectorMetric } from "../../data/vectors.js";
import type { P2PNode } from "../../p2p/index.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import { Bucket, type MetaDb } from "../../store/meta-db.js";
import { registeredPeer } from "../shared/peers.js";
import { finalizeTask, placedFragments } from "../shared/search-market.js";
import type { VectorService } from "../shared/vector-service.js";

const RECEIPT_TIMEOUT_MS = 60_000;
const FRAGMENT_CACHE = 32;
const ZERO_ADDRESS = /^0x0{40}$/i;
const METRIC_NAMES: Record<number, VectorMetric> = { 1: "l2", 2: "ip", 3: "cosine", 4: "hamming" };

/** `SearchMarket.dispute`'s proof. */
interface DisputeProof {
  query: Hex;
  entries: Hex[];
  index: bigint;
  size: bigint;
  leaves: Hex[];
  leafProofs: Hex[][];
  fragmentProof: Hex[];
}

/** `SearchMarket.disputeDeleted`'s proof. */
interface DeletionProof {
  entries: Hex[];
  index: bigint;
  fragment: number;
  position: number;
  slot: number;
  size: bigint;
  leaves: Hex[];
  leafProofs: Hex[][];
  fragmentProof: Hex[];
}

interface OpenTask {
  task: string;
  magu: string;
  query: Hex;
  disputeDeadline: string;
}

export interface SearchCheckerInit {
  address: Address;
  fromBlock: bigint;
  pollMs?: number;
  /** Blocks the task follower stays behind the head (default 0). */
  confirmations?: number;
}

export interface SearchCheckerComponents {
  contracts: MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;
  publicClient: MuriPublicClient;
  vectors: VectorService;
  p2p: P2PNode;
  metaDb: MetaDb;
  logger?: Logger;
}

export interface SearchChecker {
  start(): Promise<void>;
  stop(): Promise<void>;
  stats(): { checked: number; disputed: number; unchecked: number; finalized: number };
  /** Health of the task follower (undefined before start). */
  followerStatus(): FollowerStatus | undefined;
}

function taskKey(task: bigint): Uint8Array {
  return Buffer.concat([Buffer.from("v"), Buffer.from(task.toString(16).padStart(64, "0"), "hex")]);
}

export function createSearchChecker(init: SearchCheckerInit, components: SearchCheckerComponents): SearchChecker {
  const log = components.logger ?? silentLogger;
  const { contracts, publicClient, vectors, p2p, metaDb } = components;
  const market = contracts.searchMarket;
  const bucket = metaDb.bucket(Bucket.task);
  const controller = new AbortController();
  const stats = { checked: 0, disputed: 0, unchecked: 0, finalized: 0 };
  const fragments = new Map<string, Uint8Array>();
  let follower: EventFollower | undefined;
  let loop: Promise<void> | undefined;

  const readTask = async (task: bigint): Promise<OpenTask | undefined> => {
    const raw = await bucket.get(taskKey(task));
    return raw === undefined ? undefined : (JSON.parse(Buffer.from(raw).toString("utf8")) as OpenTask);
  };

  /** Fragment `f` of `maguId` as the task's root commits it (from any holder), or undefined. */
  const fetchFragment = async (maguId: bigint, f: number, root: string): Promise<Uint8Array | undefined> => {
    const doc = await vectors.manifest(maguId);
    const entry = doc?.manifest.fragments[f];
    if (entry === undefined) return undefined;
    const cached = fragments.get(entry.cid.toString());
    if (cached !== undefined) return cached;
    const info = await contracts.maguRegistry.read.maguInfo([maguId]);
    for (const slot of holdersVector(maguId, f, info.members.length, info.params.replication)) {
      const holder = info.members[slot]!;
      if (ZERO_ADDRESS.test(holder)) continue;
      try {
        const peerId = await registeredPeer(contracts, p2p, holder);
        const bytes = await p2p.fetchFragment(peerId, entry.cid, { timeoutMs: 10_000 });
        if (fragmentRoot(bytes).toString("hex") !== root) continue;
        fragments.set(entry.cid.toString(), bytes);
        if (fragments.size > FRAGMENT_CACHE) fragments.delete(fragments.keys().next().value!);
        return bytes;
      } catch (err) {
        log.debug("search check: holder did not serve the fragment", { magu: maguId.toString(), fragment: f, holder, error: describeError(err) });
      }
    }
    return undefined;
  };

  const check = async (task: bigint, member: Address, entries: readonly Hex[]): Promise<void> => {
    const open = await readTask(task);
    if (open === undefined) return;
    const info = await market.read.task([task]);
    const maguId = BigInt(open.magu);
    const dim = info.dimension;
    const metric = METRIC_NAMES[info.metric];
    if (metric === undefined) return;
    const doc = await vectors.manifest(maguId);
    if (doc === undefined || doc.manifest.fragments.length < info.fragmentCount) {
      stats.unchecked += entries.length;
      log.warn("search check: no vector index document covering the task", { task: task.toString(), magu: open.magu });
      return;
    }
    const roots = doc.manifest.fragments.slice(0, info.fragmentCount).map((fr) => Buffer.from(fr.root, "hex"));
    const queryBytes = Buffer.from(open.query.slice(2), "hex");
    const query = decodeVector(queryBytes, dim, metric); // the contract checked its length at submit
    const rs = recordSize(dim, metric);
    const hits = entries.map((e) => decodeHit(e));
    const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString("hex")}`;
    // Where the task's tombstones list each deleted id: (fragment, record, slot).
    const tombstones = new Map<bigint, { fragment: number; position: number; slot: number }>();
    const perRecord = tombstonesPerRecord(rs - 8);
    doc.manifest.fragments.slice(0, info.fragmentCount).forEach((f, fragment) => {
      f.deleted?.forEach((id, i) => tombstones.set(id, { fragment, position: Math.floor(i / perRecord), slot: i % perRecord }));
    });
    const placed = await placedFragments(contracts, maguId, member, hits.map((h) => h.fragment));
    for (let index = 0; index < entries.length; index++) {
      const hit = hits[index]!;
      if (isControlId(hit.id)) {
        stats.checked++;
        log.warn("search check: false entry, disputing", { task: task.toString(), member, index, lie: `id ${hit.id} is a control record's, not a vector's` });
        await sendDispute(task, member, index, { query: open.query, entries: [...entries], index: BigInt(index), size: 0n, leaves: [], leafProofs: [], fragmentProof: [] });
        return;
      }
      const tomb = tombstones.get(hit.id);
      if (tomb !== undefined) {
        stats.checked++;
        log.warn("search check: false entry, disputing", { task: task.toString(), member, index, lie: `id ${hit.id} was deleted (tombstone fragment ${tomb.fragment})` });
        const entry = doc.manifest.fragments[tomb.fragment]!;
        const bytes = packTombstones(entry.deleted!, dim, metric, entry.size)[0]!;
        const tree = buildFragmentTree(bytes);
        const start = tomb.position * rs;
        const proofs = [];
        for (let l = Math.floor(start / LEAF_SIZE); l <= Math.floor((start + rs - 1) / LEAF_SIZE); l++) proofs.push(fragmentLeafProof(bytes, l, tree));
        await sendDeletionDispute(task, member, index, {
          entries: [...entries],
          index: BigInt(index),
          fragment: tomb.fragment,
          position: tomb.position,
          slot: tomb.slot,
          size: BigInt(bytes.length),
          leaves: proofs.map((p) => hex(p.chunk)),
          leafProofs: proofs.map((p) => p.siblings.map(hex)),
          fragmentProof: maguProof(buildMaguTree(roots), tomb.fragment).map(hex),
        });
        return;
      }
      if (!placed.has(hit.fragment)) {
        stats.checked++;
        const lie = `fragment ${hit.fragment} is not placed on the member (an entry copied, not searched)`;
        log.warn("search check: false entry, disputing", { task: task.toString(), member, index, lie });
        const proof = { query: open.query, entries: [...entries], index: BigInt(index), size: 0n, leaves: [], leafProofs: [], fragmentProof: [] };
        await sendDispute(task, member, index, proof);
        return;
      }
      const bytes = await fetchFragment(maguId, hit.fragment, roots[hit.fragment]!.toString("hex"));
      if (bytes === undefined) {
        stats.unchecked++;
        log.warn("search check: fragment unavailable, entry not checked", { task: task.toString(), member, fragment: hit.fragment });
        continue;
      }
      stats.checked++;
      const start = hit.position * rs;
      let lie: string | undefined;
      if (start + rs > bytes.length) lie = "record past the fragment's end";
      else {
        const record = Buffer.from(bytes.buffer, bytes.byteOffset + start, rs);
        const id = record.readBigUInt64BE(0);
        const distance = canonicalDistance(metric, query, readVector(record, 8, dim, metric));
        if (id !== hit.id) lie = `record ${hit.position} has id ${id}, not ${hit.id}`;
        else if (distance !== hit.distance) lie = `distance is ${distance}, not ${hit.distance}`;
      }
      if (lie === undefined) continue;
      log.warn("search check: false entry, disputing", { task: task.toString(), member, index, lie });
      const leaves = leafCount(bytes.length);
      const lo = Math.min(Math.floor(start / LEAF_SIZE), leaves - 1);
      const hi = Math.min(Math.floor((start + rs - 1) / LEAF_SIZE), leaves - 1);
      const tree = buildFragmentTree(bytes);
      const proofs = [];
      for (let l = lo; l <= hi; l++) proofs.push(fragmentLeafProof(bytes, l, tree));
      const proof = {
        query: open.query,
        entries: [...entries],
        index: BigInt(index),
        size: BigInt(bytes.length),
        leaves: proofs.map((p) => hex(p.chunk)),
        leafProofs: proofs.map((p) => p.siblings.map(hex)),
        fragmentProof: maguProof(buildMaguTree(roots), hit.fragment).map(hex),
      };
      await sendDispute(task, member, index, proof);
      return; // one proven lie drops the member's whole list
    }
  };

  const sendDispute = async (task: bigint, member: Address, index: number, proof: DisputeProof): Promise<void> => {
    try {
      const hash = await market.write.dispute([task, member, proof]);
      const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 200, timeout: RECEIPT_TIMEOUT_MS });
      if (receipt.status !== "success") throw new Error(`dispute reverted (tx ${hash})`);
      stats.disputed++;
      log.info("search check: dispute accepted", { task: task.toString(), member, index });
    } catch (err) {
      log.error("search check: dispute failed", { task: task.toString(), member, index, error: describeError(err) });
    }
  };

  const sendDeletionDispute = async (task: bigint, member: Address, index: number, proof: DeletionProof): Promise<void> => {
    try {
      const hash = await market.write.disputeDeleted([task, member, proof]);
      const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 200, timeout: RECEIPT_TIMEOUT_MS });
      if (receipt.status !== "success") throw new Error(`disputeDeleted reverted (tx ${hash})`);
      stats.disputed++;
      log.info("search check: dispute accepted", { task: task.toString(), member, index, deleted: true });
    } catch (err) {
      log.error("search check: dispute failed", { task: task.toString(), member, index, error: describeError(err) });
    }
  };

  const finalizeDue = async (): Promise<void> => {
    const head = await publicClient.getBlockNumber({ cacheTime: 0 });
    for await (const [key, value] of bucket.entries()) {
      if (key[0] !== "v".charCodeAt(0)) continue;
      const open = JSON.parse(Buffer.from(value).toString("utf8")) as OpenTask;
      if (head <= BigInt(open.disputeDeadline)) continue;
      const task = BigInt(open.task);
      try {
        if (!(await market.read.task([task])).finalized && (await finalizeTask(contracts, publicClient, task))) {
          stats.finalized++;
          log.info("search task finalized", { task: open.task });
        }
        await bucket.del(taskKey(task));
      } catch (err) {
        log.warn("search task finalize failed; retrying next pass", { task: open.task, error: describeError(err) });
      }
    }
  };

  return {
    async start() {
      follower = createEventFollower(
        {
          id: "search-checker",
          contracts: [{ address: market.address, abi: searchMarketAbi, eventNames: ["TaskSubmitted", "ResultRevealed"], name: "SearchMarket" }],
          fromBlock: init.fromBlock,
          confirmations: init.confirmations ?? 0,
          pollMs: init.pollMs ?? 500,
        },
        { publicClient, metaDb, logger: log },
      );
      follower.on<{ task: bigint; magu: bigint; query: Hex; disputeDeadline: bigint }>("TaskSubmitted", async (e) => {
        const open: OpenTask = { task: e.args.task.toString(), magu: e.args.magu.toString(), query: e.args.query, disputeDeadline: e.args.disputeDeadline.toString() };
        await bucket.put(taskKey(e.args.task), Buffer.from(JSON.stringify(open)), { sync: true });
      });
      follower.on<{ task: bigint; member: Address; entries: readonly Hex[] }>("ResultRevealed", (e) =>
        check(e.args.task, e.args.member, e.args.entries).catch((err: unknown) =>
          log.error("search check failed", { task: e.args.task.toString(), member: e.args.member, error: describeError(err) }),
        ),
      );
      await follower.start();
      const signal = controller.signal;
      loop = (async () => {
        while (!signal.aborted) {
          await finalizeDue().catch((err: unknown) => log.warn("search finalize pass failed", { error: describeError(err) }));
          await pause(init.pollMs ?? 1_000, signal).catch(() => undefined);
        }
      })();
    },
    async stop() {
      controller.abort();
      await follower?.stop();
      await loop;
    },
    stats: () => ({ ...stats }),
    followerStatus: () => follower?.status(),
  };
}
