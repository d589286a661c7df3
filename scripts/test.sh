#!/usr/bin/env bash
# All of Tandem's tests, in order: the Rust workspace (model core, decoding, hub, pairs,
# engine, CLI, with the real SmolLM2 model), then the desktop app's layers: UI unit tests
# (vitest), every view in headless Chromium, the Tauri shell's Rust unit tests, and the
# built app end to end under Xvfb through tauri-driver and WebKitWebDriver against a
# local mock hub.
#
#   bash scripts/test.sh            # everything
#   TANDEM_TESTS=rust bash scripts/test.sh   # only the Rust workspace (cargo test --release)
#   TANDEM_TESTS=app  bash scripts/test.sh   # only the desktop app
#
# On a fresh Linux machine it installs what the app's tests need first (system packages
# through scripts/system-deps.sh, the UI's npm packages, tauri-driver from crates.io).
set -euo pipefail
cd "$(dirname "$0")/.."
parts="${TANDEM_TESTS:-rust app}"
step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }
target="${CARGO_TARGET_DIR:-$PWD/target}"

if [[ " $parts " == *" rust "* ]]; then
  step "Rust workspace"
  # Hugging Face's own Python client, which crates/tandem-hub/tests/hub/hf_client.rs runs
  # against the mock hub and against caches Tandem wrote (it fails under
  # TANDEM_REQUIRE_MODELS=1 without it). A venv in the build folder, made once per version.
  hf_hub_version=2.4.0
  hf_venv="$target/hf-client-venv"
  if ! "$hf_venv/bin/python" -c "import huggingface_hub, sys; sys.exit(huggingface_hub.__version__ != '$hf_hub_version')" 2>/dev/null; then
    rm -rf "$hf_venv"
    python3 -m venv "$hf_venv"
    "$hf_venv/bin/pip" install --quiet --disable-pip-version-check "huggingface_hub==$hf_hub_version"
  fi
  export TANDEM_HF_PYTHON="$hf_venv/bin/python"
  cargo test --release

  step "GPU check: its dry run on the CPU (burn's flex backend, tiny shapes)"
  # scripts/gpu-check.sh is what runs on a lent GPU machine: it must fail there only
  # for GPU reasons.
  OUT="$target/gpu-check-dry-run" bash scripts/gpu-check.sh --backend flex --tiny \
    --tandem "$target/release/tandem"
fi

if [[ " $parts " == *" app "* ]]; then
  step "desktop app: system packages, npm packages, tauri-driver"
  bash scripts/system-deps.sh --test
  # npm 11 writes only this platform's optional packages (rollup's native builds) into
  # the lock file, and then `npm ci` refuses the lock as out of sync: fall back to install.
  [ -d ui/node_modules ] || npm ci --prefix ui --no-audit --no-fund || npm install --prefix ui --no-audit --no-fund
  command -v tauri-driver >/dev/null || [ -x "$HOME/.cargo/bin/tauri-driver" ] ||
    cargo install tauri-driver --locked

  step "UI: type check and unit tests"
  npm --prefix ui run check
  npm --prefix ui test

  step "UI: every view in headless Chromium"
  npm --prefix ui run test:views

  step "desktop app: build (as src-tauri/launch.sh does), its Rust unit tests, the mock hub"
  cargo build --release -p tandem-app --features custom-protocol
  # The shell is outside the workspace's default members: its tests run here, with the
  # build's features so they reuse its compiled dependencies.
  cargo test --release -p tandem-app --features custom-protocol
  cargo build --release -p tandem-hub --features mock --bin mock-hub

  step "desktop app: end to end under Xvfb"
  TANDEM_APP="$target/release/tandem-app" MOCK_HUB="$target/release/mock-hub" \
    TAURI_DRIVER="$(command -v tauri-driver || echo "$HOME/.cargo/bin/tauri-driver")" \
    npm --prefix ui run test:e2e
fi
