/**
 * Merkle trees of docs/ENCODING.md, byte for byte with contracts/libraries/MerkleLib.sol:
 * - leaf = SHA-256(0x00 ‖ chunk[1024]), inner node = SHA-256(0x01 ‖ left ‖ right),
 *   fragment root = SHA-256(0x02 ‖ uint64_be(size) ‖ treeRoot);
 * - width nextPow2(count), positions >= count hold 32 zero bytes, inner nodes are hashed even over
 *   empty children (the empty subtree hash of each level is precomputed);
 * - proofs are the sibling hashes bottom-up, bound to the position by the index bits.
 *
 * Hashing goes through {@link hashBackend} (node:crypto, or the optional multi-buffer addon).
 */
import { hash as cryptoHash } from "node:crypto";
import { FRAGMENT_SIZE, LEAF_SIZE } from "./constants.js";
import { FragmentTooLargeError, IndexOutOfRangeError, InvalidParameterError } from "./errors.js";
import { hashBackend } from "./hash-backend.js";

/** Bytes in a node hash. */
export const HASH_SIZE = 32;
/** The empty position: 32 zero bytes (not a hash). */
export const EMPTY_NODE: Buffer = Buffer.alloc(HASH_SIZE);
/** Largest tree depth we precompute empty subtrees for (2^64 leaves). */
const MAX_DEPTH = 64;

const EMPTY_SUBTREES: Buffer[] = (() => {
  const out = [EMPTY_NODE];
  for (let level = 1; level <= MAX_DEPTH; level++) out.push(hashNode(out[level - 1]!, out[level - 1]!));
  return out;
})();

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Root of an all-empty subtree of height `level` (0: the empty node itself). */
export function emptySubtreeHash(level: number): Buffer {
  const hashValue = EMPTY_SUBTREES[level];
  if (hashValue === undefined) throw new IndexOutOfRangeError("empty subtree level", level, MAX_DEPTH + 1);
  return hashValue;
}

/** Leaves of a fragment of `size` bytes: max(1, ceil(size / 1024)). */
export function leafCount(size: number): number {
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidParameterError("size", size, "must be a non-negative integer");
  return size === 0 ? 1 : Math.ceil(size / LEAF_SIZE);
}

/** Depth of a tree over `count` >= 1 leaves: ceil(log2(count)), 0 for one leaf. */
export function depthFor(count: number): number {
  if (!Number.isSafeInteger(count) || count < 1) throw new InvalidParameterError("count", count, "must be a positive integer");
  let depth = 0;
  while (2 ** depth < count) depth++;
  return depth;
}

/** SHA-256(0x00 ‖ chunk) of one leaf; `chunk` (<= 1024 bytes) is zero-padded to 1024 bytes. */
export function hashLeaf(chunk: Uint8Array): Buffer {
  if (chunk.length > LEAF_SIZE) throw new InvalidParameterError("chunk", chunk, `leaf chunks are at most ${LEAF_SIZE} bytes`);
  const input = Buffer.alloc(1 + LEAF_SIZE);
  input.set(chunk, 1);
  return cryptoHash("sha256", input, "buffer");
}

/** SHA-256(0x01 ‖ left ‖ right). */
export function hashNode(left: Uint8Array, right: Uint8Array): Buffer {
  checkHash("left", left);
  checkHash("right", right);
  const input = Buffer.allocUnsafe(65);
  input[0] = 0x01;
  input.set(left, 1);
  input.set(right, 33);
  return cryptoHash("sha256", input, "buffer");
}

/** SHA-256(0x02 ‖ uint64_be(size) ‖ treeRoot): the fragment root, committing to the size. */
export function hashFragmentRoot(size: number, treeRoot: Uint8Array): Buffer {
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidParameterError("size", size, "must be a non-negative integer");
  checkHash("treeRoot", treeRoot);
  const input = Buffer.allocUnsafe(41);
  input[0] = 0x02;
  input.writeBigUInt64BE(BigInt(size), 1);
  input.set(treeRoot, 9);
  return cryptoHash("sha256", input, "buffer");
}

function checkHash(name: string, value: Uint8Array): void {
  if (!(value instanceof Uint8Array) || value.length !== HASH_SIZE) {
    throw new InvalidParameterError(name, value, `must be ${HASH_SIZE} bytes`);
  }
}

/** The levels of a tree: levels[0] holds the `count` leaf hashes, levels[depth] the root; only real nodes are stored. */
export interface MerkleLevels {
  /** Number of leaves (real positions). */
  readonly count: number;
  /** ceil(log2(count)). */
  readonly depth: number;
  /** levels[j] holds ceil(count / 2^j) nodes of 32 bytes, concatenated. */
  readonly levels: readonly Buffer[];
  /** The tree root (levels[depth]). */
  readonly root: Buffer;
}

/**
 * Folds level 0 (`count` hashes at the start of `level0`, which needs room for count + 1 nodes)
 * up to the root. With `keep`, every level is kept in its own buffer; without, the work happens in
 * place in `level0` and only the root is returned (copied).
 */
function foldLevels(level0: Buffer, count: number, keep: boolean): MerkleLevels {
  const backend = hashBackend();
  const depth = depthFor(count);
  const levels: Buffer[] = [level0.subarray(0, count * HASH_SIZE)];
  let current = level0;
  let n = count;
  for (let level = 0; level < depth; level++) {
    if (n % 2 === 1) EMPTY_SUBTREES[level]!.copy(current, n * HASH_SIZE);
    const pairs = (n + 1) >> 1;
    const next = keep ? Buffer.allocUnsafe((pairs + 1) * HASH_SIZE) : current;
    backend.hashPairs(current, pairs, next);
    current = next;
    n = pairs;
    if (keep) levels.push(current.subarray(0, n * HASH_SIZE));
  }
  const root = keep ? levels[depth]! : Buffer.from(current.subarray(0, HASH_SIZE));
  return { count, depth, levels: keep ? levels : [], root };
}

/** A fragment's full tree, kept for answering challenges. */
export interface FragmentTree extends MerkleLevels {
  /** Fragment length in bytes. */
  readonly size: number;
  /** The fragment root H(0x02 ‖ size ‖ treeRoot). */
  readonly fragmentRoot: Buffer;
}

function checkFragment(bytes: Uint8Array): void {
  if (bytes.length > FRAGMENT_SIZE) throw new FragmentTooLargeError(bytes.length, FRAGMENT_SIZE);
}

let scratchLevel: Buffer | undefined;

/** The fragment root of `bytes` (<= FRAGMENT_SIZE) without keeping the tree: the hot path. */
export function fragmentRoot(bytes: Uint8Array): Buffer {
  checkFragment(bytes);
  const count = leafCount(bytes.length);
  const needed = (count + 1) * HASH_SIZE;
  if (scratchLevel === undefined || scratchLevel.length < needed) {
    scratchLevel = Buffer.allocUnsafe(Math.max(needed, (FRAGMENT_SIZE / LEAF_SIZE + 1) * HASH_SIZE));
  }
  hashBackend().hashLeaves(bytes, bytes.length, scratchLevel);
  const { root } = foldLevels(scratchLevel, count, false);
  return hashFragmentRoot(bytes.length, root);
}

/**
 * The fragment root of bytes that arrive in pieces (a fragment received from the network): each
 * whole 1024-byte leaf is hashed as soon as it is complete, in batches through the hash backend,
 * and `root()` folds the tree. Same result as {@link fragmentRoot} over the concatenated pieces;
 * more than FRAGMENT_SIZE bytes make `root()` return undefined (no fragment has that root).
 */
export class FragmentRootHasher {
  private readonly level0 = Buffer.allocUnsafe((FRAGMENT_SIZE / LEAF_SIZE + 1) * HASH_SIZE);
  private readonly partial = Buffer.allocUnsafe(LEAF_SIZE);
  private partialBytes = 0;
  private leaves = 0;
  private size = 0;
  private done = false;

  update(chunk: Uint8Array): void {
    if (this.done) throw new InvalidParameterError("chunk", chunk.length, "the root was already taken");
    this.size += chunk.length;
    if (this.size > FRAGMENT_SIZE) return;
    const backend = hashBackend();
    let offset = 0;
    if (this.partialBytes > 0) {
      const take = Math.min(LEAF_SIZE - this.partialBytes, chunk.length);
      this.partial.set(chunk.subarray(0, take), this.partialBytes);
      this.partialBytes += take;
      offset = take;
      if (this.partialBytes < LEAF_SIZE) return;
      backend.hashLeaves(this.partial, LEAF_SIZE, this.level0.subarray(this.leaves * HASH_SIZE));
      this.leaves++;
      this.partialBytes = 0;
    }
    const whole = Math.floor((chunk.length - offset) / LEAF_SIZE);
    if (whole > 0) {
      backend.hashLeaves(chunk.subarray(offset, offset + whole * LEAF_SIZE), whole * LEAF_SIZE, this.level0.subarray(this.leaves * HASH_SIZE));
      this.leaves += whole;
      offset += whole * LEAF_SIZE;
    }
    if (offset < chunk.length) {
      this.partial.set(chunk.subarray(offset), 0);
      this.partialBytes = chunk.length - offset;
    }
  }

  /** The fragment root of everything passed to `update` (once); undefined past FRAGMENT_SIZE. */
  root(): Buffer | undefined {
    if (this.done) throw new InvalidParameterError("root", "again", "the root can be taken once");
    this.done = true;
    if (this.size > FRAGMENT_SIZE) return undefined;
    if (this.partialBytes > 0 || this.leaves === 0) {
      hashBackend().hashLeaves(this.partial, this.partialBytes, this.level0.subarray(this.leaves * HASH_SIZE));
      this.leaves++;
    }
    const { root } = foldLevels(this.level0, this.leaves, false);
    return hashFragmentRoot(this.size, root);
  }
}

/** The whole tree of a fragment (<= FRAGMENT_SIZE), kept for proofs. */
export function buildFragmentTree(bytes: Uint8Array): FragmentTree {
  checkFragment(bytes);
  const count = leafCount(bytes.length);
  const level0 = Buffer.allocUnsafe((count + 1) * HASH_SIZE);
  hashBackend().hashLeaves(bytes, bytes.length, level0);
  const levels = foldLevels(level0, count, true);
  return { ...levels, size: bytes.length, fragmentRoot: hashFragmentRoot(bytes.length, levels.root) };
}

/** Sibling hashes bottom-up for position `index` of a tree. */
function siblingsOf(tree: MerkleLevels, index: number, what: string): Buffer[] {
  if (!Number.isSafeInteger(index) || index < 0 || index >= tree.count) throw new IndexOutOfRangeError(what, index, tree.count);
  const siblings: Buffer[] = [];
  let i = index;
  for (let level = 0; level < tree.depth; level++) {
    const sibling = i ^ 1;
    const nodes = tree.levels[level]!;
    siblings.push(
      sibling * HASH_SIZE < nodes.length
        ? Buffer.from(nodes.subarray(sibling * HASH_SIZE, (sibling + 1) * HASH_SIZE))
        : EMPTY_SUBTREES[level]!,
    );
    i >>= 1;
  }
  return siblings;
}

/** Folds `node` at position `index` up through `siblings` (bottom-up): MerkleLib.processProof. */
export function processProof(node: Uint8Array, index: number, siblings: readonly Uint8Array[]): Buffer {
  let current = asBuffer(node);
  let i = index;
  for (const sibling of siblings) {
    current = (i & 1) === 0 ? hashNode(current, sibling) : hashNode(sibling, current);
    i = Math.floor(i / 2);
  }
  return current;
}

/** A challenge answer inside one fragment. */
export interface LeafProof {
  readonly leafIndex: number;
  /** The leaf's 1024 bytes (the last chunk zero-padded). */
  readonly chunk: Buffer;
  /** Sibling hashes bottom-up, `depth` of them. */
  readonly siblings: Buffer[];
}

/** The 1024-byte chunk `leafIndex` of a fragment, zero-padded. */
export function leafChunk(bytes: Uint8Array, leafIndex: number): Buffer {
  const count = leafCount(bytes.length);
  if (!Number.isSafeInteger(leafIndex) || leafIndex < 0 || leafIndex >= count) throw new IndexOutOfRangeError("leaf", leafIndex, count);
  const chunk = Buffer.alloc(LEAF_SIZE);
  chunk.set(bytes.subarray(leafIndex * LEAF_SIZE, Math.min((leafIndex + 1) * LEAF_SIZE, bytes.length)));
  return chunk;
}

/** Sibling hashes bottom-up of leaf `leafIndex` in `tree` (the path a {@link LeafProof} carries). */
export function leafSiblings(tree: FragmentTree, leafIndex: number): Buffer[] {
  return siblingsOf(tree, leafIndex, "leaf");
}

/** Proof that leaf `leafIndex` belongs to the fragment `bytes` (pass `tree` to skip rebuilding it). */
export function fragmentLeafProof(bytes: Uint8Array, leafIndex: number, tree: FragmentTree = buildFragmentTree(bytes)): LeafProof {
  if (tree.size !== bytes.length) throw new InvalidParameterError("tree", tree.size, `built for ${tree.size} bytes, fragment has ${bytes.length}`);
  return { leafIndex, chunk: leafChunk(bytes, leafIndex), siblings: siblingsOf(tree, leafIndex, "leaf") };
}

/**
 * True when `chunk` is leaf `leafIndex` of the fragment of `size` bytes whose root is `root`.
 * As ChallengeManager: size <= FRAGMENT_SIZE, proof length exactly the tree depth, index among the real leaves.
 */
export function verifyLeafProof(
  root: Uint8Array,
  size: number,
  leafIndex: number,
  chunk: Uint8Array,
  siblings: readonly Uint8Array[],
): boolean {
  if (!Number.isSafeInteger(size) || size < 0 || size > FRAGMENT_SIZE || root.length !== HASH_SIZE || chunk.length !== LEAF_SIZE) return false;
  const count = leafCount(size);
  if (!Number.isSafeInteger(leafIndex) || leafIndex < 0 || leafIndex >= count) return false;
  if (siblings.length !== depthFor(count) || siblings.some((s) => s.length !== HASH_SIZE)) return false;
  const treeRoot = processProof(hashLeaf(chunk), leafIndex, siblings);
  return hashFragmentRoot(size, treeRoot).equals(asBuffer(root));
}

/** The Magu tree over fragment roots, in fragment-index order. */
export type MaguTree = MerkleLevels;

/** Builds the Magu tree over `fragmentRoots` (F >= 1). */
export function buildMaguTree(fragmentRoots: readonly Uint8Array[]): MaguTree {
  const count = fragmentRoots.length;
  if (count < 1) throw new InvalidParameterError("fragmentRoots", count, "a Magu tree needs at least one fragment");
  const level0 = Buffer.allocUnsafe((count + 1) * HASH_SIZE);
  fragmentRoots.forEach((r, i) => {
    checkHash(`fragmentRoots[${i}]`, r);
    level0.set(r, i * HASH_SIZE);
  });
  return foldLevels(level0, count, true);
}

/** The Magu root over `fragmentRoots` (F >= 1). */
export function maguRoot(fragmentRoots: readonly Uint8Array[]): Buffer {
  return buildMaguTree(fragmentRoots).root;
}

/** Sibling hashes bottom-up proving fragment `index` under the Magu root. */
export function maguProof(tree: MaguTree, index: number): Buffer[] {
  return siblingsOf(tree, index, "fragment");
}

/**
 * The proof that a Magu tree over `fragmentRoots` keeps its first `current` fragments (what
 * `MaguRegistry.commitData` checks on an append): the fragment root at `current - 1`, then its
 * siblings bottom-up in the new tree. Empty for a first batch (`current` 0).
 */
export function appendProof(fragmentRoots: readonly Uint8Array[], current: number): Buffer[] {
  if (!Number.isSafeInteger(current) || current < 0 || current > fragmentRoots.length) {
    throw new InvalidParameterError("current", current, `must be an integer in [0, ${fragmentRoots.length}]`);
  }
  if (current === 0) return [];
  const tree = buildMaguTree(fragmentRoots);
  return [asBuffer(fragmentRoots[current - 1]!), ...maguProof(tree, current - 1)];
}

/**
 * True when `proof` (see `appendProof`) shows that the tree of `count` fragments under `root` starts
 * with the `current` fragments under `oldRoot`: the contract's check, for agents and tests.
 */
export function verifyAppendProof(oldRoot: Uint8Array, current: number, root: Uint8Array, count: number, proof: readonly Uint8Array[]): boolean {
  if (current === 0) return proof.length === 0;
  if (current > count || proof.length !== depthFor(count) + 1) return false;
  const oldDepth = depthFor(current);
  let index = current - 1;
  let node = asBuffer(proof[0]!);
  let oldNode = node;
  for (let level = 0; level < proof.length - 1; level++) {
    const sibling = proof[level + 1]!;
    if ((index & 1) === 1) {
      node = hashNode(sibling, node);
      if (level < oldDepth) oldNode = hashNode(sibling, oldNode);
    } else {
      node = hashNode(node, sibling);
      if (level < oldDepth) oldNode = hashNode(oldNode, emptySubtreeHash(level));
    }
    index = Math.floor(index / 2);
  }
  return node.equals(asBuffer(root)) && oldNode.equals(asBuffer(oldRoot));
}

/** True when `fragmentRootValue` is fragment `index` of the Magu tree of `count` fragments with root `root`. */
export function verifyMaguProof(
  root: Uint8Array,
  count: number,
  index: number,
  fragmentRootValue: Uint8Array,
  siblings: readonly Uint8Array[],
): boolean {
  if (!Number.isSafeInteger(count) || count < 1 || root.length !== HASH_SIZE || fragmentRootValue.length !== HASH_SIZE) return false;
  if (!Number.isSafeInteger(index) || index < 0 || index >= count) return false;
  if (siblings.length !== depthFor(count) || siblings.some((s) => s.length !== HASH_SIZE)) return false;
  return processProof(fragmentRootValue, index, siblings).equals(asBuffer(root));
}

/** A full storage-challenge answer: leaf -> fragment root -> Magu root. */
export interface ChallengeProof {
  readonly fragmentIndex: number;
  readonly size: number;
  readonly leafIndex: number;
  readonly chunk: Uint8Array;
  readonly leafSiblings: readonly Uint8Array[];
  readonly fragmentRoot: Uint8Array;
  readonly maguSiblings: readonly Uint8Array[];
}

/** Verifies a challenge answer against the on-chain `(maguRoot, fragmentCount)`. */
export function verifyChallengeProof(maguRootValue: Uint8Array, fragmentCount: number, proof: ChallengeProof): boolean {
  return (
    verifyLeafProof(proof.fragmentRoot, proof.size, proof.leafIndex, proof.chunk, proof.leafSiblings) &&
    verifyMaguProof(maguRootValue, fragmentCount, proof.fragmentIndex, proof.fragmentRoot, proof.maguSiblings)
  );
}
