// The SQL editor's memory, in this browser only (localStorage): the last
// queries run, queries saved under a name, and the query in the page's URL
// (#sql=…) so a link shares it.

const HISTORY_STORAGE = 'pinpipe.history';
const SAVED_STORAGE = 'pinpipe.saved';
export const HISTORY_MAX = 50;

function read(key) {
  try {
    const v = JSON.parse(localStorage.getItem(key) ?? '[]');
    return Array.isArray(v) ? v : [];
  } catch {
    return []; // storage disabled or not ours: start empty
  }
}

function write(key, list) {
  try {
    localStorage.setItem(key, JSON.stringify(list));
  } catch {
    // storage disabled or full: the editor just forgets
  }
}

// history returns the queries run, newest first: [{sql, at}].
export const history = () => read(HISTORY_STORAGE).filter((e) => typeof e?.sql === 'string');

// remember puts sql first in the history (once), keeping HISTORY_MAX.
export function remember(sql) {
  const list = history().filter((e) => e.sql !== sql);
  list.unshift({ sql, at: new Date().toISOString() });
  write(HISTORY_STORAGE, list.slice(0, HISTORY_MAX));
}

// saved returns the saved queries, by name: [{name, sql}].
export const saved = () => read(SAVED_STORAGE).filter((e) => typeof e?.name === 'string' && typeof e?.sql === 'string')
  .sort((a, b) => a.name.localeCompare(b.name));

// save keeps sql under name, replacing a query of that name.
export function save(name, sql) {
  write(SAVED_STORAGE, [...saved().filter((e) => e.name !== name), { name, sql }]);
}

export function unsave(name) {
  write(SAVED_STORAGE, saved().filter((e) => e.name !== name));
}

// sqlFromURL returns the query of the page's URL (#sql=…), or null.
export function sqlFromURL() {
  const m = /^#sql=(.*)$/s.exec(location.hash);
  if (!m) return null;
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return null;
  }
}

// putInURL puts sql in the page's URL without adding a history entry.
export function putInURL(sql) {
  window.history.replaceState(null, '', `#sql=${encodeURIComponent(sql)}`);
}
