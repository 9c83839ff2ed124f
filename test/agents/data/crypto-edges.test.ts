import assert from "node:assert/strict";
import { createCipheriv, createHmac, hkdfSync } from "node:crypto";
import { describe, it } from "node:test";
import {
  decryptFragment,
  deriveFragmentKey,
  ENCRYPTION_ALG,
  ENCRYPTION_KDF,
  ENCRYPTION_OVERHEAD,
  encryptFragment,
  CONTENT_DIRECTORY,
  CONTENT_GZIP,
  FileCipher,
  FileKey,
  fileKeyOf,
  manifestMac,
  manifestMacMatches,
  newFileId,
  openFileSize,
  openSealedSize,
  SEALED_LAYOUT,
  SEALED_SIZE_LENGTH,
  sealFileSize,
} from "../../../agents/data/crypto.js";
import { DecryptionError, InvalidParameterError, ManifestAuthError, ManifestSealError } from "../../../agents/data/errors.js";

const secret = Buffer.alloc(32, 0x31);
const fileId = Buffer.alloc(32, 0x42);

/** The documented construction, written out with node:crypto directly (one-shot AES-GCM). */
function specSeal(index: number, plain: Buffer): Buffer {
  const info = Buffer.concat([Buffer.from("muri/v1/fragment"), Buffer.alloc(8)]);
  info.writeBigUInt64BE(BigInt(index), info.length - 8);
  const okm = Buffer.from(hkdfSync("sha256", secret, fileId, info, 44));
  const key = okm.subarray(0, 32);
  const nonce = okm.subarray(32, 44);
  const cipher = createCipheriv("aes-256-gcm", key, nonce);
  const body = Buffer.concat([cipher.update(plain), cipher.final()]);
  return Buffer.concat([nonce, body, cipher.getAuthTag()]);
}

function pattern(n: number): Buffer {
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

const decryptionError = (index: number, reason: string) => (e: unknown): boolean => {
  assert.ok(e instanceof DecryptionError, String(e));
  assert.equal(e.context.fragmentIndex, index);
  assert.ok(e.context.reason.includes(reason), e.context.reason);
  return true;
};

describe("crypto: the documented construction, byte for byte", () => {
  it("names what manifests record", () => {
    assert.equal(ENCRYPTION_ALG, "aes-256-gcm");
    assert.equal(ENCRYPTION_KDF, "hkdf-sha256/muri/v1/fragment");
    assert.equal(SEALED_LAYOUT, "nonce12|ciphertext|tag16");
    assert.equal(ENCRYPTION_OVERHEAD, 28);
    assert.equal(FileCipher.sealedLength(100), 128);
    assert.equal(newFileId().length, 32);
    assert.notDeepEqual(newFileId(), newFileId());
  });

  it("key and nonce are HKDF-SHA256(secret, fileId, 'muri/v1/fragment' ‖ u64be(i))[0..32), [32..44)", () => {
    for (const index of [0, 1, 255, 256, 2 ** 32 + 5, Number.MAX_SAFE_INTEGER]) {
      const info = Buffer.concat([Buffer.from("muri/v1/fragment"), Buffer.alloc(8)]);
      info.writeBigUInt64BE(BigInt(index), 16);
      const okm = Buffer.from(hkdfSync("sha256", secret, fileId, info, 44));
      const { key, nonce } = deriveFragmentKey(secret, fileId, index);
      assert.deepEqual(key, okm.subarray(0, 32), `key ${index}`);
      assert.deepEqual(nonce, okm.subarray(32, 44), `nonce ${index}`);
    }
  });

  it("seals and opens across the 64 KiB pieces exactly as one-shot AES-GCM does", () => {
    const cipher = new FileCipher(secret, fileId);
    for (const n of [0, 1, 65535, 65536, 65537, 3 * 65536 + 17]) {
      const plain = pattern(n);
      const sealed = cipher.seal(7, plain);
      assert.deepEqual(sealed, specSeal(7, plain), `seal ${n}`);
      assert.deepEqual(cipher.open(7, sealed), plain, `open ${n}`);
      const out = Buffer.alloc(n + 5, 0xcc);
      const view = cipher.open(7, sealed, out);
      assert.equal(view.length, n);
      assert.equal(view.buffer, out.buffer);
      assert.deepEqual(out.subarray(0, n), plain);
      assert.equal(out[n], 0xcc);
    }
  });
});

describe("crypto: parameter and input checks", () => {
  it("rejects bad fragment indices, secrets and file ids", () => {
    for (const index of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(
        () => deriveFragmentKey(secret, fileId, index),
        (e: unknown) => e instanceof InvalidParameterError && e.context.name === "fragmentIndex" && e.context.reason === "must be a non-negative integer",
      );
    }
    const arrayOf32 = Array.from({ length: 32 }, () => 1) as unknown as Uint8Array;
    assert.throws(() => deriveFragmentKey(arrayOf32, fileId, 0), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "secret" && e.context.reason === "must be 32 bytes");
    assert.throws(() => deriveFragmentKey(secret, Buffer.alloc(33), 0), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "fileId" && e.context.reason === "must be 32 bytes");
    assert.throws(() => new FileCipher(arrayOf32, fileId), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "secret");
    assert.throws(() => new FileCipher(secret, arrayOf32), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "fileId");
    assert.throws(() => encryptFragment(secret, fileId, -1, Buffer.from("x")), InvalidParameterError);
  });

  it("copies the secret and file id it is given", () => {
    const s = Buffer.from(secret);
    const f = Buffer.from(fileId);
    const cipher = new FileCipher(s, f);
    const sealed = cipher.seal(0, Buffer.from("kept"));
    s.fill(0);
    f.fill(0);
    assert.deepEqual(cipher.fileId, fileId);
    assert.deepEqual(cipher.open(0, sealed), Buffer.from("kept"));
    assert.deepEqual(sealed, specSeal(0, Buffer.from("kept")));
  });

  it("seal into `out`: exact fit at an offset works; one byte short, a negative or fractional offset throw", () => {
    const cipher = new FileCipher(secret, fileId);
    const plain = Buffer.from("twelve bytes");
    const out = Buffer.alloc(5 + plain.length + ENCRYPTION_OVERHEAD, 0xdd);
    const view = cipher.seal(2, plain, out, 5);
    assert.equal(view.buffer, out.buffer);
    assert.equal(view.byteOffset, out.byteOffset + 5);
    assert.deepEqual(out.subarray(5), specSeal(2, plain));
    assert.deepEqual(out.subarray(0, 5), Buffer.alloc(5, 0xdd));
    const reason = (e: unknown): boolean => e instanceof InvalidParameterError && e.context.name === "out" && e.context.reason.includes(`needs ${plain.length + 28} bytes`);
    assert.throws(() => cipher.seal(2, plain, out, 6), reason);
    assert.throws(() => cipher.seal(2, plain, out, -1), reason);
    assert.throws(() => cipher.seal(2, plain, out, 0.5), reason);
    assert.deepEqual(cipher.seal(2, plain, Buffer.alloc(plain.length + 28)), specSeal(2, plain));
  });

  it("open: shorter than 28 bytes, a foreign nonce, a short `out`, a bad tag", () => {
    const cipher = new FileCipher(secret, fileId);
    assert.throws(() => cipher.open(3, Buffer.alloc(27)), decryptionError(3, "sealed fragment of 27 bytes is shorter than 28"));
    assert.deepEqual(cipher.open(3, cipher.seal(3, Buffer.alloc(0))), Buffer.alloc(0));
    const sealed = cipher.seal(3, pattern(100));
    assert.throws(() => cipher.open(4, sealed), decryptionError(4, "nonce does not match"));
    assert.throws(() => cipher.open(3, sealed, Buffer.alloc(99)), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "out" && e.context.reason === "needs 100 bytes");
    const forged = Buffer.from(sealed);
    forged[forged.length - 1]! ^= 1;
    const out = Buffer.alloc(100, 0x77);
    assert.throws(() => cipher.open(3, forged, out), decryptionError(3, "authentication tag mismatch"));
    assert.deepEqual(out, Buffer.alloc(100), "the output is zeroed on failure");
    // A view into a larger buffer opens the same as a copy.
    const big = Buffer.concat([Buffer.alloc(9, 1), sealed, Buffer.alloc(4, 2)]);
    assert.deepEqual(decryptFragment(secret, fileId, 3, big.subarray(9, 9 + sealed.length)), pattern(100));
  });
});

describe("crypto: the manifest MAC", () => {
  it("is HMAC-SHA256 of the body under HKDF-SHA256(secret, fileId, 'muri/v1/manifest-mac'), 32 bytes", () => {
    const body = Buffer.from('{"fileSize":10}');
    const key = Buffer.from(hkdfSync("sha256", secret, fileId, "muri/v1/manifest-mac", 32));
    const want = createHmac("sha256", key).update(body).digest("hex");
    assert.equal(manifestMac(secret, fileId, body), want);
    assert.equal(manifestMacMatches(secret, fileId, body, want), true);
    assert.equal(manifestMacMatches(secret, fileId, Buffer.from('{"fileSize":11}'), want), false, "another body");
    assert.equal(manifestMacMatches(secret, Buffer.alloc(32, 0x43), body, want), false, "another file id");
    assert.equal(manifestMacMatches(Buffer.alloc(32, 0x32), fileId, body, want), false, "another secret");
  });

  it("a MAC of the wrong length is a mismatch, not an exception; bad key material names the argument", () => {
    const body = Buffer.from("x");
    const mac = manifestMac(secret, fileId, body);
    assert.equal(manifestMacMatches(secret, fileId, body, mac.slice(0, 62)), false);
    assert.equal(manifestMacMatches(secret, fileId, body, `${mac}00`), false);
    assert.equal(manifestMacMatches(secret, fileId, body, ""), false);
    assert.throws(() => manifestMac(Buffer.alloc(31), fileId, body), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "secret");
    assert.throws(() => manifestMac(secret, Buffer.alloc(31), body), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "fileId");
  });
});

describe("crypto: the sealed file size", () => {
  /** The documented construction with node:crypto directly: nonce ‖ AES-256-GCM(u64be(size)) ‖ tag. */
  const specSize = (size: number, s = secret, f = fileId): string => {
    const okm = Buffer.from(hkdfSync("sha256", s, f, "muri/v1/manifest-size", 44));
    const nonce = okm.subarray(32, 44);
    const cipher = createCipheriv("aes-256-gcm", okm.subarray(0, 32), nonce);
    const plain = Buffer.alloc(8);
    plain.writeBigUInt64BE(BigInt(size));
    return Buffer.concat([nonce, cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString("hex");
  };
  const sealError = (reason: string) => (e: unknown): boolean => {
    assert.ok(e instanceof ManifestSealError, String(e));
    assert.ok(e instanceof ManifestAuthError, "a ManifestAuthError too");
    assert.equal(e.code, "ERR_MANIFEST_SEAL");
    assert.equal(e.context.fileId, fileId.toString("hex"));
    assert.ok(e.context.reason.includes(reason), e.context.reason);
    return true;
  };

  it("is HKDF-SHA256(secret, fileId, 'muri/v1/manifest-size') sealing uint64_be(size), 36 bytes, and opens back", () => {
    assert.equal(SEALED_SIZE_LENGTH, 36);
    for (const size of [0, 1, 4095, 2 ** 32, Number.MAX_SAFE_INTEGER]) {
      const sealed = sealFileSize(secret, fileId, size);
      assert.equal(sealed, specSize(size), `size ${size}`);
      assert.equal(sealed.length, 72);
      assert.equal(openFileSize(secret, fileId, sealed), size);
    }
    // Deterministic (a resumed put re-encodes to the same manifest); bound to the file id.
    assert.equal(sealFileSize(secret, fileId, 10), sealFileSize(secret, fileId, 10));
    assert.notEqual(sealFileSize(secret, fileId, 10), sealFileSize(secret, Buffer.alloc(32, 0x43), 10));
  });

  it("its key and nonce are none of the file's fragment keys and nonces", () => {
    const okm = Buffer.from(hkdfSync("sha256", secret, fileId, "muri/v1/manifest-size", 44));
    for (const index of [0, 1, 2, 1000]) {
      const { key, nonce } = deriveFragmentKey(secret, fileId, index);
      assert.notDeepEqual(key, okm.subarray(0, 32));
      assert.notDeepEqual(nonce, okm.subarray(32, 44));
    }
  });

  it("a wrong secret, another file id or any flipped bit is ManifestSealError", () => {
    const sealed = sealFileSize(secret, fileId, 123_456);
    assert.throws(() => openFileSize(Buffer.alloc(32, 0x32), fileId, sealed), sealError("nonce does not match"));
    const bytes = Buffer.from(sealed, "hex");
    for (let i = 0; i < bytes.length; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(bytes);
        bad[i]! ^= bit;
        assert.throws(() => openFileSize(secret, fileId, bad.toString("hex")), sealError(i < 12 ? "nonce does not match" : "authentication tag mismatch"), `byte ${i}`);
      }
    }
    // Another client's seal of the same file id does not open under this secret either.
    assert.throws(() => openFileSize(secret, fileId, specSize(123_456, Buffer.alloc(32, 0x32))), sealError("nonce does not match"));
    assert.throws(() => openFileSize(secret, Buffer.alloc(32, 0x43), sealed), (e: unknown) => e instanceof ManifestSealError && e.context.fileId === "43".repeat(32));
  });

  it("a seal of the wrong length or not lowercase hex is ManifestSealError; a size above 2^53 - 1 too", () => {
    const sealed = sealFileSize(secret, fileId, 5);
    for (const bad of [sealed.slice(2), `${sealed}00`, sealed.toUpperCase(), `${sealed.slice(0, 70)}zz`, ""]) {
      assert.throws(() => openFileSize(secret, fileId, bad), sealError("not 36 bytes of hex"));
    }
    // A well-sealed 2^53 (only the secret's holder could make one) is not a size.
    const okm = Buffer.from(hkdfSync("sha256", secret, fileId, "muri/v1/manifest-size", 44));
    const cipher = createCipheriv("aes-256-gcm", okm.subarray(0, 32), okm.subarray(32, 44));
    const plain = Buffer.alloc(8);
    plain.writeBigUInt64BE(2n ** 53n);
    const big = Buffer.concat([okm.subarray(32, 44), cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString("hex");
    assert.throws(() => openFileSize(secret, fileId, big), sealError("not a safe integer"));
  });

  it("rejects bad sizes, secrets and file ids by name", () => {
    for (const size of [-1, 1.5, Number.NaN, 2 ** 53]) {
      assert.throws(() => sealFileSize(secret, fileId, size), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "size");
    }
    assert.throws(() => sealFileSize(Buffer.alloc(31), fileId, 1), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "secret");
    assert.throws(() => openFileSize(secret, Buffer.alloc(31), "00"), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "fileId");
    assert.throws(() => sealFileSize(secret, fileId, -1), { message: "invalid size (-1): must be a non-negative integer" });
  });

  it("seals a content code in the top byte: codes 0-3 round trip, others are refused on both sides by name", () => {
    for (const content of [0, CONTENT_GZIP, CONTENT_DIRECTORY]) {
      const sealed = sealFileSize(secret, fileId, 77, content);
      assert.deepEqual(openSealedSize(secret, fileId, sealed), { size: 77, content });
    }
    for (const content of [-1, 1.5, CONTENT_DIRECTORY + 1, Number.NaN]) {
      assert.throws(() => sealFileSize(secret, fileId, 1, content), (e: unknown) => e instanceof InvalidParameterError && e.context.name === "content" && e.context.reason === "must be a content code in [0, 3]", `content ${content}`);
    }
    // A well-sealed code 4 (a newer writer's): refused as unknown, not read as a size.
    const okm = Buffer.from(hkdfSync("sha256", secret, fileId, "muri/v1/manifest-size", 44));
    const cipher = createCipheriv("aes-256-gcm", okm.subarray(0, 32), okm.subarray(32, 44));
    const plain = Buffer.alloc(8);
    plain.writeBigUInt64BE((4n << 56n) | 9n);
    const newer = Buffer.concat([okm.subarray(32, 44), cipher.update(plain), cipher.final(), cipher.getAuthTag()]).toString("hex");
    assert.throws(() => openSealedSize(secret, fileId, newer), sealError("content code 4 is unknown to this version (a newer muri wrote it)"));
  });
});

describe("crypto: a file's own key, by name", () => {
  it("FileKey and fileKeyOf name the argument of the wrong length; a key of another file is refused naming both", () => {
    const named = (name: string) => (e: unknown): boolean => e instanceof InvalidParameterError && e.context.name === name;
    assert.throws(() => new FileKey(Buffer.alloc(31), Buffer.alloc(32)), named("fileId"));
    assert.throws(() => new FileKey(fileId, Buffer.alloc(31)), named("prk"));
    assert.throws(() => fileKeyOf(secret, Buffer.alloc(33)), named("fileId"));
    const key = fileKeyOf(secret, fileId);
    // A FileKey given where a file id of the wrong length is passed, or for another file.
    assert.throws(() => sealFileSize(key, Buffer.alloc(31), 1), named("fileId"));
    const other = Buffer.alloc(32, 0x44);
    assert.throws(() => sealFileSize(key, other, 1), (e: unknown) => named("fileId")(e) && (e as InvalidParameterError).context.reason === `this key opens file ${fileId.toString("hex")} only`);
    assert.equal(sealFileSize(key, fileId, 5), sealFileSize(secret, fileId, 5), "the file's key seals as the secret does");
  });
});
