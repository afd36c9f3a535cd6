// A table of rows from the API: click a column's header to sort by it
// (again to reverse), type in the filter to keep the rows that contain the
// text, export what is shown as CSV.
import { download, h } from './dom.js';
import { t } from './i18n.js';

let tables = 0;

// table makes a table. columns: {key, label (i18n key), value(row) for
// sorting, filtering and CSV, render(row) for the cell (the value when
// absent), numeric}. key(row) names a row (data-key). csv: the export's
// file name, without it no export. empty: the i18n key shown without rows.
export function table({ id, columns, key, csv, empty = 'table.empty', filter = true, sort = null }) {
  const n = ++tables;
  const state = { rows: [], sortKey: sort ? sort.key : null, dir: sort ? sort.dir : 1, text: '' };
  const body = h('tbody');
  const count = h('span', { class: 'count muted', 'aria-live': 'polite' });
  const heads = columns.map((c) => {
    const btn = h('button', { type: 'button', class: 'sort', on: { click: () => sortBy(c.key) } }, t(c.label));
    return h('th', { scope: 'col', class: c.numeric ? 'num' : null, dataset: { col: c.key } }, btn);
  });
  const tbl = h('table', { class: 'data', id: id || null }, h('thead', {}, h('tr', {}, heads)), body);
  const tools = h('div', { class: 'table-tools' });
  if (filter) {
    const input = h('input', {
      type: 'search', class: 'filter', id: `filter-${n}`, placeholder: t('table.filter'), 'aria-label': t('table.filter'),
      on: { input: (e) => { state.text = e.target.value.trim().toLowerCase(); render(); } },
    });
    tools.append(input);
  }
  tools.append(count);
  if (csv) {
    tools.append(h('button', { type: 'button', class: 'secondary csv', on: { click: exportCSV } }, t('table.csv')));
  }
  const el = h('div', { class: 'table-wrap', dataset: { rows: '0' } }, tools, h('div', { class: 'scroll' }, tbl));

  const valueOf = (c, row) => {
    const v = c.value ? c.value(row) : row[c.key];
    return v === undefined || v === null ? '' : v;
  };

  function sortBy(k) {
    if (state.sortKey === k) state.dir = -state.dir;
    else {
      state.sortKey = k;
      state.dir = 1;
    }
    render();
  }

  function shown() {
    let rows = state.rows;
    if (state.text) {
      rows = rows.filter((r) => columns.some((c) => String(valueOf(c, r)).toLowerCase().includes(state.text)));
    }
    const c = columns.find((x) => x.key === state.sortKey);
    if (c) {
      rows = rows
        .map((r, i) => [r, i])
        .sort(([a, i], [b, j]) => {
          const va = valueOf(c, a);
          const vb = valueOf(c, b);
          let d;
          if (typeof va === 'number' && typeof vb === 'number') d = va - vb;
          else if (va === '' && vb !== '') d = 1;
          else if (vb === '' && va !== '') d = -1;
          else d = String(va).localeCompare(String(vb), undefined, { numeric: true });
          return d * state.dir || i - j;
        })
        .map(([r]) => r);
    }
    return rows;
  }

  function render() {
    const rows = shown();
    for (const th of heads) {
      const on = th.dataset.col === state.sortKey;
      th.setAttribute('aria-sort', on ? (state.dir > 0 ? 'ascending' : 'descending') : 'none');
    }
    body.replaceChildren();
    if (rows.length === 0) {
      body.append(h('tr', { class: 'empty' }, h('td', { colspan: String(columns.length), text: t(state.rows.length ? 'table.none_match' : empty) })));
    }
    for (const r of rows) {
      const tr = h('tr', { dataset: key ? { key: key(r) } : {} });
      for (const c of columns) {
        const cell = c.render ? c.render(r) : valueOf(c, r);
        tr.append(h('td', { class: c.numeric ? 'num' : null, dataset: { col: c.key } }, cell));
      }
      body.append(tr);
    }
    count.textContent = state.text ? t('table.count_of', { n: rows.length, m: state.rows.length }) : t('table.count', { n: rows.length });
    el.dataset.rows = String(rows.length);
  }

  function exportCSV() {
    const line = (cells) => cells.map(csvCell).join(',');
    const out = [line(columns.map((c) => t(c.label)))];
    for (const r of shown()) out.push(line(columns.map((c) => valueOf(c, r))));
    download(csv, '\ufeff' + out.join('\r\n') + '\r\n');
  }

  render();
  return {
    el,
    update(rows) {
      state.rows = rows || [];
      render();
    },
  };
}

// csvCell quotes a value for RFC 4180, and keeps a spreadsheet from
// reading text that starts with = + @ as a formula.
function csvCell(v) {
  let s = String(v);
  if (/^[=+@\t\r]/.test(s)) s = "'" + s;
  return '"' + s.replace(/"/g, '""') + '"';
}
