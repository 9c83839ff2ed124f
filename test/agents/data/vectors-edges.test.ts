import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FRAGMENT_SIZE } from "../../../agents/data/constants.js";
import { InvalidParameterError, VectorBitError, VectorDimensionError, VectorIdError, VectorRecordError, VectorValueError } from "../../../agents/data/errors.js";
import {
  canonicalDistance,
  checkPackedBits,
  chooseScaleExp,
  CONTROL_ID_MIN,
  isControlId,
  MAX_VECTOR_ID,
  maxDim,
  packTombstones,
  readPayload,
  tombstoneIds,
  vectorSize,
  compareHits,
  decodeVector,
  encodeVector,
  hammingDistance,
  normalizeVector,
  readVector,
  decodeHit,
  dequantize,
  encodeHit,
  encodeHitHex,
  encodeRecord,
  innerProduct,
  packRecords,
  packVectors,
  quantize,
  quantizeComponent,
  recordSize,
  recordsPerFragment,
  squaredL2,
  unpackFragment,
  VECTOR_ID_SIZE,
  VECTOR_SCALE,
  writeRecord,
} from "../../../agents/data/vectors.js";

const MAX_DIM = (FRAGMENT_SIZE - 8) / 2;
const UINT64_MAX = (1n << 64n) - 1n;
const invalid = (name: string, reason: string) => (e: unknown): boolean => {
  assert.ok(e instanceof InvalidParameterError, String(e));
  assert.equal(e.context.name, name);
  assert.ok(e.context.reason.includes(reason), e.context.reason);
  return true;
};

describe("vectors: dimensions, quantization and records at their limits", () => {
  it("recordSize and recordsPerFragment: 1 <= dim <= (FRAGMENT_SIZE - 8) / 2", () => {
    assert.equal(VECTOR_SCALE, 16384);
    assert.equal(VECTOR_ID_SIZE, 8);
    assert.equal(recordSize(1), 10);
    assert.equal(recordSize(MAX_DIM), FRAGMENT_SIZE);
    assert.equal(recordsPerFragment(MAX_DIM), 1);
    assert.equal(recordsPerFragment(3), Math.floor(FRAGMENT_SIZE / 14));
    assert.equal(recordsPerFragment(3, 28), 2);
    assert.equal(recordsPerFragment(3, 27), 1);
    assert.equal(recordsPerFragment(3, 14), 1);
    assert.throws(() => recordsPerFragment(3, 13), invalid("dim", "a record of 14 bytes does not fit a 13-byte fragment"));
    for (const bad of [0, -1, 1.5, MAX_DIM + 1]) assert.throws(() => recordSize(bad), invalid("dim", `must be an integer in [1, ${MAX_DIM}]`));
  });

  it("quantizeComponent rounds half away from zero, keeps int16 and never returns -0", () => {
    const at = (q: number) => q / VECTOR_SCALE;
    assert.equal(quantizeComponent(at(0.5)), 1);
    assert.equal(quantizeComponent(at(-0.5)), -1);
    assert.equal(quantizeComponent(at(1.5)), 2);
    assert.equal(quantizeComponent(at(-1.5)), -2);
    assert.equal(quantizeComponent(at(2.4)), 2);
    assert.equal(quantizeComponent(at(-2.4)), -2);
    assert.equal(quantizeComponent(at(-2.6)), -3);
    assert.ok(Object.is(quantizeComponent(-0), 0));
    assert.ok(Object.is(quantizeComponent(at(-0.25)), 0));
    assert.equal(quantizeComponent(at(32767)), 32767);
    assert.equal(quantizeComponent(at(32767.25)), 32767);
    assert.equal(quantizeComponent(-2), -32768);
    assert.equal(quantizeComponent(at(-32768.25)), -32768);
    const outside = (x: number, q: number) => (e: unknown): boolean => {
      assert.ok(e instanceof VectorValueError, String(e));
      assert.deepEqual({ row: e.context.row, column: e.context.column }, { row: 7, column: 3 });
      assert.equal(e.context.reason, `quantizes to ${q} at scale 2^14, outside int16 [-32768, 32767] (scale 2^14 holds |x| below 1.99997)`);
      assert.equal(e.context.scaleExp, 14);
      return true;
    };
    assert.throws(() => quantizeComponent(at(32767.5), 7, 3), outside(at(32767.5), 32768));
    assert.throws(() => quantizeComponent(at(-32768.5), 7, 3), outside(at(-32768.5), -32769));
    assert.throws(() => quantizeComponent(Number.NaN, 7, 3), (e: unknown) => e instanceof VectorValueError && e.context.reason === "is NaN");
    assert.throws(() => quantizeComponent(-Infinity, 7, 3), (e: unknown) => e instanceof VectorValueError && e.context.reason === "is not finite");
    // float32 first: 1e-40 is a float64 but rounds to a float32 denormal, still 0.
    assert.equal(quantizeComponent(1e-40), 0);
    // A finite float64 beyond the float32 range becomes Infinity first.
    assert.throws(() => quantizeComponent(3.4e39), (e: unknown) => e instanceof VectorValueError && e.context.reason === "is not finite");
  });

  it("quantize checks the dimension; dequantize inverts on the grid", () => {
    assert.deepEqual([...quantize([0.5, -0.25, 1])], [8192, -4096, 16384]);
    assert.deepEqual([...quantize(new Float32Array([0.5]))], [8192]);
    assert.throws(() => quantize([0, 0], 3, 2), (e: unknown) => e instanceof VectorDimensionError && e.context.row === 2 && e.context.expected === 3 && e.context.actual === 2);
    assert.throws(() => quantize([], 0), invalid("dim", "must be an integer"));
    assert.deepEqual([...dequantize(new Int16Array([8192, -16384, 1]))], [0.5, -1, 1 / 16384]);
  });

  it("records: ids are uint64 below the 256 control ids, components int16 big-endian", () => {
    const r = encodeRecord({ id: UINT64_MAX - 256n, values: new Int16Array([-1, 256]) });
    assert.deepEqual(r, Buffer.from("fffffffffffffeffffff0100", "hex"));
    assert.throws(() => encodeRecord({ id: UINT64_MAX - 255n, values: new Int16Array(1) }), VectorIdError, "the first control id");
    assert.throws(() => encodeRecord({ id: UINT64_MAX, values: new Int16Array(1) }), VectorIdError, "the tombstone id");
    assert.throws(() => encodeRecord({ id: UINT64_MAX + 1n, values: new Int16Array(1) }), VectorIdError);
    assert.throws(() => encodeRecord({ id: -1n, values: new Int16Array(1) }), VectorIdError);
    const out = Buffer.alloc(20, 0xaa);
    assert.equal(writeRecord(5n, new Int16Array([1, 2, 3]), out, 3), 14);
    assert.deepEqual(out, Buffer.from("aaaaaa" + "0000000000000005" + "000100020003" + "aaaaaa", "hex"));
    assert.throws(() => [...packVectors([{ id: 1.5, vector: [0] }], 1)], (e: unknown) => e instanceof VectorIdError && e.context.row === 0);
    assert.throws(() => [...packVectors([{ id: 1, vector: [0] }, { id: 2 ** 53, vector: [0] }], 1)], (e: unknown) => e instanceof VectorIdError && e.context.row === 1);
    assert.deepEqual([...packVectors([{ id: Number.MAX_SAFE_INTEGER, vector: [0] }], 1)][0]!.readBigUInt64BE(0), BigInt(Number.MAX_SAFE_INTEGER));
  });

  it("packing: full fragments, then the rest; never an empty fragment", () => {
    const vs = (n: number) => Array.from({ length: n }, (_, i) => ({ id: i, vector: [i / 100, -i / 100] }));
    const size = recordSize(2);
    for (const [n, fragmentSize, lengths] of [
      [0, 24, []],
      [1, 24, [12]],
      [2, 24, [24]],
      [3, 24, [24, 12]],
      [4, 24, [24, 24]],
      [5, 35, [24, 24, 12]],
    ] as const) {
      const packed = [...packVectors(vs(n), 2, fragmentSize)];
      assert.deepEqual(packed.map((f) => f.length), lengths, `${n} vectors into ${fragmentSize}`);
      const records = packed.flatMap((f) => unpackFragment(f, 2));
      assert.deepEqual(records.map((r) => r.id), vs(n).map((v) => BigInt(v.id)));
      assert.deepEqual(records.map((r) => [...r.values]), vs(n).map((v) => [...quantize(v.vector)]));
      const again = [...packRecords(records, 2, fragmentSize)];
      assert.deepEqual(again, packed);
    }
    assert.equal(size, 12);
    assert.throws(() => [...packRecords([{ id: 0n, values: new Int16Array(2) }, { id: 1n, values: new Int16Array(3) }], 2)], (e: unknown) => e instanceof VectorDimensionError && e.context.row === 1 && e.context.actual === 3);
    assert.throws(() => [...packRecords([{ id: 0n, values: new Int16Array(2) }, { id: -1n, values: new Int16Array(2) }], 2)], (e: unknown) => e instanceof VectorIdError && e.context.row === 1);
    assert.throws(() => [...packVectors([{ id: 0, vector: [0, 0] }, { id: 1, vector: [0] }], 2)], (e: unknown) => e instanceof VectorDimensionError && e.context.row === 1);
  });

  it("unpackFragment reads views and refuses partial records", () => {
    const frag = Buffer.concat([encodeRecord({ id: 1n, values: new Int16Array([3, -4]) }), encodeRecord({ id: 2n, values: new Int16Array([-5, 6]) })]);
    const big = Buffer.concat([Buffer.alloc(5, 9), frag, Buffer.alloc(3, 9)]);
    const recs = unpackFragment(new Uint8Array(big.buffer, big.byteOffset + 5, frag.length), 2);
    assert.deepEqual(recs.map((r) => [r.id, ...r.values]), [[1n, 3, -4], [2n, -5, 6]]);
    assert.deepEqual(unpackFragment(Buffer.alloc(0), 2), []);
    assert.throws(() => unpackFragment(frag.subarray(1), 2), (e: unknown) => e instanceof VectorRecordError && e.context.length === 23 && e.context.recordSize === 12);
  });
});

describe("vectors: distances and hit words at their limits", () => {
  it("distances check the dimensions and are exact at the extremes", () => {
    const a = new Int16Array([-32768, 32767, 0]);
    const b = new Int16Array([32767, -32768, 5]);
    assert.equal(squaredL2(a, b), 2n * 65535n * 65535n + 25n);
    assert.equal(innerProduct(a, b), 2n * -32768n * 32767n);
    assert.equal(canonicalDistance("ip", a, b), -innerProduct(a, b));
    assert.equal(canonicalDistance("l2", a, a), 0n);
    assert.throws(() => squaredL2(a, b.subarray(1)), VectorDimensionError);
    assert.throws(() => innerProduct(a.subarray(1), b), VectorDimensionError);
    assert.throws(() => canonicalDistance("cos" as "l2", a, b), invalid("metric", 'must be "l2", "ip", "cosine" or "hamming"'));
  });

  it("compareHits: distance, then id, then fragment, then position (missing ones as 0)", () => {
    const h = (distance: bigint, id: bigint, fragment?: number, position?: number) => ({ distance, id, fragment, position });
    assert.equal(compareHits(h(-1n, 9n), h(0n, 0n)), -1);
    assert.equal(compareHits(h(1n, 0n), h(0n, 9n)), 1);
    assert.equal(compareHits(h(0n, 1n), h(0n, 2n)), -1);
    assert.equal(compareHits(h(0n, 3n), h(0n, 2n)), 1);
    assert.ok(compareHits(h(0n, 1n, 2, 0), h(0n, 1n, 3, 0)) < 0);
    assert.ok(compareHits(h(0n, 1n, 4, 0), h(0n, 1n, 3, 9)) > 0);
    assert.ok(compareHits(h(0n, 1n, 3, 1), h(0n, 1n, 3, 2)) < 0);
    assert.ok(compareHits(h(0n, 1n, 3, 5), h(0n, 1n, 3, 2)) > 0);
    assert.equal(compareHits(h(0n, 1n, 3, 2), h(0n, 1n, 3, 2)), 0);
    assert.ok(compareHits(h(0n, 1n), h(0n, 1n, 1)) < 0);
    assert.ok(compareHits(h(0n, 1n, 0, 1), h(0n, 1n)) > 0);
    assert.equal(compareHits(h(0n, 1n), h(0n, 1n)), 0);
  });

  it("encodeHit accepts exactly the field ranges and lays the word out", () => {
    const INT64_MIN = -(1n << 63n);
    const INT64_MAX = (1n << 63n) - 1n;
    const ok = { distance: 0n, id: 0n, fragment: 0, position: 0 };
    const top = { distance: INT64_MAX, id: UINT64_MAX, fragment: 0xffffffff, position: 0xffffffff };
    assert.equal(encodeHit(top), ((1n << 256n) - 1n) ^ ((1n << 64n) - 1n));
    assert.equal(encodeHit({ ...ok, distance: INT64_MIN }), 0n);
    assert.equal(encodeHit(ok), 1n << 255n);
    assert.equal(encodeHit({ ...ok, id: 1n }), (1n << 255n) | (1n << 128n));
    assert.equal(encodeHit({ ...ok, fragment: 1 }), (1n << 255n) | (1n << 96n));
    assert.equal(encodeHit({ ...ok, position: 1 }), (1n << 255n) | (1n << 64n));
    assert.deepEqual(decodeHit(encodeHit(top)), top);
    assert.deepEqual(decodeHit(encodeHit({ ...ok, distance: INT64_MIN })), { ...ok, distance: INT64_MIN });
    assert.deepEqual(decodeHit(encodeHit({ ...ok, distance: -1n })), { ...ok, distance: -1n });
    for (const [field, value, reason] of [
      ["distance", INT64_MAX + 1n, "int64 range"],
      ["distance", INT64_MIN - 1n, "int64 range"],
      ["distance", 5, "int64 range"],
      ["id", -1n, "uint64 bigint"],
      ["id", UINT64_MAX + 1n, "uint64 bigint"],
      ["id", 5, "uint64 bigint"],
      ["fragment", -1, "uint32"],
      ["fragment", 0x100000000, "uint32"],
      ["fragment", 1.5, "uint32"],
      ["position", -1, "uint32"],
      ["position", 0x100000000, "uint32"],
      ["position", 0.5, "uint32"],
    ] as const) {
      assert.throws(() => encodeHit({ ...ok, [field]: value } as typeof ok), invalid(field, reason), `${field} ${value}`);
    }
    assert.equal(encodeHitHex({ ...ok, distance: INT64_MIN }), `0x${"0".repeat(64)}`);
    assert.equal(encodeHitHex({ ...ok, distance: INT64_MIN, position: 1 }), `0x${"0".repeat(47)}1${"0".repeat(16)}`);
  });

  it("decodeHit takes 1 to 64 hex digits or a 256-bit integer whose low 64 bits are zero", () => {
    const word = encodeHit({ distance: 7n, id: 8n, fragment: 9, position: 10 });
    assert.deepEqual(decodeHit(`0x${word.toString(16).toUpperCase()}`), { distance: 7n, id: 8n, fragment: 9, position: 10 });
    assert.deepEqual(decodeHit(`0x${"f".repeat(48)}${"0".repeat(16)}`), { distance: (1n << 63n) - 1n, id: UINT64_MAX, fragment: 0xffffffff, position: 0xffffffff });
    assert.deepEqual(decodeHit(`0x0`), { distance: -(1n << 63n), id: 0n, fragment: 0, position: 0 });
    for (const bad of ["0x", "0x" + "0".repeat(65), "1234", "0xg0", " 0x00"]) assert.throws(() => decodeHit(bad), invalid("word", "must be 0x followed by 1 to 64 hex digits"));
    assert.throws(() => decodeHit(1n << 256n), invalid("word", "256-bit unsigned"));
    assert.throws(() => decodeHit(-(1n << 64n)), invalid("word", "256-bit unsigned"));
    assert.throws(() => decodeHit(1n << 63n), invalid("word", "low 64 bits must be zero"));
    assert.throws(() => decodeHit(5 as unknown as bigint), invalid("word", "256-bit unsigned"));
    assert.deepEqual(decodeHit((1n << 256n) - (1n << 64n)), decodeHit(`0x${"f".repeat(48)}${"0".repeat(16)}`));
  });
});

describe("vectors: reading, encoding and comparing vectors, each refusal by name", () => {
  it("readVector needs the whole vector inside the bytes", () => {
    const bytes = Buffer.alloc(20);
    assert.equal(readVector(bytes, 4, 8, "l2").length, 8, "ends exactly at the last byte");
    for (const offset of [-1, 5]) assert.throws(() => readVector(bytes, offset, 8, "l2"), invalid("offset", "a 16-byte vector does not fit 20 bytes"));
    assert.throws(() => readVector(bytes, 19, 12, "hamming"), invalid("offset", "a 2-byte vector does not fit 20 bytes"));
  });

  it("decodeVector says what a query of the Magu's dimension is; encodeVector passes packed bits through", () => {
    const refused = (bytes: number, dim: number, metric: "l2" | "hamming", what: string) =>
      assert.throws(() => decodeVector(Buffer.alloc(bytes), dim, metric), (e: unknown) => {
        assert.ok(e instanceof InvalidParameterError, String(e));
        assert.deepEqual([e.context.name, e.context.value, e.context.reason], ["query", `${bytes} bytes`, `must be ${what}, the Magu's dimension`]);
        return true;
      });
    refused(15, 8, "l2", "16 bytes (8 int16 components)");
    refused(3, 12, "hamming", "2 bytes of packed bits (12 bits)");
    const bits = Uint8Array.of(0xab, 0xc0);
    assert.deepEqual(encodeVector(bits), Buffer.from(bits));
    assert.deepEqual(encodeVector(Int16Array.of(1, -2)), Buffer.from([0, 1, 0xff, 0xfe]));
  });

  it("distances refuse mixed or wrong representations and vectors of two lengths", () => {
    const bits = Uint8Array.of(1, 2);
    const ints = Int16Array.of(1, 2);
    assert.throws(() => canonicalDistance("hamming", bits, ints), invalid("vectors", "a Hamming distance is between packed bits (Uint8Array)"));
    assert.throws(() => canonicalDistance("hamming", ints, bits), invalid("vectors", "a Hamming distance is between packed bits (Uint8Array)"));
    assert.throws(() => canonicalDistance("l2", bits, bits), invalid("vectors", "must be int16 components (Int16Array)"));
    assert.equal(canonicalDistance("hamming", Uint8Array.of(0xff), Uint8Array.of(0x0f)), 4n);
    assert.throws(() => hammingDistance(Uint8Array.of(1), Uint8Array.of(1, 2)), (e: unknown) => e instanceof VectorDimensionError && e.context.expected === 1 && e.context.actual === 2);
    assert.throws(() => normalizeVector([1, Number.NaN], 3), (e: unknown) => e instanceof VectorValueError && e.context.row === 3 && e.context.column === 1 && e.context.reason === "is NaN");
  });

  it("checkPackedBits names the row, the bit and what is wrong", () => {
    const bitError = (row: number, column: number, value: string, reason: string) => (e: unknown): boolean => {
      assert.ok(e instanceof VectorBitError, String(e));
      assert.deepEqual(e.context, { row, column, value, reason });
      return true;
    };
    assert.throws(() => checkPackedBits(Int16Array.of(1, 2), 12, 4), bitError(4, 0, "2 int16 components", "is not a binary vector: a Hamming record holds 2 bytes of packed bits"));
    assert.throws(() => checkPackedBits(Uint8Array.of(1, 2, 3), 12, 5), bitError(5, 0, "3 bytes", "is not 2 bytes of packed bits (12 bits)"));
    assert.throws(() => checkPackedBits(Uint8Array.of(1, 0x1f), 12, 6), bitError(6, 12, "byte 1 = 0x1f", "sets padding bits past bit 11: the low 4 bits of the last byte must be zero"));
    assert.throws(() => checkPackedBits(Uint8Array.of(1, 0x01), 15, 0), bitError(0, 15, "byte 1 = 0x01", "sets padding bits past bit 14: the low 1 bits of the last byte must be zero"));
    checkPackedBits(Uint8Array.of(1, 0xf0), 12);
    checkPackedBits(Uint8Array.of(1, 0xfe), 15);
  });
});

describe("vectors: control ids, metric names, tombstones among vectors", () => {
  it("the top 256 ids are control ids, the one below them a vector's", () => {
    assert.equal(isControlId(CONTROL_ID_MIN), true);
    assert.equal(isControlId(CONTROL_ID_MIN - 1n), false);
    assert.equal(MAX_VECTOR_ID, CONTROL_ID_MIN - 1n);
    assert.equal(isControlId(UINT64_MAX), true);
  });

  it("a metric that is not one is named, wherever a dimension is checked; the largest dimensions", () => {
    const badMetric = invalid("metric", 'must be "l2", "ip", "cosine" or "hamming"');
    assert.throws(() => vectorSize(8, "l1" as never), badMetric);
    assert.throws(() => recordSize(8, "" as never), badMetric);
    assert.equal(maxDim(), MAX_DIM);
    assert.equal(maxDim("hamming"), (FRAGMENT_SIZE - 8) * 8);
    assert.equal(vectorSize(MAX_DIM), FRAGMENT_SIZE - 8);
    assert.throws(() => chooseScaleExp([1], 0), invalid("dim", `must be an integer in [1, ${MAX_DIM}]`));
  });

  it("readPayload with bytes ending exactly at the next record's id; tombstone ids only from tombstone records", () => {
    const dim = 8;
    const rs = recordSize(dim);
    const [two] = [...packRecords([{ id: 1n, values: new Int16Array(dim) }, { id: 2n, values: new Int16Array(dim) }], dim, 1 << 16)];
    assert.deepEqual(readPayload(two!.subarray(0, rs + 8), 0, rs, two!.length), { payload: null, end: rs + 8 });
    // A fragment with a vector before and after a tombstone record: only the tombstone's ids.
    const tomb = packTombstones([5n, 6n], dim)[0]!;
    const mixed = Buffer.concat([two!.subarray(0, rs), tomb, two!.subarray(rs)]);
    assert.deepEqual(tombstoneIds(mixed, dim), [5n, 6n]);
  });
});
