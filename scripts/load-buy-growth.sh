#!/usr/bin/env bash
# /buy latency as the sale grows: measured on the release flashsale server
# when 0, ~100k and ~1M buyers have joined (the reference's grew roughly
# linearly: ~1 ms at 0, ~26 ms at 75k). Each measurement is wrk with one
# connection (one request at a time) for 5 s; between them, wrk with 64
# connections adds buyers until the sale holds the next size.
#
#   scripts/load-buy-growth.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release -q --example flashsale
source scripts/lib.sh
port=$(free_port)
base=http://127.0.0.1:$port
RUST_LOG=warn target/release/examples/flashsale --in-memory --port "$port" --sale-qty 100000000 \
  >/tmp/flashsale-growth.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null' EXIT
wait_up "$base"

joined=0
run=0
# wrk with the buy script; adds the buyers it made join to $joined.
buy() {
  run=$((run + 1))
  WRK_RUN=$run wrk -t1 "$@" -s bench/wrk-buy.lua "$base/buy" >/tmp/flashsale-growth-wrk.out
  joined=$((joined + $(awk '/^requests [0-9]+,/ {gsub(",", ""); print $2 - $4}' /tmp/flashsale-growth-wrk.out)))
}
measure() {
  local before=$joined
  buy -c1 -d5s --latency
  awk -v j="$before" '
    /^ +50%/ {p50=$2} /^ +90%/ {p90=$2} /^ +99%/ {p99=$2} /Requests\/sec/ {rps=$2}
    END {printf "| %d | %s | %s | %s | %s |\n", j, p50, p90, p99, rps}' /tmp/flashsale-growth-wrk.out
}
fill_to() {
  while [ "$joined" -lt "$1" ]; do buy -c64 -d2s; done
}
echo "| joined before | p50 | p90 | p99 | requests/s (1 connection) |"
echo "|---:|---:|---:|---:|---:|"
measure
fill_to 100000
measure
fill_to 1000000
measure
echo "server RSS: $(ps -o rss= -p $server | awk '{printf "%.0f MiB", $1/1024}')"
