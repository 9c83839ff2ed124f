import assert from "node:assert/strict";
import { createCipheriv, createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { CID } from "multiformats/cid";
import { fragmentCid } from "../../../agents/data/cid.js";
import { ENCRYPTION_OVERHEAD, manifestMac } from "../../../agents/data/crypto.js";
import {
  DecryptionError,
  ManifestAuthError,
  ManifestCidMismatchError,
  ManifestSealError,
  NotEnoughShardsError,
  ShardCidMismatchError,
} from "../../../agents/data/errors.js";
import { bucketShardSize, decodeManifest, encodeManifest, manifestMacBody, type Manifest } from "../../../agents/data/manifest.js";
import { fragmentRoot } from "../../../agents/data/merkle.js";
import {
  decodeFile,
  decodeToBuffer,
  encodeFile,
  fetchStripe,
  openManifest,
  type EncodeOptions,
  type ShardFetcher,
  type ShardPosition,
} from "../../../agents/data/pipeline.js";

const secret = Buffer.alloc(32, 0x5a);
/** `npm run mutate` (scripts/mutate.sh) runs this file once per mutant: smaller sizes, same paths. */
const MUTATING = process.env.MURI_MUTATION === "1";
const FRAGMENT_PLAIN = (1 << 20) - ENCRYPTION_OVERHEAD;

/** Deterministic pseudo-random bytes: the AES-256-CTR keystream of a seed (fast, seeded). */
function prng(seed: number): (n: number) => Buffer {
  const key = createHash("sha256").update(`muri-test-${seed}`).digest();
  const ctr = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  return (n) => ctr.update(Buffer.alloc(n));
}

/** Shards kept by global index. */
async function encodeIndexed(data: Uint8Array | AsyncIterable<Uint8Array>, options: EncodeOptions) {
  const shards: Buffer[] = [];
  const result = await encodeFile(data, options, (stripe) => {
    for (const s of stripe) {
      assert.ok(s.cid.equals(fragmentCid(s.bytes)), "shard CID");
      shards[s.index] = s.bytes;
    }
  });
  return { ...result, shards };
}

function fetcher(shards: Buffer[], drop: (where: ShardPosition) => boolean = () => false, calls?: ShardPosition[]): ShardFetcher {
  return async (_cid: CID, where) => {
    calls?.push(where);
    return drop(where) ? undefined : shards[where.index];
  };
}

/** Decodes, returning what was yielded before any error, and the error. */
async function decodeCollect(manifest: Manifest, fetch: ShardFetcher, opts: { strict?: boolean; onCorruptShard?: (w: ShardPosition) => void } = {}) {
  const parts: Buffer[] = [];
  try {
    for await (const p of decodeFile(manifest, fetch, { secret, ...opts })) parts.push(p);
    return { bytes: Buffer.concat(parts), error: undefined };
  } catch (error) {
    return { bytes: Buffer.concat(parts), error };
  }
}

/** Drops up to m positions of each stripe, chosen from `picks`. */
function dropper(manifest: Manifest, picks: number[]): (where: ShardPosition) => boolean {
  const { k, m } = manifest.erasure;
  const w = k + m;
  const lost = new Map<number, Set<number>>();
  for (let s = 0; s < manifest.erasure.stripes; s++) {
    const set = new Set<number>();
    for (let j = 0; j < m; j++) set.add((picks[(s * m + j) % Math.max(1, picks.length)] ?? s + j) % w);
    lost.set(s, set);
  }
  return (where) => lost.get(where.stripe)!.has(where.position);
}

describe("pipeline: file -> fragments -> encrypt -> shards -> drop m -> rebuild -> decrypt", () => {
  it("round trips random sizes, k, m and shard sizes with any m shards per stripe lost (property)", async () => {
    const size = fc.oneof(
      fc.integer({ min: 0, max: 12_000 }),
      fc.tuple(fc.integer({ min: 1, max: 12 }), fc.integer({ min: -1, max: 1 })).map(([n, d]) => Math.max(0, n * (256 - ENCRYPTION_OVERHEAD) + d)),
    );
    await fc.assert(
      fc.asyncProperty(
        size,
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 0, max: 3 }),
        fc.constantFrom(32, 40, 256, 1024, 4096, 16_384),
        fc.array(fc.nat(), { maxLength: 12, size: "max" }),
        fc.integer(),
        async (n, k, m, shardSize, picks, seed) => {
          const data = prng(seed)(n);
          const r = await encodeIndexed(data, { secret, k, m, shardSize });
          assert.deepEqual(encodeManifest(decodeManifest(r.manifestBytes, r.manifestCid)).bytes, r.manifestBytes);
          assert.equal(r.shards.length, r.manifest.shards.length);
          r.shards.forEach((s, i) => assert.equal(fragmentRoot(s).toString("hex"), r.manifest.roots[i]));
          const out = await decodeToBuffer(r.manifest, fetcher(r.shards, dropper(r.manifest, picks)), { secret });
          assert.deepEqual(out, data);
          assert.equal(openManifest(r.manifest, secret).fileSize, n);
        },
      ),
      { numRuns: MUTATING ? 30 : 120 },
    );
  });

  it("round trips at the padding edges: empty, bucket boundaries, exactly one stripe, one byte more (1 MiB shards, k=4, m=2)", async () => {
    const gen = prng(11);
    const F = FRAGMENT_PLAIN;
    // The last stripe's shards are 4 KiB up to 4·(4096 - 28) bytes in it, then 8 KiB, ... up to 1 MiB.
    const edge = (shard: number) => 4 * (shard - 28);
    const sizes = [0, 1, edge(4096), edge(4096) + 1, edge(8192), edge(8192) + 1, edge(1 << 19), edge(1 << 19) + 1, 4 * F - 1, 4 * F, 4 * F + 1, 4 * F + edge(4096) + 1];
    const expected = [4096, 4096, 4096, 8192, 8192, 16_384, 1 << 19, 1 << 20, 1 << 20, 1 << 20, 4096, 8192];
    for (const [i, n] of (MUTATING ? sizes.slice(0, 6) : sizes).entries()) {
      const data = gen(n);
      const r = await encodeIndexed(data, { secret });
      const { stripes, lastShardSize } = r.manifest.erasure;
      assert.equal(stripes, Math.max(1, Math.ceil(n / (4 * F))), `${n}: stripes`);
      assert.equal(lastShardSize, expected[i], `${n}: last shard size`);
      assert.equal(lastShardSize, bucketShardSize(Math.ceil((n - (stripes - 1) * 4 * F) / 4) + 28, 1 << 20));
      r.shards.forEach((s, index) => assert.equal(s.length, Math.floor(index / 6) === stripes - 1 ? lastShardSize : 1 << 20));
      assert.equal(openManifest(r.manifest, secret).fileSize, n);
      for (const lost of [[], [0, 1], [2, 5]]) {
        const out = await decodeToBuffer(r.manifest, fetcher(r.shards, (w) => lost.includes(w.position)), { secret });
        assert.ok(out.equals(data), `${n} bytes, lost ${lost}`);
      }
    }
  });

  it("round trips 0, 1, F-1, F, F+1, 4F-1, 4F, 4F+1 bytes at the default 1 MiB shards (k=4, m=2)", async () => {
    const gen = prng(1);
    for (const n of [0, 1, FRAGMENT_PLAIN - 1, FRAGMENT_PLAIN, FRAGMENT_PLAIN + 1, 4 * FRAGMENT_PLAIN - 1, 4 * FRAGMENT_PLAIN, 4 * FRAGMENT_PLAIN + 1]) {
      const data = gen(n);
      const r = await encodeIndexed(data, { secret });
      assert.equal(r.manifest.erasure.k, 4);
      assert.equal(r.manifest.erasure.m, 2);
      assert.ok(r.shards.every((s) => s.length <= 1 << 20));
      for (const lost of [[], [0, 1], [2, 5], [4, 5]]) {
        const out = await decodeToBuffer(r.manifest, fetcher(r.shards, (w) => lost.includes(w.position)), { secret });
        assert.ok(out.equals(data), `${n} bytes, lost ${lost}`);
      }
    }
  });

  it("with reuseBuffers, shards copied in the sink and plaintext copied per fragment still round trip", async () => {
    const data = prng(9)(50_000);
    const copies: Buffer[] = [];
    const seen = new Set<ArrayBufferLike>();
    const r = await encodeFile(data, { secret, k: 3, m: 2, shardSize: 1024, reuseBuffers: true }, async (stripe) => {
      for (const s of stripe) {
        seen.add(s.bytes.buffer);
        copies[s.index] = Buffer.from(s.bytes);
      }
      await new Promise((resolve) => setImmediate(resolve));
    });
    assert.ok(seen.size < r.manifest.erasure.stripes * 2, "stripe buffers are recycled");
    copies.forEach((c, i) => assert.equal(fragmentRoot(c).toString("hex"), r.manifest.roots[i]));
    const parts: Buffer[] = [];
    for await (const p of decodeFile(r.manifest, fetcher(copies, (w) => w.position === 1), { secret, reuseBuffers: true })) parts.push(Buffer.from(p));
    assert.deepEqual(Buffer.concat(parts), data);
  });

  it("repair: fetchStripe({ all: true }) rebuilds every lost shard byte for byte", async () => {
    const data = prng(10)(30_000);
    const r = await encodeIndexed(data, { secret, k: 4, m: 2, shardSize: 2048 });
    for (let stripe = 0; stripe < r.manifest.erasure.stripes; stripe++) {
      const lost = [stripe % 6, (stripe + 4) % 6];
      const all = await fetchStripe(r.manifest, stripe, fetcher(r.shards, (w) => lost.includes(w.position)), { all: true });
      assert.equal(all.length, 6);
      all.forEach((shard, position) => {
        const index = stripe * 6 + position;
        assert.ok(shard.equals(r.shards[index]!), `stripe ${stripe} shard ${position}`);
        assert.ok(r.manifest.shards[index]!.equals(fragmentCid(shard)));
      });
    }
  });

  it("fetches only the k data shards when they are intact", async () => {
    const data = prng(2)(5000);
    const r = await encodeIndexed(data, { secret, k: 3, m: 2, shardSize: 1024 });
    const calls: ShardPosition[] = [];
    assert.deepEqual(await decodeToBuffer(r.manifest, fetcher(r.shards, undefined, calls), { secret }), data);
    assert.ok(calls.every((c) => c.position < 3));
  });
});

describe("pipeline: corruption is a named error, never wrong bytes", () => {
  const isPrefix = (bytes: Buffer, data: Buffer) => data.subarray(0, bytes.length).equals(bytes);

  it("a flipped byte in any shard is caught by its CID: rebuilt around (or ShardCidMismatchError when strict) (property)", async () => {
    const data = prng(3)(20_000);
    const r = await encodeIndexed(data, { secret, k: 4, m: 2, shardSize: 2048 });
    await fc.assert(
      fc.asyncProperty(fc.nat(r.shards.length - 1), fc.nat(), fc.integer({ min: 1, max: 255 }), async (index, pick, xor) => {
        const shards = r.shards.map((s) => s);
        const bad = Buffer.from(shards[index]!);
        bad[pick % bad.length]! ^= xor;
        shards[index] = bad;
        const reported: ShardPosition[] = [];
        const lenient = await decodeCollect(r.manifest, fetcher(shards), { onCorruptShard: (w) => reported.push(w) });
        assert.equal(lenient.error, undefined);
        assert.ok(lenient.bytes.equals(data));
        // Parity shards are only fetched when a data shard is missing or corrupt.
        if (index % 6 < 4) assert.deepEqual(reported.map((w) => w.index), [index]);
        const strict = await decodeCollect(r.manifest, fetcher(shards), { strict: true });
        if (index % 6 < 4) {
          assert.ok(strict.error instanceof ShardCidMismatchError, String(strict.error));
          assert.equal(strict.error.code, "ERR_SHARD_CID_MISMATCH");
          assert.equal(strict.error.context.shardIndex, index);
        } else {
          assert.ok(strict.bytes.equals(data));
        }
        assert.ok(isPrefix(strict.bytes, data));
      }),
      { numRuns: 60 },
    );
  });

  it("more than m bad shards in a stripe is NotEnoughShardsError listing them", async () => {
    const data = prng(4)(20_000);
    const r = await encodeIndexed(data, { secret, k: 4, m: 2, shardSize: 2048 });
    const shards = r.shards.map((s) => s);
    for (const i of [6, 8]) {
      const bad = Buffer.from(shards[i]!);
      bad[0]! ^= 1;
      shards[i] = bad;
    }
    const res = await decodeCollect(r.manifest, fetcher(shards, (w) => w.index === 11));
    assert.ok(res.error instanceof NotEnoughShardsError, String(res.error));
    assert.deepEqual(res.error.context, { stripe: 1, needed: 4, available: 3, missing: [5], corrupt: [0, 2] });
    assert.ok(isPrefix(res.bytes, data));
    assert.equal(res.bytes.length, 4 * (2048 - ENCRYPTION_OVERHEAD), "stripe 0 decoded, nothing from stripe 1");
  });

  it("a wrong-length shard counts as corrupt", async () => {
    const data = prng(5)(3000);
    const r = await encodeIndexed(data, { secret, k: 2, m: 1, shardSize: 1024 });
    const shards = r.shards.map((s, i) => (i === 1 ? Buffer.concat([s, Buffer.alloc(8)]) : s));
    const strict = await decodeCollect(r.manifest, fetcher(shards), { strict: true });
    assert.ok(strict.error instanceof ShardCidMismatchError);
    assert.ok((await decodeCollect(r.manifest, fetcher(shards))).bytes.equals(data));
  });

  it("a shard forged together with a manifest naming it: ManifestAuthError; re-sealed with the secret (CIDs match, ciphertext wrong): DecryptionError", async () => {
    const data = prng(6)(10_000);
    const r = await encodeIndexed(data, { secret, k: 3, m: 1, shardSize: 1024 });
    for (const [index, offset] of [
      [0, 0],
      [1, 500],
      [4, 1023 - 8],
      [5, 12],
    ] as const) {
      const shards = r.shards.map((s) => s);
      const bad = Buffer.from(shards[index]!);
      bad[offset]! ^= 0x40;
      shards[index] = bad;
      const forged: Manifest = {
        ...r.manifest,
        shards: r.manifest.shards.map((c, i) => (i === index ? fragmentCid(bad) : c)),
        roots: r.manifest.roots.map((x, i) => (i === index ? fragmentRoot(bad).toString("hex") : x)),
      };
      // Whoever forges the shard cannot make the manifest's MAC: nothing is decrypted.
      const unsealed = await decodeCollect(decodeManifest(encodeManifest(forged).bytes), fetcher(shards));
      assert.ok(unsealed.error instanceof ManifestAuthError, `shard ${index}: ${String(unsealed.error)}`);
      assert.equal(unsealed.bytes.length, 0);
      // With the MAC made under the secret, the AES-GCM tag still refuses the forged ciphertext.
      const mac = manifestMac(secret, Buffer.from(forged.encryption.fileId, "hex"), manifestMacBody(forged));
      const resealed: Manifest = { ...forged, encryption: { ...forged.encryption, mac } };
      const res = await decodeCollect(decodeManifest(encodeManifest(resealed).bytes), fetcher(shards));
      assert.ok(res.error instanceof DecryptionError, `shard ${index}: ${String(res.error)}`);
      assert.equal(res.error.code, "ERR_DECRYPT_AUTH");
      const fragment = Math.floor(index / 4) * 3 + (index % 4);
      assert.equal(res.error.context.fragmentIndex, fragment);
      assert.ok(isPrefix(res.bytes, data));
    }
  });

  it("a corrupted manifest is ManifestCidMismatchError", async () => {
    const r = await encodeIndexed(prng(7)(100), { secret, shardSize: 256 });
    for (let i = 0; i < r.manifestBytes.length; i += 7) {
      const bad = Buffer.from(r.manifestBytes);
      bad[i]! ^= 0x01;
      assert.throws(() => decodeManifest(bad, r.manifestCid), ManifestCidMismatchError);
    }
  });

  it("the wrong secret is ManifestSealError (a ManifestAuthError) before any fragment is fetched", async () => {
    const r = await encodeIndexed(prng(8)(5000), { secret, k: 2, m: 1, shardSize: 1024 });
    let fetched = 0;
    const counting: ShardFetcher = async (cid, where) => {
      fetched++;
      return fetcher(r.shards)(cid, where);
    };
    await assert.rejects(
      decodeToBuffer(r.manifest, counting, { secret: Buffer.alloc(32, 1) }),
      (e: unknown) => e instanceof ManifestSealError && e instanceof ManifestAuthError && e.context.fileId === r.manifest.encryption.fileId,
    );
    assert.equal(fetched, 0);
  });

  it("a manifest truncated to a prefix of the stripes, or with a stripe spliced from another file, is ManifestAuthError", async () => {
    // Shard 1 MiB - 28 plain per fragment is too big here: 1024-byte shards, k=2, m=1, 6 stripes.
    const a = await encodeIndexed(prng(9)(6 * 2 * (1024 - 28)), { secret, k: 2, m: 1, shardSize: 1024 });
    const b = await encodeIndexed(prng(10)(6 * 2 * (1024 - 28)), { secret, k: 2, m: 1, shardSize: 1024 });
    assert.equal(a.manifest.erasure.stripes, 6);
    // What a node that saw a's manifest could build: a valid manifest of its first 3 stripes (it
    // keeps a's sealed size, which opens, but cannot make the MAC).
    const truncated: Manifest = {
      ...a.manifest,
      erasure: { ...a.manifest.erasure, stripes: 3, lastShardSize: 1024 },
      shards: a.manifest.shards.slice(0, 9),
      roots: a.manifest.roots.slice(0, 9),
    };
    const decoded = decodeManifest(encodeManifest(truncated).bytes); // valid as a manifest
    await assert.rejects(decodeToBuffer(decoded, fetcher(a.shards), { secret }), (e: unknown) => e instanceof ManifestAuthError && !(e instanceof ManifestSealError));
    // Stripe 2 of b in place of stripe 2 of a (same secret, same sizes).
    const spliced: Manifest = {
      ...a.manifest,
      shards: a.manifest.shards.map((c, i) => (i >= 6 && i < 9 ? b.manifest.shards[i]! : c)),
      roots: a.manifest.roots.map((r, i) => (i >= 6 && i < 9 ? b.manifest.roots[i]! : r)),
    };
    const both = [...a.shards];
    for (let i = 6; i < 9; i++) both[i] = b.shards[i]!;
    await assert.rejects(decodeToBuffer(spliced, fetcher(both), { secret }), (e: unknown) => e instanceof ManifestAuthError && !(e instanceof ManifestSealError));
    // b's sealed size in a's manifest does not open (another file id's key).
    await assert.rejects(decodeToBuffer({ ...a.manifest, sealedSize: b.manifest.sealedSize }, fetcher(a.shards), { secret }), ManifestSealError);
    assert.deepEqual(await decodeToBuffer(a.manifest, fetcher(a.shards), { secret }), prng(9)(6 * 2 * (1024 - 28)));
  });
});

describe("pipeline: large streamed file", () => {
  it("300 MiB (24 MiB under mutation) from a seeded PRNG, streamed in and out, 2 of 6 shards lost per stripe, same SHA-256", async () => {
    const total = (MUTATING ? 24 : 300) * 1024 * 1024;
    const piece = 4 * 1024 * 1024;
    const gen = prng(300);
    const inHash = createHash("sha256");
    async function* source(): AsyncGenerator<Buffer> {
      for (let offset = 0; offset < total; offset += piece) {
        const bytes = gen(Math.min(piece, total - offset));
        inHash.update(bytes);
        yield bytes;
      }
    }
    const r = await encodeIndexed(source(), { secret, k: 4, m: 2 });
    assert.equal(openManifest(r.manifest, secret).fileSize, total);
    assert.equal(r.manifest.erasure.stripes, Math.ceil(total / (4 * FRAGMENT_PLAIN)));
    const lost = (w: ShardPosition) => w.position === w.stripe % 6 || w.position === (w.stripe * 5 + 3) % 6;
    const outHash = createHash("sha256");
    let produced = 0;
    for await (const part of decodeFile(r.manifest, fetcher(r.shards, lost), { secret })) {
      outHash.update(part);
      produced += part.length;
    }
    assert.equal(produced, total);
    assert.equal(outHash.digest("hex"), inHash.digest("hex"));
  });
});
