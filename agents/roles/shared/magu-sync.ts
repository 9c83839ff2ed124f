/**
 * How a node learns what to store: the Magu index document, the push acceptance policy, and the
 * sink that records what was accepted.
 *
 * Every batch of data is delivered before it is committed (docs/ARCHITECTURE.md, "Deliver,
 * acknowledge, commit"). The Magu's owner first sends each member a `batch.propose` request: the
 * batch number (the Magu's next), the root and fragment count it will commit and the CID of the
 * batch's index document, signed by the owner (EIP-712 `Proposal`, chain/batches.ts). A member
 * keeps the proposal (the newest per Magu) for `pendingTtlMs`; documents and fragments of the
 * batch are then checked against the proposal instead of the chain. Once it holds every fragment
 * placement gives it, it answers `batch.ack` with its EIP-712 `Ack`, which the owner's commit
 * carries. A proposal that is not committed in time is dropped with the fragments it brought.
 *
 * A blob client pushes while it encodes, before the root exists: it first sends `batch.open`, the
 * owner's EIP-712 `Open` naming the batch, the Magu's fragment count after it and the one libp2p
 * peer allowed to push (`pusher`). Until the batch's index document arrives, a member takes raw
 * fragments from that peer only, at most as many as the batch adds, and keeps them as
 * *unplaced*; the verified index assigns what it holds and every unplaced fragment it does not
 * assign is deleted. An opening that sees no index in `pendingTtlMs` is dropped with its fragments.
 *
 * A client that uploads a file to a blob Magu pushes, in this order, to every member:
 * 1. the file's manifest (DAG-JSON, data/manifest.ts: shard CIDs and fragment roots);
 * 2. the Magu index document (DAG-JSON, below): `{"magu":"<id>","manifest":{"/":"<cid>"},"type":"muri/magu-index","version":1}`;
 *    a Magu that files were appended to gets version 2, listing every manifest in commit order
 *    (`MaguIndexList`; every listed manifest is pushed first);
 * then each shard to the member that placement names (docs/ENCODING.md § Placement).
 *
 * Acceptance rule (`acceptPush`):
 * - DAG-JSON documents up to `MAX_DOCUMENT_BYTES` from any peer; the sink then requires a manifest
 *   that validates against its CID (kept in memory, `staged-manifests.ts`, and written to disk only
 *   once an index document that lists it is verified), or an index document whose manifests this
 *   node has,
 *   whose fragment roots (concatenated in list order) fold to the root of the Magu's pending
 *   proposal (when its CID is the proposal's) or else to the root committed on chain (same
 *   fragment count), and whose Magu has this node as an active member. Anything else is refused
 *   (the push fails).
 * - raw fragments when their CID is one this node is assigned by a verified index document
 *   (placement of the member's slot), or from the pusher of an open batch within its count.
 *   Everything else is refused before a byte is read.
 * - either only while it fits the store's free quota (the node's capacity): a push past it is
 *   refused before a byte is read, with the free space as the reason.
 * An index document is checked against the chain (kind, status, membership) before any manifest
 * is read; at most `MAX_CONCURRENT_DOCUMENTS` are verified at once; a peer whose documents are
 * refused `REFUSALS_BEFORE_BAN` times within `REFUSAL_WINDOW_MS` is banned (`init.ban`).
 * What reaches the disk is therefore bounded by what Magu owners paid for: manifests that fold to a
 * Magu's root, within its paid `maxFragments`; made-up manifests stay in a bounded memory area.
 *
 * A verified index document is recorded in the Magu index (`recordFragments` + `setHeld`), which
 * is what the prover and a restart read; the assigned set is rebuilt from it at `load()`.
 */
import type { Address, Hex, TypedDataDomain } from "viem";
import { CID } from "multiformats/cid";
import { RAW_CODEC } from "../../data/constants.js";
import { DAG_JSON_CODEC, MANIFEST_TYPE, decodeManifest, manifestCidOf, type Manifest } from "../../data/manifest.js";
import { maguRoot } from "../../data/merkle.js";
import { fragmentsOfSlot } from "../../data/placement.js";
import { openSigner, proposalSigner, type BatchAck, type MuriContracts, type MuriPublicClient } from "../../chain/index.js";
import type { FragmentStore } from "../../store/fragment-store.js";
import { Bucket, type MetaDb } from "../../store/meta-db.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import type { PeerId } from "@libp2p/interface";
import { peerIdFromString } from "@libp2p/peer-id";
import type { FragmentSink, IncomingPush, PushPolicy } from "../../p2p/types.js";
import type { MaguIndex } from "./magu-index.js";
import { StagedManifests } from "./staged-manifests.js";

/** `type` of a Magu index document. */
export const MAGU_INDEX_TYPE = "muri/magu-index";
/** Version of the index document. */
export const MAGU_INDEX_VERSION = 1;
/** Largest DAG-JSON document (manifest or index) a node accepts by push. */
export const MAX_DOCUMENT_BYTES = 1 << 20;
/** MaguRegistry `Kind.Blob`. */
const KIND_BLOB = 0;
/** MaguRegistry `Status.Active`. */
const STATUS_ACTIVE = 2;

/** A Magu index document: which manifest a Magu's committed fragments belong to. */
export interface MaguIndexDocument {
  readonly maguId: bigint;
  readonly manifestCid: CID;
}

/** A document refused by the sink (wrong type, unknown manifest, root mismatch, not a member). */
export class MaguDocumentError extends Error {
  static readonly code = "ERR_MAGU_DOCUMENT";
  readonly code = MaguDocumentError.code;
  readonly context: { cid: string; reason: string };
  constructor(cid: string, reason: string) {
    super(`document ${cid} refused: ${reason}`);
    this.name = "MaguDocumentError";
    this.context = { cid, reason };
  }
}

/** Canonical DAG-JSON bytes and CID of an index document. */
export function encodeMaguIndexDocument(doc: MaguIndexDocument): { bytes: Buffer; cid: CID } {
  // Keys in byte order, no whitespace: the canonical DAG-JSON form.
  const text = `{"magu":${JSON.stringify(doc.maguId.toString())},"manifest":{"/":${JSON.stringify(doc.manifestCid.toString())}},"type":${JSON.stringify(MAGU_INDEX_TYPE)},"version":${MAGU_INDEX_VERSION}}`;
  const bytes = Buffer.from(text, "utf8");
  return { bytes, cid: manifestCidOf(bytes) };
}

/** Parses an index document; throws MaguDocumentError unless the bytes are exactly canonical. */
export function decodeMaguIndexDocument(bytes: Uint8Array, cid: CID): MaguIndexDocument {
  let parsed: { magu?: unknown; manifest?: { "/"?: unknown }; type?: unknown; version?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw new MaguDocumentError(cid.toString(), "not JSON");
  }
  if (parsed.type !== MAGU_INDEX_TYPE || parsed.version !== MAGU_INDEX_VERSION) throw new MaguDocumentError(cid.toString(), "not a Magu index document");
  if (typeof parsed.magu !== "string" || !/^[1-9][0-9]{0,76}$/.test(parsed.magu)) throw new MaguDocumentError(cid.toString(), "bad magu id");
  if (typeof parsed.manifest?.["/"] !== "string") throw new MaguDocumentError(cid.toString(), "bad manifest link");
  let manifestCid: CID;
  try {
    manifestCid = CID.parse(parsed.manifest["/"]);
  } catch {
    throw new MaguDocumentError(cid.toString(), "manifest link does not parse");
  }
  const doc = { maguId: BigInt(parsed.magu), manifestCid };
  if (!Buffer.from(encodeMaguIndexDocument(doc).bytes).equals(Buffer.from(bytes))) throw new MaguDocumentError(cid.toString(), "not canonical");
  return doc;
}

export interface MaguSyncInit {
  /** This node's address. */
  member: Address;
  /** Keep index documents of Magus this agent is not a member of (validators: audit targets). */
  observer?: boolean;
  /**
   * Vector Magus (roles/shared/vector-service.ts): takes `muri/vector-index` documents (returning what
   * they assign this node) and hears of every assigned fragment stored, to index it.
   */
  vectors?: {
    readonly documentType: string;
    acceptDocument(bytes: Uint8Array, cid: CID, expected?: ExpectedData): Promise<{ maguId: bigint; cids: readonly CID[]; held: readonly number[] }>;
    onFragment(maguId: bigint, cid: CID, bytes: Uint8Array): Promise<void>;
    /** A batch was not committed in time: back to the first `keep` fragments (returns the dropped documents). */
    rollBack(maguId: bigint, keep: number): Promise<CID[]>;
    /** Why held fragments `fragments` (stored) must not be acknowledged, or undefined. */
    checkFragments(maguId: bigint, fragments: readonly number[]): Promise<string | undefined>;
  };
  /**
   * Cuts a peer off (the p2p ban list): called when a peer's document pushes were refused
   * `REFUSALS_BEFORE_BAN` times within `REFUSAL_WINDOW_MS`.
   */
  ban?: (peer: string, reason: string) => void;
}

/** Document refusals of one peer, within `REFUSAL_WINDOW_MS`, before it is banned. */
export const REFUSALS_BEFORE_BAN = 20;
/** Window of the refusal count. */
export const REFUSAL_WINDOW_MS = 10 * 60_000;
/** Documents verified at once; more are refused "busy" (a verification reads the chain and the store). */
export const MAX_CONCURRENT_DOCUMENTS = 8;

/** The root and count a document must fold to: a pending proposal's, else the chain's. */
export interface ExpectedData {
  root: Hex;
  fragmentCount: number;
}

/** A batch proposed by a Magu's owner and not committed yet. */
export interface PendingBatch extends ExpectedData {
  maguId: bigint;
  batch: number;
  indexCid: CID;
  expiresAt: number;
}

/** A batch opened by a Magu's owner for one pusher, before its root is known. */
export interface OpenBatch {
  maguId: bigint;
  batch: number;
  /** The Magu's fragment count after the batch. */
  fragmentCount: number;
  /** Peer id (string) allowed to push. */
  pusher: string;
  /** Most fragments taken before the index: the batch's new fragment count. */
  budget: number;
  /** Unplaced fragments taken so far (CID strings). */
  received: Set<string>;
  expiresAt: number;
}

/** What a member signs acknowledgements with: MaguRegistry's EIP-712 domain and its key. */
export interface AckSigner {
  domain: TypedDataDomain;
  sign(ack: BatchAck): Promise<Hex>;
}

/** How long a proposal (and the data it brought) waits for its commit. */
export const PENDING_TTL_MS = 10 * 60_000;

export interface MaguSyncComponents {
  store: FragmentStore;
  index: MaguIndex;
  /** Read-only contract handles (chain reads of the Magu being indexed). */
  contracts: MuriContracts<MuriPublicClient>;
  /** Where kept documents are noted with their Magu (`Bucket.document`); memory only when unset. */
  metaDb?: MetaDb;
  logger?: Logger;
}

export interface MaguSync {
  /** Rebuilds the assigned-CID set from the Magu index (call before serving pushes). */
  load(): Promise<void>;
  /** The p2p push policy (see the module comment). */
  readonly acceptPush: PushPolicy;
  /** The p2p sink: validates documents, records verified index documents, stores the bytes. */
  readonly sink: FragmentSink;
  /** Whether this node is assigned fragment `cid`. */
  isAssigned(cid: CID): boolean;
  /** The Magu whose fragment or document `cid` is (for access); undefined when this node keeps no such CID. */
  maguOf(cid: CID): bigint | undefined;
  /** The index in its Magu of a committed fragment this node is assigned (undefined: a document, or not indexed). */
  fragmentOf(cid: CID): number | undefined;
  /** Magus with a verified index, id -> number of fragments held here. */
  held(): ReadonlyMap<bigint, number>;
  /** Answers the request protocol's `batch.propose` and `batch.ack` (undefined: not a batch op). */
  handleBatchRequest(request: unknown): Promise<unknown>;
  /** The pending proposal of `maguId`, if any. */
  pending(maguId: bigint): PendingBatch | undefined;
  /** The open batch of `maguId` (fragments taken before its index), if any. */
  opened(maguId: bigint): OpenBatch | undefined;
  /** DataCommitted seen: forgets the proposal it commits; true when this node has the batch's index. */
  committed(maguId: bigint, root: Hex, fragmentCount: number): Promise<boolean>;
  /** Drops proposals and openings past their time that were never committed, with the data they brought. */
  sweep(now?: number): Promise<number>;
  /** This node no longer answers for `maguId` (left, or settled): stop taking its fragments. */
  forget(maguId: bigint): void;
}

export function createMaguSync(init: MaguSyncInit & { signer?: AckSigner; pendingTtlMs?: number }, components: MaguSyncComponents): MaguSync {
  const log = components.logger ?? silentLogger;
  const { store, index } = components;
  const registry = components.contracts.maguRegistry;
  const me = init.member.toLowerCase();
  /** Documents being verified now (bounded by MAX_CONCURRENT_DOCUMENTS). */
  let verifying = 0;
  /** peer -> times its document pushes were refused, within REFUSAL_WINDOW_MS. */
  const refusals = new Map<string, number[]>();
  /** Manifests pushed and not yet named by a verified index (never on disk before that). */
  const staged = new StagedManifests();
  /** CID string -> Magu id. */
  const assigned = new Map<string, bigint>();
  /** CID -> fragment index in its Magu, for the assigned fragments. */
  const fragmentIndex = new Map<string, number>();
  /** CID string -> Magu id of the documents kept (manifests, index documents), also in `Bucket.document`. */
  const documents = new Map<string, bigint>();
  const documentBucket = components.metaDb?.bucket(Bucket.document);
  const noteDocuments = async (maguId: bigint, cids: readonly CID[]): Promise<void> => {
    for (const cid of cids) {
      if (documents.get(cid.toString()) === maguId) continue;
      documents.set(cid.toString(), maguId);
      await documentBucket?.put(cid.bytes, Buffer.from(maguId.toString(16).padStart(64, "0"), "hex"));
    }
  };
  const heldCount = new Map<bigint, number>();
  const proposals = new Map<bigint, PendingBatch>();
  const opens = new Map<bigint, OpenBatch>();
  /** Data recorded beyond the chain before a restart (its proposal was in memory): dropped when due. */
  const restored = new Map<bigint, { maguId: bigint; batch: number; fragmentCount: number; expiresAt: number }>();
  const ttl = init.pendingTtlMs ?? PENDING_TTL_MS;

  /** An open batch `peer` may still push an unplaced fragment into. */
  const openFor = (peer: string): OpenBatch | undefined => {
    for (const o of opens.values()) if (o.pusher === peer && o.received.size < o.budget) return o;
    return undefined;
  };

  /** Ends an opening: deletes the unplaced fragments no verified index assigned here. */
  const closeOpen = async (o: OpenBatch, why: string): Promise<number> => {
    if (opens.get(o.maguId) === o) opens.delete(o.maguId);
    let deleted = 0;
    for (const cid of o.received) {
      if (assigned.has(cid)) continue;
      if (await store.delete(CID.parse(cid)).catch(() => false)) deleted++;
    }
    if (deleted > 0) log.info("unplaced fragments dropped", { magu: o.maguId.toString(), batch: o.batch, fragments: deleted, why });
    return deleted;
  };

  /** The data a document of `maguId` with CID `docCid` must fold to, or undefined: the chain's. */
  const expectedFor = (maguId: bigint, docCid: CID): ExpectedData | undefined => {
    const p = proposals.get(maguId);
    return p !== undefined && p.indexCid.equals(docCid) ? p : undefined;
  };

  const assign = (maguId: bigint, cids: readonly CID[], held: readonly number[]): void => {
    for (const f of held) {
      assigned.set(cids[f]!.toString(), maguId);
      fragmentIndex.set(cids[f]!.toString(), f);
    }
    heldCount.set(maguId, held.length);
  };

  /** Verifies an index document (one manifest, or several appended files) and records it. */
  const verifyIndex = async (list: MaguIndexList, docCid: CID): Promise<void> => {
    const reject = (reason: string): never => {
      throw new MaguDocumentError(docCid.toString(), reason);
    };
    // The chain first (one read): a document for a Magu this node is not in costs no manifest read.
    const info = await registry.read.maguInfo([list.maguId]);
    if (info.params.kind !== KIND_BLOB) reject("not a blob Magu");
    if (info.status !== STATUS_ACTIVE) reject(`Magu status ${info.status}, not active`);
    const slot = info.members.findIndex((a) => a.toLowerCase() === me);
    if (slot < 0 && init.observer !== true) reject("this node is not a member");
    const manifests: Manifest[] = [];
    const toWrite: Array<{ cid: CID; bytes: Uint8Array }> = [];
    for (const manifestCid of list.manifestCids) {
      let bytes = staged.get(manifestCid);
      if (bytes !== undefined) toWrite.push({ cid: manifestCid, bytes });
      else if (await store.has(manifestCid)) bytes = await store.get(manifestCid);
      else reject(`manifest ${manifestCid} not here: push it first`);
      try {
        manifests.push(decodeManifest(bytes!, manifestCid));
      } catch (err) {
        return reject(`manifest ${manifestCid} unreadable (${(err as Error).message})`);
      }
    }
    const k = info.params.dataShards;
    const m = info.params.parityShards;
    manifests.forEach((manifest, i) => {
      const e = manifest.erasure;
      if (e.k !== k || e.m !== m) reject(`manifest ${list.manifestCids[i]} k=${e.k} m=${e.m}, Magu k=${k} m=${m}`);
    });
    const roots = manifests.flatMap((manifest) => manifest.roots.map((r) => Buffer.from(r, "hex")));
    const cids = manifests.flatMap((manifest) => manifest.shards);
    const root = `0x${maguRoot(roots).toString("hex")}` as Hex;
    const expected = expectedFor(list.maguId, docCid);
    const want = expected ?? { root: info.root, fragmentCount: info.fragmentCount };
    if (want.fragmentCount !== roots.length || root.toLowerCase() !== want.root.toLowerCase()) {
      const source = expected !== undefined ? "the pending proposal has" : "chain has";
      reject(`manifests fold to ${root} over ${roots.length} fragments; ${source} ${want.root} over ${want.fragmentCount}`);
    }
    const held = slot < 0 ? [] : fragmentsOfSlot(list.maguId, roots.length, info.params.members, slot, { k, m });
    // Verified: its manifests go to disk before the record that needs them.
    for (const w of toWrite) {
      await store.put(w.cid, w.bytes);
      staged.drop(w.cid.toString());
    }
    await noteDocuments(list.maguId, [...list.manifestCids, docCid]);
    await index.recordFragments(list.maguId, want.root, roots, cids);
    await index.setHeld(list.maguId, held);
    assign(list.maguId, cids, held);
    const o = opens.get(list.maguId);
    if (o !== undefined && o.fragmentCount === roots.length) await closeOpen(o, "not placed here by the batch's index");
    log.info("magu index recorded", { magu: list.maguId.toString(), slot, files: manifests.length, fragments: roots.length, held: held.length });
  };

  const acceptPush: PushPolicy = (push: IncomingPush) => {
    let wanted = false;
    if (push.cid.code === DAG_JSON_CODEC) wanted = push.length <= MAX_DOCUMENT_BYTES;
    else if (push.cid.code === RAW_CODEC) wanted = assigned.has(push.cid.toString()) || openFor(push.peer.toString()) !== undefined;
    if (!wanted) return false;
    // Past the node's capacity (its store quota) a push is refused before its payload is read.
    const { freeBytes, quotaBytes } = store.stats();
    if (push.length > freeBytes) return `store full: the push needs ${push.length} bytes, ${freeBytes} of this node's ${quotaBytes}-byte capacity free`;
    return true;
  };

  const sink: FragmentSink = {
    async put(cid: CID, bytes: Uint8Array, from?: PeerId) {
      if (cid.code === RAW_CODEC) {
        const key = cid.toString();
        const maguId = assigned.get(key);
        if (maguId === undefined) {
          // Before the batch's index: an unplaced fragment from the open batch's pusher.
          const o = from !== undefined ? openFor(from.toString()) : undefined;
          if (o === undefined) throw new MaguDocumentError(key, "fragment not assigned to this node");
          if (o.received.has(key)) return;
          o.received.add(key); // reserved before the write, so concurrent pushes stay within the count
          try {
            await store.put(cid, bytes, { verify: false }); // a sink takes verified bytes (p2p/types.ts)
          } catch (err) {
            o.received.delete(key);
            throw err;
          }
          // The index arrived during the write and did not place it here: it was not there to delete.
          if (opens.get(o.maguId) !== o && !assigned.has(key)) await store.delete(cid).catch(() => false);
          return;
        }
        await store.put(cid, bytes, { verify: false });
        await init.vectors?.onFragment(maguId, cid, bytes);
        return;
      }
      if (cid.code !== DAG_JSON_CODEC) throw new MaguDocumentError(cid.toString(), "unsupported codec");
      if (verifying >= MAX_CONCURRENT_DOCUMENTS) throw new MaguDocumentError(cid.toString(), "busy: too many documents being verified, retry later");
      verifying++;
      try {
        await putDocument(cid, bytes, from?.toString() ?? "local");
      } catch (err) {
        if (err instanceof MaguDocumentError && from !== undefined) refusedBy(from.toString(), err.message);
        throw err;
      } finally {
        verifying--;
      }
    },
  };

  /** Verifies and keeps one DAG-JSON document (manifest, Magu index, vector index). */
  const putDocument = async (cid: CID, bytes: Uint8Array, from: string): Promise<void> => {
    let type: unknown;
    try {
      type = (JSON.parse(Buffer.from(bytes).toString("utf8")) as { type?: unknown }).type;
    } catch {
      throw new MaguDocumentError(cid.toString(), "not JSON");
    }
    if (type === MANIFEST_TYPE) {
      decodeManifest(bytes, cid);
      // Kept on disk only once a verified index names it (a made-up one never gets there).
      if (!(await store.has(cid))) staged.add(cid, bytes, from);
    } else if (type === MAGU_INDEX_TYPE) {
      await verifyIndex(decodeMaguIndexList(bytes, cid), cid);
      await store.put(cid, bytes);
    } else if (init.vectors !== undefined && type === init.vectors.documentType) {
      const accepted = await init.vectors.acceptDocument(bytes, cid, expectedFor(readMaguId(bytes), cid));
      await noteDocuments(accepted.maguId, [cid]);
      assign(accepted.maguId, accepted.cids, accepted.held);
    } else {
      throw new MaguDocumentError(cid.toString(), `unknown document type ${JSON.stringify(type)}`);
    }
  };

  /** Counts a peer's refused documents; bans it once they repeat (`REFUSALS_BEFORE_BAN`). */
  const refusedBy = (peer: string, reason: string): void => {
    const now = Date.now();
    const recent = (refusals.get(peer) ?? []).filter((t) => now - t < REFUSAL_WINDOW_MS);
    recent.push(now);
    refusals.delete(peer);
    if (recent.length < REFUSALS_BEFORE_BAN) {
      refusals.set(peer, recent);
      // Bounded: forget the peers that were refused longest ago.
      if (refusals.size > 10_000) refusals.delete(refusals.keys().next().value!);
      return;
    }
    log.warn("peer banned: its document pushes were refused again and again", { peer, refusals: recent.length, last: reason });
    init.ban?.(peer, `${recent.length} refused documents in ${REFUSAL_WINDOW_MS / 60_000} min (last: ${reason})`);
  };

  const handleBatchRequest = async (request: unknown): Promise<unknown> => {
    const r = request as { op?: unknown };
    if (r?.op === "batch.open") return openBatch(parseOpen(request));
    if (r?.op === "batch.propose") return propose(parseProposal(request));
    if (r?.op === "batch.ack") return acknowledge(parseAckRequest(request));
    return undefined;
  };

  const openBatch = async (req: OpenRequest): Promise<unknown> => {
    const { maguId, batch, fragmentCount, pusher, signature } = req;
    const info = await registry.read.maguInfo([maguId]);
    const refuse = (why: string): never => {
      throw new BatchRequestError(`opening of batch ${batch} of Magu ${maguId} refused: ${why}`);
    };
    if (info.status !== STATUS_ACTIVE) refuse(`Magu status ${info.status}, not active`);
    if (info.params.kind !== KIND_BLOB) refuse("vector batches are proposed with their root (batch.propose), not opened");
    if (!info.members.some((a) => a.toLowerCase() === me)) refuse("this node is not a member");
    if (batch !== info.batches) refuse(`the next batch is ${info.batches}`);
    if (fragmentCount <= info.fragmentCount || fragmentCount > info.params.maxFragments) {
      refuse(`fragment count ${fragmentCount} must exceed the committed ${info.fragmentCount} and stay within the paid ${info.params.maxFragments}`);
    }
    const message = { magu: maguId, batch, fragmentCount, pusher: `0x${Buffer.from(pusher.toMultihash().bytes).toString("hex")}` as Hex };
    const signer = await openSigner(init.signer?.domain ?? refuse("this agent does not acknowledge batches"), message, signature).catch((err: Error) =>
      refuse(`unreadable signature (${err.message})`),
    );
    if (signer.toLowerCase() !== info.owner.toLowerCase()) refuse(`signed by ${signer}, the owner is ${info.owner}`);
    const key = pusher.toString();
    const previous = opens.get(maguId);
    // The same opening again (a retry, a resumed put) keeps what it brought; another one replaces it.
    if (previous !== undefined && (previous.batch !== batch || previous.pusher !== key || previous.fragmentCount !== fragmentCount)) {
      await closeOpen(previous, "replaced by another opening");
    }
    const received = previous !== undefined && opens.get(maguId) === previous ? previous.received : new Set<string>();
    opens.set(maguId, { maguId, batch, fragmentCount, pusher: key, budget: fragmentCount - info.fragmentCount, received, expiresAt: Date.now() + ttl });
    log.info("batch opened", { magu: maguId.toString(), batch, fragmentCount, pusher: key });
    return { ok: true };
  };

  const propose = async (req: ProposeRequest): Promise<unknown> => {
    const { maguId, batch, root, fragmentCount, indexCid, signature } = req;
    const info = await registry.read.maguInfo([maguId]);
    const refuse = (why: string): never => {
      throw new MaguDocumentError(indexCid.toString(), `proposal of batch ${batch} of Magu ${maguId} refused: ${why}`);
    };
    if (info.status !== STATUS_ACTIVE) refuse(`Magu status ${info.status}, not active`);
    if (!info.members.some((a) => a.toLowerCase() === me)) refuse("this node is not a member");
    if (batch !== info.batches) refuse(`the next batch is ${info.batches}`);
    if (fragmentCount <= info.fragmentCount || fragmentCount > info.params.maxFragments) {
      refuse(`fragment count ${fragmentCount} must exceed the committed ${info.fragmentCount} and stay within the paid ${info.params.maxFragments}`);
    }
    if (init.signer === undefined) refuse("this agent does not acknowledge batches");
    const signer = await proposalSigner(init.signer!.domain, { magu: maguId, batch, root, fragmentCount, indexCid: `0x${Buffer.from(indexCid.bytes).toString("hex")}` }, signature).catch(
      (err: Error) => refuse(`unreadable signature (${err.message})`),
    );
    if (signer.toLowerCase() !== info.owner.toLowerCase()) refuse(`signed by ${signer}, the owner is ${info.owner}`);
    proposals.set(maguId, { maguId, batch, root, fragmentCount, indexCid, expiresAt: Date.now() + ttl });
    log.info("batch proposed", { magu: maguId.toString(), batch, fragmentCount, index: indexCid.toString() });
    return { ok: true };
  };

  const acknowledge = async (req: { maguId: bigint; batch: number }): Promise<unknown> => {
    const p = proposals.get(req.maguId);
    const where = `batch ${req.batch} of Magu ${req.maguId}`;
    if (p === undefined || p.batch !== req.batch) return { ok: false, error: `no proposal of ${where} here: propose it first` };
    const rec = await index.get(req.maguId);
    if (rec === undefined || rec.root.toLowerCase() !== p.root.toLowerCase() || rec.fragmentCount !== p.fragmentCount) {
      return { ok: false, error: `the index document of ${where} (${p.indexCid}) has not arrived: push it first` };
    }
    const missing: number[] = [];
    for (const f of rec.held) if (!(await store.has(rec.cids[f]!))) missing.push(f);
    if (missing.length > 0) {
      return { ok: false, error: `${missing.length} of the ${rec.held.length} fragments assigned here are missing (first: ${missing.slice(0, 8).join(", ")})`, missing };
    }
    // Vector fragments: nothing the document does not declare (a tombstone record hidden in a
    // fragment of vectors would let the owner convict members that never heard of the deletion).
    if (init.vectors !== undefined) {
      const committed = (await registry.read.maguInfo([req.maguId])).fragmentCount;
      const refused = await init.vectors.checkFragments(req.maguId, rec.held.filter((f) => f >= committed));
      if (refused !== undefined) {
        log.warn("batch refused", { magu: p.maguId.toString(), batch: p.batch, reason: refused });
        return { ok: false, error: `${where} refused: ${refused}` };
      }
    }
    const signature = await init.signer!.sign({ magu: p.maguId, batch: p.batch, root: p.root, fragmentCount: p.fragmentCount, member: init.member });
    log.info("batch acknowledged", { magu: p.maguId.toString(), batch: p.batch, fragments: p.fragmentCount, held: rec.held.length });
    return { ok: true, signature };
  };

  /** Rolls `maguId` back to what is committed on chain, deleting the fragments only a dropped proposal brought. */
  const rollBack = async (p: Pick<PendingBatch, "maguId" | "batch">): Promise<void> => {
    const info = await registry.read.maguInfo([p.maguId]);
    const rec = await index.get(p.maguId);
    if (rec === undefined || rec.root.toLowerCase() === info.root.toLowerCase()) return;
    const keep = info.fragmentCount;
    // A vector batch leaves the search index (and the document goes back to the committed prefix)
    // before its fragments leave the store.
    const documents = info.params.kind !== KIND_BLOB ? ((await init.vectors?.rollBack(p.maguId, keep)) ?? []) : [];
    const dropped = rec.cids.slice(keep);
    if (keep === 0) {
      await index.recordFragments(p.maguId, info.root, [], []).catch(() => undefined);
    } else {
      await index.recordFragments(p.maguId, info.root, rec.fragmentRoots.slice(0, keep), rec.cids.slice(0, keep));
    }
    const held = rec.held.filter((f) => f < keep);
    await index.setHeld(p.maguId, held);
    const kept = new Set(rec.cids.slice(0, keep).map(String));
    for (const cid of dropped) {
      if (kept.has(cid.toString())) continue;
      assigned.delete(cid.toString());
      fragmentIndex.delete(cid.toString());
      await store.delete(cid).catch(() => false);
    }
    for (const cid of documents) await store.delete(cid).catch(() => false);
    heldCount.set(p.maguId, held.length);
    log.warn("batch not committed in time: its data was dropped", { magu: p.maguId.toString(), batch: p.batch, fragments: dropped.length });
  };

  return {
    handleBatchRequest,
    forget(maguId) {
      for (const [cid, id] of assigned) {
        if (id !== maguId) continue;
        assigned.delete(cid);
        fragmentIndex.delete(cid);
      }
      heldCount.delete(maguId);
      proposals.delete(maguId);
      restored.delete(maguId);
    },
    pending: (maguId) => proposals.get(maguId),
    opened: (maguId) => opens.get(maguId),
    async committed(maguId, root, fragmentCount) {
      const p = proposals.get(maguId);
      if (p !== undefined && p.fragmentCount <= fragmentCount) proposals.delete(maguId);
      const o = opens.get(maguId);
      if (o !== undefined && o.fragmentCount <= fragmentCount) await closeOpen(o, "batch committed without placing them here");
      const r = restored.get(maguId);
      if (r !== undefined && r.fragmentCount <= fragmentCount) restored.delete(maguId);
      const rec = await index.get(maguId);
      if (rec === undefined) return false;
      // Batches only append: holding a later batch's index covers this one.
      return rec.fragmentCount > fragmentCount || (rec.fragmentCount === fragmentCount && rec.root.toLowerCase() === root.toLowerCase());
    },
    async sweep(now = Date.now()) {
      let dropped = 0;
      for (const o of [...opens.values()]) {
        if (o.expiresAt > now) continue;
        await closeOpen(o, "the batch's index did not arrive in time");
        dropped++;
      }
      for (const r of [...restored.values()]) {
        if (r.expiresAt > now || proposals.has(r.maguId)) continue;
        restored.delete(r.maguId);
        try {
          await rollBack(r);
          dropped++;
        } catch (err) {
          log.warn("could not drop uncommitted data recorded before a restart", { magu: r.maguId.toString(), error: (err as Error).message });
        }
      }
      for (const p of [...proposals.values()]) {
        if (p.expiresAt > now) continue;
        proposals.delete(p.maguId);
        try {
          await rollBack(p);
          dropped++;
        } catch (err) {
          log.warn("could not drop an expired proposal's data", { magu: p.maguId.toString(), error: (err as Error).message });
        }
      }
      return dropped;
    },
    async load() {
      assigned.clear();
      fragmentIndex.clear();
      heldCount.clear();
      restored.clear();
      documents.clear();
      if (documentBucket !== undefined) {
        for await (const [key, value] of documentBucket.entries()) documents.set(CID.decode(key).toString(), BigInt(`0x${Buffer.from(value).toString("hex")}`));
      }
      for (const id of await index.maguIds()) {
        const rec = await index.get(id);
        if (rec === undefined) continue;
        assign(id, rec.cids, rec.held);
        // A batch recorded under a proposal that a restart forgot: if it is still not committed when
        // its time (from when it was recorded) is up, the next sweep drops it.
        const info = await registry.read.maguInfo([id]);
        if (rec.fragmentCount > info.fragmentCount) {
          restored.set(id, { maguId: id, batch: info.batches, fragmentCount: rec.fragmentCount, expiresAt: rec.updatedAtMs + ttl });
        }
      }
      log.info("magu index loaded", { magus: heldCount.size, assigned: assigned.size, uncommitted: restored.size });
    },
    acceptPush,
    sink,
    isAssigned: (cid) => assigned.has(cid.toString()),
    maguOf(cid) {
      const key = cid.toString();
      const magu = assigned.get(key) ?? documents.get(key);
      if (magu !== undefined) return magu;
      for (const o of opens.values()) if (o.received.has(key)) return o.maguId;
      return undefined;
    },
    fragmentOf: (cid) => fragmentIndex.get(cid.toString()),
    held: () => heldCount,
  };
}

// ------------------------------------------------------------ batch requests

interface ProposeRequest {
  maguId: bigint;
  batch: number;
  root: Hex;
  fragmentCount: number;
  indexCid: CID;
  signature: Hex;
}

/** A refused batch request: names the field and what was wrong. */
export class BatchRequestError extends Error {
  override readonly name = "BatchRequestError";
  readonly code = "ERR_BATCH_REQUEST";
}

function field<T>(request: unknown, name: string, check: (v: unknown) => v is T, what: string): T {
  const v = (request as Record<string, unknown>)[name];
  if (!check(v)) throw new BatchRequestError(`batch request: "${name}" must be ${what}, got ${JSON.stringify(v)?.slice(0, 80)}`);
  return v;
}
const isDecimal = (v: unknown): v is string => typeof v === "string" && /^[0-9]{1,78}$/.test(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32;
const isBytes32 = (v: unknown): v is Hex => typeof v === "string" && /^0x[0-9a-fA-F]{64}$/.test(v);
const isSignature = (v: unknown): v is Hex => typeof v === "string" && /^0x[0-9a-fA-F]{130}$/.test(v);
const isString = (v: unknown): v is string => typeof v === "string" && v.length <= 200;

function parseProposal(request: unknown): ProposeRequest {
  const cidText = field(request, "indexCid", isString, "a CID string");
  let indexCid: CID;
  try {
    indexCid = CID.parse(cidText);
  } catch {
    throw new BatchRequestError(`batch request: "indexCid" ${JSON.stringify(cidText)} is not a CID`);
  }
  return {
    maguId: BigInt(field(request, "magu", isDecimal, "a decimal Magu id")),
    batch: field(request, "batch", isCount, "a batch number"),
    root: field(request, "root", isBytes32, "a 0x-prefixed 32-byte hex root"),
    fragmentCount: field(request, "fragmentCount", isCount, "a fragment count"),
    indexCid,
    signature: field(request, "signature", isSignature, "a 65-byte 0x-prefixed hex signature"),
  };
}

interface OpenRequest {
  maguId: bigint;
  batch: number;
  fragmentCount: number;
  pusher: PeerId;
  signature: Hex;
}

function parseOpen(request: unknown): OpenRequest {
  const text = field(request, "pusher", isString, "a peer id string");
  let pusher: PeerId;
  try {
    pusher = peerIdFromString(text);
  } catch {
    throw new BatchRequestError(`batch request: "pusher" ${JSON.stringify(text)} is not a peer id`);
  }
  return {
    maguId: BigInt(field(request, "magu", isDecimal, "a decimal Magu id")),
    batch: field(request, "batch", isCount, "a batch number"),
    fragmentCount: field(request, "fragmentCount", isCount, "a fragment count"),
    pusher,
    signature: field(request, "signature", isSignature, "a 65-byte 0x-prefixed hex signature"),
  };
}

function parseAckRequest(request: unknown): { maguId: bigint; batch: number } {
  return { maguId: BigInt(field(request, "magu", isDecimal, "a decimal Magu id")), batch: field(request, "batch", isCount, "a batch number") };
}

/** The Magu id a vector index document names (0 when unreadable: its decoder then refuses it). */
function readMaguId(bytes: Uint8Array): bigint {
  try {
    const magu = (JSON.parse(Buffer.from(bytes).toString("utf8")) as { magu?: unknown }).magu;
    return typeof magu === "string" && /^[0-9]{1,78}$/.test(magu) ? BigInt(magu) : 0n;
  } catch {
    return 0n;
  }
}

// ------------------------------------------------------------ several files in one Magu

/** Version of the index document that lists the manifests of several files appended to one Magu. */
export const MAGU_INDEX_LIST_VERSION = 2;
/** Most manifests one index document lists (keeps it under MAX_DOCUMENT_BYTES). */
export const MAX_INDEX_MANIFESTS = 8192;

/**
 * Every file of a blob Magu, in commit order: the Magu's fragment list is the first manifest's
 * shards, then the second's, and so on (each a whole number of stripes, so stripes never straddle
 * two files). One file is written as the version-1 document, several as
 * `{"magu":"<id>","manifests":[{"/":"<cid>"},...],"type":"muri/magu-index","version":2}`.
 */
export interface MaguIndexList {
  readonly maguId: bigint;
  readonly manifestCids: readonly CID[];
}

/** Canonical bytes and CID of the index document of `list` (version 1 for one file, 2 for several). */
export function encodeMaguIndexList(list: MaguIndexList): { bytes: Buffer; cid: CID } {
  const n = list.manifestCids.length;
  if (n === 0) throw new RangeError("an index document lists at least one manifest");
  if (n > MAX_INDEX_MANIFESTS) throw new RangeError(`an index document lists at most ${MAX_INDEX_MANIFESTS} manifests, got ${n}`);
  if (n === 1) return encodeMaguIndexDocument({ maguId: list.maguId, manifestCid: list.manifestCids[0]! });
  const links = list.manifestCids.map((c) => `{"/":${JSON.stringify(c.toString())}}`).join(",");
  const text = `{"magu":${JSON.stringify(list.maguId.toString())},"manifests":[${links}],"type":${JSON.stringify(MAGU_INDEX_TYPE)},"version":${MAGU_INDEX_LIST_VERSION}}`;
  const bytes = Buffer.from(text, "utf8");
  return { bytes, cid: manifestCidOf(bytes) };
}

/** Parses an index document of either version; throws MaguDocumentError unless it is canonical. */
export function decodeMaguIndexList(bytes: Uint8Array, cid: CID): MaguIndexList {
  let parsed: { magu?: unknown; manifests?: unknown; type?: unknown; version?: unknown };
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString("utf8"));
  } catch {
    throw new MaguDocumentError(cid.toString(), "not JSON");
  }
  if (parsed.type === MAGU_INDEX_TYPE && parsed.version === MAGU_INDEX_VERSION) {
    const doc = decodeMaguIndexDocument(bytes, cid);
    return { maguId: doc.maguId, manifestCids: [doc.manifestCid] };
  }
  if (parsed.type !== MAGU_INDEX_TYPE || parsed.version !== MAGU_INDEX_LIST_VERSION) throw new MaguDocumentError(cid.toString(), "not a Magu index document");
  if (typeof parsed.magu !== "string" || !/^[1-9][0-9]{0,76}$/.test(parsed.magu)) throw new MaguDocumentError(cid.toString(), "bad magu id");
  const links = parsed.manifests;
  if (!Array.isArray(links) || links.length < 2 || links.length > MAX_INDEX_MANIFESTS) {
    throw new MaguDocumentError(cid.toString(), `manifests must list 2 to ${MAX_INDEX_MANIFESTS} links (one file is a version-1 document)`);
  }
  const manifestCids = links.map((link: unknown, i) => {
    const text = (link as { "/"?: unknown } | null)?.["/"];
    if (typeof text !== "string") throw new MaguDocumentError(cid.toString(), `manifests[${i}] is not a link`);
    try {
      return CID.parse(text);
    } catch {
      throw new MaguDocumentError(cid.toString(), `manifests[${i}] does not parse`);
    }
  });
  const list = { maguId: BigInt(parsed.magu), manifestCids };
  if (!encodeMaguIndexList(list).bytes.equals(Buffer.from(bytes))) throw new MaguDocumentError(cid.toString(), "not canonical");
  return list;
}

/** One file of a Magu: its manifest and the Magu fragment index of its first shard. */
export interface MaguFile {
  readonly manifestCid: CID;
  readonly manifest: Manifest;
  readonly offset: number;
}

/** The files of `manifests` laid one after the other (offsets = running shard counts). */
export function layoutMaguFiles(manifests: ReadonlyArray<{ manifestCid: CID; manifest: Manifest }>): MaguFile[] {
  let offset = 0;
  return manifests.map(({ manifestCid, manifest }) => {
    const file = { manifestCid, manifest, offset };
    offset += manifest.shards.length;
    return file;
  });
}

/** The file holding Magu fragment `f`, or undefined past the last one. */
export function fileOfFragment(files: readonly MaguFile[], f: number): MaguFile | undefined {
  return files.find((file) => f >= file.offset && f < file.offset + file.manifest.shards.length);
}
