/**
 * What the search meter and the read meter share (search-meter.ts, read-meter.ts): the latest
 * cumulative voucher each payer gave this member per Magu, kept in a LevelDB bucket under the Magu
 * id (32 bytes) ‖ the payer (20), and redeemed on chain one round at a time.
 */
import type { Address, TypedDataDomain } from "viem";
import { getAddress } from "viem";
import type { MuriContracts, MuriPublicClient } from "../../chain/index.js";
import type { Logger } from "../../store/logger.js";
import type { BucketView } from "../../store/meta-db.js";

/** How either meter is set up. */
export interface MeterInit {
  member: Address;
  /** MaguAccess's EIP-712 domain. */
  domain: TypedDataDomain;
  /** How often owed vouchers are redeemed on chain (default 60 s). */
  settleMs?: number;
}

/** A kept voucher's parts both meters have. */
export interface KeptVoucher {
  magu: bigint;
  payer: Address;
  total: bigint;
  /** Total paid on chain as far as this node knows. */
  paid: bigint;
}

/** The LevelDB key of a (Magu, payer) voucher record: the Magu id (32 bytes) ‖ the payer (20). */
export function keyOf(magu: bigint, payer: Address): Uint8Array {
  return Buffer.concat([Buffer.from(magu.toString(16).padStart(64, "0"), "hex"), Buffer.from(payer.slice(2), "hex")]);
}

/** Loads every kept voucher of `bucket` into `kept` (keyed `${magu}/${payer lowercase}`); `parse` reads the JSON value. */
export async function loadKept<K extends KeptVoucher>(bucket: BucketView, kept: Map<string, K>, parse: (magu: bigint, payer: Address, value: Record<string, string>) => K): Promise<void> {
  for await (const [key, value] of bucket.entries()) {
    const magu = BigInt(`0x${Buffer.from(key.subarray(0, 32)).toString("hex")}`);
    const payer = getAddress(`0x${Buffer.from(key.subarray(32)).toString("hex")}`);
    kept.set(`${magu}/${payer.toLowerCase()}`, parse(magu, payer, JSON.parse(Buffer.from(value).toString("utf8")) as Record<string, string>));
  }
}

/** A Magu's member slots (fixed at creation), read once: each member lets at most deposit / slots go unsettled. */
export function memberSlots(maguRegistry: MuriContracts<MuriPublicClient>["maguRegistry"]): (magu: bigint) => Promise<number> {
  const sizes = new Map<bigint, Promise<number>>();
  return (magu) => {
    let n = sizes.get(magu);
    if (n === undefined) {
      n = maguRegistry.read.maguInfo([magu]).then((info) => Math.max(1, Number(info.params.members)));
      sizes.set(magu, n);
      n.catch(() => sizes.delete(magu));
    }
    return n;
  };
}

export interface SettlementRounds {
  /** Redeems what `payer` owes in `magu` (either may be left out: all), after any round under way; resolves to the vouchers redeemed. */
  run(magu?: bigint, payer?: Address): Promise<number>;
  /** Waits for the round under way, at most `ms`. */
  drain(ms: number): Promise<void>;
}

/** How one meter redeems a kept voucher. */
export interface Redeemer<K extends KeptVoucher> {
  /** What the chain says this payer's vouchers paid this member in the Magu. */
  paidOnChain(k: K): Promise<bigint>;
  /** Sends the voucher and waits for it. */
  send(k: K): Promise<void>;
  save(k: K): Promise<void>;
  /** After a redemption that paid `before` -> `after`. */
  redeemed(k: K, before: bigint, after: bigint): void;
}

/**
 * Settlement rounds over `kept`: a voucher whose total is above what was paid is sent (unless the
 * chain says it was paid meanwhile) and the paid total saved; a failure is logged and left to the
 * next round.
 */
export function settlementRounds<K extends KeptVoucher>(kept: Map<string, K>, r: Redeemer<K>, log: Logger, what: string): SettlementRounds {
  let settling: Promise<number> | undefined;
  const settleOne = async (k: K): Promise<boolean> => {
    if (k.total <= k.paid) return false;
    const before = await r.paidOnChain(k);
    if (before < k.total) await r.send(k);
    const after = before < k.total ? await r.paidOnChain(k) : before;
    k.paid = after;
    // A voucher taken while the transaction was under way replaced `k` in `kept` and was saved
    // then: saving `k` now would put the older voucher back on disk, and a restart would lose the
    // newer one's unredeemed part.
    if ([...kept.values()].includes(k)) await r.save(k);
    if (before >= k.total) return false;
    r.redeemed(k, before, after);
    log.info(`${what} redeemed`, { magu: k.magu.toString(), payer: k.payer, paid: after.toString() });
    return true;
  };
  return {
    run(magu, payer) {
      const round = async (): Promise<number> => {
        let n = 0;
        for (const k of kept.values()) {
          if (magu !== undefined && k.magu !== magu) continue;
          if (payer !== undefined && k.payer.toLowerCase() !== payer.toLowerCase()) continue;
          try {
            if (await settleOne(k)) n++;
          } catch (err) {
            log.warn(`redeeming ${what} failed (next round retries)`, { magu: k.magu.toString(), payer: k.payer, error: (err as Error).message });
          }
        }
        return n;
      };
      // One round at a time; a request during one runs after it.
      const next = (settling ?? Promise.resolve(0)).then(round, round);
      settling = next;
      return next;
    },
    async drain(ms) {
      // A round under way is given a moment; what it did not finish is kept and redeemed next run.
      await Promise.race([settling?.catch(() => undefined), new Promise((resolve) => setTimeout(resolve, ms).unref())]);
    },
  };
}
