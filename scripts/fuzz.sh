#!/usr/bin/env bash
# Runs fuzz targets of proxy/fuzz for a bounded time, from their seed
# corpora:
#   scripts/fuzz.sh [TARGET] [SECONDS]   one target (default: head_rewrite,
#                                        60 s), libFuzzer's output as it runs
#   scripts/fuzz.sh --all [SECONDS]      every target in turn (default: 5 s
#                                        each), one line per target:
#                                        `fuzz: TARGET passed (...)` or
#                                        `fuzz: TARGET failed (...)`, and the
#                                        end of a failed run's output
# A crash leaves its input in proxy/fuzz/artifacts/TARGET/ and makes the
# script exit non-zero (with --all, after every target ran). Installs
# cargo-fuzz on first use (nightly is installed by setup-ebpf.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
all=false
if [ "${1:-}" = "--all" ]; then
  all=true
  shift
  seconds=${1:-5}
else
  target=${1:-head_rewrite}
  seconds=${2:-60}
fi
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
# The targets never load the XDP program; building it would only cost time.
export AYA_BUILD_SKIP=1
cd proxy
# Seeds are kept in git; what the fuzzer finds goes to a scratch corpus.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# -timeout: one input running this long is a hang, reported as a crash.
flags=(-max_total_time="$seconds" -max_len=4096 -timeout=30)
# Overflow checks and debug_assert!s on: a silently wrapping count is a
# bug the fuzzer should report (build and runs need the same flag).
build=(--debug-assertions)

if ! $all; then
  cargo +nightly fuzz run "${build[@]}" "$target" "$work" "fuzz/corpus/$target" -- "${flags[@]}"
  exit
fi

# Built once for every target; each run then only starts its binary.
cargo +nightly fuzz build "${build[@]}"
failed=0
for t in $(cargo +nightly fuzz list); do
  mkdir -p "$work/$t"
  out="$work/$t.log"
  if cargo +nightly fuzz run "${build[@]}" "$t" "$work/$t" "fuzz/corpus/$t" -- "${flags[@]}" >"$out" 2>&1; then
    # libFuzzer's last line: `Done N runs in S second(s)`.
    runs=$(grep -o 'Done [0-9]* runs' "$out" | tail -1 | cut -d' ' -f2)
    echo "fuzz: $t passed (${seconds} s, ${runs:-?} runs)"
  else
    failed=$((failed + 1))
    tail -n 40 "$out" | sed 's/^/  | /'
    echo "fuzz: $t failed (input in proxy/fuzz/artifacts/$t/)"
  fi
done
[ "$failed" -eq 0 ]
