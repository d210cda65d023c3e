#!/usr/bin/env bash
# Installs what building and testing rauta needs, idempotently. Safe to run
# on a fresh machine and on every test run: each step checks before it acts.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests and scripts use (curl: run-local's examples;
# procps: pgrep/pkill in scripts; prometheus: promtool validates /metrics in the tests;
# nghttp2-client: h2load and nghttp drive HTTP/2 and gRPC load by hand and in tests;
# chromium + chromium-driver: the status page's tests load it in headless Chromium
# through chromedriver, proxy/tests/it/status_page.rs).
APT_PACKAGES=(curl openssl procps prometheus nghttp2-client chromium chromium-driver)

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

# kubernetes-validate (PyPI) checks every manifest in deploy/ against the
# Kubernetes API schemas it ships, offline (k8s-sync/tests/deploy_manifests.rs).
KUBERNETES_VALIDATE_VERSION=1.37.0
if ! kubernetes-validate --version 2>/dev/null | grep -qx "$KUBERNETES_VALIDATE_VERSION"; then
  echo "setup: installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check \
    "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  if command -v pyenv >/dev/null; then pyenv rehash; fi
  if ! kubernetes-validate --version >/dev/null 2>&1; then
    echo "setup: kubernetes-validate installed but not on PATH ($(python3 -m site --user-base)/bin?)" >&2
    exit 1
  fi
fi

# A venv with grpcio and h2 for the real gRPC test peers
# (proxy/testkit/python/grpc_peer.py, proxy/testkit/src/grpc.rs); a venv so
# the pins cannot clash with the user's site-packages.
GRPCIO_VERSION=1.85.3
H2_VERSION=4.4.1
VENV=.venv-test
if [ "$("$VENV/bin/python" -c 'import grpc, h2; print(grpc.__version__, h2.__version__)' 2>/dev/null)" \
     != "$GRPCIO_VERSION $H2_VERSION" ]; then
  echo "setup: creating $VENV with grpcio $GRPCIO_VERSION and h2 $H2_VERSION"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet \
    "grpcio==$GRPCIO_VERSION" "h2==$H2_VERSION"
fi

# The eBPF toolchain (nightly + rust-src, LLVM 22, bpf-linker) that
# proxy/build.rs needs to build xdp/, and iproute2/ethtool for its tests.
scripts/setup-ebpf.sh

# cargo-fuzz (crates.io) builds and runs proxy/fuzz's targets with the
# nightly above; the test command runs each for a few seconds.
if ! command -v cargo-fuzz >/dev/null; then
  echo "setup: installing cargo-fuzz"
  cargo install --quiet --locked cargo-fuzz
fi

# httpwg-cli (crates.io; binary `httpwg`): the RFC 9113 conformance suite
# that proxy/tests/it/http2_conformance.rs runs against rauta (h2c, over
# io_uring). `httpwg --version` only prints its usage (and exits 0), so the
# pin is checked in cargo's list of installed crates.
HTTPWG_VERSION=0.2.5
if ! { command -v httpwg >/dev/null \
       && cargo install --list 2>/dev/null | grep -qx "httpwg-cli v$HTTPWG_VERSION:"; }; then
  echo "setup: installing httpwg-cli $HTTPWG_VERSION"
  cargo install --quiet --locked httpwg-cli --version "$HTTPWG_VERSION"
fi
