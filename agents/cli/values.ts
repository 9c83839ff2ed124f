/**
 * Parsers of option values, each naming the option in its error: MURI amounts with decimals,
 * byte sizes with units, roles, peer ids, integers, keys and URLs.
 */
import { readFile } from "node:fs/promises";
import { peerIdFromMultihash, peerIdFromString } from "@libp2p/peer-id";
import * as Digest from "multiformats/hashes/digest";
import { formatUnits, toHex, type Hex } from "viem";
import { MURI_DECIMALS, parseMuriAmount, rpcUrlList } from "../chain/index.js";
import { CAPACITY_UNIT_BYTES, type CapacitySpec } from "../store/index.js";
import { UsageError } from "./errors.js";

const MAX_UINT64 = (1n << 64n) - 1n;

/** "1000", "0.5" -> wei-like base units. Must be > 0 unless `allowZero`. */
export function parseMuri(value: string, option: string, allowZero = false): bigint {
  const amount = parseMuriAmount(value);
  if (amount === undefined) {
    throw new UsageError(
      `${option}: "${value}" is not an amount of MURI: use a decimal number such as 1000 or 0.5 (at most 18 decimals)`
    );
  }
  if (amount === 0n && !allowZero) throw new UsageError(`${option}: the amount must be greater than 0`);
  return amount;
}

/** Base units -> "1000" / "0.5" MURI. */
export function formatMuri(amount: bigint): string {
  return formatUnits(amount, MURI_DECIMALS);
}

const UNITS: Record<string, bigint> = {
  b: 1n,
  kb: 1000n,
  mb: 1000n ** 2n,
  gb: 1000n ** 3n,
  tb: 1000n ** 4n,
  kib: 1024n,
  mib: 1024n ** 2n,
  gib: 1024n ** 3n,
  tib: 1024n ** 4n,
};

/** "1073741824", "10GiB", "1.5TB" -> bytes (fits a uint64). */
export function parseBytes(value: string, option: string): bigint {
  const m = /^(\d+)(?:\.(\d+))?\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? UNITS[(m[3] || "b").toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new UsageError(
      `${option}: "${value}" is not a size: use bytes or a number with a unit (B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 10GiB`
    );
  }
  const frac = m[2] ?? "";
  const scale = 10n ** BigInt(frac.length);
  const bytes = (BigInt(m[1]! + frac) * unit) / scale;
  if (bytes === 0n) throw new UsageError(`${option}: the size must be greater than 0 bytes`);
  if (bytes > MAX_UINT64)
    throw new UsageError(`${option}: ${value} is larger than the registry allows (2^64 - 1 bytes)`);
  return bytes;
}

/**
 * A node's capacity: "50%" (a share of its disk's room, 0 < p <= 100, decimals allowed) or a size
 * as parseBytes takes it, at least one fragment (1 MiB: the registry reserves whole fragments).
 */
export function parseCapacity(value: string, option: string): CapacitySpec {
  const v = value.trim();
  if (v.endsWith("%")) {
    const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(v);
    const percent = m ? Number(m[1]) : NaN;
    if (!(percent > 0 && percent <= 100)) {
      throw new UsageError(`${option}: "${value}" is not a share of the disk: use a percentage above 0 and at most 100, e.g. 50%`);
    }
    return { percent };
  }
  const bytes = parseBytes(v, option);
  if (bytes < BigInt(CAPACITY_UNIT_BYTES)) {
    throw new UsageError(`${option}: ${value} is less than one fragment (1 MiB): a node that cannot hold one is never drafted`);
  }
  if (bytes > BigInt(Number.MAX_SAFE_INTEGER)) throw new UsageError(`${option}: ${value} is too large`);
  return { bytes: Number(bytes) };
}

/** "1073741824" -> "1 GiB" (largest binary unit that divides evenly, else bytes). */
export function formatBytes(bytes: bigint): string {
  for (const unit of ["TiB", "GiB", "MiB", "KiB"]) {
    const size = UNITS[unit.toLowerCase()]!;
    if (bytes >= size && bytes % size === 0n) return `${bytes / size} ${unit}`;
  }
  return `${bytes} B`;
}

/** Role bits of NodeRegistry. */
export const ROLE_BITS = { node: 1, validator: 2 } as const;
export type RoleName = keyof typeof ROLE_BITS;

/** "node,validator" -> 3. */
export function parseRoles(value: string, option: string): number {
  let bits = 0;
  for (const part of value
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    const bit = ROLE_BITS[part.toLowerCase() as RoleName];
    if (bit === undefined)
      throw new UsageError(`${option}: unknown role "${part}": use node, validator or node,validator`);
    bits |= bit;
  }
  if (bits === 0) throw new UsageError(`${option}: no role given: use node, validator or node,validator`);
  return bits;
}

/** 3 -> ["node", "validator"]. */
export function roleNames(bits: number): RoleName[] {
  return (Object.keys(ROLE_BITS) as RoleName[]).filter((r) => (bits & ROLE_BITS[r]) !== 0);
}

/** A libp2p peer id ("12D3Koo…") -> its multihash bytes as stored on chain; 0x-hex is taken as is. */
export function parsePeerId(value: string, option: string): Hex {
  const v = value.trim();
  if (/^0x([0-9a-fA-F]{2})+$/.test(v)) {
    if (v.length > 2 + 2 * 128) throw new UsageError(`${option}: at most 128 bytes`);
    return v.toLowerCase() as Hex;
  }
  try {
    return toHex(peerIdFromString(v).toMultihash().bytes);
  } catch {
    throw new UsageError(`${option}: "${value}" is not a libp2p peer id (e.g. 12D3KooW…) nor 0x-prefixed hex bytes`);
  }
}

/** On-chain peer id bytes -> the libp2p string when they are a peer id multihash, else hex. */
export function formatPeerId(bytes: Hex): string {
  try {
    const raw = Buffer.from(bytes.slice(2), "hex");
    return peerIdFromMultihash(Digest.decode(raw)).toString();
  } catch {
    try {
      const text = Buffer.from(bytes.slice(2), "hex").toString("utf8");
      if (/^[\x20-\x7e]+$/.test(text)) return text;
    } catch {
      // fall through
    }
    return bytes;
  }
}

/** A positive (or non-negative) integer within `max`. */
export function parseInteger(value: string, option: string, opts: { min?: bigint; max?: bigint } = {}): bigint {
  const v = value.trim();
  if (!/^\d+$/.test(v)) throw new UsageError(`${option}: "${value}" is not a whole number`);
  const n = BigInt(v);
  const min = opts.min ?? 1n;
  if (n < min) throw new UsageError(`${option}: must be at least ${min}, got ${n}`);
  if (opts.max !== undefined && n > opts.max) throw new UsageError(`${option}: must be at most ${opts.max}, got ${n}`);
  return n;
}

/** `--NAME PORT`: a TCP port to listen on, 0 for a free one; undefined when not given. */
export function parsePortOption(args: { string(name: string): string | undefined }, name: string): number | undefined {
  const port = args.string(name);
  return port === undefined ? undefined : Number(parseInteger(port, `--${name}`, { min: 0n, max: 65535n }));
}

/** `--http PORT`: where an agent or the devnet serves the dashboard (0: a free port); undefined when not given. */
export function parseHttpPort(args: { string(name: string): string | undefined }): number | undefined {
  return parsePortOption(args, "http");
}

/** A secp256k1 private key, with or without 0x. Never echoed back. */
export function parseKey(value: string, option: string): Hex {
  const v = value.trim();
  const hex = v.startsWith("0x") || v.startsWith("0X") ? v.slice(2) : v;
  if (!/^[0-9a-fA-F]{64}$/.test(hex))
    throw new UsageError(`${option}: not a private key: expected 64 hex digits (optionally 0x-prefixed)`);
  return `0x${hex.toLowerCase()}` as Hex;
}

/** An http(s) JSON-RPC URL. */
export function parseRpcUrl(value: string, option: string): string {
  const urls = rpcUrlList(value);
  if (urls.length === 0) throw new UsageError(`${option}: needs a URL, e.g. http://127.0.0.1:8545`);
  for (const v of urls) {
    let ok: boolean;
    try {
      const u = new URL(v);
      ok = u.protocol === "http:" || u.protocol === "https:";
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new UsageError(
        `${option}: "${v}" is not an http:// or https:// URL, e.g. http://127.0.0.1:8545 (several: separated by commas, tried in order)`,
      );
    }
  }
  return urls.join(",");
}

/** A multiaddr string (validated loosely: /proto/value/...). */
export function parseMultiaddr(value: string, option: string): string {
  const v = value.trim();
  if (!/^(\/[^/\s]+)+$/.test(v))
    throw new UsageError(`${option}: "${value}" is not a multiaddr such as /ip4/127.0.0.1/tcp/4001`);
  return v;
}

/** The passphrase in a file (its first line); the error names the option and the file. */
export async function readPassphraseFile(path: string, option: string): Promise<string> {
  try {
    return (await readFile(path, "utf8")).split(/\r?\n/)[0]!;
  } catch (err) {
    throw new UsageError(`${option}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
}
