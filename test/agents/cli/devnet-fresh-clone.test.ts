/**
 * `muri devnet` in a checkout that lacks a contract's artifact, as a new user meets it right after
 * the README's install (issue 9: Ignition failed with HHE1000, "Artifact for contract MuriToken not
 * found"): a copy of the checkout's sources with the installed `node_modules/` beside them, whose
 * artifacts lack MuriToken's. The devnet sees it, compiles the contracts itself (saying so),
 * deploys and comes up; SIGTERM stops it. Then the build stamp: current right after, stale once a
 * contract source is touched.
 * The copy keeps the other contracts' artifacts and Hardhat's compile cache (its paths moved to
 * the copy), so Hardhat recompiles MuriToken alone: the devnet's path is the same as with no
 * artifact at all (a missing artifact, then `hardhat build`), without a second full via-IR compile
 * of every contract (about 100 s of CPU, which `npm test` already spends once in its own build, as
 * a fresh clone's `npm start` does). Should Hardhat's cache format change, the copy's build is a
 * full one: slower, still correct.
 */
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { copyFile, cp, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { after, describe, test } from "node:test";
import { staleArtifacts } from "../../../agents/cli/devnet/contracts-build.js";
import { ROOT } from "./run-muri.js";

/** A cold via-IR compile with wasm solc is about a minute here; a loaded machine may take several. */
const READY_MS = 15 * 60_000;
const STOP_MS = 60_000;

let work: string | undefined;
after(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** The checkout's tracked and untracked-but-not-ignored files (what a clone plus local edits holds). */
async function copySources(to: string): Promise<void> {
  const files = execFileSync("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], { cwd: ROOT, encoding: "utf8" })
    .split("\0")
    .filter((f) => f !== "" && existsSync(join(ROOT, f)));
  for (const f of files) {
    await mkdir(dirname(join(to, f)), { recursive: true });
    await copyFile(join(ROOT, f), join(to, f));
  }
  await symlink(join(ROOT, "node_modules"), join(to, "node_modules"), "dir");
}

/** The checkout's artifacts without MuriToken's, and Hardhat's compile cache with its paths moved to `to`. */
async function copyArtifactsButMuriToken(to: string): Promise<void> {
  const missing = join(ROOT, "artifacts", "contracts", "MuriToken.sol");
  await cp(join(ROOT, "artifacts"), join(to, "artifacts"), { recursive: true, filter: (src) => src !== missing && !src.startsWith(missing + "/") });
  const cache = await readFile(join(ROOT, "cache", "compile-cache.json"), "utf8");
  await mkdir(join(to, "cache"), { recursive: true });
  await writeFile(join(to, "cache", "compile-cache.json"), cache.replaceAll(JSON.stringify(ROOT.replace(/\/$/, "")).slice(1, -1), JSON.stringify(to).slice(1, -1)));
}

describe("muri devnet in a checkout without MuriToken's artifact", { timeout: READY_MS + 2 * STOP_MS }, () => {
  test("compiles the contracts, then deploys and runs", async () => {
    work = await mkdtemp(join(tmpdir(), "muri-fresh-clone-"));
    const clone = join(work, "clone");
    await copySources(clone);
    await copyArtifactsButMuriToken(clone);
    assert.equal(existsSync(join(clone, "artifacts", "contracts", "MuriToken.sol")), false);
    assert.equal(await staleArtifacts(clone), "no artifact for MuriToken");

    const child = spawn(process.execPath, [join(clone, "bin", "muri.js"), "devnet", "--nodes", "1", "--validators", "0", "--dir", join(work, "devnet"), "--json"], {
      cwd: clone,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-16_384)));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      const ready = await new Promise<{ rpcUrl: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`devnet not ready after ${READY_MS} ms:\n${stderr}`)), READY_MS);
        createInterface({ input: child.stdout }).on("line", (line) => {
          const msg = JSON.parse(line) as { event?: string; rpcUrl: string };
          if (msg.event === "ready") {
            clearTimeout(timer);
            resolve(msg);
          }
        });
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`devnet exited (${code}) before it was ready:\n${stderr}`));
        });
      });
      assert.match(ready.rpcUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.match(stderr, /devnet: compiling the contracts \(no artifact for MuriToken/);
      assert.doesNotMatch(stderr, /HHE1000/);
    } finally {
      child.kill("SIGTERM");
    }
    const code = await Promise.race([exited, new Promise<"timeout">((r) => setTimeout(() => r("timeout"), STOP_MS).unref())]);
    assert.equal(code, 0, `devnet exit after SIGTERM:\n${stderr}`);

    assert.equal(existsSync(join(clone, "artifacts", "contracts", "MuriToken.sol", "MuriToken.json")), true, "MuriToken was compiled");
    assert.equal(await staleArtifacts(clone), undefined, "the build was recorded");
    const later = new Date(Date.now() + 5_000);
    await utimes(join(clone, "contracts", "MuriToken.sol"), later, later);
    assert.equal(await staleArtifacts(clone), "contracts/MuriToken.sol changed since the last build");
  });
});
