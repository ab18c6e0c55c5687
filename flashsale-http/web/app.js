// flashsale's buyer page: sign in, live sales list, sale page, waiting room
// and payment. Plain JavaScript, no build step. Every text from the server
// (product and buyer names) goes in as text, never as HTML.
'use strict';

// `flashsaleErrors`, `h`, `$` and `call` come from common.js.

// ----- small helpers --------------------------------------------------------

/** `1 h 02 min`, `3 min 05 s`, `42 s` for a duration in ms. */
function duration(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  const two = (n) => String(n).padStart(2, '0');
  if (hh > 0) return `${hh} h ${two(mm)} min`;
  if (mm > 0) return `${mm} min ${two(ss)} s`;
  return `${ss} s`;
}

const when = (iso) =>
  new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

// ----- state ----------------------------------------------------------------

const NAME_KEY = 'flashsale.buyer';
const txKey = (name, sale) => `flashsale.tx.${name}.${sale}`;
/**
 * The shop's sign-in token, when buyers sign in: the embedding site keeps
 * the buyer's JWT here, and the page sends it with eligibility and buys.
 */
const JWT_KEY = 'flashsale.jwt';
/** Where a transaction's buyer token is kept: only its holder may follow or leave it. */
const tokenKey = (tx) => `flashsale.token.${tx}`;

const store = {
  get: (k) => { try { return localStorage.getItem(k); } catch { return null; } },
  set: (k, v) => { try { localStorage.setItem(k, v); } catch { /* private mode */ } },
  remove: (k) => { try { localStorage.removeItem(k); } catch { /* private mode */ } },
};

const app = {
  config: { transactionUrl: '', paymentUrl: '' },
  name: store.get(NAME_KEY),
  /** Sales by id, as `GET /sales` gives them plus `started`/`ended` flags from live events. */
  sales: new Map(),
  salesError: null,
  socket: null,
  /** What the current view wants to hear: `{onEvent(name, data), onReconnect()}`. */
  view: null,
};

const txUrl = (path) => app.config.transactionUrl + path;
const payUrl = (path) => app.config.paymentUrl + path;

/** What each error `code` means to a buyer (codes are the contract; messages are not). */
const REFUSALS = {
  sold_out: 'Sold out: every unit has gone.',
  already_participated: 'You already took part in this sale: one per buyer.',
  already_joined: 'You already have a place in this sale.',
  too_many_joins: 'You have joined this sale as often as it allows.',
  sale_not_started: 'The sale has not started yet.',
  sale_ended: 'The sale has ended.',
  sale_not_initialized: 'This sale is not open here.',
  slot_expired: 'Your payment slot expired before the payment went through.',
  slot_left: 'You left your payment slot before the payment went through.',
  not_in_payment: 'This transaction cannot be paid any more.',
  transaction_not_found: 'This transaction cannot be paid any more.',
  invalid_name: 'That name cannot be used: 1 to 64 characters, no control characters.',
  unavailable: 'The shop is busy. Please try again in a moment.',
  bad_token: 'This place was taken in another browser: it cannot be followed from here.',
  bad_jwt: 'Please sign in to the shop first.',
  rate_limited: 'Too many tries at once. Please wait a moment.',
};

/** The server's refusal in plain words. */
function plain(answer) {
  if (answer.status === 0) return 'Could not reach the shop. Check your connection and try again.';
  const body = answer.body || {};
  return REFUSALS[body.code] || String(body.message || '') ||
    `The shop answered with an error (${answer.status}).`;
}

// ----- sales ----------------------------------------------------------------

function saleState(s, now = Date.now()) {
  if (s.productQty === 0) return 'sold-out';
  if (s.ended || now >= Date.parse(s.saleEnd)) return 'ended';
  if (!s.started && now < Date.parse(s.saleStart)) {
    // A pre-queue takes buyers before the start; their order is drawn then.
    return s.prequeueOpensAt && now >= Date.parse(s.prequeueOpensAt) ? 'prequeue' : 'upcoming';
  }
  return 'live';
}

const STATE_TEXT = {
  live: 'Live now', 'sold-out': 'Sold out', ended: 'Ended', upcoming: 'Upcoming', prequeue: 'Pre-queue open',
};
/** Whether a buyer may ask for a place now. */
const canBuy = (state) => state === 'live' || state === 'prequeue';

async function loadSales() {
  const r = await call('GET', '/sales');
  if (!r.ok || !Array.isArray(r.body)) {
    app.salesError = 'The sales could not be loaded. Retrying when the connection is back.';
    return;
  }
  app.salesError = null;
  const next = new Map();
  for (const s of r.body) {
    const old = app.sales.get(s.id);
    next.set(s.id, { ...s, started: old ? old.started : false, ended: old ? old.ended : false });
  }
  app.sales = next;
}

/** The facts shown for a sale, kept up to date by `refreshSales`. */
function saleFacts(s) {
  return h('div', { class: 'sale-facts', 'data-sale': s.id },
    h('p', { class: 'remaining', 'aria-live': 'polite' }, `${s.productQty} left`),
    h('span', { class: 'state' }),
    h('p', { class: 'countdown muted' }),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Starts'), h('dd', {}, h('time', { datetime: s.saleStart }, when(s.saleStart))),
      h('dt', {}, 'Ends'), h('dd', {}, h('time', { datetime: s.saleEnd }, when(s.saleEnd)))));
}

/** Brings every shown sale's remaining quantity, state and countdown up to date. */
function refreshSales() {
  const now = Date.now();
  for (const el of document.querySelectorAll('.sale-facts')) {
    const s = app.sales.get(el.dataset.sale);
    if (!s) continue;
    const state = saleState(s, now);
    el.querySelector('.remaining').textContent = `${s.productQty} left`;
    const badge = el.querySelector('.state');
    badge.textContent = STATE_TEXT[state];
    badge.className = `state state-${state}`;
    const countdown = el.querySelector('.countdown');
    countdown.textContent = state === 'upcoming' || state === 'prequeue'
      ? `Starts in ${duration(Date.parse(s.saleStart) - now)}`
      : state === 'live' ? `Ends in ${duration(Date.parse(s.saleEnd) - now)}` : '';
  }
  const buy = $('buy');
  if (buy) {
    const s = app.sales.get(buy.dataset.for);
    const state = s && saleState(s, now);
    buy.disabled = !s || !canBuy(state) || buy.dataset.busy === '1';
    buy.textContent = state === 'prequeue' ? 'Join the pre-queue' : 'Buy';
  }
}

/** The sales list; shown at once, then again with a fresh `GET /sales` unless `fresh` is false. */
function viewSales(fresh = true) {
  const list = h('ul', { class: 'sales', id: 'sales' },
    [...app.sales.values()].map((s) =>
      h('li', { class: 'card sale' },
        h('h2', {}, h('a', { href: `#/sales/${s.id}` }, s.productName)),
        saleFacts(s))));
  show(h('section', {},
    h('h1', {}, 'Sales'),
    app.salesError && h('p', { class: 'message bad' }, app.salesError),
    app.sales.size === 0 && !app.salesError && h('p', { class: 'muted' }, 'No sales yet.'),
    list));
  const view = {
    onEvent: (name) => { if (name === 'sales') viewSales(false); },
    onReconnect: async () => { await loadSales(); if (app.view === view) viewSales(false); },
  };
  app.view = view;
  if (fresh) loadSales().then(() => { if (app.view === view) viewSales(false); });
}

function viewSale(id) {
  const s = app.sales.get(id);
  if (!s) {
    show(h('section', {}, h('h1', {}, 'Sale not found'),
      h('p', {}, h('a', { href: '#/' }, 'All sales'))));
    app.view = { onEvent() {}, onReconnect: async () => { await loadSales(); route(); } };
    return;
  }
  const known = store.get(txKey(app.name, id));
  const message = h('p', { class: 'message', id: 'message', role: 'status', 'aria-live': 'polite' });
  const buy = h('button', { type: 'button', class: 'primary', id: 'buy', 'data-for': id }, 'Buy');
  buy.addEventListener('click', async () => {
    buy.dataset.busy = '1';
    refreshSales();
    message.className = 'message';
    message.textContent = 'Asking for a place…';
    const done = (text) => {
      delete buy.dataset.busy;
      message.className = 'message bad';
      message.textContent = text;
      refreshSales();
    };
    const jwt = store.get(JWT_KEY);
    const eligible = await call('POST', `/sales/${id}/eligible`, { buyerName: app.name }, jwt);
    if (!eligible.ok) return done(plain(eligible));
    const bought = await call('POST', txUrl(`/sales/${id}/buy`), { buyerName: app.name }, jwt);
    if (!bought.ok) return done(plain(bought));
    store.set(txKey(app.name, id), bought.body.transactionId);
    store.set(tokenKey(bought.body.transactionId), bought.body.buyerToken);
    location.hash = `#/tx/${bought.body.transactionId}`;
  });
  show(h('section', { class: 'card' },
    h('p', {}, h('a', { href: '#/' }, '← All sales')),
    h('h1', {}, s.productName),
    saleFacts(s),
    h('div', { class: 'actions' }, buy,
      known && h('a', { class: 'button', id: 'earlier', href: `#/tx/${known}` }, 'Your earlier place')),
    message));
  app.view = {
    onEvent() {},
    onReconnect: async () => { await loadSales(); refreshSales(); },
  };
}

// ----- a transaction: waiting room, payment, outcome -------------------------

const OUTCOME = {
  paid: ['Paid: it is yours. Thank you!', 'ok'],
  expired: ['Your payment slot expired. You can try again while stock lasts.', 'bad'],
  left: ['You gave up your place.', 'muted'],
  rejected_sold_out: ['Sold out: every unit has gone before your turn.', 'bad'],
  rejected_sale_ended: ['The sale ended before your turn.', 'bad'],
};

function viewTx(txId) {
  const body = h('div', {}, h('p', { class: 'muted' }, 'Loading your place…'));
  const message = h('p', { class: 'message', id: 'message', role: 'status', 'aria-live': 'polite' });
  show(h('section', { class: 'card' }, body, message));

  let status = null;
  let fetching = null;
  let again = false;

  const leave = (label) => h('button', {
    type: 'button', id: 'leave',
    async onclick() {
      const r = await call('POST', txUrl(`/transactions/${txId}/leave`), {}, store.get(tokenKey(txId)));
      if (!r.ok) { message.className = 'message bad'; message.textContent = plain(r); }
      refresh();
    },
  }, label);

  function render() {
    const s = status;
    const sale = app.sales.get(s.saleId);
    const title = sale ? sale.productName : 'Your place';
    const back = h('p', {}, h('a', { href: `#/sales/${s.saleId}` }, `← ${title}`));
    if (s.state === 'waiting' && s.prequeued) {
      body.replaceChildren(back,
        h('h1', {}, 'Pre-queue'),
        h('p', {}, 'You are in. When the sale starts, everyone here is put in a random order — arriving early gives no advantage.'),
        h('p', {}, 'The draw in'),
        h('p', { class: 'big', id: 'prequeue-countdown', 'aria-live': 'off' }),
        h('p', { class: 'muted' }, 'Keep this page open: your place appears at the start.'),
        h('div', { class: 'actions' }, leave('Leave the queue')));
    } else if (s.state === 'waiting') {
      body.replaceChildren(back,
        h('h1', {}, 'Waiting room'),
        h('p', { class: 'message warn', id: 'paused', hidden: !s.queuePaused },
          'The queue is paused by the organiser. You keep your place.'),
        h('p', {}, 'Your place in the queue'),
        h('p', { class: 'big', id: 'position', 'aria-live': 'polite' }, s.position),
        h('p', {}, 'Estimated wait: ', h('strong', { id: 'wait' })),
        h('p', { class: 'muted' }, 'Keep this page open: it moves to payment by itself when your turn comes.'),
        h('div', { class: 'actions' }, leave('Leave the queue')));
    } else if (s.state === 'payment') {
      const pay = h('button', { type: 'button', class: 'primary', id: 'pay' }, 'Pay');
      pay.addEventListener('click', async () => {
        pay.disabled = true;
        message.className = 'message';
        message.textContent = 'Paying…';
        const r = await call('POST', payUrl('/pay'), { transactionId: txId, quantity: 1 });
        if (!r.ok) { message.className = 'message bad'; message.textContent = plain(r); }
        else message.textContent = '';
        refresh();
      });
      body.replaceChildren(back,
        h('h1', {}, 'Your turn: pay now'),
        h('p', {}, 'Time left to pay'),
        h('p', { class: 'big', id: 'countdown', 'aria-live': 'off' }),
        h('div', { class: 'actions' }, pay, leave('Give up my slot')));
      pay.focus();
    } else {
      const [text, tone] = OUTCOME[s.state] || [`State: ${s.state}`, 'muted'];
      body.replaceChildren(back,
        h('h1', {}, s.state === 'paid' ? 'Done' : 'No longer in line'),
        h('p', { class: `outcome message ${tone}`, id: 'outcome' }, text),
        h('div', { class: 'actions' },
          s.state === 'expired' && h('a', { class: 'button primary', href: `#/sales/${s.saleId}`, id: 'try-again' }, 'Try again'),
          h('a', { class: 'button', href: '#/' }, 'All sales')));
    }
    tick();
  }

  function tick() {
    if (!status) return;
    const now = Date.now();
    const countdown = $('countdown');
    if (countdown && status.paymentDeadline) {
      const left = Date.parse(status.paymentDeadline) - now;
      countdown.textContent = left > 0 ? duration(left) : 'Time is up';
    }
    const draw = $('prequeue-countdown');
    if (draw && status.startsAt) {
      const left = Date.parse(status.startsAt) - now;
      draw.textContent = left > 0 ? duration(left) : 'drawing…';
      if (left <= 0) moved();
    }
    const wait = $('wait');
    if (wait) {
      // The server's estimate (people ahead ÷ how fast slots are given),
      // bounded by `turnBy`; unknown until slots have been given.
      const eta = status.estimatedAt ? Date.parse(status.estimatedAt) - now : null;
      const bound = status.turnBy ? Date.parse(status.turnBy) - now : null;
      let text = 'not known yet';
      if (status.queuePaused) text = 'on hold while the queue is paused';
      else if (eta != null && eta > 1000) text = `about ${duration(eta)}`;
      else if (eta != null) text = 'any moment now';
      else if (bound != null && bound > 1000) text = `at most ${duration(bound)}`;
      wait.textContent = text;
    }
  }

  let pushedAt = 0;
  const pushedLately = () => Date.now() - pushedAt < 3000;
  /** A pushed `queue_position`: the place and estimate, without a request. */
  function pushedPosition(data) {
    pushedAt = Date.now();
    if (!status || status.state !== 'waiting' || status.prequeued) return;
    status.position = data.position;
    status.estimatedAt = data.estimatedAt;
    status.turnBy = data.turnBy;
    const position = $('position');
    if (position) {
      position.textContent = status.position;
      position.dataset.pushed = 'true'; // for people and tests: this came pushed
    }
    tick();
  }

  /** The organiser paused or resumed the queue. */
  function paused(on) {
    if (!status || status.state !== 'waiting') return;
    status.queuePaused = on;
    const note = $('paused');
    if (note) note.hidden = !on;
    tick();
    if (!on) refresh();
  }

  /** Asks where the transaction stands; calls made meanwhile fold into one more. */
  async function refresh() {
    if (fetching) { again = true; return fetching; }
    fetching = (async () => {
      do {
        again = false;
        const r = await call('GET', txUrl(`/transactions/${txId}`), undefined, store.get(tokenKey(txId)));
        if (app.view !== view) return;
        if (!r.ok) {
          if (r.status === 404) {
            body.replaceChildren(h('h1', {}, 'Not found'),
              h('p', {}, 'This place in line is not known. ', h('a', { href: '#/' }, 'All sales')));
          } else {
            message.className = 'message bad';
            message.textContent = plain(r);
          }
          return;
        }
        const before = status && `${status.state}/${!!status.prequeued}`;
        status = r.body;
        // Re-render only on a new state: a view rebuilt under the buyer's
        // finger loses focus and clicks.
        if (before !== `${status.state}/${!!status.prequeued}`) render();
        else {
          if (status.state === 'waiting' && !status.prequeued) {
            $('position').textContent = status.position;
            $('paused').hidden = !status.queuePaused;
          }
          tick();
        }
        join(status.saleId);
      } while (again);
    })();
    try { await fetching; } finally { fetching = null; }
  }

  let joined = null;
  function join(saleId) {
    const live = status && (status.state === 'waiting' || status.state === 'payment');
    if (!live || !app.socket || !app.socket.connected || joined === app.socket.id) return;
    joined = app.socket.id;
    app.socket.emit('join', { saleId, transactionId: txId, buyerToken: store.get(tokenKey(txId)) });
  }

  // Many `queue_moved` in a burst: at most one status request per 250 ms.
  let moveTimer = null;
  const moved = () => {
    if (moveTimer) return;
    moveTimer = setTimeout(() => { moveTimer = null; refresh(); }, 250);
  };

  const view = {
    tick,
    onEvent(name, data) {
      if (!status || !data) return;
      const mine = data.transactionId === txId;
      // The server pushes this buyer's position (at most once a second);
      // `queue_moved` only makes it ask while no push has come lately.
      if (name === 'queue_position' && mine) pushedPosition(data);
      else if (name === 'queue_moved' && data.saleId === status.saleId && !pushedLately()) moved();
      else if (name === 'sold_out' && data.saleId === status.saleId) refresh();
      else if (name === 'queue_paused' && data.saleId === status.saleId) paused(true);
      else if (name === 'queue_resumed' && data.saleId === status.saleId) paused(false);
      else if (mine && ['queue_switch', 'slot_expired', 'queue_closed', 'refund_due'].includes(name)) refresh();
      else if (name === 'sales' && status.state !== 'waiting') render();
    },
    onReconnect() { joined = null; refresh(); },
  };
  app.view = view;
  refresh();
}

// ----- sign in, routing, live link -----------------------------------------

function viewSignIn() {
  const input = h('input', {
    type: 'text', id: 'buyer-name', name: 'buyerName', required: true, maxlength: 64,
    autocomplete: 'nickname', autocapitalize: 'off', spellcheck: 'false',
  });
  const message = h('p', { class: 'message bad', id: 'message', role: 'alert' });
  const form = h('form', { class: 'card', id: 'sign-in' },
    h('h1', {}, 'Sign in'),
    h('p', { class: 'muted' }, 'Your buyer name is all the shop needs. It stays in this browser until you sign out.'),
    h('label', { for: 'buyer-name' }, 'Buyer name'),
    input,
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Continue')),
    message);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const name = input.value.trim();
    if (!name) { message.textContent = 'Please enter a name.'; return; }
    if ([...name].length > 64) { message.textContent = 'At most 64 characters, please.'; return; }
    app.name = name;
    store.set(NAME_KEY, name);
    route();
  });
  show(form);
  app.view = null;
  input.focus();
}

function show(content) {
  const main = $('view');
  main.replaceChildren(content);
  refreshSales();
}

function route() {
  $('who').hidden = !app.name;
  $('who-name').textContent = app.name || '';
  if (!app.name) return viewSignIn();
  const parts = location.hash.replace(/^#\/?/, '').split('/');
  const previous = app.view;
  if (parts[0] === 'sales' && parts[1]) viewSale(decodeURIComponent(parts[1]));
  else if (parts[0] === 'tx' && parts[1]) viewTx(decodeURIComponent(parts[1]));
  else viewSales();
  if (previous) $('view').focus({ preventScroll: true });
}

function connect() {
  const conn = $('conn');
  const setConn = (up, text) => {
    conn.textContent = text;
    conn.className = `conn ${up ? 'conn-up' : 'conn-down'}`;
  };
  if (typeof io !== 'function') { setConn(false, 'Live updates unavailable'); return; }
  const socket = io({ transports: ['websocket'] });
  app.socket = socket;
  let connectedBefore = false;
  socket.on('connect', async () => {
    setConn(true, 'Live');
    // Anything may have changed while the link was down: ask again.
    if (connectedBefore) await loadSales();
    connectedBefore = true;
    if (app.view) app.view.onReconnect();
  });
  socket.on('disconnect', () => setConn(false, 'Reconnecting…'));
  socket.io.on('reconnect_attempt', () => setConn(false, 'Reconnecting…'));
  socket.on('connect_error', () => setConn(false, 'Offline: retrying…'));

  const saleChanged = (id, change) => {
    const s = app.sales.get(id);
    if (!s) { loadSales().then(() => app.view && app.view.onEvent('sales')); return; }
    Object.assign(s, change);
    refreshSales();
  };
  socket.on('sale_created', (d) => d && saleChanged(d.saleId, {}));
  socket.on('sale_update', (d) => d && saleChanged(d.saleId, { productQty: d.remainingQty }));
  socket.on('sale_started', (d) => d && saleChanged(d.saleId, { started: true }));
  socket.on('sale_ended', (d) => d && saleChanged(d.saleId, { ended: true }));
  for (const name of ['queue_moved', 'queue_position', 'queue_switch', 'sold_out', 'slot_expired', 'queue_closed', 'refund_due', 'queue_paused', 'queue_resumed']) {
    socket.on(name, (d) => app.view && app.view.onEvent(name, d));
  }
}

async function start() {
  const r = await call('GET', '/config.json');
  if (r.ok && r.body) Object.assign(app.config, r.body);
  $('sign-out').addEventListener('click', () => {
    store.remove(NAME_KEY);
    app.name = null;
    location.hash = '#/';
    route();
  });
  await loadSales();
  window.addEventListener('hashchange', route);
  connect();
  route();
  setInterval(() => {
    refreshSales();
    if (app.view && app.view.tick) app.view.tick();
  }, 1000);
}

start();
