/**
 * Paid reads, the member's side (docs/ARCHITECTURE.md, "Paid reads"). A Magu whose owner set a read
 * price (MaguAccess `readPrice`) is served to readers only against read vouchers: before fetching,
 * a reader sends `op: "read-pay"` on `/muri/search/2.0.0` with its EIP-712 `ReadVoucher` for this
 * member and the fragments it is about to fetch (`served`, NO_FRAGMENT for a document): `n` more
 * fragments, the reads hash chain extended by exactly those, and at least the sum of their unit
 * prices more (`readUnitPrice(magu, fragment, member)`: the base price times that fragment's
 * bounded multiplier, read from the chain), with a `maxUnitPrice` at or above each. The member
 * checks it (signer, count, chain, total, the reader's max, no withdrawal pending, and that the
 * unsettled total fits in this member's share of the reader's deposit), keeps the latest voucher
 * and the fragments served since the last settlement in `Bucket.readVoucher` (so a restart loses
 * no earnings), and credits the sending peer those fragments; each fetch of that Magu's data by
 * the peer then takes the credit of its fragment (a document, or a fragment whose index this
 * node does not know yet, takes any credit). Members and validators (repair, audits) read without
 * paying. Vouchers are redeemed on chain (MaguAccess `settleRead`, listing the fragments served
 * since the chain's last settlement) every `settleMs` when something is owed, as soon as
 * SETTLE_AT_READS fragments wait, at start (what a previous run kept), and at once when the reader
 * asks to withdraw.
 *
 * `op: "read-meter"` tells a reader where it stands with this member (last fragments, reads chain
 * and total), so a new `muri get` process continues its cumulative count.
 */
import type { CID } from "multiformats/cid";
import type { Address, Hex } from "viem";
import { getAddress, isAddress } from "viem";
import { extendReads, NO_FRAGMENT, NO_READS, recoverReadVoucher, type MuriContracts, type MuriPublicClient, type ReadVoucher } from "../../chain/index.js";
import { silentLogger, type Logger } from "../../store/logger.js";
import { Bucket, type MetaDb } from "../../store/meta-db.js";
import { keyOf, loadKept, memberSlots, settlementRounds, type MeterInit } from "./voucher-book.js";

/** How long a Magu's prices and a reader's deposit are trusted. */
const CHAIN_READ_TTL_MS = 2_000;
/** The most fragments one voucher may prepay. */
export const MAX_PREPAID_FRAGMENTS = 1_024n;
/** Fragments waiting for settlement that start one at once (settleRead's gas grows with them). */
export const SETTLE_AT_READS = 256;
/** Fragments waiting for settlement beyond which a reader is asked to wait: one settleRead stays well within a block. */
export const MAX_UNSETTLED_READS = 2_048;

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
  /** The fragment index of a committed fragment this node holds (undefined: a document, or not indexed yet). */
  fragmentOf?(cid: CID): number | undefined;
  /** Whether `peer` is a member or validator of `magu` (they read for free). */
  insider(peer: string, magu: bigint): Promise<boolean>;
  /** Sends MaguAccess.settleRead and waits for it (the node's wallet). */
  settle(voucher: ReadVoucher, payer: Address, signature: Hex, served: readonly number[]): Promise<void>;
  logger?: Logger;
}

interface Kept {
  magu: bigint;
  payer: Address;
  fragments: bigint;
  total: bigint;
  maxUnitPrice: bigint;
  reads: Hex;
  signature: Hex;
  /** Total redeemed on chain as far as this node knows. */
  paid: bigint;
  /** The fragments served after the first `pendingFrom` (what settleRead lists). */
  pending: number[];
  pendingFrom: bigint;
}

/** What a read of one fragment costs here now. */
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
  stats(): { paidFetches: number; refused: number; settled: number; owed: bigint; redeemed: bigint; unsettledReads: number };
}

export function createReadMeter(init: MeterInit, components: ReadMeterComponents): ReadMeter {
  const log = components.logger ?? silentLogger;
  const access = components.contracts.maguAccess;
  const bucket = components.metaDb.bucket(Bucket.readVoucher);
  const kept = new Map<string, Kept>();
  /** `${peer}/${magu}` -> fragment -> fetches prepaid and not made yet. */
  const credit = new Map<string, Map<number, number>>();
  const creditCount = (key: string): number => [...(credit.get(key)?.values() ?? [])].reduce((a, b) => a + b, 0);
  const quotes = new Map<string, { at: number; value: Promise<ReadQuote> }>();
  const prices = new Map<bigint, { at: number; value: Promise<bigint> }>();
  const counts = { paidFetches: 0, refused: 0, settled: 0, redeemed: 0n };
  let timer: NodeJS.Timeout | undefined;
  /** Serialises vouchers per (Magu, payer): their counts follow one another. */
  const locks = new Map<string, Promise<unknown>>();

  /** The Magu's base price (a free Magu, the usual case, costs one chain read per CHAIN_READ_TTL_MS). */
  const basePrice = (magu: bigint): Promise<bigint> => {
    const hit = prices.get(magu);
    if (hit !== undefined && Date.now() - hit.at < CHAIN_READ_TTL_MS) return hit.value;
    const value = access.read.readPrice([magu]);
    prices.set(magu, { at: Date.now(), value });
    value.catch(() => prices.delete(magu));
    return value;
  };
  /** What this member asks for `fragment` of `magu` now (its own multiplier for that fragment). */
  const quote = (magu: bigint, fragment: number): Promise<ReadQuote> => {
    const key = `${magu}/${fragment}`;
    const hit = quotes.get(key);
    if (hit !== undefined && Date.now() - hit.at < CHAIN_READ_TTL_MS) return hit.value;
    const value = (async () => {
      const base = await basePrice(magu);
      if (base === 0n) return { base, unit: 0n, multiplierBps: 10_000n };
      const [multiplierBps] = await access.read.readMultiplier([magu, BigInt(fragment), init.member]);
      return { base, unit: (base * multiplierBps) / 10_000n, multiplierBps };
    })();
    quotes.set(key, { at: Date.now(), value });
    value.catch(() => quotes.delete(key));
    return value;
  };

  const members = memberSlots(components.contracts.maguRegistry);

  const save = (k: Kept): Promise<void> =>
    bucket.put(
      keyOf(k.magu, k.payer),
      Buffer.from(
        JSON.stringify({ fragments: k.fragments.toString(), reads: k.reads, total: k.total.toString(), maxUnitPrice: k.maxUnitPrice.toString(), signature: k.signature, paid: k.paid.toString(), pending: k.pending, pendingFrom: k.pendingFrom.toString() }),
      ),
    );

  const parseMagu = (v: unknown): bigint => {
    if (typeof v !== "string" || !/^[1-9][0-9]{0,77}$/.test(v)) throw new Error("magu must be a decimal Magu id");
    return BigInt(v);
  };

  /** Checks a read voucher from `peer`; returns the record to keep and the fragments it prepays. */
  const accept = async (magu: bigint, raw: unknown): Promise<{ next: Kept; served: number[] }> => {
    const refuse = (reason: string): never => {
      counts.refused++;
      throw new ReadPaymentError({ magu, reason });
    };
    const base = await basePrice(magu);
    const w = raw as Record<string, unknown> | undefined;
    if (w === undefined || typeof w !== "object" || w === null) return refuse(`${base} wei per fragment at x1; send a read voucher (deposit with muri magu deposit ${magu} MURI)`);
    if (typeof w.payer !== "string" || !isAddress(w.payer)) return refuse("voucher.payer must be an address");
    for (const field of ["fragments", "total", "maxUnitPrice"]) {
      if (typeof w[field] !== "string" || !/^[0-9]{1,78}$/.test(w[field])) return refuse(`voucher.${field} must be a decimal string`);
    }
    if (typeof w.reads !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(w.reads)) return refuse("voucher.reads must be a 32-byte hex hash");
    if (typeof w.signature !== "string" || !/^0x[0-9a-fA-F]{130}$/.test(w.signature)) return refuse("voucher.signature must be a 65-byte signature");
    const served = w.served;
    if (!Array.isArray(served) || served.length < 1 || served.length > Number(MAX_PREPAID_FRAGMENTS) || !served.every((f) => Number.isInteger(f) && f >= 0 && f <= NO_FRAGMENT)) {
      return refuse(`voucher.served must list the 1 to ${MAX_PREPAID_FRAGMENTS} fragments (uint32; ${NO_FRAGMENT} for a document) the voucher pays for`);
    }
    const list = served as number[];
    const payer = getAddress(w.payer);
    const voucher: ReadVoucher = { magu, member: init.member, fragments: BigInt(w.fragments as string), reads: (w.reads as string).toLowerCase() as Hex, total: BigInt(w.total as string), maxUnitPrice: BigInt(w.maxUnitPrice as string) };
    if (payer.toLowerCase() === init.member.toLowerCase()) return refuse("a member does not pay itself (MaguAccess refuses it)");
    const signer = await recoverReadVoucher(init.domain, voucher, w.signature as Hex).catch(() => undefined);
    if (signer === undefined || signer.toLowerCase() !== payer.toLowerCase()) return refuse(`the read voucher is not signed by ${payer} for member ${init.member}`);
    const last = kept.get(`${magu}/${payer.toLowerCase()}`);
    const lastFragments = last?.fragments ?? 0n;
    if (voucher.fragments !== lastFragments + BigInt(list.length)) return refuse(`voucher counts ${voucher.fragments} fragments; the next is ${lastFragments + BigInt(list.length)} for the ${list.length} served (ask op "read-meter")`);
    const chained = extendReads(last?.reads ?? NO_READS, list);
    if (chained !== voucher.reads) return refuse(`voucher.reads must extend ${last?.reads ?? NO_READS} by the fragments served (ask op "read-meter")`);
    // The list and where it starts, read together: a settlement finishing during the awaits below
    // replaces both on `last`, and a new list paired with an old start (or the reverse) would list
    // reads the chain already settled, which MaguAccess refuses for good.
    const pending = last?.pending ?? [];
    const pendingFrom = last?.pendingFrom ?? 0n;
    if (pending.length + list.length > MAX_UNSETTLED_READS) return refuse(`busy: ${pending.length} reads wait for settlement on chain; retry shortly`);
    const before = last?.total ?? 0n;
    let due = before;
    for (const f of list) {
      const q = await quote(magu, f);
      if (voucher.maxUnitPrice < q.unit) {
        return refuse(`the price of fragment ${f === NO_FRAGMENT ? "(document)" : f} is ${q.unit} wei (base ${q.base} x${Number(q.multiplierBps) / 10_000}), above the reader's maximum ${voucher.maxUnitPrice}`);
      }
      due += q.unit;
    }
    if (voucher.total < due) return refuse(`voucher total ${voucher.total} must be at least ${due} (${before} so far + the ${list.length} fragments at their unit prices)`);
    // MaguAccess refuses a total above fragments x maxUnitPrice: such a voucher would never pay.
    if (voucher.total > voucher.fragments * voucher.maxUnitPrice) return refuse(`voucher total ${voucher.total} exceeds ${voucher.fragments} x its maxUnitPrice ${voucher.maxUnitPrice}`);
    if ((await access.read.withdrawableAt([magu, payer])) !== 0n) return refuse(`${payer} asked to withdraw its deposit: no reads on credit until it deposits again after withdrawing`);
    const paid = last?.paid ?? 0n;
    const balance = await access.read.balanceOf([magu, payer]);
    const share = balance / BigInt(await members(magu));
    if (voucher.total - paid > share) {
      return refuse(`${payer}'s deposit (${balance} wei, ${share} per member) does not cover the ${voucher.total - paid} wei owed here: deposit more (muri magu deposit ${magu} MURI)`);
    }
    return {
      next: { magu, payer, fragments: voucher.fragments, reads: voucher.reads, total: voucher.total, maxUnitPrice: voucher.maxUnitPrice, signature: w.signature as Hex, paid, pending: [...pending, ...list], pendingFrom },
      served: list,
    };
  };

  const voucherOf = (k: Kept): ReadVoucher => ({ magu: k.magu, member: init.member, fragments: k.fragments, reads: k.reads, total: k.total, maxUnitPrice: k.maxUnitPrice });

  /** Redeems `k` as it is now: lists the fragments served beyond what the chain settled. */
  const sendKept = async (k: Kept): Promise<void> => {
    const voucher = voucherOf(k);
    const signature = k.signature;
    const [, settledFragments] = await access.read.readSettled([k.magu, k.payer, init.member]);
    const from = Number(settledFragments - k.pendingFrom);
    const to = Number(voucher.fragments - k.pendingFrom);
    if (from < 0) throw new Error(`the chain settled ${settledFragments} fragments, but this node kept the reads only from ${k.pendingFrom}: the voucher cannot be listed`);
    await components.settle(voucher, k.payer, signature, k.pending.slice(from, to));
    // Reads taken while the transaction was under way stay pending.
    k.pending = k.pending.slice(to);
    k.pendingFrom = voucher.fragments;
  };

  const rounds = settlementRounds(
    kept,
    {
      paidOnChain: async (k) => (await access.read.readSettled([k.magu, k.payer, init.member]))[0],
      send: sendKept,
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
        reads: (v.reads ?? NO_READS) as Hex,
        signature: v.signature as Hex,
        paid: BigInt(v.paid!),
        pending: (v.pending as unknown as number[] | undefined) ?? [],
        pendingFrom: BigInt(v.pendingFrom ?? v.fragments!),
      }));
      // What a previous run took and did not redeem is owed now.
      if ([...kept.values()].some((k) => k.total > k.paid)) void settleAll();
      timer = setInterval(() => void settleAll(), init.settleMs ?? 60_000);
      timer.unref();
    },

    async chargeFetch(peer, cid) {
      const magu = await components.maguOf(cid);
      if (magu === undefined) return undefined;
      const base = await basePrice(magu);
      if (base === 0n) return undefined;
      if (await components.insider(peer, magu)) return undefined;
      const key = `${peer}/${magu}`;
      const credits = credit.get(key);
      const fragment = components.fragmentOf?.(cid);
      // The fragment's own credit; a document (or a fragment not indexed here yet) takes any.
      const use = fragment !== undefined ? (credits?.has(fragment) ? fragment : undefined) : credits?.keys().next().value;
      if (credits === undefined || use === undefined) {
        counts.refused++;
        const what = fragment === undefined ? "this read" : `fragment ${fragment}`;
        return new ReadPaymentError({ magu, reason: `${what} is not prepaid (${base} wei per fragment at x1, up to x2); pay first with a read voucher (op "read-pay"), from a deposit (muri magu deposit ${magu} MURI)` }).message;
      }
      const left = credits.get(use)!;
      if (left <= 1) credits.delete(use);
      else credits.set(use, left - 1);
      if (credits.size === 0) credit.delete(key);
      counts.paidFetches++;
      return undefined;
    },

    async handleRequest(raw, peer) {
      const r = raw as { op?: unknown; magu?: unknown; payer?: unknown; voucher?: unknown } | undefined;
      if (r?.op === "read-meter") {
        const magu = parseMagu(r.magu);
        if (typeof r.payer !== "string" || !isAddress(r.payer)) throw new Error("payer must be an address");
        const k = kept.get(`${magu}/${r.payer.toLowerCase()}`);
        const base = await basePrice(magu);
        return { ok: true, magu: r.magu, base: base.toString(), fragments: (k?.fragments ?? 0n).toString(), reads: k?.reads ?? NO_READS, total: (k?.total ?? 0n).toString(), credit: creditCount(`${peer}/${magu}`).toString() };
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
        const { next, served } = await accept(magu, r.voucher);
        await save(next);
        kept.set(lockKey, next);
        const key = `${peer}/${magu}`;
        const credits = credit.get(key) ?? new Map<number, number>();
        for (const f of served) credits.set(f, (credits.get(f) ?? 0) + 1);
        credit.set(key, credits);
        if (next.pending.length >= SETTLE_AT_READS) void settleAll(magu, next.payer);
        return { ok: true, magu: r.magu, fragments: next.fragments.toString(), reads: next.reads, total: next.total.toString(), credit: creditCount(key).toString() };
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
      let unsettledReads = 0;
      for (const k of kept.values()) {
        owed += k.total - k.paid;
        unsettledReads += k.pending.length;
      }
      return { ...counts, owed, unsettledReads };
    },
  };
}
