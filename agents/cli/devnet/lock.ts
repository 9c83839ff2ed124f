/**
 * One devnet per directory: `DIR/devnet.pid` holds the pid of the devnet that owns it, created
 * exclusively. A lock whose process is gone (the devnet was SIGKILLed) is taken over.
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
    if (Number.isSafeInteger(owner) && owner > 0 && isAlive(owner)) {
      throw new CliError(
        "ERR_DEVNET_RUNNING",
        `a devnet is already running in ${resolve(dir)} (pid ${owner}): stop it first (Ctrl-C, or kill ${owner}) or pass another --dir`,
      );
    }
    // Stale: its owner is gone.
    try {
      unlinkSync(path);
    } catch {
      // someone else removed it
    }
  }
  throw new CliError("ERR_DEVNET_RUNNING", `could not lock ${path}: another devnet is starting in ${resolve(dir)}`);
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
