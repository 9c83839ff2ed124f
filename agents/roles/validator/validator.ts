/**
 * The validator role: keeps the network honest and reports what it saw for rewards.
 *
 * One pass (`runOnce`, and the loop every `pollMs`): weights and epochs (3 and 4 below) first, as
 * their window is short, then the Magus with the head block read once:
 * 1. Every Magu (`1..maguCount`):
 *    - active with committed data: for each active member, each period in
 *      [max(joinPeriod, startPeriod), endPeriod) whose proof deadline has passed and whose
 *      `proofState` is still 0 (open) is marked missed (`markMissed`). Periods known settled are
 *      remembered per (Magu, member), so a pass reads only the new ones. A lost race
 *      (`ChallengeAlreadySettled`) is ignored; other reverts are logged once.
 *    - active with a vacant slot (`address(0)`): `fillVacancy` (a `MaguTooEarly` revert just means
 *      "next pass").
 *    - active and past its last period's deadline: `settle`.
 *    - requested, seated in part, its selection window closed (a formation nobody finished):
 *      `formMagu`, which activates it with the seats taken (the rest are vacancies, filled above).
 * 2. Audits (every `auditIntervalMs`, at most `auditsPerRound`): a random fragment among the audit
 *    targets (see below), its holder by placement (`holderBlob` / `holdersVector` over the on-chain
 *    member list), fetched from the holder's first registered multiaddr with `auditTimeoutMs`; the
 *    fetch verifies the CID, and the validator also checks that the bytes fold to the fragment root
 *    committed on chain. Success or failure is counted for the holder in the current epoch.
 * 3. Weights: once per epoch, in its last `submitWindowBlocks` blocks (never in the very last
 *    block), the validator scores every active node from what it observed this epoch and calls
 *    `submitWeights`. Score = 1 (active) + proofs passed (ProofSubmitted events of the epoch)
 *    + audits passed - 4 x misses (ProofMissed events) - 2 x audits failed, floored at 0; nodes
 *    sorted by address; at most the Rewards `maxWeights` highest scores; never the validator itself
 *    (Rewards refuses a validator weighting itself, `RewardsSelfWeight`). If every score is 0
 *    nothing is submitted.
 * 4. The previous epoch is finalised (`finalizeEpoch`) if nobody did yet; with `claimRewards`,
 *    the validator claims its own credited rewards.
 *
 * Audit targets: the chain holds only the Magu root over fragment roots, not the fragment CIDs.
 * The validator audits the fragments it was told about with `addAuditTargets(maguId, cids,
 * fragmentRoots)` (for a blob file: the manifest's `shards` and `roots`, which fold to the committed
 * root; the call checks that). Discovering manifests by itself (fetching the Magu index document
 * from a member) is not done yet.
 *
 * State is in memory: everything that matters for money (proof states, epochs, finalisation) is
 * re-read from the chain, so a restart only forgets this epoch's audit tallies.
 * Transactions are sent one at a time (one wallet, no nonce races).
 */
import { randomInt } from "node:crypto";
import { getAddress, type Address, type Hex } from "viem";
import type { CID } from "multiformats/cid";
import { Counter, Registry } from "prom-client";
import { describeError, pause, toChainError, type MuriContracts, type MuriPublicClient, type MuriWalletClient } from "../../chain/index.js";
import { fragmentRoot, maguRoot } from "../../data/merkle.js";
import { holderBlob, holdersVector } from "../../data/placement.js";
import { silentLogger, type Logger } from "../../store/logger.js";

/** Defaults of `ValidatorInit`. */
export const VALIDATOR_DEFAULTS = {
  pollMs: 2_000,
  auditIntervalMs: 30_000,
  auditsPerRound: 4,
  auditTimeoutMs: 10_000,
  receiptTimeoutMs: 60_000,
  /** Magus scanned per pass at most (bounded loop). */
  maxMagusPerPass: 10_000,
  /** Event ranges read per call. */
  logBlocks: 500n,
} as const;

const STATUS_REQUESTED = 1;
const STATUS_ACTIVE = 2;
const KIND_BLOB = 0;
const STATE_OPEN = 0;
const ROLE_NODE = 1;
/** NodeRegistry role bit of a validator. */
export const ROLE_VALIDATOR = 2;
const ZERO = "0x0000000000000000000000000000000000000000";
const SCORE_MISS = 4n;
const SCORE_AUDIT_FAIL = 2n;

/** What the validator needs of a libp2p node (P2PNode fits). */
export interface AuditFetcher {
  fetchFragment(target: string, cid: CID, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Uint8Array>;
}

/**
 * The fragment from the first of a node's registered multiaddrs that serves it, tried in order (a
 * node behind NAT may register a public address first and a LAN one after); the error names each
 * address's failure, or that none is registered.
 */
export async function fetchFromAny(
  fetcher: AuditFetcher,
  multiaddrs: readonly string[],
  cid: CID,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<Uint8Array> {
  if (multiaddrs.length === 0) throw new Error("no multiaddr registered");
  const failures: string[] = [];
  for (const target of multiaddrs) {
    if (options.signal?.aborted) break;
    try {
      return await fetcher.fetchFragment(target, cid, options);
    } catch (err) {
      failures.push(`${target}: ${(err as Error).message}`);
    }
  }
  throw new Error(failures.length === 1 ? failures[0]! : `no registered address served it (${failures.join("; ")})`);
}

/**
 * The Magu ids (1..count) one pass scans: at most `perPass`, from `from` (back to 1 when past the
 * end), wrapping round; `next` is where the next pass starts.
 */
export function scanWindow(from: bigint, count: bigint, perPass: bigint): { ids: bigint[]; next: bigint } {
  if (count <= 0n || perPass <= 0n) return { ids: [], next: 1n };
  const start = from < 1n || from > count ? 1n : from;
  const span = count < perPass ? count : perPass;
  const ids: bigint[] = [];
  for (let i = 0n; i < span; i++) ids.push(((start - 1n + i) % count) + 1n);
  return { ids, next: ((start - 1n + span) % count) + 1n };
}

export interface ValidatorInit {
  /** The validator's address (the wallet client's account). */
  address: Address;
  pollMs?: number;
  /** Pause between audit rounds, ms (0 disables audits). */
  auditIntervalMs?: number;
  auditsPerRound?: number;
  auditTimeoutMs?: number;
  /** Blocks before an epoch's end in which weights are submitted (default epochBlocks / 4, at least 2). */
  submitWindowBlocks?: number;
  /** Claim the validator's own credited rewards after finalising. */
  claimRewards?: boolean;
  receiptTimeoutMs?: number;
  /** Magus scanned per pass at most, round the ids (default `VALIDATOR_DEFAULTS.maxMagusPerPass`). */
  maxMagusPerPass?: number;
}

export interface ValidatorComponents {
  contracts: MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;
  publicClient: MuriPublicClient;
  walletClient: MuriWalletClient;
  /** For retrieval audits; without it no audits run. */
  fetcher?: AuditFetcher;
  /** Registry the counters are registered in (default: a new one, see `validator.registry`). */
  registry?: Registry;
  logger?: Logger;
  /** Randomness for audits in [0, 1) (default `auditRandom`, from node:crypto: nobody can predict the targets). */
  random?: () => number;
}

/** What the validator saw of one node in one epoch. */
export interface NodeObservation {
  proofs: number;
  misses: number;
  auditsPassed: number;
  auditsFailed: number;
}

export interface ValidatorStats {
  passes: number;
  missedMarked: number;
  /** Members dropped because their stake no longer backed their memberships. */
  dropped: number;
  vacanciesFilled: number;
  /** Formations seated in part and activated after their window (finishFormation). */
  formationsFinished: number;
  settled: number;
  auditsPassed: number;
  auditsFailed: number;
  weightsSubmitted: number;
  epochsFinalized: number;
  claimed: bigint;
  failedTxs: number;
}

export interface Validator {
  start(): Promise<void>;
  /** Stops the loops and waits for the pass in progress. */
  stop(): Promise<void>;
  /** One pass: Magus, weights, finalisation (what the loop runs each `pollMs`). */
  runOnce(): Promise<void>;
  /** One audit round (what the audit loop runs each `auditIntervalMs`). */
  auditOnce(): Promise<void>;
  /** Fragments to audit in `maguId`: CIDs and fragment roots by fragment index (checked against the chain root). */
  addAuditTargets(maguId: bigint, cids: readonly CID[], fragmentRoots: readonly Uint8Array[]): Promise<void>;
  /** Audit tallies of `epoch` by node (proofs and misses are read from the chain when weights are computed). */
  audits(epoch: bigint): ReadonlyMap<Address, NodeObservation>;
  /** Scores it would submit for `epoch` now (proofs and misses from the chain up to `toBlock`). */
  scores(epoch: bigint, toBlock?: bigint): Promise<Map<Address, bigint>>;
  stats(): ValidatorStats;
  readonly registry: Registry;
}

export function createValidator(init: ValidatorInit, components: ValidatorComponents): Validator {
  const pollMs = init.pollMs ?? VALIDATOR_DEFAULTS.pollMs;
  if (!Number.isSafeInteger(pollMs) || pollMs <= 0) throw new RangeError(`pollMs must be a positive integer, got ${pollMs}`);
  return new ChainValidator(init, components, pollMs);
}

interface AuditTarget {
  maguId: bigint;
  cids: readonly CID[];
  roots: readonly Buffer[];
}

class ChainValidator implements Validator {
  readonly registry: Registry;
  private readonly log: Logger;
  private readonly me: Address;
  private controller?: AbortController;
  private loops: Promise<void>[] = [];
  /** `${magu}/${member}` -> first period not yet known settled. */
  private readonly nextPeriod = new Map<string, bigint>();
  /** epoch -> node -> audit tallies. */
  private readonly auditTally = new Map<bigint, Map<Address, NodeObservation>>();
  /** Next Magu id `scanMagus` starts at (it scans a bounded window a pass, round the ids). */
  private scanFrom = 1n;
  private readonly targets = new Map<bigint, AuditTarget>();
  private readonly submittedEpochs = new Set<bigint>();
  private readonly loggedErrors = new Set<string>();
  private txQueue: Promise<unknown> = Promise.resolve();
  private readonly counters: {
    missed: Counter;
    audits: Counter<"result">;
    weights: Counter;
    finalized: Counter;
  };
  private readonly s: ValidatorStats = {
    passes: 0,
    missedMarked: 0,
    dropped: 0,
    vacanciesFilled: 0,
    formationsFinished: 0,
    settled: 0,
    auditsPassed: 0,
    auditsFailed: 0,
    weightsSubmitted: 0,
    epochsFinalized: 0,
    claimed: 0n,
    failedTxs: 0,
  };
  private rewardsConfig?: { genesisBlock: bigint; epochBlocks: bigint; maxWeights: number };

  constructor(
    private readonly init: ValidatorInit,
    private readonly c: ValidatorComponents,
    private readonly pollMs: number,
  ) {
    this.log = c.logger ?? silentLogger;
    this.me = getAddress(init.address);
    this.registry = c.registry ?? new Registry();
    this.counters = {
      missed: new Counter({ name: "muri_validator_missed_marked_total", help: "Missed proofs marked by this validator", registers: [this.registry] }),
      audits: new Counter({ name: "muri_validator_audits_total", help: "Retrieval audits by result", labelNames: ["result"] as const, registers: [this.registry] }),
      weights: new Counter({ name: "muri_validator_weights_submitted_total", help: "Weight submissions that landed", registers: [this.registry] }),
      finalized: new Counter({ name: "muri_validator_epochs_finalized_total", help: "Epochs finalised by this validator", registers: [this.registry] }),
    };
    // Show both audit series from the start.
    this.counters.audits.inc({ result: "passed" }, 0);
    this.counters.audits.inc({ result: "failed" }, 0);
  }

  async start(): Promise<void> {
    if (this.controller) return;
    const controller = new AbortController();
    this.controller = controller;
    const { signal } = controller;
    this.loops.push(
      (async () => {
        while (!signal.aborted) {
          await this.guard("pass", () => this.runOnce());
          await pause(this.pollMs, signal);
        }
      })(),
    );
    const auditMs = this.init.auditIntervalMs ?? VALIDATOR_DEFAULTS.auditIntervalMs;
    if (auditMs > 0 && this.c.fetcher) {
      this.loops.push(
        (async () => {
          while (!signal.aborted) {
            await pause(auditMs, signal);
            if (!signal.aborted) await this.guard("audit round", () => this.auditOnce());
          }
        })(),
      );
    }
    this.log.info("validator started", { address: this.me, pollMs: this.pollMs, audits: auditMs > 0 && this.c.fetcher !== undefined });
  }

  async stop(): Promise<void> {
    if (!this.controller) return;
    this.controller.abort();
    await Promise.all(this.loops);
    this.loops = [];
    this.controller = undefined;
    this.log.info("validator stopped", { ...this.s, claimed: this.s.claimed.toString() });
  }

  stats(): ValidatorStats {
    return { ...this.s };
  }

  audits(epoch: bigint): ReadonlyMap<Address, NodeObservation> {
    return this.auditTally.get(epoch) ?? new Map();
  }

  private async guard(what: string, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      this.log.warn(`${what} failed`, { error: describeError(err) });
    }
  }

  private get signal(): AbortSignal | undefined {
    return this.controller?.signal;
  }

  // ---- one pass -------------------------------------------------------------------------------

  async runOnce(): Promise<void> {
    // Weights first: their window is a few blocks at the end of the epoch, and the Magu duties
    // below may send many transactions (each a block on an automining dev chain).
    await this.weightsAndEpochs();
    if (this.signal?.aborted) return;
    const head = await this.c.publicClient.getBlockNumber({ cacheTime: 0 });
    await this.scanMagus(head);
    this.s.passes++;
  }

  private async scanMagus(head: bigint): Promise<void> {
    const { maguRegistry } = this.c.contracts;
    const count = await maguRegistry.read.maguCount();
    const current = await maguRegistry.read.currentPeriod();
    // At most maxMagusPerPass ids a pass, where the last pass stopped: every Magu comes round.
    const window = scanWindow(this.scanFrom, count, BigInt(this.init.maxMagusPerPass ?? VALIDATOR_DEFAULTS.maxMagusPerPass));
    this.scanFrom = window.next;
    for (const id of window.ids) {
      if (this.signal?.aborted) break;
      const info = await maguRegistry.read.maguInfo([id]);
      if (info.status === STATUS_REQUESTED && info.members.length > 0) {
        await this.finishFormation(id, info.requestBlock, head);
        continue;
      }
      if (info.status !== STATUS_ACTIVE) continue;
      for (const member of info.members) {
        if (member === ZERO || this.signal?.aborted) continue;
        // A member whose stake no longer backs its memberships is dropped (its slot is refilled).
        if (!(await this.c.contracts.nodeRegistry.read.isBacked([member]))) {
          await this.send(`dropUnbacked(${id}, ${member})`, () => maguRegistry.write.dropUnbacked([id, member]), ["MaguMemberBacked", "MaguNotMember"], () => {
            this.s.dropped++;
            this.log.info("unbacked member dropped", { magu: id.toString(), member });
          });
          continue;
        }
        if (info.fragmentCount > 0) await this.markMisses(id, getAddress(member), info.startPeriod, info.endPeriod, current, head);
      }
      for (let slot = 0; slot < info.members.length; slot++) {
        if (info.members[slot] === ZERO) await this.fillVacancy(id, slot);
      }
      // settle: once the last period's misses can no longer be marked (the contract has the final word).
      if (current >= info.endPeriod && head > (await this.c.contracts.challengeManager.read.markDeadline([info.endPeriod - 1n]))) {
        await this.send(`settle(${id})`, () => this.c.contracts.maguRegistry.write.settle([id]), ["MaguNotExpired"], () => {
          this.s.settled++;
          this.log.info("magu settled", { magu: id.toString() });
        });
      }
    }
  }

  private async markMisses(maguId: bigint, member: Address, startPeriod: bigint, endPeriod: bigint, current: bigint, head: bigint): Promise<void> {
    const { maguRegistry, challengeManager } = this.c.contracts;
    const key = `${maguId}/${member}`;
    // Membership is read every pass: a member evicted by someone else may rejoin later (new joinPeriod).
    const m = await maguRegistry.read.membership([maguId, member]);
    if (!m.active) return;
    let from = m.joinPeriod > startPeriod ? m.joinPeriod : startPeriod;
    const cursor = this.nextPeriod.get(key);
    if (cursor !== undefined && cursor > from) from = cursor;
    // Periods whose deadline can have passed: at most up to the current one (exclusive).
    const last = current < endPeriod ? current : endPeriod;
    for (let p = from; p < last && !this.signal?.aborted; p++) {
      const deadline = await challengeManager.read.proofDeadline([p]);
      if (head < deadline) break;
      // A miss not marked within its window is forgiven (for everyone): move on.
      if (head > (await challengeManager.read.markDeadline([p]))) {
        this.nextPeriod.set(key, p + 1n);
        continue;
      }
      const state = await challengeManager.read.proofState([maguId, member, p]);
      if (state === STATE_OPEN) {
        const ok = await this.send(`markMissed(${maguId}, ${member}, ${p})`, () => challengeManager.write.markMissed([maguId, member, p]), ["ChallengeAlreadySettled", "ChallengeMarkWindowClosed", "ChallengeNothingToProve"], () => {
          this.s.missedMarked++;
          this.counters.missed.inc();
          this.log.info("missed proof marked", { magu: maguId.toString(), member, period: p.toString() });
        });
        if (!ok) return; // retry this period next pass
        // An eviction ends the member's periods (a rejoin starts over from its new joinPeriod).
        if (!(await maguRegistry.read.membership([maguId, member])).active) {
          this.nextPeriod.delete(key);
          return;
        }
      }
      this.nextPeriod.set(key, p + 1n);
    }
  }

  /**
   * A formation seated in part whose selection window closed: nobody else may finish it (the owner
   * may have gone), and its seated members' stake stays locked until someone does. `formMagu` after
   * the window activates it with the seats taken; the others are vacancies, filled next pass.
   */
  private async finishFormation(maguId: bigint, requestBlock: bigint, head: bigint): Promise<void> {
    const [, closes] = await this.c.contracts.maguRegistry.read.selectionWindow([requestBlock]);
    if (head <= closes) return;
    await this.send(`formMagu(${maguId})`, () => this.c.contracts.maguRegistry.write.formMagu([maguId]), ["MaguWrongStatus"], () => {
      this.s.formationsFinished++;
      this.log.info("formation finished after its window: the rest of the seats are vacancies", { magu: maguId.toString() });
    });
  }

  private async fillVacancy(maguId: bigint, slot: number): Promise<void> {
    // MaguTooEarly: before the vacancy's selection window; MaguTooLateToFill: the Magu ends before
    // a replacement could be paid. A call after the window sets a new request (filled next pass).
    await this.send(`fillVacancy(${maguId}, ${slot})`, () => this.c.contracts.maguRegistry.write.fillVacancy([maguId, slot]), ["MaguTooEarly", "MaguNoVacancy", "MaguNotEnoughNodes", "MaguTooLateToFill"], async () => {
      if ((await this.c.contracts.maguRegistry.read.maguInfo([maguId])).members[slot] === ZERO) {
        this.log.info("vacancy selection asked again (its window had passed)", { magu: maguId.toString(), slot });
        return;
      }
      this.s.vacanciesFilled++;
      this.log.info("vacancy filled", { magu: maguId.toString(), slot });
    });
  }

  // ---- weights and epochs -----------------------------------------------------------------------

  private async rewardsCfg(): Promise<{ genesisBlock: bigint; epochBlocks: bigint; maxWeights: number }> {
    if (!this.rewardsConfig) {
      const cfg = await this.c.contracts.rewards.read.config();
      this.rewardsConfig = { genesisBlock: cfg.genesisBlock, epochBlocks: cfg.epochBlocks, maxWeights: Number(cfg.maxWeights) };
    }
    return this.rewardsConfig;
  }

  private async weightsAndEpochs(): Promise<void> {
    const { rewards } = this.c.contracts;
    const cfg = await this.rewardsCfg();
    // The epoch a transaction sent now lands in: the block after the head.
    const head = await this.c.publicClient.getBlockNumber({ cacheTime: 0 });
    const epoch = await rewards.read.currentEpoch();
    const epochEnd = cfg.genesisBlock + (epoch + 1n) * cfg.epochBlocks;
    const window = BigInt(this.init.submitWindowBlocks ?? Math.max(2, Number(cfg.epochBlocks / 4n)));
    const lands = head + 1n;
    if (!this.submittedEpochs.has(epoch) && lands >= epochEnd - window && lands < epochEnd - 1n) {
      await this.submitWeights(epoch, head, cfg.maxWeights);
    }
    if (epoch > 0n && !(await rewards.read.isFinalized([epoch - 1n]))) {
      await this.send(`finalizeEpoch(${epoch - 1n})`, () => rewards.write.finalizeEpoch([epoch - 1n]), ["RewardsAlreadyFinalized"], () => {
        this.s.epochsFinalized++;
        this.counters.finalized.inc();
        this.log.info("epoch finalized", { epoch: (epoch - 1n).toString() });
      });
    }
    for (const e of this.auditTally.keys()) if (e + 2n < epoch) this.auditTally.delete(e);
    for (const e of this.submittedEpochs) if (e + 2n < epoch) this.submittedEpochs.delete(e);
    if (this.init.claimRewards) {
      const amount = await rewards.read.claimable([this.me]);
      if (amount > 0n) {
        await this.send("claim()", () => rewards.write.claim(), ["RewardsNothingToClaim"], () => {
          this.s.claimed += amount;
          this.log.info("rewards claimed", { amount: amount.toString() });
        });
      }
    }
  }

  async scores(epoch: bigint, toBlock?: bigint): Promise<Map<Address, bigint>> {
    const { nodeRegistry, challengeManager } = this.c.contracts;
    const cfg = await this.rewardsCfg();
    const from = cfg.genesisBlock + epoch * cfg.epochBlocks;
    const epochLast = from + cfg.epochBlocks - 1n;
    const head = toBlock ?? (await this.c.publicClient.getBlockNumber({ cacheTime: 0 }));
    const to = head < epochLast ? head : epochLast;
    const obs = new Map<Address, NodeObservation>();
    const of = (a: Address): NodeObservation => {
      const k = getAddress(a);
      let o = obs.get(k);
      if (!o) obs.set(k, (o = { proofs: 0, misses: 0, auditsPassed: 0, auditsFailed: 0 }));
      return o;
    };
    for (let start = from; start <= to; start += VALIDATOR_DEFAULTS.logBlocks) {
      const end = start + VALIDATOR_DEFAULTS.logBlocks - 1n < to ? start + VALIDATOR_DEFAULTS.logBlocks - 1n : to;
      for (const e of await challengeManager.getEvents.ProofSubmitted({}, { fromBlock: start, toBlock: end })) if (e.args.member) of(e.args.member).proofs++;
      for (const e of await challengeManager.getEvents.ProofMissed({}, { fromBlock: start, toBlock: end })) if (e.args.member) of(e.args.member).misses++;
    }
    for (const [node, a] of this.audits(epoch)) {
      of(node).auditsPassed += a.auditsPassed;
      of(node).auditsFailed += a.auditsFailed;
    }
    const scores = new Map<Address, bigint>();
    const count = await nodeRegistry.read.nodeCount();
    for (let i = 0n; i < count; i++) {
      const node = getAddress(await nodeRegistry.read.nodeAt([i]));
      if (!(await nodeRegistry.read.isActive([node, ROLE_NODE]))) continue;
      const o = obs.get(node) ?? { proofs: 0, misses: 0, auditsPassed: 0, auditsFailed: 0 };
      const score = 1n + BigInt(o.proofs) + BigInt(o.auditsPassed) - SCORE_MISS * BigInt(o.misses) - SCORE_AUDIT_FAIL * BigInt(o.auditsFailed);
      scores.set(node, score > 0n ? score : 0n);
    }
    return scores;
  }

  private async submitWeights(epoch: bigint, head: bigint, maxWeights: number): Promise<void> {
    const scores = await this.scores(epoch, head);
    let entries = [...scores.entries()].filter(([a]) => a !== this.me);
    if (entries.length > maxWeights) entries = entries.sort((a, b) => (b[1] > a[1] ? 1 : b[1] < a[1] ? -1 : 0)).slice(0, maxWeights);
    entries.sort((a, b) => (BigInt(a[0]) < BigInt(b[0]) ? -1 : 1));
    if (entries.every(([, s]) => s === 0n)) {
      this.log.warn("no node earned a weight this epoch; nothing submitted", { epoch: epoch.toString() });
      this.submittedEpochs.add(epoch);
      return;
    }
    const nodes = entries.map(([a]) => a);
    const weights = entries.map(([, s]) => s);
    await this.send(`submitWeights(${epoch})`, () => this.c.contracts.rewards.write.submitWeights([epoch, nodes, weights]), [], () => {
      this.submittedEpochs.add(epoch);
      this.s.weightsSubmitted++;
      this.counters.weights.inc();
      this.log.info("weights submitted", { epoch: epoch.toString(), weights: Object.fromEntries(entries.map(([a, s]) => [a, s.toString()])) });
    });
  }

  // ---- audits -------------------------------------------------------------------------------------

  async addAuditTargets(maguId: bigint, cids: readonly CID[], fragmentRoots: readonly Uint8Array[]): Promise<void> {
    if (cids.length !== fragmentRoots.length) throw new RangeError(`${cids.length} CIDs but ${fragmentRoots.length} fragment roots`);
    const info = await this.c.contracts.maguRegistry.read.maguInfo([maguId]);
    const roots = fragmentRoots.map((r) => Buffer.from(r));
    const root = `0x${maguRoot(roots).toString("hex")}`;
    if (info.fragmentCount !== roots.length || root.toLowerCase() !== info.root.toLowerCase()) {
      throw new RangeError(`audit targets of Magu ${maguId} fold to ${root} over ${roots.length} fragments; chain has ${info.root} over ${info.fragmentCount}`);
    }
    this.targets.set(maguId, { maguId, cids: [...cids], roots });
  }

  async auditOnce(): Promise<void> {
    const fetcher = this.c.fetcher;
    if (!fetcher || this.targets.size === 0) return;
    const random = this.c.random ?? auditRandom;
    const rounds = this.init.auditsPerRound ?? VALIDATOR_DEFAULTS.auditsPerRound;
    const all = [...this.targets.values()];
    for (let i = 0; i < rounds && !this.signal?.aborted; i++) {
      const t = all[Math.floor(random() * all.length)]!;
      const info = await this.c.contracts.maguRegistry.read.maguInfo([t.maguId]);
      if (info.status !== STATUS_ACTIVE || info.fragmentCount !== t.roots.length) {
        this.targets.delete(t.maguId);
        continue;
      }
      const f = Math.floor(random() * t.cids.length);
      const n = info.members.length;
      const slots =
        info.params.kind === KIND_BLOB
          ? [holderBlob(t.maguId, f, n, info.params.dataShards, info.params.parityShards)]
          : holdersVector(t.maguId, f, n, info.params.replication);
      const slot = slots[Math.floor(random() * slots.length)]!;
      const holder = info.members[slot]!;
      if (holder === ZERO) continue; // vacant: the replacement is still rebuilding
      await this.auditOne(fetcher, getAddress(holder), t, f);
    }
  }

  private async auditOne(fetcher: AuditFetcher, holder: Address, t: AuditTarget, f: number): Promise<void> {
    const node = await this.c.contracts.nodeRegistry.read.nodeInfo([holder]);
    let reason: string | undefined;
    try {
      const bytes = await fetchFromAny(fetcher, node.multiaddrs, t.cids[f]!, { timeoutMs: this.init.auditTimeoutMs ?? VALIDATOR_DEFAULTS.auditTimeoutMs, signal: this.signal });
      if (!fragmentRoot(bytes).equals(t.roots[f]!)) reason = "bytes do not fold to the committed fragment root";
    } catch (err) {
      reason = (err as Error).message;
    }
    if (this.signal?.aborted) return;
    const epoch = await this.c.contracts.rewards.read.currentEpoch();
    let tally = this.auditTally.get(epoch);
    if (!tally) this.auditTally.set(epoch, (tally = new Map()));
    let o = tally.get(holder);
    if (!o) tally.set(holder, (o = { proofs: 0, misses: 0, auditsPassed: 0, auditsFailed: 0 }));
    const result = reason === undefined ? "passed" : "failed";
    this.counters.audits.inc({ result });
    if (reason === undefined) {
      o.auditsPassed++;
      this.s.auditsPassed++;
      this.log.debug("audit passed", { magu: t.maguId.toString(), fragment: f, holder });
    } else {
      o.auditsFailed++;
      this.s.auditsFailed++;
      this.log.warn("audit failed", { magu: t.maguId.toString(), fragment: f, holder, cid: t.cids[f]!.toString(), reason });
    }
  }

  // ---- transactions -------------------------------------------------------------------------------

  /**
   * Sends one transaction (serialised), waits for its receipt. Returns true when it landed or
   * reverted with one of `benign` (a lost race or "not yet"); other failures are logged once
   * per message and counted.
   */
  private send(what: string, write: () => Promise<Hex>, benign: readonly string[], onSuccess: () => void | Promise<void>): Promise<boolean> {
    const run = async (): Promise<boolean> => {
      try {
        const hash = await write();
        const receipt = await this.c.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: this.init.receiptTimeoutMs ?? VALIDATOR_DEFAULTS.receiptTimeoutMs });
        if (receipt.status !== "success") throw new Error(`${what} reverted (tx ${hash})`);
        await onSuccess();
        return true;
      } catch (err) {
        const name = (toChainError(err)?.context as { errorName?: string } | undefined)?.errorName;
        if (name !== undefined && benign.includes(name)) {
          this.log.debug(`${what}: ${name}`);
          return true;
        }
        this.s.failedTxs++;
        const msg = describeError(err);
        const key = `${what}|${msg}`;
        if (!this.loggedErrors.has(key)) {
          this.loggedErrors.add(key);
          if (this.loggedErrors.size > 1_000) this.loggedErrors.clear();
          this.log.warn(`${what} failed`, { error: msg });
        }
        return false;
      }
    };
    const next = this.txQueue.then(run, run);
    this.txQueue = next.catch(() => undefined);
    return next;
  }
}

/**
 * Registers `address` as a validator (roles = 2) with `stake` unless it is registered already.
 * Returns whether it registered now.
 */
export async function ensureValidatorRegistered(
  components: Pick<ValidatorComponents, "contracts" | "publicClient" | "logger">,
  init: { address: Address; nodeRegistryAddress: Address; stake: bigint; peerId?: Hex; multiaddrs?: string[]; receiptTimeoutMs?: number },
): Promise<boolean> {
  const { contracts, publicClient } = components;
  const log = components.logger ?? silentLogger;
  const info = await contracts.nodeRegistry.read.nodeInfo([init.address]);
  const wait = async (hash: Hex, what: string) => {
    const r = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: init.receiptTimeoutMs ?? VALIDATOR_DEFAULTS.receiptTimeoutMs });
    if (r.status !== "success") throw new Error(`${what} reverted (tx ${hash})`);
  };
  const multiaddrs = init.multiaddrs ?? [];
  if (info.registered) {
    if ((info.roles & ROLE_VALIDATOR) === 0) log.warn("registered without the validator role: weights will be refused", { address: init.address, roles: info.roles });
    if (init.peerId !== undefined && (info.peerId.toLowerCase() !== init.peerId.toLowerCase() || info.multiaddrs.join(" ") !== multiaddrs.join(" "))) {
      // A restarted validator listens on a new port: clients push vector documents there.
      await wait(await contracts.nodeRegistry.write.updateNode([info.capacity, init.peerId, multiaddrs]), "updateNode");
      log.info("validator registration updated", { address: init.address, multiaddrs });
    }
    return false;
  }
  await wait(await contracts.token.write.approve([init.nodeRegistryAddress, init.stake]), "approve");
  const peerId = init.peerId ?? (`0x${Buffer.from(`validator-${init.address}`).toString("hex")}` as Hex);
  await wait(await contracts.nodeRegistry.write.register([init.stake, ROLE_VALIDATOR, 0n, peerId, multiaddrs]), "register");
  log.info("registered as validator", { address: init.address, stake: init.stake.toString() });
  return true;
}

/** A uniform number in [0, 1) from the operating system's CSPRNG (47 bits): which fragment of which holder is audited next. */
export function auditRandom(): number {
  return randomInt(0, 2 ** 47) / 2 ** 47;
}
