import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { CID } from "multiformats/cid";
import { fragmentCid } from "../../../agents/data/cid.js";
import { ManifestAuthError, ManifestCidMismatchError, ManifestError, ManifestSealError } from "../../../agents/data/errors.js";
import { bucketShardSize, DAG_JSON_CODEC, decodeManifest, encodeManifest, layoutFor, MANIFEST_VERSION, type Manifest } from "../../../agents/data/manifest.js";
import { decodeToBuffer, encodeToMemory, memoryFetcher, openManifest } from "../../../agents/data/pipeline.js";

const secret = Buffer.alloc(32, 5);

async function sample(size = 3000): Promise<{ manifest: Manifest; bytes: Buffer; cid: CID }> {
  const data = Buffer.alloc(size, 0x41);
  const r = await encodeToMemory(data, { secret, k: 3, m: 2, shardSize: 512 });
  return { manifest: r.manifest, bytes: r.manifestBytes, cid: r.manifestCid };
}

describe("manifest: canonical DAG-JSON with its own CID", () => {
  it("round trips; the CID is CIDv1 dag-json sha2-256 of the bytes", async () => {
    const { manifest, bytes, cid } = await sample();
    assert.equal(cid.code, DAG_JSON_CODEC);
    assert.equal(cid.version, 1);
    const decoded = decodeManifest(bytes, cid);
    assert.deepEqual(encodeManifest(decoded).bytes, bytes);
    assert.equal(openManifest(decoded, secret).fileSize, 3000);
    assert.equal(decoded.shards.length, manifest.erasure.stripes * 5);
    assert.deepEqual(decodeManifest(bytes, cid.toString()).shards.map(String), manifest.shards.map(String));
    const text = bytes.toString("utf8");
    assert.ok(!/\s/.test(text), "no whitespace");
    assert.ok(text.startsWith('{"encryption":{"alg":'), "keys sorted");
    assert.ok(text.includes(`{"/":"${manifest.shards[0]!.toString()}"}`), "links as {\"/\": cid}");
    assert.ok(!text.includes(secret.toString("hex")), "never the secret");
  });

  it("any flipped byte gives ManifestError (CID mismatch with the CID, invalid without) (property)", async () => {
    const { bytes, cid } = await sample();
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (pick, xor) => {
        const bad = Buffer.from(bytes);
        bad[pick % bad.length]! ^= xor;
        assert.throws(() => decodeManifest(bad, cid), (e: unknown) => e instanceof ManifestCidMismatchError && e.code === "ERR_MANIFEST_CID_MISMATCH");
        let decoded: Manifest | undefined;
        try {
          decoded = decodeManifest(bad);
        } catch (e) {
          assert.ok(e instanceof ManifestError, String(e));
        }
        // A flip that still parses must at least change the content (it is never silently the same manifest).
        if (decoded !== undefined) assert.notDeepEqual(encodeManifest(decoded).bytes, bytes);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects non-canonical, inconsistent and unknown content", async () => {
    const { manifest, bytes } = await sample();
    const reason = (fn: () => unknown): string => {
      try {
        fn();
      } catch (e) {
        assert.ok(e instanceof ManifestError, String(e));
        return e.message;
      }
      assert.fail("expected ManifestError");
    };
    const parsed = JSON.parse(bytes.toString("utf8"));
    reason(() => decodeManifest(Buffer.from(JSON.stringify(parsed, null, 1))));
    reason(() => decodeManifest(Buffer.from("not json")));
    reason(() => decodeManifest(Buffer.from([0xff, 0xfe])));
    reason(() => encodeManifest({ ...manifest, sealedSize: manifest.sealedSize.slice(2) }));
    reason(() => encodeManifest({ ...manifest, erasure: { ...manifest.erasure, stripes: 0 } }));
    reason(() => encodeManifest({ ...manifest, shards: manifest.shards.slice(1) }));
    reason(() => encodeManifest({ ...manifest, roots: manifest.roots.map((r) => r.toUpperCase()) }));
    reason(() => encodeManifest({ ...manifest, erasure: { ...manifest.erasure, k: 4 } }));
    reason(() => encodeManifest({ ...manifest, erasure: { ...manifest.erasure, lastShardSize: 8 } }));
    reason(() => encodeManifest({ ...manifest, encryption: { ...manifest.encryption, fileId: "00" } }));
    reason(() => encodeManifest({ ...manifest, encryption: { ...manifest.encryption, alg: "chacha20" } }));
    reason(() => encodeManifest({ ...manifest, shards: manifest.shards.map(() => CID.createV1(DAG_JSON_CODEC, fragmentCid(Buffer.alloc(1)).multihash)) }));
    reason(() => decodeManifest(Buffer.from(JSON.stringify({ ...parsed, extra: 1 }))));
    reason(() => decodeManifest(Buffer.from(JSON.stringify({ ...parsed, version: MANIFEST_VERSION + 1 }))));
    // A version 1 manifest (no MAC) and a version 2 one (plaintext size) say what to do.
    const { sealedSize: _sealed, ...v2 } = parsed as Record<string, unknown>;
    const v2Manifest = { ...v2, fileSize: 3000, fragmentCount: 6, version: 2 };
    const { mac: _mac, ...v1Encryption } = (parsed as { encryption: Record<string, unknown> }).encryption;
    assert.throws(() => decodeManifest(Buffer.from(JSON.stringify({ ...v2Manifest, encryption: v1Encryption, version: 1 }))), /version 1 manifests carry no MAC: put the file again/);
    assert.throws(
      () => decodeManifest(Buffer.from(JSON.stringify(v2Manifest))),
      (e: unknown) => e instanceof ManifestError && e.context.field === "version" && /unsupported version 2 \(version 2 manifests show the file's exact size to every member: put the file again\)/.test(e.message),
    );
  });

  it("layout: stripes, shard sizes and the empty file", () => {
    // 1024-byte shards: the 4 KiB floor is capped at the shard size, so every stripe has 1024-byte shards.
    assert.deepEqual(layoutFor(0, 996, 4), { stripes: 1, shardSize: 1024, lastShardSize: 1024, rest: 0 });
    assert.deepEqual(layoutFor(4 * 996, 996, 4), { stripes: 1, shardSize: 1024, lastShardSize: 1024, rest: 3984 });
    assert.deepEqual(layoutFor(4 * 996 + 1, 996, 4), { stripes: 2, shardSize: 1024, lastShardSize: 1024, rest: 1 });
    // 1 MiB shards: the last stripe's shards are the least power of two >= ceil(rest / k) + 28, at least 4 KiB.
    const F = (1 << 20) - 28;
    assert.deepEqual(layoutFor(0, F, 4), { stripes: 1, shardSize: 1 << 20, lastShardSize: 4096, rest: 0 });
    assert.deepEqual(layoutFor(4 * 4068, F, 4), { stripes: 1, shardSize: 1 << 20, lastShardSize: 4096, rest: 16272 });
    assert.deepEqual(layoutFor(4 * 4068 + 1, F, 4), { stripes: 1, shardSize: 1 << 20, lastShardSize: 8192, rest: 16273 });
    assert.deepEqual(layoutFor(4 * F, F, 4), { stripes: 1, shardSize: 1 << 20, lastShardSize: 1 << 20, rest: 4 * F });
    assert.deepEqual(layoutFor(4 * F + 1, F, 4), { stripes: 2, shardSize: 1 << 20, lastShardSize: 4096, rest: 1 });
    assert.deepEqual(layoutFor(4 * F + 4 * ((1 << 19) - 28) + 1, F, 4), { stripes: 2, shardSize: 1 << 20, lastShardSize: 1 << 20, rest: 4 * ((1 << 19) - 28) + 1 });
    assert.deepEqual([0, 28, 4096, 4097, 8192, 65537, 1 << 20].map((n) => bucketShardSize(n, 1 << 20)), [4096, 4096, 4096, 8192, 8192, 131072, 1 << 20]);
    assert.deepEqual([1, 4096, 40_000].map((n) => bucketShardSize(n, 40_008)), [4096, 4096, 40_008], "capped at a shard size that is no power of two");
  });
});

/** Every number in a JSON value, however deep. */
function numbersIn(value: unknown): number[] {
  if (typeof value === "number") return [value];
  if (Array.isArray(value)) return value.flatMap(numbersIn);
  if (typeof value === "object" && value !== null) return Object.values(value).flatMap(numbersIn);
  return [];
}

describe("manifest: what members and validators see (no file size)", () => {
  const MiB = 1 << 20;
  const F = MiB - 28;

  it("holds no field equal to the size; the last shard size is the size's bucket; no two shards alike", async () => {
    // (Sizes that are not by chance a public number, as a file of k = 4 bytes would be.)
    for (const size of [7, 1000, 16_272, 16_273, 100 * 1024, MiB + 1, 4 * F - 1, 4 * F + 5000]) {
      const r = await encodeToMemory(Buffer.alloc(size, 0x61), { secret });
      const json = JSON.parse(r.manifestBytes.toString("utf8"));
      assert.ok(!numbersIn(json).includes(size), `${size}: a number in the manifest is the size`);
      assert.ok(!/"(fileSize|size|fragmentCount)"/.test(r.manifestBytes.toString("utf8")), "no size or count field");
      const { stripes, k, lastShardSize } = r.manifest.erasure;
      assert.equal(stripes, Math.max(1, Math.ceil(size / (4 * F))));
      const rest = size - (stripes - 1) * 4 * F;
      assert.equal(lastShardSize, bucketShardSize(Math.ceil(rest / k) + 28, MiB), `${size}: bucket`);
      assert.ok(lastShardSize === MiB || (lastShardSize >= 4096 && Number.isInteger(Math.log2(lastShardSize))));
      // Padding is sealed with the data, so no shard is all zeros and none repeats another (not even
      // shards of a file of one repeated byte).
      assert.equal(new Set(r.manifest.shards.map(String)).size, r.manifest.shards.length, `${size}: distinct shards`);
      assert.equal(openManifest(r.manifest, secret).fileSize, size, "the owner opens it");
    }
  });

  it("two files whose sizes share a bucket show the same numbers", async () => {
    const a = await encodeToMemory(Buffer.alloc(40_000, 1), { secret });
    const b = await encodeToMemory(Buffer.alloc(60_000, 2), { secret });
    assert.deepEqual(numbersIn(JSON.parse(a.manifestBytes.toString())), numbersIn(JSON.parse(b.manifestBytes.toString())));
    assert.equal(a.manifest.erasure.lastShardSize, 16_384);
    assert.equal(a.manifestBytes.length, b.manifestBytes.length);
  });

  it("the owner's secret opens it; a wrong secret or a flipped seal byte is ManifestSealError, before any shard is fetched", async () => {
    const data = Buffer.alloc(70_000, 0x33);
    const r = await encodeToMemory(data, { secret, k: 2, m: 1 });
    const { manifest } = r;
    assert.equal(openManifest(manifest, secret).fileSize, 70_000);
    const fileId = manifest.encryption.fileId;
    const sealError = (e: unknown): boolean => e instanceof ManifestSealError && e instanceof ManifestAuthError && e.code === "ERR_MANIFEST_SEAL" && e.context.fileId === fileId;
    assert.throws(() => openManifest(manifest, Buffer.alloc(32, 6)), sealError);
    let fetched = 0;
    const counting = memoryFetcher(r.shards);
    const fetch: typeof counting = async (cid, where) => (fetched++, counting(cid, where));
    await assert.rejects(decodeToBuffer(manifest, fetch, { secret: Buffer.alloc(32, 6) }), sealError);
    for (let i = 0; i < manifest.sealedSize.length; i++) {
      const c = manifest.sealedSize[i]!;
      const flipped = `${manifest.sealedSize.slice(0, i)}${c === "0" ? "1" : "0"}${manifest.sealedSize.slice(i + 1)}`;
      // As a member could build it: valid, canonical, only the seal changed.
      const altered = decodeManifest(encodeManifest({ ...manifest, sealedSize: flipped }).bytes);
      assert.throws(() => openManifest(altered, secret), sealError, `hex digit ${i}`);
      await assert.rejects(decodeToBuffer(altered, fetch, { secret }), sealError);
    }
    assert.equal(fetched, 0);
    // Another file's seal (same client) opens under neither its own file id nor this one's.
    const other = await encodeToMemory(Buffer.alloc(10), { secret, k: 2, m: 1 });
    assert.throws(() => openManifest({ ...manifest, sealedSize: other.manifest.sealedSize }, secret), sealError);
    assert.deepEqual(await decodeToBuffer(manifest, fetch, { secret }), data);
  });
});
