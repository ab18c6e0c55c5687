#!/usr/bin/env bash
# A crowd of live waiting buyers against the all-in-one server: CLIENTS
# Socket.IO connections (each a waiting buyer in its sale's and its
# transaction's rooms) while payments go through at PAY_RATE a second for
# DURATION_S seconds (flashsale-load/src/bin/flashsale-crowd.rs says what is
# measured).
#
#   scripts/crowd.sh [CLIENTS] [PAY_RATE] [DURATION_S]   (1000 1000 20)
#
# Raises the file limit for the server and the generator, starts a release
# server on a free loopback port with a sale that has 100 payment slots
# (so the crowd waits) and stock for everyone, runs flashsale-crowd beside
# it, ends the sale as its operator and stops the server. Exits non-zero if
# a client was disconnected, ended on a wrong position or quantity, or did
# not hear the sale end.
set -euo pipefail
cd "$(dirname "$0")/.."
clients=${1:-1000}
rate=${2:-1000}
duration=${3:-20}
# The server and the generator each hold a descriptor per client.
need=$((clients + 2048))
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need" ]; then
  ulimit -n "$need" 2>/dev/null || {
    echo "$clients clients need $need open files a process; the limit here is $hard" >&2
    exit 2
  }
else
  ulimit -n "$need"
fi
cargo build --release -q -p flashsale-load -p flashsale-examples --example flashsale
source scripts/lib.sh

port=$(free_port)
data=$(mktemp -d)
pid=
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$data"' EXIT
RUST_LOG=warn DATA_DIR=$data ADMIN_TOKEN=crowd-$$ MAX_CONNECTIONS=$((clients + 1000)) MAX_PAYMENT_SLOTS=100 \
  PAYMENT_TIMEOUT_MS=600000 SALE_QTY=$((rate * duration + clients + 2000)) \
  target/release/examples/flashsale --port "$port" >>/tmp/flashsale-crowd-server.log 2>&1 &
pid=$!
wait_up "http://127.0.0.1:$port"
ADMIN_TOKEN=crowd-$$ target/release/flashsale-crowd --url "http://127.0.0.1:$port" \
  --clients "$clients" --pay-rate "$rate" --duration-s "$duration" --server-pid "$pid"
