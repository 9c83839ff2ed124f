/**
 * Incremental CID check: the fragment is hashed chunk by chunk while it arrives, so verification
 * overlaps the transfer instead of following it. Same rule as `cidMatches` in data/cid.ts
 * (sha2-256 multihash over the raw bytes).
 */
import { createHash, timingSafeEqual, type Hash } from "node:crypto";
import type { CID } from "multiformats/cid";
import { sha256 } from "multiformats/hashes/sha2";
import { UnsupportedCidError } from "./errors.js";

/** Throws UnsupportedCidError unless `cid` names a sha2-256 multihash. */
export function assertVerifiableCid(cid: CID): void {
  if (cid.multihash.code !== sha256.code) throw new UnsupportedCidError(cid.toString(), cid.multihash.code);
}

/** Hashes bytes as they arrive and tells whether they match the CID. */
export class CidVerifier {
  private readonly hash: Hash = createHash("sha256");
  private readonly expected: Uint8Array;

  constructor(cid: CID) {
    assertVerifiableCid(cid);
    this.expected = cid.multihash.digest;
  }

  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }

  /** True when everything passed to `update` hashes to the CID. Call once. */
  matches(): boolean {
    const digest = this.hash.digest();
    return digest.length === this.expected.length && timingSafeEqual(digest, this.expected);
  }
}
