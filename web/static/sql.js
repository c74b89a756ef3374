// The SQL editor: POST /query, a sortable result table, an optional chart of
// two-column results, and the same query as a CSV download.

import { ApiError, call } from './api.js';
import { barChart, lineChart } from './charts.js';
import { $, fill, fmtInt, fmtNum, h, isNum } from './format.js';

const LIMIT = 1000;
const MAX_BARS = 50;
const SQL_STORAGE = 'pinpipe.sql';
const CHART_STORAGE = 'pinpipe.chart';

export const EXAMPLES = [
  ['Pins per category', 'SELECT category, count(*) AS pins\nFROM pins_live\nGROUP BY category\nORDER BY pins DESC'],
  ['Top posters', 'SELECT poster_name, max(follower_count) AS followers, count(*) AS pins\nFROM pins\nWHERE poster_name IS NOT NULL\nGROUP BY poster_name\nORDER BY followers DESC NULLS LAST\nLIMIT 20'],
  ['Pins per day', 'SELECT dt, count(*) AS pins\nFROM pins_live\nGROUP BY dt\nORDER BY dt'],
  ['Not curated yet', "SELECT dt, count(*) AS live, (SELECT count(*) FROM pins p WHERE p.dt = l.dt) AS curated\nFROM pins_live l\nGROUP BY dt\nORDER BY dt DESC"],
  ['Raw vs curated', "SELECT 'raw' AS zone, count(*) AS records FROM pins_raw\nUNION ALL\nSELECT 'curated', count(*) FROM pins"],
  ['Top tags', 'SELECT tag, count(*) AS pins\nFROM (SELECT unnest(tags) AS tag FROM pins)\nGROUP BY tag\nORDER BY pins DESC\nLIMIT 25'],
  ['Media types', 'SELECT is_image_or_video AS media, count(*) AS pins\nFROM pins\nGROUP BY media\nORDER BY pins DESC'],
  ['Latest pins', 'SELECT *\nFROM pins_live\nORDER BY ingested_at DESC\nLIMIT 100'],
];

const NUMERIC = /^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|REAL|DOUBLE|DECIMAL|NUMERIC)\b/i;
const TEMPORAL = /^(DATE|TIMESTAMP)/i;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?)?$/;

function store(key, value) {
  try {
    localStorage.setItem(key, value);
  } catch {
    // storage disabled: the editor just forgets
  }
}

function load(key) {
  try {
    return localStorage.getItem(key);
  } catch {
    return null;
  }
}

const isNumericCol = (col, rows, i) =>
  NUMERIC.test(col.type ?? '') || (rows.length > 0 && rows.every((r) => r[i] == null || isNum(r[i])) && rows.some((r) => isNum(r[i])));

// toTime reads a DATE or TIMESTAMP value; a bare date is a UTC day.
function toTime(v) {
  if (typeof v !== 'string' || !ISO_DATE.test(v)) return null;
  const t = Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v.replace(' ', 'T'));
  return Number.isNaN(t) ? null : t;
}

function show(v) {
  if (v == null) return h('span', { class: 'null', text: 'NULL' });
  if (isNum(v)) return fmtNum(v);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

function compare(a, b) {
  if (a == null || b == null) return a == null ? (b == null ? 0 : 1) : -1;
  if (isNum(a) && isNum(b)) return a - b;
  return String(typeof a === 'object' ? JSON.stringify(a) : a).localeCompare(String(typeof b === 'object' ? JSON.stringify(b) : b), undefined, { numeric: true });
}

export function createSQL() {
  const editor = $('#sql');
  const runBtn = $('#run-query');
  const csvBtn = $('#download-csv');
  const chartBtn = $('#chart-toggle');
  const results = $('#results');
  const meta = $('#result-meta');
  const errBox = $('#query-error');
  const chartBox = $('#result-chart');
  const chartNote = $('#chart-note');

  let result = null; // the last successful response
  let ran = null; // the request body that produced it
  let sort = null; // {col, dir: 1 | -1}
  let chartOn = load(CHART_STORAGE) !== '0';

  editor.value = load(SQL_STORAGE) ?? EXAMPLES[0][1];
  editor.addEventListener('input', () => store(SQL_STORAGE, editor.value));
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  });
  runBtn.addEventListener('click', run);
  csvBtn.addEventListener('click', downloadCSV);
  chartBtn.addEventListener('click', () => {
    chartOn = !chartOn;
    store(CHART_STORAGE, chartOn ? '1' : '0');
    drawChart();
  });
  $('#run-hint').textContent = /Mac|iPhone|iPad/.test(navigator.userAgent) ? '\u2318 Enter to run' : 'Ctrl+Enter to run';

  fill($('#examples'), ...EXAMPLES.map(([name, sql]) => h('button', {
    type: 'button',
    class: 'chip',
    title: sql,
    onclick: () => {
      editor.value = sql;
      store(SQL_STORAGE, sql);
      run();
    },
  }, name)));

  function showError(err) {
    const e = err instanceof ApiError ? err : new ApiError(0, 'Error', String(err?.message ?? err));
    fill(errBox,
      h('div', { class: 'err-title' }, h('strong', { text: e.title }), e.status ? h('span', { class: 'err-status', text: `HTTP ${e.status}` }) : null),
      e.detail ? h('pre', { class: 'err-detail', text: e.detail }) : null,
      e.status === 401 ? h('p', { class: 'err-hint', text: 'Enter the API key in the bar at the top of the page, then run the query again.' }) : null);
    errBox.dataset.status = String(e.status);
    errBox.hidden = false;
  }

  async function run() {
    if (runBtn.disabled) return; // one query at a time from this page
    const sql = editor.value.trim();
    if (!sql) {
      showError(new ApiError(0, 'Nothing to run', 'Type a query, or pick one of the examples.'));
      return;
    }
    runBtn.disabled = true;
    runBtn.classList.add('busy');
    errBox.hidden = true;
    fill(meta, h('span', { class: 'muted', text: 'Running\u2026' }));
    const body = { sql, limit: LIMIT };
    try {
      const { data } = await call('query', { method: 'POST', json: body, timeout: 120e3 });
      result = { columns: data.columns ?? [], rows: data.rows ?? [], row_count: data.row_count, truncated: !!data.truncated, elapsed_ms: data.elapsed_ms };
      ran = body;
      sort = null;
      render();
    } catch (err) {
      result = null;
      ran = null;
      fill(results, h('p', { class: 'empty', text: 'No results.' }));
      fill(meta);
      fill(chartBox);
      chartBox.hidden = true;
      chartBtn.disabled = true;
      csvBtn.disabled = true;
      showError(err);
    } finally {
      runBtn.disabled = false;
      runBtn.classList.remove('busy');
    }
  }

  function render() {
    const { columns, rows, truncated, elapsed_ms: ms } = result;
    const count = result.row_count ?? rows.length;
    fill(meta,
      h('span', { text: `${fmtInt(count)} ${count === 1 ? 'row' : 'rows'}` }),
      h('span', { class: 'muted', text: `${fmtInt(ms ?? NaN)} ms` }),
      truncated ? h('span', { class: 'warn-badge', text: `Truncated to the first ${fmtInt(rows.length)} rows` }) : null);
    meta.dataset.rows = String(count);
    meta.dataset.truncated = truncated ? '1' : '0';
    csvBtn.disabled = false;
    renderTable();
    drawChart();
  }

  function renderTable() {
    const { columns, rows } = result;
    if (!columns.length) {
      fill(results, h('p', { class: 'empty', text: 'The statement returned no columns.' }));
      return;
    }
    const numeric = columns.map((c, i) => isNumericCol(c, rows, i));
    let order = rows;
    if (sort) order = rows.map((r, i) => [r, i]).sort((a, b) => compare(a[0][sort.col], b[0][sort.col]) * sort.dir || a[1] - b[1]).map(([r]) => r);
    const head = h('tr', {}, columns.map((c, i) => {
      const dir = sort?.col === i ? sort.dir : 0;
      return h('th', {
        class: numeric[i] ? 'num' : null,
        'aria-sort': dir === 1 ? 'ascending' : dir === -1 ? 'descending' : 'none',
        scope: 'col',
      }, h('button', {
        type: 'button',
        class: 'sort',
        title: `${c.type ?? ''} \u2014 click to sort`,
        onclick: () => {
          sort = { col: i, dir: sort?.col === i ? -sort.dir : 1 };
          renderTable();
        },
      }, h('span', { text: c.name }), h('span', { class: 'arrow', 'aria-hidden': 'true', text: dir === 1 ? '\u25b2' : dir === -1 ? '\u25bc' : '' })));
    }));
    const body = h('tbody', {}, order.map((r) => h('tr', {}, columns.map((_, i) => {
      const v = show(r[i]);
      // Cells are clipped to one line; long values keep their full text on hover.
      return h('td', { class: numeric[i] ? 'num' : null, title: typeof v === 'string' && v.length > 40 ? v : null }, v);
    }))));
    const table = h('table', { class: 'data' }, h('thead', {}, head), body);
    if (!rows.length) body.append(h('tr', { class: 'placeholder' }, h('td', { colspan: columns.length, text: 'No rows.' })));
    fill(results, table);
  }

  function chartable() {
    if (!result || result.columns.length !== 2 || !result.rows.length) return false;
    return isNumericCol(result.columns[1], result.rows, 1);
  }

  function drawChart() {
    const can = chartable();
    chartBtn.disabled = !can;
    chartBtn.setAttribute('aria-pressed', String(can && chartOn));
    chartBtn.title = can ? '' : 'Charts need exactly two columns: a label or date, then a number';
    chartNote.hidden = true;
    if (!can || !chartOn) {
      fill(chartBox);
      chartBox.hidden = true;
      return;
    }
    chartBox.hidden = false;
    const [c0, c1] = result.columns;
    const rows = result.rows.filter((r) => isNum(r[1]));
    const times = rows.map((r) => toTime(r[0]));
    if (TEMPORAL.test(c0.type ?? '') || (times.length && times.every((t) => t != null))) {
      const points = rows.map((r, i) => ({ x: times[i], y: r[1], label: String(r[0]) })).filter((p) => p.x != null).sort((a, b) => a.x - b.x);
      const utc = times.length > 0 && rows.every((r) => typeof r[0] === 'string' && r[0].length === 10);
      lineChart(chartBox, points, {
        height: 260,
        utc,
        label: `${c1.name} by ${c0.name}`,
        tip: (p) => `${p.label} \u00b7 ${fmtNum(p.y)}`,
      });
      return;
    }
    const items = rows.slice(0, MAX_BARS).map((r) => ({ label: r[0] == null ? 'NULL' : String(typeof r[0] === 'object' ? JSON.stringify(r[0]) : r[0]), value: r[1] }));
    barChart(chartBox, items, { valueFormat: fmtNum, label: `${c1.name} by ${c0.name}` });
    chartNote.textContent = `The chart shows the first ${MAX_BARS} of ${fmtInt(rows.length)} rows.`;
    chartNote.hidden = rows.length <= MAX_BARS;
  }

  async function downloadCSV() {
    if (!ran) return;
    csvBtn.disabled = true;
    try {
      const { data } = await call('query', { method: 'POST', json: ran, accept: 'text/csv', as: 'blob', timeout: 300e3 });
      const url = URL.createObjectURL(data);
      const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
      const a = h('a', { href: url, download: `pinpipe-query-${stamp}.csv`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10e3);
    } catch (err) {
      showError(err);
    } finally {
      csvBtn.disabled = !ran;
    }
  }

  return { run };
}
