/**
 * CID verification for the store, under the rules of data/cid.ts: fragment-root CIDs by their
 * Merkle tree (the multi-buffer backend, ~1 ms per MiB), sha2-256 CIDs (documents) through
 * WebCrypto, which hashes on the libuv thread pool so the event loop stays free.
 */
import { webcrypto } from "node:crypto";
import type { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { cidDigestOf, cidHasher, cidWithDigest, digestMatchesCid, isVerifiableCid, type CidHasher } from "../data/cid.js";
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

/** An incremental hasher for `cid` (streamed reads and writes). */
export function hasherFor(cid: CID): CidHasher {
  return cidHasher(cid);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** True when `digest` is the digest `cid` names. */
export function digestMatches(cid: CID, digest: Uint8Array | undefined): boolean {
  return digestMatchesCid(cid, digest);
}

/** The CID (same version, codec and hash as `like`) that `digest` actually names; for error messages. */
export function cidOfDigest(like: CID, digest: Uint8Array | undefined): string {
  return digest === undefined || digest.length === 0 ? "(none: too large for a fragment)" : cidWithDigest(like, digest).toString();
}
