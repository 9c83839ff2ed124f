#!/usr/bin/env bash
# Builds the optional multi-buffer SHA-256 addon (agents/data/native/build/muri_sha256.node).
# Without it everything still works on node:crypto, only slower (see hash-backend.ts).
# Needs a C compiler and Node's headers (node_api.h): $npm_config_nodedir (set by scripts/node22.sh),
# the running node's prefix, or /usr/include/node. Exits 0 with a note when it cannot build.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cc="${CC:-cc}"
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "muri_sha256: no C compiler ($cc); using node:crypto" >&2
  exit 0
fi
candidates=()
[ -n "${npm_config_nodedir:-}" ] && candidates+=("$npm_config_nodedir/include/node")
if command -v node >/dev/null 2>&1; then
  candidates+=("$(dirname "$(dirname "$(command -v node)")")/include/node")
fi
candidates+=(/usr/include/node /usr/local/include/node)
include=""
for dir in "${candidates[@]}"; do
  if [ -f "$dir/node_api.h" ]; then include="$dir"; break; fi
done
if [ -z "$include" ]; then
  echo "muri_sha256: node_api.h not found; using node:crypto" >&2
  exit 0
fi
mkdir -p "$here/build"
"$cc" -O3 -std=gnu11 -fPIC -shared -Wall -Wextra -Wno-unused-parameter \
  -DNODE_GYP_MODULE_NAME=muri_sha256 -I"$include" \
  -o "$here/build/muri_sha256.node.tmp" "$here/sha256_mb.c"
mv "$here/build/muri_sha256.node.tmp" "$here/build/muri_sha256.node"
echo "muri_sha256: built $here/build/muri_sha256.node" >&2
