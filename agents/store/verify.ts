/**
 * CID verification for the store, under the rules of data/cid.ts (the store calls its
 * `cidHasher` and `digestMatchesCid` directly): whole buffers are hashed here, fragment-root CIDs by
 * their Merkle tree (the multi-buffer backend, ~1 ms per MiB), sha2-256 CIDs (documents) through
 * WebCrypto, which hashes on the libuv thread pool so the event loop stays free.
 */
import { webcrypto } from "node:crypto";
import type { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { cidDigestOf, cidWithDigest, isVerifiableCid } from "../data/cid.js";
import { UnsupportedCidError } from "./errors.js";

/** Throws `UnsupportedCidError` unless `cid` is addressed by sha2-256 or a fragment root. */
export function assertVerifiable(cid: CID): void {
  if (!isVerifiableCid(cid)) {
    throw new UnsupportedCidError({ cid: cid.toString(), hashCode: cid.multihash.code });
  }
}

/** The digest `bytes` have under the multihash of `cid` (an empty digest when none can match). */
export async function digestFor(cid: CID, bytes: Uint8Array): Promise<Uint8Array> {
  if (cid.multihash.code === sha256.code) return new Uint8Array(await webcrypto.subtle.digest("SHA-256", bytes));
  return cidDigestOf(cid, bytes) ?? new Uint8Array(0);
}

/** The CID (same version, codec and hash as `like`) that `digest` actually names; for error messages. */
export function cidOfDigest(like: CID, digest: Uint8Array | undefined): string {
  return digest === undefined || digest.length === 0 ? "(none: too large for a fragment)" : cidWithDigest(like, digest).toString();
}
