/**
 * End to end: files appended to one blob Magu with `muri put FILE --magu ID`.
 *
 * `hardhat node` + deployment, five storage node processes, and the real `bin/muri.js` for every
 * client step: `muri magu create` makes an empty blob Magu (k=3, m=2, 20 paid fragments), two
 * files are put into it (10 then 5 fragments; the second commit's root covers all 15), both come
 * back byte for byte, and every member records the two-file index. Then periods are mined and all
 * five members keep proving, with challenges that land in the appended file's fragments; a member
 * that loses its shards heals itself from the two-file index (repair). Finally the refusals: an
 * unknown id, another account's Magu, a vector Magu, a Magu not formed, and a file larger than the
 * paid fragments left: one line on stderr, exit 1, nothing committed.
 */
import assert from "node:assert/strict";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Address, Hex } from "viem";
import { getMuriContracts } from "../../../agents/chain/index.js";
import { cleanup, E18, signer } from "../chain/harness.js";
import { muri as runMuri, type CliRun as Run } from "../cli/run-muri.js";
import { firstChallengedPeriod, killAllNodes, logLines, randomFile, saveLogs, sha256File, startNetwork, waitFor, waitProven, type Network } from "./e2e-helpers.js";

const MEMBERS = 5;
const K = 3;
const M = 2;
/** Account indices: nodes 1..5, the client 6, another client 7. */
const CLIENT_KEY = 6;
const OTHER_KEY = 7;
/** 4 MiB: 5 plaintext fragments of 1 MiB - 28 B -> 2 stripes -> 10 shards. */
const FILE_A = 4 * 1024 * 1024;
/** 2 MiB: 3 fragments -> 1 stripe -> 5 shards. */
const FILE_B = 2 * 1024 * 1024;
const PAID = 20;
/** Longest one muri command may take here (a put pushes 10 shards). */
const CLI_TIMEOUT_MS = 180_000;
/**
 * Bound on one wait for a proof, ms. Only a failure takes this long: the chain moves only when the
 * test mines (or an agent sends a transaction), so no deadline passes while a prover is slow.
 */
const PROOF_WAIT_MS = 120_000;

describe("e2e: files appended to one blob Magu (muri put --magu)", { timeout: 1_200_000 }, () => {
  let net: Network;
  let clientDir: string;
  let maguId: bigint;
  const files: Record<"a" | "b", { path: string; sha256: string; manifestCid?: string; offset?: number; shards?: number }> = {} as never;

  /** `muri ...args` against the test chain, signing with account `keyIndex` (put and get with client directory `dir`). */
  const muri = (args: string[], keyIndex = CLIENT_KEY, dir = clientDir): Promise<Run> =>
    runMuri(
      [...args, "--deployment", net.deploymentFile, "--rpc", net.chain.rpcUrl, "--key", net.chain.keys[keyIndex]!, ...(args[0] === "magu" ? [] : ["--client-dir", dir])],
      {},
      CLI_TIMEOUT_MS,
    );
  const ok = (run: Run, what: string): Record<string, unknown> => {
    assert.equal(run.code, 0, `${what} failed: ${run.stderr}`);
    return JSON.parse(run.stdout) as Record<string, unknown>;
  };
  const mineTo = async (block: bigint): Promise<void> => {
    const head = await net.head();
    if (head < block) await net.publicClient.request({ method: "hardhat_mine" as never, params: [`0x${(block - head).toString(16)}`] as never });
  };
  const chainData = async (id: bigint) => {
    const info = await net.read.maguRegistry.read.maguInfo([id]);
    return { root: info.root, fragmentCount: info.fragmentCount, batches: info.batches };
  };

  before(async () => {
    const t0 = performance.now();
    net = await startNetwork({ prefix: "muri-e2e-append-", nodes: MEMBERS, fund: [CLIENT_KEY, OTHER_KEY] });
    clientDir = join(net.dir, "client");
    files.a = await randomFile(net.dir, "a.bin", FILE_A);
    files.b = await randomFile(net.dir, "b.bin", FILE_B);
    console.log(`# setup (chain, deploy, ${MEMBERS} nodes): ${Math.round(performance.now() - t0)} ms`);
  });

  after(async () => {
    // MURI_E2E_LOGS=<dir>: keep each node's last log lines there.
    await saveLogs("append-node", net?.nodes ?? []);
    await killAllNodes();
    await cleanup();
  });

  test("two files put into one Magu with --magu both come back byte-identical", async () => {
    let t0 = performance.now();
    const created = ok(
      await muri(["magu", "create", "--kind", "blob", "--data-shards", String(K), "--parity-shards", String(M), "--members", String(MEMBERS), "--fragments", String(PAID), "--periods", "40", "--price", "0.001", "--json"]),
      "magu create",
    );
    maguId = BigInt(created.id as string);
    console.log(`# muri magu create: ${Math.round(performance.now() - t0)} ms, magu ${maguId}`);
    assert.deepEqual(await chainData(maguId), { root: `0x${"0".repeat(64)}`, fragmentCount: 0, batches: 0 });

    for (const [name, expect] of [
      ["a", { offset: 0, shards: 10 }],
      ["b", { offset: 10, shards: 5 }],
    ] as const) {
      t0 = performance.now();
      const put = ok(await muri(["put", files[name].path, "--magu", maguId.toString(), "--json"]), `put ${name}`);
      console.log(`# muri put --magu (${name}): ${Math.round(performance.now() - t0)} ms, ${put.shards} shards at ${put.offset}`);
      assert.equal(BigInt(put.maguId as string), maguId);
      assert.equal(put.offset, expect.offset);
      assert.equal(put.shards, expect.shards);
      assert.equal(put.fragmentCount, expect.offset + expect.shards);
      Object.assign(files[name], { manifestCid: put.manifestCid as string, offset: put.offset as number, shards: put.shards as number });
      const data = await chainData(maguId);
      assert.equal(data.fragmentCount, expect.offset + expect.shards);
      assert.equal(data.batches, name === "a" ? 1 : 2);
    }

    // Every member verified the two-file index (both manifests fold to the on-chain root). It logs
    // that before it acknowledges the push; the line still has to cross its stderr pipe.
    for (const node of net.nodes) {
      const recorded = () => logLines(node.stderr(), "magu index recorded").filter((l) => l.magu === maguId.toString());
      await waitFor(`node ${node.address} recording the two-file index`, 30_000, async () => recorded().some((l) => l.files === 2 && l.fragments === 15), 100).catch(() => {
        assert.fail(`node ${node.address} recorded ${JSON.stringify(recorded())}`);
      });
    }

    for (const name of ["a", "b"] as const) {
      const out = join(net.dir, `out-${name}.bin`);
      t0 = performance.now();
      const got = ok(await muri(["get", files[name].manifestCid!, "--magu", maguId.toString(), "-o", out, "--json"]), `get ${name}`);
      console.log(`# muri get (${name}): ${Math.round(performance.now() - t0)} ms`);
      assert.equal(got.failed, 0);
      assert.equal(await sha256File(out), files[name].sha256, `file ${name} comes back byte for byte`);
    }
  });

  test("after the append all members keep proving, also on the appended fragments", async () => {
    const t0 = performance.now();
    const members = (await net.read.maguRegistry.read.maguInfo([maguId])).members as readonly Address[];
    const appended = new Set<number>();
    let periods = 0;
    // Not before the first challenged period (read from the chain): the Magu was formed empty, so a
    // first commit in a later period is challenged from the period after the next (commitData).
    const first = await firstChallengedPeriod(net.read, maguId, members);
    for (let round = 0; round < 6 && (periods < 2 || appended.size === 0); round++) {
      const next = (await net.read.maguRegistry.read.currentPeriod()) + 1n;
      const period = next > first ? next : first;
      await mineTo((await net.read.maguRegistry.read.periodStart([period])) + 1n);
      for (const member of members) {
        await waitProven(net, maguId, member, period, PROOF_WAIT_MS, net.nodes.find((n) => n.address.toLowerCase() === member.toLowerCase()));
        const items = await net.read.challengeManager.read.challengeFor([maguId, member, period]);
        for (const item of items) if (item.fragment >= files.b.offset!) appended.add(item.fragment);
      }
      periods++;
    }
    assert.ok(periods >= 2);
    assert.ok(appended.size > 0, "some challenge named a fragment of the appended file");
    console.log(`# ${periods} periods proven by all ${members.length} members (appended fragments challenged: ${[...appended].sort((x, y) => x - y).join(", ")}): ${Math.round(performance.now() - t0)} ms`);
  });

  test("a member that loses its shards rebuilds them from the two-file index and proves again", async () => {
    const t0 = performance.now();
    const healer = net.nodes[3]!;
    const blocks = join(net.nodeDir(3), "blocks");
    let deleted = 0;
    for (const entry of await readdir(blocks, { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && !entry.name.startsWith("bagu")) {
        await rm(join(entry.parentPath, entry.name)); // raw shards only: the documents stay
        deleted++;
      }
    }
    assert.equal(deleted, 3, "one shard per stripe: two of file a, one of file b");
    const period = (await net.read.maguRegistry.read.currentPeriod()) + 1n;
    await mineTo((await net.read.maguRegistry.read.periodStart([period])) + 1n);
    await waitProven(net, maguId, healer.address, period, PROOF_WAIT_MS, healer);
    // Logged before the proof was sent; the line still has to cross the agent's stderr pipe.
    const repaired = await waitFor("the healer's repair report", 30_000, async () => {
      const lines = logLines(healer.stderr(), "repair complete").filter((l) => l.magu === maguId.toString());
      return lines.length > 0 ? lines : undefined;
    }, 100);
    assert.equal(repaired.reduce((n, l) => n + (l.repaired as number), 0), deleted);
    // And the files still come back (every shard of node-4 now comes from the rebuilt copies).
    const out = join(net.dir, "out-b-2.bin");
    ok(await muri(["get", files.b.manifestCid!, "--magu", maguId.toString(), "-o", out, "--json"]), "get b after repair");
    assert.equal(await sha256File(out), files.b.sha256);
    console.log(`# self-repair of ${deleted} shards across both files, proof of period ${period}: ${Math.round(performance.now() - t0)} ms`);
  });

  test("refusals are one line, exit 1, and commit nothing", async () => {
    const t0 = performance.now();
    const other = signer(net.chain.rpcUrl, net.deployment, net.chain.keys[OTHER_KEY]!);
    const client = signer(net.chain.rpcUrl, net.deployment, net.chain.keys[CLIENT_KEY]!);
    const request = async (who: typeof client, params: { kind: number; metric: number; dimension: number; replication: number; dataShards: number; parityShards: number }): Promise<bigint> => {
      const c = getMuriContracts(net.deployment.contracts, who);
      const escrow = 10n * E18 + (await c.maguRegistry.read.config()).formationDeposit; // and the deposit
      const wait = async (hash: Promise<Hex>) => {
        const r = await who.publicClient.waitForTransactionReceipt({ hash: await hash, pollingInterval: 50 });
        assert.equal(r.status, "success");
      };
      await wait(c.token.write.approve([net.deployment.contracts.maguRegistry, escrow]));
      await wait(c.maguRegistry.write.createMagu([{ ...params, members: MEMBERS, maxFragments: 10, durationPeriods: 10n, pricePerFragmentPeriod: 10n ** 15n }]));
      return net.read.maguRegistry.read.maguCount();
    };
    const vector = await request(client, { kind: 1, metric: 1, dimension: 8, replication: 2, dataShards: 0, parityShards: 0 });
    const unformed = await request(client, { kind: 0, metric: 0, dimension: 0, replication: 0, dataShards: K, parityShards: M });
    const before = await chainData(maguId);
    const count = await net.read.maguRegistry.read.maguCount();

    const cases: Array<{ what: string; args: string[]; key?: number; dir?: string; message: RegExp }> = [
      { what: "unknown id", args: ["--magu", String(count + 5n)], message: new RegExp(`^muri: no Magu ${count + 5n}: ids run from 1 to ${count}\\n$`) },
      { what: "another account's Magu", args: ["--magu", maguId.toString()], key: OTHER_KEY, dir: join(net.dir, "other-client"), message: new RegExp(`^muri: Magu ${maguId} belongs to 0x[0-9a-fA-F]{40}, not to ${other.account.address}: only its owner can put files into it\\n$`) },
      { what: "vector Magu", args: ["--magu", vector.toString()], message: new RegExp(`^muri: Magu ${vector} is a vector Magu: files go into blob Magus .*\\n$`) },
      { what: "Magu not formed", args: ["--magu", unformed.toString()], message: new RegExp(`^muri: Magu ${unformed} is requested, not active: .*\\n$`) },
      { what: "not enough paid fragments", args: ["--magu", maguId.toString()], message: new RegExp(`^muri: Magu ${maguId} has 5 of its ${PAID} paid fragments left; this file needs 10 .*\\n$`) },
    ];
    for (const c of cases) {
      const run = await muri(["put", files.a.path, ...c.args], c.key, c.dir);
      assert.equal(run.code, 1, `${c.what}: exit code (stderr ${run.stderr})`);
      assert.match(run.stderr, c.message, c.what);
      assert.equal(run.stdout, "", c.what);
    }
    // Options a Magu fixes are a usage error beside --magu.
    const usage = await muri(["put", files.a.path, "--magu", maguId.toString(), "--data-shards", "4"]);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^muri: --data-shards: Magu \d+ fixes it; .*\n$/);

    assert.deepEqual(await chainData(maguId), before, "the Magu's data is unchanged");
    for (const id of [vector, unformed]) assert.equal((await chainData(id)).fragmentCount, 0);
    console.log(`# ${cases.length + 1} refusals: ${Math.round(performance.now() - t0)} ms`);
  });
});
