#!/usr/bin/env bash
# The split deployment over a real Kafka-protocol broker (tansu, in memory,
# on loopback), release build:
#  1. POST /buy throughput on the transaction service with its journal in
#     Kafka vs in memory (wrk, a fresh buyer each request);
#  2. latency from POST /paid on the transaction service to the Socket.IO
#     sale_update a browser-side socket.io-client v4 gets from the backend,
#     at a constant rate of payments.
# Starts everything it needs on free ports and stops it at the end. Results
# go in BENCHMARKS.md by hand.
#
#   scripts/bench-kafka.sh [wrk seconds, default 10] [payments/s, default 1000] [payment seconds, default 20]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
rate=${2:-1000}
pay_secs=${3:-20}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
command -v node >/dev/null || { apt-get update -qq && apt-get install -y -qq nodejs npm; }
command -v tansu >/dev/null || cargo install tansu --features dynostore --locked
(cd flashsale-http/tests/socketio-client && npm ci --silent --no-audit --no-fund)
cargo build --release -q --example backend --example transaction

source scripts/lib.sh
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT
start_tansu
pids+=("$broker_pid")

# A first argument of 0 skips the /buy runs.
for journal in $([ "$secs" = 0 ] || echo memory kafka); do
  start_split $journal 100000000 PAYMENT_TIMEOUT_MS=600000
  pids+=("$backend_pid" "$tx_pid")
  echo "== POST /buy on the transaction service, journal: $journal, ${secs}s, 64 connections"
  wrk -t1 -c64 -d"${secs}s" --latency -s bench/wrk-buy.lua "$tx/buy"
  echo "   transaction service: $(ps -o rss= -p $tx_pid | awk '{printf "%.0f MiB RSS", $1/1024}')"
done

start_split kafka $((rate * pay_secs)) PAYMENT_TIMEOUT_MS=600000 PAYMENT_SECRET=bench
pids+=("$backend_pid" "$tx_pid")
echo "== POST /paid -> sale_update at the browser side, $rate/s for ${pay_secs}s, journal: kafka"
node flashsale-http/tests/socketio-client/paid-latency.mjs "$tx" "$backend" "$rate" "$pay_secs" bench
