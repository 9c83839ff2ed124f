/**
 * Sharing one stored file with another user (`muri share`), without the client's secret.
 *
 * What is shared is the file's key ({@link FileKey}, crypto.ts): HKDF's extract step over the
 * client's secret and the file id, from which that file's fragment keys, manifest MAC key and size
 * seal are expanded. It opens that file and no other, and gives the secret no more than any HMAC
 * output gives its key.
 *
 * It travels wrapped to the recipient's secp256k1 public key (the key of their chain account),
 * ECIES-style:
 * - e = a fresh secp256k1 key pair, E its public key (33 bytes, compressed); R the recipient's;
 * - z = the x coordinate of ECDH(e, R) (32 bytes);
 * - key (32) ‖ nonce (12) = HKDF-SHA256(ikm = z, salt = E ‖ R, info = "muri/v1/share", 44);
 * - box = AES-256-GCM(key, nonce, PRK (32 bytes), aad) ‖ tag (16), 48 bytes,
 *   aad = "muri/v1/share" ‖ uint64_be(chain id) ‖ uint256_be(Magu id) ‖ manifest CID bytes ‖ fileId.
 * A fresh e for every share: a (key, nonce) seals one PRK. The aad binds the box to the file it
 * names, so a token edited to name another file does not open.
 *
 * The token a user passes on is one string: `muri-share:` + base64url(JSON of
 * {@link ShareToken}); it may also carry a read grant on the Magu for the recipient's account
 * (the Magu is private by default), which members check as for `muri magu grant`.
 */
import { ECDH, createCipheriv, createDecipheriv, createECDH, hkdfSync } from "node:crypto";
import { CID } from "multiformats/cid";
import { FILE_ID_SIZE, FileKey, KEY_SIZE, NONCE_SIZE, TAG_SIZE } from "./crypto.js";
import { DataError } from "./errors.js";

/** The token's prefix: what `muri get` recognises a share by. */
export const SHARE_TOKEN_PREFIX = "muri-share:";
const SHARE_INFO = "muri/v1/share";
const COMPRESSED_KEY_SIZE = 33;
const BOX_SIZE = KEY_SIZE + TAG_SIZE;

/** A share token's fields (hex without 0x for bytes; decimal strings for big numbers). */
export interface ShareToken {
  v: 1;
  chainId: number;
  magu: string;
  /** The file's manifest CID. */
  cid: string;
  fileId: string;
  /** The recipient's account (an address derived from the public key the key was wrapped to). */
  to: string;
  /** E: the ephemeral public key, compressed. */
  epk: string;
  /** The wrapped file key: ciphertext ‖ tag. */
  box: string;
  /** A read grant on the Magu for `to` (`muri magu grant` token), when the Magu is private. */
  grant?: string;
}

/** What a share token names and carries, decoded. */
export interface Share {
  chainId: number;
  maguId: bigint;
  manifestCid: CID;
  fileId: Buffer;
  to: string;
  epk: Buffer;
  box: Buffer;
  grant?: string;
}

/** A share token that is not one, or a key that does not open. `code` names which. */
export class ShareError extends DataError {
  constructor(code: "ERR_BAD_SHARE" | "ERR_SHARE_NOT_FOR_YOU" | "ERR_BAD_PUBLIC_KEY", message: string, context: Record<string, unknown> = {}) {
    super(code, message, context);
  }
}

/**
 * A secp256k1 public key, given as hex (0x optional) of 33 bytes (compressed) or 65 (uncompressed,
 * 0x04 ‖ x ‖ y) or 64 (x ‖ y, as viem's recoverPublicKey without its prefix): compressed, checked to
 * be a point on the curve.
 */
export function parsePublicKey(value: string, what = "public key"): Buffer {
  const hex = value.trim().replace(/^0x/i, "");
  if (!/^[0-9a-f]*$/i.test(hex) || hex.length % 2 !== 0) throw new ShareError("ERR_BAD_PUBLIC_KEY", `${what}: "${value}" is not hex`);
  let bytes = Buffer.from(hex, "hex");
  if (bytes.length === 64) bytes = Buffer.concat([Buffer.of(4), bytes]);
  if (bytes.length !== COMPRESSED_KEY_SIZE && bytes.length !== 65) {
    throw new ShareError("ERR_BAD_PUBLIC_KEY", `${what}: ${bytes.length} bytes, not a secp256k1 public key (33 bytes compressed or 65 uncompressed)`);
  }
  try {
    return convertKey(bytes, "compressed");
  } catch {
    throw new ShareError("ERR_BAD_PUBLIC_KEY", `${what}: not a point on secp256k1`);
  }
}

/** The uncompressed form (65 bytes, 0x04 ‖ x ‖ y) of a checked public key: what an address hashes. */
export function uncompressedPublicKey(publicKey: Uint8Array): Buffer {
  return convertKey(Buffer.from(publicKey), "uncompressed");
}

function convertKey(key: Buffer, format: "compressed" | "uncompressed"): Buffer {
  return ECDH.convertKey(key, "secp256k1", undefined, undefined, format) as Buffer;
}

function aadOf(chainId: number, maguId: bigint, manifestCid: CID, fileId: Uint8Array): Buffer {
  const head = Buffer.alloc(8 + 32);
  head.writeBigUInt64BE(BigInt(chainId), 0);
  const magu = Buffer.from(maguId.toString(16).padStart(64, "0"), "hex");
  magu.copy(head, 8);
  return Buffer.concat([Buffer.from(SHARE_INFO, "utf8"), head, manifestCid.bytes, fileId]);
}

function kek(z: Buffer, epk: Buffer, recipient: Buffer): { key: Buffer; nonce: Buffer } {
  const okm = Buffer.from(hkdfSync("sha256", z, Buffer.concat([epk, recipient]), SHARE_INFO, KEY_SIZE + NONCE_SIZE));
  return { key: okm.subarray(0, KEY_SIZE), nonce: okm.subarray(KEY_SIZE) };
}

/** Where a share is bound: the chain, the Magu and the file's manifest. */
export interface ShareTarget {
  chainId: number;
  maguId: bigint;
  manifestCid: CID;
}

/** Wraps `fileKey` to `recipient` (a compressed public key, {@link parsePublicKey}). */
export function wrapFileKey(fileKey: FileKey, recipient: Uint8Array, target: ShareTarget): { epk: Buffer; box: Buffer } {
  const r = Buffer.from(recipient);
  const e = createECDH("secp256k1");
  e.generateKeys();
  const epk = e.getPublicKey(undefined, "compressed");
  const z = e.computeSecret(r);
  const { key, nonce } = kek(z, epk, r);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  cipher.setAAD(aadOf(target.chainId, target.maguId, target.manifestCid, fileKey.fileId));
  const box = Buffer.concat([cipher.update(fileKey.prk), cipher.final(), cipher.getAuthTag()]);
  return { epk, box };
}

/**
 * Opens a share with the recipient's key: `ecdh(E)` is the x coordinate of the recipient's private
 * key times E (what `createECDH("secp256k1")` with that key computes), `recipient` its compressed
 * public key. A box that does not open (another recipient, an edited token) is
 * ERR_SHARE_NOT_FOR_YOU.
 */
export function unwrapFileKey(share: Share, recipient: Uint8Array, ecdh: (publicKey: Buffer) => Buffer): FileKey {
  const r = Buffer.from(recipient);
  const z = ecdh(share.epk);
  const { key, nonce } = kek(z, share.epk, r);
  const decipher = createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAAD(aadOf(share.chainId, share.maguId, share.manifestCid, share.fileId));
  decipher.setAuthTag(share.box.subarray(KEY_SIZE));
  let prk: Buffer;
  try {
    prk = Buffer.concat([decipher.update(share.box.subarray(0, KEY_SIZE)), decipher.final()]);
  } catch {
    throw new ShareError(
      "ERR_SHARE_NOT_FOR_YOU",
      `the share of ${share.manifestCid} does not open with this key: it was made for account ${share.to}; use that account's key (--key), or ask for a share to your own public key`,
      { to: share.to },
    );
  }
  return new FileKey(share.fileId, prk);
}

/** The token string of `share`. */
export function encodeShareToken(share: Share): string {
  const token: ShareToken = {
    v: 1,
    chainId: share.chainId,
    magu: share.maguId.toString(),
    cid: share.manifestCid.toString(),
    fileId: share.fileId.toString("hex"),
    to: share.to,
    epk: share.epk.toString("hex"),
    box: share.box.toString("hex"),
    ...(share.grant === undefined ? {} : { grant: share.grant }),
  };
  return SHARE_TOKEN_PREFIX + Buffer.from(JSON.stringify(token), "utf8").toString("base64url");
}

/** True when `value` looks like a share token (it may still be malformed). */
export function isShareToken(value: string): boolean {
  return value.trim().startsWith(SHARE_TOKEN_PREFIX);
}

/** Decodes a share token; every malformed field is ERR_BAD_SHARE naming it. */
export function decodeShareToken(value: string): Share {
  const bad = (why: string): ShareError => new ShareError("ERR_BAD_SHARE", `share token: ${why}; pass the whole string muri share printed (it starts with ${SHARE_TOKEN_PREFIX})`);
  const text = value.trim();
  if (!text.startsWith(SHARE_TOKEN_PREFIX)) throw bad(`it does not start with ${SHARE_TOKEN_PREFIX}`);
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(text.slice(SHARE_TOKEN_PREFIX.length), "base64url").toString("utf8"));
  } catch {
    throw bad("it is not base64url of JSON (cut short?)");
  }
  if (typeof raw !== "object" || raw === null) throw bad("not an object");
  const t = raw as Record<string, unknown>;
  if (t.v !== 1) throw bad(`version ${JSON.stringify(t.v)} is not 1 (made by a newer muri?)`);
  const str = (name: string): string => {
    if (typeof t[name] !== "string") throw bad(`field ${name} is missing or not a string`);
    return t[name];
  };
  const bytes = (name: string, length: number): Buffer => {
    const s = str(name);
    if (!/^[0-9a-f]*$/.test(s) || s.length !== 2 * length) throw bad(`field ${name} is not ${length} bytes of hex`);
    return Buffer.from(s, "hex");
  };
  if (typeof t.chainId !== "number" || !Number.isSafeInteger(t.chainId) || t.chainId <= 0) throw bad("field chainId is not a positive integer");
  const magu = str("magu");
  if (!/^[1-9][0-9]{0,77}$/.test(magu)) throw bad("field magu is not a Magu id");
  let manifestCid: CID;
  try {
    manifestCid = CID.parse(str("cid"));
  } catch {
    throw bad("field cid is not a CID");
  }
  const to = str("to");
  if (!/^0x[0-9a-fA-F]{40}$/.test(to)) throw bad("field to is not an account address");
  if (t.grant !== undefined && typeof t.grant !== "string") throw bad("field grant is not a string");
  return {
    chainId: t.chainId,
    maguId: BigInt(magu),
    manifestCid,
    fileId: bytes("fileId", FILE_ID_SIZE),
    to,
    epk: bytes("epk", COMPRESSED_KEY_SIZE),
    box: bytes("box", BOX_SIZE),
    ...(t.grant === undefined ? {} : { grant: t.grant }),
  };
}
