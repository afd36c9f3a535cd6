// Building the page from the API's answers: elements, no HTML strings,
// no inline styles (the console's content security policy forbids them).
import { t } from './i18n.js';

// h makes an element. attrs: class, text, on (events), dataset keys as
// data-*, any other attribute by name; false and null attributes are left
// out. Children are nodes or strings; null and false are skipped.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'on') for (const [ev, f] of Object.entries(v)) el.addEventListener(ev, f);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

// replace puts children in place of el's.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// section is a titled part of a page.
export function section(titleKey, ...children) {
  const id = 'sec-' + titleKey.replace(/[^a-z0-9]+/gi, '-');
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id, text: t(titleKey) }), ...children);
}

export const dash = '—';

// fmtTime shows a time of the API as the hotline's clock on the wall
// says it: the API answers in the hotline's zone, with its offset, and a
// browser elsewhere must not move it to its own zone.
export function fmtTime(iso) {
  if (!iso) return dash;
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)/.exec(String(iso));
  if (!m) return String(iso);
  const thisYear = String(new Date().getFullYear()) === m[1];
  return `${thisYear ? '' : m[1] + '-'}${m[2]}-${m[3]} ${m[4]}:${m[5]}:${m[6]}`;
}

// fmtDuration: 75 → 1:15, 3725 → 1:02:05.
export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return dash;
  const neg = seconds < 0;
  let s = Math.floor(Math.abs(seconds));
  const hh = Math.floor(s / 3600);
  s -= hh * 3600;
  const mm = Math.floor(s / 60);
  const ss = s - mm * 60;
  const two = (n) => String(n).padStart(2, '0');
  const out = hh > 0 ? `${hh}:${two(mm)}:${two(ss)}` : `${mm}:${two(ss)}`;
  return neg ? '-' + out : out;
}

export function secondsSince(iso, now = Date.now()) {
  if (!iso) return null;
  const d = new Date(iso).getTime();
  return Number.isNaN(d) ? null : Math.max(0, (now - d) / 1000);
}

// fmtRate shows a rate 0..1 as a percentage; no rate is a dash, never 0 %.
export function fmtRate(r) {
  if (r === null || r === undefined) return dash;
  return (r * 100).toFixed(1) + ' %';
}

export function fmtPer10k(r) {
  if (r === null || r === undefined) return dash;
  return r.toFixed(2) + ' / 10,000';
}

// elapsed is an element showing the time since iso, kept current by the
// page's one-second tick (see tick).
export function elapsed(iso) {
  const el = h('span', { class: 'elapsed', dataset: { since: iso || '' } });
  el.textContent = fmtDuration(secondsSince(iso));
  return el;
}

// tick brings every elapsed time under root up to date.
export function tick(root) {
  const now = Date.now();
  for (const el of root.querySelectorAll('[data-since]')) {
    if (el.dataset.since) el.textContent = fmtDuration(secondsSince(el.dataset.since, now));
  }
}

// badge is a value shown with its class, for colour by state.
export function badge(kind, value) {
  return h('span', { class: `badge ${kind}-${value}`, dataset: { value } }, t(`${kind}.${value}`, null, value));
}

// notAvailable marks a section whose data this server does not offer.
export function notAvailable() {
  return h('p', { class: 'muted', dataset: { na: '' } }, t('not_available'));
}

export function errorText(err) {
  if (!err) return '';
  if (err.status === 0) return t('error.network');
  if (err.status === 403) return t('error.forbidden');
  if (err.status === 429) return t('error.banned');
  return err.message || String(err);
}

// download saves text as a file named name.
export function download(name, text, type = 'text/csv;charset=utf-8') {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = h('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

// stat is one figure of a wallboard: a label, a big value, a line under.
export function stat(labelKey, value, sub, attrs = {}) {
  return h('div', { class: 'stat', ...attrs },
    h('div', { class: 'stat-label', text: t(labelKey) }),
    h('div', { class: 'stat-value' }, value),
    sub ? h('div', { class: 'stat-sub' }, sub) : null);
}

// form helpers
export function field(labelKey, control) {
  return h('label', { class: 'field' }, h('span', { text: t(labelKey) }), control);
}

export function select(name, options, value) {
  const el = h('select', { name });
  for (const [v, label] of options) el.append(h('option', { value: v, selected: v === value }, label));
  return el;
}

// facts is a list of labelled values: [[labelKey, value, name]]; name
// marks the value (data-fact) for whoever reads the page.
export function facts(pairs) {
  const dl = h('dl', { class: 'facts' });
  for (const [label, value, name] of pairs) {
    dl.append(h('dt', { text: t(label) }), h('dd', { dataset: name ? { fact: name } : {} }, value === '' || value === null || value === undefined ? dash : value));
  }
  return dl;
}

// message is a line that says how an action went.
export function message() {
  const el = h('p', { class: 'message', role: 'status' });
  return {
    el,
    ok(text) {
      el.className = 'message ok';
      el.textContent = text;
    },
    fail(err) {
      el.className = 'message error';
      el.textContent = typeof err === 'string' ? err : errorText(err);
    },
    clear() {
      el.className = 'message';
      el.textContent = '';
    },
  };
}
