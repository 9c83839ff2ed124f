/**
 * Child processes of a devnet: each runs in its own process group (so stopping it also stops
 * whatever it spawned), writes its logs to a file, and is stopped with SIGTERM, then SIGKILL after
 * a timeout. Every live child is also SIGKILLed if this process exits without stopping them.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

/** The repository root (agents/cli/devnet/ is three levels down). */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Hardhat's CLI script, run with this process's node (the chain, the build, the deployment). */
export const HARDHAT_CLI = join(ROOT, "node_modules", "hardhat", "dist", "src", "cli.js");

const live = new Set<ChildProcess>();

process.once("exit", () => {
  for (const child of live) signalGroup(child, "SIGKILL");
});

export interface Managed {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves with the exit code (or signal name) once the process exited. */
  readonly exited: Promise<number | string>;
  alive(): boolean;
  /** SIGTERM to the group, SIGKILL after `timeoutMs`; resolves once the process exited. */
  stop(timeoutMs: number): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  logFile: string;
  /** Pipe stdout (to read a ready line) instead of sending it to the log file. */
  pipeStdout?: boolean;
}

/** Starts `node <args>` from the repository root in its own process group, stderr to `logFile`. */
export function spawnManaged(options: SpawnOptions): Managed {
  const fd = openSync(options.logFile, "a");
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, options.args, {
      cwd: ROOT,
      env: options.env ?? process.env,
      stdio: ["ignore", options.pipeStdout ? "pipe" : fd, fd],
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  if (child.pid === undefined) throw new Error(`${options.name} could not be started`);
  live.add(child);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      live.delete(child);
      resolve(code ?? signal ?? "unknown");
    });
  });
  // Keep draining stdout after the ready line so the child never blocks on a full pipe.
  child.stdout?.resume();
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    name: options.name,
    child,
    pid: child.pid,
    logFile: options.logFile,
    exited,
    alive,
    async stop(timeoutMs) {
      if (!alive()) return;
      signalGroup(child, "SIGTERM");
      const timer = setTimeout(() => signalGroup(child, "SIGKILL"), timeoutMs);
      await exited;
      clearTimeout(timer);
      // Anything the child left behind in its group.
      signalGroup(child, "SIGKILL");
    },
  };
}

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // group already gone
  }
}

/** The first stdout line of `m` that parses as JSON with `event: "ready"`; rejects on exit, timeout or abort. */
export function readyLine<T>(m: Managed, timeoutMs: number, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const lines = createInterface({ input: m.child.stdout! });
    const finish = (err: Error | undefined, value?: T) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      lines.close();
      m.child.stdout?.resume();
      if (err) reject(err);
      else resolve(value as T);
    };
    const timer = setTimeout(() => finish(new Error(`${m.name} not ready after ${timeoutMs} ms (log: ${m.logFile})`)), timeoutMs);
    const onAbort = () => finish(new Error("interrupted"));
    signal.addEventListener("abort", onAbort, { once: true });
    lines.on("line", (line) => {
      try {
        const msg = JSON.parse(line) as { event?: string };
        if (msg.event === "ready") finish(undefined, msg as T);
      } catch {
        // not a JSON line
      }
    });
    void m.exited.then((code) => finish(new Error(`${m.name} exited before it was ready (${code}); see ${m.logFile}`)));
  });
}

/** Runs `m` to its end; rejects when it fails, takes longer than `timeoutMs`, or `signal` aborts. */
export async function runToEnd(m: Managed, timeoutMs: number, signal: AbortSignal): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const outcome = await Promise.race([
    m.exited,
    new Promise<string>((resolve) => (timer = setTimeout(() => resolve("timeout"), timeoutMs))),
    new Promise<string>((resolve) => {
      onAbort = () => resolve("interrupted");
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    }),
  ]);
  clearTimeout(timer);
  if (onAbort) signal.removeEventListener("abort", onAbort);
  if (outcome === 0) return;
  await m.stop(2_000);
  if (outcome === "interrupted") throw new Error("interrupted");
  throw new Error(`${m.name} failed (${outcome === "timeout" ? `no result after ${timeoutMs} ms` : `exit ${outcome}`}); see ${m.logFile}`);
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

/** Sleeps `ms`, or less when `signal` aborts. */
export function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}
