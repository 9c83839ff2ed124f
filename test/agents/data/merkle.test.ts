import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { describe, it } from "node:test";
import fc from "fast-check";
import { FRAGMENT_SIZE, LEAF_SIZE } from "../../../agents/data/constants.js";
import { FragmentTooLargeError, IndexOutOfRangeError } from "../../../agents/data/errors.js";
import { hashBackend, NATIVE_ADDON_PATH, nodeCryptoBackend, setHashBackend, type HashBackend } from "../../../agents/data/hash-backend.js";
import {
  buildFragmentTree,
  buildMaguTree,
  EMPTY_NODE,
  emptySubtreeHash,
  fragmentLeafProof,
  fragmentRoot,
  hashNode,
  leafCount,
  maguProof,
  maguRoot,
  verifyChallengeProof,
  verifyLeafProof,
  verifyMaguProof,
} from "../../../agents/data/merkle.js";

/** The spec, written as plainly as possible: a full-width recursive tree over padded leaves. */
function sha(...parts: Uint8Array[]): Buffer {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return h.digest();
}
function specTreeRoot(leaves: Buffer[]): Buffer {
  let width = 1;
  while (width < leaves.length) width *= 2;
  let level = Array.from({ length: width }, (_, i) => leaves[i] ?? Buffer.alloc(32));
  while (level.length > 1) {
    const next: Buffer[] = [];
    for (let i = 0; i < level.length; i += 2) next.push(sha(Buffer.from([1]), level[i]!, level[i + 1]!));
    level = next;
  }
  return level[0]!;
}
function specFragmentRoot(data: Uint8Array): Buffer {
  const count = Math.max(1, Math.ceil(data.length / LEAF_SIZE));
  const leaves = Array.from({ length: count }, (_, i) => {
    const chunk = Buffer.alloc(LEAF_SIZE);
    chunk.set(data.subarray(i * LEAF_SIZE, (i + 1) * LEAF_SIZE));
    return sha(Buffer.from([0]), chunk);
  });
  const size = Buffer.alloc(8);
  size.writeBigUInt64BE(BigInt(data.length));
  return sha(Buffer.from([2]), size, specTreeRoot(leaves));
}

function seeded(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const EDGE_SIZES = [0, 1, 1023, 1024, 1025, 2047, 2048, 2049, 3 * 1024 + 1, 5000, 16 * 1024, 17 * 1024 + 3, FRAGMENT_SIZE - 1, FRAGMENT_SIZE];

/** Every backend available here: node:crypto, and each native SIMD kernel this CPU has. */
function backends(): HashBackend[] {
  const list: HashBackend[] = [nodeCryptoBackend, hashBackend()];
  if (!existsSync(NATIVE_ADDON_PATH)) return list;
  const addon = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as {
    setKernel(name: string): boolean;
    kernel(): string;
    hashLeaves: HashBackend["hashLeaves"];
    hashPairs: HashBackend["hashPairs"];
    sha256Many: HashBackend["sha256Many"];
  };
  for (const kernel of ["scalar", "avx2", "avx512"]) {
    list.push({
      name: `native-${kernel}`,
      hashLeaves: (d, s, o) => (addon.setKernel(kernel) ? addon.hashLeaves(d, s, o) : nodeCryptoBackend.hashLeaves(d, s, o)),
      hashPairs: (n, p, o) => (addon.setKernel(kernel) ? addon.hashPairs(n, p, o) : nodeCryptoBackend.hashPairs(n, p, o)),
      sha256Many: (m, o) => (addon.setKernel(kernel) ? addon.sha256Many(m, o) : nodeCryptoBackend.sha256Many(m, o)),
    });
  }
  return list;
}

describe("merkle: fragment tree", () => {
  it("empty subtrees: level 0 is 32 zero bytes, then H(0x01 ‖ e ‖ e)", () => {
    assert.deepEqual(emptySubtreeHash(0), EMPTY_NODE);
    assert.deepEqual(emptySubtreeHash(1), hashNode(EMPTY_NODE, EMPTY_NODE));
    assert.deepEqual(emptySubtreeHash(5), hashNode(emptySubtreeHash(4), emptySubtreeHash(4)));
  });

  it("leafCount = max(1, ceil(size / 1024))", () => {
    assert.deepEqual([0, 1, 1024, 1025, FRAGMENT_SIZE].map(leafCount), [1, 1, 1, 2, 1024]);
  });

  it("matches the plain spec on edge sizes with every hash backend", () => {
    const data = seeded(FRAGMENT_SIZE, 7);
    const expected = new Map(EDGE_SIZES.map((s) => [s, specFragmentRoot(data.subarray(0, s))]));
    const previous = hashBackend();
    try {
      for (const backend of backends()) {
        setHashBackend(backend);
        for (const size of EDGE_SIZES) {
          const slice = data.subarray(0, size);
          assert.deepEqual(fragmentRoot(slice), expected.get(size), `${backend.name} size ${size}`);
          assert.deepEqual(buildFragmentTree(slice).fragmentRoot, expected.get(size), `${backend.name} tree size ${size}`);
        }
      }
    } finally {
      setHashBackend(previous);
    }
  });

  it("matches the plain spec on random fragments (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 40 * 1024 }), fc.integer(), (size, seed) => {
        const data = seeded(size, seed);
        assert.deepEqual(fragmentRoot(data), specFragmentRoot(data));
      }),
      { numRuns: 60 },
    );
  });

  it("native sha256Many equals node:crypto for mixed lengths", () => {
    const data = seeded(20000, 3);
    const messages = [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000, 1000, 1000, 4096, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17, 17].map(
      (n, i) => data.subarray(i * 11, i * 11 + n),
    );
    const expected = Buffer.alloc(32 * messages.length);
    nodeCryptoBackend.sha256Many(messages, expected);
    for (const backend of backends()) {
      const out = Buffer.alloc(32 * messages.length);
      backend.sha256Many(messages, out);
      assert.deepEqual(out, expected, backend.name);
    }
  });

  it("rejects fragments larger than FRAGMENT_SIZE", () => {
    assert.throws(() => fragmentRoot(Buffer.alloc(FRAGMENT_SIZE + 1)), FragmentTooLargeError);
    assert.throws(() => buildFragmentTree(Buffer.alloc(FRAGMENT_SIZE + 1)), (e: unknown) => e instanceof FragmentTooLargeError && e.code === "ERR_FRAGMENT_TOO_LARGE");
  });
});

describe("merkle: leaf proofs", () => {
  it("every leaf of assorted fragments proves against the fragment root", () => {
    for (const size of [0, 1, 1024, 1025, 3 * 1024, 5000, 9 * 1024, 33 * 1024 + 5]) {
      const data = seeded(size, size + 1);
      const tree = buildFragmentTree(data);
      for (let i = 0; i < tree.count; i++) {
        const p = fragmentLeafProof(data, i, tree);
        assert.equal(p.siblings.length, tree.depth);
        assert.ok(verifyLeafProof(tree.fragmentRoot, size, i, p.chunk, p.siblings), `size ${size} leaf ${i}`);
      }
    }
  });

  it("tampered proofs fail: chunk byte, sibling byte, index, size, length (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2049, max: 64 * 1024 }), fc.integer(), fc.nat(), fc.nat(), (size, seed, leafPick, bytePick) => {
        const data = seeded(size, seed);
        const tree = buildFragmentTree(data);
        const index = leafPick % tree.count;
        const p = fragmentLeafProof(data, index, tree);
        const root = tree.fragmentRoot;
        assert.ok(verifyLeafProof(root, size, index, p.chunk, p.siblings));
        const chunk = Buffer.from(p.chunk);
        chunk[bytePick % LEAF_SIZE]! ^= 1;
        assert.ok(!verifyLeafProof(root, size, index, chunk, p.siblings), "flipped chunk byte");
        const level = bytePick % p.siblings.length;
        const siblings = p.siblings.map((s) => Buffer.from(s));
        siblings[level]![bytePick % 32]! ^= 0x80;
        assert.ok(!verifyLeafProof(root, size, index, p.chunk, siblings), "flipped sibling byte");
        const other = (index + 1 + (bytePick % (tree.count - 1))) % tree.count;
        assert.ok(!verifyLeafProof(root, size, other, p.chunk, p.siblings), "other index");
        assert.ok(!verifyLeafProof(root, size + 1, index, p.chunk, p.siblings), "other size");
        assert.ok(!verifyLeafProof(root, size, index, p.chunk, p.siblings.slice(1)), "short proof");
        assert.ok(!verifyLeafProof(root, size, index, p.chunk, [...p.siblings, EMPTY_NODE]), "long proof");
        const badRoot = Buffer.from(root);
        badRoot[0]! ^= 1;
        assert.ok(!verifyLeafProof(badRoot, size, index, p.chunk, p.siblings), "other root");
      }),
      { numRuns: 40 },
    );
  });

  it("rejects leaf indices past the real leaves and sizes past FRAGMENT_SIZE", () => {
    const data = seeded(3000, 1);
    const tree = buildFragmentTree(data);
    assert.throws(() => fragmentLeafProof(data, 3, tree), IndexOutOfRangeError);
    const p = fragmentLeafProof(data, 2, tree);
    assert.ok(!verifyLeafProof(tree.fragmentRoot, 3000, 3, p.chunk, p.siblings));
    assert.ok(!verifyLeafProof(tree.fragmentRoot, FRAGMENT_SIZE + 1, 2, p.chunk, p.siblings));
  });
});

describe("merkle: Magu tree", () => {
  it("root over one fragment is that fragment root; proofs verify for F = 1..40", () => {
    const roots = Array.from({ length: 40 }, (_, i) => specFragmentRoot(seeded(i * 100, i + 11)));
    assert.deepEqual(maguRoot(roots.slice(0, 1)), roots[0]);
    for (let F = 1; F <= roots.length; F++) {
      const tree = buildMaguTree(roots.slice(0, F));
      assert.deepEqual(tree.root, specTreeRoot(roots.slice(0, F)), `F = ${F}`);
      for (let i = 0; i < F; i++) {
        const proof = maguProof(tree, i);
        assert.ok(verifyMaguProof(tree.root, F, i, roots[i]!, proof), `F = ${F}, i = ${i}`);
        assert.ok(!verifyMaguProof(tree.root, F, (i + 1) % F, roots[i]!, proof) || F === 1 || roots[i]!.equals(roots[(i + 1) % F]!));
        if (proof.length > 0) {
          const bad = proof.map((s) => Buffer.from(s));
          bad[bad.length - 1]![31]! ^= 1;
          assert.ok(!verifyMaguProof(tree.root, F, i, roots[i]!, bad));
        }
      }
    }
  });

  it("a full challenge answer verifies leaf -> fragment root -> Magu root, and fails when tampered", () => {
    const fragments = Array.from({ length: 6 }, (_, i) => seeded(1000 + i * 4000, i));
    const trees = fragments.map(buildFragmentTree);
    const magu = buildMaguTree(trees.map((t) => t.fragmentRoot));
    const f = 4;
    const leaf = 3;
    const lp = fragmentLeafProof(fragments[f]!, leaf, trees[f]);
    const proof = {
      fragmentIndex: f,
      size: fragments[f]!.length,
      leafIndex: leaf,
      chunk: lp.chunk,
      leafSiblings: lp.siblings,
      fragmentRoot: trees[f]!.fragmentRoot,
      maguSiblings: maguProof(magu, f),
    };
    assert.ok(verifyChallengeProof(magu.root, 6, proof));
    assert.ok(!verifyChallengeProof(magu.root, 9, proof), "fragment count of another depth");
    assert.ok(!verifyChallengeProof(magu.root, 4, proof), "fragment index past the count");
    assert.ok(!verifyChallengeProof(magu.root, 6, { ...proof, fragmentIndex: 5 }), "other fragment");
    assert.ok(!verifyChallengeProof(magu.root, 6, { ...proof, size: proof.size - 1 }), "other size");
  });
});
