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
    await assert.rejects(collect(chunk(Buffer.alloc(1), { size: 0 })), InvalidParameterError);
  });
});
