/**
 * Refusals of data/vector-files.ts that vector-files.test.ts and vector-hamming.test.ts do not
 * reach (found by the mutation run of data/vector-files): payload lines that are not JSON or do
 * not match the vectors, a .fvecs file whose partial last row declares another dimension, .npy
 * files too short for their preamble, headers missing a key, an empty JSON vector, packed-bit
 * .npy files in bool dtype, Fortran order or another rank, and the writers' arguments. Each is
 * checked by its kind, where it points and what it says.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { InvalidParameterError, VectorFileError, type VectorFileProblem } from "../../../agents/data/errors.js";
import { readBitFile, readPayloadFile, readVectorFile, writeFvecs, writeNpy } from "../../../agents/data/vector-files.js";
import { npy, vectorFileDir } from "./vector-file-fixtures.js";

const { put, path: inDir } = vectorFileDir("muri-vector-files-edges-");

/** A VectorFileError of `kind` at `where`, its message matching `says`. */
function refusal(kind: VectorFileProblem, where: Record<string, number | undefined>, says: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof VectorFileError, String(err));
    assert.equal(err.context.kind, kind, err.message);
    for (const [k, v] of Object.entries(where)) assert.equal((err.context as Record<string, unknown>)[k], v, `${k}: ${err.message}`);
    assert.match(err.message, says);
    return true;
  };
}

describe("vector files: refusals at the edges", () => {
  it("payload lines: one that is not JSON, more or fewer than the vectors", async () => {
    const bad = await put(".jsonl", '{"a":1}\n\n{"b":\n');
    await assert.rejects(readPayloadFile(bad, 2), refusal("syntax", { row: 1, line: 3 }, /not valid JSON: .*; write one JSON object \(or null\) per line, line i for vector row i/));
    const more = await put(".jsonl", '{"a":1}\nnull\n{"c":3}\n');
    await assert.rejects(readPayloadFile(more, 2), refusal("payload", { row: 2, line: 3 }, /more payloads than the 2 vectors; give one line per vector/));
    const fewer = await put(".jsonl", '{"a":1}\n');
    await assert.rejects(readPayloadFile(fewer, 2), refusal("payload", { row: 1 }, /1 payloads for 2 vectors/));
    const fine = await readPayloadFile(await put(".jsonl", '{"a":1}\nnull\n'), 2);
    assert.deepEqual([fine[0] === null, fine[1]], [false, null]);
  });

  it("a .fvecs file whose partial last row declares another dimension is ragged, naming the row and offset", async () => {
    const row = (dim: number, fill: number) => {
      const b = Buffer.alloc(4 + 4 * dim);
      b.writeInt32LE(dim, 0);
      for (let i = 0; i < dim; i++) b.writeFloatLE(fill, 4 + 4 * i);
      return b;
    };
    const path = await put(".fvecs", Buffer.concat([row(2, 0.5), row(2, 0.25), Buffer.from([3, 0, 0, 0, 0, 0])]));
    await assert.rejects(readVectorFile(path), refusal("ragged", { row: 2, offset: 24 }, /row 2 declares dimension 3, row 0 declares 2; every row of an \.fvecs file must have the same dimension/));
  });

  it(".npy files too short for a preamble, and headers without a key", async () => {
    await assert.rejects(readVectorFile(await put(".npy", Buffer.from([0x93, 0x4e, 0x55]))), refusal("truncated", { offset: 0 }, /3 bytes cannot hold a \.npy header/));
    const v2 = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0, 0, 0, 0]);
    await assert.rejects(readVectorFile(await put(".npy", v2)), refusal("truncated", { offset: 0 }, /11 bytes cannot hold a \.npy v2 header/));
    for (const [dict, missing] of [
      ["{'fortran_order': False, 'shape': (1, 2), }", "no descr"],
      ["{'descr': '<f4', 'shape': (1, 2), }", "no fortran_order"],
      ["{'descr': '<f4', 'fortran_order': False, }", "no shape"],
    ] as const) {
      await assert.rejects(readVectorFile(await put(".npy", npy(dict, Buffer.alloc(8)))), refusal("header", { offset: 10 }, new RegExp(`malformed \\.npy header \\(${missing}\\)`)));
    }
  });

  it("an empty JSON vector has no dimension", async () => {
    await assert.rejects(readVectorFile(await put(".jsonl", "[]\n[1]\n")), refusal("dimension", { row: 0, line: 1 }, /the vector is empty; give vectors with at least one component/));
  });

  it("packed bits in .npy: bool dtype, Fortran order and another rank are refused with how to save them", async () => {
    await assert.rejects(readBitFile(await put(".npy", npy("{'descr': '|b1', 'fortran_order': False, 'shape': (1, 1), }", Buffer.alloc(1))), 8), refusal("dtype", { offset: 10 }, /dtype bool is one bit a byte, not packed bits; pack it first: save numpy\.packbits/));
    await assert.rejects(readBitFile(await put(".npy", npy("{'descr': '|u1', 'fortran_order': True, 'shape': (1, 1), }", Buffer.alloc(1))), 8), refusal("shape", { offset: 10 }, /Fortran \(column-major\) order; save numpy\.ascontiguousarray\(array\) instead/));
    await assert.rejects(readBitFile(await put(".npy", npy("{'descr': '|u1', 'fortran_order': False, 'shape': (2,), }", Buffer.alloc(2))), 8), refusal("shape", { offset: 10 }, /shape \(2\): 1-D, expected 2-D \(count, 1\)/));
    await assert.rejects(readBitFile(await put(".bits", "0101\n"), 0), (err: unknown) => err instanceof InvalidParameterError && /must be a positive integer \(bits\)/.test(err.message));
  });

  it("the writers refuse a dimension that is not a positive integer, or values that are not whole rows", async () => {
    for (const write of [writeFvecs, writeNpy]) {
      for (const dim of [0, 1.5]) await assert.rejects(write(inDir("w"), [1, 2], dim), (err: unknown) => err instanceof InvalidParameterError && /dim.*must be a positive integer/.test(err.message));
      await assert.rejects(write(inDir("w"), [1, 2, 3], 2), (err: unknown) => err instanceof InvalidParameterError && /3 values.*not a whole number of 2-component rows/.test(err.message));
    }
  });
});
