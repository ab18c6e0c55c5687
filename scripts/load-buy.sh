#!/usr/bin/env bash
# /buy against a trivial route (/healthz) on the same flashsale server in the
# same run, with wrk on loopback. Builds the release server, starts it on a
# free port, runs both, stops it. Results go in BENCHMARKS.md by hand.
#
#   scripts/load-buy.sh [seconds per run, default 10] [connections, default 64]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-64}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --example flashsale -q
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RUST_LOG=warn target/release/examples/flashsale --in-memory --port "$port" --sale-qty 100000000 >/tmp/flashsale-load.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
echo "== GET /healthz (trivial route), ${secs}s, ${conns} connections"
wrk -t1 -c"$conns" -d"${secs}s" --latency "http://127.0.0.1:$port/healthz"
echo "== POST /buy (fresh buyer each request), ${secs}s, ${conns} connections"
wrk -t1 -c"$conns" -d"${secs}s" --latency -s bench/wrk-buy.lua "http://127.0.0.1:$port/buy"
echo "== server: $(ps -o rss= -p $server | awk '{printf "%.0f MiB RSS", $1/1024}') after the run"
curl -s "http://127.0.0.1:$port/sales"; echo
