/*
 * The admin page's live updates: the WebSocket /admin/ws (protocol br-admin).
 * Each message says what changed; the view in front re-reads itself when it
 * wants that message, and the menu's dead-letter count when dead letters
 * changed. A lost socket comes back after a growing, jittered wait (1 s to
 * 30 s); one refused before it opened asks the API whether the login is gone.
 * The indicator #live says which of these it is.
 */

import {$, el, replace} from './dom.js';
import {LoginRequired, api} from './api.js';
import {current, refreshSoon} from './front.js';
import {refreshDeadCount} from './menu.js';

let ws = null;
let retryTimer = null;
let delay = 1000;
let wanted = false;

function indicate(state, text) {
  const n = $('live');
  n.setAttribute('data-state', state);
  replace(n, el('span', {class: 'icon', 'aria-hidden': 'true'}, state === 'live' ? '●' : '○'), ' ', text);
}

function connect() {
  retryTimer = null;
  if (!wanted) return;
  const url = (location.protocol === 'https:' ? 'wss:' : 'ws:') + '//' + location.host + '/admin/ws';
  let opened = false;
  try {
    ws = new WebSocket(url, 'br-admin');
  } catch (e) {
    later();
    return;
  }
  ws.addEventListener('open', () => {
    opened = true;
    delay = 1000;
    indicate('live', 'live');
    /* Whatever changed while the socket was down (or before it opened). */
    refreshSoon();
  });
  ws.addEventListener('message', (ev) => {
    let m;
    try {
      m = JSON.parse(ev.data);
    } catch (e) {
      return;
    }
    if (!m || typeof m.type !== 'string') return;
    if (m.type === 'dead_letters' && !(current.view && current.view.name === 'dead-letters')) {
      refreshDeadCount();
    }
    if (current.view && current.view.wants(m)) refreshSoon();
  });
  ws.addEventListener('close', () => {
    ws = null;
    if (!wanted) return;
    if (!opened) {
      /* Refused before the upgrade: perhaps the session ended. The API says so with a 401. */
      api.get('session').then(later, (e) => {
        if (!(e instanceof LoginRequired)) later();
      });
      return;
    }
    later();
  });
}

function later() {
  if (!wanted || retryTimer) return;
  const wait = Math.round(delay * (0.75 + Math.random() * 0.5));
  indicate('reconnecting', 'reconnecting…');
  retryTimer = setTimeout(connect, wait);
  delay = Math.min(delay * 2, 30000);
}

export const live = {
  start() {
    wanted = true;
    delay = 1000;
    indicate('connecting', 'connecting…');
    if (!ws && !retryTimer) connect();
  },
  stop() {
    wanted = false;
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    if (ws) ws.close();
    ws = null;
  },
};
