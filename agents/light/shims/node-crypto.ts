/**
 * What the browser bundle gets for `node:crypto` (agents/light/bundle.ts maps it here): SHA-256 from
 * @noble/hashes, which is all the light client's code paths hash with (Merkle leaves and nodes,
 * CIDs), and random bytes from WebCrypto. The ciphers, HMAC and ECDH that agents/data imports for
 * files and shares are never called by the light client: they throw, naming what is missing.
 */
import { sha256 } from "@noble/hashes/sha2.js";

function bytes(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? new TextEncoder().encode(data) : data;
}

function sha256Only(algorithm: string): void {
  if (algorithm !== "sha256") throw new Error(`the light client's node:crypto has sha256 only, not ${algorithm}`);
}

/** `crypto.hash(algorithm, data, "buffer")`: the digest as a Buffer. */
export function hash(algorithm: string, data: Uint8Array | string): Buffer {
  sha256Only(algorithm);
  return Buffer.from(sha256(bytes(data)));
}

/** `crypto.createHash("sha256")` with `update` and `digest`. */
export function createHash(algorithm: string): { update(data: Uint8Array | string): unknown; digest(encoding?: "hex"): Buffer | string; copy(): unknown } {
  sha256Only(algorithm);
  const make = (h: ReturnType<typeof sha256.create>) => {
    const self = {
      update(data: Uint8Array | string) {
        h.update(bytes(data));
        return self;
      },
      digest(encoding?: "hex"): Buffer | string {
        const out = Buffer.from(h.digest());
        return encoding === "hex" ? out.toString("hex") : out;
      },
      copy() {
        return make(h.clone());
      },
    };
    return self;
  };
  return make(sha256.create());
}

export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) throw new RangeError("timingSafeEqual: inputs differ in length");
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function randomBytes(n: number): Buffer {
  const out = Buffer.alloc(n);
  globalThis.crypto.getRandomValues(out);
  return out;
}

function missing(name: string): () => never {
  return () => {
    throw new Error(`node:crypto ${name} is not available in the light client`);
  };
}

export const createCipheriv = missing("createCipheriv");
export const createDecipheriv = missing("createDecipheriv");
export const createHmac = missing("createHmac");
export const createECDH = missing("createECDH");
export const hkdfSync = missing("hkdfSync");
export const ECDH = { convertKey: missing("ECDH.convertKey") };
