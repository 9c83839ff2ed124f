#!/usr/bin/env bash
# The whole test suite, run through `npm test` (which brings Node 22 first). Two cores, kept busy:
#   1. the contracts' build, and beside it the agents' tests below the chain (data, index, store,
#      p2p, light: they need no contract artifacts);
#   2. the contract lane in the background: the Solidity tests' build, the Solidity unit, fuzz and
#      invariant tests (and the attack simulation table from their output), the contract
#      integration tests (mocha);
#   3. meanwhile typecheck and lint, then the rest of the agents' tests (node:test) in two lanes.
# From the start, scripts/chromium.sh installs Debian's Chromium in the background when it is
# missing (the dashboard's browser test needs it); the agents' tests wait for it.
# Each phase prints how long it took (stderr), so a slow CI run shows where. A lane's output is
# printed when it ends; any lane failing fails the run.
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
unit_tests=(test/agents/{data,index,store,p2p,light}/**/*.test.ts)
side_log="$(mktemp)"
sol_log="$(mktemp)"
contract_log="$(mktemp)"
chromium_log="$(mktemp)"
trap 'rm -f "$sol_log" "$side_log" "$contract_log" "$chromium_log"' EXIT
phase "Chromium (scripts/chromium.sh, in the background)" bash scripts/chromium.sh >"$chromium_log" 2>&1 &
chromium_pid=$!
phase "agent tests below the chain (${#unit_tests[@]} files, beside the builds)" node --import ./bin/ts-register.mjs --test --test-concurrency=1 "${unit_tests[@]}" >"$side_log" 2>&1 &
side_pid=$!
build_rc=0
phase "build (contracts)" hardhat build --no-tests --quiet || build_rc=$?

# The Solidity tests compile against interfaces of the deployed contracts
# (test/solidity/utils/Deployed.sol), so this build writes no contract artifact and no typechain
# type that the typecheck or the agents' tests read while it runs.
contract_lane() {
  phase "build (Solidity tests)" hardhat build --no-contracts --no-typechain --quiet || return 1
  # The Solidity run's output also feeds the attack simulation (scripts/sim.ts): every attack test
  # reports its profit and loss, and the table fails the run if any attacker ends above zero.
  phase "Solidity tests" bash -c 'set -o pipefail; hardhat test solidity --no-typechain 2>&1 | tee "$1"' _ "$sol_log" || return 1
  phase "attack simulation" tsx scripts/sim.ts --log "$sol_log" || return 1
  phase "contract integration tests" hardhat test mocha --no-typechain
}
contract_pid=
if [ "$build_rc" -eq 0 ]; then
  contract_lane >"$contract_log" 2>&1 &
  contract_pid=$!
fi
side_rc=0
wait "$side_pid" || side_rc=$?
echo "# ---- the agent tests below the chain (run beside the build) ----"
cat "$side_log"
if [ "$build_rc" -ne 0 ] || [ "$side_rc" -ne 0 ]; then
  echo "test.sh: build exit ${build_rc}; tests below the chain exit ${side_rc}" >&2
  [ -z "$contract_pid" ] || kill "$contract_pid" 2>/dev/null || true
  exit 1
fi

# Prints the contract lane's output once it ended; its status.
finish_contract_lane() {
  local rc=0
  wait "$contract_pid" || rc=$?
  echo "# ---- the contract lane (Solidity tests' build, Solidity tests, attack simulation, mocha) ----"
  cat "$contract_log"
  echo "test.sh: contract lane exit ${rc}" >&2
  return "$rc"
}
checks_rc=0
phase "typecheck" tsc -p tsconfig.json || checks_rc=$?
[ "$checks_rc" -ne 0 ] || phase "lint" bash scripts/lint.sh || checks_rc=$?
if [ "$checks_rc" -ne 0 ]; then
  finish_contract_lane || true
  exit 1
fi

# The agents' tests run in two lanes at once, each file after file: the end-to-end files (real node
# processes on a chain with 1-s blocks: they wait on conditions, never on time, so they pass beside
# a busy CPU) and everything else. Two lanes halve the wall time on two cores; the second lane's
# output is printed after the first's, and either lane failing fails the run.
# To keep the two lanes about equally long, `muri devnet` (a chain and six agent processes) runs
# in the end-to-end lane and `e2e-access`, `e2e-networks`, `e2e-resume`, `e2e-vector-replace` and
# `e2e-http-gib` in the other (fresh-clone run Y: 678 s and 664 s, before e2e-http-gib, about
# 2 minutes, was added).
e2e_tests=()
other_tests=()
for f in test/agents/**/*.test.ts; do
  case "$f" in
    test/agents/roles/e2e-access.test.ts | test/agents/roles/e2e-networks.test.ts | test/agents/roles/e2e-resume.test.ts | test/agents/roles/e2e-vector-replace.test.ts | test/agents/roles/e2e-http-gib.test.ts) other_tests+=("$f") ;;
    test/agents/data/* | test/agents/index/* | test/agents/store/* | test/agents/p2p/* | test/agents/light/*) ;; # ran beside the build
    test/agents/roles/e2e-* | test/agents/cli/devnet.test.ts) e2e_tests+=("$f") ;;
    *) other_tests+=("$f") ;;
  esac
done
agent_tests() {
  local other_log other_pid other_rc=0 e2e_rc=0
  other_log="$(mktemp)"
  node --import ./bin/ts-register.mjs --test --test-concurrency=1 "${other_tests[@]}" >"$other_log" 2>&1 &
  other_pid=$!
  node --import ./bin/ts-register.mjs --test --test-concurrency=1 "${e2e_tests[@]}" || e2e_rc=$?
  wait "$other_pid" || other_rc=$?
  echo "# ---- agent tests, second lane (${#other_tests[@]} files besides the end-to-end ones) ----"
  cat "$other_log"
  rm -f "$other_log"
  echo "test.sh: end-to-end lane exit ${e2e_rc}, other lane exit ${other_rc}" >&2
  [ "$e2e_rc" -eq 0 ] && [ "$other_rc" -eq 0 ]
}
chromium_rc=0
wait "$chromium_pid" || chromium_rc=$?
cat "$chromium_log"
if [ "$chromium_rc" -ne 0 ]; then
  echo "test.sh: scripts/chromium.sh failed (exit ${chromium_rc}): the dashboard's browser test cannot run" >&2
  finish_contract_lane || true
  exit 1
fi
agents_rc=0
phase "agent tests (two lanes)" agent_tests || agents_rc=$?
contract_rc=0
finish_contract_lane || contract_rc=$?
[ "$agents_rc" -eq 0 ] && [ "$contract_rc" -eq 0 ]
