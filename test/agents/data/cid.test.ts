import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { identity } from "multiformats/hashes/identity";
import {
  cidHasher,
  cidMatches,
  cidOfFragmentRoot,
  cidWithDigest,
  digestMatchesCid,
  fragmentCid,
  fragmentCids,
  fragmentRootOfCid,
  isVerifiableCid,
  parseCid,
  sha256RawCid,
} from "../../../agents/data/cid.js";
import { FRAGMENT_ROOT_MULTIHASH, FRAGMENT_SIZE } from "../../../agents/data/constants.js";
import { FragmentRootHasher, fragmentRoot } from "../../../agents/data/merkle.js";
import { hashBackend, nodeCryptoBackend, setHashBackend } from "../../../agents/data/hash-backend.js";

/** CIDv1 bytes written out by hand: version 1, raw codec 0x55, multihash 0x300f01 (varint 81 9e c0 01), length 32, the fragment root. */
function specCidBytes(bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([0x01, 0x55, 0x81, 0x9e, 0xc0, 0x01, 0x20]), fragmentRoot(bytes)]);
}

/** The fragment root by the reference backend, node:crypto one hash at a time. */
function referenceRoot(bytes: Uint8Array): Buffer {
  const previous = hashBackend();
  setHashBackend(nodeCryptoBackend);
  try {
    return fragmentRoot(bytes);
  } finally {
    setHashBackend(previous);
  }
}

describe("cid: fragment CIDs", () => {
  it("is CIDv1, raw codec, the fragment-root multihash carrying the fragment root", () => {
    const empty = fragmentCid(new Uint8Array(0));
    assert.equal(empty.toString(), "bafkydhwaaeqmnv67nwumpc33biuvx5z3vznmp3xiuu62kcr7ee26j73kg3ftvjq");
    assert.equal(empty.version, 1);
    assert.equal(empty.code, 0x55);
    assert.equal(empty.multihash.code, FRAGMENT_ROOT_MULTIHASH);
    assert.deepEqual(fragmentRootOfCid(empty), referenceRoot(new Uint8Array(0)));
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000, size: "max" }), (bytes) => {
        assert.deepEqual(Buffer.from(fragmentCid(bytes).bytes), specCidBytes(bytes));
        assert.ok(cidOfFragmentRoot(referenceRoot(bytes)).equals(fragmentCid(bytes)));
      }),
      { numRuns: 50 },
    );
    // A document CID (sha2-256) carries no fragment root.
    assert.equal(fragmentRootOfCid(sha256RawCid(Buffer.from("doc"))), undefined);
  });

  it("fragmentCids equals fragmentCid one by one, for mixed and equal lengths, with either hash backend", () => {
    const fragments = [0, 1, 64, 1000, 1000, 1000, 1000, 4096, 17, 0].map((n, i) => Buffer.alloc(n, i + 1));
    const previous = hashBackend();
    try {
      for (const backend of [nodeCryptoBackend, previous]) {
        setHashBackend(backend);
        const cids = fragmentCids(fragments);
        assert.equal(cids.length, fragments.length);
        cids.forEach((cid, i) => {
          assert.equal(cid.toString(), fragmentCid(fragments[i]!).toString(), `${backend.name} fragment ${i}`);
          assert.deepEqual(Buffer.from(cid.bytes), specCidBytes(fragments[i]!));
        });
      }
    } finally {
      setHashBackend(previous);
    }
    assert.deepEqual(fragmentCids([]), []);
  });

  it("a streamed hash (any split into pieces) gives the root of the whole, for both kinds of CID", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 9000, size: "max" }), fc.array(fc.nat(9000), { maxLength: 12, size: "max" }), (bytes, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        for (const cid of [fragmentCid(bytes), sha256RawCid(bytes)]) {
          const h = cidHasher(cid);
          let from = 0;
          for (const p of [...points, bytes.length]) {
            h.update(bytes.subarray(from, p));
            from = p;
          }
          assert.ok(digestMatchesCid(cid, h.digest()), `${cid.multihash.code} over ${bytes.length} bytes cut at ${points.join(",")}`);
        }
      }),
      { numRuns: 60 },
    );
    // A whole 1 MiB fragment in yamux-sized pieces, and one byte more than a fragment can hold.
    const big = Buffer.alloc(FRAGMENT_SIZE, 7);
    const cid = fragmentCid(big);
    const h = cidHasher(cid);
    for (let i = 0; i < big.length; i += 65_531) h.update(big.subarray(i, i + 65_531));
    assert.ok(digestMatchesCid(cid, h.digest()));
    const over = new FragmentRootHasher();
    over.update(big);
    over.update(Buffer.from([1]));
    assert.equal(over.root(), undefined);
    assert.equal(cidMatches(cid, Buffer.concat([big, Buffer.from([1])])), false);
    assert.throws(() => over.root(), /once/);
  });

  it("cidMatches: true for the same bytes, false for any other bytes or an unknown hash (sha2-256 CIDs of documents)", () => {
    const bytes = Buffer.from("fragment bytes");
    const root = fragmentCid(bytes);
    assert.equal(cidMatches(root, bytes), true);
    assert.equal(cidMatches(root, Buffer.from("fragment bytez")), false);
    assert.equal(cidMatches(root, Buffer.concat([bytes, Buffer.alloc(1)])), false, "zero padding of the last leaf is not the same fragment (the size is in the root)");
    assert.equal(cidMatches(CID.createV1(0x55, Digest.create(FRAGMENT_ROOT_MULTIHASH, fragmentRoot(bytes).subarray(0, 16))), bytes), false);
    const cid = sha256RawCid(bytes);
    assert.equal(cidMatches(cid, bytes), true);
    assert.equal(cidMatches(cid, Buffer.from("fragment bytez")), false);
    assert.equal(cidMatches(cid, bytes.subarray(1)), false);
    assert.equal(cidMatches(cid, new Uint8Array(0)), false);
    // Any codec: a dag-pb CID over the same sha2-256 digest still matches.
    assert.equal(cidMatches(CID.createV1(0x70, cid.multihash), bytes), true);
    // A digest that is a view into a larger buffer (as decoded CIDs are).
    assert.equal(cidMatches(CID.decode(cid.bytes), bytes), true);
    // The identity multihash holds the bytes themselves: not sha2-256, so never a match.
    assert.equal(cidMatches(CID.createV1(0x55, identity.digest(bytes)), bytes), false);
    // Another hash function whose digest bytes happen to be the SHA-256 of the bytes: the code decides.
    const digest = createHash("sha256").update(bytes).digest();
    assert.equal(cidMatches(CID.createV1(0x55, Digest.create(0x13, digest)), bytes), false);
    assert.equal(cidMatches(CID.createV1(0x55, identity.digest(digest)), bytes), false);
    // A sha2-256 code with a truncated digest never matches.
    const short = Digest.create(0x12, createHash("sha256").update(bytes).digest().subarray(0, 16));
    assert.equal(cidMatches(CID.createV1(0x55, short), bytes), false);
  });

  it("each guard refuses by itself: root and digest lengths, unverifiable multihashes, digests of another length", () => {
    const bytes = Buffer.from("guarded");
    const root = fragmentRoot(bytes);
    const sha = createHash("sha256").update(bytes).digest();
    assert.throws(() => cidOfFragmentRoot(root.subarray(0, 31)), { message: "a fragment root is 32 bytes, got 31" });
    // The fragment-root code with a digest of another length carries no fragment root.
    const shortRoot = CID.createV1(0x55, Digest.create(FRAGMENT_ROOT_MULTIHASH, root.subarray(0, 16)));
    assert.equal(fragmentRootOfCid(shortRoot), undefined);
    // Verifiable: either code with a 32-byte digest, nothing else.
    assert.equal(isVerifiableCid(fragmentCid(bytes)), true);
    assert.equal(isVerifiableCid(sha256RawCid(bytes)), true);
    assert.equal(isVerifiableCid(shortRoot), false);
    const shortSha = CID.createV1(0x55, Digest.create(0x12, sha.subarray(0, 16)));
    assert.equal(isVerifiableCid(shortSha), false);
    const sha512Coded = CID.createV1(0x55, Digest.create(0x13, sha));
    assert.equal(isVerifiableCid(sha512Coded), false);
    for (const cid of [shortSha, sha512Coded]) {
      assert.throws(() => cidHasher(cid), {
        message: `cannot verify CID ${cid.toString()}: multihash 0x${cid.multihash.code.toString(16)} is neither sha2-256 nor a fragment root`,
      });
      // The CID's own digest bytes never match a CID that cannot be verified.
      assert.equal(digestMatchesCid(cid, cid.multihash.digest), false);
    }
    // A digest of another length is no match, and no throw (timingSafeEqual would throw on it).
    assert.equal(digestMatchesCid(sha256RawCid(bytes), sha.subarray(0, 31)), false);
    assert.equal(digestMatchesCid(fragmentCid(bytes), Buffer.concat([root, Buffer.alloc(1)])), false);
    assert.equal(digestMatchesCid(fragmentCid(bytes), undefined), false);
    assert.equal(digestMatchesCid(fragmentCid(bytes), root), true);
  });

  it("cidWithDigest keeps the version, codec and multihash code of the CID it is like", () => {
    const other = createHash("sha256").update("other").digest();
    const v1 = cidWithDigest(CID.createV1(0x70, Digest.create(0x12, Buffer.alloc(32))), other);
    assert.equal(v1.version, 1);
    assert.equal(v1.code, 0x70);
    assert.equal(v1.multihash.code, 0x12);
    assert.deepEqual(Buffer.from(v1.multihash.digest), other);
    const root = fragmentCid(Buffer.from("x"));
    assert.ok(cidWithDigest(root, root.multihash.digest).equals(root));
    const v0 = cidWithDigest(CID.createV0(Digest.create(0x12, Buffer.alloc(32)) as Parameters<typeof CID.createV0>[0]), other);
    assert.equal(v0.version, 0);
    assert.equal(v0.toString(), CID.createV0(Digest.create(0x12, other) as Parameters<typeof CID.createV0>[0]).toString());
  });

  it("parseCid round trips and names the bad value", () => {
    const cid = fragmentCid(Buffer.from("x"));
    assert.ok(parseCid(cid.toString()).equals(cid));
    assert.throws(
      () => parseCid("not-a-cid"),
      (e: unknown) => e instanceof Error && e.message.startsWith('not a valid CID: "not-a-cid" (') && e.cause instanceof Error,
    );
  });
});
