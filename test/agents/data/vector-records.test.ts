import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { FRAGMENT_SIZE } from "../../../agents/data/constants.js";
import { VectorDimensionError, VectorIdError, VectorRecordError, VectorValueError } from "../../../agents/data/errors.js";
import {
  dequantize,
  encodeRecord,
  innerProduct,
  packVectors,
  quantize,
  quantizeComponent,
  recordSize,
  recordsPerFragment,
  squaredL2,
  unpackFragment,
  VECTOR_SCALE,
} from "../../../agents/data/vectors.js";

describe("vectors: canonical int16 records", () => {
  it("quantizes with scale 2^14, rounding half away from zero, within int16", () => {
    assert.equal(VECTOR_SCALE, 16384);
    assert.deepEqual(Array.from(quantize([0, 1, -1, 0.5, 1.5 / 16384, -1.5 / 16384, 2.5 / 16384, 32767 / 16384, -2])), [0, 16384, -16384, 8192, 2, -2, 3, 32767, -32768]);
    assert.ok(Object.is(quantizeComponent(-0.00001), 0), "no negative zero");
  });

  it("rejects NaN, Infinity and out-of-range values naming row and column", () => {
    const check = (value: number) => (e: unknown) => e instanceof VectorValueError && e.code === "ERR_VECTOR_VALUE" && e.context.row === 4 && e.context.column === 2 && Object.is(e.context.value, value);
    for (const bad of [NaN, Infinity, -Infinity, 2, -2.0001, 1e9]) assert.throws(() => quantize([0, 0, bad], 3, 4), check(bad));
    assert.throws(() => quantize([0, 0], 3, 1), (e: unknown) => e instanceof VectorDimensionError && e.context.row === 1);
    assert.throws(() => [...packVectors([{ id: 0, vector: [0] }, { id: 1, vector: [NaN] }], 1)], (e: unknown) => e instanceof VectorValueError && e.context.row === 1 && e.context.column === 0);
    assert.throws(() => [...packVectors([{ id: -1, vector: [0] }], 1)], VectorIdError);
    assert.throws(() => [...packVectors([{ id: 1n << 64n, vector: [0] }], 1)], VectorIdError);
  });

  it("record = uint64_be id ‖ int16_be components", () => {
    const rec = encodeRecord({ id: 0x0102030405060708n, values: Int16Array.from([1, -2, 32767]) });
    assert.equal(rec.toString("hex"), "0102030405060708" + "0001" + "fffe" + "7fff");
    assert.equal(recordSize(3), 14);
  });

  it("packs whole records into fragments <= FRAGMENT_SIZE and unpacks them (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 30, max: 400 }), (dim, count, fragmentSize) => {
        const size = recordSize(dim);
        fc.pre(size <= fragmentSize);
        const vectors = Array.from({ length: count }, (_, i) => ({ id: BigInt(i) * 1_000_003n, vector: Array.from({ length: dim }, (_, c) => Math.sin(i * 31 + c) * 1.9) }));
        const fragments = [...packVectors(vectors, dim, fragmentSize)];
        assert.equal(fragments.length, Math.ceil(count / recordsPerFragment(dim, fragmentSize)));
        const records = fragments.flatMap((f) => {
          assert.ok(f.length <= fragmentSize && f.length % size === 0);
          return unpackFragment(f, dim);
        });
        assert.equal(records.length, count);
        records.forEach((r, i) => {
          assert.equal(r.id, vectors[i]!.id);
          assert.deepEqual(r.values, quantize(vectors[i]!.vector, dim));
          dequantize(r.values).forEach((x, c) => assert.ok(Math.abs(x - vectors[i]!.vector[c]!) <= 0.5 / VECTOR_SCALE + 1e-7));
        });
      }),
      { numRuns: 80 },
    );
    assert.equal(recordsPerFragment(768), Math.floor(FRAGMENT_SIZE / 1544));
    assert.throws(() => unpackFragment(Buffer.alloc(15), 3), VectorRecordError);
  });

  it("distances are exact bigints: Σ(a−b)² and Σ a·b (property, against bigint arithmetic)", () => {
    const int16 = fc.integer({ min: -32768, max: 32767 });
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 64 }).chain((d) => fc.tuple(fc.array(int16, { minLength: d, maxLength: d }), fc.array(int16, { minLength: d, maxLength: d }))), ([a, b]) => {
        const A = Int16Array.from(a);
        const B = Int16Array.from(b);
        let l2 = 0n;
        let ip = 0n;
        for (let i = 0; i < a.length; i++) {
          l2 += (BigInt(a[i]!) - BigInt(b[i]!)) ** 2n;
          ip += BigInt(a[i]!) * BigInt(b[i]!);
        }
        assert.equal(squaredL2(A, B), l2);
        assert.equal(innerProduct(A, B), ip);
      }),
      { numRuns: 200 },
    );
    const dim = 524284;
    const max = new Int16Array(dim).fill(32767);
    const min = new Int16Array(dim).fill(-32768);
    assert.equal(squaredL2(max, min), 65535n * 65535n * BigInt(dim));
    assert.equal(innerProduct(min, min), 32768n * 32768n * BigInt(dim));
  });
});
