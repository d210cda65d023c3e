#!/usr/bin/env bash
# The test command: formatting, lints, then every unit and integration test
# (integration tests start the real `rauta` binary in front of real backends).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
