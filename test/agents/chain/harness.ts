/**
 * A real `hardhat node` child process on a free 127.0.0.1 port, the local deployment (the Ignition
 * module deploy/MuriData.ts, sent from this process by deploy-module.ts), and the few transactions
 * the chain tests need.
 * Every child is tracked so `killAllChains()` in an `after` hook stops whatever is left.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Address, Hex } from "viem";
import {
  createChainClients,
  formInWindow,
  getMuriContracts,
  loadDeployment,
  settledRequestBlock,
  type Deployment,
  type MuriContracts,
  type SigningChainClients,
} from "../../../agents/chain/index.js";
import type { Logger } from "../../../agents/store/logger.js";
import { reapOnExit } from "../reap.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** Hardhat's CLI entry, run under this (Node 22) node. */
export const HARDHAT = join(ROOT, "node_modules", "hardhat", "dist", "src", "cli.js");
const OUTPUT_TAIL = 8 * 1024;
export const E18 = 10n ** 18n;

const children = new Set<ChildProcess>();
const dirs: string[] = [];

// Last resort if the test process ends without running `cleanup()`: no orphaned chains.
reapOnExit(children);

/** A fresh temporary directory; removed by `cleanup()`. */
export async function tempDir(prefix = "muri-chain-test-"): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

/** Stops every chain still running and removes the temporary directories. */
export async function cleanup(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface HardhatChain {
  port: number;
  rpcUrl: string;
  /** Private keys of the node's funded dev accounts (#0 deploys). */
  keys: Hex[];
  stop(): Promise<void>;
}

/**
 * A hardhat node on a free port. The port is free when `freePort()` checks it, but another process
 * (the other test lane) may bind it before the node does: a node that exits with EADDRINUSE is
 * started again on another free port, three times at most.
 */
export async function startFreshHardhatNode(timeoutMs?: number, chainId?: number): Promise<HardhatChain> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await startHardhatNode(await freePort(), timeoutMs, chainId);
    } catch (err) {
      if (attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
    }
  }
}

/**
 * Starts `hardhat node` on `port` and resolves once it serves JSON-RPC (at most `timeoutMs`, which
 * bounds a failure only: it normally takes a few seconds, many more on a loaded machine).
 */
export async function startHardhatNode(port: number, timeoutMs = 180_000, chainId?: number): Promise<HardhatChain> {
  const args = [HARDHAT, "node", "--hostname", "127.0.0.1", "--port", String(port), ...(chainId === undefined ? [] : ["--chain-id", String(chainId)])];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // own process group: stop() kills anything it spawned too
  });
  children.add(child);
  let output = "";
  const keys: Hex[] = [];
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hardhat node on ${port} not ready after ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-OUTPUT_TAIL);
      for (const m of chunk.toString().matchAll(/Private Key: (0x[0-9a-fA-F]{64})/g)) keys.push(m[1] as Hex);
      // The banner lists 20 accounts after the "Started" line; wait for them all.
      if (output.includes("Started HTTP") && keys.length >= 20) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", (chunk: Buffer) => (output = (output + chunk.toString()).slice(-OUTPUT_TAIL)));
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`hardhat node on ${port} exited (${code ?? signal}):\n${output}`));
    });
  });
  try {
    await ready;
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return { port, rpcUrl: `http://127.0.0.1:${port}`, keys, stop: () => stopChild(child) };
}

/**
 * Ignition parameters of deploy/MuriData.ts a test deploys with instead of deploy/parameters/devnet.json's
 * (e.g. longer periods, a proof grace, longer search windows).
 */
export type DeployParameters = Partial<
  Record<"periodBlocks" | "epochBlocks" | "unbondingBlocks" | "graceBlocks" | "settleDelayBlocks" | "maxMisses" | "samples" | "commitBlocks" | "revealBlocks" | "disputeBlocks", number>
>;

/**
 * Deploys deploy/MuriData.ts to `rpcUrl` from the test process (`deployModule`: the same
 * transactions as scripts/deploy-local.ts, without a Hardhat process); `parameters` replace those of
 * deploy/parameters/devnet.json. `timeoutMs` bounds a chain that stops answering.
 */
export async function deployLocal(rpcUrl: string, timeoutMs = 180_000, parameters?: DeployParameters): Promise<Deployment & { timelock: Address }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`deploying deploy/MuriData.ts to ${rpcUrl} took over ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    // Loaded here, not at the top: Ignition's module builder takes about a second to import, which
    // every test file that imports this harness without deploying would pay.
    const { deployModule } = await import("./deploy-module.js");
    return await Promise.race([deployModule(rpcUrl, parameters), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs scripts/deploy-local.ts (Hardhat and Ignition) against `rpcUrl` (no recompilation) and loads
 * the deployment file; `parameters` replace those of deploy/parameters/devnet.json
 * (MURI_DEPLOY_PARAMETERS). What `muri devnet` and `npm run deploy:local` run.
 */
export async function deployWithIgnition(rpcUrl: string, timeoutMs = 180_000, parameters?: DeployParameters): Promise<Deployment & { timelock: Address }> {
  const file = join(await tempDir("muri-chain-deploy-"), "deployment.json");
  const child = spawn(process.execPath, [HARDHAT, "run", "--no-compile", "scripts/deploy-local.ts", "--network", "localhost"], {
    cwd: ROOT,
    env: { ...process.env, MURI_RPC_URL: rpcUrl, MURI_DEPLOYMENT_FILE: file, ...(parameters && { MURI_DEPLOY_PARAMETERS: JSON.stringify(parameters) }) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  children.add(child);
  let output = "";
  child.stdout!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-OUTPUT_TAIL)));
  child.stderr!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-OUTPUT_TAIL)));
  const code = await new Promise<number | string | null>((resolve) => {
    const timer = setTimeout(() => {
      void stopChild(child);
      resolve("timeout");
    }, timeoutMs);
    child.once("exit", (c, s) => {
      clearTimeout(timer);
      resolve(c ?? s);
    });
  });
  children.delete(child);
  if (code !== 0) throw new Error(`scripts/deploy-local.ts failed (${code}):\n${output}`);
  // The agents do not use the timelock (it holds the contracts' admin role); tests that change a
  // role go through it.
  const raw = JSON.parse(await readFile(file, "utf8")) as { contracts: { timelock: Address } };
  return { ...(await loadDeployment(file)), timelock: raw.contracts.timelock };
}

async function stopChild(child: ChildProcess): Promise<void> {
  children.delete(child);
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, signal);
    } catch {
      // already gone
    }
  };
  kill("SIGTERM");
  const timer = setTimeout(() => kill("SIGKILL"), 5_000);
  await exited;
  clearTimeout(timer);
}

/** A signing client for `key` on the deployment's chain at `rpcUrl`. */
export function signer(rpcUrl: string, deployment: Deployment, key: Hex): SigningChainClients {
  return createChainClients({ rpcUrl, chainId: deployment.chainId, privateKey: key, retryCount: 0 });
}

/** Sends MURI from the deployer (key #0) and waits for the receipt. */
export async function fund(rpcUrl: string, d: Deployment, deployerKey: Hex, to: Address, amount: bigint): Promise<void> {
  const c = signer(rpcUrl, d, deployerKey);
  const hash = await getMuriContracts(d.contracts, c).token.write.transfer([to, amount]);
  await c.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 });
}

/** Registers the account of `key` as a storage node with `stake` (funded by the deployer). Returns its block. */
export async function registerNode(rpcUrl: string, d: Deployment, deployerKey: Hex, key: Hex, stake = 2_000n * E18): Promise<bigint> {
  const c = signer(rpcUrl, d, key);
  await fund(rpcUrl, d, deployerKey, c.account.address, stake);
  const k = getMuriContracts(d.contracts, c);
  await c.publicClient.waitForTransactionReceipt({ hash: await k.token.write.approve([d.contracts.nodeRegistry, stake]), pollingInterval: 50 });
  const peerId = `0x${Buffer.from(`peer-${c.account.address}`).toString("hex")}` as Hex;
  const hash = await k.nodeRegistry.write.register([stake, 1, 1_000_000_000n, peerId, []]);
  const receipt = await c.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 });
  if (receipt.status !== "success") throw new Error(`register of ${c.account.address} reverted`);
  return receipt.blockNumber;
}

/** Creates a small blob Magu (k=1, m=1, two members) from the account of `key`. Returns its block. */
export async function requestMagu(rpcUrl: string, d: Deployment, deployerKey: Hex, key: Hex): Promise<bigint> {
  const c = signer(rpcUrl, d, key);
  const price = E18;
  const k = getMuriContracts(d.contracts, c);
  const { formationDeposit } = await k.maguRegistry.read.config();
  const escrow = price * 2n * 2n + formationDeposit; // price x fragments x periods, and the deposit
  await fund(rpcUrl, d, deployerKey, c.account.address, escrow);
  await c.publicClient.waitForTransactionReceipt({ hash: await k.token.write.approve([d.contracts.maguRegistry, escrow]), pollingInterval: 50 });
  const hash = await k.maguRegistry.write.createMagu([
    {
      kind: 0,
      metric: 0,
      dimension: 0,
      members: 2,
      replication: 0,
      dataShards: 1,
      parityShards: 1,
      maxFragments: 2,
      durationPeriods: 2n,
      pricePerFragmentPeriod: price,
    },
  ]);
  const receipt = await c.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 });
  if (receipt.status !== "success") throw new Error(`createMagu reverted`);
  return receipt.blockNumber;
}

/** A Magu's parameters, as createMagu takes them. */
export type MaguParamsInput = Parameters<ReturnType<typeof getMuriContracts>["maguRegistry"]["write"]["createMagu"]>[0][0];

/**
 * Requests a Magu from the account of `key` (funded with the escrow and the formation deposit by
 * the deployer), first mining until recent stake changes weigh in (a request sees only those made
 * an epoch before it). Returns the Magu id and the pieces a formation needs.
 */
export async function requestFundedMagu(rpcUrl: string, d: Deployment, deployerKey: Hex, key: Hex, params: MaguParamsInput, mineTo: (block: bigint) => Promise<void>) {
  const c = signer(rpcUrl, d, key);
  const k = getMuriContracts(d.contracts, c);
  const stored = params.kind === 1 ? BigInt(params.maxFragments) * BigInt(params.replication) : BigInt(params.maxFragments);
  const { formationDeposit } = await k.maguRegistry.read.config();
  const cost = params.pricePerFragmentPeriod * stored * params.durationPeriods + formationDeposit;
  await fund(rpcUrl, d, deployerKey, c.account.address, cost);
  const wait = async (hash: Hex, what: string) => {
    const receipt = await c.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    if (receipt.status !== "success") throw new Error(`${what} reverted`);
  };
  await wait(await k.token.write.approve([d.contracts.maguRegistry, cost]), "approve");
  await mineTo(await settledRequestBlock(k));
  await wait(await k.maguRegistry.write.createMagu([params]), "createMagu");
  return { maguId: await k.maguRegistry.read.maguCount(), c, k, wait };
}

/**
 * Creates and forms a Magu from the account of `key` (requestFundedMagu), then forms it in its
 * selection window (formInWindow, mining to it). Returns the Magu id.
 */
export async function createAndFormMagu(
  rpcUrl: string,
  d: Deployment,
  deployerKey: Hex,
  key: Hex,
  params: MaguParamsInput,
  mineTo: (block: bigint) => Promise<void>,
): Promise<bigint> {
  const { maguId, c, k, wait } = await requestFundedMagu(rpcUrl, d, deployerKey, key, params, mineTo);
  const status = await formInWindow(
    {
      read: k,
      head: () => c.publicClient.getBlockNumber({ cacheTime: 0 }),
      waitForBlock: mineTo,
      form: async () => wait(await k.maguRegistry.write.formMagu([maguId]), "formMagu"),
      approveDeposit: async () => {
        throw new Error("createAndFormMagu: the selection window passed (the test mined past it)");
      },
    },
    maguId,
  );
  if (status !== 2) throw new Error(`createAndFormMagu: Magu ${maguId} has status ${status} after forming`);
  return maguId;
}

/** Mines to the selection window of slot `slot`'s vacancy (nothing when it is not vacant). */
export async function mineToVacancyWindow(read: Pick<MuriContracts, "maguRegistry">, maguId: bigint, slot: number, mineTo: (block: bigint) => Promise<void>): Promise<void> {
  const [requestBlock] = await read.maguRegistry.read.vacancy([maguId, BigInt(slot)]);
  if (requestBlock === 0n) return;
  const [opens] = await read.maguRegistry.read.selectionWindow([requestBlock]);
  await mineTo(opens);
}

const timelockAbi = [
  { type: "function", name: "getMinDelay", stateMutability: "view", inputs: [], outputs: [{ type: "uint256" }] },
  {
    type: "function",
    name: "schedule",
    stateMutability: "nonpayable",
    inputs: [{ type: "address" }, { type: "uint256" }, { type: "bytes" }, { type: "bytes32" }, { type: "bytes32" }, { type: "uint256" }],
    outputs: [],
  },
  {
    type: "function",
    name: "execute",
    stateMutability: "payable",
    inputs: [{ type: "address" }, { type: "uint256" }, { type: "bytes" }, { type: "bytes32" }, { type: "bytes32" }],
    outputs: [],
  },
] as const;

/**
 * Runs `data` on `target` through the deployment's timelock as its proposer (the deployer, `key`):
 * schedules it, moves the chain's clock past the delay (evm_increaseTime) and executes it.
 */
export async function throughTimelock(rpcUrl: string, d: Deployment & { timelock: Address }, key: Hex, target: Address, data: Hex): Promise<void> {
  const c = signer(rpcUrl, d, key);
  const zero = `0x${"0".repeat(64)}` as Hex;
  const delay = await c.publicClient.readContract({ address: d.timelock, abi: timelockAbi, functionName: "getMinDelay" });
  const wait = async (hash: Hex, what: string) => {
    if ((await c.publicClient.waitForTransactionReceipt({ hash, pollingInterval: 50 })).status !== "success") throw new Error(`timelock ${what} reverted`);
  };
  await wait(await c.walletClient.writeContract({ address: d.timelock, abi: timelockAbi, functionName: "schedule", args: [target, 0n, data, zero, zero, delay], account: c.account, chain: c.walletClient.chain }), "schedule");
  await c.publicClient.request({ method: "evm_increaseTime" as never, params: [Number(delay)] as never });
  await c.publicClient.request({ method: "evm_mine" as never, params: [] as never });
  await wait(await c.walletClient.writeContract({ address: d.timelock, abi: timelockAbi, functionName: "execute", args: [target, 0n, data, zero, zero], account: c.account, chain: c.walletClient.chain }), "execute");
}

export interface LogEntry {
  level: "debug" | "info" | "warn" | "error";
  msg: string;
  context?: Record<string, unknown>;
  at: number;
}

/** A logger that records entries and lets a test await the first entry matching a predicate. */
export function recordingLogger(): Logger & {
  entries: LogEntry[];
  waitFor(pred: (e: LogEntry) => boolean, timeoutMs?: number): Promise<LogEntry>;
} {
  const entries: LogEntry[] = [];
  const waiters: { pred: (e: LogEntry) => boolean; resolve: (e: LogEntry) => void }[] = [];
  const push = (level: LogEntry["level"]) => (msg: string, context?: Record<string, unknown>) => {
    const entry = { level, msg, context, at: performance.now() };
    entries.push(entry);
    for (const w of [...waiters]) {
      if (w.pred(entry)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(entry);
      }
    }
  };
  return {
    entries,
    debug: push("debug"),
    info: push("info"),
    warn: push("warn"),
    error: push("error"),
    waitFor(pred, timeoutMs = 60_000) {
      const found = entries.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no log entry matched within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          pred,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
  };
}

/** A JSON-RPC request as the proxy sees it. */
export interface RpcCall {
  method: string;
  params?: unknown[];
}

/**
 * An HTTP JSON-RPC proxy on 127.0.0.1 in front of `target` (a real chain), for faults an RPC
 * provider shows: `rewrite` may change any answer (a lagging head, a log from another block) and
 * `down` refuses every request with HTTP 503, `hold` delays a request until it resolves (a slow
 * provider). Batched requests are answered item by item.
 */
export async function startRpcProxy(
  target: string,
  rewrite: (call: RpcCall, result: unknown) => unknown = (_call, result) => result,
  hold?: (call: RpcCall) => Promise<void> | void,
): Promise<{ url: string; down: boolean; calls: RpcCall[]; close(): Promise<void> }> {
  const state = { down: false, calls: [] as RpcCall[] };
  const forward = async (call: RpcCall & { id?: unknown; jsonrpc?: string }): Promise<unknown> => {
    state.calls.push({ method: call.method, params: call.params });
    await hold?.(call);
    const res = await fetch(target, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(call) });
    const body = (await res.json()) as { result?: unknown; error?: unknown };
    return body.error !== undefined ? body : { ...body, result: rewrite(call, body.result) };
  };
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (state.down) {
        res.writeHead(503).end("down");
        return;
      }
      const request = JSON.parse(Buffer.concat(chunks).toString("utf8")) as RpcCall | RpcCall[];
      const answer = Array.isArray(request) ? Promise.all(request.map(forward)) : forward(request);
      answer.then(
        (body) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body)),
        (err: unknown) => res.writeHead(502).end(String(err)),
      );
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", () => resolve()));
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
}
