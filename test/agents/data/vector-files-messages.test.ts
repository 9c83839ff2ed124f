/**
 * Each refusal of data/vector-files.ts, whole: a user who gives a bad .fvecs, .npy or payload file
 * reads one line naming the file, where (row, line, byte), what is wrong and what to do, so each
 * message is checked word for word with its kind and position (the mutation run of
 * data/vector-files found refusals whose checks, positions and texts could change unnoticed:
 * a .npy file without its magic, for instance, was only refused later, for another reason).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { InvalidParameterError, VectorFileError, type VectorFileProblem } from "../../../agents/data/errors.js";
import { BIT_FILE_EXTENSIONS, readBitFile, readPayloadFile, readVectorFile, VECTOR_FILE_EXTENSIONS, writeBitNpy, writeFvecs, writeNpy, type VectorFileFormat } from "../../../agents/data/vector-files.js";
import { npy, vectorFileDir } from "./vector-file-fixtures.js";

const { put, path: inDir } = vectorFileDir("muri-vector-files-messages-");

/**
 * Refused as `kind` with exactly this context, and exactly this message after the path (a RegExp
 * for a message with a part from the JSON parser).
 */
async function refused(read: Promise<unknown>, path: string, kind: VectorFileProblem, where: Record<string, number>, message: string | RegExp): Promise<void> {
  await assert.rejects(read, (err: unknown) => {
    assert.ok(err instanceof VectorFileError, String(err));
    assert.deepEqual(err.context, { path, kind, ...where });
    assert.ok(err.message.startsWith(path), err.message);
    if (typeof message === "string") assert.equal(err.message, `${path}${message}`);
    else assert.match(err.message.slice(path.length), message);
    return true;
  });
}

/** .fvecs rows: each an int32 LE dimension, then that many float32 LE values. */
function fvecs(...rows: Array<{ dim: number; values: number[] }>): Buffer {
  return Buffer.concat(
    rows.map(({ dim, values }) => {
      const b = Buffer.alloc(4 + 4 * values.length);
      b.writeInt32LE(dim, 0);
      values.forEach((v, i) => b.writeFloatLE(v, 4 + 4 * i));
      return b;
    }),
  );
}

const f32 = (...values: number[]): Buffer => {
  const b = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => b.writeFloatLE(v, 4 * i));
  return b;
};
const NPY_FIX = "save the array with numpy.save(path, array.astype(numpy.float32))";

describe("vector files: every refusal, word for word", () => {
  it("the caller's options and the file's extension", async () => {
    const path = await put(".fvecs", fvecs({ dim: 1, values: [1] }));
    await assert.rejects(readVectorFile(path, { dim: 0 }), (err: unknown) => err instanceof InvalidParameterError && err.message === "invalid dim (0): must be a positive integer");
    assert.equal((await readVectorFile(path, { dim: 1 })).dim, 1, "dim 1 is a positive integer");
    await assert.rejects(
      readVectorFile(path, { format: "parquet" as VectorFileFormat }),
      (err: unknown) => err instanceof InvalidParameterError && err.message === 'invalid format ("parquet"): must be one of fvecs, npy, jsonl, csv',
    );
    // Each format the option names is read as that format, whatever the extension.
    for (const format of ["fvecs", "npy", "jsonl", "csv"] as const) {
      const body = { fvecs: fvecs({ dim: 2, values: [1, 2] }), npy: npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }", f32(1, 2)), jsonl: "[1, 2]\n", csv: "1,2\n" }[format];
      const file = await put(".data", body);
      const read = await readVectorFile(file, { format });
      assert.deepEqual([read.format, read.dim, Array.from(read.vectors)], [format, 2, [1, 2]], format);
    }
    assert.deepEqual(VECTOR_FILE_EXTENSIONS, { ".fvecs": "fvecs", ".npy": "npy", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv" });
    const odd = await put(".vec", "1,2\n");
    await refused(readVectorFile(odd), odd, "extension", {}, ': unknown extension ".vec"; use one of .fvecs, .npy, .jsonl, .ndjson, .csv, or pass the format explicitly (fvecs, npy, jsonl, csv)');
    const empty = await put(".fvecs", "");
    await refused(readVectorFile(empty), empty, "empty", {}, ": the file holds no vectors; give a file with at least one vector");
  });

  it(".fvecs: a short header, a dimension below 1, a first row longer than the file, ragged and cut rows", async () => {
    const three = await put(".fvecs", Buffer.from([1, 0, 0]));
    await refused(readVectorFile(three), three, "truncated", { row: 0, offset: 0 }, " (row 0, byte 0): 3 bytes cannot hold a row header (4 bytes); the file is truncated or not .fvecs");
    // Four bytes hold a header: a dimension of 1 with its value missing is a cut row, not a short header.
    const four = await put(".fvecs", Buffer.from([1, 0, 0, 0]));
    await refused(readVectorFile(four), four, "truncated", { row: 0, offset: 0 }, " (row 0, byte 0): row 0 declares dimension 1 (8 bytes a row) but the file has 4 bytes; the file is truncated or not .fvecs");
    const zero = await put(".fvecs", fvecs({ dim: 0, values: [1] }));
    await refused(readVectorFile(zero), zero, "header", { row: 0, offset: 0 }, " (row 0, byte 0): row 0 declares dimension 0; the file is not .fvecs (each row starts with its int32 LE dimension)");
    const negative = await put(".fvecs", fvecs({ dim: -3, values: [1] }));
    await refused(readVectorFile(negative), negative, "header", { row: 0, offset: 0 }, " (row 0, byte 0): row 0 declares dimension -3; the file is not .fvecs (each row starts with its int32 LE dimension)");
    // A row exactly as long as the file is one whole row.
    const one = await readVectorFile(await put(".fvecs", fvecs({ dim: 2, values: [0.5, -1] })));
    assert.deepEqual([one.count, one.dim, Array.from(one.vectors)], [1, 2, [0.5, -1]]);
    const wrongDim = await put(".fvecs", fvecs({ dim: 2, values: [0.5, -1] }));
    await refused(readVectorFile(wrongDim, { dim: 3 }), wrongDim, "dimension", { row: 0, offset: 0 }, " (row 0, byte 0): vectors have 2 components, expected 3; give vectors of dimension 3 (the Magu's), or a Magu of dimension 2");
    // A later whole row declaring another dimension: its row and byte.
    const ragged = await put(".fvecs", Buffer.concat([fvecs({ dim: 2, values: [1, 2] }, { dim: 2, values: [3, 4] }), fvecs({ dim: 5, values: [5, 6] })]));
    await refused(readVectorFile(ragged), ragged, "ragged", { row: 2, offset: 24 }, " (row 2, byte 24): row 2 declares dimension 5, row 0 declares 2; every row of an .fvecs file must have the same dimension");
    // A cut last row: with its header (4 of 12 bytes, 5 of 12) and without (3 bytes).
    for (const extra of [Buffer.from([2, 0, 0, 0]), Buffer.from([2, 0, 0, 0, 9]), Buffer.from([2, 0, 0])]) {
      const cut = await put(".fvecs", Buffer.concat([fvecs({ dim: 2, values: [1, 2] }), extra]));
      await refused(readVectorFile(cut), cut, "truncated", { row: 1, offset: 12 }, ` (row 1, byte 12): the file ends inside row 1: ${extra.length} of its 12 bytes; the file is truncated: copy it again or drop the partial row`);
    }
    // Exactly 4 bytes of a last row, declaring another dimension: ragged, not cut.
    const other = await put(".fvecs", Buffer.concat([fvecs({ dim: 2, values: [1, 2] }), Buffer.from([3, 0, 0, 0])]));
    await refused(readVectorFile(other), other, "ragged", { row: 1, offset: 12 }, " (row 1, byte 12): row 1 declares dimension 3, row 0 declares 2; every row of an .fvecs file must have the same dimension");
    const nan = await put(".fvecs", fvecs({ dim: 2, values: [1, 2] }, { dim: 2, values: [3, Number.NaN] }));
    await refused(readVectorFile(nan), nan, "value", { row: 1, column: 1, offset: 20 }, " (row 1, column 1, byte 20): value is NaN; every component must be a finite number: fix or drop that row");
    const inf = await put(".fvecs", fvecs({ dim: 1, values: [Number.NEGATIVE_INFINITY] }));
    await refused(readVectorFile(inf), inf, "value", { row: 0, column: 0, offset: 4 }, " (row 0, column 0, byte 4): value is -Infinity; every component must be a finite number: fix or drop that row");
  });

  it(".fvecs: rows spanning several 4 MiB reads keep their row numbers", async () => {
    // 2 + 4·1023 = 4096 bytes a row: 1024 rows a read; a ragged row in the second read.
    const dim = 1023;
    const rows = Array.from({ length: 1030 }, (_, r) => ({ dim: r === 1027 ? 7 : dim, values: Array.from({ length: dim }, (_, c) => (r + c) % 5) }));
    const path = await put(".fvecs", fvecs(...rows));
    await refused(readVectorFile(path), path, "ragged", { row: 1027, offset: 1027 * 4096 }, ` (row 1027, byte ${1027 * 4096}): row 1027 declares dimension 7, row 0 declares ${dim}; every row of an .fvecs file must have the same dimension`);
    rows[1027]!.dim = dim;
    const whole = await readVectorFile(await put(".fvecs", fvecs(...rows)));
    assert.equal(whole.count, 1030);
    assert.equal(whole.vectors[1029 * dim + 3], (1029 + 3) % 5, "the last row, read in the second chunk");
  });

  it(".npy: the preamble (size, magic, version, header length)", async () => {
    const nine = await put(".npy", Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0]));
    await refused(readVectorFile(nine), nine, "truncated", { offset: 0 }, ` (byte 0): 9 bytes cannot hold a .npy header; ${NPY_FIX}`);
    const notNpy = await put(".npy", Buffer.from("PK\u0003\u0004 a zip file, not an array"));
    await refused(readVectorFile(notNpy), notNpy, "header", { offset: 0 }, ` (byte 0): no .npy magic (\\x93NUMPY); the file is not a NumPy array: ${NPY_FIX}`);
    for (const major of [0, 4]) {
      const version = await put(".npy", Buffer.concat([Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 2]), Buffer.alloc(8)]));
      await refused(readVectorFile(version), version, "header", { offset: 6 }, ` (byte 6): .npy format version ${major}.2 is not supported (1, 2 and 3 are); ${NPY_FIX}`);
    }
    // v1 needs 10 bytes of preamble, v2 12: 10 bytes of a v2 file are too few.
    const v2short = await put(".npy", Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0, 0]));
    await refused(readVectorFile(v2short), v2short, "truncated", { offset: 0 }, ` (byte 0): 10 bytes cannot hold a .npy v2 header; ${NPY_FIX}`);
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }";
    for (const major of [1, 2]) {
      const whole = npy(dict, f32(1, 2), major);
      const cut = await put(".npy", whole.subarray(0, major === 1 ? 40 : 12));
      const prefix = major === 1 ? 10 : 12;
      await refused(readVectorFile(cut), cut, "truncated", { offset: prefix }, ` (byte ${prefix}): the header announces ${whole.length - prefix - 8} bytes but the file has ${major === 1 ? 30 : 0} after the preamble; the file is truncated: copy it again`);
      assert.deepEqual(Array.from((await readVectorFile(await put(".npy", whole))).vectors), [1, 2], `version ${major}`);
    }
    // Version 3 headers are UTF-8, versions 1 and 2 latin1: a dtype named "é" is quoted as written.
    for (const major of [1, 2, 3]) {
      const prefix = major === 1 ? 10 : 12;
      const accented = await put(".npy", npy("{'descr': 'é', 'fortran_order': False, 'shape': (1, 2), }", f32(3, 4), major));
      await refused(readVectorFile(accented), accented, "dtype", { offset: prefix }, ` (byte ${prefix}): dtype é is not supported (little-endian float32 '<f4' or float64 '<f8' are); ${NPY_FIX}`);
    }
    const v3 = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), 'σχόλιο': 'é'}", f32(3, 4), 3);
    assert.deepEqual(Array.from((await readVectorFile(await put(".npy", v3))).vectors), [3, 4]);
  });

  it(".npy: dtype, order, shape, size", async () => {
    const header = (descr: string, shape: string, fortran = "False") => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
    for (const descr of [">f4", ">f8"]) {
      const big = await put(".npy", npy(header(descr, "(1, 2)"), Buffer.alloc(descr === ">f4" ? 8 : 16)));
      await refused(readVectorFile(big), big, "dtype", { offset: 10 }, ` (byte 10): dtype ${descr} is not supported (little-endian float32 '<f4' or float64 '<f8' are); it is big-endian: save array.astype('<f4')`);
    }
    const ints = await put(".npy", npy(header("<i4", "(1, 2)"), Buffer.alloc(8)));
    await refused(readVectorFile(ints), ints, "dtype", { offset: 10 }, ` (byte 10): dtype <i4 is not supported (little-endian float32 '<f4' or float64 '<f8' are); ${NPY_FIX}`);
    const fortran = await put(".npy", npy(header("<f4", "(1, 2)", "True"), f32(1, 2)));
    await refused(readVectorFile(fortran), fortran, "shape", { offset: 10 }, " (byte 10): the array is in Fortran (column-major) order; save numpy.ascontiguousarray(array) instead");
    const threeD = await put(".npy", npy(header("<f4", "(1, 2, 1)"), f32(1, 2)));
    await refused(readVectorFile(threeD), threeD, "shape", { offset: 10 }, " (byte 10): the array has shape (1, 2, 1): 3-D, expected 2-D (count, dim); reshape it to (count, dim) before saving");
    const oneD = await put(".npy", npy(header("<f4", "(2,)"), f32(1, 2)));
    await refused(readVectorFile(oneD), oneD, "shape", { offset: 10 }, " (byte 10): the array has shape (2): 1-D, expected 2-D (count, dim); reshape it to (count, dim) before saving");
    const noDim = await put(".npy", npy(header("<f4", "(3, 0)")));
    await refused(readVectorFile(noDim), noDim, "shape", { offset: 10 }, " (byte 10): the array has shape (3, 0): vectors without components; save an array of shape (count, dim) with dim >= 1");
    const noRows = await put(".npy", npy(header("<f4", "(0, 3)")));
    await refused(readVectorFile(noRows), noRows, "empty", {}, ": the file holds no vectors; give a file with at least one vector");
    const wrongDim = await put(".npy", npy(header("<f4", "(1, 2)"), f32(1, 2)));
    await refused(readVectorFile(wrongDim, { dim: 4 }), wrongDim, "dimension", { offset: 10 }, " (byte 10): vectors have 2 components, expected 4; give vectors of dimension 4 (the Magu's), or a Magu of dimension 2");
    // Where the data starts: after the preamble and the header, padded to 64 bytes (128 here).
    const start = npy(header("<f4", "(3, 2)")).length;
    assert.equal(start, 128);
    // 3 rows of 2 float32 announced, 1 whole row and 2 bytes given: the cut is in row 1.
    const cut = await put(".npy", npy(header("<f4", "(3, 2)"), Buffer.concat([f32(1, 2), Buffer.alloc(2)])));
    await refused(readVectorFile(cut), cut, "truncated", { row: 1, offset: start + 8 }, ` (row 1, byte ${start + 8}): shape (3, 2) needs 24 data bytes but the file has 10; the file is truncated: copy it again`);
    const cut64 = await put(".npy", npy(header("<f8", "(3, 2)"), Buffer.alloc(40)));
    await refused(readVectorFile(cut64), cut64, "truncated", { row: 2, offset: start + 32 }, ` (row 2, byte ${start + 32}): shape (3, 2) needs 48 data bytes but the file has 40; the file is truncated: copy it again`);
    const trailing = await put(".npy", npy(header("<f4", "(1, 2)"), Buffer.concat([f32(1, 2), Buffer.alloc(3)])));
    await refused(readVectorFile(trailing), trailing, "trailing", { offset: start + 8 }, ` (byte ${start + 8}): 3 bytes follow the (1, 2) array; ${NPY_FIX} (one array per file)`);
  });

  it("payload files: a payload that is not an object, one over the limit, one exactly at it", async () => {
    const arr = await put(".jsonl", '{"a":1}\n[1,2]\n');
    await refused(readPayloadFile(arr, 2), arr, "payload", { row: 1, line: 2 }, ' (line 2): "payload" is an array, not a JSON object; write "payload": {"key": value, ...} (or leave it out)');
    const num = await put(".jsonl", "7\n");
    await refused(readPayloadFile(num, 1), num, "payload", { row: 0, line: 1 }, ' (line 1): "payload" is a number, not a JSON object; write "payload": {"key": value, ...} (or leave it out)');
    // {"t":"…"} is 8 bytes of JSON around the text: a text of 4088 bytes makes 4096, the limit.
    const at = JSON.stringify({ t: "é".repeat(2044) });
    assert.equal(Buffer.byteLength(at), 4096);
    const fits = await readPayloadFile(await put(".jsonl", `${at}\n`), 1);
    assert.equal(Buffer.from(fits[0]!).toString("utf8"), at, "kept as UTF-8 JSON");
    const over = JSON.stringify({ t: "é".repeat(2044) + "x" });
    const big = await put(".jsonl", `${over}\n`);
    await refused(readPayloadFile(big, 1), big, "payload", { row: 0, line: 1 }, " (line 1): the payload is 4097 bytes of JSON, above the 4096-byte limit; keep payloads small (an id, a title, a URL): store larger data elsewhere and put its address in the payload");
    // Surrounding blanks are not part of the line; blank lines are skipped.
    const spaced = await readPayloadFile(await put(".jsonl", '  {"a": 1}  \n\n\t\nnull\n'), 2);
    assert.deepEqual([Buffer.from(spaced[0]!).toString(), spaced[1]], ['{"a":1}', null]);
    const none = await put(".jsonl", "\n\n");
    await refused(readPayloadFile(none, 1), none, "payload", { row: 0 }, " (row 0): 0 payloads for 1 vectors; give one line (a JSON object, or null) per vector, in the vectors' order");
  });

  it(".jsonl: lines that are not JSON, not a vector, of another form; ids; dimensions; components", async () => {
    const lines = async (...body: string[]) => put(".jsonl", body.join("\n") + "\n");
    const notJson = await lines("[1, 2]", "[1, 2", "");
    await refused(readVectorFile(notJson), notJson, "syntax", { row: 1, line: 2 }, /^ \(line 2\): not valid JSON: [^;]+; write one JSON array of numbers, or one \{"id": \.\.\., "vector": \[\.\.\.\]\} object, per line$/);
    const nan = await lines("[1, NaN]");
    await refused(readVectorFile(nan), nan, "syntax", { row: 0, line: 1 }, /^ \(line 1\): not valid JSON: .+ \(NaN and Infinity are not JSON numbers: every component must be finite\); write one JSON array/);
    for (const [line, what] of [["7", "number"], ["null", "null"], ['"v"', "string"]]) {
      const path = await lines("", line!);
      await refused(readVectorFile(path), path, "syntax", { row: 0, line: 2 }, ` (line 2): a JSON ${what}, expected an array of numbers or an {"id", "vector"} object; write one vector per line`);
    }
    const mixed = await lines("", "[1, 2]", "", '{"id": 1, "vector": [1, 2]}');
    await refused(readVectorFile(mixed), mixed, "syntax", { row: 1, line: 4 }, ' (line 4): a JSON object but line 2 is a JSON array; every line must have the same form: all arrays, or all {"id", "vector"} objects');
    const mixed2 = await lines('{"id": 1, "vector": [1, 2]}', "[1, 2]");
    await refused(readVectorFile(mixed2), mixed2, "syntax", { row: 1, line: 2 }, ' (line 2): a JSON array but line 1 is a JSON object; every line must have the same form: all arrays, or all {"id", "vector"} objects');
    const fix = 'write {"id": <non-negative integer or decimal string>, "vector": [numbers]}';
    const noId = await lines('{"vector": [1]}');
    await refused(readVectorFile(noId), noId, "syntax", { row: 0, line: 1 }, ` (line 1): the object lacks "id"; ${fix}`);
    const noVector = await lines('{"id": 3}');
    await refused(readVectorFile(noVector), noVector, "syntax", { row: 0, line: 1 }, ` (line 1): the object lacks "vector"; ${fix}`);
    const big = await lines('{"id": 9007199254740994, "vector": [1]}');
    await refused(readVectorFile(big), big, "id", { row: 0, line: 1 }, ' (line 1): id 9007199254740994 is above 2^53 and lost precision as a JSON number; write large ids as decimal strings ("id": "18446744073709551615")');
    const idFix = "ids must be non-negative integers below 2^64 (as JSON numbers up to 2^53, or decimal strings)";
    for (const [raw, shown] of [["-1", "-1"], ["1.5", "1.5"], ['"18446744073709551616"', '"18446744073709551616"'], ["true", "true"], ['"07x"', '"07x"'], ["-9007199254740994", "-9007199254740994"]]) {
      const path = await lines('{"id": 0, "vector": [1]}', `{"id": ${raw}, "vector": [1]}`);
      await refused(readVectorFile(path), path, "id", { row: 1, line: 2 }, ` (line 2): id ${shown} is not a uint64; ${idFix}`);
    }
    const good = await readVectorFile(await lines('{"id": "18446744073709551615", "vector": [1]}', '{"id": 9007199254740991, "vector": [2], "payload": null}', '{"id": 0, "vector": [3], "other": 1}'));
    assert.deepEqual(good.ids, [18446744073709551615n, 9007199254740991n, 0n]);
    assert.equal(good.payloads, null, "no row has a payload");
    const dup = await lines('{"id": 7, "vector": [1]}', "", '{"id": "7", "vector": [2]}');
    await refused(readVectorFile(dup), dup, "duplicate-id", { row: 1, line: 3 }, " (line 3): id 7 was already given at line 1; ids must be unique within a file: remove or renumber the duplicate");
    const notArray = await lines('{"id": 1, "vector": {"0": 1}}');
    await refused(readVectorFile(notArray), notArray, "syntax", { row: 0, line: 1 }, ' (line 1): "vector" is not an array; write "vector": [numbers]');
    const empty = await lines("[]");
    await refused(readVectorFile(empty), empty, "dimension", { row: 0, line: 1 }, " (line 1): the vector is empty; give vectors with at least one component");
    const wrong = await lines("[1, 2]");
    await refused(readVectorFile(wrong, { dim: 3 }), wrong, "dimension", { row: 0, line: 1 }, " (line 1): vectors have 2 components, expected 3; give vectors of dimension 3 (the Magu's), or a Magu of dimension 2");
    const ragged = await lines("", "[1, 2]", "[1, 2]", "[1, 2, 3]");
    await refused(readVectorFile(ragged), ragged, "ragged", { row: 2, line: 4 }, " (line 4): the vector has 3 components, the first (line 2) has 2; every vector must have the same dimension");
    for (const [cell, what] of [['"1"', "a string"], ["null", "null"], ["[1]", "an array"], ['{"x": 1}', "an object"], ["true", "a boolean"]]) {
      const path = await lines(`[0.5, ${cell}]`);
      await refused(readVectorFile(path), path, "syntax", { row: 0, line: 1, column: 1 }, ` (line 1, column 1): component 1 is ${what}, not a number; every component must be a JSON number`);
    }
    const huge = await lines("[1, 2]", "[1e39, 2]");
    await refused(readVectorFile(huge), huge, "value", { row: 1, line: 2, column: 0 }, " (line 2, column 0): value (1e+39) is outside the float32 range; every component must be a finite number: fix or drop that row");
    const blank = await lines("", "  ", "");
    await refused(readVectorFile(blank), blank, "empty", {}, ": the file holds no vectors; give a file with at least one vector");
    const arrays = await readVectorFile(await lines("[1, 2]", "  [3, 4]  "));
    assert.deepEqual([arrays.ids, arrays.payloads, Array.from(arrays.vectors)], [null, null, [1, 2, 3, 4]]);
  });

  it(".csv: headers, ids, ragged rows, cells that are not numbers", async () => {
    const csv = async (...body: string[]) => put(".csv", body.join("\n") + "\n");
    const twoIds = await csv("id,x,ID");
    await refused(readVectorFile(twoIds), twoIds, "header", { line: 1 }, " (line 1): two columns are named id; name one column id (the ids), the others after the components");
    const onlyId = await csv("", "id");
    await refused(readVectorFile(onlyId), onlyId, "header", { line: 2 }, " (line 2): the header names no vector column; give one column per component (and optionally one named id)");
    const headerDim = await csv("id,x,y", "1,2,3");
    await refused(readVectorFile(headerDim, { dim: 3 }), headerDim, "dimension", { line: 1 }, " (line 1): vectors have 2 components, expected 3; give vectors of dimension 3 (the Magu's), or a Magu of dimension 2");
    const rowDim = await csv("", "1,2", "3,4");
    await refused(readVectorFile(rowDim, { dim: 1 }), rowDim, "dimension", { row: 0, line: 2 }, " (line 2): vectors have 2 components, expected 1; give vectors of dimension 1 (the Magu's), or a Magu of dimension 2");
    const raggedHeader = await csv("x,y", "1,2", "1,2,3");
    await refused(readVectorFile(raggedHeader), raggedHeader, "ragged", { row: 1, line: 3 }, " (line 3): the row has 3 cells, the header has 2; every row must have the same number of cells");
    const ragged = await csv("", "1,2", "", "1");
    await refused(readVectorFile(ragged), ragged, "ragged", { row: 1, line: 4 }, " (line 4): the row has 1 cells, the first row (line 2) has 2; every row must have the same number of cells");
    const badId = await csv("x,id", "1,5", "2,-5");
    await refused(readVectorFile(badId), badId, "id", { row: 1, line: 3, column: 1 }, ' (line 3, column 1): id "-5" is not a uint64; ids must be non-negative decimal integers below 2^64');
    const dup = await csv("id,x", "5,1", "5,2");
    await refused(readVectorFile(dup), dup, "duplicate-id", { row: 1, line: 3 }, " (line 3): id 5 was already given at line 2; ids must be unique within a file: remove or renumber the duplicate");
    for (const [cell, what] of [["nan", "is NaN"], ["-inf", "is -Infinity"], ["+Infinity", "is Infinity"], ["1e39", "(1e+39) is outside the float32 range"]]) {
      const path = await csv("1,2", `3,${cell}`);
      await refused(readVectorFile(path), path, "value", { row: 1, line: 2, column: 1 }, ` (line 2, column 1): value ${what}; every component must be a finite number: fix or drop that row`);
    }
    const cellFix = "every cell must be a decimal number (a header is only allowed on the first row)";
    const word = await csv("1,2", "3,abc");
    await refused(readVectorFile(word), word, "syntax", { row: 1, line: 2, column: 1 }, ` (line 2, column 1): "abc" is not a number; ${cellFix}`);
    const gap = await csv("1,2", ",4");
    await refused(readVectorFile(gap), gap, "syntax", { row: 1, line: 2, column: 0 }, ` (line 2, column 0): the cell is empty; ${cellFix}`);
    // A byte-order mark, quoted cells, an id column in the middle, blank lines: all read.
    const read = await readVectorFile(await csv('\uFEFF"x", "Id" ,y', '"1.5",18446744073709551615, -2', "", ' .5 ,0,"1e1"'));
    assert.deepEqual([read.dim, read.count, read.ids, Array.from(read.vectors)], [2, 2, [18446744073709551615n, 0n], [1.5, -2, 0.5, 10]]);
    const plain = await readVectorFile(await csv("1,2", "3,4"));
    assert.deepEqual([plain.ids, Array.from(plain.vectors)], [null, [1, 2, 3, 4]]);
    // More values than the first 64 Ki the rows start with: the rows grow and keep every value.
    const long = await readVectorFile(await csv(...Array.from({ length: 40_000 }, (_, r) => `${r},${-r}`)));
    assert.deepEqual([long.count, long.vectors.length, long.vectors[2 * 39_999], long.vectors[2 * 39_999 + 1], long.vectors[2 * 20_000]], [40_000, 80_000, 39_999, -39_999, 20_000]);
    const headerOnly = await csv("x,y", "");
    await refused(readVectorFile(headerOnly), headerOnly, "empty", {}, ": the file holds no vectors; give a file with at least one vector");
  });

  it("binary vectors: extensions, .npy of packed bits, .bits and .jsonl lines", async () => {
    assert.deepEqual(BIT_FILE_EXTENSIONS, { ".npy": "npy", ".bits": "bits", ".jsonl": "jsonl", ".ndjson": "jsonl" });
    const csv = await put(".csv", "0,1\n");
    await refused(
      readBitFile(csv, 2),
      csv,
      "extension",
      {},
      ': ".csv" is not a binary vector file (this Magu uses the Hamming metric); use .npy, .bits, .jsonl, .ndjson: .npy of uint8 packed bits (numpy.packbits(bits, axis=1)), .bits lines of 0/1 characters, or .jsonl arrays of 0/1',
    );
    const fix = (dim: number, width: number) => `save numpy.packbits(bits, axis=1) of a (count, ${dim}) array of 0/1 (dtype uint8, shape (count, ${width}))`;
    const u1 = (shape: string, data: Buffer, descr = "|u1") => npy(`{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`, data);
    const start = u1("(1, 2)", Buffer.alloc(0)).length;
    // Each spelling of uint8 is packed bits; 12 bits pack into 2 bytes.
    for (const descr of ["|u1", "<u1", "u1"]) {
      const read = await readBitFile(await put(".npy", u1("(2, 2)", Buffer.from([0xa5, 0xf0, 0x01, 0x10]), descr)), 12);
      assert.deepEqual([read.count, Array.from(read.bits)], [2, [0xa5, 0xf0, 0x01, 0x10]], descr);
    }
    const floats = await put(".npy", u1("(1, 2)", Buffer.alloc(8), "<f4"));
    await refused(readBitFile(floats, 12), floats, "dtype", { offset: 10 }, ` (byte 10): dtype <f4 is not packed bits (a Hamming Magu's .npy is uint8 '|u1', each byte 8 bits, MSB first); ${fix(12, 2)}`);
    const notNpy = await put(".npy", Buffer.from("0101010101010101"));
    await refused(readBitFile(notNpy, 12), notNpy, "header", { offset: 0 }, ` (byte 0): no .npy magic (\\x93NUMPY); the file is not a NumPy array: ${fix(12, 2)}`);
    const wide = await put(".npy", u1("(1, 3)", Buffer.alloc(3)));
    await refused(readBitFile(wide, 12), wide, "dimension", { offset: 10 }, " (byte 10): rows of 3 bytes hold 24 bits; 12 bits pack into 2 bytes; give a (count, 2) uint8 array, or a Magu of the file's dimension");
    const none = await put(".npy", u1("(0, 2)", Buffer.alloc(0)));
    await refused(readBitFile(none, 12), none, "empty", {}, ": the file holds no vectors; give a file with at least one vector");
    const cut = await put(".npy", u1("(3, 2)", Buffer.alloc(3)));
    await refused(readBitFile(cut, 12), cut, "truncated", { row: 1, offset: start + 2 }, ` (row 1, byte ${start + 2}): shape (3, 2) needs 6 data bytes but the file has 3; the file is truncated: copy it again`);
    const trailing = await put(".npy", u1("(1, 2)", Buffer.alloc(5)));
    await refused(readBitFile(trailing, 12), trailing, "trailing", { offset: start + 2 }, ` (byte ${start + 2}): 3 bytes follow the (1, 2) array; ${fix(12, 2)} (one array per file)`);
    // 12 bits: the last byte's low 4 bits are padding. Row 1 sets one of them (0x11).
    const padded = await put(".npy", u1("(2, 2)", Buffer.from([0xff, 0xf0, 0x00, 0x11])));
    await refused(
      readBitFile(padded, 12),
      padded,
      "padding",
      { row: 1, column: 12, offset: start + 3 },
      ` (row 1, column 12, byte ${start + 3}): byte 1 of the row is 0x11: it sets padding bits past bit 11 (its low 4 bits must be zero); clear them (a 12-bit vector packed with numpy.packbits has them zero), or give a Magu of dimension 16`,
    );
    // 16 bits use every bit: nothing is padding.
    assert.equal((await readBitFile(await put(".npy", u1("(1, 2)", Buffer.from([0xff, 0xff]))), 16)).count, 1);
    const written = inDir("written.npy");
    await writeBitNpy(written, Uint8Array.from([0x80, 0x10, 0x40, 0x00]), 12);
    assert.deepEqual(Array.from((await readBitFile(written, 12)).bits), [0x80, 0x10, 0x40, 0x00]);
    await assert.rejects(writeBitNpy(written, Uint8Array.from([1, 2, 3]), 12), (err: unknown) => err instanceof InvalidParameterError && err.message === 'invalid bits ("3 bytes"): not a whole number of 2-byte rows');

    const bits = await put(".bits", "\n1010 1100_0011\n  \n0000 0000 000x\n");
    await refused(readBitFile(bits, 12), bits, "bit", { row: 1, line: 4, column: 11 }, ' (line 4, column 11): bit 11 is "x", not 0 or 1; write each vector as a line of 0 and 1 characters only');
    const short = await put(".bits", "1010\t1100 001\n");
    await refused(readBitFile(short, 12), short, "dimension", { row: 0, line: 1 }, " (line 1): the line has 11 bits, the Magu's vectors have 12; give exactly 12 characters 0/1 per line");
    const long = await put(".bits", "1010110000111\n");
    await refused(readBitFile(long, 12), long, "dimension", { row: 0, line: 1 }, " (line 1): the line has 13 bits, the Magu's vectors have 12; give exactly 12 characters 0/1 per line");
    const readBits = await readBitFile(await put(".bits", "1010 1100_0011\n0000\t0000 0001\n"), 12);
    assert.deepEqual([readBits.format, readBits.ids, Array.from(readBits.bits)], ["bits", null, [0xac, 0x30, 0x00, 0x10]]);

    const jsonl = async (...body: string[]) => put(".jsonl", body.join("\n") + "\n");
    const ones = "[1, 0, 1]";
    const notJson = await jsonl(ones, "[1, 0");
    await refused(readBitFile(notJson, 3), notJson, "syntax", { row: 1, line: 2 }, /^ \(line 2\): not valid JSON: [^;]+; write one JSON array of 0\/1, or one \{"id": \.\.\., "vector": \[0, 1, \.\.\.\]\} object, per line$/);
    for (const [line, what] of [["5", "number"], ["null", "null"]]) {
      const path = await jsonl(line!);
      await refused(readBitFile(path, 3), path, "syntax", { row: 0, line: 1 }, ` (line 1): a JSON ${what}, expected an array of 0/1 or an {"id", "vector"} object; write one vector per line`);
    }
    const mixed = await jsonl(ones, '{"id": 1, "vector": [1, 0, 1]}');
    await refused(readBitFile(mixed, 3), mixed, "syntax", { row: 1, line: 2 }, ' (line 2): a JSON object but earlier lines are JSON arrays; every line must have the same form: all arrays, or all {"id", "vector"} objects');
    const idFix = "ids must be non-negative integers below 2^64 (as JSON numbers up to 2^53, or decimal strings)";
    for (const [raw, shown] of [["-1", "-1"], ["2.5", "2.5"], ["9007199254740994", "9007199254740994"], ["null", "null"], ['"x"', '"x"']]) {
      const path = await jsonl(`{"id": ${raw}, "vector": [1, 0, 1]}`);
      await refused(readBitFile(path, 3), path, "id", { row: 0, line: 1 }, ` (line 1): id ${shown} is not a uint64; ${idFix}`);
    }
    const notArray = await jsonl('{"id": 1, "vector": "101"}');
    await refused(readBitFile(notArray, 3), notArray, "syntax", { row: 0, line: 1 }, ' (line 1): "vector" is not an array; write "vector": [0, 1, ...]');
    const wrongLength = await jsonl("[1, 0]");
    await refused(readBitFile(wrongLength, 3), wrongLength, "dimension", { row: 0, line: 1 }, " (line 1): the vector has 2 components, the Magu's vectors have 3 bits; give exactly 3 components 0/1 per vector");
    const two = await jsonl(ones, "[1, 2, 0]");
    await refused(readBitFile(two, 3), two, "bit", { row: 1, line: 2, column: 1 }, " (line 2, column 1): component 1 is 2, not 0 or 1; every component of a binary vector must be the number 0 or 1");
    const objects = await readBitFile(await jsonl('{"id": "18446744073709551615", "vector": [0, 0, 1], "payload": {"t": "a"}}', "", '{"id": 4, "vector": [1, 1, 1]}'), 3);
    assert.deepEqual([objects.ids, Array.from(objects.bits), objects.payloads?.map((p) => (p === null ? null : Buffer.from(p).toString()))], [[18446744073709551615n, 4n], [0x20, 0xe0], ['{"t":"a"}', null]]);
    const dup = await jsonl('{"id": 4, "vector": [1, 1, 1]}', '{"id": "4", "vector": [1, 1, 1]}');
    await refused(readBitFile(dup, 3), dup, "duplicate-id", { row: 1, line: 2 }, " (line 2): id 4 was already given at line 1; ids must be unique within a file: remove or renumber the duplicate");
    const blank = await jsonl("", " ");
    await refused(readBitFile(blank, 3), blank, "empty", {}, ": the file holds no vectors; give a file with at least one vector");
    // Many rows: the packed rows grow past their first 64 KiB.
    const many = Array.from({ length: 70_000 }, (_, r) => (r % 3 === 0 ? "101" : "011")).join("\n");
    const grown = await readBitFile(await put(".bits", many), 3);
    assert.deepEqual([grown.count, grown.bits[0], grown.bits[1], grown.bits[69_999]], [70_000, 0xa0, 0x60, 0xa0]);
  });

  it(".npy of float64: values checked after rounding to float32, at their byte; reads over several 4 MiB chunks", async () => {
    const f64 = (values: number[]): Buffer => {
      const b = Buffer.alloc(8 * values.length);
      values.forEach((v, i) => b.writeDoubleLE(v, 8 * i));
      return b;
    };
    const header = (shape: string) => `{'descr': '<f8', 'fortran_order': False, 'shape': ${shape}, }`;
    const start = npy(header("(2, 2)")).length;
    const big = await put(".npy", npy(header("(2, 2)"), f64([1, 2, 3, 1e300])));
    await refused(readVectorFile(big), big, "value", { row: 1, column: 1, offset: start + 24 }, ` (row 1, column 1, byte ${start + 24}): value (1e+300) is outside the float32 range; every component must be a finite number: fix or drop that row`);
    const rounded = await readVectorFile(await put(".npy", npy(header("(2, 2)"), f64([0.1, -2.5, 1e-50, 3]))));
    assert.deepEqual(Array.from(rounded.vectors), [Math.fround(0.1), -2.5, 0, 3], "rounded to float32");
    // 700 rows of 1,000 float64 = 5.6 MB: 524 rows a 4 MiB read, then the rest.
    const rows = 700;
    const dim = 1000;
    const values = Array.from({ length: rows * dim }, (_, i) => (i % 977) - 400);
    const many = await readVectorFile(await put(".npy", npy(header(`(${rows}, ${dim})`), f64(values))));
    assert.equal(many.count, rows);
    for (const i of [0, 523 * dim + 999, 524 * dim, 524 * dim + 1, rows * dim - 1]) assert.equal(many.vectors[i], values[i], `value ${i}`);
    const late = values.slice();
    late[650 * dim + 7] = Number.NaN;
    const nanLate = await put(".npy", npy(header(`(${rows}, ${dim})`), f64(late)));
    const lateStart = npy(header(`(${rows}, ${dim})`)).length;
    await refused(readVectorFile(nanLate), nanLate, "value", { row: 650, column: 7, offset: lateStart + (650 * dim + 7) * 8 }, ` (row 650, column 7, byte ${lateStart + (650 * dim + 7) * 8}): value is NaN; every component must be a finite number: fix or drop that row`);
    // float32 at its byte too, past the first row.
    const f32nan = await put(".npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f32(1, 2, 3, 4, Number.POSITIVE_INFINITY, 6)));
    await refused(readVectorFile(f32nan), f32nan, "value", { row: 1, column: 1, offset: 128 + 16 }, " (row 1, column 1, byte 144): value is Infinity; every component must be a finite number: fix or drop that row");
  });

  it(".npy headers: spacing, Python 2 longs, a bad shape entry, a long malformed header cut at 120 characters", async () => {
    for (const dict of ["{'descr':'<f4','fortran_order':False,'shape':(1,2)}", '{"descr" : "<f4" , "fortran_order" : False , "shape" : ( 1 , 2 ) }', "{'descr': '<f4', 'fortran_order': False, 'shape': (1L, 2L), }"]) {
      assert.deepEqual(Array.from((await readVectorFile(await put(".npy", npy(dict, f32(5, 6))))).vectors), [5, 6], dict);
    }
    const badEntry = await put(".npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2x), }", f32(5, 6)));
    await refused(readVectorFile(badEntry), badEntry, "header", { offset: 10 }, ` (byte 10): malformed .npy header (shape entry "2x"): "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2x), }"; save the array with numpy.save`);
    const x2 = await put(".npy", npy("{'descr': '<f4', 'fortran_order': False, 'shape': (x2, 1), }", f32(5)));
    await assert.rejects(readVectorFile(x2), (err: unknown) => err instanceof VectorFileError && err.message.includes('(shape entry "x2")'));
    const long = `{'fortran_order': False, 'shape': (1, 2), 'note': '${"n".repeat(200)}'}`;
    const noDescr = await put(".npy", npy(long, f32(5, 6)));
    await refused(readVectorFile(noDescr), noDescr, "header", { offset: 10 }, ` (byte 10): malformed .npy header (no descr): ${JSON.stringify(long.slice(0, 120))}; save the array with numpy.save`);
  });

  it("the writers: .npy versions and dtypes read back, headers padded to 64 bytes, arguments refused by name", async () => {
    const file = inDir("written.npy");
    for (const version of [1, 2, 3] as const) {
      for (const dtype of ["<f4", "<f8"] as const) {
        await writeNpy(file, [1.5, -2, 3, 0.25], 2, { version, dtype });
        const bytes = await readFile(file);
        assert.equal(bytes[6], version);
        const prefix = version === 1 ? 10 : 12;
        const headerLen = version === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
        assert.equal((prefix + headerLen) % 64, 0, `v${version} ${dtype}: data aligned to 64 bytes`);
        assert.equal(bytes.length, prefix + headerLen + 4 * (dtype === "<f4" ? 4 : 8));
        assert.match(bytes.subarray(prefix, prefix + headerLen).toString("latin1"), new RegExp(`^\\{'descr': '${dtype}', 'fortran_order': False, 'shape': \\(2, 2\\), \\} *\\n$`));
        const read = await readVectorFile(file);
        assert.deepEqual([read.count, read.dim, Array.from(read.vectors)], [2, 2, [1.5, -2, 3, 0.25]], `v${version} ${dtype}`);
      }
    }
    await writeNpy(file, [7], 1);
    assert.deepEqual(Array.from((await readVectorFile(file)).vectors), [7], "dim 1 is allowed");
    await writeFvecs(inDir("one.fvecs"), [7, 8], 1);
    assert.equal((await readVectorFile(inDir("one.fvecs"))).count, 2);
    await assert.rejects(writeFvecs(file, [1, 2, 3], 2), (err: unknown) => err instanceof InvalidParameterError && err.message === 'invalid vectors ("3 values"): not a whole number of 2-component rows');
    await assert.rejects(writeNpy(file, [1], 0), (err: unknown) => err instanceof InvalidParameterError && err.message === "invalid dim (0): must be a positive integer");

    const bits = inDir("bits.npy");
    await writeBitNpy(bits, Uint8Array.from([0x80]), 1);
    const one = await readBitFile(bits, 1);
    assert.deepEqual([one.format, one.dim, one.count, Array.from(one.bits)], ["npy", 1, 1, [0x80]]);
    const bytes = await readFile(bits);
    assert.equal((10 + bytes.readUInt16LE(8)) % 64, 0, "packed bits aligned to 64 bytes");
    for (const dim of [1.5, -8, 0]) {
      await assert.rejects(writeBitNpy(bits, Uint8Array.from([1, 2]), dim), (err: unknown) => err instanceof InvalidParameterError && /^invalid bits \("2 bytes"\): not a whole number of -?\d+-byte rows$/.test(err.message), `dim ${dim}`);
    }
    await assert.rejects(readBitFile(bits, 0), (err: unknown) => err instanceof InvalidParameterError && err.message === "invalid dim (0): must be a positive integer (bits)");
    const threeD = await put(".npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1), }", Buffer.alloc(1)));
    await refused(readBitFile(threeD, 8), threeD, "shape", { offset: 10 }, " (byte 10): the array has shape (1, 1, 1): 3-D, expected 2-D (count, 1); save numpy.packbits(bits, axis=1) of a (count, 8) array of 0/1 (dtype uint8, shape (count, 1))");
    // A padding byte below 0x10 is shown with its two hex digits.
    const low = await put(".npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2), }", Buffer.from([0xff, 0x01])));
    await assert.rejects(readBitFile(low, 12), (err: unknown) => err instanceof VectorFileError && err.message.includes("byte 1 of the row is 0x01: it sets padding bits"));
  });

  it(".csv and .jsonl: quoting, blank lines of spaces, a header with a number in it, the first row's line, ids in column 0, hints", async () => {
    const csv = async (...body: string[]) => put(".csv", body.join("\n") + "\n");
    const cellFix = "every cell must be a decimal number (a header is only allowed on the first row)";
    // A quote that opens or closes nothing stays in the cell.
    for (const cell of ['"', '"1', '1"']) {
      const path = await csv("1,2", `3,${cell}`);
      await refused(readVectorFile(path), path, "syntax", { row: 1, line: 2, column: 1 }, ` (line 2, column 1): "${cell}" is not a number; ${cellFix}`);
    }
    const emptyQuoted = await csv("1,2", '3,""');
    await refused(readVectorFile(emptyQuoted), emptyQuoted, "syntax", { row: 1, line: 2, column: 1 }, ` (line 2, column 1): the cell is empty; ${cellFix}`);
    const read = await readVectorFile(await csv('"a""b",2', '" 3 ",4', "   ", "\t", "5,6"));
    assert.deepEqual([read.dim, read.count, read.ids, Array.from(read.vectors)], [2, 2, null, [3, 4, 5, 6]], "a header with a number in it; blank lines of spaces skipped");
    const noId = await readVectorFile(await csv("x,y", "1,2"));
    assert.deepEqual([noId.dim, noId.ids], [2, null]);
    const idFirst = await readVectorFile(await csv("id,x", "5,1", "6,2"));
    assert.deepEqual([idFirst.dim, idFirst.ids, Array.from(idFirst.vectors)], [1, [5n, 6n], [1, 2]]);
    const third = await csv("1,2", "3,4", "5");
    await refused(readVectorFile(third), third, "ragged", { row: 2, line: 3 }, " (line 3): the row has 1 cells, the first row (line 1) has 2; every row must have the same number of cells");
    const inf = await put(".jsonl", "[1, Infinity]\n");
    await refused(readVectorFile(inf), inf, "syntax", { row: 0, line: 1 }, / \(NaN and Infinity are not JSON numbers: every component must be finite\); /);
    const plain = await put(".jsonl", "[1, 2, 3\n");
    await assert.rejects(readVectorFile(plain), (err: unknown) => err instanceof VectorFileError && !err.message.includes("NaN and Infinity"));
    const bitsJsonl = await readBitFile(await put(".jsonl", '{"id": 0, "vector": [1, 0]}\n'), 2);
    assert.deepEqual([bitsJsonl.ids, bitsJsonl.payloads], [[0n], null], "id 0; no payloads");
  });
});
