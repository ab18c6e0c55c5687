// flashsale's operator dashboard: sign in with the admin token (kept for
// this tab only), each sale's live figures and charts of the last minutes,
// and the controls — pause, resume, live changes, end. Plain JavaScript, no
// build step; names from the server go in as text, never as HTML.
//
// Live without polling each figure: one `GET /sales/{id}/stats` answers
// every figure of the sale on view, every two seconds, and at once when a
// Socket.IO event says the sale changed.
'use strict';

// `flashsaleErrors`, `h`, `$` and `call` come from common.js.

/** How often the figures are fetched, and how much history the charts keep. */
const EVERY_MS = 2000;
const HISTORY = 300; // ten minutes at one sample every two seconds
const TOKEN_KEY = 'flashsale.admin';
const session = {
  get: () => { try { return sessionStorage.getItem(TOKEN_KEY); } catch { return null; } },
  set: (v) => { try { sessionStorage.setItem(TOKEN_KEY, v); } catch { /* private mode */ } },
  clear: () => { try { sessionStorage.removeItem(TOKEN_KEY); } catch { /* private mode */ } },
};

const app = {
  config: { transactionUrl: '' },
  token: session.get(),
  sales: [],
  sale: null,
  timer: null,
  history: new Map(), // sale id -> {t, waiting, slots, sold, remaining, joinsPerS, paymentsPerS}
  charts: [],
  socket: null,
};

/** The operator routes live where the sales' engines run. */
const opUrl = (path) => app.config.transactionUrl + path;
const plain = (r) => (r.body && r.body.message) || (r.status ? `Error ${r.status}` : 'The server is not reachable');
const ms = (v) => (v == null ? '—' : v < 1000 ? `${v} ms` : `${(v / 1000).toFixed(1)} s`);
const num = (v) => (v == null ? '—' : Number(v).toLocaleString());

// ----- sign in ---------------------------------------------------------------

function viewSignIn(error) {
  stop();
  $('sign-out').hidden = true;
  const input = h('input', { type: 'password', id: 'admin-token', autocomplete: 'off', required: true });
  const form = h('form', { class: 'card', id: 'sign-in' },
    h('h1', {}, 'Operator sign-in'),
    h('p', {}, 'The operator token (ADMIN_TOKEN). It is kept for this tab only.'),
    h('label', {}, 'Token ', input),
    error && h('p', { class: 'message bad', id: 'sign-in-error', role: 'alert' }, error),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary', id: 'sign-in-button' }, 'Sign in')));
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    app.token = input.value.trim();
    session.set(app.token);
    start();
  });
  $('view').replaceChildren(form);
  input.focus();
}

$('sign-out').addEventListener('click', () => { app.token = null; session.clear(); viewSignIn(); });

// ----- the dashboard -----------------------------------------------------------

async function start() {
  const sales = await call('GET', '/sales');
  app.sales = sales.ok ? sales.body : [];
  if (!app.sales.length) {
    $('view').replaceChildren(h('p', { class: 'card' }, sales.ok ? 'No sales yet.' : plain(sales)));
    return;
  }
  // The token is checked on the first sale's figures.
  const id = (app.sale && app.sales.some((s) => s.id === app.sale)) ? app.sale : app.sales[app.sales.length - 1].id;
  const first = await call('GET', opUrl(`/sales/${id}/stats`), undefined, app.token);
  if (first.status === 401) { viewSignIn('That token is not the operator token.'); return; }
  $('sign-out').hidden = false;
  show(id, first);
}

function stop() {
  if (app.timer) clearInterval(app.timer);
  app.timer = null;
  for (const c of app.charts) c.destroy();
  app.charts = [];
}

function figure(id, label, small) {
  return h('div', { class: 'figure' }, h('dt', {}, label), h('dd', { id, class: small ? 'small' : null }, '—'));
}

function show(id, first) {
  stop();
  app.sale = id;
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Sales' },
    app.sales.map((s) => h('button', {
      type: 'button', 'aria-pressed': String(s.id === id), onclick: () => show(s.id),
    }, s.productName)));
  const message = h('p', { class: 'message', id: 'message', role: 'status', 'aria-live': 'polite' });
  const pause = h('button', { type: 'button', id: 'pause', onclick: togglePause }, 'Pause');
  const end = h('button', { type: 'button', id: 'end', class: 'danger', onclick: endSale }, 'End sale now');
  const form = h('form', { id: 'change' },
    h('label', {}, 'Stock (quantity)', h('input', { type: 'number', min: 1, id: 'quantity' })),
    h('label', {}, 'Payment slots at once', h('input', { type: 'number', min: 1, id: 'max-slots', placeholder: 'unlimited' })),
    h('label', {}, 'Admissions per minute', h('input', { type: 'number', min: 1, id: 'rate', placeholder: 'unlimited' })),
    h('label', {}, 'Sale end', h('input', { type: 'datetime-local', id: 'sale-end', step: 1 })),
    h('label', {}, 'Joining', h('select', { id: 'joining' }, h('option', { value: 'open' }, 'open'), h('option', { value: 'closed' }, 'closed'))),
    h('button', { type: 'submit', class: 'primary', id: 'apply' }, 'Apply changes'));
  form.addEventListener('submit', (e) => { e.preventDefault(); applyChanges(); });
  const queueChart = h('div', { class: 'card chart', id: 'chart-queue' });
  const flowChart = h('div', { class: 'card chart', id: 'chart-flow' });
  $('view').replaceChildren(tabs,
    h('h1', {}, h('span', { id: 'product' }), h('span', { id: 'state', class: 'badge' })),
    h('dl', { class: 'figures' },
      figure('f-waiting', 'Waiting'), figure('f-slots', 'Payment slots'), figure('f-sold', 'Sold'),
      figure('f-remaining', 'Remaining'), figure('f-joins', 'Joins / s'), figure('f-payments', 'Payments / s'),
      figure('f-p50', 'Time in queue p50'), figure('f-p90', 'Time in queue p90'),
      figure('f-prequeued', 'Pre-queue'), figure('f-rate', 'Promotions / s'),
      figure('f-seed', 'Draw seed', true), figure('f-limits', 'Limits', true)),
    h('div', { class: 'charts' }, queueChart, flowChart),
    h('section', { class: 'card controls' }, h('h2', {}, 'Controls'),
      h('div', { class: 'actions' }, pause, end), form, message),
    h('section', { class: 'card' }, h('h2', {}, 'Head of the queue'),
      h('table', { class: 'head' }, h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'Buyer'), h('th', {}, 'Transaction'))),
        h('tbody', { id: 'queue-head' }))));
  const width = () => Math.max(260, queueChart.clientWidth - 32);
  const chart = (el, title, series) => new uPlot({
    title, width: width(), height: 200,
    // The last ten minutes up to the latest sample, however few there are.
    scales: { x: { time: true, range: (u, min, max) => [max - HISTORY * EVERY_MS / 1000, max] } },
    series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2 }))],
    axes: [{}, { size: 60 }],
  }, [[], ...series.map(() => [])], el);
  app.charts = [
    chart(queueChart, 'Queue', [['waiting', '#c2185b'], ['slots', '#1a73e8'], ['sold', '#1b7f3b']]),
    chart(flowChart, 'Flow (per second)', [['joins', '#a15c00'], ['payments', '#1b7f3b']]),
  ];
  window.onresize = () => app.charts.forEach((c) => c.setSize({ width: width(), height: 200 }));
  follow(id);
  if (first) render(first.body, true); else refresh(true);
  app.timer = setInterval(() => refresh(false), EVERY_MS);
}

let fetching = false;
async function refresh(fill) {
  if (fetching || !app.sale) return;
  fetching = true;
  try {
    const r = await call('GET', opUrl(`/sales/${app.sale}/stats`), undefined, app.token);
    if (r.status === 401) { viewSignIn('The operator token was refused.'); return; }
    if (r.ok) render(r.body, fill);
  } finally { fetching = false; }
}

/** Shows the sale's figures; records a sample for the charts. */
function render(s, fill) {
  const set = (id, v) => { const el = $(id); if (el) el.textContent = v; };
  const history = app.history.get(s.saleId) || [];
  const t = Date.parse(s.now) / 1000;
  const last = history[history.length - 1];
  const dt = last ? t - last.t : 0;
  const perS = (now, before) => (last && dt > 0 ? Math.max(0, (now - before) / dt) : null);
  // A sample at a new server time; at the same time, the latest stands.
  const fresh = !last || t > last.t;
  const sample = !fresh ? last : {
    t, waiting: s.waiting, slots: s.paymentSlots, sold: s.sold, joins: s.joins, payments: s.payments,
    joinsPerS: perS(s.joins, last && last.joins), paymentsPerS: perS(s.payments, last && last.payments),
  };
  if (fresh) history.push(sample);
  while (history.length > HISTORY) history.shift();
  app.history.set(s.saleId, history);

  set('product', s.productName);
  const state = $('state');
  const [label, cls] = s.ended ? ['ended', 'badge-ended'] : s.paused ? ['paused', 'badge-paused']
    : s.active ? ['live', 'badge-live'] : ['not started', 'badge-ended'];
  state.textContent = label;
  state.className = `badge ${cls}`;
  set('f-waiting', num(s.waiting));
  set('f-slots', num(s.paymentSlots));
  set('f-sold', num(s.sold));
  set('f-remaining', num(s.remaining));
  set('f-joins', sample.joinsPerS == null ? '—' : sample.joinsPerS.toFixed(1));
  set('f-payments', sample.paymentsPerS == null ? '—' : sample.paymentsPerS.toFixed(1));
  set('f-p50', ms(s.timeInQueueP50Ms));
  set('f-p90', ms(s.timeInQueueP90Ms));
  set('f-prequeued', s.prequeueOpensAt ? `${num(s.prequeued)} (${s.prequeueOrder})` : 'none');
  set('f-rate', s.promotionRate == null ? '—' : s.promotionRate.toFixed(1));
  set('f-seed', s.drawSeed || (s.prequeueOpensAt ? 'drawn at the start' : '—'));
  set('f-limits', `${s.maxPaymentSlots ? `${num(s.maxPaymentSlots)} slots` : 'slots: stock'}, ${s.admissionsPerMinute ? `${num(s.admissionsPerMinute)}/min` : 'no rate'}, joining ${s.joining}`);
  const pause = $('pause');
  pause.textContent = s.paused ? 'Resume' : 'Pause';
  pause.disabled = s.ended;
  $('end').disabled = s.ended;
  $('apply').disabled = s.ended;
  if (fill) {
    $('quantity').value = s.quantity;
    $('max-slots').value = s.maxPaymentSlots || '';
    $('rate').value = s.admissionsPerMinute || '';
    $('sale-end').value = localInput(s.saleEnd);
    $('joining').value = s.joining;
  }
  $('queue-head').replaceChildren(...s.queueHead.map((q) =>
    h('tr', {}, h('td', {}, q.position), h('td', {}, q.buyerName), h('td', {}, h('code', {}, q.transactionId)))));
  const xs = history.map((p) => p.t);
  app.charts[0].setData([xs, history.map((p) => p.waiting), history.map((p) => p.slots), history.map((p) => p.sold)]);
  app.charts[1].setData([xs, history.map((p) => p.joinsPerS), history.map((p) => p.paymentsPerS)]);
}

/** An ISO time as a `datetime-local` value, in the browser's zone. */
function localInput(iso) {
  const d = new Date(iso);
  const two = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function say(text, tone) {
  const m = $('message');
  m.className = `message ${tone || ''}`;
  m.textContent = text;
}

async function act(method, path, body, done) {
  const r = await call(method, opUrl(path), body, app.token);
  if (r.status === 401) { viewSignIn('The operator token was refused.'); return; }
  if (!r.ok) { say(plain(r), 'bad'); return; }
  say(done, 'ok');
  render(r.body, true);
}

async function togglePause() {
  const resume = $('pause').textContent === 'Resume';
  await act('POST', `/sales/${app.sale}/${resume ? 'resume' : 'pause'}`, {}, resume ? 'Resumed.' : 'Paused: no slot is granted until you resume.');
}

async function endSale() {
  if (!confirm('End this sale now? Waiting buyers are let go; this cannot be undone.')) return;
  await act('POST', `/sales/${app.sale}/end`, {}, 'The sale has ended.');
}

async function applyChanges() {
  const body = {};
  const int = (id) => ($(id).value.trim() === '' ? null : Number($(id).value));
  const stats = app.history.get(app.sale);
  body.quantity = int('quantity');
  if (body.quantity == null) delete body.quantity;
  body.maxPaymentSlots = int('max-slots');
  body.admissionsPerMinute = int('rate');
  if ($('sale-end').value) body.saleEnd = new Date($('sale-end').value).toISOString();
  body.joining = $('joining').value;
  const risky = [];
  if (body.joining === 'closed') risky.push('close joining (new buyers are refused)');
  if (body.quantity != null && stats && stats.length && body.quantity < (stats[stats.length - 1].sold + stats[stats.length - 1].slots + 1)) risky.push('set the stock to what is already sold or held');
  if (risky.length && !confirm(`This will ${risky.join(' and ')}. Go on?`)) return;
  await act('PATCH', `/sales/${app.sale}`, body, 'Changes applied.');
}

// ----- live link -----------------------------------------------------------------

function follow(saleId) {
  if (!app.socket) return;
  app.socket.emit('join', { saleId });
}

function connect() {
  if (typeof io !== 'function') return;
  const socket = io({ transports: ['websocket'] });
  app.socket = socket;
  const conn = $('conn');
  socket.on('connect', () => {
    conn.textContent = 'Live';
    conn.className = 'conn conn-up';
    if (app.sale) follow(app.sale);
  });
  socket.on('disconnect', () => { conn.textContent = 'Reconnecting…'; conn.className = 'conn conn-down'; });
  for (const name of ['sale_update', 'queue_paused', 'queue_resumed', 'sale_changed', 'sale_started', 'sale_ended', 'sold_out']) {
    socket.on(name, (data) => { if (data && data.saleId === app.sale) refresh(false); });
  }
  socket.on('sale_created', () => { if (app.token) start(); });
}

(async function main() {
  const config = await fetch('/config.json').then((r) => r.json()).catch(() => null);
  if (config) app.config = config;
  connect();
  if (app.token) start(); else viewSignIn();
})();
