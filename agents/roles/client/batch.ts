/**
 * Deliver, acknowledge, commit: how a client adds a batch of data to a Magu (blob files and vector
 * fragments alike; docs/ARCHITECTURE.md, "Deliver, acknowledge, commit").
 *
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
import { batchDomain, proposalTypedData, type Deployment, type SigningChainClients } from "../../chain/index.js";
import { appendProof, maguRoot } from "../../data/merkle.js";
import { searchRequest } from "../../p2p/index.js";
import type { Logger } from "../../store/logger.js";

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

/**
 * Runs steps 1-4 for `plan`; `push(alive, fail)` delivers the batch's documents and fragments to the
 * slots in `alive` and reports a member that failed with `fail(slot, error)` (it is then skipped).
 */
export async function deliverBatch(
  plan: BatchPlan,
  deps: BatchDeps,
  push: (alive: ReadonlySet<number>, fail: (slot: number, error: unknown) => void) => Promise<void>,
): Promise<BatchResult> {
  const roots = [...plan.committedRoots, ...plan.newRoots];
  const root = hexOf(maguRoot(roots));
  const fragmentCount = roots.length;
  const indexCid = plan.indexCid.toString();
  const missing = new Map<number, MissingMember>();
  const alive = new Set<number>();
  plan.slots.forEach((m, slot) => {
    const down = plan.unreachable?.get(slot);
    if (down !== undefined) missing.set(slot, { slot, ...down });
    else if (m === undefined) missing.set(slot, { slot, address: "0x0000000000000000000000000000000000000000", error: "vacant slot" });
    else alive.add(slot);
  });
  const fail = (slot: number, error: unknown): void => {
    if (!alive.delete(slot)) return;
    const message = (error as Error | undefined)?.message ?? String(error);
    missing.set(slot, { slot, address: plan.slots[slot]!.address, error: message });
    deps.log.warn("member left out of the batch", { magu: plan.maguId.toString(), batch: plan.batch, slot, member: plan.slots[slot]!.address, error: message });
  };
  const timeoutMs = deps.requestTimeoutMs ?? 20_000;
  const ask = async (slot: number, request: Record<string, unknown>, what: string): Promise<Record<string, unknown>> => {
    const answer = (await searchRequest(deps.libp2p, plan.slots[slot]!.peerId, request, { limits: { timeoutMs }, what })) as Record<string, unknown>;
    if (answer?.ok !== true) throw new Error(`${what} refused: ${String(answer?.error ?? "no answer")}`);
    return answer;
  };

  // 1. The owner's proposal.
  const domain = batchDomain(deps.deployment.chainId, deps.deployment.contracts.maguRegistry);
  const signature = await deps.clients.walletClient.signTypedData({
    account: deps.clients.account,
    ...proposalTypedData(domain, { magu: plan.maguId, batch: plan.batch, root, fragmentCount, indexCid: hexOf(plan.indexCid.bytes) }),
  });
  const propose = { op: "batch.propose", magu: plan.maguId.toString(), batch: plan.batch, root, fragmentCount, indexCid, signature };
  await Promise.all([...alive].map((slot) => ask(slot, propose, "batch proposal").catch((err: unknown) => fail(slot, err))));

  // 2. Documents and fragments.
  await push(alive, fail);

  // 3. Acknowledgements.
  const acks: Hex[] = plan.slots.map(() => "0x");
  const attempts = deps.ackAttempts ?? 5;
  await Promise.all(
    [...alive].map(async (slot) => {
      let last: unknown;
      for (let attempt = 1; attempt <= attempts; attempt++) {
        try {
          const answer = await ask(slot, { op: "batch.ack", magu: plan.maguId.toString(), batch: plan.batch }, "acknowledgement");
          if (typeof answer.signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(answer.signature)) throw new Error("acknowledgement without a signature");
          acks[slot] = answer.signature as Hex;
          return;
        } catch (err) {
          last = err;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
      fail(slot, last);
    }),
  );
  const missingList = [...missing.values()].sort((a, b) => a.slot - b.slot);
  if (missingList.length > plan.tolerated) throw new BatchUnavailableError(plan.maguId, missingList, plan.tolerated);

  // 4. The commit: root, count, the index CID, the append proof and the acknowledgements.
  const extension = appendProof(roots, plan.committedRoots.length).map(hexOf);
  const block = await deps.commit([plan.maguId, root, fragmentCount, hexOf(plan.indexCid.bytes), extension, acks]);
  deps.log.info("batch committed", { magu: plan.maguId.toString(), batch: plan.batch, fragments: fragmentCount, acknowledged: plan.slots.length - missingList.length, missing: missingList.length });
  return {
    root,
    fragmentCount,
    block,
    acknowledged: [...alive].map((slot) => plan.slots[slot]!.address),
    missing: missingList,
  };
}
