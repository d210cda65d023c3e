#!/usr/bin/env bash
# Installs what building and testing rauta needs, idempotently. Safe to run
# on a fresh machine and on every test run: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests and scripts use (curl: run-local's examples;
# procps: pgrep/pkill in scripts; prometheus: promtool validates /metrics in the tests).
APT_PACKAGES=(curl procps prometheus)

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The pinned toolchain (rust-toolchain.toml) with rustfmt and clippy.
if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found; install rustup first" >&2
  exit 1
fi
for c in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
done
