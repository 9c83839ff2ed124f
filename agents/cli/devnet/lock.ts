/**
 * One devnet per directory: `DIR/devnet.pid` holds the pid of the devnet that owns it, created
 * exclusively. A lock whose process is gone (the devnet was SIGKILLed) is taken over. The same
 * pid lock guards the contracts' build (contracts-build.ts).
 */
import { readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { CliError } from "../errors.js";

export const LOCK_FILE = "devnet.pid";

export interface DirLock {
  readonly path: string;
  release(): void;
}

export function acquireLock(dir: string): DirLock {
  const path = join(dir, LOCK_FILE);
  const lock = tryPidLock(path);
  if (lock) return lock;
  const owner = Number.parseInt(readFileSafe(path), 10);
  if (Number.isSafeInteger(owner) && owner > 0 && isAlive(owner)) {
    throw new CliError(
      "ERR_DEVNET_RUNNING",
      `a devnet is already running in ${resolve(dir)} (pid ${owner}): stop it first (Ctrl-C, or kill ${owner}) or pass another --dir`,
    );
  }
  throw new CliError("ERR_DEVNET_RUNNING", `could not lock ${path}: another devnet is starting in ${resolve(dir)}`);
}

/**
 * Creates `path` exclusively holding this pid; a lock file whose process is gone is taken over.
 * Undefined while a live process holds it (or another process took a stale one over first).
 */
export function tryPidLock(path: string): DirLock | undefined {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      writeFileSync(path, `${process.pid}\n`, { flag: "wx" });
      return {
        path,
        release() {
          try {
            if (readFileSync(path, "utf8").trim() === String(process.pid)) unlinkSync(path);
          } catch {
            // already gone
          }
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const owner = Number.parseInt(readFileSafe(path), 10);
    if (Number.isSafeInteger(owner) && owner > 0 && isAlive(owner)) return undefined;
    // Stale: its owner is gone.
    try {
      unlinkSync(path);
    } catch {
      // someone else removed it
    }
  }
  return undefined;
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
