#!/usr/bin/env bash
# The whole test suite, run through `npm test` (which brings Node 22 first). Two cores, kept busy:
#   1. the contracts' build, and beside it the agents' tests below the chain (data, index, store,
#      p2p, light: they need no contract artifacts);
#   2. the contract lane in the background: the Solidity tests' build, the Solidity unit, fuzz and
#      invariant tests (and the attack simulation table from their output), the contract
#      integration tests (mocha);
#   3. meanwhile typecheck and lint, then the rest of the agents' tests (node:test), two files at a
#      time.
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

# The agents' tests run two files at a time (one `node --test` each), in one queue: whenever a file
# ends the next one starts, so both cores stay busy until the queue is empty. The end-to-end files
# (real node processes on a chain with 1-s blocks) wait on conditions, never on time, so they pass
# beside a busy CPU. The queue starts with the files that take longest, longest first (fresh-clone
# run AE: e2e-vector 425 s, e2e-http-gib 216, e2e-access 214, `muri devnet` 124,
# e2e-vector-payloads 116, the CLI test 108, prover-scale 93, e2e-availability 77, ...), and the
# many short ones fill in at the end. Two fixed lanes (as before) left one core idle for minutes
# whenever one lane ended first.
long_first=(
  test/agents/roles/e2e-vector.test.ts
  test/agents/roles/e2e-http-gib.test.ts
  test/agents/roles/e2e-access.test.ts
  test/agents/cli/devnet.test.ts
  test/agents/roles/e2e-vector-payloads.test.ts
  test/agents/cli/cli.test.ts
  test/agents/roles/prover-scale.test.ts
  test/agents/roles/e2e-availability.test.ts
  test/agents/roles/e2e-networks.test.ts
  test/agents/roles/e2e-append.test.ts
  test/agents/roles/e2e-blob.test.ts
  test/agents/roles/e2e-epoch.test.ts
  test/agents/roles/e2e-repair.test.ts
  test/agents/cli/devnet-fresh-clone.test.ts
  test/agents/roles/adversarial-search.test.ts
  test/agents/roles/e2e-restart.test.ts
)
agent_queue=("${long_first[@]}")
for f in test/agents/**/*.test.ts; do
  case "$f" in
    test/agents/data/* | test/agents/index/* | test/agents/store/* | test/agents/p2p/* | test/agents/light/*) ;; # ran beside the build
    *) [[ " ${long_first[*]} " == *" $f "* ]] || agent_queue+=("$f") ;;
  esac
done
for f in "${long_first[@]}"; do
  [ -f "$f" ] || { echo "test.sh: ${f} is listed in long_first but does not exist" >&2; exit 1; }
done
# One file: its output, printed whole when it ends (under a lock, so two never interleave), and a
# line "<exit> <seconds> <file>" in the results.
run_one() {
  local file="$1" out start=$SECONDS rc=0
  out="$(mktemp)"
  node --import ./bin/ts-register.mjs --test "$file" >"$out" 2>&1 || rc=$?
  {
    flock 9
    echo "# ---- ${file}: exit ${rc}, $((SECONDS - start)) s ----"
    cat "$out"
    echo "$rc $((SECONDS - start)) $file" >>"$queue_results"
  } 9>>"$queue_lock"
  rm -f "$out"
  return $((rc == 0 ? 0 : 1))
}
export -f run_one
# The queue, two files at a time, in its order (xargs starts them in order; `node --test` would
# sort the files it is given by name). Prints each file's time, then fails if any file failed.
agent_tests() {
  local rc=0
  queue_results="$(mktemp)"
  queue_lock="$(mktemp)"
  export queue_results queue_lock
  printf '%s\0' "${agent_queue[@]}" | xargs -0 -n 1 -P 2 bash -c 'run_one "$1"' _ || rc=$?
  echo "# ---- agent test files by time (exit, seconds, file) ----"
  sort -k2,2nr "$queue_results"
  local failed
  failed="$(awk '$1 != 0 { print $3 }' "$queue_results")"
  rm -f "$queue_results" "$queue_lock"
  if [ -n "$failed" ] || [ "$rc" -ne 0 ]; then
    echo "test.sh: agent test files failed: ${failed:-(see above)}" >&2
    return 1
  fi
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
phase "agent tests (${#agent_queue[@]} files, two at a time)" agent_tests || agents_rc=$?
contract_rc=0
finish_contract_lane || contract_rc=$?
[ "$agents_rc" -eq 0 ] && [ "$contract_rc" -eq 0 ]
