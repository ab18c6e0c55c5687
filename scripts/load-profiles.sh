#!/usr/bin/env bash
# /buy throughput with the production profile's checks on, against the same
# server in the demo profile, in the same run: two release `flashsale`
# servers (one sale of 100M units each, so nobody is refused), wrk with one
# thread on loopback against each in turn, twice (A B A B). The production
# server's rate limit is set high enough never to refuse (one wrk address),
# so its cost is measured, not its refusals. Prints requests/s per run,
# each server's and wrk's CPU, and the ratio. Figures go in BENCHMARKS.md.
#
#   scripts/load-profiles.sh [seconds per run, default 10] [connections, default 64]
#   ROUNDS=N   A B pairs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
secs=${1:-10}
conns=${2:-64}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }
cargo build --release --example flashsale -q

demo_port=$(free_port)
prod_port=$(free_port)
RUST_LOG=warn target/release/examples/flashsale --in-memory --port "$demo_port" --sale-qty 100000000 \
  >/tmp/flashsale-demo.log 2>&1 &
demo=$!
RUST_LOG=warn PRODUCTION=true PAYMENT_SECRET=bench ADMIN_TOKEN=bench \
  CORS_ORIGIN=https://shop.example RATE_LIMIT='1000000/s,burst=1000000' \
  target/release/examples/flashsale --in-memory --port "$prod_port" --sale-qty 100000000 \
  >/tmp/flashsale-production.log 2>&1 &
prod=$!
trap 'kill $demo $prod 2>/dev/null; wait $demo $prod 2>/dev/null' EXIT
wait_up "http://127.0.0.1:$demo_port"
wait_up "http://127.0.0.1:$prod_port"

rm -f /tmp/flashsale-profiles.txt
for _ in $(seq "${ROUNDS:-2}"); do
  wrk_buy demo "$demo" "$demo_port" /tmp/flashsale-profiles.txt
  wrk_buy production "$prod" "$prod_port" /tmp/flashsale-profiles.txt
done
awk '{sum[$1] += $2; n[$1]++} END {
  d = sum["demo"] / n["demo"]; p = sum["production"] / n["production"];
  printf "mean: demo %.0f req/s, production %.0f req/s, production/demo = %.1f%%\n", d, p, 100 * p / d
}' /tmp/flashsale-profiles.txt
