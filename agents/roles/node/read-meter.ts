/**
 * Paid reads, the member's side (docs/ARCHITECTURE.md, "Paid reads"). A Magu whose owner set a read
 * price (MaguAccess `readPrice`) is served to readers only against read vouchers: before fetching,
 * a reader sends `op: "read-pay"` on `/muri/search/2.0.0` with its EIP-712 `ReadVoucher` for this
 * member, for `n` more fragments and at least `n x readUnitPrice` more (the base price times the
 * bounded multiplier, read from the chain), with a `maxUnitPrice` at or above that unit price. The
 * member checks it (signer, count, total, the reader's max, no withdrawal pending, and that the
 * unsettled total fits in this member's share of the reader's deposit), keeps only the latest in
 * `Bucket.readVoucher` (so a restart loses no earnings), and credits the sending peer `n`
 * fragments; each fetch of that Magu's fragments by the peer then takes one credit. Members and
 * validators (repair, audits) read without paying. Vouchers are redeemed on chain (MaguAccess
 * `settleRead`) every `settleMs` when something is owed, at start (what a previous run kept), and
 * at once when the reader asks to withdraw.
 *
 * `op: "read-meter"` tells a reader where it stands with this member (unit price, multiplier, last
 * fragments and total), so a new `muri get` process continues its cumulative count.
 */
import type { CID } from "multiformats/cid";
import type { Address, Hex } from "viem";
import { getAddress, isAddress } from "viem";
import { recoverReadVoucher, type MuriContracts, type MuriPublicClient, type ReadVoucher } from "../../chain/index.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import { Bucket, type MetaDb } from "../../store/meta-db.js";
import { keyOf, loadKept, memberSlots, settlementRounds, type MeterInit } from "./voucher-book.js";

/** How long a Magu's prices and a reader's deposit are trusted. */
const CHAIN_READ_TTL_MS = 2_000;
/** The most fragments one voucher may prepay. */
export const MAX_PREPAID_FRAGMENTS = 1_024n;

export class ReadPaymentError extends Error {
  static readonly code = "ERR_READ_PAYMENT";
  readonly code = ReadPaymentError.code;
  constructor(readonly context: { magu: bigint; reason: string }) {
    super(`Magu ${context.magu} charges for reads: ${context.reason}`);
    this.name = "ReadPaymentError";
  }
}

export interface ReadMeterComponents {
  contracts: Pick<MuriContracts<MuriPublicClient>, "maguAccess" | "maguRegistry">;
  metaDb: MetaDb;
  /** The Magu a stored CID belongs to (undefined: not a Magu's data). */
  maguOf(cid: CID): bigint | undefined | Promise<bigint | undefined>;
  /** Whether `peer` is a member or validator of `magu` (they read for free). */
  insider(peer: string, magu: bigint): Promise<boolean>;
  /** Sends MaguAccess.settleRead and waits for it (the node's wallet). */
  settle(voucher: ReadVoucher, payer: Address, signature: Hex): Promise<void>;
  logger?: Logger;
}

interface Kept {
  magu: bigint;
  payer: Address;
  fragments: bigint;
  total: bigint;
  maxUnitPrice: bigint;
  signature: Hex;
  /** Total redeemed on chain as far as this node knows. */
  paid: bigint;
}

/** What a read costs here now. */
export interface ReadQuote {
  base: bigint;
  unit: bigint;
  multiplierBps: bigint;
}

export interface ReadMeter {
  /** Loads the kept vouchers, redeems what a previous run left owed, and starts the timer. */
  start(): Promise<void>;
  /** The fragment protocol's serve policy after access: undefined serves, else the reason. */
  chargeFetch(peer: string, cid: CID): Promise<string | undefined>;
  /** Handles `op: "read-pay"` and `op: "read-meter"` (undefined: another op). */
  handleRequest(request: unknown, peer: string): Promise<unknown>;
  /** Redeems what `payer` owes in `magu` now (WithdrawRequested), or everything owed. */
  settleNow(magu?: bigint, payer?: Address): Promise<number>;
  stop(): Promise<void>;
  stats(): { paidFetches: number; refused: number; settled: number; owed: bigint; redeemed: bigint };
}

export function createReadMeter(init: MeterInit, components: ReadMeterComponents): ReadMeter {
  const log = components.logger ?? silentLogger;
  const access = components.contracts.maguAccess;
  const bucket = components.metaDb.bucket(Bucket.readVoucher);
  const kept = new Map<string, Kept>();
  /** `${peer}/${magu}` -> fragments prepaid and not fetched yet. */
  const credit = new Map<string, bigint>();
  const quotes = new Map<bigint, { at: number; value: Promise<ReadQuote> }>();
  const counts = { paidFetches: 0, refused: 0, settled: 0, redeemed: 0n };
  let timer: NodeJS.Timeout | undefined;
  /** Serialises vouchers per (Magu, payer): their counts follow one another. */
  const locks = new Map<string, Promise<unknown>>();

  const quote = (magu: bigint): Promise<ReadQuote> => {
    const hit = quotes.get(magu);
    if (hit !== undefined && Date.now() - hit.at < CHAIN_READ_TTL_MS) return hit.value;
    const value = (async () => {
      // A free Magu (the usual case) costs one read per CHAIN_READ_TTL_MS, not three.
      const base = await access.read.readPrice([magu]);
      if (base === 0n) return { base, unit: 0n, multiplierBps: 10_000n };
      const [unit, [multiplierBps]] = await Promise.all([access.read.readUnitPrice([magu]), access.read.readMultiplier([magu])]);
      return { base, unit, multiplierBps };
    })();
    quotes.set(magu, { at: Date.now(), value });
    value.catch(() => quotes.delete(magu));
    return value;
  };

  const members = memberSlots(components.contracts.maguRegistry);

  const save = (k: Kept): Promise<void> =>
    bucket.put(
      keyOf(k.magu, k.payer),
      Buffer.from(JSON.stringify({ fragments: k.fragments.toString(), total: k.total.toString(), maxUnitPrice: k.maxUnitPrice.toString(), signature: k.signature, paid: k.paid.toString() })),
    );

  const parseMagu = (v: unknown): bigint => {
    if (typeof v !== "string" || !/^[1-9][0-9]{0,77}$/.test(v)) throw new Error("magu must be a decimal Magu id");
    return BigInt(v);
  };

  /** Checks a read voucher from `peer`; returns the record to keep and the fragments it prepays. */
  const accept = async (magu: bigint, raw: unknown): Promise<{ next: Kept; n: bigint }> => {
    const refuse = (reason: string): never => {
      counts.refused++;
      throw new ReadPaymentError({ magu, reason });
    };
    const q = await quote(magu);
    const w = raw as Record<string, unknown> | undefined;
    if (w === undefined || typeof w !== "object" || w === null) return refuse(`${q.unit} wei per fragment; send a read voucher (deposit with muri magu deposit ${magu} MURI)`);
    if (typeof w.payer !== "string" || !isAddress(w.payer)) return refuse("voucher.payer must be an address");
    for (const field of ["fragments", "total", "maxUnitPrice"]) {
      if (typeof w[field] !== "string" || !/^[0-9]{1,78}$/.test(w[field])) return refuse(`voucher.${field} must be a decimal string`);
    }
    if (typeof w.signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(w.signature)) return refuse("voucher.signature must be a 65-byte signature");
    const payer = getAddress(w.payer);
    const voucher: ReadVoucher = { magu, member: init.member, fragments: BigInt(w.fragments as string), total: BigInt(w.total as string), maxUnitPrice: BigInt(w.maxUnitPrice as string) };
    if (payer.toLowerCase() === init.member.toLowerCase()) return refuse("a member does not pay itself (MaguAccess refuses it)");
    const signer = await recoverReadVoucher(init.domain, voucher, w.signature as Hex).catch(() => undefined);
    if (signer === undefined || signer.toLowerCase() !== payer.toLowerCase()) return refuse(`the read voucher is not signed by ${payer} for member ${init.member}`);
    const last = kept.get(`${magu}/${payer.toLowerCase()}`);
    const n = voucher.fragments - (last?.fragments ?? 0n);
    const before = last?.total ?? 0n;
    if (n < 1n || n > MAX_PREPAID_FRAGMENTS) return refuse(`voucher counts ${voucher.fragments} fragments; the next is ${(last?.fragments ?? 0n) + 1n} to ${(last?.fragments ?? 0n) + MAX_PREPAID_FRAGMENTS} (ask op "read-meter")`);
    if (voucher.maxUnitPrice < q.unit) {
      return refuse(`the price is ${q.unit} wei per fragment (base ${q.base} x${Number(q.multiplierBps) / 10_000}), above the reader's maximum ${voucher.maxUnitPrice}`);
    }
    if (voucher.total < before + n * q.unit) return refuse(`voucher total ${voucher.total} must be at least ${before + n * q.unit} (${before} so far + ${n} x ${q.unit})`);
    // MaguAccess refuses a total above fragments x maxUnitPrice: such a voucher would never pay.
    if (voucher.total > voucher.fragments * voucher.maxUnitPrice) return refuse(`voucher total ${voucher.total} exceeds ${voucher.fragments} x its maxUnitPrice ${voucher.maxUnitPrice}`);
    if ((await access.read.withdrawableAt([magu, payer])) !== 0n) return refuse(`${payer} asked to withdraw its deposit: no reads on credit until it deposits again after withdrawing`);
    const paid = last?.paid ?? 0n;
    const balance = await access.read.balanceOf([magu, payer]);
    const share = balance / BigInt(await members(magu));
    if (voucher.total - paid > share) {
      return refuse(`${payer}'s deposit (${balance} wei, ${share} per member) does not cover the ${voucher.total - paid} wei owed here: deposit more (muri magu deposit ${magu} MURI)`);
    }
    return { next: { magu, payer, fragments: voucher.fragments, total: voucher.total, maxUnitPrice: voucher.maxUnitPrice, signature: w.signature as Hex, paid }, n };
  };

  const voucherOf = (k: Kept): ReadVoucher => ({ magu: k.magu, member: init.member, fragments: k.fragments, total: k.total, maxUnitPrice: k.maxUnitPrice });

  const rounds = settlementRounds(
    kept,
    {
      paidOnChain: async (k) => (await access.read.readSettled([k.magu, k.payer, init.member]))[0],
      send: (k) => components.settle(voucherOf(k), k.payer, k.signature),
      save,
      redeemed: (_k, before, after) => {
        counts.redeemed += after - before;
        counts.settled++;
      },
    },
    log,
    "read vouchers",
  );
  const settleAll = (magu?: bigint, payer?: Address): Promise<number> => rounds.run(magu, payer);

  return {
    async start() {
      await loadKept(bucket, kept, (magu, payer, v) => ({
        magu,
        payer,
        fragments: BigInt(v.fragments!),
        total: BigInt(v.total!),
        maxUnitPrice: BigInt(v.maxUnitPrice!),
        signature: v.signature as Hex,
        paid: BigInt(v.paid!),
      }));
      // What a previous run took and did not redeem is owed now.
      if ([...kept.values()].some((k) => k.total > k.paid)) void settleAll();
      timer = setInterval(() => void settleAll(), init.settleMs ?? 60_000);
      timer.unref();
    },

    async chargeFetch(peer, cid) {
      const magu = await components.maguOf(cid);
      if (magu === undefined) return undefined;
      const q = await quote(magu);
      if (q.base === 0n) return undefined;
      if (await components.insider(peer, magu)) return undefined;
      const key = `${peer}/${magu}`;
      const left = credit.get(key) ?? 0n;
      if (left < 1n) {
        counts.refused++;
        return new ReadPaymentError({ magu, reason: `${q.unit} wei per fragment; pay first with a read voucher (op "read-pay"), from a deposit (muri magu deposit ${magu} MURI)` }).message;
      }
      if (left === 1n) credit.delete(key);
      else credit.set(key, left - 1n);
      counts.paidFetches++;
      return undefined;
    },

    async handleRequest(raw, peer) {
      const r = raw as { op?: unknown; magu?: unknown; payer?: unknown; voucher?: unknown } | undefined;
      if (r?.op === "read-meter") {
        const magu = parseMagu(r.magu);
        if (typeof r.payer !== "string" || !isAddress(r.payer)) throw new Error("payer must be an address");
        const k = kept.get(`${magu}/${r.payer.toLowerCase()}`);
        const q = await quote(magu);
        return { ok: true, magu: r.magu, base: q.base.toString(), unit: q.unit.toString(), multiplierBps: q.multiplierBps.toString(), fragments: (k?.fragments ?? 0n).toString(), total: (k?.total ?? 0n).toString(), credit: (credit.get(`${peer}/${magu}`) ?? 0n).toString() };
      }
      if (r?.op !== "read-pay") return undefined;
      const magu = parseMagu(r.magu);
      const payer = String((r.voucher as { payer?: unknown } | undefined)?.payer).toLowerCase();
      const lockKey = `${magu}/${payer}`;
      const prev = locks.get(lockKey) ?? Promise.resolve();
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      locks.set(lockKey, held);
      await prev;
      try {
        const { next, n } = await accept(magu, r.voucher);
        await save(next);
        kept.set(lockKey, next);
        const key = `${peer}/${magu}`;
        const left = (credit.get(key) ?? 0n) + n;
        credit.set(key, left);
        return { ok: true, magu: r.magu, fragments: next.fragments.toString(), total: next.total.toString(), credit: left.toString() };
      } finally {
        if (locks.get(lockKey) === held) locks.delete(lockKey);
        release();
      }
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
