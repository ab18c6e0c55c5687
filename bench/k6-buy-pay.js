// The reference's k6 buy/pay load, against our servers. One scenario per
// run, chosen with SCENARIO (small | medium | large | xlarge): a constant
// arrival rate for one minute. An iteration is a POST /buy with a fresh
// random buyer name; when the answer is `payment`, 85% of buyers then
// POST /pay with quantity 1; a 0.1 s pause ends it.
//
//   k6 run -e SCENARIO=large -e BUY_URL=http://127.0.0.1:3000 -e PAY_URL=http://127.0.0.1:3000 bench/k6-buy-pay.js
//
// RECORD=1 logs every answered buy (`{"buy":id,"state":…,"token":…}`) and
// accepted payment (`{"paid":id}`) as a console line, for a script to check
// afterwards (scripts/kill-under-load.sh).
//
// SOLD_OUT=1 is for a sale meant to sell out under the load: a 400 "sold
// out" answer to /buy is then expected, not a failure (with PAY_RATIO=1,
// every slot is paid, so it does sell out). Every other non-2xx
// answer fails the run (thresholds), as does any failed check.
import http from "k6/http";
import { check, sleep } from "k6";
import { Counter } from "k6/metrics";

const PER_MINUTE = { small: 50, medium: 1_000, large: 50_000, xlarge: 1_000_000 };
const name = __ENV.SCENARIO || "small";
const perMinute = PER_MINUTE[name];
if (!perMinute) throw new Error(`SCENARIO must be one of ${Object.keys(PER_MINUTE).join(", ")}`);
const soldOutExpected = __ENV.SOLD_OUT === "1";
const BUY_URL = __ENV.BUY_URL || "http://127.0.0.1:3000";
const PAY_URL = __ENV.PAY_URL || BUY_URL;
const DURATION = __ENV.DURATION || "1m";
// The share of buyers with a slot who pay (the reference's 85%).
const PAY_RATIO = Number(__ENV.PAY_RATIO || 0.85);
const RECORD = __ENV.RECORD === "1";

// Virtual users: an iteration takes ~0.1 s (its pause) plus two requests;
// 0.15 s worth of arrivals are ready, and up to three times that.
const perSecond = perMinute / 60;
const vus = Math.max(2, Math.ceil(perSecond * 0.15));

export const options = {
  scenarios: {
    [name]: {
      executor: "constant-arrival-rate",
      rate: perMinute,
      timeUnit: "1m",
      duration: DURATION,
      preAllocatedVUs: vus,
      maxVUs: vus * 3,
    },
  },
  thresholds: {
    http_req_failed: ["rate==0"],
    checks: ["rate==1"],
    server_errors: ["count==0"],
  },
  summaryTrendStats: ["avg", "min", "med", "p(90)", "p(95)", "p(99)", "max"],
};

http.setResponseCallback(
  soldOutExpected ? http.expectedStatuses(200, 400) : http.expectedStatuses(200),
);

const payments = new Counter("payments_ok");
const soldOut = new Counter("sold_out");
const serverErrors = new Counter("server_errors");
const params = { headers: { "Content-Type": "application/json" }, timeout: "30s" };

function buyerName() {
  return `k6-${__VU}-${__ITER}-${Math.random().toString(36).slice(2, 10)}`;
}

export default function () {
  const buy = http.post(`${BUY_URL}/buy`, JSON.stringify({ buyerName: buyerName() }), params);
  if (buy.status >= 500) serverErrors.add(1);
  let body = null;
  try {
    body = buy.json();
  } catch (_) {
    // checked below
  }
  const isSoldOut =
    soldOutExpected && buy.status === 400 && body && /sold out/i.test(String(body.message));
  if (isSoldOut) soldOut.add(1);
  check(buy, {
    "buy answered 200 (or sold out)": () => buy.status === 200 || isSoldOut,
    "buy names a transaction": () => isSoldOut || (body && typeof body.transactionId === "string"),
  });
  if (RECORD && buy.status === 200 && body) {
    console.log(JSON.stringify({ buy: body.transactionId, state: body.state, token: body.buyerToken }));
  }
  if (buy.status === 200 && body && body.state === "payment" && Math.random() < PAY_RATIO) {
    const pay = http.post(
      `${PAY_URL}/pay`,
      JSON.stringify({ transactionId: body.transactionId, quantity: 1 }),
      params,
    );
    if (pay.status >= 500) serverErrors.add(1);
    if (check(pay, { "pay answered 200": (r) => r.status === 200 })) {
      payments.add(1);
      if (RECORD) console.log(JSON.stringify({ paid: body.transactionId }));
    }
  }
  sleep(0.1);
}
