// Accessible, dependency-free charts drawn with HTML and CSS (so they follow the page's
// direction in Arabic and English). Every chart carries a text summary (aria-label) and its
// figures as a real table inside <details>.
import { h } from './dom.js';
import { t, fmtNumber } from './i18n.js';

function table(caption, headers, rows) {
  return h('details', { class: 'chart-table' },
    h('summary', { text: t('dash.table') }),
    h('table', {},
      h('caption', { class: 'sr-only', text: caption }),
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col', text: x })))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => (i === 0 ? h('th', { scope: 'row', text: c }) : h('td', { text: c }))))))));
}

// Horizontal bars: items = [{label, value, display?, note?}], max = scale maximum.
export function barChart({ title, items, max, valueLabel, digits = 0, tone = 'primary' }) {
  const top = max ?? Math.max(1, ...items.map((i) => i.value || 0));
  const summary = `${title}: ` + items.map((i) => `${i.label} ${fmtNumber(i.value, digits)}`).join('، ');
  return h('figure', { class: `chart bar-chart tone-${tone}` },
    h('figcaption', { text: title }),
    h('div', { class: 'bars', role: 'img', 'aria-label': summary },
      items.map((i) => h('div', { class: 'bar-row' },
        h('span', { class: 'bar-label', text: i.label }),
        h('span', { class: 'bar-track' },
          h('span', { class: 'bar-fill', style: `inline-size:${Math.max(0, Math.min(100, ((i.value || 0) / top) * 100))}%` })),
        h('span', { class: 'bar-value', text: i.display ?? fmtNumber(i.value, digits) })))),
    table(title, ['', valueLabel], items.map((i) => [i.label, i.display ?? fmtNumber(i.value, digits)])));
}

// Vertical columns over time: points = [{label, value, sub}], value on a 0..max scale.
export function columnChart({ title, points, max = 5, valueLabel, subLabel }) {
  const summary = `${title}: ` + points.map((p) => `${p.label} ${fmtNumber(p.value, 2)}`).join('، ');
  return h('figure', { class: 'chart column-chart' },
    h('figcaption', { text: title }),
    h('div', { class: 'columns', role: 'img', 'aria-label': summary },
      h('div', { class: 'col-axis', 'aria-hidden': 'true' }, [5, 4, 3, 2, 1].map((n) => h('span', { text: fmtNumber(n) }))),
      h('div', { class: 'col-plot' },
        points.map((p) => h('div', { class: 'col' },
          h('span', { class: 'col-value', text: fmtNumber(p.value, 1) }),
          h('span', { class: 'col-bar', style: `block-size:${Math.max(2, ((p.value || 0) / max) * 100)}%`, title: `${p.label}: ${fmtNumber(p.value, 2)} (${p.sub})` }),
          h('span', { class: 'col-label', text: p.label }))))),
    table(title, ['', valueLabel, subLabel], points.map((p) => [p.label, fmtNumber(p.value, 2), fmtNumber(p.sub)])));
}

// A 1..5 score as a small meter with text.
export function scoreMeter(label, value) {
  return h('div', { class: 'kpi' },
    h('span', { class: 'kpi-label', text: label }),
    h('span', { class: 'kpi-value', text: value === null || value === undefined ? '—' : `${fmtNumber(value, 2)} / ${fmtNumber(5)}` }),
    h('meter', { min: 1, max: 5, low: 2.5, high: 3.9, optimum: 5, value: value ?? 0, 'aria-label': label }));
}
