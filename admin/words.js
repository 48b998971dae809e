/*
 * The admin page's words for states and times. Every state is shown as an
 * icon and words (never a colour alone): badge(). Times are the local time
 * with their age beside it ("3 min ago"), kept fresh by tickAges(); plural(),
 * duration() and attemptsText() say counts and waits in words.
 */

import {el} from './dom.js';

/* state -> [icon, words, css class]; the icon is decoration, the words are the state. */
const STATES = {
  upstream: {
    ok: ['✓', 'working', 'good'],
    paused: ['‖', 'paused', 'warn'],
    failing: ['✗', 'failing', 'bad'],
  },
  conversation: {
    active: ['●', 'active', 'good'],
    merged: ['⇢', 'merged', 'muted'],
    closed: ['○', 'closed', 'muted'],
  },
  task: {
    pending: ['…', 'being created', 'warn'],
    open: ['●', 'open', 'good'],
    closing: ['…', 'being completed', 'warn'],
    closed: ['○', 'completed', 'muted'],
  },
  reply: {
    queued: ['…', 'waiting to be sent to the chat', 'warn'],
    running: ['↻', 'being sent to the chat', 'warn'],
    done: ['✓', 'delivered to the chat', 'good'],
    dead: ['✗', 'not delivered (dead letter)', 'bad'],
    discarded: ['⊘', 'not delivered (discarded)', 'muted'],
  },
  job: {
    queued: ['…', 'queued', 'warn'],
    running: ['↻', 'running', 'warn'],
    done: ['✓', 'done', 'good'],
    dead: ['✗', 'dead letter', 'bad'],
    discarded: ['⊘', 'discarded', 'muted'],
  },
};

export function badge(kind, state, extra) {
  const s = (STATES[kind] || {})[state] || ['?', String(state), 'muted'];
  return el('span', {class: 'badge ' + s[2], 'data-state': state},
    el('span', {class: 'icon', 'aria-hidden': 'true'}, s[0]), ' ', s[1], extra ? ' ' + extra : null);
}

// ---- time ---------------------------------------------------------------

export function isTime(ms) {
  return typeof ms === 'number' && ms > 0;
}

export function localTime(ms) {
  return new Date(ms).toLocaleString(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  });
}

export function plural(n, one, many) {
  return n + ' ' + (n === 1 ? one : many);
}

/* "3 min ago", "in 5 min", "just now". */
function ago(ms) {
  const d = Math.round((Date.now() - ms) / 1000);
  const s = Math.abs(d);
  let words;
  if (s < 45) return d >= 0 ? 'just now' : 'in a moment';
  if (s < 59.5 * 60) words = Math.max(1, Math.round(s / 60)) + ' min';
  else if (s < 36 * 3600) words = Math.round(s / 3600) + ' h';
  else words = plural(Math.round(s / 86400), 'day', 'days');
  return d >= 0 ? words + ' ago' : 'in ' + words;
}

/* "2 d 3 h", "4 h 12 min", "35 s" for an uptime or a wait. */
export function duration(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60);
  if (d > 0) return d + ' d ' + h + ' h';
  if (h > 0) return h + ' h ' + m + ' min';
  if (m > 0) return m + ' min';
  return s + ' s';
}

/* A <time> with the local time, and the age beside it (kept fresh by tickAges). */
export function when(ms, opts) {
  if (!isTime(ms)) return el('span', {class: 'muted'}, (opts && opts.none) || 'never');
  const rel = el('span', {class: 'age', 'data-at': ms}, ago(ms));
  if (opts && opts.short) {
    return el('time', {datetime: new Date(ms).toISOString(), title: localTime(ms)}, rel);
  }
  if (opts && opts.clock) {
    return el('time', {datetime: new Date(ms).toISOString(), title: localTime(ms)}, clock(ms), ' (', rel, ')');
  }
  return el('time', {datetime: new Date(ms).toISOString()}, localTime(ms), ' (', rel, ')');
}

export function tickAges() {
  for (const n of document.querySelectorAll('.age[data-at]')) {
    n.textContent = ago(Number(n.getAttribute('data-at')));
  }
}

/* A time the API gives as ISO text ("2024-05-01T10:00:00Z") or ms. */
export function toMs(t) {
  if (typeof t === 'number') return t;
  const v = Date.parse(t);
  return Number.isNaN(v) ? 0 : v;
}

/* The time of day, with the date when it is not today. */
export function clock(ms) {
  const d = new Date(ms);
  const time = d.toLocaleTimeString(undefined, {hour: '2-digit', minute: '2-digit', second: '2-digit'});
  if (d.toDateString() === new Date().toDateString()) return time;
  return d.toLocaleDateString(undefined, {month: 'short', day: 'numeric', year: 'numeric'}) + ', ' + time;
}

/* What the attempts of a job say, by how it ended. */
export function attemptsText(state, n) {
  n = n || 0;
  switch (state) {
    case 'done': return n === 0 ? 'at the first try' : 'after ' + plural(n, 'failed attempt', 'failed attempts');
    case 'dead': return n === 0 ? 'not retried: the answer was final'
      : 'given up after ' + plural(n, 'failed attempt', 'failed attempts');
    default: return n === 0 ? null : plural(n, 'failed attempt', 'failed attempts') + ' so far';
  }
}
