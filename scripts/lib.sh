# Shell helpers shared by the scripts: source it, do not run it.

# A free TCP port on loopback.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (up to 30 s) until $1/readyz answers 200 (a transaction service
# still taking over its sale answers /healthz, not /readyz).
wait_up() {
  for _ in $(seq 300); do curl -sf "$1/readyz" >/dev/null && return; sleep 0.1; done
  echo "$1 did not start; see /tmp/flashsale-*.log" >&2
  exit 1
}

# Starts tansu in memory on a free loopback port; sets $brokers and
# $broker_pid. The caller stops it.
start_tansu() {
  local port
  port=$(free_port)
  brokers=127.0.0.1:$port
  tansu broker --storage-engine memory://tansu/ --listener-url "tcp://$brokers" \
    --advertised-listener-url "tcp://$brokers" >/tmp/flashsale-tansu-$port.log 2>&1 &
  broker_pid=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return
    kill -0 "$broker_pid" 2>/dev/null || { cat "/tmp/flashsale-tansu-$port.log"; exit 1; }
    sleep 0.1
  done
  echo "tansu did not start" >&2
  exit 1
}

# start_split JOURNAL QUANTITY [extra env for the transaction service…]:
# release backend and transaction services on free ports for a new sale,
# over $brokers; sets $sale, $backend, $tx, $backend_pid and $tx_pid.
split_run=0
start_split() {
  local journal=$1 quantity=$2 topic bp tp
  shift 2
  split_run=$((split_run + 1))
  sale=$(printf '%08x%016x' $$ $split_run)
  topic=load-$$-$split_run
  bp=$(free_port)
  tp=$(free_port)
  env RUST_LOG=warn PORT="$bp" SALE_ID="$sale" SALE_QTY="$quantity" KAFKA_BROKERS="$brokers" \
    BUYER_TOKEN_SECRET=load \
    KAFKA_TOPIC="$topic" KAFKA_GROUP_ID="$topic" \
    target/release/examples/backend >>/tmp/flashsale-backend.log 2>&1 &
  backend_pid=$!
  backend=http://127.0.0.1:$bp
  wait_up "$backend"
  env RUST_LOG=warn PORT="$tp" SALE_ID="$sale" BACKEND_BASE_URL="$backend" JOURNAL="$journal" \
    BUYER_TOKEN_SECRET=load \
    KAFKA_BROKERS="$brokers" KAFKA_TOPIC="$topic" KAFKA_JOURNAL_PREFIX="load-journal-$$-$split_run-" \
    "$@" target/release/examples/transaction >>/tmp/flashsale-transaction.log 2>&1 &
  tx_pid=$!
  tx=http://127.0.0.1:$tp
  wait_up "$tx"
}

# wrk_buy NAME PID PORT RESULTS: one wrk run of fresh-buyer /buy requests
# ($secs seconds, $conns connections, one thread) against the server PID on
# PORT. Prints requests/s, p99, the server's and wrk's CPU; appends
# "NAME REQUESTS/S REQUESTS" to the file RESULTS.
wrk_buy() {
  local before after out rps p99 wrk_cpu tick
  tick=$(getconf CLK_TCK)
  before=$(awk '{print $14 + $15}' "/proc/$2/stat") # utime + stime, in ticks
  out=$( { TIMEFORMAT='%U %S'; time WRK_RUN="$1$RANDOM" wrk -t1 -c"$conns" -d"${secs}s" \
    --latency -s bench/wrk-buy.lua "http://127.0.0.1:$3/buy"; } 2>&1 )
  after=$(awk '{print $14 + $15}' "/proc/$2/stat")
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  wrk_cpu=$(echo "$out" | tail -n 1 | awk '{print $1 + $2}')
  echo "$1: $rps req/s, p99 $p99, $(echo "$out" | grep -E '^requests|^ +[0-9]+ requests' | tr '\n' ' '); server CPU $(( (after - before) / tick )) s, wrk CPU ${wrk_cpu} s over ${secs} s"
  echo "$1 $rps $(echo "$out" | awk '/requests in/ {print $1}')" >>"$4"
}
