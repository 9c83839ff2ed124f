// Deploys the Ignition module deploy/MuriData.ts and writes the addresses the agents read to
// deployments/<chainId>.json (or MURI_DEPLOYMENT_FILE).
//   npm run deploy:local   the chain at MURI_RPC_URL (default http://127.0.0.1:8545), its unlocked
//                          accounts (after npm run chain in another terminal)
//   npm run deploy         any EVM chain (network "muri"): MURI_RPC_URL and MURI_DEPLOYER_KEY are
//                          configuration variables, from the environment or the keystore (docs/DEPLOY.md)
// Parameters: MURI_DEPLOY_PARAMETERS_FILE (default deploy/parameters/devnet.json); MURI_DEPLOY_PARAMETERS,
// a JSON object (e.g. {"periodBlocks": 20, "graceBlocks": 10, "settleDelayBlocks": 40}), replaces
// keys of it (tests use it for windows sized to a loaded machine).
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { network } from "hardhat";
import MuriData from "../deploy/MuriData.js";

const connection = await network.getOrCreate();
const { ethers, ignition } = connection;
const chainId = Number((await ethers.provider.getNetwork()).chainId);
const parametersFile = process.env.MURI_DEPLOY_PARAMETERS_FILE ?? fileURLToPath(new URL("../deploy/parameters/devnet.json", import.meta.url));
let devnet: { MuriData: Record<string, number | string> };
try {
  devnet = JSON.parse(await readFile(parametersFile, "utf8")) as typeof devnet;
} catch (err) {
  throw new Error(`MURI_DEPLOY_PARAMETERS_FILE: cannot read ${parametersFile} as JSON (${(err as Error).message}); it holds {"MuriData": {parameter: value}}`, {
    cause: err,
  });
}
if (typeof devnet.MuriData !== "object" || devnet.MuriData === null) {
  throw new Error(`${parametersFile}: no "MuriData" object of parameters (see deploy/parameters/devnet.json)`);
}
const overrides = JSON.parse(process.env.MURI_DEPLOY_PARAMETERS ?? "{}") as Record<string, number | string>;
const parameters = { MuriData: { ...devnet.MuriData, ...overrides } };

// A local chain starts empty every time, so Ignition's journal of an earlier chain with the same id
// must not be reused: each run deploys under its own id and drops that journal afterwards (two
// devnets deploying at once never share one).
const devChain = chainId === 31337 || chainId === 1337;
const deploymentId = devChain ? `devnet-${process.pid}-${Date.now()}` : undefined;
const deployed = await ignition.deploy(MuriData, { parameters, displayUi: false, deploymentId });
if (deploymentId) {
  await rm(new URL(`../ignition/deployments/${deploymentId}`, import.meta.url), { recursive: true, force: true });
}
const contracts: Record<string, string> = {};
for (const [name, contract] of Object.entries(deployed)) {
  contracts[name] = await (contract as { getAddress(): Promise<string> }).getAddress();
}
const out = {
  chainId,
  rpcUrl: connection.networkConfig.type === "http" ? await connection.networkConfig.url.getUrl() : (process.env.MURI_RPC_URL ?? "http://127.0.0.1:8545"),
  deployBlock: await ethers.provider.getBlockNumber(),
  contracts,
  parameters: parameters.MuriData,
};
const file = process.env.MURI_DEPLOYMENT_FILE ?? `deployments/${chainId}.json`;
await mkdir(dirname(file), { recursive: true });
await writeFile(file, JSON.stringify(out, null, 2) + "\n");
console.log(`deployed to chain ${chainId}: ${Object.entries(contracts).map(([k, v]) => `${k}=${v}`).join(" ")}`);
console.log(`addresses written to ${file}`);
await connection.close();
