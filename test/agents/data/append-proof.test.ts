/**
 * The append proof of a batch commit (data/merkle.ts `appendProof`): it verifies exactly when the
 * new tree keeps the old fragments, at every old/new boundary. The contract runs the same check
 * (MaguRegistry `_checkAppend`, test/solidity/Availability.t.sol).
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { appendProof, maguRoot, verifyAppendProof } from "../../../agents/data/merkle.js";

const rootOf = (seed: number, i: number): Buffer => createHash("sha256").update(`fragment ${seed} ${i}`).digest();
const rootsOf = (seed: number, n: number): Buffer[] => Array.from({ length: n }, (_, i) => rootOf(seed, i));

describe("merkle: append proofs", () => {
  it("verifies at every boundary of trees up to 33 fragments", () => {
    for (let count = 1; count <= 33; count++) {
      const roots = rootsOf(1, count);
      const root = maguRoot(roots);
      for (let current = 1; current <= count; current++) {
        const proof = appendProof(roots, current);
        assert.ok(verifyAppendProof(maguRoot(roots.slice(0, current)), current, root, count, proof), `${current} -> ${count}`);
      }
    }
  });

  it("fails when any old fragment changed, or any proof element", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 0, max: 1_000 }), (count, a, b) => {
        const current = 1 + (a % count);
        const roots = rootsOf(2, count);
        const oldRoot = maguRoot(roots.slice(0, current));
        // rewrite one committed fragment in the new tree
        const rewritten = roots.slice();
        const victim = b % current;
        rewritten[victim] = rootOf(3, victim);
        assert.equal(verifyAppendProof(oldRoot, current, maguRoot(rewritten), count, appendProof(rewritten, current)), false, "rewrite");
        // change one element of an honest proof
        const proof = appendProof(roots, current);
        const at = b % proof.length;
        const bad = proof.slice();
        bad[at] = rootOf(4, at);
        assert.equal(verifyAppendProof(oldRoot, current, maguRoot(roots), count, bad), false, "tampered element");
        assert.equal(verifyAppendProof(oldRoot, current, maguRoot(roots), count, proof.slice(0, -1)), false, "short proof");
      }),
      { seed: 10, numRuns: 300 },
    );
  });

  it("is empty for a first batch and refuses a count out of range", () => {
    assert.deepEqual(appendProof(rootsOf(5, 3), 0), []);
    assert.throws(() => appendProof(rootsOf(5, 3), 4), /current/);
  });
});
