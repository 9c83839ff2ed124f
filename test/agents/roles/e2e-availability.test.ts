/**
 * Deliver, acknowledge, commit with a member down (docs/ARCHITECTURE.md, "Deliver, acknowledge,
 * commit"): five node processes, one of them stopped with SIGSTOP before a 20 MiB put (k=3, m=2).
 * The put succeeds on the four acknowledgements it gets and names the missing member; the file
 * comes back identical; the four live members prove three periods in a row. The stopped member,
 * resumed, sees the commit, fetches the batch's index document from the others, rebuilds its shards
 * and proves once its grace ends, and was never charged meanwhile. A validator started after the
 * upload (nobody pushes it anything) finds the Magu through `DataCommitted` while every member is
 * stopped, keeps owing the fetch across its own restart, then fetches the documents by the CID the
 * event names and audits it. The chain moves only when the test mines, so no step
 * depends on how fast a process runs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getAddress, type Address } from "viem";
import { type PutResult, type StorageClient } from "../../../agents/roles/client/client.js";
import { logLines, randomFile, sha256File, startClient, startNetwork, tearDown, waitFor, waitProven, type Network, type NodeProcess, type ValidatorProcess } from "./e2e-helpers.js";

const NODES = 5;
const FILE_BYTES = 20 * 1024 * 1024;
const K = 3;
const M = 2;

describe("e2e: a put while one member is stopped", { timeout: 600_000 }, () => {
  let net: Network;
  let client: StorageClient;
  let nodes: NodeProcess[];
  let dir: string;
  let input: string;
  let inputHash: string;
  let stored: PutResult;
  let victim: NodeProcess;
  let stakeBefore: bigint;
  let validator: ValidatorProcess | undefined;

  before(async () => {
    net = await startNetwork({ prefix: "muri-e2e-avail-", nodes: NODES, fund: [NODES + 1, NODES + 2] });
    ({ nodes, dir } = net);
    client = await startClient(net, NODES + 1);
    ({ path: input, sha256: inputHash } = await randomFile(dir, "input.bin", FILE_BYTES));
    victim = nodes[NODES - 1]!;
  });

  after(async () => {
    if (victim?.alive()) process.kill(-victim.pid, "SIGCONT");
    await tearDown("node", [...(nodes ?? []), validator], client);
  });

  test("the put succeeds with one member stopped and names it", async () => {
    stakeBefore = await net.read.nodeRegistry.read.stakeOf([victim.address]);
    process.kill(-victim.pid, "SIGSTOP");
    const t0 = performance.now();
    stored = await client.put(input, { k: K, m: M, members: NODES });
    console.log(`# put 20 MiB with a member stopped: ${Math.round(performance.now() - t0)} ms, ${stored.shards} shards`);
    assert.deepEqual(
      stored.missing.map((m) => getAddress(m.address)),
      [getAddress(victim.address)],
      `only the stopped member is missing: ${JSON.stringify(stored.missing)}`,
    );
    const info = await net.read.maguRegistry.read.maguInfo([stored.maguId]);
    assert.equal(info.fragmentCount, stored.shards);
    const [event] = await net.read.maguRegistry.getEvents.DataCommitted({ magu: stored.maguId }, { fromBlock: net.deployment.deployBlock });
    const slot = info.members.findIndex((a) => getAddress(a) === getAddress(victim.address));
    assert.equal((event!.args.ackers! >> BigInt(slot)) & 1n, 0n, "the stopped member's slot did not acknowledge");
    assert.equal(event!.args.ackers!, (1n << BigInt(NODES)) - 1n - (1n << BigInt(slot)), "every other slot did");
  });

  test("get returns the same bytes while it is still stopped", async () => {
    const out = join(dir, "out.bin");
    await client.get(stored, out);
    assert.equal(await sha256File(out), inputHash);
  });

  test("a validator started after the upload finds the Magu by its commit, keeps trying while nobody serves, across a restart, and audits it", async () => {
    // Nobody can serve at first: the four live members are stopped too.
    const live = nodes.filter((n) => n !== victim);
    for (const n of live) process.kill(-n.pid, "SIGSTOP");
    const validatorLog = (): string => validator?.stderr().slice(-6000) ?? "";
    const failWithLog = (err: unknown): never => {
      throw new Error(`${(err as Error).message}; the validator's log ends:\n${validatorLog()}`);
    };
    try {
      validator = await net.startValidator(NODES + 2, ["--audit-ms", "300", "--metrics-port", "0"]);
      await waitFor("the late validator to find the Magu's commit and fail its first fetch", 120_000, async () =>
        logLines(validator!.stderr(), "magu documents not fetched; trying again").some((l) => l.magu === stored.maguId.toString()),
      ).catch(failWithLog);
    } finally {
      for (const n of live) process.kill(-n.pid, "SIGCONT");
    }
    // Restarted in the same directory: its follower resumes past the commit, so only the fetch it
    // kept owing brings the documents.
    await validator.kill("SIGTERM");
    const [commit] = await net.read.maguRegistry.getEvents.DataCommitted({ magu: stored.maguId }, { fromBlock: net.deployment.deployBlock });
    validator = await net.startValidator(NODES + 2, ["--audit-ms", "300", "--metrics-port", "0"]);
    assert.ok(validator.metricsUrl, "the validator serves /metrics");
    let fetched = false;
    await waitFor("the restarted validator to fetch the Magu's documents and pass an audit", 120_000, async () => {
      fetched ||= logLines(validator!.stderr(), "magu documents fetched").some((l) => l.magu === stored.maguId.toString());
      const text = await (await fetch(validator!.metricsUrl!)).text();
      const passed = Number(/^muri_validator_audits_total\{result="passed"\} (\S+)$/m.exec(text)?.[1] ?? 0);
      return fetched && passed >= 1;
    }, 300).catch(failWithLog);
    const [started] = logLines(validator.stderr(), "event follower started").filter((l) => l.id === "validator-batches");
    assert.ok(BigInt(String(started?.resumeFrom)) > commit!.blockNumber, `the follower resumed past the commit's block ${commit!.blockNumber}: ${JSON.stringify(started)}`);
    // Stopped again: its transactions would move the chain, which the rest of the test mines itself.
    await validator.kill("SIGTERM");
  });

  test("the four live members prove three periods in a row", async () => {
    const live = stored.members.filter((a) => getAddress(a) !== getAddress(victim.address));
    let first = 0n;
    for (const member of live) {
      const join = (await net.read.maguRegistry.read.membership([stored.maguId, member])).joinPeriod;
      if (join > first) first = join;
    }
    for (let p = first; p < first + 3n; p++) {
      await net.mineTo((await net.read.maguRegistry.read.periodStart([p])) + 1n);
      for (const member of live) {
        await waitProven(net, stored.maguId, member as Address, p, 120_000, nodes.find((n) => getAddress(n.address) === getAddress(member)));
      }
    }
  });

  test("resumed, the stopped member fetches its shards and proves after its grace, never charged", async () => {
    const grace = (await net.read.maguRegistry.read.membership([stored.maguId, victim.address])).joinPeriod;
    assert.ok(grace > (await net.read.maguRegistry.read.currentPeriod()) - 3n, "its first challenged period is after the others'");
    process.kill(-victim.pid, "SIGCONT");
    // Its log is kept as a bounded tail: remember each line once seen.
    let caughtUp = false;
    let repaired = false;
    await waitFor("the resumed member to fetch the batch and rebuild its shards", 180_000, async () => {
      caughtUp ||= logLines(victim.stderr(), "caught up with a batch: documents taken").length > 0;
      repaired ||= logLines(victim.stderr(), "repair complete").some((l) => Number(l.repaired ?? 0) > 0);
      return caughtUp && repaired;
    }, 200);
    // Its grace ends: from then on it is challenged like the others, and proves.
    const now = await net.read.maguRegistry.read.currentPeriod();
    const p = grace > now ? grace : now + 1n;
    await net.mineTo((await net.read.maguRegistry.read.periodStart([p])) + 1n);
    await waitProven(net, stored.maguId, victim.address, p, 120_000, victim);
    assert.equal(await net.read.nodeRegistry.read.stakeOf([victim.address]), stakeBefore, "nothing was slashed from it");
    const misses = await net.read.challengeManager.getEvents.ProofMissed({ magu: stored.maguId }, { fromBlock: net.deployment.deployBlock });
    assert.equal(misses.length, 0, "nobody missed");
  });
});
