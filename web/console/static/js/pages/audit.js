// The audit log: every state-changing action, who, with which roles,
// when, from where, what.
import { get, optional, query } from '../api.js';
import { errorText, fmtTime, h, message, notAvailable, replace, section } from '../dom.js';
import { t } from '../i18n.js';
import { table } from '../table.js';

export default {
  id: 'audit',
  roles: ['admin'],
  nav: 'nav.audit',
  topics: ['audit'],
  mount(root) {
    const msg = message();
    let items = [];
    let next = '';
    const box = h('div', { id: 'audit' });
    const more = h('button', { type: 'button', class: 'secondary', id: 'audit-more', hidden: true }, t('audit.more'));
    // The export covers the last 30 days, oldest first, searched as the
    // page is.
    const day = (d) => `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
    const today = new Date();
    const from = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 30);
    const csvHref = (f) => '/api/v1/audit' + query({ format: 'csv', from: day(from), to: day(today), ...f });
    const csv = h('a', { class: 'button secondary', id: 'audit-csv', href: csvHref({}) }, t('audit.csv'));
    const log = table({
      id: 'audit-table',
      columns: [
        { key: 'at', label: 'audit.at', value: (e) => e.at, render: (e) => fmtTime(e.at) },
        { key: 'user', label: 'audit.user' },
        { key: 'roles', label: 'audit.roles', value: (e) => (e.roles || []).map((r) => t('role.' + r, null, r)).join(', ') },
        { key: 'source', label: 'audit.source' },
        { key: 'action', label: 'audit.action' },
        { key: 'request', label: 'audit.request', value: (e) => `${e.method || ''} ${e.path || ''}`.trim() },
        { key: 'status', label: 'audit.status', numeric: true },
        { key: 'subject', label: 'audit.subject' },
        { key: 'detail', label: 'audit.detail', value: (e) => (typeof e.detail === 'object' && e.detail !== null ? JSON.stringify(e.detail) : e.detail ?? '') },
      ],
      key: (e) => e.id,
      sort: { key: 'at', dir: -1 },
    });
    // The log searched by account and action on the server: a rare
    // user's entries are found however far back they are.
    const filter = { user: '', action: '' };
    const userIn = h('input', { type: 'search', id: 'audit-user', placeholder: t('audit.user'), 'aria-label': t('audit.user') });
    const actionIn = h('input', { type: 'search', id: 'audit-action', placeholder: t('audit.action_hint'), 'aria-label': t('audit.action') });
    const search = h('form', { class: 'inline', id: 'audit-search' }, userIn, actionIn,
      h('button', { type: 'submit', class: 'secondary' }, t('audit.search')));
    search.addEventListener('submit', (e) => {
      e.preventDefault();
      filter.user = userIn.value.trim();
      filter.action = actionIn.value.trim();
      csv.href = csvHref(filter);
      items = [];
      next = '';
      load([], {});
    });
    more.addEventListener('click', async () => {
      more.disabled = true;
      try {
        const page = await get('/api/v1/audit' + query({ limit: 200, cursor: next, ...filter }));
        items = items.concat(page.items || []);
        next = page.next_cursor || '';
        log.update(items);
        more.hidden = !next;
      } catch (err) {
        msg.fail(err);
      } finally {
        more.disabled = false;
      }
    });
    root.append(msg.el, section('audit.log', h('div', { class: 'toolbar' }, search, csv), box, more));

    async function load(_topics, opts) {
      try {
        const page = await optional('/api/v1/audit' + query({ limit: 200, ...filter }), opts);
        if (!page) {
          replace(box, notAvailable());
          csv.hidden = true;
          return;
        }
        csv.hidden = false;
        replace(box, log.el);
        // The newest page again; what was loaded beyond it stays.
        const seen = new Set((page.items || []).map((e) => e.id));
        items = (page.items || []).concat(items.filter((e) => !seen.has(e.id)));
        if (!next) next = page.next_cursor || '';
        more.hidden = !next;
        log.update(items);
        msg.clear();
      } catch (err) {
        if (err.status !== 401) msg.fail(errorText(err));
      }
    }
    return { refresh: load };
  },
};
