/*
 * The bridge's admin page: a login form, then one page with hash routes
 * (#/, #/conversations, #/conversations/12, #/identities, #/dead-letters).
 * Its views read the JSON API under /admin/api/ and re-read what they show
 * when the WebSocket /admin/ws says something changed (no polling). This
 * module is the page's start: the login and logout, and the routes that put
 * a view in front. The modules it imports are the page's other rooms (dom.js
 * says how visitor text reaches the DOM: only as text).
 */

import {$, el, replace} from './dom.js';
import {LoginRequired, api, onLoginRequired, request, session} from './api.js';
import {current, refresh} from './front.js';
import {live} from './live.js';
import {markCurrent, refreshDeadCount} from './menu.js';
import {makeView} from './view_parts.js';
import {conversationView} from './view_conversation.js';
import {conversationsView} from './view_conversations.js';
import {deadLettersView} from './view_dead_letters.js';
import {identitiesView} from './view_identities.js';
import {overviewView} from './view_overview.js';
import {tickAges} from './words.js';

// ---- login and logout -----------------------------------------------------

function showLogin(message) {
  live.stop();
  session.csrf = null;
  current.view = null;
  $('view').hidden = true;
  replace($('view'));
  $('nav').hidden = true;
  $('session').hidden = true;
  $('login').hidden = false;
  if (message !== undefined) loginError(message);
  document.title = 'Log in · chatra-bridge';
  $('token').focus();
}

/*
 * The login's error line. Without JavaScript the form posts itself and the bridge
 * answers this page with the line filled in (id login-error, where index.html says
 * BR_LOGIN_ERROR); with it, this function writes the same line.
 */
function loginError(text) {
  let err = $('login-error');
  if (!err) {
    err = el('p', {id: 'login-error', class: 'login-error', role: 'alert'});
    $('login-form').prepend(err);
  }
  err.textContent = text || '';
  err.hidden = !text;
}

async function login(ev) {
  ev.preventDefault();
  const token = $('token').value;
  const button = ev.target.querySelector('button');
  let error;
  button.disabled = true;
  loginError('');
  try {
    const r = await fetch('/admin/login', {
      method: 'POST', credentials: 'same-origin', cache: 'no-store',
      headers: {'Content-Type': 'application/json', Accept: 'application/json'},
      body: JSON.stringify({token}),
    });
    if (r.ok) {
      const data = await r.json().catch(() => ({}));
      $('token').value = '';
      /* The page may have been served as /admin/login: the app's address is /admin/. */
      if (location.pathname !== '/admin/') history.replaceState(null, '', '/admin/' + location.hash);
      await startApp(data.csrf);
      return;
    }
    error = r.status === 401 ? 'Wrong token.'
      : r.status === 429 ? 'Too many wrong tokens from this address; wait a minute.'
        : 'Login failed (HTTP ' + r.status + ').';
  } catch (e) {
    error = 'The bridge does not answer.';
  } finally {
    button.disabled = false;
  }
  loginError(error);
  $('token').select();
}

async function logout() {
  try {
    await request('POST', '/admin/logout');
  } catch (e) {
    if (e instanceof LoginRequired) return;
  }
  showLogin('');
}

/* After a login, or at start with a session cookie: the app itself. */
async function startApp(csrf) {
  if (!csrf) {
    try {
      csrf = (await api.get('session')).csrf;
    } catch (e) {
      if (!(e instanceof LoginRequired)) showLogin('Cannot reach the bridge: ' + e.message);
      return;
    }
  }
  session.csrf = csrf;
  $('login').hidden = true;
  $('nav').hidden = false;
  $('session').hidden = false;
  $('view').hidden = false;
  live.start();
  route();
  /* The overview and the dead letters count them as they load; elsewhere the menu asks. */
  if (!['overview', 'dead-letters'].includes(current.view && current.view.name)) refreshDeadCount();
}

// ---- routing --------------------------------------------------------------

function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/';
  const q = h.indexOf('?');
  const path = q < 0 ? h : h.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : h.slice(q + 1));
  return {path, params};
}

const ROUTES = [
  [/^\/$/, () => overviewView()],
  [/^\/conversations$/, (m, p) => conversationsView(p)],
  [/^\/conversations\/(\d+)$/, (m) => conversationView(Number(m[1]))],
  [/^\/identities$/, (m, p) => identitiesView(p)],
  [/^\/dead-letters$/, () => deadLettersView()],
];

function route() {
  if (!session.csrf) return;
  const {path, params} = parseHash();
  let view = null;
  for (const [re, make] of ROUTES) {
    const m = re.exec(path);
    if (m) {
      view = make(m, params);
      break;
    }
  }
  if (!view) view = notFoundView(path);
  markCurrent(view.name);
  current.view = view;
  document.title = view.title + ' · chatra-bridge';
  const container = $('view');
  replace(container, view.root);
  refresh();
}

function notFoundView(path) {
  return makeView('not-found', 'Not found', (v) => {
    v.refresh = async () => replace(v.body, el('p', {}, 'There is no page ', el('code', {}, path), '. ',
      el('a', {href: '#/'}, 'To the overview')));
  });
}

// ---- start --------------------------------------------------------------------

onLoginRequired(() => showLogin());

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', login);
  $('logout').addEventListener('click', logout);
  window.addEventListener('hashchange', () => route());
  setInterval(tickAges, 30000);
  startApp();
});
