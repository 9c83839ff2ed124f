/**
 * On-chain search tasks on a node (docs/SEARCH.md): for each `TaskSubmitted` on a vector Magu
 * this node indexes and is a member of, whose document here covers the task's snapshot (so it
 * knows every deletion the task is judged by), it computes its exact local top-k over the fragments it
 * holds, deleted ids left out, commits `keccak256(abi.encode(task, member, salt, entries))` before the commit deadline,
 * and reveals the entries after it, before the reveal deadline.
 *
 * State per task lives in `Bucket.task` (key `s` ‖ task id u256) and is written before each
 * transaction (salt and entries first, then `committed`, then `revealed`), so a restart reveals
 * what it committed and never commits twice; tasks past their reveal deadline are dropped.
 * The chain is asked before each send (`memberTask`): a commit or reveal that already landed
 * (a restart after sending) is not sent again.
 *
 * `fault` exists for tests only: `false-distance` reveals its best entry with a distance lowered
 * by one (a lie the validator must catch); the commitment covers the lie, so it is revealed.
 * `ignore-deletions` answers as if no vector had been deleted (vector-service.ts).
 */
import { randomBytes } from "node:crypto";
import { encodeAbiParameters, keccak256, type Address, type Hex } from "viem";
import { pause, searchMarketAbi, createEventFollower, describeError, type EventFollower, type FollowerStatus, type MuriContracts, type MuriPublicClient, type MuriWalletClient } from "../../chain/index.js";
import { decodeVector, encodeHitHex, vectorSize } from "../../data/vectors.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import { Bucket, type MetaDb } from "../../store/meta-db.js";
import type { SearchFault, VectorService } from "../shared/vector-service.js";
import { placedFragments } from "../shared/search-market.js";

export const DEFAULT_TASK_POLL_MS = 500;
const RECEIPT_TIMEOUT_MS = 60_000;

/** What a node stores about one task. */
interface TaskRecord {
  task: string;
  magu: string;
  salt: Hex;
  entries: Hex[];
  commitDeadline: string;
  revealDeadline: string;
  state: "planned" | "committed" | "revealed";
}

export interface SearchTasksInit {
  member: Address;
  /** First block to follow from when no cursor is stored (the deployment block). */
  fromBlock: bigint;
  /** Blocks the task follower stays behind the head (default 0). */
  confirmations?: number;
  /** Tasks paying less than this (wei) are not answered: the operator's fee floor (default 0). */
  minFee?: bigint;
  pollMs?: number;
  /** Test-only misbehaviour (see the module comment). */
  fault?: SearchFault;
}

export interface SearchTasksComponents {
  contracts: MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;
  publicClient: MuriPublicClient;
  vectors: VectorService;
  metaDb: MetaDb;
  logger?: Logger;
}

export interface SearchTasks {
  start(): Promise<void>;
  stop(): Promise<void>;
  stats(): { committed: number; revealed: number; failed: number; belowFee: number };
  /** Health of the task follower (undefined before start). */
  followerStatus(): FollowerStatus | undefined;
}

/** The commitment a member sends for `entries` (docs/SEARCH.md). */
export function searchCommitment(task: bigint, member: Address, salt: Hex, entries: readonly Hex[]): Hex {
  return keccak256(
    encodeAbiParameters([{ type: "uint256" }, { type: "address" }, { type: "bytes32" }, { type: "bytes32[]" }], [task, member, salt, entries as Hex[]]),
  );
}

function taskKey(task: bigint): Uint8Array {
  return Buffer.concat([Buffer.from("s"), Buffer.from(task.toString(16).padStart(64, "0"), "hex")]);
}

export function createSearchTasks(init: SearchTasksInit, components: SearchTasksComponents): SearchTasks {
  const log = components.logger ?? silentLogger;
  const { contracts, publicClient, vectors, metaDb } = components;
  const market = contracts.searchMarket;
  const bucket = metaDb.bucket(Bucket.task);
  const controller = new AbortController();
  const stats = { committed: 0, revealed: 0, failed: 0, belowFee: 0 };
  let follower: EventFollower | undefined;
  let loop: Promise<void> | undefined;
  /** Messages already logged per task, so a retrying pass does not flood the log. */
  const logged = new Set<string>();

  const save = (r: TaskRecord): Promise<void> => bucket.put(taskKey(BigInt(r.task)), Buffer.from(JSON.stringify(r)), { sync: true });

  const send = async (what: string, r: TaskRecord, write: () => Promise<Hex>): Promise<boolean> => {
    try {
      const hash = await write();
      const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 200, timeout: RECEIPT_TIMEOUT_MS });
      if (receipt.status !== "success") throw new Error(`${what} reverted (tx ${hash})`);
      return true;
    } catch (err) {
      stats.failed++;
      const message = describeError(err);
      const key = `${r.task}:${what}:${message}`;
      if (!logged.has(key)) {
        logged.add(key);
        log.warn(`search task ${what} failed`, { task: r.task, error: message });
      }
      return false;
    }
  };

  const onSubmitted = async (args: { task: bigint; magu: bigint; query: Hex; k: bigint; fee: bigint; commitDeadline: bigint; revealDeadline: bigint }): Promise<void> => {
    const key = taskKey(args.task);
    if (await bucket.has(key)) return;
    if (!vectors.maguIds().includes(args.magu)) return;
    if (init.minFee !== undefined && args.fee < init.minFee) {
      stats.belowFee++;
      log.info("search task below this node's fee floor: not answered", { task: args.task.toString(), fee: args.fee.toString(), minFee: init.minFee.toString() });
      return;
    }
    const head = await publicClient.getBlockNumber({ cacheTime: 0 });
    if (head + 1n > args.commitDeadline) {
      log.warn("search task seen after its commit deadline: skipped", { task: args.task.toString(), head: head.toString() });
      return;
    }
    const membership = await contracts.maguRegistry.read.membership([args.magu, init.member]);
    if (!membership.active) return;
    const doc = await vectors.manifest(args.magu);
    if (doc === undefined) return;
    // The task is judged against the Magu as it was at submission: a document behind that may miss
    // a deletion committed before it, and an answer with a deleted id is disputed. Wait it out.
    const snapshot = await contracts.searchMarket.read.task([args.task]);
    if (doc.manifest.fragments.length < snapshot.fragmentCount) {
      log.warn("search task: this node's document is behind the task's snapshot; not answered", {
        task: args.task.toString(),
        fragments: doc.manifest.fragments.length,
        snapshot: snapshot.fragmentCount,
      });
      return;
    }
    const bytes = Buffer.from(args.query.slice(2), "hex");
    const { dim, metric } = doc.manifest;
    if (bytes.length !== vectorSize(dim, metric)) return; // the contract checks this; nothing to answer
    const query = decodeVector(bytes, dim, metric); // int16 components, or bits with the padding cleared
    const k = Number(args.k);
    const found = await vectors.search(args.magu, query, k, { exact: true });
    // Only fragments this member is placed on: an entry from another's fragment reads as copied
    // (SearchMarket's NotHolder) and costs the dispute slash, even when it is true.
    const placed = await placedFragments(contracts, args.magu, init.member, found.hits.map((h) => h.fragment));
    const hits = found.hits.filter((h) => placed.has(h.fragment));
    if (hits.length < found.hits.length) {
      log.warn("search task: hits from fragments this node is not placed on left out", { task: args.task.toString(), dropped: found.hits.length - hits.length });
    }
    if (init.fault === "false-distance" && hits.length > 0) hits[0] = { ...hits[0]!, distance: hits[0]!.distance - 1n };
    const record: TaskRecord = {
      task: args.task.toString(),
      magu: args.magu.toString(),
      salt: `0x${randomBytes(32).toString("hex")}`,
      entries: hits.map((h) => encodeHitHex(h)),
      commitDeadline: args.commitDeadline.toString(),
      revealDeadline: args.revealDeadline.toString(),
      state: "planned",
    };
    await save(record);
    log.info("search task answered locally", { task: record.task, magu: record.magu, hits: hits.length });
    kick(record);
  };

  /** Tasks with a step in progress (each task advances one step at a time, tasks in parallel). */
  const inflight = new Set<string>();
  const kick = (r: TaskRecord): void => {
    if (inflight.has(r.task) || controller.signal.aborted) return;
    inflight.add(r.task);
    void advance(r)
      .catch((err: unknown) => log.warn("search task step failed", { task: r.task, error: describeError(err) }))
      .finally(() => inflight.delete(r.task));
  };

  /** Sends what is due for one task; returns false once the task needs nothing more. */
  const advance = async (r: TaskRecord): Promise<boolean> => {
    const task = BigInt(r.task);
    const head = await publicClient.getBlockNumber({ cacheTime: 0 });
    const commitDeadline = BigInt(r.commitDeadline);
    const revealDeadline = BigInt(r.revealDeadline);
    if (head + 1n > revealDeadline) {
      if (r.state !== "revealed") log.warn("search task reveal window passed", { task: r.task, state: r.state });
      await bucket.del(taskKey(task));
      return false;
    }
    const onChain = await market.read.memberTask([task, init.member]);
    if (r.state === "planned") {
      if (onChain.commitment !== `0x${"0".repeat(64)}`) {
        r.state = "committed";
        await save(r);
      } else if (head + 1n <= commitDeadline) {
        const commitment = searchCommitment(task, init.member, r.salt, r.entries);
        if (await send("commit", r, () => market.write.commit([task, commitment]))) {
          stats.committed++;
          r.state = "committed";
          await save(r);
          log.info("search task committed", { task: r.task });
        }
        return true;
      } else {
        await bucket.del(taskKey(task));
        return false;
      }
    }
    if (r.state === "committed" && head >= commitDeadline) {
      if (onChain.revealed) {
        r.state = "revealed";
      } else if (await send("reveal", r, () => market.write.reveal([task, r.entries, r.salt]))) {
        stats.revealed++;
        r.state = "revealed";
        log.info("search task revealed", { task: r.task, entries: r.entries.length });
      }
      if (r.state === "revealed") {
        await bucket.del(taskKey(task));
        return false;
      }
    }
    return true;
  };

  const pass = async (): Promise<void> => {
    for await (const [, value] of bucket.entries()) {
      let r: TaskRecord;
      try {
        r = JSON.parse(Buffer.from(value).toString("utf8")) as TaskRecord;
      } catch {
        continue;
      }
      kick(r);
    }
  };

  return {
    async start() {
      follower = createEventFollower(
        {
          id: "search-tasks",
          contracts: [{ address: market.address, abi: searchMarketAbi, eventNames: ["TaskSubmitted"], name: "SearchMarket" }],
          fromBlock: init.fromBlock,
          confirmations: init.confirmations ?? 0,
          pollMs: init.pollMs ?? DEFAULT_TASK_POLL_MS,
        },
        { publicClient, metaDb, logger: log },
      );
      follower.on<{ task: bigint; magu: bigint; query: Hex; k: bigint; fee: bigint; commitDeadline: bigint; revealDeadline: bigint }>("TaskSubmitted", (e) =>
        onSubmitted(e.args).catch((err: unknown) => {
          // Never block the follower on one task: log and move on (the deadline will not wait).
          stats.failed++;
          log.error("search task could not be answered", { task: e.args.task.toString(), error: describeError(err) });
        }),
      );
      await follower.start();
      const signal = controller.signal;
      loop = (async () => {
        while (!signal.aborted) {
          await pass().catch((err: unknown) => log.warn("search task pass failed", { error: describeError(err) }));
          await pause(init.pollMs ?? DEFAULT_TASK_POLL_MS, signal).catch(() => undefined);
        }
      })();
    },
    async stop() {
      controller.abort();
      await follower?.stop();
      await loop;
      while (inflight.size > 0) await new Promise((resolve) => setTimeout(resolve, 50));
    },
    stats: () => ({ ...stats }),
    followerStatus: () => follower?.status(),
  };
}
