// Every call to the pinpipe API goes through here: it adds the API key, bounds
// the wait, and turns RFC 9457 problem responses into ApiError.

const KEY_STORAGE = 'pinpipe.apiKey';
const TIMEOUT_MS = 15000;

// auth fires "unauthorized" on any 401 and "change" when the key is set.
export const auth = new EventTarget();

export function getKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || '';
  } catch {
    return ''; // storage disabled: work without a saved key
  }
}

export function setKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key);
    else localStorage.removeItem(KEY_STORAGE);
  } catch {
    // storage disabled: nothing to keep
  }
  auth.dispatchEvent(new Event('change'));
}

export class ApiError extends Error {
  constructor(status, title, detail = '', problem = null) {
    super(detail ? `${title}: ${detail}` : title);
    this.name = 'ApiError';
    this.status = status; // 0 when the server was not reached
    this.title = title;
    this.detail = detail;
    this.problem = problem;
  }
}

// call fetches a path relative to the page and reads the body as "json",
// "blob" or "text". Statuses in `allow` are returned like successes (readyz
// answers 503 with a useful body). signal, when given, cancels the request
// (ApiError with status 0 and title "Cancelled"). Throws ApiError otherwise.
export async function call(path, { method = 'GET', json, accept = 'application/json', as = 'json', allow = [], timeout = TIMEOUT_MS, signal } = {}) {
  const headers = { Accept: accept };
  const key = getKey();
  if (key) headers.Authorization = `Bearer ${key}`;
  let body;
  if (json !== undefined) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(json);
  }
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeout);
  const cancel = () => ctrl.abort();
  signal?.addEventListener('abort', cancel);
  try {
    const res = await fetch(path, { method, headers, body, signal: ctrl.signal, cache: 'no-store' });
    if (res.status === 401) auth.dispatchEvent(new Event('unauthorized'));
    if (!res.ok && !allow.includes(res.status)) throw await problem(res);
    const data = as === 'blob' ? await res.blob() : as === 'text' ? await res.text() : await res.json();
    return { status: res.status, data };
  } catch (err) {
    if (err instanceof ApiError) throw err;
    if (signal?.aborted) throw new ApiError(0, 'Cancelled', 'The query was cancelled; the server stopped it.');
    if (ctrl.signal.aborted) throw new ApiError(0, 'Timed out', `No answer from the server within ${timeout / 1000} s.`);
    if (err instanceof SyntaxError) throw new ApiError(0, 'Bad response', 'The server sent something that is not valid JSON.');
    throw new ApiError(0, 'Server unreachable', 'Could not reach the pinpipe server. Is it running?');
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener('abort', cancel);
  }
}

export const getJSON = async (path, opts) => (await call(path, opts)).data;
export const postJSON = async (path, json, opts) => (await call(path, { ...opts, method: 'POST', json })).data;

async function problem(res) {
  let title = res.statusText || `HTTP ${res.status}`;
  let detail = '';
  let body = null;
  try {
    if ((res.headers.get('Content-Type') || '').includes('json')) {
      body = await res.json();
      title = body.title || title;
      detail = typeof body.detail === 'string' ? body.detail : '';
    } else {
      detail = (await res.text()).trim().slice(0, 500);
    }
  } catch {
    // keep the status line: the body was unreadable
  }
  return new ApiError(res.status, title, detail, body);
}
