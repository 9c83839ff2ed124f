import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { encodeParity, encodeShards, reconstructShards } from "../../../agents/data/erasure.js";
import { InvalidParameterError, NotEnoughShardsError, ShardSizeError } from "../../../agents/data/errors.js";

/** All subsets of {0..n-1} with at most `max` elements. */
function subsets(n: number, max: number): number[][] {
  const out: number[][] = [];
  for (let mask = 0; mask < 1 << n; mask++) {
    const s = Array.from({ length: n }, (_, i) => i).filter((i) => mask & (1 << i));
    if (s.length <= max) out.push(s);
  }
  return out;
}

describe("erasure: Reed-Solomon k + m", () => {
  it("k=4, m=2: every way of losing up to 2 shards rebuilds all 6", async () => {
    const data = Array.from({ length: 4 }, () => randomBytes(4096));
    const parity = await encodeShards({ k: 4, m: 2 }, data);
    const all = [...data, ...parity];
    for (const lost of subsets(6, 2)) {
      const given = all.map((s, i) => (lost.includes(i) ? undefined : s));
      const rebuilt = await reconstructShards({ k: 4, m: 2 }, given);
      assert.deepEqual(rebuilt, all, `lost ${lost}`);
      const dataOnly = await reconstructShards({ k: 4, m: 2 }, given, { only: "data" });
      assert.deepEqual(dataOnly, data, `lost ${lost}, data only`);
    }
  });

  it("random k, m, shard size and losses (property)", async () => {
    await fc.assert(
      fc.asyncProperty(
        // The shard bytes come from fast-check too, so a failure replays from its seed.
        fc
          .tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 64 }))
          .chain(([k, m, words]) =>
            fc.tuple(fc.constant(k), fc.constant(m), fc.array(fc.uint8Array({ minLength: words * 8, maxLength: words * 8 }), { minLength: k, maxLength: k })),
          ),
        fc.array(fc.nat(), { maxLength: 6 }),
        async ([k, m, shards], losses) => {
          const data = shards.map((s) => Buffer.from(s));
          const parity = await encodeShards({ k, m }, data);
          assert.equal(parity.length, m);
          const all = [...data, ...parity];
          const lost = [...new Set(losses.map((x) => x % (k + m)))].slice(0, m);
          const rebuilt = await reconstructShards(
            { k, m },
            all.map((s, i) => (lost.includes(i) ? undefined : s)),
          );
          assert.deepEqual(rebuilt, all);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("fewer than k shards is NotEnoughShardsError with context", async () => {
    const data = Array.from({ length: 3 }, () => randomBytes(64));
    const parity = await encodeShards({ k: 3, m: 2 }, data);
    const given = [undefined, undefined, data[2], undefined, parity[1]];
    await assert.rejects(reconstructShards({ k: 3, m: 2 }, given, { stripe: 7 }), (e: unknown) => {
      assert.ok(e instanceof NotEnoughShardsError);
      assert.equal(e.code, "ERR_NOT_ENOUGH_SHARDS");
      assert.deepEqual(e.context, { stripe: 7, needed: 3, available: 2, missing: [0, 1, 3], corrupt: [] });
      return true;
    });
  });

  it("validates parameters and shard sizes", async () => {
    await assert.rejects(encodeShards({ k: 0, m: 1 }, []), InvalidParameterError);
    await assert.rejects(encodeShards({ k: 25, m: 1 }, []), InvalidParameterError);
    await assert.rejects(encodeShards({ k: 2, m: 7 }, [Buffer.alloc(8), Buffer.alloc(8)]), InvalidParameterError);
    await assert.rejects(encodeShards({ k: 2, m: 1 }, [Buffer.alloc(12), Buffer.alloc(12)]), InvalidParameterError);
    await assert.rejects(encodeShards({ k: 2, m: 1 }, [Buffer.alloc(8), Buffer.alloc(16)]), ShardSizeError);
    await assert.rejects(encodeParity({ k: 2, m: 1 }, Buffer.alloc(8), 8), InvalidParameterError);
  });
});
