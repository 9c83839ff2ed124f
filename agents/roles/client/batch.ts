/**
 * Deliver, acknowledge, commit: how a client adds a batch of data to a Magu (blob files and vector
 * fragments alike; docs/ARCHITECTURE.md, "Deliver, acknowledge, commit").
 *
 * 0. optionally `batch.open` first (EIP-712 `Open`): the owner lets this client's peer push the
 *    batch's fragments while it still encodes them, before the root exists;
 * 1. `batch.propose` to every member, signed by the owner (EIP-712 `Proposal`: Magu, batch, root,
 *    count, the index document's CID), so members take the batch's pending data;
 * 2. the caller's `push`: documents and fragments to the members still reachable;
 * 3. `batch.ack` from each: its EIP-712 `Ack` once it holds and verified its part;
 * 4. `commitData` with the acknowledgements and the append proof, unless more members are
 *    missing than the Magu tolerates (blob: m, vector: r - 1): then nothing is committed and the
 *    error names every missing member and why.
 * A member that fails at any step is skipped for the rest of the batch; the result names it.
 */
import type { Libp2p, PeerId } from "@libp2p/interface";
import type { CID } from "multiformats/cid";
import type { Address, Hex } from "viem";
import { batchDomain, openTypedData, proposalTypedData, type Deployment, type SigningChainClients } from "../../chain/index.js";
import { appendProof, maguRoot } from "../../data/merkle.js";
import { searchRequest } from "../../p2p/index.js";
import type { Logger } from "../../store/logger.js";
import type { ProgressTracker } from "./progress.js";

/** A member in its slot; undefined for a vacant slot. */
export interface SlotMember {
  address: Address;
  peerId: PeerId;
}

export interface BatchPlan {
  maguId: bigint;
  /** The Magu's next batch number (`maguInfo().batches`). */
  batch: number;
  /** Fragment roots already committed, then this batch's: the new root is over all of them. */
  committedRoots: readonly Uint8Array[];
  newRoots: readonly Uint8Array[];
  /** CID of the batch's index document (the one `push` delivers). */
  indexCid: CID;
  /** Members by slot (undefined: vacant, or not reachable: see `unreachable`). */
  slots: ReadonlyArray<SlotMember | undefined>;
  /** Slots whose member could not be looked up (e.g. an unparsable registered address), and why. */
  unreachable?: ReadonlyMap<number, { address: Address; error: string }>;
  /** Members that may be missing: blob m, vector r - 1. */
  tolerated: number;
}

export interface BatchDeps {
  libp2p: Pick<Libp2p, "dialProtocol">;
  /** The owner's account (it signs the proposal). */
  clients: SigningChainClients;
  /** Chain id and MaguRegistry address: the EIP-712 domain. */
  deployment: Pick<Deployment, "chainId" | "contracts">;
  /** Sends commitData and waits for its receipt (throws on a revert). */
  commit(args: readonly [bigint, Hex, number, Hex, readonly Hex[], readonly Hex[]]): Promise<bigint>;
  log: Logger;
  /** How long one request may take, ms. */
  requestTimeoutMs?: number;
  /** Acknowledgement attempts per member (a member may still be storing the last pushes). */
  ackAttempts?: number;
}

/** One member that did not acknowledge, and why. */
export interface MissingMember {
  slot: number;
  address: Address;
  error: string;
}

export interface BatchResult {
  root: Hex;
  fragmentCount: number;
  /** Block of the commit. */
  block: bigint;
  acknowledged: Address[];
  missing: MissingMember[];
}

/** Too many members missing: the batch would not be available, so nothing was committed. */
export class BatchUnavailableError extends Error {
  override readonly name = "BatchUnavailableError";
  readonly code = "ERR_NOT_AVAILABLE";
  constructor(
    readonly maguId: bigint,
    readonly missing: readonly MissingMember[],
    readonly tolerated: number,
  ) {
    super(
      `Magu ${maguId}: ${missing.length} member(s) did not take the batch, at most ${tolerated} may be missing; nothing was committed ` +
        `(${missing.map((m) => `slot ${m.slot} ${m.address}: ${m.error}`).join("; ")}). Retry when they are back, or put into a new Magu`,
    );
  }
}

const hexOf = (bytes: Uint8Array): Hex => `0x${Buffer.from(bytes).toString("hex")}`;

/** Who a batch goes to: the Magu, its next batch number, its members by slot. */
export type BatchTarget = Pick<BatchPlan, "maguId" | "batch" | "slots" | "unreachable" | "tolerated">;

/**
 * One batch's delivery to the members of a Magu. `open` (optional) lets this client push fragments
 * before the batch's root is known; `finish` proposes the batch, runs the caller's pushes, collects
 * the acknowledgements and commits. A member that fails any step is left out of the rest (`alive`).
 */
export class BatchDelivery {
  /** Slots still taking part. */
  readonly alive = new Set<number>();
  private readonly missing = new Map<number, MissingMember>();
  private openedCount: number | undefined;

  constructor(
    private readonly target: BatchTarget,
    private readonly deps: BatchDeps,
  ) {
    target.slots.forEach((m, slot) => {
      const down = target.unreachable?.get(slot);
      if (down !== undefined) this.missing.set(slot, { slot, ...down });
      else if (m === undefined) this.missing.set(slot, { slot, address: "0x0000000000000000000000000000000000000000", error: "vacant slot" });
      else this.alive.add(slot);
    });
  }

  /** Leaves `slot` out of the rest of the batch, with why. */
  readonly fail = (slot: number, error: unknown): void => {
    if (!this.alive.delete(slot)) return;
    const message = (error as Error | undefined)?.message ?? String(error);
    const member = this.target.slots[slot]!.address;
    this.missing.set(slot, { slot, address: member, error: message });
    this.deps.log.warn("member left out of the batch", { magu: this.target.maguId.toString(), batch: this.target.batch, slot, member, error: message });
  };

  private async ask(slot: number, request: Record<string, unknown>, what: string): Promise<Record<string, unknown>> {
    const limits = { timeoutMs: this.deps.requestTimeoutMs ?? 20_000 };
    const answer = (await searchRequest(this.deps.libp2p, this.target.slots[slot]!.peerId, request, { limits, what })) as Record<string, unknown>;
    if (answer?.ok !== true) throw new Error(`${what} refused: ${String(answer?.error ?? "no answer")}`);
    return answer;
  }

  private domain() {
    return batchDomain(this.deps.deployment.chainId, this.deps.deployment.contracts.maguRegistry);
  }

  /**
   * `batch.open` to every member: the owner lets `pusher` (this client's peer) push up to the
   * batch's new fragments before their root exists. `fragmentCount`: the Magu's count after the batch.
   */
  async open(fragmentCount: number, pusher: PeerId): Promise<void> {
    const { maguId, batch } = this.target;
    const signature = await this.deps.clients.walletClient.signTypedData({
      account: this.deps.clients.account,
      ...openTypedData(this.domain(), { magu: maguId, batch, fragmentCount, pusher: hexOf(pusher.toMultihash().bytes) }),
    });
    const request = { op: "batch.open", magu: maguId.toString(), batch, fragmentCount, pusher: pusher.toString(), signature };
    await Promise.all([...this.alive].map((slot) => this.ask(slot, request, "batch opening").catch((err: unknown) => this.fail(slot, err))));
    this.openedCount = fragmentCount;
  }

  /**
   * Steps 1-4 (module comment) for `content`; `push(alive, fail)` delivers the batch's documents
   * and any fragments not pushed yet to the slots in `alive`, and reports a member that failed
   * with `fail(slot, error)` (it is then skipped). `progress` hears the acknowledgements and the commit.
   */
  async finish(
    content: Pick<BatchPlan, "committedRoots" | "newRoots" | "indexCid">,
    push: (alive: ReadonlySet<number>, fail: (slot: number, error: unknown) => void) => Promise<void>,
    progress?: ProgressTracker,
  ): Promise<BatchResult> {
    const { maguId, batch, slots, tolerated } = this.target;
    const { deps, alive, fail } = this;
    const roots = [...content.committedRoots, ...content.newRoots];
    const root = hexOf(maguRoot(roots));
    const fragmentCount = roots.length;
    if (this.openedCount !== undefined && this.openedCount !== fragmentCount) {
      throw new RangeError(`batch ${batch} of Magu ${maguId} was opened for ${this.openedCount} fragments, its content has ${fragmentCount}`);
    }
    const indexCid = content.indexCid.toString();

    // 1. The owner's proposal.
    const signature = await deps.clients.walletClient.signTypedData({
      account: deps.clients.account,
      ...proposalTypedData(this.domain(), { magu: maguId, batch, root, fragmentCount, indexCid: hexOf(content.indexCid.bytes) }),
    });
    const propose = { op: "batch.propose", magu: maguId.toString(), batch, root, fragmentCount, indexCid, signature };
    await Promise.all([...alive].map((slot) => this.ask(slot, propose, "batch proposal").catch((err: unknown) => fail(slot, err))));

    // 2. Documents and fragments.
    await push(alive, fail);
    deps.log.debug("batch delivered", { magu: maguId.toString(), batch, members: alive.size });

    // 3. Acknowledgements.
    progress?.set({ phase: "collecting acknowledgements", acksTotal: progress.snapshot.acksTotal + alive.size });
    const acks: Hex[] = slots.map(() => "0x");
    const attempts = deps.ackAttempts ?? 5;
    await Promise.all(
      [...alive].map(async (slot) => {
        let last: unknown;
        for (let attempt = 1; attempt <= attempts; attempt++) {
          try {
            const answer = await this.ask(slot, { op: "batch.ack", magu: maguId.toString(), batch }, "acknowledgement");
            if (typeof answer.signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(answer.signature)) throw new Error("acknowledgement without a signature");
            acks[slot] = answer.signature as Hex;
            progress?.add("acksReceived");
            return;
          } catch (err) {
            last = err;
            await new Promise((r) => setTimeout(r, 200 * attempt));
          }
        }
        fail(slot, last);
      }),
    );
    const missingList = [...this.missing.values()].sort((a, b) => a.slot - b.slot);
    if (missingList.length > tolerated) throw new BatchUnavailableError(maguId, missingList, tolerated);

    // 4. The commit: root, count, the index CID, the append proof and the acknowledgements.
    progress?.set({ phase: "committing on chain" });
    const extension = appendProof(roots, content.committedRoots.length).map(hexOf);
    const block = await deps.commit([maguId, root, fragmentCount, hexOf(content.indexCid.bytes), extension, acks]);
    deps.log.info("batch committed", { magu: maguId.toString(), batch, fragments: fragmentCount, acknowledged: slots.length - missingList.length, missing: missingList.length });
    return { root, fragmentCount, block, acknowledged: [...alive].map((slot) => slots[slot]!.address), missing: missingList };
  }
}

/** Steps 1-4 for `plan` without an opening (the caller pushes everything in `push`). */
export function deliverBatch(
  plan: BatchPlan,
  deps: BatchDeps,
  push: (alive: ReadonlySet<number>, fail: (slot: number, error: unknown) => void) => Promise<void>,
  progress?: ProgressTracker,
): Promise<BatchResult> {
  return new BatchDelivery(plan, deps).finish(plan, push, progress);
}
