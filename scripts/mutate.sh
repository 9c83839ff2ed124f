#!/usr/bin/env bash
# Mutation testing with Stryker: `npm run mutate [-- [--full] target...]`. Not part of `npm test`
# or CI (it takes tens of minutes); re-run it when the mutated modules or their tests change.
#
# Targets are listed in scripts/stryker/base.mjs: `data/merkle`, `data/erasure`, ... or a prefix
# (`data`, the default, is every data module). Each target is one Stryker run (concurrency 2) that
# writes reports/mutation/<target>.{json,html}; at the end scripts/stryker/summarize.mjs merges the
# scores into bench/results/mutation.json. Runs are incremental (reports/mutation/*.incremental.json:
# only mutants whose code or covering tests changed are run again); --full starts from scratch.
# MURI_MUTATION=1 tells tests that run once per mutant to use smaller sizes (pipeline.test.ts).
# --retest runs the surviving and uncovered mutants of the last run again, and only those: Stryker
# knows a tap test only by its file name and takes any change to that file as a changed test, which
# would run every mutant again; --retest records the test files as they are now, so the killed
# mutants keep their result (tests are only added, and a mutant a test kills stays killed). With
# MURI_MUTATE_LINES it re-runs the survivors on those lines only.
# MURI_MUTATE_CONCURRENCY=1 runs one test process at a time; MURI_MUTATE_LINES=a-b[,c-d] mutates
# only those lines of a one-file target (see base.mjs); its score is recorded as "<target>:<lines>"
# (summarize.mjs), beside the whole target's.
# A run stopped with Ctrl-C (SIGINT to stryker) keeps the mutants it finished in the incremental file
# and records its time as "stopped"; --report then writes the report and bench/results/mutation.json
# from the incremental file alone (the finished mutants, no test run).
# --stale lists each target's score, when it was measured and whether a file it mutates changed since
# (scripts/stryker/stale.mjs): the targets to re-run.
set -euo pipefail
cd "$(dirname "$0")/.."

full=0
retest=0
report=0
args=()
for a in "$@"; do
  case "$a" in
    --full) full=1 ;;
    --retest) retest=1 ;;
    --report) report=1 ;;
    --stale) exec node scripts/stryker/stale.mjs ;;
    *) args+=("$a") ;;
  esac
done
[ ${#args[@]} -gt 0 ] || args=(data)

mapfile -t targets < <(node --input-type=module -e '
  const { TARGETS } = await import("./scripts/stryker/base.mjs");
  const names = Object.keys(TARGETS);
  for (const want of process.argv.slice(1)) {
    const hit = names.filter((n) => n === want || n.startsWith(want + "/"));
    if (hit.length === 0) { console.error(`mutate.sh: no target ${want}; known: ${names.join(" ")}`); process.exit(2); }
    for (const n of hit) console.log(n);
  }' "${args[@]}")

mkdir -p reports/mutation
if [ "$report" = 1 ]; then
  for t in "${targets[@]}"; do
    file="${t//\//-}"
    node --input-type=module -e '
      import { readFileSync, writeFileSync } from "node:fs";
      const report = JSON.parse(readFileSync(process.argv[1], "utf8"));
      for (const f of Object.values(report.files)) f.mutants = f.mutants.filter((m) => m.status !== "Pending");
      writeFileSync(process.argv[2], JSON.stringify(report));' "reports/mutation/${file}.incremental.json" "reports/mutation/${file}.json"
  done
  exec node scripts/stryker/summarize.mjs "${targets[@]}"
fi
for t in "${targets[@]}"; do
  file="${t//\//-}"
  [ "$full" = 1 ] && rm -f "reports/mutation/${file}.incremental.json"
  if [ "$retest" = 1 ] && [ -f "reports/mutation/${file}.incremental.json" ]; then
    node --input-type=module -e '
      import { existsSync, readFileSync, writeFileSync } from "node:fs";
      const path = process.argv[1];
      const report = JSON.parse(readFileSync(path, "utf8"));
      // With MURI_MUTATE_LINES only the survivors on those lines: the others would not run again and
      // would drop out of the report. Stryker mutates only what lies wholly inside a range, so a
      // mutant that starts in one and ends past it is kept as it was.
      const ranges = (process.env.MURI_MUTATE_LINES ?? "").split(",").filter(Boolean).map((r) => r.split("-").map(Number));
      const inRange = (m) => ranges.length === 0 || ranges.some(([a, b]) => m.location.start.line >= a && m.location.end.line <= b);
      for (const f of Object.values(report.files)) f.mutants = f.mutants.filter((m) => (m.status !== "Survived" && m.status !== "NoCoverage") || !inRange(m));
      for (const [name, t] of Object.entries(report.testFiles ?? {})) if (existsSync(name)) t.source = readFileSync(name, "utf8");
      writeFileSync(path, JSON.stringify(report));' "reports/mutation/${file}.incremental.json"
  fi
  mode=incremental
  [ -f "reports/mutation/${file}.incremental.json" ] || mode=full
  echo "mutate.sh: ${t} (${mode})" >&2
  start=$SECONDS
  status=0
  MURI_MUTATION=1 MURI_MUTATE_TARGET="$t" stryker run scripts/stryker/stryker.config.mjs || status=$?
  [ "$status" = 0 ] || mode="${mode}, stopped"
  echo "{\"seconds\": $((SECONDS - start)), \"mode\": \"${mode}\"}" > "reports/mutation/${file}.run.json"
  echo "mutate.sh: ${t} took $((SECONDS - start)) s (${mode})" >&2
  [ "$status" = 0 ] || exit "$status"
done
node scripts/stryker/summarize.mjs "${targets[@]}"
