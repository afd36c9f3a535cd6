// Parts more than one page shows.
import { badge, dash, fmtPer10k, h } from '../dom.js';
import { t } from '../i18n.js';

export const categories = ['emergency', 'livelihood', 'general', 'complex'];
export const states = ['available', 'ringing', 'talking', 'wrapup', 'paused', 'offline'];
export const windows = ['day', 'month', '30d'];

// lineBox shows one window of the complaint line: the rate against the
// limit, the counts it is over, the budget.
export function lineBox(windowKey, line) {
  if (!line) return h('div', { class: 'stat', dataset: { window: windowKey } }, h('div', { class: 'stat-label', text: t('window.' + windowKey) }), dash);
  const over = line.state === 'over';
  return h('div', { class: `stat line ${over ? 'alarm' : ''}`, dataset: { window: windowKey, state: line.state || '', upheld: String(line.upheld), served: String(line.served) } },
    h('div', { class: 'stat-label', text: t('window.' + windowKey) }),
    h('div', { class: 'stat-value' }, line.rate_per_10000 === null || line.rate_per_10000 === undefined ? dash : line.rate_per_10000.toFixed(2)),
    h('div', { class: 'stat-sub' }, t('line.counts', { upheld: line.upheld, served: line.served, limit: line.limit_per_10000 })),
    h('div', { class: 'stat-sub' }, t('line.budget', { n: line.budget }), ' ', line.state ? badge('line', line.state) : null),
    line.pending ? h('div', { class: 'stat-sub' }, t('line.pending', { n: line.pending })) : null);
}

export function per10k(v) {
  return fmtPer10k(v);
}
