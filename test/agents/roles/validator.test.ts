import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { createTestClient, encodeFunctionData, getAddress, http, type Address, type Hex } from "viem";
import type { CID } from "multiformats/cid";
import { getMuriContracts, nodeRegistryAbi, type Deployment, type MuriPublicClient } from "../../../agents/chain/index.js";
import { fragmentCid } from "../../../agents/data/cid.js";
import { buildFragmentTree, maguRoot } from "../../../agents/data/merkle.js";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import { openFragmentStore, type FragmentStore } from "../../../agents/store/fragment-store.js";
import { openMetaDb, type MetaDb } from "../../../agents/store/meta-db.js";
import { createMaguIndex } from "../../../agents/roles/shared/magu-index.js";
import { createProver, type Prover } from "../../../agents/roles/node/prover.js";
import { startMetricsServer } from "../../../agents/roles/shared/metrics-server.js";
import { createValidator, ensureValidatorRegistered, type AuditFetcher, type Validator } from "../../../agents/roles/validator/validator.js";
import { encodeOwed, readOwed } from "../../../agents/roles/validator/validator-agent.js";
import { Bucket } from "../../../agents/store/index.js";
import { createAndFormMagu, E18, cleanup, deployLocal, fund, recordingLogger, registerNode, signer, startFreshHardhatNode, tempDir, throughTimelock, type HardhatChain } from "../chain/harness.js";
import { commitRootWithAcks } from "./commit-helpers.js";
import { writeDeployment } from "./e2e-helpers.js";
import { TS_LOADER } from "../ts-loader.js";
import { reapOnExit } from "../reap.js";

after(cleanup);

const RUN_VALIDATOR = fileURLToPath(new URL("../../../agents/roles/validator/run-validator.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const FRAGMENTS = 2;
const MAX_MISSES = 3n;

function logger(name: string) {
  if (!process.env.MURI_TEST_LOG) return recordingLogger();
  const out = (level: string) => (msg: string, ctx?: Record<string, unknown>) =>
    console.error(name, level, msg, JSON.stringify(ctx, (_k, v) => (typeof v === "bigint" ? v.toString() : v)));
  return { debug: out("debug"), info: out("info"), warn: out("warn"), error: out("error") };
}

describe("validator against a hardhat node (blob Magu k=1, m=1, two members of three nodes)", () => {
  let chain: HardhatChain;
  let d: Deployment & { timelock: Address };
  let pub: MuriPublicClient;
  let maguId: bigint;
  let startPeriod: bigint;
  let prover: Prover;
  let validator: Validator;
  let validatorAddress: Address;
  let honest: Address; // proves every period
  let lazy: Address; // never proves
  let meta: MetaDb;
  let store: FragmentStore;
  const nodeAddresses: Address[] = [];
  const fragments: Uint8Array[] = [];
  const cids: CID[] = [];
  const fragmentRoots: Buffer[] = [];
  const served = new Map<string, { address: Address; bytes: Map<string, Uint8Array> }>(); // multiaddr -> what that node serves
  const fetches: { holder: Address; served: boolean }[] = []; // every audit fetch the validator made, in order
  let ended: { validator: Validator; draws: number; fetches: number } | undefined; // audits the Magu until it ends

  const reader = () => getMuriContracts(d.contracts, { publicClient: pub });
  const head = () => pub.getBlockNumber({ cacheTime: 0 });
  const mineTo = async (block: bigint) => {
    const h = await head();
    if (block > h) await createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) }).mine({ blocks: Number(block - h) });
  };
  /** Mines to `block`, stopping one block into each period on the way so the honest member proves it. */
  const advanceTo = async (block: bigint) => {
    const registry = reader().maguRegistry;
    // On a period's first block its seed is not fixed yet: one more block, so the prover can
    // answer the period before a step jumps past its deadline.
    const proveCurrent = async () => {
      const h = await head();
      if (h === (await registry.read.periodStart([await registry.read.currentPeriod()]))) await mineTo(h + 1n);
      await prover.runOnce();
    };
    for (let i = 0; i < 100 && (await head()) < block; i++) {
      // The current period first: other transactions (the validator's) may have moved the chain
      // into it since the last step.
      await proveCurrent();
      const next = (await registry.read.periodStart([(await registry.read.currentPeriod()) + 1n])) + 1n;
      await mineTo(next < block ? next : block);
      await proveCurrent();
    }
  };

  const state = (member: Address, period: bigint) => reader().challengeManager.read.proofState([maguId, member, period]);

  before(async () => {
    chain = await startFreshHardhatNode();
    d = await deployLocal(chain.rpcUrl);
    pub = signer(chain.rpcUrl, d, chain.keys[0]!).publicClient;
    const wait = async (hash: Hex) => assert.equal((await pub.waitForTransactionReceipt({ hash, pollingInterval: 50 })).status, "success");
    for (let i = 1; i <= 3; i++) {
      await registerNode(chain.rpcUrl, d, chain.keys[0]!, chain.keys[i]!);
      const s = signer(chain.rpcUrl, d, chain.keys[i]!);
      const addr = `/ip4/127.0.0.1/tcp/${4000 + i}`;
      const k = getMuriContracts(d.contracts, s);
      await wait(await k.nodeRegistry.write.updateNode([1_000_000_000n, `0x${Buffer.from(`peer-${i}`).toString("hex")}`, [addr]]));
      nodeAddresses.push(getAddress(s.account.address));
      served.set(addr, { address: getAddress(s.account.address), bytes: new Map() });
    }

    // The validator (account 4) registers itself.
    const v = signer(chain.rpcUrl, d, chain.keys[4]!);
    validatorAddress = getAddress(v.account.address);
    await fund(chain.rpcUrl, d, chain.keys[0]!, validatorAddress, 2_000n * E18);
    const vContracts = getMuriContracts(d.contracts, v);
    assert.equal(await ensureValidatorRegistered({ contracts: vContracts, publicClient: pub }, { address: validatorAddress, nodeRegistryAddress: d.contracts.nodeRegistry, stake: 2_000n * E18 }), true);
    assert.equal(await ensureValidatorRegistered({ contracts: vContracts, publicClient: pub }, { address: validatorAddress, nodeRegistryAddress: d.contracts.nodeRegistry, stake: 2_000n * E18 }), false);
    assert.equal((await reader().nodeRegistry.read.nodeInfo([validatorAddress])).roles, 2);

    // The client (account 5): a two-member blob Magu over two fragments, fourteen periods.
    const price = E18 / 1000n;
    const duration = 14n; // outlives the weights test (an epoch is four periods)
    maguId = await createAndFormMagu(chain.rpcUrl, d, chain.keys[0]!, chain.keys[5]!, { kind: 0, metric: 0, dimension: 0, members: 2, replication: 0, dataShards: 1, parityShards: 1, maxFragments: FRAGMENTS, durationPeriods: duration, pricePerFragmentPeriod: price }, mineTo);
    for (let f = 0; f < FRAGMENTS; f++) {
      const bytes = randomBytes(3000 + f * 500);
      fragments.push(bytes);
      cids.push(fragmentCid(bytes));
      fragmentRoots.push(buildFragmentTree(bytes).fragmentRoot);
    }
    const root = `0x${maguRoot(fragmentRoots).toString("hex")}` as Hex;
    await commitRootWithAcks(chain.rpcUrl, d, chain.keys[5]!, chain.keys, maguId, root, FRAGMENTS);
    const info = await reader().maguRegistry.read.maguInfo([maguId]);
    [honest, lazy] = info.members.map((a) => getAddress(a)) as [Address, Address];
    // The first challenged period, from the chain: the period after the commit, startPeriod at the earliest.
    startPeriod = (await reader().maguRegistry.read.membership([maguId, lazy])).joinPeriod;
    assert.ok(startPeriod >= info.startPeriod);

    // The honest member holds its fragments and runs a prover (driven with runOnce).
    const honestKey = chain.keys[1 + nodeAddresses.indexOf(honest)]!;
    const hs = signer(chain.rpcUrl, d, honestKey);
    const dir = await tempDir("muri-validator-test-");
    meta = await openMetaDb(`${dir}/meta`);
    store = await openFragmentStore({ dir, quotaBytes: 16 * 1024 * 1024, metaDb: meta, sync: "none" });
    const index = createMaguIndex({}, { metaDb: meta });
    const held = fragmentsOfSlot(maguId, FRAGMENTS, 2, 0, { k: 1, m: 1 });
    for (const f of held) await store.put(cids[f]!, fragments[f]!);
    await index.recordFragments(maguId, root, fragmentRoots, cids);
    await index.setHeld(maguId, held);
    prover = createProver({ member: honest, pollMs: 100 }, { contracts: getMuriContracts(d.contracts, hs), publicClient: hs.publicClient, walletClient: hs.walletClient, store, index });
    // What each node would serve to an audit: the honest member its fragments, nobody else anything.
    for (const s of served.values()) if (s.address === honest) for (const f of held) s.bytes.set(cids[f]!.toString(), fragments[f]!);

    const fetcher: AuditFetcher = {
      async fetchFragment(target, cid) {
        const bytes = served.get(target)?.bytes.get(cid.toString());
        fetches.push({ holder: served.get(target)!.address, served: bytes !== undefined });
        if (!bytes) throw new Error(`${target}: not found`);
        return bytes;
      },
    };
    let r = 0;
    const picks = [0.1, 0.1, 0.1, 0.9]; // target, fragment 0, target, fragment 1, ...
    validator = createValidator(
      { address: validatorAddress, pollMs: 100, auditsPerRound: 4 },
      { contracts: vContracts, publicClient: v.publicClient, walletClient: v.walletClient, fetcher, random: () => picks[r++ % picks.length]!, logger: logger("validator") },
    );
  });

  after(async () => {
    await validator?.stop();
    await prover?.stop();
    await store?.close();
    await meta?.close();
  });

  test("marks the lazy member's missed periods, which evicts it; fills its slot", async () => {
    for (let p = startPeriod; p < startPeriod + MAX_MISSES; p++) {
      await mineTo((await reader().maguRegistry.read.periodStart([p])) + 1n);
      await prover.runOnce();
      assert.equal(await state(honest, p), 1, `honest member proved period ${p}`);
      // Before the deadline nothing is marked.
      await validator.runOnce();
      assert.equal(await state(lazy, p), 0, `period ${p} still open before its deadline`);
      await mineTo(await reader().challengeManager.read.proofDeadline([p]));
      await validator.runOnce();
      assert.equal(await state(lazy, p), 2, `period ${p} marked missed`);
      assert.equal(await state(honest, p), 1);
    }
    assert.equal(validator.stats().missedMarked, Number(MAX_MISSES));
    const membership = await reader().maguRegistry.read.membership([maguId, lazy]);
    assert.equal(membership.active, false, "evicted after maxMisses");
    assert.equal(membership.misses, Number(MAX_MISSES));
    const left = await reader().maguRegistry.getEvents.MemberLeft({ magu: maguId }, { fromBlock: d.deployBlock });
    assert.equal(left.length, 1);
    assert.equal(left[0]!.args.evicted, true);
    const slot = left[0]!.args.slot!;

    // Until the replacement is drawn the slot is vacant: an audit of its fragment is skipped, not
    // sent to the zero address (a validator of its own, so the audits below stay as they are).
    assert.equal((await reader().maguRegistry.read.maguInfo([maguId])).members[slot], "0x0000000000000000000000000000000000000000");
    const [vacantFragment] = fragmentsOfSlot(maguId, FRAGMENTS, 2, slot, { k: 1, m: 1 });
    const probeFetches: string[] = [];
    const vs = signer(chain.rpcUrl, d, chain.keys[4]!);
    const probe = createValidator(
      { address: validatorAddress, auditsPerRound: 2 },
      {
        contracts: getMuriContracts(d.contracts, vs),
        publicClient: vs.publicClient,
        walletClient: vs.walletClient,
        fetcher: {
          async fetchFragment(target) {
            probeFetches.push(target);
            throw new Error(`${target}: not served`);
          },
        },
        random: () => (vacantFragment! + 0.5) / FRAGMENTS,
      },
    );
    await probe.addAuditTargets(maguId, cids, fragmentRoots);
    await probe.auditOnce();
    assert.deepEqual(probeFetches, []);
    assert.deepEqual([probe.stats().auditsPassed, probe.stats().auditsFailed], [0, 0]);

    // The replacement is drawn two blocks after the vacancy; the validator retries until then.
    for (let i = 0; i < 4 && validator.stats().vacanciesFilled === 0; i++) {
      await validator.runOnce();
      if (validator.stats().vacanciesFilled === 0) await mineTo((await head()) + 1n);
    }
    assert.equal(validator.stats().vacanciesFilled, 1);
    const members = (await reader().maguRegistry.read.maguInfo([maguId])).members.map((a) => getAddress(a));
    assert.ok(!members.includes("0x0000000000000000000000000000000000000000"));
    // Any eligible node but the sitting members may be drawn, the evicted one included.
    assert.ok(nodeAddresses.includes(members[slot]!) && members[slot] !== honest, "a registered node took the slot");
    assert.equal((await reader().maguRegistry.read.membership([maguId, members[slot]!])).active, true);
  });

  test("audits fragments at their holders: the honest member passes, the replacement (no data) fails", async () => {
    await assert.rejects(validator.addAuditTargets(maguId, cids, [...fragmentRoots].reverse()), /fold to/);
    await validator.addAuditTargets(maguId, cids, fragmentRoots);
    await validator.auditOnce();
    const epoch = await reader().rewards.read.currentEpoch();
    const tally = validator.audits(epoch);
    const info = await reader().maguRegistry.read.maguInfo([maguId]);
    const replacement = info.members.map((a) => getAddress(a)).find((a) => a !== honest)!;
    assert.ok((tally.get(honest)?.auditsPassed ?? 0) >= 1, "honest member passed");
    assert.equal(tally.get(honest)?.auditsFailed ?? 0, 0);
    assert.ok((tally.get(replacement)?.auditsFailed ?? 0) >= 1, "replacement failed");
    assert.equal(validator.stats().auditsPassed + validator.stats().auditsFailed, 4);
    // A validator of its own audits this Magu too, until it ends (the settle test below).
    const vs = signer(chain.rpcUrl, d, chain.keys[4]!);
    ended = {
      draws: 0,
      fetches: 0,
      validator: createValidator(
        { address: validatorAddress, auditsPerRound: 2 },
        {
          contracts: getMuriContracts(d.contracts, vs),
          publicClient: vs.publicClient,
          walletClient: vs.walletClient,
          fetcher: {
            async fetchFragment(target, cid) {
              ended!.fetches++;
              const bytes = served.get(target)?.bytes.get(cid.toString());
              if (!bytes) throw new Error(`${target}: not found`);
              return bytes;
            },
          },
          random: () => (ended!.draws++ % 4) / 4,
        },
      ),
    };
    await ended.validator.addAuditTargets(maguId, cids, fragmentRoots);
    await ended.validator.auditOnce();
    assert.equal(ended.fetches, 2, "two audits while the Magu is active");
  });

  test("submits weights from what it observed, finalises the epoch, and earns rewards", async () => {
    const rewards = reader().rewards;
    const cfg = await rewards.read.config();
    // The tests above mined into a period without running the prover: it proves that period now,
    // while it is open (left to the loop below, it would land on the deadline and be marked missed).
    await prover.runOnce();
    // A fresh epoch: the honest member keeps proving, the validator audits again in it.
    let epoch = await rewards.read.currentEpoch();
    await advanceTo(cfg.genesisBlock + (epoch + 1n) * cfg.epochBlocks);
    epoch++;
    const epochEnd = cfg.genesisBlock + (epoch + 1n) * cfg.epochBlocks;
    const submitted = validator.stats().weightsSubmitted;
    await validator.runOnce();
    assert.equal(validator.stats().weightsSubmitted, submitted, "not before the submission window");
    fetches.length = 0;
    const auditsBefore = validator.stats().auditsPassed + validator.stats().auditsFailed;
    await validator.auditOnce();
    const audited = [...fetches]; // this epoch's audits, as the test served them
    assert.ok(audited.length >= 1, "audited in the epoch");
    assert.equal(validator.stats().auditsPassed + validator.stats().auditsFailed - auditsBefore, audited.length, "every audit fetched from the test's server");
    await advanceTo(epochEnd - 5n);
    await validator.runOnce();
    assert.equal(validator.stats().weightsSubmitted, submitted + 1);
    const [nodes, weights] = await rewards.read.weightsOf([epoch, validatorAddress]);
    assert.deepEqual([...nodes].map((a) => getAddress(a)), [...nodeAddresses].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1)), "every active node, sorted");

    // The expectation, from the chain and the test's own audit log, by the documented formula
    // (agents/roles/validator/validator.ts, "Weights"): score = 1 + proofs passed + audits passed
    // - 4 x misses - 2 x audits failed, floored at 0, over the epoch's blocks up to the submission;
    // Rewards stores each weight as score x 1e18 / Σ scores (docs/ARCHITECTURE.md, Rewards).
    const [sub] = await rewards.getEvents.WeightsSubmitted({ epoch, validator: validatorAddress }, { fromBlock: cfg.genesisBlock + epoch * cfg.epochBlocks, toBlock: epochEnd });
    assert.ok(sub, "WeightsSubmitted event");
    const range = { fromBlock: cfg.genesisBlock + epoch * cfg.epochBlocks, toBlock: sub.blockNumber };
    const cm = reader().challengeManager;
    const observed = new Map<Address, { proofs: bigint; misses: bigint; passed: bigint; failed: bigint }>();
    for (const node of nodeAddresses) {
      observed.set(node, {
        proofs: BigInt((await cm.getEvents.ProofSubmitted({ magu: maguId, member: node }, range)).length),
        misses: BigInt((await cm.getEvents.ProofMissed({ magu: maguId, member: node }, range)).length),
        passed: BigInt(audited.filter((a) => a.holder === node && a.served).length),
        failed: BigInt(audited.filter((a) => a.holder === node && !a.served).length),
      });
    }
    // The honest member proved every period that opened in the epoch before the submission.
    // As arranged: the honest member proved every period so far, and nothing of it was marked missed.
    const current = await reader().maguRegistry.read.currentPeriod();
    for (let p = startPeriod; p < current; p++) assert.equal(await state(honest, p), 1, `honest member proved period ${p}`);
    assert.equal(observed.get(honest)!.misses, 0n, "the honest member missed nothing");
    assert.ok(observed.get(honest)!.proofs >= 1n, "the honest member proved in the epoch");
    const score = (o: { proofs: bigint; misses: bigint; passed: bigint; failed: bigint }) => {
      const s = 1n + o.proofs + o.passed - 4n * o.misses - 2n * o.failed;
      return s > 0n ? s : 0n;
    };
    const total = [...observed.values()].reduce((a, o) => a + score(o), 0n);
    const detail = JSON.stringify(Object.fromEntries([...observed].map(([a, o]) => [a, { ...o, proofs: `${o.proofs}`, misses: `${o.misses}`, passed: `${o.passed}`, failed: `${o.failed}` }])));
    for (let i = 0; i < nodes.length; i++) {
      assert.equal(weights[i], (score(observed.get(getAddress(nodes[i]!))!) * E18) / total, `normalised weight of ${nodes[i]}: ${detail}`);
    }
    // What was observed is reflected: the proving, audited member outweighs the replacement that
    // failed its audits and missed its proofs, and anyone else.
    const byNode = new Map([...nodes].map((a, i) => [getAddress(a), weights[i]!]));
    const replacement = (await reader().maguRegistry.read.maguInfo([maguId])).members.map((a) => getAddress(a)).find((a) => a !== honest)!;
    for (const node of nodeAddresses) if (node !== honest) assert.ok(byNode.get(honest)! > byNode.get(node)!, `honest outweighs ${node} (replacement ${replacement}): ${detail}`);
    // A second pass in the same epoch does not submit again.
    await validator.runOnce();
    assert.equal(validator.stats().weightsSubmitted, submitted + 1);

    await advanceTo(epochEnd);
    await validator.runOnce();
    assert.equal(await rewards.read.isFinalized([epoch]), true);
    assert.ok(validator.stats().epochsFinalized >= 1);
    assert.ok((await rewards.read.claimable([validatorAddress])) > 0n, "the validator earned rewards");
    assert.ok((await rewards.read.claimable([honest])) > 0n, "the honest node earned rewards");
  });

  test("settles the Magu once it expired", async () => {
    const info = await reader().maguRegistry.read.maguInfo([maguId]);
    // Settling waits for the last period's mark window (its misses may be marked until then).
    await advanceTo((await reader().challengeManager.read.markDeadline([info.endPeriod - 1n])) + 1n);
    // The pass may first mark the replacement's misses (and fill its slot again): a few passes.
    for (let i = 0; i < 10 && validator.stats().settled === 0; i++) {
      await validator.runOnce();
      await mineTo((await head()) + 2n);
    }
    assert.equal(validator.stats().settled, 1);
    assert.equal((await reader().maguRegistry.read.maguInfo([maguId])).status, 3, "Ended");

    // An ended Magu is no longer audited: each round drops it on its first draw, the next finds no target.
    const e = ended!;
    e.draws = 0;
    e.fetches = 0;
    const before = e.validator.stats();
    await e.validator.auditOnce();
    assert.deepEqual([e.draws, e.fetches], [2, 0], "one draw per round (the target), no fetch");
    await e.validator.auditOnce();
    assert.deepEqual([e.draws, e.fetches], [2, 0], "no target left");
    assert.deepEqual(e.validator.stats(), before);
  });

  test("drops a member whose stake no longer backs its memberships, and only that one", async () => {
    // A fresh two-member Magu; one member is then drained by slashes (the deployer, given the
    // slasher role through the timelock, stands in for the contracts that slash).
    const admin = getMuriContracts(d.contracts, signer(chain.rpcUrl, d, chain.keys[0]!));
    const wait = async (hash: Hex) => assert.equal((await pub.waitForTransactionReceipt({ hash, pollingInterval: 50 })).status, "success");
    const price = E18 / 1000n;
    const id = await createAndFormMagu(chain.rpcUrl, d, chain.keys[0]!, chain.keys[5]!, { kind: 0, metric: 0, dimension: 0, members: 2, replication: 0, dataShards: 1, parityShards: 1, maxFragments: FRAGMENTS, durationPeriods: 10n, pricePerFragmentPeriod: price }, mineTo);
    const [kept, drained] = (await reader().maguRegistry.read.maguInfo([id])).members.map((a) => getAddress(a)) as [Address, Address];
    const slasher = await admin.nodeRegistry.read.SLASHER_ROLE();
    const grant = encodeFunctionData({ abi: nodeRegistryAbi, functionName: "grantRole", args: [slasher, signer(chain.rpcUrl, d, chain.keys[0]!).account.address] });
    await throughTimelock(chain.rpcUrl, d, chain.keys[0]!, d.contracts.nodeRegistry, grant);
    const stake = await reader().nodeRegistry.read.stakeOf([drained]);
    await wait(await admin.nodeRegistry.write.slash([drained, stake, [d.contracts.rewards], [stake]]));
    assert.equal(await reader().nodeRegistry.read.isBacked([drained]), false);
    assert.equal(await reader().nodeRegistry.read.isBacked([kept]), true);

    const dropped = validator.stats().dropped;
    await validator.runOnce();
    assert.equal(validator.stats().dropped, dropped + 1, "exactly the drained member was dropped");
    assert.equal((await reader().maguRegistry.read.membership([id, drained])).active, false);
    assert.equal((await reader().maguRegistry.read.membership([id, kept])).active, true, "the backed member stays");
    const left = await reader().maguRegistry.getEvents.MemberLeft({ magu: id }, { fromBlock: d.deployBlock });
    assert.deepEqual(left.map((e) => [getAddress(e.args.member!), e.args.evicted]), [[drained, true]]);
  });

  test("serves its counters on /metrics; the loop starts and stops", async () => {
    const server = await startMetricsServer({ port: 0 }, { registry: validator.registry });
    try {
      const text = await (await fetch(server.url)).text();
      const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, "m").exec(text)?.[1]);
      assert.ok(value("muri_validator_missed_marked_total") >= Number(MAX_MISSES));
      assert.ok(value("muri_validator_weights_submitted_total") >= 1);
      assert.ok(value("muri_validator_epochs_finalized_total") >= 1);
      assert.ok(value(`muri_validator_audits_total\\{result="passed"\\}`) >= 1);
      assert.ok(value(`muri_validator_audits_total\\{result="failed"\\}`) >= 1);
      assert.equal((await fetch(server.url.replace("/metrics", "/other"))).status, 404);
    } finally {
      await server.close();
    }
    const passes = validator.stats().passes;
    await validator.start();
    // Two passes of the loop (pollMs 100) normally take well under a second; 60 s bounds a failure.
    const deadline = Date.now() + 60_000;
    while (validator.stats().passes < passes + 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await validator.stop();
    assert.ok(validator.stats().passes >= passes + 2, "the loop ran");
  });

  test("an owed document fetch reads back as written; anything else is no record", () => {
    const indexCid = fragmentCid(randomBytes(64));
    const back = readOwed(encodeOwed({ indexCid, fragmentCount: 12 }));
    assert.ok(back !== undefined && back.indexCid.equals(indexCid) && back.fragmentCount === 12);
    for (const bad of ["", "not json", "null", "[]", '{"fragmentCount":3}', '{"indexCid":"bafy-not-a-cid","fragmentCount":3}', `{"indexCid":"${indexCid}","fragmentCount":0}`, `{"indexCid":"${indexCid}","fragmentCount":1.5}`, `{"indexCid":"${indexCid}","fragmentCount":"3"}`]) {
      assert.equal(readOwed(Buffer.from(bad)), undefined, bad);
    }
  });

  test("run-validator registers, prints ready, serves /metrics and exits 0 on SIGTERM; an unreadable owed fetch is dropped", async () => {
    const dir = await tempDir("muri-validator-proc-");
    const file = `${dir}/deployment.json`;
    await writeDeployment(file, d);
    // A damaged record of a document fetch owed from before (key "d" and a Magu id of 32 bytes).
    const owedKey = Buffer.concat([Buffer.from("d"), Buffer.alloc(31), Buffer.from([7])]);
    const seeded = await openMetaDb(`${dir}/v/meta`);
    await seeded.bucket(Bucket.task).put(owedKey, Buffer.from("{not json"));
    await seeded.close();
    const key = chain.keys[6]!;
    const address = getAddress(signer(chain.rpcUrl, d, key).account.address);
    await fund(chain.rpcUrl, d, chain.keys[0]!, address, 2_000n * E18);
    const child = spawn(process.execPath, ["--import", TS_LOADER, RUN_VALIDATOR, "--rpc", chain.rpcUrl, "--deployment", file, "--dir", `${dir}/v`, "--metrics-port", "0", "--poll-ms", "200"], {
      cwd: ROOT,
      env: { ...process.env, MURI_VALIDATOR_KEY: key },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    });
    reapOnExit(new Set([child]));
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-16_384)));
    const exited = new Promise<number | string | null>((resolve) => child.once("exit", (code, sig) => resolve(code ?? sig)));
    try {
      const ready = await new Promise<{ address: string; metricsUrl: string }>((resolve, reject) => {
        // Bounds a failure only: it is normally ready within seconds.
        const timer = setTimeout(() => reject(new Error(`not ready after 180 s:\n${stderr}`)), 180_000);
        createInterface({ input: child.stdout! }).on("line", (line) => {
          try {
            const msg = JSON.parse(line) as { event?: string; address: string; metricsUrl: string };
            if (msg.event === "ready") {
              clearTimeout(timer);
              resolve(msg);
            }
          } catch {
            // not ours
          }
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`exited before ready (${code}):\n${stderr}`));
        });
      });
      assert.equal(getAddress(ready.address), address);
      const info = await reader().nodeRegistry.read.nodeInfo([address]);
      assert.equal(info.registered, true);
      assert.equal(info.roles, 2);
      const res = await fetch(ready.metricsUrl);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /muri_validator_missed_marked_total/);
      // The owed records are read before "ready": the damaged one was dropped, with a warning (on
      // stderr, which may arrive after stdout's "ready"; 30 s bounds a failure).
      const warned = /"msg":"dropped an unreadable owed document fetch","magu":"7"/;
      for (const until = Date.now() + 30_000; !warned.test(stderr) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
      assert.match(stderr, warned);
      process.kill(-child.pid!, "SIGTERM");
      // A clean stop normally takes well under a second; a loaded machine must not turn it into a kill.
      const timer = setTimeout(() => process.kill(-child.pid!, "SIGKILL"), 30_000);
      assert.equal(await exited, 0, stderr);
      clearTimeout(timer);
      const reopened = await openMetaDb(`${dir}/v/meta`);
      try {
        assert.equal(await reopened.bucket(Bucket.task).get(owedKey), undefined, "the damaged record is gone");
      } finally {
        await reopened.close();
      }
    } finally {
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        // already gone
      }
    }
  });
});
