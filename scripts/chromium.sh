#!/usr/bin/env bash
# Makes sure Debian's Chromium is installed (/usr/bin/chromium): the dashboard's test drives it
# headless with puppeteer-core (test/agents/cli/devnet.test.ts). A fresh machine has none: as root,
# this runs `apt-get update && apt-get install -y chromium` and says so; without root or apt it
# fails with what to do.
set -euo pipefail
CHROMIUM="${MURI_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then
  echo "chromium.sh: $CHROMIUM is installed ($("$CHROMIUM" --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "chromium.sh: no Chromium at $CHROMIUM and cannot install it here (needs root and apt-get);" \
    "install Debian's package yourself (sudo apt-get install chromium) or set MURI_CHROMIUM to a Chromium binary" >&2
  exit 1
fi
echo "chromium.sh: no Chromium at $CHROMIUM: running apt-get update && apt-get install -y chromium"
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q chromium; } >/tmp/muri-chromium-install.log 2>&1; then
  tail -20 /tmp/muri-chromium-install.log >&2
  echo "chromium.sh: apt-get could not install chromium (log above, whole log in /tmp/muri-chromium-install.log)" >&2
  exit 1
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "chromium.sh: apt-get installed chromium but $CHROMIUM is still missing; set MURI_CHROMIUM to its path" >&2
  exit 1
fi
echo "chromium.sh: installed $("$CHROMIUM" --version 2>/dev/null || echo chromium)"
