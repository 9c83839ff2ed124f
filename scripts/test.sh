#!/usr/bin/env bash
# The whole test suite: the build, with the agents' tests below the chain beside it; typecheck and
# lint; Solidity unit/fuzz/invariant tests (and the attack simulation table from their output),
# contract integration tests (mocha), then the rest of the agents' tests (node:test) in two lanes.
# Run through `npm test`, which brings Node 22 first. Each phase prints how long it took (stderr),
# so a slow CI run shows where.
set -euo pipefail
cd "$(dirname "$0")/.."

# Runs a phase and prints its duration; returns its status (also where `set -e` does not apply, as
# on the left of `||`).
phase() {
  local name="$1"
  shift
  local start=$SECONDS rc=0
  "$@" || rc=$?
  echo "test.sh: ${name} took $((SECONDS - start)) s" >&2
  return "$rc"
}

shopt -s globstar nullglob
# The agents' tests of the layers below the chain (data, index, store, p2p) need no contract
# artifacts: they run on the second core while the build (one single-threaded wasm solc) runs on
# the first. Their output is printed once the build is done. The typecheck waits for the build:
# the contract tests import the typechain types it generates.
unit_tests=(test/agents/{data,index,store,p2p}/**/*.test.ts)
side_log="$(mktemp)"
sol_log="$(mktemp)"
trap 'rm -f "$sol_log" "$side_log"' EXIT
phase "agent tests below the chain (${#unit_tests[@]} files, beside the build)" node --import tsx --test --test-concurrency=1 "${unit_tests[@]}" >"$side_log" 2>&1 &
side_pid=$!
build_rc=0
phase "build (contracts and Solidity tests)" hardhat build --quiet || build_rc=$?
side_rc=0
wait "$side_pid" || side_rc=$?
echo "# ---- the agent tests below the chain (run beside the build) ----"
cat "$side_log"
if [ "$build_rc" -ne 0 ] || [ "$side_rc" -ne 0 ]; then
  echo "test.sh: build exit ${build_rc}; tests below the chain exit ${side_rc}" >&2
  exit 1
fi
phase "typecheck" tsc -p tsconfig.json
phase "lint" bash scripts/lint.sh
# The Solidity run's output also feeds the attack simulation (scripts/sim.ts): every attack test
# reports its profit and loss, and the table fails the run if any attacker ends above zero.
phase "Solidity tests" bash -c 'set -o pipefail; hardhat test solidity 2>&1 | tee "$1"' _ "$sol_log"
phase "attack simulation" tsx scripts/sim.ts --log "$sol_log"
phase "contract integration tests" hardhat test mocha
# The agents' tests run in two lanes at once, each file after file: the end-to-end files (real node
# processes on a chain with 1-s blocks: they wait on conditions, never on time, so they pass beside
# a busy CPU) and everything else. Two lanes halve the wall time on two cores; the second lane's
# output is printed after the first's, and either lane failing fails the run.
# To keep the two lanes about equally long (a fresh-clone CI run: 923 s and 798 s before this
# split), `muri devnet` (a chain and six agent processes) runs in the end-to-end lane and
# `e2e-access` in the other.
e2e_tests=()
other_tests=()
for f in test/agents/**/*.test.ts; do
  case "$f" in
    test/agents/roles/e2e-access.test.ts) other_tests+=("$f") ;;
    test/agents/data/* | test/agents/index/* | test/agents/store/* | test/agents/p2p/*) ;; # ran beside the build
    test/agents/roles/e2e-* | test/agents/cli/devnet.test.ts) e2e_tests+=("$f") ;;
    *) other_tests+=("$f") ;;
  esac
done
agent_tests() {
  local other_log other_pid other_rc=0 e2e_rc=0
  other_log="$(mktemp)"
  node --import tsx --test --test-concurrency=1 "${other_tests[@]}" >"$other_log" 2>&1 &
  other_pid=$!
  node --import tsx --test --test-concurrency=1 "${e2e_tests[@]}" || e2e_rc=$?
  wait "$other_pid" || other_rc=$?
  echo "# ---- agent tests, second lane (${#other_tests[@]} files besides the end-to-end ones) ----"
  cat "$other_log"
  rm -f "$other_log"
  echo "test.sh: end-to-end lane exit ${e2e_rc}, other lane exit ${other_rc}" >&2
  [ "$e2e_rc" -eq 0 ] && [ "$other_rc" -eq 0 ]
}
phase "agent tests (two lanes)" agent_tests
