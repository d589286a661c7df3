#!/usr/bin/env bash
# Builds Tandem's UI and launches the desktop app. On a fresh Linux machine it first
# installs the system packages Tauri needs (WebKitGTK and friends).
#
#   bash src-tauri/launch.sh            # release build (what a user wants)
#   TANDEM_PROFILE=dev bash src-tauri/launch.sh   # quicker debug build
#   extra arguments go to cargo, e.g. `--features cuda`
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/system-deps.sh

command -v npm >/dev/null || { echo "Tandem's UI needs Node.js 20 or newer (with npm): https://nodejs.org" >&2; exit 1; }
command -v cargo >/dev/null || { echo "Tandem needs a Rust toolchain: https://rustup.rs" >&2; exit 1; }

# npm 11 writes only this platform's optional packages (rollup's native builds) into
# the lock file, and then `npm ci` refuses the lock as out of sync: fall back to install.
[ -d ui/node_modules ] || npm ci --prefix ui --no-audit --no-fund || npm install --prefix ui --no-audit --no-fund
npm --prefix ui run build

if [ "${TANDEM_PROFILE:-release}" = dev ]; then
  exec cargo run -p tandem-app --features custom-protocol "$@"
else
  exec cargo run --release -p tandem-app --features custom-protocol "$@"
fi
