#!/usr/bin/env bash
# The whole test suite: typecheck and lint, Solidity unit/fuzz/invariant tests (and the attack
# simulation table from their output), contract integration tests (mocha), then the agents' tests
# (node:test). Run through `npm test`, which
# brings Node 22 first. Each phase prints how long it took (stderr), so a slow CI run shows where.
set -euo pipefail
cd "$(dirname "$0")/.."

phase() {
  local name="$1"
  shift
  local start=$SECONDS
  "$@"
  echo "test.sh: ${name} took $((SECONDS - start)) s" >&2
}

phase "build (contracts and Solidity tests)" hardhat build --quiet
phase "typecheck" tsc -p tsconfig.json
phase "lint" bash scripts/lint.sh
# The Solidity run's output also feeds the attack simulation (scripts/sim.ts): every attack test
# reports its profit and loss, and the table fails the run if any attacker ends above zero.
sol_log="$(mktemp)"
trap 'rm -f "$sol_log"' EXIT
phase "Solidity tests" bash -c 'set -o pipefail; hardhat test solidity 2>&1 | tee "$1"' _ "$sol_log"
phase "attack simulation" tsx scripts/sim.ts --log "$sol_log"
phase "contract integration tests" hardhat test mocha
shopt -s globstar nullglob
agent_tests=(test/agents/**/*.test.ts)
if [ ${#agent_tests[@]} -gt 0 ]; then
  phase "agent tests" node --import tsx --test --test-concurrency=1 "${agent_tests[@]}"
fi
