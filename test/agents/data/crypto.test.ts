import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  decryptFragment,
  deriveFragmentKey,
  encryptFragment,
  ENCRYPTION_OVERHEAD,
  FileCipher,
  NONCE_SIZE,
} from "../../../agents/data/crypto.js";
import { DecryptionError, InvalidParameterError } from "../../../agents/data/errors.js";

const secret = Buffer.alloc(32, 0x11);
const fileId = Buffer.alloc(32, 0x22);

function isDecryptionError(index: number) {
  return (e: unknown): boolean => e instanceof DecryptionError && e.code === "ERR_DECRYPT_AUTH" && e.context.fragmentIndex === index;
}

describe("crypto: AES-256-GCM per fragment", () => {
  it("round trips and has the documented layout nonce ‖ ciphertext ‖ tag", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000, size: "max" }), fc.nat({ max: 1_000_000 }), (plain, index) => {
        const sealed = encryptFragment(secret, fileId, index, plain);
        assert.equal(sealed.length, plain.length + ENCRYPTION_OVERHEAD);
        assert.deepEqual(sealed.subarray(0, NONCE_SIZE), deriveFragmentKey(secret, fileId, index).nonce);
        assert.deepEqual(decryptFragment(secret, fileId, index, sealed), Buffer.from(plain));
      }),
      { numRuns: 100 },
    );
  });

  it("is deterministic for (secret, fileId, index) and never repeats a key or nonce across indices or files", () => {
    const plain = Buffer.from("same plaintext");
    assert.deepEqual(encryptFragment(secret, fileId, 3, plain), encryptFragment(secret, fileId, 3, plain));
    const keys = new Set<string>();
    const nonces = new Set<string>();
    for (const id of [fileId, Buffer.alloc(32, 0x23)]) {
      for (let i = 0; i < 500; i++) {
        const { key, nonce } = deriveFragmentKey(secret, id, i);
        keys.add(key.toString("hex"));
        nonces.add(nonce.toString("hex"));
      }
    }
    assert.equal(keys.size, 1000);
    assert.equal(nonces.size, 1000);
  });

  it("any flipped byte anywhere gives DecryptionError and no data (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 3000, size: "max" }), fc.nat(), fc.integer({ min: 1, max: 255 }), (plain, pick, xor) => {
        const sealed = encryptFragment(secret, fileId, 9, plain);
        const position = pick % sealed.length;
        sealed[position]! ^= xor;
        assert.throws(() => decryptFragment(secret, fileId, 9, sealed), isDecryptionError(9));
      }),
      { numRuns: 200 },
    );
  });

  it("wrong index, file id or secret, and truncated input give DecryptionError", () => {
    const sealed = encryptFragment(secret, fileId, 1, Buffer.from("hello world"));
    assert.throws(() => decryptFragment(secret, fileId, 2, sealed), isDecryptionError(2));
    assert.throws(() => decryptFragment(secret, Buffer.alloc(32, 0x99), 1, sealed), isDecryptionError(1));
    assert.throws(() => decryptFragment(randomBytes(32), fileId, 1, sealed), isDecryptionError(1));
    assert.throws(() => decryptFragment(secret, fileId, 1, sealed.subarray(0, sealed.length - 1)), isDecryptionError(1));
    assert.throws(() => decryptFragment(secret, fileId, 1, sealed.subarray(0, 10)), isDecryptionError(1));
    assert.throws(() => decryptFragment(secret, fileId, 1, Buffer.concat([sealed, Buffer.from([0])])), isDecryptionError(1));
  });

  it("seals into a caller buffer at an offset", () => {
    const cipher = new FileCipher(secret, fileId);
    const out = Buffer.alloc(100, 0xee);
    const view = cipher.seal(0, Buffer.from("abc"), out, 10);
    assert.equal(view.length, 3 + ENCRYPTION_OVERHEAD);
    assert.equal(out[9], 0xee);
    assert.equal(out[10 + view.length], 0xee);
    assert.deepEqual(cipher.open(0, out.subarray(10, 10 + view.length)), Buffer.from("abc"));
    assert.throws(() => cipher.seal(0, Buffer.alloc(80), out, 10), InvalidParameterError);
  });

  it("rejects secrets and file ids that are not 32 bytes", () => {
    assert.throws(() => new FileCipher(Buffer.alloc(16), fileId), InvalidParameterError);
    assert.throws(() => new FileCipher(secret, Buffer.alloc(31)), InvalidParameterError);
  });
});
