/**
 * The member's side of paid reads (roles/node/read-meter.ts) with a real LevelDB and real EIP-712
 * signatures and reads hash chains; the chain's answers (prices, each fragment's multiplier, deposit,
 * withdrawal, redeemed totals) are a small table here so every refusal can be reached. The whole flow on a real chain with node
 * processes and `muri get` is test/agents/roles/e2e-access.test.ts ("paid reads").
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { privateKeyToAccount } from "viem/accounts";
import type { Address } from "viem";
import { CID } from "multiformats/cid";
import { accessDomain, extendReads, NO_FRAGMENT, NO_READS, signReadVoucher, type ReadVoucher, type TypedSigner } from "../../../agents/chain/index.js";
import { Registry } from "prom-client";
import { createReadMeter, type ReadMeter } from "../../../agents/roles/node/read-meter.js";
import { registerReadMetrics } from "../../../agents/roles/shared/metrics-server.js";
import { openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";

const MAGU = 5n;
const BASE = 10n;
const reader = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const other = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
const memberAccount = privateKeyToAccount("0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6");
const MEMBER = memberAccount.address as Address;
const domain = accessDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const signer = (a: typeof reader): TypedSigner => (typed) => a.signTypedData(typed as never);
/** Fragment 0 of the Magu (x1.5 here) and one of its documents (a manifest: base price). */
const CID_OF_MAGU = CID.parse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy");
const DOC_OF_MAGU = CID.parse("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq");
const NOT_MAGU = CID.parse("bafkreidivzimqfqtoqxkrpge6bjyhlvxqs3rhe73owtmdulaxr5do5in7u");
const PEER = "12D3KooWPeerOfTheReader";

describe("read meter: read vouchers prepay fetches of a priced Magu, per fragment, kept and redeemed on chain", () => {
  let dir: string;
  let db: MetaDb;
  const chain = {
    base: BASE,
    /** Each fragment's multiplier for this member (the rest: x1). */
    multiplierBps: new Map<number, bigint>([[0, 15_000n]]),
    balance: 1_000n,
    withdrawableAt: 0n,
    members: 2,
    paid: 0n,
    settledFragments: 0n,
    /** The reads chain MaguAccess keeps per (reader, member): a settlement must extend it. */
    settledReads: NO_READS as `0x${string}`,
    redeemed: [] as { voucher: ReadVoucher; served: readonly number[] }[],
    /** Held while set: settlements, and the deposit reads of a voucher's checks. */
    settleGate: undefined as Promise<void> | undefined,
    balanceGate: undefined as Promise<void> | undefined,
  };
  const unitOf = (f: number): bigint => (chain.base * (chain.multiplierBps.get(f) ?? 10_000n)) / 10_000n;
  const contracts = {
    maguAccess: {
      read: {
        readPrice: async () => chain.base,
        readMultiplier: async ([, f, member]: readonly [bigint, bigint, Address]) => {
          assert.equal(member, MEMBER, "the member asks its own multiplier");
          const m = chain.multiplierBps.get(Number(f)) ?? 10_000n;
          return [m, 0n, m - 10_000n] as const;
        },
        balanceOf: async () => {
          await chain.balanceGate;
          return chain.balance;
        },
        withdrawableAt: async () => chain.withdrawableAt,
        readSettled: async () => [chain.paid, chain.settledFragments, NO_READS] as const,
      },
    },
    maguRegistry: { read: { maguInfo: async () => ({ params: { members: chain.members } }) } },
  };
  const meter = (): ReadMeter =>
    createReadMeter(
      { member: MEMBER, domain, settleMs: 3_600_000 },
      {
        contracts: contracts as never,
        metaDb: db,
        maguOf: (cid) => (cid.equals(CID_OF_MAGU) || cid.equals(DOC_OF_MAGU) ? MAGU : undefined),
        fragmentOf: (cid) => (cid.equals(CID_OF_MAGU) ? 0 : undefined),
        insider: async (peer) => peer === "member-peer",
        settle: async (voucher, _payer, _signature, served) => {
          // What MaguAccess checks: exactly the fragments beyond the settled ones.
          assert.equal(BigInt(served.length), voucher.fragments - chain.settledFragments, "lists the reads since the last settlement");
          assert.equal(extendReads(chain.settledReads, served), voucher.reads, "the reads listed extend the settled chain to the voucher's");
          await chain.settleGate;
          chain.settledReads = voucher.reads;
          chain.redeemed.push({ voucher, served });
          chain.paid = voucher.total;
          chain.settledFragments = voucher.fragments;
        },
      },
    );
  /** The reader's side: its count and reads chain so far. */
  let sofar = { fragments: 0n, reads: NO_READS as `0x${string}` };
  const pay = async (m: ReadMeter, served: number[], total: bigint, o: { by?: typeof reader; payer?: Address; max?: bigint; fragments?: bigint; reads?: `0x${string}` } = {}) => {
    const max = o.max ?? 2n * BASE;
    const fragments = o.fragments ?? sofar.fragments + BigInt(served.length);
    const reads = o.reads ?? extendReads(sofar.reads, served);
    const signature = await signReadVoucher(signer(o.by ?? reader), domain, { magu: MAGU, member: MEMBER, fragments, reads, total, maxUnitPrice: max });
    const answer = await m.handleRequest(
      { op: "read-pay", magu: MAGU.toString(), voucher: { payer: o.payer ?? reader.address, fragments: fragments.toString(), reads, total: total.toString(), maxUnitPrice: max.toString(), served, signature } },
      PEER,
    );
    sofar = { fragments, reads };
    return answer;
  };
  const refused = (pattern: RegExp) => (err: unknown) => (err as { code?: string }).code === "ERR_READ_PAYMENT" && pattern.test((err as Error).message);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-read-meter-"));
    db = await openMetaDb(join(dir, "meta"));
  });
  after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("a free Magu, or a CID of no Magu, is served without a voucher", async () => {
    chain.base = 0n;
    const m = meter();
    assert.equal(await m.chargeFetch(PEER, CID_OF_MAGU), undefined);
    chain.base = BASE;
    assert.equal(await m.chargeFetch(PEER, NOT_MAGU), undefined);
  });

  test("a priced Magu: no credit, no fetch; a voucher buys exactly its fragments, each at its own price; members read free", async () => {
    const m = meter();
    await m.start();
    assert.match((await m.chargeFetch(PEER, CID_OF_MAGU)) ?? "", /charges for reads: fragment 0 is not prepaid \(10 wei per fragment at x1, up to x2\)/);
    assert.equal(await m.chargeFetch("member-peer", CID_OF_MAGU), undefined, "a member repairing or auditing");
    // Fragment 0 twice at x1.5.
    const answer = (await pay(m, [0, 0], 2n * unitOf(0))) as { ok: boolean; credit: string; reads: string };
    assert.equal(answer.credit, "2");
    assert.equal(answer.reads, extendReads(NO_READS, [0, 0]), "the reads chain it keeps");
    assert.equal(await m.chargeFetch(PEER, CID_OF_MAGU), undefined);
    assert.equal((await m.chargeFetch("another-peer", CID_OF_MAGU)) !== undefined, true, "the credit is the paying peer's");
    assert.equal(await m.chargeFetch(PEER, CID_OF_MAGU), undefined);
    assert.notEqual(await m.chargeFetch(PEER, CID_OF_MAGU), undefined, "two paid, two served");
    // A document at the base price: its credit does not pay for fragment 0 (priced higher).
    await pay(m, [NO_FRAGMENT], 30n + unitOf(NO_FRAGMENT));
    assert.match((await m.chargeFetch(PEER, CID_OF_MAGU)) ?? "", /fragment 0 is not prepaid/);
    assert.equal(await m.chargeFetch(PEER, DOC_OF_MAGU), undefined, "the manifest is served");
    assert.equal(m.stats().paidFetches, 3);
    assert.equal(m.stats().unsettledReads, 3);
    const where = (await m.handleRequest({ op: "read-meter", magu: MAGU.toString(), payer: reader.address }, PEER)) as Record<string, string>;
    assert.deepEqual([where.fragments, where.total, where.reads], ["3", "40", extendReads(NO_READS, [0, 0, NO_FRAGMENT])]);
    await m.stop();
  });

  test("refuses forged, out-of-order, unchained, underpriced, over-max, self-paid and uncovered vouchers, naming what is wrong", async () => {
    const m = meter();
    await m.start(); // redeems the 40 the last run kept, listing the 3 reads
    await m.settleNow();
    assert.equal(chain.paid, 40n);
    assert.deepEqual(chain.redeemed.at(-1)!.served, [0, 0, NO_FRAGMENT], "settleRead lists the fragments served");
    assert.equal(m.stats().unsettledReads, 0);
    const base = { ...sofar };
    const again = async (served: number[], total: bigint, o: Parameters<typeof pay>[3] = {}) => {
      try {
        return await pay(m, served, total, o);
      } finally {
        sofar = { ...base };
      }
    };
    await assert.rejects(again([0], 55n, { by: other }), refused(/not signed by/));
    await assert.rejects(again([0], 55n, { fragments: 3n }), refused(/the next is 4 for the 1 served/), "a replay");
    await assert.rejects(again([0], 55n, { reads: extendReads(base.reads, [1]) }), refused(/voucher.reads must extend/), "signed for another fragment than it lists");
    await assert.rejects(again([0], 54n), refused(/must be at least 55 \(40 so far \+ the 1 fragments at their unit prices\)/));
    await assert.rejects(again([0], 55n, { max: 14n }), refused(/the price of fragment 0 is 15 wei \(base 10 x1.5\), above the reader's maximum 14/));
    await assert.rejects(again([1], 81n, { max: 20n }), refused(/exceeds 4 x its maxUnitPrice 20/));
    await assert.rejects(again([0], 55n, { by: memberAccount, payer: MEMBER }), refused(/does not pay itself/));
    await assert.rejects(again([], 40n, { fragments: 3n }), refused(/voucher.served must list the 1 to 1024 fragments/));
    chain.withdrawableAt = 99n;
    await assert.rejects(again([0], 55n), refused(/asked to withdraw/));
    chain.withdrawableAt = 0n;
    // 2 members, a deposit of 1,000: at most 500 unsettled here (40 of the 560 are redeemed).
    await assert.rejects(again(Array(38).fill(0), 40n + 38n * 15n), refused(/does not cover the 570 wei owed here/));
    assert.equal(m.stats().owed, 0n, "nothing refused was kept");
    await m.stop();
  });

  test("a restart keeps the count, the chain and the unsettled reads (LevelDB), and redeems what the last run kept", async () => {
    const m = meter();
    await m.start();
    await pay(m, [1, 0], 40n + unitOf(1) + unitOf(0));
    await m.stop();
    const again = meter();
    await again.start(); // redeems at start
    await again.settleNow(); // waits for that round
    const last = chain.redeemed.at(-1)!;
    assert.equal(last.voucher.total, 65n);
    assert.equal(last.voucher.fragments, 5n);
    assert.equal(last.voucher.reads, extendReads(NO_READS, [0, 0, NO_FRAGMENT, 1, 0]));
    assert.deepEqual(last.served, [1, 0], "only the reads since the chain's last settlement");
    assert.equal(again.stats().owed, 0n);
    assert.equal(await again.settleNow(), 0, "nothing more is owed");
    const where = (await again.handleRequest({ op: "read-meter", magu: MAGU.toString(), payer: reader.address }, PEER)) as Record<string, string>;
    assert.equal(where.fragments, "5", "the count continues after a restart");
    // /metrics: what this run redeemed and served, from the meter's own counts.
    assert.equal(await again.chargeFetch(PEER, CID_OF_MAGU) !== undefined, true, "a fetch the restart did not credit");
    const registry = new Registry();
    registerReadMetrics(registry, () => again.stats());
    const text = await registry.metrics();
    assert.match(text, /muri_reads_vouchers_redeemed_total 1\n/);
    assert.match(text, /muri_reads_earned_wei_total 25\n/, "65 - 40: what this run's redemption paid");
    assert.match(text, /muri_reads_refused_total 1\n/);
    assert.match(text, /muri_reads_owed_wei 0\n/);
    assert.match(text, /muri_reads_unsettled_fragments 0\n/);
    await again.stop();
  });

  /** `m` takes a voucher for fragment 0 and starts settling it; the settlement's transaction waits for `releaseSettle`. */
  const settlementUnderWay = async (m: ReadMeter) => {
    const start = { total: chain.paid, redeemed: chain.redeemed.length };
    await pay(m, [0], start.total + unitOf(0));
    let releaseSettle!: () => void;
    chain.settleGate = new Promise((resolve) => (releaseSettle = resolve));
    return { start, settling: m.settleNow(), releaseSettle };
  };

  test("a read paid while a settlement is under way is listed in the next settlement, and only there", async () => {
    const m = meter();
    await m.start();
    // The settlement's transaction is under way...
    const { start, settling, releaseSettle } = await settlementUnderWay(m);
    // ...when a voucher for a document arrives, and its checks are still reading the deposit when
    // the settlement lands.
    let releaseBalance!: () => void;
    chain.balanceGate = new Promise((resolve) => (releaseBalance = resolve));
    const paying = pay(m, [NO_FRAGMENT], start.total + unitOf(0) + unitOf(NO_FRAGMENT));
    await new Promise((resolve) => setTimeout(resolve, 50));
    releaseSettle();
    await settling;
    releaseBalance();
    chain.settleGate = undefined;
    chain.balanceGate = undefined;
    await paying;
    // The next settlement lists the document alone (before the fix: fragment 0 again, which the
    // chain refuses, for good).
    await m.settleNow();
    assert.deepEqual(chain.redeemed.slice(start.redeemed).map((r) => r.served), [[0], [NO_FRAGMENT]]);
    assert.equal(chain.paid, start.total + unitOf(0) + unitOf(NO_FRAGMENT));
    assert.equal(m.stats().unsettledReads, 0);
    await m.stop();
  });

  test("a voucher taken while a settlement is under way survives a restart (the settled, older one is not saved over it)", async () => {
    const m = meter();
    await m.start();
    const { start, settling, releaseSettle } = await settlementUnderWay(m);
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Taken and saved while the settlement's transaction is under way.
    await pay(m, [NO_FRAGMENT], start.total + unitOf(0) + unitOf(NO_FRAGMENT));
    releaseSettle();
    chain.settleGate = undefined;
    await settling;
    await m.stop();
    // The next run redeems the newer voucher from disk (before the fix: the older one, already paid).
    const again = meter();
    await again.start();
    await again.settleNow();
    assert.deepEqual(chain.redeemed.slice(start.redeemed).map((r) => r.served), [[0], [NO_FRAGMENT]]);
    assert.equal(chain.paid, start.total + unitOf(0) + unitOf(NO_FRAGMENT));
    await again.stop();
  });
});
