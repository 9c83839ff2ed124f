/**
 * Paid off-chain searches, the member's side (docs/ARCHITECTURE.md, "Metered search"). A Magu
 * whose owner set a search price (MaguAccess `searchPrice`) is searched only against vouchers: each
 * search request carries the payer's EIP-712 `Voucher` for this member, one search and at least one
 * price more than the last voucher this member took from that payer. The member checks it (signer,
 * member, Magu, count, total, and that this member's share of the payer's deposit - the deposit over
 * the Magu's member slots - covers what is still unpaid here), keeps only
 * the latest in `Bucket.voucher` (so a restart loses no earnings), and settles it on chain
 * (MaguAccess `settle`): every `settleMs` when something is owed, and at once when the payer asks to
 * withdraw (`WithdrawRequested`; members have `withdrawDelayBlocks` to settle).
 *
 * `op: "meter"` tells a client where it stands with this member (price, last searches and total),
 * so a client that restarted continues its count.
 */
import type { Address, Hex } from "viem";
import { getAddress, isAddress } from "viem";
import { recoverVoucher, type MuriContracts, type MuriPublicClient, type Voucher } from "../../chain/index.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import { Bucket, type MetaDb } from "../../store/meta-db.js";
import { keyOf, loadKept, memberSlots, settlementRounds, type MeterInit } from "./voucher-book.js";

/** How long a Magu's price and a payer's deposit are trusted. */
const CHAIN_READ_TTL_MS = 2_000;

export class SearchPaymentError extends Error {
  static readonly code = "ERR_SEARCH_PAYMENT";
  readonly code = SearchPaymentError.code;
  constructor(
    readonly context: { magu: bigint; reason: string },
  ) {
    super(`Magu ${context.magu} charges for searches: ${context.reason}`);
    this.name = "SearchPaymentError";
  }
}

export interface SearchMeterComponents {
  contracts: Pick<MuriContracts<MuriPublicClient>, "maguAccess" | "maguRegistry">;
  metaDb: MetaDb;
  /** Sends MaguAccess.settle and waits for it (the node's wallet). */
  settle(voucher: Voucher, payer: Address, signature: Hex): Promise<void>;
  logger?: Logger;
}

interface Kept {
  magu: bigint;
  payer: Address;
  searches: bigint;
  total: bigint;
  signature: Hex;
  /** Total settled on chain as far as this node knows. */
  paid: bigint;
}

/** The wire form of a voucher in a search request. */
export interface WireVoucher {
  payer: string;
  searches: string;
  total: string;
  signature: string;
}

export interface SearchMeter {
  /** Loads the kept vouchers and starts the settlement timer. */
  start(): Promise<void>;
  /**
   * Before `searches` searches of `magu` (one request: a query, or a batch of them): throws
   * SearchPaymentError unless it is free or `voucher` pays for them (`searches` more, and that many
   * prices more, than the last voucher kept).
   * The voucher is kept only by `done(true)` once the search was answered; `done(false)` drops it.
   * The payer's next voucher waits until then.
   */
  charge(magu: bigint, voucher: unknown, searches?: number): Promise<(answered: boolean) => Promise<void>>;
  /** Handles `op: "meter"` (undefined: another op). */
  handleRequest(request: unknown): Promise<unknown>;
  /** Settles what `payer` owes in `magu` now (WithdrawRequested), or everything owed. */
  settleNow(magu?: bigint, payer?: Address): Promise<number>;
  stop(): Promise<void>;
  stats(): { charged: number; refused: number; settled: number; owed: bigint };
}

export function createSearchMeter(init: MeterInit, components: SearchMeterComponents): SearchMeter {
  const log = components.logger ?? silentLogger;
  const access = components.contracts.maguAccess;
  const bucket = components.metaDb.bucket(Bucket.voucher);
  const kept = new Map<string, Kept>();
  const prices = new Map<bigint, { at: number; value: Promise<bigint> }>();
  const counts = { charged: 0, refused: 0, settled: 0 };
  let timer: NodeJS.Timeout | undefined;
  /** Serialises vouchers per (Magu, payer): their counts must follow one another. */
  const locks = new Map<string, Promise<unknown>>();

  const price = (magu: bigint): Promise<bigint> => {
    const hit = prices.get(magu);
    if (hit !== undefined && Date.now() - hit.at < CHAIN_READ_TTL_MS) return hit.value;
    const value = access.read.searchPrice([magu]);
    prices.set(magu, { at: Date.now(), value });
    value.catch(() => prices.delete(magu));
    return value;
  };

  const members = memberSlots(components.contracts.maguRegistry);

  const save = (k: Kept): Promise<void> =>
    bucket.put(keyOf(k.magu, k.payer), Buffer.from(JSON.stringify({ searches: k.searches.toString(), total: k.total.toString(), signature: k.signature, paid: k.paid.toString() })));

  const accept = async (magu: bigint, raw: unknown, n: number): Promise<Kept> => {
    const refuse = (reason: string): never => {
      counts.refused++;
      throw new SearchPaymentError({ magu, reason });
    };
    const w = raw as Partial<WireVoucher> | undefined;
    const p = await price(magu);
    if (w === undefined || typeof w !== "object") return refuse(`${p} wei per search; send a voucher (deposit with muri magu deposit ${magu} MURI)`);
    if (typeof w.payer !== "string" || !isAddress(w.payer)) return refuse("voucher.payer must be an address");
    if (typeof w.searches !== "string" || !/^[0-9]{1,20}$/.test(w.searches)) return refuse("voucher.searches must be a decimal string");
    if (typeof w.total !== "string" || !/^[0-9]{1,78}$/.test(w.total)) return refuse("voucher.total must be a decimal string");
    if (typeof w.signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(w.signature)) return refuse("voucher.signature must be a 65-byte signature");
    const payer = getAddress(w.payer);
    const voucher: Voucher = { magu, member: init.member, searches: BigInt(w.searches), total: BigInt(w.total) };
    const signer = await recoverVoucher(init.domain, voucher, w.signature as Hex).catch(() => undefined);
    if (signer === undefined || signer.toLowerCase() !== payer.toLowerCase()) return refuse(`the voucher is not signed by ${payer} for member ${init.member}`);
    const key = `${magu}/${payer.toLowerCase()}`;
    const last = kept.get(key);
    const searches = last?.searches ?? 0n;
    const total = last?.total ?? 0n;
    const more = BigInt(n);
    if (voucher.searches !== searches + more) return refuse(`voucher counts ${voucher.searches} searches; the next is ${searches + more} (${searches} so far + ${n} in this request; ask op "meter")`);
    if (voucher.total < total + more * p) return refuse(`voucher total ${voucher.total} must be at least ${total + more * p} (${total} so far + ${p} per search x ${n})`);
    const paid = last?.paid ?? 0n;
    // A payer that asked to withdraw may leave before a voucher taken now is settled: no credit.
    if ((await access.read.withdrawableAt([magu, payer])) !== 0n) return refuse(`${payer} asked to withdraw its deposit: no searches on credit until it deposits again after withdrawing`);
    // Each member lets at most its share of the deposit go unsettled, so a payer searching every
    // member before they settle never owes more than it deposited.
    const balance = await access.read.balanceOf([magu, payer]);
    const share = balance / BigInt(await members(magu));
    if (voucher.total - paid > share) {
      return refuse(`${payer}'s deposit (${balance} wei, ${share} per member) does not cover the ${voucher.total - paid} wei owed here: deposit more (muri magu deposit ${magu} MURI)`);
    }
    return { magu, payer, searches: voucher.searches, total: voucher.total, signature: w.signature as Hex, paid };
  };

  const rounds = settlementRounds(
    kept,
    {
      paidOnChain: async (k) => (await access.read.settled([k.magu, k.payer, init.member]))[0],
      send: (k) => components.settle({ magu: k.magu, member: init.member, searches: k.searches, total: k.total }, k.payer, k.signature),
      save,
      redeemed: () => void counts.settled++,
    },
    log,
    "search vouchers",
  );
  const settleAll = (magu?: bigint, payer?: Address): Promise<number> => rounds.run(magu, payer);

  return {
    async start() {
      await loadKept(bucket, kept, (magu, payer, v) => ({ magu, payer, searches: BigInt(v.searches!), total: BigInt(v.total!), signature: v.signature as Hex, paid: BigInt(v.paid!) }));
      timer = setInterval(() => void settleAll(), init.settleMs ?? 60_000);
      timer.unref();
    },

    async charge(magu, voucher, searches = 1) {
      if ((await price(magu)) === 0n) return async () => undefined;
      const payer = (voucher as { payer?: unknown } | undefined)?.payer;
      const key = `${magu}/${String(payer).toLowerCase()}`;
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const prev = locks.get(key) ?? Promise.resolve();
      locks.set(key, held);
      await prev;
      let next: Kept;
      try {
        next = await accept(magu, voucher, searches);
      } catch (err) {
        release();
        throw err;
      }
      return async (answered) => {
        try {
          if (!answered) return;
          await save(next);
          kept.set(key, next);
          counts.charged++;
        } finally {
          if (locks.get(key) === held) locks.delete(key);
          release();
        }
      };
    },

    async handleRequest(raw) {
      const r = raw as { op?: unknown; magu?: unknown; payer?: unknown } | undefined;
      if (r?.op !== "meter") return undefined;
      if (typeof r.magu !== "string" || !/^[1-9][0-9]{0,77}$/.test(r.magu)) throw new Error("magu must be a decimal Magu id");
      if (typeof r.payer !== "string" || !isAddress(r.payer)) throw new Error("payer must be an address");
      const magu = BigInt(r.magu);
      const k = kept.get(`${magu}/${r.payer.toLowerCase()}`);
      return { ok: true, magu: r.magu, price: (await price(magu)).toString(), searches: (k?.searches ?? 0n).toString(), total: (k?.total ?? 0n).toString() };
    },

    settleNow: settleAll,

    async stop() {
      if (timer !== undefined) clearInterval(timer);
      await rounds.drain(5_000);
    },

    stats() {
      let owed = 0n;
      for (const k of kept.values()) owed += k.total - k.paid;
      return { ...counts, owed };
    },
  };
}
