/**
 * The vector index document of a vector Magu: every fragment the Magu has committed, in fragment
 * order, with its CID, fragment root, size and record count. The client pushes a new one to the
 * members (and validators) after each appended batch; its fragment roots fold to the Magu root on
 * chain, which is how a receiver checks it (roles/shared/vector-service.ts).
 *
 * Canonical DAG-JSON (codec 0x0129), keys in byte order, no whitespace:
 * `{"dim":64,"fragments":[{"cid":{"/":"bafk…"},"count":7710,"root":"<64 hex>","size":1048560},…],
 *   "magu":"<decimal id>","metric":"l2","scaleExp":7,"type":"muri/vector-index","version":1}`
 * Decoding re-encodes and requires identical bytes and the CID.
 *
 * `scaleExp` is the exponent e of the Magu's quantization scale 2^e (data/vectors.ts), chosen by
 * its first batch and the same in every later document of the Magu. It is written only when it is
 * not 14: a document without it quantizes at 2^14 (every document written before the field
 * existed), and one that spells out 14 is not canonical. Members and validators check nothing
 * about it beyond its range (they compute on the int16 records); clients quantize later batches
 * and queries with it and scale distances back by 2^-2e. A Hamming Magu's document never has it
 * (its records are bits, not quantized floats).
 *
 * Row numbers (the default vector ids) continue across batches: the first record of a new batch
 * gets row Σ count of the fragments before it (payload chunks and tombstones count as records, so
 * default ids after them skip numbers; they stay unique).
 *
 * A tombstone fragment (a deletion, data/vectors.ts `packTombstones`) lists the ids it deletes:
 * `{"cid":…,"count":1,"deleted":["5","9"],"root":…,"size":…}`. Its bytes are a function of the
 * ids, so decoding rebuilds the fragment and requires its root: the list is bound to the root the
 * chain commits, and every member learns the Magu's deletions from the document without holding
 * the tombstone fragments. A deleted id is retired: no member returns it, a later batch may not
 * reuse it, and the contract judges any revealed entry with it false (docs/SEARCH.md).
 */
import { CID } from "multiformats/cid";
import { fragmentRootOfCid } from "./cid.js";
import { RAW_CODEC } from "./constants.js";
import { ManifestCidMismatchError, ManifestError } from "./errors.js";
import { manifestCidOf } from "./manifest.js";
import { fragmentRoot } from "./merkle.js";
import { isControlId, isVectorMetric, packTombstones, recordSize, VECTOR_METRICS_TEXT, VECTOR_SCALE_EXP, VECTOR_SCALE_EXP_MAX, VECTOR_SCALE_EXP_MIN, type VectorMetric } from "./vectors.js";

export const VECTOR_MANIFEST_TYPE = "muri/vector-index";
export const VECTOR_MANIFEST_VERSION = 1;
/** Most fragments one document lists. */
export const MAX_VECTOR_MANIFEST_FRAGMENTS = 1 << 16;

/** Metric names as the agents and the CLI spell them (MaguRegistry `Metric` 1 to 4). */
export type VectorMetricName = VectorMetric;
export const METRIC_BY_CODE: Readonly<Record<number, VectorMetricName>> = { 1: "l2", 2: "ip", 3: "cosine", 4: "hamming" };
export const METRIC_CODE: Readonly<Record<VectorMetricName, number>> = { l2: 1, ip: 2, cosine: 3, hamming: 4 };

export interface VectorFragmentInfo {
  readonly cid: CID;
  /** Fragment root, 64 lowercase hex digits. */
  readonly root: string;
  readonly size: number;
  /** Records in the fragment (size = count · recordSize(dim, metric)). */
  readonly count: number;
  /** A tombstone fragment's deleted ids, in its record order; absent for a fragment of vectors. */
  readonly deleted?: readonly bigint[];
}

export interface VectorManifest {
  readonly maguId: bigint;
  readonly dim: number;
  readonly metric: VectorMetricName;
  readonly fragments: readonly VectorFragmentInfo[];
  /** Exponent e of the Magu's quantization scale 2^e; absent: {@link VECTOR_SCALE_EXP} (14). */
  readonly scaleExp?: number;
}

/** The Magu's scale exponent a document states (14 when it has no `scaleExp`). */
export function manifestScaleExp(manifest: Pick<VectorManifest, "scaleExp">): number {
  return manifest.scaleExp ?? VECTOR_SCALE_EXP;
}

/** Every id the document's tombstone fragments delete. */
export function deletedIds(manifest: Pick<VectorManifest, "fragments">): Set<bigint> {
  const out = new Set<bigint>();
  for (const f of manifest.fragments) for (const id of f.deleted ?? []) out.add(id);
  return out;
}

/** Records in all fragments: the row number the next batch starts at. */
export function vectorRows(manifest: Pick<VectorManifest, "fragments">): number {
  let rows = 0;
  for (const f of manifest.fragments) rows += f.count;
  return rows;
}

function fail(reason: string, field?: string): never {
  throw new ManifestError(reason, field);
}

function validate(m: VectorManifest): void {
  if (typeof m.maguId !== "bigint" || m.maguId < 1n || m.maguId >= 1n << 256n) fail("must be a Magu id in [1, 2^256)", "magu");
  if (!isVectorMetric(m.metric)) fail(`must be ${VECTOR_METRICS_TEXT}, got ${JSON.stringify(m.metric)}`, "metric");
  const size = recordSize(m.dim, m.metric); // throws on a bad dim
  if (m.metric === "hamming" && manifestScaleExp(m) !== VECTOR_SCALE_EXP) fail("a Hamming Magu's bits are not quantized: it has no scale (leave scaleExp out)", "scaleExp");
  if (m.scaleExp !== undefined && (!Number.isSafeInteger(m.scaleExp) || m.scaleExp < VECTOR_SCALE_EXP_MIN || m.scaleExp > VECTOR_SCALE_EXP_MAX)) {
    fail(`must be an integer in [${VECTOR_SCALE_EXP_MIN}, ${VECTOR_SCALE_EXP_MAX}], got ${JSON.stringify(m.scaleExp)}`, "scaleExp");
  }
  if (m.fragments.length < 1 || m.fragments.length > MAX_VECTOR_MANIFEST_FRAGMENTS) {
    fail(`must list 1..${MAX_VECTOR_MANIFEST_FRAGMENTS} fragments, got ${m.fragments.length}`, "fragments");
  }
  m.fragments.forEach((f, i) => {
    const field = `fragments[${i}]`;
    const carried = f.cid.code === RAW_CODEC ? fragmentRootOfCid(f.cid) : undefined;
    if (carried === undefined) fail("cid must be a raw fragment-root CID (docs/ENCODING.md § CIDs)", field);
    if (!/^[0-9a-f]{64}$/.test(f.root)) fail("root must be 64 lowercase hex digits", field);
    if (carried!.toString("hex") !== f.root) fail("root must be the fragment root its cid carries", field);
    if (!Number.isSafeInteger(f.count) || f.count < 1) fail("count must be a positive integer", field);
    if (f.size !== f.count * size) fail(`size ${f.size} is not count ${f.count} x record size ${size}`, field);
    if (f.deleted !== undefined) {
      if (f.deleted.length < 1) fail("deleted must list at least one id", field);
      for (const id of f.deleted) if (typeof id !== "bigint" || id < 0n || isControlId(id)) fail(`deleted id ${String(id)} is not a vector id`, field);
      const rebuilt = packTombstones(f.deleted, m.dim, m.metric, f.size);
      if (rebuilt.length !== 1 || fragmentRoot(rebuilt[0]!).toString("hex") !== f.root) fail("deleted does not give the fragment's root: the ids are not its tombstones", field);
    }
  });
}

/** Canonical bytes and CID of a vector index document. */
export function encodeVectorManifest(m: VectorManifest): { bytes: Buffer; cid: CID } {
  validate(m);
  const scaleExp = manifestScaleExp(m);
  const fragments = m.fragments
    .map(
      (f) =>
        `{"cid":{"/":${JSON.stringify(f.cid.toString())}},"count":${f.count},` +
        `${f.deleted === undefined ? "" : `"deleted":[${f.deleted.map((id) => `"${id}"`).join(",")}],`}"root":${JSON.stringify(f.root)},"size":${f.size}}`,
    )
    .join(",");
  const text =
    `{"dim":${m.dim},"fragments":[${fragments}],"magu":${JSON.stringify(m.maguId.toString())},` +
    `"metric":${JSON.stringify(m.metric)},${scaleExp === VECTOR_SCALE_EXP ? "" : `"scaleExp":${scaleExp},`}"type":${JSON.stringify(VECTOR_MANIFEST_TYPE)},"version":${VECTOR_MANIFEST_VERSION}}`;
  const bytes = Buffer.from(text, "utf8");
  return { bytes, cid: manifestCidOf(bytes) };
}

/** Parses and checks a vector index document against its CID (ManifestError otherwise). */
export function decodeVectorManifest(bytes: Uint8Array, cid: CID): VectorManifest {
  const expected = cid.toString();
  const actual = manifestCidOf(bytes).toString();
  if (actual !== expected) throw new ManifestCidMismatchError(expected, actual);
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString("utf8")) as Record<string, unknown>;
  } catch {
    return fail("not JSON");
  }
  if (parsed.type !== VECTOR_MANIFEST_TYPE || parsed.version !== VECTOR_MANIFEST_VERSION) fail("not a vector index document", "type");
  if (typeof parsed.magu !== "string" || !/^[1-9][0-9]{0,77}$/.test(parsed.magu)) fail("must be a decimal Magu id", "magu");
  if (!Number.isSafeInteger(parsed.dim)) fail("must be an integer", "dim");
  if (!Array.isArray(parsed.fragments)) fail("must be a list", "fragments");
  const fragments = (parsed.fragments as unknown[]).map((raw, i): VectorFragmentInfo => {
    const f = raw as { cid?: { "/"?: unknown }; root?: unknown; size?: unknown; count?: unknown; deleted?: unknown };
    if (typeof f?.cid?.["/"] !== "string") fail("cid link missing", `fragments[${i}]`);
    let fragmentCid: CID;
    try {
      fragmentCid = CID.parse(f.cid["/"] as string);
    } catch {
      return fail("cid does not parse", `fragments[${i}]`);
    }
    let deleted: bigint[] | undefined;
    if (f.deleted !== undefined) {
      if (!Array.isArray(f.deleted) || !f.deleted.every((id) => typeof id === "string" && /^(0|[1-9][0-9]{0,19})$/.test(id))) fail("deleted must be a list of decimal ids", `fragments[${i}]`);
      deleted = (f.deleted as string[]).map((id) => BigInt(id));
    }
    return { cid: fragmentCid, root: String(f.root), size: Number(f.size), count: Number(f.count), ...(deleted !== undefined ? { deleted } : {}) };
  });
  if (parsed.scaleExp !== undefined && !Number.isSafeInteger(parsed.scaleExp)) fail("must be an integer", "scaleExp");
  const manifest: VectorManifest = {
    maguId: BigInt(parsed.magu),
    dim: parsed.dim as number,
    metric: parsed.metric as VectorMetricName,
    fragments,
    scaleExp: parsed.scaleExp === undefined ? VECTOR_SCALE_EXP : (parsed.scaleExp as number),
  };
  if (!Buffer.from(encodeVectorManifest(manifest).bytes).equals(Buffer.from(bytes))) fail("not canonical");
  return manifest;
}
