/**
 * Challenge derivation of docs/ENCODING.md § Challenges, identical to the contracts:
 * seed = keccak256(abi.encode(bytes32 periodSeed, uint256 maguId, address member, uint256 period));
 * for item i in 0..S-1 and try t in 0..MAX_TRIES-1: h = uint256(keccak256(abi.encode(seed, i, t))),
 * fragment = h % F; the first t whose fragment the member holds wins; leafSeed = h >> 128 and
 * leafIndex = leafSeed % leafCount(size).
 */
import { encodeAbiParameters, getAddress, hexToBigInt, isAddress, isHex, keccak256, type Address, type Hex } from "viem";
import { InvalidParameterError } from "./errors.js";
import { leafCount } from "./merkle.js";

/** Tries per item before a member that holds nothing found is given no item. */
export const MAX_TRIES = 64;

const SEED_PARAMS = [{ type: "bytes32" }, { type: "uint256" }, { type: "address" }, { type: "uint256" }] as const;
const DRAW_PARAMS = [{ type: "bytes32" }, { type: "uint256" }, { type: "uint256" }] as const;
const FALLBACK_PARAMS = [{ type: "uint256" }, { type: "bytes32" }] as const;

/** One challenged leaf. */
export interface ChallengeItem {
  /** Item number i in 0..S-1. */
  readonly item: number;
  /** The try t that found a fragment the member holds. */
  readonly attempt: number;
  /** Fragment index in the Magu, h % F. */
  readonly fragment: number;
  /** h >> 128; the leaf is leafSeed % leafCount(size of the fragment). */
  readonly leafSeed: bigint;
}

function bytes32(name: string, value: Hex | Uint8Array): Hex {
  const hex = typeof value === "string" ? value : (`0x${Buffer.from(value).toString("hex")}` as Hex);
  if (!isHex(hex) || hex.length !== 66) throw new InvalidParameterError(name, value, "must be 32 bytes");
  return hex.toLowerCase() as Hex;
}

function uint(name: string, value: bigint | number): bigint {
  const v = typeof value === "bigint" ? value : Number.isSafeInteger(value) ? BigInt(value) : -1n;
  if (v < 0n || v >= 1n << 256n) throw new InvalidParameterError(name, value, "must be a uint256");
  return v;
}

/** period(block) = (block - genesisBlock) / periodBlocks. */
export function periodOf(block: bigint, genesisBlock: bigint, periodBlocks: bigint): bigint {
  if (periodBlocks <= 0n) throw new InvalidParameterError("periodBlocks", periodBlocks, "must be positive");
  if (block < genesisBlock) throw new InvalidParameterError("block", block, `before genesis block ${genesisBlock}`);
  return (block - genesisBlock) / periodBlocks;
}

/** start(p) = genesisBlock + p·periodBlocks. */
export function periodStart(period: bigint, genesisBlock: bigint, periodBlocks: bigint): bigint {
  return genesisBlock + period * periodBlocks;
}

/** The late-seed fallback: keccak256(abi.encode(uint256 p, bytes32 blockhash(block.number - 1))). */
export function fallbackPeriodSeed(period: bigint | number, previousBlockHash: Hex | Uint8Array): Hex {
  return keccak256(encodeAbiParameters(FALLBACK_PARAMS, [uint("period", period), bytes32("previousBlockHash", previousBlockHash)]));
}

/** seed = keccak256(abi.encode(periodSeed, uint256 maguId, address member, uint256 period)). */
export function challengeSeed(periodSeed: Hex | Uint8Array, maguId: bigint | number, member: Address | string, period: bigint | number): Hex {
  if (!isAddress(member, { strict: false })) throw new InvalidParameterError("member", member, "must be an address");
  return keccak256(
    encodeAbiParameters(SEED_PARAMS, [bytes32("periodSeed", periodSeed), uint("maguId", maguId), getAddress(member), uint("period", period)]),
  );
}

/** h = uint256(keccak256(abi.encode(seed, uint256 i, uint256 t))). */
export function challengeDraw(seed: Hex | Uint8Array, item: number, attempt: number): bigint {
  return hexToBigInt(keccak256(encodeAbiParameters(DRAW_PARAMS, [bytes32("seed", seed), uint("item", item), uint("attempt", attempt)])));
}

/** Inputs of {@link challengeItems}. */
export interface ChallengeInput {
  readonly periodSeed: Hex | Uint8Array;
  readonly maguId: bigint | number;
  readonly member: Address | string;
  readonly period: bigint | number;
  /** Items per challenge (S). */
  readonly samples: number;
  /** Fragments in the Magu (F >= 1). */
  readonly fragmentCount: number;
  /** Whether the member holds fragment f (placement). */
  readonly holds: (fragment: number) => boolean;
}

/** The items a member must answer this period; an item with no held fragment within MAX_TRIES is absent. */
export function challengeItems(input: ChallengeInput): ChallengeItem[] {
  const { samples, fragmentCount } = input;
  if (!Number.isSafeInteger(samples) || samples < 0) throw new InvalidParameterError("samples", samples, "must be a non-negative integer");
  if (!Number.isSafeInteger(fragmentCount) || fragmentCount < 1) throw new InvalidParameterError("fragmentCount", fragmentCount, "must be >= 1");
  const seed = challengeSeed(input.periodSeed, input.maguId, input.member, input.period);
  const F = BigInt(fragmentCount);
  const items: ChallengeItem[] = [];
  for (let i = 0; i < samples; i++) {
    for (let t = 0; t < MAX_TRIES; t++) {
      const h = challengeDraw(seed, i, t);
      const fragment = Number(h % F);
      if (input.holds(fragment)) {
        items.push({ item: i, attempt: t, fragment, leafSeed: h >> 128n });
        break;
      }
    }
  }
  return items;
}

/** leafIndex = leafSeed % leafCount(size). */
export function leafIndexFor(leafSeed: bigint, size: number): number {
  return Number(leafSeed % BigInt(leafCount(size)));
}
