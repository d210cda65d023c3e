#!/usr/bin/env bash
# The shard cost of tracing: CPU per request of rauta (one shard) for
# keep-alive small GETs with tracing off, propagation only (ratio 0 and an
# unsampled client traceparent) and 100% sampled and exported to a local
# OTLP/HTTP sink. nginx is the backend, wrk the client, both on CPU 0; rauta
# on CPU 1. Usage: scripts/bench-tracing.sh RAUTA_BIN [SECONDS] [ROUNDS]
set -euo pipefail
BIN=${1:?rauta binary (release)}
SECS=${2:-5}
ROUNDS=${3:-3}
W=$(mktemp -d /tmp/rauta-bench-tracing.XXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
BPORT=18380 PPORT=18381 APORT=18382 SPORT=18383

mkdir -p "$W/logs" "$W/m"
cat > "$W/nginx.conf" <<NG
worker_processes 1;
daemon off;
error_log $W/logs/error.log warn;
pid $W/nginx.pid;
events { worker_connections 1024; }
http { access_log off;
  server { listen 127.0.0.1:$BPORT; location / { return 200 "ok\n"; } } }
NG
taskset -c 0 nginx -p "$W/" -c "$W/nginx.conf" &

cat > "$W/sink.py" <<PY
import http.server
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"{}")
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", $SPORT), H).serve_forever()
PY
taskset -c 0 python3 "$W/sink.py" &

cat > "$W/m/all.yaml" <<Y
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: rauta
spec:
  controller: rauta.io/ingress-controller
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: bench
spec:
  type: ClusterIP
  ports:
  - name: http
    port: 80
    targetPort: $BPORT
    protocol: TCP
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: web-0
  namespace: bench
  labels:
    kubernetes.io/service-name: web
addressType: IPv4
ports:
- name: http
  port: $BPORT
endpoints:
- addresses: ["127.0.0.1"]
  conditions:
    ready: true
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: all
  namespace: bench
spec:
  ingressClassName: rauta
  rules:
  - http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              name: http
Y

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# The shard thread's own ticks (the exporter thread is not on a shard core).
shard_ticks() {
  for t in /proc/$1/task/*; do
    if [ "$(cat "$t/comm")" = "rauta-shard-0" ]; then
      awk '{print $14 + $15}' "$t/stat"
    fi
  done
}
HZ=$(getconf CLK_TCK)

run() { # name, rauta extra args, wrk header
  local name=$1 extra=$2 header=$3
  RUST_LOG=warn "$BIN" serve --manifests "$W/m" --listen 127.0.0.1:$PPORT \
    --admin 127.0.0.1:$APORT --shards 1 --cpus 1 --drain-timeout 1s $extra \
    > "$W/logs/rauta-$name.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$APORT/readyz" && break
    sleep 0.1
  done
  local hdr=()
  [ -n "$header" ] && hdr=(-H "$header")
  taskset -c 0 wrk -t1 -c32 -d1s "${hdr[@]}" "http://127.0.0.1:$PPORT/" > /dev/null
  local t0 t1 s0 s1
  t0=$(cpu_ticks $pid)
  s0=$(shard_ticks $pid)
  local out
  out=$(taskset -c 0 wrk -t1 -c32 -d"${SECS}s" "${hdr[@]}" "http://127.0.0.1:$PPORT/")
  t1=$(cpu_ticks $pid)
  s1=$(shard_ticks $pid)
  local reqs
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  local dropped
  dropped=$(curl -s "http://127.0.0.1:$APORT/metrics" | awk '/^rauta_otel_spans_dropped_total/ {s+=$2} END {print s+0}')
  kill $pid; wait $pid 2>/dev/null || true
  awk -v n="$name" -v t=$((t1 - t0)) -v s=$((s1 - s0)) -v hz="$HZ" -v r="$reqs" -v d="$dropped" \
    'BEGIN { printf "%s %.3f %.3f %d %d\n", n, s / hz * 1e6 / r, t / hz * 1e6 / r, r, d }'
}

TP="traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
TPS="traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
OTLP="--otlp-endpoint http://127.0.0.1:$SPORT"
sleep 0.5
echo "config shard_cpu_us_per_request process_cpu_us_per_request requests spans_dropped"
for _ in $(seq "$ROUNDS"); do
  run off "" "$TP"
  run propagate "$OTLP --otlp-sample-ratio 0" "$TP"
  run sampled "$OTLP --otlp-sample-ratio 1" "$TPS"
done
