// Hand-drawn SVG charts: a time-series line/area chart and a horizontal bar
// chart. Each redraws itself when its container changes width.

import { h, fmtAxis, fmtInt, fmtNum } from './format.js';

const NS = 'http://www.w3.org/2000/svg';
const CHAR_W = 6.6; // rough width of one 11–12 px glyph, to reserve room for labels
const MIN = 60e3;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const TIME_STEPS = [MIN, 5 * MIN, 10 * MIN, 15 * MIN, 30 * MIN, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR,
  DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 365 * DAY];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v != null) el.setAttribute(k, v);
  el.append(...children.filter((c) => c != null));
  return el;
}

const drawn = new WeakMap(); // container → { width, draw }
const resizes = new ResizeObserver((entries) => {
  for (const e of entries) {
    const st = drawn.get(e.target);
    const w = Math.round(e.contentRect.width);
    if (st && w > 0 && w !== st.width) st.draw();
  }
});

function mount(container, draw) {
  if (!drawn.has(container)) resizes.observe(container);
  const st = { width: 0, draw: () => { st.width = Math.round(container.clientWidth); draw(st.width || 480); } };
  drawn.set(container, st);
  st.draw();
}

// niceRange picks round gridline values covering lo..hi (lo ≤ 0 ≤ hi).
function niceRange(lo, hi, ticks, integer) {
  if (hi - lo <= 0) hi = lo + 1;
  const raw = (hi - lo) / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const mults = integer && pow < 10 ? [1, 2, 5, 10] : [1, 2, 2.5, 5, 10];
  let step = mults.map((m) => m * pow).find((v) => v >= raw);
  if (integer) step = Math.max(1, step);
  const bottom = Math.floor(lo / step) * step;
  const top = Math.ceil(hi / step) * step;
  const values = [];
  for (let v = bottom; v <= top + step / 2; v += step) values.push(+v.toPrecision(12));
  return { bottom, top, values };
}

function timeTicks(t0, t1, max, utc) {
  const step = TIME_STEPS.find((st) => (t1 - t0) / st <= max) ?? TIME_STEPS.at(-1);
  // Align sub-day ticks to the viewer's clock, day ticks to UTC midnight.
  const off = utc || step >= DAY ? 0 : new Date(t0).getTimezoneOffset() * MIN;
  const out = [];
  for (let t = Math.ceil((t0 + off) / step) * step - off; t <= t1; t += step) out.push(t);
  const opts = step < DAY
    ? { hour: '2-digit', minute: '2-digit', hour12: false }
    : step < 91 * DAY ? { month: 'short', day: 'numeric' } : { month: 'short', year: 'numeric' };
  const fmt = new Intl.DateTimeFormat(undefined, utc ? { ...opts, timeZone: 'UTC' } : opts);
  return out.map((t) => ({ t, label: fmt.format(t) }));
}

function empty(container, height, text) {
  container.replaceChildren(s('svg', { class: 'chart', width: '100%', height, role: 'img', 'aria-label': text },
    s('text', { class: 'chart-empty', x: '50%', y: height / 2, 'text-anchor': 'middle' }, text)));
}

// lineChart draws points [{x: ms, y: number}] sorted by x. Options: height
// (default: the container's), partialLast (draw the last segment dashed),
// zeroText (shown when every y is 0),
// utc (format the x axis in UTC, for DATE columns), yFormat, tip(point) → text,
// label (accessible name), emptyText.
export function lineChart(container, points, opts = {}) {
  mount(container, (width) => drawLine(container, width, points, opts));
}

function drawLine(container, width, points, { height = container.clientHeight || 240, partialLast = false, utc = false, yFormat, tip, label = 'Line chart', emptyText = 'No data', zeroText }) {
  if (!points.length) return empty(container, height, emptyText);
  const ys = points.map((p) => p.y);
  const { bottom, top, values } = niceRange(Math.min(0, ...ys), Math.max(0, ...ys), 4, ys.every(Number.isInteger));
  // One notation per axis: compact for all labels as soon as the top needs it.
  const yLabels = values.map(yFormat ?? (Math.abs(top) >= 10000 || Math.abs(bottom) >= 10000 ? fmtAxis : fmtNum));
  const m = { t: 12, r: 16, b: 26, l: Math.ceil(Math.max(...yLabels.map((l) => l.length)) * CHAR_W) + 14 };
  const pw = width - m.l - m.r;
  const ph = height - m.t - m.b;
  const t0 = points[0].x;
  const span = points.at(-1).x - t0;
  const X = (t) => m.l + (span ? ((t - t0) / span) * pw : pw / 2);
  const Y = (v) => m.t + ph - ((v - bottom) / (top - bottom)) * ph;

  const root = s('svg', { class: 'chart', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': label });
  const grid = s('g', { class: 'grid' });
  values.forEach((v, i) => {
    const y = Y(v).toFixed(1);
    grid.append(s('line', { x1: m.l, x2: width - m.r, y1: y, y2: y, class: v === 0 ? 'zero' : null }),
      s('text', { x: m.l - 8, y: +y + 4, 'text-anchor': 'end' }, yLabels[i]));
  });
  const ticks = span ? timeTicks(t0, t0 + span, Math.max(2, Math.floor(pw / 84)), utc) : timeTicks(t0, t0, 1, utc);
  for (const { t, label: tl } of ticks) {
    const x = X(t);
    const anchor = x - m.l < 24 ? 'start' : width - m.r - x < 24 ? 'end' : 'middle';
    grid.append(s('line', { class: 'tick', x1: x, x2: x, y1: m.t + ph, y2: m.t + ph + 4 }),
      s('text', { x, y: height - 7, 'text-anchor': anchor }, tl));
  }
  root.append(grid);

  const xy = points.map((p) => [X(p.x).toFixed(1), Y(p.y).toFixed(1)]);
  const path = (pts) => pts.map(([x, y], i) => `${i ? 'L' : 'M'}${x},${y}`).join('');
  const line = path(xy);
  const base = Y(Math.max(0, bottom)).toFixed(1);
  root.append(s('path', { class: 'area', d: `${line}L${xy.at(-1)[0]},${base}L${xy[0][0]},${base}Z` }));
  if (partialLast && xy.length > 1) {
    root.append(s('path', { class: 'line', d: path(xy.slice(0, -1)) }), s('path', { class: 'line partial', d: path(xy.slice(-2)) }));
  } else {
    root.append(s('path', { class: 'line', d: line }));
  }
  if (points.length <= 40) {
    const dots = s('g', { class: 'dots' });
    for (const [x, y] of xy) dots.append(s('circle', { cx: x, cy: y, r: 2.5 }));
    root.append(dots);
  }

  if (zeroText && ys.every((y) => y === 0)) {
    root.append(s('text', { class: 'chart-empty', x: m.l + pw / 2, y: m.t + ph / 2, 'text-anchor': 'middle' }, zeroText));
  }

  // Hover: snap a cursor and a tooltip to the nearest point.
  const cursor = s('g', { class: 'cursor', visibility: 'hidden' },
    s('line', { y1: m.t, y2: m.t + ph }), s('circle', { r: 4 }));
  const overlay = s('rect', { class: 'overlay', x: m.l, y: m.t, width: Math.max(0, pw), height: ph });
  root.append(cursor, overlay);
  const tipEl = h('div', { class: 'chart-tip', hidden: true });
  overlay.addEventListener('pointermove', (e) => {
    const box = root.getBoundingClientRect();
    const x = ((e.clientX - box.left) * width) / box.width;
    let best = 0;
    for (let i = 1; i < xy.length; i++) if (Math.abs(xy[i][0] - x) < Math.abs(xy[best][0] - x)) best = i;
    const [px, py] = xy[best];
    cursor.setAttribute('visibility', 'visible');
    cursor.firstChild.setAttribute('x1', px);
    cursor.firstChild.setAttribute('x2', px);
    cursor.lastChild.setAttribute('cx', px);
    cursor.lastChild.setAttribute('cy', py);
    tipEl.textContent = tip ? tip(points[best]) : `${fmtInt(points[best].y)}`;
    tipEl.hidden = false;
    tipEl.style.left = `${px}px`;
    tipEl.style.top = `${py}px`;
    tipEl.classList.toggle('left', px > width - 90);
    tipEl.classList.toggle('right', px < m.l + 60);
  });
  overlay.addEventListener('pointerleave', () => {
    cursor.setAttribute('visibility', 'hidden');
    tipEl.hidden = true;
  });
  container.replaceChildren(root, tipEl);
}

// barChart draws horizontal bars for items [{label, value}] in the given
// order. With fit the rows shrink to the container's height; otherwise the
// chart grows by rowHeight per item.
export function barChart(container, items, opts = {}) {
  mount(container, (width) => drawBars(container, width, items, opts));
}

function drawBars(container, width, items, { fit = false, height = fit ? container.clientHeight || 240 : undefined, rowHeight = 26, valueFormat = fmtInt, label = 'Bar chart', emptyText = 'No data' }) {
  if (!items.length) return empty(container, height ?? 120, emptyText);
  const pad = 4;
  const rowH = height ? Math.min(rowHeight, Math.floor((height - 2 * pad) / items.length)) : rowHeight;
  const total = height ?? items.length * rowH + 2 * pad;
  const maxChars = Math.max(...items.map((it) => it.label.length));
  const labelW = Math.round(Math.min(Math.max(maxChars * CHAR_W + 16, 56), width * 0.4));
  const maxLen = Math.max(3, Math.floor((labelW - 12) / CHAR_W));
  const values = items.map((it) => valueFormat(it.value));
  const valueW = Math.max(...values.map((v) => v.length)) * CHAR_W + 10;
  const barMax = Math.max(10, width - labelW - valueW);
  const max = Math.max(0, ...items.map((it) => it.value)) || 1;
  const barH = Math.max(4, Math.round(rowH * 0.64));

  const root = s('svg', { class: 'chart bars', width, height: total, viewBox: `0 0 ${width} ${total}`, role: 'img', 'aria-label': label });
  items.forEach((it, i) => {
    const y = pad + i * rowH;
    const w = Math.max(it.value > 0 ? 2 : 0, (Math.max(0, it.value) / max) * barMax);
    const text = it.label.length > maxLen ? `${it.label.slice(0, maxLen - 1)}\u2026` : it.label;
    root.append(s('g', { class: 'bar-row' },
      s('title', {}, `${it.label}: ${values[i]}`),
      s('text', { class: 'bar-label', x: labelW - 10, y: y + rowH / 2 + 4, 'text-anchor': 'end' }, text),
      s('rect', { class: 'track', x: labelW, y: y + (rowH - barH) / 2, width: barMax, height: barH, rx: 3 }),
      s('rect', { class: 'bar', x: labelW, y: y + (rowH - barH) / 2, width: w.toFixed(1), height: barH, rx: 3 }),
      s('text', { class: 'bar-value', x: labelW + w + 6, y: y + rowH / 2 + 4 }, values[i])));
  });
  container.replaceChildren(root);
}
