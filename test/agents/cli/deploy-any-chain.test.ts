/**
 * Deploying to any EVM chain as an operator would (docs/DEPLOY.md): a separately started hardhat
 * node with its own chain id stands in for a testnet; `npm run deploy` (network "muri") takes its
 * RPC URL and the deployer's key as configuration variables from the environment and the
 * parameters from a file, writes the deployment file the agents read, and `muri status` works
 * against it. Without the key the deployment fails naming the variable.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { getMuriContracts, loadDeployment } from "../../../agents/chain/index.js";
import { HARDHAT, cleanup, signer, startFreshHardhatNode, tempDir } from "../chain/harness.js";
import { muri, ROOT } from "./run-muri.js";

after(cleanup);

/** Runs hardhat with `args` under this Node 22, without the caller's MURI_ variables. */
function hardhat(args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MURI_")));
  const child = spawn(process.execPath, [HARDHAT, ...args], { cwd: ROOT, env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (c: Buffer) => (output += c.toString()));
  child.stderr.on("data", (c: Buffer) => (output += c.toString()));
  return new Promise((resolve) => child.once("exit", (code) => setImmediate(() => resolve({ code, output }))));
}

/**
 * What `npm run deploy` runs (checked against package.json): the contracts' build (not the
 * Solidity tests': a deployer does not wait for them), then the deployment script.
 */
async function deploy(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const build = await hardhat(["build", "--no-tests", "--quiet"], env);
  if (build.code !== 0) return build;
  return hardhat(["run", "--no-compile", "scripts/deploy-local.ts", "--network", "muri"], env);
}

describe("npm run deploy: any EVM chain from configuration variables and a parameters file", { timeout: 600_000 }, () => {
  test("a hardhat node with chain id 4000-4999: deployed with deploy/parameters/testnet.json, usable by muri", async () => {
    const pkg = JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    assert.equal(
      pkg.scripts.deploy,
      "bash scripts/node22.sh bash -c 'hardhat build --no-tests --quiet && hardhat run --no-compile scripts/deploy-local.ts --network muri'",
      "the test runs what npm run deploy runs",
    );
    const chainId = 4000 + Math.floor(Math.random() * 1000);
    const chain = await startFreshHardhatNode(undefined, chainId);
    const dir = await tempDir("muri-deploy-");
    const file = join(dir, "deployment.json");
    const parameters = join(ROOT, "deploy", "parameters", "testnet.json");

    const missing = await deploy({ MURI_RPC_URL: chain.rpcUrl, MURI_DEPLOYMENT_FILE: file, MURI_DEPLOY_PARAMETERS_FILE: parameters });
    assert.notEqual(missing.code, 0);
    assert.match(missing.output, /MURI_DEPLOYER_KEY/, "the error names the missing variable");

    const done = await deploy({ MURI_RPC_URL: chain.rpcUrl, MURI_DEPLOYER_KEY: chain.keys[0]!, MURI_DEPLOYMENT_FILE: file, MURI_DEPLOY_PARAMETERS_FILE: parameters });
    assert.equal(done.code, 0, done.output);
    const written = JSON.parse(await readFile(file, "utf8")) as { chainId: number; rpcUrl: string; parameters: Record<string, number> };
    assert.equal(written.chainId, chainId);
    assert.equal(written.rpcUrl, chain.rpcUrl);
    assert.equal(written.parameters.periodBlocks, 300, "the parameters file's values");

    const d = await loadDeployment(file);
    const k = getMuriContracts(d.contracts, signer(chain.rpcUrl, d, chain.keys[0]!));
    assert.equal((await k.maguRegistry.read.config()).periodBlocks, 300n, "deployed with the file's periodBlocks");
    assert.equal((await k.nodeRegistry.read.config()).reputationDecayBlocks, 3000n);
    assert.equal((await k.maguAccess.read.config()).withdrawDelayBlocks, 600n, "the file's withdrawDelayBlocks");

    const status = await muri(["status", "--rpc", chain.rpcUrl, "--deployment", file, "--json"]);
    assert.equal(status.code, 0, status.stderr);
    const s = JSON.parse(status.stdout) as { chainId?: number | string };
    assert.equal(Number(s.chainId), chainId);
  });
});
