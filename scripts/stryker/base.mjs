// Stryker options for `npm run mutate` (scripts/mutate.sh), which runs Stryker once per target
// below with MURI_MUTATE_TARGET=<target> and the config file stryker.config.mjs next to this one.
//
// The tap runner runs each test file as `node --import ./bin/ts-register.mjs <file>` (the project's
// in-thread TypeScript loader, as `npm test` uses it; node:test prints TAP when its output is not a
// terminal) and records which files reach which mutant, so a mutant runs only the
// test files that cover it, in file order, stopping at the first one that fails.

import { readdirSync } from "node:fs";

/** Test files that take seconds per run (instrumented): run last, after the fast ones. */
const SLOW_TESTS = ["vector-files", "pipeline"];

/** A module's own test files, where their names do not start with the module's. */
const OWN_TESTS = {
  challenge: ["placement-challenge-edges", "placement"],
  vectors: ["vectors", "vector-hits", "vector-records", "vector-scale", "vector-cosine", "vector-hamming", "vector-payloads"],
  "vector-manifest": ["vector-manifest", "vector-scale", "vector-payloads", "vector-cosine", "vector-hamming"],
  "hash-backend": ["hash-backend", "merkle", "cid"],
};

/**
 * The data tests as an explicit list (the tap runner keeps the order of explicit paths, while a
 * glob comes back in reverse order): the module's own tests first, the slow ones last. A mutant
 * runs the files that cover it in this order and stops at the first failure.
 */
function dataTests(module) {
  const dir = "test/agents/data";
  const names = readdirSync(dir).filter((f) => f.endsWith(".test.ts")).sort();
  const own = OWN_TESTS[module] ?? [module];
  const rank = (f) => (own.some((o) => f.startsWith(`${o}.`) || f.startsWith(`${o}-`)) ? 0 : SLOW_TESTS.some((s) => f.startsWith(`${s}.`)) ? 2 : 1);
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b)).map((f) => `${dir}/${f}`);
}

/**
 * target -> what to mutate and which test files run against it. Data modules run against
 * test/agents/data only: test/agents/index/vector-index.test.ts takes 70 s instrumented, too slow
 * to run per mutant. Role modules run against the fast role tests that cover them, never the
 * end-to-end ones (30-250 s each).
 */
export const TARGETS = {
  ...Object.fromEntries(
    // Every module of agents/data except the error classes and constants (errors.ts, muri-error.ts,
    // constants.ts: messages and numbers, checked where they are thrown and used).
    [
      "merkle", "erasure", "crypto", "cid", "placement", "challenge", "manifest", "pipeline", "vectors",
      "hit-proof", "share", "compression", "directory", "chunker", "hash-backend", "vector-manifest", "vector-files",
    ].map((m) => [
      `data/${m}`,
      { mutate: [`agents/data/${m}.ts`], testFiles: dataTests(m) },
    ]),
  ),
  // Role code, against the fast role tests that cover it (never the end-to-end ones): each test
  // file starts its own real chain on a free port, 25-40 s per run, hence the generous timeout.
  // `file:a-b` mutates lines a..b only.
  ...Object.fromEntries(
    [
      // repair-mutants first: shorter, and it kills most of what it covers.
      ["roles/repair", "agents/roles/node/repair.ts", ["repair-mutants", "adversarial-repair"]],
      // Push acceptance: openings (openFor, closeOpen), acceptPush and the sink, and the batch
      // requests (open, propose, acknowledge); verifyIndex is left out, for time.
      // Line ranges move when the file changes: check them before a run.
      ["roles/magu-sync-push", ["agents/roles/shared/magu-sync.ts:268-283", "agents/roles/shared/magu-sync.ts:353-529"], ["adversarial-push"]],
      ["roles/prover", "agents/roles/node/prover.ts", ["prover-mutants", "prover", "prover-fees", "adversarial-audit"]],
      ["roles/validator-audit", "agents/roles/validator/validator.ts:530-593", ["adversarial-audit", "validator"]],
      ["roles/search-checker", "agents/roles/validator/search-checker.ts", ["adversarial-search"]],
    ].map(([name, mutate, tests]) => [
      name,
      { mutate: [mutate].flat(), testFiles: tests.map((t) => `test/agents/roles/${t}.test.ts`), needsChain: true, concurrency: 2, timeoutMS: 120_000 },
    ]),
  ),
};

function linesOf(mutate, ranges) {
  const files = new Set(mutate.map((m) => m.split(":")[0]));
  if (files.size !== 1) throw new Error(`MURI_MUTATE_LINES needs a one-file target, got ${mutate.join(" ")}`);
  const [file] = files;
  return ranges.split(",").map((r) => `${file}:${r.trim()}`);
}

export function configFor(name) {
  const t = TARGETS[name];
  if (!t) throw new Error(`unknown mutation target ${name}; known: ${Object.keys(TARGETS).join(" ")}`);
  const file = name.replace("/", "-");
  return {
    testRunner: "tap",
    plugins: ["@stryker-mutator/tap-runner"],
    tap: { testFiles: t.testFiles, nodeArgs: ["--import", "./bin/ts-register.mjs"], forceBail: true },
    coverageAnalysis: "perTest",
    // MURI_MUTATE_LINES=a-b[,c-d] mutates only those lines of a one-file target: a role target
    // takes hours at concurrency 1, so it can be measured in parts. Results of earlier parts stay in
    // the incremental file and in the report (Stryker keeps results outside the mutated range).
    mutate: process.env.MURI_MUTATE_LINES ? linesOf(t.mutate, process.env.MURI_MUTATE_LINES) : t.mutate,
    // MURI_MUTATE_CONCURRENCY=1 runs one test process at a time (a machine shared with other work).
    concurrency: Number(process.env.MURI_MUTATE_CONCURRENCY) || (t.concurrency ?? 2),
    timeoutMS: t.timeoutMS ?? 20_000,
    timeoutFactor: 2,
    // The initial run covers every test file of the target: two chain-backed files took over the
    // default 5 minutes beside other work (load average 14).
    dryRunTimeoutMinutes: 20,
    // Sandboxes (.stryker-tmp/) and reports (reports/) stay out of git and eslint.
    tempDirName: ".stryker-tmp",
    cleanTempDir: "always",
    incremental: true,
    incrementalFile: `reports/mutation/${file}.incremental.json`,
    // The sandbox needs the sources and tests only (node_modules is linked, not copied).
    ignorePatterns: [
      "/.tools", "/.devnet", "/.ci", "/docs", "/bench", "/snapshots", "/coverage", "/reports", "/deployments", "/.stryker-tmp",
      // A chain (hardhat node, Ignition) needs the contracts, their build and the deployment modules.
      ...(t.needsChain ? [] : ["/contracts", "/cache", "/artifacts", "/ignition", "/deploy", "/typechain-types"]),
    ],
    reporters: ["clear-text", "progress", "json", "html"],
    clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
    jsonReporter: { fileName: `reports/mutation/${file}.json` },
    htmlReporter: { fileName: `reports/mutation/${file}.html` },
    thresholds: { high: 90, low: 80, break: null },
  };
}
