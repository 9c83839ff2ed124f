#!/usr/bin/env bash
# Runs every benchmark in bench/ (each prints a table and writes bench/results/<name>.json).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bench/results
for b in bench/*.ts; do
  echo "== ${b}"
  tsx "$b"
done
