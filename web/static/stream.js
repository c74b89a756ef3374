// The real-time view: status cards, the live charts (GET /stream/stats) and
// the newest pins (GET /stream/recent).

import { getJSON } from './api.js';
import { barChart, lineChart } from './charts.js';
import { $, fill, DASH, fmtInt, fmtRate, fmtSeconds, fmtTime, h, isNum, parseTime } from './format.js';

const MINUTE = 60e3;
const RATE_WINDOW_MS = 30e3;
// The server cuts each text of the newest pins to this many characters
// (a pin's fields may be tens of KiB each, and the list is polled every
// few seconds); the whole pin is at GET /pins/{unique_id} after its day's
// batch run.
const MAX_CHARS = 200;

// Every field of a cleaned pin, in the documented column order.
const PIN_FIELDS = ['id_index', 'title', 'category', 'unique_id', 'description', 'poster_name',
  'follower_count', 'tag_list', 'tags', 'is_image_or_video', 'image_src', 'downloaded', 'save_location',
  'ingested_at', 'kafka_partition', 'kafka_offset'];

function setStat(id, value, text) {
  const el = $(id);
  el.textContent = text;
  el.dataset.value = isNum(value) ? String(value) : '';
}

export function createStream() {
  const samples = []; // {t, total} from recent polls, to measure the ingest rate
  let rows = new Map(); // unique_id → <tr> of the pins shown

  function ingestRate(stats) {
    const now = performance.now();
    if (isNum(stats.total)) {
      const last = samples.at(-1);
      // A counter reset or a long pause (hidden tab) makes old samples meaningless.
      if (last && (stats.total < last.total || now - last.t > RATE_WINDOW_MS)) samples.length = 0;
      samples.push({ t: now, total: stats.total });
      while (samples.length > 2 && now - samples[1].t >= RATE_WINDOW_MS) samples.shift();
      const first = samples[0];
      if (now - first.t >= 5e3) {
        return { rate: ((stats.total - first.total) * 1000) / (now - first.t), basis: `over the last ${Math.round((now - first.t) / 1000)} s` };
      }
    }
    // Too few polls yet: the last complete minute and the current one so far
    // (the last full minute alone reads 0 right after a burst).
    const wall = Date.now();
    const cur = Math.floor(wall / MINUTE) * MINUTE;
    const pinsIn = (t) => (stats.per_minute ?? []).reduce((a, r) => a + (parseTime(r.minute)?.getTime() === t ? r.pins ?? 0 : 0), 0);
    const span = MINUTE + (wall - cur);
    return { rate: ((pinsIn(cur - MINUTE) + pinsIn(cur)) * 1000) / span, basis: `over the last ${Math.round(span / 1000)} s` };
  }

  function renderCards(stats) {
    const { rate, basis } = ingestRate(stats);
    setStat('#stat-rate', rate, fmtRate(rate));
    $('#stat-rate-sub').textContent = basis;

    setStat('#stat-total', stats.total, fmtInt(stats.total));

    const f = stats.freshness_seconds ?? {};
    const fresh = $('#stat-freshness');
    fresh.dataset.p50 = isNum(f.p50) ? String(f.p50) : '';
    fresh.dataset.p99 = isNum(f.p99) ? String(f.p99) : '';
    $('#fresh-p50').textContent = fmtSeconds(f.p50);
    $('#fresh-p99').textContent = fmtSeconds(f.p99);

    setStat('#stat-lag', stats.lag, fmtInt(stats.lag));
    const lagCard = $('#stat-lag').closest('.stat');
    lagCard.dataset.tone = !isNum(stats.lag) ? '' : stats.lag === 0 ? 'ok' : stats.lag > 10000 ? 'warn' : '';
    $('#stat-lag-sub').textContent = !isNum(stats.lag) ? DASH : stats.lag === 0 ? 'caught up' : 'behind the topic';
  }

  function renderMinutes(perMinute) {
    const counts = new Map();
    let newest = 0;
    for (const r of perMinute) {
      const t = parseTime(r.minute)?.getTime();
      if (t == null) continue;
      counts.set(t, (counts.get(t) ?? 0) + (r.pins ?? 0));
      newest = Math.max(newest, t);
    }
    // The last hour by the viewer's clock; minutes without pins count zero.
    const end = Math.max(Math.floor(Date.now() / MINUTE) * MINUTE, newest);
    const points = [];
    for (let t = end - 59 * MINUTE; t <= end; t += MINUTE) points.push({ x: t, y: counts.get(t) ?? 0 });
    const sum = points.reduce((a, p) => a + p.y, 0);
    const peak = Math.max(...points.map((p) => p.y));
    $('#minute-summary').textContent = `${fmtInt(sum)} pins \u00b7 peak ${fmtInt(peak)}/min`;
    lineChart($('#minute-chart'), points, {
      partialLast: true, // the current minute is still filling up
      zeroText: 'No pins in the last hour',
      label: `Pins per minute over the last hour: ${sum} in total`,
      tip: (p) => `${fmtTime(new Date(p.x))} \u00b7 ${fmtInt(p.y)} pins`,
    });
  }

  function renderCategories(byCategory) {
    const items = Object.entries(byCategory ?? {})
      .map(([label, value]) => ({ label, value: Number(value) || 0 }))
      .sort((a, b) => b.value - a.value || a.label.localeCompare(b.label));
    $('#category-summary').textContent = `${items.length} ${items.length === 1 ? 'category' : 'categories'}`;
    barChart($('#category-chart'), items, {
      fit: true,
      label: 'Pins per category',
      emptyText: 'No pins yet',
    });
  }

  async function pollStats() {
    let stats;
    try {
      stats = await getJSON('stream/stats');
    } catch (err) {
      // Before the first answer the charts say why they are empty.
      for (const el of document.querySelectorAll('.chart-placeholder')) {
        el.textContent = err.status === 401 ? 'Needs an API key' : `Could not load: ${err.title ?? err}`;
      }
      throw err;
    }
    renderCards(stats);
    renderMinutes(stats.per_minute ?? []);
    renderCategories(stats.by_category);
  }

  async function pollRecent() {
    const pins = await getJSON(`stream/recent?n=20&max_chars=${MAX_CHARS}`);
    const list = Array.isArray(pins) ? pins : [];
    const body = $('#recent-pins tbody');
    if (!list.length) {
      rows.clear();
      fill(body, h('tr', { class: 'placeholder' }, h('td', { colspan: 9, text: 'No pins yet. POST some to /pins, or run "pinpipe emulate".' })));
    } else {
      reconcile(body, list);
    }
    $('#recent-summary').textContent = `newest ${list.length} \u00b7 ${fmtTime(new Date())}`;
  }

  // reconcile updates the table in place, keyed by unique_id: rows already
  // shown stay the same elements, so a click or hover is not lost to a poll.
  function reconcile(body, list) {
    const next = new Map();
    list.forEach((p, i) => {
      const key = p.unique_id ?? `#${i}`;
      const tr = rows.get(key) ?? pinRow(p, rows.size > 0);
      next.set(key, tr);
      const at = body.children[i];
      if (at !== tr) body.insertBefore(tr, at ?? null);
    });
    while (body.children.length > list.length) body.lastElementChild.remove();
    rows = next;
  }

  return { pollStats, pollRecent };
}

const cell = (v, props = {}) => h('td', props, v == null || v === '' ? h('span', { class: 'null', text: DASH }) : v);

function tagChips(tags, max) {
  if (!Array.isArray(tags) || !tags.length) return null;
  const chips = tags.slice(0, max).map((t) => h('span', { class: 'tag', text: t }));
  if (tags.length > max) chips.push(h('span', { class: 'more', text: `+${tags.length - max}` }));
  return h('span', { class: 'tags' }, chips);
}

function pinRow(p, fresh) {
  const uid = p.unique_id ?? '';
  const tr = h('tr', {
    class: fresh ? 'fresh' : null,
    tabindex: '0',
    title: 'Show every field',
    dataset: { uid },
    onclick: () => showPin(p),
    onkeydown: (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); showPin(p); } },
  },
  cell(p.ingested_at != null ? h('time', { datetime: p.ingested_at, text: fmtTime(p.ingested_at) }) : null, { class: 'nowrap' }),
  cell(p.category != null ? h('span', { class: 'cat', text: p.category }) : null),
  cell(clip(p.title), { class: 'clip title', title: clip(p.title) }),
  cell(clip(p.poster_name), { class: 'clip poster' }),
  cell(isNum(p.follower_count) ? fmtInt(p.follower_count) : null, { class: 'num' }),
  cell(tagChips(p.tags, 2), { class: 'nowrap' }),
  cell(p.is_image_or_video, { class: 'clip media' }),
  cell(p.kafka_partition != null ? `${p.kafka_partition} / ${p.kafka_offset ?? DASH}` : null, { class: 'num mono' }),
  cell(uid ? h('code', { title: uid, text: uid.slice(0, 8) }) : null));
  return tr;
}

// clip cuts a text to MAX_CHARS, in case a server sends more than asked.
function clip(v) {
  if (typeof v !== 'string' || v.length <= MAX_CHARS) return v ?? null;
  return `${v.slice(0, MAX_CHARS)}\u2026`;
}

function fieldValue(key, v) {
  if (v == null || v === '') return h('span', { class: 'null', text: DASH });
  if (key === 'tags') return tagChips(v, Infinity) ?? h('span', { class: 'null', text: DASH });
  if (key === 'image_src' && /^https?:\/\//.test(v)) return h('a', { href: v, target: '_blank', rel: 'noopener noreferrer', text: v });
  if (key === 'ingested_at') return `${v} (${fmtTime(v)} local)`;
  if (key === 'follower_count' && isNum(v)) return fmtInt(v);
  return clip(typeof v === 'object' ? JSON.stringify(v) : String(v));
}

function showPin(p) {
  const dialog = $('#pin-dialog');
  $('#pin-dialog-title').textContent = clip(p.title) ?? `Pin ${p.id_index ?? ''}`;
  const keys = [...PIN_FIELDS, ...Object.keys(p).filter((k) => !PIN_FIELDS.includes(k))];
  fill($('#pin-fields'), ...keys.flatMap((k) => [h('dt', { text: k }), h('dd', {}, fieldValue(k, p[k]))]));
  if (!dialog.open) dialog.showModal();
}
