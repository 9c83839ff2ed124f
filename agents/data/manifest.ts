/**
 * File manifests: a one-node Merkle DAG in canonical DAG-JSON (codec 0x0129) linking a file's
 * shards by CID. The manifest records everything needed to get the file back except the secret:
 * sizes, encryption parameters (cipher, KDF, layout, fileId salt), erasure parameters and the
 * stripe-major list of shard CIDs with their fragment roots (for the Magu commitment).
 *
 * Canonical form: map keys sorted by their UTF-8 bytes, no whitespace, integers only, links as
 * {"/": "<cid base32>"}. Decoding re-encodes and requires identical bytes, and checks the bytes
 * against the manifest CID; anything else is a {@link ManifestError}.
 *
 * Layout rules (checked on decode):
 * - fragmentCount = max(1, ceil(fileSize / fragmentSize)); plaintext fragment i is bytes
 *   [i·fragmentSize, min((i+1)·fragmentSize, fileSize)) (an empty file has one empty fragment);
 * - sealed fragment i = nonce ‖ ciphertext ‖ tag (plaintext length + 28);
 * - stripe s holds fragments s·k .. s·k+k-1; each is zero-padded to the stripe's shard size, a
 *   missing fragment (past the end, last stripe only) is an all-zero shard; stripes = ceil(fragmentCount / k);
 * - shardSize = align8(fragmentSize + 28) for every stripe but the last, whose shard size
 *   `lastShardSize` = align8(sealed length of its first fragment);
 * - shards[s·(k+m) + j] is shard j of stripe s (j < k data, j >= k parity); global shard index =
 *   Magu fragment index for a blob Magu holding this one file (docs/ENCODING.md § Placement).
 */
import { createHash } from "node:crypto";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";
import { FRAGMENT_SIZE, RAW_CODEC } from "./constants.js";
import { ENCRYPTION_ALG, ENCRYPTION_KDF, ENCRYPTION_OVERHEAD, FILE_ID_SIZE, SEALED_LAYOUT } from "./crypto.js";
import { ERASURE_ALG, MAX_DATA_SHARDS, MAX_PARITY_SHARDS, alignShardSize } from "./erasure.js";
import { ManifestCidMismatchError, ManifestError } from "./errors.js";

/** Multicodec code of DAG-JSON. */
export const DAG_JSON_CODEC = 0x0129;
/** Manifest schema version. */
export const MANIFEST_VERSION = 2;
/** Value of the manifest's `type` field. */
export const MANIFEST_TYPE = "muri/file";

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
  readonly shardSize: number;
  readonly lastShardSize: number;
  readonly padding: "zero";
}

/** A decoded, validated manifest. */
export interface Manifest {
  readonly version: number;
  readonly fileSize: number;
  /** Plaintext bytes per fragment. */
  readonly fragmentSize: number;
  readonly fragmentCount: number;
  readonly encryption: ManifestEncryption;
  readonly erasure: ManifestErasure;
  /** Shard CIDs, stripe-major. */
  readonly shards: readonly CID[];
  /** Fragment roots of the shards (hex), same order. */
  readonly roots: readonly string[];
}

/** Bytes of a fragment i. */
export function plainFragmentLength(manifest: Pick<Manifest, "fileSize" | "fragmentSize">, index: number): number {
  return Math.max(0, Math.min(manifest.fragmentSize, manifest.fileSize - index * manifest.fragmentSize));
}

/** max(1, ceil(fileSize / fragmentSize)). */
export function fragmentCountFor(fileSize: number, fragmentSize: number): number {
  return Math.max(1, Math.ceil(fileSize / fragmentSize));
}

/** Shard size of stripe s. */
export function stripeShardSize(manifest: Pick<Manifest, "erasure">, stripe: number): number {
  return stripe === manifest.erasure.stripes - 1 ? manifest.erasure.lastShardSize : manifest.erasure.shardSize;
}

/** The expected erasure layout of a file (used by the encoder and by validation). */
export function layoutFor(fileSize: number, fragmentSize: number, k: number): { fragmentCount: number; stripes: number; shardSize: number; lastShardSize: number } {
  const fragmentCount = fragmentCountFor(fileSize, fragmentSize);
  const stripes = Math.ceil(fragmentCount / k);
  const firstOfLast = (stripes - 1) * k;
  const lastLength = Math.max(0, Math.min(fragmentSize, fileSize - firstOfLast * fragmentSize));
  return {
    fragmentCount,
    stripes,
    shardSize: alignShardSize(fragmentSize + ENCRYPTION_OVERHEAD),
    lastShardSize: alignShardSize(lastLength + ENCRYPTION_OVERHEAD),
  };
}

// ---- canonical DAG-JSON (the subset used here: maps, arrays, strings, safe integers, links) ----

type DagValue = string | number | CID | readonly DagValue[] | { readonly [key: string]: DagValue };

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
    fileSize: manifest.fileSize,
    fragmentSize: manifest.fragmentSize,
    fragmentCount: manifest.fragmentCount,
    encryption: { ...manifest.encryption },
    erasure: { ...manifest.erasure },
    shards: [...manifest.shards],
    roots: [...manifest.roots],
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
  exactKeys(value, ["type", "version", "fileSize", "fragmentSize", "fragmentCount", "encryption", "erasure", "shards", "roots"], "(root)");
  if (value.type !== MANIFEST_TYPE) throw new ManifestError(`must be ${MANIFEST_TYPE}`, "type");
  if (value.version === 1) throw new ManifestError("unsupported version 1 (version 1 manifests carry no MAC: put the file again)", "version");
  const enc = value.encryption;
  const era = value.erasure;
  if (!isRecord(enc)) throw new ManifestError("must be a map", "encryption");
  if (!isRecord(era)) throw new ManifestError("must be a map", "erasure");
  exactKeys(enc, ["alg", "kdf", "layout", "fileId", "mac"], "encryption");
  exactKeys(era, ["alg", "k", "m", "stripes", "shardSize", "lastShardSize", "padding"], "erasure");
  const shards = value.shards;
  const roots = value.roots;
  if (!Array.isArray(shards)) throw new ManifestError("must be a list", "shards");
  if (!Array.isArray(roots)) throw new ManifestError("must be a list", "roots");
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
    fileSize: int(value, "fileSize", "fileSize", 0),
    fragmentSize: int(value, "fragmentSize", "fragmentSize", 1),
    fragmentCount: int(value, "fragmentCount", "fragmentCount", 1),
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
      padding: str(era, "padding", "erasure.padding") as "zero",
    },
    shards: cids,
    roots: roots.map((r, i) => {
      if (typeof r !== "string") throw new ManifestError("must be a string", `roots[${i}]`);
      return r;
    }),
  };
  return manifest;
}

const HEX32 = /^[0-9a-f]{64}$/;

/** Throws {@link ManifestError} unless every field is present, in range and consistent. */
export function validateManifest(manifest: Manifest): void {
  const { encryption: enc, erasure: era } = manifest;
  if (manifest.version !== MANIFEST_VERSION) {
    const hint = manifest.version === 1 ? " (version 1 manifests carry no MAC: put the file again)" : "";
    throw new ManifestError(`unsupported version ${manifest.version}${hint}`, "version");
  }
  if (!Number.isSafeInteger(manifest.fileSize) || manifest.fileSize < 0) throw new ManifestError("must be a non-negative integer", "fileSize");
  if (!Number.isSafeInteger(manifest.fragmentSize) || manifest.fragmentSize < 1) throw new ManifestError("must be a positive integer", "fragmentSize");
  if (enc.alg !== ENCRYPTION_ALG) throw new ManifestError(`unsupported cipher ${enc.alg}`, "encryption.alg");
  if (enc.kdf !== ENCRYPTION_KDF) throw new ManifestError(`unsupported KDF ${enc.kdf}`, "encryption.kdf");
  if (enc.layout !== SEALED_LAYOUT) throw new ManifestError(`unsupported layout ${enc.layout}`, "encryption.layout");
  if (typeof enc.fileId !== "string" || enc.fileId.length !== FILE_ID_SIZE * 2 || !HEX32.test(enc.fileId)) {
    throw new ManifestError("must be 32 bytes of lowercase hex", "encryption.fileId");
  }
  if (typeof enc.mac !== "string" || !HEX32.test(enc.mac)) throw new ManifestError("must be 32 bytes of lowercase hex", "encryption.mac");
  if (era.alg !== ERASURE_ALG) throw new ManifestError(`unsupported erasure code ${era.alg}`, "erasure.alg");
  if (era.padding !== "zero") throw new ManifestError(`unsupported padding ${era.padding}`, "erasure.padding");
  if (!Number.isSafeInteger(era.k) || era.k < 1 || era.k > MAX_DATA_SHARDS) throw new ManifestError(`must be in [1, ${MAX_DATA_SHARDS}]`, "erasure.k");
  if (!Number.isSafeInteger(era.m) || era.m < 0 || era.m > MAX_PARITY_SHARDS) throw new ManifestError(`must be in [0, ${MAX_PARITY_SHARDS}]`, "erasure.m");
  const layout = layoutFor(manifest.fileSize, manifest.fragmentSize, era.k);
  if (manifest.fragmentCount !== layout.fragmentCount) throw new ManifestError(`expected ${layout.fragmentCount}`, "fragmentCount");
  if (era.stripes !== layout.stripes) throw new ManifestError(`expected ${layout.stripes}`, "erasure.stripes");
  if (era.shardSize !== layout.shardSize) throw new ManifestError(`expected ${layout.shardSize}`, "erasure.shardSize");
  if (era.shardSize > FRAGMENT_SIZE) throw new ManifestError(`shards are Magu fragments, at most ${FRAGMENT_SIZE} bytes`, "erasure.shardSize");
  if (era.lastShardSize !== layout.lastShardSize) throw new ManifestError(`expected ${layout.lastShardSize}`, "erasure.lastShardSize");
  const shardCount = era.stripes * (era.k + era.m);
  if (manifest.shards.length !== shardCount) throw new ManifestError(`expected ${shardCount} shard links, got ${manifest.shards.length}`, "shards");
  manifest.shards.forEach((cid, i) => {
    if (!(cid instanceof CID) || cid.version !== 1 || cid.code !== RAW_CODEC || cid.multihash.code !== sha256.code) {
      throw new ManifestError("must be a CIDv1 raw sha2-256 link", `shards[${i}]`);
    }
  });
  if (manifest.roots.length !== shardCount) throw new ManifestError(`expected ${shardCount} roots, got ${manifest.roots.length}`, "roots");
  manifest.roots.forEach((r, i) => {
    if (typeof r !== "string" || !HEX32.test(r)) throw new ManifestError("must be 32 bytes of lowercase hex", `roots[${i}]`);
  });
}
