/**
 * Payloads (data/vectors.ts, data/hit-proof.ts): a vector's JSON payload is stored in chunk records
 * right after its record, never split from it across fragments, read back exactly, and proven with
 * the hit; a member that leaves the payload out, cuts it short or swaps in another record's fails
 * the proof. The index skips the chunks (they are not vectors) and keeps the records' positions.
 * Deletions: tombstone records list the deleted ids; a document lists them per tombstone fragment
 * and is refused unless the list rebuilds the fragment's committed root.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { LEAF_SIZE } from "../../../agents/data/constants.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { InvalidParameterError, ManifestError, VectorFileError, VectorIdError, VectorPayloadError } from "../../../agents/data/errors.js";
import { manifestCidOf } from "../../../agents/data/manifest.js";
import { buildHitProof, proofWindow, verifyHitProof, type HitProof } from "../../../agents/data/hit-proof.js";
import { buildFragmentTree, fragmentRoot, leafSiblings } from "../../../agents/data/merkle.js";
import { decodeVectorManifest, deletedIds, encodeVectorManifest, type VectorManifest } from "../../../agents/data/vector-manifest.js";
import { readPayloadFile, readVectorFile, readBitFile } from "../../../agents/data/vector-files.js";
import {
  canonicalDistance,
  firstTombstone,
  MAX_PAYLOAD_BYTES,
  MAX_VECTOR_ID,
  packBits,
  packRecords,
  packTombstones,
  packVectors,
  PAYLOAD_ID,
  payloadRecordCount,
  readPayload,
  recordSize,
  TOMBSTONE_ID,
  tombstoneIds,
  unpackFragment,
  type VectorRecord,
} from "../../../agents/data/vectors.js";
import { openVectorIndex } from "../../../agents/index/vector-index.js";

const DIM = 8; // 24-byte records: a payload of 100 bytes takes ceil(104 / 16) = 7 chunk records
const RS = recordSize(DIM);
const json = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v), "utf8");
const text = (b: Uint8Array | null): unknown => (b === null ? null : JSON.parse(Buffer.from(b).toString("utf8")));

function rows(n: number, payloadOf: (i: number) => unknown): Array<VectorRecord & { payload: Uint8Array | null }> {
  return Array.from({ length: n }, (_, i) => {
    const values = new Int16Array(DIM);
    for (let c = 0; c < DIM; c++) values[c] = ((i * 37 + c * 11) % 200) - 100;
    const p = payloadOf(i);
    return { id: 1000n + BigInt(i), values, payload: p === undefined ? null : json(p) };
  });
}

/** The byte offset of each vector record in a fragment (skipping chunks). */
function vectorPositions(bytes: Uint8Array): number[] {
  return unpackFragment(bytes, DIM)
    .map((r, p) => (r.id === PAYLOAD_ID ? -1 : p))
    .filter((p) => p >= 0);
}

describe("payloads: layout", () => {
  it("each payload follows its record as chunk records and reads back exactly", () => {
    const rs = rows(30, (i) => (i % 3 === 0 ? { title: `doc ${i}`, tags: ["a", "b"], n: i, text: "x".repeat(i * 5) } : undefined));
    const [bytes, more] = [...packRecords(rs, DIM, 1 << 16)];
    assert.equal(more, undefined);
    const positions = vectorPositions(bytes!);
    assert.equal(positions.length, 30);
    let expectChunks = 0;
    positions.forEach((p, i) => {
      const { payload, end } = readPayload(bytes!, p * RS, RS, bytes!.length);
      assert.deepEqual(text(payload), rs[i]!.payload === null ? null : text(rs[i]!.payload));
      const chunks = rs[i]!.payload === null ? 0 : payloadRecordCount(rs[i]!.payload!.length, 2 * DIM);
      expectChunks += chunks;
      if (i + 1 < positions.length) assert.equal(positions[i + 1], p + 1 + chunks, `row ${i}'s chunks sit right after it`);
      assert.equal(end, chunks > 0 ? (p + 1 + chunks) * RS : p === positions.at(-1) ? (p + 1) * RS : (p + 1) * RS + 8);
    });
    assert.equal(bytes!.length, (30 + expectChunks) * RS);
  });

  it("a record and its payload are never split across fragments", () => {
    const payload = { s: "y".repeat(60) }; // 68 bytes of JSON: 5 chunks, 6 records with its vector
    const rs = rows(10, () => payload);
    const fragments = [...packRecords(rs, DIM, 8 * RS)]; // 8 records a fragment: one vector + payload each
    assert.equal(fragments.length, 10);
    for (const f of fragments) {
      assert.equal(f.length, 6 * RS);
      assert.deepEqual(text(readPayload(f, 0, RS, f.length).payload), payload);
    }
    assert.throws(() => [...packRecords(rows(1, () => ({ s: "z".repeat(200) })), DIM, 8 * RS)], (e: unknown) => e instanceof VectorPayloadError && e.context.row === 0);
  });

  it("payload sizes and the JSON they must be: none takes no record, null is not an object", () => {
    assert.equal(payloadRecordCount(0, 16), 0);
    assert.equal(payloadRecordCount(1, 16), 1);
    assert.equal(payloadRecordCount(12, 16), 1);
    assert.equal(payloadRecordCount(13, 16), 2);
    for (const bad of ["null", "[1]", "7", '"s"']) {
      assert.throws(() => [...packRecords([{ id: 1n, values: new Int16Array(DIM), payload: Buffer.from(bad) }], DIM, 1 << 16)], (e: unknown) => e instanceof VectorPayloadError && /is not a JSON object/.test(e.message), bad);
    }
  });

  it("readPayload refuses malformed chunks by reason: a missing chunk, a length out of range, chunks or the next id past the end", () => {
    const payload = { s: "q".repeat(30) }; // 38 bytes of JSON: 42 with the length, 3 chunks of 16
    const [bytes] = [...packRecords([...rows(1, () => payload), ...rows(1, () => undefined)], DIM, 1 << 16)];
    assert.equal(bytes!.length, 5 * RS);
    assert.deepEqual(readPayload(bytes!, 0, RS, bytes!.length), { payload: Uint8Array.from(json(payload)), end: 4 * RS });
    const refused = (b: Uint8Array, size: number, name: string, reason: string): void => {
      assert.throws(() => readPayload(b, 0, RS, size), (e: unknown) => {
        assert.ok(e instanceof InvalidParameterError, String(e));
        assert.deepEqual([e.context.name, e.context.reason], [name, reason]);
        return true;
      });
    };
    // The third chunk record's id is a vector's: its bytes are not the payload's.
    const missing = Buffer.from(bytes!);
    missing.writeBigUInt64BE(77n, 3 * RS);
    refused(missing, missing.length, "payload", "a chunk record is missing");
    // The length field (first 4 bytes of the first chunk's vector bytes) out of [1, 4096].
    for (const length of [0, MAX_PAYLOAD_BYTES + 1, 2 ** 32 - 1]) {
      const bad = Buffer.from(bytes!);
      bad.writeUInt32BE(length, RS + 8);
      refused(bad, bad.length, "payload", `a payload length must be in [1, ${MAX_PAYLOAD_BYTES}]`);
    }
    // Exactly 4096 is a length: its chunks would go on where the next vector's record is, or past
    // the fragment when it ends there.
    const most = Buffer.from(bytes!);
    most.writeUInt32BE(MAX_PAYLOAD_BYTES, RS + 8);
    refused(most, most.length, "payload", "a chunk record is missing");
    refused(most, 4 * RS, "payload", "its chunks run past the fragment");
    // The fragment (size) or the bytes given end inside the chunks.
    refused(bytes!, 3 * RS, "payload", "its chunks run past the fragment");
    refused(bytes!.subarray(0, 3 * RS), bytes!.length, "payload", "its chunks run past the fragment");
    assert.deepEqual(readPayload(bytes!.subarray(0, 4 * RS), 0, RS, bytes!.length).end, 4 * RS, "the chunks themselves suffice");
    // Bytes that end before the next record's id.
    refused(bytes!.subarray(0, RS + 7), bytes!.length, "bytes", `the next record's id ends at byte ${RS + 8}`);
    // The last record: nothing follows it in the fragment, so no payload and nothing more to read.
    assert.deepEqual(readPayload(bytes!, 4 * RS, RS, bytes!.length), { payload: null, end: 5 * RS });
  });

  it("payloads round trip in Hamming Magus whose vectors are narrower than the 4-byte length (1, 2, 3 and 5 bytes)", () => {
    for (const dim of [8, 16, 24, 40]) {
      const vb = dim / 8;
      const rs = recordSize(dim, "hamming");
      const records = [0, 1, 2].map((i) => ({ id: BigInt(i), values: new Uint8Array(vb).fill(i + 1), payload: i === 1 ? null : json({ i, s: "p".repeat(i * 9) }) }));
      const [bytes] = [...packRecords(records, dim, 1 << 16, "hamming")];
      let at = 0;
      for (const r of records) {
        const { payload, end } = readPayload(bytes!, at, rs, bytes!.length);
        assert.deepEqual(payload === null ? null : text(payload), r.payload === null ? null : text(r.payload), `dim ${dim}, id ${r.id}`);
        const chunks = r.payload === null ? 0 : payloadRecordCount(r.payload.length, vb);
        assert.equal(chunks, r.payload === null ? 0 : Math.ceil((4 + r.payload.length) / vb));
        at += (1 + chunks) * rs;
        assert.equal(end, chunks > 0 ? at : at === bytes!.length ? at : at + 8, `dim ${dim}, id ${r.id}: end`);
      }
      assert.equal(at, bytes!.length);
    }
  });

  it("refuses payloads that are not JSON objects or exceed the limit, naming the row; control ids are not vector ids", () => {
    const big = { s: "w".repeat(MAX_PAYLOAD_BYTES) };
    for (const [bad, why] of [
      [json([1, 2]), /not a JSON object/],
      [json("str"), /not a JSON object/],
      [Buffer.from("{oops"), /not JSON text/],
      [json(big), /above the 4096-byte limit/],
    ] as const) {
      assert.throws(
        () => [...packVectors([{ id: 1, vector: new Array(DIM).fill(0.1) }, { id: 2, vector: new Array(DIM).fill(0.1), payload: bad }], DIM)],
        (e: unknown) => e instanceof VectorPayloadError && e.context.row === 1 && why.test(e.message),
      );
    }
    assert.throws(() => [...packVectors([{ id: MAX_VECTOR_ID + 1n, vector: new Array(DIM).fill(0) }], DIM)], VectorIdError);
    assert.equal([...packVectors([{ id: MAX_VECTOR_ID, vector: new Array(DIM).fill(0) }], DIM)].length, 1);
  });
});

describe("payloads: proven with the hit", () => {
  const rs = rows(60, (i) => (i % 2 === 0 ? { i, label: `row ${i}`, pad: "p".repeat((i * 97) % 600) } : undefined));
  const [bytes] = [...packRecords(rs, DIM, 1 << 16)];
  const tree = buildFragmentTree(bytes!);
  const positions = vectorPositions(bytes!);
  const query = Int16Array.from({ length: DIM }, (_, c) => c * 3 - 10);
  const hitOf = (i: number) => ({ id: rs[i]!.id, distance: canonicalDistance("l2", query, rs[i]!.values), fragment: 0, position: positions[i]! });
  const verify = (i: number, proof: HitProof) => verifyHitProof(hitOf(i), proof, tree.fragmentRoot, query, "l2");

  it("an honest proof gives the record's own payload, or null", () => {
    assert.ok(bytes!.length > 4 * LEAF_SIZE, "payloads straddle leaves");
    for (let i = 0; i < rs.length; i++) {
      const checked = verify(i, buildHitProof(bytes!, tree, positions[i]!, DIM));
      assert.equal(checked.error, undefined, `row ${i}`);
      assert.deepEqual(text(checked.payload), text(rs[i]!.payload), `row ${i}`);
    }
  });

  it("attack: a member that leaves the payload out, cuts it short, pads the proof or edits it is caught", () => {
    let tested = 0;
    for (let i = 0; i < rs.length; i += 2) {
      const proof = buildHitProof(bytes!, tree, positions[i]!, DIM);
      const n = proof.leaves.length / LEAF_SIZE;
      // Only the record's own leaves (as a proof looked before payloads): the payload is withheld.
      const recordLeaves = Math.floor(((positions[i]! + 1) * RS - 1) / LEAF_SIZE) - Math.floor((positions[i]! * RS) / LEAF_SIZE) + 1;
      if (n === recordLeaves) continue; // the payload ends in the record's last leaf
      tested++;
      const depth = proof.siblings.length / n / 32;
      const cut = { size: proof.size, leaves: proof.leaves.subarray(0, recordLeaves * LEAF_SIZE), siblings: proof.siblings.subarray(0, recordLeaves * depth * 32) };
      assert.match(verify(i, cut).error!, /do not give its payload|take \d+/, `row ${i}: payload left out`);
    }
    assert.ok(tested >= 5, `several payloads straddle leaves (${tested})`);
    // An extra leaf past what decides the payload is refused too: the proof's extent is fixed.
    const p1 = buildHitProof(bytes!, tree, positions[1]!, DIM);
    const n1 = p1.leaves.length / LEAF_SIZE;
    const next = Math.floor((positions[1]! * RS) / LEAF_SIZE) + n1;
    const extra = Buffer.alloc(LEAF_SIZE);
    extra.set(bytes!.subarray(next * LEAF_SIZE, Math.min((next + 1) * LEAF_SIZE, bytes!.length)));
    const padded = { size: p1.size, leaves: Buffer.concat([p1.leaves, extra]), siblings: Buffer.concat([p1.siblings, ...leafSiblings(tree, next)]) };
    assert.match(verify(1, padded).error!, /leaves, record \d+ and what decides its payload take/);
    // Editing a payload byte breaks its leaf's path.
    const p0 = buildHitProof(bytes!, tree, positions[0]!, DIM);
    const edited = Buffer.from(p0.leaves);
    edited[positions[0]! * RS + RS + 8 + 6] ^= 0x01;
    assert.match(verify(0, { ...p0, leaves: edited }).error!, /does not prove/);
  });

  it("a proof built from the record's proof window alone is the whole fragment's, up to the largest payload", () => {
    const same = (whole: HitProof, part: HitProof, what: string): void => {
      assert.equal(part.size, whole.size, what);
      assert.ok(part.leaves.equals(whole.leaves) && part.siblings.equals(whole.siblings), what);
    };
    const windowed = (fragment: Uint8Array, fragmentTree: typeof tree, position: number): HitProof => {
      const { offset, length } = proofWindow(position, DIM, fragment.length);
      assert.equal(offset % LEAF_SIZE, 0, "the window starts on a leaf");
      assert.ok(offset + length === fragment.length || length % LEAF_SIZE === 0, "and ends on one, or at the fragment's end");
      return buildHitProof(fragment.subarray(offset, offset + length), fragmentTree, position, DIM, "l2", offset);
    };
    for (let i = 0; i < rs.length; i++) same(buildHitProof(bytes!, tree, positions[i]!, DIM), windowed(bytes!, tree, positions[i]!), `row ${i}`);
    // Payloads of MAX_PAYLOAD_BYTES (257 chunk records of 24 bytes after their record), between plain rows.
    const big = rows(9, (i) => (i % 3 === 1 ? { p: "x".repeat(MAX_PAYLOAD_BYTES - 8) } : undefined));
    assert.equal(big[1]!.payload!.length, MAX_PAYLOAD_BYTES);
    const [fragment] = [...packRecords(big, DIM, 1 << 16)];
    const bigTree = buildFragmentTree(fragment!);
    const at = vectorPositions(fragment!);
    for (let i = 0; i < big.length; i++) {
      const part = windowed(fragment!, bigTree, at[i]!);
      same(buildHitProof(fragment!, bigTree, at[i]!, DIM), part, `row ${i} of the largest payloads`);
      const q = Int16Array.from({ length: DIM }, (_, c) => c);
      const checked = verifyHitProof({ id: big[i]!.id, distance: canonicalDistance("l2", q, big[i]!.values), fragment: 0, position: at[i]! }, part, bigTree.fragmentRoot, q, "l2");
      assert.equal(checked.error, undefined, `row ${i}`);
      assert.deepEqual(text(checked.payload), text(big[i]!.payload), `row ${i}'s payload`);
    }
    // Neither a window from another offset nor a cut fragment passes for the whole.
    assert.throws(() => buildHitProof(bytes!.subarray(LEAF_SIZE), tree, positions[0]!, DIM, "l2", LEAF_SIZE), /are not the proof window of record 0 \(\d+ bytes at offset 0\)/);
    const w = proofWindow(positions[0]!, DIM, bytes!.length);
    assert.throws(() => buildHitProof(bytes!.subarray(0, w.length - 1), tree, positions[0]!, DIM, "l2", 0), /are not the proof window/, "a window cut short");
    assert.throws(() => buildHitProof(bytes!.subarray(0, bytes!.length - 1), tree, positions[0]!, DIM), /built for \d+ bytes, the fragment has/);
  });

  it("attack: another record's payload cannot be attached (the chunks after a record are its own)", () => {
    // Row 1 has no payload; row 2's proof carries a payload. Claiming row 2's chunks for row 1
    // means proving row 1 with leaves that do not follow it: the position fixes where they start.
    const p2 = buildHitProof(bytes!, tree, positions[2]!, DIM);
    const checked = verify(1, p2);
    assert.ok(checked.error !== undefined || checked.payload === null, "row 1 never gets row 2's payload");
    assert.deepEqual(verify(1, buildHitProof(bytes!, tree, positions[1]!, DIM)).payload, null);
  });
});

describe("payloads: index and files", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it("the index skips chunk records and answers with the records' true positions", async () => {
    const dir = await mkdtemp(join(tmpdir(), "muri-payload-index-"));
    dirs.push(dir);
    const rs = rows(40, (i) => (i % 4 === 0 ? { n: i, pad: "q".repeat(i) } : undefined));
    const [bytes] = [...packRecords(rs, DIM, 1 << 16)];
    const positions = vectorPositions(bytes!);
    const index = await openVectorIndex({ dir, dim: DIM, metric: "l2" });
    try {
      assert.equal(await index.addFragment(0, bytes!), 40, "40 vectors, not the chunks");
      for (const exact of [true, false]) {
        const hits = index.search(rs[12]!.values, 40, exact ? { exact: true } : { ef: 200 });
        assert.equal(hits.length, 40);
        for (const h of hits) {
          const row = Number(h.id - 1000n);
          assert.ok(row >= 0 && row < 40, `id ${h.id} is a vector's`);
          assert.equal(h.position, positions[row], `id ${h.id} at its record's position`);
        }
        assert.equal(hits[0]!.id, rs[12]!.id);
      }
    } finally {
      await index.close();
    }
  });

  it("reads payloads from .jsonl lines and payload files, naming the line of a bad one", async () => {
    const dir = await mkdtemp(join(tmpdir(), "muri-payload-files-"));
    dirs.push(dir);
    const f = join(dir, "v.jsonl");
    await writeFile(f, ['{"id":1,"vector":[0.5,1],"payload":{"title":"a"}}', '{"id":2,"vector":[0.25,1]}', '{"id":3,"vector":[1,1],"payload":null}'].join("\n"));
    const file = await readVectorFile(f);
    assert.deepEqual(file.payloads?.map(text), [{ title: "a" }, null, null]);
    await writeFile(f, '{"id":1,"vector":[0.5,1]}\n');
    assert.equal((await readVectorFile(f)).payloads, null, "no payloads: null");
    await writeFile(f, '{"id":1,"vector":[0.5,1]}\n{"id":2,"vector":[0.5,1],"payload":[1]}\n');
    await assert.rejects(readVectorFile(f), (e: unknown) => e instanceof VectorFileError && e.context.kind === "payload" && e.context.line === 2 && /not a JSON object/.test(e.message));
    await writeFile(f, `{"id":1,"vector":[0.5,1],"payload":{"s":"${"x".repeat(MAX_PAYLOAD_BYTES)}"}}\n`);
    await assert.rejects(readVectorFile(f), (e: unknown) => e instanceof VectorFileError && e.context.line === 1 && /above the 4096-byte limit/.test(e.message));
    const bits = join(dir, "b.jsonl");
    await writeFile(bits, '{"id":7,"vector":[1,0,1],"payload":{"k":1}}\n');
    const bf = await readBitFile(bits, 3);
    assert.deepEqual(bf.payloads?.map(text), [{ k: 1 }]);
    assert.deepEqual([...bf.bits], [...packBits([1, 0, 1])]);

    const side = join(dir, "p.jsonl");
    await writeFile(side, '{"a":1}\n\nnull\n{"b":[2]}\n');
    assert.deepEqual((await readPayloadFile(side, 3)).map(text), [{ a: 1 }, null, { b: [2] }]);
    await assert.rejects(readPayloadFile(side, 2), (e: unknown) => e instanceof VectorFileError && e.context.line === 4 && /more payloads than the 2 vectors/.test(e.message));
    await assert.rejects(readPayloadFile(side, 4), (e: unknown) => e instanceof VectorFileError && /3 payloads for 4 vectors/.test(e.message));
    await writeFile(side, '{"a":1}\n7\n');
    await assert.rejects(readPayloadFile(side, 2), (e: unknown) => e instanceof VectorFileError && e.context.line === 2 && /not a JSON object/.test(e.message));
  });
});

describe("tombstones: deletion records and the document that lists them", () => {
  const dim = 8; // 16 bytes of vector: two ids per tombstone record
  const ids = [5n, 9n, 1234567890123n, 0n, MAX_VECTOR_ID];
  const vectorBytes = [...packVectors([{ id: 5, vector: new Array(dim).fill(0.5) }, { id: 9, vector: new Array(dim).fill(-0.5) }], dim)][0]!;
  const entry = (bytes: Buffer, deleted?: bigint[]) => ({
    cid: fragmentCid(bytes),
    root: fragmentRoot(bytes).toString("hex"),
    size: bytes.length,
    count: bytes.length / recordSize(dim),
    ...(deleted !== undefined ? { deleted } : {}),
  });

  it("packs the ids into tombstone records, 0xff-padded, and reads them back; the index skips them", async () => {
    const [frag, more] = packTombstones(ids, dim);
    assert.equal(more, undefined);
    assert.equal(frag!.length, 3 * recordSize(dim), "5 ids at 2 a record");
    assert.deepEqual(tombstoneIds(frag!, dim), ids);
    assert.ok(unpackFragment(frag!, dim).every((r) => r.id === TOMBSTONE_ID));
    assert.equal(frag!.subarray(frag!.length - 8).toString("hex"), "ff".repeat(8), "the unused slot is padding");
    assert.deepEqual(packTombstones(ids, dim, "l2", 2 * recordSize(dim)).map((f) => tombstoneIds(f, dim)), [ids.slice(0, 4), ids.slice(4)], "split over fragments");
    assert.deepEqual(
      packTombstones(ids, dim, "l2", 2 * recordSize(dim)).map((f) => f.length),
      [2 * recordSize(dim), recordSize(dim)],
      "the last fragment holds only the records it needs",
    );
    assert.throws(() => packTombstones([MAX_VECTOR_ID + 1n], dim), VectorIdError);
    // A bad id is named by its place in the list, also in a later record.
    assert.throws(() => packTombstones([1n, 2n, 3n, MAX_VECTOR_ID + 1n], dim), (e: unknown) => e instanceof VectorIdError && e.context.row === 3);
    assert.throws(() => packTombstones([1n], 3), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "dim" && /holds no 8-byte id: vectors cannot be deleted/.test(e.message), "a 6-byte vector has no room for an id");
    assert.equal(tombstoneIds(packTombstones([7n], 64, "hamming")[0]!, 64, "hamming")[0], 7n, "a Hamming Magu of 64 bits");
    const dir = await mkdtemp(join(tmpdir(), "muri-tombstone-index-"));
    const index = await openVectorIndex({ dir, dim, metric: "l2" });
    try {
      assert.equal(await index.addFragment(0, frag!), 0, "no vectors in a tombstone fragment");
    } finally {
      await index.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("finds a tombstone record hidden among vectors (what a member refuses to acknowledge)", () => {
    const withPayload = [...packVectors([{ id: 5, vector: new Array(dim).fill(0.5), payload: json({ a: 1 }) }, { id: 9, vector: new Array(dim).fill(-0.5) }], dim)][0]!;
    assert.equal(firstTombstone(vectorBytes, dim), -1);
    assert.equal(firstTombstone(withPayload, dim), -1, "payload chunks are no tombstones");
    const tomb = packTombstones([77n], dim)[0]!;
    const hidden = Buffer.concat([withPayload, tomb]);
    assert.equal(firstTombstone(hidden, dim), withPayload.length / recordSize(dim));
    assert.equal(firstTombstone(tomb, dim), 0);
  });

  it("a document lists each tombstone fragment's ids, bound to its root", () => {
    const tomb = packTombstones(ids, dim)[0]!;
    const m: VectorManifest = { maguId: 3n, dim, metric: "l2", fragments: [entry(vectorBytes), entry(tomb, ids)] };
    const doc = encodeVectorManifest(m);
    assert.match(doc.bytes.toString(), /"count":3,"deleted":\["5","9","1234567890123","0","18446744073709551359"\],"root"/);
    const back = decodeVectorManifest(doc.bytes, doc.cid);
    assert.deepEqual(back.fragments[1]!.deleted, ids);
    assert.equal(back.fragments[0]!.deleted, undefined);
    assert.deepEqual([...deletedIds(back)], ids);
    // The attack: an owner (or a forged document) lists other ids than the fragment deletes, so
    // members would honour a list the chain's root does not commit. Refused.
    for (const lie of [[5n, 9n], [5n, 9n, 1234567890123n, 0n, 6n], [...ids, 7n]]) {
      assert.throws(() => encodeVectorManifest({ ...m, fragments: [entry(vectorBytes), { ...entry(tomb), deleted: lie }] }), (e: unknown) => e instanceof ManifestError && /not its tombstones/.test(e.message));
    }
    assert.throws(() => encodeVectorManifest({ ...m, fragments: [{ ...entry(vectorBytes), deleted: [5n] }] }), /not its tombstones/, "a vector fragment is no tombstone fragment");
    assert.throws(() => encodeVectorManifest({ ...m, fragments: [entry(vectorBytes), { ...entry(tomb), deleted: [] }] }), /at least one id/);
    // Edited in the bytes (and the CID recomputed): decoding rebuilds the fragment and refuses it.
    const edited = Buffer.from(doc.bytes.toString().replace('"9"', '"8"'));
    assert.throws(() => decodeVectorManifest(edited, manifestCidOf(edited)), /not its tombstones/);
  });
});
