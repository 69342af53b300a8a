// REST client for /api/v1. Keeps the token in sessionStorage (this tab only). Any 401 from an
// authenticated call clears the session and tells the app (onUnauthorized) so it returns to
// the sign-in screen with a message.
const KEY = 'aoun.session';

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message || code || `HTTP ${status}`);
    this.status = status; this.code = code; this.body = body || {};
  }
}

export const session = {
  load() { try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch { return null; } },
  save(s) { sessionStorage.setItem(KEY, JSON.stringify(s)); },
  clear() { sessionStorage.removeItem(KEY); },
};

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) { onUnauthorized = fn; }
export function token() { return session.load()?.token || null; }

async function request(method, path, body, { auth = true } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const tok = token();
  if (auth && tok) headers.Authorization = `Bearer ${tok}`;
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'network', e.message);
  }
  let data = null;
  const text = await res.text();
  if (text) { try { data = JSON.parse(text); } catch { data = { message: text }; } }
  if (!res.ok) {
    const err = new ApiError(res.status, data?.error, data?.message, data);
    if (res.status === 401 && auth) { session.clear(); onUnauthorized(err); }
    throw err;
  }
  return data;
}

/// The file name of a Content-Disposition header: filename*=UTF-8''… (RFC 5987) first, then
/// filename="…". Path separators are never kept (the browser also sanitises `download`).
export function dispositionName(value, fallback = 'attachment') {
  if (!value) return fallback;
  let name = '';
  const star = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(value);
  if (star) { try { name = decodeURIComponent(star[1].trim()); } catch { name = ''; } }
  if (!name) { const plain = /filename\s*=\s*"([^"]*)"/i.exec(value); if (plain) name = plain[1]; }
  name = name.replace(/[\\/\u0000-\u001f]/g, '_').trim();
  return name || fallback;
}

// A file download from an authenticated endpoint. A plain <a href> cannot carry the Bearer
// token (it is in sessionStorage, not a cookie), so the bytes are fetched with the header and
// handed to the browser as a Blob; the caller saves it through an object URL.
async function download(path) {
  const headers = {};
  const tok = token();
  if (tok) headers.Authorization = `Bearer ${tok}`;
  let res;
  try {
    res = await fetch(path, { headers, cache: 'no-store' });
  } catch (e) {
    throw new ApiError(0, 'network', e.message);
  }
  if (!res.ok) {
    let data = null;
    try { data = await res.json(); } catch { data = null; }
    const err = new ApiError(res.status, data?.error, data?.message, data);
    if (res.status === 401) { session.clear(); onUnauthorized(err); }
    throw err;
  }
  const blob = await res.blob();
  return { blob, filename: dispositionName(res.headers.get('Content-Disposition')) };
}

const enc = encodeURIComponent;
/// The media endpoints (GET; the bytes of what a beneficiary sent, fetched from the provider).
export const mediaPath = {
  message: (id) => `/api/v1/messages/${enc(id)}/media`,
  caseDocument: (ref, id) => `/api/v1/cases/${enc(ref)}/documents/${enc(id)}/media`,
};
export const api = {
  login: (username, password) => request('POST', '/api/v1/auth/login', { username, password }, { auth: false }),
  logout: () => request('POST', '/api/v1/auth/logout', {}),
  me: () => request('GET', '/api/v1/me'),
  changePassword: (current, next) => request('POST', '/api/v1/me/password', { current_password: current, new_password: next }),
  conversations: (mode, mine) => request('GET', `/api/v1/conversations?mode=${enc(mode)}${mine ? '&mine=1' : ''}`),
  conversation: (id) => request('GET', `/api/v1/conversations/${enc(id)}`),
  messages: (id) => request('GET', `/api/v1/conversations/${enc(id)}/messages`),
  takeover: (id, override) => request('POST', `/api/v1/conversations/${enc(id)}/takeover`, override ? { override: true } : {}),
  release: (id) => request('POST', `/api/v1/conversations/${enc(id)}/release`, {}),
  resolve: (id) => request('POST', `/api/v1/conversations/${enc(id)}/resolve`, {}),
  send: (id, text) => request('POST', `/api/v1/conversations/${enc(id)}/messages`, { text }),
  template: (id, name, params = []) => request('POST', `/api/v1/conversations/${enc(id)}/template`, { name, params }),
  requestDocuments: (id, reference) => request('POST', `/api/v1/conversations/${enc(id)}/request-documents`, { reference }),
  cases: (step) => request('GET', `/api/v1/cases${step ? `?step=${enc(step)}` : ''}`),
  caseGet: (ref) => request('GET', `/api/v1/cases/${enc(ref)}`),
  transition: (ref, body) => request('POST', `/api/v1/cases/${enc(ref)}/transition`, body),
  staff: () => request('GET', '/api/v1/staff'),
  createStaff: (body) => request('POST', '/api/v1/staff', body),
  satisfaction: (from, to) => {
    const q = new URLSearchParams();
    if (from) q.set('from', from);
    if (to) q.set('to', to);
    const qs = q.toString();
    return request('GET', `/api/v1/reports/satisfaction${qs ? `?${qs}` : ''}`);
  },
  caseReport: () => request('GET', '/api/v1/reports/cases'),
  canned: () => request('GET', '/api/v1/canned-answers'),
  channelFaults: () => request('GET', '/api/v1/channels/faults'),
  download,
};
