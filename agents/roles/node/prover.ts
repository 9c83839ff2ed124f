/**
 * The node's proving service: every period, for each Magu this node is an active member of with
 * committed data, answer the storage challenge before its deadline.
 *
 * One pass (`runOnce`, and the loop every `pollMs`):
 * 1. Read the head block and current period; for each Magu (`READ_CONCURRENCY` at a time):
 *    membership and record.
 * 2. Candidate periods: the current one, and the previous one while its deadline is ahead.
 *    A period is tried only once its seed exists (head > period start) and while a transaction
 *    sent now can still land before the deadline (head + 1 < deadline).
 * 3. `proofState` on chain first: anything settled (1 proven, 2 missed) is never submitted again,
 *    so a restart (or a second prover with the same key) cannot double-submit. A settlement seen
 *    less than `reorgDepth` blocks ago is asked about again on each pass: a reorganisation may
 *    have dropped the block that held the proof, and then the period is proven again.
 * 4. `challengeFor`, then each named fragment is read from the store (hash check skipped: the
 *    rebuilt fragment root is compared to the one in the Magu index instead, and the challenged
 *    leaf against the cached tree). Fragment trees are cached per CID in a bounded LRU.
 * 5. A missing or corrupt fragment is logged once, reported through `onMissingFragment` (repair
 *    acts on it) and no proof is submitted for that period: a doomed proof would only burn gas.
 *    The period is retried on later passes in case the fragment was restored in time.
 * 6. The proofs are checked locally (`verifyChallengeProof`), then submitted earliest deadline
 *    first, all of them before any receipt is awaited; the receipts are awaited together. Success is
 *    recorded in the Magu index. A revert is decoded with `describeError` and logged once per period.
 * 7. A proof transaction still not mined `replaceAfterBlocks` blocks after it was sent (a base fee
 *    that rose past its fee cap) is sent again with the same nonce and higher fees (at least 30%
 *    more, and twice the current base fee), up to `MAX_REPLACEMENTS` times, until its deadline.
 *
 * Between passes the loop waits `pollMs`, but looks at the head every `blockPollMs` and starts the
 * next pass as soon as the next period's challenge is fixed (its start block is mined): on a chain
 * whose blocks come fast (a devnet, where every transaction mines a block) a fixed pause would eat
 * most of a period's window before the proof is even built.
 *
 * Transactions are handed to the RPC one at a time (the wallet's queue, where proofs go first: the
 * agent gives the prover contract handles of priority `proof`).
 */
import type { Address, Hex } from "viem";
import { describeError, pause, type MuriContracts, type MuriPublicClient, type MuriWalletClient } from "../../chain/index.js";
import { leafIndexFor } from "../../data/challenge.js";
import { buildFragmentTree, fragmentLeafProof, hashLeaf, HASH_SIZE, maguProof, buildMaguTree, verifyChallengeProof, type FragmentTree, type MaguTree } from "../../data/merkle.js";
import { CorruptFragmentError, FragmentNotFoundError } from "../../store/errors.js";
import type { FragmentStore } from "../../store/fragment-store.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import type { CID } from "multiformats/cid";
import type { MaguIndex, MaguRecord } from "../shared/magu-index.js";

/** Fragment trees kept in memory by default. */
export const DEFAULT_TREE_CACHE_SIZE = 64;
/** How long to wait for a proof transaction's receipt by default. */
export const DEFAULT_RECEIPT_TIMEOUT_MS = 60_000;
/** Head polls between passes, to start a pass when a new challenge is fixed, by default. */
export const DEFAULT_BLOCK_POLL_MS = 250;
/** Blocks a proof transaction may stay unmined before it is replaced with higher fees, by default. */
export const DEFAULT_REPLACE_AFTER_BLOCKS = 3;
/** Replacements of one proof transaction at most. */
export const MAX_REPLACEMENTS = 5;
/** Blocks a settled period is re-checked for, in case a reorganisation undid its proof, by default. */
export const DEFAULT_REORG_DEPTH = 16;
/**
 * Gas added to a proof's estimate. The estimate is made against the state before this node's other
 * proofs of the block, and those change what this one costs: the proof that moves the node's
 * reputation into another tier queues a selection-weight change (~45k), the first proof of a period
 * records its seed. Unused gas is not paid.
 */
export const PROOF_GAS_MARGIN = 100_000n;
/** Magus whose chain state one pass reads at once. */
const READ_CONCURRENCY = 8;

const STATUS_ACTIVE = 2;
const STATE_OPEN = 0;
const STATE_PROVEN = 1;

/** Why a challenged fragment could not be used. */
export type MissingReason = "not-found" | "corrupt" | "root-mismatch" | "unknown-cid";

export interface ProverInit {
  /** Magus to prove; default: every Magu in the index. */
  maguIds?: readonly bigint[];
  /** This node's address (the wallet client's account). */
  member: Address;
  /** Pause between passes, ms. */
  pollMs: number;
  /**
   * While pausing, the head is read this often (default `DEFAULT_BLOCK_POLL_MS`, at most `pollMs`);
   * once the next period's challenge is fixed the pause ends early.
   */
  blockPollMs?: number;
  /** Fragment trees cached (default `DEFAULT_TREE_CACHE_SIZE`). */
  treeCacheSize?: number;
  /** Receipt wait per proof transaction (default `DEFAULT_RECEIPT_TIMEOUT_MS`). */
  receiptTimeoutMs?: number;
  /** Blocks before an unmined proof transaction is replaced (default `DEFAULT_REPLACE_AFTER_BLOCKS`). */
  replaceAfterBlocks?: number;
  /** Blocks after which a settled period is not asked about again (default `DEFAULT_REORG_DEPTH`). */
  reorgDepth?: number;
  /**
   * Called once per (Magu, period, fragment) when a challenged fragment is missing or corrupt, so
   * repair can fetch it again. Errors it throws are logged and ignored.
   */
  onMissingFragment?: (maguId: bigint, fragment: number, cid: CID | undefined, reason: MissingReason) => void;
}

export interface ProverComponents {
  contracts: MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;
  publicClient: MuriPublicClient;
  walletClient: MuriWalletClient;
  store: FragmentStore;
  index: MaguIndex;
  logger?: Logger;
}

export interface ProverStats {
  /** Proofs this prover got on chain. */
  submitted: number;
  /** Submissions that failed (reverted or not sent). */
  failed: number;
  /** Periods skipped because a challenged fragment was missing or corrupt. */
  blocked: number;
  /** Passes completed. */
  passes: number;
  /** Proof transactions sent again: with higher fees, or after the node dropped them. */
  replaced: number;
  /** Periods proven again because a reorganisation dropped the block with their proof. */
  reproven: number;
}

export interface Prover {
  start(): Promise<void>;
  /** Stops the loop and waits for the pass in progress. */
  stop(): Promise<void>;
  /** One pass over every Magu (what the loop runs each `pollMs`). */
  runOnce(): Promise<void>;
  stats(): ProverStats;
}

export function createProver(init: ProverInit, components: ProverComponents): Prover {
  if (!Number.isSafeInteger(init.pollMs) || init.pollMs <= 0) throw new RangeError(`pollMs must be a positive integer, got ${init.pollMs}`);
  return new ChallengeProver(init, components);
}

/** A small LRU over a Map's insertion order (exported for its test). */
export class Lru<K, V> {
  private readonly map = new Map<K, V>();
  constructor(private readonly capacity: number) {}
  get(key: K): V | undefined {
    const v = this.map.get(key);
    if (v !== undefined) {
      this.map.delete(key);
      this.map.set(key, v);
    }
    return v;
  }
  set(key: K, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    while (this.map.size > this.capacity) this.map.delete(this.map.keys().next().value as K);
  }
  delete(key: K): void {
    this.map.delete(key);
  }
}

/**
 * `jobs` in the order their proofs are sent: the earliest deadline first (a proof in its period's
 * grace before the current period's), jobs with the same deadline in the order given. A new array.
 * Block numbers are far below 2^53, so their difference is exact as a number.
 */
export function earliestDeadlineFirst<T extends { deadline: bigint }>(jobs: readonly T[]): T[] {
  return [...jobs].sort((a, b) => Number(a.deadline - b.deadline));
}

/** The proofs of one (Magu, period), built and ready to send. */
interface ProofJob {
  maguId: bigint;
  period: bigint;
  /** `${maguId}:${period}`. */
  key: string;
  ctx: { maguId: string; period: string };
  /** Last block a proof of this period can land in. */
  deadline: bigint;
  proofs: SolidityProof[];
}

interface SolidityProof {
  fragment: number;
  size: bigint;
  leaf: Hex;
  leafProof: Hex[];
  fragmentProof: Hex[];
}

const hex = (b: Uint8Array): Hex => `0x${Buffer.from(b).toString("hex")}`;

class ChallengeProver implements Prover {
  private readonly log: Logger;
  private readonly trees: Lru<string, FragmentTree>;
  private readonly maguTrees = new Lru<string, MaguTree>(16);
  /** `${maguId}:${period}` settled on chain (proven, missed, nothing to prove) -> the head it was seen at. */
  private readonly settled = new Map<string, bigint>();
  /** Keys of `settled` whose challenge named no fragment this member holds: open on chain, not proven. */
  private readonly nothingToProve = new Set<string>();
  /** Messages already logged (once per key). */
  private readonly logged = new Set<string>();
  private readonly counters: ProverStats = { submitted: 0, failed: 0, blocked: 0, passes: 0, replaced: 0, reproven: 0 };
  private controller?: AbortController;
  private loop?: Promise<void>;
  /** First block at which the next period's challenge is fixed (its start + 1), from the last pass. */
  private nextChallengeBlock?: bigint;

  constructor(
    private readonly init: ProverInit,
    private readonly c: ProverComponents,
  ) {
    this.log = c.logger ?? silentLogger;
    this.trees = new Lru(init.treeCacheSize ?? DEFAULT_TREE_CACHE_SIZE);
  }

  async start(): Promise<void> {
    if (this.loop) return;
    const controller = new AbortController();
    this.controller = controller;
    this.log.info("prover started", { member: this.init.member, pollMs: this.init.pollMs });
    this.loop = (async () => {
      while (!controller.signal.aborted) {
        try {
          await this.runOnce();
        } catch (err) {
          this.logOnce(`pass:${describeError(err)}`, "warn", "prover pass failed; retrying", { error: describeError(err) });
        }
        await this.pauseUntilDue(controller.signal);
      }
    })();
  }

  async stop(): Promise<void> {
    this.controller?.abort();
    await this.loop;
    this.loop = undefined;
    this.controller = undefined;
    this.log.info("prover stopped", { member: this.init.member, ...this.counters });
  }

  stats(): ProverStats {
    return { ...this.counters };
  }

  /** Waits `pollMs`, or less if the head reaches `nextChallengeBlock` first. */
  private async pauseUntilDue(signal: AbortSignal): Promise<void> {
    const until = Date.now() + this.init.pollMs;
    const step = Math.min(this.init.pollMs, this.init.blockPollMs ?? DEFAULT_BLOCK_POLL_MS);
    while (!signal.aborted && Date.now() < until) {
      await pause(Math.min(step, until - Date.now()), signal);
      const due = this.nextChallengeBlock;
      if (due === undefined || signal.aborted) continue;
      const head = await this.c.publicClient.getBlockNumber({ cacheTime: 0 }).catch(() => undefined);
      if (head !== undefined && head >= due) return;
    }
  }

  async runOnce(): Promise<void> {
    const { contracts, publicClient } = this.c;
    const [head, current] = await Promise.all([publicClient.getBlockNumber({ cacheTime: 0 }), contracts.maguRegistry.read.currentPeriod()]);
    // The next challenge to be fixed: this period's if its start block is not mined yet, else the next one's.
    const [start, nextStart] = await Promise.all([contracts.maguRegistry.read.periodStart([current]), contracts.maguRegistry.read.periodStart([current + 1n])]);
    this.nextChallengeBlock = (head < start + 1n ? start : nextStart) + 1n;
    const ids = [...(this.init.maguIds ?? (await this.c.index.maguIds()))];
    const jobs: ProofJob[] = [];
    const reader = async (): Promise<void> => {
      for (let maguId = ids.shift(); maguId !== undefined; maguId = ids.shift()) {
        if (this.controller?.signal.aborted) return;
        try {
          jobs.push(...(await this.proveMagu(maguId, head, current)));
        } catch (err) {
          this.logOnce(`magu:${maguId}:${describeError(err)}`, "warn", "could not check Magu", { maguId: maguId.toString(), error: describeError(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: READ_CONCURRENCY }, reader));
    // Every proof is sent before any receipt is awaited.
    const sent: Array<{ job: ProofJob; hash: Hex }> = [];
    for (const job of earliestDeadlineFirst(jobs)) {
      if (this.controller?.signal.aborted) break;
      const hash = await this.send(job);
      if (hash !== undefined) sent.push({ job, hash });
    }
    await Promise.all(sent.map(({ job, hash }) => this.confirm(job, hash)));
    this.counters.passes++;
  }

  private async proveMagu(maguId: bigint, head: bigint, current: bigint): Promise<ProofJob[]> {
    const { maguRegistry } = this.c.contracts;
    const member = this.init.member;
    const [membership, info] = await Promise.all([maguRegistry.read.membership([maguId, member]), maguRegistry.read.maguInfo([maguId])]);
    const jobs: ProofJob[] = [];
    if (!membership.active || info.status !== STATUS_ACTIVE || info.fragmentCount === 0) return jobs;
    const periods = current > 0n ? [current - 1n, current] : [current];
    for (const period of periods) {
      if (period < membership.joinPeriod || period < info.startPeriod || period >= info.endPeriod) continue;
      const key = `${maguId}:${period}`;
      // Deep enough that no reorganisation is expected to undo it: not asked about again.
      const seen = this.settled.get(key);
      if (seen !== undefined && head >= seen + BigInt(this.init.reorgDepth ?? DEFAULT_REORG_DEPTH)) continue;
      // The data this member answers for in that period: the latest batch it acknowledged (or
      // whose grace passed) before the period began; a later commit never changes it.
      const [root, count] = await maguRegistry.read.challengedData([maguId, member, period]);
      if (count === 0) continue;
      const job = await this.provePeriod(maguId, period, head, root, count);
      if (job !== undefined) jobs.push(job);
    }
    return jobs;
  }

  /** The proofs of one (Magu, period) ready to send, or undefined when there is nothing to send. */
  private async provePeriod(maguId: bigint, period: bigint, head: bigint, root: Hex, fragmentCount: number): Promise<ProofJob | undefined> {
    const { challengeManager, maguRegistry } = this.c.contracts;
    const member = this.init.member;
    const key = `${maguId}:${period}`;
    const ctx = { maguId: maguId.toString(), period: period.toString() };
    const [start, deadline] = await Promise.all([maguRegistry.read.periodStart([period]), challengeManager.read.proofDeadline([period])]);
    if (head <= start) return; // the period's seed is not fixed yet
    if (head + 1n >= deadline) return; // a transaction sent now would land too late

    const state = await challengeManager.read.proofState([maguId, member, period]);
    if (state !== STATE_OPEN) {
      if (!this.settled.has(key)) {
        this.settled.set(key, head);
        if (state === STATE_PROVEN) await this.c.index.recordProven(maguId, period);
      }
      return;
    }
    // Open again after it was seen proven or missed: a reorganisation. A period with nothing to
    // prove stays open on chain, and its challenge is read again (in case the seed block moved).
    const empty = this.nothingToProve.delete(key);
    if (this.settled.delete(key) && !empty) {
      this.counters.reproven++;
      this.log.warn("a reorganisation undid this period's proof: proving it again", ctx);
    }

    const record = await this.c.index.get(maguId);
    const tree = record !== undefined && record.fragmentCount >= fragmentCount ? this.maguTreeOf(record, fragmentCount) : undefined;
    if (!record || tree === undefined || `0x${tree.root.toString("hex")}` !== root.toLowerCase()) {
      this.logOnce(`nolist:${maguId}:${root}`, "warn", "fragment list of the committed root is not known; cannot prove", {
        ...ctx,
        root,
        fragmentCount,
        known: record?.root,
      });
      return;
    }

    // Read in the pending block, where the proof will execute: once the period's start block hash
    // is out of `blockhash` reach and nobody has fixed the seed yet, the contract derives it from the
    // hash of the block before the one it runs in (`_lateSeed`), so a challenge read at "latest"
    // would name other items than the transaction checks.
    const items = await challengeManager.read.challengeFor([maguId, member, period], { blockTag: "pending" });
    this.log.debug("answering challenge", { ...ctx, head: head.toString(), start: start.toString(), deadline: deadline.toString(), items: items.length });
    if (items.length === 0) {
      // The draw reached no fragment this member holds: nothing to prove, no pay, no miss.
      this.settled.set(key, head);
      this.nothingToProve.add(key);
      this.logOnce(`empty:${key}`, "info", "nothing to prove this period (no held fragment challenged)", ctx);
      return;
    }
    const proofs = await this.buildProofs(record, tree, period, items);
    if (proofs === undefined) return undefined;
    return { maguId, period, key, ctx, deadline, proofs };
  }

  /** Hands a proof to the RPC; undefined (after recording the failure) when it could not be sent. */
  private async send(job: ProofJob): Promise<Hex | undefined> {
    try {
      return await this.submit(job);
    } catch (err) {
      await this.submissionFailed(job, err);
      return undefined;
    }
  }

  /**
   * Waits for the proof's receipt (of the first transaction or of any replacement), replacing it
   * with higher fees while it stays unmined and its deadline is ahead.
   */
  private async confirm(job: ProofJob, first: Hex): Promise<void> {
    const { publicClient } = this.c;
    const hashes = [first];
    const giveUpAt = Date.now() + (this.init.receiptTimeoutMs ?? DEFAULT_RECEIPT_TIMEOUT_MS);
    const every = Math.min(this.init.pollMs, 1_000);
    const replaceAfter = BigInt(this.init.replaceAfterBlocks ?? DEFAULT_REPLACE_AFTER_BLOCKS);
    try {
      let sentAt = await publicClient.getBlockNumber({ cacheTime: 0 });
      // The nonce, read while the node still has the transaction: a resend after the node drops it
      // takes the same one (a new nonce would leave a gap that holds every later transaction).
      const nonce = (await publicClient.getTransaction({ hash: first }).catch(() => undefined))?.nonce;
      for (;;) {
        // The head first, the receipts after: a proof mined in any block up to `head` is then seen
        // before the deadline is judged (read the other way round, a proof mined between the two
        // reads, in the deadline's last block, was counted as failed).
        const head = await publicClient.getBlockNumber({ cacheTime: 0 });
        for (const hash of hashes) {
          const receipt = await publicClient.getTransactionReceipt({ hash }).catch(() => undefined);
          if (receipt === undefined) continue;
          if (receipt.status !== "success") throw new Error(`proof transaction ${hash} reverted in block ${receipt.blockNumber}`);
          this.settled.set(job.key, receipt.blockNumber);
          await this.c.index.recordProven(job.maguId, job.period).catch((err: unknown) => {
            this.log.warn("could not record the proof in the Magu index", { ...job.ctx, error: describeError(err) });
          });
          this.counters.submitted++;
          this.log.info("proof submitted", { ...job.ctx, fragments: job.proofs.length, tx: hash, block: receipt.blockNumber.toString(), replacements: hashes.length - 1 });
          return;
        }
        // The contract takes a proof in blocks before its deadline: unmined at deadline - 1, it never lands.
        if (head + 1n >= job.deadline || Date.now() > giveUpAt) {
          throw new Error(`proof transaction ${hashes.at(-1)} not mined by block ${head} (deadline ${job.deadline}, ${hashes.length - 1} replacements)`);
        }
        if (head >= sentAt + replaceAfter && hashes.length <= MAX_REPLACEMENTS) {
          const replacement = await this.replace(job, hashes.at(-1)!, head, nonce);
          if (replacement !== undefined) {
            hashes.push(replacement);
            sentAt = head;
          }
        }
        await pause(every, this.controller?.signal ?? new AbortController().signal);
        if (this.controller?.signal.aborted) return;
      }
    } catch (err) {
      await this.submissionFailed(job, err);
    }
  }

  /**
   * Sends `job` again with `hash`'s nonce and higher fees, or, when the node no longer knows `hash`
   * (dropped from its mempool, or the node restarted), with `nonce` at the current fees; undefined
   * when it was mined or cannot be sent.
   */
  private async replace(job: ProofJob, hash: Hex, head: bigint, nonce: number | undefined): Promise<Hex | undefined> {
    const { publicClient } = this.c;
    const tx = await publicClient.getTransaction({ hash }).catch(() => undefined);
    if (tx === undefined) return nonce === undefined ? undefined : this.resend(job, hash, head, nonce);
    if (tx.blockNumber !== null) return undefined;
    const base = (await publicClient.getBlock({ blockTag: "latest" })).baseFeePerGas ?? 0n;
    const bump = (x: bigint): bigint => x + (x * 3n) / 10n + 1n;
    const tip = bump(tx.maxPriorityFeePerGas ?? 0n);
    const oldCap = tx.maxFeePerGas ?? tx.gasPrice ?? 0n;
    const cap = bump(oldCap) > 2n * base + tip ? bump(oldCap) : 2n * base + tip;
    try {
      const replacement = await this.c.contracts.challengeManager.write.submitProof([job.maguId, job.period, job.proofs], {
        nonce: tx.nonce,
        gas: tx.gas,
        maxFeePerGas: cap,
        maxPriorityFeePerGas: tip,
      });
      this.counters.replaced++;
      this.log.warn("proof transaction not mined: replaced with higher fees", {
        ...job.ctx,
        tx: hash,
        replacement,
        nonce: tx.nonce,
        maxFeePerGas: `${oldCap} -> ${cap}`,
        baseFee: base.toString(),
        head: head.toString(),
        deadline: job.deadline.toString(),
      });
      return replacement;
    } catch (err) {
      // Mined meanwhile ("nonce too low"), or the bump was refused: the next round looks again.
      this.logOnce(`replace:${job.key}:${describeError(err)}`, "warn", "could not replace a proof transaction", { ...job.ctx, tx: hash, error: describeError(err) });
      return undefined;
    }
  }

  /** Sends `job` again with `nonce` after the node dropped `hash`; undefined when it cannot be sent. */
  private async resend(job: ProofJob, hash: Hex, head: bigint, nonce: number): Promise<Hex | undefined> {
    try {
      const again = await this.submit(job, nonce);
      this.counters.replaced++;
      this.log.warn("proof transaction dropped by the node: sent again", { ...job.ctx, tx: hash, replacement: again, nonce, head: head.toString(), deadline: job.deadline.toString() });
      return again;
    } catch (err) {
      this.logOnce(`resend:${job.key}:${describeError(err)}`, "warn", "could not send a dropped proof transaction again", { ...job.ctx, tx: hash, error: describeError(err) });
      return undefined;
    }
  }

  /**
   * Sends the proof with its estimated gas plus `PROOF_GAS_MARGIN` (the node's other proofs change
   * its cost), and with `nonce` when one is given (else the next).
   */
  private async submit(job: ProofJob, nonce?: number): Promise<Hex> {
    const args = [job.maguId, job.period, job.proofs] as const;
    const gas = (await this.c.contracts.challengeManager.estimateGas.submitProof(args, { account: this.init.member })) + PROOF_GAS_MARGIN;
    return this.c.contracts.challengeManager.write.submitProof(args, { gas, nonce });
  }

  private async submissionFailed(job: ProofJob, err: unknown): Promise<void> {
    this.counters.failed++;
    const message = describeError(err);
    this.logOnce(`submit:${job.key}:${message}`, "error", "proof submission failed", { ...job.ctx, error: message });
    // Settled meanwhile (e.g. the same key proving from elsewhere)? Then stop trying.
    const after = await this.c.contracts.challengeManager.read.proofState([job.maguId, this.init.member, job.period]).catch(() => STATE_OPEN);
    if (after !== STATE_OPEN) this.settled.set(job.key, await this.c.publicClient.getBlockNumber({ cacheTime: 0 }).catch(() => 0n));
  }

  /** The proofs for `items`, or undefined (after reporting) when a fragment is missing or corrupt. */
  private async buildProofs(
    record: MaguRecord,
    maguTree: MaguTree,
    period: bigint,
    items: readonly { fragment: number; leafSeed: bigint }[],
  ): Promise<SolidityProof[] | undefined> {
    const rootBytes = maguTree.root;
    const proofs: SolidityProof[] = [];
    const missing = new Map<number, MissingReason>();
    for (const item of items) {
      const f = item.fragment;
      if (missing.has(f)) continue;
      const cid = record.cids[f];
      const expectedRoot = record.fragmentRoots[f];
      if (cid === undefined || expectedRoot === undefined) {
        missing.set(f, "unknown-cid");
        continue;
      }
      const loaded = await this.loadFragment(cid, expectedRoot);
      if ("reason" in loaded) {
        missing.set(f, loaded.reason);
        continue;
      }
      const { bytes, tree } = loaded;
      const leafIndex = leafIndexFor(item.leafSeed, bytes.length);
      const leaf = fragmentLeafProof(bytes, leafIndex, tree);
      // A cached tree does not cover bytes that rotted since: check the challenged leaf itself.
      if (!hashLeaf(leaf.chunk).equals(tree.levels[0]!.subarray(leafIndex * HASH_SIZE, (leafIndex + 1) * HASH_SIZE))) {
        this.trees.delete(cid.toString());
        missing.set(f, await this.quarantine(cid));
        continue;
      }
      const maguSiblings = maguProof(maguTree, f);
      const ok = verifyChallengeProof(rootBytes, maguTree.count, {
        fragmentIndex: f,
        size: bytes.length,
        leafIndex,
        chunk: leaf.chunk,
        leafSiblings: leaf.siblings,
        fragmentRoot: tree.fragmentRoot,
        maguSiblings,
      });
      if (!ok) {
        missing.set(f, "root-mismatch");
        continue;
      }
      proofs.push({ fragment: f, size: BigInt(bytes.length), leaf: hex(leaf.chunk), leafProof: leaf.siblings.map(hex), fragmentProof: maguSiblings.map(hex) });
    }
    if (missing.size === 0) return proofs;

    this.counters.blocked++;
    for (const [f, reason] of missing) {
      const cid = record.cids[f];
      const ctx = { maguId: record.maguId.toString(), period: period.toString(), fragment: f, cid: cid?.toString(), reason };
      if (this.logOnce(`missing:${record.maguId}:${period}:${f}`, "error", "challenged fragment missing or corrupt; not submitting a proof", ctx)) {
        try {
          this.init.onMissingFragment?.(record.maguId, f, cid, reason);
        } catch (err) {
          this.log.warn("onMissingFragment callback threw", { ...ctx, error: describeError(err) });
        }
      }
    }
    return undefined;
  }

  /** The Magu tree over the first `count` recorded fragments (batches only append). */
  private maguTreeOf(record: MaguRecord, count: number): MaguTree {
    const key = `${record.maguId}:${count}:${record.fragmentRoots[count - 1]?.toString("hex")}`;
    let tree = this.maguTrees.get(key);
    if (!tree) {
      tree = buildMaguTree(record.fragmentRoots.slice(0, count));
      this.maguTrees.set(key, tree);
    }
    return tree;
  }

  /** The fragment's bytes and tree, checked against its recorded fragment root. */
  private async loadFragment(cid: CID, expectedRoot: Uint8Array): Promise<{ bytes: Uint8Array; tree: FragmentTree } | { reason: MissingReason }> {
    let bytes: Uint8Array;
    try {
      bytes = await this.c.store.get(cid, { verify: false });
    } catch (err) {
      if (err instanceof FragmentNotFoundError) return { reason: "not-found" };
      if (err instanceof CorruptFragmentError) return { reason: "corrupt" };
      throw err;
    }
    const cacheKey = cid.toString();
    let tree = this.trees.get(cacheKey);
    if (!tree || tree.size !== bytes.length) {
      tree = buildFragmentTree(bytes);
      if (!tree.fragmentRoot.equals(expectedRoot)) return { reason: await this.quarantine(cid) };
      this.trees.set(cacheKey, tree);
    }
    return { bytes, tree };
  }

  /** Re-reads with the hash check so the store quarantines a corrupt file; says why it is unusable. */
  private async quarantine(cid: CID): Promise<MissingReason> {
    try {
      await this.c.store.get(cid);
      // The bytes match their CID but not the recorded fragment root: the index is wrong.
      return "root-mismatch";
    } catch (err) {
      if (err instanceof CorruptFragmentError) return "corrupt";
      if (err instanceof FragmentNotFoundError) return "not-found";
      throw err;
    }
  }

  /** Logs once per `key`; true the first time. */
  private logOnce(key: string, level: keyof Logger, msg: string, context: Record<string, unknown>): boolean {
    if (this.logged.has(key)) return false;
    if (this.logged.size > 10_000) this.logged.clear();
    this.logged.add(key);
    this.log[level](msg, context);
    return true;
  }
}
