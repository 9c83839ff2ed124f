import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import { CID } from "multiformats/cid";
import { fragmentCid, sha256RawCid } from "../../../agents/data/cid.js";
import { fragmentRoot } from "../../../agents/data/merkle.js";
import { ManifestCidMismatchError, ManifestError } from "../../../agents/data/errors.js";
import {
  bucketShardSize,
  DAG_JSON_CODEC,
  decodeManifest,
  encodeManifest,
  fragmentSpan,
  isLastShardSize,
  layoutFor,
  MANIFEST_TYPE,
  MANIFEST_VERSION,
  manifestCidOf,
  MIN_LAST_SHARD_SIZE,
  SHARD_PADDING,
  stripesFor,
  stripeShardSize,
  validateManifest,
  type Manifest,
} from "../../../agents/data/manifest.js";
import { encodeToMemory } from "../../../agents/data/pipeline.js";

const secret = Buffer.alloc(32, 9);

async function sample(size = 3000, k = 3, m = 2): Promise<{ manifest: Manifest; bytes: Buffer; cid: CID }> {
  const r = await encodeToMemory(Buffer.alloc(size, 0x42), { secret, k, m, shardSize: 512 });
  return { manifest: r.manifest, bytes: r.manifestBytes, cid: r.manifestCid };
}

/** The field and reason of the ManifestError `fn` throws. */
function rejection(fn: () => unknown): { field: string | undefined; reason: string; code: string } {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ManifestError, String(e));
    return { field: e.context.field, reason: e.context.reason, code: e.code };
  }
  assert.fail("expected a ManifestError");
}

describe("manifest: each rule names its field", () => {
  it("validateManifest rejects each inconsistent field by name", async () => {
    const { manifest } = await sample();
    validateManifest(manifest);
    const enc = manifest.encryption;
    const era = manifest.erasure;
    const cases: [Partial<Manifest>, string, string][] = [
      [{ version: MANIFEST_VERSION + 1 }, "version", `unsupported version ${MANIFEST_VERSION + 1}`],
      [{ version: 2 }, "version", "unsupported version 2 (version 2 manifests show the file's exact size to every member: put the file again)"],
      [{ version: 1 }, "version", "unsupported version 1 (version 1 manifests carry no MAC: put the file again)"],
      [{ version: 0 }, "version", "unsupported version 0"],
      [{ sealedSize: "" }, "sealedSize", "must be 36 bytes of lowercase hex"],
      [{ sealedSize: manifest.sealedSize.slice(2) }, "sealedSize", "must be 36 bytes of lowercase hex"],
      [{ sealedSize: `${manifest.sealedSize}00` }, "sealedSize", "must be 36 bytes of lowercase hex"],
      [{ sealedSize: manifest.sealedSize.toUpperCase() }, "sealedSize", "must be 36 bytes of lowercase hex"],
      [{ sealedSize: `g${manifest.sealedSize.slice(1)}` }, "sealedSize", "must be 36 bytes of lowercase hex"],
      [{ sealedSize: 7 as unknown as string }, "sealedSize", "must be 36 bytes of lowercase hex"],
      [{ fragmentSize: 0 }, "fragmentSize", "must be a positive integer"],
      [{ fragmentSize: 2.5 }, "fragmentSize", "must be a positive integer"],
      [{ encryption: { ...enc, alg: "aes-128-gcm" } }, "encryption.alg", "unsupported cipher aes-128-gcm"],
      [{ encryption: { ...enc, kdf: "hkdf-sha512" } }, "encryption.kdf", "unsupported KDF hkdf-sha512"],
      [{ encryption: { ...enc, layout: "tag16|ciphertext|nonce12" } }, "encryption.layout", "unsupported layout"],
      [{ encryption: { ...enc, fileId: enc.fileId.slice(2) } }, "encryption.fileId", "lowercase hex"],
      [{ encryption: { ...enc, fileId: enc.fileId.toUpperCase() } }, "encryption.fileId", "lowercase hex"],
      [{ encryption: { ...enc, fileId: `${enc.fileId}00` } }, "encryption.fileId", "lowercase hex"],
      [{ encryption: { ...enc, fileId: `g${enc.fileId.slice(1)}` } }, "encryption.fileId", "lowercase hex"],
      [{ encryption: { ...enc, mac: "" } }, "encryption.mac", "lowercase hex"],
      [{ encryption: { ...enc, mac: enc.mac.toUpperCase() } }, "encryption.mac", "lowercase hex"],
      [{ encryption: { ...enc, mac: enc.mac.slice(2) } }, "encryption.mac", "lowercase hex"],
      [{ erasure: { ...era, alg: "xor" } }, "erasure.alg", "unsupported erasure code xor"],
      [{ erasure: { ...era, padding: "random" } }, "erasure.padding", "unsupported padding random"],
      [{ erasure: { ...era, padding: "zero" } }, "erasure.padding", "unsupported padding zero"],
      [{ erasure: { ...era, k: 0 } }, "erasure.k", "must be in [1, 24]"],
      [{ erasure: { ...era, k: 25 } }, "erasure.k", "must be in [1, 24]"],
      [{ erasure: { ...era, k: 1.5 } }, "erasure.k", "must be in [1, 24]"],
      [{ erasure: { ...era, m: -1 } }, "erasure.m", "must be in [0, 6]"],
      [{ erasure: { ...era, m: 7 } }, "erasure.m", "must be in [0, 6]"],
      [{ erasure: { ...era, m: 0.5 } }, "erasure.m", "must be in [0, 6]"],
      [{ erasure: { ...era, stripes: 0 } }, "erasure.stripes", "must be a positive integer"],
      [{ erasure: { ...era, stripes: 1.5 } }, "erasure.stripes", "must be a positive integer"],
      [{ erasure: { ...era, stripes: era.stripes + 1 } }, "shards", `expected ${(era.stripes + 1) * 5} shard links`],
      [{ erasure: { ...era, shardSize: era.shardSize + 8 } }, "erasure.shardSize", `expected ${era.shardSize} (fragmentSize + 28)`],
      [{ fragmentSize: manifest.fragmentSize + 8 }, "erasure.shardSize", `expected ${era.shardSize + 8} (fragmentSize + 28)`],
      [{ fragmentSize: manifest.fragmentSize + 1, erasure: { ...era, shardSize: era.shardSize + 1 } }, "erasure.shardSize", "must be a multiple of 8"],
      [{ erasure: { ...era, lastShardSize: era.lastShardSize + 8 } }, "erasure.lastShardSize", `must be ${era.shardSize} or a power of two in [4096, ${era.shardSize})`],
      [{ erasure: { ...era, lastShardSize: 256 } }, "erasure.lastShardSize", "must be"],
      [{ shards: manifest.shards.slice(1) }, "shards", `expected ${manifest.shards.length} shard links, got ${manifest.shards.length - 1}`],
      [{ shards: [...manifest.shards, manifest.shards[0]!] }, "shards", "shard links"],
      [{ roots: manifest.roots.slice(1) }, "roots", `expected ${manifest.roots.length} roots, got ${manifest.roots.length - 1}`],
      [{ roots: [...manifest.roots.slice(0, -1), manifest.roots.at(-1)!.toUpperCase()] }, `roots[${manifest.roots.length - 1}]`, "lowercase hex"],
      [{ roots: [...manifest.roots.slice(1), manifest.roots[0]!] }, "roots[0]", "must be the fragment root its shard link carries"],
      [{ roots: [`${manifest.roots[0]!}0`, ...manifest.roots.slice(1)] }, "roots[0]", "lowercase hex"],
      [{ roots: [manifest.roots[0]!.slice(1), ...manifest.roots.slice(1)] }, "roots[0]", "lowercase hex"],
      [{ roots: [5 as unknown as string, ...manifest.roots.slice(1)] }, "roots[0]", "lowercase hex"],
    ];
    for (const [change, field, reason] of cases) {
      const got = rejection(() => validateManifest({ ...manifest, ...change }));
      assert.equal(got.field, field, `${JSON.stringify(change).slice(0, 80)}: ${got.reason}`);
      assert.ok(got.reason.includes(reason), `${field}: ${got.reason}`);
      assert.equal(got.code, "ERR_MANIFEST_INVALID");
    }
    // A version that is not a number gets no old version's hint, even when it reads like one.
    assert.equal(rejection(() => validateManifest({ ...manifest, version: "2" as unknown as typeof manifest.version })).reason, "unsupported version 2");
    const raw = manifest.shards[0]!;
    for (const [i, bad] of [
      [0, CID.createV1(DAG_JSON_CODEC, raw.multihash)],
      [1, CID.createV0(fragmentCid(Buffer.alloc(1)).multihash as Parameters<typeof CID.createV0>[0]) as unknown as CID],
      [2, CID.createV1(0x55, { ...raw.multihash, code: 0x13 } as typeof raw.multihash)],
      [3, raw.toString() as unknown as CID],
      [4, sha256RawCid(Buffer.alloc(1))],
    ] as const) {
      const shards = [...manifest.shards];
      shards[i] = bad;
      const got = rejection(() => validateManifest({ ...manifest, shards }));
      assert.equal(got.field, `shards[${i}]`);
      assert.equal(got.reason, "must be a CIDv1 raw fragment-root link (docs/ENCODING.md § CIDs)");
    }
  });

  it("the largest k and m and the smallest fragment size are valid", async () => {
    const wide = await sample(100, 24, 6);
    validateManifest(wide.manifest);
    assert.equal(wide.manifest.shards.length, 30);
    const base = (await sample()).manifest;
    validateManifest({
      ...base,
      fragmentSize: 4,
      erasure: { ...base.erasure, k: 1, m: 0, stripes: 1, shardSize: 32, lastShardSize: 32 },
      shards: [base.shards[0]!],
      roots: [base.roots[0]!],
    });
  });

  it("shards larger than a Magu fragment are refused", async () => {
    const fragmentSize = (1 << 20) - 20; // fragmentSize + 28 = 1 MiB + 8
    const manifest: Manifest = {
      version: MANIFEST_VERSION,
      fragmentSize,
      sealedSize: (await sample()).manifest.sealedSize,
      encryption: (await sample()).manifest.encryption,
      erasure: { ...(await sample()).manifest.erasure, k: 1, m: 0, stripes: 1, ...pickSizes(10, fragmentSize, 1) },
      shards: [fragmentCid(Buffer.alloc(1))],
      roots: [fragmentRoot(Buffer.alloc(1)).toString("hex")],
    };
    assert.equal(manifest.erasure.shardSize, (1 << 20) + 8);
    const got = rejection(() => validateManifest(manifest));
    assert.equal(got.field, "erasure.shardSize");
    assert.ok(got.reason.includes("at most 1048576 bytes"));
    // Exactly 1 MiB is allowed.
    const exact = (1 << 20) - 28;
    validateManifest({ ...manifest, fragmentSize: exact, erasure: { ...manifest.erasure, ...pickSizes(10, exact, 1) } });
  });

  it("decode: the JSON shape is checked field by field", async () => {
    const { bytes } = await sample();
    const parsed = JSON.parse(bytes.toString("utf8"));
    const decodeOf = (v: unknown) => () => decodeManifest(Buffer.from(JSON.stringify(v)));
    const cases: [unknown, string | undefined, string][] = [
      [[parsed], undefined, "top level is not a map"],
      [null, undefined, "top level is not a map"],
      ["x", undefined, "top level is not a map"],
      [{ ...parsed, extra: 1 }, "(root)", "expected [encryption,erasure,fragmentSize,sealedSize,shards,type,version]"],
      [{ ...parsed, fileSize: 3000 }, "(root)", "expected [encryption,erasure,fragmentSize,sealedSize,shards,type,version]"],
      [{ ...parsed, type: undefined }, "(root)", "keys ["],
      [{ ...parsed, type: "muri/dir" }, "type", `must be ${MANIFEST_TYPE}`],
      [{ ...parsed, encryption: [] }, "encryption", "must be a map"],
      [{ ...parsed, erasure: "x" }, "erasure", "must be a map"],
      [{ ...parsed, encryption: { ...parsed.encryption, salt: "x" } }, "encryption", "keys ["],
      [{ ...parsed, erasure: { ...parsed.erasure, padding: undefined } }, "erasure", "keys ["],
      [{ ...parsed, shards: {} }, "shards", "must be a list"],
      [{ ...parsed, roots: [] }, "(root)", "keys ["],
      [{ ...parsed, shards: ["bafk"] }, "shards[0]", "must be a link"],
      [{ ...parsed, shards: [{ "/": 5 }] }, "shards[0]", "must be a link"],
      [{ ...parsed, shards: [{ "/": parsed.shards[0]["/"], x: 1 }] }, "shards[0]", "must be a link"],
      [{ ...parsed, shards: [parsed.shards[0], { "/": "not a cid" }] }, "shards[1]", 'bad CID "not a cid"'],
      [{ ...parsed, version: "1" }, "version", 'must be an integer in [0, 9007199254740991], got "1"'],
      [{ ...parsed, version: -1 }, "version", "must be an integer in [0,"],
      [{ ...parsed, sealedSize: 1.5 }, "sealedSize", "must be a string"],
      [{ ...parsed, fragmentSize: 0 }, "fragmentSize", "must be an integer in [1,"],
      [{ ...parsed, erasure: { ...parsed.erasure, k: 0 } }, "erasure.k", "in [1,"],
      [{ ...parsed, erasure: { ...parsed.erasure, m: -1 } }, "erasure.m", "in [0,"],
      [{ ...parsed, erasure: { ...parsed.erasure, stripes: 0 } }, "erasure.stripes", "in [1,"],
      [{ ...parsed, erasure: { ...parsed.erasure, shardSize: 0 } }, "erasure.shardSize", "in [1,"],
      [{ ...parsed, erasure: { ...parsed.erasure, lastShardSize: 0 } }, "erasure.lastShardSize", "in [1,"],
      [{ ...parsed, erasure: { ...parsed.erasure, alg: 1 } }, "erasure.alg", "must be a string"],
      [{ ...parsed, erasure: { ...parsed.erasure, padding: 0 } }, "erasure.padding", "must be a string"],
      [{ ...parsed, encryption: { ...parsed.encryption, alg: 1 } }, "encryption.alg", "must be a string"],
      [{ ...parsed, encryption: { ...parsed.encryption, kdf: 1 } }, "encryption.kdf", "must be a string"],
      [{ ...parsed, encryption: { ...parsed.encryption, layout: 1 } }, "encryption.layout", "must be a string"],
      [{ ...parsed, encryption: { ...parsed.encryption, fileId: 1 } }, "encryption.fileId", "must be a string"],
    ];
    for (const [value, field, reason] of cases) {
      const got = rejection(decodeOf(value));
      assert.equal(got.field, field, `${reason}: got ${got.field} ${got.reason}`);
      assert.ok(got.reason.includes(reason), `${field}: ${got.reason}`);
    }
    // A renamed key (same number of keys) is named as a key error, with both lists.
    const { shards: s0, ...noShards } = parsed;
    const renamed = rejection(decodeOf({ ...noShards, shardz: s0 }));
    assert.equal(renamed.field, "(root)");
    assert.equal(
      renamed.reason,
      "keys [encryption,erasure,fragmentSize,sealedSize,shardz,type,version], expected [encryption,erasure,fragmentSize,sealedSize,shards,type,version]",
    );
    // Version 3 (sha2-256 shard links beside separate roots) is named as such.
    assert.ok(rejection(decodeOf({ ...parsed, version: 3, roots: [] })).reason.startsWith("unsupported version 3 (version 3 manifests address shards by sha2-256"));
    // A missing last key (in sorted order) is a key error too, not a missing value.
    const { version: _version, ...noVersion } = parsed;
    assert.equal(rejection(decodeOf(noVersion)).field, "(root)");
    const { fileId: f0, ...noFileId } = parsed.encryption;
    assert.equal(rejection(decodeOf({ ...parsed, encryption: { ...noFileId, fileID: f0 } })).field, "encryption");
    // An older version is named before its keys are (they differ); a string version is a shape error.
    assert.equal(rejection(decodeOf({ ...parsed, version: 2, fileSize: 1 })).reason, "unsupported version 2 (version 2 manifests show the file's exact size to every member: put the file again)");
    assert.equal(rejection(decodeOf({ version: 1 })).field, "version");
    assert.equal(rejection(decodeOf({ version: "2" })).field, "(root)");
    // The lower bounds themselves are accepted by the shape check (version 0 then fails validation).
    assert.equal(rejection(decodeOf({ ...parsed, version: 0 })).field, "version");
    assert.equal(rejection(decodeOf({ ...parsed, version: 0 })).reason, "unsupported version 0");
  });

  it("decode: bytes, CIDs and canonical form", async () => {
    const { manifest, bytes, cid } = await sample();
    const same = (m: Manifest) => {
      assert.deepEqual(encodeManifest(m).bytes, bytes);
      assert.deepEqual(m.shards.map(String), manifest.shards.map(String));
    };
    same(decodeManifest(bytes));
    same(decodeManifest(new Uint8Array(bytes), cid));
    // A view into a larger buffer decodes.
    const padded = Buffer.concat([Buffer.from("xx"), bytes, Buffer.from("yy")]);
    same(decodeManifest(padded.subarray(2, 2 + bytes.length)));
    const bad = rejection(() => decodeManifest(bytes, "nope"));
    assert.equal(bad.reason, "expected CID nope does not parse");
    assert.throws(() => decodeManifest(bytes, manifestCidOf(Buffer.from("other"))), (e: unknown) => {
      assert.ok(e instanceof ManifestCidMismatchError);
      assert.ok(e.message.includes(cid.toString()));
      return true;
    });
    assert.equal(rejection(() => decodeManifest(Buffer.from([0x7b, 0xff, 0x7d]))).reason.startsWith("not UTF-8 JSON ("), true);
    // Invalid UTF-8 inside a JSON string is refused too (never decoded to U+FFFD).
    assert.equal(rejection(() => decodeManifest(Buffer.from([0x22, 0xff, 0x22]))).reason.startsWith("not UTF-8 JSON ("), true);
    const spaced = Buffer.from(bytes.toString("utf8").replace('{"encryption"', '{ "encryption"'));
    assert.equal(rejection(() => decodeManifest(spaced)).reason, "not in canonical DAG-JSON form");
    // Keys in another order are not canonical either.
    const parsed = JSON.parse(bytes.toString("utf8"));
    const { type, ...rest } = parsed;
    assert.equal(rejection(() => decodeManifest(Buffer.from(JSON.stringify({ type, ...rest })))).reason, "not in canonical DAG-JSON form");
    assert.equal(manifestCidOf(bytes).toString(), CID.createV1(DAG_JSON_CODEC, { ...cid.multihash }).toString());
    assert.deepEqual(Buffer.from(manifestCidOf(bytes).multihash.digest), createHash("sha256").update(bytes).digest());
  });

  it("encodes exactly the canonical text", async () => {
    const { manifest, bytes } = await sample(10, 1, 0);
    const e = manifest.erasure;
    const n = manifest.encryption;
    const text =
      `{"encryption":{"alg":"${n.alg}","fileId":"${n.fileId}","kdf":"${n.kdf}","layout":"${n.layout}","mac":"${n.mac}"},` +
      `"erasure":{"alg":"${e.alg}","k":1,"lastShardSize":${e.lastShardSize},"m":0,"padding":"${SHARD_PADDING}","shardSize":${e.shardSize},"stripes":1},` +
      `"fragmentSize":${manifest.fragmentSize},"sealedSize":"${manifest.sealedSize}",` +
      `"shards":[{"/":"${manifest.shards[0]}"}],"type":"muri/file","version":${MANIFEST_VERSION}}`;
    assert.equal(SHARD_PADDING, "sealed-pow2");
    assert.equal(MANIFEST_VERSION, 4);
    assert.equal(bytes.toString("utf8"), text);
    const two = await sample(600, 2, 1);
    const t2 = two.bytes.toString("utf8");
    assert.ok(!t2.includes(`"roots"`), "the roots are read from the shard links, not written twice");
    assert.deepEqual(decodeManifest(two.bytes).roots, two.manifest.roots);
    assert.ok(t2.includes(`"shards":[${two.manifest.shards.map((c) => `{"/":"${c}"}`).join(",")}]`));
  });
});

function pickSizes(fileSize: number, fragmentSize: number, k: number) {
  const l = layoutFor(fileSize, fragmentSize, k);
  return { shardSize: l.shardSize, lastShardSize: l.lastShardSize };
}

describe("manifest: layout arithmetic", () => {
  it("stripes, buckets, and where each fragment's bytes lie", () => {
    assert.deepEqual([0, 1, 3999, 4000, 4001, 8000, 8001].map((n) => stripesFor(n, 1000, 4)), [1, 1, 1, 1, 2, 2, 3]);
    assert.equal(MIN_LAST_SHARD_SIZE, 4096);
    assert.deepEqual([4096, 8192, 1 << 19, 1 << 20].map((n) => isLastShardSize(n, 1 << 20)), [true, true, true, true]);
    assert.deepEqual([2048, 4104, 12_288, (1 << 20) + 8, 1 << 21, 4096.5].map((n) => isLastShardSize(n, 1 << 20)), [false, false, false, false, false, false]);
    assert.equal(isLastShardSize(1032, 1032), true, "the shard size itself, a power of two or not");
    assert.equal(isLastShardSize(1024, 1032), false, "below the floor");
    assert.equal(isLastShardSize(8192, 40_008), true);
    assert.equal(bucketShardSize(5000, 1032), 1032);
    const era = { erasure: { k: 2, stripes: 3, shardSize: 1032, lastShardSize: 40 } } as Pick<Manifest, "erasure">;
    assert.deepEqual([0, 1, 2].map((s) => stripeShardSize(era, s)), [1032, 1032, 40]);
    // Full stripes: fragment i is bytes [i·F, (i+1)·F); the last stripe's k fragments share its rest.
    const m = { erasure: { k: 2, stripes: 2, shardSize: 1 << 16, lastShardSize: 8192 } } as Pick<Manifest, "erasure">;
    const F = (1 << 16) - 28;
    const size = 2 * F + 8192 + 100;
    assert.deepEqual(layoutFor(size, F, 2), { stripes: 2, shardSize: 1 << 16, lastShardSize: 8192, rest: 8292 });
    assert.deepEqual([0, 1, 2, 3].map((i) => fragmentSpan(m, size, i)), [
      { offset: 0, length: F, capacity: F },
      { offset: F, length: F, capacity: F },
      { offset: 2 * F, length: 8164, capacity: 8164 },
      { offset: 2 * F + 8164, length: 128, capacity: 8164 },
    ]);
    // An empty file: one stripe of padding only.
    const empty = { erasure: { k: 3, stripes: 1, shardSize: 1 << 16, lastShardSize: 4096 } } as Pick<Manifest, "erasure">;
    assert.deepEqual([0, 1, 2].map((i) => fragmentSpan(empty, 0, i).length), [0, 0, 0]);
    assert.deepEqual(layoutFor(0, F, 3), { stripes: 1, shardSize: 1 << 16, lastShardSize: 4096, rest: 0 });
  });
});
