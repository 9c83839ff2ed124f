/**
 * The contract artifacts a devnet deploys: present and newer than every source, or built first.
 *
 * A fresh clone after `npm install` has no `artifacts/` (they are built, not committed), and a
 * checkout that changed a contract has stale ones; Ignition then fails with Hardhat's HHE1000
 * ("Artifact for contract ... not found") or deploys old bytecode. So before deploying, the devnet
 * runs `hardhat build --no-tests` (the Solidity tests are not needed to deploy) when a deployed
 * contract has no artifact or a `.sol` under `contracts/` (or `hardhat.config.ts`) is newer than
 * the last such build; Hardhat's own cache then recompiles only what changed.
 *
 * Devnets started at once from one checkout (tests do) must not compile into `artifacts/` together:
 * the build holds `cache/muri-build.lock` (created exclusively, holding its pid; a lock whose
 * process is gone is taken over), and a devnet that finds it held waits for it, then checks again.
 */
import { mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { muriContractNames } from "../../chain/abis.js";
import { tryPidLock } from "./lock.js";
import { HARDHAT_CLI, pause, ROOT, runToEnd, spawnManaged } from "./processes.js";

const LOCK = join(ROOT, "cache", "muri-build.lock");
/** Touched after each build this module ran; relative to the root. */
const STAMP = join("cache", "muri-build.stamp");
/** A cold build of the contracts with wasm solc and via-IR takes about a minute on 2 cores. */
export const BUILD_MS = 15 * 60_000;
const LOCK_POLL_MS = 500;

/**
 * Why the artifacts must be (re)built, or undefined when every deployed contract has one and no
 * source changed since the last build this module ran (`cache/muri-build.stamp`). Hardhat rebuilds
 * only what changed (by content), so a stamp that is merely older than a touched file costs a few
 * seconds.
 */
export async function staleArtifacts(root = ROOT): Promise<string | undefined> {
  for (const name of Object.values(muriContractNames)) {
    const artifact = join(root, "artifacts", "contracts", `${name}.sol`, `${name}.json`);
    try {
      await stat(artifact);
    } catch {
      return `no artifact for ${name}`;
    }
  }
  let built: number;
  try {
    built = (await stat(join(root, STAMP))).mtimeMs;
  } catch {
    return "no build recorded in this checkout";
  }
  const newest = await newestMtime([join(root, "contracts"), join(root, "hardhat.config.ts")]);
  if (newest.mtimeMs > built) return `${relative(root, newest.path)} changed since the last build`;
  return undefined;
}

/**
 * Builds the contracts when `staleArtifacts` says so; `onBuild` hears the reason first. Throws
 * with the command to run by hand when the build fails (its output is in `logFile`).
 */
export async function ensureContractsBuilt(init: { logFile: string; signal: AbortSignal; onBuild?: (reason: string) => void }): Promise<void> {
  const deadline = Date.now() + BUILD_MS;
  for (;;) {
    const reason = await staleArtifacts();
    if (reason === undefined) return;
    await mkdir(join(ROOT, "cache"), { recursive: true });
    const lock = tryPidLock(LOCK);
    if (!lock) {
      if (Date.now() > deadline) throw new Error(`another build of the contracts held ${LOCK} for ${BUILD_MS} ms: remove it if no build is running`);
      await pause(LOCK_POLL_MS, init.signal);
      if (init.signal.aborted) throw new Error("interrupted");
      continue;
    }
    try {
      init.onBuild?.(reason);
      const build = spawnManaged({ name: "hardhat build", args: [HARDHAT_CLI, "build", "--no-tests", "--quiet"], logFile: init.logFile });
      try {
        await runToEnd(build, Math.max(1, deadline - Date.now()), init.signal);
      } catch (err) {
        throw new Error(`${(err as Error).message}; build by hand with \`npm run compile\``, { cause: err });
      }
      await writeFile(join(ROOT, STAMP), `${new Date().toISOString()}\n`);
    } finally {
      lock.release();
    }
    const still = await staleArtifacts();
    if (still !== undefined) throw new Error(`hardhat build finished but ${still}; build by hand with \`npm run compile\``);
    return;
  }
}

async function newestMtime(paths: string[]): Promise<{ path: string; mtimeMs: number }> {
  let newest = { path: "", mtimeMs: 0 };
  for (const path of paths) {
    const s = await stat(path);
    if (s.isDirectory()) {
      const entries = await readdir(path, { withFileTypes: true });
      const children = entries.filter((e) => e.isDirectory() || e.name.endsWith(".sol")).map((e) => join(path, e.name));
      const inner = await newestMtime(children);
      if (inner.mtimeMs > newest.mtimeMs) newest = inner;
    } else if (s.mtimeMs > newest.mtimeMs) {
      newest = { path, mtimeMs: s.mtimeMs };
    }
  }
  return newest;
}
