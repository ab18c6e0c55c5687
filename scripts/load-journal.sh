#!/usr/bin/env bash
# /buy throughput and p99 with the on-disk journal (the default) against
# --in-memory, in the same run: two release `flashsale` servers (one sale
# of 100M units each, so nobody is refused), wrk with one thread on
# loopback against each in turn (A B A B …). Prints requests/s and p99 per
# run, each server's and wrk's CPU, the ratio, and the journal's size per
# buyer. Figures go in BENCHMARKS.md.
#
#   scripts/load-journal.sh [seconds per run, default 10] [connections, default 64]
#   ROUNDS=N   A B pairs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
secs=${1:-10}
conns=${2:-64}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --example flashsale -q

data=$(mktemp -d)
mem_port=$(free_port)
disk_port=$(free_port)
RUST_LOG=warn target/release/examples/flashsale --in-memory --port "$mem_port" \
  --sale-qty 100000000 >/tmp/flashsale-memory.log 2>&1 &
mem=$!
RUST_LOG=warn DATA_DIR=$data target/release/examples/flashsale --port "$disk_port" \
  --sale-qty 100000000 >/tmp/flashsale-disk.log 2>&1 &
disk=$!
trap 'kill $mem $disk 2>/dev/null; wait $mem $disk 2>/dev/null; rm -rf "$data"' EXIT
wait_up "http://127.0.0.1:$mem_port"
wait_up "http://127.0.0.1:$disk_port"
echo "data directory on: $(df --output=source,fstype "$data" | tail -n 1)"

results=$(mktemp)
for _ in $(seq "${ROUNDS:-2}"); do
  wrk_buy memory "$mem" "$mem_port" "$results"
  wrk_buy disk "$disk" "$disk_port" "$results"
done
awk '{sum[$1] += $2; n[$1]++} END {
  m = sum["memory"] / n["memory"]; d = sum["disk"] / n["disk"];
  printf "mean: in-memory %.0f req/s, on-disk %.0f req/s, disk/memory = %.1f%%\n", m, d, 100 * d / m
}' "$results"
joined=$(awk '$1 == "disk" {n += $3} END {print n}' "$results")
bytes=$(stat -c %s "$data/journal.redb")
echo "journal: $bytes bytes on disk for $joined buyers joined ($(( bytes / (joined > 0 ? joined : 1) )) bytes per buyer)"
rm -f "$results"
