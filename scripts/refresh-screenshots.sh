#!/usr/bin/env bash
# Refreshes the README's pictures in docs/screenshots/ (the tests themselves write theirs
# to the build folder, so running them leaves the repository as it was):
#   - docs/screenshots/mock/   every view on mocked data (headless Chromium);
#   - docs/screenshots/e2e-*   the built app end to end against the mock hub's tiny models;
#   - docs/screenshots/real-*  the same with real models, when E2E_DRAFT_DIR and
#     E2E_TARGET_DIR name two model folders (see ui/tests/e2e/app.e2e.test.ts).
# Needs what `bash scripts/test.sh` installs (run it once first).
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
export TANDEM_SCREENSHOT_DIR="$PWD/docs/screenshots"

npm --prefix ui run test:views
cargo build --release -p tandem-app --features custom-protocol
cargo build --release -p tandem-hub --features mock --bin mock-hub
TANDEM_APP="$target/release/tandem-app" MOCK_HUB="$target/release/mock-hub" \
  TAURI_DRIVER="$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")" \
  npm --prefix ui run test:e2e
echo "screenshots refreshed in $TANDEM_SCREENSHOT_DIR"
