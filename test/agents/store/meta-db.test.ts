import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { Level } from "level";
import { DatabaseLockedError, SchemaVersionMismatchError } from "../../../agents/store/errors.js";
import { openFragmentStore } from "../../../agents/store/fragment-store.js";
import { Bucket, openMetaDb } from "../../../agents/store/meta-db.js";
import { FIXTURES, tempDir } from "./helpers.js";
import { TS_LOADER } from "../ts-loader.js";

const utf8 = new TextEncoder();
const text = (b: Uint8Array | undefined) => (b === undefined ? undefined : new TextDecoder().decode(b));

/** Starts a child process that holds the store in `dir` open; resolves once it is open. */
async function holdOpen(dir: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ["--import", TS_LOADER, fileURLToPath(new URL("hold-open.ts", FIXTURES)), dir], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: child.stdout! });
  const [line] = (await Promise.race([once(lines, "line"), once(child, "exit").then(() => ["exited"])])) as string[];
  assert.equal(line, "ready");
  return child;
}

describe("MetaDb", () => {
  it("keeps buckets apart and writes batches across buckets atomically", async (t) => {
    const dir = await tempDir(t);
    const db = await openMetaDb(dir);
    t.after(() => db.close());
    const cursors = db.bucket(Bucket.chainCursor);
    const tasks = db.bucket(Bucket.task);
    await cursors.put("k", utf8.encode("cursor"));
    await tasks.put("k", utf8.encode("task"));
    await db.batch([
      { type: "put", bucket: Bucket.chainCursor, key: "k2", value: utf8.encode("c2") },
      { type: "del", bucket: Bucket.task, key: "k" },
    ]);
    assert.equal(text(await cursors.get("k")), "cursor");
    assert.equal(await tasks.get("k"), undefined);
    assert.deepEqual((await collectKeys(cursors.keys())).map(text), ["k", "k2"]);
    assert.deepEqual(await collectKeys(tasks.keys()), []);
    await cursors.clear();
    assert.deepEqual(await collectKeys(cursors.keys()), []);
  });

  it("refuses a database written with another schema version, with a clear message", async (t) => {
    const dir = await tempDir(t);
    await (await openMetaDb(dir, { schemaVersion: 1 })).close();
    await assert.rejects(openMetaDb(dir, { schemaVersion: 2 }), (err: unknown) => {
      assert.ok(err instanceof SchemaVersionMismatchError);
      assert.equal(err.code, "ERR_SCHEMA_VERSION_MISMATCH");
      assert.deepEqual(err.context, { path: dir, found: 1, expected: 2 });
      assert.match(err.message, /schema version 1, this software expects 2/);
      return true;
    });
    // The refused database was closed again: the right version still opens it.
    await (await openMetaDb(dir, { schemaVersion: 1 })).close();
  });

  it("refuses a non-empty database without a schema version", async (t) => {
    const dir = await tempDir(t);
    const raw = new Level(dir);
    await raw.put("foreign", "data");
    await raw.close();
    await assert.rejects(openMetaDb(dir), (err: unknown) => err instanceof SchemaVersionMismatchError && err.context.found === 0);
  });

  it("reports a store held by another process as locked, and opens once it is released", async (t) => {
    const dir = await tempDir(t);
    const child = await holdOpen(dir);
    t.after(() => {
      if (child.exitCode === null) child.kill("SIGKILL");
    });
    await assert.rejects(openFragmentStore({ dir, quotaBytes: 1 << 20 }), (err: unknown) => {
      assert.ok(err instanceof DatabaseLockedError);
      assert.equal(err.code, "ERR_DB_LOCKED");
      assert.equal(err.context.path, join(dir, "meta"));
      assert.match(err.message, /locked by another process/);
      return true;
    });
    child.stdin!.end();
    const [code] = await once(child, "exit");
    assert.equal(code, 0);
    const store = await openFragmentStore({ dir, quotaBytes: 1 << 20 });
    await store.close();
  });
});

async function collectKeys(it: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const k of it) out.push(k);
  return out;
}
