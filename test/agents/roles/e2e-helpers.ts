/**
 * Node processes for end-to-end tests: spawns agents/roles/run-node.ts, waits for its `ready`
 * line, and tracks every child so `killAllNodes()` (an `after` hook) leaves nothing running.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { Address, Hex } from "viem";
import type { Deployment } from "../../../agents/chain/index.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const RUN_NODE = fileURLToPath(new URL("../../../agents/roles/run-node.ts", import.meta.url));
const STDERR_TAIL = 32 * 1024;

const children = new Set<ChildProcess>();

process.once("exit", () => {
  for (const child of children) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
});

export interface NodeProcess {
  readonly pid: number;
  readonly address: Address;
  readonly peerId: string;
  readonly multiaddrs: string[];
  alive(): boolean;
  /** Sends `signal` to the process group and waits (at most 10 s, then SIGKILL) for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Last lines of stderr (logs), for failure messages. */
  stderr(): string;
}

export interface SpawnNodeOptions {
  deploymentFile: string;
  rpcUrl: string;
  key: Hex;
  dir: string;
  extraArgs?: string[];
  readyTimeoutMs?: number;
}

/** Writes a deployment where run-node.ts can read it (bigints as numbers). */
export async function writeDeployment(path: string, d: Deployment): Promise<void> {
  await writeFile(path, JSON.stringify({ ...d, deployBlock: Number(d.deployBlock) }, null, 2));
}

/** Starts a node process and resolves once it printed `ready`. */
export async function spawnNode(options: SpawnNodeOptions): Promise<NodeProcess> {
  const child = spawn(
    process.execPath,
    ["--import", "tsx", RUN_NODE, "--rpc", options.rpcUrl, "--deployment", options.deploymentFile, "--dir", options.dir, ...(options.extraArgs ?? [])],
    {
      cwd: ROOT,
      env: { ...process.env, MURI_NODE_KEY: options.key },
      stdio: ["ignore", "pipe", "pipe"],
      detached: true,
    },
  );
  children.add(child);
  let stderr = "";
  child.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-STDERR_TAIL)));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const timeoutMs = options.readyTimeoutMs ?? 90_000;
  const ready = await new Promise<{ address: Address; peerId: string; multiaddrs: string[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`node ${options.dir} not ready after ${timeoutMs} ms:\n${stderr}`)), timeoutMs);
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      try {
        const msg = JSON.parse(line) as { event?: string; address: Address; peerId: string; multiaddrs: string[] };
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
      reject(new Error(`node ${options.dir} exited before ready (${code ?? signal}):\n${stderr}`));
    });
  }).catch(async (err: unknown) => {
    await killGroup(child, exited, "SIGKILL");
    throw err;
  });
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  return {
    pid: child.pid!,
    ...ready,
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
    const timer = setTimeout(() => send("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
  children.delete(child);
}

/** Stops every node process still running (SIGTERM, then SIGKILL after 10 s). */
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
