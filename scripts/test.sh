#!/usr/bin/env bash
# The whole test suite: typecheck and lint, Solidity unit/fuzz/invariant tests, contract
# integration tests (mocha), then the agents' tests (node:test). Run through `npm test`, which
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
phase "Solidity tests" hardhat test solidity
phase "contract integration tests" hardhat test mocha
shopt -s globstar nullglob
agent_tests=(test/agents/**/*.test.ts)
if [ ${#agent_tests[@]} -gt 0 ]; then
  phase "agent tests" node --import tsx --test --test-concurrency=1 "${agent_tests[@]}"
fi
