// What flashsale's pages share: the error log a test can read, the small
// DOM helpers and the JSON request. Plain JavaScript, loaded before each page's script.
'use strict';

// Uncaught errors, unhandled rejections and console errors are kept here
// too, so that a test (or a person at the console) can ask the page whether
// anything went wrong.
window.flashsaleErrors = [];
window.addEventListener('error', (e) => window.flashsaleErrors.push(String(e.message)));
window.addEventListener('unhandledrejection', (e) => window.flashsaleErrors.push(String(e.reason)));
const consoleError = console.error.bind(console);
console.error = (...args) => {
  window.flashsaleErrors.push(args.map(String).join(' '));
  consoleError(...args);
};

/** `h('p', {class: 'x'}, 'text', child)`: an element with attributes and children. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v == null) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const $ = (id) => document.getElementById(id);

/**
 * A JSON request, with the bearer `token` (a buyer's, the operator's) if
 * given; resolves to `{ok, status, body}`, `status` 0 when the server was
 * not reached.
 */
async function call(method, url, body, token) {
  const headers = body === undefined ? {} : { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  try {
    const r = await fetch(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = null;
    try { data = await r.json(); } catch { /* no JSON body */ }
    return { ok: r.ok, status: r.status, body: data };
  } catch {
    return { ok: false, status: 0, body: null };
  }
}
