#!/usr/bin/env bash
# Every check this project has, on a fresh Debian machine with a Rust
# toolchain: installs what it needs, then runs format and lint checks, all
# tests (unit, property, integration, doc), a short fuzz smoke
# and an API fuzz (schemathesis) against the all-in-one server.
# Exits non-zero when anything fails. CI runs exactly this (.ci/run).
#
#   FUZZ_SECONDS=N   seconds per fuzz target (default 15; 0 skips fuzzing)
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# --- tools -----------------------------------------------------------------
step "tools"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked
# Node and npm for the reference's Socket.IO client; Chromium and
# ChromeDriver for the web page's end-to-end tests.
apt_missing=()
command -v node >/dev/null || apt_missing+=(nodejs)
command -v npm >/dev/null || apt_missing+=(npm)
command -v chromium >/dev/null || apt_missing+=(chromium)
command -v chromedriver >/dev/null || apt_missing+=(chromium-driver)
if [ ${#apt_missing[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${apt_missing[@]}"
fi
# The reference's Socket.IO client, for flashsale-http's live-event tests.
npm ci --prefix flashsale-http/tests/socketio-client --no-audit --no-fund --loglevel=error
# A real Kafka-protocol broker for flashsale-kafka's tests, with SQLite
# storage so that a test can stop it and start it again on its data (built
# once per machine into its own directory: it takes ~12 minutes).
tansu_root=${TANSU_ROOT:-$HOME/.cache/flashsale/tansu-0.6-libsql}
if [ ! -x "$tansu_root/bin/tansu" ]; then
  cargo install tansu --version 0.6 --features dynostore,libsql --locked --root "$tansu_root"
fi
export PATH="$tansu_root/bin:$PATH"
fuzz_seconds=${FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" != 0 ] && ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked
fi

# --- static checks -----------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings denied)"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

step "cargo doc (warnings denied)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

# --- tests -------------------------------------------------------------------
summary=$(mktemp)
broker_pid=
cleanup() {
  rm -f "$summary"
  [ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
  return 0
}
trap cleanup EXIT

step "kafka broker (tansu, in memory, loopback)"
broker_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
tansu broker --storage-engine memory://tansu/ \
  --listener-url "tcp://127.0.0.1:$broker_port" \
  --advertised-listener-url "tcp://127.0.0.1:$broker_port" >/tmp/flashsale-tansu.log 2>&1 &
broker_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$broker_port") 2>/dev/null && break
  kill -0 "$broker_pid" 2>/dev/null || { cat /tmp/flashsale-tansu.log; exit 1; }
  sleep 0.1
done
export FLASHSALE_KAFKA_BROKERS="127.0.0.1:$broker_port"
echo "broker on $FLASHSALE_KAFKA_BROKERS"

step "tests (nextest)"
cargo nextest run --workspace --all-features --locked --no-fail-fast 2>&1 | tee "$summary"

step "doc tests"
cargo test --workspace --all-features --locked --doc 2>&1 | tee -a "$summary"

step "schemathesis against the all-in-one server's OpenAPI description"
scripts/schemathesis.sh

# --- fuzz smoke ----------------------------------------------------------------
if [ "$fuzz_seconds" != 0 ]; then
  step "fuzz smoke (${fuzz_seconds}s per target)"
  log=$(mktemp)
  (
    cd fuzz
    for target in $(cargo fuzz list); do
      # New finds go to corpus/ (not committed); seeds/ holds committed
      # starting points, e.g. a real journal for the replay target.
      mkdir -p "corpus/$target"
      seeds=()
      [ -d "seeds/$target" ] && seeds=("seeds/$target")
      if ! cargo fuzz run -s none "$target" "corpus/$target" "${seeds[@]}" \
        -- -max_total_time="$fuzz_seconds" >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz target $target FAILED"
        exit 1
      fi
      echo "$target: $(grep -Eo 'Done [0-9]+ runs in [0-9]+ second\(s\)' "$log" || tail -n 1 "$log")"
    done
  )
  rm -f "$log"
fi

# One closing line for CI: totals from nextest and the doc tests.
passed=$(grep -Eo '[0-9]+ passed' "$summary" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$summary" | awk '{s+=$1} END {print s+0}')
echo
echo "flashsale: $passed passed, $failed failed"
