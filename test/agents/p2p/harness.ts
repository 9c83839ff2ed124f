/**
 * Spawns peer-process.ts children and talks to them over JSON lines. Every child is tracked so a
 * test's `after` hook (or a failure) can kill whatever is left; every call has a timeout.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";
import type { PeerProcessConfig } from "./peer-process.js";
import { TS_LOADER } from "../ts-loader.js";

const PEER_SCRIPT = fileURLToPath(new URL("./peer-process.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const STDERR_TAIL = 16 * 1024;

/** Error a child reported for a command. */
export class PeerCommandError extends Error {
  readonly code: string | undefined;
  readonly remoteName: string;
  readonly context: unknown;
  constructor(error: { name: string; code?: string; message: string; context?: unknown }) {
    super(`${error.name}: ${error.message}`);
    this.name = "PeerCommandError";
    this.remoteName = error.name;
    this.code = error.code;
    this.context = error.context;
  }
}

export interface PeerProcess {
  readonly pid: number;
  readonly peerId: string;
  readonly multiaddrs: string[];
  /** Sends a command and waits (at most `timeoutMs`) for its answer. */
  call<T = unknown>(cmd: string, args?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** True while the process runs. */
  alive(): boolean;
  /** Asks the child to stop; kills it if it has not exited within 5 s. */
  stop(): Promise<void>;
  /** Last lines the child wrote to stderr (for failure messages). */
  stderr(): string;
}

const children = new Set<ChildProcessWithoutNullStreams>();

function exited(child: ChildProcessWithoutNullStreams): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcessWithoutNullStreams, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Kills every child still running (SIGKILL after a 3 s grace period). */
export async function killAllPeers(): Promise<void> {
  await Promise.all(
    [...children].map(async (child) => {
      if (!exited(child)) {
        child.kill("SIGTERM");
        if (!(await waitExit(child, 3_000))) {
          child.kill("SIGKILL");
          await waitExit(child, 3_000);
        }
      }
      children.delete(child);
    }),
  );
}

/**
 * Starts a peer process and waits (at most `readyTimeoutMs`, a bound on a failure: it normally
 * listens within a few seconds) for it to listen.
 */
export async function spawnPeer(config: PeerProcessConfig, readyTimeoutMs = 60_000): Promise<PeerProcess> {
  const child = spawn(process.execPath, ["--import", TS_LOADER, PEER_SCRIPT, JSON.stringify(config)], {
    cwd: ROOT,
    stdio: ["pipe", "pipe", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let stderrTail = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (chunk: string) => {
    stderrTail = (stderrTail + chunk).slice(-STDERR_TAIL);
  });

  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  let ready: ((info: { peerId: string; multiaddrs: string[] }) => void) | undefined;
  const readyPromise = new Promise<{ peerId: string; multiaddrs: string[] }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`peer did not start within ${readyTimeoutMs} ms\n${stderrTail}`)), readyTimeoutMs);
    ready = (info) => {
      clearTimeout(timer);
      resolve(info);
    };
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`peer exited with ${code} before it was ready\n${stderrTail}`));
    });
  });

  const lines = createInterface({ input: child.stdout });
  lines.on("line", (line) => {
    let msg: { event?: string; id?: number; ok?: boolean; result?: unknown; error?: never; peerId?: string; multiaddrs?: string[] };
    try {
      msg = JSON.parse(line) as typeof msg;
    } catch {
      return;
    }
    if (msg.event === "ready") {
      ready?.({ peerId: msg.peerId!, multiaddrs: msg.multiaddrs! });
      return;
    }
    const entry = msg.id !== undefined ? pending.get(msg.id) : undefined;
    if (entry === undefined) return;
    pending.delete(msg.id!);
    clearTimeout(entry.timer);
    if (msg.ok === true) entry.resolve(msg.result);
    else entry.reject(new PeerCommandError(msg.error!));
  });
  child.once("exit", (code, signal) => {
    for (const [id, entry] of pending) {
      clearTimeout(entry.timer);
      entry.reject(new Error(`peer exited (${code ?? signal}) during command ${id}\n${stderrTail}`));
    }
    pending.clear();
  });

  let info: { peerId: string; multiaddrs: string[] };
  try {
    info = await readyPromise;
  } catch (err) {
    child.kill("SIGKILL");
    throw err;
  }
  let nextId = 1;
  return {
    pid: child.pid!,
    peerId: info.peerId,
    multiaddrs: info.multiaddrs,
    // The default bound exceeds the peer's own 60 s deadlines (fetch, push), so those report first.
    call<T>(cmd: string, args: Record<string, unknown> = {}, timeoutMs = 90_000): Promise<T> {
      if (exited(child)) return Promise.reject(new Error(`peer ${info.peerId} is not running`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`command ${cmd} timed out after ${timeoutMs} ms\n${stderrTail}`));
        }, timeoutMs);
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
        child.stdin.write(`${JSON.stringify({ id, cmd, args })}\n`);
      });
    },
    alive: () => !exited(child),
    async stop() {
      if (exited(child)) return;
      child.stdin.write(`${JSON.stringify({ id: 0, cmd: "stop" })}\n`);
      child.stdin.end();
      if (!(await waitExit(child, 5_000))) {
        child.kill("SIGKILL");
        await waitExit(child, 3_000);
      }
    },
    stderr: () => stderrTail,
  };
}
