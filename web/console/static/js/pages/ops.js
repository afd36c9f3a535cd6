// Ops: the trunks (state, since when, probe round trip, channels, ASR),
// the nodes and the ARI connection, recent alerts and events, the
// synthetic probe's last results, bans.
import { get, optional } from '../api.js';
import { badge, dash, elapsed, errorText, fmtRate, fmtTime, h, message, notAvailable, replace, section } from '../dom.js';
import { t } from '../i18n.js';
import { table } from '../table.js';

export default {
  id: 'ops',
  roles: ['ops'],
  nav: 'nav.ops',
  topics: ['trunks', 'line'],
  mount(root) {
    const msg = message();
    const trunks = table({
      id: 'trunks',
      columns: [
        { key: 'name', label: 'ops.trunk' },
        { key: 'address', label: 'ops.address', value: (s) => `${s.address} (${s.transport})` },
        { key: 'state', label: 'ops.state', value: (s) => t('trunk.' + s.state, null, s.state), render: (s) => badge('trunk', s.state) },
        { key: 'since', label: 'ops.since', value: (s) => s.since || '', render: (s) => (s.since ? h('span', {}, fmtTime(s.since), ' (', elapsed(s.since), ')') : dash) },
        { key: 'rtt', label: 'ops.rtt', numeric: true, value: (s) => s.last_probe?.rtt_ms ?? '', render: (s) => (s.last_probe?.rtt_ms != null ? s.last_probe.rtt_ms.toFixed(1) + ' ms' : dash) },
        { key: 'probe', label: 'ops.last_probe', value: (s) => (s.last_probe ? `${s.last_probe.status || ''} ${s.last_probe.error || ''}`.trim() : '') },
        { key: 'channels', label: 'ops.channels', value: (s) => `${s.channels.in}+${s.channels.out}/${s.channels.limit || '∞'}` },
        { key: 'calls', label: 'ops.calls_15m', numeric: true, value: (s) => s.last_15_minutes?.total?.calls ?? 0 },
        { key: 'asr', label: 'ops.asr', numeric: true, value: (s) => s.last_15_minutes?.total?.asr ?? '', render: (s) => fmtRate(s.last_15_minutes?.total?.asr) },
        { key: 'registration', label: 'ops.registration', value: (s) => t('registration.' + s.registration, null, s.registration) },
      ],
      key: (s) => s.name,
      csv: 'trunks.csv',
      empty: 'ops.no_trunks',
    });
    const trunkEvents = table({
      id: 'trunk-events',
      columns: [
        { key: 'at', label: 'ops.at', value: (e) => e.at, render: (e) => fmtTime(e.at) },
        { key: 'trunk', label: 'ops.trunk' },
        { key: 'change', label: 'ops.change', value: (e) => `${t('trunk.' + e.from, null, e.from)} → ${t('trunk.' + e.to, null, e.to)}` },
        { key: 'kind', label: 'ops.kind' },
        { key: 'node', label: 'ops.node' },
      ],
      key: (e) => e.id,
      csv: 'trunk-events.csv',
      sort: { key: 'at', dir: -1 },
      empty: 'ops.no_events',
    });
    const alerts = table({
      id: 'alerts',
      columns: [
        { key: 'at', label: 'ops.at', value: (e) => e.at, render: (e) => fmtTime(e.at) },
        { key: 'kind', label: 'ops.kind', value: (e) => t('line_event.' + e.kind, null, e.kind) },
        { key: 'watch', label: 'ops.watch' },
        { key: 'message', label: 'ops.message', value: (e) => (e.line && e.line.message) || '' },
      ],
      key: (e) => e.id,
      csv: 'alerts.csv',
      sort: { key: 'at', dir: -1 },
      empty: 'ops.no_events',
    });
    const bans = table({
      id: 'bans',
      columns: [
        { key: 'subject', label: 'ops.subject' },
        { key: 'service', label: 'ops.service' },
        { key: 'failures', label: 'ops.failures', numeric: true },
        { key: 'since', label: 'ops.since', value: (b) => b.since, render: (b) => fmtTime(b.since) },
        { key: 'until', label: 'ops.until', value: (b) => b.until, render: (b) => fmtTime(b.until) },
      ],
      key: (b) => b.subject,
      csv: 'bans.csv',
      empty: 'ops.no_bans',
    });
    const nodesBox = h('div', { id: 'nodes' });
    const probeBox = h('div', { id: 'probe' });
    root.append(msg.el,
      section('ops.trunks', trunks.el),
      h('div', { class: 'grid two' }, section('ops.nodes', nodesBox), section('ops.probe', probeBox)),
      section('ops.alerts', alerts.el),
      section('ops.trunk_events', trunkEvents.el),
      section('ops.bans', bans.el));

    // generic shows an answer this console does not know the shape of yet
    // as a table of its items' fields.
    function generic(box, answer, id) {
      if (!answer) {
        replace(box, notAvailable());
        return;
      }
      const list = Array.isArray(answer) ? answer : answer.items || answer.nodes || answer.results || null;
      const head = Array.isArray(answer) ? {} : Object.fromEntries(Object.entries(answer).filter(([, v]) => !Array.isArray(v) && typeof v !== 'object'));
      const parts = [];
      const scalar = Object.entries(head);
      if (scalar.length) parts.push(h('dl', { class: 'facts' }, scalar.flatMap(([k, v]) => [h('dt', { text: k }), h('dd', { text: String(v) })])));
      for (const [k, v] of Object.entries(Array.isArray(answer) ? {} : answer)) {
        if (v && typeof v === 'object' && !Array.isArray(v)) {
          parts.push(h('h3', { text: k }), h('dl', { class: 'facts' }, Object.entries(v).flatMap(([a, b]) => [h('dt', { text: a }), h('dd', { text: typeof b === 'object' ? JSON.stringify(b) : String(b) })])));
        }
      }
      if (list && list.length) {
        const keys = [...new Set(list.flatMap((x) => Object.keys(x)))];
        const tb = table({
          id,
          columns: keys.map((k) => ({ key: k, label: 'raw', value: (x) => (typeof x[k] === 'object' && x[k] !== null ? JSON.stringify(x[k]) : x[k] ?? '') })),
          csv: id + '.csv',
        });
        tb.el.querySelectorAll('th button').forEach((b, i) => { b.textContent = keys[i]; });
        tb.update(list);
        parts.push(tb.el);
      }
      replace(box, parts.length ? parts : h('p', { class: 'muted', text: t('table.empty') }));
    }

    async function load(_topics, opts) {
      const results = await Promise.allSettled([
        get('/api/v1/trunks', opts).then((r) => trunks.update(r.trunks || [])),
        get('/api/v1/trunks/events?limit=50', opts).then((r) => trunkEvents.update(r.items || [])),
        get('/api/v1/complaint-line/events?limit=50', opts).then((r) => alerts.update(r.items || [])),
        get('/api/v1/bans?limit=100', opts).then((r) => bans.update(r.items || [])),
        optional('/api/v1/nodes', opts).then((r) => generic(nodesBox, r, 'nodes-table')),
        optional('/api/v1/probe', opts).then((r) => generic(probeBox, r, 'probe-table')),
      ]);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed && failed.reason.status !== 401) msg.fail(errorText(failed.reason));
      else msg.clear();
    }
    return { refresh: load };
  },
};
