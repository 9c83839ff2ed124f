import { createHash } from "node:crypto";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";

/**
 * The key a CID's provider records go under. kad-dht reads a provider key back as a CID from the
 * multihash bytes alone (`CID.decode(key)`), which only works for sha2-256 multihashes (a CIDv0),
 * so a fragment-root CID (data/cid.ts) is announced under CIDv1(raw, sha2-256(its multihash
 * bytes)). Every node maps the same way, so `provide` and `findProviders` meet.
 */
export function dhtKey(cid: CID): CID {
  if (cid.multihash.code === sha256.code) return cid;
  return CID.createV1(cid.code, Digest.create(sha256.code, createHash("sha256").update(cid.multihash.bytes).digest()));
}
