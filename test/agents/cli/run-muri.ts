/**
 * Runs the real `muri` command (bin/muri.js) as a child process under this (Node 22) node, with the
 * MURI_* variables of the test process cleared, and collects its output. Shared by the CLI and
 * end-to-end tests.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const MURI_BIN = join(ROOT, "bin", "muri.js");
/** Bounds a failure only: a command normally exits within a few seconds (tsx start-up included). */
const DEFAULT_TIMEOUT_MS = 120_000;

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `muri ...args` to its end (SIGKILL and a rejection after `timeoutMs`). */
export function muri(args: string[], env: Record<string, string> = {}, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<CliRun> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MURI_")));
  const child = spawn(process.execPath, [MURI_BIN, ...args], { cwd: ROOT, env: { ...clean, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (c: Buffer) => (stdout += c.toString()));
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`muri ${args.join(" ")} did not exit within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.once("exit", (code) => {
      clearTimeout(timer);
      // let the pipes drain
      setImmediate(() => resolve({ code, stdout, stderr }));
    });
  });
}

/** A long-running `muri` command (`muri serve`): its first stdout line, its output so far, and a stop. */
export interface RunningMuri {
  readonly ready: Record<string, unknown>;
  /** Its process id (a benchmark reads its memory from /proc). */
  readonly pid: number;
  stderr(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `muri ...args` (with --json) and resolves once it printed its ready line (a JSON object). */
export function startMuri(args: string[], timeoutMs = DEFAULT_TIMEOUT_MS): Promise<RunningMuri> {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("MURI_")));
  const child = spawn(process.execPath, [MURI_BIN, ...args, "--json"], { cwd: ROOT, env: clean, stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`muri ${args.join(" ")} printed no ready line within ${timeoutMs} ms\n${stderr}`));
    }, timeoutMs);
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString();
      const line = stdout.split("\n")[0]!;
      if (!stdout.includes("\n")) return;
      clearTimeout(timer);
      try {
        resolve({
          ready: JSON.parse(line) as Record<string, unknown>,
          pid: child.pid!,
          stderr: () => stderr,
          stop: async () => {
            child.kill("SIGTERM");
            return exited;
          },
        });
      } catch {
        child.kill("SIGKILL");
        reject(new Error(`muri ${args.join(" ")}: "${line}" is not a JSON ready line\n${stderr}`));
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`muri ${args.join(" ")} exited (${code}) before it was ready\n${stderr}`));
    });
  });
}
