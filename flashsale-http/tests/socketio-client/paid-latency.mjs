// Latency from POST /paid on the transaction service to the `sale_update`
// a browser-side socket.io-client v4 gets from the backend, at a constant
// rate of payments. Buys the buyers first (each must get a payment slot),
// then pays them at RATE/s, timing each payment from just before its
// request to its sale_update. Prints one JSON line of results.
//
//   node paid-latency.mjs <transaction-url> <backend-url> <rate/s> <seconds> [secret]
import { createHmac } from "node:crypto";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const [txUrl, backendUrl, rateArg, secondsArg, secret] = process.argv.slice(2);
const rate = Number(rateArg);
const total = Math.round(rate * Number(secondsArg));

const post = async (url, body, headers = {}) => {
  const text = JSON.stringify(body);
  const r = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: text,
  });
  return { status: r.status, body: await r.json().catch(() => null), text };
};

// 1. Buyers, 64 at a time.
const txs = new Array(total);
for (let next = 0; next < total; ) {
  const batch = [];
  for (let k = 0; k < 64 && next < total; k++, next++) {
    const i = next;
    batch.push(
      post(`${txUrl}/buy`, { buyerName: `lat-${i}` }).then((r) => {
        if (r.status !== 200 || r.body.state !== "payment") {
          throw new Error(`buy ${i}: ${r.status} ${JSON.stringify(r.body)}`);
        }
        txs[i] = r.body.transactionId;
      }),
    );
  }
  await Promise.all(batch);
}

// 2. The browser side.
const socket = io(backendUrl, { transports: ["websocket"], reconnection: false });
await new Promise((ok, fail) => {
  socket.on("connect", ok);
  socket.on("connect_error", fail);
});
const sentAt = new Map();
const latencies = [];
let done;
const all = new Promise((ok) => (done = ok));
socket.on("sale_update", (u) => {
  const t = sentAt.get(u.buyerName);
  if (t === undefined) return;
  latencies.push(performance.now() - t);
  sentAt.delete(u.buyerName);
  if (latencies.length === total) done();
});

// 3. Payments at a constant rate (open model: a slow answer does not slow
//    the next request).
const answers = [];
let failed = 0;
const start = performance.now();
for (let i = 0; i < total; i++) {
  const due = start + (i * 1000) / rate;
  const wait = due - performance.now();
  if (wait > 1) await new Promise((ok) => setTimeout(ok, wait));
  const body = { transactionId: txs[i] };
  const headers = secret
    ? { "x-flashsale-signature": "sha256=" + createHmac("sha256", secret).update(JSON.stringify(body)).digest("hex") }
    : {};
  const t0 = performance.now();
  sentAt.set(`lat-${i}`, t0);
  post(`${txUrl}/paid`, body, headers).then((r) => {
    answers.push(performance.now() - t0);
    if (r.status !== 200) failed++;
  });
}
const sendSeconds = (performance.now() - start) / 1000;
const timeout = setTimeout(() => done(), 30_000);
await all;
clearTimeout(timeout);
socket.close();
const sales = await (await fetch(`${backendUrl}/sales`)).json();

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] * 100) / 100 : null;
};
console.log(
  JSON.stringify({
    payments: total,
    offered_rate: rate,
    achieved_rate: Math.round(total / sendSeconds),
    failed,
    sale_update_received: latencies.length,
    paid_to_sale_update_ms: { p50: pct(latencies, 50), p90: pct(latencies, 90), p99: pct(latencies, 99), max: pct(latencies, 100) },
    backend_remaining: sales.map((s) => s.productQty),
    paid_answer_ms: { p50: pct(answers, 50), p99: pct(answers, 99) },
  }),
);
process.exit(0);
