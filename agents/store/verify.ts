/**
 * CID verification for the store. Whole-buffer digests go through WebCrypto, which hashes on the
 * libuv thread pool: the event loop stays free and concurrent puts/gets hash on several cores.
 */
import { webcrypto } from "node:crypto";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";
import { UnsupportedCidError } from "./errors.js";

/** Multihash code of sha2-256, the only hash the store verifies. */
export const SHA2_256 = sha256.code;

/** Throws `UnsupportedCidError` unless `cid` is addressed by sha2-256. */
export function assertVerifiable(cid: CID): void {
  if (cid.multihash.code !== SHA2_256) {
    throw new UnsupportedCidError({ cid: cid.toString(), hashCode: cid.multihash.code });
  }
}

/** sha2-256 of `bytes`, computed off the event loop. */
export async function sha256Digest(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await webcrypto.subtle.digest("SHA-256", bytes));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** True when `digest` is the sha2-256 digest `cid` names. */
export function digestMatches(cid: CID, digest: Uint8Array): boolean {
  return cid.multihash.code === SHA2_256 && bytesEqual(cid.multihash.digest, digest);
}

/** The CID (same version and codec as `like`) that `digest` actually names; for error messages. */
export function cidOfDigest(like: CID, digest: Uint8Array): CID {
  const mh = Digest.create(SHA2_256, digest);
  return like.version === 0 ? CID.createV0(mh) : CID.createV1(like.code, mh);
}
