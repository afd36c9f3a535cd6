// The API's client for the pages: JSON in and out, the session cookie
// sent by the browser. Requests the page makes by itself (after a live
// event, on a timer) say so, so that they do not keep an idle session
// alive.

export class APIError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body || {};
  }
}

let unauthorized = () => {};

// onUnauthorized sets what happens when the API answers 401: the session
// has ended.
export function onUnauthorized(f) {
  unauthorized = f;
}

export async function request(method, path, { body, background = false, quiet401 = false } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (background) headers['X-Hotline-Background'] = '1';
  let res;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    throw new APIError(0, err.message || 'network error');
  }
  const text = res.status === 204 ? '' : await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.status === 401 && !quiet401) unauthorized();
  if (!res.ok) throw new APIError(res.status, (data && data.error) || res.statusText, data);
  return data;
}

export const get = (path, opts) => request('GET', path, opts);
export const post = (path, body, opts = {}) => request('POST', path, { ...opts, body });

// optional answers null when the route answers 404: a part of the API
// this server does not have (yet).
export async function optional(path, opts) {
  try {
    return await get(path, opts);
  } catch (err) {
    if (err.status === 404) return null;
    throw err;
  }
}

// query builds a query string from the set values of params.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? '?' + s : '';
}
