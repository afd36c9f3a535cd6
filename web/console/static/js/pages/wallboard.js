// The supervisor's wallboard: calls in progress, the queue by category
// with its longest wait, agents by state, today's 15-second answer rate,
// abandoned calls, the complaint line per window, peak mode.
import { get, post } from '../api.js';
import { badge, elapsed, errorText, facts, field, fmtRate, fmtTime, h, message, replace, secondsSince, section, stat } from '../dom.js';
import { t } from '../i18n.js';
import { table } from '../table.js';
import { categories, lineBox, states, windows } from './shared.js';

export default {
  id: 'wallboard',
  roles: ['supervisor'],
  nav: 'nav.wallboard',
  topics: ['agents', 'queue', 'calls', 'complaints', 'line', 'peak'],
  mount(root) {
    const data = { agents: [], queue: null, stats: null, lines: {}, peak: null };
    const msg = message();
    const tiles = h('div', { class: 'stats', id: 'wallboard-tiles' });
    const byState = h('div', { class: 'stats', id: 'agents-by-state' });
    const lines = h('div', { class: 'stats', id: 'complaint-line' });
    const peakBox = h('div', { id: 'peak' });
    const queueByCat = table({
      id: 'queue-by-category',
      columns: [
        { key: 'category', label: 'wallboard.category', value: (r) => t('category.' + r.category, null, r.category) },
        { key: 'waiting', label: 'wallboard.waiting', numeric: true },
        { key: 'longest', label: 'wallboard.longest', numeric: true, value: (r) => r.longest ?? '', render: (r) => (r.oldest ? elapsed(r.oldest) : '') },
      ],
      key: (r) => r.category,
      filter: false,
    });
    const queue = table({
      id: 'queue-calls',
      columns: [
        { key: 'position', label: 'wallboard.position', numeric: true },
        { key: 'category', label: 'wallboard.category', value: (c) => t('category.' + c.category, null, c.category) },
        { key: 'since', label: 'wallboard.wait', value: (c) => c.since, render: (c) => elapsed(c.since) },
        { key: 'state', label: 'wallboard.queue_state', value: (c) => t('queue.' + c.state, null, c.state) },
        { key: 'agent_id', label: 'wallboard.agent' },
        { key: 'call_id', label: 'wallboard.call' },
      ],
      key: (c) => c.call_id,
      csv: 'queue.csv',
      empty: 'wallboard.queue_empty',
    });
    const agents = table({
      id: 'agents',
      columns: [
        { key: 'id', label: 'wallboard.agent' },
        { key: 'name', label: 'wallboard.name' },
        { key: 'state', label: 'wallboard.state', value: (a) => t('state.' + a.state, null, a.state), render: (a) => badge('state', a.state) },
        { key: 'reason', label: 'wallboard.reason', value: (a) => (a.reason ? t('reason.' + a.reason, null, a.reason) : '') },
        { key: 'since', label: 'wallboard.in_state', value: (a) => a.since || '', render: (a) => (a.since ? elapsed(a.since) : '') },
        { key: 'categories', label: 'wallboard.categories', value: (a) => (a.categories || []).map((c) => t('category.' + c, null, c)).join(', ') },
        { key: 'call_id', label: 'wallboard.call' },
      ],
      key: (a) => a.id,
      csv: 'agents.csv',
    });
    root.append(
      msg.el,
      tiles,
      h('div', { class: 'grid two' },
        section('wallboard.queue_by_category', queueByCat.el),
        section('wallboard.agents_by_state', byState)),
      section('wallboard.line', lines),
      section('wallboard.queue', queue.el),
      section('wallboard.agents', agents.el),
      section('wallboard.peak', peakBox));

    function renderTiles() {
      const q = data.queue;
      const s = data.stats;
      const waiting = q ? q.calls.length : 0;
      const withAgents = data.agents.filter((a) => a.state === 'ringing' || a.state === 'talking').length;
      const oldest = q && q.calls.length ? q.calls.reduce((a, c) => (a.since < c.since ? a : c)).since : null;
      const fig = s ? s.queue : q ? q.today : null;
      const ar = fig ? fig.answer_rate_15s : null;
      replace(tiles,
        stat('wallboard.in_progress', String(s && s.calls_in_progress != null ? s.calls_in_progress : waiting + withAgents), t('wallboard.in_progress_sub', { waiting, talking: withAgents }), { dataset: { fact: 'in-progress', waiting: String(waiting) } }),
        stat('wallboard.longest_wait', oldest ? elapsed(oldest) : '0:00', null, { dataset: { fact: 'longest-wait' } }),
        stat('wallboard.answer_rate', ar ? fmtRate(ar.rate) : '—', ar ? t('wallboard.answer_rate_sub', { n: ar.answered_in_15s, d: ar.calls }) : null, { dataset: { fact: 'answer-rate' } }),
        stat('wallboard.abandoned', fig ? String(fig.abandoned) : '—', fig ? t('wallboard.answered_sub', { n: fig.answered }) : null, { dataset: { fact: 'abandoned' } }),
        stat('wallboard.peak_mode', t(data.peak && data.peak.on ? 'peak.on' : 'peak.off'), null, { dataset: { fact: 'peak', on: String(!!(data.peak && data.peak.on)) } }));
    }

    function renderQueue() {
      const calls = data.queue ? data.queue.calls : [];
      queue.update(calls);
      queueByCat.update(categories.map((c) => {
        const mine = calls.filter((x) => x.category === c);
        const oldest = mine.length ? mine.reduce((a, x) => (a.since < x.since ? a : x)).since : null;
        return { category: c, waiting: mine.length, oldest, longest: oldest ? secondsSince(oldest) : null };
      }));
    }

    function renderAgents() {
      agents.update(data.agents);
      replace(byState, states.map((s) => {
        const n = data.agents.filter((a) => a.state === s).length;
        return stat('state.' + s, String(n), null, { class: `stat state-${s}`, dataset: { state: s, count: String(n) } });
      }));
    }

    function renderLines() {
      replace(lines, windows.map((w) => lineBox(w, data.lines[w])));
    }

    function renderPeak() {
      const p = data.peak;
      if (!p) return;
      const reason = h('input', { name: 'reason', id: 'peak-reason', required: true, autocomplete: 'off' });
      const btn = h('button', { type: 'submit', id: 'peak-switch' }, t(p.on ? 'peak.turn_off' : 'peak.turn_on'));
      const m = message();
      const form = h('form', { class: 'inline' }, field('peak.reason', reason), btn);
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        btn.disabled = true;
        try {
          await post('/api/v1/peak-mode', { on: !p.on, reason: reason.value.trim() });
          await load(new Set(['peak']), { background: false });
        } catch (err) {
          m.fail(err);
          btn.disabled = false;
        }
      });
      const last = p.last;
      replace(peakBox,
        h('p', { class: 'big' }, h('span', { class: `badge peak-${p.on ? 'on' : 'off'}`, dataset: { value: p.on ? 'on' : 'off' } }, t(p.on ? 'peak.on' : 'peak.off'))),
        h('p', { class: 'muted', text: t('peak.explain') }),
        last ? facts([['peak.last_by', last.by], ['peak.last_at', fmtTime(last.at)], ['peak.last_reason', last.reason]]) : null,
        form, m.el);
    }

    async function load(topics, opts) {
      const all = !topics;
      const want = (...ts) => all || ts.some((x) => topics.has(x));
      const jobs = [];
      if (want('agents', 'calls', 'queue')) jobs.push(get('/api/v1/agents?limit=500', opts).then((r) => { data.agents = r.items || []; renderAgents(); }));
      if (want('queue', 'calls', 'agents')) jobs.push(get('/api/v1/queue', opts).then((r) => { data.queue = r; renderQueue(); }));
      if (want('queue', 'calls', 'complaints', 'line')) jobs.push(get('/api/v1/stats', opts).then((r) => { data.stats = r; }));
      if (want('complaints', 'line', 'calls')) {
        for (const w of windows) jobs.push(get('/api/v1/complaint-line?window=' + w, opts).then((r) => { data.lines[w] = r; }));
      }
      if (want('peak')) jobs.push(get('/api/v1/peak-mode', opts).then((r) => { data.peak = r; renderPeak(); }));
      const results = await Promise.allSettled(jobs);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed && failed.reason.status !== 401) msg.fail(errorText(failed.reason));
      else msg.clear();
      renderTiles();
      renderLines();
    }

    return { refresh: load };
  },
};
