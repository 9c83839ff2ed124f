/** Vector files: every format round trip, and every way a file can be wrong. */
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { DataError, InvalidParameterError, VectorFileError, type VectorFileProblem } from "../../../agents/data/errors.js";
import { readVectorFile, writeFvecs, writeNpy, type VectorFile } from "../../../agents/data/vector-files.js";
import { gaussianMixture, prng } from "../index/fixtures.js";

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), "muri-vector-files-"));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

let n = 0;
/** A fresh path in the temp dir with this name's extension. */
const file = (ext: string): string => join(dir, `f${n++}${ext}`);
async function text(ext: string, body: string): Promise<string> {
  const path = file(ext);
  await writeFile(path, body);
  return path;
}

/** Expects a VectorFileError of this kind whose message names the file; returns it for more checks. */
async function fails(path: string, kind: VectorFileProblem, opts?: Parameters<typeof readVectorFile>[1]): Promise<VectorFileError> {
  let caught: unknown;
  try {
    await readVectorFile(path, opts);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof VectorFileError, `expected a VectorFileError, got ${caught}`);
  assert.ok(caught instanceof DataError);
  assert.equal(caught.code, "ERR_VECTOR_FILE");
  assert.equal(caught.context.kind, kind, caught.message);
  assert.ok(caught.message.startsWith(path), caught.message);
  assert.match(caught.message, /; /, "the message says what to do");
  return caught;
}

const dim = 5;
const rows = 7;
/** float32-exact values, negatives and zero included. */
const values = Float32Array.from({ length: rows * dim }, (_, i) => Math.fround(Math.sin(i * 1.7) * 1.9));
values[3] = 0;
values[4] = -0.5;

function sameVectors(got: VectorFile, want: Float32Array, wantDim: number): void {
  assert.equal(got.dim, wantDim);
  assert.equal(got.count, want.length / wantDim);
  assert.ok(got.vectors instanceof Float32Array);
  assert.deepEqual(Array.from(got.vectors), Array.from(want));
}

const jsonRows = (v: Float32Array, d: number): number[][] => Array.from({ length: v.length / d }, (_, r) => Array.from(v.subarray(r * d, (r + 1) * d)));

describe("vector files: round trips", () => {
  it(".fvecs", async () => {
    const path = file(".fvecs");
    await writeFvecs(path, values, dim);
    const got = await readVectorFile(path, { dim });
    sameVectors(got, values, dim);
    assert.equal(got.format, "fvecs");
    assert.equal(got.ids, null);
    assert.equal(got.path, path);
    assert.equal((await readFile(path)).length, rows * (4 + 4 * dim));
  });

  for (const version of [1, 2, 3] as const) {
    it(`.npy v${version}, float32 and float64`, async () => {
      const p32 = file(".npy");
      await writeNpy(p32, values, dim, { version });
      const got = await readVectorFile(p32);
      sameVectors(got, values, dim);
      assert.equal(got.format, "npy");
      assert.equal(got.ids, null);
      const header = (await readFile(p32)).subarray(0, 128).toString("latin1");
      assert.ok(header.startsWith(`\x93NUMPY${String.fromCharCode(version)}\x00`));
      const p64 = file(".npy");
      const doubles = Float64Array.from(values, (x, i) => x + (i % 3) * 1e-12);
      await writeNpy(p64, doubles, dim, { version, dtype: "<f8" });
      sameVectors(await readVectorFile(p64, { dim }), Float32Array.from(doubles, Math.fround), dim);
    });
  }

  it(".npy as numpy writes it (header padded to 64 bytes, newline-terminated)", async () => {
    const path = file(".npy");
    await writeNpy(path, values, dim);
    const bytes = await readFile(path);
    const headerLen = bytes.readUInt16LE(8);
    assert.equal((10 + headerLen) % 64, 0);
    assert.equal(bytes[10 + headerLen - 1], 0x0a);
    assert.match(bytes.subarray(10, 10 + headerLen).toString("latin1"), /^\{'descr': '<f4', 'fortran_order': False, 'shape': \(7, 5\), \} *\n$/);
  });

  it(".jsonl of arrays, with blank lines and CRLF", async () => {
    const body = ["", ...jsonRows(values, dim).map((r) => JSON.stringify(r)), "", ""].join("\r\n");
    const got = await readVectorFile(await text(".jsonl", body), { dim });
    sameVectors(got, values, dim);
    assert.equal(got.ids, null);
  });

  it(".jsonl of {id, vector} objects: numeric and decimal-string ids up to 2^64-1, other keys ignored", async () => {
    const ids = [0n, 1n, 9_007_199_254_740_991n, 9_007_199_254_740_993n, 18_446_744_073_709_551_615n, 42n, 7n];
    const body = jsonRows(values, dim)
      .map((vector, r) => `{"id": ${ids[r]! < 2n ** 53n ? String(ids[r]) : `"${ids[r]}"`}, "vector": ${JSON.stringify(vector)}, "text": "row ${r}"}`)
      .join("\n");
    const got = await readVectorFile(await text(".ndjson", body));
    sameVectors(got, values, dim);
    assert.equal(got.format, "jsonl");
    assert.deepEqual(got.ids, ids);
  });

  it(".csv without a header", async () => {
    const got = await readVectorFile(await text(".csv", jsonRows(values, dim).map((r) => r.join(",")).join("\n") + "\n"));
    sameVectors(got, values, dim);
    assert.equal(got.ids, null);
  });

  it(".csv with a header and an id column anywhere, quoted names, spaces, CRLF", async () => {
    const ids = [5n, 3n, 18_446_744_073_709_551_615n, 0n, 1n, 2n, 4n];
    const lines = ['"x0", x1, "ID" ,x2,x3,x4', ...jsonRows(values, dim).map((r, i) => [r[0], r[1], ids[i], ...r.slice(2)].map((c) => ` ${c} `).join(","))];
    const got = await readVectorFile(await text(".csv", "\uFEFF" + lines.join("\r\n")), { dim });
    sameVectors(got, values, dim);
    assert.deepEqual(got.ids, ids);
    const noIds = await readVectorFile(await text(".csv", ["a,b,c,d,e", ...jsonRows(values, dim).map((r) => r.join(","))].join("\n")));
    sameVectors(noIds, values, dim);
    assert.equal(noIds.ids, null);
  });

  it("the format option overrides the extension", async () => {
    const path = file(".bin");
    await writeFvecs(path, values, dim);
    sameVectors(await readVectorFile(path, { format: "fvecs" }), values, dim);
    await assert.rejects(readVectorFile(path, { format: "xml" as "csv" }), InvalidParameterError);
    await assert.rejects(readVectorFile(path, { dim: 0 }), InvalidParameterError);
  });

  it("100k × 128 float32 (51 MB) parses in seconds, .fvecs and .npy", async () => {
    const big = gaussianMixture({ count: 100_000, dim: 128, seed: 1 });
    for (const [ext, write] of [
      [".fvecs", writeFvecs],
      [".npy", writeNpy],
    ] as const) {
      const path = file(ext);
      await write(path, big, 128);
      const t = performance.now();
      const got = await readVectorFile(path, { dim: 128 });
      const seconds = (performance.now() - t) / 1000;
      console.log(`# ${ext} 100000 x 128: ${seconds.toFixed(2)} s`);
      assert.equal(got.count, 100_000);
      assert.ok(Buffer.from(got.vectors.buffer, got.vectors.byteOffset, got.vectors.byteLength).equals(Buffer.from(big.buffer)), "identical values");
      // Generous: a loaded 2-core machine; the bound only catches a pathological reader.
      assert.ok(seconds < 30, `${ext} took ${seconds} s`);
      await rm(path);
    }
  });
});

describe("vector files: errors", () => {
  it("an unknown extension lists the supported ones", async () => {
    const e = await fails(await text(".txt", "1,2\n"), "extension");
    assert.match(e.message, /\.fvecs, \.npy, \.jsonl, \.ndjson, \.csv/);
    await fails(await text("", "1,2\n"), "extension");
  });

  it("an empty file, in every format", async () => {
    for (const ext of [".fvecs", ".npy", ".jsonl", ".csv"]) await fails(await text(ext, ""), "empty");
    await fails(await text(".jsonl", "\n  \n\n"), "empty");
    await fails(await text(".csv", "a,b,id\n\n"), "empty");
    const npy = file(".npy");
    await writeNpy(npy, new Float32Array(0), 4);
    await fails(npy, "empty");
  });

  it("a truncated .fvecs names the partial row and its offset", async () => {
    const path = file(".fvecs");
    await writeFvecs(path, values, dim);
    await truncate(path, rows * (4 + 4 * dim) - 3);
    const e = await fails(path, "truncated");
    assert.equal(e.context.row, rows - 1);
    assert.equal(e.context.offset, (rows - 1) * (4 + 4 * dim));
    await truncate(path, 2);
    await fails(path, "truncated");
  });

  it("a truncated .npy, in the data or in the header; bytes after the array", async () => {
    const path = file(".npy");
    await writeNpy(path, values, dim);
    const full = await readFile(path);
    await truncate(path, full.length - 1);
    const e = await fails(path, "truncated");
    assert.equal(e.context.row, rows - 1);
    await truncate(path, 40);
    await fails(path, "truncated");
    await writeFile(path, Buffer.concat([full, Buffer.alloc(4)]));
    const t = await fails(path, "trailing");
    assert.equal(t.context.offset, full.length);
  });

  it("a .fvecs row of another dimension (ragged)", async () => {
    const path = file(".fvecs");
    await writeFvecs(path, values, dim);
    const bytes = await readFile(path);
    bytes.writeInt32LE(dim + 1, 3 * (4 + 4 * dim));
    await writeFile(path, bytes);
    const e = await fails(path, "ragged");
    assert.equal(e.context.row, 3);
    assert.equal(e.context.offset, 3 * (4 + 4 * dim));
    const junk = file(".fvecs");
    await writeFile(junk, Buffer.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4]));
    await fails(junk, "truncated");
    await writeFile(junk, Buffer.from([0, 0, 0, 0, 1, 2, 3, 4]));
    await fails(junk, "header");
  });

  it("ragged .jsonl and .csv rows name the line", async () => {
    const e = await fails(await text(".jsonl", "[1, 2]\n\n[3]\n"), "ragged");
    assert.equal(e.context.line, 3);
    assert.equal(e.context.row, 1);
    const c = await fails(await text(".csv", "x,y\n1,2\n3,4,5\n"), "ragged");
    assert.equal(c.context.line, 3);
    await fails(await text(".csv", "1,2\n3\n"), "ragged");
  });

  it("a dimension other than the one asked for, in every format", async () => {
    const fv = file(".fvecs");
    await writeFvecs(fv, values, dim);
    const e = await fails(fv, "dimension", { dim: 4 });
    assert.match(e.message, /5 components, expected 4/);
    const npy = file(".npy");
    await writeNpy(npy, values, dim);
    await fails(npy, "dimension", { dim: 6 });
    await fails(await text(".jsonl", "[1, 2, 3]\n"), "dimension", { dim: 2 });
    await fails(await text(".csv", "1,2,3\n"), "dimension", { dim: 2 });
    await fails(await text(".csv", "id,a,b,c\n1,1,2,3\n"), "dimension", { dim: 2 });
  });

  it("NaN and Infinity, in every format, with row and column", async () => {
    const bad = Float32Array.from(values);
    bad[2 * dim + 3] = NaN;
    const fv = file(".fvecs");
    await writeFvecs(fv, bad, dim);
    const e = await fails(fv, "value");
    assert.deepEqual([e.context.row, e.context.column, e.context.offset], [2, 3, 2 * (4 + 4 * dim) + 4 + 4 * 3]);
    bad[2 * dim + 3] = -Infinity;
    const npy = file(".npy");
    await writeNpy(npy, bad, dim);
    const ne = await fails(npy, "value");
    assert.deepEqual([ne.context.row, ne.context.column], [2, 3]);
    const f8 = file(".npy");
    await writeNpy(f8, Float64Array.from([1, 2, 1e300, 4]), 2, { dtype: "<f8" });
    const fe = await fails(f8, "value");
    assert.match(fe.message, /outside the float32 range/);
    assert.deepEqual([fe.context.row, fe.context.column], [1, 0]);
    const je = await fails(await text(".jsonl", "[1, 2]\n[1e400, 2]\n"), "value");
    assert.deepEqual([je.context.line, je.context.column], [2, 0]);
    const jn = await fails(await text(".jsonl", "[1, NaN]\n"), "syntax");
    assert.match(jn.message, /NaN and Infinity are not JSON numbers/);
    for (const cell of ["nan", "NaN", "inf", "-Infinity"]) {
      const ce = await fails(await text(".csv", `1,2\n3,${cell}\n`), "value");
      assert.deepEqual([ce.context.line, ce.context.column], [2, 1]);
    }
  });

  it("non-numeric cells and components", async () => {
    const c = await fails(await text(".csv", "a,b\n1,2\n3,abc\n"), "syntax");
    assert.deepEqual([c.context.line, c.context.column], [3, 1]);
    assert.match(c.message, /"abc" is not a number/);
    await fails(await text(".csv", "1,2\n3,\n"), "syntax");
    await fails(await text(".csv", "1,2\n0x10,2\n"), "syntax");
    const j = await fails(await text(".jsonl", '[1, "2"]\n'), "syntax");
    assert.equal(j.context.column, 1);
    await fails(await text(".jsonl", "[1, 2]\n[1, 2\n"), "syntax");
    await fails(await text(".jsonl", "[1, 2]\n{\"id\": 1, \"vector\": [1, 2]}\n"), "syntax");
    await fails(await text(".jsonl", '{"id": 1}\n'), "syntax");
    await fails(await text(".jsonl", '{"id": 1, "vector": 3}\n'), "syntax");
    await fails(await text(".jsonl", "42\n"), "syntax");
  });

  it("ids that are not uint64, and duplicate ids", async () => {
    for (const id of ["-1", "1.5", '"abc"', '"18446744073709551616"', "null"]) await fails(await text(".jsonl", `{"id": ${id}, "vector": [1]}\n`), "id");
    const big = await fails(await text(".jsonl", '{"id": 18446744073709551615, "vector": [1]}\n'), "id");
    assert.match(big.message, /decimal strings/);
    const d = await fails(await text(".jsonl", '{"id": 3, "vector": [1]}\n{"id": 4, "vector": [1]}\n{"id": "3", "vector": [2]}\n'), "duplicate-id");
    assert.match(d.message, /id 3 was already given at line 1/);
    assert.equal(d.context.line, 3);
    const cd = await fails(await text(".csv", "id,x\n7,1\n8,1\n7,2\n"), "duplicate-id");
    assert.equal(cd.context.line, 4);
    await fails(await text(".csv", "id,x\n-7,1\n"), "id");
    await fails(await text(".csv", "id,x,id\n1,1,2\n"), "header");
    await fails(await text(".csv", "id\n1\n"), "header");
  });

  it(".npy dtypes, orders, ranks and magic it does not take", async () => {
    const path = file(".npy");
    const withHeader = async (descr: string, fortran: string, shape: string, data: Buffer) => {
      let header = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
      header = header.padEnd(Math.ceil((10 + header.length + 1) / 64) * 64 - 11) + "\n";
      const pre = Buffer.alloc(10);
      Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]).copy(pre);
      pre.writeUInt16LE(header.length, 8);
      await writeFile(path, Buffer.concat([pre, Buffer.from(header, "latin1"), data]));
    };
    await withHeader("<i4", "False", "(2, 2)", Buffer.alloc(16));
    assert.match((await fails(path, "dtype")).message, /dtype <i4/);
    await withHeader(">f4", "False", "(2, 2)", Buffer.alloc(16));
    assert.match((await fails(path, "dtype")).message, /big-endian/);
    await withHeader("<f2", "False", "(2, 2)", Buffer.alloc(8));
    await fails(path, "dtype");
    await withHeader("<f4", "True", "(2, 2)", Buffer.alloc(16));
    assert.match((await fails(path, "shape")).message, /ascontiguousarray/);
    await withHeader("<f4", "False", "(4,)", Buffer.alloc(16));
    assert.match((await fails(path, "shape")).message, /1-D/);
    await withHeader("<f4", "False", "(2, 2, 1)", Buffer.alloc(16));
    await fails(path, "shape");
    await withHeader("<f4", "False", "(2, 0)", Buffer.alloc(0));
    await fails(path, "shape");
    await withHeader("<f4", "False", "(2, x)", Buffer.alloc(16));
    await fails(path, "header");
    await withHeader("<f4", "False", "(2, 2)", Buffer.alloc(16));
    assert.equal((await readVectorFile(path)).count, 2, "the hand-made header itself is fine");
    await writeFile(path, Buffer.from("PK\x03\x04 this is a zip, not an array"));
    await fails(path, "header");
    const v9 = Buffer.alloc(64);
    Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 9, 0]).copy(v9);
    await writeFile(path, v9);
    await fails(path, "header");
  });

  it("a missing file is the file system's error", async () => {
    await assert.rejects(readVectorFile(join(dir, "absent.fvecs")), (e: unknown) => (e as NodeJS.ErrnoException).code === "ENOENT");
  });

  it("random corruptions of a .fvecs file never return vectors silently wrong in size (property over seeds)", async () => {
    const path = file(".fvecs");
    await writeFvecs(path, values, dim);
    const good = await readFile(path);
    const rand = prng(99);
    for (let t = 0; t < 40; t++) {
      const cut = Math.floor(rand() * good.length);
      await writeFile(path, good.subarray(0, cut));
      try {
        const got = await readVectorFile(path);
        assert.equal(cut % (4 + 4 * dim), 0, `a cut at ${cut} parsed`);
        assert.deepEqual(Array.from(got.vectors), Array.from(values.subarray(0, (cut / (4 + 4 * dim)) * dim)));
      } catch (e) {
        assert.ok(e instanceof VectorFileError, String(e));
      }
    }
  });
});
