/**
 * The cosine metric's data layer (data/vectors.ts, data/vector-manifest.ts): a vector scaled to unit
 * length, the fixed scale 2^14 that holds every unit vector, the canonical distance (the negated
 * inner product) against float cosine within the bound docs/SEARCH.md states, and the metric's code
 * in the vector index document.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { fragmentCid } from "../../../agents/data/cid.js";
import { ManifestError, VectorValueError, VectorZeroError } from "../../../agents/data/errors.js";
import { fragmentRoot } from "../../../agents/data/merkle.js";
import { decodeVectorManifest, encodeVectorManifest, METRIC_BY_CODE, METRIC_CODE, type VectorManifest } from "../../../agents/data/vector-manifest.js";
import { canonicalDistance, COSINE_SCALE_EXP, normalizeVector, packVectors, quantize, scaleOfExp, VECTOR_SCALE_EXP } from "../../../agents/data/vectors.js";
import { gaussian, prng } from "../index/fixtures.js";

const SCALE = scaleOfExp(COSINE_SCALE_EXP);

/** Float64 cosine of two float vectors (read as float32, as the client reads them). */
function floatCosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = Math.fround(a[i]!);
    const y = Math.fround(b[i]!);
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / Math.sqrt(aa * bb);
}

/** docs/SEARCH.md: |cos − (−d / 2^28)| ≤ 2ε + ε², ε = √dim · 2^-15 + 2^-24. */
function cosineBound(dim: number): number {
  const eps = Math.sqrt(dim) * 2 ** -15 + 2 ** -24;
  return 2 * eps + eps * eps;
}

/** The cosine similarity a cosine Magu's canonical distance stands for: −d / 2^28. */
function cosineOfDistance(d: bigint): number {
  return -Number(d) / (SCALE * SCALE);
}

const unit = (v: ArrayLike<number>, row?: number): Int16Array => quantize(normalizeVector(v, row), v.length, row ?? 0, SCALE);

describe("vectors: the cosine metric", () => {
  it("normalizeVector keeps the direction at unit length, from tiny to huge float32 norms", () => {
    for (const k of [1, 1e-30, 3e-45, 1e30, 5e37]) {
      const v = [3 * k, -4 * k, 0];
      const n = normalizeVector(v);
      const f = [Math.fround(v[0]!), Math.fround(v[1]!)];
      const norm = Math.hypot(f[0]!, f[1]!);
      assert.ok(Math.abs(n[0]! - f[0]! / norm) < 1e-15 && Math.abs(n[1]! - f[1]! / norm) < 1e-15 && n[2] === 0, `scale ${k}: ${[...n]}`);
      assert.ok(Math.abs(Math.hypot(...n) - 1) < 1e-15, `scale ${k}: unit length`);
    }
    assert.deepEqual([...normalizeVector([0, -7, 0])], [0, -1, 0], "a one-hot vector is exactly ±1");
    // The unit components of 3-4-5 quantize to 0.6 · 2^14 and −0.8 · 2^14, rounded.
    assert.deepEqual([...unit([30, -40, 0])], [Math.round(0.6 * 16384), -Math.round(0.8 * 16384), 0]);
  });

  it("refuses a zero vector (naming the row) and NaN or Infinity (naming the column)", () => {
    assert.throws(
      () => normalizeVector([0, -0, 0], 12),
      (e: unknown) => e instanceof VectorZeroError && e.code === "ERR_VECTOR_ZERO" && e.context.row === 12 && /row 12 is all zeros/.test(e.message) && /nonzero component/.test(e.message),
    );
    assert.throws(() => normalizeVector([1, Number.NaN], 3), (e: unknown) => e instanceof VectorValueError && e.context.row === 3 && e.context.column === 1 && /NaN/.test(e.message));
    assert.throws(() => normalizeVector([Infinity, 1], 4), (e: unknown) => e instanceof VectorValueError && e.context.column === 0 && /not finite/.test(e.message));
    assert.throws(() => normalizeVector([1e39, 1]), (e: unknown) => e instanceof VectorValueError && /not finite/.test(e.message), "beyond float32: Infinity once read as float32");
  });

  it("the cosine scale 2^14 holds every unit vector; 2^15 would not hold ±1", () => {
    assert.equal(COSINE_SCALE_EXP, VECTOR_SCALE_EXP, "the default scale: a cosine Magu's documents carry no scaleExp");
    assert.deepEqual([...unit([5, 0])], [16384, 0]);
    assert.deepEqual([...unit([0, -5])], [0, -16384]);
    assert.throws(() => quantize(normalizeVector([5, 0]), 2, 0, scaleOfExp(COSINE_SCALE_EXP + 1)), VectorValueError);
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 64, size: "max" }), (v) => {
        fc.pre(v.some((x) => x !== 0));
        const q = unit(v);
        for (const x of q) assert.ok(x >= -16384 && x <= 16384, `${x} within ±2^14`);
      }),
      { numRuns: 500 },
    );
  });

  it("the canonical distance is the negated inner product, within the stated bound of float cosine", () => {
    for (const dim of [3, 16, 128, 768]) {
      const g = gaussian(prng(dim));
      const r = prng(dim + 1);
      const bound = cosineBound(dim);
      let worst = 0;
      for (let t = 0; t < 200; t++) {
        // Varied norms (1e-3..1e3) and correlated pairs, so cosines span [-1, 1].
        const a = Array.from({ length: dim }, () => g() * 10 ** (6 * r() - 3));
        const mix = 2 * r() - 1;
        const b = a.map((x) => (mix * x) / (Math.hypot(...a) || 1) + g() * (1 - Math.abs(mix)) * 0.2);
        const qa = unit(a);
        const qb = unit(b);
        assert.equal(canonicalDistance("cosine", qa, qb), canonicalDistance("ip", qa, qb));
        worst = Math.max(worst, Math.abs(cosineOfDistance(canonicalDistance("cosine", qa, qb)) - floatCosine(a, b)));
      }
      assert.ok(worst <= bound, `dim ${dim}: worst error ${worst} above the bound ${bound}`);
    }
    // A vector against itself: cosine 1, within the bound.
    const v = [0.1, 0.2, 0.3, 0.4];
    assert.ok(Math.abs(cosineOfDistance(canonicalDistance("cosine", unit(v), unit(v))) - 1) <= cosineBound(4));
  });

  it("the vector index document carries metric code 3 as \"cosine\"", () => {
    assert.equal(METRIC_BY_CODE[3], "cosine");
    assert.equal(METRIC_CODE.cosine, 3);
    const dim = 4;
    const fragment = [...packVectors([{ id: 1n, vector: normalizeVector([1, 2, 3, 4]) }], dim, 1 << 16, SCALE)][0]!;
    const root = fragmentRoot(fragment).toString("hex");
    const doc: VectorManifest = { maguId: 9n, dim, metric: "cosine", fragments: [{ cid: fragmentCid(fragment), root, size: fragment.length, count: 1 }] };
    const { bytes, cid } = encodeVectorManifest(doc);
    assert.match(bytes.toString("utf8"), /"metric":"cosine","type"/, "no scaleExp: the default 2^14");
    assert.equal(decodeVectorManifest(bytes, cid).metric, "cosine");
    assert.throws(
      () => encodeVectorManifest({ ...doc, metric: "cos" as "cosine" }),
      (e: unknown) => e instanceof ManifestError && e.context.field === "metric" && /"l2", "ip", "cosine" or "hamming"/.test(e.message),
    );
  });
});
