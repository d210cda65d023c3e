#!/usr/bin/env bash
# Runs rauta locally without a cluster: two demo echo backends and
# `rauta serve` on the manifests in deploy/examples/local. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

LISTEN=${LISTEN:-127.0.0.1:8080}
ADMIN=${ADMIN:-127.0.0.1:9901}

cargo build --release --locked -p rauta-proxy -p rauta-testkit --bins
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

target/release/rauta-echo --listen 127.0.0.1:9101 --name echo-1 & pids+=($!)
target/release/rauta-echo --listen 127.0.0.1:9102 --name api-1 & pids+=($!)
target/release/rauta serve --manifests deploy/examples/local --listen "$LISTEN" --admin "$ADMIN" & pids+=($!)

for _ in $(seq 50); do
  curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
cat <<MSG

rauta is serving on $LISTEN (admin $ADMIN). Try:
  curl -i -H 'Host: echo.local' http://$LISTEN/
  curl -i -H 'Host: echo.local' http://$LISTEN/api/users
  curl -i http://$LISTEN/nothing-routes-here        # 404 from rauta
  curl -i http://$ADMIN/readyz
Edit deploy/examples/local/*.yaml and the change is live on the next request.
Ctrl-C stops everything.
MSG
wait "${pids[2]}"
