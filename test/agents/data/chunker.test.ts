import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import fc from "fast-check";
import { chunk } from "../../../agents/data/chunker.js";
import { FRAGMENT_SIZE } from "../../../agents/data/constants.js";
import { InvalidParameterError } from "../../../agents/data/errors.js";

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const b of it) out.push(Buffer.from(b));
  return out;
}

function checkFragments(parts: Buffer[], data: Uint8Array, size: number): void {
  assert.deepEqual(Buffer.concat(parts), Buffer.from(data));
  assert.equal(parts.length, Math.ceil(data.length / size));
  parts.forEach((p, i) => assert.equal(p.length, i < parts.length - 1 ? size : data.length - size * (parts.length - 1)));
}

describe("chunker", () => {
  it("splits streams with arbitrary piece boundaries into exact fragments (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 3000, size: "max" }), fc.integer({ min: 1, max: 700 }), fc.array(fc.integer({ min: 0, max: 900 }), { maxLength: 20, size: "max" }), async (data, size, cuts) => {
        const pieces: Uint8Array[] = [];
        let offset = 0;
        for (const c of cuts) {
          pieces.push(data.subarray(offset, Math.min(data.length, offset + c)));
          offset = Math.min(data.length, offset + c);
        }
        pieces.push(data.subarray(offset));
        checkFragments(await collect(chunk(Readable.from(pieces.map((p) => Buffer.from(p))), { size })), data, size);
        checkFragments(await collect(chunk(pieces, { size })), data, size);
        checkFragments(await collect(chunk(data, { size })), data, size);
      }),
      { numRuns: 100 },
    );
  });

  it("chunks files of 0, 1, F-1, F, F+1 and 2F bytes at the default fragment size", async () => {
    const dir = await mkdtemp(join(tmpdir(), "muri-chunk-"));
    try {
      for (const n of [0, 1, FRAGMENT_SIZE - 1, FRAGMENT_SIZE, FRAGMENT_SIZE + 1, 2 * FRAGMENT_SIZE]) {
        const data = Buffer.alloc(n);
        for (let i = 0; i < n; i += 4093) data[i] = i & 0xff;
        const path = join(dir, `f${n}`);
        await writeFile(path, data);
        checkFragments(await collect(chunk(path)), data, FRAGMENT_SIZE);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("rejects a non-positive fragment size", async () => {
    for (const size of [0, -1, 1.5]) {
      await assert.rejects(collect(chunk(Buffer.alloc(1), { size })), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "size" && e.context.reason === "must be a positive integer");
    }
  });

  it("yields owned copies by default and views only when borrowing", async () => {
    const source = Buffer.from("abcdefgh");
    const owned: Buffer[] = [];
    for await (const f of chunk(source, { size: 3 })) owned.push(f);
    const borrowed: Buffer[] = [];
    for await (const f of chunk(source, { size: 3, borrow: true })) borrowed.push(f);
    source.fill(0x2e); // the caller reuses its buffer
    assert.deepEqual(owned.map(String), ["abc", "def", "gh"], "copies keep their bytes");
    assert.deepEqual(borrowed.map(String), ["...", "...", ".."], "views see the caller's buffer");

    // From a stream: a fragment assembled from pieces is a new buffer each time unless borrowing
    // (then one buffer is reused), and a piece holding a whole fragment is copied unless borrowing.
    const pieces = () => Readable.from([Buffer.from("ab"), Buffer.from("cd"), Buffer.from("ef"), Buffer.from("ghijkl")]);
    const streamed: Buffer[] = [];
    for await (const f of chunk(pieces(), { size: 3 })) streamed.push(f);
    assert.deepEqual(streamed.map(String), ["abc", "def", "ghi", "jkl"]);
    assert.notEqual(streamed[0], streamed[1], "each assembled fragment is its own buffer");
    const reused: Buffer[] = [];
    for await (const f of chunk(pieces(), { size: 3, borrow: true })) reused.push(f);
    assert.equal(reused[0], reused[1], "borrowing reuses the assembly buffer");
    const whole = Buffer.from("xyzxyz");
    const copies: Buffer[] = [];
    for await (const f of chunk(Readable.from([whole]), { size: 3 })) copies.push(f);
    whole.fill(0x2e);
    assert.deepEqual(copies.map(String), ["xyz", "xyz"], "whole fragments cut from a piece are copies");
  });

  it("takes string pieces (a text stream) as their UTF-8 bytes", async () => {
    const got: string[] = [];
    for await (const f of chunk(Readable.from(["ab", "cdé"], { objectMode: true }), { size: 3 })) got.push(f.toString("hex"));
    assert.deepEqual(got, [Buffer.from("abc").toString("hex"), Buffer.from("dé").toString("hex")]);
  });
});
