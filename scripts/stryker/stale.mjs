// `npm run mutate -- --stale`: which targets' scores in bench/results/mutation.json no longer
// describe the code. A target is stale when a file it mutates changed since it was measured (the
// SHA-256 of the source Stryker mutated, recorded by summarize.mjs), unknown when it was measured
// before those hashes were recorded, and unmeasured when it has no score. Exits 0 either way: it
// says what to re-run, it does not gate anything.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { TARGETS } from "./base.mjs";

const results = JSON.parse(readFileSync("bench/results/mutation.json", "utf8")).modules;
const sha = (path) => (existsSync(path) ? createHash("sha256").update(readFileSync(path, "utf8")).digest("hex") : "missing");

const rows = [];
for (const name of Object.keys(TARGETS)) {
  const m = results[name];
  let state;
  if (m === undefined) state = "unmeasured";
  else if (m.sourceSha256 === undefined) state = "unknown (measured before source hashes were recorded)";
  else {
    const changed = Object.entries(m.sourceSha256).filter(([path, hash]) => sha(path) !== hash).map(([path]) => path);
    state = changed.length === 0 ? "current" : `stale: ${changed.join(", ")} changed`;
  }
  rows.push([name, m?.score === undefined ? "-" : `${m.score} %`, m?.measuredAt?.slice(0, 10) ?? "-", state]);
}
for (const [name, score, at, state] of rows) console.log(`${name.padEnd(26)} ${score.padStart(7)}  ${at.padEnd(10)}  ${state}`);
