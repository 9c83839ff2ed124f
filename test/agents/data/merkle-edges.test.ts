import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { FRAGMENT_SIZE, LEAF_SIZE } from "../../../agents/data/constants.js";
import { FragmentTooLargeError, IndexOutOfRangeError, InvalidParameterError } from "../../../agents/data/errors.js";
import {
  appendProof,
  buildFragmentTree,
  buildMaguTree,
  depthFor,
  EMPTY_NODE,
  emptySubtreeHash,
  fragmentLeafProof,
  fragmentRoot,
  FragmentRootHasher,
  HASH_SIZE,
  hashFragmentRoot,
  hashLeaf,
  hashNode,
  leafChunk,
  leafCount,
  leafSiblings,
  maguProof,
  maguRoot,
  processProof,
  verifyAppendProof,
  verifyChallengeProof,
  verifyLeafProof,
  verifyMaguProof,
} from "../../../agents/data/merkle.js";

const sha = (...parts: Uint8Array[]): Buffer => {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
};
const node = (i: number): Buffer => sha(Buffer.from(`node ${i}`));
const bytesOf = (n: number, seed = 1): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + seed * 13 + (i >> 10)) & 0xff;
  return b;
};
const REASONS: Record<string, string> = {
  chunk: "leaf chunks are at most 1024 bytes",
  left: "must be 32 bytes",
  right: "must be 32 bytes",
  treeRoot: "must be 32 bytes",
  size: "must be a non-negative integer",
  count: "must be a positive integer",
  tree: "built for 2499 bytes, fragment has 2500",
  fragmentRoots: "a Magu tree needs at least one fragment",
  "fragmentRoots[1]": "must be 32 bytes",
};
const invalid = (name: string) => (e: unknown): boolean =>
  e instanceof InvalidParameterError && e.context.name === name && e.context.reason === REASONS[name];

/** A leaf proof built from leaf hashes by hand (through the Magu tree, which folds the same way). */
function handProof(data: Buffer, size: number, leafIndex: number) {
  const count = Math.max(1, Math.ceil(size / LEAF_SIZE));
  const chunks = Array.from({ length: count }, (_, i) => {
    const c = Buffer.alloc(LEAF_SIZE);
    c.set(data.subarray(i * LEAF_SIZE, Math.min((i + 1) * LEAF_SIZE, size)));
    return c;
  });
  const tree = buildMaguTree(chunks.map(hashLeaf));
  return { root: hashFragmentRoot(size, tree.root), chunk: chunks[leafIndex]!, siblings: maguProof(tree, leafIndex) };
}

describe("merkle: primitives, byte for byte", () => {
  it("hashLeaf, hashNode and hashFragmentRoot are the documented SHA-256 preimages", () => {
    const chunk = bytesOf(1000);
    const padded = Buffer.concat([chunk, Buffer.alloc(24)]);
    assert.deepEqual(hashLeaf(chunk), sha(Buffer.from([0]), padded));
    assert.deepEqual(hashLeaf(padded), sha(Buffer.from([0]), padded));
    assert.deepEqual(hashLeaf(new Uint8Array(0)), sha(Buffer.alloc(1 + LEAF_SIZE)));
    assert.throws(() => hashLeaf(Buffer.alloc(LEAF_SIZE + 1)), invalid("chunk"));
    assert.deepEqual(hashNode(node(1), node(2)), sha(Buffer.from([1]), node(1), node(2)));
    assert.notDeepEqual(hashNode(node(1), node(2)), hashNode(node(2), node(1)));
    assert.throws(() => hashNode(node(1).subarray(1), node(2)), invalid("left"));
    assert.throws(() => hashNode(node(1), Buffer.alloc(33)), invalid("right"));
    assert.throws(() => hashNode("x".repeat(32) as unknown as Uint8Array, node(2)), invalid("left"));
    const size = Buffer.alloc(8);
    size.writeBigUInt64BE(123456789n);
    assert.deepEqual(hashFragmentRoot(123456789, node(3)), sha(Buffer.from([2]), size, node(3)));
    assert.deepEqual(hashFragmentRoot(0, node(3)), sha(Buffer.from([2]), Buffer.alloc(8), node(3)));
    assert.throws(() => hashFragmentRoot(-1, node(3)), invalid("size"));
    assert.throws(() => hashFragmentRoot(1.5, node(3)), invalid("size"));
    assert.throws(() => hashFragmentRoot(1, Buffer.alloc(31)), invalid("treeRoot"));
    assert.equal(HASH_SIZE, 32);
    assert.deepEqual(EMPTY_NODE, Buffer.alloc(32));
  });

  it("sizes, depths and empty subtrees", () => {
    assert.deepEqual([0, 1, 1023, 1024, 1025, 2048, 2049].map(leafCount), [1, 1, 1, 1, 2, 2, 3]);
    for (const bad of [-1, 0.5, Number.NaN]) assert.throws(() => leafCount(bad), invalid("size"));
    assert.deepEqual([1, 2, 3, 4, 5, 8, 9, 1024, 1025].map(depthFor), [0, 1, 2, 2, 3, 3, 4, 10, 11]);
    for (const bad of [0, -1, 1.5]) assert.throws(() => depthFor(bad), invalid("count"));
    let e = EMPTY_NODE;
    for (let level = 0; level <= 64; level++) {
      assert.deepEqual(emptySubtreeHash(level), e, `level ${level}`);
      e = sha(Buffer.from([1]), e, e);
    }
    for (const bad of [65, -1]) {
      assert.throws(() => emptySubtreeHash(bad), (err: unknown) => err instanceof IndexOutOfRangeError && err.context.what === "empty subtree level" && err.context.count === 65);
    }
  });

  it("processProof folds by the index bits, bottom-up", () => {
    const leaf = node(0);
    const s = [node(1), node(2), node(3)];
    assert.deepEqual(processProof(leaf, 0, s), hashNode(hashNode(hashNode(leaf, s[0]!), s[1]!), s[2]!));
    // index 5 = 0b101: right at level 0, left at level 1, right at level 2.
    assert.deepEqual(processProof(leaf, 5, s), hashNode(s[2]!, hashNode(hashNode(s[0]!, leaf), s[1]!)));
    assert.deepEqual(processProof(leaf, 6, s), hashNode(s[2]!, hashNode(s[1]!, hashNode(leaf, s[0]!))));
    assert.deepEqual(processProof(new Uint8Array(leaf), 0, []), leaf);
    assert.ok(Buffer.isBuffer(processProof(new Uint8Array(leaf), 0, [])));
  });
});

describe("merkle: trees and proofs, edges", () => {
  it("a fragment tree keeps every level; proofs take the empty subtree past the last real node", () => {
    const data = bytesOf(5 * 1024 + 3);
    const tree = buildFragmentTree(data);
    assert.equal(tree.count, 6);
    assert.equal(tree.depth, 3);
    assert.equal(tree.size, data.length);
    assert.deepEqual(tree.levels.map((l) => l.length / 32), [6, 3, 2, 1]);
    assert.deepEqual(tree.levels[3], tree.root);
    assert.deepEqual(tree.fragmentRoot, fragmentRoot(data));
    assert.deepEqual(tree.fragmentRoot, hashFragmentRoot(data.length, tree.root));
    const leaves = Array.from({ length: 6 }, (_, i) => hashLeaf(leafChunk(data, i)));
    assert.deepEqual(tree.levels[0], Buffer.concat(leaves));
    const p = fragmentLeafProof(data, 5);
    assert.deepEqual(p.siblings[0], leaves[4]);
    assert.deepEqual(p.siblings[1], emptySubtreeHash(1));
    assert.deepEqual(p.siblings[2], hashNode(hashNode(leaves[0]!, leaves[1]!), hashNode(leaves[2]!, leaves[3]!)));
    assert.equal(p.leafIndex, 5);
    const p4 = fragmentLeafProof(data, 4, tree);
    assert.deepEqual(p4.siblings[0], leaves[5]);
    // fragmentRoot keeps a scratch buffer: a big fragment after a small one, then a small one, all correct.
    for (const n of [10, FRAGMENT_SIZE, 3000, 0]) assert.deepEqual(fragmentRoot(bytesOf(n, n)), buildFragmentTree(bytesOf(n, n)).fragmentRoot);
    assert.throws(() => buildFragmentTree(Buffer.alloc(FRAGMENT_SIZE + 1)), FragmentTooLargeError);
  });

  it("leafChunk zero-pads the last chunk and checks the index", () => {
    const data = bytesOf(2500);
    assert.deepEqual(leafChunk(data, 0), data.subarray(0, 1024));
    assert.deepEqual(leafChunk(data, 2), Buffer.concat([data.subarray(2048), Buffer.alloc(1024 - 452)]));
    assert.deepEqual(leafChunk(new Uint8Array(0), 0), Buffer.alloc(1024));
    for (const bad of [-1, 3, 1.5]) assert.throws(() => leafChunk(data, bad), IndexOutOfRangeError);
    assert.throws(() => fragmentLeafProof(data, 0, buildFragmentTree(data.subarray(1))), invalid("tree"));
    for (const bad of [-1, 3, 0.5]) assert.throws(() => fragmentLeafProof(data, bad), IndexOutOfRangeError);
  });

  it("verifyLeafProof refuses what the contract refuses even when the hashes would fold to the root", () => {
    const data = bytesOf(FRAGMENT_SIZE + 1024, 3);
    // A hand-built tree over FRAGMENT_SIZE + 1 bytes: hashes fold to its root, but the size is too large.
    const over = handProof(data, FRAGMENT_SIZE + 1, 0);
    assert.equal(processProof(hashLeaf(over.chunk), 0, over.siblings).length, 32);
    assert.equal(verifyLeafProof(over.root, FRAGMENT_SIZE + 1, 0, over.chunk, over.siblings), false);
    const at = handProof(data, FRAGMENT_SIZE, 0);
    assert.equal(verifyLeafProof(at.root, FRAGMENT_SIZE, 0, at.chunk, at.siblings), true);
    // Index aliasing: only the low `depth` bits are folded, so i + 2^depth, i - 2^depth or i + 0.5 would verify.
    const small = bytesOf(3 * 1024, 4);
    const t = buildFragmentTree(small);
    const p = fragmentLeafProof(small, 0, t);
    assert.equal(t.depth, 2);
    assert.equal(verifyLeafProof(t.fragmentRoot, small.length, 0, p.chunk, p.siblings), true);
    for (const alias of [4, -4, 0.5, 2 ** 53]) assert.equal(verifyLeafProof(t.fragmentRoot, small.length, alias, p.chunk, p.siblings), false, `index ${alias}`);
    // With a power-of-two leaf count, index `count` itself aliases leaf 0.
    const four = bytesOf(4 * 1024, 8);
    const ft = buildFragmentTree(four);
    const f0 = fragmentLeafProof(four, 0, ft);
    assert.equal(verifyLeafProof(ft.fragmentRoot, four.length, 0, f0.chunk, f0.siblings), true);
    assert.equal(verifyLeafProof(ft.fragmentRoot, four.length, 4, f0.chunk, f0.siblings), false);
    // The last chunk must be given padded (1024 bytes), not as the short tail.
    const tail = bytesOf(2500, 5);
    const tt = buildFragmentTree(tail);
    const last = fragmentLeafProof(tail, 2, tt);
    assert.equal(verifyLeafProof(tt.fragmentRoot, 2500, 2, last.chunk, last.siblings), true);
    assert.equal(verifyLeafProof(tt.fragmentRoot, 2500, 2, tail.subarray(2048), last.siblings), false);
    // Malformed inputs are false, never an exception.
    assert.equal(verifyLeafProof(tt.fragmentRoot, -1, 0, last.chunk, last.siblings), false);
    assert.equal(verifyLeafProof(tt.fragmentRoot, 1.5, 0, last.chunk, last.siblings), false);
    assert.equal(verifyLeafProof(tt.fragmentRoot.subarray(1), 2500, 2, last.chunk, last.siblings), false);
    assert.equal(verifyLeafProof(tt.fragmentRoot, 2500, 2, last.chunk, [last.siblings[0]!, last.siblings[1]!.subarray(1)]), false);
    assert.equal(verifyLeafProof(tt.fragmentRoot, 2500, 2, Buffer.alloc(LEAF_SIZE + 1), last.siblings), false);
    assert.equal(verifyLeafProof(new Uint8Array(tt.fragmentRoot), 2500, 2, new Uint8Array(last.chunk), last.siblings.map((s) => new Uint8Array(s))), true);
    // A one-leaf fragment has an empty proof.
    const one = bytesOf(10, 6);
    assert.equal(verifyLeafProof(fragmentRoot(one), 10, 0, leafChunk(one, 0), []), true);
    assert.equal(verifyLeafProof(fragmentRoot(one), 10, 0, leafChunk(one, 0), [EMPTY_NODE]), false);
  });

  it("verifyMaguProof: an inner node with a short proof, aliased indices and malformed input are refused", () => {
    const roots = Array.from({ length: 4 }, (_, i) => node(10 + i));
    const tree = buildMaguTree(roots);
    assert.deepEqual(tree.root, hashNode(hashNode(roots[0]!, roots[1]!), hashNode(roots[2]!, roots[3]!)));
    const inner = hashNode(roots[0]!, roots[1]!);
    const upper = [hashNode(roots[2]!, roots[3]!)];
    assert.deepEqual(processProof(inner, 0, upper), tree.root, "the hashes alone would accept the inner node");
    assert.equal(verifyMaguProof(tree.root, 4, 0, inner, upper), false);
    const proof = maguProof(tree, 1);
    assert.equal(verifyMaguProof(tree.root, 4, 1, roots[1]!, proof), true);
    for (const alias of [5, -3, 1.5, 4]) assert.equal(verifyMaguProof(tree.root, 4, alias, roots[1]!, proof), false, `index ${alias}`);
    assert.equal(verifyMaguProof(tree.root, 3, 1, roots[1]!, proof), true, "3 fragments share the depth of 4: the count only bounds the index");
    assert.equal(verifyMaguProof(tree.root, 3, 3, roots[3]!, maguProof(tree, 3)), false);
    assert.equal(verifyMaguProof(tree.root, 0, 0, roots[0]!, []), false);
    assert.equal(verifyMaguProof(tree.root, 1.5, 0, roots[0]!, proof), false);
    assert.equal(verifyMaguProof(tree.root.subarray(1), 4, 1, roots[1]!, proof), false);
    assert.equal(verifyMaguProof(tree.root, 4, 1, roots[1]!.subarray(1), proof), false);
    assert.equal(verifyMaguProof(tree.root, 4, 1, roots[1]!, [proof[0]!, Buffer.alloc(31)]), false);
    assert.equal(verifyMaguProof(tree.root, 4, 1, roots[1]!, proof.slice(1)), false);
    assert.equal(verifyMaguProof(new Uint8Array(tree.root), 4, 1, new Uint8Array(roots[1]!), proof), true);
    // One fragment: the root is the fragment root and the proof is empty.
    assert.deepEqual(maguRoot([roots[2]!]), roots[2]);
    assert.equal(verifyMaguProof(roots[2]!, 1, 0, roots[2]!, []), true);
    assert.equal(verifyMaguProof(roots[2]!, 1, 0, roots[2]!.subarray(0, 31), []), false);
  });

  it("buildMaguTree checks its input; maguProof checks the index", () => {
    assert.throws(() => buildMaguTree([]), invalid("fragmentRoots"));
    assert.throws(() => buildMaguTree([node(1), Buffer.alloc(31)]), invalid("fragmentRoots[1]"));
    const tree = buildMaguTree([node(1), node(2), node(3)]);
    assert.deepEqual(tree.root, hashNode(hashNode(node(1), node(2)), hashNode(node(3), EMPTY_NODE)));
    assert.deepEqual(maguProof(tree, 2), [EMPTY_NODE, hashNode(node(1), node(2))]);
    for (const bad of [3, -1, 0.5]) assert.throws(() => maguProof(tree, bad), (e: unknown) => e instanceof IndexOutOfRangeError && e.context.what === "fragment");
    assert.throws(() => fragmentLeafProof(Buffer.alloc(10), 1), (e: unknown) => e instanceof IndexOutOfRangeError && e.context.what === "leaf");
    const five = buildMaguTree([1, 2, 3, 4, 5].map(node));
    assert.deepEqual(maguProof(five, 4), [EMPTY_NODE, emptySubtreeHash(1), five.levels[2]!.subarray(0, 32)]);
  });

  it("verifyChallengeProof needs both halves", () => {
    const frags = [bytesOf(3000, 1), bytesOf(2000, 2), bytesOf(5000, 3)];
    const trees = frags.map((f) => buildFragmentTree(f));
    const magu = buildMaguTree(trees.map((t) => t.fragmentRoot));
    const lp = fragmentLeafProof(frags[1]!, 1, trees[1]);
    const good = {
      fragmentIndex: 1,
      size: 2000,
      leafIndex: 1,
      chunk: lp.chunk,
      leafSiblings: lp.siblings,
      fragmentRoot: trees[1]!.fragmentRoot,
      maguSiblings: maguProof(magu, 1),
    };
    assert.equal(verifyChallengeProof(magu.root, 3, good), true);
    const badChunk = Buffer.from(lp.chunk);
    badChunk[0]! ^= 1;
    assert.equal(verifyChallengeProof(magu.root, 3, { ...good, chunk: badChunk }), false, "leaf half wrong, Magu half right");
    assert.equal(verifyChallengeProof(magu.root, 3, { ...good, maguSiblings: maguProof(magu, 2) }), false, "leaf half right, Magu half wrong");
  });
});

describe("merkle: the streaming fragment-root hasher, edges", () => {
  /** The root of `bytes` fed to a FragmentRootHasher in pieces of the given sizes (the rest in one). */
  const streamed = (bytes: Buffer, pieces: readonly number[]): Buffer | undefined => {
    const h = new FragmentRootHasher();
    let at = 0;
    for (const n of pieces) {
      h.update(bytes.subarray(at, at + n));
      at += n;
    }
    h.update(bytes.subarray(at));
    return h.root();
  };

  it("equals fragmentRoot for nothing, a partial leaf after whole ones, and leaves split across pieces", () => {
    assert.deepEqual(new FragmentRootHasher().root(), fragmentRoot(new Uint8Array(0)), "no update at all: the empty fragment");
    assert.deepEqual(streamed(Buffer.alloc(0), [0, 0]), fragmentRoot(new Uint8Array(0)));
    for (const [size, pieces] of [
      [1500, []], // one whole leaf, then a partial one, in one piece
      [1500, [1024]],
      [3000, [100, 2000]], // a piece that completes the partial leaf, then whole leaves and a tail
      [4096, [1023, 1, 1024]], // ends on a leaf boundary
      [2049, [2048]],
      [FRAGMENT_SIZE, [LEAF_SIZE * 7 + 3]],
    ] as const) {
      const bytes = bytesOf(size, size);
      assert.deepEqual(streamed(bytes, pieces), fragmentRoot(bytes), `${size} bytes in pieces ${pieces.join("+") || "(one)"}`);
    }
  });

  it("more than FRAGMENT_SIZE bytes, even whole leaves past it, give no root and write nothing past the tree", () => {
    const over = bytesOf(FRAGMENT_SIZE + 8 * LEAF_SIZE, 9);
    assert.equal(streamed(over, []), undefined);
    assert.equal(streamed(over, [FRAGMENT_SIZE, 4 * LEAF_SIZE]), undefined);
    assert.equal(streamed(over, [FRAGMENT_SIZE - 10, 4 * LEAF_SIZE + 10]), undefined);
  });

  it("takes its root once and no bytes after it", () => {
    const h = new FragmentRootHasher();
    h.update(Buffer.from("abc"));
    assert.deepEqual(h.root(), fragmentRoot(Buffer.from("abc")));
    assert.throws(() => h.update(Buffer.alloc(5)), { message: "invalid chunk (5): the root was already taken" });
    assert.throws(() => h.root(), { message: 'invalid root ("again"): the root can be taken once' });
  });

  it("leafSiblings names the leaf index it refuses", () => {
    const tree = buildFragmentTree(bytesOf(3000, 2));
    assert.throws(() => leafSiblings(tree, 3), (e: unknown) => e instanceof IndexOutOfRangeError && e.context.what === "leaf" && e.message === "leaf index 3 out of range [0, 3)");
  });
});

describe("merkle: append proofs, edges", () => {
  it("appendProof takes 0 <= current <= count; verifyAppendProof refuses what does not fit", () => {
    const roots = [1, 2, 3, 4, 5].map(node);
    for (const bad of [-1, 6, 1.5]) {
      assert.throws(() => appendProof(roots, bad), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "current" && e.context.reason === "must be an integer in [0, 5]");
    }
    const root = maguRoot(roots);
    // A first batch: an empty proof, and only an empty one.
    assert.equal(verifyAppendProof(EMPTY_NODE, 0, root, 5, []), true);
    assert.equal(verifyAppendProof(EMPTY_NODE, 0, root, 5, [node(1)]), false);
    const proof = appendProof(roots, 3);
    assert.equal(proof.length, depthFor(5) + 1);
    assert.equal(verifyAppendProof(maguRoot(roots.slice(0, 3)), 3, root, 5, proof), true);
    assert.equal(verifyAppendProof(maguRoot(roots.slice(0, 3)), 3, root, 5, [...proof, EMPTY_NODE]), false, "one element too many");
    // More old fragments than the new tree has: refused before any hashing.
    const all = appendProof(roots, 5);
    assert.equal(verifyAppendProof(maguRoot(roots), 6, root, 5, all), false);
    assert.equal(verifyAppendProof(maguRoot(roots), 5, root, 5, all), true);
    // A proof that folds (6 fragments have the depth of 5), refused only because current > count.
    const six = [1, 2, 3, 4, 5, 6].map(node);
    const sixProof = appendProof(six, 6);
    assert.equal(verifyAppendProof(maguRoot(six), 6, maguRoot(six), 6, sixProof), true);
    assert.equal(verifyAppendProof(maguRoot(six), 6, maguRoot(six), 5, sixProof), false);
  });
});
