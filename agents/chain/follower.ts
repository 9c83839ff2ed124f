/**
 * The event follower: delivers the events of a set of contracts to registered handlers, in chain
 * order, exactly once per completed handler, across restarts and RPC outages (Lodestar's eth1
 * tracker habit on top of viem).
 *
 * - Backfill in bounded block ranges (`batchBlocks`), staying `confirmations` behind the head, then
 *   poll every `pollMs`.
 * - The cursor (last fully processed block and its hash) is persisted in the metadata database
 *   (`Bucket.chainCursor`) after each range. Within a range, each log whose handlers completed is
 *   recorded by (block number, log index), so a restart in the middle of a range never delivers it
 *   again; the records are dropped when the cursor moves past them.
 * - A handler that throws stops progress at that log: it is retried (with back-off) and never
 *   skipped; later logs wait. Handlers of a log that failed may be called again for that log, so
 *   each handler must be idempotent on its own effects (the recorded key covers completed logs).
 * - An unreachable RPC is logged once per outage; requests are retried with capped exponential
 *   back-off and following resumes from the cursor.
 * - Reorganisations: the follower keeps the hashes of the last `CHECKPOINTS` blocks it completed
 *   (persisted with the cursor). Before each range the block under the cursor is checked against
 *   its stored hash; when it changed, the follower rewinds to the newest checkpoint the chain still
 *   has, forgets what it recorded past it, and delivers the new chain's events from there (handlers
 *   must be idempotent: an event of a replaced block that the new chain repeats comes again). Only
 *   a chain that shares none of the checkpoints (a restarted devnet) stops it, with
 *   `ChainResetError`, instead of silently missing events.
 * - Each log's block hash is checked against its block, and the range's last block is read before
 *   and after the logs: a chain that moved during the request reads the range again.
 * - A head below the cursor (a load-balanced RPC whose backend lags) is transient: the follower
 *   waits in state `lagging` unless a checkpoint shows the chain was replaced.
 * - `status()` tells its health: state, cursor, head, lag, reorganisations seen.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { isAddress, toEventSelector } from "viem";
import type { Abi, AbiEvent, Address, ContractEventName, GetEventArgs, Hex, Log, PublicClient } from "viem";
import { Bucket, type MetaDb } from "../store/meta-db.js";
import { silentLogger, type Logger } from "../store/logger.js";
import {
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_BACKOFF_MIN_MS,
  DEFAULT_BATCH_BLOCKS,
  DEFAULT_CONFIRMATIONS,
  DEFAULT_FOLLOWER_ID,
  DEFAULT_POLL_MS,
} from "./constants.js";
import {
  ChainError,
  ChainMovedError,
  ChainResetError,
  CursorCorruptError,
  EventHandlerError,
  InvalidChainOptionError,
  RpcUnavailableError,
  describeError,
  toChainError,
} from "./errors.js";

/** Recent completed blocks whose hashes the follower keeps, to find where a reorganisation began. */
export const CHECKPOINTS = 64;

/** A contract to follow. */
export interface FollowedContract {
  address: Address;
  abi: Abi | readonly unknown[];
  /** Events to deliver (default: every event of the ABI). */
  eventNames?: readonly string[];
  /** Name given to handlers in `ChainEvent.contract` (e.g. `MaguRegistry`). */
  name?: string;
}

export interface EventFollowerInit {
  /** Name of this follower's cursor, so several followers can share one database (default "default"). */
  id?: string;
  contracts: readonly FollowedContract[];
  /** First block to read when no cursor is stored (usually the deployment block). */
  fromBlock: bigint;
  /** Blocks to stay behind the head (default `DEFAULT_CONFIRMATIONS`, 0 for a devnet). */
  confirmations?: number;
  /** Most blocks per `eth_getLogs` (default `DEFAULT_BATCH_BLOCKS`). */
  batchBlocks?: number;
  /** Poll interval once caught up, ms (default `DEFAULT_POLL_MS`). */
  pollMs?: number;
  /** First back-off after a failure, ms; doubles per consecutive failure (default `DEFAULT_BACKOFF_MIN_MS`). */
  backoffMinMs?: number;
  /** Back-off cap, ms (default `DEFAULT_BACKOFF_MAX_MS`). */
  backoffMaxMs?: number;
}

export interface EventFollowerComponents {
  publicClient: PublicClient;
  metaDb: MetaDb;
  logger?: Logger;
}

/** One decoded event as handlers receive it. */
export interface ChainEvent<TArgs = Record<string, unknown>> {
  eventName: string;
  args: TArgs;
  address: Address;
  /** `FollowedContract.name` of the emitting contract, when given. */
  contract?: string;
  blockNumber: bigint;
  blockHash: Hex;
  logIndex: number;
  transactionHash: Hex;
  /** The log as viem returned it. */
  log: Log;
}

/** Typed `args` of event `TName` of `TAbi`, for `follower.on<EventArgs<typeof abi, "Name">>(...)`. */
export type EventArgs<TAbi extends Abi, TName extends ContractEventName<TAbi>> = GetEventArgs<
  TAbi,
  TName,
  { EnableUnion: false; IndexedOnly: false; Required: true }
>;

export type EventHandler<TArgs = Record<string, unknown>> = (event: ChainEvent<TArgs>) => void | Promise<void>;

export type FollowerState = "stopped" | "starting" | "syncing" | "following" | "lagging" | "backing-off" | "failed";

/** The last reorganisation the follower rewound over. */
export interface FollowerReorg {
  /** The cursor before the rewind. */
  from: bigint;
  /** The last block both chains share: following resumed after it. */
  to: bigint;
  /** When it was seen (ms since the epoch). */
  at: number;
}

export interface FollowerStatus {
  state: FollowerState;
  /** Last fully processed block; undefined before the first range completed. */
  cursor?: bigint;
  /** Last head seen. */
  head?: bigint;
  /** Blocks the cursor is behind the head (undefined before both are known). */
  lagBlocks?: bigint;
  /** Reorganisations rewound over since start. */
  reorgs: number;
  lastReorg?: FollowerReorg;
  /** Last failure (cleared by the next success). */
  lastError?: Error;
}

export interface EventFollower {
  /**
   * Registers a handler for `eventName` (or `"*"` for every followed event); returns a function
   * that removes it. Register before `start()`: events already processed are not replayed.
   */
  on<TArgs = Record<string, unknown>>(eventName: string, handler: EventHandler<TArgs>): () => void;
  /** Loads the cursor and starts following in the background. */
  start(): Promise<void>;
  /** Stops following (a handler in progress completes first) and waits for the loop to end. */
  stop(): Promise<void>;
  status(): FollowerStatus;
  /**
   * Resolves once every block up to `block` was processed. Rejects when the follower stops or fails
   * first, or when `options.signal` aborts.
   */
  waitForBlock(block: bigint, options?: { signal?: AbortSignal }): Promise<void>;
}

/** Creates an event follower (the libp2p-style `service(init)(components)` split in one call). */
export function createEventFollower(init: EventFollowerInit, components: EventFollowerComponents): EventFollower {
  return new Follower(init, components);
}

interface Waiter {
  block: bigint;
  resolve(): void;
  reject(err: Error): void;
}

interface Cursor {
  block: bigint;
  hash?: Hex;
}

const utf8 = new TextEncoder();
const HANDLED = Uint8Array.of(1);

class Follower implements EventFollower {
  private readonly id: string;
  private readonly contracts: readonly FollowedContract[];
  private readonly fromBlock: bigint;
  private readonly confirmations: bigint;
  private readonly batchBlocks: bigint;
  private readonly pollMs: number;
  private readonly backoffMinMs: number;
  private readonly backoffMaxMs: number;
  private readonly events: AbiEvent[];
  private readonly addresses: Address[];
  /** Lower-case address -> allowed event names (undefined: all) and contract name. */
  private readonly byAddress: Map<string, { names?: Set<string>; name?: string }>;
  private readonly client: PublicClient;
  private readonly db: MetaDb;
  private readonly log: Logger;
  private readonly url: string | undefined;

  private readonly handlers = new Map<string, Set<EventHandler<never>>>();
  private readonly waiters = new Set<Waiter>();
  private state: FollowerState = "stopped";
  private cursor: Cursor | undefined;
  private head: bigint | undefined;
  private lastError: Error | undefined;
  private reorgs = 0;
  private lastReorg: FollowerReorg | undefined;
  /** Set while the head is below the cursor: logged once per episode. */
  private lagSince: number | undefined;
  private controller: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private starting: Promise<void> | undefined;

  /** Consecutive failures (drives the back-off). */
  private failures = 0;
  /** Set while the RPC is unreachable: logged once per outage. */
  private outage: { since: number; attempts: number } | undefined;
  /** Key of the log whose handler last failed, and how many times (to log once, then quietly). */
  private failingLog: { key: string; attempts: number } | undefined;
  /** Message of the last other failure (to log each distinct one once). */
  private lastOtherFailure: string | undefined;

  constructor(init: EventFollowerInit, components: EventFollowerComponents) {
    this.id = init.id ?? DEFAULT_FOLLOWER_ID;
    if (!/^[\w.-]{1,64}$/.test(this.id)) {
      throw new InvalidChainOptionError({ option: "id", value: this.id }, "use 1-64 letters, digits, '.', '_' or '-'");
    }
    this.confirmations = BigInt(nonNegativeInt("confirmations", init.confirmations ?? DEFAULT_CONFIRMATIONS));
    const batch = nonNegativeInt("batchBlocks", init.batchBlocks ?? DEFAULT_BATCH_BLOCKS);
    if (batch < 1) throw new InvalidChainOptionError({ option: "batchBlocks", value: batch }, "must be at least 1");
    this.batchBlocks = BigInt(batch);
    this.pollMs = nonNegativeInt("pollMs", init.pollMs ?? DEFAULT_POLL_MS);
    this.backoffMinMs = nonNegativeInt("backoffMinMs", init.backoffMinMs ?? DEFAULT_BACKOFF_MIN_MS);
    this.backoffMaxMs = Math.max(this.backoffMinMs, nonNegativeInt("backoffMaxMs", init.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS));
    if (typeof init.fromBlock !== "bigint" || init.fromBlock < 0n) {
      throw new InvalidChainOptionError({ option: "fromBlock", value: init.fromBlock }, "must be a non-negative bigint");
    }
    this.fromBlock = init.fromBlock;
    if (init.contracts.length === 0) {
      throw new InvalidChainOptionError({ option: "contracts", value: "[]" }, "follow at least one contract");
    }

    this.contracts = init.contracts;
    const bySelector = new Map<Hex, AbiEvent>();
    this.byAddress = new Map();
    for (const [i, c] of init.contracts.entries()) {
      if (!isAddress(c.address, { strict: false })) {
        throw new InvalidChainOptionError({ option: `contracts[${i}].address`, value: c.address }, "not an address");
      }
      const abiEvents = (c.abi as Abi).filter((item): item is AbiEvent => item.type === "event");
      const known = new Set(abiEvents.map((e) => e.name));
      for (const name of c.eventNames ?? []) {
        if (!known.has(name)) {
          throw new InvalidChainOptionError(
            { option: `contracts[${i}].eventNames`, value: name },
            `${c.name ?? c.address} has no event ${name} (it has ${[...known].join(", ") || "none"})`,
          );
        }
      }
      const wanted = c.eventNames ? new Set(c.eventNames) : undefined;
      for (const e of abiEvents) {
        if (wanted && !wanted.has(e.name)) continue;
        bySelector.set(toEventSelector(e), e);
      }
      this.byAddress.set(c.address.toLowerCase(), { names: wanted, name: c.name });
    }
    this.events = [...bySelector.values()];
    this.addresses = init.contracts.map((c) => c.address);

    this.client = components.publicClient;
    this.db = components.metaDb;
    this.log = components.logger ?? silentLogger;
    this.url = (this.client.transport as { url?: string }).url ?? this.client.chain?.rpcUrls.default.http[0];
  }

  on<TArgs>(eventName: string, handler: EventHandler<TArgs>): () => void {
    let set = this.handlers.get(eventName);
    if (!set) {
      set = new Set();
      this.handlers.set(eventName, set);
    }
    set.add(handler as EventHandler<never>);
    return () => void set.delete(handler as EventHandler<never>);
  }

  status(): FollowerStatus {
    const cursor = this.cursor && this.cursor.block >= this.fromBlock ? this.cursor.block : undefined;
    const lagBlocks = cursor !== undefined && this.head !== undefined ? this.head - cursor : undefined;
    return { state: this.state, cursor, head: this.head, lagBlocks, reorgs: this.reorgs, lastReorg: this.lastReorg, lastError: this.lastError };
  }

  async start(): Promise<void> {
    if (this.loop) return;
    this.starting ??= this.doStart().finally(() => (this.starting = undefined));
    return this.starting;
  }

  private async doStart(): Promise<void> {
    this.state = "starting";
    let cursor: Cursor;
    try {
      cursor = (await this.loadCursor()) ?? { block: this.fromBlock - 1n };
    } catch (err) {
      this.state = "stopped";
      throw err;
    }
    // A cursor from before `fromBlock` (the init moved forward) starts at `fromBlock`.
    this.cursor = cursor.block >= this.fromBlock - 1n ? cursor : { block: this.fromBlock - 1n };
    this.controller = new AbortController();
    const signal = this.controller.signal;
    this.log.info("event follower started", {
      id: this.id,
      url: this.url,
      contracts: this.contracts.map((c) => c.name ?? c.address),
      resumeFrom: String(this.cursor.block + 1n),
      confirmations: Number(this.confirmations),
    });
    this.loop = this.run(signal).catch((err) => {
      // run() handles every expected failure; anything reaching here is a bug: fail loudly.
      this.fail(err instanceof Error ? err : new Error(String(err)));
    });
  }

  async stop(): Promise<void> {
    await this.starting?.catch(() => {});
    if (!this.loop) return;
    this.controller?.abort();
    await this.loop;
    this.loop = undefined;
    this.controller = undefined;
    if (this.state !== "failed") this.state = "stopped";
    this.rejectWaiters(new Error("event follower stopped"));
    const cursor = this.status().cursor;
    this.log.info("event follower stopped", { id: this.id, cursor: cursor === undefined ? undefined : String(cursor) });
  }

  waitForBlock(block: bigint, options: { signal?: AbortSignal } = {}): Promise<void> {
    if (this.cursor && this.cursor.block >= block) return Promise.resolve();
    if (this.state === "failed") return Promise.reject(this.lastError ?? new Error("event follower failed"));
    if (!this.loop) return Promise.reject(new Error("event follower is not running"));
    return new Promise<void>((resolve, reject) => {
      const signal = options.signal;
      const onAbort = () => {
        this.waiters.delete(waiter);
        reject(signal?.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      const waiter: Waiter = {
        block,
        resolve: () => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        },
        reject: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      this.waiters.add(waiter);
    });
  }

  // ---- the loop -------------------------------------------------------------------------------

  private async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      let delay: number;
      try {
        delay = await this.step(signal);
        this.succeeded();
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof ChainResetError) {
          this.fail(err);
          return;
        }
        delay = this.failed(err);
      }
      if (delay > 0) await pause(delay, signal);
    }
  }

  /** One range (or one look at the head). Returns how long to wait before the next step. */
  private async step(signal: AbortSignal): Promise<number> {
    let cursor = this.cursor!;
    const head = await this.client.getBlockNumber({ cacheTime: 0 });
    this.recovered();
    this.head = head;
    if (cursor.hash && head < cursor.block) {
      // Either this RPC lags (a load balancer's other backend) or the chain was replaced by a
      // shorter one: a checkpoint at or below the head tells which.
      if (!(await this.rewindIfReplaced(cursor, head))) {
        this.lagging(cursor, head);
        return this.pollMs;
      }
      cursor = this.cursor!;
    }
    this.caughtUpWithHead();
    const target = head - this.confirmations;
    if (target <= cursor.block) {
      this.state = "following";
      return this.pollMs;
    }
    this.state = "syncing";
    if (cursor.hash) {
      const block = await this.client.getBlock({ blockNumber: cursor.block });
      if (block.hash !== cursor.hash) {
        await this.rewind(cursor, head, block.hash ?? undefined);
        return 0;
      }
    }

    const from = cursor.block + 1n;
    const to = minBig(cursor.block + this.batchBlocks, target);
    const toBlock = await this.client.getBlock({ blockNumber: to });
    if (from === to && cursor.hash && toBlock.parentHash !== cursor.hash) {
      // The block after the cursor is not its child: the cursor's block was just replaced.
      await this.rewind(cursor, head);
      return 0;
    }
    const logs = await this.fetchLogs(from, to, toBlock.hash!);

    for (const log of logs) {
      if (signal.aborted) return 0; // the cursor stays; recorded logs are skipped next time
      await this.deliver(log);
    }

    const next: Cursor = { block: to, hash: toBlock.hash ?? undefined };
    await this.saveCursor(next);
    this.cursor = next;
    this.resolveWaiters();
    if (to < target) return 0;
    this.state = "following";
    return this.pollMs;
  }

  /** The head is below the cursor and the chain below it is the same: an RPC that lags. */
  private lagging(cursor: Cursor, head: bigint): void {
    this.state = "lagging";
    if (this.lagSince !== undefined) return;
    this.lagSince = Date.now();
    this.log.warn("RPC head is behind the blocks already processed (a lagging RPC backend?); waiting for it", {
      url: this.url,
      head: String(head),
      cursor: String(cursor.block),
    });
  }

  private caughtUpWithHead(): void {
    if (this.lagSince === undefined) return;
    this.log.info("RPC head caught up again", { url: this.url, head: String(this.head), lagMs: Date.now() - this.lagSince });
    this.lagSince = undefined;
  }

  /**
   * With the head below the cursor: whether the newest checkpoint at or below the head still has
   * its hash; if not, the chain was replaced and the follower rewinds (returns true).
   */
  private async rewindIfReplaced(cursor: Cursor, head: bigint): Promise<boolean> {
    const below = (await this.loadCheckpoints()).find((c) => c.block <= head);
    if (below === undefined) {
      // Nothing to compare with: a chain without even the deployment is a reset; else wait.
      if (head < this.fromBlock) throw new ChainResetError({ url: this.url, block: cursor.block, expectedHash: cursor.hash! });
      return false;
    }
    const block = await this.client.getBlock({ blockNumber: below.block });
    if (block.hash === below.hash) return false;
    await this.rewind(cursor, head);
    return true;
  }

  /**
   * The cursor's block was replaced: go back to the newest checkpoint the chain still has, drop the
   * checkpoints and handled-log records past it, and continue from there.
   */
  private async rewind(cursor: Cursor, head: bigint, actualHash?: Hex): Promise<void> {
    for (const c of await this.loadCheckpoints()) {
      if (c.block > head) continue;
      const block = await this.client.getBlock({ blockNumber: c.block });
      if (block.hash !== c.hash) continue;
      await this.forgetAfter(c);
      this.cursor = c;
      this.reorgs++;
      this.lastReorg = { from: cursor.block, to: c.block, at: Date.now() };
      this.log.warn("chain reorganised: rewound to the last shared block; its events are delivered again from there", {
        url: this.url,
        from: String(cursor.block),
        to: String(c.block),
        depth: String(cursor.block - c.block),
        head: String(head),
      });
      return;
    }
    throw new ChainResetError({ url: this.url, block: cursor.block, expectedHash: cursor.hash!, actualHash, checkpoints: CHECKPOINTS });
  }

  /**
   * The range's logs, each checked to come from the chain whose block `to` has hash `toHash`: a
   * log's block hash must be its block's, and `to` must be unchanged after the request.
   */
  private async fetchLogs(from: bigint, to: bigint, toHash: Hex): Promise<ChainEvent[]> {
    const raw = await this.client.getLogs({ address: this.addresses, events: this.events, fromBlock: from, toBlock: to });
    const hashes = new Map<bigint, Hex>([[to, toHash]]);
    for (const log of raw) {
      if (log.blockNumber === null || log.blockHash === null) continue;
      let want = hashes.get(log.blockNumber);
      if (want === undefined) {
        want = (await this.client.getBlock({ blockNumber: log.blockNumber })).hash!;
        hashes.set(log.blockNumber, want);
      }
      if (log.blockHash !== want) throw new ChainMovedError({ url: this.url, block: log.blockNumber, expectedHash: want, actualHash: log.blockHash });
    }
    const after = (await this.client.getBlock({ blockNumber: to })).hash ?? undefined;
    if (after !== toHash) throw new ChainMovedError({ url: this.url, block: to, expectedHash: toHash, actualHash: after });
    const out: ChainEvent[] = [];
    for (const log of raw as (Log & { eventName?: string; args?: unknown })[]) {
      const meta = this.byAddress.get(log.address.toLowerCase());
      if (!meta || !log.eventName) continue;
      if (meta.names && !meta.names.has(log.eventName)) continue;
      if (log.blockNumber === null || log.logIndex === null || log.transactionHash === null || log.blockHash === null) continue;
      out.push({
        eventName: log.eventName,
        args: (log.args ?? {}) as Record<string, unknown>,
        address: log.address,
        contract: meta.name,
        blockNumber: log.blockNumber,
        blockHash: log.blockHash,
        logIndex: log.logIndex,
        transactionHash: log.transactionHash,
        log,
      });
    }
    out.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
    return out;
  }

  private async deliver(event: ChainEvent): Promise<void> {
    const handlers = [...(this.handlers.get(event.eventName) ?? []), ...(this.handlers.get("*") ?? [])];
    if (handlers.length === 0) return;
    const key = this.handledKey(event.blockNumber, event.logIndex);
    const bucket = this.db.bucket(Bucket.chainCursor);
    if (await bucket.has(key)) return;
    for (const handler of handlers) {
      try {
        await (handler as EventHandler)(event);
      } catch (err) {
        const { eventName, blockNumber, logIndex, transactionHash } = event;
        throw new EventHandlerError({ eventName, blockNumber, logIndex, transactionHash }, err);
      }
    }
    await bucket.put(key, HANDLED);
    if (this.failingLog?.key === `${event.blockNumber}:${event.logIndex}`) {
      this.log.info("event handler succeeded after retries", {
        event: event.eventName,
        block: String(event.blockNumber),
        logIndex: event.logIndex,
        attempts: this.failingLog.attempts + 1,
      });
      this.failingLog = undefined;
    }
  }

  // ---- failures and back-off --------------------------------------------------------------------

  private succeeded(): void {
    this.failures = 0;
    this.lastError = undefined;
    this.lastOtherFailure = undefined;
  }

  /** The RPC answered: close an outage if one was open. */
  private recovered(): void {
    if (!this.outage) return;
    this.log.info("RPC reachable again; resuming", {
      url: this.url,
      downMs: Date.now() - this.outage.since,
      attempts: this.outage.attempts,
      resumeFrom: String(this.cursor!.block + 1n),
    });
    this.outage = undefined;
  }

  /** Logs a failure (once per outage / per failing log / per distinct error) and returns the back-off. */
  private failed(err: unknown): number {
    this.failures++;
    const delay = Math.min(this.backoffMaxMs, this.backoffMinMs * 2 ** Math.min(this.failures - 1, 30));
    this.state = "backing-off";
    const chainErr = err instanceof ChainError ? err : toChainError(err, { url: this.url });
    this.lastError = chainErr ?? (err instanceof Error ? err : new Error(String(err)));

    if (chainErr instanceof RpcUnavailableError) {
      if (!this.outage) {
        this.outage = { since: Date.now(), attempts: 1 };
        this.log.warn(`${chainErr.message}; retrying with back-off`, {
          url: this.url,
          retryInMs: delay,
          maxBackoffMs: this.backoffMaxMs,
        });
      } else {
        this.outage.attempts++;
        this.log.debug("RPC still unreachable", { url: this.url, attempts: this.outage.attempts, retryInMs: delay });
      }
      return delay;
    }
    if (chainErr instanceof EventHandlerError) {
      const key = `${chainErr.context.blockNumber}:${chainErr.context.logIndex}`;
      if (this.failingLog?.key !== key) {
        this.failingLog = { key, attempts: 1 };
        this.log.error(`${chainErr.message}; retrying the same log with back-off`, {
          event: chainErr.context.eventName,
          block: String(chainErr.context.blockNumber),
          logIndex: chainErr.context.logIndex,
          tx: chainErr.context.transactionHash,
          retryInMs: delay,
        });
      } else {
        this.failingLog.attempts++;
        this.log.debug("event handler failed again", { key, attempts: this.failingLog.attempts, retryInMs: delay });
      }
      return delay;
    }
    const line = describeError(err, { url: this.url });
    if (line !== this.lastOtherFailure) {
      this.lastOtherFailure = line;
      this.log.warn(`event follower: ${line}; retrying with back-off`, { retryInMs: delay });
    }
    return delay;
  }

  private fail(err: Error): void {
    this.state = "failed";
    this.lastError = err;
    this.log.error(`event follower stopped: ${err.message}`, { id: this.id, code: (err as { code?: string }).code });
    this.rejectWaiters(err);
  }

  private resolveWaiters(): void {
    for (const w of this.waiters) {
      if (this.cursor && this.cursor.block >= w.block) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }

  private rejectWaiters(err: Error): void {
    for (const w of this.waiters) w.reject(err);
    this.waiters.clear();
  }

  // ---- persistence --------------------------------------------------------------------------------
  // Bucket.chainCursor keys: "c/<id>" -> block (8 bytes BE) [+ block hash (32 bytes)];
  // "h/<id>/" + block (8 bytes BE) + log index (4 bytes BE) -> 0x01 for a log whose handlers completed;
  // "k/<id>/" + block (8 bytes BE) -> block hash (32 bytes): the last CHECKPOINTS completed blocks.

  private cursorKey(): Uint8Array {
    return utf8.encode(`c/${this.id}`);
  }

  private handledPrefix(): Uint8Array {
    return utf8.encode(`h/${this.id}/`);
  }

  private checkpointPrefix(): Uint8Array {
    return utf8.encode(`k/${this.id}/`);
  }

  private checkpointKey(block: bigint): Uint8Array {
    const prefix = this.checkpointPrefix();
    const key = new Uint8Array(prefix.length + 8);
    key.set(prefix);
    new DataView(key.buffer, prefix.length).setBigUint64(0, block);
    return key;
  }

  /**
   * This follower's handled-log records and checkpoints, with the block each is about, in key
   * order (checkpoints oldest first: the block is big-endian).
   */
  private async *ownRecords(): AsyncIterable<{ kind: "handled" | "checkpoint"; key: Uint8Array; block: bigint; value: Uint8Array }> {
    const handled = this.handledPrefix();
    const checkpoints = this.checkpointPrefix();
    for await (const [key, value] of this.db.bucket(Bucket.chainCursor).entries()) {
      const kind =
        key.length === handled.length + 12 && startsWith(key, handled) ? "handled" : key.length === checkpoints.length + 8 && startsWith(key, checkpoints) ? "checkpoint" : undefined;
      if (kind === undefined) continue;
      const offset = kind === "handled" ? handled.length : checkpoints.length;
      yield { kind, key, block: new DataView(key.buffer, key.byteOffset + offset, 8).getBigUint64(0), value };
    }
  }

  /** Stored checkpoints, newest first. */
  private async loadCheckpoints(): Promise<Array<Required<Cursor>>> {
    const out: Array<Required<Cursor>> = [];
    for await (const r of this.ownRecords()) {
      if (r.kind === "checkpoint" && r.value.length === 32) out.push({ block: r.block, hash: `0x${Buffer.from(r.value).toString("hex")}` as Hex });
    }
    return out.reverse();
  }

  /** Makes `to` the cursor and drops checkpoints and handled-log records after it, atomically. */
  private async forgetAfter(to: Required<Cursor>): Promise<void> {
    const drop: Uint8Array[] = [];
    for await (const r of this.ownRecords()) if (r.block > to.block) drop.push(r.key);
    await this.db.batch(
      [
        { type: "put", bucket: Bucket.chainCursor, key: this.cursorKey(), value: encodeCursor(to) },
        ...drop.map((key) => ({ type: "del" as const, bucket: Bucket.chainCursor, key })),
      ],
      { sync: true },
    );
  }

  private handledKey(block: bigint, logIndex: number): Uint8Array {
    const prefix = this.handledPrefix();
    const key = new Uint8Array(prefix.length + 12);
    key.set(prefix);
    const view = new DataView(key.buffer, prefix.length);
    view.setBigUint64(0, block);
    view.setUint32(8, logIndex);
    return key;
  }

  private async loadCursor(): Promise<Cursor | undefined> {
    const value = await this.db.bucket(Bucket.chainCursor).get(this.cursorKey());
    if (!value) return undefined;
    if (value.length !== 8 && value.length !== 40) {
      throw new CursorCorruptError({ id: this.id, length: value.length });
    }
    const block = new DataView(value.buffer, value.byteOffset, 8).getBigUint64(0);
    const hash = value.length === 40 ? (`0x${Buffer.from(value.subarray(8)).toString("hex")}` as Hex) : undefined;
    return { block, hash };
  }

  /**
   * Writes the cursor and its checkpoint, and drops the handled-log records it now covers and the
   * checkpoints beyond the newest CHECKPOINTS, atomically.
   */
  private async saveCursor(cursor: Cursor): Promise<void> {
    const stale: Uint8Array[] = [];
    const kept: Uint8Array[] = [];
    for await (const r of this.ownRecords()) {
      if (r.kind === "handled" && r.block <= cursor.block) stale.push(r.key);
      else if (r.kind === "checkpoint") kept.push(r.key); // oldest first
    }
    const puts: Array<{ type: "put"; bucket: Bucket; key: Uint8Array; value: Uint8Array }> = [
      { type: "put", bucket: Bucket.chainCursor, key: this.cursorKey(), value: encodeCursor(cursor) },
    ];
    if (cursor.hash) {
      puts.push({ type: "put", bucket: Bucket.chainCursor, key: this.checkpointKey(cursor.block), value: Buffer.from(cursor.hash.slice(2), "hex") });
      stale.push(...kept.slice(0, Math.max(0, kept.length + 1 - CHECKPOINTS)));
    }
    await this.db.batch([...puts, ...stale.map((key) => ({ type: "del" as const, bucket: Bucket.chainCursor, key }))], { sync: true });
  }
}

function encodeCursor(cursor: Cursor): Uint8Array {
  const value = new Uint8Array(cursor.hash ? 40 : 8);
  new DataView(value.buffer).setBigUint64(0, cursor.block);
  if (cursor.hash) value.set(Buffer.from(cursor.hash.slice(2), "hex"), 8);
  return value;
}

/** Sleeps `ms`; an abort ends the sleep early without throwing (for `while (!signal.aborted)` loops). */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    // aborted
  }
}

function nonNegativeInt(option: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new InvalidChainOptionError({ option, value }, "must be a non-negative integer");
  }
  return value;
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (bytes.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}
