// The batch lane's days (GET /batch/days): for each recent day with raw
// data, whether the landing stored all of it, whether late records made it
// stale, and its newest run with why it ran.

import { getJSON } from './api.js';
import { $, fill, DASH, fmtDuration, fmtInt, h } from './format.js';

// Why a run happened, in a few words.
const WHY = {
  schedule: 'the daily schedule',
  api: 'started on demand (API)',
  cli: 'started on demand (pinpipe batch)',
  'late-data': 'late records reached the day',
  completed: 'the day became complete after its scheduled run gave up',
};

function completeness(d) {
  if (d.completeness_error) return h('span', { class: 'badge failed', title: d.completeness_error, dataset: { state: 'unknown' } }, 'unknown');
  if (d.complete) return h('span', { class: 'badge succeeded', dataset: { state: 'complete' } }, 'complete');
  if (!d.over) return h('span', { class: 'badge', dataset: { state: 'open' } }, 'not over');
  return h('span', { class: 'badge queued', dataset: { state: 'incomplete' } }, d.waiting ? 'waiting' : 'incomplete');
}

// behind names the partitions that hold a day back: "p1: 42 rec, 35m".
function behind(d) {
  const parts = (d.behind ?? []).map((b) => `p${b.partition}: ${b.records > 0 ? `${fmtInt(b.records)} rec, ` : ''}${fmtDuration((b.behind_seconds ?? 0) * 1000)}`);
  return parts.length ? parts.join(' \u00b7 ') : '';
}

function state(d) {
  if (d.expired) return h('span', { class: 'badge', title: 'PINPIPE_RAW_RETENTION removed its raw records; the curated day stays', dataset: { state: 'expired' } }, 'expired');
  if (d.stale) return h('span', { class: 'badge queued', title: 'records landed after its newest committed run; the late-data check runs it again', dataset: { state: 'stale' } }, 'stale');
  if (d.committed_run) return h('span', { class: 'badge succeeded', dataset: { state: 'curated' } }, 'curated');
  return h('span', { class: 'badge', dataset: { state: 'raw' } }, 'not curated');
}

export function createDays() {
  async function poll() {
    const days = await getJSON('batch/days?n=14');
    const list = Array.isArray(days) ? days : [];
    const body = $('#batch-days tbody');
    $('#days-summary').textContent = `${list.filter((d) => d.stale).length} stale \u00b7 ${list.filter((d) => d.over && !d.complete).length} incomplete`;
    if (!list.length) {
      fill(body, h('tr', { class: 'placeholder' }, h('td', { colspan: 7, text: 'No days with raw data yet.' })));
      return;
    }
    fill(body, ...list.map((d) => {
      const run = d.run;
      return h('tr', { dataset: { day: d.day, stale: d.stale ? '1' : '0', complete: d.complete ? '1' : '0', trigger: run?.trigger ?? '', status: run?.status ?? '' } },
        h('td', { class: 'nowrap mono', text: d.day }),
        h('td', {}, completeness(d)),
        h('td', { class: 'muted clip', title: behind(d) || null, text: behind(d) || DASH }),
        h('td', {}, state(d)),
        h('td', {}, run ? h('span', { class: `badge ${run.status}`, dataset: { status: run.status } }, run.status) : h('span', { class: 'null', text: DASH })),
        h('td', { class: 'muted', title: run ? WHY[run.trigger] ?? run.trigger : null, text: run?.trigger ?? DASH }),
        h('td', { class: 'num', text: run?.rows_out != null ? fmtInt(run.rows_out) : DASH }),
      );
    }));
  }
  return { poll };
}
