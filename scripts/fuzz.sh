#!/usr/bin/env bash
# Runs a fuzz target of proxy/fuzz for a bounded time (default: head_rewrite,
# 60 s), from its seed corpus; a crash leaves its input in
# proxy/fuzz/artifacts/. Installs cargo-fuzz on first use (nightly is
# installed by setup-ebpf.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-head_rewrite}
seconds=${2:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cd proxy
# Seeds are kept in git; what the fuzzer finds goes to a scratch corpus.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo +nightly fuzz run "$target" "$work" "fuzz/corpus/$target" -- -max_total_time="$seconds" -max_len=4096
