#!/usr/bin/env bash
# The whole test suite: Solidity unit/fuzz/invariant tests, contract integration tests (mocha),
# then the agents' tests (node:test). Run through `npm test`, which brings Node 22 first.
set -euo pipefail
cd "$(dirname "$0")/.."
hardhat build --quiet
hardhat test solidity
hardhat test mocha
shopt -s globstar nullglob
agent_tests=(test/agents/**/*.test.ts)
if [ ${#agent_tests[@]} -gt 0 ]; then
  node --import tsx --test --test-concurrency=1 "${agent_tests[@]}"
fi
