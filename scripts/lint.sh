#!/usr/bin/env bash
# Lint: typescript-eslint over the TypeScript tree (eslint.config.js), solhint over the contracts
# (.solhint.json). Any warning fails. Run through `npm run lint` or `npm test`.
set -euo pipefail
cd "$(dirname "$0")/.."
eslint --max-warnings 0 .
solhint --max-warnings 0 --disc 'contracts/**/*.sol'
