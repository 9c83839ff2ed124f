/**
 * Vector Magus on a node: accepting a vector index document (data/vector-manifest.ts), indexing
 * the fragments it holds (index/: HNSW plus exact re-ranking), and answering `/muri/search/3.0.0`.
 *
 * A document is accepted when it decodes, the Magu on chain is an Active vector Magu with the
 * same dimension and metric, its fragment roots fold to the committed root over the committed
 * count, and this node is a member (or `observer` is set: validators keep documents to audit and
 * check answers without holding anything). It is then recorded in the Magu index (what the prover
 * and repair read) with the fragments placement gives this node's slot (`holdersVector`, r
 * replicas), and its CID is kept in `Bucket.vector` so a restart reopens everything. A later
 * document must keep the quantization scale (`scaleExp`) of the one held: the scale is the Magu's,
 * fixed by its first batch. Nothing here uses the scale otherwise: distances are over int16 records.
 *
 * Held fragments are added to the Magu's vector index as they arrive (`onFragment`) and, at start,
 * any held fragment already on disk but missing from the index (a crash between the two, or a
 * rebuilt index) is added back. Index files live in `<dir>/vectors/<magu id>/`.
 *
 * Deleted ids (the tombstone fragments the document lists, data/vector-manifest.ts) are never
 * returned: a search asks the index for k more per deleted id and drops them, off-chain and for
 * on-chain tasks alike. A batch whose held fragments hide a tombstone record in a fragment the
 * document does not list as one is not acknowledged (`checkFragments`): members learn deletions
 * from the document only, so an unlisted tombstone could convict them of a deletion they never saw.
 *
 * Requests (JSON, see SearchRequest), answers binary (search-wire.ts): `search` answers this
 * node's top-k for each of its queries (one, or a batch of up to MAX_BATCH_QUERIES) over the
 * fragments it has indexed, hits as 32-byte result entry words, with the fragments it searched;
 * `prove` answers, for hits this node returned to the same peer within PROVEN_HIT_TTL_MS, the
 * leaves under each record and their paths to the fragment root (data/hit-proof.ts): the
 * fragment's tree is built from the whole fragment once (read unhashed: the tree must give the
 * committed root) and kept for the last PROOF_TREES fragments proven; each proof then reads only
 * the record's proof window from the store and checks its leaves against the tree. A record whose
 * fragment's bytes on disk no longer give the committed root (or its kept tree's leaves) is
 * answered with the reason (logged), so the asker turns to another holder. Proofs are asked in a
 * second round only for the hits that make the asker's merged top-k, and only of hits returned: a
 * peer with search rights cannot read records it never found (nor skip a paid search). `manifest` returns the current document
 * (base64, JSON), so a client appending a batch or a validator learns the fragment list.
 */
import { join } from "node:path";
import type { Hex } from "viem";
import { CID } from "multiformats/cid";
import type { MuriContracts, MuriPublicClient } from "../../chain/index.js";
import { buildHitProof, proofWindow, type HitProof } from "../../data/hit-proof.js";
import { buildFragmentTree, HASH_SIZE, hashLeaf, maguRoot, type FragmentTree } from "../../data/merkle.js";
import { LEAF_SIZE } from "../../data/constants.js";
import { fragmentsOfSlot } from "../../data/placement.js";
import { METRIC_BY_CODE, VECTOR_MANIFEST_TYPE, decodeVectorManifest, deletedIds, encodeVectorManifest, manifestScaleExp, type VectorManifest } from "../../data/vector-manifest.js";
import { decodeVector, encodeVector, firstTombstone, vectorSize, type VectorMetric, type VectorValues } from "../../data/vectors.js";
import { openVectorIndex, type IndexWorker, type SearchHit, type VectorIndex, type VectorIndexOptions, WorkerVectorIndex } from "../../index/index.js";
import type { FragmentStore } from "../../store/fragment-store.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import { Bucket, type MetaDb } from "../../store/meta-db.js";
import type { MaguIndex } from "./magu-index.js";
import type { SearchBudget } from "./search-budget.js";
import { MaguDocumentError, type ExpectedData } from "./magu-sync.js";
import { encodeProveAnswer, encodeSearchAnswer, type InlineProof, type ProveItem } from "./search-wire.js";

/** MaguRegistry `Kind.Vector`. */
const KIND_VECTOR = 1;
/** MaguRegistry `Status.Active`. */
const STATUS_ACTIVE = 2;
/** Largest k a search request may ask for. */
export const MAX_SEARCH_K = 1_000;
/** Largest ef a search request may ask for. */
export const MAX_SEARCH_EF = 100_000;
/** How long index changes wait before they are saved, at least. */
const SAVE_DELAY_MS = 2_000;
/**
 * A save rewrites the whole graph and sidecar (hundreds of MiB at 1M vectors) and holds the
 * Magu's queue meanwhile, so the next one waits this many times the last one's duration: saving
 * costs at most ~1/SAVE_SPACING of an ingest's time however large the index grows. What a crash
 * loses is only indexing work: at start the records held but not saved are added back from the
 * fragments on disk (`catchUp`).
 */
const SAVE_SPACING = 10;
/**
 * Fragment trees kept for proving hits (the bytes are not kept: a proof reads its window): at most
 * 1,024 x ~16 KiB for the client's 256 KiB vector fragments, 1,024 x ~64 KiB at the largest
 * fragment size.
 */
const PROOF_TREES = 1024;

/** Most queries one search request may carry. */
export const MAX_BATCH_QUERIES = 256;
/** Most hits one prove request may name (at most ~8 KiB of proof each: 4 MiB an answer). */
export const MAX_PROVE_HITS = 512;
/** How long a hit returned to a peer may be proven to it. */
export const PROVEN_HIT_TTL_MS = 60_000;
/** Hits remembered for proving, over all peers (the oldest peer's are forgotten first). */
const RETURNED_HITS_MAX = 1 << 20;
/** Positions per fragment in a returned-hit key (a record is at least 9 bytes: < 2^17 in 1 MiB). */
const POSITIONS = 1 << 17;

/**
 * A request on `/muri/search/3.0.0`. `search`: `query` (one) or `queries` (a batch), each the hex
 * of `encodeQuery`; answered by a binary search answer (search-wire.ts). `prove`: `hits` as
 * `[fragment, position]` pairs this node returned to the asker; answered by a binary prove answer.
 * A search's `prove` (0 to k) asks the proofs of each query's best `prove` hits inline, saving the
 * second request when they are the hits the asker's merge keeps.
 */
export type SearchRequest =
  | { op: "search"; magu: string; query?: Hex; queries?: Hex[]; k: number; ef?: number; exact?: boolean; prove?: number }
  | { op: "prove"; magu: string; hits: Array<[number, number]> }
  | { op: "manifest"; magu: string };

export interface ManifestAnswer {
  ok: true;
  cid: string;
  /** The document bytes, base64. */
  doc: string;
}

/** The queries of a search request: `query`, or the `queries` of a batch (1 to MAX_BATCH_QUERIES). */
export function requestQueries(request: { query?: unknown; queries?: unknown }): unknown[] {
  if (request.queries === undefined) return [request.query];
  if (request.query !== undefined) throw new Error("give query or queries, not both");
  if (!Array.isArray(request.queries) || request.queries.length < 1 || request.queries.length > MAX_BATCH_QUERIES) {
    throw new Error(`queries must be an array of 1 to ${MAX_BATCH_QUERIES} queries`);
  }
  return request.queries;
}

/**
 * Decodes a query for a Magu of dimension `dim` and `metric` (default: an int16 metric): `0x` +
 * 4·dim hex digits (dim int16 big-endian), or for `hamming` 2·ceil(dim / 8) hex digits of packed
 * bits, whose padding bits are cleared (the contract ignores them too).
 */
export function decodeQuery(hex: unknown, dim: number, metric: VectorMetric = "l2"): VectorValues {
  const hamming = metric === "hamming";
  if (typeof hex !== "string" || !(hamming ? /^0x([0-9a-fA-F]{2})*$/ : /^0x([0-9a-fA-F]{4})*$/).test(hex)) {
    throw new Error(`query must be 0x-prefixed hex of ${hamming ? "packed bits" : "int16 big-endian components"}`);
  }
  const bytes = Buffer.from(hex.slice(2), "hex");
  if (!hamming && bytes.length !== 2 * dim) throw new Error(`query has ${bytes.length / 2} components, the Magu's dimension is ${dim}`);
  if (hamming && bytes.length !== Math.ceil(dim / 8)) throw new Error(`query has ${bytes.length} bytes, the Magu's ${dim} bits pack into ${Math.ceil(dim / 8)}`);
  return decodeVector(bytes, dim, metric);
}

/** Encodes a query (int16 components, or packed bits) as the hex of a request and of SearchMarket.submit. */
export function encodeQuery(values: VectorValues): Hex {
  return `0x${encodeVector(values).toString("hex")}`;
}

export interface VectorServiceInit {
  /** This agent's address. */
  member: `0x${string}`;
  /** Agent directory (indexes go to `<dir>/vectors/`). */
  dir: string;
  /** Keep documents without being a member (validators). */
  observer?: boolean;
  /** Default HNSW search effort (the index's default when unset). */
  efSearch?: number;
  /** Tests only: see {@link SearchFault}. */
  fault?: SearchFault;
}

/**
 * Test-only misbehaviour of a node: `false-distance` answers searches (off-chain, and on-chain
 * tasks) with the best hit's distance lowered by one; `ignore-deletions` answers as if no vector
 * had been deleted (it returns tombstoned ids).
 */
export type SearchFault = "false-distance" | "ignore-deletions";

/** The faults `MURI_TEST_FAULT` may name. */
export const SEARCH_FAULTS: readonly SearchFault[] = ["false-distance", "ignore-deletions"];

export interface VectorServiceComponents {
  store: FragmentStore;
  index: MaguIndex;
  metaDb: MetaDb;
  contracts: MuriContracts<MuriPublicClient>;
  logger?: Logger;
  /** Search time per peer and in all (`search-budget.ts`); none: no limit beyond k and ef. */
  budget?: SearchBudget;
  /**
   * Where the indexes live and their inserts and searches run: a worker thread (the node agent's
   * choice, so the prover is never kept waiting), or this thread when unset.
   */
  indexWorker?: IndexWorker;
}

/** An index in this thread or in the worker: the same calls, search awaited either way. */
type AnyIndex = VectorIndex | WorkerVectorIndex;

/** What an accepted document assigns this node (for the push policy). */
export interface AcceptedDocument {
  maguId: bigint;
  cids: readonly CID[];
  held: readonly number[];
}

export interface VectorService {
  /** The `type` of the documents this service takes (for magu-sync). */
  readonly documentType: typeof VECTOR_MANIFEST_TYPE;
  /** Reopens the documents and indexes of a previous run; indexes held fragments missing from them. */
  load(): Promise<void>;
  /** Verifies and records a pushed vector index document (MaguDocumentError when refused). */
  /** `expected`: the pending proposal's root and count (magu-sync.ts); the chain's when absent. */
  acceptDocument(bytes: Uint8Array, cid: CID, expected?: ExpectedData): Promise<AcceptedDocument>;
  /** A held fragment was stored: index it (in the background, in arrival order). */
  onFragment(maguId: bigint, cid: CID, bytes: Uint8Array): Promise<void>;
  /**
   * Answers a `/muri/search/3.0.0` request from `peer`; a search is charged to the peer's budget
   * (and refused "busy" while it is spent) when the service has one.
   */
  handle(request: unknown, peer?: string): Promise<Uint8Array | ManifestAnswer>;
  /** This node's top-k in `maguId`: HNSW with `ef` (the index default when unset) or brute force with `exact`. */
  search(maguId: bigint, query: VectorValues, k: number, options?: { ef?: number; exact?: boolean }): Promise<{ hits: SearchHit[]; fragments: number[] }>;
  /** The current document of `maguId`, if any. */
  manifest(maguId: bigint): Promise<{ manifest: VectorManifest; cid: CID; bytes: Uint8Array } | undefined>;
  /** Vector Magus with a document here. */
  maguIds(): bigint[];
  /**
   * A batch was not committed in time: drops fragments `keep`.. from the index and goes back to the
   * document of the first `keep` fragments (batches only append, so it is a prefix of the pending
   * one), or to none when `keep` is 0. Returns the CIDs of the dropped documents.
   */
  rollBack(maguId: bigint, keep: number): Promise<CID[]>;
  /**
   * Why held fragments `fragments` of `maguId` must not be acknowledged: a fragment of vectors
   * (no `deleted` list in the document) that holds a tombstone record. Undefined when none does.
   */
  checkFragments(maguId: bigint, fragments: readonly number[]): Promise<string | undefined>;
  close(): Promise<void>;
}

function idKey(maguId: bigint): Uint8Array {
  return Buffer.from(maguId.toString(16).padStart(64, "0"), "hex");
}

export function createVectorService(init: VectorServiceInit, components: VectorServiceComponents): VectorService {
  const log = components.logger ?? silentLogger;
  const { store, index, metaDb } = components;
  const registry = components.contracts.maguRegistry;
  const bucket = metaDb.bucket(Bucket.vector);
  const me = init.member.toLowerCase();
  const docs = new Map<bigint, { manifest: VectorManifest; cid: CID; bytes: Uint8Array; deleted: ReadonlySet<bigint> }>();
  const setDoc = (manifest: VectorManifest, cid: CID, bytes: Uint8Array): void => {
    docs.set(manifest.maguId, { manifest, cid, bytes, deleted: deletedIds(manifest) });
  };
  const indexes = new Map<bigint, Promise<AnyIndex>>();
  const saveTimers = new Map<bigint, NodeJS.Timeout>();
  /** How long each Magu's last scheduled save took (ms): it spaces the next one. */
  const saveMs = new Map<bigint, number>();
  /** Serialises index changes per Magu. */
  const queues = new Map<bigint, Promise<unknown>>();
  /**
   * The hits returned to each asker (`peer/magu`) that it may have proven: key fragment·2^17 +
   * position, value the expiry; askers in the order they last searched.
   */
  const returned = new Map<string, Map<number, number>>();
  let returnedSize = 0;
  const remember = (asker: string, hits: readonly (readonly SearchHit[])[]): void => {
    let known = returned.get(asker);
    if (known !== undefined) returned.delete(asker);
    else known = new Map();
    returned.set(asker, known);
    const now = Date.now();
    // Entries are in expiry order: the expired ones are at the front.
    for (const [key, at] of known) {
      if (at >= now) break;
      known.delete(key);
      returnedSize--;
    }
    const expires = now + PROVEN_HIT_TTL_MS;
    for (const list of hits) {
      for (const h of list) {
        const key = h.fragment * POSITIONS + h.position;
        if (!known.has(key)) returnedSize++;
        known.delete(key); // re-inserted last: the map stays in expiry order
        known.set(key, expires);
      }
    }
    while (returnedSize > RETURNED_HITS_MAX && returned.size > 0) {
      const [oldest, hitsOf] = returned.entries().next().value!;
      returned.delete(oldest);
      returnedSize -= hitsOf.size;
    }
  };
  /** Whether `asker` was returned (fragment, position) within PROVEN_HIT_TTL_MS. */
  const wasReturned = (asker: string, fragment: number, position: number): boolean => {
    const known = returned.get(asker);
    const expires = known?.get(fragment * POSITIONS + position);
    return expires !== undefined && expires >= Date.now();
  };
  /** Trees of recently proven fragments by CID, least recently used first. */
  const proofTrees = new Map<string, Promise<FragmentTree>>();
  let closed = false;

  const serial = <T>(maguId: bigint, task: () => Promise<T>): Promise<T> => {
    const prev = queues.get(maguId) ?? Promise.resolve();
    const next = prev.then(task, task);
    queues.set(maguId, next.catch(() => undefined));
    return next;
  };

  const worker = components.indexWorker;
  const open = (options: VectorIndexOptions): Promise<AnyIndex> => (worker !== undefined ? worker.open(options) : openVectorIndex(options));

  const openIndex = (maguId: bigint, m: VectorManifest): Promise<AnyIndex> => {
    let opened = indexes.get(maguId);
    if (opened === undefined) {
      const dir = join(init.dir, "vectors", maguId.toString());
      opened = open({ dir, dim: m.dim, metric: m.metric, efSearch: init.efSearch }).catch(async (err: Error) => {
        if (err.name !== "IndexCorruptError") throw err;
        log.warn("vector index unreadable: rebuilding it from the stored fragments", { magu: maguId.toString(), error: err.message });
        const { rm } = await import("node:fs/promises");
        await rm(dir, { recursive: true, force: true });
        return open({ dir, dim: m.dim, metric: m.metric, efSearch: init.efSearch });
      });
      indexes.set(maguId, opened);
      opened.catch(() => indexes.delete(maguId));
    }
    return opened;
  };

  const scheduleSave = (maguId: bigint): void => {
    if (closed || saveTimers.has(maguId)) return;
    const delay = Math.max(SAVE_DELAY_MS, SAVE_SPACING * (saveMs.get(maguId) ?? 0));
    const timer = setTimeout(() => {
      saveTimers.delete(maguId);
      const doc = docs.get(maguId);
      if (doc === undefined) return; // rolled back to nothing (rollBack saved it)
      void serial(maguId, async () => {
        const vi = await openIndex(maguId, doc.manifest);
        const started = performance.now();
        await vi.save();
        const ms = performance.now() - started;
        saveMs.set(maguId, ms);
        log.info("vector index saved", { magu: maguId.toString(), records: vi.size, ms: Math.round(ms) });
      }).catch((err: Error) => log.error("saving the vector index failed", { magu: maguId.toString(), error: err.message }));
    }, delay);
    timer.unref();
    saveTimers.set(maguId, timer);
  };

  /** Adds held fragments that are on disk but not in the index. */
  const catchUp = async (maguId: bigint): Promise<number> => {
    const doc = docs.get(maguId);
    const rec = await index.get(maguId);
    if (doc === undefined || rec === undefined) return 0;
    return serial(maguId, async () => {
      const vi = await openIndex(maguId, doc.manifest);
      let added = 0;
      for (const f of rec.held) {
        if (vi.hasFragment(f)) continue;
        const cid = rec.cids[f]!;
        if (!(await store.has(cid))) continue;
        await vi.addFragment(f, await store.get(cid));
        added++;
      }
      if (added > 0) scheduleSave(maguId);
      return added;
    });
  };

  // A dead worker took its indexes along: reopen them from disk and add back what was not saved.
  const stopWatching = worker?.onExit((err) => {
    if (closed) return;
    log.error("the vector index worker exited: reopening the indexes", { error: err.message });
    indexes.clear();
    for (const maguId of docs.keys()) {
      void catchUp(maguId).catch((e: Error) => log.error("reopening a vector index failed", { magu: maguId.toString(), error: e.message }));
    }
  });

  const verify = async (m: VectorManifest, cid: CID, expected?: ExpectedData): Promise<{ root: Hex; held: number[] }> => {
    const reject = (reason: string): never => {
      throw new MaguDocumentError(cid.toString(), reason);
    };
    const info = await registry.read.maguInfo([m.maguId]);
    if (info.params.kind !== KIND_VECTOR) reject("not a vector Magu");
    if (info.status !== STATUS_ACTIVE) reject(`Magu status ${info.status}, not active`);
    if (info.params.dimension !== m.dim) reject(`document dim ${m.dim}, Magu dim ${info.params.dimension}`);
    if (METRIC_BY_CODE[info.params.metric] !== m.metric) reject(`document metric ${m.metric}, Magu metric code ${info.params.metric}`);
    const roots = m.fragments.map((f) => Buffer.from(f.root, "hex"));
    const root = `0x${maguRoot(roots).toString("hex")}` as Hex;
    const want = expected ?? { root: info.root, fragmentCount: info.fragmentCount };
    if (want.fragmentCount !== roots.length || root.toLowerCase() !== want.root.toLowerCase()) {
      const source = expected !== undefined ? "the pending proposal has" : "chain has";
      reject(`document folds to ${root} over ${roots.length} fragments; ${source} ${want.root} over ${want.fragmentCount}`);
    }
    const slot = info.members.findIndex((a) => a.toLowerCase() === me);
    if (slot < 0 && init.observer !== true) reject("this node is not a member");
    const held = slot < 0 ? [] : fragmentsOfSlot(m.maguId, roots.length, info.params.members, slot, { replication: info.params.replication });
    return { root: want.root, held };
  };

  const record = async (m: VectorManifest, cid: CID, bytes: Uint8Array, expected?: ExpectedData): Promise<AcceptedDocument> => {
    const { root, held } = await verify(m, cid, expected);
    const current = docs.get(m.maguId);
    if (current !== undefined && current.manifest.fragments.length > m.fragments.length) {
      throw new MaguDocumentError(cid.toString(), `older than the document already held (${current.manifest.fragments.length} fragments)`);
    }
    // The quantization scale is the Magu's, fixed by its first batch: a later document keeps it.
    if (current !== undefined && manifestScaleExp(current.manifest) !== manifestScaleExp(m)) {
      throw new MaguDocumentError(cid.toString(), `scale 2^${manifestScaleExp(m)} differs from the Magu's 2^${manifestScaleExp(current.manifest)} (fixed by its first batch)`);
    }
    const cids = m.fragments.map((f) => f.cid);
    await index.recordFragments(m.maguId, root, m.fragments.map((f) => Buffer.from(f.root, "hex")), cids);
    await index.setHeld(m.maguId, held);
    await store.put(cid, bytes);
    await bucket.put(idKey(m.maguId), cid.bytes, { sync: true });
    setDoc(m, cid, bytes);
    log.info("vector index document recorded", { magu: m.maguId.toString(), fragments: cids.length, held: held.length });
    if (init.observer !== true) await catchUp(m.maguId);
    return { maguId: m.maguId, cids, held };
  };

  /**
   * The tree of fragment `f` of `m` as stored here, built from the whole fragment the first time
   * (kept for the next {@link PROOF_TREES} fragments proven); throws when it is missing or no longer
   * has the committed root.
   */
  const proofTree = (m: VectorManifest, f: number): Promise<FragmentTree> => {
    const entry = m.fragments[f]!;
    const key = entry.cid.toString();
    let tree = proofTrees.get(key);
    if (tree !== undefined) {
      proofTrees.delete(key);
    } else {
      tree = (async () => {
        const built = buildFragmentTree(await store.get(entry.cid, { verify: false }));
        if (built.fragmentRoot.toString("hex") !== entry.root) throw new Error(`stored fragment ${f} (${key}) does not have the committed root`);
        return built;
      })();
      tree.catch(() => proofTrees.delete(key));
    }
    proofTrees.set(key, tree);
    if (proofTrees.size > PROOF_TREES) proofTrees.delete(proofTrees.keys().next().value!);
    return tree;
  };

  /**
   * The proof of record `position` of fragment `f`: only the record's proof window is read (a few
   * KiB), its leaves checked against the kept tree; leaves that no longer match (the file changed
   * on disk) drop the tree, so the next proof reads the whole fragment and its root check speaks.
   */
  const proveRecord = async (m: VectorManifest, f: number, position: number): Promise<HitProof> => {
    const tree = await proofTree(m, f);
    const { offset, length } = proofWindow(position, m.dim, tree.size, m.metric);
    const window = await store.getRange(m.fragments[f]!.cid, offset, length);
    const first = offset / LEAF_SIZE;
    for (let i = 0; i * LEAF_SIZE < window.length; i++) {
      const leaf = hashLeaf(window.subarray(i * LEAF_SIZE, (i + 1) * LEAF_SIZE));
      if (!leaf.equals(tree.levels[0]!.subarray((first + i) * HASH_SIZE, (first + i + 1) * HASH_SIZE))) {
        proofTrees.delete(m.fragments[f]!.cid.toString());
        throw new Error(`stored fragment ${f} changed on disk (leaf ${first + i} no longer matches its tree)`);
      }
    }
    return buildHitProof(window, tree, position, m.dim, m.metric, offset);
  };

  /** The proofs of `pairs` ([fragment, position]) for `asker`: each, or why not (logged when the data is at fault). */
  const proveHits = async (maguId: bigint, m: VectorManifest, asker: string, pairs: ReadonlyArray<readonly [number, number]>): Promise<ProveItem[]> =>
    Promise.all(
      pairs.map(async ([fragment, position]): Promise<ProveItem> => {
        if (!wasReturned(asker, fragment, position)) {
          return { error: `fragment ${fragment} position ${position} is no hit this node returned to you in the last ${PROVEN_HIT_TTL_MS / 1000} s: search first` };
        }
        try {
          if (m.fragments[fragment] === undefined) throw new Error(`fragment ${fragment} is not in the document`);
          return { proof: await proveRecord(m, fragment, position) };
        } catch (err) {
          log.error("a search hit could not be proven", { magu: maguId.toString(), fragment, position, error: (err as Error).message });
          return { error: `fragment ${fragment} position ${position} cannot be proven here: ${(err as Error).message}` };
        }
      }),
    );

  /** The proofs of each query's best `best` hits, one per record; a record that cannot be proven here is left out (the asker asks again and learns why). */
  const inlineProofs = async (maguId: bigint, m: VectorManifest, asker: string, hits: readonly (readonly SearchHit[])[], best: number): Promise<InlineProof[]> => {
    const records = new Map<number, [number, number]>();
    for (const list of hits) for (const h of list.slice(0, best)) records.set(h.fragment * POSITIONS + h.position, [h.fragment, h.position]);
    const pairs = [...records.values()].slice(0, MAX_PROVE_HITS);
    const items = await proveHits(maguId, m, asker, pairs);
    return pairs.flatMap(([fragment, position], i) => {
      const item = items[i]!;
      return "proof" in item ? [{ fragment, position, proof: item.proof }] : [];
    });
  };

  /**
   * This node's top-k for each query, and the fragments every one of them searched (those indexed
   * both before the first and after the last: a fragment added or dropped meanwhile is not claimed).
   */
  const searchMany = async (maguId: bigint, queries: readonly VectorValues[], k: number, options: { ef?: number; exact?: boolean }): Promise<{ hits: SearchHit[][]; fragments: number[]; ms: number }> => {
    const doc = docs.get(maguId);
    if (doc === undefined) throw new Error(`Magu ${maguId} is not a vector Magu held here`);
    const { dim, metric } = doc.manifest;
    for (const query of queries) {
      if ((query instanceof Int16Array) === (metric === "hamming") || query.byteLength !== vectorSize(dim, metric)) {
        throw new Error(`query has ${query.length} ${query instanceof Int16Array ? "int16 components" : "bytes"}, the Magu's vectors are ${metric === "hamming" ? `${dim} bits packed` : `${dim} int16 components`}`);
      }
    }
    const vi = await openIndex(maguId, doc.manifest);
    // Deleted ids are retired: asked for k more per deletion, so k others remain once they are dropped.
    const deleted = init.fault === "ignore-deletions" ? new Set<bigint>() : doc.deleted;
    const want = k + deleted.size;
    const before = new Set(vi.fragments());
    const searchOptions = options.exact === true ? { exact: true } : { ef: options.ef };
    // In the worker, all the request's queries go in one message (each message costs about what a
    // search at ef 64 does), with other requests' searches asked meanwhile; `ms` is the search's own
    // time there, without the wait for the worker.
    let found: SearchHit[][];
    let ms: number;
    if (vi instanceof WorkerVectorIndex) {
      ({ hits: found, ms } = await vi.searchMany(queries, want, searchOptions));
    } else {
      const started = performance.now();
      found = queries.map((query) => vi.search(query, want, searchOptions));
      ms = performance.now() - started;
    }
    const hits = deleted.size === 0 ? found : found.map((list) => list.filter((h) => !deleted.has(h.id)).slice(0, k));
    return { hits, fragments: vi.fragments().filter((f) => before.has(f)), ms };
  };

  const service: VectorService = {
    documentType: VECTOR_MANIFEST_TYPE,
    async load() {
      for await (const [, value] of bucket.entries()) {
        let cid: CID;
        try {
          cid = CID.decode(value);
          const bytes = await store.get(cid);
          setDoc(decodeVectorManifest(bytes, cid), cid, bytes);
        } catch (err) {
          log.error("a stored vector index document is unreadable; waiting for the client to push it again", { error: (err as Error).message });
          continue;
        }
      }
      if (init.observer === true) return;
      for (const maguId of docs.keys()) {
        try {
          const added = await catchUp(maguId);
          log.info("vector index loaded", { magu: maguId.toString(), added, records: (await openIndex(maguId, docs.get(maguId)!.manifest)).size });
        } catch (err) {
          log.error("vector index failed to load", { magu: maguId.toString(), error: (err as Error).message });
        }
      }
    },

    async acceptDocument(bytes, cid, expected) {
      let manifest: VectorManifest;
      try {
        manifest = decodeVectorManifest(bytes, cid);
      } catch (err) {
        throw new MaguDocumentError(cid.toString(), (err as Error).message);
      }
      return record(manifest, cid, bytes, expected);
    },

    async onFragment(maguId, cid, bytes) {
      const doc = docs.get(maguId);
      const rec = await index.get(maguId);
      if (doc === undefined || rec === undefined || init.observer === true) return;
      const key = cid.toString();
      const positions = rec.held.filter((f) => rec.cids[f]?.toString() === key);
      if (positions.length === 0) return;
      // Indexing runs behind the push: the pusher's answer (and the prover, which reads the store)
      // must not wait for the HNSW inserts. A crash before the index is saved is caught up at start.
      void serial(maguId, async () => {
        const vi = await openIndex(maguId, doc.manifest);
        for (const f of positions) if (!vi.hasFragment(f)) await vi.addFragment(f, bytes);
        scheduleSave(maguId);
      }).catch((err: Error) => log.error("indexing a fragment failed", { magu: maguId.toString(), cid: key, error: err.message }));
    },

    async search(maguId, query, k, options = {}) {
      const { hits, fragments } = await searchMany(maguId, [query], k, options);
      return { hits: hits[0]!, fragments };
    },

    async manifest(maguId) {
      return docs.get(maguId);
    },

    maguIds: () => [...docs.keys()],

    async rollBack(maguId, keep) {
      const doc = docs.get(maguId);
      if (doc === undefined || doc.manifest.fragments.length <= keep) return [];
      return serial(maguId, async () => {
        if (init.observer !== true) {
          const vi = await openIndex(maguId, doc.manifest);
          for (let f = keep; f < doc.manifest.fragments.length; f++) if (vi.hasFragment(f)) await vi.removeFragment(f);
          await vi.save();
        }
        if (keep === 0) {
          await bucket.del(idKey(maguId), { sync: true });
          docs.delete(maguId);
        } else {
          const manifest: VectorManifest = { ...doc.manifest, fragments: doc.manifest.fragments.slice(0, keep) };
          const prefix = encodeVectorManifest(manifest);
          await store.put(prefix.cid, prefix.bytes);
          await bucket.put(idKey(maguId), prefix.cid.bytes, { sync: true });
          setDoc(manifest, prefix.cid, prefix.bytes);
        }
        log.warn("vector batch not committed in time: its records left the index", { magu: maguId.toString(), kept: keep, dropped: doc.manifest.fragments.length - keep });
        return [doc.cid];
      });
    },

    async checkFragments(maguId, fragments) {
      const doc = docs.get(maguId);
      if (doc === undefined) return undefined;
      for (const f of fragments) {
        const entry = doc.manifest.fragments[f];
        if (entry === undefined || entry.deleted !== undefined) continue; // a listed tombstone fragment was rebuilt from its ids
        const p = firstTombstone(await store.get(entry.cid), doc.manifest.dim, doc.manifest.metric);
        if (p >= 0) return `fragment ${f} holds a tombstone record (position ${p}) its document does not list: deletions are tombstone fragments the document lists`;
      }
      return undefined;
    },

    async handle(raw, peer) {
      const request = raw as Partial<SearchRequest> & Record<string, unknown>;
      if (typeof request?.magu !== "string" || !/^[1-9][0-9]{0,77}$/.test(request.magu)) throw new Error("magu must be a decimal Magu id");
      const maguId = BigInt(request.magu);
      const doc = docs.get(maguId);
      if (doc === undefined) throw new Error(`Magu ${maguId} has no vector index document here`);
      if (request.op === "manifest") return { ok: true, cid: doc.cid.toString(), doc: Buffer.from(doc.bytes).toString("base64") };
      const asker = `${peer ?? ""}/${maguId}`;
      if (request.op === "prove") {
        const pairs = request.hits;
        if (!Array.isArray(pairs) || pairs.length < 1 || pairs.length > MAX_PROVE_HITS) throw new Error(`hits must be an array of 1 to ${MAX_PROVE_HITS} [fragment, position] pairs`);
        for (const [i, pair] of pairs.entries()) {
          if (!Array.isArray(pair) || pair.length !== 2 || !pair.every((x) => Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) < 2 ** 32)) {
            throw new Error(`hits[${i}] must be [fragment, position], two integers in [0, 2^32)`);
          }
        }
        return encodeProveAnswer(await proveHits(maguId, doc.manifest, asker, pairs as Array<[number, number]>));
      }
      if (request.op !== "search") throw new Error(`unknown op ${JSON.stringify(request.op)}: expected "search", "prove" or "manifest"`);
      const k = request.k;
      if (!Number.isSafeInteger(k) || (k as number) < 1 || (k as number) > MAX_SEARCH_K) throw new Error(`k must be an integer in [1, ${MAX_SEARCH_K}]`);
      if (request.ef !== undefined && (!Number.isSafeInteger(request.ef) || request.ef < 1 || request.ef > MAX_SEARCH_EF)) {
        throw new Error(`ef must be an integer in [1, ${MAX_SEARCH_EF}]`);
      }
      const inline = request.prove ?? 0;
      if (!Number.isSafeInteger(inline) || inline < 0 || inline > (k as number)) throw new Error("prove must be an integer in [0, k]: how many of each query's best hits come with their proofs");
      const queries = requestQueries(request).map((hex, i) => {
        try {
          return decodeQuery(hex, doc.manifest.dim, doc.manifest.metric);
        } catch (err) {
          throw new Error(request.queries === undefined ? (err as Error).message : `queries[${i}]: ${(err as Error).message}`, { cause: err });
        }
      });
      const search = () => searchMany(maguId, queries, k as number, { ef: request.ef, exact: request.exact === true });
      const budget = components.budget;
      // Charged what the searches cost in the index, not the time they waited for it behind others.
      const answer = budget !== undefined && peer !== undefined ? await budget.run(peer, search, (a) => a.ms) : await search();
      let hits = answer.hits;
      if (init.fault === "false-distance") hits = hits.map((list) => (list.length === 0 ? list : [{ ...list[0]!, distance: list[0]!.distance - 1n }, ...list.slice(1)]));
      remember(asker, hits);
      return encodeSearchAnswer({ fragments: answer.fragments, hits, proofs: inline === 0 ? [] : await inlineProofs(maguId, doc.manifest, asker, hits, inline) });
    },

    async close() {
      closed = true;
      stopWatching?.();
      for (const timer of saveTimers.values()) clearTimeout(timer);
      saveTimers.clear();
      for (const [maguId, opened] of indexes) {
        await serial(maguId, async () => (await opened).close()).catch((err: Error) =>
          log.error("closing the vector index failed", { magu: maguId.toString(), error: err.message }),
        );
      }
      indexes.clear();
    },
  };
  return service;
}
