/**
 * Searching what a browser holds (issue 16): the records of a Magu's fragments in the IndexedDB
 * cache, decoded once into typed rows (`HeldRows`), searched either by an exact scan or through a
 * graph index (HNSW: hnswlib compiled to WebAssembly, the `hnswlib-wasm` package) whose candidates
 * are ranked again by the exact distance.
 *
 * Which one answers is a measurement (bench/light-index.ts in headless Chromium, docs/BENCHMARKS.md,
 * "The browser light client's search over what it holds"). The scan is exact, costs nothing to set
 * up and takes time in proportion to rows x dim: 2 ms for 10k rows of dim 128, 15 ms for 50k, 82 ms
 * for 250k (a full 64 MiB cache). The graph answers in 0.4-1.3 ms but costs 16 s of building at 50k
 * rows (200 s at 250k), repaid only after about a thousand searches. So the scan answers while it
 * stays within a frame (`GRAPH_MIN_COMPONENTS`, 50k rows of dim 128); past that the first search
 * starts building the graph in the background (in slices: the page stays responsive), searches are
 * scanned until it is ready and use it after. Hamming Magus are always scanned: hnswlib has no
 * Hamming space, and a popcount scan is the cheapest of the four.
 *
 * Distances are the canonical ones (`canonicalDistance` in data/vectors.ts): squared L2, the negated
 * inner product (ip and cosine) of the int16 components, and popcounts. They are computed in float64
 * here, which is exact: a record fits one fragment, so a vector has fewer than 2^19 components, each
 * term is below 2^32, and every partial sum stays below 2^51 < 2^53. Ties go by id, as `compareHits`
 * orders them.
 */
import { CONTROL_ID_MIN, readVector, recordSize, vectorSize, type HitEntry, type VectorMetric, type VectorValues } from "../data/vectors.js";

/**
 * Rows x dim past which the graph answers once it is built: 50k rows of dim 128, which a scan
 * searches in about 15 ms in headless Chromium here (bench/light-index.ts).
 */
export const GRAPH_MIN_COMPONENTS = 50_000 * 128;
/** The graph's parameters: the nodes' (agents/index: M 16, efConstruction 100). */
export const GRAPH_M = 16;
export const GRAPH_EF_CONSTRUCTION = 100;
/**
 * Candidates asked of the graph per query when the caller gives no `ef`. Twice the nodes' default:
 * measured recall@10 1.000 at 50k rows of dim 128 and 0.927 at 250k, 0.5-1.3 ms a search.
 */
export const GRAPH_DEFAULT_EF = 128;
/** Rows inserted into the graph between two yields to the page's event loop. */
const GRAPH_SLICE = 2_000;

const POPCOUNT = Uint8Array.from({ length: 256 }, (_, i) => {
  let n = 0;
  for (let b = i; b !== 0; b >>= 1) n += b & 1;
  return n;
});

/**
 * A Magu's held records, decoded: row `r` is id `ids[r]` at (`fragments[r]`, `positions[r]`), its
 * vector at `values[r * width .. (r + 1) * width]` (int16 components, or packed bits for Hamming).
 * Control and deleted records are left out.
 */
export class HeldRows {
  readonly width: number;
  count = 0;
  ids: BigUint64Array;
  fragments: Uint32Array;
  positions: Uint32Array;
  values: Int16Array | Uint8Array;

  constructor(
    readonly dim: number,
    readonly metric: VectorMetric,
    capacity = 1024,
  ) {
    this.width = metric === "hamming" ? vectorSize(dim, metric) : dim;
    this.ids = new BigUint64Array(capacity);
    this.fragments = new Uint32Array(capacity);
    this.positions = new Uint32Array(capacity);
    this.values = metric === "hamming" ? new Uint8Array(capacity * this.width) : new Int16Array(capacity * this.width);
  }

  private grow(): void {
    const capacity = this.ids.length * 2;
    const ids = new BigUint64Array(capacity);
    ids.set(this.ids);
    const fragments = new Uint32Array(capacity);
    fragments.set(this.fragments);
    const positions = new Uint32Array(capacity);
    positions.set(this.positions);
    const values = this.metric === "hamming" ? new Uint8Array(capacity * this.width) : new Int16Array(capacity * this.width);
    values.set(this.values);
    Object.assign(this, { ids, fragments, positions, values });
  }

  /**
   * Adds the whole records of `bytes` (a cached page), the first at record `firstPosition` of
   * `fragment`; records whose id is a control id or in `deleted` are skipped.
   */
  addRecords(bytes: Uint8Array, fragment: number, firstPosition: number, deleted: ReadonlySet<bigint>): void {
    const rs = recordSize(this.dim, this.metric);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let o = 0, p = firstPosition; o + rs <= bytes.length; o += rs, p++) {
      const id = view.getBigUint64(o, false);
      if (id >= CONTROL_ID_MIN || deleted.has(id)) continue;
      if (this.count === this.ids.length) this.grow();
      const r = this.count++;
      this.ids[r] = id;
      this.fragments[r] = fragment;
      this.positions[r] = p;
      if (this.metric === "hamming") {
        this.values.set(readVector(bytes, o + 8, this.dim, this.metric), r * this.width); // masks the padding bits
      } else {
        const v = this.values as Int16Array;
        for (let c = 0, at = r * this.width, b = o + 8; c < this.width; c++, b += 2) v[at + c] = view.getInt16(b, false);
      }
    }
  }

  /** The canonical distance of row `r` from `query`, as an exact float64. */
  distance(query: VectorValues, r: number): number {
    const at = r * this.width;
    let sum = 0;
    if (this.metric === "hamming") {
      const v = this.values as Uint8Array;
      for (let c = 0; c < this.width; c++) sum += POPCOUNT[v[at + c]! ^ query[c]!]!;
      return sum;
    }
    const v = this.values as Int16Array;
    if (this.metric === "l2") {
      for (let c = 0; c < this.width; c++) {
        const d = v[at + c]! - query[c]!;
        sum += d * d;
      }
      return sum;
    }
    for (let c = 0; c < this.width; c++) sum += v[at + c]! * query[c]!;
    return -sum;
  }

  hit(r: number, distance: number): HitEntry {
    return { distance: BigInt(distance), id: this.ids[r]!, fragment: this.fragments[r]!, position: this.positions[r]! };
  }
}

/** The best `k` rows seen, by (distance, id), kept sorted. */
class Best {
  readonly rows: number[] = [];
  readonly dists: number[] = [];
  constructor(
    private readonly k: number,
    private readonly held: HeldRows,
  ) {}

  offer(r: number, d: number): void {
    const n = this.rows.length;
    if (n === this.k) {
      const worst = this.dists[n - 1]!;
      if (d > worst || (d === worst && this.held.ids[r]! >= this.held.ids[this.rows[n - 1]!]!)) return;
    }
    let i = n;
    while (i > 0 && (this.dists[i - 1]! > d || (this.dists[i - 1] === d && this.held.ids[this.rows[i - 1]!]! > this.held.ids[r]!))) i--;
    this.rows.splice(i, 0, r);
    this.dists.splice(i, 0, d);
    if (this.rows.length > this.k) {
      this.rows.pop();
      this.dists.pop();
    }
  }

  hits(): HitEntry[] {
    return this.rows.map((r, i) => this.held.hit(r, this.dists[i]!));
  }
}

/** The exact top `k` of `held` for `query` (int16 components or packed bits, as the Magu's records). */
export function scanHeld(held: HeldRows, query: VectorValues, k: number): HitEntry[] {
  const best = new Best(k, held);
  for (let r = 0; r < held.count; r++) best.offer(r, held.distance(query, r));
  return best.hits();
}

/** The parts of hnswlib-wasm used here. */
interface HnswIndex {
  initIndex(maxElements: number, m: number, efConstruction: number, randomSeed: number): void;
  addPoints(items: Float32Array[], labels: number[], replaceDeleted: boolean): void;
  setEfSearch(ef: number): void;
  searchKnn(query: Float32Array, k: number, filter: undefined): { neighbors: number[]; distances: number[] };
  getCurrentCount(): number;
}
interface HnswLib {
  HierarchicalNSW: new (space: "l2" | "ip", dim: number, autoSaveFilename: string) => HnswIndex;
}

let library: Promise<HnswLib> | undefined;
/**
 * hnswlib-wasm, loaded the first time a graph is built (its WebAssembly is ~0.9 MB of the bundle).
 * Its type declarations do not export `loadHnswlib`, which its module does.
 */
function hnswlib(): Promise<HnswLib> {
  library ??= import("hnswlib-wasm").then((m) => (m as unknown as { loadHnswlib(): Promise<HnswLib> }).loadHnswlib());
  library.catch(() => (library = undefined));
  return library;
}

/**
 * An HNSW graph over `HeldRows` (l2, ip or cosine): hnswlib's float32 distances pick candidates,
 * the exact canonical distance ranks them.
 */
export class HeldGraph {
  private constructor(
    readonly held: HeldRows,
    private readonly index: HnswIndex,
    readonly buildMs: number,
  ) {}

  /**
   * Builds the graph over every row of `held`, `GRAPH_SLICE` rows at a time with a yield to the
   * event loop between slices; `signal` stops it between slices.
   */
  static async build(held: HeldRows, options: { m?: number; efConstruction?: number; signal?: AbortSignal } = {}): Promise<HeldGraph> {
    if (held.metric === "hamming") throw new Error("a Hamming Magu has no graph index here: hnswlib has no Hamming space (its records are scanned)");
    const started = performance.now();
    const lib = await hnswlib();
    const index = new lib.HierarchicalNSW(held.metric === "l2" ? "l2" : "ip", held.dim, "");
    index.initIndex(Math.max(1, held.count), options.m ?? GRAPH_M, options.efConstruction ?? GRAPH_EF_CONSTRUCTION, 100);
    const values = held.values as Int16Array;
    for (let from = 0; from < held.count; from += GRAPH_SLICE) {
      options.signal?.throwIfAborted();
      const to = Math.min(held.count, from + GRAPH_SLICE);
      const items: Float32Array[] = [];
      const labels: number[] = [];
      for (let r = from; r < to; r++) {
        items.push(Float32Array.from(values.subarray(r * held.width, (r + 1) * held.width)));
        labels.push(r);
      }
      index.addPoints(items, labels, false);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    return new HeldGraph(held, index, performance.now() - started);
  }

  /** The top `k` of the `max(k, ef)` candidates the graph finds, by exact distance. */
  search(query: Int16Array, k: number, ef = GRAPH_DEFAULT_EF): HitEntry[] {
    const n = Math.min(this.held.count, Math.max(k, ef));
    if (n === 0) return [];
    this.index.setEfSearch(Math.max(n, ef));
    const { neighbors } = this.index.searchKnn(Float32Array.from(query), n, undefined);
    const best = new Best(k, this.held);
    for (const r of neighbors) best.offer(r, this.held.distance(query, r));
    return best.hits();
  }
}
