/**
 * Audits and proofs against a lying upload, and proofs of a period whose seed came late.
 *
 * A real chain (periods of 300 blocks, so a period's start block can fall out of `blockhash`
 * reach while the period is still open), two storage nodes of real parts and a validator whose
 * audit fetches go over its own libp2p node. Two blob Magus (k=1, m=1) on the same two nodes:
 * - H: an honest upload;
 * - L: a lying record: the shards of one file recorded under the fragment roots of another, which
 *   are committed. Since a fragment's CID is its fragment root, no document can say this any more
 *   (a manifest whose roots differ from its shard links is refused, checked below), so the
 *   members' records are written directly, as an older version or a damaged index could have left
 *   them. Every fetch matches its CID, yet nothing the members hold folds to the committed root:
 *   audits must fail, proofs must not be sent, and the periods are marked missed.
 * The late seed: nobody touches period p of H until its start block is more than 256 blocks
 * old; the honest member still proves it (the contract falls back to `_lateSeed`, which
 * `fallbackPeriodSeed` reproduces), a member that lost its shard does not.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { getAddress, type Address, type Hex } from "viem";
import { getMuriContracts } from "../../../agents/chain/index.js";
import { fallbackPeriodSeed } from "../../../agents/data/challenge.js";
import { encodeManifest, type Manifest } from "../../../agents/data/manifest.js";
import { maguRoot } from "../../../agents/data/merkle.js";
import { fragmentsOfSlot } from "../../../agents/data/placement.js";
import type { P2PNode } from "../../../agents/p2p/index.js";
import { createProver, type MissingReason, type Prover } from "../../../agents/roles/node/prover.js";
import { createValidator, VALIDATOR_DEFAULTS, type AuditFetcher, type Validator } from "../../../agents/roles/validator/validator.js";
import { cleanup, signer } from "../chain/harness.js";
import { commitRoots, createBlobMagu, encodeSmallFile, startClientPeer, startTestChain, startTestNode, testLogger, upload, type TestChain, type TestNode } from "./adversarial-helpers.js";

after(cleanup);

const SHARD = 4096;
const CLIENT = 5;
const PERIOD_BLOCKS = 300;
/** EVM `blockhash` reaches the 256 most recent blocks. */
const BLOCKHASH_REACH = 256n;

const rootOf = (roots: readonly string[]): Hex => `0x${maguRoot(roots.map((r) => Buffer.from(r, "hex"))).toString("hex")}`;

describe("audits and proofs against a lying upload; the late-seed path (real chain, stores, libp2p)", { timeout: 300_000 }, () => {
  let t: TestChain;
  const nodes: TestNode[] = [];
  let observer: TestNode; // the validator's node: documents recorded, nothing held
  let client: P2PNode;
  let validator: Validator;
  const validatorLog = testLogger("validator");
  const provers = new Map<Address, Prover>();
  const missing: Array<{ member: Address; maguId: bigint; fragment: number; reason: MissingReason }> = [];
  let honest: bigint; // Magu H
  let lying: bigint; // Magu L
  let honestFile: Awaited<ReturnType<typeof encodeSmallFile>>;
  let lyingManifest: Manifest;

  before(async () => {
    t = await startTestChain({ periodBlocks: PERIOD_BLOCKS, epochBlocks: 4 * PERIOD_BLOCKS });
    for (let i = 1; i <= 2; i++) nodes.push(await startTestNode(t, t.chain.keys[i]!));
    observer = await startTestNode(t, t.chain.keys[4]!, { register: false, observer: true });
    client = await startClientPeer();
    const key = t.chain.keys[CLIENT]!;

    // H: honest.
    let members: Address[];
    ({ maguId: honest, members } = await createBlobMagu(t, key, { k: 1, m: 1, members: 2, maxFragments: 2 }));
    const byAddress = (a: Address) => nodes.find((n) => n.address === a)!;
    honestFile = await encodeSmallFile(randomBytes(2000), 1, 1, SHARD);
    await commitRoots(t, key, honest, rootOf(honestFile.manifest.roots), 2);
    await upload(client, honest, members.map(byAddress), honestFile, [observer]);

    // L: the shards of `shown`, the fragment roots of `committed` (same layout).
    ({ maguId: lying, members } = await createBlobMagu(t, key, { k: 1, m: 1, members: 2, maxFragments: 2 }));
    const shown = await encodeSmallFile(randomBytes(2000), 1, 1, SHARD);
    const committed = await encodeSmallFile(randomBytes(2000), 1, 1, SHARD);
    lyingManifest = { ...shown.manifest, roots: committed.manifest.roots };
    assert.throws(() => encodeManifest(lyingManifest), /roots\[0\]: must be the fragment root its shard link carries/);
    await commitRoots(t, key, lying, rootOf(committed.manifest.roots), 2);
    const committedRoots = committed.manifest.roots.map((r) => Buffer.from(r, "hex"));
    for (const n of [...nodes, observer]) await n.index.recordFragments(lying, rootOf(committed.manifest.roots), committedRoots, shown.manifest.shards);
    for (const [slot, address] of members.entries()) {
      const n = byAddress(address);
      const held = fragmentsOfSlot(lying, 2, members.length, slot, { k: 1, m: 1 });
      await n.index.setHeld(lying, held);
      for (const f of held) await n.store.put(shown.manifest.shards[f]!, shown.shards.get(shown.manifest.shards[f]!.toString())!);
    }
    for (const n of nodes) for (const f of (await n.index.get(lying))!.held) assert.equal(await n.store.has(lyingManifest.shards[f]!), true, "the members hold L's shards");

    const v = signer(t.chain.rpcUrl, t.d, t.chain.keys[4]!);
    // Each audit draws (target, fragment, holder): L fragment 0, L fragment 1, H fragment 0, H fragment 1.
    const picks = [0.1, 0.1, 0.5, 0.1, 0.9, 0.5, 0.9, 0.1, 0.5, 0.9, 0.9, 0.5];
    let r = 0;
    validator = createValidator(
      { address: getAddress(v.account.address), pollMs: 100, auditsPerRound: 4 },
      { contracts: getMuriContracts(t.d.contracts, v), publicClient: v.publicClient, walletClient: v.walletClient, fetcher: observer.p2p, random: () => picks[r++ % picks.length]!, logger: validatorLog },
    );
    for (const n of nodes) {
      provers.set(
        n.address,
        createProver(
          { member: n.address, pollMs: 100, onMissingFragment: (maguId, fragment, _cid, reason) => missing.push({ member: n.address, maguId, fragment, reason }) },
          { contracts: getMuriContracts(t.d.contracts, n.clients), publicClient: n.clients.publicClient, walletClient: n.clients.walletClient, store: n.store, index: n.index, logger: testLogger(`prover ${n.address}`) },
        ),
      );
    }
  });

  after(async () => {
    await validator?.stop();
    for (const p of provers.values()) await p.stop();
    await client?.stop();
    for (const n of [...nodes, observer]) await n?.close();
  });

  test("an audit fails bytes that match their CID but not the committed fragment root; honest holders pass", async () => {
    // The targets come from the documents the validator's node verified (as validator-agent.ts does).
    for (const maguId of [lying, honest]) {
      const rec = (await observer.index.get(maguId))!;
      assert.deepEqual(rec.held, [], "observer holds nothing");
      await validator.addAuditTargets(maguId, rec.cids, rec.fragmentRoots);
    }
    await validator.auditOnce();
    const failed = validatorLog.entries.filter((e) => e.msg === "audit failed");
    assert.deepEqual(
      failed.map((e) => [e.context!.magu, e.context!.fragment, e.context!.reason]),
      [
        [lying.toString(), 0, "bytes do not fold to the committed fragment root"],
        [lying.toString(), 1, "bytes do not fold to the committed fragment root"],
      ],
    );
    assert.equal(validator.stats().auditsPassed, 2, "H's fragments pass at their holders");
    assert.equal(validator.stats().auditsFailed, 2);
    // Each node holds one fragment of each Magu: one audit passed, one failed, nothing more.
    const tally = validator.audits(await t.reader.rewards.read.currentEpoch());
    for (const n of nodes) assert.deepEqual(tally.get(n.address), { proofs: 0, misses: 0, auditsPassed: 1, auditsFailed: 1 }, n.address);
    // The passed audits are logged too (debug): H's two fragments, each at the node that holds it.
    const holderOf = async (f: number) => {
      for (const n of nodes) if ((await n.index.get(honest))!.held.includes(f)) return n.address;
      throw new Error(`nobody holds fragment ${f} of H`);
    };
    const passed = validatorLog.entries.filter((e) => e.msg === "audit passed");
    assert.deepEqual(
      passed.map((e) => [e.level, e.context!.magu, e.context!.fragment, e.context!.holder]),
      [
        ["debug", honest.toString(), 0, await holderOf(0)],
        ["debug", honest.toString(), 1, await holderOf(1)],
      ],
    );
  });

  test("audit targets must match the chain; no fetcher or no target means no audit; the default round", async () => {
    const rec = (await observer.index.get(honest))!;
    const v = signer(t.chain.rpcUrl, t.d, t.chain.keys[4]!);
    const components = { contracts: getMuriContracts(t.d.contracts, v), publicClient: v.publicClient, walletClient: v.walletClient };
    const address = getAddress(v.account.address);
    let draws = 0;
    const random = () => (draws++ % 8) / 8;
    const calls: Array<{ cid: string; timeoutMs?: number; signal?: AbortSignal }> = [];
    const recording: AuditFetcher = {
      fetchFragment(target, cid, options) {
        calls.push({ cid: cid.toString(), ...options });
        return observer.p2p.fetchFragment(target, cid, options);
      },
    };

    // One CID short of the fragment roots (which do fold to the chain's root): refused by count;
    // L's fragment roots for H: refused by the fold.
    const plain = createValidator({ address }, { ...components, fetcher: recording, random });
    await assert.rejects(plain.addAuditTargets(honest, rec.cids.slice(1), rec.fragmentRoots), { name: "RangeError", message: "1 CIDs but 2 fragment roots" });
    await assert.rejects(plain.addAuditTargets(honest, rec.cids, (await observer.index.get(lying))!.fragmentRoots), { name: "RangeError", message: /^audit targets of Magu \d+ fold to 0x[0-9a-f]{64} over 2 fragments; chain has 0x[0-9a-f]{64} over 2$/ });
    // No target yet: a round draws nothing and fetches nothing.
    await plain.auditOnce();
    assert.equal(draws, 0);
    assert.equal(calls.length, 0);
    // With H as its target and no auditsPerRound/auditTimeoutMs: the defaults, 4 audits of 10 s at most.
    await plain.addAuditTargets(honest, rec.cids, rec.fragmentRoots);
    await plain.auditOnce();
    assert.equal(calls.length, VALIDATOR_DEFAULTS.auditsPerRound);
    assert.equal(VALIDATOR_DEFAULTS.auditsPerRound, 4);
    for (const c of calls) {
      assert.equal(c.timeoutMs, VALIDATOR_DEFAULTS.auditTimeoutMs);
      assert.equal(c.signal, undefined, "not started: nothing to abort");
      assert.ok(rec.cids.some((cid) => cid.toString() === c.cid));
    }
    assert.deepEqual([plain.stats().auditsPassed, plain.stats().auditsFailed], [4, 0]);
    const metrics = await plain.registry.metrics();
    assert.match(metrics, /^muri_validator_audits_total\{result="passed"\} 4$/m);
    assert.match(metrics, /^muri_validator_audits_total\{result="failed"\} 0$/m);

    // Without a fetcher a validator audits nothing, targets or not.
    draws = 0;
    const blind = createValidator({ address, auditsPerRound: 4 }, { ...components, random });
    await blind.addAuditTargets(honest, rec.cids, rec.fragmentRoots);
    await blind.auditOnce();
    assert.equal(draws, 0);
    assert.deepEqual([blind.stats().auditsPassed, blind.stats().auditsFailed], [0, 0]);
  });

  test("a period whose start block hash went out of reach is proven by the honest member with the late seed; nothing is proven of L", async () => {
    const info = await t.reader.maguRegistry.read.maguInfo([honest]);
    const period = info.startPeriod;
    assert.equal((await t.reader.maguRegistry.read.maguInfo([lying])).startPeriod, period);
    const start = await t.reader.maguRegistry.read.periodStart([period]);
    // Past the reach of blockhash(start), well before the deadline.
    await t.mineTo(start + BLOCKHASH_REACH + 4n);
    assert.equal(await t.reader.maguRegistry.read.currentPeriod(), period);
    const deadline = await t.reader.challengeManager.read.proofDeadline([period]);
    assert.ok((await t.head()) + 10n < deadline);
    const seeds = await t.reader.challengeManager.getEvents.PeriodSeedRecorded({}, { fromBlock: t.d.deployBlock });
    assert.equal(seeds.filter((e) => e.args.period === period).length, 0, "nobody touched the period yet");

    // One member lost its shard of H.
    const [prover, loser] = nodes as [TestNode, TestNode];
    for (const f of (await loser.index.get(honest))!.held) assert.equal(await loser.store.delete(honestFile.manifest.shards[f]!), true);

    await provers.get(prover.address)!.runOnce();
    await provers.get(loser.address)!.runOnce();
    const state = (maguId: bigint, member: Address) => t.reader.challengeManager.read.proofState([maguId, member, period]);
    assert.equal(await state(honest, prover.address), 1, "the honest member proved the late-seed period");
    assert.equal(await state(honest, loser.address), 0, "no proof without the shard");
    for (const n of nodes) assert.equal(await state(lying, n.address), 0, "no proof of L");

    // The seed the contract recorded is the late seed, reproduced off chain.
    const recorded = (await t.reader.challengeManager.getEvents.PeriodSeedRecorded({}, { fromBlock: t.d.deployBlock })).filter((e) => e.args.period === period);
    assert.equal(recorded.length, 1);
    const previous = await t.pub.getBlock({ blockNumber: recorded[0]!.blockNumber - 1n });
    assert.equal(recorded[0]!.args.seed, fallbackPeriodSeed(period, previous.hash));
    assert.notEqual(recorded[0]!.args.seed, (await t.pub.getBlock({ blockNumber: start })).hash, "not the start block's hash");

    // What the provers reported instead of sending doomed proofs.
    const reported = (member: Address, maguId: bigint) => [...new Set(missing.filter((m) => m.member === member && m.maguId === maguId).map((m) => m.reason))];
    assert.deepEqual(reported(loser.address, honest), ["not-found"]);
    for (const n of nodes) assert.deepEqual(reported(n.address, lying), ["root-mismatch"], `${n.address} on L`);
    assert.deepEqual(reported(prover.address, honest), []);

    // After the deadline the validator marks every unproven period missed; the proof stands.
    await t.mineTo(deadline);
    await validator.runOnce();
    assert.equal(await state(honest, prover.address), 1);
    assert.equal(await state(honest, loser.address), 2);
    for (const n of nodes) assert.equal(await state(lying, n.address), 2, `${n.address} missed L`);
  });

  test("a validator stopped during an audit neither records it nor starts the next one", async () => {
    const rec = (await observer.index.get(honest))!;
    const v = signer(t.chain.rpcUrl, t.d, t.chain.keys[4]!);
    let fetches = 0;
    let stopped: Promise<void> | undefined;
    // The fetch serves the right bytes, but the validator is stopped while it runs.
    const stopping: Validator = createValidator(
      { address: getAddress(v.account.address), pollMs: 60_000, auditIntervalMs: 10, auditsPerRound: 4 },
      {
        contracts: getMuriContracts(t.d.contracts, v),
        publicClient: v.publicClient,
        walletClient: v.walletClient,
        fetcher: {
          async fetchFragment(_target, cid) {
            fetches++;
            stopped ??= stopping.stop();
            return honestFile.shards.get(cid.toString())!;
          },
        },
        random: () => 0.1,
      },
    );
    await stopping.addAuditTargets(honest, rec.cids, rec.fragmentRoots);
    await stopping.start();
    const deadline = Date.now() + 60_000;
    while (stopped === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(stopped, "an audit ran");
    await stopped;
    assert.equal(fetches, 1, "no audit after the stop");
    assert.deepEqual([stopping.stats().auditsPassed, stopping.stats().auditsFailed], [0, 0]);
    assert.equal(stopping.audits(await t.reader.rewards.read.currentEpoch()).size, 0);
  });
});
