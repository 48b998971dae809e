/*
 * The admin page's overview (#/): each upstream's state, requests and quota,
 * the queues (inbox, jobs, dead letters) and the bridge itself (version,
 * uptime, config file). Re-read when the overview or the dead letters change.
 */

import {el, replace} from './dom.js';
import {api} from './api.js';
import {refreshDeadCount} from './menu.js';
import {facts, makeView} from './view_parts.js';
import {badge, duration, isTime, plural, when} from './words.js';

export function overviewView() {
  return makeView('overview', 'Overview', (v) => {
    v.wants = (m) => m.type === 'overview' || m.type === 'dead_letters';
    v.refresh = async () => {
      const o = await api.get('overview');
      refreshDeadCount(o);
      replace(v.body,
        el('h2', {}, 'Upstreams'),
        el('div', {class: 'cards'}, (o.upstreams || []).map(upstreamCard)),
        el('h2', {}, 'Queues'),
        facts([
          ['Inbox (webhooks not yet applied)', queueText(o.inbox && o.inbox.pending, o.inbox && o.inbox.oldest_at)],
          ['Jobs', jobsText(o.jobs || {})],
          ['Dead letters', deadText(o.dead_letters || 0)],
        ], 'wide'),
        el('h2', {}, 'The bridge'),
        facts([
          ['Version', o.version || '—'],
          ['Up for', typeof o.uptime_s === 'number' ? duration(o.uptime_s) : '—'],
          ['Started', isTime(o.started_at) ? when(o.started_at) : '—'],
          ['Config file', o.config ? el('code', {class: 'path'}, o.config) : '—'],
        ], 'wide'));
    };
  });
}

function upstreamCard(u) {
  const q = u.quota || {};
  // The tracker's daily quota (tracker.daily_quota) when one is set: "120 of 20000 today".
  const sent = typeof q.used_today === 'number'
    ? (typeof q.daily === 'number' ? q.used_today + ' of ' + q.daily + ' today'
      : plural(q.used_today, 'request', 'requests'))
    : el('span', {class: 'muted'}, 'not counted');
  const left = typeof q.left === 'number' ? plural(q.left, 'request', 'requests')
    : el('span', {class: 'muted'}, 'not known');
  const rate = typeof u.requests_per_second === 'number'
    ? (u.requests_per_second === 1 ? '1 request' : u.requests_per_second + ' requests') + ' a second' : '—';
  return el('article', {class: 'card upstream', 'data-upstream': u.name},
    el('h3', {}, u.name, u.kind && u.kind !== u.name ? el('span', {class: 'muted'}, ' (' + u.kind + ')') : null),
    el('p', {}, badge('upstream', u.state)),
    facts([
      ['Requests, last minute', String(u.requests_last_minute ?? '—')],
      ['Requests, last hour', String(u.requests_last_hour ?? '—')],
      ['Rate budget', rate],
      ['Paused until', isTime(u.paused_until) ? when(u.paused_until) : el('span', {class: 'muted'}, 'not paused')],
      ['Failing since', isTime(u.failing_since) ? when(u.failing_since) : undefined],
      ['Last error', u.last_error ? el('span', {class: 'text'}, u.last_error) : undefined],
      ['Sent today (UTC)', sent],
      ['Quota left', left],
    ]));
}

function queueText(n, oldest) {
  n = n || 0;
  if (n === 0) return 'empty';
  return [plural(n, 'waiting', 'waiting'), '; the oldest since ', when(oldest, {short: true})];
}

function jobsText(j) {
  const parts = [plural(j.queued || 0, 'queued', 'queued'), ', ', plural(j.running || 0, 'running', 'running')];
  if ((j.queued || 0) + (j.running || 0) > 0 && isTime(j.oldest_at)) {
    parts.push('; the oldest since ', when(j.oldest_at, {short: true}));
  }
  return parts;
}

function deadText(n) {
  if (n === 0) return 'none';
  return el('a', {href: '#/dead-letters'}, badge('job', 'dead', null), ' ', plural(n, 'job', 'jobs'),
    ' failed for good');
}
