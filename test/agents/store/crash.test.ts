import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { CID } from "multiformats/cid";
import { openFragmentStore } from "../../../agents/store/fragment-store.js";
import { Bucket, openMetaDb } from "../../../agents/store/meta-db.js";
import { FIXTURES, filesUnder, tempDir } from "./helpers.js";
import { TS_LOADER } from "../ts-loader.js";

const KILLS = 3;
const ACKS_BEFORE_KILL = 25;

/**
 * Runs the crash writer on `dir`, SIGKILLs it once it has acknowledged `acks` more puts (at an
 * arbitrary point of the writes in flight), and returns the acknowledged CIDs with their sizes.
 */
async function writeUntilKilled(dir: string, acks: number): Promise<Map<string, number>> {
  const child = spawn(process.execPath, ["--import", TS_LOADER, fileURLToPath(new URL("crash-writer.ts", FIXTURES)), dir], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const acked = new Map<string, number>();
  const exited = once(child, "exit");
  for await (const line of createInterface({ input: child.stdout! })) {
    const [tag, cid, size] = line.split(" ");
    if (tag !== "ok") continue;
    acked.set(cid!, Number(size));
    if (acked.size === acks) child.kill("SIGKILL");
  }
  const [code, signal] = await exited;
  assert.equal(signal, "SIGKILL", `writer exited on its own (code ${code})`);
  return acked;
}

describe("crash safety", () => {
  it("after SIGKILL mid-write, every listed fragment reads back valid and no temp file remains", async (t) => {
    const dir = await tempDir(t);
    const acked = new Map<string, number>();
    let tmpLeft = 0;
    let intentsLeft = 0;
    for (let i = 0; i < KILLS; i++) {
      for (const [cid, size] of await writeUntilKilled(dir, ACKS_BEFORE_KILL)) acked.set(cid, size);
      tmpLeft += (await readdir(join(dir, "tmp"))).length;
      const meta = await openMetaDb(join(dir, "meta"));
      for await (const _ of meta.bucket(Bucket.fragmentIntent).keys()) intentsLeft += 1;
      await meta.close();
    }
    t.diagnostic(`${KILLS} kills left ${tmpLeft} temp files and ${intentsLeft} unresolved writes`);

    const store = await openFragmentStore({ dir, quotaBytes: 2 ** 40 });
    assert.deepEqual(await filesUnder(join(dir, "tmp")), []);
    let used = 0;
    let count = 0;
    for await (const cid of store.list()) {
      const bytes = await store.get(cid); // verifies the CID
      used += bytes.length;
      count += 1;
    }
    // Every acknowledged put survived the crash (page cache outlives the process).
    for (const [cid, size] of acked) {
      assert.equal(await store.has(CID.parse(cid)), true, `acknowledged fragment ${cid} lost`);
      assert.equal((await store.get(CID.parse(cid))).length, size);
    }
    assert.ok(count >= acked.size);
    assert.deepEqual(store.stats(), { usedBytes: used, freeBytes: 2 ** 40 - used, quotaBytes: 2 ** 40, count });
    // Every file under blocks/ is a listed fragment: no orphan of an interrupted write is left.
    assert.equal((await filesUnder(join(dir, "blocks"))).length, count);
    await store.close();
    const meta = await openMetaDb(join(dir, "meta"));
    for await (const _ of meta.bucket(Bucket.fragmentIntent).keys()) assert.fail("a write intent was left unresolved");
    await meta.close();
  });
});
