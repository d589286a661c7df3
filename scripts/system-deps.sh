#!/usr/bin/env bash
# Installs the system packages the desktop app needs when they are missing: WebKitGTK and
# friends to build and run it (Tauri 2), and with `--test` also Xvfb, WebKitWebDriver and
# Chromium for its tests. Used by src-tauri/launch.sh, scripts/test.sh and .ci/run.
#
# Linux only (apt, dnf or pacman); macOS needs only the Xcode command line tools and
# Windows only WebView2 (preinstalled on Windows 10/11) — see the README.
set -euo pipefail

[ "$(uname -s)" = Linux ] || exit 0
with_tests=false
[ "${1:-}" = --test ] && with_tests=true

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
have() { command -v "$1" >/dev/null 2>&1; }

missing=false
pkg-config --exists webkit2gtk-4.1 libsoup-3.0 2>/dev/null || missing=true
if $with_tests; then
  for tool in Xvfb WebKitWebDriver chromium; do have "$tool" || missing=true; done
fi
$missing || exit 0

echo "Installing the system packages the desktop app needs (and with --test, its test tools)…"
if have apt-get; then
  packages=(libwebkit2gtk-4.1-dev libgtk-3-dev librsvg2-dev libayatana-appindicator3-dev
    libsoup-3.0-dev libjavascriptcoregtk-4.1-dev libxdo-dev libssl-dev pkg-config build-essential file)
  $with_tests && packages+=(xvfb webkit2gtk-driver chromium)
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${packages[@]}"
elif have dnf; then
  packages=(webkit2gtk4.1-devel gtk3-devel librsvg2-devel libappindicator-gtk3-devel libsoup3-devel
    javascriptcoregtk4.1-devel libxdo-devel openssl-devel pkgconf-pkg-config gcc file)
  $with_tests && packages+=(xorg-x11-server-Xvfb chromium)
  as_root dnf install -y "${packages[@]}"
elif have pacman; then
  packages=(webkit2gtk-4.1 gtk3 librsvg libappindicator-gtk3 libsoup3 xdotool openssl pkgconf base-devel file)
  $with_tests && packages+=(xorg-server-xvfb chromium)
  as_root pacman -S --needed --noconfirm "${packages[@]}"
else
  echo "Install WebKitGTK 4.1, GTK 3, librsvg, libsoup 3 and their -dev packages, then run this again." >&2
  exit 1
fi
