// The complaint line: the hotline's and every agent's over a window,
// the report to recompute it by hand, and the line's alerts.
import { get, query } from '../api.js';
import { badge, errorText, field, fmtTime, h, message, replace, section, select } from '../dom.js';
import { t } from '../i18n.js';
import { table } from '../table.js';
import { lineBox, per10k, windows } from './shared.js';

export default {
  id: 'line',
  roles: ['supervisor'],
  nav: 'nav.line',
  topics: ['line', 'complaints'],
  mount(root) {
    let win = '30d';
    const msg = message();
    const summary = h('div', { class: 'stats', id: 'line-summary' });
    const pick = select('window', windows.map((w) => [w, t('window.' + w)]), win);
    pick.id = 'line-window';
    const report = h('a', { class: 'button secondary', id: 'line-report' }, t('line.report_csv'));
    const setReport = () => report.setAttribute('href', '/api/v1/complaint-line/report' + query({ window: win, format: 'csv' }));
    setReport();
    pick.addEventListener('change', () => {
      win = pick.value;
      setReport();
      load(null, { background: false });
    });
    const agents = table({
      id: 'line-agents',
      columns: [
        { key: 'agent_id', label: 'line.agent' },
        { key: 'served', label: 'line.served', numeric: true },
        { key: 'praise', label: 'line.praise', numeric: true },
        { key: 'bad_review', label: 'line.bad_review', numeric: true },
        { key: 'upheld', label: 'line.upheld', numeric: true },
        { key: 'pending', label: 'line.pending_col', numeric: true },
        { key: 'rate', label: 'line.rate', numeric: true, value: (l) => l.rate_per_10000 ?? '', render: (l) => per10k(l.rate_per_10000) },
        { key: 'budget', label: 'line.budget_col', numeric: true },
        { key: 'state', label: 'line.state', value: (l) => t('line.' + l.state, null, l.state), render: (l) => badge('line', l.state) },
      ],
      key: (l) => l.agent_id,
      csv: 'complaint-line-agents.csv',
    });
    const events = table({
      id: 'line-events',
      columns: [
        { key: 'at', label: 'line.at', value: (e) => e.at, render: (e) => fmtTime(e.at) },
        { key: 'kind', label: 'line.kind', value: (e) => t('line_event.' + e.kind, null, e.kind) },
        { key: 'watch', label: 'line.watch' },
        { key: 'message', label: 'line.message', value: (e) => (e.line && e.line.message) || '' },
      ],
      key: (e) => e.id,
      csv: 'complaint-line-events.csv',
      empty: 'line.no_events',
    });
    root.append(msg.el,
      h('div', { class: 'toolbar' }, field('line.window', pick), report),
      section('line.hotline', summary),
      section('line.agents', agents.el),
      section('line.events', events.el));

    async function load(_topics, opts) {
      try {
        const [line, rank, evs] = await Promise.all([
          get('/api/v1/complaint-line' + query({ window: win }), opts),
          get('/api/v1/complaint-line/agents' + query({ window: win }), opts),
          get('/api/v1/complaint-line/events?limit=50', opts),
        ]);
        replace(summary, lineBox(win, line), h('p', { class: 'line-message', text: line.message || '' }));
        agents.update(rank.agents || []);
        events.update(evs.items || []);
        msg.clear();
      } catch (err) {
        if (err.status !== 401) msg.fail(errorText(err));
      }
    }
    return { refresh: load };
  },
};
