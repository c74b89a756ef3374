// Header status pills, one per dependency that GET /readyz reports, and a
// badge with the roles this instance runs (PINPIPE_ROLES).

import { call } from './api.js';
import { $, fill, h } from './format.js';

const ORDER = ['kafka', 's3', 'cassandra', 'postgres'];
const NAMES = { kafka: 'Kafka', s3: 'S3', cassandra: 'Cassandra', postgres: 'Postgres', duckdb: 'DuckDB' };

const nameOf = (key) => NAMES[key] ?? key.charAt(0).toUpperCase() + key.slice(1);

export function createHealth() {
  const box = $('#health');
  const pop = $('#health-popover');
  let checks = {};
  let openKey = null;
  let shown = ''; // the last answer drawn, to leave the pills alone when nothing changed

  function describe(key) {
    const c = checks[key] ?? {};
    return [
      h('div', { class: 'pop-head' },
        h('span', { class: `dot ${c.ok ? 'ok' : 'bad'}` }),
        h('strong', { text: nameOf(key) }),
        h('span', { class: 'pop-state', text: c.ok ? 'ready' : 'not ready' }),
        c.default ? h('span', { class: 'tag', text: c.default }) : null),
      h('p', { class: 'pop-detail', text: c.detail || (c.ok ? 'No problems reported.' : 'No detail given.') }),
    ];
  }

  function open(key, pill) {
    openKey = key;
    fill(pop, ...describe(key));
    pop.hidden = false;
    const r = pill.getBoundingClientRect();
    const left = Math.min(Math.max(8, r.left), window.innerWidth - pop.offsetWidth - 8);
    pop.style.left = `${left + window.scrollX}px`;
    pop.style.top = `${r.bottom + window.scrollY + 6}px`;
    for (const p of box.children) p.setAttribute('aria-expanded', String(p === pill));
  }

  function close() {
    openKey = null;
    pop.hidden = true;
    for (const p of box.children) p.setAttribute('aria-expanded', 'false');
  }

  document.addEventListener('click', (e) => {
    if (openKey && !pop.contains(e.target) && !box.contains(e.target)) close();
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && openKey) close();
  });

  // rolesBadge names the instance's roles, and says when it is shutting down.
  function rolesBadge(status, roles) {
    if (status === 'shutting down') {
      return h('span', { class: 'pill bad roles', title: 'This instance is draining before it stops; reload to reach another.' },
        h('span', { class: 'dot bad' }), 'Shutting down');
    }
    if (!Array.isArray(roles) || roles.length === 0) return null;
    const all = roles.length === 5;
    return h('span', {
      class: 'pill roles',
      dataset: { roles: roles.join(',') },
      title: `This instance runs: ${roles.join(', ')} (PINPIPE_ROLES). A panel whose role it lacks says so.`,
    }, all ? 'All roles' : `Roles: ${roles.join(', ')}`);
  }

  function render(status, data, roles) {
    checks = data ?? {};
    const keys = Object.keys(checks).sort((a, b) => {
      const ia = ORDER.indexOf(a) >>> 0; // unknown keys (-1) sort last
      const ib = ORDER.indexOf(b) >>> 0;
      return ia - ib || a.localeCompare(b);
    });
    fill(box, ...keys.map((key) => {
      const c = checks[key] ?? {};
      const state = c.ok ? 'ok' : 'bad';
      const pill = h('button', {
        type: 'button',
        class: `pill ${state}`,
        dataset: { check: key, ok: c.ok ? '1' : '0' },
        title: `${nameOf(key)}: ${c.ok ? 'ready' : 'not ready'}${c.detail ? ` \u2014 ${c.detail}` : ''}`,
        'aria-expanded': 'false',
        'aria-haspopup': 'dialog',
        onclick: () => (openKey === key ? close() : open(key, pill)),
      }, h('span', { class: `dot ${state}` }), nameOf(key));
      return pill;
    }), rolesBadge(status, roles));
    box.dataset.status = status;
    if (openKey) {
      const pill = [...box.children].find((p) => p.dataset.check === openKey);
      if (pill) open(openKey, pill);
      else close();
    }
  }

  async function poll() {
    try {
      // Degraded readiness is a 503 with the same body: still worth drawing.
      const { data } = await call('readyz', { allow: [503], timeout: 8000 });
      const text = JSON.stringify(data);
      if (text !== shown) render(data?.status ?? 'degraded', data?.checks, data?.roles);
      shown = text;
    } catch (err) {
      checks = {};
      shown = '';
      fill(box, h('span', {
        class: 'pill bad',
        title: err.detail || err.title,
      }, h('span', { class: 'dot bad' }), err.status === 0 ? 'Server unreachable' : `Readiness: ${err.title}`));
      box.dataset.status = 'unknown';
      throw err;
    }
  }

  return { poll };
}
