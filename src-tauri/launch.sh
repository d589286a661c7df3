#!/usr/bin/env bash
# Builds Tandem's UI and launches the desktop app. On a fresh Linux machine it first
# installs the system packages Tauri needs (WebKitGTK and friends).
#
#   bash src-tauri/launch.sh            # release build (what a user wants)
#   TANDEM_PROFILE=dev bash src-tauri/launch.sh   # quicker debug build
#   extra arguments go to cargo, e.g. `--features cuda`
set -euo pipefail
cd "$(dirname "$0")/.."

LINUX_PACKAGES=(libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev
  libsoup-3.0-dev libjavascriptcoregtk-4.1-dev libxdo-dev libssl-dev pkg-config build-essential file)

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ "$(uname -s)" = Linux ] && ! pkg-config --exists webkit2gtk-4.1 2>/dev/null; then
  echo "Installing the system packages Tauri needs…"
  if command -v apt-get >/dev/null; then
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${LINUX_PACKAGES[@]}"
  elif command -v dnf >/dev/null; then
    as_root dnf install -y webkit2gtk4.1-devel gtk3-devel librsvg2-devel libappindicator-gtk3-devel \
      libsoup3-devel javascriptcoregtk4.1-devel libxdo-devel openssl-devel pkgconf-pkg-config gcc file
  elif command -v pacman >/dev/null; then
    as_root pacman -S --needed --noconfirm webkit2gtk-4.1 gtk3 librsvg libappindicator-gtk3 libsoup3 xdotool \
      openssl pkgconf base-devel file
  else
    echo "Install WebKitGTK 4.1, GTK 3, librsvg, libsoup 3 and their -dev packages, then run this again." >&2
    exit 1
  fi
fi

command -v npm >/dev/null || { echo "Tandem's UI needs Node.js 20 or newer (with npm): https://nodejs.org" >&2; exit 1; }
command -v cargo >/dev/null || { echo "Tandem needs a Rust toolchain: https://rustup.rs" >&2; exit 1; }

[ -d ui/node_modules ] || npm ci --prefix ui
npm --prefix ui run build

if [ "${TANDEM_PROFILE:-release}" = dev ]; then
  exec cargo run -p tandem-app --features custom-protocol "$@"
else
  exec cargo run --release -p tandem-app --features custom-protocol "$@"
fi
