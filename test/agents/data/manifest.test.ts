import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { CID } from "multiformats/cid";
import { fragmentCid } from "../../../agents/data/cid.js";
import { ManifestCidMismatchError, ManifestError } from "../../../agents/data/errors.js";
import { DAG_JSON_CODEC, decodeManifest, encodeManifest, layoutFor, type Manifest } from "../../../agents/data/manifest.js";
import { encodeToMemory } from "../../../agents/data/pipeline.js";

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
    assert.equal(decoded.fileSize, 3000);
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
    reason(() => encodeManifest({ ...manifest, fileSize: manifest.fileSize + 10_000 }));
    reason(() => encodeManifest({ ...manifest, fragmentCount: manifest.fragmentCount + 1 }));
    reason(() => encodeManifest({ ...manifest, shards: manifest.shards.slice(1) }));
    reason(() => encodeManifest({ ...manifest, roots: manifest.roots.map((r) => r.toUpperCase()) }));
    reason(() => encodeManifest({ ...manifest, erasure: { ...manifest.erasure, k: 4 } }));
    reason(() => encodeManifest({ ...manifest, erasure: { ...manifest.erasure, lastShardSize: 8 } }));
    reason(() => encodeManifest({ ...manifest, encryption: { ...manifest.encryption, fileId: "00" } }));
    reason(() => encodeManifest({ ...manifest, encryption: { ...manifest.encryption, alg: "chacha20" } }));
    reason(() => encodeManifest({ ...manifest, shards: manifest.shards.map(() => CID.createV1(DAG_JSON_CODEC, fragmentCid(Buffer.alloc(1)).multihash)) }));
    reason(() => decodeManifest(Buffer.from(JSON.stringify({ ...parsed, extra: 1 }))));
    reason(() => decodeManifest(Buffer.from(JSON.stringify({ ...parsed, version: 3 }))));
    // A version 1 manifest (no MAC) says what to do.
    const { mac: _mac, ...v1Encryption } = (parsed as { encryption: Record<string, unknown> }).encryption;
    assert.throws(() => decodeManifest(Buffer.from(JSON.stringify({ ...parsed, encryption: v1Encryption, version: 1 }))), /version 1 manifests carry no MAC: put the file again/);
  });

  it("layout: stripes, shard sizes and the empty file", () => {
    assert.deepEqual(layoutFor(0, 1000, 4), { fragmentCount: 1, stripes: 1, shardSize: 1032, lastShardSize: 32 });
    assert.deepEqual(layoutFor(4000, 1000, 4), { fragmentCount: 4, stripes: 1, shardSize: 1032, lastShardSize: 1032 });
    assert.deepEqual(layoutFor(4001, 1000, 4), { fragmentCount: 5, stripes: 2, shardSize: 1032, lastShardSize: 32 });
  });
});
