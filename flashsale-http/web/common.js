// What flashsale's pages share: the error log a test can read, and the
// small DOM helpers. Plain JavaScript, loaded before each page's script.
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
