/**
 * The vector index document's guards (data/vector-manifest.ts), one by one: a member or validator
 * takes a document from a client and must refuse every malformed one with the field at fault, and
 * never accept one whose fragments, ids or scale are not what its bytes say. Each refusal is
 * checked by its exact reason and field, at the edge of what is accepted.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";
import { fragmentCid } from "../../../agents/data/cid.js";
import { RAW_CODEC } from "../../../agents/data/constants.js";
import { ManifestCidMismatchError, ManifestError } from "../../../agents/data/errors.js";
import { manifestCidOf } from "../../../agents/data/manifest.js";
import { fragmentRoot } from "../../../agents/data/merkle.js";
import {
  decodeVectorManifest,
  deletedIds,
  encodeVectorManifest,
  MAX_VECTOR_MANIFEST_FRAGMENTS,
  METRIC_BY_CODE,
  METRIC_CODE,
  vectorRows,
  type VectorFragmentInfo,
  type VectorManifest,
} from "../../../agents/data/vector-manifest.js";
import { CONTROL_ID_MIN, packRecords, packTombstones, recordSize, VECTOR_SCALE_EXP_MAX, VECTOR_SCALE_EXP_MIN } from "../../../agents/data/vectors.js";

const DIM = 8;
const RS = recordSize(DIM);

/** A fragment of `count` records of dimension 8 (l2), ids from `first`. */
function dataFragment(count: number, first = 0): VectorFragmentInfo {
  const records = Array.from({ length: count }, (_, i) => ({ id: BigInt(first + i), values: Int16Array.from({ length: DIM }, (_, j) => (i * 7 + j * 3) % 200) }));
  const [bytes] = [...packRecords(records, DIM, count * RS)];
  return { cid: fragmentCid(bytes!), root: fragmentRoot(bytes!).toString("hex"), size: bytes!.length, count };
}

/** The tombstone fragment deleting `ids`. */
function tombstoneFragment(ids: bigint[]): VectorFragmentInfo {
  const [bytes] = packTombstones(ids, DIM, "l2");
  return { cid: fragmentCid(bytes!), root: fragmentRoot(bytes!).toString("hex"), size: bytes!.length, count: bytes!.length / RS, deleted: ids };
}

const BASE: VectorManifest = { maguId: 7n, dim: DIM, metric: "l2", fragments: [dataFragment(3), dataFragment(2, 3)] };

/** Asserts `fn` throws a ManifestError with exactly `reason` and `field`. */
function refused(fn: () => unknown, reason: string | RegExp, field: string | undefined, what: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ManifestError, `${what}: ${String(err)}`);
    assert.equal(err.code, "ERR_MANIFEST_INVALID", what);
    if (typeof reason === "string") assert.equal(err.context.reason, reason, what);
    else assert.match(err.context.reason, reason, what);
    assert.equal(err.context.field, field, what);
    return true;
  });
}

/** `BASE` with its second fragment replaced by `f`. */
const withSecond = (f: Partial<VectorFragmentInfo>): VectorManifest => ({ ...BASE, fragments: [BASE.fragments[0]!, { ...BASE.fragments[1]!, ...f }] });

/** Bytes as a document and the CID they hash to (decoding checks the CID first). */
const decodeText = (text: string) => decodeVectorManifest(Buffer.from(text, "utf8"), manifestCidOf(Buffer.from(text, "utf8")));

describe("vector index document: what encoding refuses", () => {
  it("metric names and codes are MaguRegistry's", () => {
    assert.deepEqual(METRIC_BY_CODE, { 1: "l2", 2: "ip", 3: "cosine", 4: "hamming" });
    assert.deepEqual(METRIC_CODE, { l2: 1, ip: 2, cosine: 3, hamming: 4 });
  });

  it("the Magu id: an integer in [1, 2^256)", () => {
    for (const maguId of [1n, (1n << 256n) - 1n]) assert.equal(decodeVectorManifest(encodeVectorManifest({ ...BASE, maguId }).bytes, encodeVectorManifest({ ...BASE, maguId }).cid).maguId, maguId);
    for (const maguId of [0n, -1n, 1n << 256n, 5 as unknown as bigint]) refused(() => encodeVectorManifest({ ...BASE, maguId }), "must be a Magu id in [1, 2^256)", "magu", String(maguId));
  });

  it("the metric, and a scale only where records are quantized, within its range", () => {
    refused(() => encodeVectorManifest({ ...BASE, metric: "L2" as "l2" }), 'must be "l2", "ip", "cosine" or "hamming", got "L2"', "metric", "L2");
    const bits = { ...BASE, metric: "hamming" as const, dim: 128, fragments: [{ ...BASE.fragments[0]!, size: 3 * recordSize(128, "hamming") }] };
    refused(() => encodeVectorManifest({ ...bits, scaleExp: 7 }), "a Hamming Magu's bits are not quantized: it has no scale (leave scaleExp out)", "scaleExp", "hamming scale");
    for (const scaleExp of [VECTOR_SCALE_EXP_MIN, VECTOR_SCALE_EXP_MAX, 0]) assert.equal(decodeVectorManifest(encodeVectorManifest({ ...BASE, scaleExp }).bytes, encodeVectorManifest({ ...BASE, scaleExp }).cid).scaleExp, scaleExp);
    for (const scaleExp of [VECTOR_SCALE_EXP_MIN - 1, VECTOR_SCALE_EXP_MAX + 1, 7.5]) {
      refused(() => encodeVectorManifest({ ...BASE, scaleExp }), `must be an integer in [${VECTOR_SCALE_EXP_MIN}, ${VECTOR_SCALE_EXP_MAX}], got ${scaleExp}`, "scaleExp", String(scaleExp));
    }
  });

  it("1 to 65536 fragments", () => {
    refused(() => encodeVectorManifest({ ...BASE, fragments: [] }), `must list 1..${MAX_VECTOR_MANIFEST_FRAGMENTS} fragments, got 0`, "fragments", "none");
    const f = BASE.fragments[0]!;
    refused(() => encodeVectorManifest({ ...BASE, fragments: Array(MAX_VECTOR_MANIFEST_FRAGMENTS + 1).fill(f) }), `must list 1..${MAX_VECTOR_MANIFEST_FRAGMENTS} fragments, got ${MAX_VECTOR_MANIFEST_FRAGMENTS + 1}`, "fragments", "too many");
    assert.equal(encodeVectorManifest({ ...BASE, fragments: Array(MAX_VECTOR_MANIFEST_FRAGMENTS).fill(f) }).bytes.length > 0, true, "exactly the most");
    assert.equal(encodeVectorManifest({ ...BASE, fragments: [f] }).bytes.length > 0, true, "one");
  });

  it("each fragment: a raw fragment-root CID, the root it carries in lowercase hex, a positive count, its size", () => {
    const f = "fragments[1]";
    const sha = CID.createV1(RAW_CODEC, Digest.create(sha256.code, new Uint8Array(32)));
    refused(() => encodeVectorManifest(withSecond({ cid: sha })), "cid must be a raw fragment-root CID (docs/ENCODING.md § CIDs)", f, "a sha2-256 raw CID");
    refused(() => encodeVectorManifest(withSecond({ cid: manifestCidOf(Buffer.from("{}")) })), "cid must be a raw fragment-root CID (docs/ENCODING.md § CIDs)", f, "a DAG-JSON CID");
    const root = BASE.fragments[1]!.root;
    for (const bad of [root.toUpperCase(), root.slice(1), `0${root}`, `${root}0`, `x${root.slice(1)}`]) {
      refused(() => encodeVectorManifest(withSecond({ root: bad })), "root must be 64 lowercase hex digits", f, bad);
    }
    refused(() => encodeVectorManifest(withSecond({ root: BASE.fragments[0]!.root })), "root must be the fragment root its cid carries", f, "another fragment's root");
    for (const count of [0, -1, 1.5, Number.NaN]) refused(() => encodeVectorManifest(withSecond({ count })), "count must be a positive integer", f, String(count));
    refused(() => encodeVectorManifest(withSecond({ count: 3 })), `size ${2 * RS} is not count 3 x record size ${RS}`, f, "size");
  });

  it("a tombstone fragment: vector ids whose tombstones are exactly its bytes", () => {
    const f = "fragments[1]";
    const tomb = tombstoneFragment([4n, 9n, 0n]);
    const doc = { ...BASE, fragments: [BASE.fragments[0]!, tomb] };
    const back = decodeVectorManifest(encodeVectorManifest(doc).bytes, encodeVectorManifest(doc).cid);
    assert.deepEqual(back.fragments[1]!.deleted, [4n, 9n, 0n]);
    assert.deepEqual(deletedIds(back), new Set([4n, 9n, 0n]));
    assert.equal(vectorRows(back), 3 + tomb.count);
    refused(() => encodeVectorManifest(withSecond({ ...tomb, deleted: [] })), "deleted must list at least one id", f, "none");
    for (const id of [-1n, CONTROL_ID_MIN, "4" as unknown as bigint]) refused(() => encodeVectorManifest(withSecond({ ...tomb, deleted: [4n, id, 0n] })), `deleted id ${String(id)} is not a vector id`, f, String(id));
    const notTheRoot = "deleted does not give the fragment's root: the ids are not its tombstones";
    refused(() => encodeVectorManifest(withSecond({ ...tomb, deleted: [4n, 9n, 1n] })), notTheRoot, f, "another id");
    refused(() => encodeVectorManifest(withSecond({ ...tomb, deleted: [9n, 4n, 0n] })), notTheRoot, f, "another order");
    // Ids for two fragments of this size: the first of them is not enough, even with its root.
    const first = tombstoneFragment([4n, 9n]);
    refused(() => encodeVectorManifest(withSecond({ ...first, deleted: [4n, 9n, 0n] })), notTheRoot, f, "more ids than the fragment holds");
  });

  it("vectorRows counts every record of every fragment", () => {
    assert.equal(vectorRows({ fragments: [] }), 0);
    assert.equal(vectorRows(BASE), 5);
    assert.deepEqual(deletedIds(BASE), new Set());
  });
});

describe("vector index document: what decoding refuses", () => {
  const good = encodeVectorManifest(BASE);
  const text = good.bytes.toString("utf8");
  /** The document's JSON with `edit` applied, re-serialised (decoding checks fields before canonical form). */
  const edited = (edit: (o: Record<string, unknown>) => void): string => {
    const o = JSON.parse(text) as Record<string, unknown>;
    edit(o);
    return JSON.stringify(o);
  };

  it("bytes that do not hash to the CID", () => {
    assert.throws(
      () => decodeVectorManifest(good.bytes, manifestCidOf(Buffer.from("{}"))),
      (err: unknown) => err instanceof ManifestCidMismatchError && err.code === "ERR_MANIFEST_CID_MISMATCH" && err.message.includes(good.cid.toString()),
    );
    const back = decodeVectorManifest(good.bytes, good.cid);
    assert.deepEqual([back.maguId, back.dim, back.metric, back.scaleExp, back.fragments.map((f) => [f.cid.toString(), f.root, f.size, f.count])], [7n, DIM, "l2", 14, BASE.fragments.map((f) => [f.cid.toString(), f.root, f.size, f.count])]);
  });

  it("each field in turn, by name", () => {
    refused(() => decodeText("{"), "not JSON", undefined, "not JSON");
    refused(() => decodeText(edited((o) => (o.type = "muri/index"))), "not a vector index document", "type", "type");
    refused(() => decodeText(edited((o) => (o.version = 2))), "not a vector index document", "type", "version");
    for (const magu of [7, "0", "07", "7a", "a7", " 7", `1${"0".repeat(78)}`, undefined]) {
      refused(() => decodeText(edited((o) => (o.magu = magu))), "must be a decimal Magu id", "magu", String(magu));
    }
    assert.equal(decodeText(edited((o) => (o.magu = `1${"0".repeat(77)}`))).maguId, 10n ** 77n, "78 digits (below 2^256) are read");
    for (const dim of ["8", 8.5, undefined]) refused(() => decodeText(edited((o) => (o.dim = dim))), "must be an integer", "dim", String(dim));
    for (const fragments of [{}, "x", undefined]) refused(() => decodeText(edited((o) => (o.fragments = fragments))), "must be a list", "fragments", JSON.stringify(fragments));
    for (const f of [null, {}, { cid: null }, { cid: {} }, { cid: { "/": 5 } }]) {
      refused(() => decodeText(edited((o) => ((o.fragments as unknown[])[1] = f))), "cid link missing", "fragments[1]", JSON.stringify(f));
    }
    refused(() => decodeText(edited((o) => (((o.fragments as Array<{ cid: { "/": string } }>)[1]!.cid["/"] = "not a cid")))), "cid does not parse", "fragments[1]", "bad cid");
    for (const deleted of ["5", [5], ["05"], ["5a"], ["a5"], [" 5"], ["5", 5], [`1${"0".repeat(20)}`]]) {
      refused(() => decodeText(edited((o) => ((o.fragments as Array<Record<string, unknown>>)[1]!.deleted = deleted))), "deleted must be a list of decimal ids", "fragments[1]", JSON.stringify(deleted));
    }
    for (const scaleExp of ["7", 7.5]) refused(() => decodeText(edited((o) => (o.scaleExp = scaleExp))), "must be an integer", "scaleExp", String(scaleExp));
  });

  it("a document that is not in canonical form", () => {
    refused(() => decodeText(text.replace('"dim":8,', '"dim": 8,')), "not canonical", undefined, "a space");
    refused(() => decodeText(edited((o) => (o.scaleExp = 14))), "not canonical", undefined, "scaleExp 14 spelled out");
    refused(
      () =>
        decodeText(
          edited((o) => {
            const dim = o.dim;
            delete o.dim;
            o.dim = dim;
          }),
        ),
      "not canonical",
      undefined,
      "keys out of order",
    );
  });
});
