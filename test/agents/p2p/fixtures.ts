/**
 * Helpers shared by the p2p tests, their child peer processes and the transfer benchmark.
 */
import { createCipheriv, createHash } from "node:crypto";
import type { CID } from "multiformats/cid";

/** Deterministic pseudo-random bytes (AES-128-CTR keystream keyed by `seed`), same in every process. */
export function fragmentFromSeed(seed: string, size: number): Uint8Array {
  const key = createHash("sha256").update(seed).digest().subarray(0, 16);
  const cipher = createCipheriv("aes-128-ctr", key, Buffer.alloc(16));
  const out = cipher.update(Buffer.alloc(size));
  cipher.final();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** A FragmentSource/FragmentSink over a Map, used when a test does not need the real store. */
export class MemoryFragmentStore {
  private readonly fragments = new Map<string, Uint8Array>();

  has(cid: CID): boolean {
    return this.fragments.has(cid.toString());
  }

  get(cid: CID): Uint8Array {
    const bytes = this.fragments.get(cid.toString());
    if (bytes === undefined) {
      throw Object.assign(new Error(`fragment ${cid.toString()} is not in the store`), {
        name: "FragmentNotFoundError",
        code: "ERR_FRAGMENT_NOT_FOUND",
      });
    }
    return bytes;
  }

  put(cid: CID, bytes: Uint8Array): void {
    this.fragments.set(cid.toString(), bytes);
  }

  stats(): { count: number; usedBytes: number } {
    let usedBytes = 0;
    for (const bytes of this.fragments.values()) usedBytes += bytes.length;
    return { count: this.fragments.size, usedBytes };
  }

  async close(): Promise<void> {}
}
