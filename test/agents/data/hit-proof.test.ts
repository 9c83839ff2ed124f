/**
 * Proofs of off-chain search hits (data/hit-proof.ts): an honest hit proves against the fragment
 * root wherever its record lies (inside a leaf, straddling two, the fragment's last record, a
 * fragment of one leaf), built from the whole fragment or from the record's proof window alone;
 * every way a member could lie fails with a reason naming what is wrong.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { FRAGMENT_SIZE, LEAF_SIZE } from "../../../agents/data/constants.js";
import { InvalidParameterError } from "../../../agents/data/errors.js";
import { buildHitProof, checkHitProof, hitProofBytes, proofWindow, readHitProof, recordLeaves, writeHitProof, type HitProof } from "../../../agents/data/hit-proof.js";
import { buildFragmentTree, HASH_SIZE } from "../../../agents/data/merkle.js";
import { canonicalDistance, packBits, packRecords, recordSize, type HitEntry, type VectorMetric, type VectorRecord } from "../../../agents/data/vectors.js";

const DIM = 48; // 104-byte records: some straddle two 1024-byte leaves

function records(count: number, firstId: bigint): VectorRecord[] {
  const raw = randomBytes(count * DIM * 2);
  return Array.from({ length: count }, (_, i) => {
    const values = new Int16Array(DIM);
    for (let c = 0; c < DIM; c++) values[c] = raw.readInt16BE(2 * (i * DIM + c));
    return { id: firstId + BigInt(i), values };
  });
}

function fragmentOf(rs: VectorRecord[]): Buffer {
  const [bytes, more] = [...packRecords(rs, DIM)];
  assert.equal(more, undefined, "one fragment");
  return bytes!;
}

/** `proof` written to and read back from its binary wire form, at an offset inside a larger buffer. */
function throughWire(proof: HitProof): HitProof {
  const out = Buffer.alloc(7 + hitProofBytes(proof) + 5);
  assert.equal(writeHitProof(proof, out, 7), 7 + hitProofBytes(proof));
  const { proof: back, end } = readHitProof(out, 7);
  assert.equal(end, 7 + hitProofBytes(proof));
  return back;
}

const query = (() => {
  const raw = randomBytes(2 * DIM);
  const q = new Int16Array(DIM);
  for (let c = 0; c < DIM; c++) q[c] = raw.readInt16BE(2 * c);
  return q;
})();

async function proven(bytes: Buffer, rs: VectorRecord[], position: number, metric: VectorMetric = "l2"): Promise<{ hit: HitEntry; proof: HitProof; root: Buffer }> {
  const tree = buildFragmentTree(bytes);
  const proof = buildHitProof(bytes, tree, position, DIM);
  const hit = { id: rs[position]!.id, distance: canonicalDistance(metric, query, rs[position]!.values), fragment: 3, position };
  return { hit, proof, root: tree.fragmentRoot };
}

describe("hit proofs", () => {
  const rs = records(50, 1000n); // 5200 bytes: 6 leaves, the last partial
  const bytes = fragmentOf(rs);

  it("an honest hit proves wherever its record lies", async () => {
    const straddling = rs.findIndex((_, p) => recordLeaves(p, DIM).first !== recordLeaves(p, DIM).last);
    assert.ok(straddling > 0, "some record straddles two leaves");
    for (const position of [0, straddling, 9, rs.length - 1]) {
      const w = proofWindow(position, DIM, bytes.length);
      const tree = buildFragmentTree(bytes);
      const windowed = buildHitProof(bytes.subarray(w.offset, w.offset + w.length), tree, position, DIM, "l2", w.offset);
      for (const metric of ["l2", "ip"] as const) {
        const { hit, proof, root } = await proven(bytes, rs, position, metric);
        assert.ok(windowed.leaves.equals(proof.leaves) && windowed.siblings.equals(proof.siblings), `position ${position}: the proof window's proof is the whole fragment's`);
        const { first } = recordLeaves(position, DIM);
        // The record, then the next record's id (it has no payload), or nothing at the end.
        const rsize = recordSize(DIM);
        const end = position === rs.length - 1 ? (position + 1) * rsize : (position + 1) * rsize + 8;
        assert.equal(proof.leaves.length, (Math.floor((end - 1) / LEAF_SIZE) - first + 1) * LEAF_SIZE);
        assert.equal(checkHitProof(hit, proof, root, query, metric), undefined, `position ${position}, ${metric}`);
        assert.equal(checkHitProof(hit, throughWire(proof), root, query, metric), undefined, "through the binary wire form");
      }
    }
    // A fragment of a single, partial leaf (depth 0: no siblings).
    const one = records(3, 7n);
    const small = fragmentOf(one);
    const { hit, proof, root } = await proven(small, one, 2);
    assert.equal(proof.siblings.length, 0);
    assert.equal(checkHitProof(hit, proof, root, query, "l2"), undefined);
  });

  it("a wrong distance, another id, or a forged byte fails with the reason", async () => {
    const { hit, proof, root } = await proven(bytes, rs, 12);
    assert.match(checkHitProof({ ...hit, distance: hit.distance - 1n }, proof, root, query, "l2")!, /at distance .*, not /);
    assert.match(checkHitProof(hit, proof, root, query, "ip")!, /at distance/, "the distance of another metric");
    assert.match(checkHitProof({ ...hit, id: hit.id + 1n }, proof, root, query, "l2")!, /holds id 1012, not 1013/);
    // The record of another position, claimed at this one.
    assert.match(checkHitProof({ ...hit, position: 13 }, proof, root, query, "l2")!, /does not prove|holds id/);

    const forgedLeaf = { ...proof, leaves: Buffer.from(proof.leaves) };
    forgedLeaf.leaves[(12 * recordSize(DIM)) % LEAF_SIZE + 9] ^= 1; // a component of the record
    assert.match(checkHitProof(hit, forgedLeaf, root, query, "l2")!, /leaf \d+ does not prove against fragment 3's root/);
    const forgedPath = { ...proof, siblings: Buffer.from(proof.siblings) };
    forgedPath.siblings[0] ^= 1;
    assert.match(checkHitProof(hit, forgedPath, root, query, "l2")!, /does not prove/);
    assert.match(checkHitProof(hit, { ...proof, size: proof.size - 1 }, root, query, "l2")!, /does not prove/, "the size is bound into the root");
    assert.match(checkHitProof(hit, proof, buildFragmentTree(fragmentOf(records(50, 1000n))).fragmentRoot, query, "l2")!, /does not prove/, "another fragment's root");
  });

  it("a proof of the wrong shape or a record past the end fails without reading past the buffers", async () => {
    const { hit, proof, root } = await proven(bytes, rs, 12);
    assert.match(checkHitProof(hit, { ...proof, leaves: proof.leaves.subarray(0, LEAF_SIZE - 1) }, root, query, "l2")!, /bytes of leaves/);
    assert.match(checkHitProof(hit, { ...proof, siblings: proof.siblings.subarray(32) }, root, query, "l2")!, /bytes of paths/);
    assert.match(checkHitProof({ ...hit, position: rs.length }, proof, root, query, "l2")!, /past the fragment's 5200 bytes/);
    assert.match(checkHitProof({ ...hit, position: 1_000_000 }, proof, root, query, "l2")!, /past the fragment/);
    assert.throws(() => buildHitProof(bytes, buildFragmentTree(bytes), rs.length, DIM), /record ends at byte 5304, the fragment has 5200/);
    assert.throws(() => buildHitProof(bytes.subarray(1), buildFragmentTree(bytes), 0, DIM), /built for 5200 bytes, the fragment has 5199/);
  });

  it("a malformed wire proof is refused naming the byte and the rule; a forged one read whole still fails its check", async () => {
    const { hit, proof, root } = await proven(bytes, rs, 12);
    const wire = Buffer.alloc(hitProofBytes(proof));
    writeHitProof(proof, wire, 0);
    assert.throws(() => readHitProof(wire.subarray(0, 5), 0), /header runs past the 5-byte answer/);
    assert.throws(() => readHitProof(wire.subarray(0, wire.length - 1), 0), /need \d+ bytes, the answer has \d+ left/);
    const zeroSize = Buffer.from(wire);
    zeroSize.writeUInt32BE(0, 0);
    assert.throws(() => readHitProof(zeroSize, 0), /fragment size 0 is outside \[1, 1048576\]/);
    const huge = Buffer.from(wire);
    huge.writeUInt32BE(2 ** 31, 0);
    assert.throws(() => readHitProof(huge, 0), /outside \[1, 1048576\]/);
    const noLeaves = Buffer.from(wire);
    noLeaves.writeUInt16BE(0, 4);
    assert.throws(() => readHitProof(noLeaves, 0), /0 leaves, a fragment of 5200 bytes has 1 to 6/);
    const tooMany = Buffer.from(wire);
    tooMany.writeUInt16BE(7, 4);
    assert.throws(() => readHitProof(tooMany, 0), /7 leaves, a fragment of 5200 bytes has 1 to 6/);
    // Well formed but forged: read whole, refused by the check.
    const forged = Buffer.from(wire);
    forged[6 + ((12 * recordSize(DIM)) % LEAF_SIZE) + 9]! ^= 1;
    assert.match(checkHitProof(hit, readHitProof(forged, 0).proof, root, query, "l2")!, /does not prove against fragment 3's root/);
    const otherSize = Buffer.from(wire);
    otherSize.writeUInt32BE(proof.size + 1, 0);
    assert.match(checkHitProof(hit, readHitProof(otherSize, 0).proof, root, query, "l2")!, /does not prove/, "the size is bound into the root");
  });
});

describe("hit proofs: each guard by its own reason", () => {
  const rs = records(50, 1000n); // 5200 bytes: 6 leaves, the last partial
  const bytes = fragmentOf(rs);
  const straddling = rs.findIndex((_, p) => recordLeaves(p, DIM).first !== recordLeaves(p, DIM).last);
  const named = (name: string, reason: string) => (e: unknown): boolean => e instanceof InvalidParameterError && e.context.name === name && e.context.reason === reason;

  it("the verifier: too few leaves, leaves past the fragment, paths of the wrong length, a forged later leaf", async () => {
    const { hit, proof, root } = await proven(bytes, rs, straddling);
    const { first } = recordLeaves(straddling, DIM);
    assert.equal(proof.leaves.length, 2 * LEAF_SIZE, "the straddling record's proof holds its two leaves");
    const depth = 3; // 6 leaves
    // Its first leaf alone (with its path): a whole leaf, but the record needs two.
    const one = { ...proof, leaves: proof.leaves.subarray(0, LEAF_SIZE), siblings: proof.siblings.subarray(0, depth * HASH_SIZE) };
    assert.equal(checkHitProof(hit, one, root, query, "l2"), `${LEAF_SIZE} bytes of leaves, the record needs at least 2 leaves of ${LEAF_SIZE}`);
    // Leaves from the record's first through one past the fragment's last.
    const past = 6 - first + 1;
    const long = { ...proof, leaves: Buffer.alloc(past * LEAF_SIZE), siblings: Buffer.alloc(past * depth * HASH_SIZE) };
    assert.equal(checkHitProof(hit, long, root, query, "l2"), `${past} leaves from leaf ${first} run past the fragment's 6`);
    const shortPaths = { ...proof, siblings: proof.siblings.subarray(HASH_SIZE) };
    assert.equal(checkHitProof(hit, shortPaths, root, query, "l2"), `${proof.siblings.length - HASH_SIZE} bytes of paths, 2 leaves of a depth-3 tree need ${2 * depth * HASH_SIZE}`);
    const forgedSecond = { ...proof, leaves: Buffer.from(proof.leaves) };
    forgedSecond.leaves[LEAF_SIZE + 1]! ^= 1;
    assert.equal(checkHitProof(hit, forgedSecond, root, query, "l2"), `leaf ${first + 1} does not prove against fragment 3's root`);
  });

  it("the wire: a whole fragment's worth of leaves, a fragment of FRAGMENT_SIZE or of 1 byte, a header of exactly 6 bytes", async () => {
    const { proof } = await proven(bytes, rs, 12);
    const wireOf = (size: number, n: number, extra: number): Buffer => {
      const w = Buffer.alloc(6 + extra);
      w.writeUInt32BE(size, 0);
      w.writeUInt16BE(n, 4);
      return w;
    };
    // All 6 leaves of the 5200-byte fragment (depth 3) are a readable proof.
    assert.equal(readHitProof(wireOf(5200, 6, 6 * LEAF_SIZE + 6 * 3 * HASH_SIZE), 0).proof.leaves.length, 6 * LEAF_SIZE);
    // The largest fragment (1024 leaves, depth 10) and the smallest.
    assert.equal(readHitProof(wireOf(FRAGMENT_SIZE, 1, LEAF_SIZE + 10 * HASH_SIZE), 0).proof.size, FRAGMENT_SIZE);
    assert.throws(() => readHitProof(wireOf(FRAGMENT_SIZE + 1, 1, LEAF_SIZE + 11 * HASH_SIZE), 0), { message: `proof at byte 0: fragment size ${FRAGMENT_SIZE + 1} is outside [1, ${FRAGMENT_SIZE}]` });
    assert.equal(readHitProof(wireOf(1, 1, LEAF_SIZE), 0).proof.siblings.length, 0);
    // A header alone: read, then the leaves it names are missing.
    assert.throws(() => readHitProof(wireOf(5200, 1, 0), 0), { message: `proof at byte 0: 1 leaves and their paths need ${6 + LEAF_SIZE + 3 * HASH_SIZE} bytes, the answer has 6 left` });
    const at = Buffer.concat([Buffer.alloc(10), wireOf(5200, 1, 0)]);
    assert.throws(() => readHitProof(at, 10), { message: `proof at byte 10: 1 leaves and their paths need ${6 + LEAF_SIZE + 3 * HASH_SIZE} bytes, the answer has 6 left` });
    assert.equal(hitProofBytes(proof), 6 + proof.leaves.length + proof.siblings.length);
  });

  it("positions, windows and builders name what they refuse", async () => {
    assert.throws(() => recordLeaves(-1, DIM), named("position", "must be a non-negative integer"));
    assert.throws(() => recordLeaves(1.5, DIM), named("position", "must be a non-negative integer"));
    assert.throws(() => proofWindow(50, DIM, 5200), named("position", "record ends at byte 5304, the fragment has 5200"));
    // At dim 128 (264-byte records) a window is the record, the largest payload's 17 chunk records
    // and the next id (4,760 bytes from the record's start), in whole leaves from the record's first
    // one: 5 KiB for record 0, 6 KiB for record 10 (it starts 592 bytes into leaf 2), cut at the
    // fragment's end.
    assert.deepEqual(proofWindow(0, 128, FRAGMENT_SIZE), { offset: 0, length: 5 * LEAF_SIZE });
    assert.deepEqual(proofWindow(10, 128, FRAGMENT_SIZE), { offset: 2 * LEAF_SIZE, length: 6 * LEAF_SIZE });
    assert.deepEqual(proofWindow(0, 128, 3000), { offset: 0, length: 3000 });
    const tree = buildFragmentTree(bytes);
    assert.throws(() => buildHitProof(bytes, tree, 50, DIM), named("position", "record ends at byte 5304, the fragment has 5200"));
    assert.throws(() => buildHitProof(bytes.subarray(1), tree, 0, DIM), named("tree", "built for 5200 bytes, the fragment has 5199"));
    // A window of the right length at another offset is not the record's window.
    const w = proofWindow(30, DIM, bytes.length);
    assert.ok(w.offset >= LEAF_SIZE, "record 30's window starts after the first leaf");
    const shifted = bytes.subarray(w.offset - LEAF_SIZE, w.offset - LEAF_SIZE + w.length);
    assert.throws(() => buildHitProof(shifted, tree, 30, DIM, "l2", w.offset - LEAF_SIZE), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "bytes");
    assert.deepEqual(buildHitProof(bytes.subarray(w.offset, w.offset + w.length), tree, 30, DIM, "l2", w.offset), buildHitProof(bytes, tree, 30, DIM));
  });
});

describe("hit proofs: a Hamming record", () => {
  const BITS = 300; // 46-byte records (38 bytes of bits, 4 padding bits): record 22 straddles two leaves
  const bits = (seed: number): number[] => Array.from({ length: BITS }, (_, i) => ((i * 7 + seed * 13 + ((i * seed) >> 3)) % 5 < 2 ? 1 : 0));
  const rs = Array.from({ length: 40 }, (_, i) => ({ id: 500n + BigInt(i), values: packBits(bits(i)) }));
  const [bytes] = [...packRecords(rs, BITS, 1 << 16, "hamming")];
  const q = packBits(bits(99));

  it("proves with the popcount distance; a wrong distance or the int16 layout is rejected", () => {
    const tree = buildFragmentTree(bytes!);
    for (const position of [0, 22, 39]) {
      const proof = buildHitProof(bytes!, tree, position, BITS, "hamming");
      const w = proofWindow(position, BITS, bytes!.length, "hamming");
      const windowed = buildHitProof(bytes!.subarray(w.offset, w.offset + w.length), tree, position, BITS, "hamming", w.offset);
      assert.ok(windowed.leaves.equals(proof.leaves) && windowed.siblings.equals(proof.siblings), `position ${position}: the proof window's proof is the whole fragment's`);
      const { first, last } = recordLeaves(position, BITS, "hamming");
      assert.equal(proof.leaves.length, (last - first + 1) * LEAF_SIZE);
      if (position === 22) assert.equal(last, first + 1, "record 22 straddles two leaves");
      const distance = canonicalDistance("hamming", q, rs[position]!.values);
      assert.ok(distance > 0n && distance < BigInt(BITS));
      const hit = { id: rs[position]!.id, distance, fragment: 0, position };
      assert.equal(checkHitProof(hit, proof, tree.fragmentRoot, q, "hamming", BITS), undefined, `position ${position}`);
      assert.match(checkHitProof({ ...hit, distance: distance + 1n }, proof, tree.fragmentRoot, q, "hamming", BITS)!, new RegExp(`id ${hit.id} is at distance ${distance}, not ${distance + 1n}`));
    }
    const proof = buildHitProof(bytes!, tree, 5, BITS, "hamming");
    const hit = { id: rs[5]!.id, distance: canonicalDistance("hamming", q, rs[5]!.values), fragment: 0, position: 5 };
    // The same bytes taken for an int16 Magu of 19 components (the same record size) are refused, not measured as l2.
    assert.throws(() => checkHitProof(hit, proof, tree.fragmentRoot, q, "l2", 19), /Int16Array/);
    assert.throws(() => checkHitProof(hit, proof, tree.fragmentRoot, q, "hamming"), /dimension \(bits\) must be given/);
    // A query whose padding bits are set measures the same (they are not part of the vector).
    const dirty = Uint8Array.from(q);
    dirty[dirty.length - 1]! |= 0x0f;
    assert.equal(checkHitProof(hit, proof, tree.fragmentRoot, dirty, "hamming", BITS), undefined);
  });
});
