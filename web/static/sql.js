// The SQL workbench: POST /query a page at a time, a sortable result table,
// an optional chart of two-column results, the whole answer as a file
// (/query/export), the views' columns (/query/schema), and the history,
// saved queries and URL of history.js.

import { ApiError, call, getJSON, getKey } from './api.js';
import { barChart, lineChart } from './charts.js';
import { $, fill, fmtId, fmtInt, fmtNum, fmtTime, h, isIdName, isNum } from './format.js';
import { history, putInURL, remember, save, saved, sqlFromURL, unsave } from './history.js';

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

function show(v, id) {
  if (v == null) return h('span', { class: 'null', text: 'NULL' });
  if (isNum(v)) return id ? fmtId(v) : fmtNum(v);
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
  const cancelBtn = $('#cancel-query');
  const prevBtn = $('#page-prev');
  const nextBtn = $('#page-next');
  const downloads = [...document.querySelectorAll('[data-export]')];
  const chartBtn = $('#chart-toggle');
  const results = $('#results');
  const meta = $('#result-meta');
  const errBox = $('#query-error');
  const chartBox = $('#result-chart');
  const chartNote = $('#chart-note');

  let result = null; // the last successful response
  let ran = null; // the request body that produced it
  let running = null; // the AbortController of the query running
  let sort = null; // {col, dir: 1 | -1}
  let chartOn = load(CHART_STORAGE) !== '0';

  const fromURL = sqlFromURL();
  editor.value = fromURL ?? load(SQL_STORAGE) ?? EXAMPLES[0][1];
  editor.addEventListener('input', () => store(SQL_STORAGE, editor.value));
  editor.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  });
  runBtn.addEventListener('click', () => run());
  cancelBtn.addEventListener('click', () => running?.abort());
  prevBtn.addEventListener('click', () => ran && run(Math.max(0, ran.offset - LIMIT), ran.sql));
  nextBtn.addEventListener('click', () => ran && run(ran.offset + LIMIT, ran.sql));
  for (const b of downloads) b.addEventListener('click', () => download(b.dataset.export));
  $('#save-query').addEventListener('submit', (e) => {
    e.preventDefault();
    const name = $('#save-name').value.trim();
    if (!name || !editor.value.trim()) return;
    save(name, editor.value.trim());
    $('#save-name').value = '';
    renderMemory();
  });
  window.addEventListener('hashchange', () => {
    const q = sqlFromURL();
    if (q != null && q !== editor.value) {
      editor.value = q;
      run();
    }
  });
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

  // insert puts text at the editor's cursor.
  function insert(text) {
    const { selectionStart: a, selectionEnd: b, value } = editor;
    editor.value = value.slice(0, a) + text + value.slice(b);
    editor.focus();
    editor.selectionStart = editor.selectionEnd = a + text.length;
    store(SQL_STORAGE, editor.value);
  }

  async function loadSchema() {
    const box = $('#schema-views');
    try {
      const data = await getJSON('query/schema', { timeout: 60e3 });
      const views = Array.isArray(data?.views) ? data.views : [];
      fill(box, ...views.map((v, i) => h('details', { class: 'schema-view', open: i === 0 ? true : null, dataset: { view: v.name } },
        h('summary', { title: v.description ?? '' }, h('button', { type: 'button', class: 'schema-name mono', title: `Insert ${v.name}`, onclick: (e) => { e.preventDefault(); insert(v.name); } }, v.name),
          h('span', { class: 'muted', text: ` ${(v.columns ?? []).length} columns` })),
        h('ul', { class: 'schema-cols' }, (v.columns ?? []).map((c) => h('li', { dataset: { column: c.name } },
          h('button', { type: 'button', class: 'schema-col mono', title: `Insert ${c.name}`, onclick: () => insert(/^[a-z_][a-z0-9_]*$/.test(c.name) ? c.name : `"${c.name.replaceAll('"', '""')}"`) }, c.name),
          h('span', { class: 'schema-type', text: c.type })))))));
    } catch (err) {
      fill(box, h('p', { class: 'muted', text: err instanceof ApiError && err.status === 401 ? 'Needs the API key.' : 'The views could not be read.' }));
    }
  }

  // renderMemory lists the history and the saved queries.
  function renderMemory() {
    const item = (sql, label, extra) => h('li', {},
      h('button', { type: 'button', class: 'memory-item', title: sql, dataset: { sql }, onclick: () => { editor.value = sql; store(SQL_STORAGE, sql); editor.focus(); } },
        label ? h('strong', { text: label }) : null, h('code', { text: sql.replace(/\s+/g, ' ').slice(0, 120) })), extra);
    const past = history();
    fill($('#history-list'), past.length ? past.map((e) => item(e.sql, null, h('time', { class: 'muted', datetime: e.at, text: fmtTime(e.at) })))
      : h('li', { class: 'muted', text: 'Queries you run show here.' }));
    const mine = saved();
    fill($('#saved-list'), mine.length ? mine.map((e) => item(e.sql, e.name,
      h('button', { type: 'button', class: 'btn ghost small', title: `Forget ${e.name}`, 'aria-label': `Forget ${e.name}`, onclick: () => { unsave(e.name); renderMemory(); } }, '\u2715')))
      : h('li', { class: 'muted', text: 'Name a query and save it to keep it here.' }));
    $('#history-count').textContent = String(past.length);
  }

  async function run(offset = 0, text = null) {
    if (running) return; // one query at a time from this page
    const sql = (text ?? editor.value).trim();
    if (!sql) {
      showError(new ApiError(0, 'Nothing to run', 'Type a query, or pick one of the examples.'));
      return;
    }
    running = new AbortController();
    runBtn.disabled = true;
    runBtn.classList.add('busy');
    cancelBtn.hidden = false;
    errBox.hidden = true;
    results.classList.remove('stale');
    fill(meta, h('span', { class: 'muted', text: 'Running\u2026' }));
    const body = { sql, limit: LIMIT, offset };
    if (offset === 0) {
      remember(sql);
      putInURL(sql);
      renderMemory();
    }
    try {
      const { data } = await call('query', { method: 'POST', json: body, timeout: 120e3, signal: running.signal });
      result = { columns: data.columns ?? [], rows: data.rows ?? [], row_count: data.row_count, truncated: !!data.truncated, offset: data.offset ?? offset, elapsed_ms: data.elapsed_ms };
      ran = body;
      sort = null;
      render();
    } catch (err) {
      // The last good result stays, marked as such, under the error.
      showError(err);
      if (result) {
        results.classList.add('stale');
        fill(meta, h('span', { class: 'warn-badge', text: 'Showing the previous result' }), h('span', { class: 'muted', text: `${fmtInt(result.row_count ?? result.rows.length)} rows` }));
      } else {
        fill(meta);
      }
    } finally {
      running = null;
      runBtn.disabled = false;
      runBtn.classList.remove('busy');
      cancelBtn.hidden = true;
    }
  }

  function render() {
    const { rows, truncated, offset, elapsed_ms: ms } = result;
    const count = result.row_count ?? rows.length;
    const paged = truncated || offset > 0;
    fill(meta,
      h('span', { text: paged ? `rows ${fmtInt(count ? offset + 1 : offset)}\u2013${fmtInt(offset + count)}${truncated ? ', more follow' : ` of ${fmtInt(offset + count)}`}` : `${fmtInt(count)} ${count === 1 ? 'row' : 'rows'}` }),
      h('span', { class: 'muted', text: `${fmtInt(ms ?? NaN)} ms` }));
    meta.dataset.rows = String(count);
    meta.dataset.offset = String(offset);
    meta.dataset.truncated = truncated ? '1' : '0';
    prevBtn.disabled = offset === 0;
    nextBtn.disabled = !truncated;
    $('#pager').hidden = !paged;
    for (const b of downloads) b.disabled = false;
    if (isPlan()) {
      // EXPLAIN answers its plan as text: show it as DuckDB draws it.
      fill(results, ...rows.map((r) => h('pre', { class: 'plan', text: r.map((v) => (v == null ? '' : String(v))).join('\n') })));
      chartBtn.disabled = true;
      fill(chartBox);
      chartBox.hidden = true;
      return;
    }
    renderTable();
    drawChart();
  }

  const isPlan = () => result.columns.length === 2 && result.columns[0].name === 'explain_key' && result.columns[1].name === 'explain_value';

  function renderTable() {
    const { columns, rows } = result;
    if (!columns.length) {
      fill(results, h('p', { class: 'empty', text: 'The statement returned no columns.' }));
      return;
    }
    const numeric = columns.map((c, i) => isNumericCol(c, rows, i));
    const ids = columns.map((c) => isIdName(c.name));
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
      const v = show(r[i], ids[i]);
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
    const days = rows.every((r) => typeof r[0] === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(r[0]));
    if (days || (rows.length < 3 && times.every((t) => t != null))) {
      // Days (and a point or two in time) are bars labelled with their ISO
      // date or time, in time order: one day is one bar, not a dot at 00:00.
      const items = rows.map((r, i) => ({ label: String(r[0]), value: r[1], t: times[i] ?? 0 }))
        .sort((a, b) => a.t - b.t).slice(-MAX_BARS);
      barChart(chartBox, items, { valueFormat: fmtNum, label: `${c1.name} by ${c0.name}` });
      chartNote.textContent = `The chart shows the last ${MAX_BARS} of ${fmtInt(rows.length)} days.`;
      chartNote.hidden = rows.length <= MAX_BARS;
      return;
    }
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

  // download saves the whole answer of the query last run (not just the
  // page shown) as a file from /query/export. Without an API key the browser
  // follows a link and streams the file to disk; with one, the key must go
  // in a header, so the page fetches the file first.
  async function download(format) {
    if (!ran) return;
    const url = `query/export?format=${encodeURIComponent(format)}&sql=${encodeURIComponent(ran.sql)}`;
    if (!getKey()) {
      const a = h('a', { href: url, download: '', hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      return;
    }
    for (const b of downloads) b.disabled = true;
    try {
      const { data } = await call(url, { accept: '*/*', as: 'blob', timeout: 600e3 });
      const href = URL.createObjectURL(data);
      const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
      const a = h('a', { href, download: `pinpipe-${stamp}.${format}`, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(href), 10e3);
    } catch (err) {
      showError(err);
    } finally {
      for (const b of downloads) b.disabled = !ran;
    }
  }

  renderMemory();
  loadSchema();
  if (fromURL) run();

  return { run };
}
