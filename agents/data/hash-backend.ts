/**
 * SHA-256 batch primitives under the Merkle trees (docs/ENCODING.md § Hash).
 *
 * Two backends compute the same bytes:
 * - `node:crypto`: one `crypto.hash` call per leaf / inner node. Always available; the reference.
 * - `native`: agents/data/native/muri_sha256.node, an optional N-API addon with multi-buffer
 *   SHA-256 (AVX-512 16 lanes, AVX2 8 lanes, or portable C), one call per tree level. On this
 *   class of machine node:crypto costs ~2 µs per call, so a 1 MiB fragment tree (2047 hashes)
 *   cannot go beyond ~100 MB/s without batching. Build it with `bash agents/data/native/build.sh`.
 *
 * `MURI_SHA256_BACKEND=node` forces the reference backend (tests cross-check both).
 */
import { hash as cryptoHash } from "node:crypto";
import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { LEAF_SIZE } from "./constants.js";

/** Batch hashing primitives. Every output is written in place; inputs are never modified. */
export interface HashBackend {
  readonly name: string;
  /**
   * Leaf hashes of `data[0, size)`: for each i < count, out[32i, 32i+32) =
   * SHA-256(0x00 ‖ chunk_i) with chunk_i = bytes [1024i, 1024i+1024) zero-padded past `size`.
   * `count` = max(1, ceil(size / 1024)).
   */
  hashLeaves(data: Uint8Array, size: number, out: Uint8Array): void;
  /** For each i < pairs: out[32i..] = SHA-256(0x01 ‖ nodes[64i, 64i+64)). `out` may alias `nodes`. */
  hashPairs(nodes: Uint8Array, pairs: number, out: Uint8Array): void;
  /** SHA-256 of each message, written to out[32i..]. */
  sha256Many(messages: readonly Uint8Array[], out: Uint8Array): void;
}

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

function view(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** The reference backend over node:crypto (one native call per hash). */
export const nodeCryptoBackend: HashBackend = {
  name: "node:crypto",
  hashLeaves(data, size, out) {
    const src = view(data);
    const count = size === 0 ? 1 : Math.ceil(size / LEAF_SIZE);
    const dst = view(out);
    const scratch = Buffer.alloc(1 + LEAF_SIZE);
    scratch[0] = LEAF_PREFIX;
    for (let i = 0; i < count; i++) {
      const start = i * LEAF_SIZE;
      const end = Math.min(start + LEAF_SIZE, size);
      const n = end > start ? src.copy(scratch, 1, start, end) : 0;
      if (n < LEAF_SIZE) scratch.fill(0, 1 + n);
      cryptoHash("sha256", scratch, "buffer").copy(dst, 32 * i);
    }
  },
  hashPairs(nodes, pairs, out) {
    const src = view(nodes);
    const dst = view(out);
    const scratch = Buffer.allocUnsafe(65);
    scratch[0] = NODE_PREFIX;
    for (let i = 0; i < pairs; i++) {
      src.copy(scratch, 1, 64 * i, 64 * i + 64);
      cryptoHash("sha256", scratch, "buffer").copy(dst, 32 * i);
    }
  },
  sha256Many(messages, out) {
    const dst = view(out);
    for (let i = 0; i < messages.length; i++) cryptoHash("sha256", view(messages[i]!), "buffer").copy(dst, 32 * i);
  },
};

interface NativeAddon {
  /** Which SIMD kernel the addon selected at load ("avx512", "avx2", "scalar"). */
  kernel(): string;
  hashLeaves(data: Uint8Array, size: number, out: Uint8Array): void;
  hashPairs(nodes: Uint8Array, pairs: number, out: Uint8Array): void;
  sha256Many(messages: readonly Uint8Array[], out: Uint8Array): void;
}

/** Path of the optional native addon (see agents/data/native/build.sh). */
export const NATIVE_ADDON_PATH = fileURLToPath(new URL("./native/build/muri_sha256.node", import.meta.url));

function loadNative(): HashBackend | undefined {
  if (process.env.MURI_SHA256_BACKEND === "node") return undefined;
  if (!existsSync(NATIVE_ADDON_PATH)) return undefined;
  try {
    const addon = createRequire(import.meta.url)(NATIVE_ADDON_PATH) as NativeAddon;
    const kernel = addon.kernel();
    const backend: HashBackend = {
      name: `native-${kernel}`,
      hashLeaves: (data, size, out) => addon.hashLeaves(data, size, out),
      hashPairs: (nodes, pairs, out) => addon.hashPairs(nodes, pairs, out),
      sha256Many: kernel === "scalar" ? nodeCryptoBackend.sha256Many : (messages, out) => sha256ManySplit(addon, messages, out),
    };
    if (!selfTest(backend)) return undefined;
    return backend;
  } catch {
    return undefined;
  }
}

/**
 * Lanes only pay off when several messages share a length: groups of at least
 * MIN_LANES_GROUP equal-length messages go to the SIMD kernel together, the rest to OpenSSL,
 * which beats a mostly idle 8- or 16-lane kernel.
 */
export const MIN_LANES_GROUP = 3;

/** `sha256Many` through `addon` for the messages in groups of {@link MIN_LANES_GROUP} or more equal lengths, node:crypto for the rest. */
export function sha256ManySplit(addon: Pick<NativeAddon, "sha256Many">, messages: readonly Uint8Array[], out: Uint8Array): void {
  const counts = new Map<number, number>();
  for (const msg of messages) counts.set(msg.length, (counts.get(msg.length) ?? 0) + 1);
  if ([...counts.values()].every((c) => c >= MIN_LANES_GROUP)) {
    addon.sha256Many(messages, out);
    return;
  }
  const dst = view(out);
  const laned: number[] = [];
  messages.forEach((msg, i) => {
    if (counts.get(msg.length)! >= MIN_LANES_GROUP) laned.push(i);
    else cryptoHash("sha256", view(msg), "buffer").copy(dst, 32 * i);
  });
  if (laned.length === 0) return;
  const tmp = Buffer.allocUnsafe(32 * laned.length);
  addon.sha256Many(
    laned.map((i) => messages[i]!),
    tmp,
  );
  laned.forEach((i, j) => tmp.copy(dst, 32 * i, 32 * j, 32 * j + 32));
}

/**
 * Checks a backend against node:crypto on a few shapes before trusting it (each primitive, short
 * and partial leaves, several leaves, an odd number of pairs, messages of mixed lengths).
 */
export function selfTest(backend: HashBackend): boolean {
  const data = Buffer.alloc(5000);
  for (let i = 0; i < data.length; i++) data[i] = (i * 131 + 7) & 0xff;
  for (const size of [0, 1, 1024, 3000, 5000]) {
    const count = size === 0 ? 1 : Math.ceil(size / LEAF_SIZE);
    const a = Buffer.alloc(32 * count);
    const b = Buffer.alloc(32 * count);
    backend.hashLeaves(data, size, a);
    nodeCryptoBackend.hashLeaves(data, size, b);
    if (!a.equals(b)) return false;
  }
  const nodes = data.subarray(0, 64 * 37);
  const a = Buffer.alloc(32 * 37);
  const b = Buffer.alloc(32 * 37);
  backend.hashPairs(nodes, 37, a);
  nodeCryptoBackend.hashPairs(nodes, 37, b);
  if (!a.equals(b)) return false;
  const messages = [0, 1, 55, 56, 64, 119, 4999, 20, 100, 100, 100, 100, 999, 999, 999, 0, 0, 0].map((n, i) => data.subarray(i, i + n));
  const c = Buffer.alloc(32 * messages.length);
  const d = Buffer.alloc(32 * messages.length);
  backend.sha256Many(messages, c);
  nodeCryptoBackend.sha256Many(messages, d);
  return c.equals(d);
}

let active: HashBackend | undefined;

/** The backend in use: the native addon when built and self-tested, else node:crypto. */
export function hashBackend(): HashBackend {
  active ??= loadNative() ?? nodeCryptoBackend;
  return active;
}

/** Replaces the backend (tests and benchmarks); returns the previous one. */
export function setHashBackend(backend: HashBackend): HashBackend {
  const previous = hashBackend();
  active = backend;
  return previous;
}
