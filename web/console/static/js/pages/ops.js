// Ops: the trunks (state, since when, probe round trip, channels, ASR),
// the nodes and the ARI connection, recent alerts and events, the
// synthetic probe's last results, bans.
import { get } from '../api.js';
import { badge, dash, elapsed, errorText, fmtRate, fmtTime, h, message, section } from '../dom.js';
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
    const health = (n) => Object.entries(n.health || {}).map(([k, v]) => `${k}: ${v}`).join('; ');
    const nodes = table({
      id: 'nodes-table',
      columns: [
        { key: 'name', label: 'ops.node' },
        { key: 'host', label: 'ops.host' },
        { key: 'calls', label: 'ops.node_calls', numeric: true },
        { key: 'held', label: 'ops.node_held', numeric: true },
        { key: 'health', label: 'ops.health', value: health,
          render: (n) => h('span', { class: Object.values(n.health || {}).every((v) => v === 'ok') ? 'ok' : 'bad', text: health(n) || dash }) },
        { key: 'started', label: 'ops.started', value: (n) => n.started, render: (n) => fmtTime(n.started) },
        { key: 'lease_until', label: 'ops.lease_until', value: (n) => n.lease_until, render: (n) => fmtTime(n.lease_until) },
      ],
      key: (n) => n.instance,
      csv: 'nodes.csv',
      empty: 'table.empty',
    });
    const probe = table({
      id: 'probe-table',
      columns: [
        { key: 'started_at', label: 'ops.at', value: (c) => c.started_at, render: (c) => fmtTime(c.started_at) },
        { key: 'end_cause', label: 'ops.probe_end' },
        { key: 'stage', label: 'ops.probe_stage' },
        { key: 'node', label: 'ops.node' },
        { key: 'duration', label: 'ops.probe_duration', numeric: true,
          value: (c) => (c.ended_at ? (Date.parse(c.ended_at) - Date.parse(c.started_at)) / 1000 : ''),
          render: (c) => (c.ended_at ? ((Date.parse(c.ended_at) - Date.parse(c.started_at)) / 1000).toFixed(1) + ' s' : dash) },
      ],
      key: (c) => c.id,
      csv: 'probe.csv',
      sort: { key: 'started_at', dir: -1 },
      empty: 'ops.no_probe',
    });
    root.append(msg.el,
      section('ops.trunks', trunks.el),
      h('div', { class: 'grid two' }, section('ops.nodes', nodes.el), section('ops.probe', probe.el)),
      section('ops.alerts', alerts.el),
      section('ops.trunk_events', trunkEvents.el),
      section('ops.bans', bans.el));

    async function load(_topics, opts) {
      const results = await Promise.allSettled([
        get('/api/v1/trunks', opts).then((r) => trunks.update(r.trunks || [])),
        get('/api/v1/trunks/events?limit=50', opts).then((r) => trunkEvents.update(r.items || [])),
        get('/api/v1/complaint-line/events?limit=50', opts).then((r) => alerts.update(r.items || [])),
        get('/api/v1/bans?limit=100', opts).then((r) => bans.update(r.items || [])),
        get('/api/v1/nodes', opts).then((r) => nodes.update(r.nodes || [])),
        get('/api/v1/probe', opts).then((r) => probe.update(r.calls || [])),
      ]);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed && failed.reason.status !== 401) msg.fail(errorText(failed.reason));
      else msg.clear();
    }
    return { refresh: load };
  },
};
