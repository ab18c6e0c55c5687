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

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() {
  for _ in $(seq 300); do curl -sf "$1/healthz" >/dev/null && return; sleep 0.1; done
  echo "$1 did not start; see /tmp/bench-*.log" >&2
  exit 1
}
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null' EXIT

bport=$(free_port)
brokers=127.0.0.1:$bport
tansu broker --storage-engine memory://tansu/ --listener-url "tcp://$brokers" \
  --advertised-listener-url "tcp://$brokers" >/tmp/bench-tansu.log 2>&1 &
pids+=($!)

run=0
# start_split JOURNAL QUANTITY: a backend and a transaction service for a
# new sale; sets $backend, $tx and $txpid.
start_split() {
  run=$((run + 1))
  local sale topic bp tp
  sale=$(printf '%08x%016x' $$ $run)
  topic=bench-$$-$run
  bp=$(free_port)
  tp=$(free_port)
  RUST_LOG=warn PORT=$bp SALE_ID=$sale SALE_QTY=$2 KAFKA_BROKERS=$brokers KAFKA_TOPIC=$topic \
    KAFKA_GROUP_ID=$topic target/release/examples/backend >>/tmp/bench-backend.log 2>&1 &
  pids+=($!)
  backend=http://127.0.0.1:$bp
  wait_up "$backend"
  RUST_LOG=warn PORT=$tp SALE_ID=$sale BACKEND_BASE_URL=$backend PAYMENT_TIMEOUT_MS=600000 \
    PAYMENT_SECRET=bench JOURNAL=$1 KAFKA_BROKERS=$brokers KAFKA_TOPIC=$topic \
    KAFKA_JOURNAL_PREFIX=bench-journal-$$-$run- \
    target/release/examples/transaction >>/tmp/bench-transaction.log 2>&1 &
  txpid=$!
  pids+=($txpid)
  tx=http://127.0.0.1:$tp
  wait_up "$tx"
}

# A first argument of 0 skips the /buy runs.
for journal in $([ "$secs" = 0 ] || echo memory kafka); do
  start_split $journal 100000000
  echo "== POST /buy on the transaction service, journal: $journal, ${secs}s, 64 connections"
  wrk -t1 -c64 -d"${secs}s" --latency -s bench/wrk-buy.lua "$tx/buy"
  echo "   transaction service: $(ps -o rss= -p $txpid | awk '{printf "%.0f MiB RSS", $1/1024}')"
done

start_split kafka $((rate * pay_secs))
echo "== POST /paid -> sale_update at the browser side, $rate/s for ${pay_secs}s, journal: kafka"
node flashsale-http/tests/socketio-client/paid-latency.mjs "$tx" "$backend" "$rate" "$pay_secs" bench
