/**
 * The real `muri` command (bin/muri.js, spawned) against a real hardhat node with the local
 * deployment: help, stake, status, magu create/status, and every failure as one line on stderr.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { rm, symlink, writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { generatePrivateKey, privateKeyToAddress } from "viem/accounts";
import type { Hex } from "viem";
import { Registry } from "prom-client";
import { createChainClients, createEventFollower, getMuriContracts, nodeRegistryAbi, type Deployment } from "../../../agents/chain/index.js";
import { registerFollowerMetrics, startMetricsServer } from "../../../agents/roles/shared/metrics-server.js";
import { openMetaDb } from "../../../agents/store/meta-db.js";
import {
  E18,
  cleanup,
  deployLocal,
  freePort,
  fund,
  signer,
  startFreshHardhatNode,
  tempDir,
  type HardhatChain,
} from "../chain/harness.js";
import { MURI_BIN, ROOT, muri, type CliRun } from "./run-muri.js";
import { diskSpace } from "../../../agents/store/index.js";


type ReadyNode = { capacity: number; address: string; dashboardUrl?: string };

/**
 * Runs `muri ...args --json` until it reports ready, runs `whileUp` with its ready status, then
 * stops it (SIGTERM); returns the ready status.
 */
async function nodeUntilReady(args: string[], whileUp?: (ready: ReadyNode) => Promise<void>): Promise<ReadyNode> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MURI_")));
  const child = spawn(process.execPath, [MURI_BIN, ...args, "--json"], { cwd: ROOT, env: clean, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  try {
    for await (const line of createInterface({ input: child.stdout })) {
      const event = JSON.parse(line) as ReadyNode & { event?: string };
      if (event.event !== "ready") continue;
      await whileUp?.(event);
      return event;
    }
    throw new Error(`muri ${args.join(" ")} exited before it was ready (${await exited}):\n${stderr}`);
  } finally {
    child.kill("SIGTERM");
    assert.equal(await exited, 0, `muri node did not stop cleanly:\n${stderr}`);
  }
}

/** Mines `blocks` blocks on the hardhat node. */
async function mine(rpcUrl: string, blocks: bigint): Promise<void> {
  const res = await fetch(rpcUrl, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "hardhat_mine", params: ["0x" + blocks.toString(16)] }),
  });
  assert.equal(res.status, 200);
  assert.equal(((await res.json()) as { error?: unknown }).error, undefined, "hardhat_mine failed");
}

/** Exactly one line on stderr, no stack trace; returns it. */
function oneLine(r: CliRun): string {
  const lines = r.stderr.split("\n").filter((l) => l.length > 0);
  assert.equal(lines.length, 1, `expected one stderr line, got:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |Error:|node:internal/, `stack trace on stderr:\n${r.stderr}`);
  return lines[0]!;
}

function ok(r: CliRun, what: string): void {
  assert.equal(r.code, 0, `${what} exited ${r.code}:\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
}

describe("muri (bin/muri.js)", () => {
  after(cleanup);

  it("--help lists the commands and each command has its own help", async () => {
    const top = await muri(["--help"]);
    ok(top, "muri --help");
    for (const c of ["status", "stake", "unstake", "withdraw", "magu create", "magu status", "claim"]) {
      assert.match(top.stdout, new RegExp(`^  ${c} `, "m"), `muri --help lists ${c}`);
    }
    assert.equal(top.stderr, "");
    const stake = await muri(["stake", "--help"]);
    ok(stake, "muri stake --help");
    assert.match(stake.stdout, /--amount MURI/);
    assert.match(stake.stdout, /--devnet DIR/);
    const create = await muri(["magu", "create", "--help"]);
    ok(create, "muri magu create --help");
    assert.match(create.stdout, /--kind blob\|vector/);
    assert.match(create.stdout, /--metric l2\|ip\|cosine\|hamming/);
  });

  it("usage errors exit 2 with one line naming the argument", async () => {
    const tree = await tempDir("muri-cli-put-");
    const key = ["--key", "0x" + "11".repeat(32)];
    // [args, the one stderr line]. Each is refused before any key, chain or process is needed, so
    // they run a few at a time.
    const cases: Array<[string[], RegExp]> = [
      [["frobnicate"], /unknown command "frobnicate"/],
      [["status", "--colour"], /--colour/],
      [["status", "--devnet", "/nonexistent/muri-devnet"], /--devnet: .*nonexistent\/muri-devnet is not a directory/],
      // An Object.prototype name is no metric either.
      ...["cos", "constructor"].map((name): [string[], RegExp] => [["magu", "create", "--kind", "vector", "--dim", "8", "--metric", name], new RegExp(`--metric: "${name}" is not a metric: use l2, ip, cosine, hamming`)]),
      // put DIR / --compress.
      [["put", tree, "--compress=foo"], /--compress: "foo" is not one of auto, zstd, gzip, none/],
      [["put", join(tree, "nope")], /FILE\|DIR: .*nope does not exist or cannot be read \(ENOENT\)/],
      [["put", tree, "--resume"], /--resume: .*a directory's put is not resumable/],
      [["get", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "-o", tree, "--path", "/etc/passwd"], /--path: "\/etc\/passwd" must be a path inside the directory/],
      // --http PORT (the dashboard): a port.
      ...[["devnet"], ["node", "--dir", tree, ...key], ["validator", "--dir", tree, ...key]].map((command): [string[], RegExp] => [[...command, "--http", "70000"], /--http: must be at most 65535, got 70000/]),
      // --metrics-port N: a port too, 0 for a free one (as the help says; it was refused as below 1):
      // with 0 the next option's error shows.
      ...[["node", "--dir", tree, ...key], ["validator", "--dir", tree, ...key]].flatMap((command): Array<[string[], RegExp]> => [
        [[...command, "--metrics-port", "70000"], /--metrics-port: must be at most 65535, got 70000/],
        [[...command, "--metrics-port", "0", "--http", "70000"], /--http: must be at most 65535/],
      ]),
    ];
    const runs: CliRun[] = [];
    for (let i = 0; i < cases.length; i += 4) runs.push(...(await Promise.all(cases.slice(i, i + 4).map(([args]) => muri(args)))));
    cases.forEach(([args, pattern], i) => {
      assert.equal(runs[i]!.code, 2, `muri ${args.join(" ")}: ${runs[i]!.stderr}`);
      assert.match(oneLine(runs[i]!), pattern, `muri ${args.join(" ")}`);
    });
  });

  describe("against a hardhat chain", () => {
    let chain: HardhatChain;
    let deployment: Deployment;
    let devnet: string;
    let nodeKeys: Hex[];

    before(async () => {
      chain = await startFreshHardhatNode();
      deployment = await deployLocal(chain.rpcUrl);
      devnet = await tempDir("muri-cli-devnet-");
      // devnet.json: the deployment file plus the client's key (account #0 holds the MURI supply).
      await writeFile(
        join(devnet, "devnet.json"),
        JSON.stringify({ ...deployment, deployBlock: Number(deployment.deployBlock), clientKey: chain.keys[0] })
      );
      nodeKeys = [chain.keys[1]!, chain.keys[2]!];
      for (const key of nodeKeys)
        await fund(chain.rpcUrl, deployment, chain.keys[0]!, privateKeyToAddress(key), 2_000n * E18);
    });

    it("stake registers nodes, adds stake, and status shows them", async () => {
      for (const key of nodeKeys) {
        const r = await muri([
          "stake",
          "--devnet",
          devnet,
          "--key",
          key,
          "--amount",
          "1500",
          "--capacity",
          "10GiB",
          "--json",
        ]);
        ok(r, "muri stake");
        const out = JSON.parse(r.stdout);
        assert.equal(out.action, "registered");
        assert.equal(out.stake, (1_500n * E18).toString());
        assert.equal(out.capacity, String(10n * 1024n ** 3n));
      }
      const more = await muri(["stake", "--devnet", devnet, "--key", nodeKeys[0]!, "--amount", "0.5", "--json"]);
      ok(more, "muri stake (add)");
      assert.equal(JSON.parse(more.stdout).action, "added");
      assert.equal(JSON.parse(more.stdout).stake, (1_500n * E18 + E18 / 2n).toString());

      const status = await muri(["status", "--devnet", devnet, "--json"]);
      ok(status, "muri status --json");
      const s = JSON.parse(status.stdout);
      assert.equal(s.nodeCount, "2");
      const addresses = s.nodes.map((n: { address: string }) => n.address.toLowerCase());
      for (const key of nodeKeys) assert.ok(addresses.includes(privateKeyToAddress(key).toLowerCase()));
      assert.deepEqual(s.nodes[0].roles, ["node"]);
      assert.equal(typeof s.period, "string");

      const human = await muri(["status", "--devnet", devnet]);
      ok(human, "muri status");
      assert.match(human.stdout, new RegExp(privateKeyToAddress(nodeKeys[1]!)));
      assert.match(human.stdout, /stake 1500 locked 0/);
      // Just registered: the weight is queued (two selection epochs), reputation 0 weighs the stake.
      const node1 = s.nodes.find((n: { address: string }) => n.address.toLowerCase() === privateKeyToAddress(nodeKeys[1]!).toLowerCase());
      assert.deepEqual(node1.selectionWeight, { effective: "0", queued: (1_500n * E18).toString() });
      assert.equal(node1.rewardFactor, 1, "reputation 0: its full share of the emission");
      assert.match(human.stdout, /rep 0 weight 0 \(-> 1500\) reward x1 capacity/);
    });

    it("status --metrics shows each agent follower's health, and an agent it cannot reach", async () => {
      // A real event follower on this chain, served on /metrics as an agent serves it.
      const db = await openMetaDb(await tempDir("muri-cli-follower-"));
      const { publicClient } = createChainClients({ rpcUrl: chain.rpcUrl, chainId: deployment.chainId, retryCount: 0 });
      const follower = createEventFollower(
        { id: "cli", contracts: [{ address: deployment.contracts.nodeRegistry, abi: nodeRegistryAbi }], fromBlock: deployment.deployBlock, pollMs: 50 },
        { publicClient, metaDb: db },
      );
      const registry = new Registry();
      registerFollowerMetrics(registry, { "node-agent": () => follower.status() });
      const server = await startMetricsServer({ port: 0 }, { registry });
      const dead = `http://127.0.0.1:${await freePort()}/metrics`;
      try {
        await follower.start();
        await follower.waitForBlock(await publicClient.getBlockNumber({ cacheTime: 0 }), { signal: AbortSignal.timeout(30_000) });
        const json = await muri(["status", "--devnet", devnet, "--metrics", server.url, "--json"]);
        ok(json, "muri status --metrics --json");
        const agents = JSON.parse(json.stdout).agents as Array<{ url: string; followers: Array<{ follower: string; healthy: boolean; state: string; reorgs: number }> }>;
        assert.equal(agents.length, 1);
        assert.deepEqual(
          agents[0]!.followers.map((f) => [f.follower, f.healthy, f.state, f.reorgs]),
          [["node-agent", true, "following", 0]],
        );
        const human = await muri(["status", "--devnet", devnet, "--metrics", server.url, "--metrics", dead]);
        ok(human, "muri status --metrics (one unreachable)");
        assert.match(human.stdout, /node-agent: healthy following, cursor \d+, head \d+, lag 0 blocks, 0 reorganisations/);
        assert.match(human.stdout, new RegExp(`${dead.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: UNREACHABLE`));
        const bad = await muri(["status", "--devnet", devnet, "--metrics", "not a url"]);
        assert.equal(bad.code, 2);
        assert.match(oneLine(bad), /--metrics: not a url is not a URL/);
      } finally {
        await follower.stop();
        await server.close();
        await db.close();
      }
    });

    it("magu create forms a Magu and magu status shows its members", async () => {
      const created = await muri([
        "magu",
        "create",
        "--devnet",
        devnet,
        "--kind",
        "blob",
        "--data-shards",
        "1",
        "--parity-shards",
        "1",
        "--fragments",
        "2",
        "--periods",
        "3",
        "--price",
        "1",
        "--json",
      ]);
      ok(created, "muri magu create");
      const c = JSON.parse(created.stdout);
      assert.equal(c.status, "active");
      assert.equal(c.members.length, 2);
      assert.equal(c.escrow, (6n * E18).toString());

      const status = await muri(["magu", "status", String(c.id), "--devnet", devnet, "--json"]);
      ok(status, "muri magu status --json");
      const m = JSON.parse(status.stdout);
      assert.equal(m.status, "active");
      assert.equal(m.kind, "blob");
      const nodes = nodeKeys.map((k) => privateKeyToAddress(k).toLowerCase()).sort();
      assert.deepEqual(m.members.map((x: { address: string }) => x.address.toLowerCase()).sort(), nodes);
      assert.ok(m.members.every((x: { active: boolean }) => x.active));

      const all = JSON.parse((await muri(["status", "--devnet", devnet, "--json"])).stdout);
      assert.equal(all.magus[0].id, String(c.id));
      assert.equal(all.nodes[0].locked, (100n * E18).toString());
    });

    it("unstake, withdraw after the unbonding period, claim", async () => {
      const key = nodeKeys[1]!;
      const unstake = await muri(["unstake", "--devnet", devnet, "--key", key, "--amount", "200", "--json"]);
      ok(unstake, "muri unstake");
      const u = JSON.parse(unstake.stdout);
      assert.equal(u.unbonding, (200n * E18).toString());

      const early = await muri(["withdraw", "--devnet", devnet, "--key", key]);
      assert.equal(early.code, 1);
      assert.match(oneLine(early), new RegExp(`200 MURI of 0x[0-9a-fA-F]{40} unbonds at block ${u.releaseBlock}`));

      await mine(chain.rpcUrl, 0x20n);
      const withdraw = await muri(["withdraw", "--devnet", devnet, "--key", key, "--json"]);
      ok(withdraw, "muri withdraw");
      assert.equal(JSON.parse(withdraw.stdout).amount, (200n * E18).toString());

      // Something to claim, for certain: a validator weighs this node in the current epoch,
      // the epoch ends (mined) and is finalised, so Rewards credits the node.
      const validatorKey = chain.keys[3]!;
      await fund(chain.rpcUrl, deployment, chain.keys[0]!, privateKeyToAddress(validatorKey), 1_000n * E18);
      ok(
        await muri(["stake", "--devnet", devnet, "--key", validatorKey, "--amount", "1000", "--roles", "validator"]),
        "muri stake --roles validator"
      );
      const v = signer(chain.rpcUrl, deployment, validatorKey);
      const vc = getMuriContracts(deployment.contracts, v);
      const node = privateKeyToAddress(key);
      const epoch = await vc.rewards.read.currentEpoch();
      await v.publicClient.waitForTransactionReceipt({
        hash: await vc.rewards.write.submitWeights([epoch, [node], [1n]]),
        pollingInterval: 50,
      });
      const { genesisBlock, epochBlocks } = await vc.rewards.read.config();
      const epochEnd = genesisBlock + (epoch + 1n) * epochBlocks;
      const now = await v.publicClient.getBlockNumber();
      if (now < epochEnd) await mine(chain.rpcUrl, epochEnd - now);
      assert.ok((await vc.rewards.read.currentEpoch()) > epoch, "the weighed epoch is over");
      const finalized = await v.publicClient.waitForTransactionReceipt({
        hash: await vc.rewards.write.finalizeEpoch([epoch]),
        pollingInterval: 50,
      });
      assert.equal(finalized.status, "success");

      const rewardsOwed = await vc.rewards.read.claimable([node]);
      const paymentsOwed = await vc.maguRegistry.read.claimable([node]);
      assert.ok(rewardsOwed > 0n, "the finalised epoch credited the node");
      const before = await vc.token.read.balanceOf([node]);

      const claim = await muri(["claim", "--devnet", devnet, "--key", key, "--json"]);
      ok(claim, "muri claim");
      const c = JSON.parse(claim.stdout);
      assert.equal(c.rewards, rewardsOwed.toString());
      assert.equal(c.payments, paymentsOwed.toString());
      assert.equal(c.total, (rewardsOwed + paymentsOwed).toString());
      assert.equal(await vc.rewards.read.claimable([node]), 0n, "Rewards owes the node nothing more");
      assert.equal(await vc.maguRegistry.read.claimable([node]), 0n, "MaguRegistry owes the node nothing more");
      assert.equal(await vc.token.read.balanceOf([node]), before + rewardsOwed + paymentsOwed, "paid exactly what was owed");

      // Claimed once: a second claim finds nothing and moves nothing.
      const again = await muri(["claim", "--devnet", devnet, "--key", key]);
      ok(again, "muri claim (again)");
      assert.equal(again.stdout.trim(), `nothing to claim for ${node}`);
      assert.equal(await vc.token.read.balanceOf([node]), before + rewardsOwed + paymentsOwed);
    });

    it("magu create --kind vector --dim 48 --metric l2: every other option has a default, printed with its cost", async () => {
      const created = await muri(["magu", "create", "--devnet", devnet, "--kind", "vector", "--dim", "48", "--metric", "l2", "--json"]);
      ok(created, "muri magu create --kind vector --dim 48 --metric l2");
      const c = JSON.parse(created.stdout);
      assert.equal(c.status, "active");
      assert.deepEqual(c.defaulted, ["--fragments", "--periods", "--price"]);
      assert.deepEqual(c.params, { members: 1, maxFragments: 64, durationPeriods: "100", pricePerFragmentPeriod: String(10n ** 12n), replication: 1, dimension: 48, metric: "l2" });
      assert.equal(c.escrow, String(10n ** 12n * 64n * 100n));
      const text = await muri(["magu", "create", "--devnet", devnet, "--kind", "blob", "--periods", "3"]);
      ok(text, "muri magu create --kind blob --periods 3");
      assert.match(text.stdout, /defaults used: --fragments 8 --price 0\.000001 \(escrow = price x 8 fragment copies x periods\)/);
    });

    it("magu fire: the owner replaces a member, which keeps its stake; nobody else may", async () => {
      // The earlier tests locked and unstaked some of the two nodes' stake: room for one more Magu.
      for (const key of nodeKeys) ok(await muri(["stake", "--devnet", devnet, "--key", key, "--amount", "400"]), "muri stake (add)");
      const created = await muri(["magu", "create", "--devnet", devnet, "--kind", "blob", "--periods", "3", "--json"]);
      ok(created, "muri magu create");
      const c = JSON.parse(created.stdout) as { id: string; members: string[] };
      const member = c.members[1]!;
      const stakeBefore = JSON.parse((await muri(["status", "--devnet", devnet, "--json"])).stdout).nodes.find((n: { address: string }) => n.address === member).stake;
      const stranger = await muri(["magu", "fire", c.id, member, "--devnet", devnet, "--key", nodeKeys[0]!]);
      assert.equal(stranger.code, 1);
      assert.match(oneLine(stranger), /only its owner may fire a member/);
      const notMember = await muri(["magu", "fire", c.id, privateKeyToAddress(chain.keys[5]!), "--devnet", devnet]);
      assert.equal(notMember.code, 1);
      assert.match(oneLine(notMember), /is not an active member of Magu/);

      const fired = await muri(["magu", "fire", c.id, member, "--devnet", devnet, "--json"]);
      ok(fired, "muri magu fire");
      const f = JSON.parse(fired.stdout);
      assert.equal(f.member, member);
      assert.equal(f.slot, 1);
      const status = JSON.parse((await muri(["magu", "status", c.id, "--devnet", devnet, "--json"])).stdout);
      assert.equal(status.members.find((m: { address: string }) => m.address === member)?.active ?? false, false, "no longer an active member");
      const after = JSON.parse((await muri(["status", "--devnet", devnet, "--json"])).stdout).nodes.find((n: { address: string }) => n.address === member);
      assert.equal(after.stake, stakeBefore, "not slashed");
    });

    it("muri node --capacity: a share of its disk registered and kept in step; more than the disk, or less than its Magus hold, refused; magu create --dry-run shows the share each member needs", async () => {
      const key = chain.keys[4]!;
      const address = privateKeyToAddress(key);
      await fund(chain.rpcUrl, deployment, chain.keys[0]!, address, 2_000n * E18);
      const dir = await tempDir("muri-cli-node-");
      const node = ["node", "--devnet", devnet, "--key", key, "--dir", dir];
      const clients = signer(chain.rpcUrl, deployment, key);
      const reader = getMuriContracts(deployment.contracts, clients);
      const muriLine = (r: CliRun): string => r.stderr.split("\n").find((l) => l.startsWith("muri: ")) ?? `no muri: line in\n${r.stderr}`;

      // More than the disk can hold: refused at start with the numbers, nothing registered.
      const huge = await muri([...node, "--capacity", "8000TiB"]);
      assert.equal(huge.code, 2, huge.stderr);
      assert.match(muriLine(huge), new RegExp(`^muri: --capacity 7\\.8 PiB does not fit: the filesystem of ${dir} has [\\d.]+ [KMGT]iB free and the node stores 0 B there, so it can hold at most [\\d.]+ [KMGT]iB: give a smaller size or a share of the disk \\(e\\.g\\. 50%\\)$`));
      assert.equal((await reader.nodeRegistry.read.nodeInfo([address])).registered, false);

      // Half the disk: what statfs says the disk has, registered on chain.
      const half = await nodeUntilReady([...node, "--capacity", "50%"]);
      const free = (await diskSpace(dir)).freeBytes;
      assert.equal((await reader.nodeRegistry.read.nodeInfo([address])).capacity, BigInt(half.capacity));
      assert.equal(half.capacity % (1 << 20), 0, "whole MiB");
      assert.ok(Math.abs(half.capacity - free / 2) < 64 * (1 << 20), `50% of ${free} free is about ${free / 2}, registered ${half.capacity}`);
      // Restarted with a size: the registration follows. With --http 0 it serves the dashboard and
      // the light client's page, live: the dashboard's data names this node, up, at its new size.
      const small = await nodeUntilReady([...node, "--capacity", "3MiB", "--http", "0"], async (ready) => {
        assert.match(ready.dashboardUrl ?? "", /^http:\/\/127\.0\.0\.1:\d+\/$/);
        const page = await fetch(ready.dashboardUrl!);
        assert.equal(page.status, 200);
        assert.match(page.headers.get("content-type") ?? "", /^text\/html/);
        const snapshot = (await (await fetch(`${ready.dashboardUrl}api/dashboard.json`)).json()) as { chainId: number; nodes: { address: string; health: string; capacity: string }[] };
        assert.equal(snapshot.chainId, deployment.chainId);
        const me = snapshot.nodes.find((n) => n.address.toLowerCase() === address.toLowerCase());
        assert.deepEqual([me?.health, me?.capacity], ["up", String(3 << 20)], JSON.stringify(me));
        const light = (await (await fetch(`${ready.dashboardUrl}api/light.json`)).json()) as { chainId: number; contracts: { maguRegistry: string } };
        assert.deepEqual([light.chainId, light.contracts.maguRegistry], [deployment.chainId, deployment.contracts.maguRegistry]);
        assert.equal((await fetch(`${ready.dashboardUrl}light`)).status, 200);
      });
      assert.equal(small.capacity, 3 << 20);
      assert.equal((await reader.nodeRegistry.read.nodeInfo([address])).capacity, 3n << 20n);

      // BitDust's supplier quota, nothing sent: 5 MiB at K 1 + M 1 over 2 members needs 5 MiB each,
      // and the registry reserves 6 MiB (12 fragments / 2): this node's 3 MiB cannot be drafted; for
      // 1 MiB of data (2 MiB reserved) it can.
      const before = await clients.publicClient.getBlockNumber({ cacheTime: 0 });
      const dry = async (size: string) => {
        const r = await muri(["magu", "create", "--devnet", devnet, "--kind", "blob", "--data-shards", "1", "--parity-shards", "1", "--members", "2", "--size", size, "--periods", "10", "--price", "0.001", "--dry-run", "--json"]);
        ok(r, `muri magu create --dry-run --size ${size}`);
        return JSON.parse(r.stdout);
      };
      const big = await dry("5MiB");
      assert.equal(big.maxFragments, 12);
      assert.equal(big.perMemberBytes, 5 << 20);
      assert.equal(big.reservedPerMemberBytes, String(6 << 20));
      assert.equal(big.escrow, (12n * 10n * E18 / 1000n).toString());
      const { formationDeposit } = await reader.maguRegistry.read.config();
      assert.equal(big.total, (12n * 10n * E18 / 1000n + formationDeposit).toString());
      const little = await dry("1MiB");
      assert.equal(little.reservedPerMemberBytes, String(2 << 20));
      assert.equal(little.eligibleNodes, big.eligibleNodes + 1, "only the capacity differs, and only this node's is between 2 and 6 MiB");
      const text = await muri(["magu", "create", "--devnet", devnet, "--kind", "blob", "--data-shards", "1", "--parity-shards", "1", "--members", "2", "--size", "5MiB", "--dry-run"]);
      ok(text, "muri magu create --dry-run (text)");
      assert.match(text.stdout, /each member needs 5 MiB \(data x \(K\+M\)\/K \/ members = 5 MiB x 2\/1 \/ 2\); the registry reserves 6 MiB of its capacity/);
      assert.equal(await clients.publicClient.getBlockNumber({ cacheTime: 0 }), before, "a dry run sends no transaction");

      // A member's capacity never goes below what its Magus hold: refused, the registration kept.
      const member = privateKeyToAddress(nodeKeys[0]!);
      const held = await reader.nodeRegistry.read.nodeInfo([member]);
      assert.ok(held.usedCapacity >= 2n << 20n, `the earlier Magus hold ${held.usedCapacity} bytes of it`);
      const below = await muri(["node", "--devnet", devnet, "--key", nodeKeys[0]!, "--dir", await tempDir("muri-cli-node-"), "--capacity", "1MiB"]);
      assert.equal(below.code, 2, below.stderr);
      assert.match(muriLine(below), new RegExp(`^muri: --capacity 1 MiB = 1 MiB is below the [\\d.]+ MiB this node's Magu memberships hold on chain \\(usedCapacity ${held.usedCapacity} bytes\\): give at least that much$`));
      assert.equal((await reader.nodeRegistry.read.nodeInfo([member])).capacity, held.capacity);
    });

    it("put DIR refuses a tree it cannot store (a FIFO, a symlink leaving it) before anything is paid", async () => {
      const { publicClient } = createChainClients({ rpcUrl: chain.rpcUrl, chainId: deployment.chainId });
      const read = getMuriContracts(deployment.contracts, { publicClient });
      const before = await read.maguRegistry.read.maguCount();
      const tree = await tempDir("muri-cli-tree-");
      await writeFile(join(tree, "a.txt"), "a");
      execFileSync("mkfifo", [join(tree, "pipe")]);
      const clientDir = await tempDir("muri-cli-client-");
      const fifo = await muri(["put", tree, "--devnet", devnet, "--client-dir", clientDir]);
      assert.equal(fifo.code, 2);
      assert.match(oneLine(fifo), /DIR: .*pipe is a FIFO: only regular files, directories and symlinks inside the tree can be stored/);
      await rm(join(tree, "pipe"));
      await symlink("/etc/passwd", join(tree, "passwd"));
      const link = await muri(["put", tree, "--devnet", devnet, "--client-dir", clientDir]);
      assert.equal(link.code, 2);
      assert.match(oneLine(link), /DIR: .*passwd is a symlink to \/etc\/passwd, outside/);
      assert.equal(await read.maguRegistry.read.maguCount(), before, "no Magu was created");
    });

    it("bad input and chain failures: one line on stderr, meaningful exit code", async () => {
      const missing = await muri(["stake", "--devnet", devnet]);
      assert.equal(missing.code, 2);
      assert.match(oneLine(missing), /--amount is required/);

      const invalid = await muri(["stake", "--devnet", devnet, "--amount", "1e3"]);
      assert.equal(invalid.code, 2);
      assert.match(oneLine(invalid), /--amount: "1e3" is not an amount of MURI/);

      const kind = await muri([
        "magu",
        "create",
        "--devnet",
        devnet,
        "--kind",
        "tree",
        "--fragments",
        "2",
        "--periods",
        "1",
        "--price",
        "1",
      ]);
      assert.equal(kind.code, 2);
      assert.match(oneLine(kind), /--kind: "tree"/);

      const badKey = await muri(["stake", "--devnet", devnet, "--amount", "1", "--key", "0x1234"]);
      assert.equal(badKey.code, 2);
      assert.match(oneLine(badKey), /--key: not a private key/);

      const downUrl = `http://127.0.0.1:${await freePort()}`;
      const down = await muri(["status", "--devnet", devnet, "--rpc", downUrl]);
      assert.equal(down.code, 1);
      assert.match(oneLine(down), new RegExp(`RPC ${downUrl.replace(/[.]/g, "\\.")} is not reachable`));

      const unknownMagu = await muri(["magu", "status", "999", "--devnet", devnet]);
      assert.equal(unknownMagu.code, 1);
      assert.match(oneLine(unknownMagu), /no Magu 999 \(MaguUnknown\)/);

      const pauper = generatePrivateKey();
      const noMuri = await muri(["stake", "--devnet", devnet, "--amount", "1000", "--key", pauper]);
      assert.equal(noMuri.code, 1);
      assert.match(oneLine(noMuri), /holds 0 MURI, registering needs 1000/);

      // MURI but no ETH for gas: the chain layer's description of the failed transaction.
      await fund(chain.rpcUrl, deployment, chain.keys[0]!, privateKeyToAddress(pauper), 1_000n * E18);
      const noGas = await muri(["stake", "--devnet", devnet, "--amount", "1000", "--key", pauper, "--json"]);
      assert.equal(noGas.code, 1);
      assert.match(oneLine(noGas), /has no funds for gas.*fund it with ETH first/);
      assert.equal(JSON.parse(noGas.stdout).error.code, "ERR_INSUFFICIENT_FUNDS");

      const env = await muri(["status"], { MURI_DEPLOYMENT_FILE: join(devnet, "missing.json") });
      assert.equal(env.code, 2);
      assert.match(oneLine(env), /MURI_DEPLOYMENT_FILE: .*missing\.json does not exist/);
    });
  });
});
