/**
 * The client of vector Magus: adding vectors, searching off-chain over `/muri/search/3.0.0`, and
 * searching as an on-chain task (docs/SEARCH.md).
 *
 * add (the Magu must be an Active vector Magu owned by the key):
 * 1. read and check the whole file first (data/vector-files.ts, quantize every component): a bad
 *    file fails here, before anything is committed or sent;
 * 2. learn the Magu's current fragment list from a member (`manifest` request, checked against the
 *    root on chain) when data was committed before; ids default to row numbers that continue
 *    after the records already committed. The quantization scale 2^e is the Magu's: the first
 *    batch picks it (data/vectors.ts `chooseScaleExp`) and every document records it; a later
 *    batch is quantized at the document's scale and fails, before anything is sent, if a value
 *    does not fit it (ERR_VECTOR_SCALE). A cosine Magu's vectors are first scaled to unit length
 *    (data/vectors.ts `normalizeVector`; an all-zero row fails with ERR_ZERO_VECTOR) and its scale
 *    is always 2^14 (`COSINE_SCALE_EXP`), which holds every unit vector. A Hamming Magu's file is
 *    binary vectors (data/vector-files.ts `readBitFile`: .npy of uint8 packed bits, .bits, .jsonl
 *    of 0/1), packed as they are: no scale, its documents carry none;
 * 3. pack whole records into fragments of at most `fragmentSize` bytes, each vector's payload (an
 *    optional JSON object: a .jsonl line's `payload`, or `options.payloads`) in chunk records right
 *    after it (data/vectors.ts); in groups of `commitGroup`
 *    fragments, commit the root over the old and the new fragment roots so far (`commitData`), push
 *    that vector index document to every member and validator, and each fragment of the group to
 *    the r members placement names (members are challenged on committed fragments from the next
 *    period on: a group arrives seconds after its commit, not periods later).
 *
 * search: quantizes the query at the Magu's scale (read once from its document, then cached: it
 * never changes once the Magu holds data; a Hamming query is 0/1 components, packed), plans one holder per fragment (greedy cover of the fragments by members, by placement),
 * asks them in parallel, re-asks other holders for fragments a failed or incomplete answer did not
 * cover, and merges the hits by (distance, id), one per id, the first k. Unless `verify: false`,
 * each hit comes with its record's leaves and paths (data/hit-proof.ts) and is checked against the
 * fragment root of the Magu's document (which folds to the root on chain): a member with a hit
 * it cannot prove (a forged record, another id, a wrong distance, a fragment it is not placed on) is
 * dropped from the answer, reported in `rejected`, and its fragments asked of their other holders;
 * a hit on a fragment the chain did not commit when the search began is left out (`unproven`).
 * A verified hit carries its payload, read from the same proven leaves (they reach past the record
 * to its payload chunks, or to the next record's id when it has none).
 *
 * searchOnChain: approves and submits the task, waits for its answer, and finalizes it itself if
 * nobody did within a few blocks after the dispute deadline.
 */
import { mkdir } from "node:fs/promises";
import type { PeerId } from "@libp2p/interface";
import { CID } from "multiformats/cid";
import { parseEventLogs, type Address, type Hex } from "viem";
import {
  accessDomain,
  createChainClients,
  describeError,
  getMuriContracts,
  searchMarketAbi,
  signVoucher,
  verifyChain,
  type Deployment,
  type MuriContracts,
  type MuriPublicClient,
  type MuriWalletClient,
  type SigningChainClients,
} from "../../chain/index.js";
import { cidOfFragmentRoot } from "../../data/cid.js";
import { fragmentRoot, maguRoot } from "../../data/merkle.js";
import { verifyHitProof, type HitProof } from "../../data/hit-proof.js";
import { holdersVector } from "../../data/placement.js";
import { readBitFile, readVectorFile, type BitVectorFile, type VectorFile } from "../../data/vector-files.js";
import { VectorBitError, VectorDimensionError, VectorValueError, VectorZeroError } from "../../data/errors.js";
import { decodeVectorManifest, deletedIds, encodeVectorManifest, manifestScaleExp, METRIC_BY_CODE, vectorRows, type VectorFragmentInfo, type VectorManifest } from "../../data/vector-manifest.js";
import {
  chooseScaleExp,
  compareHits,
  CONTROL_ID_MIN,
  COSINE_SCALE_EXP,
  isControlId,
  normalizeVector,
  packBits,
  packRecords,
  packTombstones,
  packVectors,
  quantize,
  recordSize,
  vectorSize,
  scaleLimit,
  scaleOfExp,
  tombstonesPerRecord,
  type FloatVector,
  type HitEntry,
  type VectorMetric,
  type VectorValues,
} from "../../data/vectors.js";
import { searchRequest, type P2PNode } from "../../p2p/index.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import { StorageClientError } from "./client.js";
import { BatchUnavailableError, deliverBatch, type MissingMember, type SlotMember } from "./batch.js";
import { ProgressTracker, type ProgressListener } from "./progress.js";
import { createClientNode, pushToValidators, registeredPeer } from "../shared/peers.js";
import { ClientAccess, createClientAccess, isAccessRefusal, isPaymentRefusal } from "./access.js";
import { finalizeTask, taskAnswer, type TaskAnswer } from "../shared/search-market.js";
import { encodeQuery, MAX_BATCH_QUERIES, MAX_PROVE_HITS, MAX_SEARCH_K } from "../shared/vector-service.js";
import { decodeProveAnswer, decodeSearchAnswer, type ProveItem } from "../shared/search-wire.js";
import { VECTOR_CLIENT_DEFAULTS } from "./defaults.js";

export { VECTOR_CLIENT_DEFAULTS };

const KIND_VECTOR = 1;
const STATUS_NAMES = ["none", "requested", "active", "ended", "cancelled"];
const STATUS_ACTIVE = 2;
const ZERO_ADDRESS = /^0x0{40}$/i;

/** A member's answer held a hit its proof does not support. */
class HitNotProvenError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "HitNotProvenError";
  }
}
const RECEIPT_TIMEOUT_MS = 60_000;
/** How long a search reuses the Magu's members and fragment count read from the chain. */
const MAGU_VIEW_TTL_MS = 2_000;

export type VectorClientErrorCode =
  | "ERR_NOT_AVAILABLE"
  | "ERR_MAGU_UNKNOWN"
  | "ERR_MAGU_KIND"
  | "ERR_MAGU_NOT_OWNER"
  | "ERR_MAGU_NOT_ACTIVE"
  | "ERR_MAGU_FULL"
  | "ERR_MANIFEST_NOT_FOUND"
  | "ERR_PUSH_FAILED"
  | "ERR_TX_FAILED"
  | "ERR_SEARCH_FAILED"
  | "ERR_BAD_QUERY"
  | "ERR_BAD_PAYLOADS"
  | "ERR_BAD_IDS"
  | "ERR_VECTOR_DELETED"
  | "ERR_VECTOR_SCALE"
  | "ERR_ZERO_VECTOR"
  | "ERR_MAGU_METRIC"
  | "ERR_NOT_STARTED"
  | "ERR_TIMEOUT"
  | "ERR_ACCESS_DENIED"
  | "ERR_SEARCH_PAYMENT";

/** A vector client operation that failed; `code` names the condition. */
export class VectorClientError extends StorageClientError {
  constructor(code: VectorClientErrorCode, message: string, context: Record<string, unknown> = {}, cause?: unknown) {
    super(code, message, context, cause);
    this.name = "VectorClientError";
  }
}

export interface VectorClientInit {
  /** Directory of the client's libp2p key. */
  dir: string;
  deployment: Deployment;
  rpcUrl?: string;
  privateKey: Hex;
  /** Grant tokens for private Magus this client does not own (`muri magu grant` output). */
  grants?: readonly string[];
}

export interface AddOptions {
  /** Bytes per fragment (default VECTOR_CLIENT_DEFAULTS.fragmentSize). */
  fragmentSize?: number;
  /**
   * Each vector's payload (UTF-8 JSON object text, at most MAX_PAYLOAD_BYTES) or null, in row order;
   * overrides the file's own (a .jsonl file's `payload` keys).
   */
  payloads?: ReadonlyArray<Uint8Array | null>;
  /** Hears the add's progress (progress.ts): bytes packed, fragments pushed, acknowledgements. */
  onProgress?: ProgressListener;
}

export interface AddResult {
  maguId: bigint;
  vectors: number;
  /** Id of the first added vector when the file gave none (row numbering), else null. */
  firstRow: number;
  fragments: number;
  fragmentCount: number;
  manifestCid: CID;
  /** Exponent e of the Magu's quantization scale 2^e (chosen by this batch if it was the first); null for a Hamming Magu (bits, no scale). */
  scaleExp: number | null;
  /** Members that did not acknowledge some batch of the add: they fetch it later. */
  missing: MissingMember[];
}

export interface DeleteResult {
  maguId: bigint;
  /** Ids newly deleted (committed in this batch). */
  deleted: number;
  /** Ids given that were deleted before (nothing committed for them). */
  alreadyDeleted: number;
  /** Tombstone fragments committed (0 when every id was deleted before). */
  fragments: number;
  fragmentCount: number;
  manifestCid: CID;
  /** Members that did not acknowledge the batch: they fetch it later. */
  missing: MissingMember[];
}

export interface SearchOptions {
  /** HNSW search effort on the nodes (their default when unset). */
  ef?: number;
  /** Brute force on the nodes (the exact answer). */
  exact?: boolean;
  /** Check every hit's proof against the Magu's committed root (default true). */
  verify?: boolean;
}

/** A member whose answer was dropped because a hit did not prove. */
export interface RejectedMember {
  member: Address;
  reason: string;
}

/** A hit as a search returns it: with its payload when the answer was verified. */
export interface VectorHit extends HitEntry {
  /**
   * The vector's payload (the JSON object given at add time), read from the proven leaves: null
   * when it has none; absent when the search was not verified (`verify: false`).
   */
  payload?: Record<string, unknown> | null;
}

export interface SearchResult {
  hits: VectorHit[];
  /** Members asked, and members that failed. */
  asked: number;
  failed: number;
  /** Fragments no answer covered (empty when the answer covers the whole Magu). */
  uncovered: number[];
  /** Whether every hit was checked against the committed root (`verify`, the default). */
  verified: boolean;
  /** Members dropped for a hit they could not prove (counted in `failed` too). */
  rejected: RejectedMember[];
  /** Hits left out as their fragment was not yet committed in the view the search began with. */
  unproven: number;
  /**
   * Exponent e of the Magu's scale 2^e the query was quantized at: a hit's distance in the units
   * of the floats is `distance / 2^(2e)`. Null for a Magu without data (nothing to search) and for
   * a Hamming Magu (its distance is the number of differing bits).
   */
  scaleExp: number | null;
  ms: number;
}

export interface OnChainSearchResult extends TaskAnswer {
  /** As in {@link SearchResult} (null for a Hamming Magu). */
  scaleExp: number | null;
  submitBlock: bigint;
  finalizedBy: "self" | "other";
  ms: number;
}

export interface VectorClient {
  start(): Promise<void>;
  stop(): Promise<void>;
  readonly address: Address;
  /** Reads and checks a vector file (nothing sent). */
  readFile(path: string, dim: number): Promise<VectorFile>;
  /** The dimension (bits for Hamming) and metric of vector Magu `maguId`, read from the chain (then cached with the Magu view: they never change). */
  vectorParams(maguId: bigint): Promise<{ dim: number; metric: VectorMetric }>;
  /** `input`: a file path (read by the Magu's metric: binary vectors for Hamming), or a file already read. */
  add(maguId: bigint, input: string | VectorFile | BitVectorFile, options?: AddOptions): Promise<AddResult>;
  /**
   * Deletes vectors by id: commits a batch of tombstone records (data/vectors.ts `packTombstones`)
   * whose ids the document lists, so members stop returning them and a dispute can prove an entry
   * with one false. Deleted ids are retired (a later add may not reuse them); ids deleted before are
   * counted in `alreadyDeleted`, not committed again.
   */
  delete(maguId: bigint, ids: readonly bigint[], options?: { fragmentSize?: number }): Promise<DeleteResult>;
  /** `query`: the float components, or for a Hamming Magu its dim bits as 0/1 numbers. */
  search(maguId: bigint, query: ArrayLike<number>, k: number, options?: SearchOptions): Promise<SearchResult>;
  /**
   * Several queries at once: one request per member carries them all (split past MAX_BATCH_QUERIES
   * or the request and answer sizes), proofs are asked once for the records every query's top k
   * needs; one result per query, in order. On a Magu with a search price a batch pays one search
   * per query.
   */
  searchBatch(maguId: bigint, queries: ReadonlyArray<ArrayLike<number>>, k: number, options?: SearchOptions): Promise<SearchResult[]>;
  searchOnChain(maguId: bigint, query: ArrayLike<number>, k: number, fee: bigint): Promise<OnChainSearchResult>;
  /** The Magu's current vector index document, from a member, checked against the chain. */
  fetchManifest(maguId: bigint): Promise<{ manifest: VectorManifest; cid: CID } | undefined>;
}

type WriteContracts = MuriContracts<{ public: MuriPublicClient; wallet: MuriWalletClient }>;

interface MaguView {
  owner: Address;
  status: number;
  kind: number;
  dim: number;
  metric: VectorMetric;
  replication: number;
  members: readonly Address[];
  root: Hex;
  fragmentCount: number;
  maxFragments: number;
  /** Price per search the members ask (MaguAccess `searchPrice`), token wei; 0: free. */
  searchPrice: bigint;
}

/** Where this client stands with one member of a paid Magu (search-meter.ts on the member). */
interface MeterState {
  searches: bigint;
  total: bigint;
}

export function createVectorClient(init: VectorClientInit, components: { logger?: Logger } = {}): VectorClient {
  return new VectorClientImpl(init, components.logger ?? silentLogger);
}

class VectorClientImpl implements VectorClient {
  private readonly clients: SigningChainClients;
  private readonly contracts: WriteContracts;
  private p2p: P2PNode | undefined;
  private access: ClientAccess | undefined;
  private readonly peers = new Map<string, PeerId>();
  /** `${magu}/${member}` -> this client's voucher count and total with that member (paid Magus). */
  private readonly meters = new Map<string, MeterState>();
  /** `${magu}/${member}` -> the paid search in flight there: the next voucher follows it. */
  private readonly meterLocks = new Map<string, Promise<unknown>>();
  /** Serialises on-chain task submissions (see searchOnChain). */
  private submitting: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly init: VectorClientInit,
    private readonly log: Logger,
  ) {
    this.clients = createChainClients({ rpcUrl: init.rpcUrl ?? init.deployment.rpcUrl, chainId: init.deployment.chainId, privateKey: init.privateKey });
    this.contracts = getMuriContracts(init.deployment.contracts, this.clients);
  }

  get address(): Address {
    return this.clients.account.address;
  }

  async start(): Promise<void> {
    if (this.p2p !== undefined) return;
    await mkdir(this.init.dir, { recursive: true });
    await verifyChain(this.clients.publicClient, this.init.deployment.chainId, this.clients.rpcUrl);
    const p2p = await createClientNode(this.init.dir);
    await p2p.start();
    this.p2p = p2p;
    this.access = createClientAccess(this.init, this.clients, { contracts: this.contracts, p2p });
  }

  async stop(): Promise<void> {
    const p2p = this.p2p;
    this.p2p = undefined;
    await p2p?.stop();
  }

  private running(): P2PNode {
    if (this.p2p === undefined) throw new VectorClientError("ERR_NOT_STARTED", "vector client not started: call start() first");
    return this.p2p;
  }

  /** Magu views of recent searches: a burst of searches reads the chain once per MAGU_VIEW_TTL_MS. */
  private readonly views = new Map<bigint, { at: number; view: Promise<MaguView> }>();
  /**
   * Each Magu's quantization scale exponent, read from its document the first time a search needs
   * it and kept beside the views for good: the first batch fixes it and the members refuse a
   * document that changes it, so it is never stale.
   */
  private readonly scales = new Map<bigint, Promise<number>>();
  /** Each Magu's latest document read and its fragment roots, by the committed root they fold to. */
  private readonly documents = new Map<bigint, { root: string; doc: Promise<{ manifest: VectorManifest; roots: Buffer[]; deleted: ReadonlySet<bigint> }> }>();

  /** The document committed in view `m` (from a member, folding to `m.root`), cached until the root changes. */
  private documentAt(maguId: bigint, m: MaguView): Promise<{ manifest: VectorManifest; roots: Buffer[]; deleted: ReadonlySet<bigint> }> {
    const known = this.documents.get(maguId);
    if (known !== undefined && known.root === m.root.toLowerCase()) return known.doc;
    const doc = this.manifestOf(maguId, m).then(({ manifest }) => ({ manifest, roots: manifest.fragments.map((f) => Buffer.from(f.root, "hex")), deleted: deletedIds(manifest) }));
    const entry = { root: m.root.toLowerCase(), doc };
    this.documents.set(maguId, entry);
    doc.catch(() => {
      if (this.documents.get(maguId) === entry) this.documents.delete(maguId);
    });
    return doc;
  }

  /**
   * The Magu's scale exponent (from its document, checked against the chain, then cached), or null
   * when `m` says it holds no data yet. The document is read against a fresh view of the Magu, and
   * again if a batch committed meanwhile made the members' document newer than that view.
   */
  private scaleExpOf(maguId: bigint, m: MaguView): Promise<number | null> {
    if (m.fragmentCount === 0 || m.metric === "hamming") return Promise.resolve(null);
    let known = this.scales.get(maguId);
    if (known === undefined) {
      known = (async () => {
        for (let attempt = 1; ; attempt++) {
          try {
            return manifestScaleExp((await this.documentAt(maguId, await this.magu(maguId))).manifest);
          } catch (err) {
            if (attempt >= 3 || !(err instanceof VectorClientError) || err.code !== "ERR_MANIFEST_NOT_FOUND") throw err;
          }
        }
      })();
      this.scales.set(maguId, known);
      known.catch(() => this.scales.delete(maguId));
    }
    return known;
  }

  private cachedMagu(maguId: bigint): Promise<MaguView> {
    const hit = this.views.get(maguId);
    if (hit !== undefined && performance.now() - hit.at < MAGU_VIEW_TTL_MS) return hit.view;
    const view = this.magu(maguId);
    this.views.set(maguId, { at: performance.now(), view });
    view.catch(() => this.views.delete(maguId));
    return view;
  }

  private async magu(maguId: bigint): Promise<MaguView> {
    const count = await this.contracts.maguRegistry.read.maguCount();
    if (maguId < 1n || maguId > count) throw new VectorClientError("ERR_MAGU_UNKNOWN", `Magu ${maguId} does not exist (ids are 1..${count}): check the id with muri status`, { maguId });
    const info = await this.contracts.maguRegistry.read.maguInfo([maguId]);
    if (info.params.kind !== KIND_VECTOR) throw new VectorClientError("ERR_MAGU_KIND", `Magu ${maguId} is a blob Magu: vectors go into a vector Magu (muri magu create --kind vector)`, { maguId });
    const metric = METRIC_BY_CODE[info.params.metric];
    if (metric === undefined) {
      throw new VectorClientError("ERR_MAGU_METRIC", `Magu ${maguId} has metric code ${info.params.metric}, which this client does not know: upgrade muri`, { maguId, metric: info.params.metric });
    }
    return {
      owner: info.owner,
      status: info.status,
      kind: info.params.kind,
      dim: info.params.dimension,
      metric,
      replication: info.params.replication,
      members: info.members,
      root: info.root,
      fragmentCount: info.fragmentCount,
      maxFragments: info.params.maxFragments,
      searchPrice: await this.contracts.maguAccess.read.searchPrice([maguId]),
    };
  }

  private requireActive(maguId: bigint, m: MaguView): void {
    if (m.status !== STATUS_ACTIVE) {
      throw new VectorClientError("ERR_MAGU_NOT_ACTIVE", `Magu ${maguId} is ${STATUS_NAMES[m.status] ?? m.status}, not active`, { maguId, status: m.status });
    }
  }

  /**
   * Sends a search to `member`; on a Magu with a search price, with this client's next voucher for
   * that member (one search and one price more than the last it took), one paid search per member
   * at a time so the member sees the vouchers in order.
   */
  private async askMember(maguId: bigint, member: Address, price: bigint, request: Record<string, unknown>, searches: number): Promise<unknown> {
    // `access.read` below presents this client's grant first.
    const peer = await this.peer(member);
    // An answer refusing access although this client presented a grant: present it again, once.
    const send = (body: Record<string, unknown>) =>
      this.access!.read(peer, maguId, async () => {
        const answer = await searchRequest(this.running().libp2p, peer, body, { limits: { timeoutMs: VECTOR_CLIENT_DEFAULTS.searchTimeoutMs } });
        const error = (answer as { error?: unknown } | undefined)?.error;
        if (!(answer instanceof Uint8Array) && typeof error === "string" && isAccessRefusal(new Error(error))) throw new Error(error);
        return answer;
      });
    if (price === 0n) return send(request);
    const key = `${maguId}/${member.toLowerCase()}`;
    const run = async (): Promise<unknown> => {
      let state = this.meters.get(key);
      if (state === undefined) {
        const meter = (await searchRequest(this.running().libp2p, peer, { op: "meter", magu: maguId.toString(), payer: this.address }, { what: "meter" })) as {
          ok?: boolean;
          searches?: string;
          total?: string;
          error?: string;
        };
        if (meter?.ok !== true || typeof meter.searches !== "string" || typeof meter.total !== "string") throw new Error(`meter: ${meter?.error ?? "malformed answer"}`);
        state = { searches: BigInt(meter.searches), total: BigInt(meter.total) };
      }
      // A batch of queries is as many searches.
      const voucher = { magu: maguId, member, searches: state.searches + BigInt(searches), total: state.total + price * BigInt(searches) };
      const { clients } = this;
      const signature = await signVoucher((typed) => clients.walletClient.signTypedData({ account: clients.account, ...typed } as never), accessDomain(this.init.deployment.chainId, this.init.deployment.contracts.maguAccess), voucher);
      const answer = await send({ ...request, voucher: { payer: this.address, searches: voucher.searches.toString(), total: voucher.total.toString(), signature } });
      // The member keeps the voucher only with an answer; after a refusal ask it where we stand.
      if (answer instanceof Uint8Array) this.meters.set(key, { searches: voucher.searches, total: voucher.total });
      else this.meters.delete(key);
      return answer;
    };
    const prev = this.meterLocks.get(key) ?? Promise.resolve();
    const mine = prev.then(run, run);
    this.meterLocks.set(key, mine.catch(() => undefined));
    return mine;
  }

  /** The peer id of member `address` of `maguId`, this client's access presented to it (client/access.ts). */
  private async reader(address: Address, maguId: bigint): Promise<PeerId> {
    const peer = await this.peer(address);
    await this.access!.ensure(peer, maguId);
    return peer;
  }

  /** The peer id of a registered node (added to the peer store with its addresses), cached. */
  private async peer(address: Address): Promise<PeerId> {
    const known = this.peers.get(address.toLowerCase());
    if (known !== undefined) return known;
    const peerId = await registeredPeer(this.contracts, this.running(), address);
    this.peers.set(address.toLowerCase(), peerId);
    return peerId;
  }

  private async send(what: string, hash: Promise<Hex>): Promise<bigint> {
    let receipt;
    try {
      receipt = await this.clients.publicClient.waitForTransactionReceipt({ hash: await hash, pollingInterval: 100, timeout: RECEIPT_TIMEOUT_MS });
    } catch (err) {
      throw new VectorClientError("ERR_TX_FAILED", `${what} failed: ${describeError(err)}`, { what }, err);
    }
    if (receipt.status !== "success") throw new VectorClientError("ERR_TX_FAILED", `${what} reverted (tx ${receipt.transactionHash})`, { what });
    return receipt.blockNumber;
  }

  async readFile(path: string, dim: number): Promise<VectorFile> {
    return readVectorFile(path, { dim });
  }

  async vectorParams(maguId: bigint): Promise<{ dim: number; metric: VectorMetric }> {
    // A Magu's dimension and metric never change: the cached view (as search reads it) will do.
    const m = await this.cachedMagu(maguId);
    return { dim: m.dim, metric: m.metric };
  }

  async fetchManifest(maguId: bigint): Promise<{ manifest: VectorManifest; cid: CID } | undefined> {
    const m = await this.magu(maguId);
    if (m.fragmentCount === 0) return undefined;
    return this.manifestOf(maguId, m);
  }

  /** The document of a Magu with data (`m.fragmentCount` > 0), from the first member that gives one folding to `m.root`. */
  private async manifestOf(maguId: bigint, m: MaguView): Promise<{ manifest: VectorManifest; cid: CID }> {
    const failures: string[] = [];
    let refused: string | undefined;
    let allRefused = true;
    for (const member of m.members) {
      if (ZERO_ADDRESS.test(member)) continue;
      try {
        const answer = (await searchRequest(this.running().libp2p, await this.reader(member, maguId), { op: "manifest", magu: maguId.toString() }, {
          limits: { timeoutMs: VECTOR_CLIENT_DEFAULTS.searchTimeoutMs },
          what: "manifest",
        })) as { ok?: boolean; cid?: string; doc?: string; error?: string };
        if (answer?.ok !== true || typeof answer.cid !== "string" || typeof answer.doc !== "string") throw new Error(answer?.error ?? "malformed answer");
        const cid = CID.parse(answer.cid);
        const manifest = decodeVectorManifest(Buffer.from(answer.doc, "base64"), cid);
        const root = `0x${maguRoot(manifest.fragments.map((f) => Buffer.from(f.root, "hex"))).toString("hex")}`;
        if (manifest.maguId !== maguId || manifest.fragments.length !== m.fragmentCount || root.toLowerCase() !== m.root.toLowerCase()) {
          throw new Error(`its document (${manifest.fragments.length} fragments) does not fold to the root on chain`);
        }
        return { manifest, cid };
      } catch (err) {
        failures.push(`${member}: ${describeError(err)}`);
        if (isAccessRefusal(err)) refused ??= describeError(err);
        else allRefused = false;
      }
    }
    // Refused by every member it asked: a private Magu and no grant, the error a search gives too.
    if (refused !== undefined && allRefused) throw new VectorClientError("ERR_ACCESS_DENIED", refused, { maguId });
    throw new VectorClientError("ERR_MANIFEST_NOT_FOUND", `no member of Magu ${maguId} gave its current vector index document (${failures.join("; ")})`, { maguId });
  }

  async add(maguId: bigint, input: string | VectorFile | BitVectorFile, options: AddOptions = {}): Promise<AddResult> {
    const m = await this.magu(maguId);
    if (m.owner.toLowerCase() !== this.address.toLowerCase()) {
      throw new VectorClientError("ERR_MAGU_NOT_OWNER", `Magu ${maguId} belongs to ${m.owner}, not to ${this.address}: only its owner adds vectors`, { maguId });
    }
    this.requireActive(maguId, m);
    // 1. the whole file, checked (dimension, values, ids) before anything leaves this process.
    const hamming = m.metric === "hamming";
    const file = typeof input !== "string" ? input : hamming ? await readBitFile(input, m.dim) : await readVectorFile(input, { dim: m.dim });
    if (file.dim !== m.dim) throw new VectorClientError("ERR_BAD_QUERY", `the vectors have dimension ${file.dim}, Magu ${maguId} has ${m.dim}`, { maguId });
    if (("bits" in file) !== hamming) {
      throw new VectorClientError(
        "ERR_BAD_QUERY",
        hamming ? `Magu ${maguId} uses the Hamming metric: give binary vectors (.npy of uint8 packed bits, .bits, .jsonl of 0/1)` : `Magu ${maguId} uses the ${m.metric} metric: give float vectors, not packed bits`,
        { maguId },
      );
    }
    const payloads = options.payloads ?? file.payloads ?? null;
    if (payloads !== null && payloads.length !== file.count) {
      throw new VectorClientError("ERR_BAD_PAYLOADS", `${payloads.length} payloads for ${file.count} vectors: give one per vector (null for none)`, { maguId });
    }
    const fragmentSize = options.fragmentSize ?? VECTOR_CLIENT_DEFAULTS.fragmentSize;
    const previous = m.fragmentCount === 0 ? undefined : await this.manifestOf(maguId, m);
    const firstRow = previous === undefined ? 0 : vectorRows(previous.manifest);
    // A deleted id is retired: members never return it and a dispute judges any entry with it false.
    const retired = previous === undefined ? new Set<bigint>() : deletedIds(previous.manifest);
    if (retired.size > 0 && file.ids !== null) {
      const row = file.ids.findIndex((id) => retired.has(id));
      if (row >= 0) {
        throw new VectorClientError(
          "ERR_VECTOR_DELETED",
          `vector row ${row}: id ${file.ids[row]} was deleted from Magu ${maguId}, and a deleted id is retired for good; nothing was sent. Give the vector a new id`,
          { maguId, row, id: file.ids[row]!.toString() },
        );
      }
    }
    // The Magu's scale: its document's, or (first batch) the largest that holds every value here;
    // a cosine Magu's is 2^14, which holds every unit vector. A Hamming Magu's bits have none.
    const cosine = m.metric === "cosine";
    const scaleExp =
      "bits" in file ? null : previous !== undefined ? manifestScaleExp(previous.manifest) : cosine ? COSINE_SCALE_EXP : chooseScaleExp(file.vectors, file.dim);
    let fragments: Buffer[];
    try {
      if ("bits" in file) {
        // readBitFile checked every bit and the padding: the rows are records as they are.
        const width = vectorSize(m.dim, "hamming");
        const records = Array.from({ length: file.count }, (_, row) => ({
          id: file.ids?.[row] ?? BigInt(firstRow + row),
          values: file.bits.subarray(row * width, (row + 1) * width),
          payload: payloads?.[row] ?? null,
        }));
        fragments = [...packRecords(records, m.dim, fragmentSize, "hamming")];
      } else {
        const vectors: FloatVector[] = [];
        for (let row = 0; row < file.count; row++) {
          const vector = file.vectors.subarray(row * file.dim, (row + 1) * file.dim);
          vectors.push({ id: file.ids?.[row] ?? BigInt(firstRow + row), vector: cosine ? this.unitVector(maguId, vector, row) : vector, payload: payloads?.[row] ?? null });
        }
        fragments = [...packVectors(vectors, m.dim, fragmentSize, scaleOfExp(scaleExp!))];
      }
    } catch (err) {
      if (err instanceof VectorValueError && err.context.scaleExp !== undefined && scaleExp !== null) {
        const { row, column, value } = err.context;
        throw new VectorClientError(
          "ERR_VECTOR_SCALE",
          `vector row ${row}, column ${column}: value ${value} does not fit Magu ${maguId}'s quantization scale 2^${scaleExp} ` +
            `(fixed by its first batch; it holds |x| below ${formatNumber(scaleLimit(scaleExp))}); nothing was sent. ` +
            `Add these vectors to a new vector Magu (its first batch picks a scale that holds them), or bring them into this Magu's range`,
          { maguId, row, column, value, scaleExp, limit: scaleLimit(scaleExp) },
          err,
        );
      }
      throw err;
    }
    const size = recordSize(m.dim, m.metric);
    const added: VectorFragmentInfo[] = fragments.map((bytes) => {
      const root = fragmentRoot(bytes);
      return { cid: cidOfFragmentRoot(root), root: root.toString("hex"), size: bytes.length, count: bytes.length / size };
    });
    const bytes = fragments.reduce((n, f) => n + f.length, 0);
    const progress = new ProgressTracker(options.onProgress, { phase: "pushing fragments to their holders", bytesTotal: bytes, bytesEncoded: bytes });
    const { docCid, missing, fragmentCount } = await this.commitFragments(maguId, m, previous?.manifest, added, fragments, scaleExp, progress);
    progress.set({ phase: "done" });
    if (scaleExp !== null) this.scales.set(maguId, Promise.resolve(scaleExp));
    this.log.info("vectors added", { magu: maguId.toString(), vectors: file.count, fragments: added.length, scaleExp });
    return { maguId, vectors: file.count, firstRow, fragments: added.length, fragmentCount, manifestCid: docCid, scaleExp, missing };
  }

  async delete(maguId: bigint, ids: readonly bigint[], options: { fragmentSize?: number } = {}): Promise<DeleteResult> {
    const m = await this.magu(maguId);
    if (m.owner.toLowerCase() !== this.address.toLowerCase()) {
      throw new VectorClientError("ERR_MAGU_NOT_OWNER", `Magu ${maguId} belongs to ${m.owner}, not to ${this.address}: only its owner deletes vectors`, { maguId });
    }
    this.requireActive(maguId, m);
    if (ids.length === 0) throw new VectorClientError("ERR_BAD_IDS", "no ids to delete: give at least one", { maguId });
    const seen = new Set<bigint>();
    for (const id of ids) {
      if (typeof id !== "bigint" || id < 0n || isControlId(id)) {
        throw new VectorClientError("ERR_BAD_IDS", `id ${String(id)} is not a vector id (an integer in [0, ${CONTROL_ID_MIN - 1n}])`, { maguId });
      }
      if (seen.has(id)) throw new VectorClientError("ERR_BAD_IDS", `id ${id} is given twice`, { maguId });
      seen.add(id);
    }
    if (m.fragmentCount === 0) throw new VectorClientError("ERR_BAD_IDS", `Magu ${maguId} holds no vectors yet: there is nothing to delete`, { maguId });
    const previous = await this.manifestOf(maguId, m);
    const before = deletedIds(previous.manifest);
    const fresh = ids.filter((id) => !before.has(id));
    const already = ids.length - fresh.length;
    if (fresh.length === 0) {
      return { maguId, deleted: 0, alreadyDeleted: already, fragments: 0, fragmentCount: m.fragmentCount, manifestCid: previous.cid, missing: [] };
    }
    const fragmentSize = options.fragmentSize ?? VECTOR_CLIENT_DEFAULTS.fragmentSize;
    let fragments: Buffer[];
    try {
      fragments = packTombstones(fresh, m.dim, m.metric, fragmentSize);
    } catch (err) {
      throw new VectorClientError("ERR_BAD_IDS", `Magu ${maguId}: ${describeError(err)}`, { maguId }, err);
    }
    const size = recordSize(m.dim, m.metric);
    const perRecord = tombstonesPerRecord(size - 8);
    let next = 0;
    const added: VectorFragmentInfo[] = fragments.map((bytes) => {
      const root = fragmentRoot(bytes);
      const count = bytes.length / size;
      const deleted = fresh.slice(next, next + count * perRecord);
      next += deleted.length;
      return { cid: cidOfFragmentRoot(root), root: root.toString("hex"), size: bytes.length, count, deleted };
    });
    const scaleExp = m.metric === "hamming" ? null : manifestScaleExp(previous.manifest);
    const { docCid, missing, fragmentCount } = await this.commitFragments(maguId, m, previous.manifest, added, fragments, scaleExp);
    this.documents.delete(maguId);
    this.log.info("vectors deleted", { magu: maguId.toString(), deleted: fresh.length, fragments: added.length });
    return { maguId, deleted: fresh.length, alreadyDeleted: already, fragments: added.length, fragmentCount, manifestCid: docCid, missing };
  }

  /**
   * Commits `added` (whose bytes are `fragments`) after the fragments of `previous`: in groups of
   * `commitGroup`, each proposed, delivered (the document to every member, each fragment to its r
   * holders), acknowledged and committed (batch.ts); up to r - 1 members may be missing.
   */
  private async commitFragments(
    maguId: bigint,
    m: MaguView,
    previous: VectorManifest | undefined,
    added: readonly VectorFragmentInfo[],
    fragments: readonly Buffer[],
    scaleExp: number | null,
    progress?: ProgressTracker,
  ): Promise<{ docCid: CID; missing: MissingMember[]; fragmentCount: number }> {
    const all = [...(previous?.fragments ?? []), ...added];
    if (all.length > m.maxFragments) {
      const left = m.maxFragments - m.fragmentCount;
      throw new VectorClientError("ERR_MAGU_FULL", `Magu ${maguId} has ${left} paid fragments left, this batch needs ${added.length}: use a larger --fragment-size or a new Magu`, { maguId, left });
    }
    // Each group of commitGroup fragments is one batch (batch.ts): proposed to the members,
    // delivered (the document to every member, each fragment to its r holders), acknowledged and
    // then committed; up to r - 1 members may be missing.
    const info = await this.contracts.maguRegistry.read.maguInfo([maguId]);
    const unreachable = new Map<number, { address: Address; error: string }>();
    const slots: Array<SlotMember | undefined> = await Promise.all(
      info.members.map(async (address, slot) => {
        if (ZERO_ADDRESS.test(address)) return undefined;
        try {
          return { address, peerId: await this.peer(address) };
        } catch (err) {
          unreachable.set(slot, { address, error: `registered address unusable: ${describeError(err)}` });
          return undefined;
        }
      }),
    );
    const previousCount = info.fragmentCount;
    const holders = (i: number): number[] => holdersVector(maguId, previousCount + i, m.members.length, m.replication);
    progress?.set({ fragmentsTotal: added.reduce((n, _f, i) => n + holders(i).length, 0) });
    let batchNumber = info.batches;
    const missing = new Map<number, MissingMember>();
    let docCid: CID | undefined;
    for (let from = 0; from < added.length; from += VECTOR_CLIENT_DEFAULTS.commitGroup) {
      const to = Math.min(added.length, from + VECTOR_CLIENT_DEFAULTS.commitGroup);
      const upTo = all.slice(0, previousCount + to);
      const doc = encodeVectorManifest({ maguId, dim: m.dim, metric: m.metric, fragments: upTo, ...(scaleExp !== null ? { scaleExp } : {}) });
      const rootsOf = (list: readonly VectorFragmentInfo[]): Buffer[] => list.map((f) => Buffer.from(f.root, "hex"));
      const plan = {
        maguId,
        batch: batchNumber,
        committedRoots: rootsOf(upTo.slice(0, previousCount + from)),
        newRoots: rootsOf(upTo.slice(previousCount + from)),
        indexCid: doc.cid,
        slots,
        unreachable,
        tolerated: m.replication - 1,
      };
      let result;
      try {
        result = await deliverBatch(
          plan,
          {
            libp2p: this.running().libp2p,
            clients: this.clients,
            deployment: this.init.deployment,
            commit: (args) => this.send("MaguRegistry.commitData", this.contracts.maguRegistry.write.commitData(args)),
            log: this.log,
            requestTimeoutMs: VECTOR_CLIENT_DEFAULTS.transferTimeoutMs,
          },
          async (alive, fail) => {
            await Promise.all(
              [...alive].map((slot) => this.pushWithRetry(slots[slot]!.peerId, doc.cid, doc.bytes, slots[slot]!.address).catch((err: unknown) => fail(slot, err))),
            );
            const jobs: Array<{ slot: number; i: number }> = [];
            for (let i = from; i < to; i++) {
              for (const slot of holders(i)) jobs.push({ slot, i });
            }
            let next = 0;
            const worker = async (): Promise<void> => {
              while (next < jobs.length) {
                const job = jobs[next++]!;
                if (!alive.has(job.slot)) continue;
                await this.pushWithRetry(slots[job.slot]!.peerId, added[job.i]!.cid, fragments[job.i]!, slots[job.slot]!.address).then(
                  () => progress?.add("fragmentsPushed"),
                  (err: unknown) => fail(job.slot, err),
                );
              }
            };
            await Promise.all(Array.from({ length: Math.min(VECTOR_CLIENT_DEFAULTS.pushConcurrency, jobs.length) }, worker));
          },
          progress,
        );
      } catch (err) {
        if (err instanceof BatchUnavailableError) throw new VectorClientError("ERR_NOT_AVAILABLE", err.message, { maguId, missing: err.missing }, err);
        throw err;
      }
      for (const miss of result.missing) missing.set(miss.slot, miss);
      batchNumber++;
      progress?.set({ phase: "pushing fragments to their holders" });
      await pushToValidators(this.contracts, this.running(), [{ cid: doc.cid, bytes: doc.bytes }], {
        timeoutMs: VECTOR_CLIENT_DEFAULTS.transferTimeoutMs,
        onError: (validator, err) => this.log.warn("validator did not take the vector document", { validator, error: describeError(err) }),
      });
      docCid = doc.cid;
    }
    return { docCid: docCid!, missing: [...missing.values()], fragmentCount: all.length };
  }

  /** Pushes with retries; the last failure throws ERR_PUSH_FAILED. */
  private async pushWithRetry(peer: PeerId, cid: CID, bytes: Uint8Array, address: Address): Promise<void> {
    let last: unknown;
    for (let attempt = 1; attempt <= VECTOR_CLIENT_DEFAULTS.pushAttempts; attempt++) {
      try {
        await this.running().pushFragment(peer, cid, bytes, { timeoutMs: VECTOR_CLIENT_DEFAULTS.transferTimeoutMs });
        return;
      } catch (err) {
        last = err;
      }
    }
    throw new VectorClientError("ERR_PUSH_FAILED", `pushing ${cid} to ${address} failed ${VECTOR_CLIENT_DEFAULTS.pushAttempts} times: ${describeError(last)}`, { cid: cid.toString(), address }, last);
  }

  async search(maguId: bigint, query: ArrayLike<number>, k: number, options: SearchOptions = {}): Promise<SearchResult> {
    return (await this.searchBatch(maguId, [query], k, options))[0]!;
  }

  async searchBatch(maguId: bigint, queries: ReadonlyArray<ArrayLike<number>>, k: number, options: SearchOptions = {}): Promise<SearchResult[]> {
    const started = performance.now();
    if (!Number.isSafeInteger(k) || k < 1 || k > MAX_SEARCH_K) throw new VectorClientError("ERR_BAD_QUERY", `k must be an integer in [1, ${MAX_SEARCH_K}], got ${k}`);
    if (queries.length === 0) throw new VectorClientError("ERR_BAD_QUERY", "no queries: give at least one");
    const m = await this.cachedMagu(maguId);
    this.requireActive(maguId, m);
    const scaleExp = await this.scaleExpOf(maguId, m);
    const qs = queries.map((query, i) => {
      try {
        return this.quantizeQuery(maguId, query, m, scaleExp);
      } catch (err) {
        if (queries.length === 1 || !(err instanceof VectorClientError)) throw err;
        throw new VectorClientError(err.code as VectorClientErrorCode, `query ${i}: ${err.message}`, { ...err.context, query: i }, err);
      }
    });
    // Requests of at most 200 KB of query hex and answers of at most 7 MiB of hits.
    const hexBytes = 2 * vectorSize(m.dim, m.metric) + 4;
    const per = Math.max(1, Math.min(MAX_BATCH_QUERIES, Math.floor(200_000 / hexBytes), Math.floor((7 << 20) / (2 + 32 * k))));
    const results: SearchResult[] = [];
    for (let i = 0; i < qs.length; i += per) results.push(...(await this.searchPart(maguId, m, scaleExp, qs.slice(i, i + per), k, options, started)));
    return results;
  }

  /**
   * One request's worth of queries (see the module comment): search rounds over a cover of the
   * fragments, then, verifying, proofs of each query's merged top k from the members that gave
   * those hits; a member that fails or does not prove a hit is dropped and its fragments asked of
   * other holders, until the top k of every query is proven.
   */
  private async searchPart(maguId: bigint, m: MaguView, scaleExp: number | null, qs: VectorValues[], k: number, options: SearchOptions, started: number): Promise<SearchResult[]> {
    const n = qs.length;
    const holders = this.holdersOf(maguId, m);
    const uncovered = new Set<number>(holders.keys());
    const failedMembers = new Set<string>();
    /** Answers in, by member (lowercase address). */
    const answers = new Map<string, { member: Address; fragments: number[]; hits: HitEntry[][] }>();
    let asked = 0;
    /** The first refusal for want of a grant or of payment: the error when no member answered. */
    let refused: { code: "ERR_ACCESS_DENIED" | "ERR_SEARCH_PAYMENT"; message: string } | undefined;
    const verify = options.verify !== false;
    // Verifying, the client holds the document: its fragment roots and the ids its tombstones delete.
    const document = verify && m.fragmentCount > 0 ? await this.documentAt(maguId, m) : undefined;
    const roots = document?.roots ?? [];
    const deleted = document?.deleted ?? new Set<bigint>();
    const rejected: RejectedMember[] = [];
    // One query: its members send the proofs of their best hits with the answer, as many as their
    // share of the top k is likely to take, so the merged top k is mostly proven without a second
    // request. A batch asks after the merge: one proof request per member serves every query.
    const inline = verify && n === 1 ? inlineProofCount(k, m.replication, m.members.filter((a) => !ZERO_ADDRESS.test(a)).length) : 0;
    const request = {
      op: "search",
      magu: maguId.toString(),
      ...(n === 1 ? { query: encodeQuery(qs[0]!) } : { queries: qs.map(encodeQuery) }),
      k,
      ...(options.ef !== undefined ? { ef: options.ef } : {}),
      ...(options.exact === true ? { exact: true } : {}),
      ...(inline > 0 ? { prove: inline } : {}),
    };
    /** Proofs by `member/fragment/position`; proven hits by `query/word` with their payload. */
    const proofs = new Map<string, HitProof>();
    const proven = new Map<string, Record<string, unknown> | null>();
    const hitKey = (q: number, h: HitEntry): string => `${q}/${h.distance}/${h.id}/${h.fragment}/${h.position}`;

    /** Drops `member`'s answer: its fragments that no other answer covers are uncovered again. */
    const drop = (member: Address, err: unknown): void => {
      const key = member.toLowerCase();
      failedMembers.add(key);
      const had = answers.get(key);
      answers.delete(key);
      if (had !== undefined) {
        const still = new Set<number>();
        for (const a of answers.values()) for (const f of a.fragments) still.add(f);
        for (const f of had.fragments) if (f < holders.length && !still.has(f)) uncovered.add(f);
      }
      if (err instanceof HitNotProvenError) {
        rejected.push({ member, reason: err.message });
        this.log.warn("search: a member's hit did not prove; its answer is dropped", { member, reason: err.message });
        return;
      }
      // A member that restarted may listen at new addresses: read its registration again next time.
      this.peers.delete(key);
      if (isAccessRefusal(err)) refused ??= { code: "ERR_ACCESS_DENIED", message: describeError(err) };
      else if (isPaymentRefusal(err)) refused ??= { code: "ERR_SEARCH_PAYMENT", message: describeError(err) };
      this.log.warn("search: member failed", { member, error: describeError(err) });
    };

    const ask = async (member: Address): Promise<void> => {
      try {
        const raw = await this.askMember(maguId, member, m.searchPrice, request, n);
        if (!(raw instanceof Uint8Array)) throw new Error((raw as { error?: string } | undefined)?.error ?? "malformed answer: not a binary search answer");
        const answer = decodeSearchAnswer(raw, n, k, inline > 0 ? Math.min(MAX_PROVE_HITS, n * inline) : 0);
        const placed = (f: number): boolean => holders[f]?.some((a) => a.toLowerCase() === member.toLowerCase()) === true;
        for (const list of answer.hits) {
          for (const hit of list) {
            // A deleted id is never an answer: a member returning one ignores the owner's tombstones.
            if (deleted.has(hit.id)) throw new HitNotProvenError(`returned id ${hit.id}, which the Magu's owner deleted`);
            if (verify && hit.fragment < roots.length && !placed(hit.fragment)) throw new HitNotProvenError(`hit on fragment ${hit.fragment}, which is not placed on it`);
          }
        }
        answers.set(member.toLowerCase(), { member, fragments: answer.fragments, hits: answer.hits });
        for (const p of answer.proofs) proofs.set(`${member.toLowerCase()}/${p.fragment}/${p.position}`, p.proof);
        for (const f of answer.fragments) uncovered.delete(f);
      } catch (err) {
        drop(member, err);
      }
    };

    /** Query `q`'s top k over the answers in, one hit per id (a hit the view cannot prove yet left out when verifying). */
    const merge = (q: number): Array<{ hit: HitEntry; member: Address }> => {
      const best = new Map<bigint, { hit: HitEntry; member: Address }>();
      for (const a of answers.values()) {
        for (const hit of a.hits[q]!) {
          if (verify && hit.fragment >= roots.length) continue;
          const seen = best.get(hit.id);
          const order = seen === undefined ? -1 : compareHits(hit, seen.hit);
          // The same word from two holders: the one whose proof is in hand.
          const better = order < 0 || (order === 0 && !proofs.has(`${seen!.member.toLowerCase()}/${hit.fragment}/${hit.position}`) && proofs.has(`${a.member.toLowerCase()}/${hit.fragment}/${hit.position}`));
          if (better) best.set(hit.id, { hit, member: a.member });
        }
      }
      return [...best.values()].sort((x, y) => compareHits(x.hit, y.hit)).slice(0, k);
    };

    /** Asks proofs of every top-k hit not proven yet of the member that gave it; returns how many members were dropped. */
    const proveTop = async (): Promise<number> => {
      const wanted = new Map<string, { member: Address; hits: Array<{ q: number; hit: HitEntry }> }>();
      for (let q = 0; q < n; q++) {
        for (const { hit, member } of merge(q)) {
          if (proven.has(hitKey(q, hit))) continue;
          const key = member.toLowerCase();
          let w = wanted.get(key);
          if (w === undefined) wanted.set(key, (w = { member, hits: [] }));
          w.hits.push({ q, hit });
        }
      }
      let dropped = 0;
      await Promise.all(
        [...wanted.values()].map(async ({ member, hits }) => {
          const who = member.toLowerCase();
          try {
            const records = [...new Set(hits.map(({ hit }) => `${hit.fragment}/${hit.position}`))].filter((r) => !proofs.has(`${who}/${r}`));
            for (let i = 0; i < records.length; i += MAX_PROVE_HITS) {
              const part = records.slice(i, i + MAX_PROVE_HITS);
              const items = await this.askProofs(maguId, member, part.map((r) => r.split("/").map(Number) as [number, number]));
              part.forEach((r, j) => {
                const item = items[j]!;
                if ("error" in item) throw new Error(`no proof of its hit at fragment ${r.replace("/", " position ")}: ${item.error}`);
                proofs.set(`${who}/${r}`, item.proof);
              });
            }
            for (const { q, hit } of hits) {
              const checked = this.disprove(hit, proofs.get(`${who}/${hit.fragment}/${hit.position}`)!, roots[hit.fragment]!, qs[q]!, m);
              if (checked.error !== undefined) throw new HitNotProvenError(checked.error);
              proven.set(hitKey(q, hit), checked.payload);
            }
          } catch (err) {
            dropped++;
            drop(member, err);
          }
        }),
      );
      return dropped;
    };

    // Each round: search what no answer covers, then prove the merged top k; stop once nothing changed.
    for (let round = 0; round < 2 * (m.replication + 2); round++) {
      const plan = uncovered.size > 0 ? coverPlan(holders, uncovered, new Set([...failedMembers, ...answers.keys()])) : [];
      asked += plan.length;
      await Promise.all(plan.map(ask));
      const dropped = verify ? await proveTop() : 0;
      if (dropped === 0 && (plan.length === 0 || uncovered.size === 0)) break;
    }
    const results = qs.map((_, q): SearchResult => {
      const top = merge(q).map(({ hit }) => hit);
      // Verifying, only proven hits are returned (all of the top k unless the rounds ran out).
      const hits: VectorHit[] = verify ? top.filter((h) => proven.has(hitKey(q, h))).map((h) => ({ ...h, payload: proven.get(hitKey(q, h))! })) : top;
      const later = new Set<bigint>();
      if (verify) for (const a of answers.values()) for (const h of a.hits[q]!) if (h.fragment >= roots.length) later.add(h.id);
      return { hits, asked, failed: failedMembers.size, uncovered: [...uncovered].sort((a, b) => a - b), verified: verify, rejected, unproven: later.size, scaleExp, ms: performance.now() - started };
    });
    if (refused !== undefined && results.every((r) => r.hits.length === 0)) throw new VectorClientError(refused.code, refused.message, { maguId });
    return results;
  }

  /** Why `hit` is not proven by `proof` against `root` (`error`), or its proven payload (a JSON object, or null). */
  private disprove(hit: HitEntry, proof: HitProof, root: Buffer, query: VectorValues, m: Pick<MaguView, "dim" | "metric">): { error?: string; payload: Record<string, unknown> | null } {
    const checked = verifyHitProof(hit, proof, root, query, m.metric, m.dim);
    if (checked.error !== undefined || checked.payload === null) return { error: checked.error, payload: null };
    try {
      return { payload: JSON.parse(Buffer.from(checked.payload).toString("utf8")) as Record<string, unknown> };
    } catch {
      return { error: `the payload of id ${hit.id} is not JSON`, payload: null };
    }
  }

  /** The proofs of records `pairs` ([fragment, position]) that `member` returned as hits (a second, unpaid request). */
  private async askProofs(maguId: bigint, member: Address, pairs: Array<[number, number]>): Promise<ProveItem[]> {
    const peer = await this.peer(member);
    const answer = await this.access!.read(peer, maguId, async () => {
      const a = await searchRequest(this.running().libp2p, peer, { op: "prove", magu: maguId.toString(), hits: pairs }, { limits: { timeoutMs: VECTOR_CLIENT_DEFAULTS.searchTimeoutMs }, what: "prove" });
      const error = (a as { error?: unknown } | undefined)?.error;
      if (!(a instanceof Uint8Array) && typeof error === "string" && isAccessRefusal(new Error(error))) throw new Error(error);
      return a;
    });
    if (!(answer instanceof Uint8Array)) throw new Error(`prove: ${(answer as { error?: string } | undefined)?.error ?? "malformed answer: not a binary prove answer"}`);
    return decodeProveAnswer(answer, pairs.length);
  }

  /** Holders of each fragment by placement, computed once per Magu view (5 hashes a fragment). */
  private readonly holderCache = new WeakMap<MaguView, Address[][]>();

  private holdersOf(maguId: bigint, m: MaguView): Address[][] {
    let holders = this.holderCache.get(m);
    if (holders === undefined) {
      holders = [];
      for (let f = 0; f < m.fragmentCount; f++) {
        holders.push(holdersVector(maguId, f, m.members.length, m.replication).map((s) => m.members[s]!).filter((a) => !ZERO_ADDRESS.test(a)));
      }
      this.holderCache.set(m, holders);
    }
    return holders;
  }

  /**
   * Row `row` of a batch for cosine Magu `maguId`, scaled to unit length (ERR_ZERO_VECTOR for a
   * row of zeros: it has no direction).
   */
  private unitVector(maguId: bigint, vector: ArrayLike<number>, row: number): Float64Array {
    try {
      return normalizeVector(vector, row);
    } catch (err) {
      if (!(err instanceof VectorZeroError)) throw err;
      throw new VectorClientError(
        "ERR_ZERO_VECTOR",
        `vector row ${row}: every component is zero, and Magu ${maguId} uses the cosine metric, which compares directions: ` +
          "a zero vector has none; nothing was sent. Drop the row or give it a nonzero component",
        { maguId, row },
        err,
      );
    }
  }

  /**
   * The int16 query at the Magu's scale 2^scaleExp; a cosine Magu's query is scaled to unit length
   * first. A Magu without data has no scale
   * yet: the query is then only checked (at the scale its own values would pick), its search finds
   * nothing. A Hamming Magu's query is its dim bits as 0/1 numbers, packed ({@link packBits}).
   */
  private quantizeQuery(maguId: bigint, query: ArrayLike<number>, m: Pick<MaguView, "dim" | "metric">, scaleExp: number | null): VectorValues {
    const { dim } = m;
    if (m.metric === "hamming") return this.bitQuery(maguId, query, dim);
    if (query.length !== dim) throw new VectorClientError("ERR_BAD_QUERY", `the query has ${query.length} components, the Magu's dimension is ${dim}`);
    const cosine = m.metric === "cosine";
    try {
      const values = cosine ? normalizeVector(query) : query;
      return quantize(values, dim, 0, scaleOfExp(scaleExp ?? (cosine ? COSINE_SCALE_EXP : chooseScaleExp(values, dim))));
    } catch (err) {
      if (err instanceof VectorValueError && err.context.scaleExp !== undefined && scaleExp !== null) {
        const { column, value } = err.context;
        throw new VectorClientError(
          "ERR_BAD_QUERY",
          `bad query: component ${column} (${value}) does not fit Magu ${maguId}'s quantization scale 2^${scaleExp} ` +
            `(fixed by its first batch; it and every record in the Magu hold |x| below ${formatNumber(scaleLimit(scaleExp))}): give a query within that range`,
          { maguId, column, value, scaleExp },
          err,
        );
      }
      if (err instanceof VectorZeroError) {
        throw new VectorClientError(
          "ERR_BAD_QUERY",
          `bad query: every component is zero, and Magu ${maguId} uses the cosine metric, which compares directions: a zero vector has none; give a query with a nonzero component`,
          { maguId },
          err,
        );
      }
      throw new VectorClientError("ERR_BAD_QUERY", `bad query: ${(err as Error).message}`, {}, err);
    }
  }

  /** A Hamming Magu's query: `dim` components, each 0 or 1, packed (ERR_BAD_QUERY names a bad component). */
  private bitQuery(maguId: bigint, query: ArrayLike<number>, dim: number): Uint8Array {
    try {
      return packBits(query, dim);
    } catch (err) {
      if (err instanceof VectorDimensionError) {
        throw new VectorClientError("ERR_BAD_QUERY", `bad query: it has ${query.length} bits, Magu ${maguId}'s binary vectors have ${dim}: give exactly ${dim} bits 0/1`, { maguId }, err);
      }
      if (err instanceof VectorBitError) {
        const { column, value } = err.context;
        throw new VectorClientError("ERR_BAD_QUERY", `bad query: bit ${column} is ${value}, not 0 or 1 (Magu ${maguId} uses the Hamming metric): give ${dim} bits 0/1`, { maguId, column }, err);
      }
      throw new VectorClientError("ERR_BAD_QUERY", `bad query: ${(err as Error).message}`, {}, err);
    }
  }

  async searchOnChain(maguId: bigint, query: ArrayLike<number>, k: number, fee: bigint): Promise<OnChainSearchResult> {
    const started = performance.now();
    const m = await this.magu(maguId);
    this.requireActive(maguId, m);
    const scaleExp = await this.scaleExpOf(maguId, m);
    const q = this.quantizeQuery(maguId, query, m, scaleExp);
    const market = this.contracts.searchMarket;
    // approve sets (not adds to) the allowance: one approve + submit pair at a time per client.
    const submitted = this.submitting.then(async () => {
      if (fee > 0n) await this.send("MuriToken.approve", this.contracts.token.write.approve([market.address, fee]));
      const hash = await market.write.submit([maguId, encodeQuery(q), BigInt(k), fee]);
      return { hash, block: await this.send("SearchMarket.submit", Promise.resolve(hash)) };
    });
    this.submitting = submitted.catch(() => undefined);
    const { hash, block: submitBlock } = await submitted;
    const receipt = await this.clients.publicClient.getTransactionReceipt({ hash });
    const event = parseEventLogs({ abi: searchMarketAbi, logs: receipt.logs, eventName: "TaskSubmitted" })[0];
    if (event === undefined) throw new VectorClientError("ERR_TX_FAILED", "SearchMarket.submit emitted no TaskSubmitted event");
    const task = event.args.task;
    const deadline = Date.now() + VECTOR_CLIENT_DEFAULTS.onchainTimeoutMs;
    let finalizedBy: "self" | "other" = "other";
    for (;;) {
      const answer = await taskAnswer(this.contracts, this.clients.publicClient, task);
      if (answer !== undefined) return { ...answer, scaleExp: m.metric === "hamming" ? null : (scaleExp ?? chooseScaleExp(query, m.dim)), submitBlock, finalizedBy, ms: performance.now() - started };
      const head = await this.clients.publicClient.getBlockNumber({ cacheTime: 0 });
      if (head >= event.args.disputeDeadline + VECTOR_CLIENT_DEFAULTS.finalizeGraceBlocks) {
        try {
          if (await finalizeTask(this.contracts, this.clients.publicClient, task)) finalizedBy = "self";
        } catch (err) {
          this.log.warn("finalize failed; retrying", { task: task.toString(), error: describeError(err) });
        }
        continue;
      }
      if (Date.now() > deadline) throw new VectorClientError("ERR_TIMEOUT", `task ${task} was not finalized within ${VECTOR_CLIENT_DEFAULTS.onchainTimeoutMs / 1000} s`, { task });
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }
}

/** A range limit for messages: 6 significant digits. */
function formatNumber(x: number): string {
  return Number(x.toPrecision(6)).toString();
}

/**
 * How many of its best hits a member proves inline for one query of `k`: a member holds a share
 * s = r / members of the fragments, so about k·s of the top k are its (fewer once the merge keeps
 * one copy of a record two holders return); 1.5 standard deviations more (binomial) cover its
 * share in ~95% of searches (k = 10, r = 2 of 5: 7 of its 10). The rest is asked after the merge.
 */
export function inlineProofCount(k: number, replication: number, members: number): number {
  const s = Math.min(1, replication / Math.max(1, members));
  return Math.min(k, Math.ceil(k * s + 1.5 * Math.sqrt(k * s * (1 - s))));
}

/**
 * Members to ask so every fragment in `uncovered` is covered by one of them: repeatedly the member
 * holding the most uncovered fragments (ties by address), skipping failed members.
 */
export function coverPlan(holders: readonly (readonly Address[])[], uncovered: ReadonlySet<number>, failed: ReadonlySet<string>): Address[] {
  const left = new Set(uncovered);
  const plan: Address[] = [];
  while (left.size > 0) {
    const counts = new Map<string, { address: Address; n: number }>();
    for (const f of left) {
      for (const a of holders[f] ?? []) {
        if (failed.has(a.toLowerCase())) continue;
        const c = counts.get(a.toLowerCase()) ?? { address: a, n: 0 };
        c.n++;
        counts.set(a.toLowerCase(), c);
      }
    }
    if (counts.size === 0) break;
    const best = [...counts.values()].sort((x, y) => y.n - x.n || x.address.toLowerCase().localeCompare(y.address.toLowerCase()))[0]!;
    plan.push(best.address);
    for (const f of [...left]) if ((holders[f] ?? []).some((a) => a.toLowerCase() === best.address.toLowerCase())) left.delete(f);
  }
  return plan;
}
