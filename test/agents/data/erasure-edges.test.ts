import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  alignShardSize,
  checkErasureParams,
  ERASURE_ALG,
  checkShardSize,
  encodeParity,
  encodeShards,
  MAX_DATA_SHARDS,
  MAX_PARITY_SHARDS,
  reconstructShards,
} from "../../../agents/data/erasure.js";
import { InvalidParameterError, NotEnoughShardsError, ShardSizeError } from "../../../agents/data/errors.js";

/** Asserts an InvalidParameterError about `name` whose reason contains `reason`. */
function invalid(name: string, reason: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof InvalidParameterError, String(e));
    assert.equal(e.context.name, name);
    assert.ok(e.context.reason.includes(reason), e.context.reason);
    return true;
  };
}

const bytes = (n: number, fill: number): Buffer => Buffer.alloc(n, fill);

describe("erasure: parameter boundaries and error paths", () => {
  it("checkErasureParams accepts exactly 1 <= k <= 24 and 0 <= m <= 6 (integers)", () => {
    for (const k of [1, MAX_DATA_SHARDS]) for (const m of [0, MAX_PARITY_SHARDS]) checkErasureParams({ k, m });
    for (const k of [0, -1, MAX_DATA_SHARDS + 1, 1.5, Number.NaN]) assert.throws(() => checkErasureParams({ k, m: 1 }), invalid("k", "must be in [1, 24]"));
    for (const m of [-1, MAX_PARITY_SHARDS + 1, 0.5, Number.NaN]) assert.throws(() => checkErasureParams({ k: 2, m }), invalid("m", "must be in [0, 6]"));
  });

  it("checkShardSize accepts positive multiples of 8 up to 2^32 - 1", () => {
    for (const s of [8, 16, 1 << 20, 0xffffffff - 7]) checkShardSize(s);
    for (const s of [0, -8, 4, 12, 8.5, 0xffffffff + 1, 2 ** 33]) assert.throws(() => checkShardSize(s), invalid("shardSize", "positive multiple of 8"));
  });

  it("names the code manifests record, and every entry point checks k and m first", async () => {
    assert.equal(ERASURE_ALG, "reed-solomon-cauchy-gf2^8/ronomon");
    await assert.rejects(encodeShards({ k: 0, m: 1 }, []), invalid("k", "must be in [1, 24]"));
    await assert.rejects(reconstructShards({ k: 0, m: 1 }, [bytes(8, 1)]), invalid("k", "must be in [1, 24]"));
    await assert.rejects(reconstructShards({ k: 1, m: -1 }, []), invalid("m", "must be in [0, 6]"));
  });

  it("alignShardSize rounds up to a multiple of 8, at least 8", () => {
    assert.deepEqual([0, 1, 7, 8, 9, 15, 16, 17, 1000].map(alignShardSize), [8, 8, 8, 8, 16, 16, 16, 24, 1000]);
  });

  it("encodeParity checks the data and parity buffers and writes into the given parity buffer", async () => {
    const data = Buffer.concat([bytes(8, 1), bytes(8, 2)]);
    await assert.rejects(encodeParity({ k: 2, m: 1 }, data.subarray(0, 15), 8), invalid("data", "needs 2 shards of 8 bytes"));
    await assert.rejects(encodeParity({ k: 2, m: 2 }, data, 8, Buffer.alloc(15)), invalid("parity", "needs 2 shards of 8 bytes"));
    await assert.rejects(encodeParity({ k: 2, m: 1 }, data, 12), invalid("shardSize", "multiple"));
    await assert.rejects(encodeParity({ k: 0, m: 1 }, data, 8), invalid("k", "must be"));
    const parity = Buffer.alloc(24, 0xee);
    const out = await encodeParity({ k: 2, m: 2 }, data, 8, parity);
    assert.equal(out, parity);
    assert.equal(parity[16], 0xee, "only m * shardSize bytes are written");
    const fresh = await encodeParity({ k: 2, m: 2 }, data, 8);
    assert.equal(fresh.length, 16);
    assert.deepEqual(parity.subarray(0, 16), fresh);
    assert.deepEqual(fresh, Buffer.concat(await encodeShards({ k: 2, m: 2 }, [bytes(8, 1), bytes(8, 2)])));
    // m = 0: nothing to compute; the (possibly empty) parity buffer comes back untouched.
    const none = await encodeParity({ k: 2, m: 0 }, data, 8, Buffer.alloc(4, 0xaa));
    assert.deepEqual(none, Buffer.alloc(4, 0xaa));
    assert.equal((await encodeParity({ k: 2, m: 0 }, data, 8)).length, 0);
  });

  it("parity depends on every data shard, and each data byte position", async () => {
    const base = [bytes(16, 3), bytes(16, 5), bytes(16, 7)];
    const parity = await encodeShards({ k: 3, m: 2 }, base);
    for (let i = 0; i < 3; i++) {
      const changed = base.map((b) => Buffer.from(b));
      changed[i]![15] ^= 1;
      const other = await encodeShards({ k: 3, m: 2 }, changed);
      assert.notDeepEqual(other[0], parity[0], `data shard ${i}`);
      assert.notDeepEqual(other[1], parity[1], `data shard ${i}`);
    }
  });

  it("encodeShards wants exactly k equal, aligned shards", async () => {
    await assert.rejects(encodeShards({ k: 3, m: 1 }, [bytes(8, 1), bytes(8, 2)]), invalid("dataShards", "need exactly k = 3"));
    await assert.rejects(encodeShards({ k: 2, m: 1 }, [bytes(8, 1), bytes(16, 2)]), (e: unknown) => {
      assert.ok(e instanceof ShardSizeError);
      assert.deepEqual(e.context, { shardIndex: 1, expected: 8, actual: 16 });
      return true;
    });
    const parity = await encodeShards({ k: 2, m: 3 }, [new Uint8Array(8).fill(1), new Uint8Array(8).fill(2)]);
    assert.equal(parity.length, 3);
    parity.forEach((p) => assert.equal(p.length, 8));
  });

  it("reconstructShards validates the stripe shape and names missing and corrupt shards", async () => {
    await assert.rejects(reconstructShards({ k: 2, m: 1 }, [bytes(8, 1), bytes(8, 2)]), invalid("shards", "need k + m = 3 entries"));
    await assert.rejects(reconstructShards({ k: 2, m: 1 }, [bytes(8, 1), bytes(16, 2), undefined]), ShardSizeError);
    await assert.rejects(reconstructShards({ k: 2, m: 1 }, [bytes(12, 1), bytes(12, 2), undefined]), invalid("shardSize", "multiple"));
    await assert.rejects(reconstructShards({ k: 1, m: 1 }, [undefined, undefined]), (e: unknown) => {
      assert.ok(e instanceof NotEnoughShardsError);
      assert.deepEqual(e.context, { stripe: 0, needed: 1, available: 0, missing: [0, 1], corrupt: [] });
      return true;
    });
    await assert.rejects(reconstructShards({ k: 2, m: 1 }, [undefined, bytes(8, 1), undefined], { stripe: 4, corrupt: [2, 0] }), (e: unknown) => {
      assert.ok(e instanceof NotEnoughShardsError);
      assert.deepEqual(e.context, { stripe: 4, needed: 2, available: 1, missing: [0, 2], corrupt: [2, 0] });
      return true;
    });
  });

  it("reconstructShards returns present shards as given and rebuilds only what is asked", async () => {
    const data = [bytes(8, 1), bytes(8, 2), bytes(8, 3)];
    const parity = await encodeShards({ k: 3, m: 2 }, data);
    const all = [...data, ...parity];
    // Nothing missing: the shards themselves, all of them or the data ones.
    const same = await reconstructShards({ k: 3, m: 2 }, all);
    same.forEach((s, i) => assert.equal(s, all[i]));
    const dataOnly = await reconstructShards({ k: 3, m: 2 }, all, { only: "data" });
    assert.equal(dataOnly.length, 3);
    dataOnly.forEach((s, i) => assert.equal(s, data[i]));
    // Only parity missing and only data asked: no rebuild, k shards back.
    const noParity = await reconstructShards({ k: 3, m: 2 }, [...data, undefined, undefined], { only: "data" });
    assert.equal(noParity.length, 3);
    noParity.forEach((s, i) => assert.equal(s, data[i]));
    // A data shard and a parity shard missing: "all" rebuilds both, "data" only the data one.
    const given = [data[0], undefined, data[2], parity[0], undefined];
    const rebuilt = await reconstructShards({ k: 3, m: 2 }, given);
    assert.deepEqual(rebuilt, all);
    assert.equal(rebuilt[0], data[0]);
    assert.equal(rebuilt[3], parity[0]);
    const rebuiltData = await reconstructShards({ k: 3, m: 2 }, given, { only: "data" });
    assert.deepEqual(rebuiltData, data);
    // Uint8Array (not Buffer) shards come back as Buffers over the same memory.
    const plain = all.map((s) => new Uint8Array(s.buffer.slice(s.byteOffset, s.byteOffset + s.byteLength)));
    const out = await reconstructShards({ k: 3, m: 2 }, [plain[0], plain[1], undefined, plain[3], plain[4]]);
    assert.ok(out.every((s) => Buffer.isBuffer(s)));
    assert.deepEqual(out, all);
    assert.equal(out[0]!.buffer, plain[0]!.buffer);
  });

  it("m = 0: a full stripe comes back; a missing shard cannot be rebuilt", async () => {
    const data = [bytes(8, 4), bytes(8, 6)];
    assert.deepEqual(await encodeShards({ k: 2, m: 0 }, data), []);
    const out = await reconstructShards({ k: 2, m: 0 }, data);
    out.forEach((s, i) => assert.equal(s, data[i]));
    await assert.rejects(reconstructShards({ k: 2, m: 0 }, [data[0], undefined]), NotEnoughShardsError);
  });

  it("parity shards missing with every data shard present are rebuilt byte for byte", async () => {
    const data = [bytes(24, 9), bytes(24, 10), bytes(24, 11), bytes(24, 12)];
    const parity = await encodeShards({ k: 4, m: 3 }, data);
    const rebuilt = await reconstructShards({ k: 4, m: 3 }, [...data, undefined, parity[1], undefined]);
    assert.deepEqual(rebuilt.slice(4), parity);
  });
});
