/**
 * Agent processes for end-to-end tests: spawns agents/roles/node/run-node.ts or run-validator.ts, waits
 * for its `ready` line, and tracks every child so `killAllNodes()` (an `after` hook) leaves nothing
 * running. `startNetwork` brings up the usual set-up (hardhat node, deployment, funded accounts,
 * node processes) and `startClient` a storage client, so each e2e file only says what differs.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { lstat, readdir, readFile, readlink, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import type { Address, Hex } from "viem";
import { getMuriContracts, type Deployment, type MuriContracts, type MuriPublicClient } from "../../../agents/chain/index.js";
import { createClient, type StorageClient } from "../../../agents/roles/client/client.js";
import type { OnChainSearchResult, VectorClient } from "../../../agents/roles/client/vector-client.js";
import { cleanup, deployLocal, E18, fund, signer, startFreshHardhatNode, startRpcProxy, tempDir, type DeployParameters, type HardhatChain } from "../chain/harness.js";
import { TS_LOADER } from "../ts-loader.js";
import { reapOnExit } from "../reap.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const RUN_NODE = fileURLToPath(new URL("../../../agents/roles/node/run-node.ts", import.meta.url));
const RUN_VALIDATOR = fileURLToPath(new URL("../../../agents/roles/validator/run-validator.ts", import.meta.url));
const STDERR_TAIL = 32 * 1024;
/**
 * How long a stopped agent gets to exit cleanly before SIGKILL. A clean stop normally takes about a
 * second; e2e-restart checks what a clean stop saved, so a loaded machine must not turn it into a kill.
 */
const STOP_GRACE_MS = 30_000;
/** Default bound on an agent's start (it normally prints `ready` within seconds). */
const READY_TIMEOUT_MS = 180_000;
/** MURI each account of `startNetwork` is funded with. */
export const E2E_FUNDING = 10_000n * E18;

const children = new Set<ChildProcess>();

reapOnExit(children);

export interface AgentProcess {
  readonly pid: number;
  readonly address: Address;
  alive(): boolean;
  /** Sends `signal` to the process group and waits (at most `STOP_GRACE_MS`, then SIGKILL) for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Last lines of stderr (logs), for failure messages. */
  stderr(): string;
}

export interface NodeProcess extends AgentProcess {
  readonly peerId: string;
  readonly multiaddrs: string[];
  /** `/metrics` URL when started with `--metrics-port`. */
  readonly metricsUrl?: string;
}

export interface ValidatorProcess extends AgentProcess {
  readonly metricsUrl: string | null;
}

export interface SpawnNodeOptions {
  deploymentFile: string;
  rpcUrl: string;
  key: Hex;
  dir: string;
  extraArgs?: string[];
  /** Added to the child's environment (e.g. `MURI_NO_SELF_REPAIR`). */
  env?: Record<string, string>;
  readyTimeoutMs?: number;
}

/** Writes a deployment where run-node.ts can read it (bigints as numbers). */
export async function writeDeployment(path: string, d: Deployment): Promise<void> {
  await writeFile(path, JSON.stringify({ ...d, deployBlock: Number(d.deployBlock) }, null, 2));
}

/** Starts a node process and resolves once it printed `ready`. */
export function spawnNode(options: SpawnNodeOptions): Promise<NodeProcess> {
  return spawnAgent<{ address: Address; peerId: string; multiaddrs: string[]; metricsUrl?: string }>(RUN_NODE, "MURI_NODE_KEY", options);
}

/** Starts a validator process (it registers itself) and resolves once it printed `ready`. */
export function spawnValidator(options: SpawnNodeOptions): Promise<ValidatorProcess> {
  return spawnAgent<{ address: Address; metricsUrl: string | null }>(RUN_VALIDATOR, "MURI_VALIDATOR_KEY", options);
}

async function spawnAgent<Ready extends { address: Address }>(script: string, keyVar: string, options: SpawnNodeOptions): Promise<AgentProcess & Ready> {
  const child = spawn(
    process.execPath,
    ["--import", TS_LOADER, script, "--rpc", options.rpcUrl, "--deployment", options.deploymentFile, "--dir", options.dir, ...(options.extraArgs ?? [])],
    {
      cwd: ROOT,
      env: { ...process.env, ...options.env, [keyVar]: options.key },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-STDERR_TAIL)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const timeoutMs = options.readyTimeoutMs ?? READY_TIMEOUT_MS;
  const ready = await new Promise<Ready>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} ${options.dir} not ready after ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      try {
        const msg = JSON.parse(line) as { event?: string } & Ready;
        if (msg.event === "ready") {
          clearTimeout(timer);
          resolve(msg);
        }
      } catch {
        // not ours
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} ${options.dir} exited before ready (${code ?? signal}):\n${stderr}`));
    });
  }).catch(async (err: unknown) => {
    await killGroup(child, exited, "SIGKILL");
    throw err;
  });
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    ...ready,
    pid: child.pid!,
    alive,
    kill: (signal = "SIGTERM") => killGroup(child, exited, signal),
    stderr: () => stderr,
  };
}

async function killGroup(child: ChildProcess, exited: Promise<void>, signal: NodeJS.Signals): Promise<void> {
  const send = (s: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, s);
    } catch {
      // already gone
    }
  };
  if (child.exitCode === null && child.signalCode === null) {
    send(signal);
    const timer = setTimeout(() => send("SIGKILL"), STOP_GRACE_MS);
    await exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

/** Stops every agent process still running (SIGTERM, then SIGKILL after `STOP_GRACE_MS`). */
export async function killAllNodes(): Promise<void> {
  await Promise.all(
    [...children].map((child) => killGroup(child, new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once("exit", () => resolve()))), "SIGTERM")),
  );
}

/** sha256 of a file, hex. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** A file of `bytes` random bytes in `dir`, and its sha256. */
export async function randomFile(dir: string, name: string, bytes: number): Promise<{ path: string; sha256: string }> {
  const path = join(dir, name);
  await writeFile(path, randomBytes(bytes));
  return { path, sha256: await sha256File(path) };
}

/**
 * Every path under `root` (sorted, POSIX) with what a directory get must restore: kind, permission
 * bits, size and sha256 of a file, a symlink's target.
 */
export async function snapshotTree(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (abs: string, rel: string): Promise<void> => {
    for (const name of (await readdir(abs)).sort()) {
      const path = join(abs, name);
      const key = rel ? `${rel}/${name}` : name;
      const st = await lstat(path);
      if (st.isSymbolicLink()) out[key] = `link ${await readlink(path)}`;
      else if (st.isDirectory()) {
        out[key] = `dir ${(st.mode & 0o777).toString(8)}`;
        await walk(path, key);
      } else out[key] = `file ${(st.mode & 0o777).toString(8)} ${st.size} ${await sha256File(path)}`;
    }
  };
  await walk(root, "");
  return out;
}

/** Polls `fn` every `stepMs` until it returns a value (not undefined or false); throws after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined | false>, stepMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Mines blocks (`hardhat_mine`) until the head is `block`; nothing if it is there already. */
export async function mineTo(publicClient: MuriPublicClient, block: bigint): Promise<void> {
  const head = await publicClient.getBlockNumber({ cacheTime: 0 });
  if (head < block) await publicClient.request({ method: "hardhat_mine" as never, params: [`0x${(block - head).toString(16)}`] as never });
}

/**
 * Cuts a search task's windows short once what a test waits for is on chain: when every one of
 * `answering` has committed, mines to the commit deadline (reveals open in the next block); when
 * they have all revealed, mines to the reveal deadline; then, if `settled` is given, waits for it
 * (e.g. a dispute landed) and mines to the dispute deadline, so the task can be finalized. Without
 * `settled` the dispute window runs its course (a validator is checking the reveals). The windows
 * are deployed long for a loaded machine; this keeps their safety and skips the idle rest.
 * Each jump is a single window (16 blocks in e2e-vector), well inside a proof period and its
 * grace, so no member misses a proof because of it.
 */
export async function hurryTask(
  net: Pick<Network, "read" | "mineTo">,
  task: bigint,
  answering: readonly Address[],
  settled?: () => Promise<boolean>,
  timeoutMs = 120_000,
): Promise<void> {
  const info = await net.read.searchMarket.read.task([task]);
  const states = () => Promise.all(answering.map((m) => net.read.searchMarket.read.memberTask([task, m])));
  const zero = `0x${"0".repeat(64)}`;
  await waitFor(`task ${task}: commitments of ${answering.length} members`, timeoutMs, async () => (await states()).every((s) => s.commitment !== zero), 200);
  await net.mineTo(BigInt(info.commitDeadline));
  await waitFor(`task ${task}: reveals of ${answering.length} members`, timeoutMs, async () => (await states()).every((s) => s.revealed), 200);
  await net.mineTo(BigInt(info.revealDeadline));
  if (settled === undefined) return;
  await waitFor(`task ${task}: settled`, timeoutMs, async () => (await settled()) || undefined, 200);
  await net.mineTo(BigInt(info.disputeDeadline));
}

/**
 * An on-chain search of `query` that a member named `liar` lies in: submits the task, waits until
 * every member committed and revealed and `liar`'s entry was disputed, mining each window's idle rest
 * (`hurryTask`), and returns the client's answer, which must be of that task.
 */
export async function disputedSearch(
  net: Pick<Network, "read" | "mineTo">,
  client: Pick<VectorClient, "searchOnChain">,
  maguId: bigint,
  query: ArrayLike<number>,
  k: number,
  liar: Address,
): Promise<OnChainSearchResult> {
  const task = (await net.read.searchMarket.read.taskCount()) + 1n;
  const pending = client.searchOnChain(maguId, query, k, 10n ** 18n);
  pending.catch(() => undefined); // awaited below
  await waitFor("the task submitted", 60_000, async () => ((await net.read.searchMarket.read.taskCount()) >= task ? true : undefined), 200);
  const members = (await net.read.maguRegistry.read.maguInfo([maguId])).members;
  await hurryTask(net, task, members, async () => (await net.read.searchMarket.read.memberTask([task, liar])).disputed);
  const answer = await pending;
  if (answer.task !== task) throw new Error(`the answer is of task ${answer.task}, not of the task submitted (${task})`);
  return answer;
}

const PROVEN = 1;

/**
 * The first period every one of `members` is challenged in: the latest of their join periods as
 * `MaguRegistry.membership` reports them, which already accounts for the Magu's data period (a first
 * `commitData` in a later period than `formMagu` moves the first challenge one period further).
 */
export async function firstChallengedPeriod(read: MuriContracts<MuriPublicClient>, maguId: bigint, members: readonly Address[]): Promise<bigint> {
  let first = 0n;
  for (const member of members) {
    const m = await read.maguRegistry.read.membership([maguId, member]);
    if (!m.active) throw new Error(`${member} is not an active member of Magu ${maguId}`);
    if (m.joinPeriod > first) first = m.joinPeriod;
  }
  return first;
}

/**
 * Waits until `member` proved `period` of `maguId` (`proofState` 1). Fails at once, with the agent's
 * log, if the period's proof deadline passed first, and after `timeoutMs` of wall-clock time (a bound
 * on a failure only: when the test moves the chain itself, the deadline cannot pass meanwhile).
 */
export async function waitProven(
  { read, publicClient }: Pick<Network, "read" | "publicClient">,
  maguId: bigint,
  member: Address,
  period: bigint,
  timeoutMs: number,
  agent?: AgentProcess,
): Promise<void> {
  const deadline = await read.challengeManager.read.proofDeadline([period]);
  await waitFor(`${member} proving period ${period} of Magu ${maguId} (deadline block ${deadline})`, timeoutMs, async () => {
    if ((await read.challengeManager.read.proofState([maguId, member, period])) === PROVEN) return true;
    const head = await publicClient.getBlockNumber({ cacheTime: 0 });
    if (head >= deadline) throw new Error(`${member} did not prove period ${period} of Magu ${maguId} before its deadline (block ${deadline}, head ${head})${agent ? `:\n${agent.stderr().slice(-4000)}` : ""}`);
    return undefined;
  }, 200);
}

/** JSON log lines of an agent's stderr whose `msg` is `msg`. */
export function logLines(stderr: string, msg: string): Record<string, unknown>[] {
  return stderr
    .split("\n")
    .filter((l) => l.includes(`"msg":${JSON.stringify(msg)}`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

export interface NetworkOptions {
  /** Prefix of the temporary directory. */
  prefix: string;
  /** Node processes: node i (0-based) uses account i + 1 and directory `node-<i + 1>`. */
  nodes: number;
  /** Further accounts (indices into `chain.keys`) funded with `E2E_FUNDING` MURI: clients, validators, spares. */
  fund?: number[];
  /** Extra environment of node i (0-based). */
  nodeEnv?: (i: number) => Record<string, string> | undefined;
  /** Extra arguments of node i (0-based), e.g. `--metrics-port 0`. */
  nodeArgs?: (i: number) => string[] | undefined;
  /**
   * Agents (nodes and validators) reach the chain through an RPC proxy (`Network.proxy`) that a
   * test can take down (`proxy.down = true`), as a provider's outage.
   */
  rpcProxy?: boolean;
  /** Interval mining (a block every `blockMs`, automine stays on, as `muri devnet`); off when unset. */
  blockMs?: number;
  /**
   * With `blockMs`: turn automine off, so blocks come only every `blockMs` whatever the load (block
   * counts then measure time, as on a real chain; windows counted in blocks, such as the search
   * tasks' commit and reveal windows, do not shrink when many transactions are sent).
   */
  automine?: boolean;
  /**
   * Deployment parameters replacing deploy/parameters/devnet.json's (longer periods, a proof grace,
   * longer search windows...): room for agents slowed down by a loaded machine.
   */
  parameters?: DeployParameters;
}

export interface Network {
  chain: HardhatChain;
  /** The agents' RPC proxy, with `rpcProxy`. */
  proxy?: Awaited<ReturnType<typeof startRpcProxy>>;
  deployment: Deployment;
  deploymentFile: string;
  dir: string;
  /** Node processes by index (replaced in place by `startNode` on a restart). */
  nodes: NodeProcess[];
  /** Read-only contract handles. */
  read: MuriContracts<MuriPublicClient>;
  publicClient: MuriPublicClient;
  /** Current block, uncached. */
  head(): Promise<bigint>;
  /** Mines blocks (`hardhat_mine`) until the head is `block`; nothing if it is there already. */
  mineTo(block: bigint): Promise<void>;
  nodeKey(i: number): Hex;
  nodeDir(i: number): string;
  /** Starts (or restarts, same key and directory) node i and puts it in `nodes[i]`. */
  startNode(i: number, env?: Record<string, string>): Promise<NodeProcess>;
  /** Starts a validator process with account `keyIndex` in directory `validator-<keyIndex>`. */
  startValidator(keyIndex: number, extraArgs?: string[]): Promise<ValidatorProcess>;
}

/** `hardhat node`, the deployment, funded accounts and `nodes` node processes (started in parallel). */
export async function startNetwork(options: NetworkOptions): Promise<Network> {
  const chain = await startFreshHardhatNode();
  const deployment = await deployLocal(chain.rpcUrl, undefined, options.parameters);
  const dir = await tempDir(options.prefix);
  const deploymentFile = join(dir, "deployment.json");
  await writeDeployment(deploymentFile, { ...deployment, rpcUrl: chain.rpcUrl });
  const publicClient = signer(chain.rpcUrl, deployment, chain.keys[0]!).publicClient;
  if (options.blockMs !== undefined) await publicClient.request({ method: "evm_setIntervalMining" as never, params: [options.blockMs] as never });
  if (options.blockMs !== undefined && options.automine === false) await publicClient.request({ method: "evm_setAutomine" as never, params: [false] as never });
  const nodeKey = (i: number): Hex => chain.keys[i + 1]!;
  const nodeDir = (i: number): string => join(dir, `node-${i + 1}`);
  // One deployer nonce: fund one account at a time.
  const indices = [...Array.from({ length: options.nodes }, (_, i) => i + 1), ...(options.fund ?? [])];
  for (const i of indices) await fund(chain.rpcUrl, deployment, chain.keys[0]!, signer(chain.rpcUrl, deployment, chain.keys[i]!).account.address, E2E_FUNDING);
  const proxy = options.rpcProxy === true ? await startRpcProxy(chain.rpcUrl) : undefined;
  const agentRpc = proxy?.url ?? chain.rpcUrl;
  const nodes: NodeProcess[] = [];
  const startNode = async (i: number, env?: Record<string, string>): Promise<NodeProcess> => {
    const node = await spawnNode({ deploymentFile, rpcUrl: agentRpc, key: nodeKey(i), dir: nodeDir(i), env: env ?? options.nodeEnv?.(i), extraArgs: options.nodeArgs?.(i) });
    nodes[i] = node;
    return node;
  };
  await Promise.all(Array.from({ length: options.nodes }, (_, i) => startNode(i)));
  return {
    chain,
    proxy,
    deployment,
    deploymentFile,
    dir,
    nodes,
    read: getMuriContracts(deployment.contracts, { publicClient }),
    publicClient,
    head: () => publicClient.getBlockNumber({ cacheTime: 0 }),
    mineTo: (block) => mineTo(publicClient, block),
    nodeKey,
    nodeDir,
    startNode,
    startValidator: (keyIndex, extraArgs) =>
      spawnValidator({ deploymentFile, rpcUrl: agentRpc, key: chain.keys[keyIndex]!, dir: join(dir, `validator-${keyIndex}`), extraArgs }),
  };
}

/** A started storage client of account `keyIndex` (fund it through `NetworkOptions.fund`). */
export async function startClient(net: Network, keyIndex: number): Promise<StorageClient> {
  const client = createClient({ dir: join(net.dir, `client-${keyIndex}`), deployment: net.deployment, rpcUrl: net.chain.rpcUrl, privateKey: net.chain.keys[keyIndex]! });
  await client.start();
  return client;
}

/**
 * The peak resident memory `muri serve` may reach while it streams files of any size, MiB (checked
 * by e2e-http-gib.test.ts and bench/http.ts): its idle RSS (150-190 MiB: two libp2p nodes, viem,
 * the vector client) + its staging budget (`CLIENT_DEFAULTS.serveStagingBytes`, 256 MiB) + up to
 * ~320 MiB of buffers (HTTP, stripes being encoded and decoded, GC slack on a loaded machine). A
 * daemon that held a 1 GiB body or file would need over 1 GiB more than idle.
 */
export const SERVE_RSS_BOUND_MIB = 768;

/** Peak (VmHWM) and current (VmRSS) resident memory of a process, MiB, from /proc/PID/status. */
export async function memoryOf(pid: number): Promise<{ peakMiB: number; rssMiB: number }> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const kb = (field: string): number => Number(/^\S+:\s+([0-9]+) kB$/m.exec(status.split("\n").find((l) => l.startsWith(`${field}:`)) ?? "")?.[1] ?? NaN);
  return { peakMiB: Math.round(kb("VmHWM") / 1024), rssMiB: Math.round(kb("VmRSS") / 1024) };
}

/** Deletes the files under `dir` (recursively) whose name `select` accepts (default: all); returns how many. */
export async function deleteFiles(dir: string, select: (name: string) => boolean = () => true): Promise<number> {
  let deleted = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile() && select(entry.name)) {
      await rm(join(entry.parentPath, entry.name));
      deleted++;
    }
  }
  return deleted;
}

/**
 * The `after` hook of an e2e file: keeps the agents' logs (`saveLogs`), stops the client and every
 * agent process, then the chain, and removes the temporary directories.
 */
export async function tearDown(logPrefix: string, agents: readonly (AgentProcess | undefined)[], client?: StorageClient): Promise<void> {
  await saveLogs(logPrefix, agents);
  await client?.stop();
  await killAllNodes();
  await cleanup();
}

/** With MURI_E2E_LOGS=<dir>: keeps each agent's last log lines there as `<prefix>-<i>.log`. */
export async function saveLogs(prefix: string, agents: readonly (AgentProcess | undefined)[]): Promise<void> {
  const logs = process.env.MURI_E2E_LOGS;
  if (logs === undefined) return;
  await Promise.all(agents.map((a, i) => (a ? writeFile(join(logs, `${prefix}-${i + 1}.log`), a.stderr()) : undefined)));
}
