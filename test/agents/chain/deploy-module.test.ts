/**
 * The tests' deployer (deploy-module.ts) against the real one: scripts/deploy-local.ts (Hardhat and
 * Ignition) on one fresh `hardhat node`, deployModule on another, the same parameters. Both chains
 * must end alike: the same deployment file, the same code at every address, and block by block the
 * same transactions and the same events (every role granted and renounced). A change to
 * deploy/MuriData.ts that the tests' deployer would run differently fails here.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createPublicClient, http, type PublicClient } from "viem";
import { cleanup, deployLocal, deployWithIgnition, startFreshHardhatNode, type DeployParameters, type HardhatChain } from "./harness.js";

const PARAMETERS: DeployParameters = { periodBlocks: 20, graceBlocks: 10, settleDelayBlocks: 60, commitBlocks: 12 };

describe("the tests' deployer sends what scripts/deploy-local.ts sends (two hardhat nodes)", { timeout: 300_000 }, () => {
  let ignitionChain: HardhatChain;
  let directChain: HardhatChain;
  let viaIgnition: Awaited<ReturnType<typeof deployWithIgnition>>;
  let direct: Awaited<ReturnType<typeof deployLocal>>;
  const client = (chain: HardhatChain): PublicClient => createPublicClient({ transport: http(chain.rpcUrl, { retryCount: 0 }) });

  before(async () => {
    [ignitionChain, directChain] = await Promise.all([startFreshHardhatNode(), startFreshHardhatNode()]);
    viaIgnition = await deployWithIgnition(ignitionChain.rpcUrl, undefined, PARAMETERS);
    direct = await deployLocal(directChain.rpcUrl, undefined, PARAMETERS);
  });

  after(cleanup);

  test("the same deployment: addresses, timelock, deploy block, parameters", () => {
    assert.deepEqual({ ...direct, rpcUrl: "" }, { ...viaIgnition, rpcUrl: "" });
    assert.equal(direct.parameters.periodBlocks, 20, "an override reaches the deployment file");
    assert.equal(direct.parameters.epochBlocks, 40, "devnet.json's parameters are kept");
  });

  test("the same code at every address, and block by block the same transactions and events", async () => {
    const a = client(ignitionChain);
    const b = client(directChain);
    for (const address of [...Object.values(viaIgnition.contracts), viaIgnition.timelock]) {
      const code = await a.getCode({ address });
      assert.ok(code !== undefined && code.length > 2, `code at ${address}`);
      assert.equal(await b.getCode({ address }), code, `the same code at ${address} (immutables included)`);
    }
    const head = await a.getBlockNumber();
    assert.equal(await b.getBlockNumber(), head);
    let transactions = 0;
    for (let n = 1n; n <= head; n++) {
      const [x, y] = await Promise.all([a.getBlock({ blockNumber: n, includeTransactions: true }), b.getBlock({ blockNumber: n, includeTransactions: true })]);
      const sent = (block: typeof x) => block.transactions.map((t) => ({ from: t.from, to: t.to, input: t.input, value: t.value, nonce: t.nonce }));
      assert.deepEqual(sent(y), sent(x), `block ${n}'s transactions`);
      transactions += x.transactions.length;
    }
    assert.ok(transactions >= 20, `${transactions} transactions: seven contracts, the timelock and their wiring`);
    const logs = async (c: PublicClient) => (await c.getLogs({ fromBlock: 0n, toBlock: head })).map((l) => ({ address: l.address, topics: l.topics, data: l.data, block: l.blockNumber }));
    const events = await logs(a);
    assert.ok(events.length >= 20, `${events.length} events`);
    assert.deepEqual(await logs(b), events);
  });
});
