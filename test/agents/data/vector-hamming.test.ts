/**
 * The Hamming metric's data layer (data/vectors.ts, data/vector-files.ts, data/vector-manifest.ts):
 * bit packing MSB first with zero padding, record sizes by metric, records packed and unpacked,
 * popcount distances against a bit-by-bit count, padding bits never counted, the binary file
 * formats (.npy of uint8, .bits, .jsonl of 0/1) and the errors that name the row, the bit and the
 * fix, and the vector index document of a Hamming Magu (code 4, no scale).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import fc from "fast-check";
import { fragmentCid } from "../../../agents/data/cid.js";
import { ManifestError, VectorBitError, VectorFileError } from "../../../agents/data/errors.js";
import { fragmentRoot } from "../../../agents/data/merkle.js";
import { readBitFile, writeBitNpy } from "../../../agents/data/vector-files.js";
import { decodeVectorManifest, encodeVectorManifest, METRIC_BY_CODE, METRIC_CODE } from "../../../agents/data/vector-manifest.js";
import {
  canonicalDistance,
  checkPackedBits,
  decodeVector,
  encodeVector,
  maxDim,
  packBits,
  packRecords,
  readVector,
  recordSize,
  recordsPerFragment,
  unpackBits,
  unpackFragment,
  vectorSize,
} from "../../../agents/data/vectors.js";
import { prng } from "../index/fixtures.js";

/** The reference distance: differing bits among the first dim, counted one by one on 0/1 arrays. */
function bitByBit(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) d++;
  return d;
}

const randomBits = (rand: () => number, dim: number): number[] => Array.from({ length: dim }, () => (rand() < 0.5 ? 1 : 0));

describe("Hamming: bits and records", () => {
  it("packBits: bit i is bit 7 - i%8 of byte floor(i/8), padding zero; unpackBits inverts it", () => {
    assert.deepEqual([...packBits([1, 0, 0, 0, 0, 0, 0, 1, 1, 1])], [0x81, 0xc0]);
    assert.deepEqual([...packBits([0, 1, 1])], [0x60]);
    assert.deepEqual([...unpackBits(Uint8Array.of(0x81, 0xc0), 10)], [1, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    fc.assert(
      fc.property(fc.array(fc.constantFrom(0, 1), { minLength: 1, maxLength: 300, size: "max" }), (bits) => {
        const packed = packBits(bits);
        assert.equal(packed.length, Math.ceil(bits.length / 8));
        assert.deepEqual([...unpackBits(packed, bits.length)], bits);
        checkPackedBits(packed, bits.length); // padding zero
      }),
    );
  });

  it("packBits names the bit that is not 0 or 1, and a wrong count", () => {
    assert.throws(() => packBits([0, 1, 2, 0], 4, 7), (e: unknown) => e instanceof VectorBitError && e.context.row === 7 && e.context.column === 2 && /row 7, bit 2: 2 is not a bit/.test(e.message));
    assert.throws(() => packBits([0, 0.5], 2), (e: unknown) => e instanceof VectorBitError && e.context.column === 1);
    assert.throws(() => packBits([0, 1], 3), /has 2 components, expected 3/);
  });

  it("sizes by metric: a Hamming record is 8 + ceil(dim/8) bytes, an int16 record 8 + 2 dim", () => {
    assert.equal(vectorSize(256, "hamming"), 32);
    assert.equal(vectorSize(257, "hamming"), 33);
    assert.equal(vectorSize(1, "hamming"), 1);
    assert.equal(recordSize(256, "hamming"), 40);
    assert.equal(recordSize(256, "l2"), 520);
    assert.equal(recordSize(256), 520);
    assert.equal(recordsPerFragment(256, 1024, "hamming"), 25);
    assert.equal(recordsPerFragment(300, 1000, "hamming"), 21); // 46-byte records
    assert.equal(maxDim("hamming"), 8 * maxDim("l2") * 2);
    assert.throws(() => recordSize(maxDim("hamming") + 1, "hamming"), /dim.*must be an integer in \[1, /);
  });

  it("records pack and unpack by metric; padding bits in a packed record are refused, naming the row", () => {
    const rand = prng(5);
    const dim = 13;
    const records = Array.from({ length: 10 }, (_, i) => ({ id: BigInt(100 + i), values: packBits(randomBits(rand, dim)) }));
    const fragments = [...packRecords(records, dim, 4 * recordSize(dim, "hamming"), "hamming")];
    assert.deepEqual(fragments.map((f) => f.length), [40, 40, 20]); // 10-byte records, 4 to a fragment
    const back = fragments.flatMap((f) => unpackFragment(f, dim, "hamming"));
    assert.deepEqual(back.map((r) => r.id), records.map((r) => r.id));
    assert.deepEqual(back.map((r) => [...r.values]), records.map((r) => [...r.values]));

    const dirty = [...records];
    dirty[6] = { id: 1n, values: Uint8Array.of(records[6]!.values[0]!, 0x01) }; // bit 15 > dim 13
    assert.throws(() => [...packRecords(dirty, dim, 1024, "hamming")], (e: unknown) => e instanceof VectorBitError && e.context.row === 6 && /padding bits past bit 12/.test(e.message));
    const int16 = [{ id: 1n, values: new Int16Array(dim) }];
    assert.throws(() => [...packRecords(int16, dim, 1024, "hamming")], /not a binary vector/);
    assert.throws(() => [...packRecords(records, dim, 1024, "l2")], /has 2 components, expected 13/);
  });

  it("popcount distance equals the bit-by-bit count, for dims around byte and word edges", () => {
    const rand = prng(11);
    for (const dim of [1, 7, 8, 9, 63, 64, 65, 255, 256, 257, 300, 1024]) {
      for (let t = 0; t < 20; t++) {
        const a = randomBits(rand, dim);
        const b = randomBits(rand, dim);
        assert.equal(canonicalDistance("hamming", packBits(a), packBits(b)), BigInt(bitByBit(a, b)), `dim ${dim}`);
      }
    }
    assert.equal(canonicalDistance("hamming", packBits(new Array(256).fill(0)), packBits(new Array(256).fill(1))), 256n);
  });

  it("padding bits never count: readVector and decodeVector clear them (the contract masks them too)", () => {
    const dim = 12;
    const a = packBits([1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 1, 1]);
    const dirty = Uint8Array.of(a[0]!, a[1]! | 0x0f); // the low 4 bits of byte 1 are padding
    const read = readVector(Buffer.concat([Buffer.alloc(8), dirty]), 8, dim, "hamming");
    assert.deepEqual([...read], [...a]);
    assert.equal(canonicalDistance("hamming", decodeVector(dirty, dim, "hamming"), a), 0n);
    assert.deepEqual([...encodeVector(a)], [...a]);
    assert.throws(() => decodeVector(Uint8Array.of(1, 2, 3), dim, "hamming"), /must be 2 bytes of packed bits \(12 bits\)/);
  });

  it("a Hamming distance is between packed bits: int16 vectors are refused for it and bits for l2", () => {
    assert.throws(() => canonicalDistance("hamming", new Int16Array(2), new Int16Array(2)), /packed bits/);
    assert.throws(() => canonicalDistance("l2", Uint8Array.of(1), Uint8Array.of(1)), /Int16Array/);
  });
});

describe("Hamming: binary vector files", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-bits-"));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  const fileError = (kind: string, pattern: RegExp) => (e: unknown) => e instanceof VectorFileError && e.context.kind === kind && pattern.test(e.message);

  it("the three formats read the same vectors", async () => {
    const rand = prng(3);
    const dim = 20;
    const rows = Array.from({ length: 5 }, () => randomBits(rand, dim));
    const packed = new Uint8Array(rows.flatMap((r) => [...packBits(r)]));
    await writeBitNpy(join(dir, "a.npy"), packed, dim);
    await writeFile(join(dir, "a.bits"), rows.map((r) => r.join("")).join("\n") + "\n\n");
    await writeFile(join(dir, "a.jsonl"), rows.map((r) => JSON.stringify(r)).join("\n"));
    await writeFile(join(dir, "b.jsonl"), rows.map((r, i) => JSON.stringify({ id: String(10 + i), vector: r })).join("\n"));
    for (const name of ["a.npy", "a.bits", "a.jsonl", "b.jsonl"]) {
      const file = await readBitFile(join(dir, name), dim);
      assert.equal(file.count, 5, name);
      assert.deepEqual([...file.bits], [...packed], name);
      assert.deepEqual(file.ids, name === "b.jsonl" ? [10n, 11n, 12n, 13n, 14n] : null, name);
    }
  });

  it(".bits: a wrong bit count or a character other than 0/1 names the line and bit", async () => {
    await writeFile(join(dir, "short.bits"), "0101\n011\n");
    await assert.rejects(readBitFile(join(dir, "short.bits"), 4), fileError("dimension", /line 2\): the line has 3 bits, the Magu's vectors have 4; give exactly 4 characters 0\/1 per line/));
    await writeFile(join(dir, "char.bits"), "0101\n01x1\n");
    await assert.rejects(readBitFile(join(dir, "char.bits"), 4), fileError("bit", /line 2, column 2\): bit 2 is "x", not 0 or 1/));
  });

  it(".jsonl: a component other than 0/1 names the line and the component", async () => {
    await writeFile(join(dir, "two.jsonl"), "[0,1,1]\n[0,2,1]\n");
    await assert.rejects(readBitFile(join(dir, "two.jsonl"), 3), fileError("bit", /line 2, column 1\): component 1 is 2, not 0 or 1/));
    await writeFile(join(dir, "len.jsonl"), "[0,1,1,0]\n");
    await assert.rejects(readBitFile(join(dir, "len.jsonl"), 3), fileError("dimension", /4 components, the Magu's vectors have 3 bits/));
  });

  it(".npy: nonzero padding bits name the row; another width or dtype says what to save", async () => {
    const good = packBits([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]); // 10 bits: 2 bytes, 6 padding bits
    const rows = new Uint8Array([...good, good[0]!, good[1]! | 0x01, ...good]);
    await writeBitNpy(join(dir, "pad.npy"), rows, 10);
    await assert.rejects(readBitFile(join(dir, "pad.npy"), 10), fileError("padding", /row 1, column 10, .*byte 1 of the row is 0xc1: it sets padding bits past bit 9 \(its low 6 bits must be zero\)/));
    await assert.rejects(readBitFile(join(dir, "pad.npy"), 24), fileError("dimension", /rows of 2 bytes hold 16 bits; 24 bits pack into 3 bytes/));
    await writeFile(join(dir, "floats.npy"), Buffer.concat([Buffer.from("\x93NUMPY\x01\x00", "latin1"), Buffer.from([0x46, 0]), Buffer.from("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }".padEnd(69, " ") + "\n", "latin1"), Buffer.alloc(8)]));
    await assert.rejects(readBitFile(join(dir, "floats.npy"), 16), fileError("dtype", /dtype <f4 is not packed bits.*numpy\.packbits/));
  });

  it("other extensions are refused, naming the binary formats", async () => {
    await writeFile(join(dir, "a.csv"), "0,1\n");
    await assert.rejects(readBitFile(join(dir, "a.csv"), 2), fileError("extension", /".csv" is not a binary vector file.*\.npy, \.bits, \.jsonl/));
  });
});

describe("Hamming: the vector index document", () => {
  it("metric code 4 is hamming; the document has no scale and refuses one", () => {
    assert.equal(METRIC_BY_CODE[4], "hamming");
    assert.equal(METRIC_CODE.hamming, 4);
    const bytes = Buffer.alloc(3 * recordSize(256, "hamming"), 7);
    const root = fragmentRoot(bytes);
    const fragment = { cid: fragmentCid(bytes), root: root.toString("hex"), size: bytes.length, count: 3 };
    const doc = encodeVectorManifest({ maguId: 9n, dim: 256, metric: "hamming", fragments: [fragment] });
    assert.doesNotMatch(doc.bytes.toString(), /scaleExp/);
    assert.equal(decodeVectorManifest(doc.bytes, doc.cid).metric, "hamming");
    assert.throws(() => encodeVectorManifest({ maguId: 9n, dim: 256, metric: "hamming", fragments: [fragment], scaleExp: 7 }), (e: unknown) => e instanceof ManifestError && /no scale/.test(e.message));
    // 3 records of an int16 dim-256 Magu would be 1560 bytes, not 120.
    assert.throws(() => encodeVectorManifest({ maguId: 9n, dim: 256, metric: "l2", fragments: [fragment] }), /size 120 is not count 3 x record size 520/);
  });
});
