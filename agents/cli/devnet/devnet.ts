/**
 * A local MuriData network in one directory: a `hardhat node` on a free 127.0.0.1 port with
 * interval mining (a block every blockMs; automine is on for the set-up and off once the agents are
 * ready, so blocks measure time as on a real chain), the contracts deployed by
 * scripts/deploy-local.ts, accounts funded with MURI from account 0, and N storage node processes
 * (agents/roles/node/run-node.ts) plus V validators (agents/roles/validator/run-validator.ts, when it exists), each
 * with its own key and data directory. Accounts come from Hardhat's test mnemonic: #0 deploys and
 * funds, #1..N are nodes, #N+1..N+V validators, #N+V+1 the client.
 *
 * ```
 * DIR/devnet.pid        lock: the pid of the devnet running here
 * DIR/devnet.json       deployment + clientKey + agents (what `muri ... --devnet DIR` reads)
 * DIR/deployment.json   the deployment file the agents read
 * DIR/logs/*.log        chain, deploy and agent logs
 * DIR/node-1/ ...       agent data directories (wiped at start: the chain is new every time)
 * DIR/client/           the `muri put/get --devnet DIR` client directory
 * ```
 */
import { existsSync } from "node:fs";
import { mkdir, readdir, rename, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { mnemonicToAccount } from "viem/accounts";
import { toHex, type Address, type Hex } from "viem";
import { createChainClients, getMuriContracts, loadDeployment, type Deployment } from "../../chain/index.js";
import { toJson } from "../output.js";
import { ensureContractsBuilt } from "./contracts-build.js";
import { acquireLock } from "./lock.js";
import { freePort, HARDHAT_CLI, pause, readyLine, ROOT, runToEnd, spawnManaged, type Managed } from "./processes.js";
import { rpcCall } from "./rpc.js";

/** Hardhat's default accounts (each pre-funded with ETH by `hardhat node`). */
export const DEVNET_MNEMONIC = "test test test test test test test test test test test junk";
/** `hardhat node` funds this many accounts with ETH. */
export const HARDHAT_ACCOUNTS = 20;
export const DEVNET_DEFAULTS = {
  nodes: 5,
  validators: 1,
  dir: ".devnet",
  /** Interval mining: one block per this many ms even without transactions. */
  blockMs: 1_000,
  /** MURI (whole tokens) sent to each agent and to the client. */
  agentMuri: 10_000n,
  clientMuri: 100_000n,
} as const;
const E18 = 10n ** 18n;
const CHAIN_READY_MS = 60_000;
const DEPLOY_MS = 180_000;
const AGENT_READY_MS = 120_000;
/** SIGTERM -> SIGKILL grace of each process at stop. */
export const STOP_GRACE_MS = 10_000;

const RUN_NODE = join(ROOT, "agents", "roles", "node", "run-node.ts");
const RUN_VALIDATOR = join(ROOT, "agents", "roles", "validator", "run-validator.ts");
/** The project's TypeScript loader for the agent processes (bin/ts-hooks.mjs: half tsx's start-up CPU). */
const TS_LOADER = pathToFileURL(join(ROOT, "bin", "ts-register.mjs")).href;

export type AgentRole = "node" | "validator";

export interface DevnetAgent {
  name: string;
  role: AgentRole;
  address: Address;
  peerId: string;
  multiaddrs: string[];
  pid: number;
  dataDir: string;
  logFile: string;
  /** The agent's Prometheus `/metrics` (127.0.0.1, a free port): the dashboard scrapes it. */
  metricsUrl?: string;
}

/** DIR/devnet.json: the deployment fields (so `--devnet DIR` reads it as a deployment) plus the rest. */
export interface DevnetFile {
  chainId: number;
  rpcUrl: string;
  deployBlock: number;
  contracts: Deployment["contracts"];
  parameters: Deployment["parameters"];
  clientKey: Hex;
  clientAddress: Address;
  /** The devnet process (owner of DIR/devnet.pid). */
  pid: number;
  chainPid: number;
  blockMs: number;
  agents: DevnetAgent[];
  /** Why fewer validators run than were asked for, if so. */
  validatorsNote?: string;
}

export interface DevnetInit {
  dir: string;
  nodes: number;
  validators: number;
  blockMs?: number;
  /** Aborting stops the start (SIGINT during start). */
  signal: AbortSignal;
  /** Progress messages ("deploying contracts"). */
  onStep?: (message: string) => void;
}

export interface Devnet {
  readonly dir: string;
  readonly file: string;
  readonly info: DevnetFile;
  /** Resolves when the chain process exits (unexpectedly, unless stop() was called). */
  readonly chainExited: Promise<number | string>;
  /** Agents that exit on their own are reported here. */
  onAgentExit(listener: (agent: DevnetAgent, code: number | string) => void): void;
  /** Stops every process (agents, then the chain), removes devnet.json and the lock. */
  stop(): Promise<void>;
}

/** Key of Hardhat account `index`. */
export function devnetKey(index: number): Hex {
  const key = mnemonicToAccount(DEVNET_MNEMONIC, { addressIndex: index }).getHdKey().privateKey;
  if (!key) throw new Error(`no private key for account ${index}`);
  return toHex(key);
}

export function devnetAddress(index: number): Address {
  return mnemonicToAccount(DEVNET_MNEMONIC, { addressIndex: index }).address;
}

/** Whether agents/roles/validator/run-validator.ts exists in this checkout. */
export function validatorAvailable(): boolean {
  return existsSync(RUN_VALIDATOR);
}

/** Starts the whole devnet; on any failure (or abort) everything started so far is stopped first. */
export async function startDevnet(init: DevnetInit): Promise<Devnet> {
  const dir = resolve(init.dir);
  const step = init.onStep ?? (() => undefined);
  const blockMs = init.blockMs ?? DEVNET_DEFAULTS.blockMs;
  await mkdir(dir, { recursive: true });
  const lock = acquireLock(dir);
  const processes: Managed[] = [];
  const file = join(dir, "devnet.json");
  const stopAll = async () => {
    // Agents first (they talk to the chain while stopping), then the chain.
    const [chain, ...agents] = processes;
    await Promise.all(agents.map((p) => p.stop(STOP_GRACE_MS)));
    await chain?.stop(STOP_GRACE_MS);
  };
  try {
    const logs = join(dir, "logs");
    await Promise.all(
      ["devnet.json", "deployment.json", "client", "logs"].map((f) => rm(join(dir, f), { recursive: true, force: true })),
    );
    await removeAgentDirs(dir);
    await mkdir(logs, { recursive: true });

    const validatorsNote =
      init.validators > 0 && !validatorAvailable()
        ? `${init.validators} validator(s) asked for, none started: agents/roles/validator/run-validator.ts is not in this checkout`
        : undefined;
    const validators = validatorsNote ? 0 : init.validators;

    // 0. Contract artifacts: built when missing (a clone right after `npm install`) or stale.
    await ensureContractsBuilt({
      logFile: join(logs, "build.log"),
      signal: init.signal,
      onBuild: (reason) => step(`compiling the contracts (${reason}; about a minute the first time)`),
    });

    // 1. Chain.
    const port = await freePort();
    const rpcUrl = `http://127.0.0.1:${port}`;
    step(`starting hardhat node on ${rpcUrl}`);
    const chain = spawnManaged({
      name: "hardhat node",
      args: [HARDHAT_CLI, "node", "--hostname", "127.0.0.1", "--port", String(port)],
      logFile: join(logs, "chain.log"),
    });
    processes.push(chain);
    await waitForRpc(rpcUrl, chain, init.signal);
    await rpcCall(rpcUrl, "evm_setIntervalMining", [blockMs]);

    // 2. Contracts.
    step("deploying contracts");
    const deploymentFile = join(dir, "deployment.json");
    const deploy = spawnManaged({
      name: "deploy-local",
      args: [HARDHAT_CLI, "run", "--no-compile", "scripts/deploy-local.ts", "--network", "localhost"],
      env: { ...process.env, MURI_RPC_URL: rpcUrl, MURI_DEPLOYMENT_FILE: deploymentFile },
      logFile: join(logs, "deploy.log"),
    });
    await runToEnd(deploy, DEPLOY_MS, init.signal);
    const deployment = await loadDeployment(deploymentFile);

    // 3. Accounts and MURI.
    const plan: { name: string; role: AgentRole; index: number }[] = [
      ...Array.from({ length: init.nodes }, (_, i) => ({ name: `node-${i + 1}`, role: "node" as const, index: 1 + i })),
      ...Array.from({ length: validators }, (_, i) => ({ name: `validator-${i + 1}`, role: "validator" as const, index: 1 + init.nodes + i })),
    ];
    const clientIndex = 1 + init.nodes + validators;
    step(`funding ${plan.length + 1} accounts`);
    await fundAccounts(deployment, rpcUrl, [
      ...plan.map((p) => ({ to: devnetAddress(p.index), amount: DEVNET_DEFAULTS.agentMuri * E18 })),
      { to: devnetAddress(clientIndex), amount: DEVNET_DEFAULTS.clientMuri * E18 },
    ]);
    if (init.signal.aborted) throw new Error("interrupted");

    // 4. Agents.
    step(`starting ${init.nodes} node(s)${validators ? ` and ${validators} validator(s)` : ""}`);
    const started = await Promise.all(
      plan.map(async (p) => {
        const dataDir = join(dir, p.name);
        const key = devnetKey(p.index);
        const m = spawnManaged({
          name: p.name,
          args: [
            ...["--import", TS_LOADER, p.role === "node" ? RUN_NODE : RUN_VALIDATOR, "--rpc", rpcUrl, "--deployment", deploymentFile, "--dir", dataDir, "--metrics-port", "0"],
            // Nodes listen for browsers too (WebSockets on loopback): the light client's page dials them.
            ...(p.role === "node" ? ["--listen", "/ip4/127.0.0.1/tcp/0", "--listen", "/ip4/127.0.0.1/tcp/0/ws"] : []),
          ],
          env: { ...process.env, MURI_NODE_KEY: key, MURI_VALIDATOR_KEY: key },
          logFile: join(logs, `${p.name}.log`),
          pipeStdout: true,
        });
        processes.push(m);
        const ready = await readyLine<{ address: Address; peerId: string; multiaddrs: string[]; metricsUrl?: string }>(m, AGENT_READY_MS, init.signal);
        const agent: DevnetAgent = {
          name: p.name,
          role: p.role,
          address: ready.address,
          peerId: ready.peerId,
          multiaddrs: ready.multiaddrs,
          pid: m.pid,
          dataDir,
          logFile: m.logFile,
          ...(ready.metricsUrl ? { metricsUrl: ready.metricsUrl } : {}),
        };
        return { agent, process: m };
      }),
    );

    // From here on a block comes every blockMs and only then, whatever the load, as on a real
    // chain: windows counted in blocks (search tasks' commit and reveal, proof deadlines) keep
    // their length in time. Set-up (deploy, funding, registration) ran with automine, for speed.
    await rpcCall(rpcUrl, "evm_setAutomine", [false]);

    const info: DevnetFile = {
      chainId: deployment.chainId,
      rpcUrl,
      deployBlock: Number(deployment.deployBlock),
      contracts: deployment.contracts,
      parameters: deployment.parameters,
      clientKey: devnetKey(clientIndex),
      clientAddress: devnetAddress(clientIndex),
      pid: process.pid,
      chainPid: chain.pid,
      blockMs,
      agents: started.map((s) => s.agent),
      ...(validatorsNote ? { validatorsNote } : {}),
    };
    await writeFile(`${file}.tmp`, toJson(info, 2) + "\n");
    await rename(`${file}.tmp`, file);

    let stopping: Promise<void> | undefined;
    return {
      dir,
      file,
      info,
      chainExited: chain.exited,
      onAgentExit(listener) {
        for (const s of started) void s.process.exited.then((code) => stopping === undefined && listener(s.agent, code));
      },
      stop() {
        stopping ??= (async () => {
          try {
            await stopAll();
          } finally {
            await rm(file, { force: true });
            await rm(join(dir, "deployment.json"), { force: true });
            lock.release();
          }
        })();
        return stopping;
      },
    };
  } catch (err) {
    try {
      await stopAll();
    } finally {
      await rm(file, { force: true });
      lock.release();
    }
    throw err;
  }
}

async function removeAgentDirs(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true });
  await Promise.all(
    entries
      .filter((e) => e.isDirectory() && /^(node|validator)-\d+$/.test(e.name))
      .map((e) => rm(join(dir, e.name), { recursive: true, force: true })),
  );
}

async function waitForRpc(url: string, chain: Managed, signal: AbortSignal): Promise<void> {
  const deadline = Date.now() + CHAIN_READY_MS;
  while (Date.now() < deadline) {
    if (signal.aborted) throw new Error("interrupted");
    if (!chain.alive()) throw new Error(`hardhat node exited before it served JSON-RPC; see ${chain.logFile}`);
    try {
      await rpcCall(url, "eth_chainId");
      return;
    } catch {
      await pause(250, signal);
    }
  }
  throw new Error(`hardhat node did not serve JSON-RPC on ${url} within ${CHAIN_READY_MS} ms; see ${chain.logFile}`);
}

/** MURI transfers from account #0, one at a time (one nonce sequence), each waited for. */
async function fundAccounts(deployment: Deployment, rpcUrl: string, transfers: { to: Address; amount: bigint }[]): Promise<void> {
  const clients = createChainClients({ rpcUrl, chainId: deployment.chainId, privateKey: devnetKey(0) });
  const contracts = getMuriContracts(deployment.contracts, clients);
  for (const t of transfers) {
    const hash = await contracts.token.write.transfer([t.to, t.amount]);
    const receipt = await clients.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    if (receipt.status !== "success") throw new Error(`funding ${t.to} with MURI reverted (tx ${hash})`);
  }
}
