// The batch lane: the run history (GET /batch/runs), the "last batch run"
// card, and the form that starts a run (POST /batch/runs).

import { ApiError, getJSON, postJSON } from './api.js';
import { $, fill, DASH, fmtDuration, fmtInt, fmtTime, h, parseTime, utcDate } from './format.js';

const ACTIVE = new Set(['queued', 'running']);
const MAX_ROWS = 50;

function badge(status) {
  const st = status ?? 'unknown';
  return h('span', { class: `badge ${st}`, dataset: { status: st } }, ACTIVE.has(st) ? h('span', { class: 'spin' }) : null, st);
}

function duration(run) {
  const start = parseTime(run.started_at);
  if (!start || run.status === 'queued') return null;
  const end = parseTime(run.finished_at) ?? (ACTIVE.has(run.status) ? new Date() : null);
  return end ? end - start : null;
}

// shortID keeps the end of a long run id: ids start with the run's time,
// which the Started column shows, and end with what tells runs apart.
const shortID = (id) => (id.length > 10 ? `\u2026${id.slice(-6)}` : id);

const num = (v) => (v == null ? h('span', { class: 'null', text: DASH }) : fmtInt(v));

// createBatch wires the form; refresh asks the app to poll the runs now.
export function createBatch({ refresh }) {
  let runs = [];
  let highlight = null; // the id of the run this page just started
  const form = $('#batch-form');
  const date = $('#batch-date');
  const button = $('#run-batch');
  const message = $('#batch-message');

  // Until the server says which day has raw data, yesterday; then the
  // newest day with raw data, unless the user picked one.
  const initial = utcDate(1);
  date.value = initial;
  let picked = false;
  date.addEventListener('input', () => { picked = true; });
  getJSON('batch/days?n=1').then((days) => {
    const day = Array.isArray(days) ? days[0]?.day : null;
    if (day && !picked && date.value === initial) {
      date.value = day;
      date.dataset.source = 'raw';
    }
  }).catch(() => {});

  function say(text, tone) {
    fill(message, ...text);
    message.dataset.tone = tone;
  }

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!/^\d{4}-\d{2}-\d{2}$/.test(date.value) || Number.isNaN(Date.parse(`${date.value}T00:00:00Z`))) {
      say(['Give the day as YYYY-MM-DD, such as ', h('code', { text: utcDate(1) }), '.'], 'bad');
      return;
    }
    button.disabled = true;
    say(['Starting\u2026'], '');
    try {
      const res = await postJSON('batch/runs', { date: date.value });
      highlight = res?.id ?? null;
      say([`Run ${res?.id ?? ''} queued for ${date.value}.`], 'ok');
      refresh();
    } catch (err) {
      const e2 = err instanceof ApiError ? err : new ApiError(0, 'Error', String(err));
      // 409: a run for that date is already going; the detail says which.
      say([h('strong', { text: e2.title }), e2.detail ? ` \u2014 ${e2.detail}` : ''], e2.status === 409 ? 'warn' : 'bad');
    } finally {
      button.disabled = false;
    }
  });

  function renderCard() {
    const card = $('#stat-batch');
    const run = runs[0];
    if (!run) {
      fill(card, h('p', { class: 'stat-value small', text: 'No runs yet' }),
        h('p', { class: 'stat-sub', text: 'the daily job runs on schedule, or start one below' }));
      return;
    }
    const d = duration(run);
    fill(card,
      h('p', { class: 'stat-value small' }, badge(run.status), h('span', { class: 'run-date', text: run.date ?? DASH })),
      h('p', { class: 'stat-sub' }, ACTIVE.has(run.status)
        ? `${run.status === 'queued' ? 'waiting to start' : `started ${fmtTime(run.started_at)}`}${d != null ? ` \u00b7 ${fmtDuration(d)} so far` : ''}`
        : `${fmtInt(run.rows_in ?? NaN)} in \u00b7 ${fmtInt(run.rows_out ?? NaN)} out \u00b7 ${fmtInt(run.rows_rejected ?? NaN)} rejected${d != null ? ` \u00b7 ${fmtDuration(d)}` : ''}`),
      run.error ? h('p', { class: 'stat-error', title: run.error, text: run.error }) : null);
    card.dataset.status = run.status ?? '';
  }

  function renderTable() {
    const body = $('#batch-runs tbody');
    if (!runs.length) {
      fill(body, h('tr', { class: 'placeholder' }, h('td', { colspan: 10, text: 'No batch runs yet.' })));
      return;
    }
    fill(body, ...runs.slice(0, MAX_ROWS).map((r) => {
      const id = String(r.id ?? '');
      const d = duration(r);
      // A run that succeeded with nothing in it is almost always the wrong day.
      const empty = r.status === 'succeeded' && !r.rows_in && !r.rows_out;
      const cls = [highlight != null && id === String(highlight) ? 'mine' : null, empty ? 'empty-run' : null].filter(Boolean).join(' ') || null;
      return h('tr', { class: cls, dataset: { id, status: r.status ?? '', empty: empty ? '1' : '0' } },
        h('td', { class: 'mono nowrap' }, h('span', { title: id, text: shortID(id) })),
        h('td', { class: 'nowrap mono', text: r.date ?? DASH }),
        h('td', { class: 'nowrap' }, badge(r.status), empty ? h('span', { class: 'warn-badge', title: 'The run found no raw records for this day', text: '0 rows' }) : null),
        h('td', { class: 'muted', text: r.trigger ?? DASH }),
        h('td', { class: 'nowrap' }, r.started_at ? h('time', { datetime: r.started_at, title: r.started_at, text: fmtTime(r.started_at) }) : num(null)),
        h('td', { class: 'num', text: d != null ? fmtDuration(d) : DASH }),
        h('td', { class: 'num' }, num(r.rows_in)),
        h('td', { class: 'num' }, num(r.rows_out)),
        h('td', { class: 'num' }, num(r.rows_rejected)),
        h('td', { class: 'clip err-text', title: r.error || null }, r.error || ''),
      );
    }));
  }

  async function poll() {
    const data = await getJSON('batch/runs');
    runs = Array.isArray(data) ? data : Array.isArray(data?.runs) ? data.runs : [];
    renderCard();
    renderTable();
    $('#runs-summary').textContent = `${runs.length} ${runs.length === 1 ? 'run' : 'runs'}`;
  }

  return { poll, active: () => runs.some((r) => ACTIVE.has(r.status)) };
}
