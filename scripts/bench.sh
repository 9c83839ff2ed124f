#!/usr/bin/env bash
# Runs every benchmark in bench/ (each prints a table and writes bench/results/<name>.json).
# bench/helia.ts starts a 5-node muri devnet and compares put/get with Helia's add/cat on 256 MiB:
# several minutes. bench/search.ts starts a 5-node network with a validator, adds 100k x 128 vectors
# to a vector Magu and compares off-chain search with one in-process HNSW index, then runs on-chain
# search tasks: 7-10 minutes. bench/wan.ts (root only; it skips itself otherwise) builds two network
# namespaces joined by an emulated 20 ms / 0.5% loss link and runs put/get across it next to raw
# TCP: 5-7 minutes. bench/http.ts starts a 3-node network and a muri serve daemon and compares
# put/get/search over HTTP with the in-process clients: 5-7 minutes. BENCH_SKIP="helia search wan ..." leaves benchmarks out by name.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
for b in bench/*.ts; do
  name="$(basename "$b" .ts)"
  case " ${BENCH_SKIP:-} " in *" ${name} "*) echo "== ${b} (skipped: BENCH_SKIP)"; continue ;; esac
  echo "== ${b}"
  tsx "$b"
done
