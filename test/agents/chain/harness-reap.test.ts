/**
 * A test file ended by a signal leaves no hardhat node behind. The harness starts each node in its own
 * process group, so the signal that ends the test file (Ctrl-C, a runner giving up on it) does not
 * reach the node; before harness.ts used reapOnExit the node kept running, holding its port and a
 * core, after every interrupted run.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { TS_LOADER } from "../ts-loader.js";

const HARNESS = fileURLToPath(new URL("./harness.ts", import.meta.url));

/** The child: starts a chain through the harness, prints the node's pid, then waits to be killed. */
const CHILD = `
const { startFreshHardhatNode } = await import(${JSON.stringify(HARNESS)});
const { execFileSync } = await import("node:child_process");
const chain = await startFreshHardhatNode();
const pids = execFileSync("pgrep", ["-f", "--", "--port " + chain.port]).toString().trim().split("\\n");
console.log("chain " + pids.join(","));
setInterval(() => {}, 1000);
`;

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  test(`${signal} to a test process stops the hardhat node it started, and the process still ends by ${signal}`, { timeout: 240_000 }, async () => {
    const child = spawn(process.execPath, ["--import", TS_LOADER, "--input-type=module", "-e", CHILD], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => (stderr = (stderr + c.toString()).slice(-8192)));
    const exited = new Promise<NodeJS.Signals | number | null>((resolve) => child.once("exit", (code, sig) => resolve(sig ?? code)));
    let pids: number[] = [];
    try {
      pids = await new Promise<number[]>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no chain after 180 s:\n${stderr}`)), 180_000);
        child.once("exit", (code) => {
          clearTimeout(timer);
          reject(new Error(`child exited (${code}) before its chain was up:\n${stderr}`));
        });
        createInterface({ input: child.stdout! }).on("line", (line) => {
          const m = /^chain ([\d,]+)$/.exec(line);
          if (m === null) return;
          clearTimeout(timer);
          resolve(m[1]!.split(",").map(Number));
        });
      });
      assert.ok(pids.length > 0 && pids.every(alive), `hardhat node ${pids} running`);
      child.kill(signal);
      assert.equal(await exited, signal, "the test process ends by the signal it was sent");
      // SIGKILL is delivered at once; the kernel reaps a killed process within moments.
      for (let i = 0; i < 50 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(pids.filter(alive), [], `hardhat node ${pids} still running after its test process ended by ${signal}`);
    } finally {
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // gone, as it should be
        }
      }
      child.kill("SIGKILL");
    }
  });
}
