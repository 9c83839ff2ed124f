/**
 * The member's side of paid searches (roles/node/search-meter.ts) with a real LevelDB and real
 * EIP-712 signatures; the chain's answers (price, deposit, withdrawal, settled totals) are a small
 * table here so every refusal can be reached. The whole flow on a real chain with node processes is
 * test/agents/roles/e2e-access.test.ts.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { privateKeyToAccount } from "viem/accounts";
import type { Address } from "viem";
import { accessDomain, signVoucher, type TypedSigner, type Voucher } from "../../../agents/chain/index.js";
import { createSearchMeter, SearchPaymentError, type SearchMeter } from "../../../agents/roles/node/search-meter.js";
import { openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";

const MAGU = 5n;
const PRICE = 10n;
const MEMBER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8" as Address;
const payer = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const other = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
const domain = accessDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const signer = (a: typeof payer): TypedSigner => (typed) => a.signTypedData(typed as never);

describe("search meter: vouchers before a search, kept after it, settled on chain", () => {
  let dir: string;
  let db: MetaDb;
  const chain = { price: PRICE, balance: 1_000n, withdrawableAt: 0n, members: 2, paid: 0n, settles: [] as Voucher[] };
  const contracts = {
    maguAccess: {
      read: {
        searchPrice: async () => chain.price,
        balanceOf: async () => chain.balance,
        withdrawableAt: async () => chain.withdrawableAt,
        settled: async () => [chain.paid, 0n] as const,
      },
    },
    maguRegistry: { read: { maguInfo: async () => ({ params: { members: chain.members } }) } },
  };
  const meter = (): SearchMeter =>
    createSearchMeter(
      { member: MEMBER, domain, settleMs: 3_600_000 },
      {
        contracts: contracts as never,
        metaDb: db,
        settle: async (v) => {
          chain.settles.push(v);
          chain.paid = v.total;
        },
      },
    );
  const voucher = async (searches: bigint, total: bigint, by = payer, member = MEMBER) => ({
    payer: payer.address,
    searches: searches.toString(),
    total: total.toString(),
    signature: await signVoucher(signer(by), domain, { magu: MAGU, member, searches, total }),
  });
  const refused = (pattern: RegExp) => (err: unknown) => err instanceof SearchPaymentError && pattern.test(err.message);

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "muri-meter-"));
    db = await openMetaDb(join(dir, "meta"));
  });
  after(async () => {
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("a free Magu needs no voucher", async () => {
    chain.price = 0n;
    const m = meter();
    await (await m.charge(MAGU, undefined))(true);
    chain.price = PRICE;
  });

  test("refuses a missing, forged, out-of-order or short voucher, naming what is wrong", async () => {
    const m = meter();
    await m.start();
    await assert.rejects(m.charge(MAGU, undefined), refused(/send a voucher/));
    await assert.rejects(m.charge(MAGU, await voucher(1n, PRICE, other)), refused(/not signed by/));
    await assert.rejects(m.charge(MAGU, await voucher(1n, PRICE, payer, other.address)), refused(/not signed by/), "a voucher for another member");
    await assert.rejects(m.charge(MAGU, await voucher(2n, 2n * PRICE)), refused(/the next is 1/));
    await assert.rejects(m.charge(MAGU, await voucher(1n, PRICE - 1n)), refused(/must be at least 10/));
    await m.stop();
  });

  test("keeps a voucher only once the search was answered; the next must follow it", async () => {
    const m = meter();
    await m.start();
    await (await m.charge(MAGU, await voucher(1n, PRICE)))(false); // not answered: not kept
    await (await m.charge(MAGU, await voucher(1n, PRICE)))(true);
    await assert.rejects(m.charge(MAGU, await voucher(1n, PRICE)), refused(/the next is 2/), "a replay");
    await (await m.charge(MAGU, await voucher(2n, 2n * PRICE)))(true);
    assert.equal(m.stats().charged, 2);
    assert.equal(m.stats().owed, 2n * PRICE);
    const meterAnswer = (await m.handleRequest({ op: "meter", magu: MAGU.toString(), payer: payer.address })) as { searches: string; total: string; price: string };
    assert.deepEqual([meterAnswer.searches, meterAnswer.total, meterAnswer.price], ["2", "20", "10"]);
    await m.stop();
  });

  test("a restart keeps the count (LevelDB) and settles the latest voucher", async () => {
    const m = meter();
    await m.start();
    await (await m.charge(MAGU, await voucher(3n, 3n * PRICE)))(true);
    assert.equal(await m.settleNow(), 1);
    assert.equal(chain.settles.at(-1)!.total, 3n * PRICE);
    assert.equal(await m.settleNow(), 0, "nothing more is owed");
    assert.equal(m.stats().owed, 0n);
    await m.stop();
  });

  test("no credit beyond the payer's deposit shared among the members, nor after it asked to withdraw", async () => {
    const m = meter();
    await m.start();
    // 2 members and a deposit of 1,000: this member lets at most 500 go unsettled.
    chain.balance = 1_000n;
    let searches = 3n;
    let total = 3n * PRICE;
    const next = async () => {
      searches++;
      total += 100n;
      return voucher(searches, total);
    };
    for (let i = 0; i < 5; i++) await (await m.charge(MAGU, await next()))(true);
    assert.equal(m.stats().owed, 500n);
    await assert.rejects(m.charge(MAGU, await next()), refused(/does not cover/));
    searches--;
    total -= 100n;
    await m.settleNow();
    await (await m.charge(MAGU, await next()))(true);
    chain.withdrawableAt = 99n;
    await assert.rejects(m.charge(MAGU, await next()), refused(/asked to withdraw/));
    chain.withdrawableAt = 0n;
    await m.stop();
  });

  test("a batch of queries pays one search each: a voucher for one search, or one price, does not pay for a batch", async () => {
    const m = meter();
    await m.start();
    const before = m.stats().charged;
    const where = (await m.handleRequest({ op: "meter", magu: MAGU.toString(), payer: payer.address })) as { searches: string; total: string };
    const at = BigInt(where.searches);
    const total = BigInt(where.total);
    // The attack: three queries in one request with the voucher of a single search.
    await assert.rejects(m.charge(MAGU, await voucher(at + 1n, total + PRICE), 3), refused(new RegExp(`the next is ${at + 3n} \\(${at} so far \\+ 3 in this request`)));
    await assert.rejects(m.charge(MAGU, await voucher(at + 3n, total + PRICE), 3), refused(new RegExp(`must be at least ${total + 3n * PRICE}`)), "three searches for one price");
    await (await m.charge(MAGU, await voucher(at + 3n, total + 3n * PRICE), 3))(true);
    await (await m.charge(MAGU, await voucher(at + 4n, total + 4n * PRICE)))(true);
    assert.equal(m.stats().charged, before + 2);
    const answer = (await m.handleRequest({ op: "meter", magu: MAGU.toString(), payer: payer.address })) as { searches: string; total: string };
    assert.deepEqual([answer.searches, answer.total], [String(at + 4n), String(total + 4n * PRICE)]);
    await m.stop();
  });
});
