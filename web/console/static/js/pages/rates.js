// The three rates of completed return visits, per organizer.
import { get, query } from '../api.js';
import { errorText, field, fmtRate, h, message, section, select } from '../dom.js';
import { t } from '../i18n.js';
import { table } from '../table.js';
import { windows } from './shared.js';

const frac = (f) => (f ? `${fmtRate(f.rate)} (${f.numerator}/${f.denominator})` : '—');

export default {
  id: 'rates',
  roles: ['supervisor'],
  nav: 'nav.rates',
  topics: ['visits'],
  mount(root) {
    let win = 'month';
    const msg = message();
    const pick = select('window', windows.map((w) => [w, t('window.' + w)]), win);
    pick.id = 'rates-window';
    const csv = h('a', { class: 'button secondary', id: 'rates-csv' }, t('rates.csv'));
    const setCSV = () => csv.setAttribute('href', '/api/v1/rates' + query({ by: 'organizer', window: win, format: 'csv' }));
    setCSV();
    pick.addEventListener('change', () => {
      win = pick.value;
      setCSV();
      load(null, { background: false });
    });
    const note = h('p', { class: 'muted' });
    const rates = table({
      id: 'rates-table',
      columns: [
        { key: 'group', label: 'rates.organizer' },
        { key: 'completed', label: 'rates.completed', numeric: true, value: (r) => (r.tally ? r.tally.completed : 0) },
        { key: 'response', label: 'rates.response', numeric: true, value: (r) => r.response_rate?.rate ?? '', render: (r) => frac(r.response_rate) },
        { key: 'solution', label: 'rates.solution', numeric: true, value: (r) => r.solution_rate?.rate ?? '', render: (r) => frac(r.solution_rate) },
        { key: 'satisfaction', label: 'rates.satisfaction', numeric: true, value: (r) => r.satisfaction_rate?.rate ?? '', render: (r) => frac(r.satisfaction_rate) },
      ],
      key: (r) => r.group,
      csv: 'rates-by-organizer.csv',
      empty: 'rates.none',
    });
    root.append(msg.el,
      h('div', { class: 'toolbar' }, field('rates.window', pick), csv),
      section('rates.by_organizer', note, rates.el));

    async function load(_topics, opts) {
      try {
        const r = await get('/api/v1/rates' + query({ by: 'organizer', window: win }), opts);
        rates.update(r.items || []);
        note.textContent = t(r.partly_solved_counts ? 'rates.partly_counts' : 'rates.partly_not');
        msg.clear();
      } catch (err) {
        if (err.status !== 401) msg.fail(errorText(err));
      }
    }
    return { refresh: load };
  },
};
