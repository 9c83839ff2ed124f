/**
 * Proofs carried by an off-chain search hit (docs/SEARCH.md § Verified off-chain answers).
 *
 * A hit names a record: (fragment f, position p) holding `id` at `distance` from the query. The
 * record occupies bytes [p·rs, p·rs + rs) of fragment f (rs = recordSize(dim, metric): 8 + 2·dim, or
 * 8 + ceil(dim / 8) for a Hamming Magu's packed bits) and may straddle two
 * 1024-byte leaves. Its proof is those leaves (the last zero-padded as in the tree) and, for each,
 * its sibling path to the fragment's tree root; the fragment's size is bound into the fragment root
 * (merkle.ts `hashFragmentRoot`). Whoever knows the fragment roots the chain commits (the Magu's
 * vector index document, which folds to `MaguRegistry` root) checks a hit without the fragment:
 * the leaves prove against the root, the record is read from them, and its id and canonical distance
 * to the query must be the hit's. The same leaves and paths are what `SearchMarket.dispute` takes.
 *
 * The leaves extend past the record to what decides its payload (vectors.ts `readPayload`): the
 * payload's chunk records when it has one, else the next record's id (or nothing at the fragment's
 * end), so a member can neither leave a payload out nor attach another record's.
 *
 * What a proof cannot show: that the member searched everything it covers (a member can leave out a
 * true hit). Off-chain that is bounded by asking the fragment's other holders; on chain by disputes
 * over each member's revealed list and the merge of replicas.
 */
import { FRAGMENT_SIZE, LEAF_SIZE } from "./constants.js";
import { InvalidParameterError } from "./errors.js";
import { HASH_SIZE, depthFor, leafCount, leafSiblings, verifyLeafProof, type FragmentTree } from "./merkle.js";
import { canonicalDistance, MAX_PAYLOAD_BYTES, PAYLOAD_LENGTH_SIZE, readPayload, readVector, recordSize, VECTOR_ID_SIZE, type HitEntry, type VectorMetric, type VectorValues } from "./vectors.js";

/** The leaves under one record and their paths. */
export interface HitProof {
  /** Size of the fragment in bytes (bound into its root). */
  readonly size: number;
  /** The leaves covering the record, 1024 bytes each, concatenated. */
  readonly leaves: Buffer;
  /** Each leaf's sibling hashes bottom-up (tree depth of them), concatenated leaf after leaf. */
  readonly siblings: Buffer;
}

/** The leaves [first, last] that hold record `position` of a fragment of dimension `dim` and `metric`, and its first byte. */
export function recordLeaves(position: number, dim: number, metric: VectorMetric = "l2"): { first: number; last: number; start: number } {
  if (!Number.isSafeInteger(position) || position < 0) throw new InvalidParameterError("position", position, "must be a non-negative integer");
  const rs = recordSize(dim, metric);
  const start = position * rs;
  return { first: Math.floor(start / LEAF_SIZE), last: Math.floor((start + rs - 1) / LEAF_SIZE), start };
}

/**
 * The bytes of a fragment of `size` bytes that a proof of record `position` can need: whole leaves
 * from the record's first one through the longest payload it can carry (its chunk records,
 * {@link MAX_PAYLOAD_BYTES} and the length prefix) and the next record's id, cut at the fragment's
 * end. A member that keeps the fragment's tree reads only this (about 5 KiB at dim 128, not the
 * whole fragment) and passes it to {@link buildHitProof} with its offset.
 */
export function proofWindow(position: number, dim: number, size: number, metric: VectorMetric = "l2"): { offset: number; length: number } {
  const { first, start } = recordLeaves(position, dim, metric);
  const rs = recordSize(dim, metric);
  if (start + rs > size) throw new InvalidParameterError("position", position, `record ends at byte ${start + rs}, the fragment has ${size}`);
  const chunks = Math.ceil((PAYLOAD_LENGTH_SIZE + MAX_PAYLOAD_BYTES) / (rs - VECTOR_ID_SIZE));
  const end = Math.min(size, Math.ceil((start + rs * (1 + chunks) + VECTOR_ID_SIZE) / LEAF_SIZE) * LEAF_SIZE);
  return { offset: first * LEAF_SIZE, length: end - first * LEAF_SIZE };
}

/**
 * The proof of record `position` of a fragment whose tree is `tree`, for a Magu of dimension `dim`
 * and `metric` (default: an int16 metric): the leaves from the record's first byte to the end of
 * what decides its payload. `bytes` is the whole fragment, or (with `windowOffset`) exactly the
 * part of it {@link proofWindow} names, which starts at fragment byte `windowOffset`. Throws when
 * the record lies past the end or its payload chunks are malformed.
 */
export function buildHitProof(bytes: Uint8Array, tree: FragmentTree, position: number, dim: number, metric: VectorMetric = "l2", windowOffset?: number): HitProof {
  const { first, start } = recordLeaves(position, dim, metric);
  const rs = recordSize(dim, metric);
  if (windowOffset === undefined && tree.size !== bytes.length) throw new InvalidParameterError("tree", tree.size, `built for ${tree.size} bytes, the fragment has ${bytes.length}`);
  if (start + rs > tree.size) {
    throw new InvalidParameterError("position", position, `record ends at byte ${start + rs}, the fragment has ${tree.size}`);
  }
  const offset = windowOffset ?? 0;
  if (windowOffset !== undefined) {
    const w = proofWindow(position, dim, tree.size, metric);
    if (w.offset !== windowOffset || w.length !== bytes.length) {
      throw new InvalidParameterError("bytes", bytes.length, `${bytes.length} bytes at offset ${windowOffset} are not the proof window of record ${position} (${w.length} bytes at offset ${w.offset})`);
    }
  }
  const { end } = readPayload(bytes, start - offset, rs, tree.size - offset);
  const last = Math.floor((end + offset - 1) / LEAF_SIZE);
  const n = last - first + 1;
  const leaves = Buffer.alloc(n * LEAF_SIZE);
  leaves.set(bytes.subarray(first * LEAF_SIZE - offset, Math.min((last + 1) * LEAF_SIZE, tree.size) - offset));
  const siblings = Buffer.concat(Array.from({ length: n }, (_, i) => leafSiblings(tree, first + i)).flat());
  return { size: tree.size, leaves, siblings };
}

/** Bytes of a proof's header on the wire: `size u32 | leaves u16`. */
const PROOF_HEADER_BYTES = 6;

/** Bytes {@link writeHitProof} takes for `proof`. */
export function hitProofBytes(proof: HitProof): number {
  return PROOF_HEADER_BYTES + proof.leaves.length + proof.siblings.length;
}

/**
 * Writes `proof` into `out` at `offset` as it travels in a binary search answer: `size u32 |
 * leaves u16 (count) | the leaves (1024 bytes each) | their paths (count × depth × 32 bytes, the
 * depth given by the size)`; returns the offset after it.
 */
export function writeHitProof(proof: HitProof, out: Buffer, offset: number): number {
  const n = proof.leaves.length / LEAF_SIZE;
  out.writeUInt32BE(proof.size, offset);
  out.writeUInt16BE(n, offset + 4);
  proof.leaves.copy(out, offset + PROOF_HEADER_BYTES);
  proof.siblings.copy(out, offset + PROOF_HEADER_BYTES + proof.leaves.length);
  return offset + hitProofBytes(proof);
}

/**
 * Reads a proof {@link writeHitProof} wrote at `offset` of `bytes`; throws an error naming what is
 * wrong (a size past a fragment's largest, no leaves, bytes missing). The proof itself is not
 * checked here: {@link verifyHitProof} does that.
 */
export function readHitProof(bytes: Buffer, offset: number): { proof: HitProof; end: number } {
  if (offset + PROOF_HEADER_BYTES > bytes.length) throw new Error(`proof at byte ${offset}: its ${PROOF_HEADER_BYTES}-byte header runs past the ${bytes.length}-byte answer`);
  const size = bytes.readUInt32BE(offset);
  const n = bytes.readUInt16BE(offset + 4);
  if (size < 1 || size > FRAGMENT_SIZE) throw new Error(`proof at byte ${offset}: fragment size ${size} is outside [1, ${FRAGMENT_SIZE}]`);
  if (n < 1 || n > leafCount(size)) throw new Error(`proof at byte ${offset}: ${n} leaves, a fragment of ${size} bytes has 1 to ${leafCount(size)}`);
  const leavesBytes = n * LEAF_SIZE;
  const siblingBytes = n * depthFor(leafCount(size)) * HASH_SIZE;
  const start = offset + PROOF_HEADER_BYTES;
  const end = start + leavesBytes + siblingBytes;
  if (end > bytes.length) throw new Error(`proof at byte ${offset}: ${n} leaves and their paths need ${end - offset} bytes, the answer has ${bytes.length - offset} left`);
  return { proof: { size, leaves: bytes.subarray(start, start + leavesBytes), siblings: bytes.subarray(start + leavesBytes, end) }, end };
}

/**
 * Checks `hit` against its `proof`, the fragment root the chain commits and the `query` of a Magu of
 * dimension `dim` (needed for Hamming; int16 queries default it to their length) and `metric` (int16
 * components, or a Hamming Magu's packed bits as `readVector` gives them): undefined when the record is proven and its id and distance are the hit's, else why not.
 */
export function checkHitProof(hit: HitEntry, proof: HitProof, fragmentRoot: Uint8Array, query: VectorValues, metric: VectorMetric, dim?: number): string | undefined {
  return verifyHitProof(hit, proof, fragmentRoot, query, metric, dim).error;
}

/**
 * {@link checkHitProof}, and the hit's payload read from the proven leaves: `error` says why the
 * hit does not prove; otherwise `payload` is the record's payload (UTF-8 JSON text) or null.
 */
export function verifyHitProof(
  hit: HitEntry,
  proof: HitProof,
  fragmentRoot: Uint8Array,
  query: VectorValues,
  metric: VectorMetric,
  dim?: number,
): { error?: string; payload: Uint8Array | null } {
  const no = (error: string): { error: string; payload: null } => ({ error, payload: null });
  if (dim === undefined) {
    // int16 components say their count; packed bits do not (the last byte may hold padding).
    if (metric === "hamming") throw new InvalidParameterError("dim", dim, "a Hamming Magu's dimension (bits) must be given");
    dim = query.length;
  }
  const rs = recordSize(dim, metric);
  const { first, last, start } = recordLeaves(hit.position, dim, metric);
  if (start + rs > proof.size || last >= leafCount(proof.size)) return no(`record ${hit.position} would end at byte ${start + rs}, past the fragment's ${proof.size} bytes`);
  const depth = depthFor(leafCount(proof.size));
  const n = proof.leaves.length / LEAF_SIZE;
  if (!Number.isInteger(n) || n < last - first + 1) return no(`${proof.leaves.length} bytes of leaves, the record needs at least ${last - first + 1} leaves of ${LEAF_SIZE}`);
  if (first + n > leafCount(proof.size)) return no(`${n} leaves from leaf ${first} run past the fragment's ${leafCount(proof.size)}`);
  if (proof.siblings.length !== n * depth * HASH_SIZE) return no(`${proof.siblings.length} bytes of paths, ${n} leaves of a depth-${depth} tree need ${n * depth * HASH_SIZE}`);
  for (let i = 0; i < n; i++) {
    const chunk = proof.leaves.subarray(i * LEAF_SIZE, (i + 1) * LEAF_SIZE);
    const path = Array.from({ length: depth }, (_, j) => proof.siblings.subarray((i * depth + j) * HASH_SIZE, (i * depth + j + 1) * HASH_SIZE));
    if (!verifyLeafProof(fragmentRoot, proof.size, first + i, chunk, path)) return no(`leaf ${first + i} does not prove against fragment ${hit.fragment}'s root`);
  }
  const offset = start - first * LEAF_SIZE;
  const record = proof.leaves.subarray(offset, offset + rs);
  const id = record.readBigUInt64BE(0);
  if (id !== hit.id) return no(`record ${hit.position} of fragment ${hit.fragment} holds id ${id}, not ${hit.id}`);
  // What follows the record decides its payload: the proof must reach exactly that far.
  let payload: { payload: Uint8Array | null; end: number };
  try {
    payload = readPayload(proof.leaves.subarray(0, Math.min(n * LEAF_SIZE, proof.size - first * LEAF_SIZE)), offset, rs, proof.size - first * LEAF_SIZE);
  } catch (err) {
    return no(`the leaves after record ${hit.position} do not give its payload (${(err as Error).message})`);
  }
  const need = Math.floor((payload.end - 1) / LEAF_SIZE) + 1;
  if (n !== need) return no(`${n} leaves, record ${hit.position} and what decides its payload take ${need}`);
  // A Hamming query is read like the record, its padding bits cleared (they are not part of it).
  const q = metric === "hamming" ? readVector(query as Uint8Array, 0, dim, metric) : query;
  const distance = canonicalDistance(metric, q, readVector(record, VECTOR_ID_SIZE, dim, metric));
  if (distance !== hit.distance) return no(`id ${id} is at distance ${distance}, not ${hit.distance}`);
  return { payload: payload.payload };
}
