#!/usr/bin/env bash
# /buy throughput and p99 of this checkout's all-in-one server against
# another revision's, in the same run: both built in release (sharing
# target/, the older one in a temporary worktree), both `--in-memory` with
# one sale of 100M units, wrk with one thread on loopback against each in
# turn (A B A B …). Prints requests/s, p99, each server's and wrk's CPU,
# and the ratio. Figures go in BENCHMARKS.md.
#
#   scripts/load-versions.sh <revision> [seconds per run, default 10] [connections, default 64]
#   ROUNDS=N   A B pairs (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
rev=${1:?usage: scripts/load-versions.sh <revision> [seconds] [connections]}
secs=${2:-10}
conns=${3:-64}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

bin=$(mktemp -d)
tree=$(mktemp -d)
git worktree add -q --detach "$tree" "$rev"
cleanup() {
  kill "${old:-}" "${new:-}" 2>/dev/null || true
  wait 2>/dev/null || true
  git worktree remove --force "$tree"
  rm -rf "$bin"
}
trap cleanup EXIT
# One binary path for both builds: copy each away as soon as it is built.
cargo build --release --example flashsale -q
cp target/release/examples/flashsale "$bin/new"
(cd "$tree" && CARGO_TARGET_DIR="$OLDPWD/target" cargo build --release --example flashsale -q)
cp target/release/examples/flashsale "$bin/old"

old_port=$(free_port)
new_port=$(free_port)
RUST_LOG=warn "$bin/old" --in-memory --port "$old_port" --sale-qty 100000000 >/tmp/flashsale-old.log 2>&1 &
old=$!
RUST_LOG=warn "$bin/new" --in-memory --port "$new_port" --sale-qty 100000000 >/tmp/flashsale-new.log 2>&1 &
new=$!
wait_up "http://127.0.0.1:$old_port"
wait_up "http://127.0.0.1:$new_port"

results=$(mktemp)
for _ in $(seq "${ROUNDS:-2}"); do
  wrk_buy "$rev" "$old" "$old_port" "$results"
  wrk_buy this "$new" "$new_port" "$results"
done
awk -v rev="$rev" '{sum[$1] += $2; n[$1]++} END {
  o = sum[rev] / n[rev]; t = sum["this"] / n["this"];
  printf "mean: %s %.0f req/s, this checkout %.0f req/s, this/%s = %.1f%%\n", rev, o, t, rev, 100 * t / o
}' "$results"
