/**
 * Reproduces the JSON vectors generated from the Solidity contracts (test/vectors/*.json,
 * `npm run vectors`) with the TypeScript data layer. Missing files fail the test, never skip it.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { challengeItems, leafIndexFor, MAX_TRIES } from "../../../agents/data/challenge.js";
import { LEAF_SIZE } from "../../../agents/data/constants.js";
import {
  buildFragmentTree,
  buildMaguTree,
  depthFor,
  fragmentLeafProof,
  fragmentRoot,
  hashFragmentRoot,
  hashLeaf,
  hashNode,
  leafChunk,
  leafCount,
  maguProof,
  verifyLeafProof,
  verifyMaguProof,
} from "../../../agents/data/merkle.js";
import { holderBlob, holds, holdersVector, score } from "../../../agents/data/placement.js";

const dir = new URL("../../vectors/", import.meta.url);

/** Loads a vector file inside a test, so a missing file is a failing test (not a suite error). */
function loader<T>(name: string): () => T {
  let cached: T | undefined;
  return () => {
    if (cached !== undefined) return cached;
    const url = new URL(`${name}.json`, dir);
    assert.ok(existsSync(url), `test vector file test/vectors/${name}.json is missing: run \`npm run vectors\``);
    cached = JSON.parse(readFileSync(url, "utf8")) as T;
    return cached;
  };
}

const hex = (b: Uint8Array): string => `0x${Buffer.from(b).toString("hex")}`;
const bytes = (h: string): Buffer => Buffer.from(h.replace(/^0x/, ""), "hex");

interface MerkleVectors {
  leafSize: number;
  hashes: {
    leafOfZeroChunk: string;
    node: { left: string; right: string; hash: string };
    fragmentRoot: { size: number; treeRoot: string; hash: string };
  };
  fragments: {
    size: number;
    data: string;
    leafCount: number;
    treeRoot: string;
    fragmentRoot: string;
    proofs: { index: number; leafHash: string; proof: string[] }[];
  }[];
  magus: { fragmentRoots: string[]; root: string; proofs: { index: number; proof: string[] }[] }[];
}

interface PlacementVectors {
  scores: { maguId: number; group: number; slot: number; score: string }[];
  vector: { maguId: number; slots: number; replication: number; groups: { fragment: number; holders: number[] }[] }[];
  blob: { maguId: number; slots: number; dataShards: number; parityShards: number; holders: { fragment: number; holder: number }[] }[];
}

interface ChallengeVectors {
  samples: number;
  maxTries: number;
  cases: {
    label: string;
    periodSeed: string;
    maguId: number;
    member: string;
    period: number;
    slot: number;
    slots: number;
    replication: number;
    stripeWidth: number;
    fragmentCount: number;
    items: { fragment: number; leafSeed: string }[];
  }[];
}

describe("contract vectors: merkle.json", () => {
  const vectors = loader<MerkleVectors>("merkle");

  it("uses the same leaf size", () => assert.equal(vectors().leafSize, LEAF_SIZE));

  it("reproduces the primitive hashes", () => {
    const v = vectors();
    assert.equal(hex(hashLeaf(Buffer.alloc(LEAF_SIZE))), v.hashes.leafOfZeroChunk);
    assert.equal(hex(hashNode(bytes(v.hashes.node.left), bytes(v.hashes.node.right))), v.hashes.node.hash);
    const fr = v.hashes.fragmentRoot;
    assert.equal(hex(hashFragmentRoot(fr.size, bytes(fr.treeRoot))), fr.hash);
  });

  it("reproduces every fragment tree, root and leaf proof", () => {
    const v = vectors();
    assert.ok(v.fragments.length > 0);
    for (const f of v.fragments) {
      const data = bytes(f.data);
      assert.equal(data.length, f.size);
      assert.equal(leafCount(f.size), f.leafCount, `leafCount(${f.size})`);
      const tree = buildFragmentTree(data);
      assert.equal(hex(tree.root), f.treeRoot, `treeRoot of ${f.size} bytes`);
      assert.equal(hex(tree.fragmentRoot), f.fragmentRoot, `fragmentRoot of ${f.size} bytes`);
      assert.equal(hex(fragmentRoot(data)), f.fragmentRoot, `fast fragmentRoot of ${f.size} bytes`);
      for (const p of f.proofs) {
        const proof = fragmentLeafProof(data, p.index, tree);
        assert.equal(hex(hashLeaf(leafChunk(data, p.index))), p.leafHash, `leaf ${p.index} of ${f.size}`);
        assert.deepEqual(proof.siblings.map(hex), p.proof, `proof of leaf ${p.index} of ${f.size}`);
        assert.equal(p.proof.length, depthFor(f.leafCount));
        assert.ok(verifyLeafProof(bytes(f.fragmentRoot), f.size, p.index, proof.chunk, p.proof.map(bytes)));
      }
    }
  });

  it("reproduces every Magu tree and proof", () => {
    const v = vectors();
    assert.ok(v.magus.length > 0);
    for (const m of v.magus) {
      const roots = m.fragmentRoots.map(bytes);
      const tree = buildMaguTree(roots);
      assert.equal(hex(tree.root), m.root, `Magu root over ${roots.length}`);
      for (const p of m.proofs) {
        assert.deepEqual(maguProof(tree, p.index).map(hex), p.proof, `proof of fragment ${p.index} of ${roots.length}`);
        assert.ok(verifyMaguProof(bytes(m.root), roots.length, p.index, roots[p.index]!, p.proof.map(bytes)));
      }
    }
  });
});

describe("contract vectors: placement.json", () => {
  const vectors = loader<PlacementVectors>("placement");

  it("reproduces the scores", () => {
    const v = vectors();
    assert.ok(v.scores.length > 0);
    for (const s of v.scores) assert.equal(`0x${score(s.maguId, s.group, s.slot).toString(16).padStart(64, "0")}`, s.score);
  });

  it("reproduces vector-Magu holders", () => {
    const v = vectors();
    assert.ok(v.vector.length > 0);
    for (const c of v.vector) {
      for (const g of c.groups) {
        assert.deepEqual(holdersVector(c.maguId, g.fragment, c.slots, c.replication), g.holders, `magu ${c.maguId} fragment ${g.fragment}`);
      }
    }
  });

  it("reproduces blob-Magu holders", () => {
    const v = vectors();
    assert.ok(v.blob.length > 0);
    for (const c of v.blob) {
      for (const h of c.holders) {
        assert.equal(holderBlob(c.maguId, h.fragment, c.slots, c.dataShards, c.parityShards), h.holder, `magu ${c.maguId} fragment ${h.fragment}`);
      }
    }
  });
});

describe("contract vectors: challenge.json", () => {
  const vectors = loader<ChallengeVectors>("challenge");

  it("uses the same MAX_TRIES", () => assert.equal(vectors().maxTries, MAX_TRIES));

  it("reproduces every challenge", () => {
    const v = vectors();
    assert.ok(v.cases.length > 0);
    for (const c of v.cases) {
      const layout = c.replication !== 0 ? { replication: c.replication } : { k: c.stripeWidth, m: 0 };
      const items = challengeItems({
        periodSeed: c.periodSeed as `0x${string}`,
        maguId: c.maguId,
        member: c.member,
        period: c.period,
        samples: v.samples,
        fragmentCount: c.fragmentCount,
        holds: (f) => holds(c.maguId, f, c.slots, c.slot, layout),
      });
      assert.deepEqual(
        items.map((it) => ({ fragment: it.fragment, leafSeed: it.leafSeed.toString() })),
        c.items,
        c.label,
      );
      for (const it of items) assert.ok(leafIndexFor(it.leafSeed, 1 << 20) < 1024);
    }
  });
});
