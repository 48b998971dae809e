/*
 * The admin page's calls to the bridge: request() sends one with the session's
 * CSRF token (kept in session.csrf) and turns a failure into an HttpError with
 * the bridge's own words; api.get and api.post are the JSON API under
 * /admin/api/. A 401 means the login is gone: request() calls the function
 * given to onLoginRequired (the page shows the login) and throws LoginRequired.
 */

export const session = {csrf: null};

export class LoginRequired extends Error {}

export class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/* Set once at start by app.js: this module does not know the login form. */
let loginRequired = () => {};

export function onLoginRequired(fn) {
  loginRequired = fn;
}

export async function request(method, path, body) {
  const headers = {Accept: 'application/json'};
  if (method !== 'GET' && session.csrf) headers['X-CSRF-Token'] = session.csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let r;
  try {
    r = await fetch(path, {
      method, headers, credentials: 'same-origin', cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    throw new HttpError(0, 'the bridge does not answer');
  }
  let data = null;
  try {
    data = await r.json();
  } catch (e) {
    data = null;
  }
  if (r.status === 401) {
    loginRequired();
    throw new LoginRequired('login required');
  }
  if (!r.ok) {
    const why = data && typeof data.error === 'string' ? data.error : 'HTTP ' + r.status;
    throw new HttpError(r.status, why);
  }
  return data;
}

export const api = {
  get: (path) => request('GET', '/admin/api/' + path),
  post: (path) => request('POST', '/admin/api/' + path),
};
