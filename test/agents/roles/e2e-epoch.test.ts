/**
 * End to end: after an epoch, honest nodes' and the validator's holdings rise, the slashed node's
 * stake falls, and the token invariant holds.
 *
 * `hardhat node` with the devnet deployment but periods of 20 blocks and epochs of 80 (four
 * periods), five node processes, a validator process (agents/roles/validator/run-validator.ts, `--claim`) and
 * a client put into a blob Magu of all five (k=3, m=2). Right after the put, node-1 (self-repair
 * off) loses every file it stores, so it cannot answer its challenges; the validator marks them
 * missed (slashing it, and evicting it after three) and, at the end of each epoch, submits weights
 * from what it saw and finalises the epoch.
 * The test moves the chain itself (`hardhat_mine`; every transaction also mines a block), a period at
 * a time from the Magu's first challenged period (read from the chain): it enters a period, waits
 * for the four honest proofs and for the validator's mark of node-1's miss of the period before;
 * before a period that ends an epoch, for the validator's weights (mining into their window, the
 * epoch's last quarter, if needed); after an epoch, for its finalisation. Every wait is on the
 * chain with a wall-clock bound that only a failure reaches, so a slow machine makes the test
 * slower, never wrong.
 * Once an epoch in which the validator counted node-1's misses is finalised, one honest node claims
 * its rewards and, at one block:
 * - every honest node's balance + claimable (Rewards and MaguRegistry) + stake rose since the put,
 *   and so did the validator's;
 * - node-1's stake fell by exactly what `Slashed` events took, and it was credited less for that
 *   epoch than every honest node;
 * - totalSupply = supply at deployment + Σ minted (`EpochFinalized`); each token-holding contract's
 *   balance equals what its books say it holds (test/contracts/helpers/books.ts); the balances of
 *   every account that ever received MURI add up to totalSupply.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getAddress, type Address } from "viem";
import { getMuriContracts } from "../../../agents/chain/index.js";
import { type PutResult, type StorageClient } from "../../../agents/roles/client/client.js";
import { tokenBooks } from "../../contracts/helpers/books.js";
import { signer } from "../chain/harness.js";
import { deleteFiles, firstChallengedPeriod, randomFile, startClient, startNetwork, tearDown, waitFor, waitProven, type Network, type ValidatorProcess } from "./e2e-helpers.js";

const NODES = 5;
const K = 3;
const M = 2;
const FILE_BYTES = 2 * 1024 * 1024;
const CLIENT_KEY = NODES + 1;
const VALIDATOR_KEY = NODES + 2;
/** node-1 (index 0) loses its files and cannot heal itself. */
const BAD = 0;
/** Periods of 20 blocks, epochs of four periods: a period has room for every agent transaction, and the validator's weight window (an epoch's last quarter) is a period long. */
const PERIOD_BLOCKS = 20;
const EPOCH_BLOCKS = 80;
/**
 * Bound on each wait for an agent's transaction, ms. Only a failure takes this long: the chain does
 * not move on its own, so no deadline passes while an agent is slow; each normally takes a second.
 */
const WAIT_MS = 90_000;

describe("e2e: an epoch of rewards and slashes with real node and validator processes", { timeout: 900_000 }, () => {
  let net: Network;
  let client: StorageClient;
  let validator: ValidatorProcess;
  let input: string;
  let stored: PutResult;
  /** Block after the put, before node-1 lost its files: the baseline. */
  let baseline: bigint;
  let before0: Map<Address, Holdings>;
  /** The finalised epoch in which the validator's weights counted node-1's misses. */
  let epoch: bigint;
  let bad: Address;
  let honest: Address[];

  interface Holdings {
    balance: bigint;
    rewards: bigint;
    pay: bigint;
    stake: bigint;
    unbonding: bigint;
  }
  const total = (h: Holdings) => h.balance + h.rewards + h.pay + h.stake + h.unbonding;

  /** What `account` holds or is owed at `block`. */
  const holdingsAt = async (account: Address, block: bigint): Promise<Holdings> => {
    const at = { blockNumber: block };
    const { token, rewards, maguRegistry, nodeRegistry } = net.read;
    const info = await nodeRegistry.read.nodeInfo([account], at);
    return {
      balance: await token.read.balanceOf([account], at),
      rewards: await rewards.read.claimable([account], at),
      pay: await maguRegistry.read.claimable([account], at),
      stake: info.stake,
      unbonding: info.unbonding,
    };
  };
  const everyoneAt = async (block: bigint) => new Map(await Promise.all([...honest, bad, validator.address].map(async (a) => [a, await holdingsAt(a, block)] as const)));

  before(async () => {
    const t0 = performance.now();
    net = await startNetwork({
      prefix: "muri-e2e-epoch-",
      nodes: NODES,
      fund: [CLIENT_KEY, VALIDATOR_KEY],
      nodeEnv: (i) => (i === BAD ? { MURI_NO_SELF_REPAIR: "1" } : undefined),
      // No interval mining: the test moves the chain.
      parameters: { periodBlocks: PERIOD_BLOCKS, epochBlocks: EPOCH_BLOCKS },
    });
    validator = await net.startValidator(VALIDATOR_KEY, ["--claim"]);
    client = await startClient(net, CLIENT_KEY);
    ({ path: input } = await randomFile(net.dir, "input.bin", FILE_BYTES));
    bad = getAddress(net.nodes[BAD]!.address);
    honest = net.nodes.filter((_, i) => i !== BAD).map((n) => getAddress(n.address));
    console.log(`# setup (chain, deploy, ${NODES} nodes, validator, client): ${Math.round(performance.now() - t0)} ms`);
  });

  after(() => tearDown("epoch-agent", [...(net?.nodes ?? []), validator], client));

  test("put into a Magu of the five nodes; node-1 then loses every file it stores", async () => {
    stored = await client.put(input, { k: K, m: M, members: NODES });
    assert.deepEqual([...stored.members].map((a) => getAddress(a)).sort(), [...honest, bad].sort(), "all five nodes are members");
    // The client told the validator about the new Magu (audit-target discovery): it verified the
    // manifest and index against the root on chain and recorded them.
    await waitFor("the validator recorded the Magu index", WAIT_MS, async () => validator.stderr().includes('"msg":"magu index recorded"') || undefined, 500);
    baseline = await net.head();
    before0 = await everyoneAt(baseline);
    const deleted = await deleteFiles(join(net.nodeDir(BAD), "blocks"));
    assert.ok(deleted >= stored.shards / NODES, `deleted ${deleted} files`);
  });

  test("the validator marks node-1's misses and finalises an epoch whose weights counted them", async () => {
    const t0 = performance.now();
    const { rewards, challengeManager, maguRegistry } = net.read;
    const cfg = await rewards.read.config();
    const { maxMisses } = await challengeManager.read.config();
    assert.equal(cfg.epochBlocks, BigInt(EPOCH_BLOCKS));
    const periodBlocks = (await maguRegistry.read.periodStart([1n])) - (await maguRegistry.read.periodStart([0n]));
    assert.equal(periodBlocks, BigInt(PERIOD_BLOCKS));
    const epochStart = (e: bigint) => cfg.genesisBlock + e * cfg.epochBlocks;
    const epochOf = (block: bigint) => (block - cfg.genesisBlock) / cfg.epochBlocks;
    // The validator submits its weights in the last quarter of an epoch, never in its last block
    // (validator.ts, submitWindowBlocks). Epochs and periods count from different genesis blocks.
    const window = cfg.epochBlocks / 4n > 2n ? cfg.epochBlocks / 4n : 2n;
    const agentOf = (a: Address) => net.nodes.find((n) => getAddress(n.address) === a);
    const weightsOf = (e: bigint) => rewards.getEvents.WeightsSubmitted({ epoch: e, validator: validator.address }, { fromBlock: baseline });
    const first = await firstChallengedPeriod(net.read, stored.maguId, stored.members);
    // node-1 is evicted after maxMisses periods; its last miss is in the weights of that epoch or the next.
    const lastPeriod = first + BigInt(maxMisses) + (2n * cfg.epochBlocks) / periodBlocks + 1n;
    const report: string[] = [];
    let found: bigint | undefined;
    let checked = epochOf(baseline) - 1n;
    for (let p = first; p <= lastPeriod && found === undefined; p++) {
      await net.mineTo((await maguRegistry.read.periodStart([p])) + 1n);
      // Each epoch that ended: the validator finalises it. Did its weights count node-1's misses?
      const ended = epochOf(await net.head()) - 1n;
      for (let e = checked + 1n; e <= ended && found === undefined; e++) {
        await waitFor(`the validator finalising epoch ${e}`, WAIT_MS, async () => (await rewards.read.isFinalized([e])) || undefined, 200);
        const weights = await weightsOf(e);
        const misses = weights.length === 0 ? [] : await challengeManager.getEvents.ProofMissed({ member: bad }, { fromBlock: epochStart(e), toBlock: weights.at(-1)!.blockNumber });
        report.push(`epoch ${e} (blocks ${epochStart(e)}..${epochStart(e + 1n) - 1n}): ${weights.length === 0 ? "no weights" : `weights at block ${weights.at(-1)!.blockNumber} counted ${misses.length} misses of node-1`}`);
        if (misses.length > 0) found = e;
      }
      if (ended > checked) checked = ended;
      if (found !== undefined) break;
      // The validator marks node-1's miss of the period before (its deadline is this period's start).
      const m = await maguRegistry.read.membership([stored.maguId, bad]);
      if (m.active && p > first) {
        await waitFor(`the validator marking node-1's miss of period ${p - 1n}`, WAIT_MS, async () => (await challengeManager.read.proofState([stored.maguId, bad, p - 1n])) === 2 || undefined, 200);
      }
      for (const a of honest) await waitProven(net, stored.maguId, a, p, WAIT_MS, agentOf(a));
      // Entering the next period ends the epoch: first the validator's weights of it, in its window.
      let head = await net.head();
      const e = epochOf(head);
      const end = epochStart(e + 1n);
      if (end <= (await maguRegistry.read.periodStart([p + 1n])) + 1n) {
        if (head + 1n < end - window) await net.mineTo(end - window - 1n);
        head = await net.head();
        assert.ok(head + 1n < end - 1n, `the chain is at block ${head}, past epoch ${e}'s weight window (blocks ${end - window}..${end - 2n}) before the validator's weights`);
        await waitFor(`the validator's weights of epoch ${e}`, WAIT_MS, async () => ((await weightsOf(e)).length > 0 ? true : undefined), 200);
      }
    }
    console.log(`# periods from ${first}:\n${report.map((l) => `#   ${l}`).join("\n")}`);
    assert.ok(found !== undefined, `no finalised epoch counted node-1's misses by period ${lastPeriod}`);
    epoch = found;
    const finalized = (await rewards.getEvents.EpochFinalized({ epoch }, { fromBlock: baseline }))[0]!;
    assert.ok(finalized.args.minted! > 0n, "the epoch minted its emission");
    const tx = await net.publicClient.getTransaction({ hash: finalized.transactionHash });
    assert.equal(getAddress(tx.from), validator.address, "finalizeEpoch was sent by the validator process");
    const missed = await challengeManager.getEvents.ProofMissed({ magu: stored.maguId }, { fromBlock: baseline });
    assert.ok(missed.length > 0);
    for (const e of missed) {
      assert.equal(getAddress(e.args.member!), bad, `only node-1 missed (period ${e.args.period})`);
      assert.equal(getAddress(e.args.marker!), validator.address, "marked by the validator");
    }
    console.log(`# epoch ${epoch} finalised by the validator after ${missed.length} marked misses: ${Math.round(performance.now() - t0)} ms`);
  });

  test("honest nodes and the validator gained, node-1's stake fell by its slashes, the token invariant holds", async () => {
    // One honest node claims its rewards (the validator claims its own with --claim).
    const claimer = signer(net.chain.rpcUrl, net.deployment, net.nodeKey(1));
    const owed = await net.read.rewards.read.claimable([claimer.account.address]);
    assert.ok(owed > 0n, "the honest node was credited");
    const hash = await getMuriContracts(net.deployment.contracts, claimer).rewards.write.claim();
    const receipt = await net.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 100, timeout: 60_000 });
    assert.equal(receipt.status, "success");
    const claimed = await net.read.rewards.getEvents.RewardClaimed({ account: claimer.account.address }, { fromBlock: receipt.blockNumber, toBlock: receipt.blockNumber });
    assert.equal(claimed.length, 1);
    const balanceBefore = await net.read.token.read.balanceOf([claimer.account.address], { blockNumber: receipt.blockNumber - 1n });
    const balanceAfter = await net.read.token.read.balanceOf([claimer.account.address], { blockNumber: receipt.blockNumber });
    assert.equal(balanceAfter - balanceBefore, claimed[0]!.args.amount, "the claim paid what was credited");
    assert.ok(claimed[0]!.args.amount! >= owed);

    // Everything below is read at one block (the agents keep sending transactions meanwhile).
    const at = await net.head();
    const now = await everyoneAt(at);
    const show = (a: Address) => `${a}: ${total(before0.get(a)!)} -> ${total(now.get(a)!)}`;
    for (const a of honest) assert.ok(total(now.get(a)!) > total(before0.get(a)!), `honest node rose: ${show(a)}`);
    assert.ok(total(now.get(validator.address)!) > total(before0.get(validator.address)!), `validator rose: ${show(validator.address)}`);
    const validatorClaims = await net.read.rewards.getEvents.RewardClaimed({ account: validator.address }, { fromBlock: baseline, toBlock: at });
    assert.ok(validatorClaims.length > 0, "the validator claimed its rewards (--claim)");

    const slashes = await net.read.nodeRegistry.getEvents.Slashed({ node: bad }, { fromBlock: baseline + 1n, toBlock: at });
    const slashed = slashes.reduce((sum, e) => sum + e.args.amount!, 0n);
    assert.ok(slashed > 0n, "node-1 was slashed");
    assert.equal(before0.get(bad)!.stake - now.get(bad)!.stake, slashed, "node-1's stake fell by exactly its slashes");

    const credits = await net.read.rewards.getEvents.RewardCredited({ epoch }, { fromBlock: baseline });
    const credit = (a: Address) => credits.filter((e) => !e.args.validator && getAddress(e.args.account!) === a).reduce((s, e) => s + e.args.amount!, 0n);
    for (const a of honest) assert.ok(credit(bad) < credit(a), `epoch ${epoch}: node-1 credited ${credit(bad)}, honest ${a} ${credit(a)}`);

    // The token invariant at block `at`.
    const { token, rewards } = net.read;
    const supply0 = await token.read.totalSupply({ blockNumber: net.deployment.deployBlock });
    const minted = (await rewards.getEvents.EpochFinalized({}, { fromBlock: net.deployment.deployBlock, toBlock: at })).reduce((s, e) => s + e.args.minted!, 0n);
    assert.ok(minted > 0n);
    const supply = await token.read.totalSupply({ blockNumber: at });
    assert.equal(supply, supply0 + minted, "totalSupply = initial supply + minted");
    const books = await booksAt(net, at);
    for (const [name, c] of Object.entries(books.byContract)) assert.equal(c.held, c.owed, `${name}: MURI balance = what its books hold`);
    const holders = new Set((await token.getEvents.Transfer({}, { fromBlock: 0n, toBlock: at })).map((e) => getAddress(e.args.to!)));
    let sum = 0n;
    for (const h of holders) sum += await token.read.balanceOf([h], { blockNumber: at });
    assert.equal(sum, supply, "every token is held by some account");
    console.log(
      `# at block ${at}: minted ${minted / 10n ** 18n} MURI, node-1 slashed ${slashed / 10n ** 15n} mMURI in ${slashes.length} slashes; ` +
        `contracts hold ${books.held / 10n ** 18n} MURI = their books`,
    );
  });
});

/** The token books (books.ts) of the deployment's contracts, every value read at `block`. */
async function booksAt(net: Network, block: bigint) {
  const at = { blockNumber: block };
  const { token, nodeRegistry, maguRegistry, rewards } = net.read;
  const address = (a: Address) => async () => a;
  // SearchMarket holds fees and deposits once deployed; typed loosely so this compiles with and without it.
  const market = (net.read as unknown as Record<string, { address: Address; read: { totalHeld(o: typeof at): Promise<bigint> } } | undefined>).searchMarket;
  return tokenBooks({
    token: { balanceOf: (a) => token.read.balanceOf([a as Address], at) },
    nodeRegistry: { getAddress: address(nodeRegistry.address), totalHeld: () => nodeRegistry.read.totalHeld(at) },
    maguRegistry: { getAddress: address(maguRegistry.address), totalHeld: () => maguRegistry.read.totalHeld(at) },
    rewards: { getAddress: address(rewards.address), totalClaimable: () => rewards.read.totalClaimable(at), pool: () => rewards.read.pool(at) },
    searchMarket: market && { getAddress: address(market.address), totalHeld: () => market.read.totalHeld(at) },
  });
}
