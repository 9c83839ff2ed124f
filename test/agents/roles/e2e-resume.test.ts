/**
 * `muri put FILE --resume` after the put was killed (docs/ARCHITECTURE.md, "Deliver, acknowledge,
 * commit"): five node processes; `muri put` of 20 MiB is killed with SIGKILL as soon as its Magu is
 * formed (while it encodes or pushes). The resumed put finishes in the same Magu with the same
 * shards: the file comes back identical, exactly one Magu was created and exactly one escrow paid.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { getAddress, type Address } from "viem";
import { MURI_BIN, ROOT, muri } from "../cli/run-muri.js";
import { randomFile, sha256File, startNetwork, tearDown, waitFor, type Network } from "./e2e-helpers.js";

const NODES = 5;
const CLIENT = NODES + 1;
const FILE_BYTES = 20 * 1024 * 1024;

describe("e2e: a killed put resumed", { timeout: 600_000 }, () => {
  let net: Network;
  let input: string;
  let inputHash: string;
  let args: string[];
  let client: Address;

  before(async () => {
    net = await startNetwork({ prefix: "muri-e2e-resume-", nodes: NODES, fund: [CLIENT] });
    ({ path: input, sha256: inputHash } = await randomFile(net.dir, "input.bin", FILE_BYTES));
    args = ["--rpc", net.chain.rpcUrl, "--deployment", net.deploymentFile, "--key", net.chain.keys[CLIENT]!, "--client-dir", join(net.dir, "client")];
    const { privateKeyToAccount } = await import("viem/accounts");
    client = getAddress(privateKeyToAccount(net.chain.keys[CLIENT]!).address);
  });

  after(() => tearDown("resume-node", net?.nodes ?? []));

  test("--resume with nothing interrupted says so and changes nothing", async () => {
    const run = await muri(["put", input, "--resume", ...args]);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /no interrupted put of .*input\.bin/);
    assert.equal(await net.read.maguRegistry.read.maguCount(), 0n);
  });

  test("killed once its Magu is formed, the resumed put finishes it and pays once", async () => {
    const balanceBefore = await net.read.token.read.balanceOf([client]);
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MURI_")));
    const child = spawn(process.execPath, [MURI_BIN, "put", input, "--json", ...args], { cwd: ROOT, env: clean, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8000)));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    await waitFor(`the put's Magu to be formed\n${stderr}`, 120_000, async () => {
      if ((await net.read.maguRegistry.read.maguCount()) === 0n) return undefined;
      return (await net.read.maguRegistry.read.maguInfo([1n])).status === 2 || undefined;
    }, 100);
    child.kill("SIGKILL");
    assert.equal(await exited, null, "killed, not finished");
    const interrupted = await net.read.maguRegistry.read.maguInfo([1n]);
    console.log(`# killed with ${interrupted.fragmentCount} fragments committed`);

    // A plain put of the same file would pay again: refused, with the way to finish it.
    const plain = await muri(["put", input, ...args]);
    assert.notEqual(plain.code, 0);
    assert.match(plain.stderr, /interrupted after it paid for Magu 1: finish it with --resume/);
    assert.equal(await net.read.maguRegistry.read.maguCount(), 1n, "no second Magu");

    const resumed = await muri(["put", input, "--resume", "--json", ...args], {}, 300_000);
    assert.equal(resumed.code, 0, resumed.stderr);
    const result = JSON.parse(resumed.stdout) as { maguId: string; manifestCid: string; shards: number };
    assert.equal(result.maguId, "1", "the same Magu");
    assert.equal(await net.read.maguRegistry.read.maguCount(), 1n, "no second Magu");
    const info = await net.read.maguRegistry.read.maguInfo([1n]);
    assert.equal(info.fragmentCount, result.shards);
    const escrow = info.params.pricePerFragmentPeriod * BigInt(info.params.maxFragments) * info.params.durationPeriods;
    // The formation deposit went back to the client's claimable when the Magu formed.
    const { formationDeposit } = await net.read.maguRegistry.read.config();
    assert.equal(await net.read.maguRegistry.read.claimable([client]), formationDeposit, "the deposit is refunded");
    assert.equal(balanceBefore - (await net.read.token.read.balanceOf([client])), escrow + formationDeposit, "exactly one escrow paid (and one deposit, refunded)");

    const out = join(net.dir, "out.bin");
    const got = await muri(["get", result.manifestCid, "--magu", result.maguId, "-o", out, ...args], {}, 120_000);
    assert.equal(got.code, 0, got.stderr);
    assert.equal(await sha256File(out), inputHash);

    // Nothing left to resume.
    const again = await muri(["put", input, "--resume", ...args]);
    assert.notEqual(again.code, 0);
    assert.match(again.stderr, /no interrupted put/);
  });
});
