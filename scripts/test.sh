#!/usr/bin/env bash
# The test command: formatting, lints, then every unit and integration test
# (integration tests start the real `rauta` binary in front of real backends),
# then a short run of every fuzz target (scripts/fuzz.sh --all, FUZZ_SECONDS
# each, default 5), each target counted as one test, a crash as a failure.
#
# Ends with one line: `tests: N passed, M failed, K skipped`. A test whose
# need (root, a tool, CPUs; rauta_testkit::require!) is missing outside CI
# returns early; it is counted as skipped, not passed (the testkit appends a
# `RAUTA-SKIP` line to $RAUTA_TEST_SKIP_LOG). Under CI (CI=true, as .ci/run
# sets) a missing need fails the test instead. Exits non-zero when anything
# failed.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
log=$(mktemp)
skips=$(mktemp)
trap 'rm -f "$log" "$skips"' EXIT
status=0
RAUTA_TEST_SKIP_LOG="$skips" cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log" || status=$?
# `fuzz: TARGET passed|failed` lines join the log the count is read from.
scripts/fuzz.sh --all "${FUZZ_SECONDS:-5}" 2>&1 | tee -a "$log" || status=$?
skipped=$(grep -c '^RAUTA-SKIP ' "$skips" || true)
if [ "$skipped" -gt 0 ]; then
  echo "skipped tests (a need is missing):"
  sed 's/^RAUTA-SKIP /  /' "$skips"
fi
# One closing line over every test binary (cargo prints one per binary, the
# last of which is often an empty doc-test run) and every fuzz target;
# skipped tests ran as "ok", so they come off the passed count.
awk -v skipped="$skipped" -v status="$status" '
  /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1) } }
  /^fuzz: [^ ]+ passed/ { p++ }
  /^fuzz: [^ ]+ failed/ { f++ }
  END {
    if (status != 0 && f == 0) f = 1   # cargo failed without a failed test (a build error, a crash)
    printf "tests: %d passed, %d failed, %d skipped\n", p - skipped, f, skipped
    exit (f > 0 || status != 0) ? 1 : 0
  }' "$log"
