/**
 * CIDs of fragments and documents (docs/ENCODING.md § CIDs).
 *
 * - A fragment (raw codec) is addressed by its fragment root: multihash code
 *   FRAGMENT_ROOT_MULTIHASH, digest = the root of its Merkle tree. One tree hash, through the
 *   multi-buffer backend when it is built, gives the address, the receiver's check and the root the
 *   contracts challenge.
 * - Documents (manifests, index documents; DAG-JSON) and fragments of older data are addressed by
 *   sha2-256 over their bytes.
 *
 * Both kinds verify the same way: `cidHasher(cid)` hashes bytes as they arrive, `cidMatches` at once.
 */
import { createHash, timingSafeEqual, type Hash } from "node:crypto";
import { CID } from "multiformats/cid";
import * as Digest from "multiformats/hashes/digest";
import { sha256 } from "multiformats/hashes/sha2";
import { FRAGMENT_ROOT_MULTIHASH, FRAGMENT_SIZE, RAW_CODEC } from "./constants.js";
import { FragmentRootHasher, HASH_SIZE, fragmentRoot } from "./merkle.js";

/** The CID of a fragment whose fragment root is `root` (32 bytes). */
export function cidOfFragmentRoot(root: Uint8Array): CID {
  if (root.length !== HASH_SIZE) throw new Error(`a fragment root is ${HASH_SIZE} bytes, got ${root.length}`);
  return CID.createV1(RAW_CODEC, Digest.create(FRAGMENT_ROOT_MULTIHASH, Buffer.from(root)));
}

/** The fragment root a fragment CID carries, or undefined when `cid` is not a fragment-root CID. */
export function fragmentRootOfCid(cid: CID): Buffer | undefined {
  if (cid.multihash.code !== FRAGMENT_ROOT_MULTIHASH || cid.multihash.digest.length !== HASH_SIZE) return undefined;
  const d = cid.multihash.digest;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/** CIDv1 (raw codec, fragment-root multihash) of a fragment of at most FRAGMENT_SIZE bytes. */
export function fragmentCid(bytes: Uint8Array): CID {
  return cidOfFragmentRoot(fragmentRoot(bytes));
}

/** CIDs of many fragments at once. */
export function fragmentCids(fragments: readonly Uint8Array[]): CID[] {
  return fragments.map((f) => fragmentCid(f));
}

/** CIDv1 (raw codec, sha2-256) of `bytes`: the form of fragment CIDs before fragment-root CIDs. */
export function sha256RawCid(bytes: Uint8Array): CID {
  return CID.createV1(RAW_CODEC, Digest.create(sha256.code, createHash("sha256").update(bytes).digest()));
}

/** Whether this module can check bytes against `cid` (sha2-256 or fragment-root multihash). */
export function isVerifiableCid(cid: CID): boolean {
  const { code, digest } = cid.multihash;
  return (code === sha256.code || code === FRAGMENT_ROOT_MULTIHASH) && digest.length === HASH_SIZE;
}

/** Hashes the bytes of one CID as they arrive; `digest()` is what the CID's multihash should carry. */
export interface CidHasher {
  update(chunk: Uint8Array): void;
  /** The digest of everything passed to `update` (call once); undefined when no such CID can exist (a fragment past FRAGMENT_SIZE). */
  digest(): Uint8Array | undefined;
}

class Sha256Hasher implements CidHasher {
  private readonly hash: Hash = createHash("sha256");
  update(chunk: Uint8Array): void {
    this.hash.update(chunk);
  }
  digest(): Uint8Array {
    return this.hash.digest();
  }
}

class RootHasher implements CidHasher {
  private readonly tree = new FragmentRootHasher();
  update(chunk: Uint8Array): void {
    this.tree.update(chunk);
  }
  digest(): Uint8Array | undefined {
    return this.tree.root();
  }
}

/** A hasher for the multihash of `cid`; throws when the CID is not verifiable (see isVerifiableCid). */
export function cidHasher(cid: CID): CidHasher {
  if (!isVerifiableCid(cid)) throw new Error(`cannot verify CID ${cid.toString()}: multihash 0x${cid.multihash.code.toString(16)} is neither sha2-256 nor a fragment root`);
  return cid.multihash.code === FRAGMENT_ROOT_MULTIHASH ? new RootHasher() : new Sha256Hasher();
}

/** The digest `bytes` have under the multihash of `cid` (undefined: a fragment past FRAGMENT_SIZE). */
export function cidDigestOf(cid: CID, bytes: Uint8Array): Uint8Array | undefined {
  if (cid.multihash.code === FRAGMENT_ROOT_MULTIHASH) return bytes.length > FRAGMENT_SIZE ? undefined : fragmentRoot(bytes);
  return createHash("sha256").update(bytes).digest();
}

/** True when `digest` is the digest `cid` carries (constant time). */
export function digestMatchesCid(cid: CID, digest: Uint8Array | undefined): boolean {
  if (digest === undefined || !isVerifiableCid(cid)) return false;
  const expected = cid.multihash.digest;
  return digest.length === expected.length && timingSafeEqual(digest, expected);
}

/** True when `bytes` hash to `cid` (sha2-256 or fragment-root multihash; any codec). */
export function cidMatches(cid: CID, bytes: Uint8Array): boolean {
  return isVerifiableCid(cid) && digestMatchesCid(cid, cidDigestOf(cid, bytes));
}

/** The CID (same version, codec and multihash code as `like`) that `digest` names; for error messages. */
export function cidWithDigest(like: CID, digest: Uint8Array): CID {
  const mh = Digest.create(like.multihash.code, digest);
  return like.version === 0 ? CID.createV0(mh as Parameters<typeof CID.createV0>[0]) : CID.createV1(like.code, mh);
}

/** Parses a CID string, throwing a clear error that names the bad value. */
export function parseCid(text: string): CID {
  try {
    return CID.parse(text);
  } catch (err) {
    throw new Error(`not a valid CID: ${JSON.stringify(text)} (${(err as Error).message})`, { cause: err });
  }
}
