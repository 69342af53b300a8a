// Tiny DOM helpers. Text is always set with textContent (never innerHTML) so nothing a
// beneficiary writes can become markup.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2).toLowerCase(), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof v !== 'string' && k !== 'list') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

const SVG = 'http://www.w3.org/2000/svg';
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') el.textContent = v; else el.setAttribute(k, String(v));
  }
  for (const c of children.flat(Infinity)) if (c) el.append(c);
  return el;
}

// Saudi national ID / iqama: 10 digits starting with 1 or 2 (ASCII, Arabic-Indic or Eastern
// Arabic digits). Lists and previews mask them; only the case panel shows the number.
const ID_RE = /(?<![0-9٠-٩۰-۹])[12١٢۱۲][0-9٠-٩۰-۹]{9}(?![0-9٠-٩۰-۹])/g;
// The same number typed with separators, as the bot accepts it ("1234 567 890", "١٢٣٤-٥٦٧-٨٩٠",
// direction marks between the digits): masked when its checksum is a national ID's, so that a
// date and a time ("2026-12-20 10:00") stay readable.
const SPACED_ID_RE = /(?<![0-9٠-٩۰-۹])(?<![A-Za-z][-\s]?)[12١٢۱۲](?:[\s\-.()\u200B-\u200F\u2066-\u2069]{0,2}[0-9٠-٩۰-۹]){9}(?![0-9٠-٩۰-۹])/g;
const toAsciiDigits = (s) => s.replace(/[٠-٩]/g, (d) => String(d.charCodeAt(0) - 0x660)).replace(/[۰-۹]/g, (d) => String(d.charCodeAt(0) - 0x6f0));
const asciiDigits = (s) => toAsciiDigits(s).replace(/[^0-9]/g, '');
function idChecksum(digits) {
  let sum = 0;
  for (let i = 0; i < 10; i++) {
    let v = Number(digits[i]);
    if (i % 2 === 0) { v *= 2; if (v > 9) v -= 9; }
    sum += v;
  }
  return sum % 10 === 0;
}
// A date as people and the bot write it (2026-12-20, 2026/12/20 10:00): never a national ID.
const looksLikeDate = (m) => /^[12]\d{3}[-/.]\d{1,2}[-/.]\d{1,2}/.test(toAsciiDigits(m));
export function maskIds(text) {
  return String(text ?? '')
    .replace(ID_RE, '••••••••••')
    .replace(SPACED_ID_RE, (m) => (!looksLikeDate(m) && idChecksum(asciiDigits(m)) ? '••••••••••' : m));
}
