/**
 * File manifests: a one-node Merkle DAG in canonical DAG-JSON (codec 0x0129) linking a file's
 * shards by CID. Members and validators read manifests (to check shards against their CIDs and
 * roots, fold the roots to the Magu root, and repair), so a manifest holds in the clear only what
 * they need: the fragment size, encryption parameters (cipher, KDF, layout, fileId salt, MAC),
 * erasure parameters with the stripe count and the two shard sizes, and the stripe-major list of
 * shard CIDs with their fragment roots (for the Magu commitment). The file's size is sealed
 * (`sealedSize`, crypto.ts `sealFileSize`): only the client, which has the secret, opens it
 * (pipeline.ts `openManifest`).
 *
 * Canonical form: map keys sorted by their UTF-8 bytes, no whitespace, integers only, links as
 * {"/": "<cid base32>"}. Decoding re-encodes and requires identical bytes, and checks the bytes
 * against the manifest CID; anything else is a {@link ManifestError}.
 *
 * Layout rules (version 4; F = fragmentSize = shardSize - 28; k data, m parity shards per stripe):
 * - stripes = max(1, ceil(fileSize / (k·F)));
 * - every data shard is one sealed fragment that fills it exactly (nonce ‖ ciphertext ‖ tag,
 *   plaintext + 28 bytes): shard j < k of stripe s is fragment i = s·k + j;
 * - in stripes 0..stripes-2, fragment i is the file's bytes [i·F, (i+1)·F);
 * - the last stripe holds the rest, R = fileSize - (stripes-1)·k·F bytes, spread over its k
 *   fragments: its shard size is `lastShardSize` = bucket(ceil(R / k) + 28), the least power of
 *   two >= that and >= 4096 ({@link MIN_LAST_SHARD_SIZE}), capped at shardSize; fragment j of it
 *   holds the next P = lastShardSize - 28 bytes of the file (fewer, or none, at the end),
 *   zero-padded to P *before* sealing. The padding is encrypted, so no shard shows where the file
 *   ends, and a member learns R only to within a factor of two (R <= k·4068 at the floor);
 * - shards[s·(k+m) + j] is shard j of stripe s (j < k data, j >= k parity); global shard index =
 *   Magu fragment index for a blob Magu holding this one file (docs/ENCODING.md § Placement);
 * - each shard link is a fragment-root CID (data/cid.ts): its digest is the shard's fragment root,
 *   so the manifest carries one hash per shard and `roots` is read from the links.
 * Decoding (with the secret): open `sealedSize`, check the MAC, check that the size gives these
 * stripes and this lastShardSize, then cut each fragment's plaintext to the bytes the size leaves it.
 */
import { createHash } from "node:crypto";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";
import { FRAGMENT_SIZE, RAW_CODEC } from "./constants.js";
import { ENCRYPTION_ALG, ENCRYPTION_KDF, ENCRYPTION_OVERHEAD, FILE_ID_SIZE, SEALED_LAYOUT, SEALED_SIZE_LENGTH } from "./crypto.js";
import { ERASURE_ALG, MAX_DATA_SHARDS, MAX_PARITY_SHARDS, SHARD_ALIGNMENT } from "./erasure.js";
import { fragmentRootOfCid } from "./cid.js";
import { ManifestCidMismatchError, ManifestError } from "./errors.js";

/** Multicodec code of DAG-JSON. */
export const DAG_JSON_CODEC = 0x0129;
/** Manifest schema version. */
export const MANIFEST_VERSION = 4;
/** Value of the manifest's `type` field. */
export const MANIFEST_TYPE = "muri/file";
/** Smallest shard size of a last stripe (a smaller `shardSize` caps it). */
export const MIN_LAST_SHARD_SIZE = 4096;
/**
 * Value of `erasure.padding`: the last stripe's bytes spread over its k fragments, each zero-padded
 * inside its encryption to a power-of-two shard size (see the module comment).
 */
export const SHARD_PADDING = "sealed-pow2";

/** Why an older manifest version is refused. */
const OLD_VERSIONS: Readonly<Record<number, string>> = {
  1: "version 1 manifests carry no MAC: put the file again",
  2: "version 2 manifests show the file's exact size to every member: put the file again",
  3: "version 3 manifests address shards by sha2-256 beside a separate fragment root: put the file again",
};

function unsupportedVersion(version: unknown): ManifestError {
  const hint = typeof version === "number" ? OLD_VERSIONS[version] : undefined;
  return new ManifestError(`unsupported version ${String(version)}${hint !== undefined ? ` (${hint})` : ""}`, "version");
}

/** Encryption parameters (never the key). */
export interface ManifestEncryption {
  readonly alg: string;
  readonly kdf: string;
  readonly layout: string;
  /** 32-byte file id (HKDF salt), hex. */
  readonly fileId: string;
  /**
   * HMAC-SHA256 of the manifest (its canonical bytes with `mac` empty, {@link manifestMacBody})
   * under a key derived from the client's secret and `fileId`, hex (crypto.ts `manifestMac`).
   */
  readonly mac: string;
}

/** Erasure parameters and stripe layout. */
export interface ManifestErasure {
  readonly alg: string;
  readonly k: number;
  readonly m: number;
  readonly stripes: number;
  /** Shard size of every stripe but the last: fragmentSize + 28. */
  readonly shardSize: number;
  /** Shard size of the last stripe: shardSize, or a power of two in [4096, shardSize). */
  readonly lastShardSize: number;
  readonly padding: string;
}

/** A decoded, validated manifest: what members and validators see (no file size). */
export interface Manifest {
  readonly version: number;
  /** Plaintext bytes per fragment of a full stripe (shardSize - 28). */
  readonly fragmentSize: number;
  /** The file's size, sealed under the client's secret (crypto.ts `sealFileSize`), hex. */
  readonly sealedSize: string;
  readonly encryption: ManifestEncryption;
  readonly erasure: ManifestErasure;
  /** Shard CIDs, stripe-major. */
  readonly shards: readonly CID[];
  /** Fragment roots of the shards (hex), same order: the digests of the shard links (not encoded separately). */
  readonly roots: readonly string[];
}

/** max(1, ceil(fileSize / (k · fragmentSize))). */
export function stripesFor(fileSize: number, fragmentSize: number, k: number): number {
  return Math.max(1, Math.ceil(fileSize / (k * fragmentSize)));
}

/**
 * The shard size of a last stripe whose fragments need `needed` sealed bytes each: the least power of
 * two >= needed and >= {@link MIN_LAST_SHARD_SIZE}, capped at `shardSize`.
 */
export function bucketShardSize(needed: number, shardSize: number): number {
  let size = MIN_LAST_SHARD_SIZE;
  while (size < needed && size < shardSize) size *= 2;
  return Math.min(size, shardSize);
}

/** True when `size` can be the last stripe's shard size next to `shardSize` (a bucket). */
export function isLastShardSize(size: number, shardSize: number): boolean {
  if (size === shardSize) return true;
  if (!Number.isSafeInteger(size) || size < MIN_LAST_SHARD_SIZE || size > shardSize) return false;
  return 2 ** Math.round(Math.log2(size)) === size;
}

/** Shard size of stripe s. */
export function stripeShardSize(manifest: Pick<Manifest, "erasure">, stripe: number): number {
  return stripe === manifest.erasure.stripes - 1 ? manifest.erasure.lastShardSize : manifest.erasure.shardSize;
}

/**
 * The layout of a file of `fileSize` bytes (the encoder's, and the one a client checks an opened
 * manifest against): stripes, both shard sizes, and `rest`, the bytes of the last stripe.
 */
export function layoutFor(fileSize: number, fragmentSize: number, k: number): { stripes: number; shardSize: number; lastShardSize: number; rest: number } {
  const stripes = stripesFor(fileSize, fragmentSize, k);
  const shardSize = fragmentSize + ENCRYPTION_OVERHEAD;
  const rest = fileSize - (stripes - 1) * k * fragmentSize;
  return { stripes, shardSize, lastShardSize: bucketShardSize(Math.ceil(rest / k) + ENCRYPTION_OVERHEAD, shardSize), rest };
}

/**
 * Where fragment `index` (data shard `index % k` of stripe `index / k`) lies in a file of `fileSize`
 * bytes: its first byte `offset`, the `length` of file bytes it holds, and its plaintext `capacity`
 * (its shard size - 28; the bytes after `length` are zero padding).
 */
export function fragmentSpan(manifest: Pick<Manifest, "erasure">, fileSize: number, index: number): { offset: number; length: number; capacity: number } {
  const { k, shardSize } = manifest.erasure;
  const stripe = Math.floor(index / k);
  const capacity = stripeShardSize(manifest, stripe) - ENCRYPTION_OVERHEAD;
  const offset = stripe * k * (shardSize - ENCRYPTION_OVERHEAD) + (index % k) * capacity;
  return { offset, length: Math.max(0, Math.min(capacity, fileSize - offset)), capacity };
}

// ---- canonical DAG-JSON (the subset used here: maps, arrays, strings, safe integers, links) ----

/** A value of the canonical DAG-JSON subset. */
export type DagValue = string | number | CID | readonly DagValue[] | { readonly [key: string]: DagValue };

/** `value` as canonical DAG-JSON bytes (keys sorted by UTF-8 bytes, no whitespace, safe integers, links). */
export function canonicalDagJson(value: DagValue): Buffer {
  const out: string[] = [];
  encodeValue(value, out);
  return Buffer.from(out.join(""), "utf8");
}

function encodeValue(value: DagValue, out: string[]): void {
  if (typeof value === "string") out.push(JSON.stringify(value));
  else if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) throw new ManifestError(`${value} is not a safe integer`);
    out.push(String(value));
  } else if (value instanceof CID) out.push(`{"/":${JSON.stringify(value.toString())}}`);
  else if (Array.isArray(value)) {
    out.push("[");
    value.forEach((v, i) => {
      if (i > 0) out.push(",");
      encodeValue(v, out);
    });
    out.push("]");
  } else {
    const map = value as { readonly [key: string]: DagValue };
    const keys = Object.keys(map).sort((a, b) => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
    out.push("{");
    keys.forEach((key, i) => {
      if (i > 0) out.push(",");
      out.push(JSON.stringify(key), ":");
      encodeValue(map[key]!, out);
    });
    out.push("}");
  }
}

function toDag(manifest: Manifest): DagValue {
  return {
    type: MANIFEST_TYPE,
    version: manifest.version,
    fragmentSize: manifest.fragmentSize,
    sealedSize: manifest.sealedSize,
    encryption: { ...manifest.encryption },
    erasure: { ...manifest.erasure },
    shards: [...manifest.shards],
  };
}

/** The bytes a manifest's MAC covers: its canonical DAG-JSON with `encryption.mac` empty. */
export function manifestMacBody(manifest: Manifest): Buffer {
  const out: string[] = [];
  encodeValue(toDag({ ...manifest, encryption: { ...manifest.encryption, mac: "" } }), out);
  return Buffer.from(out.join(""), "utf8");
}

/** CID of manifest bytes: CIDv1(dag-json, sha2-256). */
export function manifestCidOf(bytes: Uint8Array): CID {
  return CID.createV1(DAG_JSON_CODEC, Digest.create(sha256.code, createHash("sha256").update(bytes).digest()));
}

/** Validates and encodes a manifest; returns its canonical bytes and CID. */
export function encodeManifest(manifest: Manifest): { bytes: Buffer; cid: CID } {
  validateManifest(manifest);
  const out: string[] = [];
  encodeValue(toDag(manifest), out);
  const bytes = Buffer.from(out.join(""), "utf8");
  return { bytes, cid: manifestCidOf(bytes) };
}

/**
 * Decodes manifest bytes. With `expected`, the bytes must hash to that CID
 * ({@link ManifestCidMismatchError}); the content must be valid and canonical ({@link ManifestError}).
 */
export function decodeManifest(bytes: Uint8Array, expected?: CID | string): Manifest {
  if (expected !== undefined) {
    let want: CID;
    try {
      want = typeof expected === "string" ? CID.parse(expected) : expected;
    } catch {
      throw new ManifestError(`expected CID ${String(expected)} does not parse`);
    }
    const got = manifestCidOf(bytes);
    if (!Buffer.from(got.bytes).equals(Buffer.from(want.bytes))) throw new ManifestCidMismatchError(want.toString(), got.toString());
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (err) {
    throw new ManifestError(`not UTF-8 JSON (${(err as Error).message})`);
  }
  const manifest = fromDag(parsed);
  const { bytes: canonical } = encodeManifest(manifest);
  if (!canonical.equals(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength))) throw new ManifestError("not in canonical DAG-JSON form");
  return manifest;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function exactKeys(obj: Record<string, unknown>, keys: readonly string[], field: string): void {
  const got = Object.keys(obj).sort();
  const want = [...keys].sort();
  if (got.length !== want.length || got.some((k, i) => k !== want[i])) {
    throw new ManifestError(`keys [${got.join(",")}], expected [${want.join(",")}]`, field);
  }
}

function int(obj: Record<string, unknown>, key: string, field: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = obj[key];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new ManifestError(`must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`, field);
  }
  return v;
}

function str(obj: Record<string, unknown>, key: string, field: string): string {
  const v = obj[key];
  if (typeof v !== "string") throw new ManifestError(`must be a string`, field);
  return v;
}

function fromDag(value: unknown): Manifest {
  if (!isRecord(value)) throw new ManifestError("top level is not a map");
  // An older version is named as such before its (different) keys are.
  if (typeof value.version === "number" && OLD_VERSIONS[value.version] !== undefined) throw unsupportedVersion(value.version);
  exactKeys(value, ["type", "version", "fragmentSize", "sealedSize", "encryption", "erasure", "shards"], "(root)");
  if (value.type !== MANIFEST_TYPE) throw new ManifestError(`must be ${MANIFEST_TYPE}`, "type");
  const enc = value.encryption;
  const era = value.erasure;
  if (!isRecord(enc)) throw new ManifestError("must be a map", "encryption");
  if (!isRecord(era)) throw new ManifestError("must be a map", "erasure");
  exactKeys(enc, ["alg", "kdf", "layout", "fileId", "mac"], "encryption");
  exactKeys(era, ["alg", "k", "m", "stripes", "shardSize", "lastShardSize", "padding"], "erasure");
  const shards = value.shards;
  if (!Array.isArray(shards)) throw new ManifestError("must be a list", "shards");
  const cids = shards.map((s, i) => {
    if (!isRecord(s) || Object.keys(s).length !== 1 || typeof s["/"] !== "string") throw new ManifestError("must be a link", `shards[${i}]`);
    try {
      return CID.parse(s["/"]);
    } catch {
      throw new ManifestError(`bad CID ${JSON.stringify(s["/"])}`, `shards[${i}]`);
    }
  });
  const manifest: Manifest = {
    version: int(value, "version", "version", 0),
    fragmentSize: int(value, "fragmentSize", "fragmentSize", 1),
    sealedSize: str(value, "sealedSize", "sealedSize"),
    encryption: {
      alg: str(enc, "alg", "encryption.alg"),
      kdf: str(enc, "kdf", "encryption.kdf"),
      layout: str(enc, "layout", "encryption.layout"),
      fileId: str(enc, "fileId", "encryption.fileId"),
      mac: str(enc, "mac", "encryption.mac"),
    },
    erasure: {
      alg: str(era, "alg", "erasure.alg"),
      k: int(era, "k", "erasure.k", 1),
      m: int(era, "m", "erasure.m", 0),
      stripes: int(era, "stripes", "erasure.stripes", 1),
      shardSize: int(era, "shardSize", "erasure.shardSize", 1),
      lastShardSize: int(era, "lastShardSize", "erasure.lastShardSize", 1),
      padding: str(era, "padding", "erasure.padding"),
    },
    shards: cids,
    roots: cids.map((cid) => fragmentRootOfCid(cid)?.toString("hex") ?? ""),
  };
  return manifest;
}

const HEX32 = /^[0-9a-f]{64}$/;
const SEALED_SIZE_HEX = new RegExp(`^[0-9a-f]{${2 * SEALED_SIZE_LENGTH}}$`);

/**
 * Throws {@link ManifestError} unless every field is present, in range and consistent. Checks what
 * a member can check without the secret; the sealed size is checked against the layout when a
 * client opens the manifest (pipeline.ts `openManifest`).
 */
export function validateManifest(manifest: Manifest): void {
  const { encryption: enc, erasure: era } = manifest;
  if (manifest.version !== MANIFEST_VERSION) throw unsupportedVersion(manifest.version);
  if (!Number.isSafeInteger(manifest.fragmentSize) || manifest.fragmentSize < 1) throw new ManifestError("must be a positive integer", "fragmentSize");
  if (typeof manifest.sealedSize !== "string" || !SEALED_SIZE_HEX.test(manifest.sealedSize)) {
    throw new ManifestError(`must be ${SEALED_SIZE_LENGTH} bytes of lowercase hex`, "sealedSize");
  }
  if (enc.alg !== ENCRYPTION_ALG) throw new ManifestError(`unsupported cipher ${enc.alg}`, "encryption.alg");
  if (enc.kdf !== ENCRYPTION_KDF) throw new ManifestError(`unsupported KDF ${enc.kdf}`, "encryption.kdf");
  if (enc.layout !== SEALED_LAYOUT) throw new ManifestError(`unsupported layout ${enc.layout}`, "encryption.layout");
  if (typeof enc.fileId !== "string" || enc.fileId.length !== FILE_ID_SIZE * 2 || !HEX32.test(enc.fileId)) {
    throw new ManifestError("must be 32 bytes of lowercase hex", "encryption.fileId");
  }
  if (typeof enc.mac !== "string" || !HEX32.test(enc.mac)) throw new ManifestError("must be 32 bytes of lowercase hex", "encryption.mac");
  if (era.alg !== ERASURE_ALG) throw new ManifestError(`unsupported erasure code ${era.alg}`, "erasure.alg");
  if (era.padding !== SHARD_PADDING) throw new ManifestError(`unsupported padding ${era.padding}`, "erasure.padding");
  if (!Number.isSafeInteger(era.k) || era.k < 1 || era.k > MAX_DATA_SHARDS) throw new ManifestError(`must be in [1, ${MAX_DATA_SHARDS}]`, "erasure.k");
  if (!Number.isSafeInteger(era.m) || era.m < 0 || era.m > MAX_PARITY_SHARDS) throw new ManifestError(`must be in [0, ${MAX_PARITY_SHARDS}]`, "erasure.m");
  if (!Number.isSafeInteger(era.stripes) || era.stripes < 1) throw new ManifestError("must be a positive integer", "erasure.stripes");
  const shardSize = manifest.fragmentSize + ENCRYPTION_OVERHEAD;
  if (era.shardSize !== shardSize) throw new ManifestError(`expected ${shardSize} (fragmentSize + ${ENCRYPTION_OVERHEAD})`, "erasure.shardSize");
  if (era.shardSize % SHARD_ALIGNMENT !== 0) throw new ManifestError(`must be a multiple of ${SHARD_ALIGNMENT}`, "erasure.shardSize");
  if (era.shardSize > FRAGMENT_SIZE) throw new ManifestError(`shards are Magu fragments, at most ${FRAGMENT_SIZE} bytes`, "erasure.shardSize");
  if (!isLastShardSize(era.lastShardSize, era.shardSize)) {
    throw new ManifestError(`must be ${era.shardSize} or a power of two in [${MIN_LAST_SHARD_SIZE}, ${era.shardSize})`, "erasure.lastShardSize");
  }
  const shardCount = era.stripes * (era.k + era.m);
  if (manifest.shards.length !== shardCount) throw new ManifestError(`expected ${shardCount} shard links, got ${manifest.shards.length}`, "shards");
  manifest.shards.forEach((cid, i) => {
    if (!(cid instanceof CID) || cid.version !== 1 || cid.code !== RAW_CODEC || fragmentRootOfCid(cid) === undefined) {
      throw new ManifestError("must be a CIDv1 raw fragment-root link (docs/ENCODING.md § CIDs)", `shards[${i}]`);
    }
  });
  if (manifest.roots.length !== shardCount) throw new ManifestError(`expected ${shardCount} roots, got ${manifest.roots.length}`, "roots");
  manifest.roots.forEach((r, i) => {
    if (typeof r !== "string" || !HEX32.test(r)) throw new ManifestError("must be 32 bytes of lowercase hex", `roots[${i}]`);
    if (r !== fragmentRootOfCid(manifest.shards[i]!)!.toString("hex")) throw new ManifestError("must be the fragment root its shard link carries", `roots[${i}]`);
  });
}
