#!/usr/bin/env bash
# The benchmark: installs its tools (idempotently), builds rauta and the
# benchmark driver in release mode, runs the criterion micro-benchmarks,
# then the side-by-side load benchmark against nginx and HAProxy on
# 127.0.0.1, and writes bench/results/latest.md (+ latest.csv).
# Not part of the test command. About 14 minutes once the tools are in place.
#
#   scripts/bench.sh                  # the whole suite
#   scripts/bench.sh --quick          # a smoke run: 1 round, 3 s runs, callgrind on rauta only
#   scripts/bench.sh --no-micro       # skip the criterion micro-benchmarks
#   scripts/bench.sh --no-install     # use the tools as they are
#   scripts/bench.sh -- --scenarios keepalive --rounds 5   # options for rauta-bench
#   scripts/bench.sh -- --scenarios h2-tls,grpc-unary --out /tmp/h2.md   # elsewhere than latest.md
#   scripts/bench.sh --no-micro -- --scenarios tcp-stream,tcp-conns --tcp-bytes 256M   # L4 only
#
# Everything listens on 127.0.0.1 only. The proxy under test runs on CPU 1,
# the backend and the load generator on CPU 0.
set -euo pipefail
cd "$(dirname "$0")/.."

micro=1
install=1
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) extra+=(--duration 3 --rounds 1 --perf-secs 2 --callgrind rauta --callgrind-secs 3); shift ;;
    --no-micro) micro=0; shift ;;
    --no-install) install=0; shift ;;
    --) shift; extra+=("$@"); break ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "bench: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

if [ "$(nproc)" -lt 2 ]; then
  echo "bench: needs at least 2 CPUs (proxy on one, backend and load generator on the other)" >&2
  exit 1
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if [ "$install" -eq 1 ]; then
  # tool -> Debian package (perf: linux-perf; callgrind_control: valgrind;
  # h2load, for the HTTP/2 and gRPC scenarios: nghttp2-client).
  declare -A PKG=([wrk]=wrk [nginx]=nginx-light [haproxy]=haproxy [valgrind]=valgrind
                  [callgrind_control]=valgrind [perf]=linux-perf [taskset]=util-linux
                  [h2load]=nghttp2-client [tcpdump]=tcpdump)
  missing=()
  for tool in "${!PKG[@]}"; do
    command -v "$tool" >/dev/null || missing+=("${PKG[$tool]}")
  done
  # nginx's stream module, for the L4 scenarios (tcp-stream, tcp-conns):
  # a dynamic module in its own package, not a tool on the PATH.
  [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || missing+=(libnginx-mod-stream)
  if [ "${#missing[@]}" -gt 0 ]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "bench: installing ${missing[*]}"
    # Keep the packages' init scripts from starting nginx/haproxy services.
    policy=/usr/sbin/policy-rc.d
    added_policy=0
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
      $SUDO chmod +x "$policy"
      added_policy=1
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null || {
      [ "$added_policy" -eq 0 ] || $SUDO rm -f "$policy"
      echo "bench: apt-get install ${missing[*]} failed" >&2
      exit 1
    }
    [ "$added_policy" -eq 0 ] || $SUDO rm -f "$policy"
  fi
  # oha (crates.io) for the fixed-rate scenario; building it takes ~10 min
  # on 2 cores the first time. Without it that scenario falls back to wrk.
  if ! command -v oha >/dev/null; then
    echo "bench: installing oha (cargo install oha --locked; slow the first time)"
    if ! cargo install oha --locked --quiet; then
      echo "bench: oha did not build; the fixed-rate scenario will use wrk (closed loop)" >&2
    fi
  fi
fi

echo "bench: building rauta and rauta-bench (release)"
cargo build --release --locked --quiet -p rauta-proxy -p rauta-bench
TARGET_DIR=${CARGO_TARGET_DIR:-target}

criterion=()
if [ "$micro" -eq 1 ]; then
  echo "bench: criterion micro-benchmarks (cargo bench -p rauta-bench --bench hot_path --bench metrics)"
  rm -rf "$TARGET_DIR/criterion"
  cargo bench --locked --quiet -p rauta-bench --bench hot_path --bench metrics -- \
    --warm-up-time 1 --measurement-time 2 2>&1 | grep -E "^[a-z_]+/|time:" || true
  criterion=(--criterion-dir "$TARGET_DIR/criterion")
fi

# The report goes to rauta-bench's default, bench/results/latest.md, unless
# the options after -- name another --out.
exec "$TARGET_DIR/release/rauta-bench" --rauta "$TARGET_DIR/release/rauta" \
  "${criterion[@]}" "${extra[@]}"
