#!/usr/bin/env bash
# Installs what building and testing rauta's eBPF half needs, idempotently
# (called by scripts/setup.sh; each step checks before it acts):
#   - the `nightly` toolchain with `rust-src` (the xdp/ crate is built with
#     -Z build-std for bpfel-unknown-none; the rest of the workspace stays on
#     the stable toolchain of rust-toolchain.toml),
#   - Debian llvm-22-dev and libclang-22-dev (bpf-linker links libLLVM 22),
#   - bpf-linker 0.13.0 built against LLVM 22 (several minutes, once),
#   - iproute2 and ethtool, which the end-to-end tests over veth pairs use.
set -euo pipefail
cd "$(dirname "$0")/.."

BPF_LINKER_VERSION=0.13.0
LLVM_PREFIX_DEFAULT=/usr/lib/llvm-22
APT_PACKAGES=(llvm-22-dev libclang-22-dev iproute2 ethtool)

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup-ebpf: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# nightly + rust-src, for building the eBPF object only.
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "setup-ebpf: installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
  echo "setup-ebpf: adding rust-src to nightly"
  rustup component add rust-src --toolchain nightly
fi

# bpf-linker against the Debian LLVM 22, built by the toolchain that
# rust-toolchain.toml pins (we are in the repository root).
have_linker() {
  command -v bpf-linker >/dev/null 2>&1 &&
    bpf-linker --version 2>/dev/null | grep -q "$BPF_LINKER_VERSION"
}
if ! have_linker; then
  echo "setup-ebpf: building bpf-linker $BPF_LINKER_VERSION against LLVM 22 (several minutes, once)"
  LLVM_PREFIX="${LLVM_PREFIX:-$LLVM_PREFIX_DEFAULT}" \
    cargo install bpf-linker --version "$BPF_LINKER_VERSION" --locked \
    --no-default-features --features llvm-22
fi
have_linker || {
  echo "setup-ebpf: bpf-linker $BPF_LINKER_VERSION is not on PATH after installing it (is ~/.cargo/bin on PATH?)" >&2
  exit 1
}
