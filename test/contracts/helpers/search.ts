/**
 * Vector search tasks (docs/SEARCH.md) built with the agents' data code: records packed by
 * agents/data/vectors.ts, fragment and Magu trees by agents/data/merkle.ts. The entry words, the
 * commitment, the merge and the dispute proof are written here from the spec, independently of
 * SearchMarket.sol, so a task that goes through shows that the two sides agree.
 */
import { createHash } from "node:crypto";
import { AbiCoder, keccak256 } from "ethers";
import { LEAF_SIZE } from "../../../agents/data/constants.js";
import { buildFragmentTree, buildMaguTree, fragmentLeafProof, leafCount, maguProof, type FragmentTree, type MaguTree } from "../../../agents/data/merkle.js";
import { innerProduct, packRecords, recordSize, squaredL2, unpackFragment, type VectorRecord } from "../../../agents/data/vectors.js";
import { hex } from "./scenario.js";

export const METRIC_L2 = 1;
export const METRIC_INNER_PRODUCT = 2;
const KEY_FLIP = 1n << 63n;
const U64 = (1n << 64n) - 1n;

/** One search hit, as a member finds it. */
export interface Hit {
  distance: bigint;
  id: bigint;
  fragment: number;
  position: number;
}

/** The 32-byte entry word: distance key ‖ id ‖ fragment ‖ position ‖ 64 zero bits. */
export function entryWord(h: Hit): bigint {
  const key = (BigInt.asUintN(64, h.distance) ^ KEY_FLIP) & U64;
  return (key << 192n) | (h.id << 128n) | (BigInt(h.fragment) << 96n) | (BigInt(h.position) << 64n);
}

export function wordHex(w: bigint): string {
  return "0x" + w.toString(16).padStart(64, "0");
}

export function decodeWord(w: bigint): Hit {
  return {
    distance: BigInt.asIntN(64, (w >> 192n) ^ KEY_FLIP),
    id: (w >> 128n) & U64,
    fragment: Number((w >> 96n) & 0xffffffffn),
    position: Number((w >> 64n) & 0xffffffffn),
  };
}

/** The canonical distance: squared L2, or the negated inner product. */
export function canonicalDistance(metric: number, query: Int16Array, values: Int16Array): bigint {
  return metric === METRIC_L2 ? squaredL2(query, values) : -innerProduct(query, values);
}

/** A query as the contract takes it: dim × int16_be. */
export function encodeQuery(q: Int16Array): string {
  const b = Buffer.alloc(2 * q.length);
  q.forEach((v, i) => b.writeInt16BE(v, 2 * i));
  return hex(b);
}

/** keccak256(abi.encode(uint256 task, address member, bytes32 salt, bytes32[] entries)). */
export function commitmentOf(task: bigint, member: string, salt: string, entries: string[]): string {
  return keccak256(AbiCoder.defaultAbiCoder().encode(["uint256", "address", "bytes32", "bytes32[]"], [task, member, salt, entries]));
}

/** Deterministic pseudo-random int16 values in [-range, range] from a label. */
export function pseudoVector(label: string, dim: number, range = 32767): Int16Array {
  const out = new Int16Array(dim);
  let block = Buffer.alloc(0);
  for (let i = 0; i < dim; i++) {
    if (2 * (i % 16) === 0) block = createHash("sha256").update(`${label}/${Math.floor(i / 16)}`).digest();
    const u = block.readUInt16BE(2 * (i % 16));
    out[i] = (u % (2 * range + 1)) - range;
  }
  return out;
}

/** A vector Magu's data: records packed into fragments, their trees, the Magu tree. */
export interface VectorData {
  dim: number;
  fragments: Buffer[];
  records: VectorRecord[][]; // per fragment, as unpacked back from its bytes
  trees: FragmentTree[];
  tree: MaguTree;
}

/** Packs `records` `perFragment` to a fragment (agents/data/vectors.ts) and builds the trees. */
export function buildVectorData(records: VectorRecord[], dim: number, perFragment: number): VectorData {
  const fragments = [...packRecords(records, dim, perFragment * recordSize(dim))].map((b) => Buffer.from(b));
  const trees = fragments.map((f) => buildFragmentTree(f));
  return {
    dim,
    fragments,
    records: fragments.map((f) => unpackFragment(f, dim)),
    trees,
    tree: buildMaguTree(trees.map((t) => t.fragmentRoot)),
  };
}

/** Every record's hit for `query`, sorted by word. */
export function allHits(data: VectorData, metric: number, query: Int16Array, fragments?: number[]): bigint[] {
  const words: bigint[] = [];
  for (const [f, recs] of data.records.entries()) {
    if (fragments && !fragments.includes(f)) continue;
    recs.forEach((r, p) => words.push(entryWord({ distance: canonicalDistance(metric, query, r.values), id: r.id, fragment: f, position: p })));
  }
  return words.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** A member's honest list: its k smallest words over the fragments it holds. */
export function memberList(data: VectorData, metric: number, query: Int16Array, held: number[], k: number): bigint[] {
  return allHits(data, metric, query, held).slice(0, k);
}

/**
 * The answer and credits of docs/SEARCH.md by brute force: every word of every list in word order,
 * the first word of each id, k of them; a credit per (final entry, list holding its distance and id).
 */
export function referenceAnswer(lists: bigint[][], k: number) {
  const all = lists.flatMap((l, i) => l.map((w) => ({ w, i }))).sort((a, b) => (a.w < b.w ? -1 : a.w > b.w ? 1 : a.i - b.i));
  const result: bigint[] = [];
  const seen = new Set<bigint>();
  for (const { w } of all) {
    const id = (w >> 128n) & U64;
    if (seen.has(id)) continue;
    if (result.length === k) break;
    seen.add(id);
    result.push(w);
  }
  const credits = lists.map((l) => result.filter((r) => l.some((w) => w >> 128n === r >> 128n)).length);
  return { result, credits, total: credits.reduce((a, b) => a + b, 0) };
}

/** The dispute proof of `entries[index]` against the data (docs/SEARCH.md, "The task" step 4). */
export function disputeProof(data: VectorData, query: string, entries: bigint[], index: number) {
  const { fragment, position } = decodeWord(entries[index]!);
  const bytes = data.fragments[fragment]!;
  const tree = data.trees[fragment]!;
  const rs = recordSize(data.dim);
  const last = leafCount(bytes.length) - 1;
  const lo = Math.min(Math.floor((position * rs) / LEAF_SIZE), last);
  const hi = Math.min(Math.floor(((position + 1) * rs - 1) / LEAF_SIZE), last);
  const leaves: string[] = [];
  const leafProofs: string[][] = [];
  for (let i = lo; i <= hi; i++) {
    const p = fragmentLeafProof(bytes, i, tree);
    leaves.push(hex(p.chunk));
    leafProofs.push(p.siblings.map(hex));
  }
  return {
    query,
    entries: entries.map(wordHex),
    index,
    size: bytes.length,
    leaves,
    leafProofs,
    fragmentProof: maguProof(data.tree, fragment).map(hex),
  };
}
