// Complaint review: the bad reviews waiting, oldest first, each with its
// call's record; uphold or dismiss with a note; reverse a decision.
import { get, post } from '../api.js';
import { badge, dash, elapsed, errorText, facts, fmtDuration, fmtTime, h, message, replace, section } from '../dom.js';
import { t } from '../i18n.js';
import { table } from '../table.js';

export default {
  id: 'reviews',
  roles: ['supervisor'],
  nav: 'nav.reviews',
  topics: ['complaints'],
  mount(root) {
    let openID = null;
    const msg = message();
    const detail = h('div', { id: 'review-detail' });
    const common = [
      { key: 'opened_at', label: 'reviews.opened', value: (c) => c.opened_at, render: (c) => fmtTime(c.opened_at) },
      { key: 'agent_id', label: 'reviews.agent' },
      { key: 'category', label: 'reviews.category', value: (c) => t('category.' + c.category, null, c.category) },
      { key: 'call_id', label: 'reviews.call' },
      { key: 'appeal_id', label: 'reviews.appeal' },
    ];
    const openButton = (labelKey) => ({
      key: 'open', label: 'reviews.action', value: () => '',
      render: (c) => h('button', { type: 'button', class: 'secondary', dataset: { complaint: c.id }, on: { click: () => open(c.id) } }, t(labelKey)),
    });
    const pending = table({
      id: 'pending',
      columns: [
        ...common,
        { key: 'age', label: 'reviews.age', numeric: true, value: (c) => c.age_seconds ?? 0, render: (c) => elapsed(c.opened_at) },
        { key: 'overdue', label: 'reviews.overdue', value: (c) => (c.overdue ? t('yes') : ''), render: (c) => (c.overdue ? badge('overdue', 'yes') : '') },
        openButton('reviews.review'),
      ],
      key: (c) => c.id,
      csv: 'reviews-pending.csv',
      empty: 'reviews.none_pending',
    });
    const reviewed = table({
      id: 'reviewed',
      columns: [
        ...common,
        { key: 'status', label: 'reviews.decision', value: (c) => t('status.' + c.status, null, c.status), render: (c) => badge('status', c.status) },
        { key: 'reviewed_by', label: 'reviews.by' },
        { key: 'reviewed_at', label: 'reviews.at', value: (c) => c.reviewed_at || '', render: (c) => fmtTime(c.reviewed_at) },
        { key: 'note', label: 'reviews.note' },
        openButton('reviews.reverse'),
      ],
      key: (c) => c.id,
      csv: 'reviews-decided.csv',
      sort: { key: 'reviewed_at', dir: -1 },
    });
    root.append(msg.el,
      section('reviews.pending', pending.el),
      detail,
      section('reviews.reviewed', reviewed.el));

    async function open(id) {
      openID = id;
      replace(detail, section('reviews.detail', h('p', { class: 'muted', text: t('loading') })));
      try {
        const c = await get(`/api/v1/complaints/${encodeURIComponent(id)}`);
        let rec = null;
        let recErr = null;
        if (c.call_id) {
          try {
            rec = await get(`/api/v1/calls/${encodeURIComponent(c.call_id)}`);
          } catch (err) {
            recErr = err;
          }
        }
        if (openID === id) renderDetail(c, rec, recErr);
      } catch (err) {
        replace(detail, section('reviews.detail', h('p', { class: 'error', text: errorText(err) })));
      }
      detail.scrollIntoView({ block: 'nearest' });
    }

    function renderDetail(c, rec, recErr) {
      const note = h('textarea', { id: 'review-note', rows: '3', name: 'note' });
      const m = message();
      const decide = (status) => async () => {
        const reverse = c.status !== 'pending';
        if (reverse && !note.value.trim()) {
          m.fail(t('reviews.note_needed'));
          return;
        }
        for (const b of buttons.querySelectorAll('button')) b.disabled = true;
        try {
          const body = { status, note: note.value.trim() };
          const r = await post(`/api/v1/complaints/${encodeURIComponent(c.id)}/${reverse ? 'reverse' : 'review'}`, body);
          msg.ok(t('reviews.decided', { status: t('status.' + r.status, null, r.status) }));
          openID = null;
          replace(detail);
          await load(null, { background: false });
        } catch (err) {
          m.fail(err);
          for (const b of buttons.querySelectorAll('button')) b.disabled = false;
        }
      };
      const buttons = h('div', { class: 'actions' });
      if (c.status === 'pending') {
        buttons.append(
          h('button', { type: 'button', id: 'uphold', class: 'danger', on: { click: decide('upheld') } }, t('reviews.uphold')),
          h('button', { type: 'button', id: 'dismiss', on: { click: decide('dismissed') } }, t('reviews.dismiss')));
      } else {
        const other = c.status === 'upheld' ? 'dismissed' : 'upheld';
        buttons.append(h('button', { type: 'button', id: 'reverse', on: { click: decide(other) } },
          t('reviews.reverse_to', { status: t('status.' + other) })));
      }
      const history = (c.history || []).map((d) => h('li', {},
        `${fmtTime(d.at)} · ${d.by} · ${t('status.' + (d.from || 'pending'), null, d.from)} → ${t('status.' + d.status, null, d.status)}`,
        d.note ? ` · ${d.note}` : ''));
      replace(detail, section('reviews.detail',
        h('div', { class: 'grid two', dataset: { complaint: c.id, status: c.status } },
          h('div', {},
            h('h3', { text: t('reviews.complaint') }),
            facts([
              ['reviews.status', badge('status', c.status), 'status'],
              ['reviews.agent', c.agent_id, 'agent'],
              ['reviews.category', t('category.' + c.category, null, c.category), 'category'],
              ['reviews.appeal', c.appeal_id, 'appeal'],
              ['reviews.served', fmtTime(c.served_at), 'served'],
              ['reviews.opened', fmtTime(c.opened_at), 'opened'],
            ]),
            history.length ? h('ol', { class: 'history' }, history) : null,
            h('label', { class: 'field' }, h('span', { text: t(c.status === 'pending' ? 'reviews.note' : 'reviews.note_required') }), note),
            buttons, m.el),
          h('div', {}, h('h3', { text: t('reviews.record') }), recordView(rec, recErr)))));
    }

    async function load(_topics, opts) {
      try {
        const [p, up, dis] = await Promise.all([
          get('/api/v1/complaints?status=pending&limit=500', opts),
          get('/api/v1/complaints?status=upheld&limit=100', opts),
          get('/api/v1/complaints?status=dismissed&limit=100', opts),
        ]);
        pending.update(p.items || []);
        reviewed.update([...(up.items || []), ...(dis.items || [])]);
      } catch (err) {
        if (err.status !== 401) msg.fail(err);
      }
    }
    return { refresh: load };
  },
};

// recordView shows a call's record: its times, who took it, how it ended,
// what it played and which keys were pressed.
export function recordView(rec, err) {
  if (!rec) return h('p', { class: 'muted', text: err ? errorText(err) : t('reviews.no_record') });
  const span = (a, b) => (a && b ? fmtDuration((new Date(b) - new Date(a)) / 1000) : dash);
  const events = (rec.events || []).map((e) => h('tr', {},
    h('td', { text: fmtTime(e.at) }), h('td', { text: e.kind }), h('td', { text: e.stage || '' }),
    h('td', { text: e.prompt || e.digit || '' })));
  return h('div', { id: 'call-record', dataset: { call: rec.id } },
    facts([
      ['record.caller', rec.caller, 'caller'],
      ['record.started', fmtTime(rec.started_at), 'started'],
      ['record.queued', fmtTime(rec.queued_at), 'queued'],
      ['record.wait', span(rec.queued_at, rec.agent_answered_at), 'wait'],
      ['record.agent', rec.agent_id, 'agent'],
      ['record.talk', span(rec.agent_answered_at, rec.ended_at), 'talk'],
      ['record.ended', fmtTime(rec.ended_at), 'ended'],
      ['record.end_cause', rec.end_cause ? t('cause.' + rec.end_cause, null, rec.end_cause) : '', 'end-cause'],
      ['record.stage', rec.stage, 'stage'],
      ['record.rating', rec.rating ? t('verdict.' + rec.rating, null, rec.rating) : '', 'rating'],
      ['record.appeal', rec.appeal_id, 'appeal'],
    ]),
    events.length ? h('details', {}, h('summary', { text: t('record.events', { n: events.length }) }),
      h('table', { class: 'data compact' },
        h('thead', {}, h('tr', {}, ['record.at', 'record.kind', 'record.stage', 'record.what'].map((k) => h('th', { scope: 'col', text: t(k) })))),
        h('tbody', {}, events))) : null);
}
