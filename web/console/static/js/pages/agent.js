// An agent's own desk: state with pause and resume, the call on hand,
// the day's figures.
import { get, post } from '../api.js';
import { badge, dash, elapsed, facts, field, fmtDuration, h, message, replace, section, select, stat } from '../dom.js';
import { t } from '../i18n.js';

export const pauseReasons = ['break', 'lunch', 'meeting', 'training', 'paperwork'];

export default {
  id: 'agent',
  roles: ['agent'],
  nav: 'nav.agent',
  topics: ['agents', 'calls', 'complaints', 'queue'],
  mount(root, { me }) {
    const id = me.agent_id;
    if (!id) {
      root.append(h('p', { class: 'card', text: t('agent.no_agent') }));
      return { refresh() {} };
    }
    const stateBox = h('div', { id: 'agent-state' });
    const callBox = h('div', { id: 'agent-call' });
    const dayBox = h('div', { id: 'agent-day', class: 'stats' });
    const msg = message();
    const reason = select('reason', pauseReasons.map((r) => [r, t('reason.' + r)]), 'break');
    reason.id = 'pause-reason';
    const pause = h('button', { type: 'submit', id: 'pause' }, t('agent.pause'));
    const resume = h('button', { type: 'button', id: 'resume', class: 'secondary' }, t('agent.resume'));
    const form = h('form', { class: 'inline' }, field('agent.reason', reason), pause, resume);
    root.append(
      h('div', { class: 'grid two' },
        section('agent.state', stateBox, form, msg.el),
        section('agent.call', callBox)),
      section('agent.day', dayBox));

    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      await act(() => post(`/api/v1/agents/${encodeURIComponent(id)}/pause`, { reason: reason.value }));
    });
    resume.addEventListener('click', () => act(() => post(`/api/v1/agents/${encodeURIComponent(id)}/resume`)));

    async function act(f) {
      msg.clear();
      pause.disabled = resume.disabled = true;
      try {
        const r = await f();
        msg.ok(r && r.pause_next ? t('agent.pause_next', { reason: t('reason.' + r.pause_next, null, r.pause_next) }) : t('agent.done'));
      } catch (err) {
        msg.fail(err.body && err.body.state ? t('agent.refused', { state: t('state.' + err.body.state, null, err.body.state) }) : err);
      }
      await refresh(null, { background: false });
    }

    function render(a) {
      replace(stateBox, h('p', { class: 'big' }, badge('state', a.state)),
        facts([
          ['agent.reason', a.reason ? t('reason.' + a.reason, null, a.reason) : '', 'reason'],
          ['agent.since', a.since ? elapsed(a.since) : '', 'since'],
          ['agent.pause_waiting', a.pause_next ? t('reason.' + a.pause_next, null, a.pause_next) : '', 'pause-next'],
          ['agent.phone', t(a.registered ? 'agent.registered' : 'agent.unregistered'), 'registered'],
        ]));
      const paused = a.state === 'paused' || !!a.pause_next;
      resume.disabled = !paused;
      pause.disabled = a.state === 'paused' || a.state === 'offline' || !!a.pause_next;
      const c = a.call;
      if (c) {
        replace(callBox, facts([
          ['agent.appeal', c.appeal_id || '', 'appeal'],
          ['agent.category', c.category ? t('category.' + c.category, null, c.category) : '', 'category'],
          ['agent.waited', fmtDuration(c.waited_seconds), 'waited'],
          ['agent.caller', c.caller || '', 'caller'],
          ['agent.on_call', c.answered_at ? elapsed(c.answered_at) : '', 'on-call'],
        ]));
      } else if (a.call_id) {
        replace(callBox, facts([['agent.call_id', a.call_id, 'call-id']]), h('p', { class: 'muted', text: t('agent.call_details_na') }));
      } else {
        replace(callBox, h('p', { class: 'muted', dataset: { fact: 'no-call' }, text: t('agent.no_call') }));
      }
      const d = a.today || {};
      replace(dayBox,
        stat('agent.served', String(d.served ?? dash), null, { dataset: { fact: 'served' } }),
        stat('agent.praise', String(d.praise ?? dash), null, { dataset: { fact: 'praise' } }),
        stat('agent.bad_review', String(d.bad_review ?? dash), null, { dataset: { fact: 'bad-review' } }),
        stat('agent.no_rating', String(d.no_rating ?? dash), null, { dataset: { fact: 'no-rating' } }),
        stat('agent.upheld', String(d.upheld ?? dash), null, { dataset: { fact: 'upheld' } }),
        stat('agent.talk_time', fmtDuration(d.talk_seconds), null));
    }

    async function refresh(_topics, opts) {
      try {
        render(await get(`/api/v1/agents/${encodeURIComponent(id)}`, opts));
      } catch (err) {
        if (err.status !== 401) msg.fail(err);
      }
    }
    return { refresh };
  },
};
