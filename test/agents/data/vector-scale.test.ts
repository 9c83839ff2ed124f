/**
 * A vector Magu's quantization scale 2^e (data/vectors.ts, data/vector-manifest.ts): the scale the
 * first batch picks for each value range, exactness where the data allows it, a value that does not
 * fit a given scale, and the vector index document with and without `scaleExp`.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { fragmentCid } from "../../../agents/data/cid.js";
import { InvalidParameterError, ManifestError, VectorValueError } from "../../../agents/data/errors.js";
import { manifestCidOf } from "../../../agents/data/manifest.js";
import { fragmentRoot } from "../../../agents/data/merkle.js";
import { decodeVectorManifest, encodeVectorManifest, manifestScaleExp, type VectorManifest } from "../../../agents/data/vector-manifest.js";
import {
  canonicalDistance,
  chooseScaleExp,
  dequantize,
  expOfScale,
  packVectors,
  quantize,
  quantizeComponent,
  scaleLimit,
  scaleOfExp,
  unpackFragment,
  VECTOR_SCALE,
  VECTOR_SCALE_EXP,
  VECTOR_SCALE_EXP_MAX,
  VECTOR_SCALE_EXP_MIN,
} from "../../../agents/data/vectors.js";
import { gaussian, prng } from "../index/fixtures.js";

/** `count × dim` clustered values whose largest |x| is exactly `range` (float32). */
function clustered(count: number, dim: number, range: number, seed: number): Float32Array {
  const g = gaussian(prng(seed));
  const centres = Array.from({ length: 8 * dim }, () => g());
  const raw = new Float64Array(count * dim);
  let max = 0;
  for (let r = 0; r < count; r++) {
    const c = r % 8;
    for (let i = 0; i < dim; i++) {
      const x = centres[c * dim + i]! + 0.3 * g();
      raw[r * dim + i] = x;
      max = Math.max(max, Math.abs(x));
    }
  }
  const out = new Float32Array(count * dim);
  for (let i = 0; i < raw.length; i++) out[i] = (raw[i]! / max) * range;
  // the extreme component lands exactly on ±range
  const at = raw.findIndex((x) => Math.abs(x) === max);
  out[at] = Math.sign(raw[at]!) * range;
  return out;
}

/** The largest e that fits, by brute force over quantize (the definition, not the shortcut). */
function largestFitting(values: Float32Array): number {
  for (let e = VECTOR_SCALE_EXP_MAX; e >= VECTOR_SCALE_EXP_MIN; e--) {
    try {
      quantize(values, values.length, 0, 2 ** e);
      return e;
    } catch {
      continue;
    }
  }
  throw new Error("no scale fits");
}

describe("vectors: the scale a Magu's first batch picks", () => {
  it("±1e-3 -> 2^24, ±2 -> 2^13, ±15 -> 2^11, ±300 -> 2^6, 0..255 integers -> 2^7", () => {
    const cases: Array<[string, Float32Array, number]> = [
      ["±1e-3", clustered(500, 16, 1e-3, 1), 24],
      ["±2", clustered(500, 16, 2, 2), 13],
      ["±15", clustered(500, 16, 15, 3), 11],
      ["±300", clustered(500, 16, 300, 4), 6],
      ["0..255 integers", Float32Array.from({ length: 500 * 16 }, (_, i) => (i * 37) % 256), 7],
    ];
    for (const [name, values, want] of cases) {
      const e = chooseScaleExp(values, 16);
      assert.equal(e, want, name);
      assert.equal(e, largestFitting(values), `${name}: the largest scale that fits`);
      // every value fits, and at e + 1 some value does not
      quantize(values, values.length, 0, scaleOfExp(e));
      assert.throws(() => quantize(values, values.length, 0, scaleOfExp(e + 1)), VectorValueError, name);
      // the largest |x| uses at least half the int16 range: 15 bits of resolution
      const q = quantize(values, values.length, 0, scaleOfExp(e));
      assert.ok(Math.max(...Array.from(q, Math.abs)) >= 16384, name);
    }
  });

  it("keeps 2^14 for data whose largest |x| is in [1, 2), the range of every Magu before the scale existed", () => {
    for (const range of [1, 1.25, 1.5, 1.99]) assert.equal(chooseScaleExp(clustered(200, 8, range, 9), 8), VECTOR_SCALE_EXP, String(range));
    // the asymmetric int16 range: -2 fits at 2^14 (-32768), +2 does not; -1 alone fits 2^15
    assert.equal(chooseScaleExp([-2, 1.5]), 14);
    assert.equal(chooseScaleExp([2, 1.5]), 13);
    assert.equal(chooseScaleExp([-1, 0.5]), 15);
    assert.equal(chooseScaleExp([1, 0.5]), 14);
    // nothing to scale: the default
    assert.equal(chooseScaleExp([0, -0, 0]), VECTOR_SCALE_EXP);
  });

  it("0..255 integers are exact at 2^7: records, dequantized values and distances", () => {
    const dim = 16;
    const values = Float32Array.from({ length: 64 * dim }, (_, i) => (i * 101 + 7) % 256);
    const e = chooseScaleExp(values, dim);
    assert.equal(e, 7);
    const scale = scaleOfExp(e);
    const rows = Array.from({ length: 64 }, (_, r) => values.subarray(r * dim, (r + 1) * dim));
    const q = rows.map((v) => quantize(v, dim, 0, scale));
    q.forEach((row, r) => assert.deepEqual([...dequantize(row, scale)], [...rows[r]!], `row ${r}`));
    for (let a = 0; a < 8; a++) {
      for (let b = 0; b < 8; b++) {
        let l2 = 0;
        let ip = 0;
        for (let i = 0; i < dim; i++) {
          l2 += (rows[a]![i]! - rows[b]![i]!) ** 2;
          ip += rows[a]![i]! * rows[b]![i]!;
        }
        assert.equal(canonicalDistance("l2", q[a]!, q[b]!), BigInt(l2) * 2n ** 14n);
        assert.equal(canonicalDistance("ip", q[a]!, q[b]!), -BigInt(ip) * 2n ** 14n);
      }
    }
    // through the records too
    const [fragment] = [...packVectors(rows.map((vector, id) => ({ id, vector })), dim, undefined, scale)];
    assert.deepEqual(unpackFragment(fragment!, dim).map((r) => [...r.values]), q.map((r) => [...r]));
  });

  it("rounds to within 2^-(e+1) of every float32 value at its scale (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: true, noDefaultInfinity: true }), { minLength: 1, maxLength: 40, size: "max" }), (xs) => {
        const e = chooseScaleExp(xs);
        assert.ok(e >= VECTOR_SCALE_EXP_MIN && e <= VECTOR_SCALE_EXP_MAX);
        const q = quantize(xs, xs.length, 0, scaleOfExp(e));
        xs.forEach((x, i) => assert.ok(Math.abs(Math.fround(x) - q[i]! / 2 ** e) <= 2 ** -(e + 1), `${x} at 2^${e}`));
        if (e < VECTOR_SCALE_EXP_MAX && xs.some((x) => Math.fround(x) !== 0)) assert.throws(() => quantize(xs, xs.length, 0, scaleOfExp(e + 1)), VectorValueError);
      }),
      { numRuns: 300 },
    );
  });

  it("any finite float32 gets a scale: the largest and the smallest magnitudes", () => {
    const maxF32 = 3.4028234663852886e38;
    const minSub = 2 ** -149;
    for (const x of [maxF32, -maxF32, minSub, -minSub, 1e-30, 1e30]) {
      const e = chooseScaleExp([x]);
      assert.ok(e > VECTOR_SCALE_EXP_MIN && e < VECTOR_SCALE_EXP_MAX, `${x}: 2^${e} inside the bounds`);
      const q = quantizeComponent(x, 0, 0, scaleOfExp(e));
      assert.ok(Math.abs(q) >= 16384, `${x} -> ${q} at 2^${e}`);
    }
    assert.equal(chooseScaleExp([maxF32]), -114);
    assert.equal(chooseScaleExp([minSub]), 163);
  });

  it("refuses NaN and Infinity when choosing, naming row and column", () => {
    const values = new Float32Array(12);
    values[7] = Number.NaN;
    assert.throws(() => chooseScaleExp(values, 4), (e: unknown) => e instanceof VectorValueError && e.context.row === 1 && e.context.column === 3 && e.context.reason === "is NaN");
    values[7] = -Infinity;
    assert.throws(() => chooseScaleExp(values, 4), (e: unknown) => e instanceof VectorValueError && e.context.row === 1 && e.context.column === 3 && e.context.reason === "is not finite");
  });

  it("picks the largest exponent at which the extremes still round into int16, at the boundaries", () => {
    // 32767 / 2^14 scales to exactly 32767 at 2^14; a hair more still rounds down to it.
    assert.equal(chooseScaleExp([32767 / 16384]), 14);
    assert.equal(chooseScaleExp([32767.4 / 16384]), 14); // log2(32767 / x) is below 14: found by stepping up
    assert.equal(chooseScaleExp([32767.6 / 16384]), 13); // rounds to 32768 at 2^14
    assert.equal(chooseScaleExp([-32768 / 16384]), 14); // int16's negative end is one further
    assert.equal(chooseScaleExp([-32768.4 / 16384, 0.5]), 14);
    assert.equal(chooseScaleExp([-32768.6 / 16384]), 13);
  });
});

describe("vectors: quantizing at a given scale", () => {
  it("the scale is a power of two 2^e, e an integer in the bounds; 2^14 stays the default", () => {
    assert.equal(VECTOR_SCALE, 2 ** VECTOR_SCALE_EXP);
    assert.equal(scaleOfExp(7), 128);
    assert.equal(expOfScale(2 ** -20), -20);
    for (const bad of [0, -1, 3, 1000, Number.NaN, 2 ** (VECTOR_SCALE_EXP_MAX + 1), 2 ** (VECTOR_SCALE_EXP_MIN - 1)]) {
      assert.throws(() => expOfScale(bad), InvalidParameterError, String(bad));
      assert.throws(() => quantize([0], 1, 0, bad), InvalidParameterError, String(bad));
      assert.throws(() => [...packVectors([{ id: 0, vector: [0] }], 1, undefined, bad)], InvalidParameterError, String(bad));
    }
    for (const bad of [1.5, VECTOR_SCALE_EXP_MAX + 1, VECTOR_SCALE_EXP_MIN - 1]) {
      assert.throws(() => scaleOfExp(bad), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "scaleExp" && e.context.reason === `must be an integer in [${VECTOR_SCALE_EXP_MIN}, ${VECTOR_SCALE_EXP_MAX}]`);
    }
    // Both ends are scales.
    assert.equal(scaleOfExp(VECTOR_SCALE_EXP_MIN), 2 ** VECTOR_SCALE_EXP_MIN);
    assert.equal(scaleOfExp(VECTOR_SCALE_EXP_MAX), 2 ** VECTOR_SCALE_EXP_MAX);
    assert.equal(expOfScale(2 ** VECTOR_SCALE_EXP_MIN), VECTOR_SCALE_EXP_MIN);
    assert.equal(expOfScale(2 ** VECTOR_SCALE_EXP_MAX), VECTOR_SCALE_EXP_MAX);
    // Every function that takes a scale checks it, also with nothing to quantize.
    const badScale = (e: unknown): boolean =>
      e instanceof InvalidParameterError && e.context.name === "scale" && e.context.reason === `must be a power of two 2^e, e an integer in [${VECTOR_SCALE_EXP_MIN}, ${VECTOR_SCALE_EXP_MAX}]`;
    assert.throws(() => expOfScale(3), badScale);
    assert.throws(() => quantizeComponent(0.5, 0, 0, 3), badScale);
    assert.throws(() => dequantize(new Int16Array([1]), 3), badScale);
    assert.throws(() => [...packVectors([], 1, undefined, 3)], badScale);
    assert.deepEqual([...quantize([0.5, -1])], [...quantize([0.5, -1], 2, 0, VECTOR_SCALE)]);
    assert.deepEqual([...quantize([300, -300, 1.5], 3, 0, 2 ** 6)], [19200, -19200, 96]);
    assert.deepEqual([...dequantize(new Int16Array([19200, -96]), 2 ** 6)], [300, -1.5]);
  });

  it("a value that does not fit names its row, column, value and the scale, with the range the scale holds", () => {
    const vectors = [
      { id: 0, vector: [1, 2, 3] },
      { id: 1, vector: [4, 15.9, -15.99] },
      { id: 2, vector: [0, 16.5, 0] },
    ];
    const scale = scaleOfExp(11); // holds |x| below 16
    assert.equal(scaleLimit(11), 32767.5 / 2048);
    assert.throws(
      () => [...packVectors(vectors, 3, undefined, scale)],
      (e: unknown) => {
        assert.ok(e instanceof VectorValueError, String(e));
        assert.equal(e.context.row, 2);
        assert.equal(e.context.column, 1);
        assert.equal(e.context.value, 16.5);
        assert.equal(e.context.scaleExp, 11);
        assert.equal(e.message, "vector row 2, column 1: value 16.5 quantizes to 33792 at scale 2^11, outside int16 [-32768, 32767] (scale 2^11 holds |x| below 15.9998)");
        return true;
      },
    );
    // the value at the old fixed scale
    assert.throws(() => quantizeComponent(-2.2063825130462646), /at scale 2\^14, outside int16 .* holds \|x\| below 1\.99997/);
    assert.equal(quantizeComponent(-2.2063825130462646, 0, 0, 2 ** 13), -18075);
  });
});

describe("vector index document: scaleExp", () => {
  const dim = 2;
  const bytes = [...packVectors([{ id: 0, vector: [0.5, -0.25] }, { id: 1, vector: [1, 1] }], dim)][0]!;
  const fragment = { cid: fragmentCid(bytes), root: fragmentRoot(bytes).toString("hex"), size: bytes.length, count: 2 };
  const base: VectorManifest = { maguId: 7n, dim, metric: "l2", fragments: [fragment] };
  /** A document with its CIDs as strings (CID objects compare by more than their value). */
  const plain = (m: VectorManifest) => ({ ...m, fragments: m.fragments.map((f) => ({ ...f, cid: f.cid.toString() })) });
  const legacyText =
    `{"dim":2,"fragments":[{"cid":{"/":"${fragment.cid.toString()}"},"count":2,"root":"${fragment.root}","size":${bytes.length}}],` +
    `"magu":"7","metric":"l2","type":"muri/vector-index","version":1}`;

  it("without the field: the bytes of the documents written so far, read back as scale 2^14", () => {
    const doc = encodeVectorManifest(base);
    assert.equal(doc.bytes.toString("utf8"), legacyText);
    assert.equal(doc.cid.toString(), manifestCidOf(Buffer.from(legacyText)).toString());
    const back = decodeVectorManifest(doc.bytes, doc.cid);
    assert.equal(back.scaleExp, 14);
    assert.equal(manifestScaleExp(back), 14);
    assert.equal(manifestScaleExp(base), 14);
    assert.deepEqual(plain(back), { ...plain(base), scaleExp: 14 });
    // 14 spelled out is the same document
    assert.equal(encodeVectorManifest({ ...base, scaleExp: 14 }).cid.toString(), doc.cid.toString());
  });

  it("with the field: written between metric and type, read back, and part of the CID", () => {
    for (const scaleExp of [7, -3, 24, VECTOR_SCALE_EXP_MIN, VECTOR_SCALE_EXP_MAX]) {
      const doc = encodeVectorManifest({ ...base, scaleExp });
      assert.equal(doc.bytes.toString("utf8"), legacyText.replace(`"metric":"l2",`, `"metric":"l2","scaleExp":${scaleExp},`));
      const back = decodeVectorManifest(doc.bytes, doc.cid);
      assert.equal(back.scaleExp, scaleExp);
      assert.deepEqual(plain(back), plain({ ...base, scaleExp }));
      assert.notEqual(doc.cid.toString(), encodeVectorManifest(base).cid.toString());
    }
  });

  it("refuses a scale out of bounds or not an integer, and a spelled-out 14 (not canonical)", () => {
    for (const bad of [VECTOR_SCALE_EXP_MIN - 1, VECTOR_SCALE_EXP_MAX + 1, 1.5, Number.NaN]) {
      assert.throws(() => encodeVectorManifest({ ...base, scaleExp: bad }), (e: unknown) => e instanceof ManifestError && /scaleExp/.test(e.message), String(bad));
    }
    const forged = (text: string) => {
      const b = Buffer.from(text);
      return () => decodeVectorManifest(b, manifestCidOf(b));
    };
    assert.throws(forged(legacyText.replace(`"metric":"l2",`, `"metric":"l2","scaleExp":14,`)), /not canonical/);
    assert.throws(forged(legacyText.replace(`"metric":"l2",`, `"metric":"l2","scaleExp":999,`)), /scaleExp/);
    assert.throws(forged(legacyText.replace(`"metric":"l2",`, `"metric":"l2","scaleExp":"7",`)), /scaleExp/);
    assert.throws(forged(legacyText.replace(`"metric":"l2",`, `"metric":"l2","scaleExp":7.5,`)), /scaleExp/);
  });
});
