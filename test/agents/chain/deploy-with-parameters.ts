// Tests only: scripts/deploy-local.ts with some Ignition parameters replaced. Deploys
// deploy/MuriData.ts with deploy/parameters/devnet.json, every key of the JSON object in
// MURI_DEPLOY_PARAMETERS (e.g. {"periodBlocks": 20, "graceBlocks": 10}) overriding the file's, and
// writes the deployment file the agents read to MURI_DEPLOYMENT_FILE, as deploy-local.ts does (the
// parameters in force included). Run by test/agents/chain/harness.ts `deployLocal(url, ms, parameters)`
// through `hardhat run --no-compile`; the devnet and `npm start` keep using deploy-local.ts.
import { readFile, rm, writeFile } from "node:fs/promises";
import { network } from "hardhat";
import MuriData from "../../../deploy/MuriData.js";

const file = process.env.MURI_DEPLOYMENT_FILE;
if (file === undefined) throw new Error("MURI_DEPLOYMENT_FILE is not set");
const overrides = JSON.parse(process.env.MURI_DEPLOY_PARAMETERS ?? "{}") as Record<string, number>;
const devnet = JSON.parse(await readFile(new URL("../../../deploy/parameters/devnet.json", import.meta.url), "utf8")) as { MuriData: Record<string, number> };
const parameters = { MuriData: { ...devnet.MuriData, ...overrides } };

const connection = await network.getOrCreate();
const { ethers, ignition } = connection;
const chainId = Number((await ethers.provider.getNetwork()).chainId);
// A journal of its own, dropped afterwards (as deploy-local.ts does on a dev chain).
const deploymentId = `test-${process.pid}-${Date.now()}`;
const deployed = await ignition.deploy(MuriData, { parameters, displayUi: false, deploymentId });
await rm(new URL(`../../../ignition/deployments/${deploymentId}`, import.meta.url), { recursive: true, force: true });
const contracts: Record<string, string> = {};
for (const [name, contract] of Object.entries(deployed)) {
  contracts[name] = await (contract as { getAddress(): Promise<string> }).getAddress();
}
const out = {
  chainId,
  rpcUrl: process.env.MURI_RPC_URL ?? "http://127.0.0.1:8545",
  deployBlock: await ethers.provider.getBlockNumber(),
  contracts,
  parameters: parameters.MuriData,
};
await writeFile(file, JSON.stringify(out, null, 2) + "\n");
console.log(`deployed to chain ${chainId} with ${JSON.stringify(overrides)}: ${Object.entries(contracts).map(([k, v]) => `${k}=${v}`).join(" ")}`);
await connection.close();
