// Merges the Stryker reports of the given targets (reports/mutation/<target>.json, written by
// scripts/mutate.sh) into bench/results/mutation.json: per target the mutant counts by status,
// the score, the run time, and every surviving or uncovered mutant (line, mutator, replacement).
import { createHash } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const out = "bench/results/mutation.json";
const previous = existsSync(out) ? JSON.parse(readFileSync(out, "utf8")) : { modules: {} };
const version = (pkg) => require(`${pkg}/package.json`).version;

// A run over some lines (MURI_MUTATE_LINES=a-b[,c-d]) is recorded apart, as `<target>:<lines>`
// with the mutants of those lines only, so that it never replaces a measurement of the whole target.
const lineSpec = process.env.MURI_MUTATE_LINES ?? "";
const ranges = lineSpec.split(",").filter(Boolean).map((r) => r.split("-").map(Number));
const inRanges = (line) => ranges.length === 0 || ranges.some(([a, b = a]) => line >= a && line <= b);

const modules = { ...previous.modules };
for (const target of process.argv.slice(2)) {
  const file = target.replace("/", "-");
  const key = ranges.length === 0 ? target : `${target}:${lineSpec}`;
  const report = JSON.parse(readFileSync(`reports/mutation/${file}.json`, "utf8"));
  const run = JSON.parse(readFileSync(`reports/mutation/${file}.run.json`, "utf8"));
  const counts = { Killed: 0, Survived: 0, Timeout: 0, NoCoverage: 0, CompileError: 0, RuntimeError: 0, Ignored: 0 };
  const survivors = [];
  // The sources as they were mutated: `npm run mutate -- --stale` compares them with the tree.
  const sources = {};
  for (const [path, f] of Object.entries(report.files)) {
    sources[path] = createHash("sha256").update(f.source).digest("hex");
    const lines = f.source.split("\n");
    for (const m of f.mutants.filter((x) => inRanges(x.location.start.line))) {
      counts[m.status] = (counts[m.status] ?? 0) + 1;
      if (m.status === "Survived" || m.status === "NoCoverage") {
        survivors.push({
          file: path,
          line: m.location.start.line,
          status: m.status,
          mutator: m.mutatorName,
          replacement: (m.replacement ?? "").slice(0, 120),
          code: lines[m.location.start.line - 1].trim().slice(0, 160),
        });
      }
    }
  }
  const detected = counts.Killed + counts.Timeout;
  const valid = detected + counts.Survived + counts.NoCoverage;
  const old = modules[key] ?? {};
  modules[key] = {
    mutate: Object.keys(report.files),
    ...(ranges.length > 0 && { lines: lineSpec }),
    mutants: valid,
    killed: counts.Killed,
    survived: counts.Survived,
    timeout: counts.Timeout,
    noCoverage: counts.NoCoverage,
    errors: counts.CompileError + counts.RuntimeError,
    ignored: counts.Ignored,
    score: valid === 0 ? null : Math.round((1000 * detected) / valid) / 10,
    runSeconds: run.seconds,
    runMode: run.mode,
    // The time of the last run from scratch (an incremental run only re-tests what changed).
    fullRunSeconds: run.mode === "full" ? run.seconds : old.fullRunSeconds,
    testFiles: Object.keys(report.testFiles ?? {}).sort(),
    measuredAt: new Date().toISOString(),
    sourceSha256: sources,
    survivors,
  };
}

const result = {
  ...previous,
  date: new Date().toISOString(),
  tools: {
    "@stryker-mutator/core": version("@stryker-mutator/core"),
    "@stryker-mutator/tap-runner": version("@stryker-mutator/tap-runner"),
    node: process.version,
  },
  score: "(killed + timeout) / (killed + timeout + survived + noCoverage), in percent",
  modules: Object.fromEntries(Object.entries(modules).sort(([a], [b]) => a.localeCompare(b))),
};
writeFileSync(out, JSON.stringify(result, null, 2) + "\n");
for (const [name, m] of Object.entries(result.modules)) {
  console.log(`${name.padEnd(28)} ${String(m.score).padStart(5)} %  ${m.killed + m.timeout}/${m.mutants} detected, ${m.survived} survived, ${m.noCoverage} no coverage, ${m.runSeconds} s (${m.runMode})`);
}
