/**
 * Repair: rebuilding a member's lost fragments of a blob Magu from the other holders (erasure
 * decoding), for a replacement drafted into a vacated slot and for a member whose own files were
 * deleted or corrupted.
 *
 * How a replacement learns what to rebuild (the "hand-over"):
 * the manifest and the Magu index document are content-addressed, and nothing on chain names their
 * CIDs, so a newcomer cannot ask for them by key. Instead every remaining member, when it sees
 * `MemberJoined(magu, member, slot, replacement = true)` for a Magu it indexes, pushes its copies of
 * the manifests (one per file of the Magu) and then of the index document to the new member over `/muri/fragment/1.0.0`
 * (`handOver`, bounded retries with back-off). The newcomer's Magu sink verifies them exactly as a
 * client upload (magu-sync.ts: the fragment roots must fold to the on-chain root and the node must
 * be an active member), records its slot's fragments in the Magu index, and only then does
 * `repairSlot` (started by the newcomer's own MemberJoined) proceed; it waits for the index with
 * bounded back-off. One honest remaining member is enough; the pushes are idempotent.
 *
 * `repairSlot({ maguId })` / `repairFragments(maguId, fragments)`:
 * for each fragment of this node's slot (placement, `fragmentsOfSlot`) that is not in the store
 * (or fails its hash check), fetch the stripe's other shards from their holders (placement names
 * the slot, NodeRegistry the peer id and addresses; fetches are CID-verified, a holder that fails
 * once is skipped for the rest of the pass, 5 s per fetch), rebuild with Reed-Solomon
 * (`fetchStripe(..., { all: true })`), check the rebuilt shard against its CID and store it.
 * Stripes that cannot be rebuilt yet are retried with exponential back-off, a bounded number of
 * times. Fragments already stored are skipped, so a repair is idempotent and a restarted node
 * resumes it (`resumeAll` at start).
 *
 * A batch committed without this node (it was down or unreachable during the upload):
 * `catchUp(maguId, indexCid, take)` fetches the batch's index document by the CID `DataCommitted`
 * names (and a blob Magu's manifests it lists) from the other members, hands each to `take` (the
 * Magu sink, which checks them against the root on chain), then fetches this node's fragments:
 * a blob Magu's by rebuilding them (`requestSelfRepair`), a vector Magu's replicas by CID from their
 * other holders (`fetchReplicas`). It must finish within the batch's grace (MaguRegistry).
 *
 * Documents of a Magu are found by scanning the store's DAG-JSON entries for the index document
 * of that Magu whose manifests fold to the on-chain root (cached per Magu and root). Limitation:
 * the scan is linear in the number of stored CIDs; a persisted Magu -> index CID map would avoid it.
 */
import { cidMatches } from "../../data/cid.js";
import { CID } from "multiformats/cid";
import type { PeerId } from "@libp2p/interface";
import { peerIdFromMultihash } from "@libp2p/peer-id";
import * as Digest from "multiformats/hashes/digest";
import type { Address, Hex } from "viem";
import { describeError, pause, type MuriContracts, type MuriPublicClient } from "../../chain/index.js";
import { DAG_JSON_CODEC, decodeManifest, type Manifest } from "../../data/manifest.js";
import { maguRoot } from "../../data/merkle.js";
import { fetchStripe, type ShardFetcher } from "../../data/pipeline.js";
import { fragmentsOfSlot, holderBlob, holdersVector } from "../../data/placement.js";
import { RemoteRefusedError, type P2PNode } from "../../p2p/index.js";
import type { FragmentStore } from "../../store/fragment-store.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import type { MaguIndex } from "../shared/magu-index.js";
import { fetchBatchDocuments } from "../shared/batch-documents.js";
import { MAGU_INDEX_TYPE, decodeMaguIndexList, fileOfFragment, layoutMaguFiles, type MaguFile } from "../shared/magu-sync.js";

/** Defaults of the repair service. */
export const REPAIR_DEFAULTS = {
  /** Deadline of one shard fetch from one holder, ms. */
  fetchTimeoutMs: 5_000,
  /** Deadline of one document push, ms. */
  pushTimeoutMs: 10_000,
  /** Attempts of a repair (or a hand-over) before giving up. */
  attempts: 8,
  /** First back-off, ms (doubles each attempt, capped at `maxBackoffMs`). */
  backoffMs: 500,
  maxBackoffMs: 8_000,
} as const;

const STATUS_ACTIVE = 2;
const KIND_BLOB = 0;
const ZERO = /^0x0{40}$/i;
/** Rounds of a replica fetch while holders refuse this node for not having seen it join yet. */
const REPLICA_ROUNDS = 5;

export interface RepairInit {
  /** This node's address. */
  member: Address;
  fetchTimeoutMs?: number;
  pushTimeoutMs?: number;
  attempts?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
}

export interface RepairComponents {
  store: FragmentStore;
  index: MaguIndex;
  p2p: P2PNode;
  /** Read-only contract handles. */
  contracts: MuriContracts<MuriPublicClient>;
  logger?: Logger;
}

export interface RepairResult {
  maguId: bigint;
  slot: number;
  /** Fragments of the slot (or asked for). */
  assigned: number;
  /** Fragments rebuilt and stored by this call. */
  repaired: number;
  /** Fragments that were already stored. */
  present: number;
  /** Fragments still missing when the call gave up. */
  failed: number;
}

export interface Repairer {
  /**
   * Rebuilds every missing fragment of this node's slot in `maguId` (see the module comment).
   * `verify` re-reads every stored fragment of the slot with its hash check (files deleted or
   * corrupted on disk are then found too); without it the store's index says what is present.
   */
  repairSlot(target: { maguId: bigint; slot?: number; verify?: boolean }): Promise<RepairResult>;
  /**
   * Self-repair after the prover found a fragment of `maguId` missing or corrupt: a verifying
   * `repairSlot` in the background, coalesced (one queued per Magu at a time).
   */
  requestSelfRepair(maguId: bigint): void;
  /** Rebuilds the given fragments of `maguId` (self-repair; each is re-checked first). */
  repairFragments(maguId: bigint, fragments: readonly number[]): Promise<RepairResult>;
  /**
   * Fetches a batch this node missed: its index document (`indexCid`, hex CID bytes from
   * DataCommitted) and manifests from the other members, handed to `take`; then this node's
   * fragments. False when no member served the document within the bounded retries.
   */
  catchUp(maguId: bigint, indexCid: Hex, take: (cid: CID, bytes: Uint8Array) => Promise<void>): Promise<boolean>;
  /** Pushes this node's manifests and index document of `maguId` to `member` (a replacement). */
  handOver(maguId: bigint, member: Address): Promise<boolean>;
  /** Starts `repairSlot` in the background for every indexed Magu this node is an active member of. */
  resumeAll(): Promise<void>;
  /** Runs `fn` in the background, tracked so `stop` waits for it; errors are logged. */
  spawn(what: string, fn: () => Promise<unknown>): void;
  /** Aborts repairs in progress and waits for them. */
  stop(): Promise<void>;
}

export function createRepairer(init: RepairInit, components: RepairComponents): Repairer {
  return new StripeRepairer(init, components);
}

interface MaguDocuments {
  root: Hex;
  /** The Magu's files in commit order (one, unless files were appended). */
  files: MaguFile[];
  /** Manifest bytes, one per file. */
  manifestBytes: Uint8Array[];
  indexCid: CID;
  indexBytes: Uint8Array;
}

class AbortedError extends Error {
  constructor() {
    super("repair stopped");
  }
}

class StripeRepairer implements Repairer {
  private readonly log: Logger;
  private readonly controller = new AbortController();
  private readonly tasks = new Set<Promise<unknown>>();
  /** Per-Magu serialisation of repairs. */
  private readonly locks = new Map<bigint, Promise<unknown>>();
  private readonly docs = new Map<string, MaguDocuments>();
  private readonly me: string;
  private readonly selfRepairQueued = new Set<bigint>();

  constructor(
    private readonly init: RepairInit,
    private readonly c: RepairComponents,
  ) {
    this.log = c.logger ?? silentLogger;
    this.me = init.member.toLowerCase();
  }

  // ------------------------------------------------------------------------------- lifecycle

  spawn(what: string, fn: () => Promise<unknown>): void {
    if (this.controller.signal.aborted) return;
    const task = fn()
      .catch((err: unknown) => {
        if (!(err instanceof AbortedError)) this.log.warn(`${what} failed`, { error: describeError(err) });
      })
      .finally(() => this.tasks.delete(task));
    this.tasks.add(task);
  }

  async stop(): Promise<void> {
    this.controller.abort();
    await Promise.allSettled([...this.tasks]);
  }

  async resumeAll(): Promise<void> {
    for (const maguId of await this.c.index.maguIds()) {
      const rec = await this.c.index.get(maguId);
      if (rec === undefined || rec.held.length === 0) continue;
      let missing = 0;
      for (const f of rec.held) if (!(await this.c.store.has(rec.cids[f]!))) missing++;
      if (missing === 0) continue;
      this.log.info("resuming repair", { magu: maguId.toString(), missing });
      this.spawn("resumed repair", () => this.repairSlot({ maguId }));
    }
  }

  // ---------------------------------------------------------------------------------- helpers

  private get attempts(): number {
    return this.init.attempts ?? REPAIR_DEFAULTS.attempts;
  }

  private backoff(attempt: number): Promise<void> {
    const base = this.init.backoffMs ?? REPAIR_DEFAULTS.backoffMs;
    const ms = Math.min(base * 2 ** attempt, this.init.maxBackoffMs ?? REPAIR_DEFAULTS.maxBackoffMs);
    const signal = this.controller.signal;
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(new AbortedError());
      const done = (): void => {
        clearTimeout(timer);
        signal.removeEventListener("abort", done);
        if (signal.aborted) reject(new AbortedError());
        else resolve();
      };
      const timer = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  private checkAborted(): void {
    if (this.controller.signal.aborted) throw new AbortedError();
  }

  private withLock<T>(maguId: bigint, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(maguId) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const settled = next.catch(() => undefined);
    this.locks.set(maguId, settled);
    void settled.then(() => {
      if (this.locks.get(maguId) === settled) this.locks.delete(maguId);
    });
    return next;
  }

  /** Registered peer id of `member`, its addresses added to the peer store. */
  private async peerOf(member: Address): Promise<PeerId> {
    const info = await this.c.contracts.nodeRegistry.read.nodeInfo([member]);
    const peerId = peerIdFromMultihash(Digest.decode(Buffer.from(info.peerId.slice(2), "hex")));
    const addrs = info.multiaddrs.map((a) => (a.includes("/p2p/") ? a : `${a}/p2p/${peerId.toString()}`));
    if (addrs.length > 0) await this.c.p2p.addPeers(addrs);
    return peerId;
  }

  /** This node's manifests and index document of `maguId` matching `root`, from the local store. */
  private async documents(maguId: bigint, root: Hex, fragmentCount: number): Promise<MaguDocuments | undefined> {
    const key = `${maguId}:${root.toLowerCase()}`;
    const cached = this.docs.get(key);
    if (cached !== undefined) return cached;
    const { store } = this.c;
    for await (const cid of store.list()) {
      if (cid.code !== DAG_JSON_CODEC) continue;
      try {
        const bytes = await store.get(cid);
        const type = (JSON.parse(Buffer.from(bytes).toString("utf8")) as { type?: unknown }).type;
        if (type !== MAGU_INDEX_TYPE) continue;
        const list = decodeMaguIndexList(bytes, cid);
        if (list.maguId !== maguId) continue;
        const manifests: Array<{ manifestCid: CID; manifest: Manifest }> = [];
        const manifestBytes: Uint8Array[] = [];
        for (const manifestCid of list.manifestCids) {
          if (!(await store.has(manifestCid))) break;
          const b = await store.get(manifestCid);
          manifests.push({ manifestCid, manifest: decodeManifest(b, manifestCid) });
          manifestBytes.push(b);
        }
        if (manifests.length !== list.manifestCids.length) continue;
        const roots = manifests.flatMap(({ manifest }) => manifest.roots);
        if (roots.length !== fragmentCount) continue;
        const folded = `0x${maguRoot(roots.map((r) => Buffer.from(r, "hex"))).toString("hex")}`;
        if (folded.toLowerCase() !== root.toLowerCase()) continue;
        const found: MaguDocuments = { root, files: layoutMaguFiles(manifests), manifestBytes, indexCid: cid, indexBytes: bytes };
        this.docs.set(key, found);
        return found;
      } catch (err) {
        this.log.debug("skipping unreadable document", { cid: cid.toString(), error: describeError(err) });
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------------------------- catch-up

  async catchUp(maguId: bigint, indexCidHex: Hex, take: (cid: CID, bytes: Uint8Array) => Promise<void>): Promise<boolean> {
    const indexCid = CID.decode(Buffer.from(indexCidHex.slice(2), "hex"));
    const ctx = { magu: maguId.toString(), index: indexCid.toString() };
    const deps = {
      p2p: this.c.p2p,
      contracts: this.c.contracts,
      store: this.c.store,
      self: this.init.member,
      logger: this.log,
      signal: this.controller.signal,
      timeoutMs: this.init.fetchTimeoutMs ?? REPAIR_DEFAULTS.fetchTimeoutMs,
    };
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      this.checkAborted();
      const info = await this.c.contracts.maguRegistry.read.maguInfo([maguId]);
      if (info.status !== STATUS_ACTIVE || !info.members.some((a) => a.toLowerCase() === this.me)) return false;
      const from = await fetchBatchDocuments(deps, maguId, indexCid, take).catch((err: unknown) => {
        this.checkAborted();
        throw err;
      });
      if (from !== undefined) {
        this.log.info("caught up with a batch: documents taken", { ...ctx, from });
        if (info.params.kind === KIND_BLOB) this.requestSelfRepair(maguId);
        else this.spawn("replica fetch", () => this.fetchReplicas(maguId, take));
        return true;
      }
      await this.backoff(attempt);
    }
    this.log.warn("could not catch up with a batch: no member served its index document", ctx);
    return false;
  }

  /**
   * A vector Magu's replicas assigned to this node and missing here, fetched by CID from their
   * other holders (replicas are byte-identical, so the CID check is the whole verification) and
   * stored through the Magu sink, which indexes them. Returns how many are still missing.
   */
  private async fetchReplicas(maguId: bigint, take: (cid: CID, bytes: Uint8Array) => Promise<void>): Promise<number> {
    const { p2p, store, index } = this.c;
    const timeoutMs = this.init.fetchTimeoutMs ?? REPAIR_DEFAULTS.fetchTimeoutMs;
    const rec = await index.get(maguId);
    if (rec === undefined) return 0;
    const info = await this.c.contracts.maguRegistry.read.maguInfo([maguId]);
    let missing = 0;
    // A holder that has not seen this node join yet refuses it ("access denied"): a few more
    // rounds, a second apart, for what was refused.
    for (let round = 0; round < REPLICA_ROUNDS; round++) {
      missing = 0;
      let refused = false;
      for (const f of rec.held) {
        const cid = rec.cids[f]!;
        if (await store.has(cid)) continue;
        let got = false;
        for (const slot of holdersVector(maguId, f, info.members.length, info.params.replication)) {
          const holder = info.members[slot]!;
          if (ZERO.test(holder) || holder.toLowerCase() === this.me) continue;
          try {
            const bytes = await p2p.fetchFragment(await this.peerOf(holder), cid, { timeoutMs, signal: this.controller.signal });
            await take(cid, bytes);
            got = true;
            break;
          } catch (err) {
            this.checkAborted();
            if (err instanceof RemoteRefusedError && err.context.reason.startsWith("access denied")) refused = true;
            this.log.debug("replica fetch failed", { magu: maguId.toString(), fragment: f, holder, error: describeError(err) });
          }
        }
        if (!got) missing++;
      }
      if (missing === 0 || !refused) break;
      await pause(1_000, this.controller.signal).catch(() => undefined);
      this.checkAborted();
    }
    this.log.info("vector replicas fetched", { magu: maguId.toString(), held: rec.held.length, missing });
    return missing;
  }

  // --------------------------------------------------------------------------------- hand-over

  async handOver(maguId: bigint, member: Address): Promise<boolean> {
    const ctx = { magu: maguId.toString(), to: member };
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      this.checkAborted();
      try {
        const info = await this.c.contracts.maguRegistry.read.maguInfo([maguId]);
        if (info.status !== STATUS_ACTIVE || !info.members.some((a) => a.toLowerCase() === member.toLowerCase())) {
          this.log.info("hand-over skipped: not a member any more", ctx);
          return false;
        }
        const docs = await this.documents(maguId, info.root, info.fragmentCount);
        if (docs === undefined) {
          this.log.warn("hand-over skipped: this node has no documents for the committed root", ctx);
          return false;
        }
        const peer = await this.peerOf(member);
        const timeoutMs = this.init.pushTimeoutMs ?? REPAIR_DEFAULTS.pushTimeoutMs;
        for (const [i, file] of docs.files.entries()) {
          await this.c.p2p.pushFragment(peer, file.manifestCid, docs.manifestBytes[i]!, { timeoutMs, signal: this.controller.signal });
        }
        await this.c.p2p.pushFragment(peer, docs.indexCid, docs.indexBytes, { timeoutMs, signal: this.controller.signal });
        this.log.info("handed the Magu documents over", { ...ctx, index: docs.indexCid.toString() });
        return true;
      } catch (err) {
        this.checkAborted();
        this.log.warn("hand-over failed; retrying", { ...ctx, attempt, error: describeError(err) });
      }
      await this.backoff(attempt);
    }
    return false;
  }

  // ------------------------------------------------------------------------------------ repair

  repairSlot(target: { maguId: bigint; slot?: number; verify?: boolean }): Promise<RepairResult> {
    return this.repair(target.maguId, undefined, target.verify ?? false, target.slot);
  }

  repairFragments(maguId: bigint, fragments: readonly number[]): Promise<RepairResult> {
    return this.repair(maguId, fragments, true);
  }

  requestSelfRepair(maguId: bigint): void {
    if (this.selfRepairQueued.has(maguId)) return;
    this.selfRepairQueued.add(maguId);
    this.spawn("self-repair", async () => {
      // Queued until the lock is ours: reports arriving meanwhile are covered by this pass.
      await this.withLock(maguId, async () => this.selfRepairQueued.delete(maguId));
      return this.repairSlot({ maguId, verify: true });
    });
  }

  private async repair(maguId: bigint, only: readonly number[] | undefined, verify: boolean, expectSlot?: number): Promise<RepairResult> {
    const ctx = { magu: maguId.toString() };
    const started = performance.now();
    let last: RepairResult = { maguId, slot: expectSlot ?? -1, assigned: 0, repaired: 0, present: 0, failed: 0 };
    let repaired = 0;
    for (let attempt = 0; attempt < this.attempts; attempt++) {
      this.checkAborted();
      try {
        const result = await this.withLock(maguId, () => this.pass(maguId, only, verify && attempt === 0, expectSlot));
        if (result === "not-member") {
          this.log.info("repair skipped: not an active member", ctx);
          return last;
        }
        if (result !== "no-index") {
          repaired += result.repaired;
          last = { ...result, repaired };
          if (result.failed === 0) {
            if (repaired > 0 || !verify) {
              this.log.info("repair complete", { ...ctx, slot: result.slot, assigned: result.assigned, repaired, present: result.present, ms: Math.round(performance.now() - started) });
            }
            return last;
          }
          this.log.warn("repair incomplete; retrying", { ...ctx, attempt, failed: result.failed });
        } else {
          this.log.info("waiting for the Magu documents", { ...ctx, attempt });
        }
      } catch (err) {
        this.checkAborted();
        this.log.warn("repair pass failed; retrying", { ...ctx, attempt, error: describeError(err) });
      }
      await this.backoff(attempt);
    }
    this.log.error("repair gave up", { ...ctx, ...last, maguId: undefined });
    return last;
  }

  /** One repair pass over the slot's (or the given) fragments. */
  private async pass(maguId: bigint, only: readonly number[] | undefined, verify: boolean, expectSlot?: number): Promise<RepairResult | "no-index" | "not-member"> {
    const { store, index, p2p } = this.c;
    const info = await this.c.contracts.maguRegistry.read.maguInfo([maguId]);
    if (info.params.kind !== KIND_BLOB || info.status !== STATUS_ACTIVE) return "not-member";
    const slot = info.members.findIndex((a) => a.toLowerCase() === this.me);
    if (slot < 0 || (expectSlot !== undefined && slot !== expectSlot)) return "not-member";
    if (info.fragmentCount === 0) return { maguId, slot, assigned: 0, repaired: 0, present: 0, failed: 0 };
    const record = await index.get(maguId);
    if (record === undefined || record.root.toLowerCase() !== info.root.toLowerCase()) return "no-index";
    const docs = await this.documents(maguId, info.root, info.fragmentCount);
    if (docs === undefined) return "no-index";
    const { files } = docs;
    const { k, m } = files[0]!.manifest.erasure;
    const slots = info.params.members;
    const held = fragmentsOfSlot(maguId, info.fragmentCount, slots, slot, { k, m });
    const wanted = only === undefined ? held : held.filter((f) => only.includes(f));

    // What is missing (a stored copy that fails its hash check counts as missing).
    const missing: number[] = [];
    const shardCid = (f: number): CID => {
      const file = fileOfFragment(files, f)!;
      return file.manifest.shards[f - file.offset]!;
    };
    for (const f of wanted) {
      const cid = shardCid(f);
      if (!(await store.has(cid))) {
        missing.push(f);
      } else if (verify) {
        try {
          await store.get(cid); // verifies; a corrupt entry is removed by the store
        } catch {
          await store.delete(cid).catch(() => false);
          missing.push(f);
        }
      }
    }
    const result: RepairResult = { maguId, slot, assigned: wanted.length, repaired: 0, present: wanted.length - missing.length, failed: 0 };
    if (missing.length === 0) return result;

    // Rebuild stripe by stripe from the other holders.
    const w = k + m;
    const byStripe = new Map<number, number[]>();
    for (const f of missing) {
      const stripe = Math.floor(f / w);
      byStripe.set(stripe, [...(byStripe.get(stripe) ?? []), f]);
    }
    const down = new Set<string>();
    const peers = new Map<string, PeerId>();
    const timeoutMs = this.init.fetchTimeoutMs ?? REPAIR_DEFAULTS.fetchTimeoutMs;
    for (const [stripe, fragments] of byStripe) {
      this.checkAborted();
      const rebuilding = new Set(fragments);
      // Stripes never straddle two files: the file of the stripe's first fragment holds all of it.
      const file = fileOfFragment(files, stripe * w)!;
      const fetcher: ShardFetcher = async (cid, where) => {
        const f = file.offset + where.index; // the Magu fragment index
        if (rebuilding.has(f)) return undefined;
        if (await store.has(cid)) return store.get(cid).catch(() => undefined);
        const holder = info.members[holderBlob(maguId, f, slots, k, m)];
        if (holder === undefined || ZERO.test(holder) || holder.toLowerCase() === this.me || down.has(holder.toLowerCase())) return undefined;
        try {
          let peer = peers.get(holder.toLowerCase());
          if (peer === undefined) {
            peer = await this.peerOf(holder);
            peers.set(holder.toLowerCase(), peer);
          }
          return await p2p.fetchFragment(peer, cid, { timeoutMs, signal: this.controller.signal });
        } catch (err) {
          down.add(holder.toLowerCase());
          this.log.warn("holder unreachable during repair, skipping it", { magu: maguId.toString(), holder, error: describeError(err) });
          return undefined;
        }
      };
      let shards: Buffer[];
      try {
        // The fetcher's bytes are verified: the store checks on read, fetchFragment as they arrive.
        shards = await fetchStripe(file.manifest, stripe - file.offset / w, fetcher, { all: true, verified: true });
      } catch (err) {
        this.log.warn("stripe not rebuildable now", { magu: maguId.toString(), stripe, error: describeError(err) });
        result.failed += fragments.length;
        continue;
      }
      for (const f of fragments) {
        const cid = shardCid(f);
        const bytes = shards[f - stripe * w]!;
        if (!cidMatches(cid, bytes)) {
          this.log.error("rebuilt shard does not match its CID", { magu: maguId.toString(), fragment: f, cid: cid.toString() });
          result.failed++;
          continue;
        }
        await store.put(cid, bytes, { verify: false }); // checked just above
        result.repaired++;
        this.log.debug("fragment rebuilt", { magu: maguId.toString(), fragment: f, cid: cid.toString() });
      }
    }
    if (result.repaired > 0) await store.flush();
    return result;
  }
}
