/**
 * Rendezvous placement of docs/ENCODING.md § Placement, identical to
 * contracts/libraries/PlacementLib.sol:
 * score(maguId, group, slot) = uint256(keccak256(abi.encode(uint256 maguId, uint256 group, uint256 slot)));
 * rank = slots by score, highest first, ties to the lower slot.
 */
import { encodeAbiParameters, hexToBigInt, keccak256 } from "viem";
import { IndexOutOfRangeError, InvalidParameterError } from "./errors.js";

const SCORE_PARAMS = [{ type: "uint256" }, { type: "uint256" }, { type: "uint256" }] as const;
const UINT256_MAX = (1n << 256n) - 1n;

/** Integer-like inputs accepted for uint256 ids. */
export type UintLike = bigint | number;

function toUint256(name: string, value: UintLike): bigint {
  const v = typeof value === "bigint" ? value : Number.isSafeInteger(value) ? BigInt(value) : -1n;
  if (v < 0n || v > UINT256_MAX) throw new InvalidParameterError(name, value, "must be a uint256");
  return v;
}

function toCount(name: string, value: number, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw new InvalidParameterError(name, value, `must be an integer >= ${min}`);
  return value;
}

/** The score of `slot` for `group`: uint256(keccak256(abi.encode(maguId, group, slot))). */
export function score(maguId: UintLike, group: UintLike, slot: UintLike): bigint {
  const encoded = encodeAbiParameters(SCORE_PARAMS, [toUint256("maguId", maguId), toUint256("group", group), toUint256("slot", slot)]);
  return hexToBigInt(keccak256(encoded));
}

/** The `nSlots` slots ranked for `group`: highest score first, ties to the lower slot. */
export function rank(maguId: UintLike, group: UintLike, nSlots: number): number[] {
  toCount("nSlots", nSlots, 1);
  const scored = Array.from({ length: nSlots }, (_, slot) => ({ slot, s: score(maguId, group, slot) }));
  scored.sort((a, b) => (a.s === b.s ? a.slot - b.slot : a.s > b.s ? -1 : 1));
  return scored.map((x) => x.slot);
}

/** Vector Magu with replication `r`: the slots holding fragment `f` (the first r of rank(f)). */
export function holdersVector(maguId: UintLike, f: UintLike, nSlots: number, r: number): number[] {
  toCount("r", r, 1);
  if (r > nSlots) throw new InvalidParameterError("r", r, `replication exceeds the ${nSlots} member slots`);
  return rank(maguId, f, nSlots).slice(0, r);
}

/**
 * Blob Magu with `k` data + `m` parity shards: the slot holding fragment `f`, which is shard
 * f % (k+m) of stripe f / (k+m); group = stripe; holder = rank(stripe)[f % (k+m)].
 */
export function holderBlob(maguId: UintLike, f: UintLike, nSlots: number, k: number, m: number): number {
  toCount("k", k, 1);
  toCount("m", m, 0);
  const w = k + m;
  if (w > nSlots) throw new InvalidParameterError("k + m", w, `stripe width exceeds the ${nSlots} member slots`);
  const fragment = toUint256("f", f);
  const stripe = fragment / BigInt(w);
  const position = Number(fragment % BigInt(w));
  return rank(maguId, stripe, nSlots)[position]!;
}

/** Whether `slot` holds fragment `f`: PlacementLib.holds (replication 0 = blob Magu with stripe width k+m). */
export function holds(
  maguId: UintLike,
  f: UintLike,
  nSlots: number,
  slot: number,
  layout: { replication: number } | { k: number; m: number },
): boolean {
  if (!Number.isSafeInteger(slot) || slot < 0 || slot >= nSlots) throw new IndexOutOfRangeError("slot", slot, nSlots);
  if ("replication" in layout) return holdersVector(maguId, f, nSlots, layout.replication).includes(slot);
  return holderBlob(maguId, f, nSlots, layout.k, layout.m) === slot;
}

/** Fragments `0..fragmentCount-1` held by `slot` (the work list of one member). */
export function fragmentsOfSlot(
  maguId: UintLike,
  fragmentCount: number,
  nSlots: number,
  slot: number,
  layout: { replication: number } | { k: number; m: number },
): number[] {
  toCount("fragmentCount", fragmentCount, 0);
  const out: number[] = [];
  if ("replication" in layout) {
    for (let f = 0; f < fragmentCount; f++) if (holds(maguId, f, nSlots, slot, layout)) out.push(f);
    return out;
  }
  const w = layout.k + layout.m;
  if (w > nSlots) throw new InvalidParameterError("k + m", w, `stripe width exceeds the ${nSlots} member slots`);
  for (let stripe = 0; stripe * w < fragmentCount; stripe++) {
    const position = rank(maguId, stripe, nSlots).indexOf(slot);
    const f = stripe * w + position;
    if (position >= 0 && position < w && f < fragmentCount) out.push(f);
  }
  return out;
}
