// A return-visit agent's desk: the visits held, the next visit with what
// the appeal needs the agent to know, the call (the agent's phone first,
// then the citizen), the outcome with the three answers, the day's
// attempts.
import { get, optional, post } from '../api.js';
import { dash, facts, field, fmtTime, h, message, notAvailable, replace, section, select } from '../dom.js';
import { t } from '../i18n.js';
import { table } from '../table.js';

const outcomes = ['completed', 'no_answer', 'busy', 'unreachable', 'wrong_number', 'refused', 'call_later'];
const questions = [
  ['response', ['yes', 'no']],
  ['solution', ['yes', 'partly', 'no']],
  ['satisfaction', ['satisfied', 'basically_satisfied', 'dissatisfied']],
];
const storeKey = 'hotline.visit';

// The visit taken is kept for the tab, so that a reload keeps it.
function kept() {
  try {
    return JSON.parse(sessionStorage.getItem(storeKey) || 'null');
  } catch {
    return null;
  }
}

function keep(work) {
  if (work) sessionStorage.setItem(storeKey, JSON.stringify(work));
  else sessionStorage.removeItem(storeKey);
}

// visitOf reads a held visit the way the API gives it: a VisitWork, or
// a bare visit.
const visitOf = (w) => (w && w.visit ? w.visit : w);

export default {
  id: 'visits',
  roles: ['visitor'],
  nav: 'nav.visits',
  topics: ['visits'],
  mount(root) {
    let work = kept();
    const msg = message();
    const current = h('div', { id: 'visit-current' });
    const next = h('button', { type: 'button', id: 'visit-next' }, t('visits.next'));
    next.addEventListener('click', takeNext);
    const heldBox = h('div', { id: 'visits-held' });
    const attemptsBox = h('div', { id: 'visits-attempts' });
    const held = table({
      columns: [
        { key: 'id', label: 'visits.id', value: (w) => visitOf(w).id },
        { key: 'appeal', label: 'visits.appeal', value: (w) => visitOf(w).appeal },
        { key: 'category', label: 'visits.category', value: (w) => t('category.' + visitOf(w).category, null, visitOf(w).category) },
        { key: 'due', label: 'visits.due', value: (w) => visitOf(w).due || '', render: (w) => fmtTime(visitOf(w).due) },
        { key: 'attempts', label: 'visits.attempts', numeric: true, value: (w) => (visitOf(w).attempts || []).length },
        { key: 'open', label: 'visits.open', value: () => '', render: (w) => h('button', { type: 'button', class: 'secondary', on: { click: () => open(w) } }, t('visits.open')) },
      ],
      key: (w) => visitOf(w).id,
      filter: false,
    });
    const attempts = table({
      columns: [
        { key: 'at', label: 'visits.at', value: (a) => a.at || '', render: (a) => fmtTime(a.at) },
        { key: 'visit', label: 'visits.id', value: (a) => a.visit || a.visit_id || '' },
        { key: 'appeal', label: 'visits.appeal', value: (a) => a.appeal || '' },
        { key: 'outcome', label: 'visits.outcome', value: (a) => t('outcome.' + a.outcome, null, a.outcome) },
        { key: 'note', label: 'visits.note', value: (a) => a.note || '' },
      ],
      key: (a) => `${a.visit || a.visit_id || ''}-${a.at}`,
      csv: 'attempts-today.csv',
      sort: { key: 'at', dir: -1 },
    });
    root.append(
      section('visits.current', h('div', { class: 'actions' }, next), msg.el, current),
      h('div', { class: 'grid two' },
        section('visits.held', heldBox),
        section('visits.attempts_today', attemptsBox)));

    // A lease is 10 minutes: it is renewed while the visit is open.
    const renew = setInterval(async () => {
      if (!work) return;
      try {
        await post(`/api/v1/visits/${encodeURIComponent(visitOf(work).id)}/renew`, undefined, { background: true });
      } catch (err) {
        if (err.status === 404 || err.status === 409) {
          msg.fail(t('visits.lease_lost'));
          set(null);
        }
      }
    }, 4 * 60 * 1000);

    function set(w) {
      work = w;
      keep(w);
      render();
    }

    function open(w) {
      msg.clear();
      set(w);
    }

    async function takeNext() {
      msg.clear();
      next.disabled = true;
      try {
        set(await post('/api/v1/visits/next'));
      } catch (err) {
        if (err.status === 404) msg.fail(err.message || t('visits.none_due'));
        else msg.fail(err);
      } finally {
        next.disabled = false;
      }
      refresh(null, { background: true });
    }

    function render() {
      if (!work) {
        replace(current, h('p', { class: 'muted', dataset: { fact: 'no-visit' }, text: t('visits.none_open') }));
        return;
      }
      const v = visitOf(work);
      const fb = work.feedback;
      const info = facts([
        ['visits.id', v.id, 'visit'],
        ['visits.appeal', v.appeal, 'appeal'],
        ['visits.category', t('category.' + v.category, null, v.category), 'category'],
        ['visits.appeal_date', fmtTime(work.appeal_created_at || v.created_at), 'appeal-date'],
        ['visits.organizers', (work.organizers || v.organizers || []).join(', '), 'organizers'],
        ['visits.feedback', fb ? t('feedback.' + fb.result, null, fb.result) : '', 'feedback'],
        ['visits.feedback_reason', fb ? fb.reason || '' : '', 'feedback-reason'],
        ['visits.next_steps', fb ? fb.next_steps || '' : '', 'next-steps'],
        ['visits.caller', work.caller || '', 'caller'],
        ['visits.lease_until', fmtTime(work.lease_until), 'lease'],
        ['visits.attempts', String((v.attempts || []).length), 'attempts'],
      ]);
      const callMsg = message();
      const call = h('button', { type: 'button', id: 'visit-call' }, t('visits.call'));
      call.addEventListener('click', async () => {
        call.disabled = true;
        callMsg.ok(t('visits.calling'));
        try {
          const r = await post(`/api/v1/visits/${encodeURIComponent(v.id)}/call`);
          if (r.state === 'connected') {
            callMsg.ok(t('visits.connected'));
            current.dataset.call = 'connected';
          } else if (r.leg === 'agent') {
            callMsg.fail(t('visits.agent_no_answer', { reason: r.reason || dash }));
          } else {
            callMsg.fail(t('visits.citizen_not_reached', { outcome: t('outcome.' + r.outcome, null, r.outcome || dash), reason: r.reason || dash }));
            if (r.outcome) {
              set(null);
              msg.ok(t('visits.recorded', { outcome: t('outcome.' + r.outcome, null, r.outcome) }));
            }
          }
        } catch (err) {
          callMsg.fail(err);
        } finally {
          call.disabled = false;
        }
      });
      replace(current, h('div', { class: 'grid two' },
        h('div', {}, info, h('div', { class: 'actions' }, call), callMsg.el),
        outcomeForm(v)));
    }

    function outcomeForm(v) {
      const outcome = select('outcome', outcomes.map((o) => [o, t('outcome.' + o)]), 'completed');
      outcome.id = 'visit-outcome';
      const answers = h('fieldset', { class: 'answers', id: 'visit-answers' }, h('legend', { text: t('visits.answers') }),
        questions.map(([q, opts]) => h('fieldset', { class: 'question', dataset: { question: q } },
          h('legend', { text: t('question.' + q) }),
          opts.map((o) => h('label', { class: 'choice' },
            h('input', { type: 'radio', name: q, value: o, id: `answer-${q}-${o}` }), ' ', t(`answer.${q}.${o}`))))));
      const later = h('input', { type: 'datetime-local', name: 'later', id: 'visit-later' });
      const laterField = field('visits.later', later);
      const note = h('textarea', { name: 'note', id: 'visit-note', rows: '3' });
      const submit = h('button', { type: 'submit', id: 'visit-submit' }, t('visits.record'));
      const formMsg = message();
      const form = h('form', { class: 'stack', id: 'visit-form' },
        field('visits.outcome', outcome), answers, laterField, field('visits.note', note), submit, formMsg.el);
      const sync = () => {
        answers.hidden = outcome.value !== 'completed';
        laterField.hidden = outcome.value !== 'call_later';
      };
      outcome.addEventListener('change', sync);
      sync();
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        formMsg.clear();
        const body = { outcome: outcome.value };
        if (note.value.trim()) body.note = note.value.trim();
        if (outcome.value === 'completed') {
          body.answers = {};
          for (const [q] of questions) {
            const picked = form.querySelector(`input[name="${q}"]:checked`);
            if (!picked) {
              formMsg.fail(t('visits.answer_all'));
              return;
            }
            body.answers[q] = picked.value;
          }
        }
        if (outcome.value === 'call_later') {
          const d = new Date(later.value);
          if (!later.value || Number.isNaN(d.getTime())) {
            formMsg.fail(t('visits.later_needed'));
            return;
          }
          body.later = d.toISOString();
        }
        submit.disabled = true;
        try {
          await post(`/api/v1/visits/${encodeURIComponent(v.id)}/attempts`, body);
          set(null);
          msg.ok(t('visits.recorded', { outcome: t('outcome.' + body.outcome) }));
          refresh(null, { background: true });
        } catch (err) {
          formMsg.fail(err);
        } finally {
          submit.disabled = false;
        }
      });
      return section('visits.outcome_title', form);
    }

    async function refresh(_topics, opts) {
      try {
        const mine = await optional('/api/v1/visits/mine', opts);
        if (!mine) {
          replace(heldBox, notAvailable());
          replace(attemptsBox, notAvailable());
          return;
        }
        replace(heldBox, held.el);
        replace(attemptsBox, attempts.el);
        held.update(mine.held || []);
        attempts.update(mine.attempts_today || []);
        // A visit no longer held (its lease ran out) is closed here too.
        if (work && mine.held && !mine.held.some((w) => visitOf(w).id === visitOf(work).id)) {
          msg.fail(t('visits.lease_lost'));
          set(null);
        }
      } catch (err) {
        if (err.status !== 401) msg.fail(err);
      }
    }

    render();
    return { refresh, unmount: () => clearInterval(renew) };
  },
};
