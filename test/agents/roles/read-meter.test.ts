/**
 * The member's side of paid reads (roles/node/read-meter.ts) with a real LevelDB and real EIP-712
 * signatures; the chain's answers (prices, multiplier, deposit, withdrawal, redeemed totals) are a
 * small table here so every refusal can be reached. The whole flow on a real chain with node
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
import { accessDomain, signReadVoucher, type ReadVoucher, type TypedSigner } from "../../../agents/chain/index.js";
import { createReadMeter, type ReadMeter } from "../../../agents/roles/node/read-meter.js";
import { openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";

const MAGU = 5n;
const BASE = 10n;
const reader = privateKeyToAccount("0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d");
const other = privateKeyToAccount("0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a");
const memberAccount = privateKeyToAccount("0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6");
const MEMBER = memberAccount.address as Address;
const domain = accessDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const signer = (a: typeof reader): TypedSigner => (typed) => a.signTypedData(typed as never);
const CID_OF_MAGU = CID.parse("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy");
const PEER = "12D3KooWPeerOfTheReader";

describe("read meter: read vouchers prepay fetches of a priced Magu, kept and redeemed on chain", () => {
  let dir: string;
  let db: MetaDb;
  const chain = { base: BASE, multiplierBps: 15_000n, balance: 1_000n, withdrawableAt: 0n, members: 2, paid: 0n, redeemed: [] as ReadVoucher[] };
  const unit = (): bigint => (chain.base * chain.multiplierBps) / 10_000n;
  const contracts = {
    maguAccess: {
      read: {
        readPrice: async () => chain.base,
        readUnitPrice: async () => unit(),
        readMultiplier: async () => [chain.multiplierBps, 0n, chain.multiplierBps - 10_000n] as const,
        balanceOf: async () => chain.balance,
        withdrawableAt: async () => chain.withdrawableAt,
        readSettled: async () => [chain.paid, 0n] as const,
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
        maguOf: (cid) => (cid.equals(CID_OF_MAGU) ? MAGU : undefined),
        insider: async (peer) => peer === "member-peer",
        settle: async (v) => {
          chain.redeemed.push(v);
          chain.paid = v.total;
        },
      },
    );
  const pay = async (m: ReadMeter, fragments: bigint, total: bigint, o: { by?: typeof reader; payer?: Address; max?: bigint } = {}) => {
    const max = o.max ?? 2n * BASE;
    const signature = await signReadVoucher(signer(o.by ?? reader), domain, { magu: MAGU, member: MEMBER, fragments, total, maxUnitPrice: max });
    return m.handleRequest({ op: "read-pay", magu: MAGU.toString(), voucher: { payer: o.payer ?? reader.address, fragments: fragments.toString(), total: total.toString(), maxUnitPrice: max.toString(), signature } }, PEER);
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
    assert.equal(await m.chargeFetch(PEER, CID.parse("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq")), undefined);
  });

  test("a priced Magu: no credit, no fetch; a voucher buys exactly its fragments; members read free", async () => {
    const m = meter();
    await m.start();
    assert.match((await m.chargeFetch(PEER, CID_OF_MAGU)) ?? "", /charges for reads: 15 wei per fragment; pay first with a read voucher/);
    assert.equal(await m.chargeFetch("member-peer", CID_OF_MAGU), undefined, "a member repairing or auditing");
    const answer = (await pay(m, 2n, 2n * unit())) as { ok: boolean; credit: string };
    assert.equal(answer.credit, "2");
    assert.equal(await m.chargeFetch(PEER, CID_OF_MAGU), undefined);
    assert.equal(await m.chargeFetch("another-peer", CID_OF_MAGU) !== undefined, true, "the credit is the paying peer's");
    assert.equal(await m.chargeFetch(PEER, CID_OF_MAGU), undefined);
    assert.notEqual(await m.chargeFetch(PEER, CID_OF_MAGU), undefined, "two paid, two served");
    assert.equal(m.stats().paidFetches, 2);
    const where = (await m.handleRequest({ op: "read-meter", magu: MAGU.toString(), payer: reader.address }, PEER)) as Record<string, string>;
    assert.deepEqual([where.fragments, where.total, where.unit, where.multiplierBps], ["2", "30", "15", "15000"]);
    await m.stop();
  });

  test("refuses forged, out-of-order, underpriced, over-max, self-paid and uncovered vouchers, naming what is wrong", async () => {
    const m = meter();
    await m.start(); // redeems the 30 the last run kept
    await m.settleNow();
    assert.equal(chain.paid, 30n);
    await assert.rejects(pay(m, 3n, 45n, { by: other }), refused(/not signed by/));
    await assert.rejects(pay(m, 2n, 45n), refused(/the next is 3/), "a replay");
    await assert.rejects(pay(m, 3n, 44n), refused(/must be at least 45 \(30 so far \+ 1 x 15\)/));
    await assert.rejects(pay(m, 3n, 45n, { max: 14n }), refused(/15 wei per fragment \(base 10 x1.5\), above the reader's maximum 14/));
    await assert.rejects(pay(m, 3n, 61n, { max: 20n }), refused(/exceeds 3 x its maxUnitPrice 20/));
    await assert.rejects(pay(m, 3n, 45n, { by: memberAccount, payer: MEMBER }), refused(/does not pay itself/));
    chain.withdrawableAt = 99n;
    await assert.rejects(pay(m, 3n, 45n), refused(/asked to withdraw/));
    chain.withdrawableAt = 0n;
    // 2 members, a deposit of 1,000: at most 500 unsettled here (30 of the 600 are redeemed).
    await assert.rejects(pay(m, 40n, 30n + 38n * 15n), refused(/does not cover the 570 wei owed here/));
    assert.equal(m.stats().owed, 0n, "nothing refused was kept");
    await m.stop();
  });

  test("a restart keeps the count (LevelDB) and redeems what the last run kept", async () => {
    const m = meter();
    await m.start();
    await pay(m, 3n, 45n);
    await m.stop();
    const again = meter();
    await again.start(); // redeems at start
    await again.settleNow(); // waits for that round
    assert.equal(chain.redeemed.at(-1)!.total, 45n);
    assert.equal(chain.redeemed.at(-1)!.fragments, 3n);
    assert.equal(again.stats().owed, 0n);
    assert.equal(await again.settleNow(), 0, "nothing more is owed");
    const where = (await again.handleRequest({ op: "read-meter", magu: MAGU.toString(), payer: reader.address }, PEER)) as Record<string, string>;
    assert.equal(where.fragments, "3", "the count continues after a restart");
    await again.stop();
  });
});
