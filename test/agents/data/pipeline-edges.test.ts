import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import type { CID } from "multiformats/cid";
import { fragmentCid } from "../../../agents/data/cid.js";
import { FRAGMENT_SIZE } from "../../../agents/data/constants.js";
import { FileCipher, manifestMac, sealFileSize } from "../../../agents/data/crypto.js";
import { FileIdReusedError, InvalidParameterError, ManifestAuthError, ManifestError, ManifestSealError, NotEnoughShardsError, SizeMismatchError } from "../../../agents/data/errors.js";
import { fragmentSpan, manifestMacBody, type Manifest } from "../../../agents/data/manifest.js";
import { fragmentRoot } from "../../../agents/data/merkle.js";
import {
  decodeFile,
  decodeToBuffer,
  DEFAULT_K,
  DEFAULT_M,
  encodeFile,
  encodeToMemory,
  fetchStripe,
  fetchStripes,
  memoryFetcher,
  openManifest,
  type EncodedShard,
  type ShardFetcher,
  type ShardPosition,
} from "../../../agents/data/pipeline.js";

const secret = Buffer.alloc(32, 0x3c);
/** A file id never used before in this process (the encoder refuses one given twice). */
const freshFileId = (): Buffer => randomBytes(32);
const bytesOf = (n: number, seed = 1): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
};

async function encodeAll(data: Buffer, options: Parameters<typeof encodeFile>[1]) {
  const stripes: { stripe: number; shards: EncodedShard[] }[] = [];
  const result = await encodeFile(data, options, (shards, stripe) => {
    stripes.push({ stripe, shards: shards.map((s) => ({ ...s, bytes: Buffer.from(s.bytes) })) });
  });
  const byIndex = stripes.flatMap((s) => s.shards).map((s) => s.bytes);
  return { ...result, stripes, byIndex };
}

function fetcherOf(shards: Buffer[], drop: (w: ShardPosition) => boolean = () => false, calls?: ShardPosition[]): ShardFetcher {
  return async (_cid: CID, where) => {
    calls?.push(where);
    return drop(where) ? undefined : shards[where.index];
  };
}

describe("pipeline: encoder options and what the sink sees", () => {
  it("shardSize must be a multiple of 8 in (28, FRAGMENT_SIZE]", async () => {
    for (const bad of [0, 24, 28, 36 + 1, FRAGMENT_SIZE + 8, 40.5]) {
      await assert.rejects(encodeFile(bytesOf(10), { secret, shardSize: bad }, () => {}), (e: unknown) => {
        assert.ok(e instanceof InvalidParameterError, String(e));
        assert.equal(e.context.name, "shardSize");
        assert.equal(e.context.reason, `must be a multiple of 8 in (28, ${FRAGMENT_SIZE}]`);
        return true;
      });
    }
    const tiny = await encodeAll(bytesOf(10), { secret, fileId: freshFileId(), k: 1, m: 0, shardSize: 32 });
    assert.equal(tiny.manifest.fragmentSize, 4);
    assert.equal(tiny.manifest.erasure.stripes, 3);
    await assert.rejects(encodeFile(bytesOf(10), { secret, k: 0 }, () => {}), InvalidParameterError);
    await assert.rejects(encodeFile(bytesOf(10), { secret, m: 7 }, () => {}), InvalidParameterError);
  });

  it("defaults: k = 4, m = 2, 1 MiB shards, a fresh file id each time; a given file id is used", async () => {
    assert.deepEqual([DEFAULT_K, DEFAULT_M], [4, 2]);
    const a = await encodeToMemory(bytesOf(100), { secret });
    const b = await encodeToMemory(bytesOf(100), { secret });
    assert.deepEqual([a.manifest.erasure.k, a.manifest.erasure.m], [4, 2]);
    assert.equal(a.manifest.fragmentSize, FRAGMENT_SIZE - 28);
    assert.notEqual(a.manifest.encryption.fileId, b.manifest.encryption.fileId);
    const fileId = freshFileId();
    const c = await encodeToMemory(bytesOf(100), { secret, fileId });
    assert.equal(c.manifest.encryption.fileId, fileId.toString("hex"));
    // Given twice, a file id is refused: the same (key, nonce) pairs would seal the new bytes.
    await assert.rejects(encodeToMemory(bytesOf(100), { secret, fileId }), (e: unknown) => e instanceof FileIdReusedError && e.context.fileId === fileId.toString("hex"));
    await assert.rejects(encodeToMemory(bytesOf(7), { secret, fileId: Buffer.from(fileId) }), FileIdReusedError, "a copy of it too");
  });

  it("the sink gets each stripe once, in order, with positions, CIDs and roots of the bytes", async () => {
    const data = bytesOf(6 * 100 + 13);
    for (const sequential of [false, true]) {
      const r = await encodeAll(data, { secret, fileId: freshFileId(), k: 3, m: 2, shardSize: 128, sequential });
      assert.equal(r.manifest.erasure.stripes, 3);
      assert.deepEqual(r.stripes.map((s) => s.stripe), [0, 1, 2]);
      for (const { stripe, shards } of r.stripes) {
        assert.equal(shards.length, 5);
        shards.forEach((s, position) => {
          assert.deepEqual([s.index, s.stripe, s.position], [stripe * 5 + position, stripe, position]);
          assert.ok(s.cid.equals(fragmentCid(s.bytes)));
          assert.deepEqual(s.root, fragmentRoot(s.bytes));
          assert.equal(r.manifest.shards[s.index]!.toString(), s.cid.toString());
          assert.equal(r.manifest.roots[s.index], s.root.toString("hex"));
        });
      }
      // The last stripe holds 13 bytes: every one of its data shards is still a sealed fragment, none all zeros.
      for (const s of r.stripes[2]!.shards) {
        assert.equal(s.bytes.length, r.manifest.erasure.lastShardSize);
        assert.notDeepEqual(s.bytes, Buffer.alloc(s.bytes.length));
      }
      assert.deepEqual(await decodeToBuffer(r.manifest, fetcherOf(r.byIndex), { secret }), data);
    }
  });

  it("an empty file is one stripe of sealed padding", async () => {
    const r = await encodeAll(Buffer.alloc(0), { secret, fileId: freshFileId(), k: 2, m: 1, shardSize: 64 });
    assert.equal(openManifest(r.manifest, secret).fileSize, 0);
    assert.equal(r.manifest.erasure.stripes, 1);
    assert.equal(r.stripes.length, 1);
    assert.equal(r.byIndex.length, 3);
    assert.deepEqual(await decodeToBuffer(r.manifest, fetcherOf(r.byIndex), { secret }), Buffer.alloc(0));
    const parts: Buffer[] = [];
    for await (const p of decodeFile(r.manifest, fetcherOf(r.byIndex), { secret })) parts.push(p);
    assert.equal(parts.length, 0, "nothing yielded for an empty file");
  });

  it("stripes whose shard count is not a multiple of the hash batch, many stripes", async () => {
    // k + m = 7 does not divide 16; 40 fragments = 10 stripes.
    const data = bytesOf(40 * 36);
    const r = await encodeAll(data, { secret, fileId: freshFileId(), k: 4, m: 3, shardSize: 64 });
    assert.equal(r.stripes.length, 10);
    r.stripes.forEach(({ shards }) => shards.forEach((s) => assert.ok(s.cid.equals(fragmentCid(s.bytes)))));
    assert.deepEqual(await decodeToBuffer(r.manifest, fetcherOf(r.byIndex, (w) => w.position === 0 || w.position === 6), { secret }), data);
  });
});

describe("pipeline: sealed padding", () => {
  it("every data shard is one sealed fragment: it opens to its file bytes then zeros, and shows no plaintext zeros", async () => {
    // Dirty the allocator's pool first, so that unfilled bytes would show.
    for (let i = 0; i < 64; i++) Buffer.allocUnsafe(65_536).fill(0xa5);
    for (const [size, k, m, shardSize] of [
      [13, 3, 1, 64], // one short stripe
      [200, 4, 2, 64], // 6 fragments' worth: one full stripe, then 56 bytes over four fragments
      [36 * 3 + 1, 3, 0, 64], // a last stripe holding 1 byte
      [0, 2, 1, 1 << 16], // the empty file: 4 KiB of padding per shard
      [2 * 4068 + 1, 2, 1, 1 << 16], // one byte over the 4 KiB bucket: 8 KiB shards
      [2 * ((1 << 16) - 28) + 5, 2, 2, 1 << 16], // a full stripe, then 5 bytes in 4 KiB shards
    ] as const) {
      // With recycled stripe buffers too: a tail left unfilled would show the previous stripe's bytes.
      for (const reuseBuffers of [false, true]) {
        const fileId = freshFileId();
        const data = bytesOf(size, size);
        const r = await encodeAll(data, { secret, fileId, k, m, shardSize, reuseBuffers });
        const { manifest } = r;
        const cipher = new FileCipher(secret, fileId);
        for (const { stripe, shards } of r.stripes) {
          for (let j = 0; j < k; j++) {
            const index = stripe * k + j;
            const bytes = shards[j]!.bytes;
            const { offset, length, capacity } = fragmentSpan(manifest, size, index);
            assert.equal(bytes.length, capacity + 28, `size ${size}: stripe ${stripe} shard ${j} is one sealed fragment`);
            const want = Buffer.concat([data.subarray(offset, offset + length), Buffer.alloc(capacity - length)]);
            assert.deepEqual(cipher.open(index, bytes), want, `size ${size}: stripe ${stripe} shard ${j}`);
            // The tag ends the shard: no run of zeros shows where the data stops.
            assert.notDeepEqual(bytes.subarray(bytes.length - 8), Buffer.alloc(8));
          }
        }
        for (let i = 0; i < 64; i++) Buffer.allocUnsafe(65_536).fill(0x5a);
        assert.deepEqual(await decodeToBuffer(manifest, fetcherOf(r.byIndex), { secret }), data);
      }
    }
  });
});

describe("pipeline: decoder options and errors", () => {
  it("fetches each shard by its own CID", async () => {
    const data = bytesOf(9 * 36 + 3);
    const r = await encodeToMemory(data, { secret, fileId: freshFileId(), k: 3, m: 2, shardSize: 64 });
    const byCid = memoryFetcher(r.shards);
    const seen: number[] = [];
    const corrupt: number[] = [];
    const fetch: ShardFetcher = async (cid, where) => {
      assert.equal(cid.toString(), r.manifest.shards[where.index]!.toString(), `shard ${where.index}`);
      seen.push(where.index);
      return byCid(cid, where);
    };
    assert.deepEqual(await decodeToBuffer(r.manifest, fetch, { secret, onCorruptShard: (w) => corrupt.push(w.index) }), data);
    assert.deepEqual(corrupt, []);
    assert.ok(seen.length > 0);
    const rebuilt = await fetchStripe(r.manifest, 1, async (cid, where) => (where.position === 1 ? undefined : byCid(cid, where)), { all: true });
    assert.equal(rebuilt.length, 5);
  });

  it("a data shard missing: the k data shards come back (all k + m only with `all`)", async () => {
    const r = await encodeAll(bytesOf(6 * 36), { secret, fileId: freshFileId(), k: 3, m: 2, shardSize: 64 });
    const dataOnly = await fetchStripe(r.manifest, 1, fetcherOf(r.byIndex, (w) => w.position === 0));
    assert.equal(dataOnly.length, 3);
    assert.deepEqual(dataOnly, r.byIndex.slice(5, 8));
    const all = await fetchStripe(r.manifest, 1, fetcherOf(r.byIndex, (w) => w.position === 0), { all: true });
    assert.deepEqual(all, r.byIndex.slice(5, 10));
  });

  it("corrupt shards are listed in position order whatever the order they were found in", async () => {
    const r = await encodeAll(bytesOf(2 * 36), { secret, fileId: freshFileId(), k: 2, m: 1, shardSize: 64 });
    const shards = r.byIndex.map((s) => s);
    const flipped = Buffer.from(shards[0]!);
    flipped[5]! ^= 1;
    shards[0] = flipped; // found by its CID (after the length check)
    shards[1] = Buffer.concat([shards[1]!, Buffer.alloc(8)]); // found by its length (first)
    await assert.rejects(fetchStripe(r.manifest, 0, fetcherOf(shards)), (e: unknown) => {
      assert.ok(e instanceof NotEnoughShardsError, String(e));
      assert.deepEqual(e.context, { stripe: 0, needed: 2, available: 1, missing: [], corrupt: [0, 1] });
      return true;
    });
  });

  it("a failing prefetch after the decoder stopped is not an unhandled rejection", async () => {
    // k = 1: 16 stripes per fetch batch; 40 stripes = batches [0, 16), [16, 32), [32, 40).
    const r = await encodeAll(bytesOf(40 * 36), { secret, fileId: freshFileId(), k: 1, m: 0, shardSize: 64 });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      const fetch: ShardFetcher = async (_cid, where) => {
        if (where.stripe >= 16) {
          await new Promise((resolve) => setTimeout(resolve, 20));
          throw new Error("peer went away");
        }
        return where.stripe === 3 ? undefined : r.byIndex[where.index];
      };
      await assert.rejects(decodeToBuffer(r.manifest, fetch, { secret, readAhead: 1 }), NotEnoughShardsError);
      await new Promise((resolve) => setTimeout(resolve, 100));
      await new Promise((resolve) => setImmediate(resolve));
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    assert.deepEqual(unhandled, []);
  });

  it("readAhead 0, 1 and 5 and reuseBuffers all give the same bytes; stripes are fetched in order", async () => {
    const data = bytesOf(30 * 36 + 5);
    const r = await encodeAll(data, { secret, fileId: freshFileId(), k: 2, m: 1, shardSize: 64 });
    for (const readAhead of [0, 1, 5, -3]) {
      const calls: ShardPosition[] = [];
      const parts: Buffer[] = [];
      for await (const p of decodeFile(r.manifest, fetcherOf(r.byIndex, undefined, calls), { secret, readAhead, reuseBuffers: readAhead === 1 })) parts.push(Buffer.from(p));
      assert.deepEqual(Buffer.concat(parts), data, `readAhead ${readAhead}`);
      assert.equal(parts.length, Math.ceil(data.length / 36), "one part per fragment holding file bytes");
      const stripesSeen = [...new Set(calls.map((c) => c.stripe))];
      assert.deepEqual(stripesSeen, [...stripesSeen].sort((a, b) => a - b));
      assert.equal(stripesSeen.length, r.manifest.erasure.stripes);
    }
  });

  it("fetchStripes checks stripe numbers and returns data (or all) shards as Buffers", async () => {
    const data = bytesOf(5 * 36);
    const r = await encodeAll(data, { secret, fileId: freshFileId(), k: 2, m: 2, shardSize: 64 });
    assert.equal(r.manifest.erasure.stripes, 3);
    for (const bad of [-1, 3, 1.5]) {
      await assert.rejects(fetchStripes(r.manifest, [0, bad], fetcherOf(r.byIndex)), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "stripe" && e.context.reason === "manifest has 3 stripes");
    }
    const got = await fetchStripes(r.manifest, [2, 0], fetcherOf(r.byIndex));
    assert.deepEqual(got, [r.byIndex.slice(8, 10), r.byIndex.slice(0, 2)]);
    const plain = r.byIndex.map((b) => new Uint8Array(b));
    const fromPlain = await fetchStripe(r.manifest, 1, async (_c, w) => plain[w.index]);
    assert.ok(fromPlain.every((s) => Buffer.isBuffer(s)));
    assert.deepEqual(fromPlain, r.byIndex.slice(4, 6));
    const all = await fetchStripe(r.manifest, 1, fetcherOf(r.byIndex, (w) => w.position === 3), { all: true });
    assert.deepEqual(all, r.byIndex.slice(4, 8));
    assert.deepEqual(await fetchStripes(r.manifest, [], fetcherOf(r.byIndex)), []);
  });

  it("a stripe that cannot be rebuilt rejects with the missing and corrupt shards; one bad stripe does not hide a good one", async () => {
    const r = await encodeAll(bytesOf(4 * 36), { secret, fileId: freshFileId(), k: 2, m: 1, shardSize: 64 });
    const shards = r.byIndex.map((s) => s);
    const bad = Buffer.from(shards[3]!);
    bad[0]! ^= 1;
    shards[3] = bad;
    const corrupt: number[] = [];
    await assert.rejects(
      fetchStripe(r.manifest, 1, fetcherOf(shards, (w) => w.index === 5), { onCorruptShard: (w, cid) => (corrupt.push(w.index), assert.ok(cid.equals(r.manifest.shards[w.index]!))) }),
      (e: unknown) => {
        assert.ok(e instanceof NotEnoughShardsError);
        assert.deepEqual(e.context, { stripe: 1, needed: 2, available: 1, missing: [2], corrupt: [0] });
        return true;
      },
    );
    assert.deepEqual(corrupt, [3]);
    const first = await fetchStripe(r.manifest, 0, fetcherOf(shards, (w) => w.index === 5));
    assert.deepEqual(first, r.byIndex.slice(0, 2));
  });

  it("a sealed size that disagrees with the data: ManifestSealError, ManifestError or SizeMismatchError (never silently short)", async () => {
    const fileId = freshFileId();
    const r = await encodeToMemory(bytesOf(100), { secret, fileId, k: 1, m: 0, shardSize: 256 });
    const fetch = memoryFetcher(r.shards);
    // A member cannot seal another size: one copied from another file, or edited, does not open.
    const other = await encodeToMemory(bytesOf(50), { secret, fileId: freshFileId(), k: 1, m: 0, shardSize: 256 });
    await assert.rejects(decodeToBuffer({ ...r.manifest, sealedSize: other.manifest.sealedSize }, fetch, { secret }), ManifestSealError);
    // The MAC covers the seal: a seal of another size that opens (made with the secret) but without
    // a new MAC is ManifestAuthError, not a seal error.
    await assert.rejects(decodeToBuffer({ ...r.manifest, sealedSize: sealFileSize(secret, fileId, 50) }, fetch, { secret }), (e: unknown) => e instanceof ManifestAuthError && !(e instanceof ManifestSealError));
    // Re-sealed under the secret (a client bug), the decoder still never returns short data.
    const reseal = (size: number): Manifest => {
      const m = { ...r.manifest, sealedSize: sealFileSize(secret, fileId, size) };
      return { ...m, encryption: { ...m.encryption, mac: manifestMac(secret, fileId, manifestMacBody(m)) } };
    };
    // A size that needs another layout (2 stripes of 228 bytes) is refused when the manifest is opened.
    await assert.rejects(decodeToBuffer(reseal(300), fetch, { secret }), (e: unknown) => {
      assert.ok(e instanceof ManifestError, String(e));
      assert.equal(e.context.field, "sealedSize");
      assert.equal(e.context.reason, "the sealed size 300 makes 2 stripes with a last shard of 256 bytes, the manifest has 1 and 256");
      return true;
    });
    // A shorter size in the same layout leaves data in the padding: SizeMismatchError, nothing yielded.
    for (const short of [0, 50, 99]) {
      const parts: Buffer[] = [];
      await assert.rejects(
        (async () => {
          for await (const p of decodeFile(reseal(short), fetch, { secret })) parts.push(p);
        })(),
        (e: unknown) => {
          assert.ok(e instanceof SizeMismatchError, String(e));
          assert.deepEqual(e.context, { expected: short, actual: 100 });
          return true;
        },
      );
      assert.deepEqual(parts, []);
    }
    assert.deepEqual(await decodeToBuffer(r.manifest, fetch, { secret }), bytesOf(100));
    assert.equal(await memoryFetcher(new Map())(r.manifest.shards[0]!, { index: 0, stripe: 0, position: 0 }), undefined);
  });
});
