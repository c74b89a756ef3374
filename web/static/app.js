// Entry point: wires the panels and runs the polling loops, which pause while
// the tab is hidden. <body data-ready="1"> marks the end of the first round.

import { auth, getKey, setKey } from './api.js';
import { createBatch } from './batch.js';
import { createDays } from './days.js';
import { $, fmtTime } from './format.js';
import { createHealth } from './health.js';
import { createSQL } from './sql.js';
import { createStream } from './stream.js';

const health = createHealth();
const stream = createStream();
createSQL();

// A poller runs `fn`, then waits `every()` ms after it settles, so a slow
// endpoint is never asked twice at once. Errors show in `note`.
const pollers = [];
const days = createDays();
const batch = createBatch({
  refresh: () => {
    runNow(pollers.find((p) => p.name === 'runs'));
    runNow(pollers.find((p) => p.name === 'days'));
  },
});
pollers.push(
  { name: 'health', fn: health.poll, every: () => 10e3 },
  { name: 'stats', fn: stream.pollStats, every: () => 3e3, note: '#stats-note' },
  { name: 'recent', fn: stream.pollRecent, every: () => 3e3, note: '#recent-note' },
  {
    name: 'runs',
    fn: async () => {
      const was = batch.active();
      await batch.poll();
      // A run just ended: its day's row changes now, not at the next round.
      if (was && !batch.active()) runNow(pollers.find((p) => p.name === 'days'));
    },
    every: () => (batch.active() ? 2e3 : 8e3),
    note: '#runs-note',
  },
  { name: 'days', fn: days.poll, every: () => (batch.active() ? 4e3 : 20e3), note: '#days-note' },
);

const live = $('#live');
const pending = new Set(pollers.map((p) => p.name));
let offline = false;

async function runNow(p) {
  clearTimeout(p.timer);
  if (p.busy) {
    p.again = true;
    return;
  }
  p.busy = true;
  try {
    await p.fn();
    p.error = null;
  } catch (err) {
    p.error = err;
    if (!err?.title) console.warn(`pinpipe: ${p.name}:`, err); // a bug, not an API answer
  }
  p.busy = false;
  if (p.note) {
    const note = $(p.note);
    note.textContent = p.error ? (p.error.status === 401 ? 'API key needed' : p.error.title ?? 'Error') : '';
    note.title = p.error?.detail ?? '';
    note.hidden = !p.error;
  }
  pending.delete(p.name);
  if (pending.size === 0 && !document.body.dataset.ready) document.body.dataset.ready = '1';
  offline = p.error?.status === 0; // the latest answer says whether the server is there
  updateLive();
  if (p.again) {
    p.again = false;
    runNow(p);
  } else if (!document.hidden) {
    p.timer = setTimeout(() => runNow(p), p.every());
  }
}

function updateLive() {
  const state = document.hidden ? 'paused' : offline ? 'offline' : 'live';
  live.dataset.state = state;
  document.body.dataset.live = state;
  live.lastChild.textContent = state === 'paused' ? 'Paused' : state === 'offline' ? 'Offline' : `Live \u00b7 ${fmtTime(new Date())}`;
}

document.addEventListener('visibilitychange', () => {
  for (const p of pollers) clearTimeout(p.timer);
  if (!document.hidden) for (const p of pollers) runNow(p);
  updateLive();
});

// API key: asked for on the first 401, kept in localStorage.
const keyForm = $('#api-key-form');
const keyInput = $('#api-key');
const keyButton = $('#key-button');

function showKeyForm(rejected) {
  keyForm.hidden = false;
  $('#api-key-msg').textContent = rejected
    ? 'The saved API key was not accepted. Enter a valid one.'
    : 'This pinpipe server needs an API key.';
}

auth.addEventListener('unauthorized', () => {
  if (keyForm.hidden) showKeyForm(!!getKey());
});
keyForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = keyInput.value.trim();
  if (!key) return;
  setKey(key);
  keyInput.value = '';
  keyForm.hidden = true;
  for (const p of pollers) runNow(p);
});
$('#api-key-cancel').addEventListener('click', () => {
  keyForm.hidden = true;
});
keyButton.addEventListener('click', () => {
  if (getKey()) {
    setKey('');
    for (const p of pollers) runNow(p);
  } else {
    showKeyForm(false);
    keyInput.focus();
  }
});
function syncKeyButton() {
  const has = !!getKey();
  keyButton.textContent = has ? 'Forget API key' : 'API key';
  keyButton.title = has ? 'Stop sending the saved API key' : 'Enter an API key';
}
auth.addEventListener('change', syncKeyButton);
syncKeyButton();

for (const p of pollers) runNow(p);
