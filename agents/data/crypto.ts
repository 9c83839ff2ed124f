/**
 * Per-fragment AES-256-GCM for blob Magus.
 *
 * Keys: for fragment i of a file, HKDF-SHA256(ikm = client secret (32 bytes), salt = fileId
 * (32 random bytes, stored in the manifest), info = "muri/v1/fragment" ‖ uint64_be(i), L = 44)
 * gives key = okm[0, 32) and nonce = okm[32, 44). Every fragment has its own key and nonce, so a
 * (key, nonce) pair can only repeat if the same (secret, fileId, i) seals two different plaintexts;
 * {@link newFileId} draws a fresh random fileId for every upload; the pipeline refuses a fileId
 * given to it twice (`FileIdReusedError`; passing one at all is for tests).
 *
 * One file's key ({@link FileKey}): HKDF's extract step alone, PRK = HMAC-SHA256(key = fileId,
 * message = client secret). Every key above is HKDF's expand step from it (RFC 5869 splits HKDF
 * this way), so holding one file's PRK opens that file (fragments, MAC, size) and nothing else:
 * another file's PRK is the HMAC under another file id, and no HMAC output gives the secret back.
 * `muri share` hands a PRK to another user wrapped to their public key (share.ts); every function
 * here takes either the secret or that file's {@link FileKey} ({@link KeySource}).
 *
 * The manifest carries `manifestMac`: an HMAC under a key derived from the secret and the fileId
 * of the manifest itself (sealed size, layout, shard CIDs and roots), checked before any fragment
 * is decrypted, so a manifest over a prefix of the stripes or with another file's stripes is refused.
 *
 * The file's size is not in the manifest in the clear (members and validators read manifests):
 * `sealedSize` is uint8 content ‖ uint56_be(size) sealed like a fragment (same layout, AES-256-GCM) under
 * HKDF-SHA256(secret, fileId, "muri/v1/manifest-size", 44): its own HKDF info, so its key is
 * unrelated to every fragment key ({@link sealFileSize}, {@link openFileSize}). It is sealed once
 * per file id, like each fragment index.
 *
 * Sealed layout (documented in the manifest as `layout`): nonce (12) ‖ ciphertext (= plaintext
 * length) ‖ tag (16), so sealed length = plaintext length + 28. No AAD (the key already binds the
 * file and the index). Decryption checks the stored nonce against the derived one, authenticates
 * the tag, and only then returns plaintext; any failure is a {@link DecryptionError}.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { DecryptionError, InvalidParameterError, ManifestSealError } from "./errors.js";

/** Cipher name recorded in manifests. */
export const ENCRYPTION_ALG = "aes-256-gcm";
/** Key derivation recorded in manifests. */
export const ENCRYPTION_KDF = "hkdf-sha256/muri/v1/fragment";
/** Sealed layout recorded in manifests. */
export const SEALED_LAYOUT = "nonce12|ciphertext|tag16";
export const NONCE_SIZE = 12;
export const TAG_SIZE = 16;
export const KEY_SIZE = 32;
export const FILE_ID_SIZE = 32;
/** Bytes a sealed fragment adds to its plaintext. */
export const ENCRYPTION_OVERHEAD = NONCE_SIZE + TAG_SIZE;

const INFO_PREFIX = Buffer.from("muri/v1/fragment", "utf8");
/** Bytes per cipher.update call (see seal). */
const CIPHER_PIECE = 64 * 1024;

/** A fresh random 32-byte file id (the HKDF salt). */
export function newFileId(): Buffer {
  return randomBytes(FILE_ID_SIZE);
}

function checkBytes(name: string, value: Uint8Array, length: number): void {
  if (!(value instanceof Uint8Array) || value.length !== length) throw new InvalidParameterError(name, value, `must be ${length} bytes`);
}

function checkIndex(index: number): void {
  if (!Number.isSafeInteger(index) || index < 0) throw new InvalidParameterError("fragmentIndex", index, "must be a non-negative integer");
}

/** One file's HKDF pseudorandom key (see the file comment): opens that file and no other. */
export class FileKey {
  readonly fileId: Buffer;
  readonly prk: Buffer;

  constructor(fileId: Uint8Array, prk: Uint8Array) {
    checkBytes("fileId", fileId, FILE_ID_SIZE);
    checkBytes("prk", prk, KEY_SIZE);
    this.fileId = Buffer.from(fileId);
    this.prk = Buffer.from(prk);
  }
}

/** The client's 32-byte secret (every file it stored) or one file's {@link FileKey}. */
export type KeySource = Uint8Array | FileKey;

/** `fileId`'s key under `secret`: HKDF-Extract(salt = fileId, ikm = secret). */
export function fileKeyOf(secret: Uint8Array, fileId: Uint8Array): FileKey {
  checkBytes("secret", secret, KEY_SIZE);
  checkBytes("fileId", fileId, FILE_ID_SIZE);
  return new FileKey(fileId, createHmac("sha256", fileId).update(secret).digest());
}

/** `source` as the key of file `fileId`; a FileKey of another file is refused. */
function keyOfFile(source: KeySource, fileId: Uint8Array): FileKey {
  if (!(source instanceof FileKey)) return fileKeyOf(source, fileId);
  checkBytes("fileId", fileId, FILE_ID_SIZE);
  if (!source.fileId.equals(fileId)) {
    throw new InvalidParameterError("fileId", Buffer.from(fileId).toString("hex"), `this key opens file ${source.fileId.toString("hex")} only`);
  }
  return source;
}

/** HKDF-Expand (RFC 5869 section 2.3) of `length` bytes (at most 255 x 32) from `prk`. */
function hkdfExpand(prk: Buffer, info: Uint8Array | string, length: number): Buffer {
  const infoBytes = typeof info === "string" ? Buffer.from(info, "utf8") : info;
  const out = Buffer.allocUnsafe(Math.ceil(length / 32) * 32);
  let previous = Buffer.alloc(0);
  for (let block = 0; block * 32 < length; block++) {
    previous = createHmac("sha256", prk).update(previous).update(infoBytes).update(Buffer.of(block + 1)).digest();
    previous.copy(out, block * 32);
  }
  return out.subarray(0, length);
}

/** HKDF `info` of the key that authenticates a file's manifest. */
const MANIFEST_MAC_INFO = "muri/v1/manifest-mac";

/**
 * HMAC-SHA256 of `body` (the manifest's canonical bytes with an empty `mac`) under a key derived
 * from the client's secret and the file id, hex: binds the file's length, layout, shard CIDs and
 * roots to the client, so a manifest over a prefix of the stripes, or with stripes of another file,
 * fails before anything is decrypted.
 */
export function manifestMac(secret: KeySource, fileId: Uint8Array, body: Uint8Array): string {
  const key = hkdfExpand(keyOfFile(secret, fileId).prk, MANIFEST_MAC_INFO, 32);
  return createHmac("sha256", key).update(body).digest("hex");
}

/** True when `mac` (hex) is the MAC of `body` under `secret` and `fileId`; compared in constant time. */
export function manifestMacMatches(secret: KeySource, fileId: Uint8Array, body: Uint8Array, mac: string): boolean {
  const want = Buffer.from(manifestMac(secret, fileId, body), "hex");
  const got = Buffer.from(mac, "hex");
  return got.length === want.length && timingSafeEqual(got, want);
}

/** HKDF-Expand(file key, info, 44) split into an AES-256 key and a GCM nonce. */
function deriveKeyNonce(fileKey: FileKey, info: Uint8Array | string): { key: Buffer; nonce: Buffer } {
  const okm = hkdfExpand(fileKey.prk, info, KEY_SIZE + NONCE_SIZE);
  return { key: okm.subarray(0, KEY_SIZE), nonce: okm.subarray(KEY_SIZE) };
}

/** Key and nonce of fragment `index` of `fileKey`'s file. */
function fragmentKeyNonce(fileKey: FileKey, index: number): { key: Buffer; nonce: Buffer } {
  checkIndex(index);
  const info = Buffer.allocUnsafe(INFO_PREFIX.length + 8);
  INFO_PREFIX.copy(info, 0);
  info.writeBigUInt64BE(BigInt(index), INFO_PREFIX.length);
  return deriveKeyNonce(fileKey, info);
}

/** Key and nonce of fragment `index` of the file `fileId` under `secret`. */
export function deriveFragmentKey(secret: KeySource, fileId: Uint8Array, index: number): { key: Buffer; nonce: Buffer } {
  return fragmentKeyNonce(keyOfFile(secret, fileId), index);
}

/**
 * Writes nonce ‖ AES-256-GCM(key, nonce, plaintext) ‖ tag into `target` (plaintext length + 28
 * bytes). In pieces: node:crypto allocates each output, and small outputs come from recycled,
 * cache-hot memory instead of fresh pages (a fresh 1 MiB buffer costs about as much as encrypting it).
 */
function sealInto(key: Buffer, nonce: Buffer, plaintext: Uint8Array, target: Buffer): void {
  nonce.copy(target, 0);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  let written = NONCE_SIZE;
  for (let p = 0; p < plaintext.length; p += CIPHER_PIECE) {
    written += cipher.update(plaintext.subarray(p, Math.min(p + CIPHER_PIECE, plaintext.length))).copy(target, written);
  }
  written += cipher.final().copy(target, written);
  cipher.getAuthTag().copy(target, written);
}

/**
 * Opens nonce ‖ ciphertext ‖ tag (`bytes`, at least 28 long, nonce already checked) into
 * `target[0, bytes.length - 28)`; false (with that range zeroed) when the tag does not authenticate.
 */
function openInto(key: Buffer, nonce: Buffer, bytes: Buffer, target: Buffer): boolean {
  const length = bytes.length - ENCRYPTION_OVERHEAD;
  const decipher = createDecipheriv("aes-256-gcm", key, nonce);
  decipher.setAuthTag(bytes.subarray(bytes.length - TAG_SIZE));
  let written = 0;
  for (let p = NONCE_SIZE; p < NONCE_SIZE + length; p += CIPHER_PIECE) {
    written += decipher.update(bytes.subarray(p, Math.min(p + CIPHER_PIECE, NONCE_SIZE + length))).copy(target, written);
  }
  try {
    decipher.final().copy(target, written);
    return true;
  } catch {
    target.fill(0, 0, length);
    return false;
  }
}

/** HKDF `info` of the key and nonce that seal a file's size in its manifest (not a fragment key's). */
const SIZE_SEAL_INFO = "muri/v1/manifest-size";
/** Bytes of a sealed size: nonce 12 ‖ uint64_be(size) encrypted 8 ‖ tag 16. */
export const SEALED_SIZE_LENGTH = ENCRYPTION_OVERHEAD + 8;
/**
 * Content codes, the top byte of the sealed size (`uint8 content ‖ uint56_be size`): what the
 * plaintext is. Sealed like the size, so members and validators cannot tell a directory or a
 * compressed file from any other file.
 */
/** The file's bytes as they are (every manifest written before content codes: the top byte was 0). */
export const CONTENT_RAW = 0;
/** The file's bytes gzip-compressed (RFC 1952, node:zlib). */
export const CONTENT_GZIP = 1;
/** The file's bytes zstd-compressed (RFC 8878, node:zlib). */
export const CONTENT_ZSTD = 2;
/** A directory pack (data/directory.ts): files, then the encrypted directory nodes, then a trailer. */
export const CONTENT_DIRECTORY = 3;
const MAX_CONTENT_CODE = CONTENT_DIRECTORY;

/**
 * The file size sealed for the manifest's `sealedSize`, hex: nonce ‖ AES-256-GCM(uint64_be(size)) ‖
 * tag under HKDF-SHA256(secret, fileId, "muri/v1/manifest-size"). Deterministic for (secret, fileId,
 * size), so a resumed put re-encodes to the same manifest; the file id is fresh per upload, so the
 * (key, nonce) seals one size only.
 */
export function sealFileSize(secret: KeySource, fileId: Uint8Array, size: number, content: number = CONTENT_RAW): string {
  const fileKey = keyOfFile(secret, fileId);
  if (!Number.isSafeInteger(size) || size < 0) throw new InvalidParameterError("size", size, "must be a non-negative integer");
  if (!Number.isInteger(content) || content < 0 || content > MAX_CONTENT_CODE) throw new InvalidParameterError("content", content, `must be a content code in [0, ${MAX_CONTENT_CODE}]`);
  const { key, nonce } = deriveKeyNonce(fileKey, SIZE_SEAL_INFO);
  const plain = Buffer.alloc(8);
  plain.writeBigUInt64BE((BigInt(content) << 56n) | BigInt(size));
  const out = Buffer.allocUnsafe(SEALED_SIZE_LENGTH);
  sealInto(key, nonce, plain, out);
  return out.toString("hex");
}

/**
 * Opens a manifest's `sealedSize` (hex) under `secret`; throws {@link ManifestSealError} when it
 * does not open (another client's secret, or the seal was altered) or holds no safe integer.
 */
export function openFileSize(secret: KeySource, fileId: Uint8Array, sealed: string): number {
  return openSealedSize(secret, fileId, sealed).size;
}

/**
 * Opens `sealedSize`: the size and the content code in its top byte ({@link CONTENT_RAW} for every
 * manifest written before content codes existed). Refuses what {@link openFileSize} refuses and a
 * code this version does not know.
 */
export function openSealedSize(secret: KeySource, fileId: Uint8Array, sealed: string): { size: number; content: number } {
  const fileKey = keyOfFile(secret, fileId);
  const hex = Buffer.from(fileId).toString("hex");
  const bytes = Buffer.from(sealed, "hex");
  if (bytes.length !== SEALED_SIZE_LENGTH || bytes.toString("hex") !== sealed) throw new ManifestSealError(hex, `not ${SEALED_SIZE_LENGTH} bytes of hex`);
  const { key, nonce } = deriveKeyNonce(fileKey, SIZE_SEAL_INFO);
  if (!bytes.subarray(0, NONCE_SIZE).equals(nonce)) throw new ManifestSealError(hex, "nonce does not match the derived nonce");
  const plain = Buffer.alloc(8);
  if (!openInto(key, nonce, bytes, plain)) throw new ManifestSealError(hex, "authentication tag mismatch");
  const content = plain[0]!;
  plain[0] = 0;
  const size = plain.readBigUInt64BE();
  if (content > MAX_CONTENT_CODE) throw new ManifestSealError(hex, `content code ${content} is unknown to this version (a newer muri wrote it)`);
  if (size > BigInt(Number.MAX_SAFE_INTEGER)) throw new ManifestSealError(hex, `size ${size} is not a safe integer`);
  return { size: Number(size), content };
}

/** Encrypts and decrypts the fragments of one file. */
export class FileCipher {
  readonly #key: FileKey;
  readonly fileId: Buffer;

  constructor(secret: KeySource, fileId: Uint8Array) {
    this.#key = keyOfFile(secret, fileId);
    this.fileId = this.#key.fileId;
  }

  /** Sealed length of a plaintext of `plainLength` bytes. */
  static sealedLength(plainLength: number): number {
    return plainLength + ENCRYPTION_OVERHEAD;
  }

  /**
   * Seals fragment `index`. With `out`, the sealed bytes are written at `out[offset, offset + plain + 28)`
   * and that view is returned; otherwise a new buffer is returned.
   */
  seal(index: number, plaintext: Uint8Array, out?: Uint8Array, offset = 0): Buffer {
    const { key, nonce } = fragmentKeyNonce(this.#key, index);
    const length = plaintext.length + ENCRYPTION_OVERHEAD;
    if (out !== undefined && (!Number.isSafeInteger(offset) || offset < 0 || offset + length > out.length)) {
      throw new InvalidParameterError("out", out, `needs ${length} bytes at offset ${offset}`);
    }
    const target = out === undefined ? Buffer.allocUnsafe(length) : Buffer.from(out.buffer, out.byteOffset + offset, length);
    sealInto(key, nonce, plaintext, target);
    return target;
  }

  /**
   * Opens sealed fragment `index`; throws {@link DecryptionError} (never returns data) if anything
   * is off. With `out`, the plaintext is written to `out[0, sealed.length - 28)` and that view is
   * returned (on failure `out` is zeroed over that range).
   */
  open(index: number, sealed: Uint8Array, out?: Buffer): Buffer {
    if (sealed.length < ENCRYPTION_OVERHEAD) throw new DecryptionError(index, `sealed fragment of ${sealed.length} bytes is shorter than ${ENCRYPTION_OVERHEAD}`);
    const { key, nonce } = fragmentKeyNonce(this.#key, index);
    const bytes = Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength);
    if (!bytes.subarray(0, NONCE_SIZE).equals(nonce)) throw new DecryptionError(index, "nonce does not match the derived nonce");
    const length = bytes.length - ENCRYPTION_OVERHEAD;
    if (out !== undefined && out.length < length) throw new InvalidParameterError("out", out, `needs ${length} bytes`);
    const target = out === undefined ? Buffer.allocUnsafe(length) : out.subarray(0, length);
    if (!openInto(key, nonce, bytes, target)) throw new DecryptionError(index, "authentication tag mismatch");
    return target;
  }
}

/** Seals one fragment: nonce ‖ ciphertext ‖ tag. */
export function encryptFragment(secret: KeySource, fileId: Uint8Array, index: number, plaintext: Uint8Array): Buffer {
  return new FileCipher(secret, fileId).seal(index, plaintext);
}

/** Opens one sealed fragment or throws {@link DecryptionError}. */
export function decryptFragment(secret: KeySource, fileId: Uint8Array, index: number, sealed: Uint8Array): Buffer {
  return new FileCipher(secret, fileId).open(index, sealed);
}
