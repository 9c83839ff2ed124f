/**
 * The HTTP API's read cache (roles/client/read-cache.ts) over real files: bounded by its budget,
 * the least recently read file removed first, never a file under a reader, a file written once for
 * concurrent readers, a failed write forgotten with its bytes.
 */
import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { after, describe, it } from "node:test";
import { ReadCache } from "../../../agents/roles/client/read-cache.js";
import { cleanup, tempDir } from "../chain/harness.js";

/** Writes `n` bytes of `fill` to the path given (what a GET's fetch does). */
const bytes = (n: number, fill = 1) => async (path: string): Promise<number> => {
  await writeFile(path, Buffer.alloc(n, fill));
  return n;
};

after(cleanup);

describe("read cache", () => {
  it("keeps files up to its budget, removing the least recently read first", async () => {
    const dir = await tempDir("muri-read-cache-");
    const cache = new ReadCache(dir, 100);
    assert.deepEqual([cache.admits(100), cache.admits(101)], [true, false]);
    await cache.fill("a", bytes(40));
    await cache.fill("b", bytes(40));
    assert.equal(cache.size, 80);
    await cache.read("a", async () => undefined); // a read after b was written: b is now the oldest
    await cache.fill("c", bytes(40));
    assert.deepEqual([cache.has("a"), cache.has("b"), cache.has("c")], [true, false, true]);
    assert.equal(cache.size, 80);
    assert.deepEqual((await readdir(dir)).sort(), ["a", "c"], "b's file removed");
    assert.equal(await cache.read("b", async () => "read"), undefined, "a removed file is not read");
    assert.equal(await cache.read("c", async (f) => (await readFile(f.path)).length), 40);
  });

  it("never removes a file while it is read; the budget holds again once the read ends", async () => {
    const dir = await tempDir("muri-read-cache-");
    const cache = new ReadCache(dir, 100);
    await cache.fill("a", bytes(60));
    let release!: () => void;
    const reading = cache.read("a", () => new Promise<void>((r) => (release = r)));
    // Over the budget while a is read: the other file goes, although a was read before it was written.
    await cache.fill("b", bytes(60));
    assert.deepEqual([cache.has("a"), cache.has("b"), cache.size], [true, false, 60]);
    release();
    await reading;
    // A file larger than the budget, read as it is written (as a GET of a compressed file is): every
    // other file goes, and it is kept while read, then removed.
    let done!: () => void;
    const big = cache.fill("big", bytes(150));
    const readBig = cache.read("big", (f) => new Promise<number>((r) => (done = () => r(f.size))));
    await big;
    assert.deepEqual([cache.has("big"), cache.has("a"), cache.size], [true, false, 150], "above the budget while read");
    assert.deepEqual(await readdir(dir), ["big"]);
    done();
    assert.equal(await readBig, 150);
    assert.deepEqual([cache.has("big"), cache.size], [false, 0]);
    assert.deepEqual(await readdir(dir), []);
  });

  it("writes a file once; readers that come meanwhile wait for it", async () => {
    const dir = await tempDir("muri-read-cache-");
    const cache = new ReadCache(dir, 1000);
    let writes = 0;
    let finish!: () => void;
    const gate = new Promise<void>((r) => (finish = r));
    const slow = async (path: string): Promise<number> => {
      writes++;
      await gate;
      return bytes(10, 7)(path);
    };
    const first = cache.fill("x", slow);
    const second = cache.fill("x", slow);
    const read = cache.read("x", async (f) => readFile(f.path));
    finish();
    assert.deepEqual(await first, await second);
    assert.deepEqual(await read, Buffer.alloc(10, 7));
    assert.equal(writes, 1);
  });

  it("forgets a file whose write failed, and removes what it wrote", async () => {
    const dir = await tempDir("muri-read-cache-");
    const cache = new ReadCache(dir, 1000);
    const failing = async (path: string): Promise<number> => {
      await writeFile(path, "partial");
      throw new Error("peer gone");
    };
    await assert.rejects(cache.fill("x", failing), /peer gone/);
    assert.equal(cache.has("x"), false);
    assert.deepEqual(await readdir(dir), []);
    assert.equal(cache.size, 0);
    await cache.fill("x", bytes(5));
    assert.equal(cache.size, 5, "written again on the next read");
  });

  it("a budget of 0 keeps nothing larger than nothing; a negative or fractional one is refused", async () => {
    const cache = new ReadCache(await tempDir("muri-read-cache-"), 0);
    assert.deepEqual([cache.admits(0), cache.admits(1)], [true, false]);
    for (const bad of [-1, 1.5, Number.NaN]) assert.throws(() => new ReadCache("/tmp", bad), /cache budget must be a whole number of bytes/);
  });
});
