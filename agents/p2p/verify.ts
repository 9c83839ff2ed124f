/**
 * Incremental CID check: the fragment is hashed chunk by chunk while it arrives, so verification
 * overlaps the transfer instead of following it. Same rule as `cidMatches` in data/cid.ts: a
 * fragment-root CID by its Merkle tree (leaves hashed as they complete), a sha2-256 CID (documents)
 * over the raw bytes.
 */
import type { CID } from "multiformats/cid";
import { cidHasher, digestMatchesCid, isVerifiableCid, type CidHasher } from "../data/cid.js";
import { UnsupportedCidError } from "./errors.js";

/** Throws UnsupportedCidError unless the bytes of `cid` can be verified (sha2-256 or fragment root). */
export function assertVerifiableCid(cid: CID): void {
  if (!isVerifiableCid(cid)) throw new UnsupportedCidError(cid.toString(), cid.multihash.code);
}

/** Hashes bytes as they arrive and tells whether they match the CID. */
export class CidVerifier {
  private readonly hasher: CidHasher;

  constructor(private readonly cid: CID) {
    assertVerifiableCid(cid);
    this.hasher = cidHasher(cid);
  }

  update(chunk: Uint8Array): void {
    this.hasher.update(chunk);
  }

  /** True when everything passed to `update` hashes to the CID. Call once. */
  matches(): boolean {
    return digestMatchesCid(this.cid, this.hasher.digest());
  }
}
