/**
 * A node collects a Magu it no longer answers for (node/collect.ts) from real parts: a fragment
 * store on disk and the Magu index in LevelDB. Its fragments go, except one another Magu holds
 * too; its record goes; collecting again frees nothing; other documents stay.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, describe, test } from "node:test";
import { fragmentCid } from "../../../agents/data/cid.js";
import { fragmentRoot, maguRoot } from "../../../agents/data/merkle.js";
import { collectMagu } from "../../../agents/roles/node/collect.js";
import { createMaguIndex } from "../../../agents/roles/shared/magu-index.js";
import { openFragmentStore, openMetaDb } from "../../../agents/store/index.js";
import { cleanup, recordingLogger, tempDir } from "../chain/harness.js";

after(cleanup);

describe("collecting a Magu a node left or that settled", () => {
  test("frees its fragments but those another Magu holds, drops its record, once", async () => {
    const dir = await tempDir("muri-collect-");
    const meta = await openMetaDb(`${dir}/meta`);
    const store = await openFragmentStore({ dir, quotaBytes: 1 << 24, metaDb: meta, sync: "none" });
    try {
      const [a, b, c] = [randomBytes(5000), randomBytes(6000), randomBytes(7000)];
      const [ca, cb, cc] = [a, b, c].map((x) => fragmentCid(x)) as [ReturnType<typeof fragmentCid>, ReturnType<typeof fragmentCid>, ReturnType<typeof fragmentCid>];
      for (const [cid, bytes] of [[ca, a], [cb, b], [cc, c]] as const) await store.put(cid, bytes);
      const index = createMaguIndex({}, { metaDb: meta });
      const record = async (id: bigint, frags: Buffer[]) => {
        const roots = frags.map((f) => fragmentRoot(f));
        await index.recordFragments(id, maguRoot(roots), roots, frags.map((f) => fragmentCid(f)));
        await index.setHeld(id, frags.map((_, i) => i));
      };
      await record(7n, [a, b]);
      await record(8n, [b, c]);
      const forgotten: bigint[] = [];
      const log = recordingLogger();
      const parts = { store, index, sync: { forget: (id: bigint) => void forgotten.push(id) }, logger: log };

      const first = await collectMagu(7n, "settled", parts);
      assert.deepEqual(first, { fragments: 1, bytes: a.length, shared: 1 });
      assert.equal(await store.has(ca), false);
      assert.equal(await store.has(cb), true, "Magu 8 still holds it");
      assert.equal(await index.get(7n), undefined);
      assert.deepEqual(await index.maguIds(), [8n]);
      assert.deepEqual(forgotten, [7n]);
      assert.ok(log.entries.some((e) => e.msg === "magu collected: this node no longer answers for it" && e.context?.reason === "settled"));

      assert.deepEqual(await collectMagu(7n, "settled", parts), { fragments: 0, bytes: 0, shared: 0 }, "a second delivery frees nothing");
      assert.deepEqual(await collectMagu(8n, "evicted", parts), { fragments: 2, bytes: b.length + c.length, shared: 0 });
      assert.equal(store.stats().count, 0);
      assert.equal(store.stats().usedBytes, 0);
    } finally {
      await store.close();
      await meta.close();
    }
  });
});
