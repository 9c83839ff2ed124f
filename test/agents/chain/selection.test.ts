/**
 * Forming a Magu larger than one formMagu call seats (SEATS_PER_FORM = 8), through the agents'
 * `formInWindow` on a real hardhat node: the parts land in the window and activate the Magu with
 * distinct members; a window that closes after the first part activates it with the seats taken
 * and the rest vacant, without asking again (no new deposit); a formation its client abandons is
 * activated by a validator once its window closed. And the node's reputation keeper:
 * once a penalty faded into a tier that weighs more, `refreshFadedReputation` writes it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createTestClient, encodeFunctionData, http, zeroAddress, type Address } from "viem";
import { formInWindow, getMuriContracts, nodeRegistryAbi, readReputationTiers, refreshFadedReputation, selectionWeightFor, type Deployment, type Formation } from "../../../agents/chain/index.js";
import { E18, cleanup, deployLocal, registerNode, requestFundedMagu, signer, startFreshHardhatNode, throughTimelock, type HardhatChain } from "./harness.js";
import { createValidator } from "../../../agents/roles/validator/validator.js";

after(cleanup);

const MEMBERS = 10;

describe("formInWindow: a Magu of 10 members is seated in two formMagu calls (hardhat node)", { timeout: 300_000 }, () => {
  let chain: HardhatChain;
  let d: Deployment;
  let mineTo: (block: bigint) => Promise<void>;

  before(async () => {
    chain = await startFreshHardhatNode();
    d = await deployLocal(chain.rpcUrl);
    const test = createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) });
    const pub = signer(chain.rpcUrl, d, chain.keys[0]!).publicClient;
    mineTo = async (block: bigint) => {
      const head = await pub.getBlockNumber({ cacheTime: 0 });
      if (block > head) await test.mine({ blocks: Number(block - head) });
    };
    for (let i = 1; i <= MEMBERS + 1; i++) await registerNode(chain.rpcUrl, d, chain.keys[0]!, chain.keys[i]!);
  });

  /** Requests a 10-member blob Magu from key 19; returns its id and a Formation that counts calls. */
  async function request() {
    const params = { kind: 0, metric: 0, dimension: 0, members: MEMBERS, replication: 0, dataShards: 8, parityShards: 2, maxFragments: MEMBERS, durationPeriods: 4n, pricePerFragmentPeriod: E18 / 1000n };
    const { maguId: id, c, k, wait } = await requestFundedMagu(chain.rpcUrl, d, chain.keys[0]!, chain.keys[19]!, params, mineTo);
    const calls = { form: 0, approve: 0 };
    const f: Formation = {
      read: k,
      head: () => c.publicClient.getBlockNumber({ cacheTime: 0 }),
      waitForBlock: mineTo,
      form: async () => {
        calls.form++;
        await wait(await k.maguRegistry.write.formMagu([id]), "formMagu");
      },
      approveDeposit: async () => void calls.approve++,
    };
    return { id, f, calls, k };
  }

  test("the two parts land in the window: active, 10 distinct members, one deposit", async () => {
    const { id, f, calls, k } = await request();
    assert.equal(await formInWindow(f, id), 2, "active");
    assert.equal(calls.form, 2, "ceil(10 / 8) formMagu calls");
    assert.equal(calls.approve, 0, "no new deposit");
    const members = (await k.maguRegistry.read.maguInfo([id])).members;
    assert.equal(members.length, MEMBERS);
    assert.equal(new Set(members).size, MEMBERS, "distinct members");
    assert.ok(!members.includes(zeroAddress), "no vacant slot");
  });

  test("formMagu is sent once the block before the window is mined; a node that refuses it as too early gets it again in the window", async () => {
    const { id, f, calls, k } = await request();
    const [opens] = await k.maguRegistry.read.selectionWindow([(await k.maguRegistry.read.maguInfo([id])).requestBlock]);
    const waited: bigint[] = [];
    const wait = f.waitForBlock;
    f.waitForBlock = async (block) => {
      waited.push(block);
      await wait(block);
    };
    const form = f.form;
    let refused = false;
    f.form = async () => {
      // The first send plays a node that estimates gas against its latest block (opens - 1).
      if (!refused) {
        refused = true;
        assert.equal(await f.head(), opens - 1n, "sent with the block before the window as head");
        throw new Error("MaguRegistry.formMagu reverted MaguTooEarly(magu=1, readyBlock=9)");
      }
      await form();
    };
    assert.equal(await formInWindow(f, id), 2, "active");
    assert.deepEqual(waited.slice(0, 2), [opens - 1n, opens], "waited for the block before the window, then for its first block");
    assert.equal(calls.form, 2, "both parts seated after the refused send");
  });

  test("the window closes after the first part: active with 8 seats, 2 vacancies, no re-request", async () => {
    const { id, f, calls, k } = await request();
    const [, closes] = await k.maguRegistry.read.selectionWindow([(await k.maguRegistry.read.maguInfo([id])).requestBlock]);
    const form = f.form;
    // The chain moves past the window right after the first part (a slow client or chain).
    f.form = async () => {
      await form();
      if (calls.form === 1) await mineTo(closes + 1n);
    };
    assert.equal(await formInWindow(f, id), 2, "active");
    assert.equal(calls.form, 2, "the second call activates instead of seating");
    assert.equal(calls.approve, 0, "no new deposit: the seats taken stay");
    const info = await k.maguRegistry.read.maguInfo([id]);
    assert.deepEqual(info.members.slice(8), [zeroAddress, zeroAddress], "slots 8 and 9 vacant");
    assert.ok(!info.members.slice(0, 8).includes(zeroAddress), "slots 0-7 seated");
    for (const slot of [8n, 9n]) assert.ok((await k.maguRegistry.read.vacancy([id, slot]))[0] > 0n, `slot ${slot} awaits a replacement`);
  });

  test("a client that stops after the first part: a validator activates the Magu once the window closed, and the seated stake is no longer stuck", async () => {
    const { id, f, k } = await request();
    const requestBlock = (await k.maguRegistry.read.maguInfo([id])).requestBlock;
    const [opens, closes] = await k.maguRegistry.read.selectionWindow([requestBlock]);
    await mineTo(opens);
    await f.form(); // 8 of 10 seated; the client goes away
    const v = signer(chain.rpcUrl, d, chain.keys[MEMBERS + 1]!);
    const validator = createValidator({ address: v.account.address }, { contracts: getMuriContracts(d.contracts, v), publicClient: v.publicClient, walletClient: v.walletClient, fetcher: { fetchFragment: () => Promise.reject(new Error("no audits here")) } });
    await validator.runOnce();
    assert.equal((await k.maguRegistry.read.maguInfo([id])).status, 1, "within the window the formation is the client's to finish");
    await mineTo(closes + 1n);
    await validator.runOnce();
    const info = await k.maguRegistry.read.maguInfo([id]);
    assert.equal(info.status, 2, "active");
    assert.equal(validator.stats().formationsFinished, 1);
    assert.ok(!info.members.slice(0, 8).includes(zeroAddress), "the 8 seated members stay");
    assert.deepEqual(info.members.slice(8), [zeroAddress, zeroAddress], "the rest are vacancies the validators fill");
  });
});

describe("refreshFadedReputation: a faded penalty is written back into the selection weight (hardhat node)", { timeout: 300_000 }, () => {
  test("excluded at -50; 100 blocks later it refreshes to half weight; nothing to do after", async () => {
    const chain = await startFreshHardhatNode();
    const d = await deployLocal(chain.rpcUrl);
    const test = createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) });
    await registerNode(chain.rpcUrl, d, chain.keys[0]!, chain.keys[1]!);
    const node = signer(chain.rpcUrl, d, chain.keys[1]!);
    const me = node.account.address as Address;
    const k = getMuriContracts(d.contracts, node);
    // Key 2 plays a reputation module (granted through the timelock, as the admin would).
    const judge = signer(chain.rpcUrl, d, chain.keys[2]!);
    const role = await k.nodeRegistry.read.REPUTATION_ROLE();
    await throughTimelock(chain.rpcUrl, d, chain.keys[0]!, d.contracts.nodeRegistry, encodeFunctionData({ abi: nodeRegistryAbi, functionName: "grantRole", args: [role, judge.account.address] }));
    const j = getMuriContracts(d.contracts, judge);
    await judge.publicClient.waitForTransactionReceipt({ hash: await j.nodeRegistry.write.adjustReputation([me, -50n]), pollingInterval: 50 });
    const stake = await k.nodeRegistry.read.stakeOf([me]);
    assert.equal((await k.nodeRegistry.read.selectionWeight([me]))[1], 0n, "excluded");
    let sent = 0;
    const refresh = async () => {
      sent++;
      await node.publicClient.waitForTransactionReceipt({ hash: await k.nodeRegistry.write.refreshReputation([me]), pollingInterval: 50 });
    };
    const tiers = await readReputationTiers(k.nodeRegistry);
    assert.equal(await refreshFadedReputation(k.nodeRegistry, me, tiers, refresh), false, "nothing faded yet");
    const { reputationDecayBlocks } = await k.nodeRegistry.read.config();
    await test.mine({ blocks: Number(reputationDecayBlocks) });
    assert.equal(await k.nodeRegistry.read.reputationOf([me]), -49n, "one point faded");
    assert.equal(await refreshFadedReputation(k.nodeRegistry, me, tiers, refresh), true, "refreshed");
    assert.equal((await k.nodeRegistry.read.selectionWeight([me]))[1], stake / 2n, "drafted again, at half weight");
    assert.equal(await refreshFadedReputation(k.nodeRegistry, me, tiers, refresh), false, "nothing more to write");
    assert.equal(sent, 1);
  });

  test("selectionWeightFor follows the contract's tiers", () => {
    const t = { minStake: 1000n, reliable: 50n, excluded: -50n };
    assert.equal(selectionWeightFor(999n, 0n, t), 0n, "below minStake");
    assert.equal(selectionWeightFor(2000n, -50n, t), 0n, "excluded");
    assert.equal(selectionWeightFor(2000n, -1n, t), 1000n, "half");
    assert.equal(selectionWeightFor(2000n, 0n, t), 2000n, "stake");
    assert.equal(selectionWeightFor(2000n, 49n, t), 2000n, "stake");
    assert.equal(selectionWeightFor(2000n, 50n, t), 2500n, "reliable");
  });
});
