// The console: log in, the pages of the session's roles, live updates
// from the server's event stream.
import { get, onUnauthorized, post } from './api.js';
import { errorText, h, replace, tick } from './dom.js';
import { applyStatic, getLang, initLang, setLang, t } from './i18n.js';
import agent from './pages/agent.js';
import visits from './pages/visits.js';
import wallboard from './pages/wallboard.js';
import reviews from './pages/reviews.js';
import line from './pages/line.js';
import appeals from './pages/appeals.js';
import rates from './pages/rates.js';
import ops from './pages/ops.js';
import audit from './pages/audit.js';

const pages = [agent, visits, wallboard, reviews, line, appeals, rates, ops, audit];

const $ = (id) => document.getElementById(id);

let me = null; // the session's principal, null when logged out
let page = null; // the page shown: its module
let view = null; // the page shown: what its mount answered
let live = null; // the EventSource
let liveState = 'off';
let retry = null; // a timer reopening the live stream
const pending = new Set(); // topics changed, waiting for the debounce
let debounce = null;

function allowed() {
  return me ? pages.filter((p) => p.roles.some((r) => me.roles.includes(r))) : [];
}

function boot() {
  initLang();
  $('lang').value = getLang();
  $('lang').addEventListener('change', (e) => {
    setLang(e.target.value);
    applyStatic(document);
    setLive(liveState);
    if (me) {
      renderWho();
      renderNav();
      show();
    }
  });
  applyStatic(document);
  onUnauthorized(() => ended('login.ended'));
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', () => me && show());
  setInterval(() => tick($('page')), 1000);
  start();
}

async function start() {
  try {
    me = await get('/api/v1/me', { quiet401: true });
  } catch (err) {
    showLogin(null, err.status === 401 ? '' : errorText(err));
    return;
  }
  showApp();
}

async function login(e) {
  e.preventDefault();
  const form = e.target;
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  $('login-error').textContent = '';
  try {
    me = await post('/api/v1/session', { user: $('login-user').value.trim(), password: $('login-password').value }, { quiet401: true });
    if (!me || !Array.isArray(me.roles)) me = await get('/api/v1/me');
    $('login-password').value = '';
    showApp();
  } catch (err) {
    $('login-error').textContent = err.status === 401 ? t('login.wrong') : errorText(err);
  } finally {
    button.disabled = false;
  }
}

async function logout() {
  // The session's end reaches this tab's live stream too, and may come
  // before the logout's answer (it does in Firefox): closed first, the
  // stream does not tell the one who logged out that their session ended.
  closeLive();
  try {
    await post('/api/v1/logout', undefined, { quiet401: true });
  } catch {
    // The session is gone either way on this tab.
  }
  ended('login.logged_out');
}

// ended leaves the session: an ended session (logout here or in another
// tab, expiry, revocation) goes to the login page.
function ended(noteKey) {
  if (!me) return;
  me = null;
  closeLive();
  unmount();
  showLogin(noteKey);
}

function showLogin(noteKey, error = '') {
  $('page').hidden = true;
  replace($('page'));
  replace($('nav'));
  replace($('who'));
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-note').textContent = noteKey ? t(noteKey) : '';
  $('login-error').textContent = error;
  document.body.dataset.session = 'none';
  $('login-user').focus();
}

function showApp() {
  $('login').hidden = true;
  $('page').hidden = false;
  $('logout').hidden = false;
  document.body.dataset.session = 'open';
  renderWho();
  renderNav();
  openLive();
  show();
}

function renderWho() {
  replace($('who'), h('span', { class: 'user', text: me.user || me.token_id || '' }), ' ',
    h('span', { class: 'muted', text: me.roles.map((r) => t('role.' + r)).join(' · ') }));
}

function currentID() {
  return location.hash.replace(/^#\/?/, '').split('?')[0];
}

function renderNav() {
  const id = currentID();
  replace($('nav'), allowed().map((p) => h('a', {
    href: '#/' + p.id, 'aria-current': p.id === id ? 'page' : null, dataset: { page: p.id },
  }, t(p.nav))));
}

function unmount() {
  if (view && view.unmount) view.unmount();
  view = null;
  page = null;
}

// show mounts the page the address names, or the session's first.
function show() {
  const mine = allowed();
  const id = currentID();
  const want = pages.find((p) => p.id === id);
  unmount();
  const root = $('page');
  replace(root);
  if (!want || id === 'login') {
    if (mine.length) {
      location.replace('#/' + mine[0].id);
      return;
    }
    root.append(h('p', { class: 'card', dataset: { forbidden: '' } }, t('nav.none')));
    return;
  }
  renderNav();
  if (!mine.includes(want)) {
    root.append(h('section', { class: 'card', dataset: { forbidden: want.id } },
      h('h1', { text: t(want.nav) }), h('p', { text: t('nav.forbidden') })));
    return;
  }
  document.title = `${t(want.nav)} · ${t('app.title')}`;
  const body = h('div', { class: 'page-body', dataset: { page: want.id } });
  root.append(h('h1', { class: 'page-title', text: t(want.nav) }), body);
  page = want;
  view = want.mount(body, { me });
  view.refresh(null, { background: false });
}

function setLive(state) {
  liveState = state;
  const el = $('live');
  el.dataset.live = state;
  el.textContent = t('live.' + state);
}

function openLive() {
  closeLive();
  const es = new EventSource('/api/v1/live');
  live = es;
  setLive('connecting');
  es.addEventListener('open', () => {
    setLive('open');
    // Whatever changed while the stream was down is fetched again.
    refreshAll();
  });
  es.addEventListener('change', (e) => {
    let d;
    try {
      d = JSON.parse(e.data);
    } catch {
      return;
    }
    if (!d || !d.topic) return;
    // A stream that fell behind says resync: everything may have changed.
    if (d.topic === 'resync') refreshAll();
    else changed(d.topic);
  });
  es.addEventListener('session', () => ended('login.ended'));
  es.addEventListener('error', () => {
    if (live !== es) return;
    if (es.readyState !== EventSource.CLOSED) {
      setLive('reconnecting');
      return;
    }
    // Refused: the session ended (the check goes to the login page) or
    // this server has no live stream; then look again now and then.
    setLive('off');
    get('/api/v1/me', { background: true }).then(() => {
      if (live !== es) return;
      refreshAll();
      retry = setTimeout(() => me && openLive(), 10000);
    }, () => {});
  });
}

function closeLive() {
  clearTimeout(retry);
  clearTimeout(debounce);
  debounce = null;
  pending.clear();
  if (live) live.close();
  live = null;
  setLive('off');
}

function changed(topic) {
  pending.add(topic);
  if (debounce) return;
  debounce = setTimeout(() => {
    debounce = null;
    const topics = new Set(pending);
    pending.clear();
    if (view && page && page.topics.some((x) => topics.has(x))) view.refresh(topics, { background: true });
  }, 200);
}

function refreshAll() {
  if (view) view.refresh(null, { background: true });
}

boot();
