import assert from "node:assert/strict";
import { open, readdir, truncate, writeFile, mkdir } from "node:fs/promises";
import * as fsp from "node:fs/promises";
import { join, sep } from "node:path";
import { describe, it } from "node:test";
import { CID } from "multiformats/cid";
import { sha512 } from "multiformats/hashes/sha2";
import { fragmentCid } from "../../../agents/data/cid.js";
import { FRAGMENT_SIZE } from "../../../agents/data/constants.js";
import {
  CidMismatchError,
  CorruptFragmentError,
  DiskFullError,
  FragmentNotFoundError,
  FragmentTooLargeError,
  StoreClosedError,
  StoreFullError,
  StreamLengthError,
  UnsupportedCidError,
} from "../../../agents/store/errors.js";
import { openFragmentStore, type StoreFs } from "../../../agents/store/fragment-store.js";
import { blockPath, storePaths } from "../../../agents/store/layout.js";
import { Bucket, encodeUint32, openMetaDb } from "../../../agents/store/meta-db.js";
import { filesUnder, randomFragment, tempDir } from "./helpers.js";

const KiB = 1024;
const QUOTA = 1 << 30;

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function* chunked(bytes: Uint8Array, size: number): AsyncIterable<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

describe("FragmentStore", () => {
  it("round-trips fragments and reports them in list, has and stats", async (t) => {
    const dir = await tempDir(t);
    const store = await openFragmentStore({ dir, quotaBytes: QUOTA });
    t.after(() => store.close());
    const frags = [randomFragment(FRAGMENT_SIZE), randomFragment(1), randomFragment(0), randomFragment(300 * KiB)];
    for (const f of frags) await store.put(f.cid, f.bytes);
    for (const f of frags) {
      assert.equal(await store.has(f.cid), true);
      assert.deepEqual(new Uint8Array(await store.get(f.cid)), f.bytes);
    }
    const listed = (await collect(store.list())).map((c) => c.toString()).sort();
    assert.deepEqual(listed, frags.map((f) => f.cid.toString()).sort());
    const used = frags.reduce((n, f) => n + f.bytes.length, 0);
    assert.deepEqual(store.stats(), { usedBytes: used, freeBytes: QUOTA - used, quotaBytes: QUOTA, count: frags.length });
    assert.equal(await store.has(randomFragment(10).cid), false);
    await assert.rejects(store.get(randomFragment(10).cid), FragmentNotFoundError);
  });

  it("reads a byte range of a fragment, cut at its end; a missing, truncated or unknown fragment or a bad range is refused", async (t) => {
    const dir = await tempDir(t);
    const store = await openFragmentStore({ dir, quotaBytes: QUOTA });
    t.after(() => store.close());
    const f = randomFragment(300 * KiB + 17);
    const gone = randomFragment(4 * KiB);
    const cut = randomFragment(8 * KiB);
    for (const x of [f, gone, cut]) await store.put(x.cid, x.bytes);
    await store.flush();
    const size = f.bytes.length;
    for (const [offset, length] of [[0, 1], [1024, 5 * KiB], [size - 10, 10], [size - 10, 1000], [7, 0], [0, size + 5]] as const) {
      assert.deepEqual(new Uint8Array(await store.getRange(f.cid, offset, length)), f.bytes.subarray(offset, Math.min(size, offset + length)), `[${offset}, +${length})`);
    }
    await assert.rejects(store.getRange(f.cid, size, 1), /offset \d+ is outside fragment .* \(307217 bytes\)/);
    await assert.rejects(store.getRange(f.cid, -1, 1), RangeError);
    await assert.rejects(store.getRange(f.cid, 0, -1), /length -1 must be a non-negative integer/);
    await assert.rejects(store.getRange(randomFragment(10).cid, 0, 1), FragmentNotFoundError);
    // A file gone from disk, or shorter than recorded: the entry is dropped, as for a whole read.
    const paths = storePaths(dir);
    await fsp.rm(blockPath(paths, gone.cid));
    await assert.rejects(store.getRange(gone.cid, 0, 10), FragmentNotFoundError);
    await truncate(blockPath(paths, cut.cid), 1000);
    await assert.rejects(store.getRange(cut.cid, 0, 10), (err: unknown) => err instanceof CorruptFragmentError && err.context.reason === "size" && err.context.actualSize === 1000);
    assert.equal(await store.has(cut.cid), false);
    assert.deepEqual(new Uint8Array(await store.get(f.cid)), f.bytes, "the others are untouched");
  });

  it("treats a second put of the same CID as a no-op, also when concurrent", async (t) => {
    const dir = await tempDir(t);
    const store = await openFragmentStore({ dir, quotaBytes: QUOTA });
    t.after(() => store.close());
    const f = randomFragment(200 * KiB);
    await Promise.all(Array.from({ length: 5 }, () => store.put(f.cid, f.bytes)));
    await store.put(f.cid, f.bytes);
    assert.equal(store.stats().count, 1);
    assert.equal(store.stats().usedBytes, f.bytes.length);
    assert.equal((await filesUnder(join(dir, "blocks"))).length, 1);
  });

  it("rejects bytes that do not match the CID and stores nothing", async (t) => {
    const dir = await tempDir(t);
    const store = await openFragmentStore({ dir, quotaBytes: QUOTA });
    t.after(() => store.close());
    const a = randomFragment(64 * KiB);
    const b = randomFragment(64 * KiB);
    await assert.rejects(store.put(a.cid, b.bytes), (err: unknown) => {
      assert.ok(err instanceof CidMismatchError);
      assert.equal(err.code, "ERR_CID_MISMATCH");
      assert.equal(err.context.cid, a.cid.toString());
      assert.equal(err.context.actual, b.cid.toString());
      return true;
    });
    assert.equal(await store.has(a.cid), false);
    assert.equal(await store.has(b.cid), false);
    assert.equal(store.stats().count, 0);
    assert.deepEqual(await filesUnder(join(dir, "blocks")), []);
    assert.deepEqual(await filesUnder(join(dir, "tmp")), []);
  });

  it("refuses CIDs it cannot verify and fragments over the size limit", async (t) => {
    const dir = await tempDir(t);
    const store = await openFragmentStore({ dir, quotaBytes: QUOTA, maxFragmentBytes: 128 * KiB });
    t.after(() => store.close());
    const bytes = randomFragment(10).bytes;
    const sha512Cid = CID.createV1(0x55, await sha512.digest(bytes));
    await assert.rejects(store.put(sha512Cid, bytes), UnsupportedCidError);
    const big = randomFragment(128 * KiB + 1);
    await assert.rejects(store.put(big.cid, big.bytes), (err: unknown) => {
      assert.ok(err instanceof FragmentTooLargeError);
      assert.deepEqual(err.context, { cid: big.cid.toString(), size: 128 * KiB + 1, max: 128 * KiB });
      return true;
    });
  });

  it("detects a corrupted file on read, quarantines it and stops serving it", async (t) => {
    const dir = await tempDir(t);
    const store = await openFragmentStore({ dir, quotaBytes: QUOTA });
    t.after(() => store.close());
    const flipped = randomFragment(256 * KiB);
    const truncated = randomFragment(256 * KiB);
    const healthy = randomFragment(256 * KiB);
    for (const f of [flipped, truncated, healthy]) await store.put(f.cid, f.bytes);
    await store.flush();

    const paths = storePaths(dir);
    const fh = await open(blockPath(paths, flipped.cid), "r+");
    await fh.write(Uint8Array.of((flipped.bytes[1000] ?? 0) ^ 0x01), 0, 1, 1000);
    await fh.close();
    await truncate(blockPath(paths, truncated.cid), 1000);

    // A caller that verifies by other means can read without the hash; the size is still checked.
    const unverified = await store.get(flipped.cid, { verify: false });
    assert.notDeepEqual(new Uint8Array(unverified), flipped.bytes);
    await assert.rejects(store.get(truncated.cid, { verify: false }), CorruptFragmentError);
    await store.put(truncated.cid, truncated.bytes);
    await truncate(blockPath(paths, truncated.cid), 1000);

    await assert.rejects(store.get(flipped.cid), (err: unknown) => {
      assert.ok(err instanceof CorruptFragmentError);
      assert.equal(err.code, "ERR_FRAGMENT_CORRUPT");
      assert.equal(err.context.reason, "hash");
      assert.ok(err.context.quarantinedTo?.startsWith(paths.quarantine));
      return true;
    });
    await assert.rejects(store.get(truncated.cid), (err: unknown) => {
      assert.ok(err instanceof CorruptFragmentError);
      assert.equal(err.context.reason, "size");
      assert.equal(err.context.actualSize, 1000);
      return true;
    });
    // Not served again; the healthy neighbour is untouched; usage follows.
    assert.equal(await store.has(flipped.cid), false);
    await assert.rejects(store.get(flipped.cid), FragmentNotFoundError);
    assert.deepEqual(new Uint8Array(await store.get(healthy.cid)), healthy.bytes);
    assert.equal(store.stats().count, 1);
    assert.equal(store.stats().usedBytes, healthy.bytes.length);
    assert.equal((await readdir(paths.quarantine)).length, 3);
    // The fragment can be stored again from a good copy.
    await store.put(flipped.cid, flipped.bytes);
    assert.deepEqual(new Uint8Array(await store.get(flipped.cid)), flipped.bytes);
  });

  it("refuses a write past the quota with StoreFullError and loses nothing", async (t) => {
    const dir = await tempDir(t);
    const size = 100 * KiB;
    const quota = 350 * KiB;
    const store = await openFragmentStore({ dir, quotaBytes: quota });
    t.after(() => store.close());
    const frags = Array.from({ length: 4 }, () => randomFragment(size));
    for (const f of frags.slice(0, 3)) await store.put(f.cid, f.bytes);
    const last = frags[3]!;
    await assert.rejects(store.put(last.cid, last.bytes), (err: unknown) => {
      assert.ok(err instanceof StoreFullError);
      assert.equal(err.code, "ERR_STORE_FULL");
      assert.deepEqual(err.context, { needed: size, free: quota - 3 * size, quota });
      return true;
    });
    assert.equal(await store.has(last.cid), false);
    for (const f of frags.slice(0, 3)) assert.deepEqual(new Uint8Array(await store.get(f.cid)), f.bytes);
    assert.deepEqual(store.stats(), { usedBytes: 3 * size, freeBytes: quota - 3 * size, quotaBytes: quota, count: 3 });
    assert.equal((await filesUnder(join(dir, "blocks"))).length, 3);
    assert.deepEqual(await filesUnder(join(dir, "tmp")), []);
    // Deleting makes room.
    assert.equal(await store.delete(frags[0]!.cid), true);
    assert.equal(await store.delete(frags[0]!.cid), false);
    await store.put(last.cid, last.bytes);
    assert.equal(store.stats().count, 3);
  });

  it("admits exactly as many concurrent puts as the quota allows", async (t) => {
    const dir = await tempDir(t);
    const size = 64 * KiB;
    const store = await openFragmentStore({ dir, quotaBytes: 3 * size });
    t.after(() => store.close());
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => randomFragment(size)).map((f) => store.put(f.cid, f.bytes)));
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 3);
    for (const r of results) if (r.status === "rejected") assert.ok(r.reason instanceof StoreFullError);
    assert.equal(store.stats().usedBytes, 3 * size);
  });

  it("reports a full disk as DiskFullError and leaves nothing half-written", async (t) => {
    const dir = await tempDir(t);
    let diskFull = true;
    // A filesystem whose writes into tmp/ fail with ENOSPC after writing half the bytes.
    const faultyOpen = (async (path: string, flags?: string, mode?: number) => {
      const fh = await fsp.open(path, flags, mode);
      if (!diskFull || !String(path).includes(`${sep}tmp${sep}`)) return fh;
      return new Proxy(fh, {
        get(target, prop) {
          if (prop === "write") {
            return async (buf: Uint8Array, offset: number, length: number) => {
              await target.write(buf, offset, Math.floor(length / 2));
              throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", syscall: "write" });
            };
          }
          const value = Reflect.get(target, prop, target) as unknown;
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    }) as unknown as typeof fsp.open;
    const fs: StoreFs = { ...fsp, open: faultyOpen };
    const store = await openFragmentStore({ dir, quotaBytes: QUOTA, fs });
    t.after(() => store.close());
    const kept = randomFragment(10 * KiB);
    diskFull = false;
    await store.put(kept.cid, kept.bytes);
    diskFull = true;
    const f = randomFragment(512 * KiB);
    await assert.rejects(store.put(f.cid, f.bytes), (err: unknown) => {
      assert.ok(err instanceof DiskFullError);
      assert.equal(err.code, "ERR_DISK_FULL");
      assert.equal(err.context.cid, f.cid.toString());
      assert.match(err.message, /disk full/);
      return true;
    });
    assert.equal(await store.has(f.cid), false);
    assert.deepEqual(await filesUnder(join(dir, "tmp")), []);
    assert.equal((await filesUnder(join(dir, "blocks"))).length, 1);
    assert.deepEqual(store.stats().usedBytes, kept.bytes.length);
    diskFull = false;
    await store.put(f.cid, f.bytes);
    assert.deepEqual(new Uint8Array(await store.get(f.cid)), f.bytes);
  });

  it("persists fragments and usage across close and reopen", async (t) => {
    const dir = await tempDir(t);
    const frags = Array.from({ length: 5 }, (_, i) => randomFragment((i + 1) * 50 * KiB));
    const first = await openFragmentStore({ dir, quotaBytes: QUOTA });
    for (const f of frags) await first.put(f.cid, f.bytes);
    await first.delete(frags[0]!.cid);
    const before = first.stats();
    await first.close();
    await assert.rejects(first.put(frags[0]!.cid, frags[0]!.bytes), StoreClosedError);

    const second = await openFragmentStore({ dir, quotaBytes: QUOTA });
    t.after(() => second.close());
    assert.deepEqual(second.stats(), before);
    assert.equal(await second.has(frags[0]!.cid), false);
    for (const f of frags.slice(1)) assert.deepEqual(new Uint8Array(await second.get(f.cid)), f.bytes);
    assert.equal((await collect(second.list())).length, 4);
  });

  it("works with every sync policy", async (t) => {
    for (const sync of ["always", "batch", "none"] as const) {
      const dir = await tempDir(t);
      const store = await openFragmentStore({ dir, quotaBytes: QUOTA, sync, batchSyncBytes: 256 * KiB });
      const frags = Array.from({ length: 4 }, () => randomFragment(100 * KiB));
      await Promise.all(frags.map((f) => store.put(f.cid, f.bytes)));
      await store.flush();
      await store.close();
      const reopened = await openFragmentStore({ dir, quotaBytes: QUOTA, sync });
      for (const f of frags) assert.deepEqual(new Uint8Array(await reopened.get(f.cid)), f.bytes, sync);
      await reopened.close();
    }
  });

  it("fsyncs per put with sync=always, in groups with sync=batch, never with sync=none", async (t) => {
    const synced: Record<string, [number, number]> = {};
    for (const sync of ["always", "batch", "none"] as const) {
      let fileSyncs = 0;
      // Count fdatasync calls on fragment files (directory fsyncs use sync(), not datasync()).
      const countingOpen = (async (path: string, flags?: string, mode?: number) => {
        const fh = await fsp.open(path, flags, mode);
        return new Proxy(fh, {
          get(target, prop) {
            if (prop === "datasync") fileSyncs += 1;
            const value = Reflect.get(target, prop, target) as unknown;
            return typeof value === "function" ? value.bind(target) : value;
          },
        });
      }) as unknown as typeof fsp.open;
      const dir = await tempDir(t);
      const store = await openFragmentStore({
        dir,
        quotaBytes: QUOTA,
        sync,
        batchSyncBytes: 200 * KiB,
        fs: { ...fsp, open: countingOpen },
      });
      let afterFirstPut = 0;
      for (let i = 0; i < 6; i++) {
        const f = randomFragment(100 * KiB);
        await store.put(f.cid, f.bytes);
        if (i === 0) afterFirstPut = fileSyncs;
      }
      await store.close();
      synced[sync] = [afterFirstPut, fileSyncs];
    }
    // [file syncs once the first put resolved, file syncs after close]
    assert.deepEqual(synced, { always: [1, 6], batch: [0, 6], none: [0, 0] });
  });

  describe("streams", () => {
    it("stores a streamed fragment and streams it back in chunks", async (t) => {
      const dir = await tempDir(t);
      const store = await openFragmentStore({ dir, quotaBytes: QUOTA });
      t.after(() => store.close());
      const f = randomFragment(FRAGMENT_SIZE);
      await store.putStream(f.cid, f.bytes.length, chunked(f.bytes, 60_000));
      const { size, chunks } = await store.getStream(f.cid, { chunkSize: 100_000 });
      assert.equal(size, f.bytes.length);
      const parts = await collect(chunks);
      assert.equal(parts.length, Math.ceil(FRAGMENT_SIZE / 100_000));
      assert.deepEqual(new Uint8Array(Buffer.concat(parts)), f.bytes);
    });

    it("commits a streamed put only when length and hash match", async (t) => {
      const dir = await tempDir(t);
      const store = await openFragmentStore({ dir, quotaBytes: QUOTA });
      t.after(() => store.close());
      const f = randomFragment(300 * KiB);
      const other = randomFragment(300 * KiB);
      await assert.rejects(store.putStream(f.cid, f.bytes.length, chunked(f.bytes.subarray(0, 1000), 100)), (err: unknown) => {
        assert.ok(err instanceof StreamLengthError);
        assert.deepEqual(err.context, { cid: f.cid.toString(), expected: f.bytes.length, received: 1000 });
        return true;
      });
      await assert.rejects(store.putStream(f.cid, 1000, chunked(f.bytes, 64 * KiB)), StreamLengthError);
      await assert.rejects(store.putStream(f.cid, f.bytes.length, chunked(other.bytes, 64 * KiB)), CidMismatchError);
      assert.equal(await store.has(f.cid), false);
      assert.equal(store.stats().usedBytes, 0);
      assert.deepEqual(await filesUnder(join(dir, "tmp")), []);
      assert.deepEqual(await filesUnder(join(dir, "blocks")), []);
    });

    it("withholds the last chunk of a corrupt fragment and quarantines it", async (t) => {
      const dir = await tempDir(t);
      const store = await openFragmentStore({ dir, quotaBytes: QUOTA });
      t.after(() => store.close());
      const f = randomFragment(256 * KiB);
      await store.put(f.cid, f.bytes);
      const fh = await open(blockPath(storePaths(dir), f.cid), "r+");
      await fh.write(Uint8Array.of(0, 0, 0, 0), 0, 4, 200 * KiB);
      await fh.close();
      const { chunks } = await store.getStream(f.cid, { chunkSize: 64 * KiB });
      let delivered = 0;
      await assert.rejects(
        (async () => {
          for await (const chunk of chunks) delivered += chunk.length;
        })(),
        CorruptFragmentError,
      );
      assert.ok(delivered < f.bytes.length);
      assert.equal(await store.has(f.cid), false);
    });
  });

  describe("recovery at open", () => {
    it("resolves the states a crash leaves behind", async (t) => {
      const dir = await tempDir(t);
      const paths = storePaths(dir);
      const meta = await openMetaDb(paths.meta);
      const crashed = await openFragmentStore({ dir, quotaBytes: QUOTA, metaDb: meta, sync: "none" });
      const [kept, lost, renamed, garbage] = Array.from({ length: 4 }, () => randomFragment(100 * KiB)) as [
        ReturnType<typeof randomFragment>,
        ReturnType<typeof randomFragment>,
        ReturnType<typeof randomFragment>,
        ReturnType<typeof randomFragment>,
      ];
      await crashed.put(kept.cid, kept.bytes);
      await crashed.put(lost.cid, lost.bytes);
      // The states a crash can leave: a temp file of a write never renamed; a write renamed into
      // place whose entry was not yet recorded; a file whose content is wrong (OS crash before
      // writeback); an entry whose file vanished (OS crash with the rename not yet on disk).
      await writeFile(join(paths.tmp, "deadbeef-1.tmp"), renamed.bytes.subarray(0, 5000));
      const intents = meta.bucket(Bucket.fragmentIntent);
      await intents.put(renamed.cid.bytes, encodeUint32(renamed.bytes.length));
      await mkdir(join(blockPath(paths, renamed.cid), ".."), { recursive: true });
      await writeFile(blockPath(paths, renamed.cid), renamed.bytes);
      await intents.put(garbage.cid.bytes, encodeUint32(garbage.bytes.length));
      await mkdir(join(blockPath(paths, garbage.cid), ".."), { recursive: true });
      await writeFile(blockPath(paths, garbage.cid), new Uint8Array(garbage.bytes.length));
      await fsp.rm(blockPath(paths, lost.cid));
      await meta.close(); // the store itself is never closed: its clean-shutdown flag stays unset

      const store = await openFragmentStore({ dir, quotaBytes: QUOTA });
      t.after(() => store.close());
      assert.deepEqual(await filesUnder(paths.tmp), []);
      assert.deepEqual(new Uint8Array(await store.get(kept.cid)), kept.bytes);
      assert.deepEqual(new Uint8Array(await store.get(renamed.cid)), renamed.bytes);
      assert.equal(await store.has(lost.cid), false);
      assert.equal(await store.has(garbage.cid), false);
      await assert.rejects(fsp.stat(blockPath(paths, garbage.cid)), { code: "ENOENT" });
      assert.deepEqual(store.stats().count, 2);
      assert.deepEqual(store.stats().usedBytes, kept.bytes.length + renamed.bytes.length);
    });

    it("fsck adopts verified orphan files and quarantines strays", async (t) => {
      const dir = await tempDir(t);
      const paths = storePaths(dir);
      const store = await openFragmentStore({ dir, quotaBytes: QUOTA });
      t.after(() => store.close());
      const known = randomFragment(10 * KiB);
      const orphan = randomFragment(20 * KiB);
      await store.put(known.cid, known.bytes);
      await mkdir(join(blockPath(paths, orphan.cid), ".."), { recursive: true });
      await writeFile(blockPath(paths, orphan.cid), orphan.bytes);
      await mkdir(join(paths.blocks, "00", "00"), { recursive: true });
      await writeFile(join(paths.blocks, "00", "00", "not-a-cid"), "junk");
      const wrongName = fragmentCid(new Uint8Array([1, 2, 3]));
      await mkdir(join(blockPath(paths, wrongName), ".."), { recursive: true });
      await writeFile(blockPath(paths, wrongName), "content that does not match the name");

      const report = await store.fsck({ deep: true });
      assert.deepEqual(report, { checked: 1, droppedMissing: 0, quarantined: 0, adopted: 1, removedOrphans: 2 });
      assert.deepEqual(new Uint8Array(await store.get(orphan.cid)), orphan.bytes);
      assert.equal(await store.has(wrongName), false);
      assert.deepEqual(store.stats().usedBytes, known.bytes.length + orphan.bytes.length);
      assert.equal((await readdir(paths.quarantine)).length, 2);
    });
  });
});
