// Appeals to chase: due soon and overdue, by lead organizer.
import { get } from '../api.js';
import { errorText, fmtDuration, fmtTime, h, message, section } from '../dom.js';
import { t } from '../i18n.js';
import { table } from '../table.js';

function rows(list) {
  const out = [];
  for (const g of list.groups || []) {
    for (const it of g.items || []) out.push({ organizer: g.organizer, ...it });
  }
  return out;
}

export default {
  id: 'appeals',
  roles: ['supervisor'],
  nav: 'nav.appeals',
  topics: ['appeals'],
  mount(root) {
    const msg = message();
    const organizer = (r) => r.organizer || t('appeals.hotline');
    const items = (id, secondsLabel) => table({
      id,
      columns: [
        { key: 'organizer', label: 'appeals.organizer', value: organizer },
        { key: 'appeal', label: 'appeals.appeal', value: (r) => r.appeal.id },
        { key: 'category', label: 'appeals.category', value: (r) => t('category.' + r.appeal.category, null, r.appeal.category) },
        { key: 'stage', label: 'appeals.stage', value: (r) => t('stage.' + r.stage, null, r.stage) },
        { key: 'deadline', label: 'appeals.deadline', value: (r) => r.deadline, render: (r) => fmtTime(r.deadline) },
        { key: 'seconds', label: secondsLabel, numeric: true, value: (r) => r.seconds, render: (r) => fmtDuration(r.seconds) },
      ],
      key: (r) => `${r.organizer}-${r.appeal.id}-${r.stage}`,
      csv: id + '.csv',
    });
    const overdue = items('appeals-overdue', 'appeals.overdue_by');
    const dueSoon = items('appeals-due-soon', 'appeals.left');
    const byOrganizer = table({
      id: 'appeals-by-organizer',
      columns: [
        { key: 'organizer', label: 'appeals.organizer', value: organizer },
        { key: 'overdue', label: 'appeals.overdue', numeric: true },
        { key: 'due_soon', label: 'appeals.due_soon', numeric: true },
      ],
      key: (r) => r.organizer,
      csv: 'appeals-by-organizer.csv',
      sort: { key: 'overdue', dir: -1 },
    });
    root.append(msg.el,
      section('appeals.by_organizer', byOrganizer.el),
      section('appeals.overdue', overdue.el),
      section('appeals.due_soon', dueSoon.el));

    async function load(_topics, opts) {
      try {
        const [o, d] = await Promise.all([
          get('/api/v1/supervision?state=overdue&limit=500', opts),
          get('/api/v1/supervision?state=due_soon&limit=500', opts),
        ]);
        const ro = rows(o);
        const rd = rows(d);
        overdue.update(ro);
        dueSoon.update(rd);
        const counts = new Map();
        const add = (r, k) => {
          const c = counts.get(r.organizer) || { organizer: r.organizer, overdue: 0, due_soon: 0 };
          c[k]++;
          counts.set(r.organizer, c);
        };
        ro.forEach((r) => add(r, 'overdue'));
        rd.forEach((r) => add(r, 'due_soon'));
        byOrganizer.update([...counts.values()]);
        msg.clear();
      } catch (err) {
        if (err.status !== 401) msg.fail(errorText(err));
      }
    }
    return { refresh: load };
  },
};
