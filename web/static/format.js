// DOM building and the number/time formats the dashboard shows everywhere.

export const DASH = '\u2014';

// h builds an element: props "class", "text", "dataset", on<event> handlers, the
// rest as attributes (true → empty attribute, null/false → left out). Children
// may be nodes, strings or nested arrays; null and false are skipped. Text is
// never parsed as HTML, so pin data cannot inject markup.
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props ?? {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : v);
  }
  el.append(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

// fill replaces el's children, skipping null and false like h does.
export function fill(el, ...children) {
  el.replaceChildren(...children.flat(Infinity).filter((c) => c != null && c !== false));
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);

const intFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const numFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });

export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

export function fmtInt(v) {
  return isNum(v) ? intFmt.format(v) : DASH;
}

// fmtNum keeps integers whole and other numbers to two decimals.
export function fmtNum(v) {
  if (!isNum(v)) return DASH;
  return Number.isInteger(v) ? intFmt.format(v) : numFmt.format(v);
}

// isIdName says whether a column holds identifiers rather than amounts
// (id, id_index, unique_id, kafka_offset, partition…): those are shown as
// they are, never with thousands separators.
export const isIdName = (name) => /(^|_)(id|ids|index|offset|partition|key|uuid)($|_)/i.test(String(name ?? ''));

// fmtId shows an identifier's digits as they are: 1234567, not 1,234,567.
export function fmtId(v) {
  return v == null ? DASH : String(v);
}

// fmtAxis is for axis labels of large numbers: 12500 → "12.5K".
export function fmtAxis(v) {
  return isNum(v) ? compactFmt.format(v) : '';
}

// fmtRate shows a per-second rate with one decimal below 100.
export function fmtRate(v) {
  if (!isNum(v)) return DASH;
  return v < 100 ? v.toFixed(v < 10 ? 2 : 1) : intFmt.format(v);
}

// fmtSeconds: 0.123 → "123 ms", 4.5 → "4.50 s", 125 → "2m 5s".
export function fmtSeconds(s) {
  if (!isNum(s)) return DASH;
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  return fmtDuration(s * 1000);
}

// fmtDuration: milliseconds → "850 ms", "12.3 s", "4m 2s", "3h 12m".
export function fmtDuration(ms) {
  if (!isNum(ms) || ms < 0) return DASH;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${Math.floor(s % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function parseTime(v) {
  if (v == null || v === '') return null;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? null : d;
}

const pad = (n) => String(n).padStart(2, '0');

// isoDay returns a Date's local day as YYYY-MM-DD.
export const isoDay = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;

// fmtTime shows local wall-clock time (HH:MM:SS), with the ISO date
// (YYYY-MM-DD HH:MM) when it is not today.
export function fmtTime(v) {
  const d = v instanceof Date ? v : parseTime(v);
  if (!d) return DASH;
  if (d.toDateString() === new Date().toDateString()) return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return `${isoDay(d)} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// utcDate returns "YYYY-MM-DD" for the UTC day daysAgo days before now.
export function utcDate(daysAgo = 0) {
  return new Date(Date.now() - daysAgo * 86400e3).toISOString().slice(0, 10);
}
