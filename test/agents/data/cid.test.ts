import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { identity } from "multiformats/hashes/identity";
import { cidMatches, fragmentCid, fragmentCids, parseCid } from "../../../agents/data/cid.js";
import { hashBackend, nodeCryptoBackend, setHashBackend } from "../../../agents/data/hash-backend.js";

/** CIDv1 bytes written out by hand: version 1, raw codec 0x55, sha2-256 0x12, length 32, digest. */
function specCidBytes(bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([0x01, 0x55, 0x12, 0x20]), createHash("sha256").update(bytes).digest()]);
}

describe("cid: fragment CIDs", () => {
  it("is CIDv1, raw codec, sha2-256 of the bytes (the well-known CID of the empty block)", () => {
    const empty = fragmentCid(new Uint8Array(0));
    assert.equal(empty.toString(), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
    assert.equal(empty.version, 1);
    assert.equal(empty.code, 0x55);
    assert.equal(empty.multihash.code, 0x12);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 3000 }), (bytes) => {
        assert.deepEqual(Buffer.from(fragmentCid(bytes).bytes), specCidBytes(bytes));
      }),
      { numRuns: 50 },
    );
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

  it("cidMatches: true for the same bytes, false for any other bytes or a non-sha2-256 CID", () => {
    const bytes = Buffer.from("fragment bytes");
    const cid = fragmentCid(bytes);
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

  it("parseCid round trips and names the bad value", () => {
    const cid = fragmentCid(Buffer.from("x"));
    assert.ok(parseCid(cid.toString()).equals(cid));
    assert.throws(
      () => parseCid("not-a-cid"),
      (e: unknown) => e instanceof Error && e.message.startsWith('not a valid CID: "not-a-cid" (') && e.cause instanceof Error,
    );
  });
});
