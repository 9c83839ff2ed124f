/**
 * `muri node fsck` through the real `bin/muri.js` on a real node directory (LevelDB, fragment files):
 * an orphan file is adopted, an entry whose file vanished is dropped, fragments no Magu holds are
 * counted and, with --drop-unreferenced, deleted while the held ones stay; a directory that is not a
 * node's and a node directory in use fail with one line.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { after, describe, test } from "node:test";
import { fragmentCid } from "../../../agents/data/cid.js";
import { fragmentRoot, maguRoot } from "../../../agents/data/merkle.js";
import { createMaguIndex } from "../../../agents/roles/shared/magu-index.js";
import { openFragmentStore, openMetaDb } from "../../../agents/store/index.js";
import { blockPath, storePaths } from "../../../agents/store/layout.js";
import { cleanup, tempDir } from "../chain/harness.js";
import { muri } from "./run-muri.js";

after(cleanup);

describe("muri node fsck", () => {
  test("adopts orphans, drops missing entries, counts and drops what no Magu holds; refuses a wrong or busy directory", async () => {
    const dir = await tempDir("muri-fsck-");
    const frags = Array.from({ length: 4 }, () => randomBytes(3000));
    const cids = frags.map((f) => fragmentCid(f));
    {
      const meta = await openMetaDb(`${dir}/meta`);
      const store = await openFragmentStore({ dir, quotaBytes: 1 << 24, metaDb: meta, sync: "always" });
      for (const [i, f] of frags.entries()) if (i < 3) await store.put(cids[i]!, f);
      // Magu 7 holds fragments 0 and 1 of its two; fragment 2 belongs to no Magu.
      const index = createMaguIndex({}, { metaDb: meta });
      const roots = [fragmentRoot(frags[0]!), fragmentRoot(frags[1]!)];
      await index.recordFragments(7n, maguRoot(roots), roots, [cids[0]!, cids[1]!]);
      await index.setHeld(7n, [0, 1]);
      await store.close();
      await meta.close();
    }
    const paths = storePaths(dir);
    // A file written without its entry (a crash between rename and commit): valid, so adopted.
    await mkdir(dirname(blockPath(paths, cids[3]!)), { recursive: true });
    await writeFile(blockPath(paths, cids[3]!), frags[3]!);
    // An entry whose file is gone.
    await rm(blockPath(paths, cids[1]!));

    const check = await muri(["node", "fsck", "--dir", dir, "--json"]);
    assert.equal(check.code, 0, check.stderr);
    const r = JSON.parse(check.stdout) as Record<string, number>;
    assert.equal(r.adopted, 1);
    assert.equal(r.droppedMissing, 1);
    assert.equal(r.unreferenced, 2, "fragment 2 and the adopted orphan");
    assert.equal(r.dropped, 0);
    assert.equal(r.fragments, 3);

    const drop = await muri(["node", "fsck", "--dir", dir, "--drop-unreferenced"]);
    assert.equal(drop.code, 0, drop.stderr);
    assert.match(drop.stdout, /2 raw fragments no Magu holds: 2 deleted; 1 fragments now/);
    const meta = await openMetaDb(`${dir}/meta`);
    const store = await openFragmentStore({ dir, quotaBytes: 1 << 24, metaDb: meta });
    try {
      assert.equal(await store.has(cids[0]!), true, "the held fragment stays");
      assert.equal(await store.has(cids[2]!), false);
      assert.equal(await store.has(cids[3]!), false);
      // While the directory is in use (this process holds its database), fsck refuses with one line.
      const busy = await muri(["node", "fsck", "--dir", dir]);
      assert.equal(busy.code, 1);
      assert.equal(busy.stderr.trim().split("\n").length, 1, busy.stderr);
      assert.match(busy.stderr, /lock|in use|another process/i);
    } finally {
      await store.close();
      await meta.close();
    }
    const wrong = await muri(["node", "fsck", "--dir", await tempDir("muri-fsck-empty-")]);
    assert.equal(wrong.code, 2);
    assert.match(wrong.stderr, /--dir: .* is not a node's data directory \(no meta\/ in it\)/);
  });
});
