/**
 * decodeRange (pipeline.ts): the byte ranges `GET /v1/blobs/{cid}` with `Range` and directory reads
 * serve. It must return exactly the asked bytes, fetch only the data shards that hold them, rebuild
 * a missing, short or corrupt one from its stripe (once per stripe), and refuse a range outside the
 * file. Real encoding (AES-GCM, Reed-Solomon, fragment-root CIDs), shards served from memory.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { CID } from "multiformats/cid";
import { DecryptionError, InvalidParameterError, ShardCidMismatchError } from "../../../agents/data/errors.js";
import { fragmentSpan } from "../../../agents/data/manifest.js";
import { decodeRange, encodeFile, type EncodedShard, type ShardFetcher, type ShardPosition } from "../../../agents/data/pipeline.js";

const secret = Buffer.alloc(32, 0x5d);
const K = 3;
const M = 2;
const SHARD = 256; // 228 plaintext bytes per fragment: many stripes from a few KiB
const bytesOf = (n: number, seed = 1): Buffer => {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 37 + seed * 11 + (i >> 8)) & 0xff;
  return b;
};

async function encoded(size: number) {
  const data = bytesOf(size, size);
  const byIndex: Buffer[] = [];
  const { manifest } = await encodeFile(data, { secret, k: K, m: M, shardSize: SHARD, fileId: randomBytes(32) }, (shards: readonly EncodedShard[]) => {
    for (const s of shards) byIndex[s.index] = Buffer.from(s.bytes);
  });
  return { data, manifest, byIndex };
}

/** Serves `shards` by global index, through `change` (undefined: missing), recording each request. */
function fetcherOf(shards: readonly Buffer[], calls: ShardPosition[], change: (w: ShardPosition, b: Buffer) => Buffer | undefined = (_w, b) => b): ShardFetcher {
  return async (_cid: CID, where) => {
    calls.push(where);
    return change(where, shards[where.index]!);
  };
}

async function collect(chunks: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of chunks) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

describe("decodeRange: exactly the bytes asked for, from the fragments that hold them", () => {
  it("any range equals the file's bytes there, and only the data shards overlapping it are fetched", async () => {
    const size = 40 * 228 + 100; // 41 data fragments: 14 stripes, the last one partly filled
    const { data, manifest, byIndex } = await encoded(size);
    const check = async (offset: number, length: number): Promise<void> => {
      const calls: ShardPosition[] = [];
      const got = await collect(decodeRange(manifest, fetcherOf(byIndex, calls), { secret, offset, length }));
      assert.deepEqual(got, data.subarray(offset, offset + length), `range ${offset}+${length}`);
      // The data fragments (index among data shards: stripe * k + position) whose bytes overlap it;
      // none for an empty range.
      const expected: number[] = [];
      for (let i = 0; length > 0 && i < manifest.erasure.stripes * K; i++) {
        const span = fragmentSpan(manifest, size, i);
        if (span.length > 0 && span.offset < offset + length && span.offset + span.length > offset) expected.push(Math.floor(i / K) * (K + M) + (i % K));
      }
      assert.deepEqual(
        calls.map((c) => c.index),
        expected,
        `range ${offset}+${length}: shards fetched`,
      );
      for (const c of calls) assert.deepEqual([c.stripe, c.position], [Math.floor(c.index / (K + M)), c.index % (K + M)]);
    };
    await check(0, 0);
    await check(4000, 0); // inside a fragment: still nothing fetched
    await check(0, 1);
    await check(0, size);
    await check(size - 1, 1);
    await check(size, 0);
    await check(227, 2); // across two fragments of one stripe
    await check(3 * 228 - 1, 2); // across a stripe boundary
    await check(228, 228); // exactly one fragment
    await check(5 * 228 + 3, 20 * 228); // more than one batch of 16 fragments
    await fc.assert(
      fc.asyncProperty(fc.nat(size), fc.nat(size), async (a, b) => check(Math.min(a, b), Math.abs(a - b))),
      { numRuns: 40 },
    );
  });

  it("a range outside the file is refused by name before anything is fetched", async () => {
    const { manifest, byIndex } = await encoded(1000);
    for (const [offset, length] of [
      [-1, 2],
      [0, -1],
      [999, 2],
      [1001, 0],
      [0.5, 1],
      [0, 1.5],
      [Number.MAX_SAFE_INTEGER, 2],
    ]) {
      const calls: ShardPosition[] = [];
      await assert.rejects(collect(decodeRange(manifest, fetcherOf(byIndex, calls), { secret, offset: offset!, length: length! })), (e: unknown) => {
        assert.ok(e instanceof InvalidParameterError, String(e));
        assert.equal(e.context.name, "range");
        assert.deepEqual(e.context.value, { offset, length });
        assert.equal(e.context.reason, "must lie within the file's 1000 bytes");
        return true;
      });
      assert.equal(calls.length, 0);
    }
  });
});

describe("decodeRange: missing, short and corrupt fragments", () => {
  it("a missing fragment is rebuilt from its stripe, fetched once for two fragments of it", async () => {
    const { data, manifest, byIndex } = await encoded(10 * 228);
    const calls: ShardPosition[] = [];
    // Stripe 1's data shards 5 and 6 (positions 0 and 1) are gone.
    const gone = new Set([5, 6]);
    const got = await collect(decodeRange(manifest, fetcherOf(byIndex, calls, (w, b) => (gone.has(w.index) ? undefined : b)), { secret, offset: 3 * 228, length: 2 * 228 }));
    assert.deepEqual(got, data.subarray(3 * 228, 5 * 228));
    // The two asked for, then the stripe's shards once (its other three) to rebuild both.
    const asked = calls.map((c) => c.index);
    assert.deepEqual(asked.slice(0, 2), [5, 6]);
    assert.deepEqual(new Set(asked.slice(2)).size, asked.length - 2, "each rebuilding shard fetched once");
    assert.ok(asked.slice(2).every((i) => i >= 5 && i < 10), `rebuilt from stripe 1 only: ${asked.join(",")}`);
  });

  it("a corrupt or short fragment: rebuilt and reported, or refused when strict; `verified` skips the CID check", async () => {
    const { data, manifest, byIndex } = await encoded(6 * 228);
    const flip = (w: ShardPosition, b: Buffer): Buffer => {
      if (w.index !== 1) return b;
      const bad = Buffer.from(b);
      bad[40]! ^= 1;
      return bad;
    };
    const reported: [ShardPosition, string][] = [];
    const range = { offset: 228, length: 228 }; // fragment 1 exactly
    const got = await collect(decodeRange(manifest, fetcherOf(byIndex, [], flip), { secret, ...range, onCorruptShard: (w, cid) => reported.push([w, cid.toString()]) }));
    assert.deepEqual(got, data.subarray(228, 456));
    // Reported once, although rebuilding its stripe fetches it again.
    assert.deepEqual(reported, [[{ index: 1, stripe: 0, position: 1 }, manifest.shards[1]!.toString()]]);

    const short = (w: ShardPosition, b: Buffer): Buffer => (w.index === 1 ? b.subarray(0, b.length - 8) : b);
    const again: ShardPosition[] = [];
    assert.deepEqual(await collect(decodeRange(manifest, fetcherOf(byIndex, [], short), { secret, ...range, onCorruptShard: (w) => again.push(w) })), data.subarray(228, 456));
    assert.equal(again.length, 1, "a shard of the wrong length is corrupt too");

    await assert.rejects(collect(decodeRange(manifest, fetcherOf(byIndex, [], flip), { secret, ...range, strict: true })), (e: unknown) => {
      assert.ok(e instanceof ShardCidMismatchError, String(e));
      assert.deepEqual([e.context.shardIndex, e.context.stripe, e.context.cid], [1, 0, manifest.shards[1]!.toString()]);
      return true;
    });
    // Bytes the caller verified already are not hashed again: a flipped byte then fails decryption.
    await assert.rejects(collect(decodeRange(manifest, fetcherOf(byIndex, [], flip), { secret, ...range, verified: true })), DecryptionError);
  });
});
