import { createHash } from "node:crypto";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";
import { RAW_CODEC } from "./constants.js";
import { hashBackend } from "./hash-backend.js";

/** CIDv1 (raw codec, sha2-256) of a fragment's bytes, hashed with node:crypto. */
export function fragmentCid(bytes: Uint8Array): CID {
  const digest = createHash("sha256").update(bytes).digest();
  return CID.createV1(RAW_CODEC, Digest.create(sha256.code, digest));
}

/**
 * CIDs of many fragments at once: equal-length fragments are hashed side by side in SIMD lanes
 * when the native hash backend is built (see hash-backend.ts), else one by one with node:crypto.
 */
export function fragmentCids(fragments: readonly Uint8Array[]): CID[] {
  const digests = Buffer.allocUnsafe(32 * fragments.length);
  hashBackend().sha256Many(fragments, digests);
  return fragments.map((_, i) => CID.createV1(RAW_CODEC, Digest.create(sha256.code, Buffer.from(digests.subarray(32 * i, 32 * i + 32)))));
}

/** True when `bytes` hash to `cid` (any codec; sha2-256 multihash required). */
export function cidMatches(cid: CID, bytes: Uint8Array): boolean {
  if (cid.multihash.code !== sha256.code) return false;
  const digest = createHash("sha256").update(bytes).digest();
  const expected = cid.multihash.digest;
  return digest.length === expected.length && digest.equals(Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength));
}

/** Parses a CID string, throwing a clear error that names the bad value. */
export function parseCid(text: string): CID {
  try {
    return CID.parse(text);
  } catch (err) {
    throw new Error(`not a valid CID: ${JSON.stringify(text)} (${(err as Error).message})`, { cause: err });
  }
}
