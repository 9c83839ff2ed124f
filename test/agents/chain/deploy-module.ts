/**
 * Deploys deploy/MuriData.ts, the Ignition module itself, from inside the test process: its futures
 * are read from the module and sent with viem from the chain's unlocked account #0, in Ignition's
 * order (level by level of the dependency graph, each level sorted by future id), so the addresses,
 * code and events are those `scripts/deploy-local.ts` gives on a fresh chain
 * (`deploy-module.test.ts` compares the two). A `hardhat run` of that script costs a test about 4.5 s
 * of CPU (Hardhat, Ignition and ethers loaded in a new process); this costs a fraction of one.
 * The deployment file's parameters are deploy/parameters/devnet.json's with `overrides`.
 */
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { createPublicClient, createWalletClient, getAddress, http, type Abi, type Address, type Hex } from "viem";
import { hardhat } from "viem/chains";
import MuriData from "../../../deploy/MuriData.js";
import { MURI_CONTRACT_KEYS, type Deployment } from "../../../agents/chain/index.js";

const ROOT = new URL("../../../", import.meta.url);

/** The parts of Ignition's futures and runtime values this deployer reads. */
interface Future {
  id: string;
  type: string;
  dependencies: Set<Future>;
  contractName?: string;
  constructorArgs?: unknown[];
  contract?: Future;
  functionName?: string;
  args?: unknown[];
}

async function artifact(name: string): Promise<{ abi: Abi; bytecode: Hex }> {
  const path = fileURLToPath(new URL(`artifacts/contracts/${name}.sol/${name}.json`, ROOT));
  try {
    return JSON.parse(await readFile(path, "utf8")) as { abi: Abi; bytecode: Hex };
  } catch (err) {
    throw new Error(`${path}: no artifact of ${name} (${(err as Error).message}); build the contracts first (npx hardhat build)`, { cause: err });
  }
}

/** devnet.json's parameters with `overrides` on top: what the deployment file records. */
async function deployParameters(overrides: Record<string, number | string> = {}): Promise<Record<string, number | string>> {
  const devnet = JSON.parse(await readFile(new URL("deploy/parameters/devnet.json", ROOT), "utf8")) as { MuriData: Record<string, number | string> };
  return { ...devnet.MuriData, ...overrides };
}

/**
 * Deploys the module to the chain at `rpcUrl` (its account #0 unlocked, automine on) and returns what
 * scripts/deploy-local.ts would write, with the timelock's address.
 */
export async function deployModule(rpcUrl: string, overrides: Record<string, number | string> = {}): Promise<Deployment & { timelock: Address }> {
  const parameters = await deployParameters(overrides);
  const publicClient = createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) });
  const chainId = await publicClient.getChainId();
  const chain = { ...hardhat, id: chainId };
  const wallet = createWalletClient({ chain, transport: http(rpcUrl, { retryCount: 0 }) });
  const accounts = await wallet.getAddresses();
  const addresses = new Map<string, Address>();
  const abis = new Map<string, Abi>();

  // A runtime value of the module (a parameter, an account, another future) as viem takes it.
  const resolve = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(resolve);
    if (value === null || typeof value !== "object") return value;
    const v = value as { type?: string; id?: string; name?: string; defaultValue?: unknown; accountIndex?: number };
    if (v.type === "MODULE_PARAMETER") {
      const given = parameters[v.name!];
      if (given === undefined) return v.defaultValue;
      return typeof v.defaultValue === "bigint" ? BigInt(given) : given;
    }
    if (v.type === "ACCOUNT") return accounts[v.accountIndex!];
    if (v.id !== undefined && addresses.has(v.id)) return addresses.get(v.id);
    if (v.id !== undefined) throw new Error(`deployModule: ${v.id} is used before it is deployed`);
    return Object.fromEntries(Object.entries(value).map(([k, x]) => [k, resolve(x)]));
  };

  const futures = [...(MuriData.futures as unknown as Set<Future>)];
  const done = new Set<string>();
  while (done.size < futures.length) {
    const level = futures.filter((f) => !done.has(f.id) && [...f.dependencies].every((d) => done.has(d.id))).sort((a, b) => (a.id < b.id ? -1 : 1));
    if (level.length === 0) throw new Error("deployModule: the module's futures depend on each other in a circle");
    for (const f of level) {
      let hash: Hex;
      if (f.type === "NAMED_ARTIFACT_CONTRACT_DEPLOYMENT") {
        const { abi, bytecode } = await artifact(f.contractName!);
        abis.set(f.id, abi);
        hash = await wallet.deployContract({ abi, bytecode, args: resolve(f.constructorArgs) as unknown[], account: accounts[0]!, chain });
      } else if (f.type === "CONTRACT_CALL") {
        hash = await wallet.writeContract({
          address: addresses.get(f.contract!.id)!,
          abi: abis.get(f.contract!.id)!,
          functionName: f.functionName!,
          args: resolve(f.args) as unknown[],
          account: accounts[0]!,
          chain,
        });
      } else {
        throw new Error(`deployModule: future ${f.id} is a ${f.type}, which this deployer does not run (use scripts/deploy-local.ts)`);
      }
      const receipt = await publicClient.waitForTransactionReceipt({ hash, pollingInterval: 20 });
      if (receipt.status !== "success") throw new Error(`deployModule: ${f.id} reverted (transaction ${hash})`);
      if (receipt.contractAddress) addresses.set(f.id, getAddress(receipt.contractAddress));
      done.add(f.id);
    }
  }
  // The module's results by name, as scripts/deploy-local.ts writes them (the timelock apart).
  const results = Object.fromEntries(Object.entries(MuriData.results as unknown as Record<string, Future>).map(([name, f]) => [name, addresses.get(f.id)!]));
  const { timelock, ...rest } = results;
  const contracts = Object.fromEntries(MURI_CONTRACT_KEYS.map((key) => [key, rest[key]!])) as Deployment["contracts"];
  return {
    chainId,
    rpcUrl,
    deployBlock: await publicClient.getBlockNumber(),
    contracts,
    parameters,
    timelock: timelock!,
  };
}
